//! The libSQL/Turso backend: a local store that reads and writes on this machine and
//! replicates with a primary, a Turso sync server, through a journal of events.
//!
//! # Shape
//!
//! `--store libsql://HOST?replica=PATH` opens two files:
//! - `PATH`, the local store: the embedded SQLite store itself (same schema, same SQL, same
//!   derived index), so every read, recall and write is local and works offline;
//! - `PATH.libsql`, an embedded Turso replica of the primary holding one table that matters,
//!   the **journal**: every synced event (see [`continuum_core::sync::SYNCED_TYPES`]) any
//!   replica wrote, keyed by (origin node, position in the origin's log).
//!
//! A sync round ([`Replica::sync`]) copies the events this node wrote since the last round
//! into the journal, pushes the journal to the primary, pulls what other replicas pushed, and
//! applies their events to the local store with the merge rules of native sync
//! ([`continuum_core::sync::plan`]): applying is idempotent by (origin, position), Hebbian
//! increments from both sides add up, forgets win over edits. Journal rows are only ever
//! inserted, under keys no two nodes share, so the sync engine's last-push-wins row
//! replay never has a conflict to settle.
//!
//! Why not replicate the store's tables themselves: the Turso sync engine replays row changes
//! with last push winning, which would drop one side's link increments and collide the
//! event log's positions, and `tursodb` has no FTS5, which the store's text index uses.
//! ARCHITECTURE.md has the full reasoning.
//!
//! # Processes
//!
//! The local store may be shared by several processes, like any SQLite store. The journal is
//! synced by one process at a time (a lock file beside it); others use the local store and
//! leave syncing to the holder.

mod location;

pub use location::{LibsqlLocation, is_libsql_url};

use continuum_core::sync::{MAX_SYNC_EVENTS, PullPage, SyncEvent};
use continuum_core::{Error, Result, TenantId};
use continuum_engine::Engine;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The journal schema this build writes and reads.
pub const JOURNAL_SCHEMA: u32 = 1;

/// The event-log cursor that keeps this node's events from compaction until journaled.
pub const JOURNAL_CURSOR: &str = "libsql-journal";

/// Default interval between background sync rounds.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// The largest journal row accepted from the primary (one event's JSON), in bytes.
pub const MAX_JOURNAL_ROW_BYTES: usize = 8 * 1024 * 1024;

/// Journal rows read per page when applying other replicas' events.
const APPLY_PAGE: usize = MAX_SYNC_EVENTS;

/// The push cursor's tenant column (not a tenant id: those cannot contain `*`).
const PUSH_ROW: &str = "*";

const SCHEMA_SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS continuum_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS continuum_journal (origin TEXT NOT NULL, seq INTEGER NOT NULL, \
     tenant TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (origin, seq))",
    "CREATE INDEX IF NOT EXISTS continuum_journal_by_tenant \
     ON continuum_journal (tenant, origin, seq)",
    "CREATE TABLE IF NOT EXISTS continuum_cursors (node TEXT NOT NULL, tenant TEXT NOT NULL, \
     origin TEXT NOT NULL, through INTEGER NOT NULL, PRIMARY KEY (node, tenant, origin))",
];

/// How to open a replica.
#[derive(Clone, Default)]
pub struct ReplicaOptions {
    /// The primary's auth token (Turso Cloud, or a server that asks for one).
    pub auth_token: Option<String>,
}

impl std::fmt::Debug for ReplicaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaOptions")
            .field("auth_token", &self.auth_token.as_ref().map(|_| "****"))
            .finish()
    }
}

/// An open replica: the journal's Turso database, held by this process.
pub struct Replica {
    location: LibsqlLocation,
    db: turso::sync::Database,
    conn: tokio::sync::Mutex<turso::Connection>,
    token: Option<String>,
    state: Mutex<State>,
    _lock: std::fs::File,
}

#[derive(Default, Clone)]
struct State {
    last_sync: Option<i64>,
    last_error: Option<String>,
    /// Every journal row pulled so far is applied (set after a complete apply).
    applied_all: bool,
}

