//! An approximate nearest-neighbour graph (HNSW, from the `usearch` crate) over a tenant's
//! vectors, for sizes where scanning every vector stops being cheap.
//!
//! It is derived data like the rest of the index. Its keys are its own (a counter), each
//! standing for one [`MemoryId`], so a graph built in one process can be saved and loaded by
//! another whose documents are numbered differently. [`Ann::synced_seq`] is the vector-log
//! position the graph fully reflects: after a load, only vectors written later and memories
//! forgotten meanwhile need applying (see `TextIndex::ann_backlog`).
//!
//! Vectors go in as the index's own 8-bit quantisation (one scale per vector) and the graph
//! ranks by cosine, which that scale does not change. The graph only proposes candidates; the
//! index scores them again from its own vectors.
//!
//! Snapshot format (little-endian): the magic `CTMANN01`, then u32 `dim`, u64 `synced_seq`,
//! u64 key count, a 16-byte memory id per key (all zero: removed), u64 graph length and the
//! graph as usearch serialises it.

use continuum_core::{MemoryId, Result};
use rustc_hash::FxHashMap;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Links per node in the upper layers (layer 0 holds twice as many).
const CONNECTIVITY: usize = 16;
/// Candidate list while inserting: higher builds slower and finds better neighbours.
const EXPANSION_ADD: usize = 128;
/// Candidate list while searching, at least; a search asking for more widens it.
const EXPANSION_SEARCH: usize = 128;
const MAGIC: &[u8; 8] = b"CTMANN01";

/// The reason [`Ann::insert_many_until`] gives when it was told to stop.
pub const STOPPED: &str = "stopped before the end";

fn ann_error(what: &str, e: impl std::fmt::Display) -> continuum_core::Error {
    continuum_core::Error::Internal(format!("vector index: {what}: {e}"))
}

/// One tenant's HNSW graph over vectors of one model and dimension.
pub struct Ann {
    index: Index,
    dim: usize,
    /// Per key, the memory it stands for (`None`: removed).
    key_id: Vec<Option<MemoryId>>,
    id_key: FxHashMap<MemoryId, u64>,
    /// The vector-log position the graph reflects.
    pub synced_seq: u64,
    /// Vectors added or removed since the graph was last loaded or saved.
    pub unsaved: usize,
    /// Memories forgotten since the graph was built: their vectors stay in removed nodes
    /// (waypoints), so such a graph must be rebuilt before it is saved.
    pub forgotten: usize,
    removed: usize,
}

impl std::fmt::Debug for Ann {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ann")
            .field("dim", &self.dim)
            .field("len", &self.len())
            .field("synced_seq", &self.synced_seq)
            .finish()
    }
}

