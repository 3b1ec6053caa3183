//! `bench throughput` (the default `bench`): learn throughput and recall latency on generated
//! conversations.
//!
//! The generator writes plausible chat turns (people, places, tools, projects, hobbies, numbers)
//! from a seeded PRNG, so runs are repeatable and the text has the vocabulary spread of real
//! conversations rather than one repeated sentence. Timings cover engine calls only, not text
//! generation. The store lives in a fresh temporary directory unless `--dir` is given.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;
use continuum_core::memory::Turn;
use continuum_core::{Error, SessionId, TenantId};
use continuum_engine::RecallRequest;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct ThroughputArgs {
    /// Store sizes, in memories, at which recall latency is measured (each turn adds two).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Recall queries timed at each size.
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Turns learned one per transaction after the largest size.
    #[arg(long, default_value_t = 2000)]
    pub single_turns: usize,
    /// Turns per transaction for batch learning.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep the store in this directory instead of a temporary one (must not hold a store).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How session neighbours count in lexical ranking (default: the engine's, expand).
    #[arg(long, value_parser = ["expand", "spread"])]
    pub context_mode: Option<String>,
}

const PEOPLE: &[&str] = &[
    "Alice", "Bob", "Caroline", "Melanie", "Dmitri", "Priya", "Kenji", "Fatima", "Lucas", "Sofia",
    "Omar", "Grace", "Hiro", "Nadia", "Tomas", "Ingrid", "Mateo", "Aisha", "Jonas", "Leila",
    "Ravi", "Elena", "Kwame", "Yuki",
];
const TOOLS: &[&str] = &[
    "Rust",
    "Python",
    "PostgreSQL",
    "SQLite",
    "Redis",
    "Kafka",
    "Docker",
    "Kubernetes",
    "Terraform",
    "React",
    "Tokio",
    "Axum",
    "GraphQL",
    "Grafana",
    "Prometheus",
    "Nginx",
    "Elasticsearch",
    "TypeScript",
    "Go",
    "Kotlin",
    "Swift",
    "RabbitMQ",
    "Airflow",
    "Spark",
    "Django",
    "FastAPI",
    "Svelte",
    "Vault",
    "Consul",
    "Ansible",
];
const PLACES: &[&str] = &[
    "Berlin",
    "Lisbon",
    "Tokyo",
    "Toronto",
    "Nairobi",
    "Lyon",
    "Austin",
    "Seoul",
    "Oslo",
    "Lima",
    "Dublin",
    "Cape Town",
    "Melbourne",
    "Montreal",
    "Krakow",
    "Porto",
];
const PROJECTS: &[&str] = &[
    "billing service",
    "mobile app",
    "data pipeline",
    "search index",
    "checkout flow",
    "onboarding emails",
    "analytics dashboard",
    "payment gateway",
    "recommendation model",
    "support chatbot",
    "inventory sync",
    "auth service",
    "video transcoder",
    "pricing engine",
];
const HOBBIES: &[&str] = &[
    "painting",
    "hiking",
    "violin lessons",
    "pottery",
    "marathon training",
    "sourdough baking",
    "chess",
    "photography",
    "gardening",
    "camping",
    "rock climbing",
    "salsa dancing",
    "birdwatching",
    "woodworking",
    "kayaking",
    "knitting",
];
const DETAILS: &[&str] = &[
    "The staging cluster ran out of memory twice this week.",
    "Latency went from 40 ms to 180 ms at the 99th percentile.",
    "We still have the migration scripts from the spring rewrite.",
    "My manager wants a written proposal by Friday.",
    "The weather was perfect, sunny with a light breeze.",
    "I finally finished the book my friend recommended.",
    "Our budget for the quarter is tight, so no new licences.",
    "The kids loved the museum, especially the dinosaur hall.",
    "Two customers reported duplicate invoices yesterday.",
    "The new intern is picking things up quickly.",
    "I keep forgetting to renew my passport before the trip.",
    "Backups completed but the restore test took four hours.",
    "We adopted a rescue dog named Pepper last month.",
    "The flaky test only fails when the disk is nearly full.",
    "Dinner was homemade ramen with a soft-boiled egg.",
    "The conference talk got accepted, so I need slides.",
];
const MONTHS: &[&str] = &["January", "March", "May", "July", "September", "November"];

