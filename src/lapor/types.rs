//! LAPOR!'s documents, parsed from JSON into types that cannot hold a guess:
//! a missing or mistyped field is an error naming the field.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use super::status::{StatusName, StatusTable};
use super::timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LAPOR! document: field `{field}` {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

fn field_error(field: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        problem: problem.into(),
    }
}

fn get<'a>(obj: &'a Value, field: &str) -> Result<&'a Value, FieldError> {
    match obj.get(field) {
        Some(Value::Null) | None => Err(field_error(field, "is missing")),
        Some(v) => Ok(v),
    }
}

/// An integer that LAPOR! may send as a number or a numeric string.
pub(crate) fn int(obj: &Value, field: &str) -> Result<i64, FieldError> {
    match get(obj, field)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| field_error(field, "is not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| field_error(field, "is not an integer")),
        _ => Err(field_error(field, "is not an integer")),
    }
}

fn opt_int(obj: &Value, field: &str) -> Result<Option<i64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => int(obj, field).map(Some),
    }
}

pub(crate) fn string(obj: &Value, field: &str) -> Result<String, FieldError> {
    match get(obj, field)? {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(field_error(field, "is not a string")),
    }
}

fn opt_string(obj: &Value, field: &str) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(obj, field).map(Some),
    }
}

/// 0/1 flags (also accepts booleans).
fn flag(obj: &Value, field: &str) -> Result<bool, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => match int(obj, field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(field_error(field, "is not 0 or 1")),
        },
    }
}

fn datetime(obj: &Value, field: &str) -> Result<DateTime<Utc>, FieldError> {
    let raw = string(obj, field)?;
    timestamp::parse_datetime(&raw).map_err(|e| field_error(field, e.to_string()))
}

fn followup_datetime(obj: &Value, field: &str) -> Result<DateTime<Utc>, FieldError> {
    let raw = string(obj, field)?;
    timestamp::parse_followup_datetime(&raw).map_err(|e| field_error(field, e.to_string()))
}

/// The `results` member of a successful answer.
pub(crate) fn results(doc: &Value) -> Result<&Value, FieldError> {
    get(doc, "results")
}

fn array<'a>(obj: &'a Value, field: &str) -> Result<&'a Vec<Value>, FieldError> {
    match get(obj, field)? {
        Value::Array(items) => Ok(items),
        _ => Err(field_error(field, "is not a list")),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Institution {
    pub id: i64,
    pub name: String,
}

impl Institution {
    fn parse(v: &Value) -> Result<Self, FieldError> {
        Ok(Self {
            id: int(v, "id")?,
            name: opt_string(v, "name")?.unwrap_or_default(),
        })
    }
}

pub fn parse_institutions(doc: &Value) -> Result<Vec<Institution>, FieldError> {
    array(results(doc)?, "data")?
        .iter()
        .map(Institution::parse)
        .collect()
}

/// A complaint to create. `tags_raw` carries the bridge's `ref:<local_ref>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewComplaint {
    pub title: String,
    pub content: String,
    pub category_id: i64,
    pub disposition_id: i64,
    pub location_id: Option<i64>,
    pub date_of_incident: NaiveDate,
    pub is_anonymous: bool,
    pub is_secret: bool,
    pub tags_raw: String,
    pub attachment_ids: Vec<i64>,
}

