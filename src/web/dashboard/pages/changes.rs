//! What an audit entry changed, field by field, in the reader's language.

use maud::{Markup, html};
use serde_json::Value;

use crate::web::dashboard::i18n::{self, K, Lang, label, t};

/// A field's name in the reader's language (known fields), else as stored.
fn field_label(lang: Lang, field: &str) -> String {
    let (id, en) = match field {
        "status" | "status_name" => ("status", "status"),
        "lapor_status_name" => ("status di LAPOR!", "status on LAPOR!"),
        "disposition_id" | "lapor_disposition_id" => ("disposisi", "disposition"),
        "institution_id" => ("instansi", "institution"),
        "lapor_complaint_id" => ("ID LAPOR!", "LAPOR! id"),
        "tracking_id" => ("nomor pelacakan", "tracking id"),
        "outcome" => ("hasil", "outcome"),
        "attempt" => ("percobaan", "attempt"),
        "message" => ("pesan", "message"),
        "http_status" => ("status HTTP", "HTTP status"),
        "failure_kind" => ("jenis kegagalan", "failure kind"),
        "conflict_reason" => ("alasan konflik", "conflict reason"),
        "state" => ("keadaan", "state"),
        "step" => ("langkah", "step"),
        "followup_id" => ("tindak lanjut", "follow-up"),
        "lapor_followup_id" => ("ID tindak lanjut di LAPOR!", "LAPOR! follow-up id"),
        "reason" => ("alasan", "reason"),
        "content" => ("isi", "content"),
        "title" => ("judul", "title"),
        other => return other.replace('_', " "),
    };
    match lang {
        Lang::Id => id.to_string(),
        Lang::En => en.to_string(),
    }
}

/// A value as people read it.
fn value_words(lang: Lang, field: &str, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => match field {
            "outcome" => label(lang, s.parse().ok().and_then(i18n::outcome_key), s),
            "state" => label(lang, s.parse().ok().map(i18n::step_state_key), s),
            "status" => label(lang, i18n::status_key(s), s),
            "step" => label(lang, s.parse().ok().map(i18n::step_key), s),
            _ => s.clone(),
        },
        Some(Value::Bool(b)) => t(lang, if *b { K::Yes } else { K::No }).to_string(),
        Some(other) => other.to_string(),
    }
}

fn compact_json(v: &Option<Value>) -> String {
    v.as_ref().map(Value::to_string).unwrap_or_default()
}

/// What an entry changed, field by field ("status: Terverifikasi →
/// Dalam Proses"), with the stored JSON one click away.
pub(super) fn changes(lang: Lang, before: &Option<Value>, after: &Option<Value>) -> Markup {
    if before.is_none() && after.is_none() {
        return html! { "—" };
    }
    let empty = serde_json::Map::new();
    let as_map = |v: &Option<Value>| match v {
        Some(Value::Object(m)) => Some(m.clone()),
        _ => None,
    };
    let (b, a) = (as_map(before), as_map(after));
    let (bm, am) = (b.as_ref().unwrap_or(&empty), a.as_ref().unwrap_or(&empty));
    let mut keys: Vec<&String> = am.keys().chain(bm.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed = keys.into_iter().filter(|k| bm.get(*k) != am.get(*k));
    html! {
        ul.changes {
            @for k in changed {
                li {
                    b { (field_label(lang, k)) } ": "
                    @if b.is_some() { (value_words(lang, k, bm.get(k))) " → " }
                    (value_words(lang, k, am.get(k)))
                }
            }
        }
        details {
            summary { "JSON" }
            pre.mono {
                (t(lang, K::Before)) ": " (compact_json(before)) "\n"
                (t(lang, K::After)) ": " (compact_json(after))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_field_before_after_with_the_json_a_click_away() {
        let html = changes(
            Lang::Id,
            &Some(serde_json::json!({"status": "verified", "tracking_id": "A1"})),
            &Some(serde_json::json!({"status": "in_process", "tracking_id": "A1"})),
        )
        .into_string();
        assert!(
            html.contains("<b>status</b>: Terverifikasi → Dalam Proses"),
            "{html}"
        );
        assert!(
            !html.contains("<b>nomor pelacakan</b>"),
            "unchanged fields are left out"
        );
        assert!(html.contains("<details><summary>JSON</summary>"), "{html}");
    }
}
