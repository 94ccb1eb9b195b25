//! SQL of `upstream_duplicates`: copies on LAPOR! of one local complaint or
//! follow-up that could not be prevented (a backend that committed after the
//! lookup delay), kept for operators to have archived upstream.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Records the LAPOR! ids that carry one local item (`followup_id` `None`:
/// the complaint itself), merged with those already known; `linked` stays
/// first. Returns the full list when it grew (nothing new: `None`).
pub async fn record(
    conn: &mut PgConnection,
    complaint_id: i64,
    followup_id: Option<i64>,
    linked: i64,
    copies: &[i64],
    now: DateTime<Utc>,
) -> Result<Option<Vec<i64>>, sqlx::Error> {
    let known: Option<Vec<i64>> = sqlx::query_scalar(
        "SELECT lapor_ids FROM lapor_bridge.upstream_duplicates
          WHERE complaint_id = $1 AND followup_id IS NOT DISTINCT FROM $2 FOR UPDATE",
    )
    .bind(complaint_id)
    .bind(followup_id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut ids = vec![linked];
    let mut rest: Vec<i64> = known
        .iter()
        .flatten()
        .chain(copies)
        .copied()
        .filter(|id| *id != linked)
        .collect();
    rest.sort_unstable();
    rest.dedup();
    ids.extend(rest);
    if ids.len() < 2 || known.as_ref() == Some(&ids) {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO lapor_bridge.upstream_duplicates (complaint_id, followup_id, lapor_ids, found_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (complaint_id, followup_id) DO UPDATE SET lapor_ids = EXCLUDED.lapor_ids",
    )
    .bind(complaint_id)
    .bind(followup_id)
    .bind(&ids)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(ids))
}

/// LAPOR! ids of follow-ups known to be copies of one of ours on a complaint
/// (not to be imported as follow-ups of their own).
pub async fn followup_copies(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT unnest(lapor_ids[2:]) FROM lapor_bridge.upstream_duplicates
          WHERE complaint_id = $1 AND followup_id IS NOT NULL",
    )
    .bind(complaint_id)
    .fetch_all(conn)
    .await
}

/// Copies on LAPOR! beyond the one linked, complaints and follow-ups alike
/// (the gauge `lapor_bridge_upstream_duplicates`).
pub async fn count_copies(pool: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(cardinality(lapor_ids) - 1), 0)::bigint
           FROM lapor_bridge.upstream_duplicates",
    )
    .fetch_one(pool)
    .await
}

/// Every recorded set of copies of one complaint, for its page and API:
/// (local follow-up id or `None`, LAPOR! ids with the linked one first).
pub async fn of_complaint(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<Vec<(Option<i64>, Vec<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT followup_id, lapor_ids FROM lapor_bridge.upstream_duplicates
          WHERE complaint_id = $1 ORDER BY followup_id NULLS FIRST",
    )
    .bind(complaint_id)
    .fetch_all(conn)
    .await
}
