//! The domain of Continuum, free of I/O.
//!
//! This crate holds what every backend and every interface agrees on: the types of the domain
//! (tenants, memories, sessions, concepts, links, decisions, the typed event log), the deterministic
//! concept extractor, the Hebbian link rule, ranking and fusion of recall signals, the rendering
//! of the context block, and the [`MemoryStore`] trait that storage backends implement.
//!
//! It is not a store, a server or a runtime: it depends on no async runtime, SQL driver or HTTP
//! stack (CI checks this with `cargo tree -p continuum-core -e normal`).

pub mod account;
pub mod audit;
pub mod context;
pub mod embed;
pub mod error;
pub mod event;
pub mod extract;
pub mod hebbian;
pub mod ids;
pub mod keys;
pub mod limits;
pub mod memory;
pub mod migration;
pub mod rank;
pub mod reflection;
pub mod store;
pub mod sync;
pub mod text;
pub mod time;
pub mod webhook;

pub use error::{Error, Result};
pub use event::{Event, EventRecord, EventScope};
pub use ids::{MemoryId, SessionId, TenantId};
pub use memory::{Memory, NewMemory, Source};
pub use store::{
    EventLog, KeyStore, MemoryGraph, MemoryStore, SyncStore, VectorSearch, VectorStore,
    WebhookStore,
};
pub use time::{Clock, SystemClock, Timestamp};

/// The bytes of a hex text (either case), or `None` when it is not one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Lower-case hex SHA-256 of `bytes`: content hashes, API key hashes, migration checksums.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}
