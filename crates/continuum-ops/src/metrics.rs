//! Prometheus metrics: the names Continuum records, the recorder, and the process's own
//! figures.
//!
//! Recording goes through the `metrics` facade, so the engine and the server only name what
//! they measure; nothing is kept until [`install`] puts a recorder in place (the CLI does,
//! for `serve`), and without one every record is a no-op. Labels come from bounded sets only:
//! route templates (never a raw path), status codes, methods, job names, store operations.
//! No tenant or memory id is ever a label value.

use crate::supervisor::JobState;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// HTTP requests answered, by `method`, `route` (the template) and `status`.
pub const HTTP_REQUESTS: &str = "continuum_http_requests_total";
/// HTTP request latency, by `method` and `route`.
pub const HTTP_DURATION: &str = "continuum_http_request_duration_seconds";
/// Requests refused by a key's rate limit.
pub const RATE_LIMITED: &str = "continuum_rate_limited_total";
/// Requests and writes refused by a tier's quota, by quota (`requests_per_day`, `memories`,
/// `webhooks`).
pub const QUOTA_REFUSED: &str = "continuum_quota_refused_total";
/// Audit entries that could not be written (the act they describe stood).
pub const AUDIT_FAILURES: &str = "continuum_audit_failures_total";
/// Breaks in the audit log's chain found by the checkpoint job (it then signs nothing).
pub const AUDIT_CHAIN_BROKEN: &str = "continuum_audit_chain_broken_total";
/// Audit entries sent to the syslog collector.
pub const AUDIT_SHIPPED: &str = "continuum_audit_shipped_total";
/// Sync rounds with a remote, by outcome (`ok`, `error`).
pub const SYNC_ROUNDS: &str = "continuum_sync_rounds_total";
/// Events moved by sync, by direction (`pushed`, `pulled`).
pub const SYNC_EVENTS: &str = "continuum_sync_events_total";
/// Scheduled backup runs, by outcome (`ok`, `error`).
pub const BACKUP_RUNS: &str = "continuum_backup_runs_total";
/// When the last scheduled backup that succeeded was taken (Unix seconds).
pub const BACKUP_LAST_SUCCESS: &str = "continuum_backup_last_success_timestamp_seconds";
/// How long the last successful scheduled backup took.
pub const BACKUP_LAST_DURATION: &str = "continuum_backup_last_duration_seconds";
/// The stored size of the last successful scheduled backup.
pub const BACKUP_LAST_SIZE: &str = "continuum_backup_last_size_bytes";
/// When the next scheduled backup runs (Unix seconds).
pub const BACKUP_NEXT_RUN: &str = "continuum_backup_next_run_timestamp_seconds";
/// Billing webhooks refused (bad, missing or stale signatures).
pub const BILLING_REFUSED: &str = "continuum_billing_webhooks_refused_total";
/// Failed authentications (unknown, revoked or expired keys), and requests refused because
/// their source address failed too often.
pub const AUTH_FAILURES: &str = "continuum_auth_failures_total";
pub const AUTH_THROTTLED: &str = "continuum_auth_throttled_total";
/// Connections refused at the connection limit.
pub const CONNECTIONS_REFUSED: &str = "continuum_connections_refused_total";
/// `learn` latency (one turn or a batch), engine side.
pub const LEARN_DURATION: &str = "continuum_learn_duration_seconds";
/// `recall` latency, engine side.
pub const RECALL_DURATION: &str = "continuum_recall_duration_seconds";
/// Store call latency, by `op`.
pub const STORE_DURATION: &str = "continuum_store_operation_duration_seconds";
/// The event log's newest position.
pub const EVENT_HEAD: &str = "continuum_event_log_head";
/// Memories waiting for an embedding, over every tenant.
pub const EMBED_BACKLOG: &str = "continuum_embedding_backlog";
/// Working API keys past their maximum age (`keys create --max-age`).
pub const KEYS_DUE: &str = "continuum_keys_due_for_rotation";
/// 1 for a job's current state, 0 for the others, by `job` and `state`.
pub const JOB_STATE: &str = "continuum_job_state";
/// Job runs that ended in an error or a panic, by `job`.
pub const JOB_FAILURES: &str = "continuum_job_failures_total";
/// Job restarts after a failure, by `job`.
pub const JOB_RESTARTS: &str = "continuum_job_restarts_total";

/// Tenant text indexes read from their files or built from the store, by `origin` (`file`,
/// `built`), and how long each took: the cost of a first use and of a reload after eviction.
pub const INDEX_LOADS: &str = "continuum_index_loads_total";
pub const INDEX_LOAD_DURATION: &str = "continuum_index_load_duration_seconds";
/// Tenant text indexes dropped from memory to keep within `max_resident_mb`.
pub const INDEX_EVICTIONS: &str = "continuum_index_evictions_total";
/// Tenant text indexes held in memory, and their estimated heap bytes (the vector graph left
/// out).
pub const INDEX_RESIDENT_TENANTS: &str = "continuum_index_resident_tenants";
pub const INDEX_RESIDENT_BYTES: &str = "continuum_index_resident_bytes";

/// Histogram buckets, in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle). Errors
/// when another recorder was installed first.
pub fn install() -> Result<PrometheusHandle, String> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .map_err(|e| format!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("a metrics recorder is already installed: {e}"))?;
    describe();
    let _ = HANDLE.set(handle.clone());
    Ok(HANDLE.get().cloned().unwrap_or(handle))
}

