//! Erasing a complaint's reporter (admins): the confirmation page and the
//! action.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;

use super::{PageResult, Params, check_query, param};
use crate::actions::{self, ActionError};
use crate::config::Role;
use crate::store::complaints;
use crate::web::AppState;
use crate::web::dashboard::html::{Nav, complaint_href, csrf_field};
use crate::web::dashboard::i18n::K;
use crate::web::dashboard::{Ctx, OrFail};

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
    let href = complaint_href(&local_ref);
    let body = html! {
        @if param(&p, "missing").is_some() {
            div.flash.bad #flash role="status" { (ctx.t(K::EraseMissing)) }
        }
        p { (ctx.t(K::EraseHelp)) }
        p { a href=(href) { (local_ref) } }
        form method="post" action={ (href) "/erase" } #erase-form {
            (csrf_field(&ctx.session))
            label {
                (ctx.t(K::EraseReason))
                textarea name="reason" #reason required maxlength="2000" {}
            }
            label {
                input type="checkbox" name="confirm" #confirm value="yes" required;
                " " (ctx.t(K::EraseConfirm))
            }
            button.danger type="submit" { (ctx.t(K::EraseReporter)) }
        }
    };
    Ok(ctx.render(Nav::Complaints, ctx.t(K::EraseReporter), body))
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
    let href = complaint_href(&local_ref);
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
