//! The change feed: events written with the changes they describe, read by
//! cursor without ever skipping a transaction that commits late, the
//! changes API (limits, long polling, intake scoping), NOTIFY, and the
//! webhooks (Standard Webhooks signatures, retries through a failing
//! receiver in order per complaint, 410 Gone, no redirects, dead letters).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::*;
use lapor_bridge::clock::Clock;
use lapor_bridge::config::WebhookSettings;
use lapor_bridge::feed::webhook::{Dispatcher, WebhookSecret};
use lapor_bridge::feed::{self, Cursor};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;

const INTAKE: &str = "feed-intake-token-aaaaaaaaaaaa";
const OPERATOR: &str = "feed-operator-token-bbbbbbbbbb";
const AUDITOR: &str = "feed-auditor-token-cccccccccccc";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every event after `after` that has committed, as the API shows them,
/// once the feed shows them all: a transaction still running anywhere on
/// the server (other tests run in parallel) holds newer events back.
async fn read_all(app: &TestApp, after: Cursor) -> Vec<feed::ChangeItem> {
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = feed::read_changes(&app.bridge, after, 1000, Duration::ZERO, None)
            .await
            .unwrap()
            .items;
        let committed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM lapor_bridge.events WHERE (txid, id) > ($1, $2)",
        )
        .bind(after.txid)
        .bind(after.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if items.len() as i64 == committed || tokio::time::Instant::now() >= until {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn complaint_id(pool: &PgPool, local_ref: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM lapor_bridge.complaints WHERE local_ref = $1")
        .bind(local_ref)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn head(app: &TestApp) -> Cursor {
    let items = read_all(app, Cursor::START).await;
    items
        .last()
        .map(|i| i.cursor.parse().unwrap())
        .unwrap_or(Cursor::START)
}

/// Submits and delivers a complaint; returns its LAPOR! id.
async fn linked(app: &TestApp, local_ref: &str) -> i64 {
    app.submit(local_ref).await;
    app.settle(10).await;
    app.status(local_ref).await.lapor_complaint_id.unwrap()
}

#[tokio::test]
async fn each_change_is_an_event_in_order_and_none_names_the_reporter() {
    let app = spawn_app().await;
    let lapor_id = linked(&app, "PLG-F-1").await;
    // LAPOR! verifies it, a citizen answers (once openly, once secretly),
    // and we post a follow-up.
    app.verify_upstream(lapor_id).await;
    for (content, secret) in [
        ("Terima kasih, masih rusak.", 0),
        ("Rahasia: nomor saya 0812", 1),
    ] {
        app.sim_post(
            &format!("/_sim/complaints/{lapor_id}/followups"),
            json!({"content": content, "is_secret": secret}),
        )
        .await;
    }
    let jobs = lapor_bridge::inbound::Jobs::new(app.bridge.clone());
    jobs.pull("test").await.unwrap();
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-F-1", "Sedang ditangani.", false, "test")
        .await
        .unwrap();
    app.settle(10).await;

    let items = read_all(&app, Cursor::START).await;
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "complaint.linked",
            "complaint.status_changed",
            "complaint.disposition_changed",
            "followup.received",
            "followup.received",
            "followup.posted"
        ],
        "{items:#?}"
    );
    let linked = &items[0];
    assert_eq!(linked.data["local_ref"], "PLG-F-1");
    assert_eq!(linked.data["lapor_complaint_id"], lapor_id);
    assert!(
        linked.data["tracking_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(items[1].data["previous_status"], "unverified");
    assert_eq!(items[1].data["status"], "verified");
    // Verified and dispositioned to us: the first disposition is a change.
    assert_eq!(items[2].data["disposition_id"], 101);
    assert_eq!(items[2].data["previous_disposition_id"], Value::Null);
    assert_eq!(items[3].data["content"], "Terima kasih, masih rusak.");
    assert_eq!(items[4].data["is_secret"], true);
    assert_eq!(
        items[4].data["content"],
        Value::Null,
        "a secret follow-up's text stays out"
    );
    assert_eq!(items[5].data["content"], "Sedang ditangani.");
    // Ids are unique and stable; cursors increase; no reporter identity.
    let again = read_all(&app, Cursor::START).await;
    assert_eq!(items, again);
    let cursors: Vec<Cursor> = items.iter().map(|i| i.cursor.parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    let text = serde_json::to_string(&items).unwrap();
    for identity in ["Budi", "081234567890", "budi@example.org", "nomor saya"] {
        assert!(!text.contains(identity), "{identity} in {text}");
    }
    // Resuming from a cursor answers what follows it.
    let rest = read_all(&app, cursors[2]).await;
    assert_eq!(rest, items[3..].to_vec());
    app.finish().await;
}

#[tokio::test]
async fn imports_dispositions_conflicts_and_dead_steps_are_events() {
    let app = spawn_app().await;
    let upstream = app
        .sim_post(
            "/_sim/complaints",
            json!({"title": "Lampu jalan mati", "content": "Sejak seminggu.", "disposition_id": 101}),
        )
        .await["complaint_id"]
        .as_i64()
        .unwrap();
    let jobs = lapor_bridge::inbound::Jobs::new(app.bridge.clone());
    jobs.pull("test").await.unwrap();
    let items = read_all(&app, Cursor::START).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0].kind, "complaint.imported");
    assert_eq!(items[0].data["local_ref"], format!("LAPOR-{upstream}"));
    assert_eq!(items[0].data["disposition_id"], 101);
    assert!(items[0].data["status"].is_string());
    let after = head(&app).await;

    // A forward moves the disposition; a 403 on a follow-up dead-letters
    // it; an unknown status name is a conflict.
    let lapor_id = linked(&app, "PLG-F-2").await;
    app.verify_upstream(lapor_id).await;
    jobs.pull("test").await.unwrap();
    app.faults(json!({"forbidden_complaints": [lapor_id]}))
        .await;
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-F-2", "Ditolak?", false, "test")
        .await
        .unwrap();
    app.settle(10).await;
    app.faults(json!({})).await;
    app.sim_post(
        &format!("/_sim/complaints/{lapor_id}/status"),
        json!({"status_name": "Sedang Diperiksa Ulang", "force": true}),
    )
    .await;
    jobs.pull("test").await.unwrap();
    let items = read_all(&app, after).await;
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "complaint.linked",
            "complaint.status_changed",
            "complaint.disposition_changed",
            "delivery.dead",
            "complaint.status_changed",
            "complaint.conflict"
        ],
        "{items:#?}"
    );
    assert_eq!(items[3].data["step"], "followup");
    assert_eq!(items[4].data["lapor_status_name"], "Sedang Diperiksa Ulang");
    assert_eq!(items[4].data["status"], Value::Null);
    assert!(
        items[5].data["reason"]
            .as_str()
            .unwrap()
            .contains("unknown")
    );

    // A disposition change (the complaint forwarded on LAPOR!).
    let after = head(&app).await;
    app.sim_post(
        &format!("/_sim/complaints/{lapor_id}/status"),
        json!({"status_name": "Terverifikasi", "disposition_id": 102, "force": true}),
    )
    .await;
    jobs.pull("test").await.unwrap();
    let items = read_all(&app, after).await;
    let change = items
        .iter()
        .find(|i| i.kind == "complaint.disposition_changed")
        .unwrap_or_else(|| panic!("{items:#?}"));
    assert_eq!(change.data["disposition_id"], 102);
    assert_eq!(change.data["previous_disposition_id"], 101);
    app.finish().await;
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_never_skipped() {
    let app = spawn_app().await;
    app.submit("PLG-F-A").await;
    app.submit("PLG-F-B").await;
    let a = complaint_id(&app.pool, "PLG-F-A").await;
    let b = complaint_id(&app.pool, "PLG-F-B").await;
    let start = head(&app).await;

    // T1 writes its event first (the lower id) but commits last.
    let mut t1 = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'first' WHERE id = $1")
        .bind(a)
        .execute(&mut *t1)
        .await
        .unwrap();
    let mut t2 = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'second' WHERE id = $1")
        .bind(b)
        .execute(&mut *t2)
        .await
        .unwrap();
    t2.commit().await.unwrap();

    // While T1 runs, T2's event is not readable: a reader that took it would
    // move its cursor past T1's.
    let page = feed::read_changes(&app.bridge, start, 100, Duration::ZERO, None)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{:#?}", page.items);
    let next: Cursor = page.next.parse().unwrap();
    assert_eq!(next, start);

    t1.commit().await.unwrap();
    let mut items = Vec::new();
    let settled = eventually(Duration::from_secs(20), || {
        let bridge = app.bridge.clone();
        async move {
            feed::read_changes(&bridge, next, 100, Duration::ZERO, None)
                .await
                .unwrap()
                .items
                .len()
                == 2
        }
    })
    .await;
    assert!(settled);
    items.extend(read_all(&app, next).await);
    let reasons: Vec<&str> = items
        .iter()
        .map(|i| i.data["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["first", "second"], "both, in (txid, id) order");
    // T1's event has the lower id: a reader paging by id alone would have
    // taken T2's while T1 ran, and never come back for T1's.
    let id = |i: &feed::ChangeItem| i.id.trim_start_matches("evt_").parse::<i64>().unwrap();
    assert!(id(&items[0]) < id(&items[1]));
    app.finish().await;
}

#[tokio::test]
async fn notify_carries_the_cursor_of_each_event() {
    let app = spawn_app().await;
    app.submit("PLG-F-N").await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .unwrap();
    listener.listen("lapor_bridge_events").await.unwrap();
    app.settle(10).await;
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    let items = read_all(&app, Cursor::START).await;
    assert_eq!(items.len(), 1);
    assert_eq!(note.payload(), items[0].cursor);
    assert_eq!(note.channel(), "lapor_bridge_events");
    // The view for applications that share the database shows the same.
    let (cursor, id, kind): (String, String, String) =
        sqlx::query_as("SELECT cursor, id, type FROM lapor_bridge.changes ORDER BY txid, seq")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (cursor, id, kind),
        (
            items[0].cursor.clone(),
            items[0].id.clone(),
            items[0].kind.clone()
        )
    );
    // The listener holds a pooled connection: give it back before closing.
    drop(listener);
    app.finish().await;
}

/// One statement that changes many complaints (the outcome writer links a
/// whole batch at once; a city app may update several by SQL) writes every
/// event of each, in order per complaint, and notifies each one's cursor.
#[tokio::test]
async fn a_statement_changing_many_complaints_writes_each_event_in_order_and_notifies_each() {
    let app = spawn_app().await;
    let refs = ["PLG-F-M1", "PLG-F-M2", "PLG-F-M3"];
    for r in refs {
        linked(&app, r).await;
    }
    let start = head(&app).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .unwrap();
    listener.listen("lapor_bridge_events").await.unwrap();
    // Status and disposition of all three in one UPDATE; one complaint
    // also gets a conflict.
    let changed = sqlx::query(
        "UPDATE lapor_bridge.complaints
            SET lapor_status_name = 'Terverifikasi', status = 'verified',
                lapor_disposition_id = 4242,
                conflict_reason = CASE WHEN local_ref = 'PLG-F-M2' THEN 'checked by hand' END
          WHERE local_ref = ANY($1)",
    )
    .bind(&refs[..])
    .execute(&app.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 3);
    let items = read_all(&app, start).await;
    let mut seen: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i.data["local_ref"].as_str().unwrap().to_string(),
                i.kind.clone(),
            )
        })
        .collect();
    // Complaints in any order; each one's events in order (a stable sort).
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<(String, String)> = [
        ("PLG-F-M1", "complaint.status_changed"),
        ("PLG-F-M1", "complaint.disposition_changed"),
        ("PLG-F-M2", "complaint.status_changed"),
        ("PLG-F-M2", "complaint.disposition_changed"),
        ("PLG-F-M2", "complaint.conflict"),
        ("PLG-F-M3", "complaint.status_changed"),
        ("PLG-F-M3", "complaint.disposition_changed"),
    ]
    .iter()
    .map(|(r, k)| (r.to_string(), k.to_string()))
    .collect();
    assert_eq!(seen, expected);
    let first = items
        .iter()
        .find(|i| i.kind == "complaint.status_changed")
        .unwrap();
    assert_eq!(first.data["previous_status"], "unverified");
    assert_eq!(first.data["status"], "verified");
    let conflict = items
        .iter()
        .find(|i| i.kind == "complaint.conflict")
        .unwrap();
    assert_eq!(conflict.data["reason"], "checked by hand");
    assert_eq!(conflict.data["local_ref"], "PLG-F-M2");
    for item in &items {
        let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        assert_eq!(note.payload(), item.cursor, "each event's cursor, in order");
    }
    drop(listener);
    app.finish().await;
}

