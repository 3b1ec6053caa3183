//! Replicas of one real Turso sync server: they converge (memories, forgets, Hebbian
//! increments from both sides), keep working while the primary is down and catch up once it
//! is back, and refuse what they cannot use with a clear error.

mod common;

use common::{Server, node, open_location, tursodb};
use continuum_core::memory::Turn;
use continuum_core::store::ForgetSelector;
use continuum_core::{Error, MemoryId, TenantId};
use continuum_engine::{Engine, RecallRequest};
use continuum_store_libsql::{LibsqlLocation, Replica, ReplicaOptions};
use continuum_testkit::conformance::comparable;

fn turn(user: &str, ai: &str) -> Turn {
    Turn {
        user_message: user.into(),
        ai_response: ai.into(),
        thinking: None,
        session_id: None,
        metadata: None,
        timestamp: None,
    }
}

fn t() -> TenantId {
    TenantId::new("team").unwrap()
}

async fn ranking(e: &Engine, q: &str) -> Vec<MemoryId> {
    e.recall(&t(), &RecallRequest::new(q))
        .await
        .unwrap()
        .memories
        .iter()
        .map(|m| m.id)
        .collect()
}

async fn count(e: &Engine) -> u64 {
    e.stats(&t()).await.unwrap().store.memories
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_converge_on_memories_forgets_and_links() {
    let Some(bin) = tursodb() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&bin, dir.path());
    let a = node(&server, &dir.path().join("a/continuum.db")).await;
    let b = node(&server, &dir.path().join("b/continuum.db")).await;

    // Each learns on its own, the same concepts co-occurring on both sides (one link, two
    // sets of Hebbian increments), and something only it knows.
    for i in 0..3 {
        a.engine
            .learn(
                &t(),
                turn(
                    &format!("Kafka feeds Postgres in pipeline {i}"),
                    "Postgres stores what Kafka delivers.",
                ),
            )
            .await
            .unwrap();
    }
    a.engine
        .learn(&t(), turn("Grafana dashboards watch Nomad", "Noted."))
        .await
        .unwrap();
    for i in 0..2 {
        b.engine
            .learn(
                &t(),
                turn(
                    &format!("Does Kafka still feed Postgres in job {i}?"),
                    "Yes, Kafka feeds Postgres.",
                ),
            )
            .await
            .unwrap();
    }
    b.engine
        .learn(&t(), turn("Vault keeps the Consul tokens", "Understood."))
        .await
        .unwrap();

    let ra = a.replica.sync(&a.engine).await.unwrap();
    assert!(ra.pushed && ra.journaled > 0, "{ra:?}");
    let rb = b.replica.sync(&b.engine).await.unwrap();
    assert!(rb.applied > 0, "B applied A's events: {rb:?}");
    let ra = a.replica.sync(&a.engine).await.unwrap();
    assert!(ra.applied > 0, "A applied B's events: {ra:?}");

    // Seven turns, two memories each.
    assert_eq!(count(&a.engine).await, 14);
    assert_eq!(count(&b.engine).await, 14);
    // Each recalls what the other learned, with the same ranking.
    let q = "what keeps the Consul tokens? Vault";
    let ka = ranking(&a.engine, q).await;
    assert!(!ka.is_empty());
    assert_eq!(ka, ranking(&b.engine, q).await);
    let q = "Kafka Postgres Grafana";
    assert_eq!(ranking(&a.engine, q).await, ranking(&b.engine, q).await);
    // The whole state is one: memories, concepts, links with both sides' increments.
    let sa = comparable(&a.engine, &t()).await;
    let sb = comparable(&b.engine, &t()).await;
    assert_eq!(sa, sb);
    let link = sa
        .iter()
        .find(|r| {
            r.starts_with(r#"{"type":"link""#) && r.contains("kafka") && r.contains("postgres")
        })
        .expect("a kafka-postgres link");
    // Five turns on two replicas co-activated it: more than either side alone gave it.
    let alone = {
        let dir2 = tempfile::tempdir().unwrap();
        let s = continuum_store_sqlite::SqliteStore::open(
            dir2.path().join("x.db"),
            &Default::default(),
            continuum_core::time::Timestamp(0),
        )
        .unwrap();
        let (e, _) = continuum_testkit::engine(std::sync::Arc::new(s));
        for i in 0..3 {
            e.learn(
                &t(),
                turn(
                    &format!("Kafka feeds Postgres in pipeline {i}"),
                    "Postgres stores what Kafka delivers.",
                ),
            )
            .await
            .unwrap();
        }
        comparable(&e, &t())
            .await
            .into_iter()
            .find(|r| {
                r.starts_with(r#"{"type":"link""#) && r.contains("kafka") && r.contains("postgres")
            })
            .unwrap()
    };
    assert_ne!(link, &alone, "B's increments were added to A's");

    // A forget on one disappears from the other.
    let gone = ka[0];
    a.engine
        .forget(&t(), &ForgetSelector::Ids(vec![gone]))
        .await
        .unwrap();
    a.replica.sync(&a.engine).await.unwrap();
    b.replica.sync(&b.engine).await.unwrap();
    assert!(
        !ranking(&b.engine, "Vault Consul tokens")
            .await
            .contains(&gone)
    );
    assert_eq!(count(&b.engine).await, 13);
    assert_eq!(
        comparable(&a.engine, &t()).await,
        comparable(&b.engine, &t()).await
    );

    // A third replica bootstraps from the primary and holds the same state.
    let c = node(&server, &dir.path().join("c/continuum.db")).await;
    let rc = c.replica.sync(&c.engine).await.unwrap();
    assert!(rc.received > 0);
    assert_eq!(
        comparable(&c.engine, &t()).await,
        comparable(&a.engine, &t()).await
    );
    let st = c.replica.status(&c.engine).await.unwrap();
    assert!(!st.behind, "{st:?}");
    assert_eq!(st.remote_events, st.remote_applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_works_offline_and_catches_up_without_duplicates() {
    let Some(bin) = tursodb() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&bin, dir.path());
    let a = node(&server, &dir.path().join("a/continuum.db")).await;
    let b = node(&server, &dir.path().join("b/continuum.db")).await;
    a.engine
        .learn(&t(), turn("Before the outage: Redis caches sessions", "ok"))
        .await
        .unwrap();
    a.replica.sync(&a.engine).await.unwrap();

    server.stop();
    // Writes and recall go on locally; the round fails, saying the replica is behind.
    for i in 0..5 {
        a.engine
            .learn(
                &t(),
                turn(
                    &format!("During the outage note {i}: Nomad schedules"),
                    "ok",
                ),
            )
            .await
            .unwrap();
    }
    assert!(
        !ranking(&a.engine, "Nomad schedules outage")
            .await
            .is_empty()
    );
    let err = a.replica.sync(&a.engine).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("wait to be pushed"), "{err}");
    let st = a.replica.status(&a.engine).await.unwrap();
    assert!(st.behind, "{st:?}");
    assert!(st.last_error.is_some());
    // A second failed round journals nothing twice.
    assert!(a.replica.sync(&a.engine).await.is_err());

    // A replica reopened while the primary is down opens (offline), too.
    drop(a);
    let a = open_location(
        &LibsqlLocation::parse(&server.store_url(&dir.path().join("a/continuum.db"))).unwrap(),
    )
    .await
    .expect("an existing replica opens offline");

    server.restart();
    let r = a.replica.sync(&a.engine).await.unwrap();
    assert!(r.pushed);
    let r = b.replica.sync(&b.engine).await.unwrap();
    // Six turns, two memories each.
    assert_eq!(count(&b.engine).await, 12, "{r:?}");
    // Nothing arrives twice, however often both sync.
    for _ in 0..2 {
        a.replica.sync(&a.engine).await.unwrap();
        b.replica.sync(&b.engine).await.unwrap();
    }
    assert_eq!(count(&a.engine).await, 12);
    assert_eq!(count(&b.engine).await, 12);
    assert_eq!(
        comparable(&a.engine, &t()).await,
        comparable(&b.engine, &t()).await
    );
    let st = a.replica.status(&a.engine).await.unwrap();
    assert!(!st.behind && st.last_error.is_none(), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_refuses_what_it_cannot_use() {
    let Some(bin) = tursodb() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&bin, dir.path());
    let a = node(&server, &dir.path().join("a/continuum.db")).await;

    // One syncer per replica: a second open of the same replica is refused.
    let again = Replica::open(&a.location, &ReplicaOptions::default()).await;
    assert!(
        matches!(&again, Err(Error::Conflict(m)) if m.contains("another process")),
        "{:?}",
        again.err()
    );
    drop(a);

    // A new replica cannot bootstrap without its primary, and leaves nothing behind.
    server.stop();
    let loc =
        LibsqlLocation::parse(&server.store_url(&dir.path().join("fresh/continuum.db"))).unwrap();
    let err = Replica::open(&loc, &ReplicaOptions::default())
        .await
        .err()
        .expect("no primary");
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("cannot bootstrap"), "{err}");
    assert!(!loc.journal().exists());

    // A journal of a newer schema (a newer Continuum set the primary up) is refused: another
    // client of the primary moves the version on.
    server.restart();
    {
        let raw = turso::sync::Builder::new_remote(dir.path().join("raw.db").to_str().unwrap())
            .with_remote_url(server.url())
            .bootstrap_if_empty(true)
            .build()
            .await
            .unwrap();
        let conn = raw.connect().await.unwrap();
        conn.execute(
            "UPDATE continuum_meta SET value = '99' WHERE key = 'schema'",
            (),
        )
        .await
        .unwrap();
        raw.push().await.unwrap();
    }
    let err = Replica::open(&loc, &ReplicaOptions::default())
        .await
        .err()
        .expect("newer schema");
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("version 99") && m.contains("upgrade")),
        "{err}"
    );
}

