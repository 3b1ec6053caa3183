//! The web dashboard in a real headless Chromium, driven by Playwright for Python against a
//! real `continuum serve`. Set CONTINUUM_TEST_BROWSER_PYTHON to a Python that has
//! `playwright` installed and CONTINUUM_TEST_CHROMIUM to a Chromium binary (.ci/run installs
//! Debian's `chromium` and PyPI's `playwright` and sets both). Screenshots of the main pages
//! are left under the build directory (`target/tmp/dashboard-screenshots`).

mod common;

use common::{ok, serve};
use std::process::Command;

fn browser() -> Option<(String, String)> {
    match (
        std::env::var("CONTINUUM_TEST_BROWSER_PYTHON"),
        std::env::var("CONTINUUM_TEST_CHROMIUM"),
    ) {
        (Ok(py), Ok(chromium)) => Some((py, chromium)),
        _ => {
            eprintln!(
                "skipping: CONTINUUM_TEST_BROWSER_PYTHON (a python with `pip install playwright`) \
                 and CONTINUUM_TEST_CHROMIUM (a chromium binary) are not both set"
            );
            None
        }
    }
}

#[test]
fn a_person_signs_in_searches_edits_forgets_browses_and_a_read_key_cannot_forget() {
    let Some((py, chromium)) = browser() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let data = d.path();
    let key = |scope: &str| {
        ok(
            data,
            &["--tenant", "acme", "keys", "create", "--scope", scope],
            &[],
        )
        .trim()
        .to_string()
    };
    let (admin, read) = (key("admin"), key("read"));
    let operator = ok(
        data,
        &["--tenant", "ops", "keys", "create", "--scope", "operator"],
        &[],
    )
    .trim()
    .to_string();
    // Another tenant's memory, which nothing in the browser may show.
    ok(
        data,
        &[
            "--tenant",
            "other",
            "learn",
            "--user",
            "Kafka secrets of another tenant",
            "--assistant",
            "Not yours.",
        ],
        &[],
    );
    for (user, assistant, session) in [
        (
            "Should we use Redis for the session cache?",
            "Yes: Redis with a 15 minute TTL.",
            "planning",
        ),
        (
            "And the orders database, Postgres 16?",
            "Postgres 16 for orders, with nightly backups.",
            "planning",
        ),
        (
            "Our Kafka cluster feeds Flink and ClickHouse with 12 partitions per topic.",
            "Kafka cluster noted: Flink and ClickHouse read 12 partitions per topic.",
            "infra",
        ),
    ] {
        ok(
            data,
            &[
                "--tenant",
                "acme",
                "learn",
                "--user",
                user,
                "--assistant",
                assistant,
                "--session",
                session,
            ],
            &[],
        );
    }
    // Enough memories for a second page of the listing.
    let mut bulk = String::new();
    for i in 0..12 {
        bulk.push_str(
            &serde_json::json!({
                "user_message": format!("note number {i} for the weekly review"),
                "ai_response": format!("reply number {i} for the weekly review"),
                "session_id": "bulk",
            })
            .to_string(),
        );
        bulk.push('\n');
    }
    let bulk_file = data.join("bulk.jsonl");
    std::fs::write(&bulk_file, bulk).unwrap();
    ok(
        data,
        &[
            "--tenant",
            "acme",
            "import",
            "--turns",
            bulk_file.to_str().unwrap(),
        ],
        &[],
    );
    let backups = tempfile::tempdir().unwrap();
    let dest = format!("file://{}", backups.path().display());
    let (server, base) = common::serve_with(
        data,
        &[
            "--backup-dest",
            &dest,
            "--backup-schedule",
            "every 10s",
            "--backup-unencrypted",
        ],
        &[],
    );
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new(&py)
        .arg(format!(
            "{}/tests/browser/dashboard.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([&base, &admin, &read, &operator, &chromium])
        .arg(&artifacts)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert!(report["first_load_bytes"].as_u64().unwrap() < 100 * 1024);
    for page in [
        "signin-refused",
        "search",
        "memory",
        "session",
        "graph",
        "insights",
        "operations",
        "search-phone",
        "memory-read-key",
        "operations-operator",
    ] {
        let shot = artifacts.join(format!("{page}.png"));
        let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{page} is not a PNG");
    }
    // What the browser did reached the store: the key it made, what it forgot.
    let keys = ok(data, &["--tenant", "acme", "keys", "list", "--json"], &[]);
    assert!(keys.contains("dashboard test"), "{keys}");
    let found = ok(
        data,
        &["--tenant", "acme", "search", "48 partitions", "--json"],
        &[],
    );
    assert!(
        !found.contains("48 partitions"),
        "forgotten, yet found: {found}"
    );
    let stored = ok(data, &["--tenant", "acme", "export"], &[]);
    assert!(
        !stored.contains("Grafana dashboards"),
        "the forgotten session is still stored"
    );
    assert!(stored.contains("Redis with a 15 minute TTL"));
    drop(server);
}

#[test]
fn the_dashboard_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let d = tempfile::tempdir().unwrap();
    let (server, base) = serve(d.path());
    let (status, head, page) = common::request_full(&base, "GET", "/dashboard", "", "");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no policy: {head}"));
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(page.contains("/dashboard/app.js"), "{page}");
    let (status, head, script) = common::request_full(&base, "GET", "/dashboard/app.js", "", "");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(script.contains("sessionStorage"));
    let (status, _, _) = common::request_full(&base, "GET", "/dashboard/nothing.js", "", "");
    assert_eq!(status, 404);
    drop(server);

    let (server, base) = common::serve_with(d.path(), &[], &["--no-dashboard"]);
    let (status, _, _) = common::request_full(&base, "GET", "/dashboard", "", "");
    assert_eq!(status, 404, "--no-dashboard still serves it");
    drop(server);
}
