//! What recall reads from the store besides the derived index (concepts named in a query, the
//! strongest links of a concept, the texts of the best memories) kept per tenant and moved on
//! with the tenant's index.
//!
//! Every write that can change these records events: a learned turn or an import names the
//! concepts each new memory mentions (`memory.created`) and the links it wrote
//! (`links.strengthened`), a supersede names the memory, a forget names each memory
//! forgotten. When a recall's catch-up moves the index past them, the cache moves with it and
//! drops what they name: the concepts and link lists of the concepts named, the text of a
//! superseded or restored memory. A forget, an event that does not say what it touched (a
//! `concepts.changed` of unknown keys, migrated from an older log) or a cache at another
//! position than the index it is moved with drops the tenant's cache whole. So every entry is what the store would answer
//! at the cache's position, never older than the index a recall ranks with; a recall still
//! ranking on an older index may read the entries but does not add to them. Strengths are kept
//! as stored; decay is applied when they are used.
//!
//! Limits: `recall_cache_entries` per kind and tenant (the kind is emptied when full),
//! [`MAX_CACHED_TEXT_BYTES`] of memory text over all tenants, and [`MAX_CACHED_TENANTS`]
//! tenants (everything is dropped when a limit would be passed).

use crate::Engine;
use continuum_core::event::{Event, EventRecord};
use continuum_core::store::{Concept, Link, LinkWrite};
use continuum_core::{Error, Memory, MemoryId, Result, TenantId};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Tenants whose reads are cached at once.
pub const MAX_CACHED_TENANTS: usize = 256;
/// Memory text held, over all tenants (each memory counts its content, its word signature
/// and 256 bytes).
pub const MAX_CACHED_TEXT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct ReadCache {
    /// The index position the entries belong to.
    seq: u64,
    concepts: HashMap<String, Option<Arc<Concept>>>,
    /// Per concept key, its strongest links, for `per` links a side: (`per`, links).
    links: HashMap<String, (usize, Arc<[Link]>)>,
    /// Recall's view of a memory: everything but its metadata.
    memories: HashMap<MemoryId, Arc<RecallText>>,
}

#[derive(Default)]
pub(crate) struct Caches {
    tenants: HashMap<TenantId, ReadCache>,
    /// Text bytes held in `memories`, over all tenants.
    text_bytes: usize,
}

pub(crate) type ReadCaches = std::sync::Mutex<Caches>;

/// A memory as recall shows it (without its metadata), with its word signature for the
/// near-duplicate test, computed once.
#[derive(Debug)]
pub(crate) struct RecallText {
    pub memory: Memory,
    pub signature: Vec<u64>,
    /// [`continuum_core::text::signature_sketch`] of `signature`.
    pub sketch: u64,
    /// The first eight bytes of the content hash: recall compares every pair of its best
    /// candidates, and two different hashes nearly always differ there already.
    pub hash_head: u64,
}

impl RecallText {
    fn new(mut memory: Memory) -> Self {
        memory.metadata = Default::default();
        let signature = continuum_core::text::word_signature(&memory.content);
        let sketch = continuum_core::text::signature_sketch(&signature);
        let mut head = [0u8; 8];
        let bytes = memory.content_hash.as_bytes();
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        RecallText {
            memory,
            signature,
            sketch,
            hash_head: u64::from_le_bytes(head),
        }
    }
}

fn text_cost(m: &RecallText) -> usize {
    m.memory.content.len() + m.signature.len() * 8 + 256
}

fn poisoned<T>(_: T) -> Error {
    Error::Internal("the read cache lock was poisoned".into())
}

/// Inserts into a map bounded at `cap` entries, emptying it first when full.
fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, cap: usize, k: K, v: V) {
    if map.len() >= cap {
        map.clear();
    }
    map.insert(k, v);
}

