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
    #[arg(long, env = "CONTINUUM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests per second each API key may sustain (bursts up to twice that).
    #[arg(long, env = "CONTINUUM_RATE", default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds before a request is answered 408.
    #[arg(long, env = "CONTINUUM_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// Seconds a client has to send a request's head (from connecting, or from the previous
    /// response): idle and half-sent connections are closed after it.
    #[arg(long, env = "CONTINUUM_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Connections open at once; past it new ones are answered 503 and closed.
    #[arg(long, env = "CONTINUUM_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Failed authentications one source address may make per minute (and in a burst) before
    /// its requests get 429 for a while; 0 turns the limit off.
    #[arg(
        long,
        env = "CONTINUUM_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 30.0
    )]
    pub auth_failures_per_minute: f64,
    /// A proxy, CDN or DDoS filter in front of the server (an address or a range such as
    /// 10.0.0.0/8; repeatable): its X-Forwarded-For names the client. From anyone else the
    /// header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "CONTINUUM_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<continuum_server::proxy::Cidr>,
    /// Serve HTTPS: the certificate chain (PEM). Re-read on SIGHUP and when the file changes,
    /// without dropping connections. Needs --tls-key.
    #[arg(
        long,
        env = "CONTINUUM_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM). Needs --tls-cert.
    #[arg(
        long,
        env = "CONTINUUM_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// Events kept at least this long (30m, 12h, 7d, 2w, or 0) before the hourly compaction
    /// deletes those every named cursor has passed.
    #[arg(long, env = "CONTINUUM_EVENT_RETENTION", default_value = "7d",
          value_parser = crate::commands::events::parse_retention)]
    pub event_retention: i64,
    /// Serve Prometheus metrics (`GET /metrics`, no key) on a listener of its own at this
    /// address; bind it where only the scraper reaches it. Unset, `/metrics` is on the API
    /// listener behind an operator key.
    #[arg(long, env = "CONTINUUM_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// Also count requests per tenant (continuum_tenant_http_requests_total{tenant}): one series
    /// per tenant, so only where the number of tenants is small.
    #[arg(long, env = "CONTINUUM_METRICS_PER_TENANT")]
    pub metrics_per_tenant: bool,
    /// Keep no metrics at all.
    #[arg(long, env = "CONTINUUM_NO_METRICS")]
    pub no_metrics: bool,
    /// Do not serve the web dashboard at /dashboard.
    #[arg(long, env = "CONTINUUM_NO_DASHBOARD")]
    pub no_dashboard: bool,
    /// Receive Stripe's webhooks at POST /v1/billing/stripe, verified with this endpoint
    /// signing secret (whsec_…; from the environment or the configuration file, never a flag
    /// others can read). Unset, that endpoint answers 404.
    #[arg(
        long,
        env = "CONTINUUM_STRIPE_WEBHOOK_SECRET",
        hide = true,
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub stripe_webhook_secret: Option<String>,
    /// A Stripe price and the tier it buys, PRICE_ID=TIER (repeatable).
    #[arg(
        long = "stripe-price",
        env = "CONTINUUM_STRIPE_PRICES",
        value_delimiter = ',',
        value_name = "PRICE=TIER"
    )]
    pub stripe_prices: Vec<String>,
    /// Sign audit checkpoints into this directory (checkpoint-SIZE.txt and latest.txt): put it
    /// on storage off this machine, so a log cut or rewritten here is found by
    /// `audit verify --checkpoint`. Unset: no checkpoints.
    #[arg(long, env = "CONTINUUM_AUDIT_CHECKPOINT_DIR", value_name = "DIR")]
    pub audit_checkpoint_dir: Option<std::path::PathBuf>,
    /// Sign a checkpoint after this many new audit entries…
    #[arg(long, env = "CONTINUUM_AUDIT_CHECKPOINT_EVERY", default_value_t = 1000)]
    pub audit_checkpoint_every: u64,
    /// …or this many seconds after the last one, if any entry was added.
    #[arg(long, env = "CONTINUUM_AUDIT_CHECKPOINT_SECS", default_value_t = 600)]
    pub audit_checkpoint_secs: u64,
    /// Send every audit entry to this syslog collector, in order, resuming where it stopped:
    /// tcp://HOST:PORT, tls://HOST:PORT (octet-counted frames) or udp://HOST:PORT.
    #[arg(long, env = "CONTINUUM_AUDIT_SYSLOG", value_name = "URL")]
    pub audit_syslog: Option<String>,
    /// What each syslog message carries: rfc5424 (structured data) or cef.
    #[arg(long, env = "CONTINUUM_AUDIT_SYSLOG_FORMAT", default_value = "rfc5424",
          value_parser = ["rfc5424", "cef"])]
    pub audit_syslog_format: String,
    /// For tls://: the CA to trust, PEM (default: the system's roots).
    #[arg(long, env = "CONTINUUM_AUDIT_SYSLOG_CA", value_name = "FILE")]
    pub audit_syslog_ca: Option<std::path::PathBuf>,
    /// Serve this hub's federation traffic (mutual TLS, its own port) on ADDR; needs
    /// `continuum federation init --hub` first.
    #[arg(long, env = "CONTINUUM_FEDERATION_BIND", value_name = "ADDR")]
    pub federation_bind: Option<String>,
    /// Queries a new member may make before the contribution ratio applies.
    #[arg(long, env = "CONTINUUM_FEDERATION_FREE_QUERIES", default_value_t = 50)]
    pub federation_free_queries: u64,
    /// The contributed / consumed ratio below which a member's queries are refused.
    #[arg(long, env = "CONTINUUM_FEDERATION_MIN_RATIO", default_value_t = 0.1)]
    pub federation_min_ratio: f64,
    /// On a member node: seconds between background contributions of the sharing tenants
    /// (0: only `continuum federation contribute`).
    #[arg(
        long,
        env = "CONTINUUM_FEDERATION_CONTRIBUTE_SECS",
        default_value_t = 300
    )]
    pub federation_contribute_secs: u64,
    /// On a hub: days the node certificates it issues (at joining and renewal) are valid.
    /// Members renew theirs in the background when a third of it, or 30 days, remain.
    #[arg(
        long,
        env = "CONTINUUM_FEDERATION_CERT_DAYS",
        default_value_t = continuum_federation::pki::NODE_VALID_DAYS
    )]
    pub federation_cert_days: u64,
    /// On a member node: also copy the pool's new items into this store (tenant
    /// `federation-pool`) in each background round, for `federation query --local`.
    #[arg(long, env = "CONTINUUM_FEDERATION_SYNC")]
    pub federation_sync: bool,
    /// The tier of a tenant whose subscription is cancelled, unpaid or failing payment.
    #[arg(long, env = "CONTINUUM_STRIPE_FALLBACK_TIER", default_value = "free")]
    pub stripe_fallback_tier: String,
}

