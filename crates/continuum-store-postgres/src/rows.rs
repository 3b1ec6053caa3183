//! Row decoding: the columns each read selects and how a row becomes a domain value.

use super::*;

pub(crate) const MEMORY_COLS: &str = "m.id, m.session, m.source, m.kind, m.content, m.metadata::text, m.created_at, m.content_hash, m.valid_until, m.superseded_by";
pub(crate) const HEAD_COLS: &str =
    "m.id, m.source, m.session, m.created_at, m.superseded_by IS NOT NULL";

pub(crate) fn bad_row(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} is invalid: {e}"))
}

pub(crate) fn row_memory(r: &Row) -> Result<Memory> {
    let session: Option<String> = r.get(1);
    let source: String = r.get(2);
    let metadata: String = r.get(5);
    Ok(Memory {
        id: MemoryId(r.get::<_, Uuid>(0)),
        session: session.map(SessionId::new).transpose()?,
        source: source.parse()?,
        kind: r.get(3),
        content: r.get(4),
        metadata: serde_json::from_str::<Metadata>(&metadata)
            .map_err(|e| bad_row("metadata", e))?,
        created_at: Timestamp(r.get(6)),
        content_hash: r.get(7),
        valid_until: r.get::<_, Option<i64>>(8).map(Timestamp),
        superseded_by: r.get::<_, Option<Uuid>>(9).map(MemoryId),
    })
}

/// Reads `id, source, session, created_at, superseded` starting at column `at`.
pub(crate) fn row_head(r: &Row, at: usize) -> Result<MemoryHead> {
    let source: String = r.get(at + 1);
    let session: Option<String> = r.get(at + 2);
    Ok(MemoryHead {
        id: MemoryId(r.get::<_, Uuid>(at)),
        source: source.parse()?,
        session: session.map(SessionId::new).transpose()?,
        created_at: Timestamp(r.get(at + 3)),
        superseded: r.get(at + 4),
    })
}

pub(crate) fn key_row(r: &Row) -> Result<continuum_core::keys::ApiKey> {
    Ok(continuum_core::keys::ApiKey {
        prefix: r.get(0),
        tenant: TenantId::new(r.get::<_, String>(1))?,
        scope: r.get::<_, String>(2).parse()?,
        hash: r.get(3),
        name: r.get(4),
        created_at: Timestamp(r.get(5)),
        expires_at: r.get::<_, Option<i64>>(6).map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>(7).map(Timestamp),
        max_age_ms: r.get(8),
    })
}

pub(crate) fn row_concept(r: &Row) -> Concept {
    Concept {
        key: r.get(0),
        name: r.get(1),
        kind: r.get(2),
        mentions: r.get::<_, i64>(3).max(0) as u64,
        first_seen: Timestamp(r.get(4)),
        last_seen: Timestamp(r.get(5)),
    }
}

pub(crate) fn link(x: String, y: String, strength: f64, count: i64, last_at: i64) -> Link {
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    Link {
        a,
        b,
        strength,
        count: count.max(0) as u64,
        last_at: Timestamp(last_at),
    }
}
