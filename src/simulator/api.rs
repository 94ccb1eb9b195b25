//! The LAPOR! endpoints of `lapor-api.md`, their authentication and input
//! validation (Laravel-style 422 answers).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::state::{
    Attachment, FollowupOrigin, MAX_FILE_BYTES, NewComplaint, NewFollowup, Scope, SimError,
    is_image,
};
use super::{Shared, SimulatorConfig, error_response, lock};
use crate::lapor::AuthHeader;
use crate::lapor::timestamp;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/masters/institutions/external", get(institutions))
        .route("/complaints/complaint/file", post(upload))
        .route("/complaints/complaint", post(create))
        .route("/complaints/complaint-lmw", post(create))
        .route("/complaints/{id}/complaint", get(detail))
        .route("/complaints/{id}/followups", get(followups))
        .route("/complaints/followup/add", post(followup_add))
        .route("/complaints/process/{id}/reject", post(forward))
        .route("/complaints", get(list))
}

// ----- authentication ----------------------------------------------------

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn authorized(config: &SimulatorConfig, headers: &HeaderMap) -> bool {
    let api_token = match config.auth_header {
        AuthHeader::AuthorizationBearer => header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim()),
        AuthHeader::Auth => header_str(headers, "auth"),
    };
    api_token == Some(config.api_token.as_str())
        && header_str(headers, "token") == Some(config.instansi_token.as_str())
}

pub(super) async fn auth(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    if authorized(&sim.config, request.headers()) {
        next.run(request).await
    } else {
        error_response(StatusCode::UNAUTHORIZED, "Unauthenticated.")
    }
}

// ----- input helpers -----------------------------------------------------

/// An input that cannot be read: `{"success": false, "message"}` with the
/// status.
#[derive(Debug)]
pub(super) struct Reject(pub StatusCode, pub String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error_response(self.0, &self.1)
    }
}

/// 422 with Laravel's shape.
pub(super) fn validation(errors: BTreeMap<String, Vec<String>>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "success": false,
            "message": "The given data was invalid.",
            "errors": errors,
        })),
    )
        .into_response()
}

/// 403: the account may not act on this complaint (forwarded away, another
/// institution's); the tokens are fine.
fn forbidden() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "Anda tidak memiliki akses untuk menindaklanjuti laporan ini.",
    )
}

pub(super) fn sim_error(error: SimError) -> Response {
    match error {
        SimError::NotFound => error_response(StatusCode::NOT_FOUND, "Data tidak ditemukan"),
        SimError::Conflict(message) => error_response(StatusCode::CONFLICT, &message),
        SimError::Invalid(field, message) => {
            validation(BTreeMap::from([(field.to_string(), vec![message])]))
        }
    }
}

/// A JSON object body; an empty body is an empty object; anything else is a
/// 400 with a JSON error.
pub(super) fn json_object(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, Reject> {
    let bytes = body.map_err(|e| Reject(e.status(), e.body_text()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reject(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.".into(),
        )),
        Err(e) => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!("Malformed JSON body: {e}"),
        )),
    }
}

/// The id of a path like `/complaints/{id}/complaint`; anything else is 404.
pub(super) fn path_id(path: Result<Path<String>, PathRejection>) -> Result<i64, Reject> {
    path.ok()
        .and_then(|Path(raw)| raw.trim().parse::<i64>().ok())
        .ok_or_else(|| Reject(StatusCode::NOT_FOUND, "Data tidak ditemukan".into()))
}

/// An integer given as a JSON number or a numeric string.
pub(super) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// 0/1 given as a number, a string or a boolean.
fn as_flag(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(b) => Some(i64::from(*b)),
        other => as_int(other).filter(|v| *v == 0 || *v == 1),
    }
}

/// Field-by-field validation that collects every error.
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub errors: BTreeMap<String, Vec<String>>,
}

