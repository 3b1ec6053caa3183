//! Time as the domain sees it: milliseconds since the Unix epoch, read from a [`Clock`] that is
//! passed in, so tests control it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since 1970-01-01T00:00:00Z. Serialised as RFC 3339 text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => self.0.to_string(),
        }
    }

    /// Parses RFC 3339 (`2024-05-01T10:00:00Z`), a bare date (`2024-05-01`, midnight UTC) or
    /// integer milliseconds.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(dt.timestamp_millis()));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let dt = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            return Ok(Timestamp(dt.timestamp_millis()));
        }
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Timestamp(ms));
        }
        Err(Error::InvalidInput(format!(
            "'{s}' is not a time (expected RFC 3339 like 2024-05-01T10:00:00Z, or YYYY-MM-DD)"
        )))
    }

    /// Days from `self` to `later`, never negative.
    pub fn days_until(self, later: Timestamp) -> f64 {
        ((later.0 - self.0).max(0) as f64) / 86_400_000.0
    }
}

/// English month names, lower case, January first.
pub const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// English weekday names, lower case, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Whether a lower-case word alone names a month: "may" does not (it is far more often the
/// verb).
pub fn is_month_word(w: &str) -> bool {
    w != "may" && MONTH_NAMES.contains(&w)
}

/// The period a text names with a year: a date ("October 13, 2023", "13 October 2023"), a month
/// ("June 2023"), or a year alone ("in 2022"), as [start, end) in UTC. The first one named counts.
/// Month names without a year, and "may" not beside a number, name nothing.
pub fn period_named(text: &str) -> Option<(Timestamp, Timestamp)> {
    let words: Vec<String> = crate::text::words(text)
        .take(256)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let number = |w: &str| -> Option<u32> {
        let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
        let rest = &w[digits.len()..];
        if digits.is_empty() || !matches!(rest, "" | "st" | "nd" | "rd" | "th") {
            return None;
        }
        digits.parse().ok()
    };
    let year = |w: &str| number(w).filter(|y| w.len() == 4 && (1900..2100).contains(y));
    let day = |w: &str| number(w).filter(|d| (1..=31).contains(d) && w.len() <= 4);
    let at = |y: i32, m: u32, d: u32| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Timestamp(dt.and_utc().timestamp_millis()))
    };
    let month_end = |y: i32, m: u32| {
        if m == 12 {
            at(y + 1, 1, 1)
        } else {
            at(y, m + 1, 1)
        }
    };
    let get = |i: usize| words.get(i).map(String::as_str);
    for (i, w) in words.iter().enumerate() {
        if let Some(m) = MONTH_NAMES.iter().position(|n| n == w) {
            let m = m as u32 + 1;
            // "13 October 2023", "October 13, 2023", "October 2023".
            let before = i.checked_sub(1).and_then(get).and_then(day);
            let (d, y) = match (get(i + 1).and_then(day), get(i + 1).and_then(year)) {
                (_, Some(y)) => (before, Some(y)),
                (Some(d), None) => (Some(d), get(i + 2).and_then(year)),
                (None, None) => (before, None),
            };
            let Some(y) = y else { continue };
            let y = y as i32;
            return match d {
                Some(d) => at(y, m, d).map(|s| (s, Timestamp(s.0 + 86_400_000))),
                None => Some((at(y, m, 1)?, month_end(y, m)?)),
            };
        }
        if let Some(y) = year(w) {
            // A year not part of a date ("in 2022"): the whole year.
            let y = y as i32;
            return Some((at(y, 1, 1)?, at(y + 1, 1, 1)?));
        }
    }
    None
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Written as RFC 3339; read as RFC 3339 or milliseconds since the epoch.
        schemars::json_schema!({
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "milliseconds since the Unix epoch"}]
        })
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Timestamp(ms)),
            Raw::Text(s) => Timestamp::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// A clock that tests set and advance by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(AtomicI64::new(at.0))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_and_formats() {
        let t = Timestamp::parse("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-01T10:00:00.000Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
        assert_eq!(
            Timestamp::parse("2024-05-01").unwrap().0,
            t.0 - 10 * 3_600_000
        );
        assert!(Timestamp::parse("yesterday").is_err());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
}

#[cfg(test)]
mod period_tests {
    use super::{Timestamp, period_named};

    fn day(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn dates_months_and_years_are_periods() {
        let oct13 = (day("2023-10-13"), day("2023-10-14"));
        assert_eq!(
            period_named("What did she show on October 13, 2023?"),
            Some(oct13)
        );
        assert_eq!(period_named("on 13 October 2023"), Some(oct13));
        assert_eq!(period_named("on 13th October, 2023"), Some(oct13));
        assert_eq!(
            period_named("What class did she start in December 2023?"),
            Some((day("2023-12-01"), day("2024-01-01")))
        );
        assert_eq!(
            period_named("How often did he swim in 2022?"),
            Some((day("2022-01-01"), day("2023-01-01")))
        );
        assert_eq!(
            period_named("Who came to dinner on May 3, 2023?"),
            Some((day("2023-05-03"), day("2023-05-04")))
        );
        for none in [
            "When did she go camping in June?",
            "You may be right",
            "Room 2300 is upstairs",
            "What did Ines adopt?",
        ] {
            assert_eq!(period_named(none), None, "{none}");
        }
    }
}