impl NewComplaint {
    /// The create body in LAPOR!'s form (attachments as a string holding a
    /// JSON array, or `false`).
    pub fn to_wire(&self) -> Value {
        let attachments = if self.attachment_ids.is_empty() {
            Value::Bool(false)
        } else {
            let ids: Vec<String> = self.attachment_ids.iter().map(i64::to_string).collect();
            Value::String(format!("[{}]", ids.join(",")))
        };
        let mut body = serde_json::json!({
            "title": self.title,
            "content": self.content,
            "category_id": self.category_id,
            "disposition_id": self.disposition_id,
            "date_of_incident": timestamp::format_date(self.date_of_incident),
            "is_anonymous": u8::from(self.is_anonymous),
            "is_secret": u8::from(self.is_secret),
            "tags_raw": self.tags_raw,
            "attachments": attachments,
        });
        if let (Some(location), Some(map)) = (self.location_id, body.as_object_mut()) {
            map.insert("location_id".into(), location.into());
        }
        body
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    pub complaint_id: i64,
    pub tracking_id: String,
}

/// The answer to a create. Integrator versions have seen the new
/// complaint's id in three places: `complaint_id`, `data.complaint_id` and
/// `data.results.complaint.id`; the first present is taken, with the
/// `tracking_id` beside it (or at the top).
pub fn parse_created(doc: &Value) -> Result<Created, FieldError> {
    let data = doc.get("data").filter(|d| d.is_object());
    let complaint = data
        .and_then(|d| d.get("results"))
        .and_then(|r| r.get("complaint"))
        .filter(|c| c.is_object());
    let places = [
        (Some(doc), "complaint_id", "complaint_id"),
        (data, "complaint_id", "data.complaint_id"),
        (complaint, "id", "data.results.complaint.id"),
    ];
    for (obj, field, name) in places {
        let Some(obj) = obj.filter(|o| !matches!(o.get(field), None | Some(Value::Null))) else {
            continue;
        };
        let complaint_id = int(obj, field).map_err(|e| field_error(name, e.problem))?;
        let beside = opt_string(obj, "tracking_id").map_err(|e| field_error(name, e.problem))?;
        let tracking_id = match beside.filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => opt_string(doc, "tracking_id")?.unwrap_or_default(),
        };
        return Ok(Created {
            complaint_id,
            tracking_id,
        });
    }
    Err(field_error(
        "complaint_id",
        "is missing (nor is data.complaint_id or data.results.complaint.id there)",
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadedFile {
    pub id: i64,
    pub file_name: String,
}

pub fn parse_uploaded(doc: &Value) -> Result<Vec<UploadedFile>, FieldError> {
    let results = results(doc)?;
    let mut files = Vec::new();
    for key in ["docs", "images"] {
        if let Some(Value::Array(items)) = results.get(key) {
            for item in items {
                files.push(UploadedFile {
                    id: int(item, "id")?,
                    file_name: opt_string(item, "file_name")?.unwrap_or_default(),
                });
            }
        }
    }
    Ok(files)
}

/// One entry of a complaint's log, its template filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub institution_from: Option<Institution>,
    pub institution_to: Option<Institution>,
    pub status_old: Option<String>,
    pub status_new: Option<String>,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

fn named(v: &Value, field: &str) -> Result<Option<String>, FieldError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(obj) => opt_string(obj, "name").map_err(|e| field_error(field, e.problem)),
    }
}

fn opt_institution(v: &Value, field: &str) -> Result<Option<Institution>, FieldError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(obj) => Institution::parse(obj)
            .map(Some)
            .map_err(|e| field_error(&format!("{field}.{}", e.field), e.problem)),
    }
}

/// Fills `{{institution_from}}`, `{{institution_to}}`, `{{status_old}}` and
/// `{{status_new}}` in a log template.
pub fn fill_log_template(
    template: &str,
    from: Option<&str>,
    to: Option<&str>,
    old: Option<&str>,
    new: Option<&str>,
) -> String {
    template
        .replace("{{institution_from}}", from.unwrap_or("-"))
        .replace("{{institution_to}}", to.unwrap_or("-"))
        .replace("{{status_old}}", old.unwrap_or("-"))
        .replace("{{status_new}}", new.unwrap_or("-"))
}

impl LogEntry {
    fn parse(v: &Value) -> Result<Self, FieldError> {
        let institution_from = opt_institution(v, "institution_from")?;
        let institution_to = opt_institution(v, "institution_to")?;
        let status_old = named(v, "status_old")?;
        let status_new = named(v, "status_new")?;
        let template = opt_string(v, "content")?.unwrap_or_default();
        let content = fill_log_template(
            &template,
            institution_from.as_ref().map(|i| i.name.as_str()),
            institution_to.as_ref().map(|i| i.name.as_str()),
            status_old.as_deref(),
            status_new.as_deref(),
        );
        Ok(Self {
            institution_from,
            institution_to,
            status_old,
            status_new,
            content,
            created_at: datetime(v, "created_at")?,
        })
    }
}

/// One complaint as LAPOR! holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplaintDetail {
    pub id: i64,
    pub tracking_id: String,
    pub title: String,
    pub content: String,
    pub category_id: Option<i64>,
    pub status_name: String,
    #[serde(skip)]
    pub status: StatusName,
    pub disposition_id: Option<i64>,
    pub disposition_name: Option<String>,
    pub is_anonymous: bool,
    pub is_secret: bool,
    pub tags_raw: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub logs: Vec<LogEntry>,
}

