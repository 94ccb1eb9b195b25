//! The dashboard's pages and form actions.

use std::collections::HashMap;
use std::fmt::Write;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::html::{
    self, Esc, Nav, badge, csrf_field, escape_html, pager, state_class, url_encode, when, when_opt,
};
use super::i18n::{self, K, Lang, label, t};
use super::{Ctx, Fail, OrFail, session, session_cookie};
use crate::actions::{self, ActionError, StepAction};
use crate::config::Role;
use crate::pii::{ReporterState, ReporterView};
use crate::sla::DeadlineKind;
use crate::status_document::StatusDocument;
use crate::store::audit::{self, Verification};
use crate::store::dashboard as queries;
use crate::store::{complaints, outbox, webhooks};
use crate::web::AppState;

type PageResult = Result<Response, Fail>;
type Params = Query<HashMap<String, String>>;

const PAGE_SIZE: i64 = 50;
/// The overdue filter evaluates SLAs in Rust: at most this many of the newest
/// matching complaints are checked.
const OVERDUE_SCAN_CAP: i64 = 5000;
const SYNC_STATES: [&str; 5] = ["pending", "synced", "retrying", "dead", "conflict"];

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
pub struct LoginForm {
    #[serde(default)]
    token: String,
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

// Login and logout ------------------------------------------------------------

fn login_response(status: StatusCode, lang: Lang, uri: &Uri, error: Option<K>) -> Response {
    let href = super::switch_href(uri, lang);
    (status, Html(html::login_page(lang, &href, error))).into_response()
}

/// The sign-in form. It never reads the database, so a flood of
/// unauthenticated requests costs PostgreSQL nothing: a browser that holds
/// a well-formed session cookie is sent to the overview, which checks the
/// session (and, when it is gone, clears the cookie and sends it back here).
pub async fn login_form(headers: HeaderMap, uri: Uri) -> Response {
    let lang = Lang::of_request(uri.query(), &headers);
    if super::cookie(&headers, session::COOKIE).is_some_and(|id| session::well_formed(&id)) {
        return Redirect::to("/").into_response();
    }
    login_response(StatusCode::OK, lang, &uri, None)
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let lang = Lang::of_request(uri.query(), &headers);
    let token = form.map(|Form(f)| f.token).unwrap_or_default();
    let Some(caller) = state.tokens.identify(token.trim()) else {
        return login_response(StatusCode::UNAUTHORIZED, lang, &uri, Some(K::LoginWrong));
    };
    if caller.role == Role::Intake {
        return login_response(StatusCode::FORBIDDEN, lang, &uri, Some(K::LoginNoPages));
    }
    let now = state.bridge.clock.now();
    match session::create(&state.bridge.pool, &caller.name, caller.role, now).await {
        Ok((id, _)) => {
            tracing::info!(token = %caller.name, "dashboard sign-in");
            let home = if caller.role == Role::Auditor {
                "/audit"
            } else {
                "/"
            };
            let mut resp = Redirect::to(home).into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(Some(&id), &headers));
            resp
        }
        Err(e) => Fail::internal(lang, e).into_response(),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    ctx.check_csrf(csrf_of(&form))?;
    session::delete(&state.bridge.pool, &ctx.session.id_sha256)
        .await
        .or_fail(&ctx)?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(None, &headers));
    Ok(resp)
}

// Overview ----------------------------------------------------------------------

fn card(label: &str, value: &str, sub: &str, href: Option<&str>, alert: bool) -> String {
    let value = match href {
        Some(h) => format!("<a href=\"{}\">{}</a>", escape_html(h), escape_html(value)),
        None => escape_html(value),
    };
    format!(
        "<div class=\"card{}\"><div class=\"label\">{}</div><div class=\"value\">{value}</div>\
         <div class=\"sub\">{sub}</div></div>",
        if alert { " alert" } else { "" },
        escape_html(label),
    )
}

/// One line about a job's newest run.
fn run_line(lang: Lang, run: Option<&queries::JobRun>, now: DateTime<Utc>) -> (String, String) {
    let Some(run) = run else {
        return (t(lang, K::NeverRun).into(), String::new());
    };
    let ago = i18n::ago(lang, (now - run.started_at).num_seconds());
    let outcome = outcome_badge(lang, run);
    let summary = run.summary.as_ref();
    let num = |k: &str| summary.and_then(|s| s.get(k)).and_then(Value::as_u64);
    let drift: u64 = summary
        .and_then(|s| s.get("drift"))
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let sub = format!(
        "{outcome} {} · {}: {} · {}: {drift} · {}: {}",
        Esc(when(run.started_at)),
        t(lang, K::Checked),
        num("checked").unwrap_or(0),
        t(lang, K::Drift),
        t(lang, K::Errors),
        num("errors").unwrap_or(0),
    );
    (ago, sub)
}

pub async fn overview(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.need(Role::Operator)?;
    let lang = ctx.lang;
    let b = &state.bridge;
    let pool = &b.pool;
    let now = b.clock.now();
    let counts: HashMap<String, i64> = complaints::count_by_sync_state(pool)
        .await
        .or_fail(&ctx)?
        .into_iter()
        .collect();
    let (depth, oldest) = queries::backlog(pool).await.or_fail(&ctx)?;
    let dead = queries::dead_count(pool).await.or_fail(&ctx)?;
    let overdue = queries::open_sla_facts(pool)
        .await
        .or_fail(&ctx)?
        .iter()
        .filter(|facts| crate::sla::evaluate(&b.calendar, facts, now).is_overdue())
        .count();
    let last_attempt = queries::last_attempt(pool).await.or_fail(&ctx)?;
    let pull = queries::last_run(pool, "pull").await.or_fail(&ctx)?;
    let reconcile = queries::last_run(pool, "reconcile").await.or_fail(&ctx)?;

    let mut body = String::new();
    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"cards\">",
        ctx.t(K::SyncStates)
    );
    for s in SYNC_STATES {
        let n = counts.get(s).copied().unwrap_or(0);
        let _ = write!(
            body,
            "<div class=\"card\" data-sync-state=\"{s}\"><div class=\"label\">{}</div>\
             <div class=\"value\"><a href=\"/complaints?sync_state={s}\">{n}</a></div></div>",
            badge(state_class(s), &label(lang, i18n::sync_state_key(s), s))
        );
    }
    body.push_str("</div>");

    let _ = write!(body, "<h2>{}</h2><div class=\"cards\">", ctx.t(K::Backlog));
    let oldest_age = oldest
        .map(|at| i18n::age(lang, (now - at).num_seconds()))
        .unwrap_or_else(|| ctx.t(K::Nothing).into());
    body.push_str(&card(
        ctx.t(K::BacklogDepth),
        &depth.to_string(),
        &format!("{}: {}", ctx.t(K::OldestWaiting), Esc(&oldest_age)),
        None,
        false,
    ));
    body.push_str(&card(
        ctx.t(K::DeadLetters),
        &dead.to_string(),
        ctx.t(K::ViewAll),
        Some("/outbox/dead"),
        dead > 0,
    ));
    body.push_str(&card(
        ctx.t(K::OverdueSla),
        &overdue.to_string(),
        ctx.t(K::ViewAll),
        Some("/complaints?overdue=yes"),
        overdue > 0,
    ));
    body.push_str("</div>");

    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"cards\">",
        ctx.t(K::LaporHealth)
    );
    let paused = b.gate.is_paused();
    body.push_str(&card(
        ctx.t(K::TokenHealth),
        if paused {
            ctx.t(K::TokenRejected)
        } else {
            ctx.t(K::TokenOk)
        },
        "",
        None,
        paused,
    ));
    let (reach, reach_sub, reach_bad) = match &last_attempt {
        None => (ctx.t(K::NoContactYet).to_string(), String::new(), false),
        Some((at, status, kind)) => {
            let failing = kind.as_deref().is_some_and(|k| {
                matches!(
                    k,
                    "connect" | "timeout" | "connection_lost" | "server_error" | "html_error"
                )
            });
            let detail = match (status, kind) {
                (Some(s), Some(k)) => format!("HTTP {s} ({k})"),
                (Some(s), None) => format!("HTTP {s}"),
                (None, Some(k)) => k.clone(),
                (None, None) => String::new(),
            };
            (
                if failing {
                    ctx.t(K::Unreachable).to_string()
                } else {
                    ctx.t(K::Reachable).to_string()
                },
                format!(
                    "{}: {} {}",
                    ctx.t(K::LastAnswer),
                    Esc(when(*at)),
                    Esc(detail)
                ),
                failing,
            )
        }
    };
    body.push_str(&card(
        ctx.t(K::Reachability),
        &reach,
        &reach_sub,
        None,
        reach_bad,
    ));
    let (pull_value, pull_sub) = run_line(lang, pull.as_ref(), now);
    body.push_str(&card(
        ctx.t(K::LastPull),
        &pull_value,
        &pull_sub,
        Some("/reconciliation?job=pull"),
        pull.as_ref().is_some_and(|r| r.ok == Some(false)),
    ));
    let (rec_value, rec_sub) = run_line(lang, reconcile.as_ref(), now);
    body.push_str(&card(
        ctx.t(K::LastReconcile),
        &rec_value,
        &rec_sub,
        Some("/reconciliation?job=reconcile"),
        reconcile.as_ref().is_some_and(|r| r.ok == Some(false)),
    ));
    body.push_str("</div>");
    Ok(ctx.render(Nav::Overview, ctx.t(K::NavOverview), &body))
}

