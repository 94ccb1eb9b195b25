//! SQL of reporter identity: the `reporter_*` columns of `complaints`.
//! Plain text is only ever read from `reporter_pending`, to be encrypted and
//! cleared in the same transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// Why an identity was erased (`complaints.reporter_erasure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Erasure {
    /// A data subject's request, carried out by an admin.
    Request,
    /// The retention period after closing ran out.
    Retention,
}

impl Erasure {
    pub fn as_str(self) -> &'static str {
        match self {
            Erasure::Request => "request",
            Erasure::Retention => "retention",
        }
    }
}

/// Staged plain text, locked for this transaction; rows another replica
/// holds are skipped.
pub async fn pending_batch(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(i64, String, Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, local_ref, reporter_pending FROM lapor_bridge.complaints
          WHERE reporter_pending IS NOT NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The staged plain text of one complaint, locked.
pub async fn pending_of(
    conn: &mut PgConnection,
    local_ref: &str,
) -> Result<Option<(i64, Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, reporter_pending FROM lapor_bridge.complaints
          WHERE local_ref = $1 AND reporter_pending IS NOT NULL FOR UPDATE",
    )
    .bind(local_ref)
    .fetch_optional(conn)
    .await
}

/// Stores a ciphertext and clears the staged plain text.
pub async fn store_sealed(
    conn: &mut PgConnection,
    id: i64,
    ciphertext: &[u8],
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET reporter_ciphertext = $2, reporter_key_id = $3, reporter_pending = NULL
          WHERE id = $1",
    )
    .bind(id)
    .bind(ciphertext)
    .bind(key_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ciphertexts under a key other than `current_key_id`, locked.
pub async fn foreign_key_batch(
    conn: &mut PgConnection,
    current_key_id: &str,
    limit: i64,
) -> Result<Vec<(i64, String, String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, local_ref, reporter_key_id, reporter_ciphertext FROM lapor_bridge.complaints
          WHERE reporter_key_id <> $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(current_key_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Locks one complaint for erasure: its id and whether it was erased before.
pub async fn lock_for_erasure(
    conn: &mut PgConnection,
    local_ref: &str,
) -> Result<Option<(i64, Option<DateTime<Utc>>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, reporter_erased_at FROM lapor_bridge.complaints WHERE local_ref = $1 FOR UPDATE",
    )
    .bind(local_ref)
    .fetch_optional(conn)
    .await
}

/// Erases the identity for good: ciphertext, key id and any staged plain
/// text become NULL; the marker says when and why.
pub async fn erase(
    conn: &mut PgConnection,
    id: i64,
    erasure: Erasure,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET reporter_ciphertext = NULL, reporter_key_id = NULL, reporter_pending = NULL,
                reporter_erased_at = $3, reporter_erasure = $2
          WHERE id = $1",
    )
    .bind(id)
    .bind(erasure.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Complaints closed at or before `cutoff` that still hold an identity,
/// locked; rows another replica holds are skipped.
pub async fn retention_due(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, local_ref FROM lapor_bridge.complaints
          WHERE closed_at <= $1
            AND (reporter_ciphertext IS NOT NULL OR reporter_pending IS NOT NULL)
          ORDER BY closed_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The key ids of stored ciphertexts, with how many each.
pub async fn key_ids(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reporter_key_id, count(*) FROM lapor_bridge.complaints
          WHERE reporter_key_id IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// What the data protection officer asks: counts, the oldest identity kept.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Counts {
    /// Complaints holding an identity (encrypted, or staged for it).
    pub holding: i64,
    /// Of those, staged plain text not encrypted yet.
    pub staged: i64,
    pub erased_on_request: i64,
    pub erased_by_retention: i64,
    /// The complaint holding an identity longest: by closing, else creation.
    pub oldest_local_ref: Option<String>,
    pub oldest_since: Option<DateTime<Utc>>,
    pub oldest_closed: Option<bool>,
}

pub async fn counts(pool: &PgPool) -> Result<Counts, sqlx::Error> {
    sqlx::query_as(
        "WITH held AS (
             SELECT local_ref, coalesce(closed_at, created_at) AS since, closed_at IS NOT NULL AS closed
               FROM lapor_bridge.complaints
              WHERE reporter_ciphertext IS NOT NULL OR reporter_pending IS NOT NULL)
         SELECT (SELECT count(*) FROM held) AS holding,
                (SELECT count(*) FROM lapor_bridge.complaints WHERE reporter_pending IS NOT NULL) AS staged,
                (SELECT count(*) FROM lapor_bridge.complaints WHERE reporter_erasure = 'request') AS erased_on_request,
                (SELECT count(*) FROM lapor_bridge.complaints WHERE reporter_erasure = 'retention') AS erased_by_retention,
                o.local_ref AS oldest_local_ref, o.since AS oldest_since, o.closed AS oldest_closed
           FROM (SELECT 1) one
           LEFT JOIN (SELECT * FROM held ORDER BY since, local_ref LIMIT 1) o ON true",
    )
    .fetch_one(pool)
    .await
}
