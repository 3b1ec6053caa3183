//! A bound on the text indexes held in memory over many tenants (`max_resident_bytes`): the
//! least recently used idle tenants leave memory, their files written first, and come back
//! from them on their next recall with the same answers and with what was written meanwhile.

use continuum_core::time::ManualClock;
use continuum_core::{SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RecallRequest, RememberRequest};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The words memories are made of.
const WORDS: &str = "kafka redis deploy tokio paris hiking guitar painting budget rollback \
                     migration sister dog concert recipe garden pottery";

fn open(path: &Path, max_resident_bytes: usize, idle: Duration) -> Engine {
    let store = SqliteStore::open(path, &SqliteOptions::default(), Timestamp(1)).unwrap();
    let config = EngineConfig {
        index_file_min_memories: 50,
        max_resident_bytes,
        resident_idle: idle,
        ..EngineConfig::default()
    };
    Engine::new(Arc::new(store), config)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(Timestamp(10_000_000))))
}

async fn fill(engine: &Engine, t: &TenantId, n: usize) {
    for i in 0..n {
        let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
        let words: Vec<&str> = (0..4)
            .map(|k| vocabulary[(i * 5 + k * 3) % vocabulary.len()])
            .collect();
        let mut req = RememberRequest::new(format!("{} note {i}", words.join(" ")), Source::User);
        req.session = Some(SessionId::new(format!("s{}", i % 7)).unwrap());
        engine.remember(t, req).await.unwrap();
    }
}

async fn answer(engine: &Engine, t: &TenantId, q: &str) -> Vec<String> {
    let r = engine.recall(t, &RecallRequest::new(q)).await.unwrap();
    r.memories
        .iter()
        .map(|m| format!("{} {:.9}", m.content, m.score))
        .collect()
}

fn resident(engine: &Engine, t: &TenantId) -> bool {
    engine.text_index_info(t).memories.is_some()
}

fn index_bytes(engine: &Engine, t: &TenantId) -> usize {
    engine
        .text_index_bytes(t)
        .unwrap()
        .iter()
        .map(|(_, b)| b)
        .sum()
}

#[tokio::test]
async fn idle_tenants_leave_memory_past_the_bound_and_return_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let tenants: Vec<TenantId> = ["a", "b", "c"].map(|t| TenantId::new(t).unwrap()).to_vec();
    // Sizes first, on an unbounded engine.
    let one = {
        let engine = open(&db, 0, Duration::ZERO);
        for t in &tenants {
            fill(&engine, t, 200).await;
        }
        answer(&engine, &tenants[0], "kafka deploy").await;
        index_bytes(&engine, &tenants[0])
    };
    assert!(one > 10_000, "a 200-memory index holds {one} bytes");
    // Room for two tenants' indexes, not three.
    let engine = open(&db, one * 5 / 2, Duration::ZERO);
    let before = answer(&engine, &tenants[0], "kafka deploy").await;
    assert!(!before.is_empty());
    answer(&engine, &tenants[1], "paris hiking").await;
    assert!(resident(&engine, &tenants[0]) && resident(&engine, &tenants[1]));
    // The third tenant's load pushes out the least recently used one, a.
    answer(&engine, &tenants[2], "guitar painting").await;
    assert!(!resident(&engine, &tenants[0]), "a should have left memory");
    assert!(resident(&engine, &tenants[1]) && resident(&engine, &tenants[2]));
    let report = engine.bound_resident_indexes().await;
    assert_eq!(report.tenants, 2);
    assert!(report.bytes <= one * 5 / 2, "{report:?}");
    assert!(report.evicted.is_empty());

    // Its return reads the file, with the same answers.
    assert_eq!(answer(&engine, &tenants[0], "kafka deploy").await, before);
    assert_eq!(engine.text_index_info(&tenants[0]).origin, Some("file"));
    // a came back: b, now the least recently used, left.
    assert!(!resident(&engine, &tenants[1]));
    assert!(resident(&engine, &tenants[0]) && resident(&engine, &tenants[2]));

    // Written to while out of memory: its return catches up with the write.
    let mut req = RememberRequest::new("the zeppelin arrives on friday", Source::User);
    req.session = Some(SessionId::new("late").unwrap());
    engine.remember(&tenants[1], req).await.unwrap();
    let late = answer(&engine, &tenants[1], "zeppelin").await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].starts_with("the zeppelin"));
    assert_eq!(engine.text_index_info(&tenants[1]).origin, Some("file"));
}

#[tokio::test]
async fn tenants_used_recently_stay_even_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
    // A bound smaller than any index, and an idle time no test outlives.
    let engine = open(&db, 1, Duration::from_secs(3600));
    fill(&engine, &a, 60).await;
    fill(&engine, &b, 60).await;
    answer(&engine, &a, "kafka").await;
    answer(&engine, &b, "redis").await;
    let report = engine.bound_resident_indexes().await;
    assert!(report.evicted.is_empty(), "{report:?}");
    assert_eq!(report.tenants, 2);
    assert!(resident(&engine, &a) && resident(&engine, &b));

    // With no idle time asked for, both go (nothing holds them between recalls), and a
    // recall brings one back with its answers intact.
    let eager = open(&db, 1, Duration::ZERO);
    let first = answer(&eager, &a, "kafka").await;
    assert!(
        resident(&eager, &a),
        "the tenant being read is not dropped by its own load"
    );
    answer(&eager, &b, "redis").await;
    assert!(!resident(&eager, &a), "b's load drops a");
    assert!(resident(&eager, &b));
    let report = eager.bound_resident_indexes().await;
    assert_eq!(report.tenants, 0, "{report:?}");
    assert_eq!(report.evicted, vec![b.clone()]);
    assert_eq!(answer(&eager, &a, "kafka").await, first);
    assert!(resident(&eager, &a));
}

#[tokio::test]
async fn store_caches_are_given_back_once_after_a_quiet_period() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let engine = open(&db, 0, Duration::ZERO);
    let t = TenantId::new("a").unwrap();
    fill(&engine, &t, 30).await;
    let first = answer(&engine, &t, "kafka").await;
    // The first look only notes where things are; a second with nothing between releases,
    // and a third does not release again.
    assert!(!engine.release_memory_when_quiet().await.unwrap());
    assert!(engine.release_memory_when_quiet().await.unwrap());
    assert!(!engine.release_memory_when_quiet().await.unwrap());
    // A recall is activity: the next look waits for another quiet period.
    assert_eq!(answer(&engine, &t, "kafka").await, first);
    assert!(!engine.release_memory_when_quiet().await.unwrap());
    assert!(engine.release_memory_when_quiet().await.unwrap());
    // So is a write.
    fill(&engine, &t, 1).await;
    assert!(!engine.release_memory_when_quiet().await.unwrap());
    assert!(engine.release_memory_when_quiet().await.unwrap());
    assert!(!answer(&engine, &t, "paris").await.is_empty());
}
