//! Continuum's sync client: one node keeps a tenant level with a Continuum server.
//!
//! A round pulls the server's events for the key's tenant since the kept cursor and applies
//! them (the merge rules are [`continuum_core::sync`]'s), then pushes the events this node
//! wrote itself that the server has not acknowledged, and repeats until a pull brings nothing
//! and a push sends nothing. Every cursor moves only after what it covers was committed, so a
//! round cut short (a crash, a dropped connection, a server sending garbage) loses nothing and
//! the next round starts where this one stopped; applying is idempotent by (origin, position),
//! so a repeated page is harmless.
//!
//! [`run_background`] is the supervised job of `continuum serve` and `continuum mcp`: a round
//! every interval and soon after local writes (debounced), with backoff while the server is
//! unreachable; it never blocks `learn` or `recall`.

use continuum_core::sync::{MAX_SYNC_EVENTS, PullPage, PushReceipt, PushRequest, SyncPeer};
use continuum_core::{Error, Result, TenantId, Timestamp};
use continuum_engine::Engine;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// Events asked for per pull page and sent per push (at most).
pub const PAGE: usize = 500;

/// The largest push body this client sends (the server's default body limit is 1 MiB).
pub const MAX_PUSH_BYTES: usize = 768 * 1024;

/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Rounds of pull-then-push before a sync gives up on becoming level (other writers keep
/// adding events); the next sync goes on from there.
pub const MAX_ROUNDS: usize = 4;

/// The largest response body read from a remote.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A Continuum server to sync with.
#[derive(Clone)]
pub struct Remote {
    base: String,
    key: String,
    http: reqwest::Client,
    traffic: std::sync::Arc<Traffic>,
}

/// Requests made and body bytes sent and received through a [`Remote`] so far.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: std::sync::atomic::AtomicU64,
    pub sent: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
}

impl Traffic {
    fn snapshot(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.requests.load(Relaxed),
            self.sent.load(Relaxed),
            self.received.load(Relaxed),
        )
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Remote").field("base", &self.base).finish()
    }
}

impl Remote {
    /// A remote at `url` (`http://` or `https://`, no credentials or query in it), reached with
    /// `key`; TLS trusts the system roots and, when given, the PEM certificates in `ca`.
    pub fn new(url: &str, key: &str, ca: Option<&Path>) -> Result<Remote> {
        let base = normalise_url(url)?;
        if key.trim().is_empty() {
            return Err(Error::InvalidInput(
                "no key for the remote (--remote-key, CONTINUUM_REMOTE_KEY or [sync] remote_key)"
                    .into(),
            ));
        }
        let mut b = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("continuum-sync/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| {
                Error::InvalidInput(format!("cannot read the CA file {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::InvalidInput(format!("{} holds no PEM certificate: {e}", ca.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "{} holds no PEM certificate",
                    ca.display()
                )));
            }
            b = b.tls_certs_merge(certs);
        }
        let http = b
            .build()
            .map_err(|e| Error::Internal(format!("cannot build an HTTP client: {e}")))?;
        Ok(Remote {
            base,
            key: key.trim().to_string(),
            http,
            traffic: Default::default(),
        })
    }

    /// Requests and bytes through this remote so far.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The remote's base URL, as sync states are kept under.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        sent: usize,
    ) -> Result<T> {
        use std::sync::atomic::Ordering::Relaxed;
        self.traffic.requests.fetch_add(1, Relaxed);
        self.traffic.sent.fetch_add(sent as u64, Relaxed);
        let resp = req
            .header("x-api-key", &self.key)
            .send()
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "the remote {} cannot be reached: {}",
                    self.base,
                    without_url(&e)
                ))
            })?;
        let status = resp.status();
        let body = read_capped(resp)
            .await
            .map_err(|e| Error::Unavailable(format!("reading the answer of {}: {e}", self.base)))?;
        self.traffic.received.fetch_add(body.len() as u64, Relaxed);
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            let text = format!("the remote {} answered {status}: {msg}", self.base);
            return Err(match status.as_u16() {
                401 => Error::Unauthorized(text),
                403 => Error::Forbidden(text),
                400 | 413 | 422 => Error::InvalidInput(text),
                410 => Error::Gone(text),
                429 => Error::QuotaExceeded(text, None),
                _ => Error::Unavailable(text),
            });
        }
        serde_json::from_slice(&body).map_err(|e| {
            Error::Unavailable(format!(
                "the remote {} sent an answer that is not a sync response ({e}); nothing was applied",
                self.base
            ))
        })
    }

    /// A page of the remote's events after `since`, without those of origin `exclude`.
    pub async fn pull(&self, since: u64, limit: usize, exclude: &str) -> Result<PullPage> {
        let url = format!(
            "{}/v1/sync/pull?since={since}&limit={limit}&exclude_origin={exclude}",
            self.base
        );
        self.send(self.http.get(url), 0).await
    }

    /// Sends a push.
    pub async fn push(&self, req: &PushRequest) -> Result<PushReceipt> {
        let body = serde_json::to_vec(req).map_err(|e| Error::Internal(e.to_string()))?;
        let len = body.len();
        self.send(
            self.http
                .post(format!("{}/v1/sync/push", self.base))
                .header("content-type", "application/json")
                .body(body),
            len,
        )
        .await
    }
}

