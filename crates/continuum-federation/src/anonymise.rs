//! The anonymiser: what text may leave a node for the federation's pool.
//!
//! Conservative by design: it replaces what it recognises with a placeholder (`[email]`,
//! `[phone]`, `[ip]`, `[url]`, `[secret]`, `[card]`, `[iban]`, `[id]`, `[person]`,
//! `[address]`), and refuses the whole snippet when something it cannot clean is left (an
//! `@` between words, a long run of digits, too little left to be worth sharing). Recognisers:
//!
//! - secrets: known key prefixes (Continuum `ck_`, Stripe, GitHub, Slack, AWS, Google, GitLab,
//!   webhook secrets, JWTs, `Bearer`/`Basic` credentials), PEM blocks (refused), and any token
//!   of 20+ characters that mixes letters and digits or is long hex/base64;
//! - URLs: kept as `scheme://host` only; with credentials, a query, a fragment or an IP host,
//!   replaced whole;
//! - e-mail addresses; IPv4 and IPv6 addresses (parsed, not guessed) and MAC addresses;
//! - card numbers (13–19 digits passing Luhn), IBANs (by shape), phone numbers and any other
//!   run of 7 or more digits (ISO dates are kept);
//! - identifiers the node knows (its tenant and session ids) and UUIDs;
//! - personal names: after an honorific, after "my name is" / "I'm" / "call me", after a
//!   relation ("my wife", "our manager"), a known first name with its surname, and two
//!   capitalised words in a row that are not known vocabulary;
//! - postal addresses: house number + street words + a street type, street names ending in
//!   -straße/-weg/…, PO boxes, UK postcodes, US state + ZIP.
//!
//! There is no named-entity model here (nothing can be downloaded), so a name that looks like
//! an ordinary word ("Will", "Ruby") can pass; the cost of caution is paid in what is kept:
//! see the crate's corpus test for the share of clean sentences kept unchanged.

use regex::{Captures, Regex};
use std::collections::HashSet;
use std::sync::LazyLock;

/// The longest snippet considered (longer ones are refused, not cut).
pub const MAX_SNIPPET_BYTES: usize = 2048;
/// Fewer real words than this left after cleaning: not worth sharing, refused.
pub const MIN_WORDS_LEFT: usize = 3;

/// What was found and replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Found {
    Secret,
    Url,
    Email,
    Ip,
    Card,
    Iban,
    Phone,
    Identifier,
    Person,
    Address,
}

impl Found {
    fn placeholder(self) -> &'static str {
        match self {
            Found::Secret => "[secret]",
            Found::Url => "[url]",
            Found::Email => "[email]",
            Found::Ip => "[ip]",
            Found::Card => "[card]",
            Found::Iban => "[iban]",
            Found::Phone => "[phone]",
            Found::Identifier => "[id]",
            Found::Person => "[person]",
            Found::Address => "[address]",
        }
    }
}

/// The anonymiser's verdict on one snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found: the text as given (whitespace normalised).
    Kept(String),
    /// Shareable after these replacements.
    Cleaned { text: String, found: Vec<Found> },
    /// Not to be shared, and why (never quoting the text).
    Refused(String),
}

impl Verdict {
    /// The text that may be shared, if any.
    pub fn shareable(&self) -> Option<&str> {
        match self {
            Verdict::Kept(t) | Verdict::Cleaned { text: t, .. } => Some(t),
            Verdict::Refused(_) => None,
        }
    }
}

/// The filter, with the identifiers of this node it must also remove.
#[derive(Debug, Clone, Default)]
pub struct Anonymiser {
    known_ids: Vec<String>,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a built-in pattern")
}

