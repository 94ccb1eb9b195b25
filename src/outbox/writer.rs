//! Writes delivery outcomes in batches: whatever completions are queued when
//! the writer is free go into one transaction, so the audit chain's lock and
//! the commit are paid once per batch, not once per step. Under light load a
//! batch is a single completion and nothing waits.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::deliver::Completion;
use crate::metrics::Metrics;

/// Most completions written in one transaction.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<bool, String>>;

#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<(Completion, Reply)>,
}

impl Writer {
    pub fn spawn(pool: PgPool, metrics: std::sync::Arc<Metrics>) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(pool, metrics, rx));
        Self { queue }
    }

    /// Writes one completion; answers whether this worker still held the
    /// step (false: the lease was lost and a newer outcome stands).
    pub async fn write(&self, completion: Completion) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((completion, reply))
            .await
            .map_err(|_| "the outcome writer has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the outcome writer dropped the reply".to_string())?
    }
}

async fn run(
    pool: PgPool,
    metrics: std::sync::Arc<Metrics>,
    mut rx: mpsc::Receiver<(Completion, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics.inc("outcome_batches_total", &[]);
        metrics.add("outcome_batch_items_total", &[], batch.len() as u64);
        match write_batch(&pool, &batch).await {
            Ok(owned) => {
                for ((completion, reply), owned) in batch.drain(..).zip(owned) {
                    metrics.inc(
                        "deliveries_total",
                        &[
                            ("step", &completion.step),
                            ("outcome", completion.outcome()),
                        ],
                    );
                    let _ = reply.send(Ok(owned));
                }
            }
            Err(e) if batch.len() > 1 => {
                // One bad completion must not sink the others: one by one.
                tracing::warn!(error = %e, size = batch.len(), "batched outcome write failed; writing one by one");
                for (completion, reply) in batch.drain(..) {
                    let result = write_batch(&pool, std::slice::from_ref(&(completion, ())))
                        .await
                        .map(|owned| owned.first().copied().unwrap_or(false))
                        .map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn write_batch<R>(
    pool: &PgPool,
    batch: &[(Completion, R)],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut owned = Vec::with_capacity(batch.len());
    for (completion, _) in batch {
        owned.push(completion.write(&mut tx).await?);
    }
    tx.commit().await?;
    Ok(owned)
}
