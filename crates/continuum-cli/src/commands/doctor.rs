//! `doctor`: checks that say what is wrong and what to do.

use crate::app::{Global, STORE_FILE};
use crate::output;
use anyhow::Result;
use continuum_core::Error;
use serde::Serialize;

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Also ask a running server (e.g. http://127.0.0.1:8420) for its readiness and the states
    /// of its background jobs.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// How long `doctor --server` waits for the server's answer.
const SERVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server's readiness and one check per background job.
async fn server_checks(url: &str, checks: &mut Vec<Check>) {
    let url = format!("{}/v1/ready", url.trim_end_matches('/'));
    let answer = async {
        let client = reqwest::Client::builder()
            .timeout(SERVER_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body))
    }
    .await;
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            checks.push(Check {
                name: "server".into(),
                ok: false,
                detail: format!("{url}: {e}"),
            });
            return;
        }
    };
    checks.push(Check {
        name: "server".into(),
        ok: status.is_success(),
        detail: format!(
            "{url}: {}",
            body["status"]
                .as_str()
                .or(body["error"]["message"].as_str())
                .unwrap_or(status.as_str())
        ),
    });
    for job in body["jobs"].as_array().into_iter().flatten() {
        let state = job["state"].as_str().unwrap_or("unknown");
        let mut detail = format!(
            "{state}; {} restarts, {} failures",
            job["restarts"], job["failures"]
        );
        if let Some(e) = job["last_error"].as_str() {
            detail.push_str(&format!("; last error: {e}"));
        }
        checks.push(Check {
            name: format!("job {}", job["name"].as_str().unwrap_or("?")),
            ok: state != "backoff",
            detail,
        });
    }
}

pub async fn doctor(g: &Global, a: DoctorArgs) -> Result<()> {
    let mut checks = Vec::new();
    let location = g.location()?;
    if let crate::app::StoreLocation::Sqlite(dir) = &location {
        checks.push(Check {
            name: "data directory".into(),
            ok: true,
            detail: dir.display().to_string(),
        });
        let probe = dir.join(".continuum-write-probe");
        let writable = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&probe, b"probe"))
            .and_then(|_| std::fs::remove_file(&probe));
        checks.push(Check {
            name: "data directory writable".into(),
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
                name: "store opens".into(),
                ok: true,
                detail: store.describe(),
            });
            let stats = engine.stats(&tenant).await?;
            checks.push(Check {
                name: "schema".into(),
                ok: stats.store.schema_version == store.latest_version(),
                detail: format!("v{}", stats.store.schema_version),
            });
            let now = continuum_core::Clock::now(&continuum_core::SystemClock);
            let due: Vec<String> = engine
                .list_keys(None)
                .await?
                .into_iter()
                .filter(|k| k.due_for_rotation(now))
                .map(|k| format!("{} ({})", k.prefix, k.tenant))
                .collect();
            checks.push(Check {
                name: "keys due for rotation".into(),
                ok: due.is_empty(),
                detail: if due.is_empty() {
                    "none".into()
                } else {
                    format!(
                        "{} past their --max-age: {} (continuum keys rotate PREFIX)",
                        due.len(),
                        due.join(", ")
                    )
                },
            });
            let problems = engine.check().await?;
            checks.push(Check {
                name: "integrity and indexes".into(),
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
                    name: "connection".into(),
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
                    name: "vector search".into(),
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
            if let crate::app::Backend::Libsql {
                replica, location, ..
            } = &store
            {
                checks.push(match replica {
                    None => Check {
                        name: "libSQL replica".into(),
                        ok: true,
                        detail: format!(
                            "{}: synced by another process (a running serve or mcp)",
                            location.describe()
                        ),
                    },
                    Some(r) => {
                        let s = r.status(&engine).await?;
                        Check {
                            name: "libSQL replica".into(),
                            ok: s.last_error.is_none(),
                            detail: format!(
                                "{}: primary revision {}, local log {} (journaled {}), {} changes not on the primary, {} of {} remote events applied, last pull {}, last push {}{}{}",
                                location.describe(),
                                s.primary_revision.as_deref().unwrap_or("never reached"),
                                s.local_head,
                                s.journaled_through,
                                s.unpushed_changes,
                                s.remote_applied,
                                s.remote_events,
                                s.last_pull_unix.map_or("never".into(), |t| continuum_core::Timestamp(t * 1000).to_string()),
                                s.last_push_unix.map_or("never".into(), |t| continuum_core::Timestamp(t * 1000).to_string()),
                                if s.behind { "; BEHIND" } else { "; level" },
                                s.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default(),
                            ),
                        }
                    }
                });
            }
            if !matches!(store, crate::app::Backend::Postgres(_)) {
                let graphs = engine.saved_vector_graphs(&tenant);
                let bytes: u64 = graphs.iter().map(|(_, b)| b).sum();
                checks.push(Check {
                    name: "vector graph".into(),
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
            let text = engine.text_index_info(&tenant);
            checks.push(Check {
                name: "text index file".into(),
                ok: true,
                detail: match (&text.file, text.file_bytes) {
                    (None, _) => "none: the index is rebuilt by each process".to_string(),
                    (Some(p), Some(b)) => {
                        format!("{p} ({:.1} MiB)", b as f64 / (1024.0 * 1024.0))
                    }
                    (Some(_), None) => format!(
                        "none yet (written for tenants of {} memories or more)",
                        text.min_memories
                    ),
                },
            });
            checks.push(Check {
                name: "tenant".into(),
                ok: true,
                detail: format!("{} ({} memories)", tenant, stats.store.memories),
            });
        }
        Err(e) => checks.push(Check {
            name: "store opens".into(),
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
                crate::app::StoreLocation::Libsql(loc) => {
                    format!("{} ({})", crate::app::one_line(&e), loc.describe())
                }
            },
        }),
    }
    if let Some(url) = &a.server {
        server_checks(url, &mut checks).await;
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