static PEM: LazyLock<Regex> = LazyLock::new(|| re(r"-----BEGIN [A-Z ]+-----"));
static KEYS: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"\b(?:ck_[A-Za-z0-9_]{8,}",
        r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}",
        r"|sk-[A-Za-z0-9_-]{16,}",
        r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,}",
        r"|xox[abprs]-[A-Za-z0-9-]{10,}",
        r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
        r"|AIza[0-9A-Za-z_-]{30,}",
        r"|glpat-[A-Za-z0-9_-]{16,}",
        r"|whsec_[A-Za-z0-9+/=]{16,}",
        r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,})",
        r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
        r"|(?i:\bbasic\s+)[A-Za-z0-9+/]*\d[A-Za-z0-9+/]*={0,2}",
        r"|(?i:\b(?:token|password|passwd|pwd|secret|api[_ -]?key)\s*[:=]\s*)[^\s,;]{4,}",
    ))
});
static URL: LazyLock<Regex> =
    LazyLock::new(|| re(r#"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s<>"'`]+"#));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b"));
static MAC: LazyLock<Regex> = LazyLock::new(|| re(r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b"));
static UUID: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"));
/// A run of digits with the separators phone and card numbers use.
static DIGITS: LazyLock<Regex> = LazyLock::new(|| re(r"\+?\(?\d(?:[\d().-]|[ ](?:\(?\d))*\d\)?"));
static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"));
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'-]+\s+){1,3}",
        r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl",
        r"|Square|Sq|Terrace|Close|Crescent|Parkway|Highway|Hwy|Row|Gardens|Hill)\b\.?",
        r"|\b\p{Lu}\p{Ll}+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)\s+\d+[a-z]?\b",
        r"|(?i:\bP\.?\s?O\.?\s?Box\s*\d+)",
        r"|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b",
        r"|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b",
    ))
});
const NAME: &str = r"\p{Lu}[\p{Ll}'’-]+(?:[ ]\p{Lu}[\p{Ll}'’-]+)?";
static HONORIFIC: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Madam|Herr|Frau|Mme|Mlle)\.?[ ]+{NAME}"
    ))
});
static INTRODUCED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i:\b(?:my name is|my name's|i am|i'm|call me|this is|named|called|ask|tell|meet|with|from|by|to|and|cc)\b[ ]+)({NAME})"
    ))
});
static RELATION: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        concat!(
            r"(?i:\b(?:my|our|his|her|their|your)[ ]+(?:wife|husband|partner|son|daughter|mother|mom|mum",
            r"|father|dad|brother|sister|friend|boss|manager|colleague|coworker|co-worker|neighbou?r",
            r"|doctor|dentist|lawyer|teacher|child|kid|girlfriend|boyfriend|fianc[eé]e?|cousin|aunt",
            r"|uncle|grandmother|grandfather|grandma|grandpa|landlord|therapist|client|assistant)",
            r"(?:[ ]+is)?[ ]*,?[ ]+)({})"
        ),
        NAME
    ))
});
static CAPITALISED_PAIR: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\p{Lu}[\p{Ll}'’-]+)[ ]+(\p{Lu}[\p{Ll}'’-]+)\b"));
static CAPITALISED: LazyLock<Regex> = LazyLock::new(|| re(r"\b\p{Lu}[\p{Ll}'’-]+\b"));
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| re(r"\[(?:secret|url|email|ip|card|iban|phone|id|person|address)\]"));

/// Common first names: a capitalised one, with a capitalised word after it, is a person.
/// Names that are also ordinary words or technologies (Will, May, Mark, Ruby, Julia, Rust…)
/// are left out on purpose.
const FIRST_NAMES: &[&str] = &[
    "aaron",
    "adam",
    "adrian",
    "aisha",
    "alan",
    "albert",
    "alex",
    "alexander",
    "alice",
    "alicia",
    "amanda",
    "amy",
    "ana",
    "andrea",
    "andrew",
    "angela",
    "anna",
    "anne",
    "anthony",
    "antonio",
    "arjun",
    "barbara",
    "ben",
    "benjamin",
    "beth",
    "brian",
    "carla",
    "carlos",
    "carol",
    "catherine",
    "charles",
    "charlotte",
    "chen",
    "chris",
    "christina",
    "christopher",
    "claire",
    "daniel",
    "david",
    "deborah",
    "diana",
    "diego",
    "dmitri",
    "donald",
    "dorothy",
    "edward",
    "elena",
    "elizabeth",
    "emily",
    "emma",
    "eric",
    "eva",
    "fatima",
    "fernando",
    "francesca",
    "gabriel",
    "george",
    "giulia",
    "hannah",
    "hans",
    "helen",
    "henry",
    "hiroshi",
    "ian",
    "igor",
    "isabella",
    "ivan",
    "jacob",
    "james",
    "jane",
    "jason",
    "jennifer",
    "jessica",
    "joanna",
    "john",
    "jonathan",
    "jose",
    "joseph",
    "joshua",
    "juan",
    "karen",
    "katarzyna",
    "kate",
    "katherine",
    "kenji",
    "kevin",
    "klaus",
    "laura",
    "lauren",
    "linda",
    "lisa",
    "lucas",
    "lucia",
    "luis",
    "maria",
    "marie",
    "marta",
    "martin",
    "mary",
    "matthew",
    "mei",
    "michael",
    "michelle",
    "miguel",
    "mohammed",
    "muhammad",
    "nancy",
    "natalia",
    "nicole",
    "noah",
    "olga",
    "oliver",
    "olivia",
    "omar",
    "pablo",
    "patricia",
    "paul",
    "pedro",
    "peter",
    "piotr",
    "priya",
    "rachel",
    "rahul",
    "rebecca",
    "richard",
    "robert",
    "sam",
    "samuel",
    "sandra",
    "sara",
    "sarah",
    "sebastian",
    "sergei",
    "sofia",
    "sophie",
    "stefan",
    "stephanie",
    "steven",
    "susan",
    "thomas",
    "timothy",
    "tom",
    "wei",
    "william",
    "yuki",
    "zoe",
];

