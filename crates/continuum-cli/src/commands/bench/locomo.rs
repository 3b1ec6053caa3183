//! `bench locomo`: does recall find the turns that answer a question?
//!
//! Reads any file in the LoCoMo format (a JSON array of samples, each with a `conversation` of
//! sessions and a `qa` list whose answers cite evidence turns by `dia_id`). Each conversation
//! goes into a fresh tenant through the normal engine path, one turn = one memory: the content is
//! `Speaker: text` (plus `[image: caption]` when the turn shared a picture), the session is the
//! memory's session, and the session's date-time is its time (turns one second apart, in order).
//! Every question of categories 1–4 is asked through `recall`; the recalled memories are mapped
//! back to turn ids and scored: recall@k (share of a question's evidence turns in the top k,
//! averaged over questions) and hit@k (any evidence turn in the top k).

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::embed::Embedder;
use continuum_core::memory::Metadata;
use continuum_core::{Error, MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RecallRequest, RememberRequest};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Override the session-context weights (neighbours 1, 2, … places away); `none` for none.
    #[arg(long, value_name = "W1,W2,…")]
    pub context_weights: Option<String>,
    /// How session neighbours count in lexical ranking: expand (BM25F over own and neighbours'
    /// text) or spread (shares of neighbours' scores).
    #[arg(long, value_parser = ["expand", "spread"])]
    pub context_mode: Option<String>,
    /// Weight of the neighbours' text field in expand mode.
    #[arg(long)]
    pub neighbour_weight: Option<f64>,
    /// Boost of turns by a speaker the question names (engine `speaker_boost`; 0 turns it off).
    #[arg(long)]
    pub speaker_boost: Option<f64>,
    /// Override the fusion weights: lexical,graph,recency or lexical,semantic,graph,recency.
    /// Repeat to compare settings in one run (memories are stored and embedded once).
    #[arg(long, value_name = "L,S,G,R")]
    pub fusion: Vec<String>,
    /// Override the semantic session-context weights (with an embedder); `none` for none.
    /// Repeatable, like --fusion.
    #[arg(long, value_name = "W1,W2,…")]
    pub semantic_context: Vec<String>,
    /// Score only every other question (`a`: the 1st, 3rd, …; `b`: the 2nd, 4th, …), so that
    /// settings chosen on one half can be checked on the other.
    #[arg(long, value_parser = ["a", "b"])]
    pub half: Option<String>,
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

/// Question categories scored (5, adversarial, has no evidence to find).
const SCORED: [u64; 4] = [1, 2, 3, 4];

#[derive(Debug, Default, Serialize)]
struct Scores {
    questions: usize,
    recall_at: BTreeMap<String, f64>,
    hit_at: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    /// The embedding model, when one was on.
    embedder: Option<String>,
    fusion: continuum_core::rank::FusionWeights,
    semantic_context: Vec<f64>,
    questions: usize,
    recall_at: BTreeMap<String, f64>,
    hit_at: BTreeMap<String, f64>,
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

/// "1:56 pm on 8 May, 2023" → a timestamp (taken as UTC).
fn parse_session_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    for fmt in [
        "%I:%M %p on %d %B, %Y",
        "%I:%M %p on %d %b, %Y",
        "%H:%M on %d %B, %Y",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Timestamp(dt.and_utc().timestamp_millis()));
        }
    }
    Timestamp::parse(s).ok()
}

struct Turn {
    dia_id: String,
    speaker: String,
    text: String,
}

struct Session {
    number: u64,
    at: Option<Timestamp>,
    turns: Vec<Turn>,
}

