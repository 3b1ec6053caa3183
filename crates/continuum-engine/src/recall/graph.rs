//! Step 2, graph: concepts named in the query, activation along Hebbian links, the memories
//! mentioning activated concepts; and the link ordering the context block shows.

use super::*;

/// Links a recall shows (the strongest it followed).
pub(super) const MAX_SHOWN_LINKS: usize = 12;

pub(super) struct Activation {
    /// The stored concept, for its display name (none found: the key is shown).
    pub(super) named: Option<Arc<Concept>>,
    pub(super) value: f64,
    pub(super) depth: usize,
}

impl Activation {
    /// The concept's display name, or `key` when it has none.
    pub(super) fn name<'a>(&'a self, key: &'a str) -> &'a str {
        self.named.as_deref().map_or(key, |c| c.name.as_str())
    }
}

/// The first `n` distinct items (by `same`) of `items` ordered by `order`, in that order:
/// what sorting all of them and removing adjacent copies gives, cut after its `n`-th item.
/// `key` must agree with `order` (a larger key comes first; equal keys leave it to `order`),
/// and copies must be equal under `order`.
///
/// Recall follows a hundred links or more and shows a dozen, and many links tie on strength:
/// the best `n` so far are kept in order, and most items are turned away by one comparison of
/// integer keys with the last of them.
pub(super) fn first_distinct<T: Copy>(
    items: Vec<T>,
    n: usize,
    key: impl Fn(&T) -> u128,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    use std::cmp::Ordering::Less;
    let by = |a: &(u128, T), b: &(u128, T)| b.0.cmp(&a.0).then_with(|| order(&a.1, &b.1));
    let mut top: Vec<(u128, T)> = Vec::with_capacity(n + 1);
    for x in items {
        let item = (key(&x), x);
        if top.len() == n && top.last().is_none_or(|last| by(&item, last) != Less) {
            continue;
        }
        // A copy of `item` would sit where it goes.
        let at = top.partition_point(|t| by(t, &item) == Less);
        if at < top.len() && same(&top[at].1, &item.1) {
            continue;
        }
        top.insert(at, item);
        top.truncate(n);
    }
    top.into_iter().map(|(_, x)| x).collect()
}

/// `items` ordered by value (larger first), then by name, cut to the first `keep`. Names are
/// compared only when the values and the names' leading bytes tie: activation ranks a hundred
/// concepts per recall, and many share a value.
pub(super) fn best_named<T: Copy>(
    items: Vec<T>,
    keep: usize,
    value: impl Fn(&T) -> f64,
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut keyed: Vec<(u128, T)> = items
        .into_iter()
        .map(|x| {
            let k =
                (u128::from(ordered_bits(value(&x))) << 64) | u128::from(!prefix_bits(name(&x)));
            (k, x)
        })
        .collect();
    let by = |a: &(u128, T), b: &(u128, T)| b.0.cmp(&a.0).then_with(|| name(&a.1).cmp(name(&b.1)));
    if keep == 0 {
        return Vec::new();
    }
    if keyed.len() > keep {
        keyed.select_nth_unstable_by(keep - 1, by);
        keyed.truncate(keep);
    }
    keyed.sort_unstable_by(by);
    keyed.into_iter().map(|(_, x)| x).collect()
}

