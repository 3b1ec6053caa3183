//! The HNSW vector graph through the engine, on a real SQLite file: built by `reindex`'s
//! call, used by recall, saved beside the database, loaded (not rebuilt) by the next process,
//! caught up with later writes, and never left holding a forgotten memory's vector on disk.

use continuum_core::store::ForgetSelector;
use continuum_core::{Memory, Result, Source, TenantId, Timestamp};
use continuum_engine::{Engine, EngineConfig, RecallRequest, RememberRequest};
use continuum_index::ann::Ann;
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIM: usize = 48;

/// Each word is a fixed pseudo-random direction; a text is the normalised sum of its words'.
/// Texts sharing words are close, as with a real model, and every vector differs.
struct WordHashEmbedder;

fn word_vector(w: &str) -> Vec<f32> {
    let mut h = w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (0..DIM)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

#[async_trait::async_trait]
impl continuum_core::embed::Embedder for WordHashEmbedder {
    fn model(&self) -> &str {
        "test-word-hash"
    }
    fn dim(&self) -> usize {
        DIM
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; DIM];
                for w in t.split_whitespace() {
                    for (x, y) in v.iter_mut().zip(word_vector(w)) {
                        *x += y;
                    }
                }
                continuum_core::embed::normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Memory `i`'s text: four words of a 400-word vocabulary.
fn text(i: usize) -> String {
    (0..4)
        .map(|k| format!("w{}", (i * 7 + k * 131 + i / 3) % 400))
        .collect::<Vec<_>>()
        .join(" ")
}

fn open(path: &Path, min: usize) -> Engine {
    let store = SqliteStore::open(path, &SqliteOptions::default(), Timestamp(1)).unwrap();
    let config = EngineConfig {
        ann_min_vectors: min,
        ..EngineConfig::default()
    };
    Engine::new(Arc::new(store), config)
        .unwrap()
        .with_embedder(Arc::new(WordHashEmbedder))
}

async fn remember(engine: &Engine, t: &TenantId, from: usize, to: usize) -> Vec<Memory> {
    let mut out = Vec::new();
    for i in from..to {
        let mut req = RememberRequest::new(text(i), Source::User);
        req.session = Some(continuum_core::SessionId::new(format!("s{}", i / 10)).unwrap());
        out.push(engine.remember(t, req).await.unwrap());
    }
    engine.reindex(t, false, &mut |_, _| {}).await.unwrap();
    out
}

fn snapshot_of(db: &Path) -> PathBuf {
    let dir = PathBuf::from(format!("{}-index", db.display()));
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("ann-"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        files.len(),
        1,
        "one snapshot in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}

async fn top_ids(engine: &Engine, t: &TenantId, q: &str) -> (Vec<String>, String) {
    let r = engine.recall(t, &RecallRequest::new(q)).await.unwrap();
    let ids = r.memories.iter().map(|m| m.id.to_string()).collect();
    (ids, r.semantic.unwrap().search)
}

/// Waits for the engine's background job to attach a graph.
async fn wait_for_graph(engine: &Engine, t: &TenantId, q: &str) {
    let started = Instant::now();
    loop {
        let _ = engine.recall(t, &RecallRequest::new(q)).await.unwrap();
        let info = engine.vector_index_info(t).unwrap();
        if info.search == "hnsw" && !info.building {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no graph: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn build(engine: &Engine, t: &TenantId) -> Option<usize> {
    engine
        .build_vector_index(t, Arc::new(|_, _| {}))
        .await
        .unwrap()
}

fn graph_size(engine: &Engine, t: &TenantId) -> Option<usize> {
    engine.vector_index_info(t).unwrap().graph_vectors
}

#[tokio::test]
async fn the_graph_is_built_saved_loaded_caught_up_and_cleaned_after_a_forget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let t = TenantId::new("graph").unwrap();
    let engine = open(&db, 300);
    let mems = remember(&engine, &t, 0, 600).await;

    // Below the threshold nothing is built; at it, reindex's call builds and saves.
    let exact = open(&db, usize::MAX);
    assert_eq!(build(&exact, &t).await, None);
    let n = build(&engine, &t).await;
    assert_eq!(n, Some(600));
    let snap = snapshot_of(&db);
    let saved_at = std::fs::metadata(&snap).unwrap().modified().unwrap();

    // Recall through the graph ranks as the exact scan does.
    let (mut same, mut total) = (0, 0);
    for i in (0..600).step_by(37) {
        let q = text(i);
        let (g, how) = top_ids(&engine, &t, &q).await;
        assert_eq!(how, "hnsw");
        let (e, how) = top_ids(&exact, &t, &q).await;
        assert_eq!(how, "exact");
        assert_eq!(g[0], e[0], "query {q}");
        same += g.iter().filter(|id| e.contains(id)).count();
        total += e.len();
    }
    assert!(same as f64 / total as f64 >= 0.9, "{same}/{total}");

    // A new process loads the saved graph instead of building one: the file is not rewritten.
    drop(engine);
    let engine = open(&db, 300);
    wait_for_graph(&engine, &t, &text(3)).await;
    assert_eq!(graph_size(&engine, &t), Some(600));
    assert_eq!(
        std::fs::metadata(&snap).unwrap().modified().unwrap(),
        saved_at
    );

    // Later writes are caught up, and the graph saved again.
    let more = remember(&engine, &t, 600, 650).await;
    assert_eq!(build(&engine, &t).await, Some(650));
    let (top, _) = top_ids(&engine, &t, &text(640)).await;
    assert_eq!(top[0], more[40].id.to_string());
    let saved = Ann::from_bytes(&std::fs::read(&snap).unwrap(), DIM).unwrap();
    assert_eq!(saved.len(), 650);

    // Forgetting deletes the snapshot at once; the rebuilt graph (and its file) lacks it.
    let gone = mems[5].id;
    engine
        .forget(&t, &ForgetSelector::Ids(vec![gone]))
        .await
        .unwrap();
    assert!(!snap.exists(), "the snapshot outlived a forgotten memory");
    let (top, _) = top_ids(&engine, &t, &text(5)).await;
    assert!(!top.contains(&gone.to_string()));
    assert_eq!(build(&engine, &t).await, Some(649));
    let saved = Ann::from_bytes(&std::fs::read(snapshot_of(&db)).unwrap(), DIM).unwrap();
    assert_eq!(saved.len(), 649);
    assert!(!saved.contains(&gone));
    assert_eq!(saved.forgotten, 0);

    // A damaged snapshot is ignored and replaced.
    std::fs::write(snapshot_of(&db), b"not a graph").unwrap();
    drop(engine);
    let engine = open(&db, 300);
    wait_for_graph(&engine, &t, &text(9)).await;
    assert_eq!(graph_size(&engine, &t), Some(649));
    let saved = Ann::from_bytes(&std::fs::read(snapshot_of(&db)).unwrap(), DIM).unwrap();
    assert_eq!(saved.len(), 649);

    // Erasing the tenant leaves no file behind.
    engine.erase_tenant(&t).await.unwrap();
    assert_eq!(
        std::fs::read_dir(format!("{}-index", db.display()))
            .unwrap()
            .count(),
        0
    );
}

/// Files in the store's index directory.
/// The graph files beside the database (the text index has a file of its own there too).
fn index_files(db: &Path) -> Vec<String> {
    std::fs::read_dir(format!("{}-index", db.display()))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ann-"))
                .collect()
        })
        .unwrap_or_default()
}

fn graph_job(sup: &continuum_ops::Supervisor, engine: &Engine) {
    engine.expect_vector_graph_job();
    let engine = engine.clone();
    sup.spawn(
        "vector-graph",
        continuum_ops::Backoff::default(),
        move |stop| {
            let engine = engine.clone();
            async move { engine.run_vector_graph_job(stop).await }
        },
    )
    .unwrap();
}

#[tokio::test]
async fn the_supervised_graph_job_stops_mid_build_and_builds_again_after_a_restart() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let t = TenantId::new("supervised").unwrap();
    let engine = open(&db, 300);
    let started = Instant::now();
    remember(&engine, &t, 0, N).await;
    eprintln!(
        "{N} memories stored and embedded in {:?}",
        started.elapsed()
    );

    // Under a supervisor, recall queues the build for the job instead of starting a thread.
    let sup = continuum_ops::Supervisor::new();
    graph_job(&sup, &engine);
    let _ = engine
        .recall(&t, &RecallRequest::new(text(1)))
        .await
        .unwrap();
    let info = engine.vector_index_info(&t).unwrap();
    assert!(info.building, "{info:?}");
    assert_eq!(info.search, "exact");
    // Wait until the job has taken the build, then shut down while it runs.
    let waited = Instant::now();
    while engine.vector_graph_queue() > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the job never took the build"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let stopping = Instant::now();
    let aborted = sup.shutdown(Duration::from_secs(30)).await;
    eprintln!(
        "the job stopped {:?} after the shutdown began",
        stopping.elapsed()
    );
    assert!(
        aborted.is_empty(),
        "aborted instead of stopping: {aborted:?}"
    );
    let job = sup
        .statuses()
        .into_iter()
        .find(|j| j.name == "vector-graph")
        .unwrap();
    assert_eq!(job.state, continuum_ops::JobState::Stopped, "{job:?}");
    // Nothing half-built was attached or written, and the tenant is free for the next build.
    let info = engine.vector_index_info(&t).unwrap();
    assert_eq!(
        info.search, "exact",
        "the build finished before the shutdown: {info:?}"
    );
    assert!(!info.building, "the claim outlived the job: {info:?}");
    assert!(index_files(&db).is_empty(), "{:?}", index_files(&db));

    // A new supervisor's job builds the whole graph and saves it; exact search until then.
    let sup = continuum_ops::Supervisor::new();
    graph_job(&sup, &engine);
    let built = Instant::now();
    wait_for_graph(&engine, &t, &text(2)).await;
    eprintln!("the job built a graph of {N} in {:?}", built.elapsed());
    assert_eq!(graph_size(&engine, &t), Some(N));
    let saved = Ann::from_bytes(&std::fs::read(snapshot_of(&db)).unwrap(), DIM).unwrap();
    assert_eq!(saved.len(), N);
    assert!(sup.shutdown(Duration::from_secs(30)).await.is_empty());
}
