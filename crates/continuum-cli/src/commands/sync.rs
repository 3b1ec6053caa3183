//! `sync`: keep --tenant level with a Continuum server (--remote); `sync status`, `sync reset`.

use crate::app::Global;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use continuum_core::Error;
use std::io::IsTerminal;

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// The cursors in both directions, the events waiting each way, the last success and error.
    Status {
        /// Do not ask the remote for its head (offline).
        #[arg(long)]
        offline: bool,
    },
    /// Forget the cursors kept for --remote, so the next sync starts from the beginning
    /// (after the remote was replaced or restored; applying is idempotent, nothing doubles).
    Reset,
    /// Give this store a new node id: run it on a copy of a store file before the copy syncs
    /// (the events it holds keep the old id, and count as applied). `backup restore` does it
    /// by itself.
    RenewNodeId,
}

fn remote(g: &Global) -> Result<continuum_sync::Remote> {
    g.sync_remote()?.ok_or_else(|| {
        Error::InvalidInput(
            "no remote: give --remote URL (or CONTINUUM_REMOTE, or [sync] remote in the configuration file)".into(),
        )
        .into()
    })
}

/// Whether `sync` acts on a libSQL replica: the store is one and no --remote is given.
fn libsql(g: &Global) -> Result<bool> {
    Ok(matches!(g.location()?, crate::app::StoreLocation::Libsql(_)) && g.sync_remote()?.is_none())
}

fn replica_of(
    backend: &crate::app::Backend,
) -> Result<std::sync::Arc<continuum_store_libsql::Replica>> {
    match backend {
        crate::app::Backend::Libsql {
            replica: Some(r), ..
        } => Ok(r.clone()),
        crate::app::Backend::Libsql { location, .. } => Err(Error::Conflict(format!(
            "the libSQL replica {} is synced by another process (a running `continuum serve` or \
             `continuum mcp` syncs it in the background); stop it to sync from here",
            location.journal().display()
        ))
        .into()),
        _ => Err(Error::InvalidInput("the store is not a libSQL replica".into()).into()),
    }
}

/// A libSQL replica's state, as `sync status` and `doctor` print it.
pub(crate) fn print_replica_status(s: &continuum_store_libsql::ReplicaStatus) {
    let unix = |t: Option<i64>| {
        t.map_or("never".to_string(), |t| {
            continuum_core::Timestamp(t * 1000).to_string()
        })
    };
    println!("primary         {}", s.primary);
    println!(
        "replica         {} (journal {})",
        s.replica.display(),
        s.journal.display()
    );
    println!("node            {}", s.node);
    println!(
        "local           log head {}, journaled through {}; {} changes not yet on the primary",
        s.local_head, s.journaled_through, s.unpushed_changes
    );
    println!(
        "primary         revision {}; {} events of other replicas, {} applied here",
        s.primary_revision.as_deref().unwrap_or("(never reached)"),
        s.remote_events,
        s.remote_applied
    );
    println!("last pull       {}", unix(s.last_pull_unix));
    println!("last push       {}", unix(s.last_push_unix));
    if let Some(e) = &s.last_error {
        println!("last error      {e}");
    }
    println!(
        "state           {}",
        if s.behind {
            "behind (run `continuum sync`)"
        } else {
            "level"
        }
    );
}

