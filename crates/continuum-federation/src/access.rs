//! Who may ask the pool, and how often.
//!
//! - **Contribute to access.** A node's ratio is contributed / consumed. A new node has a free
//!   allowance of queries ([`AccessPolicy::free_queries`], 50); past it, a query is refused
//!   while the ratio after it would be below [`AccessPolicy::min_ratio`] (0.1), with how many
//!   contributions would let it through.
//! - **Tiers** set a token bucket per node and message type ([`TierLimits`]).
//! - **Unlimited access** exists only as a [`Grant`] signed by the hub operator's key, which any
//!   node can verify with the operator's public key. No constant, password or header grants it.

use crate::envelope::MessageType;
use crate::identity::{NodeId, NodeKey};
use crate::{Error, Refusal};
use base64::Engine as _;
use std::collections::HashMap;

/// A node's service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Free,
    Pro,
    Enterprise,
}

impl Tier {
    pub fn parse(s: &str) -> Result<Tier, Error> {
        match s {
            "free" => Ok(Tier::Free),
            "pro" => Ok(Tier::Pro),
            "enterprise" => Ok(Tier::Enterprise),
            other => Err(Error::Malformed(format!(
                "unknown tier '{other}' (free, pro or enterprise)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

/// Messages per minute a tier allows for each type (the bucket holds a minute's worth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierLimits {
    pub per_minute: [(MessageType, u32); 6],
}

impl TierLimits {
    /// The defaults: free 30 queries and 60 contributions a minute; pro ten times that;
    /// enterprise a hundred times.
    pub fn of(tier: Tier) -> TierLimits {
        let x = match tier {
            Tier::Free => 1,
            Tier::Pro => 10,
            Tier::Enterprise => 100,
        };
        TierLimits {
            per_minute: [
                (MessageType::Hello, 10 * x),
                (MessageType::Contribute, 60 * x),
                (MessageType::Query, 30 * x),
                (MessageType::Result, 30 * x),
                (MessageType::Sync, 60 * x),
                (MessageType::Heartbeat, 12 * x),
            ],
        }
    }

    pub fn rate(&self, kind: MessageType) -> u32 {
        self.per_minute
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// One token bucket per (node, message type), bounded in how many it keeps.
pub struct RateLimiter {
    buckets: HashMap<(NodeId, MessageType), Bucket>,
    max_buckets: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(100_000)
    }
}

impl RateLimiter {
    pub fn new(max_buckets: usize) -> RateLimiter {
        RateLimiter {
            buckets: HashMap::new(),
            max_buckets: max_buckets.max(1),
        }
    }

    /// Messages `node` may send of `kind` at `now_ms` without waiting (nothing is taken).
    pub fn available(
        &self,
        node: &NodeId,
        kind: MessageType,
        limits: &TierLimits,
        now_ms: i64,
    ) -> u32 {
        let rate = f64::from(limits.rate(kind));
        match self.buckets.get(&(node.clone(), kind)) {
            None => rate as u32,
            Some(b) => (b.tokens + (now_ms - b.at_ms).max(0) as f64 * rate / 60_000.0)
                .min(rate)
                .floor() as u32,
        }
    }

    /// Takes a token for `node`'s `kind` message at `now_ms`, or says when one will be there.
    /// `None` limits: unlimited (a valid grant).
    pub fn take(
        &mut self,
        node: &NodeId,
        kind: MessageType,
        limits: Option<&TierLimits>,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let Some(limits) = limits else {
            return Ok(());
        };
        let rate = f64::from(limits.rate(kind));
        if rate <= 0.0 {
            return Err(Refusal::RateLimited {
                retry_after_ms: 60_000,
            });
        }
        if self.buckets.len() >= self.max_buckets
            && !self.buckets.contains_key(&(node.clone(), kind))
        {
            // Full buckets are the same as no bucket: drop those, they hold no debt.
            self.buckets.retain(|_, b| {
                b.tokens + (now_ms - b.at_ms).max(0) as f64 * rate / 60_000.0 < rate
            });
            if self.buckets.len() >= self.max_buckets {
                return Err(Refusal::Busy(
                    "too many nodes are being rate-limited".into(),
                ));
            }
        }
        let b = self.buckets.entry((node.clone(), kind)).or_insert(Bucket {
            tokens: rate,
            at_ms: now_ms,
        });
        let per_ms = rate / 60_000.0;
        b.tokens = (b.tokens + (now_ms - b.at_ms).max(0) as f64 * per_ms).min(rate);
        b.at_ms = b.at_ms.max(now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Refusal::RateLimited {
                retry_after_ms: ((1.0 - b.tokens) / per_ms).ceil() as u64,
            })
        }
    }
}

/// What a node gave to and took from the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// Items it contributed that the hub accepted.
    pub contributed: u64,
    /// Queries it made past nothing (every answered query counts).
    pub consumed: u64,
}

impl Ledger {
    /// contributed / consumed (`None` before the first query).
    pub fn ratio(&self) -> Option<f64> {
        (self.consumed > 0).then(|| self.contributed as f64 / self.consumed as f64)
    }
}

/// The contribute-to-access rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessPolicy {
    pub free_queries: u64,
    pub min_ratio: f64,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            free_queries: 50,
            min_ratio: 0.1,
        }
    }
}

/// Why a query was refused by the contribution rule.
#[derive(Debug, Clone, PartialEq)]
pub struct MustContribute {
    /// Contributions that would let this query through.
    pub needed: u64,
    pub ratio: f64,
    pub min_ratio: f64,
}

impl std::fmt::Display for MustContribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this node's contribution ratio is {:.3}, below the federation's minimum of {}: \
             contribute {} more item{} (`continuum federation contribute`) to query again",
            self.ratio,
            self.min_ratio,
            self.needed,
            if self.needed == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for MustContribute {}

impl AccessPolicy {
    /// Whether one more query is allowed. `unlimited`: a valid operator grant.
    pub fn may_query(&self, l: &Ledger, unlimited: bool) -> Result<(), MustContribute> {
        if unlimited || l.consumed < self.free_queries {
            return Ok(());
        }
        // After this query: contributed / (consumed + 1) >= min_ratio.
        let after = l.consumed + 1;
        let required = (self.min_ratio * after as f64 - 1e-9).ceil().max(0.0) as u64;
        if l.contributed >= required {
            return Ok(());
        }
        Err(MustContribute {
            needed: required - l.contributed,
            ratio: l.contributed as f64 / l.consumed.max(1) as f64,
            min_ratio: self.min_ratio,
        })
    }

