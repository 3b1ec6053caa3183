//! `bench metering`: what counting requests costs recall, side by side.
//!
//! One store of `--memories` generated memories; the same `--recalls` queries are run by
//! `--workers` concurrent tasks in three modes, in alternating rounds so that drift (caches,
//! the machine's other work) falls on every mode alike:
//! - `plain`: `recall` alone;
//! - `metered`: each recall admitted first (`tier_of` + `admit`, as the REST layer does), the
//!   tenant on a tier without quotas, the usage-flush job running;
//! - `metered_quota`: the same on a tier with a daily request quota (the count is checked).
//!
//! Also the cost of one admission alone, in a tight loop.

use super::throughput::Gen;
use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::account::{Tier, Tiers, UsageKind};
use continuum_core::keys::{Caller, Scope};
use continuum_core::{Error, TenantId};
use continuum_engine::{Engine, RecallRequest};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct MeteringArgs {
    /// Memories in the store (each generated turn adds two).
    #[arg(long, default_value_t = 10_000)]
    pub memories: usize,
    /// Recalls per mode (split across the workers).
    #[arg(long, default_value_t = 3_000)]
    pub recalls: usize,
    /// Concurrent recall tasks.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Rounds the recalls of each mode are split into (the modes alternate between rounds).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Mode {
    mode: &'static str,
    recalls: usize,
    seconds: f64,
    recalls_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    memories: usize,
    workers: usize,
    modes: Vec<Mode>,
    /// Throughput lost to metering, in percent of `plain`.
    metered_cost_pct: f64,
    metered_quota_cost_pct: f64,
    /// One admission (`tier_of` cached + `admit`), alone.
    admit_ns: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Plain,
    Metered,
    Quota,
}

async fn run_round(
    engine: &Engine,
    callers: &[Caller; 3],
    queries: &Arc<Vec<String>>,
    which: Which,
    workers: usize,
    range: std::ops::Range<usize>,
) -> Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let engine = engine.clone();
        let queries = queries.clone();
        let caller = match which {
            Which::Plain => callers[0].clone(),
            Which::Metered => callers[1].clone(),
            Which::Quota => callers[2].clone(),
        };
        let range = range.clone();
        tasks.push(tokio::spawn(async move {
            for i in range.skip(w).step_by(workers) {
                if which != Which::Plain {
                    engine.admit_request(&caller, UsageKind::Recall).await?;
                }
                engine
                    .recall(&caller, &RecallRequest::new(queries[i].clone()))
                    .await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Internal(e.to_string()))??;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn metering(g: &Global, a: MeteringArgs) -> Result<()> {
    if a.memories == 0 || a.recalls == 0 || a.workers == 0 || a.rounds == 0 || a.rounds > a.recalls
    {
        return Err(Error::InvalidInput(
            "memories, recalls, workers and rounds must be positive, rounds at most recalls".into(),
        )
        .into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let tiers = Tiers::new(
        vec![Tier::parse("bench-quota:requests_per_day=1000000000").expect("a valid tier")],
        None,
    )?;
    let engine = engine.with_tiers(tiers);
    // Three tenants with the same memories, so each mode has its own (warm) caches.
    let names = ["plain", "metered", "quota"];
    let callers: [Caller; 3] = names.map(|n| Caller {
        tenant: TenantId::new(format!("bench-{n}")).expect("a valid tenant"),
        scope: Scope::Write,
        key: Some(format!("ck_bench_{n}")),
    });
    let mut text = Gen(fastrand::Rng::with_seed(a.seed));
    let turns: Vec<_> = (0..a.memories.div_ceil(2))
        .map(|i| text.turn(i / 20))
        .collect();
    for c in &callers {
        for chunk in turns.chunks(500) {
            engine.learn_many(&c.tenant, chunk.to_vec()).await?;
        }
    }
    engine
        .set_tier(
            Caller::local(callers[2].tenant.clone()),
            &callers[2].tenant,
            "bench-quota",
        )
        .await?;
    let queries: Arc<Vec<String>> = Arc::new((0..a.recalls).map(|_| text.query()).collect());
    // Warm every tenant's caches.
    for c in &callers {
        for q in queries.iter().take(50) {
            engine.recall(c, &RecallRequest::new(q.clone())).await?;
        }
    }
    let stop = continuum_engine::CancellationToken::new();
    let flusher = {
        let engine = engine.clone();
        let stop = stop.clone();
        tokio::spawn(async move { engine.run_usage_flush(stop).await })
    };
    let per_round = a.recalls / a.rounds;
    let mut secs = [0f64; 3];
    let order = [Which::Plain, Which::Metered, Which::Quota];
    let pb = crate::output::progress((a.rounds * 3) as u64, "recalling", g.json);
    for r in 0..a.rounds {
        let end = if r + 1 == a.rounds {
            a.recalls
        } else {
            (r + 1) * per_round
        };
        let range = r * per_round..end;
        // Rotate which mode goes first in each round.
        for k in 0..3 {
            let i = (r + k) % 3;
            secs[i] += run_round(
                &engine,
                &callers,
                &queries,
                order[i],
                a.workers,
                range.clone(),
            )
            .await?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    stop.cancel();
    flusher
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;

    // One admission alone.
    let tier = engine.tier_of(&callers[1].tenant).await?;
    let n = 1_000_000u32;
    let t0 = Instant::now();
    for _ in 0..n {
        let tier = engine.tier_of(&callers[1].tenant).await?;
        engine.admit(&callers[1], UsageKind::Recall, &tier)?;
    }
    let admit_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    drop(tier);

    let modes: Vec<Mode> = names
        .iter()
        .zip(secs)
        .map(|(name, s)| Mode {
            mode: match *name {
                "plain" => "plain",
                "metered" => "metered",
                _ => "metered_quota",
            },
            recalls: a.recalls,
            seconds: s,
            recalls_per_sec: a.recalls as f64 / s,
        })
        .collect();
    let cost = |i: usize| (1.0 - modes[i].recalls_per_sec / modes[0].recalls_per_sec) * 100.0;
    let report = Report {
        backend: store.store().backend(),
        memories: a.memories,
        workers: a.workers,
        metered_cost_pct: cost(1),
        metered_quota_cost_pct: cost(2),
        admit_ns,
        modes,
    };
    scratch.finish(&store).await?;
    if g.json {
        return crate::output::json(&report);
    }
    println!(
        "{} memories per tenant, {} workers, {} recalls per mode ({} backend)",
        report.memories, report.workers, a.recalls, report.backend
    );
    for m in &report.modes {
        println!(
            "  {:<14} {:>9.1} recalls/s  ({:.2} s)",
            m.mode, m.recalls_per_sec, m.seconds
        );
    }
    println!(
        "metering costs {:+.1}% (no quota) and {:+.1}% (daily quota) of recall throughput; one admission takes {:.0} ns",
        report.metered_cost_pct, report.metered_quota_cost_pct, report.admit_ns
    );
    Ok(())
}
