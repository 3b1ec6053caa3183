//! [`SyncStore`]: the node id, events as they travel, applying another node's events, and the
//! state of each remote.

use super::*;
use continuum_core::store::{RemoteApplied, SyncStore};
use continuum_core::sync::{Facts, MemoryFact, Run, Step, SyncEvent, SyncPeer};

/// The most source events written in one store call (one run).
const MAX_RUN: usize = 500;

/// The event types sync carries, as an SQL list ([`continuum_core::sync::SYNCED_TYPES`]).
const SYNCED_SQL: &str = "('memory.created', 'memory.superseded', 'memory.forgotten', \
                          'links.strengthened', 'decision.created', 'intention.saved', 'belief.saved', \
                          'contradiction.saved', 'claim.saved', 'snapshot.saved')";

type EventRow = (i64, String, i64, u32, String, Option<String>, Option<i64>);

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_sync_event(node: &str, row: EventRow) -> Result<SyncEvent> {
    let (seq, tenant, at, v, payload, origin, origin_seq) = row;
    Ok(SyncEvent {
        origin: origin.unwrap_or_else(|| node.to_string()),
        origin_seq: origin_seq.unwrap_or(seq).max(0) as u64,
        seq: seq.max(0) as u64,
        tenant: TenantId::new(tenant)?,
        at: Timestamp(at),
        v,
        event: Event::decode(&payload, v)?,
    })
}

fn max_seq(tx: &Transaction<'_>) -> Result<i64> {
    tx.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
        .map_err(map_err)
}

