//! SQL of the complaint family: `complaints`, `followups`, `attachments`, and
//! the derived view `complaint_sync`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::domain::{ConflictKind, SyncState};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("invalid complaint")]
    Invalid(BTreeMap<String, Vec<String>>),
    #[error("local_ref already holds another complaint")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Submits through `lapor_bridge.submit_complaint`, the one implementation
/// shared with applications that call it directly. Returns whether the
/// complaint is new.
pub async fn submit(conn: &mut PgConnection, doc: &Value) -> Result<bool, SubmitError> {
    let result: Result<Value, sqlx::Error> =
        sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1)")
            .bind(doc)
            .fetch_one(conn)
            .await;
    match result {
        Ok(v) => Ok(v.get("created").and_then(Value::as_bool).unwrap_or(false)),
        Err(sqlx::Error::Database(db)) => {
            let code = db.code().map(|c| c.to_string());
            match code.as_deref() {
                Some("LB409") => Err(SubmitError::Conflict),
                Some("LB422") => {
                    let detail = db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .and_then(|pg| pg.detail())
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    Err(SubmitError::Invalid(detail))
                }
                _ => Err(SubmitError::Db(sqlx::Error::Database(db))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A complaint with its derived sync state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ComplaintRow {
    pub id: i64,
    pub local_ref: String,
    pub origin: String,
    pub title: String,
    pub content: String,
    pub category_id: Option<i64>,
    pub disposition_id: Option<i64>,
    pub location_id: Option<i64>,
    pub date_of_incident: Option<NaiveDate>,
    pub is_anonymous: bool,
    pub is_secret: bool,
    /// `nonce || ciphertext` of the reporter identity (see `crate::pii`).
    pub reporter_ciphertext: Option<Vec<u8>>,
    pub reporter_key_id: Option<String>,
    /// Plain text staged by `submit_complaint`, not yet encrypted (the text
    /// itself is never read into a row).
    pub reporter_staged: bool,
    pub reporter_erased_at: Option<DateTime<Utc>>,
    pub reporter_erasure: Option<String>,
    pub lapor_complaint_id: Option<i64>,
    pub tracking_id: Option<String>,
    pub lapor_status_name: Option<String>,
    pub status: Option<String>,
    pub lapor_disposition_id: Option<i64>,
    pub lapor_created_at: Option<DateTime<Utc>>,
    pub lapor_updated_at: Option<DateTime<Utc>>,
    pub dispositioned_at: Option<DateTime<Utc>>,
    pub first_followup_by_us_at: Option<DateTime<Utc>>,
    pub last_followup_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub conflict_reason: Option<String>,
    pub last_error: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sync_state: SyncState,
    pub pending_ops: i64,
    pub step_error: Option<String>,
    /// Why the first waiting step waits (a code of
    /// `crate::outbox::waiting::WaitingReason`), and until when.
    pub waiting_reason: Option<String>,
    pub waiting_until: Option<DateTime<Utc>>,
}

/// The stored columns of a complaint, in `ComplaintRow` order.
const COLUMNS: &str = "id, local_ref, origin, title, content, category_id, disposition_id,
        location_id, date_of_incident, is_anonymous, is_secret, reporter_ciphertext,
        reporter_key_id, reporter_pending IS NOT NULL AS reporter_staged, reporter_erased_at,
        reporter_erasure, lapor_complaint_id,
        tracking_id, lapor_status_name, status, lapor_disposition_id, lapor_created_at,
        lapor_updated_at, dispositioned_at, first_followup_by_us_at, last_followup_at,
        closed_at, conflict_reason, last_error, last_synced_at, created_at, updated_at";

fn select_sync() -> String {
    format!(
        "SELECT {COLUMNS}, sync_state, pending_ops, step_error, waiting_reason, waiting_until
           FROM lapor_bridge.complaint_sync"
    )
}

pub async fn by_ref(pool: &PgPool, local_ref: &str) -> Result<Option<ComplaintRow>, sqlx::Error> {
    let sql = format!("{} WHERE local_ref = $1", select_sync());
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(local_ref)
        .fetch_optional(pool)
        .await
}

/// One complaint without its derived sync state (cheap: no outbox scan), for
/// delivery. `sync_state` (read as `pending`), `pending_ops` and
/// `step_error` are not filled.
pub async fn for_delivery(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<ComplaintRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, 'pending' AS sync_state, 0::bigint AS pending_ops, NULL::text AS step_error,
                NULL::text AS waiting_reason, NULL::timestamptz AS waiting_until
           FROM lapor_bridge.complaints WHERE id = $1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn by_id(conn: &mut PgConnection, id: i64) -> Result<Option<ComplaintRow>, sqlx::Error> {
    let sql = format!("{} WHERE id = $1", select_sync());
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Filters of the complaint list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub sync_state: Option<SyncState>,
    pub status: Option<String>,
    pub search: Option<String>,
}

pub async fn list(
    pool: &PgPool,
    filter: &ListFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ComplaintRow>, i64), sqlx::Error> {
    let cond = "WHERE ($1::text IS NULL OR sync_state = $1)
                  AND ($2::text IS NULL OR status = $2 OR ($2 = 'unknown' AND status IS NULL AND lapor_status_name IS NOT NULL))
                  AND ($3::text IS NULL OR local_ref ILIKE '%' || $3 || '%'
                       OR tracking_id = $3 OR lapor_complaint_id::text = $3)";
    let sql = format!(
        "{} {cond} ORDER BY id DESC LIMIT $4 OFFSET $5",
        select_sync()
    );
    let items = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.sync_state.map(SyncState::as_str))
        .bind(&filter.status)
        .bind(&filter.search)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let sql = format!("SELECT count(*) FROM lapor_bridge.complaint_sync {cond}");
    let total = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(filter.sync_state.map(SyncState::as_str))
        .bind(&filter.status)
        .bind(&filter.search)
        .fetch_one(pool)
        .await?;
    Ok((items, total))
}

pub async fn count_by_sync_state(pool: &PgPool) -> Result<Vec<(SyncState, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sync_state, count(*) FROM lapor_bridge.complaint_sync GROUP BY sync_state ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// Locks a complaint row for a change in this transaction.
pub async fn lock_by_ref(
    conn: &mut PgConnection,
    local_ref: &str,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, lapor_complaint_id FROM lapor_bridge.complaints WHERE local_ref = $1 FOR UPDATE",
    )
    .bind(local_ref)
    .fetch_optional(conn)
    .await
}

pub async fn insert_local_followup(
    conn: &mut PgConnection,
    complaint_id: i64,
    content: &str,
    is_secret: bool,
    institution_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO lapor_bridge.followups (complaint_id, origin, content, is_secret, institution_id, created_at)
         VALUES ($1, 'local', $2, $3, $4, $5) RETURNING id",
    )
    .bind(complaint_id)
    .bind(content)
    .bind(is_secret)
    .bind(institution_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FollowupRow {
    pub id: i64,
    pub origin: String,
    pub content: String,
    pub is_secret: bool,
    pub institution_id: Option<i64>,
    pub lapor_followup_id: Option<i64>,
    pub lapor_created_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When it first left for LAPOR! (`None`: never, so it cannot be on
    /// LAPOR!): an upstream follow-up older than this cannot be this one.
    pub sent_from: Option<DateTime<Utc>>,
    /// The lookup floor of its last write with an unknown outcome (`None`:
    /// every answer was seen, so LAPOR! cannot hold a second copy).
    pub unknown_until: Option<DateTime<Utc>>,
}

const FOLLOWUP_ROW: &str = "SELECT f.id, f.origin, f.content, f.is_secret, f.institution_id,
        f.lapor_followup_id, f.lapor_created_at, f.created_at,
        (SELECT min(coalesce(o.first_sent_at,
                             CASE WHEN o.needs_lookup THEN o.first_attempt_at END))
           FROM lapor_bridge.outbox o WHERE o.followup_id = f.id) AS sent_from,
        (SELECT max(o.lookup_not_before) FROM lapor_bridge.outbox o
          WHERE o.followup_id = f.id) AS unknown_until
   FROM lapor_bridge.followups f";

pub async fn followups_of(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<Vec<FollowupRow>, sqlx::Error> {
    let sql = format!("{FOLLOWUP_ROW} WHERE f.complaint_id = $1 ORDER BY f.id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(complaint_id)
        .fetch_all(conn)
        .await
}

pub async fn followup(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<FollowupRow>, sqlx::Error> {
    let sql = format!("{FOLLOWUP_ROW} WHERE f.id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Links a local follow-up to its LAPOR! id once delivered or found.
pub async fn link_followup(
    conn: &mut PgConnection,
    id: i64,
    lapor_followup_id: i64,
    lapor_created_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.followups SET lapor_followup_id = $2,
                lapor_created_at = coalesce($3, lapor_created_at)
          WHERE id = $1",
    )
    .bind(id)
    .bind(lapor_followup_id)
    .bind(lapor_created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that one of our follow-ups is on LAPOR!, for the SLA.
pub async fn note_our_followup(
    conn: &mut PgConnection,
    complaint_id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET first_followup_by_us_at = CASE
                    WHEN first_followup_by_us_at IS NULL
                      OR (dispositioned_at IS NOT NULL AND first_followup_by_us_at < dispositioned_at)
                    THEN $2 ELSE first_followup_by_us_at END,
                last_followup_at = greatest(last_followup_at, $2),
                updated_at = $2
          WHERE id = $1",
    )
    .bind(complaint_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentRow {
    pub id: i64,
    pub file_name: String,
    pub content: Vec<u8>,
    pub lapor_file_id: Option<i64>,
}

pub async fn attachments_of(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<Vec<AttachmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, file_name, content, lapor_file_id FROM lapor_bridge.attachments
          WHERE complaint_id = $1 ORDER BY id",
    )
    .bind(complaint_id)
    .fetch_all(conn)
    .await
}

pub async fn link_attachment(
    conn: &mut PgConnection,
    id: i64,
    lapor_file_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE lapor_bridge.attachments SET lapor_file_id = $2 WHERE id = $1")
        .bind(id)
        .bind(lapor_file_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the LAPOR! ids of a complaint once created (or found), unless it
/// is linked to another LAPOR! complaint already (that link stays: the new
/// one is a copy). Returns the LAPOR! id the complaint is linked to.
pub async fn link_created(
    conn: &mut PgConnection,
    complaint_id: i64,
    lapor_complaint_id: i64,
    tracking_id: &str,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let linked = link_created_many(
        conn,
        &[complaint_id],
        &[lapor_complaint_id],
        &[tracking_id.to_string()],
        &[now],
    )
    .await?;
    Ok(linked.first().map_or(lapor_complaint_id, |(_, id)| *id))
}

/// `link_created` for several complaints in one statement: returns each
/// complaint with the LAPOR! id it is linked to afterwards.
pub async fn link_created_many(
    conn: &mut PgConnection,
    complaint_ids: &[i64],
    lapor_complaint_ids: &[i64],
    tracking_ids: &[String],
    now: &[DateTime<Utc>],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "WITH b AS (
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[])
                 AS b(id, lapor_id, tracking, now)),
         linked AS (
             UPDATE lapor_bridge.complaints c
                SET lapor_complaint_id = b.lapor_id, tracking_id = b.tracking,
                    lapor_status_name = coalesce(c.lapor_status_name, 'Belum Terverifikasi'),
                    status = coalesce(c.status, 'unverified'),
                    last_synced_at = b.now, updated_at = b.now, last_error = NULL
               FROM b
              WHERE c.id = b.id
                AND (c.lapor_complaint_id IS NULL OR c.lapor_complaint_id = b.lapor_id)
          RETURNING c.id, c.lapor_complaint_id)
         SELECT b.id, coalesce(l.lapor_complaint_id, c.lapor_complaint_id, b.lapor_id)
           FROM b
           LEFT JOIN linked l ON l.id = b.id
           LEFT JOIN lapor_bridge.complaints c ON c.id = b.id",
    )
    .bind(complaint_ids)
    .bind(lapor_complaint_ids)
    .bind(tracking_ids)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Links a local follow-up that has no LAPOR! id yet; false when it had one.
pub async fn link_followup_if_unlinked(
    conn: &mut PgConnection,
    id: i64,
    lapor_followup_id: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.followups SET lapor_followup_id = $2
          WHERE id = $1 AND lapor_followup_id IS NULL",
    )
    .bind(id)
    .bind(lapor_followup_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_last_error(
    conn: &mut PgConnection,
    complaint_id: i64,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE lapor_bridge.complaints SET last_error = $2 WHERE id = $1")
        .bind(complaint_id)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// Flags a complaint that is not on LAPOR! (its create was discarded) as a
/// conflict, so that it never reads as synced. Returns whether it was flagged.
pub async fn flag_unfiled(
    conn: &mut PgConnection,
    local_ref: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE lapor_bridge.complaints SET conflict_reason = $2, updated_at = $3
          WHERE local_ref = $1 AND lapor_complaint_id IS NULL",
    )
    .bind(local_ref)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The LAPOR!-owned fields of one complaint, as last seen.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UpstreamFields {
    pub lapor_status_name: Option<String>,
    pub status: Option<String>,
    pub lapor_disposition_id: Option<i64>,
    pub conflict_reason: Option<String>,
}

pub async fn upstream_fields(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<UpstreamFields, sqlx::Error> {
    sqlx::query_as(
        "SELECT lapor_status_name, status, lapor_disposition_id, conflict_reason
           FROM lapor_bridge.complaints WHERE id = $1 FOR UPDATE",
    )
    .bind(complaint_id)
    .fetch_one(conn)
    .await
}

/// Stores what LAPOR! says of status and disposition. `status` is `None` for
/// an unknown status name, which is kept raw in `lapor_status_name`.
#[allow(clippy::too_many_arguments)]
pub async fn store_upstream(
    conn: &mut PgConnection,
    complaint_id: i64,
    fields: &UpstreamFields,
    dispositioned_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    lapor_created_at: DateTime<Utc>,
    lapor_updated_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET lapor_status_name = $2, status = $3, lapor_disposition_id = $4,
                conflict_reason = $5,
                dispositioned_at = coalesce($6, dispositioned_at),
                closed_at = $7,
                lapor_created_at = $8, lapor_updated_at = $9,
                last_synced_at = $10, updated_at = $10
          WHERE id = $1",
    )
    .bind(complaint_id)
    .bind(&fields.lapor_status_name)
    .bind(&fields.status)
    .bind(fields.lapor_disposition_id)
    .bind(&fields.conflict_reason)
    .bind(dispositioned_at)
    .bind(closed_at)
    .bind(lapor_created_at)
    .bind(lapor_updated_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn touch_synced(
    conn: &mut PgConnection,
    complaint_id: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE lapor_bridge.complaints SET last_synced_at = $2 WHERE id = $1")
        .bind(complaint_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a complaint's conflict reason; returns the reason it replaced, or
/// `None` when the same reason was set already (nothing written).
pub async fn set_conflict(
    conn: &mut PgConnection,
    complaint_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE lapor_bridge.complaints c SET conflict_reason = $2, updated_at = $3
           FROM (SELECT conflict_reason FROM lapor_bridge.complaints WHERE id = $1 FOR UPDATE) old
          WHERE c.id = $1 AND c.conflict_reason IS DISTINCT FROM $2
      RETURNING old.conflict_reason",
    )
    .bind(complaint_id)
    .bind(reason)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Clears the conflict set when a create was discarded, once LAPOR! shows
/// the complaint after all. Returns the reason cleared.
pub async fn clear_unfiled(
    conn: &mut PgConnection,
    complaint_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE lapor_bridge.complaints c SET conflict_reason = NULL, updated_at = $4
           FROM (SELECT conflict_reason FROM lapor_bridge.complaints WHERE id = $1 FOR UPDATE) old
          WHERE c.id = $1 AND (starts_with(c.conflict_reason, $2) OR starts_with(c.conflict_reason, $3))
      RETURNING old.conflict_reason",
    )
    .bind(complaint_id)
    .bind(NOT_ON_LAPOR)
    .bind(MAY_BE_ON_LAPOR)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Prefix of the conflict reason of a complaint whose create was discarded
/// before it could have reached LAPOR!.
pub const NOT_ON_LAPOR: &str = ConflictKind::NotOnLapor.prefix();
/// Prefix of the conflict reason of a complaint whose create was discarded
/// after an attempt whose outcome is unknown.
pub const MAY_BE_ON_LAPOR: &str = ConflictKind::MayBeOnLapor.prefix();

/// Where listing what LAPOR! holds as created by us must start: the oldest
/// local complaint that is not linked, or not closed before `horizon`.
pub async fn oldest_to_match_upstream(
    pool: &PgPool,
    horizon: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(created_at) FROM lapor_bridge.complaints
          WHERE origin = 'local'
            AND (lapor_complaint_id IS NULL OR closed_at IS NULL OR closed_at >= $1)",
    )
    .bind(horizon)
    .fetch_one(pool)
    .await
}

/// Local complaints by reference: id and LAPOR! id.
pub async fn local_by_refs(
    pool: &PgPool,
    refs: &[&str],
) -> Result<std::collections::HashMap<String, (i64, Option<i64>)>, sqlx::Error> {
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT local_ref, id, lapor_complaint_id FROM lapor_bridge.complaints
          WHERE origin = 'local' AND local_ref = ANY($1)",
    )
    .bind(refs)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(r, id, lapor)| (r, (id, lapor)))
        .collect())
}

/// Marks complaints as just compared with LAPOR!, with LAPOR!'s `updated_at`
/// as read (`None`: keep the stored one), in one statement.
pub async fn touch_synced_many(
    conn: &mut PgConnection,
    ids: &[i64],
    lapor_updated_at: &[Option<DateTime<Utc>>],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints c
            SET last_synced_at = $3, lapor_updated_at = coalesce(b.updated, c.lapor_updated_at)
           FROM unnest($1::bigint[], $2::timestamptz[]) AS b(id, updated)
          WHERE c.id = b.id",
    )
    .bind(ids)
    .bind(lapor_updated_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who submitted a complaint (`token:<name>`), once.
pub async fn set_submitted_by(
    conn: &mut PgConnection,
    local_ref: &str,
    who: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET submitted_by = $2
          WHERE local_ref = $1 AND submitted_by IS NULL",
    )
    .bind(local_ref)
    .bind(who)
    .execute(conn)
    .await?;
    Ok(())
}

/// Who submitted a complaint: `None` when there is no such complaint,
/// `Some(None)` when no intake token did.
pub async fn submitted_by(
    pool: &PgPool,
    local_ref: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT submitted_by FROM lapor_bridge.complaints WHERE local_ref = $1")
        .bind(local_ref)
        .fetch_optional(pool)
        .await
}

/// A complaint filed on lapor.go.id, as read from our inbox to import it.
#[derive(Debug, Clone)]
pub struct Imported<'a> {
    pub local_ref: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub category_id: Option<i64>,
    pub disposition_id: Option<i64>,
    pub is_anonymous: bool,
    pub is_secret: bool,
    pub lapor_complaint_id: i64,
    pub tracking_id: &'a str,
}

/// Imports a complaint from LAPOR! (origin `lapor`). Returns its id, or
/// `None` when it is held already.
pub async fn insert_imported(
    conn: &mut PgConnection,
    c: &Imported<'_>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO lapor_bridge.complaints
             (local_ref, origin, title, content, category_id, disposition_id, is_anonymous,
              is_secret, lapor_complaint_id, tracking_id, created_at, updated_at)
         VALUES ($1, 'lapor', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(c.local_ref)
    .bind(c.title)
    .bind(c.content)
    .bind(c.category_id)
    .bind(c.disposition_id)
    .bind(c.is_anonymous)
    .bind(c.is_secret)
    .bind(c.lapor_complaint_id)
    .bind(c.tracking_id)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Which of these LAPOR! complaint ids we hold.
pub async fn known_lapor_ids(pool: &PgPool, lapor_ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT lapor_complaint_id FROM lapor_bridge.complaints
          WHERE lapor_complaint_id = ANY($1)",
    )
    .bind(lapor_ids)
    .fetch_all(pool)
    .await
}

/// Which of these references name a complaint filed here (origin `local`).
pub async fn local_refs_among(pool: &PgPool, refs: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT local_ref FROM lapor_bridge.complaints
          WHERE origin = 'local' AND local_ref = ANY($1)",
    )
    .bind(refs)
    .fetch_all(pool)
    .await
}

/// Ends our follow-up deadline of a complaint no longer dispositioned to us.
pub async fn clear_dispositioned(
    conn: &mut PgConnection,
    complaint_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET dispositioned_at = NULL
          WHERE id = $1 AND dispositioned_at IS NOT NULL",
    )
    .bind(complaint_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records our forward of a complaint to institution `target`: verified,
/// and no longer ours, so our follow-up deadline ends.
pub async fn record_forwarded(
    conn: &mut PgConnection,
    complaint_id: i64,
    target: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET lapor_disposition_id = $2, status = 'verified',
                lapor_status_name = 'Terverifikasi', updated_at = $3,
                -- no longer ours: our follow-up deadline ends
                dispositioned_at = NULL
          WHERE id = $1",
    )
    .bind(complaint_id)
    .bind(target)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A follow-up read from LAPOR!, to import.
#[derive(Debug, Clone)]
pub struct UpstreamFollowup<'a> {
    pub lapor_followup_id: i64,
    pub content: &'a str,
    pub is_secret: bool,
    pub institution_id: Option<i64>,
    pub lapor_created_at: DateTime<Utc>,
}

/// Imports an upstream follow-up (origin `lapor`) once. Returns its id, or
/// `None` when it is held already.
pub async fn insert_upstream_followup(
    conn: &mut PgConnection,
    complaint_id: i64,
    f: &UpstreamFollowup<'_>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO lapor_bridge.followups
             (complaint_id, origin, content, is_secret, institution_id, lapor_followup_id,
              lapor_created_at, created_at)
         VALUES ($1, 'lapor', $2, $3, $4, $5, $6, $7)
         ON CONFLICT (complaint_id, lapor_followup_id) DO NOTHING
         RETURNING id",
    )
    .bind(complaint_id)
    .bind(f.content)
    .bind(f.is_secret)
    .bind(f.institution_id)
    .bind(f.lapor_followup_id)
    .bind(f.lapor_created_at)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Moves a complaint's last follow-up time to `at` (never back): a
/// follow-up of another institution, which starts no deadline of ours.
pub async fn note_their_followup(
    conn: &mut PgConnection,
    complaint_id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET last_followup_at = greatest(last_followup_at, $2)
          WHERE id = $1",
    )
    .bind(complaint_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many of a complaint's linked follow-ups LAPOR! no longer lists
/// (their LAPOR! id is not among `listed`).
pub async fn count_followups_unlisted(
    conn: &mut PgConnection,
    complaint_id: i64,
    listed: &[i64],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.followups
          WHERE complaint_id = $1 AND lapor_followup_id IS NOT NULL
            AND NOT (lapor_followup_id = ANY($2))",
    )
    .bind(complaint_id)
    .bind(listed)
    .fetch_one(conn)
    .await
}
