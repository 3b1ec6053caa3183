//! The shared store conformance suite against the machine's PostgreSQL, a fresh schema per
//! case, dropped afterwards. Set CONTINUUM_TEST_POSTGRES_URL (CI does) to run it.

use continuum_core::time::Timestamp;
use continuum_store_postgres::{PostgresOptions, PostgresStore};
use continuum_testkit::{BoxFuture, Factory, TestStore, store_conformance};
use std::sync::Arc;

const URL_VAR: &str = "CONTINUUM_TEST_POSTGRES_URL";

/// Drops the case's schema when the case ends.
struct Scratch {
    url: String,
    schema: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own: the test's runtime is busy dropping us.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .unwrap();
            })
        })
        .join();
    }
}

fn fresh() -> BoxFuture<TestStore> {
    Box::pin(async {
        let url = std::env::var(URL_VAR).expect("checked by the macro");
        let schema = format!("continuum_t_{:016x}", fastrand::u64(..));
        let opts = PostgresOptions {
            pool_size: 4,
            schema: Some(schema.clone()),
        };
        let store = PostgresStore::connect(&url, &opts, Timestamp(0))
            .await
            .expect("connect");
        TestStore {
            store: Arc::new(store),
            guard: Box::new(Scratch { url, schema }),
        }
    })
}

static FACTORY: &Factory = &fresh;

store_conformance!(FACTORY, require_env = URL_VAR);
