//! What people do to complaints, shared by the admin API and the CLI. Each
//! action commits with its outbox rows and its audit entry in one
//! transaction.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::bridge::Bridge;
use crate::status_document::StatusDocument;
use crate::store::audit::{self, NewEntry};
use crate::store::complaints::{self, SubmitError};
use crate::store::outbox;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(BTreeMap<String, Vec<String>>),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn invalid(field: &str, message: &str) -> ActionError {
    ActionError::Invalid(BTreeMap::from([(
        field.to_string(),
        vec![message.to_string()],
    )]))
}

pub async fn status(bridge: &Bridge, local_ref: &str) -> Result<StatusDocument, ActionError> {
    let row = complaints::by_ref(&bridge.pool, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    Ok(StatusDocument::build(
        &row,
        &bridge.calendar,
        bridge.clock.now(),
    ))
}

/// Submits a complaint; returns whether it is new, and its status document.
pub async fn submit(
    bridge: &Bridge,
    doc: &Value,
    actor: &str,
) -> Result<(bool, StatusDocument), ActionError> {
    let mut tx = bridge.pool.begin().await?;
    let created = match complaints::submit(&mut tx, doc).await {
        Ok(created) => created,
        Err(SubmitError::Invalid(errors)) => return Err(ActionError::Invalid(errors)),
        Err(SubmitError::Conflict) => {
            return Err(ActionError::Conflict(
                "local_ref already holds another complaint".into(),
            ));
        }
        Err(SubmitError::Db(e)) => return Err(e.into()),
    };
    let local_ref = doc
        .get("local_ref")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if created {
        audit::append(
            &mut tx,
            &NewEntry {
                at: bridge.clock.now(),
                actor,
                local_ref: Some(local_ref),
                action: "complaint.submitted",
                before: None,
                after: Some(json!({
                    "title": doc.get("title"),
                    "category_id": doc.get("category_id"),
                    "disposition_id": doc.get("disposition_id"),
                })),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok((created, status(bridge, local_ref).await?))
}

pub async fn add_followup(
    bridge: &Bridge,
    local_ref: &str,
    content: &str,
    is_secret: bool,
    actor: &str,
) -> Result<StatusDocument, ActionError> {
    let content = content.trim();
    if content.chars().count() < 1 || content.chars().count() > 20_000 {
        return Err(invalid("content", "must be 1-20000 characters"));
    }
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await?;
    let (complaint_id, _) = complaints::lock_by_ref(&mut tx, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    let followup_id = complaints::insert_local_followup(
        &mut tx,
        complaint_id,
        content,
        is_secret,
        bridge.institution_id(),
        now,
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        complaint_id,
        "followup",
        Some(followup_id),
        &json!({}),
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        &NewEntry {
            at: now,
            actor,
            local_ref: Some(local_ref),
            action: "followup.submitted",
            before: None,
            after: Some(json!({"followup_id": followup_id, "is_secret": is_secret})),
        },
    )
    .await?;
    tx.commit().await?;
    status(bridge, local_ref).await
}

pub async fn forward(
    bridge: &Bridge,
    local_ref: &str,
    institution_id: i64,
    reason: &str,
    actor: &str,
) -> Result<StatusDocument, ActionError> {
    if institution_id <= 0 {
        return Err(invalid("institution_id", "must be a positive integer"));
    }
    if institution_id == bridge.institution_id() {
        return Err(invalid("institution_id", "is this institution itself"));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(invalid("reason", "must be 1-2000 characters"));
    }
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await?;
    let (complaint_id, _) = complaints::lock_by_ref(&mut tx, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    let payload = json!({"institution_id": institution_id, "reason": reason});
    outbox::enqueue(&mut tx, complaint_id, "forward", None, &payload, now).await?;
    audit::append(
        &mut tx,
        &NewEntry {
            at: now,
            actor,
            local_ref: Some(local_ref),
            action: "forward.submitted",
            before: None,
            after: Some(payload),
        },
    )
    .await?;
    tx.commit().await?;
    status(bridge, local_ref).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    Retry,
    Discard,
}

/// An operator's retry or discard of one outbox step, audited.
pub async fn act_on_step(
    bridge: &Bridge,
    id: i64,
    action: StepAction,
    actor: &str,
) -> Result<outbox::StepView, ActionError> {
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await?;
    let before = outbox::get(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    let changed = match action {
        StepAction::Retry => outbox::retry_dead(&mut tx, id, now).await?,
        StepAction::Discard => outbox::discard(&mut tx, id, now).await?,
    };
    if !changed {
        return Err(ActionError::Conflict(format!(
            "step {id} is {}: only {} steps can be {}",
            before.state,
            if action == StepAction::Retry {
                "dead"
            } else {
                "dead or pending"
            },
            if action == StepAction::Retry {
                "retried"
            } else {
                "discarded"
            },
        )));
    }
    let after = outbox::get(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    // A complaint whose create is discarded must not read as synced once its
    // steps are gone. When an attempt may have reached LAPOR!, it says so;
    // reconciliation links it (and clears this) if LAPOR! shows it.
    if action == StepAction::Discard && before.step == "create" {
        let reason = if before.needs_lookup {
            format!(
                "{}: its create step {id} was discarded by {actor} after an attempt whose \
                 outcome is unknown; reconciliation links it if LAPOR! shows it",
                complaints::MAY_BE_ON_LAPOR
            )
        } else {
            format!(
                "{}: its create step {id} was discarded by {actor}",
                complaints::NOT_ON_LAPOR
            )
        };
        complaints::flag_unfiled(&mut tx, &before.local_ref, &reason, now).await?;
    }
    audit::append(
        &mut tx,
        &NewEntry {
            at: now,
            actor,
            local_ref: Some(&before.local_ref),
            action: if action == StepAction::Retry { "operator.retry" } else { "operator.discard" },
            before: Some(json!({"step_id": id, "state": before.state, "attempts": before.attempts, "last_error": before.last_error})),
            after: Some(json!({"step_id": id, "state": after.state, "attempts": after.attempts})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