/// The Stripe receiver the flags describe, checked against the tiers the engine knows.
fn stripe_config(
    a: &ServeArgs,
    tiers: &continuum_core::account::Tiers,
) -> Result<Option<continuum_webhooks::stripe::StripeConfig>> {
    let Some(secret) = a
        .stripe_webhook_secret
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        if !a.stripe_prices.is_empty() {
            return Err(Error::InvalidInput(
                "--stripe-price needs the endpoint secret (CONTINUUM_STRIPE_WEBHOOK_SECRET or billing.stripe_webhook_secret)".into(),
            )
            .into());
        }
        return Ok(None);
    };
    let mut prices = std::collections::BTreeMap::new();
    for p in a.stripe_prices.iter().filter(|p| !p.trim().is_empty()) {
        let (price, tier) = p.split_once('=').ok_or_else(|| {
            Error::InvalidInput(format!("--stripe-price '{p}' is not PRICE_ID=TIER"))
        })?;
        tiers.require(tier.trim())?;
        prices.insert(price.trim().to_string(), tier.trim().to_string());
    }
    tiers.require(&a.stripe_fallback_tier)?;
    Ok(Some(continuum_webhooks::stripe::StripeConfig {
        secret: secret.to_string(),
        prices,
        fallback_tier: a.stripe_fallback_tier.clone(),
        tolerance_secs: continuum_webhooks::stripe::DEFAULT_TOLERANCE_SECS,
    }))
}

