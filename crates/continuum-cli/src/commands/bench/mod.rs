//! `bench`: measurements that BENCHMARKS.md quotes, each reproducible with one command.

mod locomo;
mod throughput;

use crate::app::Global;
use anyhow::Result;
use clap::{Args, Subcommand};

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

pub async fn bench(g: &Global, a: BenchArgs) -> Result<()> {
    match a.kind {
        None => throughput::throughput(g, a.throughput).await,
        Some(BenchKind::Throughput(t)) => throughput::throughput(g, t).await,
        Some(BenchKind::Locomo(l)) => locomo::locomo(g, l).await,
    }
}
