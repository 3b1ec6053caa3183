//! The requests and results of `recall` and `search`.

use super::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallRequest {
    pub query: String,
    /// Token budget of the context block (default from config).
    #[serde(default)]
    pub budget_tokens: Option<usize>,
    /// How many memories to return (default from config).
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub filter: MemoryFilter,
}

impl RecallRequest {
    pub fn new(query: impl Into<String>) -> Self {
        RecallRequest {
            query: query.into(),
            ..Default::default()
        }
    }
}

/// A recalled memory, its fused score and why it matched.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecalledMemory {
    pub id: MemoryId,
    pub content: String,
    pub source: Source,
    pub session: Option<SessionId>,
    pub created_at: Timestamp,
    pub score: f64,
    pub signals: Signals,
    /// Query terms found in the text.
    pub matched_terms: Vec<String>,
    /// Activated concepts this memory mentions.
    pub matched_concepts: Vec<String>,
    pub superseded: bool,
    /// How many near-identical memories were folded into this one.
    pub duplicates: usize,
    /// Included in the context block (false when the budget ran out).
    pub in_context: bool,
}

/// A concept that took part in a recall.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActivatedConcept {
    pub key: String,
    pub name: String,
    pub activation: f64,
    /// 0: named in the query; 1 or 2: reached over links.
    pub depth: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Recall {
    /// The `[MEMORY CONTEXT]` block, within the budget.
    pub context: String,
    pub context_tokens: usize,
    pub budget_tokens: usize,
    pub memories: Vec<RecalledMemory>,
    pub concepts: Vec<ActivatedConcept>,
    /// Links followed during activation (effective strengths).
    pub links: Vec<Link>,
    pub query_terms: Vec<String>,
    /// How vectors took part, when an embedder is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticUse>,
}

/// The semantic part of a recall.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SemanticUse {
    pub model: String,
    /// Memories of the tenant with a vector of the model (the rest were ranked without one).
    pub embedded: usize,
    /// How the nearest vectors were found: `hnsw` (the tenant's neighbour graph proposes them;
    /// a filter too narrow for it falls back to a scan), `exact`
    /// (every vector scanned) or `store` (the store's own search, e.g. pgvector).
    pub search: String,
    /// Why vectors were not used for this recall (the embedder failed), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub filter: MemoryFilter,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchHit {
    pub score: f64,
    #[serde(flatten)]
    pub memory: Memory,
}
