//! The admin HTTP server's edge: what every request passes through before a
//! route sees it, and the accept loop.
//!
//! - `x-request-id`: kept when the client sends one, generated otherwise;
//!   every log line of the request carries it (span `http`, field
//!   `request_id`) and the answer repeats it.
//! - `Authorization`, `Cookie`, `Set-Cookie`, `Proxy-Authorization` and
//!   LAPOR!'s token headers (`auth`, `token`) are marked sensitive: logged
//!   headers show them as `Sensitive`.
//! - Bodies larger than `[bridge] max_body_bytes` are refused with `413`, a
//!   request not answered within `request_timeout_secs` gets `408`, a
//!   panicking handler a `500`; under `/api/` every error answer is the
//!   API's JSON error shape, whoever produced it.
//! - A NUL character in the path is a `400` (no stored key can hold one).
//! - The accept loop closes connections that have not sent a whole request
//!   head within `header_read_timeout_secs`, and on shutdown stops
//!   accepting, lets requests in flight finish and closes idle connections.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::api::ApiError;
use crate::config::BridgeSettings;

/// The request id header, read and answered.
pub const REQUEST_ID: &str = "x-request-id";

/// Request headers whose values never show in a log.
fn sensitive_request_headers() -> [HeaderName; 5] {
    [
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
        // LAPOR!'s API token (`auth_header = "auth"`) and instansi token.
        HeaderName::from_static("auth"),
        HeaderName::from_static("token"),
    ]
}

/// The request timeout, for every route it applies to.
pub fn timed<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    settings: &BridgeSettings,
) -> Router<S> {
    routes.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(settings.request_timeout_secs),
    ))
}

/// Every other layer of the edge, around the whole application.
pub fn wrap(app: Router, settings: &BridgeSettings) -> Router {
    let limit = settings.max_body_bytes;
    let timeout_secs = settings.request_timeout_secs;
    // Innermost first.
    app.layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(refuse_nul_in_path))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            errors_as_json(limit, timeout_secs, req, next)
        }))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The path only: a query may carry a search for a name.
                    tracing::info_span!(
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                    )
                })
                .on_request(|req: &Request, _: &tracing::Span| {
                    tracing::debug!(headers = ?req.headers(), "request");
                }),
        )
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
            REQUEST_ID,
        )))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static(REQUEST_ID),
            MakeRequestUuid,
        ))
        // A caller's own id is kept only when it is short and plain: it goes
        // into every log line of the request.
        .layer(axum::middleware::map_request(drop_unusable_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new(
            sensitive_request_headers(),
        ))
}

/// A panic in a handler: logged, and a JSON `500` like every other failure.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

/// A NUL character in the path matches no stored reference and PostgreSQL
/// refuses it in text: a `400` before any route runs.
async fn refuse_nul_in_path(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.contains("%00") || path.contains('\0') {
        return ApiError::BadRequest("the path must not contain a NUL character".into())
            .into_response();
    }
    next.run(req).await
}

/// Under `/api/`, an error answer that is not JSON (the body limit's, the
/// timeout's, an extractor's plain-text rejection) becomes the API's JSON
/// error shape with the same status.
async fn errors_as_json(limit: usize, timeout_secs: u64, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        StatusCode::REQUEST_TIMEOUT => ApiError::TimedOut(timeout_secs),
        _ if !api => return response,
        _ => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 64 * 1024)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            let text = if text.is_empty() {
                parts
                    .status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_string()
            } else {
                text
            };
            let mut json = ApiError::Status(parts.status, text).into_response();
            for (name, value) in &parts.headers {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    json.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return json;
        }
    };
    // The dashboard's pages are HTML; the limits' answers are the same JSON
    // there, as no page can show them.
    error.into_response()
}

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight
/// finish (at most `drain` long) and closes idle connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: Duration,
    drain: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // HTTP/1 only: the dashboard and the API need nothing else, and the
    // version sniff of a dual server waits for its first bytes with no
    // timeout (a connection that sends nothing would be held for ever);
    // HTTP/1's header read timeout starts as soon as the connection opens.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {} s of shutdown: closing them",
            drain.as_secs()
        );
    }
    Ok(())
}

/// Removes an `x-request-id` that is not 1 to 64 letters, digits, `.`, `_`
/// or `-`, so that a new one is generated in its place.
async fn drop_unusable_request_id(mut req: Request) -> Request {
    let usable = |v: &axum::http::HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    };
    if req.headers().get(REQUEST_ID).is_some_and(|v| !usable(v)) {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}
