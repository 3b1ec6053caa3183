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
    // A libSQL replica: where it stands against its primary.
    let replica = match &store {
        crate::app::Backend::Libsql {
            replica: Some(r), ..
        } => Some(r.status(&engine).await?),
        _ => None,
    };
    if g.json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(r) = &replica {
            v["backend"] = "libsql".into();
            v["replica"] = serde_json::to_value(r)?;
        }
        return output::json(&v);
    }
    println!("tenant:     {}", s.tenant);
    let backend = if matches!(store, crate::app::Backend::Libsql { .. }) {
        "libsql"
    } else {
        s.backend
    };
    println!("store:      {} ({})", backend, store.describe());
    if let Some(r) = &replica {
        println!(
            "replica:    local log {} (journaled {}), {} changes not on the primary, primary revision {}, {} of {} remote events applied{}",
            r.local_head,
            r.journaled_through,
            r.unpushed_changes,
            r.primary_revision.as_deref().unwrap_or("never reached"),
            r.remote_applied,
            r.remote_events,
            if r.behind { ", BEHIND" } else { "" }
        );
        if let Some(e) = &r.last_error {
            println!("last sync:  failed: {e}");
        }
    }
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
