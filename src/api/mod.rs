//! The admin HTTP API, health and metrics.

pub mod auth;
pub mod edge;
mod handlers;

pub use crate::params::parse_instant;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::actions::ActionError;
use crate::bridge::Bridge;
use crate::config::Role;
use crate::params::ParamErrors;
use auth::{Caller, TokenStore};

#[derive(Debug, Clone)]
pub struct AppState {
    pub bridge: Bridge,
    pub tokens: Arc<TokenStore>,
    pub jobs: Arc<crate::inbound::Jobs>,
}

/// An error answer: `{"error": ..., "fields": {...}}`.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest(String),
    /// Query parameters that are unknown, repeated, out of range or do not
    /// parse, by name.
    BadParams(ParamErrors),
    Invalid(BTreeMap<String, Vec<String>>),
    /// A body larger than this many bytes.
    PayloadTooLarge(usize),
    /// Not answered within this many seconds.
    TimedOut(u64),
    /// Another status with its message (an answer made outside a handler).
    Status(StatusCode, String),
    Conflict(String),
    Unavailable(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or unknown token"}),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                json!({"error": "this token's role may not do that"}),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"error": m})),
            ApiError::BadParams(p) => (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("invalid query parameters: {}", p.names()), "fields": p.0}),
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!("the request body is larger than {limit} bytes")}),
            ),
            ApiError::TimedOut(secs) => (
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": format!("the request was not answered within {secs} s")}),
            ),
            ApiError::Status(status, m) => (status, json!({"error": m})),
            ApiError::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid input", "fields": fields}),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"error": m})),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": m})),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error; see the bridge's log"}),
                )
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110 section 11.6.1: a 401 names the scheme it wants.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"lapor-bridge\""),
            );
        }
        response
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound => ApiError::NotFound,
            ActionError::Invalid(f) => ApiError::Invalid(f),
            ActionError::Conflict(m) => ApiError::Conflict(m),
            ActionError::Db(e) => ApiError::Internal(e.to_string()),
            ActionError::Sealing(m) => ApiError::Internal(m),
        }
    }
}

impl From<ParamErrors> for ApiError {
    fn from(e: ParamErrors) -> Self {
        ApiError::BadParams(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Requires a token whose role allows `needed`; puts the caller in the
/// request's extensions.
async fn require(
    state: &AppState,
    needed: Role,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = auth::bearer(req.headers())
        .and_then(|t| state.tokens.identify(t))
        .ok_or(ApiError::Unauthorized)?;
    if !caller.role.allows(needed) {
        return Err(ApiError::Forbidden);
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Requires a token of one of `roles` (admins always pass).
async fn require_any(
    state: &AppState,
    roles: &[Role],
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = auth::bearer(req.headers())
        .and_then(|t| state.tokens.identify(t))
        .ok_or(ApiError::Unauthorized)?;
    if !roles.iter().any(|r| caller.role.allows(*r)) {
        return Err(ApiError::Forbidden);
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

macro_rules! role_layer {
    ($state:expr, $role:expr) => {{
        let state = $state.clone();
        axum::middleware::from_fn(move |req: Request, next: Next| {
            let state = state.clone();
            async move { require(&state, $role, req, next).await }
        })
    }};
}

pub fn router(state: AppState) -> Router {
    let edge = state.bridge.settings.bridge.clone();
    let intake = Router::new()
        .route("/api/v1/complaints", post(handlers::submit))
        .route(
            "/api/v1/complaints/{local_ref}/followups",
            post(handlers::add_followup),
        )
        .layer(role_layer!(state, Role::Intake));
    let operator = Router::new()
        .route("/api/v1/complaints", get(handlers::list_complaints))
        .route("/api/v1/complaints/{local_ref}", get(handlers::complaint))
        .route(
            "/api/v1/complaints/{local_ref}/timeline",
            get(handlers::timeline),
        )
        .route(
            "/api/v1/complaints/{local_ref}/forward",
            post(handlers::forward),
        )
        .route("/api/v1/outbox", get(handlers::list_outbox))
        .route("/api/v1/outbox/{id}/retry", post(handlers::retry_step))
        .route("/api/v1/outbox/{id}/discard", post(handlers::discard_step))
        .route("/api/v1/webhooks", get(handlers::list_webhooks))
        .route(
            "/api/v1/webhooks/{id}/enable",
            post(handlers::enable_webhook),
        )
        .route(
            "/api/v1/webhooks/deliveries",
            get(handlers::list_webhook_deliveries),
        )
        .route(
            "/api/v1/webhooks/deliveries/{id}/retry",
            post(handlers::retry_webhook_delivery),
        )
        .route(
            "/api/v1/webhooks/deliveries/{id}/discard",
            post(handlers::discard_webhook_delivery),
        )
        .layer(role_layer!(state, Role::Operator));
    // An on-demand run answers with its summary when it ends, however long
    // it takes: no request timeout.
    let runs = Router::new()
        .route("/api/v1/pull", post(handlers::pull))
        .route("/api/v1/reconcile", post(handlers::reconcile))
        .layer(role_layer!(state, Role::Operator));
    // The change feed: operators see every event, intake tokens those of
    // the complaints they submitted. Its long poll is bounded by `wait`
    // (at most 30 s), not by the request timeout.
    let feed_state = state.clone();
    let feed = Router::new()
        .route("/api/v1/changes", get(handlers::changes))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let state = feed_state.clone();
                async move { require_any(&state, &[Role::Operator, Role::Intake], req, next).await }
            },
        ));
    let admin = Router::new()
        .route(
            "/api/v1/complaints/{local_ref}/erase",
            post(handlers::erase_reporter),
        )
        .layer(role_layer!(state, Role::Admin));
    let auditor = Router::new()
        .route("/api/v1/audit", get(handlers::audit_export))
        .route("/api/v1/audit/verify", get(handlers::audit_verify))
        .route(
            "/api/v1/audit/checkpoints",
            get(handlers::audit_checkpoints),
        )
        .layer(role_layer!(state, Role::Auditor));
    let timed = Router::new()
        .merge(intake)
        .merge(operator)
        .merge(auditor)
        .merge(admin)
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .merge(crate::dashboard::router());
    // A long poll of the feed waits up to its own bounded `wait`.
    let app = edge::timed(timed, &edge)
        .merge(runs)
        .merge(feed)
        .fallback(not_found)
        .with_state(state);
    edge::wrap(app, &edge)
}

/// Unknown paths: a JSON error under `/api/`, plain text elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::NotFound.into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}

/// Serves until `shutdown` (see [`edge::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let settings = state.bridge.settings.bridge.clone();
    let header_read_timeout = std::time::Duration::from_secs(settings.header_read_timeout_secs);
    // Requests in flight at shutdown end within their timeout; on-demand
    // runs are stopped by the same shutdown.
    let drain = std::time::Duration::from_secs(settings.request_timeout_secs + 5);
    edge::serve(
        listener,
        router(state),
        header_read_timeout,
        drain,
        shutdown,
    )
    .await
}

pub(crate) fn caller_name(caller: &Caller) -> String {
    format!("token:{}", caller.name)
}
