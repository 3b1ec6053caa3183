//! Tiers and metering the way an operator runs them: tiers in the configuration file,
//! `continuum tenants set-tier` from another process while `continuum serve` runs (taking
//! effect without a restart), and `continuum usage` after the server stopped.

mod common;

use common::{cli, request_full, serve_with};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn learn(url: &str, key: &str, n: usize) -> (u16, String) {
    let body = format!(
        r#"{{"user_message": "Question {n} about the release", "ai_response": "Answer {n}"}}"#
    );
    let (status, _, body) = request_full(
        url,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {key}\r\n"),
        &body,
    );
    (status, body)
}

#[test]
fn set_tier_from_another_process_applies_without_a_restart_and_usage_survives_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("continuum.toml"),
        "[tiers]\ncustom = [\"tiny:memories=2,requests_per_day=1000\"]\n",
    )
    .unwrap();
    let tiers: Value = serde_json::from_str(&cli(dir.path(), &["tiers", "--json"])).unwrap();
    let names: Vec<&str> = tiers["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tiny") && names.contains(&"free"),
        "{tiers}"
    );
    assert_eq!(tiers["default"], "unlimited");

    let key: Value = serde_json::from_str(&cli(
        dir.path(),
        &[
            "--tenant", "acme", "keys", "create", "--scope", "write", "--json",
        ],
    ))
    .unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let (mut server, url) = serve_with(dir.path(), &[], &[]);
    let mut sent = 0;
    // On the default tier: no storage quota.
    for _ in 0..2 {
        let (status, body) = learn(&url, &key, sent);
        sent += 1;
        assert_eq!(status, 200, "{body}");
    }

    // Another process puts the tenant on the small tier; the server sees it within seconds.
    let set: Value = serde_json::from_str(&cli(
        dir.path(),
        &["tenants", "set-tier", "acme", "tiny", "--json"],
    ))
    .unwrap();
    assert_eq!(set["tier"]["max_memories"], 2);
    let started = Instant::now();
    let refused = loop {
        let (status, body) = learn(&url, &key, sent);
        sent += 1;
        if status == 429 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the new tier was not applied within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let plan: Value =
        serde_json::from_str(&cli(dir.path(), &["tenants", "plan", "acme", "--json"])).unwrap();
    assert_eq!(
        (
            plan["tier"]["name"].as_str(),
            plan["plan"]["source"].as_str()
        ),
        (Some("tiny"), Some("operator"))
    );

    // And back to a larger one.
    cli(dir.path(), &["tenants", "set-tier", "acme", "pro"]);
    let started = Instant::now();
    loop {
        let (status, body) = learn(&url, &key, sent);
        sent += 1;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "pro was not applied within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A clean stop writes what was counted since the last flush.
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let usage: Value =
        serde_json::from_str(&cli(dir.path(), &["--tenant", "acme", "usage", "--json"])).unwrap();
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{usage}");
    assert_eq!(days[0]["tenant"], "acme");
    assert_eq!(
        days[0]["learn"].as_u64(),
        Some(sent as u64),
        "every learn request is counted, refused by the storage quota or not: {usage}"
    );
    assert!(days[0]["memories"].as_u64().unwrap() >= 4, "{usage}");
    let table = cli(dir.path(), &["usage", "--all-tenants"]);
    assert!(table.contains("acme") && table.contains("LEARN"), "{table}");
}

#[test]
fn bad_tier_settings_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["--tier", "Tiny:memories=2", "tiers"],
            "not a tier name",
        ),
        (vec!["--tier", "t:colour=blue", "tiers"], "unknown quota"),
        (
            vec!["--default-tier", "gold", "tiers"],
            "default tier 'gold' is not defined",
        ),
        (
            vec!["tenants", "set-tier", "acme", "gold"],
            "unknown tier 'gold'",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args)
            .env_remove("CONTINUUM_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // A price naming an unknown tier stops serve before it listens.
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--stripe-price",
            "price_1=gold",
        ])
        .env("CONTINUUM_STRIPE_WEBHOOK_SECRET", "whsec_x")
        .env_remove("CONTINUUM_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown tier 'gold'"), "{err}");
    assert!(
        !err.contains("whsec_x"),
        "the secret is never printed: {err}"
    );
}