/// Capitalised words that are vocabulary, not names: sentence openers, days and months,
/// technologies, companies and places commonly named in technical notes.
const VOCABULARY: &[&str] = &[
    "a",
    "about",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "before",
    "both",
    "but",
    "by",
    "can",
    "could",
    "do",
    "does",
    "each",
    "every",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "here",
    "his",
    "how",
    "i",
    "if",
    "in",
    "is",
    "it",
    "its",
    "just",
    "last",
    "let",
    "many",
    "may",
    "more",
    "most",
    "my",
    "never",
    "new",
    "next",
    "no",
    "not",
    "now",
    "of",
    "on",
    "once",
    "one",
    "only",
    "or",
    "our",
    "she",
    "should",
    "since",
    "so",
    "some",
    "still",
    "than",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "today",
    "tomorrow",
    "two",
    "use",
    "using",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "yesterday",
    "you",
    "your",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "api",
    "aws",
    "amazon",
    "apache",
    "apple",
    "azure",
    "bash",
    "cargo",
    "chrome",
    "chromium",
    "cloud",
    "cloudflare",
    "compose",
    "debian",
    "docker",
    "elastic",
    "firefox",
    "git",
    "github",
    "gitlab",
    "go",
    "google",
    "grafana",
    "graphql",
    "http",
    "java",
    "javascript",
    "jenkins",
    "json",
    "kafka",
    "kubernetes",
    "linux",
    "mac",
    "macos",
    "microsoft",
    "mongo",
    "mongodb",
    "mysql",
    "nginx",
    "node",
    "npm",
    "openai",
    "oracle",
    "postgres",
    "postgresql",
    "prometheus",
    "python",
    "rabbitmq",
    "react",
    "redis",
    "rust",
    "server",
    "services",
    "slack",
    "sql",
    "sqlite",
    "studio",
    "terraform",
    "typescript",
    "ubuntu",
    "visual",
    "vue",
    "web",
    "windows",
    "world",
    "europe",
    "america",
    "asia",
    "africa",
    "london",
    "paris",
    "berlin",
    "york",
    "tokyo",
    "california",
    "german",
    "english",
    "french",
    "spanish",
    "chinese",
    "japanese",
    "ui",
    "ux",
    "ci",
    "cd",
    "tls",
    "ssh",
    "dns",
    "vpn",
    "sdk",
    "cli",
    "llm",
    "gpu",
    "cpu",
    "ram",
    "ssd",
    "url",
    "rest",
    "grpc",
    "webhook",
    "webhooks",
    "stripe",
    "lambda",
    "engine",
    "database",
    "team",
    "project",
    "release",
    "version",
    "note",
    "please",
    "thanks",
    "hello",
    "hi",
    "ok",
    "okay",
    "sure",
    "great",
    "good",
    "bad",
    "north",
    "south",
    "east",
    "west",
    "street",
    "road",
    "university",
    "college",
    "school",
    "hospital",
    "bank",
    "office",
    "river",
    "lake",
    "mount",
    "park",
];

