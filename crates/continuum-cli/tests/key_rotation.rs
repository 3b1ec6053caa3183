//! Key rotation across processes: a key rotated by the CLI while `continuum serve` runs is
//! refused by the server once its overlap ends (here at once), and the new key works; the
//! REST rotation keeps both working during the overlap.

mod common;

use common::{cli, request, serve_with};
use serde_json::Value;

#[test]
fn a_key_rotated_in_another_process_is_honoured_by_the_running_server() {
    let d = tempfile::tempdir().unwrap();
    let first = cli(
        d.path(),
        &["--tenant", "acme", "keys", "create", "--scope", "admin"],
    );
    let first = first.trim().to_string();
    // A key whose rotation ended while no server ran: the server's `key-expiry` job records
    // its expiry at start, though nobody presents it.
    let early = cli(d.path(), &["--tenant", "acme", "keys", "create"]);
    let early_prefix = early.trim()[3..15].to_string();
    cli(
        d.path(),
        &["keys", "rotate", &early_prefix, "--overlap", "0"],
    );
    let (_server, base) = serve_with(d.path(), &[], &[]);
    let with = |key: &str| format!("X-API-Key: {key}\r\n");
    assert_eq!(request(&base, "GET", "/v1/stats", &with(&first), "").0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, events) = request(&base, "GET", "/v1/events?limit=100", &with(&first), "");
        if expired_prefixes(&events).contains(&early_prefix) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no key.expired for the early key: {events}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Another process rotates it with no overlap: the server refuses it from now on.
    let prefix = &first[3..15];
    let rotated: Value = serde_json::from_str(&cli(
        d.path(),
        &["--json", "keys", "rotate", prefix, "--overlap", "0"],
    ))
    .unwrap();
    assert_eq!(rotated["replaces"], prefix);
    assert_eq!(rotated["scope"], "admin");
    let second = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(request(&base, "GET", "/v1/stats", &with(&first), "").0, 401);
    assert_eq!(
        request(&base, "GET", "/v1/stats", &with(&second), "").0,
        200
    );

    // Through the API, with an overlap: both keys work until it ends.
    let second_prefix = &second[3..15];
    let (status, body) = request(
        &base,
        "POST",
        &format!("/v1/keys/{second_prefix}/rotate"),
        &with(&second),
        r#"{"overlap_secs": 3600}"#,
    );
    assert_eq!(status, 201, "{body}");
    let third: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(third["replaces"], second_prefix);
    assert!(third["replaced_key_expires_at"].is_string(), "{third}");
    let third = third["key"].as_str().unwrap().to_string();
    assert_eq!(
        request(&base, "GET", "/v1/stats", &with(&second), "").0,
        200
    );
    assert_eq!(request(&base, "GET", "/v1/stats", &with(&third), "").0, 200);

    // The event log and the key list tell the story.
    let (_, events) = request(&base, "GET", "/v1/events?limit=100", &with(&third), "");
    assert_eq!(events.matches("\"key.rotated\"").count(), 3, "{events}");
    // Both expiries recorded once: the early key by the job, the first by its refusal.
    let mut expired = expired_prefixes(&events);
    expired.sort();
    let mut want = vec![early_prefix.clone(), prefix.to_string()];
    want.sort();
    assert_eq!(expired, want, "{events}");
    let audit = cli(d.path(), &["--json", "audit", "tail"]);
    assert_eq!(audit.matches("\"key.expired\"").count(), 2, "{audit}");
    let list = cli(d.path(), &["--tenant", "acme", "keys", "list"]);
    assert!(list.contains("expired"), "{list}");
    assert!(list.contains("until"), "{list}");
}

/// The prefixes of the `key.expired` events in a `GET /v1/events` answer.
fn expired_prefixes(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let events = v["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .filter(|e| e["type"] == "key.expired")
        .filter_map(|e| e["prefix"].as_str().map(str::to_string))
        .collect()
}
