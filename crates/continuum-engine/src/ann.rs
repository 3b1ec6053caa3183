//! The vector neighbour graph's upkeep: when a tenant's index holds enough vectors
//! (`ann_min_vectors`), semantic search asks an HNSW graph for candidates instead of scanning
//! every vector. This module builds the graph, attaches it to the tenant's index, saves it
//! beside the store and loads it in the next process, so a restart costs a file read and the
//! vectors written since, not a rebuild.
//!
//! Building takes minutes at 100k vectors on two cores, so it never runs inside a request: a
//! thread of its own builds (or loads and catches up) the graph from a copy of the vectors,
//! and search scans exactly until the graph is attached. `continuum reindex` builds it in the
//! foreground instead ([`Engine::build_vector_index`]), with progress.
//!
//! Snapshots are derived data. One file per tenant and model, written to a temporary name and
//! renamed, so a crash leaves the old file or the new one. A file that does not load (another
//! version, truncated, another database's history) is ignored and rebuilt. Forgetting a
//! memory deletes the tenant's snapshot at once and rebuilds the graph without it: a removed
//! node stays in a graph as a waypoint, vector included, and a snapshot must not keep the
//! vector of a forgotten memory.

use crate::Engine;
use crate::index::Slot;
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Error, Result, TenantId};
use continuum_index::ann::Ann;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Work for the vector-graph job, claimed for its tenant (see `Engine::claim_job`).
pub(crate) struct GraphTask {
    tenant: TenantId,
    slot: Slot,
    work: GraphWork,
}

enum GraphWork {
    /// Load the saved graph (unless `fresh`) or start one, catch it up, attach it, save it.
    Build {
        path: Option<PathBuf>,
        dim: usize,
        fresh: bool,
    },
    /// Save the attached graph.
    Save { path: PathBuf },
}

/// Releases a tenant's graph claim when dropped, a panic included.
struct Claim<'a> {
    engine: &'a Engine,
    tenant: &'a TenantId,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.engine.release_job(self.tenant);
    }
}

fn graph_len(slot: &Slot) -> usize {
    slot.read()
        .ok()
        .and_then(|g| g.as_ref().and_then(|ix| ix.ann().map(|a| a.len())))
        .unwrap_or(0)
}

/// Changes (vectors added or removed) after which an attached graph is saved again, at least;
/// a tenth of the graph when that is more.
const SAVE_EVERY: usize = 2_000;
/// Share of a graph's nodes standing for replaced vectors above which it is rebuilt.
const MAX_REMOVED: f64 = 0.3;

/// How a tenant's semantic search runs, for `doctor`, `stats` and recall's `semantic` block.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VectorIndexInfo {
    /// `hnsw` (an approximate neighbour graph proposes candidates), `exact` (every vector is
    /// scanned), or `store` (the store searches vectors itself, e.g. pgvector).
    pub search: String,
    /// Vectors in the graph, when there is one.
    pub graph_vectors: Option<usize>,
    /// A graph is being built or loaded in the background (search scans meanwhile).
    pub building: bool,
    /// Tenants with at least this many vectors get a graph.
    pub min_vectors: usize,
    /// Where the graph is saved between processes, if anywhere.
    pub snapshot: Option<String>,
}

pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// FNV-1a: a stable, short name for a model and dimension, or a fingerprint of an event (not a
/// security boundary).
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn tenant_prefix(tenant: &TenantId) -> String {
    format!("ann-{}-", hex(tenant.as_str()))
}

fn snapshot_name(tenant: &TenantId, model: &str, dim: usize) -> String {
    format!(
        "{}{:016x}.bin",
        tenant_prefix(tenant),
        fnv(format!("{model}\0{dim}").as_bytes())
    )
}

fn load_snapshot(path: &Path, dim: usize) -> Option<Ann> {
    let bytes = std::fs::read(path).ok()?;
    Ann::from_bytes(&bytes, dim).ok()
}

