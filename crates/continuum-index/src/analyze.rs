//! Text analysis shared by indexing and querying: words, lower case, diacritics folded
//! (`crème` → `creme`), stop words dropped, Snowball English stems (`databases` → `databas`).
//!
//! Terms are integer ids from a [`Terms`] dictionary that each index owns, so indexing
//! allocates nothing per token for a known term, and a dictionary lives and dies with its
//! index: a rebuilt or dropped index takes the terms only it used with it (one dictionary
//! for every tenant grew with every number ever learned). The [`Analyzer`] holds what costs
//! to compute and is the same for every index, each word's stem.

use continuum_core::text::{is_stop_word, words};
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use unicode_normalization::UnicodeNormalization;

/// A term's id in a [`Terms`] dictionary.
pub type TermId = u32;

/// Query words whose stem the index never had get ids counted down from here: each stays a
/// distinct term (so a query's length is what it was) that matches nothing, and the
/// dictionary grows only with what is indexed, never with what is asked.
const UNKNOWN_FROM: TermId = TermId::MAX - 1;

/// The word cache is dropped when it grows past this many entries, bounding memory.
const MAX_CACHE: usize = 200_000;

/// One index's terms: text to id and back.
#[derive(Debug, Default)]
pub struct Terms {
    ids: FxHashMap<Box<str>, TermId>,
    terms: Vec<Box<str>>,
}

impl Terms {
    /// The id of a term given as its text (folded and stemmed, as [`Self::term`] gives it),
    /// added when new.
    pub fn intern(&mut self, term: &str) -> TermId {
        if let Some(&id) = self.ids.get(term) {
            return id;
        }
        let id = self.terms.len() as TermId;
        let term: Box<str> = term.into();
        self.terms.push(term.clone());
        self.ids.insert(term, id);
        id
    }

    /// The id of a term if the dictionary has it.
    pub fn get(&self, term: &str) -> Option<TermId> {
        self.ids.get(term).copied()
    }

