//! The LAPOR! client: one typed call per endpoint of the wire contract, every
//! outcome classified (see [`LaporError`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;

use super::error::{FailureKind, LaporError, clean_message};
use super::settings::{AuthHeader, LaporSettings};
use super::status::StatusTable;
use super::timestamp;
use super::types::{self, FieldError};
use crate::metrics::Metrics;

/// Largest answer body read from LAPOR!; a larger one is malformed.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest page the list call asks for.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Attempts per page of a complete listing: reads are safe to repeat.
const PAGE_ATTEMPTS: usize = 3;
/// Passes of a complete listing before a list that keeps moving is an error.
const LIST_PASSES: usize = 3;

/// Whether a call changes state upstream: a lost answer to a write has an
/// unknown outcome, a lost answer to a read is simply retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

tokio::task_local! {
    /// Requests made by the task running a job (see [`counting`]).
    static REQUESTS: std::cell::Cell<u64>;
}

/// Runs `work` and counts the requests to LAPOR! it makes (in this task, not
/// in tasks it spawns): each run's summary says what it cost LAPOR!.
pub async fn counting<F: std::future::Future>(work: F) -> (F::Output, u64) {
    REQUESTS
        .scope(std::cell::Cell::new(0), async move {
            let out = work.await;
            (out, REQUESTS.with(std::cell::Cell::get))
        })
        .await
}

/// Which requests go first when the rate budget is short: the city's writes
/// (deliveries), then reads (pull, reconciliation, lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Write,
    Read,
}

/// Spaces requests evenly so that the process never sends more than the
/// configured number a second, across every task that shares it. A write
/// takes the next free slot at once; a read only takes a slot that is free
/// now, so reads never queue ahead of a write that comes later. While reads
/// wait, one slot in five is kept for them, so they are slowed, never
/// starved.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    slots: Mutex<Slots>,
}

#[derive(Debug)]
struct Slots {
    /// The first slot nobody holds.
    next: Instant,
    reads_waiting: usize,
    /// Slots given to writes in a row while reads waited.
    writes_in_row: u32,
    /// Slots set aside for reads, oldest first.
    read_slots: std::collections::VecDeque<Instant>,
}

/// Of every this many slots, reads that wait get at least one.
const READ_SHARE: u32 = 5;

/// Counts a read as waiting until it has its slot (or is dropped).
struct WaitingRead<'a>(&'a RateLimiter);

impl Drop for WaitingRead<'_> {
    fn drop(&mut self) {
        self.0.lock().reads_waiting -= 1;
    }
}