/// Reads what [`continuum_core::sync::plan`] needs, in the applying transaction.
fn facts(tx: &Transaction<'_>, t: &str, events: &[SyncEvent]) -> Result<Facts> {
    let mut f = Facts::default();
    for origin in Facts::origins(events) {
        let through: Option<i64> = tx
            .prepare_cached("SELECT through FROM sync_applied WHERE tenant = ?1 AND origin = ?2")
            .and_then(|mut s| s.query_row(params![t, origin], |r| r.get(0)).optional())
            .map_err(map_err)?;
        if let Some(n) = through {
            f.applied.insert(origin, n.max(0) as u64);
        }
    }
    for id in Facts::memory_ids(events) {
        let bytes = id.as_bytes().as_slice();
        let live = tx
            .prepare_cached("SELECT 1 FROM memories WHERE +tenant = ?1 AND id = ?2")
            .and_then(|mut s| s.exists(params![t, bytes]))
            .map_err(map_err)?;
        let fact = if live {
            MemoryFact::Live
        } else {
            let gone = tx
                .prepare_cached("SELECT 1 FROM sync_forgotten WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut s| s.exists(params![t, bytes]))
                .map_err(map_err)?;
            if gone {
                MemoryFact::Forgotten
            } else {
                MemoryFact::Absent
            }
        };
        f.memories.insert(id, fact);
    }
    Ok(f)
}

#[async_trait]
impl SyncStore for SqliteStore {
    async fn node_id(&self) -> Result<String> {
        self.read(|c| {
            c.prepare_cached("SELECT node FROM sync_node WHERE id = 1")?
                .query_row([], |r| r.get(0))
        })
    }

    async fn renew_node_id(&self) -> Result<String> {
        self.write(|tx| {
            let run = || -> rusqlite::Result<String> {
                let old: String =
                    tx.query_row("SELECT node FROM sync_node WHERE id = 1", [], |r| r.get(0))?;
                let new: String = tx.query_row("SELECT lower(hex(randomblob(16)))", [], |r| r.get(0))?;
                tx.execute(
                    "INSERT INTO sync_applied (tenant, origin, through)
                     SELECT t.tenant, ?1, (SELECT max(coalesce((SELECT max(seq) FROM events), 0),
                                                 (SELECT compacted_through FROM event_head WHERE id = 1)))
                     FROM (SELECT DISTINCT tenant FROM events UNION SELECT DISTINCT tenant FROM memories) t
                     WHERE true
                     ON CONFLICT (tenant, origin) DO UPDATE SET through = max(through, excluded.through)",
                    [&old],
                )?;
                // The events written under the old id keep it: served to others they are
                // still the old node's, which the others may have applied already.
                tx.execute(
                    "UPDATE events SET origin = ?1, origin_seq = seq WHERE origin IS NULL",
                    [&old],
                )?;
                tx.execute("UPDATE sync_node SET node = ?1 WHERE id = 1", [&new])?;
                Ok(new)
            };
            run().map_err(map_err)
        })
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
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let t = tenant.as_str();
        let (through, rows) = self.read(|c| {
            let mut rows: Vec<EventRow> = c
                .prepare_cached(&format!(
                    "SELECT seq, tenant, at, v, payload, origin, origin_seq FROM events
                     WHERE tenant = ?1 AND seq > ?2 AND type IN {SYNCED_SQL}
                       AND (?4 = 0 OR origin IS NULL)
                       AND (?5 IS NULL OR coalesce(origin, ?6) <> ?5)
                     ORDER BY seq LIMIT ?3"
                ))?
                .query_map(
                    params![t, after, limit, local_only, exclude, node],
                    event_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            // A relayed group (events derived from one source event) is never split.
            if rows.len() as i64 == limit
                && let Some((last, _, _, _, _, Some(origin), Some(oseq))) = rows.last().cloned()
            {
                let more: Vec<EventRow> = c
                    .prepare_cached(&format!(
                        "SELECT seq, tenant, at, v, payload, origin, origin_seq FROM events
                         WHERE tenant = ?1 AND seq > ?2 AND origin = ?3 AND origin_seq = ?4
                           AND type IN {SYNCED_SQL} ORDER BY seq"
                    ))?
                    .query_map(params![t, last, origin, oseq], event_row)?
                    .collect::<rusqlite::Result<_>>()?;
                rows.extend(more);
            }
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
        rows.into_iter().map(|r| to_sync_event(&node, r)).collect()
    }

    async fn apply_remote(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        events: &[SyncEvent],
    ) -> Result<RemoteApplied> {
        let node = self.node_id().await?;
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        self.write(|tx| {
            let t = tenant.as_str();
            let mut f = facts(tx, t, events)?;
            let plan = continuum_core::sync::plan(&node, &mut f, events);
            for s in continuum_core::sync::runs(plan.steps, MAX_RUN) {
                let before = max_seq(tx)?;
                match s.run {
                    Run::Writes(batches) => {
                        let created: Vec<MemoryId> = batches
                            .iter()
                            .flat_map(|b| b.memories.iter().map(|w| w.memory.id))
                            .collect();
                        write::apply_batches_with(tx, tenant, rule, batches, true)?;
                        // Supersessions that arrived before the memory apply now.
                        for id in created {
                            tx.prepare_cached(
                                "UPDATE memories SET
                                    superseded_by = (SELECT max(s.by_id) FROM supersessions s
                                                     WHERE s.tenant = ?1 AND s.id = ?2),
                                    valid_until = (SELECT CASE
                                        WHEN memories.valid_until IS NULL OR memories.valid_until > min(s.at)
                                        THEN min(s.at) ELSE memories.valid_until END
                                        FROM supersessions s WHERE s.tenant = ?1 AND s.id = ?2)
                                 WHERE +tenant = ?1 AND id = ?2
                                   AND EXISTS (SELECT 1 FROM supersessions s WHERE s.tenant = ?1 AND s.id = ?2)",
                            )
                            .and_then(|mut st| st.execute(params![t, id.as_bytes().as_slice()]))
                            .map_err(map_err)?;
                        }
                    }
                    // `runs` puts every write in a run; a lone one is still a write.
                    Run::One(Step::Write(b)) => {
                        write::apply_batches(tx, tenant, rule, vec![b])?;
                    }
                    Run::One(Step::Forget(id)) => {
                        write::forget_tx(tx, tenant, &ForgetSelector::Ids(vec![id]), now)?;
                    }
                    Run::One(Step::Tombstone(id)) => {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO sync_forgotten (tenant, id) VALUES (?1, ?2)",
                        )
                        .and_then(|mut st| st.execute(params![t, id.as_bytes().as_slice()]))
                        .map_err(map_err)?;
                        write::drop_supersessions(tx, tenant, id.as_bytes().as_slice(), now)?;
                        events::log_event(tx, tenant, now, &Event::MemoryForgotten { id })?;
                    }
                    Run::One(Step::Record(r)) => {
                        if crate::records::keep_newer(tx, tenant, &r)? {
                            events::log_event(tx, tenant, r.updated_at().millis(), &r.event())?;
                        }
                    }
                    Run::One(Step::Pending { id, by, at }) => {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO supersessions (tenant, id, by_id, at)
                             VALUES (?1, ?2, ?3, ?4)",
                        )
                        .and_then(|mut st| {
                            st.execute(params![
                                t,
                                id.as_bytes().as_slice(),
                                by.as_bytes().as_slice(),
                                at.millis()
                            ])
                        })
                        .map_err(map_err)?;
                        events::log_event(
                            tx,
                            tenant,
                            at.millis(),
                            &Event::MemorySuperseded { id, by: Some(by) },
                        )?;
                    }
                }
                // Another node's events keep their times; retention counts from now.
                tx.prepare_cached(
                    "UPDATE events SET origin = ?1, origin_seq = ?2, written_at = ?4 WHERE seq > ?3",
                )
                .and_then(|mut st| {
                    st.execute(params![s.origin, s.origin_seq as i64, before, now])
                })
                .map_err(map_err)?;
            }
            for (origin, through) in &plan.applied_through {
                tx.prepare_cached(
                    "INSERT INTO sync_applied (tenant, origin, through) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, origin) DO UPDATE SET through = max(through, excluded.through)",
                )
                .and_then(|mut st| st.execute(params![t, origin, *through as i64]))
                .map_err(map_err)?;
            }
            Ok(RemoteApplied {
                applied: plan.applied,
                skipped: plan.skipped,
                change_seq: max_seq(tx)?.max(0) as u64,
            })
        })
    }

    async fn sync_peer(&self, remote: &str, tenant: &TenantId) -> Result<Option<SyncPeer>> {
        let state: Option<String> = self.read(|c| {
            c.prepare_cached("SELECT state FROM sync_peers WHERE remote = ?1 AND tenant = ?2")?
                .query_row(params![remote, tenant.as_str()], |r| r.get(0))
                .optional()
        })?;
        state
            .map(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| Error::Internal(format!("a sync state cannot be read: {e}")))
            })
            .transpose()
    }

    async fn sync_peers(&self) -> Result<Vec<SyncPeer>> {
        let states: Vec<String> = self.read(|c| {
            c.prepare_cached("SELECT state FROM sync_peers ORDER BY remote, tenant")?
                .query_map([], |r| r.get(0))?
                .collect()
        })?;
        states
            .iter()
            .map(|s| {
                serde_json::from_str(s)
                    .map_err(|e| Error::Internal(format!("a sync state cannot be read: {e}")))
            })
            .collect()
    }

    async fn put_sync_peer(&self, peer: &SyncPeer) -> Result<()> {
        let state = serde_json::to_string(peer).map_err(|e| Error::Internal(e.to_string()))?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO sync_peers (remote, tenant, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (remote, tenant) DO UPDATE SET state = excluded.state",
            )
            .and_then(|mut s| s.execute(params![peer.remote, peer.tenant.as_str(), state]))
            .map_err(map_err)?;
            Ok(())
        })
    }
}
