//! The audit log: its pages, the chain check, and the exports.

use std::collections::HashMap;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::changes::changes;
use super::{ActionForm, PageResult, Params, check_query, csrf_of, paging, param};
use crate::config::Role;
use crate::store::audit::{self, Entry, Verification};
use crate::store::dashboard as queries;
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, complaint_href, csrf_field, pager, when};
use crate::web::dashboard::i18n::{self, K, Lang};
use crate::web::dashboard::{Ctx, OrFail};

/// The outcome of a chain check, as a flash.
fn verification_flash(ctx: &Ctx, v: &Verification) -> Markup {
    let (ok, text) = match v {
        Verification::Ok {
            entries,
            checkpoints,
            ..
        } => {
            let checked = checkpoints
                .map(|n| format!("; {} {n}", ctx.t(K::VerifyCheckpoints)))
                .unwrap_or_default();
            (true, format!("{}: {entries}{checked}", ctx.t(K::VerifyOk)))
        }
        Verification::CheckpointMismatch { checkpoint_id, .. } => (
            false,
            format!("{}: #{checkpoint_id}", ctx.t(K::VerifyCheckpointMismatch)),
        ),
        Verification::CheckpointsUnreadable { error, .. } => (
            false,
            format!("{}: {error}", ctx.t(K::VerifyCheckpointsUnreadable)),
        ),
        Verification::Broken { first_bad_id, .. } => (
            false,
            format!("{}: #{first_bad_id}", ctx.t(K::VerifyBroken)),
        ),
    };
    html! {
        div.flash.bad[!ok] #verify-result data-ok=(if ok { "true" } else { "false" }) { (text) }
    }
}

/// The export links and form, and the chain check's button.
fn export_and_verify(state: &AppState, ctx: &Ctx) -> Markup {
    let checkpoints = state.bridge.settings.audit.checkpoint_file.is_some();
    html! {
        h2 { (ctx.t(K::Export)) }
        p {
            a href="/audit/export.csv" #export-csv { "CSV" } " · "
            a href="/audit/export.jsonl" #export-jsonl { "JSONL" }
            @if checkpoints {
                " · " a href="/audit/checkpoints.jsonl" #export-checkpoints { (ctx.t(K::CheckpointsDownload)) }
            }
        }
        form.filters method="get" action="/audit/export.csv" {
            label { (ctx.t(K::Since)) " (WIB)" input type="date" name="since" #export-since; }
            label { (ctx.t(K::Until)) " (WIB)" input type="date" name="until" #export-until; }
            button type="submit" { "CSV" }
            button.secondary type="submit" formaction="/audit/export.jsonl" { "JSONL" }
            span.muted { (ctx.t(K::ExportHelp)) }
        }
        form method="post" action="/audit/verify" {
            (csrf_field(&ctx.session))
            button type="submit" #verify { (ctx.t(K::Verify)) }
        }
    }
}

fn entries_table(ctx: &Ctx, entries: &[Entry]) -> Markup {
    let lang: Lang = ctx.lang;
    html! {
        table #audit {
            tr {
                th { "#" } th { (ctx.t(K::Time)) } th { (ctx.t(K::Actor)) }
                th { (ctx.t(K::Reference)) } th { (ctx.t(K::Action)) } th { (ctx.t(K::Changes)) }
            }
            @for e in entries {
                tr {
                    td { (e.id) }
                    td { (when(e.at)) }
                    td { (e.actor) }
                    td {
                        @if let Some(r) = &e.local_ref {
                            a.ref href=(complaint_href(r)) { (r) }
                        } @else { "—" }
                    }
                    td { (i18n::action_label(lang, &e.action)) }
                    td { (changes(lang, &e.before, &e.after)) }
                }
            }
        }
    }
}

async fn audit_view(
    state: &AppState,
    ctx: &Ctx,
    p: &HashMap<String, String>,
    verification: Option<Verification>,
) -> PageResult {
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(ctx, p)?;
    let (entries, total) = queries::audit_page(&state.bridge.pool, offset, size)
        .await
        .or_fail(ctx)?;
    let body = html! {
        @if let Some(v) = &verification { (verification_flash(ctx, v)) }
        (export_and_verify(state, ctx))
        h2 { (ctx.t(K::AuditLog)) }
        @if entries.is_empty() {
            p.muted { (ctx.t(K::NoRows)) }
        } @else {
            (entries_table(ctx, &entries))
        }
        (pager(ctx.lang, "/audit", page, size, total))
    };
    Ok(ctx.render(Nav::Audit, ctx.t(K::NavAudit), body))
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
            return Ok(Some(crate::time::from_wib_naive(naive)));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(midnight) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(Some(crate::time::from_wib_naive(midnight)));
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
}