impl RateLimiter {
    pub fn per_second(rate: u32) -> Option<Arc<Self>> {
        (rate > 0).then(|| {
            Arc::new(Self {
                interval: Duration::from_secs(1) / rate,
                slots: Mutex::new(Slots {
                    next: Instant::now(),
                    reads_waiting: 0,
                    writes_in_row: 0,
                    read_slots: std::collections::VecDeque::new(),
                }),
            })
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot for one request.
    pub async fn acquire(&self, priority: Priority) {
        let slot = match priority {
            Priority::Write => self.write_slot(),
            Priority::Read => self.read_slot().await,
        };
        tokio::time::sleep_until(slot).await;
    }

    fn write_slot(&self) -> Instant {
        let mut s = self.lock();
        let now = Instant::now();
        if s.reads_waiting > s.read_slots.len() && s.writes_in_row + 1 >= READ_SHARE {
            let kept = s.next.max(now);
            s.read_slots.push_back(kept);
            s.next = kept + self.interval;
            s.writes_in_row = 0;
        }
        let slot = s.next.max(now);
        s.next = slot + self.interval;
        if s.reads_waiting > 0 {
            s.writes_in_row += 1;
        }
        slot
    }

    async fn read_slot(&self) -> Instant {
        self.lock().reads_waiting += 1;
        let _waiting = WaitingRead(self);
        loop {
            let retry_at = {
                let mut s = self.lock();
                let now = Instant::now();
                // A kept slot long past (its read went away) is not spent
                // now: that would exceed the budget.
                while let Some(kept) = s.read_slots.pop_front() {
                    if kept + self.interval >= now {
                        return kept;
                    }
                }
                if s.next <= now {
                    s.next = now + self.interval;
                    s.writes_in_row = 0;
                    return now;
                }
                s.next
            };
            // Another request may take that slot first: look again then.
            tokio::time::sleep_until(retry_at).await;
        }
    }
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct FileToUpload {
    pub file_name: String,
    pub content: Vec<u8>,
}

#[derive(Clone)]
pub struct LaporClient {
    http: reqwest::Client,
    base_url: String,
    create_path: String,
    headers: HeaderMap,
    secrets: Arc<[SecretString; 2]>,
    statuses: Arc<StatusTable>,
    limiter: Option<Arc<RateLimiter>>,
    metrics: Arc<Metrics>,
    institution_id: i64,
}

impl std::fmt::Debug for LaporClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaporClient")
            .field("base_url", &self.base_url)
            .field("institution_id", &self.institution_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("a LAPOR! token contains characters that cannot go in an HTTP header")]
    BadToken,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// reqwest is built without a TLS crypto provider; install ring once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn sensitive(value: &str) -> Result<HeaderValue, ClientBuildError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientBuildError::BadToken)?;
    v.set_sensitive(true);
    Ok(v)
}

/// What one answer showed besides its body: for `lapor-bridge doctor`.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    /// LAPOR!'s `Date` header.
    pub date: Option<DateTime<Utc>>,
    /// This machine's clock when the answer's headers arrived.
    pub received_at: Option<DateTime<Utc>>,
    /// The answer was an HTML page.
    pub html: bool,
    /// The server's certificate (DER), over https with a client built by
    /// [`LaporClient::for_probes`].
    pub peer_certificate: Option<Vec<u8>>,
}

/// A read call's outcome and what its answer showed.
#[derive(Debug)]
pub struct Probe<T> {
    pub result: Result<T, LaporError>,
    pub seen: Seen,
}

impl LaporClient {
    pub fn new(
        settings: &LaporSettings,
        timeout: Duration,
        rate_limit_per_sec: u32,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ClientBuildError> {
        Self::build(settings, timeout, rate_limit_per_sec, metrics, false)
    }

    /// A client for read-only probes (`lapor-bridge doctor`): it also keeps
    /// the server's TLS certificate of each answer.
    pub fn for_probes(
        settings: &LaporSettings,
        timeout: Duration,
        rate_limit_per_sec: u32,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ClientBuildError> {
        Self::build(settings, timeout, rate_limit_per_sec, metrics, true)
    }

    fn build(
        settings: &LaporSettings,
        timeout: Duration,
        rate_limit_per_sec: u32,
        metrics: Arc<Metrics>,
        tls_info: bool,
    ) -> Result<Self, ClientBuildError> {
        install_crypto_provider();
        let mut headers = HeaderMap::new();
        let api = settings.api_token.expose_secret();
        match settings.auth_header {
            AuthHeader::AuthorizationBearer => {
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Bearer {api}"))?,
                );
            }
            AuthHeader::Auth => {
                headers.insert(HeaderName::from_static("auth"), sensitive(api)?);
            }
        }
        headers.insert(
            HeaderName::from_static("token"),
            sensitive(settings.instansi_token.expose_secret())?,
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lapor-bridge/", env!("CARGO_PKG_VERSION")))
            .tls_info(tls_info)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            create_path: settings.create_path.clone(),
            headers,
            secrets: Arc::new([settings.api_token.clone(), settings.instansi_token.clone()]),
            statuses: Arc::new(StatusTable::with_overrides(&settings.status_names)),
            limiter: RateLimiter::per_second(rate_limit_per_sec),
            metrics,
            institution_id: settings.institution_id,
        })
    }

    pub fn institution_id(&self) -> i64 {
        self.institution_id
    }

    pub fn statuses(&self) -> &StatusTable {
        &self.statuses
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    fn clean(&self, raw: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(|s| s.expose_secret()).collect();
        clean_message(raw, &secrets)
    }

    // ---- endpoints ---------------------------------------------------

    pub async fn institutions(&self) -> Result<Vec<types::Institution>, LaporError> {
        let req = self
            .http
            .get(self.url("/masters/institutions/external"))
            .query(&[("page", "1"), ("page_size", "1000")]);
        // The token probe: a 403 here is about the account, not a complaint.
        let doc = self
            .call("institutions", Mode::Read, req)
            .await
            .map_err(|e| match e {
                LaporError::Permanent {
                    kind: FailureKind::Forbidden,
                    status,
                    message,
                    ..
                } => LaporError::Unauthorized { status, message },
                other => other,
            })?;
        self.typed(Mode::Read, types::parse_institutions(&doc))
    }

    pub async fn upload(
        &self,
        files: &[FileToUpload],
    ) -> Result<Vec<types::UploadedFile>, LaporError> {
        let mut form = reqwest::multipart::Form::new();
        for file in files {
            let part = reqwest::multipart::Part::bytes(file.content.clone())
                .file_name(file.file_name.clone());
            form = form.part("attachments[]", part);
        }
        let req = self
            .http
            .post(self.url("/complaints/complaint/file"))
            .multipart(form);
        let doc = self.call("upload", Mode::Write, req).await?;
        self.typed(Mode::Write, types::parse_uploaded(&doc))
    }

    pub async fn create(&self, new: &types::NewComplaint) -> Result<types::Created, LaporError> {
        let req = self
            .http
            .post(self.url(&self.create_path))
            .json(&new.to_wire());
        let doc = self.call("create", Mode::Write, req).await?;
        self.typed(Mode::Write, types::parse_created(&doc))
    }

    pub async fn complaint(&self, id: i64) -> Result<types::ComplaintDetail, LaporError> {
        let req = self
            .http
            .get(self.url(&format!("/complaints/{id}/complaint")));
        let doc = self.call("complaint", Mode::Read, req).await?;
        self.typed(Mode::Read, types::parse_complaint(&doc, &self.statuses))
    }

    pub async fn followups(&self, id: i64) -> Result<Vec<types::Followup>, LaporError> {
        let req = self
            .http
            .get(self.url(&format!("/complaints/{id}/followups")));
        let doc = self.call("followups", Mode::Read, req).await?;
        self.typed(Mode::Read, types::parse_followups(&doc))
    }

    pub async fn add_followup(&self, new: &types::NewFollowup) -> Result<i64, LaporError> {
        let form = reqwest::multipart::Form::new()
            .text("complaint_id", new.complaint_id.to_string())
            .text("institution_from_id", new.institution_from_id.to_string())
            .text("institution_to_id", new.institution_to_id.to_string())
            .text("content", new.content.clone())
            .text("is_secret", u8::from(new.is_secret).to_string())
            .text("template_code", "")
            .text("rating", "0")
            .text("info_disposition", "");
        let req = self
            .http
            .post(self.url("/complaints/followup/add"))
            .multipart(form);
        let doc = self.call("followup_add", Mode::Write, req).await?;
        self.typed(Mode::Write, types::parse_followup_added(&doc))
    }

    pub async fn forward(&self, forward: &types::Forward) -> Result<(), LaporError> {
        let req = self
            .http
            .post(self.url(&format!(
                "/complaints/process/{}/reject",
                forward.complaint_id
            )))
            .json(&forward.to_wire());
        self.call("forward", Mode::Write, req).await.map(|_| ())
    }

    pub async fn list(
        &self,
        scope: types::Scope,
        updated_from: DateTime<Utc>,
        page: i64,
        page_size: i64,
    ) -> Result<types::SummaryPage, LaporError> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let req = self.http.get(self.url("/complaints")).query(&[
            ("scope", scope.as_str().to_string()),
            ("updated_from", timestamp::format_datetime(updated_from)),
            ("page", page.to_string()),
            ("page_size", page_size.to_string()),
        ]);
        let doc = self.call("list", Mode::Read, req).await?;
        self.typed(Mode::Read, types::parse_summary_page(&doc, &self.statuses))
    }

    /// Every complaint of `scope` updated since `updated_from`, all pages.
    ///
    /// LAPOR! pages by offset over a list ordered by `updated_at`. A
    /// complaint updated while the pages are read moves to the end, and
    /// every complaint behind it shifts one place: the next page would skip
    /// one. A pass that shows such a move (an id seen twice, or a total that
    /// shrank) is read again from the start; after [`LIST_PASSES`] moving
    /// passes the answer is a retryable error, never a silently short list.
    /// New complaints only append, so a growing total is no move.
    pub async fn list_all(
        &self,
        scope: types::Scope,
        updated_from: DateTime<Utc>,
    ) -> Result<Vec<types::ComplaintSummary>, LaporError> {
        'pass: for _ in 0..LIST_PASSES {
            let mut out: Vec<types::ComplaintSummary> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut total: Option<i64> = None;
            let mut page = 1;
            loop {
                let found = self.list_page(scope, updated_from, page).await?;
                let shrank = total.is_some_and(|t| found.total < t);
                if shrank || !found.items.iter().all(|s| seen.insert(s.id)) {
                    continue 'pass;
                }
                total = Some(found.total);
                let done = found.items.is_empty() || page * found.page_size >= found.total;
                out.extend(found.items);
                if done {
                    return Ok(out);
                }
                page += 1;
            }
        }
        Err(LaporError::Retryable {
            kind: FailureKind::ListingMoved,
            status: None,
            retry_after: None,
            message: format!(
                "the {} listing kept moving while it was read",
                scope.as_str()
            ),
        })
    }

    /// One page of a complete listing, retried at once on a retryable error.
    async fn list_page(
        &self,
        scope: types::Scope,
        updated_from: DateTime<Utc>,
        page: i64,
    ) -> Result<types::SummaryPage, LaporError> {
        let mut attempt = 1;
        loop {
            match self.list(scope, updated_from, page, MAX_PAGE_SIZE).await {
                Err(LaporError::Retryable { .. }) if attempt < PAGE_ATTEMPTS => attempt += 1,
                answer => return answer,
            }
        }
    }

    // ---- read-only probes (`lapor-bridge doctor`) --------------------
    // Only GET requests: a probe never changes anything on LAPOR!.

    /// The institutions list: whether LAPOR! accepts the tokens.
    pub async fn probe_institutions(&self) -> Probe<Vec<types::Institution>> {
        let req = self
            .http
            .get(self.url("/masters/institutions/external"))
            .query(&[("page", "1"), ("page_size", "1000")]);
        self.probe("institutions", req, types::parse_institutions)
            .await
    }

    /// One page of a listing from the start of time: whether the list
    /// endpoint exists for `scope` and how it pages.
    pub async fn probe_list(
        &self,
        scope: types::Scope,
        page_size: i64,
    ) -> Probe<types::SummaryPage> {
        let from = DateTime::<Utc>::UNIX_EPOCH;
        let req = self.http.get(self.url("/complaints")).query(&[
            ("scope", scope.as_str().to_string()),
            ("updated_from", timestamp::format_datetime(from)),
            ("page", "1".to_string()),
            ("page_size", page_size.clamp(1, MAX_PAGE_SIZE).to_string()),
        ]);
        let statuses = self.statuses.clone();
        self.probe("list", req, move |doc| {
            types::parse_summary_page(doc, &statuses)
        })
        .await
    }

    pub async fn probe_complaint(&self, id: i64) -> Probe<types::ComplaintDetail> {
        let req = self
            .http
            .get(self.url(&format!("/complaints/{id}/complaint")));
        let statuses = self.statuses.clone();
        self.probe("complaint", req, move |doc| {
            types::parse_complaint(doc, &statuses)
        })
        .await
    }

    pub async fn probe_followups(&self, id: i64) -> Probe<Vec<types::Followup>> {
        let req = self
            .http
            .get(self.url(&format!("/complaints/{id}/followups")));
        self.probe("followups", req, types::parse_followups).await
    }

    /// A GET on the create path: a route that only takes POST answers
    /// `405`, a path that does not exist `404`. Nothing is created.
    pub async fn probe_create_path(&self) -> Probe<()> {
        let req = self.http.get(self.url(&self.create_path));
        self.probe("create_path", req, |_| Ok(())).await
    }

    /// The configured create path (relative to the base URL).
    pub fn create_path(&self) -> &str {
        &self.create_path
    }

    async fn probe<T>(
        &self,
        endpoint: &'static str,
        req: reqwest::RequestBuilder,
        parse: impl FnOnce(&Value) -> Result<T, FieldError>,
    ) -> Probe<T> {
        let mut seen = Seen::default();
        let result = match self.call_seen(endpoint, Mode::Read, req, &mut seen).await {
            Ok(doc) => self.typed(Mode::Read, parse(&doc)),
            Err(e) => Err(e),
        };
        Probe { result, seen }
    }

    // ---- transport and classification --------------------------------

    fn typed<T>(&self, mode: Mode, parsed: Result<T, FieldError>) -> Result<T, LaporError> {
        parsed.map_err(|e| self.unparseable(mode, e.to_string(), Some(200)))
    }

    fn unparseable(&self, mode: Mode, message: String, status: Option<u16>) -> LaporError {
        let message = self.clean(&message);
        match mode {
            Mode::Read => LaporError::malformed(message, status),
            // The write was answered with success: it happened, but we could
            // not read what it made.
            Mode::Write => LaporError::UnknownOutcome {
                kind: FailureKind::Malformed,
                status,
                message,
            },
        }
    }

    async fn call(
        &self,
        endpoint: &'static str,
        mode: Mode,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, LaporError> {
        self.call_seen(endpoint, mode, req, &mut Seen::default())
            .await
    }

    async fn call_seen(
        &self,
        endpoint: &'static str,
        mode: Mode,
        req: reqwest::RequestBuilder,
        seen: &mut Seen,
    ) -> Result<Value, LaporError> {
        if let Some(limiter) = &self.limiter {
            limiter
                .acquire(match mode {
                    Mode::Write => Priority::Write,
                    Mode::Read => Priority::Read,
                })
                .await;
        }
        let _ = REQUESTS.try_with(|n| n.set(n.get() + 1));
        let started = std::time::Instant::now();
        let result = self
            .exchange(mode, req.headers(self.headers.clone()), seen)
            .await;
        let status = match &result {
            Ok(_) => "2xx".to_string(),
            Err(e) => e
                .status()
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.kind().as_str().to_string()),
        };
        self.metrics.inc(
            "lapor_requests_total",
            &[("endpoint", endpoint), ("status", &status)],
        );
        self.metrics.observe(
            "lapor_request_duration_seconds",
            &[("endpoint", endpoint)],
            started.elapsed(),
        );
        result
    }

    /// One request and its answer, classified: a JSON object on success,
    /// otherwise the [`LaporError`] the status and body call for.
    async fn exchange(
        &self,
        mode: Mode,
        req: reqwest::RequestBuilder,
        seen: &mut Seen,
    ) -> Result<Value, LaporError> {
        let response = req.send().await.map_err(|e| self.transport(mode, &e))?;
        let status = response.status().as_u16();
        observe(&response, seen);
        let retry_after = retry_after(response.headers());
        let is_html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        let body = self.read_body(mode, status, response).await?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            seen.html = is_html || (json.is_none() && looks_like_html(&body));
            return self.success(mode, status, json, &body, is_html);
        }
        let message = self.clean(&remote_message(json.as_ref(), &body, is_html));
        let html_page = is_html || (json.is_none() && looks_like_html(&body));
        seen.html = html_page;
        Err(match status {
            401 => LaporError::Unauthorized { status, message },
            // A server or gateway error on a write: the backend may have gone
            // on and committed it (PHP keeps running after nginx answered
            // 504; a CDN's 524 says the origin still runs). Only 503 says
            // the request was not taken on.
            500..=599 if status != 503 && mode == Mode::Write => LaporError::UnknownOutcome {
                kind: if html_page {
                    FailureKind::HtmlError
                } else {
                    FailureKind::ServerError
                },
                status: Some(status),
                message,
            },
            429 => LaporError::Retryable {
                kind: FailureKind::RateLimited,
                status: Some(status),
                retry_after,
                message,
            },
            500..=599 => LaporError::Retryable {
                kind: if html_page {
                    FailureKind::HtmlError
                } else {
                    FailureKind::ServerError
                },
                status: Some(status),
                retry_after,
                message,
            },
            400..=499 => LaporError::Permanent {
                kind: client_error_kind(status),
                status,
                message,
                field_errors: json
                    .as_ref()
                    .map(|d| self.field_errors(d))
                    .unwrap_or_default(),
            },
            _ => LaporError::Permanent {
                kind: FailureKind::OtherClientError,
                status,
                message: format!("unexpected HTTP status {status}: {message}"),
                field_errors: Default::default(),
            },
        })
    }