pub fn parse_complaint(doc: &Value, table: &StatusTable) -> Result<ComplaintDetail, FieldError> {
    let results = results(doc)?;
    let data = get(results, "data")?;
    let status_name = string(data, "status_name")?;
    let logs = match results.get("data_logs") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => array(results, "data_logs")?
            .iter()
            .map(LogEntry::parse)
            .collect::<Result<_, _>>()?,
    };
    Ok(ComplaintDetail {
        id: int(data, "id")?,
        tracking_id: opt_string(data, "tracking_id")?.unwrap_or_default(),
        title: opt_string(data, "title")?.unwrap_or_default(),
        content: opt_string(data, "content")?.unwrap_or_default(),
        category_id: opt_int(data, "category_id")?,
        status: table.map(&status_name),
        status_name,
        disposition_id: opt_int(data, "disposition_id")?,
        disposition_name: opt_string(data, "disposition_name")?,
        is_anonymous: flag(data, "is_anonymous")?,
        is_secret: flag(data, "is_secret")?,
        tags_raw: opt_string(data, "tags_raw")?.unwrap_or_default(),
        created_at: datetime(data, "created_at")?,
        updated_at: datetime(data, "updated_at")?,
        logs,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowupAttachment {
    pub path: String,
    pub file_name: String,
}

/// One follow-up (tindak lanjut) as LAPOR! holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Followup {
    pub id: i64,
    pub content: String,
    pub is_secret: bool,
    /// `None`: written by the reporter.
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attachments: Vec<FollowupAttachment>,
}

pub fn parse_followups(doc: &Value) -> Result<Vec<Followup>, FieldError> {
    array(results(doc)?, "data")?
        .iter()
        .map(|v| {
            let institution = opt_institution(v, "institution")?;
            let attachments = match v.get("attachments") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|a| {
                        Ok(FollowupAttachment {
                            path: opt_string(a, "path")?.unwrap_or_default(),
                            file_name: opt_string(a, "file_name")?.unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, FieldError>>()?,
                _ => Vec::new(),
            };
            Ok(Followup {
                id: int(v, "id")?,
                content: opt_string(v, "content")?.unwrap_or_default(),
                is_secret: flag(v, "is_secret")?,
                institution_id: institution.as_ref().map(|i| i.id),
                institution_name: institution.map(|i| i.name),
                created_at: followup_datetime(v, "created_at")?,
                attachments,
            })
        })
        .collect()
}

pub fn parse_followup_added(doc: &Value) -> Result<i64, FieldError> {
    int(get(results(doc)?, "data")?, "id")
}

/// A follow-up to post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewFollowup {
    pub complaint_id: i64,
    pub institution_from_id: i64,
    pub institution_to_id: i64,
    pub content: String,
    pub is_secret: bool,
}

/// A forward: "not our authority", to another institution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forward {
    pub complaint_id: i64,
    pub target_institution_id: i64,
    pub reason: String,
}

impl Forward {
    pub fn to_wire(&self) -> Value {
        serde_json::json!({
            "is_request": 1,
            "reason": self.target_institution_id,
            "reason_description": self.reason,
            "not_authority": 1,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Complaints dispositioned to our institution.
    Inbox,
    /// Complaints our account created.
    Created,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inbox => "inbox",
            Scope::Created => "created",
        }
    }
}

/// A line of a complaint list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplaintSummary {
    pub id: i64,
    pub tracking_id: String,
    pub title: String,
    pub status_name: String,
    #[serde(skip)]
    pub status: StatusName,
    pub disposition_id: Option<i64>,
    pub tags_raw: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryPage {
    pub items: Vec<ComplaintSummary>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

pub fn parse_summary_page(doc: &Value, table: &StatusTable) -> Result<SummaryPage, FieldError> {
    let results = results(doc)?;
    let items = array(results, "data")?
        .iter()
        .map(|v| {
            let status_name = string(v, "status_name")?;
            Ok(ComplaintSummary {
                id: int(v, "id")?,
                tracking_id: opt_string(v, "tracking_id")?.unwrap_or_default(),
                title: opt_string(v, "title")?.unwrap_or_default(),
                status: table.map(&status_name),
                status_name,
                disposition_id: opt_int(v, "disposition_id")?,
                tags_raw: opt_string(v, "tags_raw")?.unwrap_or_default(),
                created_at: datetime(v, "created_at")?,
                updated_at: datetime(v, "updated_at")?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let meta = get(results, "meta")?;
    Ok(SummaryPage {
        items,
        page: int(meta, "page")?,
        page_size: int(meta, "page_size")?,
        total: int(meta, "total")?,
    })
}

/// Whether `tags_raw` carries exactly this bridge reference.
pub fn carries_ref(tags_raw: &str, local_ref: &str) -> bool {
    tags_raw
        .split([',', ' ', ';'])
        .any(|tag| tag.trim().strip_prefix("ref:") == Some(local_ref))
}

/// The bridge reference in `tags_raw`, if any.
pub fn ref_in_tags(tags_raw: &str) -> Option<&str> {
    tags_raw
        .split([',', ' ', ';'])
        .find_map(|tag| tag.trim().strip_prefix("ref:"))
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lapor::Status;

    #[test]
    fn the_documented_detail_parses_with_logs_filled() {
        let doc = serde_json::json!({"success": true, "results": {
          "data": {"id": 123456, "tracking_id": "4812345", "title": "t", "content": "c",
                   "category_id": 12, "status_code": 2, "status_name": "Terverifikasi",
                   "disposition_id": 101, "disposition_name": "Pemerintah Kota Palembang",
                   "is_anonymous": 0, "is_secret": "1", "tags_raw": "ref:PLG-2025-000123",
                   "created_at": "2025-06-01 09:15:00", "updated_at": "2025-06-02 08:00:00"},
          "data_logs": [{"institution_from": {"id": 1, "name": "Admin LAPOR!"},
                         "institution_to": {"id": 101, "name": "Pemerintah Kota Palembang"},
                         "status_old": null,
                         "status_new": {"name": "Terverifikasi", "color": "#2a2"},
                         "content": "Laporan didisposisikan dari {{institution_from}} ke {{institution_to}} ({{status_old}} → {{status_new}})",
                         "created_at": "2025-06-02 08:00:00"}]}});
        let c = parse_complaint(&doc, &StatusTable::default()).unwrap();
        assert_eq!(c.status, StatusName::Known(Status::Verified));
        assert!(c.is_secret);
        assert_eq!(c.created_at.to_rfc3339(), "2025-06-01T02:15:00+00:00");
        assert_eq!(
            c.logs[0].content,
            "Laporan didisposisikan dari Admin LAPOR! ke Pemerintah Kota Palembang (- → Terverifikasi)"
        );
        assert!(carries_ref(&c.tags_raw, "PLG-2025-000123"));
        assert!(!carries_ref(&c.tags_raw, "PLG-2025-00012"));
    }

    #[test]
    fn missing_or_mistyped_fields_are_named() {
        let doc = serde_json::json!({"results": {"data": {"id": "x"}}});
        let err = parse_complaint(&doc, &StatusTable::default()).unwrap_err();
        assert_eq!(err.field, "status_name");
        let doc = serde_json::json!({"results": {"data": {"id": "x", "status_name": "Selesai"}}});
        let err = parse_complaint(&doc, &StatusTable::default()).unwrap_err();
        assert_eq!(err.field, "id");
        let doc = serde_json::json!({"results": {"data": [{"id": 1, "content": "a", "created_at": "2025-06-01 10:00:00"}]}});
        assert_eq!(parse_followups(&doc).unwrap_err().field, "created_at");
    }

    #[test]
    fn a_created_id_is_read_from_each_of_its_three_places() {
        for doc in [
            serde_json::json!({"success": true, "complaint_id": 123456, "tracking_id": "4812345"}),
            serde_json::json!({"success": true, "data": {"complaint_id": "123456", "tracking_id": "4812345"}}),
            serde_json::json!({"success": true, "tracking_id": "4812345",
                               "data": {"results": {"complaint": {"id": 123456}}}}),
            serde_json::json!({"success": true, "data": {"results": {"complaint":
                               {"id": 123456, "tracking_id": 4812345}}}}),
        ] {
            assert_eq!(
                parse_created(&doc).unwrap(),
                Created {
                    complaint_id: 123456,
                    tracking_id: "4812345".into()
                },
                "{doc}"
            );
        }
        // The top-level id wins; a mistyped id is named where it was found.
        let doc = serde_json::json!({"complaint_id": 1, "data": {"complaint_id": 2}});
        assert_eq!(parse_created(&doc).unwrap().complaint_id, 1);
        let doc = serde_json::json!({"data": {"results": {"complaint": {"id": "x"}}}});
        assert_eq!(
            parse_created(&doc).unwrap_err().field,
            "data.results.complaint.id"
        );
        let doc = serde_json::json!({"success": true, "message": "Laporan berhasil dibuat"});
        assert_eq!(parse_created(&doc).unwrap_err().field, "complaint_id");
    }

    #[test]
    fn create_body_uses_lapor_attachment_quirk() {
        let mut new = NewComplaint {
            title: "Jalan rusak".into(),
            content: "Jalan berlubang di depan pasar".into(),
            category_id: 1,
            disposition_id: 101,
            location_id: None,
            date_of_incident: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
            is_anonymous: false,
            is_secret: true,
            tags_raw: "ref:PLG-1".into(),
            attachment_ids: vec![],
        };
        assert_eq!(new.to_wire()["attachments"], Value::Bool(false));
        new.attachment_ids = vec![9001, 9002];
        assert_eq!(new.to_wire()["attachments"], "[9001,9002]");
        assert_eq!(new.to_wire()["is_secret"], 1);
    }
}
