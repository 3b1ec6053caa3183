//! Session neighbours: a memory's place in its session, and the memories one or two places away.

use super::*;

impl TextIndex {
    /// These documents and their live session neighbours up to `steps` places away, without
    /// repeats (the scores [`Self::semantic_rerank`] needs). Unknown ids are left out.
    pub fn with_session_neighbours(&self, ids: &[MemoryId], steps: usize) -> Vec<MemoryId> {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut out = Vec::new();
        for id in ids {
            let Some(&d) = self.by_id.get(id) else {
                continue;
            };
            let around = (1..=steps as i32).flat_map(|s| [-s, s]);
            for o in std::iter::once(d).chain(around.filter_map(|o| self.session_neighbour(d, o))) {
                if self.lens[o as usize] != DEAD && seen.insert(o) {
                    out.push(self.docs[o as usize].id);
                }
            }
        }
        out
    }

    /// Inserts `ord` into its session's time order and renumbers positions when it did not go
    /// last (imports may arrive out of order).
    pub(crate) fn place_in_session(&mut self, slot: u32, ord: u32, at: continuum_core::Timestamp) {
        let list = &mut self.sessions[slot as usize];
        let docs = &self.docs;
        let key = |o: u32| (docs[o as usize].created_at, o);
        let at_end = list.last().is_none_or(|&last| key(last) <= (at, ord));
        let i = if at_end {
            list.push(ord);
            let pos = (list.len() - 1) as u32;
            self.places[ord as usize] = Some((slot, pos));
            pos as usize
        } else {
            let i = list.partition_point(|&o| key(o) < (at, ord));
            list.insert(i, ord);
            let list = self.sessions[slot as usize].clone();
            for (pos, o) in list.into_iter().enumerate().skip(i) {
                self.places[o as usize] = Some((slot, pos as u32));
            }
            i
        };
        // Only the documents up to two places around the new one have other neighbours now.
        let list = &self.sessions[slot as usize];
        let at = |p: i64| {
            usize::try_from(p)
                .ok()
                .and_then(|p| list.get(p).copied())
                .unwrap_or(NO_DOC)
        };
        for p in i.saturating_sub(2)..(i + 3).min(list.len()) {
            let p = p as i64;
            self.near[list[p as usize] as usize] = [at(p - 2), at(p - 1), at(p + 1), at(p + 2)];
        }
    }

    /// The document `offset` places after (or before, when negative) `ord` in its session.
    pub(crate) fn session_neighbour(&self, ord: u32, offset: i32) -> Option<u32> {
        if let Some(i) = near_slot(offset) {
            let n = self.near[ord as usize][i];
            return (n != NO_DOC).then_some(n);
        }
        let (slot, pos) = self.places[ord as usize]?;
        let list = &self.sessions[slot as usize];
        let p = pos as i64 + offset as i64;
        if p < 0 {
            return None;
        }
        list.get(p as usize).copied()
    }
}
