//! Dead letters: outbox steps and webhook deliveries that are no longer
//! tried, and the Retry and Discard actions on them.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::{
    ActionForm, PAGE_SIZE, PageResult, Params, check_query, confirmed, csrf_of, flash, opt_text,
    paging, step_buttons, step_label,
};
use crate::actions::{self, ActionError, StepAction};
use crate::config::Role;
use crate::store::outbox::{self, StepView};
use crate::store::webhooks::{self, DeliveryView};
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, complaint_href, csrf_field, pager, when_opt};
use crate::web::dashboard::i18n::K;
use crate::web::dashboard::{Ctx, Fail, OrFail};

fn dead_steps(ctx: &Ctx, steps: &[StepView]) -> Markup {
    let lang = ctx.lang;
    html! {
        table #dead {
            tr {
                th { "#" } th { (ctx.t(K::Reference)) } th { (ctx.t(K::Step)) }
                th.num { (ctx.t(K::Attempts)) } th { (ctx.t(K::LastError)) }
                th { (ctx.t(K::Finished)) } th { (ctx.t(K::Actions)) }
            }
            @for s in steps {
                tr data-step=(s.id) {
                    td { (s.id) }
                    td { a.ref href=(complaint_href(&s.local_ref)) { (s.local_ref) } }
                    td { (step_label(lang, s.step)) }
                    td.num { (s.attempts) }
                    td.mono { (opt_text(&s.last_error)) }
                    td { (when_opt(s.finished_at)) }
                    td { (step_buttons(ctx, s, "/outbox/dead")) }
                }
            }
        }
    }
}

pub async fn dead_letters(State(state): State<AppState>, ctx: Ctx, Query(p): Params) -> PageResult {
    check_query(&ctx, &p, &["page", "done", "failed", "step"])?;
    ctx.need(Role::Operator)?;
    let crate::params::Paging {
        page, size, offset, ..
    } = paging(&ctx, &p)?;
    let (steps, total) = outbox::list(
        &state.bridge.pool,
        Some(crate::domain::StepState::Dead),
        offset,
        size,
    )
    .await
    .or_fail(&ctx)?;
    let flash = flash(&state, &ctx, &p).await;
    let webhooks = webhook_dead_letters(&state, &ctx).await?;
    let body = html! {
        (flash)
        p.muted { (ctx.t(K::DeadHelp)) }
        @if steps.is_empty() {
            p.muted #no-dead { (ctx.t(K::NoRows)) }
        } @else {
            (dead_steps(&ctx, &steps))
        }
        (pager(ctx.lang, "/outbox/dead", page, size, total))
        (webhooks)
    };
    Ok(ctx.render(Nav::Dead, ctx.t(K::NavDead), body))
}

/// Retry or Discard of a dead webhook delivery; Discard is final, so its
/// form carries a required confirmation box.
fn webhook_form(ctx: &Ctx, id: i64, action: StepAction) -> Markup {
    let discard = action == StepAction::Discard;
    let path = if discard { "discard" } else { "retry" };
    html! {
        form.inline method="post" action={ "/webhooks/deliveries/" (id) "/" (path) } {
            (csrf_field(&ctx.session))
            @if discard {
                label.inline-confirm { span {
                    input type="checkbox" name="confirm" value="yes" required data-webhook-confirm=(id);
                    " " (ctx.t(K::DiscardConfirm))
                } }
                button.danger type="submit" data-webhook-discard=(id) { (ctx.t(K::Discard)) }
            } @else {
                button type="submit" data-webhook-retry=(id) { (ctx.t(K::Retry)) }
            }
        }
        " "
    }
}

fn webhook_row(ctx: &Ctx, d: &DeliveryView) -> Markup {
    let local_ref = d.local_ref.clone().unwrap_or_default();
    html! {
        tr data-delivery=(d.id) {
            td { (d.id) }
            td { a href=(complaint_href(&local_ref)) { (local_ref) } }
            td.mono { (d.event_type) " " (d.event_id) }
            td.mono { (crate::feed::webhook::shown(&d.url)) }
            td.num { (d.attempts) }
            td.mono { (opt_text(&d.last_error)) }
            td { (webhook_form(ctx, d.id, StepAction::Retry)) (webhook_form(ctx, d.id, StepAction::Discard)) }
        }
    }
}

