//! `doctor`: checks that say what is wrong and what to do.

use crate::app::{Global, STORE_FILE};
use crate::output;
use anyhow::Result;
use continuum_core::Error;
use serde::Serialize;

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

pub async fn doctor(g: &Global) -> Result<()> {
    let mut checks = Vec::new();
    let location = g.location()?;
    if let crate::app::StoreLocation::Sqlite(dir) = &location {
        checks.push(Check {
            name: "data directory",
            ok: true,
            detail: dir.display().to_string(),
        });
        let probe = dir.join(".continuum-write-probe");
        let writable = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&probe, b"probe"))
            .and_then(|_| std::fs::remove_file(&probe));
        checks.push(Check {
            name: "data directory writable",
            ok: writable.is_ok(),
            detail: match &writable {
                Ok(()) => "yes".into(),
                Err(e) => e.to_string(),
            },
        });
    }
    match g.open_location(&location, g.engine_config()).await {
        Ok((engine, store)) => {
            let tenant = g.tenant()?;
            checks.push(Check {
                name: "store opens",
                ok: true,
                detail: store.describe(),
            });
            let stats = engine.stats(&tenant).await?;
            checks.push(Check {
                name: "schema",
                ok: stats.store.schema_version == store.latest_version(),
                detail: format!("v{}", stats.store.schema_version),
            });
            let problems = engine.check().await?;
            checks.push(Check {
                name: "integrity and indexes",
                ok: problems.is_empty(),
                detail: if problems.is_empty() {
                    "ok".into()
                } else {
                    problems.join("; ")
                },
            });
            if let crate::app::Backend::Postgres(pg) = &store {
                let encrypted = pg.encrypted().await?;
                let mode = pg.ssl_mode();
                let verified = matches!(
                    mode,
                    continuum_store_postgres::tls::SslMode::VerifyCa
                        | continuum_store_postgres::tls::SslMode::VerifyFull
                );
                checks.push(Check {
                    name: "connection",
                    ok: true,
                    detail: format!(
                        "sslmode={}: {}",
                        mode.as_str(),
                        match (encrypted, verified) {
                            (false, _) => "not encrypted",
                            (true, false) => "encrypted, server certificate not verified",
                            (true, true) => "encrypted, server certificate verified",
                        }
                    ),
                });
                checks.push(Check {
                    name: "vector search",
                    ok: true,
                    detail: match pg.pgvector() {
                        continuum_store_postgres::pgvector::Status::Enabled { version, schema } => {
                            format!("in the database: pgvector {version} (schema {schema}), HNSW")
                        }
                        continuum_store_postgres::pgvector::Status::Disabled(why) => {
                            format!("in process, not pgvector: {why}")
                        }
                    },
                });
            }
            if !matches!(store, crate::app::Backend::Postgres(_)) {
                let graphs = engine.saved_vector_graphs(&tenant);
                let bytes: u64 = graphs.iter().map(|(_, b)| b).sum();
                checks.push(Check {
                    name: "vector graph",
                    ok: true,
                    detail: format!(
                        "HNSW from {} vectors per tenant, exact scan below; {}",
                        engine.config().ann_min_vectors,
                        match graphs.first() {
                            None => "none saved for this tenant".to_string(),
                            Some((p, _)) => format!(
                                "{} saved ({:.1} MiB, {})",
                                graphs.len(),
                                bytes as f64 / (1024.0 * 1024.0),
                                p.parent()
                                    .map(|d| d.display().to_string())
                                    .unwrap_or_default()
                            ),
                        }
                    ),
                });
            }
            checks.push(Check {
                name: "tenant",
                ok: true,
                detail: format!("{} ({} memories)", tenant, stats.store.memories),
            });
        }
        Err(e) => checks.push(Check {
            name: "store opens",
            ok: false,
            detail: match &location {
                crate::app::StoreLocation::Sqlite(dir) => {
                    format!(
                        "{} ({})",
                        crate::app::one_line(&e),
                        dir.join(STORE_FILE).display()
                    )
                }
                crate::app::StoreLocation::Postgres { .. } => crate::app::one_line(&e),
            },
        }),
    }
    let healthy = checks.iter().all(|c| c.ok);
    if g.json {
        output::json(&serde_json::json!({"healthy": healthy, "checks": checks}))?;
    } else {
        for c in &checks {
            println!(
                "{}  {:<24} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    if healthy {
        Ok(())
    } else {
        Err(Error::Unavailable("doctor found problems".into()).into())
    }
}
