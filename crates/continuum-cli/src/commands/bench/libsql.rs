//! `bench libsql`: what replication through a libSQL primary costs.
//!
//! Needs `--store libsql://…` or `libsql+http://…` naming an **empty** primary (for example
//! `tursodb bench.db --sync-server 127.0.0.1:8080` on a fresh file); the replicas live in a
//! temporary directory. Replica A learns `--memories` memories (two per turn, 500 turns to a
//! transaction) and one round journals and pushes them. Replica B is then created: the time to
//! bootstrap it and apply everything is the time to a usable replica. Last, `--lag-writes`
//! single turns on A, each pushed by a round on A while B runs rounds back to back: the lag is
//! from A's commit to the moment B's recall finds the turn.

use crate::app::{Global, StoreLocation};
use anyhow::Result;
use clap::Args;
use continuum_core::{Error, TenantId};
use continuum_engine::{Engine, RecallRequest};
use continuum_store_libsql::{LibsqlLocation, Replica, ReplicaOptions};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct LibsqlArgs {
    /// Memories replica A writes (two per learned turn).
    #[arg(long, default_value_t = 100_000)]
    pub memories: usize,
    /// Single writes whose replication lag is measured.
    #[arg(long, default_value_t = 20)]
    pub lag_writes: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    primary: String,
    memories: u64,
    learn_seconds: f64,
    learn_memories_per_sec: f64,
    journal_and_push_seconds: f64,
    journal_seconds: f64,
    push_seconds: f64,
    events_pushed: u64,
    events_pushed_per_sec: f64,
    bootstrap_open_seconds: f64,
    bootstrap_apply_seconds: f64,
    bootstrap_total_seconds: f64,
    replica_file_mb: f64,
    journal_file_mb: f64,
    lag_ms_p50: f64,
    lag_ms_p95: f64,
    lag_ms_max: f64,
    idle_round_ms_p50: f64,
}

async fn replica(
    g: &Global,
    primary: &str,
    dir: &std::path::Path,
) -> Result<(Engine, Arc<Replica>)> {
    let location = LibsqlLocation {
        primary: primary.to_string(),
        replica: dir.join(crate::app::STORE_FILE),
    };
    let replica = Arc::new(
        Replica::open(
            &location,
            &ReplicaOptions {
                auth_token: g.libsql_auth_token.clone(),
            },
        )
        .await?,
    );
    let store = continuum_store_sqlite::SqliteStore::open(
        &location.replica,
        &continuum_store_sqlite::SqliteOptions::default(),
        continuum_core::Clock::now(&continuum_core::SystemClock),
    )?;
    let engine = Engine::new(Arc::new(store), continuum_engine::EngineConfig::default())?;
    Ok((engine, replica))
}

