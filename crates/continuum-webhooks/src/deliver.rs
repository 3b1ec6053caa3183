//! The delivery job. Each active subscription follows its tenant's events from its position,
//! one event at a time and in order: the next event it wants is sent; a 2xx answer within the
//! timeout delivers it and the subscription moves on. Any other outcome is a failed attempt:
//! the event is tried again after the next pause of [`DeliveryConfig::schedule`] (with ±20%
//! jitter, or the receiver's `Retry-After` when longer) and the events behind it wait. When
//! the schedule is used up the delivery is dead-lettered (kept, shown, sent again only on
//! request) and the subscription moves on. A subscription whose attempts have all failed for
//! [`DeliveryConfig::disable_after`], or whose receiver answered 410 Gone, is disabled.
//!
//! Up to [`CONCURRENT_SUBSCRIPTIONS`] subscriptions are delivered to at once, so a slow or
//! unreachable receiver delays only its own.
//!
//! Delivery is at least once: a crash between a receiver's 2xx and the saved position sends
//! that event again, with the same `webhook-id` (`evt_{position}`), for the receiver to drop.

use crate::sign;
use crate::target::{GlobalOnly, check_target};
use continuum_core::webhook::{Delivery, DeliveryState, MAX_ERROR_BYTES, Webhook, WebhookState};
use continuum_core::{Error, EventRecord, Result, Timestamp};
use continuum_engine::Engine;
use continuum_ops::CancellationToken;
use std::time::Duration;

/// Deliveries, by result (`delivered`, `failed`: an attempt that will be retried, `dead`:
/// dead-lettered).
pub const DELIVERIES: &str = "continuum_webhook_deliveries_total";

/// Subscriptions delivered to at the same time (each in its own order).
pub const CONCURRENT_SUBSCRIPTIONS: usize = 16;

/// How the job delivers.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Allow targets on private, loopback and link-local addresses.
    pub allow_private: bool,
    /// The pauses before the second, third, … attempt; when used up, the delivery is
    /// dead-lettered. The default sums to about 27 hours.
    pub schedule: Vec<Duration>,
    /// Time a receiver has to answer.
    pub timeout: Duration,
    /// A subscription failing for this long is disabled (5 days).
    pub disable_after: Duration,
    /// How often the job looks for new events of other processes and for retries due.
    pub poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |minutes: u64| Duration::from_secs(minutes * 60);
        DeliveryConfig {
            allow_private: false,
            schedule: vec![
                Duration::from_secs(5),
                m(5),
                m(30),
                m(120),
                m(300),
                m(600),
                m(600),
                m(600),
            ],
            timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 86_400),
            poll: Duration::from_secs(1),
        }
    }
}

