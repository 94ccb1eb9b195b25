//! Writes delivery outcomes in batches: whatever completions are queued when
//! the writer is free go into one transaction, so the audit chain's lock and
//! the commit are paid once per batch, not once per step. Under light load a
//! batch is a single completion and nothing waits.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use serde_json::Value;

use super::deliver::{Completion, Effect};
use crate::domain::AttemptOutcome;
use crate::lapor::types::Created;
use crate::metrics::Metrics;
use crate::store::complaints;
use crate::store::outbox::{self, Attempt};

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

    /// Whether the writer has stopped (it panicked): no outcome can be
    /// recorded any more.
    pub fn is_stopped(&self) -> bool {
        self.queue.is_closed()
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
                            ("step", completion.step.as_str()),
                            ("outcome", completion.outcome().as_str()),
                        ],
                    );
                    let _ = reply.send(Ok(owned));
                }
            }
            Err(e) if batch.len() > 1 => {
                // One bad completion must not sink the others: one by one.
                tracing::warn!(error = %e, size = batch.len(), "batched outcome write failed; writing one by one");
                for (completion, reply) in batch.drain(..) {
                    let _ = reply.send(write_one(&pool, completion).await);
                }
            }
            Err(_) => {
                for (completion, reply) in batch.drain(..) {
                    let _ = reply.send(write_one(&pool, completion).await);
                }
            }
        }
    }
}

/// Writes one completion. When its effect breaks an integrity rule (the
/// LAPOR! id it would link is already another complaint's), retrying the
/// delivery would only meet the same wall: the step is dead-lettered with
/// the reason, for an operator to decide, instead of looping unseen.
async fn write_one(pool: &PgPool, completion: Completion) -> Result<bool, String> {
    let item = [(completion, ())];
    let e = match write_batch(pool, &item).await {
        Ok(owned) => return Ok(owned.first().copied().unwrap_or(false)),
        Err(e) => e,
    };
    let [(completion, ())] = item;
    let integrity = matches!(&e, sqlx::Error::Database(d)
        if d.code().is_some_and(|c| c.starts_with("23")));
    if !integrity {
        return Err(e.to_string());
    }
    let reason = format!("the outcome cannot be recorded: {e}");
    tracing::error!(step = completion.outbox_id, local_ref = %completion.local_ref, %reason, "dead-lettering a step whose outcome breaks an integrity rule");
    write_batch(pool, &[(completion.into_dead(reason), ())])
        .await
        .map(|owned| owned.first().copied().unwrap_or(false))
        .map_err(|e| e.to_string())
}

/// Writes a batch in one transaction with one statement per kind: the fenced
/// state changes (`store::outbox::complete_many`), the attempt rows, the
/// complaints' new LAPOR! ids, and the audit entries (chained in order by
/// `audit_append_many`). Returns, per completion, whether its lease was
/// still held. An outcome whose lease was lost changes no step, but a LAPOR!
/// id it carries is kept for the new holder.
async fn write_batch<R>(
    pool: &PgPool,
    batch: &[(Completion, R)],
) -> Result<Vec<bool>, sqlx::Error> {
    let items: Vec<&Completion> = batch.iter().map(|(c, _)| c).collect();
    let mut tx = pool.begin().await?;
    let owned = complete_steps(&mut tx, &items).await?;
    outbox::record_attempts(&mut tx, &attempt_rows(&items, &owned)).await?;
    apply_effects(&mut tx, &items, &owned).await?;
    audit_outcomes(&mut tx, &items, &owned).await?;
    tx.commit().await?;
    Ok(owned)
}

/// The fenced state changes, in one statement. Returns, per completion,
/// whether its lease was still held.
async fn complete_steps(
    conn: &mut PgConnection,
    items: &[&Completion],
) -> Result<Vec<bool>, sqlx::Error> {
    let steps: Vec<outbox::StepCompletion<'_>> = items
        .iter()
        .map(|c| outbox::StepCompletion {
            id: c.outbox_id,
            fence: c.fence,
            next: &c.next,
            last_error: c.last_error.as_deref(),
            lookup_not_before: c.lookup_not_before,
            now: c.now,
        })
        .collect();
    let owned_ids = outbox::complete_many(conn, &steps).await?;
    Ok(items
        .iter()
        .map(|c| owned_ids.contains(&c.outbox_id))
        .collect())
}

