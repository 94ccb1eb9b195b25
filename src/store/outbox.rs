//! SQL of the outbox family: `outbox` (the hot queue) and `outbox_attempts`
//! (one row per attempt, never updated).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::domain::{AttemptOutcome, StepKind, StepState};
use crate::outbox::waiting::WaitingReason;

/// A step claimed by one worker, with what delivery needs of its complaint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedStep {
    pub id: i64,
    pub complaint_id: i64,
    pub seq: i32,
    pub step: StepKind,
    pub followup_id: Option<i64>,
    pub payload: Value,
    pub attempts: i32,
    pub fence: i64,
    pub needs_lookup: bool,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Why it waited before this claim (a code of [`WaitingReason`]).
    pub waiting_reason: Option<String>,
    pub local_ref: String,
    // What a create needs of its complaint, read by the claim itself.
    pub title: String,
    pub content: String,
    pub category_id: Option<i64>,
    pub disposition_id: Option<i64>,
    pub location_id: Option<i64>,
    pub date_of_incident: Option<chrono::NaiveDate>,
    pub is_anonymous: bool,
    pub is_secret: bool,
    pub lapor_complaint_id: Option<i64>,
    pub tracking_id: Option<String>,
    pub complaint_created_at: DateTime<Utc>,
    /// LAPOR! ids of the complaint's attachments (`None`: not uploaded).
    pub attachment_ids: Vec<Option<i64>>,
}

/// Claims up to `limit` due steps: the first unfinished step of each
/// complaint only, so steps of one complaint run in order. The claim commits
/// before any call to LAPOR!.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    now: DateTime<Utc>,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<ClaimedStep>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT o.id FROM lapor_bridge.outbox o
             WHERE o.state = 'pending' AND o.next_attempt_at <= $1
               AND (o.lookup_not_before IS NULL OR o.lookup_not_before <= $1)
               AND NOT EXISTS (
                   SELECT 1 FROM lapor_bridge.outbox e
                   WHERE e.complaint_id = o.complaint_id AND e.seq < o.seq
                     AND e.state IN ('pending', 'running', 'dead'))
             ORDER BY o.next_attempt_at, o.id
             LIMIT $2
             FOR UPDATE OF o SKIP LOCKED)
         UPDATE lapor_bridge.outbox o
            SET state = 'running', lease_owner = $3,
                lease_expires_at = $1 + make_interval(secs => $4),
                fence = o.fence + 1,
                first_attempt_at = coalesce(o.first_attempt_at, $1)
           FROM due, lapor_bridge.complaints c
          WHERE o.id = due.id AND c.id = o.complaint_id
      RETURNING o.id, o.complaint_id, o.seq, o.step, o.followup_id, o.payload, o.attempts,
                o.fence, o.needs_lookup, o.first_attempt_at, o.waiting_reason, c.local_ref,
                c.title, c.content, c.category_id, c.disposition_id, c.location_id,
                c.date_of_incident, c.is_anonymous, c.is_secret, c.lapor_complaint_id,
                c.tracking_id, c.created_at AS complaint_created_at,
                ARRAY(SELECT a.lapor_file_id FROM lapor_bridge.attachments a
                       WHERE a.complaint_id = c.id ORDER BY a.id) AS attachment_ids",
    )
    .bind(now)
    .bind(limit)
    .bind(owner)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

