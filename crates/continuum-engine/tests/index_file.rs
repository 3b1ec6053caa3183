//! The text index kept in a file beside a real SQLite store: the next engine reads it instead
//! of rebuilding, catches up with what was written since, answers exactly as a rebuilt index
//! does, and never trusts a file that is damaged, left half-written by a crash, or written
//! over another history.

use continuum_core::store::ForgetSelector;
use continuum_core::time::ManualClock;
use continuum_core::{MemoryId, SessionId, Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RecallRequest, RememberRequest};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const WORDS: &[&str] = &[
    "kafka",
    "redis",
    "deploy",
    "tokio",
    "paris",
    "hiking",
    "guitar",
    "painting",
    "budget",
    "rollback",
    "migration",
    "sister",
    "dog",
    "concert",
    "recipe",
    "garden",
    "pottery",
    "marathon",
    "tuesday",
    "camping",
    "Caroline",
    "Melanie",
    "Berlin",
    "Postgres",
];

const QUERIES: &[&str] = &[
    "kafka deploy rollback",
    "What does Caroline like about painting?",
    "Melanie sister dog",
    "Berlin marathon on tuesday",
    "Postgres migration budget",
    "no such words anywhere",
];

fn open(path: &Path, files: bool) -> Engine {
    let store = SqliteStore::open(path, &SqliteOptions::default(), Timestamp(1)).unwrap();
    let config = EngineConfig {
        index_files: files,
        index_file_min_memories: 50,
        ..EngineConfig::default()
    };
    Engine::new(Arc::new(store), config)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(Timestamp(10_000_000))))
}

/// Memory `i`: five words of the list (names capitalised, so they become concepts), in one of
/// nine sessions.
fn request(i: usize) -> RememberRequest {
    let words: Vec<&str> = (0..5)
        .map(|k| WORDS[(i * 7 + k * 11 + i / 5) % WORDS.len()])
        .collect();
    let mut req =
        RememberRequest::new(format!("{} and {}", words.join(" "), i), Source::ALL[i % 2]);
    req.session = Some(SessionId::new(format!("s{}", i % 9)).unwrap());
    req.created_at = Some(Timestamp(1_000_000 + i as i64 * 1_000));
    if i.is_multiple_of(3) {
        req.metadata
            .insert("speaker".into(), ["Caroline", "Melanie"][i % 2].into());
    }
    req
}

async fn remember(engine: &Engine, t: &TenantId, from: usize, to: usize) -> Vec<MemoryId> {
    let mut ids = Vec::new();
    for i in from..to {
        ids.push(engine.remember(t, request(i)).await.unwrap().id);
    }
    ids
}

