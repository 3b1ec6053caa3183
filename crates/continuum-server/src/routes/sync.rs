//! `/v1/sync`: another Continuum node pulls this node's events for its key's tenant and
//! pushes its own (see `continuum_core::sync` for the merge rules).

use super::*;
use continuum_core::sync::{PullPage, PushReceipt, PushRequest};

#[derive(Deserialize, JsonSchema)]
pub(super) struct PullQuery {
    /// Events after this position of this node's log (0, the default: from the start).
    #[schemars(regex(pattern = r"^[0-9]{1,18}$"))]
    since: Option<String>,
    /// At most this many events (1 to 1000, default 500); a page may hold a few more when the
    /// events after the last share its origin position (they are never split).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
    /// Leave out the events first written by this node (the puller's own).
    #[schemars(regex(pattern = r"^[a-z0-9-]{1,64}$"))]
    exclude_origin: Option<String>,
}

pub(super) async fn sync_pull(
    State(s): St,
    auth: Auth,
    Q(q): Q<PullQuery>,
) -> AppResult<Json<PullPage>> {
    let since = match q.since.as_deref() {
        Some(text) => continuum_core::event::parse_position(text)?,
        None => 0,
    };
    let page = s
        .engine
        .sync_pull(
            &auth.caller,
            since,
            q.limit.unwrap_or(500),
            q.exclude_origin.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

pub(super) async fn sync_push(
    State(s): St,
    auth: Auth,
    Body(req): Body<PushRequest>,
) -> AppResult<Json<PushReceipt>> {
    Ok(Json(s.engine.sync_push(&auth.caller, req).await?))
}
