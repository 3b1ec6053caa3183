//! `import`: a dump written by `export`, or conversation history (`--turns`).
//!
//! Two passes over the file: the first parses and validates every line and reports bad ones
//! by line number; nothing is written unless every line is good (or `--skip-bad` is given).
//! The second pass writes in batches, one transaction each, with a progress bar.

use crate::app::Global;
use crate::output;
use anyhow::{Context, Result};
use clap::Args;
use continuum_core::memory::Turn;
use continuum_core::{Error, TenantId};
use continuum_engine::{EXPORT_FORMAT, EXPORT_VERSION, Engine, ExportRecord, ImportOutcome};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (`-` for standard input).
    pub file: PathBuf,
    /// The file is conversation history: one turn per line,
    /// {"user_message", "ai_response", "thinking"?, "session_id"?, "metadata"?, "timestamp"?}.
    #[arg(long)]
    pub turns: bool,
    /// Import the good lines and report the bad ones, instead of refusing the whole file.
    #[arg(long)]
    pub skip_bad: bool,
    /// Lines per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

/// The lines of the input, kept in memory only when it comes from standard input.
#[derive(Clone)]
enum Input {
    File(PathBuf),
    Stdin(std::sync::Arc<Vec<u8>>),
}

impl Input {
    /// A fresh reader from the start (standard input is replayed from memory).
    fn reader(&self) -> Result<Box<dyn BufRead + Send>> {
        Ok(match self {
            Input::File(p) => Box::new(BufReader::new(
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
            )),
            Input::Stdin(buf) => Box::new(std::io::Cursor::new(buf.as_ref().clone())),
        })
    }
}

/// Reads non-blank lines with their 1-based numbers; invalid UTF-8 is reported per line.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    n: usize,
}

impl Lines {
    fn new(input: &Input) -> Result<Self> {
        Ok(Lines {
            reader: input.reader()?,
            buf: Vec::new(),
            n: 0,
        })
    }

    fn next_line(&mut self) -> Result<Option<(usize, std::result::Result<&str, String>)>> {
        loop {
            self.buf.clear();
            if self
                .reader
                .read_until(b'\n', &mut self.buf)
                .context("reading the import file")?
                == 0
            {
                return Ok(None);
            }
            self.n += 1;
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            match std::str::from_utf8(&self.buf) {
                Ok(s) if s.trim().is_empty() => continue,
                Ok(_) => break,
                Err(e) => return Ok(Some((self.n, Err(format!("not valid UTF-8 ({e})"))))),
            }
        }
        let text = std::str::from_utf8(&self.buf).expect("checked above");
        Ok(Some((self.n, Ok(text))))
    }
}

enum Parsed {
    Header,
    Record(ExportRecord),
    /// A turn with its identity ([`continuum_engine::turn_key`]).
    Turn(Turn, String),
}

fn parse_line(
    engine: &Engine,
    turns: bool,
    first: bool,
    text: &str,
) -> std::result::Result<Parsed, String> {
    if turns {
        // An optional `id` beside the turn's own fields: the turn's identity.
        let mut v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a turn: {e}"))?;
        let id = match v.as_object_mut().and_then(|o| o.remove("id")) {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => return Err("a turn's id must be a string".into()),
        };
        let t: Turn = serde_json::from_value(v).map_err(|e| format!("not a turn: {e}"))?;
        engine.validate_turn(&t).map_err(|e| e.to_string())?;
        let key = continuum_engine::turn_key(id.as_deref(), &t).map_err(|e| e.to_string())?;
        return Ok(Parsed::Turn(t, key));
    }
    let r: ExportRecord = serde_json::from_str(text).map_err(|e| {
        if serde_json::from_str::<Turn>(text).is_ok() {
            "this is a conversation turn, not a dump record; import history with --turns"
                .to_string()
        } else {
            format!("not a dump record: {e}")
        }
    })?;
    match (&r, first) {
        (ExportRecord::Header(h), true) => {
            if h.format != EXPORT_FORMAT || h.version > EXPORT_VERSION {
                return Err(format!(
                    "dump format {} v{} is not readable by this build ({EXPORT_FORMAT} v{EXPORT_VERSION})",
                    h.format, h.version
                ));
            }
            Ok(Parsed::Header)
        }
        (ExportRecord::Header(_), false) => Err("a header may only be the first line".into()),
        (_, true) => Err(
            "the first line of a dump must be its header (is this conversation history? then add --turns)"
                .into(),
        ),
        _ => {
            engine.validate_record(&r).map_err(|e| e.to_string())?;
            Ok(Parsed::Record(r))
        }
    }
}

