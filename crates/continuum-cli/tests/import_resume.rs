//! `import --turns` run again stores nothing twice: a turn's identity is its `id`, else a hash
//! of its session, time and texts. An import killed with SIGKILL midway and run again ends with
//! every turn exactly once; a third run skips them all.

mod common;

use common::{cli, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn history(path: &std::path::Path, turns: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..turns {
        // Half with a time, half without (identified by session and texts alone).
        let time = if i % 2 == 1 {
            r#","timestamp":"2026-01-01T00:00:00Z""#
        } else {
            ""
        };
        writeln!(
            f,
            r#"{{"user_message":"question {i} about topic {} and service {}","ai_response":"answer {i} mentions Redis {}","session_id":"s{}"{time}}}"#,
            i % 97,
            i % 13,
            i % 7,
            i % 50
        )
        .unwrap();
    }
}

fn memories(d: &std::path::Path) -> u64 {
    json(d, &["stats"], &[])["memories"].as_u64().unwrap()
}

#[test]
fn an_import_killed_midway_and_run_again_stores_every_turn_once() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let file = d.path().join("history.jsonl");
    const TURNS: usize = 200_000;
    history(&file, TURNS);

    let mut first = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(&data)
        .args(["import", "--turns", file.to_str().unwrap()])
        .env_remove("CONTINUUM_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches are in, well before the end.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let n = if data.join("continuum.db").exists() {
            memories(&data)
        } else {
            0
        };
        if n >= 20_000 {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no progress");
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let stored = memories(&data);
    assert!(stored < 2 * TURNS as u64, "killed before the end: {stored}");
    assert_eq!(stored % 2, 0, "whole turns only: {stored}");

    let again = json(&data, &["import", "--turns", file.to_str().unwrap()], &[]);
    let t = &again["turns"];
    assert_eq!(t["skipped"].as_u64().unwrap(), stored / 2, "{again}");
    assert_eq!(
        t["turns"].as_u64().unwrap() + t["skipped"].as_u64().unwrap(),
        TURNS as u64,
        "{again}"
    );
    assert_eq!(memories(&data), 2 * TURNS as u64);

    let third = json(&data, &["import", "--turns", file.to_str().unwrap()], &[]);
    assert_eq!(third["turns"]["turns"], 0, "{third}");
    assert_eq!(third["turns"]["skipped"], TURNS as u64, "{third}");
    assert_eq!(memories(&data), 2 * TURNS as u64);
}

#[test]
fn a_turn_is_known_by_its_id_or_by_its_content() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("h.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"user_message":"We use Redis for caching","ai_response":"Noted.","session_id":"a"}"#,
            "\n",
            r#"{"id":"msg-1","user_message":"Deploys are on Tuesday","ai_response":"Noted."}"#,
            "\n",
            // The first line again: the same turn.
            r#"{"user_message":"We use Redis for caching","ai_response":"Noted.","session_id":"a"}"#,
            "\n",
            // Same texts, another session: another turn.
            r#"{"user_message":"We use Redis for caching","ai_response":"Noted.","session_id":"b"}"#,
            "\n",
            // Another text under an id already seen: the id decides.
            r#"{"id":"msg-1","user_message":"Deploys moved to Wednesday","ai_response":"Noted."}"#,
            "\n",
        ),
    )
    .unwrap();
    let data = d.path().join("data");
    let out = json(&data, &["import", "--turns", file.to_str().unwrap()], &[]);
    assert_eq!(
        (&out["turns"]["turns"], &out["turns"]["skipped"]),
        (&3.into(), &2.into()),
        "{out}"
    );
    let text = cli(&data, &["import", "--turns", file.to_str().unwrap()]);
    assert!(
        text.contains("imported 0 turns (5 already stored, skipped)"),
        "{text}"
    );
    assert_eq!(memories(&data), 6);

    // A bad id is a bad line, reported with its number; nothing is imported.
    std::fs::write(
        &file,
        concat!(
            r#"{"user_message":"ok","ai_response":"fine"}"#,
            "\n",
            r#"{"id":7,"user_message":"x","ai_response":"y"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(&data)
        .args(["import", "--turns", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("id must be a string"),
        "{err}"
    );
    assert_eq!(memories(&data), 6);
}

/// The text index file from the command line: a one-shot recall builds the index and writes
/// the file, the next reads it (no rebuild) and answers the same, `doctor` shows it, and
/// `--no-index-files` neither reads nor writes one.
#[test]
fn a_second_recall_reads_the_index_file_the_first_wrote() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let file = d.path().join("history.jsonl");
    history(&file, 400);
    let env = [("CONTINUUM_INDEX_FILE_MIN_MEMORIES", "500")];
    common::ok(&data, &["import", "--turns", file.to_str().unwrap()], &env);
    let recall = |extra: &[&str]| {
        let mut args = vec![
            "--log-level",
            "info",
            "recall",
            "topic 5 and service 3",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = common::continuum(&data, &args, &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<String> = v["memories"]
            .as_array()
            .unwrap()
            .iter()
            // Scores move with the clock (recency) between runs; the ranking does not.
            .map(|m| m["id"].to_string())
            .collect();
        (ids, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let idx = data.join("continuum.db-index").join(format!(
        "text-{}.idx",
        "default"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let (first, log) = recall(&["--no-index-files"]);
    assert!(!idx.exists(), "--no-index-files writes none: {log}");
    let (second, log) = recall(&[]);
    assert!(log.contains("text index written to its file"), "{log}");
    assert!(idx.exists());
    let (third, log) = recall(&[]);
    assert!(log.contains("text index read from its file"), "{log}");
    assert!(
        !log.contains("written"),
        "nothing changed, nothing written: {log}"
    );
    assert_eq!(second, first);
    assert_eq!(third, first);
    let doctor = json(&data, &["doctor"], &env);
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "text index file")
        .unwrap()
        .clone();
    assert!(
        check["detail"].as_str().unwrap().contains("text-"),
        "{check}"
    );

    // A server reads the file as it starts, before any recall asks for the index.
    let (server, _url) = common::serve_with_env(&data, &[], &[], &env);
    let waited = Instant::now();
    while !server.log().contains("text indexes loaded") {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log().contains("text index read from its file"));
}
