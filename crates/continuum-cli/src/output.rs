//! Printing: JSON for machines, short aligned text for people, progress bars on stderr.

use continuum_core::Memory;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        // The reader went away (`| head`): nothing more to say, and nothing wrong.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

/// One line per memory: id, day, source, a preview of the content.
pub fn memory_line(m: &Memory) -> String {
    let day = m.created_at.to_rfc3339();
    let day = day.get(..10).unwrap_or(&day).to_string();
    let content: String = m.content.split_whitespace().collect::<Vec<_>>().join(" ");
    let preview = preview(&content, 100);
    let superseded = if m.is_superseded() {
        " (superseded)"
    } else {
        ""
    };
    format!(
        "{}  {day}  {:<9}  {preview}{superseded}",
        m.id,
        m.source.as_str()
    )
}

pub fn preview(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max_chars - 1).collect();
        format!("{cut}…")
    }
}

/// A progress bar on stderr; hidden when stderr is not a terminal or output is JSON.
pub fn progress(len: u64, what: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
        ))
        .expect("valid template"),
    );
    pb
}
