//! `backup create | list | verify | restore | prune`: encrypted, verified backups of the store
//! in a directory, an S3 bucket or any rclone remote.

use crate::app::{Backend, Global, STORE_FILE, StoreLocation};
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_backup::{CreateOptions, Progress, Source, Target};
use continuum_core::Error;
use indicatif::ProgressBar;
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Snapshot the store (every tenant; only one with --tenant), compress, encrypt and upload
    /// it to --dest. Safe while a server writes to the store.
    Create {
        /// Only the events since the newest backup at --dest (of this store), chained to it.
        #[arg(long)]
        incremental: bool,
    },
    /// The backups at --dest, oldest first, with unfinished uploads marked.
    List,
    /// Download a backup, check every hash, decrypt it, open the snapshot, run the store's
    /// integrity check and compare the counts with the manifest.
    Verify {
        /// The backup's id (`backup list` shows them).
        id: String,
    },
    /// Restore a backup into the store --data-dir / --store name, which must be empty.
    Restore {
        /// The backup's id (`backup list` shows them).
        id: String,
        /// Restore over a store that holds data (SQLite: the file is replaced; stop every
        /// server using it first. PostgreSQL: the backup's tenants are imported into it).
        #[arg(long)]
        force: bool,
        /// Stop at this event position, or this time (RFC 3339), within the backup's chain of
        /// incremental backups.
        #[arg(long, value_name = "POSITION|TIME")]
        until: Option<String>,
    },
    /// Delete the backups no retention rule (--keep-last, --keep-daily, --keep-weekly,
    /// --keep-monthly) keeps, and unfinished uploads over an hour old.
    Prune {
        /// Show what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a new age identity file (readable by you only) and print its recipient, for
    /// --recipient; the file restores the backups: keep a copy away from them.
    Keygen {
        /// The identity file to create (never overwritten).
        #[arg(long, short)]
        output: std::path::PathBuf,
    },
}

/// A progress bar fed by the backup's phases.
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    hidden: bool,
}

