//! Step 3, semantic: the query's vector against stored vectors, in the derived index or in
//! the store's own vector search.

use super::*;

impl Engine {
    /// Semantic scores, min-max normalised over the candidates (which it extends with the best
    /// semantic matches). Without an embedder: nothing. When the embedder fails, recall goes on
    /// without vectors and says why.
    pub(super) async fn semantic(
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
}
