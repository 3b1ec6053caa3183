//! Reflection over a concept graph: what the links between an agent's concepts say beyond
//! one concept's neighbours.
//!
//! The graph is undirected and weighted (a link's strength, in (0, 1]); every algorithm here is
//! deterministic (ties broken by concept key, randomness only from a given seed), has no I/O,
//! and is bounded by the size of the graph it is handed. The engine loads a tenant's strongest
//! links, hands them here and names the results.
//!
//! - [`clusters`]: groups of concepts more linked among themselves than to the rest (the
//!   Louvain method), with the partition's [`modularity`].
//! - [`betweenness`]: how often a concept lies on the shortest paths between others (Brandes'
//!   algorithm, a link's length being 1 / strength): high for concepts that join groups.
//! - [`two_hop`]: pairs of concepts that are not linked but share neighbours, scored by the
//!   strength of the paths through them: associations worth checking.
//! - [`dream`]: a seeded, reproducible weighted random walk.
//! - [`contradiction`]: whether two beliefs contradict each other, by whole words and phrases.
//! - [`calibration`]: how well stated confidences match outcomes (Brier score, reliability
//!   table, expected calibration error), the arithmetic behind claims and their verification.

pub mod calibration;
pub mod contradiction;

use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// An undirected weighted graph over concept keys.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    keys: Vec<String>,
    index: HashMap<String, usize>,
    /// Each node's neighbours and link strengths, sorted by neighbour key.
    adj: Vec<Vec<(usize, f64)>>,
    edges: usize,
}

impl Graph {
    /// A graph from links `(a, b, strength)`. Self-links and links whose strength is not a
    /// positive finite number are left out; a pair given twice keeps its larger strength.
    pub fn new(links: impl IntoIterator<Item = (String, String, f64)>) -> Graph {
        let mut pairs: BTreeMap<(String, String), f64> = BTreeMap::new();
        for (a, b, w) in links {
            if a == b || !w.is_finite() || w <= 0.0 {
                continue;
            }
            let key = if a < b { (a, b) } else { (b, a) };
            let e = pairs.entry(key).or_insert(w);
            *e = e.max(w);
        }
        let mut g = Graph::default();
        for ((a, b), w) in pairs {
            let (i, j) = (g.node(a), g.node(b));
            g.adj[i].push((j, w));
            g.adj[j].push((i, w));
            g.edges += 1;
        }
        for list in &mut g.adj {
            list.sort_by(|x, y| g.keys[x.0].cmp(&g.keys[y.0]));
        }
        g
    }

    fn node(&mut self, key: String) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.keys.len();
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        self.adj.push(Vec::new());
        i
    }

    /// Concepts in the graph.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Links in the graph.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    pub fn key(&self, node: usize) -> &str {
        &self.keys[node]
    }

    pub fn find(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// A node's neighbours and link strengths, by neighbour key.
    pub fn neighbours(&self, node: usize) -> &[(usize, f64)] {
        &self.adj[node]
    }

    /// The strength of the link between two nodes, if they are linked.
    pub fn strength(&self, a: usize, b: usize) -> Option<f64> {
        self.adj[a]
            .binary_search_by(|(n, _)| self.keys[*n].cmp(&self.keys[b]))
            .ok()
            .map(|i| self.adj[a][i].1)
    }

    /// The sum of a node's link strengths.
    pub fn degree(&self, node: usize) -> f64 {
        self.adj[node].iter().map(|(_, w)| w).sum()
    }

    /// The median link strength (0 for a graph without links).
    pub fn median_strength(&self) -> f64 {
        let mut all: Vec<f64> = self
            .adj
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.iter().filter(move |(j, _)| *j > i).map(|(_, w)| *w))
            .collect();
        if all.is_empty() {
            return 0.0;
        }
        all.sort_by(f64::total_cmp);
        let m = all.len() / 2;
        if all.len() % 2 == 1 {
            all[m]
        } else {
            (all[m - 1] + all[m]) / 2.0
        }
    }
}

