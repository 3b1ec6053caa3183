//! Text analysis shared by indexing and querying: words, lower case, diacritics folded
//! (`crème` → `creme`), stop words dropped, Snowball English stems (`databases` → `databas`).

use continuum_core::text::{is_stop_word, words};
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// Turns text into index terms. Keeps a cache of stems: a conversation's vocabulary is small
/// next to its word count, and stemming is the costly step.
pub struct Analyzer {
    stemmer: Stemmer,
    cache: HashMap<String, String>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

/// The cache is dropped when it grows past this many words, bounding memory.
const MAX_CACHE: usize = 200_000;

impl Analyzer {
    pub fn new() -> Self {
        Analyzer {
            stemmer: Stemmer::create(Algorithm::English),
            cache: HashMap::new(),
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

    /// The distinct terms of a query, in order, at most `max`.
    pub fn query_terms(&mut self, query: &str, max: usize) -> Vec<String> {
        let mut terms = self.tokens(query);
        let mut seen = std::collections::HashSet::new();
        terms.retain(|t| seen.insert(t.clone()));
        terms.truncate(max);
        terms
    }

    /// The index terms of a text, in order, with repeats.
    pub fn tokens(&mut self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for w in words(text) {
            let w = w
                .strip_suffix("'s")
                .or_else(|| w.strip_suffix("’s"))
                .unwrap_or(w);
            if let Some(stem) = self.cache.get(w) {
                if !stem.is_empty() {
                    out.push(stem.clone());
                }
                continue;
            }
            let folded = Self::fold(w);
            let keep = (folded.chars().count() >= 2 || folded.chars().all(|c| c.is_ascii_digit()))
                && !is_stop_word(&folded)
                && !folded.contains('\'');
            let stem = if keep {
                self.stemmer.stem(&folded).into_owned()
            } else {
                String::new()
            };
            if self.cache.len() >= MAX_CACHE {
                self.cache.clear();
            }
            self.cache.insert(w.to_string(), stem.clone());
            if !stem.is_empty() {
                out.push(stem);
            }
        }
        out
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
            vec!["crème".replace('è', "e").as_str(), "brule", "emil"]
        );
        assert_eq!(a.tokens("a I 7 x"), vec!["7"]);
        // Cached and uncached paths agree.
        assert_eq!(a.tokens("databases Databases"), vec!["databas", "databas"]);
    }
}
