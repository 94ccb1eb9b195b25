//! The dashboard's pages and form actions, one file per page, and the parts
//! several pages share (query checks, the flash after an action, the step
//! buttons, state badges). Every page is a maud template: values are
//! escaped by construction.

mod audit;
mod changes;
mod complaint;
mod complaints;
mod dead;
mod erase;
mod login;
mod overview;
mod reconciliation;

use std::collections::HashMap;

use axum::Form;
use axum::extract::Query;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, Render, html};
use serde::Deserialize;

use super::html::{badge, csrf_field, step_state_class, sync_state_class};
use super::i18n::{self, K, Lang, label, t};
use super::{Ctx, Fail};
use crate::domain::{StepKind, StepState, SyncState};
use crate::sla::DeadlineKind;
use crate::status_document::StatusDocument;
use crate::store::outbox;
use crate::web::AppState;

pub use audit::{audit, audit_checkpoints, audit_export_csv, audit_export_jsonl, audit_verify};
pub use complaint::complaint;
pub use complaints::complaints;
pub use dead::{dead_letters, discard, retry, webhook_discard, webhook_retry};
pub use erase::{erase, erase_form};
pub use login::{login, login_form, logout};
pub use overview::overview;
pub use reconciliation::reconciliation;

type PageResult = Result<Response, Fail>;
type Params = Query<HashMap<String, String>>;

const PAGE_SIZE: i64 = 50;

/// A non-empty query parameter.
fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    p.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Checks a page's query string: only the names it `takes` (and `lang`),
/// none with a NUL character; otherwise a 400 page naming them.
fn check_query(ctx: &Ctx, p: &HashMap<String, String>, takes: &[&str]) -> Result<(), Fail> {
    let known: Vec<&str> = takes.iter().copied().chain(["lang"]).collect();
    crate::params::check_pairs(
        p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        Some(&known),
    )
    .map_err(|e| bad_query(ctx, e))
}

fn bad_query(ctx: &Ctx, e: crate::params::ParamErrors) -> Fail {
    ctx.fail(StatusCode::BAD_REQUEST, K::BadRequest, K::BadQuery)
        .with_detail(e.to_string())
}

/// The page of a list page (`?page=`, 1 to `params::MAX_PAGE`).
fn paging(ctx: &Ctx, p: &HashMap<String, String>) -> Result<crate::params::Paging, Fail> {
    crate::params::page_from_text(param(p, "page"), PAGE_SIZE).map_err(|e| bad_query(ctx, e))
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    back: Option<String>,
    /// Discard is final: its form carries a required confirmation box.
    confirm: Option<String>,
}

/// The CSRF token of a form; a body that is not a form has none.
fn csrf_of(form: &Result<Form<ActionForm>, FormRejection>) -> Option<&str> {
    form.as_ref().ok().and_then(|Form(f)| f.csrf.as_deref())
}

/// Whether the confirmation box of a form was ticked.
fn confirmed(form: &Result<Form<ActionForm>, FormRejection>) -> bool {
    form.as_ref().ok().and_then(|Form(f)| f.confirm.as_deref()) == Some("yes")
}

// States, as the pages show them -----------------------------------------------

/// A step state in the reader's language.
fn step_state_label(lang: Lang, state: StepState) -> String {
    t(lang, i18n::step_state_key(state)).to_string()
}

/// A sync state in the reader's language.
fn sync_state_label(lang: Lang, state: SyncState) -> String {
    t(lang, i18n::sync_state_key(state)).to_string()
}

fn step_state_badge(lang: Lang, state: StepState) -> Markup {
    badge(step_state_class(state), &step_state_label(lang, state))
}

fn sync_state_badge(lang: Lang, state: SyncState) -> Markup {
    badge(sync_state_class(state), &sync_state_label(lang, state))
}

/// A step kind in the reader's language.
fn step_label(lang: Lang, step: StepKind) -> String {
    t(lang, i18n::step_key(step)).to_string()
}

// Shared parts ---------------------------------------------------------------------

/// A row of a key/value table.
fn kv(key: &str, value: impl Render) -> Markup {
    html! { tr { th { (key) } td { (value) } } }
}

/// A value, or a dash when there is none.
fn opt_text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "—".into())
}

