//! LAPOR! to local: applying upstream changes, the scheduled pull, and
//! reconciliation. Scheduled jobs run on one replica at a time (a
//! PostgreSQL advisory lock); every run is stored with its summary.

pub mod apply;
pub mod sync;

use std::fmt::Write;

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
        // A deep run skipped (its tick found the lock taken) or failed is
        // made up by the next listing-first run: never more than about a
        // week without reading every detail.
        let job = match job {
            Job::Reconcile
                if jobs::last_deep_reconcile(&self.bridge.pool)
                    .await?
                    .is_none_or(|at| started - at > DEEP_AT_LEAST_EVERY) =>
            {
                Job::DeepReconcile
            }
            other => other,
        };
        let run_id = jobs::start(&self.bridge.pool, job.name(), trigger, started).await?;
        open.id = Some(run_id);
        let (outcome, requests) = crate::lapor::client::counting(async {
            match job {
                Job::Pull => sync::pull(&self.bridge).await,
                Job::Reconcile => sync::reconcile(&self.bridge, false).await,
                Job::DeepReconcile => sync::reconcile(&self.bridge, true).await,
            }
        })
        .await;
        let outcome = outcome.map(|mut s| {
            s.count_requests(requests);
            s
        });
        let finished = self.bridge.clock.now();
        let (ok, summary, error) = match &outcome {
            Ok(s) => (
                s.errors == 0,
                serde_json::to_value(s).unwrap_or(Value::Null),
                None,
            ),
            Err(e) => (false, Value::Null, Some(e.to_string())),
        };
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
        self.bridge.metrics.inc(
            "job_runs_total",
            &[
                ("task", job.name()),
                ("ok", if ok { "true" } else { "false" }),
            ],
        );
        if let Ok(s) = &outcome {
            for (kind, n) in &s.drift {
                self.bridge.metrics.add(
                    "drift_total",
                    &[("task", job.name()), ("kind", kind)],
                    u64::from(*n),
                );
            }
        }
        outcome?;
        Ok(json!({
            "run_id": run_id,
            "job": job.name(),
            "started_at": started,
            "finished_at": finished,
            "ok": ok,
            "summary": summary,
        }))
    }
}

