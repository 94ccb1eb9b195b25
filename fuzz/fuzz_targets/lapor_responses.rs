//! Any bytes as a LAPOR! answer: every parser of `lapor::types` on the JSON
//! value, and the tag and template helpers on every string in it. Parsing
//! may fail; it must never panic.

#![no_main]

use lapor_bridge::lapor::StatusTable;
use lapor_bridge::lapor::types::{
    carries_ref, fill_log_template, parse_complaint, parse_created, parse_followup_added,
    parse_followups, parse_institutions, parse_summary_page, parse_uploaded, ref_in_tags,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The bridge reference helpers on one string, with the property that ties
/// them: the reference `ref_in_tags` finds is one that `carries_ref` sees.
fn check_tags(tags_raw: &str) {
    if let Some(found) = ref_in_tags(tags_raw) {
        assert!(!found.is_empty());
        assert!(
            carries_ref(tags_raw, found),
            "ref_in_tags({tags_raw:?}) = {found:?} but carries_ref disagrees"
        );
    }
    let _ = carries_ref(tags_raw, "PLG-2025-000123");
    let _ = carries_ref(tags_raw, "");
}

fn check_strings(v: &Value, table: &StatusTable, depth: usize) {
    match v {
        Value::String(s) => {
            check_tags(s);
            let _ = table.map(s);
            let _ = fill_log_template(s, Some(s), None, Some("Terverifikasi"), Some(s));
        }
        Value::Array(items) if depth < 64 => {
            for item in items {
                check_strings(item, table, depth + 1);
            }
        }
        Value::Object(map) if depth < 64 => {
            for (k, item) in map {
                check_tags(k);
                check_strings(item, table, depth + 1);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let table = StatusTable::default();
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        let _ = parse_institutions(&doc);
        let _ = parse_created(&doc);
        let _ = parse_uploaded(&doc);
        let _ = parse_complaint(&doc, &table);
        let _ = parse_followups(&doc);
        let _ = parse_followup_added(&doc);
        let _ = parse_summary_page(&doc, &table);
        check_strings(&doc, &table, 0);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_tags(text);
        // The input cut in five: a template and its four values.
        let mut parts = text.splitn(5, '\u{1}');
        let template = parts.next().unwrap_or_default();
        let values: Vec<&str> = parts.collect();
        let filled = fill_log_template(
            template,
            values.first().copied(),
            values.get(1).copied(),
            values.get(2).copied(),
            values.get(3).copied(),
        );
        // A template without placeholders comes back unchanged.
        if !template.contains("{{") {
            assert_eq!(filled, template);
        }
    }
});
