//! `tenants`: list, create and erase tenants, offline against the store (what the REST API's
//! operator endpoints do). Counts and keys only; no tenant's content is shown.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::keys::Caller;
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
    /// Put a tenant on a tier (free, pro, enterprise, unlimited or a custom one); a running
    /// server applies it within seconds, without a restart.
    SetTier { tenant: String, tier: String },
    /// A tenant's tier, its quotas and the plan behind it (who set it, billing status).
    Plan { tenant: String },
    /// Delete everything a tenant stored and revoke its keys. Cannot be undone.
    Erase {
        tenant: String,
        /// Confirm: erasing is permanent.
        #[arg(long)]
        yes: bool,
        /// Then rewrite the store's files (as `continuum vacuum`), so that the erased rows
        /// leave no trace in their pages; on PostgreSQL this is what makes erasure reach the
        /// files, and writers wait while it runs.
        #[arg(long)]
        vacuum: bool,
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
        TenantsAction::SetTier { tenant, tier } => {
            let tenant = TenantId::new(tenant)?;
            let view = engine
                .set_tier(Caller::local(tenant.clone()), &tenant, &tier)
                .await?;
            if g.json {
                return output::json(&view);
            }
            println!("tenant '{tenant}' is on tier '{}'", view.tier.name);
            Ok(())
        }
        TenantsAction::Plan { tenant } => {
            let tenant = TenantId::new(tenant)?;
            let view = engine.plan(Caller::local(tenant.clone()), None).await?;
            if g.json {
                return output::json(&view);
            }
            let t = &view.tier;
            let q = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
            println!("tenant:        {tenant}");
            println!("tier:          {}", t.name);
            println!(
                "memories:      {}",
                q(t.max_memories.map(|v| v.to_string()))
            );
            println!(
                "requests/day:  {}",
                q(t.requests_per_day.map(|v| v.to_string()))
            );
            println!(
                "rate per key:  {}",
                q(t.rate_per_key.map(|v| format!("{v}/s")))
            );
            println!(
                "webhooks:      {}",
                q(t.max_webhooks.map(|v| v.to_string()))
            );
            match &view.plan {
                Some(p) => println!(
                    "set by:        {} at {}{}",
                    p.source,
                    p.updated_at,
                    p.status
                        .as_deref()
                        .map(|s| format!(" (billing status {s})"))
                        .unwrap_or_default()
                ),
                None => println!("set by:        nobody (the default tier)"),
            }
            Ok(())
        }
        TenantsAction::Erase {
            tenant,
            yes,
            vacuum,
        } => {
            let tenant = TenantId::new(tenant)?;
            if !yes {
                return Err(Error::InvalidInput(format!(
                    "erasing tenant '{tenant}' deletes all it stored; add --yes to confirm"
                ))
                .into());
            }
            let erased = engine.erase_tenant(&tenant).await?;
            let vacuumed = match vacuum {
                true => Some(
                    engine
                        .vacuum_store(&continuum_core::keys::Caller::local(tenant.clone()))
                        .await?,
                ),
                false => None,
            };
            if g.json {
                let mut v = serde_json::to_value(&erased)?;
                if let Some(vac) = &vacuumed {
                    v["vacuumed"] = serde_json::to_value(vac)?;
                }
                return output::json(&v);
            }
            println!(
                "erased tenant '{}': {} memories deleted, {} keys revoked",
                erased.tenant, erased.memories, erased.keys_revoked
            );
            if let Some(vac) = &vacuumed {
                super::migrate::print_vacuumed(g, vac)?;
            }
            Ok(())
        }
    }
}