fn label(key: &str) -> String {
    key.replace('_', " ")
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            errors: BTreeMap::new(),
        }
    }

    pub fn fail(&mut self, key: &str, message: String) {
        self.errors
            .entry(key.to_string())
            .or_default()
            .push(message);
    }

    /// The value, with null and empty strings treated as absent.
    fn present(&mut self, key: &str, required: bool) -> Option<&'a Value> {
        let value = self.map.get(key).filter(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        });
        if value.is_none() && required {
            self.fail(key, format!("The {} field is required.", label(key)));
        }
        value
    }

    pub fn string(&mut self, key: &str, required: bool, min: usize, max: usize) -> Option<String> {
        let value = self.present(key, required)?;
        let Value::String(s) = value else {
            self.fail(key, format!("The {} must be a string.", label(key)));
            return None;
        };
        let chars = s.chars().count();
        if chars < min {
            self.fail(
                key,
                format!("The {} must be at least {min} characters.", label(key)),
            );
            return None;
        }
        if chars > max {
            self.fail(
                key,
                format!(
                    "The {} may not be greater than {max} characters.",
                    label(key)
                ),
            );
            return None;
        }
        Some(s.clone())
    }

    pub fn int(&mut self, key: &str, required: bool) -> Option<i64> {
        let value = self.present(key, required)?;
        let parsed = as_int(value);
        if parsed.is_none() {
            self.fail(key, format!("The {} must be an integer.", label(key)));
        }
        parsed
    }

    pub fn flag(&mut self, key: &str, required: bool) -> Option<i64> {
        let value = self.present(key, required)?;
        let parsed = as_flag(value);
        if parsed.is_none() {
            self.fail(
                key,
                format!("The {} field must be true or false.", label(key)),
            );
        }
        parsed
    }

    pub fn date(&mut self, key: &str, required: bool) -> Option<NaiveDate> {
        let value = self.present(key, required)?;
        let parsed = value
            .as_str()
            .map(str::trim)
            .filter(|s| s.len() == 10)
            .and_then(|s| timestamp::parse_date(s).ok());
        if parsed.is_none() {
            self.fail(
                key,
                format!("The {} does not match the format Y-m-d.", label(key)),
            );
        }
        parsed
    }

    /// `"[1,2]"`, `"[1,2]."`, a JSON array, `false` or absent.
    pub fn attachments(&mut self, key: &str) -> Vec<i64> {
        let invalid = |this: &mut Self| {
            this.fail(
                key,
                format!("The {} must be a list of upload ids or false.", label(key)),
            );
            Vec::new()
        };
        let Some(value) = self.map.get(key) else {
            return Vec::new();
        };
        let ids = match value {
            Value::Null | Value::Bool(false) => return Vec::new(),
            Value::String(s) => {
                let s = s.trim();
                let s = s.strip_suffix('.').unwrap_or(s);
                match serde_json::from_str::<Value>(s) {
                    Ok(Value::Array(items)) => items,
                    _ => return invalid(self),
                }
            }
            Value::Array(items) => items.clone(),
            _ => return invalid(self),
        };
        match ids.iter().map(as_int).collect::<Option<Vec<i64>>>() {
            Some(ids) => ids,
            None => invalid(self),
        }
    }
}

/// A form's text fields (as JSON strings) and its files.
#[derive(Default)]
struct FormInput {
    fields: Map<String, Value>,
    /// `(field name, file name)`.
    files: Vec<(String, String)>,
    too_large: bool,
}

fn multipart_error(error: MultipartError) -> Reject {
    Reject(error.status(), error.body_text())
}

async fn drain(mut field: Field<'_>) -> Result<usize, Reject> {
    let mut size = 0usize;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        size = size.saturating_add(chunk.len());
    }
    Ok(size)
}

/// Reads the whole multipart body (so that an early answer never cuts the
/// upload short), measuring files without keeping them.
async fn read_multipart(mut multipart: Multipart) -> Result<FormInput, Reject> {
    let mut input = FormInput::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let size = drain(field).await?;
                if file_name.is_empty() && size == 0 {
                    continue; // a form's empty file input
                }
                input.too_large |= size > MAX_FILE_BYTES;
                input.files.push((name, file_name));
            }
            None => {
                let text = field.text().await.map_err(multipart_error)?;
                input.fields.insert(name, Value::String(text));
            }
        }
    }
    Ok(input)
}

fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The attachments may not be greater than 10240 kilobytes.",
    )
}

// ----- handlers ----------------------------------------------------------

async fn institutions(
    State(sim): State<Shared>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|v| *v >= 1)
            .unwrap_or(default)
    };
    let page = number("page", 1);
    let page_size = number("page_size", 1000).min(1000);
    let body = lock(&sim.state).institutions_page(page, page_size);
    axum::Json(body).into_response()
}

