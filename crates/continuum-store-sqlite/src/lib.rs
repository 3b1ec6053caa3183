//! The embedded SQLite store: Continuum's default backend, one file on disk.
//!
//! WAL mode, one writer connection and a few reader connections, a busy timeout so several
//! processes can share one file, FTS5 (Porter stemming) for BM25 ranking, and the embedded,
//! checksummed migrations of [`migrations`]. Every query is scoped by tenant.
//!
//! It is not a server: calls run on the caller's thread. They are short (microseconds to a few
//! milliseconds), which is why the async trait methods do their work inline.

pub mod migrations;

use async_trait::async_trait;
use continuum_core::event::{EVENT_VERSION, Event, EventRecord, EventScope};
use continuum_core::extract::ExtractedConcept;
use continuum_core::hebbian::HebbianRule;
use continuum_core::memory::{Decision, Metadata, SessionInfo};
use continuum_core::store::{
    Applied, Concept, ForgetSelector, ImportKey, IndexDoc, Link, LinkWrite, MAX_PAGE, MemoryFilter,
    MemoryHead, Order, Page, PageRequest, Scored, StoreStats, WriteBatch,
};
use continuum_core::store::{SnapshotItem, SnapshotSink};
use continuum_core::{
    Error, EventLog, KeyStore, Memory, MemoryGraph, MemoryId, Result, SessionId, TenantId,
    Timestamp, VectorStore,
};
use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, params, params_from_iter,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a write waits for another process's lock before failing with `Unavailable`.
    pub busy_timeout: Duration,
    /// Reader connections beside the writer.
    pub readers: usize,
    /// Apply pending migrations at open (otherwise pending migrations are an error).
    pub migrate: bool,
    /// Page cache of the writer connection, in KiB (readers get a quarter each).
    pub cache_kib: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            readers: 2,
            migrate: true,
            cache_kib: 64 * 1024,
        }
    }
}

/// The SQLite implementation of [`MemoryStore`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// A connection that never writes, for `PRAGMA data_version`: it moves whenever another
    /// connection (this process's writer, or any other process) commits. The commit marker
    /// when the WAL-index header cannot be read.
    watch: Mutex<Connection>,
    /// The WAL-index header, read for the commit marker without taking any lock.
    wal_header: Option<WalHeader>,
}

/// The header of the store's WAL index: the first 96 bytes of its `-shm` file, two copies of
/// the 48-byte header every commit rewrites, with a counter each write transaction moves
/// (layout: <https://www.sqlite.org/walformat.html>; processes running different SQLite
/// versions share this file, so it does not change between versions). Reading it is one
/// `pread`, where `PRAGMA data_version` opens a read transaction: file locks and the shared
/// memory's mutexes, which threads asking at once queue on.
struct WalHeader {
    file: std::fs::File,
    /// The header last read, and how many different ones were read: the commit marker.
    seen: Mutex<([u8; WAL_HEADER_BYTES], u64)>,
}

const WAL_HEADER_BYTES: usize = 96;

impl WalHeader {
    /// Opens the `-shm` file of the store at `db`, once a connection has read the store (so
    /// that SQLite has written the header): None where it cannot be read.
    fn open(db: &Path) -> Option<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push("-shm");
        let file = std::fs::File::open(PathBuf::from(name)).ok()?;
        let header = WalHeader {
            file,
            seen: Mutex::new(([0; WAL_HEADER_BYTES], 0)),
        };
        let now = header.read()?;
        // `isInit` (byte 12 of the first copy): a header SQLite has written.
        (now[12] == 1).then_some(())?;
        header.seen.lock().ok()?.0 = now;
        Some(header)
    }

    #[cfg(unix)]
    fn read(&self) -> Option<[u8; WAL_HEADER_BYTES]> {
        use std::os::unix::fs::FileExt;
        let mut now = [0; WAL_HEADER_BYTES];
        self.file.read_exact_at(&mut now, 0).ok()?;
        Some(now)
    }

    #[cfg(not(unix))]
    fn read(&self) -> Option<[u8; WAL_HEADER_BYTES]> {
        None
    }

    /// A number that moves whenever the header differs from the one read last. A commit
    /// finished before this call rewrote both copies, with a counter it moved: the bytes
    /// differ from any read before it, so the number returned differs from any handed out
    /// before it. A read torn by a commit in progress differs too, and only costs the
    /// caller one more query.
    fn marker(&self) -> Option<u64> {
        let now = self.read()?;
        let mut seen = self.seen.lock().ok()?;
        if seen.0 != now {
            seen.0 = now;
            seen.1 += 1;
        }
        Some(seen.1)
    }
}

/// Maps a driver error to an error kind a caller can act on.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let detail = msg.clone().unwrap_or_default();
        return match f.code {
            C::DatabaseBusy | C::DatabaseLocked => Error::Unavailable(
                "the store is locked by another process; try again, or raise the busy timeout (--busy-timeout)"
                    .into(),
            ),
            C::ReadOnly => Error::Unavailable(
                "the store is read-only (check the permissions of the data directory and its files)"
                    .into(),
            ),
            C::CannotOpen => Error::Unavailable(format!(
                "cannot open the store file (does the data directory exist and is it writable?) {detail}"
            )),
            C::DiskFull => Error::Unavailable("the disk holding the store is full".into()),
            C::NotADatabase => Error::Unavailable(
                "the store file is not a SQLite database (wrong --data-dir?)".into(),
            ),
            C::DatabaseCorrupt => Error::Internal("the store file is corrupt".into()),
            _ => Error::Internal(e.to_string()),
        };
    }
    Error::Internal(e.to_string())
}

fn open_conn(path: &Path, opts: &SqliteOptions) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| match map_err(e) {
        Error::Unavailable(m) => Error::Unavailable(format!("{m} ({})", path.display())),
        other => other,
    })?;
    conn.busy_timeout(opts.busy_timeout).map_err(map_err)?;
    // WAL: readers never block the writer; NORMAL sync: a committed write survives a process
    // crash (kill -9); only an OS crash or power loss may lose the last transactions.
    // Switching a new file to WAL takes an exclusive lock and SQLite reports a conflict at
    // once, without the busy handler: two processes opening a fresh store together would
    // otherwise fail. Retry within the busy timeout.
    let started = std::time::Instant::now();
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < opts.busy_timeout =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.map_err(map_err)?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "the store could not switch to WAL mode (got {mode}); is the file on a network filesystem?"
        )));
    }
    // A checkpoint copies the WAL into the database and syncs it: with ~50 pages dirtied per
    // learned turn, the default interval (1000 pages) checkpointed every ~20 turns. 10000 pages
    // (about 40 MB of WAL) measured ~15% more learn throughput; the WAL is truncated back to
    // 64 MB after a checkpoint.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864;",
        opts.cache_kib
    ))
    .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, applying migrations when allowed.
    pub fn open(path: impl AsRef<Path>, opts: &SqliteOptions, now: Timestamp) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut writer = open_conn(&path, opts)?;
        let pending = migrations::pending(&writer)?;
        if !pending.is_empty() {
            if !opts.migrate {
                return Err(Error::Unavailable(format!(
                    "the store needs migrations {pending:?}; run `continuum migrate`"
                )));
            }
            migrations::migrate(&mut writer, now.millis())?;
        }
        let reader_opts = SqliteOptions {
            cache_kib: (opts.cache_kib / 4).max(2048),
            ..opts.clone()
        };
        let readers = (0..opts.readers.max(1))
            .map(|_| open_conn(&path, &reader_opts).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let watch = open_conn(
            &path,
            &SqliteOptions {
                cache_kib: 64,
                ..opts.clone()
            },
        )?;
        // A read builds the WAL index if no connection has yet.
        watch
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .map_err(map_err)?;
        let wal_header = WalHeader::open(&path);
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            watch: Mutex::new(watch),
            wal_header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the commit marker is read from the WAL-index header (one `pread`), rather than
    /// with `PRAGMA data_version` (a read transaction) where that header cannot be read.
    pub fn reads_wal_header(&self) -> bool {
        self.wal_header.is_some()
    }

    /// The migrations recorded in the store.
    pub fn applied_migrations(&self) -> Result<Vec<migrations::AppliedMigration>> {
        self.read(migrations::applied)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return f(&conn).map_err(map_err);
            }
        }
        let conn = self.readers[start % n]
            .lock()
            .map_err(|_| Error::Internal("a reader connection was poisoned".into()))?;
        f(&conn).map_err(map_err)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| Error::Internal("the writer connection was poisoned".into()))?;
        // IMMEDIATE takes the write lock up front, so a busy store fails (or waits) at BEGIN
        // instead of midway through.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(map_err)?;
        Ok(out)
    }
}

