//! pgvector on the machine's PostgreSQL: the database searches vectors with an HNSW index,
//! catches up with vectors stored while it was not in use, and recall ranks as it does with
//! vectors ranked in process.
//!
//! Needs CONTINUUM_TEST_POSTGRES_URL and a server where `CREATE EXTENSION vector` works (CI
//! builds pgvector for the machine's PostgreSQL and sets CONTINUUM_TEST_PGVECTOR=1, which makes
//! a missing extension a failure rather than a skip).

use continuum_core::time::Timestamp;
use continuum_core::{MemoryId, MemoryStore, VectorStore};
use continuum_engine::{RecallRequest, RememberRequest};
use continuum_store_postgres::pgvector::{Mode, Status};
use continuum_store_postgres::{PostgresOptions, PostgresStore};
use continuum_testkit::{TopicEmbedder, engine, tenant};
use std::sync::Arc;

mod common;

/// A scratch schema (dropped at the end) to open stores in.
struct Db(common::Scratch);

impl Db {
    async fn open(&self, mode: Mode) -> continuum_core::Result<PostgresStore> {
        let opts = PostgresOptions {
            pool_size: 2,
            schema: Some(self.0.schema.clone()),
            pgvector: mode,
        };
        PostgresStore::connect(&self.0.url, &opts, Timestamp(0)).await
    }

