//! Contradictions between two short statements (beliefs), by whole words and phrases.
//!
//! A statement is read as a sequence of lower-case words: contractions are opened ("isn't" →
//! "is not"), known multi-word phrases become one word ("up to date"), and fillers that do not
//! change meaning ("a", "the", "really", …) are left out. Negation markers ("not", "never",
//! "no", "no longer") are counted and set aside. Three rules, tried in order:
//!
//! 1. **negation**: both say the same words and exactly one of them is negated ("the build is
//!    green" / "the build is not green").
//! 2. **opposite**: the same words except one pair of opposite terms in the same place, with the
//!    same negation ("the API is fast" / "the API is slow").
//! 3. **value**: the same subject, before a linking verb ("is", "are", "costs", …), given two
//!    different values of one kind: days, months, dates, times, numbers with the same unit,
//!    colours ("the deadline is Friday" / "the deadline is Monday").
//!
//! Words are never matched inside other words ("is" does not match "this"), and everything
//! else must agree word for word, so "this is fine" and "that is not fine" (different
//! subjects) are no contradiction. [`Statement::core`] is the statement without its negation,
//! for a caller that compares meanings with an embedder when the words differ.

/// How two statements contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Negation,
    Opposite,
    Value,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Negation => "negation",
            Kind::Opposite => "opposite",
            Kind::Value => "value",
        }
    }
}

/// A contradiction found, with the words that show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// One sentence naming the words in conflict.
    pub evidence: String,
}

/// A statement as the rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Its words, negation markers and fillers left out.
    pub words: Vec<String>,
    /// How many negation markers it had.
    pub negations: usize,
}

impl Statement {
    pub fn parse(text: &str) -> Statement {
        let mut raw = Vec::new();
        for token in tokens(text) {
            expand(&token, &mut raw);
        }
        let joined = join_phrases(raw);
        let mut words = Vec::with_capacity(joined.len());
        let mut negations = 0;
        for (i, w) in joined.iter().enumerate() {
            let negation = |w: &str| NEGATIONS.contains(&w) || w == "no_longer";
            // "does not like" says "likes", negated: the auxiliary goes.
            if matches!(w.as_str(), "do" | "does" | "did")
                && joined.get(i + 1).is_some_and(|n| negation(n))
            {
                continue;
            }
            let w = w.clone();
            if negation(&w) {
                negations += 1;
            } else if !FILLERS.contains(&w.as_str()) {
                words.push(w);
            }
        }
        Statement { words, negations }
    }

    pub fn negated(&self) -> bool {
        self.negations % 2 == 1
    }

    /// The words without negation, as one string (for comparing meanings).
    pub fn core(&self) -> String {
        self.words.join(" ").replace('_', " ")
    }
}

/// Whether `a` and `b` contradict each other by the word rules.
pub fn contradiction(a: &str, b: &str) -> Option<Finding> {
    contradiction_of(&Statement::parse(a), &Statement::parse(b))
}

/// [`contradiction`] of parsed statements.
pub fn contradiction_of(a: &Statement, b: &Statement) -> Option<Finding> {
    if a.words.is_empty() || b.words.is_empty() {
        return None;
    }
    if same_words(&a.words, &b.words) {
        return (a.negated() != b.negated()).then(|| Finding {
            kind: Kind::Negation,
            evidence: format!(
                "the same statement (\"{}\"), negated in one of them",
                a.core()
            ),
        });
    }
    if a.negated() == b.negated()
        && a.words.len() == b.words.len()
        && a.words.len() >= 2
        && let Some((x, y)) = one_difference(&a.words, &b.words)
        && opposite(x, y)
    {
        return Some(Finding {
            kind: Kind::Opposite,
            evidence: format!(
                "\"{}\" and \"{}\" are opposites, said of the same thing",
                x.replace('_', " "),
                y.replace('_', " ")
            ),
        });
    }
    if !a.negated() && !b.negated() {
        return value_conflict(a, b);
    }
    None
}