const MEMORY_COLS: &str = "m.id, m.session, m.source, m.kind, m.content, m.metadata, m.created_at, m.content_hash, m.valid_until, m.superseded_by";

fn conv<T, E: std::fmt::Display>(col: usize, r: std::result::Result<T, E>) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}

fn row_memory(r: &Row<'_>) -> rusqlite::Result<Memory> {
    let id: Vec<u8> = r.get(0)?;
    let session: Option<String> = r.get(1)?;
    let source: String = r.get(2)?;
    let metadata: String = r.get(5)?;
    let superseded: Option<Vec<u8>> = r.get(9)?;
    Ok(Memory {
        id: conv(0, MemoryId::from_slice(&id))?,
        session: session
            .map(SessionId::new)
            .transpose()
            .or_else(|e| conv(1, Err(e)))?,
        source: conv(2, source.parse())?,
        kind: r.get(3)?,
        content: r.get(4)?,
        metadata: conv(5, serde_json::from_str::<Metadata>(&metadata))?,
        created_at: Timestamp(r.get(6)?),
        content_hash: r.get(7)?,
        valid_until: r.get::<_, Option<i64>>(8)?.map(Timestamp),
        superseded_by: superseded
            .map(|b| MemoryId::from_slice(&b))
            .transpose()
            .or_else(|e| conv(9, Err(e)))?,
    })
}

/// Reads `id, source, session, created_at, superseded` starting at column `at`.
fn row_head(r: &Row<'_>, at: usize) -> rusqlite::Result<MemoryHead> {
    let id: Vec<u8> = r.get(at)?;
    let source: String = r.get(at + 1)?;
    let session: Option<String> = r.get(at + 2)?;
    Ok(MemoryHead {
        id: conv(at, MemoryId::from_slice(&id))?,
        source: conv(at + 1, source.parse())?,
        session: session
            .map(SessionId::new)
            .transpose()
            .or_else(|e| conv(at + 2, Err(e)))?,
        created_at: Timestamp(r.get(at + 3)?),
        superseded: r.get(at + 4)?,
    })
}

const HEAD_COLS: &str = "m.id, m.source, m.session, m.created_at, m.superseded_by IS NOT NULL";

/// The memory's `metadata.speaker` when it is a string (an index column).
const SPEAKER_COL: &str = "CASE WHEN json_type(m.metadata, '$.speaker') = 'text' THEN json_extract(m.metadata, '$.speaker') END";

/// Reads `rid, content, concept keys (unit-separated), head…, speaker`.
fn index_doc(r: &Row<'_>) -> rusqlite::Result<IndexDoc> {
    let keys: Option<String> = r.get(2)?;
    Ok(IndexDoc {
        content: r.get(1)?,
        concepts: keys
            .map(|k| k.split('\u{1f}').map(str::to_string).collect())
            .unwrap_or_default(),
        head: row_head(r, 3)?,
        speaker: r.get(8)?,
    })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<Result<continuum_core::keys::ApiKey>> {
    let tenant: String = r.get(1)?;
    let scope: String = r.get(2)?;
    Ok((|| {
        Ok(continuum_core::keys::ApiKey {
            prefix: r.get(0).map_err(map_err)?,
            tenant: TenantId::new(tenant)?,
            scope: scope.parse()?,
            hash: r.get(3).map_err(map_err)?,
            name: r.get(4).map_err(map_err)?,
            created_at: Timestamp(r.get(5).map_err(map_err)?),
            expires_at: r.get::<_, Option<i64>>(6).map_err(map_err)?.map(Timestamp),
            revoked_at: r.get::<_, Option<i64>>(7).map_err(map_err)?.map(Timestamp),
        })
    })())
}

fn row_concept(r: &Row<'_>) -> rusqlite::Result<Concept> {
    Ok(Concept {
        key: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        mentions: r.get::<_, i64>(3)?.max(0) as u64,
        first_seen: Timestamp(r.get(4)?),
        last_seen: Timestamp(r.get(5)?),
    })
}

fn row_link(r: &Row<'_>) -> rusqlite::Result<Link> {
    let x: String = r.get(0)?;
    let y: String = r.get(1)?;
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    Ok(Link {
        a,
        b,
        strength: r.get(2)?,
        count: r.get::<_, i64>(3)?.max(0) as u64,
        last_at: Timestamp(r.get(4)?),
    })
}

/// Appends SQL conditions for a filter on alias `m`, pushing their parameters.
fn filter_sql(f: &MemoryFilter, params: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if !f.sources.is_empty() {
        sql.push_str(" AND m.source IN (");
        for (i, s) in f.sources.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
            params.push(Value::Text(s.as_str().into()));
        }
        sql.push(')');
    }
    if let Some(s) = &f.session {
        sql.push_str(" AND m.session = ?");
        params.push(Value::Text(s.as_str().into()));
    }
    if let Some(t) = f.since {
        sql.push_str(" AND m.created_at >= ?");
        params.push(Value::Integer(t.millis()));
    }
    if let Some(t) = f.until {
        sql.push_str(" AND m.created_at < ?");
        params.push(Value::Integer(t.millis()));
    }
    if f.current_only {
        sql.push_str(" AND m.superseded_by IS NULL");
    }
    sql
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

/// Quotes search terms for an FTS5 MATCH: each term a phrase, any of them may match.
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn parse_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || Error::InvalidInput(format!("'{c}' is not a valid page cursor"));
    let (t, r) = c.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
}