/// Splits `wanted` into what `get` finds for them and what it does not.
fn split<W: Clone, V>(wanted: &[W], get: impl Fn(&W) -> Option<V>) -> (Vec<V>, Vec<W>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for w in wanted {
        match get(w) {
            Some(v) => found.push(v),
            None => missing.push(w.clone()),
        }
    }
    (found, missing)
}

impl ReadCache {
    /// Drops what `c` may have changed; false when that is not known (the cache must go whole).
    fn forget_changed(&mut self, c: &EventRecord, text_bytes: &mut usize) -> bool {
        let mut drop_concept = |key: &str| {
            self.concepts.remove(key);
            self.links.remove(key);
        };
        match &c.event {
            // A new memory's text was never asked for, but the mention counts of its concepts
            // moved. Recall reads no decisions; keys and tenants are not cached here.
            Event::MemoryCreated { concepts, .. } => {
                concepts.iter().for_each(|k| drop_concept(&k.key));
                true
            }
            Event::ConceptCreated { key, .. } => {
                drop_concept(key);
                true
            }
            Event::LinksStrengthened { links } => {
                for l in links {
                    let (LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. }) = l;
                    drop_concept(a);
                    drop_concept(b);
                }
                true
            }
            Event::ConceptsChanged { keys: Some(keys) } => {
                keys.iter().for_each(|k| drop_concept(k));
                true
            }
            // The memory's `superseded_by` and `valid_until` changed.
            Event::MemorySuperseded { id, .. } | Event::MemoryUpdated { id, .. } => {
                if let Some(old) = self.memories.remove(id) {
                    *text_bytes -= text_cost(&old);
                }
                true
            }
            Event::DecisionCreated { .. }
            | Event::KeyCreated { .. }
            | Event::KeyRevoked { .. }
            | Event::KeyRotated { .. }
            | Event::KeyExpired { .. }
            | Event::TenantCreated
            // Reflection records are not read by recall.
            | Event::IntentionSaved { .. }
            | Event::BeliefSaved { .. }
            | Event::ContradictionSaved { .. }
            | Event::ClaimSaved { .. }
            | Event::SnapshotSaved { .. } => true,
            // A forget also lowers mention counts and deletes concepts and links it does not
            // name; a migrated `concepts.changed` may not name its concepts.
            Event::MemoryForgotten { .. }
            | Event::SessionForgotten { .. }
            | Event::TenantErased { .. }
            | Event::ConceptsChanged { keys: None } => false,
        }
    }
}

impl Caches {
    /// Drops the tenant's cache (its index left memory).
    pub(crate) fn drop_tenant(&mut self, tenant: &TenantId) {
        if let Some(cache) = self.tenants.remove(tenant) {
            self.text_bytes -= cache.memories.values().map(|m| text_cost(m)).sum::<usize>();
        }
    }

    /// Empties the tenant's cache and puts it at `seq`.
    fn reset(&mut self, tenant: &TenantId, seq: u64) {
        if let Some(cache) = self.tenants.get_mut(tenant) {
            self.text_bytes -= cache.memories.values().map(|m| text_cost(m)).sum::<usize>();
            *cache = ReadCache {
                seq,
                ..Default::default()
            };
        }
    }
}

impl Engine {
    /// Runs `f` on the tenant's cache for a recall ranking on the index at position `seq`, with
    /// whether it may add entries (only while the cache is at that position: a recall on an
    /// older index may have read the store before a change the cache has since dropped).
    /// A cache behind `seq` (never moved with the index) is emptied and put there.
    fn with_cache<T>(
        &self,
        tenant: &TenantId,
        seq: u64,
        f: impl FnOnce(&mut ReadCache, bool) -> T,
    ) -> Result<T> {
        let mut all = self.indexes.reads.lock().map_err(poisoned)?;
        if !all.tenants.contains_key(tenant) && all.tenants.len() >= MAX_CACHED_TENANTS {
            *all = Caches::default();
        }
        if !all.tenants.contains_key(tenant) {
            all.tenants.insert(
                tenant.clone(),
                ReadCache {
                    seq,
                    ..Default::default()
                },
            );
        }
        if all.tenants.get(tenant).is_some_and(|c| c.seq < seq) {
            all.reset(tenant, seq);
        }
        let Some(cache) = all.tenants.get_mut(tenant) else {
            return Err(Error::Internal("the read cache lost a tenant".into()));
        };
        let current = cache.seq == seq;
        Ok(f(cache, current))
    }

