//! SQL of scheduled and on-demand jobs: `job_runs` (one row per run) and
//! the advisory lock that lets one replica at a time run each job.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// Takes the job's advisory lock on `conn`, waiting for it (`wait`) or not.
/// The lock belongs to that connection's session: closing the connection
/// releases it, whatever happened to the run.
pub async fn lock(conn: &mut PgConnection, key: i64, wait: bool) -> Result<bool, sqlx::Error> {
    if wait {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(conn)
            .await?;
        Ok(true)
    } else {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(conn)
            .await
    }
}

pub async fn unlock(conn: &mut PgConnection, key: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Why an unfinished run was closed.
pub const ABORTED: &str = "aborted";

/// Closes runs of `job` still open: called with the job's lock held, so no
/// replica is running them (a crash, a cancelled caller).
pub async fn abort_unfinished(
    pool: &PgPool,
    job: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    close_unfinished(pool, None, Some(job), now).await
}

/// Closes one run as aborted (its caller went away, or shutdown).
pub async fn abort(pool: &PgPool, run_id: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    close_unfinished(pool, Some(run_id), None, now).await?;
    Ok(())
}

async fn close_unfinished(
    pool: &PgPool,
    run_id: Option<i64>,
    job: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.job_runs
            SET finished_at = $3, ok = false, error = $4,
                summary = jsonb_build_object('outcome', $4::text)
          WHERE finished_at IS NULL AND (id = $1 OR job = $2)",
    )
    .bind(run_id)
    .bind(job)
    .bind(now)
    .bind(ABORTED)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn start(
    pool: &PgPool,
    job: &str,
    trigger: &str,
    at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO lapor_bridge.job_runs (job, trigger, started_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(job)
    .bind(trigger)
    .bind(at)
    .fetch_one(pool)
    .await
}

pub async fn finish(
    pool: &PgPool,
    run_id: i64,
    at: DateTime<Utc>,
    ok: bool,
    summary: &Value,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.job_runs SET finished_at = $2, ok = $3, summary = $4, error = $5 WHERE id = $1",
    )
    .bind(run_id)
    .bind(at)
    .bind(ok)
    .bind(summary)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// When the last deep reconciliation finished well (`None`: never).
pub async fn last_deep_reconcile(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(finished_at) FROM lapor_bridge.job_runs
          WHERE job = 'reconcile' AND ok AND (summary->>'deep')::boolean",
    )
    .fetch_one(pool)
    .await
}