static FIRST: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FIRST_NAMES.iter().copied().collect());
static WORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| VOCABULARY.iter().copied().collect());

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a token (punctuation around it stripped) looks like a key or token.
fn secret_like(t: &str) -> bool {
    if t.len() < 20 || PLACEHOLDER.is_match(t) {
        return false;
    }
    let hex = t.len() >= 24 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let b64 = t.len() >= 24
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    let digits = t.bytes().any(|b| b.is_ascii_digit());
    let letters = t.bytes().any(|b| b.is_ascii_alphabetic());
    hex || (b64 && digits && letters) || (digits && letters && entropy(t) >= 3.5)
}

fn trim_token(t: &str) -> &str {
    t.trim_matches(|c: char| {
        matches!(
            c,
            ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '(' | ')' | '<' | '>' | '`'
        ) || c == '.'
    })
}

impl Anonymiser {
    /// A filter that also removes these identifiers (tenant ids, session ids), matched whole
    /// and case-insensitively; ids shorter than 3 characters are ignored.
    pub fn new(known_ids: impl IntoIterator<Item = String>) -> Anonymiser {
        let mut known_ids: Vec<String> = known_ids
            .into_iter()
            .filter(|s| s.chars().count() >= 3)
            .map(|s| s.to_lowercase())
            .collect();
        // Longest first, so an id that contains another is removed whole.
        known_ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
        known_ids.dedup();
        Anonymiser { known_ids }
    }

    /// Cleans one snippet, or refuses it.
    pub fn clean(&self, text: &str) -> Verdict {
        if text.len() > MAX_SNIPPET_BYTES {
            return Verdict::Refused(format!("longer than {MAX_SNIPPET_BYTES} bytes"));
        }
        if PEM.is_match(text) {
            return Verdict::Refused("holds a PEM key or certificate block".into());
        }
        let original = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut found = Vec::new();
        let mut t = original.clone();
        let put = |t: &mut String, re: &Regex, kind: Found, found: &mut Vec<Found>| {
            if re.is_match(t) {
                found.push(kind);
                *t = re.replace_all(t, kind.placeholder()).into_owned();
            }
        };
        put(&mut t, &KEYS, Found::Secret, &mut found);
        // URLs: the host alone, or nothing when the URL carries more than a place.
        if URL.is_match(&t) {
            t = URL
                .replace_all(&t, |c: &Captures| {
                    let u = &c[0];
                    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
                    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
                        if p.bytes().all(|b| b.is_ascii_digit()) {
                            h
                        } else {
                            authority
                        }
                    });
                    let risky = authority.contains('@')
                        || rest.contains('?')
                        || rest.contains('#')
                        || host.parse::<std::net::IpAddr>().is_ok()
                        || host
                            .trim_matches(['[', ']'])
                            .parse::<std::net::Ipv6Addr>()
                            .is_ok()
                        || host.is_empty();
                    if risky {
                        found.push(Found::Url);
                        "[url]".to_string()
                    } else {
                        if rest.len() > authority.len() + 1 {
                            found.push(Found::Url);
                        }
                        format!("{scheme}://{host}")
                    }
                })
                .into_owned();
        }
        put(&mut t, &EMAIL, Found::Email, &mut found);
        put(&mut t, &UUID, Found::Identifier, &mut found);
        put(&mut t, &MAC, Found::Ip, &mut found);
        // IP addresses, token by token (parsed, so times and versions are not mistaken).
        t = self.tokens(&t, &mut found);
        put(&mut t, &IBAN, Found::Iban, &mut found);
        put(&mut t, &ADDRESS, Found::Address, &mut found);
        if DIGITS.is_match(&t) {
            t = DIGITS
                .replace_all(&t, |c: &Captures| {
                    let run = &c[0];
                    let digits: Vec<u8> = run
                        .bytes()
                        .filter(u8::is_ascii_digit)
                        .map(|b| b - b'0')
                        .collect();
                    if digits.len() < 7 || ISO_DATE.is_match(run) {
                        return run.to_string();
                    }
                    if (13..=19).contains(&digits.len()) && luhn(&digits) {
                        found.push(Found::Card);
                        "[card]".to_string()
                    } else {
                        found.push(Found::Phone);
                        "[phone]".to_string()
                    }
                })
                .into_owned();
        }
        t = self.ids(&t, &mut found);
        t = names(&t, &mut found);

        // The safety net: what is left must hold nothing that looks personal.
        if let Some(why) = leftover(&t) {
            return Verdict::Refused(why.into());
        }
        let words = PLACEHOLDER
            .replace_all(&t, " ")
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        if found.is_empty() {
            return Verdict::Kept(original);
        }
        if words < MIN_WORDS_LEFT {
            return Verdict::Refused("too little is left once cleaned".into());
        }
        found.sort();
        found.dedup();
        Verdict::Cleaned { text: t, found }
    }

    /// Token-level checks: IP addresses and key-shaped tokens.
    fn tokens(&self, t: &str, found: &mut Vec<Found>) -> String {
        let mut out = Vec::new();
        for raw in t.split(' ') {
            let tok = trim_token(raw);
            let bare = tok.trim_start_matches('[').trim_end_matches(']');
            let bare = bare.split('%').next().unwrap_or(bare);
            let ip = bare.parse::<std::net::IpAddr>().is_ok()
                || bare.rsplit_once(':').is_some_and(|(h, p)| {
                    p.parse::<u16>().is_ok()
                        && h.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok()
                });
            if !tok.is_empty() && ip {
                found.push(Found::Ip);
                out.push(raw.replace(tok, "[ip]"));
            } else if secret_like(tok) {
                found.push(Found::Secret);
                out.push(raw.replace(tok, "[secret]"));
            } else {
                out.push(raw.to_string());
            }
        }
        out.join(" ")
    }

    /// The node's own identifiers, matched whole (not inside a longer word) and ignoring case.
    fn ids(&self, t: &str, found: &mut Vec<Found>) -> String {
        let mut t = t.to_string();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        for id in &self.known_ids {
            let mut out = String::with_capacity(t.len());
            let lower = t.to_lowercase();
            // Lowercasing can change lengths outside ASCII: match on the original only when
            // it kept them.
            if lower.len() != t.len() {
                continue;
            }
            let mut at = 0;
            while let Some(i) = lower[at..].find(id.as_str()).map(|i| i + at) {
                let end = i + id.len();
                if !word(t[..i].chars().next_back()) && !word(t[end..].chars().next()) {
                    out.push_str(&t[at..i]);
                    out.push_str("[id]");
                    found.push(Found::Identifier);
                } else {
                    out.push_str(&t[at..end]);
                }
                at = end;
            }
            out.push_str(&t[at..]);
            t = out;
        }
        t
    }
}