/// `x`'s bits in `f64::total_cmp` order, as an unsigned integer.
pub(super) fn ordered_bits(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The first eight bytes of `s` as a big-endian integer (zeros past its end): when two of them
/// differ, the strings compare the same way.
pub(super) fn prefix_bits(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

impl Engine {
    /// Adds to `gathered` the newest memories mentioning each of `keys` (at most the configured
    /// `memories_per_concept` each) that pass `filter`, each with its graph score: the sum of
    /// `values` over all of `keys` it mentions. With the derived index the index reads a
    /// memory's concepts when it lists the memory anyway; without it, the score sums the lists
    /// a memory is in, and `graph_concepts` gets the positions of those keys.
    pub(super) async fn concept_mentions(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        values: &[f64],
        filter: &MemoryFilter,
        gathered: &mut FxHashMap<MemoryId, Gathered>,
        graph_concepts: &mut FxHashMap<MemoryId, Vec<usize>>,
    ) -> Result<()> {
        let per_concept = self.config.graph.memories_per_concept;
        if !self.config.derived_index {
            let at: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let found = self.store.mentions(tenant, &owned, per_concept).await?;
            for (k, h) in found {
                if !filter.matches_head(&h) {
                    continue;
                }
                let Some(&i) = at.get(k.as_str()) else {
                    continue;
                };
                let g = gathered
                    .entry(h.id)
                    .or_insert_with(|| Gathered::of(Candidate::of(&h)));
                *g.graph.get_or_insert(0.0) += values[i];
                graph_concepts.entry(h.id).or_default().push(i);
            }
            return Ok(());
        }
        // `lexical` ran first in this recall, so the index is fresh.
        let slot = self.current_index(tenant)?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        let Some(ix) = guard.as_ref() else {
            return Ok(());
        };
        gathered.reserve(keys.len() * per_concept);
        // Each memory comes once; `gathered` holds nothing else yet (lexical candidates join
        // after), but an entry is still never replaced.
        ix.each_mentioning(keys, filter, per_concept, |_, head, at| {
            gathered.entry(head.id).or_insert_with(|| Gathered {
                graph: Some(at.iter().map(|&j| values[j]).sum()),
                ..Gathered::of(Candidate::of(head))
            });
        });
        Ok(())
    }

    /// [`continuum_index::TextIndex::each_mention_among`] on the tenant's current index (which
    /// `lexical` brought up to date earlier in the same recall).
    pub(super) fn each_mention_among(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        ids: &[MemoryId],
        each: impl FnMut(MemoryId, &[usize]),
    ) -> Result<()> {
        let slot = self.current_index(tenant)?;
        let guard = slot
            .read()
            .map_err(|_| Error::Internal("index lock poisoned".into()))?;
        if let Some(ix) = guard.as_ref() {
            ix.each_mention_among(keys, ids, each);
        }
        Ok(())
    }

    /// Spreads activation from the concepts named in `query`; returns activated concepts and
    /// the strongest links followed (at most [`MAX_SHOWN_LINKS`], effective strengths).
    pub(super) async fn activate(
        &self,
        tenant: &TenantId,
        at: Option<u64>,
        query: &str,
        terms: &[String],
    ) -> Result<(FxHashMap<String, Activation>, Vec<Link>)> {
        let g = self.config.graph;
        let mut keys: Vec<String> = self
            .extractor
            .concepts(query)
            .into_iter()
            .map(|c| c.key)
            .collect();
        for t in terms {
            let k = concept_key(t);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut act: FxHashMap<String, Activation> = FxHashMap::default();
        let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
        for c in self.concepts_at(tenant, at, &asked).await? {
            act.insert(
                c.key.clone(),
                Activation {
                    named: Some(c),
                    value: 1.0,
                    depth: 0,
                },
            );
        }
        let now = self.clock.now();
        // Every link list read, and the links followed as (effective strength, list, link):
        // only the strongest few are copied out at the end.
        let mut lists: Vec<Arc<[Link]>> = Vec::new();
        let mut followed: Vec<(f64, usize, usize)> = Vec::new();
        let mut frontier: Vec<String> = act.keys().cloned().collect();
        for depth in 1..=g.depth {
            if frontier.is_empty() {
                break;
            }
            let read = self
                .neighbours_at(tenant, at, &frontier, g.neighbours_per_concept)
                .await?;
            let first = lists.len();
            lists.extend(read);
            let frontier_set: FxHashSet<&str> = frontier.iter().map(String::as_str).collect();
            let mut reached: FxHashMap<&str, f64> = FxHashMap::default();
            // A link between two frontier concepts is in both their lists: seeing it twice
            // changes no maximum, and the copy in `followed` goes at the end.
            for (n, list) in lists.iter().enumerate().skip(first) {
                for (i, l) in list.iter().enumerate() {
                    let strength = self.config.hebbian.effective(l.strength, l.last_at, now);
                    for (from, to) in [(&l.a, &l.b), (&l.b, &l.a)] {
                        if !frontier_set.contains(from.as_str()) {
                            continue;
                        }
                        let v = act[from].value * strength * g.decay;
                        if act.get(to).is_some_and(|a| a.value >= v) {
                            continue;
                        }
                        let best = reached.entry(to.as_str()).or_insert(0.0);
                        *best = best.max(v);
                    }
                    followed.push((strength, n, i));
                }
            }
            let next = best_named(
                reached.into_iter().collect(),
                g.max_active_concepts,
                |r| r.1,
                |r| r.0,
            );
            // Only the strongest concepts spread further: deeper activation is weak anyway
            // (≤ decay² × strengths) and hubs would otherwise drag in the whole graph.
            let mut spreading = Vec::with_capacity(g.frontier.min(next.len()));
            for (i, (k, value)) in next.into_iter().enumerate() {
                let k = k.to_string();
                if i < g.frontier {
                    spreading.push(k.clone());
                }
                act.insert(
                    k,
                    Activation {
                        named: None,
                        value,
                        depth,
                    },
                );
            }
            frontier = spreading;
        }
        // Display names for concepts reached over links.
        let unnamed: Vec<&str> = act
            .iter()
            .filter(|(_, a)| a.depth > 0)
            .map(|(k, _)| k.as_str())
            .collect();
        let named = self.concepts_at(tenant, at, &unnamed).await?;
        for c in named {
            if let Some(a) = act.get_mut(c.key.as_str()) {
                a.named = Some(c);
            }
        }
        let link = |&(_, n, i): &(f64, usize, usize)| &lists[n][i];
        let order = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            y.0.total_cmp(&x.0).then_with(|| {
                let (a, b) = (link(x), link(y));
                a.a.cmp(&b.a).then_with(|| a.b.cmp(&b.b))
            })
        };
        let same = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            let (a, b) = (link(x), link(y));
            a.a == b.a && a.b == b.b
        };
        // Stronger first, then by the first key's leading bytes (smaller first).
        let key = |f: &(f64, usize, usize)| {
            (u128::from(ordered_bits(f.0)) << 64) | u128::from(!prefix_bits(&link(f).a))
        };
        let followed = first_distinct(followed, MAX_SHOWN_LINKS, key, order, same);
        let shown = followed
            .iter()
            .take(MAX_SHOWN_LINKS)
            .map(|f| Link {
                strength: f.0,
                ..link(f).clone()
            })
            .collect();
        Ok((act, shown))
    }
}
