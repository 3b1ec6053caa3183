//! The shared store conformance suite on a libSQL replica of a real Turso sync server: each
//! case gets a fresh primary, a replica bootstrapped from it, and the local store the replica
//! reads and writes. When the case is done, everything it wrote of the synced types is
//! journaled and pushed, and a second replica bootstrapped from the primary receives exactly
//! that many events: the journal carries whatever the suite's writes produce.

mod common;

use common::{Server, open_location};
use continuum_core::TenantId;
use continuum_store_libsql::LibsqlLocation;
use continuum_testkit::{BoxFuture, Factory, TestStore, store_conformance};
use std::collections::BTreeSet;

struct Guard {
    // Dropped in this order: the check, then the server, then the files.
    node: Option<common::Node>,
    server: Option<Server>,
    dir: tempfile::TempDir,
}

/// Every synced event the local store holds that this node wrote, over all tenants.
async fn local_synced(engine: &continuum_engine::Engine) -> u64 {
    let mut tenants = BTreeSet::new();
    let mut since = 0;
    loop {
        let page = engine.events_all_tenants(since, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        since = last.seq;
        tenants.extend(page.into_iter().map(|r| r.tenant));
    }
    let mut n = 0u64;
    for t in tenants {
        let t: TenantId = t;
        let mut after = 0;
        loop {
            let page = engine.sync_outgoing(&t, after, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            n += page.len() as u64;
        }
    }
    n
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(node) = self.node.take() else { return };
        if std::thread::panicking() {
            return;
        }
        let server = self.server.take().expect("server");
        let dir = self.dir.path().to_path_buf();
        // The case's runtime is gone or busy: check on a thread with a runtime of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if !node
                    .engine
                    .event_cursors()
                    .await
                    .unwrap()
                    .iter()
                    .any(|c| c.name == continuum_store_libsql::JOURNAL_CURSOR)
                    && node.engine.events_all_tenants(0, 1).await.is_err()
                {
                    // The case compacted the log before any round: those events cannot be
                    // journaled, and the round says so rather than skipping them.
                    let err = node.replica.sync(&node.engine).await.unwrap_err();
                    assert!(
                        matches!(&err, continuum_core::Error::Gone(m) if m.contains("export")),
                        "{err}"
                    );
                    return;
                }
                let wrote = local_synced(&node.engine).await;
                let r = node
                    .replica
                    .sync(&node.engine)
                    .await
                    .expect("the case's writes journal and push");
                assert!(r.pushed);
                let other =
                    LibsqlLocation::parse(&server.store_url(&dir.join("b/continuum.db"))).unwrap();
                let b = open_location(&other).await.expect("a second replica");
                let st = b.replica.status(&b.engine).await.unwrap();
                assert_eq!(
                    st.remote_events, wrote,
                    "the second replica sees every synced event the case wrote"
                );
                drop(server);
            });
        })
        .join()
        .expect("the replication check passed");
    }
}

fn fresh() -> BoxFuture<TestStore> {
    Box::pin(async {
        let bin = common::tursodb().expect("checked by require_env");
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(&bin, dir.path());
        let location =
            LibsqlLocation::parse(&server.store_url(&dir.path().join("a/continuum.db"))).unwrap();
        let node = open_location(&location).await.expect("open the replica");
        let store = node.store.clone();
        TestStore {
            store,
            guard: Box::new(Guard {
                node: Some(node),
                server: Some(server),
                dir,
            }),
        }
    })
}

static FACTORY: &Factory = &fresh;

store_conformance!(FACTORY, require_env = "CONTINUUM_TEST_TURSODB");
