//! Scheduled backups: `hourly`, `daily`, `every 30m` or a five-field cron expression (UTC),
//! run by `serve` as a supervised job, with metrics, one log line per run, retries with
//! backoff, and pruning by the configured retention after each success.

use crate::{CreateOptions, Destination, Quiet, Retention, Source};
use chrono::{Datelike, Timelike};
use continuum_core::{Error, Result, Timestamp};
use continuum_engine::Engine;
use continuum_ops::CancellationToken;
use std::time::Duration;

/// When backups run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every so many seconds, counted from the Unix epoch (so `every 6h` runs at 00:00,
    /// 06:00, … UTC).
    Every(u32),
    Cron(Cron),
}

/// A five-field cron expression (minute hour day-of-month month day-of-week), UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    dom_any: bool,
    dow_any: bool,
}

/// The longest schedule text accepted.
pub const MAX_SCHEDULE_BYTES: usize = 200;

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule> {
        let s = s.trim();
        if s.len() > MAX_SCHEDULE_BYTES {
            return Err(Error::InvalidInput(format!(
                "a backup schedule is at most {MAX_SCHEDULE_BYTES} bytes"
            )));
        }
        match s {
            "hourly" => return Ok(Schedule::Every(3600)),
            "daily" => return Ok(Schedule::Every(24 * 3600)),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("every ") {
            let rest = rest.trim();
            let (n, unit) = rest.split_at(
                rest.find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len()),
            );
            let n: u32 = n.parse().map_err(|_| bad(s))?;
            let secs = match unit.trim() {
                "s" | "sec" | "seconds" => n,
                "m" | "min" | "minutes" => n.saturating_mul(60),
                "h" | "hours" => n.saturating_mul(3600),
                _ => return Err(bad(s)),
            };
            if !(10..=7 * 24 * 3600).contains(&secs) {
                return Err(Error::InvalidInput(format!(
                    "'{s}': a backup interval is from 10 seconds to 7 days"
                )));
            }
            return Ok(Schedule::Every(secs));
        }
        Ok(Schedule::Cron(Cron::parse(s)?))
    }

    /// The first time strictly after `t` the schedule fires.
    pub fn next_after(&self, t: Timestamp) -> Timestamp {
        match self {
            Schedule::Every(secs) => {
                let step = *secs as i64 * 1000;
                Timestamp((t.millis().div_euclid(step) + 1) * step)
            }
            Schedule::Cron(c) => c.next_after(t),
        }
    }
}

fn bad(s: &str) -> Error {
    Error::InvalidInput(format!(
        "'{s}' is not a backup schedule: use hourly, daily, 'every 30m', 'every 6h' (10 s to 7 days) or a cron expression such as '15 3 * * *' (minute hour day month weekday, UTC)"
    ))
}

impl Cron {
    pub fn parse(s: &str) -> Result<Cron> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = fields.as_slice() else {
            return Err(bad(s));
        };
        let field = |f: &str, lo: u32, hi: u32| -> Result<u64> {
            let mut bits = 0u64;
            for part in f.split(',') {
                let (range, step) = match part.split_once('/') {
                    Some((r, st)) => (r, st.parse::<u32>().map_err(|_| bad(s))?),
                    None => (part, 1),
                };
                if step == 0 {
                    return Err(bad(s));
                }
                let (a, b) = if range == "*" {
                    (lo, hi)
                } else if let Some((a, b)) = range.split_once('-') {
                    (
                        a.parse().map_err(|_| bad(s))?,
                        b.parse().map_err(|_| bad(s))?,
                    )
                } else {
                    let a: u32 = range.parse().map_err(|_| bad(s))?;
                    (a, if part.contains('/') { hi } else { a })
                };
                if a < lo || b > hi || a > b {
                    return Err(bad(s));
                }
                let mut v = a;
                while v <= b {
                    bits |= 1 << v;
                    v += step;
                }
            }
            Ok(bits)
        };
        let mut weekdays = field(dow, 0, 7)? as u8;
        if weekdays & 0x80 != 0 {
            weekdays = (weekdays | 1) & 0x7f; // 7 is Sunday too
        }
        Ok(Cron {
            minutes: field(mi, 0, 59)?,
            hours: field(h, 0, 23)? as u32,
            days: field(dom, 1, 31)? as u32,
            months: field(mo, 1, 12)? as u16,
            weekdays,
            dom_any: *dom == "*",
            dow_any: *dow == "*",
        })
    }

    fn day_matches(&self, d: chrono::NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            // Both restricted: either matches (as in Vixie cron).
            (false, false) => dom || dow,
        }
    }

    /// The first matching minute strictly after `t`; at most about five years ahead (a
    /// schedule such as 30 February never fires, and then this is five years away).
    pub fn next_after(&self, t: Timestamp) -> Timestamp {
        let start = chrono::DateTime::from_timestamp_millis(t.millis())
            .unwrap_or_default()
            .naive_utc();
        let mut m = start
            .with_second(0)
            .and_then(|x| x.with_nanosecond(0))
            .unwrap_or(start)
            + chrono::Duration::minutes(1);
        let limit = start + chrono::Duration::days(5 * 366);
        while m < limit {
            if !self.day_matches(m.date()) {
                m = (m.date() + chrono::Duration::days(1))
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or(m);
                continue;
            }
            if self.hours & (1 << m.hour()) == 0 {
                m = m.with_minute(0).unwrap_or(m) + chrono::Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << m.minute()) != 0 {
                return Timestamp(m.and_utc().timestamp_millis());
            }
            m += chrono::Duration::minutes(1);
        }
        Timestamp(limit.and_utc().timestamp_millis())
    }
}

