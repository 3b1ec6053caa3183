//! The `continuum` binary against the machine's PostgreSQL: several processes on one database,
//! and moving a store between SQLite and PostgreSQL. Set CONTINUUM_TEST_POSTGRES_URL (CI does).

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

use common::pg::{Schema, base_url};

fn run(data_dir: &Path, store: Option<&str>, args: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CONTINUUM_STORE");
    if let Some(url) = store {
        cmd.env("CONTINUUM_STORE", url);
    }
    let out = cmd.output().expect("run continuum");
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn concurrent_processes_on_one_database_lose_no_increment() {
    let Some(base) = base_url() else { return };
    let schema = Schema::new(&base);
    let d = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for p in 0..3 {
        let path = d.path().join(format!("h{p}.jsonl"));
        let lines: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"user_message":"Process {p} turn {i} about Rust and Tokio","ai_response":"Reply {i} mentions Tokio and Rust","session_id":"p{p}"}}"#))
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        files.push(path);
    }
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(env!("CARGO_BIN_EXE_continuum"))
                .arg("--data-dir")
                .arg(d.path())
                .args(["import", "--turns", "--batch", "10"])
                .arg(f)
                .env("CONTINUUM_STORE", &schema.url)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let url = Some(schema.url.as_str());
    let s = run(d.path(), url, &["stats", "--json"]);
    assert_eq!(s["backend"], "postgres");
    assert_eq!(s["memories"], 900);
    assert_eq!(s["sessions"], 3);
    let rust = run(d.path(), url, &["concepts", "--json", "rust"]);
    assert_eq!(rust["concept"]["mentions"], 900, "no lost mention counts");
    let tokio = rust["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "tokio")
        .unwrap();
    assert_eq!(tokio["count"], 450, "no lost Hebbian increments");
    assert_eq!(tokio["strength"], 1.0);
    let all = run(d.path(), url, &["concepts", "--json", "--limit", "1000"]);
    let keys: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(keys.len(), unique.len(), "no duplicate concepts: {keys:?}");
    assert_eq!(run(d.path(), url, &["doctor", "--json"])["healthy"], true);
}

fn recall_ids(v: &Value) -> Vec<(String, String)> {
    v["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                format!(
                    "{:.4}/{:.4}",
                    m["signals"]["lexical"], m["signals"]["graph"]
                ),
            )
        })
        .collect()
}

#[test]
fn a_store_moves_from_sqlite_to_postgres_and_back_with_identical_recall() {
    let Some(base) = base_url() else { return };
    let schema = Schema::new(&base);
    let pg = Some(schema.url.as_str());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (u, r) in [
        (
            "Kafka topics are partitioned by customer id.",
            "Partitioning by customer keeps ordering per customer.",
        ),
        (
            "Our Kafka cluster runs in Frankfurt.",
            "Frankfurt keeps data in the EU; let's add a replica in Paris.",
        ),
        (
            "Billing uses PostgreSQL with PgBouncer.",
            "PgBouncer in transaction mode suits billing.",
        ),
    ] {
        run(
            a.path(),
            None,
            &[
                "learn",
                "--json",
                "--session",
                "s1",
                "--user",
                u,
                "--assistant",
                r,
            ],
        );
    }
    run(
        a.path(),
        None,
        &[
            "remember",
            "--json",
            "--source",
            "fact",
            "Retention on the orders topic is 7 days",
        ],
    );
    let dump = a.path().join("dump.jsonl");
    run(
        a.path(),
        None,
        &["export", "--output", dump.to_str().unwrap()],
    );
    let imported = run(b.path(), pg, &["import", "--json", dump.to_str().unwrap()]);
    assert_eq!(imported["dump"]["memories_added"], 7);
    // The import left the planner statistics of what it wrote (a table never analysed
    // shows -1).
    assert_eq!(schema.planner_rows("memories"), 7.0);

    let back = b.path().join("back.jsonl");
    run(
        b.path(),
        pg,
        &["export", "--output", back.to_str().unwrap()],
    );
    let c = tempfile::tempdir().unwrap();
    run(
        c.path(),
        None,
        &["import", "--json", back.to_str().unwrap()],
    );

    for q in [
        "Kafka partitions",
        "where does the cluster run",
        "orders retention",
        "billing database",
    ] {
        let from_sqlite = run(a.path(), None, &["recall", "--json", q]);
        let from_pg = run(b.path(), pg, &["recall", "--json", q]);
        let round_trip = run(c.path(), None, &["recall", "--json", q]);
        assert_eq!(recall_ids(&from_sqlite), recall_ids(&from_pg), "query {q}");
        assert_eq!(
            recall_ids(&from_sqlite),
            recall_ids(&round_trip),
            "query {q}"
        );
        assert_eq!(from_sqlite["context"], from_pg["context"], "query {q}");
    }
    let (sa, sb) = (
        run(a.path(), None, &["stats", "--json"]),
        run(b.path(), pg, &["stats", "--json"]),
    );
    for k in ["memories", "sessions", "concepts", "links", "decisions"] {
        assert_eq!(sa[k], sb[k], "{k}");
    }
}
