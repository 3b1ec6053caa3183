//! The front door of Continuum: one method per use case, shared by every interface.
//!
//! `Engine::recall` is what `continuum recall`, `POST /v1/recall` and the MCP tool
//! `memory_recall` all call; interfaces only translate to and from these methods. The engine
//! validates input, runs the extractor, prepares write batches, ranks and assembles recall
//! results. It holds no storage of its own: state lives behind [`MemoryStore`].

mod account;
mod ann;
mod audit;
mod cache;
mod config;
mod embed;
mod events;
mod export;
mod index;
mod index_file;
mod keys;
mod learn;
mod metered;
mod recall;
mod records;
mod reflect;
mod resident;
mod retention;
mod sync;
mod tenants;
mod timeline;
mod webhooks;

pub use account::{
    BILLING_EVENT_MEMORY_MILLIS, BillingChange, FOOTPRINT_TTL, MAX_USAGE_ROWS, PLAN_TTL, PlanView,
    USAGE_FLUSH_INTERVAL, UsageReport, UsageTotals,
};
pub use ann::VectorIndexInfo;
pub use audit::{AuditVerification, MAX_AUDIT_PAGE, actor_of};
pub use config::{EngineConfig, GraphParams, SessionContextMode};
pub use embed::{EmbeddingStatus, ReindexReport, WORKER_BACKOFF, WORKER_POLL};
pub use events::{Compaction, DEFAULT_EVENT_RETENTION_MILLIS, MAX_EVENTS_PAGE};
pub use export::{EXPORT_FORMAT, EXPORT_VERSION, ExportHeader, ExportRecord, ImportOutcome};
pub use index_file::TextIndexInfo;
pub use keys::{MAX_KEY_DAYS, MAX_ROTATION_OVERLAP_DAYS, Rotation};
pub use learn::{
    KeyedOutcome, LearnOutcome, MAX_KEYED_TEXTS, MAX_TURN_ID_CHARS, PreparedTurns, RememberRequest,
    turn_key,
};
pub use recall::{
    ActivatedConcept, Recall, RecallRequest, RecalledMemory, SearchHit, SearchRequest, SemanticUse,
};
pub use records::{
    BeliefAdded, BeliefRequest, Calibration, CalibrationReport, CalibrationRequest, ClaimRequest,
    ContradictionView, DEFAULT_CALIBRATION_BINS, IntentionRequest, MAX_BELIEFS_COMPARED,
    MAX_BELIEFS_EMBEDDED, MAX_CALIBRATION_BINS, MAX_RECORDS_PAGE, MAX_RESUME_PER_GROUP,
    ReliabilityBin, Resolution, Resume, SAME_MEANING,
};
pub use reflect::{
    Bridge, Cluster, ConceptRef, Dream, DreamRequest, DreamStep, GraphRead, GraphScope,
    HypothesisView, Insights, MAX_BETWEENNESS_SOURCES, MAX_DREAM_STEPS, MAX_DREAM_TEMPERATURE,
    MAX_INSIGHTS, MAX_REFLECT_CONCEPTS, MAX_REFLECT_GRAPH_LINKS, MAX_REFLECT_LINKS_PER_CONCEPT,
    MAX_SIMILAR_CONCEPTS, MAX_SNAPSHOT_LABEL_CHARS, MemoryRef, SIMILAR_CONCEPTS, SNAPSHOT_HUBS,
    SimilarPair, SnapshotComparison,
};
pub use resident::ResidentIndexes;
pub use retention::{MAX_DRY_RUN_IDS, RetentionHit, RetentionReport, RetentionRule};
pub use sync::{MAX_SYNC_CONCEPTS, MAX_SYNC_LINKS, sync_cursor_name};
pub use tenants::{TenantErased, TenantInfo};
pub use timeline::{
    ActiveConcept, Growth, MAX_GROWTH_LIST, MAX_TIMELINE_ENTRIES, MAX_TIMELINE_EVENTS,
    STRENGTH_MILESTONES, Scan, Timeline, TimelineEntry,
};
/// Stops long-running engine work (the embedding worker) at a safe point.
pub use tokio_util::sync::CancellationToken;
pub use webhooks::{
    MAX_DELIVERIES_PAGE, MAX_ROTATION_OVERLAP_MILLIS, WebhookView, WebhookWithSecret,
};

