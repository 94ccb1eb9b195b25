//! Test harness: a fresh PostgreSQL database per test, the in-repo LAPOR!
//! simulator, and the bridge with an injected clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lapor_bridge::bridge::Bridge;
use lapor_bridge::clock::ManualClock;
use lapor_bridge::config::{ApiToken, Role, Settings};
use lapor_bridge::outbox::Engine;
use lapor_bridge::simulator::{self, RunningSimulator, SimulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("lb_test_{:016x}", rand::random::<u64>());
        let base = server_url();
        let (prefix, _) = base.rsplit_once('/').expect("server URL has a database");
        let url = format!("{prefix}/{name}");
        let mut settings = Settings::default();
        settings.database.url = SecretString::from(url.clone());
        let options = lapor_bridge::db::connect_options(&settings.database).unwrap();
        lapor_bridge::db::ensure_database(&options).await.unwrap();
        Self { name, url }
    }

    pub async fn drop_db(&self) {
        let mut settings = Settings::default();
        settings.database.url = SecretString::from(server_url());
        let options: PgConnectOptions =
            lapor_bridge::db::connect_options(&settings.database).unwrap();
        if let Ok(pool) = lapor_bridge::db::pool(options, 1).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
            pool.close().await;
        }
    }
}

pub fn test_settings(db_url: &str, lapor_base: &str) -> Settings {
    let mut s = Settings::default();
    s.database.url = SecretString::from(db_url.to_string());
    s.database.max_connections = 20;
    s.lapor.base_url = lapor_base.to_string();
    s.lapor.api_token = SecretString::from("api-token");
    s.lapor.instansi_token = SecretString::from("instansi-token");
    s.bridge.listen = "127.0.0.1:0".parse().unwrap();
    s.bridge.admin_token = Some(SecretString::from(ADMIN_TOKEN));
    s.bridge.concurrency = 8;
    s.bridge.rate_limit_per_sec = 0;
    s.bridge.retry_base_ms = 1_000;
    s.bridge.retry_max_ms = 60_000;
    s.bridge.max_attempts = 5;
    s.bridge.http_timeout_ms = 2_000;
    s.bridge.poll_interval_secs = 300;
    s.bridge.lease_secs = 30;
    // Tests of the lookup delay set their own; the others look up at once.
    s.bridge.lookup_delay_secs = 0;
    s.pii.key = Some(SecretString::from(TEST_PII_KEY));
    s
}

/// The reporter-identity key of test settings (base64 of 32 bytes).
pub const TEST_PII_KEY: &str = "dGVzdC1waWkta2V5LTAxMjM0NTY3ODlhYmNkZWYwMTI=";

/// `[[tokens]]`: an intake token named `desk`, an operator `ops` and an
/// auditor `inspectorate`, by their SHA-256 as the configuration holds them.
pub fn role_tokens(intake: &str, operator: &str, auditor: &str) -> Vec<ApiToken> {
    [
        ("desk", Role::Intake, intake),
        ("ops", Role::Operator, operator),
        ("inspectorate", Role::Auditor, auditor),
    ]
    .into_iter()
    .map(|(name, role, token)| ApiToken {
        name: name.into(),
        role,
        sha256: hex::encode(lapor_bridge::web::api::auth::digest(token)),
    })
    .collect()
}