// Complaint list ------------------------------------------------------------------

fn options(selected: Option<&str>, items: &[(String, String)]) -> String {
    let mut out = String::new();
    for (value, text) in items {
        let sel = if Some(value.as_str()) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<option value=\"{}\"{sel}>{}</option>",
            escape_html(value),
            escape_html(text)
        );
    }
    out
}

fn deadline_label(lang: Lang, kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::FollowUp => t(lang, K::DeadlineFollowUp),
        DeadlineKind::AutoClose => t(lang, K::DeadlineAutoClose),
        DeadlineKind::Completion => t(lang, K::DeadlineCompletion),
    }
}

fn status_label(lang: Lang, doc: &StatusDocument) -> String {
    match (&doc.status, &doc.lapor_status_name) {
        (Some(s), _) => label(lang, i18n::status_key(s), s),
        (None, Some(raw)) => format!("{} ({})", raw, t(lang, K::Unknown)),
        (None, None) => "—".into(),
    }
}

pub async fn complaints(State(state): State<AppState>, ctx: Ctx, Query(p): Params) -> PageResult {
    check_query(&ctx, &p, &["q", "sync_state", "status", "overdue", "page"])?;
    ctx.need(Role::Operator)?;
    let lang = ctx.lang;
    let b = &state.bridge;
    let q = param(&p, "q");
    let sync_state = param(&p, "sync_state").filter(|s| SYNC_STATES.contains(s));
    let status = param(&p, "status");
    let overdue = match param(&p, "overdue") {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let filter = complaints::ListFilter {
        sync_state: sync_state.map(str::to_string),
        status: status.map(str::to_string),
        search: q.map(str::to_string),
    };
    // Lists show the reporter masked, to every role.
    let build = |r: &complaints::ComplaintRow| actions::masked_document(b, r);
    let mut capped = false;
    let (docs, total): (Vec<StatusDocument>, i64) = match overdue {
        None => {
            let (rows, total) = complaints::list(&b.pool, &filter, offset, size)
                .await
                .or_fail(&ctx)?;
            (rows.iter().map(build).collect(), total)
        }
        Some(want) => {
            let (rows, matching) = complaints::list(&b.pool, &filter, 0, OVERDUE_SCAN_CAP)
                .await
                .or_fail(&ctx)?;
            capped = matching > OVERDUE_SCAN_CAP;
            let all: Vec<StatusDocument> = rows
                .iter()
                .map(build)
                .filter(|d| d.sla.is_overdue() == want)
                .collect();
            let total = all.len() as i64;
            let items = all
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(0))
                .take(usize::try_from(size).unwrap_or(0))
                .collect();
            (items, total)
        }
    };

    let mut body = String::new();
    let any = (String::new(), t(lang, K::Any).to_string());
    let mut sync_opts = vec![any.clone()];
    sync_opts.extend(
        SYNC_STATES
            .iter()
            .map(|s| (s.to_string(), label(lang, i18n::sync_state_key(s), s))),
    );
    let mut status_opts = vec![any.clone()];
    status_opts.extend(crate::lapor::status::Status::ALL.iter().map(|s| {
        let c = s.canonical();
        (c.to_string(), label(lang, i18n::status_key(c), c))
    }));
    status_opts.push(("unknown".into(), t(lang, K::Unknown).into()));
    let overdue_opts = vec![
        any,
        ("yes".into(), t(lang, K::Yes).into()),
        ("no".into(), t(lang, K::No).into()),
    ];
    let _ = write!(
        body,
        "<form class=\"filters\" method=\"get\" action=\"/complaints\">\
         <label>{}<input type=\"search\" id=\"q\" name=\"q\" value=\"{}\"></label>\
         <label>{}<select name=\"sync_state\" id=\"sync_state\">{}</select></label>\
         <label>{}<select name=\"status\" id=\"status\">{}</select></label>\
         <label>{}<select name=\"overdue\" id=\"overdue\">{}</select></label>\
         <button type=\"submit\" id=\"search\">{}</button></form>",
        ctx.t(K::SearchRef),
        Esc(q.unwrap_or_default()),
        ctx.t(K::SyncState),
        options(sync_state, &sync_opts),
        ctx.t(K::Status),
        options(status, &status_opts),
        ctx.t(K::Overdue),
        options(param(&p, "overdue"), &overdue_opts),
        ctx.t(K::Search),
    );
    if capped {
        let _ = write!(
            body,
            "<p class=\"muted\">{} {OVERDUE_SCAN_CAP}</p>",
            ctx.t(K::OverdueScanCapped)
        );
    }
    if docs.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::NoRows));
    } else {
        let _ = write!(
            body,
            "<table id=\"complaints\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            ctx.t(K::Reference),
            ctx.t(K::Title),
            ctx.t(K::Reporter),
            ctx.t(K::Status),
            ctx.t(K::SyncState),
            ctx.t(K::Overdue),
            ctx.t(K::NextDeadline),
            ctx.t(K::Created),
        );
        for d in &docs {
            let overdue_cell = if d.sla.is_overdue() {
                badge("bad", t(lang, K::Yes))
            } else {
                escape_html(t(lang, K::No))
            };
            let next = d
                .sla
                .next
                .as_ref()
                .map(|n| format!("{}: {}", deadline_label(lang, n.kind), Esc(when(n.due_at))))
                .unwrap_or_else(|| "—".into());
            let _ = write!(
                body,
                "<tr><td><a class=\"ref\" href=\"/complaints/{}\" data-ref=\"{}\">{}</a></td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{overdue_cell}</td><td>{next}</td><td>{}</td></tr>",
                url_encode(&d.local_ref),
                Esc(&d.local_ref),
                Esc(&d.local_ref),
                Esc(&d.title),
                Esc(d
                    .reporter
                    .as_ref()
                    .and_then(|r| r.identity.name.as_deref())
                    .unwrap_or("—")),
                Esc(status_label(lang, d)),
                sync_cell(lang, d),
                Esc(when(d.created_at)),
            );
        }
        body.push_str("</table>");
    }
    let mut base = String::from("/complaints?");
    for (k, v) in [
        ("q", q),
        ("sync_state", sync_state),
        ("status", status),
        ("overdue", param(&p, "overdue")),
    ] {
        if let Some(v) = v {
            let _ = write!(base, "{k}={}&", url_encode(v));
        }
    }
    let base = base.trim_end_matches(['&', '?']).to_string();
    body.push_str(&pager(lang, &base, page, size, total));
    Ok(ctx.render(Nav::Complaints, ctx.t(K::NavComplaints), &body))
}

