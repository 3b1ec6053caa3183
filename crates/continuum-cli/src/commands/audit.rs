//! `audit`: the audit log, offline against the store (an operator's view: every tenant's
//! entries and the server's own): verify its hash chain, show the latest entries, export it
//! for a SIEM.

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use continuum_core::Error;
use continuum_core::audit::AuditView;
use continuum_core::keys::Caller;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain from the first entry to the last; names the first entry altered,
    /// removed or reordered (exit code 5), and prints the head (position and hash) otherwise.
    Verify,
    /// The latest entries, oldest first (one JSON object per line with --json).
    Tail {
        /// How many of the latest entries.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Keep printing new entries as they are written.
        #[arg(long)]
        follow: bool,
    },
    /// Every entry after --since, for a SIEM or an archive: JSON Lines (the entries with their
    /// canonical body and hashes, which `verify` checks), RFC 5424 syslog lines, or CEF lines.
    Export {
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "syslog", "cef"])]
        format: String,
        /// Entries after this position.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
}

const PAGE: usize = 1000;

fn print_entry(g: &Global, v: &AuditView) -> Result<()> {
    if g.json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        println!(
            "{:>7}  {}  {:<22} {:<8} {:<22} {:<16} {}",
            v.seq,
            v.at,
            v.action,
            v.outcome,
            v.actor,
            v.tenant.as_deref().unwrap_or("-"),
            v.details
        );
    }
    Ok(())
}

pub async fn audit(g: &Global, a: AuditArgs) -> Result<()> {
    let (engine, _) = g.open().await?;
    let operator = Caller::local(g.tenant()?);
    match a.action {
        AuditAction::Verify => {
            let head = engine.audit_head(operator.clone()).await?;
            let pb = output::progress(head, "verifying", g.json);
            let report = engine
                .verify_audit(operator, |n| pb.set_position(n))
                .await?;
            pb.finish_and_clear();
            if g.json {
                output::json(&report)?;
            }
            match &report.fault {
                None => {
                    if !g.json {
                        println!(
                            "the audit log is intact: {} entries; head {} {}",
                            report.entries, report.head_seq, report.head_hash
                        );
                    }
                    Ok(())
                }
                Some(f) => Err(Error::Conflict(format!(
                    "the audit log is broken at entry {} ({}): {}",
                    f.seq, f.problem, f.detail
                ))
                .into()),
            }
        }
        AuditAction::Tail { limit, follow } => {
            if limit == 0 || limit > 100_000 {
                return Err(Error::InvalidInput("--limit must be 1 to 100000".into()).into());
            }
            let head = engine.audit_head(operator.clone()).await?;
            let mut after = head.saturating_sub(limit);
            loop {
                let page = engine.audit_log(operator.clone(), after, PAGE).await?;
                for v in &page {
                    print_entry(g, v)?;
                    after = v.seq;
                }
                std::io::stdout().flush().ok();
                if page.len() < PAGE {
                    if !follow {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        AuditAction::Export {
            format,
            since,
            output: path,
        } => {
            let mut out: Box<dyn Write> = match &path {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            let mut after = since;
            let mut written = 0u64;
            loop {
                let page = engine.audit_entries(operator.clone(), after, PAGE).await?;
                for e in &page {
                    let line = match format.as_str() {
                        "jsonl" => serde_json::to_string(e)?,
                        "syslog" => e.view()?.to_syslog(&host),
                        _ => e.view()?.to_cef(env!("CARGO_PKG_VERSION")),
                    };
                    writeln!(out, "{line}")?;
                    after = e.seq;
                    written += 1;
                }
                if page.len() < PAGE {
                    break;
                }
            }
            out.flush()?;
            if path.is_some() {
                eprintln!("exported {written} audit entries ({format})");
            }
            Ok(())
        }
    }
}
