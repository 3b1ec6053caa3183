//! `retention run`: apply the retention rules (`--retention SOURCE=AGE`, `[retention] rules`)
//! to every tenant now, or with `--dry-run` list what they would forget.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::Error;

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    pub action: RetentionAction,
}

#[derive(Debug, Subcommand)]
pub enum RetentionAction {
    /// Forget, in every tenant, the memories the rules select (each tenant's run audited).
    Run {
        /// Only list what would be forgotten (counts, and up to 1000 ids per tenant and rule).
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn retention(g: &Global, a: RetentionArgs) -> Result<()> {
    let RetentionAction::Run { dry_run } = a.action;
    if g.retention.is_empty() {
        return Err(Error::InvalidInput(
            "no retention rules: give --retention SOURCE=AGE (e.g. thinking=90d) or [retention] rules in the configuration".into(),
        )
        .into());
    }
    let (engine, _) = g.open().await?;
    let pb = output::progress(0, "forgetting", g.json || dry_run);
    let report = engine
        .apply_retention(&g.retention, dry_run, |n| pb.set_position(n))
        .await?;
    pb.finish_and_clear();
    if g.json {
        return output::json(&report);
    }
    for h in &report.hits {
        println!(
            "{:<24} {:<10} {:>8} memories created before {}",
            h.tenant.as_str(),
            h.source,
            h.memories,
            h.before
        );
        if dry_run {
            for id in &h.ids {
                println!("    {id}");
            }
        }
    }
    let total: u64 = report.hits.iter().map(|h| h.memories).sum();
    if dry_run {
        println!("would forget {total} memories (dry run: nothing was changed)");
    } else {
        println!("forgot {} memories", report.forgotten);
    }
    Ok(())
}

/// Puts retention under `jobs` (named `retention`): at start, then every hour.
pub fn spawn_retention(
    engine: &continuum_engine::Engine,
    rules: Vec<continuum_engine::RetentionRule>,
    jobs: &continuum_ops::Supervisor,
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let engine = engine.clone();
    jobs.spawn(
        "retention",
        continuum_ops::Backoff::default(),
        move |stop| {
            let engine = engine.clone();
            let rules = rules.clone();
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    let r = engine
                        .apply_retention(&rules, false, |_| {})
                        .await
                        .map_err(|e| format!("retention: {e}"))?;
                    if r.forgotten > 0 {
                        tracing::info!(forgotten = r.forgotten, "retention forgot old memories");
                    }
                }
            }
        },
    )
    .map_err(|e| Error::Internal(e).into())
}
