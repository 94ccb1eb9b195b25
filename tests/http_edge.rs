//! The admin HTTP server's edge: body limit, request timeout, request ids,
//! masked headers in logs, caught panics, the header read timeout and
//! graceful shutdown, and bad input (pages, unknown query parameters, NUL
//! characters) answered with a 4xx naming what is wrong, never a 500; and
//! readiness and the sign-in page, which do not cost the database a query
//! per request.

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::*;
use lapor_bridge::config::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const INTAKE: &str = "edge-intake-token-aaaaaaaaaaaa";
const OPERATOR: &str = "edge-operator-token-bbbbbbbbbb";
const AUDITOR: &str = "edge-auditor-token-cccccccccccc";

async fn served(tweak: impl FnOnce(&mut Settings)) -> (TestApp, Served) {
    let app = spawn_app_with(tweak).await;
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    (app, web)
}

async fn finish(app: TestApp, web: Served) {
    web.shutdown.cancel();
    app.finish().await;
}

/// The names in an error answer's `fields`.
fn fields(body: &Value) -> Vec<String> {
    body["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("no fields in {body}"))
        .keys()
        .cloned()
        .collect()
}

/// A raw request over a fresh connection; the whole answer as text.
async fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

// ----- the body limit --------------------------------------------------------

#[tokio::test]
async fn a_body_past_two_mib_is_a_json_413_declared_or_chunked() {
    let (app, web) = served(|_| {}).await;
    // 3 MiB with a Content-Length.
    let mut doc = complaint_doc("PLG-BIG");
    doc["content"] = json!("x".repeat(3 * 1024 * 1024));
    let (status, body) = web.post("/api/v1/complaints", INTAKE, doc).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("2097152 bytes"),
        "{body}"
    );
    // Under the limit the body is read (and judged on its content).
    let mut doc = complaint_doc("PLG-1MIB");
    doc["content"] = json!("x".repeat(1024 * 1024));
    let (status, body) = web.post("/api/v1/complaints", INTAKE, doc).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(fields(&body).contains(&"content".to_string()), "{body}");

    // 3 MiB in chunks, without a length announced.
    let mut request = format!(
        "POST /api/v1/complaints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INTAKE}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..48 {
        write!(request, "{:x}\r\n", chunk.len()).unwrap();
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&addr_of(&web.base), &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    assert!(answer.contains("application/json"), "{answer:.300}");
    assert!(answer.contains("\"error\""), "{answer:.300}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM lapor_bridge.complaints")
            .fetch_one(&app.pool)
            .await
            .unwrap(),
        0
    );
    finish(app, web).await;
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let (app, web) = served(|s| s.bridge.max_body_bytes = 64 * 1024).await;
    let mut doc = complaint_doc("PLG-100K");
    doc["content"] = json!("x".repeat(100 * 1024));
    let (status, body) = web.post("/api/v1/complaints", INTAKE, doc).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("65536 bytes"),
        "{body}"
    );
    let (status, _) = web
        .post("/api/v1/complaints", INTAKE, complaint_doc("PLG-SMALL"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    finish(app, web).await;
}

// ----- request ids and logs --------------------------------------------------

#[tokio::test]
async fn request_ids_are_generated_or_kept_and_answered() {
    let (app, web) = served(|_| {}).await;
    let resp = web
        .http
        .get(format!("{}/healthz", web.base))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let again = web
        .http
        .get(format!("{}/healthz", web.base))
        .send()
        .await
        .unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id);
    // The client's own id is kept, on errors too.
    let resp = web
        .http
        .get(format!("{}/api/v1/complaints", web.base))
        .header("x-request-id", "city-app-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-request-id"], "city-app-42");
    finish(app, web).await;
}

/// Every log line written in this test binary (debug level).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=info,h2=info,reqwest=info")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logged_headers_mask_secrets_and_carry_the_request_id() {
    let logs = captured_logs();
    let (app, web) = served(|_| {}).await;
    let cookie_secret = "c0ffee".repeat(10);
    let resp = web
        .http
        .get(format!("{}/api/v1/outbox", web.base))
        .bearer_auth(OPERATOR)
        .header("cookie", format!("lb_session={cookie_secret}"))
        .header("auth", "lapor-api-token-in-a-header")
        .header("x-request-id", "req-mask-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("request_id=req-mask-7"))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("Sensitive")),
        "the request's headers are logged with its id, secrets masked:\n{text}"
    );
    for secret in [
        OPERATOR,
        cookie_secret.as_str(),
        "lapor-api-token-in-a-header",
    ] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
    finish(app, web).await;
}

// ----- panics, timeouts, slow heads, shutdown ------------------------------------

/// A router of test routes behind the production edge, served by the
/// production accept loop.
async fn edge_server(
    routes: Router,
    tweak: impl FnOnce(&mut lapor_bridge::config::BridgeSettings),
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut settings = Settings::default().bridge;
    tweak(&mut settings);
    let app =
        lapor_bridge::web::edge::wrap(lapor_bridge::web::edge::timed(routes, &settings), &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(lapor_bridge::web::edge::serve(
        listener,
        app,
        Duration::from_secs(settings.header_read_timeout_secs),
        Duration::from_secs(30),
        shutdown.clone(),
    ));
    (base, shutdown, server)
}

async fn boom() -> &'static str {
    panic!("boom")
}

