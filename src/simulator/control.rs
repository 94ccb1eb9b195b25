//! The control surface under `/_sim`: no auth, never faulted, not counted.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::api::{Fields, json_object, path_id, sim_error, validation};
use super::faults::FaultSet;
use super::state::{FollowupOrigin, NewComplaint, NewFollowup, SimError, SimStatus};
use super::{Shared, error_response, lock};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/reset", post(reset))
        .route("/faults", get(get_faults).post(set_faults))
        .route("/complaints", get(all_complaints).post(citizen_complaint))
        .route("/complaints/{id}", get(one_complaint))
        .route("/complaints/{id}/status", post(set_status))
        .route("/complaints/{id}/followups", post(upstream_followup))
        .route("/stats", get(stats))
        .route("/seed", post(seed))
}

/// Empty state, no faults, statistics cleared. Ids keep counting.
async fn reset(State(sim): State<Shared>) -> Response {
    lock(&sim.state).reset();
    sim.faults.set(FaultSet::default());
    sim.stats.clear();
    axum::Json(json!({"success": true})).into_response()
}

async fn get_faults(State(sim): State<Shared>) -> Response {
    axum::Json(sim.faults.current()).into_response()
}

async fn set_faults(State(sim): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let set = match serde_json::from_value::<FaultSet>(Value::Object(map))
        .map_err(|e| e.to_string())
        .and_then(FaultSet::normalized)
    {
        Ok(set) => set,
        Err(message) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, &message),
    };
    sim.faults.set(set.clone());
    axum::Json(set).into_response()
}

async fn all_complaints(State(sim): State<Shared>) -> Response {
    let data = lock(&sim.state).all_json();
    let total = data.len();
    axum::Json(json!({"success": true, "data": data, "total": total})).into_response()
}

async fn one_complaint(
    State(sim): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    let state = lock(&sim.state);
    match state.get(id).map(|c| state.full_json(c)) {
        Some(data) => {
            drop(state);
            axum::Json(json!({"success": true, "data": data})).into_response()
        }
        None => {
            drop(state);
            sim_error(SimError::NotFound)
        }
    }
}

/// A citizen filed on lapor.go.id and the admin dispositioned it: status 2,
/// not in `scope=created`. Every field is optional.
async fn citizen_complaint(
    State(sim): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let mut f = Fields::new(&map);
    let title = f.string("title", false, 1, 150);
    let content = f.string("content", false, 1, 20_000);
    let category_id = f.int("category_id", false).unwrap_or(1);
    let disposition_id = f.int("disposition_id", false);
    let location_id = f.int("location_id", false);
    let date_of_incident = f.date("date_of_incident", false);
    let is_anonymous = f.flag("is_anonymous", false).unwrap_or(0);
    let is_secret = f.flag("is_secret", false).unwrap_or(0);
    let tags_raw = f.string("tags_raw", false, 0, 255);
    // Filed this many days ago (history for demos): 0 to 3650.
    let days_ago = f.int("days_ago", false).unwrap_or(0);
    if !(0..=3650).contains(&days_ago) {
        f.fail("days_ago", "must be between 0 and 3650".into());
    }
    let mut state = lock(&sim.state);
    let disposition_id = disposition_id.unwrap_or(state.own_institution());
    if !state.institution_exists(disposition_id) {
        f.fail(
            "disposition_id",
            "The selected disposition id is invalid.".into(),
        );
    }
    if !f.errors.is_empty() {
        drop(state);
        return validation(f.errors);
    }
    let (complaint_id, tracking_id) = state.create_citizen(
        NewComplaint {
            title: title.unwrap_or_else(|| "Laporan warga".into()),
            content: content
                .unwrap_or_else(|| "Laporan warga yang diajukan melalui lapor.go.id.".into()),
            category_id,
            disposition_id,
            location_id,
            channel: None,
            date_of_incident,
            is_anonymous,
            is_secret,
            tags_raw,
            attachments: Vec::new(),
        },
        chrono::Duration::days(days_ago),
    );
    drop(state);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "success": true,
            "complaint_id": complaint_id,
            "tracking_id": tracking_id,
        })),
    )
        .into_response()
}