    /// Moves the tenant's cache with its index from position `from` to `to`, past `changes`
    /// (the tenant's change-log entries in between), dropping what they changed. Called with
    /// the index's write lock held, so no recall sees the index at `to` and the cache behind.
    pub(crate) fn move_cache(
        &self,
        tenant: &TenantId,
        from: u64,
        to: u64,
        changes: &[EventRecord],
    ) -> Result<()> {
        let mut all = self.indexes.reads.lock().map_err(poisoned)?;
        let Caches {
            tenants,
            text_bytes,
        } = &mut *all;
        let Some(cache) = tenants.get_mut(tenant) else {
            return Ok(());
        };
        let known =
            cache.seq == from && changes.iter().all(|c| cache.forget_changed(c, text_bytes));
        if known {
            cache.seq = to;
        } else {
            all.reset(tenant, to);
        }
        Ok(())
    }

    /// The position caches may be keyed on, or none when caching is off (no derived index,
    /// `recall_cache_entries` 0, or no index built yet).
    pub(crate) fn cache_position(&self, tenant: &TenantId) -> Result<Option<u64>> {
        if !self.config.derived_index || self.config.recall_cache_entries == 0 {
            return Ok(None);
        }
        let slot = self.current_index(tenant)?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        Ok(guard.as_ref().map(|ix| ix.seq))
    }

    /// The stored concepts among `keys`, as [`continuum_core::MemoryStore::concepts`].
    pub(crate) async fn concepts_at(
        &self,
        tenant: &TenantId,
        at: Option<u64>,
        keys: &[&str],
    ) -> Result<Vec<Arc<Concept>>> {
        let owned = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<String>>();
        let Some(seq) = at else {
            let read = self.store.concepts(tenant, &owned(keys)).await?;
            return Ok(read.into_iter().map(Arc::new).collect());
        };
        let cap = self.config.recall_cache_entries;
        let (known, missing) = self.with_cache(tenant, seq, |c, _| {
            split(keys, |k| c.concepts.get(*k).cloned())
        })?;
        // A key known to name no concept is cached as `None`.
        let mut found: Vec<Arc<Concept>> = known.into_iter().flatten().collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let read: Vec<Arc<Concept>> = self
            .store
            .concepts(tenant, &owned(&missing))
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        self.with_cache(tenant, seq, |c, current| {
            if !current {
                return;
            }
            let mut known: HashMap<&str, &Arc<Concept>> =
                read.iter().map(|k| (k.key.as_str(), k)).collect();
            for k in &missing {
                let v = known.remove(k).cloned();
                bounded_insert(&mut c.concepts, cap, k.to_string(), v);
            }
        })?;
        found.extend(read);
        Ok(found)
    }

