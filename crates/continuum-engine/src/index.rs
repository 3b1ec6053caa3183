//! Keeping the derived in-memory indexes ([`continuum_index::TextIndex`]) in step with the
//! store: read from its file beside the store (`index_file`) or built from the store on a
//! tenant's first read, then caught up from the event log
//! before every read, so writes from this process and from other processes are all seen. A
//! `memory.created` carries the memory and its concepts, so new memories are indexed from the
//! events alone; only a supersession (whose new head the index needs) reads the store.

use crate::Engine;
use continuum_core::event::{Event, EventScope};
use continuum_core::store::{IndexDoc, MemoryHead};
use continuum_core::{MemoryId, Result, TenantId};
use continuum_index::TextIndex;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Changes caught up one at a time before a rebuild is cheaper.
const MAX_CATCH_UP: usize = 20_000;
/// Share of forgotten slots that triggers a rebuild.
const MAX_DEAD_RATIO: f64 = 0.3;
const SCAN_PAGE: usize = 5_000;

/// The per-tenant indexes of one engine (shared by its clones).
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) slots: Mutex<HashMap<TenantId, Arc<RwLock<Option<TextIndex>>>>>,
    /// Per tenant, the turn of loading or building its index when none is held yet.
    pub(crate) first_loads: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Per tenant, changes applied to its index since its file was written or read (see
    /// `index_file`).
    pub(crate) unsaved: Mutex<HashMap<TenantId, usize>>,
    /// Tenants whose index file is being written in the background.
    pub(crate) saving: Mutex<std::collections::HashSet<TenantId>>,
    /// Per tenant, when its index was last read (for `max_resident_bytes`, see `resident`).
    pub(crate) used: Mutex<HashMap<TenantId, std::time::Instant>>,
    /// What `release_memory_when_quiet` saw last.
    pub(crate) quiet: Mutex<Option<crate::resident::Quiet>>,
    /// Per tenant, how this process got its index (`file` or `built`) and in how many ms.
    pub(crate) origins: Mutex<HashMap<TenantId, (&'static str, u64)>>,
    /// Index files are written by background tasks (servers) rather than inline.
    pub(crate) background_saves: std::sync::atomic::AtomicBool,
    /// Per tenant and model, how many memories have a vector, and when that was read, for
    /// stores that search vectors themselves (the index then holds none to count).
    vector_counts: Mutex<HashMap<(TenantId, String), (std::time::Instant, usize)>>,
    /// Tenants whose vector graph is being built, loaded or saved in the background.
    pub(crate) ann_jobs: Mutex<std::collections::HashSet<TenantId>>,
    /// Claimed graph tasks waiting for the vector-graph job, when one runs (`graph_job`).
    pub(crate) graph_queue: Mutex<std::collections::VecDeque<crate::ann::GraphTask>>,
    pub(crate) graph_wake: tokio::sync::Notify,
    pub(crate) graph_job: std::sync::atomic::AtomicBool,
    /// What recall read from the store, per tenant, at the index's position (see `cache`).
    pub(crate) reads: crate::cache::ReadCaches,
    /// Stored API keys by prefix, with the store's commit marker when each was read.
    pub(crate) keys: Mutex<HashMap<String, (u64, continuum_core::keys::ApiKey)>>,
}

/// How long a vector count read from a store that searches vectors itself is reused. Writes
/// through this engine reset it at once; other processes' show within this time.
const VECTOR_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) type Slot = Arc<RwLock<Option<TextIndex>>>;

pub(crate) fn poisoned<T>(_: T) -> continuum_core::Error {
    continuum_core::Error::Internal("an index lock was poisoned".into())
}

impl Engine {
    /// How many of the tenant's memories have a vector of `model`, in a store that searches
    /// vectors itself (see [`VECTOR_COUNT_TTL`]).
    pub(crate) async fn stored_vector_count(
        &self,
        tenant: &TenantId,
        model: &str,
    ) -> Result<usize> {
        let key = (tenant.clone(), model.to_string());
        if let Some((at, n)) = self
            .indexes
            .vector_counts
            .lock()
            .map_err(poisoned)?
            .get(&key)
            && at.elapsed() < VECTOR_COUNT_TTL
        {
            return Ok(*n);
        }
        let n = self
            .store
            .vector_counts(tenant)
            .await?
            .iter()
            .filter(|c| c.model == model)
            .map(|c| c.count as usize)
            .sum();
        self.indexes
            .vector_counts
            .lock()
            .map_err(poisoned)?
            .insert(key, (std::time::Instant::now(), n));
        Ok(n)
    }

    /// Forgets cached vector counts of the tenant (after this engine changed its vectors).
    pub(crate) fn vectors_changed(&self, tenant: &TenantId) {
        if let Ok(mut counts) = self.indexes.vector_counts.lock() {
            counts.retain(|(t, _), _| t != tenant);
        }
    }

