//! SQL of the change feed: `events` (append-only, written by the triggers of
//! migration `change_feed` and by the SLA check) and its reading order.
//!
//! An event's position is `(txid, id)`: the transaction that wrote it and its
//! id. Readers see only events whose transaction is older than the oldest
//! transaction still running (`txid_snapshot_xmin`), so every event a reader
//! has not seen yet comes after the position it holds, even when its
//! transaction commits after a later one's.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// One event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub txid: i64,
    pub id: i64,
    pub r#type: String,
    pub complaint_id: i64,
    pub at: DateTime<Utc>,
    pub data: Value,
}

/// Events after `(after_txid, after_id)` in feed order, settled ones only.
/// `submitted_by`: only events of complaints that this intake token
/// submitted.
pub async fn read(
    pool: &PgPool,
    after_txid: i64,
    after_id: i64,
    limit: i64,
    submitted_by: Option<&str>,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.txid, e.id, e.type, e.complaint_id, e.at, e.data
           FROM lapor_bridge.events e
          WHERE (e.txid, e.id) > ($1, $2)
            AND e.txid < txid_snapshot_xmin(txid_current_snapshot())
            AND ($4::text IS NULL OR EXISTS (
                    SELECT 1 FROM lapor_bridge.complaints c
                     WHERE c.id = e.complaint_id AND c.submitted_by = $4))
          ORDER BY e.txid, e.id
          LIMIT $3",
    )
    .bind(after_txid)
    .bind(after_id)
    .bind(limit)
    .bind(submitted_by)
    .fetch_all(pool)
    .await
}

/// The facts of the SLA of every open complaint, for the deadline check:
/// `(id, created_at, dispositioned_at, first_followup_by_us_at,
/// last_followup_at)`.
pub type SlaFactsRow = (
    i64,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// In the caller's transaction (the one holding the check's lock), so the
/// scan needs no second connection.
pub async fn open_sla_facts(conn: &mut PgConnection) -> Result<Vec<SlaFactsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, coalesce(lapor_created_at, created_at), dispositioned_at,
                first_followup_by_us_at, last_followup_at
           FROM lapor_bridge.complaints WHERE closed_at IS NULL",
    )
    .fetch_all(conn)
    .await
}

/// An event that must be written once: a second insert with the same
/// `once_key` does nothing.
#[derive(Debug, Clone)]
pub struct OnceEvent {
    pub r#type: &'static str,
    pub complaint_id: i64,
    pub once_key: String,
    /// Merged into the complaint's `local_ref` and `lapor_complaint_id`.
    pub data: Value,
}

/// Writes events once each, in one statement. Returns how many were new.
pub async fn insert_once(
    conn: &mut PgConnection,
    events: &[OnceEvent],
) -> Result<u64, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "INSERT INTO lapor_bridge.events (type, complaint_id, data, once_key)
         SELECT b.type, b.complaint_id, lapor_bridge.event_subject(c) || b.data, b.once_key
           FROM unnest($1::text[], $2::bigint[], $3::jsonb[], $4::text[])
                    WITH ORDINALITY AS b(type, complaint_id, data, once_key, n)
           JOIN lapor_bridge.complaints c ON c.id = b.complaint_id
          ORDER BY b.n
         ON CONFLICT (once_key) DO NOTHING",
    )
    .bind(events.iter().map(|e| e.r#type).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.complaint_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.once_key.clone())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Takes the SLA check's transaction-level lock: one replica checks at a
/// time (the others skip this round).
pub async fn try_lock_sla_check(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7305872400)")
        .fetch_one(conn)
        .await
}

/// The newest settled position (for the metrics): `None` when no event is
/// settled yet.
pub async fn head(pool: &PgPool) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT txid, id FROM lapor_bridge.events
          WHERE txid < txid_snapshot_xmin(txid_current_snapshot())
          ORDER BY txid DESC, id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// Events committed or being written that readers cannot take yet: their
/// transaction, or an older one anywhere on the server, is still running.
pub async fn unsettled(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.events
          WHERE txid >= txid_snapshot_xmin(txid_current_snapshot())",
    )
    .fetch_one(pool)
    .await
}