#[tokio::test]
async fn a_panicking_handler_is_a_json_500_and_the_server_goes_on() {
    let routes = Router::new()
        .route("/api/v1/boom", get(boom))
        .route("/api/v1/fine", get(|| async { "fine" }));
    let (base, shutdown, _) = edge_server(routes, |_| {}).await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{base}/api/v1/boom"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let resp = http
        .get(format!("{base}/api/v1/fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    shutdown.cancel();
}

#[tokio::test]
async fn a_request_past_its_timeout_is_a_json_408() {
    let routes = Router::new().route(
        "/api/v1/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late"
        }),
    );
    let (base, shutdown, _) = edge_server(routes, |s| s.request_timeout_secs = 1).await;
    let started = Instant::now();
    let resp = reqwest::get(format!("{base}/api/v1/slow")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(30));
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("1 s"), "{body}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_head_is_closed() {
    let routes = Router::new().route("/healthz", get(|| async { "ok" }));
    let (base, shutdown, _) = edge_server(routes, |s| s.header_read_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(addr_of(&base))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server still holds a connection that sent half a head"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{answer:?}"
    );
    shutdown.cancel();
}

/// A connection that opens and sends nothing is closed by the header read
/// timeout too (no protocol sniff waits for its first bytes for ever).
#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let routes = Router::new().route("/healthz", get(|| async { "ok" }));
    let (base, shutdown, _) = edge_server(routes, |s| s.header_read_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(addr_of(&base))
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server still holds a connection that sent nothing"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_stops_accepting() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let routes = Router::new().route(
        "/api/v1/work",
        get(move || {
            let (e, r) = (e.clone(), r.clone());
            async move {
                e.notify_one();
                r.notified().await;
                "finished"
            }
        }),
    );
    let (base, shutdown, server) = edge_server(routes, |_| {}).await;
    let url = format!("{base}/api/v1/work");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await });
    entered.notified().await;
    shutdown.cancel();
    let refused = eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(addr_of(&base))
            .await
            .is_err()
    })
    .await;
    assert!(refused, "new connections are still accepted after shutdown");
    assert!(!server.is_finished(), "the server waits for the request");
    release.notify_one();
    assert_eq!(in_flight.await.unwrap().unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server ends once the request is answered")
        .unwrap()
        .unwrap();
}

// ----- bad input is a 4xx naming it ------------------------------------------------

#[tokio::test]
async fn pages_out_of_range_and_unknown_parameters_answer_400_naming_them() {
    let (app, web) = served(|_| {}).await;
    for (path, names) in [
        ("/api/v1/complaints?page=99999999999999999999", vec!["page"]),
        ("/api/v1/complaints?page=9223372036854775807", vec!["page"]),
        ("/api/v1/complaints?page=0", vec!["page"]),
        (
            "/api/v1/complaints?page=-3&page_size=0",
            vec!["page", "page_size"],
        ),
        ("/api/v1/complaints?page_size=501", vec!["page_size"]),
        ("/api/v1/complaints?page=abc", vec!["page"]),
        ("/api/v1/complaints?sort=id&limit=5", vec!["limit", "sort"]),
        ("/api/v1/complaints?sync_state=bogus", vec!["sync_state"]),
        ("/api/v1/complaints?page=1&page=2", vec!["page"]),
        ("/api/v1/complaints?q=a%00b", vec!["q"]),
        ("/api/v1/outbox?page=100000000000000000000", vec!["page"]),
        ("/api/v1/outbox?stat=dead", vec!["stat"]),
        ("/api/v1/complaints/PLG-1?verbose=1", vec!["verbose"]),
        ("/api/v1/complaints/PLG-1/timeline?page=2", vec!["page"]),
    ] {
        let (status, body) = web.get(path, OPERATOR).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(fields(&body), names, "{path}: {body}");
        for name in &names {
            assert!(
                body["error"].as_str().unwrap().contains(name),
                "{path}: {body}"
            );
        }
    }
    for (path, names) in [
        ("/api/v1/audit?from=2026-01-01", vec!["from"]),
        ("/api/v1/audit?since=yesterday", vec!["since"]),
        ("/api/v1/audit?format=xlsx", vec!["format"]),
        ("/api/v1/audit/verify?fast=1", vec!["fast"]),
    ] {
        let (status, body) = web.get(path, AUDITOR).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(fields(&body), names, "{path}: {body}");
    }
    let (status, body) = web
        .post("/api/v1/reconcile?deeep=true", OPERATOR, json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fields(&body), ["deeep"]);
    let (status, body) = web
        .post(
            "/api/v1/complaints?dry_run=1",
            INTAKE,
            complaint_doc("PLG-Q"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fields(&body), ["dry_run"]);
    // What is in range still answers.
    let (status, body) = web
        .get("/api/v1/complaints?page=1000000&page_size=500", OPERATOR)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!([]));
    finish(app, web).await;
}

