//! The shared store conformance suite, run against SQLite in a fresh temp dir per case.

use continuum_core::time::Timestamp;
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use continuum_testkit::{BoxFuture, Factory, TestStore, store_conformance};
use std::sync::Arc;

fn fresh() -> BoxFuture<TestStore> {
    Box::pin(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(
            dir.path().join("continuum.db"),
            &SqliteOptions::default(),
            Timestamp(0),
        )
        .expect("open store");
        TestStore {
            store: Arc::new(store),
            guard: Box::new(dir),
        }
    })
}

static FACTORY: &Factory = &fresh;

store_conformance!(FACTORY);
