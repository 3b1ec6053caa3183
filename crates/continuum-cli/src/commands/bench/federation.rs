//! `bench federation`: a hub in this process on a loopback port (its pool in a scratch store,
//! SQLite or `--store postgres://…`), `--nodes` member nodes joined to it (each its own
//! identity and certificate in a temporary directory), then:
//! - contributions: one node sends `--items` generated facts, 500 per signed message, each
//!   stored in the pool through the hub's anonymiser (items per second);
//! - queries: `--queries` recalls over the pool of that size, over one kept-alive mutual TLS
//!   connection (latency per query);
//! - handshakes: `--handshakes` heartbeats each on a new connection (TCP + TLS 1.3 with client
//!   certificates) against the same on a kept-alive one;
//! - sync: a second node copies the whole pool into a SQLite store of its own, 500 items per
//!   signed answer (items per second);
//! - the process's resident memory with the nodes registered and the pool filled (hub and
//!   client in one process: an upper bound for the hub).
//!
//! The measuring node holds an operator's grant, so that neither the contribution ratio nor
//! the tier's rate limits shape the figures.

use super::throughput::{Gen, Latency, latency};
use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::Error;
use continuum_federation::access::{AccessPolicy, Tier};
use continuum_federation::wire::{Contribution, Item};
use continuum_federation::{MessageType, hub, node, now_ms};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct FederationArgs {
    /// Facts contributed to the pool.
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Member nodes joined before measuring.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Queries over the filled pool.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Heartbeats on new connections (and as many on a kept-alive one).
    #[arg(long, default_value_t = 200)]
    pub handshakes: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    nodes: usize,
    join_ms: Latency,
    items: usize,
    contribute_items_per_sec: f64,
    contribute_seconds: f64,
    queries: usize,
    query_ms: Latency,
    sync_items: u64,
    sync_items_per_sec: f64,
    sync_seconds: f64,
    heartbeat_new_connection_ms: Latency,
    heartbeat_kept_alive_ms: Latency,
    rss_mib_start: f64,
    rss_mib_after_nodes: f64,
    rss_mib_after_pool: f64,
}

