//! The HTTP face of the engine: a REST API under `/v1`, authenticated by API keys.
//!
//! Handlers only translate between HTTP and engine calls. The tenant always comes from the key;
//! nothing in a request names it. Errors are `{"error": {"code", "message"}}` with the status
//! of one exhaustive match; internal details go to the log, never to the client. Limits: body
//! size (413), page sizes (400), a token bucket per key (429 with `Retry-After`), a request
//! timeout (408). CORS is answered before authentication.
//!
//! The OpenAPI document (`GET /v1/openapi.json`, or [`openapi_document`]) is generated from the
//! list that builds the router, so every route is in it.
//!
//! Tenants are administered by operator keys (`/v1/tenants`), which see counts and keys, never
//! a tenant's content.
//!
//! Metering and tiers: each authenticated request is counted by its route's kind and held to
//! the tenant's tier (daily requests, rate per key); Stripe's webhooks set tiers.

mod error;
mod observe;
mod openapi;
pub mod proxy;
mod routes;
pub mod tls;

pub use error::ApiError;
pub use observe::MAX_REQUEST_ID;
pub use routes::{BackupCatalog, BackupSummary};

use axum::Router;
use continuum_engine::Engine;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Server settings; every limit explicit.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// A request taking longer is answered 408.
    pub request_timeout: Duration,
    /// Requests per second each key may sustain…
    pub rate_per_second: f64,
    /// …and in a burst.
    pub rate_burst: f64,
    /// Origins allowed by CORS (`*` for any); empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Serve `GET /metrics` on the API listener, behind an operator key (when metrics have
    /// no listener of their own; see [`metrics_router`]).
    pub metrics_on_api: bool,
    /// Also count requests per tenant (`continuum_tenant_http_requests_total{tenant}`): one
    /// series per tenant, so off by default.
    pub metrics_per_tenant: bool,
    /// The process's background jobs, shown by `/v1/ready`.
    pub jobs: Option<continuum_ops::Supervisor>,
    /// How often an event stream sends a heartbeat and re-checks its key (15 s).
    pub stream_heartbeat: Duration,
    /// Failed authentications a source address may make per minute (and in a burst) before
    /// its requests are refused with 429 for a while (30; 0 turns the limit off).
    pub auth_failures_per_minute: f64,
    /// How webhooks are delivered, and whether their targets may be private addresses.
    pub webhooks: continuum_webhooks::DeliveryConfig,
    /// Proxies (a CDN, a load balancer, a DDoS filter) whose `X-Forwarded-For` names the
    /// client; from anyone else the header is ignored (see [`proxy`]).
    pub trusted_proxies: Vec<proxy::Cidr>,
    /// Stripe's webhooks at `POST /v1/billing/stripe` (`None`: answered 404).
    pub stripe: Option<continuum_webhooks::stripe::StripeConfig>,
    /// An MCP-over-HTTP session unused this long is closed (5 minutes).
    pub mcp_session_idle: Duration,
    /// Serve the web dashboard at `/dashboard` (on by default).
    pub dashboard: bool,
    /// The backups this server makes, for `GET /v1/backups` (`None`: answered 404).
    pub backups: Option<std::sync::Arc<dyn BackupCatalog>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_per_second: 200.0,
            rate_burst: 400.0,
            cors_origins: Vec::new(),
            metrics_on_api: false,
            metrics_per_tenant: false,
            jobs: None,
            stream_heartbeat: Duration::from_secs(15),
            auth_failures_per_minute: 30.0,
            webhooks: Default::default(),
            trusted_proxies: Vec::new(),
            stripe: None,
            mcp_session_idle: routes::MCP_SESSION_IDLE,
            dashboard: true,
            backups: None,
        }
    }
}

