//! The deterministic concept and decision extractor: no model, no network, the same output for
//! the same text on every machine.
//!
//! Concepts are found by surface cues, strongest first:
//! 1. quoted terms (`"…"`, `“…”`, backticks) and multi-word capitalised phrases (`Claude Desktop`);
//! 2. identifiers and technical tokens: CamelCase, snake_case, acronyms (`SQL`, `AWS`), file
//!    names (`main.rs`), versions (`v1.2.3`), hyphenated names with a digit (`gpt-4`), and single
//!    capitalised words that do not start a sentence (`We use Rust`);
//! 3. content words that occur at least twice in the text.
//!
//! Stop words and sentence-initial capitals (`The`, `When`) are never concepts on their own.
//! Keys are case-insensitive; at most [`RuleExtractor::max_per_text`] concepts are kept per text,
//! strongest and earliest first, so link creation stays O(k²) with a small k.

use crate::text::{is_stop_word, truncate_bytes};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A concept found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExtractedConcept {
    /// Normalised identity: lower case, single spaces.
    pub key: String,
    /// How the text first wrote it.
    pub name: String,
    /// `concept` or `tool` (identifiers, file names, versions, code).
    pub kind: String,
}

/// Finds concepts and decisions in text. A model-backed extractor may implement this later; the
/// rule-based one is always available.
pub trait Extractor: Send + Sync {
    fn concepts(&self, text: &str) -> Vec<ExtractedConcept>;
    fn decisions(&self, text: &str) -> Vec<String>;
}

/// Normalises a concept name into its key.
pub fn concept_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The rule-based extractor described in the module documentation.
#[derive(Debug, Clone)]
pub struct RuleExtractor {
    /// The most concepts kept from one text.
    pub max_per_text: usize,
    /// The longest decision sentence kept, in bytes.
    pub max_decision_bytes: usize,
}

