//! The question's shape, applied among the best few candidates after fusion: a question about
//! when something happened favours the memories that place something in time, and one that
//! names a date, month or year favours the memories made then.

use super::*;
use continuum_core::time::{WEEKDAY_NAMES, is_month_word};

/// Whether the query asks when something happened: it starts with "when", or asks for a year,
/// month, date, day or time, or how long ago.
pub(super) fn asks_when(query: &str) -> bool {
    let w: Vec<String> = words(query).take(64).map(str::to_lowercase).collect();
    if w.first().is_some_and(|f| f == "when") {
        return true;
    }
    w.windows(2).any(|p| {
        let (a, b) = (p[0].as_str(), p[1].as_str());
        (matches!(a, "what" | "which")
            && matches!(
                b,
                "year" | "month" | "date" | "day" | "time" | "week" | "season"
            ))
            || (a == "how" && matches!(b, "long" | "recently"))
            || (a == "since" && b == "when")
    })
}

/// Whether a text places something in time: a relative day ("yesterday", "tonight"), a span
/// ("last week", "two months ago"), a weekday, a month, a season, or a year from 1900 to 2099.
pub(super) fn mentions_time(text: &str) -> bool {
    words(text).any(|w| {
        if w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()) {
            return matches!(&w[..2], "19" | "20");
        }
        if w.len() > 9 || !w.is_ascii() {
            return false;
        }
        let lower = w.to_ascii_lowercase();
        is_month_word(&lower)
            || WEEKDAY_NAMES.contains(&lower.as_str())
            || matches!(
                lower.as_str(),
                "yesterday"
                    | "today"
                    | "tonight"
                    | "tomorrow"
                    | "ago"
                    | "weekend"
                    | "week"
                    | "weeks"
                    | "month"
                    | "months"
                    | "year"
                    | "years"
                    | "summer"
                    | "winter"
                    | "spring"
                    | "autumn"
                    | "recently"
                    | "lately"
            )
    })
}

/// Scores memories that place something in time `1 + boost` times higher when the query asks
/// when something happened, and restores the order (best first, ties by id as before).
pub(super) fn favour_times(
    scored: &mut [(f64, Signals, Arc<RecallText>)],
    query: &str,
    boost: f64,
) {
    if boost <= 0.0 || !asks_when(query) {
        return;
    }
    let mut moved = false;
    for (score, s, m) in scored.iter_mut() {
        if mentions_time(&m.memory.content) {
            *score *= 1.0 + boost;
            s.time_factor = 1.0 + boost;
            moved = true;
        }
    }
    if moved {
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.2.memory.id.cmp(&a.2.memory.id)));
    }
}

/// Scores memories made in the period the query names (a date, month or year; see
/// [`continuum_core::time::period_named`]) or within two weeks after it, when people tell of
/// it, `1 + boost` times higher, and restores the order.
pub(super) fn favour_period(
    scored: &mut [(f64, Signals, Arc<RecallText>)],
    query: &str,
    boost: f64,
) {
    if boost <= 0.0 {
        return;
    }
    let Some((start, end)) = continuum_core::time::period_named(query) else {
        return;
    };
    let end = Timestamp(end.0 + 14 * 86_400_000);
    let mut moved = false;
    for (score, s, m) in scored.iter_mut() {
        if (start..end).contains(&m.memory.created_at) {
            *score *= 1.0 + boost;
            s.period_factor = 1.0 + boost;
            moved = true;
        }
    }
    if moved {
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.2.memory.id.cmp(&a.2.memory.id)));
    }
}

#[cfg(test)]
mod tests {
    use super::{asks_when, mentions_time};

    #[test]
    fn questions_about_time_are_told_apart() {
        for q in [
            "When did Ines adopt the greyhound?",
            "In what year did they move?",
            "How long ago was the concert?",
            "which month was the trip",
        ] {
            assert!(asks_when(q), "{q}");
        }
        for q in [
            "What is the greyhound called?",
            "Where did they go when it rained?",
            "Who came to the party last week?",
        ] {
            assert!(!asks_when(q), "{q}");
        }
    }

    #[test]
    fn texts_that_place_something_in_time() {
        for t in [
            "I went to the support group yesterday.",
            "We moved in 2019",
            "See you on Friday!",
            "That was two weeks ago",
        ] {
            assert!(mentions_time(t), "{t}");
        }
        for t in [
            "I adopted a greyhound called Pixel.",
            "Room 2300 is on the left",
            "You may be right",
        ] {
            assert!(!mentions_time(t), "{t}");
        }
    }
}
