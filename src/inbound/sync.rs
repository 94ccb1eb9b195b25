//! Pull and reconciliation: reading LAPOR! and applying what it says.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::apply::{self, Applied};
use crate::bridge::Bridge;
use crate::domain::ConflictKind;
use crate::lapor::LaporError;
use crate::lapor::types::{self, ComplaintSummary, Scope};
use crate::store::audit::{self, NewEntry};
use crate::store::complaints;
use crate::store::sync::{self as cursors, Tracked};

/// Re-read this far before the cursor: LAPOR!'s times have one-second
/// resolution and no zone, so the window overlaps; applying is idempotent.
const OVERLAP: Duration = Duration::seconds(120);

/// How a pull or reconciliation run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Everything was read.
    #[default]
    Ok,
    /// Some complaints (or one listing) could not be read; the rest was.
    Partial,
    /// Nothing could be read, or LAPOR! was unreachable and the run stopped.
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
        }
    }
}

/// Connection errors in a row (no successful read between them) after which
/// a run stops: LAPOR! is unreachable, trying every complaint helps nobody.
pub const UNREACHABLE_AFTER: u32 = 3;

/// A complaint a run could not read, and what failed, in words.
#[derive(Debug, Clone, Serialize)]
pub struct FailedComplaint {
    pub local_ref: String,
    pub lapor_complaint_id: Option<i64>,
    pub what: String,
}

/// Most failed complaints (and problems) a summary names.
const MAX_NAMED: usize = 50;

#[derive(Debug, Default, Clone, Serialize)]
pub struct RunSummary {
    /// `ok`, `partial` (some complaints failed: `failed` says how many,
    /// `failed_complaints` which) or `failed` (nothing could be read).
    pub outcome: RunOutcome,
    pub listed: u32,
    pub imported: u32,
    pub checked: u32,
    #[serde(flatten)]
    pub applied: Applied,
    pub drift: BTreeMap<String, u32>,
    pub repaired: u32,
    pub conflicts: u32,
    pub errors: u32,
    /// Complaints that could not be read.
    pub failed: u32,
    /// The first of them, each with what failed.
    pub failed_complaints: Vec<FailedComplaint>,
    /// Every problem in words (complaints and listings).
    pub problems: Vec<String>,
    /// LAPOR! could not be reached: the run stopped after
    /// [`UNREACHABLE_AFTER`] connection errors in a row.
    pub unreachable: bool,
    /// Tracked complaints not checked because the run stopped.
    pub not_checked: u32,
    /// A deep reconciliation (every detail read), not listing-first.
    pub deep: bool,
    /// Complaints whose detail and follow-ups were read.
    pub details_read: u32,
    /// Requests to LAPOR! this run made, and per complaint checked.
    pub requests: u64,
    pub requests_per_complaint: f64,
    /// Successful reads (listings and complaints): none means `failed`.
    #[serde(skip)]
    reads_ok: u32,
    /// Connection errors since the last successful read.
    #[serde(skip)]
    connect_errors_in_a_row: u32,
}

impl RunSummary {
    /// Records what the run cost LAPOR!.
    pub fn count_requests(&mut self, requests: u64) {
        self.requests = requests;
        self.requests_per_complaint = requests as f64 / f64::from(self.checked.max(1));
    }

    fn problem(&mut self, text: String) {
        self.errors += 1;
        if self.problems.len() < MAX_NAMED {
            self.problems.push(text);
        }
    }

    /// A LAPOR! call failed; counts toward "unreachable" when it could not
    /// connect at all.
    fn lapor_failed(&mut self, text: String, error: Option<&LaporError>) {
        if error.is_some_and(is_connection_error) {
            self.connect_errors_in_a_row += 1;
            if self.connect_errors_in_a_row >= UNREACHABLE_AFTER {
                self.unreachable = true;
            }
        }
        self.problem(text);
    }

    /// An inbox complaint that could not be imported (as `LAPOR-<id>`).
    fn import_failed(&mut self, lapor_id: i64, failure: CheckFailure) {
        self.failed += 1;
        let local_ref = format!("LAPOR-{lapor_id}");
        if self.failed_complaints.len() < MAX_NAMED {
            self.failed_complaints.push(FailedComplaint {
                local_ref: local_ref.clone(),
                lapor_complaint_id: Some(lapor_id),
                what: failure.what.clone(),
            });
        }
        self.lapor_failed(
            format!("{local_ref}: {}", failure.what),
            failure.error.as_ref(),
        );
    }

