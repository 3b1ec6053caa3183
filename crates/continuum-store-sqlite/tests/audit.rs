//! The audit log's chain against direct edits of the SQLite file: an altered field, a removed
//! entry and two swapped entries are each named by `verify`.

use continuum_core::time::Timestamp;
use continuum_engine::{Engine, EngineConfig};
use continuum_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

#[tokio::test]
async fn tampering_in_the_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuum.db");
    let store = SqliteStore::open(&path, &SqliteOptions::default(), Timestamp(0)).unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    let exec = move |sql: String| -> continuum_testkit::BoxFuture<()> {
        let path = path.clone();
        Box::pin(async move {
            // Another connection to the file, as someone with the disk in hand would edit it.
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            c.execute_batch(&sql).unwrap();
        })
    };
    continuum_testkit::audit_tampering_is_named(&engine, &exec).await;
}
