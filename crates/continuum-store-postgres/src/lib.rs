//! The PostgreSQL store: the same model and behaviour as the SQLite store, for team servers and
//! hosted PostgreSQL (Supabase, Neon, RDS are plain PostgreSQL to a client).
//!
//! - A connection pool (deadpool); TLS (rustls) as libpq's `sslmode` says ([`tls`]).
//! - Writes are set-based: `apply` sends each kind of row as arrays through `UNNEST`, about ten
//!   round trips per transaction whatever its size. Hebbian arithmetic happens in the upsert.
//! - Writers of one tenant are serialised by a transaction-scoped advisory lock, so a tenant's
//!   change-log order is its commit order (the derived index catches up by sequence number) and
//!   concurrent learns of the same concept neither duplicate it nor lose an increment.
//! - Full text: a generated `tsvector` with a GIN index, ranked with `ts_rank_cd`.
//! - Vectors: BYTEA in `vectors`, searched in the database with pgvector's HNSW index when the
//!   server has the extension ([`pgvector`]), otherwise by the engine's in-memory index.
//! - Versioned, checksummed migrations in `migrations/`, applied under an advisory lock.

pub mod migrations;
pub mod pgvector;
pub mod tls;

use async_trait::async_trait;
use continuum_core::event::{EVENT_VERSION, Event, EventRecord, EventScope};
use continuum_core::extract::ExtractedConcept;
use continuum_core::hebbian::HebbianRule;
use continuum_core::memory::{Decision, Metadata, SessionInfo};
use continuum_core::store::{
    Applied, Concept, ForgetSelector, ImportKey, IndexDoc, Link, LinkWrite, MAX_PAGE, MemoryFilter,
    MemoryHead, Order, Page, PageRequest, Scored, SnapshotItem, SnapshotSink, StoreStats,
    WriteBatch,
};
use continuum_core::{
    Error, EventLog, KeyStore, Memory, MemoryGraph, MemoryId, Result, SessionId, TenantId,
    Timestamp, VectorSearch, VectorStore,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

mod accounts;
mod audit;
mod events;
mod graph;
mod keys;
mod records;
mod rows;
mod sql;
mod sync;
mod vectors;
mod webhooks;
mod write;

use events::*;
use rows::*;
use sql::*;
use write::*;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in the pool.
    pub pool_size: usize,
    /// Use this schema (created if missing) instead of the connection's default search path.
    pub schema: Option<String>,
    /// Whether to search vectors with pgvector; `pgvector=` in the URL overrides it.
    pub pgvector: pgvector::Mode,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 8,
            schema: None,
            pgvector: pgvector::Mode::Auto,
        }
    }
}

/// The PostgreSQL implementation of [`MemoryStore`].
pub struct PostgresStore {
    pool: Pool,
    /// host:port/db, for `stats` and `doctor` (never the password).
    target: String,
    ssl_mode: tls::SslMode,
    /// Vector search in the database (pgvector), when it is used.
    ann: Option<pgvector::Ann>,
    /// Why pgvector is not used, when it is not.
    ann_off: Option<String>,
}

/// Maps a driver error to an error kind a caller can act on.
pub(crate) fn map_err(e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "23505" => Error::Conflict(format!("already exists: {}", db.message())),
            "40P01" | "40001" | "55P03" => Error::Unavailable(
                "the database is busy (lock timeout or conflict); try again".into(),
            ),
            "53300" => Error::Unavailable("the database has too many connections".into()),
            "3D000" => Error::Unavailable(format!("the database does not exist: {}", db.message())),
            "28000" | "28P01" => Error::Unavailable("the database refused the credentials".into()),
            _ => Error::Internal(format!("{code}: {}", db.message())),
        };
    }
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        chain.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    if chain.contains("TLS") || chain.contains("certificate") {
        return Error::Unavailable(format!(
            "TLS to PostgreSQL failed ({chain}); see sslmode and sslrootcert in the README"
        ));
    }
    if e.is_closed() || e.to_string().contains("connect") {
        return Error::Unavailable(format!("cannot reach PostgreSQL: {e}"));
    }
    Error::Internal(e.to_string())
}

fn pool_err(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_err(e),
        other => Error::Unavailable(format!("cannot get a PostgreSQL connection: {other}")),
    }
}

