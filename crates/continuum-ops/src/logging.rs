//! Log setup: every crate logs through `tracing`; the binary picks the format and level here.
//!
//! `pretty` is for people (one line an event, on stderr); `json` writes one object per line
//! with `timestamp`, `level`, `target`, the event's fields and its spans' fields, for a log
//! shipper. The level is a `tracing` filter (`info`, `warn,continuum_server=debug`, …);
//! `RUST_LOG`, when set, wins over the configured level.

use std::str::FromStr;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?} (expected pretty or json)"
            )),
        }
    }
}

/// Checks a level or filter directive without installing it.
pub fn parse_level(level: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(level)
        .map(|_| level.to_string())
        .map_err(|e| format!("invalid log level {level:?}: {e}"))
}

/// Installs the process's subscriber, writing to stderr. `RUST_LOG` overrides `level`.
/// Does nothing if one is installed already (a second call in tests).
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder()
            .parse(&v)
            .map_err(|e| format!("invalid RUST_LOG {v:?}: {e}"))?,
        _ => EnvFilter::builder()
            .parse(level)
            .map_err(|e| format!("invalid log level {level:?}: {e}"))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let done = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    // An installed subscriber (tests calling twice) is not an error worth stopping for.
    let _ = done;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_levels_are_checked() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!(
            "xml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("pretty or json")
        );
        assert!(parse_level("info,continuum_server=debug").is_ok());
        assert!(parse_level("info,=[").is_err());
    }
}