async fn upload(
    State(sim): State<Shared>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let multipart = match multipart {
        Ok(m) => m,
        Err(e) => return error_response(e.status(), &e.body_text()),
    };
    let input = match read_multipart(multipart).await {
        Ok(input) => input,
        Err(reject) => return reject.into_response(),
    };
    if input.too_large {
        return too_large();
    }
    let files: Vec<String> = input
        .files
        .into_iter()
        .filter(|(name, _)| name.starts_with("attachments"))
        .map(|(_, file_name)| file_name)
        .collect();
    if files.is_empty() {
        return validation(BTreeMap::from([(
            "attachments".to_string(),
            vec!["The attachments field is required.".to_string()],
        )]));
    }
    let (mut docs, mut images) = (Vec::new(), Vec::new());
    {
        let mut state = lock(&sim.state);
        for file_name in files {
            let stored = state.add_upload(file_name);
            let entry = json!({"id": stored.id, "file_name": stored.file_name});
            if is_image(&stored.extension) {
                images.push(entry);
            } else {
                docs.push(entry);
            }
        }
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"success": true, "results": {"docs": docs, "images": images}})),
    )
        .into_response()
}

async fn create(State(sim): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let mut f = Fields::new(&map);
    let title = f.string("title", true, 1, 150);
    let content = f.string("content", true, 10, 20_000);
    let category_id = f.int("category_id", true);
    let disposition_id = f.int("disposition_id", true);
    let date_of_incident = f.date("date_of_incident", true);
    let is_anonymous = f.flag("is_anonymous", true);
    let is_secret = f.flag("is_secret", true);
    let location_id = f.int("location_id", false);
    let channel = f.int("channel", false);
    let tags_raw = f.string("tags_raw", false, 0, 255);
    let attachments = f.attachments("attachments");

    let mut state = lock(&sim.state);
    if let Some(id) = disposition_id
        && !state.institution_exists(id)
    {
        f.fail(
            "disposition_id",
            "The selected disposition id is invalid.".into(),
        );
    }
    if attachments.iter().any(|id| state.upload(*id).is_none()) {
        f.fail("attachments", "The selected attachments is invalid.".into());
    }
    let (
        true,
        Some(title),
        Some(content),
        Some(category_id),
        Some(disposition_id),
        Some(date_of_incident),
        Some(is_anonymous),
        Some(is_secret),
    ) = (
        f.errors.is_empty(),
        title,
        content,
        category_id,
        disposition_id,
        date_of_incident,
        is_anonymous,
        is_secret,
    )
    else {
        drop(state);
        return validation(f.errors);
    };
    let (complaint_id, tracking_id) = state.create_from_api(NewComplaint {
        title,
        content,
        category_id,
        disposition_id,
        location_id,
        channel,
        date_of_incident: Some(date_of_incident),
        is_anonymous,
        is_secret,
        tags_raw,
        attachments,
    });
    drop(state);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "success": true,
            "message": "Laporan berhasil dibuat",
            "complaint_id": complaint_id,
            "tracking_id": tracking_id,
        })),
    )
        .into_response()
}

async fn detail(State(sim): State<Shared>, path: Result<Path<String>, PathRejection>) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    let body = lock(&sim.state).detail_json(id);
    match body {
        Some(body) => axum::Json(body).into_response(),
        None => sim_error(SimError::NotFound),
    }
}

async fn followups(
    State(sim): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    let body = lock(&sim.state).followups_json(id);
    match body {
        Some(body) => axum::Json(body).into_response(),
        None => sim_error(SimError::NotFound),
    }
}

/// Multipart (as documented), or a urlencoded or JSON body.
async fn read_form(request: Request) -> Result<FormInput, Reject> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| Reject(e.status(), e.body_text()))?;
        read_multipart(multipart).await
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .map_err(|e| Reject(e.status(), e.body_text()))?;
        let fields = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Ok(FormInput {
            fields,
            ..FormInput::default()
        })
    } else {
        let body = Bytes::from_request(request, &()).await;
        Ok(FormInput {
            fields: json_object(body)?,
            ..FormInput::default()
        })
    }
}

