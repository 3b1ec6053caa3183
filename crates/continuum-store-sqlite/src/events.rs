//! The event log: appending and scrubbing events inside write transactions, and [`EventLog`].

use super::*;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Appends an event to the log, in the caller's transaction (so it commits or rolls back with
/// the change it describes). One writer at a time: the sequence is gap-free in commit order.
pub(crate) fn log_event(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    at: i64,
    event: &Event,
) -> Result<()> {
    insert_event(
        tx,
        tenant.as_str(),
        at,
        event.kind(),
        event.subject().map(|id| id.to_string()).as_deref(),
        &event.encode(),
    )
}

/// Events gathered during a write and appended at its end, several rows per statement (one
/// statement per event costs a statement's setup, an `AUTOINCREMENT` read and write, and its
/// cursors' teardown each time). Order is kept: the sequence follows the pushes.
/// Payloads sealed by the engine are borrowed from the write, not copied.
#[derive(Default)]
pub(crate) struct PendingEvents<'w> {
    rows: Vec<(i64, &'static str, Option<String>, Cow<'w, str>)>,
}

/// Rows per `INSERT` of [`PendingEvents::append`] (6 parameters each).
const EVENT_ROWS_PER_INSERT: usize = 32;

/// The `INSERT` of [`EVENT_ROWS_PER_INSERT`] events.
static INSERT_EVENT_ROWS: LazyLock<String> = LazyLock::new(|| {
    let rows = vec!["(?,?,?,?,?,?)"; EVENT_ROWS_PER_INSERT].join(",");
    format!("INSERT INTO events (tenant, at, type, v, subject, payload) VALUES {rows}")
});

impl<'w> PendingEvents<'w> {
    pub(crate) fn push(&mut self, at: i64, event: &Event) {
        self.rows.push((
            at,
            event.kind(),
            event.subject().map(|id| id.to_string()),
            Cow::Owned(event.encode()),
        ));
    }

    /// A `memory.created` whose payload is already encoded.
    pub(crate) fn push_created(&mut self, at: i64, w: &'w continuum_core::store::MemoryWrite) {
        self.rows.push((
            at,
            "memory.created",
            Some(w.memory.id.to_string()),
            w.created_payload(),
        ));
    }

    /// Appends the gathered events to the log, in the order they were pushed.
    pub(crate) fn append(self, tx: &Transaction<'_>, tenant: &TenantId) -> Result<()> {
        let t = tenant.as_str();
        let mut chunks = self.rows.chunks_exact(EVENT_ROWS_PER_INSERT);
        if chunks.len() > 0 {
            let mut stmt = tx.prepare_cached(&INSERT_EVENT_ROWS).map_err(map_err)?;
            for chunk in &mut chunks {
                let mut p: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(6 * chunk.len());
                for (at, kind, subject, payload) in chunk {
                    p.extend([
                        &t as &dyn rusqlite::ToSql,
                        at,
                        kind,
                        &EVENT_VERSION,
                        subject,
                        payload,
                    ]);
                }
                stmt.execute(p.as_slice()).map_err(map_err)?;
            }
        }
        for (at, kind, subject, payload) in chunks.remainder() {
            insert_event(tx, t, *at, kind, subject.as_deref(), payload)?;
        }
        Ok(())
    }
}

fn insert_event(
    tx: &Transaction<'_>,
    tenant: &str,
    at: i64,
    kind: &str,
    subject: Option<&str>,
    payload: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (tenant, at, type, v, subject, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![tenant, at, kind, EVENT_VERSION, subject, payload]))
    .map_err(map_err)?;
    Ok(())
}

/// Records when the events after `before` were written, where that is not their own time
/// (imported history, another node's events): retention counts from it.
pub(crate) fn stamp_written(tx: &Transaction<'_>, before: i64, written_at: i64) -> Result<()> {
    tx.prepare_cached("UPDATE events SET written_at = ?1 WHERE seq > ?2")
        .and_then(|mut s| s.execute(params![written_at, before]))
        .map_err(map_err)?;
    Ok(())
}

/// Removes a forgotten memory's text from the events that carry it (the ids stay).
pub(crate) fn scrub_events(tx: &Transaction<'_>, tenant: &str, id: &MemoryId) -> Result<()> {
    tx.prepare_cached(
        "UPDATE events SET payload = CASE type
            WHEN 'memory.created' THEN json_set(payload, '$.memory', json('null'), '$.concepts', json('[]'))
            ELSE json_set(payload, '$.decision', json('null')) END
         WHERE subject = ?1 AND tenant = ?2 AND type IN ('memory.created', 'decision.created')",
    )
    .and_then(|mut s| s.execute(params![id.to_string(), tenant]))
    .map_err(map_err)?;
    Ok(())
}

