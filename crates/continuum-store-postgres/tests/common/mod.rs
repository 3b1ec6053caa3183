//! Shared by the PostgreSQL test files: scratch schemas that drop themselves.

/// Drops its schema (and everything in it) when dropped.
pub struct Scratch {
    pub url: String,
    pub schema: String,
}

impl Scratch {
    /// A fresh schema name with `prefix`, on the server at `url` (created by the store).
    pub fn new(url: String, prefix: &str) -> Self {
        Scratch {
            url,
            schema: format!("{prefix}_{:016x}", fastrand::u64(..)),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own: the test's runtime may be busy dropping us.
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

/// An engine over a store in a fresh scratch schema of `CONTINUUM_TEST_POSTGRES_URL`, with the
/// URL; `None` (after saying so) when the variable is unset.
#[allow(dead_code)] // not every test file uses it
pub async fn scratch_engine(prefix: &str) -> Option<(Scratch, String, continuum_engine::Engine)> {
    let Ok(url) = std::env::var("CONTINUUM_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CONTINUUM_TEST_POSTGRES_URL is unset");
        return None;
    };
    let scratch = Scratch::new(url.clone(), prefix);
    let opts = continuum_store_postgres::PostgresOptions {
        schema: Some(scratch.schema.clone()),
        ..Default::default()
    };
    let store = continuum_store_postgres::PostgresStore::connect(
        &url,
        &opts,
        continuum_core::time::Timestamp(0),
    )
    .await
    .unwrap();
    let engine = continuum_engine::Engine::new(
        std::sync::Arc::new(store),
        continuum_engine::EngineConfig::default(),
    )
    .unwrap();
    Some((scratch, url, engine))
}
