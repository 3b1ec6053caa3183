//! `GET /v1/ws` (WebSocket) and `GET /v1/events/stream` (Server-Sent Events): the key's
//! tenant's events as they are written, after a replay from a position.
//!
//! Each stream reads the event log itself, from its own position, a page at a time: it never
//! holds more than a page, a slow client only slows its own reads, and resuming from the last
//! position seen misses nothing and repeats nothing (positions are the log's, gap-free and in
//! commit order). Between reads a stream waits for this process's writes (announced by the
//! engine at once) or polls, for other processes' writes to the same store. A heartbeat every
//! [`HEARTBEAT`] carries the position reached (which moves past events a type filter skipped)
//! and re-checks the key, so a revoked key's streams end within one heartbeat.
//!
//! WebSocket messages are JSON text frames: each event as `GET /v1/events` lists it, and
//! control messages whose `type` starts with `stream.`: `stream.ready` (the start position and
//! the log's head), `stream.heartbeat`, `stream.error` (then the server closes). The key comes
//! in `X-API-Key` / `Authorization`, or, for browsers (which cannot set headers on a
//! WebSocket), in a first message `{"type": "auth", "key": "…"}`; never in the URL.

use super::*;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use continuum_core::EventRecord;
use continuum_core::event::{Event, parse_position};
use continuum_engine::Engine;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How often an idle stream looks for events written by other processes.
const POLL: Duration = Duration::from_secs(1);
/// Events read from the log at a time.
const PAGE: usize = 500;
/// A client that has not taken a message for this long is too slow: it is closed, and
/// resumes from its last position.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a WebSocket client without a key header has to send its `auth` message.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message a client may send (its `auth` message).
const MAX_CLIENT_MESSAGE: usize = 4096;
/// Open streams per key, and in all.
pub(crate) const MAX_STREAMS_PER_KEY: usize = 64;
pub(crate) const MAX_STREAMS: usize = 4096;
/// The longest `types` filter, in bytes (as the OpenAPI document says).
const MAX_TYPES_BYTES: usize = 512;

/// Cancelled when the server begins to shut down: streams then end, so that the connections
/// they hold can close. Put into every request's extensions by [`crate::serve`].
#[derive(Clone)]
pub(crate) struct Stopping(pub(crate) continuum_ops::CancellationToken);

/// Open streams, by key prefix.
#[derive(Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream's place in [`Streams`], given back when dropped.
pub(crate) struct StreamSlot {
    state: Arc<AppState>,
    prefix: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .state
            .streams
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.prefix) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.prefix);
            }
        }
    }
}

