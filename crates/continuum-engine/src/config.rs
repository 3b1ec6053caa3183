//! The engine's validated configuration. Every limit is explicit and has a default here.

use continuum_core::hebbian::HebbianRule;
use continuum_core::rank::FusionWeights;
use continuum_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Concept-graph activation during recall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphParams {
    /// How many links away from a query concept activation spreads (≤ 2).
    pub depth: usize,
    /// Activation kept per step: a neighbour gets `parent × strength × decay`.
    pub decay: f64,
    /// Links followed per activated concept per step.
    pub neighbours_per_concept: usize,
    /// Newest memories pulled in per activated concept.
    pub memories_per_concept: usize,
    /// Activated concepts whose memories are pulled in.
    pub max_active_concepts: usize,
    /// Concepts reached at one depth that spread activation to the next.
    pub frontier: usize,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            depth: 2,
            decay: 0.6,
            neighbours_per_concept: 10,
            memories_per_concept: 12,
            max_active_concepts: 24,
            frontier: 6,
        }
    }
}

/// How session neighbours take part in lexical ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionContextMode {
    /// Each memory is ranked over its own text and its neighbours' text (BM25F).
    Expand,
    /// Each memory adds shares of its neighbours' BM25 scores.
    Spread,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Largest text (a message, a note, a query) accepted, in bytes. Default 1 MiB.
    pub max_text_bytes: usize,
    /// Concepts kept per memory.
    pub max_concepts_per_memory: usize,
    /// Concepts of one turn that are linked pairwise (k² links).
    pub max_concepts_per_turn: usize,
    /// Query words used for full-text search.
    pub max_query_terms: usize,
    /// Memories a recall returns by default, and the most it may ask for.
    pub recall_limit: usize,
    pub max_recall_limit: usize,
    /// Token budget of the context block when the caller gives none.
    pub default_budget_tokens: usize,
    pub max_budget_tokens: usize,
    /// Full-text candidates considered per recall.
    pub lexical_candidates: usize,
    /// Two memories whose word sets overlap at least this much (Jaccard) are one in recall.
    pub near_duplicate_jaccard: f64,
    /// Each memory also earns these shares of the lexical score of its session neighbours
    /// (1 place away, 2 places away, …). Derived index only.
    pub session_context: Vec<f64>,
    /// `session_context` when an embedder is on: the semantic signal already averages each
    /// memory with its neighbours (`semantic_context`), and less lexical context suits it.
    pub session_context_with_embedder: Vec<f64>,
    /// How `session_context` applies: `expand` ranks each memory over two fields, its own text
    /// and its neighbours' text (weighted by `session_context`), the second counting
    /// `neighbour_field_weight` (BM25F); `spread` adds shares of the neighbours' scores.
    pub session_context_mode: SessionContextMode,
    pub neighbour_field_weight: f64,
    /// In `expand` mode, memories whose speaker (`metadata.speaker`) the query names score
    /// `1 + speaker_boost` times their lexical score.
    pub speaker_boost: f64,
    /// A query that asks when something happened ("when …", "what year …") scores memories
    /// that place something in time (a date, a weekday, "yesterday", "last week") `1 +
    /// temporal_boost` times higher. 0 turns it off.
    pub temporal_boost: f64,
    /// A query that names a date, month or year ("in June 2023") scores memories made in that
    /// period, or up to two weeks after it, `1 + period_boost` times higher. 0 turns it off.
    pub period_boost: f64,
    /// Rank with the engine's derived in-memory index (true) or with the store's own full-text
    /// search (false: no build cost, slower per query at scale).
    pub derived_index: bool,
    /// Semantic candidates considered per recall (when an embedder is on).
    pub semantic_candidates: usize,
    /// Each memory's cosine is averaged with these shares of its session neighbours' cosines
    /// (1 place away, 2 places away, …).
    pub semantic_context: Vec<f64>,
    /// Tenants with at least this many vectors search them through an approximate neighbour
    /// graph (HNSW), built in the background; below, every vector is scanned (exact, and
    /// cheap at that size). Stores that search vectors themselves (pgvector) ignore it.
    pub ann_min_vectors: usize,
    /// Save the neighbour graph beside the store (SQLite: `<file>-index/`), so the next
    /// process loads it instead of rebuilding.
    pub ann_snapshots: bool,
    /// Keep each tenant's text index in a file beside the store (SQLite: `<file>-index/`),
    /// so the next process reads it instead of rebuilding it from every memory.
    pub index_files: bool,
    /// Only tenants with at least this many memories get an index file (a smaller index
    /// builds in milliseconds).
    pub index_file_min_memories: usize,
    /// The tenants' text indexes together may hold about this many bytes (estimated heap,
    /// the vector graph left out); past it, the least recently used idle tenants' indexes
    /// are dropped (their files written first) and read again on their next use. 0: no
    /// bound. An index in use is never dropped, so one tenant larger than the bound stays.
    pub max_resident_bytes: usize,
    /// A tenant's index may be dropped by `max_resident_bytes` once unused for this long.
    pub resident_idle: std::time::Duration,
    /// Recall keeps what it reads from the store (concepts, links, memory texts) while the
    /// tenant's index stays at one change-log position: at most this many entries of each
    /// kind per tenant (and 64 MiB of text over all tenants). 0 turns the cache off.
    pub recall_cache_entries: usize,
    /// Characters of a memory an embedder sees (local models read at most 256 tokens anyway).
    pub embed_max_chars: usize,
    pub hebbian: HebbianRule,
    pub fusion: FusionWeights,
    pub graph: GraphParams,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_text_bytes: 1024 * 1024,
            max_concepts_per_memory: 8,
            max_concepts_per_turn: 12,
            max_query_terms: 32,
            recall_limit: 10,
            max_recall_limit: 100,
            default_budget_tokens: 1000,
            max_budget_tokens: 100_000,
            lexical_candidates: 60,
            near_duplicate_jaccard: 0.9,
            // Both chosen by 5-fold cross-validation over the LoCoMo development conversations
            // (BENCHMARKS.md, "Retrieval quality").
            session_context: vec![0.6, 0.4],
            session_context_with_embedder: vec![0.6, 0.3],
            session_context_mode: SessionContextMode::Expand,
            neighbour_field_weight: 0.7,
            speaker_boost: 1.0,
            // Chosen by 5-fold cross-validation over the LoCoMo development conversations
            // (BENCHMARKS.md, "Retrieval quality").
            temporal_boost: 0.5,
            period_boost: 1.0,
            derived_index: true,
            semantic_candidates: 60,
            semantic_context: vec![0.3, 0.2],
            ann_min_vectors: 20_000,
            ann_snapshots: true,
            index_files: true,
            index_file_min_memories: 20_000,
            max_resident_bytes: 1024 << 20,
            resident_idle: std::time::Duration::from_secs(30),
            recall_cache_entries: 20_000,
            embed_max_chars: 4096,
            hebbian: HebbianRule::default(),
            fusion: FusionWeights::default(),
            graph: GraphParams::default(),
        }
    }
}

