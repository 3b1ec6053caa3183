//! `concepts [NAME] [--timeline]`, `growth`, `snapshots`, `insights`, `dream`.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct ConceptsArgs {
    /// A concept (any case); omit to list the most mentioned concepts.
    pub name: Option<String>,
    /// How many neighbours or concepts to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// With NAME: how the concept evolved (created, linked, strengthened past 0.5, 0.8 and
    /// the cap, contradicted), read from the event log.
    #[arg(long, requires = "name")]
    pub timeline: bool,
}

#[derive(Debug, Args)]
pub struct GrowthArgs {
    /// From this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::app::parse_time)]
    pub since: Option<continuum_core::Timestamp>,
    /// Until this time, not included (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::app::parse_time)]
    pub until: Option<continuum_core::Timestamp>,
}

fn print_scan(s: &continuum_engine::Scan) {
    if s.from > 0 {
        println!(
            "(events up to position {} were compacted away and are not counted)",
            s.from
        );
    }
    if s.truncated {
        println!(
            "(stopped after {} events, at position {}: the rest is not counted)",
            s.events, s.through
        );
    }
}

/// `growth`: what grew in a window.
pub async fn growth(g: &Global, a: GrowthArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let r = engine.concept_growth(&tenant, a.since, a.until).await?;
    if g.json {
        return output::json(&r);
    }
    println!(
        "{} memories, {} new concepts, {} new links, {} co-occurrences",
        r.memories, r.new_concepts, r.new_links, r.co_occurrences
    );
    if !r.new_concept_names.is_empty() {
        println!("New: {}", r.new_concept_names.join(", "));
    }
    if !r.most_active.is_empty() {
        println!("Most active");
        for c in &r.most_active {
            println!(
                "  {:>6} mentions  {:>6} co-occurrences  {}",
                c.mentions, c.co_occurrences, c.name
            );
        }
    }
    print_scan(&r.scan);
    Ok(())
}

pub async fn concepts(g: &Global, a: ConceptsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    match a.name {
        Some(name) if a.timeline => {
            let t = engine.concept_timeline(&tenant, &name).await?;
            if g.json {
                return output::json(&t);
            }
            println!("{} ({} mentions)", t.concept.name, t.mentions);
            for e in &t.entries {
                let what = match e.kind {
                    "linked" | "strengthened" => format!(
                        "{} {} ({:.2})",
                        e.kind,
                        e.other.as_deref().unwrap_or_default(),
                        e.strength.unwrap_or_default()
                    ),
                    "contradicted" => {
                        format!("contradicted: {}", e.detail.as_deref().unwrap_or_default())
                    }
                    k => k.to_string(),
                };
                println!("  {}  #{:<8} {what}", e.at, e.seq);
            }
            print_scan(&t.scan);
        }
        Some(name) => {
            let view = engine.concept(&tenant, &name, a.limit).await?;
            if g.json {
                return output::json(&view);
            }
            let c = &view.concept;
            println!(
                "{} ({}, {} mentions, last seen {})",
                c.name, c.kind, c.mentions, c.last_seen
            );
            if view.neighbours.is_empty() {
                println!("  no linked concepts");
            }
            for n in &view.neighbours {
                println!(
                    "  {:.2}  {}  ({} co-occurrences)",
                    n.strength, n.name, n.count
                );
            }
        }
        None => {
            let list = engine.list_concepts(&tenant, a.limit, a.offset).await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no concepts");
            }
            for c in list {
                println!("{:>6}  {}  ({})", c.mentions, c.name, c.kind);
            }
        }
    }
    Ok(())
}

/// Which part of the graph `insights` and `dream` read.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// The most mentioned concepts read (1 to 2000).
    #[arg(long = "graph-concepts", default_value_t = 500)]
    pub concepts: usize,
    /// Strongest links read per concept (1 to 100).
    #[arg(long = "graph-links", default_value_t = 20)]
    pub links: usize,
}

impl ScopeArgs {
    fn scope(&self) -> continuum_engine::GraphScope {
        continuum_engine::GraphScope {
            concepts: self.concepts,
            links_per_concept: self.links,
        }
    }
}

