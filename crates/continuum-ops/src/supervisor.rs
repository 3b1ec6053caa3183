//! The supervisor: every background job of a process is named, started here, restarted with
//! backoff when it fails or panics, and cancelled at a safe point on shutdown.
//!
//! A job is a function from a [`CancellationToken`] to a future. It should return when the
//! token is cancelled, at a point where nothing is half-written (between two transactions).
//! It returns `Ok(())` when it has nothing more to do, `Err(reason)` when it failed; a panic
//! counts as a failure. A failed job is restarted after a backoff that doubles from
//! [`Backoff::initial`] up to [`Backoff::max`], and goes back to the initial pause once a run
//! has lasted [`Backoff::healthy_after`].
//!
//! [`Supervisor::shutdown`] cancels every job, waits up to a grace period for them to return,
//! and aborts the ones still running (their work is in the store's transactions, so an abort
//! loses at most the transaction in progress).

use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

/// Pauses between restarts of a failing job.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run that lasted this long resets the pause to `initial`.
    pub healthy_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Doing its work (or waiting for some).
    Running,
    /// Failed; waiting out the backoff before the next start.
    Backoff,
    /// Returned `Ok(())`: nothing more to do.
    Finished,
    /// Stopped by shutdown.
    Stopped,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Backoff => "backoff",
            JobState::Finished => "finished",
            JobState::Stopped => "stopped",
        }
    }

    /// Every state, for metrics that show one series per state.
    pub const ALL: [JobState; 4] = [
        JobState::Running,
        JobState::Backoff,
        JobState::Finished,
        JobState::Stopped,
    ];
}

/// One job as `doctor`, `/v1/ready` and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: String,
    pub state: JobState,
    /// Starts after the first.
    pub restarts: u64,
    /// Runs that ended in an error or a panic.
    pub failures: u64,
    /// The last failure's reason, if any.
    pub last_error: Option<String>,
    /// When the job entered its state, in Unix milliseconds.
    pub since: i64,
}

struct Inner {
    jobs: Mutex<BTreeMap<String, JobStatus>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    cancel: CancellationToken,
}

/// Owns the background jobs of a process. Cloning shares it.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("jobs", &self.statuses())
            .finish()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The text of a panic payload.
fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("panicked: {text}")
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor {
            inner: Arc::new(Inner {
                jobs: Mutex::new(BTreeMap::new()),
                handles: Mutex::new(Vec::new()),
                cancel: CancellationToken::new(),
            }),
        }
    }

    /// Cancelled when shutdown begins; jobs get a child of it.
    pub fn cancellation(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut JobStatus)) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = jobs.get_mut(name) {
            let before = j.state;
            f(j);
            if j.state != before {
                j.since = now_ms();
            }
            crate::metrics::job_state(name, j.state);
        }
    }

    /// Starts `job` under `name` (names are unique: a second job of the same name is refused
    /// with an error naming it). Must be called within a Tokio runtime.
    pub fn spawn<F, Fut>(&self, name: &str, backoff: Backoff, job: F) -> Result<(), String>
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        {
            let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
            if jobs.contains_key(name) {
                return Err(format!("a job named {name} is already supervised"));
            }
            jobs.insert(
                name.to_string(),
                JobStatus {
                    name: name.to_string(),
                    state: JobState::Running,
                    restarts: 0,
                    failures: 0,
                    last_error: None,
                    since: now_ms(),
                },
            );
        }
        crate::metrics::job_state(name, JobState::Running);
        let this = self.clone();
        let name = name.to_string();
        let cancel = self.inner.cancel.child_token();
        let handle = tokio::spawn(async move {
            let mut pause = backoff.initial;
            loop {
                let started = Instant::now();
                let run = tokio::spawn(job(cancel.clone()));
                let outcome = match run.await {
                    Ok(r) => r,
                    Err(e) => Err(panic_text(e)),
                };
                if cancel.is_cancelled() {
                    this.update(&name, |j| j.state = JobState::Stopped);
                    tracing::info!(job = %name, "background job stopped");
                    return;
                }
                let reason = match outcome {
                    Ok(()) => {
                        this.update(&name, |j| j.state = JobState::Finished);
                        tracing::info!(job = %name, "background job finished");
                        return;
                    }
                    Err(reason) => reason,
                };
                if started.elapsed() >= backoff.healthy_after {
                    pause = backoff.initial;
                }
                tracing::error!(job = %name, error = %reason, retry_in_ms = pause.as_millis() as u64,
                    "background job failed; restarting after a pause");
                crate::metrics::job_failed(&name);
                this.update(&name, |j| {
                    j.state = JobState::Backoff;
                    j.failures += 1;
                    j.last_error = Some(reason);
                });
                tokio::select! {
                    _ = cancel.cancelled() => {
                        this.update(&name, |j| j.state = JobState::Stopped);
                        return;
                    }
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(backoff.max);
                crate::metrics::job_restarted(&name);
                this.update(&name, |j| {
                    j.state = JobState::Running;
                    j.restarts += 1;
                });
            }
        });
        self.inner
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        Ok(())
    }

    /// Every job's status, by name.
    pub fn statuses(&self) -> Vec<JobStatus> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.values().cloned().collect()
    }

    /// Cancels every job and waits up to `grace` for them to return; the ones still running
    /// then are aborted. Returns the names of the aborted jobs.
    pub async fn shutdown(&self, grace: Duration) -> Vec<String> {
        self.inner.cancel.cancel();
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.handles.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = tokio::time::Instant::now() + grace;
        let mut aborted = Vec::new();
        for mut h in handles {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
                aborted.push(());
            }
        }
        if aborted.is_empty() {
            return Vec::new();
        }
        let mut names = Vec::new();
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for j in jobs.values_mut() {
            if j.state == JobState::Running || j.state == JobState::Backoff {
                tracing::warn!(job = %j.name, "background job did not stop in time; aborted");
                j.state = JobState::Stopped;
                j.since = now_ms();
                names.push(j.name.clone());
            }
        }
        names
    }
}

