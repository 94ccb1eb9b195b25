//! What people do to complaints, shared by the admin API and the CLI. Each
//! action commits with its outbox rows and its audit entry in one
//! transaction.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bridge::Bridge;
use crate::config::Role;
use crate::domain::{StepKind, StepState};
use crate::pii::{self, ReporterView, Showing};
use crate::status_document::StatusDocument;
use crate::store::audit::{self, NewEntry};
use crate::store::complaints::{self, ComplaintRow, SubmitError};
use crate::store::outbox;
use crate::store::pii::{self as store_pii, Erasure};
use crate::store::webhooks;

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
    #[error("cannot encrypt the reporter: {0}")]
    Sealing(String),
}

fn invalid(field: &str, message: &str) -> ActionError {
    ActionError::Invalid(BTreeMap::from([(
        field.to_string(),
        vec![message.to_string()],
    )]))
}

/// Every field of a JSON document (by dotted path) whose text or key holds a
/// NUL character, which PostgreSQL's text and jsonb refuse.
pub fn fields_with_nul(value: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    nul_fields(value, String::new(), &mut out);
    out
}

/// `field` holds a NUL character: a 422 naming it.
fn refuse_nul(field: &str, text: &str) -> Result<(), ActionError> {
    if text.contains('\0') {
        return Err(invalid(field, "must not contain a NUL character"));
    }
    Ok(())
}