pub(super) struct Gen(pub(super) fastrand::Rng);

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.0.usize(..xs.len())]
    }

    fn user(&mut self) -> String {
        let (p, t, t2, pl, pr, h) = (
            self.pick(PEOPLE),
            self.pick(TOOLS),
            self.pick(TOOLS),
            self.pick(PLACES),
            self.pick(PROJECTS),
            self.pick(HOBBIES),
        );
        let n = self.0.u32(2..500);
        let main = match self.0.u8(..7) {
            0 => format!(
                "Can you help me with the {pr}? We use {t} and {t2} and it keeps failing in {pl} (ticket #{n})."
            ),
            1 => format!(
                "{p} told me the {pr} should move to {t} before {}.",
                self.pick(MONTHS)
            ),
            2 => format!(
                "I went {h} with {p} last weekend near {pl}; it took {n} minutes to get there."
            ),
            3 => format!("What do you think about replacing {t} with {t2} for the {pr}?"),
            4 => format!("My cousin {p} is visiting from {pl} next week and wants to try {h}."),
            5 => format!(
                "The {pr} latency doubled after we upgraded {t} to version {}.{}.",
                n % 9,
                n % 13
            ),
            _ => format!("Remind me what {p} said about {t} and the {pr} in {pl}."),
        };
        format!("{main} {}", self.pick(DETAILS))
    }

    fn assistant(&mut self) -> String {
        let (p, t, t2, pl, pr, h) = (
            self.pick(PEOPLE),
            self.pick(TOOLS),
            self.pick(TOOLS),
            self.pick(PLACES),
            self.pick(PROJECTS),
            self.pick(HOBBIES),
        );
        match self.0.u8(..6) {
            0 => format!(
                "The {pr} needs a closer look at {t}. I will check the {t2} configuration and compare it with the staging setup in {pl}."
            ),
            1 => format!(
                "Let's start by profiling {t}; {t2} is rarely the bottleneck for a {pr} of that size."
            ),
            2 => format!(
                "{p} has a point: {t} handles that well, but keep {t2} for the reporting side of the {pr}."
            ),
            3 => format!(
                "That sounds lovely! {h} near {pl} is a great way to unwind. Did {p} enjoy it?"
            ),
            4 => format!(
                "Good idea. The plan is to migrate the {pr} to {t} in two steps and keep {t2} as a fallback."
            ),
            _ => format!(
                "Noted: {p} prefers {t} over {t2}, and the {pr} demo is in {pl} in {}.",
                self.pick(MONTHS)
            ),
        }
    }

    pub(super) fn turn(&mut self, session: usize) -> Turn {
        Turn {
            user_message: self.user(),
            ai_response: self.assistant(),
            thinking: None,
            session_id: Some(SessionId::new(format!("bench-{session}")).expect("valid")),
            metadata: None,
            timestamp: None,
        }
    }

    pub(super) fn query(&mut self) -> String {
        let (p, t, pl, pr, h) = (
            self.pick(PEOPLE),
            self.pick(TOOLS),
            self.pick(PLACES),
            self.pick(PROJECTS),
            self.pick(HOBBIES),
        );
        match self.0.u8(..5) {
            0 => format!("What did {p} say about {t}?"),
            1 => format!("How is the {pr} going with {t}?"),
            2 => format!("Who went {h} near {pl}?"),
            3 => format!("Why was the {pr} slow after the upgrade?"),
            _ => format!("What is the plan for the {pr} in {pl}?"),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p95: f64,
    pub(super) p99: f64,
    pub(super) mean: f64,
}

pub(super) fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    Latency {
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

/// One structure of the text index and what it holds (heap estimates; see
/// `TextIndex::heap_bytes`).
#[derive(Debug, Serialize)]
struct IndexPart {
    part: &'static str,
    bytes: u64,
    per_memory: f64,
}

#[derive(Debug, Serialize)]
struct SizeResult {
    memories: u64,
    /// The text index's heap bytes by structure, after this size's recalls.
    index_bytes: Vec<IndexPart>,
    batch_learn_turns_per_sec: f64,
    recall_ms: Latency,
    disk_mib: f64,
    /// With an embedder: memories embedded per second while catching up this size.
    #[serde(skip_serializing_if = "Option::is_none")]
    embed_per_sec: Option<f64>,
    /// With an embedder: recall latency, the query's vector already computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic_recall_ms: Option<Latency>,
    /// With an embedder: recall latency including embedding the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic_recall_with_query_ms: Option<Latency>,
    /// With an embedder, at sizes of `--ann-min-vectors` (global flag) and up: seconds to build the HNSW
    /// graph over every vector, and recall latency through it (query vector cached). The
    /// two figures above are then those of the exact scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    graph_build_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic_recall_graph_ms: Option<Latency>,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    sizes: Vec<SizeResult>,
    batch_learn_turns_per_sec: f64,
    single_commit_turns: usize,
    single_commit_turns_per_sec: f64,
    /// Events in the log at the end, and how fast the whole log is read back through the
    /// store-wide `events_since`, a page of 1,000 at a time.
    events: u64,
    events_read_per_sec: f64,
    queries_per_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedder: Option<String>,
}

pub async fn throughput(g: &Global, a: ThroughputArgs) -> Result<()> {
    let mut sizes = a.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 || a.queries == 0 || a.batch == 0 {
        return Err(Error::InvalidInput("sizes, queries and batch must be positive".into()).into());
    }
    let scratch = super::Scratch::new(g, a.dir.as_deref())?;
    let mut config = g.engine_config();
    super::set_context_mode(&mut config, a.context_mode.as_deref());

    let (engine, store) = g.open_location(&scratch.location, config).await?;
    let semantic = match g.embedder_settings()?.build().await? {
        Some(e) => {
            let cached = std::sync::Arc::new(super::CachedEmbedder::new(e));
            Some((engine.clone().with_embedder(cached.clone()), cached))
        }
        None => None,
    };
    let tenant = TenantId::new("bench")?;
    let mut text_gen = Gen(fastrand::Rng::with_seed(a.seed));
    let mut results = Vec::new();
    let mut memories = 0u64;
    let mut session = 0usize;
    let (mut total_turns, mut total_secs) = (0u64, 0f64);
    let pb = output::progress(*sizes.last().unwrap() as u64, "learning", g.json);
    for &size in &sizes {
        // Generate the segment's turns first, so the timing covers learning only.
        let need = (size.saturating_sub(memories as usize)).div_ceil(2);
        let mut batches: Vec<Vec<Turn>> = Vec::new();
        let mut turns = Vec::with_capacity(a.batch);
        for i in 0..need {
            if i % 20 == 0 {
                session += 1;
            }
            turns.push(text_gen.turn(session));
            if turns.len() == a.batch {
                batches.push(std::mem::take(&mut turns));
            }
        }
        if !turns.is_empty() {
            batches.push(turns);
        }
        // As `import --turns` does: prepare the next batch on one core, write on the other.
        let t0 = Instant::now();
        let (mut rx, handle) = crate::pipeline::prepare_ahead(
            &engine,
            batches
                .into_iter()
                .map(|b| Ok(b.into_iter().map(|t| (t, None)).collect())),
        );
        let mut seg_turns = 0u64;
        while let Some(prepared) = rx.recv().await {
            let out = engine.apply_turns(&tenant, prepared?).await?;
            seg_turns += out.turns;
            memories += out.memory_ids.len() as u64;
            pb.set_position(memories);
        }
        let _ = handle.join();
        let seg_secs = t0.elapsed().as_secs_f64();
        total_turns += seg_turns;
        total_secs += seg_secs;
        for _ in 0..20 {
            engine
                .recall(&tenant, &RecallRequest::new(text_gen.query()))
                .await?;
        }
        let mut ms = Vec::with_capacity(a.queries);
        for _ in 0..a.queries {
            let req = RecallRequest::new(text_gen.query());
            let t0 = Instant::now();
            engine.recall(&tenant, &req).await?;
            ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        let (mut embed_per_sec, mut sem_ms, mut sem_q_ms) = (None, None, None);
        let (mut graph_secs, mut graph_ms) = (None, None);
        if let Some((sem, cache)) = &semantic {
            let epb = output::progress(0, "embedding", g.json);
            let r = sem
                .reindex(&tenant, false, &mut |done, total| {
                    epb.set_length(total);
                    epb.set_position(done);
                })
                .await?;
            epb.finish_and_clear();
            embed_per_sec = Some(r.embedded as f64 / r.seconds.max(1e-9));
            let queries: Vec<String> = (0..a.queries).map(|_| text_gen.query()).collect();
            // First the exact scan: no graph is built by this engine's recalls.
            let exact = sem.clone().with_config(continuum_engine::EngineConfig {
                ann_min_vectors: usize::MAX,
                ..sem.config().clone()
            })?;
            let (mut with_q, mut without) = (Vec::new(), Vec::new());
            for q in &queries {
                let t0 = Instant::now();
                exact
                    .recall(&tenant, &RecallRequest::new(q.clone()))
                    .await?;
                with_q.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            // Now every query's vector is cached: the same recalls without embedding.
            for q in &queries {
                let t0 = Instant::now();
                exact
                    .recall(&tenant, &RecallRequest::new(q.clone()))
                    .await?;
                without.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            sem_ms = Some(latency(without));
            sem_q_ms = Some(latency(with_q));
            let t0 = Instant::now();
            let built = crate::commands::reindex::build_graph(sem, &tenant, g.json).await?;
            if built.is_some() {
                graph_secs = Some(t0.elapsed().as_secs_f64());
                let mut through = Vec::new();
                for q in &queries {
                    let t0 = Instant::now();
                    let r = sem.recall(&tenant, &RecallRequest::new(q.clone())).await?;
                    through.push(t0.elapsed().as_secs_f64() * 1000.0);
                    if r.semantic.as_ref().map(|s| s.search.as_str()) != Some("hnsw") {
                        return Err(Error::Internal("the vector graph was not used".into()).into());
                    }
                }
                graph_ms = Some(latency(through));
            }
            cache.clear();
        }
        let bytes = store.disk_bytes(&engine, &tenant).await?;
        let index_bytes = engine
            .text_index_bytes(&tenant)
            .unwrap_or_default()
            .into_iter()
            .map(|(part, b)| IndexPart {
                part,
                bytes: b as u64,
                per_memory: b as f64 / memories.max(1) as f64,
            })
            .collect();
        results.push(SizeResult {
            index_bytes,
            memories,
            batch_learn_turns_per_sec: seg_turns as f64 / seg_secs.max(1e-9),
            recall_ms: latency(ms),
            disk_mib: bytes as f64 / (1024.0 * 1024.0),
            embed_per_sec,
            semantic_recall_ms: sem_ms,
            semantic_recall_with_query_ms: sem_q_ms,
            graph_build_secs: graph_secs,
            semantic_recall_graph_ms: graph_ms,
        });
    }
    pb.finish_and_clear();
    let t0 = Instant::now();
    for _ in 0..a.single_turns {
        engine.learn(&tenant, text_gen.turn(session)).await?;
    }
    let single = a.single_turns as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    let t0 = Instant::now();
    let (mut events, mut after) = (0u64, 0u64);
    loop {
        let page = engine
            .events_all_tenants(after, continuum_engine::MAX_EVENTS_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        events += page.len() as u64;
    }
    let events_read_per_sec = events as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    scratch.finish(&store).await?;
    let report = BenchReport {
        sizes: results,
        batch_learn_turns_per_sec: total_turns as f64 / total_secs.max(1e-9),
        single_commit_turns: a.single_turns,
        single_commit_turns_per_sec: single,
        events,
        events_read_per_sec,
        queries_per_size: a.queries,
        embedder: semantic.as_ref().map(|(s, _)| {
            s.embedder()
                .map(|e| e.model().to_string())
                .unwrap_or_default()
        }),
    };
    if g.json {
        return output::json(&report);
    }
    println!(
        "batch learn: {:.0} turns/s ({} turns per transaction)",
        report.batch_learn_turns_per_sec, a.batch
    );
    println!(
        "one turn per transaction: {:.0} turns/s ({} turns)",
        single, a.single_turns
    );
    println!(
        "event log: {} events, read back at {:.0} events/s",
        report.events, report.events_read_per_sec
    );
    println!(
        "{:>10}  {:>12}  {:>9}  {:>9}  {:>9}  {:>9}",
        "memories", "learn t/s", "p50 ms", "p95 ms", "p99 ms", "disk MiB"
    );
    for r in &report.sizes {
        println!(
            "{:>10}  {:>12.0}  {:>9.3}  {:>9.3}  {:>9.3}  {:>9.1}",
            r.memories,
            r.batch_learn_turns_per_sec,
            r.recall_ms.p50,
            r.recall_ms.p95,
            r.recall_ms.p99,
            r.disk_mib
        );
    }
    if let Some(last) = report.sizes.last() {
        let total: u64 = last.index_bytes.iter().map(|p| p.bytes).sum();
        println!(
            "text index at {} memories: {:.1} MiB, {:.0} bytes per memory",
            last.memories,
            total as f64 / (1024.0 * 1024.0),
            total as f64 / last.memories.max(1) as f64
        );
        for p in &last.index_bytes {
            println!("  {:<26} {:>10.1} bytes/memory", p.part, p.per_memory);
        }
    }
    if let Some(model) = &report.embedder {
        println!("with embedder {model}:");
        println!(
            "{:>10}  {:>12}  {:>12}  {:>12}  {:>16}",
            "memories", "embed/s", "p50 ms", "p95 ms", "p50 ms + query"
        );
        for r in &report.sizes {
            if let (Some(e), Some(s), Some(q)) = (
                r.embed_per_sec,
                &r.semantic_recall_ms,
                &r.semantic_recall_with_query_ms,
            ) {
                println!(
                    "{:>10}  {:>12.1}  {:>12.3}  {:>12.3}  {:>16.3}",
                    r.memories, e, s.p50, s.p95, q.p50
                );
            }
        }
        if report.sizes.iter().any(|r| r.graph_build_secs.is_some()) {
            println!("through the vector graph (HNSW), query vector cached:");
            println!(
                "{:>10}  {:>12}  {:>12}  {:>12}",
                "memories", "build s", "p50 ms", "p95 ms"
            );
            for r in &report.sizes {
                if let (Some(b), Some(s)) = (r.graph_build_secs, &r.semantic_recall_graph_ms) {
                    println!(
                        "{:>10}  {:>12.1}  {:>12.3}  {:>12.3}",
                        r.memories, b, s.p50, s.p95
                    );
                }
            }
        }
    }
    Ok(())
}
