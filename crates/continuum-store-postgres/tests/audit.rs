//! The audit log's chain against direct edits in PostgreSQL: an altered field, a removed
//! entry and two swapped entries are each named by `verify`. Needs
//! `CONTINUUM_TEST_POSTGRES_URL`.

mod common;

use continuum_core::time::Timestamp;
use continuum_engine::{Engine, EngineConfig};
use continuum_store_postgres::{PostgresOptions, PostgresStore};
use std::sync::Arc;

#[tokio::test]
async fn tampering_in_the_database_is_named() {
    let Ok(url) = std::env::var("CONTINUUM_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CONTINUUM_TEST_POSTGRES_URL is unset");
        return;
    };
    let scratch = common::Scratch::new(url.clone(), "continuum_audit");
    let opts = PostgresOptions {
        schema: Some(scratch.schema.clone()),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect(&url, &opts, Timestamp(0))
        .await
        .unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    let schema = scratch.schema.clone();
    let exec = move |sql: String| -> continuum_testkit::BoxFuture<()> {
        let (url, schema) = (url.clone(), schema.clone());
        Box::pin(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                .await
                .unwrap();
        })
    };
    continuum_testkit::audit_tampering_is_named(&engine, &exec).await;
}
