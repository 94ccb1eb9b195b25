//! The operators' dashboard end to end: a real daemon with its own workers,
//! the LAPOR! simulator, and headless Chromium driven through chromedriver's
//! WebDriver HTTP API. CI installs Debian's `chromium` and `chromium-driver`;
//! without them the browser test fails rather than skips.
//!
//! Screenshots of the overview and a complaint page are written to
//! `$TMPDIR/lapor-bridge-dashboard-*.png` for a human look.

mod common;

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use lapor_bridge::app::Daemon;
use lapor_bridge::clock::SystemClock;
use lapor_bridge::simulator::{self, RunningSimulator, SimulatorConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const OPERATOR_TOKEN: &str = "e2e-operator-token-bbbbbbbbbbbb";
const AUDITOR_TOKEN: &str = "e2e-auditor-token-cccccccccccc";
const INTAKE_TOKEN: &str = "e2e-intake-token-aaaaaaaaaaaaa";
const DEADLINE: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";

// The application -------------------------------------------------------------

struct App {
    db: TestDb,
    sim: RunningSimulator,
    shutdown: CancellationToken,
    daemon: Daemon,
    base: String,
    /// No redirects followed, no cookie jar: every header is visible.
    http: reqwest::Client,
}

async fn spawn_app() -> App {
    spawn_app_with(|_| {}).await
}

async fn spawn_app_with(tweak: impl FnOnce(&mut lapor_bridge::config::Settings)) -> App {
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
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    App {
        db,
        sim,
        shutdown,
        daemon,
        base,
        http,
    }
}

impl App {
    fn pool(&self) -> &PgPool {
        &self.daemon.bridge.pool
    }

    async fn submit(&self, doc: &Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/complaints", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(doc)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    /// The id of the dead `create` step of `local_ref`, once there is one.
    async fn wait_dead_step(&self, local_ref: &str) -> i64 {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let id: Option<i64> = sqlx::query_scalar(
                "SELECT o.id FROM lapor_bridge.outbox o
                   JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
                  WHERE c.local_ref = $1 AND o.state = 'dead'",
            )
            .bind(local_ref)
            .fetch_optional(self.pool())
            .await
            .unwrap();
            if let Some(id) = id {
                return id;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{local_ref} never became a dead letter"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn attempts_of_step(&self, id: i64) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox_attempts WHERE outbox_id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await
            .unwrap()
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

// WebDriver -------------------------------------------------------------------

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session. Dropping it ends both, even when
/// the test panics.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    driver: String,
    port: u16,
    session: String,
    child: tokio::process::Child,
    profile: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `value` of a WebDriver answer; panics with the error otherwise.
async fn wd_value(resp: reqwest::Response, what: &str) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "WebDriver {what}: {status} {body}");
    body["value"].clone()
}

impl Browser {
    async fn start() -> Self {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "chromedriver is missing: install Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver); .ci/run does it in CI",
            );
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
        );
        let port = free_port();
        let child = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{driver}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "lapor-bridge-e2e-chromium-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let resp = http
            .post(format!("{driver}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap();
        let value = wd_value(resp, "new session").await;
        let session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let browser = Self {
            http,
            driver,
            port,
            session,
            child,
            profile,
        };
        // Element look-ups wait for a page that is still loading after a
        // click, instead of failing at once.
        browser
            .post("/timeouts", json!({"implicit": 5000, "pageLoad": 30000}))
            .await;
        browser
    }

    /// The page text, or `None` while the page is being replaced.
    async fn try_text(&self) -> Option<String> {
        let found = self
            .http
            .post(self.url("/element"))
            .json(&json!({"using": "css selector", "value": "body"}))
            .send()
            .await
            .ok()?;
        let v: Value = found.json().await.ok()?;
        let el = v["value"][ELEMENT].as_str()?.to_string();
        let text = self
            .http
            .get(self.url(&format!("/element/{el}/text")))
            .send()
            .await
            .ok()?;
        let v: Value = text.json().await.ok()?;
        v["value"].as_str().map(str::to_string)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.driver, self.session)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let resp = self.http.post(self.url(path)).json(&body).send().await;
        wd_value(resp.unwrap(), path).await
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).send().await;
        wd_value(resp.unwrap(), path).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/click"), json!({})).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({"text": text}))
            .await;
    }

    /// Waits until the page's text contains `needle` (pages load on click,
    /// but a form submission may still be under way).
    async fn wait_text(&self, needle: &str) -> String {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let text = self.try_text().await.unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the page never showed {needle:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_url(&self, want: &str) {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let url = self.current_url().await;
            if url == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the browser is at {url}, never at {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = std::env::temp_dir().join(format!("lapor-bridge-dashboard-{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    /// Ends the browser session with a plain blocking request (no runtime is
    /// needed in `drop`), then chromedriver.
    fn drop(&mut self) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session, self.port
            );
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

// The browser test ------------------------------------------------------------

#[tokio::test]
async fn an_operator_signs_in_finds_a_complaint_and_retries_a_dead_letter() {
    let app = spawn_app().await;
    app.submit(&complaint_doc("PLG-E2E-OK")).await;
    let mut doomed = complaint_doc("PLG-E2E-DEAD");
    doomed["disposition_id"] = json!(999999);
    app.submit(&doomed).await;
    let dead_id = app.wait_dead_step("PLG-E2E-DEAD").await;
    let attempts_before = app.attempts_of_step(dead_id).await;
    assert!(attempts_before >= 1);

    let browser = Browser::start().await;
    let base = &app.base;

    // Sign in (Bahasa Indonesia by default).
    browser.goto(&format!("{base}/")).await;
    browser.wait_url(&format!("{base}/login")).await;
    browser.wait_text("Masuk ke dasbor").await;
    browser.type_into("#token", "not-a-token").await;
    browser.click("#login-submit").await;
    browser.wait_text("Token tidak dikenal.").await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-submit").await;
    browser.wait_url(&format!("{base}/")).await;

    // The overview.
    let text = browser.wait_text("Ringkasan").await;
    assert!(text.contains("Masuk sebagai: admin (admin)"), "{text}");
    assert!(text.contains("Gagal terkirim"), "{text}");
    assert!(text.contains("Token LAPOR!"), "{text}");
    assert!(text.contains("Tarik data terakhir"), "{text}");
    let dead_card = browser.find("[data-sync-state=dead] .value").await;
    let dead_count = browser.get(&format!("/element/{dead_card}/text")).await;
    assert_eq!(dead_count, "1");
    let shot = browser.screenshot("overview").await;
    eprintln!("overview screenshot: {}", shot.display());

    // English on request, remembered by a cookie.
    browser.click("#lang-switch").await;
    browser.wait_text("Dead letters").await;
    browser.goto(&format!("{base}/")).await;
    browser.wait_text("Overview").await;
    browser.goto(&format!("{base}/?lang=id")).await;
    browser.wait_text("Ringkasan").await;

    // Find the complaint by its reference and open its timeline.
    browser.goto(&format!("{base}/complaints")).await;
    browser.type_into("#q", "E2E-OK").await;
    browser.click("#search").await;
    browser
        .wait_url(&format!(
            "{base}/complaints?q=E2E-OK&sync_state=&status=&overdue="
        ))
        .await;
    let list = browser.wait_text("PLG-E2E-OK").await;
    assert!(!list.contains("PLG-E2E-DEAD"), "{list}");
    browser.click("a[data-ref=\"PLG-E2E-OK\"]").await;
    browser
        .wait_url(&format!("{base}/complaints/PLG-E2E-OK"))
        .await;
    let page = browser.wait_text("Linimasa").await;
    assert!(page.contains("Pengaduan PLG-E2E-OK"), "{page}");
    assert!(page.contains("pengaduan dicatat"), "{page}");
    assert!(page.contains("percobaan kirim"), "{page}");
    assert!(
        page.contains("Budi"),
        "not anonymous: the admin sees the reporter"
    );
    // Tall enough to show the timeline too.
    browser
        .post("/window/rect", json!({"width": 1280, "height": 1800}))
        .await;
    let shot = browser.screenshot("complaint").await;
    eprintln!("complaint screenshot: {}", shot.display());

    // Retry the dead letter.
    browser.goto(&format!("{base}/outbox/dead")).await;
    let dead_page = browser.wait_text("PLG-E2E-DEAD").await;
    assert!(
        dead_page.contains("The selected disposition id is invalid."),
        "{dead_page}"
    );
    browser
        .click(&format!("button[data-retry=\"{dead_id}\"]"))
        .await;
    let flash = browser
        .wait_text(&format!("#{dead_id} — Langkah dikirim ulang"))
        .await;
    assert!(
        ["menunggu", "berjalan", "gagal"]
            .iter()
            .any(|s| flash.contains(&format!("Keadaan sekarang: {s}"))),
        "{flash}"
    );
    browser.screenshot("dead-letters").await;
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM lapor_bridge.audit_log
          WHERE action = 'operator.retry' AND local_ref = 'PLG-E2E-DEAD'",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(actors, ["token:admin"]);
    // LAPOR! still rejects it: a new attempt, and dead again.
    let until = tokio::time::Instant::now() + DEADLINE;
    while app.attempts_of_step(dead_id).await <= attempts_before {
        assert!(tokio::time::Instant::now() < until, "no new attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.wait_dead_step("PLG-E2E-DEAD").await;
    browser.goto(&format!("{base}/outbox/dead")).await;
    browser.wait_text("PLG-E2E-DEAD").await;

    // Log out: the pages send the browser back to the login form.
    browser.click("#logout").await;
    browser.wait_url(&format!("{base}/login")).await;
    browser.goto(&format!("{base}/")).await;
    browser.wait_url(&format!("{base}/login")).await;
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.dashboard_sessions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    drop(browser);
    app.finish().await;
}

/// Labels an Indonesian page must not show (English belongs to `?lang=en`).
const ENGLISH: [&str; 18] = [
    "dead letter",
    "Dead letter",
    "pending",
    "outbox",
    "schedule",
    "followup",
    "delivered",
    "retrying",
    "Retry",
    "tracking id",
    "Tracking id",
    "synced",
    "waiting",
    "Overview",
    "Complaints",
    "Reconciliation",
    "Last error",
    "Sync state",
];

/// At 390 px (a phone) every main page fits the viewport: tables scroll
/// inside their own box, nothing makes the page scroll sideways. The
/// Indonesian pages carry none of the English labels.
#[tokio::test]
async fn every_page_fits_a_phone_and_speaks_indonesian() {
    let app = spawn_app().await;
    app.submit(&complaint_doc("PLG-E2E-PHONE-WITH-A-LONG-REFERENCE-0001"))
        .await;
    let mut doomed = complaint_doc("PLG-E2E-PHONE-DEAD");
    doomed["disposition_id"] = json!(999999);
    app.submit(&doomed).await;
    app.wait_dead_step("PLG-E2E-PHONE-DEAD").await;
    // A run with a problem, for the reconciliation page.
    lapor_bridge::inbound::Jobs::new(app.daemon.bridge.clone())
        .pull("schedule")
        .await
        .unwrap();
    let browser = Browser::start().await;
    let base = &app.base;
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-submit").await;
    browser.wait_url(&format!("{base}/")).await;
    browser
        .post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride",
                   "params": {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}}),
        )
        .await;
    for path in [
        "/",
        "/complaints",
        "/complaints/PLG-E2E-PHONE-WITH-A-LONG-REFERENCE-0001",
        "/complaints/PLG-E2E-PHONE-DEAD",
        "/outbox/dead",
        "/reconciliation",
        "/audit",
    ] {
        browser.goto(&format!("{base}{path}")).await;
        let text = browser.wait_text("lapor-bridge").await;
        let widths = browser
            .post(
                "/execute/sync",
                json!({"script": "return [document.documentElement.scrollWidth, window.innerWidth];",
                       "args": []}),
            )
            .await;
        let (scroll, viewport) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert_eq!(viewport, 390, "{path}: the phone's viewport");
        assert!(
            scroll <= viewport,
            "{path}: the page is {scroll} px wide at a {viewport} px viewport"
        );
        for word in ENGLISH {
            assert!(!text.contains(word), "{path} shows {word:?}:\n{text}");
        }
    }
    browser.screenshot("phone-complaint").await;
    drop(browser);
    app.finish().await;
}

// Plain HTTP: cookies, CSRF, roles, escaping ----------------------------------

/// The `name=value` of a `Set-Cookie` for `name`, and the whole header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

impl App {
    async fn login(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", token)]))
            .send()
            .await
            .unwrap()
    }

    /// Signs in; the session cookie (`lb_session=...`).
    async fn session(&self, token: &str) -> String {
        let resp = self.login(token).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        set_cookie(&resp, "lb_session").unwrap().0
    }

    /// GET `path` with the session `cookie`, redirects not followed.
    async fn get_with(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    /// The session `cookie` no longer opens pages: `/` sends to the login form.
    async fn assert_signed_out(&self, cookie: &str) {
        let resp = self.get_with("/", cookie).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), "/login");
    }

    async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let resp = self.get_with(path, cookie).await;
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        pairs: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(pairs));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn sessions_are_http_only_strict_cookies_and_forms_need_their_csrf_token() {
    let app = spawn_app().await;

    // Without a session every page goes to the login form.
    for path in [
        "/",
        "/complaints",
        "/outbox/dead",
        "/audit",
        "/reconciliation",
    ] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&resp), "/login", "{path}");
    }
    let login = app
        .http
        .get(format!("{}/login?lang=en", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let (lang_cookie, _) = set_cookie(&login, "lang").unwrap();
    assert_eq!(lang_cookie, "lang=en");
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("Sign in to the dashboard")
    );

    // A wrong token: the form again, 401; an intake token has no pages.
    let wrong = app.login("nope").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "lb_session").is_none());
    assert!(wrong.text().await.unwrap().contains("Token tidak dikenal."));
    assert_eq!(
        app.login(INTAKE_TOKEN).await.status(),
        StatusCode::FORBIDDEN
    );

    // The session cookie.
    let ok = app.login(OPERATOR_TOKEN).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/");
    let (cookie, header) = set_cookie(&ok, "lb_session").unwrap();
    let attrs: Vec<&str> = header.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{header}");
    assert!(attrs.contains(&"SameSite=Strict"), "{header}");
    assert!(attrs.contains(&"Path=/"), "{header}");
    let id = cookie.trim_start_matches("lb_session=");
    assert_eq!(id.len(), 64);
    // Only the id's digest is stored.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT id_sha256 FROM lapor_bridge.dashboard_sessions")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], id);

    let (status, overview) = app.page("/", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("Masuk sebagai: ops (operator)"));
    let csrf = csrf_in(&overview);

    // POSTs without the CSRF field, with a wrong one, or from another origin.
    let missing = app.post_form("/logout", &cookie, &[], None).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let missing = app
        .post_form(
            "/outbox/1/retry",
            &cookie,
            &[("back", "/outbox/dead")],
            None,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = app
        .post_form("/logout", &cookie, &[("csrf", "0123")], None)
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let cross = app
        .post_form(
            "/logout",
            &cookie,
            &[("csrf", &csrf)],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let no_body = app
        .http
        .post(format!("{}/logout", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_body.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.page("/", &cookie).await.0,
        StatusCode::OK,
        "still signed in"
    );

    // Roles: the operator may not read the audit pages; the auditor only those.
    assert_eq!(app.page("/audit", &cookie).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.page("/audit/export.csv", &cookie).await.0,
        StatusCode::FORBIDDEN
    );
    let auditor = app.session(AUDITOR_TOKEN).await;
    assert_eq!(app.page("/", &auditor).await.0, StatusCode::FORBIDDEN);
    let (status, audit_page) = app.page("/audit", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit_page.contains("bridge dijalankan"),
        "the action in words"
    );
    let (status, csv) = app.page("/audit/export.csv", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("id,at,actor,local_ref,action"), "{csv}");
    let (status, jsonl) = app
        .page("/audit/export.jsonl?since=2000-01-01", &auditor)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(jsonl.lines().count() >= 1);
    assert_eq!(
        app.page("/audit/export.csv?since=yesterday", &auditor)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (_, audit_page) = app.page("/audit", &auditor).await;
    let verify = app
        .post_form(
            "/audit/verify",
            &auditor,
            &[("csrf", &csrf_in(&audit_page))],
            None,
        )
        .await;
    assert_eq!(verify.status(), StatusCode::OK);
    let verified = verify.text().await.unwrap();
    assert!(verified.contains("data-ok=\"true\""), "{verified}");
    // One session's CSRF token does not work for another session.
    let foreign = app
        .post_form("/audit/verify", &auditor, &[("csrf", &csrf)], None)
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    // Values are escaped; reporters of anonymous complaints are masked for
    // operators and shown to admins.
    let mut doc = complaint_doc("PLG-E2E-ANON");
    doc["title"] = json!("<script>alert(\"x\")</script> & co");
    doc["is_anonymous"] = json!(true);
    doc["reporter"] =
        json!({"name": "Siti Rahasia", "phone": "081399912345", "email": "siti@example.org"});
    app.submit(&doc).await;
    let (status, page) = app.page("/complaints/PLG-E2E-ANON", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "unescaped title");
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
    for secret in ["Siti Rahasia", "081399912345", "siti@example.org"] {
        assert!(!page.contains(secret), "{secret} shown to an operator");
    }
    assert!(page.contains("Siti R***") && page.contains("0813****345"));
    let admin = app.session(ADMIN_TOKEN).await;
    let (_, page) = app.page("/complaints/PLG-E2E-ANON", &admin).await;
    assert!(page.contains("Siti Rahasia"));
    assert_eq!(
        app.page("/complaints/PLG-NOPE", &cookie).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, list) = app
        .page("/complaints?q=%3Cscript%3E&overdue=no&page=1", &cookie)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("value=\"&lt;script&gt;\""));

    // Logging out deletes the session and clears the cookie.
    let out = app
        .post_form("/logout", &cookie, &[("csrf", &csrf)], None)
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/login");
    let (cleared, header) = set_cookie(&out, "lb_session").unwrap();
    assert_eq!(cleared, "lb_session=");
    assert!(header.contains("Max-Age=0"));
    app.assert_signed_out(&cookie).await;

    app.finish().await;
}

/// A session is only as good as its token: once the token is no longer
/// configured (or holds another role), the next page asks to sign in again
/// and the session row is gone.
#[tokio::test]
async fn a_session_ends_when_its_token_is_removed() {
    let app = spawn_app().await;
    let cookie = app.session(OPERATOR_TOKEN).await;
    assert_eq!(app.page("/", &cookie).await.0, StatusCode::OK);
    // The configuration now names no token "ops" (as after a restart with
    // the token removed): the stored session points at nothing.
    sqlx::query("UPDATE lapor_bridge.dashboard_sessions SET token_name = 'ops-removed'")
        .execute(app.pool())
        .await
        .unwrap();
    app.assert_signed_out(&cookie).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.dashboard_sessions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    // A role changed under a live session ends it too.
    let cookie = app.session(OPERATOR_TOKEN).await;
    sqlx::query("UPDATE lapor_bridge.dashboard_sessions SET role = 'admin'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(app.page("/", &cookie).await.0, StatusCode::SEE_OTHER);
    app.finish().await;
}

#[tokio::test]
async fn the_audit_page_offers_the_checkpoints_and_verify_names_a_cut_tail() {
    let file = std::env::temp_dir().join(format!(
        "lapor-bridge-dashboard-{:016x}.jsonl",
        rand::random::<u64>()
    ));
    let path = file.clone();
    let app = spawn_app_with(move |s| {
        s.audit.checkpoint_file = Some(path);
        s.audit.checkpoint_secs = 3600;
    })
    .await;
    // The writer's first look, at start, records `bridge.started` (the file
    // exists from the writer's open, before its first line).
    assert!(
        eventually(DEADLINE, || async {
            std::fs::read_to_string(&file).is_ok_and(|t| t.ends_with('\n'))
        })
        .await
    );
    let auditor = app.session(AUDITOR_TOKEN).await;
    let (status, audit_page) = app.page("/audit", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit_page.contains("href=\"/audit/checkpoints.jsonl\""),
        "{audit_page}"
    );
    let (status, download) = app.page("/audit/checkpoints.jsonl", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(download, std::fs::read_to_string(&file).unwrap());
    let operator = app.session(OPERATOR_TOKEN).await;
    assert_eq!(
        app.page("/audit/checkpoints.jsonl", &operator).await.0,
        StatusCode::FORBIDDEN
    );

    let verify = |page: String| {
        let app = &app;
        let auditor = &auditor;
        async move {
            let resp = app
                .post_form("/audit/verify", auditor, &[("csrf", &csrf_in(&page))], None)
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.text().await.unwrap()
        }
    };
    let verified = verify(audit_page).await;
    assert!(verified.contains("data-ok=\"true\""), "{verified}");
    assert!(verified.contains("checkpoint diperiksa 1"), "{verified}");

    // The owner removes the checkpointed entry and everything after it.
    let id: i64 = serde_json::from_str::<Value>(download.lines().next().unwrap()).unwrap()["id"]
        .as_i64()
        .unwrap();
    with_audit_triggers_off(
        app.pool(),
        "DELETE FROM lapor_bridge.audit_log WHERE id >= $1",
        id,
    )
    .await;
    let (_, audit_page) = app.page("/audit", &auditor).await;
    let verified = verify(audit_page).await;
    assert!(verified.contains("data-ok=\"false\""), "{verified}");
    assert!(verified.contains(&format!("#{id}<")), "{verified}");
    assert!(verified.contains("TIDAK COCOK"), "{verified}");

    std::fs::remove_file(&file).ok();
    app.finish().await;
}