fn sessions(conv: &serde_json::Map<String, Value>) -> Vec<Session> {
    let mut out: Vec<Session> = conv
        .iter()
        .filter_map(|(k, v)| {
            let n: u64 = k.strip_prefix("session_")?.parse().ok()?;
            let turns = v.as_array()?;
            let at = conv
                .get(&format!("session_{n}_date_time"))
                .and_then(Value::as_str)
                .and_then(parse_session_time);
            let turns = turns
                .iter()
                .filter_map(|t| {
                    let mut text = t.get("text")?.as_str()?.trim().to_string();
                    if let Some(c) = t.get("blip_caption").and_then(Value::as_str) {
                        text = format!("{text} [image: {}]", c.trim());
                    }
                    Some(Turn {
                        dia_id: t.get("dia_id")?.as_str()?.trim().to_string(),
                        speaker: t
                            .get("speaker")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                        text,
                    })
                })
                .filter(|t| !t.text.is_empty())
                .collect();
            Some(Session {
                number: n,
                at,
                turns,
            })
        })
        .collect();
    out.sort_by_key(|s| s.number);
    out
}

/// A question with the turns that answer it.
struct Question {
    category: u64,
    text: String,
    evidence: HashSet<String>,
}

/// One conversation as stored: its tenant, memory → turn id, and its questions.
struct Conversation {
    tenant: TenantId,
    turn_of: HashMap<MemoryId, String>,
    questions: Vec<Question>,
}

fn parse_fusion(f: &str) -> Result<continuum_core::rank::FusionWeights> {
    crate::app::parse_fusion_weights(f)
        .map_err(|e| Error::InvalidInput(format!("--fusion: {e}")).into())
}

pub async fn locomo(g: &Global, a: LocomoArgs) -> Result<()> {
    let mut ks = a.k.clone();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() || ks[0] == 0 || *ks.last().unwrap() > 100 {
        return Err(Error::InvalidInput("--k values must lie between 1 and 100".into()).into());
    }
    let raw = std::fs::read(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let samples: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| {
        Error::InvalidInput(format!(
            "{} is not a LoCoMo file (a JSON array of samples): {e}",
            a.data.display()
        ))
    })?;
    let scratch = super::Scratch::new(g, a.dir.as_deref())?;
    let mut base = g.engine_config();
    if let Some(w) = &a.context_weights {
        base.session_context = weights(w, "--context-weights")?;
    }
    super::set_context_mode(&mut base, a.context_mode.as_deref());
    if let Some(w) = a.neighbour_weight {
        base.neighbour_field_weight = w;
    }
    if let Some(b) = a.speaker_boost {
        base.speaker_boost = b;
    }
    // Every combination of the settings given (the defaults when none are).
    let fusions = if a.fusion.is_empty() {
        vec![base.fusion]
    } else {
        a.fusion
            .iter()
            .map(|f| parse_fusion(f))
            .collect::<Result<Vec<_>>>()?
    };
    let contexts = if a.semantic_context.is_empty() {
        vec![base.semantic_context.clone()]
    } else {
        a.semantic_context
            .iter()
            .map(|w| weights(w, "--semantic-context"))
            .collect::<Result<Vec<_>>>()?
    };
    let mut configs = Vec::new();
    for f in &fusions {
        for c in &contexts {
            let cfg = EngineConfig {
                fusion: *f,
                semantic_context: c.clone(),
                ..base.clone()
            };
            cfg.validate()?;
            configs.push(cfg);
        }
    }
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

    let (convs, memories, skipped_q, skipped_ids) =
        ingest_all(&ingest, &samples, a.half.as_deref(), g.json).await?;
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
    let mut reports = Vec::new();
    for cfg in configs {
        let engine = with_embedder(Engine::new(ingest.store().clone(), cfg.clone())?);
        reports.push(
            evaluate(
                &engine,
                &convs,
                &ks,
                &cfg,
                samples.len(),
                memories,
                skipped_q,
                skipped_ids,
                embedder.as_ref().map(|e| e.model().to_string()),
            )
            .await?,
        );
    }
    scratch.finish(&backend).await?;
    if g.json {
        return if reports.len() == 1 {
            output::json(&reports[0])
        } else {
            output::json(&reports)
        };
    }
    for report in &reports {
        print_report(report, &ks);
    }
    Ok(())
}

