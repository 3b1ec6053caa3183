//! Plain-text helpers shared by extraction, search and context assembly: word splitting, the stop
//! word list, a token estimate for budgets, and a near-duplicate measure.

use std::collections::HashSet;

/// English function words and conversational filler. They are never concepts and never search
/// terms. Lower case, sorted for binary search.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "actually",
    "after",
    "again",
    "against",
    "ago",
    "all",
    "almost",
    "also",
    "although",
    "always",
    "am",
    "among",
    "an",
    "and",
    "another",
    "any",
    "anyone",
    "anything",
    "anyway",
    "are",
    "aren't",
    "around",
    "as",
    "ask",
    "at",
    "away",
    "back",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "best",
    "better",
    "between",
    "both",
    "but",
    "by",
    "can",
    "can't",
    "cannot",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "doing",
    "don't",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "enough",
    "etc",
    "even",
    "ever",
    "every",
    "everyone",
    "everything",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "go",
    "goes",
    "going",
    "good",
    "got",
    "great",
    "had",
    "hadn't",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "he'd",
    "he'll",
    "he's",
    "hello",
    "her",
    "here",
    "here's",
    "hers",
    "herself",
    "hey",
    "hi",
    "him",
    "himself",
    "his",
    "how",
    "how's",
    "however",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "indeed",
    "into",
    "is",
    "isn't",
    "it",
    "it'd",
    "it'll",
    "it's",
    "its",
    "itself",
    "just",
    "know",
    "last",
    "later",
    "least",
    "less",
    "let",
    "let's",
    "like",
    "likely",
    "lot",
    "lots",
    "made",
    "make",
    "makes",
    "many",
    "may",
    "maybe",
    "me",
    "might",
    "mine",
    "more",
    "most",
    "much",
    "must",
    "mustn't",
    "my",
    "myself",
    "need",
    "needs",
    "never",
    "new",
    "next",
    "no",
    "nor",
    "not",
    "nothing",
    "now",
    "of",
    "off",
    "often",
    "oh",
    "ok",
    "okay",
    "old",
    "on",
    "once",
    "one",
    "only",
    "onto",
    "or",
    "other",
    "others",
    "otherwise",
    "ought",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "perhaps",
    "please",
    "pretty",
    "quite",
    "rather",
    "re",
    "really",
    "right",
    "said",
    "same",
    "say",
    "says",
    "see",
    "seem",
    "seems",
    "shall",
    "shan't",
    "she",
    "she'd",
    "she'll",
    "she's",
    "should",
    "shouldn't",
    "since",
    "so",
    "some",
    "someone",
    "something",
    "sometimes",
    "soon",
    "still",
    "such",
    "sure",
    "take",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "that's",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "therefore",
    "these",
    "they",
    "they'd",
    "they'll",
    "they're",
    "they've",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "to",
    "too",
    "toward",
    "towards",
    "truly",
    "try",
    "under",
    "unless",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "used",
    "uses",
    "using",
    "very",
    "via",
    "want",
    "wants",
    "was",
    "wasn't",
    "way",
    "we",
    "we'd",
    "we'll",
    "we're",
    "we've",
    "well",
    "were",
    "weren't",
    "what",
    "what's",
    "whatever",
    "when",
    "when's",
    "where",
    "where's",
    "whether",
    "which",
    "while",
    "who",
    "who's",
    "whom",
    "whose",
    "why",
    "why's",
    "will",
    "with",
    "within",
    "without",
    "won't",
    "would",
    "wouldn't",
    "yeah",
    "yes",
    "yet",
    "you",
    "you'd",
    "you'll",
    "you're",
    "you've",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Fx rather than SipHash: every word of every learned turn and query is looked up here, and
/// the set is fixed (nothing an attacker sends can fill its buckets).
fn stop_set() -> &'static rustc_hash::FxHashSet<&'static str> {
    static SET: std::sync::OnceLock<rustc_hash::FxHashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
}

/// Is `word` (any case) a stop word?
pub fn is_stop_word(word: &str) -> bool {
    // The longest stop word has 10 bytes; most words are ASCII: lower-case on the stack.
    if word.len() > 12 {
        return false;
    }
    if word.is_ascii() {
        let mut buf = [0u8; 12];
        let lower = &mut buf[..word.len()];
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        let lower = std::str::from_utf8(lower).expect("ASCII stays UTF-8");
        return stop_set().contains(lower);
    }
    let lower = word.to_lowercase().replace('\u{2019}', "'");
    stop_set().contains(lower.as_str())
}

/// Splits text into words: maximal runs of letters, digits and inner apostrophes.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '\u{2019}'))
        .filter(|w| !w.is_empty())
}

/// The search terms of a text: lower-cased words that are not stop words, in first-seen order,
/// deduplicated, at most `max` of them. Single characters are dropped unless they are digits.
pub fn search_terms(text: &str, max: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for w in words(text) {
        let lower = w.to_lowercase();
        // Possessives and contractions search by their stem ("Melanie's" finds "Melanie").
        let lower = lower
            .strip_suffix("'s")
            .or_else(|| lower.strip_suffix("\u{2019}s"))
            .map(str::to_string)
            .unwrap_or(lower);
        if lower.chars().count() < 2 && !lower.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if is_stop_word(&lower) || lower.contains('\'') {
            continue;
        }
        if seen.insert(lower.clone()) {
            out.push(lower);
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// An estimate of how many LLM tokens a text costs: one token per four bytes, rounded up, plus
/// one. Deliberately simple and slightly pessimistic so budgets are not overrun for English
/// text; it is the documented rule for `--budget`.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4) + 1
}

/// Cuts `text` to at most `max_bytes` bytes on a character boundary.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Jaccard similarity of the lower-cased word sets of two texts, in [0, 1]. Two empty texts are
/// identical (1.0).
pub fn word_jaccard(a: &str, b: &str) -> f64 {
    let sa: HashSet<String> = words(a).map(str::to_lowercase).collect();
    let sb: HashSet<String> = words(b).map(str::to_lowercase).collect();
    jaccard(&sa, &sb)
}

/// A text's distinct lower-cased words as sorted hashes: compared with [`signature_jaccard`]
/// many times over, so it is computed once per text.
pub fn word_signature(text: &str) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let mut sig: Vec<u64> = words(text)
        .map(|w| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for c in w.chars().flat_map(char::to_lowercase) {
                c.hash(&mut h);
            }
            h.finish()
        })
        .collect();
    sig.sort_unstable();
    sig.dedup();
    sig
}