/// A word without a plural or third-person "s" ("likes" and "like" are the same word here).
fn stem(w: &str) -> &str {
    match w.strip_suffix('s') {
        Some(s) if w.len() > 3 && !s.ends_with('s') && !s.ends_with('u') && !s.ends_with('i') => s,
        _ => w,
    }
}

fn same_words(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| stem(x) == stem(y))
}

/// The one position where two equally long word lists differ, if exactly one does.
fn one_difference<'a>(a: &'a [String], b: &'a [String]) -> Option<(&'a str, &'a str)> {
    let mut diff = a.iter().zip(b).filter(|(x, y)| stem(x) != stem(y));
    let first = diff.next()?;
    diff.next()
        .is_none()
        .then_some((first.0.as_str(), first.1.as_str()))
}

fn opposite(x: &str, y: &str) -> bool {
    let (x, y) = (stem(x), stem(y));
    OPPOSITES.iter().any(|(p, q)| {
        let (p, q) = (stem(p), stem(q));
        (p == x && q == y) || (p == y && q == x)
    })
}

fn value_conflict(a: &Statement, b: &Statement) -> Option<Finding> {
    let (sa, va) = split_at_link(&a.words)?;
    let (sb, vb) = split_at_link(&b.words)?;
    if sa.is_empty() || !same_words(sa, sb) {
        return None;
    }
    let (ka, xa) = value_of(va)?;
    let (kb, xb) = value_of(vb)?;
    // Amounts are compared only in the same unit.
    let unit = |x: &str| x.split_once(' ').map(|(_, u)| u.to_string());
    if ka != kb || xa == xb || (ka == ValueKind::Number && unit(&xa) != unit(&xb)) {
        return None;
    }
    Some(Finding {
        kind: Kind::Value,
        evidence: format!(
            "\"{}\" is given two different {}: \"{}\" and \"{}\"",
            sa.join(" ").replace('_', " "),
            ka.plural(),
            va.join(" "),
            vb.join(" ")
        ),
    })
}

/// The subject and what follows the first linking verb.
fn split_at_link(words: &[String]) -> Option<(&[String], &[String])> {
    let i = words.iter().position(|w| LINKS.contains(&w.as_str()))?;
    let mut subject = &words[..i];
    // "will be", "has been": the auxiliary belongs to the verb.
    if let Some(last) = subject.last()
        && AUXILIARIES.contains(&last.as_str())
    {
        subject = &subject[..subject.len() - 1];
    }
    let mut rest = &words[i + 1..];
    while let Some(first) = rest.first()
        && (LEADS.contains(&first.as_str()) || LINKS.contains(&first.as_str()))
    {
        rest = &rest[1..];
    }
    Some((subject, rest))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Day,
    Month,
    Date,
    Time,
    /// A number, and its unit after a space if it has one.
    Number,
    Colour,
}

impl ValueKind {
    fn plural(self) -> &'static str {
        match self {
            ValueKind::Day => "days",
            ValueKind::Month => "months",
            ValueKind::Date => "dates",
            ValueKind::Time => "times",
            ValueKind::Number => "amounts",
            ValueKind::Colour => "colours",
        }
    }
}

/// A value and its normal form, when `words` are one value and nothing else.
fn value_of(words: &[String]) -> Option<(ValueKind, String)> {
    match words {
        [w] if DAYS.contains(&w.as_str()) => Some((ValueKind::Day, w.clone())),
        [w] if MONTHS.contains(&w.as_str()) => Some((ValueKind::Month, w.clone())),
        [w] if COLOURS.contains(&w.as_str()) => Some((ValueKind::Colour, w.clone())),
        [w] if is_iso_date(w) => Some((ValueKind::Date, w.clone())),
        [m, d] | [d, m] if MONTHS.contains(&m.as_str()) => {
            Some((ValueKind::Date, format!("{m} {}", day_of_month(d)?)))
        }
        [w] if time_of(w, None).is_some() => Some((ValueKind::Time, time_of(w, None)?)),
        [w, ampm] if (ampm == "am" || ampm == "pm") => {
            Some((ValueKind::Time, time_of(w, Some(ampm))?))
        }
        [n] if is_number(n) => Some((ValueKind::Number, normal_number(n))),
        [n, unit] if is_number(n) && unit.chars().all(|c| c.is_alphabetic()) => Some((
            ValueKind::Number,
            format!("{} {}", normal_number(n), unit.trim_end_matches('s')),
        )),
        _ => None,
    }
}

