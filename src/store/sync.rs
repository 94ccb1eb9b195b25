//! SQL of pull and reconciliation's own state: `sync_cursors` (how far each
//! LAPOR! listing was read) and the tracked complaints as the steady-state
//! comparison reads them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The stored position of listing `name` (`inbox`, `created`), if any.
pub async fn cursor(pool: &PgPool, name: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM lapor_bridge.sync_cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Moves listing `name`'s cursor to `value`; it never moves back.
pub async fn save_cursor(
    pool: &PgPool,
    name: &str,
    value: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lapor_bridge.sync_cursors (name, value, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (name) DO UPDATE SET value = greatest(sync_cursors.value, $2), updated_at = now()",
    )
    .bind(name)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// A tracked complaint (linked to LAPOR!) with what the steady-state
/// comparison of pull and reconciliation needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tracked {
    pub id: i64,
    pub local_ref: String,
    pub lapor_complaint_id: i64,
    pub lapor_status_name: Option<String>,
    pub status: Option<String>,
    pub lapor_disposition_id: Option<i64>,
    pub conflict_reason: Option<String>,
    pub dispositioned: bool,
    /// LAPOR!'s `updated_at` when we last read it.
    pub lapor_updated_at: Option<DateTime<Utc>>,
    /// Filed on lapor.go.id and imported from our inbox (not created by us).
    pub imported: bool,
    /// LAPOR! ids of the follow-ups we hold for it.
    pub linked: Vec<i64>,
}

/// Tracked complaints in one query; callers append their own conditions.
const TRACKED: &str =
    "SELECT c.id, c.local_ref, c.lapor_complaint_id, c.lapor_status_name, c.status,
        c.lapor_disposition_id, c.conflict_reason, c.dispositioned_at IS NOT NULL AS dispositioned,
        c.lapor_updated_at, c.origin = 'lapor' AS imported,
        coalesce((SELECT array_agg(f.lapor_followup_id) FROM lapor_bridge.followups f
                   WHERE f.complaint_id = c.id AND f.lapor_followup_id IS NOT NULL), '{}')
        || coalesce((SELECT array_agg(x) FROM lapor_bridge.upstream_duplicates d,
                            unnest(d.lapor_ids[2:]) AS x
                      WHERE d.complaint_id = c.id AND d.followup_id IS NOT NULL), '{}') AS linked
   FROM lapor_bridge.complaints c
  WHERE c.lapor_complaint_id IS NOT NULL";

/// What a pull re-reads: every open tracked complaint, and those whose
/// LAPOR! id is in `moved` (listed in the window), by id.
pub async fn tracked_open_or_moved(
    pool: &PgPool,
    moved: &[i64],
) -> Result<Vec<Tracked>, sqlx::Error> {
    let sql = format!(
        "{TRACKED} AND (c.closed_at IS NULL OR c.lapor_complaint_id = ANY($1)) ORDER BY c.id"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(moved)
        .fetch_all(pool)
        .await
}

/// What reconciliation compares: every tracked complaint open or closed
/// since `horizon`, by id.
pub async fn tracked_within(
    pool: &PgPool,
    horizon: DateTime<Utc>,
) -> Result<Vec<Tracked>, sqlx::Error> {
    let sql = format!("{TRACKED} AND (c.closed_at IS NULL OR c.closed_at >= $1) ORDER BY c.id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(horizon)
        .fetch_all(pool)
        .await
}
