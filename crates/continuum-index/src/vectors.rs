//! Sentence vectors of one model, 8-bit, scanned exactly or searched through an attached HNSW
//! graph; neighbour averaging.

use super::*;

/// Symmetric 8-bit quantisation with one scale per vector: the largest component maps to ±127.
/// For unit vectors of a few hundred dimensions the dot product moves by about 0.001.
pub(crate) fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
            .collect(),
        scale,
    )
}

/// The dot product of a float query with an 8-bit vector (before its scale).
pub(crate) fn dot_i8(q: &[f32], v: &[i8]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = q.len() / 8 * 8;
    for (cq, cv) in q[..chunks].chunks_exact(8).zip(v[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += cq[i] * cv[i] as f32;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..q.len().min(v.len()) {
        sum += q[i] * v[i] as f32;
    }
    sum
}

impl TextIndex {
    /// Sets (or replaces) the vector of a document. False when the document is unknown or
    /// forgotten, or the vector's dimension differs from the vectors already held.
    pub fn set_vector(&mut self, id: &MemoryId, vector: &[f32]) -> bool {
        let seq = self.vec_seq + 1;
        self.set_vector_at(id, vector, seq)
    }

    /// [`Self::set_vector`] for a vector at position `seq` of the store's vector log (which
    /// the index then reflects up to there).
    pub fn set_vector_at(&mut self, id: &MemoryId, vector: &[f32], seq: u64) -> bool {
        let Some(&ord) = self.by_id.get(id) else {
            return false;
        };
        if vector.is_empty() || (self.dim != 0 && vector.len() != self.dim) {
            return false;
        }
        self.dim = vector.len();
        self.vec_seq = self.vec_seq.max(seq);
        let (q, scale) = quantize(vector);
        if let Some(graph) = &mut self.ann
            && graph.insert(*id, &q).is_err()
        {
            // Derived data: without the graph, search scans, and the engine builds it again.
            self.ann = None;
        }
        let slot = self.vec_of[ord as usize];
        if slot == NO_VECTOR {
            self.vec_of[ord as usize] = self.vec_doc.len() as u32;
            self.vec_doc.push(ord);
            self.live_vectors += 1;
            self.vectors.extend_from_slice(&q);
            self.vec_scale.push(scale);
            self.vec_seqs.push(seq);
        } else {
            let at = slot as usize * self.dim;
            self.vectors[at..at + self.dim].copy_from_slice(&q);
            self.vec_scale[slot as usize] = scale;
            self.vec_seqs[slot as usize] = seq;
        }
        true
    }

    /// The dimension of the vectors held (0: none yet).
    pub fn vector_dim(&self) -> usize {
        self.dim
    }

    /// The attached neighbour graph, if any.
    pub fn ann(&self) -> Option<&ann::Ann> {
        self.ann.as_ref()
    }

    pub fn ann_mut(&mut self) -> Option<&mut ann::Ann> {
        self.ann.as_mut()
    }

    /// Detaches the neighbour graph (search scans again).
    pub fn take_ann(&mut self) -> Option<ann::Ann> {
        self.ann.take()
    }

    /// What `graph` lacks to answer for this index: the vectors it does not hold or holds in
    /// an older version (written after its [`ann::Ann::synced_seq`]), and the memories it
    /// holds that are forgotten here. Copies the vectors, so it can be applied without a lock
    /// on the index.
    pub fn ann_backlog(&self, graph: &ann::Ann) -> AnnBacklog {
        let mut out = AnnBacklog {
            seq: self.vec_seq,
            ..AnnBacklog::default()
        };
        if graph.dim() != self.dim {
            return out;
        }
        for (slot, &d) in self.vec_doc.iter().enumerate() {
            if self.lens[d as usize] == DEAD {
                continue;
            }
            let id = self.docs[d as usize].id;
            if !graph.contains(&id) || self.vec_seqs[slot] > graph.synced_seq {
                let v = &self.vectors[slot * self.dim..(slot + 1) * self.dim];
                out.insert.push((id, v.to_vec()));
            }
        }
        out.remove = graph
            .ids()
            .filter(|id| {
                self.by_id
                    .get(id)
                    .is_none_or(|&d| self.vec_of[d as usize] == NO_VECTOR)
            })
            .copied()
            .collect();
        out
    }

    /// Attaches a neighbour graph after bringing it up to this index (see
    /// [`Self::ann_backlog`]: cheap when the caller applied most of it beforehand). Semantic
    /// search then asks the graph for candidates instead of scanning.
    pub fn attach_ann(&mut self, mut graph: ann::Ann) -> continuum_core::Result<()> {
        if graph.dim() != self.dim {
            return Err(continuum_core::Error::Internal(format!(
                "vector index: a graph of {} dimensions for vectors of {}",
                graph.dim(),
                self.dim
            )));
        }
        self.ann_backlog(&graph).apply_to(&mut graph, |_| {})?;
        self.ann = Some(graph);
        Ok(())
    }

    /// Live documents that have a vector.
    pub fn vector_count(&self) -> usize {
        self.live_vectors as usize
    }

    /// Semantic search: the cosine of `query` (unit length, like the stored vectors) with every
    /// embedded live document, where each document also takes `weights[i]` of the cosine of
    /// the documents `i + 1` places around it in its session (a weighted mean: a turn's
    /// meaning lives partly in its neighbours). Returns the best `limit` passing `filter`, and
    /// the score of each of `also` that has a vector (candidates found by other signals).
    pub fn semantic_search(
        &self,
        query: &[f32],
        weights: &[f32],
        filter: &MemoryFilter,
        limit: usize,
        also: &[MemoryId],
    ) -> (Vec<Scored>, Vec<(MemoryId, f32)>) {
        if self.dim == 0 || query.len() != self.dim || self.vec_doc.is_empty() {
            return (Vec::new(), Vec::new());
        }
        if let Some(found) = self.semantic_search_ann(query, weights, filter, limit, also) {
            return found;
        }
        let mut raw = vec![f32::NAN; self.docs.len()];
        for (slot, &d) in self.vec_doc.iter().enumerate() {
            if self.lens[d as usize] == DEAD {
                continue;
            }
            let v = &self.vectors[slot * self.dim..(slot + 1) * self.dim];
            raw[d as usize] = dot_i8(query, v) * self.vec_scale[slot];
        }
        self.rank_semantic(&raw, &self.vec_doc, weights, filter, limit, also)
    }

    /// [`Self::semantic_search`] through the neighbour graph: its nearest `limit` passing the
    /// filter are the candidates, scored again (with their session neighbours and `also`)
    /// from the index's own vectors. `None` (scan instead) without a graph, or when the graph
    /// found fewer candidates than wanted (a narrow filter: the scan is exact and then cheap).
    pub(crate) fn semantic_search_ann(
        &self,
        query: &[f32],
        weights: &[f32],
        filter: &MemoryFilter,
        limit: usize,
        also: &[MemoryId],
    ) -> Option<SemanticHits> {
        let graph = self.ann.as_ref()?;
        if graph.dim() != self.dim {
            return None;
        }
        let (q8, _) = quantize(query);
        let keep = |id: &MemoryId| {
            self.by_id.get(id).is_some_and(|&d| {
                self.vec_of[d as usize] != NO_VECTOR
                    && (filter.is_empty() || self.passes(filter, d))
            })
        };
        // A wider pool than `limit`: session neighbours move documents up and down.
        let pool = (limit * ANN_POOL).max(64);
        let near = graph.search(&q8, pool, keep).ok()?;
        if near.len() < pool.min(self.live_vectors as usize) {
            return None;
        }
        let docs: Vec<u32> = near
            .iter()
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        let mut raw = vec![f32::NAN; self.docs.len()];
        let steps = weights.len() as i32;
        let also_docs = also.iter().filter_map(|id| self.by_id.get(id).copied());
        for d in docs.iter().copied().chain(also_docs) {
            for o in std::iter::once(0).chain((1..=steps).flat_map(|s| [-s, s])) {
                let n = if o == 0 {
                    Some(d)
                } else {
                    self.session_neighbour(d, o)
                };
                if let Some(n) = n
                    && raw[n as usize].is_nan()
                {
                    raw[n as usize] = self.cosine_of(n, query);
                }
            }
        }
        Some(self.rank_semantic(&raw, &docs, weights, filter, limit, also))
    }

    /// The query's cosine with a live document's vector (NaN: none).
    pub(crate) fn cosine_of(&self, d: u32, query: &[f32]) -> f32 {
        let slot = self.vec_of[d as usize];
        if slot == NO_VECTOR || self.lens[d as usize] == DEAD {
            return f32::NAN;
        }
        let at = slot as usize * self.dim;
        dot_i8(query, &self.vectors[at..at + self.dim]) * self.vec_scale[slot as usize]
    }

    /// The same ranking as [`Self::semantic_search`] over scores computed elsewhere (a store
    /// that searches vectors itself): `scores` holds the query's cosine with some documents
    /// (the store's nearest ones and their session neighbours, see
    /// [`Self::with_session_neighbours`]); only documents among `candidates` are ranked, and
    /// a neighbour without a score is left out of the mean.
    pub fn semantic_rerank(
        &self,
        scores: &[(MemoryId, f32)],
        candidates: &[MemoryId],
        weights: &[f32],
        filter: &MemoryFilter,
        limit: usize,
        also: &[MemoryId],
    ) -> (Vec<Scored>, Vec<(MemoryId, f32)>) {
        let mut raw = vec![f32::NAN; self.docs.len()];
        for (id, s) in scores {
            if let Some(&d) = self.by_id.get(id)
                && self.lens[d as usize] != DEAD
            {
                raw[d as usize] = *s;
            }
        }
        let docs: Vec<u32> = candidates
            .iter()
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        self.rank_semantic(&raw, &docs, weights, filter, limit, also)
    }

    /// Ranks `docs` by their `raw` score (NaN: no vector) averaged with `weights` of their
    /// session neighbours'; the best `limit` passing `filter`, and the scores of `also`.
    pub(crate) fn rank_semantic(
        &self,
        raw: &[f32],
        docs: &[u32],
        weights: &[f32],
        filter: &MemoryFilter,
        limit: usize,
        also: &[MemoryId],
    ) -> (Vec<Scored>, Vec<(MemoryId, f32)>) {
        let smoothed = |d: u32| -> f32 {
            let own = raw[d as usize];
            if weights.is_empty() || own.is_nan() {
                return own;
            }
            let (mut sum, mut total) = (own, 1.0f32);
            for (step, w) in weights.iter().enumerate() {
                for offset in [-(step as i32) - 1, step as i32 + 1] {
                    if let Some(n) = self.session_neighbour(d, offset) {
                        let s = raw[n as usize];
                        if !s.is_nan() {
                            sum += w * s;
                            total += w;
                        }
                    }
                }
            }
            sum / total
        };
        let mut scored: Vec<(u32, f32)> = docs
            .iter()
            .filter(|&&d| !raw[d as usize].is_nan())
            .filter(|&&d| filter.is_empty() || self.passes(filter, d))
            .map(|&d| (d, smoothed(d)))
            .collect();
        let by_score = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
        if scored.len() > limit && limit > 0 {
            scored.select_nth_unstable_by(limit - 1, by_score);
        }
        scored.truncate(limit);
        scored.sort_unstable_by(by_score);
        let top = scored
            .into_iter()
            .map(|(d, s)| Scored {
                head: self.head(d),
                score: s as f64,
            })
            .collect();
        let extra = also
            .iter()
            .filter_map(|id| {
                let &d = self.by_id.get(id)?;
                let s = smoothed(d);
                (!s.is_nan()).then_some((*id, s))
            })
            .collect();
        (top, extra)
    }
}
