//! The admin HTTP API end to end: a real daemon (`Daemon::start`) with its own
//! outbox workers on the system clock, the LAPOR! simulator, and a fresh
//! database per test.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use lapor_bridge::app::Daemon;
use lapor_bridge::clock::SystemClock;
use lapor_bridge::config::Settings;
use lapor_bridge::simulator::{self, RunningSimulator, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const INTAKE_TOKEN: &str = "test-intake-token-aaaaaaaaaaaa";
const OPERATOR_TOKEN: &str = "test-operator-token-bbbbbbbbbb";
const AUDITOR_TOKEN: &str = "test-auditor-token-cccccccccccc";

/// How long a test waits for the daemon's own workers.
const DEADLINE: Duration = Duration::from_secs(20);

struct Api {
    db: TestDb,
    sim: RunningSimulator,
    shutdown: CancellationToken,
    daemon: Daemon,
    base: String,
    http: reqwest::Client,
}

/// An answer: status and body (JSON when it parses, else a string).
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
    json: Value,
}

async fn spawn_api() -> Api {
    spawn_api_with(|_| {}).await
}

async fn spawn_api_with(tweak: impl FnOnce(&mut Settings)) -> Api {
    lapor_bridge::lapor::client::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        lapor_bridge::telemetry::init(lapor_bridge::config::LogFormat::Human);
    }
    let db = TestDb::create().await;
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let mut settings = test_settings(&db.url, &sim.base_url());
    settings.database.max_connections = 8;
    settings.bridge.retry_base_ms = 20;
    settings.bridge.retry_max_ms = 200;
    settings.tokens = role_tokens(INTAKE_TOKEN, OPERATOR_TOKEN, AUDITOR_TOKEN);
    tweak(&mut settings);
    let shutdown = CancellationToken::new();
    let daemon = Daemon::start(
        settings,
        std::sync::Arc::new(SystemClock),
        shutdown.clone(),
        false,
    )
    .await
    .unwrap();
    let base = format!("http://{}", daemon.addr);
    Api {
        db,
        sim,
        shutdown,
        daemon,
        base,
        http: reqwest::Client::new(),
    }
}

impl Api {
    fn pool(&self) -> &PgPool {
        &self.daemon.bridge.pool
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Answer {
            status,
            content_type,
            text,
            json,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, token, Some(body.to_string()))
            .await
    }

    async fn post_raw(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.send(reqwest::Method::POST, path, token, Some(body.to_string()))
            .await
    }

