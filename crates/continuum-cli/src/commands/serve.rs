//! `serve`: the REST API over the configured store, until Ctrl-C or SIGTERM; requests in
//! flight are finished before exiting.

use crate::app::Global;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::Error;
use continuum_server::{ServerConfig, router, serve as run};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CONTINUUM_BIND", default_value = "127.0.0.1:8420")]
    pub bind: String,
    /// Origin allowed by CORS (repeatable; `*` for any). Default: none.
    #[arg(
        long = "cors-origin",
        env = "CONTINUUM_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests per second each API key may sustain (bursts up to twice that).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds before a request is answered 408.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Events kept at least this long (30m, 12h, 7d, 2w, or 0) before the hourly compaction
    /// deletes those every named cursor has passed.
    #[arg(long, env = "CONTINUUM_EVENT_RETENTION", default_value = "7d",
          value_parser = crate::commands::events::parse_retention)]
    pub event_retention: i64,
}

/// How often `serve` compacts the event log.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// Compacts the event log now and then every [`COMPACT_EVERY`]; a failure is reported and
/// retried at the next tick, never fatal.
fn spawn_compaction(
    engine: &continuum_engine::Engine,
    retention: i64,
) -> tokio::task::JoinHandle<()> {
    let engine = engine.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COMPACT_EVERY);
        loop {
            tick.tick().await;
            match engine.compact_events(retention).await {
                Ok(c) if c.removed > 0 => eprintln!(
                    "continuum serve: compacted {} events (the log starts after {})",
                    c.removed, c.compacted_through
                ),
                Ok(_) => {}
                Err(e) => eprintln!("continuum serve: event compaction failed: {e}"),
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("continuum serve: shutting down, finishing requests in flight");
}

pub async fn serve(g: &Global, a: ServeArgs) -> Result<()> {
    if !(a.rate > 0.0 && a.rate.is_finite()) || a.max_body_bytes == 0 || a.timeout_secs == 0 {
        return Err(Error::InvalidInput(
            "--rate, --max-body-bytes and --timeout-secs must be positive".into(),
        )
        .into());
    }
    let (engine, store) = g.open_semantic().await?;
    let worker = crate::commands::reindex::spawn_worker(&engine);
    let compaction = spawn_compaction(&engine, a.event_retention);
    let config = ServerConfig {
        max_body_bytes: a.max_body_bytes,
        request_timeout: Duration::from_secs(a.timeout_secs),
        rate_per_second: a.rate,
        rate_burst: a.rate * 2.0,
        cors_origins: a
            .cors_origins
            .into_iter()
            .filter(|o| !o.trim().is_empty())
            .collect(),
    };
    let listener = tokio::net::TcpListener::bind(&a.bind)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot listen on {}: {e}", a.bind)))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The one line a supervisor or a test waits for. No key or password is printed.
    eprintln!(
        "continuum serve: listening on http://{addr} (store: {})",
        store.describe()
    );
    let served = run(listener, router(engine, config), shutdown_signal())
        .await
        .context("serving HTTP");
    if let Some(w) = worker {
        w.abort();
    }
    compaction.abort();
    served
}
