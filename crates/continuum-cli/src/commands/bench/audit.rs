//! `bench audit`: how fast audit entries are appended (one transaction each, as acts record
//! them, and in batches), and how fast `audit verify` walks the chain.

use crate::app::Global;
use anyhow::Result;
use clap::Args;
use continuum_core::Error;
use continuum_core::audit::AuditRecord;
use continuum_core::keys::Caller;
use continuum_core::{Clock, SystemClock, TenantId};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// Entries appended one transaction each.
    #[arg(long, default_value_t = 2_000)]
    pub single: usize,
    /// Entries appended in batches of --batch (to make a long chain quickly).
    #[arg(long, default_value_t = 200_000)]
    pub entries: usize,
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    single_appends_per_sec: f64,
    batched_appends_per_sec: f64,
    chain_entries: u64,
    verify_entries_per_sec: f64,
    verify_secs: f64,
}

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        at: SystemClock.now(),
        tenant: Some(TenantId::new(format!("t{}", i % 50)).expect("a valid id")),
        actor: format!("key:{:012x}", i),
        action: if i.is_multiple_of(3) {
            "auth.failed"
        } else {
            "key.created"
        },
        outcome: if i.is_multiple_of(3) { "refused" } else { "ok" },
        source: Some(format!("10.0.{}.{}", (i / 256) % 256, i % 256)),
        details: serde_json::json!({ "prefix": format!("{:012x}", i), "scope": "write" }),
    }
}

pub async fn audit(g: &Global, a: AuditArgs) -> Result<()> {
    if a.single == 0 || a.batch == 0 {
        return Err(Error::InvalidInput("--single and --batch must be positive".into()).into());
    }
    let scratch = super::Scratch::new(g, None)?;
    let (engine, store) = g
        .open_location(&scratch.location, g.engine_config())
        .await?;
    let s = store.store();
    let pb = crate::output::progress((a.single + a.entries) as u64, "appending", g.json);
    let t0 = Instant::now();
    for i in 0..a.single {
        s.append_audit(&[record(i)]).await?;
        pb.inc(1);
    }
    let single = a.single as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut done = 0;
    while done < a.entries {
        let n = a.batch.min(a.entries - done);
        let batch: Vec<AuditRecord> = (done..done + n).map(record).collect();
        s.append_audit(&batch).await?;
        done += n;
        pb.inc(n as u64);
    }
    let batched = if a.entries > 0 {
        a.entries as f64 / t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    pb.finish_and_clear();
    let operator = Caller::local(TenantId::new("bench")?);
    let t0 = Instant::now();
    let v = engine.verify_audit(operator, |_| {}).await?;
    let verify_secs = t0.elapsed().as_secs_f64();
    if let Some(f) = v.fault {
        return Err(Error::Internal(format!("the benchmark's chain is broken: {f:?}")).into());
    }
    let report = Report {
        backend: s.backend(),
        single_appends_per_sec: single,
        batched_appends_per_sec: batched,
        chain_entries: v.entries,
        verify_entries_per_sec: v.entries as f64 / verify_secs,
        verify_secs,
    };
    scratch.finish(&store).await?;
    if g.json {
        return crate::output::json(&report);
    }
    println!(
        "{} store: {:.0} appends/s one per transaction, {:.0}/s in batches of {}; verify walked {} entries in {:.2} s ({:.0} entries/s)",
        report.backend,
        report.single_appends_per_sec,
        report.batched_appends_per_sec,
        a.batch,
        report.chain_entries,
        report.verify_secs,
        report.verify_entries_per_sec
    );
    Ok(())
}
