//! Read-only SQL of the dashboard's read model that the other store modules
//! do not have. It spans several table families (`outbox`,
//! `outbox_attempts`, `job_runs`, `complaints`, `audit_log`), so it lives
//! here rather than in one of theirs; every statement only reads.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use crate::domain::{AttemptOutcome, StepKind};
use crate::sla::SlaFacts;
use crate::store::audit::Entry;

/// Steps waiting (pending or running) and when the oldest was created.
pub async fn backlog(pool: &PgPool) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), min(created_at) FROM lapor_bridge.outbox
          WHERE state IN ('pending', 'running')",
    )
    .fetch_one(pool)
    .await
}

pub async fn dead_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state = 'dead'")
        .fetch_one(pool)
        .await
}

/// A delivery attempt: when, HTTP status, failure kind.
pub type LastAttempt = (DateTime<Utc>, Option<i32>, Option<String>);

/// The latest delivery attempt.
pub async fn last_attempt(pool: &PgPool) -> Result<Option<LastAttempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT started_at, http_status, failure_kind FROM lapor_bridge.outbox_attempts
          ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    pub summary: Option<Value>,
    pub error: Option<String>,
}

const JOB_RUN: &str = "SELECT id, job, trigger, started_at, finished_at, ok, summary, error
   FROM lapor_bridge.job_runs";

/// The newest run of `job`.
pub async fn last_run(pool: &PgPool, job: &str) -> Result<Option<JobRun>, sqlx::Error> {
    let sql = format!("{JOB_RUN} WHERE job = $1 ORDER BY id DESC LIMIT 1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(job)
        .fetch_optional(pool)
        .await
}

/// Runs, newest first, of one job or all.
pub async fn runs(
    pool: &PgPool,
    job: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<JobRun>, i64), sqlx::Error> {
    let sql = format!(
        "{JOB_RUN} WHERE ($1::text IS NULL OR job = $1) ORDER BY id DESC LIMIT $2 OFFSET $3"
    );
    let items = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(job)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.job_runs WHERE ($1::text IS NULL OR job = $1)",
    )
    .bind(job)
    .fetch_one(pool)
    .await?;
    Ok((items, total))
}

/// The SLA facts of every open complaint (the SLA rules live in Rust, not
/// SQL: the caller evaluates them).
pub async fn open_sla_facts(pool: &PgPool) -> Result<Vec<SlaFacts>, sqlx::Error> {
    type Facts = (
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Facts> = sqlx::query_as(
        "SELECT coalesce(lapor_created_at, created_at), dispositioned_at,
                first_followup_by_us_at, last_followup_at
           FROM lapor_bridge.complaints WHERE closed_at IS NULL",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(created_at, dispositioned, first_ours, last)| SlaFacts {
            created_at,
            dispositioned_to_us_at: dispositioned,
            first_followup_by_us_at: first_ours,
            last_followup_at: last,
            closed: false,
        })
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub outbox_id: i64,
    pub step: StepKind,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub http_status: Option<i32>,
    pub message: Option<String>,
    pub outcome: AttemptOutcome,
}

pub async fn attempts_of(pool: &PgPool, complaint_id: i64) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT outbox_id, step, attempt, started_at, duration_ms, http_status, message, outcome
           FROM lapor_bridge.outbox_attempts WHERE complaint_id = $1 ORDER BY id",
    )
    .bind(complaint_id)
    .fetch_all(pool)
    .await
}

/// Audit entries, newest first.
pub async fn audit_page(
    pool: &PgPool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Entry>, i64), sqlx::Error> {
    let items = sqlx::query_as(
        "SELECT id, at, actor, local_ref, action, before, after, prev_hash, hash
           FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = super::audit::count(pool).await?;
    Ok((items, total))
}
