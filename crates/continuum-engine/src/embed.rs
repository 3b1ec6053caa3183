//! Embedding memories: the background worker, `reindex`, and the status of a tenant's vectors.
//!
//! Embedding never blocks a write. `learn` commits text only and wakes the worker, which walks
//! the store in order, embeds memories that lack a vector of the engine's model in batches and
//! stores the vectors; recall uses vectors for what is embedded and lexical and graph signals
//! for the rest. The walk is resumable by construction: a memory is pending exactly while it has
//! no vector of the model, so an interrupted `reindex` or worker picks up where it stopped.

use crate::Engine;
use continuum_core::embed::{PendingEmbedding, VectorCount, truncate_chars};
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Error, MemoryId, Result, TenantId};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A tenant's vectors against its memories.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingStatus {
    /// The engine's embedding model, when one is configured.
    pub model: Option<String>,
    pub dim: Option<usize>,
    pub memories: u64,
    /// Memories with a vector of the engine's model.
    pub embedded: u64,
    /// Memories still waiting for one.
    pub pending: u64,
    /// Vectors held per model (old models' vectors until pruned).
    pub by_model: Vec<VectorCount>,
}

/// What a `reindex` did.
#[derive(Debug, Clone, Serialize)]
pub struct ReindexReport {
    pub model: String,
    pub dim: usize,
    pub embedded: u64,
    /// Vectors of other models deleted.
    pub pruned: u64,
    pub seconds: f64,
}

/// How long the worker sleeps when nothing is pending and nobody woke it.
pub const WORKER_POLL: Duration = Duration::from_secs(2);
/// How long the worker waits after a failed batch before trying again.
pub const WORKER_BACKOFF: Duration = Duration::from_secs(5);
/// Idle polls between two full passes from the start of the store (a full pass finds memories
/// committed out of position order by concurrent writers).
const FULL_PASS_EVERY: u32 = 30;

impl Engine {
    /// The engine's embedder, when one is configured.
    pub fn embedder(&self) -> Option<&std::sync::Arc<dyn continuum_core::embed::Embedder>> {
        self.embedder.as_ref()
    }

    fn require_embedder(&self) -> Result<&std::sync::Arc<dyn continuum_core::embed::Embedder>> {
        self.embedder.as_ref().ok_or_else(|| {
            Error::InvalidInput(
                "no embedder is configured: pass --embedder local --model-dir DIR (or openai)"
                    .into(),
            )
        })
    }

