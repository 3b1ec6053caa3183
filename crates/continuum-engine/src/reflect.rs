//! Insights and dreams over a tenant's concept graph (the algorithms are in
//! `continuum-reflect`; this loads the graph they read and names what they find).
//!
//! The graph read is bounded: the tenant's most mentioned concepts (at most
//! [`MAX_REFLECT_CONCEPTS`]) and each one's strongest links (at most
//! [`MAX_REFLECT_LINKS_PER_CONCEPT`]), with strengths as recall sees them (after decay).

use super::*;
use continuum_core::reflection::{GraphSnapshot, Record, RecordId, RecordKind};
use continuum_core::store::sort_links;
use continuum_reflect::{Graph, Move};
use std::collections::{BTreeSet, HashMap};

pub const MAX_REFLECT_CONCEPTS: usize = 2_000;
pub const MAX_REFLECT_LINKS_PER_CONCEPT: usize = 100;
pub const MAX_INSIGHTS: usize = 100;
/// The strongest links kept of what a read returns (the rest are left out, and said so).
pub const MAX_REFLECT_GRAPH_LINKS: usize = 20_000;
/// Betweenness is computed from at most this many source concepts (exact below it).
pub const MAX_BETWEENNESS_SOURCES: usize = 500;
pub const MAX_DREAM_STEPS: usize = 200;
/// Concepts (the most linked) whose names are compared by meaning in `insights`.
pub const MAX_SIMILAR_CONCEPTS: usize = 200;
/// The cosine similarity from which two concept names count as close in meaning.
pub const SIMILAR_CONCEPTS: f64 = 0.7;
/// Dream temperatures allowed: (0, 10].
pub const MAX_DREAM_TEMPERATURE: f64 = 10.0;

/// Which part of the graph to read.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct GraphScope {
    /// The most mentioned concepts read (default 500).
    pub concepts: usize,
    /// Strongest links read per concept (default 20).
    pub links_per_concept: usize,
}

impl Default for GraphScope {
    fn default() -> Self {
        GraphScope {
            concepts: 500,
            links_per_concept: 20,
        }
    }
}

impl GraphScope {
    fn check(&self) -> Result<()> {
        if self.concepts == 0 || self.concepts > MAX_REFLECT_CONCEPTS {
            return Err(Error::InvalidInput(format!(
                "concepts must be between 1 and {MAX_REFLECT_CONCEPTS}"
            )));
        }
        if self.links_per_concept == 0 || self.links_per_concept > MAX_REFLECT_LINKS_PER_CONCEPT {
            return Err(Error::InvalidInput(format!(
                "links per concept must be between 1 and {MAX_REFLECT_LINKS_PER_CONCEPT}"
            )));
        }
        Ok(())
    }
}

/// A concept, by key and by the name the text first gave it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConceptRef {
    pub key: String,
    pub name: String,
}

/// What a graph read held.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GraphRead {
    pub scope: GraphScope,
    pub concepts: usize,
    pub links: usize,
    /// Links the read returned beyond the strongest [`MAX_REFLECT_GRAPH_LINKS`], left out.
    pub links_left_out: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Cluster {
    pub id: usize,
    pub size: usize,
    /// Its most linked concepts (at most 10), most linked first.
    pub concepts: Vec<ConceptRef>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Bridge {
    pub concept: ConceptRef,
    /// Share of the pairs of other concepts whose shortest path runs through it, in [0, 1].
    pub betweenness: f64,
    /// The clusters its links reach (two or more).
    pub joins: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HypothesisView {
    pub a: ConceptRef,
    pub b: ConceptRef,
    /// Sum over shared neighbours of the two links' strengths multiplied.
    pub score: f64,
    /// The concepts that join them, strongest path first.
    pub via: Vec<ConceptRef>,
}

/// What the concept graph says beyond one concept's neighbours.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Insights {
    pub graph: GraphRead,
    /// Groups of concepts more linked among themselves than to the rest, largest first (at
    /// most `limit`; groups of one are left out).
    pub clusters: Vec<Cluster>,
    /// Newman modularity of the whole partition: above about 0.3 the groups are clear.
    pub modularity: f64,
    /// Concepts that join clusters, by betweenness.
    pub bridges: Vec<Bridge>,
    /// Concepts the betweenness was computed from: all of them (exact), or at most
    /// [`MAX_BETWEENNESS_SOURCES`] evenly spaced ones (an estimate).
    pub betweenness_sources: usize,
    /// Unlinked pairs with shared neighbours, best first: associations to check.
    pub hypotheses: Vec<HypothesisView>,
    /// With an embedder: pairs of concepts whose names are close in meaning (cosine at least
    /// 0.7) but never linked, closest first, among the [`MAX_SIMILAR_CONCEPTS`] most linked.
    pub similar: Vec<SimilarPair>,
    /// The embedder's model that compared them (null: no embedder, so none were).
    pub similar_by: Option<String>,
}

/// Two concepts close in meaning that the graph does not link.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SimilarPair {
    pub a: ConceptRef,
    pub b: ConceptRef,
    /// Cosine similarity of the names' vectors.
    pub similarity: f64,
}

