//! Node identities: an Ed25519 key pair per node, and a node id derived from its public key,
//! so that an id cannot be claimed without the key.

use crate::Error;
use sha2::{Digest, Sha256};

/// A node's id: the first 16 bytes of SHA-256 of its Ed25519 public key, as 32 lowercase hex
/// digits. Derived, never chosen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// The id of the node holding the private half of `public`.
    pub fn of(public: &ed25519_dalek::VerifyingKey) -> NodeId {
        let digest = Sha256::digest(public.as_bytes());
        NodeId(hex(&digest[..16]))
    }

    /// Parses an id as written (32 lowercase hex digits).
    pub fn parse(s: &str) -> Result<NodeId, Error> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(NodeId(s.to_string()))
        } else {
            Err(Error::Malformed(
                "a node id is 32 lowercase hex digits".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A node's signing key with its id.
pub struct NodeKey {
    key: ed25519_dalek::SigningKey,
    id: NodeId,
}

impl NodeKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<NodeKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::Internal(format!("no random source: {e}")))?;
        Ok(NodeKey::from_seed(&seed))
    }

    /// The key whose 32-byte secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> NodeKey {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let id = NodeId::of(&key.verifying_key());
        NodeKey { key, id }
    }

    /// The secret seed, for storing the key (keep it out of logs).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn public(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    pub(crate) fn sign(&self, bytes: &[u8]) -> ed25519_dalek::Signature {
        use ed25519_dalek::Signer;
        self.key.sign(bytes)
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("NodeKey").field("id", &self.id).finish()
    }
}

pub(crate) use continuum_core::hex;

/// 32 bytes written as 64 hex digits, or `None`.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    continuum_core::unhex(s)?.try_into().ok()
}

/// An Ed25519 public key written as hex, or `None`.
pub(crate) fn public_key_from_hex(s: &str) -> Option<ed25519_dalek::VerifyingKey> {
    ed25519_dalek::VerifyingKey::from_bytes(&unhex32(s)?).ok()
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_follows_from_the_key_and_only_ids_parse() {
        let a = NodeKey::from_seed(&[7; 32]);
        let b = NodeKey::from_seed(&[8; 32]);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), &NodeId::of(&a.public()));
        assert_eq!(NodeId::parse(a.id().as_str()).unwrap(), *a.id());
        for bad in ["", "xyz", &"A".repeat(32), &"a".repeat(31), &"a".repeat(33)] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{a:?}").contains(&hex(&a.seed())));
    }
}
