//! Continuum's federation protocol, without I/O.
//!
//! Nodes share anonymised knowledge (concepts, link strengths, fact snippets) through a hub.
//! This crate holds the parts every node and the hub must agree on, each testable alone:
//!
//! - [`identity`]: a node's Ed25519 key and the node id derived from it;
//! - [`envelope`]: versioned messages signed over their exact bytes, with the clock window
//!   and replay checks a receiver runs;
//! - [`anonymise`]: the conservative filter that decides what text may leave a node, and
//!   refuses what it cannot clean;
//! - [`access`]: contribute-to-access accounting, per-tier token buckets per message type, and
//!   unlimited access only as a grant signed by the hub operator's key.
//! - [`membership`]: one-time join tokens (kept as hashes, naming the CA to trust) and the
//!   hub's register of members, their tiers, ledgers and revocations;
//! - [`pki`]: the federation's CA and the mutual TLS between nodes.
//!
//! The transport (mutual TLS with certificates from the federation's CA), the hub's pool and
//! the CLI are built on these.

pub mod access;
pub mod anonymise;
pub mod envelope;
pub(crate) mod files;
pub mod hub;
pub mod identity;
pub mod membership;
pub mod node;
pub mod pki;
pub mod wire;

pub use envelope::{MessageType, Sealed, Verifier};
pub use files::folder;
pub use identity::{NodeId, NodeKey, now_ms};

/// Errors of building or reading protocol values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Malformed(String),
    TooLarge(String),
    Internal(String),
    /// The hub could not be reached, or answered something unreadable.
    Unavailable(String),
    /// The hub refused, and why.
    Refused {
        reason: String,
        message: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Malformed(m)
            | Error::TooLarge(m)
            | Error::Internal(m)
            | Error::Unavailable(m) => f.write_str(m),
            Error::Refused { reason, message } => {
                write!(f, "the hub refused ({reason}): {message}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why a received message (or a grant) was refused. Each is logged by the receiver; none
/// carries the message's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge(usize),
    Malformed(String),
    /// An envelope version this build does not read.
    Version(u64),
    /// The sender is not a member (never joined, or revoked).
    UnknownSender(NodeId),
    /// The envelope names another sender than the node the connection authenticated.
    NotThePeer {
        sender: NodeId,
        peer: NodeId,
    },
    BadSignature(NodeId),
    /// The message's time is this far behind (positive) or ahead of the receiver's clock.
    Stale {
        skew_ms: i64,
    },
    /// The sender's nonce was seen within the window.
    Replayed(NodeId),
    /// A limit of the receiver's own (the replay cache is full).
    Busy(String),
    /// Past the tier's rate for this message type; retry after this long.
    RateLimited {
        retry_after_ms: u64,
    },
}

impl Refusal {
    /// A short, stable name for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge(_) => "too_large",
            Refusal::Malformed(_) => "malformed",
            Refusal::Version(_) => "version",
            Refusal::UnknownSender(_) => "unknown_sender",
            Refusal::NotThePeer { .. } => "not_the_peer",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::Stale { .. } => "stale",
            Refusal::Replayed(_) => "replayed",
            Refusal::Busy(_) => "busy",
            Refusal::RateLimited { .. } => "rate_limited",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge(n) => write!(
                f,
                "the message is {n} bytes; at most {} are read",
                envelope::MAX_MESSAGE_BYTES
            ),
            Refusal::Malformed(m) => write!(f, "malformed message: {m}"),
            Refusal::Version(v) => write!(
                f,
                "envelope version {v} is not read by this node (it reads {})",
                envelope::PROTOCOL_VERSION
            ),
            Refusal::UnknownSender(n) => write!(f, "node {n} is not a member of this federation"),
            Refusal::NotThePeer { sender, peer } => write!(
                f,
                "the message names node {sender} but the connection is node {peer}'s"
            ),
            Refusal::BadSignature(n) => write!(f, "the signature does not match node {n}'s key"),
            Refusal::Stale { skew_ms } => write!(
                f,
                "the message's time is {:.0} s {} this node's clock (at most {} s allowed)",
                (*skew_ms as f64 / 1000.0).abs(),
                if *skew_ms >= 0 { "behind" } else { "ahead of" },
                envelope::MAX_SKEW_MS / 1000
            ),
            Refusal::Replayed(n) => write!(f, "node {n} sent this nonce before: a replay"),
            Refusal::Busy(m) => write!(f, "busy: {m}"),
            Refusal::RateLimited { retry_after_ms } => write!(
                f,
                "rate limit of this message type reached; retry in {:.1} s",
                *retry_after_ms as f64 / 1000.0
            ),
        }
    }
}

impl std::error::Error for Refusal {}
