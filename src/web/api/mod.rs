//! The admin HTTP API, health and metrics: its routes (each with its roles),
//! handlers, bearer tokens and OpenAPI document. A leaf of `web`: it never
//! reaches into the dashboard.

pub mod auth;
mod handlers;
pub mod openapi;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::HttpMethod;
use utoipa::openapi::path::Operation;

use super::AppState;
use crate::actions::ActionError;
use crate::config::Role;
use crate::params::ParamErrors;
use auth::Caller;

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

/// The body of every error answer of the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "invalid input", "fields": {"title": ["must be 1-150 characters"]}}))]
pub struct ErrorBody {
    /// What went wrong, in English.
    pub error: String,
    /// Only on `422`: each bad field (a dotted path such as `reporter.email`
    /// or `attachments[0].file_name`) with its problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

impl ErrorBody {
    fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            fields: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorBody::new("missing or unknown token"),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                ErrorBody::new("this token's role may not do that"),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, ErrorBody::new("not found")),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, ErrorBody::new(m)),
            ApiError::BadParams(p) => (
                StatusCode::BAD_REQUEST,
                ErrorBody {
                    error: format!("invalid query parameters: {}", p.names()),
                    fields: Some(p.0),
                },
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorBody::new(format!("the request body is larger than {limit} bytes")),
            ),
            ApiError::TimedOut(secs) => (
                StatusCode::REQUEST_TIMEOUT,
                ErrorBody::new(format!("the request was not answered within {secs} s")),
            ),
            ApiError::Status(status, m) => (status, ErrorBody::new(m)),
            ApiError::Invalid(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody {
                    error: "invalid input".into(),
                    fields: Some(fields),
                },
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, ErrorBody::new(m)),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, ErrorBody::new(m)),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new("internal error; see the bridge's log"),
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

/// Requires a token whose role allows one of `needed`; puts the caller in
/// the request's extensions.
async fn require(
    state: &AppState,
    needed: &'static [Role],
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = auth::bearer(req.headers())
        .and_then(|t| state.tokens.identify(t))
        .ok_or(ApiError::Unauthorized)?;
    if !needed.iter().any(|role| caller.role.allows(*role)) {
        return Err(ApiError::Forbidden);
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// One route of the API. Its methods and path come from the handler's
/// `#[utoipa::path]`: the router and the OpenAPI document are built from
/// the same list, [`api_routes`].
pub struct ApiRoute {
    pub path: String,
    pub methods: Vec<HttpMethod>,
    /// The roles that may call it (admins may call everything); empty: no
    /// token needed.
    pub roles: &'static [Role],
    operation: Operation,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    /// The route's OpenAPI operation as its handler's annotation states it.
    pub fn operation(&self) -> &Operation {
        &self.operation
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

/// The route of `handler`, documented by `P` (its `#[utoipa::path]`).
fn route<P, H, T>(roles: &'static [Role], handler: H) -> ApiRoute
where
    P: utoipa::Path,
    H: Handler<T, AppState>,
    T: 'static,
{
    let methods = P::methods();
    let mut method_router = MethodRouter::new();
    for method in &methods {
        method_router = method_router.on(method_filter(method), handler.clone());
    }
    ApiRoute {
        path: P::path(),
        methods,
        roles,
        operation: P::operation(),
        handler: method_router,
    }
}

const NONE: &[Role] = &[];
const INTAKE: &[Role] = &[Role::Intake];
const OPERATOR: &[Role] = &[Role::Operator];
const AUDITOR: &[Role] = &[Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];
/// The change feed: operators see every event, intake tokens those of the
/// complaints they submitted.
const FEED: &[Role] = &[Role::Operator, Role::Intake];

/// Routes that answer when their work ends, outside the request timeout:
/// an on-demand run answers with its summary however long it takes, and a
/// long poll of the feed waits up to its own bounded `wait` (at most 30 s).
const UNTIMED: &[&str] = &["/api/v1/pull", "/api/v1/reconcile", "/api/v1/changes"];

/// Every route of the admin API, health and metrics (not the dashboard's
/// pages): what the router serves and the OpenAPI document describes.
pub fn api_routes() -> Vec<ApiRoute> {
    use handlers::*;
    vec![
        route::<__path_submit, _, _>(INTAKE, submit),
        route::<__path_list_complaints, _, _>(OPERATOR, list_complaints),
        route::<__path_complaint, _, _>(OPERATOR, complaint),
        route::<__path_timeline, _, _>(OPERATOR, timeline),
        route::<__path_add_followup, _, _>(INTAKE, add_followup),
        route::<__path_forward, _, _>(OPERATOR, forward),
        route::<__path_erase_reporter, _, _>(ADMIN, erase_reporter),
        route::<__path_list_outbox, _, _>(OPERATOR, list_outbox),
        route::<__path_retry_step, _, _>(OPERATOR, retry_step),
        route::<__path_discard_step, _, _>(OPERATOR, discard_step),
        route::<__path_pull, _, _>(OPERATOR, pull),
        route::<__path_reconcile, _, _>(OPERATOR, reconcile),
        route::<__path_audit_export, _, _>(AUDITOR, audit_export),
        route::<__path_audit_verify, _, _>(AUDITOR, audit_verify),
        route::<__path_audit_checkpoints, _, _>(AUDITOR, audit_checkpoints),
        route::<__path_changes, _, _>(FEED, changes),
        route::<__path_list_webhooks, _, _>(OPERATOR, list_webhooks),
        route::<__path_enable_webhook, _, _>(OPERATOR, enable_webhook),
        route::<__path_list_webhook_deliveries, _, _>(OPERATOR, list_webhook_deliveries),
        route::<__path_retry_webhook_delivery, _, _>(OPERATOR, retry_webhook_delivery),
        route::<__path_discard_webhook_delivery, _, _>(OPERATOR, discard_webhook_delivery),
        route::<openapi::__path_openapi_json, _, _>(NONE, openapi::openapi_json),
        route::<__path_healthz, _, _>(NONE, healthz),
        route::<__path_readyz, _, _>(NONE, readyz),
        route::<__path_metrics, _, _>(NONE, metrics),
    ]
}

/// The API's routes with their role checks: those under the request
/// timeout, and those outside it (see [`UNTIMED`]).
pub(super) fn routers(state: &AppState) -> (Router<AppState>, Router<AppState>) {
    let mut timed = Router::new();
    let mut untimed = Router::new();
    for api_route in api_routes() {
        let handler = if api_route.roles.is_empty() {
            api_route.handler
        } else {
            let state = state.clone();
            let roles = api_route.roles;
            api_route.handler.route_layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let state = state.clone();
                    async move { require(&state, roles, req, next).await }
                },
            ))
        };
        // Two routes on one path (another method, another role) merge.
        if UNTIMED.contains(&api_route.path.as_str()) {
            untimed = untimed.route(&api_route.path, handler);
        } else {
            timed = timed.route(&api_route.path, handler);
        }
    }
    (timed, untimed)
}

pub(crate) fn caller_name(caller: &Caller) -> String {
    format!("token:{}", caller.name)
}