use super::mcp_sessions::rss_mib;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub async fn federation(g: &Global, a: FederationArgs) -> Result<()> {
    use crate::commands::federation::fed;
    if a.nodes == 0 || a.nodes > 10_000 || a.queries == 0 || a.handshakes == 0 {
        return Err(Error::InvalidInput(
            "nodes must be 1 to 10000; queries and handshakes positive".into(),
        )
        .into());
    }
    let rss_start = rss_mib();
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let backend = store.store().backend();
    let work = tempfile::tempdir()?;
    let hub_dir = work.path().join("hub");
    hub::init(&hub_dir, "bench", &["127.0.0.1".to_string()], None).map_err(fed)?;
    let policy = AccessPolicy {
        free_queries: u64::MAX,
        min_ratio: 0.0,
    };
    let the_hub =
        std::sync::Arc::new(hub::Hub::open(&hub_dir, engine.clone(), policy, None).map_err(fed)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let stop = continuum_ops::CancellationToken::new();
    let server = tokio::spawn(the_hub.clone().serve(listener, stop.clone()));

    // Nodes join.
    let pb = crate::output::progress(a.nodes as u64, "joining", g.json);
    let mut joins = Vec::with_capacity(a.nodes);
    let mut first = None;
    let mut second = None;
    for i in 0..a.nodes {
        let token = hub::invite(&hub_dir, Tier::Free, 3_600_000).map_err(fed)?;
        let dir = work.path().join(format!("node{i}"));
        let t = Instant::now();
        let info = node::join(&dir, &url, &token.expose(), &[])
            .await
            .map_err(fed)?;
        joins.push(ms(t));
        if first.is_none() {
            first = Some((dir, info.node));
        } else if second.is_none() {
            second = Some((dir, info.node));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let rss_nodes = rss_mib();
    let (dir, id) = first.ok_or_else(|| Error::Internal("no node joined".into()))?;
    hub::grant(&hub_dir, &id, 86_400_000, None).map_err(fed)?;
    let me = node::Node::open(&dir).map_err(fed)?;

    // Contributions: 500 facts per signed message.
    let mut text = Gen(fastrand::Rng::with_seed(a.seed));
    let pb = crate::output::progress(a.items as u64, "contributing", g.json);
    let t = Instant::now();
    let mut sent = 0usize;
    let mut through = 0u64;
    while sent < a.items {
        let n = (a.items - sent).min(continuum_federation::wire::MAX_ITEMS);
        let items: Vec<Item> = (0..n)
            .map(|i| Item::Fact {
                text: text.turn((sent + i) / 20).ai_response,
            })
            .collect();
        through += 1;
        let body = serde_json::to_value(Contribution { through, items })?;
        let m = me
            .seal(MessageType::Contribute, body, now_ms())
            .map_err(fed)?;
        let (status, answer) = me.post(m.to_bytes()).await.map_err(fed)?;
        if status != 200 {
            return Err(Error::Internal(format!(
                "the hub refused a contribution: {}",
                String::from_utf8_lossy(&answer)
            ))
            .into());
        }
        sent += n;
        pb.set_position(sent as u64);
    }
    let contribute_seconds = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let rss_pool = rss_mib();

    // Queries over the filled pool.
    let mut query_ms = Vec::with_capacity(a.queries);
    for i in 0..a.queries {
        let q = text.turn(i).user_message;
        let t = Instant::now();
        me.query(&q, 10).await.map_err(fed)?;
        query_ms.push(ms(t));
    }

    // Sync: another node (granted too) copies the whole pool into a store of its own.
    let (sync_items, sync_seconds) = match &second {
        Some((dir2, id2)) => {
            hub::grant(&hub_dir, id2, 86_400_000, None).map_err(fed)?;
            let copier = node::Node::open(dir2).map_err(fed)?;
            let (copy, _) = g
                .open_location(
                    &crate::app::StoreLocation::Sqlite(work.path().join("copy.db")),
                    g.engine_config(),
                )
                .await?;
            let t = Instant::now();
            let out = copier.sync(&copy).await.map_err(fed)?;
            (out.stored, t.elapsed().as_secs_f64())
        }
        None => (0, 0.0),
    };

    // Heartbeats: on a new connection each, and on the kept-alive one.
    let mut fresh = Vec::with_capacity(a.handshakes);
    for _ in 0..a.handshakes {
        let n = node::Node::open(&dir).map_err(fed)?;
        let t = Instant::now();
        n.standing().await.map_err(fed)?;
        fresh.push(ms(t));
    }
    let mut kept = Vec::with_capacity(a.handshakes);
    for _ in 0..a.handshakes {
        let t = Instant::now();
        me.standing().await.map_err(fed)?;
        kept.push(ms(t));
    }
    stop.cancel();
    let _ = server.await;

    let report = Report {
        backend,
        nodes: a.nodes,
        join_ms: latency(joins),
        items: a.items,
        contribute_items_per_sec: a.items as f64 / contribute_seconds.max(1e-9),
        contribute_seconds,
        queries: a.queries,
        query_ms: latency(query_ms),
        sync_items,
        sync_items_per_sec: sync_items as f64 / sync_seconds.max(1e-9),
        sync_seconds,
        heartbeat_new_connection_ms: latency(fresh),
        heartbeat_kept_alive_ms: latency(kept),
        rss_mib_start: rss_start,
        rss_mib_after_nodes: rss_nodes,
        rss_mib_after_pool: rss_pool,
    };
    scratch.finish(&store).await?;
    if g.json {
        return crate::output::json(&report);
    }
    println!(
        "backend {}: {} nodes joined (p50 {:.1} ms); {} facts contributed at {:.0}/s; query p50 {:.2} ms p95 {:.2} ms over the pool; {} items synced to a node at {:.0}/s; heartbeat on a new mTLS connection p50 {:.2} ms, kept alive p50 {:.2} ms; RSS {:.0} -> {:.0} (nodes) -> {:.0} MiB (pool)",
        report.backend,
        report.nodes,
        report.join_ms.p50,
        report.items,
        report.contribute_items_per_sec,
        report.query_ms.p50,
        report.query_ms.p95,
        report.sync_items,
        report.sync_items_per_sec,
        report.heartbeat_new_connection_ms.p50,
        report.heartbeat_kept_alive_ms.p50,
        report.rss_mib_start,
        report.rss_mib_after_nodes,
        report.rss_mib_after_pool
    );
    Ok(())
}
