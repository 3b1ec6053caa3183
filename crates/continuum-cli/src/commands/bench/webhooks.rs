//! `bench webhooks`: webhook deliveries per second to a receiver on loopback.
//!
//! A receiver (an HTTP server in this process) answers 200 to everything; `--subscriptions`
//! subscriptions of one tenant point at it; `--turns` turns are learned first (one transaction
//! each), then the delivery job runs until every subscription has delivered every event. The
//! figure is signed deliveries per second, each recorded in the store.

use super::throughput::Gen;
use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::{Error, TenantId};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Args, Clone)]
pub struct WebhooksArgs {
    /// Subscriptions of the tenant, each receiving every event.
    #[arg(long, default_value_t = 1)]
    pub subscriptions: usize,
    /// Turns learned before the job starts (each makes several events).
    #[arg(long, default_value_t = 500)]
    pub turns: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    subscriptions: usize,
    events: u64,
    deliveries: u64,
    deliveries_per_sec: f64,
    seconds: f64,
}

pub async fn webhooks(g: &Global, a: WebhooksArgs) -> Result<()> {
    if a.subscriptions == 0
        || a.subscriptions > continuum_core::webhook::MAX_WEBHOOKS_PER_TENANT
        || a.turns == 0
    {
        return Err(Error::InvalidInput(format!(
            "subscriptions must be 1 to {} and turns positive",
            continuum_core::webhook::MAX_WEBHOOKS_PER_TENANT
        ))
        .into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let tenant = TenantId::new("bench")?;

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(continuum_server::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    for _ in 0..a.subscriptions {
        engine.create_webhook(&tenant, &url, vec![], None).await?;
    }
    let pb = crate::output::progress(a.turns as u64, "learning", g.json);
    let mut text_gen = Gen(fastrand::Rng::with_seed(a.seed));
    for i in 0..a.turns {
        engine.learn(&tenant, text_gen.turn(i / 20)).await?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    let head = engine.event_head().await?;
    let events = engine
        .events(&tenant, 0, 1)
        .await?
        .first()
        .map_or(0, |e| e.seq);
    let events = head.saturating_sub(events.saturating_sub(1));
    let expected = events * a.subscriptions as u64;

    let config = continuum_webhooks::DeliveryConfig {
        allow_private: true,
        ..Default::default()
    };
    let sender = continuum_webhooks::Deliverer::new(engine.clone(), config)?;
    let stop = continuum_ops::CancellationToken::new();
    let job = {
        let (sender, stop) = (sender.clone(), stop.clone());
        tokio::spawn(async move { sender.run(stop).await })
    };
    let pb = crate::output::progress(expected, "delivering", g.json);
    let started = Instant::now();
    loop {
        let done = engine
            .all_webhooks()
            .await?
            .iter()
            .all(|w| w.position >= head);
        pb.set_position(received.load(Ordering::Relaxed));
        if done {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(Error::Internal("deliveries took over an hour".into()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    stop.cancel();
    let _ = job.await;
    let _ = stop_tx.send(());
    let _ = receiver.await;
    let deliveries = received.load(Ordering::Relaxed);
    let report = Report {
        backend: store.store().backend(),
        subscriptions: a.subscriptions,
        events,
        deliveries,
        deliveries_per_sec: deliveries as f64 / seconds,
        seconds,
    };
    scratch.finish(&store).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} subscription(s), {} events on {}: {} deliveries in {:.1} s, {:.0} deliveries/s",
            report.subscriptions,
            report.events,
            report.backend,
            report.deliveries,
            report.seconds,
            report.deliveries_per_sec
        );
    }
    Ok(())
}