/// Puts the usage flush under `jobs` (named `usage-flush`): the usage counted in memory is
/// written to the store every few seconds, and once more when the job stops.
pub fn spawn_usage_flush(
    engine: &continuum_engine::Engine,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let engine = engine.clone();
    jobs.spawn(
        "usage-flush",
        continuum_ops::Backoff::default(),
        move |stop| {
            let engine = engine.clone();
            async move {
                engine
                    .run_usage_flush(stop)
                    .await
                    .map_err(|e| format!("usage flush: {e}"))
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
}

/// How often `serve` looks for keys whose expiry passed, to record it.
const KEY_EXPIRY_EVERY: Duration = Duration::from_secs(30);

/// Puts the recording of key expiries under `jobs` (named `key-expiry`): at start, then every
/// [`KEY_EXPIRY_EVERY`], each key whose expiry passed gets its `key.expired` event and audit
/// entry (once, whichever process sees it first; presenting the key records it at once too).
fn spawn_key_expiry(
    engine: &continuum_engine::Engine,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let engine = engine.clone();
    jobs.spawn(
        "key-expiry",
        continuum_ops::Backoff::default(),
        move |stop| {
            let engine = engine.clone();
            async move {
                let mut tick = tokio::time::interval(KEY_EXPIRY_EVERY);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    let n = engine
                        .note_expired_keys()
                        .await
                        .map_err(|e| format!("key expiry: {e}"))?;
                    if n > 0 {
                        tracing::info!(keys = n, "recorded expired API keys");
                    }
                }
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
}

/// How often `serve` looks at the memory it holds.
const MEMORY_EVERY: Duration = Duration::from_secs(15);

/// Puts memory upkeep under `jobs` (named `memory`): every [`MEMORY_EVERY`], idle tenants'
/// text indexes leave memory while the resident ones hold more than `--max-resident-mb`
/// (loading an index also does this at once), the resident figures go to the metrics, and
/// once nothing was written or recalled for a whole period the store's page caches are
/// given back.
fn spawn_memory_upkeep(
    engine: &continuum_engine::Engine,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let engine = engine.clone();
    jobs.spawn("memory", continuum_ops::Backoff::default(), move |stop| {
        let engine = engine.clone();
        async move {
            let mut tick = tokio::time::interval(MEMORY_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                engine.bound_resident_indexes().await;
                engine
                    .release_memory_when_quiet()
                    .await
                    .map_err(|e| format!("releasing store caches: {e}"))?;
            }
        }
    })
    .map_err(|e| Error::Internal(e).into())
}

/// How often `serve` compacts the event log.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// How long shutdown waits for background jobs to reach a safe point before aborting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often the certificate files are looked at for a renewal.
const TLS_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Puts the certificate reload under `jobs` (named `tls-reload`): on SIGHUP, and when the
/// files' modification times change. A reload that fails keeps the certificate in use and
/// says why in the log.
fn spawn_tls_reload(
    tls: std::sync::Arc<continuum_server::tls::Tls>,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    jobs.spawn("tls-reload", continuum_ops::Backoff::default(), move |stop| {
        let tls = tls.clone();
        async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                    .map_err(|e| format!("listening for SIGHUP: {e}"))?;
            let mut seen = tls.stamp();
            loop {
                #[cfg(unix)]
                let signalled = async { hup.recv().await };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<Option<()>>();
                let why = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = signalled => "SIGHUP",
                    _ = tokio::time::sleep(TLS_CHECK_EVERY) => {
                        let now = tls.stamp();
                        if now == seen {
                            continue;
                        }
                        seen = now;
                        "the files changed"
                    }
                };
                match tls.reload() {
                    Ok(()) => tracing::info!(reason = why, "TLS certificate reloaded"),
                    Err(e) => tracing::warn!(reason = why, error = %e, "TLS certificate not reloaded; the previous one stays in use"),
                }
            }
        }
    })
    .map_err(|e| Error::Internal(e).into())
}

/// Puts the webhook delivery job under `jobs` (named `webhooks`). It stops between two
/// attempts; a failed pass fails the job, which the supervisor restarts with backoff.
fn spawn_webhooks(
    engine: &continuum_engine::Engine,
    config: continuum_webhooks::DeliveryConfig,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let sender = continuum_webhooks::Deliverer::new(engine.clone(), config)?;
    jobs.spawn("webhooks", continuum_ops::Backoff::default(), move |stop| {
        let sender = sender.clone();
        async move { sender.run(stop).await }
    })
    .map_err(|e| Error::Internal(e).into())
}

/// Puts the event-log compaction under `jobs` (named `event-compaction`): now, then every
/// [`COMPACT_EVERY`]. A failed run fails the job, which the supervisor restarts with backoff.
fn spawn_compaction(
    engine: &continuum_engine::Engine,
    retention: i64,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    let engine = engine.clone();
    jobs.spawn(
        "event-compaction",
        continuum_ops::Backoff::default(),
        move |stop| {
            let engine = engine.clone();
            async move {
                let mut tick = tokio::time::interval(COMPACT_EVERY);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    let c = engine
                        .compact_events(retention)
                        .await
                        .map_err(|e| format!("event compaction: {e}"))?;
                    if c.removed > 0 {
                        tracing::info!(
                            removed = c.removed,
                            compacted_through = c.compacted_through,
                            "compacted the event log"
                        );
                    }
                }
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
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
    tracing::info!("shutting down: finishing requests in flight, stopping background jobs");
}

pub async fn serve(g: &Global, a: ServeArgs) -> Result<()> {
    if !(a.rate > 0.0 && a.rate.is_finite())
        || a.max_body_bytes == 0
        || a.timeout_secs == 0
        || a.header_timeout_secs == 0
        || a.max_connections == 0
        || !(a.auth_failures_per_minute >= 0.0 && a.auth_failures_per_minute.is_finite())
    {
        return Err(Error::InvalidInput(
            "--rate, --max-body-bytes, --timeout-secs, --header-timeout-secs and --max-connections must be positive, --auth-failures-per-minute at least 0".into(),
        )
        .into());
    }
    if a.metrics_bind.is_some() && a.no_metrics {
        return Err(Error::InvalidInput(
            "--metrics-bind and --no-metrics contradict each other".into(),
        )
        .into());
    }
    if !a.no_metrics {
        continuum_ops::metrics::install().map_err(Error::Internal)?;
    }
    let (engine, store) = g.open_semantic().await?;
    let jobs = continuum_ops::Supervisor::new();
    crate::commands::reindex::spawn_worker(&engine, &jobs)?;
    spawn_compaction(&engine, a.event_retention, &jobs)?;
    spawn_webhooks(&engine, g.webhook_config(), &jobs)?;
    spawn_usage_flush(&engine, &jobs)?;
    spawn_key_expiry(&engine, &jobs)?;
    spawn_memory_upkeep(&engine, &jobs)?;
    if let Some(bind) = a
        .federation_bind
        .as_deref()
        .filter(|b| !b.trim().is_empty())
    {
        if !(a.federation_min_ratio.is_finite() && (0.0..=100.0).contains(&a.federation_min_ratio))
        {
            return Err(Error::InvalidInput(
                "--federation-min-ratio must be between 0 and 100".into(),
            )
            .into());
        }
        let policy = continuum_federation::access::AccessPolicy {
            free_queries: a.federation_free_queries,
            min_ratio: a.federation_min_ratio,
        };
        crate::commands::federation::spawn_hub(
            g,
            &engine,
            bind,
            policy,
            a.federation_cert_days,
            &jobs,
        )?;
    }
    if a.federation_contribute_secs > 0 {
        crate::commands::federation::spawn_contributions(
            g,
            &engine,
            Duration::from_secs(a.federation_contribute_secs),
            a.federation_sync,
            &jobs,
        )?;
    }
    crate::commands::retention::spawn_retention(&engine, g.retention.clone(), &jobs)?;
    spawn_sync(g, &engine, &jobs)?;
    let backups = super::backup::spawn_scheduled(g, &engine, &store, &jobs)?;
    if let Some(dir) = &a.audit_checkpoint_dir {
        if a.audit_checkpoint_every == 0 || a.audit_checkpoint_secs == 0 {
            return Err(Error::InvalidInput(
                "--audit-checkpoint-every and --audit-checkpoint-secs must be positive".into(),
            )
            .into());
        }
        let key = std::sync::Arc::new(g.audit_key()?);
        let policy = continuum_audit::CheckpointPolicy {
            dir: dir.clone(),
            every_entries: a.audit_checkpoint_every,
            every: Duration::from_secs(a.audit_checkpoint_secs),
        };
        let engine = engine.clone();
        jobs.spawn(
            "audit-checkpoint",
            continuum_ops::Backoff::default(),
            move |stop| {
                continuum_audit::run_checkpoints(engine.clone(), key.clone(), policy.clone(), stop)
            },
        )
        .map_err(Error::Internal)?;
    }
    if let Some(url) = a.audit_syslog.as_deref().filter(|u| !u.trim().is_empty()) {
        let target = continuum_audit::syslog::SyslogTarget::parse(
            url,
            a.audit_syslog_format == "cef",
            a.audit_syslog_ca.clone(),
        )?;
        let engine = engine.clone();
        jobs.spawn(
            "audit-syslog",
            continuum_ops::Backoff::default(),
            move |stop| continuum_audit::syslog::run_shipper(engine.clone(), target.clone(), stop),
        )
        .map_err(Error::Internal)?;
    }
    let stripe = stripe_config(&a, engine.tiers())?;
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
        metrics_on_api: !a.no_metrics && a.metrics_bind.is_none(),
        metrics_per_tenant: a.metrics_per_tenant,
        dashboard: !a.no_dashboard,
        backups,
        jobs: Some(jobs.clone()),
        auth_failures_per_minute: a.auth_failures_per_minute,
        webhooks: g.webhook_config(),
        trusted_proxies: a.trusted_proxies,
        stripe,
        ..ServerConfig::default()
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = continuum_server::tls::Tls::load(cert, key).map_err(Error::InvalidInput)?;
            spawn_tls_reload(tls.clone(), &jobs)?;
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let limits = continuum_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(a.header_timeout_secs),
        max_connections: a.max_connections,
        tls,
    };
    let listener = tokio::net::TcpListener::bind(&a.bind)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot listen on {}: {e}", a.bind)))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let cancel = jobs.cancellation();
    let metrics_server = match &a.metrics_bind {
        Some(bind) => {
            let l = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
                Error::Unavailable(format!("cannot listen on {bind} for metrics: {e}"))
            })?;
            let maddr = l.local_addr().context("reading the metrics address")?;
            tracing::info!("metrics on http://{maddr}/metrics");
            let stop = cancel.clone();
            Some(tokio::spawn(run(
                l,
                continuum_server::metrics_router(engine.clone()),
                async move { stop.cancelled().await },
            )))
        }
        None => None,
    };
    // The settings the server starts with, in the audit log (never a secret).
    engine
        .audit_start(serde_json::json!({
            "bind": addr.to_string(),
            "tls": scheme == "https",
            "store": store.store().backend(),
            "rate_per_key": config.rate_per_second,
            "max_body_bytes": config.max_body_bytes,
            "auth_failures_per_minute": config.auth_failures_per_minute,
            "trusted_proxies": config.trusted_proxies.len(),
            "cors_origins": config.cors_origins.len(),
            "default_tier": engine.tiers().default_tier().name,
            "billing": config.stripe.is_some(),
            "webhooks_allow_private": config.webhooks.allow_private,
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .await;
    // The line a supervisor or a test waits for. No key or password is printed.
    tracing::info!(store = %store.describe(), "listening on {scheme}://{addr}");
    engine.save_indexes_in_background();
    // Text indexes saved by the last run are read now, not by the first recalls.
    let warm = engine.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let n = warm.load_index_files().await;
        if n > 0 {
            tracing::info!(
                tenants = n,
                ms = started.elapsed().as_millis() as u64,
                "text indexes loaded"
            );
        }
    });
    let served = continuum_server::serve_with(
        listener,
        router(engine.clone(), config),
        shutdown_signal(),
        limits,
    )
    .await
    .context("serving HTTP");
    let aborted = jobs.shutdown(SHUTDOWN_GRACE).await;
    if !aborted.is_empty() {
        tracing::warn!(jobs = ?aborted, "background jobs aborted after the grace period");
    }
    // The next start reads these instead of rebuilding.
    let saved = engine.save_indexes().await;
    if saved > 0 {
        tracing::info!(tenants = saved, "text index files written");
    }
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    tracing::info!("stopped");
    served
}

/// Starts the background sync job `sync` when --remote names a server.
pub(crate) fn spawn_sync(
    g: &Global,
    engine: &continuum_engine::Engine,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    for (_, replica) in crate::app::open_replicas() {
        let engine = engine.clone();
        let interval = Duration::from_secs(g.libsql_sync_interval);
        tracing::info!(
            store = %replica.location().describe(),
            interval_s = g.libsql_sync_interval,
            "libSQL replica sync on"
        );
        jobs.spawn(
            "libsql-sync",
            continuum_ops::Backoff::default(),
            move |stop| {
                continuum_store_libsql::run_background(
                    engine.clone(),
                    replica.clone(),
                    interval,
                    stop,
                )
            },
        )
        .map_err(Error::Internal)?;
    }
    let Some(cfg) = g.background_sync()? else {
        return Ok(());
    };
    tracing::info!(remote = %cfg.remote.url(), tenant = cfg.tenant.as_str(), "background sync on");
    let engine = engine.clone();
    jobs.spawn("sync", continuum_ops::Backoff::default(), move |stop| {
        continuum_sync::run_background(engine.clone(), cfg.clone(), stop)
    })
    .map_err(Error::Internal)?;
    Ok(())
}