/// What one attempt came to.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends webhooks for an engine.
#[derive(Clone)]
pub struct Deliverer {
    engine: Engine,
    client: reqwest::Client,
    config: DeliveryConfig,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_ERROR_BYTES {
        let mut end = MAX_ERROR_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The body sent for an event: `{type, timestamp, data}` as the Standard Webhooks
/// specification suggests, `data` being the event as `GET /v1/events` lists it.
pub fn payload(record: &EventRecord) -> Result<Vec<u8>> {
    let data = serde_json::to_value(record)
        .map_err(|e| Error::Internal(format!("encoding an event: {e}")))?;
    let body = serde_json::json!({
        "type": record.event.kind(),
        "timestamp": record.at,
        "data": data,
    });
    serde_json::to_vec(&body).map_err(|e| Error::Internal(format!("encoding an event: {e}")))
}

impl Deliverer {
    pub fn new(engine: Engine, config: DeliveryConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(GlobalOnly {
                allow_private: config.allow_private,
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .user_agent(concat!("Continuum-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("building the webhook client: {e}")))?;
        Ok(Deliverer {
            engine,
            client,
            config,
        })
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Sends one event to a subscription's URL, signed with its secret (and the previous one
    /// while it still signs).
    async fn attempt(&self, w: &Webhook, record: &EventRecord) -> Outcome {
        let failed = |e: String| Outcome {
            status: None,
            error: Some(clip(e)),
            retry_after: None,
        };
        // Checked again at every attempt: the rules may have changed since it was made.
        let url = match check_target(&w.url, self.config.allow_private) {
            Ok(u) => u,
            Err(e) => return failed(e.to_string()),
        };
        let body = match payload(record) {
            Ok(b) => b,
            Err(e) => return failed(e.to_string()),
        };
        let id = format!("evt_{}", record.seq);
        let ts = now_ms() / 1000;
        let mut secrets = vec![w.secret.as_str()];
        if let (Some(prev), Some(until)) = (&w.previous_secret, w.previous_until)
            && until.millis() > now_ms()
        {
            secrets.push(prev.as_str());
        }
        let signature = match sign::signature_header(&secrets, &id, ts, &body) {
            Ok(s) => s,
            Err(e) => return failed(e.to_string()),
        };
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(86_400)));
                Outcome {
                    status: Some(status),
                    error: (!(200..300).contains(&status))
                        .then(|| format!("the receiver answered {status}")),
                    retry_after,
                }
            }
            // The error's text without the URL (which may hold a token in its path).
            Err(e) => failed(describe(&e)),
        }
    }

    /// Works on one subscription until it has nothing due: returns when it is level with the
    /// log, or waiting for a retry.
    async fn tend(&self, mut w: Webhook, stop: &CancellationToken) -> Result<()> {
        const PAGE: usize = 100;
        let before = w.clone();
        'pages: while !stop.is_cancelled() {
            let page = self.engine.events(&w.tenant, w.position, PAGE).await?;
            if page.is_empty() {
                break;
            }
            let full = page.len() == PAGE;
            for record in &page {
                let kind = record.event.kind();
                if !w.events.is_empty() && !w.events.iter().any(|e| e == kind) {
                    w.position = record.seq;
                    continue;
                }
                let id = Delivery::id_for(&w.id, record.seq);
                let now = now_ms();
                let mut d = match self.engine.stored_delivery(&id).await? {
                    Some(d) => d,
                    None => Delivery {
                        id,
                        webhook: w.id.clone(),
                        seq: record.seq,
                        event_type: kind.to_string(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        next_attempt_at: None,
                        last_status: None,
                        last_error: None,
                        created_at: Timestamp(now),
                        updated_at: Timestamp(now),
                    },
                };
                if d.state != DeliveryState::Pending {
                    // Handled before a crash that lost the position.
                    w.position = record.seq;
                    continue;
                }
                if d.next_attempt_at.is_some_and(|t| t.millis() > now) {
                    break 'pages; // waiting for its retry; the events behind it wait too
                }
                let outcome = self.attempt(&w, record).await;
                self.engine
                    .count_usage(&w.tenant, |c| c.webhook_deliveries += 1);
                let now = now_ms();
                d.attempts += 1;
                d.last_status = outcome.status;
                d.last_error = outcome.error.clone();
                d.updated_at = Timestamp(now);
                if outcome.delivered() {
                    d.state = DeliveryState::Delivered;
                    d.next_attempt_at = None;
                    w.position = record.seq;
                    w.failing_since = None;
                    metrics::counter!(DELIVERIES, "result" => "delivered").increment(1);
                    self.engine.save_delivery(&d).await?;
                    continue;
                }
                w.failing_since = w.failing_since.or(Some(Timestamp(now)));
                if outcome.status == Some(410) {
                    w.state = WebhookState::Disabled;
                    w.disabled_reason = Some("the receiver answered 410 Gone".into());
                    d.next_attempt_at = None;
                    self.engine.save_delivery(&d).await?;
                    tracing::warn!(webhook = %w.id, tenant = %w.tenant, "webhook disabled: the receiver answered 410 Gone");
                    break 'pages;
                }
                let used = (d.attempts as usize).saturating_sub(1);
                match self.config.schedule.get(used) {
                    Some(pause) => {
                        let jitter = 0.8 + fastrand::f64() * 0.4;
                        let mut wait = pause.mul_f64(jitter);
                        if let Some(asked) = outcome.retry_after {
                            wait = wait.max(asked);
                        }
                        d.next_attempt_at = Some(Timestamp(now + wait.as_millis() as i64));
                        metrics::counter!(DELIVERIES, "result" => "failed").increment(1);
                        tracing::info!(webhook = %w.id, seq = record.seq, attempt = d.attempts, error = d.last_error.as_deref().unwrap_or(""), retry_in_ms = wait.as_millis() as u64, "webhook delivery failed; will retry");
                        self.engine.save_delivery(&d).await?;
                        let failing_for = now - w.failing_since.map_or(now, |t| t.millis());
                        if failing_for >= self.config.disable_after.as_millis() as i64 {
                            w.state = WebhookState::Disabled;
                            w.disabled_reason = Some(format!(
                                "every delivery failed for {} hours",
                                failing_for / 3_600_000
                            ));
                            tracing::warn!(webhook = %w.id, tenant = %w.tenant, "webhook disabled after failing for too long");
                        }
                        break 'pages;
                    }
                    None => {
                        d.state = DeliveryState::Failed;
                        d.next_attempt_at = None;
                        w.position = record.seq;
                        metrics::counter!(DELIVERIES, "result" => "dead").increment(1);
                        tracing::warn!(webhook = %w.id, seq = record.seq, attempts = d.attempts, "webhook delivery dead-lettered after its last attempt");
                        self.engine.save_delivery(&d).await?;
                    }
                }
            }
            if !full {
                break;
            }
        }
        // Saved only when something changed: a subscription waiting for a retry writes nothing.
        if w != before {
            self.engine.save_webhook(&w).await?;
        }
        Ok(())
    }

    /// One pass over every active subscription, [`CONCURRENT_SUBSCRIPTIONS`] at a time: a
    /// slow or unreachable receiver holds up its own subscription, not the others.
    pub async fn pass(&self, stop: &CancellationToken) -> Result<()> {
        use futures_util::StreamExt;
        let active: Vec<Webhook> = self
            .engine
            .all_webhooks()
            .await?
            .into_iter()
            .filter(|w| w.state == WebhookState::Active)
            .collect();
        futures_util::stream::iter(active)
            .for_each_concurrent(CONCURRENT_SUBSCRIPTIONS, |w| async move {
                if stop.is_cancelled() {
                    return;
                }
                let id = w.id.clone();
                if let Err(e) = self.tend(w, stop).await {
                    tracing::warn!(webhook = %id, error = %e, "webhook delivery pass failed");
                }
            })
            .await;
        Ok(())
    }

    /// Runs until `stop` is cancelled: a pass after every write of this process's engine, and
    /// at least every [`DeliveryConfig::poll`] (other processes' writes, retries due). Stops
    /// between two attempts.
    pub async fn run(&self, stop: CancellationToken) -> std::result::Result<(), String> {
        let mut written = self.engine.written();
        while !stop.is_cancelled() {
            self.pass(&stop).await.map_err(|e| e.to_string())?;
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = written.changed() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
        Ok(())
    }

    /// Sends a dead-lettered (or any) delivery again now, out of order, and records the
    /// result (a success marks it delivered).
    pub async fn retry(&self, w: &Webhook, mut d: Delivery) -> Result<Delivery> {
        let record = self
            .engine
            .events(&w.tenant, d.seq.saturating_sub(1), 1)
            .await?
            .into_iter()
            .find(|r| r.seq == d.seq)
            .ok_or_else(|| {
                Error::Gone(format!(
                    "event {} is no longer in the log (compacted or forgotten)",
                    d.seq
                ))
            })?;
        let outcome = self.attempt(w, &record).await;
        self.engine
            .count_usage(&w.tenant, |c| c.webhook_deliveries += 1);
        d.attempts += 1;
        d.last_status = outcome.status;
        d.last_error = outcome.error.clone();
        d.updated_at = Timestamp(now_ms());
        if outcome.delivered() {
            d.state = DeliveryState::Delivered;
            d.next_attempt_at = None;
        }
        self.engine.save_delivery(&d).await?;
        Ok(d)
    }
}

/// A transport error in words, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "the receiver did not answer in time"
    } else if e.is_connect() {
        "could not connect to the receiver"
    } else if e.is_redirect() {
        "the receiver redirected (redirects are not followed)"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}