fn is_number(w: &str) -> bool {
    !w.is_empty()
        && w.chars().next().is_some_and(|c| c.is_ascii_digit())
        && w.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && w.matches('.').count() <= 1
}

fn normal_number(w: &str) -> String {
    let s = w.replace(',', "");
    match s.parse::<f64>() {
        Ok(x) => format!("{x}"),
        Err(_) => s,
    }
}

/// "3", "03", "3rd": 3.
fn day_of_month(w: &str) -> Option<u32> {
    let d = w.trim_end_matches(|c: char| c.is_alphabetic());
    let suffix = &w[d.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    d.parse::<u32>().ok().filter(|n| (1..=31).contains(n))
}

fn is_iso_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// A clock time as minutes past midnight, written `HH:MM`: "3pm", "3 pm", "15:00", "10:30am".
fn time_of(w: &str, ampm: Option<&str>) -> Option<String> {
    let (clock, suffix) = match ampm {
        Some(s) => (w, s),
        None => {
            if let Some(c) = w.strip_suffix("am") {
                (c, "am")
            } else if let Some(c) = w.strip_suffix("pm") {
                (c, "pm")
            } else {
                (w, "")
            }
        }
    };
    let (h, m) = match clock.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        // A bare number is a time only with am or pm.
        None if !suffix.is_empty() => (clock.parse::<u32>().ok()?, 0),
        None => return None,
    };
    if m > 59 {
        return None;
    }
    let h = match suffix {
        "" if h <= 23 => h,
        "am" if (1..=12).contains(&h) => h % 12,
        "pm" if (1..=12).contains(&h) => h % 12 + 12,
        _ => return None,
    };
    Some(format!("{h:02}:{m:02}"))
}

/// Lower-case words: letters, digits and the marks inside them (an apostrophe, a hyphen
/// between letters, a point, comma or colon between digits).
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let between = |f: fn(char) -> bool| prev.is_some_and(f) && next.is_some_and(f);
        let keep = c.is_alphanumeric()
            || ((c == '\'' || c == '’') && between(char::is_alphabetic))
            || (c == '-' && between(char::is_alphanumeric))
            || ((c == '.' || c == ',' || c == ':') && between(|c| c.is_ascii_digit()));
        if keep {
            cur.push(if c == '’' { '\'' } else { c });
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Opens contractions.
fn expand(token: &str, out: &mut Vec<String>) {
    let fixed: Option<&[&str]> = match token {
        "can't" | "cannot" => Some(&["can", "not"]),
        "won't" => Some(&["will", "not"]),
        "shan't" => Some(&["shall", "not"]),
        "ain't" => Some(&["is", "not"]),
        "it's" => Some(&["it", "is"]),
        "that's" => Some(&["that", "is"]),
        "there's" => Some(&["there", "is"]),
        "what's" => Some(&["what", "is"]),
        "he's" => Some(&["he", "is"]),
        "she's" => Some(&["she", "is"]),
        "i'm" => Some(&["i", "am"]),
        "you're" => Some(&["you", "are"]),
        "we're" => Some(&["we", "are"]),
        "they're" => Some(&["they", "are"]),
        _ => None,
    };
    if let Some(words) = fixed {
        out.extend(words.iter().map(|w| w.to_string()));
    } else if let Some(stem) = token.strip_suffix("n't") {
        out.push(stem.to_string());
        out.push("not".into());
    } else {
        out.push(token.to_string());
    }
}

/// Joins the words of known phrases into one (`up_to_date`).
fn join_phrases(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    'next: while i < words.len() {
        for phrase in PHRASES {
            let n = phrase.len();
            if i + n <= words.len() && words[i..i + n].iter().zip(*phrase).all(|(w, p)| w == p) {
                out.push(phrase.join("_"));
                i += n;
                continue 'next;
            }
        }
        out.push(words[i].clone());
        i += 1;
    }
    out
}

