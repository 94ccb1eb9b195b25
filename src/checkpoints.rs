//! Checkpoints of the audit log outside the database. A chain cut at its end
//! is still a valid chain, so `run` writes down where the chain's head was:
//! one JSON line `{"id", "hash", "at"}` appended to a file (and the same
//! checkpoint in its own log) whenever the head has moved. `audit verify`
//! then checks every checkpoint against the chain: an entry that was
//! checkpointed and is missing, or carries another hash, fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::store::audit::{self, Verification};

/// Where the head of the audit log was at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub id: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint file {path}, line {line}: {problem}")]
    Malformed {
        path: String,
        line: usize,
        problem: String,
    },
    #[error("cannot write checkpoint file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the audit log's head: {0}")]
    Db(#[from] sqlx::Error),
}

/// Parses checkpoint lines (blank lines are skipped); `path` names the source
/// in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let malformed = |line: usize, problem: String| CheckpointError::Malformed {
        path: path.display().to_string(),
        line,
        problem,
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cp: Checkpoint =
            serde_json::from_str(line).map_err(|e| malformed(i + 1, e.to_string()))?;
        if cp.id < 1 {
            return Err(malformed(i + 1, format!("id {} is not positive", cp.id)));
        }
        if cp.hash.len() != 64 || !cp.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(i + 1, "hash is not 64 hex digits".into()));
        }
        out.push(cp);
    }
    Ok(out)
}

/// Reads and checks a checkpoint file.
pub async fn read(path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| CheckpointError::Read {
            path: path.display().to_string(),
            source,
        })?;
    parse(&text, path)
}

/// Checkpoints as JSON lines, the file's own format.
pub fn to_jsonl(checkpoints: &[Checkpoint]) -> String {
    audit::to_jsonl(checkpoints)
}

/// The chain, then every checkpoint of `file` (when given) against it. The
/// lowest checkpointed id that is missing or carries another hash is named.
pub async fn verify(pool: &PgPool, file: Option<&Path>) -> Result<Verification, sqlx::Error> {
    let chain = audit::verify(pool).await?;
    let (Verification::Ok { entries, .. }, Some(path)) = (&chain, file) else {
        return Ok(chain);
    };
    let entries = *entries;
    let mut checkpoints = match read(path).await {
        Ok(c) => c,
        Err(e) => {
            return Ok(Verification::CheckpointsUnreadable {
                ok: false,
                reason: "checkpoints_unreadable",
                error: e.to_string(),
            });
        }
    };
    checkpoints.sort_by_key(|c| c.id);
    let mut ids: Vec<i64> = checkpoints.iter().map(|c| c.id).collect();
    ids.dedup();
    let stored: std::collections::HashMap<i64, String> =
        audit::hashes_of(pool, &ids).await?.into_iter().collect();
    if let Some(bad) = checkpoints
        .iter()
        .find(|c| stored.get(&c.id) != Some(&c.hash))
    {
        return Ok(Verification::CheckpointMismatch {
            ok: false,
            reason: "checkpoint_mismatch",
            checkpoint_id: bad.id,
            entries,
        });
    }
    Ok(Verification::Ok {
        ok: true,
        entries,
        checkpoints: Some(checkpoints.len()),
    })
}

/// Appends a checkpoint of the head whenever it has moved. Driven by
/// [`Writer::run`] in the daemon; tests call [`Writer::tick`].
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    clock: SharedClock,
    /// The head last written (or found at the end of the file).
    last: Option<(i64, String)>,
}

impl Writer {
    /// Continues the file at `path`: its last checkpoint counts as written.
    /// The file must be writable now (a daemon that cannot keep its witness
    /// does not start); a last line cut short by a crash or a full disk is
    /// removed, so that the file reads back.
    pub async fn open(path: PathBuf, clock: SharedClock) -> Result<Self, CheckpointError> {
        let write_error = |source| CheckpointError::Write {
            path: path.display().to_string(),
            source,
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(write_error)?;
        let text =
            tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| CheckpointError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            let tail = &text[keep..];
            if serde_json::from_str::<Checkpoint>(tail).is_ok() {
                // A whole checkpoint without its newline: end the line.
                let mut file = file;
                file.write_all(b"\n").await.map_err(write_error)?;
                file.sync_all().await.map_err(write_error)?;
            } else {
                tracing::warn!(
                    path = %path.display(),
                    cut = tail.len(),
                    "audit checkpoints: removing a last line that was cut short"
                );
                file.set_len(keep as u64).await.map_err(write_error)?;
                file.sync_all().await.map_err(write_error)?;
            }
        }
        let last = match read(&path).await {
            Ok(c) => c.last().map(|c| (c.id, c.hash.clone())),
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoints: appending after a file that does not read back");
                None
            }
        };
        Ok(Self { path, clock, last })
    }

    /// Writes a checkpoint when the head differs from the last one written.
    pub async fn tick(&mut self, pool: &PgPool) -> Result<Option<Checkpoint>, CheckpointError> {
        let Some((id, hash)) = audit::head(pool).await? else {
            return Ok(None);
        };
        // The entry last checkpointed must still be there, as it was: a tail
        // cut and then appended to again keeps the head moving forward.
        if let Some((last_id, last_hash)) = &self.last {
            let still = audit::hashes_of(pool, &[*last_id]).await?;
            if still.first().map(|(_, h)| h) != Some(last_hash) {
                tracing::error!(
                    last_checkpoint_id = last_id,
                    head_id = id,
                    "the audit log no longer holds the entry last checkpointed as it was: \
                     entries were removed or rewritten (run `lapor-bridge audit verify`)"
                );
            }
        }
        if let Some((last_id, last_hash)) = &self.last {
            if *last_id == id && *last_hash == hash {
                return Ok(None);
            }
            if id <= *last_id {
                tracing::error!(
                    last_checkpoint_id = last_id,
                    head_id = id,
                    "the audit log's head moved back: entries after it were removed"
                );
            }
        }
        let cp = Checkpoint {
            id,
            hash,
            at: self.clock.now(),
        };
        self.append(&cp).await?;
        tracing::info!(
            id = cp.id,
            hash = %cp.hash,
            at = %cp.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "audit checkpoint"
        );
        self.last = Some((cp.id, cp.hash.clone()));
        Ok(Some(cp))
    }

    /// One line, appended and flushed to the disk before it counts.
    async fn append(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let write_error = |source| CheckpointError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let mut line = serde_json::to_string(cp).map_err(|e| write_error(e.into()))?;
        line.push('\n');
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(write_error)?;
        file.write_all(line.as_bytes()).await.map_err(write_error)?;
        file.sync_all().await.map_err(write_error)?;
        Ok(())
    }

    /// Looks at the head every `every` until `shutdown`, and once more then.
    pub async fn run(mut self, pool: PgPool, every: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => self.tick_logged(&pool).await,
            }
        }
        self.tick_logged(&pool).await;
    }

    async fn tick_logged(&mut self, pool: &PgPool) {
        if let Err(e) = self.tick(pool).await {
            tracing::error!(error = %e, "audit checkpoint not written; tried again at the next tick");
        }
    }
}