/// A complaint's sync state, with a short note of why it waits.
fn sync_cell(lang: Lang, d: &StatusDocument) -> String {
    let mut cell = badge(
        state_class(&d.sync_state),
        &label(lang, i18n::sync_state_key(&d.sync_state), &d.sync_state),
    );
    if let Some(code) = &d.waiting_code {
        let _ = write!(
            cell,
            "<br><span class=\"muted waiting\">{}</span>",
            Esc(waiting_note(lang, code, d.waiting_until))
        );
    }
    cell
}

/// Why a step waits, in the reader's language; the instant only where it
/// is a deadline of LAPOR!'s (the lookup delay, a Retry-After).
fn waiting_note(lang: Lang, code: &str, until: Option<DateTime<Utc>>) -> String {
    let until = (code != crate::outbox::waiting::WaitingReason::Verification.code())
        .then_some(until)
        .flatten();
    i18n::waiting(lang, code, until)
}

// One complaint ----------------------------------------------------------------------

fn kv(out: &mut String, key: &str, value_html: &str) {
    let _ = write!(
        out,
        "<tr><th>{}</th><td>{value_html}</td></tr>",
        escape_html(key)
    );
}

fn opt_text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| escape_html(&v.to_string()))
        .unwrap_or_else(|| "—".into())
}

/// A field's name in the reader's language (known fields), else as stored.
fn field_label(lang: Lang, field: &str) -> String {
    let (id, en) = match field {
        "status" | "status_name" => ("status", "status"),
        "lapor_status_name" => ("status di LAPOR!", "status on LAPOR!"),
        "disposition_id" | "lapor_disposition_id" => ("disposisi", "disposition"),
        "institution_id" => ("instansi", "institution"),
        "lapor_complaint_id" => ("ID LAPOR!", "LAPOR! id"),
        "tracking_id" => ("nomor pelacakan", "tracking id"),
        "outcome" => ("hasil", "outcome"),
        "attempt" => ("percobaan", "attempt"),
        "message" => ("pesan", "message"),
        "http_status" => ("status HTTP", "HTTP status"),
        "failure_kind" => ("jenis kegagalan", "failure kind"),
        "conflict_reason" => ("alasan konflik", "conflict reason"),
        "state" => ("keadaan", "state"),
        "step" => ("langkah", "step"),
        "followup_id" => ("tindak lanjut", "follow-up"),
        "lapor_followup_id" => ("ID tindak lanjut di LAPOR!", "LAPOR! follow-up id"),
        "reason" => ("alasan", "reason"),
        "content" => ("isi", "content"),
        "title" => ("judul", "title"),
        other => return other.replace('_', " "),
    };
    match lang {
        Lang::Id => id.to_string(),
        Lang::En => en.to_string(),
    }
}

/// A value as people read it.
fn value_words(lang: Lang, field: &str, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => match field {
            "outcome" => label(lang, i18n::outcome_key(s), s),
            "state" => label(lang, i18n::step_state_key(s), s),
            "status" => label(lang, i18n::status_key(s), s),
            "step" => label(lang, i18n::step_key(s), s),
            _ => s.clone(),
        },
        Some(Value::Bool(b)) => t(lang, if *b { K::Yes } else { K::No }).to_string(),
        Some(other) => other.to_string(),
    }
}

/// What an entry changed, field by field ("status: Terverifikasi →
/// Dalam Proses"), with the stored JSON one click away.
fn changes_html(lang: Lang, before: &Option<Value>, after: &Option<Value>) -> String {
    let empty = serde_json::Map::new();
    let as_map = |v: &Option<Value>| match v {
        Some(Value::Object(m)) => Some(m.clone()),
        _ => None,
    };
    let (b, a) = (as_map(before), as_map(after));
    let mut out = String::new();
    if before.is_none() && after.is_none() {
        return "—".into();
    }
    let (bm, am) = (b.as_ref().unwrap_or(&empty), a.as_ref().unwrap_or(&empty));
    let mut keys: Vec<&String> = am.keys().chain(bm.keys()).collect();
    keys.sort();
    keys.dedup();
    out.push_str("<ul class=\"changes\">");
    for k in keys {
        let (old, new) = (bm.get(k), am.get(k));
        if old == new {
            continue;
        }
        let field = field_label(lang, k);
        if b.is_some() {
            let _ = write!(
                out,
                "<li><b>{}</b>: {} → {}</li>",
                Esc(field),
                Esc(value_words(lang, k, old)),
                Esc(value_words(lang, k, new))
            );
        } else {
            let _ = write!(
                out,
                "<li><b>{}</b>: {}</li>",
                Esc(field),
                Esc(value_words(lang, k, new))
            );
        }
    }
    out.push_str("</ul>");
    let _ = write!(
        out,
        "<details><summary>JSON</summary><pre class=\"mono\">{}: {}\n{}: {}</pre></details>",
        t(lang, K::Before),
        Esc(compact_json(before)),
        t(lang, K::After),
        Esc(compact_json(after)),
    );
    out
}

fn compact_json(v: &Option<Value>) -> String {
    v.as_ref().map(Value::to_string).unwrap_or_default()
}

/// The flash message of a redirect after an action: `?done=retry|discard&step=ID`
/// or `?failed=conflict|notfound&step=ID`.
async fn flash(state: &AppState, ctx: &Ctx, p: &HashMap<String, String>) -> String {
    let step: Option<i64> = param(p, "step").and_then(|s| s.parse().ok());
    let lang = ctx.lang;
    let (class, text) = match (param(p, "done"), param(p, "failed")) {
        (Some(done @ ("retry" | "discard")), _) => {
            let Some(id) = step else {
                return String::new();
            };
            let current = match state.bridge.pool.acquire().await {
                Ok(mut conn) => outbox::get(&mut conn, id).await.ok().flatten(),
                Err(_) => None,
            };
            // A retry that failed again is a failure, shown as one.
            let failed_again = current.as_ref().is_some_and(|s| s.state == "dead");
            let now_state = current
                .map(|s| label(lang, i18n::step_state_key(&s.state), &s.state))
                .unwrap_or_else(|| "—".into());
            let key = if done == "retry" {
                K::FlashRetried
            } else {
                K::FlashDiscarded
            };
            let class = if failed_again { " bad" } else { "" };
            (
                class,
                format!("#{id} — {}: {}", t(lang, key), Esc(now_state)),
            )
        }
        (_, Some("unconfirmed")) => (
            " bad",
            format!(
                "#{} — {}",
                step.unwrap_or_default(),
                t(lang, K::FlashUnconfirmed)
            ),
        ),
        (_, Some("conflict")) => (
            " bad",
            format!(
                "#{} — {}",
                step.unwrap_or_default(),
                t(lang, K::FlashConflict)
            ),
        ),
        (Some("webhook"), _) => ("", t(lang, K::FlashWebhookDone).to_string()),
        (Some("erased"), _) => ("", t(lang, K::FlashErased).to_string()),
        (Some("already_erased"), _) => ("", t(lang, K::FlashAlreadyErased).to_string()),
        (_, Some("notfound")) => (" bad", t(lang, K::FlashNotFound).to_string()),
        _ => return String::new(),
    };
    format!("<div class=\"flash{class}\" id=\"flash\" role=\"status\">{text}</div>")
}

