//! Liveness, readiness and the OpenAPI document.

use super::*;

#[derive(Serialize, JsonSchema)]
pub(super) struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        service: "continuum",
        version: env!("CARGO_PKG_VERSION"),
    })
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
    let problems = s.engine.check().await?;
    if !problems.is_empty() {
        return Err(Error::Unavailable(problems.join("; ")).into());
    }
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
