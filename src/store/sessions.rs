//! SQL of dashboard sessions: `dashboard_sessions`, one row per signed-in
//! browser, keyed by the SHA-256 of the id its cookie holds (the id itself
//! is never stored).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::Role;

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_name: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Deletes the sessions that expired before `now`.
pub async fn delete_expired(pool: &PgPool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM lapor_bridge.dashboard_sessions WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Stores a new session under the digest of its id, created at `now`.
pub async fn insert(
    pool: &PgPool,
    id_sha256: &str,
    row: &SessionRow,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lapor_bridge.dashboard_sessions
             (id_sha256, token_name, role, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id_sha256)
    .bind(&row.token_name)
    .bind(row.role)
    .bind(&row.csrf_token)
    .bind(now)
    .bind(row.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session stored under `id_sha256`, unless it expired by `now`.
pub async fn live(
    pool: &PgPool,
    id_sha256: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT token_name, role, csrf_token, expires_at FROM lapor_bridge.dashboard_sessions
          WHERE id_sha256 = $1 AND expires_at > $2",
    )
    .bind(id_sha256)
    .bind(now)
    .fetch_optional(pool)
    .await
}

pub async fn delete(pool: &PgPool, id_sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM lapor_bridge.dashboard_sessions WHERE id_sha256 = $1")
        .bind(id_sha256)
        .execute(pool)
        .await?;
    Ok(())
}