/// A memory that mentions both ends of a dream's step.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MemoryRef {
    pub id: MemoryId,
    /// The first 200 characters.
    pub content: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DreamStep {
    pub step: usize,
    pub concept: ConceptRef,
    /// `start`, `link` or `jump` (a dead end: no link but the one it came by).
    pub by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    /// The link is weaker than the graph's median link.
    pub weak: bool,
    /// The step at which the walk first came here (a cycle closes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returns_to: Option<usize>,
    /// Memories that mention this concept and the previous one (at most 2, newest first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memories: Vec<MemoryRef>,
}

/// A seeded associative walk over the concept graph.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Dream {
    /// Give it back to walk the same way again.
    pub seed: u64,
    pub temperature: f64,
    /// Links weaker than this (the median link) count as weak.
    pub weak_below: f64,
    pub graph: GraphRead,
    pub steps: Vec<DreamStep>,
    pub weak_links: usize,
    pub jumps: usize,
    pub cycles: usize,
}

/// How to dream.
#[derive(Debug, Clone, Default)]
pub struct DreamRequest {
    /// Where to start (a concept name); default: drawn by its link strength.
    pub from: Option<String>,
    /// Default: from the clock (reported, so the walk can be repeated).
    pub seed: Option<u64>,
    /// Moves (default 10, at most [`MAX_DREAM_STEPS`]).
    pub steps: Option<usize>,
    /// Default 1.0; below 1 keeps to strong links, above wanders along weak ones.
    pub temperature: Option<f64>,
    pub scope: GraphScope,
}

/// A node of `g` by key and name (its key when the name is unknown).
fn concept_ref(g: &Graph, names: &HashMap<String, String>, v: usize) -> ConceptRef {
    let key = g.key(v).to_string();
    ConceptRef {
        name: names.get(&key).cloned().unwrap_or_else(|| key.clone()),
        key,
    }
}

impl Engine {
    /// Loads the bounded graph (see the module's documentation), plus `extra` concepts' links.
    async fn reflect_graph(
        &self,
        tenant: &TenantId,
        scope: &GraphScope,
        extra: &[String],
    ) -> Result<(Graph, HashMap<String, String>, usize)> {
        scope.check()?;
        let mut keys: Vec<String> = extra.to_vec();
        let mut offset = 0;
        while offset < scope.concepts {
            let page = self
                .store
                .list_concepts(tenant, MAX_PAGE.min(scope.concepts - offset), offset)
                .await?;
            if page.is_empty() {
                break;
            }
            offset += page.len();
            keys.extend(page.into_iter().map(|c| c.key));
        }
        let now = self.clock.now();
        let mut links = Vec::new();
        for chunk in keys.chunks(200) {
            links.extend(
                self.store
                    .neighbours(tenant, chunk, scope.links_per_concept)
                    .await?,
            );
        }
        for l in &mut links {
            l.strength = self.config.hebbian.effective(l.strength, l.last_at, now);
        }
        sort_links(&mut links);
        links.dedup_by(|x, y| x.a == y.a && x.b == y.b);
        let left_out = links.len().saturating_sub(MAX_REFLECT_GRAPH_LINKS);
        links.truncate(MAX_REFLECT_GRAPH_LINKS);
        let graph = Graph::new(links.into_iter().map(|l| (l.a, l.b, l.strength)));
        let all: Vec<String> = (0..graph.len()).map(|v| graph.key(v).to_string()).collect();
        let mut names = HashMap::new();
        for chunk in all.chunks(500) {
            for c in self.store.concepts(tenant, chunk).await? {
                names.insert(c.key, c.name);
            }
        }
        Ok((graph, names, left_out))
    }

