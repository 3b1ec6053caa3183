//! Identifier newtypes, validated once where they enter the system.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A memory's id: a UUIDv7, so ids sort by creation time.
///
/// Compared, ordered and hashed as one 128-bit integer (the same order as the UUID's bytes):
/// recall sorts and looks up hundreds of ids per query, and byte-wise comparisons went through
/// `memcmp`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemoryId(pub uuid::Uuid);

impl PartialEq for MemoryId {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_u128() == other.0.as_u128()
    }
}

impl Eq for MemoryId {}

impl PartialOrd for MemoryId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemoryId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_u128().cmp(&other.0.as_u128())
    }
}

impl std::hash::Hash for MemoryId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0.as_u128());
    }
}

impl MemoryId {
    /// A new time-ordered id for a memory created at `at_millis` (milliseconds since the epoch).
    pub fn new_at(at_millis: i64) -> Self {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            (at_millis.max(0) / 1000) as u64,
            ((at_millis.max(0) % 1000) * 1_000_000) as u32,
        );
        MemoryId(uuid::Uuid::new_v7(ts))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        uuid::Uuid::from_slice(bytes)
            .map(MemoryId)
            .map_err(|e| Error::Internal(format!("stored memory id is not a UUID: {e}")))
    }
}

impl fmt::Display for MemoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MemoryId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s.trim())
            .map(MemoryId)
            .map_err(|_| Error::InvalidInput(format!("'{s}' is not a memory id (expected a UUID)")))
    }
}

fn validate_name(what: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    let chars = s.chars().count();
    if chars > max {
        return Err(Error::InvalidInput(format!(
            "{what} is {chars} characters long, over the {max}-character limit"
        )));
    }
    Ok(())
}

/// The isolation boundary: every stored row belongs to exactly one tenant.
///
/// 1 to 64 characters of `A-Z a-z 0-9 _ . -`, so a tenant id is safe in paths, headers and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 64;

    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        validate_name("tenant id", &s, Self::MAX_LEN)?;
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Error::InvalidInput(format!(
                "tenant id '{s}' may only hold letters, digits, '_', '-' and '.'"
            )));
        }
        Ok(TenantId(s))
    }

    pub fn default_tenant() -> Self {
        TenantId("default".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation's id, chosen by the client: up to 200 characters, no control characters,
/// not only spaces (surrounding spaces are trimmed). Shared, not
/// copied, when cloned: every memory head of a session carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(std::sync::Arc<str>);

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl SessionId {
    pub const MAX_LEN: usize = 200;

    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s: String = s.into();
        // Checked as given, before trimming, so that the limits are the documented ones.
        let given = s.chars().count();
        if given > Self::MAX_LEN {
            return Err(Error::InvalidInput(format!(
                "session id is {given} characters long, over the {}-character limit",
                Self::MAX_LEN
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::InvalidInput(
                "session id may not hold control characters".into(),
            ));
        }
        let s = s.trim().to_string();
        validate_name("session id", &s, Self::MAX_LEN)?;
        Ok(SessionId(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SessionId::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_reject_path_and_header_tricks() {
        assert!(TenantId::new("acme-prod_1.eu").is_ok());
        for bad in ["", "a/b", "../x", "a b", "t\n", &"x".repeat(65)] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn memory_ids_are_time_ordered() {
        let a = MemoryId::new_at(1_700_000_000_000);
        let b = MemoryId::new_at(1_700_000_000_001);
        assert!(a < b);
        assert_eq!(a.0.get_version_num(), 7);
        assert_eq!(a.to_string().parse::<MemoryId>().unwrap(), a);
        assert!("nope".parse::<MemoryId>().is_err());
    }

    #[test]
    fn memory_ids_order_and_compare_as_their_bytes() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let ids: Vec<MemoryId> = (0..200)
            .map(|i| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&next().to_le_bytes());
                b[8..].copy_from_slice(&next().to_le_bytes());
                // Some pairs share long prefixes or are equal.
                if i % 7 == 0 {
                    b[..12].fill(0xab);
                }
                MemoryId(uuid::Uuid::from_bytes(b))
            })
            .collect();
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), a.as_bytes().cmp(b.as_bytes()));
                assert_eq!(a == b, a.as_bytes() == b.as_bytes());
            }
        }
    }
}

/// Schemas for API documents: the ids are strings on the wire.
mod schema {
    use super::{MemoryId, SessionId, TenantId};
    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
    use std::borrow::Cow;

    impl JsonSchema for MemoryId {
        fn schema_name() -> Cow<'static, str> {
            "MemoryId".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({"type": "string", "format": "uuid", "description": "A UUIDv7: ids sort by creation time."})
        }
    }

    impl JsonSchema for TenantId {
        fn schema_name() -> Cow<'static, str> {
            "TenantId".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.-]+$"})
        }
    }

    impl JsonSchema for SessionId {
        fn schema_name() -> Cow<'static, str> {
            "SessionId".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({"type": "string", "minLength": 1, "maxLength": 200, "description": "A conversation's id, chosen by the client."})
        }
    }
}
