//! The BERT tokenizer (uncased WordPiece), as sentence-embedding models of the MiniLM and BGE
//! families use it: read from the model's `tokenizer.json` (or `vocab.txt`).
//!
//! Steps, in the reference order: clean the text (drop control characters, map every kind of
//! white space to a space), put spaces around CJK ideographs, lower-case and strip accents
//! (decompose, drop non-spacing marks), split on white space and around each punctuation
//! character, then split every word greedily into the longest vocabulary pieces (`##` marks a
//! piece continuing a word). A word with no split, or longer than the limit, becomes `[UNK]`.

use continuum_core::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// A loaded WordPiece vocabulary and its options.
#[derive(Debug)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    lowercase: bool,
    strip_accents: bool,
    max_chars_per_word: usize,
    prefix: String,
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    unk: u32,
}

impl WordPiece {
    /// Loads the tokenizer of a model directory: `tokenizer.json` when present (it must be a
    /// BERT WordPiece tokenizer), else `vocab.txt` with the uncased defaults.
    pub fn load(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        if json.exists() {
            let text = std::fs::read_to_string(&json).map_err(|e| io_error(&json, e))?;
            return Self::from_tokenizer_json(&text)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", json.display())));
        }
        let txt = dir.join("vocab.txt");
        let text = std::fs::read_to_string(&txt).map_err(|e| io_error(&txt, e))?;
        let vocab = text
            .lines()
            .enumerate()
            .map(|(i, l)| (l.trim_end_matches('\r').to_string(), i as u32))
            .collect();
        Self::new(vocab, true, None, 100, "##")
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", txt.display())))
    }

    fn from_tokenizer_json(text: &str) -> std::result::Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let model = &v["model"];
        if model["type"] != "WordPiece" {
            return Err(format!(
                "only WordPiece (BERT) tokenizers are supported, this one is {}",
                model["type"]
            ));
        }
        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or("tokenizer.json has no model.vocab")?
            .iter()
            .filter_map(|(k, id)| id.as_u64().map(|id| (k.clone(), id as u32)))
            .collect();
        let norm = &v["normalizer"];
        if !norm.is_null() && norm["type"] != "BertNormalizer" {
            return Err(format!(
                "only the BertNormalizer is supported, this tokenizer has {}",
                norm["type"]
            ));
        }
        let lowercase = norm["lowercase"].as_bool().unwrap_or(true);
        let strip_accents = norm["strip_accents"].as_bool();
        let max = model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize;
        let prefix = model["continuing_subword_prefix"]
            .as_str()
            .unwrap_or("##")
            .to_string();
        Self::new(vocab, lowercase, strip_accents, max, &prefix)
    }

    fn new(
        vocab: HashMap<String, u32>,
        lowercase: bool,
        strip_accents: Option<bool>,
        max_chars_per_word: usize,
        prefix: &str,
    ) -> std::result::Result<Self, String> {
        let special = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {t} token"))
        };
        Ok(WordPiece {
            cls: special("[CLS]")?,
            sep: special("[SEP]")?,
            pad: special("[PAD]")?,
            unk: special("[UNK]")?,
            // As in BERT: accents are stripped when lower-casing unless said otherwise.
            strip_accents: strip_accents.unwrap_or(lowercase),
            lowercase,
            max_chars_per_word,
            prefix: prefix.to_string(),
            vocab,
        })
    }

    /// Token ids of `text`: `[CLS]`, at most `max_len - 2` pieces, `[SEP]`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        let room = max_len.saturating_sub(2);
        let normal = self.normalize(text);
        'words: for word in pre_tokenize(&normal) {
            for id in self.pieces(word) {
                if ids.len() > room {
                    break 'words;
                }
                ids.push(id);
            }
        }
        ids.push(self.sep);
        ids
    }

    fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || is_control(c) {
                continue;
            }
            if c.is_whitespace() {
                out.push(' ');
            } else if is_cjk(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        let out = if self.strip_accents {
            out.nfd()
                .filter(|c| get_general_category(*c) != GeneralCategory::NonspacingMark)
                .collect()
        } else {
            out
        };
        if self.lowercase {
            out.to_lowercase()
        } else {
            out
        }
    }

    fn pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_chars_per_word {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0; // index into chars
        let mut buf = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while end > start {
                let from = chars[start].0;
                let to = chars.get(end).map_or(word.len(), |c| c.0);
                buf.clear();
                if start > 0 {
                    buf.push_str(&self.prefix);
                }
                buf.push_str(&word[from..to]);
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => return vec![self.unk],
            }
            start = end;
        }
        out
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::InvalidInput(format!("cannot read {}: {e}", path.display()))
}

/// Splits on white space and isolates every punctuation character.
fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for chunk in text.split(char::is_whitespace) {
        let mut start = 0;
        for (i, c) in chunk.char_indices() {
            if is_punctuation(c) {
                if start < i {
                    out.push(&chunk[start..i]);
                }
                out.push(&chunk[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        if start < chunk.len() {
            out.push(&chunk[start..]);
        }
    }
    out
}

fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
    )
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            GeneralCategory::ConnectorPunctuation
                | GeneralCategory::DashPunctuation
                | GeneralCategory::OpenPunctuation
                | GeneralCategory::ClosePunctuation
                | GeneralCategory::InitialPunctuation
                | GeneralCategory::FinalPunctuation
                | GeneralCategory::OtherPunctuation
        )
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> WordPiece {
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", ",", "world",
            "!", "cafe", "中", "a",
        ];
        let vocab = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u32))
            .collect();
        WordPiece::new(vocab, true, None, 100, "##").unwrap()
    }

    #[test]
    fn splits_words_into_longest_pieces() {
        let t = toy();
        // [CLS] un ##aff ##able [SEP]
        assert_eq!(t.encode("unaffable", 64), vec![2, 4, 5, 6, 3]);
    }

    #[test]
    fn lowercases_strips_accents_and_isolates_punctuation() {
        let t = toy();
        assert_eq!(t.encode("Hello,WORLD!", 64), vec![2, 7, 8, 9, 10, 3]);
        assert_eq!(t.encode("Café", 64), vec![2, 11, 3]);
    }

    #[test]
    fn unknown_words_and_control_characters() {
        let t = toy();
        // "unx" cannot be split, so the whole word is [UNK]; the control character vanishes.
        assert_eq!(t.encode("unx\u{7}", 64), vec![2, 1, 3]);
        assert_eq!(t.encode("a中a", 64), vec![2, 13, 12, 13, 3]);
    }

    #[test]
    fn truncates_to_the_length_limit() {
        let t = toy();
        let ids = t.encode(&"hello ".repeat(50), 8);
        assert_eq!(ids.len(), 8);
        assert_eq!(ids[0], 2);
        assert_eq!(ids[7], 3);
    }
}