fn open_slot(state: &Arc<AppState>, prefix: &str) -> Result<StreamSlot, ApiError> {
    let mut open = state.streams.open.lock().unwrap_or_else(|p| p.into_inner());
    let total: usize = open.values().sum();
    let mine = open.get(prefix).copied().unwrap_or(0);
    if total >= MAX_STREAMS || mine >= MAX_STREAMS_PER_KEY {
        return Err(ApiError::Http {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_streams",
            message: if mine >= MAX_STREAMS_PER_KEY {
                format!("this key already has {MAX_STREAMS_PER_KEY} open streams (the limit)")
            } else {
                format!("the server has {MAX_STREAMS} open streams (the limit)")
            },
        });
    }
    *open.entry(prefix.to_string()).or_insert(0) += 1;
    Ok(StreamSlot {
        state: state.clone(),
        prefix: prefix.to_string(),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    /// Replay the events after this position, then follow live. Absent: from now. For
    /// Server-Sent Events, a `Last-Event-ID` header (sent by browsers when they reconnect)
    /// takes precedence.
    #[schemars(regex(pattern = r"^[0-9]{1,18}$"))]
    since: Option<String>,
    /// Only events of these types, comma-separated (for example
    /// `memory.created,memory.forgotten`). Absent: every type.
    #[schemars(length(min = 1, max = 512), regex(pattern = TYPES_PATTERN))]
    types: Option<String>,
}

/// What a `types` filter looks like (every event type, comma-separated), for the OpenAPI
/// document; the test below keeps it in step with [`Event::TYPES`].
/// One event type (a webhook subscription's `events` items).
pub(super) const ONE_TYPE_PATTERN: &str = r"^(memory\.(created|superseded|updated|forgotten)|session\.forgotten|concept\.created|links\.strengthened|concepts\.changed|decision\.created|key\.(created|revoked|rotated|expired)|tenant\.(created|erased)|intention\.saved|belief\.saved|contradiction\.saved|claim\.saved|snapshot\.saved)$";

const TYPES_PATTERN: &str = r"^(memory\.(created|superseded|updated|forgotten)|session\.forgotten|concept\.created|links\.strengthened|concepts\.changed|decision\.created|key\.(created|revoked|rotated|expired)|tenant\.(created|erased)|intention\.saved|belief\.saved|contradiction\.saved|claim\.saved|snapshot\.saved)(,(memory\.(created|superseded|updated|forgotten)|session\.forgotten|concept\.created|links\.strengthened|concepts\.changed|decision\.created|key\.(created|revoked|rotated|expired)|tenant\.(created|erased)|intention\.saved|belief\.saved|contradiction\.saved|claim\.saved|snapshot\.saved))*$";

/// The event types a `types` filter names, checked.
fn parse_types(text: Option<&str>) -> Result<Option<Vec<&'static str>>, Error> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.len() > MAX_TYPES_BYTES {
        return Err(Error::InvalidInput(format!(
            "types: at most {MAX_TYPES_BYTES} bytes"
        )));
    }
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Some(known) = Event::TYPES.iter().find(|t| **t == name) else {
            return Err(Error::InvalidInput(format!(
                "types: {:?} is not an event type (known: {})",
                name.chars().take(64).collect::<String>(),
                Event::TYPES.join(", ")
            )));
        };
        if !out.contains(known) {
            out.push(*known);
        }
    }
    Ok(Some(out))
}

/// What a stream produces next.
enum Step {
    Events(Vec<EventRecord>),
    Heartbeat { head: u64 },
}

/// A tenant's events from a position on: replay, then live.
struct Follow {
    engine: Engine,
    /// The presented key, re-checked at each heartbeat (a revoked key ends the stream).
    key: String,
    caller: Caller,
    position: u64,
    types: Option<Vec<&'static str>>,
    written: tokio::sync::watch::Receiver<u64>,
    heartbeat: Duration,
    next_heartbeat: Instant,
}

impl Follow {
    /// Authenticates `key` (read scope) and starts at `since`, or at the log's head. An
    /// unknown, revoked or expired key, a position before the compaction point: an error.
    async fn start(
        state: &AppState,
        source: Option<auth::ClientAddr>,
        key: String,
        since: Option<u64>,
        types: Option<Vec<&'static str>>,
    ) -> Result<(Follow, ApiKey), ApiError> {
        let engine = state.engine.clone();
        let stored = auth::check_key(state, source, &key).await?;
        state
            .limiter
            .take(
                &stored.prefix,
                state.config.rate_per_second,
                state.config.rate_burst,
            )
            .map_err(ApiError::RateLimited)?;
        let caller = Caller::of_key(&stored);
        caller.require(Scope::Read)?;
        let written = engine.written();
        let position = match since {
            Some(p) => {
                // Refuses a position already compacted away now, not after the upgrade.
                engine.events(&caller, p, 1).await?;
                p
            }
            None => engine.event_head().await?,
        };
        Ok((
            Follow {
                engine,
                key,
                caller,
                position,
                types,
                written,
                heartbeat: state.config.stream_heartbeat,
                next_heartbeat: Instant::now() + state.config.stream_heartbeat,
            },
            stored,
        ))
    }