pub(crate) fn write_snapshot(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!(
        "tmp{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let result = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

use crate::index::poisoned;

/// Brings a graph (loaded, or empty) up to the index in `slot` and attaches it: the bulk of
/// the work on a copy of the vectors, outside the lock, then the few changes made meanwhile
/// under it. Returns whether it was attached (false: the index is gone, or holds no vectors).
fn catch_up_and_attach(
    slot: &Slot,
    mut graph: Ann,
    progress: &(dyn Fn(usize, usize) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<bool> {
    let backlog = {
        let guard = slot.read().map_err(poisoned)?;
        let Some(ix) = guard.as_ref() else {
            return Ok(false);
        };
        if ix.vector_dim() != graph.dim() {
            return Ok(false);
        }
        ix.ann_backlog(&graph)
    };
    let total = backlog.insert.len();
    progress(0, total);
    backlog
        .apply_until(&mut graph, |n| progress(n, total), stop)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut guard = slot.write().map_err(poisoned)?;
    let Some(ix) = guard.as_mut() else {
        return Ok(false);
    };
    if ix.vector_dim() != graph.dim() {
        return Ok(false);
    }
    ix.attach_ann(graph)?;
    Ok(true)
}

impl Engine {
    fn snapshot_path(&self, tenant: &TenantId, model: &str, dim: usize) -> Option<PathBuf> {
        if !self.config.ann_snapshots {
            return None;
        }
        Some(
            self.store
                .derived_dir()?
                .join(snapshot_name(tenant, model, dim)),
        )
    }

    /// Deletes the tenant's saved graphs, except that of `keep` (a model name). Called when
    /// memories are forgotten (a graph file must not outlive them) and when other models'
    /// vectors are pruned.
    pub(crate) fn drop_snapshots(&self, tenant: &TenantId, keep: Option<(&str, usize)>) {
        if keep.is_none() {
            self.drop_index_file(tenant);
        }
        let Some(dir) = self.store.derived_dir() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let prefix = tenant_prefix(tenant);
        let kept = keep.map(|(m, d)| snapshot_name(tenant, m, d));
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && Some(&name) != kept.as_ref() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// The tenant's saved vector graphs (one per model), with their sizes in bytes.
    pub fn saved_vector_graphs(&self, tenant: &TenantId) -> Vec<(PathBuf, u64)> {
        let Some(dir) = self.store.derived_dir() else {
            return Vec::new();
        };
        let prefix = tenant_prefix(tenant);
        let mut out: Vec<(PathBuf, u64)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with(&prefix) && name.ends_with(".bin")
                    })
                    .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The state of the tenant's vector search (see [`VectorIndexInfo`]).
    pub fn vector_index_info(&self, tenant: &TenantId) -> Result<VectorIndexInfo> {
        let snapshot = self.embedder.as_ref().and_then(|e| {
            self.snapshot_path(tenant, e.model(), e.dim())
                .map(|p| p.display().to_string())
        });
        let building = self
            .indexes
            .ann_jobs
            .lock()
            .map_err(poisoned)?
            .contains(tenant);
        let graph_vectors = if self.store.searches_vectors() {
            None
        } else {
            let slot = self.current_index(tenant)?;
            let guard = slot.read().map_err(poisoned)?;
            guard.as_ref().and_then(|ix| ix.ann().map(|g| g.len()))
        };
        let search = if self.store.searches_vectors() {
            "store"
        } else if graph_vectors.is_some() {
            "hnsw"
        } else {
            "exact"
        };
        Ok(VectorIndexInfo {
            search: search.into(),
            graph_vectors,
            building,
            min_vectors: self.config.ann_min_vectors,
            snapshot,
        })
    }

    /// Called after the tenant's index caught up with its vectors: starts a background build
    /// when the tenant has grown past `ann_min_vectors` (or a forget asked for a clean graph),
    /// and a background save when the attached graph changed enough.
    pub(crate) fn tend_vector_index(&self, tenant: &TenantId, slot: &Slot) -> Result<()> {
        let Some(embedder) = self.embedder.clone() else {
            return Ok(());
        };
        let (count, dim, has_graph, fresh, unsaved) = {
            let guard = slot.read().map_err(poisoned)?;
            let Some(ix) = guard.as_ref() else {
                return Ok(());
            };
            let g = ix.ann();
            (
                ix.vector_count(),
                ix.vector_dim(),
                g.is_some(),
                // Forgotten memories' vectors linger in a graph's removed nodes: rebuild it
                // without them (and never save it meanwhile).
                g.is_some_and(|g| g.removed_ratio() > MAX_REMOVED || g.forgotten > 0),
                g.map(|g| (g.unsaved, g.len())),
            )
        };
        if dim == 0 {
            return Ok(());
        }
        let path = self.snapshot_path(tenant, embedder.model(), dim);
        if count >= self.config.ann_min_vectors && (!has_graph || fresh) {
            // One build at a time per engine (each uses every core while it runs); meanwhile
            // the other tenants scan.
            if !self.claim_job_alone(tenant)? {
                return Ok(());
            }
            // A saved graph that needs little catching up is attached now, so that even a
            // one-shot command searches through it: a file read and a few inserts. Otherwise
            // the thread below loads (or builds) and catches up.
            if !has_graph
                && let Some(p) = &path
                && try_attach_saved(slot, p, dim).unwrap_or(false)
            {
                self.release_job(tenant);
                return Ok(());
            }
            self.submit(GraphTask {
                tenant: tenant.clone(),
                slot: slot.clone(),
                work: GraphWork::Build { path, dim, fresh },
            })?;
        } else if let (Some((unsaved, len)), Some(path)) = (unsaved, path)
            && unsaved >= SAVE_EVERY.max(len / 10)
        {
            if !self.claim_job(tenant)? {
                return Ok(());
            }
            self.submit(GraphTask {
                tenant: tenant.clone(),
                slot: slot.clone(),
                work: GraphWork::Save { path },
            })?;
        }
        Ok(())
    }

    /// Hands a claimed task to the vector-graph job when one runs ([`Self::run_vector_graph_job`]),
    /// or else to a thread of its own (a process without a supervisor: a one-shot command or
    /// an embedding application). The claim is released if neither can start.
    fn submit(&self, task: GraphTask) -> Result<()> {
        if self.indexes.graph_job.load(Ordering::Acquire) {
            self.indexes
                .graph_queue
                .lock()
                .map_err(poisoned)?
                .push_back(task);
            self.indexes.graph_wake.notify_one();
            return Ok(());
        }
        let tenant = task.tenant.clone();
        let engine = self.clone();
        let name = match task.work {
            GraphWork::Build { .. } => "continuum-ann",
            GraphWork::Save { .. } => "continuum-ann-save",
        };
        if let Err(e) = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || engine.run_graph_task(task, &|| false))
        {
            self.release_job(&tenant);
            return Err(Error::Internal(format!("could not start a thread: {e}")));
        }
        Ok(())
    }

    /// Does one task and releases its claim (also when it panics). Blocking.
    fn run_graph_task(&self, task: GraphTask, stop: &(dyn Fn() -> bool + Sync)) {
        let _claim = Claim {
            engine: self,
            tenant: &task.tenant,
        };
        let t = &task.tenant;
        match task.work {
            GraphWork::Build { path, dim, fresh } => {
                let started = std::time::Instant::now();
                match prepare_graph(&task.slot, path, dim, fresh, &|_, _| {}, stop) {
                    Ok(true) => tracing::info!(
                        tenant = %t,
                        vectors = graph_len(&task.slot),
                        seconds = started.elapsed().as_secs_f64(),
                        "vector graph ready"
                    ),
                    Ok(false) => {}
                    // Shutdown: the half-built graph is dropped; nothing was attached or saved.
                    Err(_) if stop() => {
                        tracing::info!(tenant = %t, "vector graph build stopped for shutdown")
                    }
                    // Recall goes on scanning exactly; the next one tries again.
                    Err(e) => {
                        tracing::warn!(tenant = %t, error = %e, "building the vector graph failed")
                    }
                }
            }
            GraphWork::Save { path } => {
                if let Err(e) = save_graph(&task.slot, &path) {
                    tracing::warn!(tenant = %t, error = %e, "saving the vector graph failed");
                }
            }
        }
    }

    /// Runs the vector-graph job until `stop` is cancelled: from the moment it is called,
    /// recall hands its graph builds, loads and saves to this job (one at a time) instead of
    /// starting threads. A build in progress when `stop` is cancelled gives up between two
    /// vector insertions and drops its half-built graph; a save (a file written under a
    /// temporary name and renamed) finishes. A task that panics fails the job, so that its
    /// supervisor reports and restarts it; the tasks queued behind it wait.
    pub async fn run_vector_graph_job(
        &self,
        stop: CancellationToken,
    ) -> std::result::Result<(), String> {
        self.expect_vector_graph_job();
        loop {
            let next = self
                .indexes
                .graph_queue
                .lock()
                .map_err(|_| "the vector graph queue lock was poisoned".to_string())?
                .pop_front();
            let Some(task) = next else {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = self.indexes.graph_wake.notified() => continue,
                }
            };
            if stop.is_cancelled() {
                self.release_job(&task.tenant);
                return Ok(());
            }
            let tenant = task.tenant.clone();
            let (engine, s) = (self.clone(), stop.clone());
            tokio::task::spawn_blocking(move || engine.run_graph_task(task, &|| s.is_cancelled()))
                .await
                .map_err(|e| format!("a vector graph task for tenant {tenant} failed: {e}"))?;
        }
    }

    /// Says that [`Self::run_vector_graph_job`] is (about to be) running, so that graph work
    /// queues for it rather than starting threads. Call before serving requests.
    pub fn expect_vector_graph_job(&self) {
        self.indexes.graph_job.store(true, Ordering::Release);
    }

    /// Graph tasks waiting for the vector-graph job.
    pub fn vector_graph_queue(&self) -> usize {
        self.indexes
            .graph_queue
            .lock()
            .map(|q| q.len())
            .unwrap_or(0)
    }

    fn claim_job(&self, tenant: &TenantId) -> Result<bool> {
        Ok(self
            .indexes
            .ann_jobs
            .lock()
            .map_err(poisoned)?
            .insert(tenant.clone()))
    }

    /// [`Self::claim_job`] when no other tenant's job runs either.
    fn claim_job_alone(&self, tenant: &TenantId) -> Result<bool> {
        let mut jobs = self.indexes.ann_jobs.lock().map_err(poisoned)?;
        Ok(jobs.is_empty() && jobs.insert(tenant.clone()))
    }

    fn release_job(&self, tenant: &TenantId) {
        if let Ok(mut jobs) = self.indexes.ann_jobs.lock() {
            jobs.remove(tenant);
        }
    }

    /// Builds (or loads and catches up) the tenant's vector graph now, reporting `(done,
    /// total)` vectors inserted, and saves it: what `continuum reindex` runs after embedding,
    /// so that the next process starts with a graph. Returns the graph's size, or `None` when
    /// the tenant has fewer than `ann_min_vectors` vectors (search scans them) or the store
    /// searches vectors itself.
    pub async fn build_vector_index(
        &self,
        who: impl Into<Caller>,
        progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
    ) -> Result<Option<usize>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let Some(embedder) = self.embedder.clone() else {
            return Ok(None);
        };
        if self.store.searches_vectors() {
            return Ok(None);
        }
        let slot = self.fresh_index(tenant).await?;
        self.catch_up_vectors(tenant, embedder.model(), &slot)
            .await?;
        let (count, dim) = {
            let guard = slot.read().map_err(poisoned)?;
            let Some(ix) = guard.as_ref() else {
                return Ok(None);
            };
            (ix.vector_count(), ix.vector_dim())
        };
        if count < self.config.ann_min_vectors || dim == 0 {
            return Ok(None);
        }
        // Wait for a background job of this engine on the tenant to finish first.
        while !self.claim_job(tenant)? {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let path = self.snapshot_path(tenant, embedder.model(), dim);
        let fresh = slot
            .read()
            .map_err(poisoned)?
            .as_ref()
            .and_then(|ix| ix.ann())
            .is_some_and(|g| g.forgotten > 0 || g.removed_ratio() > MAX_REMOVED);
        let (engine, t, s) = (self.clone(), tenant.clone(), slot.clone());
        let done = tokio::task::spawn_blocking(move || {
            let r = prepare_graph(&s, path, dim, fresh, &*progress, &|| false);
            engine.release_job(&t);
            r
        })
        .await
        .map_err(|e| Error::Internal(format!("the vector index build failed: {e}")))??;
        if !done {
            return Ok(None);
        }
        let guard = slot.read().map_err(poisoned)?;
        Ok(guard.as_ref().and_then(|ix| ix.ann().map(|g| g.len())))
    }
}

/// Loads the graph saved at `path` and attaches it if at most [`SAVE_EVERY`] vectors need
/// inserting; false (nothing changed) otherwise.
fn try_attach_saved(slot: &Slot, path: &Path, dim: usize) -> Result<bool> {
    let Some(graph) = load_trusted(slot, path, dim)? else {
        return Ok(false);
    };
    let small = {
        let guard = slot.read().map_err(poisoned)?;
        let Some(ix) = guard.as_ref() else {
            return Ok(false);
        };
        ix.ann_backlog(&graph).insert.len() <= SAVE_EVERY
    };
    if !small {
        return Ok(false);
    }
    let mut guard = slot.write().map_err(poisoned)?;
    let Some(ix) = guard.as_mut() else {
        return Ok(false);
    };
    ix.attach_ann(graph)?;
    Ok(true)
}

/// The graph saved at `path`, unless it is missing, damaged, of another dimension, or ahead
/// of this store's vector log (another history: a restored backup, a copied file).
fn load_trusted(slot: &Slot, path: &Path, dim: usize) -> Result<Option<Ann>> {
    let vec_seq = {
        let guard = slot.read().map_err(poisoned)?;
        let Some(ix) = guard.as_ref() else {
            return Ok(None);
        };
        ix.vec_seq
    };
    Ok(load_snapshot(path, dim).filter(|g| g.synced_seq <= vec_seq))
}

/// Loads the saved graph (unless `fresh`) or starts an empty one, catches it up, attaches
/// it and saves it. Blocking: runs in the vector-graph job, on a thread of its
/// own, or in `reindex`; gives up when `stop` says so.
fn prepare_graph(
    slot: &Slot,
    path: Option<PathBuf>,
    dim: usize,
    fresh: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<bool> {
    let count = {
        let guard = slot.read().map_err(poisoned)?;
        let Some(ix) = guard.as_ref() else {
            return Ok(false);
        };
        ix.vector_count()
    };
    let loaded = match (&path, fresh) {
        (Some(p), false) => load_trusted(slot, p, dim)?,
        _ => None,
    };
    let graph = match loaded {
        Some(g) => g,
        None => Ann::new(dim, count).map_err(|e| Error::Internal(e.to_string()))?,
    };
    let attached = catch_up_and_attach(slot, graph, progress, stop)?;
    if attached && let Some(p) = &path {
        let unsaved = {
            let guard = slot.read().map_err(poisoned)?;
            guard
                .as_ref()
                .and_then(|ix| ix.ann().map(|g| g.unsaved))
                .unwrap_or(0)
        };
        if unsaved > 0 || !p.exists() {
            save_graph(slot, p)?;
        }
    }
    Ok(attached)
}

/// Writes the attached graph of `slot` to `path` (serialised under a read lock, written
/// without it) and resets its count of unsaved changes.
fn save_graph(slot: &Slot, path: &Path) -> Result<()> {
    let bytes = {
        let guard = slot.read().map_err(poisoned)?;
        let Some(g) = guard.as_ref().and_then(|ix| ix.ann()) else {
            return Ok(());
        };
        if g.forgotten > 0 {
            return Ok(()); // it still holds forgotten vectors: a rebuild will save instead
        }
        (
            g.to_bytes().map_err(|e| Error::Internal(e.to_string()))?,
            g.unsaved,
        )
    };
    write_snapshot(path, &bytes.0)
        .map_err(|e| Error::Unavailable(format!("could not save {}: {e}", path.display())))?;
    if let Some(g) = slot
        .write()
        .map_err(poisoned)?
        .as_mut()
        .and_then(|ix| ix.ann_mut())
    {
        g.unsaved = g.unsaved.saturating_sub(bytes.1);
    }
    Ok(())
}
