//! Who belongs to a federation: one-time join tokens and the hub's register of members.
//!
//! A join token is `cfjoin1.SECRET.CA_FINGERPRINT`: 32 random bytes (base64url) that the hub
//! keeps only as a SHA-256 hash, and the SHA-256 of the federation CA's certificate, so that a
//! joining node can tell it reached the right hub before it sends anything. A token admits one
//! node, once, before it expires; the node is recorded with the public key it proved (the
//! join request is signed with it) and the tier the invite named.

use crate::Error;
use crate::access::{Ledger, Tier};
use crate::identity::{NodeId, hex};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The most invites open (unused and unexpired) at once.
pub const MAX_OPEN_INVITES: usize = 10_000;
/// The longest an invite may stay valid.
pub const MAX_INVITE_MS: i64 = 30 * 86_400_000;

const PREFIX: &str = "cfjoin1";

/// A join token as handed to the joining node's operator.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    secret: String,
    /// SHA-256 of the federation CA's certificate (DER), hex.
    pub ca_fingerprint: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("JoinToken")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish_non_exhaustive()
    }
}

impl JoinToken {
    /// The token's text (a secret: show it once, never log it).
    pub fn expose(&self) -> String {
        format!("{PREFIX}.{}.{}", self.secret, self.ca_fingerprint)
    }

    pub fn parse(s: &str) -> Result<JoinToken, Error> {
        let bad = || {
            Error::Malformed(format!(
                "not a join token (it looks like {PREFIX}.SECRET.FINGERPRINT)"
            ))
        };
        let mut parts = s.trim().split('.');
        let (Some(PREFIX), Some(secret), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(secret)
            .map_err(|_| bad())?;
        if raw.len() != 32
            || fp.len() != 64
            || !fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad());
        }
        Ok(JoinToken {
            secret: secret.to_string(),
            ca_fingerprint: fp.to_string(),
        })
    }

    fn hash(&self) -> String {
        hex(&Sha256::digest(self.secret.as_bytes()))
    }
}

/// An invite as the hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invite {
    /// SHA-256 of the token's secret, hex.
    pub hash: String,
    pub tier: Tier,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_by: Option<NodeId>,
    pub used_at: Option<i64>,
}

/// A member of the federation, as the hub keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub id: NodeId,
    /// The node's Ed25519 public key, hex.
    pub public_key: String,
    pub tier: Tier,
    pub joined_at: i64,
    pub revoked_at: Option<i64>,
    pub ledger: Ledger,
    /// The highest event position of this node's contributions applied (each applied once).
    #[serde(default)]
    pub contributed_through: u64,
    /// Unlimited access granted by the federation's operator (signed with the CA key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::access::SignedGrant>,
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefused {
    /// No invite has this token (a wrong or made-up one).
    Unknown,
    Used,
    Expired,
    /// This key already joined (or was revoked: it cannot come back by joining again).
    AlreadyMember(NodeId),
}

impl std::fmt::Display for JoinRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinRefused::Unknown => f.write_str("the join token is not one this hub issued"),
            JoinRefused::Used => f.write_str("the join token was used already"),
            JoinRefused::Expired => f.write_str("the join token has expired"),
            JoinRefused::AlreadyMember(id) => {
                write!(
                    f,
                    "node {id} joined before (or was revoked); it cannot join again"
                )
            }
        }
    }
}

impl std::error::Error for JoinRefused {}

/// The hub's register: invites and members.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Registry {
    pub invites: Vec<Invite>,
    pub members: BTreeMap<NodeId, Member>,
}

impl Registry {
    /// A new one-time token for a node of `tier`, valid for `valid_ms` (at most 30 days).
    /// Expired and used invites older than a day are dropped on the way.
    pub fn invite(
        &mut self,
        tier: Tier,
        valid_ms: i64,
        now_ms: i64,
        ca_fingerprint: &str,
    ) -> Result<JoinToken, Error> {
        if valid_ms <= 0 || valid_ms > MAX_INVITE_MS {
            return Err(Error::Malformed(
                "an invite is valid for more than 0 and at most 30 days".into(),
            ));
        }
        if ca_fingerprint.len() != 64 {
            return Err(Error::Malformed(
                "the CA fingerprint is 64 hex digits".into(),
            ));
        }
        self.invites.retain(|i| {
            let ended = i.used_at.unwrap_or(i.expires_at);
            ended > now_ms - 86_400_000
        });
        let open = self
            .invites
            .iter()
            .filter(|i| i.used_by.is_none() && i.expires_at > now_ms)
            .count();
        if open >= MAX_OPEN_INVITES {
            return Err(Error::TooLarge(format!(
                "{MAX_OPEN_INVITES} invites are open; let some expire or be used first"
            )));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Internal(format!("no random source: {e}")))?;
        let token = JoinToken {
            secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
            ca_fingerprint: ca_fingerprint.to_string(),
        };
        self.invites.push(Invite {
            hash: token.hash(),
            tier,
            created_at: now_ms,
            expires_at: now_ms + valid_ms,
            used_by: None,
            used_at: None,
        });
        Ok(token)
    }