    /// The answer's body, at most [`MAX_BODY_BYTES`]. A connection lost
    /// while reading a success answer is an error (of unknown outcome for a
    /// write); while reading an error answer, an empty body.
    async fn read_body(
        &self,
        mode: Mode,
        status: u16,
        response: reqwest::Response,
    ) -> Result<Vec<u8>, LaporError> {
        match read_limited(response).await {
            Ok(body) => Ok(body),
            Err(BodyError::TooLarge) => Err(self.unparseable(
                mode,
                format!("answer body larger than {MAX_BODY_BYTES} bytes"),
                Some(status),
            )),
            Err(BodyError::Transport(e)) => {
                if (200..300).contains(&status) {
                    return Err(match mode {
                        Mode::Read => LaporError::Retryable {
                            kind: FailureKind::ConnectionLost,
                            status: Some(status),
                            retry_after: None,
                            message: self.clean(&e.to_string()),
                        },
                        Mode::Write => LaporError::UnknownOutcome {
                            kind: FailureKind::ConnectionLost,
                            status: Some(status),
                            message: self.clean(&e.to_string()),
                        },
                    });
                }
                Ok(Vec::new())
            }
        }
    }

    /// A success status: the document, when it is a JSON object that does
    /// not say `"success": false`.
    fn success(
        &self,
        mode: Mode,
        status: u16,
        json: Option<Value>,
        body: &[u8],
        is_html: bool,
    ) -> Result<Value, LaporError> {
        let Some(doc) = json.filter(|d| d.is_object()) else {
            let what = if is_html {
                "an HTML page"
            } else {
                "a body that is not JSON"
            };
            return Err(self.unparseable(
                mode,
                format!("success answer with {what} ({} bytes)", body.len()),
                Some(status),
            ));
        };
        if doc.get("success") == Some(&Value::Bool(false)) {
            return Err(LaporError::Permanent {
                kind: FailureKind::OtherClientError,
                status,
                message: self.clean(&remote_message(Some(&doc), body, is_html)),
                field_errors: Default::default(),
            });
        }
        Ok(doc)
    }

