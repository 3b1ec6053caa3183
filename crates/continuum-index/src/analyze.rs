//! Text analysis shared by indexing and querying: words, lower case, diacritics folded
//! (`crème` → `creme`), stop words dropped, Snowball English stems (`databases` → `databas`).
//!
//! Terms are handed out as integer ids from a dictionary owned by the analyzer, so indexing
//! allocates nothing per token. Every index fed by one analyzer shares its ids.

use continuum_core::text::{is_stop_word, words};
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use unicode_normalization::UnicodeNormalization;

/// A term's id in an [`Analyzer`]'s dictionary.
pub type TermId = u32;

/// The id cached for words that produce no term (stop words, single letters).
const NO_TERM: TermId = TermId::MAX;

/// The word cache is dropped when it grows past this many entries, bounding memory. The term
/// dictionary is never dropped: indexes refer to its ids.
const MAX_CACHE: usize = 200_000;

/// Turns text into term ids, caching each word's stem: a conversation's vocabulary is small next
/// to its word count, and stemming is the costly step.
pub struct Analyzer {
    stemmer: Stemmer,
    cache: FxHashMap<String, TermId>,
    ids: FxHashMap<Box<str>, TermId>,
    terms: Vec<Box<str>>,
}

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
            ids: FxHashMap::default(),
            terms: Vec::new(),
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

    fn word_id(&mut self, w: &str) -> TermId {
        if let Some(&id) = self.cache.get(w) {
            return id;
        }
        let folded = Self::fold(w);
        let keep = (folded.chars().count() >= 2 || folded.chars().all(|c| c.is_ascii_digit()))
            && !is_stop_word(&folded)
            && !folded.contains('\'');
        let id = if keep {
            let stem = self.stemmer.stem(&folded);
            self.intern(&stem)
        } else {
            NO_TERM
        };
        if self.cache.len() >= MAX_CACHE {
            self.cache.clear();
        }
        self.cache.insert(w.to_string(), id);
        id
    }

    /// Appends the term ids of a text to `out`, in order, with repeats.
    pub fn term_ids(&mut self, text: &str, out: &mut Vec<TermId>) {
        for w in words(text) {
            let w = w
                .strip_suffix("'s")
                .or_else(|| w.strip_suffix("’s"))
                .unwrap_or(w);
            let id = self.word_id(w);
            if id != NO_TERM {
                out.push(id);
            }
        }
    }

    /// The distinct term ids of a query, in order, at most `max`.
    pub fn query_terms(&mut self, query: &str, max: usize) -> Vec<TermId> {
        let mut ids = Vec::new();
        self.term_ids(query, &mut ids);
        let mut seen = rustc_hash::FxHashSet::default();
        ids.retain(|t| seen.insert(*t));
        ids.truncate(max);
        ids
    }

    /// The id of a term given as its text (already folded and stemmed, as [`Self::term`]
    /// gives it), added to the dictionary when new.
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

    /// Heap bytes of the dictionary and the word cache (estimates, as
    /// [`crate::TextIndex::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.terms.iter().map(|t| t.len()).sum::<usize>() * 2
            + self.cache.keys().map(String::capacity).sum::<usize>();
        let buckets = |cap: usize| (cap * 8 / 7).next_power_of_two();
        strings
            + self.terms.capacity() * 16
            + buckets(self.ids.capacity()) * 21
            + buckets(self.cache.capacity()) * 29
    }

    /// The text of a term.
    pub fn term(&self, id: TermId) -> Option<&str> {
        self.terms.get(id as usize).map(|t| &**t)
    }

    /// The terms of a text as strings (for inspection and tests).
    pub fn tokens(&mut self, text: &str) -> Vec<String> {
        let mut ids = Vec::new();
        self.term_ids(text, &mut ids);
        ids.into_iter()
            .filter_map(|id| self.term(id).map(str::to_string))
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
        assert_eq!(a.query_terms("Databases database running", 10).len(), 2);
        assert_eq!(a.query_terms("Databases database running", 1).len(), 1);
    }

    #[test]
    fn ids_survive_a_cache_reset() {
        let mut a = Analyzer::new();
        let before = a.query_terms("kafka", 1);
        a.cache.clear();
        assert_eq!(a.query_terms("Kafka", 1), before);
    }
}