    /// The next events (those the filter keeps), or a heartbeat when none came for a while.
    /// Cancel-safe: the position moves only when a read has returned.
    async fn next(&mut self) -> Result<Step, Error> {
        loop {
            let page = self
                .engine
                .events(&self.caller, self.position, PAGE)
                .await?;
            if let Some(last) = page.last() {
                self.position = last.seq;
                let kept: Vec<EventRecord> = match &self.types {
                    None => page,
                    Some(types) => page
                        .into_iter()
                        .filter(|r| types.contains(&r.event.kind()))
                        .collect(),
                };
                if !kept.is_empty() {
                    return Ok(Step::Events(kept));
                }
                continue;
            }
            if Instant::now() >= self.next_heartbeat {
                self.next_heartbeat = Instant::now() + self.heartbeat;
                self.engine.authenticate(&self.key).await?;
                let head = self.engine.event_head().await?;
                return Ok(Step::Heartbeat { head });
            }
            let wake = tokio::time::Instant::now() + POLL;
            tokio::select! {
                changed = self.written.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(wake).await;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
                _ = tokio::time::sleep_until(self.next_heartbeat) => {}
            }
        }
    }
}

/// A `stream.*` control message.
fn control(kind: &str, fields: Value) -> String {
    let mut v = json_object(fields);
    v.insert("type".into(), Value::String(format!("stream.{kind}")));
    Value::Object(v).to_string()
}

fn json_object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The fields of a `stream.error`: the status, code and message an HTTP request would have
/// been answered with, and the position to resume from, when there is one.
fn error_fields(e: ApiError, position: Option<u64>) -> Value {
    let (status, code, message, _) = e.parts();
    let mut v = serde_json::json!({"status": status.as_u16(), "code": code, "message": message});
    if let Some(p) = position {
        v["position"] = p.into();
    }
    v
}

/// The key of a request, if it presents one (a malformed one is an error).
fn header_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    if headers.get("x-api-key").is_none() && headers.get(header::AUTHORIZATION).is_none() {
        return Ok(None);
    }
    auth::presented_key(headers).map(Some)
}

/// The events after the `since` query parameter (or the `Last-Event-ID` header, which wins).
fn start_position(
    q: &StreamQuery,
    headers: Option<&axum::http::HeaderMap>,
) -> Result<Option<u64>, Error> {
    if let Some(last) = headers.and_then(|h| h.get("last-event-id")) {
        let text = last
            .to_str()
            .map_err(|_| Error::InvalidInput("Last-Event-ID is not a position".into()))?;
        return parse_position(text.trim()).map(Some);
    }
    q.since.as_deref().map(parse_position).transpose()
}

pub(super) async fn ws(
    State(s): St,
    stopping: Option<axum::Extension<Stopping>>,
    logged: Option<axum::Extension<crate::observe::RequestTenant>>,
    source: Option<axum::Extension<auth::ClientAddr>>,
    headers: axum::http::HeaderMap,
    Q(q): Q<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> AppResult<Response> {
    let source = auth::client_addr(&s, source.as_ref().map(|e| &e.0), &headers);
    let since = start_position(&q, None)?;
    let types = parse_types(q.types.as_deref())?;
    let key = header_key(&headers)?;
    // A key in a header is checked before the upgrade: a bad one never gets a WebSocket.
    let started = match &key {
        Some(k) => {
            let (follow, stored) =
                Follow::start(&s, source, k.clone(), since, types.clone()).await?;
            if let Some(l) = &logged {
                let _ = l.0.0.set(stored.tenant.as_str().to_string());
            }
            let slot = open_slot(&s, &stored.prefix)?;
            Some((follow, slot))
        }
        None => None,
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(_) if key.is_none() => {
            return Err(Error::Unauthorized(
                "missing API key (send it in X-API-Key or Authorization: Bearer)".into(),
            )
            .into());
        }
        Err(e) => {
            return Err(ApiError::Http {
                status: StatusCode::UPGRADE_REQUIRED,
                code: "upgrade_required",
                message: format!("this endpoint is a WebSocket: {e}"),
            });
        }
    };
    let stopping = stopping.map(|e| e.0.0.clone()).unwrap_or_default();
    let state = s.clone();
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let mut socket = socket;
            let (follow, _slot) = match started {
                Some(s) => s,
                None => match authenticate_in_band(&mut socket, &state, source, since, types).await
                {
                    Some(s) => s,
                    None => return,
                },
            };
            follow_over_ws(socket, follow, stopping).await;
        }))
}

