//! The runs of the scheduled jobs (reconcile and pull), newest first.

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde_json::Value;

use super::{PageResult, Params, check_query, paging, param};
use crate::config::Role;
use crate::store::dashboard::{self as queries, JobRun};
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, badge, complaint_href, pager, when};
use crate::web::dashboard::i18n::{self, K, Lang, label, t};
use crate::web::dashboard::{Ctx, OrFail};

/// A run's outcome: `ok`, `partial` or `failed` (older runs: from `ok`).
pub(super) fn outcome_badge(lang: Lang, run: &JobRun) -> Markup {
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

/// A run's problems: each complaint that failed (a link) with what failed,
/// and the problems that are not one complaint's (listings, LAPOR!
/// unreachable), one click away.
fn problems(lang: Lang, s: &Value) -> Markup {
    let failed: Vec<&Value> = s
        .get("failed_complaints")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let refs: Vec<&str> = failed
        .iter()
        .filter_map(|f| f.get("local_ref").and_then(Value::as_str))
        .collect();
    let general: Vec<&str> = s
        .get("problems")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p: &&str| !refs.iter().any(|r| p.starts_with(&format!("{r}: "))))
        .collect();
    if failed.is_empty() && general.is_empty() {
        return html! {};
    }
    let count = s.get("failed").and_then(Value::as_u64).unwrap_or(0);
    html! {
        details.problems {
            summary { (count) " " (t(lang, K::ComplaintsFailed)) }
            ul {
                @for p in general { li { (p) } }
                @for f in failed {
                    @let local_ref = f.get("local_ref").and_then(Value::as_str).unwrap_or("?");
                    li {
                        a href=(complaint_href(local_ref)) { (local_ref) } ": "
                        (f.get("what").and_then(Value::as_str).unwrap_or(""))
                    }
                }
            }
        }
    }
}

/// A run's outcome with its error and problems.
fn run_result(lang: Lang, r: &JobRun) -> Markup {
    html! {
        (outcome_badge(lang, r))
        @if let Some(e) = &r.error {
            br;
            span.error { (e) }
        }
        @if let Some(s) = &r.summary { (problems(lang, s)) }
    }
}

/// What drifted, one kind a line.
fn drift(lang: Lang, summary: Option<&Value>) -> Markup {
    let kinds = summary
        .and_then(|s| s.get("drift"))
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    html! {
        @if let Some(m) = kinds {
            @for (i, (k, v)) in m.iter().enumerate() {
                @if i > 0 { br; }
                (label(lang, i18n::drift_key(k), k)) ": " (v.to_string())
            }
        } @else {
            "—"
        }
    }
}

fn run_row(lang: Lang, r: &JobRun) -> Markup {
    let s = r.summary.as_ref();
    let num = |k: &str| {
        s.and_then(|s| s.get(k))
            .and_then(Value::as_u64)
            .map_or_else(|| "—".to_string(), |n| n.to_string())
    };
    let duration = r
        .finished_at
        .map(|f| i18n::age(lang, (f - r.started_at).num_seconds()))
        .unwrap_or_else(|| "—".into());
    html! {
        tr {
            td { (r.id) }
            td { (label(lang, i18n::job_key(&r.job), &r.job)) }
            td { (i18n::trigger_label(lang, &r.trigger)) }
            td { (when(r.started_at)) }
            td { (duration) }
            td { (run_result(lang, r)) }
            td.num { (num("checked")) }
            td.num { (num("imported")) }
            td { (drift(lang, s)) }
            td.num { (num("repaired")) }
            td.num { (num("conflicts")) }
            td.num { (num("errors")) }
        }
    }
}

fn runs_table(lang: Lang, runs: &[JobRun]) -> Markup {
    let th = |k: K| t(lang, k);
    html! {
        table #runs {
            tr {
                th { "#" } th { (th(K::Job)) } th { (th(K::Trigger)) } th { (th(K::Started)) }
                th { (th(K::Duration)) } th { (th(K::Result)) } th.num { (th(K::Checked)) }
                th.num { (th(K::Imported)) } th { (th(K::Drift)) } th.num { (th(K::Repaired)) }
                th.num { (th(K::Conflicts)) } th.num { (th(K::Errors)) }
            }
            @for r in runs { (run_row(lang, r)) }
        }
    }
}

pub async fn reconciliation(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Params,
) -> PageResult {
    ctx.need(Role::Operator)?;
    check_query(&ctx, &p, &["job", "page"])?;
    let job = param(&p, "job").filter(|j| matches!(*j, "pull" | "reconcile"));
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let (runs, total) = queries::runs(&state.bridge.pool, job, offset, size)
        .await
        .or_fail(&ctx)?;
    let base = job
        .map(|j| format!("/reconciliation?job={j}"))
        .unwrap_or_else(|| "/reconciliation".into());
    let body = html! {
        p {
            a href="/reconciliation" { (ctx.t(K::AllJobs)) } " · "
            a href="/reconciliation?job=reconcile" { (ctx.t(K::JobReconcile)) } " · "
            a href="/reconciliation?job=pull" { (ctx.t(K::JobPull)) }
        }
        @if runs.is_empty() {
            p.muted { (ctx.t(K::NoRows)) }
        } @else {
            (runs_table(ctx.lang, &runs))
        }
        (pager(ctx.lang, &base, page, size, total))
    };
    Ok(ctx.render(Nav::Reconciliation, ctx.t(K::Runs), body))
}
