//! `/v1/sync`: a node syncs with a server over real connections with the sync client; the
//! server refuses a forged tenant, an oversized batch and a malformed event whole; a remote
//! that answers garbage leaves the node untouched.

mod common;

use common::start;
use continuum_core::keys::Scope;
use continuum_core::{Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RememberRequest};
use continuum_server::ServerConfig;
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn local() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("continuum.db"),
        &SqliteOptions::default(),
        Timestamp(0),
    )
    .unwrap();
    (
        Engine::new(Arc::new(store), EngineConfig::default()).unwrap(),
        dir,
    )
}

fn t(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

async fn memories(e: &Engine, tenant: &str) -> u64 {
    e.stats(&t(tenant)).await.unwrap().store.memories
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncs_both_ways_with_a_server_and_other_tenants_stay_apart() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("team", Scope::Write).await;
    s.engine
        .remember(
            &t("team"),
            RememberRequest::new("The team uses Nomad", Source::Fact),
        )
        .await
        .unwrap();
    s.engine
        .remember(
            &t("other"),
            RememberRequest::new("Other's secret", Source::Fact),
        )
        .await
        .unwrap();
    let (node, _dir) = local();
    node.remember(
        &t("me"),
        RememberRequest::new("My laptop prefers Consul", Source::Fact),
    )
    .await
    .unwrap();
    let remote = continuum_sync::Remote::new(&s.base, &key, None).unwrap();
    let r = continuum_sync::sync_once(&node, &t("me"), &remote, &|_| {})
        .await
        .unwrap();
    assert_eq!((r.pushed, r.pulled, r.level), (1, 1, true), "{r:?}");
    assert_eq!(r.remote_tenant, Some(t("team")));
    assert_eq!(memories(&node, "me").await, 2);
    assert_eq!(memories(&s.engine, "team").await, 2);
    assert_eq!(
        memories(&s.engine, "other").await,
        1,
        "another tenant's is untouched"
    );
    let again = continuum_sync::sync_once(&node, &t("me"), &remote, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (again.pushed, again.pulled),
        (0, 0),
        "an idle round moves nothing"
    );
    assert_eq!(again.requests, 1, "an idle round is one small request");
    let status = continuum_sync::status(&node, &t("me"), &remote, true)
        .await
        .unwrap();
    assert_eq!((status.waiting_push, status.waiting_pull), (0, Some(0)));
    assert!(status.last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_oversized_and_malformed_pushes_are_refused_whole() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("team", Scope::Write).await;
    let reader = s.key("team", Scope::Read).await;
    // A real batch, from a real node: two memories.
    let (node, _dir) = local();
    for text in ["first note about Kafka", "second note about Redis"] {
        node.remember(&t("team"), RememberRequest::new(text, Source::Note))
            .await
            .unwrap();
    }
    let events = node.sync_outgoing(&t("team"), 0, 1000).await.unwrap();
    let nid = node.node_id().await.unwrap();
    let c = reqwest::Client::new();
    let push = |body: Value, k: &str| {
        c.post(format!("{}/v1/sync/push", s.base))
            .header("x-api-key", k)
            .json(&body)
            .send()
    };
    let mut forged = serde_json::to_value(&events).unwrap();
    forged[1]["tenant"] = json!("someone-else");
    let r = push(json!({"node": nid, "events": forged}), &key)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event 1"),
        "{body}"
    );
    assert_eq!(
        memories(&s.engine, "team").await,
        0,
        "nothing of the batch applied"
    );

    let mut broken = serde_json::to_value(&events).unwrap();
    broken[1]["type"] = json!("memory.exploded");
    let r = push(json!({"node": nid, "events": broken}), &key)
        .await
        .unwrap();
    assert!(r.status() == 400 || r.status() == 422, "{}", r.status());
    let mut empty = serde_json::to_value(&events).unwrap();
    empty[1]["memory"]["content"] = json!("   ");
    let r = push(json!({"node": nid, "events": empty}), &key)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(memories(&s.engine, "team").await, 0);

    let one = serde_json::to_value(&events[0]).unwrap();
    let many: Vec<Value> = (1..=1001)
        .map(|i| {
            let mut e = one.clone();
            e["seq"] = json!(i);
            e
        })
        .collect();
    let r = push(json!({"node": nid, "events": many}), &key)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at most 1000"));
    // A body declared over the limit is answered before it is sent. (Sending
    // it anyway races the early answer against the connection's close, so the
    // head goes alone, the way a client waiting for the answer would.)
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/sync/push HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("no answer before the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let r = push(json!({"node": nid, "events": events}), &reader)
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a read key cannot push");
    let server_node = s.engine.node_id().await.unwrap();
    let r = push(json!({"node": server_node, "events": events}), &key)
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a node cannot push to itself");
    assert_eq!(memories(&s.engine, "team").await, 0);

    // The good batch goes in once, however often it is sent.
    for _ in 0..2 {
        let r = push(json!({"node": nid, "events": events}), &key)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(memories(&s.engine, "team").await, 2);
    // Each accepted push is in the audit log, by key and node; the refused ones are not.
    let log = s
        .engine
        .audit_log(continuum_core::keys::Caller::local(t("team")), 0, 100)
        .await
        .unwrap();
    let received: Vec<_> = log.iter().filter(|e| e.action == "sync.received").collect();
    assert_eq!(received.len(), 2, "{log:?}");
    assert_eq!(received[0].details["node"], json!(nid));
    assert!(received[0].actor.starts_with("key:"), "{:?}", received[0]);
    assert!(received[0].details["applied"].as_u64().unwrap() > 0);
    assert_eq!(
        received[1].details["applied"], 0,
        "the repeat applies nothing"
    );

    for q in [
        "limit=0",
        "limit=5000",
        "since=-1",
        "exclude_origin=NOT%20A%20NODE",
    ] {
        let r = c
            .get(format!("{}/v1/sync/pull?{q}", s.base))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
}

/// A "remote" that answers every request with 200 and a body that is not a sync response.
async fn garbage_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"tenant":"team","node":"abc","events":[{"nonsense":true}],"next":9,"head":9}"#;
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_answering_garbage_leaves_the_node_untouched() {
    let base = garbage_server().await;
    let (node, _dir) = local();
    node.remember(&t("me"), RememberRequest::new("keep me", Source::Note))
        .await
        .unwrap();
    let before = node.events(&t("me"), 0, 1000).await.unwrap().len();
    let remote = continuum_sync::Remote::new(&base, "ck_secret_never_printed", None).unwrap();
    let err = continuum_sync::sync_once(&node, &t("me"), &remote, &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a sync response"), "{err}");
    assert!(!err.to_string().contains("ck_secret"));
    assert_eq!(node.events(&t("me"), 0, 1000).await.unwrap().len(), before);
    let peer = node
        .sync_peer(remote.url(), &t("me"))
        .await
        .unwrap()
        .expect("the failure is kept");
    assert_eq!((peer.pulled_through, peer.pushed_through), (0, 0));
    assert!(peer.last_error.unwrap().contains("not a sync response"));
}
