//! The event streams over real connections: a WebSocket client (tokio-tungstenite) and a
//! Server-Sent Events client reading the raw HTTP response, against a server on port 0.

mod common;

use common::{Server, start};
use continuum_core::keys::Scope;
use continuum_core::store::ForgetSelector;
use continuum_core::{Source, TenantId};
use continuum_engine::RememberRequest;
use continuum_server::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAIT: Duration = Duration::from_secs(20);

fn ws_url(s: &Server, query: &str) -> String {
    format!("{}/v1/ws{query}", s.base.replacen("http://", "ws://", 1))
}

async fn connect(
    s: &Server,
    key: Option<&str>,
    query: &str,
) -> Result<Ws, Box<dyn std::error::Error>> {
    let mut req = ws_url(s, query).into_client_request()?;
    if let Some(k) = key {
        req.headers_mut().insert("x-api-key", k.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// The next JSON text message (pings and pongs skipped); `None` once the server closed.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message within the wait")?;
        match msg {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The next `n` events (control messages other than heartbeats are unexpected).
async fn events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = next_json(ws).await.expect("the stream ended early");
        let kind = m["type"].as_str().unwrap().to_string();
        if kind == "stream.heartbeat" {
            continue;
        }
        assert!(!kind.starts_with("stream."), "unexpected {m}");
        out.push(m);
    }
    out
}

/// Events up to and including the first that `last` accepts.
async fn events_until(ws: &mut Ws, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let e = events(ws, 1).await.remove(0);
        let done = last(&e);
        out.push(e);
        if done {
            return out;
        }
    }
}

fn t(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

async fn remember(s: &Server, tenant: &str, text: &str) -> continuum_core::Memory {
    s.engine
        .remember(&t(tenant), RememberRequest::new(text, Source::User))
        .await
        .unwrap()
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_replays_then_follows_one_tenant_in_order_and_resumes_without_gaps() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    s.key("other", Scope::Read).await;
    let first = remember(&s, "acme", "The billing service deploys from Frankfurt.").await;
    remember(&s, "other", "Another tenant's secret plan.").await;

    let mut ws = connect(&s, Some(&key), "?since=0").await.unwrap();
    let ready = next_json(&mut ws).await.unwrap();
    assert_eq!(ready["type"], "stream.ready", "{ready}");
    assert_eq!(ready["tenant"], "acme");
    assert_eq!(ready["position"], 0);
    // The replay: acme's events so far (its key, its memory and concepts), never the other
    // tenant's.
    let replay = events_until(&mut ws, |e| e["type"] == "memory.created").await;
    assert_eq!(replay[0]["type"], "key.created", "{replay:?}");
    assert_eq!(replay.last().unwrap()["memory"]["id"], first.id.to_string());

    // Live: a learn and a forget arrive in order, while the other tenant's writes do not.
    let second = remember(&s, "acme", "Invoices are generated nightly.").await;
    remember(&s, "other", "More of the other tenant.").await;
    s.engine
        .forget(&t("acme"), &ForgetSelector::Ids(vec![first.id]))
        .await
        .unwrap();
    let live = events_until(&mut ws, |e| e["type"] == "memory.forgotten").await;
    let created: Vec<&Value> = live
        .iter()
        .filter(|e| e["type"] == "memory.created")
        .collect();
    assert_eq!(created.len(), 1, "{live:?}");
    assert_eq!(created[0]["memory"]["id"], second.id.to_string());
    let mut seen: Vec<Value> = replay.into_iter().chain(live).collect();
    assert!(seen.iter().all(|e| e["tenant"] == "acme"), "{seen:?}");
    let got = seqs(&seen);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");

    // Disconnect, write while away, resume from the last position: the rest, once each.
    ws.close(None).await.unwrap();
    for i in 0..5 {
        remember(
            &s,
            "acme",
            &format!("Written while the client was away, number {i}."),
        )
        .await;
    }
    let log = s
        .engine
        .events(&t("acme"), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.seq)
        .collect::<Vec<_>>();
    let end = *log.last().unwrap();
    let last = *got.last().unwrap();
    let mut ws = connect(&s, Some(&key), &format!("?since={last}"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["position"], last);
    seen.extend(events_until(&mut ws, |e| e["seq"] == end).await);
    // Exactly the tenant's log, as the paged endpoint lists it: nothing missed or repeated.
    assert_eq!(seqs(&seen), log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_before_the_upgrade_or_in_the_first_message() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;

    // A bad key in a header: refused with 401 before any WebSocket exists.
    let err = connect(&s, Some("ck_live_not_a_real_key"), "")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    // A bad position or type: 400 before the upgrade, too.
    let err = connect(&s, Some(&key), "?types=memory.nonsense")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");

    // Without a header (a browser): the first message carries the key.
    let mut ws = connect(&s, None, "").await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "key": key}).to_string().into(),
    ))
    .await
    .unwrap();
    let ready = next_json(&mut ws).await.unwrap();
    assert_eq!(ready["type"], "stream.ready", "{ready}");
    let m = remember(&s, "acme", "Arrives after an in-band authentication.").await;
    let got = events_until(&mut ws, |e| e["type"] == "memory.created").await;
    assert_eq!(got.last().unwrap()["memory"]["id"], m.id.to_string());

    // A wrong key in the first message: an error message, then the server closes.
    let mut ws = connect(&s, None, "").await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "key": "ck_live_wrong"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let refused = next_json(&mut ws).await.unwrap();
    assert_eq!(refused["type"], "stream.error", "{refused}");
    assert_eq!(refused["code"], "unauthorized");
    assert_eq!(refused["status"], 401);
    assert!(
        next_json(&mut ws).await.is_none(),
        "the server kept the socket open"
    );

    // A plain GET (no upgrade) is told what the endpoint is.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/ws", s.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 426);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upgrade_required", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_filter_keeps_only_the_named_events() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    let mut ws = connect(&s, Some(&key), "?types=memory.forgotten")
        .await
        .unwrap();
    next_json(&mut ws).await.unwrap();
    let a = remember(&s, "acme", "One to keep for a while.").await;
    remember(&s, "acme", "One never forgotten.").await;
    s.engine
        .forget(&t("acme"), &ForgetSelector::Ids(vec![a.id]))
        .await
        .unwrap();
    let got = events(&mut ws, 1).await;
    assert_eq!(got[0]["type"], "memory.forgotten", "{got:?}");
    assert_eq!(got[0]["id"], a.id.to_string(), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_compacted_away_is_refused_with_410() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    remember(&s, "acme", "An early memory.").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = s.engine.compact_events(0).await.unwrap();
    assert!(c.compacted_through > 0, "{c:?}");
    let err = connect(&s, Some(&key), "?since=0").await.unwrap_err();
    assert!(err.to_string().contains("410"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_the_streams_so_the_server_can_stop() {
    let mut s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    let mut ws = connect(&s, Some(&key), "").await.unwrap();
    next_json(&mut ws).await.unwrap();
    let sse = sse_connect(&s, &key, "", None).await;
    tokio::time::timeout(WAIT, s.shut_down())
        .await
        .expect("the server did not stop with streams open");
    let bye = next_json(&mut ws).await.unwrap();
    assert_eq!(bye["type"], "stream.error", "{bye}");
    assert_eq!(bye["code"], "shutting_down");
    assert!(next_json(&mut ws).await.is_none());
    let mut sse = sse;
    let mut last = None;
    while let Some(e) = sse_next(&mut sse).await {
        last = Some(e);
    }
    let (kind, _, data) = last.expect("no event before the end");
    assert_eq!(kind, "stream.error");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["code"],
        "shutting_down"
    );
}

type Sse = tokio::io::Lines<BufReader<tokio::net::TcpStream>>;

/// Opens `GET /v1/events/stream` over a raw connection and reads the response head.
async fn sse_connect(s: &Server, key: &str, query: &str, last_id: Option<u64>) -> Sse {
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let last = last_id
        .map(|i| format!("Last-Event-ID: {i}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /v1/events/stream{query} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n{last}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(tcp).lines();
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.contains(" 200 "), "{status}");
    let mut chunked = false;
    loop {
        let h = lines.next_line().await.unwrap().unwrap();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if lower.starts_with("content-type:") {
            assert!(lower.contains("text/event-stream"), "{h}");
        }
        chunked |= lower == "transfer-encoding: chunked";
    }
    assert!(chunked, "an event stream has no length");
    lines
}

/// The next event as (event, id, data); `None` at the end of the stream. Chunk-size lines of
/// the chunked encoding are skipped (every field line holds a colon; sizes do not).
async fn sse_next(lines: &mut Sse) -> Option<(String, Option<u64>, String)> {
    let (mut kind, mut id, mut data) = (String::new(), None, String::new());
    loop {
        let line = match tokio::time::timeout(WAIT, lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            Ok(_) => return None,
            Err(_) => panic!("no event within the wait"),
        };
        if line.is_empty() {
            if !data.is_empty() {
                return Some((kind, id, data));
            }
            continue;
        }
        if line == "0" {
            return None; // the last chunk
        }
        if let Some(v) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            kind = v.to_string();
        } else if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = v.parse().ok();
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            data.push_str(v);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_carry_ids_and_resume_from_last_event_id() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    s.key("other", Scope::Read).await;
    let mut sse = sse_connect(&s, &key, "?since=0", None).await;
    let (kind, _, data) = sse_next(&mut sse).await.unwrap();
    assert_eq!(kind, "stream.ready", "{data}");
    let (kind, first_id, _) = sse_next(&mut sse).await.unwrap();
    assert_eq!(kind, "key.created");
    remember(&s, "other", "Not for acme.").await;
    let m = remember(&s, "acme", "Streamed to the browser.").await;
    let (kind, id, data) = sse_next(&mut sse).await.unwrap();
    assert_eq!(kind, "memory.created");
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["memory"]["id"], m.id.to_string());
    assert_eq!(v["tenant"], "acme");
    assert_eq!(id, v["seq"].as_u64());
    assert!(id > first_id);
    drop(sse);

    // A browser reconnecting sends Last-Event-ID: the stream goes on after it.
    remember(&s, "acme", "Written during the reconnect.").await;
    let mut sse = sse_connect(&s, &key, "?since=0", first_id).await;
    sse_next(&mut sse).await.unwrap();
    let (_, again, _) = sse_next(&mut sse).await.unwrap();
    assert_eq!(again, id, "resumed after Last-Event-ID, not from ?since");
    let (kind, later, _) = sse_next(&mut sse).await.unwrap();
    assert_eq!(kind, "memory.created");
    assert!(later > id);

    // A bad key: 401 in the error envelope, no stream.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/events/stream", s.base))
        .header("x-api-key", "ck_live_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_streams_at_the_next_heartbeat() {
    let s = start(ServerConfig {
        stream_heartbeat: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let key = s.key("acme", Scope::Read).await;
    let mut ws = connect(&s, Some(&key), "").await.unwrap();
    next_json(&mut ws).await.unwrap();
    let beat = next_json(&mut ws).await.unwrap();
    assert_eq!(beat["type"], "stream.heartbeat", "{beat}");
    assert!(beat["position"].as_u64().is_some() && beat["head"].as_u64().is_some());
    s.engine.revoke_key(&key).await.unwrap();
    let mut last = None;
    while let Some(m) = next_json(&mut ws).await {
        last = Some(m);
    }
    let last = last.unwrap();
    assert_eq!(last["type"], "stream.error", "{last}");
    assert_eq!(last["code"], "unauthorized");
}