fn valid_schema(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "schema name '{s}' must be lower-case letters, digits and '_'"
        )))
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), creating the schema if one
    /// is named, and applies pending migrations.
    pub async fn connect(url: &str, opts: &PostgresOptions, now: Timestamp) -> Result<Self> {
        let (url, mode) = pgvector::split_mode(url)?;
        let (url, tls) = tls::split_url(&url)?;
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::InvalidInput(format!("not a PostgreSQL URL: {e}")))?;
        cfg.ssl_mode(match tls.mode {
            tls::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            tls::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let target = format!(
            "{}/{}",
            cfg.get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default(),
            cfg.get_dbname().unwrap_or("")
        );
        if let Some(schema) = &opts.schema {
            valid_schema(schema)?;
            // Sessions search this schema first; it may not exist yet (created below).
            cfg.options(format!("-c search_path={schema}"));
        }
        let mgr_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let mgr = match tls::client_config(&tls)? {
            None => Manager::from_config(cfg, NoTls, mgr_config),
            Some(client) => Manager::from_config(
                cfg,
                tokio_postgres_rustls::MakeRustlsConnect::new(client),
                mgr_config,
            ),
        };
        let pool = Pool::builder(mgr)
            .max_size(opts.pool_size.max(1))
            .build()
            .map_err(|e| Error::Internal(format!("building the connection pool: {e}")))?;
        let mut store = PostgresStore {
            pool,
            target,
            ssl_mode: tls.mode,
            ann: None,
            ann_off: None,
        };
        if let Some(schema) = &opts.schema {
            store
                .client()
                .await?
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(map_err)?;
        }
        store.migrate(now).await?;
        let mut client = store.client().await?;
        match pgvector::Ann::open(&mut client, mode.unwrap_or(opts.pgvector)).await? {
            Ok(ann) => store.ann = Some(ann),
            Err(why) => store.ann_off = Some(why),
        }
        drop(client);
        Ok(store)
    }

    fn pgvector_off(&self) -> String {
        format!(
            "this PostgreSQL store does not search vectors itself: {}",
            self.ann_off.as_deref().unwrap_or("pgvector is not in use")
        )
    }

    /// Whether vectors are searched with pgvector, and if not, why.
    pub fn pgvector(&self) -> pgvector::Status {
        match (&self.ann, &self.ann_off) {
            (Some(ann), _) => ann.status(),
            (None, why) => pgvector::Status::Disabled(why.clone().unwrap_or_default()),
        }
    }

    /// The `sslmode` in effect.
    pub fn ssl_mode(&self) -> tls::SslMode {
        self.ssl_mode
    }

    /// Whether this process's connection to the server is encrypted (asks the server).
    pub async fn encrypted(&self) -> Result<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// Where the store lives (host/database), for display.
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Applies pending migrations (also done by [`PostgresStore::connect`]).
    pub async fn migrate(&self, now: Timestamp) -> Result<Vec<u32>> {
        let mut client = self.client().await?;
        migrations::migrate(&mut client, now.millis()).await
    }

    /// The migrations recorded in the store.
    pub async fn applied_migrations(&self) -> Result<Vec<migrations::AppliedMigration>> {
        let client = self.client().await?;
        migrations::applied(&client).await
    }

    /// Drops a schema and everything in it (tests use a schema each).
    pub async fn drop_schema(&self, schema: &str) -> Result<()> {
        valid_schema(schema)?;
        self.client()
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(map_err)
    }
}

/// Runs a statement prepared once per connection (deadpool caches it): one round trip instead
/// of a parse round trip before every execution.
async fn cached_query(
    client: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, params).await
}

async fn cached_query_one(
    client: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Row, tokio_postgres::Error> {
    let stmt = client.prepare_cached(sql).await?;
    client.query_one(&stmt, params).await
}

async fn tx_query(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await
}

async fn tx_query_one(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Row, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query_one(&stmt, params).await
}

async fn tx_execute(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(valid_schema("continuum_test_1").is_ok());
        for bad in ["", "Upper", "a-b", "x; drop table", "1abc"] {
            assert!(valid_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ts_queries_keep_only_letters_and_digits() {
        assert_eq!(
            ts_query(&["rust".into(), "it's".into(), "!!".into()]).unwrap(),
            "rust | its"
        );
        assert!(ts_query(&["&|!".into()]).is_none());
    }
}
