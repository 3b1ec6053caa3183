//! Reads that rank: `recall` (hybrid retrieval plus a context block) and `search` (full text).
//!
//! Recall, step by step:
//! 1. lexical: BM25 over memory text for the query's search terms;
//! 2. graph: concepts named in the query are looked up; activation spreads along Hebbian links
//!    (`parent × strength × decay` per step, at most `depth` steps) and pulls in the newest
//!    memories mentioning each activated concept, scored by the sum of their activations;
//! 3. semantic (with an embedder): the cosine of the query's vector with each embedded
//!    memory's, averaged with a share of its session neighbours'; recency: `0.5^(age / half-life)`;
//! 4. each signal is normalised to [0, 1] and fused with configured weights; superseded memories
//!    are demoted; near-duplicates collapse onto the best copy;
//! 5. the best memories are assembled into a context block within the token budget.

use crate::Engine;
use crate::cache::RecallText;
use continuum_core::context::{ShownLink, assemble};
use continuum_core::extract::concept_key;
use continuum_core::rank::{Signals, collapse_duplicates_first, fuse, recency};
use continuum_core::store::{Concept, Link, MemoryFilter, MemoryHead, Scored};
use continuum_core::text::{may_reach_jaccard, search_terms, signature_jaccard, words};
use continuum_core::{Error, Memory, MemoryId, Result, SessionId, Source, TenantId, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

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

/// Links a recall shows (the strongest it followed).
const MAX_SHOWN_LINKS: usize = 12;

struct Activation {
    /// The stored concept, for its display name (none found: the key is shown).
    named: Option<Arc<Concept>>,
    value: f64,
    depth: usize,
}

impl Activation {
    /// The concept's display name, or `key` when it has none.
    fn name<'a>(&'a self, key: &'a str) -> &'a str {
        self.named.as_deref().map_or(key, |c| c.name.as_str())
    }
}

/// The first `n` distinct items (by `same`) of `items` ordered by `order`, in that order:
/// what sorting all of them and removing adjacent copies gives, cut after its `n`-th item.
/// `key` must agree with `order` (a larger key comes first; equal keys leave it to `order`),
/// and copies must be equal under `order`.
///
/// Recall follows a hundred links or more and shows a dozen, and many links tie on strength:
/// the best `n` so far are kept in order, and most items are turned away by one comparison of
/// integer keys with the last of them.
fn first_distinct<T: Copy>(
    items: Vec<T>,
    n: usize,
    key: impl Fn(&T) -> u128,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    use std::cmp::Ordering::Less;
    let by = |a: &(u128, T), b: &(u128, T)| b.0.cmp(&a.0).then_with(|| order(&a.1, &b.1));
    let mut top: Vec<(u128, T)> = Vec::with_capacity(n + 1);
    for x in items {
        let item = (key(&x), x);
        if top.len() == n && top.last().is_none_or(|last| by(&item, last) != Less) {
            continue;
        }
        // A copy of `item` would sit where it goes.
        let at = top.partition_point(|t| by(t, &item) == Less);
        if at < top.len() && same(&top[at].1, &item.1) {
            continue;
        }
        top.insert(at, item);
        top.truncate(n);
    }
    top.into_iter().map(|(_, x)| x).collect()
}

/// `items` ordered by value (larger first), then by name, cut to the first `keep`. Names are
/// compared only when the values and the names' leading bytes tie: activation ranks a hundred
/// concepts per recall, and many share a value.
fn best_named<T: Copy>(
    items: Vec<T>,
    keep: usize,
    value: impl Fn(&T) -> f64,
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut keyed: Vec<(u128, T)> = items
        .into_iter()
        .map(|x| {
            let k =
                (u128::from(ordered_bits(value(&x))) << 64) | u128::from(!prefix_bits(name(&x)));
            (k, x)
        })
        .collect();
    let by = |a: &(u128, T), b: &(u128, T)| b.0.cmp(&a.0).then_with(|| name(&a.1).cmp(name(&b.1)));
    if keep == 0 {
        return Vec::new();
    }
    if keyed.len() > keep {
        keyed.select_nth_unstable_by(keep - 1, by);
        keyed.truncate(keep);
    }
    keyed.sort_unstable_by(by);
    keyed.into_iter().map(|(_, x)| x).collect()
}

/// `x`'s bits in `f64::total_cmp` order, as an unsigned integer.
fn ordered_bits(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The first eight bytes of `s` as a big-endian integer (zeros past its end): when two of them
/// differ, the strings compare the same way.
fn prefix_bits(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// What ranking needs of a candidate memory: its head without the session (recall would
/// otherwise clone hundreds of heads, each a shared reference count to raise and drop).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: MemoryId,
    created_at: Timestamp,
    superseded: bool,
}

impl Candidate {
    fn of(h: &MemoryHead) -> Self {
        Candidate {
            id: h.id,
            created_at: h.created_at,
            superseded: h.superseded,
        }
    }
}

/// A candidate memory and the signals recall has gathered for it so far: one map entry per
/// memory, so that each signal is written where the candidate is, not in a map of its own.
#[derive(Debug, Clone, Copy)]
struct Gathered {
    head: Candidate,
    /// Normalised BM25 (0 when text did not find it).
    lexical: f64,
    /// Sum of the activations of the concepts it mentions (None until looked up).
    graph: Option<f64>,
}

impl Gathered {
    fn of(head: Candidate) -> Self {
        Gathered {
            head,
            lexical: 0.0,
            graph: None,
        }
    }
}

impl Engine {
    /// Full-text candidates, best first: from the derived index, or the store's own search.
    async fn lexical(
        &self,
        tenant: &TenantId,
        query: &str,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>> {
        if !self.config.derived_index {
            return self.store.text_search(tenant, terms, filter, limit).await;
        }
        let slot = self.fresh_index(tenant).await?;
        let terms = {
            let mut a = self
                .analyzer
                .lock()
                .map_err(|_| Error::Internal("analyzer lock poisoned".into()))?;
            a.query_terms(query, self.config.max_query_terms)
        };
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        let weights: Vec<f32> = self
            .config
            .session_context
            .iter()
            .map(|w| *w as f32)
            .collect();
        Ok(guard
            .as_ref()
            .map(|ix| match self.config.session_context_mode {
                crate::SessionContextMode::Expand => ix.search_expanded(
                    &terms,
                    &weights,
                    self.config.neighbour_field_weight as f32,
                    self.config.speaker_boost as f32,
                    filter,
                    limit,
                ),
                crate::SessionContextMode::Spread => {
                    ix.search_in_context(&terms, &weights, filter, limit)
                }
            })
            .unwrap_or_default())
    }

    /// Adds to `gathered` the newest memories mentioning each of `keys` (at most the configured
    /// `memories_per_concept` each) that pass `filter`, each with its graph score: the sum of
    /// `values` over all of `keys` it mentions. With the derived index the index reads a
    /// memory's concepts when it lists the memory anyway; without it, the score sums the lists
    /// a memory is in, and `graph_concepts` gets the positions of those keys.
    async fn concept_mentions(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        values: &[f64],
        filter: &MemoryFilter,
        gathered: &mut FxHashMap<MemoryId, Gathered>,
        graph_concepts: &mut FxHashMap<MemoryId, Vec<usize>>,
    ) -> Result<()> {
        let per_concept = self.config.graph.memories_per_concept;
        if !self.config.derived_index {
            let at: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let found = self.store.mentions(tenant, &owned, per_concept).await?;
            for (k, h) in found {
                if !filter.matches_head(&h) {
                    continue;
                }
                let Some(&i) = at.get(k.as_str()) else {
                    continue;
                };
                let g = gathered
                    .entry(h.id)
                    .or_insert_with(|| Gathered::of(Candidate::of(&h)));
                *g.graph.get_or_insert(0.0) += values[i];
                graph_concepts.entry(h.id).or_default().push(i);
            }
            return Ok(());
        }
        // `lexical` ran first in this recall, so the index is fresh.
        let slot = self.current_index(tenant)?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        let Some(ix) = guard.as_ref() else {
            return Ok(());
        };
        gathered.reserve(keys.len() * per_concept);
        // Each memory comes once; `gathered` holds nothing else yet (lexical candidates join
        // after), but an entry is still never replaced.
        ix.each_mentioning(keys, filter, per_concept, |_, head, at| {
            gathered.entry(head.id).or_insert_with(|| Gathered {
                graph: Some(at.iter().map(|&j| values[j]).sum()),
                ..Gathered::of(Candidate::of(head))
            });
        });
        Ok(())
    }

    /// [`continuum_index::TextIndex::each_mention_among`] on the tenant's current index (which
    /// `lexical` brought up to date earlier in the same recall).
    fn each_mention_among(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        ids: &[MemoryId],
        each: impl FnMut(MemoryId, &[usize]),
    ) -> Result<()> {
        let slot = self.current_index(tenant)?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        if let Some(ix) = guard.as_ref() {
            ix.each_mention_among(keys, ids, each);
        }
        Ok(())
    }

    /// Spreads activation from the concepts named in `query`; returns activated concepts and
    /// the strongest links followed (at most [`MAX_SHOWN_LINKS`], effective strengths).
    async fn activate(
        &self,
        tenant: &TenantId,
        at: Option<u64>,
        query: &str,
        terms: &[String],
    ) -> Result<(FxHashMap<String, Activation>, Vec<Link>)> {
        let g = self.config.graph;
        let mut keys: Vec<String> = self
            .extractor
            .concepts(query)
            .into_iter()
            .map(|c| c.key)
            .collect();
        for t in terms {
            let k = concept_key(t);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut act: FxHashMap<String, Activation> = FxHashMap::default();
        let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
        for c in self.concepts_at(tenant, at, &asked).await? {
            act.insert(
                c.key.clone(),
                Activation {
                    named: Some(c),
                    value: 1.0,
                    depth: 0,
                },
            );
        }
        let now = self.clock.now();
        // Every link list read, and the links followed as (effective strength, list, link):
        // only the strongest few are copied out at the end.
        let mut lists: Vec<Arc<[Link]>> = Vec::new();
        let mut followed: Vec<(f64, usize, usize)> = Vec::new();
        let mut frontier: Vec<String> = act.keys().cloned().collect();
        for depth in 1..=g.depth {
            if frontier.is_empty() {
                break;
            }
            let read = self
                .neighbours_at(tenant, at, &frontier, g.neighbours_per_concept)
                .await?;
            let first = lists.len();
            lists.extend(read);
            let frontier_set: FxHashSet<&str> = frontier.iter().map(String::as_str).collect();
            let mut reached: FxHashMap<&str, f64> = FxHashMap::default();
            // A link between two frontier concepts is in both their lists: seeing it twice
            // changes no maximum, and the copy in `followed` goes at the end.
            for (n, list) in lists.iter().enumerate().skip(first) {
                for (i, l) in list.iter().enumerate() {
                    let strength = self.config.hebbian.effective(l.strength, l.last_at, now);
                    for (from, to) in [(&l.a, &l.b), (&l.b, &l.a)] {
                        if !frontier_set.contains(from.as_str()) {
                            continue;
                        }
                        let v = act[from].value * strength * g.decay;
                        if act.get(to).is_some_and(|a| a.value >= v) {
                            continue;
                        }
                        let best = reached.entry(to.as_str()).or_insert(0.0);
                        *best = best.max(v);
                    }
                    followed.push((strength, n, i));
                }
            }
            let next = best_named(
                reached.into_iter().collect(),
                g.max_active_concepts,
                |r| r.1,
                |r| r.0,
            );
            // Only the strongest concepts spread further: deeper activation is weak anyway
            // (≤ decay² × strengths) and hubs would otherwise drag in the whole graph.
            let mut spreading = Vec::with_capacity(g.frontier.min(next.len()));
            for (i, (k, value)) in next.into_iter().enumerate() {
                let k = k.to_string();
                if i < g.frontier {
                    spreading.push(k.clone());
                }
                act.insert(
                    k,
                    Activation {
                        named: None,
                        value,
                        depth,
                    },
                );
            }
            frontier = spreading;
        }
        // Display names for concepts reached over links.
        let unnamed: Vec<&str> = act
            .iter()
            .filter(|(_, a)| a.depth > 0)
            .map(|(k, _)| k.as_str())
            .collect();
        let named = self.concepts_at(tenant, at, &unnamed).await?;
        for c in named {
            if let Some(a) = act.get_mut(c.key.as_str()) {
                a.named = Some(c);
            }
        }
        let link = |&(_, n, i): &(f64, usize, usize)| &lists[n][i];
        let order = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            y.0.total_cmp(&x.0).then_with(|| {
                let (a, b) = (link(x), link(y));
                a.a.cmp(&b.a).then_with(|| a.b.cmp(&b.b))
            })
        };
        let same = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            let (a, b) = (link(x), link(y));
            a.a == b.a && a.b == b.b
        };
        // Stronger first, then by the first key's leading bytes (smaller first).
        let key = |f: &(f64, usize, usize)| {
            (u128::from(ordered_bits(f.0)) << 64) | u128::from(!prefix_bits(&link(f).a))
        };
        let followed = first_distinct(followed, MAX_SHOWN_LINKS, key, order, same);
        let shown = followed
            .iter()
            .take(MAX_SHOWN_LINKS)
            .map(|f| Link {
                strength: f.0,
                ..link(f).clone()
            })
            .collect();
        Ok((act, shown))
    }

    /// Semantic scores, min-max normalised over the candidates (which it extends with the best
    /// semantic matches). Without an embedder: nothing. When the embedder fails, recall goes on
    /// without vectors and says why.
    async fn semantic(
        &self,
        tenant: &TenantId,
        req: &RecallRequest,
        heads: &mut FxHashMap<MemoryId, Gathered>,
    ) -> Result<(HashMap<MemoryId, f64>, Option<SemanticUse>)> {
        let Some(embedder) = self.embedder.clone() else {
            return Ok((HashMap::new(), None));
        };
        let mut info = SemanticUse {
            model: embedder.model().to_string(),
            embedded: 0,
            search: if self.store.searches_vectors() {
                "store"
            } else {
                "exact"
            }
            .into(),
            error: None,
        };
        if !self.config.derived_index {
            info.error = Some("semantic recall needs the derived index (derived_index)".into());
            return Ok((HashMap::new(), Some(info)));
        }
        let query = continuum_core::embed::truncate_chars(&req.query, self.config.embed_max_chars)
            .to_string();
        let qv = match embedder.embed(&[query]).await {
            Ok(mut v) if v.len() == 1 && v[0].len() == embedder.dim() => v.remove(0),
            Ok(_) => {
                info.error = Some("the embedder returned no usable vector".into());
                return Ok((HashMap::new(), Some(info)));
            }
            Err(e) => {
                info.error = Some(e.to_string());
                return Ok((HashMap::new(), Some(info)));
            }
        };
        let weights: Vec<f32> = self
            .config
            .semantic_context
            .iter()
            .map(|w| *w as f32)
            .collect();
        let known: Vec<MemoryId> = heads.keys().copied().collect();
        let limit = self
            .config
            .semantic_candidates
            .max(req.limit.unwrap_or(self.config.recall_limit));
        // `lexical` ran first in this recall, so the index is fresh.
        let slot = self.current_index(tenant)?;
        let (top, extra) = if let Some(search) = self.store.vector_search() {
            // The store finds the nearest vectors (pgvector's index) and scores the rest of
            // what the ranking needs; the index only supplies sessions and heads.
            let model = embedder.model();
            let near = search
                .nearest_vectors(tenant, model, &qv, &req.filter, limit)
                .await?;
            info.embedded = self.stored_vector_count(tenant, model).await?;
            let candidates: Vec<MemoryId> = near.iter().map(|(id, _)| *id).collect();
            let wanted: Vec<MemoryId> = {
                let guard = slot
                    .read()
                    .map_err(|_| Error::Internal("index lock poisoned".into()))?;
                let Some(ix) = guard.as_ref() else {
                    return Ok((HashMap::new(), Some(info)));
                };
                let scored: std::collections::HashSet<MemoryId> =
                    candidates.iter().copied().collect();
                let all: Vec<MemoryId> = candidates.iter().chain(&known).copied().collect();
                ix.with_session_neighbours(&all, weights.len())
                    .into_iter()
                    .filter(|id| !scored.contains(id))
                    .collect()
            };
            let mut scores = near;
            if !wanted.is_empty() {
                scores.extend(search.vector_scores(tenant, model, &qv, &wanted).await?);
            }
            let guard = slot
                .read()
                .map_err(|_| Error::Internal("index lock poisoned".into()))?;
            let Some(ix) = guard.as_ref() else {
                return Ok((HashMap::new(), Some(info)));
            };
            ix.semantic_rerank(&scores, &candidates, &weights, &req.filter, limit, &known)
        } else {
            self.catch_up_vectors(tenant, embedder.model(), &slot)
                .await?;
            self.tend_vector_index(tenant, &slot)?;
            let guard = slot
                .read()
                .map_err(|_| Error::Internal("index lock poisoned".into()))?;
            let Some(ix) = guard.as_ref() else {
                return Ok((HashMap::new(), Some(info)));
            };
            info.embedded = ix.vector_count();
            if ix.ann().is_some() {
                info.search = "hnsw".into();
            }
            ix.semantic_search(&qv, &weights, &req.filter, limit, &known)
        };
        let mut raw: HashMap<MemoryId, f64> =
            extra.into_iter().map(|(id, s)| (id, s as f64)).collect();
        for s in top {
            raw.insert(s.head.id, s.score);
            heads
                .entry(s.head.id)
                .or_insert_with(|| Gathered::of(Candidate::of(&s.head)));
        }
        let max = raw.values().copied().fold(f64::MIN, f64::max);
        let min = raw.values().copied().fold(f64::MAX, f64::min);
        let spread = max - min;
        let norm = raw
            .into_iter()
            .map(|(id, s)| {
                let v = if spread > 1e-9 {
                    (s - min) / spread
                } else {
                    1.0
                };
                (id, v.clamp(0.0, 1.0))
            })
            .collect();
        Ok((norm, Some(info)))
    }

    /// Hybrid recall: ranked, explained memories and a context block within the token budget.
    pub async fn recall(&self, tenant: &TenantId, req: &RecallRequest) -> Result<Recall> {
        self.recall_with(tenant, req, true).await
    }

    /// The context block of [`Self::recall`] alone, for callers that show nothing else (the
    /// original service's `/v1/recall`): the same ranking and the same block, without listing
    /// the memories, their matched terms and concepts. `memories` is empty; `concepts` and
    /// `links` are those of the full recall.
    pub async fn recall_context(&self, tenant: &TenantId, req: &RecallRequest) -> Result<Recall> {
        self.recall_with(tenant, req, false).await
    }

    async fn recall_with(
        &self,
        tenant: &TenantId,
        req: &RecallRequest,
        explain: bool,
    ) -> Result<Recall> {
        let cfg = &self.config;
        cfg.check_text("query", &req.query)?;
        let limit = req.limit.unwrap_or(cfg.recall_limit);
        if limit == 0 || limit > cfg.max_recall_limit {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {}",
                cfg.max_recall_limit
            )));
        }
        let budget = req.budget_tokens.unwrap_or(cfg.default_budget_tokens);
        if budget == 0 || budget > cfg.max_budget_tokens {
            return Err(Error::InvalidInput(format!(
                "token budget must be between 1 and {}",
                cfg.max_budget_tokens
            )));
        }
        let terms = search_terms(&req.query, cfg.max_query_terms);

        // 1. lexical
        let candidates = cfg.lexical_candidates.max(limit);
        let lexical = self
            .lexical(tenant, &req.query, &terms, &req.filter, candidates)
            .await?;

        // 2. graph (what it reads from the store is cached at the index's position)
        let at = self.cache_position(tenant)?;
        let (act, followed) = self.activate(tenant, at, &req.query, &terms).await?;
        let active: Vec<(&String, &Activation)> = best_named(
            act.iter().collect(),
            cfg.graph.max_active_concepts,
            |a| a.1.value,
            |a| a.0.as_str(),
        );
        let active_keys: Vec<&str> = active.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<f64> = active.iter().map(|(_, a)| a.value).collect();
        // Every candidate with what is known of it (here those the concept lists bring, with
        // their graph scores), and per memory the positions in `active` of the concepts it
        // mentions (named only for the memories shown).
        let mut graph_concepts: FxHashMap<MemoryId, Vec<usize>> = FxHashMap::default();
        let mut heads: FxHashMap<MemoryId, Gathered> = FxHashMap::default();
        self.concept_mentions(
            tenant,
            &active_keys,
            &values,
            &req.filter,
            &mut heads,
            &mut graph_concepts,
        )
        .await?;

        // 3-4. Score every candidate from its head; read the text of the best only.
        let lex_max = lexical.iter().map(|s| s.score).fold(0.0f64, f64::max);
        heads.reserve(lexical.len());
        for s in lexical {
            let norm = if lex_max > 0.0 {
                (s.score / lex_max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            heads
                .entry(s.head.id)
                .or_insert_with(|| Gathered::of(Candidate::of(&s.head)))
                .lexical = norm;
        }
        // Semantic: the query's vector against the embedded memories; its best candidates join
        // the others, and every candidate gets its cosine.
        let (sem, semantic) = self.semantic(tenant, req, &mut heads).await?;
        // Every candidate, found by text or by concept, is scored by all the activated concepts
        // it mentions (the mention lists above only bring candidates in).
        let keys = &active_keys;
        if cfg.derived_index {
            // Those the concept lists did not bring in (the index scored those already).
            let ids: Vec<MemoryId> = heads
                .values()
                .filter(|g| g.graph.is_none())
                .map(|g| g.head.id)
                .collect();
            // The concepts' names are looked up again for the memories shown only.
            self.each_mention_among(tenant, keys, &ids, |id, at| {
                if let Some(g) = heads.get_mut(&id) {
                    g.graph = Some(at.iter().map(|&i| values[i]).sum());
                }
            })?;
        }
        let graph_max = heads
            .values()
            .filter_map(|g| g.graph)
            .fold(0.0f64, f64::max);
        let now = self.clock.now();
        let ranked: Vec<(f64, Signals, Candidate)> = heads
            .into_values()
            .map(|g| {
                let h = g.head;
                let graph = match g.graph {
                    Some(v) if graph_max > 0.0 => (v / graph_max).clamp(0.0, 1.0),
                    _ => 0.0,
                };
                let s = Signals {
                    lexical: g.lexical,
                    semantic: sem.get(&h.id).copied().unwrap_or(0.0),
                    graph,
                    recency: recency(
                        h.created_at.days_until(now),
                        cfg.fusion.recency_half_life_days,
                    ),
                };
                (fuse(&cfg.fusion, &s, h.superseded), s, h)
            })
            .collect();
        // Only the best few are read further: pick them by (score, id), then order them,
        // moving small keys rather than whole candidates.
        let by_score = |a: &(f64, MemoryId, usize), b: &(f64, MemoryId, usize)| {
            b.0.total_cmp(&a.0).then(b.1.cmp(&a.1))
        };
        let keep = (limit * 3).max(limit);
        let mut order: Vec<(f64, MemoryId, usize)> = ranked
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0, r.2.id, i))
            .collect();
        if order.len() > keep {
            order.select_nth_unstable_by(keep - 1, by_score);
            order.truncate(keep);
        }
        order.sort_unstable_by(by_score);
        let ranked: Vec<(f64, Signals, Candidate)> =
            order.iter().map(|&(_, _, i)| ranked[i]).collect();
        let ids: Vec<MemoryId> = ranked.iter().map(|r| r.2.id).collect();
        let mut texts: FxHashMap<MemoryId, Arc<RecallText>> = self
            .recall_texts_at(tenant, at, &ids)
            .await?
            .into_iter()
            .map(|m| (m.memory.id, m))
            .collect();
        let scored: Vec<(f64, Signals, Arc<RecallText>)> = ranked
            .into_iter()
            .filter_map(|(score, s, h)| texts.remove(&h.id).map(|m| (score, s, m)))
            .collect();

        // Near-duplicates: same text, or nearly the same words.
        let threshold = cfg.near_duplicate_jaccard;
        let same = |i: usize, j: usize| {
            let (a, b) = (&scored[i].2, &scored[j].2);
            (a.hash_head == b.hash_head && a.memory.content_hash == b.memory.content_hash)
                || (may_reach_jaccard(
                    a.signature.len(),
                    a.sketch,
                    b.signature.len(),
                    b.sketch,
                    threshold,
                ) && signature_jaccard(&a.signature, &b.signature, threshold) >= threshold)
        };
        let order: Vec<usize> = (0..scored.len()).collect();
        // Only the memories listed count their duplicates.
        let kept = collapse_duplicates_first(&order, limit, explain, |&a, &b| same(a, b));
        let mut dup_counts = vec![0usize; scored.len()];
        for &(k, folded) in &kept {
            dup_counts[k] = folded;
        }
        let chosen: Vec<usize> = kept.into_iter().map(|(k, _)| k).collect();
        if cfg.derived_index && explain {
            let ids: Vec<MemoryId> = chosen.iter().map(|&i| scored[i].2.memory.id).collect();
            self.each_mention_among(tenant, keys, &ids, |id, at| {
                graph_concepts.insert(id, at.to_vec());
            })?;
        }
        let term_set: FxHashSet<&str> = terms.iter().map(String::as_str).collect();

        // 5. context
        let mut concepts: Vec<ActivatedConcept> = active
            .iter()
            .map(|(k, a)| ActivatedConcept {
                key: (*k).clone(),
                name: a.name(k).to_string(),
                activation: a.value,
                depth: a.depth,
            })
            .collect();
        concepts.truncate(12);
        let shown_links = followed;
        let mem_refs: Vec<&Memory> = chosen.iter().map(|&i| &scored[i].2.memory).collect();
        let concept_names: Vec<&str> = concepts.iter().take(8).map(|c| c.name.as_str()).collect();
        let name_of = |key: &'_ str| -> String {
            act.get(key)
                .map_or_else(|| key.to_string(), |a| a.name(key).to_string())
        };
        let link_names: Vec<(String, String, f64)> = shown_links
            .iter()
            .take(5)
            .map(|l| (name_of(&l.a), name_of(&l.b), l.strength))
            .collect();
        let link_view: Vec<ShownLink<'_>> = link_names
            .iter()
            .map(|(a, b, strength)| ShownLink {
                a,
                b,
                strength: *strength,
            })
            .collect();
        let ctx = assemble(&mem_refs, &concept_names, &link_view, budget);
        let included: FxHashSet<MemoryId> = ctx.included.iter().copied().collect();

        let recalled = chosen
            .iter()
            .filter(|_| explain)
            .map(|&i| {
                let (score, signals, m) = &scored[i];
                let m = &m.memory;
                let matched_terms: Vec<String> = {
                    let mut found: Vec<&str> = Vec::new();
                    for w in words(&m.content) {
                        // Query terms are lower case: an ASCII word is compared in place.
                        let term = if w.is_ascii() {
                            terms
                                .iter()
                                .find(|t| t.eq_ignore_ascii_case(w))
                                .map(String::as_str)
                        } else {
                            term_set.get(w.to_lowercase().as_str()).copied()
                        };
                        if let Some(t) = term
                            && !found.contains(&t)
                        {
                            found.push(t);
                        }
                    }
                    found.into_iter().map(str::to_string).collect()
                };
                RecalledMemory {
                    id: m.id,
                    content: m.content.clone(),
                    source: m.source,
                    session: m.session.clone(),
                    created_at: m.created_at,
                    score: *score,
                    signals: *signals,
                    matched_terms,
                    matched_concepts: graph_concepts
                        .get(&m.id)
                        .map(|at| {
                            at.iter()
                                .map(|&i| active[i].1.name(active[i].0).to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    superseded: m.is_superseded(),
                    duplicates: dup_counts[i],
                    in_context: included.contains(&m.id),
                }
            })
            .collect();
        Ok(Recall {
            context: ctx.text,
            context_tokens: ctx.tokens,
            budget_tokens: budget,
            memories: recalled,
            concepts,
            links: shown_links,
            query_terms: terms,
            semantic,
        })
    }

    /// Full-text search with filters and paging (`limit` ≤ [`MAX_RESULTS`], `offset + limit`
    /// ≤ [`continuum_core::limits::MAX_PAGE`]).
    ///
    /// [`MAX_RESULTS`]: continuum_core::limits::MAX_RESULTS
    pub async fn search(&self, tenant: &TenantId, req: &SearchRequest) -> Result<Vec<SearchHit>> {
        self.config.check_text("query", &req.query)?;
        let limit = req.limit.unwrap_or(10);
        let most = continuum_core::limits::MAX_RESULTS;
        if limit == 0 || limit > most {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {most}"
            )));
        }
        if req.offset + limit > continuum_core::store::MAX_PAGE {
            return Err(Error::InvalidInput(format!(
                "offset + limit may be at most {}",
                continuum_core::store::MAX_PAGE
            )));
        }
        let terms = search_terms(&req.query, self.config.max_query_terms);
        let hits = self
            .lexical(tenant, &req.query, &terms, &req.filter, req.offset + limit)
            .await?;
        let page: Vec<_> = hits.into_iter().skip(req.offset).collect();
        let ids: Vec<MemoryId> = page.iter().map(|h| h.head.id).collect();
        let mut by_id: HashMap<MemoryId, Memory> = self
            .store
            .get(tenant, &ids)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        Ok(page
            .into_iter()
            .filter_map(|h| {
                by_id.remove(&h.head.id).map(|memory| SearchHit {
                    score: h.score,
                    memory,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{best_named, first_distinct, ordered_bits, prefix_bits};
    use proptest::prelude::*;

    /// Concept keys that share long prefixes, so the integer keys tie and `order` decides.
    const NAMES: [&str; 6] = ["alp", "alpha", "alphabet-a", "alphabet-b", "b", "beta"];

    proptest! {
        #[test]
        fn the_first_distinct_items_are_those_of_a_full_sort(
            pairs in proptest::collection::vec((0usize..6, 0usize..6), 0..300),
            n in 1usize..20,
        ) {
            // A link (a, b) has one strength however often it was followed.
            let strength = |a: usize, b: usize| ((a * 7 + b * 3) % 5) as f64 / 4.0;
            let items: Vec<(f64, usize, usize)> =
                pairs.iter().map(|&(a, b)| (strength(a, b), a, b)).collect();
            let order = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
                y.0.total_cmp(&x.0)
                    .then(NAMES[x.1].cmp(NAMES[y.1]))
                    .then(NAMES[x.2].cmp(NAMES[y.2]))
            };
            let key = |x: &(f64, usize, usize)| {
                (u128::from(ordered_bits(x.0)) << 64) | u128::from(!prefix_bits(NAMES[x.1]))
            };
            let same = |x: &(f64, usize, usize), y: &(f64, usize, usize)| x.1 == y.1 && x.2 == y.2;
            let mut full = items.clone();
            full.sort_by(order);
            full.dedup_by(|x, y| same(x, y));
            let got = first_distinct(items, n, key, order, same);
            full.truncate(n);
            prop_assert_eq!(got, full);
        }

        #[test]
        fn best_named_is_the_head_of_a_full_sort(
            raw in proptest::collection::btree_map("(alphabet-|b)[a-c]{0,3}", 0u8..4, 0..60),
            keep in 0usize..70,
        ) {
            // Distinct names (as the keys of a map), few values: ties are common.
            let items: Vec<(&str, f64)> =
                raw.iter().map(|(k, v)| (k.as_str(), f64::from(*v) / 2.0)).collect();
            let mut full = items.clone();
            full.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            full.truncate(keep);
            prop_assert_eq!(best_named(items, keep, |x| x.1, |x| x.0), full);
        }

        #[test]
        fn integer_keys_order_as_their_sources(
            x in proptest::num::f64::ANY,
            y in proptest::num::f64::ANY,
            a in "[a-c]{0,10}",
            b in "[a-c]{0,10}",
        ) {
            prop_assert_eq!(ordered_bits(x).cmp(&ordered_bits(y)), x.total_cmp(&y));
            let (pa, pb) = (prefix_bits(&a), prefix_bits(&b));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }
}