    /// How many of `wanted` pooled items a `sync` may deliver now: each delivered item counts
    /// as consumed, as a query does, so a node copies the pool at the same ratio it may query
    /// it (what is left of the free allowance, or as many as keep contributed / consumed at
    /// or above the minimum). Refused when not even one may go.
    pub fn items_allowed(
        &self,
        l: &Ledger,
        unlimited: bool,
        wanted: u64,
    ) -> Result<u64, MustContribute> {
        if unlimited || self.min_ratio <= 0.0 {
            return Ok(wanted);
        }
        let free = self.free_queries.saturating_sub(l.consumed);
        // consumed + n <= contributed / min_ratio.
        let cap = ((l.contributed as f64 / self.min_ratio) + 1e-9).floor() as u64;
        let by_ratio = cap.saturating_sub(l.consumed);
        let n = free.max(by_ratio).min(wanted);
        if n > 0 || wanted == 0 {
            return Ok(n);
        }
        let required = (self.min_ratio * (l.consumed + 1) as f64 - 1e-9).ceil() as u64;
        Err(MustContribute {
            needed: required.saturating_sub(l.contributed).max(1),
            ratio: l.contributed as f64 / l.consumed.max(1) as f64,
            min_ratio: self.min_ratio,
        })
    }
}

/// Unlimited access for one node until a time, granted by the hub operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub node: NodeId,
    pub unlimited: bool,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A grant as handed out: its JSON text and the operator's signature over those bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedGrant {
    pub grant: String,
    pub signature: String,
}

impl SignedGrant {
    pub fn sign(operator: &NodeKey, g: &Grant) -> Result<SignedGrant, Error> {
        if g.expires_at <= g.issued_at {
            return Err(Error::Malformed(
                "a grant must expire after it is issued".into(),
            ));
        }
        let grant = serde_json::to_string(g).map_err(|e| Error::Internal(e.to_string()))?;
        let signature = base64::engine::general_purpose::STANDARD
            .encode(operator.sign(grant.as_bytes()).to_bytes());
        Ok(SignedGrant { grant, signature })
    }