/// `{"status_name": "Selesai"}`, optionally `"force": true` (any transition,
/// including to an unknown raw name, stored with status code 0) and
/// `"disposition_id"` (dispositions at the same time).
async fn set_status(
    State(sim): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let mut f = Fields::new(&map);
    let name = f.string("status_name", true, 1, 255);
    let force = f.flag("force", false).unwrap_or(0) == 1;
    let disposition_id = f.int("disposition_id", false);
    let status = name.map(|n| SimStatus::parse(&n));
    if let Some(SimStatus::Raw(_)) = &status
        && !force
    {
        f.fail(
            "status_name",
            "The selected status name is invalid (send \"force\": true to store it raw).".into(),
        );
    }
    let (true, Some(status)) = (f.errors.is_empty(), status) else {
        return validation(f.errors);
    };
    let mut state = lock(&sim.state);
    let result = state.set_status(id, status, force, disposition_id);
    let body = state.get(id).map(|c| {
        json!({
            "success": true,
            "status_code": c.status.code(),
            "status_name": c.status.name(),
            "disposition_id": c.disposition_id,
        })
    });
    drop(state);
    match (result, body) {
        (Ok(()), Some(body)) => axum::Json(body).into_response(),
        (Err(error), _) => sim_error(error),
        (Ok(()), None) => sim_error(SimError::NotFound),
    }
}

/// `{"content", "institution_id": null, "seconds_ago": 0}`: an upstream
/// follow-up (null: the reporter), accepted in any status; `seconds_ago`
/// dates it back (one posted on lapor.go.id a while ago).
async fn upstream_followup(
    State(sim): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match path_id(path) {
        Ok(id) => id,
        Err(reject) => return reject.into_response(),
    };
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let mut f = Fields::new(&map);
    let content = f.string("content", true, 1, 20_000);
    let institution_id = f.int("institution_id", false);
    let is_secret = f.flag("is_secret", false).unwrap_or(0);
    let seconds_ago = f
        .int("seconds_ago", false)
        .unwrap_or(0)
        .clamp(0, 86_400 * 365);
    let (true, Some(content)) = (f.errors.is_empty(), content) else {
        return validation(f.errors);
    };
    let mut state = lock(&sim.state);
    let result = state.add_followup(
        id,
        NewFollowup {
            content,
            is_secret,
            institution_id,
            institution_to_id: None,
            attachments: Vec::new(),
        },
        FollowupOrigin::Upstream,
    );
    if let Ok(followup_id) = result
        && seconds_ago > 0
    {
        state.backdate_followup(id, followup_id, chrono::Duration::seconds(seconds_ago));
    }
    drop(state);
    match result {
        Ok(followup_id) => (
            StatusCode::CREATED,
            axum::Json(json!({"success": true, "id": followup_id})),
        )
            .into_response(),
        Err(error) => sim_error(error),
    }
}

async fn stats(State(sim): State<Shared>) -> Response {
    axum::Json(sim.stats.json()).into_response()
}

/// `{"count": N, "ref_prefix": "BENCH-"}`: N complaints created through the
/// API by our account (status 1), tagged `ref:<prefix><i>` for i in 0..N.
/// For benchmarks. Answers the first and last ids.
async fn seed(State(sim): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let map = match json_object(body) {
        Ok(map) => map,
        Err(reject) => return reject.into_response(),
    };
    let count = map
        .get("count")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(2_000_000);
    let prefix = map
        .get("ref_prefix")
        .and_then(Value::as_str)
        .unwrap_or("SEED-")
        .to_string();
    let mut ids = Vec::with_capacity(2);
    for i in 0..count {
        let mut state = lock(&sim.state);
        let disposition_id = state.own_institution();
        let (id, _) = state.create_from_api(NewComplaint {
            title: format!("Seeded complaint {i}"),
            content: "A complaint seeded for a benchmark run.".into(),
            category_id: 1,
            disposition_id,
            location_id: None,
            channel: None,
            date_of_incident: None,
            is_anonymous: 0,
            is_secret: 0,
            tags_raw: Some(format!("ref:{prefix}{i}")),
            attachments: Vec::new(),
        });
        if i == 0 || i + 1 == count {
            ids.push(id);
        }
    }
    axum::Json(
        json!({"success": true, "count": count, "first_id": ids.first(), "last_id": ids.last()}),
    )
    .into_response()
}
