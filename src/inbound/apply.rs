//! Applies what LAPOR! says of a complaint to the local copy, by the
//! ownership rules: LAPOR! owns status, disposition and its ids; follow-ups
//! are the union of both sides, each imported once. Every change is audited;
//! nothing is written when nothing changed.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::PgConnection;

use crate::domain::ConflictKind;
use crate::lapor::types::{ComplaintDetail, Followup};
use crate::lapor::{Status, StatusName};
use crate::store::audit::{self, NewEntry};
use crate::store::complaints::{self, UpstreamFields};
use crate::store::duplicates;
use crate::store::outbox;

/// Prefix of the conflict reason set for an unknown status name.
pub const UNKNOWN_STATUS: &str = ConflictKind::UnknownStatus.prefix();

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
    let (after, mut applied) = upstream_after(&before, detail);
    let to_us = detail.disposition_id == Some(institution_id);
    if !to_us {
        // Not (or no longer) dispositioned to us, e.g. forwarded away: the
        // follow-up is not ours to post, so no deadline of ours runs from an
        // earlier disposition. The delivery of our forward may already have
        // recorded the new disposition, so this holds whether or not
        // anything else changed; the audit log keeps the history.
        complaints::clear_dispositioned(conn, complaint_id).await?;
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
    let dispositioned_at = (to_us && before.lapor_disposition_id != Some(institution_id))
        .then(|| dispositioned_to_us_at(detail, institution_id));
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

/// The LAPOR!-owned fields as the detail shows them, from `before`: status
/// name, status (none, and a conflict, for an unknown name) and disposition.
fn upstream_after(before: &UpstreamFields, detail: &ComplaintDetail) -> (UpstreamFields, Applied) {
    let mut after = before.clone();
    let mut applied = Applied::default();
    after.lapor_status_name = Some(detail.status_name.clone());
    match &detail.status {
        StatusName::Known(status) => {
            after.status = Some(status.canonical().to_string());
            if before.conflict_reason.as_deref().and_then(ConflictKind::of)
                == Some(ConflictKind::UnknownStatus)
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
    (after, applied)
}

/// When a complaint was dispositioned to us: the last log entry that moved
/// it here, else LAPOR!'s `updated_at`.
fn dispositioned_to_us_at(detail: &ComplaintDetail, institution_id: i64) -> DateTime<Utc> {
    detail
        .logs
        .iter()
        .rev()
        .find(|l| l.institution_to.as_ref().map(|i| i.id) == Some(institution_id))
        .map(|l| l.created_at)
        .unwrap_or(detail.updated_at)
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

/// An unmatched upstream copy of one of our texts is taken for a second copy
/// of our delivery only if that delivery had a write whose outcome is
/// unknown, and only this soon after its lookup delay ended; otherwise it is
/// somebody posting the same template on LAPOR! itself.
pub const COPY_WINDOW: Duration = Duration::hours(1);

/// What matching our follow-ups with LAPOR!'s needs besides the two lists.
#[derive(Debug, Clone)]
pub struct MatchRules {
    pub institution_id: i64,
    /// How far LAPOR!'s clock may run behind ours (`[lapor]
    /// clock_tolerance_secs`).
    pub clock_tolerance: Duration,
    /// Upstream follow-ups already recorded as copies: never matched again.
    pub known_copies: HashSet<i64>,
}

/// What matching our follow-ups with LAPOR!'s found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowupMatch {
    /// (local follow-up id, upstream id): the upstream one is ours.
    pub links: Vec<(i64, i64)>,
    /// (local follow-up id, upstream id): a second copy of a local one that
    /// is linked already (sent twice through a gateway that gave up).
    pub copies: Vec<(i64, i64)>,
}

/// Matches our local follow-ups that are not linked yet with the upstream
/// follow-ups of our institution that no local one is linked to: same
/// text, created no earlier than the local one was first sent (less the
/// clock tolerance), one to one and in order (the oldest local one takes
/// the oldest upstream one that fits). A follow-up never sent cannot be on
/// LAPOR!. Templated replies are the norm, so text alone never decides. The
/// pull's linking and the delivery's lookup both use this.
pub fn match_followups(
    local: &[complaints::FollowupRow],
    upstream: &[Followup],
    rules: &MatchRules,
) -> FollowupMatch {
    let tolerance = rules.clock_tolerance;
    let taken: HashSet<i64> = local.iter().filter_map(|l| l.lapor_followup_id).collect();
    let mut free: Vec<&Followup> = upstream
        .iter()
        .filter(|u| {
            u.institution_id == Some(rules.institution_id)
                && !taken.contains(&u.id)
                && !rules.known_copies.contains(&u.id)
        })
        .collect();
    free.sort_by_key(|u| (u.created_at, u.id));
    let mut mine: Vec<&complaints::FollowupRow> =
        local.iter().filter(|l| l.origin == "local").collect();
    mine.sort_by_key(|l| l.id);
    let mut used: HashSet<i64> = HashSet::new();
    let mut found = FollowupMatch::default();
    for l in mine.iter().filter(|l| l.lapor_followup_id.is_none()) {
        let Some(sent_from) = l.sent_from else {
            continue;
        };
        if let Some(u) = free.iter().find(|u| {
            !used.contains(&u.id) && u.content == l.content && u.created_at >= sent_from - tolerance
        }) {
            used.insert(u.id);
            found.links.push((l.id, u.id));
        }
    }
    let linked: HashSet<i64> = found.links.iter().map(|(l, _)| *l).collect();
    for u in free.iter().filter(|u| !used.contains(&u.id)) {
        // The latest of our deliveries of this text, with a write whose
        // outcome was unknown, that it can follow.
        let original = mine.iter().rev().find(|l| {
            (l.lapor_followup_id.is_some() || linked.contains(&l.id))
                && l.content == u.content
                && l.sent_from
                    .is_some_and(|from| u.created_at >= from - tolerance)
                && l.unknown_until
                    .is_some_and(|until| u.created_at <= until + COPY_WINDOW)
        });
        if let Some(l) = original {
            found.copies.push((l.id, u.id));
        }
    }
    found
}

/// Flags a complaint for an operator with `reason`, audited; nothing is
/// written when the same reason is set already.
pub async fn flag_conflict(
    conn: &mut PgConnection,
    complaint_id: i64,
    local_ref: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(before) = complaints::set_conflict(conn, complaint_id, reason, now).await? else {
        return Ok(());
    };
    audit::append(
        conn,
        &NewEntry {
            at: now,
            actor: "bridge",
            local_ref: Some(local_ref),
            action: "reconcile.conflict",
            before: Some(json!({"conflict_reason": before})),
            after: Some(json!({"conflict_reason": reason})),
        },
    )
    .await?;
    Ok(())
}

/// Records copies on LAPOR! of one local item (`followup_id` `None`: the
/// complaint) and, when the list grew, flags the complaint naming every
/// LAPOR! id and what to have archived. Returns whether anything was new.
pub async fn note_copies(
    conn: &mut PgConnection,
    complaint_id: i64,
    local_ref: &str,
    followup_id: Option<i64>,
    linked: i64,
    copies: &[i64],
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let Some(ids) =
        duplicates::record(conn, complaint_id, followup_id, linked, copies, now).await?
    else {
        return Ok(false);
    };
    let list = |ids: &[i64]| {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = match followup_id {
        None => "this complaint".to_string(),
        Some(id) => format!("our follow-up #{id}"),
    };
    let reason = format!(
        "{DUPLICATE_UPSTREAM} {n} copies of {what} (LAPOR! ids {all}); {linked} is linked here: \
         ask LAPOR!'s admins to archive {rest}",
        n = ids.len(),
        all = list(&ids),
        rest = list(&ids[1..]),
    );
    flag_conflict(conn, complaint_id, local_ref, &reason, now).await?;
    Ok(true)
}

/// Prefix of the conflict reason for copies on LAPOR!.
pub const DUPLICATE_UPSTREAM: &str = ConflictKind::DuplicateUpstream.prefix();

/// Follow-ups: each upstream one imported once; ours linked, not imported;
/// a second copy of one of ours named, not imported.
#[allow(clippy::too_many_arguments)]
pub async fn apply_followups(
    conn: &mut PgConnection,
    institution_id: i64,
    clock_tolerance: Duration,
    complaint_id: i64,
    local_ref: &str,
    upstream: &[Followup],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Applied, sqlx::Error> {
    let local = complaints::followups_of(conn, complaint_id).await?;
    let mut applied = Applied::default();
    let mut copies: HashSet<i64> = duplicates::followup_copies(conn, complaint_id)
        .await?
        .into_iter()
        .collect();
    let rules = MatchRules {
        institution_id,
        clock_tolerance,
        known_copies: copies.clone(),
    };
    let found = match_followups(&local, upstream, &rules);
    for (local_id, upstream_id) in &found.links {
        let Some(f) = upstream.iter().find(|u| u.id == *upstream_id) else {
            continue;
        };
        complaints::link_followup(conn, *local_id, f.id, Some(f.created_at)).await?;
        applied.followups_linked += 1;
        complaints::note_our_followup(conn, complaint_id, f.created_at).await?;
    }
    for (local_id, upstream_id) in &found.copies {
        if name_copy(
            conn,
            complaint_id,
            local_ref,
            &local,
            &found,
            *local_id,
            *upstream_id,
            now,
        )
        .await?
        {
            copies.insert(*upstream_id);
        }
    }
    let linked: HashSet<i64> = local
        .iter()
        .filter_map(|l| l.lapor_followup_id)
        .chain(found.links.iter().map(|(_, u)| *u))
        .collect();
    for f in upstream {
        if linked.contains(&f.id) || copies.contains(&f.id) {
            continue;
        }
        let ours = f.institution_id == Some(institution_id);
        if import_followup(conn, complaint_id, local_ref, f, ours, actor, now).await? {
            applied.followups_imported += 1;
        }
    }
    Ok(applied)
}

/// Imports one upstream follow-up, audited, and moves the complaint's
/// follow-up times (`ours`: our institution's, which meets our deadline).
/// Returns whether it was new.
async fn import_followup(
    conn: &mut PgConnection,
    complaint_id: i64,
    local_ref: &str,
    f: &Followup,
    ours: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let upstream_followup = complaints::UpstreamFollowup {
        lapor_followup_id: f.id,
        content: &f.content,
        is_secret: f.is_secret,
        institution_id: f.institution_id,
        lapor_created_at: f.created_at,
    };
    let inserted =
        complaints::insert_upstream_followup(conn, complaint_id, &upstream_followup, now).await?;
    if inserted.is_none() {
        return Ok(false);
    }
    if ours {
        complaints::note_our_followup(conn, complaint_id, f.created_at).await?;
    } else {
        complaints::note_their_followup(conn, complaint_id, f.created_at).await?;
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
    Ok(true)
}

/// Names an upstream follow-up as a second copy of our follow-up
/// `local_id`, against the LAPOR! id that one is (or was just) linked to.
/// Returns whether it was named.
#[allow(clippy::too_many_arguments)]
async fn name_copy(
    conn: &mut PgConnection,
    complaint_id: i64,
    local_ref: &str,
    local: &[complaints::FollowupRow],
    found: &FollowupMatch,
    local_id: i64,
    upstream_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let linked = local
        .iter()
        .find(|l| l.id == local_id)
        .and_then(|l| l.lapor_followup_id)
        .or_else(|| {
            found
                .links
                .iter()
                .find(|(l, _)| *l == local_id)
                .map(|(_, u)| *u)
        });
    let Some(linked) = linked else {
        return Ok(false);
    };
    note_copies(
        conn,
        complaint_id,
        local_ref,
        Some(local_id),
        linked,
        &[upstream_id],
        now,
    )
    .await?;
    Ok(true)
}
