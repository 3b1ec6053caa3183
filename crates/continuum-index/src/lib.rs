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
//! The text index can be written to a file and read back ([`TextIndex::to_bytes`]), so a
//! process need not rebuild it from the store (the engine keeps it beside the store).

mod analyze;
pub mod ann;

pub use analyze::{Analyzer, TermId, Terms};
pub use persist::FileHead;

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

mod bm25;
mod concepts;
mod persist;
mod sessions;
mod topk;
mod vectors;

use bm25::*;
use topk::*;

/// BM25 parameters (the usual defaults, as in SQLite FTS5 and Lucene).
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// What ranking and filtering read of a document: its head ([`MemoryHead`]) without the
/// session, which `places` and `session_names` hold once per session rather than as a
/// string per document (32 bytes a document instead of about 80).
#[derive(Debug)]
struct Doc {
    id: MemoryId,
    created_at: continuum_core::Timestamp,
    source: continuum_core::Source,
    superseded: bool,
    alive: bool,
}

/// Marks a forgotten document in `lens`.
const DEAD: u32 = u32::MAX;

/// A document's number and how often the term occurs in it. Packed to 6 bytes (8 with
/// padding): postings are the largest part of the index.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(2))]
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
    /// This index's terms (a rebuild starts a new dictionary, so forgotten terms go).
    dict: Terms,
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
    /// Per session slot, its id (what heads handed out carry).
    session_names: Vec<continuum_core::SessionId>,
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
    /// The terms of each document's speaker's name (`metadata.speaker`), one document after
    /// another: document `d`'s are `speaker_terms[speakers_from[d]..speakers_from[d + 1]]`
    /// (one array, not a boxed slice of 16 bytes per document, most of them empty).
    speaker_terms: Vec<TermId>,
    /// Where each document's speaker terms start in `speaker_terms`, and (last) where they end.
    speakers_from: Vec<u32>,
    /// Documents (forgotten ones included) with speaker terms: none means
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
        self.apply_until(graph, progress, &|| false)
    }

    /// [`Self::apply_to`], giving up (with an error) as soon as `stop` says so; a graph
    /// given up on must be dropped, not attached or saved.
    pub fn apply_until(
        &self,
        graph: &mut ann::Ann,
        progress: impl Fn(usize) + Sync,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> continuum_core::Result<()> {
        for id in &self.remove {
            graph.forget(id)?;
        }
        let items: Vec<(MemoryId, &[i8])> = self
            .insert
            .iter()
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        graph.insert_many_until(&items, progress, stop)?;
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

    /// The distinct terms of a query, in order, at most `max` (see
    /// [`Analyzer::query_terms`]).
    pub fn query_terms(&self, analyzer: &mut Analyzer, query: &str, max: usize) -> Vec<TermId> {
        analyzer.query_terms(&self.dict, query, max)
    }

    /// The text of one of this index's terms.
    pub fn term(&self, id: TermId) -> Option<&str> {
        self.dict.term(id)
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
            analyzer.term_ids(&mut self.dict, name, &mut speaker);
            speaker.truncate(MAX_SPEAKER_TERMS);
        }
        self.with_speaker += u32::from(!speaker.is_empty());
        self.push_speaker(&speaker);
        analyzer.term_ids(&mut self.dict, &doc.content, &mut ids);
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
        let session = doc.head.session.as_ref().map(|s| (self.session_slot(s), 0));
        let created_at = doc.head.created_at;
        self.docs.push(Doc {
            id: doc.head.id,
            created_at,
            source: doc.head.source,
            superseded: doc.head.superseded,
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

    /// Heap bytes held, by structure (estimates from capacities and element sizes, hash maps
    /// counted at one control byte per bucket plus their entries, allocator overhead left
    /// out): what `bench` reports per memory.
    pub fn heap_bytes(&self) -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        fn vec<T>(v: &Vec<T>) -> usize {
            v.capacity() * size_of::<T>()
        }
        fn map<K, V>(m: &FxHashMap<K, V>) -> usize {
            // Buckets: capacity rounded up to a power of two over the 7/8 load factor.
            let buckets = if m.capacity() == 0 {
                0
            } else {
                (m.capacity() * 8 / 7).next_power_of_two()
            };
            buckets * (size_of::<(K, V)>() + 1)
        }
        let session_names: usize = self
            .session_names
            .iter()
            .map(|s| s.as_str().len() + size_of::<continuum_core::SessionId>())
            .sum();
        let impacts = self
            .impacts
            .lock()
            .map(|c| c.held * size_of::<f32>())
            .unwrap_or(0);
        vec![
            ("documents (heads)", vec(&self.docs)),
            ("lengths", vec(&self.lens)),
            ("id map", map(&self.by_id)),
            ("term dictionary", self.dict.heap_bytes()),
            (
                "postings",
                map(&self.terms) + self.terms.values().map(vec).sum::<usize>(),
            ),
            (
                "concept mentions",
                map(&self.concept_ids)
                    + self.concept_ids.keys().map(|k| k.len()).sum::<usize>()
                    + vec(&self.concept_docs)
                    + self.concept_docs.iter().map(vec).sum::<usize>()
                    + vec(&self.doc_concepts)
                    + vec(&self.concepts_from),
            ),
            (
                "sessions",
                map(&self.session_slots)
                    + self.session_slots.keys().map(|k| k.len()).sum::<usize>()
                    + session_names
                    + vec(&self.sessions)
                    + self.sessions.iter().map(vec).sum::<usize>()
                    + vec(&self.places)
                    + vec(&self.near),
            ),
            (
                "speakers",
                vec(&self.speaker_terms) + vec(&self.speakers_from),
            ),
            (
                "vectors",
                vec(&self.vec_of)
                    + vec(&self.vectors)
                    + vec(&self.vec_scale)
                    + vec(&self.vec_doc)
                    + vec(&self.vec_seqs),
            ),
            ("impact cache", impacts),
        ]
    }

    fn push_speaker(&mut self, terms: &[TermId]) {
        if self.speakers_from.is_empty() {
            self.speakers_from.push(0);
        }
        self.speaker_terms.extend_from_slice(terms);
        self.speakers_from.push(self.speaker_terms.len() as u32);
    }

    /// The terms of document `ord`'s speaker's name.
    #[inline(always)]
    pub(crate) fn speaker_of(&self, ord: u32) -> &[TermId] {
        let (from, to) = (
            self.speakers_from[ord as usize] as usize,
            self.speakers_from[ord as usize + 1] as usize,
        );
        &self.speaker_terms[from..to]
    }

    /// Gives back the room that growing left in every list (a built index takes no more
    /// writes than a caught-up one, and doubling leaves a quarter of a list empty on
    /// average).
    pub fn shrink_to_fit(&mut self) {
        self.dict.shrink_to_fit();
        for ps in self.terms.values_mut() {
            ps.shrink_to_fit();
        }
        for l in self.concept_docs.iter_mut().chain(self.sessions.iter_mut()) {
            l.shrink_to_fit();
        }
        self.docs.shrink_to_fit();
        self.lens.shrink_to_fit();
        self.doc_concepts.shrink_to_fit();
        self.concepts_from.shrink_to_fit();
        self.concept_docs.shrink_to_fit();
        self.sessions.shrink_to_fit();
        self.places.shrink_to_fit();
        self.near.shrink_to_fit();
        self.vec_of.shrink_to_fit();
        self.speaker_terms.shrink_to_fit();
        self.speakers_from.shrink_to_fit();
    }

    /// The numbers of the concepts document `ord` mentions.
    pub(crate) fn concepts_of(&self, ord: u32) -> &[u32] {
        let (from, to) = (
            self.concepts_from[ord as usize] as usize,
            self.concepts_from[ord as usize + 1] as usize,
        );
        &self.doc_concepts[from..to]
    }

    /// Replaces the ranking facts (superseded, source, time) of a document; its session and
    /// its place there stay as they are.
    pub fn update_head(&mut self, head: MemoryHead) {
        if let Some(&ord) = self.by_id.get(&head.id) {
            let d = &mut self.docs[ord as usize];
            d.superseded = head.superseded;
            d.source = head.source;
            d.created_at = head.created_at;
        }
    }

    /// The slot of a session, made when new.
    fn session_slot(&mut self, s: &continuum_core::SessionId) -> u32 {
        let next = self.sessions.len() as u32;
        let slot = *self.session_slots.entry(s.as_str().into()).or_insert(next);
        if slot == next {
            self.sessions.push(Vec::new());
            self.session_names.push(s.clone());
        }
        slot
    }

    /// Document `ord`'s session.
    fn session_of(&self, ord: u32) -> Option<&continuum_core::SessionId> {
        self.places[ord as usize].map(|(slot, _)| &self.session_names[slot as usize])
    }

    /// Document `ord`'s head, as handed out with hits.
    pub(crate) fn head(&self, ord: u32) -> MemoryHead {
        let d = &self.docs[ord as usize];
        MemoryHead {
            id: d.id,
            source: d.source,
            session: self.session_of(ord).cloned(),
            created_at: d.created_at,
            superseded: d.superseded,
        }
    }

    /// [`MemoryFilter::matches_head`] of document `ord`'s head, without making the head.
    #[inline]
    pub(crate) fn passes(&self, filter: &MemoryFilter, ord: u32) -> bool {
        let d = &self.docs[ord as usize];
        (filter.sources.is_empty() || filter.sources.contains(&d.source))
            && filter
                .session
                .as_ref()
                .is_none_or(|s| self.session_of(ord) == Some(s))
            && filter.since.is_none_or(|t| d.created_at >= t)
            && filter.until.is_none_or(|t| d.created_at < t)
            && (!filter.current_only || !d.superseded)
    }
}

#[cfg(test)]
mod tests {
    use super::vectors::{dot_i8, quantize};
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
            &ix.query_terms(&mut a, "zebra cat", 32),
            &MemoryFilter::default(),
            10,
        );
        assert_eq!(ids(&hits)[0], 2, "the rare term decides");
        assert_eq!(hits.len(), 3);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        // Stemming: "cats" finds "cat".
        assert_eq!(
            ix.search(
                &ix.query_terms(&mut a, "cats", 32),
                &MemoryFilter::default(),
                10
            )
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
        let q = ix.query_terms(&mut a, "kafka plan", 32);
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
            ix.search(
                &ix.query_terms(&mut a, "kafka", 32),
                &MemoryFilter::default(),
                10
            )
            .len(),
            1
        );
        assert_eq!(ix.mentions("kafka", &MemoryFilter::default(), 10).len(), 1);
        ix.remove(&d.head.id);
        assert!(ix.is_empty());
        assert!(
            ix.search(
                &ix.query_terms(&mut a, "kafka", 32),
                &MemoryFilter::default(),
                10
            )
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
        let hits = ix.search(&ix.query_terms(&mut a, "deploy", 32), &f, 5);
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
        let q = ix.query_terms(&mut a, "Melanie Lisbon", 8);
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
        let q = ix.query_terms(&mut a, "holiday", 8);
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
            let q = ix.query_terms(&mut a, &query.join(" "), 32);
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
            let q = ix.query_terms(&mut a, &query.join(" "), 32);
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
        let q = ix.query_terms(&mut a, "lisbon kafka", 8);
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
        let q = ix.query_terms(&mut a, "lisbon kafka", 8);
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
            for hit in ix.search(&ix.query_terms(&mut a, &q, 32), &MemoryFilter::default(), 100) {
                let text = &words[hit.head.created_at.0 as usize];
                proptest::prop_assert_eq!(&a.tokens(text), &stem);
                proptest::prop_assert!(hit.score > 0.0);
            }
        }
    }
}