impl Default for RuleExtractor {
    fn default() -> Self {
        RuleExtractor {
            max_per_text: 8,
            max_decision_bytes: 300,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Frequent = 1,
    Token = 2,
    Phrase = 3,
}

struct Candidate {
    name: String,
    kind: &'static str,
    strength: Strength,
    pos: usize,
}

/// A whitespace-delimited token with its surrounding punctuation removed.
struct Tok<'a> {
    word: &'a str,
    pos: usize,
    sentence_start: bool,
    /// Punctuation after the word breaks a capitalised phrase (`Rust, Go`).
    breaks_after: bool,
    /// Written as a possessive (`Melanie's`).
    possessive: bool,
}

/// Words that, after a sentence-initial capitalised word, show it is the sentence's subject.
const SUBJECT_FOLLOWERS: &[&str] = &[
    "is", "was", "are", "were", "has", "had", "and", "or", "uses", "used", "will", "can", "does",
    "did", "said", "says", "runs", "works", "supports", "needs", "wants", "likes", "loves",
    "lives", "went",
];

const OPENERS: &[char] = &[
    '(', '[', '{', '"', '\'', '`', '*', '_', '<', '“', '‘', '«', '#',
];
const CLOSERS: &[char] = &[
    '.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '`', '*', '_', '>', '”', '’', '»',
];

fn tokens(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut last_end = 0;
    for (start, raw) in split_whitespace_indices(text) {
        if text[last_end..start].contains('\n') {
            sentence_start = true;
        }
        last_end = start + raw.len();
        // Bullets and list markers start a sentence of their own.
        if matches!(raw, "-" | "*" | "•" | "—" | "–") || is_list_number(raw) {
            sentence_start = true;
            continue;
        }
        let lead = raw.len() - raw.trim_start_matches(OPENERS).len();
        let mut word = raw.trim_start_matches(OPENERS).trim_end_matches(CLOSERS);
        let mut possessive = false;
        if let Some(stem) = word.strip_suffix("'s").or_else(|| word.strip_suffix("’s")) {
            word = stem;
            possessive = true;
        }
        let trailing = raw.trim_end_matches(CLOSERS);
        let tail = &raw[trailing.len()..];
        let ends_sentence = tail.contains(['.', '!', '?']);
        let breaks_after = !tail.is_empty() || raw.ends_with("'s") || raw.ends_with("’s");
        if !word.is_empty() {
            out.push(Tok {
                word,
                pos: start + lead,
                sentence_start,
                breaks_after,
                possessive,
            });
        }
        sentence_start = ends_sentence;
    }
    out
}

fn is_list_number(raw: &str) -> bool {
    let digits = raw.trim_end_matches(['.', ')']);
    raw.len() > digits.len() && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

fn split_whitespace_indices(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut offset = 0;
    std::iter::from_fn(move || {
        let skip = rest.len() - rest.trim_start().len();
        rest = &rest[skip..];
        offset += skip;
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let item = (offset, &rest[..end]);
        rest = &rest[end..];
        offset += end;
        Some(item)
    })
}

fn is_capitalised(w: &str) -> bool {
    let mut chars = w.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() => chars.all(|c| c.is_alphanumeric() || c == '-'),
        _ => false,
    }
}

fn is_acronym(w: &str) -> bool {
    let n = w.chars().count();
    (2..=8).contains(&n)
        && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_camel_case(w: &str) -> bool {
    let chars: Vec<char> = w.chars().collect();
    chars.len() >= 3
        && chars.iter().all(|c| c.is_alphanumeric())
        && chars
            .windows(2)
            .any(|p| p[0].is_lowercase() && p[1].is_uppercase())
}

fn is_snake_case(w: &str) -> bool {
    w.contains('_')
        && !w.starts_with('_')
        && !w.ends_with('_')
        && w.chars().any(|c| c.is_alphabetic())
        && w.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn is_version(w: &str) -> bool {
    let v = w.strip_prefix(['v', 'V']).unwrap_or(w);
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() >= 2
        && parts.len() <= 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_file_name(w: &str) -> bool {
    let Some((stem, ext)) = w.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && (1..=5).contains(&ext.len())
        && ext.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && ext.chars().any(|c| c.is_ascii_lowercase())
        && stem.chars().any(|c| c.is_alphabetic())
        && stem
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        // "e.g", "i.e", "U.S": dotted single letters are abbreviations, not files.
        && stem.split('.').any(|s| s.chars().count() > 1)
}

fn is_hyphenated_technical(w: &str) -> bool {
    w.contains('-')
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars().any(|c| c.is_alphabetic())
        && w.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        && !w.starts_with('-')
        && !w.ends_with('-')
}

/// A transcript's speaker label: one to three capitalised words then a colon opening the text
/// (`Caroline: I went…`, `Dr Ada Byron: …`).
fn speaker_label(text: &str) -> Option<&str> {
    /// Words that head a line like a label but name no speaker.
    const HEADINGS: &[&str] = &[
        "answer",
        "caution",
        "conclusion",
        "edit",
        "error",
        "example",
        "fixme",
        "fyi",
        "hint",
        "important",
        "input",
        "note",
        "output",
        "ps",
        "question",
        "re",
        "reminder",
        "result",
        "source",
        "status",
        "step",
        "summary",
        "tip",
        "todo",
        "update",
        "warning",
    ];
    let text = text.trim_start();
    let (label, rest) = text.split_once(':')?;
    let words: Vec<&str> = label.split_whitespace().collect();
    let plausible = (1..=3).contains(&words.len())
        && label.len() <= 40
        && words.iter().all(|w| is_capitalised(w) && !is_stop_word(w))
        && !HEADINGS.contains(&words[0].to_lowercase().as_str())
        && rest.starts_with(char::is_whitespace);
    plausible.then_some(label.trim())
}

/// Quoted spans: `"…"`, `“…”` and backticks, 2 to 60 bytes, at most five words, one line.
fn quoted_spans(text: &str) -> Vec<(usize, &str, &'static str)> {
    let mut out = Vec::new();
    for (open, close, kind) in [
        ('"', '"', "concept"),
        ('“', '”', "concept"),
        ('`', '`', "tool"),
    ] {
        let mut from = 0;
        while let Some(i) = text[from..].find(open) {
            let start = from + i + open.len_utf8();
            let Some(j) = text[start..].find(close) else {
                break;
            };
            let inner = text[start..start + j].trim();
            from = start + j + close.len_utf8();
            if (2..=60).contains(&inner.len())
                && !inner.contains('\n')
                && inner.split_whitespace().count() <= 5
                && inner.chars().any(char::is_alphabetic)
                && !is_stop_word(inner)
            {
                out.push((start, inner, kind));
            }
        }
    }
    out
}

impl RuleExtractor {
    fn candidates(&self, text: &str) -> Vec<Candidate> {
        let mut cands: Vec<Candidate> = Vec::new();
        if let Some(name) = speaker_label(text) {
            cands.push(Candidate {
                name: name.to_string(),
                kind: "person",
                strength: Strength::Phrase,
                pos: 0,
            });
        }
        for (pos, inner, kind) in quoted_spans(text) {
            let name = inner.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
            if !name.is_empty() && !is_stop_word(name) {
                cands.push(Candidate {
                    name: name.to_string(),
                    kind,
                    strength: Strength::Phrase,
                    pos,
                });
            }
        }

        let toks = tokens(text);
        let mut lower_counts: HashMap<String, (usize, usize, &str)> = HashMap::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let w = t.word;
            let technical_kind = if is_snake_case(w)
                || is_camel_case(w)
                || is_file_name(w)
                || is_version(w)
                || is_hyphenated_technical(w)
            {
                Some("tool")
            } else if is_acronym(w) && !is_stop_word(w) {
                Some("concept")
            } else {
                None
            };
            if let Some(kind) = technical_kind {
                cands.push(Candidate {
                    name: w.to_string(),
                    kind,
                    strength: Strength::Token,
                    pos: t.pos,
                });
                i += 1;
                continue;
            }

            // A capitalised stop word inside a sentence is a name ("written in Go"), except for
            // words that are always capitalised or commonly title-cased.
            let name_like = !is_stop_word(w)
                || (!t.sentence_start
                    && !matches!(
                        w.to_lowercase().replace('’', "'").as_str(),
                        "i" | "i'm" | "i'll" | "i've" | "i'd" | "the" | "a" | "an" | "ok"
                    ));
            if is_capitalised(w) && name_like {
                // Gather a run of capitalised words not broken by punctuation or a sentence end.
                let mut j = i;
                while !toks[j].breaks_after
                    && j + 1 < toks.len()
                    && !toks[j + 1].sentence_start
                    && is_capitalised(toks[j + 1].word)
                    && !is_stop_word(toks[j + 1].word)
                    && j + 1 - i < 4
                {
                    j += 1;
                }
                // "Upgrade Tokio", "Ask Caroline": a two-word run opening a sentence is usually
                // a verb and a name, unless the run is the subject ("Claude Desktop is …").
                let is_subject_after = |k: usize| {
                    !toks[k].breaks_after
                        && toks.get(k + 1).is_some_and(|n| {
                            SUBJECT_FOLLOWERS.contains(&n.word.to_lowercase().as_str())
                        })
                };
                if j == i + 1 && t.sentence_start && !is_subject_after(j) {
                    i += 1;
                    continue;
                }
                if j > i {
                    let end = toks[j].pos + toks[j].word.len();
                    let phrase = &text[t.pos..end];
                    if !phrase.contains(['.', ',', ';', ':', '!', '?']) {
                        cands.push(Candidate {
                            name: phrase.split_whitespace().collect::<Vec<_>>().join(" "),
                            kind: "concept",
                            strength: Strength::Phrase,
                            pos: t.pos,
                        });
                        i = j + 1;
                        continue;
                    }
                }
                // A sentence-initial word is only taken when it is plainly a subject: a
                // possessive ("Melanie's") or followed by a verb or conjunction ("Rust is").
                let subject = t.possessive
                    || (!t.breaks_after
                        && toks.get(i + 1).is_some_and(|n| {
                            SUBJECT_FOLLOWERS.contains(&n.word.to_lowercase().as_str())
                        }));
                if !t.sentence_start || subject {
                    cands.push(Candidate {
                        name: w.to_string(),
                        kind: "concept",
                        strength: Strength::Token,
                        pos: t.pos,
                    });
                }
                i += 1;
                continue;
            }

            if w.chars().count() >= 4 && w.chars().all(|c| c.is_alphabetic()) && !is_stop_word(w) {
                let entry = lower_counts
                    .entry(w.to_lowercase())
                    .or_insert((0, t.pos, w));
                entry.0 += 1;
            }
            i += 1;
        }
        for (_, (count, pos, w)) in lower_counts {
            if count >= 2 {
                cands.push(Candidate {
                    name: w.to_lowercase(),
                    kind: "concept",
                    strength: Strength::Frequent,
                    pos,
                });
            }
        }
        cands
    }
}

impl Extractor for RuleExtractor {
    fn concepts(&self, text: &str) -> Vec<ExtractedConcept> {
        let mut cands = self.candidates(text);
        cands.sort_by(|a, b| b.strength.cmp(&a.strength).then(a.pos.cmp(&b.pos)));
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for c in cands {
            let key = concept_key(&c.name);
            if key.chars().count() < 2 || key.len() > 100 || !seen.insert(key.clone()) {
                continue;
            }
            out.push(ExtractedConcept {
                key,
                name: c.name,
                kind: c.kind.to_string(),
            });
            if out.len() >= self.max_per_text {
                break;
            }
        }
        out
    }

    fn decisions(&self, text: &str) -> Vec<String> {
        const OPENINGS: &[&str] = &[
            "i will ",
            "i'll ",
            "i am going to ",
            "i'm going to ",
            "i decided ",
            "i've decided ",
            "let's ",
            "let us ",
            "we will ",
            "we'll ",
            "we are going to ",
            "we're going to ",
            "we decided ",
            "we've decided ",
            "the plan is ",
            "the decision is ",
            "decision: ",
        ];
        let mut out = Vec::new();
        for sentence in sentences(text) {
            let normal = sentence.replace('’', "'").to_lowercase();
            let normal = normal
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .trim_start_matches("so ")
                .trim_start_matches("ok, ")
                .trim_start_matches("okay, ")
                .trim_start_matches("then ");
            if OPENINGS.iter().any(|o| normal.starts_with(o)) {
                let kept = truncate_bytes(sentence.trim(), self.max_decision_bytes);
                out.push(kept.to_string());
            }
        }
        out
    }
}

/// Sentences: split after `.`, `!`, `?` followed by whitespace, and at line breaks.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            {
                let s = line[start..=i].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = i + 1;
            }
        }
        let s = line[start..].trim();
        if !s.is_empty() {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        RuleExtractor::default()
            .concepts(text)
            .into_iter()
            .map(|c| c.key)
            .collect()
    }

    #[test]
    fn a_language_named_mid_sentence_is_a_concept() {
        assert_eq!(keys("We use Rust; it is fast"), vec!["rust"]);
    }

    #[test]
    fn short_proper_names_and_acronyms_are_concepts() {
        let k = keys("Our services are written in Go and Rust, with SQL on AWS.");
        for want in ["go", "rust", "sql", "aws"] {
            assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
        }
    }

    #[test]
    fn sentence_initial_capitals_and_stop_words_are_not_concepts() {
        let k = keys("The build failed. When it runs again, we check logs. This is fine.");
        for bad in ["the", "when", "this", "it", "we"] {
            assert!(!k.contains(&bad.to_string()), "{bad} wrongly in {k:?}");
        }
        assert!(keys("The").is_empty());
    }

    #[test]
    fn multi_word_capitalised_phrases_stay_together() {
        let k = keys("I configured Claude Desktop and Visual Studio Code yesterday.");
        assert!(k.contains(&"claude desktop".to_string()), "{k:?}");
        assert!(k.contains(&"visual studio code".to_string()), "{k:?}");
        assert_eq!(keys("Claude Desktop is installed."), vec!["claude desktop"]);
        assert_eq!(
            keys("Upgrade Tokio before the March release."),
            vec!["tokio", "march"]
        );
    }

    #[test]
    fn a_comma_separates_names_instead_of_joining_them() {
        let k = keys("We compared Rust, Go, Python and Java.");
        assert!(
            k.contains(&"rust".to_string()) && k.contains(&"go".to_string()),
            "{k:?}"
        );
        assert!(!k.iter().any(|x| x.contains(' ')), "{k:?}");
    }

    #[test]
    fn identifiers_files_versions_and_quotes_are_found() {
        let k = keys(
            "Rename memory_store in main.rs, bump tokio to v1.54.1, keep the PostgreSQL pool and the \"write ahead log\"; try `cargo nextest`.",
        );
        for want in [
            "memory_store",
            "main.rs",
            "v1.54.1",
            "postgresql",
            "write ahead log",
            "cargo nextest",
        ] {
            assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
        }
    }

    #[test]
    fn abbreviations_and_sentence_ends_are_not_files() {
        let k = keys("It is small, e.g. a cache. It works.");
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn repeated_content_words_count_single_ones_do_not() {
        let k = keys("my garden needs water; the garden is dry and the tomatoes wilt");
        assert_eq!(k, vec!["garden"]);
    }

    #[test]
    fn keys_dedupe_case_insensitively_keeping_the_first_form() {
        let c = RuleExtractor::default()
            .concepts("We like SQLite. Later sqlite got faster and SQLite won.");
        let sqlite: Vec<_> = c.iter().filter(|c| c.key == "sqlite").collect();
        assert_eq!(sqlite.len(), 1);
        assert_eq!(sqlite[0].name, "SQLite");
    }

    #[test]
    fn the_per_text_cap_keeps_the_strongest_first() {
        let ex = RuleExtractor {
            max_per_text: 3,
            ..Default::default()
        };
        let c = ex.concepts(
            "Talked with Ada Lovelace about AWS, GCP, Azure, Kubernetes, Docker and Terraform today.",
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].key, "ada lovelace");
    }

    #[test]
    fn a_sentence_initial_name_counts_when_it_is_the_subject() {
        assert_eq!(keys("Rust is fast."), vec!["rust"]);
        assert_eq!(
            keys("Caroline went to the support group."),
            vec!["caroline"]
        );
        assert!(keys("Sounds good to me.").is_empty());
        assert!(keys("Consider caching.").is_empty());
    }

    #[test]
    fn a_transcript_speaker_label_names_a_person() {
        let c = RuleExtractor::default().concepts("Caroline: I went to a support group yesterday.");
        assert_eq!(c[0].key, "caroline");
        assert_eq!(c[0].kind, "person");
        assert!(keys("Note: the build is green.").is_empty());
        assert!(
            keys("Warning: disk full").is_empty() || keys("Warning: disk full") == vec!["warning"]
        );
    }

    #[test]
    fn possessives_name_the_owner() {
        assert_eq!(keys("I went to see Melanie's paintings"), vec!["melanie"]);
    }

    #[test]
    fn decisions_are_first_person_commitments() {
        let d = RuleExtractor::default().decisions(
            "That makes sense. I'll switch the cache to Redis. Let's keep SQLite for now!\nThe plan is to ship Friday. You could also try Go.",
        );
        assert_eq!(
            d,
            vec![
                "I'll switch the cache to Redis.",
                "Let's keep SQLite for now!",
                "The plan is to ship Friday."
            ]
        );
        assert!(
            RuleExtractor::default()
                .decisions("Willy Wonka likes chocolate.")
                .is_empty()
        );
    }

    proptest::proptest! {
        #[test]
        fn extraction_never_panics_and_respects_the_cap(text in "\\PC{0,300}") {
            let ex = RuleExtractor::default();
            let c = ex.concepts(&text);
            proptest::prop_assert!(c.len() <= ex.max_per_text);
            for concept in &c {
                proptest::prop_assert_eq!(&concept.key, &concept_key(&concept.name));
                let capitalised = concept.name.chars().next().is_some_and(char::is_uppercase);
                proptest::prop_assert!(capitalised || !is_stop_word(&concept.key), "{:?}", concept);
            }
            let _ = ex.decisions(&text);
        }
    }
}
