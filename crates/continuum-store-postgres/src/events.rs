//! The event log: positions from `event_head`, appending and scrubbing events inside write
//! transactions, and [`EventLog`].

use super::*;

/// Events gathered during a write, appended in one statement at its end.
#[derive(Default)]
pub(crate) struct EventRows {
    at: Vec<i64>,
    kind: Vec<&'static str>,
    subject: Vec<Option<String>>,
    payload: Vec<String>,
    /// When these events are written, where that is not their own time (imported history,
    /// another node's events): retention counts from it.
    written_at: Option<i64>,
}

impl EventRows {
    pub(crate) fn written_at(&mut self, at: i64) {
        self.written_at = Some(at);
    }

    pub(crate) fn push(&mut self, at: i64, event: Event) {
        self.at.push(at);
        self.kind.push(event.kind());
        self.subject.push(event.subject().map(|id| id.to_string()));
        self.payload.push(event.encode());
    }

    /// A `memory.created` whose payload is already encoded.
    pub(crate) fn push_created(&mut self, at: i64, w: &continuum_core::store::MemoryWrite) {
        self.at.push(at);
        self.kind.push("memory.created");
        self.subject.push(Some(w.memory.id.to_string()));
        self.payload.push(w.created_payload().into_owned());
    }

    /// Appends the events and returns the log's position after them. The positions come from
    /// the one-row `event_head`, whose row lock is held from here to commit: writers of
    /// different tenants take turns for this last step only, so the sequence is gap-free
    /// (a rollback returns the numbers) and in commit order (no later number commits first).
    pub(crate) async fn insert(
        self,
        tx: &deadpool_postgres::Transaction<'_>,
        tenant: &str,
    ) -> Result<u64> {
        if self.at.is_empty() {
            return Ok(0);
        }
        let n = self.at.len() as i64;
        let kinds: Vec<&str> = self.kind;
        let row = tx_query_one(
            tx,
            "WITH head AS (UPDATE event_head SET seq = seq + $2 WHERE id = 1 RETURNING seq),
                  ins AS (
                INSERT INTO events (seq, tenant, at, type, v, subject, payload, written_at)
                SELECT head.seq - $2 + t.ord, $1, t.at, t.type, $7, t.subject, t.payload, $8::bigint
                FROM head, UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
                    WITH ORDINALITY AS t(at, type, subject, payload, ord))
             SELECT seq FROM head",
            &[
                &tenant,
                &n,
                &self.at,
                &kinds,
                &self.subject,
                &self.payload,
                &(EVENT_VERSION as i32),
                &self.written_at,
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }
}

/// Removes forgotten memories' text from the events that carry it (the ids stay).
pub(crate) async fn scrub_events(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &str,
    ids: &[String],
) -> Result<()> {
    tx_execute(
        tx,
        "UPDATE events SET payload = (CASE type
            WHEN 'memory.created' THEN payload::jsonb || '{\"memory\": null, \"concepts\": []}'::jsonb
            ELSE payload::jsonb || '{\"decision\": null}'::jsonb END)::text
         WHERE subject = ANY($1) AND tenant = $2 AND type IN ('memory.created', 'decision.created')",
        &[&ids, &tenant],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Removes the names of concepts that a forget deleted from the tenant's past events (as the
/// SQLite store does): `concept.created` keeps an empty key and name, links naming them leave
/// `links.strengthened`, and `concepts.changed` drops them.
pub(crate) async fn scrub_concepts(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &str,
    keys: &[String],
) -> Result<()> {
    for sql in [
        "UPDATE events SET payload = (payload::jsonb || '{\"key\": \"\", \"name\": \"\"}'::jsonb)::text
         WHERE tenant = $1 AND type = 'concept.created' AND payload::jsonb->>'key' = ANY($2)",
        "UPDATE events SET payload = (payload::jsonb || jsonb_build_object('links', COALESCE((
             SELECT jsonb_agg(l) FROM jsonb_array_elements(payload::jsonb->'links') AS l
             WHERE NOT (l->>'a' = ANY($2) OR l->>'b' = ANY($2))), '[]'::jsonb)))::text
         WHERE tenant = $1 AND type = 'links.strengthened'
           AND EXISTS (SELECT 1 FROM jsonb_array_elements(payload::jsonb->'links') AS l
                       WHERE l->>'a' = ANY($2) OR l->>'b' = ANY($2))",
        "UPDATE events SET payload = (payload::jsonb || jsonb_build_object('keys', COALESCE((
             SELECT jsonb_agg(k) FROM jsonb_array_elements_text(payload::jsonb->'keys') AS k
             WHERE NOT k = ANY($2)), '[]'::jsonb)))::text
         WHERE tenant = $1 AND type = 'concepts.changed'
           AND jsonb_typeof(payload::jsonb->'keys') = 'array'
           AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(payload::jsonb->'keys') AS k
                       WHERE k = ANY($2))",
    ] {
        tx_execute(tx, sql, &[&tenant, &keys])
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let client = self.client().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let rows = match scope {
            EventScope::Tenant(t) => {
                cached_query(
                    &client,
                    "SELECT seq, tenant, at, v, payload FROM events
                     WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&t.as_str(), &after, &limit],
                )
                .await
            }
            EventScope::All => {
                cached_query(
                    &client,
                    "SELECT seq, tenant, at, v, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &limit],
                )
                .await
            }
        }
        .map_err(map_err)?;
        // Read after the events: a compaction that ran before the read above shows here, so
        // a page that may have lost events is never returned as complete.
        let through = cached_query_one(
            &client,
            "SELECT compacted_through FROM event_head WHERE id = 1",
            &[],
        )
        .await
        .map_err(map_err)?
        .get::<_, i64>(0);
        if after < through {
            return Err(continuum_core::event::compacted_error(
                after.max(0) as u64,
                through.max(0) as u64,
            ));
        }
        rows.iter()
            .map(|r| {
                let v = r.get::<_, i32>(3).max(0) as u32;
                Ok(EventRecord {
                    seq: r.get::<_, i64>(0).max(0) as u64,
                    tenant: TenantId::new(r.get::<_, String>(1))?,
                    at: Timestamp(r.get(2)),
                    v,
                    event: Event::decode(r.get::<_, &str>(4), v)?,
                })
            })
            .collect()
    }

    async fn latest_event(&self, tenant: &TenantId) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT GREATEST(coalesce((SELECT max(seq) FROM events WHERE tenant = $1), 0),
                             (SELECT compacted_through FROM event_head WHERE id = 1))",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn event_head(&self) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(&client, "SELECT seq FROM event_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn compacted_through(&self) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT compacted_through FROM event_head WHERE id = 1",
            &[],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn compact_events(&self, through: u64) -> Result<u64> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = tx_execute(&tx, "DELETE FROM events WHERE seq <= $1", &[&through])
            .await
            .map_err(map_err)?;
        tx_execute(
            &tx,
            "UPDATE event_head SET compacted_through = GREATEST(compacted_through, $1) WHERE id = 1",
            &[&through],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT min(seq) FROM events WHERE coalesce(written_at, at) >= $1",
            &[&at.millis()],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, Option<i64>>(0).map(|n| n.max(0) as u64))
    }

    async fn event_cursors(&self) -> Result<Vec<continuum_core::event::EventCursor>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT name, position, updated_at FROM event_cursors ORDER BY name",
            &[],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| continuum_core::event::EventCursor {
                name: r.get(0),
                position: r.get::<_, i64>(1).max(0) as u64,
                updated_at: Timestamp(r.get(2)),
            })
            .collect())
    }

    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO event_cursors (name, position, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                updated_at = excluded.updated_at",
            &[&name, &position, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_event_cursor(&self, name: &str) -> Result<bool> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "DELETE FROM event_cursors WHERE name = $1 RETURNING name",
            &[&name],
        )
        .await
        .map_err(map_err)?;
        Ok(!rows.is_empty())
    }

    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut rows = EventRows::default();
        for e in events {
            rows.push(at.millis(), e.clone());
        }
        let seq = rows.insert(&tx, tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
    }
}
