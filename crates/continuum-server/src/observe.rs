//! What the server tells its operator: a request id and one log line per request, HTTP
//! metrics, and the `/metrics` exposition.
//!
//! The request id comes from the client's `x-request-id` when it is sane (1 to
//! [`MAX_REQUEST_ID`] characters of letters, digits and `-_.:`), and is generated otherwise;
//! it is returned in the response's `x-request-id` and carried by every log line written
//! while the request is handled. The request's line names the method, the route template
//! (never the raw path, which may carry ids), the status, the latency and the tenant; never a
//! key, a query string or a body.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The longest request id accepted from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// The request's tenant, filled in by the key check for the request's log line.
#[derive(Clone, Default)]
pub(crate) struct RequestTenant(pub Arc<OnceLock<String>>);

fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= MAX_REQUEST_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_string())
}

/// Whether requests are also counted per tenant.
#[derive(Clone, Copy)]
pub(crate) struct PerTenant(pub bool);

/// Requests per tenant, when the operator turns it on.
pub const TENANT_REQUESTS: &str = "continuum_tenant_http_requests_total";

/// Middleware around every route: request id, span, log line, metrics.
pub(crate) async fn observe(
    State(per_tenant): State<PerTenant>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(sane_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let tenant = RequestTenant::default();
    req.extensions_mut().insert(tenant.clone());
    // The request id travels with every line logged while the request is handled. For a
    // trace exporter the span is also named by method and route (`otel.name`) and carries the
    // HTTP semantic conventions' attributes; they are recorded only then, since the log
    // layer would format them for every request otherwise.
    let span = tracing::info_span!(
        "http.request",
        request_id = %id,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.request.method = tracing::field::Empty,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let traced = continuum_ops::logging::traces_on();
    if traced {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
        span.record("http.request.method", method.as_str());
        span.record("http.route", route.as_str());
    }
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if traced {
        span.record("http.response.status_code", status);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let tenant = tenant.0.get().map(String::as_str).unwrap_or("-");
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    span.in_scope(|| {
        let request_id = id.as_str();
        if status >= 500 {
            tracing::warn!(
                request_id, method, route, status, latency_ms, tenant, "request"
            );
        } else {
            tracing::info!(
                request_id, method, route, status, latency_ms, tenant, "request"
            );
        }
    });
    record(&method, &route, status, elapsed);
    if per_tenant.0 && tenant != "-" {
        metrics::counter!(TENANT_REQUESTS, "tenant" => tenant.to_string()).increment(1);
    }
    response
}

fn record(method: &str, route: &str, status: u16, elapsed: Duration) {
    if !continuum_ops::metrics::enabled() {
        return;
    }
    use continuum_ops::metrics::{HTTP_DURATION, HTTP_REQUESTS};
    // Static label values where the set is known: no allocation per request for them.
    let method: &'static str = match method {
        "GET" => "GET",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let status = match static_code(status) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(status.to_string()),
    };
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.to_string(),
        "status" => status)
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.to_string())
        .record(elapsed.as_secs_f64());
}

/// The status codes the server usually answers, as static label values.
fn static_code(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        410 => "410",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => return None,
    })
}

/// The embedding backlog, counted over every tenant at scrape time, is kept this long (a scrape
/// every few seconds must not count every tenant's backlog each time).
const ENGINE_FIGURES_TTL: Duration = Duration::from_secs(15);

#[derive(Default)]
pub(crate) struct ScrapeCache {
    at: std::sync::Mutex<Option<Instant>>,
}

/// The Prometheus exposition text, with the engine's figures refreshed when stale.
pub(crate) async fn exposition(state: &AppState) -> Response {
    let stale = {
        let mut at = state.scrape.at.lock().unwrap_or_else(|p| p.into_inner());
        let stale = at.is_none_or(|t| t.elapsed() >= ENGINE_FIGURES_TTL);
        if stale {
            *at = Some(Instant::now());
        }
        stale
    };
    use continuum_ops::metrics::{EMBED_BACKLOG, EVENT_HEAD, KEYS_DUE};
    // One indexed read: fresh at every scrape.
    match state.engine.event_head().await {
        Ok(head) => metrics::gauge!(EVENT_HEAD).set(head as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: reading the event head failed"),
    }
    if stale {
        match state.engine.embedding_backlog().await {
            Ok(n) => metrics::gauge!(EMBED_BACKLOG).set(n as f64),
            Err(e) => tracing::warn!(error = %e, "metrics: reading the embedding backlog failed"),
        }
        let now = continuum_core::Clock::now(&continuum_core::SystemClock);
        match state.engine.list_keys(None).await {
            Ok(keys) => metrics::gauge!(KEYS_DUE)
                .set(keys.iter().filter(|k| k.due_for_rotation(now)).count() as f64),
            Err(e) => tracing::warn!(error = %e, "metrics: reading the keys failed"),
        }
    }
    match continuum_ops::metrics::render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => crate::ApiError::Http {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "metrics are off in this process".into(),
        }
        .into_response(),
    }
}

/// `GET /metrics` on a listener of its own: no key, as scrapers expect.
pub(crate) async fn open_metrics(State(state): State<Arc<AppState>>) -> Response {
    exposition(&state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_taken_from_the_client() {
        let ok = HeaderValue::from_static("req-42_a.b:c");
        assert_eq!(sane_id(&ok).as_deref(), Some("req-42_a.b:c"));
        for bad in ["", "has space", "semi;colon", "new\u{7f}line"] {
            if let Ok(v) = HeaderValue::from_str(bad) {
                assert_eq!(sane_id(&v), None, "{bad:?}");
            }
        }
        let long = HeaderValue::from_str(&"x".repeat(MAX_REQUEST_ID + 1)).unwrap();
        assert_eq!(sane_id(&long), None);
    }
}
