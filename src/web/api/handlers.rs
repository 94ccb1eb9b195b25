//! Route handlers: thin translations between HTTP and the actions.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::{ApiError, AppState, ErrorBody, caller_name};
use crate::actions::{self, StepAction};
use crate::domain::{StepState, SyncState};
use crate::feed;
use crate::params::{self, ParamErrors};
use crate::status_document::{Page, StatusDocument};
use crate::store::{audit, complaints, outbox, webhooks};
use crate::submit_document::SubmitDocument;

/// A query string read as `T` (see [`crate::params::query`]): unknown,
/// repeated or unparsable parameters answer `400` naming each one, in JSON
/// like every other error.
pub struct Q<T>(pub T);
/// `Path` whose rejection answers in JSON like every other error.
pub struct P<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Q(crate::params::query(parts.uri.query())?))
    }
}

/// For routes that take no query parameters: any parameter is a `400`
/// naming it (a misspelt filter must not be ignored silently).
#[derive(Debug, Deserialize)]
pub struct NoQuery {}

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A JSON body: `400` when it is not JSON, `422` naming every field whose
/// text (or key) holds a NUL character, which no stored text may hold.
fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let with_nul = actions::fields_with_nul(&value);
    if !with_nul.is_empty() {
        return Err(ApiError::Invalid(with_nul));
    }
    Ok(value)
}

/// Submit a complaint
///
/// Stores the complaint and its delivery to LAPOR! in one transaction.
/// Idempotent on `local_ref`: the same document again answers `200` with the
/// same status document; another document under the same `local_ref`
/// answers `409`. An intake token sees only the complaints it submitted.
#[utoipa::path(
    post,
    path = "/api/v1/complaints",
    tag = "complaints",
    request_body = SubmitDocument,
    responses(
        (status = 201, description = "Stored; delivery to LAPOR! follows", body = StatusDocument),
        (status = 200, description = "The same document was submitted before", body = StatusDocument),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 409, description = "`local_ref` already holds another complaint", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named in `fields`", body = ErrorBody),
    ),
)]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let doc = parse_json(&body)?;
    let (created, status) = actions::submit(&state.bridge, &doc, &caller_name(&caller)).await?;
    // The same document again answers only to the token that submitted it;
    // another intake token learns no more than that the reference is taken.
    if !created && !owns(&state, &caller, &status.local_ref).await? {
        return Err(ApiError::Conflict(
            "local_ref already holds another complaint".into(),
        ));
    }
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(status)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `synced`, `retrying`, `dead` or `conflict`.
    sync_state: Option<String>,
    /// The bridge's status name (e.g. `in_process`).
    status: Option<String>,
    /// Search in local reference, title and LAPOR! ids.
    q: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<i64>,
}

/// List complaints with their sync state
///
/// Reporters are masked.
#[utoipa::path(
    get,
    path = "/api/v1/complaints",
    tag = "complaints",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of status documents", body = Page<StatusDocument>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
    ),
)]
pub async fn list_complaints(
    State(state): State<AppState>,
    Q(query): Q<ListQuery>,
) -> Result<Json<Page<StatusDocument>>, ApiError> {
    let sync_state = params::parse_code("sync_state", query.sync_state.as_deref(), || {
        let codes: Vec<&str> = SyncState::ALL.iter().map(|s| s.as_str()).collect();
        format!("must be one of {}", codes.join(", "))
    })?;
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let filter = complaints::ListFilter {
        sync_state,
        status: query.status.filter(|s| !s.is_empty()),
        search: query.q.filter(|s| !s.is_empty()),
    };
    let (rows, total) =
        complaints::list(&state.bridge.pool, &filter, paging.offset, paging.size).await?;
    let items = rows
        .iter()
        .map(|r| actions::masked_document(&state.bridge, r))
        .collect();
    Ok(Json(Page {
        items,
        total,
        page: paging.page,
        page_size: paging.size,
    }))
}

/// One complaint's status document
///
/// The reporter unmasked for operators and admins (of an anonymous or
/// secret complaint, admins only), recorded in the audit log as
/// `pii_viewed`.
#[utoipa::path(
    get,
    path = "/api/v1/complaints/{local_ref}",
    tag = "complaints",
    params(("local_ref" = String, Path, description = "The complaint's local reference (`LAPOR-<id>` for one imported from LAPOR!)")),
    responses(
        (status = 200, description = "The status document", body = StatusDocument),
        (status = 404, description = "No such complaint", body = ErrorBody),
    ),
)]
pub async fn complaint(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
) -> Result<Json<StatusDocument>, ApiError> {
    Ok(Json(
        actions::status_for(
            &state.bridge,
            &local_ref,
            caller.role,
            &caller_name(&caller),
        )
        .await?,
    ))
}

