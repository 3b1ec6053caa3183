//! `events`: the tenant's event log, oldest first, one event per line; `--follow` keeps
//! printing new ones as they are committed (by this process or any other).

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::event::{Event, EventRecord};
use continuum_engine::MAX_EVENTS_PAGE;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` asks the store for new events when it has seen none.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print the events after this position (0: from the start).
    #[arg(long, default_value = "0", value_parser = parse_since)]
    pub since: u64,
    /// Print at most this many events (without --follow), 1 to 100000.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Keep printing new events as they are committed, until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Every tenant's events, in store order (operators; works offline against the store).
    #[arg(long)]
    pub all_tenants: bool,
}

fn parse_since(s: &str) -> std::result::Result<u64, String> {
    continuum_core::event::parse_position(s).map_err(|e| e.to_string())
}

/// The most events one `events` call prints without `--follow`.
const MAX_LIMIT: usize = 100_000;

pub async fn events(g: &Global, a: EventsArgs) -> Result<()> {
    if a.limit == 0 || a.limit > MAX_LIMIT {
        anyhow::bail!("--limit must be between 1 and {MAX_LIMIT}");
    }
    let tenant = if a.all_tenants {
        None
    } else {
        Some(g.tenant()?)
    };
    let (engine, _) = g.open().await?;
    let mut after = a.since;
    let mut left = a.limit;
    let stdout = std::io::stdout();
    loop {
        let want = if a.follow {
            MAX_EVENTS_PAGE
        } else {
            left.min(MAX_EVENTS_PAGE)
        };
        let page = match &tenant {
            Some(t) => engine.events(t, after, want).await?,
            None => engine.events_all_tenants(after, want).await?,
        };
        let n = page.len();
        {
            let mut out = stdout.lock();
            for r in &page {
                let line = if g.json {
                    serde_json::to_string(r)?
                } else {
                    human(r, a.all_tenants)
                };
                // A closed pipe (`| head`) ends the command quietly.
                if writeln!(out, "{line}").is_err() {
                    return Ok(());
                }
            }
            out.flush().ok();
        }
        if let Some(last) = page.last() {
            after = last.seq;
        }
        if !a.follow {
            left -= n;
            if left == 0 || n < want {
                break;
            }
            continue;
        }
        if n < want {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                r = tokio::signal::ctrl_c() => {
                    r.context("waiting for Ctrl-C")?;
                    break;
                }
            }
        }
    }
    if !g.json && after == a.since && !a.follow {
        eprintln!("no events after position {}", a.since);
    }
    Ok(())
}

/// `seq  time  [tenant]  type  what`.
fn human(r: &EventRecord, with_tenant: bool) -> String {
    let tenant = if with_tenant {
        format!("{}  ", r.tenant)
    } else {
        String::new()
    };
    let what = match &r.event {
        Event::MemoryCreated {
            id,
            memory: Some(m),
            ..
        } => format!(
            "{id} {} {}",
            m.source,
            output::preview(
                &m.content.split_whitespace().collect::<Vec<_>>().join(" "),
                60
            )
        ),
        Event::MemoryCreated {
            id, memory: None, ..
        } => format!("{id} (forgotten since)"),
        Event::MemorySuperseded { id, by } => match by {
            Some(by) => format!("{id} by {by}"),
            None => id.to_string(),
        },
        Event::MemoryUpdated { id, superseded_by } => match superseded_by {
            Some(by) => format!("{id} superseded by {by}"),
            None => format!("{id} current again"),
        },
        Event::MemoryForgotten { id } => id.to_string(),
        Event::SessionForgotten { session, memories } => format!("{session} ({memories} memories)"),
        Event::ConceptCreated { key, kind, .. } => format!("{key} ({kind})"),
        Event::LinksStrengthened { links } => format!("{} links", links.len()),
        Event::ConceptsChanged { keys } => match keys {
            Some(k) => k.join(", "),
            None => "(unknown concepts)".into(),
        },
        Event::DecisionCreated {
            decision: Some(d), ..
        } => output::preview(&d.text, 60),
        Event::DecisionCreated { id, decision: None } => format!("{id} (forgotten since)"),
        Event::KeyCreated { prefix, scope, .. } => format!("{prefix} ({scope})"),
        Event::KeyRevoked { prefix } => prefix.clone(),
        Event::TenantCreated => String::new(),
        Event::TenantErased {
            memories,
            keys_revoked,
        } => format!("{memories} memories, {keys_revoked} keys revoked"),
    };
    format!(
        "{:>8}  {}  {tenant}{:<18}  {what}",
        r.seq,
        r.at,
        r.event.kind()
    )
}
