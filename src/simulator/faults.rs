//! Fault injection and request statistics for the LAPOR! endpoints (never for
//! `/_sim`). Every fault is decided per request with `rand`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Shared, error_response, lock};

/// The fault set of `POST /_sim/faults`. Every key is optional and a key left
/// out is off; each call replaces the whole set. Rates are in 0..=1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Answer `error_status` (JSON error body) without applying the request.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Status of `error_rate` answers; 503 when not given.
    #[serde(default)]
    pub error_status: Option<u16>,
    /// Answer 502 with an HTML page (a reverse proxy), not applied.
    #[serde(default)]
    pub html_error_rate: Option<f64>,
    /// Extra latency before every request, uniformly in `[min, max]` ms.
    #[serde(default)]
    pub latency_ms: Option<[u64; 2]>,
    /// Hold the request `timeout_hold_ms`, then answer 504 (HTML), not applied.
    #[serde(default)]
    pub timeout_rate: Option<f64>,
    /// How long a timed-out request is held; 60 000 ms when not given.
    #[serde(default)]
    pub timeout_hold_ms: Option<u64>,
    /// Apply the request, then close the connection without any response.
    #[serde(default)]
    pub drop_after_commit_rate: Option<f64>,
    /// Answer 200 with a truncated JSON body. Decided before the handler: a
    /// write is not applied; a read runs and its real body is cut.
    #[serde(default)]
    pub malformed_rate: Option<f64>,
    /// Global token bucket (capacity: one second's worth); beyond it 429 with
    /// `Retry-After: 1`.
    #[serde(default)]
    pub rate_limit_per_sec: Option<f64>,
    /// A write answers `504` with an nginx HTML page at once and is applied
    /// `slow_commit_ms` later (PHP behind a gateway that gave up).
    #[serde(default)]
    pub slow_commit_rate: Option<f64>,
    /// How long after its `504` a slow write is applied; 5 000 ms when not
    /// given.
    #[serde(default)]
    pub slow_commit_ms: Option<u64>,
    /// Complaint ids whose follow-up and forward calls answer `403` (the
    /// account may not act on them).
    #[serde(default)]
    pub forbidden_complaints: Option<Vec<i64>>,
    /// The list endpoint (`GET /complaints?scope=...`, ASSUMED in the wire
    /// contract) does not exist: it answers `404` whatever the tokens.
    #[serde(default)]
    pub missing_list_endpoint: Option<bool>,
}

pub const DEFAULT_ERROR_STATUS: u16 = 503;
pub const DEFAULT_TIMEOUT_HOLD_MS: u64 = 60_000;
pub const DEFAULT_SLOW_COMMIT_MS: u64 = 5_000;

impl FaultSet {
    /// Checks ranges and fills the defaults of `error_status` and
    /// `timeout_hold_ms`.
    pub fn normalized(mut self) -> Result<Self, String> {
        for (key, rate) in [
            ("error_rate", self.error_rate),
            ("html_error_rate", self.html_error_rate),
            ("timeout_rate", self.timeout_rate),
            ("drop_after_commit_rate", self.drop_after_commit_rate),
            ("malformed_rate", self.malformed_rate),
            ("slow_commit_rate", self.slow_commit_rate),
        ] {
            if let Some(rate) = rate
                && !(rate.is_finite() && (0.0..=1.0).contains(&rate))
            {
                return Err(format!("{key} must be within 0..1"));
            }
        }
        let status = self.error_status.unwrap_or(DEFAULT_ERROR_STATUS);
        if !(400..=599).contains(&status) {
            return Err("error_status must be within 400..599".into());
        }
        self.error_status = Some(status);
        if let Some([min, max]) = self.latency_ms
            && (min > max || max > 600_000)
        {
            return Err("latency_ms must be [min, max] with min <= max <= 600000".into());
        }
        let hold = self.timeout_hold_ms.unwrap_or(DEFAULT_TIMEOUT_HOLD_MS);
        if hold > 600_000 {
            return Err("timeout_hold_ms must be at most 600000".into());
        }
        self.timeout_hold_ms = Some(hold);
        let slow = self.slow_commit_ms.unwrap_or(DEFAULT_SLOW_COMMIT_MS);
        if slow > 600_000 {
            return Err("slow_commit_ms must be at most 600000".into());
        }
        self.slow_commit_ms = Some(slow);
        if let Some(rate) = self.rate_limit_per_sec
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("rate_limit_per_sec must be positive".into());
        }
        Ok(self)
    }
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        let capacity = rate.max(1.0);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Default)]
struct FaultState {
    set: Arc<FaultSet>,
    bucket: Option<Bucket>,
}

/// The current fault set and its rate limiter.
#[derive(Debug, Default)]
pub struct Faults(Mutex<FaultState>);

impl Faults {
    pub fn set(&self, set: FaultSet) {
        let bucket = set.rate_limit_per_sec.map(Bucket::new);
        *lock(&self.0) = FaultState {
            set: Arc::new(set),
            bucket,
        };
    }

    pub fn current(&self) -> FaultSet {
        (*lock(&self.0).set).clone()
    }

    /// Whether writes to LAPOR! complaint `id` answer `403`.
    pub fn forbidden(&self, id: i64) -> bool {
        lock(&self.0)
            .set
            .forbidden_complaints
            .as_ref()
            .is_some_and(|ids| ids.contains(&id))
    }

    /// The set for this request, and whether the rate limit lets it in.
    fn admit(&self) -> (Arc<FaultSet>, bool) {
        let mut state = lock(&self.0);
        let admitted = state.bucket.as_mut().is_none_or(Bucket::take);
        (state.set.clone(), admitted)
    }
}

