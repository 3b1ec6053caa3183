//! Operations: what keeps a Continuum process observable and its background work supervised.
//!
//! - [`supervisor`]: named background jobs, restarted with backoff, cancelled on shutdown;
//! - [`metrics`]: the Prometheus recorder, the metric names, the process's own figures;
//! - [`logging`]: the `tracing` subscriber (pretty or JSON lines).

pub mod batched;
pub mod logging;
pub mod metrics;
pub mod supervisor;

pub use supervisor::{
    Backoff, CancellationToken, JobState, JobStatus, Supervisor, wait_for_next_round,
};
