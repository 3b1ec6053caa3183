//! The audit log as an operator uses it: acts from several processes at once in one chain,
//! failed authentications against a running server recorded with their address, `audit
//! verify` (exit code 5 and the entry named once the file is edited), `tail` and the SIEM
//! export formats.

mod common;

use common::{cli, request, serve_with};
use serde_json::Value;
use std::process::Command;

fn continuum(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("CONTINUUM_CONFIG")
        .env_remove("CONTINUUM_TENANT")
        .output()
        .unwrap()
}

#[test]
fn acts_of_concurrent_processes_form_one_chain_that_verify_checks() {
    let dir = tempfile::tempdir().unwrap();
    // Two processes create keys at the same time.
    let writers: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|t| {
            let dir = dir.path().to_path_buf();
            let t = t.to_string();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let out = continuum(&dir, &["--tenant", &t, "keys", "create"]);
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // A server records the failed authentications it answers, with the client's address.
    let (server, url) = serve_with(dir.path(), &[], &[]);
    for _ in 0..3 {
        let (status, _) = request(
            &url,
            "GET",
            "/v1/stats",
            "X-API-Key: ck_0123456789ab_000000000000000000000000000000000000000000000000\r\n",
            "",
        );
        assert_eq!(status, 401);
    }
    // The audit writes happen off the request path: wait for them.
    let started = std::time::Instant::now();
    let entries = loop {
        let v: Value = serde_json::from_str(&format!(
            "[{}]",
            cli(dir.path(), &["--json", "audit", "tail", "--limit", "1000"])
                .trim()
                .lines()
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap();
        let failures = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "auth.failed")
            .count();
        if failures == 3 || started.elapsed().as_secs() > 20 {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    drop(server);
    let entries = entries.as_array().unwrap();
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("key.created"), 20);
    assert_eq!(count("server.started"), 1);
    assert_eq!(count("auth.failed"), 3);
    let failed = entries
        .iter()
        .find(|e| e["action"] == "auth.failed")
        .unwrap();
    assert_eq!(failed["source"], "127.0.0.1");
    assert_eq!(failed["details"]["key_prefix"], "0123456789ab");
    assert!(
        !entries
            .iter()
            .any(|e| e.to_string().contains("000000000000000000000000")),
        "no secret"
    );

    let v: Value = serde_json::from_str(&cli(dir.path(), &["--json", "audit", "verify"])).unwrap();
    assert_eq!(v["entries"], 24, "{v}");
    assert!(v["fault"].is_null(), "{v}");

    // SIEM formats: one line per entry.
    let syslog = cli(dir.path(), &["audit", "export", "--format", "syslog"]);
    assert_eq!(syslog.lines().count(), 24);
    assert!(
        syslog
            .lines()
            .all(|l| l.starts_with("<8") && l.contains(" continuum - ")),
        "{syslog}"
    );
    let cef = cli(
        dir.path(),
        &["audit", "export", "--format", "cef", "--since", "20"],
    );
    assert_eq!(cef.lines().count(), 4);
    assert!(
        cef.lines()
            .all(|l| l.starts_with("CEF:0|Continuum|Continuum|"))
    );
    let jsonl = cli(dir.path(), &["audit", "export"]);
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev_hash"], continuum_core::audit::GENESIS);

    // Someone edits an entry in the file: verify names it and fails.
    let db = rusqlite::Connection::open(dir.path().join("continuum.db")).unwrap();
    db.execute(
        "UPDATE audit_log SET body = replace(body, '\"alpha\"', '\"gamma\"') WHERE seq = (SELECT min(seq) FROM audit_log WHERE tenant = 'alpha')",
        [],
    )
    .unwrap();
    drop(db);
    let out = continuum(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("altered"), "{err}");
}
