//! `bench mcp-sessions`: the server's memory while MCP-over-HTTP sessions are opened and
//! abandoned, round after round. Each round opens `--sessions` sessions (an `initialize`
//! each, spread over enough write keys to stay under the 32-per-key cap) and never closes
//! them; the round ends once they have idled out (`--idle-secs`). The figure is the
//! process's resident memory after each round: bounded means it stops growing.

use crate::app::Global;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::keys::Scope;
use continuum_core::{Error, TenantId};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct McpSessionsArgs {
    /// Sessions opened (and abandoned) per round.
    #[arg(long, default_value_t = 5_000)]
    pub sessions: usize,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds an unused session lives (the server's default is 300).
    #[arg(long, default_value_t = 5)]
    pub idle_secs: u64,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
struct Round {
    round: usize,
    opened: usize,
    open_secs: f64,
    /// Resident memory with every session of the round open, and after they idled out.
    rss_open_mib: f64,
    rss_after_mib: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    sessions_per_round: usize,
    idle_secs: u64,
    rss_start_mib: f64,
    rounds: Vec<Round>,
}

/// This process's resident memory, in MiB (Linux).
pub(super) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"continuum-bench","version":"1"}}}"#;

pub async fn mcp_sessions(g: &Global, a: McpSessionsArgs) -> Result<()> {
    if a.sessions == 0 || a.rounds == 0 || a.idle_secs == 0 || a.concurrency == 0 {
        return Err(Error::InvalidInput("every count must be positive".into()).into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let per_key = 25;
    let tenant = TenantId::new("bench")?;
    let mut keys = Vec::new();
    for _ in 0..a.sessions.div_ceil(per_key) {
        keys.push(
            engine
                .create_key(&tenant, Scope::Write, None, None)
                .await?
                .0,
        );
    }
    let config = continuum_server::ServerConfig {
        mcp_session_idle: Duration::from_secs(a.idle_secs),
        auth_failures_per_minute: 0.0,
        rate_per_second: 1e9,
        rate_burst: 1e9,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = continuum_engine::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        let app = continuum_server::router(engine.clone(), config);
        tokio::spawn(async move {
            continuum_server::serve(listener, app, async move { stop.cancelled().await }).await
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .context("an HTTP client")?;
    let rss_start = rss_mib();
    let mut rounds = Vec::new();
    let pb = crate::output::progress((a.sessions * a.rounds) as u64, "sessions", g.json);
    for round in 1..=a.rounds {
        let t0 = Instant::now();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(a.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..a.sessions {
            let permit = sem.clone().acquire_owned().await?;
            let (client, url, key) = (
                client.clone(),
                format!("{base}/mcp"),
                keys[i / per_key].clone(),
            );
            tasks.spawn(async move {
                let _permit = permit;
                let r = client
                    .post(url)
                    .header("x-api-key", key)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .body(INITIALIZE)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let opened = r.status().is_success() && r.headers().contains_key("mcp-session-id");
                // Read the answer, then abandon the session.
                let _ = r.bytes().await;
                Ok::<bool, String>(opened)
            });
            pb.inc(1);
        }
        let mut opened = 0;
        while let Some(r) = tasks.join_next().await {
            if r.map_err(|e| Error::Internal(e.to_string()))?
                .map_err(Error::Unavailable)?
            {
                opened += 1;
            }
        }
        let open_secs = t0.elapsed().as_secs_f64();
        let rss_open = rss_mib();
        tokio::time::sleep(Duration::from_secs(a.idle_secs + 2)).await;
        rounds.push(Round {
            round,
            opened,
            open_secs,
            rss_open_mib: rss_open,
            rss_after_mib: rss_mib(),
        });
    }
    pb.finish_and_clear();
    stop.cancel();
    let _ = server.await;
    scratch.finish(&store).await?;
    let report = Report {
        sessions_per_round: a.sessions,
        idle_secs: a.idle_secs,
        rss_start_mib: rss_start,
        rounds,
    };
    if g.json {
        return crate::output::json(&report);
    }
    println!("resident memory at start: {:.1} MiB", report.rss_start_mib);
    for r in &report.rounds {
        println!(
            "round {}: {} sessions opened in {:.1} s; {:.1} MiB with them open, {:.1} MiB after they idled out",
            r.round, r.opened, r.open_secs, r.rss_open_mib, r.rss_after_mib
        );
    }
    Ok(())
}
