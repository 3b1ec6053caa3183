//! Versioned, forward-only, checksummed migrations for PostgreSQL, embedded in the binary and
//! applied under an advisory lock so that several servers starting at once apply each once.

use crate::map_err;
use continuum_core::{Error, Result};

pub use continuum_core::migration::{AppliedMigration, Migration, checksum};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "api_keys",
        sql: include_str!("../migrations/0002_api_keys.sql"),
    },
    Migration {
        version: 3,
        name: "vectors",
        sql: include_str!("../migrations/0003_vectors.sql"),
    },
    Migration {
        version: 4,
        name: "events",
        sql: include_str!("../migrations/0004_events.sql"),
    },
    Migration {
        version: 5,
        name: "webhooks",
        sql: include_str!("../migrations/0005_webhooks.sql"),
    },
    Migration {
        version: 6,
        name: "key_max_age",
        sql: include_str!("../migrations/0006_key_max_age.sql"),
    },
    Migration {
        version: 7,
        name: "accounts",
        sql: include_str!("../migrations/0007_accounts.sql"),
    },
    Migration {
        version: 8,
        name: "audit",
        sql: include_str!("../migrations/0008_audit.sql"),
    },
    Migration {
        version: 9,
        name: "fts_secure_delete",
        sql: include_str!("../migrations/0009_fts_secure_delete.sql"),
    },
    Migration {
        version: 10,
        name: "sync",
        sql: include_str!("../migrations/0010_sync.sql"),
    },
    Migration {
        version: 11,
        name: "records",
        sql: include_str!("../migrations/0011_records.sql"),
    },
    Migration {
        version: 12,
        name: "key_expiry_noted",
        sql: include_str!("../migrations/0012_key_expiry_noted.sql"),
    },
    Migration {
        version: 13,
        name: "memory_import_key",
        sql: include_str!("../migrations/0013_memory_import_key.sql"),
    },
    Migration {
        version: 14,
        name: "event_written_at",
        sql: include_str!("../migrations/0014_event_written_at.sql"),
    },
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    continuum_core::migration::latest(MIGRATIONS)
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at BIGINT  NOT NULL
)";

pub async fn applied(client: &tokio_postgres::Client) -> Result<Vec<AppliedMigration>> {
    client.batch_execute(CREATE).await.map_err(map_err)?;
    let rows = client
        .query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| AppliedMigration {
            version: r.get::<_, i32>(0) as u32,
            name: r.get(1),
            checksum: r.get(2),
            applied_at: r.get(3),
        })
        .collect())
}

/// Applies every pending migration in one transaction; returns the versions applied.
pub async fn migrate(client: &mut tokio_postgres::Client, now_millis: i64) -> Result<Vec<u32>> {
    let tx = client.transaction().await.map_err(map_err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('continuum:migrations'))",
        &[],
    )
    .await
    .map_err(map_err)?;
    tx.batch_execute(CREATE).await.map_err(map_err)?;
    let done: Vec<(i32, String, String)> = tx
        .query("SELECT version, name, checksum FROM schema_migrations", &[])
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (version, name, sum) in &done {
        match MIGRATIONS.iter().find(|m| m.version as i32 == *version) {
            None => {
                return Err(Error::Unavailable(format!(
                    "this database has schema version {version} but this build of Continuum knows only up to {}; upgrade Continuum",
                    latest_version()
                )));
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(Error::Internal(format!(
                    "migration {version} ({name}) recorded in the database does not match the one in this build (checksum mismatch)"
                )));
            }
            Some(_) => {}
        }
    }
    let mut applied_now = Vec::new();
    for m in MIGRATIONS {
        if done.iter().any(|(v, _, _)| *v == m.version as i32) {
            continue;
        }
        tx.batch_execute(m.sql).await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            &[&(m.version as i32), &m.name, &checksum(m.sql), &now_millis],
        )
        .await
        .map_err(map_err)?;
        applied_now.push(m.version);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(applied_now)
}
