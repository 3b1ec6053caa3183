//! `/v1/events`: the tenant's event log.

use super::*;

#[derive(Deserialize, JsonSchema)]
pub(super) struct EventsQuery {
    /// Events after this position (0, the default: from the start). A position past the end
    /// gives an empty page.
    #[schemars(regex(pattern = r"^[0-9]{1,18}$"))]
    since: Option<String>,
    /// At most this many events (1 to 1000, default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct EventsOut {
    events: Vec<continuum_core::EventRecord>,
    /// The position to ask from next (`?since=`): the last event's, or the one asked from.
    next_since: u64,
}

pub(super) async fn events_list(
    State(s): St,
    auth: Auth,
    Q(q): Q<EventsQuery>,
) -> AppResult<Json<EventsOut>> {
    let since = match q.since.as_deref() {
        Some(text) => continuum_core::event::parse_position(text)?,
        None => 0,
    };
    let events = s
        .engine
        .events(&auth.caller, since, q.limit.unwrap_or(100))
        .await?;
    let next_since = events.last().map_or(since, |e| e.seq);
    Ok(Json(EventsOut { events, next_since }))
}
