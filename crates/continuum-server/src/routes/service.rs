//! Liveness, readiness and the OpenAPI document.

use super::*;

#[derive(Serialize, JsonSchema)]
pub(super) struct Health {
    /// Always `healthy` when the process answers.
    status: &'static str,
    service: &'static str,
    version: &'static str,
    /// The server's clock, ISO 8601 UTC.
    timestamp: String,
}

pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "continuum",
        version: env!("CARGO_PKG_VERSION"),
        timestamp: continuum_core::Clock::now(&continuum_core::SystemClock).to_rfc3339(),
    })
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Root {
    service: &'static str,
    version: &'static str,
    /// The main endpoints, by name.
    endpoints: std::collections::BTreeMap<&'static str, &'static str>,
}

/// `GET /`: what this server is and where its main endpoints are.
pub(super) async fn root() -> Json<Root> {
    let endpoints = [
        ("health", "/v1/health"),
        ("ready", "/v1/ready"),
        ("recall", "/v1/recall"),
        ("learn", "/v1/learn"),
        ("turn", "/v1/turn"),
        ("stats", "/v1/stats"),
        ("entities", "/v1/entities"),
        ("messages", "/v1/messages"),
        ("search", "/v1/search"),
        ("memories", "/v1/memories"),
        ("events", "/v1/events"),
        ("keys", "/v1/keys"),
        ("tenants", "/v1/tenants"),
        ("mcp", "/mcp"),
        ("openapi", "/v1/openapi.json"),
        ("docs", "/docs"),
        ("dashboard", "/dashboard"),
    ]
    .into_iter()
    .collect();
    Json(Root {
        service: "CONTINUUM",
        version: env!("CARGO_PKG_VERSION"),
        endpoints,
    })
}

/// `GET /docs`: the OpenAPI document rendered for people by a page and script this binary
/// serves itself (nothing is fetched from elsewhere).
pub(super) async fn docs() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        include_str!("docs.html"),
    )
        .into_response()
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Status {
    /// `ready`, or `degraded` while a background job waits to restart after a failure.
    status: &'static str,
    /// The background jobs of the process and their states.
    jobs: Vec<Job>,
}

/// A background job as readiness shows it.
#[derive(Serialize, JsonSchema)]
pub(super) struct Job {
    name: String,
    /// running, backoff, finished or stopped.
    state: &'static str,
    restarts: u64,
    failures: u64,
    last_error: Option<String>,
}

pub(super) async fn ready(State(s): St) -> AppResult<Json<Status>> {
    // One cheap read proves the store answers; the full integrity check (which holds the
    // write lock while it reads everything) is `continuum doctor`'s, not a probe's.
    s.engine.event_head().await?;
    let jobs: Vec<Job> = s
        .config
        .jobs
        .as_ref()
        .map(|sup| sup.statuses())
        .unwrap_or_default()
        .into_iter()
        .map(|j| Job {
            name: j.name,
            state: j.state.as_str(),
            restarts: j.restarts,
            failures: j.failures,
            last_error: j.last_error,
        })
        .collect();
    let degraded = jobs.iter().any(|j| j.state == "backoff");
    Ok(Json(Status {
        status: if degraded { "degraded" } else { "ready" },
        jobs,
    }))
}

/// The OpenAPI document of this API, built once.
pub(super) async fn openapi(State(s): St) -> Json<Value> {
    Json(s.openapi.clone())
}

#[derive(Serialize, JsonSchema)]
pub(super) struct WhoAmI {
    tenant: String,
    /// `read`, `write`, `admin` or `operator`.
    scope: String,
    /// The key's public prefix.
    key: Option<String>,
}

/// `GET /v1/whoami`: what the presented key is (what a client such as the dashboard offers
/// depends on it).
pub(super) async fn whoami(auth: Auth) -> AppResult<Json<WhoAmI>> {
    let c = &auth.caller;
    c.require(Scope::Read)?;
    Ok(Json(WhoAmI {
        tenant: c.tenant.as_str().to_string(),
        scope: c.scope.as_str().to_string(),
        key: c.key.clone(),
    }))
}
