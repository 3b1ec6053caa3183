//! The Hebbian link rule: concepts that occur together grow a stronger link.
//!
//! A new link starts at `initial` (0.1); each further co-occurrence adds `increment` (0.1); the
//! strength is capped at `cap` (1.0). These are the original system's constants. Optional decay
//! halves a link's effective strength every `half_life_days` since it was last strengthened; it
//! is off by default, because memories persist. Decay is applied when links are read, so stored
//! strengths stay exact and a later co-occurrence refreshes the link.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HebbianRule {
    pub initial: f64,
    pub increment: f64,
    pub cap: f64,
    /// `None` (the default): no decay.
    pub half_life_days: Option<f64>,
}

impl Default for HebbianRule {
    fn default() -> Self {
        HebbianRule {
            initial: 0.1,
            increment: 0.1,
            cap: 1.0,
            half_life_days: None,
        }
    }
}

impl HebbianRule {
    /// Strength of a link seen `count` (≥ 1) times from nothing.
    pub fn new_strength(&self, count: u64) -> f64 {
        let n = count.max(1) as f64;
        round_strength(self.initial + self.increment * (n - 1.0)).min(self.cap)
    }

    /// Strength of an existing link after `count` more co-occurrences.
    pub fn strengthened(&self, current: f64, count: u64) -> f64 {
        round_strength(current + self.increment * count as f64).min(self.cap)
    }

    /// What a stored strength is worth at `now`, given decay.
    pub fn effective(&self, stored: f64, last_strengthened: Timestamp, now: Timestamp) -> f64 {
        match self.half_life_days {
            Some(h) if h > 0.0 => stored * 0.5f64.powf(last_strengthened.days_until(now) / h),
            _ => stored,
        }
    }
}

/// Rounds a strength to 9 decimals, as every store does after adding increments (`round(x *
/// 1e9) / 1e9`): the same co-occurrences then give the same stored strength whatever the order
/// and grouping of the additions (floating-point addition alone is not associative), which is
/// what lets two synced nodes hold equal strengths.
pub fn round_strength(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// Orders a pair of concept keys canonically (a < b), so an undirected link has one identity.
pub fn canonical_pair<'a>(x: &'a str, y: &'a str) -> (&'a str, &'a str) {
    if x <= y { (x, y) } else { (y, x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_constants() {
        let r = HebbianRule::default();
        assert_eq!(r.new_strength(1), 0.1);
        assert!((r.strengthened(0.1, 1) - 0.2).abs() < 1e-12);
        assert_eq!(r.strengthened(0.95, 1), 1.0);
        assert!((r.new_strength(3) - 0.3).abs() < 1e-12);
        assert_eq!(r.new_strength(50), 1.0);
    }

    #[test]
    fn decay_is_off_by_default_and_halves_per_half_life_when_on() {
        let t0 = Timestamp(0);
        let later = Timestamp(10 * 86_400_000);
        assert_eq!(HebbianRule::default().effective(0.8, t0, later), 0.8);
        let decaying = HebbianRule {
            half_life_days: Some(10.0),
            ..Default::default()
        };
        assert!((decaying.effective(0.8, t0, later) - 0.4).abs() < 1e-12);
    }

    proptest::proptest! {
        #[test]
        fn batching_co_occurrences_equals_applying_them_one_by_one(n in 1u64..40, m in 1u64..40) {
            let r = HebbianRule::default();
            let mut one_by_one = r.new_strength(1);
            for _ in 1..(n + m) { one_by_one = r.strengthened(one_by_one, 1); }
            let batched = r.strengthened(r.new_strength(n), m);
            proptest::prop_assert!((one_by_one - batched).abs() < 1e-9);
            proptest::prop_assert!(batched <= r.cap);
        }
    }
}