    /// The strongest links of each of `keys`, as [`continuum_core::MemoryStore::neighbours`]
    /// gives them, in lists (one per key when cached) that may repeat a link joining two keys.
    pub(crate) async fn neighbours_at(
        &self,
        tenant: &TenantId,
        at: Option<u64>,
        keys: &[String],
        per: usize,
    ) -> Result<Vec<Arc<[Link]>>> {
        let Some(seq) = at else {
            let links = self.store.neighbours(tenant, keys, per).await?;
            return Ok(vec![links.into()]);
        };
        let cap = self.config.recall_cache_entries;
        let (mut lists, missing) = self.with_cache(tenant, seq, |c, _| {
            split(keys, |k| {
                c.links
                    .get(k)
                    .filter(|(p, _)| *p == per)
                    .map(|(_, l)| l.clone())
            })
        })?;
        let mut read: Vec<(String, Arc<[Link]>)> = Vec::with_capacity(missing.len());
        // One key at a time: a key's list must not depend on which keys it was asked with.
        for k in missing {
            let links = self
                .store
                .neighbours(tenant, std::slice::from_ref(&k), per)
                .await?;
            read.push((k, links.into()));
        }
        if !read.is_empty() {
            self.with_cache(tenant, seq, |c, current| {
                if !current {
                    return;
                }
                for (k, l) in &read {
                    bounded_insert(&mut c.links, cap, k.clone(), (per, l.clone()));
                }
            })?;
        }
        lists.extend(read.into_iter().map(|(_, l)| l));
        Ok(lists)
    }

    /// The memories among `ids`, as [`continuum_core::MemoryStore::get`] but without their
    /// metadata (recall does not show it).
    pub(crate) async fn recall_texts_at(
        &self,
        tenant: &TenantId,
        at: Option<u64>,
        ids: &[MemoryId],
    ) -> Result<Vec<Arc<RecallText>>> {
        let Some(seq) = at else {
            let read = self.store.get(tenant, ids).await?;
            return Ok(read
                .into_iter()
                .map(|m| Arc::new(RecallText::new(m)))
                .collect());
        };
        let cap = self.config.recall_cache_entries;
        let (mut found, missing) = self.with_cache(tenant, seq, |c, _| {
            split(ids, |id| c.memories.get(id).cloned())
        })?;
        if missing.is_empty() {
            return Ok(found);
        }
        let read: Vec<Arc<RecallText>> = self
            .store
            .get(tenant, &missing)
            .await?
            .into_iter()
            .map(|m| Arc::new(RecallText::new(m)))
            .collect();
        let mut all = self.indexes.reads.lock().map_err(poisoned)?;
        let Caches {
            tenants,
            text_bytes,
        } = &mut *all;
        for m in &read {
            let cost = text_cost(m);
            if cost > MAX_CACHED_TEXT_BYTES {
                continue;
            }
            let full = tenants.get(tenant).is_some_and(|c| c.memories.len() >= cap);
            if *text_bytes + cost > MAX_CACHED_TEXT_BYTES || full {
                // Make room: every tenant's texts go (entries of other kinds stay).
                for c in tenants.values_mut() {
                    c.memories.clear();
                }
                *text_bytes = 0;
            }
            let Some(c) = tenants.get_mut(tenant).filter(|c| c.seq == seq) else {
                break; // another recall moved the cache to a newer position meanwhile
            };
            if let Some(old) = c.memories.insert(m.memory.id, m.clone()) {
                *text_bytes -= text_cost(&old);
            }
            *text_bytes += cost;
        }
        drop(all);
        found.extend(read);
        Ok(found)
    }
}

/// What [`Engine::read_cache_probe`] finds: the cache's position, and the entries themselves
/// (the same allocation after a write means the entry was kept, not read again).
#[doc(hidden)]
pub type CacheProbe = (
    u64,
    Option<Arc<[Link]>>,
    Option<Arc<dyn std::any::Any + Send + Sync>>,
);

impl Engine {
    /// For tests of the read cache: its position for the tenant, the link list cached for
    /// `key` and the text cached for `id`.
    #[doc(hidden)]
    pub fn read_cache_probe(
        &self,
        tenant: &TenantId,
        key: &str,
        id: &MemoryId,
    ) -> Option<CacheProbe> {
        let all = self.indexes.reads.lock().ok()?;
        let c = all.tenants.get(tenant)?;
        let links = c.links.get(key).map(|(_, l)| l.clone());
        let text = c
            .memories
            .get(id)
            .map(|m| m.clone() as Arc<dyn std::any::Any + Send + Sync>);
        Some((c.seq, links, text))
    }
}
