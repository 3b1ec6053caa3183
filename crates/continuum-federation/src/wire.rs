//! The bodies the hub and its nodes exchange (inside signed envelopes, except joining).

use crate::access::{Ledger, Tier};
use crate::identity::NodeId;

/// The longest text of one pooled item.
pub const MAX_ITEM_BYTES: usize = crate::anonymise::MAX_SNIPPET_BYTES;
/// The most items in one contribution.
pub const MAX_ITEMS: usize = 500;
/// The most results a query may ask for.
pub const MAX_RESULTS: usize = 20;
/// The longest query.
pub const MAX_QUERY_BYTES: usize = 1000;

/// `POST /federation/v1/join`, the one request served without a client certificate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The join token's text.
    pub token: String,
    /// The joining node's Ed25519 public key, hex.
    pub public_key: String,
    /// Names the node will accept connections under (none for a node that only connects).
    #[serde(default)]
    pub names: Vec<String>,
    /// The node's signature (base64) over [`JoinRequest::proof_text`]: it holds the key.
    pub proof: String,
}

impl JoinRequest {
    /// What the proof signs: the token and the key, so neither can be swapped.
    pub fn proof_text(token: &str, public_key: &str) -> String {
        format!("continuum-federation-join\n{token}\n{public_key}")
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JoinResponse {
    pub node: NodeId,
    pub tier: Tier,
    /// The node's certificate (PEM), signed by the federation's CA.
    pub certificate: String,
    /// The CA's certificate (PEM): its SHA-256 is the token's fingerprint.
    pub ca: String,
    /// The hub's node id and Ed25519 public key (hex): it signs its replies.
    pub hub: NodeId,
    pub hub_key: String,
}

/// One shareable item, already through the anonymiser on the node (the hub checks again).
/// The pool's concepts and links are extracted on the hub from the shared facts, as any store
/// does; a node's own graph, built from its conversations, is never sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Item {
    /// A fact snippet (a decision, a note, a fact).
    Fact { text: String },
}

/// A `contribute` body: what the node gathered from its events up to `through`. Applied once:
/// the hub keeps, per node, the highest `through` it applied.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    pub through: u64,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContributionReply {
    /// Items taken into the pool now (0 when the contribution was applied before).
    pub accepted: u64,
    /// Items the hub's own anonymiser refused.
    pub refused: u64,
    /// Whether this contribution had been applied before (a resend).
    pub duplicate: bool,
    pub ledger: Ledger,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub q: String,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QueryHit {
    pub text: String,
    pub score: f64,
    /// The contributing node: never a tenant.
    pub node: String,
}

impl QueryHit {
    /// A search hit over a pool (the hub's, or a node's copy), named by the node that
    /// contributed it (its `node` metadata).
    pub fn of(h: continuum_engine::SearchHit) -> QueryHit {
        QueryHit {
            node: h
                .memory
                .metadata
                .get("node")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            text: h.memory.content,
            score: h.score,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QueryReply {
    pub hits: Vec<QueryHit>,
    pub ledger: Ledger,
}

/// The hub's answer to a heartbeat: where the node stands.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Standing {
    pub node: NodeId,
    pub tier: Tier,
    pub ledger: Ledger,
    pub ratio: Option<f64>,
    pub free_queries: u64,
    pub min_ratio: f64,
    /// The highest event position of the node's contributions applied.
    pub contributed_through: u64,
    pub members: usize,
    /// Per message type: the tier's rate per minute, and the messages this node may send now.
    pub limits: Vec<RateState>,
    /// Until when (Unix milliseconds) an operator's grant gives this node unlimited access.
    #[serde(default)]
    pub unlimited_until: Option<i64>,
    /// The grant itself, signed with the CA's key, for the node to check on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::access::SignedGrant>,
}

/// A message type's rate limit for a node, now.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RateState {
    #[serde(rename = "type")]
    pub kind: crate::envelope::MessageType,
    pub per_minute: u32,
    /// Whole messages the bucket holds now (unlimited: the rate).
    pub available: u32,
}

/// A refusal, as the hub answers it (HTTP 4xx), and as the node reports it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    pub reason: String,
    pub message: String,
}

/// The most pooled items one `sync` answer carries.
pub const MAX_SYNC_ITEMS: usize = 500;
/// The longest listing cursor a pool cursor holds.
pub const MAX_PAGE_CURSOR_BYTES: usize = 256;

/// Where a node's copy of the pool stands: the hub's pool log delivered through `after`, or,
/// while `page` is set, a copy of the pool from its listing (the log before the node's
/// position was compacted away), after which the log is followed from `after`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolCursor {
    pub after: u64,
    /// The listing's next page while copying (empty: its first page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

/// A `sync` body: the pool's items after `cursor`, at most `limit`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub cursor: PoolCursor,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One pooled item as a node copies it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PooledItem {
    /// The item's id in the pool: a node stores each id once.
    pub id: String,
    pub text: String,
    /// The contributing node: never a tenant.
    pub node: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncReply {
    pub items: Vec<PooledItem>,
    /// Where the next `sync` starts.
    pub cursor: PoolCursor,
    /// Whether more items wait after this answer.
    pub more: bool,
    pub ledger: Ledger,
}

/// A `hello` body. Empty: where the node stands (as a heartbeat). With `renew`: a new
/// certificate for the node's key, for these names.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew: Option<Renew>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    /// Names the node accepts connections under (as when it joined).
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Renewed {
    /// The node's new certificate (PEM), for the same key, signed by the federation's CA.
    pub certificate: String,
    /// When it stops being valid (Unix milliseconds).
    pub not_after: i64,
}