pub async fn sync(g: &Global, a: SyncArgs) -> Result<()> {
    let tenant = g.tenant()?;
    match a.command {
        None if libsql(g)? => {
            let (engine, backend) = g.open().await?;
            let replica = replica_of(&backend)?;
            let r = replica.sync(&engine).await?;
            if g.json {
                return output::json(&r);
            }
            println!(
                "synced the replica {} with {}: {} local events journaled, pushed; {} events of other replicas received, {} applied, {} already here ({} ms)",
                r.replica.display(),
                r.primary,
                r.journaled,
                r.received,
                r.applied,
                r.skipped,
                r.duration_ms
            );
            Ok(())
        }
        Some(SyncCommand::Status { .. }) if libsql(g)? => {
            let (engine, backend) = g.open().await?;
            let s = replica_of(&backend)?.status(&engine).await?;
            if g.json {
                return output::json(&s);
            }
            print_replica_status(&s);
            Ok(())
        }
        None => {
            let remote = remote(g)?;
            let (engine, _) = g.open().await?;
            let hidden = g.json || !std::io::stderr().is_terminal();
            let pull_bar = output::progress(0, "pull", hidden);
            let push_bar = output::progress(0, "push", hidden);
            let progress = |p: continuum_sync::Progress| match p {
                continuum_sync::Progress::Pulled {
                    done,
                    remote_head,
                    cursor,
                } => {
                    pull_bar.set_length(done + remote_head.saturating_sub(cursor));
                    pull_bar.set_position(done);
                }
                continuum_sync::Progress::Pushed { done } => {
                    push_bar.set_length(done);
                    push_bar.set_position(done);
                }
            };
            let out = continuum_sync::sync_once(&engine, &tenant, &remote, &progress).await;
            pull_bar.finish_and_clear();
            push_bar.finish_and_clear();
            let r = out?;
            if g.json {
                return output::json(&r);
            }
            println!(
                "synced {} with {}: pushed {} (applied {}, already there {}), pulled {} (applied {}, already here {}) in {} ms{}",
                tenant.as_str(),
                r.remote,
                r.pushed,
                r.remote_applied,
                r.remote_skipped,
                r.pulled,
                r.applied,
                r.skipped,
                r.duration_ms,
                if r.level {
                    ""
                } else {
                    "; not level yet (the server kept changing): run it again"
                }
            );
            Ok(())
        }
        Some(SyncCommand::Status { offline }) => {
            let remote = remote(g)?;
            let (engine, _) = g.open().await?;
            let s = continuum_sync::status(&engine, &tenant, &remote, !offline).await?;
            if g.json {
                return output::json(&s);
            }
            let opt = |v: Option<u64>| v.map_or("?".to_string(), |n| n.to_string());
            println!("remote          {}", s.remote);
            println!("node            {}", s.node);
            println!(
                "remote node     {}",
                s.remote_node.as_deref().unwrap_or("(not synced yet)")
            );
            println!(
                "push            acknowledged through {} of {}; {} events waiting",
                s.pushed_through, s.local_head, s.waiting_push
            );
            println!(
                "pull            applied through {} of {}; about {} positions waiting",
                s.pulled_through,
                opt(s.remote_head),
                opt(s.waiting_pull)
            );
            println!(
                "last success    {}",
                s.last_success.map_or("never".into(), |t| t.to_string())
            );
            if let Some(e) = &s.last_error {
                println!("last error      {e}");
            }
            if let Some(e) = &s.remote_error {
                println!("remote now      {e}");
            }
            Ok(())
        }
        Some(SyncCommand::RenewNodeId) => {
            let (engine, _) = g.open().await?;
            let old = engine.node_id().await?;
            let node = engine.renew_node_id(&tenant).await?;
            if g.json {
                return output::json(&serde_json::json!({"node": node, "previous": old}));
            }
            println!("node id {node} (was {old}); the events held here keep {old} as their origin");
            Ok(())
        }
        Some(SyncCommand::Reset) => {
            let remote = remote(g)?;
            let (engine, _) = g.open().await?;
            let Some(mut peer) = engine.sync_peer(remote.url(), &tenant).await? else {
                return Err(Error::NotFound(format!(
                    "{} was never synced with {}",
                    tenant.as_str(),
                    remote.url()
                ))
                .into());
            };
            peer.pushed_through = 0;
            peer.pulled_through = 0;
            peer.remote_node = None;
            peer.remote_tenant = None;
            engine.put_sync_peer(&peer).await?;
            if g.json {
                return output::json(&serde_json::json!({"reset": true, "remote": remote.url()}));
            }
            println!(
                "the next sync of {} with {} starts from the beginning",
                tenant.as_str(),
                remote.url()
            );
            Ok(())
        }
    }
}