async fn read_capped(mut resp: reqwest::Response) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| without_url(&e))? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A reqwest error without the URL it carries (which may hold a query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Checks a remote URL and gives its base form (no trailing slash).
pub fn normalise_url(url: &str) -> Result<String> {
    let u = url::Url::parse(url.trim())
        .map_err(|e| Error::InvalidInput(format!("the remote '{url}' is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Error::InvalidInput(format!(
            "the remote must be an http:// or https:// URL, not {}://",
            u.scheme()
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::InvalidInput(
            "the remote URL must not hold credentials; give the key with --remote-key or CONTINUUM_REMOTE_KEY".into(),
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(Error::InvalidInput(
            "the remote URL must not have a query or fragment".into(),
        ));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

/// What a sync did (`continuum sync --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    pub remote: String,
    pub tenant: TenantId,
    pub remote_node: Option<String>,
    pub remote_tenant: Option<TenantId>,
    /// Events this node sent.
    pub pushed: u64,
    /// Events received from the remote.
    pub pulled: u64,
    /// Received events that changed something here.
    pub applied: u64,
    /// Received events already here, or that changed nothing.
    pub skipped: u64,
    /// Of the pushed events, those the remote applied / skipped.
    pub remote_applied: u64,
    pub remote_skipped: u64,
    pub rounds: u64,
    /// Whether both sides were level at the end (false: other writers kept adding).
    pub level: bool,
    pub duration_ms: u64,
    /// HTTP requests made, and request and response body bytes.
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// Pulled so far, and how many the remote said it has after the cursor (an estimate).
    Pulled {
        done: u64,
        remote_head: u64,
        cursor: u64,
    },
    /// Pushed so far.
    Pushed { done: u64 },
}

/// One sync of `tenant` with `remote`: pull, push, until level (at most [`MAX_ROUNDS`]). The
/// outcome, success or error, is kept in the tenant's sync state.
pub async fn sync_once(
    engine: &Engine,
    tenant: &TenantId,
    remote: &Remote,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SyncReport> {
    let started = Instant::now();
    let mut peer = engine
        .sync_peer(remote.url(), tenant)
        .await?
        .unwrap_or_else(|| SyncPeer {
            remote: remote.url().to_string(),
            tenant: tenant.clone(),
            remote_node: None,
            remote_tenant: None,
            pushed_through: 0,
            pulled_through: 0,
            last_success: None,
            last_error: None,
            updated_at: Timestamp(0),
        });
    let mut report = SyncReport {
        remote: remote.url().to_string(),
        tenant: tenant.clone(),
        remote_node: None,
        remote_tenant: None,
        pushed: 0,
        pulled: 0,
        applied: 0,
        skipped: 0,
        remote_applied: 0,
        remote_skipped: 0,
        rounds: 0,
        level: false,
        duration_ms: 0,
        requests: 0,
        bytes_sent: 0,
        bytes_received: 0,
    };
    let traffic_before = remote.traffic().snapshot();
    let outcome = rounds(engine, tenant, remote, &mut peer, &mut report, progress).await;
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    );
    peer.updated_at = now;
    match &outcome {
        Ok(()) => {
            peer.last_success = Some(now);
            peer.last_error = None;
        }
        Err(e) => peer.last_error = Some(e.to_string()),
    }
    metrics::counter!(
        continuum_ops::metrics::SYNC_ROUNDS,
        "outcome" => if outcome.is_ok() { "ok" } else { "error" }
    )
    .increment(1);
    metrics::counter!(continuum_ops::metrics::SYNC_EVENTS, "direction" => "pushed")
        .increment(report.pushed);
    metrics::counter!(continuum_ops::metrics::SYNC_EVENTS, "direction" => "pulled")
        .increment(report.pulled);
    // Keep the outcome even when the sync failed (a store error here is reported after it).
    let kept = engine.put_sync_peer(&peer).await;
    outcome?;
    kept?;
    report.remote_node = peer.remote_node.clone();
    report.remote_tenant = peer.remote_tenant.clone();
    report.duration_ms = started.elapsed().as_millis() as u64;
    let after = remote.traffic().snapshot();
    report.requests = after.0 - traffic_before.0;
    report.bytes_sent = after.1 - traffic_before.1;
    report.bytes_received = after.2 - traffic_before.2;
    Ok(report)
}

async fn rounds(
    engine: &Engine,
    tenant: &TenantId,
    remote: &Remote,
    peer: &mut SyncPeer,
    report: &mut SyncReport,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    let node = engine.node_id().await?;
    for _ in 0..MAX_ROUNDS {
        report.rounds += 1;
        let pulled = pull_all(engine, tenant, remote, &node, peer, report, progress).await?;
        let pushed = push_all(engine, tenant, remote, &node, peer, report, progress).await?;
        if pulled == 0 && pushed == 0 {
            report.level = true;
            return Ok(());
        }
        if pushed == 0 {
            // What we pulled was applied and nothing of ours is waiting: level unless the
            // remote moved meanwhile, which the next sync picks up.
            report.level = true;
            return Ok(());
        }
    }
    Ok(())
}

async fn pull_all(
    engine: &Engine,
    tenant: &TenantId,
    remote: &Remote,
    node: &str,
    peer: &mut SyncPeer,
    report: &mut SyncReport,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<u64> {
    let mut n = 0u64;
    loop {
        let page = remote.pull(peer.pulled_through, PAGE, node).await?;
        if page.node == node {
            return Err(Error::InvalidInput(
                "the remote is this node itself (same node id)".into(),
            ));
        }
        if let Some(known) = &peer.remote_node
            && known != &page.node
        {
            return Err(Error::Conflict(format!(
                "the remote's node id changed (was {known}, now {}): it was replaced or restored; \
                 run `continuum sync reset --remote {}` to sync with it from the start",
                page.node,
                remote.url()
            )));
        }
        if page.next < peer.pulled_through {
            return Err(Error::Unavailable(format!(
                "the remote's position went back (from {} to {}); nothing was applied",
                peer.pulled_through, page.next
            )));
        }
        if !page.events.is_empty() {
            let r = engine.sync_apply(tenant, &page).await?;
            n += page.events.len() as u64;
            report.pulled += page.events.len() as u64;
            report.applied += r.applied;
            report.skipped += r.skipped;
        }
        let moved = page.next > peer.pulled_through;
        peer.pulled_through = page.next;
        peer.remote_node = Some(page.node.clone());
        peer.remote_tenant = Some(page.tenant.clone());
        if moved {
            engine.put_sync_peer(peer).await?;
        }
        progress(Progress::Pulled {
            done: report.pulled,
            remote_head: page.head,
            cursor: page.next,
        });
        if page.events.is_empty() || page.next >= page.head {
            return Ok(n);
        }
    }
}

async fn push_all(
    engine: &Engine,
    tenant: &TenantId,
    remote: &Remote,
    node: &str,
    peer: &mut SyncPeer,
    report: &mut SyncReport,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<u64> {
    let remote_tenant = peer
        .remote_tenant
        .clone()
        .ok_or_else(|| Error::Internal("push before the remote's tenant is known".into()))?;
    let mut n = 0u64;
    loop {
        // Read before the events: a write committed after it has a later position.
        let head = engine.latest_event_of(tenant).await?;
        let mut events = engine
            .sync_outgoing(tenant, peer.pushed_through, PAGE.min(MAX_SYNC_EVENTS))
            .await?;
        if events.is_empty() {
            // Nothing of ours up to the head (what we pulled is not ours to push): the next
            // round need not look at those positions again.
            if head > peer.pushed_through {
                peer.pushed_through = head;
                engine.put_sync_peer(peer).await?;
            }
            return Ok(n);
        }
        // Fill a body up to the size limit, at least one event.
        let mut size = 64usize;
        let mut take = 0usize;
        for e in &mut events {
            e.tenant = remote_tenant.clone();
            let len = serde_json::to_vec(e).map(|v| v.len()).unwrap_or(usize::MAX);
            if take > 0 && size + len + 1 > MAX_PUSH_BYTES {
                break;
            }
            if take == 0 && len + size > MAX_PUSH_BYTES {
                return Err(Error::InvalidInput(format!(
                    "event {} is {len} bytes, more than one push may carry ({MAX_PUSH_BYTES})",
                    e.seq
                )));
            }
            size += len + 1;
            take += 1;
        }
        events.truncate(take);
        let last = events.last().map(|e| e.seq).unwrap_or(peer.pushed_through);
        let receipt = remote
            .push(&PushRequest {
                node: node.to_string(),
                events,
            })
            .await?;
        if receipt.through != last {
            return Err(Error::Unavailable(format!(
                "the remote acknowledged position {} but {last} was sent; the push will be repeated",
                receipt.through
            )));
        }
        n += take as u64;
        report.pushed += take as u64;
        report.remote_applied += receipt.applied;
        report.remote_skipped += receipt.skipped;
        peer.pushed_through = last;
        engine.put_sync_peer(peer).await?;
        progress(Progress::Pushed {
            done: report.pushed,
        });
    }
}

/// The sync state of a tenant for `continuum sync status`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub remote: String,
    pub tenant: TenantId,
    pub node: String,
    pub remote_node: Option<String>,
    pub remote_tenant: Option<TenantId>,
    /// Local log position acknowledged by the remote, and the local head.
    pub pushed_through: u64,
    pub local_head: u64,
    /// Events of this node waiting to be pushed (counted up to 100,000).
    pub waiting_push: u64,
    /// The remote's position applied here, the remote's head and what waits there (when the
    /// remote could be asked).
    pub pulled_through: u64,
    pub remote_head: Option<u64>,
    pub waiting_pull: Option<u64>,
    pub last_success: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Why the remote could not be asked, when it could not.
    pub remote_error: Option<String>,
}

/// The sync state of `tenant` with `remote`; asks the remote for its head when `ask`.
pub async fn status(
    engine: &Engine,
    tenant: &TenantId,
    remote: &Remote,
    ask: bool,
) -> Result<SyncStatus> {
    let node = engine.node_id().await?;
    let peer = engine.sync_peer(remote.url(), tenant).await?;
    let pushed = peer.as_ref().map(|p| p.pushed_through).unwrap_or(0);
    let pulled = peer.as_ref().map(|p| p.pulled_through).unwrap_or(0);
    let local_head = engine.latest_event_of(tenant).await?;
    let waiting_push = engine.sync_waiting(tenant, pushed, 100_000).await?;
    let (mut remote_head, mut waiting_pull, mut remote_error) = (None, None, None);
    if ask {
        match remote.pull(pulled, 1, &node).await {
            Ok(page) => {
                remote_head = Some(page.head);
                // An estimate: the remote's positions after the cursor, of every type.
                waiting_pull = Some(if page.events.is_empty() {
                    0
                } else {
                    page.head.saturating_sub(pulled)
                });
            }
            Err(e) => remote_error = Some(e.to_string()),
        }
    }
    Ok(SyncStatus {
        remote: remote.url().to_string(),
        tenant: tenant.clone(),
        node,
        remote_node: peer.as_ref().and_then(|p| p.remote_node.clone()),
        remote_tenant: peer.as_ref().and_then(|p| p.remote_tenant.clone()),
        pushed_through: pushed,
        local_head,
        waiting_push,
        pulled_through: pulled,
        remote_head,
        waiting_pull,
        last_success: peer.as_ref().and_then(|p| p.last_success),
        last_error: peer.as_ref().and_then(|p| p.last_error.clone()),
        remote_error,
    })
}

/// Background sync settings (`[sync]`).
#[derive(Debug, Clone)]
pub struct BackgroundSync {
    pub remote: Remote,
    pub tenant: TenantId,
    /// A round at least this often.
    pub interval: Duration,
    /// After a local write, wait this long for more before a round.
    pub debounce: Duration,
}

/// The supervised background sync job: a round every interval and soon after local writes;
/// while the remote fails, waits with doubling pauses (up to 5 minutes, with jitter) and
/// keeps the error in the sync state. Returns when `stop` is cancelled.
pub async fn run_background(
    engine: Engine,
    cfg: BackgroundSync,
    stop: continuum_ops::CancellationToken,
) -> std::result::Result<(), String> {
    let mut written = engine.written();
    let mut pause = cfg.interval;
    let max_pause = Duration::from_secs(300).max(cfg.interval);
    loop {
        match sync_once(&engine, &cfg.tenant, &cfg.remote, &|_| {}).await {
            Ok(r) => {
                if r.pushed > 0 || r.pulled > 0 {
                    tracing::info!(
                        remote = %cfg.remote.url(),
                        pushed = r.pushed,
                        pulled = r.pulled,
                        applied = r.applied,
                        "sync round"
                    );
                }
                pause = cfg.interval;
            }
            Err(e) => {
                tracing::warn!(remote = %cfg.remote.url(), error = %e, "sync failed; retrying later");
                pause = (pause * 2).min(max_pause);
            }
        }
        // Our own round wrote (pulled events): do not count that as a local write.
        written.borrow_and_update();
        if !continuum_ops::wait_for_next_round(pause, cfg.debounce, &mut written, &stop).await {
            return Ok(());
        }
    }
}
