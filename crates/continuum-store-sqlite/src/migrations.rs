//! Versioned, forward-only, checksummed migrations embedded in the binary.
//!
//! Each applied migration is recorded with the SHA-256 of its SQL. At open, every recorded
//! checksum must match the embedded one (an edited migration is an error, not a silent drift),
//! and a store written by a newer Continuum is refused rather than misread.

use continuum_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

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
    Migration {
        version: 15,
        name: "fts_on_demand",
        sql: include_str!("../migrations/0015_fts_on_demand.sql"),
    },
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    continuum_core::migration::latest(MIGRATIONS)
}

fn ensure_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            checksum   TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
}

pub fn applied(conn: &Connection) -> rusqlite::Result<Vec<AppliedMigration>> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
    )?;
    stmt.query_map([], |r| {
        Ok(AppliedMigration {
            version: r.get(0)?,
            name: r.get(1)?,
            checksum: r.get(2)?,
            applied_at: r.get(3)?,
        })
    })?
    .collect()
}

/// Checks recorded migrations against the embedded ones; returns the versions still to apply.
pub fn pending(conn: &Connection) -> Result<Vec<u32>> {
    let done = applied(conn).map_err(crate::map_err)?;
    for a in &done {
        match MIGRATIONS.iter().find(|m| m.version == a.version) {
            None => {
                return Err(Error::Unavailable(format!(
                    "this store has schema version {} but this build of Continuum knows only up to {}; upgrade Continuum",
                    a.version,
                    latest_version()
                )));
            }
            Some(m) if checksum(m.sql) != a.checksum => {
                return Err(Error::Internal(format!(
                    "migration {} ({}) recorded in the store does not match the one in this build (checksum mismatch)",
                    a.version, a.name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !done.iter().any(|a| a.version == m.version))
        .map(|m| m.version)
        .collect())
}

/// Applies every pending migration, each in its own transaction. Returns the versions applied.
pub fn migrate(conn: &mut Connection, now_millis: i64) -> Result<Vec<u32>> {
    let todo = pending(conn)?;
    for version in &todo {
        let m = MIGRATIONS
            .iter()
            .find(|m| m.version == *version)
            .expect("pending versions come from MIGRATIONS");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(crate::map_err)?;
        ensure_table(&tx).map_err(crate::map_err)?;
        // Another process may have applied it while we waited for the lock.
        let already: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(crate::map_err)?;
        if already.is_some() {
            continue;
        }
        tx.execute_batch(m.sql).map_err(crate::map_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![m.version, m.name, checksum(m.sql), now_millis],
        )
        .map_err(crate::map_err)?;
        tx.commit().map_err(crate::map_err)?;
    }
    Ok(todo)
}