async fn followup_add(State(sim): State<Shared>, request: Request) -> Response {
    let input = match read_form(request).await {
        Ok(input) => input,
        Err(reject) => return reject.into_response(),
    };
    if input.too_large {
        return too_large();
    }
    let mut f = Fields::new(&input.fields);
    let complaint_id = f.int("complaint_id", true);
    let institution_from_id = f.int("institution_from_id", true);
    let institution_to_id = f.int("institution_to_id", false);
    let content = f.string("content", true, 1, 20_000);
    let is_secret = f.flag("is_secret", false).unwrap_or(0);
    f.int("rating", false);
    // `attachment[N]` given as upload ids.
    let mut upload_ids = Vec::new();
    for (key, value) in &input.fields {
        let empty = value.as_str().is_some_and(|v| v.trim().is_empty());
        if key.starts_with("attachment") && !empty {
            match as_int(value) {
                Some(id) => upload_ids.push(id),
                None => f.fail(key, format!("The {} must be a file.", label(key))),
            }
        }
    }
    let files: Vec<String> = input
        .files
        .into_iter()
        .filter(|(name, _)| name.starts_with("attachment"))
        .map(|(_, file_name)| file_name)
        .collect();

    let mut state = lock(&sim.state);
    let mut attachments: Vec<Attachment> = Vec::new();
    for id in upload_ids {
        match state.upload(id) {
            Some(upload) => attachments.push(upload.clone()),
            None => f.fail("attachment", "The selected attachment is invalid.".into()),
        }
    }
    if complaint_id.is_some_and(|id| sim.faults.forbidden(id)) {
        drop(state);
        return forbidden();
    }
    let (true, Some(complaint_id), Some(institution_from_id), Some(content)) = (
        f.errors.is_empty(),
        complaint_id,
        institution_from_id,
        content,
    ) else {
        drop(state);
        return validation(f.errors);
    };
    if let Err(error) =
        state.check_followup(complaint_id, Some(institution_from_id), FollowupOrigin::Api)
    {
        drop(state);
        return sim_error(error);
    }
    for file_name in files {
        attachments.push(state.add_upload(file_name));
    }
    let result = state.add_followup(
        complaint_id,
        NewFollowup {
            content,
            is_secret,
            institution_id: Some(institution_from_id),
            institution_to_id,
            attachments,
        },
        FollowupOrigin::Api,
    );
    drop(state);
    match result {
        Ok(id) => (
            StatusCode::CREATED,
            axum::Json(json!({"success": true, "results": {"data": {"id": id}}})),
        )
            .into_response(),
        Err(error) => sim_error(error),
    }
}

async fn forward(
    State(sim): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    if sim.faults.forbidden(id) {
        return forbidden();
    }
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let mut f = Fields::new(&map);
    let target = f.int("reason", true);
    let description = f.string("reason_description", false, 0, 20_000);
    f.flag("is_request", false);
    f.flag("not_authority", false);
    let (true, Some(target)) = (f.errors.is_empty(), target) else {
        return validation(f.errors);
    };
    let result = lock(&sim.state).forward(id, target, description.as_deref().unwrap_or(""));
    match result {
        Ok(()) => axum::Json(json!({
            "success": true,
            "message": "Laporan berhasil diteruskan",
        }))
        .into_response(),
        Err(error) => sim_error(error),
    }
}

async fn list(
    State(sim): State<Shared>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let map: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut f = Fields::new(&map);
    let scope = match f.string("scope", true, 0, 100).as_deref().map(str::trim) {
        Some("inbox") => Some(Scope::Inbox),
        Some("created") => Some(Scope::Created),
        Some(_) => {
            f.fail("scope", "The selected scope is invalid.".into());
            None
        }
        None => None,
    };
    let updated_from = match f.present("updated_from", false).and_then(Value::as_str) {
        Some(raw) => match timestamp::parse_datetime(raw) {
            Ok(at) => Some(at.timestamp()),
            Err(_) => {
                f.fail(
                    "updated_from",
                    "The updated from does not match the format Y-m-d H:i:s.".into(),
                );
                None
            }
        },
        None => None,
    };
    let page = f.int("page", false).unwrap_or(1);
    if page < 1 {
        f.fail("page", "The page must be at least 1.".into());
    }
    let page_size = f.int("page_size", false).unwrap_or(100);
    if !(1..=100).contains(&page_size) {
        f.fail(
            "page_size",
            "The page size must be between 1 and 100.".into(),
        );
    }
    let (true, Some(scope)) = (f.errors.is_empty(), scope) else {
        return validation(f.errors);
    };
    let (page, page_size) = (page as usize, page_size as usize);
    let (data, total) = lock(&sim.state).list(scope, updated_from, page, page_size);
    axum::Json(json!({
        "success": true,
        "results": {
            "data": data,
            "meta": {"page": page, "page_size": page_size, "total": total},
        },
    }))
    .into_response()
}