/// Extends the leases of the steps this worker still holds (by fence).
pub async fn heartbeat(
    conn: &mut PgConnection,
    held: &[(i64, i64)],
    now: DateTime<Utc>,
    lease_secs: i64,
) -> Result<u64, sqlx::Error> {
    if held.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
    let fences: Vec<i64> = held.iter().map(|(_, f)| *f).collect();
    let done = sqlx::query(
        "UPDATE lapor_bridge.outbox o
            SET lease_expires_at = $3 + make_interval(secs => $4)
           FROM unnest($1::bigint[], $2::bigint[]) AS h(id, fence)
          WHERE o.id = h.id AND o.fence = h.fence AND o.state = 'running'",
    )
    .bind(&ids)
    .bind(&fences)
    .bind(now)
    .bind(lease_secs as f64)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Returns expired leases to the queue. The previous holder may have sent a
/// write whose answer nobody saw, so a rescued write is looked up before any
/// resend, and not before `lookup_delay_secs` (its request may still be
/// committed upstream until then). `now` is the database's clock.
pub async fn rescue_expired(
    pool: &PgPool,
    now: DateTime<Utc>,
    lookup_delay_secs: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE lapor_bridge.outbox o
            SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                fence = o.fence + 1,
                needs_lookup = true,
                next_attempt_at = $1 + make_interval(secs => $2),
                lookup_not_before = greatest(o.lookup_not_before, $1 + make_interval(secs => $2)),
                waiting_reason = $3,
                last_error = 'lease expired: the worker stopped answering'
           FROM lapor_bridge.complaints c
          WHERE o.state = 'running' AND o.lease_expires_at < $1 AND c.id = o.complaint_id
      RETURNING o.id, c.local_ref",
    )
    .bind(now)
    .bind(lookup_delay_secs as f64)
    .bind(WaitingReason::LookupDelay.code())
    .fetch_all(pool)
    .await
}

/// Gives back a step this worker holds but will not finish (shutdown),
/// without counting an attempt. Its write may be on the wire: it is looked
/// up first, and not before `lookup_delay_secs`.
pub async fn release(
    conn: &mut PgConnection,
    id: i64,
    fence: i64,
    now: DateTime<Utc>,
    lookup_delay_secs: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.outbox
            SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                fence = fence + 1, needs_lookup = true,
                next_attempt_at = $3 + make_interval(secs => $4),
                lookup_not_before = greatest(lookup_not_before, $3 + make_interval(secs => $4)),
                waiting_reason = $5,
                last_error = 'interrupted by shutdown: looked up before any resend'
          WHERE id = $1 AND fence = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(fence)
    .bind(now)
    .bind(lookup_delay_secs as f64)
    .bind(WaitingReason::LookupDelay.code())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether this worker still holds the step (its fence is current), and the
/// LAPOR! ids linked meanwhile: checked before a write sent after a lookup.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Holding {
    pub held: bool,
    pub lapor_complaint_id: Option<i64>,
    pub tracking_id: Option<String>,
    pub lapor_followup_id: Option<i64>,
}

/// Records that a write of this step leaves for LAPOR! now (the first time
/// only), if this worker still holds it. False: the lease was lost, send
/// nothing.
pub async fn mark_sent(
    conn: &mut PgConnection,
    id: i64,
    fence: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.outbox SET first_sent_at = coalesce(first_sent_at, $3)
          WHERE id = $1 AND fence = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(fence)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn holding(
    conn: &mut PgConnection,
    id: i64,
    fence: i64,
) -> Result<Option<Holding>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.fence = $2 AND o.state = 'running' AS held,
                c.lapor_complaint_id, c.tracking_id, f.lapor_followup_id
           FROM lapor_bridge.outbox o
           JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
           LEFT JOIN lapor_bridge.followups f ON f.id = o.followup_id
          WHERE o.id = $1",
    )
    .bind(id)
    .bind(fence)
    .fetch_optional(conn)
    .await
}

/// The new state of a step after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextState {
    Done,
    /// Dead-lettered. `needs_lookup`: an attempt may have reached LAPOR!, so
    /// an operator's Retry looks it up before any resend.
    Dead {
        needs_lookup: bool,
    },
    Pending {
        at: DateTime<Utc>,
        needs_lookup: bool,
        /// Counted against BRIDGE_MAX_ATTEMPTS.
        count_attempt: bool,
        waiting_reason: Option<WaitingReason>,
    },
}

