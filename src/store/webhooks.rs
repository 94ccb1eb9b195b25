//! SQL of the webhooks: `webhook_endpoints` (from the configuration, by URL),
//! `webhook_deliveries` (one row per event and endpoint, claimed like the
//! outbox: lease, fence, order per complaint) and `webhook_attempts` (one row
//! per attempt, never updated).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::domain::{AttemptOutcome, StepState};

/// Records a configured endpoint (by URL) and its event filter; a new one
/// starts at the feed's present: events settled before are not sent.
/// Returns its id.
pub async fn register(
    pool: &PgPool,
    url: &str,
    events: Option<&[String]>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO lapor_bridge.webhook_endpoints (url, events, after_txid, after_id)
         VALUES ($1, $2, txid_snapshot_xmin(txid_current_snapshot()) - 1, 9223372036854775807)
         ON CONFLICT (url) DO UPDATE SET events = EXCLUDED.events
         RETURNING id",
    )
    .bind(url)
    .bind(events)
    .fetch_one(pool)
    .await
}

/// Turns the next settled events after an endpoint's position into
/// deliveries (those its filter takes) and moves the position, in one
/// statement. An endpoint another replica is fanning out, or a disabled one,
/// is skipped. Returns how many events were read (`limit`: read again).
pub async fn fan_out(
    pool: &PgPool,
    endpoint_id: i64,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<i64, sqlx::Error> {
    let read: Option<i64> = sqlx::query_scalar(
        "WITH ep AS (
             SELECT id, after_txid, after_id, events FROM lapor_bridge.webhook_endpoints
              WHERE id = $1 AND disabled_at IS NULL
              FOR UPDATE SKIP LOCKED),
         ev AS (
             SELECT e.id, e.txid, e.type, e.complaint_id FROM lapor_bridge.events e, ep
              WHERE (e.txid, e.id) > (ep.after_txid, ep.after_id)
                AND e.txid < txid_snapshot_xmin(txid_current_snapshot())
              ORDER BY e.txid, e.id
              LIMIT $3),
         ins AS (
             INSERT INTO lapor_bridge.webhook_deliveries
                 (endpoint_id, event_id, event_txid, complaint_id, next_attempt_at)
             SELECT ep.id, ev.id, ev.txid, ev.complaint_id, $2
               FROM ev, ep
              WHERE ep.events IS NULL OR ev.type = ANY (ep.events)
              ORDER BY ev.txid, ev.id
             ON CONFLICT (endpoint_id, event_id) DO NOTHING
             RETURNING 1),
         last AS (SELECT txid, id FROM ev ORDER BY txid DESC, id DESC LIMIT 1)
         UPDATE lapor_bridge.webhook_endpoints w
            SET after_txid = last.txid, after_id = last.id
           FROM last
          WHERE w.id = $1
      RETURNING (SELECT count(*) FROM ev)",
    )
    .bind(endpoint_id)
    .bind(now)
    .bind(limit)
    .fetch_optional(pool)
    .await?;
    Ok(read.unwrap_or(0))
}

/// A delivery claimed by one worker, with its event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub fence: i64,
    pub attempts: i32,
    pub complaint_id: i64,
    pub event_id: i64,
    pub event_txid: i64,
    pub event_type: String,
    pub event_at: DateTime<Utc>,
    pub event_data: Value,
}

/// Claims up to `limit` due deliveries to the given (enabled) endpoints: of
/// each complaint and endpoint only the first unfinished one, so a receiver
/// gets a complaint's events in feed order. Committed before any call.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    endpoint_ids: &[i64],
    now: DateTime<Utc>,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT d.id FROM lapor_bridge.webhook_deliveries d
               JOIN lapor_bridge.webhook_endpoints w ON w.id = d.endpoint_id
              WHERE d.state = 'pending' AND d.next_attempt_at <= $1
                AND d.endpoint_id = ANY ($2) AND w.disabled_at IS NULL
                AND NOT EXISTS (
                    SELECT 1 FROM lapor_bridge.webhook_deliveries p
                     WHERE p.endpoint_id = d.endpoint_id AND p.complaint_id = d.complaint_id
                       AND (p.event_txid, p.event_id) < (d.event_txid, d.event_id)
                       AND p.state IN ('pending', 'running', 'dead'))
              ORDER BY d.next_attempt_at, d.id
              LIMIT $3
              FOR UPDATE OF d SKIP LOCKED)
         UPDATE lapor_bridge.webhook_deliveries d
            SET state = 'running', lease_owner = $4,
                lease_expires_at = $1 + make_interval(secs => $5), fence = d.fence + 1
           FROM due, lapor_bridge.events e
          WHERE d.id = due.id AND e.id = d.event_id
      RETURNING d.id, d.endpoint_id, d.fence, d.attempts, d.complaint_id, e.id AS event_id,
                e.txid AS event_txid, e.type AS event_type, e.at AS event_at,
                e.data AS event_data",
    )
    .bind(now)
    .bind(endpoint_ids)
    .bind(limit)
    .bind(owner)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

