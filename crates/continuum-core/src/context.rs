//! Assembly of the context block an agent puts in its prompt, within a token budget.
//!
//! The block keeps the original service's `[MEMORY CONTEXT]` framing, so prompts built for it
//! work unchanged:
//!
//! ```text
//! [MEMORY CONTEXT]
//! Concepts: Rust, SQLite
//! Relationships: rust <-> sqlite (0.30)
//! Memories (most relevant first):
//! - [2026-11-24 user] We use Rust with SQLite for the store.
//! [/MEMORY CONTEXT]
//! ```
//!
//! Token counts use [`crate::text::estimate_tokens`]. Memories are taken best first; one that does
//! not fit is skipped in favour of later, shorter ones, and when nothing else fits the first
//! omitted memory is cut short (marked with `…`) if enough budget remains to be useful.

use crate::ids::MemoryId;
use crate::memory::Memory;
use crate::text::{estimate_tokens, truncate_bytes};

pub const HEADER: &str = "[MEMORY CONTEXT]";
pub const FOOTER: &str = "[/MEMORY CONTEXT]";

/// The smallest leftover budget worth filling with a truncated memory.
const MIN_TRUNCATED_TOKENS: usize = 24;

/// A link to show: the two concept names and the link strength.
pub struct ShownLink<'a> {
    pub a: &'a str,
    pub b: &'a str,
    pub strength: f64,
}

/// The assembled block and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledContext {
    pub text: String,
    pub included: Vec<MemoryId>,
    pub tokens: usize,
}

/// Appends `v` with two decimals, as `format!("{v:.2}")` writes it. Recall shows a few
/// link strengths each time, and the general formatter takes its slow exact path for most of
/// them; here the hundredths come from `v × 100` rounded, unless that product lies so near a
/// half that its own rounding error could decide (or `v` is not a plain non-negative number),
/// when the formatter writes it.
fn push_hundredths(out: &mut String, v: f64) {
    use std::fmt::Write;
    let x = v * 100.0;
    if v.is_sign_negative() || !(0.0..1e15).contains(&x) || ((x - x.floor()) - 0.5).abs() < 1e-6 {
        let _ = write!(out, "{v:.2}");
        return;
    }
    let n = x.round() as u64;
    let _ = write!(out, "{}.", n / 100);
    let cents = (n % 100) as u8;
    out.push(char::from(b'0' + cents / 10));
    out.push(char::from(b'0' + cents % 10));
}

/// `- [YYYY-MM-DD source] text`, the text's runs of white space turned into single spaces.
fn memory_line(m: &Memory) -> String {
    use chrono::Datelike;
    use std::fmt::Write;
    let mut line = String::with_capacity(m.content.len() + 48);
    line.push_str("- [");
    match chrono::DateTime::from_timestamp_millis(m.created_at.0).map(|dt| dt.date_naive()) {
        Some(d) if (0..=9999).contains(&d.year()) => {
            let _ = write!(line, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
        }
        // Outside four-digit years: the first ten characters of the full timestamp.
        _ => {
            let date = m.created_at.to_rfc3339();
            line.push_str(date.get(..10).unwrap_or(&date));
        }
    }
    let _ = write!(line, " {}", m.source);
    if m.is_superseded() {
        line.push_str(" (superseded)");
    }
    line.push_str("] ");
    if is_single_spaced(&m.content) {
        line.push_str(&m.content);
        return line;
    }
    for (i, word) in m.content.split_whitespace().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

/// Whether `text` is already its words joined by single spaces, as most texts are: printable
/// ASCII only (any other byte may be, or belong to, white space: such texts take the general
/// path), no space at either end and no two in a row. Checked 32 bytes at a time without
/// branches, where splitting into words decodes characters and copies word by word.
fn is_single_spaced(text: &str) -> bool {
    let bytes = text.as_bytes();
    let printable = bytes.chunks(32).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(b' ') < 0x5f))
    });
    printable && bytes.first() != Some(&b' ') && bytes.last() != Some(&b' ') && !text.contains("  ")
}