/// Gauges read from the database at scrape time.
pub async fn gauges(bridge: &Bridge) -> String {
    let mut out = String::new();
    let depth: Result<Vec<(String, i64)>, _> =
        sqlx::query_as("SELECT state, count(*) FROM lapor_bridge.outbox GROUP BY state")
            .fetch_all(&bridge.pool)
            .await;
    if let Ok(rows) = depth {
        let _ = writeln!(out, "# TYPE lapor_bridge_outbox_depth gauge");
        for (state, n) in rows {
            let _ = writeln!(out, "lapor_bridge_outbox_depth{{state=\"{state}\"}} {n}");
        }
    }
    let oldest: Result<Option<f64>, _> = sqlx::query_scalar(
        "SELECT extract(epoch FROM ($1 - min(created_at)))::float8 FROM lapor_bridge.outbox WHERE state IN ('pending', 'running')",
    )
    .bind(bridge.clock.now())
    .fetch_one(&bridge.pool)
    .await;
    if let Ok(age) = oldest {
        let _ = writeln!(out, "# TYPE lapor_bridge_outbox_oldest_age_seconds gauge");
        let _ = writeln!(
            out,
            "lapor_bridge_outbox_oldest_age_seconds {}",
            age.unwrap_or(0.0)
        );
    }
    if let Ok(rows) = crate::store::complaints::count_by_sync_state(&bridge.pool).await {
        let _ = writeln!(out, "# TYPE lapor_bridge_complaints gauge");
        for (state, n) in rows {
            let _ = writeln!(out, "lapor_bridge_complaints{{sync_state=\"{state}\"}} {n}");
        }
    }
    if let Ok(n) = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM lapor_bridge.complaints WHERE conflict_reason IS NOT NULL",
    )
    .fetch_one(&bridge.pool)
    .await
    {
        let _ = writeln!(out, "# TYPE lapor_bridge_conflicts gauge");
        let _ = writeln!(out, "lapor_bridge_conflicts {n}");
    }
    if let Ok(n) = crate::store::duplicates::count_copies(&bridge.pool).await {
        let _ = writeln!(
            out,
            "# HELP lapor_bridge_upstream_duplicates LAPOR! complaints or follow-ups that carry one local item a second time (for LAPOR!'s admins to archive)."
        );
        let _ = writeln!(out, "# TYPE lapor_bridge_upstream_duplicates gauge");
        let _ = writeln!(out, "lapor_bridge_upstream_duplicates {n}");
    }
    if let Ok((follow_up, completion)) = sla_overdue(bridge).await {
        let _ = writeln!(out, "# TYPE lapor_bridge_sla_overdue gauge");
        let _ = writeln!(
            out,
            "lapor_bridge_sla_overdue{{kind=\"follow_up\"}} {follow_up}"
        );
        let _ = writeln!(
            out,
            "lapor_bridge_sla_overdue{{kind=\"completion\"}} {completion}"
        );
    }
    let last: Result<Vec<(String, f64)>, _> = sqlx::query_as(
        "SELECT job, extract(epoch FROM max(finished_at))::float8 FROM lapor_bridge.job_runs
          WHERE ok GROUP BY job ORDER BY job",
    )
    .fetch_all(&bridge.pool)
    .await;
    if let Ok(rows) = last {
        let _ = writeln!(
            out,
            "# TYPE lapor_bridge_job_last_success_timestamp_seconds gauge"
        );
        for (task, at) in rows {
            let _ = writeln!(
                out,
                "lapor_bridge_job_last_success_timestamp_seconds{{task=\"{task}\"}} {at}"
            );
        }
    }
    if let Ok(n) = crate::store::audit::count(&bridge.pool).await {
        let _ = writeln!(out, "# TYPE lapor_bridge_audit_entries gauge");
        let _ = writeln!(out, "lapor_bridge_audit_entries {n}");
    }
    if let Ok(n) = crate::store::events::unsettled(&bridge.pool).await {
        let _ = writeln!(
            out,
            "# HELP lapor_bridge_feed_unsettled_events Change-feed events not readable yet: an older transaction on the server is still running."
        );
        let _ = writeln!(out, "# TYPE lapor_bridge_feed_unsettled_events gauge");
        let _ = writeln!(out, "lapor_bridge_feed_unsettled_events {n}");
    }
    if let Ok((states, disabled)) = crate::store::webhooks::depth(&bridge.pool).await {
        let _ = writeln!(out, "# TYPE lapor_bridge_webhook_deliveries gauge");
        for state in ["pending", "running", "dead"] {
            let n = states
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "lapor_bridge_webhook_deliveries{{state=\"{state}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE lapor_bridge_webhook_endpoints_disabled gauge");
        let _ = writeln!(out, "lapor_bridge_webhook_endpoints_disabled {disabled}");
    }
    let _ = writeln!(out, "# TYPE lapor_bridge_lapor_token_ok gauge");
    let _ = writeln!(
        out,
        "lapor_bridge_lapor_token_ok {}",
        u8::from(!bridge.gate.is_paused())
    );
    let _ = writeln!(out, "# TYPE lapor_bridge_build_info gauge");
    let _ = writeln!(
        out,
        "lapor_bridge_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Open complaints past their follow-up and completion deadlines.
async fn sla_overdue(bridge: &Bridge) -> Result<(u64, u64), sqlx::Error> {
    type Row = (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT coalesce(lapor_created_at, created_at), dispositioned_at, first_followup_by_us_at,
                last_followup_at
           FROM lapor_bridge.complaints WHERE closed_at IS NULL",
    )
    .fetch_all(&bridge.pool)
    .await?;
    let now = bridge.clock.now();
    let (mut follow_up, mut completion) = (0, 0);
    for (created_at, dispositioned, first_ours, last) in rows {
        let facts = crate::sla::SlaFacts {
            created_at,
            dispositioned_to_us_at: dispositioned,
            first_followup_by_us_at: first_ours,
            last_followup_at: last,
            closed: false,
        };
        let view = crate::sla::evaluate(&bridge.calendar, &facts, now);
        for kind in &view.overdue {
            match kind {
                crate::sla::DeadlineKind::FollowUp => follow_up += 1,
                crate::sla::DeadlineKind::Completion => completion += 1,
                crate::sla::DeadlineKind::AutoClose => {}
            }
        }
    }
    Ok((follow_up, completion))
}