    fn field_errors(&self, doc: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(Value::Object(errors)) = doc.get("errors") {
            for (field, msgs) in errors {
                let msgs = match msgs {
                    Value::Array(items) => items
                        .iter()
                        .map(|m| self.clean(m.as_str().unwrap_or(&m.to_string())))
                        .collect(),
                    other => vec![self.clean(other.as_str().unwrap_or(&other.to_string()))],
                };
                out.insert(self.clean(field), msgs);
            }
        }
        out
    }

    fn transport(&self, mode: Mode, e: &reqwest::Error) -> LaporError {
        // Which LAPOR! could not be reached: host and port first.
        let at = e
            .url()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
        let message = match at {
            Some(at) => self.clean(&format!("{at}: {}", error_chain(e))),
            None => self.clean(&error_chain(e)),
        };
        if e.is_connect() {
            // Never reached LAPOR!: nothing can have been applied.
            return LaporError::Retryable {
                kind: FailureKind::Connect,
                status: None,
                retry_after: None,
                message,
            };
        }
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else {
            FailureKind::ConnectionLost
        };
        match mode {
            Mode::Read => LaporError::Retryable {
                kind,
                status: None,
                retry_after: None,
                message,
            },
            Mode::Write => LaporError::UnknownOutcome {
                kind,
                status: None,
                message,
            },
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110), bounded by an
/// hour; a date in the past means now.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    const MAX: u64 = 3600;
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(MAX)));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    let secs = (at - now).num_seconds().clamp(0, MAX as i64);
    Some(Duration::from_secs(secs as u64))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an answer shows besides its body: status, arrival, LAPOR!'s `Date`
