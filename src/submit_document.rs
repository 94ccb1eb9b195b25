//! The submit document: what `POST /api/v1/complaints` and
//! `lapor_bridge.submit_complaint(doc)` accept.
//!
//! The one validation authority is the database function
//! `lapor_bridge.submit_complaint` (applications that share the database call
//! it directly, inside their own transactions). This type states the same
//! fields and limits for Rust callers (the demo builds its samples with it)
//! and for the OpenAPI document; a test submits values at and past every
//! limit the OpenAPI document states and checks that the function agrees.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `local_ref`: a letter or digit, then letters, digits, `.`, `_`, `/`, `-`;
/// the prefix `LAPOR-` is reserved for complaints imported from LAPOR!.
pub const LOCAL_REF_PATTERN: &str = "^(?!LAPOR-)[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$";
pub const LOCAL_REF_MAX: usize = 64;
/// Lengths after surrounding whitespace is trimmed, as LAPOR! checks them.
pub const TITLE_MIN: usize = 1;
pub const TITLE_MAX: usize = 150;
pub const CONTENT_MIN: usize = 10;
pub const CONTENT_MAX: usize = 20_000;
/// Integers are JSON numbers of at most 18 digits.
pub const ID_MAX: i64 = 999_999_999_999_999_999;
pub const REPORTER_NAME_MAX: usize = 200;
pub const REPORTER_PHONE_MAX: usize = 32;
pub const REPORTER_EMAIL_MAX: usize = 254;
pub const REPORTER_NIK_LEN: usize = 16;
pub const REPORTER_ADDRESS_MAX: usize = 500;
pub const ATTACHMENTS_MAX: usize = 10;
pub const FILE_NAME_MAX: usize = 200;
/// Decoded size of one attachment.
pub const ATTACHMENT_MAX_BYTES: usize = 10 * 1024 * 1024;

/// A complaint written by the city. Unknown fields are refused (`422`
/// naming them). Submitting the same `local_ref` with the same document again
/// is answered `200` with the same status document; with another document,
/// `409`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "local_ref": "PLG-2025-000123",
    "title": "Jalan berlubang di Jl. Sudirman",
    "content": "Jalan berlubang cukup dalam di depan pasar, membahayakan pengendara motor.",
    "category_id": 12,
    "date_of_incident": "2025-06-01",
    "is_anonymous": false,
    "is_secret": false,
    "reporter": {"name": "Budi Santoso", "phone": "081234567890", "email": "budi@example.org"}
}))]
pub struct SubmitDocument {
    /// The city's own reference, unique: the key of idempotent submission.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^(?!LAPOR-)[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
    )]
    pub local_ref: String,
    /// 1-150 characters after trimming surrounding whitespace.
    #[schema(min_length = 1, max_length = 150)]
    pub title: String,
    /// 10-20000 characters after trimming surrounding whitespace.
    #[schema(min_length = 10, max_length = 20000)]
    pub content: String,
    /// LAPOR!'s category id.
    #[schema(minimum = -999_999_999_999_999_999_i64, maximum = 999_999_999_999_999_999_i64)]
    pub category_id: i64,
    /// The institution that should handle it; default: this institution
    /// (`LAPOR_INSTITUTION_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -999_999_999_999_999_999_i64, maximum = 999_999_999_999_999_999_i64)]
    pub disposition_id: Option<i64>,
    /// LAPOR!'s location id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -999_999_999_999_999_999_i64, maximum = 999_999_999_999_999_999_i64)]
    pub location_id: Option<i64>,
    /// A calendar date, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date, pattern = "^\\d{4}-\\d{2}-\\d{2}$", example = "2025-06-01")]
    pub date_of_incident: chrono::NaiveDate,
    /// The reporter's identity is not shown on LAPOR! (default false; `0`
    /// and `1` are accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_anonymous: Option<bool>,
    /// The complaint is not public on LAPOR! (default false; `0` and `1` are
    /// accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_secret: Option<bool>,
    /// Who reported it: stored only encrypted, never sent to LAPOR!.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<SubmitReporter>,
    /// Files sent to LAPOR! with the complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 10)]
    pub attachments: Option<Vec<SubmitAttachment>>,
}