fn deadline_label(lang: Lang, kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::FollowUp => t(lang, K::DeadlineFollowUp),
        DeadlineKind::AutoClose => t(lang, K::DeadlineAutoClose),
        DeadlineKind::Completion => t(lang, K::DeadlineCompletion),
    }
}

/// The next SLA deadline ("Tindak lanjut: 2026-…"), or a dash.
fn next_deadline(lang: Lang, doc: &StatusDocument) -> String {
    doc.sla
        .next
        .as_ref()
        .map(|n| {
            format!(
                "{}: {}",
                deadline_label(lang, n.kind),
                super::html::when(n.due_at)
            )
        })
        .unwrap_or_else(|| "—".into())
}

fn status_label(lang: Lang, doc: &StatusDocument) -> String {
    match (&doc.status, &doc.lapor_status_name) {
        (Some(s), _) => label(lang, i18n::status_key(s), s),
        (None, Some(raw)) => format!("{} ({})", raw, t(lang, K::Unknown)),
        (None, None) => "—".into(),
    }
}

/// Why a step waits, in the reader's language; the instant only where it
/// is a deadline of LAPOR!'s (the lookup delay, a Retry-After).
fn waiting_note(lang: Lang, code: &str, until: Option<DateTime<Utc>>) -> String {
    let until = (code != crate::outbox::waiting::WaitingReason::Verification.code())
        .then_some(until)
        .flatten();
    i18n::waiting(lang, code, until)
}

/// The flash message of a redirect after an action: `?done=retry|discard&step=ID`
/// or `?failed=conflict|notfound&step=ID`.
async fn flash(state: &AppState, ctx: &Ctx, p: &HashMap<String, String>) -> Markup {
    let step: Option<i64> = param(p, "step").and_then(|s| s.parse().ok());
    let lang = ctx.lang;
    let (bad, text) = match (param(p, "done"), param(p, "failed")) {
        (Some(done @ ("retry" | "discard")), _) => {
            let Some(id) = step else {
                return html! {};
            };
            let current = match state.bridge.pool.acquire().await {
                Ok(mut conn) => outbox::get(&mut conn, id).await.ok().flatten(),
                Err(_) => None,
            };
            // A retry that failed again is a failure, shown as one.
            let failed_again = current.as_ref().is_some_and(|s| s.state == StepState::Dead);
            let now_state = current
                .map(|s| step_state_label(lang, s.state))
                .unwrap_or_else(|| "—".into());
            let key = if done == "retry" {
                K::FlashRetried
            } else {
                K::FlashDiscarded
            };
            (
                failed_again,
                format!("#{id} — {}: {now_state}", t(lang, key)),
            )
        }
        (_, Some(failed @ ("unconfirmed" | "conflict"))) => {
            let key = if failed == "unconfirmed" {
                K::FlashUnconfirmed
            } else {
                K::FlashConflict
            };
            (
                true,
                format!("#{} — {}", step.unwrap_or_default(), t(lang, key)),
            )
        }
        (Some("webhook"), _) => (false, t(lang, K::FlashWebhookDone).to_string()),
        (Some("erased"), _) => (false, t(lang, K::FlashErased).to_string()),
        (Some("already_erased"), _) => (false, t(lang, K::FlashAlreadyErased).to_string()),
        (_, Some("notfound")) => (true, t(lang, K::FlashNotFound).to_string()),
        _ => return html! {},
    };
    html! { div.flash.bad[bad] #flash role="status" { (text) } }
}

/// Retry and discard buttons of a step, returning to `back`.
fn step_buttons(ctx: &Ctx, step: &outbox::StepView, back: &str) -> Markup {
    let id = step.id;
    html! {
        @if step.state == StepState::Dead {
            form.inline method="post" action={ "/outbox/" (id) "/retry" } {
                (csrf_field(&ctx.session))
                input type="hidden" name="back" value=(back);
                button type="submit" data-retry=(id) { (ctx.t(K::Retry)) }
            }
            " "
        }
        @if matches!(step.state, StepState::Dead | StepState::Pending) {
            form.inline method="post" action={ "/outbox/" (id) "/discard" } {
                (csrf_field(&ctx.session))
                input type="hidden" name="back" value=(back);
                label.inline-confirm { span {
                    input type="checkbox" name="confirm" value="yes" required data-confirm=(id);
                    " " (ctx.t(K::DiscardConfirm))
                } }
                button.danger type="submit" data-discard=(id) { (ctx.t(K::Discard)) }
            }
        }
    }
}
