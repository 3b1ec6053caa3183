//! `bench sync`: sync throughput between nodes over loopback HTTP.
//!
//! A server (`continuum serve`'s router in this process) runs on the store the global flags
//! name (a scratch SQLite store, or a scratch PostgreSQL schema with --store). A node on a
//! scratch SQLite store learns `--memories` memories (two per turn) and syncs with the empty
//! server: the push. A second, empty node then syncs: the pull. Last, `--idle-rounds` syncs
//! with nothing to do: the steady-state cost of a background round. Figures are events per
//! second, body bytes each way, requests, and wall time.

use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::keys::Scope;
use continuum_core::{Error, TenantId};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct SyncArgs {
    /// Memories the first node holds (two per learned turn).
    #[arg(long, default_value_t = 100_000)]
    pub memories: usize,
    /// Sync rounds with nothing to do, after the transfers.
    #[arg(long, default_value_t = 20)]
    pub idle_rounds: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Transfer {
    events: u64,
    seconds: f64,
    events_per_sec: f64,
    mb_sent: f64,
    mb_received: f64,
    requests: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    server_backend: &'static str,
    memories: u64,
    push: Transfer,
    pull: Transfer,
    idle_round_median_ms: f64,
    idle_round_requests: u64,
    idle_round_bytes: u64,
}

fn transfer(r: &continuum_sync::SyncReport, events: u64) -> Transfer {
    let seconds = r.duration_ms as f64 / 1000.0;
    Transfer {
        events,
        seconds,
        events_per_sec: events as f64 / seconds.max(1e-9),
        mb_sent: r.bytes_sent as f64 / 1e6,
        mb_received: r.bytes_received as f64 / 1e6,
        requests: r.requests,
    }
}

async fn node() -> Result<(continuum_engine::Engine, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = continuum_store_sqlite::SqliteStore::open(
        dir.path().join(crate::app::STORE_FILE),
        &continuum_store_sqlite::SqliteOptions::default(),
        continuum_core::Clock::now(&continuum_core::SystemClock),
    )?;
    let engine = continuum_engine::Engine::new(
        std::sync::Arc::new(store),
        continuum_engine::EngineConfig::default(),
    )?;
    Ok((engine, dir))
}

pub async fn sync(g: &Global, a: SyncArgs) -> Result<()> {
    if a.memories < 2 || a.idle_rounds == 0 {
        return Err(Error::InvalidInput(
            "--memories must be at least 2 and --idle-rounds positive".into(),
        )
        .into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (server, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let team = TenantId::new("bench")?;
    let (key, _) = server.create_key(&team, Scope::Write, None, None).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = continuum_server::router(server.clone(), continuum_server::ServerConfig::default());
    let serving = tokio::spawn(continuum_server::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    let (a_node, _a_dir) = node().await?;
    let me = TenantId::new("laptop")?;
    let turns = a.memories / 2;
    super::learn_generated(&a_node, &me, turns, a.seed, g.json).await?;
    let events = a_node.sync_waiting(&me, 0, usize::MAX).await?;

    let remote = continuum_sync::Remote::new(&base, &key, None)?;
    let quiet = |_| {};
    let push = continuum_sync::sync_once(&a_node, &me, &remote, &quiet).await?;
    let (b_node, _b_dir) = node().await?;
    let pull = continuum_sync::sync_once(&b_node, &me, &remote, &quiet).await?;
    let mut idle = Vec::with_capacity(a.idle_rounds);
    let (mut idle_requests, mut idle_bytes) = (0, 0);
    for _ in 0..a.idle_rounds {
        let started = Instant::now();
        let r = continuum_sync::sync_once(&b_node, &me, &remote, &quiet).await?;
        idle.push(started.elapsed().as_secs_f64() * 1000.0);
        idle_requests = r.requests;
        idle_bytes = r.bytes_sent + r.bytes_received;
    }
    idle.sort_by(f64::total_cmp);
    let held = b_node.stats(&me).await?.store.memories;
    if held != (turns * 2) as u64 {
        return Err(Error::Internal(format!(
            "the pulling node holds {held} memories, not {}",
            turns * 2
        ))
        .into());
    }
    let report = Report {
        server_backend: store.store().backend(),
        memories: held,
        push: transfer(&push, push.pushed.max(events)),
        pull: transfer(&pull, pull.pulled),
        idle_round_median_ms: idle[idle.len() / 2],
        idle_round_requests: idle_requests,
        idle_round_bytes: idle_bytes,
    };
    let _ = stop_tx.send(());
    let _ = serving.await;
    scratch.finish(&store).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "server on {}: {} memories\n  push  {} events in {:.1} s ({:.0}/s), {:.1} MB sent, {} requests\n  pull  {} events in {:.1} s ({:.0}/s), {:.1} MB received, {} requests\n  idle round: median {:.2} ms, {} request(s), {} bytes",
            report.server_backend,
            report.memories,
            report.push.events,
            report.push.seconds,
            report.push.events_per_sec,
            report.push.mb_sent,
            report.push.requests,
            report.pull.events,
            report.pull.seconds,
            report.pull.events_per_sec,
            report.pull.mb_received,
            report.pull.requests,
            report.idle_round_median_ms,
            report.idle_round_requests,
            report.idle_round_bytes,
        );
    }
    Ok(())
}
