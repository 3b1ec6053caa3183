//! End-to-end tests of the `continuum` binary, the way a user or a script runs it.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, |_| {})
}

fn run_with(dir: &Path, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--data-dir").arg(dir).args(args);
    cmd.env_remove("CONTINUUM_DATA_DIR")
        .env_remove("CONTINUUM_TENANT");
    tweak(&mut cmd);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run continuum");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn learn(dir: &Path, user: &str, assistant: &str, extra: &[&str]) -> Value {
    let mut args = vec!["learn", "--json", "--user", user, "--assistant", assistant];
    args.extend_from_slice(extra);
    run_in(dir, &args).ok().json()
}

#[test]
fn learn_then_recall_json_has_the_documented_shape() {
    let d = tempfile::tempdir().unwrap();
    let out = learn(
        d.path(),
        "Our staging database is PostgreSQL on Hetzner.",
        "Noted: PostgreSQL on Hetzner for staging. I'll remember that.",
        &[
            "--thinking",
            "They migrated away from AWS last year.",
            "--session",
            "ops-1",
            "--meta",
            "channel=slack",
        ],
    );
    assert_eq!(out["memory_ids"].as_array().unwrap().len(), 3);
    assert!(out["concepts_extracted"].as_u64().unwrap() >= 2);
    learn(
        d.path(),
        "I like hiking in the Alps.",
        "The Alps are beautiful in June.",
        &[],
    );

    let r = run_in(
        d.path(),
        &["recall", "--json", "which database runs staging?"],
    )
    .ok()
    .json();
    let context = r["context"].as_str().unwrap();
    assert!(
        context.starts_with("[MEMORY CONTEXT]") && context.contains("PostgreSQL"),
        "{context}"
    );
    let memories = r["memories"].as_array().unwrap();
    let top = &memories[0];
    for field in ["id", "content", "source", "session", "created_at", "score"] {
        assert!(!top[field].is_null(), "{field} missing: {top}");
    }
    for signal in ["lexical", "graph", "recency"] {
        assert!(
            top["signals"][signal].is_number(),
            "signal {signal} missing: {top}"
        );
    }
    assert!(top["content"].as_str().unwrap().contains("staging"));
    assert_eq!(top["session"], "ops-1");
    assert!(r["concepts"].is_array() && r["links"].is_array());
    assert!(
        memories
            .iter()
            .all(|m| !m["content"].as_str().unwrap().contains("Alps")),
        "unrelated turn recalled"
    );

    // --source thinking recalls only the reasoning.
    let r = run_in(
        d.path(),
        &["recall", "--json", "--source", "thinking", "AWS migration"],
    )
    .ok()
    .json();
    let ms = r["memories"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["source"], "thinking");

    let s = run_in(d.path(), &["stats", "--json"]).ok().json();
    assert_eq!(
        (s["memories"].as_u64(), s["sessions"].as_u64()),
        (Some(5), Some(1))
    );
    assert!(s["concepts"].as_u64().unwrap() >= 3);
    assert!(s["links"].as_u64().unwrap() >= 1);

    // The human-readable form prints the block.
    let text = run_in(d.path(), &["recall", "--budget", "60", "staging database"])
        .ok()
        .stdout;
    assert!(text.starts_with("[MEMORY CONTEXT]"), "{text}");
}

#[test]
fn the_budget_bounds_the_context_block() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..30 {
        learn(
            d.path(),
            &format!("Fact {i} about the Falcon rocket engine and its turbopump number {i}."),
            "Interesting, noted.",
            &[],
        );
    }
    for budget in ["40", "120", "400"] {
        let r = run_in(
            d.path(),
            &["recall", "--json", "--budget", budget, "Falcon turbopump"],
        )
        .ok()
        .json();
        let used = r["context_tokens"].as_u64().unwrap();
        assert!(
            used <= budget.parse().unwrap(),
            "budget {budget}, used {used}"
        );
        assert!(r["context"].as_str().unwrap().len() as u64 <= 4 * used);
    }
}