/// Answers every request with `status` and an HTML page: a web server that is not a sync
/// server, or one that refuses the token.
async fn http_answering(status: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "<html><body>not here</body></html>";
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_is_not_a_sync_server_or_refuses_the_token_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_answering("404 Not Found").await;
    let loc = LibsqlLocation::parse(&format!(
        "libsql+http://127.0.0.1:{port}?replica={}",
        dir.path().join("r.db").display()
    ))
    .unwrap();
    let err = Replica::open(&loc, &ReplicaOptions::default())
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidInput(_)), "{msg}");
    assert!(
        msg.contains("status=404") && msg.contains("Turso sync server"),
        "{msg}"
    );
    assert!(!msg.contains("<html>"), "{msg}");

    // tursodb's local sync server takes any token, so a refusal is a server that answers 401.
    let port = http_answering("401 Unauthorized").await;
    let loc = LibsqlLocation::parse(&format!(
        "libsql+http://127.0.0.1:{port}?replica={}",
        dir.path().join("r2.db").display()
    ))
    .unwrap();
    let err = Replica::open(
        &loc,
        &ReplicaOptions {
            auth_token: Some("tok-very-secret".into()),
        },
    )
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unauthorized(_)), "{msg}");
    assert!(
        msg.contains("auth token") && !msg.contains("tok-very-secret"),
        "{msg}"
    );
}
