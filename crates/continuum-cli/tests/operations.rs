//! Operating `continuum serve`: JSON log lines and request ids, Prometheus metrics checked
//! with a real text-format parser, bounded label sets, `/metrics` behind an operator key, and
//! a clean stop on SIGTERM.

mod common;

use common::{cli, request, request_full, serve_with};
use serde_json::Value;
use std::process::Command;

fn key(data_dir: &std::path::Path, tenant: &str, scope: &str) -> String {
    cli(
        data_dir,
        &["--tenant", tenant, "keys", "create", "--scope", scope],
    )
    .trim()
    .to_string()
}

fn learn_body(i: usize) -> String {
    format!(
        r#"{{"user_message": "Deploy number {i} goes to the Oslo cluster.", "ai_response": "Noted, deploy {i} to Oslo."}}"#
    )
}

/// Parses an exposition with the Python `prometheus_client` parser; returns its samples as
/// `[name, labels, value]` triples, or `None` (with the reason printed) when no Python with
/// that package is configured.
fn parse_with_prometheus_client(text: &str) -> Option<Vec<(String, Value, f64)>> {
    let Ok(python) = std::env::var("CONTINUUM_TEST_PROMETHEUS_PYTHON") else {
        eprintln!(
            "skipping the Prometheus parser check: CONTINUUM_TEST_PROMETHEUS_PYTHON is not set"
        );
        return None;
    };
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value, fam.type])
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        parsed
            .into_iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    s[1].clone(),
                    s[2].as_f64().unwrap(),
                )
            })
            .collect(),
    )
}

fn sample(samples: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|s| s.2)
}

#[test]
fn metrics_count_known_traffic_and_keep_labels_bounded_over_a_thousand_tenants() {
    let d = tempfile::tempdir().unwrap();
    let operator = key(d.path(), "ops", "operator");
    let (server, url) = serve_with(
        d.path(),
        &[],
        &["--metrics-bind", "127.0.0.1:0", "--rate", "100000"],
    );
    let metrics_url = common::metrics_url(&server);

    // 1,000 tenants, each created through the API and learning one turn with its own key.
    let tenants = 1000;
    let mut names = Vec::new();
    let series_of = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.starts_with("process_"))
            .map(|l| l.rsplit_once(' ').map_or(l, |(k, _)| k).to_string())
            .collect()
    };
    let mut early = None;
    for i in 0..tenants {
        if i == 10 {
            let (_, _, text) = request_full(&metrics_url, "GET", "/metrics", "", "");
            early = Some(series_of(&text));
        }
        let name = format!("tenant-{i:04}");
        let (status, body) = request(
            &url,
            "POST",
            "/v1/tenants",
            &format!("X-API-Key: {operator}\r\n"),
            &format!(r#"{{"tenant": "{name}"}}"#),
        );
        assert_eq!(status, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let secret = v["key"]
            .as_str()
            .unwrap_or_else(|| panic!("no key in {body}"))
            .to_string();
        let (status, body) = request(
            &url,
            "POST",
            "/v1/learn",
            &format!("X-API-Key: {secret}\r\n"),
            &learn_body(i),
        );
        assert_eq!(status, 200, "{body}");
        if i < 3 {
            let (status, body) = request(
                &url,
                "POST",
                "/v1/recall",
                &format!("X-API-Key: {secret}\r\n"),
                r#"{"message": "Where do deploys go?"}"#,
            );
            assert_eq!(status, 200, "{body}");
        }
        names.push(name);
    }
    for _ in 0..2 {
        let (status, _) = request(&url, "POST", "/v1/recall", "", r#"{"message": "x"}"#);
        assert_eq!(status, 401);
    }

    // The separate listener needs no key.
    let (status, head, text) = request_full(&metrics_url, "GET", "/metrics", "", "");
    assert_eq!(status, 200, "{text}");
    assert!(head.contains("content-type: text/plain"), "{head}");

    // Bounded label sets: no tenant id anywhere, few series in all.
    for name in &names {
        assert!(!text.contains(name.as_str()), "{name} is a label value");
    }
    // The same series after 10 tenants and after 1,000 (the unauthorised recalls and the
    // embedding figures came after the early scrape; nothing else may be new). Store
    // operations are labelled by method name, a fixed set: background jobs (the usage flush
    // every few seconds) may first run after the early scrape on a busy machine.
    let late = series_of(&text);
    let new: Vec<&String> = late
        .difference(early.as_ref().unwrap())
        .filter(|s| {
            !s.contains("status=\"401\"")
                && !s.contains("route=\"/metrics\"")
                && !s.starts_with("continuum_store_operation_duration_seconds")
        })
        .collect();
    assert!(new.is_empty(), "series that grew with tenants: {new:?}");
    assert!(late.len() < 2000, "{} series", late.len());

    let Some(samples) = parse_with_prometheus_client(&text) else {
        return;
    };
    let learn = [
        ("method", "POST"),
        ("route", "/v1/learn"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&samples, "continuum_http_requests_total", &learn),
        Some(tenants as f64)
    );
    let recall = [("method", "POST"), ("route", "/v1/recall")];
    assert_eq!(
        sample(
            &samples,
            "continuum_http_requests_total",
            &[recall[0], recall[1], ("status", "200")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "continuum_http_requests_total",
            &[recall[0], recall[1], ("status", "401")]
        ),
        Some(2.0)
    );
    // Histogram: cumulative buckets ending in +Inf = count.
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "continuum_http_request_duration_seconds_bucket"
                && l["route"] == "/v1/learn"
                && l["method"] == "POST"
        })
        .map(|(_, l, v)| {
            let le = l["le"].as_str().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, *v)
        })
        .collect();
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
    );
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, tenants as f64));
    assert_eq!(
        sample(
            &samples,
            "continuum_http_request_duration_seconds_count",
            &recall
        ),
        Some(5.0)
    );
    // Engine-side histograms and the other figures.
    assert_eq!(
        sample(&samples, "continuum_learn_duration_seconds_count", &[]),
        Some(tenants as f64)
    );
    assert_eq!(
        sample(&samples, "continuum_recall_duration_seconds_count", &[]),
        Some(3.0)
    );
    // The three tenants that recalled had their text index built once each; the resident
    // figures count what is held.
    assert_eq!(
        sample(
            &samples,
            "continuum_index_loads_total",
            &[("origin", "built")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "continuum_index_load_duration_seconds_count",
            &[("origin", "built")]
        ),
        Some(3.0)
    );
    let held = sample(&samples, "continuum_index_resident_tenants", &[]);
    assert!(held.is_some_and(|n| n <= 3.0), "{held:?}");
    // Every learn is one store transaction (`apply`), timed by operation.
    let applies = sample(
        &samples,
        "continuum_store_operation_duration_seconds_count",
        &[("op", "apply")],
    )
    .unwrap();
    assert!(applies >= tenants as f64, "{applies} applies");
    let head = sample(&samples, "continuum_event_log_head", &[]).unwrap();
    assert!(head >= 2.0 * tenants as f64, "event head {head}");
    assert_eq!(
        sample(
            &samples,
            "continuum_job_state",
            &[("job", "event-compaction"), ("state", "running")]
        ),
        Some(1.0)
    );
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(sample(&samples, name, &[]).is_some(), "{name} missing");
    }
}

