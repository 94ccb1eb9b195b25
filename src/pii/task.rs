//! What the daemon and `lapor-bridge pii` do to stored identities: encrypt
//! what `submit_complaint` staged, erase after retention, re-encrypt under the
//! current key. Every change commits with its audit entry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::{Identity, Keyring, PiiError};
use crate::bridge::Bridge;
use crate::store::audit::{self, NewEntry};
use crate::store::notify;
use crate::store::pii::{self as store, Erasure};

/// `submit_complaint` notifies this channel when it stages a reporter.
pub const CHANNEL: &str = "lapor_bridge_pii";

/// The daemon looks at least this often (retention, missed notifications).
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

const BATCH: i64 = 100;

/// The audit action of an erasure.
pub const ERASED: &str = "pii_erased";

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Pii(#[from] PiiError),
    #[error(
        "reporter identities are stored under key id(s) {0} that neither BRIDGE_PII_KEY nor \
         BRIDGE_PII_OLD_KEYS holds: add the old key to BRIDGE_PII_OLD_KEYS"
    )]
    MissingKeys(String),
    #[error(
        "{0} reporter identit(ies) are still under an old key (rows busy while rotating): \
         run `lapor-bridge pii rotate` again before removing BRIDGE_PII_OLD_KEYS"
    )]
    RotationIncomplete(i64),
}

impl Identity {
    /// The identity in a staged JSON object (known string fields only).
    pub fn from_staged(staged: &Value) -> Identity {
        let field = |k: &str| {
            staged
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Identity {
            name: field("name"),
            phone: field("phone"),
            email: field("email"),
            nik: field("nik"),
            address: field("address"),
        }
    }
}

/// Encrypts the staged reporter of one complaint in the caller's transaction
/// (the HTTP API's submit, so that its plain text never commits).
pub async fn seal_one(
    conn: &mut PgConnection,
    keyring: &Keyring,
    local_ref: &str,
) -> Result<(), TaskError> {
    if let Some((id, staged)) = store::pending_of(conn, local_ref).await? {
        let sealed = keyring.seal(local_ref, &Identity::from_staged(&staged))?;
        store::store_sealed(conn, id, &sealed.ciphertext, &sealed.key_id).await?;
    }
    Ok(())
}

/// Encrypts every staged reporter and clears its plain text. Returns how many.
pub async fn seal_pending(pool: &PgPool, keyring: &Keyring) -> Result<usize, TaskError> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let batch = store::pending_batch(&mut tx, BATCH).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        for (id, local_ref, staged) in &batch {
            let sealed = keyring.seal(local_ref, &Identity::from_staged(staged))?;
            store::store_sealed(&mut tx, *id, &sealed.ciphertext, &sealed.key_id).await?;
        }
        tx.commit().await?;
        total += batch.len();
    }
}

/// Refuses keyrings that cannot open every stored ciphertext.
pub async fn check_keys(pool: &PgPool, keyring: &Keyring) -> Result<(), TaskError> {
    let missing: Vec<String> = store::key_ids(pool)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !keyring.knows(id))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TaskError::MissingKeys(missing.join(", ")))
    }
}

/// Erases one complaint's identity in the caller's transaction, with its
/// audit entry. `reason` is what the audit log keeps.
pub async fn erase_locked(
    conn: &mut PgConnection,
    id: i64,
    local_ref: &str,
    erasure: Erasure,
    reason: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    store::erase(conn, id, erasure, now).await?;
    audit::append(
        conn,
        &NewEntry {
            at: now,
            actor,
            local_ref: Some(local_ref),
            action: ERASED,
            before: None,
            after: Some(json!({"erasure": erasure, "reason": reason})),
        },
    )
    .await?;
    Ok(())
}

/// Erases the identity of every complaint LAPOR! closed more than
/// `retention_days` before `now`. Replicas share the work without doing any
/// twice (rows are locked and skipped). Returns how many were erased.
pub async fn enforce_retention(bridge: &Bridge, now: DateTime<Utc>) -> Result<usize, TaskError> {
    let days = i64::from(bridge.settings.pii.retention_days);
    // Settings are bounded (a hundred years); a date past chrono's range
    // means nothing is old enough yet.
    let Some(cutoff) = now.checked_sub_signed(chrono::Duration::days(days)) else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        let mut tx = bridge.pool.begin().await?;
        let due = store::retention_due(&mut tx, cutoff, BATCH).await?;
        if due.is_empty() {
            return Ok(total);
        }
        for (id, local_ref) in &due {
            erase_locked(
                &mut tx,
                *id,
                local_ref,
                Erasure::Retention,
                "retention",
                "bridge",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        total += due.len();
    }
}

/// What `pii rotate` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rotation {
    pub key_id: String,
    /// Staged plain text encrypted.
    pub sealed: usize,
    /// Ciphertexts re-encrypted under the current key.
    pub reencrypted: usize,
}