    fn complaint_failed(&mut self, t: &Tracked, failure: CheckFailure) {
        self.failed += 1;
        if self.failed_complaints.len() < MAX_NAMED {
            self.failed_complaints.push(FailedComplaint {
                local_ref: t.local_ref.clone(),
                lapor_complaint_id: Some(t.lapor_complaint_id),
                what: failure.what.clone(),
            });
        }
        let text = format!("{}: {}", t.local_ref, failure.what);
        self.lapor_failed(text, failure.error.as_ref());
    }

    fn read_ok(&mut self) {
        self.reads_ok += 1;
        self.connect_errors_in_a_row = 0;
    }

    /// Sets `outcome` from what happened.
    fn conclude(&mut self) {
        self.outcome = if self.unreachable || (self.errors > 0 && self.reads_ok == 0) {
            RunOutcome::Failed
        } else if self.errors > 0 {
            RunOutcome::Partial
        } else {
            RunOutcome::Ok
        };
        if self.unreachable {
            let text = format!(
                "LAPOR! is unreachable: the run stopped after {UNREACHABLE_AFTER} connection \
                 errors in a row; {} complaint(s) not checked",
                self.not_checked
            );
            self.problems.insert(0, text);
        }
    }

    fn drift(&mut self, kind: &str) {
        *self.drift.entry(kind.to_string()).or_default() += 1;
    }
}

/// An error that says LAPOR! could not be reached at all.
fn is_connection_error(e: &LaporError) -> bool {
    use crate::lapor::FailureKind;
    matches!(
        e.kind(),
        FailureKind::Connect | FailureKind::Timeout | FailureKind::ConnectionLost
    )
}

/// Why one complaint could not be checked.
#[derive(Debug)]
struct CheckFailure {
    what: String,
    error: Option<LaporError>,
}

impl CheckFailure {
    fn lapor(what: &str, e: LaporError) -> Self {
        Self {
            what: format!("{what}: {e}"),
            error: Some(e),
        }
    }

    fn db(e: impl std::fmt::Display) -> Self {
        Self {
            what: format!("database error: {e}"),
            error: None,
        }
    }
}