    /// The text of a term.
    pub fn term(&self, id: TermId) -> Option<&str> {
        self.terms.get(id as usize).map(|t| &**t)
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Heap bytes (estimates, as [`crate::TextIndex::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.terms.iter().map(|t| t.len()).sum::<usize>() * 2;
        strings + self.terms.capacity() * 16 + buckets(self.ids.capacity()) * 25
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.terms.shrink_to_fit();
        self.ids.shrink_to_fit();
    }
}

/// A hash map's buckets for a capacity (a power of two over the 7/8 load factor).
fn buckets(cap: usize) -> usize {
    if cap == 0 {
        0
    } else {
        (cap * 8 / 7).next_power_of_two()
    }
}

/// Turns text into terms, caching each word's stem: a conversation's vocabulary is small next
/// to its word count, and stemming is the costly step.
pub struct Analyzer {
    stemmer: Stemmer,
    /// Word → its stem's place in `stems`, or [`NO_STEM`] for a word that makes no term (stop
    /// words, single letters).
    cache: FxHashMap<String, u32>,
    stems: Vec<Box<str>>,
}

const NO_STEM: u32 = u32::MAX;

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    pub fn new() -> Self {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
            cache: FxHashMap::default(),
            stems: Vec::new(),
        }
    }

    fn fold(word: &str) -> String {
        if word.is_ascii() {
            return word.to_ascii_lowercase();
        }
        word.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    }

    /// The stem of a word (cached), or `None` for a word that makes no term.
    fn stem(&mut self, w: &str) -> Option<&str> {
        let at = match self.cache.get(w) {
            Some(&at) => at,
            None => {
                let folded = Self::fold(w);
                let keep = (folded.chars().count() >= 2
                    || folded.chars().all(|c| c.is_ascii_digit()))
                    && !is_stop_word(&folded)
                    && !folded.contains('\'');
                if self.cache.len() >= MAX_CACHE {
                    self.cache.clear();
                    self.stems.clear();
                }
                let at = if keep {
                    self.stems.push(self.stemmer.stem(&folded).into());
                    (self.stems.len() - 1) as u32
                } else {
                    NO_STEM
                };
                self.cache.insert(w.to_string(), at);
                at
            }
        };
        self.stems.get(at as usize).map(|s| &**s)
    }

    /// A text's words, a possessive `'s` cut off.
    fn words(text: &str) -> impl Iterator<Item = &str> {
        words(text).map(|w| {
            w.strip_suffix("'s")
                .or_else(|| w.strip_suffix("’s"))
                .unwrap_or(w)
        })
    }

    /// Appends the term ids of a text to `out`, in order, with repeats, adding new terms to
    /// `terms`.
    pub fn term_ids(&mut self, terms: &mut Terms, text: &str, out: &mut Vec<TermId>) {
        for w in Self::words(text) {
            if let Some(stem) = self.stem(w) {
                out.push(terms.intern(stem));
            }
        }
    }

    /// The distinct term ids of a query in `terms`, in order, at most `max`. A term `terms`
    /// lacks gets an id of its own that matches nothing (see [`UNKNOWN_FROM`]).
    pub fn query_terms(&mut self, terms: &Terms, query: &str, max: usize) -> Vec<TermId> {
        let mut ids = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for w in Self::words(query) {
            let Some(stem) = self.stem(w) else { continue };
            let id = terms.get(stem).unwrap_or_else(|| {
                let at = unknown.iter().position(|u| u == stem).unwrap_or_else(|| {
                    unknown.push(stem.to_string());
                    unknown.len() - 1
                });
                UNKNOWN_FROM - at as TermId
            });
            ids.push(id);
        }
        let mut seen = rustc_hash::FxHashSet::default();
        ids.retain(|t| seen.insert(*t));
        ids.truncate(max);
        ids
    }

    /// Heap bytes of the word cache (estimates, as [`crate::TextIndex::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.cache.keys().map(String::capacity).sum::<usize>()
            + self.stems.iter().map(|s| s.len()).sum::<usize>();
        strings + buckets(self.cache.capacity()) * 29 + self.stems.capacity() * 16
    }

    /// The terms of a text as strings (for inspection and tests).
    pub fn tokens(&mut self, text: &str) -> Vec<String> {
        Self::words(text)
            .filter_map(|w| self.stem(w).map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_diacritics_stems_and_drops_stop_words() {
        let mut a = Analyzer::new();
        assert_eq!(
            a.tokens("The Databases were running"),
            vec!["databas", "run"]
        );
        assert_eq!(
            a.tokens("Crème BRÛLÉE at Émile's"),
            vec!["creme", "brule", "emil"]
        );
        assert_eq!(a.tokens("a I 7 x"), vec!["7"]);
        // Cached and uncached paths agree, and one stem has one id.
        assert_eq!(a.tokens("databases Databases database"), vec!["databas"; 3]);
        let mut terms = Terms::default();
        a.term_ids(&mut terms, "running databases", &mut Vec::new());
        assert_eq!(
            a.query_terms(&terms, "Databases database running", 10)
                .len(),
            2
        );
        assert_eq!(
            a.query_terms(&terms, "Databases database running", 1).len(),
            1
        );
    }

    #[test]
    fn queries_do_not_grow_the_dictionary() {
        let mut a = Analyzer::new();
        let mut terms = Terms::default();
        let mut ids = Vec::new();
        a.term_ids(&mut terms, "kafka topics", &mut ids);
        let q = a.query_terms(&terms, "Kafka zeppelin blimps zeppelins topic", 10);
        assert_eq!(terms.len(), 2, "nothing asked is added");
        // kafka and topic known; zeppelin (twice, one stem) and blimp unknown and distinct.
        assert_eq!(q.len(), 4);
        assert_eq!(q[0], ids[0]);
        assert_eq!(q[3], ids[1]);
        assert!(q[1] != q[2] && q[1] > q[3] && q[2] > q[3]);
        assert!(terms.term(q[1]).is_none());
        // Indexed later, the word gets a real id that the next query finds.
        let mut later = Vec::new();
        a.term_ids(&mut terms, "a zeppelin", &mut later);
        assert_eq!(a.query_terms(&terms, "zeppelin", 1), later);
    }

    #[test]
    fn one_stem_one_id_across_a_cache_reset() {
        let mut a = Analyzer::new();
        let mut terms = Terms::default();
        let mut ids = Vec::new();
        a.term_ids(&mut terms, "databases Databases database", &mut ids);
        assert_eq!(ids, vec![0, 0, 0]);
        a.cache.clear();
        a.stems.clear();
        assert_eq!(a.query_terms(&terms, "Database", 1), vec![0]);
        // Another index's dictionary numbers its own terms.
        let mut other = Terms::default();
        let mut b = Vec::new();
        a.term_ids(&mut other, "kafka database", &mut b);
        assert_eq!(b, vec![0, 1]);
    }
}
