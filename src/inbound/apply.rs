//! Applies what LAPOR! says of a complaint to the local copy, by the
//! ownership rules: LAPOR! owns status, disposition and its ids; follow-ups
//! are the union of both sides, each imported once. Every change is audited;
//! nothing is written when nothing changed.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;

use crate::lapor::types::{ComplaintDetail, Followup};
use crate::lapor::{Status, StatusName};
use crate::store::audit::{self, NewEntry};
use crate::store::complaints::{self, UpstreamFields};
use crate::store::outbox;

/// Prefix of the conflict reason set for an unknown status name.
pub const UNKNOWN_STATUS: &str = "unknown LAPOR! status name";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub status_changes: u32,
    pub disposition_changes: u32,
    pub followups_imported: u32,
    pub followups_linked: u32,
    pub unknown_statuses: u32,
}

impl Applied {
    pub fn add(&mut self, other: Applied) {
        self.status_changes += other.status_changes;
        self.disposition_changes += other.disposition_changes;
        self.followups_imported += other.followups_imported;
        self.followups_linked += other.followups_linked;
        self.unknown_statuses += other.unknown_statuses;
    }

    pub fn changed(&self) -> bool {
        self.status_changes
            + self.disposition_changes
            + self.followups_imported
            + self.followups_linked
            > 0
    }
}

/// Status and disposition from a detail read.
pub async fn apply_detail(
    conn: &mut PgConnection,
    institution_id: i64,
    complaint_id: i64,
    local_ref: &str,
    detail: &ComplaintDetail,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Applied, sqlx::Error> {
    let before = complaints::upstream_fields(conn, complaint_id).await?;
    let mut after = before.clone();
    let mut applied = Applied::default();
    after.lapor_status_name = Some(detail.status_name.clone());
    match &detail.status {
        StatusName::Known(status) => {
            after.status = Some(status.canonical().to_string());
            if before
                .conflict_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(UNKNOWN_STATUS))
            {
                after.conflict_reason = None;
            }
        }
        StatusName::Unknown(raw) => {
            after.status = None;
            after.conflict_reason = Some(format!("{UNKNOWN_STATUS} {raw:?}"));
            if before.lapor_status_name.as_deref() != Some(raw.as_str()) {
                applied.unknown_statuses += 1;
            }
        }
    }
    after.lapor_disposition_id = detail.disposition_id;
    let to_us = detail.disposition_id == Some(institution_id);
    if !to_us {
        // Not (or no longer) dispositioned to us, e.g. forwarded away: the
        // follow-up is not ours to post, so no deadline of ours runs from an
        // earlier disposition. The delivery of our forward may already have
        // recorded the new disposition, so this holds whether or not
        // anything else changed; the audit log keeps the history.
        sqlx::query(
            "UPDATE lapor_bridge.complaints SET dispositioned_at = NULL
              WHERE id = $1 AND dispositioned_at IS NOT NULL",
        )
        .bind(complaint_id)
        .execute(&mut *conn)
        .await?;
    }
    if after == before {
        complaints::touch_synced(conn, complaint_id, now).await?;
        return Ok(applied);
    }
    if after.lapor_status_name != before.lapor_status_name || after.status != before.status {
        applied.status_changes += 1;
    }
    if after.lapor_disposition_id != before.lapor_disposition_id {
        applied.disposition_changes += 1;
    }
    // When it was dispositioned to us: the last log entry that moved it here.
    let dispositioned_at = if to_us && before.lapor_disposition_id != Some(institution_id) {
        detail
            .logs
            .iter()
            .rev()
            .find(|l| l.institution_to.as_ref().map(|i| i.id) == Some(institution_id))
            .map(|l| l.created_at)
            .or(Some(detail.updated_at))
    } else {
        None
    };
    let closed = matches!(&detail.status, StatusName::Known(s) if s.is_closed());
    let closed_at = closed.then_some(detail.updated_at);
    complaints::store_upstream(
        conn,
        complaint_id,
        &after,
        dispositioned_at,
        closed_at,
        detail.created_at,
        detail.updated_at,
        now,
    )
    .await?;
    audit::append(
        conn,
        &NewEntry {
            at: now,
            actor,
            local_ref: Some(local_ref),
            action: "inbound.complaint_changed",
            before: Some(upstream_json(&before)),
            after: Some(upstream_json(&after)),
        },
    )
    .await?;
    let verified_now = matches!(
        &detail.status,
        StatusName::Known(s) if !s.awaits_verification()
    );
    if verified_now {
        outbox::wake_waiting(conn, complaint_id, now).await?;
    }
    Ok(applied)
}

