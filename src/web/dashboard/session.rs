//! Dashboard sessions in `lapor_bridge.dashboard_sessions`, so that every
//! replica behind a load balancer knows them. The browser holds a random id
//! in an HttpOnly cookie; the table holds only its SHA-256.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::html::{parse_role, role_name};
use crate::config::Role;

pub const COOKIE: &str = "lb_session";
pub const LIFETIME_HOURS: i64 = 12;

#[derive(Debug, Clone)]
pub struct Session {
    pub id_sha256: String,
    pub token_name: String,
    pub role: Role,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub fn id_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Opens a session; returns the id for the cookie. Expired sessions are
/// deleted on the way.
pub async fn create(
    pool: &PgPool,
    token_name: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(String, Session), sqlx::Error> {
    sqlx::query("DELETE FROM lapor_bridge.dashboard_sessions WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?;
    let id = random_hex();
    let session = Session {
        id_sha256: id_digest(&id),
        token_name: token_name.to_string(),
        role,
        csrf: random_hex(),
        expires_at: now + Duration::hours(LIFETIME_HOURS),
    };
    sqlx::query(
        "INSERT INTO lapor_bridge.dashboard_sessions
             (id_sha256, token_name, role, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id_sha256)
    .bind(&session.token_name)
    .bind(role_name(role))
    .bind(&session.csrf)
    .bind(now)
    .bind(session.expires_at)
    .execute(pool)
    .await?;
    Ok((id, session))
}

/// Whether a cookie value has the shape of a session id (64 hex digits);
/// anything else cannot match a session.
pub fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The live session of a cookie value, if any.
pub async fn load(
    pool: &PgPool,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    if !well_formed(id) {
        return Ok(None);
    }
    let row: Option<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT token_name, role, csrf_token, expires_at FROM lapor_bridge.dashboard_sessions
          WHERE id_sha256 = $1 AND expires_at > $2",
    )
    .bind(id_digest(id))
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(token_name, role, csrf, expires_at)| {
        Some(Session {
            id_sha256: id_digest(id),
            token_name,
            role: parse_role(&role)?,
            csrf,
            expires_at,
        })
    }))
}

pub async fn delete(pool: &PgPool, id_sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM lapor_bridge.dashboard_sessions WHERE id_sha256 = $1")
        .bind(id_sha256)
        .execute(pool)
        .await?;
    Ok(())
}