/// Appends an event to the log, in the caller's transaction (so it commits or rolls back with
/// the change it describes). One writer at a time: the sequence is gap-free in commit order.
fn log_event(tx: &Transaction<'_>, tenant: &TenantId, at: i64, event: &Event) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (tenant, at, type, v, subject, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.as_str(),
            at,
            event.kind(),
            EVENT_VERSION,
            event.subject().map(|id| id.to_string()),
            event.encode()
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// Removes a forgotten memory's text from the events that carry it (the ids stay).
fn scrub_events(tx: &Transaction<'_>, tenant: &str, id: &MemoryId) -> Result<()> {
    tx.prepare_cached(
        "UPDATE events SET payload = CASE type
            WHEN 'memory.created' THEN json_set(payload, '$.memory', json('null'), '$.concepts', json('[]'))
            ELSE json_set(payload, '$.decision', json('null')) END
         WHERE subject = ?1 AND tenant = ?2 AND type IN ('memory.created', 'decision.created')",
    )
    .and_then(|mut s| s.execute(params![id.to_string(), tenant]))
    .map_err(map_err)?;
    Ok(())
}

/// Finds or creates a concept, returning (cid, created).
fn concept_id(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    c: &ExtractedConcept,
    at: i64,
    cache: &mut HashMap<String, i64>,
) -> Result<(i64, bool)> {
    if let Some(&cid) = cache.get(&c.key) {
        return Ok((cid, false));
    }
    let found: Option<i64> = tx
        .prepare_cached("SELECT cid FROM concepts WHERE tenant = ?1 AND key = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), c.key], |r| r.get(0))
                .optional()
        })
        .map_err(map_err)?;
    let (cid, created) = match found {
        Some(cid) => (cid, false),
        None => {
            tx.prepare_cached(
                "INSERT INTO concepts (tenant, key, name, kind, mentions, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), c.key, c.name, c.kind, at]))
            .map_err(map_err)?;
            let cid = tx.last_insert_rowid();
            log_event(
                tx,
                tenant,
                at,
                &Event::ConceptCreated {
                    key: c.key.clone(),
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                },
            )?;
            (cid, true)
        }
    };
    cache.insert(c.key.clone(), cid);
    Ok((cid, created))
}

fn apply_batches(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    rule: &HebbianRule,
    batches: Vec<WriteBatch>,
) -> Result<Applied> {
    let t = tenant.as_str();
    let mut out = Applied::default();
    let mut cids: HashMap<String, i64> = HashMap::new();
    // cid -> (new mentions, first, last): applied once per call.
    let mut mention_delta: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    let mut last_at = 0i64;
    // session -> (new memories, first, last): one upsert per session per call.
    let mut session_delta: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for batch in &batches {
        let at = batch.at.millis();
        last_at = last_at.max(at);
        for w in &batch.memories {
            let m = &w.memory;
            let metadata = if m.metadata.is_empty() {
                "{}".to_string()
            } else {
                serde_json::to_string(&m.metadata).map_err(|e| {
                    Error::InvalidInput(format!("metadata is not serialisable: {e}"))
                })?
            };
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO memories (id, tenant, session, source, kind, content, metadata,
                        created_at, content_hash, valid_until, superseded_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        m.id.as_bytes().as_slice(),
                        t,
                        m.session.as_ref().map(|s| s.as_str()),
                        m.source.as_str(),
                        m.kind,
                        m.content,
                        metadata,
                        m.created_at.millis(),
                        m.content_hash,
                        m.valid_until.map(|v| v.millis()),
                        m.superseded_by.as_ref().map(|s| s.as_bytes().to_vec()),
                    ])
                });
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(Error::Conflict(format!("memory {} already exists", m.id)));
                }
                Err(e) => return Err(map_err(e)),
            }
            let rid = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO memories_fts (rowid, content) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![rid, m.content]))
                .map_err(map_err)?;
            if let Some(session) = &m.session {
                let ts = m.created_at.millis();
                let e = session_delta.entry(session.as_str()).or_insert((0, ts, ts));
                e.0 += 1;
                e.1 = e.1.min(ts);
                e.2 = e.2.max(ts);
            }
            log_event(
                tx,
                tenant,
                at,
                &Event::MemoryCreated {
                    id: m.id,
                    memory: Some(Box::new(m.clone())),
                    concepts: w.concepts.clone(),
                },
            )?;
            out.memories += 1;
            for c in &w.concepts {
                let (cid, created) = concept_id(tx, tenant, c, m.created_at.millis(), &mut cids)?;
                out.concepts_created += created as u64;
                let n = tx
                    .prepare_cached("INSERT OR IGNORE INTO mentions (cid, rid) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![cid, rid]))
                    .map_err(map_err)?;
                if n > 0 {
                    let ts = m.created_at.millis();
                    let e = mention_delta.entry(cid).or_insert((0, ts, ts));
                    e.0 += 1;
                    e.1 = e.1.min(ts);
                    e.2 = e.2.max(ts);
                }
            }
        }
        let mut links_written = Vec::new();
        for link in &batch.links {
            let (ka, kb) = match link {
                LinkWrite::CoOccurred { a, b, .. } | LinkWrite::AtLeast { a, b, .. } => (a, b),
            };
            if ka == kb {
                continue;
            }
            links_written.push(link.clone());
            let mut cid_of = |key: &String| -> Result<i64> {
                let c = ExtractedConcept {
                    key: key.clone(),
                    name: key.clone(),
                    kind: "concept".into(),
                };
                let (cid, created) = concept_id(tx, tenant, &c, at, &mut cids)?;
                out.concepts_created += created as u64;
                Ok(cid)
            };
            let (x, y) = (cid_of(ka)?, cid_of(kb)?);
            let (a, b) = (x.min(y), x.max(y));
            // `created`: the row's count after the write equals what this write added.
            let created = match link {
                LinkWrite::CoOccurred { count, .. } => {
                    let n = (*count).max(1);
                    tx.prepare_cached(
                        "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                         ON CONFLICT (a, b) DO UPDATE SET
                            strength = min(?7, strength + ?8 * excluded.count),
                            count = count + excluded.count,
                            last_at = max(last_at, excluded.last_at)
                         RETURNING count",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                a,
                                b,
                                t,
                                rule.new_strength(n),
                                n as i64,
                                at,
                                rule.cap,
                                rule.increment
                            ],
                            |r| r.get::<_, i64>(0),
                        )
                    })
                    .map_err(map_err)?
                        == n as i64
                }
                LinkWrite::AtLeast {
                    strength,
                    count,
                    last_at,
                    ..
                } => tx
                    .prepare_cached(
                        "INSERT INTO links (a, b, tenant, strength, count, first_at, last_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                         ON CONFLICT (a, b) DO UPDATE SET
                            strength = max(strength, excluded.strength),
                            count = max(count, excluded.count),
                            last_at = max(last_at, excluded.last_at)
                         RETURNING first_at = last_at AND last_at = ?6 AND count = ?5",
                    )
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                a,
                                b,
                                t,
                                strength.clamp(0.0, rule.cap),
                                *count as i64,
                                last_at.millis()
                            ],
                            |r| r.get::<_, bool>(0),
                        )
                    })
                    .map_err(map_err)?,
            };
            if created {
                out.links_created += 1;
            } else {
                out.links_strengthened += 1;
            }
        }
        if !links_written.is_empty() {
            log_event(
                tx,
                tenant,
                at,
                &Event::LinksStrengthened {
                    links: links_written,
                },
            )?;
        }
        for d in &batch.decisions {
            let inserted = tx.prepare_cached(
                "INSERT INTO decisions (id, tenant, memory_id, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.id.as_bytes().as_slice(),
                    t,
                    d.memory_id.as_bytes().as_slice(),
                    d.text,
                    d.created_at.millis()
                ])
            })
            .map_err(map_err)?;
            if inserted > 0 {
                log_event(
                    tx,
                    tenant,
                    at,
                    &Event::DecisionCreated {
                        id: d.id,
                        decision: Some(d.clone()),
                    },
                )?;
                out.decisions += 1;
            }
        }
        for (old, new) in &batch.supersedes {
            let n = tx
                .prepare_cached(
                    "UPDATE memories SET superseded_by = ?1, valid_until = coalesce(valid_until, ?2)
                     WHERE +tenant = ?3 AND id = ?4",
                )
                .and_then(|mut s| {
                    s.execute(params![new.as_bytes().as_slice(), at, t, old.as_bytes().as_slice()])
                })
                .map_err(map_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("no memory with id {old}")));
            }
            log_event(
                tx,
                tenant,
                at,
                &Event::MemorySuperseded {
                    id: *old,
                    by: Some(*new),
                },
            )?;
        }
    }
    for (session, (n, first, last)) in session_delta {
        tx.prepare_cached(
            "INSERT INTO sessions (tenant, id, started_at, last_at, memories)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant, id) DO UPDATE SET
                started_at = min(started_at, excluded.started_at),
                last_at = max(last_at, excluded.last_at),
                memories = memories + excluded.memories",
        )
        .and_then(|mut s| s.execute(params![t, session, first, last, n]))
        .map_err(map_err)?;
    }
    for (cid, (n, first, last)) in mention_delta {
        tx.prepare_cached(
            "UPDATE concepts SET mentions = mentions + ?1, first_seen = min(first_seen, ?2),
                last_seen = max(last_seen, ?3) WHERE cid = ?4",
        )
        .and_then(|mut s| s.execute(params![n, first, last, cid]))
        .map_err(map_err)?;
    }
    out.change_seq = tx
        .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(map_err)? as u64;
    Ok(out)
}

