//! `bench`: measurements that BENCHMARKS.md quotes, each reproducible with one command.

mod audit;
mod backup;
mod federation;
mod libsql;
mod locomo;
mod mcp_sessions;
mod metering;
mod reflect;
mod streams;
mod sync;
mod throughput;
mod webhooks;

use crate::app::{Backend, Global, StoreLocation};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use continuum_core::Error;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: Option<BenchKind>,
    /// Without a subcommand, `bench` runs `bench throughput` with these flags.
    #[command(flatten)]
    pub throughput: throughput::ThroughputArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Learn throughput and recall latency on generated conversations (the default).
    Throughput(throughput::ThroughputArgs),
    /// Retrieval quality on a LoCoMo-format file: recall@k and hit@k of the evidence turns.
    Locomo(Box<locomo::LocomoArgs>),
    /// Events per second to many WebSocket clients following a tenant while turns are learned.
    Streams(streams::StreamsArgs),
    /// Signed webhook deliveries per second to a receiver on loopback.
    Webhooks(webhooks::WebhooksArgs),
    /// What metering costs recall throughput: plain, metered, and metered with a daily quota,
    /// side by side.
    Metering(metering::MeteringArgs),
    /// Audit log appends per second (one transaction each, and batched) and verify speed.
    Audit(audit::AuditArgs),
    /// Sync throughput over loopback: a node pushes --memories memories to an empty server,
    /// an empty node pulls them, then idle rounds.
    Sync(sync::SyncArgs),
    /// Resident memory while MCP-over-HTTP sessions are opened and abandoned, round after
    /// round.
    McpSessions(mcp_sessions::McpSessionsArgs),
    /// Backup create, verify and restore speed, backup size, and recall latency while a
    /// backup runs.
    Backup(backup::BackupArgs),
    /// How long insights and dream take on a generated store, at the default graph scope and
    /// the largest.
    Reflect(reflect::ReflectArgs),
    /// A federation hub in this process with --nodes members: contributions per second,
    /// query latency over the filled pool, mutual TLS handshake cost, resident memory.
    Federation(federation::FederationArgs),
    /// Replication through a libSQL primary (--store libsql…, an empty one): journal and
    /// push speed, time to bootstrap a new replica, write-to-visible lag between replicas.
    Libsql(libsql::LibsqlArgs),
}

impl BenchArgs {
    /// `bench streams` and `bench webhooks` run a server (and its clients) in the process.
    pub fn runs_a_server(&self) -> bool {
        matches!(
            self.kind,
            Some(BenchKind::Streams(_))
                | Some(BenchKind::Webhooks(_))
                | Some(BenchKind::Metering(_))
                | Some(BenchKind::McpSessions(_))
                | Some(BenchKind::Sync(_))
                | Some(BenchKind::Backup(_))
                | Some(BenchKind::Reflect(_))
                | Some(BenchKind::Federation(_))
                | Some(BenchKind::Libsql(_))
        )
    }
}

/// A fresh store for a benchmark: a temporary (or given) directory for SQLite, a scratch schema
/// for PostgreSQL (`--store`), dropped by [`Scratch::finish`].
pub(crate) struct Scratch {
    pub location: StoreLocation,
    _temp: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new(g: &Global, dir: Option<&std::path::Path>) -> Result<Self> {
        match g.location()? {
            StoreLocation::Postgres { url, .. } => Ok(Scratch {
                location: StoreLocation::Postgres {
                    url,
                    schema: Some(format!("continuum_bench_{:016x}", fastrand::u64(..))),
                },
                _temp: None,
            }),
            StoreLocation::Libsql(loc) => {
                // A new replica of the same primary (which should be an empty one: a new
                // replica applies everything the primary holds when it opens).
                let (base, temp) = match dir {
                    Some(d) => (d.to_path_buf(), None),
                    None => {
                        let t = tempfile::tempdir().context("creating a temporary directory")?;
                        (t.path().to_path_buf(), Some(t))
                    }
                };
                let replica = base.join(crate::app::STORE_FILE);
                if replica.exists() {
                    return Err(Error::Conflict(format!(
                        "{} already holds a store; a benchmark needs a fresh one",
                        base.display()
                    ))
                    .into());
                }
                Ok(Scratch {
                    location: StoreLocation::Libsql(continuum_store_libsql::LibsqlLocation {
                        primary: loc.primary,
                        replica,
                    }),
                    _temp: temp,
                })
            }
            StoreLocation::Sqlite(_) => match dir {
                Some(d) => {
                    if d.join(crate::app::STORE_FILE).exists() {
                        return Err(Error::Conflict(format!(
                            "{} already holds a store; a benchmark needs a fresh one",
                            d.display()
                        ))
                        .into());
                    }
                    Ok(Scratch {
                        location: StoreLocation::Sqlite(d.to_path_buf()),
                        _temp: None,
                    })
                }
                None => {
                    let temp = tempfile::tempdir().context("creating a temporary directory")?;
                    Ok(Scratch {
                        location: StoreLocation::Sqlite(temp.path().to_path_buf()),
                        _temp: Some(temp),
                    })
                }
            },
        }
    }

