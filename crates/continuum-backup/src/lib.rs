//! Backups of a Continuum store: a consistent snapshot, compressed (zstd), encrypted (age),
//! with a manifest, kept in a directory, an S3-compatible bucket or any rclone remote; list,
//! verify (download, decrypt, check every hash, open the snapshot, run the store's integrity
//! check, compare counts), restore into an empty store, prune by retention rules, and the
//! scheduled backup job.
//!
//! Two kinds of snapshot:
//! - **sqlite-file**: the whole SQLite store copied with `VACUUM INTO` while writes go on:
//!   every tenant, key, audit entry and setting. Restored by putting the file in place (or, into
//!   PostgreSQL, by importing each tenant's export of it).
//! - **logical**: each tenant's export (a consistent snapshot per tenant, PostgreSQL's
//!   `REPEATABLE READ`), one after another. Restored by importing, into either backend. API
//!   keys are not part of it: make new ones after a restore.
//!
//! A backup `ID/` holds `data.age` (or `data.zst` when unencrypted) and `manifest.json`. The
//! data goes first and its size is checked at the destination; the manifest goes last, so a
//! folder without one is an unfinished upload that `list` reports as incomplete and `prune`
//! removes.

pub mod crypt;
pub mod dest;
pub mod job;
pub mod manifest;
pub mod retention;

use continuum_core::keys::Caller;
use continuum_core::{Error, Result, TenantId, Timestamp};
use continuum_engine::{Engine, ExportRecord};
pub use crypt::{Encryption, Keys};
pub use dest::{DestOptions, Destination};
use manifest::{
    DATA_FORMAT, DataHeader, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION,
    MAX_DATA_HEADER_BYTES, MAX_MANIFEST_BYTES, Manifest, SnapshotKind, TenantCount,
};
pub use retention::Retention;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What the store being backed up is, for the manifest.
#[derive(Debug, Clone)]
pub struct Source {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub schema_version: u32,
}

/// Options of `backup create`.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Only this tenant (a logical backup); all tenants when unset.
    pub tenant: Option<TenantId>,
    pub encryption: Encryption,
    /// Where temporary files go (the snapshot and the sealed object, each about the size of
    /// the store); the system's temporary directory when unset.
    pub work_dir: Option<PathBuf>,
    /// Only the events since the newest backup at the destination (which must be of this
    /// store), chained to it.
    pub incremental: bool,
}

/// Told how far a long step has come: a phase name, bytes or records done, total if known.
pub trait Progress: Send + Sync {
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _done: u64) {}
}

/// A progress report nobody reads.
pub struct Quiet;
impl Progress for Quiet {}

/// Runs blocking file work (hashing, compressing, encrypting): on a multi-threaded runtime
/// its worker hands its other tasks to the rest first; on the CLI's single thread it simply
/// runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn temp_dir(work_dir: Option<&Path>) -> Result<tempfile::TempDir> {
    match work_dir {
        Some(d) => tempfile::Builder::new()
            .prefix(".continuum-backup-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("continuum-backup-")
            .tempdir(),
    }
    .map_err(|e| Error::Unavailable(format!("cannot make a temporary directory: {e}")))
}

/// Takes a snapshot of the store behind `engine` and uploads it to `dest`; returns the
/// manifest written.
pub async fn create(
    engine: &Engine,
    source: &Source,
    dest: &Destination,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let m = if opts.incremental {
        create_incremental(engine, source, dest, opts, progress).await?
    } else {
        create_full(engine, source, dest, opts, progress).await?
    };
    engine
        .record_backup(
            &Caller::local(TenantId::default_tenant()),
            &m.id,
            m.kind.as_str(),
            m.tenants.len(),
            m.position,
            m.parent.as_deref(),
        )
        .await?;
    Ok(m)
}

