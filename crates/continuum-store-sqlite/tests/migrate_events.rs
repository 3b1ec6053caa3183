//! A store written by the release before the typed event log (schema v3, made with that
//! release's `continuum learn`, `remember`, `supersede`, `forget` and `keys`; see
//! `fixtures/README.md`) opens with its change log carried forward as typed events.

use continuum_core::event::{Event, EventScope};
use continuum_core::time::Timestamp;
use continuum_core::{EventLog, MemoryGraph, MemoryId, TenantId};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};

fn open_fixture() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuum.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/v3-store.sqlite"
        ),
        &path,
    )
    .unwrap();
    let store = SqliteStore::open(&path, &SqliteOptions::default(), Timestamp(0)).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_v3_change_log_becomes_typed_events_with_payloads() {
    let (_dir, store) = open_fixture();
    let all = store.events_since(EventScope::All, 0, 1000).await.unwrap();
    assert_eq!(all.len(), 34, "every old entry is kept");
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=34).collect::<Vec<_>>(), "positions unchanged");
    let t = TenantId::new("default").unwrap();
    let acme = TenantId::new("acme").unwrap();
    assert_eq!(all.iter().filter(|r| r.tenant == acme).count(), 7);

    // A memory still stored: its payload is the memory as stored, with its concepts.
    let first = &all[0];
    let Event::MemoryCreated {
        id,
        memory: Some(m),
        concepts,
    } = &first.event
    else {
        panic!("{first:?}")
    };
    let stored = store.get(&t, &[*id]).await.unwrap();
    let mut expected = stored[0].clone();
    // The payload is the memory as created: not superseded, no end of validity.
    expected.superseded_by = None;
    expected.valid_until = None;
    assert_eq!(**m, expected);
    assert_eq!(
        m.content,
        "We run Kafka and Redis in production for the billing service."
    );
    assert_eq!(
        m.metadata.get("speaker").and_then(|v| v.as_str()),
        Some("Alice")
    );
    let mut keys: Vec<&str> = concepts.iter().map(|c| c.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["kafka", "redis"]);

    // The memory forgotten before the migration: its id, no text.
    let forgotten: MemoryId = "01a24947-1908-7c1d-8b4c-b0a3cc0283b2".parse().unwrap();
    assert!(all.iter().any(|r| r.event
        == Event::MemoryCreated {
            id: forgotten,
            memory: None,
            concepts: vec![]
        }));
    assert_eq!(all[26].event, Event::MemoryForgotten { id: forgotten });

    // The supersession names its successor; the decision and the concept carry theirs.
    let old: MemoryId = "01a1a06c-1400-72ac-aaad-a4ee86afa844".parse().unwrap();
    let new: MemoryId = "01a24947-18f1-7cef-83cd-2d26b430da8a".parse().unwrap();
    assert_eq!(
        all[21].event,
        Event::MemorySuperseded {
            id: old,
            by: Some(new)
        }
    );
    let Event::DecisionCreated {
        decision: Some(d), ..
    } = &all[5].event
    else {
        panic!("{:?}", all[5])
    };
    assert!(d.text.contains("Redis"), "{d:?}");
    assert!(
        matches!(&all[1].event, Event::ConceptCreated { key, kind, .. } if key == "kafka" && kind == "concept")
    );
    assert_eq!(
        all[6].event,
        Event::ConceptsChanged {
            keys: Some(vec!["kafka".into(), "redis".into()])
        }
    );

    // The store keeps working: the next write continues the sequence.
    store
        .record_events(&t, Timestamp(1), &[Event::TenantCreated])
        .await
        .unwrap();
    assert_eq!(store.latest_event(&t).await.unwrap(), 35);
    assert_eq!(
        store.stats(&t).await.unwrap().schema_version,
        continuum_store_sqlite::migrations::latest_version()
    );
    assert!(store.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn forgetting_a_migrated_memory_scrubs_its_migrated_event() {
    let (_dir, store) = open_fixture();
    let t = TenantId::new("default").unwrap();
    let id: MemoryId = "01a1968d-3900-7191-8a09-99e52075974e".parse().unwrap();
    store
        .forget(&t, &continuum_core::store::ForgetSelector::Ids(vec![id]))
        .await
        .unwrap();
    let all = store
        .events_since(EventScope::Tenant(&t), 0, 1000)
        .await
        .unwrap();
    assert_eq!(
        all[0].event,
        Event::MemoryCreated {
            id,
            memory: None,
            concepts: vec![]
        }
    );
    assert!(
        !serde_json::to_string(&all)
            .unwrap()
            .contains("billing service.")
    );
}
