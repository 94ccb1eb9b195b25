//! Everything that answers HTTP: the shared state, the router, serving and
//! the layers every request passes (`edge`). `api` and `dashboard` are
//! leaves: each builds its own routes and neither imports the other.

pub mod api;
pub mod dashboard;
pub mod edge;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use api::ApiError;
use api::auth::TokenStore;

/// What every handler of the API and the dashboard reaches.
#[derive(Debug, Clone)]
pub struct AppState {
    pub bridge: Bridge,
    pub tokens: Arc<TokenStore>,
    pub jobs: Arc<crate::inbound::Jobs>,
}

/// The whole HTTP surface: the API (its long-running routes outside the
/// request timeout), the dashboard, and the edge's layers around both.
pub fn router(state: AppState) -> Router {
    let edge = state.bridge.settings.bridge.clone();
    let (timed, untimed) = api::routers(&state);
    let timed = timed.merge(dashboard::router());
    let app = edge::timed(timed, &edge)
        .merge(untimed)
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