/// Removes the names of concepts that a forget deleted (no memory mentions them any more)
/// from the tenant's past events: their `concept.created` keeps its kind with an empty key and
/// name, and links naming them leave `links.strengthened`. One pass over the tenant's
/// concept events.
pub(crate) fn scrub_concepts(tx: &Transaction<'_>, tenant: &str, keys: &[String]) -> Result<()> {
    let keys = serde_json::to_string(keys).map_err(|e| Error::Internal(e.to_string()))?;
    tx.prepare_cached(
        "UPDATE events SET payload = json_set(payload, '$.key', '', '$.name', '')
         WHERE tenant = ?1 AND type = 'concept.created'
           AND json_extract(payload, '$.key') IN (SELECT value FROM json_each(?2))",
    )
    .and_then(|mut s| s.execute(params![tenant, keys]))
    .map_err(map_err)?;
    tx.prepare_cached(
        "UPDATE events SET payload = json_set(payload, '$.links', json((
             SELECT json_group_array(json(l.value)) FROM json_each(payload, '$.links') AS l
             WHERE json_extract(l.value, '$.a') NOT IN (SELECT value FROM json_each(?2))
               AND json_extract(l.value, '$.b') NOT IN (SELECT value FROM json_each(?2)))))
         WHERE tenant = ?1 AND type = 'links.strengthened'
           AND EXISTS (SELECT 1 FROM json_each(payload, '$.links') AS l
                       WHERE json_extract(l.value, '$.a') IN (SELECT value FROM json_each(?2))
                          OR json_extract(l.value, '$.b') IN (SELECT value FROM json_each(?2)))",
    )
    .and_then(|mut s| s.execute(params![tenant, keys]))
    .map_err(map_err)?;
    tx.prepare_cached(
        "UPDATE events SET payload = json_set(payload, '$.keys', json((
             SELECT json_group_array(k.value) FROM json_each(payload, '$.keys') AS k
             WHERE k.value NOT IN (SELECT value FROM json_each(?2)))))
         WHERE tenant = ?1 AND type = 'concepts.changed'
           AND EXISTS (SELECT 1 FROM json_each(payload, '$.keys') AS k
                       WHERE k.value IN (SELECT value FROM json_each(?2)))",
    )
    .and_then(|mut s| s.execute(params![tenant, keys]))
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let (through, rows): (i64, Vec<(i64, String, i64, u32, String)>) = self.read(|c| {
            let map = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
            let rows: Vec<_> = match scope {
                EventScope::Tenant(t) => c
                    .prepare_cached(
                        "SELECT seq, tenant, at, v, payload FROM events
                         WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    )?
                    .query_map(params![t.as_str(), after, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
                EventScope::All => c
                    .prepare_cached(
                        "SELECT seq, tenant, at, v, payload FROM events
                         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            // Read after the events: a compaction that ran before the read above shows here,
            // so a page that may have lost events is never returned as complete.
            let through = c
                .prepare_cached("SELECT compacted_through FROM event_head WHERE id = 1")?
                .query_row([], |r| r.get::<_, i64>(0))?;
            Ok((through, rows))
        })?;
        if after < through {
            return Err(continuum_core::event::compacted_error(
                after.max(0) as u64,
                through.max(0) as u64,
            ));
        }
        rows.into_iter()
            .map(|(seq, tenant, at, v, payload)| {
                Ok(EventRecord {
                    seq: seq.max(0) as u64,
                    tenant: TenantId::new(tenant)?,
                    at: Timestamp(at),
                    v,
                    event: Event::decode(&payload, v)?,
                })
            })
            .collect()
    }

    async fn event_head(&self) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT max(coalesce((SELECT max(seq) FROM events), 0), compacted_through)
                 FROM event_head WHERE id = 1",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
    }

    async fn compacted_through(&self) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached("SELECT compacted_through FROM event_head WHERE id = 1")?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
    }

    async fn compact_events(&self, through: u64) -> Result<u64> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        self.write(|tx| {
            let n = tx
                .execute("DELETE FROM events WHERE seq <= ?1", [through])
                .map_err(map_err)?;
            tx.execute(
                "UPDATE event_head SET compacted_through = max(compacted_through, ?1) WHERE id = 1",
                [through],
            )
            .map_err(map_err)?;
            Ok(n as u64)
        })
    }

    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>> {
        self.read(|c| {
            c.prepare_cached("SELECT min(seq) FROM events WHERE coalesce(written_at, at) >= ?1")?
                .query_row([at.millis()], |r| r.get::<_, Option<i64>>(0))
                .map(|n| n.map(|n| n.max(0) as u64))
        })
    }

    async fn event_cursors(&self) -> Result<Vec<continuum_core::event::EventCursor>> {
        self.read(|c| {
            c.prepare_cached("SELECT name, position, updated_at FROM event_cursors ORDER BY name")?
                .query_map([], |r| {
                    Ok(continuum_core::event::EventCursor {
                        name: r.get(0)?,
                        position: r.get::<_, i64>(1)?.max(0) as u64,
                        updated_at: Timestamp(r.get(2)?),
                    })
                })?
                .collect()
        })
    }

    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO event_cursors (name, position, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                    updated_at = excluded.updated_at",
                params![name, position, at.millis()],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn delete_event_cursor(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            tx.execute("DELETE FROM event_cursors WHERE name = ?1", [name])
                .map(|n| n > 0)
                .map_err(map_err)
        })
    }

    async fn latest_event(&self, tenant: &TenantId) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT max(coalesce((SELECT max(seq) FROM events WHERE tenant = ?1), 0),
                            (SELECT compacted_through FROM event_head WHERE id = 1))",
            )?
            .query_row([tenant.as_str()], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
    }

    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64> {
        self.write(|tx| {
            for e in events {
                log_event(tx, tenant, at.millis(), e)?;
            }
            tx.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(map_err)
        })
    }
}