/// One step's completion: its fenced state change.
#[derive(Debug, Clone)]
pub struct StepCompletion<'a> {
    pub id: i64,
    pub fence: i64,
    pub next: &'a NextState,
    pub last_error: Option<&'a str>,
    /// A write of this attempt may commit upstream later: no lookup and no
    /// resend before this instant (kept through dead, Retry and rescue).
    pub lookup_not_before: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Moves steps out of `running` in one statement, each only if its fence is
/// still current. Returns the ids that were still held; the others were
/// lost to a rescue and are left unchanged. The one place that finishes a
/// step: the outcome writer calls it.
pub async fn complete_many(
    conn: &mut PgConnection,
    steps: &[StepCompletion<'_>],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(steps.len());
    let mut fences = Vec::with_capacity(steps.len());
    let mut states = Vec::with_capacity(steps.len());
    let mut ats = Vec::with_capacity(steps.len());
    let mut lookups = Vec::with_capacity(steps.len());
    let mut not_before = Vec::with_capacity(steps.len());
    let mut counts = Vec::with_capacity(steps.len());
    let mut waiting = Vec::with_capacity(steps.len());
    let mut errors = Vec::with_capacity(steps.len());
    let mut nows = Vec::with_capacity(steps.len());
    for c in steps {
        let (state, at, lookup, count, wait) = match c.next {
            NextState::Done => (StepState::Done, c.now, false, true, None),
            NextState::Dead { needs_lookup } => (StepState::Dead, c.now, *needs_lookup, true, None),
            NextState::Pending {
                at,
                needs_lookup,
                count_attempt,
                waiting_reason,
            } => (
                StepState::Pending,
                *at,
                *needs_lookup,
                *count_attempt,
                waiting_reason.map(|w| w.code().to_string()),
            ),
        };
        ids.push(c.id);
        fences.push(c.fence);
        states.push(state.as_str());
        ats.push(at);
        lookups.push(lookup);
        not_before.push(c.lookup_not_before);
        counts.push(count);
        waiting.push(wait);
        errors.push(c.last_error.map(str::to_string));
        nows.push(c.now);
    }
    // A step keeps the latest floor it was given, and while it must be
    // looked up its next attempt never comes before it.
    sqlx::query_scalar(
        "UPDATE lapor_bridge.outbox o
            SET state = b.state,
                lookup_not_before = greatest(o.lookup_not_before, b.not_before),
                next_attempt_at = CASE WHEN b.lookup
                    THEN greatest(b.at, o.lookup_not_before, b.not_before) ELSE b.at END,
                needs_lookup = b.lookup,
                attempts = o.attempts + CASE WHEN b.count THEN 1 ELSE 0 END,
                waiting_reason = b.waiting, last_error = b.error,
                lease_owner = NULL, lease_expires_at = NULL,
                finished_at = CASE WHEN b.state IN ('done', 'dead') THEN b.now END
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::bool[],
                       $6::timestamptz[], $7::bool[], $8::text[], $9::text[], $10::timestamptz[])
                AS b(id, fence, state, at, lookup, not_before, count, waiting, error, now)
          WHERE o.id = b.id AND o.fence = b.fence AND o.state = 'running'
      RETURNING o.id",
    )
    .bind(&ids)
    .bind(&fences)
    .bind(&states)
    .bind(&ats)
    .bind(&lookups)
    .bind(&not_before)
    .bind(&counts)
    .bind(&waiting)
    .bind(&errors)
    .bind(&nows)
    .fetch_all(conn)
    .await
}

/// One attempt, as history.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub outbox_id: i64,
    pub complaint_id: i64,
    pub step: StepKind,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub http_status: Option<i32>,
    pub failure_kind: Option<String>,
    pub message: Option<String>,
    pub outcome: AttemptOutcome,
}