/// Retry and discard buttons of a step, returning to `back`.
fn step_buttons(ctx: &Ctx, step: &outbox::StepView, back: &str) -> String {
    let mut out = String::new();
    let back = escape_html(back);
    if step.state == "dead" {
        let _ = write!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/outbox/{id}/retry\">{csrf}\
             <input type=\"hidden\" name=\"back\" value=\"{back}\">\
             <button type=\"submit\" data-retry=\"{id}\">{}</button></form> ",
            ctx.t(K::Retry),
            id = step.id,
            csrf = csrf_field(&ctx.session),
        );
    }
    if step.state == "dead" || step.state == "pending" {
        let _ = write!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/outbox/{id}/discard\">{csrf}\
             <input type=\"hidden\" name=\"back\" value=\"{back}\">\
             <label class=\"inline-confirm\"><span><input type=\"checkbox\" name=\"confirm\" \
             value=\"yes\" required data-confirm=\"{id}\"> {}</span></label>\
             <button type=\"submit\" class=\"danger\" data-discard=\"{id}\">{}</button></form>",
            ctx.t(K::DiscardConfirm),
            ctx.t(K::Discard),
            id = step.id,
            csrf = csrf_field(&ctx.session),
        );
    }
    out
}

pub async fn complaint(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(local_ref): Path<String>,
    Query(p): Params,
) -> PageResult {
    ctx.need(Role::Operator)?;
    check_query(&ctx, &p, &["done", "failed", "step"])?;
    let lang = ctx.lang;
    let b = &state.bridge;
    let pool = &b.pool;
    let row = complaints::by_ref(pool, &local_ref)
        .await
        .or_fail(&ctx)?
        .ok_or_else(|| ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText))?;
    let doc = StatusDocument::build(&row, &b.calendar, b.clock.now());
    let steps = outbox::steps_of(pool, row.id).await.or_fail(&ctx)?;
    let attempts = queries::attempts_of(pool, row.id).await.or_fail(&ctx)?;
    let followups = {
        let mut conn = pool.acquire().await.or_fail(&ctx)?;
        complaints::followups_of(&mut conn, row.id)
            .await
            .or_fail(&ctx)?
    };
    let entries = audit::of_complaint(pool, &local_ref).await.or_fail(&ctx)?;

    let mut body = flash(&state, &ctx, &p).await;
    body.push_str("<div class=\"cols\"><div><table class=\"kv\" id=\"status-document\">");
    kv(&mut body, ctx.t(K::Reference), &escape_html(&doc.local_ref));
    kv(&mut body, ctx.t(K::Title), &escape_html(&doc.title));
    kv(
        &mut body,
        ctx.t(K::Origin),
        ctx.t(if doc.origin == "lapor" {
            K::OriginLapor
        } else {
            K::OriginLocal
        }),
    );
    kv(
        &mut body,
        ctx.t(K::SyncState),
        &badge(
            state_class(&doc.sync_state),
            &label(lang, i18n::sync_state_key(&doc.sync_state), &doc.sync_state),
        ),
    );
    kv(
        &mut body,
        ctx.t(K::Status),
        &escape_html(&status_label(lang, &doc)),
    );
    kv(
        &mut body,
        ctx.t(K::LaporStatusName),
        &opt_text(&doc.lapor_status_name),
    );
    kv(
        &mut body,
        ctx.t(K::LaporId),
        &opt_text(&doc.lapor_complaint_id),
    );
    kv(&mut body, ctx.t(K::TrackingId), &opt_text(&doc.tracking_id));
    kv(
        &mut body,
        ctx.t(K::PendingOps),
        &escape_html(&doc.pending_ops.to_string()),
    );
    if let Some(code) = &doc.waiting_code {
        let _ = write!(
            body,
            "<tr id=\"waiting\"><th>{}</th><td>{}</td></tr>",
            ctx.t(K::Waiting),
            Esc(waiting_note(lang, code, doc.waiting_until))
        );
    }
    kv(
        &mut body,
        ctx.t(K::LastError),
        &doc.last_error
            .as_ref()
            .map(|e| format!("<span class=\"error\">{}</span>", Esc(e)))
            .unwrap_or_else(|| "—".into()),
    );
    kv(
        &mut body,
        ctx.t(K::LastSynced),
        &escape_html(&when_opt(doc.last_synced_at)),
    );
    if doc.conflict_reason.is_some() {
        kv(
            &mut body,
            ctx.t(K::ConflictReason),
            &opt_text(&doc.conflict_reason),
        );
    }
    // The institution's name as LAPOR! lists it, with its id.
    let disposition = match doc.disposition_id {
        Some(id) => match super::institutions::name(b, id).await {
            Some(name) => format!("{} <span class=\"muted\">({id})</span>", Esc(name)),
            None => id.to_string(),
        },
        None => "—".into(),
    };
    kv(&mut body, ctx.t(K::Disposition), &disposition);
    kv(
        &mut body,
        ctx.t(K::Created),
        &escape_html(&when(doc.created_at)),
    );
    let yes_no = |b: bool| t(lang, if b { K::Yes } else { K::No });
    kv(&mut body, ctx.t(K::Anonymous), yes_no(row.is_anonymous));
    kv(&mut body, ctx.t(K::Secret), yes_no(row.is_secret));
    body.push_str("</table></div><div>");

    // The reporter: unmasked for operators and admins, of an anonymous or
    // secret complaint for admins only; an unmasked view is audited.
    let _ = write!(body, "<h2>{}</h2>", ctx.t(K::Reporter));
    let actor = format!("token:{}", ctx.session.token_name);
    let view = actions::reporter_for(b, &row, ctx.session.role, &actor)
        .await
        .map_err(|e| ctx.internal(e))?;
    body.push_str(&reporter_table(&ctx, &view));
    if view.state == ReporterState::Held {
        let note = if view.reveals() {
            K::ReporterShownAudited
        } else if row.is_anonymous || row.is_secret {
            K::ReporterMasked
        } else {
            K::ReporterMaskedRole
        };
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(note));
    }
    if ctx.session.role == Role::Admin && view.erased_at.is_none() {
        let _ = write!(
            body,
            "<p><a class=\"button\" id=\"erase-reporter\" href=\"/complaints/{}/erase\">{}</a></p>",
            Esc(&url_encode(&row.local_ref)),
            ctx.t(K::EraseReporter)
        );
    }

    // SLA
    let _ = write!(
        body,
        "<h2>{}</h2><table class=\"kv\" id=\"sla\">",
        ctx.t(K::Sla)
    );
    kv(
        &mut body,
        ctx.t(K::FollowUpDue),
        &escape_html(&when_opt(doc.sla.follow_up_due_at)),
    );
    kv(
        &mut body,
        ctx.t(K::AutoCloseExpected),
        &escape_html(&when_opt(doc.sla.auto_close_expected_at)),
    );
    kv(
        &mut body,
        ctx.t(K::CompletionDue),
        &escape_html(&when_opt(doc.sla.completion_due_at)),
    );
    let next = doc
        .sla
        .next
        .as_ref()
        .map(|n| format!("{}: {}", deadline_label(lang, n.kind), Esc(when(n.due_at))))
        .unwrap_or_else(|| "—".into());
    kv(&mut body, ctx.t(K::NextDeadline), &next);
    let overdue = if doc.sla.overdue.is_empty() {
        escape_html(ctx.t(K::No))
    } else {
        badge(
            "bad",
            &doc.sla
                .overdue
                .iter()
                .map(|k| deadline_label(lang, *k))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    kv(&mut body, ctx.t(K::Overdue), &overdue);
    body.push_str("</table></div></div>");

    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"content\">{}</div>",
        ctx.t(K::Content),
        Esc(&row.content)
    );

    // Outbox steps
    let back = format!("/complaints/{}", url_encode(&local_ref));
    let _ = write!(body, "<h2>{}</h2>", ctx.t(K::Steps));
    if steps.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::NoRows));
    } else {
        let _ = write!(
            body,
            "<table id=\"steps\"><tr><th>#</th><th>{}</th><th>{}</th><th class=\"num\">{}</th>\
             <th>{}</th><th>{}</th><th>{}</th></tr>",
            ctx.t(K::Step),
            ctx.t(K::State),
            ctx.t(K::Attempts),
            ctx.t(K::NextAttempt),
            ctx.t(K::LastError),
            ctx.t(K::Actions),
        );
        for s in &steps {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"mono\">{}</td><td>{}</td></tr>",
                s.id,
                Esc(label(lang, i18n::step_key(&s.step), &s.step)),
                badge(
                    state_class(&s.state),
                    &label(lang, i18n::step_state_key(&s.state), &s.state)
                ),
                s.attempts,
                if s.state == "pending" {
                    // Why it waits (verification, the lookup delay after an
                    // unknown outcome, the tokens) under when it goes on.
                    match &s.waiting_code {
                        Some(code) => format!(
                            "{}<br><span class=\"muted waiting\">{}</span>",
                            Esc(&when(s.next_attempt_at)),
                            Esc(waiting_note(
                                lang,
                                code,
                                s.lookup_not_before.max(Some(s.next_attempt_at))
                            ))
                        ),
                        None => escape_html(&when(s.next_attempt_at)),
                    }
                } else {
                    "—".into()
                },
                opt_text(&s.last_error),
                step_buttons(&ctx, s, &back),
            );
        }
        body.push_str("</table>");
    }

    // Timeline: attempts, follow-ups and audit entries in time order.
    let mut events: Vec<(DateTime<Utc>, u8, String, String)> = Vec::new();
    for a in &attempts {
        // A retry that failed again is a failure, shown as one.
        let failed = matches!(a.outcome.as_str(), "retry" | "unknown" | "dead" | "paused");
        let outcome = label(lang, i18n::outcome_key(&a.outcome), &a.outcome);
        let mut d = format!(
            "{} #{} · {} {} · {}",
            Esc(label(lang, i18n::step_key(&a.step), &a.step)),
            a.outbox_id,
            ctx.t(K::Attempts),
            a.attempt,
            if failed {
                badge("bad", &outcome)
            } else {
                format!("<b>{}</b>", Esc(&outcome))
            }
        );
        if let Some(s) = a.http_status {
            let _ = write!(d, " · HTTP {s}");
        }
        let _ = write!(d, " · {} ms", a.duration_ms);
        // A wait's own rows say it in the outcome; other messages are
        // LAPOR!'s or the bridge's words.
        let waits = matches!(a.outcome.as_str(), "waiting" | "wait_over");
        if let Some(m) = a.message.as_ref().filter(|_| !waits) {
            let _ = write!(d, "<br><span class=\"mono\">{}</span>", Esc(m));
        }
        events.push((a.started_at, 0, ctx.t(K::KindAttempt).into(), d));
    }
    for f in &followups {
        let at = f.lapor_created_at.unwrap_or(f.created_at);
        let who = match f.institution_id {
            Some(i) => format!("{} {i}", ctx.t(K::Institution)),
            None => ctx.t(K::ByReporter).to_string(),
        };
        let content = if f.is_secret {
            format!("<i>{}</i>", ctx.t(K::SecretContent))
        } else {
            escape_html(&f.content)
        };
        events.push((
            at,
            1,
            ctx.t(K::KindFollowup).into(),
            format!("{} · {}<br>{content}", Esc(&f.origin), Esc(who)),
        ));
    }
    for e in &entries {
        let kind = if e.action.starts_with("inbound.complaint_changed") {
            K::KindStatusChange
        } else {
            K::KindAudit
        };
        let mut d = format!(
            "<b>{}</b> · {}",
            Esc(i18n::action_label(lang, &e.action)),
            Esc(&e.actor)
        );
        d.push_str(&changes_html(lang, &e.before, &e.after));
        events.push((e.at, 2, ctx.t(kind).into(), d));
    }
    events.sort_by_key(|(at, order, _, _)| (*at, *order));
    let _ = write!(body, "<h2>{}</h2>", ctx.t(K::Timeline));
    if events.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::NoRows));
    } else {
        let _ = write!(
            body,
            "<table id=\"timeline\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            ctx.t(K::Time),
            ctx.t(K::Kind),
            ctx.t(K::Details)
        );
        for (at, _, kind, details) in &events {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{details}</td></tr>",
                Esc(when(*at)),
                Esc(kind)
            );
        }
        body.push_str("</table>");
    }
    let title = format!("{} {}", ctx.t(K::Complaint), doc.local_ref);
    Ok(ctx.render(Nav::Complaints, &title, &body))
}