/// Every query's ranking: ids, scores and what matched.
async fn answers(engine: &Engine, t: &TenantId) -> Vec<String> {
    let mut out = Vec::new();
    for q in QUERIES {
        let r = engine.recall(t, &RecallRequest::new(*q)).await.unwrap();
        out.push(
            r.memories
                .iter()
                .map(|m| format!("{} {:.9} {:?}", m.id, m.score, m.matched_terms))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    out
}

fn file_of(db: &Path, t: &TenantId) -> PathBuf {
    let hex: String = t.as_str().bytes().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(format!("{}-index/text-{hex}.idx", db.display()))
}

/// What an engine that never reads or writes files answers.
async fn rebuilt_answers(db: &Path, t: &TenantId) -> Vec<String> {
    let fresh = open(db, false);
    let a = answers(&fresh, t).await;
    assert_eq!(fresh.text_index_info(t).origin, Some("built"));
    a
}

#[tokio::test]
async fn a_second_engine_reads_the_file_catches_up_and_answers_as_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let t = TenantId::new("acme").unwrap();
    let file = file_of(&db, &t);

    let first = open(&db, true);
    let ids = remember(&first, &t, 0, 300).await;
    let before = answers(&first, &t).await;
    assert_eq!(first.text_index_info(&t).origin, Some("built"));
    assert!(file.exists(), "a built index of 300 memories is written");

    // Another process: reads the file, no rebuild.
    let second = open(&db, true);
    assert_eq!(answers(&second, &t).await, before);
    let info = second.text_index_info(&t);
    assert_eq!(info.origin, Some("file"), "{info:?}");
    assert_eq!(info.memories, Some(300));
    assert_eq!(
        second.text_index_info(&t).file_bytes,
        Some(file.metadata().unwrap().len())
    );

    // Writes by the first engine after the file was written: the second catches up.
    remember(&first, &t, 300, 340).await;
    first
        .forget(&t, &ForgetSelector::Ids(vec![ids[3], ids[77], ids[150]]))
        .await
        .unwrap();
    assert!(!file.exists(), "forgetting deletes the file at once");
    first
        .forget(&t, &ForgetSelector::Session(SessionId::new("s4").unwrap()))
        .await
        .unwrap();
    // Both hold the same documents, forgotten ones included until a rebuild (so their scores
    // may differ from a rebuild's by the forgotten documents' share of word counts).
    assert_eq!(answers(&second, &t).await, answers(&first, &t).await);
    assert!(
        file.exists(),
        "an index that applied a forget writes its file again"
    );

    // The rewritten file holds none of the forgotten memories.
    let bytes = std::fs::read(&file).unwrap();
    for id in [ids[3], ids[77], ids[150]] {
        assert!(!bytes.windows(16).any(|w| w == id.0.as_u128().to_le_bytes()));
    }
    // The file is the index as a rebuild makes it.
    let want = rebuilt_answers(&db, &t).await;
    let third = open(&db, true);
    assert_eq!(answers(&third, &t).await, want);
    assert_eq!(third.text_index_info(&t).origin, Some("file"));
    assert_eq!(third.text_index_info(&t).memories, want_len(&db, &t).await);
}

async fn want_len(db: &Path, t: &TenantId) -> Option<usize> {
    let fresh = open(db, false);
    answers(&fresh, t).await;
    fresh.text_index_info(t).memories
}

#[tokio::test]
async fn damaged_half_written_and_foreign_files_are_rebuilt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let t = TenantId::new("acme").unwrap();
    let file = file_of(&db, &t);
    let first = open(&db, true);
    remember(&first, &t, 0, 200).await;
    let want = answers(&first, &t).await;
    let good = std::fs::read(&file).unwrap();

    // A crash between writing the temporary file and renaming it: the old file stays and is
    // used; the leftover is ignored.
    std::fs::write(file.with_extension("tmp4242-1"), &good[..good.len() / 2]).unwrap();
    let e = open(&db, true);
    assert_eq!(answers(&e, &t).await, want);
    assert_eq!(e.text_index_info(&t).origin, Some("file"));

    // A damaged file: rebuilt, and replaced by a good one.
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    std::fs::write(&file, &damaged).unwrap();
    let e = open(&db, true);
    assert_eq!(answers(&e, &t).await, want);
    assert_eq!(e.text_index_info(&t).origin, Some("built"));
    assert!(TextIndexOk::check(&file));

    // A file cut short.
    std::fs::write(&file, &good[..good.len() - 9]).unwrap();
    let e = open(&db, true);
    assert_eq!(answers(&e, &t).await, want);
    assert_eq!(e.text_index_info(&t).origin, Some("built"));

    // A file of another store with another history under the same tenant name, its log at
    // a position this store also has: the event there differs, so it is not used.
    let other_db = dir.path().join("other.db");
    let other = open(&other_db, true);
    for i in 0..200 {
        let mut req = request(i + 1000);
        req.content = format!("entirely different {i} pottery");
        other.remember(&t, req).await.unwrap();
    }
    answers(&other, &t).await;
    std::fs::copy(file_of(&other_db, &t), &file).unwrap();
    let e = open(&db, true);
    assert_eq!(answers(&e, &t).await, want);
    assert_eq!(e.text_index_info(&t).origin, Some("built"));

    // Another tenant's file under this tenant's name.
    let u = TenantId::new("umbrella").unwrap();
    remember(&first, &u, 0, 120).await;
    answers(&first, &u).await;
    std::fs::copy(file_of(&db, &u), &file).unwrap();
    let e = open(&db, true);
    assert_eq!(answers(&e, &t).await, want);
    assert_eq!(e.text_index_info(&t).origin, Some("built"));

    // Small tenants get no file.
    let small = TenantId::new("small").unwrap();
    remember(&first, &small, 0, 20).await;
    answers(&first, &small).await;
    assert!(!file_of(&db, &small).exists());

    // Erasing a tenant deletes its file.
    first.erase_tenant(&u).await.unwrap();
    assert!(!file_of(&db, &u).exists());
}

/// A file that a fresh engine reads without a rebuild.
struct TextIndexOk;
impl TextIndexOk {
    fn check(file: &Path) -> bool {
        let bytes = std::fs::read(file).unwrap();
        continuum_index::TextIndex::from_bytes(&bytes).is_ok()
    }
}