/// The rids of the memories a selector names, in this tenant.
fn selected_rids(
    tx: &Transaction<'_>,
    t: &str,
    what: &ForgetSelector,
) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut push = |r: &Row<'_>| -> rusqlite::Result<()> {
        out.push((r.get(0)?, r.get(1)?));
        Ok(())
    };
    match what {
        ForgetSelector::Ids(ids) => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE +tenant = ?1 AND id = ?2")
                .map_err(map_err)?;
            for id in ids {
                let mut rows = stmt
                    .query(params![t, id.as_bytes().as_slice()])
                    .map_err(map_err)?;
                while let Some(r) = rows.next().map_err(map_err)? {
                    push(r).map_err(map_err)?;
                }
            }
        }
        ForgetSelector::Session(s) => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE tenant = ?1 AND session = ?2")
                .map_err(map_err)?;
            let mut rows = stmt.query(params![t, s.as_str()]).map_err(map_err)?;
            while let Some(r) = rows.next().map_err(map_err)? {
                push(r).map_err(map_err)?;
            }
        }
        ForgetSelector::All => {
            let mut stmt = tx
                .prepare_cached("SELECT rid, id FROM memories WHERE tenant = ?1")
                .map_err(map_err)?;
            let mut rows = stmt.query(params![t]).map_err(map_err)?;
            while let Some(r) = rows.next().map_err(map_err)? {
                push(r).map_err(map_err)?;
            }
        }
    }
    Ok(out)
}