    async fn post_empty(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::POST, path, token, None).await
    }

    /// Submits as the intake desk (which may then follow it up).
    async fn submit(&self, doc: &Value) -> Answer {
        self.post("/api/v1/complaints", Some(INTAKE_TOKEN), doc)
            .await
    }

    /// Polls the status document until its `sync_state` is `want`.
    async fn wait_sync_state(&self, local_ref: &str, want: &str) -> Value {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let a = self
                .get(
                    &format!("/api/v1/complaints/{local_ref}"),
                    Some(OPERATOR_TOKEN),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            if a.json["sync_state"] == want {
                return a.json;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{local_ref} never became {want}: {}",
                a.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn faults(&self, faults: Value) {
        let resp = self
            .http
            .post(format!("{}/_sim/faults", self.sim.root_url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }

    async fn finish(self) {
        self.shutdown.cancel();
        let pool = self.daemon.bridge.pool.clone();
        tokio::time::timeout(Duration::from_secs(30), self.daemon.wait())
            .await
            .expect("the daemon stops within 30 s");
        pool.close().await;
        self.sim.shutdown();
        self.db.drop_db().await;
    }
}

fn field_names(answer: &Answer) -> BTreeSet<String> {
    answer.json["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("no fields in {}", answer.text))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn assert_list_shape(a: &Answer, total: i64, page: i64, page_size: i64, items: usize) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let keys: BTreeSet<String> = a.json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        set(&["items", "total", "page", "page_size"]),
        "{}",
        a.text
    );
    assert_eq!(a.json["total"], total, "{}", a.text);
    assert_eq!(a.json["page"], page);
    assert_eq!(a.json["page_size"], page_size);
    assert_eq!(
        a.json["items"].as_array().unwrap().len(),
        items,
        "{}",
        a.text
    );
}

// 1. Submit ----------------------------------------------------------------

#[tokio::test]
async fn submit_answers_201_200_409_422_400_401_403() {
    let api = spawn_api().await;
    // LAPOR! answers slowly, so the first answer still shows the step waiting.
    api.faults(json!({"latency_ms": [1500, 1500]})).await;

    let doc = complaint_doc("PLG-2026-000001");
    let first = api.submit(&doc).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(first.content_type.starts_with("application/json"));
    let d = &first.json;
    assert_eq!(d["local_ref"], "PLG-2026-000001");
    assert_eq!(d["origin"], "local");
    assert_eq!(d["sync_state"], "pending");
    assert_eq!(d["pending_ops"], 1);
    assert!(d["sla"].is_object(), "{}", first.text);
    for key in [
        "lapor_complaint_id",
        "tracking_id",
        "lapor_status_name",
        "status",
        "last_error",
        "last_synced_at",
    ] {
        assert!(d.get(key).is_some(), "status document lacks {key}");
        assert!(d[key].is_null(), "{key} before delivery: {}", d[key]);
    }

    // The same document again: 200 with the same complaint.
    let again = api.submit(&doc).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["local_ref"], "PLG-2026-000001");
    assert_eq!(again.json["created_at"], d["created_at"]);
    // Key order and spacing do not make another document.
    let reordered = r#"{"reporter": {"email": "budi@example.org", "phone": "081234567890", "name": "Budi"},
        "is_secret": false, "is_anonymous": false, "date_of_incident": "2026-11-20",
        "category_id": 12,
        "content": "Jalan berlubang cukup dalam di depan pasar, membahayakan pengendara.",
        "title": "Jalan berlubang di Jl. Sudirman", "local_ref": "PLG-2026-000001"}"#;
    let a = api
        .post_raw("/api/v1/complaints", Some(ADMIN_TOKEN), reordered)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    // Another document under the same local_ref: 409.
    let mut other = doc.clone();
    other["title"] = json!("Lampu jalan mati di Jl. Merdeka");
    let conflict = api.submit(&other).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    assert!(conflict.json["error"].is_string());

    // Invalid input: every bad field named.
    let mut bad = complaint_doc("PLG-2026-000002");
    bad.as_object_mut().unwrap().remove("title");
    bad["content"] = json!("pendek");
    bad["date_of_incident"] = json!("2026-02-30");
    bad["colour"] = json!("red");
    let invalid = api.submit(&bad).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.text
    );
    assert_eq!(
        field_names(&invalid),
        set(&["title", "content", "date_of_incident", "colour"]),
        "{}",
        invalid.text
    );
    for (_, messages) in invalid.json["fields"].as_object().unwrap() {
        assert!(!messages.as_array().unwrap().is_empty());
    }
    // Nothing of it was stored.
    let missing = api
        .get("/api/v1/complaints/PLG-2026-000002", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Other shapes of bad input.
    let not_object = api
        .post("/api/v1/complaints", Some(ADMIN_TOKEN), &json!([1, 2]))
        .await;
    assert_eq!(not_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad_reporter = complaint_doc("PLG-2026-000003");
    bad_reporter["reporter"]["email"] = json!("not-an-email");
    bad_reporter["category_id"] = json!("12");
    let a = api.submit(&bad_reporter).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_names(&a),
        set(&["reporter.email", "category_id"]),
        "{}",
        a.text
    );

    // Malformed JSON: 400.
    let malformed = api
        .post_raw(
            "/api/v1/complaints",
            Some(ADMIN_TOKEN),
            "{\"local_ref\": \"PLG-X\",",
        )
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );
    assert!(malformed.json["error"].is_string());

    // Tokens and roles.
    let doc4 = complaint_doc("PLG-2026-000004");
    let none = api.post("/api/v1/complaints", None, &doc4).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let wrong = api
        .post("/api/v1/complaints", Some("not-a-token"), &doc4)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let basic = api
        .http
        .post(format!("{}/api/v1/complaints", api.base))
        .header("authorization", format!("Basic {ADMIN_TOKEN}"))
        .json(&doc4)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        basic.headers()["www-authenticate"],
        "Bearer realm=\"lapor-bridge\""
    );
    // An unknown API path answers JSON, like every other API error.
    let unknown = api.get("/api/v1/no-such-thing", Some(ADMIN_TOKEN)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json["error"], "not found");
    let auditor = api
        .post("/api/v1/complaints", Some(AUDITOR_TOKEN), &doc4)
        .await;
    assert_eq!(auditor.status, StatusCode::FORBIDDEN);
    let operator = api
        .post("/api/v1/complaints", Some(OPERATOR_TOKEN), &doc4)
        .await;
    assert_eq!(operator.status, StatusCode::FORBIDDEN);
    // 401/403 are decided before the body is read.
    let unauth_malformed = api.post_raw("/api/v1/complaints", None, "{not json").await;
    assert_eq!(unauth_malformed.status, StatusCode::UNAUTHORIZED);
    // None of the refused requests stored anything.
    let nothing = api
        .get("/api/v1/complaints/PLG-2026-000004", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    let empty = api
        .http
        .post(format!("{}/api/v1/complaints", api.base))
        .header("authorization", "Bearer ")
        .json(&doc4)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNAUTHORIZED);
    // The scheme is case-insensitive (RFC 9110).
    let lower = api
        .http
        .get(format!("{}/api/v1/complaints", api.base))
        .header("authorization", format!("bearer {OPERATOR_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    let intake = api
        .post("/api/v1/complaints", Some(INTAKE_TOKEN), &doc4)
        .await;
    assert_eq!(intake.status, StatusCode::CREATED, "{}", intake.text);
    // The intake role cannot read the operators' views.
    let read = api
        .get("/api/v1/complaints/PLG-2026-000004", Some(INTAKE_TOKEN))
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN);

    // A reference with slashes is addressed percent-encoded.
    let slashed = api.submit(&complaint_doc("PLG/2026/7")).await;
    assert_eq!(slashed.status, StatusCode::CREATED, "{}", slashed.text);
    let read = api
        .get("/api/v1/complaints/PLG%2F2026%2F7", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json["local_ref"], "PLG/2026/7");
    let t = api
        .get(
            "/api/v1/complaints/PLG%2F2026%2F7/timeline",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);

    // The submission is audited under the token's name.
    let audit = api
        .get("/api/v1/audit?format=jsonl", Some(AUDITOR_TOKEN))
        .await;
    let submitted: Vec<Value> = audit
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "complaint.submitted")
        .collect();
    assert_eq!(submitted.len(), 3, "{}", audit.text);
    assert_eq!(submitted[0]["actor"], "token:desk");
    assert_eq!(submitted[1]["actor"], "token:desk");
    assert_eq!(submitted[1]["local_ref"], "PLG-2026-000004");

    api.finish().await;
}

