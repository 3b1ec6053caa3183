//! What every backend's migrations share: a versioned SQL script, its checksum, and the record
//! of it in a store. Each backend embeds its own scripts and applies them its own way.

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
    crate::sha256_hex(sql.as_bytes())
}

/// The highest version in a list of migrations.
pub fn latest(migrations: &[Migration]) -> u32 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}