/// Groups of concepts, by the Louvain method (Blondel et al. 2008): every concept starts in a
/// group of its own and, in key order, moves to the neighbouring group that raises the
/// partition's [`modularity`] most, until no move does; the groups then become the nodes of a
/// smaller graph and the same is done again, until nothing merges. Returns each node's group,
/// numbered from 0 by decreasing size (ties by the smallest key in the group); a concept
/// without links is a group of its own.
pub fn clusters(g: &Graph) -> Vec<usize> {
    let n = g.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| g.keys[*a].cmp(&g.keys[*b]));
    // The graph of the current level: links between distinct nodes, and each node's weight of
    // links inside it (a self-loop).
    let mut adj: Vec<Vec<(usize, f64)>> = g.adj.clone();
    let mut inside = vec![0.0; n];
    let mut member: Vec<usize> = (0..n).collect();
    let mut level_order = order.clone();
    for _level in 0..32 {
        let k = adj.len();
        let deg: Vec<f64> = (0..k)
            .map(|v| adj[v].iter().map(|(_, w)| w).sum::<f64>() + 2.0 * inside[v])
            .collect();
        let m2: f64 = deg.iter().sum();
        if m2 <= 0.0 {
            break;
        }
        let mut comm: Vec<usize> = (0..k).collect();
        let mut tot = deg.clone();
        let mut improved = false;
        for _round in 0..100 {
            let mut moved = false;
            for &v in &level_order {
                let own = comm[v];
                let mut toward: BTreeMap<usize, f64> = BTreeMap::new();
                for &(u, w) in &adj[v] {
                    *toward.entry(comm[u]).or_default() += w;
                }
                tot[own] -= deg[v];
                let gain = |c: usize, w: f64| w - tot[c] * deg[v] / m2;
                let mut best = own;
                let mut best_gain = gain(own, toward.get(&own).copied().unwrap_or(0.0));
                for (&c, &w) in &toward {
                    let x = gain(c, w);
                    if x > best_gain + 1e-12 {
                        best = c;
                        best_gain = x;
                    }
                }
                tot[best] += deg[v];
                comm[v] = best;
                if best != own {
                    moved = true;
                    improved = true;
                }
            }
            if !moved {
                break;
            }
        }
        if !improved {
            break;
        }
        // The groups become the next level's nodes, numbered in the order met.
        let mut ids: BTreeMap<usize, usize> = BTreeMap::new();
        for &v in &level_order {
            let next = ids.len();
            ids.entry(comm[v]).or_insert(next);
        }
        let kk = ids.len();
        let mut links: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); kk];
        let mut within = vec![0.0; kk];
        for v in 0..k {
            let cv = ids[&comm[v]];
            within[cv] += inside[v];
            for &(u, w) in &adj[v] {
                let cu = ids[&comm[u]];
                if cu == cv {
                    within[cv] += w / 2.0;
                } else {
                    *links[cv].entry(cu).or_default() += w;
                }
            }
        }
        for m in member.iter_mut() {
            *m = ids[&comm[*m]];
        }
        adj = links.into_iter().map(|l| l.into_iter().collect()).collect();
        inside = within;
        level_order = (0..kk).collect();
        if kk == k {
            break;
        }
    }
    // Renumber: largest group first, then by its smallest key.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (v, m) in member.iter().enumerate() {
        groups.entry(*m).or_default().push(v);
    }
    let mut list: Vec<Vec<usize>> = groups.into_values().collect();
    for members in &mut list {
        members.sort_by(|a, b| g.keys[*a].cmp(&g.keys[*b]));
    }
    list.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then_with(|| g.keys[a[0]].cmp(&g.keys[b[0]]))
    });
    let mut out = vec![0; n];
    for (i, members) in list.iter().enumerate() {
        for &v in members {
            out[v] = i;
        }
    }
    out
}

/// Newman's weighted modularity of a partition, in [-0.5, 1): above about 0.3, the groups are
/// clearly more linked inside than between.
pub fn modularity(g: &Graph, group: &[usize]) -> f64 {
    let two_m: f64 = (0..g.len()).map(|v| g.degree(v)).sum();
    if two_m == 0.0 {
        return 0.0;
    }
    let groups = group.iter().copied().max().map_or(0, |m| m + 1);
    let mut inside = vec![0.0; groups];
    let mut total = vec![0.0; groups];
    for v in 0..g.len() {
        total[group[v]] += g.degree(v);
        for &(u, w) in &g.adj[v] {
            if group[u] == group[v] {
                inside[group[v]] += w;
            }
        }
    }
    (0..groups)
        .map(|c| inside[c] / two_m - (total[c] / two_m).powi(2))
        .sum()
}

/// Betweenness centrality of every node (Brandes 2001), a link's length being 1 / strength,
/// normalised by the number of pairs of other nodes, so in [0, 1]. Exact: one shortest-path
/// search from every node; see [`betweenness_estimate`] for large graphs.
pub fn betweenness(g: &Graph) -> Vec<f64> {
    betweenness_estimate(g, usize::MAX)
}