/// The body of an erasure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// Why (e.g. the data subject's request and its date): kept in the audit
    /// log for good, so it names the request, not the person. 1-2000
    /// characters after trimming.
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// Erase a complaint's reporter identity
///
/// For good, on a data subject's request; the complaint stays. Audited as
/// `pii_erased`. `already_erased` is true when it was erased before.
#[utoipa::path(
    post,
    path = "/api/v1/complaints/{local_ref}/erase",
    tag = "complaints",
    params(("local_ref" = String, Path, description = "The complaint's local reference")),
    request_body = EraseBody,
    responses(
        (status = 200, description = "Erased (or erased before)", body = crate::actions::ErasureOutcome),
        (status = 404, description = "No such complaint", body = ErrorBody),
        (status = 422, description = "A bad or missing `reason`", body = ErrorBody),
    ),
)]
pub async fn erase_reporter(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Json<actions::ErasureOutcome>, ApiError> {
    let (map, mut errors) = body_object(&body, &["reason"])?;
    required_string(&map, "reason", &mut errors);
    let body: EraseBody = typed(map, errors)?;
    let outcome = actions::erase_reporter(
        &state.bridge,
        &local_ref,
        &body.reason,
        &caller_name(&caller),
    )
    .await?;
    Ok(Json(outcome))
}

/// A complaint and everything that happened to it, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub complaint: StatusDocument,
    /// Each event has `kind` (`attempt`, `followup`, `status_change`,
    /// `audit`) and `at`; the other members depend on the kind.
    pub events: Vec<Value>,
}

/// One complaint's timeline
///
/// Every delivery attempt, follow-up, status change and audit entry.
#[utoipa::path(
    get,
    path = "/api/v1/complaints/{local_ref}/timeline",
    tag = "complaints",
    params(("local_ref" = String, Path, description = "The complaint's local reference")),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 404, description = "No such complaint", body = ErrorBody),
    ),
)]
pub async fn timeline(
    State(state): State<AppState>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
) -> Result<Json<Timeline>, ApiError> {
    let pool = &state.bridge.pool;
    let row = complaints::by_ref(pool, &local_ref)
        .await?
        .ok_or(ApiError::NotFound)?;
    let attempts = outbox::attempt_events(pool, row.id).await?;
    let mut conn = pool.acquire().await?;
    let followups = complaints::followups_of(&mut conn, row.id).await?;
    drop(conn);
    let audit_entries = audit::of_complaint(pool, &local_ref).await?;
    let mut events: Vec<(DateTime<Utc>, Value)> = attempts;
    // One time format for every event (PostgreSQL's jsonb writes +00:00).
    for (at, v) in &mut events {
        v["at"] = json!(at);
    }
    for f in followups {
        let at = f.lapor_created_at.unwrap_or(f.created_at);
        let content = if f.is_secret {
            Value::Null
        } else {
            Value::String(f.content)
        };
        events.push((
            at,
            json!({"kind": "followup", "at": at, "origin": f.origin, "institution_id": f.institution_id,
                   "lapor_followup_id": f.lapor_followup_id, "is_secret": f.is_secret, "content": content}),
        ));
    }
    for e in audit_entries {
        let kind = if e.action.starts_with("inbound.complaint_changed") {
            "status_change"
        } else {
            "audit"
        };
        events.push((
            e.at,
            json!({"kind": kind, "at": e.at, "audit_id": e.id, "actor": e.actor, "action": e.action,
                   "before": e.before, "after": e.after}),
        ));
    }
    events.sort_by_key(|(at, _)| *at);
    Ok(Json(Timeline {
        complaint: actions::masked_document(&state.bridge, &row),
        events: events.into_iter().map(|(_, v)| v).collect(),
    }))
}

/// A JSON object body: 400 when it is not JSON; 422 naming each unknown
/// field (a misspelt `is_secret` must not publish a secret follow-up).
fn body_object(
    body: &Bytes,
    allowed: &[&str],
) -> Result<(serde_json::Map<String, Value>, FieldErrors), ApiError> {
    let Value::Object(map) = parse_json(body)? else {
        return Err(ApiError::Invalid(FieldErrors::from([(
            "body".to_string(),
            vec!["must be a JSON object".to_string()],
        )])));
    };
    let mut errors = FieldErrors::new();
    for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        add_error(&mut errors, k, "unknown field");
    }
    Ok((map, errors))
}