/// A token bucket per API key.
#[derive(Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes a token for `key`; on refusal, the seconds until one is available.
    pub(crate) fn take(&self, key: &str, rate: f64, burst: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            metrics::counter!(continuum_ops::metrics::RATE_LIMITED).increment(1);
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

pub(crate) struct AppState {
    pub engine: Engine,
    pub config: ServerConfig,
    pub limiter: RateLimiter,
    /// The OpenAPI document, built once at start.
    pub openapi: serde_json::Value,
    pub scrape: observe::ScrapeCache,
    /// Open event streams (WebSocket and Server-Sent Events), by key.
    pub(crate) streams: routes::Streams,
    /// Failed authentications by source address.
    pub(crate) auth_failures: routes::AuthFailures,
    /// Open MCP sessions, by key.
    pub(crate) mcp_sessions: routes::McpSessions,
    /// Audit writes of failed authentications not finished yet.
    pub(crate) audit_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// The application: every route with its layers.
pub fn router(engine: Engine, config: ServerConfig) -> Router {
    let (routes, openapi) = routes::api();
    let state = Arc::new(AppState {
        engine,
        config: config.clone(),
        limiter: RateLimiter::default(),
        openapi,
        scrape: Default::default(),
        streams: Default::default(),
        auth_failures: Default::default(),
        mcp_sessions: Default::default(),
        audit_in_flight: Default::default(),
    });
    routes::router(routes, state, &config)
}

/// `GET /metrics` alone, without a key, for a listener only the scraper reaches
/// (`serve --metrics-bind`). Metrics must be installed ([`continuum_ops::metrics::install`]);
/// otherwise it answers 404.
pub fn metrics_router(engine: Engine) -> Router {
    let state = Arc::new(AppState {
        engine,
        config: ServerConfig::default(),
        limiter: RateLimiter::default(),
        openapi: serde_json::Value::Null,
        scrape: Default::default(),
        streams: Default::default(),
        auth_failures: Default::default(),
        mcp_sessions: Default::default(),
        audit_in_flight: Default::default(),
    });
    Router::new()
        .route("/metrics", axum::routing::get(observe::open_metrics))
        .with_state(state)
}

/// The OpenAPI 3.1 document of the REST API (what `GET /v1/openapi.json` serves).
pub fn openapi_document() -> serde_json::Value {
    routes::api().1
}

/// The most header fields a request may carry, and their total size in bytes: past either the
/// answer is 431 in the error envelope. (HTTP parsing itself stops at [`PARSER_MAX_HEADERS`]
/// fields or a [`PARSER_MAX_BUF`]-byte head, where the connection gets a bare 431.)
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The HTTP parser's own limits, well past the API's so that the API answers first.
pub const PARSER_MAX_HEADERS: usize = 1000;
pub const PARSER_MAX_BUF: usize = 1024 * 1024;

/// Limits on connections, enforced by [`serve_with`] before any request is read, and TLS.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's whole head (and, with TLS, to finish the
    /// handshake), counted from the connection's start or from the end of the previous
    /// response: a connection that sends nothing, or half a header, is closed after it (10 s).
    pub header_read_timeout: Duration,
    /// Connections open at once; past it a new connection is answered 503 and closed (4096).
    pub max_connections: usize,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<Arc<tls::Tls>>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            tls: None,
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1; with TLS, HTTP/2 too, by ALPN) until `shutdown` resolves, then stops accepting and
/// lets requests in flight finish; [`ConnectionLimits::default`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, ConnectionLimits::default()).await
}

/// Streams one HTTP/2 connection may carry at once.
pub const MAX_H2_STREAMS: u32 = 128;

/// Serves HTTP/2 on one connection (TLS with ALPN `h2`) until it closes, or gracefully once
/// `stop` is cancelled. A connection that opens no stream within `idle` is closed, as an idle
/// HTTP/1.1 one is.
async fn serve_h2<I, S>(io: I, service: S, idle: Duration, stop: continuum_ops::CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder =
        hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(PARSER_MAX_BUF as u32)
        .keep_alive_interval(Some(idle))
        .keep_alive_timeout(idle);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

/// Serves HTTP/1.1 on one connection until it closes, or gracefully once `stop` is cancelled.
async fn serve_connection<I, S>(
    io: I,
    service: S,
    header_timeout: Duration,
    stop: continuum_ops::CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_headers(PARSER_MAX_HEADERS)
        .max_buf_size(PARSER_MAX_BUF)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

/// The answer to a connection past [`ConnectionLimits::max_connections`].
fn too_many_connections() -> String {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server is at its connection limit; retry shortly"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// [`serve`] with explicit connection limits.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    let stopping = continuum_ops::CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(continuum_ops::metrics::CONNECTIONS_REFUSED).increment(1);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(too_many_connections().as_bytes()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stop = stopping.clone();
        // Every request carries the stop signal (streams end when the server stops, so that
        // their connections can close) and the client's address (for the limits on failed
        // authentications).
        let (app, signal, addr) = (
            app.clone(),
            routes::Stopping(stop.clone()),
            routes::ClientAddr(peer.ip()),
        );
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(signal.clone());
            req.extensions_mut().insert(addr);
            tower_service::Service::call(&mut app.clone(), req)
        });
        let header_timeout = limits.header_read_timeout;
        let tls = limits.tls.as_ref().map(|t| t.acceptor());
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(TokioIo::new(stream), service, header_timeout, stop).await,
                Some(acceptor) => {
                    // A client that does not finish the handshake in time is dropped.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        serve_h2(TokioIo::new(stream), service, header_timeout, stop).await
                    } else {
                        serve_connection(TokioIo::new(stream), service, header_timeout, stop).await
                    }
                }
            }
        });
        // Reap finished connections so the set does not grow with the server's age.
        while connections.try_join_next().is_some() {}
    }
    stopping.cancel();
    while connections.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refuses_past_the_burst_and_says_when_to_retry() {
        let l = RateLimiter::default();
        for _ in 0..3 {
            assert!(l.take("k", 1.0, 3.0).is_ok());
        }
        assert_eq!(l.take("k", 1.0, 3.0), Err(1));
        assert!(l.take("other", 1.0, 3.0).is_ok(), "buckets are per key");
    }
}
