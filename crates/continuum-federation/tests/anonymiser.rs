//! The anonymiser against generated personal data (property tests: nothing generated gets
//! through) and against a corpus of sentences written for this project (what it keeps).

use continuum_federation::anonymise::{Anonymiser, Verdict};
use proptest::prelude::*;

fn anonymiser() -> Anonymiser {
    Anonymiser::new(["acme-corp".to_string(), "sess-7781-blue".to_string()])
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The generated value must not come out: neither as written nor, for numbers, as its digits.
fn assert_gone(sentence: &str, value: &str) -> Result<(), TestCaseError> {
    let v = anonymiser().clean(sentence);
    if let Some(out) = v.shareable() {
        prop_assert!(!out.contains(value), "{sentence:?} -> {out:?}");
        let d = digits(value);
        if d.len() >= 7 {
            prop_assert!(!digits(out).contains(&d), "{sentence:?} -> {out:?}");
        }
    }
    Ok(())
}

const TEMPLATES: &[&str] = &[
    "Please contact {} today about the invoice.",
    "{} was in the log file again.",
    "I noted {}, then moved on to the next ticket.",
    "The value ({}) came from the signup form.",
    "Send it to {}",
];

fn sentence() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(TEMPLATES.to_vec())
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9._+-]{0,12}[a-z0-9]",
        "[a-z][a-z0-9-]{1,10}",
        proptest::sample::select(vec!["com", "org", "io", "de", "co.uk", "example"]),
    )
        .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
}

fn phone() -> impl Strategy<Value = String> {
    (
        proptest::option::of(1u16..999),
        proptest::collection::vec(10u16..9999, 2..4),
        proptest::sample::select(vec![" ", "-", ".", ""]),
        any::<bool>(),
    )
        .prop_filter_map("7 to 15 digits", |(cc, groups, sep, paren)| {
            let mut parts: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            if paren {
                parts[0] = format!("({})", parts[0]);
            }
            let mut s = parts.join(sep);
            if let Some(cc) = cc {
                s = format!("+{cc} {s}");
            }
            let n = digits(&s).len();
            (7..=15).contains(&n).then_some(s)
        })
}

fn card() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(0u8..10, 15),
        proptest::sample::select(vec![" ", "-", ""]),
    )
        .prop_map(|(mut d, sep)| {
            d[0] = d[0].max(3);
            // The check digit that makes the Luhn sum a multiple of 10.
            let sum: u32 = d
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &x)| {
                    let x = u32::from(x);
                    if i % 2 == 0 {
                        let y = x * 2;
                        if y > 9 { y - 9 } else { y }
                    } else {
                        x
                    }
                })
                .sum();
            d.push(((10 - sum % 10) % 10) as u8);
            let s: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            s.as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(sep)
        })
}

fn key() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec![
            "ck_", "sk_live_", "sk-", "ghp_", "xoxb-", "whsec_", "glpat-", "",
        ]),
        "[A-Za-z]{4}[0-9]{2}[A-Za-z0-9]{18,34}",
    )
        .prop_map(|(p, body)| format!("{p}{body}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_generated_email_gets_through(t in sentence(), e in email()) {
        assert_gone(&t.replace("{}", &e), &e)?;
    }

    #[test]
    fn no_generated_phone_number_gets_through(t in sentence(), p in phone()) {
        assert_gone(&t.replace("{}", &p), &p)?;
    }

    #[test]
    fn no_generated_ip_address_gets_through(t in sentence(), v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), six in any::<bool>()) {
        let ip = if six {
            std::net::Ipv6Addr::from(v6).to_string()
        } else {
            std::net::Ipv4Addr::from(v4).to_string()
        };
        assert_gone(&t.replace("{}", &ip), &ip)?;
    }

    #[test]
    fn no_generated_card_number_gets_through(t in sentence(), c in card()) {
        assert_gone(&t.replace("{}", &c), &c)?;
    }

    #[test]
    fn no_generated_key_gets_through(t in sentence(), k in key()) {
        assert_gone(&t.replace("{}", &k), &k)?;
    }
}

#[test]
fn the_corpus_keeps_clean_sentences_and_loses_every_marked_span() {
    let corpus = include_str!("fixtures/anonymiser-corpus.txt");
    let a = anonymiser();
    let (mut clean, mut kept, mut personal, mut shared) = (0, 0, 0, 0);
    let mut changed = Vec::new();
    for line in corpus.lines() {
        if let Some(s) = line.strip_prefix("keep: ") {
            clean += 1;
            match a.clean(s) {
                Verdict::Kept(t) if t == s => kept += 1,
                other => changed.push(format!("{s:?} -> {other:?}")),
            }
        } else if let Some(s) = line.strip_prefix("pii: ") {
            personal += 1;
            let plain = s.replace(['⟦', '⟧'], "");
            let spans: Vec<&str> = s
                .split('⟦')
                .skip(1)
                .filter_map(|p| p.split('⟧').next())
                .collect();
            assert!(!spans.is_empty(), "{line}");
            let v = a.clean(&plain);
            if let Some(out) = v.shareable() {
                shared += 1;
                for span in spans {
                    assert!(
                        !out.contains(span),
                        "{plain:?} -> {out:?} still holds {span:?}"
                    );
                    // Nor any long piece of it (a surname, the digits of a number).
                    for piece in span.split([' ', '-', '.', ':']) {
                        if piece.len() >= 5 && !["Street", "Bearer"].contains(&piece) {
                            assert!(!out.contains(piece), "{plain:?} -> {out:?} holds {piece:?}");
                        }
                    }
                }
            }
        }
    }
    let share = kept as f64 / clean as f64;
    println!(
        "corpus: {kept} of {clean} clean sentences kept unchanged ({:.1}%); \
         {shared} of {personal} personal ones shared once cleaned, the rest refused",
        share * 100.0
    );
    for c in &changed {
        println!("changed: {c}");
    }
    assert!(
        share >= 0.9,
        "only {kept} of {clean} clean sentences were kept"
    );
    assert!(clean >= 50 && personal >= 25);
}