impl Bar {
    fn new(hidden: bool) -> Bar {
        Bar {
            bar: Mutex::new(None),
            hidden,
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let mut slot = self.bar.lock().unwrap();
        if let Some(b) = slot.take() {
            b.finish_and_clear();
        }
        if self.hidden || name == "done" {
            return;
        }
        let b = match total {
            Some(n) => {
                let b = ProgressBar::new(n);
                b.set_style(
                    indicatif::ProgressStyle::with_template(&format!(
                        "{name} {{bar:40}} {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, eta {{eta}})"
                    ))
                    .expect("valid template"),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.set_message(name.to_string());
                b
            }
        };
        *slot = Some(b);
    }
    fn advance(&self, done: u64) {
        if let Some(b) = self.bar.lock().unwrap().as_ref() {
            b.set_position(done);
        }
    }
}

pub(crate) fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

pub async fn backup(g: &Global, a: BackupArgs) -> Result<()> {
    if let BackupCommand::Keygen { output: file } = &a.command {
        let recipient = continuum_backup::crypt::generate_identity(file)?;
        if g.json {
            return output::json(&serde_json::json!({
                "identity_file": file,
                "recipient": recipient,
            }));
        }
        println!("{recipient}");
        eprintln!(
            "identity written to {}; encrypt with --recipient {recipient}, restore with --identity {}",
            file.display(),
            file.display()
        );
        return Ok(());
    }
    let dest = g.backup_destination()?;
    let bar = Bar::new(g.json || !std::io::stderr().is_terminal());
    let work = g.backup_work_dir.as_deref();
    let out = run(g, a, &dest, &bar, work).await;
    bar.finish();
    out
}

async fn run(
    g: &Global,
    a: BackupArgs,
    dest: &continuum_backup::Destination,
    bar: &Bar,
    work: Option<&std::path::Path>,
) -> Result<()> {
    match a.command {
        BackupCommand::Create { incremental } => {
            let encryption = g.backup_encryption()?;
            let tenant = crate::config::given_on_command_line("tenant")
                .then(|| g.tenant())
                .transpose()?;
            let (engine, backend) = g.open().await?;
            let source = source(&backend);
            let opts = CreateOptions {
                tenant,
                encryption,
                work_dir: work.map(Into::into),
                incremental,
            };
            let m = continuum_backup::create(&engine, &source, dest, &opts, bar).await?;
            if g.json {
                return output::json(&serde_json::json!({
                    "id": m.id,
                    "destination": dest.describe(),
                    "manifest": m,
                }));
            }
            if m.kind == continuum_backup::manifest::SnapshotKind::Incremental {
                println!(
                    "backup {} at {}: incremental on {} ({} events of {} tenant{}, positions {} to {}), {} stored, {}",
                    m.id,
                    dest.describe(),
                    m.parent.as_deref().unwrap_or("?"),
                    m.tenants.iter().map(|t| t.events).sum::<u64>(),
                    m.tenants.len(),
                    if m.tenants.len() == 1 { "" } else { "s" },
                    m.from_position.unwrap_or(0) + 1,
                    m.position,
                    size(m.stored.bytes),
                    m.encryption.scheme,
                );
            } else {
                println!(
                    "backup {} at {}: {} ({} tenant{}, {} memories, event position {}), {} stored ({} before compression), {}",
                    m.id,
                    dest.describe(),
                    m.kind.as_str(),
                    m.tenants.len(),
                    if m.tenants.len() == 1 { "" } else { "s" },
                    m.memories(),
                    m.position,
                    size(m.stored.bytes),
                    size(m.plain.bytes),
                    m.encryption.scheme,
                );
            }
            println!("sha256 {}", m.stored.sha256);
            Ok(())
        }
        BackupCommand::List => {
            let all = continuum_backup::list(dest).await?;
            if g.json {
                return output::json(&serde_json::json!({
                    "destination": dest.describe(),
                    "backups": all,
                }));
            }
            if all.is_empty() {
                println!("no backups at {}", dest.describe());
                return Ok(());
            }
            for l in &all {
                match (&l.manifest, &l.problem) {
                    (Some(m), _) if m.parent.is_some() => println!(
                        "{}  {:<11}  {:>3} tenant{}  {:>9} events    {:>10}  {}  on {}",
                        l.id,
                        m.kind.as_str(),
                        m.tenants.len(),
                        if m.tenants.len() == 1 { " " } else { "s" },
                        m.tenants.iter().map(|t| t.events).sum::<u64>(),
                        size(l.stored_bytes),
                        m.encryption.scheme,
                        m.parent.as_deref().unwrap_or(""),
                    ),
                    (Some(m), _) => println!(
                        "{}  {:<11}  {:>3} tenant{}  {:>9} memories  {:>10}  {}",
                        l.id,
                        m.kind.as_str(),
                        m.tenants.len(),
                        if m.tenants.len() == 1 { " " } else { "s" },
                        m.memories(),
                        size(l.stored_bytes),
                        m.encryption.scheme,
                    ),
                    (None, Some(p)) => println!("{}  unreadable manifest: {p}", l.id),
                    (None, None) => println!(
                        "{}  incomplete (no manifest: an upload that did not finish)  {}",
                        l.id,
                        size(l.stored_bytes)
                    ),
                }
            }
            Ok(())
        }
        BackupCommand::Verify { id } => {
            let keys = g.backup_keys()?;
            let v = continuum_backup::verify(dest, &id, &keys, work, bar).await?;
            if g.json {
                return output::json(&serde_json::json!({"ok": true, "backup": v}));
            }
            println!(
                "backup {} is good: {} stored, {} plain, hashes match; the snapshot passes the integrity check with the memories its manifest lists{}",
                v.id,
                size(v.stored_bytes),
                size(v.plain_bytes),
                if v.chain.len() > 1 {
                    format!(
                        "; the chain of {} backups from {} replays to position {}",
                        v.chain.len(),
                        v.chain[0],
                        v.position
                    )
                } else {
                    String::new()
                },
            );
            Ok(())
        }
        BackupCommand::Restore { id, force, until } => {
            let until = until
                .as_deref()
                .map(continuum_backup::Until::parse)
                .transpose()?;
            let keys = g.backup_keys()?;
            let target = match g.location()? {
                StoreLocation::Sqlite(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        Error::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                    Target::SqliteFile(dir.join(STORE_FILE))
                }
                loc @ (StoreLocation::Postgres { .. } | StoreLocation::Libsql(_)) => {
                    let (engine, _) = g.open_location(&loc, g.engine_config()).await?;
                    Target::Engine(Box::new(engine))
                }
            };
            let r = continuum_backup::restore(dest, &id, &keys, target, force, until, work, bar)
                .await?;
            if g.json {
                return output::json(&r);
            }
            println!(
                "restored backup {} ({}, by {}{}): {} tenant{}, {} memories, event position {}; the store passes its integrity check; node id {}",
                r.id,
                r.kind.as_str(),
                r.method,
                if r.chain.len() > 1 {
                    format!(", {} backups from {}", r.chain.len(), r.chain[0])
                } else {
                    String::new()
                },
                r.tenants.len(),
                if r.tenants.len() == 1 { "" } else { "s" },
                r.tenants.iter().map(|t| t.memories).sum::<u64>(),
                r.position,
                r.node,
            );
            if r.method == "import" {
                eprintln!(
                    "note: a logical backup holds memories, not API keys; create keys with `continuum keys create`"
                );
            }
            Ok(())
        }
        BackupCommand::Prune { dry_run } => {
            let rules = g.backup_retention();
            let now = continuum_core::Clock::now(&continuum_core::SystemClock);
            let p = continuum_backup::prune(dest, &rules, dry_run, now).await?;
            if g.json {
                return output::json(&p);
            }
            let verb = if dry_run { "would delete" } else { "deleted" };
            for id in &p.deleted {
                println!("{verb} {id}");
            }
            for id in &p.incomplete_deleted {
                println!("{verb} {id} (incomplete)");
            }
            for k in &p.kept {
                println!("kept {} ({})", k.id, k.rules.join(", "));
            }
            Ok(())
        }
        BackupCommand::Keygen { .. } => unreachable!("handled above"),
    }
}

pub(crate) fn source(backend: &Backend) -> Source {
    Source {
        backend: match backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
            Backend::Libsql { .. } => "libsql",
        }
        .into(),
        schema_version: backend.latest_version(),
    }
}

/// The scheduled backup job of `serve`, when a schedule is configured.
/// What `serve` tells its API about the backups it makes (`GET /v1/backups`).
#[derive(Debug)]
struct Catalog {
    dest: continuum_backup::dest::Destination,
    schedule: String,
}

impl continuum_server::BackupCatalog for Catalog {
    fn destination(&self) -> String {
        self.dest.describe()
    }

