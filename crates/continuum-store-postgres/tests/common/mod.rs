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
