//! The reads of a consistent snapshot, inside one read transaction.

use super::*;

/// The reads of [`MemoryStore::snapshot`], inside the caller's read transaction. A sink error
/// is returned inside the outer `Ok`, so that the transaction still ends.
pub(crate) fn snapshot_tx(
    c: &Connection,
    t: &str,
    sink: SnapshotSink<'_>,
) -> rusqlite::Result<Result<u64>> {
    let position: i64 =
        c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
    macro_rules! emit {
        ($item:expr) => {
            if let Err(e) = sink($item) {
                return Ok(Err(e));
            }
        };
    }
    emit!(SnapshotItem::Begin {
        position: position.max(0) as u64
    });
    let mut concepts = c.prepare_cached(
        "SELECT k.key, k.name, k.kind FROM mentions mn JOIN concepts k ON k.cid = mn.cid
         WHERE mn.rid = ?1 ORDER BY k.key",
    )?;
    let mut memories = c.prepare(&format!(
        "SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = ?1 ORDER BY m.created_at, m.rid"
    ))?;
    let mut rows = memories.query([t])?;
    while let Some(r) = rows.next()? {
        let memory = row_memory(r)?;
        let rid: i64 = r.get(10)?;
        let mentioned = concepts
            .query_map([rid], |r| {
                Ok(ExtractedConcept {
                    key: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        emit!(SnapshotItem::Memory {
            memory,
            concepts: mentioned
        });
    }
    let mut links = c.prepare(
        "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
         JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
         WHERE l.tenant = ?1 ORDER BY l.a, l.b",
    )?;
    let mut rows = links.query([t])?;
    while let Some(r) = rows.next()? {
        emit!(SnapshotItem::Link(row_link(r)?));
    }
    let mut decisions = c.prepare(
        "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = ?1
         ORDER BY created_at, id",
    )?;
    let mut rows = decisions.query([t])?;
    while let Some(r) = rows.next()? {
        let id: Vec<u8> = r.get(0)?;
        let mid: Vec<u8> = r.get(1)?;
        emit!(SnapshotItem::Decision(Decision {
            id: conv(0, MemoryId::from_slice(&id))?,
            memory_id: conv(1, MemoryId::from_slice(&mid))?,
            text: r.get(2)?,
            created_at: Timestamp(r.get(3)?),
        }));
    }
    let mut records =
        c.prepare("SELECT kind, body FROM records WHERE tenant = ?1 ORDER BY created_at, id")?;
    let mut rows = records.query([t])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let body: String = r.get(1)?;
        match continuum_core::reflection::Record::decode(&kind, &body) {
            Ok(rec) => emit!(SnapshotItem::Record(rec)),
            Err(e) => return Ok(Err(e)),
        }
    }
    let mut vectors = c.prepare(
        "SELECT m.id, v.model, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
         WHERE v.tenant = ?1 ORDER BY v.model, v.seq",
    )?;
    let mut rows = vectors.query([t])?;
    while let Some(r) = rows.next()? {
        let id: Vec<u8> = r.get(0)?;
        let dim: i64 = r.get(2)?;
        let bytes: Vec<u8> = r.get(3)?;
        emit!(SnapshotItem::Vector {
            id: conv(0, MemoryId::from_slice(&id))?,
            model: r.get(1)?,
            vector: conv(
                3,
                continuum_core::embed::decode_vector(&bytes, dim.max(0) as usize)
            )?,
        });
    }
    Ok(Ok(position.max(0) as u64))
}