type FieldErrors = std::collections::BTreeMap<String, Vec<String>>;

fn add_error(errors: &mut FieldErrors, field: &str, message: &str) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.to_string());
}

fn required_string(map: &serde_json::Map<String, Value>, field: &str, errors: &mut FieldErrors) {
    if !matches!(map.get(field), Some(Value::String(_))) {
        add_error(errors, field, "required string");
    }
}

/// The typed body, once `errors` (every field checked and named) is empty.
fn typed<T: serde::de::DeserializeOwned>(
    map: serde_json::Map<String, Value>,
    errors: FieldErrors,
) -> Result<T, ApiError> {
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        ApiError::Invalid(FieldErrors::from([(
            "body".to_string(),
            vec![e.to_string()],
        )]))
    })
}

/// The body of a follow-up (tindak lanjut).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowupBody {
    /// 1-20000 characters after trimming.
    #[schema(min_length = 1, max_length = 20000)]
    pub content: String,
    /// Not public on LAPOR! (default false).
    #[serde(default)]
    pub is_secret: Option<bool>,
}

/// Add a follow-up (tindak lanjut)
///
/// Delivered to LAPOR! after the complaint's earlier steps, once LAPOR! has
/// verified the complaint. An intake token may follow up only the
/// complaints it submitted (others answer `404`).
#[utoipa::path(
    post,
    path = "/api/v1/complaints/{local_ref}/followups",
    tag = "complaints",
    params(("local_ref" = String, Path, description = "The complaint's local reference")),
    request_body = FollowupBody,
    responses(
        (status = 202, description = "Stored; delivery follows", body = StatusDocument),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such complaint (or not this intake token's)", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named in `fields`", body = ErrorBody),
    ),
)]
pub async fn add_followup(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (map, mut errors) = body_object(&body, &["content", "is_secret"])?;
    required_string(&map, "content", &mut errors);
    if !matches!(
        map.get("is_secret"),
        None | Some(Value::Null | Value::Bool(_))
    ) {
        add_error(&mut errors, "is_secret", "must be true or false");
    }
    let body: FollowupBody = typed(map, errors)?;
    if !owns(&state, &caller, &local_ref).await? {
        return Err(ApiError::NotFound);
    }
    let status = actions::add_followup(
        &state.bridge,
        &local_ref,
        &body.content,
        body.is_secret.unwrap_or(false),
        &caller_name(&caller),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

/// The body of a forward ("bukan wewenang").
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardBody {
    /// The institution that should handle it (not this one).
    #[schema(minimum = 1)]
    pub institution_id: i64,
    /// 1-2000 characters after trimming.
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// Forward a complaint to another institution
///
/// "Not our authority": delivered to LAPOR! after the complaint's earlier
/// steps.
#[utoipa::path(
    post,
    path = "/api/v1/complaints/{local_ref}/forward",
    tag = "complaints",
    params(("local_ref" = String, Path, description = "The complaint's local reference")),
    request_body = ForwardBody,
    responses(
        (status = 202, description = "Stored; delivery follows", body = StatusDocument),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such complaint", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named in `fields`", body = ErrorBody),
    ),
)]
pub async fn forward(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (map, mut errors) = body_object(&body, &["institution_id", "reason"])?;
    if map.get("institution_id").and_then(Value::as_i64).is_none() {
        add_error(&mut errors, "institution_id", "required integer");
    }
    required_string(&map, "reason", &mut errors);
    let body: ForwardBody = typed(map, errors)?;
    let status = actions::forward(
        &state.bridge,
        &local_ref,
        body.institution_id,
        &body.reason,
        &caller_name(&caller),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending` (with running), `running`, `dead`, `done` or `discarded`.
    state: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Items per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<i64>,
}

/// `?state=` of the outbox and the webhook deliveries.
fn parse_step_state(raw: Option<&str>) -> Result<Option<StepState>, params::ParamErrors> {
    params::parse_code("state", raw, || {
        let codes: Vec<&str> = StepState::ALL.iter().map(|s| s.as_str()).collect();
        let (last, first) = codes.split_last().unwrap_or((&"", &[]));
        format!("must be {} or {last}", first.join(", "))
    })
}

/// Outbox steps: backlog and dead letters
#[utoipa::path(
    get,
    path = "/api/v1/outbox",
    tag = "outbox",
    params(OutboxQuery),
    responses(
        (status = 200, description = "One page of steps, oldest first", body = Page<outbox::StepView>),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
    ),
)]
pub async fn list_outbox(
    State(state): State<AppState>,
    Q(query): Q<OutboxQuery>,
) -> Result<Json<Page<outbox::StepView>>, ApiError> {
    let wanted = parse_step_state(query.state.as_deref())?;
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let (items, total) =
        outbox::list(&state.bridge.pool, wanted, paging.offset, paging.size).await?;
    Ok(Json(Page {
        items,
        total,
        page: paging.page,
        page_size: paging.size,
    }))
}

/// Retry a dead step
///
/// With fresh attempts; audited.
#[utoipa::path(
    post,
    path = "/api/v1/outbox/{id}/retry",
    tag = "outbox",
    params(("id" = i64, Path, description = "The step's id")),
    responses(
        (status = 200, description = "The step, pending again", body = outbox::StepView),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 409, description = "Only dead steps can be retried", body = ErrorBody),
    ),
)]
pub async fn retry_step(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(id): P<i64>,
) -> Result<Json<outbox::StepView>, ApiError> {
    Ok(Json(
        actions::act_on_step(&state.bridge, id, StepAction::Retry, &caller_name(&caller)).await?,
    ))
}

/// Discard a dead or pending step
///
/// Audited. A discarded create flags its complaint; after an attempt whose
/// outcome is unknown, the complaint says it may be on LAPOR!.
#[utoipa::path(
    post,
    path = "/api/v1/outbox/{id}/discard",
    tag = "outbox",
    params(("id" = i64, Path, description = "The step's id")),
    responses(
        (status = 200, description = "The step, discarded", body = outbox::StepView),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 409, description = "Only dead or pending steps can be discarded", body = ErrorBody),
    ),
)]
pub async fn discard_step(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(id): P<i64>,
) -> Result<Json<outbox::StepView>, ApiError> {
    Ok(Json(
        actions::act_on_step(
            &state.bridge,
            id,
            StepAction::Discard,
            &caller_name(&caller),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    after: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

/// The change feed
///
/// The events after a cursor, in commit order, resumable from `next`;
/// long-polls up to `wait` seconds when none is there yet. Operators see
/// every event, an intake token those of the complaints it submitted.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "changes",
    params(
        ("after" = Option<String>, Query, description = "A cursor from an earlier answer's `next` (or an item's `cursor`); absent: from the first event"),
        ("limit" = Option<i64>, Query, description = "Most events in one answer, 1 to 1000 (default 100)"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for an event when none is there yet, 0 to 30 (default 0)"),
    ),
    responses(
        (status = 200, description = "`{\"items\": [{\"cursor\", \"id\", \"type\", \"at\", \"data\"}], \"next\"}`", body = Object),
        (status = 400, description = "A bad cursor, limit or wait", body = ErrorBody),
    ),
)]
pub async fn changes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Q(query): Q<ChangesQuery>,
) -> Result<Json<feed::ChangesPage>, ApiError> {
    let after = match query.after.as_deref().map(str::trim) {
        None | Some("") => feed::Cursor::START,
        Some(raw) => raw
            .parse()
            .map_err(|e: feed::BadCursor| ApiError::BadRequest(format!("after: {e}")))?,
    };
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => feed::DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=feed::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be an integer from 1 to {}",
                    feed::MAX_LIMIT
                ))
            })?,
    };
    let max_wait = feed::MAX_WAIT.as_secs();
    let wait = match query.wait.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max_wait)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "wait must be a whole number of seconds from 0 to {max_wait}"
                ))
            })?,
    };
    let own = (caller.role == crate::config::Role::Intake).then(|| caller_name(&caller));
    let page = feed::read_changes(
        &state.bridge,
        after,
        limit,
        std::time::Duration::from_secs(wait),
        own.as_deref(),
    )
    .await?;
    Ok(Json(page))
}