/// The reporter: every field optional (or `null`); lengths after trimming;
/// an empty string counts as absent. Control characters are refused (line
/// breaks and tabs are allowed in `address`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitReporter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// 8-15 digits, optionally a leading `+`, with spaces or dashes between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32, pattern = "^([ -]*\\+?[ -]*([0-9][ -]*){8,15})?$")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 254, pattern = "^ *([^@\\s]+@[^@\\s]+\\.[^@\\s]+)? *$")]
    pub email: Option<String>,
    /// Nomor Induk Kependudukan: 16 digits (a province code, a birth date
    /// DDMMYY with 40 added to the day for women, a serial other than 0000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16, pattern = "^([0-9]{16})?$")]
    pub nik: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub address: Option<String>,
}

/// One file, its content in base64 (at most 10 MiB decoded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitAttachment {
    /// 1-200 characters, no `/` or `\`.
    #[schema(min_length = 1, max_length = 200, pattern = "^[^/\\\\]+$")]
    pub file_name: String,
    /// Standard base64; at most 10 MiB once decoded.
    #[schema(content_encoding = "base64", max_length = 14000000)]
    pub content_base64: String,
}

impl SubmitDocument {
    /// The JSON document `submit_complaint` takes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_are_the_schema_limits() {
        // The attribute values above are literals (utoipa takes no consts);
        // this keeps them and the constants one set.
        let schema =
            serde_json::to_value(<SubmitDocument as utoipa::PartialSchema>::schema()).unwrap();
        let p = &schema["properties"];
        assert_eq!(p["local_ref"]["maxLength"], LOCAL_REF_MAX);
        assert_eq!(p["local_ref"]["pattern"], LOCAL_REF_PATTERN);
        assert_eq!(p["title"]["minLength"], TITLE_MIN);
        assert_eq!(p["title"]["maxLength"], TITLE_MAX);
        assert_eq!(p["content"]["minLength"], CONTENT_MIN);
        assert_eq!(p["content"]["maxLength"], CONTENT_MAX);
        assert_eq!(p["category_id"]["maximum"], ID_MAX);
        assert_eq!(p["attachments"]["maxItems"], ATTACHMENTS_MAX);
        let r = serde_json::to_value(<SubmitReporter as utoipa::PartialSchema>::schema()).unwrap();
        let r = &r["properties"];
        assert_eq!(r["name"]["maxLength"], REPORTER_NAME_MAX);
        assert_eq!(r["phone"]["maxLength"], REPORTER_PHONE_MAX);
        assert_eq!(r["email"]["maxLength"], REPORTER_EMAIL_MAX);
        assert_eq!(r["nik"]["maxLength"], REPORTER_NIK_LEN);
        assert_eq!(r["address"]["maxLength"], REPORTER_ADDRESS_MAX);
        let a =
            serde_json::to_value(<SubmitAttachment as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(a["properties"]["file_name"]["maxLength"], FILE_NAME_MAX);
        assert!(ATTACHMENT_MAX_BYTES.div_ceil(3) * 4 <= 14_000_000);
    }

    #[test]
    fn a_document_serializes_to_what_submit_complaint_takes() {
        let doc = SubmitDocument {
            local_ref: "PLG-1".into(),
            title: "t".into(),
            content: "0123456789".into(),
            category_id: 1,
            disposition_id: None,
            location_id: None,
            date_of_incident: chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
            is_anonymous: Some(true),
            is_secret: None,
            reporter: None,
            attachments: None,
        };
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"local_ref": "PLG-1", "title": "t", "content": "0123456789",
                "category_id": 1, "date_of_incident": "2025-06-01", "is_anonymous": true})
        );
    }
}