// Dead letters ------------------------------------------------------------------------

pub async fn dead_letters(State(state): State<AppState>, ctx: Ctx, Query(p): Params) -> PageResult {
    check_query(&ctx, &p, &["page", "done", "failed", "step"])?;
    ctx.need(Role::Operator)?;
    let lang = ctx.lang;
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let (steps, total) = outbox::list(&state.bridge.pool, Some("dead"), offset, size)
        .await
        .or_fail(&ctx)?;
    let mut body = flash(&state, &ctx, &p).await;
    let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::DeadHelp));
    if steps.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\" id=\"no-dead\">{}</p>",
            ctx.t(K::NoRows)
        );
    } else {
        let _ = write!(
            body,
            "<table id=\"dead\"><tr><th>#</th><th>{}</th><th>{}</th><th class=\"num\">{}</th>\
             <th>{}</th><th>{}</th><th>{}</th></tr>",
            ctx.t(K::Reference),
            ctx.t(K::Step),
            ctx.t(K::Attempts),
            ctx.t(K::LastError),
            ctx.t(K::Finished),
            ctx.t(K::Actions),
        );
        for s in &steps {
            let _ = write!(
                body,
                "<tr data-step=\"{}\"><td>{}</td><td><a class=\"ref\" href=\"/complaints/{}\">{}</a></td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                s.id,
                s.id,
                url_encode(&s.local_ref),
                Esc(&s.local_ref),
                Esc(label(lang, i18n::step_key(&s.step), &s.step)),
                s.attempts,
                opt_text(&s.last_error),
                Esc(when_opt(s.finished_at)),
                step_buttons(&ctx, s, "/outbox/dead"),
            );
        }
        body.push_str("</table>");
    }
    body.push_str(&pager(lang, "/outbox/dead", page, size, total));
    body.push_str(&webhook_dead_letters(&state, &ctx).await?);
    Ok(ctx.render(Nav::Dead, ctx.t(K::NavDead), &body))
}

/// Dead webhook deliveries, with Retry and Discard (the first 50: they are
/// few, and `lapor-bridge webhooks list --state dead` lists all).
async fn webhook_dead_letters(state: &AppState, ctx: &Ctx) -> Result<String, Fail> {
    let (dead, total) = webhooks::list(&state.bridge.pool, Some("dead"), 0, PAGE_SIZE)
        .await
        .or_fail(ctx)?;
    let mut out = String::new();
    if dead.is_empty() {
        return Ok(out);
    }
    let _ = write!(
        out,
        "<h2>{} ({total})</h2><p class=\"muted\">{}</p>\
         <table id=\"webhook-dead\"><tr><th>#</th><th>{}</th><th>{}</th><th>URL</th>\
         <th class=\"num\">{}</th><th>{}</th><th>{}</th></tr>",
        ctx.t(K::WebhookDead),
        ctx.t(K::WebhookDeadHelp),
        ctx.t(K::Reference),
        ctx.t(K::Event),
        ctx.t(K::Attempts),
        ctx.t(K::LastError),
        ctx.t(K::Actions),
    );
    for d in &dead {
        let local_ref = d.local_ref.clone().unwrap_or_default();
        let form = |action: &str, class: &str, label: K| {
            // Discard is final: its form carries a required confirmation box.
            let confirm = if action == "discard" {
                format!(
                    "<label class=\"inline-confirm\"><span><input type=\"checkbox\" name=\"confirm\" \
                     value=\"yes\" required data-webhook-confirm=\"{id}\"> {}</span></label>",
                    ctx.t(K::DiscardConfirm),
                    id = d.id,
                )
            } else {
                String::new()
            };
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/webhooks/deliveries/{id}/{action}\">{csrf}\
                 {confirm}<button type=\"submit\"{class} data-webhook-{action}=\"{id}\">{}</button></form> ",
                ctx.t(label),
                id = d.id,
                csrf = csrf_field(&ctx.session),
            )
        };
        let _ = write!(
            out,
            "<tr data-delivery=\"{}\"><td>{}</td><td><a href=\"/complaints/{}\">{}</a></td>\
             <td class=\"mono\">{} {}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td>\
             <td class=\"mono\">{}</td><td>{}{}</td></tr>",
            d.id,
            d.id,
            url_encode(&local_ref),
            Esc(&local_ref),
            Esc(&d.event_type),
            Esc(&d.event_id),
            Esc(crate::feed::webhook::shown(&d.url)),
            d.attempts,
            opt_text(&d.last_error),
            form("retry", "", K::Retry),
            form("discard", " class=\"danger\"", K::Discard),
        );
    }
    out.push_str("</table>");
    Ok(out)
}