/// Whether LAPOR!'s answer matches what we hold, so that nothing would be
/// written (the steady state of pull and reconcile: no transaction at all).
fn unchanged(
    t: &Tracked,
    detail: &crate::lapor::types::ComplaintDetail,
    followups: &[crate::lapor::types::Followup],
    ours: i64,
    reconcile: bool,
) -> bool {
    use crate::lapor::StatusName;
    let status_matches = match &detail.status {
        StatusName::Known(s) => {
            t.status.as_deref() == Some(s.canonical())
                && t.conflict_reason.as_deref().and_then(ConflictKind::of)
                    != Some(ConflictKind::UnknownStatus)
        }
        StatusName::Unknown(raw) => {
            t.status.is_none()
                && t.conflict_reason.as_deref()
                    == Some(format!("{} {raw:?}", apply::UNKNOWN_STATUS).as_str())
        }
    };
    let stale_deadline = t.dispositioned && detail.disposition_id != Some(ours);
    let all_imported = followups.iter().all(|f| t.linked.contains(&f.id));
    let none_vanished = !reconcile
        || t.linked
            .iter()
            .all(|id| followups.iter().any(|f| f.id == *id));
    status_matches
        && t.lapor_status_name.as_deref() == Some(detail.status_name.as_str())
        && t.lapor_disposition_id == detail.disposition_id
        && !stale_deadline
        && all_imported
        && none_vanished
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

async fn cursor(bridge: &Bridge, name: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    Ok(cursors::cursor(&bridge.pool, name)
        .await?
        .unwrap_or_else(epoch))
}

/// Imports a complaint from our inbox as `LAPOR-<id>`.
async fn import(bridge: &Bridge, summary: &ComplaintSummary) -> Result<bool, CheckFailure> {
    let detail = bridge
        .client
        .complaint(summary.id)
        .await
        .map_err(|e| CheckFailure::lapor("reading the complaint to import it", e))?;
    let local_ref = format!("LAPOR-{}", detail.id);
    let now = bridge.clock.now();
    let mut tx = bridge.pool.begin().await.map_err(CheckFailure::db)?;
    let imported = complaints::Imported {
        local_ref: &local_ref,
        title: &detail.title,
        content: &detail.content,
        category_id: detail.category_id,
        disposition_id: detail.disposition_id,
        is_anonymous: detail.is_anonymous,
        is_secret: detail.is_secret,
        lapor_complaint_id: detail.id,
        tracking_id: &detail.tracking_id,
    };
    let inserted = complaints::insert_imported(&mut tx, &imported, now)
        .await
        .map_err(CheckFailure::db)?;
    let Some(id) = inserted else {
        return Ok(false);
    };
    audit::append(
        &mut tx,
        &NewEntry {
            at: now,
            actor: "bridge",
            local_ref: Some(&local_ref),
            action: "inbound.complaint_imported",
            before: None,
            after: Some(json!({"lapor_complaint_id": detail.id, "tracking_id": detail.tracking_id,
                               "status_name": detail.status_name, "disposition_id": detail.disposition_id})),
        },
    )
    .await
    .map_err(CheckFailure::db)?;
    apply::apply_detail(
        &mut tx,
        bridge.institution_id(),
        id,
        &local_ref,
        &detail,
        "bridge",
        now,
    )
    .await
    .map_err(CheckFailure::db)?;
    tx.commit().await.map_err(CheckFailure::db)?;
    Ok(true)
}

/// What one complaint's check found.
#[derive(Debug, Default)]
struct Checked {
    /// Nothing to write: only `last_synced_at` moves (in bulk).
    unchanged: bool,
    /// LAPOR!'s `updated_at` as read.
    updated_at: Option<DateTime<Utc>>,
    applied: Applied,
    drift: Vec<&'static str>,
    conflict: Option<String>,
}

/// Reconciliation found a tracked complaint gone from LAPOR! (404): flagged
/// for an operator.
async fn missing_upstream(bridge: &Bridge, t: &Tracked) -> Result<Checked, CheckFailure> {
    let reason = format!(
        "{} {} (404)",
        ConflictKind::MissingUpstream.prefix(),
        t.lapor_complaint_id
    );
    let mut tx = bridge.pool.begin().await.map_err(CheckFailure::db)?;
    apply::flag_conflict(&mut tx, t.id, &t.local_ref, &reason, bridge.clock.now())
        .await
        .map_err(CheckFailure::db)?;
    tx.commit().await.map_err(CheckFailure::db)?;
    Ok(Checked {
        drift: vec![ConflictKind::MissingUpstream.as_str()],
        conflict: Some(reason),
        ..Default::default()
    })
}

/// How many of ours, linked to an upstream id, LAPOR! no longer lists.
async fn missing_upstream_followups(
    conn: &mut sqlx::PgConnection,
    t: &Tracked,
    followups: &[types::Followup],
) -> Result<i64, CheckFailure> {
    let upstream: HashSet<i64> = followups.iter().map(|f| f.id).collect();
    let listed: Vec<i64> = upstream.iter().copied().collect();
    complaints::count_followups_unlisted(conn, t.id, &listed)
        .await
        .map_err(CheckFailure::db)
}

/// Reads one tracked complaint's detail and follow-ups and applies them.
/// With `reconcile`, also compares follow-ups both ways and flags conflicts.
async fn check(bridge: &Bridge, t: &Tracked, reconcile: bool) -> Result<Checked, CheckFailure> {
    let detail = match bridge.client.complaint(t.lapor_complaint_id).await {
        Ok(d) => d,
        Err(LaporError::Permanent { status: 404, .. }) if reconcile => {
            return missing_upstream(bridge, t).await;
        }
        Err(e) => return Err(CheckFailure::lapor("reading the complaint", e)),
    };
    let followups = bridge
        .client
        .followups(t.lapor_complaint_id)
        .await
        .map_err(|e| CheckFailure::lapor("reading its follow-ups", e))?;
    let now = bridge.clock.now();
    let ours = bridge.institution_id();
    if unchanged(t, &detail, &followups, ours, reconcile) {
        return Ok(Checked {
            unchanged: true,
            updated_at: Some(detail.updated_at),
            ..Default::default()
        });
    }
    let mut tx = bridge.pool.begin().await.map_err(CheckFailure::db)?;
    let mut checked = Checked::default();
    let mut applied =
        apply::apply_detail(&mut tx, ours, t.id, &t.local_ref, &detail, "bridge", now)
            .await
            .map_err(CheckFailure::db)?;
    if applied.status_changes > 0 {
        checked.drift.push("status");
    }
    if applied.disposition_changes > 0 {
        checked.drift.push("disposition");
    }
    let tolerance = Duration::seconds(bridge.settings.lapor.clock_tolerance_secs as i64);
    let f = apply::apply_followups(
        &mut tx,
        ours,
        tolerance,
        t.id,
        &t.local_ref,
        &followups,
        "bridge",
        now,
    )
    .await
    .map_err(CheckFailure::db)?;
    if f.followups_imported + f.followups_linked > 0 {
        checked.drift.push("followups_missing_locally");
    }
    applied.add(f);
    if reconcile {
        let missing = missing_upstream_followups(&mut tx, t, &followups).await?;
        if missing > 0 {
            let kind = ConflictKind::FollowupsMissingUpstream;
            checked.drift.push(kind.as_str());
            checked.conflict = Some(format!("{missing} {}", kind.prefix()));
        }
    }
    if let Some(reason) = &checked.conflict {
        apply::flag_conflict(&mut tx, t.id, &t.local_ref, reason, now)
            .await
            .map_err(CheckFailure::db)?;
    }
    complaints::touch_synced_many(&mut tx, &[t.id], &[Some(detail.updated_at)], now)
        .await
        .map_err(CheckFailure::db)?;
    tx.commit().await.map_err(CheckFailure::db)?;
    checked.applied = applied;
    Ok(checked)
}

async fn check_all(
    bridge: &Bridge,
    tracked: Vec<Tracked>,
    reconcile: bool,
    summary: &mut RunSummary,
) {
    if summary.unreachable {
        summary.not_checked += tracked.len() as u32;
        return;
    }
    let total = tracked.len() as u32;
    let parallel = bridge.settings.bridge.concurrency.max(1);
    let mut results = futures_util::stream::iter(tracked)
        .map(|t| async move {
            let result = check(bridge, &t, reconcile).await;
            (t, result)
        })
        .buffer_unordered(parallel);
    let mut synced = Vec::new();
    let mut done = 0u32;
    while let Some((t, result)) = results.next().await {
        done += 1;
        summary.checked += 1;
        summary.details_read += 1;
        match result {
            Ok(c) if c.unchanged => {
                summary.read_ok();
                synced.push((t.id, c.updated_at));
                if synced.len() >= 1_000 {
                    touch_synced(bridge, &mut synced, summary).await;
                }
            }
            Ok(c) => {
                summary.read_ok();
                summary.applied.add(c.applied);
                for kind in &c.drift {
                    summary.drift(kind);
                }
                if c.conflict.is_some() {
                    summary.conflicts += 1;
                } else if !c.drift.is_empty() {
                    summary.repaired += 1;
                }
            }
            Err(failure) => {
                summary.complaint_failed(&t, failure);
                if summary.unreachable {
                    // The checks in flight are dropped with the stream.
                    summary.not_checked += total - done;
                    break;
                }
            }
        }
    }
    drop(results);
    touch_synced(bridge, &mut synced, summary).await;
}

/// `last_synced_at` (and LAPOR!'s `updated_at` as read) of complaints found
/// unchanged, in one statement.
async fn touch_synced(
    bridge: &Bridge,
    found: &mut Vec<(i64, Option<DateTime<Utc>>)>,
    summary: &mut RunSummary,
) {
    if found.is_empty() {
        return;
    }
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let updated: Vec<Option<DateTime<Utc>>> = found.iter().map(|(_, u)| *u).collect();
    let result = async {
        let mut conn = bridge.pool.acquire().await?;
        complaints::touch_synced_many(&mut conn, &ids, &updated, bridge.clock.now()).await
    }
    .await;
    if let Err(e) = result {
        summary.problem(format!("recording last_synced_at: {e}"));
    }
    found.clear();
}

/// Whether LAPOR!'s listing shows a tracked complaint as we last read it:
/// same `updated_at`, status and disposition. Its detail is then not read.
fn listed_unchanged(t: &Tracked, s: &ComplaintSummary) -> bool {
    t.lapor_updated_at == Some(s.updated_at)
        && t.lapor_status_name.as_deref() == Some(s.status_name.as_str())
        && t.lapor_disposition_id == s.disposition_id
}

/// What LAPOR! lists as created by us, against our complaints by their
/// `ref:` tag: an unlinked complaint is linked to the first (oldest) of its
/// copies and loses the flag a discarded create left; every further copy is
/// recorded and the complaint flagged, naming every LAPOR! id.
async fn match_created(
    bridge: &Bridge,
    listed: &[ComplaintSummary],
    summary: &mut RunSummary,
) -> Result<(), sqlx::Error> {
    let mut by_ref: BTreeMap<&str, Vec<&ComplaintSummary>> = BTreeMap::new();
    for s in listed {
        if let Some(r) = types::ref_in_tags(&s.tags_raw) {
            by_ref.entry(r).or_default().push(s);
        }
    }
    if by_ref.is_empty() {
        return Ok(());
    }
    let refs: Vec<&str> = by_ref.keys().copied().collect();
    let local = complaints::local_by_refs(&bridge.pool, &refs).await?;
    let now = bridge.clock.now();
    for (local_ref, mut found) in by_ref {
        let Some(&(id, linked)) = local.get(local_ref) else {
            summary.drift("unknown_ref_upstream");
            continue;
        };
        found.sort_by_key(|s| s.id);
        let ids: Vec<i64> = found.iter().map(|s| s.id).collect();
        if linked.is_some() && ids.iter().all(|i| Some(*i) == linked) {
            continue; // the steady state: linked, no copy; nothing to write
        }
        let mut tx = bridge.pool.begin().await?;
        let linked = match linked {
            Some(linked) => linked,
            None => {
                let first = found[0];
                let linked =
                    complaints::link_created(&mut tx, id, first.id, &first.tracking_id, now)
                        .await?;
                if linked != first.id {
                    // Linked meanwhile (the outbox found or sent it): that
                    // link stands; copies are named on the next run.
                    tx.commit().await?;
                    continue;
                }
                record_linked(&mut tx, id, local_ref, first, now, summary).await?;
                first.id
            }
        };
        let copies: Vec<i64> = ids.into_iter().filter(|i| *i != linked).collect();
        if !copies.is_empty()
            && apply::note_copies(&mut tx, id, local_ref, None, linked, &copies, now).await?
        {
            summary.drift("duplicate_upstream");
            summary.conflicts += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// An unlinked complaint just linked to its first copy on LAPOR!: audited,
/// and the flag a discarded create left is cleared.
async fn record_linked(
    conn: &mut sqlx::PgConnection,
    id: i64,
    local_ref: &str,
    first: &ComplaintSummary,
    now: DateTime<Utc>,
    summary: &mut RunSummary,
) -> Result<(), sqlx::Error> {
    summary.drift("unlinked_upstream");
    let entry = |action, before, after| NewEntry {
        at: now,
        actor: "bridge",
        local_ref: Some(local_ref),
        action,
        before: Some(before),
        after: Some(after),
    };
    audit::append(
        conn,
        &entry(
            "reconcile.linked",
            json!({"lapor_complaint_id": null}),
            json!({"lapor_complaint_id": first.id, "tracking_id": first.tracking_id}),
        ),
    )
    .await?;
    if let Some(cleared) = complaints::clear_unfiled(conn, id, now).await? {
        audit::append(
            conn,
            &entry(
                "reconcile.conflict_cleared",
                json!({"conflict_reason": cleared}),
                json!({"conflict_reason": null}),
            ),
        )
        .await?;
    }
    summary.repaired += 1;
    Ok(())
}

/// The references among inbox complaints not held here that name one of
/// our own filed complaints: that complaint, seen before it was linked (the
/// create's response was lost). Linking it is the outbox's and
/// reconciliation's job; importing it would file it twice locally.
async fn own_refs_unlinked(
    bridge: &Bridge,
    listed: &[ComplaintSummary],
    known: &HashSet<i64>,
) -> Result<HashSet<String>, sqlx::Error> {
    let refs: Vec<&str> = listed
        .iter()
        .filter(|s| !known.contains(&s.id))
        .filter_map(|s| types::ref_in_tags(&s.tags_raw))
        .collect();
    Ok(complaints::local_refs_among(&bridge.pool, &refs)
        .await?
        .into_iter()
        .collect())
}

/// One incremental pull: new inbox complaints become local; every tracked
/// open complaint, and every one whose `updated_at` moved, is re-read.
pub async fn pull(bridge: &Bridge) -> Result<RunSummary, sqlx::Error> {
    let mut summary = RunSummary::default();
    let mut moved: HashSet<i64> = HashSet::new();
    for (scope, name) in [(Scope::Inbox, "inbox"), (Scope::Created, "created")] {
        let since = cursor(bridge, name).await? - OVERLAP;
        if summary.unreachable {
            break;
        }
        let listed = match bridge.client.list_all(scope, since).await {
            Ok(l) => {
                summary.read_ok();
                l
            }
            Err(e) => {
                summary.lapor_failed(format!("listing the {name} complaints: {e}"), Some(&e));
                continue;
            }
        };
        summary.listed += listed.len() as u32;
        let listed_ids: Vec<i64> = listed.iter().map(|s| s.id).collect();
        let known = complaints::known_lapor_ids(&bridge.pool, &listed_ids).await?;
        let known: HashSet<i64> = known.into_iter().collect();
        // Our own filed complaints, seen before they were linked: not imported.
        let ours = if scope == Scope::Inbox {
            own_refs_unlinked(bridge, &listed, &known).await?
        } else {
            HashSet::new()
        };
        for s in &listed {
            match known.contains(&s.id) {
                // Listed in the window: re-read it even when the second it
                // shows is the one we stored. LAPOR! shows `updated_at` to
                // the second, so a change later in the second we last read
                // (a closed complaint reopened) looks unchanged by time.
                // The window only reaches the overlap before the cursor, and
                // applying what did not change writes nothing.
                true => {
                    moved.insert(s.id);
                }
                false if types::ref_in_tags(&s.tags_raw).is_some_and(|r| ours.contains(r)) => {}
                false if scope == Scope::Inbox => match import(bridge, s).await {
                    Ok(true) => {
                        // Its follow-ups are read with the tracked ones below.
                        summary.imported += 1;
                        moved.insert(s.id);
                    }
                    Ok(false) => {}
                    Err(failure) => summary.import_failed(s.id, failure),
                },
                false => {} // created by us: matched below
            }
        }
        if scope == Scope::Created {
            // Ours but not linked yet (the create's answer was lost), or a
            // second copy: the same matching as reconciliation's.
            let unknown: Vec<ComplaintSummary> = listed
                .iter()
                .filter(|s| !known.contains(&s.id))
                .cloned()
                .collect();
            match_created(bridge, &unknown, &mut summary).await?;
        }
        if summary.errors == 0
            && let Some(max) = listed.iter().map(|s| s.updated_at).max()
        {
            cursors::save_cursor(&bridge.pool, name, max).await?;
        }
    }
    let moved: Vec<i64> = moved.into_iter().collect();
    let tracked = cursors::tracked_open_or_moved(&bridge.pool, &moved).await?;
    check_all(bridge, tracked, false, &mut summary).await;
    summary.conclude();
    Ok(summary)
}

/// Where reconciliation lists what LAPOR! holds as created by us: shortly
/// before the oldest local complaint that is unlinked or still within the
/// horizon, and (listing-first) before every tracked complaint as we last
/// read it.
async fn created_listing_from(
    bridge: &Bridge,
    tracked: &[Tracked],
    horizon: DateTime<Utc>,
    deep: bool,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    // Every tracked complaint as we last read it is listed from its
    // `updated_at` on (a minute of margin for LAPOR!'s one-second times).
    let listed_from = tracked
        .iter()
        .filter_map(|t| t.lapor_updated_at)
        .min()
        .map(|at| at - Duration::minutes(1));
    // Created by us: also from shortly before the oldest local complaint
    // that is unlinked or still within the horizon.
    let created_from = complaints::oldest_to_match_upstream(&bridge.pool, horizon)
        .await?
        .map(|at| at - Duration::minutes(10));
    Ok(match (created_from, listed_from.filter(|_| !deep)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// A complaint found unchanged, and LAPOR!'s `updated_at` as read (`None`:
/// keep the stored one).
type SyncedAsRead = (i64, Option<DateTime<Utc>>);

/// Splits tracked complaints into those the (complete) listings show as we
/// last read them, whose `last_synced_at` only moves, and those to read.
fn split_by_listing(
    tracked: Vec<Tracked>,
    listed: &HashMap<i64, ComplaintSummary>,
    listings_complete: bool,
) -> (Vec<SyncedAsRead>, Vec<Tracked>) {
    let mut unchanged = Vec::new();
    let mut to_read = Vec::new();
    for t in tracked {
        let same = listings_complete
            && listed
                .get(&t.lapor_complaint_id)
                .is_some_and(|s| listed_unchanged(&t, s));
        if same {
            // Only last_synced_at moves: a pull may have stored a newer
            // updated_at meanwhile.
            unchanged.push((t.id, None));
        } else {
            to_read.push(t);
        }
    }
    (unchanged, to_read)
}

/// Reconciliation of every tracked complaint (closed ones within the
/// horizon too), plus what LAPOR! lists as created by us: complaints that
/// carry our reference but are not linked locally, and copies of one.
///
/// Listing-first (`deep` false): LAPOR!'s listings (`scope=created` and
/// `inbox`, 100 a page) are compared with what we hold, and only complaints
/// whose status, disposition or `updated_at` moved, or that no listing
/// shows, have their detail and follow-ups read. A deep run reads every
/// detail (weekly, and on demand).
pub async fn reconcile(bridge: &Bridge, deep: bool) -> Result<RunSummary, sqlx::Error> {
    let mut summary = RunSummary {
        deep,
        ..RunSummary::default()
    };
    let now = bridge.clock.now();
    let horizon = now - Duration::days(bridge.settings.bridge.reconcile_closed_horizon_days);
    let tracked = cursors::tracked_within(&bridge.pool, horizon).await?;
    let created_from = created_listing_from(bridge, &tracked, horizon, deep).await?;
    let mut listed: HashMap<i64, ComplaintSummary> = HashMap::new();
    let mut listings_complete = true;
    if let Some(since) = created_from {
        match bridge.client.list_all(Scope::Created, since).await {
            Ok(created) => {
                summary.read_ok();
                summary.listed += created.len() as u32;
                match_created(bridge, &created, &mut summary).await?;
                listed.extend(created.into_iter().map(|s| (s.id, s)));
            }
            Err(e) => {
                listings_complete = false;
                summary.lapor_failed(format!("listing the created complaints: {e}"), Some(&e));
            }
        }
    }
    if deep {
        check_all(bridge, tracked, true, &mut summary).await;
        summary.conclude();
        return Ok(summary);
    }
    // The inbox only for what we imported from it: what we created is in
    // `scope=created` (and, filed to ourselves, in the inbox a second time).
    let inbox_from = tracked
        .iter()
        .filter(|t| t.imported)
        .filter_map(|t| t.lapor_updated_at)
        .min()
        .map(|at| at - Duration::minutes(1));
    if let Some(since) = inbox_from {
        match bridge.client.list_all(Scope::Inbox, since).await {
            Ok(inbox) => {
                summary.read_ok();
                summary.listed += inbox.len() as u32;
                listed.extend(inbox.into_iter().map(|s| (s.id, s)));
            }
            Err(e) => {
                listings_complete = false;
                summary.lapor_failed(format!("listing the inbox: {e}"), Some(&e));
            }
        }
    }
    // What the listings show unchanged costs nothing more; the rest is read.
    let (unchanged, to_read) = split_by_listing(tracked, &listed, listings_complete);
    summary.checked += unchanged.len() as u32;
    for chunk in unchanged.chunks(1_000) {
        touch_synced(bridge, &mut chunk.to_vec(), &mut summary).await;
    }
    check_all(bridge, to_read, true, &mut summary).await;
    summary.conclude();
    Ok(summary)
}