/// Several attempts in one statement.
pub async fn record_attempts(
    conn: &mut PgConnection,
    attempts: &[Attempt],
) -> Result<(), sqlx::Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Attempt) -> Option<String>| attempts.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO lapor_bridge.outbox_attempts
             (outbox_id, complaint_id, step, attempt, started_at, duration_ms, http_status,
              failure_kind, message, outcome)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[],
                              $5::timestamptz[], $6::int[], $7::int[], $8::text[], $9::text[],
                              $10::text[])",
    )
    .bind(attempts.iter().map(|a| a.outbox_id).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.complaint_id).collect::<Vec<_>>())
    .bind(col(|a| Some(a.step.as_str().to_string())))
    .bind(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.started_at).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.duration_ms).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.http_status).collect::<Vec<_>>())
    .bind(col(|a| a.failure_kind.clone()))
    .bind(col(|a| a.message.clone()))
    .bind(col(|a| Some(a.outcome.as_str().to_string())))
    .execute(conn)
    .await?;
    Ok(())
}

/// Wakes the steps of a complaint that wait for LAPOR!'s verification.
pub async fn wake_waiting(
    conn: &mut PgConnection,
    complaint_id: i64,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.outbox SET next_attempt_at = greatest($2, lookup_not_before)
          WHERE complaint_id = $1 AND state = 'pending' AND waiting_reason IS NOT NULL
            AND next_attempt_at > greatest($2, lookup_not_before)",
    )
    .bind(complaint_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes finished steps older than the retention; attempts and the audit
/// log keep their history.
pub async fn prune(pool: &PgPool, older_than: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM lapor_bridge.outbox
          WHERE state IN ('done', 'discarded') AND finished_at < $1",
    )
    .bind(older_than)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Vacuums the outbox on one replica at a time (the others skip). Only the
/// table's owner may vacuum it: under the runtime role this does nothing and
/// autovacuum (with the outbox's own thresholds) does the work.
pub async fn vacuum(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let owner: bool = sqlx::query_scalar(
        "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class
          WHERE oid = 'lapor_bridge.outbox'::regclass",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !owner {
        return Ok(false);
    }
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(7305872300)")
        .fetch_one(&mut *conn)
        .await?;
    if !got {
        return Ok(false);
    }
    let vacuumed = sqlx::query("VACUUM (ANALYZE) lapor_bridge.outbox")
        .execute(&mut *conn)
        .await;
    sqlx::query("SELECT pg_advisory_unlock(7305872300)")
        .execute(&mut *conn)
        .await?;
    vacuumed.map(|_| true)
}

/// The earliest time a claimable step becomes due, to sleep until then.
/// Steps behind an earlier unfinished step of their complaint do not count.
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(greatest(o.next_attempt_at, o.lookup_not_before)) FROM lapor_bridge.outbox o
          WHERE o.state = 'pending'
            AND NOT EXISTS (
                SELECT 1 FROM lapor_bridge.outbox e
                WHERE e.complaint_id = o.complaint_id AND e.seq < o.seq
                  AND e.state IN ('pending', 'running', 'dead'))",
    )
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StepView {
    pub id: i64,
    pub local_ref: String,
    pub seq: i32,
    pub step: StepKind,
    pub state: StepState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// Why it waits, in words (from `waiting_code`; filled after reading).
    #[sqlx(skip)]
    pub waiting_reason: Option<String>,
    /// Why it waits: a code of [`WaitingReason`].
    #[serde(skip)]
    pub waiting_code: Option<String>,
    pub last_error: Option<String>,
    /// An attempt may have reached LAPOR!: the next one looks it up first.
    pub needs_lookup: bool,
    /// No lookup and no resend before this instant.
    pub lookup_not_before: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl StepView {
    /// Fills `waiting_reason` in words from its code and the step's times.
    fn described(mut self) -> Self {
        self.waiting_reason = self.waiting_code.as_deref().map(|code| {
            let until = match WaitingReason::parse(code) {
                Some(WaitingReason::LookupDelay) => self.lookup_not_before,
                Some(WaitingReason::RetryAfter) => Some(self.next_attempt_at),
                _ => None,
            };
            WaitingReason::describe_code(code, until)
        });
        self
    }
}

const STEP_VIEW: &str = "SELECT o.id, c.local_ref, o.seq, o.step, o.state, o.attempts,
        o.next_attempt_at, o.waiting_reason AS waiting_code, o.last_error, o.needs_lookup,
        o.lookup_not_before, o.created_at, o.finished_at
   FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c ON c.id = o.complaint_id";

/// Steps in one state (`pending` also lists running ones), oldest first.
pub async fn list(
    pool: &PgPool,
    state: Option<StepState>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<StepView>, i64), sqlx::Error> {
    let states = StepState::filter_codes(state);
    let sql = format!("{STEP_VIEW} WHERE o.state = ANY($1) ORDER BY o.id LIMIT $2 OFFSET $3");
    let items: Vec<StepView> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&states)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let items = items.into_iter().map(StepView::described).collect();
    let total =
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state = ANY($1)")
            .bind(&states)
            .fetch_one(pool)
            .await?;
    Ok((items, total))
}