fn file_mb(p: &std::path::Path) -> f64 {
    let mut total = 0u64;
    if let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let f = e.file_name();
            let f = f.to_string_lossy();
            // The file and its WAL (and, for the journal, the sync engine's files), not the
            // other store's.
            if f == name
                || f == format!("{name}-wal")
                || (name.ends_with(".libsql") && f.starts_with(name))
            {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total as f64 / 1e6
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn libsql(g: &Global, a: LibsqlArgs) -> Result<()> {
    let StoreLocation::Libsql(loc) = g.location()? else {
        return Err(Error::InvalidInput(
            "bench libsql needs --store libsql://… or libsql+http://… naming an empty primary"
                .into(),
        )
        .into());
    };
    if a.memories < 2 || a.lag_writes == 0 {
        return Err(Error::InvalidInput(
            "--memories must be at least 2, --lag-writes positive".into(),
        )
        .into());
    }
    let temp = tempfile::tempdir()?;
    let (ea, ra) = replica(g, &loc.primary, &temp.path().join("a")).await?;
    let first = ra.sync(&ea).await?;
    if first.received > 0 {
        return Err(Error::Conflict(format!(
            "the primary {} already holds events; bench libsql needs an empty one",
            loc.primary
        ))
        .into());
    }
    let t = TenantId::new("bench")?;
    let turns = a.memories / 2;
    let started = Instant::now();
    super::learn_generated(&ea, &t, turns, a.seed, g.json).await?;
    let learn_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let pushed = ra.sync(&ea).await?;
    let journal_and_push_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (eb, rb) = replica(g, &loc.primary, &temp.path().join("b")).await?;
    let bootstrap_open_seconds = started.elapsed().as_secs_f64();
    let got = rb.sync(&eb).await?;
    let bootstrap_total_seconds = started.elapsed().as_secs_f64();
    let held = eb.stats(&t).await?.store.memories;
    if held != (turns * 2) as u64 {
        return Err(Error::Internal(format!(
            "the new replica holds {held} memories, not {} ({got:?})",
            turns * 2
        ))
        .into());
    }

    // Lag: B syncs back to back in the background while A writes and pushes.
    let stop = continuum_ops::CancellationToken::new();
    let idle = {
        let (eb, rb, stop) = (eb.clone(), rb.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = Vec::new();
            while !stop.is_cancelled() {
                let s = Instant::now();
                if rb.sync(&eb).await.is_ok() {
                    rounds.push(s.elapsed().as_secs_f64() * 1000.0);
                }
            }
            rounds
        })
    };
    let mut lags = Vec::with_capacity(a.lag_writes);
    for i in 0..a.lag_writes {
        let marker = format!("lagmarker{i}x{}", a.seed);
        let turn = continuum_core::memory::Turn {
            user_message: format!("Where is {marker} deployed?"),
            ai_response: format!("{marker} runs in the edge region."),
            thinking: None,
            session_id: None,
            metadata: None,
            timestamp: None,
        };
        ea.learn(&t, turn).await?;
        let written = Instant::now();
        ra.sync(&ea).await?;
        let deadline = written + Duration::from_secs(60);
        loop {
            let r = eb.recall(&t, &RecallRequest::new(marker.clone())).await?;
            if r.memories.iter().any(|m| m.content.contains(&marker)) {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    Error::Internal(format!("write {i} not visible on B after 60 s")).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    stop.cancel();
    let mut rounds = idle.await.unwrap_or_default();
    rounds.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let report = Report {
        primary: loc.primary.clone(),
        memories: held,
        learn_seconds,
        learn_memories_per_sec: (turns * 2) as f64 / learn_seconds.max(1e-9),
        journal_and_push_seconds,
        journal_seconds: pushed.journal_ms as f64 / 1000.0,
        push_seconds: pushed.push_ms as f64 / 1000.0,
        events_pushed: pushed.journaled,
        events_pushed_per_sec: pushed.journaled as f64 / journal_and_push_seconds.max(1e-9),
        bootstrap_open_seconds,
        bootstrap_apply_seconds: bootstrap_total_seconds - bootstrap_open_seconds,
        bootstrap_total_seconds,
        replica_file_mb: file_mb(&temp.path().join("b").join(crate::app::STORE_FILE)),
        journal_file_mb: file_mb(
            &LibsqlLocation {
                primary: String::new(),
                replica: temp.path().join("b").join(crate::app::STORE_FILE),
            }
            .journal(),
        ),
        lag_ms_p50: pct(&lags, 0.5),
        lag_ms_p95: pct(&lags, 0.95),
        lag_ms_max: lags.last().copied().unwrap_or(0.0),
        idle_round_ms_p50: pct(&rounds, 0.5),
    };
    drop((ra, rb));
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "libSQL primary {}: {} memories\n  learn on A        {:.1} s ({:.0} memories/s, local)\n  journal + push    {} events in {:.1} s ({:.0}/s; journal {:.1} s, push {:.1} s)\n  new replica B     open {:.1} s + apply {:.1} s = {:.1} s; store {:.1} MB, journal {:.1} MB\n  lag A→B           p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (B syncing back to back; idle round p50 {:.1} ms)",
            report.primary,
            report.memories,
            report.learn_seconds,
            report.learn_memories_per_sec,
            report.events_pushed,
            report.journal_and_push_seconds,
            report.events_pushed_per_sec,
            report.journal_seconds,
            report.push_seconds,
            report.bootstrap_open_seconds,
            report.bootstrap_apply_seconds,
            report.bootstrap_total_seconds,
            report.replica_file_mb,
            report.journal_file_mb,
            report.lag_ms_p50,
            report.lag_ms_p95,
            report.lag_ms_max,
            report.idle_round_ms_p50,
        );
    }
    Ok(())
}