    /// Admits the node holding `public` with `token`: once, before it expires.
    pub fn redeem(
        &mut self,
        token: &JoinToken,
        public: &ed25519_dalek::VerifyingKey,
        now_ms: i64,
    ) -> Result<&Member, JoinRefused> {
        let id = NodeId::of(public);
        let hash = token.hash();
        // Compare every hash in full, whatever matches: the time taken says nothing.
        let mut found = None;
        for (i, inv) in self.invites.iter().enumerate() {
            if constant_eq(inv.hash.as_bytes(), hash.as_bytes()) {
                found = Some(i);
            }
        }
        let i = found.ok_or(JoinRefused::Unknown)?;
        let inv = &self.invites[i];
        if inv.used_by.is_some() {
            return Err(JoinRefused::Used);
        }
        if now_ms >= inv.expires_at {
            return Err(JoinRefused::Expired);
        }
        if self.members.contains_key(&id) {
            return Err(JoinRefused::AlreadyMember(id));
        }
        let tier = inv.tier;
        self.invites[i].used_by = Some(id.clone());
        self.invites[i].used_at = Some(now_ms);
        let member = Member {
            id: id.clone(),
            public_key: hex(public.as_bytes()),
            tier,
            joined_at: now_ms,
            revoked_at: None,
            ledger: Ledger::default(),
            contributed_through: 0,
            grant: None,
        };
        Ok(self.members.entry(id).or_insert(member))
    }

    /// Revokes a member; false when there is no such member or it was revoked before.
    pub fn revoke(&mut self, id: &NodeId, now_ms: i64) -> bool {
        match self.members.get_mut(id) {
            Some(m) if m.revoked_at.is_none() => {
                m.revoked_at = Some(now_ms);
                true
            }
            _ => false,
        }
    }

    /// A member's key, unless it was revoked (what [`crate::Verifier::open`] looks up).
    pub fn key_of(&self, id: &NodeId) -> Option<ed25519_dalek::VerifyingKey> {
        let m = self.members.get(id).filter(|m| m.revoked_at.is_none())?;
        crate::identity::public_key_from_hex(&m.public_key)
    }

    /// The revoked members' ids (for [`crate::pki::Revocations`]).
    pub fn revoked(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .values()
            .filter(|m| m.revoked_at.is_some())
            .map(|m| m.id.clone())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;

    const FP: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

    #[test]
    fn a_token_admits_one_node_once_before_it_expires() {
        let mut r = Registry::default();
        let (a, b) = (NodeKey::from_seed(&[1; 32]), NodeKey::from_seed(&[2; 32]));
        let t = r.invite(Tier::Pro, 86_400_000, 1000, FP).unwrap();
        // The text round-trips, names the CA, and the hub keeps no secret.
        let parsed = JoinToken::parse(&t.expose()).unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.ca_fingerprint, FP);
        let kept = serde_json::to_string(&r).unwrap();
        assert!(!kept.contains(&t.secret), "only the hash is kept");
        assert!(!format!("{t:?}").contains(&t.secret));

        let m = r.redeem(&parsed, &a.public(), 2000).unwrap();
        assert_eq!((&m.id, m.tier), (a.id(), Tier::Pro));
        assert_eq!(
            r.redeem(&parsed, &b.public(), 3000).unwrap_err(),
            JoinRefused::Used
        );
        assert_eq!(r.key_of(a.id()), Some(a.public()));

        let late = r.invite(Tier::Free, 1000, 5000, FP).unwrap();
        assert_eq!(
            r.redeem(&late, &b.public(), 6000).unwrap_err(),
            JoinRefused::Expired
        );
        let made_up = JoinToken::parse(&format!("cfjoin1.{}.{FP}", "A".repeat(43))).unwrap();
        assert_eq!(
            r.redeem(&made_up, &b.public(), 6000).unwrap_err(),
            JoinRefused::Unknown
        );
        let again = r.invite(Tier::Free, 1000, 7000, FP).unwrap();
        assert!(matches!(
            r.redeem(&again, &a.public(), 7001),
            Err(JoinRefused::AlreadyMember(_))
        ));
    }

    #[test]
    fn revoked_members_have_no_key_and_cannot_rejoin() {
        let mut r = Registry::default();
        let a = NodeKey::from_seed(&[1; 32]);
        let t = r.invite(Tier::Free, 1000, 0, FP).unwrap();
        r.redeem(&t, &a.public(), 1).unwrap();
        assert!(r.revoke(a.id(), 2));
        assert!(!r.revoke(a.id(), 3), "once");
        assert_eq!(r.key_of(a.id()), None);
        assert_eq!(r.revoked().collect::<Vec<_>>(), vec![a.id().clone()]);
        let t = r.invite(Tier::Free, 1000, 4, FP).unwrap();
        assert!(matches!(
            r.redeem(&t, &a.public(), 5),
            Err(JoinRefused::AlreadyMember(_))
        ));
    }

    #[test]
    fn limits_and_bad_tokens() {
        let mut r = Registry::default();
        assert!(r.invite(Tier::Free, 0, 0, FP).is_err());
        assert!(r.invite(Tier::Free, MAX_INVITE_MS + 1, 0, FP).is_err());
        for bad in [
            "",
            "cfjoin1",
            "cfjoin1.x.y",
            &format!("cfjoin2.{}.{FP}", "A".repeat(43)),
        ] {
            assert!(JoinToken::parse(bad).is_err(), "{bad}");
        }
        for _ in 0..MAX_OPEN_INVITES {
            r.invite(Tier::Free, 1000, 0, FP).unwrap();
        }
        assert!(matches!(
            r.invite(Tier::Free, 1000, 0, FP),
            Err(Error::TooLarge(_))
        ));
        // Once they expired (and a day passed), there is room again.
        r.invite(Tier::Free, 1000, 2 * 86_400_000, FP).unwrap();
        assert_eq!(r.invites.len(), 1);
    }
}
