//! LAPOR! to local: applying upstream changes, the scheduled pull, and
//! reconciliation. Scheduled jobs run on one replica at a time (a
//! PostgreSQL advisory lock); every run is stored with its summary.

pub mod apply;
pub mod sync;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bridge::Bridge;
use crate::store::jobs;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("a {0} run is already under way on another replica")]
    Busy(&'static str),
    #[error("the {0} run was stopped by shutdown")]
    Aborted(&'static str),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The longest a reconciliation goes without a deep run.
const DEEP_AT_LEAST_EVERY: chrono::Duration = chrono::Duration::days(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Pull,
    /// Listing-first: details only of what LAPOR!'s listing shows changed.
    Reconcile,
    /// Every tracked complaint's detail and follow-ups.
    DeepReconcile,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Pull => "pull",
            Job::Reconcile | Job::DeepReconcile => "reconcile",
        }
    }

    /// A deep and a listing-first reconciliation never run at once.
    fn lock_key(self) -> i64 {
        match self {
            Job::Pull => 7_305_872_201,
            Job::Reconcile | Job::DeepReconcile => 7_305_872_202,
        }
    }
}

/// Pull and reconciliation runs, scheduled or on demand. A run holds its
/// job's advisory lock on a connection of its own, closed with the run, so
/// a caller that goes away (an HTTP client that disconnects) leaks no lock;
/// its `job_runs` row is closed as `aborted`. Shutdown stops runs in flight
/// the same way and [`Jobs::stop`] waits for them.
#[derive(Debug)]
pub struct Jobs {
    bridge: Bridge,
    shutdown: CancellationToken,
    runs: TaskTracker,
}

/// Closes a run's row as aborted if the run is dropped before it finished.
struct OpenRun {
    bridge: Bridge,
    id: Option<i64>,
}

impl Drop for OpenRun {
    fn drop(&mut self) {
        let (Some(id), Ok(handle)) = (self.id, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let bridge = self.bridge.clone();
        handle.spawn(async move {
            let now = bridge.clock.now();
            if let Err(e) = jobs::abort(&bridge.pool, id, now).await {
                tracing::warn!(run = id, error = %e, "cannot close an abandoned run");
            }
        });
    }
}

impl Jobs {
    pub fn new(bridge: Bridge) -> Self {
        Self::with_shutdown(bridge, CancellationToken::new())
    }

    /// Jobs whose runs `shutdown` stops.
    pub fn with_shutdown(bridge: Bridge, shutdown: CancellationToken) -> Self {
        Self {
            bridge,
            shutdown,
            runs: TaskTracker::new(),
        }
    }

    pub async fn pull(&self, trigger: &str) -> Result<Value, JobError> {
        self.run(Job::Pull, trigger, true).await
    }

    pub async fn reconcile(&self, trigger: &str) -> Result<Value, JobError> {
        self.run(Job::Reconcile, trigger, true).await
    }

    /// A reconciliation that reads every tracked complaint's detail.
    pub async fn deep_reconcile(&self, trigger: &str) -> Result<Value, JobError> {
        self.run(Job::DeepReconcile, trigger, true).await
    }

    /// Waits for the runs in flight, which shutdown stops (after the
    /// shutdown signal).
    pub async fn stop(&self) {
        self.runs.close();
        self.runs.wait().await;
    }

    /// Runs a job under its advisory lock. `wait`: wait for a run on another
    /// replica to finish (on demand); otherwise skip (scheduled).
    pub async fn run(&self, job: Job, trigger: &str, wait: bool) -> Result<Value, JobError> {
        if self.shutdown.is_cancelled() {
            return Err(JobError::Aborted(job.name()));
        }
        let mut open = OpenRun {
            bridge: self.bridge.clone(),
            id: None,
        };
        let run = self
            .runs
            .track_future(self.run_with_lock(job, trigger, wait, &mut open));
        tokio::select! {
            result = run => result,
            _ = self.shutdown.cancelled() => {
                // The run is dropped: its lock connection closes. Its row is
                // closed here, before shutdown goes on.
                if let Some(id) = open.id.take() {
                    jobs::abort(&self.bridge.pool, id, self.bridge.clock.now()).await?;
                }
                tracing::info!(job = job.name(), "run stopped by shutdown");
                Err(JobError::Aborted(job.name()))
            }
        }
    }

