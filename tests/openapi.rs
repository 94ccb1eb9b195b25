//! `GET /api/v1/openapi.json`: every route the router serves is in the
//! document with its roles, every reference resolves, and the submit
//! document's limits are those `lapor_bridge.submit_complaint` enforces.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const INTAKE: &str = "intake-token-openapi-0001";
const OPERATOR: &str = "operator-token-openapi-01";
const AUDITOR: &str = "auditor-token-openapi-001";

/// Every route of the admin API (bridge.md's table) with the roles that may
/// call it; empty: no token. Adding a route to the router without it here
/// (or without it in the document) fails `every_route_is_served_and_documented`.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("POST", "/api/v1/complaints", &["intake", "admin"]),
    ("GET", "/api/v1/complaints", &["operator", "admin"]),
    (
        "GET",
        "/api/v1/complaints/{local_ref}",
        &["operator", "admin"],
    ),
    (
        "GET",
        "/api/v1/complaints/{local_ref}/timeline",
        &["operator", "admin"],
    ),
    (
        "POST",
        "/api/v1/complaints/{local_ref}/followups",
        &["intake", "admin"],
    ),
    (
        "POST",
        "/api/v1/complaints/{local_ref}/forward",
        &["operator", "admin"],
    ),
    ("POST", "/api/v1/complaints/{local_ref}/erase", &["admin"]),
    ("GET", "/api/v1/outbox", &["operator", "admin"]),
    ("POST", "/api/v1/outbox/{id}/retry", &["operator", "admin"]),
    (
        "POST",
        "/api/v1/outbox/{id}/discard",
        &["operator", "admin"],
    ),
    ("POST", "/api/v1/pull", &["operator", "admin"]),
    ("POST", "/api/v1/reconcile", &["operator", "admin"]),
    ("GET", "/api/v1/audit", &["auditor", "admin"]),
    ("GET", "/api/v1/audit/verify", &["auditor", "admin"]),
    ("GET", "/api/v1/audit/checkpoints", &["auditor", "admin"]),
    ("GET", "/api/v1/changes", &["operator", "intake", "admin"]),
    ("GET", "/api/v1/webhooks", &["operator", "admin"]),
    (
        "POST",
        "/api/v1/webhooks/{id}/enable",
        &["operator", "admin"],
    ),
    ("GET", "/api/v1/webhooks/deliveries", &["operator", "admin"]),
    (
        "POST",
        "/api/v1/webhooks/deliveries/{id}/retry",
        &["operator", "admin"],
    ),
    (
        "POST",
        "/api/v1/webhooks/deliveries/{id}/discard",
        &["operator", "admin"],
    ),
    ("GET", "/api/v1/openapi.json", &[]),
    ("GET", "/healthz", &[]),
    ("GET", "/readyz", &[]),
    ("GET", "/metrics", &[]),
];

/// A concrete path for a templated one.
fn concrete(path: &str) -> String {
    path.replace("{local_ref}", "PLG-NOPE").replace("{id}", "1")
}

async fn document(served: &Served) -> Value {
    let resp = served
        .http
        .get(format!("{}/api/v1/openapi.json", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    resp.json().await.unwrap()
}

#[tokio::test]
async fn every_route_is_served_and_documented() {
    let app = spawn_app().await;
    let served = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let doc = document(&served).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer",
               "description": "An API token of the bridge (`[[tokens]]` by SHA-256, or BRIDGE_ADMIN_TOKEN)."})
    );

    // The router's own list is this list.
    let table: BTreeSet<(String, String)> = lapor_bridge::web::api::api_routes()
        .iter()
        .flat_map(|r| {
            r.methods.iter().map(|m| {
                (
                    serde_json::to_value(m)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_uppercase(),
                    r.path.clone(),
                )
            })
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        table, expected,
        "api::api_routes() and this test's list differ"
    );

    // The document describes exactly these operations.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(documented, expected, "the document's operations differ");

    for (method, path, roles) in ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert_eq!(op["x-roles"], json!(roles), "{method} {path}: x-roles");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        // Served: without a token a protected route answers 401 in the
        // error shape (not 404 or 405), an open one answers.
        let resp = served
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{}", served.base, concrete(path)),
            )
            .send()
            .await
            .unwrap();
        if roles.is_empty() {
            assert_eq!(op["security"], json!([{}]), "{method} {path}");
            assert!(
                resp.status() == StatusCode::OK || resp.status() == StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {}",
                resp.status()
            );
        } else {
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            assert!(
                op["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Roles: {}.", roles.join(", "))),
                "{method} {path}: {}",
                op["description"]
            );
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            let body: lapor_bridge::web::api::ErrorBody = resp.json().await.unwrap();
            assert_eq!(body.error, "missing or unknown token");
            for code in ["401", "403"] {
                assert_eq!(
                    op["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
        }
    }
    // Any token may read the document too.
    let (status, _) = served.get("/api/v1/openapi.json", INTAKE).await;
    assert_eq!(status, StatusCode::OK);
    served.shutdown.cancel();
    app.finish().await;
}

fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.insert(v.as_str().unwrap().to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_bodies_are_typed() {
    let doc = serde_json::to_value(lapor_bridge::web::api::openapi::document(
        &lapor_bridge::web::api::api_routes(),
    ))
    .unwrap();
    let mut found = BTreeSet::new();
    refs(&doc, &mut found);
    assert!(found.contains("#/components/schemas/SubmitDocument"));
    for r in &found {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    let submit = &doc["paths"]["/api/v1/complaints"]["post"];
    assert_eq!(
        submit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SubmitDocument"
    );
    assert_eq!(
        submit["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/StatusDocument"
    );
    assert_eq!(
        submit["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // Every field of the submit document is described, the required ones
    // as required.
    let schema = &doc["components"]["schemas"]["SubmitDocument"];
    let fields: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "local_ref",
            "title",
            "content",
            "category_id",
            "disposition_id",
            "location_id",
            "date_of_incident",
            "is_anonymous",
            "is_secret",
            "reporter",
            "attachments"
        ])
    );
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        BTreeSet::from([
            "local_ref",
            "title",
            "content",
            "category_id",
            "date_of_incident"
        ])
    );
    assert_eq!(schema["additionalProperties"], json!(false));
}

/// The schema of `name` in the document (resolving one `$ref`, or the
/// non-null member of a nullable `oneOf`).
fn schema_of<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema["$ref"].as_str() {
        return &doc["components"]["schemas"][r.rsplit('/').next().unwrap()];
    }
    if let Some(members) = schema["oneOf"].as_array() {
        for m in members {
            if m["type"] != "null" {
                return schema_of(doc, m);
            }
        }
    }
    schema
}

/// Submits `doc` through `submit_complaint` and rolls back: the fields it
/// names, empty when accepted.
async fn problems(pool: &sqlx::PgPool, doc: &Value) -> BTreeSet<String> {
    let mut tx = pool.begin().await.unwrap();
    let out = match lapor_bridge::store::complaints::submit(&mut tx, doc).await {
        Ok(_) => BTreeSet::new(),
        Err(lapor_bridge::store::complaints::SubmitError::Invalid(fields)) => {
            fields.into_keys().collect()
        }
        Err(e) => panic!("{e}"),
    };
    tx.rollback().await.unwrap();
    out
}

/// A field's value of a given length.
type ValueOfLength = Box<dyn Fn(usize) -> Value>;