    /// The grant, if `operator` signed it, it names `node` and it is in force at `now_ms`.
    pub fn verify(
        &self,
        operator: &ed25519_dalek::VerifyingKey,
        node: &NodeId,
        now_ms: i64,
    ) -> Result<Grant, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.signature.as_bytes())
            .map_err(|_| "the grant's signature is not base64".to_string())?;
        let raw: [u8; 64] = raw
            .try_into()
            .map_err(|_| "a grant's signature is 64 bytes".to_string())?;
        operator
            .verify_strict(
                self.grant.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&raw),
            )
            .map_err(|_| "the grant is not signed by the federation operator".to_string())?;
        let g: Grant =
            serde_json::from_str(&self.grant).map_err(|e| format!("malformed grant: {e}"))?;
        if g.node != *node {
            return Err(format!("the grant is for node {}, not {node}", g.node));
        }
        if now_ms < g.issued_at || now_ms >= g.expires_at {
            return Err("the grant is not in force now".into());
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeKey::from_seed(&[n; 32]).id().clone()
    }

    #[test]
    fn a_query_past_the_allowance_needs_contributions() {
        let p = AccessPolicy::default();
        let mut l = Ledger::default();
        // The free allowance.
        for _ in 0..50 {
            p.may_query(&l, false).unwrap();
            l.consumed += 1;
        }
        let refused = p.may_query(&l, false).unwrap_err();
        // 51 queries at 0.1 need 6 contributions (5.1 rounded up).
        assert_eq!(refused.needed, 6);
        assert!(
            refused.to_string().contains("contribute 6 more items"),
            "{refused}"
        );
        l.contributed = 5;
        assert_eq!(p.may_query(&l, false).unwrap_err().needed, 1);
        l.contributed = 6;
        p.may_query(&l, false).unwrap();
        // A grant lets any ledger through.
        p.may_query(
            &Ledger {
                contributed: 0,
                consumed: 10_000,
            },
            true,
        )
        .unwrap();
        assert_eq!(
            Ledger {
                contributed: 1,
                consumed: 4
            }
            .ratio(),
            Some(0.25)
        );
    }

    #[test]
    fn a_sync_delivers_what_the_ratio_allows() {
        let p = AccessPolicy::default();
        // A new node: the free allowance of 50 items.
        assert_eq!(p.items_allowed(&Ledger::default(), false, 500), Ok(50));
        assert_eq!(p.items_allowed(&Ledger::default(), false, 20), Ok(20));
        // Past it: 3 contributed allow 30 consumed in all.
        let l = Ledger {
            contributed: 3,
            consumed: 50,
        };
        assert!(p.items_allowed(&l, false, 10).is_err());
        let l = Ledger {
            contributed: 7,
            consumed: 50,
        };
        assert_eq!(p.items_allowed(&l, false, 500), Ok(20));
        // After taking them the ratio is exactly the minimum; one more is refused, saying so.
        let l = Ledger {
            contributed: 7,
            consumed: 70,
        };
        let refused = p.items_allowed(&l, false, 1).unwrap_err();
        assert_eq!(refused.needed, 1, "{refused}");
        assert_eq!(p.items_allowed(&l, true, 500), Ok(500));
        assert_eq!(p.items_allowed(&l, false, 0), Ok(0));
    }

    #[test]
    fn buckets_are_per_node_and_type_and_refill() {
        let mut r = RateLimiter::default();
        let free = TierLimits::of(Tier::Free);
        let (a, b) = (node(1), node(2));
        for _ in 0..30 {
            r.take(&a, MessageType::Query, Some(&free), 0).unwrap();
        }
        let Err(Refusal::RateLimited { retry_after_ms }) =
            r.take(&a, MessageType::Query, Some(&free), 0)
        else {
            panic!("the 31st query in a minute passed");
        };
        assert_eq!(retry_after_ms, 2000, "one token every 2 s at 30 a minute");
        // Other types and other nodes have their own buckets.
        r.take(&a, MessageType::Contribute, Some(&free), 0).unwrap();
        r.take(&b, MessageType::Query, Some(&free), 0).unwrap();
        // Refilled with time; pro allows ten times as many; no limits for a grant.
        r.take(&a, MessageType::Query, Some(&free), 2000).unwrap();
        let pro = TierLimits::of(Tier::Pro);
        for _ in 0..300 {
            r.take(&node(3), MessageType::Query, Some(&pro), 0).unwrap();
        }
        assert!(r.take(&node(3), MessageType::Query, Some(&pro), 0).is_err());
        for _ in 0..10_000 {
            r.take(&node(4), MessageType::Query, None, 0).unwrap();
        }
    }

    #[test]
    fn the_bucket_table_is_bounded() {
        let mut r = RateLimiter::new(2);
        let free = TierLimits::of(Tier::Free);
        r.take(&node(1), MessageType::Query, Some(&free), 0)
            .unwrap();
        r.take(&node(2), MessageType::Query, Some(&free), 0)
            .unwrap();
        assert!(matches!(
            r.take(&node(3), MessageType::Query, Some(&free), 0),
            Err(Refusal::Busy(_))
        ));
        // Once the others are full again they are dropped and room is made.
        r.take(&node(3), MessageType::Query, Some(&free), 60_000)
            .unwrap();
    }

    #[test]
    fn only_the_operators_signature_grants_unlimited_access() {
        let operator = NodeKey::from_seed(&[9; 32]);
        let impostor = NodeKey::from_seed(&[10; 32]);
        let g = Grant {
            node: node(1),
            unlimited: true,
            issued_at: 1000,
            expires_at: 2000,
        };
        let signed = SignedGrant::sign(&operator, &g).unwrap();
        assert_eq!(
            signed.verify(&operator.public(), &node(1), 1500).unwrap(),
            g
        );
        // Another key, another node, outside its time, a changed byte: refused.
        let forged = SignedGrant::sign(&impostor, &g).unwrap();
        assert!(forged.verify(&operator.public(), &node(1), 1500).is_err());
        assert!(signed.verify(&operator.public(), &node(2), 1500).is_err());
        assert!(signed.verify(&operator.public(), &node(1), 2000).is_err());
        assert!(signed.verify(&operator.public(), &node(1), 999).is_err());
        let mut t = signed.clone();
        t.grant = t.grant.replace("2000", "9000");
        assert!(t.verify(&operator.public(), &node(1), 1500).is_err());
        assert!(
            SignedGrant::sign(
                &operator,
                &Grant {
                    expires_at: 1000,
                    ..g
                }
            )
            .is_err(),
            "a grant that never applies"
        );
    }
}
