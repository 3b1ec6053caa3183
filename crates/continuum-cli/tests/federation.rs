//! Federation across processes on loopback: a hub (`serve --federation-bind`) and two member
//! nodes, each its own data directory and process per command. Join with one-time tokens,
//! contribute through the anonymiser, query from the other node (results name the
//! contributing node, never a tenant), the contribution ratio refusing and then allowing, each
//! contribution applied once, and a revoked node refused.

mod common;

use common::{cli, serve_with};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn run(d: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .arg("--data-dir")
        .arg(d)
        .args(args)
        .env_remove("CONTINUUM_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(d: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = run(d, &all);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn token(hub: &Path) -> String {
    json_of(hub, &["federation", "invite", "--expires", "1h"])["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_hub_and_two_nodes_share_anonymised_knowledge() {
    let d = tempfile::tempdir().unwrap();
    let (hub, a, b, c) = (
        d.path().join("hub"),
        d.path().join("a"),
        d.path().join("b"),
        d.path().join("c"),
    );
    let init = json_of(
        &hub,
        &[
            "federation",
            "init",
            "--hub",
            "--name",
            "test",
            "--host",
            "127.0.0.1",
            "--host",
            "localhost",
        ],
    );
    assert_eq!(init["ca_fingerprint"].as_str().unwrap().len(), 64);
    let (server, _) = serve_with(
        &hub,
        &[],
        &[
            "--federation-bind",
            "127.0.0.1:0",
            "--federation-free-queries",
            "2",
        ],
    );
    let url = common::url_in(
        server
            .log()
            .lines()
            .find(|l| l.contains("federation hub at"))
            .expect("the hub's address in the log"),
        "https://",
    );

    // Join: one token per node, once.
    let (ta, tb) = (token(&hub), token(&hub));
    let ja = json_of(&a, &["federation", "join", &url, &ta]);
    let node_a = ja["node"].as_str().unwrap().to_string();
    let jb = json_of(&b, &["federation", "join", &url, &tb]);
    let node_b = jb["node"].as_str().unwrap().to_string();
    assert_ne!(node_a, node_b);
    let (ok, _, err) = run(&c, &["federation", "join", &url, &ta]);
    assert!(!ok && err.contains("used already"), "{err}");
    let (ok, _, err) = run(&c, &["federation", "join", &url, "cfjoin1.bogus.x"]);
    assert!(!ok && err.contains("not a join token"), "{err}");
    // The key files are private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [a.join("federation/node.key"), hub.join("federation/ca.key")] {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }

    // Node A's tenant learns facts (one with an e-mail address) and a conversation turn.
    for fact in [
        "Redis eviction with allkeys-lru suits the session cache best",
        "Write to jane.doe@example.com before changing the Redis eviction policy",
    ] {
        cli(
            &a,
            &["--tenant", "acme", "remember", fact, "--source", "fact"],
        );
    }
    cli(
        &a,
        &[
            "--tenant",
            "acme",
            "learn",
            "--user",
            "My private Redis password is hunter2hunter2",
            "--assistant",
            "Noted.",
        ],
    );
    // Nothing is shared until the tenant opts in.
    let (ok, _, err) = run(&a, &["--tenant", "acme", "federation", "contribute"]);
    assert!(!ok && err.contains("does not share"), "{err}");
    cli(&a, &["--tenant", "acme", "federation", "share", "on"]);
    let sent = json_of(&a, &["--tenant", "acme", "federation", "contribute"]);
    assert_eq!(sent["accepted"], 2, "{sent}");

    // Node B asks the pool: A's facts, named by A's node, cleaned, without the turn.
    let q = json_of(
        &b,
        &["federation", "query", "redis eviction", "--limit", "10"],
    );
    let hits = q["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{q}");
    for h in hits {
        assert_eq!(h["node"], node_a.as_str(), "{q}");
    }
    let text = q.to_string();
    assert!(
        text.contains("allkeys-lru") && text.contains("[email]"),
        "{text}"
    );
    assert!(
        !text.contains("jane.doe") && !text.contains("hunter2") && !text.contains("acme"),
        "{text}"
    );

    // Contribute to access: 2 free queries, then a ratio of 0.1 (B has contributed nothing).
    json_of(&b, &["federation", "query", "allkeys-lru"]);
    let (ok, _, err) = run(&b, &["federation", "query", "redis"]);
    assert!(!ok && err.contains("contribute 1 more item"), "{err}");
    cli(
        &b,
        &[
            "--tenant",
            "team",
            "remember",
            "Postgres VACUUM FULL rewrites the table",
            "--source",
            "fact",
        ],
    );
    cli(&b, &["--tenant", "team", "federation", "share", "on"]);
    let sent = json_of(&b, &["--tenant", "team", "federation", "contribute"]);
    assert_eq!(sent["accepted"], 1, "{sent}");
    let q = json_of(&b, &["federation", "query", "redis"]);
    assert_eq!(q["ledger"]["consumed"], 3, "{q}");
    // A sees B's contribution, named by B.
    let q = json_of(&a, &["federation", "query", "vacuum full"]);
    assert_eq!(q["hits"][0]["node"], node_b.as_str(), "{q}");

    // Each contribution once: A forgets its cursor (as if the acknowledgement was lost) and
    // sends again; the hub recognises it and the pool does not grow.
    let state = a.join("federation/state.json");
    let mut s: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    s["cursors"]["acme"] = 0.into();
    std::fs::write(&state, s.to_string()).unwrap();
    let again = json_of(&a, &["--tenant", "acme", "federation", "contribute"]);
    assert_eq!(again["accepted"], 0, "{again}");
    let q = json_of(&a, &["federation", "query", "redis eviction"]);
    assert_eq!(q["hits"].as_array().unwrap().len(), 2, "{q}");

    // --since skips what came before it: a fact learned now, contributed from a later
    // position, is not sent.
    cli(
        &a,
        &[
            "--tenant",
            "acme",
            "remember",
            "Zookeeper is retired in favour of KRaft",
            "--source",
            "fact",
        ],
    );
    let skipped = json_of(
        &a,
        &[
            "--tenant",
            "acme",
            "federation",
            "contribute",
            "--since",
            "999999",
        ],
    );
    assert_eq!(skipped["sent"], 0, "{skipped}");
    let q = json_of(&b, &["federation", "query", "kraft zookeeper"]);
    assert_eq!(q["hits"].as_array().unwrap().len(), 0, "{q}");

    // Status names the hub, the tier and the ledger.
    let st = json_of(&a, &["federation", "status"]);
    assert_eq!(st["standing"]["node"], node_a.as_str());
    assert_eq!(st["standing"]["ledger"]["contributed"], 2, "{st}");
    assert_eq!(st["standing"]["members"], 2, "{st}");
    assert!(st["certificate_expires_at"].is_string(), "{st}");
    let queries = st["standing"]["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "query")
        .unwrap()
        .clone();
    assert_eq!(queries["per_minute"], 30, "{st}");
    assert!(
        queries["available"].as_u64().unwrap() < 30,
        "A has queried this minute: {st}"
    );

    // A third node with nothing to give: two free queries, then refused, until the operator
    // grants it unlimited access (signed with the CA's key; no constant or header does).
    let tc = token(&hub);
    let jc = json_of(&c, &["federation", "join", &url, &tc]);
    let node_c = jc["node"].as_str().unwrap().to_string();
    json_of(&c, &["federation", "query", "redis"]);
    json_of(&c, &["federation", "query", "redis"]);
    let (ok, _, err) = run(&c, &["federation", "query", "redis"]);
    assert!(!ok && err.contains("contribute"), "{err}");
    let g = json_of(&hub, &["federation", "grant", &node_c, "--days", "1"]);
    assert!(g["grant"].as_str().unwrap().contains(&node_c), "{g}");
    for _ in 0..3 {
        json_of(&c, &["federation", "query", "redis"]);
    }
    let st = json_of(&c, &["federation", "status"]);
    assert!(st["standing"]["unlimited_until"].as_i64().is_some(), "{st}");
    assert!(
        st["grant_verified_until"].is_string(),
        "checked by the node itself: {st}"
    );
    assert_eq!(st["standing"]["ledger"]["consumed"], 5, "{st}");

    // A revoked node is refused from its next connection on (the hub reloads within seconds).
    cli(&hub, &["federation", "revoke", &node_a]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, _, err) = run(&a, &["federation", "status"]);
        if !ok {
            assert!(
                err.contains("revoked") || err.contains("not a member") || err.contains("Revoked"),
                "{err}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "a revoked node still gets in");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The hub's audit log holds the joins, the refusals, the grant and the revocation.
    let audit = cli(&hub, &["--json", "audit", "tail", "--limit", "100"]);
    for action in [
        "federation.joined",
        "federation.refused",
        "federation.granted",
        "federation.revoked",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(
        audit.contains(&node_a) && !audit.contains("allkeys"),
        "{audit}"
    );

    // B goes on, and contributes in the background while its server runs.
    json_of(&b, &["federation", "status"]);
    cli(
        &b,
        &[
            "--tenant",
            "team",
            "remember",
            "Kafka consumer lag alerts fire at ten thousand messages",
            "--source",
            "fact",
        ],
    );
    let (_node_server, _) = serve_with(&b, &[], &["--federation-contribute-secs", "1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = json_of(&c, &["federation", "query", "kafka consumer lag"]);
        if q["hits"][0]["node"] == node_b.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "no background contribution: {q}");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(server);
}

/// Messages a member could forge or capture, sent to a running hub over the member's own
/// mutual TLS connection: a replay, a tampered byte, a time ten minutes off, garbage. Each is refused with its reason; the genuine message passes once. Then the free
/// tier's rate limit for heartbeats: 12 a minute, the 13th refused.
#[test]
fn the_hub_refuses_replays_tampering_skew_and_floods() {
    let d = tempfile::tempdir().unwrap();
    let (hub, a) = (d.path().join("hub"), d.path().join("a"));
    json_of(
        &hub,
        &["federation", "init", "--hub", "--host", "127.0.0.1"],
    );
    let (server, _) = serve_with(&hub, &[], &["--federation-bind", "127.0.0.1:0"]);
    let url = common::url_in(
        server
            .log()
            .lines()
            .find(|l| l.contains("federation hub at"))
            .unwrap(),
        "https://",
    );
    let t = token(&hub);
    json_of(&a, &["federation", "join", &url, &t]);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use continuum_federation::MessageType;
        let node =
            continuum_federation::node::Node::open(&continuum_federation::folder(&a)).unwrap();
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        let reason = |body: &[u8]| -> String {
            serde_json::from_slice::<Value>(body)
                .map(|v| v["reason"].as_str().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        let genuine = node
            .seal(MessageType::Heartbeat, serde_json::json!({}), now())
            .unwrap();
        let (status, _) = node.post(genuine.to_bytes()).await.unwrap();
        assert_eq!(status, 200);
        // The same bytes again: a replay.
        let (status, body) = node.post(genuine.to_bytes()).await.unwrap();
        assert_eq!((status, reason(&body).as_str()), (401, "replayed"));
        // One byte of the signed text changed.
        let mut tampered = node
            .seal(MessageType::Query, serde_json::json!({"q": "redis"}), now())
            .unwrap();
        tampered.envelope = tampered.envelope.replace("redis", "rediz");
        let (status, body) = node.post(tampered.to_bytes()).await.unwrap();
        assert_eq!((status, reason(&body).as_str()), (401, "bad_signature"));
        // Ten minutes off, either way.
        for skew in [-600_000, 600_000] {
            let old = node
                .seal(MessageType::Heartbeat, serde_json::json!({}), now() + skew)
                .unwrap();
            let (status, body) = node.post(old.to_bytes()).await.unwrap();
            assert_eq!((status, reason(&body).as_str()), (401, "stale"), "{skew}");
        }
        // Garbage.
        let (status, body) = node.post(b"not an envelope".to_vec()).await.unwrap();
        assert_eq!((status, reason(&body).as_str()), (400, "malformed"));

        // The free tier allows 12 heartbeats a minute: the 13th is refused.
        let mut refused_at = None;
        for i in 1..=13 {
            let m = node
                .seal(MessageType::Heartbeat, serde_json::json!({}), now())
                .unwrap();
            let (status, body) = node.post(m.to_bytes()).await.unwrap();
            if status != 200 {
                assert_eq!((status, reason(&body).as_str()), (429, "rate_limited"));
                refused_at = Some(i);
                break;
            }
        }
        // One heartbeat went before (the genuine one): the 12th of this loop is the 13th.
        assert_eq!(refused_at, Some(12));
    });
    let log = server.log();
    assert!(
        log.contains("replayed") && log.contains("bad_signature") && log.contains("stale"),
        "refusals are logged: {log}"
    );
}

/// The port of an `https://127.0.0.1:PORT` address.
fn port_of(url: &str) -> String {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

fn hub_url(server: &common::Server) -> String {
    common::url_in(
        server
            .log()
            .lines()
            .find(|l| l.contains("federation hub at"))
            .expect("the hub's address in the log"),
        "https://",
    )
}

/// A hub whose CA key is sealed with a passphrase; a node that copies the pool (as far as its
/// ratio allows, each item once, searchable with the hub away, catching up after the hub
/// was down); a certificate renewed over the current one; a client certificate from
/// another CA refused by the running hub.
#[test]
fn a_sealed_ca_a_node_that_copies_the_pool_and_certificate_renewal() {
    use common::{fails, serve_with_env};
    let d = tempfile::tempdir().unwrap();
    let (hub, a, b) = (d.path().join("hub"), d.path().join("a"), d.path().join("b"));
    let pass = [("CONTINUUM_FEDERATION_PASSPHRASE", "a long hub passphrase")];
    let wrong = [("CONTINUUM_FEDERATION_PASSPHRASE", "not the hub passphrase")];
    let init = [
        "federation",
        "init",
        "--hub",
        "--host",
        "127.0.0.1",
        "--encrypt-ca",
    ];
    // --encrypt-ca without the variable is refused, and makes nothing.
    let err = fails(&hub, &init, &[], 2);
    assert!(err.contains("CONTINUUM_FEDERATION_PASSPHRASE"), "{err}");
    assert!(!hub.join("federation/ca.key").exists());
    common::ok(&hub, &init, &pass);
    let key = std::fs::read_to_string(hub.join("federation/ca.key")).unwrap();
    assert!(key.starts_with("continuum-sealed-key"), "{key}");
    // The hub does not start without the passphrase, nor with a wrong one.
    let serve = [
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--federation-bind",
        "127.0.0.1:0",
    ];
    let err = fails(&hub, &serve, &[], 2);
    assert!(err.contains("CONTINUUM_FEDERATION_PASSPHRASE"), "{err}");
    let err = fails(&hub, &serve, &wrong, 2);
    assert!(err.contains("does not open"), "{err}");
    let hub_args = [
        "--federation-bind",
        "127.0.0.1:0",
        "--federation-free-queries",
        "3",
        "--federation-cert-days",
        "2",
    ];
    let (server, _) = serve_with_env(&hub, &[], &hub_args, &pass);
    let url = hub_url(&server);
    // Inviting needs no passphrase (only the CA's certificate).
    let (ta, tb) = (token(&hub), token(&hub));
    let node_a = json_of(&a, &["federation", "join", &url, &ta])["node"]
        .as_str()
        .unwrap()
        .to_string();
    json_of(&b, &["federation", "join", &url, &tb]);

    // A shares five facts.
    let facts = [
        "Kafka consumer groups rebalance when a member leaves",
        "Kafka retention defaults to seven days",
        "Kafka partitions order messages within a partition only",
        "Kafka compaction keeps the last value per key",
        "Kafka producers batch messages by linger time",
    ];
    for f in facts {
        cli(&a, &["--tenant", "t", "remember", f, "--source", "fact"]);
    }
    cli(&a, &["--tenant", "t", "federation", "share", "on"]);
    assert_eq!(
        json_of(&a, &["--tenant", "t", "federation", "contribute"])["accepted"],
        5
    );

    // B copies the pool: three items on its free allowance, then the ratio stops it.
    let s = json_of(&b, &["federation", "sync"]);
    assert_eq!(s["stored"], 3, "{s}");
    assert!(
        s["stopped"].as_str().unwrap_or("").contains("contribute"),
        "{s}"
    );
    let (ok, _, err) = run(&b, &["federation", "sync"]);
    assert!(!ok && err.contains("contribute"), "{err}");
    // One contribution of B's allows ten consumed in all: the other two arrive, and B's own
    // item is not sent back to it.
    cli(
        &b,
        &[
            "--tenant",
            "u",
            "remember",
            "Postgres autovacuum needs tuning on hot tables",
            "--source",
            "fact",
        ],
    );
    cli(&b, &["--tenant", "u", "federation", "share", "on"]);
    json_of(&b, &["--tenant", "u", "federation", "contribute"]);
    let s = json_of(&b, &["federation", "sync"]);
    assert_eq!(
        (s["stored"].as_u64(), s["pool_items"].as_u64()),
        (Some(2), Some(5)),
        "{s}"
    );
    assert!(s["stopped"].is_null(), "{s}");
    assert_eq!(s["ledger"]["consumed"], 5, "{s}");
    // Each item once: nothing new now; and with the cursor lost, delivered again but stored
    // never twice.
    assert_eq!(json_of(&b, &["federation", "sync"])["stored"], 0);
    let state = b.join("federation/state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    st["pool"] = serde_json::json!({ "after": 0 });
    std::fs::write(&state, st.to_string()).unwrap();
    let s = json_of(&b, &["federation", "sync"]);
    assert_eq!(
        (s["stored"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(5)),
        "{s}"
    );

    // Granting needs the CA key: refused without the passphrase.
    let node_b = json_of(&b, &["federation", "status"])["standing"]["node"]
        .as_str()
        .unwrap()
        .to_string();
    let err = fails(&hub, &["federation", "grant", &node_b], &[], 2);
    assert!(err.contains("CONTINUUM_FEDERATION_PASSPHRASE"), "{err}");
    common::ok(
        &hub,
        &["federation", "grant", &node_b, "--days", "1"],
        &pass,
    );

    // The hub goes down: B searches its copy without it; A's new facts wait.
    let port = port_of(&url);
    drop(server);
    let q = json_of(
        &b,
        &[
            "federation",
            "query",
            "--local",
            "kafka retention",
            "--limit",
            "3",
        ],
    );
    assert_eq!(q["hits"][0]["node"], node_a.as_str(), "{q}");
    assert!(
        q["hits"][0]["text"]
            .as_str()
            .unwrap()
            .contains("seven days"),
        "{q}"
    );
    cli(
        &a,
        &[
            "--tenant",
            "t",
            "remember",
            "Kafka idempotent producers avoid duplicates",
            "--source",
            "fact",
        ],
    );
    let (ok, _, _) = run(&a, &["--tenant", "t", "federation", "contribute"]);
    assert!(!ok, "the hub is down");
    let (ok, _, _) = run(&b, &["federation", "sync"]);
    assert!(!ok, "the hub is down");
    // Back on the same address: A's fact goes once, B catches up with it once.
    let bind = format!("127.0.0.1:{port}");
    let again = [
        "--federation-bind",
        &bind,
        "--federation-free-queries",
        "3",
        "--federation-cert-days",
        "2",
    ];
    let (server, _) = serve_with_env(&hub, &[], &again, &pass);
    assert_eq!(
        json_of(&a, &["--tenant", "t", "federation", "contribute"])["accepted"],
        1
    );
    let s = json_of(&b, &["federation", "sync"]);
    assert_eq!(
        (s["stored"].as_u64(), s["pool_items"].as_u64()),
        (Some(1), Some(6)),
        "{s}"
    );

    // Renewal: a two-day certificate is not due yet; renewing gives a later one, in use at
    // once.
    let before = json_of(&a, &["federation", "status"]);
    assert_eq!(before["renewal_due"], false, "{before}");
    let pem_before = std::fs::read_to_string(a.join("federation/node.pem")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let r = json_of(&a, &["federation", "renew"]);
    let pem_after = std::fs::read_to_string(a.join("federation/node.pem")).unwrap();
    assert_ne!(pem_before, pem_after);
    assert!(
        r["certificate_expires_at"].as_str().unwrap()
            > before["certificate_expires_at"].as_str().unwrap(),
        "{r} {before}"
    );
    let after = json_of(&a, &["federation", "status"]);
    assert_eq!(after["certificate_expires_at"], r["certificate_expires_at"]);
    assert!(after["last_renewal_at"].is_string(), "{after}");
    let audit = cli(&hub, &["--json", "audit", "tail", "--limit", "100"]);
    assert!(audit.contains("federation.renewed"), "{audit}");

    // A client certificate from another CA (for a real member's key, even) is refused by the
    // running hub at the handshake.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use continuum_federation::pki;
        let now = std::time::SystemTime::now();
        let other = pki::Authority::create(
            "other",
            continuum_federation::NodeKey::generate().unwrap(),
            now,
        )
        .unwrap();
        let key = continuum_federation::NodeKey::generate().unwrap();
        let cert = other.issue(&key.public(), &[], 1, now).unwrap();
        let ca = std::fs::read_to_string(a.join("federation/ca.pem")).unwrap();
        let config = pki::client_config(&ca, Some((&cert, &key))).unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(std::sync::Arc::unwrap_or_clone(config))
            .build()
            .unwrap();
        let sent = client
            .post(format!("{url}/federation/v1/message"))
            .body("{}")
            .send()
            .await;
        assert!(
            sent.is_err(),
            "a foreign certificate got an answer: {sent:?}"
        );
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("handshake refused") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // A revoked node cannot renew.
    cli(&hub, &["federation", "revoke", &node_a]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, _, _) = run(&a, &["federation", "renew"]);
        if !ok {
            break;
        }
        assert!(Instant::now() < deadline, "a revoked node renewed");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(server);
}

/// A member that serves copies the pool in the background with `--federation-sync`.
#[test]
fn a_serving_node_copies_the_pool_in_the_background() {
    let d = tempfile::tempdir().unwrap();
    let (hub, a, b) = (d.path().join("hub"), d.path().join("a"), d.path().join("b"));
    json_of(
        &hub,
        &["federation", "init", "--hub", "--host", "127.0.0.1"],
    );
    let (server, _) = serve_with(&hub, &[], &["--federation-bind", "127.0.0.1:0"]);
    let url = hub_url(&server);
    let (ta, tb) = (token(&hub), token(&hub));
    json_of(&a, &["federation", "join", &url, &ta]);
    json_of(&b, &["federation", "join", &url, &tb]);
    let (_b_server, _) = serve_with(
        &b,
        &[],
        &["--federation-contribute-secs", "1", "--federation-sync"],
    );
    cli(
        &a,
        &[
            "--tenant",
            "t",
            "remember",
            "Raft elections need a majority of voters",
            "--source",
            "fact",
        ],
    );
    cli(&a, &["--tenant", "t", "federation", "share", "on"]);
    json_of(&a, &["--tenant", "t", "federation", "contribute"]);
    // B's server copies it in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = json_of(&b, &["federation", "status"]);
        if st["pool"]["items"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no background copy: {st}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let q = json_of(&b, &["federation", "query", "--local", "raft majority"]);
    assert_eq!(q["hits"].as_array().unwrap().len(), 1, "{q}");
}

/// `bench federation` at a small size: a second node's sync copies the pool across more than
/// one answer.
#[test]
fn bench_federation_pools_and_copies_every_item() {
    let d = tempfile::tempdir().unwrap();
    let r = json_of(
        d.path(),
        &[
            "bench",
            "federation",
            "--items",
            "700",
            "--nodes",
            "2",
            "--queries",
            "3",
            "--handshakes",
            "3",
        ],
    );
    assert_eq!(r["items"], 700, "{r}");
    // What the hub's anonymiser let into the pool (generated text may name people), copied
    // over two answers at least.
    let copied = r["sync_items"].as_u64().unwrap();
    assert!((501..=700).contains(&copied), "{r}");
    assert!(r["contribute_items_per_sec"].as_f64().unwrap() > 0.0, "{r}");
}