    /// Clusters, bridges and two-hop hypotheses of the tenant's concept graph.
    pub async fn insights(
        &self,
        who: impl Into<Caller>,
        scope: &GraphScope,
        limit: usize,
    ) -> Result<Insights> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        if limit == 0 || limit > MAX_INSIGHTS {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {MAX_INSIGHTS}"
            )));
        }
        let (g, names, left_out) = self.reflect_graph(tenant, scope, &[]).await?;
        let named = |v: usize| concept_ref(&g, &names, v);
        let (group, between, hyps) = tokio::task::spawn_blocking({
            let g = g.clone();
            move || {
                let group = continuum_reflect::clusters(&g);
                let between = continuum_reflect::betweenness_estimate(&g, MAX_BETWEENNESS_SOURCES);
                let hyps = continuum_reflect::two_hop(&g, limit, 50);
                (group, between, hyps)
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("insights: {e}")))?;
        let modularity = continuum_reflect::modularity(&g, &group);
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (v, &c) in group.iter().enumerate() {
            if members.len() <= c {
                members.resize(c + 1, Vec::new());
            }
            members[c].push(v);
        }
        let clusters = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.len() > 1)
            .take(limit)
            .map(|(id, m)| {
                let mut m = m.clone();
                m.sort_by(|a, b| {
                    g.degree(*b)
                        .total_cmp(&g.degree(*a))
                        .then_with(|| g.key(*a).cmp(g.key(*b)))
                });
                Cluster {
                    id,
                    size: m.len(),
                    concepts: m.iter().take(10).map(|v| named(*v)).collect(),
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..g.len()).filter(|v| between[*v] > 0.0).collect();
        order.sort_by(|a, b| {
            between[*b]
                .total_cmp(&between[*a])
                .then_with(|| g.key(*a).cmp(g.key(*b)))
        });
        let bridges = order
            .into_iter()
            .filter_map(|v| {
                let joins: BTreeSet<usize> = std::iter::once(group[v])
                    .chain(g.neighbours(v).iter().map(|(u, _)| group[*u]))
                    .collect();
                (joins.len() > 1).then(|| Bridge {
                    concept: named(v),
                    betweenness: between[v],
                    joins: joins.into_iter().collect(),
                })
            })
            .take(limit)
            .collect();
        let (similar, similar_by) = self.similar_unlinked(&g, &names, limit).await;
        let hypotheses = hyps
            .into_iter()
            .map(|h| HypothesisView {
                a: named(h.a),
                b: named(h.b),
                score: h.score,
                via: h.via.iter().take(5).map(|v| named(*v)).collect(),
            })
            .collect();
        Ok(Insights {
            graph: GraphRead {
                scope: *scope,
                concepts: g.len(),
                links: g.edge_count(),
                links_left_out: left_out,
            },
            betweenness_sources: g.len().min(MAX_BETWEENNESS_SOURCES),
            clusters,
            modularity,
            bridges,
            hypotheses,
            similar,
            similar_by,
        })
    }

    /// Unlinked pairs among the most linked concepts whose names the embedder finds close.
    /// Without an embedder, or when it fails (logged), none.
    async fn similar_unlinked(
        &self,
        g: &Graph,
        names: &HashMap<String, String>,
        limit: usize,
    ) -> (Vec<SimilarPair>, Option<String>) {
        let Some(embedder) = self.embedder.as_ref() else {
            return (Vec::new(), None);
        };
        let mut top: Vec<usize> = (0..g.len()).collect();
        top.sort_by(|a, b| {
            g.degree(*b)
                .total_cmp(&g.degree(*a))
                .then_with(|| g.key(*a).cmp(g.key(*b)))
        });
        top.truncate(MAX_SIMILAR_CONCEPTS);
        let named = |v: usize| concept_ref(g, names, v);
        let texts: Vec<String> = top.iter().map(|v| named(*v).name).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(embedder.batch_size().max(1)) {
            match embedder.embed(chunk).await {
                Ok(v) if v.len() == chunk.len() => vectors.extend(v),
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        "insights: the embedder failed on concept names; no similar pairs"
                    );
                    return (Vec::new(), Some(embedder.model().to_string()));
                }
            }
        }
        let mut pairs = Vec::new();
        for i in 0..top.len() {
            for j in i + 1..top.len() {
                if g.strength(top[i], top[j]).is_some() {
                    continue;
                }
                let sim: f64 = vectors[i]
                    .iter()
                    .zip(&vectors[j])
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum();
                if sim >= SIMILAR_CONCEPTS {
                    pairs.push((sim, top[i], top[j]));
                }
            }
        }
        pairs.sort_by(|x, y| {
            y.0.total_cmp(&x.0)
                .then_with(|| g.key(x.1).cmp(g.key(y.1)))
                .then_with(|| g.key(x.2).cmp(g.key(y.2)))
        });
        let similar = pairs
            .into_iter()
            .take(limit)
            .map(|(sim, a, b)| SimilarPair {
                a: named(a),
                b: named(b),
                similarity: (sim * 1000.0).round() / 1000.0,
            })
            .collect();
        (similar, Some(embedder.model().to_string()))
    }

    /// A seeded, reproducible weighted random walk over the tenant's concept graph, with the
    /// memories that join each step.
    pub async fn dream(&self, who: impl Into<Caller>, req: &DreamRequest) -> Result<Dream> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let steps = req.steps.unwrap_or(10);
        if steps == 0 || steps > MAX_DREAM_STEPS {
            return Err(Error::InvalidInput(format!(
                "steps must be between 1 and {MAX_DREAM_STEPS}"
            )));
        }
        let temperature = req.temperature.unwrap_or(1.0);
        if !(temperature > 0.0 && temperature <= MAX_DREAM_TEMPERATURE) {
            return Err(Error::InvalidInput(format!(
                "temperature must be above 0 and at most {MAX_DREAM_TEMPERATURE}"
            )));
        }
        let start_key = match &req.from {
            Some(name) => {
                let key = continuum_core::extract::concept_key(name);
                if key.is_empty()
                    || self
                        .store
                        .concepts(tenant, std::slice::from_ref(&key))
                        .await?
                        .is_empty()
                {
                    return Err(Error::NotFound(format!("no concept '{name}'")));
                }
                Some(key)
            }
            None => None,
        };
        let extra: Vec<String> = start_key.iter().cloned().collect();
        let (g, names, left_out) = self.reflect_graph(tenant, &req.scope, &extra).await?;
        let seed = req
            .seed
            .unwrap_or_else(|| self.clock.now().millis().unsigned_abs());
        let start = match &start_key {
            Some(k) => match g.find(k) {
                Some(v) => Some(v),
                None => {
                    return Err(Error::InvalidInput(format!(
                        "'{k}' has no links to walk along yet"
                    )));
                }
            },
            None => None,
        };
        let walk = continuum_reflect::dream(&g, start, steps, temperature, seed);
        let named = |v: usize| concept_ref(&g, &names, v);
        let mut out = Vec::with_capacity(walk.len());
        for (i, s) in walk.iter().enumerate() {
            let memories = if s.by == Move::Link && i > 0 {
                self.joining(tenant, g.key(walk[i - 1].node), g.key(s.node))
                    .await?
            } else {
                Vec::new()
            };
            out.push(DreamStep {
                step: i,
                concept: named(s.node),
                by: match s.by {
                    Move::Start => "start",
                    Move::Link => "link",
                    Move::Jump => "jump",
                },
                strength: s.strength,
                weak: s.weak,
                returns_to: s.returns_to,
                memories,
            });
        }
        Ok(Dream {
            seed,
            temperature,
            weak_below: g.median_strength(),
            graph: GraphRead {
                scope: req.scope,
                concepts: g.len(),
                links: g.edge_count(),
                links_left_out: left_out,
            },
            weak_links: walk.iter().filter(|s| s.weak).count(),
            jumps: walk.iter().filter(|s| s.by == Move::Jump).count(),
            cycles: walk.iter().filter(|s| s.returns_to.is_some()).count(),
            steps: out,
        })
    }

    /// The newest memories (at most 2) that mention both concepts.
    async fn joining(&self, tenant: &TenantId, a: &str, b: &str) -> Result<Vec<MemoryRef>> {
        let heads = self
            .store
            .mentions(tenant, &[a.to_string(), b.to_string()], 50)
            .await?;
        let of = |k: &str| -> BTreeSet<MemoryId> {
            heads
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, h)| h.id)
                .collect()
        };
        let mut both: Vec<MemoryId> = of(a).intersection(&of(b)).copied().collect();
        both.reverse();
        both.truncate(10);
        let mut found = self.store.get(tenant, &both).await?;
        found.sort_by_key(|m| std::cmp::Reverse(m.id));
        // The same words stored twice (in two sessions) explain the step once.
        let mut seen = BTreeSet::new();
        found.retain(|m| seen.insert(m.content_hash.clone()));
        found.truncate(2);
        Ok(found
            .into_iter()
            .map(|m| MemoryRef {
                id: m.id,
                content: m.content.chars().take(200).collect(),
            })
            .collect())
    }
}