    async fn run_with_lock(
        &self,
        job: Job,
        trigger: &str,
        wait: bool,
        open: &mut OpenRun,
    ) -> Result<Value, JobError> {
        // Not a pooled connection: if this future is dropped, the connection
        // is closed and PostgreSQL releases the session's lock with it.
        let mut conn = self.bridge.pool.acquire().await?.detach();
        if !jobs::lock(&mut conn, job.lock_key(), wait).await? {
            return Err(JobError::Busy(job.name()));
        }
        let aborted =
            jobs::abort_unfinished(&self.bridge.pool, job.name(), self.bridge.clock.now()).await?;
        if aborted > 0 {
            tracing::warn!(job = job.name(), aborted, "closed runs left unfinished");
        }
        let result = self.run_locked(job, trigger, open).await;
        jobs::unlock(&mut conn, job.lock_key()).await?;
        let _ = conn.close().await;
        result
    }

    async fn run_locked(
        &self,
        job: Job,
        trigger: &str,
        open: &mut OpenRun,
    ) -> Result<Value, JobError> {
        let started = self.bridge.clock.now();
        let job = self.due_kind(job, started).await?;
        let run_id = jobs::start(&self.bridge.pool, job.name(), trigger, started).await?;
        open.id = Some(run_id);
        let outcome = self.execute(job).await;
        let finished = self.bridge.clock.now();
        let (run_outcome, summary, error) = match &outcome {
            Ok(s) => (
                s.outcome,
                serde_json::to_value(s).unwrap_or(Value::Null),
                None,
            ),
            Err(e) => (
                sync::RunOutcome::Failed,
                json!({"outcome": sync::RunOutcome::Failed}),
                Some(e.to_string()),
            ),
        };
        let ok = run_outcome == sync::RunOutcome::Ok;
        jobs::finish(
            &self.bridge.pool,
            run_id,
            finished,
            ok,
            &summary,
            error.as_deref(),
        )
        .await?;
        open.id = None;
        self.count_run(job, ok, run_outcome, &outcome);
        outcome?;
        Ok(json!({
            "run_id": run_id,
            "job": job.name(),
            "started_at": started,
            "finished_at": finished,
            "ok": ok,
            "outcome": run_outcome,
            "summary": summary,
        }))
    }

    /// A reconciliation runs deep when the last deep run is a week old: a
    /// deep run skipped (its tick found the lock taken) or failed is made up
    /// by the next listing-first run, never more than about a week without
    /// reading every detail.
    async fn due_kind(&self, job: Job, now: DateTime<Utc>) -> Result<Job, JobError> {
        Ok(match job {
            Job::Reconcile
                if jobs::last_deep_reconcile(&self.bridge.pool)
                    .await?
                    .is_none_or(|at| now - at > DEEP_AT_LEAST_EVERY) =>
            {
                Job::DeepReconcile
            }
            other => other,
        })
    }

    /// Runs the job, counting the LAPOR! requests it made.
    async fn execute(&self, job: Job) -> Result<sync::RunSummary, sqlx::Error> {
        let (outcome, requests) = crate::lapor::client::counting(async {
            match job {
                Job::Pull => sync::pull(&self.bridge).await,
                Job::Reconcile => sync::reconcile(&self.bridge, false).await,
                Job::DeepReconcile => sync::reconcile(&self.bridge, true).await,
            }
        })
        .await;
        outcome.map(|mut s| {
            s.count_requests(requests);
            s
        })
    }

    /// The run's metrics: one run counted, and the drift it found.
    fn count_run(
        &self,
        job: Job,
        ok: bool,
        run_outcome: sync::RunOutcome,
        outcome: &Result<sync::RunSummary, sqlx::Error>,
    ) {
        self.bridge.metrics.inc(
            "job_runs_total",
            &[
                ("task", job.name()),
                ("ok", if ok { "true" } else { "false" }),
                ("outcome", run_outcome.as_str()),
            ],
        );
        if let Ok(s) = outcome {
            for (kind, n) in &s.drift {
                self.bridge.metrics.add(
                    "drift_total",
                    &[("task", job.name()), ("kind", kind)],
                    u64::from(*n),
                );
            }
        }
    }
}
