//! Concept mentions: which memories mention which concept keys.

use super::*;

impl TextIndex {
    /// Which of `keys` each of `ids` mentions: for each id that mentions at least one, in the
    /// order of `ids`, `each` gets the id and the positions in `keys` of those it mentions,
    /// ascending (recall asks this for hundreds of ids, so nothing is collected). Unknown and
    /// forgotten ids are left out.
    pub fn each_mention_among(
        &self,
        keys: &[&str],
        ids: &[MemoryId],
        mut each: impl FnMut(MemoryId, &[usize]),
    ) {
        let Some(wanted) = KeySet::new(self, keys) else {
            return;
        };
        let mut at: Vec<usize> = Vec::with_capacity(keys.len());
        for id in ids {
            let Some(&ord) = self.by_id.get(id) else {
                continue;
            };
            wanted.mentioned_by(self, ord, &mut at);
            if !at.is_empty() {
                each(*id, &at);
            }
        }
    }

    /// For each of `keys` in turn, its newest live documents passing `filter` (at most
    /// `limit`, as [`Self::mentions`] gives them): `each` gets the key's position, the
    /// document's head and the positions of all `keys` it mentions, ascending (what
    /// [`Self::each_mention_among`] would say of it, without looking its id up). A document
    /// among the newest of several keys is handed over once, at the first of them (it still
    /// takes its place in each key's `limit`).
    pub fn each_mentioning(
        &self,
        keys: &[&str],
        filter: &MemoryFilter,
        limit: usize,
        mut each: impl FnMut(usize, &MemoryHead, &[usize]),
    ) {
        let Some(wanted) = KeySet::new(self, keys) else {
            return;
        };
        let mut at: Vec<usize> = Vec::with_capacity(keys.len());
        // One bit per document: handed over already.
        let mut done = vec![0u64; self.docs.len().div_ceil(64)];
        let everything = filter.is_empty();
        for (i, key) in keys.iter().enumerate() {
            let Some(&c) = self.concept_ids.get(*key) else {
                continue;
            };
            let newest = self.concept_docs[c as usize]
                .iter()
                .rev()
                .filter(|&&o| self.docs[o as usize].alive && (everything || self.passes(filter, o)))
                .take(limit);
            for &ord in newest {
                let (word, bit) = (ord as usize / 64, 1u64 << (ord % 64));
                if done[word] & bit != 0 {
                    continue;
                }
                done[word] |= bit;
                wanted.mentioned_by(self, ord, &mut at);
                each(i, &self.head(ord), &at);
            }
        }
    }

    /// The newest live documents mentioning a concept, at most `limit`, passing `filter`.
    pub fn mentions(&self, key: &str, filter: &MemoryFilter, limit: usize) -> Vec<MemoryHead> {
        let Some(&c) = self.concept_ids.get(key) else {
            return Vec::new();
        };
        self.concept_docs[c as usize]
            .iter()
            .rev()
            .filter(|&&o| self.docs[o as usize].alive && self.passes(filter, o))
            .take(limit)
            .map(|&o| self.head(o))
            .collect()
    }
}