/// The longest label of a graph snapshot.
pub const MAX_SNAPSHOT_LABEL_CHARS: usize = 100;
/// Hubs a graph snapshot keeps.
pub const SNAPSHOT_HUBS: usize = 20;

/// How the graph's shape changed from one snapshot to another (`to` minus `from`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SnapshotComparison {
    pub from: GraphSnapshot,
    pub to: GraphSnapshot,
    pub days: f64,
    pub memories: i64,
    pub concepts: i64,
    pub links: i64,
    pub clusters: i64,
    pub modularity: f64,
    pub mean_degree: f64,
    pub mean_strength: f64,
    /// Hubs of `to` that were not hubs of `from`, and the other way round.
    pub new_hubs: Vec<String>,
    pub former_hubs: Vec<String>,
    /// One sentence.
    pub summary: String,
}

impl Engine {
    /// Takes a snapshot of the concept graph's shape (counts, degree, strength, clusters,
    /// modularity, hubs) and keeps it, to compare with later ones.
    pub async fn graph_snapshot(
        &self,
        who: impl Into<Caller>,
        label: Option<&str>,
    ) -> Result<GraphSnapshot> {
        let caller = who.into();
        let tenant = caller.require(Scope::Write)?;
        let label = label
            .map(|l| continuum_core::reflection::check_text("label", l, MAX_SNAPSHOT_LABEL_CHARS))
            .transpose()?;
        self.room_for(tenant, RecordKind::Snapshot).await?;
        let stats = self.store.stats(tenant).await?;
        let (g, _, _) = self
            .reflect_graph(tenant, &GraphScope::default(), &[])
            .await?;
        let group = tokio::task::spawn_blocking({
            let g = g.clone();
            move || continuum_reflect::clusters(&g)
        })
        .await
        .map_err(|e| Error::Internal(format!("snapshot: {e}")))?;
        let modularity = continuum_reflect::modularity(&g, &group);
        let mut sizes: HashMap<usize, u64> = HashMap::new();
        for c in &group {
            *sizes.entry(*c).or_default() += 1;
        }
        let n = g.len();
        let edges = g.edge_count();
        let total_strength: f64 = (0..n)
            .flat_map(|v| g.neighbours(v).iter().map(|(_, s)| *s))
            .sum::<f64>()
            / 2.0;
        let mut hubs: Vec<usize> = (0..n).collect();
        hubs.sort_by(|a, b| {
            g.neighbours(*b)
                .len()
                .cmp(&g.neighbours(*a).len())
                .then_with(|| g.degree(*b).total_cmp(&g.degree(*a)))
                .then_with(|| g.key(*a).cmp(g.key(*b)))
        });
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let now = self.clock.now();
        let snap = GraphSnapshot {
            id: RecordId::new_at(now),
            label,
            memories: stats.memories,
            concepts: stats.concepts,
            links: stats.links,
            read_concepts: n as u64,
            read_links: edges as u64,
            mean_degree: if n == 0 {
                0.0
            } else {
                round(2.0 * edges as f64 / n as f64)
            },
            mean_strength: if edges == 0 {
                0.0
            } else {
                round(total_strength / edges as f64)
            },
            clusters: sizes.values().filter(|s| **s > 1).count() as u64,
            largest_cluster: sizes.values().copied().max().unwrap_or(0),
            modularity: round(modularity),
            hubs: hubs
                .into_iter()
                .take(SNAPSHOT_HUBS)
                .map(|v| g.key(v).to_string())
                .collect(),
            created_at: now,
            updated_at: now,
        };
        self.store
            .put_records(tenant, now, &[Record::Snapshot(snap.clone())])
            .await?;
        Ok(snap)
    }

