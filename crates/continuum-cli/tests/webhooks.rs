//! Webhooks the way a user sets them up: `continuum webhooks create` or `POST /v1/webhooks`,
//! then `continuum serve` delivers signed events to a receiver on loopback.

mod common;

use common::{cli, request, serve_with};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got: lower-cased header names and values, and the body.
type Got = (Vec<(String, String)>, Vec<u8>);

/// A receiver on a loopback port answering 200 to everything.
fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push((headers, body));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    &g.0.iter().find(|(k, _)| k == name).unwrap().1
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed_with(g: &Got, secret: &str) -> bool {
    continuum_webhooks::sign::verify(
        secret,
        header(g, "webhook-id"),
        header(g, "webhook-timestamp"),
        &g.1,
        header(g, "webhook-signature"),
        now_secs(),
    )
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_delivers_signed_events_to_subscriptions_made_from_the_cli_and_the_api() {
    let d = tempfile::tempdir().unwrap();
    let (url, got) = receiver();
    // A loopback receiver is refused unless the operator allows private targets.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuum"))
        .args(["--data-dir", d.path().to_str().unwrap(), "--tenant", "acme"])
        .args(["webhooks", "create", &url])
        .env_remove("CONTINUUM_WEBHOOKS_ALLOW_PRIVATE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a public address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let allow = ["--webhooks-allow-private", "--tenant", "acme"];
    let created: Value = serde_json::from_str(&cli(
        d.path(),
        &[
            &allow[..],
            &[
                "--json",
                "webhooks",
                "create",
                &url,
                "--events",
                "memory.created",
            ],
        ]
        .concat(),
    ))
    .unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let admin = cli(
        d.path(),
        &["--tenant", "acme", "keys", "create", "--scope", "admin"],
    );
    let admin = admin.trim();

    let (server, base) = serve_with(d.path(), &["--webhooks-allow-private"], &[]);
    // The API: list, and a metadata-address target refused.
    let auth = format!("X-API-Key: {admin}\r\n");
    let (status, body) = request(&base, "GET", "/v1/webhooks", &auth, "");
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["webhooks"][0]["id"], created["id"]);
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");
    let (status, body) = request(
        &base,
        "POST",
        "/v1/webhooks",
        &auth,
        r#"{"url": "http://169.254.169.254/latest/meta-data/"}"#,
    );
    // Allowed here (private targets are on for this server): the URL is syntactically fine.
    assert_eq!(status, 201, "{body}");
    let metadata: Value = serde_json::from_str(&body).unwrap();
    let (status, _) = request(
        &base,
        "DELETE",
        &format!("/v1/webhooks/{}", metadata["id"].as_str().unwrap()),
        &auth,
        "",
    );
    assert_eq!(status, 200);
    let (status, body) = request(
        &base,
        "POST",
        "/v1/webhooks",
        &auth,
        r#"{"url": "ftp://x.example/"}"#,
    );
    assert_eq!(status, 400, "{body}");

    // Learning through the API sends a signed memory.created to the receiver.
    let (status, body) = request(
        &base,
        "POST",
        "/v1/learn",
        &auth,
        r#"{"user_message": "Our billing service deploys from Frankfurt.", "ai_response": "Noted."}"#,
    );
    assert_eq!(status, 200, "{body}");
    wait_for("two deliveries", || got.lock().unwrap().len() >= 2);
    let got = got.lock().unwrap().clone();
    for g in &got {
        assert!(signed_with(g, &secret), "a delivery that does not verify");
        let v: Value = serde_json::from_slice(&g.1).unwrap();
        assert_eq!(v["type"], "memory.created");
        assert_eq!(v["data"]["tenant"], "acme");
    }
    let contents: Vec<String> = got
        .iter()
        .map(|g| {
            serde_json::from_slice::<Value>(&g.1).unwrap()["data"]["memory"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(contents[0].contains("Frankfurt"), "{contents:?}");

    // The deliveries, through the API and the CLI.
    let id = created["id"].as_str().unwrap();
    // A delivery is recorded after the receiver answers: wait for both records.
    let started = Instant::now();
    let records: Value = loop {
        let (status, body) = request(
            &base,
            "GET",
            &format!("/v1/webhooks/{id}/deliveries"),
            &auth,
            "",
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let all = v["deliveries"].as_array().unwrap();
        if all.len() == 2 && all.iter().all(|r| r["state"] == "delivered") {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        records["deliveries"].as_array().unwrap().len(),
        2,
        "{records}"
    );
    assert!(
        records["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "delivered")
    );
    // Another tenant's admin does not see it.
    let other = cli(
        d.path(),
        &["--tenant", "other", "keys", "create", "--scope", "admin"],
    );
    let (status, _) = request(
        &base,
        "GET",
        &format!("/v1/webhooks/{id}/deliveries"),
        &format!("X-API-Key: {}\r\n", other.trim()),
        "",
    );
    assert_eq!(status, 404);
    // The job shows in readiness.
    let (_, ready) = request(&base, "GET", "/v1/ready", "", "");
    assert!(ready.contains("\"webhooks\""), "{ready}");
    drop(server);
    let text = cli(
        d.path(),
        &["--tenant", "acme", "webhooks", "deliveries", id],
    );
    assert_eq!(text.matches("delivered").count(), 2, "{text}");
}