/// Personal names, by the context they appear in.
fn names(t: &str, found: &mut Vec<Found>) -> String {
    let mut t = t.to_string();
    if HONORIFIC.is_match(&t) {
        found.push(Found::Person);
        t = HONORIFIC.replace_all(&t, "[person]").into_owned();
    }
    for r in [&*INTRODUCED, &*RELATION] {
        let mut hit = false;
        t = r
            .replace_all(&t, |c: &Captures| {
                let whole = &c[0];
                let name = c.get(1).map_or("", |m| m.as_str());
                // Vocabulary after "with", "to", "from"… is not a name ("with Redis").
                let first = name.split(' ').next().unwrap_or("").to_lowercase();
                if WORDS.contains(first.as_str()) && !FIRST.contains(first.as_str()) {
                    return whole.to_string();
                }
                hit = true;
                whole.replacen(name, "[person]", 1)
            })
            .into_owned();
        if hit {
            found.push(Found::Person);
        }
    }
    // Two capitalised words in a row, neither of them vocabulary; or a known first name.
    let mut hit = false;
    t = CAPITALISED_PAIR
        .replace_all(&t, |c: &Captures| {
            let (a, b) = (c[1].to_lowercase(), c[2].to_lowercase());
            let known = |w: &str| WORDS.contains(w) && !FIRST.contains(w);
            if FIRST.contains(a.as_str()) || (!known(&a) && !known(&b)) {
                hit = true;
                "[person]".to_string()
            } else {
                c[0].to_string()
            }
        })
        .into_owned();
    t = CAPITALISED
        .replace_all(&t, |c: &Captures| {
            if FIRST.contains(c[0].to_lowercase().as_str()) {
                hit = true;
                "[person]".to_string()
            } else {
                c[0].to_string()
            }
        })
        .into_owned();
    if hit {
        found.push(Found::Person);
    }
    t
}