fn forget_tx(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    what: &ForgetSelector,
    now: i64,
) -> Result<u64> {
    let t = tenant.as_str();
    let rids = selected_rids(tx, t, what)?;
    let mut touched_concepts: HashMap<i64, i64> = HashMap::new();
    for (rid, id) in &rids {
        {
            let mut stmt = tx
                .prepare_cached("SELECT cid FROM mentions WHERE rid = ?1")
                .map_err(map_err)?;
            let cids = stmt
                .query_map([rid], |r| r.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(map_err)?;
            for cid in cids {
                *touched_concepts.entry(cid).or_default() += 1;
            }
        }
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize> {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map_err(map_err)
        };
        exec("DELETE FROM mentions WHERE rid = ?1", &[rid])?;
        exec("DELETE FROM vectors WHERE rid = ?1", &[rid])?;
        exec("DELETE FROM memories_fts WHERE rowid = ?1", &[rid])?;
        exec(
            "DELETE FROM decisions WHERE tenant = ?1 AND memory_id = ?2",
            &[&t, id],
        )?;
        // The memory it replaced becomes current again.
        let restored: Vec<Vec<u8>> = tx
            .prepare_cached("SELECT id FROM memories WHERE superseded_by = ?1 AND +tenant = ?2")
            .and_then(|mut s| {
                s.query_map(params![id, t], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_err)?;
        for old in &restored {
            log_event(
                tx,
                tenant,
                now,
                &Event::MemoryUpdated {
                    id: MemoryId::from_slice(old)?,
                    superseded_by: None,
                },
            )?;
        }
        exec(
            "UPDATE memories SET superseded_by = NULL, valid_until = NULL WHERE tenant = ?1 AND superseded_by = ?2",
            &[&t, id],
        )?;
        exec(
            "UPDATE sessions SET memories = memories - 1
             WHERE tenant = ?1 AND id = (SELECT session FROM memories WHERE rid = ?2)",
            &[&t, rid],
        )?;
        exec("DELETE FROM memories WHERE rid = ?1", &[rid])?;
        let id = MemoryId::from_slice(id)?;
        scrub_events(tx, t, &id)?;
        log_event(tx, tenant, now, &Event::MemoryForgotten { id })?;
    }
    for (cid, n) in touched_concepts {
        tx.prepare_cached("UPDATE concepts SET mentions = mentions - ?1 WHERE cid = ?2")
            .and_then(|mut s| s.execute(params![n, cid]))
            .map_err(map_err)?;
        let gone: Option<String> = tx
            .prepare_cached("DELETE FROM concepts WHERE cid = ?1 AND mentions <= 0 RETURNING key")
            .and_then(|mut s| s.query_row([cid], |r| r.get(0)).optional())
            .map_err(map_err)?;
        if gone.is_some() {
            tx.prepare_cached("DELETE FROM links WHERE a = ?1 OR b = ?1")
                .and_then(|mut s| s.execute([cid]))
                .map_err(map_err)?;
        }
    }
    tx.execute(
        "DELETE FROM sessions WHERE tenant = ?1 AND memories <= 0",
        [t],
    )
    .map_err(map_err)?;
    if matches!(what, ForgetSelector::All) {
        // Links or concepts left without mentions (from imports) go with the tenant.
        tx.execute("DELETE FROM links WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        tx.execute("DELETE FROM concepts WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        tx.execute("DELETE FROM decisions WHERE tenant = ?1", [t])
            .map_err(map_err)?;
        // Concept names and keys come from the tenant's text too.
        tx.execute(
            "UPDATE events SET payload = CASE type
                WHEN 'concept.created' THEN json_set(payload, '$.key', '', '$.name', '')
                WHEN 'links.strengthened' THEN json_set(payload, '$.links', json('[]'))
                ELSE json_set(payload, '$.keys', json('null')) END
             WHERE tenant = ?1 AND type IN ('concept.created', 'links.strengthened', 'concepts.changed')",
            [t],
        )
        .map_err(map_err)?;
    }
    if let ForgetSelector::Session(session) = what
        && !rids.is_empty()
    {
        log_event(
            tx,
            tenant,
            now,
            &Event::SessionForgotten {
                session: session.clone(),
                memories: rids.len() as u64,
            },
        )?;
    }
    Ok(rids.len() as u64)
}

/// The reads of [`MemoryStore::snapshot`], inside the caller's read transaction. A sink error
/// is returned inside the outer `Ok`, so that the transaction still ends.
fn snapshot_tx(c: &Connection, t: &str, sink: SnapshotSink<'_>) -> rusqlite::Result<Result<u64>> {
    let position: i64 =
        c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
    macro_rules! emit {
        ($item:expr) => {
            if let Err(e) = sink($item) {
                return Ok(Err(e));
            }
        };
    }
    emit!(SnapshotItem::Begin {
        position: position.max(0) as u64
    });
    let mut concepts = c.prepare_cached(
        "SELECT k.key, k.name, k.kind FROM mentions mn JOIN concepts k ON k.cid = mn.cid
         WHERE mn.rid = ?1 ORDER BY k.key",
    )?;
    let mut memories = c.prepare(&format!(
        "SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = ?1 ORDER BY m.created_at, m.rid"
    ))?;
    let mut rows = memories.query([t])?;
    while let Some(r) = rows.next()? {
        let memory = row_memory(r)?;
        let rid: i64 = r.get(10)?;
        let mentioned = concepts
            .query_map([rid], |r| {
                Ok(ExtractedConcept {
                    key: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        emit!(SnapshotItem::Memory {
            memory,
            concepts: mentioned
        });
    }
    let mut links = c.prepare(
        "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
         JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
         WHERE l.tenant = ?1 ORDER BY l.a, l.b",
    )?;
    let mut rows = links.query([t])?;
    while let Some(r) = rows.next()? {
        emit!(SnapshotItem::Link(row_link(r)?));
    }
    let mut decisions = c.prepare(
        "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = ?1
         ORDER BY created_at, id",
    )?;
    let mut rows = decisions.query([t])?;
    while let Some(r) = rows.next()? {
        let id: Vec<u8> = r.get(0)?;
        let mid: Vec<u8> = r.get(1)?;
        emit!(SnapshotItem::Decision(Decision {
            id: conv(0, MemoryId::from_slice(&id))?,
            memory_id: conv(1, MemoryId::from_slice(&mid))?,
            text: r.get(2)?,
            created_at: Timestamp(r.get(3)?),
        }));
    }
    let mut vectors = c.prepare(
        "SELECT m.id, v.model, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
         WHERE v.tenant = ?1 ORDER BY v.model, v.seq",
    )?;
    let mut rows = vectors.query([t])?;
    while let Some(r) = rows.next()? {
        let id: Vec<u8> = r.get(0)?;
        let dim: i64 = r.get(2)?;
        let bytes: Vec<u8> = r.get(3)?;
        emit!(SnapshotItem::Vector {
            id: conv(0, MemoryId::from_slice(&id))?,
            model: r.get(1)?,
            vector: conv(
                3,
                continuum_core::embed::decode_vector(&bytes, dim.max(0) as usize)
            )?,
        });
    }
    Ok(Ok(position.max(0) as u64))
}

#[async_trait]
impl MemoryGraph for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// `<database file>-index`, beside the database (its WAL and shared-memory files sit there
    /// too).
    fn derived_dir(&self) -> Option<PathBuf> {
        let mut name = self.path.file_name()?.to_os_string();
        name.push("-index");
        Some(self.path.with_file_name(name))
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        rule: &HebbianRule,
        batches: Vec<WriteBatch>,
    ) -> Result<Applied> {
        self.write(|tx| apply_batches(tx, tenant, rule, batches))
    }

    async fn get(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<Memory>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT {MEMORY_COLS} FROM memories m WHERE +m.tenant = ? AND m.id IN ({})",
                placeholders(chunk.len())
            );
            let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
            p.extend(chunk.iter().map(|id| Value::Blob(id.as_bytes().to_vec())));
            let mut found = self.read(|c| {
                let mut stmt = c.prepare_cached(&sql)?;
                stmt.query_map(params_from_iter(p), row_memory)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?;
            out.append(&mut found);
        }
        Ok(out)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &MemoryFilter,
        page: &PageRequest,
    ) -> Result<Page<Memory>> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        let mut sql = format!("SELECT {MEMORY_COLS}, m.rid FROM memories m WHERE m.tenant = ?");
        sql.push_str(&filter_sql(filter, &mut p));
        let (cmp, dir) = match page.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(c) = &page.cursor {
            let (at, rid) = parse_cursor(c)?;
            sql.push_str(&format!(
                " AND (m.created_at {cmp} ? OR (m.created_at = ? AND m.rid {cmp} ?))"
            ));
            p.extend([Value::Integer(at), Value::Integer(at), Value::Integer(rid)]);
        }
        sql.push_str(&format!(
            " ORDER BY m.created_at {dir}, m.rid {dir} LIMIT ?"
        ));
        p.push(Value::Integer(limit as i64 + 1));
        let mut rows = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            stmt.query_map(params_from_iter(p), |r| {
                Ok((row_memory(r)?, r.get::<_, i64>(10)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|(m, rid)| format!("{}:{rid}", m.created_at.millis()))
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|(m, _)| m).collect(),
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
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut p: Vec<Value> = vec![
            Value::Text(fts_query(terms)),
            Value::Text(tenant.as_str().into()),
        ];
        let mut sql = format!(
            "SELECT bm25(memories_fts) AS score, {HEAD_COLS} FROM memories_fts
             JOIN memories m ON m.rid = memories_fts.rowid
             WHERE memories_fts MATCH ? AND m.tenant = ?"
        );
        sql.push_str(&filter_sql(filter, &mut p));
        sql.push_str(" ORDER BY score LIMIT ?");
        p.push(Value::Integer(limit.min(MAX_PAGE) as i64));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            stmt.query_map(params_from_iter(p), |r| {
                let score: f64 = r.get(0)?;
                Ok(Scored {
                    head: row_head(r, 1)?,
                    // FTS5's bm25() is lower-is-better; the port speaks higher-is-better.
                    score: -score,
                })
            })?
            .collect()
        })
    }

    async fn concepts(&self, tenant: &TenantId, keys: &[String]) -> Result<Vec<Concept>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
             WHERE tenant = ? AND key IN ({})",
            placeholders(keys.len())
        );
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        p.extend(keys.iter().map(|k| Value::Text(k.clone())));
        self.read(|c| {
            c.prepare_cached(&sql)?
                .query_map(params_from_iter(p), row_concept)?
                .collect()
        })
    }

    async fn list_concepts(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Concept>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT key, name, kind, mentions, first_seen, last_seen FROM concepts
                 WHERE tenant = ?1 ORDER BY mentions DESC, key LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                row_concept,
            )?
            .collect()
        })
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
        let per = per_concept.min(MAX_PAGE) as i64;
        let key_sql = format!(
            "SELECT cid, key FROM concepts WHERE tenant = ? AND key IN ({})",
            placeholders(keys.len())
        );
        let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
        p.extend(keys.iter().map(|k| Value::Text(k.clone())));
        self.read(|c| {
            let mut names: HashMap<i64, String> = c
                .prepare_cached(&key_sql)?
                .query_map(params_from_iter(p), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let seeds: Vec<i64> = names.keys().copied().collect();
            let mut rows: HashMap<(i64, i64), (f64, i64, i64)> = HashMap::new();
            // Each side is a short index range (a hub's links number in the hundreds), sorted
            // here rather than kept sorted by strength-carrying indexes on every write.
            for side in ["a", "b"] {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT a, b, strength, count, last_at FROM links WHERE {side} = ?1
                     ORDER BY strength DESC, count DESC LIMIT ?2"
                ))?;
                for cid in &seeds {
                    let found = stmt.query_map(params![cid, per], |r| {
                        Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
                    })?;
                    for f in found {
                        let (k, v) = f?;
                        rows.insert(k, v);
                    }
                }
            }
            let missing: Vec<i64> = rows
                .keys()
                .flat_map(|(a, b)| [*a, *b])
                .filter(|cid| !names.contains_key(cid))
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            for chunk in missing.chunks(500) {
                let sql = format!(
                    "SELECT cid, key FROM concepts WHERE cid IN ({})",
                    placeholders(chunk.len())
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let found = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                for f in found {
                    let (cid, key): (i64, String) = f?;
                    names.insert(cid, key);
                }
            }
            let mut links: Vec<Link> = rows
                .into_iter()
                .filter_map(|((a, b), (strength, count, last_at))| {
                    let (x, y) = (names.get(&a)?.clone(), names.get(&b)?.clone());
                    let (a, b) = if x <= y { (x, y) } else { (y, x) };
                    Some(Link {
                        a,
                        b,
                        strength,
                        count: count.max(0) as u64,
                        last_at: Timestamp(last_at),
                    })
                })
                .collect();
            continuum_core::store::sort_links(&mut links);
            Ok(links)
        })
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Link>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT ca.key, cb.key, l.strength, l.count, l.last_at FROM links l
                 JOIN concepts ca ON ca.cid = l.a JOIN concepts cb ON cb.cid = l.b
                 WHERE l.tenant = ?1 ORDER BY l.a, l.b LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                row_link,
            )?
            .collect()
        })
    }

    async fn mentions(
        &self,
        tenant: &TenantId,
        keys: &[String],
        per_concept: usize,
    ) -> Result<Vec<(String, MemoryHead)>> {
        let sql = format!(
            "SELECT {HEAD_COLS} FROM concepts k
             JOIN mentions mn ON mn.cid = k.cid
             JOIN memories m ON m.rid = mn.rid
             WHERE k.tenant = ?1 AND k.key = ?2
             ORDER BY mn.rid DESC LIMIT ?3"
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut out = Vec::new();
            for key in keys {
                let heads = stmt
                    .query_map(params![tenant.as_str(), key, per_concept as i64], |r| {
                        row_head(r, 0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.extend(heads.into_iter().map(|h| (key.clone(), h)));
            }
            Ok(out)
        })
    }

    async fn concepts_of(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> Result<Vec<(MemoryId, ExtractedConcept)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT k.key, k.name, k.kind FROM memories m
                 JOIN mentions mn ON mn.rid = m.rid
                 JOIN concepts k ON k.cid = mn.cid
                 WHERE +m.tenant = ?1 AND m.id = ?2 ORDER BY k.key",
            )?;
            let mut out = Vec::new();
            for id in ids {
                let rows = stmt
                    .query_map(params![tenant.as_str(), id.as_bytes().as_slice()], |r| {
                        Ok(ExtractedConcept {
                            key: r.get(0)?,
                            name: r.get(1)?,
                            kind: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.extend(rows.into_iter().map(|c| (*id, c)));
            }
            Ok(out)
        })
    }

    async fn decisions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Decision>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, memory_id, text, created_at FROM decisions WHERE tenant = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                |r| {
                    let id: Vec<u8> = r.get(0)?;
                    let mid: Vec<u8> = r.get(1)?;
                    Ok(Decision {
                        id: conv(0, MemoryId::from_slice(&id))?,
                        memory_id: conv(1, MemoryId::from_slice(&mid))?,
                        text: r.get(2)?,
                        created_at: Timestamp(r.get(3)?),
                    })
                },
            )?
            .collect()
        })
    }

    async fn sessions(
        &self,
        tenant: &TenantId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionInfo>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, started_at, last_at, memories FROM sessions WHERE tenant = ?1
                 ORDER BY last_at DESC, id LIMIT ?2 OFFSET ?3",
            )?
            .query_map(
                params![tenant.as_str(), limit.min(MAX_PAGE) as i64, offset as i64],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(SessionInfo {
                        id: SessionId::new(id).or_else(|e| conv(0, Err(e)))?,
                        started_at: Timestamp(r.get(1)?),
                        last_at: Timestamp(r.get(2)?),
                        memories: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )?
            .collect()
        })
    }

    async fn forget(&self, tenant: &TenantId, what: &ForgetSelector) -> Result<u64> {
        let now = continuum_core::Clock::now(&continuum_core::SystemClock).millis();
        self.write(|tx| forget_tx(tx, tenant, what, now))
    }

    async fn existing(&self, tenant: &TenantId, keys: &[ImportKey]) -> Result<Vec<ImportKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT 1 FROM memories WHERE +tenant = ?1 AND id = ?2
                 UNION ALL
                 SELECT 1 FROM memories WHERE tenant = ?1 AND created_at = ?4 AND content_hash = ?3
                    AND session IS ?5
                 LIMIT 1",
            )?;
            let mut out = Vec::new();
            for k in keys {
                let hit = stmt
                    .query_row(
                        params![
                            tenant.as_str(),
                            k.id.as_bytes().as_slice(),
                            k.content_hash,
                            k.created_at.millis(),
                            k.session.as_ref().map(|s| s.as_str())
                        ],
                        |_| Ok(()),
                    )
                    .optional()?;
                if hit.is_some() {
                    out.push(k.clone());
                }
            }
            Ok(out)
        })
    }

    async fn stats(&self, tenant: &TenantId) -> Result<StoreStats> {
        let t = tenant.as_str();
        self.read(|c| {
            let count = |sql: &str| -> rusqlite::Result<u64> {
                c.prepare_cached(sql)?
                    .query_row([t], |r| r.get::<_, i64>(0))
                    .map(|n| n.max(0) as u64)
            };
            let page_count: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let version: u32 = c.query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?;
            Ok(StoreStats {
                memories: count("SELECT count(*) FROM memories WHERE tenant = ?1")?,
                sessions: count("SELECT count(*) FROM sessions WHERE tenant = ?1")?,
                concepts: count("SELECT count(*) FROM concepts WHERE tenant = ?1")?,
                links: count("SELECT count(*) FROM links WHERE tenant = ?1")?,
                decisions: count("SELECT count(*) FROM decisions WHERE tenant = ?1")?,
                change_seq: c
                    .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                        r.get::<_, i64>(0)
                    })?
                    .max(0) as u64,
                store_bytes: Some((page_count * page_size).max(0) as u64),
                schema_version: version,
            })
        })
    }

    async fn commit_marker(&self) -> Result<Option<u64>> {
        if let Some(header) = &self.wal_header {
            // None if the header, readable at open, cannot be read now: callers then ask
            // the store every time.
            return Ok(header.marker());
        }
        let conn = self
            .watch
            .lock()
            .map_err(|_| Error::Internal("the watch connection was poisoned".into()))?;
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        Ok(Some(version as u64))
    }

    async fn snapshot(&self, tenant: &TenantId, sink: SnapshotSink<'_>) -> Result<u64> {
        // A read transaction on one connection: every SELECT below sees the same commit.
        let t = tenant.as_str();
        self.read(|c| {
            c.execute_batch("BEGIN")?;
            let r = snapshot_tx(c, t, sink);
            let end = c.execute_batch("COMMIT");
            let r = r?;
            end.map(|_| r)
        })?
    }

    async fn index_scan(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, IndexDoc)>> {
        let sql = format!(
            // `+m.tenant`: walk the rowid order; the tenant index would sort every row per page.
            "SELECT m.rid, m.content, {HEAD_COLS}, {SPEAKER_COL} FROM memories m
             WHERE +m.tenant = ?1 AND m.rid > ?2 ORDER BY m.rid LIMIT ?3"
        );
        self.read(|c| {
            let mut docs: Vec<(u64, IndexDoc)> = c
                .prepare_cached(&sql)?
                .query_map(
                    params![tenant.as_str(), after as i64, limit.min(10_000) as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)? as u64,
                            IndexDoc {
                                content: r.get(1)?,
                                concepts: Vec::new(),
                                head: row_head(r, 2)?,
                                speaker: r.get(7)?,
                            },
                        ))
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            let (Some(first), Some(last)) = (docs.first().map(|d| d.0), docs.last().map(|d| d.0))
            else {
                return Ok(docs);
            };
            // Mentions of the page by memory range (other tenants' rows in the range are
            // skipped below), then each concept's key once.
            let mut by_rid: HashMap<i64, Vec<i64>> = HashMap::new();
            let mut stmt =
                c.prepare_cached("SELECT rid, cid FROM mentions WHERE rid BETWEEN ?1 AND ?2")?;
            let rows = stmt.query_map(params![first as i64, last as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for row in rows {
                let (rid, cid): (i64, i64) = row?;
                by_rid.entry(rid).or_default().push(cid);
            }
            let cids: Vec<i64> = by_rid
                .values()
                .flatten()
                .copied()
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let mut keys: HashMap<i64, String> = HashMap::new();
            for chunk in cids.chunks(500) {
                let sql = format!(
                    "SELECT cid, key FROM concepts WHERE tenant = ? AND cid IN ({})",
                    placeholders(chunk.len())
                );
                let mut p: Vec<Value> = vec![Value::Text(tenant.as_str().into())];
                p.extend(chunk.iter().map(|c| Value::Integer(*c)));
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(p), |r| Ok((r.get(0)?, r.get(1)?)))?;
                for row in rows {
                    let (cid, key): (i64, String) = row?;
                    keys.insert(cid, key);
                }
            }
            for (rid, doc) in &mut docs {
                if let Some(cids) = by_rid.get(&(*rid as i64)) {
                    doc.concepts = cids.iter().filter_map(|c| keys.get(c).cloned()).collect();
                }
            }
            Ok(docs)
        })
    }

    async fn index_docs(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<IndexDoc>> {
        let sql = format!(
            "SELECT m.rid, m.content,
                (SELECT group_concat(k.key, char(31)) FROM mentions mn JOIN concepts k ON k.cid = mn.cid
                 WHERE mn.rid = m.rid),
                {HEAD_COLS}, {SPEAKER_COL}
             FROM memories m WHERE +m.tenant = ?1 AND m.id = ?2"
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(doc) = stmt
                    .query_row(
                        params![tenant.as_str(), id.as_bytes().as_slice()],
                        index_doc,
                    )
                    .optional()?
                {
                    out.push(doc);
                }
            }
            Ok(out)
        })
    }

    async fn check(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut problems = Vec::new();
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let row = row?;
                if row != "ok" {
                    problems.push(format!("integrity: {row}"));
                }
            }
            let memories: i64 = c.query_row("SELECT count(*) FROM memories", [], |r| r.get(0))?;
            let indexed: i64 = c.query_row("SELECT count(*) FROM memories_fts", [], |r| r.get(0))?;
            if memories != indexed {
                problems.push(format!(
                    "full-text index holds {indexed} entries for {memories} memories"
                ));
            }
            let orphans: i64 = c.query_row(
                "SELECT count(*) FROM mentions mn LEFT JOIN memories m ON m.rid = mn.rid WHERE m.rid IS NULL",
                [],
                |r| r.get(0),
            )?;
            if orphans > 0 {
                problems.push(format!("{orphans} concept mentions point at missing memories"));
            }
            Ok(problems)
        })
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn events_since(
        &self,
        scope: EventScope<'_>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit.min(MAX_PAGE) as i64;
        let (through, rows): (i64, Vec<(i64, String, i64, u32, String)>) = self.read(|c| {
            let map = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
            let rows: Vec<_> = match scope {
                EventScope::Tenant(t) => c
                    .prepare_cached(
                        "SELECT seq, tenant, at, v, payload FROM events
                         WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    )?
                    .query_map(params![t.as_str(), after, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
                EventScope::All => c
                    .prepare_cached(
                        "SELECT seq, tenant, at, v, payload FROM events
                         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            // Read after the events: a compaction that ran before the read above shows here,
            // so a page that may have lost events is never returned as complete.
            let through = c
                .prepare_cached("SELECT compacted_through FROM event_head WHERE id = 1")?
                .query_row([], |r| r.get::<_, i64>(0))?;
            Ok((through, rows))
        })?;
        if after < through {
            return Err(continuum_core::event::compacted_error(
                after.max(0) as u64,
                through.max(0) as u64,
            ));
        }
        rows.into_iter()
            .map(|(seq, tenant, at, v, payload)| {
                Ok(EventRecord {
                    seq: seq.max(0) as u64,
                    tenant: TenantId::new(tenant)?,
                    at: Timestamp(at),
                    v,
                    event: Event::decode(&payload, v)?,
                })
            })
            .collect()
    }

    async fn event_head(&self) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT max(coalesce((SELECT max(seq) FROM events), 0), compacted_through)
                 FROM event_head WHERE id = 1",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
    }

    async fn compacted_through(&self) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached("SELECT compacted_through FROM event_head WHERE id = 1")?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
    }

    async fn compact_events(&self, through: u64) -> Result<u64> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        self.write(|tx| {
            let n = tx
                .execute("DELETE FROM events WHERE seq <= ?1", [through])
                .map_err(map_err)?;
            tx.execute(
                "UPDATE event_head SET compacted_through = max(compacted_through, ?1) WHERE id = 1",
                [through],
            )
            .map_err(map_err)?;
            Ok(n as u64)
        })
    }

    async fn first_event_at_or_after(&self, at: Timestamp) -> Result<Option<u64>> {
        self.read(|c| {
            c.prepare_cached("SELECT min(seq) FROM events WHERE at >= ?1")?
                .query_row([at.millis()], |r| r.get::<_, Option<i64>>(0))
                .map(|n| n.map(|n| n.max(0) as u64))
        })
    }

    async fn event_cursors(&self) -> Result<Vec<continuum_core::event::EventCursor>> {
        self.read(|c| {
            c.prepare_cached("SELECT name, position, updated_at FROM event_cursors ORDER BY name")?
                .query_map([], |r| {
                    Ok(continuum_core::event::EventCursor {
                        name: r.get(0)?,
                        position: r.get::<_, i64>(1)?.max(0) as u64,
                        updated_at: Timestamp(r.get(2)?),
                    })
                })?
                .collect()
        })
    }

    async fn set_event_cursor(&self, name: &str, position: u64, at: Timestamp) -> Result<()> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO event_cursors (name, position, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position,
                    updated_at = excluded.updated_at",
                params![name, position, at.millis()],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    async fn delete_event_cursor(&self, name: &str) -> Result<bool> {
        self.write(|tx| {
            tx.execute("DELETE FROM event_cursors WHERE name = ?1", [name])
                .map(|n| n > 0)
                .map_err(map_err)
        })
    }

    async fn latest_event(&self, tenant: &TenantId) -> Result<u64> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT max(coalesce((SELECT max(seq) FROM events WHERE tenant = ?1), 0),
                            (SELECT compacted_through FROM event_head WHERE id = 1))",
            )?
            .query_row([tenant.as_str()], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
    }

    async fn record_events(
        &self,
        tenant: &TenantId,
        at: Timestamp,
        events: &[Event],
    ) -> Result<u64> {
        self.write(|tx| {
            for e in events {
                log_event(tx, tenant, at.millis(), e)?;
            }
            tx.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(map_err)
        })
    }
}

