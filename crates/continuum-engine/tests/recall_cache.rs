//! Recall's read cache (concepts, links, texts kept at the index's change-log position) never
//! answers differently from an engine without it: on a real SQLite file, with the writes made
//! by another engine (as another process would), a cached engine's recalls stay equal to
//! those of a long-lived engine whose cache is off, through new links, stronger links, a
//! supersede, a forget and the passing of time. (The reference must live as long: an index
//! caught up past a forget ranks a little differently from one built afresh, because the
//! forgotten memory's postings count in document frequencies until a rebuild.)

use continuum_core::store::ForgetSelector;
use continuum_core::time::ManualClock;
use continuum_core::{MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RecallRequest, RememberRequest};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const NOW: i64 = 1_780_000_000_000;

fn open(path: &Path, clock: &Arc<ManualClock>, cache_entries: usize) -> Engine {
    let store = SqliteStore::open(path, &SqliteOptions::default(), Timestamp(NOW)).unwrap();
    let config = EngineConfig {
        recall_cache_entries: cache_entries,
        ..EngineConfig::default()
    };
    Engine::new(Arc::new(store), config)
        .unwrap()
        .with_clock(clock.clone())
}

/// Three engines on one store file: one that writes (as another process would), one that
/// caches recall's reads, and one that does not (the reference). All read `clock`.
fn writer_cached_plain(db: &Path, clock: &Arc<ManualClock>) -> (Engine, Engine, Engine) {
    (
        open(db, clock, 0),
        open(db, clock, 20_000),
        open(db, clock, 0),
    )
}

async fn learn(engine: &Engine, t: &TenantId, session: &str, user: &str, ai: &str) {
    engine
        .learn(
            t,
            continuum_core::memory::Turn {
                user_message: user.into(),
                ai_response: ai.into(),
                thinking: None,
                session_id: Some(SessionId::new(session).unwrap()),
                metadata: None,
                timestamp: None,
            },
        )
        .await
        .unwrap();
}

async fn recall(engine: &Engine, t: &TenantId, q: &str) -> Value {
    serde_json::to_value(engine.recall(t, &RecallRequest::new(q)).await.unwrap()).unwrap()
}

/// The first place where two JSON values differ, as a path, with both sides.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| {
            let (l, r) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            first_difference(l, r, format!("{path}.{k}"))
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

fn ids(r: &Value) -> Vec<String> {
    r["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn link_strength(r: &Value, a: &str, b: &str) -> Option<f64> {
    r["links"].as_array().unwrap().iter().find_map(|l| {
        let (x, y) = (l["a"].as_str().unwrap(), l["b"].as_str().unwrap());
        ((x, y) == (a, b) || (x, y) == (b, a)).then(|| l["strength"].as_f64().unwrap())
    })
}

#[tokio::test]
async fn cached_recall_equals_uncached_recall_through_every_kind_of_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let (writer, cached, plain) = writer_cached_plain(&db, &clock);
    let t = TenantId::new("acme").unwrap();
    let topics = ["Kafka", "Redis", "Postgres", "Grafana", "Tokio"];
    for i in 0..40 {
        let a = topics[i % topics.len()];
        let b = topics[(i / 2 + 1) % topics.len()];
        clock.advance_millis(1000);
        learn(
            &writer,
            &t,
            &format!("s{}", i / 8),
            &format!("Priya moved the billing job from {a} to {b} (ticket {i})."),
            &format!("Noted: {a} is out and {b} is in for ticket {i}."),
        )
        .await;
    }
    let queries = [
        "What did Priya say about Kafka?",
        "Why did the billing job leave Redis?",
        "Grafana and Tokio",
    ];
    // Every check reads the cached engine twice (cold, then warm) and the uncached one, all at
    // the same clock reading.
    let check = |label: &'static str| {
        let (cached, plain, t) = (&cached, &plain, &t);
        async move {
            let mut out = Vec::new();
            for q in queries {
                let first = recall(cached, t, q).await;
                let again = recall(cached, t, q).await;
                let truth = recall(plain, t, q).await;
                for (read, got) in [("first", &first), ("warm", &again)] {
                    if let Some(d) = first_difference(got, &truth, String::new()) {
                        panic!("{label}: cached engine, {read} read of {q:?} differs at {d}");
                    }
                }
                out.push(truth);
            }
            out
        }
    };
    let before = check("after the first turns").await;
    assert!(!ids(&before[0]).is_empty(), "the query finds memories");
    let kafka_redis = link_strength(&before[0], "kafka", "redis");

    // New turns that strengthen links the first query follows and bring a new concept.
    for i in 0..6 {
        clock.advance_millis(1000);
        learn(
            &writer,
            &t,
            "s-new",
            &format!(
                "Kafka and Redis again, now with Vitess (ticket {}).",
                100 + i
            ),
            "Kafka keeps feeding Redis; Vitess joins them.",
        )
        .await;
    }
    let after_learn = check("after new links").await;
    let strengthened = link_strength(&after_learn[0], "kafka", "redis");
    assert!(
        strengthened.is_some() && strengthened > kafka_redis,
        "the cached engine sees the stronger link: {kafka_redis:?} -> {strengthened:?}"
    );

    // Supersede the best memory of the first query: the cached text must not hide it.
    let best: MemoryId = ids(&after_learn[0])[0].parse().unwrap();
    clock.advance_millis(1000);
    writer
        .supersede(
            &t,
            best,
            RememberRequest::new("Priya says Kafka is retired for good.", Source::User),
        )
        .await
        .unwrap();
    let after_supersede = check("after a supersede").await;
    let shown = after_supersede[0]["memories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == best.to_string());
    assert!(
        shown.is_none_or(|m| m["superseded"] == true),
        "the superseded memory is shown as such, if at all"
    );

    // Forget what the second query found best.
    let gone: MemoryId = ids(&after_supersede[1])[0].parse().unwrap();
    writer
        .forget(&t, &ForgetSelector::Ids(vec![gone]))
        .await
        .unwrap();
    let after_forget = check("after a forget").await;
    for r in &after_forget {
        assert!(
            !ids(r).contains(&gone.to_string()),
            "a forgotten memory is never recalled from the cache"
        );
    }

    // Time passes without writes: decay applies to cached strengths as to fresh ones.
    clock.advance_millis(40 * 86_400_000);
    check("forty days later").await;
}