/// A full backup: the whole SQLite file, or every tenant's export.
async fn create_full(
    engine: &Engine,
    source: &Source,
    dest: &Destination,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let now = continuum_core::Clock::now(&continuum_core::SystemClock);
    let id = manifest::new_id(now);
    let work = temp_dir(opts.work_dir.as_deref())?;
    let sealed = work.path().join("sealed");
    let operator = Caller::local(TenantId::default_tenant());
    let node = engine.node_id().await?;

    // The whole SQLite file when the whole store is asked for and the backend has one.
    let file = work.path().join("store.db");
    progress.phase("snapshot", None);
    let copied = match &opts.tenant {
        // On a thread of its own: the copy is one long read, and a server's workers go on.
        None => {
            let (e, f, handle) = (
                engine.clone(),
                file.clone(),
                tokio::runtime::Handle::current(),
            );
            tokio::task::spawn_blocking(move || handle.block_on(e.copy_store_to(&operator, &f)))
                .await
                .map_err(|e| Error::Internal(format!("the store copy stopped: {e}")))??
        }
        Some(_) => None,
    };
    let (kind, tenants, position, plain, stored) = match copied {
        Some(position) => {
            let tenants = {
                let copy = open_sqlite_copy(&file).await?;
                let t = tenant_counts(&copy).await?;
                drop(copy);
                t
            };
            let len = std::fs::metadata(&file)
                .map_err(|e| crypt::io_err("reading", &file, e))?
                .len();
            progress.phase("compressing and encrypting", Some(len));
            let (plain, stored) = {
                let (file, sealed, enc, id) = (
                    file.clone(),
                    sealed.clone(),
                    opts.encryption.clone(),
                    id.clone(),
                );
                blocking(|| -> Result<_> {
                    let mut s = crypt::Sealer::create(&sealed, &enc)?;
                    write_data_header(&mut s, &id, SnapshotKind::SqliteFile)?;
                    let f = std::fs::File::open(&file)
                        .map_err(|e| crypt::io_err("reading", &file, e))?;
                    let mut r = BufReader::with_capacity(1 << 20, f);
                    let mut done = 0u64;
                    loop {
                        let buf = r
                            .fill_buf()
                            .map_err(|e| crypt::io_err("reading", &file, e))?;
                        if buf.is_empty() {
                            break;
                        }
                        let n = buf.len();
                        s.write_all(buf)
                            .map_err(|e| crypt::io_err("writing", &sealed, e))?;
                        r.consume(n);
                        done += n as u64;
                        progress.advance(done);
                    }
                    s.finish()
                })?
            };
            let _ = std::fs::remove_file(&file);
            (SnapshotKind::SqliteFile, tenants, position, plain, stored)
        }
        None => {
            let tenants: Vec<TenantId> = match &opts.tenant {
                Some(t) => vec![t.clone()],
                None => engine
                    .tenants()
                    .await?
                    .into_iter()
                    .map(|t| t.tenant)
                    .collect(),
            };
            progress.phase("exporting", None);
            let mut s = crypt::Sealer::create(&sealed, &opts.encryption)?;
            write_data_header(&mut s, &id, SnapshotKind::Logical)?;
            let mut counts = Vec::new();
            let mut position = 0u64;
            let mut total = 0u64;
            for t in tenants {
                let mut w = BufWriter::with_capacity(1 << 20, &mut s);
                let mut at = 0u64;
                let mut sink = |r: &ExportRecord| -> Result<()> {
                    if let ExportRecord::Header(h) = r {
                        at = h.position.unwrap_or(0);
                        position = position.max(at);
                    }
                    serde_json::to_writer(&mut w, r)
                        .map_err(|e| Error::Internal(format!("writing the backup: {e}")))?;
                    w.write_all(b"\n")
                        .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))
                };
                let base = total;
                let n = engine
                    .export(&t, &mut sink, &mut |done| progress.advance(base + done))
                    .await?;
                w.flush()
                    .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))?;
                drop(w);
                total += n;
                counts.push(TenantCount {
                    tenant: t,
                    memories: n,
                    events: 0,
                    position: Some(at),
                });
            }
            let (plain, stored) = blocking(|| s.finish())?;
            (SnapshotKind::Logical, counts, position, plain, stored)
        }
    };

    let object = manifest::data_object_name(opts.encryption.encrypts());
    let m = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        id: id.clone(),
        created_at: now,
        continuum_version: env!("CARGO_PKG_VERSION").into(),
        backend: source.backend.clone(),
        schema_version: source.schema_version,
        kind,
        tenants,
        position,
        compression: "zstd".into(),
        encryption: opts.encryption.info(),
        object: object.into(),
        plain,
        stored,
        parent: None,
        parent_sha256: None,
        from_position: None,
        node: Some(node),
    };
    upload(dest, &work, &sealed, m, progress).await
}

/// Uploads the sealed data, checks its size at the destination, then writes the manifest.
async fn upload(
    dest: &Destination,
    work: &tempfile::TempDir,
    sealed: &Path,
    m: Manifest,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let id = &m.id;
    progress.phase("uploading", Some(m.stored.bytes));
    let data_key = format!("{id}/{}", m.object);
    dest.put_file(&data_key, sealed).await?;
    // The manifest only once the data is there in full.
    match dest.size(&data_key).await? {
        Some(n) if n == m.stored.bytes => {}
        other => {
            return Err(Error::Unavailable(format!(
                "{data_key} at {} holds {} bytes after the upload, not {}; the backup is left incomplete",
                dest.describe(),
                other.map(|n| n.to_string()).unwrap_or_else(|| "no".into()),
                m.stored.bytes
            )));
        }
    }
    let mpath = work.path().join(MANIFEST_FILE);
    let body = serde_json::to_vec_pretty(&m).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&mpath, &body).map_err(|e| crypt::io_err("writing", &mpath, e))?;
    dest.put_file(&format!("{id}/{MANIFEST_FILE}"), &mpath)
        .await?;
    progress.phase("done", None);
    Ok(m)
}

/// One line of an incremental backup's data: a page of a tenant's synced events.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct SegmentPage {
    tenant: TenantId,
    /// The node that served them (the backed-up store).
    node: String,
    events: Vec<continuum_core::sync::SyncEvent>,
}

/// The longest chain of incremental backups a restore walks.
pub const MAX_CHAIN: usize = 1000;

