//! `remember_keyed`: many texts in one transaction, each stored once under its key however
//! often it is sent, and nothing stored when one text is refused.

use continuum_core::{Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, MAX_KEYED_TEXTS, RememberRequest, SearchRequest};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

fn engine(dir: &std::path::Path) -> Engine {
    let store = SqliteStore::open(
        dir.join("m.db"),
        &SqliteOptions::default(),
        Timestamp(1_780_000_000_000),
    )
    .unwrap();
    Engine::new(Arc::new(store), EngineConfig::default()).unwrap()
}

fn item(text: &str, key: &str) -> (RememberRequest, String) {
    (RememberRequest::new(text, Source::Fact), key.to_string())
}

async fn count(e: &Engine, t: &TenantId, q: &str) -> usize {
    let req = SearchRequest {
        query: q.into(),
        limit: Some(50),
        ..Default::default()
    };
    e.search(t, &req).await.unwrap().len()
}

#[tokio::test]
async fn each_key_is_stored_once_and_a_bad_text_stores_nothing() {
    let d = tempfile::tempdir().unwrap();
    let e = engine(d.path());
    let t = TenantId::new("pool").unwrap();
    let first = e
        .remember_keyed(
            &t,
            vec![
                item("Redis eviction uses allkeys-lru", "k1"),
                item("Postgres vacuum reclaims space", "k2"),
                // The same key twice in one call: once.
                item("Redis eviction uses allkeys-lru", "k1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((first.stored.len(), first.skipped), (2, 1));
    // Sent again with one new item: only the new one is stored.
    let again = e
        .remember_keyed(
            &t,
            vec![
                item("Redis eviction uses allkeys-lru", "k1"),
                item("Postgres vacuum reclaims space", "k2"),
                item("Redis cluster has sixteen thousand slots", "k3"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((again.stored.len(), again.skipped), (1, 2));
    assert_eq!(count(&e, &t, "redis").await, 2);
    // An empty text refuses the whole call: k4 is not stored either.
    let bad = e
        .remember_keyed(
            &t,
            vec![
                item("Kafka retention is seven days", "k4"),
                item("   ", "k5"),
            ],
        )
        .await;
    assert!(bad.is_err());
    assert_eq!(count(&e, &t, "kafka retention").await, 0);
    // Every limit is explicit.
    let many: Vec<_> = (0..=MAX_KEYED_TEXTS)
        .map(|i| item("text", &format!("x{i}")))
        .collect();
    let err = e.remember_keyed(&t, many).await.unwrap_err().to_string();
    assert!(err.contains("at most"), "{err}");
    // Keys are per tenant.
    let other = TenantId::new("other").unwrap();
    let o = e
        .remember_keyed(&other, vec![item("Redis eviction uses allkeys-lru", "k1")])
        .await
        .unwrap();
    assert_eq!(o.stored.len(), 1);
}
