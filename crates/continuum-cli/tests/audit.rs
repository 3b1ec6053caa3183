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

/// Rewrites the chain from entry `from` on, each hash recomputed, so the chain verifies on
/// its own (what someone with write access to the file could do).
fn rewrite_chain_from(db: &rusqlite::Connection, from: i64) {
    let rows: Vec<(i64, String, String)> = db
        .prepare("SELECT seq, body, prev_hash FROM audit_log WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = rows[0].2.clone();
    for (i, (seq, body, _)) in rows.into_iter().enumerate() {
        let body = if i == 0 {
            body.replace("\"key.created\"", "\"key.revoked\"")
        } else {
            body
        };
        let hash = continuum_core::audit::chain_hash(&prev, &body).unwrap();
        db.execute(
            "UPDATE audit_log SET body = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![body, prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
}

#[test]
fn signed_checkpoints_find_a_cut_tail_and_a_rewritten_chain() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("elsewhere");
    let (server, _url) = serve_with(
        dir.path(),
        &[],
        &[
            "--audit-checkpoint-dir",
            checkpoints.to_str().unwrap(),
            "--audit-checkpoint-every",
            "1",
            "--audit-checkpoint-secs",
            "1",
        ],
    );
    for i in 0..4 {
        cli(
            dir.path(),
            &["--tenant", &format!("t{i}"), "keys", "create"],
        );
    }
    // The job signs within a second or two of the entries.
    let latest = checkpoints.join("latest.txt");
    let started = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&latest)
            && text.lines().nth(1) == Some("5")
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "no checkpoint of 5 entries: {}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(server);
    let public = cli(dir.path(), &["audit", "public-key"]).trim().to_string();
    assert!(public.starts_with("continuum+"), "{public}");
    let out = continuum(
        dir.path(),
        &[
            "audit",
            "verify",
            "--checkpoint",
            latest.to_str().unwrap(),
            "--public-key",
            &public,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("holds the checkpoint"));

    // A checkpoint signed by another key is refused.
    let other = tempfile::tempdir().unwrap();
    let stranger = cli(other.path(), &["audit", "public-key"])
        .trim()
        .to_string();
    let out = continuum(
        dir.path(),
        &[
            "audit",
            "verify",
            "--checkpoint",
            latest.to_str().unwrap(),
            "--public-key",
            &stranger,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The chain rewritten from entry 3 on verifies by itself, but not against the checkpoint.
    let db = rusqlite::Connection::open(dir.path().join("continuum.db")).unwrap();
    rewrite_chain_from(&db, 3);
    let out = continuum(dir.path(), &["audit", "verify"]);
    assert!(
        out.status.success(),
        "the rewritten chain is consistent in itself"
    );
    let out = continuum(
        dir.path(),
        &["audit", "verify", "--checkpoint", latest.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rewritten"));

    // The tail cut off: the chain is still consistent, the checkpoint says entries are gone.
    db.execute("DELETE FROM audit_log WHERE seq >= 4", [])
        .unwrap();
    drop(db);
    assert!(continuum(dir.path(), &["audit", "verify"]).status.success());
    let out = continuum(
        dir.path(),
        &["audit", "verify", "--checkpoint", latest.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut") && err.contains("records 5 entries, the log holds 3"),
        "{err}"
    );
}