async fn create_incremental(
    engine: &Engine,
    source: &Source,
    dest: &Destination,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<Manifest> {
    if opts.tenant.is_some() {
        return Err(Error::InvalidInput(
            "an incremental backup covers every tenant; leave out --tenant".into(),
        ));
    }
    let operator = Caller::local(TenantId::default_tenant());
    let node = engine.node_id().await?;
    let parent = list(dest)
        .await?
        .into_iter()
        .filter_map(|l| l.manifest)
        .max_by_key(|m| (m.created_at, m.id.clone()))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "no complete backup at {} to build on; make a full backup first (without --incremental)",
                dest.describe()
            ))
        })?;
    if parent.node.as_deref() != Some(node.as_str()) || parent.backend != source.backend {
        return Err(Error::Conflict(format!(
            "the newest backup at {} ({}) is not of this store; make a full backup first",
            dest.describe(),
            parent.id
        )));
    }
    let head = engine.event_head().await?;
    if head < parent.position {
        return Err(Error::Conflict(format!(
            "this store's event log ends at {head}, before backup {}'s position {}: it is not the store that backup was made of",
            parent.id, parent.position
        )));
    }
    let now = continuum_core::Clock::now(&continuum_core::SystemClock);
    let id = manifest::new_id(now);
    let work = temp_dir(opts.work_dir.as_deref())?;
    let sealed = work.path().join("sealed");

    // Where each tenant's events start: a logical parent read every tenant at a position of
    // its own; a tenant it does not hold starts at the earliest of them (it had nothing then).
    let start_of: BTreeMap<TenantId, u64> = parent
        .tenants
        .iter()
        .map(|t| (t.tenant.clone(), t.position.unwrap_or(parent.position)))
        .collect();
    let earliest = start_of.values().copied().min().unwrap_or(parent.position);
    // The tenants with events since then (erased ones included: their forgets count).
    progress.phase("reading events", Some(head - earliest));
    let mut tenants = std::collections::BTreeSet::new();
    let mut since = earliest;
    while since < head {
        let page = engine.events_all_tenants(since, 1000).await?;
        let Some(last) = page.last() else { break };
        since = last.seq;
        for e in page.iter().filter(|e| e.seq <= head) {
            tenants.insert(e.tenant.clone());
        }
        progress.advance(since.saturating_sub(earliest).min(head - earliest));
    }
    let mut s = crypt::Sealer::create(&sealed, &opts.encryption)?;
    write_data_header(&mut s, &id, SnapshotKind::Incremental)?;
    let mut counts = Vec::new();
    for t in tenants {
        let mut after = start_of.get(&t).copied().unwrap_or(earliest);
        let mut n = 0u64;
        loop {
            let mut events = engine.synced_events(&operator, &t, after, 1000).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            let done = events.iter().any(|e| e.seq > head);
            events.retain(|e| e.seq <= head);
            if !events.is_empty() {
                n += events.len() as u64;
                let page = SegmentPage {
                    tenant: t.clone(),
                    node: node.clone(),
                    events,
                };
                let mut line =
                    serde_json::to_vec(&page).map_err(|e| Error::Internal(e.to_string()))?;
                line.push(b'\n');
                s.write_all(&line)
                    .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))?;
            }
            if done {
                break;
            }
        }
        if n > 0 {
            counts.push(TenantCount {
                tenant: t,
                memories: 0,
                events: n,
                position: None,
            });
        }
    }
    let (plain, stored) = blocking(|| s.finish())?;
    let object = manifest::data_object_name(opts.encryption.encrypts());
    let m = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        id,
        created_at: now,
        continuum_version: env!("CARGO_PKG_VERSION").into(),
        backend: source.backend.clone(),
        schema_version: source.schema_version,
        kind: SnapshotKind::Incremental,
        tenants: counts,
        position: head,
        compression: "zstd".into(),
        encryption: opts.encryption.info(),
        object: object.into(),
        plain,
        stored,
        parent: Some(parent.id.clone()),
        parent_sha256: Some(parent.stored.sha256.clone()),
        from_position: Some(parent.position),
        node: Some(node),
    };
    upload(dest, &work, &sealed, m, progress).await
}

fn write_data_header(w: &mut impl Write, id: &str, kind: SnapshotKind) -> Result<()> {
    let h = DataHeader {
        format: DATA_FORMAT.into(),
        version: MANIFEST_VERSION,
        id: id.into(),
        kind,
    };
    let mut line = serde_json::to_vec(&h).map_err(|e| Error::Internal(e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line)
        .map_err(|e| Error::Unavailable(format!("writing the backup: {e}")))
}

/// Opens a store file copied for a backup (or restored from one), applying the migrations a
/// newer release needs.
async fn open_sqlite_copy(path: &Path) -> Result<Engine> {
    let now = continuum_core::Clock::now(&continuum_core::SystemClock);
    let store = continuum_store_sqlite::SqliteStore::open(
        path,
        &continuum_store_sqlite::SqliteOptions {
            readers: 1,
            cache_kib: 8 * 1024,
            ..Default::default()
        },
        now,
    )?;
    Engine::new(std::sync::Arc::new(store), Default::default())
}

async fn tenant_counts(engine: &Engine) -> Result<Vec<TenantCount>> {
    Ok(engine
        .tenants()
        .await?
        .into_iter()
        .map(|t| TenantCount {
            tenant: t.tenant,
            memories: t.memories,
            events: 0,
            position: None,
        })
        .collect())
}

/// A backup found at a destination.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    /// Whether the manifest is there (an upload that did not finish has none).
    pub complete: bool,
    /// The manifest, for a complete backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// Why the manifest could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Bytes of every object of the backup at the destination.
    pub stored_bytes: u64,
}