/// Webhook endpoints
///
/// Each configured endpoint with its pending and dead deliveries, and
/// whether a `410 Gone` disabled it. URLs are shown without credentials or
/// query.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "The endpoints", body = Object)),
)]
pub async fn list_webhooks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut items = webhooks::endpoints(&state.bridge.pool).await?;
    for e in &mut items {
        e.url = feed::webhook::shown(&e.url);
    }
    let total = items.len();
    Ok(Json(
        json!({"items": items, "total": total, "page": 1, "page_size": total}),
    ))
}

/// Enable a webhook endpoint
///
/// Turns back on an endpoint that a `410 Gone` disabled (audited).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/enable",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "`{\"id\", \"url\", \"enabled\": true}`", body = Object),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
pub async fn enable_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    P(id): P<i64>,
) -> Result<Json<Value>, ApiError> {
    let url = actions::enable_webhook(&state.bridge, id, &caller_name(&caller)).await?;
    Ok(Json(json!({"id": id, "url": url, "enabled": true})))
}

/// Webhook deliveries
///
/// Deliveries (one per event and endpoint), optionally of one state.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/deliveries",
    tag = "webhooks",
    params(
        ("state" = Option<String>, Query, description = "pending, running, dead, done or discarded"),
        ("page" = Option<i64>, Query, description = "1 to 1,000,000 (default 1)"),
        ("page_size" = Option<i64>, Query, description = "1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "`{\"items\", \"total\", \"page\", \"page_size\"}`", body = Object),
        (status = 400, description = "A bad state or page", body = ErrorBody),
    ),
)]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Q(query): Q<OutboxQuery>,
) -> Result<Json<Page<webhooks::DeliveryView>>, ApiError> {
    let wanted = parse_step_state(query.state.as_deref())?;
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let (mut items, total) =
        webhooks::list(&state.bridge.pool, wanted, paging.offset, paging.size).await?;
    for d in &mut items {
        d.url = feed::webhook::shown(&d.url);
    }
    Ok(Json(Page {
        items,
        total,
        page: paging.page,
        page_size: paging.size,
    }))
}

