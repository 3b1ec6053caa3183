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

const MEMORY_COLS: &str = "m.id, m.session, m.source, m.kind, m.content, m.metadata::text, m.created_at, m.content_hash, m.valid_until, m.superseded_by";
const HEAD_COLS: &str = "m.id, m.source, m.session, m.created_at, m.superseded_by IS NOT NULL";

fn bad_row(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} is invalid: {e}"))
}

fn row_memory(r: &Row) -> Result<Memory> {
    let session: Option<String> = r.get(1);
    let source: String = r.get(2);
    let metadata: String = r.get(5);
    Ok(Memory {
        id: MemoryId(r.get::<_, Uuid>(0)),
        session: session.map(SessionId::new).transpose()?,
        source: source.parse()?,
        kind: r.get(3),
        content: r.get(4),
        metadata: serde_json::from_str::<Metadata>(&metadata)
            .map_err(|e| bad_row("metadata", e))?,
        created_at: Timestamp(r.get(6)),
        content_hash: r.get(7),
        valid_until: r.get::<_, Option<i64>>(8).map(Timestamp),
        superseded_by: r.get::<_, Option<Uuid>>(9).map(MemoryId),
    })
}

/// Reads `id, source, session, created_at, superseded` starting at column `at`.
fn row_head(r: &Row, at: usize) -> Result<MemoryHead> {
    let source: String = r.get(at + 1);
    let session: Option<String> = r.get(at + 2);
    Ok(MemoryHead {
        id: MemoryId(r.get::<_, Uuid>(at)),
        source: source.parse()?,
        session: session.map(SessionId::new).transpose()?,
        created_at: Timestamp(r.get(at + 3)),
        superseded: r.get(at + 4),
    })
}

fn key_row(r: &Row) -> Result<continuum_core::keys::ApiKey> {
    Ok(continuum_core::keys::ApiKey {
        prefix: r.get(0),
        tenant: TenantId::new(r.get::<_, String>(1))?,
        scope: r.get::<_, String>(2).parse()?,
        hash: r.get(3),
        name: r.get(4),
        created_at: Timestamp(r.get(5)),
        expires_at: r.get::<_, Option<i64>>(6).map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>(7).map(Timestamp),
    })
}

fn row_concept(r: &Row) -> Concept {
    Concept {
        key: r.get(0),
        name: r.get(1),
        kind: r.get(2),
        mentions: r.get::<_, i64>(3).max(0) as u64,
        first_seen: Timestamp(r.get(4)),
        last_seen: Timestamp(r.get(5)),
    }
}

