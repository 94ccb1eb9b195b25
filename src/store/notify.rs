//! LISTEN for the notifications that wake background work: the schema's
//! triggers and the outbox's enqueue NOTIFY a channel, listeners wake on it
//! and poll as a fallback.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

/// Why listening could not start; either way the caller polls only.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The listener's connection could not be opened.
    #[error("{0}")]
    Connect(sqlx::Error),
    /// `LISTEN` on the channel failed.
    #[error("{0}")]
    Listen(sqlx::Error),
}

/// A connection of its own that LISTENs on `channel`.
pub async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, ListenError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(ListenError::Connect)?;
    listener
        .listen(channel)
        .await
        .map_err(ListenError::Listen)?;
    Ok(listener)
}

/// Returns at the next notification; after a failed receive, once
/// `fallback` has passed; without a listener, never.
pub async fn notified(listener: &mut Option<PgListener>, fallback: Duration) {
    match listener {
        Some(l) => {
            if l.recv().await.is_err() {
                tokio::time::sleep(fallback).await;
            }
        }
        None => std::future::pending().await,
    }
}