/// What one sync round did (`continuum sync --json` on a libSQL store).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoundReport {
    pub primary: String,
    pub replica: PathBuf,
    pub node: String,
    /// This node's events copied into the journal this round.
    pub journaled: u64,
    /// Whether everything journaled is on the primary after the round (a push reached it,
    /// or nothing waited).
    pub pushed: bool,
    /// Whether the pull brought anything.
    pub pulled_changes: bool,
    /// Other replicas' events read from the journal, and of those the ones that changed
    /// something here.
    pub received: u64,
    pub applied: u64,
    pub skipped: u64,
    pub duration_ms: u64,
    /// Where the time went: journaling, push, pull, applying.
    pub journal_ms: u64,
    pub push_ms: u64,
    pub pull_ms: u64,
    pub apply_ms: u64,
}

/// Where a replica stands (`doctor`, `stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaStatus {
    pub primary: String,
    pub replica: PathBuf,
    pub journal: PathBuf,
    pub node: String,
    /// The local event log's head, and how far of it this node's events are journaled.
    pub local_head: u64,
    pub journaled_through: u64,
    /// Changes committed to the journal that the primary has not acknowledged.
    pub unpushed_changes: i64,
    /// The primary's revision this replica last saw (its position on the primary).
    pub primary_revision: Option<String>,
    /// Events in the journal from other replicas, and how many of them are applied here.
    pub remote_events: u64,
    pub remote_applied: u64,
    pub last_pull_unix: Option<i64>,
    pub last_push_unix: Option<i64>,
    /// This process's last round (unix ms) and its error, if it failed.
    pub last_sync: Option<i64>,
    pub last_error: Option<String>,
    /// True when local writes wait to be pushed or remote events wait to be applied.
    pub behind: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Replica {
    /// Opens (bootstrapping from the primary the first time) the replica's journal and
    /// makes this process its syncer. A new replica needs the primary; an existing one opens
    /// offline. Errors: the primary unreachable for a new replica, not a sync server, a
    /// refused token, a journal written by a newer Continuum, or another process holding
    /// the replica (`Conflict`).
    pub async fn open(location: &LibsqlLocation, opts: &ReplicaOptions) -> Result<Replica> {
        let journal = location.journal();
        if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Unavailable(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(location.lock_file())
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open {}: {e}",
                    location.lock_file().display()
                ))
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Conflict(format!(
                    "the libSQL replica {} is synced by another process",
                    journal.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Unavailable(format!(
                    "cannot lock {}: {e}",
                    location.lock_file().display()
                )));
            }
        }
        let fresh = !journal.exists();
        let token = opts.auth_token.clone().filter(|t| !t.trim().is_empty());
        let path = journal.to_str().ok_or_else(|| {
            Error::InvalidInput(format!(
                "the replica path {} is not UTF-8",
                journal.display()
            ))
        })?;
        let mut b = turso::sync::Builder::new_remote(path)
            .with_remote_url(location.primary.clone())
            .with_client_name(concat!("continuum/", env!("CARGO_PKG_VERSION")))
            .bootstrap_if_empty(true);
        if let Some(t) = &token {
            b = b.with_auth_token(t.clone());
        }
        let db = b.build().await.map_err(|e| {
            let why = describe_error(&e.to_string(), token.as_deref());
            if fresh {
                // Leave nothing half-made behind: the next open bootstraps again.
                remove_journal_files(&journal);
            }
            let hint = if location.primary.starts_with("https://") && why.contains("(Connect)") {
                " (is it reachable, and does its TLS certificate chain to a trusted root? \
                 the system's roots, or the PEM file SSL_CERT_FILE names)"
            } else {
                ""
            };
            classify(
                &why,
                format!(
                    "cannot {} the libSQL replica {} from the primary {}: {why}{hint}",
                    if fresh { "bootstrap" } else { "open" },
                    journal.display(),
                    location.primary
                ),
            )
        })?;
        let conn = db
            .connect()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot open the journal: {e}")))?;
        let replica = Replica {
            location: location.clone(),
            db,
            conn: tokio::sync::Mutex::new(conn),
            token,
            state: Mutex::new(State::default()),
            _lock: lock,
        };
        replica.ensure_schema().await?;
        Ok(replica)
    }

    /// The primary and the replica's files.
    pub fn location(&self) -> &LibsqlLocation {
        &self.location
    }

    fn scrub(&self, msg: &str) -> String {
        describe_error(msg, self.token.as_deref())
    }

    /// Creates the journal's tables when the primary has none yet (the first replica of a
    /// primary does, once), and refuses a journal of a newer schema.
    async fn ensure_schema(&self) -> Result<()> {
        let conn = self.conn.lock().await;
        match schema_version(&conn).await? {
            Some(v) if v == JOURNAL_SCHEMA => return Ok(()),
            Some(v) if v > JOURNAL_SCHEMA => {
                return Err(Error::Conflict(format!(
                    "the primary's journal is at schema version {v}, newer than this Continuum \
                     knows ({JOURNAL_SCHEMA}): upgrade Continuum before opening this replica"
                )));
            }
            Some(v) => {
                return Err(Error::Conflict(format!(
                    "the primary's journal is at schema version {v}, which this Continuum \
                     cannot read"
                )));
            }
            None => {}
        }
        // Nobody has set the primary up yet, as far as this replica knows: make sure by
        // pulling first (a primary created by another replica meanwhile is simply used).
        if self.db.pull().await.is_ok()
            && let Some(v) = schema_version(&conn).await?
        {
            drop(conn);
            if v != JOURNAL_SCHEMA {
                return Box::pin(self.ensure_schema()).await;
            }
            return Ok(());
        }
        exec(&conn, "BEGIN").await?;
        let made: Result<()> = async {
            for sql in SCHEMA_SQL {
                exec(&conn, sql).await?;
            }
            conn.execute(
                "INSERT OR IGNORE INTO continuum_meta (key, value) VALUES ('schema', ?1)",
                (JOURNAL_SCHEMA.to_string(),),
            )
            .await
            .map_err(db_err)?;
            Ok(())
        }
        .await;
        if let Err(e) = made {
            let _ = exec(&conn, "ROLLBACK").await;
            return Err(e);
        }
        exec(&conn, "COMMIT").await?;
        // Push the schema now, so that a second replica finds it; offline, the first round
        // that reaches the primary does.
        if let Err(e) = self.db.push().await {
            tracing::warn!(error = %self.scrub(&e.to_string()), "the journal's schema waits to be pushed");
        }
        Ok(())
    }

    /// One round: journal this node's new events, push, pull, apply the others' events. The
    /// outcome is kept for [`Replica::status`]. Local writes are never at risk: they are
    /// committed in the local store before any of this, and a round cut short (offline
    /// primary, a crash) resumes where it stopped.
    pub async fn sync(&self, engine: &Engine) -> Result<RoundReport> {
        let started = Instant::now();
        let conn = self.conn.lock().await;
        let node = engine.node_id().await?;
        let mut report = RoundReport {
            primary: self.location.primary.clone(),
            replica: self.location.replica.clone(),
            node: node.clone(),
            ..Default::default()
        };
        let outcome = self.round(engine, &conn, &node, &mut report).await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        let mut st = self.state.lock().expect("replica state");
        st.last_sync = Some(now_ms());
        match outcome {
            Ok(()) => {
                st.last_error = None;
                Ok(report)
            }
            Err(e) => {
                st.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn round(
        &self,
        engine: &Engine,
        conn: &turso::Connection,
        node: &str,
        report: &mut RoundReport,
    ) -> Result<()> {
        let t = Instant::now();
        report.journaled = journal_local(engine, conn, node).await?;
        report.journal_ms = t.elapsed().as_millis() as u64;
        let t = Instant::now();
        // Nothing journaled now or waiting from before: skip the push's round trips (they
        // grow with the replica's size).
        let waiting = self.db.stats().await.map(|s| s.cdc_operations).unwrap_or(1);
        if report.journaled == 0 && waiting == 0 {
            report.pushed = true;
        } else {
            self.push_now(report).await?;
        }
        report.push_ms = t.elapsed().as_millis() as u64;
        let t = Instant::now();
        report.pulled_changes = self.db.pull().await.map_err(|e| {
            let why = self.scrub(&e.to_string());
            classify(
                &why,
                format!(
                    "cannot pull from the primary {}: {why}",
                    self.location.primary
                ),
            )
        })?;
        report.pull_ms = t.elapsed().as_millis() as u64;
        // Other replicas' rows arrive only by pull (or the bootstrap at open): with nothing
        // pulled since a complete apply, there is nothing to look for.
        let current = self.state.lock().expect("replica state").applied_all;
        if current && !report.pulled_changes {
            return Ok(());
        }
        let t = Instant::now();
        let (received, applied, skipped) = apply_others(engine, conn, node).await?;
        report.apply_ms = t.elapsed().as_millis() as u64;
        self.state.lock().expect("replica state").applied_all = true;
        report.received = received;
        report.applied = applied;
        report.skipped = skipped;
        if received > 0 {
            // The apply cursors moved: push them too, so that the primary (and a replica
            // bootstrapped from this one's state) knows what this node has applied.
            if let Err(e) = self.db.push().await {
                tracing::debug!(error = %self.scrub(&e.to_string()), "apply cursors wait to be pushed");
            }
        }
        Ok(())
    }

    async fn push_now(&self, report: &mut RoundReport) -> Result<()> {
        self.db.push().await.map_err(|e| {
            let why = self.scrub(&e.to_string());
            classify(
                &why,
                format!(
                    "cannot push to the primary {}: {why}; local writes are kept and wait to be pushed",
                    self.location.primary
                ),
            )
        })?;
        report.pushed = true;
        Ok(())
    }

    /// Where the replica stands. Reads only local state (no network).
    pub async fn status(&self, engine: &Engine) -> Result<ReplicaStatus> {
        let conn = self.conn.lock().await;
        let node = engine.node_id().await?;
        let stats = self
            .db
            .stats()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot read the replica's state: {e}")))?;
        let journaled_through = cursor(&conn, &node, PUSH_ROW, &node).await?;
        let local_head = engine.event_head().await?;
        let remote_events = query_u64(
            &conn,
            "SELECT count(*) FROM continuum_journal WHERE origin <> ?1",
            &node,
        )
        .await?;
        let remote_applied = query_u64(
            &conn,
            "SELECT count(*) FROM continuum_journal j JOIN continuum_cursors c \
             ON c.node = ?1 AND c.tenant = j.tenant AND c.origin = j.origin \
             WHERE j.origin <> ?1 AND j.seq <= c.through",
            &node,
        )
        .await?;
        let st = self.state.lock().expect("replica state").clone();
        let waiting_local = if local_head > journaled_through {
            engine_has_synced_after(engine, journaled_through).await?
        } else {
            false
        };
        Ok(ReplicaStatus {
            primary: self.location.primary.clone(),
            replica: self.location.replica.clone(),
            journal: self.location.journal(),
            node,
            local_head,
            journaled_through,
            unpushed_changes: stats.cdc_operations,
            primary_revision: stats.revision.clone(),
            remote_events,
            remote_applied,
            last_pull_unix: stats.last_pull_unix_time,
            last_push_unix: stats.last_push_unix_time,
            last_sync: st.last_sync,
            last_error: st.last_error,
            behind: waiting_local || stats.cdc_operations > 0 || remote_applied < remote_events,
        })
    }
}

/// Whether any tenant has an event of a synced type after `after` written here.
async fn engine_has_synced_after(engine: &Engine, after: u64) -> Result<bool> {
    let recs = engine.events_all_tenants(after, MAX_SYNC_EVENTS).await?;
    let tenants: BTreeSet<&TenantId> = recs.iter().map(|r| &r.tenant).collect();
    for t in tenants {
        if !engine.sync_outgoing(t, after, 1).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copies this node's events after the journal cursor into the journal: per tenant with
/// writes since the cursor, its own events up to the log's head (read first), a page per
/// transaction, rows inserted only if absent; the cursor moves to that head once all are in.
/// A round cut short redoes the pages it had copied, harmlessly. Returns how many it copied.
async fn journal_local(engine: &Engine, conn: &turso::Connection, node: &str) -> Result<u64> {
    let through = cursor(conn, node, PUSH_ROW, node).await?;
    // Hold the log from compaction from the first round on, before anything is journaled.
    if !engine
        .event_cursors()
        .await?
        .iter()
        .any(|c| c.name == JOURNAL_CURSOR)
        && let Err(e) = engine.set_event_cursor(JOURNAL_CURSOR, through).await
    {
        tracing::warn!(error = %e, "cannot set the journal's event cursor");
    }
    let head = engine.event_head().await?;
    if head <= through {
        return Ok(0);
    }
    // The tenants written since the cursor (a cheap read of the log by position).
    let mut tenants: BTreeSet<TenantId> = BTreeSet::new();
    let mut pos = through;
    while pos < head {
        let recs = match engine.events_all_tenants(pos, MAX_SYNC_EVENTS).await {
            Err(Error::Gone(_)) => {
                return Err(Error::Gone(format!(
                    "this store's event log was compacted past position {through} before the \
                     replica journaled it, so those changes cannot reach the primary; move the \
                     memories into a new replica with `continuum export` and `continuum import`"
                )));
            }
            other => other?,
        };
        let Some(last) = recs.last().map(|r| r.seq) else {
            break;
        };
        tenants.extend(recs.into_iter().filter(|r| r.seq <= head).map(|r| r.tenant));
        pos = last;
    }
    let mut copied = 0u64;
    for t in &tenants {
        let mut after = through;
        loop {
            // One call scans forward to the next page of this node's own events (events
            // applied from other replicas are skipped by the store, not here).
            let page: Vec<SyncEvent> = engine
                .sync_outgoing(t, after, MAX_SYNC_EVENTS)
                .await?
                .into_iter()
                .filter(|e| e.seq <= head)
                .collect();
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            insert_rows(conn, &page).await?;
            copied += page.len() as u64;
            after = last;
        }
    }
    exec(conn, "BEGIN").await?;
    if let Err(e) = set_cursor(conn, node, PUSH_ROW, node, head).await {
        let _ = exec(conn, "ROLLBACK").await;
        return Err(e);
    }
    exec(conn, "COMMIT").await?;
    // Let the log be compacted up to here, and no further.
    if let Err(e) = engine.set_event_cursor(JOURNAL_CURSOR, head).await {
        tracing::warn!(error = %e, "cannot move the journal's event cursor");
    }
    Ok(copied)
}

/// Inserts journal rows in one transaction (a row already there is left as it is).
async fn insert_rows(conn: &turso::Connection, rows: &[SyncEvent]) -> Result<()> {
    exec(conn, "BEGIN").await?;
    let wrote: Result<()> = async {
        // Prepared once for the page (preparing parses and plans the statement).
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO continuum_journal (origin, seq, tenant, at, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .await
            .map_err(db_err)?;
        for e in rows {
            let body = serde_json::to_string(e).map_err(|e| Error::Internal(e.to_string()))?;
            insert
                .execute((
                    e.origin.clone(),
                    e.seq as i64,
                    e.tenant.as_str().to_string(),
                    e.at.0,
                    body,
                ))
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = wrote {
        let _ = exec(conn, "ROLLBACK").await;
        return Err(e);
    }
    exec(conn, "COMMIT").await
}

/// Applies every other replica's journaled events this node has not applied, per tenant and
/// origin in the origin's order. Returns (read, applied, skipped).
async fn apply_others(
    engine: &Engine,
    conn: &turso::Connection,
    node: &str,
) -> Result<(u64, u64, u64)> {
    let mut heads: Vec<(String, String, u64)> = Vec::new();
    {
        let mut rows = conn
            .query(
                "SELECT tenant, origin, max(seq) FROM continuum_journal WHERE origin <> ?1 \
                 GROUP BY tenant, origin",
                (node.to_string(),),
            )
            .await
            .map_err(db_err)?;
        while let Some(r) = rows.next().await.map_err(db_err)? {
            heads.push((text(&r, 0)?, text(&r, 1)?, int(&r, 2)?));
        }
    }
    let mut done: BTreeMap<(String, String), u64> = BTreeMap::new();
    {
        let mut rows = conn
            .query(
                "SELECT tenant, origin, through FROM continuum_cursors WHERE node = ?1",
                (node.to_string(),),
            )
            .await
            .map_err(db_err)?;
        while let Some(r) = rows.next().await.map_err(db_err)? {
            done.insert((text(&r, 0)?, text(&r, 1)?), int(&r, 2)?);
        }
    }
    let (mut read, mut applied, mut skipped) = (0u64, 0u64, 0u64);
    for (tenant, origin, head) in heads {
        let mut after = done
            .get(&(tenant.clone(), origin.clone()))
            .copied()
            .unwrap_or(0);
        if after >= head {
            continue;
        }
        let tenant_id = TenantId::new(tenant.clone()).map_err(|e| {
            Error::InvalidInput(format!("the journal names a tenant that is not valid: {e}"))
        })?;
        while after < head {
            let mut events = Vec::new();
            {
                let mut rows = conn
                    .query(
                        "SELECT seq, body FROM continuum_journal WHERE tenant = ?1 AND origin = ?2 \
                         AND seq > ?3 ORDER BY seq LIMIT ?4",
                        (
                            tenant.clone(),
                            origin.clone(),
                            after as i64,
                            APPLY_PAGE as i64,
                        ),
                    )
                    .await
                    .map_err(db_err)?;
                while let Some(r) = rows.next().await.map_err(db_err)? {
                    let seq = int(&r, 0)?;
                    let body = text(&r, 1)?;
                    if body.len() > MAX_JOURNAL_ROW_BYTES {
                        return Err(Error::InvalidInput(format!(
                            "journal row ({origin}, {seq}) is larger than {MAX_JOURNAL_ROW_BYTES} bytes"
                        )));
                    }
                    let e: SyncEvent = serde_json::from_str(&body).map_err(|err| {
                        Error::InvalidInput(format!(
                            "journal row ({origin}, {seq}) is not a Continuum event: {err}"
                        ))
                    })?;
                    if e.origin != origin || e.seq != seq || e.tenant.as_str() != tenant {
                        return Err(Error::InvalidInput(format!(
                            "journal row ({origin}, {seq}) does not match the event it holds"
                        )));
                    }
                    events.push(e);
                }
            }
            let Some(last) = events.last().map(|e| e.seq) else {
                break;
            };
            let page = PullPage {
                tenant: tenant_id.clone(),
                node: origin.clone(),
                next: last,
                head,
                events,
            };
            let n = page.events.len() as u64;
            let r = engine.sync_apply(&tenant_id, &page).await?;
            read += n;
            applied += r.applied;
            skipped += r.skipped;
            set_cursor(conn, node, &tenant, &origin, last).await?;
            after = last;
        }
    }
    Ok((read, applied, skipped))
}

async fn schema_version(conn: &turso::Connection) -> Result<Option<u32>> {
    let mut rows = match conn
        .query("SELECT value FROM continuum_meta WHERE key = 'schema'", ())
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.to_string().contains("no such table") => return Ok(None),
        Err(e) => return Err(db_err(e)),
    };
    match rows.next().await.map_err(db_err)? {
        None => Ok(None),
        Some(r) => {
            let v = text(&r, 0)?;
            v.parse::<u32>().map(Some).map_err(|_| {
                Error::InvalidInput(format!(
                    "the journal's schema version '{v}' is not a number"
                ))
            })
        }
    }
}

async fn cursor(conn: &turso::Connection, node: &str, tenant: &str, origin: &str) -> Result<u64> {
    let mut rows = conn
        .query(
            "SELECT through FROM continuum_cursors WHERE node = ?1 AND tenant = ?2 AND origin = ?3",
            (node.to_string(), tenant.to_string(), origin.to_string()),
        )
        .await
        .map_err(db_err)?;
    match rows.next().await.map_err(db_err)? {
        Some(r) => int(&r, 0),
        None => Ok(0),
    }
}

async fn set_cursor(
    conn: &turso::Connection,
    node: &str,
    tenant: &str,
    origin: &str,
    through: u64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO continuum_cursors (node, tenant, origin, through) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (node, tenant, origin) DO UPDATE SET through = excluded.through",
        (
            node.to_string(),
            tenant.to_string(),
            origin.to_string(),
            through as i64,
        ),
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn query_u64(conn: &turso::Connection, sql: &str, arg: &str) -> Result<u64> {
    let mut rows = conn.query(sql, (arg.to_string(),)).await.map_err(db_err)?;
    match rows.next().await.map_err(db_err)? {
        Some(r) => int(&r, 0),
        None => Ok(0),
    }
}

async fn exec(conn: &turso::Connection, sql: &str) -> Result<()> {
    conn.execute(sql, ()).await.map_err(db_err)?;
    Ok(())
}

fn text(r: &turso::Row, i: usize) -> Result<String> {
    match r.get_value(i).map_err(db_err)? {
        turso::Value::Text(s) => Ok(s),
        other => Err(Error::Internal(format!(
            "the journal holds {other:?} where text was expected"
        ))),
    }
}

fn int(r: &turso::Row, i: usize) -> Result<u64> {
    match r.get_value(i).map_err(db_err)? {
        turso::Value::Integer(n) if n >= 0 => Ok(n as u64),
        turso::Value::Null => Ok(0),
        other => Err(Error::Internal(format!(
            "the journal holds {other:?} where a position was expected"
        ))),
    }
}

fn db_err(e: turso::Error) -> Error {
    Error::Internal(format!("libSQL replica: {e}"))
}

/// A sync-engine error as a user reads it: the HTTP status kept, a server's HTML body cut,
/// the token (should an error ever echo it) masked.
fn describe_error(msg: &str, token: Option<&str>) -> String {
    let mut s = match msg.find(", body=") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    };
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        s = s.replace(t, "****");
    }
    s.chars().take(400).collect()
}

/// The error kind for a sync-engine failure: a refused token is `Unauthorized`, a server that
/// does not speak the sync protocol is `InvalidInput`, anything else `Unavailable`.
fn classify(why: &str, text: String) -> Error {
    if why.contains("status=401") || why.contains("status=403") {
        Error::Unauthorized(format!(
            "{text} (the primary refused the auth token: check CONTINUUM_LIBSQL_AUTH_TOKEN)"
        ))
    } else if why.contains("status=404")
        || why.contains("status=405")
        || why.contains("status=501")
        || why.contains("status=400")
    {
        Error::InvalidInput(format!("{text} (is it a Turso sync server?)"))
    } else {
        Error::Unavailable(text)
    }
}

fn remove_journal_files(journal: &std::path::Path) {
    let Some(dir) = journal.parent() else { return };
    let Some(name) = journal.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let f = e.file_name();
            let Some(f) = f.to_str() else { continue };
            if f == name || (f.starts_with(name) && f != format!("{name}.lock")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The supervised job of `continuum serve` and `continuum mcp`: a round every `interval`
/// and soon after local writes (debounced), backing off while the primary is unreachable.
pub async fn run_background(
    engine: Engine,
    replica: std::sync::Arc<Replica>,
    interval: Duration,
    stop: continuum_ops::CancellationToken,
) -> std::result::Result<(), String> {
    let mut written = engine.written();
    let mut pause = interval;
    let max_pause = Duration::from_secs(120).max(interval);
    loop {
        match replica.sync(&engine).await {
            Ok(r) => {
                if r.journaled > 0 || r.applied > 0 {
                    tracing::info!(
                        primary = %r.primary,
                        journaled = r.journaled,
                        received = r.received,
                        applied = r.applied,
                        "libSQL sync round"
                    );
                }
                pause = interval;
            }
            Err(e) => {
                tracing::warn!(error = %e, "libSQL sync failed; the replica is behind, retrying");
                pause = (pause * 2).min(max_pause);
            }
        }
        // Our own round wrote (applied events): do not count that as a local write.
        written.borrow_and_update();
        let debounce = Duration::from_millis(200);
        if !continuum_ops::wait_for_next_round(pause, debounce, &mut written, &stop).await {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_status_and_lose_the_body_and_token() {
        let m = "remote server returned an error: status=501, body=<html>secret-tok</html>";
        let d = describe_error(m, Some("secret-tok"));
        assert_eq!(d, "remote server returned an error: status=501");
        assert!(matches!(classify(&d, d.clone()), Error::InvalidInput(_)));
        let d = describe_error("status=401 for token abc123", Some("abc123"));
        assert!(!d.contains("abc123"));
        assert!(matches!(classify(&d, d.clone()), Error::Unauthorized(_)));
        let d = describe_error("client error (Connect)", None);
        assert!(matches!(classify(&d, d.clone()), Error::Unavailable(_)));
    }
}
