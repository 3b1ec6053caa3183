//! `reindex`: embed what has no vector of the configured model; and the background worker that
//! `serve` and `mcp` run.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;
use continuum_core::Error;
use continuum_engine::Engine;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Also delete the tenant's vectors of other models (left from an earlier embedder).
    #[arg(long)]
    pub prune: bool,
}

pub async fn reindex(g: &Global, a: ReindexArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open_semantic().await?;
    if engine.embedder().is_none() {
        return Err(Error::InvalidInput(
            "reindex needs an embedder: --embedder local --model-dir DIR, or --embedder openai --embed-url URL --embed-model NAME"
                .into(),
        )
        .into());
    }
    let pb = output::progress(0, "embedding", g.json);
    let report = engine
        .reindex(&tenant, a.prune, &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .await;
    pb.finish_and_clear();
    let report = report?;
    if g.json {
        return output::json(&report);
    }
    let rate = if report.seconds > 0.0 {
        report.embedded as f64 / report.seconds
    } else {
        0.0
    };
    println!(
        "embedded {} memories with {} (dimension {}) in {:.1} s ({:.0}/s)",
        report.embedded, report.model, report.dim, report.seconds, rate
    );
    if a.prune {
        println!("deleted {} vectors of other models", report.pruned);
    }
    Ok(())
}

/// Starts the embedding worker when an embedder is configured; its errors go to stderr.
pub fn spawn_worker(engine: &Engine) -> Option<tokio::task::JoinHandle<()>> {
    engine.embedder()?;
    let engine = engine.clone();
    Some(tokio::spawn(async move {
        engine
            .run_embed_worker(|e| eprintln!("continuum: embedding worker: {e} (retrying)"))
            .await
    }))
}
