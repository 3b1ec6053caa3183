//! Retention as an operator runs it: a dry run lists exactly what a run then forgets; the
//! forgotten memories leave search, export and the store's file; the run is audited.

mod common;

use common::cli;
use serde_json::Value;
use std::process::Command;

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(dir, &all)).unwrap()
}

#[test]
fn a_dry_run_lists_what_the_run_forgets_and_nothing_else_goes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = "2020-03-01";
    for (tenant, thinking, at) in [
        ("acme", "Pondering the Gribblethorpe migration", Some(old)),
        ("acme", "Thinking about today's standup", None),
        ("beta", "Recalling the Wumpleton contract", Some(old)),
    ] {
        let mut args = vec![
            "--tenant",
            tenant,
            "learn",
            "--user",
            "question",
            "--assistant",
            "answer",
            "--thinking",
            thinking,
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        cli(d, &args);
    }
    let old_thinking: Vec<String> = ["acme", "beta"]
        .iter()
        .map(|t| {
            let page = json(
                d,
                &[
                    "--tenant",
                    t,
                    "list",
                    "--source",
                    "thinking",
                    "--until",
                    "2021-01-01",
                ],
            );
            page["items"][0]["id"].as_str().unwrap().to_string()
        })
        .collect();

    let dry = json(
        d,
        &[
            "--retention",
            "thinking=90d",
            "retention",
            "run",
            "--dry-run",
        ],
    );
    assert_eq!(dry["dry_run"], true);
    let mut listed: Vec<String> = dry["hits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
        })
        .collect();
    listed.sort();
    let mut expected = old_thinking.clone();
    expected.sort();
    assert_eq!(
        listed, expected,
        "exactly the old thinking, in every tenant: {dry}"
    );
    assert_eq!(
        json(d, &["--tenant", "acme", "stats"])["memories"],
        6,
        "a dry run changes nothing"
    );

    let run = json(d, &["--retention", "thinking=90d", "retention", "run"]);
    assert_eq!(run["forgotten"], 2, "{run}");
    assert_eq!(json(d, &["--tenant", "acme", "stats"])["memories"], 5);
    let hits = json(d, &["--tenant", "acme", "search", "Gribblethorpe"]);
    assert_eq!(hits.as_array().unwrap().len(), 0, "{hits}");
    let kept = json(d, &["--tenant", "acme", "search", "standup"]);
    assert_eq!(
        kept.as_array().unwrap().len(),
        1,
        "recent thinking stays: {kept}"
    );
    let export = cli(d, &["--tenant", "beta", "export"]);
    assert!(!export.contains("Wumpleton"), "{export}");
    let db = std::fs::read(d.join("continuum.db")).unwrap();
    let db = String::from_utf8_lossy(&db).to_lowercase();
    assert!(
        !db.contains("gribblethorpe") && !db.contains("wumpleton"),
        "the words left the file"
    );
    let audit = cli(d, &["--json", "audit", "tail", "--limit", "100"]);
    assert_eq!(audit.matches("retention.applied").count(), 2, "{audit}");

    // A second run finds nothing; a bad rule is refused.
    assert_eq!(
        json(d, &["--retention", "thinking=90d", "retention", "run"])["forgotten"],
        0
    );
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d)
        .args(["--retention", "dreams=90d", "retention", "run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a source"));
}
