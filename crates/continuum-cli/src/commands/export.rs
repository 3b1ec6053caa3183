//! `export`: the tenant as JSON Lines, a consistent snapshot whose header records the event
//! position it reflects.

use crate::app::Global;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::Error;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub async fn export(g: &Global, a: ExportArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    let total = engine.stats(&tenant).await?.store.memories;
    let mut out: Box<dyn Write + Send> = match &a.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let to_stdout = a.output.is_none();
    let pb = crate::output::progress(total, "exporting", g.json && a.output.is_none());
    let mut sink = |r: &continuum_engine::ExportRecord| -> continuum_core::Result<()> {
        serde_json::to_writer(&mut out, r).map_err(|e| match e.io_error_kind() {
            Some(kind) => closed_or(std::io::Error::from(kind), to_stdout),
            None => Error::Internal(format!("writing the dump: {e}")),
        })?;
        out.write_all(b"\n").map_err(|e| closed_or(e, to_stdout))
    };
    let n = engine
        .export(&tenant, &mut sink, &mut |done| pb.set_position(done))
        .await?;
    if let Err(e) = out.flush() {
        return Err(closed_or(e, to_stdout).into());
    }
    pb.finish_and_clear();
    if let Some(p) = &a.output {
        if g.json {
            crate::output::json(&serde_json::json!({"memories": n, "output": p}))?;
        } else {
            eprintln!("exported {n} memories to {}", p.display());
        }
    }
    Ok(())
}

/// A write error; standard output closed by its reader (`export | head`) ends the process
/// quietly instead.
fn closed_or(e: std::io::Error, to_stdout: bool) -> Error {
    if to_stdout && e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    Error::Unavailable(format!("writing the dump: {e}"))
}