/// Stores every conversation (one tenant each) and collects the questions to ask.
async fn ingest_all(
    engine: &Engine,
    samples: &[Value],
    half: Option<&str>,
    quiet: bool,
) -> Result<(Vec<Conversation>, usize, usize, usize)> {
    let (mut memories, mut skipped_q, mut skipped_ids) = (0usize, 0usize, 0usize);
    let mut question_no = 0usize;
    let mut convs = Vec::new();
    let pb = output::progress(samples.len() as u64, "conversations", quiet);
    for (i, sample) in samples.iter().enumerate() {
        let conv = sample
            .get("conversation")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::InvalidInput(format!("sample {i} has no conversation object")))?;
        let tenant = TenantId::new(format!("locomo-{i}"))?;
        let mut turn_of: HashMap<MemoryId, String> = HashMap::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut last_at = Timestamp(0);
        for session in sessions(conv) {
            // A session without a readable date follows the previous one by a day.
            let start = session
                .at
                .unwrap_or(Timestamp(last_at.millis() + 86_400_000));
            let sid = SessionId::new(format!("session_{}", session.number))?;
            for (j, turn) in session.turns.iter().enumerate() {
                let mut metadata = Metadata::new();
                metadata.insert("speaker".into(), turn.speaker.clone().into());
                metadata.insert("dia_id".into(), turn.dia_id.clone().into());
                let content = if turn.speaker.is_empty() {
                    turn.text.clone()
                } else {
                    format!("{}: {}", turn.speaker, turn.text)
                };
                let at = Timestamp(start.millis() + j as i64 * 1000);
                let m = engine
                    .remember(
                        &tenant,
                        RememberRequest {
                            content,
                            source: Source::User,
                            kind: Some("turn".into()),
                            session: Some(sid.clone()),
                            metadata,
                            created_at: Some(at),
                        },
                    )
                    .await?;
                turn_of.insert(m.id, turn.dia_id.clone());
                known.insert(turn.dia_id.clone());
                memories += 1;
                last_at = at;
            }
        }
        let mut questions = Vec::new();
        for qa in sample
            .get("qa")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(category) = qa.get("category").and_then(Value::as_u64) else {
                continue;
            };
            if !SCORED.contains(&category) {
                continue;
            }
            question_no += 1;
            match half {
                Some("a") if question_no.is_multiple_of(2) => continue,
                Some("b") if !question_no.is_multiple_of(2) => continue,
                _ => {}
            }
            let question = qa
                .get("question")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let evidence: Vec<String> = qa
                .get("evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|e| e.trim().to_string())
                .collect();
            let valid: HashSet<String> = evidence
                .iter()
                .filter(|e| known.contains(*e))
                .cloned()
                .collect();
            skipped_ids += evidence.len() - valid.len();
            if question.is_empty() || valid.is_empty() {
                skipped_q += 1;
                continue;
            }
            questions.push(Question {
                category,
                text: question.to_string(),
                evidence: valid,
            });
        }
        convs.push(Conversation {
            tenant,
            turn_of,
            questions,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((convs, memories, skipped_q, skipped_ids))
}

/// Asks every question through `recall` and scores the answers.
#[allow(clippy::too_many_arguments)]
async fn evaluate(
    engine: &Engine,
    convs: &[Conversation],
    ks: &[usize],
    cfg: &EngineConfig,
    conversations: usize,
    memories: usize,
    skipped_q: usize,
    skipped_ids: usize,
    embedder: Option<String>,
) -> Result<Report> {
    let max_k = *ks.last().unwrap_or(&10);
    // Per question: (category, recall@k for each k, hit@k for each k).
    let mut results: Vec<(u64, Vec<f64>, Vec<bool>)> = Vec::new();
    let mut latencies = Vec::new();
    let mut vector_search = BTreeMap::new();
    for c in convs {
        // Conversations of `--ann-min-vectors` vectors or more are searched through the HNSW
        // graph: build it first, so every question sees the same search.
        engine
            .build_vector_index(&c.tenant, std::sync::Arc::new(|_, _| {}))
            .await?;
        for q in &c.questions {
            let req = RecallRequest {
                query: q.text.clone(),
                limit: Some(max_k),
                ..Default::default()
            };
            let t0 = Instant::now();
            let r = engine.recall(&c.tenant, &req).await?;
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            if let Some(e) = r.semantic.as_ref().and_then(|s| s.error.as_ref()) {
                return Err(Error::Unavailable(format!("the embedder failed: {e}")).into());
            }
            if let Some(s) = &r.semantic {
                *vector_search.entry(s.search.clone()).or_insert(0) += 1;
            }
            let ranked: Vec<&String> = r
                .memories
                .iter()
                .filter_map(|m| c.turn_of.get(&m.id))
                .collect();
            let recall: Vec<f64> = ks
                .iter()
                .map(|&k| {
                    let top: HashSet<&String> = ranked.iter().take(k).copied().collect();
                    q.evidence.iter().filter(|e| top.contains(*e)).count() as f64
                        / q.evidence.len() as f64
                })
                .collect();
            let hit = recall.iter().map(|r| *r > 0.0).collect();
            results.push((q.category, recall, hit));
        }
    }
    if results.is_empty() {
        return Err(Error::InvalidInput(
            "no question of categories 1-4 with known evidence turns".into(),
        )
        .into());
    }
    let score = |rows: &[&(u64, Vec<f64>, Vec<bool>)]| -> Scores {
        let n = rows.len().max(1) as f64;
        let mut s = Scores {
            questions: rows.len(),
            ..Default::default()
        };
        for (i, k) in ks.iter().enumerate() {
            s.recall_at
                .insert(k.to_string(), rows.iter().map(|r| r.1[i]).sum::<f64>() / n);
            s.hit_at.insert(
                k.to_string(),
                rows.iter().filter(|r| r.2[i]).count() as f64 / n,
            );
        }
        s
    };
    let all: Vec<_> = results.iter().collect();
    let overall = score(&all);
    let mut by_category = BTreeMap::new();
    for c in SCORED {
        let rows: Vec<_> = results.iter().filter(|r| r.0 == c).collect();
        if !rows.is_empty() {
            by_category.insert(c.to_string(), score(&rows));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(Report {
        embedder,
        fusion: cfg.fusion,
        semantic_context: cfg.semantic_context.clone(),
        questions: overall.questions,
        recall_at: overall.recall_at,
        hit_at: overall.hit_at,
        by_category,
        latency_ms: BTreeMap::from([("p50".to_string(), q(0.5)), ("p95".to_string(), q(0.95))]),
        vector_search,
        conversations,
        memories,
        skipped_questions: skipped_q,
        skipped_evidence_ids: skipped_ids,
    })
}

fn print_report(report: &Report, ks: &[usize]) {
    let f = &report.fusion;
    println!(
        "{} questions from {} conversations ({} memories); {} questions and {} evidence ids skipped",
        report.questions,
        report.conversations,
        report.memories,
        report.skipped_questions,
        report.skipped_evidence_ids
    );
    println!(
        "embedder {}; fusion lexical {} semantic {} graph {} recency {}; semantic context {:?}",
        report.embedder.as_deref().unwrap_or("none"),
        f.lexical,
        f.semantic,
        f.graph,
        f.recency,
        report.semantic_context
    );
    let head: Vec<String> = ks
        .iter()
        .map(|k| format!("R@{k:<5}"))
        .chain(ks.iter().map(|k| format!("H@{k:<5}")))
        .collect();
    println!("{:<10} {:>5}  {}", "category", "n", head.join(" "));
    let line = |name: &str, s: &BTreeMap<String, f64>, h: &BTreeMap<String, f64>, n: usize| {
        let vals: Vec<String> = ks
            .iter()
            .map(|k| format!("{:<7.3}", s[&k.to_string()]))
            .chain(ks.iter().map(|k| format!("{:<7.3}", h[&k.to_string()])))
            .collect();
        println!("{name:<10} {n:>5}  {}", vals.join(" "));
    };
    line("all", &report.recall_at, &report.hit_at, report.questions);
    for (c, s) in &report.by_category {
        line(&format!("cat {c}"), &s.recall_at, &s.hit_at, s.questions);
    }
    println!(
        "recall latency p50 {:.2} ms, p95 {:.2} ms",
        report.latency_ms["p50"], report.latency_ms["p95"]
    );
    println!();
}