#[tokio::test]
async fn a_nul_character_in_any_body_field_is_a_422_naming_it() {
    let (app, web) = served(|_| {}).await;
    let mut doc = complaint_doc("PLG-NUL-T");
    doc["title"] = json!("Jalan\u{0}rusak");
    doc["reporter"]["name"] = json!("Bu\u{0}di");
    let (status, body) = web.post("/api/v1/complaints", INTAKE, doc).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body), ["reporter.name", "title"]);

    let (status, _) = web
        .post("/api/v1/complaints", INTAKE, complaint_doc("PLG-NUL"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (path, token, body, field) in [
        (
            "/api/v1/complaints/PLG-NUL/followups",
            INTAKE,
            json!({"content": "Sudah\u{0}ditangani"}),
            "content",
        ),
        (
            "/api/v1/complaints/PLG-NUL/forward",
            OPERATOR,
            json!({"institution_id": 202, "reason": "Bukan\u{0}wewenang"}),
            "reason",
        ),
        (
            "/api/v1/complaints/PLG-NUL/erase",
            ADMIN_TOKEN,
            json!({"reason": "Permintaan\u{0}subjek"}),
            "reason",
        ),
        (
            "/api/v1/complaints/PLG-NUL/followups",
            INTAKE,
            json!({"content": "ok", "is_secret": false, "note\u{0}": 1}),
            "(key)",
        ),
    ] {
        let (status, answer) = web.post(path, token, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(fields(&answer), [field], "{path}: {answer}");
    }
    // Nothing was written: one submission, its audit entry, no follow-up.
    let followups: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.followups")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(followups, 0);
    // A NUL in the path.
    let (status, body) = web.get("/api/v1/complaints/PLG%00NUL", OPERATOR).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("NUL"), "{body}");
    finish(app, web).await;
}

#[tokio::test]
async fn dashboard_pages_refuse_bad_query_parameters_with_a_400_page() {
    let (app, web) = served(|_| {}).await;
    let operator = web.session(OPERATOR).await;
    let auditor = web.session(AUDITOR).await;
    for (path, cookie, name) in [
        ("/complaints?page=99999999999999999999", &operator, "page"),
        ("/complaints?page=0", &operator, "page"),
        ("/complaints?sortby=title", &operator, "sortby"),
        ("/complaints?q=a%00b", &operator, "q"),
        ("/complaints/PLG-X?tab=audit", &operator, "tab"),
        ("/outbox/dead?page=-1", &operator, "page"),
        ("/reconciliation?page=x", &operator, "page"),
        ("/reconciliation?kind=pull", &operator, "kind"),
        ("/audit?page=1000001", &auditor, "page"),
        ("/audit/export.csv?from=2026-01-01", &auditor, "from"),
        ("/audit/export.jsonl?since=x", &auditor, "since"),
    ] {
        let (status, page, _) = web.page(path, cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.contains(name), "{path}: {page}");
        assert!(page.contains("<html"), "{path}: an HTML page");
    }
    for path in [
        "/complaints?page=2&q=x&lang=en",
        "/outbox/dead?page=1",
        "/reconciliation?job=pull&page=1",
    ] {
        assert_eq!(web.page(path, &operator).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(web.page("/audit?page=3", &auditor).await.0, StatusCode::OK);
    finish(app, web).await;
}

// ----- readiness and the sign-in page under a flood -----------------------------

#[tokio::test]
async fn readiness_checks_the_database_at_most_about_once_a_second() {
    let (app, web) = served(|_| {}).await;
    let checks = || {
        app.bridge
            .metrics
            .counter_value("readiness_checks_total", &[])
    };
    let started = Instant::now();
    // 200 requests, 50 at a time.
    for _ in 0..4 {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let (http, url) = (web.http.clone(), format!("{}/readyz", web.base));
                tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
            })
            .collect();
        for r in batch {
            assert_eq!(r.await.unwrap(), StatusCode::OK);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let made = checks();
    assert!(
        made >= 1 && made as f64 <= elapsed.ceil() + 1.0,
        "{made} database checks for 200 requests in {elapsed:.2} s"
    );
    // A cache, not a check made once: a later request checks again.
    assert!(
        eventually(Duration::from_secs(10), || async {
            web.http
                .get(format!("{}/readyz", web.base))
                .send()
                .await
                .unwrap();
            checks() > made
        })
        .await
    );
    finish(app, web).await;
}

#[tokio::test]
async fn the_sign_in_page_answers_without_the_database() {
    let (app, web) = served(|_| {}).await;
    // No database behind the server from here on: a page that needed it
    // would fail.
    app.pool.close().await;
    for _ in 0..50 {
        let (status, page, _) = web.page("/login", "lang=id").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("token"), "{page}");
    }
    // A cookie shaped like a session goes to the overview, which checks it.
    let cookie = format!("lb_session={}", "ab".repeat(32));
    for _ in 0..50 {
        let (status, _, location) = web.page("/login", &cookie).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, "/");
    }
    // Nothing else may depend on the closed pool.
    web.shutdown.cancel();
    app.sim.shutdown();
    app.db.drop_db().await;
}
