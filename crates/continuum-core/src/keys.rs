//! API keys: what a key may do, how it is written, and how it is stored (hashed).
//!
//! A key reads `ck_<prefix>_<secret>`: the prefix (12 hex digits) is public and indexed, so a
//! request costs one lookup; the store keeps only the SHA-256 of the whole key. Keys are 64 random
//! bits of prefix and 192 of secret, so a fast hash is right (a slow KDF protects low-entropy
//! passwords, not random keys). The secret is shown once, at creation.

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a key may do. Each scope includes the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    /// Manages the tenant's own keys.
    Admin,
    /// Administers tenants: lists them, creates them with a first admin key, erases them.
    /// Never reads another tenant's memories.
    Operator,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Operator => "operator",
        }
    }

    /// Does a key of this scope allow an action needing `needed`?
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            "operator" => Ok(Scope::Operator),
            other => Err(Error::InvalidInput(format!(
                "unknown scope '{other}' (expected read, write, admin or operator)"
            ))),
        }
    }
}

/// Who is asking, decided once at the edge and handed to the engine: the tenant the key
/// belongs to, its scope, and its prefix. The engine, not the interface, decides what a caller
/// may do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub scope: Scope,
    /// The key's public prefix; `None` for someone with the store itself in hand (the CLI).
    pub key: Option<String>,
}

impl Caller {
    /// The caller an API key makes.
    pub fn of_key(key: &ApiKey) -> Caller {
        Caller {
            tenant: key.tenant.clone(),
            scope: key.scope,
            key: Some(key.prefix.clone()),
        }
    }

    /// Someone who opened the store directly (the CLI, offline): every right, on `tenant`.
    pub fn local(tenant: TenantId) -> Caller {
        Caller {
            tenant,
            scope: Scope::Operator,
            key: None,
        }
    }

    /// The caller's tenant, when its scope allows `needed`.
    pub fn require(&self, needed: Scope) -> Result<&TenantId> {
        if self.scope.allows(needed) {
            Ok(&self.tenant)
        } else {
            Err(Error::Forbidden(format!(
                "this key has {} scope; this needs {needed}",
                self.scope
            )))
        }
    }
}

/// A tenant given as the caller: someone with the store itself in hand ([`Caller::local`]),
/// with every right on it. The CLI and tests call engine verbs this way; the REST API and MCP
/// over HTTP pass the [`Caller`] their key made.
impl From<&TenantId> for Caller {
    fn from(tenant: &TenantId) -> Caller {
        Caller::local(tenant.clone())
    }
}

impl From<&Caller> for Caller {
    fn from(c: &Caller) -> Caller {
        c.clone()
    }
}

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiKey {
    /// The public prefix, also the key's id.
    pub prefix: String,
    pub tenant: TenantId,
    pub scope: Scope,
    #[serde(skip_serializing)]
    #[schemars(skip)]
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// How long the key may live before it is due for rotation, in milliseconds: past it,
    /// it still works, but `keys list`, `doctor` and the metrics point it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_ms: Option<i64>,
}

impl ApiKey {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// A working key older than its maximum age.
    pub fn due_for_rotation(&self, now: Timestamp) -> bool {
        self.is_active(now)
            && self
                .max_age_ms
                .is_some_and(|m| now.millis() - self.created_at.millis() >= m)
    }
}

/// The events a rotation records, in order: the successor's `key.created`, then the old
/// key's `key.rotated`.
pub fn rotation_events(
    prefix: &str,
    successor: &ApiKey,
    expires_at: Timestamp,
) -> [crate::Event; 2] {
    [
        crate::Event::KeyCreated {
            prefix: successor.prefix.clone(),
            scope: successor.scope,
            name: successor.name.clone(),
            expires_at: successor.expires_at,
        },
        crate::Event::KeyRotated {
            prefix: prefix.to_string(),
            successor: successor.prefix.clone(),
            expires_at,
        },
    ]
}

/// Hex SHA-256 of a whole key.
pub fn hash_key(secret: &str) -> String {
    crate::sha256_hex(secret.as_bytes())
}

/// Builds a key from 32 random bytes: `(secret, prefix)`.
pub fn format_key(random: &[u8; 32]) -> (String, String) {
    let hex = crate::hex(random);
    let prefix = hex[..12].to_string();
    let secret = format!("ck_{prefix}_{}", &hex[16..]);
    (secret, prefix)
}

/// The public prefix of a presented key, if it has the right shape.
pub fn key_prefix(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("ck_")?;
    let (prefix, tail) = rest.split_once('_')?;
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    (prefix.len() == 12 && tail.len() == 48 && hex(prefix) && hex(tail)).then_some(prefix)
}

/// Compares two hashes without stopping at the first difference.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_public_prefix_and_a_hashed_secret() {
        let (secret, prefix) = format_key(&[7u8; 32]);
        assert_eq!(key_prefix(&secret), Some(prefix.as_str()));
        assert_eq!(secret.len(), 3 + 12 + 1 + 48);
        assert!(same_hash(&hash_key(&secret), &hash_key(&secret)));
        assert!(!same_hash(&hash_key(&secret), &hash_key("ck_other")));
        for bad in [
            "",
            "ck_",
            "ck_abc_def",
            "xx_000000000000_",
            &secret[..secret.len() - 1],
        ] {
            assert_eq!(key_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.allows(Scope::Write) && Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        assert_eq!("WRITE".parse::<Scope>().unwrap(), Scope::Write);
        assert!("root".parse::<Scope>().is_err());
        assert!(Scope::Operator.allows(Scope::Admin) && !Scope::Admin.allows(Scope::Operator));
        assert_eq!("operator".parse::<Scope>().unwrap(), Scope::Operator);
    }
}