/// The backups at `dest`, oldest first. Objects that are not in a backup's folder are ignored.
pub async fn list(dest: &Destination) -> Result<Vec<Listed>> {
    let mut by_id: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    for o in dest.list().await? {
        let Some((id, name)) = o.key.split_once('/') else {
            continue;
        };
        if manifest::check_id(id).is_err() || name.contains('/') {
            continue;
        }
        let e = by_id.entry(id.to_string()).or_default();
        e.1 += o.bytes;
        if name == MANIFEST_FILE {
            e.0 = true;
        }
    }
    let mut out = Vec::new();
    for (id, (has_manifest, bytes)) in by_id {
        let (manifest, problem) = if has_manifest {
            match read_manifest(dest, &id).await {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        out.push(Listed {
            complete: manifest.is_some(),
            id,
            manifest,
            problem,
            stored_bytes: bytes,
        });
    }
    // Oldest first by the manifest's time (to the millisecond; ids only say the second).
    out.sort_by_key(|l| {
        let at = l
            .manifest
            .as_ref()
            .map(|m| m.created_at)
            .or_else(|| manifest::id_time(&l.id))
            .unwrap_or(Timestamp(0));
        (at, l.id.clone())
    });
    Ok(out)
}

/// Reads and checks a backup's manifest.
pub async fn read_manifest(dest: &Destination, id: &str) -> Result<Manifest> {
    manifest::check_id(id)?;
    let key = format!("{id}/{MANIFEST_FILE}");
    let bytes = match dest.get_small(&key, MAX_MANIFEST_BYTES).await {
        Err(Error::NotFound(_)) => {
            return Err(Error::NotFound(format!(
                "no complete backup {id} at {} (`backup list` shows what is there)",
                dest.describe()
            )));
        }
        other => other?,
    };
    Manifest::parse(&bytes, id)
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub id: String,
    pub kind: SnapshotKind,
    pub stored_bytes: u64,
    pub plain_bytes: u64,
    pub tenants: Vec<TenantCount>,
    pub position: u64,
    /// The backups checked: the full one, then each incremental one up to `id`.
    pub chain: Vec<String>,
}

/// Where a restore stops: at an event position, or at a time (events after it are left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Position(u64),
    Time(Timestamp),
}

impl Until {
    fn allows(&self, e: &continuum_core::sync::SyncEvent) -> bool {
        match self {
            Until::Position(p) => e.seq <= *p,
            Until::Time(t) => e.at <= *t,
        }
    }

    /// Parses a position (digits) or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<Until> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Until::Position)
                .map_err(|_| Error::InvalidInput(format!("--until {s}: not a position")));
        }
        Timestamp::parse(s).map(Until::Time).map_err(|_| {
            Error::InvalidInput(format!(
                "--until '{s}': expected an event position (digits) or a time such as 2026-12-06T14:00:00Z"
            ))
        })
    }
}

/// A backup downloaded, checked and opened: a store engine over its snapshot (with the
/// incremental backups up to it replayed), in a temporary directory that lives as long as
/// this.
pub struct Opened {
    pub manifest: Manifest,
    pub engine: Engine,
    /// The snapshot's SQLite file (for a sqlite-file backup, the store itself).
    pub file: PathBuf,
    /// The kind of the full backup the chain starts from.
    pub root: SnapshotKind,
    /// The backups opened, full first.
    pub chain: Vec<String>,
    /// The event position the opened store reflects.
    pub position: u64,
    /// Whether the scratch store already took a new node id (it does before replaying).
    renewed: bool,
    _work: tempfile::TempDir,
}

/// The manifests from `m` back to the full backup it builds on, full first. A parent that is
/// missing, was replaced (its stored hash differs from what its child recorded) or does not end
/// where its child starts breaks the chain, and is named.
async fn chain_of(dest: &Destination, m: Manifest) -> Result<Vec<Manifest>> {
    let mut chain = vec![m];
    loop {
        let child = chain.last().expect("never empty");
        if child.kind != SnapshotKind::Incremental {
            break;
        }
        if chain.len() > MAX_CHAIN {
            return Err(Error::Conflict(format!(
                "backup {} sits on a chain of more than {MAX_CHAIN} incremental backups",
                chain[0].id
            )));
        }
        let (Some(pid), Some(psha), Some(from)) =
            (&child.parent, &child.parent_sha256, child.from_position)
        else {
            return Err(Error::Conflict(format!(
                "incremental backup {} names no parent",
                child.id
            )));
        };
        let parent = match read_manifest(dest, pid).await {
            Ok(p) => p,
            Err(Error::NotFound(_)) => {
                return Err(Error::Conflict(format!(
                    "backup {} builds on {pid}, which is not at {} (deleted or never finished): the chain is broken",
                    child.id,
                    dest.describe()
                )));
            }
            Err(e) => return Err(e),
        };
        if &parent.stored.sha256 != psha || parent.position != from {
            return Err(Error::Conflict(format!(
                "backup {} builds on {pid}, but the backup there now is another one (its hash or position differs): the chain is broken",
                child.id
            )));
        }
        chain.push(parent);
    }
    chain.reverse();
    Ok(chain)
}

