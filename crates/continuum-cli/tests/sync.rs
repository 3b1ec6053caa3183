//! Sync the way users run it: a team server (`continuum serve` on PostgreSQL) and two laptops
//! (SQLite stores) that learn while the server is down, then `continuum sync` each twice; and
//! `kill -9` of a node during a push and of the server during a pull. Needs
//! CONTINUUM_TEST_POSTGRES_URL (CI sets it).

mod common;

use common::pg::{Schema, base_url};
use common::{Server, continuum, json, ok, serve_with};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A laptop: a SQLite store in its own directory, syncing with the server as the key's tenant.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Value {
        json(self.dir.path(), args, &[])
    }

    fn learn(&self, user: &str, assistant: &str, session: &str) {
        self.run(&[
            "learn",
            "--user",
            user,
            "--assistant",
            assistant,
            "--session",
            session,
        ]);
    }

    fn sync(&self, remote: &str, key: &str) -> Value {
        json(
            self.dir.path(),
            &["--remote", remote, "sync"],
            &[("CONTINUUM_REMOTE_KEY", key)],
        )
    }
}

/// Everything a store holds for the tenant, comparable across stores: the export's records
/// but the header, sorted.
fn export(data_dir: &Path, global: &[&str]) -> Vec<String> {
    let out = ok(data_dir, &[global, &["export"]].concat(), &[]);
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| !l.contains("\"type\":\"header\""))
        .map(|l| {
            // Vectors are not synced, and there are none here; key order is stable.
            let v: Value = serde_json::from_str(l).unwrap();
            v.to_string()
        })
        .collect();
    lines.sort();
    lines
}

