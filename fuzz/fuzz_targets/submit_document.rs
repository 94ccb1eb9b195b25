//! Any bytes as the body of `POST /api/v1/complaints`.
//!
//! The submit document is validated inside PostgreSQL
//! (`lapor_bridge.submit_complaint`); the Rust side only parses the body
//! (`serde_json::from_slice`, as the handler does), reads `local_ref` and a
//! few fields for the audit entry (as `actions::submit` does), and binds the
//! value as a `jsonb` parameter through sqlx. This target runs that path
//! without a database and checks that what sqlx would send PostgreSQL is the
//! document that came in: JSONB version byte 1, then JSON that parses back to
//! the same value (floats to within one rounding step: serde_json's default
//! float parser is not exact, and no valid submit document holds a float).
//! It must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sqlx::postgres::{PgArgumentBuffer, Postgres};

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };

    // What actions::submit reads before and after the database call.
    let local_ref = doc
        .get("local_ref")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let audit_after = json!({
        "title": doc.get("title"),
        "category_id": doc.get("category_id"),
        "disposition_id": doc.get("disposition_id"),
    });
    assert!(audit_after.is_object());
    let _ = local_ref.len();

    // The jsonb parameter, exactly as sqlx encodes `.bind(&doc)`.
    let mut buf = PgArgumentBuffer::default();
    let encoded = sqlx::Encode::<Postgres>::encode_by_ref(&&doc, &mut buf);
    assert!(encoded.is_ok(), "sqlx refused to encode {doc:?}");
    assert_eq!(buf.first(), Some(&1u8), "JSONB version byte");
    let sent: Value = match serde_json::from_slice(&buf[1..]) {
        Ok(v) => v,
        Err(e) => panic!("sqlx sent JSON that does not parse back: {e}"),
    };
    assert!(
        same(&doc, &sent),
        "document changed on the way to PostgreSQL"
    );
});