#[tokio::test]
async fn the_changes_api_validates_scopes_intake_and_long_polls() {
    let app = spawn_app().await;
    let served = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    // One complaint from the intake desk, one from elsewhere.
    let (status, _) = served
        .post("/api/v1/complaints", INTAKE, complaint_doc("PLG-F-DESK"))
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    app.submit("PLG-F-OTHER").await;
    app.settle(10).await;
    assert_eq!(read_all(&app, Cursor::START).await.len(), 2);

    let (status, all) = served.get("/api/v1/changes", OPERATOR).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{all}");
    let refs = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["data"]["local_ref"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen = refs(&all);
    seen.sort();
    assert_eq!(seen, ["PLG-F-DESK", "PLG-F-OTHER"]);
    let item = &all["items"][0];
    for key in ["cursor", "id", "type", "at", "data"] {
        assert!(!item[key].is_null(), "{key} in {item}");
    }
    assert_eq!(all["next"], all["items"][1]["cursor"]);
    let (_, mine) = served.get("/api/v1/changes?after=&limit=10", INTAKE).await;
    assert_eq!(refs(&mine), ["PLG-F-DESK"]);
    let (_, one) = served.get("/api/v1/changes?limit=1", OPERATOR).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let (_, rest) = served
        .get(
            &format!("/api/v1/changes?after={}", one["next"].as_str().unwrap()),
            OPERATOR,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0], all["items"][1]);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "wait=31",
        "wait=-1",
        "after=12",
        "after=evt_1",
    ] {
        let (status, body) = served
            .get(&format!("/api/v1/changes?{bad}"), OPERATOR)
            .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let (status, _) = served.get("/api/v1/changes", AUDITOR).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let (status, _) = served.get("/api/v1/changes", "nope").await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // Long polling: an answer with nothing new waits for the next event.
    let next = all["next"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let (status, empty) = served
        .get(&format!("/api/v1/changes?after={next}&wait=1"), OPERATOR)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(empty["items"].as_array().unwrap().is_empty());
    assert_eq!(empty["next"], next.as_str());
    assert!(started.elapsed() >= Duration::from_millis(900));
    let poll = {
        let http = served.http.clone();
        let url = format!("{}/api/v1/changes?after={next}&wait=25", served.base);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let v: Value = http
                .get(url)
                .bearer_auth(INTAKE)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another token's complaint changes: the intake desk does not see it.
    let other = complaint_id(&app.pool, "PLG-F-OTHER").await;
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'x' WHERE id = $1")
        .bind(other)
        .execute(&app.pool)
        .await
        .unwrap();
    let desk = complaint_id(&app.pool, "PLG-F-DESK").await;
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'y' WHERE id = $1")
        .bind(desk)
        .execute(&app.pool)
        .await
        .unwrap();
    let (v, took) = poll.await.unwrap();
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(refs(&v), ["PLG-F-DESK"], "{v}");
    assert_eq!(v["items"][0]["data"]["reason"], "y");
    served.shutdown.cancel();
    app.finish().await;
}

// ----- webhooks ---------------------------------------------------------------

/// What a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    /// Fails (500) about 30% of the calls, deterministically.
    Flaky,
    Gone,
    Redirect,
    Fail,
}

#[derive(Debug, Default)]
struct Received {
    /// Accepted deliveries: (webhook-id, local_ref, type).
    ok: Vec<(String, String, String)>,
    calls: usize,
    redirected_hits: usize,
    bad_signatures: usize,
    rng: u64,
}

#[derive(Clone)]
struct Receiver {
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Received>>,
    url: String,
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let ts: i64 = header("webhook-timestamp").parse().unwrap_or(0);
    let mode = *r.mode.lock().unwrap();
    let mut got = r.got.lock().unwrap();
    got.calls += 1;
    if !secret.verify(&id, ts, &body, &header("webhook-signature")) {
        got.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let fail = match mode {
        Mode::Ok => false,
        Mode::Flaky => {
            got.rng = got
                .rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (got.rng >> 33) % 10 < 3
        }
        Mode::Gone => return StatusCode::GONE.into_response(),
        Mode::Redirect => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", format!("{}/moved", r.url))],
            )
                .into_response();
        }
        Mode::Fail => true,
    };
    if fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], id.as_str(), "webhook-id is the event's id");
    got.ok.push((
        id,
        v["data"]["local_ref"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["type"].as_str().unwrap_or_default().to_string(),
    ));
    StatusCode::NO_CONTENT.into_response()
}

