//! Which backups to keep: the last N, and the newest of each of the last N days, ISO weeks
//! and months (UTC), as restic and borg count them. A backup kept by any rule stays.

use chrono::Datelike;
use continuum_core::{Error, Result, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Retention rules; a rule left out keeps nothing by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
}

/// The largest count a rule takes.
pub const MAX_KEEP: u32 = 100_000;

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
    }

    /// Refuses a policy that would delete every backup, or counts over [`MAX_KEEP`].
    pub fn check(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::InvalidInput(
                "give at least one rule: --keep-last, --keep-daily, --keep-weekly or --keep-monthly (or [backup] keep_* in the config)".into(),
            ));
        }
        let all = [
            self.keep_last,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
        ];
        if all.iter().flatten().all(|n| *n == 0) {
            return Err(Error::InvalidInput(
                "these rules keep no backup at all; at least one must be 1 or more".into(),
            ));
        }
        if all.iter().flatten().any(|n| *n > MAX_KEEP) {
            return Err(Error::InvalidInput(format!(
                "a retention count is at most {MAX_KEEP}"
            )));
        }
        Ok(())
    }

    /// For each backup `(id, time)`, the rules that keep it (empty: it goes). The newest
    /// backup of a period stands for it.
    pub fn decide<'a>(
        &self,
        backups: &'a [(String, Timestamp)],
    ) -> BTreeMap<&'a str, BTreeSet<&'static str>> {
        let mut order: Vec<&(String, Timestamp)> = backups.iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let mut reasons: BTreeMap<&str, BTreeSet<&'static str>> = order
            .iter()
            .map(|(id, _)| (id.as_str(), BTreeSet::new()))
            .collect();
        if let Some(n) = self.keep_last {
            for (id, _) in order.iter().take(n as usize) {
                reasons.get_mut(id.as_str()).unwrap().insert("last");
            }
        }
        let mut by_period =
            |n: Option<u32>, rule: &'static str, key: fn(Timestamp) -> (i32, u32)| {
                let Some(n) = n else { return };
                let mut seen = BTreeSet::new();
                for (id, at) in &order {
                    if seen.len() >= n as usize {
                        break;
                    }
                    if seen.insert(key(*at)) {
                        reasons.get_mut(id.as_str()).unwrap().insert(rule);
                    }
                }
            };
        by_period(self.keep_daily, "daily", |t| {
            let d = date(t);
            (d.year(), d.ordinal())
        });
        by_period(self.keep_weekly, "weekly", |t| {
            let w = date(t).iso_week();
            (w.year(), w.week())
        });
        by_period(self.keep_monthly, "monthly", |t| {
            let d = date(t);
            (d.year(), d.month())
        });
        reasons
    }
}

fn date(t: Timestamp) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .unwrap_or_default()
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn at(days: i64, hours: i64) -> Timestamp {
        // 2026-01-05 is a Monday.
        Timestamp(1_767_571_200_000 + days * DAY + hours * 3_600_000)
    }

    #[test]
    fn newest_of_each_period_is_kept() {
        // Four backups a day for 60 days.
        let backups: Vec<(String, Timestamp)> = (0..60)
            .flat_map(|d| (0..4).map(move |h| (format!("b{d:02}-{h}"), at(d, h * 6))))
            .collect();
        let r = Retention {
            keep_last: Some(3),
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(2),
        };
        let kept: BTreeMap<&str, BTreeSet<&str>> = r
            .decide(&backups)
            .into_iter()
            .filter(|(_, why)| !why.is_empty())
            .collect();
        // 2026-01-05 + 59 days is Thursday 5 March. last 3: b59-3, b59-2, b59-1; daily 7:
        // b59-3 .. b53-3; weekly: the newest of the last 4 ISO weeks (b59-3, and the Sundays
        // b55-3, b48-3, b41-3); monthly: the newest of March (b59-3) and of February (b54-3).
        let expected: BTreeSet<&str> = [
            "b59-3", "b59-2", "b59-1", "b58-3", "b57-3", "b56-3", "b55-3", "b54-3", "b53-3",
            "b48-3", "b41-3",
        ]
        .into_iter()
        .collect();
        assert_eq!(kept.keys().copied().collect::<BTreeSet<_>>(), expected);
        assert_eq!(
            kept["b59-3"],
            ["daily", "last", "monthly", "weekly"].into_iter().collect()
        );
        assert_eq!(kept["b54-3"], ["daily", "monthly"].into_iter().collect());
        assert_eq!(kept["b41-3"], ["weekly"].into_iter().collect());
    }

    #[test]
    fn a_policy_that_keeps_nothing_is_refused() {
        assert!(Retention::default().check().is_err());
        assert!(
            Retention {
                keep_last: Some(0),
                ..Retention::default()
            }
            .check()
            .is_err()
        );
        assert!(
            Retention {
                keep_daily: Some(MAX_KEEP + 1),
                ..Retention::default()
            }
            .check()
            .is_err()
        );
        Retention {
            keep_last: Some(1),
            ..Retention::default()
        }
        .check()
        .unwrap();
    }
}