use continuum_core::extract::{Extractor, RuleExtractor};
use continuum_core::keys::{Caller, Scope};
use continuum_core::memory::{Decision, SessionInfo};
use continuum_core::store::{
    Concept, ForgetSelector, Link, MAX_PAGE, MemoryFilter, Page, PageRequest, StoreStats,
};
use continuum_core::{Clock, Error, Memory, MemoryId, MemoryStore, Result, SystemClock, TenantId};
use serde::Serialize;
use std::sync::Arc;

/// The engine: a store, a clock, an extractor and validated configuration.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn MemoryStore>,
    clock: Arc<dyn Clock>,
    extractor: Arc<dyn Extractor>,
    config: EngineConfig,
    indexes: Arc<index::Registry>,
    analyzer: Arc<std::sync::Mutex<continuum_index::Analyzer>>,
    embedder: Option<Arc<dyn continuum_core::embed::Embedder>>,
    embed_wake: Arc<tokio::sync::Notify>,
    /// Bumped after every event-writing store call of this engine (see [`Engine::written`]).
    written: Arc<tokio::sync::watch::Sender<u64>>,
    /// Usage counted and not yet flushed, tiers and quotas (see [`account`]).
    accounts: Arc<account::Accounts>,
}

/// `stats`: the store's counts plus what the engine knows.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Stats {
    pub tenant: TenantId,
    pub backend: &'static str,
    #[serde(flatten)]
    pub store: StoreStats,
    /// Sentence vectors held, per model.
    pub vectors: Vec<continuum_core::embed::VectorCount>,
}

/// A concept with its neighbourhood, for `concepts NAME`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConceptView {
    pub concept: Concept,
    pub neighbours: Vec<Neighbour>,
    /// The newest memories that mention the concept (at most [`CONCEPT_MEMORIES`]).
    pub memories: Vec<Memory>,
}

/// How many of the memories mentioning a concept its view carries.
pub const CONCEPT_MEMORIES: usize = 20;

/// The longest supersede chain [`Engine::versions`] walks, each way.
pub const MAX_VERSIONS: usize = 100;

/// A concept linked to the one asked about.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Neighbour {
    pub key: String,
    pub name: String,
    /// The link's effective strength (after decay, when decay is on).
    pub strength: f64,
    pub count: u64,
}

impl Engine {
    pub fn new(store: Arc<dyn MemoryStore>, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let extractor = RuleExtractor {
            max_per_text: config.max_concepts_per_memory,
            ..Default::default()
        };
        let written = Arc::new(tokio::sync::watch::Sender::new(0));
        Ok(Engine {
            store: Arc::new(metered::Metered(store, written.clone())),
            written,
            clock: Arc::new(SystemClock),
            extractor: Arc::new(extractor),
            config,
            indexes: Arc::default(),
            analyzer: Arc::default(),
            embedder: None,
            embed_wake: Arc::default(),
            accounts: Arc::default(),
        })
    }

    /// Sets the deployment's tiers (the built-in ones, custom ones, and the default).
    pub fn with_tiers(mut self, tiers: continuum_core::account::Tiers) -> Self {
        self.accounts = Arc::new(account::Accounts::new(tiers));
        self
    }