// 2. The SQL function ------------------------------------------------------

async fn counts(conn: &mut sqlx::PgConnection, local_ref: &str) -> (i64, i64, Vec<String>) {
    let complaints: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.complaints WHERE local_ref = $1")
            .bind(local_ref)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT o.step FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c
             ON c.id = o.complaint_id WHERE c.local_ref = $1 ORDER BY o.seq",
    )
    .bind(local_ref)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (complaints, steps.len() as i64, steps)
}

fn pg_error(e: sqlx::Error) -> (String, Option<String>) {
    let sqlx::Error::Database(db) = e else {
        panic!("not a database error: {e}");
    };
    let code = db.code().map(|c| c.to_string()).unwrap_or_default();
    let detail = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.detail())
        .map(str::to_string);
    (code, detail)
}

#[tokio::test]
async fn submit_complaint_in_sql_follows_the_callers_transaction() {
    // No workers may deliver in between, so the outbox rows stay countable.
    let api = spawn_api_with(|s| s.lapor.base_url = "http://127.0.0.1:9/api".into()).await;
    let pool = api.pool().clone();

    // Rolled back: nothing stays.
    let mut tx = pool.begin().await.unwrap();
    // An application with its own search_path.
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v: Value = sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(complaint_doc("APP-1"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(v, json!({"local_ref": "APP-1", "created": true}));
    assert_eq!(counts(&mut tx, "APP-1").await.0, 1);
    tx.rollback().await.unwrap();
    assert_eq!(
        counts(&mut pool.acquire().await.unwrap(), "APP-1").await,
        (0, 0, vec![])
    );

    // Committed: one complaint and one create step.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v: Value = sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(complaint_doc("APP-1"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(v["created"], true);
    tx.commit().await.unwrap();
    assert_eq!(
        counts(&mut pool.acquire().await.unwrap(), "APP-1").await,
        (1, 1, vec!["create".into()])
    );
    // It shows through the API like any other complaint.
    let a = api
        .get("/api/v1/complaints/APP-1", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["origin"], "local");
    assert_eq!(a.json["pending_ops"], 1);

    // Again: not created, nothing added.
    let v: Value = sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(complaint_doc("APP-1"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, json!({"local_ref": "APP-1", "created": false}));
    assert_eq!(
        counts(&mut pool.acquire().await.unwrap(), "APP-1").await.1,
        1
    );

    // LB422 with a JSON detail naming the fields.
    let mut bad = complaint_doc("APP-2");
    bad["content"] = json!("pendek");
    bad["date_of_incident"] = json!("2026-02-30");
    let e = sqlx::query_scalar::<_, Value>("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(&bad)
        .fetch_one(&pool)
        .await
        .unwrap_err();
    let (code, detail) = pg_error(e);
    assert_eq!(code, "LB422");
    let detail: Value = serde_json::from_str(&detail.expect("a DETAIL")).unwrap();
    let keys: BTreeSet<String> = detail.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, set(&["content", "date_of_incident"]), "{detail}");

    // LB409 for another document under the same reference.
    let mut other = complaint_doc("APP-1");
    other["content"] = json!("Isi pengaduan yang lain sama sekali, tetapi cukup panjang.");
    let e = sqlx::query_scalar::<_, Value>("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(&other)
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(pg_error(e).0, "LB409");

    // A failed call inside a transaction aborts only that transaction.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query_scalar::<_, Value>("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(complaint_doc("APP-3"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let e = sqlx::query_scalar::<_, Value>("SELECT lapor_bridge.submit_complaint($1::jsonb)")
        .bind(&bad)
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(pg_error(e).0, "LB422");
    tx.rollback().await.unwrap();
    assert_eq!(
        counts(&mut pool.acquire().await.unwrap(), "APP-3").await,
        (0, 0, vec![])
    );

    api.finish().await;
}

// 3. Delivery through the daemon, and the list ------------------------------

#[tokio::test]
async fn complaints_become_synced_and_the_list_pages() {
    let api = spawn_api().await;
    for i in 1..=3 {
        let a = api.submit(&complaint_doc(&format!("PLG-L-{i}"))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    for i in 1..=3 {
        let d = api.wait_sync_state(&format!("PLG-L-{i}"), "synced").await;
        assert_eq!(d["pending_ops"], 0);
        assert!(d["lapor_complaint_id"].is_i64(), "{d}");
        assert!(d["tracking_id"].is_string(), "{d}");
        assert!(d["last_synced_at"].is_string(), "{d}");
        assert!(d["last_error"].is_null(), "{d}");
    }

    let p1 = api
        .get(
            "/api/v1/complaints?sync_state=synced&page=1&page_size=2",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_list_shape(&p1, 3, 1, 2, 2);
    let p2 = api
        .get(
            "/api/v1/complaints?sync_state=synced&page=2&page_size=2",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_list_shape(&p2, 3, 2, 2, 1);
    let mut refs: Vec<String> = p1.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.json["items"].as_array().unwrap())
        .map(|d| {
            assert_eq!(d["sync_state"], "synced");
            d["local_ref"].as_str().unwrap().to_string()
        })
        .collect();
    refs.sort();
    assert_eq!(refs, ["PLG-L-1", "PLG-L-2", "PLG-L-3"]);

    let pending = api
        .get(
            "/api/v1/complaints?sync_state=pending",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_list_shape(&pending, 0, 1, 50, 0);
    let all = api.get("/api/v1/complaints", Some(ADMIN_TOKEN)).await;
    assert_list_shape(&all, 3, 1, 50, 3);

    let bogus = api
        .get("/api/v1/complaints?sync_state=bogus", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST, "{}", bogus.text);
    assert!(bogus.json["error"].is_string());
    let bad_page = api
        .get("/api/v1/complaints?page=abc", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(
        bad_page.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_page.text
    );
    assert!(bad_page.json["error"].is_string(), "{}", bad_page.text);

    let unknown = api
        .get("/api/v1/complaints/PLG-NOPE", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.get("/api/v1/complaints", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/api/v1/complaints", Some(AUDITOR_TOKEN))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    api.finish().await;
}

// 4. Follow-ups, forwards and the timeline -------------------------------

#[tokio::test]
async fn followups_forwards_and_the_timeline() {
    let api = spawn_api().await;
    assert_eq!(
        api.submit(&complaint_doc("PLG-F")).await.status,
        StatusCode::CREATED
    );
    api.wait_sync_state("PLG-F", "synced").await;

    let f = api
        .post(
            "/api/v1/complaints/PLG-F/followups",
            Some(INTAKE_TOKEN),
            &json!({"content": "Petugas sudah meninjau lokasi.", "is_secret": false}),
        )
        .await;
    assert_eq!(f.status, StatusCode::ACCEPTED, "{}", f.text);
    assert_eq!(f.json["local_ref"], "PLG-F");
    assert!(f.json["pending_ops"].as_i64().unwrap() >= 1, "{}", f.text);
    assert!(f.json["sla"].is_object());

    let fw = api
        .post(
            "/api/v1/complaints/PLG-F/forward",
            Some(OPERATOR_TOKEN),
            &json!({"institution_id": 202, "reason": "Bukan wewenang pemerintah kota."}),
        )
        .await;
    assert_eq!(fw.status, StatusCode::ACCEPTED, "{}", fw.text);
    assert_eq!(fw.json["local_ref"], "PLG-F");
    assert!(fw.json["pending_ops"].as_i64().unwrap() >= 2, "{}", fw.text);

    // Unknown complaint: 404.
    let a = api
        .post(
            "/api/v1/complaints/PLG-NOPE/followups",
            Some(INTAKE_TOKEN),
            &json!({"content": "Isi tindak lanjut"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api
        .post(
            "/api/v1/complaints/PLG-NOPE/forward",
            Some(OPERATOR_TOKEN),
            &json!({"institution_id": 202, "reason": "alasan"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // Invalid input: 422 naming the field.
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/followups",
            Some(INTAKE_TOKEN),
            &json!({"content": "   "}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(field_names(&a), set(&["content"]));
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/followups",
            Some(INTAKE_TOKEN),
            &json!({"is_secret": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(field_names(&a), set(&["content"]), "{}", a.text);
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/forward",
            Some(OPERATOR_TOKEN),
            &json!({"institution_id": 202, "reason": ""}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(field_names(&a), set(&["reason"]));
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/forward",
            Some(OPERATOR_TOKEN),
            &json!({"institution_id": "dua", "reason": "alasan"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(field_names(&a), set(&["institution_id"]), "{}", a.text);
    let a = api
        .post_raw(
            "/api/v1/complaints/PLG-F/followups",
            Some(INTAKE_TOKEN),
            "{\"content\":",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Roles: a forward is an operator's act, a follow-up intake's.
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/forward",
            Some(INTAKE_TOKEN),
            &json!({"institution_id": 202, "reason": "alasan"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = api
        .post(
            "/api/v1/complaints/PLG-F/followups",
            Some(AUDITOR_TOKEN),
            &json!({"content": "Isi tindak lanjut"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // The timeline: attempts and audit entries in time order.
    let t = api
        .get("/api/v1/complaints/PLG-F/timeline", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.json["complaint"]["local_ref"], "PLG-F");
    let events = t.json["events"].as_array().unwrap();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains("attempt"), "{}", t.text);
    assert!(kinds.contains("audit"), "{}", t.text);
    assert!(kinds.contains("followup"), "{}", t.text);
    // Every `at` in one format, so that even a string sort keeps the order.
    for e in events {
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let times: Vec<DateTime<Utc>> = events
        .iter()
        .map(|e| {
            DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
                .unwrap_or_else(|err| panic!("{}: {err}", e["at"]))
                .with_timezone(&Utc)
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events out of order: {}",
        t.text
    );
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "audit")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "complaint.submitted",
        "delivery.create",
        "followup.submitted",
        "forward.submitted",
    ] {
        assert!(actions.contains(&wanted), "{wanted} missing: {actions:?}");
    }
    let attempt = events.iter().find(|e| e["kind"] == "attempt").unwrap();
    assert_eq!(attempt["step"], "create");
    assert_eq!(attempt["outcome"], "delivered");
    let forward_audit = events
        .iter()
        .find(|e| e["action"] == "forward.submitted")
        .unwrap();
    assert_eq!(forward_audit["actor"], "token:ops");
    assert_eq!(
        api.get("/api/v1/complaints/PLG-NOPE/timeline", Some(OPERATOR_TOKEN))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    api.finish().await;
}

// 5. Dead letters -----------------------------------------------------------

#[tokio::test]
async fn dead_letters_are_listed_discarded_and_audited() {
    let api = spawn_api().await;
    let mut doc = complaint_doc("PLG-DEAD");
    doc["disposition_id"] = json!(999999);
    assert_eq!(api.submit(&doc).await.status, StatusCode::CREATED);
    let ok = api.submit(&complaint_doc("PLG-OK")).await;
    assert_eq!(ok.status, StatusCode::CREATED);

    let d = api.wait_sync_state("PLG-DEAD", "dead").await;
    assert_eq!(d["pending_ops"], 1);
    assert!(
        d["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("disposition id is invalid"),
        "{d}"
    );
    api.wait_sync_state("PLG-OK", "synced").await;

    let dead = api
        .get("/api/v1/outbox?state=dead", Some(OPERATOR_TOKEN))
        .await;
    assert_list_shape(&dead, 1, 1, 50, 1);
    let step = &dead.json["items"][0];
    assert_eq!(step["local_ref"], "PLG-DEAD");
    assert_eq!(step["step"], "create");
    assert_eq!(step["state"], "dead");
    assert!(
        step["last_error"]
            .as_str()
            .unwrap()
            .contains("The selected disposition id is invalid."),
        "{step}"
    );
    let id = step["id"].as_i64().unwrap();
    let pending = api
        .get("/api/v1/outbox?state=pending", Some(OPERATOR_TOKEN))
        .await;
    assert_list_shape(&pending, 0, 1, 50, 0);
    let bogus = api
        .get("/api/v1/outbox?state=bogus", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);

    let discarded = api
        .post_empty(
            &format!("/api/v1/outbox/{id}/discard"),
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(discarded.status, StatusCode::OK, "{}", discarded.text);
    assert_eq!(discarded.json["id"], id);
    assert_eq!(discarded.json["state"], "discarded");
    // Its complaint is not on LAPOR!: a conflict for an operator, never "synced".
    let c = api
        .get("/api/v1/complaints/PLG-DEAD", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(c.json["sync_state"], "conflict", "{}", c.text);
    assert_eq!(c.json["lapor_complaint_id"], Value::Null);

    // Retry of a step that is not dead: 409; of no step: 404.
    let again = api
        .post_empty(&format!("/api/v1/outbox/{id}/retry"), Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let done_id: i64 = sqlx::query_scalar(
        "SELECT o.id FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c
             ON c.id = o.complaint_id WHERE c.local_ref = 'PLG-OK'",
    )
    .fetch_one(api.pool())
    .await
    .unwrap();
    let done = api
        .post_empty(
            &format!("/api/v1/outbox/{done_id}/retry"),
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(done.status, StatusCode::CONFLICT, "{}", done.text);
    let done = api
        .post_empty(
            &format!("/api/v1/outbox/{done_id}/discard"),
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(done.status, StatusCode::CONFLICT, "{}", done.text);
    let none = api
        .post_empty("/api/v1/outbox/987654321/retry", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let garbage = api
        .post_empty("/api/v1/outbox/abc/retry", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(garbage.json["error"].is_string(), "{}", garbage.text);
    let forbidden = api
        .post_empty(&format!("/api/v1/outbox/{id}/retry"), Some(INTAKE_TOKEN))
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    // The discarded step no longer counts as a dead letter.
    let dead = api
        .get("/api/v1/outbox?state=dead", Some(OPERATOR_TOKEN))
        .await;
    assert_list_shape(&dead, 0, 1, 50, 0);
    let listed = api
        .get("/api/v1/outbox?state=discarded", Some(OPERATOR_TOKEN))
        .await;
    assert_list_shape(&listed, 1, 1, 50, 1);

    // Exactly one operator action, audited under the token's name.
    let audit = api
        .get("/api/v1/audit?format=jsonl", Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let ops: Vec<Value> = audit
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"].as_str().unwrap().starts_with("operator."))
        .collect();
    assert_eq!(ops.len(), 1, "{}", audit.text);
    assert_eq!(ops[0]["action"], "operator.discard");
    assert_eq!(ops[0]["actor"], "token:ops");
    assert_eq!(ops[0]["local_ref"], "PLG-DEAD");
    assert_eq!(ops[0]["before"]["state"], "dead");
    assert_eq!(ops[0]["after"]["state"], "discarded");

    api.finish().await;
}

#[tokio::test]
async fn a_dead_step_retried_by_an_operator_is_delivered() {
    let api = spawn_api_with(|s| s.bridge.max_attempts = 2).await;
    api.faults(json!({"error_rate": 1.0, "error_status": 503}))
        .await;
    assert_eq!(
        api.submit(&complaint_doc("PLG-R")).await.status,
        StatusCode::CREATED
    );
    api.wait_sync_state("PLG-R", "dead").await;
    api.faults(json!({})).await;
    let dead = api
        .get("/api/v1/outbox?state=dead", Some(OPERATOR_TOKEN))
        .await;
    assert_list_shape(&dead, 1, 1, 50, 1);
    let id = dead.json["items"][0]["id"].as_i64().unwrap();
    let retried = api
        .post_empty(&format!("/api/v1/outbox/{id}/retry"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.json["attempts"], 0);
    let d = api.wait_sync_state("PLG-R", "synced").await;
    assert!(d["lapor_complaint_id"].is_i64());
    let audit = api
        .get("/api/v1/audit?format=jsonl", Some(ADMIN_TOKEN))
        .await;
    assert!(
        audit
            .text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .any(|e| e["action"] == "operator.retry" && e["actor"] == "token:admin"),
        "{}",
        audit.text
    );
    api.finish().await;
}

// 6. Audit ------------------------------------------------------------------

#[tokio::test]
async fn audit_exports_and_verifies_for_auditors_only() {
    let api = spawn_api().await;
    assert_eq!(
        api.submit(&complaint_doc("PLG-A")).await.status,
        StatusCode::CREATED
    );
    api.wait_sync_state("PLG-A", "synced").await;

    let csv = api
        .get("/api/v1/audit?format=csv", Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let mut lines = csv.text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,at,actor,local_ref,action,before,after,prev_hash,hash"
    );
    assert!(csv.text.contains("complaint.submitted"));

    let jsonl = api
        .get("/api/v1/audit?format=jsonl", Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(jsonl.status, StatusCode::OK);
    assert!(jsonl.content_type.starts_with("application/x-ndjson"));
    let entries: Vec<Value> = jsonl
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.len() >= 3, "{}", jsonl.text);
    // jsonl is the default.
    let default = api.get("/api/v1/audit", Some(AUDITOR_TOKEN)).await;
    assert_eq!(default.text, jsonl.text);

    // A period: nothing before the start, everything up to tomorrow.
    let none = api
        .get(
            "/api/v1/audit?format=jsonl&until=2000-01-01",
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.text, "");
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    let all = api
        .get(
            &format!("/api/v1/audit?since=2000-01-01&until={tomorrow}"),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(all.text, jsonl.text);
    let bad = api
        .get("/api/v1/audit?since=yesterday", Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = api
        .get("/api/v1/audit?format=xml", Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let verify = api.get("/api/v1/audit/verify", Some(AUDITOR_TOKEN)).await;
    assert_eq!(verify.status, StatusCode::OK, "{}", verify.text);
    assert_eq!(verify.json["ok"], true);
    let n = verify.json["entries"].as_i64().unwrap();
    assert!(n > 0);
    assert_eq!(verify.json, json!({"ok": true, "entries": n}));
    assert!(n >= entries.len() as i64);

    for (path, token, code) in [
        ("/api/v1/audit", Some(OPERATOR_TOKEN), StatusCode::FORBIDDEN),
        ("/api/v1/audit", Some(INTAKE_TOKEN), StatusCode::FORBIDDEN),
        ("/api/v1/audit", None, StatusCode::UNAUTHORIZED),
        (
            "/api/v1/audit/verify",
            Some(OPERATOR_TOKEN),
            StatusCode::FORBIDDEN,
        ),
        ("/api/v1/audit/verify", Some(ADMIN_TOKEN), StatusCode::OK),
        (
            "/api/v1/audit/checkpoints",
            Some(OPERATOR_TOKEN),
            StatusCode::FORBIDDEN,
        ),
        // No checkpoint file configured here: said so, not an empty download.
        (
            "/api/v1/audit/checkpoints",
            Some(AUDITOR_TOKEN),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        assert_eq!(api.get(path, token).await.status, code, "{path} {token:?}");
    }

    api.finish().await;
}

// 7. Health -----------------------------------------------------------------

#[tokio::test]
async fn health_readiness_and_metrics() {
    let api = spawn_api().await;
    let h = api.get("/healthz", None).await;
    assert_eq!(h.status, StatusCode::OK);
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["database"], "ok");
    assert_eq!(r.json["lapor_token"], "ok");
    assert_eq!(r.json["ok"], true);

    assert_eq!(
        api.submit(&complaint_doc("PLG-M")).await.status,
        StatusCode::CREATED
    );
    api.wait_sync_state("PLG-M", "synced").await;
    // The database gauges are counted every 30 s, not per scrape: count now.
    assert!(
        lapor_bridge::gauges::refresh(&api.daemon.bridge)
            .await
            .unwrap()
    );
    let m = api.get("/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.content_type.starts_with("text/plain"),
        "{}",
        m.content_type
    );
    for name in [
        "lapor_bridge_outbox_depth",
        "lapor_bridge_lapor_requests_total",
        "lapor_bridge_build_info",
        "lapor_bridge_gauges_taken_timestamp_seconds",
    ] {
        assert!(m.text.contains(name), "{name} missing:\n{}", m.text);
    }
    assert!(
        m.text
            .lines()
            .any(|l| l.starts_with("lapor_bridge_outbox_depth{state=\"done\"} 1")),
        "{}",
        m.text
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in m.text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample {line:?}");
    }

    api.finish().await;
}

#[tokio::test]
async fn readiness_fails_while_lapor_rejects_the_tokens() {
    let api = spawn_api_with(|s| {
        s.lapor.api_token = secrecy::SecretString::from("revoked-token");
    })
    .await;
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        api.submit(&complaint_doc("PLG-401")).await.status,
        StatusCode::CREATED
    );
    let ok = eventually(DEADLINE, || async {
        api.get("/readyz", None).await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(ok, "readyz never failed");
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["lapor_token"], "rejected", "{}", r.text);
    assert_eq!(r.json["database"], "ok", "{}", r.text);
    assert_eq!(r.json["ok"], false);
    // No attempt is burned while the tokens are rejected.
    let d = api
        .get("/api/v1/complaints/PLG-401", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(d.json["sync_state"], "pending", "{}", d.text);
    assert_eq!(d.json["pending_ops"], 1);
    let m = api.get("/metrics", None).await;
    assert!(
        m.text.contains("lapor_bridge_lapor_token_ok 0"),
        "{}",
        m.text
    );
    api.finish().await;
}

// 8. Secrets ----------------------------------------------------------------

#[tokio::test]
async fn reporters_of_anonymous_complaints_show_only_to_admins() {
    let api = spawn_api().await;
    let secrets = [
        "Siti Rahasia Wulandari",
        "081299887766",
        "siti.rahasia@example.org",
    ];
    let mut doc = complaint_doc("PLG-ANON");
    doc["is_anonymous"] = json!(true);
    doc["reporter"] = json!({"name": secrets[0], "phone": secrets[1], "email": secrets[2]});
    let mut secret_doc = complaint_doc("PLG-SECRET");
    secret_doc["is_secret"] = json!(true);
    secret_doc["reporter"] = doc["reporter"].clone();

    let mut answers = Vec::new();
    for d in [&doc, &secret_doc] {
        let a = api.submit(d).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.json["reporter"]["masked"], true, "{}", a.text);
        answers.push(a);
        answers.push(api.submit(d).await);
    }
    api.wait_sync_state("PLG-ANON", "synced").await;
    api.wait_sync_state("PLG-SECRET", "synced").await;
    let f = api
        .post(
            "/api/v1/complaints/PLG-ANON/followups",
            Some(INTAKE_TOKEN),
            &json!({"content": "Tindak lanjut untuk pelapor anonim."}),
        )
        .await;
    assert_eq!(f.status, StatusCode::ACCEPTED);
    answers.push(f);
    let paths = [
        ("/api/v1/complaints/PLG-ANON", OPERATOR_TOKEN),
        ("/api/v1/complaints/PLG-SECRET", OPERATOR_TOKEN),
        ("/api/v1/complaints", OPERATOR_TOKEN),
        ("/api/v1/complaints", ADMIN_TOKEN),
        ("/api/v1/complaints/PLG-ANON/timeline", OPERATOR_TOKEN),
        ("/api/v1/complaints/PLG-SECRET/timeline", OPERATOR_TOKEN),
        ("/api/v1/outbox", OPERATOR_TOKEN),
        ("/api/v1/audit?format=jsonl", AUDITOR_TOKEN),
        ("/api/v1/audit?format=csv", AUDITOR_TOKEN),
        ("/", OPERATOR_TOKEN),
        ("/metrics", OPERATOR_TOKEN),
    ];
    for (path, token) in paths {
        let a = api.get(path, Some(token)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        answers.push(a);
    }
    // Only an admin, on the one complaint, sees the reporter in clear.
    let doc_answer = api
        .get("/api/v1/complaints/PLG-ANON", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(doc_answer.json["reporter"]["name"], secrets[0]);
    assert_eq!(doc_answer.json["reporter"]["masked"], false);
    let timeline = api
        .get("/api/v1/complaints/PLG-ANON/timeline", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(timeline.json["complaint"]["reporter"]["masked"], true);
    answers.push(timeline);
    for a in &answers {
        for s in secrets {
            assert!(!a.text.contains(s), "{s} shown: {}", a.text);
        }
    }
    api.finish().await;
}

/// An intake token follows up only the complaints it submitted; another
/// desk's reference answers 404 (or 409 to the same document again), and so
/// does a complaint that no intake token submitted. Admins are unchanged.
#[tokio::test]
async fn an_intake_token_follows_up_only_its_own_complaints() {
    const OTHER_DESK: &str = "test-intake-token-other-dddddddd";
    let api = spawn_api_with(|s| {
        s.tokens.push(lapor_bridge::config::ApiToken {
            name: "desk2".into(),
            role: lapor_bridge::config::Role::Intake,
            sha256: hex::encode(lapor_bridge::web::api::auth::digest(OTHER_DESK)),
        })
    })
    .await;
    let doc = complaint_doc("PLG-DESK-1");
    let followup = json!({"content": "Petugas sudah dijadwalkan."});
    let path = "/api/v1/complaints/PLG-DESK-1/followups";
    assert_eq!(
        api.post("/api/v1/complaints", Some(INTAKE_TOKEN), &doc)
            .await
            .status,
        StatusCode::CREATED
    );
    let other = api.post("/api/v1/complaints", Some(OTHER_DESK), &doc).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert!(
        !other.text.contains("PLG-DESK-1\",\"origin"),
        "no document: {}",
        other.text
    );
    let other = api.post(path, Some(OTHER_DESK), &followup).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    // Its own desk: the same document again, and a follow-up.
    assert_eq!(
        api.post("/api/v1/complaints", Some(INTAKE_TOKEN), &doc)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.post(path, Some(INTAKE_TOKEN), &followup).await.status,
        StatusCode::ACCEPTED
    );
    // Submitted in SQL by the city's application: not an intake token's.
    sqlx::query("SELECT lapor_bridge.submit_complaint($1)")
        .bind(complaint_doc("APP-DESK-2"))
        .execute(api.pool())
        .await
        .unwrap();
    let path = "/api/v1/complaints/APP-DESK-2/followups";
    assert_eq!(
        api.post(path, Some(INTAKE_TOKEN), &followup).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(path, Some(ADMIN_TOKEN), &followup).await.status,
        StatusCode::ACCEPTED
    );
    api.finish().await;
}
