//! A scratch PostgreSQL schema for tests that run `continuum` against the machine's
//! PostgreSQL (CONTINUUM_TEST_POSTGRES_URL; CI sets it).

use continuum_core::time::Timestamp;
use continuum_store_postgres::{PostgresOptions, PostgresStore};

pub const URL_VAR: &str = "CONTINUUM_TEST_POSTGRES_URL";

pub fn base_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) => Some(u),
        Err(_) => {
            eprintln!("skipping: {URL_VAR} is not set");
            None
        }
    }
}

/// A scratch schema, migrated, dropped at the end; `url` points sessions at it.
pub struct Schema {
    base: String,
    name: String,
    pub url: String,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Schema {
    pub fn new(base: &str) -> Self {
        let name = format!("continuum_cli_{:016x}", fastrand::u64(..));
        runtime().block_on(async {
            let opts = PostgresOptions {
                pool_size: 1,
                schema: Some(name.clone()),
                ..PostgresOptions::default()
            };
            PostgresStore::connect(base, &opts, Timestamp(0))
                .await
                .expect("create the schema");
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Schema {
            base: base.to_string(),
            name,
            url,
        }
    }
}

impl Schema {
    /// The planner's row estimate for one of the schema's tables (-1: never analysed).
    #[allow(dead_code)]
    pub fn planner_rows(&self, table: &str) -> f64 {
        let (base, name, table) = (self.base.clone(), self.name.clone(), table.to_string());
        runtime().block_on(async move {
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let row = client
                .query_one(
                    "SELECT c.reltuples::float8 FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = $2",
                    &[&name, &table],
                )
                .await
                .unwrap();
            row.get(0)
        })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
                let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .unwrap();
            })
        })
        .join();
    }
}