async fn moved(State(r): State<Receiver>) -> StatusCode {
    r.got.lock().unwrap().redirected_hits += 1;
    StatusCode::OK
}

async fn receiver(mode: Mode) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let r = Receiver {
        mode: Arc::new(Mutex::new(mode)),
        got: Arc::new(Mutex::new(Received {
            rng: 42,
            ..Default::default()
        })),
        url,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .route("/moved", axum::routing::post(moved).get(moved))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    r
}

async fn spawn_with_webhook(r: &Receiver, max_attempts: i32) -> (TestApp, Arc<Dispatcher>) {
    let url = format!("{}/hook", r.url);
    let app = spawn_app_with(move |s| {
        s.bridge.retry_base_ms = 100;
        s.bridge.retry_max_ms = 1_000;
        s.webhooks = vec![WebhookSettings {
            url,
            secret: SecretString::from(SECRET),
            events: None,
            from_env: false,
        }];
        s.bridge.max_attempts = max_attempts;
    })
    .await;
    // The outbox's own retries stay as the app has them.
    let dispatcher = Dispatcher::start(app.bridge.clone())
        .await
        .unwrap()
        .unwrap();
    (app, dispatcher)
}

/// Runs the dispatcher, moving the clock past each backoff, until `done`.
async fn dispatch_until(
    app: &TestApp,
    d: &Arc<Dispatcher>,
    mut done: impl FnMut() -> bool,
) -> bool {
    for _ in 0..2_000 {
        if done() {
            return true;
        }
        if d.run_once().await.unwrap() == 0 {
            app.clock.advance(chrono::Duration::milliseconds(500));
        }
    }
    done()
}

