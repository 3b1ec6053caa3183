//! Abuse over real connections: guessing keys, connections that send nothing or half a
//! header, too many connections, a body declared over the limit.

mod common;

use common::{start, start_with};
use continuum_core::keys::Scope;
use continuum_server::{ConnectionLimits, ServerConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `within` passes); what it sent.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

fn host(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_keys_from_one_address_is_throttled_while_others_keep_working() {
    let s = start(ServerConfig {
        auth_failures_per_minute: 30.0,
        ..ServerConfig::default()
    })
    .await;
    let good = s.key("acme", Scope::Read).await;
    let here = reqwest::Client::new();
    let (mut refused, mut throttled) = (0, 0);
    for i in 0..1000 {
        let r = here
            .get(format!("{}/v1/stats", s.base))
            .header("x-api-key", format!("ck_{:012x}_{}", i, "0".repeat(48)))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            401 => refused += 1,
            429 => {
                throttled += 1;
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&wait), "{wait}");
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "auth_throttled", "{body}");
            }
            other => panic!("guess {i}: {other}"),
        }
    }
    // 30 a minute: a burst of 30, plus what refilled while the guesses ran.
    assert!((30..=40).contains(&refused), "{refused} answered 401");
    assert_eq!(refused + throttled, 1000);
    // Even the right key is refused from the guessing address for now...
    let r = here
        .get(format!("{}/v1/stats", s.base))
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // ...while another address is not affected.
    let there = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = there
        .get(format!("{}/v1/stats", s.base))
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // And the event streams count failures the same way.
    let r = here
        .get(format!("{}/v1/events/stream", s.base))
        .header(
            "x-api-key",
            "ck_000000000000_000000000000000000000000000000000000000000000000",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed_while_real_requests_are_served() {
    let s = start_with(
        ServerConfig::default(),
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        },
    )
    .await;
    let addr = host(&s.base);
    let mut slow = Vec::new();
    for i in 0..60 {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request head, never finished.
            tcp.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(tcp);
    }
    // Real requests are served meanwhile.
    for _ in 0..5 {
        let r = reqwest::get(format!("{}/v1/health", s.base)).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // Every slow connection is closed soon after the timeout.
    let started = Instant::now();
    for (i, tcp) in slow.iter_mut().enumerate() {
        assert!(
            read_to_close(tcp, Duration::from_secs(10)).await.is_some(),
            "connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    // An idle keep-alive connection is closed too, after its last response.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(format!("GET /v1/health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_to_close(&mut tcp, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_new_connections_get_503() {
    let s = start_with(
        ServerConfig::default(),
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 8,
            tls: None,
        },
    )
    .await;
    let addr = host(&s.base);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let answer = read_to_close(&mut extra, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    // Freed slots are usable again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::get(format!("{}/v1/health", s.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_over_the_limit_is_refused_before_it_is_sent() {
    let s = start(ServerConfig::default()).await;
    let key = s.key("acme", Scope::Write).await;
    let addr = host(&s.base);
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/learn HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // No body is sent: the answer must not wait for it (the request timeout is 30 s).
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("no answer before the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let s = start(ServerConfig {
        auth_failures_per_minute: 5.0,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..ServerConfig::default()
    })
    .await;
    let good = s.key("acme", Scope::Read).await;
    let get = |from: &'static str, forwarded: &'static str, key: String| {
        let base = s.base.clone();
        async move {
            reqwest::Client::builder()
                .local_address(Some(from.parse().unwrap()))
                .build()
                .unwrap()
                .get(format!("{base}/v1/stats"))
                .header("x-forwarded-for", forwarded)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let wrong = || "ck_000000000000_000000000000000000000000000000000000000000000000".to_string();
    // Through the proxy (127.0.0.1), one client guesses until it is throttled...
    let mut last = 0;
    for _ in 0..10 {
        last = get("127.0.0.1", "203.0.113.7", wrong()).await;
    }
    assert_eq!(last, 429);
    // ...while another client behind the same proxy is served.
    assert_eq!(get("127.0.0.1", "203.0.113.8", good.clone()).await, 200);
    // From an address that is not a trusted proxy the header is ignored: the guesses count
    // on 127.0.0.2 itself, whatever client it claims to forward.
    for _ in 0..10 {
        last = get("127.0.0.2", "198.51.100.1", wrong()).await;
    }
    assert_eq!(last, 429);
    assert_eq!(get("127.0.0.2", "198.51.100.2", good.clone()).await, 429);
}

/// Opens an MCP session over HTTP; the session id, or the refusal's status.
async fn open_mcp_session(base: &str, key: &str) -> Result<String, u16> {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"abuse-test","version":"1"}}}"#;
    let r = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let _ = r.bytes().await;
    match (status, id) {
        (200, Some(id)) => Ok(id),
        (s, _) => Err(s),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sessions_are_capped_per_key() {
    let s = start(ServerConfig::default()).await;
    let (one, two) = (
        s.key("acme", Scope::Write).await,
        s.key("acme", Scope::Write).await,
    );
    let mut ids = Vec::new();
    for _ in 0..32 {
        ids.push(open_mcp_session(&s.base, &one).await.unwrap());
    }
    assert_eq!(open_mcp_session(&s.base, &one).await, Err(429));
    // Another key is not affected.
    open_mcp_session(&s.base, &two).await.unwrap();
    // Closing a session frees its place.
    let r = reqwest::Client::new()
        .delete(format!("{}/mcp", s.base))
        .header("x-api-key", &one)
        .header("mcp-session-id", &ids[0])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    open_mcp_session(&s.base, &one).await.unwrap();
    assert_eq!(open_mcp_session(&s.base, &one).await, Err(429));
}
