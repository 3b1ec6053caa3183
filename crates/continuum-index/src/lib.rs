//! Derived indexes over a tenant's memories, held in memory: BM25 full text and concept
//! mentions.
//!
//! They are derived data, never the only copy of anything: the engine builds an index from the
//! store on first use and catches it up from the change log before each read, so writes by
//! other processes are seen and a crash loses nothing. Scoring is term-at-a-time into a dense
//! accumulator, which costs O(postings of the query terms) with a tiny constant and no SQL.
//!
//! Sentence vectors of one model live beside the text, one per document at most, held as 8-bit
//! integers with a scale per vector; the engine feeds them from the store's vector log. They
//! are scanned exhaustively (a dot product per embedded document) unless an approximate
//! neighbour graph ([`ann::Ann`]) is attached, which the engine does above a size threshold;
//! the graph can be saved and loaded (it is the one part worth persisting: it takes minutes
//! to build at 100k vectors, the rest seconds).
//!
//! Not here: persistence of the text index itself (it is rebuilt per process).

mod analyze;
pub mod ann;

pub use analyze::{Analyzer, TermId};

use continuum_core::MemoryId;
pub use continuum_core::store::IndexDoc;
use continuum_core::store::{MemoryFilter, MemoryHead, Scored};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

/// Per-document scratch arrays of a search (scores, term frequencies, roles), reused by each
/// thread instead of allocated per query: with glibc, every allocation of that size also
/// consolidated the allocator's free lists, a tenth of a recall's time under load.
mod scratch {
    use std::cell::RefCell;

    thread_local! {
        static F32S: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
        static U32S: RefCell<Vec<Vec<u32>>> = const { RefCell::new(Vec::new()) };
    }

    /// Buffers a thread keeps of each type (a BM25F search holds six `f32` ones at once); a
    /// larger one (a bigger tenant) replaces none. A buffer keeps the largest size it was
    /// used at, so a thread holds at most `KEEP × 4` bytes per document of the largest tenant
    /// of each type: 32 MB at a million memories.
    const KEEP: usize = 8;

    /// A vector of `n` copies of a value, returned to its thread's pool when dropped.
    pub(crate) struct Pooled<T: Pool>(Vec<T>);

    pub(crate) trait Pool: Copy + 'static {
        fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> R;
    }

    impl Pool for f32 {
        fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f32>>) -> R) -> R {
            F32S.with(|p| f(&mut p.borrow_mut()))
        }
    }

    impl Pool for u32 {
        fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<u32>>) -> R) -> R {
            U32S.with(|p| f(&mut p.borrow_mut()))
        }
    }

    impl<T: Pool> Pooled<T> {
        pub(crate) fn filled(n: usize, value: T) -> Self {
            let mut v = T::with_pool(|p| p.pop()).unwrap_or_default();
            v.clear();
            v.resize(n, value);
            Pooled(v)
        }
    }

    impl<T: Pool> std::ops::Deref for Pooled<T> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.0
        }
    }

    impl<T: Pool> std::ops::DerefMut for Pooled<T> {
        fn deref_mut(&mut self) -> &mut [T] {
            &mut self.0
        }
    }

    impl<T: Pool> Drop for Pooled<T> {
        fn drop(&mut self) {
            let v = std::mem::take(&mut self.0);
            T::with_pool(|p| {
                if p.len() < KEEP {
                    p.push(v);
                }
            });
        }
    }
}

use scratch::Pooled;

/// BM25 parameters (the usual defaults, as in SQLite FTS5 and Lucene).
const K1: f32 = 1.2;
const B: f32 = 0.75;

#[derive(Debug)]
struct Doc {
    head: MemoryHead,
    alive: bool,
}

/// Symmetric 8-bit quantisation with one scale per vector: the largest component maps to ±127.
/// For unit vectors of a few hundred dimensions the dot product moves by about 0.001.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
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
fn dot_i8(q: &[f32], v: &[i8]) -> f32 {
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

/// A document's place in a ranking as one integer: its score's bits in `f32::total_cmp` order
/// above, the document below, so that larger keys rank first (higher score, then the later
/// document). Selecting and sorting plain integers beats comparing through the score array.
fn rank_key(score: f32, doc: u32) -> u64 {
    let bits = score.to_bits();
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(ordered) << 32) | u64::from(doc)
}

/// The score a [`rank_key`] was made of.
fn key_score(key: u64) -> f32 {
    let ordered = (key >> 32) as u32;
    f32::from_bits(if ordered >> 31 == 1 {
        ordered & 0x7fff_ffff
    } else {
        !ordered
    })
}

/// The best `limit` of `docs` by `scores` (score, then the later document), best first.
fn top_docs(docs: impl Iterator<Item = u32>, scores: &[f32], limit: usize) -> Vec<u32> {
    let mut top = top_keys(docs, scores, limit);
    top.sort_unstable_by(|a, b| b.cmp(a));
    top.into_iter().map(|k| k as u32).collect()
}

/// The [`rank_key`]s of the best `limit` of `docs` by `scores`, in no particular order.
fn top_keys(docs: impl Iterator<Item = u32>, scores: &[f32], limit: usize) -> Vec<u64> {
    top_keys_of(docs.map(|d| rank_key(scores[d as usize], d)), limit)
}

/// The largest `limit` of `keys` (distinct [`rank_key`]s), in no particular order.
fn top_keys_of(keys: impl Iterator<Item = u64>, limit: usize) -> Vec<u64> {
    if limit > HEAP_LIMIT {
        return largest(keys.collect(), limit);
    }
    let mut top = TopKeys::new(limit);
    for key in keys {
        top.offer(key);
    }
    top.into_keys()
}

/// The largest `limit` of `all`, in no particular order.
fn largest(mut all: Vec<u64>, limit: usize) -> Vec<u64> {
    if all.len() > limit {
        all.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
        all.truncate(limit);
    }
    all
}

/// The largest `limit` of the [`rank_key`]s offered to it (keys are distinct: they hold the
/// document, so the set is exact).
struct TopKeys {
    limit: usize,
    /// Up to [`HEAP_LIMIT`]: the best keys so far, smallest on top.
    heap: std::collections::BinaryHeap<std::cmp::Reverse<u64>>,
    /// The key on top once the heap is full (a key must beat it to enter), `u64::MAX` before.
    least: u64,
    /// Above [`HEAP_LIMIT`]: every key, selected from at the end.
    all: Vec<u64>,
}

impl TopKeys {
    fn new(limit: usize) -> Self {
        TopKeys {
            limit,
            heap: std::collections::BinaryHeap::with_capacity(limit.min(HEAP_LIMIT)),
            least: u64::MAX,
            all: Vec::new(),
        }
    }

    /// Most keys are turned away by one comparison.
    #[inline(always)]
    fn offer(&mut self, key: u64) {
        use std::cmp::Reverse;
        if self.limit > HEAP_LIMIT {
            self.all.push(key);
        } else if key > self.least {
            if let Some(mut top) = self.heap.peek_mut() {
                *top = Reverse(key);
            }
            self.least = self.heap.peek().map_or(u64::MAX, |k| k.0);
        } else if self.heap.len() < self.limit {
            self.heap.push(Reverse(key));
            if self.heap.len() == self.limit {
                self.least = self.heap.peek().map_or(u64::MAX, |k| k.0);
            }
        }
    }

    fn into_keys(self) -> Vec<u64> {
        if self.limit > HEAP_LIMIT {
            largest(self.all, self.limit)
        } else {
            self.heap.into_iter().map(|k| k.0).collect()
        }
    }
}

/// Up to this many best documents, [`top_docs`] keeps a heap of them; beyond, a selection over
/// all of them is cheaper (measured with `bench/wrk/recall-instr.sh`: results want 60, BM25F
/// seeds 480).
const HEAP_LIMIT: usize = 128;

/// The strongest of the `touched` documents (at least 256, or 8 per result wanted): the ones
/// whose session neighbours are worth looking at. Ties go to the later document. In no
/// particular order: the scores computed for them do not depend on it.
fn seeds(touched: &[u32], scores: &[f32], limit: usize) -> Vec<u32> {
    let wanted = (limit * 8).max(256);
    if touched.len() <= wanted {
        return touched.to_vec();
    }
    top_keys(touched.iter().copied(), scores, wanted)
        .into_iter()
        .map(|k| k as u32)
        .collect()
}

/// A few dozen concept keys, by number: each key's position among those asked for, in an
/// array indexed by concept number, so that a document's concepts are looked up one load each.
/// The array stays with the thread and is cleared entry by entry when the set is dropped.
struct KeySet {
    /// Concept numbers asked for (their entries in `at` are the ones to clear).
    wanted: Vec<u32>,
    /// Per concept number, its key's position, or [`KeySet::NONE`].
    at: Vec<u32>,
}