fn link(x: String, y: String, strength: f64, count: i64, last_at: i64) -> Link {
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    Link {
        a,
        b,
        strength,
        count: count.max(0) as u64,
        last_at: Timestamp(last_at),
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// SQL conditions for a filter on alias `m`, numbering parameters after those in `p`.
fn filter_sql(f: &MemoryFilter, p: &mut Params) -> String {
    let mut sql = String::new();
    if !f.sources.is_empty() {
        let sources: Vec<String> = f.sources.iter().map(|s| s.as_str().to_string()).collect();
        p.push(Box::new(sources));
        sql.push_str(&format!(" AND m.source = ANY(${})", p.len()));
    }
    if let Some(s) = &f.session {
        p.push(Box::new(s.as_str().to_string()));
        sql.push_str(&format!(" AND m.session = ${}", p.len()));
    }
    if let Some(t) = f.since {
        p.push(Box::new(t.millis()));
        sql.push_str(&format!(" AND m.created_at >= ${}", p.len()));
    }
    if let Some(t) = f.until {
        p.push(Box::new(t.millis()));
        sql.push_str(&format!(" AND m.created_at < ${}", p.len()));
    }
    if f.current_only {
        sql.push_str(" AND m.superseded_by IS NULL");
    }
    sql
}

fn parse_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || Error::InvalidInput(format!("'{c}' is not a valid page cursor"));
    let (t, r) = c.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
}

/// A tsquery matching any of the terms (letters and digits only reach the database).
fn ts_query(terms: &[String]) -> Option<String> {
    let clean: Vec<String> = terms
        .iter()
        .map(|t| {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    (!clean.is_empty()).then(|| clean.join(" | "))
}

/// Events gathered during a write, appended in one statement at its end.
#[derive(Default)]
struct EventRows {
    at: Vec<i64>,
    kind: Vec<&'static str>,
    subject: Vec<Option<String>>,
    payload: Vec<String>,
}

impl EventRows {
    fn push(&mut self, at: i64, event: Event) {
        self.at.push(at);
        self.kind.push(event.kind());
        self.subject.push(event.subject().map(|id| id.to_string()));
        self.payload.push(event.encode());
    }

    /// Appends the events and returns the log's position after them. The positions come from
    /// the one-row `event_head`, whose row lock is held from here to commit: writers of
    /// different tenants take turns for this last step only, so the sequence is gap-free
    /// (a rollback returns the numbers) and in commit order (no later number commits first).
    async fn insert(self, tx: &deadpool_postgres::Transaction<'_>, tenant: &str) -> Result<u64> {
        if self.at.is_empty() {
            return Ok(0);
        }
        let n = self.at.len() as i64;
        let kinds: Vec<&str> = self.kind;
        let row = tx_query_one(
            tx,
            "WITH head AS (UPDATE event_head SET seq = seq + $2 WHERE id = 1 RETURNING seq),
                  ins AS (
                INSERT INTO events (seq, tenant, at, type, v, subject, payload)
                SELECT head.seq - $2 + t.ord, $1, t.at, t.type, $7, t.subject, t.payload
                FROM head, UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
                    WITH ORDINALITY AS t(at, type, subject, payload, ord))
             SELECT seq FROM head",
            &[
                &tenant,
                &n,
                &self.at,
                &kinds,
                &self.subject,
                &self.payload,
                &(EVENT_VERSION as i32),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }
}

/// Removes forgotten memories' text from the events that carry it (the ids stay).
async fn scrub_events(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &str,
    ids: &[String],
) -> Result<()> {
    tx_execute(
        tx,
        "UPDATE events SET payload = (CASE type
            WHEN 'memory.created' THEN payload::jsonb || '{\"memory\": null, \"concepts\": []}'::jsonb
            ELSE payload::jsonb || '{\"decision\": null}'::jsonb END)::text
         WHERE subject = ANY($1) AND tenant = $2 AND type IN ('memory.created', 'decision.created')",
        &[&ids, &tenant],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn lock_tenant(tx: &deadpool_postgres::Transaction<'_>, tenant: &str) -> Result<()> {
    tx_execute(
        tx,
        "SELECT pg_advisory_xact_lock(hashtext('continuum:' || $1))",
        &[&tenant],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn apply_batches(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
) -> Result<Applied> {
    let t = tenant.as_str();
    let mut out = Applied::default();
    let mut events = EventRows::default();

    // Memories, in one statement.
    let mut ids = Vec::new();
    let (mut sessions_col, mut sources, mut kinds, mut contents, mut metas) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut created, mut hashes, mut valid, mut superseded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // concept key -> (name, kind, memories mentioning it, first, last)
    let mut concept_rows: BTreeMap<String, (String, String, i64, i64, i64)> = BTreeMap::new();
    let mut mention_pairs: Vec<(Uuid, String)> = Vec::new();
    let mut session_delta: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut last_at = 0i64;
    for batch in &batches {
        last_at = last_at.max(batch.at.millis());
        for w in &batch.memories {
            let m = &w.memory;
            ids.push(m.id.0);
            sessions_col.push(m.session.as_ref().map(|s| s.as_str().to_string()));
            sources.push(m.source.as_str().to_string());
            kinds.push(m.kind.clone());
            contents.push(m.content.clone());
            metas.push(
                serde_json::to_string(&m.metadata).map_err(|e| {
                    Error::InvalidInput(format!("metadata is not serialisable: {e}"))
                })?,
            );
            let ts = m.created_at.millis();
            created.push(ts);
            hashes.push(m.content_hash.clone());
            valid.push(m.valid_until.map(|v| v.millis()));
            superseded.push(m.superseded_by.map(|s| s.0));
            if let Some(s) = &m.session {
                let e = session_delta
                    .entry(s.as_str().to_string())
                    .or_insert((0, ts, ts));
                e.0 += 1;
                e.1 = e.1.min(ts);
                e.2 = e.2.max(ts);
            }
            events.push(
                batch.at.millis(),
                Event::MemoryCreated {
                    id: m.id,
                    memory: Some(Box::new(m.clone())),
                    concepts: w.concepts.clone(),
                },
            );
            let mut seen = std::collections::HashSet::new();
            for c in &w.concepts {
                if !seen.insert(c.key.as_str()) {
                    continue;
                }
                let e = concept_rows.entry(c.key.clone()).or_insert((
                    c.name.clone(),
                    c.kind.clone(),
                    0,
                    ts,
                    ts,
                ));
                e.2 += 1;
                e.3 = e.3.min(ts);
                e.4 = e.4.max(ts);
                mention_pairs.push((m.id.0, c.key.clone()));
            }
        }
        for l in &batch.links {
            let (a, b) = match l {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            for k in [a, b] {
                concept_rows.entry(k.clone()).or_insert((
                    k.clone(),
                    "concept".into(),
                    0,
                    batch.at.millis(),
                    batch.at.millis(),
                ));
            }
        }
    }
    let mut rid_of: HashMap<Uuid, i64> = HashMap::new();
    if !ids.is_empty() {
        let rows = tx_query(
            tx,
            "INSERT INTO memories (id, tenant, session, source, kind, content, metadata,
                    created_at, content_hash, valid_until, superseded_by)
                 SELECT id, $1, session, source, kind, content, metadata::jsonb, created_at,
                    content_hash, valid_until, superseded_by
                 FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::bigint[], $9::text[], $10::bigint[], $11::uuid[])
                    AS t(id, session, source, kind, content, metadata, created_at, content_hash,
                         valid_until, superseded_by)
                 RETURNING id, rid",
            &[
                &t,
                &ids,
                &sessions_col,
                &sources,
                &kinds,
                &contents,
                &metas,
                &created,
                &hashes,
                &valid,
                &superseded,
            ],
        )
        .await
        .map_err(|e| match map_err(e) {
            Error::Conflict(_) => {
                Error::Conflict("a memory with one of these ids already exists".into())
            }
            other => other,
        })?;
        for r in rows {
            rid_of.insert(r.get(0), r.get(1));
        }
        out.memories = rid_of.len() as u64;
    }
    if !session_delta.is_empty() {
        let (mut sid, mut n, mut first, mut last) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (s, (c, f, l)) in session_delta {
            sid.push(s);
            n.push(c);
            first.push(f);
            last.push(l);
        }
        tx_execute(tx,
            "INSERT INTO sessions (tenant, id, started_at, last_at, memories)
             SELECT $1, id, f, l, n FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS t(id, f, l, n)
             ON CONFLICT (tenant, id) DO UPDATE SET
                started_at = LEAST(sessions.started_at, excluded.started_at),
                last_at = GREATEST(sessions.last_at, excluded.last_at),
                memories = sessions.memories + excluded.memories",
            &[&t, &sid, &first, &last, &n],
        )
        .await
        .map_err(map_err)?;
    }

    // Concepts: created or counted in one statement.
    let mut cid_of: HashMap<String, i64> = HashMap::new();
    if !concept_rows.is_empty() {
        let (mut keys, mut names, mut ckinds, mut ns, mut firsts, mut lasts) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (k, (name, kind, n, f, l)) in &concept_rows {
            keys.push(k.clone());
            names.push(name.clone());
            ckinds.push(kind.clone());
            ns.push(*n);
            firsts.push(*f);
            lasts.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO concepts (tenant, key, name, kind, mentions, first_seen, last_seen)
                 SELECT $1, key, name, kind, n, f, l
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
                    AS t(key, name, kind, n, f, l)
                 ON CONFLICT (tenant, key) DO UPDATE SET
                    mentions = concepts.mentions + excluded.mentions,
                    first_seen = LEAST(concepts.first_seen, excluded.first_seen),
                    last_seen = GREATEST(concepts.last_seen, excluded.last_seen)
                 RETURNING cid, key, (xmax = 0) AS created",
                &[&t, &keys, &names, &ckinds, &ns, &firsts, &lasts],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            let key: String = r.get(1);
            if r.get::<_, bool>(2) {
                out.concepts_created += 1;
                let (name, kind) = concept_rows
                    .get(&key)
                    .map(|(n, k, ..)| (n.clone(), k.clone()))
                    .unwrap_or_else(|| (key.clone(), "concept".into()));
                events.push(
                    last_at,
                    Event::ConceptCreated {
                        key: key.clone(),
                        name,
                        kind,
                    },
                );
            }
            cid_of.insert(key, r.get(0));
        }
    }
    if !mention_pairs.is_empty() {
        let (mut cids, mut rids) = (Vec::new(), Vec::new());
        for (id, key) in &mention_pairs {
            if let (Some(c), Some(r)) = (cid_of.get(key), rid_of.get(id)) {
                cids.push(*c);
                rids.push(*r);
            }
        }
        tx_execute(
            tx,
            "INSERT INTO mentions (cid, rid) SELECT * FROM UNNEST($1::bigint[], $2::bigint[])
             ON CONFLICT DO NOTHING",
            &[&cids, &rids],
        )
        .await
        .map_err(map_err)?;
    }

    // Links: co-occurrences summed, imported floors maxed, per canonical pair.
    let mut co: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    let mut floor: BTreeMap<(i64, i64), (f64, i64, i64)> = BTreeMap::new();
    for batch in &batches {
        for l in &batch.links {
            let (ka, kb) = match l {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            if ka == kb {
                continue;
            }
            let (Some(&x), Some(&y)) = (cid_of.get(ka), cid_of.get(kb)) else {
                continue;
            };
            let pair = (x.min(y), x.max(y));
            match l {
                LinkWrite::CoOccurred { count, .. } => {
                    let e = co.entry(pair).or_insert((0, batch.at.millis()));
                    e.0 += (*count).max(1) as i64;
                    e.1 = e.1.max(batch.at.millis());
                }
                LinkWrite::AtLeast {
                    strength,
                    count,
                    last_at,
                    ..
                } => {
                    let e = floor.entry(pair).or_insert((0.0, 0, 0));
                    e.0 = e.0.max(strength.clamp(0.0, rule.cap));
                    e.1 = e.1.max(*count as i64);
                    e.2 = e.2.max(last_at.millis());
                }
            }
        }
    }
    for batch in &batches {
        let links: Vec<LinkWrite> = batch
            .links
            .iter()
            .filter(|l| match l {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => a != b,
            })
            .cloned()
            .collect();
        if !links.is_empty() {
            events.push(batch.at.millis(), Event::LinksStrengthened { links });
        }
    }
    if !floor.is_empty() {
        let (mut a, mut b, mut s, mut n, mut at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((x, y), (st, c, l)) in &floor {
            a.push(*x);
            b.push(*y);
            s.push(*st);
            n.push(*c);
            at.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                 SELECT a, b, $1, s, n, l, l FROM UNNEST($2::bigint[], $3::bigint[], $4::float8[], $5::bigint[], $6::bigint[])
                    AS t(a, b, s, n, l)
                 ON CONFLICT (a, b) DO UPDATE SET
                    strength = GREATEST(links.strength, excluded.strength),
                    count = GREATEST(links.count, excluded.count),
                    last_at = GREATEST(links.last_at, excluded.last_at)
                 RETURNING (xmax = 0)",
                &[&t, &a, &b, &s, &n, &at],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            if r.get::<_, bool>(0) {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
    }
    if !co.is_empty() {
        let (mut a, mut b, mut n, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((x, y), (c, l)) in &co {
            a.push(*x);
            b.push(*y);
            n.push(*c);
            at.push(*l);
        }
        let rows = tx_query(tx,
                "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                 SELECT a, b, $1, LEAST($6::float8, $7::float8 + $8::float8 * (n - 1)), n, l, l
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS t(a, b, n, l)
                 ON CONFLICT (a, b) DO UPDATE SET
                    strength = LEAST($6::float8, links.strength + $8::float8 * excluded.count),
                    count = links.count + excluded.count,
                    last_at = GREATEST(links.last_at, excluded.last_at)
                 RETURNING (xmax = 0)",
                &[&t, &a, &b, &n, &at, &rule.cap, &rule.initial, &rule.increment],
            )
            .await
            .map_err(map_err)?;
        for r in rows {
            if r.get::<_, bool>(0) {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
    }
    // Decisions and supersessions.
    let (mut did, mut dmem, mut dtext, mut dat) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for batch in &batches {
        for d in &batch.decisions {
            did.push(d.id.0);
            dmem.push(d.memory_id.0);
            dtext.push(d.text.clone());
            dat.push(d.created_at.millis());
        }
    }
    if !did.is_empty() {
        let rows = tx_query(tx,
                "INSERT INTO decisions (id, tenant, memory_id, text, created_at)
                 SELECT id, $1, m, x, c FROM UNNEST($2::uuid[], $3::uuid[], $4::text[], $5::bigint[]) AS t(id, m, x, c)
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                &[&t, &did, &dmem, &dtext, &dat],
            )
            .await
            .map_err(map_err)?;
        let by_id: HashMap<Uuid, &continuum_core::memory::Decision> = batches
            .iter()
            .flat_map(|b| &b.decisions)
            .map(|d| (d.id.0, d))
            .collect();
        for r in rows {
            out.decisions += 1;
            let id = r.get::<_, Uuid>(0);
            if let Some(d) = by_id.get(&id) {
                events.push(
                    last_at,
                    Event::DecisionCreated {
                        id: d.id,
                        decision: Some((*d).clone()),
                    },
                );
            }
        }
    }
    for batch in &batches {
        for (old, new) in &batch.supersedes {
            let n = tx_execute(
                tx,
                "UPDATE memories SET superseded_by = $1, valid_until = coalesce(valid_until, $2)
                     WHERE tenant = $3 AND id = $4",
                &[&new.0, &batch.at.millis(), &t, &old.0],
            )
            .await
            .map_err(map_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("no memory with id {old}")));
            }
            events.push(
                batch.at.millis(),
                Event::MemorySuperseded {
                    id: *old,
                    by: Some(*new),
                },
            );
        }
    }
    out.change_seq = events.insert(tx, t).await?;
    Ok(out)
}

#[async_trait]
impl MemoryGraph for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, tenant.as_str()).await?;
        let out = apply_batches(&tx, tenant, rule, batches).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(
            &client,
            &format!(
                "WITH hit AS MATERIALIZED (SELECT * FROM memories WHERE id = ANY($2))
                     SELECT {MEMORY_COLS} FROM hit m WHERE m.tenant = $1"
            ),
            &[&tenant.as_str(), &ids],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(row_memory).collect()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let mut p: Params = vec![Box::new(tenant.as_str().to_string())];
        let mut sql = format!("SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = $1");
        sql.push_str(&filter_sql(filter, &mut p));
        let (cmp, dir) = match page.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(c) = &page.cursor {
            let (at, rid) = parse_cursor(c)?;
            p.push(Box::new(at));
            let at_n = p.len();
            p.push(Box::new(rid));
            sql.push_str(&format!(
                " AND (m.created_at, m.rid) {cmp} (${at_n}, ${})",
                p.len()
            ));
        }
        p.push(Box::new(limit as i64 + 1));
        sql.push_str(&format!(
            " ORDER BY m.created_at {dir}, m.rid {dir} LIMIT ${}",
            p.len()
        ));
        let client = self.client().await?;
        let rows = cached_query(&client, &sql, &refs(&p))
            .await
            .map_err(map_err)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push((row_memory(r)?, r.get::<_, i64>(10)));
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|(m, rid)| format!("{}:{rid}", m.created_at.millis()))
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(m, _)| m).collect(),
            next_cursor,
        })
    }

    async fn text_search(
        &self,
        tenant: &TenantId,
        terms: &[String],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<Scored>> {
        let Some(q) = ts_query(terms) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut p: Params = vec![Box::new(q), Box::new(tenant.as_str().to_string())];
        let mut sql = format!(
            "SELECT ts_rank_cd(m.tsv, q)::float8 AS score, {HEAD_COLS}
             FROM memories m, to_tsquery('english', $1) q
             WHERE m.tsv @@ q AND m.tenant = $2"
        );
        sql.push_str(&filter_sql(filter, &mut p));
        p.push(Box::new(limit.min(MAX_PAGE) as i64));
        sql.push_str(&format!(
            " ORDER BY score DESC, m.rid DESC LIMIT ${}",
            p.len()
        ));
        let client = self.client().await?;
        let rows = cached_query(&client, &sql, &refs(&p))
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Scored {
                    score: r.get(0),
                    head: row_head(r, 1)?,
                })
            })
            .collect()
    }

    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = $1 AND key = ANY($2)",
            &[&tenant.as_str(), &keys],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(row_concept).collect())
    }

    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = $1 ORDER BY mentions DESC, key LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(row_concept).collect())
    }

    async fn neighbours(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<Link>> {
        if keys.is_empty() || per_concept == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "WITH seeds AS (SELECT cid FROM concepts WHERE tenant = $1 AND key = ANY($2)),
                 l AS (
                    SELECT x.* FROM seeds s, LATERAL (
                        SELECT a, b, strength, count, last_at FROM links WHERE a = s.cid
                        ORDER BY strength DESC, count DESC LIMIT $3) x
                    UNION
                    SELECT x.* FROM seeds s, LATERAL (
                        SELECT a, b, strength, count, last_at FROM links WHERE b = s.cid
                        ORDER BY strength DESC, count DESC LIMIT $3) x
                 )
                 SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b",
            &[&tenant.as_str(), &keys, &(per_concept.min(MAX_PAGE) as i64)],
        )
        .await
        .map_err(map_err)?;
        let mut links: Vec<Link> = rows
            .iter()
            .map(|r| link(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        continuum_core::store::sort_links(&mut links);
        Ok(links)
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Link>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
                 WHERE l.tenant = $1 ORDER BY l.a, l.b LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| link(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = cached_query(&client,
                &format!(
                    "SELECT k.key, {HEAD_COLS} FROM concepts k, LATERAL (
                        SELECT mn.rid FROM mentions mn WHERE mn.cid = k.cid ORDER BY mn.rid DESC LIMIT $3
                     ) x JOIN memories m ON m.rid = x.rid
                     WHERE k.tenant = $1 AND k.key = ANY($2)"
                ),
                &[&tenant.as_str(), &keys, &(per_concept as i64)],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.get(0), row_head(r, 1)?)))
            .collect()
    }

    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(
            &client,
            // Look up by id first: on a table not yet analysed the planner otherwise ANDs in
            // a scan of the whole tenant.
            "WITH hit AS MATERIALIZED (SELECT rid, id, tenant FROM memories WHERE id = ANY($2))
             SELECT m.id, k.key, k.name, k.kind FROM hit m
             JOIN mentions mn ON mn.rid = m.rid JOIN concepts k ON k.cid = mn.cid
             WHERE m.tenant = $1 ORDER BY m.id, k.key",
            &[&tenant.as_str(), &ids],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    MemoryId(r.get(0)),
                    ExtractedConcept {
                        key: r.get(1),
                        name: r.get(2),
                        kind: r.get(3),
                    },
                )
            })
            .collect())
    }

    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| Decision {
                id: MemoryId(r.get(0)),
                memory_id: MemoryId(r.get(1)),
                text: r.get(2),
                created_at: Timestamp(r.get(3)),
            })
            .collect())
    }

    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT id, started_at, last_at, memories FROM sessions WHERE tenant = $1
                 ORDER BY last_at DESC, id LIMIT $2 OFFSET $3",
            &[
                &tenant.as_str(),
                &(limit.min(MAX_PAGE) as i64),
                &(offset as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SessionInfo {
                    id: SessionId::new(r.get::<_, String>(0))?,
                    started_at: Timestamp(r.get(1)),
                    last_at: Timestamp(r.get(2)),
                    memories: r.get::<_, i64>(3).max(0) as u64,
                })
            })
            .collect()
    }

    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64> {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        let t = tenant.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, t).await?;
        let rows = match what {
            ForgetSelector::Ids(ids) => {
                let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
                tx_query(
                    &tx,
                    "WITH hit AS MATERIALIZED (SELECT rid, id, tenant FROM memories WHERE id = ANY($2))
                     SELECT rid, id FROM hit WHERE tenant = $1",
                    &[&t, &ids],
                )
                .await
            }
            ForgetSelector::Session(s) => {
                tx_query(
                    &tx,
                    "SELECT rid, id FROM memories WHERE tenant = $1 AND session = $2",
                    &[&t, &s.as_str()],
                )
                .await
            }
            ForgetSelector::All => {
                tx_query(&tx, "SELECT rid, id FROM memories WHERE tenant = $1", &[&t]).await
            }
        }
        .map_err(map_err)?;
        let rids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.get(1)).collect();
        let mut events = EventRows::default();
        if !rids.is_empty() {
            let counts = tx_query(
                &tx,
                "SELECT cid, count(*) FROM mentions WHERE rid = ANY($1) GROUP BY cid",
                &[&rids],
            )
            .await
            .map_err(map_err)?;
            let cids: Vec<i64> = counts.iter().map(|r| r.get(0)).collect();
            let ns: Vec<i64> = counts.iter().map(|r| r.get(1)).collect();
            let exec = |sql: &'static str| sql;
            tx_execute(
                &tx,
                exec("DELETE FROM mentions WHERE rid = ANY($1)"),
                &[&rids],
            )
            .await
            .map_err(map_err)?;
            tx_execute(
                &tx,
                exec("DELETE FROM vectors WHERE rid = ANY($1)"),
                &[&rids],
            )
            .await
            .map_err(map_err)?;
            tx_execute(
                &tx,
                "DELETE FROM decisions WHERE tenant = $1 AND memory_id = ANY($2)",
                &[&t, &ids],
            )
            .await
            .map_err(map_err)?;
            let restored = tx_query(&tx,
                    "UPDATE memories SET superseded_by = NULL, valid_until = NULL
                     WHERE tenant = $1 AND superseded_by = ANY($2) AND NOT (id = ANY($2)) RETURNING id",
                    &[&t, &ids],
                )
                .await
                .map_err(map_err)?;
            for r in restored {
                events.push(
                    now,
                    Event::MemoryUpdated {
                        id: MemoryId(r.get::<_, Uuid>(0)),
                        superseded_by: None,
                    },
                );
            }
            tx_execute(&tx,
                "UPDATE sessions s SET memories = s.memories - c.n
                 FROM (SELECT session, count(*) AS n FROM memories WHERE rid = ANY($2) AND session IS NOT NULL
                       GROUP BY session) c
                 WHERE s.tenant = $1 AND s.id = c.session",
                &[&t, &rids],
            )
            .await
            .map_err(map_err)?;
            tx_execute(&tx, "DELETE FROM memories WHERE rid = ANY($1)", &[&rids])
                .await
                .map_err(map_err)?;
            tx_execute(
                &tx,
                "UPDATE concepts SET mentions = concepts.mentions - c.n
                 FROM UNNEST($1::bigint[], $2::bigint[]) AS c(cid, n) WHERE concepts.cid = c.cid",
                &[&cids, &ns],
            )
            .await
            .map_err(map_err)?;
            let gone: Vec<i64> = tx_query(
                &tx,
                "DELETE FROM concepts WHERE cid = ANY($1) AND mentions <= 0 RETURNING cid",
                &[&cids],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
            if !gone.is_empty() {
                tx_execute(
                    &tx,
                    "DELETE FROM links WHERE a = ANY($1) OR b = ANY($1)",
                    &[&gone],
                )
                .await
                .map_err(map_err)?;
            }
            tx_execute(
                &tx,
                "DELETE FROM sessions WHERE tenant = $1 AND memories <= 0",
                &[&t],
            )
            .await
            .map_err(map_err)?;
            let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            scrub_events(&tx, t, &texts).await?;
            for id in &ids {
                events.push(now, Event::MemoryForgotten { id: MemoryId(*id) });
            }
            if let ForgetSelector::Session(session) = what {
                events.push(
                    now,
                    Event::SessionForgotten {
                        session: session.clone(),
                        memories: ids.len() as u64,
                    },
                );
            }
        }
        if matches!(what, ForgetSelector::All) {
            for sql in [
                "DELETE FROM links WHERE tenant = $1",
                "DELETE FROM concepts WHERE tenant = $1",
                "DELETE FROM decisions WHERE tenant = $1",
                "DELETE FROM sessions WHERE tenant = $1",
                // Concept names and keys come from the tenant's text too.
                "UPDATE events SET payload = (payload::jsonb || CASE type
                    WHEN 'concept.created' THEN '{\"key\": \"\", \"name\": \"\"}'::jsonb
                    WHEN 'links.strengthened' THEN '{\"links\": []}'::jsonb
                    ELSE '{\"keys\": null}'::jsonb END)::text
                 WHERE tenant = $1 AND type IN ('concept.created', 'links.strengthened', 'concepts.changed')",
            ] {
                tx_execute(&tx, sql, &[&t]).await.map_err(map_err)?;
            }
        }
        events.insert(&tx, t).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(rids.len() as u64)
    }

    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let ids: Vec<Uuid> = keys.iter().map(|k| k.id.0).collect();
        let hashes: Vec<String> = keys.iter().map(|k| k.content_hash.clone()).collect();
        let ats: Vec<i64> = keys.iter().map(|k| k.created_at.millis()).collect();
        let sessions: Vec<Option<String>> = keys
            .iter()
            .map(|k| k.session.as_ref().map(|s| s.as_str().to_string()))
            .collect();
        let rows = cached_query(&client,
                "SELECT t.i FROM UNNEST($2::uuid[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY
                    AS t(id, h, at, s, i)
                 WHERE EXISTS (SELECT 1 FROM memories m WHERE m.tenant = $1 AND m.id = t.id)
                    OR EXISTS (SELECT 1 FROM memories m WHERE m.tenant = $1 AND m.created_at = t.at
                               AND m.content_hash = t.h AND m.session IS NOT DISTINCT FROM t.s)",
                &[&tenant.as_str(), &ids, &hashes, &ats, &sessions],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .filter_map(|r| keys.get((r.get::<_, i64>(0) - 1) as usize).cloned())
            .collect())
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let client = self.client().await?;
        let t = tenant.as_str();
        let r = cached_query_one(
            &client,
            "SELECT
                    (SELECT count(*) FROM memories WHERE tenant = $1),
                    (SELECT count(*) FROM sessions WHERE tenant = $1),
                    (SELECT count(*) FROM concepts WHERE tenant = $1),
                    (SELECT count(*) FROM links WHERE tenant = $1),
                    (SELECT count(*) FROM decisions WHERE tenant = $1),
                    (SELECT seq FROM event_head WHERE id = 1),
                    (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = current_schema() AND c.relkind = 'r'),
                    (SELECT coalesce(max(version), 0) FROM schema_migrations)",
            &[&t],
        )
        .await
        .map_err(map_err)?;
        let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
        Ok(StoreStats {
            memories: n(0),
            sessions: n(1),
            concepts: n(2),
            links: n(3),
            decisions: n(4),
            change_seq: n(5),
            store_bytes: Some(n(6)),
            schema_version: r.get::<_, i32>(7) as u32,
        })
    }

    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64> {
        // One REPEATABLE READ, READ ONLY transaction: every query sees the same snapshot,
        // and writers are never blocked. Rows are fetched through portals, a page at a time.
        const FETCH: i32 = 500;
        let t = tenant.as_str();
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(map_err)?;
        let position = tx
            .query_one("SELECT seq FROM event_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?
            .get::<_, i64>(0)
            .max(0) as u64;
        sink(SnapshotItem::Begin { position })?;
        let sql = format!(
            "SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = $1 ORDER BY m.created_at, m.rid"
        );
        let portal = tx.bind(sql.as_str(), &[&t]).await.map_err(map_err)?;
        loop {
            let rows = tx.query_portal(&portal, FETCH).await.map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            let rids: Vec<i64> = rows.iter().map(|r| r.get(10)).collect();
            let mut mentioned: HashMap<i64, Vec<ExtractedConcept>> = HashMap::new();
            for r in tx
                .query(
                    "SELECT mn.rid, k.key, k.name, k.kind FROM mentions mn
                     JOIN concepts k ON k.cid = mn.cid WHERE mn.rid = ANY($1) ORDER BY k.key",
                    &[&rids],
                )
                .await
                .map_err(map_err)?
            {
                mentioned
                    .entry(r.get(0))
                    .or_default()
                    .push(ExtractedConcept {
                        key: r.get(1),
                        name: r.get(2),
                        kind: r.get(3),
                    });
            }
            for r in &rows {
                let rid: i64 = r.get(10);
                sink(SnapshotItem::Memory {
                    memory: row_memory(r)?,
                    concepts: mentioned.remove(&rid).unwrap_or_default(),
                })?;
            }
        }
        let portal = tx
            .bind(
                "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
                 WHERE l.tenant = $1 ORDER BY l.a, l.b",
                &[&t],
            )
            .await
            .map_err(map_err)?;
        loop {
            let rows = tx.query_portal(&portal, FETCH).await.map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                sink(SnapshotItem::Link(link(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                )))?;
            }
        }
        let portal = tx
            .bind(
                "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = $1
                 ORDER BY created_at, id",
                &[&t],
            )
            .await
            .map_err(map_err)?;
        loop {
            let rows = tx.query_portal(&portal, FETCH).await.map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                sink(SnapshotItem::Decision(Decision {
                    id: MemoryId(r.get::<_, Uuid>(0)),
                    memory_id: MemoryId(r.get::<_, Uuid>(1)),
                    text: r.get(2),
                    created_at: Timestamp(r.get(3)),
                }))?;
            }
        }
        let portal = tx
            .bind(
                "SELECT m.id, v.model, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
                 WHERE v.tenant = $1 ORDER BY v.model, v.seq",
                &[&t],
            )
            .await
            .map_err(map_err)?;
        loop {
            let rows = tx.query_portal(&portal, FETCH).await.map_err(map_err)?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let dim: i32 = r.get(2);
                sink(SnapshotItem::Vector {
                    id: MemoryId(r.get::<_, Uuid>(0)),
                    model: r.get(1),
                    vector: continuum_core::embed::decode_vector(
                        r.get::<_, &[u8]>(3),
                        dim.max(0) as usize,
                    )?,
                })?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(position)
    }

    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>> {
        let client = self.client().await?;
        let rows = cached_query(&client,
                &format!(
                    "SELECT m.rid, m.content, {HEAD_COLS},
                        coalesce((SELECT array_agg(k.key) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                                  WHERE mn.rid = m.rid), '{{}}'),
                        CASE WHEN jsonb_typeof(m.metadata->'speaker') = 'string'
                             THEN m.metadata->>'speaker' END
                     FROM memories m WHERE m.tenant = $1 AND m.rid > $2 ORDER BY m.rid LIMIT $3"
                ),
                &[&tenant.as_str(), &(after as i64), &(limit.min(10_000) as i64)],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<_, i64>(0) as u64,
                    IndexDoc {
                        content: r.get(1),
                        head: row_head(r, 2)?,
                        concepts: r.get(7),
                        speaker: r.get(8),
                    },
                ))
            })
            .collect()
    }

    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = cached_query(&client,
                &format!(
                    "SELECT m.rid, m.content, {HEAD_COLS},
                        coalesce((SELECT array_agg(k.key) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                                  WHERE mn.rid = m.rid), '{{}}'),
                        CASE WHEN jsonb_typeof(m.metadata->'speaker') = 'string'
                             THEN m.metadata->>'speaker' END
                     FROM (SELECT * FROM memories WHERE id = ANY($2) OFFSET 0) m WHERE m.tenant = $1"
                ),
                &[&tenant.as_str(), &ids],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(IndexDoc {
                    content: r.get(1),
                    head: row_head(r, 2)?,
                    concepts: r.get(7),
                    speaker: r.get(8),
                })
            })
            .collect()
    }

    async fn check(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        let mut problems = Vec::new();
        let orphans: i64 = cached_query_one(&client,
                "SELECT count(*) FROM mentions mn LEFT JOIN memories m ON m.rid = mn.rid WHERE m.rid IS NULL",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if orphans > 0 {
            problems.push(format!(
                "{orphans} concept mentions point at missing memories"
            ));
        }
        let dangling: i64 = cached_query_one(&client,
                "SELECT count(*) FROM links l WHERE NOT EXISTS (SELECT 1 FROM concepts c WHERE c.cid = l.a)
                    OR NOT EXISTS (SELECT 1 FROM concepts c WHERE c.cid = l.b)",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        if dangling > 0 {
            problems.push(format!("{dangling} links point at missing concepts"));
        }
        Ok(problems)
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let client = self.client().await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let rows = match scope {
            EventScope::Tenant(t) => {
                cached_query(
                    &client,
                    "SELECT seq, tenant, at, v, payload FROM events
                     WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&t.as_str(), &after, &limit],
                )
                .await
            }
            EventScope::All => {
                cached_query(
                    &client,
                    "SELECT seq, tenant, at, v, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &limit],
                )
                .await
            }
        }
        .map_err(map_err)?;
        // Read after the events: a compaction that ran before the read above shows here, so
        // a page that may have lost events is never returned as complete.
        let through = cached_query_one(
            &client,
            "SELECT compacted_through FROM event_head WHERE id = 1",
            &[],
        )
        .await
        .map_err(map_err)?
        .get::<_, i64>(0);
        if after < through {
            return Err(continuum_core::event::compacted_error(
                after.max(0) as u64,
                through.max(0) as u64,
            ));
        }
        rows.iter()
            .map(|r| {
                let v = r.get::<_, i32>(3).max(0) as u32;
                Ok(EventRecord {
                    seq: r.get::<_, i64>(0).max(0) as u64,
                    tenant: TenantId::new(r.get::<_, String>(1))?,
                    at: Timestamp(r.get(2)),
                    v,
                    event: Event::decode(r.get::<_, &str>(4), v)?,
                })
            })
            .collect()
    }

    async fn latest_event(&self, tenant: &TenantId) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT GREATEST(coalesce((SELECT max(seq) FROM events WHERE tenant = $1), 0),
                             (SELECT compacted_through FROM event_head WHERE id = 1))",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn event_head(&self) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(&client, "SELECT seq FROM event_head WHERE id = 1", &[])
            .await
            .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn compacted_through(&self) -> Result<u64> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT compacted_through FROM event_head WHERE id = 1",
            &[],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    async fn compact_events(&self, through: u64) -> Result<u64> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = tx_execute(&tx, "DELETE FROM events WHERE seq <= $1", &[&through])
            .await
            .map_err(map_err)?;
        tx_execute(
            &tx,
            "UPDATE event_head SET compacted_through = GREATEST(compacted_through, $1) WHERE id = 1",
            &[&through],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>> {
        let client = self.client().await?;
        let r = cached_query_one(
            &client,
            "SELECT min(seq) FROM events WHERE at >= $1",
            &[&at.millis()],
        )
        .await
        .map_err(map_err)?;
        Ok(r.get::<_, Option<i64>>(0).map(|n| n.max(0) as u64))
    }

    async fn event_cursors(&self) -> Result<Vec<continuum_core::event::EventCursor>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT name, position, updated_at FROM event_cursors ORDER BY name",
            &[],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| continuum_core::event::EventCursor {
                name: r.get(0),
                position: r.get::<_, i64>(1).max(0) as u64,
                updated_at: Timestamp(r.get(2)),
            })
            .collect())
    }

    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let client = self.client().await?;
        cached_query(
            &client,
            "INSERT INTO event_cursors (name, position, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                updated_at = excluded.updated_at",
            &[&name, &position, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_event_cursor(&self, name: &str) -> Result<bool> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "DELETE FROM event_cursors WHERE name = $1 RETURNING name",
            &[&name],
        )
        .await
        .map_err(map_err)?;
        Ok(!rows.is_empty())
    }

    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut rows = EventRows::default();
        for e in events {
            rows.push(at.millis(), e.clone());
        }
        let seq = rows.insert(&tx, tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
    }
}

