//! `bench locomo`: does recall find the turns that answer a question?
//!
//! Reads any file in the LoCoMo format (a JSON array of samples, each with a `conversation` of
//! sessions and a `qa` list whose answers cite evidence turns by `dia_id`). Each conversation
//! goes into a fresh tenant through the normal engine path, one turn = one memory: the content is
//! `Speaker: text` (plus `[image: caption]` when the turn shared a picture), the session is the
//! memory's session, and the session's date-time is its time (turns one second apart, in order).
//! Every question of categories 1–4 is asked through `recall`; the recalled memories are mapped
//! back to turn ids and scored: recall@k (share of a question's evidence turns in the top k,
//! averaged over questions) and hit@k (any evidence turn in the top k), and the same at session
//! level (a retrieved unit is a session: the distinct sessions of the ranked turns, in order).
//!
//! Several settings can be compared in one run (the memories are stored and embedded once);
//! with `--folds K` the settings are cross-validated over conversations: each fold is scored
//! with the setting that did best on the other folds.

mod data;
mod score;

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::Error;
use continuum_core::embed::Embedder;
use continuum_engine::{Engine, EngineConfig, RecallRequest};
use data::Conversation;
use score::{Row, Scores};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct LocomoArgs {
    /// A LoCoMo-format file (the LoCoMo release's `locomo10.json`, or a split of it).
    #[arg(long)]
    pub data: PathBuf,
    /// Cut-offs for recall@k and hit@k.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20")]
    pub k: Vec<usize>,
    /// Keep the stores in this directory instead of a temporary one (must not hold a store).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Override the session-context weights (neighbours 1, 2, … places away; the engine's
    /// `session_context`, or `session_context_with_embedder` with an embedder); `none` for none.
    /// Repeat to compare settings in one run (memories are stored and embedded once); every
    /// combination of the repeated options is measured.
    #[arg(long, value_name = "W1,W2,…")]
    pub context_weights: Vec<String>,
    /// How session neighbours count in lexical ranking: expand (BM25F over own and neighbours'
    /// text) or spread (shares of neighbours' scores).
    #[arg(long, value_parser = ["expand", "spread"])]
    pub context_mode: Option<String>,
    /// Weight of the neighbours' text field in expand mode. Repeatable.
    #[arg(long)]
    pub neighbour_weight: Vec<f64>,
    /// Boost of turns by a speaker the question names (engine `speaker_boost`; 0 turns it off).
    /// Repeatable.
    #[arg(long)]
    pub speaker_boost: Vec<f64>,
    /// Boost of memories that place something in time, for questions about when (engine
    /// `temporal_boost`; 0 turns it off). Repeatable.
    #[arg(long)]
    pub temporal_boost: Vec<f64>,
    /// Boost of memories made in the period a question names (engine `period_boost`; 0 turns
    /// it off). Repeatable.
    #[arg(long)]
    pub period_boost: Vec<f64>,
    /// Override the fusion weights: lexical,graph,recency or lexical,semantic,graph,recency.
    /// Repeatable.
    #[arg(long, value_name = "L,S,G,R")]
    pub fusion: Vec<String>,
    /// Override the semantic session-context weights (with an embedder); `none` for none.
    /// Repeatable.
    #[arg(long, value_name = "W1,W2,…")]
    pub semantic_context: Vec<String>,
    /// Score only every other question (`a`: the 1st, 3rd, …; `b`: the 2nd, 4th, …), so that
    /// settings chosen on one half can be checked on the other.
    #[arg(long, value_parser = ["a", "b"])]
    pub half: Option<String>,
    /// Cross-validate over conversations in this many folds (conversation i in fold i mod K):
    /// each fold is scored with the setting of best recall@--select-k on the other folds, and
    /// the report gives every fold, their mean and the worst. With one setting, its scores per
    /// fold.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    /// The turn-level recall@k that --folds chooses settings by (one of --k).
    #[arg(long, default_value_t = 10)]
    pub select_k: usize,
}

fn weights(s: &str, what: &str) -> Result<Vec<f64>> {
    if s == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| w.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::InvalidInput(format!("{what} must be comma-separated numbers")).into())
}

fn parse_fusion(f: &str) -> Result<continuum_core::rank::FusionWeights> {
    crate::app::parse_fusion_weights(f)
        .map_err(|e| Error::InvalidInput(format!("--fusion: {e}")).into())
}

