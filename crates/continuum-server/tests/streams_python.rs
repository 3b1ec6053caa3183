//! The WebSocket stream followed by a real Python client (the `websockets` library), as an
//! agent written in Python would: events of a learn and a forget in order, a resume that
//! misses and repeats nothing, no other tenant's events, a bad key refused before the upgrade.
//!
//! Needs `CONTINUUM_TEST_WS_PYTHON`: a Python with `websockets` (`.ci/run` installs it).

mod common;

use common::{Server, start};
use continuum_core::keys::Scope;
use continuum_core::store::ForgetSelector;
use continuum_core::{Source, TenantId};
use continuum_engine::RememberRequest;
use continuum_server::ServerConfig;
use serde_json::Value;

fn python() -> Option<String> {
    match std::env::var("CONTINUUM_TEST_WS_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("skipped: CONTINUUM_TEST_WS_PYTHON is unset (a Python with websockets)");
            None
        }
    }
}

/// Runs the client until the event at `until`; its printed messages.
async fn follow(py: &str, s: &Server, key: &str, since: u64, until: u64, mode: &str) -> Vec<Value> {
    let url = format!(
        "{}/v1/ws?since={since}",
        s.base.replacen("http://", "ws://", 1)
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/ws_client.py");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(py)
            .args([script, &url, key, &until.to_string(), mode])
            .output(),
    )
    .await
    .expect("the Python client did not finish within 60 s")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            if let Some(status) = l.strip_prefix("REFUSED ") {
                serde_json::json!({"refused": status.parse::<u16>().unwrap()})
            } else {
                serde_json::from_str(l).unwrap()
            }
        })
        .collect()
}

async fn remember(s: &Server, tenant: &str, text: &str) -> continuum_core::Memory {
    let t = TenantId::new(tenant).unwrap();
    s.engine
        .remember(&t, RememberRequest::new(text, Source::Note))
        .await
        .unwrap()
}

async fn log_of(s: &Server, tenant: &str) -> Vec<u64> {
    s.engine
        .events(&TenantId::new(tenant).unwrap(), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_websockets_client_follows_a_tenant_and_resumes_without_gaps() {
    let Some(py) = python() else { return };
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Read).await;
    s.key("other", Scope::Read).await;
    let first = remember(&s, "acme", "The billing service deploys from Frankfurt.").await;
    remember(&s, "other", "Another tenant's plan.").await;
    remember(&s, "acme", "Invoices are generated nightly.").await;
    s.engine
        .forget(
            &TenantId::new("acme").unwrap(),
            &ForgetSelector::Ids(vec![first.id]),
        )
        .await
        .unwrap();
    let log = log_of(&s, "acme").await;
    let end = *log.last().unwrap();

    let got = follow(&py, &s, &key, 0, end, "header").await;
    assert_eq!(got[0]["type"], "stream.ready", "{got:?}");
    let events: Vec<&Value> = got.iter().filter(|m| m["seq"].is_u64()).collect();
    assert!(events.iter().all(|e| e["tenant"] == "acme"), "{events:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, log, "the tenant's whole log, in order");
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let created = types.iter().position(|t| *t == "memory.created").unwrap();
    let forgotten = types.iter().position(|t| *t == "memory.forgotten").unwrap();
    assert!(created < forgotten, "{types:?}");

    // Written while the client is away; it resumes from its last position, with the key in
    // its first message this time (as a browser does).
    for i in 0..3 {
        remember(&s, "acme", &format!("Written while away, number {i}.")).await;
    }
    remember(&s, "other", "Still another tenant.").await;
    let log = log_of(&s, "acme").await;
    let got = follow(&py, &s, &key, end, *log.last().unwrap(), "first-message").await;
    let resumed: Vec<u64> = got.iter().filter_map(|m| m["seq"].as_u64()).collect();
    let expected: Vec<u64> = log.into_iter().filter(|&q| q > end).collect();
    assert_eq!(resumed, expected, "nothing missed, nothing repeated");

    // A wrong key is refused before the upgrade.
    let refused = follow(&py, &s, "ck_000000000000_nope", 0, 0, "header").await;
    assert_eq!(refused, vec![serde_json::json!({"refused": 401})]);
}
