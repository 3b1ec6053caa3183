//! The shared store conformance suite against the machine's PostgreSQL, a fresh schema per
//! case, dropped afterwards. Set CONTINUUM_TEST_POSTGRES_URL (CI does) to run it.
//!
//! The suite runs twice: with pgvector as the server allows (`auto`: the database searches
//! vectors when the extension is there, as on CI) and with `pgvector=off` (vectors ranked in
//! process), so that both paths keep the same behaviour.

use continuum_core::time::Timestamp;
use continuum_store_postgres::{PostgresOptions, PostgresStore, pgvector};
use continuum_testkit::{BoxFuture, Factory, TestStore, store_conformance};
use std::sync::Arc;

const URL_VAR: &str = "CONTINUUM_TEST_POSTGRES_URL";

mod common;

use common::Scratch;

fn fresh(pgvector: pgvector::Mode) -> BoxFuture<TestStore> {
    Box::pin(async move {
        let url = std::env::var(URL_VAR).expect("checked by the macro");
        let scratch = Scratch::new(url.clone(), "continuum_t");
        let opts = PostgresOptions {
            pool_size: 4,
            schema: Some(scratch.schema.clone()),
            pgvector,
        };
        let store = PostgresStore::connect(&url, &opts, Timestamp(0))
            .await
            .expect("connect");
        TestStore {
            store: Arc::new(store),
            guard: Box::new(scratch),
        }
    })
}

static AUTO: &Factory = &|| fresh(pgvector::Mode::Auto);
static IN_PROCESS: &Factory = &|| fresh(pgvector::Mode::Off);

store_conformance!(AUTO, require_env = URL_VAR);

mod in_process_vectors {
    use super::*;
    store_conformance!(IN_PROCESS, require_env = URL_VAR);
}