/// Every field of `value` (a dotted path) whose text holds a NUL character.
fn nul_fields(value: &Value, path: String, out: &mut BTreeMap<String, Vec<String>>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => {
            out.insert(path, vec!["must not contain a NUL character".into()]);
        }
        Value::Object(map) => {
            for (key, v) in map {
                if key.contains('\0') {
                    out.insert(
                        join("(key)"),
                        vec!["must not contain a NUL character".into()],
                    );
                } else {
                    nul_fields(v, join(key), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                nul_fields(v, join(&i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// The status document with the reporter masked (submit answers, lists,
/// the CLI).
pub async fn status(bridge: &Bridge, local_ref: &str) -> Result<StatusDocument, ActionError> {
    let row = complaints::by_ref(&bridge.pool, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    Ok(masked_document(bridge, &row))
}

/// A status document with its reporter masked.
pub fn masked_document(bridge: &Bridge, row: &ComplaintRow) -> StatusDocument {
    let mut doc = StatusDocument::build(row, &bridge.calendar, bridge.clock.now());
    doc.reporter = Some(pii::view(bridge.pii.as_deref(), row, false));
    doc
}

/// The reporter of one complaint as `role` may see it; unmasked identity
/// shown to a person is recorded in the audit log as `pii_viewed`.
pub async fn reporter_for(
    bridge: &Bridge,
    row: &ComplaintRow,
    role: Role,
    actor: &str,
) -> Result<ReporterView, ActionError> {
    let unmasked = pii::sees_unmasked(role, Showing::One, row.is_anonymous, row.is_secret);
    let view = pii::view(bridge.pii.as_deref(), row, unmasked);
    if view.reveals() {
        let mut conn = bridge.pool.acquire().await?;
        audit::append(
            &mut conn,
            &NewEntry {
                at: bridge.clock.now(),
                actor,
                local_ref: Some(&row.local_ref),
                action: PII_VIEWED,
                before: None,
                after: None,
            },
        )
        .await?;
    }
    Ok(view)
}

/// The status document of one complaint for one person (see `reporter_for`).
pub async fn status_for(
    bridge: &Bridge,
    local_ref: &str,
    role: Role,
    actor: &str,
) -> Result<StatusDocument, ActionError> {
    let row = complaints::by_ref(&bridge.pool, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    let mut doc = StatusDocument::build(&row, &bridge.calendar, bridge.clock.now());
    doc.reporter = Some(reporter_for(bridge, &row, role, actor).await?);
    Ok(doc)
}

/// The audit action of a person shown unmasked reporter identity.
pub const PII_VIEWED: &str = "pii_viewed";

/// What an erasure request found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureOutcome {
    pub local_ref: String,
    /// Erased before (by request or retention): nothing changed now.
    pub already_erased: bool,
    pub erased_at: DateTime<Utc>,
}

/// Erases a complaint's reporter identity for good, on a data subject's
/// request; the complaint stays. Idempotent: a second request changes
/// nothing and says `already_erased`.
pub async fn erase_reporter(
    bridge: &Bridge,
    local_ref: &str,
    reason: &str,
    actor: &str,
) -> Result<ErasureOutcome, ActionError> {
    refuse_nul("reason", reason)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(invalid("reason", "required: 1-2000 characters"));
    }
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await?;
    let (id, erased_at) = store_pii::lock_for_erasure(&mut tx, local_ref)
        .await?
        .ok_or(ActionError::NotFound)?;
    if let Some(erased_at) = erased_at {
        return Ok(ErasureOutcome {
            local_ref: local_ref.to_string(),
            already_erased: true,
            erased_at,
        });
    }
    pii::task::erase_locked(&mut tx, id, local_ref, Erasure::Request, reason, actor, now).await?;
    tx.commit().await?;
    Ok(ErasureOutcome {
        local_ref: local_ref.to_string(),
        already_erased: false,
        erased_at: now,
    })
}

/// Submits a complaint; returns whether it is new, and its status document.
pub async fn submit(
    bridge: &Bridge,
    doc: &Value,
    actor: &str,
) -> Result<(bool, StatusDocument), ActionError> {
    // PostgreSQL's jsonb refuses a NUL character before the submit function
    // can name the field (and would print its neighbourhood in its log).
    let with_nul = fields_with_nul(doc);
    if !with_nul.is_empty() {
        return Err(ActionError::Invalid(with_nul));
    }
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
        // Who submitted it: an intake token follows up only its own.
        complaints::set_submitted_by(&mut tx, local_ref, actor).await?;
        // The staged reporter is encrypted before this transaction commits;
        // without a key it waits for the daemon (which refuses to run
        // without one).
        if let Some(keyring) = &bridge.pii {
            pii::task::seal_one(&mut tx, keyring, local_ref)
                .await
                .map_err(|e| match e {
                    pii::task::TaskError::Db(e) => ActionError::Db(e),
                    other => ActionError::Sealing(other.to_string()),
                })?;
        }
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
    refuse_nul("content", content)?;
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
        StepKind::Followup,
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
    refuse_nul("reason", reason)?;
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
    outbox::enqueue(
        &mut tx,
        complaint_id,
        StepKind::Forward,
        None,
        &payload,
        now,
    )
    .await?;
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

/// Flags the complaint with `reason` (audited by the caller's entry).
async fn flag_complaint(
    conn: &mut sqlx::PgConnection,
    local_ref: &str,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    if let Some((complaint_id, _)) = complaints::lock_by_ref(conn, local_ref).await? {
        complaints::set_conflict(conn, complaint_id, reason, now).await?;
    }
    Ok(())
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
    // For a discard: whether an attempt may have reached LAPOR!.
    let (changed, may_be_on_lapor) = match action {
        StepAction::Retry => (outbox::retry_dead(&mut tx, id, now).await?, false),
        StepAction::Discard => match outbox::discard(&mut tx, id, now).await? {
            Some(needs_lookup) => (true, needs_lookup),
            None => (false, false),
        },
    };
    if !changed {
        return Err(not_now(
            &format!("step {id}"),
            "steps",
            before.state,
            action,
        ));
    }
    let after = outbox::get(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    // A complaint whose create is discarded must not read as synced once its
    // steps are gone. When an attempt may have reached LAPOR!, it says so;
    // reconciliation links it (and clears this) if LAPOR! shows it.
    if action == StepAction::Discard && before.step == StepKind::Create {
        let reason = if may_be_on_lapor {
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
    } else if action == StepAction::Discard && may_be_on_lapor {
        // A follow-up or forward that may have been applied: the operator
        // checks LAPOR! (a follow-up found there is linked by the pull).
        let reason = format!(
            "{}: its {} step {id} was discarded by {actor} after an attempt whose outcome \
             is unknown; check LAPOR! for it",
            complaints::MAY_BE_ON_LAPOR,
            before.step
        );
        flag_complaint(&mut tx, &before.local_ref, &reason, now).await?;
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

/// An operator's retry or discard of one webhook delivery, audited.
pub async fn act_on_webhook_delivery(
    bridge: &Bridge,
    id: i64,
    action: StepAction,
    actor: &str,
) -> Result<webhooks::DeliveryView, ActionError> {
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await?;
    let before = webhooks::get(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    let changed = match action {
        StepAction::Retry => webhooks::retry_dead(&mut tx, id, now).await?,
        StepAction::Discard => webhooks::discard(&mut tx, id, now).await?,
    };
    if !changed {
        return Err(not_now(
            &format!("webhook delivery {id}"),
            "deliveries",
            before.state,
            action,
        ));
    }
    let mut after = webhooks::get(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    after.url = crate::feed::webhook::shown(&after.url);
    audit::append(
        &mut tx,
        &NewEntry {
            at: now,
            actor,
            local_ref: before.local_ref.as_deref(),
            action: if action == StepAction::Retry {
                "operator.webhook_retry"
            } else {
                "operator.webhook_discard"
            },
            before: Some(json!({"delivery_id": id, "event_id": before.event_id, "state": before.state, "attempts": before.attempts, "last_error": before.last_error})),
            after: Some(json!({"delivery_id": id, "state": after.state, "attempts": after.attempts})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// An operator enables a webhook endpoint that a `410 Gone` disabled,
/// audited. Returns its URL as shown (without credentials or query).
pub async fn enable_webhook(bridge: &Bridge, id: i64, actor: &str) -> Result<String, ActionError> {
    let mut tx = bridge.pool.begin().await?;
    let url = webhooks::endpoint_url(&mut tx, id)
        .await?
        .ok_or(ActionError::NotFound)?;
    let shown = crate::feed::webhook::shown(&url);
    let Some(reason) = webhooks::enable_endpoint(&mut tx, id).await? else {
        return Err(ActionError::Conflict(format!(
            "webhook endpoint {id} is not disabled"
        )));
    };
    audit::append(
        &mut tx,
        &NewEntry {
            at: bridge.clock.now(),
            actor,
            local_ref: None,
            action: "operator.webhook_enable",
            before: Some(json!({"endpoint_id": id, "url": shown, "disabled_reason": reason})),
            after: Some(json!({"endpoint_id": id, "url": shown, "enabled": true})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(shown)
}

/// A retry or discard of something in a state that does not allow it: what
/// it is, and which states would.
fn not_now(what: &str, plural: &str, state: StepState, action: StepAction) -> ActionError {
    let (allowed, done) = match action {
        StepAction::Retry => (StepState::Dead.to_string(), "retried"),
        StepAction::Discard => (
            format!("{} or {}", StepState::Dead, StepState::Pending),
            "discarded",
        ),
    };
    ActionError::Conflict(format!(
        "{what} is {state}: only {allowed} {plural} can be {done}"
    ))
}