/// Each of `configs` once per value given (unchanged when none is).
fn vary<T: Clone>(
    configs: Vec<EngineConfig>,
    values: &[T],
    set: impl Fn(&mut EngineConfig, T),
) -> Vec<EngineConfig> {
    if values.is_empty() {
        return configs;
    }
    let mut out = Vec::with_capacity(configs.len() * values.len());
    for c in configs {
        for v in values {
            let mut c = c.clone();
            set(&mut c, v.clone());
            out.push(c);
        }
    }
    out
}

/// A setting's name: every knob the options can vary.
fn label(c: &EngineConfig, embedder: bool) -> String {
    let f = &c.fusion;
    let list = |w: &[f64]| {
        if w.is_empty() {
            "none".to_string()
        } else {
            w.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let mut s = if embedder {
        format!(
            "fusion {}/{}/{}/{} semctx {}",
            f.lexical,
            f.semantic,
            f.graph,
            f.recency,
            list(&c.semantic_context)
        )
    } else {
        format!("fusion {}/{}/{}", f.lexical, f.graph, f.recency)
    };
    s.push_str(&format!(
        " ctx {} nbr {} spk {} time {} period {}",
        list(if embedder {
            &c.session_context_with_embedder
        } else {
            &c.session_context
        }),
        c.neighbour_field_weight,
        c.speaker_boost,
        c.temporal_boost,
        c.period_boost
    ));
    s
}

/// Every combination of the settings the options give (the defaults where none are).
fn settings(a: &LocomoArgs, base: &EngineConfig) -> Result<Vec<EngineConfig>> {
    let fusions = a
        .fusion
        .iter()
        .map(|f| parse_fusion(f))
        .collect::<Result<Vec<_>>>()?;
    let sem = a
        .semantic_context
        .iter()
        .map(|w| weights(w, "--semantic-context"))
        .collect::<Result<Vec<_>>>()?;
    let ctx = a
        .context_weights
        .iter()
        .map(|w| weights(w, "--context-weights"))
        .collect::<Result<Vec<_>>>()?;
    const MAX_SETTINGS: usize = 500;
    let count = [
        fusions.len(),
        sem.len(),
        ctx.len(),
        a.neighbour_weight.len(),
        a.speaker_boost.len(),
        a.temporal_boost.len(),
        a.period_boost.len(),
    ]
    .iter()
    .fold(1usize, |n, &l| n.saturating_mul(l.max(1)));
    if count > MAX_SETTINGS {
        return Err(Error::InvalidInput(format!(
            "{count} settings to compare; at most {MAX_SETTINGS}"
        ))
        .into());
    }
    let mut out = vary(vec![base.clone()], &fusions, |c, v| c.fusion = v);
    out = vary(out, &sem, |c, v| c.semantic_context = v);
    // One run measures one mode (with or without an embedder): both context settings.
    out = vary(out, &ctx, |c, v| {
        c.session_context_with_embedder = v.clone();
        c.session_context = v;
    });
    out = vary(out, &a.neighbour_weight, |c, v| {
        c.neighbour_field_weight = v
    });
    out = vary(out, &a.speaker_boost, |c, v| c.speaker_boost = v);
    out = vary(out, &a.temporal_boost, |c, v| c.temporal_boost = v);
    out = vary(out, &a.period_boost, |c, v| c.period_boost = v);
    for c in &out {
        c.validate()?;
    }
    Ok(out)
}

/// One setting's answers over the whole file.
#[derive(Debug, Serialize)]
struct Report {
    setting: String,
    /// The embedding model, when one was on.
    embedder: Option<String>,
    fusion: continuum_core::rank::FusionWeights,
    semantic_context: Vec<f64>,
    questions: usize,
    recall_at: BTreeMap<String, f64>,
    hit_at: BTreeMap<String, f64>,
    /// Session level: a retrieved unit is a session (the distinct sessions of the ranked
    /// turns, in order; up to 100 turns are ranked for it).
    session_recall_at: BTreeMap<String, f64>,
    session_hit_at: BTreeMap<String, f64>,
    by_category: BTreeMap<String, Scores>,
    latency_ms: BTreeMap<String, f64>,
    /// With an embedder: how many questions found their nearest vectors each way (`hnsw`,
    /// `exact`, `store`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    vector_search: BTreeMap<String, usize>,
    conversations: usize,
    memories: usize,
    skipped_questions: usize,
    skipped_evidence_ids: usize,
}

/// What the ingest found, for every report.
struct Totals {
    conversations: usize,
    memories: usize,
    skipped_questions: usize,
    skipped_evidence_ids: usize,
}

pub async fn locomo(g: &Global, a: LocomoArgs) -> Result<()> {
    let mut ks = a.k.clone();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() || ks[0] == 0 || *ks.last().unwrap() > 100 {
        return Err(Error::InvalidInput("--k values must lie between 1 and 100".into()).into());
    }
    if a.folds.is_some() && !ks.contains(&a.select_k) {
        return Err(Error::InvalidInput(format!(
            "--select-k {} is not one of --k {ks:?}",
            a.select_k
        ))
        .into());
    }
    let raw = std::fs::read(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let samples: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| {
        Error::InvalidInput(format!(
            "{} is not a LoCoMo file (a JSON array of samples): {e}",
            a.data.display()
        ))
    })?;
    if let Some(k) = a.folds
        && (k < 2 || k > samples.len())
    {
        return Err(Error::InvalidInput(format!(
            "--folds must lie between 2 and the number of conversations ({})",
            samples.len()
        ))
        .into());
    }
    let scratch = super::Scratch::new(g, a.dir.as_deref())?;
    let mut base = g.engine_config();
    super::set_context_mode(&mut base, a.context_mode.as_deref());
    let configs = settings(&a, &base)?;
    let (plain, backend) = g.open_location(&scratch.location, base.clone()).await?;
    let embedder: Option<Arc<dyn Embedder>> = g
        .embedder_settings()?
        .build()
        .await?
        .map(|inner| Arc::new(super::CachedEmbedder::new(inner)) as Arc<dyn Embedder>);
    let with_embedder = |e: Engine| match &embedder {
        Some(em) => e.with_embedder(em.clone()),
        None => e,
    };
    let ingest = with_embedder(plain);

    let (convs, memories, skipped_questions, skipped_evidence_ids) =
        data::ingest_all(&ingest, &samples, a.half.as_deref(), g.json).await?;
    if embedder.is_some() {
        let total: u64 = convs.iter().map(|c| c.turn_of.len() as u64).sum();
        let pb = output::progress(total, "embedding", g.json);
        let mut before = 0;
        for c in &convs {
            let r = ingest
                .reindex(&c.tenant, false, &mut |done, _| {
                    pb.set_position(before + done)
                })
                .await?;
            before += r.embedded;
        }
        pb.finish_and_clear();
    }
    let totals = Totals {
        conversations: samples.len(),
        memories,
        skipped_questions,
        skipped_evidence_ids,
    };
    let model = embedder.as_ref().map(|e| e.model().to_string());
    let pb = output::progress(
        configs.len() as u64,
        "settings",
        g.json || configs.len() < 2,
    );
    let mut reports = Vec::new();
    let mut names = Vec::new();
    let mut answers = Vec::new();
    for cfg in configs {
        let engine = with_embedder(Engine::new(ingest.store().clone(), cfg.clone())?);
        let (rows, report) = evaluate(&engine, &convs, &ks, &cfg, &totals, model.clone()).await?;
        names.push(report.setting.clone());
        reports.push(report);
        answers.push(rows);
        pb.inc(1);
    }
    pb.finish_and_clear();
    scratch.finish(&backend).await?;
    let cv = a
        .folds
        .map(|k| score::cross_validate(&names, &answers, &ks, k, a.select_k));
    if g.json {
        return match (&cv, reports.len()) {
            (None, 1) => output::json(&reports[0]),
            (None, _) => output::json(&reports),
            (Some(cv), _) => output::json(&serde_json::json!({
                "settings": reports,
                "cross_validation": cv,
            })),
        };
    }
    for report in &reports {
        print_report(report, &ks);
    }
    if let Some(cv) = &cv {
        score::print_cross_validation(cv, &ks);
    }
    Ok(())
}

/// Asks every question through `recall` and scores the answers: one row per question, and
/// the setting's report.
async fn evaluate(
    engine: &Engine,
    convs: &[Conversation],
    ks: &[usize],
    cfg: &EngineConfig,
    totals: &Totals,
    embedder: Option<String>,
) -> Result<(Vec<Row>, Report)> {
    let max_k = *ks.last().unwrap_or(&10);
    let mut rows: Vec<Row> = Vec::new();
    let mut latencies = Vec::new();
    let mut vector_search = BTreeMap::new();
    for (ci, c) in convs.iter().enumerate() {
        // Conversations of `--ann-min-vectors` vectors or more are searched through the HNSW
        // graph: build it first, so every question sees the same search.
        engine
            .build_vector_index(&c.tenant, std::sync::Arc::new(|_, _| {}))
            .await?;
        for q in &c.questions {
            let ask = |limit: usize| RecallRequest {
                query: q.text.clone(),
                limit: Some(limit),
                ..Default::default()
            };
            let t0 = Instant::now();
            let r = engine.recall(&c.tenant, &ask(max_k)).await?;
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            if let Some(e) = r.semantic.as_ref().and_then(|s| s.error.as_ref()) {
                return Err(Error::Unavailable(format!("the embedder failed: {e}")).into());
            }
            if let Some(s) = &r.semantic {
                *vector_search.entry(s.search.clone()).or_insert(0) += 1;
            }
            let turns: Vec<&String> = r
                .memories
                .iter()
                .filter_map(|m| c.turn_of.get(&m.id).map(|t| &t.0))
                .collect();
            let evidence: HashSet<&String> = q.evidence.iter().collect();
            let recall = score::recall_at(&turns, &evidence, ks);
            // Sessions are ranked from a longer list, so that k distinct ones exist; the
            // turn-level figures keep the list and the latency of an ordinary recall.
            let long = engine
                .recall(&c.tenant, &ask(engine.config().max_recall_limit))
                .await?;
            let sessions = score::distinct(
                long.memories
                    .iter()
                    .filter_map(|m| c.turn_of.get(&m.id).map(|t| t.1)),
            );
            let session_recall = score::recall_at(&sessions, &q.sessions, ks);
            rows.push(Row {
                conversation: ci,
                category: q.category,
                hit: recall.iter().map(|r| *r > 0.0).collect(),
                recall,
                session_hit: session_recall.iter().map(|r| *r > 0.0).collect(),
                session_recall,
            });
        }
    }
    if rows.is_empty() {
        return Err(Error::InvalidInput(
            "no question of categories 1-4 with known evidence turns".into(),
        )
        .into());
    }
    let all: Vec<&Row> = rows.iter().collect();
    let overall = score::score(&all, ks);
    let by_category = score::by_category(&all, ks);
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let report = Report {
        setting: label(cfg, embedder.is_some()),
        embedder,
        fusion: cfg.fusion,
        semantic_context: cfg.semantic_context.clone(),
        questions: overall.questions,
        recall_at: overall.recall_at,
        hit_at: overall.hit_at,
        session_recall_at: overall.session_recall_at,
        session_hit_at: overall.session_hit_at,
        by_category,
        latency_ms: BTreeMap::from([("p50".to_string(), q(0.5)), ("p95".to_string(), q(0.95))]),
        vector_search,
        conversations: totals.conversations,
        memories: totals.memories,
        skipped_questions: totals.skipped_questions,
        skipped_evidence_ids: totals.skipped_evidence_ids,
    };
    Ok((rows, report))
}

fn print_report(report: &Report, ks: &[usize]) {
    println!(
        "{} questions from {} conversations ({} memories); {} questions and {} evidence ids skipped",
        report.questions,
        report.conversations,
        report.memories,
        report.skipped_questions,
        report.skipped_evidence_ids
    );
    println!(
        "embedder {}; {}",
        report.embedder.as_deref().unwrap_or("none"),
        report.setting
    );
    let overall = Scores {
        questions: report.questions,
        recall_at: report.recall_at.clone(),
        hit_at: report.hit_at.clone(),
        session_recall_at: report.session_recall_at.clone(),
        session_hit_at: report.session_hit_at.clone(),
    };
    let mut lines = vec![("all".to_string(), &overall)];
    for (c, s) in &report.by_category {
        lines.push((format!("cat {c}"), s));
    }
    score::print_table(ks, &lines);
    println!("R@k, H@k: turns; sR@k, sH@k: sessions (distinct sessions of the ranked turns)");
    println!(
        "recall latency p50 {:.2} ms, p95 {:.2} ms",
        report.latency_ms["p50"], report.latency_ms["p95"]
    );
    println!();
}