/// Retry a webhook delivery
///
/// Sends a dead delivery again, with fresh attempts (audited).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/deliveries/{id}/retry",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery now", body = Object),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "Not in a state that can be retried", body = ErrorBody),
    ),
)]
pub async fn retry_webhook_delivery(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    P(id): P<i64>,
) -> Result<Json<webhooks::DeliveryView>, ApiError> {
    Ok(Json(
        actions::act_on_webhook_delivery(
            &state.bridge,
            id,
            StepAction::Retry,
            &caller_name(&caller),
        )
        .await?,
    ))
}

/// Discard a webhook delivery
///
/// Gives up a dead or pending delivery for good (audited).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/deliveries/{id}/discard",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery now", body = Object),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "Not in a state that can be discarded", body = ErrorBody),
    ),
)]
pub async fn discard_webhook_delivery(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    P(id): P<i64>,
) -> Result<Json<webhooks::DeliveryView>, ApiError> {
    Ok(Json(
        actions::act_on_webhook_delivery(
            &state.bridge,
            id,
            StepAction::Discard,
            &caller_name(&caller),
        )
        .await?,
    ))
}

/// Pull from LAPOR! now
///
/// One incremental pull; answers with the run's summary.
#[utoipa::path(
    post,
    path = "/api/v1/pull",
    tag = "runs",
    responses(
        (status = 200, description = "The run's summary", body = Object),
        (status = 503, description = "The run could not start or failed (another replica runs it, LAPOR! unreachable)", body = ErrorBody),
    ),
)]
pub async fn pull(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
) -> Result<Json<Value>, ApiError> {
    state
        .jobs
        .pull(&caller_name(&caller))
        .await
        .map(Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReconcileQuery {
    /// Read every tracked complaint's detail, not only what the listing
    /// shows changed.
    #[serde(default)]
    deep: bool,
}

/// Reconcile with LAPOR! now
///
/// LAPOR!'s listing first, details of what changed; `deep=true` reads
/// every tracked complaint's detail. Answers with the run's summary.
#[utoipa::path(
    post,
    path = "/api/v1/reconcile",
    tag = "runs",
    params(ReconcileQuery),
    responses(
        (status = 200, description = "The run's summary", body = Object),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 503, description = "The run could not start or failed", body = ErrorBody),
    ),
)]
pub async fn reconcile(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Q(query): Q<ReconcileQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_name(&caller);
    let run = if query.deep {
        state.jobs.deep_reconcile(&caller).await
    } else {
        state.jobs.reconcile(&caller).await
    };
    run.map(Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From this instant on: RFC 3339, or a date `YYYY-MM-DD` (UTC).
    since: Option<String>,
    /// Before this instant (exclusive): RFC 3339, or a date `YYYY-MM-DD` (UTC).
    until: Option<String>,
    /// `jsonl` (default) or `csv`.
    format: Option<String>,
}

/// Export the audit log of a period
///
/// JSON lines or CSV, in id order. CSV cells a spreadsheet would run as a
/// formula are neutralised.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "The entries", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
    ),
)]
pub async fn audit_export(
    State(state): State<AppState>,
    Q(query): Q<AuditQuery>,
) -> Result<Response, ApiError> {
    let instant = |name: &str, raw: Option<&str>| {
        params::parse_instant(name, raw).map_err(|e| ApiError::BadParams(ParamErrors::one(name, e)))
    };
    let since = instant("since", query.since.as_deref())?;
    let until = instant("until", query.until.as_deref())?;
    let format = match query.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => crate::audit_export::Format::Jsonl,
        "csv" => crate::audit_export::Format::Csv,
        other => {
            return Err(ApiError::BadParams(ParamErrors::one(
                "format",
                format!("must be jsonl or csv, got {other:?}"),
            )));
        }
    };
    // Streamed a page at a time: the log is never held whole in memory.
    let cursor = audit::ExportCursor::start(state.bridge.pool.clone(), since, until).await?;
    let body = crate::audit_export::body(cursor, format).await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Verify the audit log
