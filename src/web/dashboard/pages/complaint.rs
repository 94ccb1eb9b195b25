//! One complaint, composed of small parts: its status document, the
//! reporter, the SLA, the content, the outbox steps and the timeline.

use crate::domain::{AttemptOutcome, StepState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::changes::changes;
use super::{
    PageResult, Params, check_query, deadline_label, flash, kv, next_deadline, opt_text,
    status_label, step_buttons, step_label, step_state_badge, sync_state_badge, waiting_note,
};
use crate::actions;
use crate::config::Role;
use crate::pii::{ReporterState, ReporterView};
use crate::status_document::StatusDocument;
use crate::store::audit::{self, Entry};
use crate::store::complaints::{self, ComplaintRow, FollowupRow};
use crate::store::dashboard::{self as queries, AttemptRow};
use crate::store::outbox::{self, StepView};
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, badge, complaint_href, when, when_opt};
use crate::web::dashboard::i18n::{self, K, Lang, label, t};
use crate::web::dashboard::{Ctx, OrFail};

/// The status document's table. `disposition` is the institution's name as
/// LAPOR! lists it, when known.
fn status(
    ctx: &Ctx,
    doc: &StatusDocument,
    row: &ComplaintRow,
    disposition: Option<String>,
) -> Markup {
    let lang = ctx.lang;
    let origin = if doc.origin == "lapor" {
        K::OriginLapor
    } else {
        K::OriginLocal
    };
    let yes_no = |b: bool| t(lang, if b { K::Yes } else { K::No });
    let last_error = html! {
        @if let Some(e) = &doc.last_error { span.error { (e) } } @else { "—" }
    };
    let disposition = html! {
        @match (doc.disposition_id, disposition) {
            (Some(id), Some(name)) => { (name) " " span.muted { "(" (id) ")" } }
            (Some(id), None) => { (id) }
            (None, _) => { "—" }
        }
    };
    html! {
        table.kv #status-document {
            (kv(ctx.t(K::Reference), &doc.local_ref))
            (kv(ctx.t(K::Title), &doc.title))
            (kv(ctx.t(K::Origin), ctx.t(origin)))
            (kv(ctx.t(K::SyncState), sync_state_badge(lang, doc.sync_state)))
            (kv(ctx.t(K::Status), status_label(lang, doc)))
            (kv(ctx.t(K::LaporStatusName), opt_text(&doc.lapor_status_name)))
            (kv(ctx.t(K::LaporId), opt_text(&doc.lapor_complaint_id)))
            (kv(ctx.t(K::TrackingId), opt_text(&doc.tracking_id)))
            (kv(ctx.t(K::PendingOps), doc.pending_ops))
            @if let Some(code) = &doc.waiting_code {
                tr #waiting {
                    th { (ctx.t(K::Waiting)) }
                    td { (waiting_note(lang, code, doc.waiting_until)) }
                }
            }
            (kv(ctx.t(K::LastError), last_error))
            (kv(ctx.t(K::LastSynced), when_opt(doc.last_synced_at)))
            @if doc.conflict_reason.is_some() {
                (kv(ctx.t(K::ConflictReason), opt_text(&doc.conflict_reason)))
            }
            (kv(ctx.t(K::Disposition), disposition))
            (kv(ctx.t(K::Created), when(doc.created_at)))
            (kv(ctx.t(K::Anonymous), yes_no(row.is_anonymous)))
            (kv(ctx.t(K::Secret), yes_no(row.is_secret)))
        }
    }
}

/// The reporter's fields as `view` shows them.
fn reporter_fields(ctx: &Ctx, view: &ReporterView) -> Markup {
    let id = &view.identity;
    html! {
        @match view.state {
            ReporterState::Erased => { p.muted #reporter {
                (ctx.t(K::ReporterErased)) ": " (when_opt(view.erased_at))
                " (" (view.erasure.as_deref().unwrap_or("")) ")"
            } }
            ReporterState::Sealing => { p.muted #reporter { (ctx.t(K::ReporterSealing)) } }
            ReporterState::Unreadable => { p.error #reporter { (ctx.t(K::ReporterUnreadable)) } }
            ReporterState::None | ReporterState::Held => { table.kv #reporter {
                @for (key, value) in [
                    (K::ReporterName, &id.name),
                    (K::ReporterPhone, &id.phone),
                    (K::ReporterEmail, &id.email),
                    (K::ReporterNik, &id.nik),
                    (K::ReporterAddress, &id.address),
                ] {
                    (kv(ctx.t(key), value.as_deref().unwrap_or("—")))
                }
            } }
        }
    }
}