#[tokio::test]
async fn a_receiver_failing_30_percent_gets_every_event_in_order_per_complaint() {
    let r = receiver(Mode::Flaky).await;
    let (app, dispatcher) = spawn_with_webhook(&r, 100).await;
    let refs: Vec<String> = (1..=6).map(|i| format!("PLG-W-{i}")).collect();
    for local_ref in &refs {
        app.submit(local_ref).await;
    }
    app.settle(10).await;
    // Several changes per complaint, in separate transactions.
    for round in 1..=4 {
        for local_ref in &refs {
            let id = complaint_id(&app.pool, local_ref).await;
            sqlx::query("UPDATE lapor_bridge.complaints SET lapor_status_name = $2 WHERE id = $1")
                .bind(id)
                .bind(format!("Tahap {round}"))
                .execute(&app.pool)
                .await
                .unwrap();
        }
    }
    let expected = read_all(&app, Cursor::START).await;
    assert_eq!(expected.len(), refs.len() * 5);
    let got = r.got.clone();
    let all = expected.len();
    let delivered = dispatch_until(&app, &dispatcher, || {
        let g = got.lock().unwrap();
        g.ok.iter()
            .map(|(id, _, _)| id)
            .collect::<std::collections::HashSet<_>>()
            .len()
            == all
    })
    .await;
    assert!(delivered, "every event arrives");
    let (bad_signatures, calls, ok) = {
        let g = r.got.lock().unwrap();
        (g.bad_signatures, g.calls, g.ok.clone())
    };
    assert_eq!(bad_signatures, 0);
    assert!(
        calls > all,
        "the receiver failed some calls: {calls} for {all}"
    );
    // Per complaint: what was accepted is the feed's order, each once.
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in &expected {
        want.entry(i.data["local_ref"].as_str().unwrap().to_string())
            .or_default()
            .push(i.id.clone());
    }
    let mut have: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, local_ref, _) in &ok {
        have.entry(local_ref.clone()).or_default().push(id.clone());
    }
    assert_eq!(have, want);
    // One attempt row per try, the failures among them.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM lapor_bridge.webhook_attempts GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let rows: HashMap<String, i64> = rows.into_iter().collect();
    assert_eq!(rows.get("delivered"), Some(&(all as i64)));
    assert!(rows.get("retry").copied().unwrap_or(0) > 0, "{rows:?}");
    assert_eq!(
        rows.values().sum::<i64>() as usize,
        r.got.lock().unwrap().calls
    );
    app.finish().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_an_operator_enables_it() {
    let r = receiver(Mode::Gone).await;
    let (app, dispatcher) = spawn_with_webhook(&r, 5).await;
    linked(&app, "PLG-W-GONE").await;
    read_all(&app, Cursor::START).await;
    dispatcher.run_once().await.unwrap();
    assert_eq!(r.got.lock().unwrap().calls, 1);
    let (disabled, reason): (bool, Option<String>) = sqlx::query_as(
        "SELECT disabled_at IS NOT NULL, disabled_reason FROM lapor_bridge.webhook_endpoints",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(disabled);
    assert!(reason.unwrap().contains("410"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.audit_log WHERE action = 'webhook.endpoint_disabled'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // Nothing more is sent, and the delivery is not used up.
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::seconds(5));
        dispatcher.run_once().await.unwrap();
    }
    assert_eq!(r.got.lock().unwrap().calls, 1);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM lapor_bridge.webhook_deliveries")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);

    // The operator fixes the receiver and enables the endpoint.
    *r.mode.lock().unwrap() = Mode::Ok;
    let served = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let (_, list) = served.get("/api/v1/webhooks", OPERATOR).await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    assert!(list["items"][0]["disabled_at"].is_string());
    assert!(!list.to_string().contains("whsec_"));
    let (status, body) = served
        .post(
            &format!("/api/v1/webhooks/{id}/enable"),
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let (status, _) = served
        .post(
            &format!("/api/v1/webhooks/{id}/enable"),
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
    let got = r.got.clone();
    assert!(dispatch_until(&app, &dispatcher, || !got.lock().unwrap().ok.is_empty()).await);
    assert_eq!(r.got.lock().unwrap().ok[0].2, "complaint.linked");
    served.shutdown.cancel();
    app.finish().await;
}

#[tokio::test]
async fn redirects_are_not_followed_and_dead_letters_wait_for_an_operator() {
    let r = receiver(Mode::Redirect).await;
    let (app, dispatcher) = spawn_with_webhook(&r, 2).await;
    linked(&app, "PLG-W-R").await;
    let id = complaint_id(&app.pool, "PLG-W-R").await;
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'later' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(read_all(&app, Cursor::START).await.len(), 2);
    for _ in 0..10 {
        dispatcher.run_once().await.unwrap();
        app.clock.advance(chrono::Duration::seconds(5));
    }
    {
        let g = r.got.lock().unwrap();
        assert_eq!(g.redirected_hits, 0, "the redirect is not followed");
        assert_eq!(
            g.calls, 2,
            "two attempts of the first event, none of the second"
        );
    }
    let attempts: Vec<(Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT http_status, message FROM lapor_bridge.webhook_attempts ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].0, Some(307));
    assert!(attempts[0].1.as_deref().unwrap().contains("redirect"));

    // Dead: listed, retried by an operator (audited), then delivered in order.
    let served = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let (_, dead) = served
        .get("/api/v1/webhooks/deliveries?state=dead", OPERATOR)
        .await;
    assert_eq!(dead["total"], 1, "{dead}");
    assert_eq!(dead["items"][0]["event_type"], "complaint.linked");
    assert_eq!(dead["items"][0]["local_ref"], "PLG-W-R");
    // The dashboard's dead letters show it with Retry and Discard.
    let cookie = served.session(OPERATOR).await;
    let (_, page, _) = served.page("/outbox/dead", &cookie).await;
    assert!(page.contains("id=\"webhook-dead\""), "{page}");
    assert!(page.contains("data-webhook-retry="));
    assert!(page.contains("data-webhook-discard="));
    assert!(!page.contains(SECRET));
    let delivery = dead["items"][0]["id"].as_i64().unwrap();
    *r.mode.lock().unwrap() = Mode::Ok;
    let (status, body) = served
        .post(
            &format!("/api/v1/webhooks/deliveries/{delivery}/retry"),
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending");
    let got = r.got.clone();
    assert!(dispatch_until(&app, &dispatcher, || got.lock().unwrap().ok.len() == 2).await);
    let kinds: Vec<String> = r
        .got
        .lock()
        .unwrap()
        .ok
        .iter()
        .map(|o| o.2.clone())
        .collect();
    assert_eq!(kinds, ["complaint.linked", "complaint.conflict"]);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.audit_log WHERE action = 'operator.webhook_retry'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // A discard lets the complaint's next event go ahead.
    *r.mode.lock().unwrap() = Mode::Fail;
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'third' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'fourth' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(read_all(&app, Cursor::START).await.len(), 4);
    for _ in 0..6 {
        dispatcher.run_once().await.unwrap();
        app.clock.advance(chrono::Duration::seconds(5));
    }
    let (_, dead) = served
        .get("/api/v1/webhooks/deliveries?state=dead", OPERATOR)
        .await;
    assert_eq!(dead["total"], 1, "{dead}");
    let delivery = dead["items"][0]["id"].as_i64().unwrap();
    let (status, _) = served
        .post(
            &format!("/api/v1/webhooks/deliveries/{delivery}/discard"),
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    *r.mode.lock().unwrap() = Mode::Ok;
    assert!(dispatch_until(&app, &dispatcher, || got.lock().unwrap().ok.len() == 3).await);
    let last = r.got.lock().unwrap().ok[2].clone();
    assert_eq!(last.2, "complaint.conflict");
    served.shutdown.cancel();
    app.finish().await;
}

#[tokio::test]
async fn sla_events_are_written_once_per_deadline() {
    let app = spawn_app().await;
    linked(&app, "PLG-F-SLA").await;
    let id = complaint_id(&app.pool, "PLG-F-SLA").await;
    // Dispositioned to us twenty days ago, never answered: the follow-up
    // deadline has passed.
    let now = app.clock.now();
    sqlx::query("UPDATE lapor_bridge.complaints SET dispositioned_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now - chrono::Duration::days(20))
        .execute(&app.pool)
        .await
        .unwrap();
    let start = head(&app).await;
    assert_eq!(feed::check_sla(&app.bridge).await.unwrap(), 1);
    assert_eq!(feed::check_sla(&app.bridge).await.unwrap(), 0, "once");
    let items = read_all(&app, start).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, "sla.overdue");
    assert_eq!(items[0].data["deadline"], "follow_up");
    assert_eq!(items[0].data["local_ref"], "PLG-F-SLA");
    // The completion deadline, 60 days after creation: due soon the day
    // before, overdue after.
    let due = app.status("PLG-F-SLA").await.sla.completion_due_at.unwrap();
    app.clock.set(due - chrono::Duration::hours(1));
    assert_eq!(feed::check_sla(&app.bridge).await.unwrap(), 1);
    let items = read_all(&app, start).await;
    assert_eq!(items[1].kind, "sla.due_soon");
    assert_eq!(items[1].data["deadline"], "completion");
    app.clock.set(due + chrono::Duration::seconds(1));
    assert_eq!(feed::check_sla(&app.bridge).await.unwrap(), 1);
    assert_eq!(feed::check_sla(&app.bridge).await.unwrap(), 0);
    let items = read_all(&app, start).await;
    assert_eq!(items[2].kind, "sla.overdue");
    assert_eq!(items[2].data["deadline"], "completion");
    app.finish().await;
}

#[tokio::test]
async fn the_runtime_role_appends_events_but_never_rewrites_them() {
    let app = spawn_app().await;
    linked(&app, "PLG-F-ROLE").await;
    let name = format!("lb_feed_{:016x}", rand::random::<u64>());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {name} LOGIN IN ROLE lapor_bridge_runtime"
    )))
    .execute(&app.pool)
    .await
    .unwrap();
    let rest = app.db.url.split_once("://").unwrap().1;
    let host_and_db = rest.split_once('@').map_or(rest, |(_, r)| r);
    let mut settings = lapor_bridge::config::Settings::default();
    settings.database.url = SecretString::from(format!("postgres://{name}@{host_and_db}"));
    let runtime = lapor_bridge::db::connect(&settings.database).await.unwrap();
    // A change made as the runtime role writes its event.
    let id = complaint_id(&runtime, "PLG-F-ROLE").await;
    sqlx::query("UPDATE lapor_bridge.complaints SET conflict_reason = 'as runtime' WHERE id = $1")
        .bind(id)
        .execute(&runtime)
        .await
        .unwrap();
    read_all(&app, Cursor::START).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.changes")
        .fetch_one(&runtime)
        .await
        .unwrap();
    assert_eq!(n, 2);
    for sql in [
        "UPDATE lapor_bridge.events SET data = '{}'",
        "DELETE FROM lapor_bridge.events",
        "TRUNCATE lapor_bridge.events",
    ] {
        let err = sqlx::query(sql).execute(&runtime).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    runtime.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {name}")))
        .execute(&app.pool)
        .await
        .unwrap();
    app.finish().await;
}

#[tokio::test]
async fn the_daemon_delivers_webhooks_from_the_environment_settings() {
    let r = receiver(Mode::Ok).await;
    let db = TestDb::create().await;
    let sim = lapor_bridge::simulator::spawn(lapor_bridge::simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let mut settings = test_settings(&db.url, &sim.base_url());
    let url = format!("{}/hook", r.url);
    let env: HashMap<&str, &str> = HashMap::from([
        ("BRIDGE_WEBHOOK_URL", url.as_str()),
        ("BRIDGE_WEBHOOK_SECRET", SECRET),
    ]);
    settings.apply_env(&env).unwrap();
    settings.validate().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let daemon = lapor_bridge::app::Daemon::start(
        settings,
        Arc::new(lapor_bridge::clock::SystemClock),
        shutdown.clone(),
        false,
    )
    .await
    .unwrap();
    lapor_bridge::actions::submit(&daemon.bridge, &complaint_doc("PLG-W-D"), "test")
        .await
        .unwrap();
    let got = r.got.clone();
    let arrived = eventually(Duration::from_secs(30), || {
        let got = got.clone();
        async move { !got.lock().unwrap().ok.is_empty() }
    })
    .await;
    assert!(arrived, "the daemon sent the event");
    let first = r.got.lock().unwrap().ok[0].clone();
    assert_eq!(
        (first.1.as_str(), first.2.as_str()),
        ("PLG-W-D", "complaint.linked")
    );
    shutdown.cancel();
    daemon.wait().await;
    sim.shutdown();
    db.drop_db().await;
}
