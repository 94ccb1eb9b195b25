//! Route handlers: thin translations between HTTP and the actions.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::{ApiError, AppState, caller_name};
use crate::actions::{self, StepAction};
use crate::feed;
use crate::params::{self, ParamErrors};
use crate::status_document::{Page, StatusDocument};
use crate::store::{audit, complaints, outbox, webhooks};

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

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    sync_state: Option<String>,
    status: Option<String>,
    q: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

const SYNC_STATES: [&str; 5] = ["pending", "synced", "retrying", "dead", "conflict"];

pub async fn list_complaints(
    State(state): State<AppState>,
    Q(query): Q<ListQuery>,
) -> Result<Json<Page<StatusDocument>>, ApiError> {
    if let Some(s) = &query.sync_state
        && !s.is_empty()
        && !SYNC_STATES.contains(&s.as_str())
    {
        return Err(ApiError::BadParams(params::ParamErrors::one(
            "sync_state",
            format!("must be one of {}", SYNC_STATES.join(", ")),
        )));
    }
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let filter = complaints::ListFilter {
        sync_state: query.sync_state.filter(|s| !s.is_empty()),
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

/// One complaint: the reporter unmasked for operators and admins (of an
/// anonymous or secret complaint, admins only), recorded as `pii_viewed`.
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

/// `POST /api/v1/complaints/{local_ref}/erase` `{"reason": "..."}` (admin):
/// 200 with `already_erased` false, or true when it was erased before.
pub async fn erase_reporter(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Json<actions::ErasureOutcome>, ApiError> {
    let (map, mut errors) = body_object(&body, &["reason"])?;
    let reason = required_string(&map, "reason", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let outcome =
        actions::erase_reporter(&state.bridge, &local_ref, &reason, &caller_name(&caller)).await?;
    Ok(Json(outcome))
}

pub async fn timeline(
    State(state): State<AppState>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
) -> Result<Json<Value>, ApiError> {
    let pool = &state.bridge.pool;
    let row = complaints::by_ref(pool, &local_ref)
        .await?
        .ok_or(ApiError::NotFound)?;
    let attempts: Vec<(DateTime<Utc>, Value)> = sqlx::query_as(
        "SELECT started_at, jsonb_build_object('kind', 'attempt', 'at', started_at, 'step', step,
                'attempt', attempt, 'duration_ms', duration_ms, 'http_status', http_status,
                'failure_kind', failure_kind, 'message', message, 'outcome', outcome)
           FROM lapor_bridge.outbox_attempts WHERE complaint_id = $1",
    )
    .bind(row.id)
    .fetch_all(pool)
    .await?;
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
    let status = actions::masked_document(&state.bridge, &row);
    Ok(Json(json!({
        "complaint": status,
        "events": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
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

fn required_string(
    map: &serde_json::Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> String {
    match map.get(field) {
        Some(Value::String(s)) => s.clone(),
        _ => {
            add_error(errors, field, "required string");
            String::new()
        }
    }
}

pub async fn add_followup(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (map, mut errors) = body_object(&body, &["content", "is_secret"])?;
    let content = required_string(&map, "content", &mut errors);
    let is_secret = match map.get("is_secret") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            add_error(&mut errors, "is_secret", "must be true or false");
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if !owns(&state, &caller, &local_ref).await? {
        return Err(ApiError::NotFound);
    }
    let status = actions::add_followup(
        &state.bridge,
        &local_ref,
        &content,
        is_secret,
        &caller_name(&caller),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

pub async fn forward(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    _: Q<NoQuery>,
    P(local_ref): P<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (map, mut errors) = body_object(&body, &["institution_id", "reason"])?;
    let institution_id = map
        .get("institution_id")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| {
            add_error(&mut errors, "institution_id", "required integer");
            0
        });
    let reason = required_string(&map, "reason", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let status = actions::forward(
        &state.bridge,
        &local_ref,
        institution_id,
        &reason,
        &caller_name(&caller),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    state: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

pub async fn list_outbox(
    State(state): State<AppState>,
    Q(query): Q<OutboxQuery>,
) -> Result<Json<Page<outbox::StepView>>, ApiError> {
    let wanted = query.state.filter(|s| !s.is_empty());
    if let Some(s) = &wanted
        && !["pending", "running", "dead", "done", "discarded"].contains(&s.as_str())
    {
        return Err(ApiError::BadParams(params::ParamErrors::one(
            "state",
            "must be pending, running, dead, done or discarded",
        )));
    }
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let (items, total) = outbox::list(
        &state.bridge.pool,
        wanted.as_deref(),
        paging.offset,
        paging.size,
    )
    .await?;
    Ok(Json(Page {
        items,
        total,
        page: paging.page,
        page_size: paging.size,
    }))
}

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

/// `GET /api/v1/changes?after=&limit=&wait=`: the events after a cursor, in
/// feed order; an intake token sees those of its own complaints only.
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

pub async fn enable_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    P(id): P<i64>,
) -> Result<Json<Value>, ApiError> {
    let url = actions::enable_webhook(&state.bridge, id, &caller_name(&caller)).await?;
    Ok(Json(json!({"id": id, "url": url, "enabled": true})))
}

pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Q(query): Q<OutboxQuery>,
) -> Result<Json<Page<webhooks::DeliveryView>>, ApiError> {
    let wanted = query.state.filter(|s| !s.is_empty());
    if let Some(s) = &wanted
        && !["pending", "running", "dead", "done", "discarded"].contains(&s.as_str())
    {
        return Err(ApiError::BadParams(params::ParamErrors::one(
            "state",
            "must be pending, running, dead, done or discarded",
        )));
    }
    let paging = params::paging(query.page, query.page_size, params::DEFAULT_PAGE_SIZE)?;
    let (mut items, total) = webhooks::list(
        &state.bridge.pool,
        wanted.as_deref(),
        paging.offset,
        paging.size,
    )
    .await?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileQuery {
    /// Read every tracked complaint's detail, not only what the listing
    /// shows changed.
    #[serde(default)]
    deep: bool,
}

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

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
}

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

/// The chain and the configured checkpoints; `ok: false` names what failed.
pub async fn audit_verify(
    State(state): State<AppState>,
    _: Q<NoQuery>,
) -> Result<Json<Value>, ApiError> {
    let file = state.bridge.settings.audit.checkpoint_file.as_deref();
    let v = crate::checkpoints::verify(&state.bridge.pool, file).await?;
    Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

/// The configured checkpoint file, checked, as JSON lines.
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

pub async fn healthz() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// Readiness: the database (checked at most once a second, see
/// [`crate::bridge::Readiness`]) and whether LAPOR! accepts our tokens.
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

/// Prometheus: this process's counters, the database gauges from the stored
/// snapshot (see [`crate::gauges`]; no counting query per scrape) and the
/// live ones.
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