#[test]
fn metrics_on_the_api_listener_need_an_operator_key() {
    let d = tempfile::tempdir().unwrap();
    let operator = key(d.path(), "ops", "operator");
    let reader = key(d.path(), "acme", "read");
    let (_server, url) = serve_with(d.path(), &[], &[]);
    let (status, body) = request(&url, "GET", "/metrics", "", "");
    assert_eq!(status, 401, "{body}");
    // Per-tenant counts are off unless asked for.
    assert!(!body.contains("continuum_tenant_http_requests_total"));
    let (status, body) = request(
        &url,
        "GET",
        "/metrics",
        &format!("X-API-Key: {reader}\r\n"),
        "",
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = request(
        &url,
        "GET",
        "/metrics",
        &format!("X-API-Key: {operator}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("continuum_http_requests_total"), "{body}");
}

#[test]
fn json_logs_parse_line_by_line_and_a_request_id_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let secret = key(d.path(), "acme", "write");
    let (server, url) = serve_with(d.path(), &["--log-format", "json"], &[]);
    let (status, head, body) = request_full(
        &url,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {secret}\r\nX-Request-Id: trace-me-42\r\n"),
        &learn_body(1),
    );
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("x-request-id: trace-me-42"), "{head}");
    // An id the server will not take is replaced by one of its own.
    let (_, head, _) = request_full(
        &url,
        "GET",
        "/v1/health",
        "X-Request-Id: has spaces and ; semicolons\r\n",
        "",
    );
    let generated = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a generated request id");
    assert!(
        !generated.contains(' ') && generated.len() >= 16,
        "{generated}"
    );
    // The log line of the learn, once written.
    let mut found = None;
    for _ in 0..100 {
        let log = server.log();
        for line in log.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
            assert!(
                v["timestamp"].is_string() && v["level"].is_string(),
                "{line}"
            );
            if v["request_id"] == "trace-me-42" && v["message"] == "request" {
                found = Some(v);
            }
        }
        if found.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let line = found.expect("a log line for the request");
    assert_eq!(line["route"], "/v1/learn");
    assert_eq!(line["status"], 200);
    assert_eq!(line["tenant"], "acme");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
    let log = server.log();
    assert!(!log.contains(&secret), "a key secret is in the log");
    assert!(!log.contains("Oslo"), "memory text is in the log at info");
}

#[test]
fn sigterm_stops_the_server_promptly_and_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let secret = key(d.path(), "acme", "write");
    let (mut server, url) = serve_with(d.path(), &[], &[]);
    for i in 0..20 {
        let (status, body) = request(
            &url,
            "POST",
            "/v1/learn",
            &format!("X-API-Key: {secret}\r\n"),
            &learn_body(i),
        );
        assert_eq!(status, 200, "{body}");
    }
    let started = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still running 30 s after SIGTERM:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("background job stopped"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // Nothing half-written: the store passes its checks and holds every turn.
    let doctor = cli(d.path(), &["--tenant", "acme", "--json", "stats"]);
    let v: Value = serde_json::from_str(&doctor).unwrap();
    assert_eq!(v["memories"].as_u64(), Some(40), "{doctor}");
}

#[test]
fn doctor_shows_a_running_servers_jobs() {
    let d = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (_server, url) = serve_with(d.path(), &[], &[]);
    // Another data directory for doctor's own checks; the jobs come from the server.
    let out = cli(other.path(), &["--json", "doctor", "--server", &url]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let find = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {out}"))
    };
    assert_eq!(find("server")["ok"], true, "{out}");
    let job = find("job event-compaction");
    assert_eq!(job["ok"], true);
    assert!(
        job["detail"].as_str().unwrap().starts_with("running;"),
        "{out}"
    );
    // A server that does not answer is a failed check, and doctor says so in its exit code.
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(other.path())
        .args(["doctor", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  server"));
}

#[test]
fn per_tenant_counts_are_kept_only_when_turned_on() {
    let d = tempfile::tempdir().unwrap();
    let operator = key(d.path(), "ops", "operator");
    let writer = key(d.path(), "acme", "write");
    let (_server, url) = serve_with(d.path(), &[], &["--metrics-per-tenant"]);
    for _ in 0..3 {
        let (status, _) = request(
            &url,
            "POST",
            "/v1/learn",
            &format!("X-API-Key: {writer}\r\n"),
            &learn_body(7),
        );
        assert_eq!(status, 200);
    }
    let (status, body) = request(
        &url,
        "GET",
        "/metrics",
        &format!("X-API-Key: {operator}\r\n"),
        "",
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("continuum_tenant_http_requests_total{tenant=\"acme\"} 3"),
        "{body}"
    );
}

#[test]
fn sigterm_during_embedding_stops_within_the_grace_and_leaves_the_store_whole() {
    let Ok(model) = std::env::var("CONTINUUM_TEST_MODEL_DIR") else {
        eprintln!("skipping: CONTINUUM_TEST_MODEL_DIR is not set (a MiniLM model directory)");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    // A backlog that takes the embedding worker many seconds.
    let mut turns = String::new();
    for i in 0..1500 {
        turns.push_str(&format!(
            "{{\"user_message\": \"Question {i}: where does deploy {i} of the billing service run?\", \"ai_response\": \"Deploy {i} runs in region {} with {} replicas.\"}}\n",
            i % 7,
            i % 5 + 1
        ));
    }
    let file = d.path().join("turns.jsonl");
    std::fs::write(&file, turns).unwrap();
    cli(
        d.path(),
        &[
            "--tenant",
            "acme",
            "import",
            "--turns",
            file.to_str().unwrap(),
        ],
    );
    let embedder = ["--embedder", "local", "--model-dir", model.as_str()];
    let (mut server, url) = serve_with(d.path(), &embedder, &[]);
    // With an embedder, the worker and the vector-graph job run under the supervisor.
    let (status, body) = request(&url, "GET", "/v1/ready", "", "");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    for name in ["embedder", "vector-graph", "event-compaction"] {
        assert!(
            ready["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["name"] == name && j["state"] == "running"),
            "{name} not running: {ready}"
        );
    }
    // (memories, vectors) of the tenant.
    let counts = || -> (u64, u64) {
        let v: Value =
            serde_json::from_str(&cli(d.path(), &["--tenant", "acme", "--json", "stats"])).unwrap();
        let vectors = v["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_u64().unwrap())
            .sum();
        (v["memories"].as_u64().unwrap(), vectors)
    };
    // Once the worker has stored its first vectors, stop the server in the middle of its work.
    let waiting = std::time::Instant::now();
    while counts().1 == 0 {
        assert!(
            waiting.elapsed() < std::time::Duration::from_secs(60),
            "the worker stored nothing in 60 s: {}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let started = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still running 30 s after SIGTERM:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(
        server.log().contains("background job stopped"),
        "{}",
        server.log()
    );
    // Stopped midway: some memories have vectors, some do not, and the store is whole.
    let (memories, vectors) = counts();
    assert_eq!(memories, 3000);
    assert!(vectors > 0, "the worker had not started: {}", server.log());
    assert!(
        vectors < memories,
        "the worker finished before the signal; make the backlog larger"
    );
    // doctor exits non-zero on any problem.
    cli(d.path(), &["--tenant", "acme", "doctor"]);
}
