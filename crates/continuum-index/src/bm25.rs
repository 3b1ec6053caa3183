//! Postings and BM25F scoring over a memory's own text and its session neighbours' (with the
//! cache of per-term impacts), speaker boosts, and `search`.

use super::*;

/// Per query term, the BM25F score it gives each document it reaches
/// ([`TextIndex::search_expanded`]), kept while the index stays as it is: every added or
/// forgotten document changes document counts, lengths or neighbours, so any change empties
/// it. Queries of one tenant share their words far more often than not, and a kept term costs
/// an addition per document it reaches instead of a pass over its postings and each
/// posting's neighbours.
///
/// A term's scores are one `f32` per document (candidates look theirs up), computed once the
/// term was asked for [`BUILD_AFTER`] times since the last change and the index has answered
/// [`STEADY_AFTER`] searches since then, so that a term asked only once, or an index that
/// changes every few queries (a conversation learning each turn, or a server learning beside
/// its recalls), costs nothing more: its scores would be dropped before they paid for
/// themselves. And only for terms that reach few enough documents to be worth it
/// ([`TextIndex::worth_keeping`]).
///
/// Bounded by [`IMPACT_CACHE_SCORES`] scores in all: once full, further terms are scored from
/// their postings until the next change empties it (evicting instead would have two sets of
/// terms take turns, each paying to be computed again).
#[derive(Debug, Default)]
pub(crate) struct ImpactCache {
    /// The weights the entries were computed with (bits of each step's offset and weight,
    /// then of the field weight): a query with others starts the cache afresh.
    pub(crate) params: Vec<u32>,
    /// Per term, a score per document (0: not reached).
    pub(crate) entries: FxHashMap<TermId, Arc<[f32]>>,
    /// Scores held over all entries.
    pub(crate) held: usize,
    /// How often each term was asked for since the last change.
    pub(crate) asked: FxHashMap<TermId, u32>,
    /// Per term, the plain BM25 of its own text each of its postings gives, in postings
    /// order ([`DEAD_POSTING`] for a forgotten document): kept from a term's second query
    /// on, as the BM25F scores, and counted in `held` with them.
    pub(crate) own: FxHashMap<TermId, Arc<[f32]>>,
    /// Session-expanded searches answered since the last change.
    pub(crate) searches: u32,
}

/// In a kept list of own-text scores, marks a posting of a forgotten document (scores are
/// never negative).
pub(crate) const DEAD_POSTING: f32 = -1.0;

/// At most this many scores are kept per index: 32 MiB (830 terms at 10,000 memories, 250
/// at the largest index that keeps any).
pub(crate) const IMPACT_CACHE_SCORES: usize = 8 << 20;

/// A term's scores are kept on its query number this many since the index last changed
/// (tests assume 2).
pub(crate) const BUILD_AFTER: u32 = 2;
/// No term's scores are kept before the index has answered this many session-expanded
/// searches since it last changed. Measured beside a learner (bench/wrk/run.sh: one write
/// every five or six recalls), scores kept from the second query on were dropped before their
/// third use and cost recall a fifth of its CPU.
pub(crate) const STEADY_AFTER: u32 = 32;
/// Scores are kept only for terms reaching at most this many documents
/// ([`TextIndex::worth_keeping`]).
pub(crate) const MAX_KEPT_REACH: usize = 16_384;
/// No scores are kept for an index of more documents than this (slots, forgotten ones
/// included).
pub(crate) const MAX_KEPT_DOCS: usize = 32_768;

impl ImpactCache {
    pub(crate) fn params_of(steps: &[(i32, f32)], field_weight: f32) -> Vec<u32> {
        steps
            .iter()
            .flat_map(|&(off, w)| [off as u32, w.to_bits()])
            .chain([field_weight.to_bits()])
            .collect()
    }

    /// Starts afresh unless the entries were computed with `params`.
    pub(crate) fn use_params(&mut self, params: Vec<u32>) {
        if self.params != params {
            // The index did not change: it stays as steady as it was.
            let searches = self.searches;
            self.clear();
            self.searches = searches;
            self.params = params;
        }
    }

