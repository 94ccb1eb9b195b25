//! The operators' dashboard: server-rendered HTML under `/`, in Bahasa
//! Indonesia by default and English with `?lang=en` (remembered in a `lang`
//! cookie).
//!
//! Sign-in is with an API token once (`/login`); the session lives in
//! `lapor_bridge.dashboard_sessions` and in an HttpOnly, SameSite=Strict
//! cookie. Every POST carries the session's CSRF token in a hidden field
//! (compared in constant time) and is refused when its `Origin` is another
//! host. Pages need the role `operator` (the audit pages `auditor`); admins
//! may see everything.

pub mod html;
pub mod i18n;
mod institutions;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use subtle::ConstantTimeEq;

use crate::config::Role;
use crate::web::AppState;
use html::{Frame, Nav};
use i18n::{K, Lang, t};
use session::Session;

/// The dashboard's routes, to merge into the admin router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/complaints", get(pages::complaints))
        .route("/complaints/{local_ref}", get(pages::complaint))
        .route(
            "/complaints/{local_ref}/erase",
            get(pages::erase_form).post(pages::erase),
        )
        .route("/outbox/dead", get(pages::dead_letters))
        .route("/outbox/{id}/retry", post(pages::retry))
        .route("/outbox/{id}/discard", post(pages::discard))
        .route(
            "/webhooks/deliveries/{id}/retry",
            post(pages::webhook_retry),
        )
        .route(
            "/webhooks/deliveries/{id}/discard",
            post(pages::webhook_discard),
        )
        .route("/reconciliation", get(pages::reconciliation))
        .route("/audit", get(pages::audit))
        .route("/audit/verify", post(pages::audit_verify))
        .route("/audit/export.csv", get(pages::audit_export_csv))
        .route("/audit/export.jsonl", get(pages::audit_export_jsonl))
        .route("/audit/checkpoints.jsonl", get(pages::audit_checkpoints))
        .layer(axum::middleware::from_fn(refuse_cross_site))
        .layer(axum::middleware::from_fn(headers_and_lang_cookie))
        // Forms are small; the API's large limit is for attachments.
        .layer(DefaultBodyLimit::max(64 * 1024))
}

/// The value of one cookie of a request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// Whether the request came over HTTPS (through a proxy that says so).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for the session id (`None`: clear it).
fn session_cookie(id: Option<&str>, headers: &HeaderMap) -> HeaderValue {
    let secure = if is_https(headers) { "; Secure" } else { "" };
    let value = match id {
        Some(id) => format!(
            "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            session::COOKIE,
            session::LIFETIME_HOURS * 3600
        ),
        None => format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
            session::COOKIE
        ),
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The host of an `Origin` value (`scheme://host[:port]`), lowercase.
fn origin_host(origin: &str) -> Option<String> {
    let (_, rest) = origin.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Refuses state-changing requests from other sites: a POST whose `Origin`
/// names another host than `Host` (or is `null`), or that the browser marks
/// `Sec-Fetch-Site: cross-site`.
async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if req.method() == Method::POST {
        let headers = req.headers();
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| h.trim().to_ascii_lowercase())
            .or_else(|| {
                req.uri()
                    .authority()
                    .map(|a| a.as_str().to_ascii_lowercase())
            });
        let origin_ok = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
            None => true,
            Some(Ok(origin)) => origin_host(origin).is_some_and(|o| Some(o) == host),
            Some(Err(_)) => false,
        };
        let site_ok = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|s| s != "cross-site");
        if !origin_ok || !site_ok {
            let lang = Lang::of_request(req.uri().query(), req.headers());
            return Fail::new(lang, StatusCode::FORBIDDEN, K::Forbidden, K::ForbiddenCsrf)
                .into_response();
        }
    }
    next.run(req).await
}

/// Security headers on every page, and the `lang` cookie when `?lang=` asks
/// for a language.
async fn headers_and_lang_cookie(req: Request, next: Next) -> Response {
    let asked = i18n::query_lang(req.uri().query());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if let Some(lang) = asked
        && let Ok(v) = HeaderValue::from_str(&format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        ))
    {
        h.append(header::SET_COOKIE, v);
    }
    resp
}