    fn schedule(&self) -> String {
        self.schedule.clone()
    }

    fn list(
        &self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Vec<continuum_server::BackupSummary>, String>>
                + Send
                + '_,
        >,
    > {
        Box::pin(async move {
            let listed = continuum_backup::list(&self.dest)
                .await
                .map_err(|e| e.to_string())?;
            Ok(listed
                .into_iter()
                .map(|b| {
                    let m = b.manifest.as_ref();
                    continuum_server::BackupSummary {
                        id: b.id.clone(),
                        complete: b.complete,
                        created_at: m.map(|m| m.created_at),
                        kind: m.and_then(|m| {
                            serde_json::to_value(m.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                        }),
                        parent: m.and_then(|m| m.parent.clone()),
                        tenants: m.map_or(0, |m| m.tenants.len() as u64),
                        memories: m.map_or(0, |m| m.tenants.iter().map(|t| t.memories).sum()),
                        stored_bytes: b.stored_bytes,
                        problem: b.problem,
                    }
                })
                .collect())
        })
    }
}

/// Starts the `backup` job when a schedule is configured; returns what the API lists then.
pub(crate) fn spawn_scheduled(
    g: &Global,
    engine: &continuum_engine::Engine,
    backend: &Backend,
    jobs: &continuum_ops::Supervisor,
) -> Result<Option<std::sync::Arc<dyn continuum_server::BackupCatalog>>> {
    let Some(when) = g
        .backup_schedule
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(None);
    };
    let schedule = continuum_backup::job::Schedule::parse(when)?;
    let dest = g.backup_destination()?;
    let retention = g.backup_retention();
    if !retention.is_empty() {
        retention.check()?;
    }
    let cfg = continuum_backup::job::JobConfig {
        schedule,
        dest,
        source: source(backend),
        options: CreateOptions {
            tenant: None,
            encryption: g.backup_encryption()?,
            work_dir: g.backup_work_dir.clone(),
            incremental: false,
        },
        full_every: g.backup_full_every,
        retention: (!retention.is_empty()).then_some(retention),
        attempts: 5,
        retry_after: std::time::Duration::from_secs(30),
    };
    tracing::info!(destination = %cfg.dest.describe(), schedule = when, "scheduled backups on");
    let catalog = Catalog {
        dest: cfg.dest.clone(),
        schedule: when.trim().to_string(),
    };
    let engine = engine.clone();
    jobs.spawn("backup", continuum_ops::Backoff::default(), move |stop| {
        continuum_backup::job::run_scheduled(engine.clone(), cfg.clone(), stop)
    })
    .map_err(Error::Internal)?;
    Ok(Some(std::sync::Arc::new(catalog)))
}