/// Is a recorder installed (are metrics being kept)?
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    describe_counter!(RATE_LIMITED, "Requests refused by a key's rate limit");
    describe_counter!(
        QUOTA_REFUSED,
        "Requests and writes refused by a tier's quota"
    );
    describe_counter!(AUDIT_FAILURES, "Audit entries that could not be written");
    describe_counter!(
        AUDIT_CHAIN_BROKEN,
        "Breaks in the audit log's chain found by the checkpoint job"
    );
    describe_counter!(AUDIT_SHIPPED, "Audit entries sent to the syslog collector");
    describe_counter!(SYNC_ROUNDS, "Sync rounds with a remote, by outcome");
    describe_counter!(SYNC_EVENTS, "Events moved by sync, by direction");
    describe_counter!(BACKUP_RUNS, "Scheduled backup runs, by outcome");
    describe_gauge!(
        BACKUP_LAST_SUCCESS,
        "When the last successful scheduled backup was taken (Unix seconds)"
    );
    describe_gauge!(
        BACKUP_LAST_DURATION,
        Unit::Seconds,
        "How long the last successful scheduled backup took"
    );
    describe_gauge!(
        BACKUP_LAST_SIZE,
        Unit::Bytes,
        "Stored size of the last successful scheduled backup"
    );
    describe_gauge!(
        BACKUP_NEXT_RUN,
        "When the next scheduled backup runs (Unix seconds)"
    );
    describe_counter!(
        BILLING_REFUSED,
        "Billing webhooks refused for a missing, wrong or stale signature"
    );
    describe_counter!(
        AUTH_FAILURES,
        "Requests with an unknown, revoked or expired API key"
    );
    describe_counter!(
        AUTH_THROTTLED,
        "Requests refused because their source address failed authentication too often"
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused at the server's connection limit"
    );
    describe_histogram!(LEARN_DURATION, Unit::Seconds, "Engine learn latency");
    describe_histogram!(RECALL_DURATION, Unit::Seconds, "Engine recall latency");
    describe_histogram!(STORE_DURATION, Unit::Seconds, "Store call latency");
    describe_gauge!(EVENT_HEAD, "Newest position of the event log");
    describe_gauge!(EMBED_BACKLOG, "Memories waiting for an embedding");
    describe_gauge!(KEYS_DUE, "Working API keys past their maximum age");
    describe_gauge!(JOB_STATE, "1 for a background job's current state");
    describe_counter!(JOB_FAILURES, "Background job runs that failed or panicked");
    describe_counter!(JOB_RESTARTS, "Background job restarts");
    describe_counter!(INDEX_LOADS, "Tenant text indexes read from a file or built");
    describe_histogram!(
        INDEX_LOAD_DURATION,
        Unit::Seconds,
        "Time to read or build a tenant's text index"
    );
    describe_counter!(
        INDEX_EVICTIONS,
        "Tenant text indexes dropped from memory to keep within max_resident_mb"
    );
    describe_gauge!(INDEX_RESIDENT_TENANTS, "Tenant text indexes held in memory");
    describe_gauge!(
        INDEX_RESIDENT_BYTES,
        Unit::Bytes,
        "Estimated heap bytes of the tenant text indexes held in memory"
    );
    metrics::gauge!("continuum_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The exposition text: every recorded metric, then the process's figures. `None` when no
/// recorder is installed.
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?;
    let mut out = handle.render();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    process_metrics(&mut out);
    Some(out)
}

pub(crate) fn job_state(job: &str, state: JobState) {
    for s in JobState::ALL {
        let v = if s == state { 1.0 } else { 0.0 };
        metrics::gauge!(JOB_STATE, "job" => job.to_string(), "state" => s.as_str()).set(v);
    }
}

pub(crate) fn job_failed(job: &str) {
    metrics::counter!(JOB_FAILURES, "job" => job.to_string()).increment(1);
}

pub(crate) fn job_restarted(job: &str) {
    metrics::counter!(JOB_RESTARTS, "job" => job.to_string()).increment(1);
}

/// Linux's clock ticks per second as `/proc` reports CPU times (USER_HZ, fixed at 100 by the
/// kernel's ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// `process_*` metrics as the Prometheus client libraries name them, read from `/proc/self`
/// (nothing is written elsewhere than Linux).
fn process_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start at its closing ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // stat(5): utime is field 14, stime 15, starttime 22, vsize 23; `f` starts at field 3.
    if let (Some(u), Some(s)) = (num(11), num(12)) {
        gauge_line(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds",
            (u + s) / TICKS_PER_SECOND,
        );
    }
    if let Some(v) = num(20) {
        gauge_line(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes",
            v,
        );
    }
    if let Some(start) = num(19)
        && let Some(boot) = boot_time()
    {
        gauge_line(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds",
            boot + start / TICKS_PER_SECOND,
        );
    }
    if let Some(rss) = status_kib("VmRSS:") {
        gauge_line(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, in bytes",
            rss * 1024.0,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        gauge_line(
            out,
            "process_open_fds",
            "gauge",
            "Open file descriptors",
            dir.count() as f64,
        );
    }
    if let Some(max) = max_fds() {
        gauge_line(
            out,
            "process_max_fds",
            "gauge",
            "Most file descriptors the process may open",
            max,
        );
    }
}

fn gauge_line(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn process_figures_are_read_from_proc() {
        let mut out = String::new();
        process_metrics(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing from:\n{out}"));
            let v: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
            // A young process may not have used a whole clock tick of CPU yet.
            let floor = if name.starts_with("process_cpu") {
                0.0
            } else {
                1.0
            };
            assert!(v >= floor, "{line}");
        }
    }
}
