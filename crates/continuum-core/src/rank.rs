//! Ranking: how the recall signals of a candidate memory are fused into one score, and how
//! near-duplicates are collapsed. Pure functions, property-tested.

use serde::{Deserialize, Serialize};

/// Weights of the fused score. Each signal is first normalised to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FusionWeights {
    pub lexical: f64,
    /// Cosine similarity of sentence vectors (counts only when an embedder is on).
    pub semantic: f64,
    pub graph: f64,
    pub recency: f64,
    /// Half-life, in days, of the recency signal.
    pub recency_half_life_days: f64,
    /// Multiplier for memories that a newer memory superseded.
    pub superseded_factor: f64,
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights {
            // Lexical, graph and recency chosen on half of the LoCoMo development questions and
            // checked on the other half; semantic by 5-fold cross-validation over its
            // conversations (BENCHMARKS.md, "Retrieval quality").
            lexical: 0.75,
            semantic: 0.6,
            graph: 0.15,
            recency: 0.10,
            recency_half_life_days: 30.0,
            superseded_factor: 0.5,
        }
    }
}

/// The explained parts of one memory's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Signals {
    /// BM25 normalised by the best BM25 of the query, in [0, 1].
    pub lexical: f64,
    /// Cosine of the query's and the memory's vectors, min-max normalised over the
    /// candidates, in [0, 1]; 0 without an embedder or for a memory not yet embedded.
    #[serde(default)]
    pub semantic: f64,
    /// Concept-graph activation normalised by the best activation, in [0, 1].
    pub graph: f64,
    /// 0.5^(age / half-life), in (0, 1].
    pub recency: f64,
    /// Factor applied to the fused score because the query asks when and the memory places
    /// something in time (`temporal_boost`); absent (1) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub time_factor: f64,
    /// Factor applied because the query names a date, month or year and the memory was made
    /// in that period or within two weeks after it (`period_boost`); absent (1) otherwise.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub period_factor: f64,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            lexical: 0.0,
            semantic: 0.0,
            graph: 0.0,
            recency: 0.0,
            time_factor: 1.0,
            period_factor: 1.0,
        }
    }
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// Recency signal for a memory `age_days` old.
pub fn recency(age_days: f64, half_life_days: f64) -> f64 {
    if half_life_days <= 0.0 {
        return 0.0;
    }
    0.5f64.powf(age_days.max(0.0) / half_life_days)
}

/// Normalises raw scores to [0, 1] by dividing by the largest (all zeros stay zero).
pub fn normalise_by_max(raw: &mut [f64]) {
    let max = raw.iter().cloned().fold(0.0f64, f64::max);
    if max > 0.0 {
        for x in raw.iter_mut() {
            *x = (*x / max).clamp(0.0, 1.0);
        }
    }
}

/// The fused score of one memory.
pub fn fuse(w: &FusionWeights, s: &Signals, superseded: bool) -> f64 {
    let base =
        w.lexical * s.lexical + w.semantic * s.semantic + w.graph * s.graph + w.recency * s.recency;
    if superseded {
        base * w.superseded_factor
    } else {
        base
    }
}

/// Given items sorted best first, returns the indices to keep, each with how many later items
/// were folded into it: an item is dropped (and counted for the first kept item it matches)
/// when `same(kept, item)` holds for an item kept before it.
pub fn collapse_duplicates<T>(items: &[T], same: impl Fn(&T, &T) -> bool) -> Vec<(usize, usize)> {
    collapse_duplicates_first(items, usize::MAX, true, same)
}

/// The first `keep` entries of [`collapse_duplicates`]: items are compared with those kept
/// items only, since a later kept item never takes a count from an earlier one. With `count`
/// false the scan stops at the `keep`-th kept item, and the counts are only of the items
/// before it (for a caller that shows no counts).
pub fn collapse_duplicates_first<T>(
    items: &[T],
    keep: usize,
    count: bool,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<(usize, usize)> {
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some((_, folded)) = kept.iter_mut().find(|(k, _)| same(&items[*k], item)) {
            *folded += 1;
        } else if kept.len() < keep {
            kept.push((i, 0));
            if kept.len() == keep && !count {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recency_halves_per_half_life() {
        assert_eq!(recency(0.0, 30.0), 1.0);
        assert!((recency(30.0, 30.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn superseded_memories_are_demoted() {
        let w = FusionWeights::default();
        let s = Signals {
            lexical: 1.0,
            semantic: 0.5,
            graph: 0.5,
            recency: 1.0,
            ..Default::default()
        };
        assert!(fuse(&w, &s, true) < fuse(&w, &s, false));
    }

    #[test]
    fn duplicates_collapse_onto_the_first() {
        let items = ["a", "b", "a", "c", "b"];
        assert_eq!(
            collapse_duplicates(&items, |x, y| x == y),
            vec![(0, 1), (1, 1), (3, 0)]
        );
        // "ab" matches both "a" and "b" kept before it: it counts for the first, "a".
        let words = ["a", "b", "ab"];
        let shares = |x: &&str, y: &&str| x.chars().any(|c| y.contains(c));
        assert_eq!(collapse_duplicates(&words, shares), vec![(0, 1), (1, 0)]);
    }

    proptest! {
        #[test]
        fn the_first_kept_duplicates_are_those_of_the_full_collapse(
            items in proptest::collection::vec(0u8..12, 0..40),
            keep in 0usize..15,
        ) {
            // Items sharing a bit are duplicates: one may match several kept items.
            let same = |a: &u8, b: &u8| a & b != 0 || a == b;
            let full = collapse_duplicates(&items, same);
            let first: Vec<(usize, usize)> = full.iter().copied().take(keep).collect();
            prop_assert_eq!(collapse_duplicates_first(&items, keep, true, same), first.clone());
            let uncounted = collapse_duplicates_first(&items, keep, false, same);
            let ids = |v: &[(usize, usize)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
            prop_assert_eq!(ids(&uncounted), ids(&first));
        }

        #[test]
        fn normalised_scores_lie_in_unit_interval_and_keep_order(mut v in proptest::collection::vec(0.0f64..1e6, 0..50)) {
            let orig = v.clone();
            normalise_by_max(&mut v);
            for x in &v { prop_assert!((0.0..=1.0).contains(x)); }
            for i in 0..v.len() { for j in 0..v.len() {
                if orig[i] < orig[j] { prop_assert!(v[i] <= v[j]); }
            }}
        }

        #[test]
        fn a_stronger_signal_never_lowers_the_score(l in 0.0f64..1.0, g in 0.0f64..1.0, r in 0.0f64..1.0, bump in 0.0f64..1.0) {
            let w = FusionWeights::default();
            let a = fuse(&w, &Signals { lexical: l, graph: g, recency: r, semantic: 0.0, ..Default::default() }, false);
            let b = fuse(&w, &Signals { lexical: (l + bump).min(1.0), graph: g, recency: r, semantic: 0.0, ..Default::default() }, false);
            prop_assert!(b >= a);
        }
    }
}
