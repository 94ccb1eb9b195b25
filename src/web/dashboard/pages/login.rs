//! Signing in and out.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ActionForm, PageResult, csrf_of};
use crate::config::Role;
use crate::web::AppState;
use crate::web::dashboard::html;
use crate::web::dashboard::i18n::{K, Lang};
use crate::web::dashboard::{Ctx, Fail, OrFail, session, session_cookie};

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

fn login_response(status: StatusCode, lang: Lang, uri: &Uri, error: Option<K>) -> Response {
    let href = crate::web::dashboard::switch_href(uri, lang);
    (status, html::login_page(lang, &href, error)).into_response()
}

/// The sign-in form. It never reads the database, so a flood of
/// unauthenticated requests costs PostgreSQL nothing: a browser that holds
/// a well-formed session cookie is sent to the overview, which checks the
/// session (and, when it is gone, clears the cookie and sends it back here).
pub async fn login_form(headers: HeaderMap, uri: Uri) -> Response {
    let lang = Lang::of_request(uri.query(), &headers);
    if crate::web::dashboard::cookie(&headers, session::COOKIE)
        .is_some_and(|id| session::well_formed(&id))
    {
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