async fn webhook_act(
    state: AppState,
    ctx: Ctx,
    id: String,
    form: Result<Form<ActionForm>, FormRejection>,
    action: StepAction,
) -> PageResult {
    ctx.need(Role::Operator)?;
    ctx.check_csrf(csrf_of(&form))?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText));
    };
    // Discard is final: without its confirmation nothing happens.
    let confirmed = form.as_ref().ok().and_then(|Form(f)| f.confirm.as_deref()) == Some("yes");
    if action == StepAction::Discard && !confirmed {
        return Ok(
            Redirect::to(&format!("/outbox/dead?failed=unconfirmed&step={id}")).into_response(),
        );
    }
    let actor = format!("token:{}", ctx.session.token_name);
    let query = match actions::act_on_webhook_delivery(&state.bridge, id, action, &actor).await {
        Ok(_) => "done=webhook".to_string(),
        Err(ActionError::NotFound) => format!("failed=notfound&step={id}"),
        Err(ActionError::Conflict(_) | ActionError::Invalid(_)) => {
            format!("failed=conflict&step={id}")
        }
        Err(e @ (ActionError::Db(_) | ActionError::Sealing(_))) => return Err(ctx.internal(e)),
    };
    Ok(Redirect::to(&format!("/outbox/dead?{query}")).into_response())
}

pub async fn webhook_retry(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    webhook_act(state, ctx, id, form, StepAction::Retry).await
}

pub async fn webhook_discard(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    webhook_act(state, ctx, id, form, StepAction::Discard).await
}

/// Where an action may send the browser back to: the dead letters or a
/// complaint page (a path we wrote ourselves; anything else is ignored).
fn safe_back(back: Option<&str>) -> String {
    match back {
        Some(b)
            if b.strip_prefix("/complaints/").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_.~%".contains(&c))
            }) =>
        {
            b.to_string()
        }
        _ => "/outbox/dead".to_string(),
    }
}

async fn act(
    state: AppState,
    ctx: Ctx,
    id: String,
    form: Result<Form<ActionForm>, FormRejection>,
    action: StepAction,
) -> PageResult {
    ctx.need(Role::Operator)?;
    ctx.check_csrf(csrf_of(&form))?;
    let back = safe_back(form.as_ref().ok().and_then(|Form(f)| f.back.as_deref()));
    let Ok(id) = id.parse::<i64>() else {
        return Err(ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText));
    };
    // Discard is final: without its confirmation nothing happens (the box
    // is `required`, so a browser does not even send the form).
    let confirmed = form.as_ref().ok().and_then(|Form(f)| f.confirm.as_deref()) == Some("yes");
    if action == StepAction::Discard && !confirmed {
        return Ok(Redirect::to(&format!("{back}?failed=unconfirmed&step={id}")).into_response());
    }
    let actor = format!("token:{}", ctx.session.token_name);
    let done = if action == StepAction::Retry {
        "retry"
    } else {
        "discard"
    };
    let query = match actions::act_on_step(&state.bridge, id, action, &actor).await {
        Ok(_) => format!("done={done}&step={id}"),
        Err(ActionError::NotFound) => format!("failed=notfound&step={id}"),
        Err(ActionError::Conflict(_) | ActionError::Invalid(_)) => {
            format!("failed=conflict&step={id}")
        }
        Err(e @ (ActionError::Db(_) | ActionError::Sealing(_))) => return Err(ctx.internal(e)),
    };
    Ok(Redirect::to(&format!("{back}?{query}")).into_response())
}

pub async fn retry(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    act(state, ctx, id, form, StepAction::Retry).await
}

pub async fn discard(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    act(state, ctx, id, form, StepAction::Discard).await
}

/// The reporter's fields as `view` shows them.
fn reporter_table(ctx: &Ctx, view: &ReporterView) -> String {
    let mut out = String::new();
    match view.state {
        ReporterState::Erased => {
            let _ = write!(
                out,
                "<p id=\"reporter\" class=\"muted\">{}: {} ({})</p>",
                ctx.t(K::ReporterErased),
                Esc(when_opt(view.erased_at)),
                Esc(view.erasure.as_deref().unwrap_or("")),
            );
            return out;
        }
        ReporterState::Sealing => {
            let _ = write!(
                out,
                "<p id=\"reporter\" class=\"muted\">{}</p>",
                ctx.t(K::ReporterSealing)
            );
            return out;
        }
        ReporterState::Unreadable => {
            let _ = write!(
                out,
                "<p id=\"reporter\" class=\"error\">{}</p>",
                ctx.t(K::ReporterUnreadable)
            );
            return out;
        }
        ReporterState::None | ReporterState::Held => {}
    }
    let id = &view.identity;
    out.push_str("<table class=\"kv\" id=\"reporter\">");
    for (key, value) in [
        (K::ReporterName, &id.name),
        (K::ReporterPhone, &id.phone),
        (K::ReporterEmail, &id.email),
        (K::ReporterNik, &id.nik),
        (K::ReporterAddress, &id.address),
    ] {
        let shown = value.as_deref().map(escape_html);
        kv(&mut out, ctx.t(key), shown.as_deref().unwrap_or("—"));
    }
    out.push_str("</table>");
    out
}

/// The erasure's confirmation page (admins).
pub async fn erase_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(local_ref): Path<String>,
    Query(p): Params,
) -> PageResult {
    ctx.need(Role::Admin)?;
    check_query(&ctx, &p, &["missing"])?;
    complaints::by_ref(&state.bridge.pool, &local_ref)
        .await
        .or_fail(&ctx)?
        .ok_or_else(|| ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText))?;
    let mut body = String::new();
    if param(&p, "missing").is_some() {
        let _ = write!(
            body,
            "<div class=\"flash bad\" id=\"flash\" role=\"status\">{}</div>",
            ctx.t(K::EraseMissing)
        );
    }
    let _ = write!(
        body,
        "<p>{help}</p><p><a href=\"/complaints/{href}\">{r}</a></p>\
         <form method=\"post\" action=\"/complaints/{href}/erase\" id=\"erase-form\">{csrf}\
         <label>{reason_label}<textarea name=\"reason\" id=\"reason\" required maxlength=\"2000\"></textarea></label>\
         <label><input type=\"checkbox\" name=\"confirm\" id=\"confirm\" value=\"yes\" required> {confirm}</label>\
         <button type=\"submit\" class=\"danger\">{button}</button></form>",
        help = ctx.t(K::EraseHelp),
        href = Esc(&url_encode(&local_ref)),
        r = Esc(&local_ref),
        csrf = csrf_field(&ctx.session),
        reason_label = ctx.t(K::EraseReason),
        confirm = ctx.t(K::EraseConfirm),
        button = ctx.t(K::EraseReporter),
    );
    Ok(ctx.render(Nav::Complaints, ctx.t(K::EraseReporter), &body))
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    csrf: Option<String>,
    reason: Option<String>,
    confirm: Option<String>,
}