#[derive(Default, Serialize)]
struct Report {
    lines: usize,
    bad_lines: Vec<BadLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turns: Option<TurnsImported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dump: Option<ImportOutcome>,
}

/// Totals of a history import (the per-turn ids are not kept: a history may hold millions).
#[derive(Debug, Default, Serialize)]
struct TurnsImported {
    turns: u64,
    /// Turns not stored again: already in the store (an earlier run), or repeated in the file.
    skipped: u64,
    memories: u64,
    concepts_created: u64,
    links_created: u64,
    links_strengthened: u64,
    decisions: u64,
}

#[derive(Serialize)]
struct BadLine {
    line: usize,
    error: String,
}

pub async fn import(g: &Global, a: ImportArgs) -> Result<()> {
    let tenant = g.tenant()?;
    if a.batch == 0 || a.batch > 10_000 {
        return Err(Error::InvalidInput("--batch must be between 1 and 10000".into()).into());
    }
    let input = if a.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Input::Stdin(std::sync::Arc::new(buf))
    } else {
        if !a.file.is_file() {
            return Err(Error::InvalidInput(format!(
                "{} is not a readable file",
                a.file.display()
            ))
            .into());
        }
        Input::File(a.file.clone())
    };
    let (engine, _) = g.open().await?;

    // Pass 1: validate everything before writing anything.
    let mut report = Report::default();
    let mut first = true;
    let mut lines = Lines::new(&input)?;
    while let Some((n, line)) = lines.next_line()? {
        let parsed = line.and_then(|text| parse_line(&engine, a.turns, first, text));
        first = false;
        match parsed {
            Ok(_) => report.lines += 1,
            Err(error) => report.bad_lines.push(BadLine { line: n, error }),
        }
    }
    let bad: BTreeSet<usize> = report.bad_lines.iter().map(|b| b.line).collect();
    if !bad.is_empty() {
        for b in report.bad_lines.iter().take(10) {
            eprintln!("line {}: {}", b.line, b.error);
        }
        if report.bad_lines.len() > 10 {
            eprintln!("… and {} more bad lines", report.bad_lines.len() - 10);
        }
        if !a.skip_bad {
            return Err(Error::InvalidInput(format!(
                "{} bad line(s) in {}; nothing was imported (fix them, or pass --skip-bad to import the rest)",
                bad.len(),
                a.file.display()
            ))
            .into());
        }
    }
    if !a.turns && report.lines == 0 && bad.is_empty() {
        return Err(Error::InvalidInput(format!("{} is empty", a.file.display())).into());
    }

    // Pass 2: write in batches.
    let pb = output::progress(report.lines as u64, "importing", g.json);
    if a.turns {
        report.turns = Some(import_turns(&engine, &tenant, input, bad, a.batch, &pb).await?);
        pb.finish_and_clear();
        refresh_statistics(&engine).await;
        return finish(g, report);
    }
    let mut records: Vec<ExportRecord> = Vec::new();
    let mut dumped = ImportOutcome::default();
    let mut first = true;
    let mut lines = Lines::new(&input)?;
    while let Some((n, line)) = lines.next_line()? {
        let is_first = std::mem::replace(&mut first, false);
        if bad.contains(&n) {
            continue;
        }
        // The file was validated above; a line that fails now changed under us.
        let parsed = line
            .and_then(|text| parse_line(&engine, false, is_first, text))
            .map_err(|e| Error::InvalidInput(format!("line {n} changed during import: {e}")))?;
        match parsed {
            Parsed::Record(r) => records.push(r),
            Parsed::Header | Parsed::Turn(..) => pb.inc(1),
        }
        if records.len() >= a.batch {
            flush_records(&engine, &tenant, &mut records, &mut dumped, &pb).await?;
        }
    }
    flush_records(&engine, &tenant, &mut records, &mut dumped, &pb).await?;
    pb.finish_and_clear();
    refresh_statistics(&engine).await;

    report.dump = Some(dumped);
    finish(g, report)
}

/// After an import, the store's planner statistics (PostgreSQL: without them the first
/// recalls planned for empty tables and took seconds). A failure is reported, not fatal: the
/// import stands.
async fn refresh_statistics(engine: &Engine) {
    if let Err(e) = engine.refresh_store_statistics().await {
        eprintln!("warning: could not refresh the store's statistics after the import: {e}");
    }
}