#[async_trait]
impl VectorStore for PostgresStore {
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize> {
        let list: Vec<&[f32]> = vectors.iter().map(|(_, v)| v.as_slice()).collect();
        continuum_core::embed::check_vectors(model, dim, &list, vectors.len())?;
        if vectors.is_empty() {
            return Ok(0);
        }
        let t = tenant.as_str();
        let ids: Vec<Uuid> = vectors.iter().map(|(id, _)| id.0).collect();
        let blobs: Vec<Vec<u8>> = list
            .iter()
            .map(|v| continuum_core::embed::encode_vector(v))
            .collect();
        let dim = dim as i32;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        lock_tenant(&tx, t).await?;
        // A replaced vector takes a new sequence number: followers see it again.
        let n = tx_execute(
            &tx,
            "INSERT INTO vectors (rid, tenant, model, dim, vector)
             SELECT m.rid, m.tenant, $3, $4, u.vector
             FROM UNNEST($2::uuid[], $5::bytea[]) AS u(id, vector)
             JOIN memories m ON m.id = u.id AND m.tenant = $1
             ON CONFLICT (rid, model) DO UPDATE
                SET vector = excluded.vector, dim = excluded.dim,
                    seq = nextval(pg_get_serial_sequence('vectors', 'seq'))",
            &[&t, &ids, &model, &dim, &blobs],
        )
        .await
        .map_err(map_err)?;
        if let Some(ann) = &self.ann {
            let texts: Vec<String> = list.iter().map(|v| pgvector::literal(v)).collect();
            tx_execute(
                &tx,
                &format!(
                    "INSERT INTO vector_ann (rid, id, model, tenant, dim, embedding)
                     SELECT m.rid, m.id, $3, m.tenant, $4, u.e::{}
                     FROM UNNEST($2::uuid[], $5::text[]) AS u(id, e)
                     JOIN memories m ON m.id = u.id AND m.tenant = $1
                     ON CONFLICT (rid, model) DO UPDATE
                        SET embedding = excluded.embedding, dim = excluded.dim",
                    ann.ty(None)
                ),
                &[&t, &ids, &model, &dim, &texts],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        if let Some(ann) = &self.ann {
            ann.ensure_index(&mut client, dim as usize).await?;
        }
        Ok(n as usize)
    }

    fn vector_search(&self) -> Option<&dyn VectorSearch> {
        self.ann.as_ref().map(|_| self as &dyn VectorSearch)
    }

    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::StoredVector>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT v.seq, m.id, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
             WHERE v.tenant = $1 AND v.model = $2 AND v.seq > $3 ORDER BY v.seq LIMIT $4",
            &[
                &tenant.as_str(),
                &model,
                &(after as i64),
                &(limit.min(10_000) as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let dim: i32 = r.get(2);
                Ok(continuum_core::embed::StoredVector {
                    seq: r.get::<_, i64>(0) as u64,
                    id: MemoryId(r.get(1)),
                    vector: continuum_core::embed::decode_vector(
                        r.get::<_, &[u8]>(3),
                        dim.max(0) as usize,
                    )?,
                })
            })
            .collect()
    }

    async fn pending_embeddings(
        &self,
        tenant: Option<&TenantId>,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::PendingEmbedding>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT m.rid, m.tenant, m.id, m.content FROM memories m
             WHERE m.rid > $2 AND ($1::text IS NULL OR m.tenant = $1)
               AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.rid = m.rid AND v.model = $3)
             ORDER BY m.rid LIMIT $4",
            &[
                &tenant.map(TenantId::as_str),
                &(after as i64),
                &model,
                &(limit.min(10_000) as i64),
            ],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(continuum_core::embed::PendingEmbedding {
                    pos: r.get::<_, i64>(0) as u64,
                    tenant: TenantId::new(r.get::<_, String>(1))?,
                    id: MemoryId(r.get(2)),
                    content: r.get(3),
                })
            })
            .collect()
    }

    async fn vector_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<continuum_core::embed::VectorCount>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT model, dim, count(*) FROM vectors WHERE tenant = $1
             GROUP BY model, dim ORDER BY model, dim",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| continuum_core::embed::VectorCount {
                model: r.get(0),
                dim: r.get::<_, i32>(1).max(0) as usize,
                count: r.get::<_, i64>(2).max(0) as u64,
            })
            .collect())
    }

    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM vectors WHERE tenant = $1 AND model <> $2")
            .await
            .map_err(map_err)?;
        client
            .execute(&stmt, &[&tenant.as_str(), &keep])
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl VectorSearch for PostgresStore {
    async fn nearest_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryId, f32)>> {
        let Some(ann) = &self.ann else {
            return Err(Error::Unavailable(self.pgvector_off()));
        };
        let dim = query.len();
        if dim == 0 || dim > continuum_core::embed::MAX_DIM || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE);
        // Two plans. First the HNSW walk: the dimension is a literal so that the planner
        // matches the partial index (`WHERE dim = D`, on `embedding::vector(D)`); tenant,
        // model and filters are checked on the rows the walk yields (`vector_ann` has no other
        // index the planner could prefer). The walk is approximate and, when the tenant is a
        // small part of the table, may stop (hnsw.max_scan_tuples) before it finds `limit` of
        // the tenant's rows; then the tenant's vectors are ranked exactly, found through the
        // tenant index of `vectors` and ordered by an expression no index provides, which is
        // cheap precisely when the tenant is small.
        let ty = ann.ty(Some(dim));
        let op = ann.neg_ip();
        let mut p: Params = vec![
            Box::new(tenant.as_str().to_string()),
            Box::new(model.to_string()),
            Box::new(pgvector::literal(query)),
        ];
        let filter = filter_sql(filter, &mut p);
        p.push(Box::new(limit as i64));
        // The query vector as an InitPlan: parsed from text once, not once per row.
        let distance = format!("(a.embedding::{ty}) {op} (SELECT $3::text::{ty})");
        // The memories table is joined only when a filter needs its columns.
        let join = if filter.is_empty() {
            ""
        } else {
            "JOIN memories m ON m.rid = a.rid"
        };
        let approximate = format!(
            "SELECT a.id, -({distance})::float4
             FROM vector_ann a {join}
             WHERE a.dim = {dim} AND a.tenant = $1 AND a.model = $2{filter}
             ORDER BY {distance} LIMIT ${}",
            p.len()
        );
        let exact = format!(
            "SELECT a.id, -({distance})::float4
             FROM vectors v
             JOIN vector_ann a ON a.rid = v.rid AND a.model = v.model
             JOIN memories m ON m.rid = v.rid
             WHERE v.tenant = $1 AND v.model = $2 AND v.dim = {dim} AND a.dim = {dim}{filter}
             ORDER BY ({distance}) + 0 LIMIT ${}",
            p.len()
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut settings = format!(
            "SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = {};",
            (limit * 2).clamp(40, 1000)
        );
        if ann.iterative() {
            // pgvector 0.8: keep walking, in distance order, until enough rows pass the filters.
            settings.push_str("SET LOCAL hnsw.iterative_scan = strict_order;");
        }
        tx.batch_execute(&settings).await.map_err(map_err)?;
        let mut rows = tx_query(&tx, &approximate, &refs(&p))
            .await
            .map_err(map_err)?;
        if rows.len() < limit {
            tx.batch_execute("SET LOCAL enable_seqscan = on")
                .await
                .map_err(map_err)?;
            rows = tx_query(&tx, &exact, &refs(&p)).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (MemoryId(r.get(0)), r.get::<_, f32>(1)))
            .collect())
    }

    async fn vector_scores(
        &self,
        tenant: &TenantId,
        model: &str,
        query: &[f32],
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, f32)>> {
        let Some(ann) = &self.ann else {
            return Err(Error::Unavailable(self.pgvector_off()));
        };
        if ids.is_empty() || query.is_empty() {
            return Ok(Vec::new());
        }
        let uuids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let dim = query.len() as i32;
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            &format!(
                "SELECT a.id, -(a.embedding {op} (SELECT $3::text::{ty}))::float4
                 FROM vector_ann a
                 WHERE a.id = ANY($4) AND a.tenant = $1 AND a.model = $2 AND a.dim = $5",
                op = ann.neg_ip(),
                ty = ann.ty(None)
            ),
            &[
                &tenant.as_str(),
                &model,
                &pgvector::literal(query),
                &uuids,
                &dim,
            ],
        )
        .await
        .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| (MemoryId(r.get(0)), r.get::<_, f32>(1)))
            .collect())
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn tenants(&self) -> Result<Vec<continuum_core::store::TenantMemories>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT tenant, count(*), max(created_at) FROM memories GROUP BY tenant ORDER BY tenant",
            &[],
        )
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(continuum_core::store::TenantMemories {
                    tenant: TenantId::new(r.get::<_, String>(0))?,
                    memories: r.get::<_, i64>(1).max(0) as u64,
                    last_memory_at: r.get::<_, Option<i64>>(2).map(Timestamp),
                })
            })
            .collect()
    }

    async fn put_key(&self, key: &continuum_core::keys::ApiKey, events: &[Event]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx_execute(
            &tx,
            "INSERT INTO api_keys (prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &key.prefix,
                &key.tenant.as_str(),
                &key.scope.as_str(),
                &key.hash,
                &key.name,
                &key.created_at.millis(),
                &key.expires_at.map(|t| t.millis()),
                &key.revoked_at.map(|t| t.millis()),
            ],
        )
        .await
        .map_err(map_err)?;
        let mut rows = EventRows::default();
        for e in events {
            rows.push(key.created_at.millis(), e.clone());
        }
        rows.insert(&tx, key.tenant.as_str()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<continuum_core::keys::ApiKey>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at
             FROM api_keys WHERE prefix = $1",
            &[&prefix],
        )
        .await
        .map_err(map_err)?;
        rows.first().map(key_row).transpose()
    }

    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let client = self.client().await?;
        let rows = cached_query(
            &client,
            "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at
             FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at DESC, prefix",
            &[&tenant.map(|t| t.as_str())],
        )
        .await
        .map_err(map_err)?;
        rows.iter().map(key_row).collect()
    }

    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let rows = tx_query(
            &tx,
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL RETURNING tenant",
            &[&prefix, &at.millis()],
        )
        .await
        .map_err(map_err)?;
        let Some(row) = rows.first() else {
            // Unknown, or revoked before (which is not a change).
            let found = tx_query(&tx, "SELECT 1 FROM api_keys WHERE prefix = $1", &[&prefix])
                .await
                .map_err(map_err)?;
            // End the transaction here: a dropped one goes back to the pool still open.
            tx.commit().await.map_err(map_err)?;
            return Ok(!found.is_empty());
        };
        let tenant: String = row.get(0);
        let mut events = EventRows::default();
        events.push(
            at.millis(),
            Event::KeyRevoked {
                prefix: prefix.to_string(),
            },
        );
        events.insert(&tx, &tenant).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
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
