//! Top-k selection by packed (score, document) keys: the running best, the largest keys, BM25F seeds,
//! and a reusable set of document numbers.

use super::*;

/// A document's place in a ranking as one integer: its score's bits in `f32::total_cmp` order
/// above, the document below, so that larger keys rank first (higher score, then the later
/// document). Selecting and sorting plain integers beats comparing through the score array.
pub(crate) fn rank_key(score: f32, doc: u32) -> u64 {
    let bits = score.to_bits();
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(ordered) << 32) | u64::from(doc)
}

/// The score a [`rank_key`] was made of.
pub(crate) fn key_score(key: u64) -> f32 {
    let ordered = (key >> 32) as u32;
    f32::from_bits(if ordered >> 31 == 1 {
        ordered & 0x7fff_ffff
    } else {
        !ordered
    })
}

/// The best `limit` of `docs` by `scores` (score, then the later document), best first.
pub(crate) fn top_docs(docs: impl Iterator<Item = u32>, scores: &[f32], limit: usize) -> Vec<u32> {
    let mut top = top_keys(docs, scores, limit);
    top.sort_unstable_by(|a, b| b.cmp(a));
    top.into_iter().map(|k| k as u32).collect()
}

/// The [`rank_key`]s of the best `limit` of `docs` by `scores`, in no particular order.
pub(crate) fn top_keys(docs: impl Iterator<Item = u32>, scores: &[f32], limit: usize) -> Vec<u64> {
    top_keys_of(docs.map(|d| rank_key(scores[d as usize], d)), limit)
}

/// The largest `limit` of `keys` (distinct [`rank_key`]s), in no particular order.
pub(crate) fn top_keys_of(keys: impl Iterator<Item = u64>, limit: usize) -> Vec<u64> {
    if limit > HEAP_LIMIT {
        return largest(keys.collect(), limit);
    }
    let mut top = TopKeys::new(limit);
    for key in keys {
        top.offer(key);
    }
    top.into_keys()
}

/// The largest `limit` of `all`, in no particular order.
pub(crate) fn largest(mut all: Vec<u64>, limit: usize) -> Vec<u64> {
    if all.len() > limit {
        all.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
        all.truncate(limit);
    }
    all
}

/// The largest `limit` of the [`rank_key`]s offered to it (keys are distinct: they hold the
/// document, so the set is exact).
pub(crate) struct TopKeys {
    pub(crate) limit: usize,
    /// Up to [`HEAP_LIMIT`]: the best keys so far, smallest on top.
    pub(crate) heap: std::collections::BinaryHeap<std::cmp::Reverse<u64>>,
    /// The key on top once the heap is full (a key must beat it to enter), `u64::MAX` before.
    pub(crate) least: u64,
    /// Above [`HEAP_LIMIT`]: every key, selected from at the end.
    pub(crate) all: Vec<u64>,
}

impl TopKeys {
    pub(crate) fn new(limit: usize) -> Self {
        TopKeys {
            limit,
            heap: std::collections::BinaryHeap::with_capacity(limit.min(HEAP_LIMIT)),
            least: u64::MAX,
            all: Vec::new(),
        }
    }

    /// Most keys are turned away by one comparison.
    #[inline(always)]
    pub(crate) fn offer(&mut self, key: u64) {
        use std::cmp::Reverse;
        if self.limit > HEAP_LIMIT {
            self.all.push(key);
        } else if key > self.least {
            if let Some(mut top) = self.heap.peek_mut() {
                *top = Reverse(key);
            }
            self.least = self.heap.peek().map_or(u64::MAX, |k| k.0);
        } else if self.heap.len() < self.limit {
            self.heap.push(Reverse(key));
            if self.heap.len() == self.limit {
                self.least = self.heap.peek().map_or(u64::MAX, |k| k.0);
            }
        }
    }

    pub(crate) fn into_keys(self) -> Vec<u64> {
        if self.limit > HEAP_LIMIT {
            largest(self.all, self.limit)
        } else {
            self.heap.into_iter().map(|k| k.0).collect()
        }
    }
}

/// Up to this many best documents, [`top_docs`] keeps a heap of them; beyond, a selection over
/// all of them is cheaper (measured with `bench/wrk/recall-instr.sh`: results want 60, BM25F
/// seeds 480).
pub(crate) const HEAP_LIMIT: usize = 128;

/// The strongest of the `touched` documents (at least 256, or 8 per result wanted): the ones
/// whose session neighbours are worth looking at. Ties go to the later document. In no
/// particular order: the scores computed for them do not depend on it.
pub(crate) fn seeds(touched: &[u32], scores: &[f32], limit: usize) -> Vec<u32> {
    let wanted = (limit * 8).max(256);
    if touched.len() <= wanted {
        return touched.to_vec();
    }
    top_keys(touched.iter().copied(), scores, wanted)
        .into_iter()
        .map(|k| k as u32)
        .collect()
}

/// A few dozen concept keys, by number: each key's position among those asked for, in an
/// array indexed by concept number, so that a document's concepts are looked up one load each.
/// The array stays with the thread and is cleared entry by entry when the set is dropped.
pub(crate) struct KeySet {
    /// Concept numbers asked for (their entries in `at` are the ones to clear).
    pub(crate) wanted: Vec<u32>,
    /// Per concept number, its key's position, or [`KeySet::NONE`].
    pub(crate) at: Vec<u32>,
}

thread_local! {
    /// The arrays of dropped key sets, every entry `KeySet::NONE`.
    static KEY_POSITIONS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl KeySet {
    const NONE: u32 = u32::MAX;

    /// None when the index knows none of `keys`.
    pub(crate) fn new(ix: &TextIndex, keys: &[&str]) -> Option<Self> {
        let found: Vec<(u32, usize)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| ix.concept_ids.get(*k).map(|&c| (c, i)))
            .collect();
        if found.is_empty() {
            return None;
        }
        let mut at = KEY_POSITIONS.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if at.len() < ix.concept_ids.len() {
            at.resize(ix.concept_ids.len(), Self::NONE);
        }
        let mut wanted = Vec::with_capacity(found.len());
        for (c, i) in found {
            // A key named twice keeps its first position.
            if at[c as usize] == Self::NONE {
                at[c as usize] = i as u32;
                wanted.push(c);
            }
        }
        Some(KeySet { wanted, at })
    }

    /// Sets `at` to the positions of the keys document `ord` mentions, ascending.
    pub(crate) fn mentioned_by(&self, ix: &TextIndex, ord: u32, at: &mut Vec<usize>) {
        at.clear();
        for &c in ix.concepts_of(ord) {
            let i = self.at[c as usize];
            if i != Self::NONE {
                at.push(i as usize);
            }
        }
        at.sort_unstable();
    }
}

impl Drop for KeySet {
    fn drop(&mut self) {
        for &c in &self.wanted {
            self.at[c as usize] = Self::NONE;
        }
        let at = std::mem::take(&mut self.at);
        KEY_POSITIONS.with(|p| {
            let mut kept = p.borrow_mut();
            if kept.len() < at.len() {
                *kept = at;
            }
        });
    }
}
