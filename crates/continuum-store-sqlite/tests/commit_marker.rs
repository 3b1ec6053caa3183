//! The commit marker read from the WAL-index header: it moves with every commit from any
//! connection (here a plain SQLite connection stands for another process), and only then.

use continuum_core::store::MemoryGraph;
use continuum_core::time::Timestamp;
use continuum_store_sqlite::{SqliteOptions, SqliteStore};

fn marker(store: &SqliteStore) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(store.commit_marker())
        .unwrap()
        .expect("a SQLite store offers a commit marker")
}

#[test]
fn commits_of_other_connections_move_the_marker_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuum.db");
    let store = SqliteStore::open(&path, &SqliteOptions::default(), Timestamp(0)).unwrap();
    assert!(cfg!(not(unix)) || store.reads_wal_header());
    let first = marker(&store);
    assert_eq!(marker(&store), first, "reading moves nothing");

    let other = rusqlite::Connection::open(&path).unwrap();
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Reads by another connection move nothing either.
    let tables: i64 = other
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert!(tables > 0);
    assert_eq!(
        marker(&store),
        first,
        "another connection's read moves nothing"
    );

    other
        .execute_batch("CREATE TABLE scratch (x INTEGER)")
        .unwrap();
    let created = marker(&store);
    assert_ne!(created, first, "a schema change moves it");
    assert_eq!(marker(&store), created);

    let mut last = created;
    for i in 0..5 {
        other
            .execute("INSERT INTO scratch (x) VALUES (?1)", [i])
            .unwrap();
        let now = marker(&store);
        assert_ne!(now, last, "insert {i} moves it");
        last = now;
    }

    other
        .execute_batch("BEGIN; INSERT INTO scratch (x) VALUES (99); ROLLBACK;")
        .unwrap();
    assert_eq!(
        marker(&store),
        last,
        "a rolled-back transaction moves nothing"
    );

    // A checkpoint that empties the log and a write that starts it again both still show.
    other
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let checkpointed = marker(&store);
    other
        .execute("INSERT INTO scratch (x) VALUES (100)", [])
        .unwrap();
    assert_ne!(
        marker(&store),
        checkpointed,
        "a write after a checkpoint moves it"
    );
}