/// The bridge under test, driven step by step with a manual clock.
pub struct TestApp {
    pub db: TestDb,
    pub pool: PgPool,
    pub sim: RunningSimulator,
    pub clock: ManualClock,
    pub bridge: Bridge,
    pub engine: Arc<Engine>,
    pub http: reqwest::Client,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    lapor_bridge::lapor::client::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        lapor_bridge::telemetry::init(lapor_bridge::config::LogFormat::Human);
    }
    let db = TestDb::create().await;
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let mut settings = test_settings(&db.url, &sim.base_url());
    tweak(&mut settings);
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    lapor_bridge::db::migrate(&pool).await.unwrap();
    // A little ahead of the database clock, so that steps that
    // `submit_complaint` stamps with now() are due at once.
    let clock = ManualClock::new(Utc::now() + chrono::Duration::seconds(5));
    let bridge = Bridge::new(pool.clone(), settings, Arc::new(clock.clone())).unwrap();
    let engine = Engine::new(bridge.clone());
    TestApp {
        db,
        pool,
        sim,
        clock,
        bridge,
        engine,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    /// Another engine on the same database (a second replica).
    pub fn replica(&self) -> Arc<Engine> {
        Engine::new(self.bridge.clone())
    }

    pub async fn faults(&self, faults: Value) {
        let resp = self
            .http
            .post(format!("{}/_sim/faults", self.sim.root_url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "faults rejected: {}",
            resp.text().await.unwrap()
        );
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.sim.root_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Every complaint upstream.
    pub async fn upstream(&self) -> Vec<Value> {
        let v = get_json(
            &self.http,
            format!("{}/_sim/complaints", self.sim.root_url()),
        )
        .await;
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// Upstream complaints carrying `ref:<local_ref>`.
    pub async fn upstream_with_ref(&self, local_ref: &str) -> Vec<Value> {
        self.upstream()
            .await
            .into_iter()
            .filter(|c| {
                lapor_bridge::lapor::types::carries_ref(
                    c["tags_raw"].as_str().unwrap_or(""),
                    local_ref,
                )
            })
            .collect()
    }

    pub async fn submit(&self, local_ref: &str) {
        self.submit_doc(&complaint_doc(local_ref)).await;
    }

    /// Submits `doc` as the API does; it must be new.
    pub async fn submit_doc(&self, doc: &Value) {
        let (created, _) = lapor_bridge::actions::submit(&self.bridge, doc, "test")
            .await
            .unwrap();
        assert!(created);
    }

    pub async fn status(&self, local_ref: &str) -> lapor_bridge::status_document::StatusDocument {
        lapor_bridge::actions::status(&self.bridge, local_ref)
            .await
            .unwrap()
    }

    /// Moves the clock past every scheduled retry and delivers what is due,
    /// until nothing is left or `rounds` runs out.
    pub async fn settle(&self, rounds: usize) {
        for _ in 0..rounds {
            let n = self.engine.drain_all().await.unwrap();
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM lapor_bridge.outbox WHERE state IN ('pending', 'running')",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if pending == 0 {
                return;
            }
            if n == 0 {
                self.advance_to_next_due().await;
            }
        }
    }

    pub async fn advance_to_next_due(&self) {
        let next = lapor_bridge::store::outbox::next_due(&self.pool)
            .await
            .unwrap();
        if let Some(at) = next {
            let now = lapor_bridge::clock::Clock::now(&self.clock);
            if at > now {
                self.clock.set(at + chrono::Duration::milliseconds(1));
            }
        }
    }

    pub async fn verify_upstream(&self, lapor_id: i64) {
        self.sim_post(
            &format!("/_sim/complaints/{lapor_id}/status"),
            json!({"status_name": "Terverifikasi"}),
        )
        .await;
    }

    pub async fn attempts(
        &self,
        local_ref: &str,
    ) -> Vec<(String, String, Option<i32>, Option<String>)> {
        sqlx::query_as(
            "SELECT a.step, a.outcome, a.http_status, a.failure_kind FROM lapor_bridge.outbox_attempts a
               JOIN lapor_bridge.complaints c ON c.id = a.complaint_id
              WHERE c.local_ref = $1 ORDER BY a.id",
        )
        .bind(local_ref)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    pub async fn finish(self) {
        self.pool.close().await;
        self.sim.shutdown();
        self.db.drop_db().await;
    }
}

pub fn complaint_doc(local_ref: &str) -> Value {
    json!({
        "local_ref": local_ref,
        "title": "Jalan berlubang di Jl. Sudirman",
        "content": "Jalan berlubang cukup dalam di depan pasar, membahayakan pengendara.",
        "category_id": 12,
        "date_of_incident": "2026-11-20",
        "is_anonymous": false,
        "is_secret": false,
        "reporter": {"name": "Budi", "phone": "081234567890", "email": "budi@example.org"}
    })
}

/// GETs `url` and parses its JSON body (test helper: panics on failure).
pub async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Polls `check` until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the schema owner can do to the audit log: switch its append-only
/// triggers off, run `sql` (with `$1` = `id`), switch them on again.
pub async fn with_audit_triggers_off(pool: &PgPool, sql: &'static str, id: i64) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE lapor_bridge.audit_log DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE lapor_bridge.audit_log ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The `Location` header of an answer (empty without one).
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", lapor_bridge::web::dashboard::html::url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The hidden CSRF field's value in a page.
pub fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

// ----- the admin HTTP server over a test app ------------------------------------

pub struct Served {
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The admin HTTP server (API and dashboard) over the test app's bridge,
/// with tokens for the three roles (and the settings' admin token).
pub async fn serve(app: &TestApp, intake: &str, operator: &str, auditor: &str) -> Served {
    let mut settings = (*app.bridge.settings).clone();
    settings.tokens = role_tokens(intake, operator, auditor);
    let state = lapor_bridge::web::AppState {
        bridge: app.bridge.clone(),
        tokens: Arc::new(lapor_bridge::web::api::auth::TokenStore::from_settings(
            &settings,
        )),
        jobs: Arc::new(lapor_bridge::inbound::Jobs::new(app.bridge.clone())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(lapor_bridge::web::serve(listener, state, shutdown.clone()));
    Served {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
    }
}

impl Served {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// A dashboard session cookie for `token`.
    pub async fn session(&self, token: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::SEE_OTHER);
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("lb_session="))
            .unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    pub async fn page(&self, path: &str, cookie: &str) -> (reqwest::StatusCode, String, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = location(&resp);
        (status, resp.text().await.unwrap(), location)
    }

    pub async fn form(
        &self,
        path: &str,
        cookie: &str,
        pairs: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(pairs))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = location(&resp);
        (status, location)
    }
}