/// Between two rounds of a periodic job that also reacts to local writes (sync, libSQL
/// replication): waits `pause` plus up to a fifth of it at random, or, when `written` changes
/// first, `debounce` more to let a burst of writes finish. False when `stop` was cancelled or
/// the writes' sender is gone: the job should return.
pub async fn wait_for_next_round(
    pause: std::time::Duration,
    debounce: std::time::Duration,
    written: &mut tokio::sync::watch::Receiver<u64>,
    stop: &CancellationToken,
) -> bool {
    let jitter = std::time::Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64 / 5));
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(pause + jitter) => true,
        changed = written.changed() => {
            if changed.is_err() {
                return false;
            }
            tokio::select! {
                _ = stop.cancelled() => false,
                _ = tokio::time::sleep(debounce) => true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> Backoff {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
            healthy_after: Duration::from_secs(60),
        }
    }

    async fn wait_for(s: &Supervisor, name: &str, ok: impl Fn(&JobStatus) -> bool) -> JobStatus {
        for _ in 0..500 {
            if let Some(j) = s.statuses().into_iter().find(|j| j.name == name)
                && ok(&j)
            {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "job {name} never reached the expected status: {:?}",
            s.statuses()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_is_restarted_and_its_failures_reported() {
        let s = Supervisor::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        s.spawn("flaky", quick(), move |cancel| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("run {n} breaks");
                }
                cancel.cancelled().await;
                Ok(())
            }
        })
        .unwrap();
        let j = wait_for(&s, "flaky", |j| {
            j.restarts == 2 && j.state == JobState::Running
        })
        .await;
        assert_eq!(j.failures, 2);
        assert_eq!(j.last_error.as_deref(), Some("panicked: run 1 breaks"));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(s.shutdown(Duration::from_secs(5)).await.is_empty());
        assert_eq!(s.statuses()[0].state, JobState::Stopped);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erring_job_backs_off_and_a_finished_one_stays_finished() {
        let s = Supervisor::new();
        s.spawn("fails", quick(), |_| async { Err("disk full".to_string()) })
            .unwrap();
        s.spawn("once", quick(), |_| async { Ok(()) }).unwrap();
        let j = wait_for(&s, "fails", |j| j.failures >= 3).await;
        assert_eq!(j.last_error.as_deref(), Some("disk full"));
        wait_for(&s, "once", |j| j.state == JobState::Finished).await;
        assert!(s.spawn("once", quick(), |_| async { Ok(()) }).is_err());
        s.shutdown(Duration::from_secs(5)).await;
        let fails = s
            .statuses()
            .into_iter()
            .find(|j| j.name == "fails")
            .unwrap();
        assert_eq!(fails.state, JobState::Stopped);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_aborts_a_job_that_ignores_cancellation_after_the_grace() {
        let s = Supervisor::new();
        s.spawn("stubborn", quick(), |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .unwrap();
        let t = Instant::now();
        let aborted = s.shutdown(Duration::from_millis(100)).await;
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(aborted, vec!["stubborn".to_string()]);
    }
}