    /// The tenant's graph snapshots, newest first.
    pub async fn graph_snapshots(
        &self,
        who: impl Into<Caller>,
        limit: usize,
    ) -> Result<Vec<GraphSnapshot>> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        if limit == 0 || limit > crate::MAX_RECORDS_PAGE {
            return Err(Error::InvalidInput(format!(
                "limit must be between 1 and {}",
                crate::MAX_RECORDS_PAGE
            )));
        }
        Ok(self
            .store
            .records(tenant, RecordKind::Snapshot, None, limit)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Snapshot(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// How the graph's shape changed between two of the tenant's snapshots.
    pub async fn graph_compare(
        &self,
        who: impl Into<Caller>,
        from: &RecordId,
        to: &RecordId,
    ) -> Result<SnapshotComparison> {
        let caller = who.into();
        let tenant = caller.require(Scope::Read)?;
        let load = |id: RecordId| async move {
            match self.store.record(tenant, &id).await? {
                Some(Record::Snapshot(s)) => Ok(s),
                _ => Err(Error::NotFound(format!("no snapshot {id}"))),
            }
        };
        let (a, b) = (load(*from).await?, load(*to).await?);
        let d = |x: u64, y: u64| y as i64 - x as i64;
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let new_hubs: Vec<String> = b
            .hubs
            .iter()
            .filter(|h| !a.hubs.contains(h))
            .cloned()
            .collect();
        let former_hubs: Vec<String> = a
            .hubs
            .iter()
            .filter(|h| !b.hubs.contains(h))
            .cloned()
            .collect();
        let days = round(a.created_at.days_until(b.created_at));
        let signed = |x: i64| {
            if x >= 0 {
                format!("+{x}")
            } else {
                x.to_string()
            }
        };
        let summary = format!(
            "Over {days:.1} days: {} memories, {} concepts, {} links; {} clusters (modularity {:.2} → {:.2}){}.",
            signed(d(a.memories, b.memories)),
            signed(d(a.concepts, b.concepts)),
            signed(d(a.links, b.links)),
            signed(d(a.clusters, b.clusters)),
            a.modularity,
            b.modularity,
            if new_hubs.is_empty() {
                String::new()
            } else {
                format!("; new hubs: {}", new_hubs.join(", "))
            }
        );
        Ok(SnapshotComparison {
            days,
            memories: d(a.memories, b.memories),
            concepts: d(a.concepts, b.concepts),
            links: d(a.links, b.links),
            clusters: d(a.clusters, b.clusters),
            modularity: round(b.modularity - a.modularity),
            mean_degree: round(b.mean_degree - a.mean_degree),
            mean_strength: round(b.mean_strength - a.mean_strength),
            new_hubs,
            former_hubs,
            summary,
            from: a,
            to: b,
        })
    }
}