/// Jaccard similarity of two word signatures, or 0 when it is certainly below `at_least`
/// (the sizes alone bound it).
pub fn signature_jaccard(a: &[u64], b: &[u64], at_least: f64) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (small, large) = if a.len() <= b.len() {
        (a.len(), b.len())
    } else {
        (b.len(), a.len())
    };
    if (small as f64) < at_least * large as f64 {
        return 0.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// A 64-bit sketch of a word signature: bit `h % 64` set for each hash `h`. Two signatures
/// differ in at least as many words as their sketches differ in bits, which bounds their
/// Jaccard similarity from above at the cost of a popcount (see [`may_reach_jaccard`]).
pub fn signature_sketch(signature: &[u64]) -> u64 {
    signature.iter().fold(0, |m, h| m | 1 << (h % 64))
}

/// False when two signatures of these sizes and sketches certainly have a Jaccard similarity
/// below `at_least` (then [`signature_jaccard`] need not run). A Jaccard of at least `t`
/// leaves at most `(1 - t)·|A ∪ B| ≤ (1 - t)·(|A| + |B|)` words in one set only, and each
/// bit the sketches disagree on needs one such word.
pub fn may_reach_jaccard(
    a_len: usize,
    a_sketch: u64,
    b_len: usize,
    b_sketch: u64,
    at_least: f64,
) -> bool {
    let differing = (a_sketch ^ b_sketch).count_ones() as f64;
    differing <= (1.0 - at_least) * (a_len + b_len) as f64 + 1e-9
}

/// Jaccard similarity of two sets (two empty sets are identical).
pub fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count() as f64;
    inter / ((a.len() + b.len()) as f64 - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_word_list_is_sorted_for_binary_search() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS);
        assert!(is_stop_word("The"));
        assert!(is_stop_word("WHEN"));
        assert!(!is_stop_word("Rust"));
    }

    #[test]
    fn search_terms_drop_stop_words_and_dedupe() {
        assert_eq!(
            search_terms("What did Melanie's dog eat? The dog ate 2 bones.", 10),
            vec!["melanie", "dog", "eat", "ate", "2", "bones"]
        );
        assert_eq!(search_terms("a b c", 10), Vec::<String>::new());
        assert_eq!(search_terms("alpha beta gamma", 2).len(), 2);
    }

    #[test]
    fn token_estimate_is_monotone_and_never_zero() {
        assert_eq!(estimate_tokens(""), 1);
        assert!(estimate_tokens("four") < estimate_tokens("four more words here"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("hello", 10), "hello");
    }

    #[test]
    fn jaccard_measures_overlap() {
        assert_eq!(word_jaccard("a b c", "C b A"), 1.0);
        assert!((word_jaccard("a b", "b c") - 1.0 / 3.0).abs() < 1e-9);
    }

    proptest::proptest! {
        #[test]
        fn a_sketch_never_rejects_a_pair_that_reaches_the_threshold(
            a in proptest::collection::vec("[a-f]{1,2}", 0..30),
            b in proptest::collection::vec("[a-f]{1,2}", 0..30),
            t in 0.0f64..1.0,
        ) {
            let (x, y) = (word_signature(&a.join(" ")), word_signature(&b.join(" ")));
            let j = signature_jaccard(&x, &y, 0.0);
            if !may_reach_jaccard(x.len(), signature_sketch(&x), y.len(), signature_sketch(&y), t) {
                proptest::prop_assert!(j < t, "rejected at {t}, jaccard {j}");
            }
        }
    }

    #[test]
    fn sketches_reject_different_texts_and_keep_near_copies() {
        let sig = |t: &str| {
            let s = word_signature(t);
            (s.len(), signature_sketch(&s))
        };
        let (a, b, c) = (
            sig("we deploy the billing service on kubernetes in frankfurt every friday"),
            sig("we deploy the billing service on kubernetes in frankfurt every friday!"),
            sig("my sister started violin lessons and practises every evening after work"),
        );
        assert!(may_reach_jaccard(a.0, a.1, b.0, b.1, 0.9));
        assert!(!may_reach_jaccard(a.0, a.1, c.0, c.1, 0.9));
    }

    #[test]
    fn signatures_agree_with_set_jaccard() {
        let pairs = [
            ("a b c", "C b A"),
            ("a b", "b c"),
            ("one two three four", "one two three five"),
        ];
        for (x, y) in pairs {
            let exact = word_jaccard(x, y);
            let sig = signature_jaccard(&word_signature(x), &word_signature(y), 0.0);
            assert!((exact - sig).abs() < 1e-9, "{x} / {y}");
        }
        // The size bound prunes pairs that cannot reach the threshold.
        assert_eq!(
            signature_jaccard(&word_signature("a"), &word_signature("a b c d"), 0.9),
            0.0
        );
    }
}
