//! Log and trace setup: every crate logs through `tracing`; the binary picks the format, the
//! level and, optionally, an OpenTelemetry endpoint here.
//!
//! `pretty` is for people (one line an event, on stderr); `json` writes one object per line
//! with `timestamp`, `level`, `target`, the event's fields and its spans' fields, for a log
//! shipper. The level is a `tracing` filter (`info`, `warn,continuum_server=debug`, …);
//! `RUST_LOG`, when set, wins over the configured level.
//!
//! Traces: with an OTLP endpoint, spans go to it over OTLP/HTTP (protobuf), batched by a
//! thread of the SDK: `http.request` (server) → `engine.*` (the verb) → one span per store
//! call (named after the port's method) and per embedding batch. Those inner spans are at
//! `debug`, enabled for the trace exporter only, so with tracing off (the default) they are
//! disabled at their call sites and cost nothing, whatever the log level.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::str::FromStr;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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

/// The spans sent to a trace endpoint: everything at `info`, and the engine's, the stores'
/// and the embedders' inner spans at `debug`.
const TRACE_FILTER: &str =
    "info,continuum_server=debug,continuum_engine=debug,continuum_embed=debug";

/// The OTLP/HTTP traces URL for an endpoint: `BASE/v1/traces`, as the OpenTelemetry SDKs
/// read `OTEL_EXPORTER_OTLP_ENDPOINT` (a URL already ending in `/v1/traces` is kept).
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    }
}

static TRACES_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Is a trace exporter installed in this process? Code that would only fill span attributes
/// for traces asks first.
pub fn traces_on() -> bool {
    TRACES_ON.load(std::sync::atomic::Ordering::Relaxed)
}

/// What `init` installed; [`Telemetry::shutdown`] sends the spans still batched.
#[must_use = "call shutdown() before exiting, or batched spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Is a trace exporter installed?
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the trace exporter. Call outside any async runtime (the exporter's
    /// HTTP client is a blocking one).
    pub fn shutdown(self) {
        crate::batched::flush();
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "sending the last traces failed");
        }
        crate::batched::flush();
    }
}

/// Libraries that log their internals at `info` (the Turso sync engine logs every push):
/// held at `warn` unless the filter names them.
const QUIET_LIBRARIES: &[&str] = &[
    "turso",
    "turso_core",
    "turso_sdk_kit",
    "turso_sync_engine",
    "turso_sync_sdk_kit",
];

/// `spec` with a `warn` directive for each of [`QUIET_LIBRARIES`] it does not mention.
fn quiet_libraries(spec: &str) -> String {
    let mut out = spec.trim().to_string();
    if out.contains("turso") {
        return out;
    }
    for lib in QUIET_LIBRARIES {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(lib);
        out.push_str("=warn");
    }
    out
}

/// Installs the process's subscriber, writing to stderr, and with `otlp_endpoint` a trace
/// exporter. `RUST_LOG` overrides `level`. Must run outside an async runtime. A second call
/// (tests) installs nothing.
pub fn init(
    format: LogFormat,
    level: &str,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder()
            .parse(quiet_libraries(&v))
            .map_err(|e| format!("invalid RUST_LOG {v:?}: {e}"))?,
        _ => EnvFilter::builder()
            .parse(quiet_libraries(level))
            .map_err(|e| format!("invalid log level {level:?}: {e}"))?,
    };
    let lines = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(crate::batched::BatchedStderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(crate::batched::BatchedStderr)
            .boxed(),
    }
    .with_filter(filter);
    let provider = match otlp_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(provider(endpoint)?),
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("continuum"))
            .with_filter(EnvFilter::new(TRACE_FILTER))
    });
    // An installed subscriber (tests calling twice) is not an error worth stopping for.
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        TRACES_ON.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Telemetry { provider })
}

fn provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
    let url = traces_url(endpoint);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "the OTLP endpoint must be an http:// or https:// URL, not {endpoint:?}"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("continuum")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
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

    #[test]
    fn chatty_libraries_are_held_at_warn_unless_named() {
        let q = quiet_libraries("info");
        assert!(q.starts_with("info,turso=warn,") && q.contains("turso_sync_engine=warn"));
        assert!(parse_level(&q).is_ok());
        assert_eq!(
            quiet_libraries("debug,turso_core=trace"),
            "debug,turso_core=trace"
        );
        assert!(quiet_libraries("").starts_with("turso=warn"));
    }

    #[test]
    fn the_traces_url_follows_the_sdk_convention() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces/"),
            "http://collector:4318/v1/traces"
        );
    }
}
