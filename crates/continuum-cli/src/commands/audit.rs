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
    /// With --checkpoint, also that the log still holds what a signed checkpoint recorded (a
    /// cut tail or a rewritten chain is found).
    Verify {
        /// A checkpoint file written by `serve --audit-checkpoint-dir` or `audit checkpoint`.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
        /// The signer's public key (`audit public-key` prints it); default: the public half
        /// of this machine's signing key.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// Verify the chain, then sign a checkpoint of it now and print it (or write it to
    /// --output).
    Checkpoint {
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// The public key checkpoints are verified with (NAME+KEYID+BASE64).
    PublicKey,
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
        AuditAction::PublicKey => {
            let key = g.audit_key()?;
            if g.json {
                return output::json(&serde_json::json!({ "public_key": key.public() }));
            }
            println!("{}", key.public());
            Ok(())
        }
        AuditAction::Checkpoint { output: path } => {
            let report = engine.verify_audit(operator, |_| {}).await?;
            if let Some(f) = &report.fault {
                return Err(Error::Conflict(format!(
                    "the audit log is broken at entry {} ({}): {}; no checkpoint signed",
                    f.seq, f.problem, f.detail
                ))
                .into());
            }
            if report.head_seq == 0 {
                return Err(Error::InvalidInput("the audit log is empty".into()).into());
            }
            let note = g.audit_key()?.sign(report.head_seq, &report.head_hash)?;
            match path {
                Some(p) => {
                    std::fs::write(&p, &note)
                        .with_context(|| format!("writing {}", p.display()))?;
                    eprintln!(
                        "checkpoint of {} entries written to {}",
                        report.head_seq,
                        p.display()
                    );
                }
                None => print!("{note}"),
            }
            Ok(())
        }
        AuditAction::Verify {
            checkpoint,
            public_key,
        } => {
            let checkpoint = match checkpoint {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    let key = match public_key {
                        Some(k) => continuum_audit::PublicKey::parse(&k)?,
                        None => continuum_audit::PublicKey::parse(&g.audit_key()?.public())?,
                    };
                    Some(continuum_audit::Checkpoint::verify(&text, &key)?)
                }
                None => None,
            };
            let head = engine.audit_head(operator.clone()).await?;
            let pb = output::progress(head, "verifying", g.json);
            let report = engine
                .verify_audit(operator, |n| pb.set_position(n))
                .await?;
            pb.finish_and_clear();
            let against = match &checkpoint {
                Some(c) if report.fault.is_none() => {
                    Some(continuum_audit::check(&engine, &Caller::local(g.tenant()?), c).await?)
                }
                _ => None,
            };
            if g.json {
                output::json(&serde_json::json!({
                    "entries": report.entries,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "fault": report.fault,
                    "checkpoint": checkpoint.as_ref().map(|c| serde_json::json!({
                        "size": c.size,
                        "head_hash": c.head_hash,
                        "signer": c.signer,
                        "holds": against == Some(continuum_audit::CheckpointCheck::Holds),
                    })),
                }))?;
            }
            match (&report.fault, against, &checkpoint) {
                (None, Some(continuum_audit::CheckpointCheck::Truncated { entries }), Some(c)) => {
                    Err(Error::Conflict(format!(
                        "the audit log was cut: the checkpoint signed by {} records {} entries, the log holds {entries}",
                        c.signer, c.size
                    ))
                    .into())
                }
                (None, Some(continuum_audit::CheckpointCheck::Rewritten), Some(c)) => {
                    Err(Error::Conflict(format!(
                        "the audit log was rewritten: entry {} no longer has the hash the checkpoint signed by {} records",
                        c.size, c.signer
                    ))
                    .into())
                }
                (None, _, _) => {
                    if !g.json {
                        println!(
                            "the audit log is intact: {} entries; head {} {}",
                            report.entries, report.head_seq, report.head_hash
                        );
                        if let Some(c) = &checkpoint {
                            println!(
                                "it holds the checkpoint signed by {} at {} entries",
                                c.signer, c.size
                            );
                        }
                    }
                    Ok(())
                }
                (Some(f), _, _) => Err(Error::Conflict(format!(
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
            let host = continuum_audit::syslog::host_name();
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
