//! `bench reflect`: how long `insights` and `dream` take on a store of `--memories`
//! generated memories, at the default graph scope and at the largest one; the algorithms
//! alone on a random graph as large as a read may keep (the generator's vocabulary makes a
//! small concept graph, so the store's figures do not show the worst case); a concept's
//! timeline and the growth report, which scan the event log; and the reflection records:
//! recording a belief against a domain of 1000 active ones, a snapshot, calibration over
//! 1000 verified claims.

use super::throughput::{Latency, latency};
use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::TenantId;
use continuum_engine::{DreamRequest, GraphScope};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct ReflectArgs {
    /// Memories in the store (two per learned turn).
    #[arg(long, default_value_t = 100_000)]
    pub memories: usize,
    /// Runs of each measurement.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The event-log scans and the reflection records.
#[derive(Debug, Serialize)]
struct Records {
    events: u64,
    /// `concepts NAME --timeline` of the most mentioned concept.
    timeline_ms: Latency,
    timeline_entries: usize,
    /// `growth` over the whole log.
    growth_ms: Latency,
    /// Recording a belief in a domain holding this many active ones (word rules only).
    beliefs_compared: usize,
    belief_add_ms: Latency,
    snapshot_ms: Latency,
    /// Calibration over this many verified claims.
    claims: usize,
    calibration_ms: Latency,
}

async fn records(
    engine: &continuum_engine::Engine,
    tenant: &TenantId,
    runs: usize,
) -> Result<Records> {
    use continuum_engine::{BeliefRequest, CalibrationRequest, ClaimRequest};
    let events = engine.event_head().await?;
    let top = engine
        .list_concepts(tenant, 1, 0)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the generated store has no concept"))?;
    let mut timeline = Vec::new();
    let mut entries = 0;
    for _ in 0..runs.min(5) {
        let t0 = Instant::now();
        entries = engine
            .concept_timeline(tenant, &top.key)
            .await?
            .entries
            .len();
        timeline.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let mut growth = Vec::new();
    for _ in 0..runs.min(5) {
        let t0 = Instant::now();
        engine.concept_growth(tenant, None, None).await?;
        growth.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    const HELD: usize = 1000;
    let belief = |i: usize| BeliefRequest {
        text: format!("Service number {i} listens on port {}", 8000 + i),
        domain: Some("ops".into()),
        confidence: Some(0.8),
        evidence: Vec::new(),
    };
    for i in 0..HELD {
        engine.belief_add(tenant, &belief(i)).await?;
    }
    let mut adds = Vec::new();
    for i in 0..runs {
        let t0 = Instant::now();
        engine.belief_add(tenant, &belief(HELD + i)).await?;
        adds.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let mut snaps = Vec::new();
    for _ in 0..runs.min(5) {
        let t0 = Instant::now();
        engine.graph_snapshot(tenant, None).await?;
        snaps.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    for i in 0..HELD {
        let c = engine
            .claim_add(
                tenant,
                &ClaimRequest {
                    text: format!("Estimate {i} holds"),
                    confidence: (i % 10) as f64 / 10.0 + 0.05,
                    category: Some(format!("c{}", i % 5)),
                },
            )
            .await?;
        engine.claim_verify(tenant, &c.id, i % 3 != 0, None).await?;
    }
    let mut cal = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        engine
            .calibration(tenant, &CalibrationRequest::default())
            .await?;
        cal.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Records {
        events,
        timeline_ms: latency(timeline),
        timeline_entries: entries,
        growth_ms: latency(growth),
        beliefs_compared: HELD,
        belief_add_ms: latency(adds),
        snapshot_ms: latency(snaps),
        claims: HELD,
        calibration_ms: latency(cal),
    })
}

#[derive(Debug, Serialize)]
struct Scoped {
    concepts_read: usize,
    links_read: usize,
    clusters: usize,
    modularity: f64,
    insights_ms: Latency,
    /// A 20-step dream from a drawn concept, with the memories behind each step.
    dream_20_steps_ms: Latency,
}

/// The algorithms on a random graph of [`continuum_engine::MAX_REFLECT_GRAPH_LINKS`] links.
#[derive(Debug, Serialize)]
struct AtTheCap {
    concepts: usize,
    links: usize,
    clusters_ms: f64,
    betweenness_ms: f64,
    betweenness_sources: usize,
    two_hop_ms: f64,
    dream_20_steps_ms: f64,
}

fn at_the_cap(seed: u64) -> AtTheCap {
    let nodes = 4000usize;
    let mut rng = fastrand::Rng::with_seed(seed);
    // Skewed ends (a few hubs, many rare concepts), as concept graphs are.
    let mut pick = || {
        let u = rng.f64();
        ((u * u * nodes as f64) as usize).min(nodes - 1)
    };
    let mut links = Vec::new();
    while links.len() < continuum_engine::MAX_REFLECT_GRAPH_LINKS {
        let (a, b) = (pick(), pick());
        if a != b {
            links.push((format!("c{a:05}"), format!("c{b:05}"), 0.1));
        }
    }
    let mut rng = fastrand::Rng::with_seed(seed + 1);
    for l in &mut links {
        l.2 = 0.1 + 0.9 * rng.f64();
    }
    let g = continuum_reflect::Graph::new(links);
    let time = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        f();
        t0.elapsed().as_secs_f64() * 1000.0
    };
    let clusters_ms = time(&mut || {
        continuum_reflect::clusters(&g);
    });
    let betweenness_ms = time(&mut || {
        continuum_reflect::betweenness_estimate(&g, continuum_engine::MAX_BETWEENNESS_SOURCES);
    });
    let two_hop_ms = time(&mut || {
        continuum_reflect::two_hop(&g, 10, 50);
    });
    let dream_20_steps_ms = time(&mut || {
        continuum_reflect::dream(&g, None, 20, 1.0, seed);
    });
    AtTheCap {
        concepts: g.len(),
        links: g.edge_count(),
        clusters_ms,
        betweenness_ms,
        betweenness_sources: g.len().min(continuum_engine::MAX_BETWEENNESS_SOURCES),
        two_hop_ms,
        dream_20_steps_ms,
    }
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    memories: u64,
    concepts: u64,
    links: u64,
    default_scope: Scoped,
    largest_scope: Scoped,
    at_the_cap: AtTheCap,
    records: Records,
}

async fn measure(
    engine: &continuum_engine::Engine,
    tenant: &TenantId,
    scope: GraphScope,
    runs: usize,
) -> Result<Scoped> {
    let first = engine.insights(tenant, &scope, 10).await?;
    let mut ins = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        engine.insights(tenant, &scope, 10).await?;
        ins.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let mut dreams = Vec::with_capacity(runs);
    for seed in 0..runs as u64 {
        let req = DreamRequest {
            seed: Some(seed),
            steps: Some(20),
            scope,
            ..Default::default()
        };
        let t0 = Instant::now();
        engine.dream(tenant, &req).await?;
        dreams.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Scoped {
        concepts_read: first.graph.concepts,
        links_read: first.graph.links,
        clusters: first.clusters.len(),
        modularity: first.modularity,
        insights_ms: latency(ins),
        dream_20_steps_ms: latency(dreams),
    })
}

pub async fn reflect(g: &Global, a: ReflectArgs) -> Result<()> {
    if a.memories < 2 || a.runs == 0 {
        return Err(continuum_core::Error::InvalidInput(
            "--memories must be at least 2 and --runs at least 1".into(),
        )
        .into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, backend) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let tenant = TenantId::new("bench")?;
    super::learn_generated(&engine, &tenant, a.memories / 2, a.seed, g.json).await?;
    let stats = engine.stats(&tenant).await?.store;
    let default_scope = measure(&engine, &tenant, GraphScope::default(), a.runs).await?;
    let largest = GraphScope {
        concepts: continuum_engine::MAX_REFLECT_CONCEPTS,
        links_per_concept: continuum_engine::MAX_REFLECT_LINKS_PER_CONCEPT,
    };
    let largest_scope = measure(&engine, &tenant, largest, a.runs.min(5)).await?;
    let records = records(&engine, &tenant, a.runs).await?;
    let report = Report {
        backend: engine.store().backend(),
        memories: stats.memories,
        concepts: stats.concepts,
        links: stats.links,
        default_scope,
        largest_scope,
        at_the_cap: tokio::task::spawn_blocking(move || at_the_cap(a.seed)).await?,
        records,
    };
    scratch.finish(&backend).await?;
    if g.json {
        return crate::output::json(&report);
    }
    println!(
        "{} store: {} memories, {} concepts, {} links",
        report.backend, report.memories, report.concepts, report.links
    );
    for (name, s) in [
        (
            "default scope (500 concepts × 20 links)",
            &report.default_scope,
        ),
        (
            "largest scope (2000 concepts × 100 links)",
            &report.largest_scope,
        ),
    ] {
        println!(
            "{name}: read {} concepts, {} links; {} clusters, modularity {:.2}\n  insights p50 {:.1} ms, p95 {:.1} ms; dream (20 steps) p50 {:.1} ms, p95 {:.1} ms",
            s.concepts_read,
            s.links_read,
            s.clusters,
            s.modularity,
            s.insights_ms.p50,
            s.insights_ms.p95,
            s.dream_20_steps_ms.p50,
            s.dream_20_steps_ms.p95
        );
    }
    let c = &report.at_the_cap;
    println!(
        "random graph at the cap: {} concepts, {} links: clusters {:.0} ms, betweenness ({} sources) {:.0} ms, two-hop {:.0} ms, dream (20 steps) {:.1} ms",
        c.concepts,
        c.links,
        c.clusters_ms,
        c.betweenness_sources,
        c.betweenness_ms,
        c.two_hop_ms,
        c.dream_20_steps_ms
    );
    let r = &report.records;
    println!(
        "event log of {} events: timeline ({} entries) p50 {:.0} ms, p95 {:.0} ms; growth p50 {:.0} ms, p95 {:.0} ms",
        r.events,
        r.timeline_entries,
        r.timeline_ms.p50,
        r.timeline_ms.p95,
        r.growth_ms.p50,
        r.growth_ms.p95
    );
    println!(
        "records: belief against {} active p50 {:.1} ms, p95 {:.1} ms; snapshot p50 {:.0} ms; calibration of {} claims p50 {:.1} ms, p95 {:.1} ms",
        r.beliefs_compared,
        r.belief_add_ms.p50,
        r.belief_add_ms.p95,
        r.snapshot_ms.p50,
        r.claims,
        r.calibration_ms.p50,
        r.calibration_ms.p95
    );
    Ok(())
}
