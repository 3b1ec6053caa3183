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

mod accounts;
mod audit;
mod events;
mod graph;
mod keys;
mod records;
mod rows;
mod snapshot;
mod sql;
mod sync;
mod vectors;
mod webhooks;
mod write;

use events::*;
use rows::*;
use snapshot::*;
use sql::*;
use write::*;

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
                "the store is locked by another process; try again, or raise the busy timeout (--busy-timeout-ms, CONTINUUM_BUSY_TIMEOUT_MS)"
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
    // secure_delete: deleted content is overwritten with zeros, in pages and on the free list,
    // so forgotten memories do not linger in the file's unused space.
    // A checkpoint copies the WAL into the database and syncs it: with ~50 pages dirtied per
    // learned turn, the default interval (1000 pages) checkpointed every ~20 turns. 10000 pages
    // (about 40 MB of WAL) measured ~15% more learn throughput; the WAL is truncated back to
    // 64 MB after a checkpoint.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864; PRAGMA secure_delete = ON;",
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