#[async_trait]
impl VectorStore for SqliteStore {
    async fn put_vectors(
        &self,
        tenant: &TenantId,
        model: &str,
        dim: usize,
        vectors: &[(MemoryId, Vec<f32>)],
    ) -> Result<usize> {
        let list: Vec<&[f32]> = vectors.iter().map(|(_, v)| v.as_slice()).collect();
        continuum_core::embed::check_vectors(model, dim, &list, vectors.len())?;
        let t = tenant.as_str();
        self.write(|tx| {
            // REPLACE deletes the old row first, so a re-embedded memory moves to the log's end.
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (rid, tenant, model, dim, vector)
                     SELECT rid, tenant, ?3, ?4, ?5 FROM memories WHERE +tenant = ?1 AND id = ?2",
                )
                .map_err(map_err)?;
            let mut stored = 0;
            for (id, v) in vectors {
                stored += stmt
                    .execute(params![
                        t,
                        id.as_bytes().as_slice(),
                        model,
                        dim as i64,
                        continuum_core::embed::encode_vector(v)
                    ])
                    .map_err(map_err)?;
            }
            Ok(stored)
        })
    }

    async fn vectors_since(
        &self,
        tenant: &TenantId,
        model: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<continuum_core::embed::StoredVector>> {
        let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = self.read(|c| {
            c.prepare_cached(
                "SELECT v.seq, m.id, v.dim, v.vector FROM vectors v JOIN memories m ON m.rid = v.rid
                 WHERE v.tenant = ?1 AND v.model = ?2 AND v.seq > ?3 ORDER BY v.seq LIMIT ?4",
            )?
            .query_map(
                params![tenant.as_str(), model, after as i64, limit.min(10_000) as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect()
        })?;
        rows.into_iter()
            .map(|(seq, id, dim, bytes)| {
                Ok(continuum_core::embed::StoredVector {
                    seq: seq as u64,
                    id: MemoryId::from_slice(&id)?,
                    vector: continuum_core::embed::decode_vector(&bytes, dim.max(0) as usize)?,
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
        let rows: Vec<(i64, String, Vec<u8>, String)> = self.read(|c| {
            c.prepare_cached(
                "SELECT m.rid, m.tenant, m.id, m.content FROM memories m
                 WHERE m.rid > ?2 AND (?1 IS NULL OR +m.tenant = ?1)
                   AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.rid = m.rid AND v.model = ?3)
                 ORDER BY m.rid LIMIT ?4",
            )?
            .query_map(
                params![
                    tenant.map(TenantId::as_str),
                    after as i64,
                    model,
                    limit.min(10_000) as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect()
        })?;
        rows.into_iter()
            .map(|(pos, t, id, content)| {
                Ok(continuum_core::embed::PendingEmbedding {
                    pos: pos as u64,
                    tenant: TenantId::new(t)?,
                    id: MemoryId::from_slice(&id)?,
                    content,
                })
            })
            .collect()
    }

    async fn vector_counts(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<continuum_core::embed::VectorCount>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT model, dim, count(*) FROM vectors WHERE tenant = ?1
                 GROUP BY model, dim ORDER BY model, dim",
            )?
            .query_map([tenant.as_str()], |r| {
                Ok(continuum_core::embed::VectorCount {
                    model: r.get(0)?,
                    dim: r.get::<_, i64>(1)?.max(0) as usize,
                    count: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?
            .collect()
        })
    }

    async fn drop_vectors_except(&self, tenant: &TenantId, keep: &str) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM vectors WHERE tenant = ?1 AND model <> ?2",
                params![tenant.as_str(), keep],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn tenants(&self) -> Result<Vec<continuum_core::store::TenantMemories>> {
        let rows: Vec<(String, i64, Option<i64>)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant, count(*), max(created_at) FROM memories GROUP BY tenant ORDER BY tenant",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })?;
        rows.into_iter()
            .map(|(t, n, last)| {
                Ok(continuum_core::store::TenantMemories {
                    tenant: TenantId::new(t)?,
                    memories: n.max(0) as u64,
                    last_memory_at: last.map(Timestamp),
                })
            })
            .collect()
    }

    async fn put_key(&self, key: &continuum_core::keys::ApiKey, events: &[Event]) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO api_keys (prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.prefix,
                    key.tenant.as_str(),
                    key.scope.as_str(),
                    key.hash,
                    key.name,
                    key.created_at.millis(),
                    key.expires_at.map(|t| t.millis()),
                    key.revoked_at.map(|t| t.millis())
                ],
            )
            .map_err(|e| match map_err(e) {
                Error::Internal(m) if m.contains("UNIQUE") => Error::Conflict("a key with this prefix exists".into()),
                other => other,
            })?;
            for e in events {
                log_event(tx, &key.tenant, key.created_at.millis(), e)?;
            }
            Ok(())
        })
    }

    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<continuum_core::keys::ApiKey>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at
                 FROM api_keys WHERE prefix = ?1",
            )?
            .query_row([prefix], key_row)
            .optional()
        })?;
        row.transpose()
    }

    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<continuum_core::keys::ApiKey>> {
        let rows = self.read(|c| {
            c.prepare_cached(
                "SELECT prefix, tenant, scope, hash, name, created_at, expires_at, revoked_at
                 FROM api_keys WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at DESC, prefix",
            )?
            .query_map([tenant.map(|t| t.as_str())], key_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().collect()
    }

    async fn revoke_key(&self, prefix: &str, at: Timestamp) -> Result<bool> {
        self.write(|tx| {
            let tenant: Option<String> = tx
                .query_row(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL
                     RETURNING tenant",
                    params![prefix, at.millis()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let Some(tenant) = tenant else {
                // Unknown, or revoked before (which is not a change).
                return tx
                    .query_row("SELECT 1 FROM api_keys WHERE prefix = ?1", [prefix], |_| {
                        Ok(())
                    })
                    .optional()
                    .map(|found| found.is_some())
                    .map_err(map_err);
            };
            let event = Event::KeyRevoked {
                prefix: prefix.to_string(),
            };
            log_event(tx, &TenantId::new(tenant)?, at.millis(), &event)?;
            Ok(true)
        })
    }
}
