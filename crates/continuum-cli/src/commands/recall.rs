//! `recall` and `search`.

use super::FilterArgs;
use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;
use continuum_engine::{RecallRequest, SearchRequest};

#[derive(Debug, Args)]
pub struct RecallArgs {
    /// The message to find relevant memories for.
    pub query: String,
    /// Token budget of the context block (about 4 bytes of text per token).
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<usize>,
    /// How many memories to rank (default 10, at most 100).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the ranked memories with their per-signal scores instead of the context block.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    /// Results per page (at most 100).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Results to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub async fn recall(g: &Global, a: RecallArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open_semantic().await?;
    let req = RecallRequest {
        query: a.query,
        budget_tokens: a.budget,
        limit: a.limit,
        filter: a.filter.to_filter()?,
    };
    let r = engine.recall(&tenant, &req).await?;
    if g.json {
        return output::json(&r);
    }
    if a.explain {
        if r.memories.is_empty() {
            println!("nothing relevant remembered");
        }
        for (i, m) in r.memories.iter().enumerate() {
            println!(
                "{:>2}. {:.3}  lexical {:.2}  semantic {:.2}  graph {:.2}  recency {:.2}  [{}] {}",
                i + 1,
                m.score,
                m.signals.lexical,
                m.signals.semantic,
                m.signals.graph,
                m.signals.recency,
                m.source,
                output::preview(&m.content, 80)
            );
        }
        if !r.concepts.is_empty() {
            let names: Vec<String> = r
                .concepts
                .iter()
                .map(|c| format!("{} ({:.2}, depth {})", c.name, c.activation, c.depth))
                .collect();
            println!("concepts: {}", names.join(", "));
        }
        semantic_note(&engine, &tenant, &r).await?;
        return Ok(());
    }
    semantic_note(&engine, &tenant, &r).await?;
    if r.context.is_empty() {
        println!("nothing relevant remembered");
    } else {
        println!("{}", r.context);
    }
    Ok(())
}

/// On standard error: why vectors were not used, or how many memories still lack one.
async fn semantic_note(
    engine: &continuum_engine::Engine,
    tenant: &continuum_core::TenantId,
    r: &continuum_engine::Recall,
) -> Result<()> {
    let Some(sem) = &r.semantic else {
        return Ok(());
    };
    if let Some(e) = &sem.error {
        eprintln!("note: ranked without vectors: {e}");
        return Ok(());
    }
    let status = engine.embedding_status(tenant).await?;
    if status.pending > 0 {
        eprintln!(
            "note: {} of {} memories have no {} vector yet and were ranked by text and concepts only; \
             `continuum reindex` (or a running `continuum serve`/`mcp`) embeds them",
            status.pending, status.memories, sem.model
        );
    }
    Ok(())
}

pub async fn search(g: &Global, a: SearchArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let req = SearchRequest {
        query: a.query,
        filter: a.filter.to_filter()?,
        limit: Some(a.limit),
        offset: a.offset,
    };
    let hits = engine.search(&tenant, &req).await?;
    if g.json {
        return output::json(&hits);
    }
    if hits.is_empty() {
        println!("no matches");
    }
    for h in hits {
        println!("{:>7.3}  {}", h.score, output::memory_line(&h.memory));
    }
    Ok(())
}
