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
    // Then the neighbour graph (large tenants only), saved so the next process loads it.
    build_graph(&engine, &tenant, g.json).await?;
    let vector_index = engine.vector_index_info(&tenant)?;
    if g.json {
        return output::json(&serde_json::json!({
            "model": report.model,
            "dim": report.dim,
            "embedded": report.embedded,
            "pruned": report.pruned,
            "seconds": report.seconds,
            "vector_index": vector_index,
        }));
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
    match vector_index.graph_vectors {
        Some(n) => println!(
            "vector graph (HNSW): {n} vectors{}",
            vector_index
                .snapshot
                .map(|p| format!(", saved to {p}"))
                .unwrap_or_default()
        ),
        None => println!(
            "vector search scans every vector (a graph is built from {} vectors)",
            vector_index.min_vectors
        ),
    }
    Ok(())
}

/// Builds (or loads and catches up) the tenant's HNSW graph with a progress bar; its size, or
/// `None` below the threshold.
pub async fn build_graph(
    engine: &Engine,
    tenant: &continuum_core::TenantId,
    quiet: bool,
) -> Result<Option<usize>> {
    let pb = output::progress(0, "vector graph", quiet);
    let bar = pb.clone();
    let built = engine
        .build_vector_index(
            tenant,
            std::sync::Arc::new(move |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }),
        )
        .await;
    pb.finish_and_clear();
    Ok(built?)
}

/// Puts the embedding worker (named `embedder`) and the vector-graph job (`vector-graph`:
/// HNSW builds, loads and saves) under `jobs` when an embedder is configured. Both stop at a
/// safe point when the supervisor shuts down; their errors are logged and retried.
pub fn spawn_worker(engine: &Engine, jobs: &continuum_ops::Supervisor) -> anyhow::Result<()> {
    if engine.embedder().is_none() {
        return Ok(());
    }
    let worker = engine.clone();
    jobs.spawn("embedder", continuum_ops::Backoff::default(), move |stop| {
        let engine = worker.clone();
        async move {
            engine
                .run_embed_worker(
                    stop,
                    |e| tracing::warn!(job = "embedder", error = %e, "embedding failed; retrying"),
                )
                .await;
            Ok(())
        }
    })
    .map_err(continuum_core::Error::Internal)?;
    if !engine.store().searches_vectors() {
        engine.expect_vector_graph_job();
        let graphs = engine.clone();
        jobs.spawn(
            "vector-graph",
            continuum_ops::Backoff::default(),
            move |stop| {
                let engine = graphs.clone();
                async move { engine.run_vector_graph_job(stop).await }
            },
        )
        .map_err(continuum_core::Error::Internal)?;
    }
    Ok(())
}