#[tokio::test]
async fn a_write_drops_only_the_cached_entries_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let (writer, cached, plain) = writer_cached_plain(&db, &clock);
    let t = TenantId::new("acme").unwrap();
    for i in 0..6 {
        clock.advance_millis(1000);
        learn(
            &writer,
            &t,
            "infra",
            &format!("Kafka feeds Redis for the billing job (ticket {i})."),
            "Kafka and Redis: noted.",
        )
        .await;
        learn(
            &writer,
            &t,
            "travel",
            &format!("Melanie takes the train from Lisbon to Porto (trip {i})."),
            "Lisbon to Porto by train: noted.",
        )
        .await;
    }
    let q = "What feeds Redis?";
    let probe = |r: &Value| {
        let best: MemoryId = ids(r)[0].parse().unwrap();
        let p = cached.read_cache_probe(&t, "redis", &best).unwrap();
        (best, p)
    };
    let same_as_plain = |got: &Value, truth: &Value, label: &str| {
        if let Some(d) = first_difference(got, truth, String::new()) {
            panic!("{label}: the cached recall differs at {d}");
        }
    };
    let first = recall(&cached, &t, q).await;
    let (best, (seq, links, text)) = probe(&first);
    let (links, text) = (links.unwrap(), text.unwrap());

    // A turn about other concepts: the cache moves on and keeps Redis's links and the text.
    clock.advance_millis(1000);
    learn(
        &writer,
        &t,
        "travel",
        "Melanie booked the Porto train for Friday.",
        "Porto on Friday: noted.",
    )
    .await;
    let second = recall(&cached, &t, q).await;
    same_as_plain(
        &second,
        &recall(&plain, &t, q).await,
        "after an unrelated turn",
    );
    let (best2, (seq2, links2, text2)) = probe(&second);
    let (links2, text2) = (links2.unwrap(), text2.unwrap());
    assert!(
        seq2 > seq,
        "the cache moved with the index: {seq} -> {seq2}"
    );
    assert!(
        Arc::ptr_eq(&links2, &links),
        "Redis's links were kept, not read again"
    );
    assert_eq!(best2, best);
    assert!(
        Arc::ptr_eq(&text2, &text),
        "the text was kept, not read again"
    );

    // A turn that links Redis again: its list is read afresh, the text still kept.
    clock.advance_millis(1000);
    learn(
        &writer,
        &t,
        "infra",
        "Kafka feeds Redis and Grafana for the billing job (ticket 7).",
        "Kafka, Redis and Grafana: noted.",
    )
    .await;
    let named = writer.events(&t, seq2, 100).await.unwrap();
    assert!(
        named.iter().any(|c| matches!(&c.event,
            continuum_core::Event::LinksStrengthened { links } if links.iter().any(|l| matches!(l,
                continuum_core::store::LinkWrite::CoOccurred { a, b, .. } if a == "redis" || b == "redis")))),
        "the turn's events name Redis's links: {named:?}"
    );
    let third = recall(&cached, &t, q).await;
    same_as_plain(
        &third,
        &recall(&plain, &t, q).await,
        "after a turn linking Redis",
    );
    let (_, (seq3, links3, text3)) = probe(&third);
    let (links3, text3) = (links3.unwrap(), text3.unwrap());
    assert!(seq3 > seq2);
    assert!(
        !Arc::ptr_eq(&links3, &links2),
        "Redis's links were read again"
    );
    assert!(Arc::ptr_eq(&text3, &text2), "the text was kept");

    // A forget drops the tenant's cache whole (it changes concepts it does not name).
    let other: MemoryId = ids(&third)[1].parse().unwrap();
    writer
        .forget(&t, &ForgetSelector::Ids(vec![other]))
        .await
        .unwrap();
    let fourth = recall(&cached, &t, q).await;
    same_as_plain(&fourth, &recall(&plain, &t, q).await, "after a forget");
    let (_, (_, links4, text4)) = probe(&fourth);
    assert!(
        !Arc::ptr_eq(&links4.unwrap(), &links3) && !Arc::ptr_eq(&text4.unwrap(), &text3),
        "everything was read again"
    );
}

