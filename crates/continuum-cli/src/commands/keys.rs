//! `keys`: create, list and revoke API keys, offline against the store, so an operator can
//! bootstrap the first admin key. No key or password is ever printed except the one created.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::Error;
use continuum_core::keys::Scope;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key for --tenant; prints the secret once (with --json: the `key` field).
    Create {
        /// read, write, admin (the tenant's keys) or operator (every tenant: `tenants`).
        #[arg(long, default_value = "write")]
        scope: Scope,
        /// How long the key is valid: 30m, 12h, 90d, 2w, 1y (default: until revoked).
        #[arg(long, value_parser = parse_validity)]
        expires: Option<i64>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
        /// Age after which the key is due for rotation (90d, 1y): it keeps working, but
        /// `keys list`, `doctor` and the metrics point it out.
        #[arg(long, value_parser = parse_validity)]
        max_age: Option<i64>,
    },
    /// List keys (never their secrets): of --tenant, or of every tenant with --all-tenants.
    List {
        #[arg(long)]
        all_tenants: bool,
    },
    /// Revoke a key by its prefix (or the whole key).
    Revoke { prefix: String },
    /// Replace a key with a new one of the same tenant, scope and name; prints the new secret
    /// once. The old key keeps working for --overlap (30m, 12h, 1d, up to 30d; 0: it stops
    /// at once), then is refused as expired.
    Rotate {
        prefix: String,
        #[arg(long, default_value = "24h", value_parser = parse_overlap)]
        overlap: i64,
    },
}

/// A duration like `parse_validity`'s, or 0.
pub(crate) fn parse_overlap(s: &str) -> Result<i64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_validity(s)
}

/// "90d" → milliseconds.
pub fn parse_validity(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90d"))?;
    let ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" | "" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return Err(format!("unknown unit in '{s}' (use m, h, d, w or y)")),
    };
    n.checked_mul(ms)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("'{s}' is not a positive duration"))
}

pub async fn keys(g: &Global, a: KeysArgs) -> Result<()> {
    let (engine, _) = g.open().await?;
    match a.action {
        KeysAction::Create {
            scope,
            expires,
            name,
            max_age,
        } => {
            let tenant = g.tenant()?;
            let (secret, key) = engine
                .create_key_with_max_age(&tenant, scope, expires, name, max_age)
                .await?;
            if g.json {
                return output::json(&serde_json::json!({
                    "key": secret,
                    "prefix": key.prefix,
                    "tenant": key.tenant,
                    "scope": key.scope,
                    "name": key.name,
                    "created_at": key.created_at,
                    "expires_at": key.expires_at,
                }));
            }
            println!("{secret}");
            eprintln!(
                "created a {} key for tenant '{}' (prefix {}{}); it is shown only this once",
                key.scope,
                key.tenant,
                key.prefix,
                key.expires_at
                    .map(|t| format!(", expires {t}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        KeysAction::List { all_tenants } => {
            let tenant = g.tenant()?;
            let list = engine.list_keys((!all_tenants).then_some(&tenant)).await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no keys");
            }
            let now = continuum_core::Clock::now(&continuum_core::SystemClock);
            for k in list {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else if !k.is_active(now) {
                    "expired"
                } else if k.due_for_rotation(now) {
                    "rotate"
                } else {
                    "active"
                };
                println!(
                    "{}  {:<6} {:<8} {}  {}{}{}",
                    k.prefix,
                    k.scope,
                    state,
                    k.tenant,
                    k.created_at,
                    k.expires_at
                        .filter(|_| state == "active" || state == "rotate")
                        .map(|t| format!("  until {t}"))
                        .unwrap_or_default(),
                    k.name.map(|n| format!("  {n}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        KeysAction::Rotate { prefix, overlap } => {
            let r = engine.rotate_key(&prefix, overlap).await?;
            if g.json {
                return output::json(&serde_json::json!({
                    "key": r.secret,
                    "prefix": r.key.prefix,
                    "tenant": r.key.tenant,
                    "scope": r.key.scope,
                    "name": r.key.name,
                    "created_at": r.key.created_at,
                    "expires_at": r.key.expires_at,
                    "replaces": r.old_prefix,
                    "replaced_key_expires_at": r.old_expires_at,
                }));
            }
            println!("{}", r.secret);
            eprintln!(
                "rotated key {} of tenant '{}': the new key (prefix {}) is shown only this once; the old one works until {}",
                r.old_prefix, r.key.tenant, r.key.prefix, r.old_expires_at
            );
            Ok(())
        }
        KeysAction::Revoke { prefix } => {
            if prefix.trim().is_empty() {
                return Err(Error::InvalidInput("give the key's prefix".into()).into());
            }
            engine.revoke_key(&prefix).await?;
            if g.json {
                return output::json(&serde_json::json!({"revoked": prefix}));
            }
            println!("revoked {prefix}");
            Ok(())
        }
    }
}