/// Reads the `auth` message of a client that sent no key header; on failure tells it why
/// and closes.
async fn authenticate_in_band(
    socket: &mut WebSocket,
    state: &Arc<AppState>,
    source: Option<auth::ClientAddr>,
    since: Option<u64>,
    types: Option<Vec<&'static str>>,
) -> Option<(Follow, StreamSlot)> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AuthMessage {
        #[serde(rename = "type")]
        kind: String,
        key: String,
    }
    let refused = |message: String| Error::Unauthorized(message);
    let outcome = match tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await {
        Err(_) => Err(refused(format!(
            "no key: send X-API-Key or Authorization with the upgrade, or {{\"type\": \"auth\", \"key\": \"…\"}} within {} s",
            AUTH_TIMEOUT.as_secs()
        ))),
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<AuthMessage>(&text) {
            Ok(m) if m.kind == "auth" => Ok(m.key),
            _ => Err(refused(
                "the first message must be {\"type\": \"auth\", \"key\": \"…\"}".into(),
            )),
        },
        Ok(_) => return None,
    };
    let started = match outcome {
        Ok(key) => match Follow::start(state, source, key, since, types).await {
            Ok((follow, stored)) => open_slot(state, &stored.prefix).map(|slot| (follow, slot)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e.into()),
    };
    match started {
        Ok(s) => Some(s),
        Err(e) => {
            let text = control("error", error_fields(e, None));
            let _ =
                tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await;
            close(socket, 1008, "refused").await;
            None
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.send(frame)).await;
}

/// Sends a page of events, one message each, flushed once; false if the client is gone or
/// took longer than [`SEND_TIMEOUT`] over it.
async fn send_all(socket: &mut WebSocket, events: &[EventRecord]) -> bool {
    use futures_util::SinkExt;
    let all = async {
        for e in events {
            let text = serde_json::to_string(e).unwrap_or_default();
            socket.feed(Message::Text(text.into())).await?;
        }
        socket.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, all).await, Ok(Ok(())))
}