    /// Drops a PostgreSQL scratch schema; a temporary directory goes when `self` does.
    pub async fn finish(self, backend: &Backend) -> Result<()> {
        if let (
            Backend::Postgres(p),
            StoreLocation::Postgres {
                schema: Some(s), ..
            },
        ) = (backend, &self.location)
        {
            p.drop_schema(s).await?;
        }
        Ok(())
    }
}

/// Learns `turns` generated turns (two memories each) into `tenant`, 500 to a transaction,
/// with a progress bar unless `hidden`; returns the generator, to ask questions of the same
/// world.
async fn learn_generated(
    engine: &continuum_engine::Engine,
    tenant: &continuum_core::TenantId,
    turns: usize,
    seed: u64,
    hidden: bool,
) -> Result<throughput::Gen> {
    let pb = crate::output::progress(turns as u64, "learning", hidden);
    let mut text_gen = throughput::Gen(fastrand::Rng::with_seed(seed));
    let mut done = 0;
    while done < turns {
        let n = (turns - done).min(500);
        let batch = (done..done + n).map(|i| text_gen.turn(i / 20)).collect();
        engine.learn_many(tenant, batch).await?;
        done += n;
        pb.set_position(done as u64);
    }
    pb.finish_and_clear();
    Ok(text_gen)
}

pub async fn bench(g: &Global, a: BenchArgs) -> Result<()> {
    match a.kind {
        None => throughput::throughput(g, a.throughput).await,
        Some(BenchKind::Throughput(t)) => throughput::throughput(g, t).await,
        Some(BenchKind::Locomo(l)) => locomo::locomo(g, *l).await,
        Some(BenchKind::Streams(s)) => streams::streams(g, s).await,
        Some(BenchKind::Webhooks(w)) => webhooks::webhooks(g, w).await,
        Some(BenchKind::Metering(m)) => metering::metering(g, m).await,
        Some(BenchKind::Audit(x)) => audit::audit(g, x).await,
        Some(BenchKind::Sync(x)) => sync::sync(g, x).await,
        Some(BenchKind::McpSessions(m)) => mcp_sessions::mcp_sessions(g, m).await,
        Some(BenchKind::Backup(b)) => backup::backup(g, b).await,
        Some(BenchKind::Reflect(r)) => reflect::reflect(g, r).await,
        Some(BenchKind::Federation(f)) => federation::federation(g, f).await,
        Some(BenchKind::Libsql(l)) => libsql::libsql(g, l).await,
    }
}

/// Remembers query vectors, so comparing settings embeds each question once.
pub(crate) struct CachedEmbedder {
    inner: std::sync::Arc<dyn continuum_core::embed::Embedder>,
    cache: std::sync::Mutex<std::collections::HashMap<String, Vec<f32>>>,
}

impl CachedEmbedder {
    /// Forgets every cached vector.
    pub(crate) fn clear(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    pub(crate) fn new(inner: std::sync::Arc<dyn continuum_core::embed::Embedder>) -> Self {
        CachedEmbedder {
            inner,
            cache: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl continuum_core::embed::Embedder for CachedEmbedder {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    async fn embed(&self, texts: &[String]) -> continuum_core::Result<Vec<Vec<f32>>> {
        if texts.len() == 1
            && let Some(v) = self
                .cache
                .lock()
                .ok()
                .and_then(|c| c.get(&texts[0]).cloned())
        {
            return Ok(vec![v]);
        }
        let out = self.inner.embed(texts).await?;
        if texts.len() == 1
            && let Ok(mut c) = self.cache.lock()
        {
            c.insert(texts[0].clone(), out[0].clone());
        }
        Ok(out)
    }
}

/// Applies `--context-mode expand|spread`, when given.
pub(crate) fn set_context_mode(config: &mut continuum_engine::EngineConfig, mode: Option<&str>) {
    match mode {
        Some("spread") => {
            config.session_context_mode = continuum_engine::SessionContextMode::Spread
        }
        Some(_) => config.session_context_mode = continuum_engine::SessionContextMode::Expand,
        None => {}
    }
}