pub async fn steps_of(pool: &PgPool, complaint_id: i64) -> Result<Vec<StepView>, sqlx::Error> {
    let sql = format!("{STEP_VIEW} WHERE o.complaint_id = $1 ORDER BY o.seq");
    let steps: Vec<StepView> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(complaint_id)
        .fetch_all(pool)
        .await?;
    Ok(steps.into_iter().map(StepView::described).collect())
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<StepView>, sqlx::Error> {
    let sql = format!("{STEP_VIEW} WHERE o.id = $1");
    let step: Option<StepView> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(step.map(StepView::described))
}

/// Operator action: a dead step goes back to the queue with fresh attempts.
/// What may have reached LAPOR! stays so: such a step is looked up first,
/// and not before its lookup floor.
pub async fn retry_dead(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.outbox
            SET state = 'pending', attempts = 0, finished_at = NULL, fence = fence + 1,
                next_attempt_at = greatest($2, lookup_not_before)
          WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('lapor_bridge_outbox', '')")
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Operator action: a dead or pending step is given up. Answers, when it
/// was, whether an attempt may have reached LAPOR! (read in the same
/// statement, so an outcome written meanwhile is not missed).
pub async fn discard(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE lapor_bridge.outbox
            SET state = 'discarded', finished_at = $2, fence = fence + 1,
                lease_owner = NULL, lease_expires_at = NULL
          WHERE id = $1 AND state IN ('dead', 'pending')
      RETURNING needs_lookup",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Appends a step to a complaint, in order after its earlier steps.
pub async fn enqueue(
    conn: &mut PgConnection,
    complaint_id: i64,
    step: StepKind,
    followup_id: Option<i64>,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let seq: i32 = sqlx::query_scalar(
        "UPDATE lapor_bridge.complaints SET next_seq = next_seq + 1, updated_at = $2
          WHERE id = $1 RETURNING next_seq - 1",
    )
    .bind(complaint_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let id = sqlx::query_scalar(
        "INSERT INTO lapor_bridge.outbox (complaint_id, seq, step, followup_id, payload, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(complaint_id)
    .bind(seq)
    .bind(step)
    .bind(followup_id)
    .bind(payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('lapor_bridge_outbox', '')")
        .execute(conn)
        .await?;
    Ok(id)
}

/// A complaint's delivery attempts as timeline events: when each started,
/// and the event (`kind` `attempt`) as JSON.
pub async fn attempt_events(
    pool: &PgPool,
    complaint_id: i64,
) -> Result<Vec<(DateTime<Utc>, Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT started_at, jsonb_build_object('kind', 'attempt', 'at', started_at, 'step', step,
                'attempt', attempt, 'duration_ms', duration_ms, 'http_status', http_status,
                'failure_kind', failure_kind, 'message', message, 'outcome', outcome)
           FROM lapor_bridge.outbox_attempts WHERE complaint_id = $1",
    )
    .bind(complaint_id)
    .fetch_all(pool)
    .await
}