#[test]
fn export_import_moves_a_store_with_identical_recall() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    learn(
        a.path(),
        "Kafka topics are partitioned by customer id.",
        "Partitioning by customer keeps ordering per customer.",
        &["--session", "k"],
    );
    learn(
        a.path(),
        "Our Kafka cluster runs in Frankfurt.",
        "Frankfurt keeps data in the EU; let's add a replica in Paris.",
        &[],
    );
    run_in(
        a.path(),
        &[
            "remember",
            "--source",
            "fact",
            "Retention on the orders topic is 7 days",
        ],
    )
    .ok();
    let dump = a.path().join("dump.jsonl");
    run_in(a.path(), &["export", "--output", dump.to_str().unwrap()]).ok();
    let first = run_in(b.path(), &["import", "--json", dump.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(first["dump"]["memories_added"], 5);
    let again = run_in(b.path(), &["import", "--json", dump.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(again["dump"]["memories_added"], 0, "import is idempotent");
    assert_eq!(again["dump"]["memories_skipped"], 5);
    for q in [
        "Kafka partitions",
        "where does the cluster run",
        "orders retention",
        "Paris replica",
    ] {
        let ra = run_in(a.path(), &["recall", "--json", q]).ok().json();
        let rb = run_in(b.path(), &["recall", "--json", q]).ok().json();
        let ids = |r: &Value| -> Vec<(String, String)> {
            r["memories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap().to_string(),
                        format!(
                            "{:.4}/{:.6}",
                            m["signals"]["lexical"], m["signals"]["graph"]
                        ),
                    )
                })
                .collect()
        };
        assert_eq!(ids(&ra), ids(&rb), "query {q}");
    }
    let (sa, sb) = (
        run_in(a.path(), &["stats", "--json"]).ok().json(),
        run_in(b.path(), &["stats", "--json"]).ok().json(),
    );
    for k in ["memories", "sessions", "concepts", "links", "decisions"] {
        assert_eq!(sa[k], sb[k], "{k}");
    }
}

#[test]
fn a_bad_history_file_is_refused_whole_with_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("history.jsonl");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(br#"{"user_message":"We ship on Fridays.","ai_response":"Friday it is.","session_id":"h1"}"#);
    bytes.extend_from_slice(b"\n\n{not json\n");
    bytes.extend_from_slice(b"{\"user_message\":\"caf\xe9\",\"ai_response\":\"x\"}\n");
    bytes.extend_from_slice(br#"{"user_message":"","ai_response":"empty user"}"#);
    bytes.extend_from_slice(b"\n");
    bytes.extend_from_slice(br#"{"user_message":"Deploys need two approvals.","ai_response":"Noted.","thinking":"policy","metadata":{"src":"wiki"}}"#);
    std::fs::write(&file, &bytes).unwrap();
    run_in(d.path(), &["remember", "already here"]).ok();

    let r = run_in(d.path(), &["import", "--turns", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 3:"), "{}", r.stderr);
    assert!(r.stderr.contains("line 4: not valid UTF-8"), "{}", r.stderr);
    assert!(
        r.stderr.contains("line 5: user message is empty"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was imported"), "{}", r.stderr);
    assert_eq!(
        run_in(d.path(), &["stats", "--json"]).ok().json()["memories"],
        1,
        "nothing written, nothing lost"
    );

    let r = run_in(
        d.path(),
        &[
            "import",
            "--json",
            "--turns",
            "--skip-bad",
            file.to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    assert_eq!(r["turns"]["turns"], 2);
    assert_eq!(r["bad_lines"].as_array().unwrap().len(), 3);
    assert_eq!(
        run_in(d.path(), &["stats", "--json"]).ok().json()["memories"],
        6
    );
    let hit = run_in(d.path(), &["search", "--json", "approvals"])
        .ok()
        .json();
    assert_eq!(hit[0]["metadata"]["src"], "wiki");

    // A dump without its header is refused, pointing at --turns.
    let r = run_in(d.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--turns"), "{}", r.stderr);
}

#[test]
fn fusion_weights_from_the_flag_and_the_environment_rank_recall() {
    let d = tempfile::tempdir().unwrap();
    learn(
        d.path(),
        "The Falcon turbopump failed its test.",
        "Noted.",
        &[],
    );
    let score_of = |r: &Value| {
        let m = &r["memories"][0];
        let s = &m["signals"];
        (
            m["score"].as_f64().unwrap(),
            s["lexical"].as_f64().unwrap(),
            s["graph"].as_f64().unwrap(),
            s["recency"].as_f64().unwrap(),
        )
    };
    let r = run_in(
        d.path(),
        &[
            "--fusion-weights",
            "2,0,0",
            "recall",
            "--json",
            "Falcon turbopump",
        ],
    )
    .ok()
    .json();
    let (score, lexical, _, _) = score_of(&r);
    assert!((score - 2.0 * lexical).abs() < 1e-9, "{r}");
    let r = run_with(d.path(), &["recall", "--json", "Falcon turbopump"], |c| {
        c.env("CONTINUUM_FUSION_WEIGHTS", "0,0,0,1");
    })
    .ok()
    .json();
    let (score, _, _, recency) = score_of(&r);
    assert!((score - recency).abs() < 1e-9, "{r}");
}

#[test]
fn the_recall_cache_can_be_turned_off_and_refuses_a_bad_size() {
    let d = tempfile::tempdir().unwrap();
    learn(
        d.path(),
        "Kafka feeds the billing ledger.",
        "Noted: Kafka.",
        &[],
    );
    let context = |args: &[&str]| run_in(d.path(), args).ok().json()["context"].clone();
    let cached = context(&["recall", "--json", "Kafka ledger"]);
    assert!(
        cached.as_str().unwrap().contains("billing ledger"),
        "{cached}"
    );
    let uncached = context(&[
        "--recall-cache-entries",
        "0",
        "recall",
        "--json",
        "Kafka ledger",
    ]);
    assert_eq!(cached, uncached);
    let r = run_in(d.path(), &["--recall-cache-entries", "-1", "recall", "x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn bad_input_gets_one_clear_line_and_an_exit_code() {
    let d = tempfile::tempdir().unwrap();
    run_in(d.path(), &["remember", "keep this"]).ok();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["remember", "   "], 2, "text is empty"),
        (
            &["--max-text-bytes", "100", "remember", &"x".repeat(200)],
            2,
            "over the limit of 100 bytes",
        ),
        (&["get", "not-an-id"], 2, "not a memory id"),
        (
            &["get", "01a20d22-0000-7000-8000-000000000000"],
            3,
            "no memory with id",
        ),
        (
            &["forget", "01a20d22-0000-7000-8000-000000000000"],
            3,
            "no memory with id",
        ),
        (&["forget", "--all"], 2, "--yes"),
        (&["--tenant", "../etc", "stats"], 2, "tenant id"),
        (&["recall", "x", "--budget", "0"], 2, "budget"),
        (
            &["--fusion-weights", "1,x", "recall", "x"],
            2,
            "comma-separated numbers",
        ),
        (
            &["--fusion-weights", "1,2", "recall", "x"],
            2,
            "lexical,graph,recency",
        ),
        (&["--fusion-weights", "1,0,-1", "recall", "x"], 2, "[0, 10]"),
        (&["list", "--limit", "5000"], 2, "page size"),
        (&["remember", "--source", "robot", "hi"], 2, "robot"),
    ];
    for (args, code, needle) in cases {
        let r = run_in(d.path(), args);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.lines().count() <= 3,
            "{args:?}: terse error expected: {}",
            r.stderr
        );
    }
    let r = run_in(
        d.path(),
        &["get", "--json", "01a20d22-0000-7000-8000-000000000000"],
    );
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert_eq!(
        run_in(d.path(), &["stats", "--json"]).ok().json()["memories"],
        1,
        "nothing lost"
    );
}

#[test]
fn an_unusable_data_dir_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let r = run_in(&file, &["stats"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
    let r = run_in(&file.join("sub"), &["stats"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot create data directory"),
        "{}",
        r.stderr
    );
    // A file that is not a SQLite database.
    let junk = d.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("continuum.db"), vec![7u8; 8192]).unwrap();
    let r = run_in(&junk, &["stats"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("not a SQLite database"), "{}", r.stderr);
}

#[test]
fn a_store_locked_by_another_process_fails_cleanly_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    run_in(d.path(), &["remember", "written before the lock"]).ok();
    let conn = rusqlite::Connection::open(d.path().join("continuum.db")).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = run_in(
        d.path(),
        &["--busy-timeout-ms", "200", "remember", "blocked write"],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("locked by another process"),
        "{}",
        r.stderr
    );
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    let s = run_in(d.path(), &["stats", "--json"]).ok().json();
    assert_eq!(s["memories"], 1);
    run_in(d.path(), &["remember", "after the lock"]).ok();
}

#[test]
fn concurrent_writers_on_one_data_dir_all_land() {
    let d = tempfile::tempdir().unwrap();
    run_in(d.path(), &["stats"]).ok();
    let mut files = Vec::new();
    for p in 0..3 {
        let path = d.path().join(format!("h{p}.jsonl"));
        let lines: Vec<String> = (0..200)
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
                .args(["import", "--turns", "--batch", "20"])
                .arg(f)
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
    let s = run_in(d.path(), &["stats", "--json"]).ok().json();
    assert_eq!(s["memories"], 1200);
    assert_eq!(s["sessions"], 3);
    let rust = run_in(d.path(), &["concepts", "--json", "rust"])
        .ok()
        .json();
    assert_eq!(rust["concept"]["mentions"], 1200, "no lost mention counts");
    let tokio = rust["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "tokio")
        .unwrap();
    assert_eq!(tokio["strength"], 1.0);
    assert_eq!(tokio["count"], 600, "no lost Hebbian increments");
    assert_eq!(
        run_in(d.path(), &["doctor", "--json"]).ok().json()["healthy"],
        true
    );
}

#[test]
fn tenants_are_separate_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    run_in(
        d.path(),
        &[
            "--tenant",
            "alice",
            "remember",
            "Alice's locker code is 4411",
        ],
    )
    .ok();
    let r = run_in(
        d.path(),
        &["--tenant", "bob", "recall", "--json", "locker code"],
    )
    .ok()
    .json();
    assert!(r["memories"].as_array().unwrap().is_empty());
    assert_eq!(r["context"], "");
    let r = run_in(d.path(), &["--tenant", "bob", "search", "--json", "locker"])
        .ok()
        .json();
    assert!(r.as_array().unwrap().is_empty());
    let r = run_with(d.path(), &["recall", "--json", "locker code"], |c| {
        c.env("CONTINUUM_TENANT", "alice");
    })
    .ok()
    .json();
    assert_eq!(r["memories"].as_array().unwrap().len(), 1);
}

#[test]
fn list_pages_forget_and_sessions() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..5 {
        learn(
            d.path(),
            &format!("Message {i} in the planning chat"),
            "ok",
            &["--session", "plan"],
        );
    }
    learn(d.path(), "Unrelated", "ok", &["--session", "other"]);
    let p1 = run_in(d.path(), &["list", "--json", "--limit", "4"])
        .ok()
        .json();
    assert_eq!(p1["items"].as_array().unwrap().len(), 4);
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = run_in(
        d.path(),
        &["list", "--json", "--limit", "100", "--cursor", &cursor],
    )
    .ok()
    .json();
    assert_eq!(p2["items"].as_array().unwrap().len(), 8);
    assert!(p2["next_cursor"].is_null());
    let sessions = run_in(d.path(), &["sessions", "--json"]).ok().json();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let out = run_in(d.path(), &["forget", "--json", "--session", "plan"])
        .ok()
        .json();
    assert_eq!(out["forgotten"], 10);
    let s = run_in(d.path(), &["stats", "--json"]).ok().json();
    assert_eq!(
        (s["memories"].as_u64(), s["sessions"].as_u64()),
        (Some(2), Some(1))
    );
    let r = run_in(d.path(), &["search", "--json", "planning"])
        .ok()
        .json();
    assert!(r.as_array().unwrap().is_empty());
}

#[test]
fn supersede_and_get_show_history() {
    let d = tempfile::tempdir().unwrap();
    let old = run_in(
        d.path(),
        &[
            "remember",
            "--json",
            "--source",
            "fact",
            "The VPN endpoint is vpn1.example.com",
        ],
    )
    .ok()
    .json();
    let old_id = old["id"].as_str().unwrap();
    let new = run_in(
        d.path(),
        &[
            "supersede",
            "--json",
            old_id,
            "The VPN endpoint moved to vpn2.example.com",
        ],
    )
    .ok()
    .json();
    let got = run_in(d.path(), &["get", "--json", old_id]).ok().json();
    assert_eq!(got["superseded_by"], new["id"]);
    let r = run_in(d.path(), &["recall", "--json", "VPN endpoint"])
        .ok()
        .json();
    assert_eq!(r["memories"][0]["id"], new["id"]);
    assert_eq!(r["memories"][1]["superseded"], true);
}

#[test]
fn remember_reads_stdin_and_migrate_reports_the_schema() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["remember", "--json", "--source", "document", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("Line one of the runbook.\nLine two: restart Nginx.".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["source"], "document");
    assert!(m["content"].as_str().unwrap().contains("restart Nginx"));
    let mig = run_in(d.path(), &["migrate", "--json"]).ok().json();
    let versions: Vec<u64> = mig["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=15).collect::<Vec<u64>>());
    assert_eq!(mig["latest"], 15);
}

#[test]
fn bench_streams_and_webhooks_deliver_every_event() {
    let d = tempfile::tempdir().unwrap();
    let streams = run_in(
        d.path(),
        &[
            "--json",
            "bench",
            "streams",
            "--clients",
            "3",
            "--turns",
            "20",
        ],
    )
    .ok()
    .json();
    // Every client got every event the turns wrote (several per turn).
    assert!(
        streams["events_per_client"].as_u64().unwrap() >= 40,
        "{streams}"
    );
    assert!(streams["events_delivered_per_sec"].as_f64().unwrap() > 0.0);
    assert!(streams["latency_ms"]["p50"].as_f64().is_some());
    let hooks = run_in(
        d.path(),
        &[
            "--json",
            "bench",
            "webhooks",
            "--subscriptions",
            "2",
            "--turns",
            "10",
        ],
    )
    .ok()
    .json();
    let events = hooks["events"].as_u64().unwrap();
    assert!(events >= 20, "{hooks}");
    assert_eq!(hooks["deliveries"].as_u64().unwrap(), 2 * events, "{hooks}");
}

#[test]
fn bench_locomo_scores_evidence_turns() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("mini-locomo.json");
    let sample = serde_json::json!([{
        "sample_id": "mini",
        "conversation": {
            "speaker_a": "Ines", "speaker_b": "Tariq",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ines", "dia_id": "D1:1", "text": "I adopted a greyhound called Pixel last week."},
                {"speaker": "Tariq", "dia_id": "D1:2", "text": "Lovely! I started learning the cello."},
                {"speaker": "Ines", "dia_id": "D1:3", "text": "Look at this.", "blip_caption": "a photo of a red kite over a beach"}
            ],
            "session_2_date_time": "9:00 am on 20 June, 2023",
            "session_2": [
                {"speaker": "Tariq", "dia_id": "D2:1", "text": "My cello teacher moved to Porto."},
                {"speaker": "Ines", "dia_id": "D2:2", "text": "Pixel won a race on Sunday!"}
            ]
        },
        "qa": [
            {"question": "What is the name of Ines's greyhound?", "answer": "Pixel", "evidence": ["D1:1"], "category": 4},
            {"question": "Which instrument does Tariq learn?", "answer": "cello", "evidence": ["D1:2", "D2:1"], "category": 1},
            {"question": "What flew over the beach in Ines's photo?", "answer": "a kite", "evidence": ["D1:3"], "category": 4},
            {"question": "Something unanswerable", "evidence": ["D9:9"], "category": 4},
            {"question": "Adversarial", "evidence": ["D1:1"], "category": 5}
        ]
    }]);
    std::fs::write(&data, serde_json::to_vec(&sample).unwrap()).unwrap();
    let r = run_in(
        d.path(),
        &[
            "bench",
            "locomo",
            "--json",
            "--k",
            "1,3",
            "--data",
            data.to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    assert_eq!(
        r["questions"], 3,
        "category 5 and unknown evidence are not scored: {r}"
    );
    assert_eq!(r["skipped_questions"], 1);
    assert_eq!(r["memories"], 5);
    assert_eq!(
        r["hit_at"]["3"], 1.0,
        "every answer is among the top 3: {r}"
    );
    assert!(r["recall_at"]["1"].as_f64().unwrap() >= 0.5, "{r}");
    assert_eq!(r["by_category"]["1"]["questions"], 1);
    assert!(r["latency_ms"]["p50"].is_number());
    // Session level: the cello question's evidence lies in both sessions, and there are only
    // two; every answer's sessions are among the first two.
    assert_eq!(r["session_hit_at"]["1"], 1.0, "{r}");
    assert_eq!(r["session_recall_at"]["3"], 1.0, "{r}");

    // Two conversations, two settings, cross-validated: each fold is scored with a setting
    // chosen on the other conversation, and held-out answers add up to every question.
    let mut second = sample[0].clone();
    second["sample_id"] = "mini-2".into();
    second["qa"] = serde_json::json!([
        {"question": "Where did the cello teacher move?", "answer": "Porto", "evidence": ["D2:1"], "category": 4},
        {"question": "When did Pixel win a race?", "answer": "Sunday", "evidence": ["D2:2"], "category": 2}
    ]);
    let two = serde_json::json!([sample[0].clone(), second]);
    std::fs::write(&data, serde_json::to_vec(&two).unwrap()).unwrap();
    let cv = run_in(
        d.path(),
        &[
            "bench",
            "locomo",
            "--json",
            "--folds",
            "2",
            "--speaker-boost",
            "0",
            "--speaker-boost",
            "1",
            "--data",
            data.to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    assert_eq!(cv["settings"].as_array().unwrap().len(), 2, "{cv}");
    let x = &cv["cross_validation"];
    let folds = x["by_fold"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    assert_eq!(folds[0]["conversations"], serde_json::json!([0]));
    assert_eq!(folds[1]["conversations"], serde_json::json!([1]));
    let held: u64 = folds
        .iter()
        .map(|f| f["held_out"]["questions"].as_u64().unwrap())
        .sum();
    assert_eq!(held, 5, "{x}");
    assert_eq!(x["held_out"]["questions"], 5);
    let names: Vec<&str> = cv["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["setting"].as_str().unwrap())
        .collect();
    assert!(
        names[0].contains("spk 0") && names[1].contains("spk 1"),
        "{names:?}"
    );
    for f in folds {
        assert!(names.contains(&f["chosen"].as_str().unwrap()), "{f}");
    }
    assert_eq!(x["settings"][0]["by_fold"].as_array().unwrap().len(), 2);
    let too_many = run_in(
        d.path(),
        &[
            "bench",
            "locomo",
            "--folds",
            "3",
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(too_many.code, 2, "{}", too_many.stderr);
    assert!(too_many.stderr.contains("--folds"), "{}", too_many.stderr);
    // Garbage in, clear error out.
    std::fs::write(&data, "{\"not\": \"an array\"}").unwrap();
    let bad = run_in(
        d.path(),
        &["bench", "locomo", "--data", data.to_str().unwrap()],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a LoCoMo file"), "{}", bad.stderr);
}

#[test]
fn keys_are_created_once_listed_without_secrets_and_revoked() {
    let d = tempfile::tempdir().unwrap();
    let k = run_in(
        d.path(),
        &[
            "--tenant",
            "acme",
            "keys",
            "create",
            "--scope",
            "admin",
            "--expires",
            "90d",
            "--name",
            "bootstrap",
            "--json",
        ],
    )
    .ok()
    .json();
    let secret = k["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ck_"), "{k}");
    assert_eq!(k["scope"], "admin");
    assert!(k["expires_at"].is_string());
    let plain = run_in(d.path(), &["--tenant", "acme", "keys", "create"]).ok();
    assert!(
        plain.stdout.trim().starts_with("ck_") && plain.stderr.contains("shown only this once")
    );
    run_in(
        d.path(),
        &["--tenant", "other", "keys", "create", "--scope", "read"],
    )
    .ok();

    let listed = run_in(d.path(), &["--tenant", "acme", "keys", "list"])
        .ok()
        .stdout;
    assert!(
        !listed.contains(&secret[16..]),
        "secrets are never listed: {listed}"
    );
    let json = run_in(d.path(), &["--tenant", "acme", "keys", "list", "--json"])
        .ok()
        .json();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(
        json[0].get("hash").is_none(),
        "the hash is not shown either"
    );
    assert_eq!(
        run_in(d.path(), &["keys", "list", "--all-tenants", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let prefix = k["prefix"].as_str().unwrap();
    run_in(d.path(), &["keys", "revoke", prefix]).ok();
    let after = run_in(d.path(), &["--tenant", "acme", "keys", "list"])
        .ok()
        .stdout;
    assert!(after.contains("revoked"), "{after}");
    let r = run_in(d.path(), &["keys", "revoke", "000000000000"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = run_in(d.path(), &["keys", "create", "--expires", "soon"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn processes_opening_a_new_store_together_all_succeed() {
    // The first opener switches the new file to WAL; the others must wait for it, not fail.
    for round in 0..10 {
        let d = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..6)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_continuum"))
                    .arg("--data-dir")
                    .arg(d.path())
                    .args(["remember", &format!("note {i}")])
                    .env_remove("CONTINUUM_DATA_DIR")
                    .env_remove("CONTINUUM_TENANT")
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
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stats = run_in(d.path(), &["stats", "--json"]).ok().json();
        assert_eq!(stats["memories"], 6);
    }
}

#[test]
fn openapi_prints_the_document_without_touching_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-created");
    let doc = run_in(&missing, &["openapi"]).ok().json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/recall",
        "/v1/learn",
        "/v1/memories/{id}",
        "/v1/openapi.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(!missing.exists(), "printing the document opens no store");
}

#[test]
fn tenants_are_listed_created_and_erased_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_in(
        d,
        &["--tenant", "acme", "remember", "Acme ships from Oslo."],
    )
    .ok();
    let created = run_in(d, &["--json", "tenants", "create", "globex"])
        .ok()
        .json();
    assert_eq!(created["tenant"], "globex");
    assert_eq!(created["scope"], "admin");
    assert!(created["key"].as_str().unwrap().starts_with("ck_"));
    let again = run_in(d, &["tenants", "create", "globex"]);
    assert_eq!(again.code, 5, "a conflict: {}", again.stderr);
    let list = run_in(d, &["--json", "tenants"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(list[0]["memories"], 1);
    let refused = run_in(d, &["tenants", "erase", "acme"]);
    assert_eq!(refused.code, 2, "erasing needs --yes: {}", refused.stderr);
    let erased = run_in(d, &["--json", "tenants", "erase", "acme", "--yes"])
        .ok()
        .json();
    assert_eq!(erased["memories"], 1);
    let stats = run_in(d, &["--tenant", "acme", "--json", "stats"])
        .ok()
        .json();
    assert_eq!(stats["memories"], 0);
}

fn event_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn events_lists_follows_and_refuses_bad_positions() {
    let dir = tempfile::tempdir().unwrap();
    learn(dir.path(), "We deploy Kafka.", "Let's keep Kafka.", &[]);
    learn(dir.path(), "Redis caches.", "Noted.", &["--tenant", "acme"]);
    let all = event_lines(&run_in(dir.path(), &["events", "--json"]).ok());
    assert!(all.iter().all(|e| e["tenant"] == "default"), "{all:?}");
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let created: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "memory.created")
        .collect();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["memory"]["content"], "We deploy Kafka.");

    let since = seqs[0].to_string();
    let page = event_lines(
        &run_in(
            dir.path(),
            &["events", "--json", "--since", &since, "--limit", "2"],
        )
        .ok(),
    );
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["seq"].as_u64(), Some(seqs[1]));

    let every = event_lines(&run_in(dir.path(), &["events", "--json", "--all-tenants"]).ok());
    assert!(every.iter().any(|e| e["tenant"] == "acme"));
    assert!(every.len() > all.len());

    let human = run_in(dir.path(), &["events"]).ok();
    assert!(human.stdout.contains("memory.created"), "{}", human.stdout);
    let past = run_in(dir.path(), &["events", "--since", "999999"]).ok();
    assert_eq!(past.stdout, "", "past the end is empty, not an error");
    for bad in ["--since=-1", "--since=abc", "--limit=0"] {
        let r = run_in(dir.path(), &["events", bad]);
        assert_ne!(r.code, 0, "{bad}");
        assert!(
            r.stderr.contains("not an event position") || r.stderr.contains("--limit"),
            "{bad}: {}",
            r.stderr
        );
    }

    // --follow sees what another process writes.
    let head = seqs.last().unwrap().to_string();
    let mut follow = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["events", "--follow", "--json", "--since", &head])
        .env_remove("CONTINUUM_TENANT")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    learn(dir.path(), "Grafana shows the lag.", "Noted.", &[]);
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the followed log shows the new turn");
    let _ = follow.kill();
    let _ = follow.wait();
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["type"], "memory.created");
    assert_eq!(e["memory"]["content"], "Grafana shows the lag.");
    assert!(e["seq"].as_u64().unwrap() > seqs[seqs.len() - 1]);
}

#[test]
fn events_compact_keeps_what_a_cursor_holds_and_then_says_to_start_over() {
    let dir = tempfile::tempdir().unwrap();
    learn(dir.path(), "We deploy Kafka.", "Noted.", &[]);
    let first = event_lines(&run_in(dir.path(), &["events", "--json"]).ok());
    let held = first[1]["seq"].as_u64().unwrap().to_string();
    run_in(
        dir.path(),
        &["events", "cursor-set", "offsite-backup", &held],
    )
    .ok();
    let cursors = run_in(dir.path(), &["--json", "events", "cursors"])
        .ok()
        .json();
    assert_eq!(cursors[0]["name"], "offsite-backup");
    let c = run_in(
        dir.path(),
        &["--json", "events", "compact", "--min-age", "0"],
    )
    .ok()
    .json();
    assert_eq!(c["compacted_through"].as_u64().unwrap().to_string(), held);
    assert_eq!(c["held_by"], "offsite-backup");
    let r = run_in(dir.path(), &["events"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("snapshot"), "{}", r.stderr);
    let rest = event_lines(&run_in(dir.path(), &["events", "--json", "--since", &held]).ok());
    assert_eq!(rest.len(), first.len() - 2);
    let bad = run_in(dir.path(), &["events", "compact", "--min-age", "soon"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    // `continuum list | head -1`: the pipe closes after the first line.
    let d = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..1500 {
        lines.push_str(&format!(
            "{{\"user_message\": \"question {i} about Kafka\", \"ai_response\": \"answer {i}\"}}\n"
        ));
    }
    let turns = d.path().join("turns.jsonl");
    std::fs::write(&turns, lines).unwrap();
    run_in(d.path(), &["import", "--turns", turns.to_str().unwrap()]).ok();
    for args in [&["list", "--limit", "1000"][..], &["export"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_continuum"))
            .arg("--data-dir")
            .arg(d.path())
            .args(args)
            .env_remove("CONTINUUM_TENANT")
            .env_remove("CONTINUUM_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        {
            use std::io::BufRead;
            let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
            r.read_line(&mut first).unwrap();
        } // the read end closes here
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn insights_and_dream_read_the_graph_and_a_seed_repeats_a_dream() {
    let d = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        learn(
            d.path(),
            "Our Kafka cluster feeds Flink and ClickHouse.",
            "So Kafka, Flink and ClickHouse go together.",
            &[],
        );
        learn(
            d.path(),
            "The Terraform plan updates Postgres and Redis.",
            "So Terraform, Postgres and Redis go together.",
            &[],
        );
    }
    learn(
        d.path(),
        "Dashboards in Grafana read ClickHouse and Postgres.",
        "Noted.",
        &[],
    );
    let ins = run_in(d.path(), &["insights", "--json"]).ok().json();
    assert!(ins["clusters"].as_array().unwrap().len() >= 2, "{ins}");
    assert!(!ins["bridges"].as_array().unwrap().is_empty(), "{ins}");
    let text = run_in(d.path(), &["insights"]).ok().stdout;
    assert!(
        text.contains("Clusters") && text.contains("Bridges"),
        "{text}"
    );
    let walk = |seed: &str| {
        run_in(
            d.path(),
            &[
                "dream", "--json", "--from", "Kafka", "--seed", seed, "--steps", "8",
            ],
        )
        .ok()
        .json()["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["concept"]["key"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let one = walk("5");
    assert_eq!(one.len(), 9);
    assert_eq!(one[0], "kafka");
    assert_eq!(one, walk("5"), "the same seed walks the same way");
    let text = run_in(d.path(), &["dream", "--seed", "5", "--from", "kafka"])
        .ok()
        .stdout;
    assert!(text.contains("seed 5"), "{text}");
    let bad = run_in(d.path(), &["dream", "--temperature", "0"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("temperature"), "{}", bad.stderr);
    let none = run_in(d.path(), &["dream", "--from", "Nowhere"]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("no concept"), "{}", none.stderr);
}

#[test]
fn intentions_beliefs_and_claims_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let high = run_in(
        p,
        &[
            "intentions",
            "add",
            "Ship the release",
            "--priority",
            "8",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(high["status"], "pending");
    let low = run_in(
        p,
        &[
            "intentions",
            "add",
            "Tidy the docs",
            "--priority",
            "2",
            "--json",
        ],
    )
    .ok()
    .json();
    let resume = run_in(p, &["intentions", "resume", "--json"]).ok().json();
    assert_eq!(resume["pending"], 2);
    assert_eq!(resume["high"][0]["id"], high["id"]);
    assert_eq!(resume["low"][0]["id"], low["id"]);
    let text = run_in(p, &["intentions", "resume"]).ok().stdout;
    assert!(text.starts_with("2 pending intentions"), "{text}");
    run_in(p, &["intentions", "done", &id(&high)]).ok();
    let again = run_in(p, &["intentions", "done", &id(&high)]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    let gone = run_in(
        p,
        &[
            "intentions",
            "abandon",
            &id(&low),
            "--reason",
            "moved to the wiki",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(gone["status"], "abandoned");
    let pending = run_in(p, &["intentions", "list", "--status", "pending", "--json"])
        .ok()
        .json();
    assert_eq!(pending["intentions"].as_array().unwrap().len(), 0);

    let first = run_in(
        p,
        &[
            "beliefs",
            "add",
            "The API is fast",
            "--domain",
            "perf",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(first["contradictions"].as_array().unwrap().len(), 0);
    let second = run_in(
        p,
        &[
            "beliefs",
            "add",
            "The API is slow",
            "--domain",
            "perf",
            "--json",
        ],
    )
    .ok()
    .json();
    let found = second["contradictions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{second}");
    assert_eq!(found[0]["kind"], "opposite");
    let text = run_in(p, &["beliefs", "contradictions", "--status", "open"])
        .ok()
        .stdout;
    assert!(
        text.contains("The API is fast") && text.contains("opposite"),
        "{text}"
    );
    let resolved = run_in(
        p,
        &[
            "beliefs",
            "resolve",
            &id(&found[0]),
            "--keep",
            &id(&second["belief"]),
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(resolved["superseded"]["id"], first["belief"]["id"]);
    let bad = run_in(p, &["beliefs", "add", "x", "--confidence", "2"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("confidence"), "{}", bad.stderr);

    let c1 = run_in(
        p,
        &[
            "claims",
            "add",
            "It rains",
            "--confidence",
            "0.75",
            "--json",
        ],
    )
    .ok()
    .json();
    let c2 = run_in(
        p,
        &[
            "claims",
            "add",
            "It snows",
            "--confidence",
            "0.25",
            "--json",
        ],
    )
    .ok()
    .json();
    run_in(p, &["claims", "verify", &id(&c1), "--correct"]).ok();
    run_in(
        p,
        &["claims", "verify", &id(&c2), "--wrong", "--notes", "dry"],
    )
    .ok();
    let cal = run_in(p, &["claims", "calibration", "--json"]).ok().json();
    // Brier by hand: (0.25² + 0.25²) / 2.
    assert_eq!(cal["claims"], 2);
    assert!(
        (cal["brier"].as_f64().unwrap() - 0.0625).abs() < 1e-9,
        "{cal}"
    );
    let text = run_in(p, &["claims", "calibration"]).ok().stdout;
    assert!(
        text.contains("Brier 0.062") || text.contains("Brier 0.063"),
        "{text}"
    );
    let neither = run_in(p, &["claims", "verify", &id(&c1)]);
    assert_ne!(neither.code, 0);

    // A concept's history, the growth report and snapshots of the graph's shape.
    let before = run_in(p, &["snapshots", "create", "--label", "empty", "--json"])
        .ok()
        .json();
    assert_eq!(before["concepts"], 0);
    for _ in 0..5 {
        learn(
            p,
            "The Falcon rocket uses Merlin engines.",
            "Falcon and Merlin again.",
            &[],
        );
    }
    let t = run_in(p, &["concepts", "falcon", "--timeline", "--json"])
        .ok()
        .json();
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "created", "{t}");
    assert!(
        kinds.contains(&"linked") && kinds.contains(&"strengthened"),
        "{t}"
    );
    let text = run_in(p, &["concepts", "falcon", "--timeline"]).ok().stdout;
    assert!(text.contains("strengthened merlin (0.50)"), "{text}");
    let grown = run_in(p, &["growth", "--json"]).ok().json();
    assert_eq!(grown["memories"], 10);
    assert_eq!(grown["most_active"][0]["mentions"], 10, "{grown}");
    let none = run_in(p, &["growth", "--since", "2999-01-01", "--json"])
        .ok()
        .json();
    assert_eq!(none["memories"], 0);

    // Every write is in the tenant's event log.
    let events = run_in(p, &["events", "--json"]).ok().stdout;
    for kind in [
        "intention.saved",
        "belief.saved",
        "contradiction.saved",
        "claim.saved",
    ] {
        assert!(events.contains(kind), "{kind}: {events}");
    }
}