/// The link to the current page in the other language: its query without
/// `lang` and the one-off flash parameters, plus `lang=`.
fn switch_href(uri: &Uri, lang: Lang) -> String {
    let mut pairs: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or_default();
            !matches!(key, "lang" | "done" | "failed" | "step")
        })
        .collect();
    let other = format!("lang={}", lang.other().code());
    pairs.push(&other);
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// A signed-in request: its session, language and URI. Without a live
/// session the request is redirected to `/login`.
pub struct Ctx {
    pub session: Session,
    pub lang: Lang,
    pub uri: Uri,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::of_request(parts.uri.query(), &parts.headers);
        let Some(id) = cookie(&parts.headers, session::COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        let now = state.bridge.clock.now();
        let loaded = session::load(&state.bridge.pool, &id, now).await;
        // A session outlives neither its token nor a change of its role.
        let loaded = match loaded {
            Ok(Some(s)) if !state.tokens.still_holds(&s.token_name, s.role) => {
                session::delete(&state.bridge.pool, &s.id_sha256)
                    .await
                    .map(|()| None)
            }
            other => other,
        };
        match loaded {
            Ok(Some(session)) => Ok(Ctx {
                session,
                lang,
                uri: parts.uri.clone(),
            }),
            Ok(None) => {
                let mut resp = Redirect::to("/login").into_response();
                resp.headers_mut()
                    .insert(header::SET_COOKIE, session_cookie(None, &parts.headers));
                Err(resp)
            }
            Err(e) => Err(Fail::internal(lang, e).into_response()),
        }
    }
}

impl Ctx {
    /// 403 unless the session's role allows `role`.
    pub fn need(&self, role: Role) -> Result<(), Fail> {
        if self.session.role.allows(role) {
            Ok(())
        } else {
            Err(self.fail(StatusCode::FORBIDDEN, K::Forbidden, K::ForbiddenRole))
        }
    }

    /// 403 unless `presented` is this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), Fail> {
        let expected = self.session.csrf.as_bytes();
        let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected)));
        if ok {
            Ok(())
        } else {
            Err(self.fail(StatusCode::FORBIDDEN, K::Forbidden, K::ForbiddenCsrf))
        }
    }

    pub fn fail(&self, status: StatusCode, title: K, text: K) -> Fail {
        let mut f = Fail::new(self.lang, status, title, text);
        f.0.session = Some(self.session.clone());
        f.0.uri = Some(self.uri.clone());
        f
    }

    /// 500, logged; the page says only to look at the log.
    pub fn internal(&self, e: impl std::fmt::Display) -> Fail {
        tracing::error!(error = %e, path = %self.uri.path(), "dashboard page failed");
        self.fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            K::InternalError,
            K::InternalErrorText,
        )
    }

    /// A full page in the layout.
    pub fn render(&self, active: Nav, title: &str, body: Markup) -> Response {
        let frame = Frame {
            lang: self.lang,
            session: Some(&self.session),
            switch_href: switch_href(&self.uri, self.lang),
            active,
        };
        html::page(&frame, title, body).into_response()
    }

    pub fn t(&self, key: K) -> &'static str {
        t(self.lang, key)
    }
}

/// An error page, with the navigation when signed in (boxed: it travels in
/// every handler's `Err`).
#[derive(Debug)]
pub struct Fail(Box<FailPage>);

#[derive(Debug)]
pub struct FailPage {
    status: StatusCode,
    lang: Lang,
    title: K,
    text: K,
    detail: Option<String>,
    session: Option<Session>,
    uri: Option<Uri>,
}

impl Fail {
    pub fn new(lang: Lang, status: StatusCode, title: K, text: K) -> Self {
        Self(Box::new(FailPage {
            status,
            lang,
            title,
            text,
            detail: None,
            session: None,
            uri: None,
        }))
    }

    fn internal(lang: Lang, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "dashboard request failed");
        Self::new(
            lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            K::InternalError,
            K::InternalErrorText,
        )
    }

    pub fn with_detail(mut self, detail: String) -> Self {
        self.0.detail = Some(detail);
        self
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let page = *self.0;
        let uri = page.uri.unwrap_or_else(|| Uri::from_static("/"));
        let frame = Frame {
            lang: page.lang,
            session: page.session.as_ref(),
            switch_href: switch_href(&uri, page.lang),
            active: Nav::None,
        };
        let body = html! {
            p #error-text { (t(page.lang, page.text)) }
            @if let Some(detail) = &page.detail {
                p { code { (detail) } }
            }
            p { a href="/" { (t(page.lang, K::NavOverview)) } }
        };
        let html = html::page(&frame, t(page.lang, page.title), body);
        (page.status, html).into_response()
    }
}

/// `Result<T, E>` into a logged 500 page.
pub trait OrFail<T> {
    fn or_fail(self, ctx: &Ctx) -> Result<T, Fail>;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, ctx: &Ctx) -> Result<T, Fail> {
        self.map_err(|e| ctx.internal(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; lb_session=abc".parse().unwrap());
        h.append(header::COOKIE, "lang=en".parse().unwrap());
        assert_eq!(cookie(&h, "lb_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn origin_hosts_are_compared_without_scheme() {
        assert_eq!(
            origin_host("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(origin_host("null"), None);
    }

    #[test]
    fn the_language_switch_keeps_filters_but_not_flashes() {
        let uri: Uri = "/complaints?q=PLG&done=retry&lang=id&page=2"
            .parse()
            .unwrap();
        assert_eq!(
            switch_href(&uri, Lang::Id),
            "/complaints?q=PLG&page=2&lang=en"
        );
    }
}