thread_local! {
    /// The arrays of dropped key sets, every entry `KeySet::NONE`.
    static KEY_POSITIONS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl KeySet {
    const NONE: u32 = u32::MAX;

    /// None when the index knows none of `keys`.
    fn new(ix: &TextIndex, keys: &[&str]) -> Option<Self> {
        let found: Vec<(u32, usize)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| ix.concept_ids.get(*k).map(|&c| (c, i)))
            .collect();
        if found.is_empty() {
            return None;
        }
        let mut at = KEY_POSITIONS.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if at.len() < ix.concept_ids.len() {
            at.resize(ix.concept_ids.len(), Self::NONE);
        }
        let mut wanted = Vec::with_capacity(found.len());
        for (c, i) in found {
            // A key named twice keeps its first position.
            if at[c as usize] == Self::NONE {
                at[c as usize] = i as u32;
                wanted.push(c);
            }
        }
        Some(KeySet { wanted, at })
    }

    /// Sets `at` to the positions of the keys document `ord` mentions, ascending.
    fn mentioned_by(&self, ix: &TextIndex, ord: u32, at: &mut Vec<usize>) {
        at.clear();
        let (from, to) = (
            ix.concepts_from[ord as usize] as usize,
            ix.concepts_from[ord as usize + 1] as usize,
        );
        for &c in &ix.doc_concepts[from..to] {
            let i = self.at[c as usize];
            if i != Self::NONE {
                at.push(i as usize);
            }
        }
        at.sort_unstable();
    }
}

impl Drop for KeySet {
    fn drop(&mut self) {
        for &c in &self.wanted {
            self.at[c as usize] = Self::NONE;
        }
        let at = std::mem::take(&mut self.at);
        KEY_POSITIONS.with(|p| {
            let mut kept = p.borrow_mut();
            if kept.len() < at.len() {
                *kept = at;
            }
        });
    }
}

/// Marks a forgotten document in `lens`.
const DEAD: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    tf: u16,
}

/// One tenant's full-text and concept-mention index.
#[derive(Debug, Default)]
pub struct TextIndex {
    docs: Vec<Doc>,
    /// Token count per document, or [`DEAD`]: kept apart from `docs` so the scoring loop reads
    /// four bytes per posting.
    lens: Vec<u32>,
    by_id: FxHashMap<MemoryId, u32>,
    terms: FxHashMap<TermId, Vec<Posting>>,
    /// Concept keys, interned: key → concept number.
    concept_ids: FxHashMap<Box<str>, u32>,
    /// Per concept number, the documents mentioning it, in insertion order.
    concept_docs: Vec<Vec<u32>>,
    /// The numbers of the concepts each document mentions, one document after another:
    /// document `d`'s are `doc_concepts[concepts_from[d]..concepts_from[d + 1]]`. One array
    /// rather than one allocation per document: recall reads these for hundreds of
    /// documents scattered over the index, and each separate allocation is a cache miss more.
    doc_concepts: Vec<u32>,
    /// Where each document's concepts start in `doc_concepts`, and (last) where they end.
    concepts_from: Vec<u32>,
    session_slots: FxHashMap<Box<str>, u32>,
    /// Per session slot, its documents in time order.
    sessions: Vec<Vec<u32>>,
    /// Per document, its session slot and its position in that session's time order: apart
    /// from `docs` so that walking to neighbours reads 12 bytes per document.
    places: Vec<Option<(u32, u32)>>,
    /// Per document, its session neighbours 2 and 1 places before and 1 and 2 after
    /// ([`NO_DOC`]: none): ranking asks for these thousands of times per query, and one
    /// 16-byte read beats walking `places` and `sessions`.
    near: Vec<[u32; 4]>,
    total_len: u64,
    live: u32,
    /// The change-log position this index reflects.
    pub seq: u64,
    /// The store's commit marker read before the index was last brought up to `seq` (see
    /// `MemoryStore::commit_marker`): while the store still shows it, nothing was written.
    pub marker: Option<u64>,
    /// Per document, its slot in `vectors`, or [`NO_VECTOR`].
    vec_of: Vec<u32>,
    /// Vectors quantised to 8 bits (`dim` per slot, one slot after another): a search reads a
    /// quarter of the memory f32 would take, which is what bounds an exact scan.
    vectors: Vec<i8>,
    /// Per vector slot, the scale that turns its 8-bit components back into floats.
    vec_scale: Vec<f32>,
    /// Per vector slot, its document.
    vec_doc: Vec<u32>,
    dim: usize,
    /// Live documents that have a vector.
    live_vectors: u32,
    /// The vector-log position this index reflects.
    pub vec_seq: u64,
    /// Per vector slot, the vector-log position of its vector.
    vec_seqs: Vec<u64>,
    /// Per document, the terms of its speaker's name (`metadata.speaker`), if any.
    speakers: Vec<Box<[TermId]>>,
    /// Documents (forgotten ones included) whose `speakers` entry is not empty: none means
    /// no query can name a speaker.
    with_speaker: u32,
    /// The approximate neighbour graph over the vectors, when one is attached.
    ann: Option<ann::Ann>,
    /// BM25F scores per query term, valid until the next change.
    impacts: Mutex<ImpactCache>,
}

/// What a neighbour graph lacks against an index: vectors to (re)insert and memories to drop,
/// up to the vector-log position `seq` (see [`TextIndex::ann_backlog`]).
#[derive(Debug, Default)]
pub struct AnnBacklog {
    pub insert: Vec<(MemoryId, Vec<i8>)>,
    pub remove: Vec<MemoryId>,
    pub seq: u64,
}

impl AnnBacklog {
    pub fn len(&self) -> usize {
        self.insert.len() + self.remove.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies it to `graph`; `progress` hears how many vectors went in so far.
    pub fn apply_to(
        &self,
        graph: &mut ann::Ann,
        progress: impl Fn(usize) + Sync,
    ) -> continuum_core::Result<()> {
        for id in &self.remove {
            graph.forget(id)?;
        }
        let items: Vec<(MemoryId, &[i8])> = self
            .insert
            .iter()
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        graph.insert_many(&items, progress)?;
        graph.synced_seq = graph.synced_seq.max(self.seq);
        Ok(())
    }
}

/// Session steps of a neighbour weighting: `weights[i]` applies to the neighbours `i + 1`
/// places before and after, listed as (offset, weight), zero weights left out.
fn steps_of(weights: &[f32]) -> Vec<(i32, f32)> {
    weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0.0)
        .flat_map(|(i, w)| [(-(i as i32) - 1, *w), (i as i32 + 1, *w)])
        .collect()
}

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
struct ImpactCache {
    /// The weights the entries were computed with (bits of each step's offset and weight,
    /// then of the field weight): a query with others starts the cache afresh.
    params: Vec<u32>,
    /// Per term, a score per document (0: not reached).
    entries: FxHashMap<TermId, Arc<[f32]>>,
    /// Scores held over all entries.
    held: usize,
    /// How often each term was asked for since the last change.
    asked: FxHashMap<TermId, u32>,
    /// Per term, the plain BM25 of its own text each of its postings gives, in postings
    /// order ([`DEAD_POSTING`] for a forgotten document): kept from a term's second query
    /// on, as the BM25F scores, and counted in `held` with them.
    own: FxHashMap<TermId, Arc<[f32]>>,
    /// Session-expanded searches answered since the last change.
    searches: u32,
}

/// In a kept list of own-text scores, marks a posting of a forgotten document (scores are
/// never negative).
const DEAD_POSTING: f32 = -1.0;

/// At most this many scores are kept per index: 32 MiB (830 terms at 10,000 memories, 250
/// at the largest index that keeps any).
const IMPACT_CACHE_SCORES: usize = 8 << 20;

/// A term's scores are kept on its query number this many since the index last changed
/// (tests assume 2).
const BUILD_AFTER: u32 = 2;
/// No term's scores are kept before the index has answered this many session-expanded
/// searches since it last changed. Measured beside a learner (bench/wrk/run.sh: one write
/// every five or six recalls), scores kept from the second query on were dropped before their
/// third use and cost recall a fifth of its CPU.
const STEADY_AFTER: u32 = 32;
/// Scores are kept only for terms reaching at most this many documents
/// ([`TextIndex::worth_keeping`]).
const MAX_KEPT_REACH: usize = 16_384;
/// No scores are kept for an index of more documents than this (slots, forgotten ones
/// included).
const MAX_KEPT_DOCS: usize = 32_768;

impl ImpactCache {
    fn params_of(steps: &[(i32, f32)], field_weight: f32) -> Vec<u32> {
        steps
            .iter()
            .flat_map(|&(off, w)| [off as u32, w.to_bits()])
            .chain([field_weight.to_bits()])
            .collect()
    }

    /// Starts afresh unless the entries were computed with `params`.
    fn use_params(&mut self, params: Vec<u32>) {
        if self.params != params {
            // The index did not change: it stays as steady as it was.
            let searches = self.searches;
            self.clear();
            self.searches = searches;
            self.params = params;
        }
    }