/// The new state of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryNext {
    Done,
    Dead,
    /// Again at `at`; `count_attempt`: counted against the attempts.
    Pending {
        at: DateTime<Utc>,
        count_attempt: bool,
    },
}

/// One attempt's outcome, fenced by the claim. Returns whether the worker
/// still held the delivery (false: a rescue took it; nothing changed).
pub async fn complete(
    conn: &mut PgConnection,
    id: i64,
    fence: i64,
    next: &DeliveryNext,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (state, at, count) = match next {
        DeliveryNext::Done => (StepState::Done, now, true),
        DeliveryNext::Dead => (StepState::Dead, now, true),
        DeliveryNext::Pending { at, count_attempt } => (StepState::Pending, *at, *count_attempt),
    };
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_deliveries
            SET state = $3, next_attempt_at = $4,
                attempts = attempts + CASE WHEN $5 THEN 1 ELSE 0 END,
                last_error = $6, lease_owner = NULL, lease_expires_at = NULL,
                finished_at = CASE WHEN $3 IN ('done', 'dead') THEN $7 END
          WHERE id = $1 AND fence = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(fence)
    .bind(state.as_str())
    .bind(at)
    .bind(count)
    .bind(last_error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One attempt, as history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WebhookAttempt {
    pub delivery_id: i64,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub http_status: Option<i32>,
    pub message: Option<String>,
    pub outcome: AttemptOutcome,
}

pub async fn record_attempt(
    conn: &mut PgConnection,
    a: &WebhookAttempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lapor_bridge.webhook_attempts
             (delivery_id, attempt, started_at, duration_ms, http_status, message, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.delivery_id)
    .bind(a.attempt)
    .bind(a.started_at)
    .bind(a.duration_ms)
    .bind(a.http_status)
    .bind(&a.message)
    .bind(a.outcome.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn attempts_of(
    pool: &PgPool,
    delivery_id: i64,
) -> Result<Vec<WebhookAttempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT delivery_id, attempt, started_at, duration_ms, http_status, message, outcome
           FROM lapor_bridge.webhook_attempts WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await
}

/// Disables an endpoint (a `410 Gone`); false when it was disabled already.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_endpoints SET disabled_at = $3, disabled_reason = $2
          WHERE id = $1 AND disabled_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Operator action: enables a disabled endpoint; its pending deliveries
/// resume and the events written meanwhile follow. Returns the reason it
/// was disabled for, `None` when it was not disabled.
pub async fn enable_endpoint(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE lapor_bridge.webhook_endpoints w
            SET disabled_at = NULL, disabled_reason = NULL
           FROM (SELECT disabled_reason FROM lapor_bridge.webhook_endpoints
                  WHERE id = $1 FOR UPDATE) old
          WHERE w.id = $1 AND w.disabled_at IS NOT NULL
      RETURNING old.disabled_reason",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Returns expired leases to the queue (the worker stopped answering). The
/// receiver may have had the event already: delivery is at least once.
pub async fn rescue_expired(pool: &PgPool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_deliveries
            SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                fence = fence + 1, next_attempt_at = $1,
                last_error = 'lease expired: the worker stopped answering'
          WHERE state = 'running' AND lease_expires_at < $1",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes finished deliveries older than the retention (their attempts
/// keep the history).
pub async fn prune(pool: &PgPool, older_than: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM lapor_bridge.webhook_deliveries
          WHERE state IN ('done', 'discarded') AND finished_at < $1",
    )
    .bind(older_than)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Gives back a delivery this worker holds but will not finish (shutdown).
pub async fn release(pool: &PgPool, id: i64, fence: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_deliveries
            SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                fence = fence + 1
          WHERE id = $1 AND fence = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(fence)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The earliest time a claimable delivery becomes due: deliveries to a
/// disabled endpoint, or behind an earlier unfinished one of their
/// complaint, do not count.
pub async fn next_due(
    pool: &PgPool,
    endpoint_ids: &[i64],
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(d.next_attempt_at) FROM lapor_bridge.webhook_deliveries d
           JOIN lapor_bridge.webhook_endpoints w ON w.id = d.endpoint_id
          WHERE d.state = 'pending' AND d.endpoint_id = ANY ($1) AND w.disabled_at IS NULL
            AND NOT EXISTS (
                SELECT 1 FROM lapor_bridge.webhook_deliveries p
                 WHERE p.endpoint_id = d.endpoint_id AND p.complaint_id = d.complaint_id
                   AND (p.event_txid, p.event_id) < (d.event_txid, d.event_id)
                   AND p.state IN ('pending', 'running', 'dead'))",
    )
    .bind(endpoint_ids)
    .fetch_one(pool)
    .await
}

/// A delivery as operators see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryView {
    pub id: i64,
    pub endpoint_id: i64,
    pub url: String,
    pub event_id: String,
    pub event_type: String,
    pub local_ref: Option<String>,
    pub state: StepState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const DELIVERY_VIEW: &str = "SELECT d.id, d.endpoint_id, w.url, 'evt_' || d.event_id AS event_id,
        e.type AS event_type, c.local_ref, d.state, d.attempts, d.next_attempt_at, d.last_error,
        d.created_at, d.finished_at
   FROM lapor_bridge.webhook_deliveries d
   JOIN lapor_bridge.webhook_endpoints w ON w.id = d.endpoint_id
   JOIN lapor_bridge.events e ON e.id = d.event_id
   LEFT JOIN lapor_bridge.complaints c ON c.id = d.complaint_id";

/// Deliveries in one state (`pending` also lists running ones), oldest first.
pub async fn list(
    pool: &PgPool,
    state: Option<StepState>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<DeliveryView>, i64), sqlx::Error> {
    let states = StepState::filter_codes(state);
    let sql = format!("{DELIVERY_VIEW} WHERE d.state = ANY($1) ORDER BY d.id LIMIT $2 OFFSET $3");
    let items = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&states)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.webhook_deliveries WHERE state = ANY($1)",
    )
    .bind(&states)
    .fetch_one(pool)
    .await?;
    Ok((items, total))
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<DeliveryView>, sqlx::Error> {
    let sql = format!("{DELIVERY_VIEW} WHERE d.id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Operator action: a dead delivery goes back to the queue with fresh
/// attempts.
pub async fn retry_dead(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_deliveries
            SET state = 'pending', attempts = 0, finished_at = NULL, fence = fence + 1,
                next_attempt_at = $2
          WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Operator action: a dead or pending delivery is given up (the complaint's
/// later events to that endpoint go ahead).
pub async fn discard(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.webhook_deliveries
            SET state = 'discarded', finished_at = $2, fence = fence + 1,
                lease_owner = NULL, lease_expires_at = NULL
          WHERE id = $1 AND state IN ('dead', 'pending')",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An endpoint as operators see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub events: Option<Vec<String>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub pending: i64,
    pub dead: i64,
}

pub async fn endpoints(pool: &PgPool) -> Result<Vec<EndpointView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.id, w.url, w.events, w.disabled_at, w.disabled_reason,
                count(*) FILTER (WHERE d.state IN ('pending', 'running')) AS pending,
                count(*) FILTER (WHERE d.state = 'dead') AS dead
           FROM lapor_bridge.webhook_endpoints w
           LEFT JOIN lapor_bridge.webhook_deliveries d ON d.endpoint_id = w.id
          GROUP BY w.id ORDER BY w.id",
    )
    .fetch_all(pool)
    .await
}

pub async fn endpoint_url(conn: &mut PgConnection, id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT url FROM lapor_bridge.webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The local reference of a complaint, for audit entries.
pub async fn local_ref_of(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT local_ref FROM lapor_bridge.complaints WHERE id = $1")
        .bind(complaint_id)
        .fetch_optional(conn)
        .await
}

/// Deliveries per state, and endpoints disabled (for the metrics).
pub async fn depth(pool: &PgPool) -> Result<(Vec<(StepState, i64)>, i64), sqlx::Error> {
    let states = sqlx::query_as(
        "SELECT state, count(*) FROM lapor_bridge.webhook_deliveries
          WHERE state IN ('pending', 'running', 'dead') GROUP BY state ORDER BY state",
    )
    .fetch_all(pool)
    .await?;
    let disabled = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.webhook_endpoints WHERE disabled_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok((states, disabled))
}
