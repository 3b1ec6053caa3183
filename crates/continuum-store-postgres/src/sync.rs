//! [`SyncStore`]: the node id, events as they travel, applying another node's events, and the
//! state of each remote (as the SQLite store does, set-based where it can be).

use super::*;
use continuum_core::store::{RemoteApplied, SyncStore};
use continuum_core::sync::{Facts, MemoryFact, Run, Step, SyncEvent, SyncPeer};

/// The most source events written in one store call (one run).
const MAX_RUN: usize = 500;

const SYNCED_SQL: &str = "('memory.created', 'memory.superseded', 'memory.forgotten', \
                          'links.strengthened', 'decision.created', 'intention.saved', 'belief.saved', \
                          'contradiction.saved', 'claim.saved', 'snapshot.saved')";

fn to_sync_event(node: &str, r: &Row) -> Result<SyncEvent> {
    let seq: i64 = r.get(0);
    let v = r.get::<_, i32>(3).max(0) as u32;
    Ok(SyncEvent {
        origin: r
            .get::<_, Option<String>>(5)
            .unwrap_or_else(|| node.to_string()),
        origin_seq: r.get::<_, Option<i64>>(6).unwrap_or(seq).max(0) as u64,
        seq: seq.max(0) as u64,
        tenant: TenantId::new(r.get::<_, String>(1))?,
        at: Timestamp(r.get(2)),
        v,
        event: Event::decode(r.get::<_, &str>(4), v)?,
    })
}

