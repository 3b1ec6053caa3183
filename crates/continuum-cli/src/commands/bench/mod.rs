//! `bench`: measurements that BENCHMARKS.md quotes, each reproducible with one command.

mod locomo;
mod throughput;

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
    Locomo(locomo::LocomoArgs),
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

pub async fn bench(g: &Global, a: BenchArgs) -> Result<()> {
    match a.kind {
        None => throughput::throughput(g, a.throughput).await,
        Some(BenchKind::Throughput(t)) => throughput::throughput(g, t).await,
        Some(BenchKind::Locomo(l)) => locomo::locomo(g, l).await,
    }
}
