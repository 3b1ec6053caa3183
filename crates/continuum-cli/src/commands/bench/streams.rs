//! `bench streams`: how fast committed events reach many WebSocket clients while turns are
//! learned.
//!
//! A server runs in this process on a loopback port over a fresh store; `--clients` WebSocket
//! clients (real connections, the same protocol as any client) follow the tenant from now on,
//! and `--turns` turns are learned, one transaction each. Each client reads until it has every
//! event up to the last commit's position. Latency is from a commit's return in the learner to
//! the event's arrival at a client.

use super::throughput::{Gen, Latency, latency};
use crate::app::Global;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::keys::Scope;
use continuum_core::{Error, TenantId};
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, Args, Clone)]
pub struct StreamsArgs {
    /// WebSocket clients following the tenant (at most 64, the per-key limit, per key: the
    /// benchmark makes one key per 64 clients).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Turns learned, one transaction each, while the clients follow.
    #[arg(long, default_value_t = 2000)]
    pub turns: usize,
    /// Learn at most this many turns per second (0: as fast as the store allows). Paced, the
    /// latency is that of delivery; unpaced, it includes the backlog the clients build up.
    #[arg(long, default_value_t = 0.0)]
    pub turns_per_sec: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    clients: usize,
    turns: usize,
    /// The pace asked for (0: unpaced).
    turns_per_sec_asked: f64,
    /// Events each client received (the tenant's events written during the run).
    events_per_client: u64,
    /// Events received by all clients together, per second of the run.
    events_delivered_per_sec: f64,
    /// Turns learned per second while the clients followed.
    learn_turns_per_sec: f64,
    /// From the learner's commit to a client's receipt.
    latency_ms: Latency,
    seconds: f64,
}

pub async fn streams(g: &Global, a: StreamsArgs) -> Result<()> {
    if a.clients == 0
        || a.turns == 0
        || a.clients > 4096
        || !(a.turns_per_sec.is_finite() && a.turns_per_sec >= 0.0)
    {
        return Err(
            Error::InvalidInput("clients must be 1 to 4096 and turns positive".into()).into(),
        );
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let tenant = TenantId::new("bench")?;
    let mut keys = Vec::new();
    for _ in 0..a.clients.div_ceil(64) {
        keys.push(engine.create_key(&tenant, Scope::Read, None, None).await?.0);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = continuum_server::ServerConfig {
        rate_per_second: 1e9,
        rate_burst: 1e9,
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(continuum_server::serve(
        listener,
        continuum_server::router(engine.clone(), config),
        async {
            let _ = stop_rx.await;
        },
    ));

    // Connect every client and wait for its `stream.ready` before learning.
    let end = Arc::new(Mutex::new(u64::MAX));
    let end_known = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for i in 0..a.clients {
        let mut req = format!("ws://{addr}/v1/ws").into_client_request()?;
        req.headers_mut()
            .insert("x-api-key", keys[i / 64].parse().context("a key header")?);
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .with_context(|| format!("connecting client {i}"))?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"stream.ready\"") => {}
            other => {
                return Err(Error::Internal(format!("client {i} got {other:?}")).into());
            }
        }
        let (end, end_known) = (end.clone(), end_known.clone());
        clients.push(tokio::spawn(async move {
            let mut arrivals: Vec<(u64, Instant)> = Vec::new();
            loop {
                let done = { arrivals.last().map(|l| l.0) >= Some(*end.lock().unwrap()) };
                if done {
                    return Ok(arrivals);
                }
                let msg = tokio::select! {
                    m = ws.next() => m,
                    _ = end_known.notified() => continue,
                };
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let v: serde_json::Value = serde_json::from_str(&t)?;
                        if let Some(seq) = v["seq"].as_u64() {
                            arrivals.push((seq, Instant::now()));
                        }
                    }
                    Some(Ok(_)) => {}
                    other => anyhow::bail!("the stream ended: {other:?}"),
                }
            }
        }));
    }

    let pb = crate::output::progress(a.turns as u64, "learning", g.json);
    let mut text_gen = Gen(fastrand::Rng::with_seed(a.seed));
    let mut commits: Vec<(u64, Instant)> = Vec::with_capacity(a.turns);
    let started = Instant::now();
    for i in 0..a.turns {
        if a.turns_per_sec > 0.0 {
            let due = started + Duration::from_secs_f64(i as f64 / a.turns_per_sec);
            tokio::time::sleep_until(due.into()).await;
        }
        let turn = text_gen.turn(i / 20);
        engine.learn(&tenant, turn).await?;
        commits.push((engine.event_head().await?, Instant::now()));
        pb.inc(1);
    }
    let learn_secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let last = commits.last().map(|c| c.0).unwrap_or(0);
    *end.lock().unwrap() = last;
    end_known.notify_waiters();

    let mut ms = Vec::new();
    let mut per_client = 0u64;
    for c in clients {
        let arrivals = tokio::time::timeout(Duration::from_secs(600), c)
            .await
            .context("a client did not get every event in 10 minutes")???;
        per_client = arrivals.len() as u64;
        for (seq, at) in arrivals {
            // The first commit whose position covers this event.
            let k = commits.partition_point(|c| c.0 < seq);
            if let Some((_, committed)) = commits.get(k) {
                ms.push(at.saturating_duration_since(*committed).as_secs_f64() * 1000.0);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = server.await;
    let report = Report {
        backend: store.store().backend(),
        clients: a.clients,
        turns: a.turns,
        turns_per_sec_asked: a.turns_per_sec,
        events_per_client: per_client,
        events_delivered_per_sec: (per_client * a.clients as u64) as f64 / seconds,
        learn_turns_per_sec: a.turns as f64 / learn_secs,
        latency_ms: latency(ms),
        seconds,
    };
    scratch.finish(&store).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} clients, {} turns on {}: {} events each; {:.0} events/s delivered; learning {:.0} turns/s; latency p50 {:.1} ms, p99 {:.1} ms ({:.1} s)",
            report.clients,
            report.turns,
            report.backend,
            report.events_per_client,
            report.events_delivered_per_sec,
            report.learn_turns_per_sec,
            report.latency_ms.p50,
            report.latency_ms.p99,
            report.seconds
        );
    }
    Ok(())
}