#[tokio::test]
async fn the_cache_keeps_tenants_apart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let engine = open(&db, &clock, 20_000);
    let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
    learn(
        &engine,
        &a,
        "s",
        "Kafka runs the ledger in Lisbon.",
        "Kafka, Lisbon: noted.",
    )
    .await;
    learn(
        &engine,
        &b,
        "s",
        "Kafka runs payroll in Oslo.",
        "Kafka, Oslo: noted.",
    )
    .await;
    for _ in 0..2 {
        let ra = recall(&engine, &a, "Kafka").await;
        let rb = recall(&engine, &b, "Kafka").await;
        let text = |r: &Value| r["context"].as_str().unwrap().to_string();
        assert!(text(&ra).contains("Lisbon") && !text(&ra).contains("Oslo"));
        assert!(text(&rb).contains("Oslo") && !text(&rb).contains("Lisbon"));
    }
}

#[tokio::test]
async fn an_import_that_only_raises_links_reaches_the_cached_recall() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("i.db");
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let engine = open(&db, &clock, 20_000);
    let t = TenantId::new("acme").unwrap();
    for i in 0..3 {
        learn(
            &engine,
            &t,
            "s",
            &format!("We run Kafka beside Redis ({i})."),
            "Noted: Kafka and Redis.",
        )
        .await;
    }
    let q = "Where do we run Kafka?";
    let first = recall(&engine, &t, q).await;
    let before = link_strength(&first, "kafka", "redis").expect("the link is followed");
    // A dump whose memories are all here already, with a stronger link: the store logs
    // `concepts.changed` naming both concepts, which moves the index on and drops their lists.
    let raised = before + 0.5;
    let outcome = engine
        .import(
            &t,
            vec![continuum_engine::ExportRecord::Link {
                a: "kafka".into(),
                b: "redis".into(),
                strength: raised,
                count: 50,
                last_at: Timestamp(NOW),
            }],
        )
        .await
        .unwrap();
    assert_eq!((outcome.memories_added, outcome.links), (0, 1));
    let after = link_strength(&recall(&engine, &t, q).await, "kafka", "redis").unwrap();
    assert!(
        (after - raised).abs() < 1e-9,
        "recall sees the imported strength: {before} -> {after} (imported {raised})"
    );
    let plain = open(&db, &clock, 0);
    let truth = link_strength(&recall(&plain, &t, q).await, "kafka", "redis").unwrap();
    assert_eq!(after, truth);
}

#[tokio::test]
async fn the_context_alone_is_the_context_of_the_full_recall() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let engine = open(&dir.path().join("c.db"), &clock, 20_000);
    let t = TenantId::new("acme").unwrap();
    let topics = ["Kafka", "Redis", "Postgres", "Grafana", "Tokio"];
    for i in 0..30 {
        let (a, b) = (topics[i % 5], topics[(i / 3 + 2) % 5]);
        clock.advance_millis(1000);
        learn(
            &engine,
            &t,
            &format!("s{}", i / 6),
            &format!("Lucas wired {a} into {b} for the search index (step {i})."),
            &format!("So {b} now reads from {a}."),
        )
        .await;
    }
    for q in [
        "What reads from Kafka?",
        "Redis and Tokio",
        "Who wired Grafana?",
    ] {
        let req = RecallRequest::new(q);
        let full = engine.recall(&t, &req).await.unwrap();
        let brief = engine.recall_context(&t, &req).await.unwrap();
        assert!(
            !full.memories.is_empty(),
            "{q}: the full recall lists memories"
        );
        assert!(
            brief.memories.is_empty(),
            "{q}: the context alone lists none"
        );
        assert_eq!(brief.context, full.context, "{q}");
        assert_eq!(brief.context_tokens, full.context_tokens, "{q}");
        let names = |r: &continuum_engine::Recall| {
            r.concepts.iter().map(|c| c.key.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&brief), names(&full), "{q}");
        assert_eq!(brief.links.len(), full.links.len(), "{q}");
        assert!(full.context.contains("Lucas"), "{q}: {}", full.context);
    }
}