/// Something personal the recognisers did not clean, if any.
fn leftover(t: &str) -> Option<&'static str> {
    let b = t.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'@'
            && i > 0
            && b[i - 1].is_ascii_alphanumeric()
            && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            return Some("holds an address-like '@' that could not be cleaned");
        }
    }
    let long = DIGITS.find_iter(t).any(|m| {
        let run = m.as_str();
        run.bytes().filter(u8::is_ascii_digit).count() >= 7 && !ISO_DATE.is_match(run)
    });
    long.then_some("holds a long number that could not be cleaned")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        match Anonymiser::new(["acme-corp".to_string(), "sess-42x".to_string()]).clean(s) {
            Verdict::Kept(t) => t,
            Verdict::Cleaned { text, .. } => text,
            Verdict::Refused(why) => format!("REFUSED: {why}"),
        }
    }

    #[test]
    fn each_kind_is_replaced() {
        let cases = [
            (
                "Write to jane.doe+work@example.co.uk about the outage",
                "[email]",
            ),
            ("The server at 192.168.10.24 keeps timing out", "[ip]"),
            (
                "Its IPv6 address fe80::1ff:fe23:4567:890a answers pings",
                "[ip]",
            ),
            ("The card 4111 1111 1111 1111 was declined twice", "[card]"),
            ("Call the office on +44 20 7946 0958 after lunch", "[phone]"),
            ("Pay to DE89 3704 0044 0532 0130 00 before Friday", "[iban]"),
            (
                "The key sk_live_4eC39HqLyjWDarjtT1zdp7dc leaked in the logs",
                "[secret]",
            ),
            (
                "Use token ghp_16C7e42F292c6912E7710c838347Ae178B4a for the build",
                "[secret]",
            ),
            (
                "The session secret aZ7q9Lm2Xv8Rt4Wp6Ks1Nd3B was rotated",
                "[secret]",
            ),
            (
                "She lives at 221B Baker Street with a detective",
                "[address]",
            ),
            ("The tenant acme-corp owns the largest index", "[id]"),
            ("My colleague Anna Kowalski fixed the deadlock", "[person]"),
            ("Ask Dr. Watson about the migration plan", "[person]"),
            ("My name is Priya and I maintain the parser", "[person]"),
        ];
        for (input, placeholder) in cases {
            let out = clean(input);
            assert!(out.contains(placeholder), "{input} -> {out}");
        }
    }

    #[test]
    fn urls_keep_their_host_only() {
        assert_eq!(
            clean("The docs at https://docs.rs/tokio/latest explain select loops"),
            "The docs at https://docs.rs explain select loops"
        );
        let out = clean("Open https://admin:hunter2@internal.example.com/panel to restart it");
        assert!(!out.contains("hunter2") && out.contains("[url]"), "{out}");
        let out = clean("The link https://example.com/reset?token=abc123 expired quickly");
        assert!(!out.contains("abc123"), "{out}");
    }

    #[test]
    fn ordinary_technical_text_is_kept() {
        for s in [
            "Redis eviction should use allkeys-lru for the cache tier",
            "PostgreSQL 15 added MERGE and the release is from 2022-10-13",
            "Version 1.2.3 fixed the timeout at 10:30:45 in the logs",
            "We moved the CI from Jenkins to GitHub Actions last month",
            "The p99 latency dropped from 40 ms to 12.5 ms after batching",
            "Use std::sync::Arc for shared ownership across threads",
        ] {
            assert_eq!(clean(s), s, "{s}");
        }
    }

    #[test]
    fn what_cannot_be_cleaned_is_refused() {
        assert!(
            clean("-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
                .starts_with("REFUSED")
        );
        assert!(clean(&"word ".repeat(1000)).starts_with("REFUSED"));
        assert!(
            clean("john@doe").starts_with("REFUSED"),
            "{}",
            clean("john@doe")
        );
        assert!(
            clean("Call +1 555 123 4567").starts_with("REFUSED"),
            "too little left"
        );
    }
}