/// Downloads one backup's data object into `work`, checks the stored bytes against the
/// manifest, decrypts and decompresses it into `out`, and checks the plain bytes and the data's
/// own header.
async fn fetch(
    dest: &Destination,
    m: &Manifest,
    keys: &Keys,
    work: &Path,
    out: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let id = m.id.as_str();
    let sealed = work.join(format!("{id}.sealed"));
    progress.phase("downloading", Some(m.stored.bytes));
    let got = dest
        .get_file(&format!("{id}/{}", m.object), &sealed, m.stored.bytes)
        .await?;
    if got != m.stored.bytes {
        return Err(Error::Conflict(format!(
            "backup {id} is damaged: its data object has {got} bytes, the manifest says {}",
            m.stored.bytes
        )));
    }
    progress.phase("checking", Some(m.stored.bytes));
    let stored = blocking(|| crypt::digest_file(&sealed))?;
    if stored.sha256 != m.stored.sha256 {
        return Err(Error::Conflict(format!(
            "backup {id} is damaged: its data object's SHA-256 is {}, the manifest says {}",
            stored.sha256, m.stored.sha256
        )));
    }
    progress.phase("decrypting", Some(m.plain.bytes));
    let encrypted = m.encryption.scheme != "none";
    let plain = blocking(|| -> Result<manifest::Digest> {
        let mut o = crypt::Opener::open(&sealed, encrypted, keys, id)?;
        let mut r = BufReader::with_capacity(1 << 20, &mut o);
        let line = crypt::read_line_limited(&mut r, MAX_DATA_HEADER_BYTES)
            .map_err(|e| crypt::damaged(id, e))?;
        let h: DataHeader = serde_json::from_slice(&line)
            .map_err(|e| crypt::damaged(id, format!("its data header: {e}")))?;
        if h.format != DATA_FORMAT || h.id != m.id || h.kind != m.kind {
            return Err(Error::Conflict(format!(
                "backup {id}: its data belongs to backup {} ({}), not to this manifest",
                h.id,
                h.kind.as_str()
            )));
        }
        let f = std::fs::File::create(out).map_err(|e| crypt::io_err("writing", out, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut done = line.len() as u64 + 1;
        loop {
            let buf = r.fill_buf().map_err(|e| crypt::damaged(id, e))?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            w.write_all(buf)
                .map_err(|e| crypt::io_err("writing", out, e))?;
            r.consume(n);
            done += n as u64;
            if done > m.plain.bytes {
                return Err(crypt::damaged(id, "more data than the manifest says"));
            }
            progress.advance(done);
        }
        w.flush().map_err(|e| crypt::io_err("writing", out, e))?;
        drop(r);
        Ok(o.finish())
    })?;
    let _ = std::fs::remove_file(&sealed);
    if plain != m.plain {
        return Err(Error::Conflict(format!(
            "backup {id} is damaged: its plain data ({} bytes, SHA-256 {}) differs from the manifest ({} bytes, {})",
            plain.bytes, plain.sha256, m.plain.bytes, m.plain.sha256
        )));
    }
    Ok(())
}

async fn integrity(engine: &Engine, what: &str) -> Result<()> {
    let problems = engine.check().await?;
    if !problems.is_empty() {
        return Err(Error::Conflict(format!(
            "{what} fails the store's integrity check: {}",
            problems.join("; ")
        )));
    }
    Ok(())
}

/// Downloads backup `id` (and, for an incremental one, every backup of its chain back to the
/// full one), checks the stored bytes against each manifest, decrypts and decompresses them,
/// checks the plain bytes, opens the full snapshot (a logical one is imported into a scratch
/// SQLite store), runs the store's integrity check and a count of every tenant's memories
/// against the full backup's manifest, then replays the incremental backups' events in order
/// (up to `until`) and checks integrity again. Any difference is an error naming it.
pub async fn open(
    dest: &Destination,
    id: &str,
    keys: &Keys,
    work_dir: Option<&Path>,
    until: Option<Until>,
    progress: &dyn Progress,
) -> Result<Opened> {
    let m = read_manifest(dest, id).await?;
    let chain = chain_of(dest, m.clone()).await?;
    let root = chain[0].clone();
    let stops_before = |position: u64, at: Timestamp| match until {
        Some(Until::Position(p)) => p < position,
        Some(Until::Time(t)) => t < at,
        None => false,
    };
    if stops_before(root.position, root.created_at) {
        return Err(Error::InvalidInput(format!(
            "--until is before full backup {} (position {}, {}); restore an older full backup",
            root.id, root.position, root.created_at
        )));
    }
    let work = temp_dir(work_dir)?;
    let file = work.path().join("store.db");
    let logical = work.path().join("logical.jsonl");
    let target = match root.kind {
        SnapshotKind::SqliteFile => &file,
        _ => &logical,
    };
    fetch(dest, &root, keys, work.path(), target, progress).await?;
    progress.phase("opening the snapshot", None);
    let engine = open_sqlite_copy(&file).await?;
    if root.kind == SnapshotKind::Logical {
        import_logical(&engine, &logical, &root.id).await?;
        let _ = std::fs::remove_file(&logical);
    }
    progress.phase("integrity check", None);
    integrity(&engine, &format!("backup {}'s snapshot", root.id)).await?;
    let counts: BTreeMap<TenantId, u64> = tenant_counts(&engine)
        .await?
        .into_iter()
        .map(|t| (t.tenant, t.memories))
        .collect();
    for t in &root.tenants {
        let have = counts.get(&t.tenant).copied().unwrap_or(0);
        if have != t.memories {
            return Err(Error::Conflict(format!(
                "backup {}: tenant '{}' has {have} memories in the snapshot, the manifest says {}",
                root.id, t.tenant, t.memories
            )));
        }
    }
    let mut position = root.position;
    let mut renewed = false;
    if chain.len() > 1 {
        // The scratch store becomes a node of its own, so the backed-up store's events (its
        // own included) replay as another node's; the snapshot's count as applied.
        let operator = Caller::local(TenantId::default_tenant());
        engine.renew_node_id(&operator).await?;
        renewed = true;
        let segment = work.path().join("segment.jsonl");
        'chain: for inc in &chain[1..] {
            if stops_before(inc.from_position.unwrap_or(0) + 1, inc.created_at)
                && matches!(until, Some(Until::Position(_)))
            {
                break;
            }
            fetch(dest, inc, keys, work.path(), &segment, progress).await?;
            progress.phase(
                "replaying",
                Some(inc.tenants.iter().map(|t| t.events).sum()),
            );
            let f =
                std::fs::File::open(&segment).map_err(|e| crypt::io_err("reading", &segment, e))?;
            let mut r = BufReader::with_capacity(1 << 20, f);
            let max_line = 256 * 1024 * 1024;
            let mut done = 0u64;
            loop {
                let mut line = Vec::new();
                let n = (&mut r)
                    .take(max_line as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| crypt::damaged(&inc.id, e))?;
                if n == 0 {
                    break;
                }
                if line.len() > max_line {
                    return Err(crypt::damaged(&inc.id, "a page of events over 256 MiB"));
                }
                let mut page: SegmentPage = serde_json::from_slice(&line)
                    .map_err(|e| crypt::damaged(&inc.id, format!("a page of events: {e}")))?;
                // Pages come tenant by tenant, so a later page may still hold events before
                // the cut: every page is filtered, none ends the replay.
                if let Some(u) = until {
                    page.events.retain(|e| u.allows(e));
                }
                if let Some(last) = page.events.last() {
                    position = position.max(last.seq);
                    let pull = continuum_core::sync::PullPage {
                        tenant: page.tenant.clone(),
                        node: page.node.clone(),
                        next: last.seq,
                        head: last.seq,
                        events: page.events,
                    };
                    engine.sync_apply(&page.tenant, &pull).await.map_err(|e| {
                        Error::Conflict(format!("backup {}: its events do not apply: {e}", inc.id))
                    })?;
                    done += pull.events.len() as u64;
                    progress.advance(done);
                }
            }
            let _ = std::fs::remove_file(&segment);
            if inc.id == m.id || stops_before(inc.position, inc.created_at) {
                break 'chain;
            }
        }
        if until.is_none() {
            position = m.position;
        }
        progress.phase("integrity check", None);
        integrity(&engine, &format!("backup {} replayed", m.id)).await?;
    }
    Ok(Opened {
        manifest: m,
        engine,
        file,
        root: root.kind,
        chain: chain.iter().map(|c| c.id.clone()).collect(),
        position,
        renewed,
        _work: work,
    })
}

/// [`open`], reported.
pub async fn verify(
    dest: &Destination,
    id: &str,
    keys: &Keys,
    work_dir: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Verified> {
    let o = open(dest, id, keys, work_dir, None, progress).await?;
    Ok(Verified {
        id: o.manifest.id.clone(),
        kind: o.manifest.kind,
        stored_bytes: o.manifest.stored.bytes,
        plain_bytes: o.manifest.plain.bytes,
        tenants: o.manifest.tenants.clone(),
        position: o.position,
        chain: o.chain.clone(),
    })
}

/// Imports a logical snapshot (tenant exports one after another) into `engine`.
async fn import_logical(engine: &Engine, file: &Path, id: &str) -> Result<()> {
    let f = std::fs::File::open(file).map_err(|e| crypt::io_err("reading", file, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut tenant: Option<TenantId> = None;
    let mut batch = Vec::new();
    let max_line = 64 * 1024 * 1024;
    loop {
        let mut line = Vec::new();
        let n = (&mut r)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| crypt::damaged(id, e))?;
        if n == 0 {
            break;
        }
        if line.len() > max_line {
            return Err(crypt::damaged(id, "a record over 64 MiB"));
        }
        let record: ExportRecord = serde_json::from_slice(&line)
            .map_err(|e| crypt::damaged(id, format!("a record: {e}")))?;
        match record {
            ExportRecord::Header(h) => {
                if let Some(t) = &tenant
                    && !batch.is_empty()
                {
                    engine.import(t, std::mem::take(&mut batch)).await?;
                }
                tenant = Some(h.tenant);
            }
            other => {
                let Some(t) = &tenant else {
                    return Err(crypt::damaged(id, "records before a tenant's header"));
                };
                batch.push(other);
                if batch.len() >= 1000 {
                    engine.import(t, std::mem::take(&mut batch)).await?;
                }
            }
        }
    }
    if let Some(t) = &tenant
        && !batch.is_empty()
    {
        engine.import(t, batch).await?;
    }
    Ok(())
}

/// Where a restore goes.
pub enum Target {
    /// The SQLite store file at this path (the data directory's `continuum.db`): a sqlite-file
    /// backup is put in place whole; a logical one is imported into a new store there.
    SqliteFile(PathBuf),
    /// An open store (PostgreSQL): every tenant is imported.
    Engine(Box<Engine>),
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub id: String,
    pub kind: SnapshotKind,
    /// How: `file` (the store file put in place) or `import`.
    pub method: String,
    /// Every tenant of the restored store with its memories.
    pub tenants: Vec<TenantCount>,
    /// The event position restored to (the backup's, or where `--until` stopped).
    pub position: u64,
    /// The backups applied, full first.
    pub chain: Vec<String>,
    /// The restored store's node id (a new one: see the README's "Backups").
    pub node: String,
}

/// Restores backup `id` (up to `until`, within its chain) into `target`, which must hold
/// nothing (no memories, no keys) unless `force`. Everything is checked as by [`verify`]
/// before anything is written, and the restored store's integrity check runs at the end. The
/// restored store is a new node: it takes a new node id, and keeps its past under the old one.
#[allow(clippy::too_many_arguments)]
pub async fn restore(
    dest: &Destination,
    id: &str,
    keys: &Keys,
    target: Target,
    force: bool,
    until: Option<Until>,
    work_dir: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Restored> {
    // Refuse a non-empty target before downloading anything.
    match &target {
        Target::SqliteFile(path) => {
            if !force && sqlite_file_holds_data(path).await? {
                return Err(Error::Conflict(format!(
                    "{} already holds a store with data; restore into an empty data directory, or pass --force to replace it (stop every server using it first)",
                    path.display()
                )));
            }
        }
        Target::Engine(e) => {
            if !force && !e.tenants().await?.is_empty() {
                return Err(Error::Conflict(
                    "the target store already holds tenants; restore into an empty store, or pass --force to import into it".into(),
                ));
            }
        }
    }
    let o = open(dest, id, keys, work_dir, until, progress).await?;
    progress.phase("restoring", None);
    let operator = Caller::local(TenantId::default_tenant());
    let m = o.manifest.clone();
    let (chain, position) = (o.chain.clone(), o.position);
    let want: BTreeMap<TenantId, u64> = tenant_counts(&o.engine)
        .await?
        .into_iter()
        .map(|t| (t.tenant, t.memories))
        .collect();
    let (method, engine) = match target {
        Target::SqliteFile(path) if o.root == SnapshotKind::SqliteFile => {
            if !o.renewed {
                o.engine.renew_node_id(&operator).await?;
            }
            let Opened {
                engine,
                file,
                _work,
                ..
            } = o;
            drop(engine);
            put_store_file(&file, &path)?;
            drop(_work);
            ("file", open_sqlite_copy(&path).await?)
        }
        Target::SqliteFile(path) => {
            if force {
                remove_store_file(&path)?;
            }
            let target = open_sqlite_copy(&path).await?;
            copy_tenants(&o.engine, &target, &want, progress).await?;
            ("import", target)
        }
        Target::Engine(target) => {
            copy_tenants(&o.engine, &target, &want, progress).await?;
            ("import", *target)
        }
    };
    progress.phase("integrity check", None);
    let problems = engine.check().await?;
    if !problems.is_empty() {
        return Err(Error::Internal(format!(
            "the restored store fails its integrity check: {}",
            problems.join("; ")
        )));
    }
    engine
        .record_restore(&operator, &m.id, chain.len(), position)
        .await?;
    let counts = tenant_counts(&engine).await?;
    for (tenant, n) in &want {
        let have = counts
            .iter()
            .find(|t| &t.tenant == tenant)
            .map_or(0, |t| t.memories);
        if have < *n {
            return Err(Error::Internal(format!(
                "after the restore, tenant '{tenant}' has {have} memories; the backup holds {n}"
            )));
        }
    }
    Ok(Restored {
        id: m.id.clone(),
        kind: m.kind,
        method: method.into(),
        tenants: counts,
        position,
        chain,
        node: engine.node_id().await?,
    })
}

/// Every tenant of the opened snapshot exported and imported into `target`, in batches.
async fn copy_tenants(
    from: &Engine,
    target: &Engine,
    tenants: &BTreeMap<TenantId, u64>,
    progress: &dyn Progress,
) -> Result<()> {
    let mut done = 0u64;
    progress.phase("importing", Some(tenants.values().sum()));
    for tenant in tenants.keys() {
        let mut records = Vec::new();
        let mut sink = |r: &ExportRecord| -> Result<()> {
            if !matches!(r, ExportRecord::Header(_)) {
                records.push(r.clone());
            }
            Ok(())
        };
        // One tenant's records at a time in memory; a tenant is bounded by its quota.
        from.export(tenant, &mut sink, &mut |_| {}).await?;
        for chunk in records.chunks(1000) {
            target.import(tenant, chunk.to_vec()).await?;
            done += chunk
                .iter()
                .filter(|r| matches!(r, ExportRecord::Memory { .. }))
                .count() as u64;
            progress.advance(done);
        }
    }
    Ok(())
}

async fn sqlite_file_holds_data(path: &Path) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let e = open_sqlite_copy(path).await?;
    Ok(!e.tenants().await?.is_empty())
}

fn remove_store_file(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crypt::io_err("removing", &p, e)),
        }
    }
    Ok(())
}

