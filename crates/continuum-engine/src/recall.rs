//! Reads that rank: `recall` (hybrid retrieval plus a context block) and `search` (full text).
//!
//! Recall, step by step:
//! 1. lexical: BM25 over memory text for the query's search terms;
//! 2. graph: concepts named in the query are looked up; activation spreads along Hebbian links
//!    (`parent × strength × decay` per step, at most `depth` steps) and pulls in the newest
//!    memories mentioning each activated concept, scored by the sum of their activations;
//! 3. semantic (with an embedder): the cosine of the query's vector with each embedded
//!    memory's, averaged with a share of its session neighbours'; recency: `0.5^(age / half-life)`;
//! 4. each signal is normalised to [0, 1] and fused with configured weights; superseded memories
//!    are demoted; among the best few, a question about when favours memories that place
//!    something in time (`temporal_boost`), and one naming a date, month or year favours the
//!    memories made then (`period_boost`); near-duplicates collapse onto the best copy;
//! 5. the best memories are assembled into a context block within the token budget.

use crate::Engine;
use crate::cache::RecallText;
use continuum_core::context::{ShownLink, assemble};
use continuum_core::extract::concept_key;
use continuum_core::rank::{Signals, collapse_duplicates_first, fuse, recency};
use continuum_core::store::{Concept, Link, MemoryFilter, MemoryHead, Scored};
use continuum_core::text::{may_reach_jaccard, search_terms, signature_jaccard, words};
use continuum_core::{Error, Memory, MemoryId, Result, SessionId, Source, TenantId, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

mod graph;
mod lexical;
mod select;
mod semantic;
mod shape;
mod types;

use graph::*;
use select::*;
pub use types::*;

#[cfg(test)]
mod tests {
    use super::{best_named, first_distinct, ordered_bits, prefix_bits};
    use proptest::prelude::*;

    /// Concept keys that share long prefixes, so the integer keys tie and `order` decides.
    const NAMES: [&str; 6] = ["alp", "alpha", "alphabet-a", "alphabet-b", "b", "beta"];

    proptest! {
        #[test]
        fn the_first_distinct_items_are_those_of_a_full_sort(
            pairs in proptest::collection::vec((0usize..6, 0usize..6), 0..300),
            n in 1usize..20,
        ) {
            // A link (a, b) has one strength however often it was followed.
            let strength = |a: usize, b: usize| ((a * 7 + b * 3) % 5) as f64 / 4.0;
            let items: Vec<(f64, usize, usize)> =
                pairs.iter().map(|&(a, b)| (strength(a, b), a, b)).collect();
            let order = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
                y.0.total_cmp(&x.0)
                    .then(NAMES[x.1].cmp(NAMES[y.1]))
                    .then(NAMES[x.2].cmp(NAMES[y.2]))
            };
            let key = |x: &(f64, usize, usize)| {
                (u128::from(ordered_bits(x.0)) << 64) | u128::from(!prefix_bits(NAMES[x.1]))
            };
            let same = |x: &(f64, usize, usize), y: &(f64, usize, usize)| x.1 == y.1 && x.2 == y.2;
            let mut full = items.clone();
            full.sort_by(order);
            full.dedup_by(|x, y| same(x, y));
            let got = first_distinct(items, n, key, order, same);
            full.truncate(n);
            prop_assert_eq!(got, full);
        }

        #[test]
        fn best_named_is_the_head_of_a_full_sort(
            raw in proptest::collection::btree_map("(alphabet-|b)[a-c]{0,3}", 0u8..4, 0..60),
            keep in 0usize..70,
        ) {
            // Distinct names (as the keys of a map), few values: ties are common.
            let items: Vec<(&str, f64)> =
                raw.iter().map(|(k, v)| (k.as_str(), f64::from(*v) / 2.0)).collect();
            let mut full = items.clone();
            full.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            full.truncate(keep);
            prop_assert_eq!(best_named(items, keep, |x| x.1, |x| x.0), full);
        }

        #[test]
        fn integer_keys_order_as_their_sources(
            x in proptest::num::f64::ANY,
            y in proptest::num::f64::ANY,
            a in "[a-c]{0,10}",
            b in "[a-c]{0,10}",
        ) {
            prop_assert_eq!(ordered_bits(x).cmp(&ordered_bits(y)), x.total_cmp(&y));
            let (pa, pb) = (prefix_bits(&a), prefix_bits(&b));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }
}