    /// Counts one more query for `term`; returns the count.
    fn asked(&mut self, term: TermId) -> u32 {
        let n = self.asked.entry(term).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Keeps a term's BM25F scores (`own`: its own-text scores per posting) if there is room
    /// (another thread may have kept them since).
    fn insert(&mut self, term: TermId, scores: Arc<[f32]>, own: bool) {
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

    fn clear(&mut self) {
        self.entries.clear();
        self.own.clear();
        self.held = 0;
        self.asked.clear();
        self.searches = 0;
    }
}

const NO_VECTOR: u32 = u32::MAX;
/// No document (in [`TextIndex::near`]).
const NO_DOC: u32 = u32::MAX;

/// Where the neighbour `offset` places away is kept in a [`TextIndex::near`] entry.
fn near_slot(offset: i32) -> Option<usize> {
    match offset {
        -2 => Some(0),
        -1 => Some(1),
        1 => Some(2),
        2 => Some(3),
        _ => None,
    }
}
/// Words of a speaker's name that are kept (a first name, a surname, one more).
const MAX_SPEAKER_TERMS: usize = 3;

/// A semantic search's best documents, and the scores of the extra ids asked about.
pub type SemanticHits = (Vec<Scored>, Vec<(MemoryId, f32)>);
/// The neighbour graph proposes this many candidates per result wanted.
const ANN_POOL: usize = 2;

impl TextIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live (not forgotten) documents.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Share of slots held by forgotten documents; the engine rebuilds above a threshold.
    pub fn dead_ratio(&self) -> f64 {
        if self.docs.is_empty() {
            0.0
        } else {
            1.0 - self.live as f64 / self.docs.len() as f64
        }
    }

    pub fn contains(&self, id: &MemoryId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Adds a document; a document already present is left as it is (adding is idempotent).
    pub fn add(&mut self, analyzer: &mut Analyzer, doc: IndexDoc) {
        if self.by_id.contains_key(&doc.head.id) {
            return;
        }
        self.forget_impacts();
        let ord = self.docs.len() as u32;
        let mut ids = Vec::with_capacity(64);
        let mut speaker = Vec::new();
        if let Some(name) = &doc.speaker {
            analyzer.term_ids(name, &mut speaker);
            speaker.truncate(MAX_SPEAKER_TERMS);
        }
        self.with_speaker += u32::from(!speaker.is_empty());
        self.speakers.push(speaker.into_boxed_slice());
        analyzer.term_ids(&doc.content, &mut ids);
        let len = ids.len() as u32;
        // Term frequencies by sorting ids: no map per document.
        ids.sort_unstable();
        let mut i = 0;
        while i < ids.len() {
            let term = ids[i];
            let mut j = i + 1;
            while j < ids.len() && ids[j] == term {
                j += 1;
            }
            let tf = (j - i).min(u16::MAX as usize) as u16;
            self.terms
                .entry(term)
                .or_default()
                .push(Posting { doc: ord, tf });
            i = j;
        }
        if self.concepts_from.is_empty() {
            self.concepts_from.push(0);
        }
        let first = self.doc_concepts.len();
        for key in doc.concepts {
            let next = self.concept_docs.len() as u32;
            let c = *self.concept_ids.entry(key.into_boxed_str()).or_insert(next);
            if c == next {
                self.concept_docs.push(Vec::new());
            }
            if !self.doc_concepts[first..].contains(&c) {
                self.doc_concepts.push(c);
                self.concept_docs[c as usize].push(ord);
            }
        }
        self.concepts_from.push(self.doc_concepts.len() as u32);
        self.total_len += len as u64;
        self.live += 1;
        self.by_id.insert(doc.head.id, ord);
        let session = doc.head.session.as_ref().map(|s| {
            let next = self.sessions.len() as u32;
            let slot = *self.session_slots.entry(s.as_str().into()).or_insert(next);
            if slot == next {
                self.sessions.push(Vec::new());
            }
            (slot, 0)
        });
        let created_at = doc.head.created_at;
        self.docs.push(Doc {
            head: doc.head,
            alive: true,
        });
        self.places.push(session);
        self.near.push([NO_DOC; 4]);
        if let Some((slot, _)) = session {
            self.place_in_session(slot, ord, created_at);
        }
        self.lens.push(len.min(DEAD - 1));
        self.vec_of.push(NO_VECTOR);
    }

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
            let id = self.docs[d as usize].head.id;
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
    fn semantic_search_ann(
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
                    && (filter.is_empty() || filter.matches_head(&self.docs[d as usize].head))
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
    fn cosine_of(&self, d: u32, query: &[f32]) -> f32 {
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

    /// These documents and their live session neighbours up to `steps` places away, without
    /// repeats (the scores [`Self::semantic_rerank`] needs). Unknown ids are left out.
    pub fn with_session_neighbours(&self, ids: &[MemoryId], steps: usize) -> Vec<MemoryId> {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut out = Vec::new();
        for id in ids {
            let Some(&d) = self.by_id.get(id) else {
                continue;
            };
            let around = (1..=steps as i32).flat_map(|s| [-s, s]);
            for o in std::iter::once(d).chain(around.filter_map(|o| self.session_neighbour(d, o))) {
                if self.lens[o as usize] != DEAD && seen.insert(o) {
                    out.push(self.docs[o as usize].head.id);
                }
            }
        }
        out
    }

    /// Ranks `docs` by their `raw` score (NaN: no vector) averaged with `weights` of their
    /// session neighbours'; the best `limit` passing `filter`, and the scores of `also`.
    fn rank_semantic(
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
            .filter(|&&d| filter.is_empty() || filter.matches_head(&self.docs[d as usize].head))
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
                head: self.docs[d as usize].head.clone(),
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

    /// Inserts `ord` into its session's time order and renumbers positions when it did not go
    /// last (imports may arrive out of order).
    fn place_in_session(&mut self, slot: u32, ord: u32, at: continuum_core::Timestamp) {
        let list = &mut self.sessions[slot as usize];
        let docs = &self.docs;
        let key = |o: u32| (docs[o as usize].head.created_at, o);
        let at_end = list.last().is_none_or(|&last| key(last) <= (at, ord));
        let i = if at_end {
            list.push(ord);
            let pos = (list.len() - 1) as u32;
            self.places[ord as usize] = Some((slot, pos));
            pos as usize
        } else {
            let i = list.partition_point(|&o| key(o) < (at, ord));
            list.insert(i, ord);
            let list = self.sessions[slot as usize].clone();
            for (pos, o) in list.into_iter().enumerate().skip(i) {
                self.places[o as usize] = Some((slot, pos as u32));
            }
            i
        };
        // Only the documents up to two places around the new one have other neighbours now.
        let list = &self.sessions[slot as usize];
        let at = |p: i64| {
            usize::try_from(p)
                .ok()
                .and_then(|p| list.get(p).copied())
                .unwrap_or(NO_DOC)
        };
        for p in i.saturating_sub(2)..(i + 3).min(list.len()) {
            let p = p as i64;
            self.near[list[p as usize] as usize] = [at(p - 2), at(p - 1), at(p + 1), at(p + 2)];
        }
    }

    /// The document `offset` places after (or before, when negative) `ord` in its session.
    fn session_neighbour(&self, ord: u32, offset: i32) -> Option<u32> {
        if let Some(i) = near_slot(offset) {
            let n = self.near[ord as usize][i];
            return (n != NO_DOC).then_some(n);
        }
        let (slot, pos) = self.places[ord as usize]?;
        let list = &self.sessions[slot as usize];
        let p = pos as i64 + offset as i64;
        if p < 0 {
            return None;
        }
        list.get(p as usize).copied()
    }

    /// Drops the cached BM25F scores: the index is about to change.
    fn forget_impacts(&mut self) {
        self.impacts
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Marks a document forgotten. Its postings stay until the index is rebuilt.
    pub fn remove(&mut self, id: &MemoryId) {
        if let Some(&ord) = self.by_id.get(id) {
            let d = &mut self.docs[ord as usize];
            if d.alive {
                d.alive = false;
                self.impacts
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                self.live -= 1;
                self.total_len -= self.lens[ord as usize] as u64;
                self.lens[ord as usize] = DEAD;
                if self.vec_of[ord as usize] != NO_VECTOR {
                    self.live_vectors -= 1;
                }
            }
            self.by_id.remove(id);
            if let Some(graph) = &mut self.ann
                && graph.forget(id).is_err()
            {
                self.ann = None;
            }
        }
    }

    /// Replaces the ranking facts (superseded, session, …) of a document.
    pub fn update_head(&mut self, head: MemoryHead) {
        if let Some(&ord) = self.by_id.get(&head.id) {
            self.docs[ord as usize].head = head;
        }
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
        let passes = |d: u32| everything || filter.matches_head(&self.docs[d as usize].head);
        let mut top = TopKeys::new(limit);
        // Every touched document scores (see `idf`), and so does a candidate that counts. The
        // filter test is written out here: as `passes`, it was called rather than inlined.
        for (&c, &e) in candidates.iter().zip(expanded.iter()) {
            let score = scores[c as usize].max(e);
            if score > 0.0 && (everything || filter.matches_head(&self.docs[c as usize].head)) {
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
                    head: self.docs[d as usize].head.clone(),
                    score: key_score(key) as f64,
                }
            })
            .collect()
    }

    /// The kept BM25F scores of each of `terms` (those with `postings`, in order), or None
    /// when some are missing; computes those of terms asked for often enough.
    fn cached_impacts(
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
    fn worth_keeping(&self, postings: usize, steps: usize) -> bool {
        self.docs.len() <= MAX_KEPT_DOCS
            && (postings * (1 + steps)).min(self.docs.len()) <= MAX_KEPT_REACH
    }

    fn impact_cache(&self) -> std::sync::MutexGuard<'_, ImpactCache> {
        // The cache holds derived numbers only: after a panic elsewhere it is still sound.
        self.impacts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The BM25F score one term with these `postings` gives each live document it reaches
    /// (the score [`Self::search_expanded`] computes for a candidate),
    /// through the document's own text or its neighbours'. A document's
    /// neighbour field is the weighted sum of its live neighbours' term frequencies, in
    /// `steps` order, and its length the same sum of their lengths.
    fn term_impacts(
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

    fn avgdl(&self) -> f32 {
        (self.total_len as f32 / self.live.max(1) as f32).max(1.0)
    }

    /// BM25's inverse document frequency for a term in `df` live documents.
    /// Never zero, so that every match scores: `df` counts the postings of forgotten documents
    /// too (they stay until a rebuild), so it can exceed the live count, and such a term
    /// weighs what a term in every live document does; where `1 + x` rounds to 1 (millions
    /// of documents), `x` is the logarithm to float precision.
    fn idf(&self, df: usize) -> f32 {
        let (n, df) = (self.live as f32, df as f32);
        let x = (n - df + 0.5).max(0.5) / (df + 0.5);
        let idf = (1.0 + x).ln();
        if idf > 0.0 { idf } else { x }
    }

    /// Plain BM25 of every live document matching `terms`: dense scores and the documents
    /// touched.
    fn bm25(&self, terms: &[TermId]) -> (Pooled<f32>, Vec<u32>) {
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
    fn bm25_kept(&self, terms: &[TermId]) -> (Pooled<f32>, Vec<u32>) {
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
    fn speaking(&self, terms: &[TermId], boost: Option<f32>, d: u32, score: f32) -> f32 {
        match boost {
            Some(b) if self.speakers[d as usize].iter().any(|t| terms.contains(t)) => {
                score * (1.0 + b)
            }
            _ => score,
        }
    }

    fn boost_speakers(&self, terms: &[TermId], boost: f32, touched: &[u32], scores: &mut [f32]) {
        if boost <= 0.0 || self.with_speaker == 0 {
            return;
        }
        for &d in touched {
            if self.speakers[d as usize].iter().any(|t| terms.contains(t)) {
                scores[d as usize] *= 1.0 + boost;
            }
        }
    }

    /// The best `limit` of the `touched` documents by `scores`, passing `filter`, best first
    /// (ties go to the later document).
    fn best(
        &self,
        touched: Vec<u32>,
        scores: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Vec<Scored> {
        let everything = filter.is_empty();
        let passing = touched
            .into_iter()
            .filter(|&d| everything || filter.matches_head(&self.docs[d as usize].head));
        top_docs(passing, scores, limit)
            .into_iter()
            .map(|d| Scored {
                head: self.docs[d as usize].head.clone(),
                score: scores[d as usize] as f64,
            })
            .collect()
    }

    /// Which of `keys` each of `ids` mentions: for each id that mentions at least one, in the
    /// order of `ids`, `each` gets the id and the positions in `keys` of those it mentions,
    /// ascending (recall asks this for hundreds of ids, so nothing is collected). Unknown and
    /// forgotten ids are left out.
    pub fn each_mention_among(
        &self,
        keys: &[&str],
        ids: &[MemoryId],
        mut each: impl FnMut(MemoryId, &[usize]),
    ) {
        let Some(wanted) = KeySet::new(self, keys) else {
            return;
        };
        let mut at: Vec<usize> = Vec::with_capacity(keys.len());
        for id in ids {
            let Some(&ord) = self.by_id.get(id) else {
                continue;
            };
            wanted.mentioned_by(self, ord, &mut at);
            if !at.is_empty() {
                each(*id, &at);
            }
        }
    }

    /// For each of `keys` in turn, its newest live documents passing `filter` (at most
    /// `limit`, as [`Self::mentions`] gives them): `each` gets the key's position, the
    /// document's head and the positions of all `keys` it mentions, ascending (what
    /// [`Self::each_mention_among`] would say of it, without looking its id up). A document
    /// among the newest of several keys is handed over once, at the first of them (it still
    /// takes its place in each key's `limit`).
    pub fn each_mentioning(
        &self,
        keys: &[&str],
        filter: &MemoryFilter,
        limit: usize,
        mut each: impl FnMut(usize, &MemoryHead, &[usize]),
    ) {
        let Some(wanted) = KeySet::new(self, keys) else {
            return;
        };
        let mut at: Vec<usize> = Vec::with_capacity(keys.len());
        // One bit per document: handed over already.
        let mut done = vec![0u64; self.docs.len().div_ceil(64)];
        let everything = filter.is_empty();
        for (i, key) in keys.iter().enumerate() {
            let Some(&c) = self.concept_ids.get(*key) else {
                continue;
            };
            let newest = self.concept_docs[c as usize]
                .iter()
                .rev()
                .filter(|&&o| {
                    let d = &self.docs[o as usize];
                    d.alive && (everything || filter.matches_head(&d.head))
                })
                .take(limit);
            for &ord in newest {
                let (word, bit) = (ord as usize / 64, 1u64 << (ord % 64));
                if done[word] & bit != 0 {
                    continue;
                }
                done[word] |= bit;
                wanted.mentioned_by(self, ord, &mut at);
                each(i, &self.docs[ord as usize].head, &at);
            }
        }
    }

    /// The newest live documents mentioning a concept, at most `limit`, passing `filter`.
    pub fn mentions(&self, key: &str, filter: &MemoryFilter, limit: usize) -> Vec<MemoryHead> {
        let Some(&c) = self.concept_ids.get(key) else {
            return Vec::new();
        };
        self.concept_docs[c as usize]
            .iter()
            .rev()
            .map(|&o| &self.docs[o as usize])
            .filter(|d| d.alive && filter.matches_head(&d.head))
            .take(limit)
            .map(|d| d.head.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuum_core::{Source, Timestamp};

    fn doc(i: i64, text: &str, concepts: &[&str]) -> IndexDoc {
        IndexDoc {
            head: MemoryHead {
                id: MemoryId::new_at(i),
                source: if i % 2 == 0 {
                    Source::User
                } else {
                    Source::Assistant
                },
                session: None,
                created_at: Timestamp(i),
                superseded: false,
            },
            content: text.into(),
            concepts: concepts.iter().map(|s| s.to_string()).collect(),
            speaker: None,
        }
    }

    /// What rankings are compared by: each hit's memory and its score's exact bits.
    fn hit_keys(hits: &[Scored]) -> Vec<(MemoryId, u64)> {
        hits.iter()
            .map(|h| (h.head.id, h.score.to_bits()))
            .collect()
    }

    fn ids(hits: &[Scored]) -> Vec<i64> {
        hits.iter().map(|h| h.head.created_at.0).collect()
    }

    #[test]
    fn bm25_prefers_rare_terms_and_short_documents() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        ix.add(&mut a, doc(1, "the cat sat on the mat", &[]));
        ix.add(&mut a, doc(2, "a cat and a zebra", &[]));
        ix.add(
            &mut a,
            doc(
                3,
                "cats, cats everywhere: cat food, cat toys, cat trees and more cat things",
                &[],
            ),
        );
        ix.add(&mut a, doc(4, "nothing relevant here", &[]));
        let hits = ix.search(
            &a.query_terms("zebra cat", 32),
            &MemoryFilter::default(),
            10,
        );
        assert_eq!(ids(&hits)[0], 2, "the rare term decides");
        assert_eq!(hits.len(), 3);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        // Stemming: "cats" finds "cat".
        assert_eq!(
            ix.search(&a.query_terms("cats", 32), &MemoryFilter::default(), 10)
                .len(),
            3
        );
    }

    #[test]
    fn a_word_in_more_postings_than_live_documents_still_scores_each_match_once() {
        // Forgotten documents keep their postings until a rebuild: "kafka" and "plan" are in
        // five postings and three live documents.
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let docs: Vec<IndexDoc> = (1..=5)
            .map(|i| in_session(doc(i, "kafka plan", &[]), "s"))
            .collect();
        for d in &docs {
            ix.add(&mut a, d.clone());
        }
        ix.remove(&docs[0].head.id);
        ix.remove(&docs[1].head.id);
        let q = a.query_terms("kafka plan", 32);
        let all = MemoryFilter::default();
        for hits in [
            ix.search(&q, &all, 10),
            ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10),
        ] {
            let mut found = ids(&hits);
            found.sort_unstable();
            assert_eq!(found, vec![3, 4, 5]);
            assert!(hits.iter().all(|h| h.score > 0.0), "{hits:?}");
        }
    }

    #[test]
    fn forgotten_documents_vanish_and_adding_is_idempotent() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let d = doc(1, "kafka partitions", &["kafka"]);
        ix.add(&mut a, d.clone());
        ix.add(&mut a, d.clone());
        assert_eq!(ix.len(), 1);
        assert_eq!(
            ix.search(&a.query_terms("kafka", 32), &MemoryFilter::default(), 10)
                .len(),
            1
        );
        assert_eq!(ix.mentions("kafka", &MemoryFilter::default(), 10).len(), 1);
        ix.remove(&d.head.id);
        assert!(ix.is_empty());
        assert!(
            ix.search(&a.query_terms("kafka", 32), &MemoryFilter::default(), 10)
                .is_empty()
        );
        assert!(
            ix.mentions("kafka", &MemoryFilter::default(), 10)
                .is_empty()
        );
        assert!(ix.dead_ratio() > 0.99);
    }

    fn mentions_among(
        ix: &TextIndex,
        keys: &[&str],
        ids: &[MemoryId],
    ) -> Vec<(MemoryId, Vec<usize>)> {
        let mut out = Vec::new();
        ix.each_mention_among(keys, ids, |id, at| out.push((id, at.to_vec())));
        out
    }

    #[test]
    fn mentions_among_names_the_keys_each_memory_mentions() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let d1 = doc(1, "kafka and redis", &["kafka", "redis", "kafka"]);
        let d2 = doc(2, "redis only", &["redis"]);
        let d3 = doc(3, "nothing relevant", &["tokio"]);
        for d in [&d1, &d2, &d3] {
            ix.add(&mut a, d.clone());
        }
        let ids = [d3.head.id, d2.head.id, d1.head.id, MemoryId::new_at(99)];
        let got = mentions_among(&ix, &["redis", "kafka", "absent"], &ids);
        assert_eq!(
            got,
            vec![(d2.head.id, vec![0]), (d1.head.id, vec![0, 1])],
            "in the order of ids, key positions ascending, a repeated key once"
        );
        ix.remove(&d1.head.id);
        assert_eq!(
            mentions_among(&ix, &["kafka"], &ids),
            vec![],
            "a forgotten memory mentions nothing"
        );
        assert!(mentions_among(&ix, &["absent"], &ids).is_empty());
    }

    #[test]
    fn each_mentioning_lists_each_keys_newest_with_all_the_keys_they_mention() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let concepts: [&[&str]; 6] = [
            &["kafka", "redis"],
            &["redis"],
            &["kafka", "tokio", "redis"],
            &["tokio"],
            &["kafka"],
            &[],
        ];
        let docs: Vec<IndexDoc> = concepts
            .iter()
            .enumerate()
            .map(|(i, c)| doc(i as i64, "text", c))
            .collect();
        for d in &docs {
            ix.add(&mut a, d.clone());
        }
        ix.remove(&docs[4].head.id);
        let keys = ["redis", "absent", "kafka", "tokio"];
        let all = MemoryFilter::default();
        let mut got: Vec<(usize, MemoryId, Vec<usize>)> = Vec::new();
        ix.each_mentioning(&keys, &all, 2, |i, head, at| {
            got.push((i, head.id, at.to_vec()))
        });
        // The same as asking `mentions` per key, then `each_mention_among` for each id not
        // met under an earlier key.
        let mut want = Vec::new();
        let mut met = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            let ids: Vec<MemoryId> = ix.mentions(k, &all, 2).iter().map(|h| h.id).collect();
            for (id, at) in mentions_among(&ix, &keys, &ids) {
                if met.insert(id) {
                    want.push((i, id, at));
                }
            }
        }
        assert_eq!(got, want);
        let id = |n: usize| docs[n].head.id;
        assert_eq!(
            got,
            vec![
                (0, id(2), vec![0, 2, 3]),
                (0, id(1), vec![0]),
                (2, id(0), vec![0, 2]),
                (3, id(3), vec![3]),
            ],
            "newest first, each once, the forgotten one left out, positions ascending"
        );
        let mut none = 0;
        ix.each_mentioning(&["absent"], &all, 5, |_, _, _| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn filters_and_limits_apply() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        for i in 0..20 {
            ix.add(&mut a, doc(i, &format!("deploy number {i}"), &["deploy"]));
        }
        let f = MemoryFilter {
            sources: vec![Source::User],
            ..Default::default()
        };
        let hits = ix.search(&a.query_terms("deploy", 32), &f, 5);
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| h.head.source == Source::User));
        let newest = ix.mentions("deploy", &MemoryFilter::default(), 3);
        assert_eq!(
            newest.iter().map(|h| h.created_at.0).collect::<Vec<_>>(),
            vec![19, 18, 17]
        );
    }

    fn in_session(mut d: IndexDoc, s: &str) -> IndexDoc {
        d.head.session = Some(continuum_core::SessionId::new(s).unwrap());
        d
    }

    #[test]
    fn semantic_search_ranks_by_cosine_and_skips_unembedded_and_forgotten() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let mut id = Vec::new();
        for i in 1..=4 {
            let d = doc(i, "text", &[]);
            id.push(d.head.id);
            ix.add(&mut a, d);
        }
        let unit = |x: f32, y: f32| {
            let n = (x * x + y * y).sqrt();
            [x / n, y / n]
        };
        assert!(ix.set_vector(&id[0], &unit(1.0, 0.0)));
        assert!(ix.set_vector(&id[1], &unit(1.0, 1.0)));
        assert!(ix.set_vector(&id[2], &unit(0.0, 1.0)));
        // Wrong dimension and unknown documents are refused.
        assert!(!ix.set_vector(&id[3], &[1.0, 0.0, 0.0]));
        assert!(!ix.set_vector(&MemoryId::new_at(99), &unit(1.0, 0.0)));
        let all = MemoryFilter::default();
        let (top, _) = ix.semantic_search(&unit(1.0, 0.1), &[], &all, 10, &[]);
        assert_eq!(ids(&top), vec![1, 2, 3], "4 has no vector");
        assert!((top[0].score - unit(1.0, 0.1)[0] as f64).abs() < 5e-3);
        // Replacing a vector moves the document.
        assert!(ix.set_vector(&id[2], &unit(1.0, 0.05)));
        ix.remove(&id[0]);
        let (top, extra) = ix.semantic_search(&unit(1.0, 0.1), &[], &all, 1, &[id[1], id[3]]);
        assert_eq!(ids(&top), vec![3]);
        assert_eq!(extra.len(), 1, "only 2 of the extra ids has a vector");
        assert_eq!(extra[0].0, id[1]);
        assert_eq!(ix.vector_count(), 2);
    }

    /// Clustered unit vectors (like sentence embeddings, unlike uniform noise): `n` documents
    /// in sessions of 20, each near one of 40 centres. Deterministic.
    fn clustered(n: usize, dim: usize) -> (TextIndex, Vec<MemoryId>, Vec<Vec<f32>>) {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let (mut ids, mut vecs) = (Vec::new(), Vec::new());
        for i in 0..n {
            let d = in_session(doc(i as i64 + 1, "text", &[]), &format!("s{}", i / 20));
            ids.push(d.head.id);
            ix.add(&mut a, d);
            let c = &centres[(i * 7) % centres.len()];
            let mut v: Vec<f32> = c.iter().map(|x| x + 0.6 * next()).collect();
            continuum_core::embed::normalize(&mut v);
            assert!(ix.set_vector_at(&ids[i], &v, i as u64 + 1));
            vecs.push(v);
        }
        (ix, ids, vecs)
    }

    fn graph_for(ix: &TextIndex) -> ann::Ann {
        let mut g = ann::Ann::new(ix.vector_dim(), ix.vector_count()).unwrap();
        ix.ann_backlog(&g).apply_to(&mut g, |_| {}).unwrap();
        g
    }

    fn top_ids(hits: &[Scored]) -> Vec<MemoryId> {
        hits.iter().map(|h| h.head.id).collect()
    }

    #[test]
    fn the_graph_finds_what_the_exact_scan_finds() {
        let (mut ix, ids, vecs) = clustered(3000, 48);
        let all = MemoryFilter::default();
        let queries: Vec<&Vec<f32>> = vecs.iter().step_by(61).collect();
        let exact: Vec<_> = queries
            .iter()
            .map(|q| ix.semantic_search(q, &[0.3, 0.2], &all, 10, &ids[..3]))
            .collect();
        let g = graph_for(&ix);
        assert_eq!(g.len(), 3000);
        ix.attach_ann(g).unwrap();
        let (mut found, mut wanted) = (0, 0);
        for (q, (want, want_extra)) in queries.iter().zip(&exact) {
            let (got, extra) = ix.semantic_search(q, &[0.3, 0.2], &all, 10, &ids[..3]);
            let got = top_ids(&got);
            found += top_ids(want).iter().filter(|id| got.contains(id)).count();
            wanted += want.len();
            // Scores of the other signals' candidates do not depend on the graph.
            assert_eq!(&extra, want_extra);
        }
        let recall = found as f64 / wanted as f64;
        assert!(
            recall >= 0.9,
            "top-10 agreement with the exact scan: {recall:.3}"
        );
    }

    #[test]
    fn the_graph_follows_new_replaced_and_forgotten_vectors() {
        let (mut ix, ids, vecs) = clustered(600, 32);
        let g = graph_for(&ix);
        ix.attach_ann(g).unwrap();
        let all = MemoryFilter::default();
        let q = &vecs[5];
        let (top, _) = ix.semantic_search(q, &[], &all, 5, &[]);
        assert_eq!(top[0].head.id, ids[5]);
        // Forgotten: gone from the graph and from results.
        ix.remove(&ids[5]);
        assert!(!ix.ann().unwrap().contains(&ids[5]));
        let (top, _) = ix.semantic_search(q, &[], &all, 5, &[]);
        assert!(!top_ids(&top).contains(&ids[5]));
        // Replaced: a far document given the query's vector comes first.
        assert!(ix.set_vector(&ids[300], q));
        let (top, _) = ix.semantic_search(q, &[], &all, 5, &[]);
        assert_eq!(top[0].head.id, ids[300]);
        assert!(top[0].score > 0.99);
        // A filter applies to the graph's candidates.
        let one = MemoryFilter {
            session: Some(continuum_core::SessionId::new("s3").unwrap()),
            ..MemoryFilter::default()
        };
        let (top, _) = ix.semantic_search(q, &[], &one, 5, &[]);
        assert_eq!(top.len(), 5);
        assert!(
            top.iter()
                .all(|h| h.head.session.as_ref().unwrap().as_str() == "s3")
        );
    }

    #[test]
    fn a_saved_graph_loads_and_catches_up() {
        let (mut ix, ids, vecs) = clustered(800, 32);
        let g = graph_for(&ix);
        let bytes = g.to_bytes().unwrap();
        assert!(
            ann::Ann::from_bytes(&bytes, 16).is_err(),
            "another dimension"
        );
        assert!(
            ann::Ann::from_bytes(&bytes[..bytes.len() - 1], 32).is_err(),
            "truncated"
        );
        assert!(ann::Ann::from_bytes(b"CTMANN01 and then nonsense", 32).is_err());
        // After the save: one vector replaced, one memory forgotten, one memory added.
        assert!(ix.set_vector_at(&ids[10], &vecs[700], 801));
        ix.remove(&ids[20]);
        let mut a = Analyzer::new();
        let late = in_session(doc(5000, "text", &[]), "s0");
        let late_id = late.head.id;
        ix.add(&mut a, late);
        assert!(ix.set_vector_at(&late_id, &vecs[400], 802));
        let loaded = ann::Ann::from_bytes(&bytes, 32).unwrap();
        assert_eq!(loaded.len(), 800);
        assert_eq!(loaded.synced_seq, 800);
        let backlog = ix.ann_backlog(&loaded);
        let inserted: Vec<MemoryId> = backlog.insert.iter().map(|(id, _)| *id).collect();
        assert_eq!(inserted, vec![ids[10], late_id]);
        assert_eq!(backlog.remove, vec![ids[20]]);
        ix.attach_ann(loaded).unwrap();
        assert!(ix.ann_backlog(ix.ann().unwrap()).is_empty());
        let all = MemoryFilter::default();
        let (top, _) = ix.semantic_search(&vecs[400], &[], &all, 3, &[]);
        let top = top_ids(&top);
        assert!(top.contains(&late_id) && top.contains(&ids[400]), "{top:?}");
        let (top, _) = ix.semantic_search(&vecs[20], &[], &all, 10, &[]);
        assert!(!top_ids(&top).contains(&ids[20]));
    }

    #[test]
    fn quantised_dot_products_stay_within_a_thousandth() {
        let mut rng = 12345u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        for _ in 0..50 {
            let mut a: Vec<f32> = (0..384).map(|_| next()).collect();
            let mut b: Vec<f32> = (0..384).map(|_| next()).collect();
            continuum_core::embed::normalize(&mut a);
            continuum_core::embed::normalize(&mut b);
            let exact = continuum_core::embed::dot(&a, &b);
            let (q, scale) = quantize(&b);
            let approx = dot_i8(&a, &q) * scale;
            assert!((exact - approx).abs() < 2e-3, "{exact} vs {approx}");
        }
        assert_eq!(quantize(&[0.0, 0.0]).1, 0.0);
    }

    #[test]
    fn semantic_scores_take_a_share_of_session_neighbours() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let mut id = Vec::new();
        for i in 1..=3 {
            let d = in_session(doc(i, "text", &[]), "s");
            id.push(d.head.id);
            ix.add(&mut a, d);
        }
        ix.set_vector(&id[0], &[1.0, 0.0]);
        ix.set_vector(&id[1], &[0.0, 1.0]);
        ix.set_vector(&id[2], &[0.0, 1.0]);
        let (top, _) = ix.semantic_search(&[1.0, 0.0], &[0.5], &MemoryFilter::default(), 3, &[]);
        let score = |t: i64| top.iter().find(|h| h.head.created_at.0 == t).unwrap().score;
        // 1: (1 + 0.5·0) / 1.5; 2: (0 + 0.5·1 + 0.5·0) / 2; 3: (0 + 0.5·0) / 1.5.
        assert!((score(1) - 1.0 / 1.5).abs() < 5e-3, "{top:?}");
        assert!((score(2) - 0.25).abs() < 5e-3, "{top:?}");
        assert!(score(3).abs() < 5e-3, "{top:?}");
    }

    #[test]
    fn expanded_documents_match_words_their_neighbours_hold() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        ix.add(
            &mut a,
            in_session(doc(1, "Where did Melanie travel?", &[]), "s1"),
        );
        ix.add(
            &mut a,
            in_session(doc(2, "To Lisbon, by train.", &[]), "s1"),
        );
        ix.add(
            &mut a,
            in_session(doc(3, "Lisbon again next year.", &[]), "s2"),
        );
        ix.add(&mut a, in_session(doc(4, "Unrelated chatter.", &[]), "s2"));
        let q = a.query_terms("Melanie Lisbon", 8);
        let all = MemoryFilter::default();
        let hits = ix.search_expanded(&q, &[0.5], 0.7, 0.0, &all, 10);
        // 2 holds "Lisbon" and its neighbour "Melanie": it matches both words, so it outranks
        // 3, which holds "Lisbon" too but has no neighbour naming Melanie.
        let mut top2 = ids(&hits)[..2].to_vec();
        top2.sort();
        assert_eq!(top2, vec![1, 2], "{hits:?}");
        // 4 only borrows "Lisbon" from its neighbour: below 3, which holds it itself.
        let rank = |t: i64| ids(&hits).iter().position(|&x| x == t).unwrap();
        assert!(rank(3) < rank(4), "{hits:?}");
        // Without neighbour weights it is plain BM25: 4 matches nothing.
        let plain = ix.search_expanded(&q, &[], 0.7, 0.0, &all, 10);
        assert_eq!(plain.len(), 3, "{plain:?}");
        assert!(!ids(&plain).contains(&4));
        assert_eq!(ix.search_expanded(&q, &[0.5], 0.7, 0.0, &all, 1).len(), 1);
    }

    #[test]
    fn session_neighbours_share_a_match() {
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        // Added out of time order: the index keeps each session in time order.
        ix.add(&mut a, in_session(doc(3, "Paris, in spring.", &[]), "s1"));
        ix.add(
            &mut a,
            in_session(doc(1, "Where did you go on holiday?", &[]), "s1"),
        );
        ix.add(&mut a, in_session(doc(2, "Somewhere warm.", &[]), "s1"));
        ix.add(
            &mut a,
            in_session(doc(4, "Another holiday story.", &[]), "s2"),
        );
        let q = a.query_terms("holiday", 8);
        let plain = ix.search(&q, &MemoryFilter::default(), 10);
        assert_eq!(ids(&plain).len(), 2, "only the two direct matches");
        let ctx = ix.search_in_context(&q, &[0.5, 0.25], &MemoryFilter::default(), 10);
        let got = ids(&ctx);
        assert_eq!(got.len(), 4);
        let score = |t: i64| ctx.iter().find(|h| h.head.created_at.0 == t).unwrap().score;
        // The reply right after the question earns half, the one after that a quarter.
        assert!((score(2) - 0.5 * score(1)).abs() < 1e-4, "{ctx:?}");
        assert!((score(3) - 0.25 * score(1)).abs() < 1e-4, "{ctx:?}");
        // Another session's match is not spread into s1.
        assert!(score(1) > score(2));
    }

    /// The expanded ranking as first written (a pull per candidate and term): the faster one
    /// must give the same documents with bit-identical scores.
    fn reference_expanded(
        ix: &TextIndex,
        terms: &[TermId],
        weights: &[f32],
        field_weight: f32,
        speaker_boost: f32,
        filter: &MemoryFilter,
        limit: usize,
    ) -> Vec<Scored> {
        if terms.is_empty() || ix.live == 0 || limit == 0 {
            return Vec::new();
        }
        let avgdl = ix.avgdl();
        let postings: Vec<&Vec<Posting>> = terms.iter().filter_map(|t| ix.terms.get(t)).collect();
        let bm25 = |tf: f32, idf: f32| idf * tf * (K1 + 1.0) / (tf + K1);
        // 1. Own text only.
        let (mut scores, mut touched) = ix.bm25(terms);
        let steps = steps_of(weights);
        if steps.is_empty() || field_weight <= 0.0 {
            ix.boost_speakers(terms, speaker_boost, &touched, &mut scores);
            return ix.best(touched, &scores, filter, limit);
        }
        // 2. Candidates: the strongest matches and their neighbours.
        let seeds = seeds(&touched, &scores, limit);
        let live_neighbour = |d: u32, off: i32| {
            ix.session_neighbour(d, off)
                .filter(|m| ix.lens[*m as usize] != DEAD)
        };
        let mut candidates: Vec<u32> = seeds.clone();
        for &d in &seeds {
            candidates.extend(steps.iter().filter_map(|(off, _)| live_neighbour(d, *off)));
        }
        candidates.sort_unstable();
        candidates.dedup();
        // 3. Their two-field score, term by term, from the term frequencies of the candidates
        //    and of their neighbours. Each candidate's live neighbours are listed once, with
        //    their weights (`nb_of[nb_at[k]..nb_at[k + 1]]`, in `steps` order). A posting of
        //    document `m` changes the candidates among `m` and its neighbours at the same
        //    offsets (neighbourhood is symmetric), so a term visits only those.
        // Per document: NONE (not involved), NEIGHBOUR (only a candidate's neighbour), or
        // its candidate number.
        const NONE: u32 = u32::MAX;
        const NEIGHBOUR: u32 = u32::MAX - 1;
        let mut role = Pooled::filled(ix.docs.len(), NONE);
        let mut nb_of: Vec<(u32, f32)> = Vec::with_capacity(candidates.len() * steps.len());
        let mut nb_at: Vec<u32> = Vec::with_capacity(candidates.len() + 1);
        let mut nb_len: Vec<f32> = Vec::with_capacity(candidates.len());
        for (k, &c) in candidates.iter().enumerate() {
            role[c as usize] = k as u32;
            nb_at.push(nb_of.len() as u32);
            let mut len = 0f32;
            for (off, w) in &steps {
                if let Some(m) = live_neighbour(c, *off) {
                    nb_of.push((m, *w));
                    if role[m as usize] == NONE {
                        role[m as usize] = NEIGHBOUR;
                    }
                    len += w * ix.lens[m as usize] as f32;
                }
            }
            nb_len.push(len);
        }
        nb_at.push(nb_of.len() as u32);
        let avg_nb = (avgdl * steps.iter().map(|(_, w)| w).sum::<f32>()).max(1.0);
        let mut expanded = vec![0f32; candidates.len()];
        let mut tf_of = Pooled::filled(ix.docs.len(), 0f32);
        let mut seen: Vec<u32> = Vec::new();
        let mut hit = vec![false; candidates.len()];
        let mut hits: Vec<u32> = Vec::new();
        for p in &postings {
            let idf = ix.idf(p.len());
            for post in p.iter() {
                let m = post.doc;
                if role[m as usize] == NONE || ix.lens[m as usize] == DEAD {
                    continue;
                }
                tf_of[m as usize] = post.tf as f32;
                seen.push(m);
                let fed = std::iter::once(m).chain(
                    steps
                        .iter()
                        .filter_map(|(off, _)| ix.session_neighbour(m, -off)),
                );
                for c in fed {
                    let k = role[c as usize];
                    if k < NEIGHBOUR && !hit[k as usize] {
                        hit[k as usize] = true;
                        hits.push(k);
                    }
                }
            }
            for &k in &hits {
                let k = k as usize;
                hit[k] = false;
                let c = candidates[k] as usize;
                let own = tf_of[c] / (1.0 - B + B * ix.lens[c] as f32 / avgdl);
                let nb: f32 = nb_of[nb_at[k] as usize..nb_at[k + 1] as usize]
                    .iter()
                    .map(|(m, w)| w * tf_of[*m as usize])
                    .sum();
                let tf = own + field_weight * nb / (1.0 - B + B * nb_len[k] / avg_nb);
                if tf > 0.0 {
                    expanded[k] += bm25(tf, idf);
                }
            }
            hits.clear();
            for d in seen.drain(..) {
                tf_of[d as usize] = 0.0;
            }
        }
        for (k, &c) in candidates.iter().enumerate() {
            if scores[c as usize] == 0.0 && expanded[k] > 0.0 {
                touched.push(c);
            }
            scores[c as usize] = scores[c as usize].max(expanded[k]);
        }
        ix.boost_speakers(terms, speaker_boost, &touched, &mut scores);
        ix.best(touched, &scores, filter, limit)
    }

    /// Marks the index as having answered enough searches since its last change for terms'
    /// scores to be kept ([`STEADY_AFTER`]).
    fn settle(ix: &TextIndex) {
        ix.impacts.lock().unwrap().searches = STEADY_AFTER;
    }

    fn random_index(seed: u64, n: usize, forget: usize) -> (Analyzer, TextIndex, Vec<MemoryId>) {
        let vocab = [
            "lisbon", "train", "melanie", "painting", "rust", "kafka", "berlin", "hiking", "plan",
            "service", "billing", "chess", "violin", "tokyo", "deploy", "review",
        ];
        let mut rng = seed;
        let mut next = move |m: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % m
        };
        let mut a = Analyzer::new();
        let mut ix = TextIndex::new();
        let mut ids = Vec::new();
        for i in 0..n {
            let words: Vec<&str> = (0..1 + next(9)).map(|_| vocab[next(16) as usize]).collect();
            // Times out of insertion order now and then, as imports add them.
            let at = i as i64 * 10 + next(25) as i64;
            let session = format!("s{}", next(1 + n as u64 / 6));
            let mut d = in_session(doc(at, &words.join(" "), &[]), &session);
            if next(3) == 0 {
                d.speaker = Some("Melanie".into());
            }
            ids.push(d.head.id);
            ix.add(&mut a, d);
        }
        for _ in 0..forget {
            let victim = ids[next(n as u64) as usize];
            ix.remove(&victim);
        }
        (a, ix, ids)
    }

    proptest::proptest! {
        #[test]
        fn largest_is_the_head_of_a_full_sort(
            raw in proptest::collection::vec(0u64..1 << 40, 0..4000),
            limit in 1usize..700,
            order in 0u8..3,
        ) {
            // Distinct keys, as rank keys are; in the order given, ascending or descending.
            let mut keys: Vec<u64> = raw.iter().enumerate().map(|(i, &k)| k << 12 | i as u64).collect();
            match order {
                1 => keys.sort_unstable(),
                2 => keys.sort_unstable_by(|a, b| b.cmp(a)),
                _ => {}
            }
            let mut got = largest(keys.clone(), limit);
            got.sort_unstable_by(|a, b| b.cmp(a));
            keys.sort_unstable_by(|a, b| b.cmp(a));
            keys.truncate(limit);
            proptest::prop_assert_eq!(got, keys);
        }

        #[test]
        fn seeds_are_the_touched_documents_with_the_largest_keys(
            raw in proptest::collection::vec((0u32..40, -30i32..30), 0..3000),
            limit in 1usize..80,
        ) {
            // Scores from a few dozen values (many ties) over a wide range of magnitudes.
            let scores: Vec<f32> = raw.iter().map(|&(m, e)| (m as f32 + 1.0) * 2f32.powi(e)).collect();
            let touched: Vec<u32> = (0..scores.len() as u32).filter(|d| d % 7 != 3).collect();
            let mut got = seeds(&touched, &scores, limit);
            got.sort_unstable();
            let mut want: Vec<u64> = touched.iter().map(|&d| rank_key(scores[d as usize], d)).collect();
            want.sort_unstable_by(|a, b| b.cmp(a));
            want.truncate((limit * 8).max(256));
            let mut want: Vec<u32> = want.into_iter().map(|k| k as u32).collect();
            want.sort_unstable();
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn expanded_ranking_equals_the_reference_exactly(
            seed in 0u64..u64::MAX,
            n in 1usize..400,
            forget in 0usize..40,
            limit in 1usize..80,
            boost in proptest::sample::select(vec![0.0f32, 1.0]),
            weights in proptest::sample::select(vec![vec![0.6f32, 0.3], vec![0.5], vec![0.4, 0.0, 0.2]]),
            query in proptest::collection::vec(proptest::sample::select(vec!["lisbon", "train", "melanie", "rust", "kafka", "plan", "absent"]), 1..5),
        ) {
            let (mut a, mut ix, ids) = random_index(seed, n, forget);
            let q = a.query_terms(&query.join(" "), 32);
            let all = MemoryFilter::default();
            let keys = |hits: Vec<Scored>| hit_keys(&hits);
            let want = keys(reference_expanded(&ix, &q, &weights, 0.7, boost, &all, limit));
            // From the postings; then the query that keeps each term's scores; then from those.
            settle(&ix);
            for _ in 0..BUILD_AFTER + 1 {
                proptest::prop_assert_eq!(keys(ix.search_expanded(&q, &weights, 0.7, boost, &all, limit)), want.clone());
            }
            // Other weights do not read the first ones' scores.
            let other = [0.5f32];
            let want = keys(reference_expanded(&ix, &q, &other, 0.7, boost, &all, limit));
            settle(&ix);
            for _ in 0..BUILD_AFTER + 1 {
                proptest::prop_assert_eq!(keys(ix.search_expanded(&q, &other, 0.7, boost, &all, limit)), want.clone());
            }
            // Forgetting and adding change every score: none may come from before.
            ix.remove(&ids[seed as usize % ids.len()]);
            ix.add(&mut a, in_session(doc(5, "lisbon train kafka plan", &[]), "s0"));
            let want = keys(reference_expanded(&ix, &q, &other, 0.7, boost, &all, limit));
            settle(&ix);
            for _ in 0..BUILD_AFTER + 1 {
                proptest::prop_assert_eq!(keys(ix.search_expanded(&q, &other, 0.7, boost, &all, limit)), want.clone());
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn expanded_ranking_of_many_touched_documents_equals_the_reference(
            seed in 0u64..u64::MAX,
            n in 500usize..1500,
            limit in 1usize..80,
            boost in proptest::sample::select(vec![0.0f32, 1.0]),
            since in proptest::option::of(0i64..100),
            query in proptest::collection::vec(proptest::sample::select(vec!["lisbon", "train", "melanie", "rust", "kafka", "plan"]), 1..4),
        ) {
            // Hundreds of documents touched, often more than the seeds, with or without a
            // filter that leaves few of them.
            let (mut a, ix, _) = random_index(seed, n, 20);
            let q = a.query_terms(&query.join(" "), 32);
            // Since a share of the documents' times (up to the newest few percent).
            let filter = MemoryFilter {
                since: since.map(|pct| Timestamp(n as i64 * 10 * pct / 100)),
                ..Default::default()
            };
            let keys = |hits: Vec<Scored>| hit_keys(&hits);
            let want = keys(reference_expanded(&ix, &q, &[0.6, 0.3], 0.7, boost, &filter, limit));
            settle(&ix);
            for _ in 0..BUILD_AFTER + 1 {
                proptest::prop_assert_eq!(keys(ix.search_expanded(&q, &[0.6, 0.3], 0.7, boost, &filter, limit)), want.clone());
            }
        }
    }

    #[test]
    fn a_term_asked_twice_keeps_its_scores_until_the_index_changes() {
        let (mut a, mut ix, ids) = random_index(7, 300, 10);
        let q = a.query_terms("lisbon kafka", 8);
        let all = MemoryFilter::default();
        let kept = |ix: &TextIndex| ix.impacts.lock().unwrap().entries.len();
        let own = |ix: &TextIndex| ix.impacts.lock().unwrap().own.len();
        settle(&ix);
        let first = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        // BUILD_AFTER is 2: the second query keeps them, and the own-text scores too (read
        // from the third on).
        assert_eq!((kept(&ix), own(&ix)), (0, 0), "one query keeps nothing");
        let second = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        assert_eq!((kept(&ix), own(&ix)), (2, 2));
        let third = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        let key = |hits: &[Scored]| hit_keys(hits);
        assert_eq!(key(&first), key(&second));
        assert_eq!(key(&first), key(&third));
        ix.remove(&ids[3]);
        assert_eq!((kept(&ix), own(&ix)), (0, 0), "forgetting drops them");
        settle(&ix);
        for _ in 0..BUILD_AFTER {
            ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        }
        assert_eq!(kept(&ix), 2);
        // Read back with a forgotten document among the postings.
        let after = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        assert!(after.iter().all(|h| h.head.id != ids[3]));
        ix.add(&mut a, in_session(doc(9, "kafka in lisbon", &[]), "s1"));
        assert_eq!((kept(&ix), own(&ix)), (0, 0), "adding drops them");
    }

    #[test]
    fn scores_are_kept_only_once_the_index_has_answered_enough_searches_since_it_changed() {
        let (mut a, ix, _) = random_index(11, 300, 0);
        let q = a.query_terms("lisbon kafka", 8);
        let all = MemoryFilter::default();
        let kept = |ix: &TextIndex| ix.impacts.lock().unwrap().entries.len();
        let first = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        // The search that counts to STEADY_AFTER is not yet steady; the one after keeps.
        for _ in 1..STEADY_AFTER {
            ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        }
        assert_eq!(kept(&ix), 0, "an index that may change soon keeps nothing");
        let keeping = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        assert_eq!(kept(&ix), 2);
        let reading = ix.search_expanded(&q, &[0.6, 0.3], 0.7, 0.0, &all, 10);
        let key = |hits: &[Scored]| hit_keys(hits);
        assert_eq!(key(&first), key(&keeping));
        assert_eq!(key(&first), key(&reading));
    }

    proptest::proptest! {
        #[test]
        fn top_docs_are_the_head_of_a_full_sort(
            raw in proptest::collection::vec(-3i8..40, 0..400),
            limit in 0usize..300,
        ) {
            // Few distinct scores, so ties are common; zero and negative scores included.
            let scores: Vec<f32> = raw.iter().map(|&v| f32::from(v) / 4.0).collect();
            let docs: Vec<u32> = (0..scores.len() as u32).rev().collect();
            let mut full = docs.clone();
            full.sort_by(|a, b| {
                scores[*b as usize]
                    .total_cmp(&scores[*a as usize])
                    .then(b.cmp(a))
            });
            full.truncate(limit);
            proptest::prop_assert_eq!(top_docs(docs.into_iter(), &scores, limit), full);
        }

        #[test]
        fn top_docs_over_scores_of_any_size_are_the_head_of_a_full_sort(
            raw in proptest::collection::vec((0u32..6, proptest::num::f32::POSITIVE | proptest::num::f32::ZERO), 0..3000),
            limit in 1usize..700,
        ) {
            // Scores spread over every exponent, bunched close together, or repeated; limits
            // on either side of the heap's.
            let scores: Vec<f32> = raw
                .iter()
                .map(|&(shape, v)| match shape {
                    0 => v,
                    1 => 1.0 + (v.to_bits() % 1024) as f32 / 1e6,
                    2 => (v.to_bits() % 7) as f32,
                    _ => (v.to_bits() % 100_000) as f32 / 1000.0,
                })
                .collect();
            let docs: Vec<u32> = (0..scores.len() as u32).collect();
            let mut full = docs.clone();
            full.sort_by(|a, b| {
                scores[*b as usize]
                    .total_cmp(&scores[*a as usize])
                    .then(b.cmp(a))
            });
            full.truncate(limit);
            proptest::prop_assert_eq!(top_docs(docs.into_iter(), &scores, limit), full);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_hit_contains_a_query_term(words in proptest::collection::vec("[a-z]{3,6}", 1..8), q in "[a-z]{3,6}") {
            let mut a = Analyzer::new();
            let mut ix = TextIndex::new();
            for (i, w) in words.iter().enumerate() {
                ix.add(&mut a, doc(i as i64, w, &[]));
            }
            let stem = a.tokens(&q);
            for hit in ix.search(&a.query_terms(&q, 32), &MemoryFilter::default(), 100) {
                let text = &words[hit.head.created_at.0 as usize];
                proptest::prop_assert_eq!(&a.tokens(text), &stem);
                proptest::prop_assert!(hit.score > 0.0);
            }
        }
    }
}