/// The reporter: unmasked for operators and admins, of an anonymous or
/// secret complaint for admins only (the view is audited by the caller);
/// admins get the erasure link.
fn reporter(ctx: &Ctx, view: &ReporterView, row: &ComplaintRow) -> Markup {
    let note = if view.reveals() {
        K::ReporterShownAudited
    } else if row.is_anonymous || row.is_secret {
        K::ReporterMasked
    } else {
        K::ReporterMaskedRole
    };
    html! {
        h2 { (ctx.t(K::Reporter)) }
        (reporter_fields(ctx, view))
        @if view.state == ReporterState::Held {
            p.muted { (ctx.t(note)) }
        }
        @if ctx.session.role == Role::Admin && view.erased_at.is_none() {
            p { a.button #erase-reporter href={ (complaint_href(&row.local_ref)) "/erase" } {
                (ctx.t(K::EraseReporter))
            } }
        }
    }
}

fn sla(ctx: &Ctx, doc: &StatusDocument) -> Markup {
    let lang = ctx.lang;
    let overdue = html! {
        @if doc.sla.overdue.is_empty() {
            (ctx.t(K::No))
        } @else {
            @let kinds: Vec<&str> = doc.sla.overdue.iter().map(|k| deadline_label(lang, *k)).collect();
            (badge("bad", &kinds.join(", ")))
        }
    };
    html! {
        h2 { (ctx.t(K::Sla)) }
        table.kv #sla {
            (kv(ctx.t(K::FollowUpDue), when_opt(doc.sla.follow_up_due_at)))
            (kv(ctx.t(K::AutoCloseExpected), when_opt(doc.sla.auto_close_expected_at)))
            (kv(ctx.t(K::CompletionDue), when_opt(doc.sla.completion_due_at)))
            (kv(ctx.t(K::NextDeadline), next_deadline(lang, doc)))
            (kv(ctx.t(K::Overdue), overdue))
        }
    }
}

/// When a pending step goes on, and why it waits (verification, the lookup
/// delay after an unknown outcome, the tokens).
fn next_attempt(lang: Lang, s: &StepView) -> Markup {
    html! {
        @if s.state != StepState::Pending {
            "—"
        } @else {
            (when(s.next_attempt_at))
            @if let Some(code) = &s.waiting_code {
                br;
                span.muted.waiting {
                    (waiting_note(lang, code, s.lookup_not_before.max(Some(s.next_attempt_at))))
                }
            }
        }
    }
}

/// The outbox steps, with their buttons returning to this page.
fn steps(ctx: &Ctx, steps: &[StepView], back: &str) -> Markup {
    let lang = ctx.lang;
    html! {
        h2 { (ctx.t(K::Steps)) }
        @if steps.is_empty() {
            p.muted { (ctx.t(K::NoRows)) }
        } @else {
            table #steps {
                tr {
                    th { "#" } th { (ctx.t(K::Step)) } th { (ctx.t(K::State)) }
                    th.num { (ctx.t(K::Attempts)) } th { (ctx.t(K::NextAttempt)) }
                    th { (ctx.t(K::LastError)) } th { (ctx.t(K::Actions)) }
                }
                @for s in steps {
                    tr {
                        td { (s.id) }
                        td { (step_label(lang, s.step)) }
                        td { (step_state_badge(lang, s.state)) }
                        td.num { (s.attempts) }
                        td { (next_attempt(lang, s)) }
                        td.mono { (opt_text(&s.last_error)) }
                        td { (step_buttons(ctx, s, back)) }
                    }
                }
            }
        }
    }
}

