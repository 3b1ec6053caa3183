//! `list`, `get`, `forget`.

use super::FilterArgs;
use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;
use continuum_core::store::{ForgetSelector, Order, PageRequest};
use continuum_core::{Error, MemoryId, SessionId};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Memories per page (at most 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Continue after this cursor (printed by the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub oldest_first: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Memory ids to forget.
    pub ids: Vec<String>,
    /// Forget every memory of this session.
    #[arg(long, conflicts_with = "ids")]
    pub session: Option<String>,
    /// Forget everything of the tenant (needs --yes).
    #[arg(long, conflicts_with_all = ["ids", "session"])]
    pub all: bool,
    /// Confirm --all.
    #[arg(long)]
    pub yes: bool,
}

pub async fn list(g: &Global, a: ListArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let page = PageRequest {
        limit: a.limit,
        cursor: a.cursor,
        order: if a.oldest_first {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        },
    };
    let p = engine.list(&tenant, &a.filter.to_filter()?, &page).await?;
    if g.json {
        return output::json(&p);
    }
    if p.items.is_empty() {
        println!("no memories");
    }
    for m in &p.items {
        println!("{}", output::memory_line(m));
    }
    if let Some(c) = p.next_cursor {
        println!("more: --cursor {c}");
    }
    Ok(())
}

pub async fn get(g: &Global, a: GetArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let id: MemoryId = a.id.parse()?;
    let (engine, _) = g.open().await?;
    let m = engine.get(&tenant, id).await?;
    if g.json {
        return output::json(&m);
    }
    println!("id:         {}", m.id);
    println!("source:     {}", m.source);
    println!("kind:       {}", m.kind);
    println!("created_at: {}", m.created_at);
    if let Some(s) = &m.session {
        println!("session:    {s}");
    }
    if let Some(s) = &m.superseded_by {
        println!("superseded: by {s}");
    }
    if !m.metadata.is_empty() {
        println!(
            "metadata:   {}",
            serde_json::Value::Object(m.metadata.clone())
        );
    }
    println!("hash:       {}", m.content_hash);
    println!();
    println!("{}", m.content);
    Ok(())
}

pub async fn forget(g: &Global, a: ForgetArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let what = if a.all {
        if !a.yes {
            return Err(Error::InvalidInput(format!(
                "forget --all deletes every memory of tenant '{tenant}'; add --yes to confirm"
            ))
            .into());
        }
        ForgetSelector::All
    } else if let Some(s) = a.session {
        ForgetSelector::Session(SessionId::new(s)?)
    } else if !a.ids.is_empty() {
        let ids = a
            .ids
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<MemoryId>, _>>()?;
        ForgetSelector::Ids(ids)
    } else {
        return Err(Error::InvalidInput(
            "say what to forget: memory ids, --session S, or --all --yes".into(),
        )
        .into());
    };
    let (engine, _) = g.open().await?;
    let n = engine.forget(&tenant, &what).await?;
    if g.json {
        return output::json(&serde_json::json!({ "forgotten": n }));
    }
    println!("forgot {n} memories");
    Ok(())
}