#[derive(Debug, Args)]
pub struct InsightsArgs {
    /// Clusters, bridges and hypotheses shown, each (1 to 100).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

pub async fn insights(g: &Global, a: InsightsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    // With an embedder, insights also names concepts close in meaning.
    let (engine, _) = g.open_semantic().await?;
    let r = engine.insights(&tenant, &a.scope.scope(), a.limit).await?;
    if g.json {
        return output::json(&r);
    }
    let names = |cs: &[continuum_engine::ConceptRef]| {
        cs.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{} concepts, {} links read; modularity {:.2}",
        r.graph.concepts, r.graph.links, r.modularity
    );
    println!("\nClusters");
    if r.clusters.is_empty() {
        println!("  none yet (too few links)");
    }
    for c in &r.clusters {
        println!("  {:>3}. {} concepts: {}", c.id, c.size, names(&c.concepts));
    }
    println!("\nBridges (concepts that join clusters)");
    if r.bridges.is_empty() {
        println!("  none");
    }
    for b in &r.bridges {
        let joins: Vec<String> = b.joins.iter().map(|j| j.to_string()).collect();
        println!(
            "  {:.3}  {}  (joins clusters {})",
            b.betweenness,
            b.concept.name,
            joins.join(", ")
        );
    }
    println!("\nHypotheses (not linked, but share neighbours)");
    if r.hypotheses.is_empty() {
        println!("  none");
    }
    for h in &r.hypotheses {
        println!(
            "  {:.3}  {} ~ {}  via {}",
            h.score,
            h.a.name,
            h.b.name,
            names(&h.via)
        );
    }
    if let Some(model) = &r.similar_by {
        println!("\nClose in meaning, never linked (by {model})");
        if r.similar.is_empty() {
            println!("  none");
        }
        for p in &r.similar {
            println!("  {:.3}  {} ~ {}", p.similarity, p.a.name, p.b.name);
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DreamArgs {
    /// Start at this concept (default: one drawn by its link strength).
    #[arg(long)]
    pub from: Option<String>,
    /// The same seed walks the same way (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Moves (1 to 200).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Below 1 keeps to strong links; above 1 wanders along weak ones (up to 10).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

pub async fn dream(g: &Global, a: DreamArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let req = continuum_engine::DreamRequest {
        from: a.from,
        seed: a.seed,
        steps: Some(a.steps),
        temperature: Some(a.temperature),
        scope: a.scope.scope(),
    };
    let d = engine.dream(&tenant, &req).await?;
    if g.json {
        return output::json(&d);
    }
    if d.steps.is_empty() {
        println!("no links to walk along yet");
        return Ok(());
    }
    for s in &d.steps {
        let how = match (s.by, s.strength) {
            ("link", Some(w)) => format!("{}link {w:.2}", if s.weak { "weak " } else { "" }),
            (by, _) => by.to_string(),
        };
        let back = s
            .returns_to
            .map(|j| format!("  (back to step {j})"))
            .unwrap_or_default();
        println!("{:>3}. {}  [{how}]{back}", s.step, s.concept.name);
        for m in &s.memories {
            println!("       \"{}\"", m.content);
        }
    }
    println!(
        "\nseed {} · temperature {} · {} weak links · {} jumps · {} returns",
        d.seed, d.temperature, d.weak_links, d.jumps, d.cycles
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(subcommand)]
    pub action: SnapshotsAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotsAction {
    /// Take a snapshot of the concept graph's shape now.
    Create {
        #[arg(long)]
        label: Option<String>,
    },
    /// Snapshots, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// How the shape changed from one snapshot to another.
    Compare { from: String, to: String },
}

fn snapshot_line(s: &continuum_core::reflection::GraphSnapshot) -> String {
    format!(
        "{}  {}  {} memories, {} concepts, {} links, {} clusters, modularity {:.2}{}",
        s.id,
        s.created_at,
        s.memories,
        s.concepts,
        s.links,
        s.clusters,
        s.modularity,
        s.label
            .as_ref()
            .map(|l| format!("  ({l})"))
            .unwrap_or_default()
    )
}

/// `snapshots`: the concept graph's shape over time.
pub async fn snapshots(g: &Global, a: SnapshotsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    match a.action {
        SnapshotsAction::Create { label } => {
            let s = engine.graph_snapshot(&tenant, label.as_deref()).await?;
            if g.json {
                return output::json(&s);
            }
            println!("{}", snapshot_line(&s));
            println!("hubs: {}", s.hubs.join(", "));
        }
        SnapshotsAction::List { limit } => {
            let list = engine.graph_snapshots(&tenant, limit).await?;
            if g.json {
                return output::json(&serde_json::json!({ "snapshots": list }));
            }
            if list.is_empty() {
                println!("No snapshots.");
            }
            list.iter().for_each(|s| println!("{}", snapshot_line(s)));
        }
        SnapshotsAction::Compare { from, to } => {
            let c = engine
                .graph_compare(&tenant, &from.parse()?, &to.parse()?)
                .await?;
            if g.json {
                return output::json(&c);
            }
            println!("{}", c.summary);
            println!(
                "mean links per concept {:+.2}, mean strength {:+.3}, modularity {:+.3}",
                c.mean_degree, c.mean_strength, c.modularity
            );
            if !c.new_hubs.is_empty() {
                println!("new hubs: {}", c.new_hubs.join(", "));
            }
            if !c.former_hubs.is_empty() {
                println!("no longer hubs: {}", c.former_hubs.join(", "));
            }
        }
    }
    Ok(())
}