/// What the scheduled job needs.
#[derive(Clone)]
pub struct JobConfig {
    pub schedule: Schedule,
    pub dest: Destination,
    pub source: Source,
    pub options: CreateOptions,
    /// Pruning after each successful backup, when set.
    pub retention: Option<Retention>,
    /// Every Nth scheduled backup is full and the others incremental (0 or 1: all full).
    pub full_every: u32,
    /// Attempts per scheduled run before waiting for the next one.
    pub attempts: u32,
    /// The pause after the first failed attempt; it doubles, up to 10 minutes.
    pub retry_after: Duration,
}

/// Runs backups on the schedule until `stop` is cancelled. Never returns an error: a failed
/// run is logged, counted and retried, and the next scheduled run happens regardless.
pub async fn run_scheduled(
    engine: Engine,
    cfg: JobConfig,
    stop: CancellationToken,
) -> std::result::Result<(), String> {
    let dest = cfg.dest.describe();
    let mut runs = 0u64;
    loop {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock);
        let next = cfg.schedule.next_after(now);
        let wait = Duration::from_millis((next.millis() - now.millis()).max(0) as u64);
        metrics::gauge!(continuum_ops::metrics::BACKUP_NEXT_RUN).set(next.millis() as f64 / 1000.0);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        let mut pause = cfg.retry_after;
        let mut options = cfg.options.clone();
        options.incremental = cfg.full_every > 1 && !runs.is_multiple_of(cfg.full_every as u64);
        runs += 1;
        for attempt in 1..=cfg.attempts.max(1) {
            let started = std::time::Instant::now();
            let run = crate::create(&engine, &cfg.source, &cfg.dest, &options, &Quiet);
            let result = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = run => r,
            };
            let secs = started.elapsed().as_secs_f64();
            match result {
                Ok(m) => {
                    metrics::counter!(continuum_ops::metrics::BACKUP_RUNS, "outcome" => "ok")
                        .increment(1);
                    metrics::gauge!(continuum_ops::metrics::BACKUP_LAST_SUCCESS)
                        .set(m.created_at.millis() as f64 / 1000.0);
                    metrics::gauge!(continuum_ops::metrics::BACKUP_LAST_DURATION).set(secs);
                    metrics::gauge!(continuum_ops::metrics::BACKUP_LAST_SIZE)
                        .set(m.stored.bytes as f64);
                    tracing::info!(
                        id = %m.id,
                        destination = %dest,
                        kind = m.kind.as_str(),
                        memories = m.memories(),
                        stored_bytes = m.stored.bytes,
                        seconds = secs,
                        "backup created"
                    );
                    if let Some(rules) = &cfg.retention {
                        match crate::prune(&cfg.dest, rules, false, m.created_at).await {
                            Ok(p) => tracing::info!(
                                destination = %dest,
                                deleted = p.deleted.len(),
                                kept = p.kept.len(),
                                "backups pruned"
                            ),
                            Err(e) => {
                                tracing::warn!(destination = %dest, error = %e, "pruning backups failed")
                            }
                        }
                    }
                    break;
                }
                // Nothing to build on (an empty destination, another store's backup): a full one.
                Err(Error::InvalidInput(_) | Error::Conflict(_)) if options.incremental => {
                    tracing::info!(destination = %dest, "no backup of this store to build on; making a full one");
                    options.incremental = false;
                }
                Err(e) => {
                    metrics::counter!(continuum_ops::metrics::BACKUP_RUNS, "outcome" => "error")
                        .increment(1);
                    tracing::warn!(
                        destination = %dest,
                        attempt,
                        error = %e,
                        "backup failed"
                    );
                    if attempt == cfg.attempts.max(1) {
                        break;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(600));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn schedules_fire_when_they_say() {
        let at = t("2026-12-06T14:23:10Z");
        let next = |s: &str| Schedule::parse(s).unwrap().next_after(at).to_rfc3339();
        assert_eq!(next("hourly"), t("2026-12-06T15:00:00Z").to_rfc3339());
        assert_eq!(next("daily"), t("2026-12-07T00:00:00Z").to_rfc3339());
        assert_eq!(next("every 30m"), t("2026-12-06T14:30:00Z").to_rfc3339());
        assert_eq!(next("every 6h"), t("2026-12-06T18:00:00Z").to_rfc3339());
        assert_eq!(next("15 3 * * *"), t("2026-12-07T03:15:00Z").to_rfc3339());
        assert_eq!(next("*/20 * * * *"), t("2026-12-06T14:40:00Z").to_rfc3339());
        // 2026-12-06 is a Sunday: the next Monday 02:00.
        assert_eq!(next("0 2 * * 1"), t("2026-12-07T02:00:00Z").to_rfc3339());
        assert_eq!(next("0 2 * * 7"), t("2026-12-13T02:00:00Z").to_rfc3339());
        assert_eq!(next("0 0 1 * *"), t("2027-01-01T00:00:00Z").to_rfc3339());
        assert_eq!(next("0 12 29 2 *"), t("2028-02-29T12:00:00Z").to_rfc3339());
        // Day of month or weekday, when both are given.
        assert_eq!(next("0 9 1 * 2"), t("2026-12-08T09:00:00Z").to_rfc3339());
        assert_eq!(next("23 14 * * *"), t("2026-12-07T14:23:00Z").to_rfc3339());
        for bad in [
            "weekly",
            "every 5s",
            "every 9d",
            "60 * * * *",
            "* * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "* * 0 * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
