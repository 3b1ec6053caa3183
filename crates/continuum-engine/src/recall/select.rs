//! Fusion and selection: candidates from every signal scored, demoted, deduplicated, and
//! assembled into the context block.

use super::*;
use continuum_core::keys::{Caller, Scope};

/// What ranking needs of a candidate memory: its head without the session (recall would
/// otherwise clone hundreds of heads, each a shared reference count to raise and drop).
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) id: MemoryId,
    pub(super) created_at: Timestamp,
    pub(super) superseded: bool,
}

impl Candidate {
    pub(super) fn of(h: &MemoryHead) -> Self {
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
pub(super) struct Gathered {
    pub(super) head: Candidate,
    /// Normalised BM25 (0 when text did not find it).
    pub(super) lexical: f64,
    /// Sum of the activations of the concepts it mentions (None until looked up).
    pub(super) graph: Option<f64>,
}

impl Gathered {
    pub(super) fn of(head: Candidate) -> Self {
        Gathered {
            head,
            lexical: 0.0,
            graph: None,
        }
    }
}

impl Engine {
    /// Hybrid recall: ranked, explained memories and a context block within the token budget.
    pub async fn recall(&self, who: impl Into<Caller>, req: &RecallRequest) -> Result<Recall> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.recall_with(tenant, req, true).await
    }

    /// The context block of [`Self::recall`] alone, for callers that show nothing else (the
    /// original service's `/v1/recall`): the same ranking and the same block, without listing
    /// the memories, their matched terms and concepts. `memories` is empty; `concepts` and
    /// `links` are those of the full recall.
    pub async fn recall_context(
        &self,
        who: impl Into<Caller>,
        req: &RecallRequest,
    ) -> Result<Recall> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        self.recall_with(tenant, req, false).await
    }

    #[tracing::instrument(name = "engine.recall", level = "debug", skip_all, fields(tenant = %tenant))]
    pub(super) async fn recall_with(
        &self,
        tenant: &TenantId,
        req: &RecallRequest,
        explain: bool,
    ) -> Result<Recall> {
        let started = std::time::Instant::now();
        let out = self.recall_ranked(tenant, req, explain).await;
        metrics::histogram!(continuum_ops::metrics::RECALL_DURATION)
            .record(started.elapsed().as_secs_f64());
        out
    }

    async fn recall_ranked(
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
                    time_factor: 1.0,
                    period_factor: 1.0,
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
        let mut scored: Vec<(f64, Signals, Arc<RecallText>)> = ranked
            .into_iter()
            .filter_map(|(score, s, h)| texts.remove(&h.id).map(|m| (score, s, m)))
            .collect();
        shape::favour_times(&mut scored, &req.query, cfg.temporal_boost);
        shape::favour_period(&mut scored, &req.query, cfg.period_boost);

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
}
