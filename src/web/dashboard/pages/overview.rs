//! The overview: complaints by sync state, the backlog, and how LAPOR! and
//! the scheduled jobs are doing.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use maud::{Markup, Render, html};
use serde_json::Value;

use super::reconciliation::outcome_badge;
use super::{PageResult, sync_state_badge};
use crate::config::Role;
use crate::domain::SyncState;
use crate::store::complaints;
use crate::store::dashboard::{self as queries, JobRun};
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, when};
use crate::web::dashboard::i18n::{self, K, Lang, t};
use crate::web::dashboard::{Ctx, OrFail};

/// A figure with its label, a line under it, and a link when it has a page.
fn card(label: &str, value: &str, sub: impl Render, href: Option<&str>, alert: bool) -> Markup {
    html! {
        div.card.alert[alert] {
            div.label { (label) }
            div.value {
                @if let Some(h) = href { a href=(h) { (value) } } @else { (value) }
            }
            div.sub { (sub) }
        }
    }
}

/// One line about a job's newest run: how long ago, and what it did.
fn run_line(lang: Lang, run: Option<&JobRun>, now: DateTime<Utc>) -> (String, Markup) {
    let Some(run) = run else {
        return (t(lang, K::NeverRun).into(), html! {});
    };
    let ago = i18n::ago(lang, (now - run.started_at).num_seconds());
    let summary = run.summary.as_ref();
    let num = |k: &str| summary.and_then(|s| s.get(k)).and_then(Value::as_u64);
    let drift: u64 = summary
        .and_then(|s| s.get("drift"))
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let sub = html! {
        (outcome_badge(lang, run)) " " (when(run.started_at))
        " · " (t(lang, K::Checked)) ": " (num("checked").unwrap_or(0))
        " · " (t(lang, K::Drift)) ": " (drift)
        " · " (t(lang, K::Errors)) ": " (num("errors").unwrap_or(0))
    };
    (ago, sub)
}

/// Complaints per sync state, each a link to the list.
fn sync_cards(lang: Lang, counts: &HashMap<SyncState, i64>) -> Markup {
    html! {
        @for s in SyncState::ALL.iter().copied() {
            div.card data-sync-state=(s) {
                div.label { (sync_state_badge(lang, s)) }
                div.value {
                    a href={ "/complaints?sync_state=" (s) } { (counts.get(&s).copied().unwrap_or(0)) }
                }
            }
        }
    }
}

/// Whether LAPOR! answered the latest delivery attempt: the card's value,
/// its line and whether it alerts.
fn reachability(ctx: &Ctx, last: Option<&queries::LastAttempt>) -> (String, Markup, bool) {
    let Some((at, status, kind)) = last else {
        return (ctx.t(K::NoContactYet).to_string(), html! {}, false);
    };
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
    let value = ctx.t(if failing {
        K::Unreachable
    } else {
        K::Reachable
    });
    let sub = html! { (ctx.t(K::LastAnswer)) ": " (when(*at)) " " (detail) };
    (value.to_string(), sub, failing)
}

/// The cards about LAPOR! and the scheduled jobs.
fn health_cards(
    ctx: &Ctx,
    paused: bool,
    last: Option<&queries::LastAttempt>,
    pull: Option<&JobRun>,
    reconcile: Option<&JobRun>,
    now: DateTime<Utc>,
) -> Markup {
    let token = ctx.t(if paused { K::TokenRejected } else { K::TokenOk });
    let (reach, reach_sub, reach_bad) = reachability(ctx, last);
    let failed = |r: Option<&JobRun>| r.is_some_and(|r| r.ok == Some(false));
    let (pull_value, pull_sub) = run_line(ctx.lang, pull, now);
    let (rec_value, rec_sub) = run_line(ctx.lang, reconcile, now);
    html! {
        (card(ctx.t(K::TokenHealth), token, "", None, paused))
        (card(ctx.t(K::Reachability), &reach, reach_sub, None, reach_bad))
        (card(ctx.t(K::LastPull), &pull_value, pull_sub, Some("/reconciliation?job=pull"), failed(pull)))
        (card(
            ctx.t(K::LastReconcile),
            &rec_value,
            rec_sub,
            Some("/reconciliation?job=reconcile"),
            failed(reconcile),
        ))
    }
}

pub async fn overview(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.need(Role::Operator)?;
    let lang = ctx.lang;
    let b = &state.bridge;
    let pool = &b.pool;
    let now = b.clock.now();
    let counts: HashMap<SyncState, i64> = complaints::count_by_sync_state(pool)
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

    let oldest_age = oldest
        .map(|at| i18n::age(lang, (now - at).num_seconds()))
        .unwrap_or_else(|| ctx.t(K::Nothing).into());
    let view_all = ctx.t(K::ViewAll);
    let body = html! {
        h2 { (ctx.t(K::SyncStates)) }
        div.cards { (sync_cards(lang, &counts)) }
        h2 { (ctx.t(K::Backlog)) }
        div.cards {
            (card(
                ctx.t(K::BacklogDepth),
                &depth.to_string(),
                html! { (ctx.t(K::OldestWaiting)) ": " (oldest_age) },
                None,
                false,
            ))
            (card(ctx.t(K::DeadLetters), &dead.to_string(), view_all, Some("/outbox/dead"), dead > 0))
            (card(
                ctx.t(K::OverdueSla),
                &overdue.to_string(),
                view_all,
                Some("/complaints?overdue=yes"),
                overdue > 0,
            ))
        }
        h2 { (ctx.t(K::LaporHealth)) }
        div.cards {
            (health_cards(&ctx, b.gate.is_paused(), last_attempt.as_ref(), pull.as_ref(), reconcile.as_ref(), now))
        }
    };
    Ok(ctx.render(Nav::Overview, ctx.t(K::NavOverview), body))
}