/// Encrypts staged plain text, then re-encrypts every ciphertext under the
/// current key; afterwards the old keys are no longer needed.
pub async fn rotate(
    bridge: &Bridge,
    keyring: &Keyring,
    actor: &str,
) -> Result<Rotation, TaskError> {
    check_keys(&bridge.pool, keyring).await?;
    let mut rotation = Rotation {
        key_id: keyring.current_id().to_string(),
        sealed: seal_pending(&bridge.pool, keyring).await?,
        reencrypted: 0,
    };
    loop {
        let mut tx = bridge.pool.begin().await?;
        let batch = store::foreign_key_batch(&mut tx, keyring.current_id(), BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for (id, local_ref, key_id, ciphertext) in &batch {
            let identity = keyring.open(local_ref, key_id, ciphertext)?;
            let sealed = keyring.seal(local_ref, &identity)?;
            store::store_sealed(&mut tx, *id, &sealed.ciphertext, &sealed.key_id).await?;
        }
        tx.commit().await?;
        rotation.reencrypted += batch.len();
    }
    // Rows locked by someone else were skipped: the old key is no longer
    // needed only when no row is left under it.
    let left: i64 = store::key_ids(&bridge.pool)
        .await?
        .iter()
        .filter(|(id, _)| id != keyring.current_id())
        .map(|(_, n)| n)
        .sum();
    if left > 0 {
        return Err(TaskError::RotationIncomplete(left));
    }
    let mut conn = bridge.pool.acquire().await?;
    audit::append(
        &mut conn,
        &NewEntry {
            at: bridge.clock.now(),
            actor,
            local_ref: None,
            action: "pii_rotated",
            before: None,
            after: Some(json!(rotation)),
        },
    )
    .await?;
    Ok(rotation)
}

/// Before `run` serves: the keys open every stored identity, and plain
/// text left by a migration or a direct `submit_complaint` is encrypted.
pub async fn prepare(pool: &PgPool, keyring: &Keyring) -> Result<usize, TaskError> {
    check_keys(pool, keyring).await?;
    let sealed = seal_pending(pool, keyring).await?;
    let old: Vec<String> = store::key_ids(pool)
        .await?
        .into_iter()
        .filter(|(id, _)| id != keyring.current_id())
        .map(|(id, n)| format!("{id} ({n})"))
        .collect();
    if !old.is_empty() {
        tracing::warn!(
            keys = %old.join(", "),
            "reporter identities still under old keys: run `lapor-bridge pii rotate`"
        );
    }
    Ok(sealed)
}

/// The daemon's part: encrypts staged identities at once (NOTIFY) and at
/// least every `CHECK_EVERY`, and erases those past retention, until
/// `shutdown`.
pub async fn run(bridge: Bridge, keyring: std::sync::Arc<Keyring>, shutdown: CancellationToken) {
    let mut listener = match notify::listen(&bridge.pool, CHANNEL).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN failed; reporter sealing polls only");
            None
        }
    };
    loop {
        match seal_pending(&bridge.pool, &keyring).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "staged reporter identities encrypted"),
            Err(e) => tracing::error!(error = %e, "encrypting staged reporter identities failed"),
        }
        match enforce_retention(&bridge, bridge.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "reporter identities erased after retention"),
            Err(e) => tracing::error!(error = %e, "retention erasure failed; retried soon"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = notified(&mut listener) => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

async fn notified(listener: &mut Option<PgListener>) {
    notify::notified(listener, CHECK_EVERY).await
}

/// One key id in use.
#[derive(Debug, Clone, Serialize)]
pub struct KeyUse {
    pub key_id: String,
    pub count: i64,
    /// Whether the configured keys hold it.
    pub known: bool,
}

/// `lapor-bridge pii report`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub counts: store::Counts,
    pub retention_days: u32,
    pub current_key_id: Option<String>,
    pub key_ids: Vec<KeyUse>,
}

pub async fn report(bridge: &Bridge) -> Result<Report, TaskError> {
    let keyring = bridge.pii.as_deref();
    let key_ids = store::key_ids(&bridge.pool)
        .await?
        .into_iter()
        .map(|(key_id, count)| KeyUse {
            known: keyring.is_some_and(|k| k.knows(&key_id)),
            key_id,
            count,
        })
        .collect();
    Ok(Report {
        counts: store::counts(&bridge.pool).await?,
        retention_days: bridge.settings.pii.retention_days,
        current_key_id: keyring.map(|k| k.current_id().to_string()),
        key_ids,
    })
}