/// The attempt rows to record: a wait's end before its attempt, nothing
/// while a wait goes on, and `lease_lost` for an outcome left to the new
/// holder.
fn attempt_rows(items: &[&Completion], owned: &[bool]) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::with_capacity(items.len());
    for (c, owned) in items.iter().zip(owned) {
        if let (Some(over), true) = (&c.wait_over, owned) {
            attempts.push(over.clone());
        }
        if !c.record_attempt && *owned {
            continue;
        }
        let mut a = c.attempt.clone();
        if !owned {
            tracing::warn!(step = c.outbox_id, local_ref = %c.local_ref, "lease lost during delivery; outcome left to the new holder");
            a.outcome = AttemptOutcome::LeaseLost;
        }
        attempts.push(a);
    }
    attempts
}

/// Effects on the complaints: plain creates in one statement, the rarer
/// kinds one by one; a lost lease's effect kept for the new holder.
async fn apply_effects(
    conn: &mut PgConnection,
    items: &[&Completion],
    owned: &[bool],
) -> Result<(), sqlx::Error> {
    let mut created = Vec::new();
    for (c, owned) in items.iter().zip(owned) {
        match (&c.effect, owned) {
            (
                Some(Effect::Created {
                    created: new,
                    copies,
                }),
                true,
            ) if copies.is_empty() => {
                created.push((*c, new));
            }
            (Some(effect), true) => c.apply_effect(conn, effect).await?,
            (Some(effect), false) => c.keep_late_effect(conn, effect).await?,
            (None, _) => {}
        }
    }
    if !created.is_empty() {
        link_created(conn, items, &created).await?;
    }
    Ok(())
}

/// Links the complaints just created on LAPOR!, in one statement. A
/// complaint linked meanwhile to another LAPOR! complaint: the one just
/// created is a copy, named for an operator.
async fn link_created(
    conn: &mut PgConnection,
    items: &[&Completion],
    created: &[(&Completion, &Created)],
) -> Result<(), sqlx::Error> {
    let created_ids: Vec<i64> = created.iter().map(|(c, _)| c.complaint_id).collect();
    let lapor_ids: Vec<i64> = created.iter().map(|(_, n)| n.complaint_id).collect();
    let tracking: Vec<String> = created.iter().map(|(_, n)| n.tracking_id.clone()).collect();
    let created_at: Vec<DateTime<Utc>> = created.iter().map(|(c, _)| c.now).collect();
    let linked =
        complaints::link_created_many(conn, &created_ids, &lapor_ids, &tracking, &created_at)
            .await?;
    for (complaint_id, linked_id) in linked {
        let Some(pos) = created_ids.iter().position(|id| *id == complaint_id) else {
            continue;
        };
        if linked_id != lapor_ids[pos]
            && let Some(c) = items
                .iter()
                .find(|c| c.complaint_id == complaint_id && c.effect.is_some())
        {
            crate::inbound::apply::note_copies(
                conn,
                complaint_id,
                &c.local_ref,
                None,
                linked_id,
                &[lapor_ids[pos]],
                c.now,
            )
            .await?;
        }
    }
    Ok(())
}

/// The audit entries of the outcomes whose lease was held, chained in order
/// in one statement.
async fn audit_outcomes(
    conn: &mut PgConnection,
    items: &[&Completion],
    owned: &[bool],
) -> Result<(), sqlx::Error> {
    let mut at = Vec::new();
    let mut actor = Vec::new();
    let mut local_ref = Vec::new();
    let mut action = Vec::new();
    let mut before: Vec<Option<Value>> = Vec::new();
    let mut after: Vec<Option<Value>> = Vec::new();
    for (c, owned) in items.iter().zip(owned) {
        if let (Some(entry), true) = (&c.audit_after, owned) {
            at.push(c.now);
            actor.push("bridge");
            local_ref.push(c.local_ref.as_str());
            action.push(format!("delivery.{}", c.step));
            before.push(None);
            after.push(Some(entry.clone()));
        }
    }
    crate::store::audit::append_many(conn, &at, &actor, &local_ref, &action, &before, &after)
        .await?;
    Ok(())
}