/// Erases on a confirmed form; back to the complaint with a flash.
pub async fn erase(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(local_ref): Path<String>,
    form: Result<Form<EraseForm>, FormRejection>,
) -> PageResult {
    ctx.need(Role::Admin)?;
    let form = form.ok().map(|Form(f)| f);
    ctx.check_csrf(form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let href = format!("/complaints/{}", url_encode(&local_ref));
    let reason = form
        .as_ref()
        .and_then(|f| f.reason.as_deref())
        .unwrap_or("");
    let confirmed = form
        .as_ref()
        .is_some_and(|f| f.confirm.as_deref() == Some("yes"));
    if !confirmed || reason.trim().is_empty() {
        return Ok(Redirect::to(&format!("{href}/erase?missing=1")).into_response());
    }
    let actor = format!("token:{}", ctx.session.token_name);
    let done = match actions::erase_reporter(&state.bridge, &local_ref, reason, &actor).await {
        Ok(o) if o.already_erased => "already_erased",
        Ok(_) => "erased",
        Err(ActionError::NotFound) => {
            return Err(ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText));
        }
        Err(ActionError::Invalid(_)) => {
            return Ok(Redirect::to(&format!("{href}/erase?missing=1")).into_response());
        }
        Err(e) => return Err(ctx.internal(e)),
    };
    Ok(Redirect::to(&format!("{href}?done={done}")).into_response())
}

// Reconciliation ---------------------------------------------------------------------------

/// A run's outcome: `ok`, `partial` or `failed` (older runs: from `ok`).
fn outcome_badge(lang: Lang, run: &queries::JobRun) -> String {
    if run.finished_at.is_none() {
        return badge("wait", t(lang, K::Running));
    }
    let outcome = run
        .summary
        .as_ref()
        .and_then(|s| s.get("outcome"))
        .and_then(Value::as_str);
    match (outcome, run.ok) {
        (Some("ok"), _) | (None, Some(true)) => badge("ok", t(lang, K::Succeeded)),
        (Some("partial"), _) => badge("wait", t(lang, K::Partial)),
        _ => badge("bad", t(lang, K::Failed)),
    }
}

/// A run's outcome with its problems: each complaint that failed (a link)
/// and what failed, one click away.
fn run_result(lang: Lang, r: &queries::JobRun) -> String {
    let mut out = outcome_badge(lang, r);
    if let Some(e) = &r.error {
        let _ = write!(out, "<br><span class=\"error\">{}</span>", Esc(e));
    }
    let Some(s) = r.summary.as_ref() else {
        return out;
    };
    let failed: Vec<&Value> = s
        .get("failed_complaints")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let problems: Vec<&str> = s
        .get("problems")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Problems that are not one complaint's (listings, LAPOR! unreachable).
    let refs: Vec<&str> = failed
        .iter()
        .filter_map(|f| f.get("local_ref").and_then(Value::as_str))
        .collect();
    let general: Vec<&str> = problems
        .into_iter()
        .filter(|p| !refs.iter().any(|r| p.starts_with(&format!("{r}: "))))
        .collect();
    if failed.is_empty() && general.is_empty() {
        return out;
    }
    let count = s.get("failed").and_then(Value::as_u64).unwrap_or(0);
    let _ = write!(
        out,
        "<details class=\"problems\"><summary>{} {}</summary><ul>",
        count,
        t(lang, K::ComplaintsFailed)
    );
    for p in general {
        let _ = write!(out, "<li>{}</li>", Esc(p));
    }
    for f in failed {
        let local_ref = f.get("local_ref").and_then(Value::as_str).unwrap_or("?");
        let what = f.get("what").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<li><a href=\"/complaints/{}\">{}</a>: {}</li>",
            url_encode(local_ref),
            Esc(local_ref),
            Esc(what)
        );
    }
    out.push_str("</ul></details>");
    out
}

pub async fn reconciliation(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Params,
) -> PageResult {
    ctx.need(Role::Operator)?;
    check_query(&ctx, &p, &["job", "page"])?;
    let lang = ctx.lang;
    let job = param(&p, "job").filter(|j| matches!(*j, "pull" | "reconcile"));
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let (runs, total) = queries::runs(&state.bridge.pool, job, offset, size)
        .await
        .or_fail(&ctx)?;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p><a href=\"/reconciliation\">{}</a> · <a href=\"/reconciliation?job=reconcile\">{}</a> · \
         <a href=\"/reconciliation?job=pull\">{}</a></p>",
        ctx.t(K::AllJobs),
        ctx.t(K::JobReconcile),
        ctx.t(K::JobPull)
    );
    if runs.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::NoRows));
    } else {
        let _ = write!(
            body,
            "<table id=\"runs\"><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th>\
             <th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
            ctx.t(K::Job),
            ctx.t(K::Trigger),
            ctx.t(K::Started),
            ctx.t(K::Duration),
            ctx.t(K::Result),
            ctx.t(K::Checked),
            ctx.t(K::Imported),
            ctx.t(K::Drift),
            ctx.t(K::Repaired),
            ctx.t(K::Conflicts),
            ctx.t(K::Errors),
        );
        for r in &runs {
            let s = r.summary.as_ref();
            let num = |k: &str| {
                s.and_then(|s| s.get(k))
                    .and_then(Value::as_u64)
                    .map_or_else(|| "—".to_string(), |n| n.to_string())
            };
            let drift = s
                .and_then(|s| s.get("drift"))
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!("{}: {}", Esc(label(lang, i18n::drift_key(k), k)), Esc(v))
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                })
                .unwrap_or_else(|| "—".into());
            let result = run_result(lang, r);
            let duration = r
                .finished_at
                .map(|f| i18n::age(lang, (f - r.started_at).num_seconds()))
                .unwrap_or_else(|| "—".into());
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{result}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{drift}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                r.id,
                Esc(label(lang, i18n::job_key(&r.job), &r.job)),
                Esc(i18n::trigger_label(lang, &r.trigger)),
                Esc(when(r.started_at)),
                Esc(duration),
                num("checked"),
                num("imported"),
                num("repaired"),
                num("conflicts"),
                num("errors"),
            );
        }
        body.push_str("</table>");
    }
    let base = job
        .map(|j| format!("/reconciliation?job={j}"))
        .unwrap_or_else(|| "/reconciliation".into());
    body.push_str(&pager(lang, &base, page, size, total));
    Ok(ctx.render(Nav::Reconciliation, ctx.t(K::Runs), &body))
}

// Audit -----------------------------------------------------------------------------------------

