//! `--store libsql+http://…?replica=PATH` end to end, the way a user runs it: separate
//! `continuum` processes on two replicas of one real Turso sync server (`tursodb
//! --sync-server`, from `CONTINUUM_TEST_TURSODB`; skipped with a reason when unset).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Primary {
    bin: PathBuf,
    db: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Primary {
    fn start(bin: &Path, dir: &Path) -> Primary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = Primary {
            bin: bin.into(),
            db: dir.join("primary.db"),
            port,
            child: None,
        };
        p.restart();
        p
    }

    fn restart(&mut self) {
        self.stop();
        self.child = Some(
            Command::new(&self.bin)
                .arg(&self.db)
                .arg("--sync-server")
                .arg(format!("127.0.0.1:{}", self.port))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tursodb did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn store(&self, replica: &Path) -> String {
        format!(
            "libsql+http://127.0.0.1:{}?replica={}",
            self.port,
            replica.display()
        )
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command(store: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_continuum"));
    cmd.arg("--store").arg(store).args(args);
    for var in [
        "CONTINUUM_STORE",
        "CONTINUUM_DATA_DIR",
        "CONTINUUM_TENANT",
        "CONTINUUM_CONFIG",
        "CONTINUUM_REMOTE",
        "CONTINUUM_REMOTE_KEY",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // The per-user data directory is not used by a libSQL store; keep it out of $HOME anyway.
    cmd.env("XDG_DATA_HOME", std::env::temp_dir());
    cmd
}

fn run(store: &str, args: &[&str]) -> Output {
    command(store, args).output().unwrap()
}

fn ok(store: &str, args: &[&str]) -> String {
    let out = run(store, args);
    assert!(
        out.status.success(),
        "continuum {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(store: &str, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(store, &a)).unwrap()
}

fn ranking(store: &str, q: &str) -> Vec<String> {
    json(store, &["recall", q])["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn memories(store: &str) -> u64 {
    json(store, &["stats"])["memories"].as_u64().unwrap()
}

fn tursodb() -> Option<PathBuf> {
    match std::env::var("CONTINUUM_TEST_TURSODB") {
        Ok(p) if !p.is_empty() => Some(p.into()),
        _ => {
            eprintln!("skipped: CONTINUUM_TEST_TURSODB (tursodb with --sync-server) is not set");
            None
        }
    }
}

#[test]
fn two_replicas_in_separate_processes_share_memories_and_forgets() {
    let Some(bin) = tursodb() else { return };
    let d = tempfile::tempdir().unwrap();
    let primary = Primary::start(&bin, d.path());
    let a = primary.store(&d.path().join("a/continuum.db"));
    let b = primary.store(&d.path().join("b/continuum.db"));

    ok(
        &a,
        &[
            "learn",
            "--user",
            "Which queue do we use?",
            "--assistant",
            "We use Kafka for the order events.",
        ],
    );
    ok(
        &b,
        &[
            "learn",
            "--user",
            "Where do sessions live?",
            "--assistant",
            "Sessions live in Redis with a 30 minute TTL.",
        ],
    );
    // Each command pulls on open and pushes before it exits: B's next read has A's memory,
    // and A's has B's.
    assert_eq!(memories(&b), 4);
    assert_eq!(memories(&a), 4);
    for q in ["Kafka order events", "Redis sessions TTL"] {
        let ra = ranking(&a, q);
        assert!(!ra.is_empty(), "{q}");
        assert_eq!(ra, ranking(&b, q), "same ranking on both replicas for {q}");
    }

    // A forget on B disappears from A.
    let kafka = ranking(&b, "Kafka order events");
    ok(&b, &["forget", &kafka[0]]);
    assert!(!ranking(&a, "Kafka order events").contains(&kafka[0]));
    assert_eq!(memories(&a), 3);

    // `sync` and `sync status` act on the replica; doctor reports it.
    let r = json(&a, &["sync"]);
    assert_eq!(r["pushed"], true, "{r}");
    let s = json(&a, &["sync", "status"]);
    assert_eq!(s["behind"], false, "{s}");
    assert_eq!(s["remote_events"], s["remote_applied"], "{s}");
    assert!(s["primary_revision"].is_string(), "{s}");
    let doc = json(&a, &["doctor"]);
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "libSQL replica")
        .expect("doctor shows the replica")
        .clone();
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("level"),
        "{check}"
    );
}

#[test]
fn a_replica_keeps_working_without_its_primary_and_loses_nothing_to_kill_9() {
    let Some(bin) = tursodb() else { return };
    let d = tempfile::tempdir().unwrap();
    let mut primary = Primary::start(&bin, d.path());
    let a = primary.store(&d.path().join("a/continuum.db"));
    let b = primary.store(&d.path().join("b/continuum.db"));
    ok(
        &a,
        &[
            "learn",
            "--user",
            "Before the outage",
            "--assistant",
            "Grafana shows the latency.",
        ],
    );

    primary.stop();
    let out = run(
        &a,
        &[
            "learn",
            "--user",
            "During the outage",
            "--assistant",
            "Nomad restarted the workers.",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the libSQL replica is behind"), "{err}");
    assert!(!ranking(&a, "Nomad restarted workers").is_empty());
    let s = json(&a, &["sync", "status"]);
    assert_eq!(s["behind"], true, "{s}");
    let out = run(&a, &["sync"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wait to be pushed"),
        "{out:?}"
    );

    primary.restart();
    ok(&a, &["sync"]);
    assert_eq!(memories(&b), 4, "both turns arrived, once each");

    // An import killed with SIGKILL while it writes and pushes: what it committed locally
    // reaches the other replica after the next sync, each turn once.
    let file = d.path().join("turns.jsonl");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "{{\"user_message\":\"question {i} about service {}\",\"ai_response\":\"answer {i} names Postgres\"}}\n",
            i % 17
        ));
    }
    std::fs::write(&file, text).unwrap();
    let mut child = command(&a, &["import", "--turns", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let local = rusqlite_count(&d.path().join("a/continuum.db"));
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if rusqlite_count(&d.path().join("a/continuum.db")) > local + 200
            || child.try_wait().unwrap().is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress");
    }
    let killed_midway = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    eprintln!("import killed midway: {killed_midway}");
    // The import never reached its closing round: the next sync journals and pushes its
    // thousands of events. Kill that one mid-round too.
    let mut sync = command(&a, &["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let sync_killed = sync.try_wait().unwrap().is_none();
    let _ = sync.kill(); // SIGKILL
    sync.wait().unwrap();
    eprintln!("sync killed midway: {sync_killed}");
    ok(&a, &["sync"]);
    ok(&b, &["sync"]);
    let (ma, mb) = (memories(&a), memories(&b));
    assert!(ma > 4, "the import stored something before the kill");
    assert_eq!(ma, mb, "everything committed on A is on B, once");
    if killed_midway {
        assert!(ma < 4 + 40_000, "the kill stopped the import: {ma}");
    }
}

/// Memories in a store file, read without Continuum (so that no sync runs).
fn rusqlite_count(db: &Path) -> u64 {
    if !db.exists() {
        return 0;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); print(c.execute('select count(*) from memories').fetchone()[0])")
        .arg(db)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_bad_primary_or_url_is_a_clear_error_at_start() {
    let d = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!(
        "libsql+http://127.0.0.1:{port}?replica={}",
        d.path().join("r.db").display()
    );
    let out = run(&store, &["stats"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bootstrap the libSQL replica"), "{err}");

    let out = run(
        "libsql://edge.example?replica=x.db&authToken=s3cret",
        &["stats"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("must not hold the auth token") && !err.contains("s3cret"),
        "{err}"
    );
}

#[test]
fn serve_on_a_replica_syncs_in_the_background() {
    let Some(bin) = tursodb() else { return };
    let d = tempfile::tempdir().unwrap();
    let primary = Primary::start(&bin, d.path());
    let a = primary.store(&d.path().join("a/continuum.db"));
    let b = primary.store(&d.path().join("b/continuum.db"));
    let key = json(&a, &["keys", "create", "--scope", "write"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (server, url) = common::serve_with(
        d.path(),
        &["--store", &a, "--libsql-sync-interval", "1"],
        &[],
    );
    // A one-shot command while serve holds the replica: it uses the local store.
    ok(
        &a,
        &[
            "learn",
            "--user",
            "Local note",
            "--assistant",
            "Written beside serve.",
        ],
    );
    let (status, body) = common::request(
        &url,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {key}\r\n"),
        r#"{"user_message": "Which region serves Oslo?", "ai_response": "The eu-north edge serves Oslo."}"#,
    );
    assert_eq!(status, 200, "{body}");
    // The job pushes soon after the write; B sees it without anyone running `sync` on A.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if memories(&b) == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B did not receive A's writes: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(!ranking(&b, "eu-north edge Oslo").is_empty());
    // And A's server pulls what B writes.
    ok(
        &b,
        &[
            "learn",
            "--user",
            "From B",
            "--assistant",
            "Vault rotates the Consul tokens.",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = common::request(
            &url,
            "POST",
            "/v1/recall",
            &format!("X-API-Key: {key}\r\n"),
            r#"{"message": "Vault Consul tokens"}"#,
        );
        assert_eq!(status, 200, "{body}");
        if body.contains("rotates the Consul tokens") {
            break;
        }
        assert!(Instant::now() < deadline, "A's server never saw B's write");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        server.log().contains("libSQL replica sync on"),
        "{}",
        server.log()
    );
}

#[test]
fn export_and_import_move_memories_between_sqlite_and_libsql() {
    let Some(bin) = tursodb() else { return };
    let d = tempfile::tempdir().unwrap();
    let primary = Primary::start(&bin, d.path());
    let sqlite_dir = d.path().join("sqlite");
    let sqlite = |args: &[&str]| common::ok(&sqlite_dir, args, &[]);
    for (u, ai) in [
        (
            "Which database runs staging?",
            "Staging runs PostgreSQL 16 on the blue cluster.",
        ),
        (
            "Who owns the billing service?",
            "Priya owns billing; Kenji is the backup.",
        ),
        (
            "What caches sessions?",
            "Redis caches sessions for thirty minutes.",
        ),
    ] {
        sqlite(&["learn", "--user", u, "--assistant", ai]);
    }
    let dump = d.path().join("dump.jsonl");
    sqlite(&["export", "--output", dump.to_str().unwrap()]);

    let a = primary.store(&d.path().join("a/continuum.db"));
    let b = primary.store(&d.path().join("b/continuum.db"));
    ok(&a, &["import", dump.to_str().unwrap()]);
    let rank_sqlite = |q: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(&sqlite(&["recall", "--json", q])).unwrap();
        v["memories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    for q in ["staging database", "billing owner", "session cache"] {
        let want = rank_sqlite(q);
        assert!(!want.is_empty());
        assert_eq!(ranking(&a, q), want, "libSQL replica = SQLite for {q}");
        assert_eq!(ranking(&b, q), want, "and the other replica too, for {q}");
    }
    // And back out of the replica into a fresh SQLite store.
    let dump2 = d.path().join("dump2.jsonl");
    ok(&b, &["export", "--output", dump2.to_str().unwrap()]);
    let back = d.path().join("back");
    common::ok(&back, &["import", dump2.to_str().unwrap()], &[]);
    assert_eq!(
        common::json(&back, &["stats"], &[])["memories"],
        serde_json::json!(6)
    );
}

/// A TLS front for the sync server (what a hosted primary looks like): terminates TLS with
/// the test certificate for 127.0.0.1 and localhost and forwards the bytes. Returns its port.
fn tls_front(to: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../continuum-server/tests/tls");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server-a.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-a.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
    });
    port
}

#[test]
fn libsql_scheme_speaks_tls_and_checks_the_certificate() {
    let Some(bin) = tursodb() else { return };
    let d = tempfile::tempdir().unwrap();
    let primary = Primary::start(&bin, d.path());
    let port = tls_front(primary.port);
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../continuum-server/tests/tls/ca.pem");
    let store = |name: &str| {
        format!(
            "libsql://localhost:{port}?replica={}",
            d.path().join(name).join("continuum.db").display()
        )
    };
    let with_ca = |s: &str, args: &[&str]| {
        let out = command(s, args)
            .env("SSL_CERT_FILE", &ca)
            .env("CONTINUUM_LIBSQL_AUTH_TOKEN", "tok-never-shown")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "continuum {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    with_ca(
        &store("a"),
        &[
            "learn",
            "--user",
            "Over TLS?",
            "--assistant",
            "Yes, Kafka over TLS.",
        ],
    );
    let v: Value =
        serde_json::from_str(&with_ca(&store("b"), &["recall", "--json", "Kafka TLS"])).unwrap();
    assert!(
        v["memories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["content"].as_str().unwrap().contains("Kafka over TLS")),
        "{v}"
    );
    let st = with_ca(&store("b"), &["stats"]);
    assert!(st.contains("libsql://localhost:"), "{st}");
    assert!(!st.contains("tok-never-shown"), "{st}");

    // Without the CA among the trusted roots the certificate is refused, clearly, at start.
    let out = command(&store("c"), &["stats"])
        .env("SSL_CERT_FILE", d.path().join("no-such-roots.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot bootstrap the libSQL replica") && err.contains("TLS certificate"),
        "{err}"
    );
}