    /// Replaces the clock (tests, replays).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Turns on semantic recall with this embedder: recall embeds the query and ranks embedded
    /// memories by cosine too; [`Engine::run_embed_worker`] and [`Engine::reindex`] embed
    /// memories.
    pub fn with_embedder(mut self, embedder: Arc<dyn continuum_core::embed::Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// The same engine (store, indexes, embedder) under another configuration, validated.
    pub fn with_config(mut self, config: EngineConfig) -> Result<Self> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// Replaces the extractor.
    pub fn with_extractor(mut self, extractor: Arc<dyn Extractor>) -> Self {
        self.extractor = extractor;
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn MemoryStore> {
        &self.store
    }

    /// A receiver that sees a change whenever this engine (any clone of it) has written
    /// events: what stream readers wait on between reads of the log. Writes by other
    /// processes sharing the store are not announced; readers poll for those.
    pub fn written(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// One memory by id.
    pub async fn get(&self, who: impl Into<Caller>, id: MemoryId) -> Result<Memory> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.store
            .get(tenant, &[id])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no memory with id {id}")))
    }

    /// Memories matching a filter, newest first unless the page says otherwise; never unbounded.
    pub async fn list(
        &self,
        who: impl Into<Caller>,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        if page.limit == 0 || page.limit > MAX_PAGE {
            return Err(Error::InvalidInput(format!(
                "page size must be between 1 and {MAX_PAGE}"
            )));
        }
        self.store.list(tenant, filter, page).await
    }

    /// Deletes memories (and what only they carried) from the store and its indexes.
    ///
    /// Forgetting ids that do not exist is `NotFound`, so a typo is not mistaken for success.
    #[tracing::instrument(name = "engine.forget", level = "debug", skip_all)]
    pub async fn forget(&self, who: impl Into<Caller>, what: &ForgetSelector) -> Result<u64> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let n = self.store.forget(tenant, what).await?;
        let whole = match what {
            ForgetSelector::Session(s) => Some(serde_json::json!({"session": s, "memories": n})),
            ForgetSelector::All => Some(serde_json::json!({"all": true, "memories": n})),
            _ => None,
        };
        if let Some(details) = whole.filter(|_| n > 0) {
            self.audit_ok(
                &actor_of(&caller),
                Some(tenant),
                "memories.forgotten",
                details,
            )
            .await;
        }
        self.vectors_changed(tenant);
        if n > 0 {
            // A saved vector graph must not outlive the memories it holds.
            self.drop_snapshots(tenant, None);
            self.footprint_changed(tenant);
        }
        match what {
            ForgetSelector::Ids(ids) if n == 0 => Err(Error::NotFound(match ids.as_slice() {
                [one] => format!("no memory with id {one}"),
                _ => "none of the given memory ids exist".to_string(),
            })),
            ForgetSelector::Session(s) if n == 0 => {
                Err(Error::NotFound(format!("no memories in session '{s}'")))
            }
            _ => Ok(n),
        }
    }

    pub async fn stats(&self, who: impl Into<Caller>) -> Result<Stats> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        Ok(Stats {
            tenant: tenant.clone(),
            backend: self.store.backend(),
            store: self.store.stats(tenant).await?,
            vectors: self.store.vector_counts(tenant).await?,
        })
    }

    pub async fn sessions(
        &self,
        who: impl Into<Caller>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.store
            .sessions(tenant, limit.clamp(1, MAX_PAGE), offset)
            .await
    }

    pub async fn decisions(
        &self,
        who: impl Into<Caller>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.store
            .decisions(tenant, limit.clamp(1, MAX_PAGE), offset)
            .await
    }

    /// The most mentioned concepts.
    pub async fn list_concepts(
        &self,
        who: impl Into<Caller>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.store
            .list_concepts(tenant, limit.clamp(1, MAX_PAGE), offset)
            .await
    }

