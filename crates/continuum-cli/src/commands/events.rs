//! `events`: the tenant's event log, oldest first, one event per line; `--follow` keeps
//! printing new ones as they are committed (by this process or any other).

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use continuum_core::event::{Event, EventRecord};
use continuum_engine::MAX_EVENTS_PAGE;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` asks the store for new events when it has seen none.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub action: Option<EventsAction>,
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

#[derive(Debug, Subcommand)]
pub enum EventsAction {
    /// Consumers' named cursors: events a cursor has not passed are never compacted.
    Cursors,
    /// Create or move a named cursor (a consumer that reads the log outside Continuum).
    CursorSet {
        name: String,
        #[arg(value_parser = parse_since)]
        position: u64,
    },
    /// Delete a named cursor, letting its events be compacted.
    CursorDelete { name: String },
    /// Delete the events every cursor has passed that are older than --min-age.
    Compact {
        /// Keep at least this much history: 30m, 12h, 7d, 2w, or 0.
        #[arg(long, default_value = "7d", value_parser = parse_retention)]
        min_age: i64,
    },
}

/// "7d" → milliseconds; "0" keeps nothing beyond what cursors hold.
pub(crate) fn parse_retention(s: &str) -> std::result::Result<i64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    crate::commands::keys::parse_validity(s)
}

fn parse_since(s: &str) -> std::result::Result<u64, String> {
    continuum_core::event::parse_position(s).map_err(|e| e.to_string())
}

/// The most events one `events` call prints without `--follow`.
const MAX_LIMIT: usize = 100_000;

pub async fn events(g: &Global, a: EventsArgs) -> Result<()> {
    if let Some(action) = a.action {
        return manage(g, action).await;
    }
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

/// Cursors and compaction: operator actions on the whole store (offline).
async fn manage(g: &Global, action: EventsAction) -> Result<()> {
    let (engine, _) = g.open().await?;
    match action {
        EventsAction::Cursors => {
            let list = engine.event_cursors().await?;
            if g.json {
                return output::json(&list);
            }
            if list.is_empty() {
                println!("no cursors");
            }
            for c in list {
                println!("{:<24}  {:>10}  {}", c.name, c.position, c.updated_at);
            }
        }
        EventsAction::CursorSet { name, position } => {
            engine.set_event_cursor(&name, position).await?;
            if g.json {
                return output::json(&serde_json::json!({"name": name, "position": position}));
            }
            println!("cursor {name} at {position}");
        }
        EventsAction::CursorDelete { name } => {
            engine.delete_event_cursor(&name).await?;
            if g.json {
                return output::json(&serde_json::json!({"deleted": name}));
            }
            println!("deleted cursor {name}");
        }
        EventsAction::Compact { min_age } => {
            let c = engine.compact_events(min_age).await?;
            if g.json {
                return output::json(&c);
            }
            print!(
                "removed {} events; the log now starts after position {}",
                c.removed, c.compacted_through
            );
            match c.held_by {
                Some(name) => println!(" (held there by cursor {name})"),
                None => println!(),
            }
        }
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
        Event::KeyRevoked { prefix } | Event::KeyExpired { prefix } => prefix.clone(),
        Event::KeyRotated {
            prefix,
            successor,
            expires_at,
        } => format!("{prefix} → {successor} (old works until {expires_at})"),
        Event::TenantCreated => String::new(),
        Event::TenantErased {
            memories,
            keys_revoked,
        } => format!("{memories} memories, {keys_revoked} keys revoked"),
        Event::IntentionSaved { id, .. }
        | Event::BeliefSaved { id, .. }
        | Event::ContradictionSaved { id, .. }
        | Event::ClaimSaved { id, .. }
        | Event::SnapshotSaved { id, .. } => {
            use continuum_core::reflection::Record;
            match r.event.record() {
                None => format!("{id} (erased since)"),
                Some(rec) => {
                    let text = match &rec {
                        Record::Intention(i) => format!("p{} {}", i.priority, i.text),
                        Record::Belief(b) => format!("{} {}", b.domain, b.text),
                        Record::Contradiction(c) => {
                            format!("{} {} ~ {}", c.kind, c.earlier, c.later)
                        }
                        Record::Claim(c) => format!("{:.2} {}", c.confidence, c.text),
                        Record::Snapshot(g) => format!(
                            "{} concepts, {} links{}",
                            g.concepts,
                            g.links,
                            g.label
                                .as_ref()
                                .map(|l| format!(" ({l})"))
                                .unwrap_or_default()
                        ),
                    };
                    format!("{id} {} {}", rec.status(), output::preview(&text, 60))
                }
            }
        }
    };
    format!(
        "{:>8}  {}  {tenant}{:<18}  {what}",
        r.seq,
        r.at,
        r.event.kind()
    )
}
