//! `bench backup`: how fast a store is backed up, verified and restored, how small the backup
//! is, and what a backup running beside recall costs recall.
//!
//! A scratch store (SQLite, or a PostgreSQL schema with --store) learns `--memories`
//! memories (two per turn). Recall latency is measured idle, then again while `backup create`
//! runs in the same process (the scheduled job's situation). Then `verify` and `restore` (into
//! a fresh SQLite directory) are timed. The destination is a local directory, so the figures
//! are Continuum's own work (snapshot, compression, encryption, hashing, integrity check), not
//! a network's.

use super::throughput::{Latency, latency};
use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_backup::{CreateOptions, Destination, Encryption, Keys, Quiet, Target};
use continuum_core::TenantId;
use continuum_engine::RecallRequest;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// Memories in the store (two per learned turn).
    #[arg(long, default_value_t = 100_000)]
    pub memories: usize,
    /// Recalls measured idle (the ones during the backup go on until it ends).
    #[arg(long, default_value_t = 5000)]
    pub recalls: usize,
    /// Encrypt with age to a generated X25519 recipient (the default), with a passphrase
    /// (adds about a second of scrypt to create and to open), or not at all.
    #[arg(long, default_value = "x25519", value_parser = ["x25519", "passphrase", "none"])]
    pub encryption: String,
    /// Memories learned after the full backup, then backed up incrementally and restored
    /// through the chain (0: no incremental part).
    #[arg(long, default_value_t = 10_000)]
    pub incremental_memories: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Incremental {
    memories: usize,
    events: u64,
    stored_mb: f64,
    create_seconds: f64,
    /// Restoring the chain: the full backup, then the incremental one replayed.
    restore_chain_seconds: f64,
    /// The replay alone: the chain's restore less the full backup's restore.
    replay_events_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Step {
    seconds: f64,
    /// Plain (uncompressed) snapshot bytes per second.
    mb_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    kind: &'static str,
    encryption: String,
    memories: u64,
    store_mb: f64,
    plain_mb: f64,
    stored_mb: f64,
    /// Stored bytes over the store's bytes on disk.
    ratio_to_store: f64,
    create: Step,
    verify: Step,
    restore: Step,
    recall_idle_ms: Latency,
    recall_during_backup_ms: Latency,
    recalls_during_backup: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    incremental: Option<Incremental>,
}

pub async fn backup(g: &Global, a: BackupArgs) -> Result<()> {
    if a.memories < 2 || a.recalls < 10 {
        return Err(continuum_core::Error::InvalidInput(
            "--memories must be at least 2 and --recalls at least 10".into(),
        )
        .into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, backend) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let tenant = TenantId::new("bench")?;
    let turns = a.memories / 2;
    let mut text_gen = super::learn_generated(&engine, &tenant, turns, a.seed, g.json).await?;
    let store_bytes = backend.disk_bytes(&engine, &tenant).await?;
    let memories = engine.stats(&tenant).await?.store.memories;

    for _ in 0..20 {
        engine
            .recall(&tenant, &RecallRequest::new(text_gen.query()))
            .await?;
    }
    let mut idle = Vec::with_capacity(a.recalls);
    for _ in 0..a.recalls {
        let req = RecallRequest::new(text_gen.query());
        let t0 = Instant::now();
        engine.recall(&tenant, &req).await?;
        idle.push(t0.elapsed().as_secs_f64() * 1000.0);
    }

    let work = tempfile::tempdir()?;
    let keyfile = work.path().join("bench.key");
    let (encryption, keys) = match a.encryption.as_str() {
        "passphrase" => {
            let p = continuum_backup::crypt::passphrase("bench passphrase")?;
            (
                Encryption::Passphrase(p.clone()),
                Keys {
                    passphrase: Some(p),
                    identities: vec![],
                },
            )
        }
        "none" => (Encryption::None, Keys::default()),
        _ => {
            let recipient = continuum_backup::crypt::generate_identity(&keyfile)?;
            let mut keys = Keys::default();
            keys.add_identity_file(&keyfile)?;
            (Encryption::recipients(&[recipient])?, keys)
        }
    };
    let dest = Destination::Dir(work.path().join("backups"));
    let source = super::super::backup::source(&backend);
    let opts = CreateOptions {
        tenant: None,
        encryption,
        work_dir: None,
        incremental: false,
    };

    // The backup in a task of its own; recalls go on beside it until it ends.
    let started = Instant::now();
    let task = {
        let (engine, dest, opts, source) =
            (engine.clone(), dest.clone(), opts.clone(), source.clone());
        tokio::spawn(async move {
            continuum_backup::create(&engine, &source, &dest, &opts, &Quiet).await
        })
    };
    let mut during = Vec::new();
    while !task.is_finished() && during.len() < 10_000_000 {
        let req = RecallRequest::new(text_gen.query());
        let t0 = Instant::now();
        engine.recall(&tenant, &req).await?;
        during.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let m = task.await??;
    let create_secs = started.elapsed().as_secs_f64();
    if during.is_empty() {
        during.push(f64::NAN);
    }
    let recalls_during_backup = during.len();

    let t0 = Instant::now();
    continuum_backup::verify(&dest, &m.id, &keys, None, &Quiet).await?;
    let verify_secs = t0.elapsed().as_secs_f64();
    let (_, restore_secs) = timed_restore(&dest, &m.id, &keys).await?;

    let incremental = if a.incremental_memories >= 2 {
        let turns = a.incremental_memories / 2;
        super::learn_generated(&engine, &tenant, turns, a.seed + 1, g.json).await?;
        let t0 = Instant::now();
        let inc_opts = CreateOptions {
            incremental: true,
            ..opts.clone()
        };
        let inc = continuum_backup::create(&engine, &source, &dest, &inc_opts, &Quiet).await?;
        let create_seconds = t0.elapsed().as_secs_f64();
        let (r, restore_chain_seconds) = timed_restore(&dest, &inc.id, &keys).await?;
        let restored: u64 = r.tenants.iter().map(|t| t.memories).sum();
        let held = engine.stats(&tenant).await?.store.memories;
        if restored != held {
            return Err(continuum_core::Error::Internal(format!(
                "the chain restored {restored} memories; the store holds {held}"
            ))
            .into());
        }
        let events: u64 = inc.tenants.iter().map(|t| t.events).sum();
        Some(Incremental {
            memories: turns * 2,
            events,
            stored_mb: inc.stored.bytes as f64 / 1e6,
            create_seconds,
            restore_chain_seconds,
            replay_events_per_sec: events as f64 / (restore_chain_seconds - restore_secs).max(1e-3),
        })
    } else {
        None
    };

    let plain_mb = m.plain.bytes as f64 / 1e6;
    let step = |seconds: f64| Step {
        seconds,
        mb_per_sec: plain_mb / seconds.max(1e-9),
    };
    let report = Report {
        backend: backend.store().backend(),
        kind: m.kind.as_str(),
        encryption: m.encryption.scheme.clone(),
        memories,
        store_mb: store_bytes as f64 / 1e6,
        plain_mb,
        stored_mb: m.stored.bytes as f64 / 1e6,
        ratio_to_store: m.stored.bytes as f64 / store_bytes.max(1) as f64,
        create: step(create_secs),
        verify: step(verify_secs),
        restore: step(restore_secs),
        recall_idle_ms: latency(idle),
        recall_during_backup_ms: latency(during),
        recalls_during_backup,
        incremental,
    };
    scratch.finish(&backend).await?;
    if g.json {
        return crate::output::json(&report);
    }
    println!(
        "{} store, {} memories: {:.1} MB on disk, {} snapshot {:.1} MB, stored {:.1} MB ({:.0}% of the store, {})",
        report.backend,
        report.memories,
        report.store_mb,
        report.kind,
        report.plain_mb,
        report.stored_mb,
        report.ratio_to_store * 100.0,
        report.encryption
    );
    for (name, s) in [
        ("create", &report.create),
        ("verify", &report.verify),
        ("restore", &report.restore),
    ] {
        println!(
            "{name:<8} {:>7.2} s  {:>7.1} MB/s of snapshot",
            s.seconds, s.mb_per_sec
        );
    }
    println!(
        "recall idle p50 {:.2} ms, p95 {:.2} ms; during the backup ({} recalls) p50 {:.2} ms, p95 {:.2} ms",
        report.recall_idle_ms.p50,
        report.recall_idle_ms.p95,
        report.recalls_during_backup,
        report.recall_during_backup_ms.p50,
        report.recall_during_backup_ms.p95
    );
    if let Some(i) = &report.incremental {
        println!(
            "incremental: {} more memories, {} events, {:.1} MB stored, created in {:.2} s; the chain restored in {:.2} s (replay about {:.0} events/s)",
            i.memories,
            i.events,
            i.stored_mb,
            i.create_seconds,
            i.restore_chain_seconds,
            i.replay_events_per_sec
        );
    }
    Ok(())
}

/// Restores backup `id` into a fresh temporary SQLite directory; what it restored, and the
/// seconds it took.
async fn timed_restore(
    dest: &Destination,
    id: &str,
    keys: &Keys,
) -> Result<(continuum_backup::Restored, f64)> {
    let target = tempfile::tempdir()?;
    let t0 = Instant::now();
    let r = continuum_backup::restore(
        dest,
        id,
        keys,
        Target::SqliteFile(target.path().join(crate::app::STORE_FILE)),
        false,
        None,
        None,
        &Quiet,
    )
    .await?;
    Ok((r, t0.elapsed().as_secs_f64()))
}