#[tokio::test]
async fn the_documented_submit_limits_are_those_the_database_enforces() {
    let app = spawn_app().await;
    let doc = serde_json::to_value(lapor_bridge::web::api::openapi::document(
        &lapor_bridge::web::api::api_routes(),
    ))
    .unwrap();
    let submit = &doc["components"]["schemas"]["SubmitDocument"];
    let reporter = schema_of(&doc, &submit["properties"]["reporter"]);
    let attachments = schema_of(&doc, &submit["properties"]["attachments"]);
    let attachment = schema_of(&doc, &attachments["items"]);
    let limit = |s: &Value, key: &str| s[key].as_u64().unwrap() as usize;

    let base = complaint_doc("PLG-LIMITS-1");
    assert!(problems(&app.pool, &base).await.is_empty());

    // Strings at their documented maximum pass; one more character is
    // named. Values keep their shape (a phone stays a phone).
    let cases: Vec<(&str, usize, ValueOfLength)> = vec![
        (
            "local_ref",
            limit(&submit["properties"]["local_ref"], "maxLength"),
            Box::new(|n| json!("R".repeat(n))),
        ),
        (
            "title",
            limit(&submit["properties"]["title"], "maxLength"),
            Box::new(|n| json!("t".repeat(n))),
        ),
        (
            "content",
            limit(&submit["properties"]["content"], "maxLength"),
            Box::new(|n| json!("c".repeat(n))),
        ),
        (
            "reporter.name",
            limit(
                schema_of(&doc, &reporter["properties"]["name"]),
                "maxLength",
            ),
            Box::new(|n| json!("n".repeat(n))),
        ),
        (
            "reporter.phone",
            limit(
                schema_of(&doc, &reporter["properties"]["phone"]),
                "maxLength",
            ),
            Box::new(|n| json!(format!("081234567890123{}", "-".repeat(n - 15)))),
        ),
        (
            "reporter.email",
            limit(
                schema_of(&doc, &reporter["properties"]["email"]),
                "maxLength",
            ),
            Box::new(|n| json!(format!("{}@example.org", "e".repeat(n - 12)))),
        ),
        (
            "reporter.address",
            limit(
                schema_of(&doc, &reporter["properties"]["address"]),
                "maxLength",
            ),
            Box::new(|n| json!("a".repeat(n))),
        ),
        (
            "attachments[0].file_name",
            limit(&attachment["properties"]["file_name"], "maxLength"),
            Box::new(|n| json!([{"file_name": "f".repeat(n), "content_base64": "aGFsbw=="}])),
        ),
    ];
    for (field, max, value) in cases {
        for (n, ok) in [(max, true), (max + 1, false)] {
            let mut doc = base.clone();
            let v = value(n);
            match field.split_once('.') {
                Some(("reporter", key)) => doc["reporter"][key] = v,
                _ if field.starts_with("attachments") => doc["attachments"] = v,
                _ => doc[field] = v,
            }
            let named = problems(&app.pool, &doc).await;
            if ok {
                assert!(named.is_empty(), "{field} of {n} refused: {named:?}");
            } else {
                assert_eq!(named, BTreeSet::from([field.to_string()]), "{field} of {n}");
            }
        }
    }
    // Minimum lengths, after trimming.
    for (field, min) in [
        ("title", limit(&submit["properties"]["title"], "minLength")),
        (
            "content",
            limit(&submit["properties"]["content"], "minLength"),
        ),
    ] {
        let mut doc = base.clone();
        doc[field] = json!(format!("  {}  ", "x".repeat(min)));
        assert!(
            problems(&app.pool, &doc).await.is_empty(),
            "{field} of {min}"
        );
        doc[field] = json!(format!("  {}  ", "x".repeat(min - 1)));
        assert_eq!(
            problems(&app.pool, &doc).await,
            BTreeSet::from([field.to_string()])
        );
    }
    // The NIK is exactly its length; attachments at most their count.
    let nik = schema_of(&doc, &reporter["properties"]["nik"]);
    let mut d = base.clone();
    d["reporter"]["nik"] = json!("3171014101900001");
    assert_eq!("3171014101900001".len(), limit(nik, "maxLength"));
    assert!(problems(&app.pool, &d).await.is_empty());
    d["reporter"]["nik"] = json!("31710141019000012");
    assert_eq!(
        problems(&app.pool, &d).await,
        BTreeSet::from(["reporter.nik".to_string()])
    );
    let max_items = limit(attachments, "maxItems");
    let file = json!({"file_name": "foto.jpg", "content_base64": "aGFsbw=="});
    let mut d = base.clone();
    d["attachments"] = json!(vec![file.clone(); max_items]);
    assert!(problems(&app.pool, &d).await.is_empty());
    d["attachments"] = json!(vec![file; max_items + 1]);
    assert_eq!(
        problems(&app.pool, &d).await,
        BTreeSet::from(["attachments".to_string()])
    );
    // The reserved prefix the pattern excludes.
    let pattern = submit["properties"]["local_ref"]["pattern"]
        .as_str()
        .unwrap();
    assert!(pattern.contains("(?!LAPOR-)"));
    let mut d = base.clone();
    d["local_ref"] = json!("LAPOR-123");
    assert_eq!(
        problems(&app.pool, &d).await,
        BTreeSet::from(["local_ref".to_string()])
    );
    // An unknown field is refused, as `additionalProperties: false` says.
    let mut d = base.clone();
    d["priority"] = json!(1);
    assert_eq!(
        problems(&app.pool, &d).await,
        BTreeSet::from(["priority".to_string()])
    );
    app.finish().await;
}

#[tokio::test]
async fn a_422_answers_in_the_documented_error_shape() {
    let app = spawn_app().await;
    let served = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let (status, body) = served
        .post(
            "/api/v1/complaints",
            INTAKE,
            json!({"local_ref": "PLG-E-1", "title": "", "content": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: lapor_bridge::web::api::ErrorBody = serde_json::from_value(body).unwrap();
    assert_eq!(body.error, "invalid input");
    let fields = body.fields.unwrap();
    for f in ["title", "content", "category_id", "date_of_incident"] {
        assert!(fields.contains_key(f), "{f}: {fields:?}");
    }
    served.shutdown.cancel();
    app.finish().await;
}