fn upstream_json(f: &UpstreamFields) -> serde_json::Value {
    json!({
        "lapor_status_name": f.lapor_status_name,
        "status": f.status,
        "disposition_id": f.lapor_disposition_id,
        "conflict_reason": f.conflict_reason,
    })
}

/// Whether a LAPOR! status means our follow-ups and forwards must wait.
pub fn awaits_verification(status: Option<&str>) -> bool {
    status
        .and_then(Status::from_canonical)
        .is_none_or(Status::awaits_verification)
}

/// Follow-ups: each upstream one imported once; ours linked, not imported.
pub async fn apply_followups(
    conn: &mut PgConnection,
    institution_id: i64,
    complaint_id: i64,
    local_ref: &str,
    upstream: &[Followup],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Applied, sqlx::Error> {
    let mut local = complaints::followups_of(conn, complaint_id).await?;
    let mut applied = Applied::default();
    for f in upstream {
        if local.iter().any(|l| l.lapor_followup_id == Some(f.id)) {
            continue;
        }
        let ours = f.institution_id == Some(institution_id);
        // One of ours whose answer was lost, or delivered by another replica:
        // same content, same institution, not linked yet.
        let unlinked = local.iter_mut().find(|l| {
            ours && l.origin == "local" && l.lapor_followup_id.is_none() && l.content == f.content
        });
        if let Some(l) = unlinked {
            complaints::link_followup(conn, l.id, f.id, Some(f.created_at)).await?;
            l.lapor_followup_id = Some(f.id);
            applied.followups_linked += 1;
            complaints::note_our_followup(conn, complaint_id, f.created_at).await?;
            continue;
        }
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO lapor_bridge.followups
                 (complaint_id, origin, content, is_secret, institution_id, lapor_followup_id,
                  lapor_created_at, created_at)
             VALUES ($1, 'lapor', $2, $3, $4, $5, $6, $7)
             ON CONFLICT (complaint_id, lapor_followup_id) DO NOTHING
             RETURNING id",
        )
        .bind(complaint_id)
        .bind(&f.content)
        .bind(f.is_secret)
        .bind(f.institution_id)
        .bind(f.id)
        .bind(f.created_at)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_none() {
            continue;
        }
        applied.followups_imported += 1;
        if ours {
            complaints::note_our_followup(conn, complaint_id, f.created_at).await?;
        } else {
            sqlx::query(
                "UPDATE lapor_bridge.complaints SET last_followup_at = greatest(last_followup_at, $2)
                  WHERE id = $1",
            )
            .bind(complaint_id)
            .bind(f.created_at)
            .execute(&mut *conn)
            .await?;
        }
        audit::append(
            conn,
            &NewEntry {
                at: now,
                actor,
                local_ref: Some(local_ref),
                action: "inbound.followup_imported",
                before: None,
                after: Some(json!({
                    "lapor_followup_id": f.id,
                    "institution_id": f.institution_id,
                    "is_secret": f.is_secret,
                    "created_at": f.created_at,
                    // The text of a secret follow-up stays out of the log.
                    "content": if f.is_secret { None } else { Some(&f.content) },
                })),
            },
        )
        .await?;
    }
    Ok(applied)
}
