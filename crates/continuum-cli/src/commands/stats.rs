//! `stats`, `sessions`, `decisions`.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct PageArgs {
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

pub async fn stats(g: &Global) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, store) = g.open().await?;
    let s = engine.stats(&tenant).await?;
    if g.json {
        return output::json(&s);
    }
    println!("tenant:     {}", s.tenant);
    println!("store:      {} ({})", s.backend, store.describe());
    println!("memories:   {}", s.store.memories);
    println!("sessions:   {}", s.store.sessions);
    println!("concepts:   {}", s.store.concepts);
    println!("links:      {}", s.store.links);
    println!("decisions:  {}", s.store.decisions);
    println!("changes:    {}", s.store.change_seq);
    for v in &s.vectors {
        println!(
            "vectors:    {} of {} (dimension {})",
            v.count, v.model, v.dim
        );
    }
    if let Some(b) = s.store.store_bytes {
        println!(
            "size:       {:.1} MiB (all tenants)",
            b as f64 / (1024.0 * 1024.0)
        );
    }
    println!("schema:     v{}", s.store.schema_version);
    Ok(())
}

pub async fn sessions(g: &Global, a: PageArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let list = engine.sessions(&tenant, a.limit, a.offset).await?;
    if g.json {
        return output::json(&list);
    }
    if list.is_empty() {
        println!("no sessions");
    }
    for s in list {
        println!(
            "{}  {} .. {}  {} memories",
            s.id, s.started_at, s.last_at, s.memories
        );
    }
    Ok(())
}

pub async fn decisions(g: &Global, a: PageArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let list = engine.decisions(&tenant, a.limit, a.offset).await?;
    if g.json {
        return output::json(&list);
    }
    if list.is_empty() {
        println!("no decisions");
    }
    for d in list {
        println!("{}  {}", d.created_at, d.text);
    }
    Ok(())
}