/// [`betweenness`] from at most `pivots` sources (Brandes and Pich 2007): every node when the
/// graph has no more, else nodes evenly spaced in key order, the sums scaled by
/// nodes / pivots. The cost is pivots × links × log(nodes) instead of nodes × links × log(nodes).
pub fn betweenness_estimate(g: &Graph, pivots: usize) -> Vec<f64> {
    let n = g.len();
    let mut cb = vec![0.0; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| g.keys[*a].cmp(&g.keys[*b]));
    let sources: Vec<usize> = if n <= pivots.max(1) {
        order
    } else {
        let k = pivots.max(1);
        (0..k).map(|i| order[i * n / k]).collect()
    };
    let scale = n as f64 / sources.len().max(1) as f64;
    #[derive(PartialEq)]
    struct Item(f64, usize);
    impl Eq for Item {}
    impl PartialOrd for Item {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Item {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
        }
    }
    const EPS: f64 = 1e-12;
    for &s in &sources {
        let mut stack = Vec::with_capacity(n);
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut sigma = vec![0.0f64; n];
        let mut dist = vec![f64::INFINITY; n];
        sigma[s] = 1.0;
        dist[s] = 0.0;
        let mut heap = BinaryHeap::new();
        heap.push(Item(0.0, s));
        let mut done = vec![false; n];
        while let Some(Item(d, v)) = heap.pop() {
            if done[v] || d > dist[v] + EPS {
                continue;
            }
            done[v] = true;
            stack.push(v);
            for &(w, strength) in &g.adj[v] {
                let nd = dist[v] + 1.0 / strength;
                if nd < dist[w] - EPS {
                    dist[w] = nd;
                    sigma[w] = sigma[v];
                    preds[w].clear();
                    preds[w].push(v);
                    heap.push(Item(nd, w));
                } else if (nd - dist[w]).abs() <= EPS && !done[w] {
                    sigma[w] += sigma[v];
                    preds[w].push(v);
                }
            }
        }
        let mut delta = vec![0.0; n];
        while let Some(w) = stack.pop() {
            for &v in &preds[w] {
                delta[v] += sigma[v] / sigma[w] * (1.0 + delta[w]);
            }
            if w != s {
                cb[w] += delta[w];
            }
        }
    }
    // Each pair was counted from both ends.
    let pairs = if n > 2 {
        ((n - 1) * (n - 2)) as f64
    } else {
        1.0
    };
    cb.iter().map(|c| c * scale / pairs).collect()
}

/// A pair of concepts that are not linked but share neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub a: usize,
    pub b: usize,
    /// The sum, over shared neighbours v, of strength(a, v) × strength(v, b).
    pub score: f64,
    /// The shared neighbours, strongest path first.
    pub via: Vec<usize>,
}

/// The best `limit` unlinked pairs by [`Hypothesis::score`]; only each concept's `fanout`
/// strongest links are followed (bounding the work on hubs).
pub fn two_hop(g: &Graph, limit: usize, fanout: usize) -> Vec<Hypothesis> {
    let mut paths: HashMap<(usize, usize), Vec<(f64, usize)>> = HashMap::new();
    for v in 0..g.len() {
        let mut near: Vec<(usize, f64)> = g.adj[v].clone();
        near.sort_by(|x, y| y.1.total_cmp(&x.1).then(g.keys[x.0].cmp(&g.keys[y.0])));
        near.truncate(fanout);
        for (i, &(a, wa)) in near.iter().enumerate() {
            for &(b, wb) in &near[i + 1..] {
                if g.strength(a, b).is_some() {
                    continue;
                }
                let key = if g.keys[a] < g.keys[b] {
                    (a, b)
                } else {
                    (b, a)
                };
                paths.entry(key).or_default().push((wa * wb, v));
            }
        }
    }
    let mut out: Vec<Hypothesis> = paths
        .into_iter()
        .map(|((a, b), mut via)| {
            via.sort_by(|x, y| y.0.total_cmp(&x.0).then(g.keys[x.1].cmp(&g.keys[y.1])));
            Hypothesis {
                a,
                b,
                score: via.iter().map(|(s, _)| s).sum(),
                via: via.into_iter().map(|(_, v)| v).collect(),
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| g.keys[x.a].cmp(&g.keys[y.a]))
            .then_with(|| g.keys[x.b].cmp(&g.keys[y.b]))
    });
    out.truncate(limit);
    out
}