/// Sends `text`; false if the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn follow_over_ws(
    mut socket: WebSocket,
    mut follow: Follow,
    stopping: continuum_ops::CancellationToken,
) {
    let head = follow.engine.event_head().await.unwrap_or(follow.position);
    let ready = control(
        "ready",
        serde_json::json!({"tenant": follow.caller.tenant.as_str(), "position": follow.position, "head": head}),
    );
    if !send(&mut socket, ready).await {
        return;
    }
    loop {
        let step = tokio::select! {
            _ = stopping.cancelled() => {
                let bye = control("error", serde_json::json!({"status": 503, "code": "shutting_down", "message": "the server is shutting down; resume from this position", "position": follow.position}));
                let _ = send(&mut socket, bye).await;
                close(&mut socket, 1001, "shutting down").await;
                return;
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the WebSocket layer; other messages are ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            step = follow.next() => step,
        };
        match step {
            Ok(Step::Events(events)) => {
                if !send_all(&mut socket, &events).await {
                    tracing::info!(
                        position = follow.position,
                        "a stream client was too slow or left; closed"
                    );
                    close(
                        &mut socket,
                        4408,
                        "too slow; resume from your last position",
                    )
                    .await;
                    return;
                }
            }
            Ok(Step::Heartbeat { head }) => {
                let beat = control(
                    "heartbeat",
                    serde_json::json!({"position": follow.position, "head": head}),
                );
                if !send(&mut socket, beat).await {
                    return;
                }
            }
            Err(e) => {
                let code = match e {
                    Error::Unauthorized(_) | Error::Forbidden(_) => 1008,
                    Error::Gone(_) => 4410,
                    _ => 1011,
                };
                let fields = error_fields(e.into(), Some(follow.position));
                let _ = send(&mut socket, control("error", fields)).await;
                close(&mut socket, code, "stream ended").await;
                return;
            }
        }
    }
}

pub(super) async fn sse(
    State(s): St,
    stopping: Option<axum::Extension<Stopping>>,
    logged: Option<axum::Extension<crate::observe::RequestTenant>>,
    source: Option<axum::Extension<auth::ClientAddr>>,
    headers: axum::http::HeaderMap,
    Q(q): Q<StreamQuery>,
) -> AppResult<Response> {
    let source = auth::client_addr(&s, source.as_ref().map(|e| &e.0), &headers);
    let since = start_position(&q, Some(&headers))?;
    let types = parse_types(q.types.as_deref())?;
    let key = auth::presented_key(&headers)?;
    let (follow, stored) = Follow::start(&s, source, key, since, types).await?;
    if let Some(l) = &logged {
        let _ = l.0.0.set(stored.tenant.as_str().to_string());
    }
    let slot = open_slot(&s, &stored.prefix)?;
    let stopping = stopping.map(|e| e.0.0.clone()).unwrap_or_default();
    struct Sse_ {
        follow: Follow,
        pending: VecDeque<SseEvent>,
        done: bool,
        stopping: continuum_ops::CancellationToken,
        _slot: StreamSlot,
    }
    let first = SseEvent::default().event("stream.ready").data(
        serde_json::json!({"tenant": follow.caller.tenant.as_str(), "position": follow.position})
            .to_string(),
    );
    let state = Sse_ {
        follow,
        pending: VecDeque::from([first]),
        done: false,
        stopping,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), st));
            }
            if st.done {
                return None;
            }
            let step = tokio::select! {
                _ = st.stopping.cancelled() => {
                    let bye = serde_json::json!({"status": 503, "code": "shutting_down", "message": "the server is shutting down; resume from this position", "position": st.follow.position});
                    st.pending.push_back(SseEvent::default().event("stream.error").data(bye.to_string()));
                    st.done = true;
                    continue;
                }
                step = st.follow.next() => step,
            };
            match step {
                Ok(Step::Events(events)) => {
                    for r in events {
                        let data = serde_json::to_string(&r).unwrap_or_default();
                        st.pending.push_back(
                            SseEvent::default()
                                .id(r.seq.to_string())
                                .event(r.event.kind())
                                .data(data),
                        );
                    }
                }
                Ok(Step::Heartbeat { head }) => {
                    // The id moves a reconnecting browser past events the filter skipped.
                    st.pending.push_back(
                        SseEvent::default()
                            .id(st.follow.position.to_string())
                            .event("stream.heartbeat")
                            .data(
                                serde_json::json!({"position": st.follow.position, "head": head})
                                    .to_string(),
                            ),
                    );
                }
                Err(e) => {
                    st.pending.push_back(
                        SseEvent::default()
                            .event("stream.error")
                            .data(error_fields(e.into(), Some(st.follow.position)).to_string()),
                    );
                    st.done = true;
                }
            }
        }
    });
    let mut response = Sse::new(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_types_pattern_names_exactly_the_event_types() {
        // One alternative group, repeated after the comma: expand it and compare.
        let inner = TYPES_PATTERN
            .strip_prefix("^(")
            .and_then(|p| p.split_once(")(,("))
            .map(|(a, _)| a)
            .unwrap();
        let mut names = Vec::new();
        for alt in split_top(inner) {
            match alt.split_once(r"\.(") {
                Some((family, rest)) => {
                    for leaf in rest.trim_end_matches(')').split('|') {
                        names.push(format!("{family}.{leaf}"));
                    }
                }
                None => names.push(alt.replace(r"\.", ".")),
            }
        }
        let mut known: Vec<String> = Event::TYPES.iter().map(|t| t.to_string()).collect();
        names.sort();
        known.sort();
        assert_eq!(names, known);
        assert_eq!(
            parse_types(Some("memory.created, memory.forgotten")).unwrap(),
            Some(vec!["memory.created", "memory.forgotten"])
        );
        assert!(parse_types(Some("memory.created,")).is_err());
        // The one-type pattern is the same alternatives.
        assert_eq!(
            ONE_TYPE_PATTERN.trim_end_matches(")$"),
            format!("^({inner}")
        );
    }

    /// Splits on the `|` that are outside parentheses.
    fn split_top(s: &str) -> Vec<String> {
        let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
        for c in s.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '|' if depth == 0 => {
                    out.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        out.push(cur);
        out
    }
}