async fn head(tx: &deadpool_postgres::Transaction<'_>) -> Result<i64> {
    Ok(
        tx_query_one(tx, "SELECT seq FROM event_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?
            .get(0),
    )
}

async fn facts(
    tx: &deadpool_postgres::Transaction<'_>,
    t: &str,
    events: &[SyncEvent],
) -> Result<Facts> {
    let mut f = Facts::default();
    let origins = Facts::origins(events);
    for r in tx_query(
        tx,
        "SELECT origin, through FROM sync_applied WHERE tenant = $1 AND origin = ANY($2)",
        &[&t, &origins],
    )
    .await
    .map_err(map_err)?
    {
        f.applied.insert(r.get(0), r.get::<_, i64>(1).max(0) as u64);
    }
    let ids: Vec<Uuid> = Facts::memory_ids(events).iter().map(|i| i.0).collect();
    for r in tx_query(
        tx,
        "WITH hit AS MATERIALIZED (SELECT id, tenant FROM memories WHERE id = ANY($2))
         SELECT id FROM hit WHERE tenant = $1",
        &[&t, &ids],
    )
    .await
    .map_err(map_err)?
    {
        f.memories.insert(MemoryId(r.get(0)), MemoryFact::Live);
    }
    for r in tx_query(
        tx,
        "SELECT id FROM sync_forgotten WHERE tenant = $1 AND id = ANY($2)",
        &[&t, &ids],
    )
    .await
    .map_err(map_err)?
    {
        f.memories
            .entry(MemoryId(r.get(0)))
            .or_insert(MemoryFact::Forgotten);
    }
    Ok(f)
}

#[async_trait]
impl SyncStore for PostgresStore {
    async fn node_id(&self) -> Result<String> {
        let client = self.client().await?;
        Ok(
            cached_query_one(&client, "SELECT node FROM sync_node WHERE id = 1", &[])
                .await
                .map_err(map_err)?
                .get(0),
        )
    }

    async fn renew_node_id(&self) -> Result<String> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let old: String = tx
            .query_one("SELECT node FROM sync_node WHERE id = 1 FOR UPDATE", &[])
            .await
            .map_err(map_err)?
            .get(0);
        let new: String = tx
            .query_one("SELECT md5(random()::text || clock_timestamp()::text)", &[])
            .await
            .map_err(map_err)?
            .get(0);
        tx.execute(
            "INSERT INTO sync_applied (tenant, origin, through)
             SELECT t.tenant, $1, (SELECT GREATEST(seq, compacted_through) FROM event_head WHERE id = 1)
             FROM (SELECT DISTINCT tenant FROM events UNION SELECT DISTINCT tenant FROM memories) t
             ON CONFLICT (tenant, origin) DO UPDATE SET through = GREATEST(sync_applied.through, excluded.through)",
            &[&old],
        )
        .await
        .map_err(map_err)?;
        // The events written under the old id keep it: served to others they are still the
        // old node's, which the others may have applied already.
        tx.execute(
            "UPDATE events SET origin = $1, origin_seq = seq WHERE origin IS NULL",
            &[&old],
        )
        .await
        .map_err(map_err)?;
        tx.execute("UPDATE sync_node SET node = $1 WHERE id = 1", &[&new])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(new)
    }

    async fn sync_events(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
        local_only: bool,
        exclude: Option<&str>,
    ) -> Result<Vec<SyncEvent>> {
        let node = self.node_id().await?;
        let client = self.client().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let t = tenant.as_str();
        let mut rows = cached_query(
            &client,
            &format!(
                "SELECT seq, tenant, at, v, payload, origin, origin_seq FROM events
                 WHERE tenant = $1 AND seq > $2 AND type IN {SYNCED_SQL}
                   AND (NOT $4 OR origin IS NULL)
                   AND ($5::text IS NULL OR coalesce(origin, $6) <> $5)
                 ORDER BY seq LIMIT $3"
            ),
            &[&t, &after, &limit, &local_only, &exclude, &node],
        )
        .await
        .map_err(map_err)?;
        if rows.len() as i64 == limit
            && let Some(last) = rows.last()
            && let (Some(origin), Some(oseq)) = (
                last.get::<_, Option<String>>(5),
                last.get::<_, Option<i64>>(6),
            )
        {
            let seq: i64 = last.get(0);
            let more = cached_query(
                &client,
                &format!(
                    "SELECT seq, tenant, at, v, payload, origin, origin_seq FROM events
                     WHERE tenant = $1 AND seq > $2 AND origin = $3 AND origin_seq = $4
                       AND type IN {SYNCED_SQL} ORDER BY seq"
                ),
                &[&t, &seq, &origin, &oseq],
            )
            .await
            .map_err(map_err)?;
            rows.extend(more);
        }
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
        rows.iter().map(|r| to_sync_event(&node, r)).collect()
    }

    async fn apply_remote(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        events: &[SyncEvent],
    ) -> Result<RemoteApplied> {
        let node = self.node_id().await?;
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        let t = tenant.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, t).await?;
        let mut f = facts(&tx, t, events).await?;
        let plan = continuum_core::sync::plan(&node, &mut f, events);
        for s in continuum_core::sync::runs(plan.steps, MAX_RUN) {
            // Another tenant's writer may commit events meanwhile: tag this tenant's only
            // (the tenant lock keeps its other writers out).
            let before = head(&tx).await?;
            match s.run {
                Run::Writes(batches) => {
                    let created: Vec<Uuid> = batches
                        .iter()
                        .flat_map(|b| b.memories.iter().map(|w| w.memory.id.0))
                        .collect();
                    apply_batches_with(&tx, tenant, rule, batches, true).await?;
                    // Supersessions that arrived before the memory apply now (found by the
                    // supersessions key first: usually there are none).
                    let waiting: Vec<Uuid> = if created.is_empty() {
                        Vec::new()
                    } else {
                        tx_query(
                            &tx,
                            "SELECT DISTINCT id FROM supersessions WHERE tenant = $1 AND id = ANY($2)",
                            &[&t, &created],
                        )
                        .await
                        .map_err(map_err)?
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                    };
                    for id in waiting {
                        tx_execute(
                            &tx,
                            "UPDATE memories m SET
                                superseded_by = (SELECT s.by_id FROM supersessions s
                                                 WHERE s.tenant = $1 AND s.id = $2
                                                 ORDER BY s.by_id DESC LIMIT 1),
                                valid_until = LEAST(m.valid_until, (SELECT min(s.at) FROM supersessions s
                                                    WHERE s.tenant = $1 AND s.id = $2))
                             WHERE m.id = $2 AND m.tenant = $1",
                            &[&t, &id],
                        )
                        .await
                        .map_err(map_err)?;
                    }
                }
                // `runs` puts every write in a run; a lone one is still a write.
                Run::One(Step::Write(b)) => {
                    apply_batches(&tx, tenant, rule, vec![b]).await?;
                }
                Run::One(Step::Forget(id)) => {
                    graph::forget_tx(&tx, tenant, &ForgetSelector::Ids(vec![id]), now).await?;
                }
                Run::One(Step::Tombstone(id)) => {
                    tx_execute(
                        &tx,
                        "INSERT INTO sync_forgotten (tenant, id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&t, &id.0],
                    )
                    .await
                    .map_err(map_err)?;
                    let mut ev = EventRows::default();
                    graph::drop_supersessions(&tx, t, &[id.0], now, &mut ev).await?;
                    ev.push(now, Event::MemoryForgotten { id });
                    ev.insert(&tx, t).await?;
                }
                Run::One(Step::Record(r)) => {
                    if crate::records::keep_newer(&tx, tenant, &r).await? {
                        let mut ev = EventRows::default();
                        ev.push(r.updated_at().millis(), r.event());
                        ev.insert(&tx, t).await?;
                    }
                }
                Run::One(Step::Pending { id, by, at }) => {
                    tx_execute(
                        &tx,
                        "INSERT INTO supersessions (tenant, id, by_id, at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[&t, &id.0, &by.0, &at.millis()],
                    )
                    .await
                    .map_err(map_err)?;
                    let mut ev = EventRows::default();
                    ev.push(at.millis(), Event::MemorySuperseded { id, by: Some(by) });
                    ev.insert(&tx, t).await?;
                }
            }
            tx_execute(
                &tx,
                // Another node's events keep their times; retention counts from now.
                "UPDATE events SET origin = $1, origin_seq = $2, written_at = $5
                 WHERE seq > $3 AND tenant = $4",
                &[&s.origin, &(s.origin_seq as i64), &before, &t, &now],
            )
            .await
            .map_err(map_err)?;
        }
        for (origin, through) in &plan.applied_through {
            tx_execute(
                &tx,
                "INSERT INTO sync_applied (tenant, origin, through) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, origin) DO UPDATE SET
                    through = GREATEST(sync_applied.through, excluded.through)",
                &[&t, origin, &(*through as i64)],
            )
            .await
            .map_err(map_err)?;
        }
        let change_seq = head(&tx).await?.max(0) as u64;
        tx.commit().await.map_err(map_err)?;
        Ok(RemoteApplied {
            applied: plan.applied,
            skipped: plan.skipped,
            change_seq,
        })
    }

    async fn sync_peer(&self, remote: &str, tenant: &TenantId) -> Result<Option<SyncPeer>> {
        let client = self.client().await?;
        let row = cached_query(
            &client,
            "SELECT state FROM sync_peers WHERE remote = $1 AND tenant = $2",
            &[&remote, &tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        row.first()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| Error::Internal(format!("a sync state cannot be read: {e}")))
            })
            .transpose()
    }

    async fn sync_peers(&self) -> Result<Vec<SyncPeer>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT state FROM sync_peers ORDER BY remote, tenant",
            &[],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| Error::Internal(format!("a sync state cannot be read: {e}")))
            })
            .collect()
    }

    async fn put_sync_peer(&self, peer: &SyncPeer) -> Result<()> {
        let state = serde_json::to_string(peer).map_err(|e| Error::Internal(e.to_string()))?;
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO sync_peers (remote, tenant, state) VALUES ($1, $2, $3)
             ON CONFLICT (remote, tenant) DO UPDATE SET state = excluded.state",
            &[&peer.remote, &peer.tenant.as_str(), &state.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