/// SplitMix64: a small, well-mixed generator; the same seed gives the same walk everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index drawn with probability proportional to `weights` (None if they sum to 0).
    pub fn pick(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut x = self.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(i);
            }
            x -= w;
        }
        weights.iter().rposition(|w| *w > 0.0)
    }
}

/// How a walk reached a concept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Where the walk began.
    Start,
    /// Along a link.
    Link,
    /// A jump to a concept not linked to the last one (the walk was at a dead end).
    Jump,
}

/// One step of a [`dream`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub node: usize,
    pub by: Move,
    /// The link's strength, for [`Move::Link`].
    pub strength: Option<f64>,
    /// A link weaker than the graph's median link.
    pub weak: bool,
    /// The step at which the walk first visited this concept, if it had (a cycle closes).
    pub returns_to: Option<usize>,
}

/// Dreaming: a walk of `steps` moves from `start` (or a concept drawn in proportion to its
/// total link strength). Each move follows a link drawn with probability proportional to
/// strength^(1 / temperature), never straight back along the link it came by; low
/// temperatures keep to strong links, high ones wander along weak ones. At a dead end (no link
/// but the one it came by) the walk jumps to a concept drawn like the start, preferring ones
/// not visited yet.
pub fn dream(
    g: &Graph,
    start: Option<usize>,
    steps: usize,
    temperature: f64,
    seed: u64,
) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let n = g.len();
    if n == 0 {
        return Vec::new();
    }
    let t = temperature.clamp(0.01, 100.0);
    let median = g.median_strength();
    let degrees: Vec<f64> = (0..n).map(|v| g.degree(v).max(1e-9)).collect();
    let first = start.unwrap_or_else(|| rng.pick(&degrees).unwrap_or(0));
    let mut first_visit: HashMap<usize, usize> = HashMap::from([(first, 0)]);
    let mut out = vec![Step {
        node: first,
        by: Move::Start,
        strength: None,
        weak: false,
        returns_to: None,
    }];
    let mut prev: Option<usize> = None;
    let mut at = first;
    for i in 1..=steps {
        // Never straight back: a concept whose only link is the one the walk came by is a
        // dead end.
        let links: Vec<(usize, f64)> = g.adj[at]
            .iter()
            .copied()
            .filter(|(u, _)| Some(*u) != prev)
            .collect();
        let (next, by, strength) = if links.is_empty() {
            let weights: Vec<f64> = (0..n)
                .map(|v| {
                    if v == at {
                        0.0
                    } else if first_visit.contains_key(&v) {
                        degrees[v] * 1e-3
                    } else {
                        degrees[v]
                    }
                })
                .collect();
            match rng.pick(&weights) {
                Some(v) => (v, Move::Jump, None),
                None => break,
            }
        } else {
            let weights: Vec<f64> = links.iter().map(|(_, w)| w.powf(1.0 / t)).collect();
            let k = rng.pick(&weights).unwrap_or(0);
            (links[k].0, Move::Link, Some(links[k].1))
        };
        let returns_to = first_visit.get(&next).copied();
        first_visit.entry(next).or_insert(i);
        out.push(Step {
            node: next,
            by,
            strength,
            weak: strength.is_some_and(|s| s < median),
            returns_to,
        });
        prev = (by == Move::Link).then_some(at);
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(links: &[(&str, &str, f64)]) -> Graph {
        Graph::new(
            links
                .iter()
                .map(|(a, b, w)| (a.to_string(), b.to_string(), *w)),
        )
    }

    /// Two triangles of strong links joined through "bridge" by weak ones.
    fn barbell() -> Graph {
        graph(&[
            ("a1", "a2", 0.9),
            ("a2", "a3", 0.8),
            ("a1", "a3", 0.85),
            ("b1", "b2", 0.9),
            ("b2", "b3", 0.8),
            ("b1", "b3", 0.85),
            ("a1", "bridge", 0.2),
            ("bridge", "b1", 0.2),
        ])
    }

    fn node(g: &Graph, k: &str) -> usize {
        g.find(k).unwrap()
    }

    #[test]
    fn a_graph_drops_self_links_and_bad_strengths_and_keeps_the_stronger_duplicate() {
        let g = graph(&[
            ("x", "x", 0.5),
            ("x", "y", f64::NAN),
            ("x", "y", -1.0),
            ("x", "z", 0.3),
            ("z", "x", 0.6),
        ]);
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.strength(node(&g, "x"), node(&g, "z")), Some(0.6));
        assert_eq!(g.strength(node(&g, "z"), node(&g, "x")), Some(0.6));
        assert!(g.find("y").is_none());
        assert_eq!(g.median_strength(), 0.6);
    }

    #[test]
    fn two_triangles_are_two_clusters_with_high_modularity() {
        let g = barbell();
        let c = clusters(&g);
        let same = |x: &str, y: &str| c[node(&g, x)] == c[node(&g, y)];
        assert!(same("a1", "a2") && same("a2", "a3"));
        assert!(same("b1", "b2") && same("b2", "b3"));
        assert!(!same("a1", "b1"));
        let q = modularity(&g, &c);
        assert!(q > 0.3, "modularity {q}");
        // Everything in one group scores 0.
        assert!(modularity(&g, &vec![0; g.len()]).abs() < 1e-12);
    }

    #[test]
    fn two_groups_joined_by_a_triangle_of_weak_links_stay_two() {
        // What two repeated turns and one turn mentioning a concept of each group give.
        let g = graph(&[
            ("kafka", "flink", 0.2),
            ("kafka", "clickhouse", 0.2),
            ("flink", "clickhouse", 0.2),
            ("terraform", "postgres", 0.2),
            ("terraform", "redis", 0.2),
            ("postgres", "redis", 0.2),
            ("grafana", "clickhouse", 0.1),
            ("grafana", "postgres", 0.1),
            ("clickhouse", "postgres", 0.1),
        ]);
        let c = clusters(&g);
        let same = |x: &str, y: &str| c[node(&g, x)] == c[node(&g, y)];
        assert!(same("kafka", "flink") && same("flink", "clickhouse"));
        assert!(same("terraform", "postgres") && same("postgres", "redis"));
        assert!(!same("kafka", "terraform"));
        assert!(modularity(&g, &c) > 0.2, "{}", modularity(&g, &c));
    }

    #[test]
    fn modularity_matches_a_hand_computed_value() {
        // Two disjoint links, each its own group: Q = 2 × (2/4 − (2/4)²) = 0.5.
        let g = graph(&[("p", "q", 1.0), ("r", "s", 1.0)]);
        let c = clusters(&g);
        assert_ne!(c[node(&g, "p")], c[node(&g, "r")]);
        assert!((modularity(&g, &c) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_bridge_has_the_highest_betweenness() {
        let g = barbell();
        let b = betweenness(&g);
        // Of the 15 pairs of other nodes, the bridge carries the 9 between the triangles; a1
        // carries the 8 from a2 or a3 to the bridge's side; a2 carries none (a2–a3 is direct).
        assert!((b[node(&g, "bridge")] - 9.0 / 15.0).abs() < 1e-12, "{b:?}");
        assert!((b[node(&g, "a1")] - 8.0 / 15.0).abs() < 1e-12, "{b:?}");
        assert!((b[node(&g, "b1")] - 8.0 / 15.0).abs() < 1e-12, "{b:?}");
        assert_eq!(b[node(&g, "a2")], 0.0);
    }

    #[test]
    fn betweenness_of_a_path_matches_hand_computed_values() {
        // x — y — z: y lies on the one shortest path between x and z: 1 pair of the 1 pair of
        // other nodes, so 1.0; the ends lie on none.
        let g = graph(&[("x", "y", 0.5), ("y", "z", 0.5)]);
        let b = betweenness(&g);
        assert!((b[node(&g, "y")] - 1.0).abs() < 1e-12, "{b:?}");
        assert_eq!(b[node(&g, "x")], 0.0);
        // A strong detour is shorter than a weak direct link: x–z at 0.1 (length 10) against
        // x–y–z at 0.5 + 0.5 (length 4): y still carries the pair.
        let g = graph(&[("x", "y", 0.5), ("y", "z", 0.5), ("x", "z", 0.1)]);
        let b = betweenness(&g);
        assert!((b[node(&g, "y")] - 1.0).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn the_estimate_from_every_node_is_exact_and_from_fewer_is_close_on_a_path() {
        let g = barbell();
        assert_eq!(betweenness_estimate(&g, 100), betweenness(&g));
        // A long path: the middle carries the most whatever the pivots.
        let keys: Vec<String> = (0..41).map(|i| format!("n{i:02}")).collect();
        let g = Graph::new(keys.windows(2).map(|w| (w[0].clone(), w[1].clone(), 0.5)));
        let exact = betweenness(&g);
        let est = betweenness_estimate(&g, 10);
        let mid = node(&g, "n20");
        assert!(
            (est[mid] - exact[mid]).abs() / exact[mid] < 0.15,
            "{} vs {}",
            est[mid],
            exact[mid]
        );
        assert_eq!(est[node(&g, "n00")], 0.0);
    }

    #[test]
    fn two_hop_finds_unlinked_pairs_through_shared_neighbours() {
        let g = graph(&[
            ("kafka", "lag", 0.8),
            ("lag", "grafana", 0.5),
            ("kafka", "zookeeper", 0.4),
            ("zookeeper", "grafana", 0.5),
            ("kafka", "grafana", 0.0), // not a link
        ]);
        let h = two_hop(&g, 10, 50);
        let top = &h[0];
        let names = |x: usize| g.key(x).to_string();
        assert_eq!(
            (names(top.a), names(top.b)),
            ("grafana".into(), "kafka".into())
        );
        // 0.8 × 0.5 through lag + 0.4 × 0.5 through zookeeper.
        assert!((top.score - 0.6).abs() < 1e-12, "{}", top.score);
        assert_eq!(
            top.via.iter().map(|v| names(*v)).collect::<Vec<_>>(),
            vec!["lag", "zookeeper"]
        );
        // Linked pairs are never hypotheses.
        assert!(h.iter().all(|x| g.strength(x.a, x.b).is_none()));
    }

    #[test]
    fn a_dream_is_fixed_by_its_seed_and_follows_links() {
        let g = barbell();
        let one = dream(&g, None, 25, 1.0, 42);
        assert_eq!(one, dream(&g, None, 25, 1.0, 42), "same seed, same walk");
        assert_ne!(
            one,
            dream(&g, None, 25, 1.0, 43),
            "another seed, another walk"
        );
        assert_eq!(one.len(), 26);
        assert_eq!(one[0].by, Move::Start);
        for w in one.windows(2) {
            if w[1].by == Move::Link {
                let s = g
                    .strength(w[0].node, w[1].node)
                    .expect("a move follows a link");
                assert_eq!(w[1].strength, Some(s));
                assert_eq!(w[1].weak, s < g.median_strength());
            }
        }
        // A 25-move walk on 7 concepts must come back somewhere.
        assert!(one.iter().any(|s| s.returns_to.is_some()));
        for (i, s) in one.iter().enumerate() {
            if let Some(j) = s.returns_to {
                assert!(j < i && one[j].node == s.node);
            }
        }
    }

    #[test]
    fn temperature_moves_a_dream_between_strong_and_weak_links() {
        let g = barbell();
        let weak = |t: f64| -> usize {
            (0..50)
                .map(|seed| {
                    dream(&g, g.find("bridge"), 30, t, seed)
                        .iter()
                        .filter(|s| s.weak)
                        .count()
                })
                .sum()
        };
        assert!(weak(0.1) < weak(5.0), "{} vs {}", weak(0.1), weak(5.0));
    }

    #[test]
    fn a_dream_jumps_at_dead_ends() {
        let g = graph(&[("a", "b", 0.5), ("c", "d", 0.5)]);
        let walk = dream(&g, g.find("a"), 3, 1.0, 7);
        // a → b along the link; b leads only back: a jump, to c or d (not visited yet); from
        // there, the other end of that link.
        let keys: Vec<&str> = walk.iter().map(|s| g.key(s.node)).collect();
        assert_eq!(&keys[..2], &["a", "b"]);
        assert_eq!(walk[2].by, Move::Jump);
        assert!(["c", "d"].contains(&keys[2]), "{keys:?}");
        assert_eq!(walk[2].strength, None);
        assert_eq!(walk[3].by, Move::Link);
        assert!(["c", "d"].contains(&keys[3]) && keys[3] != keys[2]);
    }

    #[test]
    fn an_empty_graph_gives_empty_answers() {
        let g = Graph::new(Vec::new());
        assert!(clusters(&g).is_empty());
        assert!(betweenness(&g).is_empty());
        assert!(two_hop(&g, 10, 10).is_empty());
        assert!(dream(&g, None, 10, 1.0, 1).is_empty());
        assert_eq!(modularity(&g, &[]), 0.0);
    }
}