    /// The lock that the first readers of a tenant's index take turns on (see `fresh_index`).
    fn first_load(&self, tenant: &TenantId) -> Result<Arc<tokio::sync::Mutex<()>>> {
        let mut locks = self.indexes.first_loads.lock().map_err(poisoned)?;
        Ok(locks.entry(tenant.clone()).or_default().clone())
    }

    /// The tenant's slot if this engine has made one (without making it).
    pub(crate) fn resident_slot(&self, tenant: &TenantId) -> Option<Slot> {
        self.indexes.slots.lock().ok()?.get(tenant).cloned()
    }

    fn slot(&self, tenant: &TenantId) -> Result<Slot> {
        let mut slots = self.indexes.slots.lock().map_err(poisoned)?;
        Ok(slots.entry(tenant.clone()).or_default().clone())
    }

    async fn build_index(&self, tenant: &TenantId) -> Result<TextIndex> {
        let started = std::time::Instant::now();
        // Read the log position first: anything written during the scan is replayed later,
        // and replaying is idempotent.
        let seq = self.store.latest_event(tenant).await?;
        let mut index = TextIndex::new();
        let mut after = 0;
        loop {
            let page = self.store.index_scan(tenant, after, SCAN_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            let mut analyzer = self.analyzer.lock().map_err(poisoned)?;
            for (_, doc) in page {
                index.add(&mut analyzer, doc);
            }
        }
        index.shrink_to_fit();
        index.seq = seq;
        self.index_origin(tenant, "built", started);
        Ok(index)
    }

    /// Brings the index's vectors of `model` up to the store's vector log (only semantic
    /// search reads them, so only it pays for this).
    pub(crate) async fn catch_up_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        slot: &Slot,
    ) -> Result<()> {
        loop {
            let Some(after) = slot.read().map_err(poisoned)?.as_ref().map(|i| i.vec_seq) else {
                return Ok(());
            };
            let page = self
                .store
                .vectors_since(tenant, model, after, SCAN_PAGE)
                .await?;
            let full = page.len() == SCAN_PAGE;
            let mut w = slot.write().map_err(poisoned)?;
            let Some(index) = w.as_mut() else {
                return Ok(());
            };
            if index.vec_seq != after {
                continue; // another reader moved it meanwhile
            }
            for v in page {
                if !index.contains(&v.id) {
                    // Its memory was written after the text caught up: wait for the next read
                    // rather than skip past it.
                    return Ok(());
                }
                // A vector of another dimension under the same model name is left out.
                index.set_vector_at(&v.id, &v.vector, v.seq);
                index.vec_seq = v.seq;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The tenant's index as it is, without asking the store for newer changes: for the later
    /// steps of one recall, once [`Self::fresh_index`] has run at its start (one change-log
    /// query per recall, and every step ranks the same snapshot).
    pub(crate) fn current_index(&self, tenant: &TenantId) -> Result<Slot> {
        self.slot(tenant)
    }

    /// The tenant's index, built or caught up to the store's latest change. While the store's
    /// commit marker has not moved since the last catch-up, nothing was written and the
    /// change log is not asked.
    pub(crate) async fn fresh_index(&self, tenant: &TenantId) -> Result<Slot> {
        let slot = self.slot(tenant)?;
        self.index_used(tenant);
        // Read before the change log: a commit after this shows as a moved marker next time.
        let marker = self.store.commit_marker().await?;
        let known = |slot: &Slot| -> Result<Option<(u64, Option<u64>)>> {
            Ok(slot
                .read()
                .map_err(poisoned)?
                .as_ref()
                .map(|i| (i.seq, i.marker)))
        };
        let (seq, seen) = match known(&slot)? {
            Some(k) => k,
            None => {
                // One reader loads or builds; the others wait for it rather than repeat it.
                let first = self.first_load(tenant)?;
                let _turn = first.lock().await;
                match known(&slot)? {
                    Some(k) => k,
                    None => match self.load_index_file(tenant).await {
                        // Caught up below like any other index.
                        Some(loaded) => {
                            let k = {
                                let mut w = slot.write().map_err(poisoned)?;
                                if w.is_none() {
                                    *w = Some(loaded);
                                }
                                let i = w.as_ref().expect("set above");
                                (i.seq, i.marker)
                            };
                            // Other tenants' indexes may have to leave memory for this one.
                            self.bound_resident_after_load().await;
                            k
                        }
                        None => {
                            let built = self.build_index(tenant).await?;
                            let slot = self
                                .install_built(tenant, slot, built, marker, false)
                                .await?;
                            self.bound_resident_after_load().await;
                            return Ok(slot);
                        }
                    },
                }
            }
        };
        if marker.is_some() && marker == seen {
            return Ok(slot);
        }
        let mut changes = Vec::new();
        let mut after = seq;
        loop {
            let page = match self
                .store
                .events_since(
                    EventScope::Tenant(tenant),
                    after,
                    continuum_core::store::MAX_PAGE,
                )
                .await
            {
                Ok(page) => page,
                // The index is older than the log's compaction point: build it afresh.
                Err(continuum_core::Error::Gone(_)) => {
                    let built = self.build_index(tenant).await?;
                    return self.install_built(tenant, slot, built, marker, true).await;
                }
                Err(e) => return Err(e),
            };
            let n = page.len();
            if let Some(last) = page.last() {
                after = last.seq;
            }
            changes.extend(page);
            if n < continuum_core::store::MAX_PAGE || changes.len() > MAX_CATCH_UP {
                break;
            }
        }
        if after == seq {
            // Nothing for this tenant (another tenant wrote): remember the marker.
            if let Some(index) = slot.write().map_err(poisoned)?.as_mut()
                && index.seq == seq
            {
                index.marker = marker;
            }
            return Ok(slot);
        }
        if changes.len() > MAX_CATCH_UP {
            let built = self.build_index(tenant).await?;
            return self.install_built(tenant, slot, built, marker, true).await;
        }
        // Memories created and forgotten within the window are never indexed.
        let forgotten: std::collections::HashSet<MemoryId> = changes
            .iter()
            .filter_map(|c| match &c.event {
                Event::MemoryForgotten { id } => Some(*id),
                _ => None,
            })
            .collect();
        // A supersession's new head is read from the store (it may have moved again since).
        let wanted: Vec<MemoryId> = changes
            .iter()
            .filter_map(|c| match &c.event {
                Event::MemorySuperseded { id, .. } | Event::MemoryUpdated { id, .. } => Some(*id),
                _ => None,
            })
            .filter(|id| !forgotten.contains(id))
            .collect();
        let heads: HashMap<MemoryId, MemoryHead> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.store
                .index_docs(tenant, &wanted)
                .await?
                .into_iter()
                .map(|d| (d.head.id, d.head))
                .collect()
        };
        let (rebuild, applied) = {
            let mut w = slot.write().map_err(poisoned)?;
            let Some(index) = w.as_mut() else {
                return Ok(slot.clone());
            };
            let mut analyzer = self.analyzer.lock().map_err(poisoned)?;
            let applied_to = index.seq;
            let new = changes.partition_point(|c| c.seq <= applied_to);
            for c in &changes[new..] {
                match &c.event {
                    Event::MemoryCreated {
                        id,
                        memory,
                        concepts,
                    } => {
                        if let Some(m) = memory
                            && !forgotten.contains(id)
                        {
                            index.add(&mut analyzer, index_doc(m, concepts));
                        }
                    }
                    Event::MemoryForgotten { id } => index.remove(id),
                    Event::MemorySuperseded { id, .. } | Event::MemoryUpdated { id, .. } => {
                        if let Some(head) = heads.get(id) {
                            index.update_head(head.clone());
                        }
                    }
                    _ => {}
                }
            }
            index.seq = index.seq.max(after);
            index.marker = marker;
            drop(analyzer);
            // Still under the index's write lock: the read cache moves with it.
            self.move_cache(tenant, applied_to, index.seq, &changes[new..])?;
            (index.dead_ratio() > MAX_DEAD_RATIO, changes.len() - new)
        };
        if rebuild {
            // Forgotten documents keep their postings until a rebuild reclaims them.
            let built = self.build_index(tenant).await?;
            return self.install_built(tenant, slot, built, marker, true).await;
        }
        self.index_moved(tenant, &slot, applied, false).await;
        Ok(slot)
    }

    /// Puts an index just built into `slot` (unless `replace` is false and a newer one got
    /// there meanwhile), and has its file written.
    async fn install_built(
        &self,
        tenant: &TenantId,
        slot: Slot,
        mut built: TextIndex,
        marker: Option<u64>,
        replace: bool,
    ) -> Result<Slot> {
        built.marker = marker;
        {
            let mut w = slot.write().map_err(poisoned)?;
            if replace || w.as_ref().is_none_or(|i| i.seq < built.seq) {
                *w = Some(built);
            }
        }
        self.index_moved(tenant, &slot, 0, true).await;
        Ok(slot)
    }
}

/// A memory as the index takes it, from the `memory.created` event that carries it.
fn index_doc(
    m: &continuum_core::Memory,
    concepts: &[continuum_core::extract::ExtractedConcept],
) -> IndexDoc {
    let mut keys: Vec<String> = Vec::with_capacity(concepts.len());
    for c in concepts {
        if !keys.contains(&c.key) {
            keys.push(c.key.clone());
        }
    }
    IndexDoc {
        head: MemoryHead::of(m),
        content: m.content.clone(),
        concepts: keys,
        speaker: m
            .metadata
            .get("speaker")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    }
}
