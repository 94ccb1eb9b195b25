//! The complaint list, with its filters.

use crate::domain::SyncState;
use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use maud::{Markup, html};

use super::{
    PageResult, Params, check_query, next_deadline, paging, param, status_label, sync_state_badge,
    sync_state_label, waiting_note,
};
use crate::actions;
use crate::config::Role;
use crate::status_document::StatusDocument;
use crate::store::complaints;
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, badge, complaint_href, pager, url_encode, when};
use crate::web::dashboard::i18n::{self, K, Lang, label, t};
use crate::web::dashboard::{Ctx, Fail, OrFail};

/// The overdue filter evaluates SLAs in Rust: at most this many of the newest
/// matching complaints are checked.
const OVERDUE_SCAN_CAP: i64 = 5000;

/// The list's filters as the query string gave them.
struct Filters<'a> {
    q: Option<&'a str>,
    sync_state: Option<SyncState>,
    status: Option<&'a str>,
    overdue: Option<&'a str>,
}

impl<'a> Filters<'a> {
    fn of(p: &'a HashMap<String, String>) -> Self {
        Self {
            q: param(p, "q"),
            sync_state: param(p, "sync_state").and_then(|s| s.parse().ok()),
            status: param(p, "status"),
            overdue: param(p, "overdue"),
        }
    }

    /// The list's path with these filters, without `page`.
    fn base(&self) -> String {
        let mut base = String::from("/complaints?");
        for (k, v) in [
            ("q", self.q),
            ("sync_state", self.sync_state.map(SyncState::as_str)),
            ("status", self.status),
            ("overdue", self.overdue),
        ] {
            if let Some(v) = v {
                let _ = write!(base, "{k}={}&", url_encode(v));
            }
        }
        base.trim_end_matches(['&', '?']).to_string()
    }
}

/// One page of matching complaints (reporter masked), the number matching,
/// and whether the overdue filter hit its scan cap.
async fn find(
    state: &AppState,
    ctx: &Ctx,
    f: &Filters<'_>,
    offset: i64,
    size: i64,
) -> Result<(Vec<StatusDocument>, i64, bool), Fail> {
    let b = &state.bridge;
    let filter = complaints::ListFilter {
        sync_state: f.sync_state,
        status: f.status.map(str::to_string),
        search: f.q.map(str::to_string),
    };
    // Lists show the reporter masked, to every role.
    let build = |r: &complaints::ComplaintRow| actions::masked_document(b, r);
    let want = match f.overdue {
        Some("yes") => true,
        Some("no") => false,
        _ => {
            let (rows, total) = complaints::list(&b.pool, &filter, offset, size)
                .await
                .or_fail(ctx)?;
            return Ok((rows.iter().map(build).collect(), total, false));
        }
    };
    let (rows, matching) = complaints::list(&b.pool, &filter, 0, OVERDUE_SCAN_CAP)
        .await
        .or_fail(ctx)?;
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
    Ok((items, total, matching > OVERDUE_SCAN_CAP))
}

fn options(selected: Option<&str>, items: &[(String, String)]) -> Markup {
    html! {
        @for (value, text) in items {
            option value=(value) selected[Some(value.as_str()) == selected] { (text) }
        }
    }
}

fn filter_form(lang: Lang, f: &Filters<'_>) -> Markup {
    let any = (String::new(), t(lang, K::Any).to_string());
    let mut sync_opts = vec![any.clone()];
    sync_opts.extend(
        SyncState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), sync_state_label(lang, *s))),
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
    html! {
        form.filters method="get" action="/complaints" {
            label { (t(lang, K::SearchRef)) input type="search" #q name="q" value=(f.q.unwrap_or_default()); }
            label { (t(lang, K::SyncState)) select name="sync_state" #sync_state { (options(f.sync_state.map(SyncState::as_str), &sync_opts)) } }
            label { (t(lang, K::Status)) select name="status" #status { (options(f.status, &status_opts)) } }
            label { (t(lang, K::Overdue)) select name="overdue" #overdue { (options(f.overdue, &overdue_opts)) } }
            button type="submit" #search { (t(lang, K::Search)) }
        }
    }
}

/// A complaint's sync state, with a short note of why it waits.
fn sync_cell(lang: Lang, d: &StatusDocument) -> Markup {
    html! {
        (sync_state_badge(lang, d.sync_state))
        @if let Some(code) = &d.waiting_code {
            br;
            span.muted.waiting { (waiting_note(lang, code, d.waiting_until)) }
        }
    }
}

fn complaint_row(lang: Lang, d: &StatusDocument) -> Markup {
    let reporter = d
        .reporter
        .as_ref()
        .and_then(|r| r.identity.name.as_deref())
        .unwrap_or("—");
    html! {
        tr {
            td { a.ref href=(complaint_href(&d.local_ref)) data-ref=(d.local_ref) { (d.local_ref) } }
            td { (d.title) }
            td { (reporter) }
            td { (status_label(lang, d)) }
            td { (sync_cell(lang, d)) }
            td {
                @if d.sla.is_overdue() { (badge("bad", t(lang, K::Yes))) } @else { (t(lang, K::No)) }
            }
            td { (next_deadline(lang, d)) }
            td { (when(d.created_at)) }
        }
    }
}

fn complaints_table(lang: Lang, docs: &[StatusDocument]) -> Markup {
    html! {
        table #complaints {
            tr {
                @for key in [K::Reference, K::Title, K::Reporter, K::Status, K::SyncState,
                             K::Overdue, K::NextDeadline, K::Created] {
                    th { (t(lang, key)) }
                }
            }
            @for d in docs { (complaint_row(lang, d)) }
        }
    }
}

pub async fn complaints(State(state): State<AppState>, ctx: Ctx, Query(p): Params) -> PageResult {
    check_query(&ctx, &p, &["q", "sync_state", "status", "overdue", "page"])?;
    ctx.need(Role::Operator)?;
    let lang = ctx.lang;
    let filters = Filters::of(&p);
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let (docs, total, capped) = find(&state, &ctx, &filters, offset, size).await?;
    let body = html! {
        (filter_form(lang, &filters))
        @if capped {
            p.muted { (ctx.t(K::OverdueScanCapped)) " " (OVERDUE_SCAN_CAP) }
        }
        @if docs.is_empty() {
            p.muted { (ctx.t(K::NoRows)) }
        } @else {
            (complaints_table(lang, &docs))
        }
        (pager(lang, &filters.base(), page, size, total))
    };
    Ok(ctx.render(Nav::Complaints, ctx.t(K::NavComplaints), body))
}