async fn audit_view(
    state: &AppState,
    ctx: &Ctx,
    p: &HashMap<String, String>,
    verification: Option<Verification>,
) -> PageResult {
    let lang = ctx.lang;
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(ctx, p)?;
    let (entries, total) = queries::audit_page(&state.bridge.pool, offset, size)
        .await
        .or_fail(ctx)?;
    let mut body = String::new();
    match verification {
        Some(Verification::Ok {
            entries,
            checkpoints,
            ..
        }) => {
            let checked = checkpoints
                .map(|n| format!("; {} {n}", ctx.t(K::VerifyCheckpoints)))
                .unwrap_or_default();
            let _ = write!(
                body,
                "<div class=\"flash\" id=\"verify-result\" data-ok=\"true\">{}: {entries}{checked}</div>",
                ctx.t(K::VerifyOk)
            );
        }
        Some(Verification::CheckpointMismatch { checkpoint_id, .. }) => {
            let _ = write!(
                body,
                "<div class=\"flash bad\" id=\"verify-result\" data-ok=\"false\">{}: #{checkpoint_id}</div>",
                ctx.t(K::VerifyCheckpointMismatch)
            );
        }
        Some(Verification::CheckpointsUnreadable { error, .. }) => {
            let _ = write!(
                body,
                "<div class=\"flash bad\" id=\"verify-result\" data-ok=\"false\">{}: {}</div>",
                ctx.t(K::VerifyCheckpointsUnreadable),
                Esc(error)
            );
        }
        Some(Verification::Broken { first_bad_id, .. }) => {
            let _ = write!(
                body,
                "<div class=\"flash bad\" id=\"verify-result\" data-ok=\"false\">{}: #{first_bad_id}</div>",
                ctx.t(K::VerifyBroken)
            );
        }
        None => {}
    }
    let checkpoints = if state.bridge.settings.audit.checkpoint_file.is_some() {
        format!(
            " · <a href=\"/audit/checkpoints.jsonl\" id=\"export-checkpoints\">{}</a>",
            ctx.t(K::CheckpointsDownload)
        )
    } else {
        String::new()
    };
    let _ = write!(
        body,
        "<h2>{export}</h2><p><a href=\"/audit/export.csv\" id=\"export-csv\">CSV</a> · \
         <a href=\"/audit/export.jsonl\" id=\"export-jsonl\">JSONL</a>{checkpoints}</p>\
         <form class=\"filters\" method=\"get\" action=\"/audit/export.csv\">\
         <label>{since} (WIB)<input type=\"date\" name=\"since\" id=\"export-since\"></label>\
         <label>{until} (WIB)<input type=\"date\" name=\"until\" id=\"export-until\"></label>\
         <button type=\"submit\">CSV</button>\
         <button type=\"submit\" class=\"secondary\" formaction=\"/audit/export.jsonl\">JSONL</button>\
         <span class=\"muted\">{help}</span></form>\
         <form method=\"post\" action=\"/audit/verify\">{csrf}\
         <button type=\"submit\" id=\"verify\">{verify}</button></form>",
        export = ctx.t(K::Export),
        since = ctx.t(K::Since),
        until = ctx.t(K::Until),
        help = ctx.t(K::ExportHelp),
        csrf = csrf_field(&ctx.session),
        verify = ctx.t(K::Verify),
    );
    let _ = write!(body, "<h2>{}</h2>", ctx.t(K::AuditLog));
    if entries.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", ctx.t(K::NoRows));
    } else {
        let _ = write!(
            body,
            "<table id=\"audit\"><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th></tr>",
            ctx.t(K::Time),
            ctx.t(K::Actor),
            ctx.t(K::Reference),
            ctx.t(K::Action),
            ctx.t(K::Changes),
        );
        for e in &entries {
            let reference = match &e.local_ref {
                Some(r) => format!(
                    "<a class=\"ref\" href=\"/complaints/{}\">{}</a>",
                    url_encode(r),
                    Esc(r)
                ),
                None => "—".into(),
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{reference}</td><td>{}</td>\
                 <td>{}</td></tr>",
                e.id,
                Esc(when(e.at)),
                Esc(&e.actor),
                Esc(i18n::action_label(lang, &e.action)),
                changes_html(lang, &e.before, &e.after),
            );
        }
        body.push_str("</table>");
    }
    body.push_str(&pager(lang, "/audit", page, size, total));
    Ok(ctx.render(Nav::Audit, ctx.t(K::NavAudit), &body))
}

pub async fn audit(State(state): State<AppState>, ctx: Ctx, Query(p): Params) -> PageResult {
    ctx.need(Role::Auditor)?;
    check_query(&ctx, &p, &["page"])?;
    audit_view(&state, &ctx, &p, None).await
}

pub async fn audit_verify(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<Form<ActionForm>, FormRejection>,
) -> PageResult {
    ctx.need(Role::Auditor)?;
    ctx.check_csrf(csrf_of(&form))?;
    let file = state.bridge.settings.audit.checkpoint_file.as_deref();
    let v = crate::checkpoints::verify(&state.bridge.pool, file)
        .await
        .or_fail(&ctx)?;
    audit_view(&state, &ctx, &HashMap::new(), Some(v)).await
}

/// A date (`2026-01-31`: midnight WIB) or a time (`2026-01-31T08:00`, WIB
/// unless it names its offset) from the export form.
fn parse_wib(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return Ok(Some(crate::lapor::wib::from_wib_naive(naive)));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(midnight) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(Some(crate::lapor::wib::from_wib_naive(midnight)));
    }
    Err(format!(
        "{field}: expected a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM (WIB), got {raw:?}"
    ))
}

async fn audit_export(
    state: &AppState,
    ctx: &Ctx,
    p: &HashMap<String, String>,
    csv: bool,
) -> PageResult {
    ctx.need(Role::Auditor)?;
    check_query(ctx, p, &["since", "until"])?;
    let bad = |e: String| {
        ctx.fail(StatusCode::BAD_REQUEST, K::BadRequest, K::ExportHelp)
            .with_detail(e)
    };
    // Dates and times are entered in WIB, like every other screen.
    let since = parse_wib("since", param(p, "since")).map_err(bad)?;
    let until = parse_wib("until", param(p, "until")).map_err(bad)?;
    let format = if csv {
        crate::audit_export::Format::Csv
    } else {
        crate::audit_export::Format::Jsonl
    };
    let file = if csv {
        "audit-log.csv"
    } else {
        "audit-log.jsonl"
    };
    let cursor = audit::ExportCursor::start(state.bridge.pool.clone(), since, until)
        .await
        .or_fail(ctx)?;
    let body = crate::audit_export::body(cursor, format)
        .await
        .or_fail(ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

pub async fn audit_export_csv(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Params,
) -> PageResult {
    audit_export(&state, &ctx, &p, true).await
}

pub async fn audit_export_jsonl(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Params,
) -> PageResult {
    audit_export(&state, &ctx, &p, false).await
}

/// The checkpoint file, checked, for an auditor to keep next to an export.
pub async fn audit_checkpoints(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.need(Role::Auditor)?;
    let Some(path) = state.bridge.settings.audit.checkpoint_file.as_deref() else {
        return Err(ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText));
    };
    let checkpoints = crate::checkpoints::read(path).await.or_fail(&ctx)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-checkpoints.jsonl\"".to_string(),
            ),
        ],
        crate::checkpoints::to_jsonl(&checkpoints),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_only_return_to_our_own_pages() {
        assert_eq!(
            safe_back(Some("/complaints/PLG-1%2F2")),
            "/complaints/PLG-1%2F2"
        );
        assert_eq!(safe_back(Some("//evil.example/")), "/outbox/dead");
        assert_eq!(safe_back(Some("/complaints//evil")), "/outbox/dead");
        assert_eq!(safe_back(Some("https://evil.example")), "/outbox/dead");
        assert_eq!(safe_back(None), "/outbox/dead");
    }

    #[test]
    fn export_dates_are_wib() {
        let t = parse_wib("since", Some("2026-01-31")).unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-30T17:00:00+00:00");
        let t = parse_wib("since", Some("2026-01-31T08:30"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T01:30:00+00:00");
        let t = parse_wib("since", Some("2026-01-31T08:30:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T08:30:00+00:00");
        assert!(
            parse_wib("since", Some("kemarin"))
                .unwrap_err()
                .contains("WIB")
        );
        assert_eq!(parse_wib("since", Some("")).unwrap(), None);
    }

    #[test]
    fn changes_read_as_field_before_after_with_the_json_a_click_away() {
        let html = changes_html(
            Lang::Id,
            &Some(serde_json::json!({"status": "verified", "tracking_id": "A1"})),
            &Some(serde_json::json!({"status": "in_process", "tracking_id": "A1"})),
        );
        assert!(
            html.contains("<b>status</b>: Terverifikasi → Dalam Proses"),
            "{html}"
        );
        assert!(
            !html.contains("<b>nomor pelacakan</b>"),
            "unchanged fields are left out"
        );
        assert!(html.contains("<details><summary>JSON</summary>"), "{html}");
    }
}