///
/// Recomputes the hash chain and checks the configured checkpoints;
/// `ok: false` names what failed.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "The verification", body = audit::Verification)),
)]
pub async fn audit_verify(
    State(state): State<AppState>,
    _: Q<NoQuery>,
) -> Result<Json<Value>, ApiError> {
    let file = state.bridge.settings.audit.checkpoint_file.as_deref();
    let v = crate::checkpoints::verify(&state.bridge.pool, file).await?;
    Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

/// The audit checkpoints
///
/// The configured checkpoint file (`{"id", "hash", "at"}` per line),
/// checked.
#[utoipa::path(
    get,
    path = "/api/v1/audit/checkpoints",
    tag = "audit",
    responses(
        (status = 200, description = "The checkpoints", content_type = "application/x-ndjson", body = String),
        (status = 503, description = "No checkpoint file is configured, or it cannot be read", body = ErrorBody),
    ),
)]
pub async fn audit_checkpoints(
    State(state): State<AppState>,
    _: Q<NoQuery>,
) -> Result<Response, ApiError> {
    let path = state
        .bridge
        .settings
        .audit
        .checkpoint_file
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("no audit checkpoint file is configured".into()))?;
    let checkpoints = crate::checkpoints::read(path)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        crate::checkpoints::to_jsonl(&checkpoints),
    )
        .into_response())
}

/// Liveness
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process answers", body = Object, example = json!({"ok": true}))),
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// Readiness: the database and LAPOR!'s answer to our tokens
///
/// The database (checked at most once a second, see
/// [`crate::bridge::Readiness`]) and whether LAPOR! accepts our tokens.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Object,
         example = json!({"ok": true, "database": "ok", "lapor_token": "ok"})),
        (status = 503, description = "Not ready: the database is unreachable or has migrations pending, or LAPOR! rejects the tokens", body = Object,
         example = json!({"ok": false, "database": "ok", "lapor_token": "rejected"})),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = state
        .bridge
        .readiness
        .database(&state.bridge.pool, &state.bridge.metrics)
        .await;
    let token_ok = !state.bridge.gate.is_paused();
    let db_ok = database == crate::bridge::DatabaseReadiness::Ok;
    let body = json!({
        "ok": db_ok && token_ok,
        "database": database.as_str(),
        "lapor_token": if token_ok { "ok" } else { "rejected" },
    });
    let code = if db_ok && token_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics (prefix `lapor_bridge_`)
///
/// Prometheus: this process's counters, the database gauges from the stored
/// snapshot (see [`crate::gauges`]; no counting query per scrape) and the
/// live ones.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "The text exposition format", content_type = "text/plain; version=0.0.4", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.bridge.metrics.render();
    text.push_str(&crate::gauges::render(&state.bridge).await);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Whether `caller` may act on the complaint: an intake token only on the
/// complaints it submitted (not another token's, not those imported from
/// LAPOR!); every other role on all. A complaint that does not exist is the
/// action's own 404.
async fn owns(state: &AppState, caller: &Caller, local_ref: &str) -> Result<bool, ApiError> {
    if caller.role != crate::config::Role::Intake {
        return Ok(true);
    }
    Ok(
        match complaints::submitted_by(&state.bridge.pool, local_ref).await? {
            None => true,
            Some(by) => by.as_deref() == Some(caller_name(caller).as_str()),
        },
    )
}
