//! Row decoding: the columns each read selects and how a row becomes a domain value.

use super::*;

pub(crate) const MEMORY_COLS: &str = "m.id, m.session, m.source, m.kind, m.content, m.metadata, m.created_at, m.content_hash, m.valid_until, m.superseded_by";

pub(crate) fn conv<T, E: std::fmt::Display>(
    col: usize,
    r: std::result::Result<T, E>,
) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}

pub(crate) fn row_memory(r: &Row<'_>) -> rusqlite::Result<Memory> {
    let id: Vec<u8> = r.get(0)?;
    let session: Option<String> = r.get(1)?;
    let source: String = r.get(2)?;
    let metadata: String = r.get(5)?;
    let superseded: Option<Vec<u8>> = r.get(9)?;
    Ok(Memory {
        id: conv(0, MemoryId::from_slice(&id))?,
        session: session
            .map(SessionId::new)
            .transpose()
            .or_else(|e| conv(1, Err(e)))?,
        source: conv(2, source.parse())?,
        kind: r.get(3)?,
        content: r.get(4)?,
        metadata: conv(5, serde_json::from_str::<Metadata>(&metadata))?,
        created_at: Timestamp(r.get(6)?),
        content_hash: r.get(7)?,
        valid_until: r.get::<_, Option<i64>>(8)?.map(Timestamp),
        superseded_by: superseded
            .map(|b| MemoryId::from_slice(&b))
            .transpose()
            .or_else(|e| conv(9, Err(e)))?,
    })
}

/// Reads `id, source, session, created_at, superseded` starting at column `at`.
pub(crate) fn row_head(r: &Row<'_>, at: usize) -> rusqlite::Result<MemoryHead> {
    let id: Vec<u8> = r.get(at)?;
    let source: String = r.get(at + 1)?;
    let session: Option<String> = r.get(at + 2)?;
    Ok(MemoryHead {
        id: conv(at, MemoryId::from_slice(&id))?,
        source: conv(at + 1, source.parse())?,
        session: session
            .map(SessionId::new)
            .transpose()
            .or_else(|e| conv(at + 2, Err(e)))?,
        created_at: Timestamp(r.get(at + 3)?),
        superseded: r.get(at + 4)?,
    })
}

pub(crate) const HEAD_COLS: &str =
    "m.id, m.source, m.session, m.created_at, m.superseded_by IS NOT NULL";

/// The memory's `metadata.speaker` when it is a string (an index column).
pub(crate) const SPEAKER_COL: &str = "CASE WHEN json_type(m.metadata, '$.speaker') = 'text' THEN json_extract(m.metadata, '$.speaker') END";

/// Reads `rid, content, concept keys (unit-separated), head…, speaker`.
pub(crate) fn index_doc(r: &Row<'_>) -> rusqlite::Result<IndexDoc> {
    let keys: Option<String> = r.get(2)?;
    Ok(IndexDoc {
        content: r.get(1)?,
        concepts: keys
            .map(|k| k.split('\u{1f}').map(str::to_string).collect())
            .unwrap_or_default(),
        head: row_head(r, 3)?,
        speaker: r.get(8)?,
    })
}

pub(crate) fn key_row(r: &Row<'_>) -> rusqlite::Result<Result<continuum_core::keys::ApiKey>> {
    let tenant: String = r.get(1)?;
    let scope: String = r.get(2)?;
    Ok((|| {
        Ok(continuum_core::keys::ApiKey {
            prefix: r.get(0).map_err(map_err)?,
            tenant: TenantId::new(tenant)?,
            scope: scope.parse()?,
            hash: r.get(3).map_err(map_err)?,
            name: r.get(4).map_err(map_err)?,
            created_at: Timestamp(r.get(5).map_err(map_err)?),
            expires_at: r.get::<_, Option<i64>>(6).map_err(map_err)?.map(Timestamp),
            revoked_at: r.get::<_, Option<i64>>(7).map_err(map_err)?.map(Timestamp),
            max_age_ms: r.get(8).map_err(map_err)?,
        })
    })())
}

pub(crate) fn row_concept(r: &Row<'_>) -> rusqlite::Result<Concept> {
    Ok(Concept {
        key: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        mentions: r.get::<_, i64>(3)?.max(0) as u64,
        first_seen: Timestamp(r.get(4)?),
        last_seen: Timestamp(r.get(5)?),
    })
}

pub(crate) fn row_link(r: &Row<'_>) -> rusqlite::Result<Link> {
    let x: String = r.get(0)?;
    let y: String = r.get(1)?;
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    Ok(Link {
        a,
        b,
        strength: r.get(2)?,
        count: r.get::<_, i64>(3)?.max(0) as u64,
        last_at: Timestamp(r.get(4)?),
    })
}