/// Dead webhook deliveries, with Retry and Discard (the first 50: they are
/// few, and `lapor-bridge webhooks list --state dead` lists all).
async fn webhook_dead_letters(state: &AppState, ctx: &Ctx) -> Result<Markup, Fail> {
    let (dead, total) = webhooks::list(
        &state.bridge.pool,
        Some(crate::domain::StepState::Dead),
        0,
        PAGE_SIZE,
    )
    .await
    .or_fail(ctx)?;
    Ok(html! {
        @if !dead.is_empty() {
            h2 { (ctx.t(K::WebhookDead)) " (" (total) ")" }
            p.muted { (ctx.t(K::WebhookDeadHelp)) }
            table #webhook-dead {
                tr {
                    th { "#" } th { (ctx.t(K::Reference)) } th { (ctx.t(K::Event)) } th { "URL" }
                    th.num { (ctx.t(K::Attempts)) } th { (ctx.t(K::LastError)) } th { (ctx.t(K::Actions)) }
                }
                @for d in &dead { (webhook_row(ctx, d)) }
            }
        }
    })
}

/// Why an action did not happen, as the query of the page it returns to.
fn refusal(e: ActionError, id: i64, ctx: &Ctx) -> Result<String, Fail> {
    match e {
        ActionError::NotFound => Ok(format!("failed=notfound&step={id}")),
        ActionError::Conflict(_) | ActionError::Invalid(_) => {
            Ok(format!("failed=conflict&step={id}"))
        }
        e @ (ActionError::Db(_) | ActionError::Sealing(_)) => Err(ctx.internal(e)),
    }
}

/// What every retry and discard checks first: the operator's role, the
/// form's CSRF token and the id. Discard is final: without its confirmation
/// nothing happens (the box is `required`, so a browser does not even send
/// the form), and the browser goes back to `back` saying so.
fn admit(
    ctx: &Ctx,
    form: &Result<Form<ActionForm>, FormRejection>,
    id: &str,
    action: StepAction,
    back: &str,
) -> Result<Result<i64, Response>, Fail> {
    ctx.need(Role::Operator)?;
    ctx.check_csrf(csrf_of(form))?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(ctx.fail(StatusCode::NOT_FOUND, K::NotFound, K::NotFoundText));
    };
    if action == StepAction::Discard && !confirmed(form) {
        return Ok(Err(Redirect::to(&format!(
            "{back}?failed=unconfirmed&step={id}"
        ))
        .into_response()));
    }
    Ok(Ok(id))
}

async fn webhook_act(
    state: AppState,
    ctx: Ctx,
    id: String,
    form: Result<Form<ActionForm>, FormRejection>,
    action: StepAction,
) -> PageResult {
    let id = match admit(&ctx, &form, &id, action, "/outbox/dead")? {
        Ok(id) => id,
        Err(unconfirmed) => return Ok(unconfirmed),
    };
    let actor = format!("token:{}", ctx.session.token_name);
    let query = match actions::act_on_webhook_delivery(&state.bridge, id, action, &actor).await {
        Ok(_) => "done=webhook".to_string(),
        Err(e) => refusal(e, id, &ctx)?,
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
    let back = safe_back(form.as_ref().ok().and_then(|Form(f)| f.back.as_deref()));
    let id = match admit(&ctx, &form, &id, action, &back)? {
        Ok(id) => id,
        Err(unconfirmed) => return Ok(unconfirmed),
    };
    let actor = format!("token:{}", ctx.session.token_name);
    let done = if action == StepAction::Retry {
        "retry"
    } else {
        "discard"
    };
    let query = match actions::act_on_step(&state.bridge, id, action, &actor).await {
        Ok(_) => format!("done={done}&step={id}"),
        Err(e) => refusal(e, id, &ctx)?,
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
}