    pub async fn embedding_status(&self, who: impl Into<Caller>) -> Result<EmbeddingStatus> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let memories = self.store.stats(tenant).await?.memories;
        let by_model = self.store.vector_counts(tenant).await?;
        let (model, dim, embedded) = match &self.embedder {
            Some(e) => {
                let n = by_model
                    .iter()
                    .filter(|c| c.model == e.model())
                    .map(|c| c.count)
                    .sum();
                (Some(e.model().to_string()), Some(e.dim()), n)
            }
            None => (None, None, 0),
        };
        Ok(EmbeddingStatus {
            model,
            dim,
            memories,
            embedded,
            pending: if self.embedder.is_some() {
                memories.saturating_sub(embedded)
            } else {
                0
            },
            by_model,
        })
    }

    /// Embeds one page of pending memories after store position `*after` (of one tenant or of
    /// all) and stores the vectors; advances `*after`. Returns how many were embedded (0 when
    /// nothing is pending).
    pub async fn embed_page(&self, tenant: Option<&TenantId>, after: &mut u64) -> Result<usize> {
        let embedder = self.require_embedder()?;
        let batch = embedder.batch_size().max(1);
        let page = self
            .store
            .pending_embeddings(tenant, embedder.model(), *after, batch * 4)
            .await?;
        let Some(last) = page.last().map(|p| p.pos) else {
            return Ok(0);
        };
        let n = page.len();
        // Similar lengths in one batch waste less padding.
        let mut page = page;
        page.sort_by_key(|p| p.content.len());
        let mut by_tenant: HashMap<TenantId, Vec<(MemoryId, Vec<f32>)>> = HashMap::new();
        for chunk in page.chunks(batch) {
            let texts: Vec<String> = chunk.iter().map(|p| self.embed_text(p)).collect();
            let span = tracing::debug_span!("embed", texts = texts.len(), model = embedder.model());
            let vectors = tracing::Instrument::instrument(embedder.embed(&texts), span).await?;
            for (p, v) in chunk.iter().zip(vectors) {
                by_tenant
                    .entry(p.tenant.clone())
                    .or_default()
                    .push((p.id, v));
            }
        }
        for (t, vectors) in by_tenant {
            self.store
                .put_vectors(&t, embedder.model(), embedder.dim(), &vectors)
                .await?;
            self.vectors_changed(&t);
            self.count_usage(&t, |c| c.embeddings += vectors.len() as u64);
        }
        *after = last;
        Ok(n)
    }

    /// The text an embedder sees: at most `embed_max_chars` characters.
    fn embed_text(&self, p: &PendingEmbedding) -> String {
        truncate_chars(&p.content, self.config.embed_max_chars).to_string()
    }

    /// Embeds every memory of the tenant that has no vector of the engine's model, reporting
    /// `(done, total)` after each page; with `prune`, then deletes the tenant's vectors of other
    /// models. Safe to interrupt and run again.
    pub async fn reindex(
        &self,
        who: impl Into<Caller>,
        prune: bool,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<ReindexReport> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let started = std::time::Instant::now();
        let embedder = self.require_embedder()?.clone();
        let total = self.embedding_status(tenant).await?.pending;
        progress(0, total);
        let mut after = 0;
        let mut done = 0u64;
        loop {
            let n = self.embed_page(Some(tenant), &mut after).await?;
            if n == 0 {
                break;
            }
            done += n as u64;
            progress(done, total.max(done));
        }
        let pruned = if prune {
            let n = self
                .store
                .drop_vectors_except(tenant, embedder.model())
                .await?;
            self.vectors_changed(tenant);
            self.drop_snapshots(tenant, Some((embedder.model(), embedder.dim())));
            n
        } else {
            0
        };
        Ok(ReindexReport {
            model: embedder.model().to_string(),
            dim: embedder.dim(),
            embedded: done,
            pruned,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Runs the background embedding worker until `stop` is cancelled: embeds whatever any
    /// tenant has pending, then waits for a write of this engine (or polls, for other
    /// processes' writes). Stops only between pages (each page's vectors are stored in their
    /// own transactions), so nothing is half-written. Errors are reported through `on_error`
    /// and retried after a pause. Does nothing when no embedder is configured.
    pub async fn run_embed_worker(&self, stop: CancellationToken, on_error: impl Fn(&Error)) {
        if self.embedder.is_none() {
            return;
        }
        let mut after = 0u64;
        let mut idle = 0u32;
        while !stop.is_cancelled() {
            match self.embed_page(None, &mut after).await {
                Ok(0) => {
                    idle += 1;
                    if idle >= FULL_PASS_EVERY {
                        idle = 0;
                        after = 0;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::timeout(WORKER_POLL, self.embed_wake.notified()) => {}
                    }
                }
                Ok(_) => idle = 0,
                Err(e) => {
                    on_error(&e);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(WORKER_BACKOFF) => {}
                    }
                }
            }
        }
    }

    /// Memories of every tenant still waiting for an embedding by the configured model (0
    /// without an embedder). Reads each tenant's counts: an operator's figure, for metrics.
    pub async fn embedding_backlog(&self) -> Result<u64> {
        if self.embedder.is_none() {
            return Ok(0);
        }
        let mut pending = 0;
        for t in self.store.tenants().await? {
            pending += self.embedding_status(&t.tenant).await?.pending;
        }
        Ok(pending)
    }

    /// Wakes the embedding worker after a write.
    pub(crate) fn wake_embedder(&self) {
        if self.embedder.is_some() {
            self.embed_wake.notify_one();
        }
    }
}
