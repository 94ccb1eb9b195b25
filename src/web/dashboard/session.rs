//! Dashboard sessions in `lapor_bridge.dashboard_sessions`, so that every
//! replica behind a load balancer knows them. The browser holds a random id
//! in an HttpOnly cookie; the table (see [`crate::store::sessions`]) holds
//! only its SHA-256.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::config::Role;
use crate::store::sessions::{self, SessionRow};

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
    sessions::delete_expired(pool, now).await?;
    let id = random_hex();
    let session = Session {
        id_sha256: id_digest(&id),
        token_name: token_name.to_string(),
        role,
        csrf: random_hex(),
        expires_at: now + Duration::hours(LIFETIME_HOURS),
    };
    let row = SessionRow {
        token_name: session.token_name.clone(),
        role,
        csrf_token: session.csrf.clone(),
        expires_at: session.expires_at,
    };
    sessions::insert(pool, &session.id_sha256, &row, now).await?;
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
    let id_sha256 = id_digest(id);
    let row = sessions::live(pool, &id_sha256, now).await?;
    Ok(row.map(|row| Session {
        id_sha256,
        token_name: row.token_name,
        role: row.role,
        csrf: row.csrf_token,
        expires_at: row.expires_at,
    }))
}

pub async fn delete(pool: &PgPool, id_sha256: &str) -> Result<(), sqlx::Error> {
    sessions::delete(pool, id_sha256).await
}