fn options(dim: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: MetricKind::Cos,
        quantization: ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

/// Worker threads that insert concurrently while building (usearch locks per node).
pub fn build_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

impl Ann {
    /// An empty graph for vectors of `dim` components, with room for `capacity` of them.
    pub fn new(dim: usize, capacity: usize) -> Result<Self> {
        let index = Index::new(&options(dim)).map_err(|e| ann_error("create", e))?;
        index
            .reserve_capacity_and_threads(capacity.max(64), build_threads())
            .map_err(|e| ann_error("reserve", e))?;
        Ok(Ann {
            index,
            dim,
            key_id: Vec::new(),
            id_key: FxHashMap::default(),
            synced_seq: 0,
            unsaved: 0,
            forgotten: 0,
            removed: 0,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Memories in the graph.
    pub fn len(&self) -> usize {
        self.id_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_key.is_empty()
    }

    /// Share of the graph's nodes that stand for removed vectors (they stay as waypoints
    /// until a rebuild).
    pub fn removed_ratio(&self) -> f64 {
        if self.key_id.is_empty() {
            0.0
        } else {
            self.removed as f64 / self.key_id.len() as f64
        }
    }

    pub fn contains(&self, id: &MemoryId) -> bool {
        self.id_key.contains_key(id)
    }

    /// The memories in the graph.
    pub fn ids(&self) -> impl Iterator<Item = &MemoryId> {
        self.id_key.keys()
    }

    fn grow_for(&self, extra: usize) -> Result<()> {
        let need = self.index.size() + extra;
        if need > self.index.capacity() {
            self.index
                .reserve_capacity_and_threads(need.max(self.index.capacity() * 2), build_threads())
                .map_err(|e| ann_error("reserve", e))?;
        }
        Ok(())
    }

    /// Adds or replaces the vector of `id` (8-bit, `dim` components).
    pub fn insert(&mut self, id: MemoryId, vector: &[i8]) -> Result<()> {
        self.insert_many(&[(id, vector)], |_| {})
    }

    /// Adds or replaces many vectors, inserting on [`build_threads`] threads; `progress` hears
    /// how many went in so far.
    pub fn insert_many(
        &mut self,
        items: &[(MemoryId, &[i8])],
        progress: impl Fn(usize) + Sync,
    ) -> Result<()> {
        self.insert_many_until(items, progress, &|| false)
    }

    /// [`Self::insert_many`], giving up as soon as `stop` says so (checked before each
    /// vector): the vectors inserted so far are taken out again and an error says it stopped,
    /// so the graph is left as it was apart from the replaced vectors' removal.
    pub fn insert_many_until(
        &mut self,
        items: &[(MemoryId, &[i8])],
        progress: impl Fn(usize) + Sync,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != self.dim) {
            return Err(ann_error(
                "insert",
                format!(
                    "a vector of {} components in a graph of {}",
                    v.len(),
                    self.dim
                ),
            ));
        }
        for (id, _) in items {
            self.remove(id)?;
        }
        self.grow_for(items.len())?;
        let first = self.key_id.len() as u64;
        let threads = if items.len() >= 256 {
            build_threads()
        } else {
            1
        };
        let done = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|scope| {
            for worker in 0..threads {
                let (index, done, failed, progress) = (&self.index, &done, &failed, &progress);
                let stop = &stop;
                scope.spawn(move || {
                    for (i, (_, v)) in items.iter().enumerate().skip(worker).step_by(threads) {
                        if stop() {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(STOPPED.to_string());
                            return;
                        }
                        if let Err(e) = index.add(first + i as u64, v) {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            return;
                        }
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if n % 1024 == 0 {
                            progress(n);
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            // Keys that did go in are dropped again, so the graph and the maps stay in step.
            for i in 0..items.len() as u64 {
                let _ = self.index.remove(first + i);
            }
            return Err(ann_error("insert", e));
        }
        for (i, (id, _)) in items.iter().enumerate() {
            self.key_id.push(Some(*id));
            self.id_key.insert(*id, first + i as u64);
        }
        self.unsaved += items.len();
        progress(items.len());
        Ok(())
    }

    /// Removes the vector of `id`, if the graph holds one.
    pub fn remove(&mut self, id: &MemoryId) -> Result<()> {
        if let Some(key) = self.id_key.remove(id) {
            self.index.remove(key).map_err(|e| ann_error("remove", e))?;
            self.key_id[key as usize] = None;
            self.removed += 1;
            self.unsaved += 1;
        }
        Ok(())
    }

    /// Removes the vector of a forgotten memory (see [`Self::forgotten`]).
    pub fn forget(&mut self, id: &MemoryId) -> Result<()> {
        if self.contains(id) {
            self.remove(id)?;
            self.forgotten += 1;
        }
        Ok(())
    }

    /// The memories of up to `count` vectors nearest `query` (by cosine) among those `keep`
    /// accepts, nearest first.
    pub fn search(
        &self,
        query: &[i8],
        count: usize,
        keep: impl Fn(&MemoryId) -> bool,
    ) -> Result<Vec<MemoryId>> {
        if query.len() != self.dim || count == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let key_id = &self.key_id;
        let found = self
            .index
            .filtered_search(query, count, |key| {
                key_id
                    .get(key as usize)
                    .copied()
                    .flatten()
                    .is_some_and(|id| keep(&id))
            })
            .map_err(|e| ann_error("search", e))?;
        Ok(found
            .keys
            .iter()
            .filter_map(|k| self.key_id.get(*k as usize).copied().flatten())
            .collect())
    }

    /// The graph as bytes (the module's snapshot format).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let graph_len = self.index.serialized_length();
        let mut out = Vec::with_capacity(36 + self.key_id.len() * 16 + graph_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&self.synced_seq.to_le_bytes());
        out.extend_from_slice(&(self.key_id.len() as u64).to_le_bytes());
        for id in &self.key_id {
            out.extend_from_slice(&id.map(|i| *i.as_bytes()).unwrap_or([0; 16]));
        }
        out.extend_from_slice(&(graph_len as u64).to_le_bytes());
        let at = out.len();
        out.resize(at + graph_len, 0);
        self.index
            .save_to_buffer(&mut out[at..])
            .map_err(|e| ann_error("save", e))?;
        Ok(out)
    }

    /// A graph from [`Self::to_bytes`]; an error when the bytes are not one (truncated, of
    /// another format or another dimension than `dim`).
    pub fn from_bytes(bytes: &[u8], dim: usize) -> Result<Self> {
        let bad = |why: &str| ann_error("snapshot", why);
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = bytes.get(at..at + n).ok_or_else(|| bad("truncated"))?;
            at += n;
            Ok(s)
        };
        if take(8)? != MAGIC {
            return Err(bad("not a Continuum vector index"));
        }
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let stored_dim = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        if stored_dim != dim {
            return Err(bad(&format!("made for {stored_dim} dimensions, not {dim}")));
        }
        let synced_seq = u64_of(take(8)?);
        let keys = u64_of(take(8)?) as usize;
        if keys > bytes.len() / 16 {
            return Err(bad("truncated"));
        }
        let mut key_id = Vec::with_capacity(keys);
        let mut id_key = FxHashMap::default();
        let mut removed = 0;
        for key in 0..keys {
            let raw: [u8; 16] = take(16)?.try_into().expect("16 bytes");
            if raw == [0; 16] {
                key_id.push(None);
                removed += 1;
            } else {
                let id = MemoryId::from_slice(&raw)?;
                id_key.insert(id, key as u64);
                key_id.push(Some(id));
            }
        }
        let graph_len = u64_of(take(8)?) as usize;
        let graph = take(graph_len)?;
        if at != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        let index = Index::new(&options(dim)).map_err(|e| ann_error("create", e))?;
        index
            .load_from_buffer(graph)
            .map_err(|e| ann_error("load", e))?;
        if index.dimensions() != dim || index.size() != id_key.len() {
            return Err(bad("the graph does not match its key list"));
        }
        index
            .reserve_capacity_and_threads(index.size().max(64), build_threads())
            .map_err(|e| ann_error("reserve", e))?;
        Ok(Ann {
            index,
            dim,
            key_id,
            id_key,
            synced_seq,
            unsaved: 0,
            forgotten: 0,
            removed,
        })
    }
}