/// Request counts by endpoint name and HTTP status (`dropped` for a
/// connection closed without a response), and the requests received but not
/// answered yet (tests wait on it to know a call is on the wire).
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<HashMap<(&'static str, u16), u64>>,
    in_flight: std::sync::atomic::AtomicU64,
}

/// Counts a request as in flight until it is dropped, answered or not.
struct InFlight<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicU64) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The status recorded for a dropped connection.
const DROPPED: u16 = 0;

impl Stats {
    fn record(&self, endpoint: &'static str, status: u16) {
        *lock(&self.counts).entry((endpoint, status)).or_insert(0) += 1;
    }

    pub fn clear(&self) {
        lock(&self.counts).clear();
    }

    pub fn json(&self) -> serde_json::Value {
        let mut by_endpoint: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for ((endpoint, status), count) in lock(&self.counts).iter() {
            let key = if *status == DROPPED {
                "dropped".to_string()
            } else {
                status.to_string()
            };
            *by_endpoint
                .entry(endpoint)
                .or_default()
                .entry(key)
                .or_insert(0) += count;
        }
        let in_flight = self.in_flight.load(std::sync::atomic::Ordering::SeqCst);
        json!({ "requests": by_endpoint, "in_flight": in_flight })
    }
}

/// The endpoint name used in the statistics, from the path with or without
/// the `/api` prefix.
pub fn classify(method: &Method, path: &str) -> &'static str {
    let path = path
        .strip_prefix("/api")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["masters", "institutions", "external"] => "institutions",
        ["complaints", "complaint", "file"] => "upload",
        ["complaints", "complaint" | "complaint-lmw"] => "create",
        ["complaints", "followup", "add"] => "followup_add",
        ["complaints", "process", _, "reject"] => "forward",
        ["complaints", _, "complaint"] => "detail",
        ["complaints", _, "followups"] => "followups",
        ["complaints"] if method == Method::GET => "list",
        _ => "other",
    }
}

fn hit(rate: Option<f64>) -> bool {
    rate.is_some_and(|p| p > 0.0 && rand::random::<f64>() < p)
}

fn html(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn truncated(body: &[u8]) -> Response {
    // A JSON object without its closing brace is never valid JSON.
    let text = String::from_utf8_lossy(body);
    let mut cut = text.len() / 2;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let body = if text.starts_with('{') && cut > 0 {
        text[..cut].to_string()
    } else {
        r#"{"success":true,"message":"Laporan berhasil dib"#.to_string()
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The endpoints that change LAPOR!'s state.
fn is_write(endpoint: &str) -> bool {
    matches!(endpoint, "upload" | "create" | "followup_add" | "forward")
}

/// Answers `504` now and applies the request `slow_commit_ms` later: the body
/// is read first, so the request is whole when it is applied.
async fn slow_commit(sim: &Shared, set: &FaultSet, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::BODY_LIMIT_BYTES).await else {
        return html(StatusCode::GATEWAY_TIMEOUT);
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let delay = Duration::from_millis(set.slow_commit_ms.unwrap_or(DEFAULT_SLOW_COMMIT_MS));
    let shutdown = sim.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        let response = next.run(request).await;
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    });
    html(StatusCode::GATEWAY_TIMEOUT)
}

/// The connection task ends without a response: the request was applied but
/// the client sees the connection close. `resume_unwind` does not run the
/// panic hook, so nothing is printed.
struct DroppedConnection;

/// Middleware in front of every LAPOR! endpoint: statistics, rate limit,
/// latency and the other faults, in that order.
pub async fn gate(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    let endpoint = classify(request.method(), request.uri().path());
    let _in_flight = InFlight::enter(&sim.stats.in_flight);
    let (set, admitted) = sim.faults.admit();
    let response = if endpoint == "list" && set.missing_list_endpoint == Some(true) {
        error_response(StatusCode::NOT_FOUND, "Not Found")
    } else if admitted {
        faulted(&sim, &set, endpoint, request, next).await
    } else {
        let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    };
    sim.stats.record(endpoint, response.status().as_u16());
    response
}

async fn faulted(
    sim: &Shared,
    set: &FaultSet,
    endpoint: &'static str,
    request: Request,
    next: Next,
) -> Response {
    if let Some([min, max]) = set.latency_ms
        && max > 0
    {
        let ms = if min == max {
            min
        } else {
            rand::random_range(min..=max)
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if hit(set.timeout_rate) {
        let hold = set.timeout_hold_ms.unwrap_or(DEFAULT_TIMEOUT_HOLD_MS);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(hold)) => {}
            _ = sim.shutdown.cancelled() => {}
        }
        return html(StatusCode::GATEWAY_TIMEOUT);
    }
    if hit(set.error_rate) {
        let status = StatusCode::from_u16(set.error_status.unwrap_or(DEFAULT_ERROR_STATUS))
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error_response(status, status.canonical_reason().unwrap_or("Error"));
    }
    if hit(set.html_error_rate) {
        return html(StatusCode::BAD_GATEWAY);
    }
    if hit(set.malformed_rate) {
        if request.method() == Method::GET {
            let response = next.run(request).await;
            if response.status().is_success()
                && let Ok(body) = axum::body::to_bytes(response.into_body(), usize::MAX).await
            {
                return truncated(&body);
            }
        }
        return truncated(b"");
    }
    if is_write(endpoint) && hit(set.slow_commit_rate) {
        return slow_commit(sim, set, request, next).await;
    }
    if hit(set.drop_after_commit_rate) {
        let response = next.run(request).await;
        // Read the whole answer so that the request is completely applied.
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        sim.stats.record(endpoint, DROPPED);
        std::panic::resume_unwind(Box::new(DroppedConnection));
    }
    next.run(request).await
}
