//! A PostgreSQL store written by the release before the typed event log (schema v3; the dump
//! in `fixtures/v3-store.sql`, made with that release's binary) is migrated on connect, its
//! change log carried forward as typed events. Set CONTINUUM_TEST_POSTGRES_URL (CI does).

use continuum_core::event::{Event, EventScope};
use continuum_core::time::Timestamp;
use continuum_core::{EventLog, MemoryGraph, MemoryId, TenantId};
use continuum_store_postgres::{PostgresOptions, PostgresStore, pgvector};

mod common;

const URL_VAR: &str = "CONTINUUM_TEST_POSTGRES_URL";

#[tokio::test]
async fn a_v3_change_log_becomes_typed_events_with_payloads() {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!("skipping: {URL_VAR} is not set");
        return;
    };
    let scratch = common::Scratch::new(url.clone(), "continuum_m");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let dump = include_str!("fixtures/v3-store.sql").replace("__SCHEMA__", &scratch.schema);
    client
        .batch_execute(&format!("CREATE SCHEMA {}; {dump}", scratch.schema))
        .await
        .unwrap();
    let opts = PostgresOptions {
        pool_size: 2,
        schema: Some(scratch.schema.clone()),
        pgvector: pgvector::Mode::Off,
    };
    let store = PostgresStore::connect(&url, &opts, Timestamp(0))
        .await
        .unwrap();

    let all = store.events_since(EventScope::All, 0, 1000).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=30).collect::<Vec<_>>(),
        "every entry, positions unchanged"
    );
    let t = TenantId::new("default").unwrap();
    assert_eq!(
        all.iter().filter(|r| r.tenant.as_str() == "acme").count(),
        7
    );

    let Event::MemoryCreated {
        id,
        memory: Some(m),
        concepts,
    } = &all[0].event
    else {
        panic!("{:?}", all[0])
    };
    let stored = store.get(&t, &[*id]).await.unwrap();
    assert_eq!(**m, stored[0]);
    assert_eq!(
        m.metadata.get("speaker").and_then(|v| v.as_str()),
        Some("Alice")
    );
    let mut keys: Vec<&str> = concepts.iter().map(|c| c.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["kafka", "redis"]);

    let forgotten: MemoryId = "01a24950-827b-7698-90a8-e2172900ddd0".parse().unwrap();
    assert_eq!(
        all[19].event,
        Event::MemoryCreated {
            id: forgotten,
            memory: None,
            concepts: vec![]
        }
    );
    assert_eq!(all[22].event, Event::MemoryForgotten { id: forgotten });
    let old: MemoryId = "01a1a06c-1400-7f7e-ac5d-7fc976583944".parse().unwrap();
    let new: MemoryId = "01a24950-822c-7783-9837-a1e5dec693a6".parse().unwrap();
    assert_eq!(
        all[18].event,
        Event::MemorySuperseded {
            id: old,
            by: Some(new)
        }
    );
    assert!(matches!(&all[6].event,
        Event::DecisionCreated { decision: Some(d), .. } if d.text.contains("Redis")));
    assert_eq!(
        all[5].event,
        Event::ConceptsChanged {
            keys: Some(vec!["kafka".into(), "redis".into()])
        }
    );

    // The log continues where the old one ended.
    let next = store
        .record_events(&t, Timestamp(1), &[Event::TenantCreated])
        .await
        .unwrap();
    assert_eq!(next, 31);
    assert_eq!(store.stats(&t).await.unwrap().schema_version, 14);
}
