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
    status: &'static str,
}

pub(super) async fn ready(State(s): St) -> AppResult<Json<Status>> {
    let problems = s.engine.check().await?;
    if problems.is_empty() {
        Ok(Json(Status { status: "ready" }))
    } else {
        Err(Error::Unavailable(problems.join("; ")).into())
    }
}

/// The OpenAPI document of this API, built once.
pub(super) async fn openapi(State(s): St) -> Json<Value> {
    Json(s.openapi.clone())
}
