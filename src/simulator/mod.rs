//! An in-memory LAPOR! that speaks the wire contract, with fault injection.
//!
//! The LAPOR! endpoints of `lapor-api.md` are served both under `/api/...`
//! and at the root; the control surface is under `/_sim/...` (no auth, never
//! faulted, not counted in the statistics).
//!
//! Choices where the contract leaves room:
//! - Timestamps are kept as `DateTime<Utc>` at full resolution (every change
//!   moves `updated_at` forward) and shown in WIB to the second; lists order
//!   by (that second, id), so changes within one second tie and sort by id.
//! - Ids are never reused, not even after `/_sim/reset`.
//! - Faults, per LAPOR! request, in this order: rate limit (429,
//!   `Retry-After: 1`), latency, then at most one of timeout (held
//!   `timeout_hold_ms`, default 60 s, or until shutdown, then 504 HTML; not
//!   applied), error (`error_status`, JSON body; not applied), HTML error
//!   (502; not applied), malformed (200 with a truncated JSON body: a GET runs
//!   and its real body is cut; anything else is not applied), drop after
//!   commit (applied, then the connection closes with no response).
//!   `missing_list_endpoint: true` answers `GET /complaints` with `404`
//!   (a LAPOR! without the ASSUMED list endpoint), before any other fault
//!   and before the tokens are checked.
//! - `/_sim` answers: `POST /_sim/complaints` 201 `{"success", "complaint_id",
//!   "tracking_id"}` (every field optional, `disposition_id` defaults to the
//!   configured institution); `POST /_sim/complaints/{id}/status`
//!   `{"status_name", "force"?, "disposition_id"?}`; `POST
//!   /_sim/complaints/{id}/followups` 201 `{"success", "id"}` (any status);
//!   `GET /_sim/complaints` `{"success", "data": [...], "total"}` and `GET
//!   /_sim/complaints/{id}` `{"success", "data"}`; `GET /_sim/stats`
//!   `{"requests": {endpoint: {status or "dropped": n}}, "in_flight": n}`
//!   with endpoints `institutions`, `upload`, `create`, `detail`,
//!   `followups`, `followup_add`, `forward`, `list`; `in_flight` counts
//!   requests received and not answered yet.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use lapor_bridge::simulator::{SimulatorConfig, spawn};
//! let sim = spawn(SimulatorConfig::default()).await?;
//! println!("LAPOR! at {}", sim.base_url());
//! sim.shutdown();
//! # Ok(()) }
//! ```

mod api;
mod control;
mod faults;
mod state;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::lapor::AuthHeader;

pub use faults::FaultSet;

/// Largest request body the simulator reads (uploads are checked per file
/// against 10 MiB).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// The API token, expected in the `auth_header`.
    pub api_token: String,
    /// Expected in the `token` header.
    pub instansi_token: String,
    pub auth_header: AuthHeader,
    /// The caller's institution: `scope=inbox` lists complaints
    /// dispositioned to it.
    pub institution_id: i64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            api_token: "api-token".into(),
            instansi_token: "instansi-token".into(),
            auth_header: AuthHeader::AuthorizationBearer,
            institution_id: 101,
        }
    }
}

impl SimulatorConfig {
    /// The defaults, overridden by `LAPOR_API_TOKEN`, `LAPOR_INSTANSI_TOKEN`,
    /// `LAPOR_AUTH_HEADER` and `LAPOR_INSTITUTION_ID`; invalid values are
    /// ignored.
    pub fn from_env() -> Self {
        Self::from_vars(|key| std::env::var(key).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut config = Self::default();
        if let Some(token) = var("LAPOR_API_TOKEN") {
            config.api_token = token;
        }
        if let Some(token) = var("LAPOR_INSTANSI_TOKEN") {
            config.instansi_token = token;
        }
        if let Some(header) = var("LAPOR_AUTH_HEADER").and_then(|v| AuthHeader::parse(&v)) {
            config.auth_header = header;
        }
        if let Some(id) = var("LAPOR_INSTITUTION_ID").and_then(|v| v.trim().parse().ok()) {
            config.institution_id = id;
        }
        config
    }
}

/// Everything the handlers share.
#[derive(Debug)]
struct Sim {
    config: SimulatorConfig,
    state: Mutex<state::State>,
    faults: faults::Faults,
    stats: faults::Stats,
    /// Releases requests held by `timeout_rate` when the server stops.
    shutdown: CancellationToken,
}

type Shared = Arc<Sim>;

/// Locks without propagating a poison: the state stays usable after a panic
/// elsewhere (a dropped connection unwinds while holding no lock).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `{"success": false, "message": ...}` with `status`.
fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "message": message})),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "Not Found")
}

/// The simulator as a router, for embedding. Requests held by
/// `timeout_rate` are only released by their hold time.
pub fn router(config: SimulatorConfig) -> Router {
    build(config, CancellationToken::new())
}

fn build(config: SimulatorConfig, shutdown: CancellationToken) -> Router {
    let sim: Shared = Arc::new(Sim {
        state: Mutex::new(state::State::new(config.institution_id)),
        config,
        faults: faults::Faults::default(),
        stats: faults::Stats::default(),
        shutdown,
    });
    let lapor: Router = api::routes()
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), api::auth))
        .route_layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            faults::gate,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(sim.clone());
    Router::new()
        .nest("/_sim", control::routes().with_state(sim))
        .nest("/api", lapor.clone())
        .merge(lapor)
        .fallback(not_found)
}

/// Serves the simulator on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimulatorConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = build(config, shutdown.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// A simulator serving in a tokio task. Dropping the handle does not stop it:
/// call [`RunningSimulator::shutdown`] (it also ends with the runtime).
#[derive(Debug)]
pub struct RunningSimulator {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl RunningSimulator {
    /// `http://{addr}/api`: the LAPOR! base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// `http://{addr}`: the control surface is at `{root_url}/_sim`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving (gracefully: requests in flight finish, held ones are
    /// released at once).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// Binds `127.0.0.1:0` and serves in a tokio task.
pub async fn spawn(config: SimulatorConfig) -> std::io::Result<RunningSimulator> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        if let Err(error) = serve(listener, config, token).await {
            tracing::error!(%error, "LAPOR! simulator stopped");
        }
    });
    Ok(RunningSimulator { addr, shutdown })
}
