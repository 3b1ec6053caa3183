//! `tenants`: list, create and erase tenants, offline against the store (what the REST API's
//! operator endpoints do). Counts and keys only; no tenant's content is shown.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::{Error, TenantId};

#[derive(Debug, Args)]
pub struct TenantsArgs {
    #[command(subcommand)]
    pub action: Option<TenantsAction>,
}

#[derive(Debug, Subcommand)]
pub enum TenantsAction {
    /// Every tenant with its memory and key counts (the default).
    List,
    /// A new tenant and its first admin key; prints the secret once (with --json: `key`).
    Create {
        tenant: String,
        /// A label for the admin key.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete everything a tenant stored and revoke its keys. Cannot be undone.
    Erase {
        tenant: String,
        /// Confirm: erasing is permanent.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn tenants(g: &Global, a: TenantsArgs) -> Result<()> {
    let (engine, _) = g.open().await?;
    match a.action.unwrap_or(TenantsAction::List) {
        TenantsAction::List => {
            let list = engine.tenants().await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no tenants");
            }
            for t in list {
                println!(
                    "{:<24} {:>9} memories  {:>3} active keys ({} in all){}",
                    t.tenant,
                    t.memories,
                    t.active_keys,
                    t.keys,
                    t.last_memory_at
                        .map(|at| format!("  newest {at}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        TenantsAction::Create { tenant, name } => {
            let tenant = TenantId::new(tenant)?;
            let (secret, key) = engine.create_tenant(&tenant, name).await?;
            if g.json {
                return output::json(&serde_json::json!({
                    "tenant": tenant,
                    "key": secret,
                    "prefix": key.prefix,
                    "scope": key.scope,
                }));
            }
            println!("{secret}");
            eprintln!(
                "created tenant '{tenant}' with an admin key (prefix {}); it is shown only this once",
                key.prefix
            );
            Ok(())
        }
        TenantsAction::Erase { tenant, yes } => {
            let tenant = TenantId::new(tenant)?;
            if !yes {
                return Err(Error::InvalidInput(format!(
                    "erasing tenant '{tenant}' deletes all it stored; add --yes to confirm"
                ))
                .into());
            }
            let erased = engine.erase_tenant(&tenant).await?;
            if g.json {
                return output::json(&erased);
            }
            println!(
                "erased tenant '{}': {} memories deleted, {} keys revoked",
                erased.tenant, erased.memories, erased.keys_revoked
            );
            Ok(())
        }
    }
}