    /// Counts one more query for `term`; returns the count.
    pub(crate) fn asked(&mut self, term: TermId) -> u32 {
        let n = self.asked.entry(term).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Keeps a term's BM25F scores (`own`: its own-text scores per posting) if there is room
    /// (another thread may have kept them since).
    pub(crate) fn insert(&mut self, term: TermId, scores: Arc<[f32]>, own: bool) {
        let map = if own {
            &mut self.own
        } else {
            &mut self.entries
        };
        if map.contains_key(&term) || self.held + scores.len() > IMPACT_CACHE_SCORES {
            return;
        }
        self.held += scores.len();
        map.insert(term, scores);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.own.clear();
        self.held = 0;
        self.asked.clear();
        self.searches = 0;
    }
}

impl TextIndex {
    /// Drops the cached BM25F scores: the index is about to change.
    pub(crate) fn forget_impacts(&mut self) {
        self.impacts
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// BM25 over query `terms` (from [`Analyzer::query_terms`]): the best `limit` live
    /// documents passing `filter`.
    pub fn search(&self, terms: &[TermId], filter: &MemoryFilter, limit: usize) -> Vec<Scored> {
        self.search_in_context(terms, &[], filter, limit)
    }

    /// BM25F over two fields per document: its own text, and the text of its session
    /// neighbours (`weights[i]` for those `i + 1` places away), the neighbour field counting
    /// `field_weight` of the own one. Unlike spreading scores, a document that holds one query
    /// word while its neighbour holds another matches both (saturation applies to their sum).
    ///
    /// For speed the two-field score is computed for the strongest own-text matches (at least
    /// 256) and their neighbours only; other documents keep their own-text BM25.
    ///
    /// What a term gives a document under BM25F depends on the index alone, not on the rest
    /// of the query: a term asked for again while the index is unchanged has those scores
    /// computed for every document it reaches and kept ([`ImpactCache`]), and a query whose
    /// terms all have them adds them up for its candidates instead of reading postings and
    /// neighbours. Both ways give the same scores, to the bit.
    ///
    /// A document whose speaker the query names (a query term among the words of its
    /// `speaker`) scores `1 + speaker_boost` times as much: "what did Anna say about …" is
    /// mostly about Anna's own turns, yet her name is too common in her conversations to weigh
    /// anything as a term.
    pub fn search_expanded(
        &self,
        terms: &[TermId],
        weights: &[f32],
        field_weight: f32,
        speaker_boost: f32,
        filter: &MemoryFilter,
        limit: usize,
    ) -> Vec<Scored> {
        if terms.is_empty() || self.live == 0 || limit == 0 {
            return Vec::new();
        }
        let avgdl = self.avgdl();
        let postings: Vec<&Vec<Posting>> = terms.iter().filter_map(|t| self.terms.get(t)).collect();
        let bm25 = |tf: f32, idf: f32| idf * tf * (K1 + 1.0) / (tf + K1);
        // 1. Own text only.
        let (mut scores, touched) = self.bm25_kept(terms);
        let steps = steps_of(weights);
        if steps.is_empty() || field_weight <= 0.0 {
            self.boost_speakers(terms, speaker_boost, &touched, &mut scores);
            return self.best(touched, &scores, filter, limit);
        }
        // 2. Candidates: the strongest matches and their neighbours.
        let seeds = seeds(&touched, &scores, limit);
        // Per step, where its neighbour sits in a `near` entry (None beyond two places).
        let step_slot: Vec<Option<usize>> = steps.iter().map(|(off, _)| near_slot(*off)).collect();
        let live_neighbour = |d: u32, s: usize| {
            let m = match step_slot[s] {
                Some(i) => self.near[d as usize][i],
                None => self.session_neighbour(d, steps[s].0).unwrap_or(NO_DOC),
            };
            (m != NO_DOC && self.lens[m as usize] != DEAD).then_some(m)
        };
        // Per document: NONE (not involved), NEIGHBOUR (only a candidate's neighbour), or
        // its candidate number.
        const NONE: u32 = u32::MAX;
        const NEIGHBOUR: u32 = u32::MAX - 1;
        let mut role = Pooled::filled(self.docs.len(), NONE);
        let mut candidates: Vec<u32> = Vec::with_capacity(seeds.len() * (1 + steps.len()));
        for &d in &seeds {
            role[d as usize] = candidates.len() as u32;
            candidates.push(d);
        }
        for &d in &seeds {
            for s in 0..steps.len() {
                if let Some(m) = live_neighbour(d, s)
                    && role[m as usize] == NONE
                {
                    role[m as usize] = candidates.len() as u32;
                    candidates.push(m);
                }
            }
        }
        // 3. Their two-field score: from the kept scores of each term when all are there,
        //    otherwise term by term from the postings.
        let mut expanded = Pooled::filled(candidates.len(), 0f32);
        if let Some(kept) = self.cached_impacts(terms, &postings, &steps, field_weight) {
            // Each candidate's sum grows in term order, as in the pass below; two terms per
            // pass over the candidates.
            for pair in kept.chunks(2) {
                match pair {
                    [a, b] => {
                        let (a, b): (&[f32], &[f32]) = (a, b);
                        for (sum, &c) in expanded.iter_mut().zip(&candidates) {
                            *sum = (*sum + a[c as usize]) + b[c as usize];
                        }
                    }
                    [a] => {
                        let a: &[f32] = a;
                        for (sum, &c) in expanded.iter_mut().zip(&candidates) {
                            *sum += a[c as usize];
                        }
                    }
                    _ => unreachable!("chunks of two"),
                }
            }
        } else {
            // Term by term. A posting of document `m` is pushed to the
            //    candidates it feeds: `m` itself (own field) and the candidates `m` is the neighbour
            //    of at each step (neighbourhood is symmetric: `m` is `c`'s neighbour at offset `o`
            //    when `c` is `m`'s at `-o`). Each candidate keeps one slot per step, so its
            //    neighbour field is summed in step order, as if read from its neighbours.
            // Per candidate, the length normalisation of its two fields (a term's tf in each is
            // divided by these).
            let avg_nb = (avgdl * steps.iter().map(|(_, w)| w).sum::<f32>()).max(1.0);
            // Scratch arrays come from the thread's pool: a search would otherwise allocate and
            // zero tens of kilobytes afresh.
            let mut own_norm = Pooled::filled(candidates.len(), 0f32);
            let mut nb_norm = Pooled::filled(candidates.len(), 0f32);
            for (k, &c) in candidates.iter().enumerate() {
                let mut len = 0f32;
                for (s, (_, w)) in steps.iter().enumerate() {
                    if let Some(m) = live_neighbour(c, s) {
                        if role[m as usize] == NONE {
                            role[m as usize] = NEIGHBOUR;
                        }
                        len += w * self.lens[m as usize] as f32;
                    }
                }
                own_norm[k] = 1.0 - B + B * self.lens[c as usize] as f32 / avgdl;
                nb_norm[k] = 1.0 - B + B * len / avg_nb;
            }
            let n_steps = steps.len();
            // Per step, where in a posting's `near` entry the candidate it feeds is (the neighbour
            // at the opposite offset), or None beyond two places (looked up in its session).
            let fed_by: Vec<Option<usize>> = steps.iter().map(|(off, _)| near_slot(-off)).collect();
            let mut own_tf = Pooled::filled(candidates.len(), 0f32);
            let mut nb_tf = Pooled::filled(candidates.len() * n_steps, 0f32);
            // 1 when a candidate is in `hits` for the current term.
            let mut hit = Pooled::filled(candidates.len(), 0u32);
            let mut hits: Vec<u32> = Vec::new();
            for p in &postings {
                let idf = self.idf(p.len());
                for post in p.iter() {
                    let m = post.doc;
                    if role[m as usize] == NONE || self.lens[m as usize] == DEAD {
                        continue;
                    }
                    let tf = post.tf as f32;
                    let k = role[m as usize];
                    if k < NEIGHBOUR {
                        own_tf[k as usize] = tf;
                        if hit[k as usize] == 0 {
                            hit[k as usize] = 1;
                            hits.push(k);
                        }
                    }
                    let near = &self.near[m as usize];
                    for (s, (off, _)) in steps.iter().enumerate() {
                        let c = match fed_by[s] {
                            Some(i) => near[i],
                            None => self.session_neighbour(m, -off).unwrap_or(NO_DOC),
                        };
                        if c == NO_DOC {
                            continue;
                        }
                        let k = role[c as usize];
                        if k < NEIGHBOUR {
                            nb_tf[k as usize * n_steps + s] = tf;
                            if hit[k as usize] == 0 {
                                hit[k as usize] = 1;
                                hits.push(k);
                            }
                        }
                    }
                }
                for &k in &hits {
                    let k = k as usize;
                    hit[k] = 0;
                    let own = own_tf[k] / own_norm[k];
                    let slots = &mut nb_tf[k * n_steps..(k + 1) * n_steps];
                    let nb: f32 = steps
                        .iter()
                        .zip(slots.iter())
                        .map(|((_, w), t)| w * t)
                        .sum();
                    slots.fill(0.0);
                    own_tf[k] = 0.0;
                    let tf = own + field_weight * nb / nb_norm[k];
                    if tf > 0.0 {
                        expanded[k] += bm25(tf, idf);
                    }
                }
                hits.clear();
            }
        }
        // 4. Final scores, ranked as they are computed: a candidate keeps the better of its
        //    own-text and two-field scores; a touched document that is no candidate keeps its
        //    own. Either is then raised for a named speaker.
        let boost = (speaker_boost > 0.0 && self.with_speaker != 0).then_some(speaker_boost);
        let everything = filter.is_empty();
        let passes = |d: u32| everything || self.passes(filter, d);
        let mut top = TopKeys::new(limit);
        // Every touched document scores (see `idf`), and so does a candidate that counts. The
        // filter test is written out here: as `passes`, it was called rather than inlined.
        for (&c, &e) in candidates.iter().zip(expanded.iter()) {
            let score = scores[c as usize].max(e);
            if score > 0.0 && (everything || self.passes(filter, c)) {
                top.offer(rank_key(self.speaking(terms, boost, c, score), c));
            }
        }
        // Every touched document is a seed, hence a candidate, unless there were more of them
        // than seeds: the rest keep their own-text score. Unless a filter or a speaker's boost
        // moves scores, they cannot place: every seed outranks them by its own text already.
        if touched.len() > seeds.len() && (boost.is_some() || !everything || seeds.len() < limit) {
            for &d in &touched {
                if role[d as usize] >= NEIGHBOUR && passes(d) {
                    top.offer(rank_key(
                        self.speaking(terms, boost, d, scores[d as usize]),
                        d,
                    ));
                }
            }
        }
        let mut top = top.into_keys();
        top.sort_unstable_by(|a, b| b.cmp(a));
        top.into_iter()
            .map(|key| {
                let d = key as u32;
                Scored {
                    head: self.head(d),
                    score: key_score(key) as f64,
                }
            })
            .collect()
    }

    /// The kept BM25F scores of each of `terms` (those with `postings`, in order), or None
    /// when some are missing; computes those of terms asked for often enough.
    pub(crate) fn cached_impacts(
        &self,
        terms: &[TermId],
        postings: &[&Vec<Posting>],
        steps: &[(i32, f32)],
        field_weight: f32,
    ) -> Option<Vec<Arc<[f32]>>> {
        let params = ImpactCache::params_of(steps, field_weight);
        let present: Vec<TermId> = terms
            .iter()
            .copied()
            .filter(|t| self.terms.contains_key(t))
            .collect();
        let mut lists: Vec<Option<Arc<[f32]>>> = Vec::with_capacity(present.len());
        let mut build: Vec<usize> = Vec::new();
        {
            let mut cache = self.impact_cache();
            cache.use_params(params);
            let steady = cache.searches >= STEADY_AFTER;
            cache.searches = cache.searches.saturating_add(1);
            for (i, &t) in present.iter().enumerate() {
                let list = cache.entries.get(&t).cloned();
                if list.is_none()
                    && self.worth_keeping(postings[i].len(), steps.len())
                    && cache.asked(t) >= BUILD_AFTER
                    && steady
                    && cache.held + (build.len() + 1) * self.docs.len() <= IMPACT_CACHE_SCORES
                {
                    build.push(i);
                }
                lists.push(list);
            }
        }
        let missing = lists.iter().filter(|l| l.is_none()).count();
        for &i in &build {
            let mut dense = vec![0f32; self.docs.len()];
            for (d, score) in self.term_impacts(postings[i], steps, field_weight) {
                dense[d as usize] = score;
            }
            let list: Arc<[f32]> = dense.into();
            self.impact_cache().insert(present[i], list.clone(), false);
            lists[i] = Some(list);
        }
        if build.len() < missing {
            return None;
        }
        lists.into_iter().collect()
    }

    /// Whether scores are worth keeping for a term with `postings` documents: computing them
    /// visits every document it reaches (up to `1 + steps` per posting), and a kept term saves
    /// about the work of the candidates' neighbours, a few thousand documents per query
    /// whatever the index size. A term reaching more than [`MAX_KEPT_REACH`] documents (a
    /// word in a fifth of a large tenant's memories) would cost more to compute than it
    /// saves over many queries. Above [`MAX_KEPT_DOCS`] documents nothing is kept: at 100,000
    /// generated memories the kept terms did not make the median query faster, and computing
    /// them lengthened the slowest ones (`continuum bench --sizes 100000`).
    pub(crate) fn worth_keeping(&self, postings: usize, steps: usize) -> bool {
        self.docs.len() <= MAX_KEPT_DOCS
            && (postings * (1 + steps)).min(self.docs.len()) <= MAX_KEPT_REACH
    }

    pub(crate) fn impact_cache(&self) -> std::sync::MutexGuard<'_, ImpactCache> {
        // The cache holds derived numbers only: after a panic elsewhere it is still sound.
        self.impacts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The BM25F score one term with these `postings` gives each live document it reaches
    /// (the score [`Self::search_expanded`] computes for a candidate),
    /// through the document's own text or its neighbours'. A document's
    /// neighbour field is the weighted sum of its live neighbours' term frequencies, in
    /// `steps` order, and its length the same sum of their lengths.
    pub(crate) fn term_impacts(
        &self,
        postings: &[Posting],
        steps: &[(i32, f32)],
        field_weight: f32,
    ) -> Vec<(u32, f32)> {
        let n = self.docs.len();
        let avgdl = self.avgdl();
        let avg_nb = (avgdl * steps.iter().map(|(_, w)| w).sum::<f32>()).max(1.0);
        let idf = self.idf(postings.len());
        let live_neighbour = |d: u32, offset: i32| {
            let m = match near_slot(offset) {
                Some(i) => self.near[d as usize][i],
                None => self.session_neighbour(d, offset).unwrap_or(NO_DOC),
            };
            (m != NO_DOC && self.lens[m as usize] != DEAD).then_some(m)
        };
        // Term frequency per document (0: none, or forgotten), and the documents reached:
        // those holding the term and those that have one of them as a neighbour
        // (neighbourhood is symmetric: `m` is `c`'s neighbour at offset `o` when `c` is
        // `m`'s at `-o`).
        let mut tf_of = Pooled::filled(n, 0f32);
        let mut seen = Pooled::filled(n, 0u32);
        let mut reached: Vec<u32> = Vec::with_capacity(postings.len() * (1 + steps.len()));
        for p in postings {
            if self.lens[p.doc as usize] == DEAD {
                continue;
            }
            tf_of[p.doc as usize] = p.tf as f32;
            if seen[p.doc as usize] == 0 {
                seen[p.doc as usize] = 1;
                reached.push(p.doc);
            }
            for (off, _) in steps {
                if let Some(c) = live_neighbour(p.doc, -off)
                    && seen[c as usize] == 0
                {
                    seen[c as usize] = 1;
                    reached.push(c);
                }
            }
        }
        reached
            .into_iter()
            .filter_map(|d| {
                let own = tf_of[d as usize] / (1.0 - B + B * self.lens[d as usize] as f32 / avgdl);
                let (mut nb, mut nb_len) = (0f32, 0f32);
                for &(off, w) in steps {
                    if let Some(m) = live_neighbour(d, off) {
                        nb += w * tf_of[m as usize];
                        nb_len += w * self.lens[m as usize] as f32;
                    }
                }
                let tf = own + field_weight * nb / (1.0 - B + B * nb_len / avg_nb);
                // Zero when the term is in every document (forgotten ones count until a
                // rebuild): such a term tells nothing and puts no document in the results.
                let score = idf * tf * (K1 + 1.0) / (tf + K1);
                (score > 0.0).then_some((d, score))
            })
            .collect()
    }

    /// BM25 where each document also earns `weights[i]` times the BM25 of the documents `i + 1`
    /// places before and after it in its session: a turn's meaning lives partly in the turns
    /// around it (the answer often follows the question).
    pub fn search_in_context(
        &self,
        terms: &[TermId],
        weights: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Vec<Scored> {
        if terms.is_empty() || self.live == 0 || limit == 0 {
            return Vec::new();
        }
        let (mut scores, mut touched) = self.bm25(terms);
        if !weights.is_empty() {
            // Spread from the strongest direct matches only: a weak match's neighbours cannot
            // reach the top, and common words match tens of thousands of documents.
            // Strongest first: a neighbour's score adds the seeds' shares in this order.
            let mut seeds = seeds(&touched, &scores, limit);
            seeds.sort_unstable_by_key(|&d| std::cmp::Reverse(rank_key(scores[d as usize], d)));
            let seeds: Vec<(u32, f32)> =
                seeds.into_iter().map(|d| (d, scores[d as usize])).collect();
            for (d, s) in seeds {
                for (step, w) in weights.iter().enumerate() {
                    for offset in [-(step as i32) - 1, step as i32 + 1] {
                        let Some(n) = self.session_neighbour(d, offset) else {
                            continue;
                        };
                        if self.lens[n as usize] == DEAD {
                            continue;
                        }
                        let slot = &mut scores[n as usize];
                        if *slot == 0.0 {
                            touched.push(n);
                        }
                        *slot += w * s;
                    }
                }
            }
        }
        self.best(touched, &scores, filter, limit)
    }

    pub(crate) fn avgdl(&self) -> f32 {
        (self.total_len as f32 / self.live.max(1) as f32).max(1.0)
    }

    /// BM25's inverse document frequency for a term in `df` live documents.
    /// Never zero, so that every match scores: `df` counts the postings of forgotten documents
    /// too (they stay until a rebuild), so it can exceed the live count, and such a term
    /// weighs what a term in every live document does; where `1 + x` rounds to 1 (millions
    /// of documents), `x` is the logarithm to float precision.
    pub(crate) fn idf(&self, df: usize) -> f32 {
        let (n, df) = (self.live as f32, df as f32);
        let x = (n - df + 0.5).max(0.5) / (df + 0.5);
        let idf = (1.0 + x).ln();
        if idf > 0.0 { idf } else { x }
    }

    /// Plain BM25 of every live document matching `terms`: dense scores and the documents
    /// touched.
    pub(crate) fn bm25(&self, terms: &[TermId]) -> (Pooled<f32>, Vec<u32>) {
        let avgdl = self.avgdl();
        let mut scores = Pooled::filled(self.docs.len(), 0f32);
        let mut touched: Vec<u32> = Vec::new();
        for term in terms {
            let Some(postings) = self.terms.get(term) else {
                continue;
            };
            let idf = self.idf(postings.len());
            for p in postings {
                let len = self.lens[p.doc as usize];
                if len == DEAD {
                    continue;
                }
                let tf = p.tf as f32;
                let norm = K1 * (1.0 - B + B * len as f32 / avgdl);
                let slot = &mut scores[p.doc as usize];
                if *slot == 0.0 {
                    touched.push(p.doc);
                }
                *slot += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        (scores, touched)
    }

    /// [`Self::bm25`], to the bit, reading the kept own-text scores of terms asked for
    /// before since the index last changed ([`ImpactCache::own`]) instead of computing them,
    /// and keeping those of such terms that have none yet.
    pub(crate) fn bm25_kept(&self, terms: &[TermId]) -> (Pooled<f32>, Vec<u32>) {
        // Per term: its postings, its kept scores, and whether to keep them now.
        type Own<'a> = (TermId, &'a [Posting], Option<Arc<[f32]>>, bool);
        let mut lists: Vec<Own<'_>> = Vec::with_capacity(terms.len());
        {
            let cache = self.impact_cache();
            for &t in terms {
                let Some(postings) = self.terms.get(&t) else {
                    continue;
                };
                let kept = cache.own.get(&t).cloned();
                let keep = kept.is_none()
                    && self.docs.len() <= MAX_KEPT_DOCS
                    && cache.asked.get(&t).is_some_and(|&n| n >= 1)
                    && cache.held + postings.len() <= IMPACT_CACHE_SCORES;
                lists.push((t, postings.as_slice(), kept, keep));
            }
        }
        let avgdl = self.avgdl();
        let mut scores = Pooled::filled(self.docs.len(), 0f32);
        let mut touched: Vec<u32> = Vec::new();
        for (term, postings, kept, keep) in lists {
            if let Some(own) = kept {
                for (p, &s) in postings.iter().zip(own.iter()) {
                    if s == DEAD_POSTING {
                        continue;
                    }
                    let slot = &mut scores[p.doc as usize];
                    if *slot == 0.0 {
                        touched.push(p.doc);
                    }
                    *slot += s;
                }
                continue;
            }
            let idf = self.idf(postings.len());
            let mut own: Vec<f32> = if keep {
                Vec::with_capacity(postings.len())
            } else {
                Vec::new()
            };
            for p in postings {
                let len = self.lens[p.doc as usize];
                if len == DEAD {
                    if keep {
                        own.push(DEAD_POSTING);
                    }
                    continue;
                }
                let tf = p.tf as f32;
                let norm = K1 * (1.0 - B + B * len as f32 / avgdl);
                let s = idf * tf * (K1 + 1.0) / (tf + norm);
                if keep {
                    own.push(s);
                }
                let slot = &mut scores[p.doc as usize];
                if *slot == 0.0 {
                    touched.push(p.doc);
                }
                *slot += s;
            }
            if keep {
                self.impact_cache().insert(term, own.into(), true);
            }
        }
        (scores, touched)
    }

    /// Multiplies the scores of the `touched` documents whose speaker a query term names.
    /// `score` raised by `boost` (if any) when the query names the speaker of document `d`.
    #[inline(always)]
    pub(crate) fn speaking(&self, terms: &[TermId], boost: Option<f32>, d: u32, score: f32) -> f32 {
        match boost {
            Some(b) if self.speaker_of(d).iter().any(|t| terms.contains(t)) => score * (1.0 + b),
            _ => score,
        }
    }

    pub(crate) fn boost_speakers(
        &self,
        terms: &[TermId],
        boost: f32,
        touched: &[u32],
        scores: &mut [f32],
    ) {
        if boost <= 0.0 || self.with_speaker == 0 {
            return;
        }
        for &d in touched {
            if self.speaker_of(d).iter().any(|t| terms.contains(t)) {
                scores[d as usize] *= 1.0 + boost;
            }
        }
    }

    /// The best `limit` of the `touched` documents by `scores`, passing `filter`, best first
    /// (ties go to the later document).
    pub(crate) fn best(
        &self,
        touched: Vec<u32>,
        scores: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Vec<Scored> {
        let everything = filter.is_empty();
        let passing = touched
            .into_iter()
            .filter(|&d| everything || self.passes(filter, d));
        top_docs(passing, scores, limit)
            .into_iter()
            .map(|d| Scored {
                head: self.head(d),
                score: scores[d as usize] as f64,
            })
            .collect()
    }
}