fn finish(g: &Global, report: Report) -> Result<()> {
    if g.json {
        return output::json(&report);
    }
    match (&report.turns, &report.dump) {
        (Some(t), _) => println!(
            "imported {} turns ({} already stored, skipped): {} memories, {} new concepts, {} new links, {} strengthened, {} decisions",
            t.turns,
            t.skipped,
            t.memories,
            t.concepts_created,
            t.links_created,
            t.links_strengthened,
            t.decisions
        ),
        (_, Some(d)) => println!(
            "imported {} memories ({} already present), {} links, {} decisions, {} vectors",
            d.memories_added, d.memories_skipped, d.links, d.decisions, d.vectors
        ),
        _ => {}
    }
    if !report.bad_lines.is_empty() {
        println!("skipped {} bad lines", report.bad_lines.len());
    }
    Ok(())
}

async fn flush_records(
    engine: &Engine,
    tenant: &TenantId,
    records: &mut Vec<ExportRecord>,
    total: &mut ImportOutcome,
    pb: &indicatif::ProgressBar,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len() as u64;
    let out = engine.import(tenant, std::mem::take(records)).await?;
    total.memories_added += out.memories_added;
    total.memories_skipped += out.memories_skipped;
    total.links += out.links;
    total.decisions += out.decisions;
    total.vectors += out.vectors;
    pb.inc(n);
    Ok(())
}

/// History import: a reader thread parses and prepares batches ahead while this task writes.
/// Turns the store already holds (an interrupted run's) or that repeat an earlier line are
/// skipped: each batch is checked against the store and against the batches still in flight.
async fn import_turns(
    engine: &Engine,
    tenant: &TenantId,
    input: Input,
    bad: BTreeSet<usize>,
    batch: usize,
    pb: &indicatif::ProgressBar,
) -> Result<TurnsImported> {
    let reader_engine = engine.clone();
    let reader_tenant = tenant.clone();
    let runtime = tokio::runtime::Handle::current();
    let skipped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (reader_skipped, reader_pb) = (skipped.clone(), pb.clone());
    // The keys of the last batches handed on: prepared, queued or being written, so not yet
    // visible in the store (the pipeline holds at most two ahead of the one being written).
    let mut recent: std::collections::VecDeque<std::collections::HashSet<String>> =
        std::collections::VecDeque::new();
    let mut lines = Lines::new(&input)?;
    let mut done = false;
    let batches = std::iter::from_fn(move || -> Option<Result<crate::pipeline::KeyedTurns>> {
        loop {
            if done {
                return None;
            }
            let mut turns = Vec::with_capacity(batch);
            while turns.len() < batch {
                let (n, line) = match lines.next_line() {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                };
                if bad.contains(&n) {
                    continue;
                }
                // The file was validated above; a line that fails now changed under us.
                match line.and_then(|text| parse_line(&reader_engine, true, false, text)) {
                    Ok(Parsed::Turn(t, key)) => turns.push((t, key)),
                    Ok(_) => {}
                    Err(e) => {
                        done = true;
                        return Some(Err(Error::InvalidInput(format!(
                            "line {n} changed during import: {e}"
                        ))
                        .into()));
                    }
                }
            }
            if turns.is_empty() {
                return None;
            }
            let keys: Vec<String> = turns.iter().map(|(_, k)| k.clone()).collect();
            let held = match runtime.block_on(reader_engine.imported_turns(&reader_tenant, &keys)) {
                Ok(held) => held,
                Err(e) => {
                    done = true;
                    return Some(Err(e.into()));
                }
            };
            let mut fresh = std::collections::HashSet::new();
            let before = turns.len();
            turns.retain(|(_, k)| {
                !held.contains(k)
                    && !recent.iter().any(|r| r.contains(k))
                    && fresh.insert(k.clone())
            });
            let dropped = (before - turns.len()) as u64;
            reader_skipped.fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
            reader_pb.inc(dropped);
            if turns.is_empty() {
                continue;
            }
            recent.push_back(fresh);
            if recent.len() > 4 {
                recent.pop_front();
            }
            return Some(Ok(turns.into_iter().map(|(t, k)| (t, Some(k))).collect()));
        }
    });
    let (mut rx, handle) = crate::pipeline::prepare_ahead(engine, batches);
    let mut total = TurnsImported::default();
    while let Some(prepared) = rx.recv().await {
        let prepared = prepared?;
        let n = prepared.turns();
        let out = engine.apply_turns(tenant, prepared).await?;
        total.turns += out.turns;
        total.memories += out.memory_ids.len() as u64;
        total.concepts_created += out.concepts_created;
        total.links_created += out.links_new;
        total.links_strengthened += out.links_strengthened;
        total.decisions += out.decisions_detected;
        pb.inc(n);
    }
    let _ = handle.join();
    total.skipped = skipped.load(std::sync::atomic::Ordering::Relaxed);
    Ok(total)
}