/// Puts a restored store file at `path`: copied beside it, synced, the old file and its WAL
/// removed, renamed into place.
fn put_store_file(from: &Path, path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| crypt::io_err("creating", dir, e))?;
    // Closing the last connection checkpoints the WAL into the file; should one be left (a
    // connection still open somewhere), it goes along, and SQLite replays it at open.
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    let tmp = path.with_extension("db.restoring");
    let tmp_wal = PathBuf::from(format!("{}-wal", path.display()));
    std::fs::copy(from, &tmp).map_err(|e| crypt::io_err("writing", &tmp, e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| crypt::io_err("syncing", &tmp, e))?;
    remove_store_file(path)?;
    if wal.exists() {
        std::fs::copy(&wal, &tmp_wal).map_err(|e| crypt::io_err("writing", &tmp_wal, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| crypt::io_err("renaming", &tmp, e))?;
    Ok(())
}

/// What `prune` decided and did.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub kept: Vec<KeptBackup>,
    pub deleted: Vec<String>,
    /// Unfinished uploads (no manifest, over an hour old) removed.
    pub incomplete_deleted: Vec<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptBackup {
    pub id: String,
    pub rules: Vec<&'static str>,
}

/// Deletes the backups no rule keeps (the manifest first, so a half-deleted backup is never
/// listed as complete), and unfinished uploads older than an hour.
pub async fn prune(
    dest: &Destination,
    rules: &Retention,
    dry_run: bool,
    now: Timestamp,
) -> Result<Pruned> {
    rules.check()?;
    let listed = list(dest).await?;
    let complete: Vec<(String, Timestamp)> = listed
        .iter()
        .filter_map(|l| l.manifest.as_ref().map(|m| (l.id.clone(), m.created_at)))
        .collect();
    let mut decided = rules.decide(&complete);
    // A kept incremental backup keeps the chain it builds on.
    let parents: BTreeMap<String, String> = listed
        .iter()
        .filter_map(|l| {
            let m = l.manifest.as_ref()?;
            Some((m.id.clone(), m.parent.clone()?))
        })
        .collect();
    let kept: Vec<String> = decided
        .iter()
        .filter(|(_, why)| !why.is_empty())
        .map(|(id, _)| id.to_string())
        .collect();
    for id in kept {
        let mut at = id;
        while let Some(p) = parents.get(&at) {
            match decided.get_mut(p.as_str()) {
                Some(why) => {
                    why.insert("parent");
                }
                None => break,
            }
            at = p.clone();
        }
    }
    let mut out = Pruned {
        kept: vec![],
        deleted: vec![],
        incomplete_deleted: vec![],
        dry_run,
    };
    for (id, why) in &decided {
        if why.is_empty() {
            out.deleted.push(id.to_string());
        } else {
            out.kept.push(KeptBackup {
                id: id.to_string(),
                rules: why.iter().copied().collect(),
            });
        }
    }
    for l in &listed {
        if !l.complete
            && l.problem.is_none()
            && manifest::id_time(&l.id).is_some_and(|t| now.millis() - t.millis() > 3_600_000)
        {
            out.incomplete_deleted.push(l.id.clone());
        }
    }
    if dry_run {
        return Ok(out);
    }
    let objects = dest.list().await?;
    for id in out.deleted.iter().chain(&out.incomplete_deleted) {
        dest.delete(&format!("{id}/{MANIFEST_FILE}")).await?;
        for o in objects
            .iter()
            .filter(|o| o.key.starts_with(&format!("{id}/")))
        {
            dest.delete(&o.key).await?;
        }
    }
    Ok(out)
}