    /// A concept (by name, any case) and its strongest neighbours.
    pub async fn concept(
        &self,
        who: impl Into<Caller>,
        name: &str,
        limit: usize,
    ) -> Result<ConceptView> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let key = continuum_core::extract::concept_key(name);
        if key.is_empty() {
            return Err(Error::InvalidInput("concept name is empty".into()));
        }
        let concept = self
            .store
            .concepts(tenant, std::slice::from_ref(&key))
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no concept '{name}'")))?;
        let links = self
            .store
            .neighbours(tenant, std::slice::from_ref(&key), limit.clamp(1, MAX_PAGE))
            .await?;
        let others: Vec<String> = links
            .iter()
            .map(|l| if l.a == key { l.b.clone() } else { l.a.clone() })
            .collect();
        let named = self.store.concepts(tenant, &others).await?;
        let now = self.clock.now();
        let mut neighbours: Vec<Neighbour> = links
            .iter()
            .zip(others)
            .map(|(l, other): (&Link, String)| Neighbour {
                name: named
                    .iter()
                    .find(|c| c.key == other)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| other.clone()),
                key: other,
                strength: self.config.hebbian.effective(l.strength, l.last_at, now),
                count: l.count,
            })
            .collect();
        neighbours.sort_by(|a, b| {
            b.strength
                .total_cmp(&a.strength)
                .then_with(|| a.key.cmp(&b.key))
        });
        let heads = self
            .store
            .mentions(tenant, std::slice::from_ref(&key), CONCEPT_MEMORIES)
            .await?;
        let ids: Vec<MemoryId> = heads.iter().map(|(_, h)| h.id).collect();
        let mut memories = self.store.get(tenant, &ids).await?;
        memories.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(ConceptView {
            concept,
            neighbours,
            memories,
        })
    }

    /// A memory's versions, oldest first: the ones it superseded (step by step back, the
    /// latest held at each step), itself, then the ones that superseded it; at most
    /// [`MAX_VERSIONS`] each way.
    pub async fn versions(&self, who: impl Into<Caller>, id: MemoryId) -> Result<Vec<Memory>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let this = self.get(&caller, id).await?;
        let mut seen = std::collections::HashSet::from([this.id]);
        let mut before = Vec::new();
        let mut cur = this.id;
        while before.len() < MAX_VERSIONS {
            let ids = self.store.replaced(tenant, cur).await?;
            let held = self.store.get(tenant, &ids).await?;
            match held.into_iter().max_by_key(|m| m.id) {
                Some(m) if seen.insert(m.id) => {
                    cur = m.id;
                    before.push(m);
                }
                _ => break,
            }
        }
        before.reverse();
        let mut after = Vec::new();
        let mut next = this.superseded_by;
        while let Some(n) = next {
            if after.len() >= MAX_VERSIONS || !seen.insert(n) {
                break;
            }
            match self.store.get(tenant, &[n]).await?.pop() {
                Some(m) => {
                    next = m.superseded_by;
                    after.push(m);
                }
                None => break,
            }
        }
        before.push(this);
        before.append(&mut after);
        Ok(before)
    }

    /// The concepts a memory mentions.
    pub async fn memory_concepts(
        &self,
        who: impl Into<Caller>,
        id: MemoryId,
    ) -> Result<Vec<continuum_core::extract::ExtractedConcept>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.get(&caller, id).await?;
        let mut out: Vec<_> = self
            .store
            .concepts_of(tenant, &[id])
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Integrity problems of the store (empty when healthy).
    pub async fn check(&self) -> Result<Vec<String>> {
        self.store.check().await
    }

    /// Records in this store's audit log that it was restored from a backup (operators only):
    /// the backup's id, how many backups its chain held, and the event position restored to.
    pub async fn record_restore(
        &self,
        who: impl Into<Caller>,
        backup: &str,
        chain: usize,
        position: u64,
    ) -> Result<()> {
        let caller = who.into();
        caller.require(Scope::Operator)?;
        self.audit_ok(
            &crate::actor_of(&caller),
            None,
            "backup.restored",
            serde_json::json!({ "backup": backup, "chain": chain, "position": position }),
        )
        .await;
        Ok(())
    }

    /// Brings the store's planner statistics up to date, after a large import (see
    /// [`continuum_core::store::MemoryGraph::refresh_statistics`]).
    pub async fn refresh_store_statistics(&self) -> Result<()> {
        self.store.refresh_statistics().await
    }

    /// Rewrites the store's files so that nothing deleted or erased is left in them (see
    /// [`continuum_core::store::MemoryGraph::vacuum`]); operators only, audited. Writers wait
    /// while it runs.
    pub async fn vacuum_store(
        &self,
        who: impl Into<Caller>,
    ) -> Result<continuum_core::store::Vacuumed> {
        let caller = who.into();
        caller.require(Scope::Operator)?;
        let v = self.store.vacuum().await?;
        self.audit_ok(
            &crate::actor_of(&caller),
            None,
            "store.vacuumed",
            serde_json::json!({
                "tables": v.tables,
                "bytes_before": v.bytes_before,
                "bytes_after": v.bytes_after,
            }),
        )
        .await;
        Ok(v)
    }

    /// Records in the audit log that a backup was made and uploaded (operators only): its id,
    /// kind, how many tenants it holds, the event position it reflects and, for an incremental
    /// one, the backup it builds on.
    pub async fn record_backup(
        &self,
        who: impl Into<Caller>,
        backup: &str,
        kind: &str,
        tenants: usize,
        position: u64,
        parent: Option<&str>,
    ) -> Result<()> {
        let caller = who.into();
        caller.require(Scope::Operator)?;
        self.audit_ok(
            &crate::actor_of(&caller),
            None,
            "backup.created",
            serde_json::json!({
                "backup": backup,
                "kind": kind,
                "tenants": tenants,
                "position": position,
                "parent": parent,
            }),
        )
        .await;
        Ok(())
    }

    /// A consistent copy of the whole store (every tenant) written to the new file `dest`
    /// while writes go on, with the event position it reflects; `None` when the backend keeps
    /// no single file (back it up tenant by tenant with [`Engine::export`]). Operators only.
    pub async fn copy_store_to(
        &self,
        who: impl Into<Caller>,
        dest: &std::path::Path,
    ) -> Result<Option<u64>> {
        let caller = who.into();
        caller.require(Scope::Operator)?;
        let position = self.store.copy_to_file(dest).await?;
        if let Some(position) = position {
            self.audit_ok(
                &crate::actor_of(&caller),
                None,
                "store.copied",
                serde_json::json!({ "position": position }),
            )
            .await;
        }
        Ok(position)
    }
}
