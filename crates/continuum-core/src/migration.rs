//! What every backend's migrations share: a versioned SQL script, its checksum, and the record
//! of it in a store. Each backend embeds its own scripts and applies them its own way.

use sha2::{Digest, Sha256};

/// One forward-only schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// A migration as recorded in a store.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMigration {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    pub applied_at: i64,
}

/// Hex SHA-256 of a script: an edited migration no longer matches what a store recorded.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The highest version in a list of migrations.
pub fn latest(migrations: &[Migration]) -> u32 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}