/// and the peer's certificate (for `doctor`).
fn observe(response: &reqwest::Response, seen: &mut Seen) {
    seen.status = Some(response.status().as_u16());
    seen.received_at = Some(Utc::now());
    seen.date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.with_timezone(&Utc));
    seen.peer_certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec);
}

/// `Retry-After`, in seconds or as an HTTP date. The date is read against
/// LAPOR!'s own `Date`, so that this machine's clock does not matter.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map_or_else(Utc::now, |d| d.with_timezone(&Utc));
    parse_retry_after(value, now)
}

/// The kind of a 4xx other than 401 and 429.
fn client_error_kind(status: u16) -> FailureKind {
    match status {
        400 => FailureKind::BadRequest,
        // The account may not act on this complaint (forwarded away,
        // another institution's): the tokens are fine.
        403 => FailureKind::Forbidden,
        404 => FailureKind::NotFound,
        409 => FailureKind::Conflict,
        413 => FailureKind::TooLarge,
        422 => FailureKind::Validation,
        _ => FailureKind::OtherClientError,
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_lowercase();
    head.contains("<html") || head.contains("<!doctype html")
}

/// LAPOR!'s `message`, or a short description of a body that has none.
fn remote_message(json: Option<&Value>, body: &[u8], is_html: bool) -> String {
    if let Some(msg) = json.and_then(|d| d.get("message")).and_then(Value::as_str) {
        return msg.to_string();
    }
    if is_html || looks_like_html(body) {
        let text = String::from_utf8_lossy(body);
        let title = text
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.trim().to_string());
        return match title {
            Some(t) if !t.is_empty() => format!("HTML error page: {t}"),
            _ => "HTML error page".to_string(),
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
    if text.trim().is_empty() {
        "empty body".to_string()
    } else {
        text
    }
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