    async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.0.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    async fn count(&self, table: &str) -> i64 {
        self.sql()
            .await
            .query_one(
                &format!("SELECT count(*) FROM {}.{table}", self.0.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }
}

/// An engine over `store` with the stand-in topic embedder.
fn semantic(store: Arc<dyn MemoryStore>) -> continuum_engine::Engine {
    engine(store)
        .0
        .with_embedder(Arc::new(TopicEmbedder::default()))
}

async fn fact(e: &continuum_engine::Engine, t: &continuum_core::TenantId, text: &str) -> MemoryId {
    e.remember(t, RememberRequest::new(text, continuum_core::Source::Fact))
        .await
        .unwrap()
        .id
}

/// The paraphrase the stand-in embedder links to the dog memory (no shared keyword).
const FETCH: &str = "Which pet likes to play fetch?";
const DOG: &str = "My dog adores chasing tennis balls.";

/// A scratch schema on a server with pgvector, or `None` (after saying why) to skip.
async fn db() -> Option<Db> {
    let Ok(url) = std::env::var("CONTINUUM_TEST_POSTGRES_URL") else {
        eprintln!("skipping: CONTINUUM_TEST_POSTGRES_URL is not set");
        return None;
    };
    let db = Db(common::Scratch::new(url, "continuum_v"));
    match db.open(Mode::On).await {
        Ok(_) => Some(db),
        Err(e) if std::env::var("CONTINUUM_TEST_PGVECTOR").is_err() => {
            eprintln!(
                "skipping: pgvector is not usable here ({e}); CI sets CONTINUUM_TEST_PGVECTOR"
            );
            None
        }
        Err(e) => panic!("CONTINUUM_TEST_PGVECTOR is set but pgvector is not usable: {e}"),
    }
}

#[tokio::test]
async fn pgvector_on_off_and_the_url_setting_are_honoured() {
    let Some(db) = db().await else { return };
    let off = db.open(Mode::Off).await.unwrap();
    assert!(!off.searches_vectors());
    assert!(matches!(off.pgvector(), Status::Disabled(why) if why.contains("pgvector=off")));
    let on = db.open(Mode::On).await.unwrap();
    assert!(on.searches_vectors());
    let Status::Enabled { version, .. } = on.pgvector() else {
        panic!("pgvector is on")
    };
    assert!(!version.is_empty());
    // The URL's setting wins over the options'.
    let sep = if db.0.url.contains('?') { '&' } else { '?' };
    let opts = PostgresOptions {
        pool_size: 1,
        schema: Some(db.0.schema.clone()),
        pgvector: Mode::On,
    };
    let by_url = PostgresStore::connect(
        &format!("{}{sep}pgvector=off", db.0.url),
        &opts,
        Timestamp(0),
    )
    .await
    .unwrap();
    assert!(!by_url.searches_vectors());
    let bad = PostgresStore::connect(
        &format!("{}{sep}pgvector=maybe", db.0.url),
        &opts,
        Timestamp(0),
    )
    .await
    .err()
    .expect("an unknown pgvector setting is refused");
    assert!(bad.to_string().contains("pgvector"), "{bad}");
}

#[tokio::test]
async fn vectors_stored_without_pgvector_are_searched_once_it_is_on() {
    let Some(db) = db().await else { return };
    let t = tenant("t1");
    // Written while pgvector is off: only the store's own BYTEA copy exists.
    let off: Arc<dyn MemoryStore> = Arc::new(db.open(Mode::Off).await.unwrap());
    let writer = semantic(off);
    let dog = fact(&writer, &t, DOG).await;
    fact(&writer, &t, "The quarterly budget review is on Thursday.").await;
    assert_eq!(
        writer
            .reindex(&t, false, &mut |_, _| {})
            .await
            .unwrap()
            .embedded,
        2
    );
    assert_eq!(
        db.count("vector_ann").await,
        0,
        "pgvector was off: nothing went to vector_ann"
    );

    // Reopened with pgvector: the vectors are copied over and indexed.
    let on: Arc<dyn MemoryStore> = Arc::new(db.open(Mode::On).await.unwrap());
    assert_eq!(db.count("vector_ann").await, 2);
    let index: Option<String> = db
        .sql()
        .await
        .query_opt(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'vector_ann_hnsw_6'",
            &[&db.0.schema],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    let index = index.expect("an HNSW index for dimension 6");
    assert!(index.contains("hnsw"), "{index}");
    let r = semantic(on)
        .recall(&t, &RecallRequest::new(FETCH))
        .await
        .unwrap();
    assert_eq!(r.memories[0].id, dog, "{:?}", r.memories);
    assert_eq!(r.semantic.as_ref().unwrap().embedded, 2);
    assert!(r.memories[0].signals.semantic > 0.99);
}

/// The same conversation recalled with vectors searched by pgvector and in process: the same
/// memories in the same order, with the same semantic scores (to the in-process 8-bit
/// quantisation).
#[tokio::test]
async fn recall_ranks_alike_with_vectors_in_the_database_and_in_process() {
    let Some(db) = db().await else { return };
    let t = tenant("t1");
    let on: Arc<dyn MemoryStore> = Arc::new(db.open(Mode::On).await.unwrap());
    let off: Arc<dyn MemoryStore> = Arc::new(db.open(Mode::Off).await.unwrap());
    let writer = semantic(on.clone());
    let lines = [
        "We adopted a puppy last spring.",
        "The puppy loves to play fetch in the park.",
        "Tennis balls are all over the garden now.",
        "Our quarterly budget review slipped to Friday.",
        "Money is tight until the review is done.",
        "We deploy the billing service on Kubernetes.",
        "The service restarts every night.",
        "The cat sleeps in the sun all day.",
        "It naps by the window in the sunshine.",
        "Nobody likes the new budget spreadsheet.",
    ];
    for (i, line) in lines.iter().enumerate() {
        let mut req = RememberRequest::new(*line, continuum_core::Source::User);
        req.session = Some(continuum_core::SessionId::new(format!("s{}", i / 4)).unwrap());
        writer.remember(&t, req).await.unwrap();
    }
    writer.reindex(&t, false, &mut |_, _| {}).await.unwrap();
    for query in [
        "Which animal enjoys playing with balls?",
        "When is the money meeting?",
        "Where does the pet doze?",
    ] {
        let mut got = Vec::new();
        for store in [&on, &off] {
            let r = semantic(store.clone())
                .recall(&t, &RecallRequest::new(query))
                .await
                .unwrap();
            got.push(
                r.memories
                    .iter()
                    .map(|m| (m.id, m.signals.semantic))
                    .collect::<Vec<_>>(),
            );
        }
        assert!(!got[0].is_empty());
        let ids = |g: &[(continuum_core::MemoryId, f64)]| g.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(&got[0]), ids(&got[1]), "{query}");
        // In process the vectors are 8-bit: scores agree to about 0.002.
        for (a, b) in got[0].iter().zip(&got[1]) {
            assert!((a.1 - b.1).abs() < 0.01, "{query}: {} against {}", a.1, b.1);
        }
    }
}

/// `url` with another user and database (query string kept).
fn as_user_on(url: &str, user: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let (host, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{user}@{host}/{db}{query}")
}

/// On a database without the extension, as a user who may not install it: `auto` goes on
/// with vectors ranked in process and says why; `on` refuses to start.
#[tokio::test]
async fn without_the_right_to_install_pgvector_auto_falls_back_and_on_refuses() {
    let Some(db) = db().await else { return };
    let admin = db.sql().await;
    let tag = format!("{:012x}", fastrand::u64(..) >> 16);
    let (role, name) = (
        format!("continuum_plain_{tag}"),
        format!("continuum_nv_{tag}"),
    );
    // One statement per call: CREATE and DROP DATABASE refuse to run in a transaction.
    let sql = |q: String| {
        let admin = &admin;
        async move { admin.batch_execute(&q).await.unwrap() }
    };
    sql(format!("CREATE ROLE {role} LOGIN")).await;
    sql(format!("CREATE DATABASE {name} OWNER {role}")).await;
    let url = as_user_on(&db.0.url, &role, &name);
    let outcome = async move {
        let open = |mode| {
            let url = url.clone();
            async move {
                let opts = PostgresOptions {
                    pool_size: 1,
                    schema: None,
                    pgvector: mode,
                };
                PostgresStore::connect(&url, &opts, Timestamp(0)).await
            }
        };
        let store = open(Mode::Auto).await.expect("auto works without pgvector");
        assert!(!store.searches_vectors());
        let Status::Disabled(why) = store.pgvector() else {
            panic!("pgvector cannot be on here")
        };
        assert!(why.contains("could not be installed"), "{why}");
        let e = semantic(Arc::new(store));
        let t = tenant("t1");
        let dog = fact(&e, &t, DOG).await;
        e.reindex(&t, false, &mut |_, _| {}).await.unwrap();
        let r = e.recall(&t, &RecallRequest::new(FETCH)).await.unwrap();
        assert_eq!(r.memories[0].id, dog, "vectors ranked in process");
        let err = open(Mode::On)
            .await
            .err()
            .expect("on refuses without pgvector");
        assert!(err.to_string().contains("pgvector"), "{err}");
    };
    // Clean up even when an assertion fails.
    let result = tokio::spawn(outcome).await;
    sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    sql(format!("DROP DATABASE IF EXISTS {name}")).await;
    sql(format!("DROP ROLE IF EXISTS {role}")).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