const NEGATIONS: &[&str] = &["not", "never", "no"];

/// Words that add no meaning the rules need.
const FILLERS: &[&str] = &[
    "a",
    "an",
    "the",
    "really",
    "actually",
    "definitely",
    "certainly",
    "truly",
    "indeed",
    "surely",
];

/// Phrases read as one word, longest first where one starts another.
const PHRASES: &[&[&str]] = &[
    &["no", "longer"],
    &["up", "to", "date"],
    &["out", "of", "date"],
    &["out", "of", "stock"],
    &["in", "stock"],
    &["on", "time"],
    &["behind", "schedule"],
    &["ahead", "of", "schedule"],
    &["on", "schedule"],
    &["turned", "on"],
    &["turned", "off"],
    &["switched", "on"],
    &["switched", "off"],
    &["logged", "in"],
    &["logged", "out"],
    &["in", "favour", "of"],
    &["in", "favor", "of"],
];

/// Pairs of opposite terms (words or joined phrases), each pair once.
const OPPOSITES: &[(&str, &str)] = &[
    ("good", "bad"),
    ("better", "worse"),
    ("best", "worst"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("quick", "slow"),
    ("true", "false"),
    ("correct", "incorrect"),
    ("correct", "wrong"),
    ("right", "wrong"),
    ("valid", "invalid"),
    ("hot", "cold"),
    ("warm", "cold"),
    ("high", "low"),
    ("higher", "lower"),
    ("big", "small"),
    ("large", "small"),
    ("bigger", "smaller"),
    ("larger", "smaller"),
    ("more", "less"),
    ("more", "fewer"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("increasing", "decreasing"),
    ("increases", "decreases"),
    ("up", "down"),
    ("easy", "hard"),
    ("easy", "difficult"),
    ("simple", "complex"),
    ("simple", "complicated"),
    ("safe", "unsafe"),
    ("safe", "dangerous"),
    ("secure", "insecure"),
    ("open", "closed"),
    ("opened", "closed"),
    ("on", "off"),
    ("turned_on", "turned_off"),
    ("switched_on", "switched_off"),
    ("logged_in", "logged_out"),
    ("enabled", "disabled"),
    ("active", "inactive"),
    ("online", "offline"),
    ("available", "unavailable"),
    ("possible", "impossible"),
    ("legal", "illegal"),
    ("stable", "unstable"),
    ("reliable", "unreliable"),
    ("complete", "incomplete"),
    ("finished", "unfinished"),
    ("done", "pending"),
    ("success", "failure"),
    ("succeeded", "failed"),
    ("passed", "failed"),
    ("passing", "failing"),
    ("pass", "fail"),
    ("passes", "fails"),
    ("green", "red"),
    ("cheap", "expensive"),
    ("expensive", "inexpensive"),
    ("early", "late"),
    ("on_time", "late"),
    ("on_schedule", "behind_schedule"),
    ("ahead_of_schedule", "behind_schedule"),
    ("up_to_date", "out_of_date"),
    ("in_stock", "out_of_stock"),
    ("always", "never"),
    ("likes", "dislikes"),
    ("like", "dislike"),
    ("liked", "disliked"),
    ("likes", "hates"),
    ("like", "hate"),
    ("loves", "hates"),
    ("love", "hate"),
    ("loved", "hated"),
    ("agrees", "disagrees"),
    ("agree", "disagree"),
    ("accepted", "rejected"),
    ("approved", "rejected"),
    ("approve", "reject"),
    ("allowed", "forbidden"),
    ("allowed", "prohibited"),
    ("supports", "opposes"),
    ("support", "oppose"),
    ("in_favour_of", "against"),
    ("in_favor_of", "against"),
    ("for", "against"),
    ("include", "exclude"),
    ("includes", "excludes"),
    ("included", "excluded"),
    ("present", "absent"),
    ("alive", "dead"),
    ("happy", "unhappy"),
    ("happy", "sad"),
    ("married", "single"),
    ("public", "private"),
    ("internal", "external"),
    ("local", "remote"),
    ("before", "after"),
    ("above", "below"),
    ("inside", "outside"),
    ("first", "last"),
    ("win", "lose"),
    ("won", "lost"),
    ("wins", "loses"),
    ("profit", "loss"),
    ("profitable", "unprofitable"),
    ("strong", "weak"),
    ("stronger", "weaker"),
    ("heavy", "light"),
    ("old", "new"),
    ("older", "newer"),
    ("young", "old"),
    ("rich", "poor"),
    ("full", "empty"),
    ("clean", "dirty"),
    ("friendly", "hostile"),
    ("optimistic", "pessimistic"),
    ("positive", "negative"),
    ("yes", "no"),
];

/// Verbs after which a value follows.
const LINKS: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "am", "equals", "costs", "weighs", "measures",
    "lasts", "takes", "moved", "changed", "set", "starts", "begins", "ends", "opens", "closes",
    "arrives", "leaves", "departs", "lands", "falls",
];

/// Auxiliaries before a linking verb ("will be", "has been").
const AUXILIARIES: &[&str] = &[
    "will", "would", "shall", "has", "have", "had", "should", "must",
];

/// Words between the linking verb and the value ("is on Friday", "moved to Monday").
const LEADS: &[&str] = &[
    "at", "on", "in", "by", "until", "till", "to", "around", "about", "from", "for", "exactly",
    "now",
];

const DAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const MONTHS: &[&str] = &[
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
];

const COLOURS: &[&str] = &[
    "red", "orange", "yellow", "green", "blue", "purple", "violet", "black", "white", "grey",
    "gray", "brown", "pink",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(a: &str, b: &str) -> Option<Kind> {
        let k = contradiction(a, b).map(|f| f.kind);
        // Symmetric.
        assert_eq!(k, contradiction(b, a).map(|f| f.kind), "{a:?} / {b:?}");
        k
    }

    #[test]
    fn a_negated_statement_contradicts_the_plain_one() {
        assert_eq!(
            kind("The build is green", "the build is not green"),
            Some(Kind::Negation)
        );
        assert_eq!(
            kind(
                "Alice likes the new design.",
                "Alice doesn't like the new design"
            ),
            Some(Kind::Negation)
        );
        assert_eq!(
            kind("We will use Postgres", "We won't use Postgres"),
            Some(Kind::Negation)
        );
        assert_eq!(
            kind(
                "There is a bug in the parser",
                "There is no bug in the parser"
            ),
            Some(Kind::Negation)
        );
        assert_eq!(
            kind("The cache is used", "The cache is no longer used"),
            Some(Kind::Negation)
        );
        // Twice negated is not negated.
        assert_eq!(kind("The test is not never run", "The test is run"), None);
        // The same statement twice agrees.
        assert_eq!(kind("The build is green", "the build is green!"), None);
    }

    #[test]
    fn different_subjects_are_not_a_contradiction() {
        assert_eq!(kind("this is fine", "that is not fine"), None);
        assert_eq!(kind("The API is fast", "The database is slow"), None);
        assert_eq!(kind("the deadline is Friday", "the launch is Monday"), None);
    }

    #[test]
    fn whole_words_only_never_parts_of_words() {
        // "is" inside "this", "not" inside "nothing" / "notable", "no" inside "know".
        assert_eq!(kind("this works", "this is works"), None);
        assert_eq!(kind("I know the answer", "I the answer"), None);
        assert_eq!(
            kind("nothing changed in the plan", "changed in the plan"),
            None
        );
        assert_eq!(kind("it is notable", "it is able"), None);
        // "fast" inside "breakfast" is no opposite of "slow".
        assert_eq!(kind("breakfast is early", "slow is early"), None);
    }

    #[test]
    fn opposite_terms_on_the_same_subject() {
        assert_eq!(
            kind("The API is fast", "the API is slow"),
            Some(Kind::Opposite)
        );
        assert_eq!(
            kind("Bob loves jazz", "Bob hates jazz"),
            Some(Kind::Opposite)
        );
        assert_eq!(
            kind("The docs are up to date", "The docs are out of date"),
            Some(Kind::Opposite)
        );
        // An opposite under a negation agrees: "not slow" is no contradiction of "fast".
        assert_eq!(kind("The API is fast", "The API is not slow"), None);
        // Two differences are no longer the same statement.
        assert_eq!(kind("The API is fast today", "The UI is slow today"), None);
        // Words that are not opposites.
        assert_eq!(kind("Alice is tired", "Alice is hungry"), None);
    }

    #[test]
    fn incompatible_values_for_the_same_attribute() {
        let f = contradiction("the deadline is Friday", "The deadline is Monday").unwrap();
        assert_eq!(f.kind, Kind::Value);
        assert!(f.evidence.contains("deadline"), "{}", f.evidence);
        assert!(f.evidence.contains("friday") && f.evidence.contains("monday"));
        assert_eq!(
            kind("The meeting is at 3pm", "the meeting is at 4 pm"),
            Some(Kind::Value)
        );
        assert_eq!(
            kind("The meeting is at 3pm", "the meeting is at 15:00"),
            None,
            "the same time, written two ways"
        );
        assert_eq!(
            kind("The budget is 5,000 dollars", "the budget is 7000 dollars"),
            Some(Kind::Value)
        );
        assert_eq!(
            kind("The budget is 5000 dollars", "the budget is 5,000 dollars"),
            None
        );
        assert_eq!(
            kind(
                "The release will be on 2026-03-01",
                "The release is 2026-04-01"
            ),
            Some(Kind::Value)
        );
        assert_eq!(
            kind("Her birthday is March 3", "her birthday is 4th March"),
            Some(Kind::Value)
        );
        assert_eq!(
            kind("Her birthday is March 3", "her birthday is 3rd March"),
            None
        );
        assert_eq!(
            kind("Priya's shift starts at 7am", "Priya's shift starts at 9am"),
            Some(Kind::Value)
        );
        assert_eq!(
            kind("The shop opens on Monday", "The shop opens at 9am"),
            None,
            "a day and a time do not conflict"
        );
        // Different kinds of value, or not a value: no contradiction by this rule.
        assert_eq!(
            kind("The deadline is Friday", "The deadline is 2026-03-01"),
            None
        );
        assert_eq!(
            kind("The deadline is Friday", "The deadline is tight"),
            None
        );
        // A negated value is compatible with another value.
        assert_eq!(
            kind("The deadline is not Friday", "The deadline is Monday"),
            None
        );
        // Numbers in different units are not compared.
        assert_eq!(kind("The file is 5 MB", "The file is 7 GB"), None);
    }

    #[test]
    fn parsing_opens_contractions_and_keeps_numbers_whole() {
        let s = Statement::parse("It's 3.5 GB, isn't it? Meet at 10:30.");
        assert_eq!(s.negations, 1);
        assert_eq!(
            s.words,
            vec!["it", "is", "3.5", "gb", "is", "it", "meet", "at", "10:30"]
        );
        assert_eq!(
            Statement::parse("The docs aren't up to date").core(),
            "docs are up to date"
        );
        assert!(Statement::parse("").words.is_empty());
        assert_eq!(contradiction("", "not"), None);
    }
}