/// A line of the timeline: when, the order among lines of the same
/// instant, its kind, and what happened.
type Event = (DateTime<Utc>, u8, &'static str, Markup);

fn attempt_event(ctx: &Ctx, a: &AttemptRow) -> Event {
    let lang = ctx.lang;
    // A retry that failed again is a failure, shown as one.
    let failed = a.outcome.failed();
    let outcome = label(lang, i18n::outcome_key(a.outcome), a.outcome.as_str());
    // A wait's own rows say it in the outcome; other messages are LAPOR!'s
    // or the bridge's words.
    let waits = matches!(
        a.outcome,
        AttemptOutcome::Waiting | AttemptOutcome::WaitOver
    );
    let details = html! {
        (step_label(lang, a.step)) " #" (a.outbox_id) " · " (ctx.t(K::Attempts)) " " (a.attempt) " · "
        @if failed { (badge("bad", &outcome)) } @else { b { (outcome) } }
        @if let Some(s) = a.http_status { " · HTTP " (s) }
        " · " (a.duration_ms) " ms"
        @if let Some(m) = a.message.as_ref().filter(|_| !waits) {
            br;
            span.mono { (m) }
        }
    };
    (a.started_at, 0, ctx.t(K::KindAttempt), details)
}

fn followup_event(ctx: &Ctx, f: &FollowupRow) -> Event {
    let who = match f.institution_id {
        Some(i) => format!("{} {i}", ctx.t(K::Institution)),
        None => ctx.t(K::ByReporter).to_string(),
    };
    let details = html! {
        (f.origin) " · " (who) br;
        @if f.is_secret { i { (ctx.t(K::SecretContent)) } } @else { (f.content) }
    };
    let at = f.lapor_created_at.unwrap_or(f.created_at);
    (at, 1, ctx.t(K::KindFollowup), details)
}

fn audit_event(ctx: &Ctx, e: &Entry) -> Event {
    let kind = if e.action.starts_with("inbound.complaint_changed") {
        K::KindStatusChange
    } else {
        K::KindAudit
    };
    let details = html! {
        b { (i18n::action_label(ctx.lang, &e.action)) } " · " (e.actor)
        (changes(ctx.lang, &e.before, &e.after))
    };
    (e.at, 2, ctx.t(kind), details)
}

/// Attempts, follow-ups and audit entries in time order.
fn timeline(
    ctx: &Ctx,
    attempts: &[AttemptRow],
    followups: &[FollowupRow],
    entries: &[Entry],
) -> Markup {
    let mut events: Vec<Event> = attempts.iter().map(|a| attempt_event(ctx, a)).collect();
    events.extend(followups.iter().map(|f| followup_event(ctx, f)));
    events.extend(entries.iter().map(|e| audit_event(ctx, e)));
    events.sort_by_key(|(at, order, _, _)| (*at, *order));
    html! {
        h2 { (ctx.t(K::Timeline)) }
        @if events.is_empty() {
            p.muted { (ctx.t(K::NoRows)) }
        } @else {
            table #timeline {
                tr { th { (ctx.t(K::Time)) } th { (ctx.t(K::Kind)) } th { (ctx.t(K::Details)) } }
                @for (at, _, kind, details) in &events {
                    tr { td { (when(*at)) } td { (kind) } td { (details) } }
                }
            }
        }
    }
}

pub async fn complaint(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(local_ref): Path<String>,
    Query(p): Params,
) -> PageResult {
    ctx.need(Role::Operator)?;
    check_query(&ctx, &p, &["done", "failed", "step"])?;
    let b = &state.bridge;
    let pool = &b.pool;
    let row = complaints::by_ref(pool, &local_ref)
        .await
        .or_fail(&ctx)?
        .ok_or_else(|| ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText))?;
    let doc = StatusDocument::build(&row, &b.calendar, b.clock.now());
    let step_views = outbox::steps_of(pool, row.id).await.or_fail(&ctx)?;
    let attempts = queries::attempts_of(pool, row.id).await.or_fail(&ctx)?;
    let followups = {
        let mut conn = pool.acquire().await.or_fail(&ctx)?;
        complaints::followups_of(&mut conn, row.id)
            .await
            .or_fail(&ctx)?
    };
    let entries = audit::of_complaint(pool, &local_ref).await.or_fail(&ctx)?;
    let flash = flash(&state, &ctx, &p).await;
    // The institution's name as LAPOR! lists it, with its id.
    let disposition = match doc.disposition_id {
        Some(id) => crate::web::dashboard::institutions::name(b, id).await,
        None => None,
    };
    let actor = format!("token:{}", ctx.session.token_name);
    let view = actions::reporter_for(b, &row, ctx.session.role, &actor)
        .await
        .map_err(|e| ctx.internal(e))?;
    let body = html! {
        (flash)
        div.cols {
            div { (status(&ctx, &doc, &row, disposition)) }
            div { (reporter(&ctx, &view, &row)) (sla(&ctx, &doc)) }
        }
        h2 { (ctx.t(K::Content)) }
        div.content { (row.content) }
        (steps(&ctx, &step_views, &complaint_href(&local_ref)))
        (timeline(&ctx, &attempts, &followups, &entries))
    };
    let title = format!("{} {}", ctx.t(K::Complaint), doc.local_ref);
    Ok(ctx.render(Nav::Complaints, &title, body))
}
