//! SQL of the gauges `/metrics` serves: the counting queries a snapshot is
//! taken from, the snapshot row (`metrics_snapshot`), and the advisory lock
//! that lets one replica at a time take it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::domain::StepState;

/// The advisory lock of taking a snapshot (jobs use 7_305_872_201 and 202).
const SNAPSHOT_LOCK: i64 = 7_305_872_210;

/// Takes the snapshot's lock for this transaction, if no one holds it.
pub async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SNAPSHOT_LOCK)
        .fetch_one(conn)
        .await
}

/// When the stored snapshot was taken (`None`: never).
pub async fn taken_at(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT taken_at FROM lapor_bridge.metrics_snapshot")
        .fetch_optional(conn)
        .await
}

pub async fn save(
    conn: &mut PgConnection,
    taken_at: DateTime<Utc>,
    gauges: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lapor_bridge.metrics_snapshot (id, taken_at, gauges) VALUES (true, $1, $2)
         ON CONFLICT (id) DO UPDATE SET taken_at = excluded.taken_at, gauges = excluded.gauges",
    )
    .bind(taken_at)
    .bind(gauges)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored snapshot: one row read by its key.
pub async fn load(pool: &PgPool) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT gauges FROM lapor_bridge.metrics_snapshot WHERE id")
        .fetch_optional(pool)
        .await
}

/// Outbox steps per state.
pub async fn outbox_depth(pool: &PgPool) -> Result<Vec<(StepState, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, count(*) FROM lapor_bridge.outbox GROUP BY state ORDER BY 1")
        .fetch_all(pool)
        .await
}

/// When the oldest pending or running step was queued.
pub async fn oldest_waiting(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(created_at) FROM lapor_bridge.outbox WHERE state IN ('pending', 'running')",
    )
    .fetch_one(pool)
    .await
}

/// Complaints waiting for an operator's decision.
pub async fn conflicts(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.complaints WHERE conflict_reason IS NOT NULL",
    )
    .fetch_one(pool)
    .await
}

/// The end of the last successful run of each job, as a Unix time.
pub async fn job_last_success(pool: &PgPool) -> Result<Vec<(String, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT job, extract(epoch FROM max(finished_at))::float8 FROM lapor_bridge.job_runs
          WHERE ok GROUP BY job ORDER BY job",
    )
    .fetch_all(pool)
    .await
}

/// What the SLA of an open complaint is computed from: created, dispositioned
/// to us, our first follow-up, the last follow-up.
pub type OpenSlaFacts = (
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// The SLA facts of every open complaint.
pub async fn open_sla_facts(pool: &PgPool) -> Result<Vec<OpenSlaFacts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(lapor_created_at, created_at), dispositioned_at, first_followup_by_us_at,
                last_followup_at
           FROM lapor_bridge.complaints WHERE closed_at IS NULL",
    )
    .fetch_all(pool)
    .await
}