fn recall_ids(data_dir: &Path, global: &[&str], query: &str) -> Vec<String> {
    let r = json(
        data_dir,
        &[global, &["recall", query, "--limit", "10"]].concat(),
        &[],
    );
    r["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The server: `continuum serve` on the PostgreSQL schema, with a write key for tenant `team`.
fn start_server(dir: &Path, store: &str) -> (Server, String) {
    serve_with(dir, &["--store", store, "--tenant", "team"], &[])
}

/// A new key of `scope` for the store `global` names (its secret).
fn new_key(dir: &Path, global: &[&str], scope: &str) -> String {
    json(
        dir,
        &[global, &["keys", "create", "--scope", scope]].concat(),
        &[],
    )["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn write_key(dir: &Path, store: &str) -> String {
    new_key(dir, &["--store", store, "--tenant", "team"], "write")
}

fn id_of_content(node: &Node, needle: &str) -> String {
    let list = node.run(&["list", "--limit", "100"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no memory containing {needle:?} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_laptops_and_a_postgres_server_converge_after_working_offline() {
    let Some(base) = base_url() else { return };
    let schema = Schema::new(&base);
    let sdir = tempfile::tempdir().unwrap();
    let key = write_key(sdir.path(), &schema.url);
    let (a, b) = (Node::new(), Node::new());

    // The server is not running yet: a sync fails clearly and the failure is kept.
    let down = continuum(
        a.dir.path(),
        &["--remote", "http://127.0.0.1:9", "sync"],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    );
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(!err.contains(&key), "the key never shows in an error");
    let st = json(
        a.dir.path(),
        &[
            "--remote",
            "http://127.0.0.1:9",
            "sync",
            "status",
            "--offline",
        ],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    );
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached")
    );

    // First contact: A's memories reach B through the server.
    let (server, url) = start_server(sdir.path(), &schema.url);
    a.learn(
        "We deploy Kafka on Kubernetes",
        "Kafka brokers run on three nodes",
        "s-a1",
    );
    a.learn(
        "Redis caches the Kafka offsets",
        "We decided to use Postgres for billing",
        "s-a1",
    );
    a.sync(&url, &key);
    b.sync(&url, &key);
    let shared_id = id_of_content(&b, "Kafka brokers run on three nodes");
    drop(server);

    // Offline: both learn (overlapping concepts), A supersedes, B forgets a memory A has and
    // a session of its own.
    a.learn(
        "Kafka and Redis need monitoring",
        "Grafana watches Kafka and Redis",
        "s-a2",
    );
    let old = a.run(&["remember", "The office is in Lyon", "--source", "fact"]);
    a.run(&[
        "supersede",
        old["id"].as_str().unwrap(),
        "The office moved to Nantes",
        "--source",
        "fact",
    ]);
    b.learn(
        "Kubernetes runs Redis too",
        "Redis on Kubernetes needs persistent volumes",
        "s-b1",
    );
    b.learn(
        "Temporary notes about Zookeeper",
        "Zookeeper is being removed",
        "s-b2",
    );
    b.run(&["forget", &shared_id]);
    b.run(&["forget", "--session", "s-b2"]);

    // Back online: each syncs twice.
    let (server, url) = start_server(sdir.path(), &schema.url);
    for _ in 0..2 {
        a.sync(&url, &key);
        b.sync(&url, &key);
    }
    let second = b.sync(&url, &key);
    assert_eq!(second["pushed"], 0, "{second}");
    assert_eq!(second["pulled"], 0, "{second}");
    assert_eq!(second["level"], true);
    drop(server);

    let on_server = ["--store", schema.url.as_str(), "--tenant", "team"];
    let (ea, eb, es) = (
        export(a.dir.path(), &[]),
        export(b.dir.path(), &[]),
        export(sdir.path(), &on_server),
    );
    assert!(ea.iter().any(|l| l.contains("Nantes")));
    assert!(
        !ea.iter()
            .any(|l| l.contains("Kafka brokers run on three nodes"))
    );
    assert!(!ea.iter().any(|l| l.contains("Zookeeper")));
    assert!(ea.iter().any(|l| l.contains("persistent volumes")));
    assert_eq!(
        ea, eb,
        "A and B hold the same memories, links and decisions"
    );
    assert_eq!(ea, es, "and so does the server");
    for q in [
        "where does Kafka run",
        "Redis",
        "office",
        "billing decision",
    ] {
        let ra = recall_ids(a.dir.path(), &[], q);
        assert!(!ra.is_empty(), "{q}");
        assert_eq!(ra, recall_ids(b.dir.path(), &[], q), "{q}");
        assert_eq!(ra, recall_ids(sdir.path(), &on_server, q), "{q}");
    }
    let st = json(
        a.dir.path(),
        &["--remote", &url, "sync", "status", "--offline"],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    );
    assert_eq!(st["waiting_push"], 0, "{st}");
    assert!(st["last_success"].is_string());
    assert!(st["last_error"].is_null());
}

fn turns_file(dir: &Path, n: usize, tag: &str) -> std::path::PathBuf {
    use std::io::Write;
    let p = dir.join(format!("{tag}.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..n {
        writeln!(
            f,
            "{}",
            serde_json::json!({
                "user_message": format!("{tag} question {i} about Kafka topic t{}", i % 97),
                "ai_response": format!("{tag} answer {i}: Redis shard r{} holds it", i % 89),
                "session_id": format!("{tag}-{}", i / 50),
            })
        )
        .unwrap();
    }
    p
}

fn memories(data_dir: &Path, global: &[&str]) -> u64 {
    json(data_dir, &[global, &["stats"]].concat(), &[])["memories"]
        .as_u64()
        .unwrap()
}

/// Starts `continuum sync` and kills it with SIGKILL once `ready` says so (or it ends).
fn kill_when(data_dir: &Path, args: &[&str], key: &str, ready: impl Fn() -> bool) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("CONTINUUM_REMOTE_KEY", key)
        .env_remove("CONTINUUM_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            return false;
        }
        if ready() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_during_a_push_or_a_pull_loses_nothing_and_doubles_nothing() {
    let Some(base) = base_url() else { return };
    let schema = Schema::new(&base);
    let sdir = tempfile::tempdir().unwrap();
    let key = write_key(sdir.path(), &schema.url);
    let on_server = ["--store", schema.url.as_str(), "--tenant", "team"];
    let (a, b) = (Node::new(), Node::new());
    let file = turns_file(a.dir.path(), 3000, "a");
    ok(
        a.dir.path(),
        &["import", "--turns", file.to_str().unwrap()],
        &[],
    );
    let total = memories(a.dir.path(), &[]);
    assert_eq!(total, 6000);

    // Kill A while its push is under way (the server holds some but not all).
    let (server, url) = start_server(sdir.path(), &schema.url);
    let store_url = schema.url.clone();
    let sd = sdir.path().to_path_buf();
    let killed = kill_when(a.dir.path(), &["--remote", &url, "sync"], &key, || {
        let n = memories(&sd, &["--store", &store_url, "--tenant", "team"]);
        n > 0 && n < 6000
    });
    let mid = memories(sdir.path(), &on_server);
    eprintln!("push killed: {killed}, server held {mid} of {total}");
    a.sync(&url, &key);
    assert_eq!(memories(sdir.path(), &on_server), total);
    assert_eq!(export(a.dir.path(), &[]), export(sdir.path(), &on_server));

    // Kill the server while B pulls; B's sync fails; a restarted server finishes the pull.
    let bdir = b.dir.path().to_path_buf();
    let mut server = server;
    let started = Instant::now();
    let mut sync = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(&bdir)
        .args(["--remote", &url, "sync"])
        .env("CONTINUUM_REMOTE_KEY", &key)
        .env_remove("CONTINUUM_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut killed_server = false;
    loop {
        if sync.try_wait().unwrap().is_some() {
            break;
        }
        // B's store exists once the first page was applied.
        if !killed_server && bdir.join("continuum.db").exists() && memories(&bdir, &[]) > 0 {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            killed_server = true;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = sync.wait_with_output().unwrap();
    let got = memories(&bdir, &[]);
    eprintln!(
        "server killed during the pull: {killed_server}, B held {got} of {total}; sync ok: {}",
        out.status.success()
    );
    if killed_server && got < total {
        assert!(!out.status.success());
    }
    drop(server);
    let (_server, url) = start_server(sdir.path(), &schema.url);
    b.sync(&url, &key);
    assert_eq!(memories(b.dir.path(), &[]), total);
    assert_eq!(export(b.dir.path(), &[]), export(sdir.path(), &on_server));
}

#[test]
fn serve_syncs_in_the_background_and_an_unreachable_remote_blocks_nothing() {
    // The team server, on SQLite here.
    let sdir = tempfile::tempdir().unwrap();
    let key = new_key(sdir.path(), &["--tenant", "team"], "write");
    let (_team, team_url) = serve_with(sdir.path(), &["--tenant", "team"], &[]);
    let team_key = new_key(sdir.path(), &["--tenant", "team"], "admin");

    // A laptop running `serve` with a remote: what its API learns reaches the team server.
    let a = Node::new();
    let a_key = new_key(a.dir.path(), &[], "admin");
    let (_laptop, url) = serve_with(
        a.dir.path(),
        &[
            "--remote",
            &team_url,
            "--remote-key",
            &key,
            "--sync-interval-secs",
            "1",
        ],
        &[],
    );
    let (status, body) = common::request(&url, "GET", "/v1/ready", "", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sync\""), "{body}");
    let (status, body) = common::request(
        &url,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {a_key}\r\n"),
        r#"{"user_message": "Background sync carries this note", "ai_response": "Noted"}"#,
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let started = Instant::now();
    loop {
        let (_, found) = common::request(
            &team_url,
            "GET",
            "/v1/memories?limit=10",
            &format!("X-API-Key: {team_key}\r\n"),
            "",
        );
        if found.contains("Background sync carries this note") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the note did not reach the team server: {found}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A laptop whose remote is down: its API answers at once, the job keeps running.
    let b = Node::new();
    let b_key = new_key(b.dir.path(), &[], "admin");
    let (_down, burl) = serve_with(
        b.dir.path(),
        &[
            "--remote",
            "http://127.0.0.1:9",
            "--remote-key",
            "ck_unused",
            "--sync-interval-secs",
            "1",
        ],
        &[],
    );
    let t0 = Instant::now();
    let (status, _) = common::request(
        &burl,
        "POST",
        "/v1/learn",
        &format!("X-API-Key: {b_key}\r\n"),
        r#"{"user_message": "Written while the remote is down", "ai_response": "Noted"}"#,
    );
    assert!(status == 200 || status == 201);
    eprintln!("write with the remote down took {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(1500));
    let (_, ready) = common::request(&burl, "GET", "/v1/ready", "", "");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert!(
        ready["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "sync" && j["state"] == "running"),
        "{ready}"
    );
}

fn tls_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../continuum-server/tests/tls")
        .join(name)
}

#[test]
fn sync_over_tls_trusts_the_remote_ca_given_and_refuses_an_unknown_certificate() {
    let sdir = tempfile::tempdir().unwrap();
    let key = new_key(sdir.path(), &["--tenant", "team"], "write");
    let (cert, tkey) = (tls_fixture("server-a.pem"), tls_fixture("server-a.key"));
    let (_server, url) = serve_with(
        sdir.path(),
        &["--tenant", "team"],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            tkey.to_str().unwrap(),
        ],
    );
    assert!(url.starts_with("https://"), "{url}");
    let a = Node::new();
    a.run(&["remember", "Sent over TLS", "--source", "note"]);
    // The test CA is not among the system roots: refused, and nothing moved.
    let out = continuum(
        a.dir.path(),
        &["--remote", &url, "sync"],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be reached"), "{err}");
    let ca = tls_fixture("ca.pem");
    let r = json(
        a.dir.path(),
        &[
            "--remote",
            &url,
            "--remote-ca",
            ca.to_str().unwrap(),
            "sync",
        ],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    );
    assert_eq!(r["pushed"], 1, "{r}");
    let held = json(sdir.path(), &["--tenant", "team", "stats"], &[])["memories"]
        .as_u64()
        .unwrap();
    assert_eq!(held, 1);
}

#[test]
fn a_copied_store_given_a_new_node_id_syncs_as_a_node_of_its_own() {
    // The server on SQLite here: this is about the laptops.
    let server_dir = tempfile::tempdir().unwrap();
    let key = new_key(server_dir.path(), &["--tenant", "team"], "write");
    let (_server, url) = serve_with(server_dir.path(), &["--tenant", "team"], &[]);
    let a = Node::new();
    a.learn("Kafka has three brokers", "Three brokers it is", "s1");
    a.sync(&url, &key);
    // A copy of A's store file, made by hand, renewed before it syncs.
    let b = Node::new();
    std::fs::copy(
        a.dir.path().join("continuum.db"),
        b.dir.path().join("continuum.db"),
    )
    .unwrap();
    let before = json(
        b.dir.path(),
        &["--remote", &url, "sync", "status", "--offline"],
        &[("CONTINUUM_REMOTE_KEY", &key)],
    )["node"]
        .clone();
    let r = b.run(&["sync", "renew-node-id"]);
    assert_eq!(r["previous"], before);
    assert_ne!(r["node"], before);
    // Both write, both sync (twice, so each gets the other's).
    a.learn("Redis keeps sessions", "Sessions go to Redis", "s2");
    b.learn("Postgres holds billing", "Billing stays in Postgres", "s3");
    for _ in 0..2 {
        a.sync(&url, &key);
        b.sync(&url, &key);
    }
    let (ea, eb) = (export(a.dir.path(), &[]), export(b.dir.path(), &[]));
    assert_eq!(ea, eb, "both hold the same");
    assert_eq!(memories(a.dir.path(), &[]), 6, "each turn once: {ea:?}");
    assert_eq!(
        memories(server_dir.path(), &["--tenant", "team"]),
        6,
        "the server holds each turn once"
    );
}