impl EngineConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidInput(format!("invalid configuration: {m}")));
        if self.max_text_bytes == 0 {
            return bad("max_text_bytes must be positive");
        }
        if !(0.0..=10.0).contains(&self.speaker_boost) {
            return bad("speaker_boost must lie in [0, 10]");
        }
        if !(0.0..=10.0).contains(&self.temporal_boost) {
            return bad("temporal_boost must lie in [0, 10]");
        }
        if !(0.0..=10.0).contains(&self.period_boost) {
            return bad("period_boost must lie in [0, 10]");
        }
        if self.graph.depth > 2 {
            return bad("graph.depth may be at most 2");
        }
        if !(0.0..=1.0).contains(&self.graph.decay) {
            return bad("graph.decay must lie in [0, 1]");
        }
        let h = &self.hebbian;
        if !(h.initial > 0.0 && h.increment >= 0.0 && h.cap >= h.initial) {
            return bad("hebbian needs initial > 0, increment >= 0 and cap >= initial");
        }
        if h.half_life_days.is_some_and(|d| d <= 0.0) {
            return bad("hebbian.half_life_days must be positive when set");
        }
        if self.recall_limit == 0 || self.recall_limit > self.max_recall_limit {
            return bad("recall_limit must be between 1 and max_recall_limit");
        }
        for (name, weights) in [
            ("session_context", &self.session_context),
            (
                "session_context_with_embedder",
                &self.session_context_with_embedder,
            ),
        ] {
            if weights.len() > 8 || weights.iter().any(|w| !(0.0..=2.0).contains(w)) {
                return Err(Error::InvalidInput(format!(
                    "invalid configuration: {name} takes at most 8 weights, each in [0, 2]"
                )));
            }
        }
        if self.semantic_context.len() > 8
            || self
                .semantic_context
                .iter()
                .any(|w| !(0.0..=2.0).contains(w))
        {
            return bad("semantic_context takes at most 8 weights, each in [0, 2]");
        }
        if !(0.0..=4.0).contains(&self.neighbour_field_weight) {
            return bad("neighbour_field_weight must lie in [0, 4]");
        }
        if self.embed_max_chars == 0 {
            return bad("embed_max_chars must be positive");
        }
        if !(0.0..=1.0).contains(&self.near_duplicate_jaccard) {
            return bad("near_duplicate_jaccard must lie in [0, 1]");
        }
        Ok(())
    }

    /// Refuses empty text and text over the size limit; `what` names the field in the error.
    pub fn check_text(&self, what: &str, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Err(Error::InvalidInput(format!("{what} is empty")));
        }
        if text.len() > self.max_text_bytes {
            return Err(Error::InvalidInput(format!(
                "{what} is {} bytes, over the limit of {} bytes (max_text_bytes)",
                text.len(),
                self.max_text_bytes
            )));
        }
        Ok(())
    }
}