/// Builds the block from memories sorted best first, within `budget_tokens`.
pub fn assemble(
    memories: &[&Memory],
    concepts: &[&str],
    links: &[ShownLink<'_>],
    budget_tokens: usize,
) -> AssembledContext {
    let empty = AssembledContext {
        text: String::new(),
        included: Vec::new(),
        tokens: 0,
    };
    if memories.is_empty() && concepts.is_empty() {
        return empty;
    }
    let frame = format!("{HEADER}\n{FOOTER}");
    let mut used = estimate_tokens(&frame);
    if used > budget_tokens {
        return empty;
    }
    let mut body: Vec<String> = Vec::new();
    let try_push = |line: String, used: &mut usize, body: &mut Vec<String>| -> bool {
        let cost = estimate_tokens(&line);
        if *used + cost <= budget_tokens {
            *used += cost;
            body.push(line);
            true
        } else {
            false
        }
    };
    if !concepts.is_empty() {
        try_push(
            format!("Concepts: {}", concepts.join(", ")),
            &mut used,
            &mut body,
        );
    }
    if !links.is_empty() {
        let shown: Vec<String> = links
            .iter()
            .map(|l| {
                let mut line = String::with_capacity(l.a.len() + l.b.len() + 14);
                line.push_str(l.a);
                line.push_str(" <-> ");
                line.push_str(l.b);
                line.push_str(" (");
                push_hundredths(&mut line, l.strength);
                line.push(')');
                line
            })
            .collect();
        try_push(
            format!("Relationships: {}", shown.join("; ")),
            &mut used,
            &mut body,
        );
    }
    let mut included = Vec::new();
    if !memories.is_empty() {
        let heading = "Memories (most relevant first):".to_string();
        if try_push(heading, &mut used, &mut body) {
            let mut first_skipped: Option<String> = None;
            for m in memories {
                let line = memory_line(m);
                let cost = estimate_tokens(&line);
                if used + cost <= budget_tokens {
                    used += cost;
                    body.push(line);
                    included.push(m.id);
                } else if first_skipped.is_none() {
                    first_skipped = Some(line);
                    included.push(m.id);
                }
            }
            // Fill what is left with the best memory that did not fit, cut short.
            if let Some(line) = first_skipped {
                let left = budget_tokens.saturating_sub(used);
                let id = included.pop();
                if left >= MIN_TRUNCATED_TOKENS {
                    let max_bytes = (left - 2) * 4 - 4;
                    let cut = format!("{}…", truncate_bytes(&line, max_bytes));
                    if try_push(cut, &mut used, &mut body) {
                        included.extend(id);
                    }
                }
            }
        }
    }
    let text = format!("{HEADER}\n{}\n{FOOTER}", body.join("\n"));
    let tokens = estimate_tokens(&text);
    AssembledContext {
        text,
        included,
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Source, content_hash};
    use crate::time::Timestamp;

    fn mem(text: &str, at: i64) -> Memory {
        Memory {
            id: MemoryId::new_at(at),
            session: None,
            source: Source::User,
            kind: "message".into(),
            content: text.into(),
            metadata: Default::default(),
            created_at: Timestamp(at),
            content_hash: content_hash(text),
            valid_until: None,
            superseded_by: None,
        }
    }

    #[test]
    fn memory_lines_show_the_day_source_and_text_on_one_line() {
        // The line as the first version of the block wrote it: the first ten characters of the
        // RFC 3339 timestamp, and the text's words joined by single spaces.
        let reference = |m: &Memory| {
            let date = m.created_at.to_rfc3339();
            let day = date.get(..10).unwrap_or(&date).to_string();
            let content = m.content.split_whitespace().collect::<Vec<_>>().join(" ");
            let superseded = if m.is_superseded() {
                " (superseded)"
            } else {
                ""
            };
            format!("- [{day} {}{superseded}] {content}", m.source)
        };
        let text = "  Moved the\tbilling service\n\nto Kafka  ";
        for at in [
            0,
            -1,
            1_700_000_000_000,
            86_399_999,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000, // year 10000
            -62_167_219_200_001, // just before year 0
            i64::MAX,
            i64::MIN,
        ] {
            let mut m = mem(text, at);
            assert_eq!(memory_line(&m), reference(&m), "at {at}");
            m.superseded_by = Some(MemoryId::new_at(1));
            m.source = crate::memory::Source::Assistant;
            assert_eq!(memory_line(&m), reference(&m), "at {at}");
        }
        assert_eq!(
            memory_line(&mem(text, 1_700_000_000_000)),
            "- [2023-11-14 user] Moved the billing service to Kafka"
        );
    }

    #[test]
    fn plain_sentences_are_copied_and_the_rest_rejoined() {
        assert!(is_single_spaced("We moved billing to Kafka (in May)."));
        assert!(is_single_spaced(""));
        for text in [
            " lead",
            "trail ",
            "two  spaces",
            "tab\there",
            "é",
            "line\nbreak",
        ] {
            assert!(!is_single_spaced(text), "{text:?}");
        }
    }

    #[test]
    fn hundredths_are_written_as_the_formatter_writes_them() {
        let mut awkward = vec![
            0.0,
            -0.0,
            0.005,
            0.015,
            0.125,
            0.375,
            0.995,
            1.005,
            2.675,
            99.995,
            1e-300,
            0.3,
            0.7,
            1.0,
            12.345,
            1e14,
            1e16,
            f64::NAN,
            f64::INFINITY,
            -1.25,
        ];
        // Every hundredth and the halves between them, and their floating-point neighbours.
        for i in 0..2000u32 {
            let v = f64::from(i) / 200.0;
            awkward.extend([
                v,
                f64::from_bits(v.to_bits() + 1),
                f64::from_bits(v.to_bits().saturating_sub(1)),
            ]);
        }
        for v in awkward {
            let mut out = String::new();
            super::push_hundredths(&mut out, v);
            assert_eq!(out, format!("{v:.2}"), "{v:e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_hundredths_are_written_as_the_formatter_writes_them(v in 0.0f64..1000.0) {
            let mut out = String::new();
            super::push_hundredths(&mut out, v);
            proptest::prop_assert_eq!(out, format!("{v:.2}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn memory_lines_join_the_words_of_any_text_with_single_spaces(
            text in "([a-zA-Z.,'!?~-]{1,8}|[ ]{1,3}|[\t\n\r\x0b\x0c\x01\x7f]|\u{a0}|\u{2003}|\u{3000}|é|…){0,40}",
        ) {
            let m = mem(&text, 1_700_000_000_000);
            let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
            proptest::prop_assert_eq!(memory_line(&m), format!("- [2023-11-14 user] {words}"));
            // Printable ASCII already single-spaced takes the copying path; the rest, the words'.
            let printable = text.bytes().all(|b| (b' '..=b'~').contains(&b));
            proptest::prop_assert_eq!(is_single_spaced(&text), printable && text == words);
        }
    }

    #[test]
    fn block_is_framed_and_lists_memories_best_first() {
        let a = mem("We use Rust for the server.", 1_700_000_000_000);
        let b = mem("SQLite holds the data.", 1_700_000_000_000);
        let ctx = assemble(
            &[&a, &b],
            &["Rust", "SQLite"],
            &[ShownLink {
                a: "rust",
                b: "sqlite",
                strength: 0.3,
            }],
            1000,
        );
        assert!(
            ctx.text
                .starts_with("[MEMORY CONTEXT]\nConcepts: Rust, SQLite\n")
        );
        assert!(ctx.text.contains("Relationships: rust <-> sqlite (0.30)"));
        assert!(ctx.text.ends_with("[/MEMORY CONTEXT]"));
        let pa = ctx.text.find("Rust for the server").unwrap();
        let pb = ctx.text.find("SQLite holds").unwrap();
        assert!(pa < pb);
        assert_eq!(ctx.included, vec![a.id, b.id]);
    }

    #[test]
    fn nothing_to_say_gives_an_empty_block() {
        assert_eq!(assemble(&[], &[], &[], 100).text, "");
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        let long = mem(&"word ".repeat(400), 0);
        let short = mem("short fact", 0);
        for budget in [5, 20, 40, 60, 100, 300, 1000] {
            let ctx = assemble(&[&long, &short], &["Concept"], &[], budget);
            assert!(ctx.tokens <= budget, "budget {budget}: used {}", ctx.tokens);
        }
        let ctx = assemble(&[&long, &short], &[], &[], 60);
        assert!(ctx.included.contains(&short.id));
        assert!(
            ctx.text.contains('…'),
            "long memory cut short: {}",
            ctx.text
        );
    }
}
