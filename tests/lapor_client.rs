//! Integration tests of the LAPOR! client against the built-in simulator:
//! every endpoint's happy path and the exact classification of every failure
//! the simulator can inject.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use lapor_bridge::{
    lapor::{
        AuthHeader, FailureKind, FileToUpload, LaporClient, LaporError, LaporSettings, Status,
        StatusName, client, types::*,
    },
    metrics::Metrics,
    simulator::{self, RunningSimulator, SimulatorConfig},
};
use serde_json::{Value, json};

const API_TOKEN: &str = "api-token";
const INSTANSI_TOKEN: &str = "instansi-token";

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

// ----- helpers -------------------------------------------------------------

async fn spawn_sim(config: SimulatorConfig) -> RunningSimulator {
    simulator::spawn(config)
        .await
        .expect("the simulator starts")
}

fn build_client(
    sim: &RunningSimulator,
    timeout: Duration,
    api_token: &str,
    instansi_token: &str,
    auth_header: AuthHeader,
) -> LaporClient {
    let s = LaporSettings {
        base_url: sim.base_url(),
        api_token: api_token.to_string().into(),
        instansi_token: instansi_token.to_string().into(),
        auth_header,
        ..LaporSettings::default()
    };
    LaporClient::new(&s, timeout, 0, Arc::new(Metrics::default())).expect("the client builds")
}

fn default_client(sim: &RunningSimulator) -> LaporClient {
    build_client(
        sim,
        Duration::from_millis(2000),
        API_TOKEN,
        INSTANSI_TOKEN,
        AuthHeader::AuthorizationBearer,
    )
}

fn http() -> reqwest::Client {
    client::install_crypto_provider();
    reqwest::Client::new()
}

/// POST `{root}/_sim{path}` with a JSON body; the answer must be a success.
async fn sim_post(sim: &RunningSimulator, path: &str, body: Value) -> Value {
    let response = http()
        .post(format!("{}/_sim{path}", sim.root_url()))
        .json(&body)
        .send()
        .await
        .expect("the control surface answers");
    let status = response.status();
    let doc: Value = response.json().await.expect("a JSON answer from /_sim");
    assert!(
        status.is_success(),
        "POST /_sim{path} {body}: {status} {doc}"
    );
    doc
}

async fn set_faults(sim: &RunningSimulator, faults: Value) {
    sim_post(sim, "/faults", faults).await;
}

/// GET `{root}/_sim{path}`, a JSON answer.
async fn sim_get(sim: &RunningSimulator, path: &str) -> Value {
    http()
        .get(format!("{}/_sim{path}", sim.root_url()))
        .send()
        .await
        .expect("the control surface answers")
        .json()
        .await
        .expect("a JSON answer from /_sim")
}

/// Every complaint the simulator holds (`GET /_sim/complaints`).
async fn sim_complaints(sim: &RunningSimulator) -> Vec<Value> {
    let doc = sim_get(sim, "/complaints").await;
    doc["data"]
        .as_array()
        .expect("/_sim/complaints has a data list")
        .clone()
}

/// A citizen's complaint, verified and dispositioned to 101 (status 2).
async fn citizen_complaint(sim: &RunningSimulator) -> i64 {
    let doc = sim_post(
        sim,
        "/complaints",
        json!({
            "title": "Jalan berlubang",
            "content": "Jalan di depan pasar berlubang besar sejak sebulan.",
            "disposition_id": 101,
            "category_id": 1,
        }),
    )
    .await;
    doc["complaint_id"]
        .as_i64()
        .expect("/_sim/complaints answers a complaint_id")
}

fn new_complaint(local_ref: &str, attachment_ids: Vec<i64>) -> NewComplaint {
    NewComplaint {
        title: "Lampu jalan mati".into(),
        content: "Lampu jalan di Jalan Sudirman mati sejak tiga hari.".into(),
        category_id: 1,
        disposition_id: 101,
        location_id: None,
        date_of_incident: Utc::now().date_naive(),
        is_anonymous: false,
        is_secret: false,
        tags_raw: format!("ref:{local_ref}"),
        attachment_ids,
    }
}

// ----- 1. happy path -------------------------------------------------------

#[tokio::test]
async fn every_endpoint_works_on_the_happy_path() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let before = Utc::now();

    // institutions
    let institutions = client.institutions().await.expect("institutions");
    assert!(
        institutions.iter().any(|i| i.id == 101),
        "101 is listed: {institutions:?}"
    );

    // upload
    let uploaded = client
        .upload(&[FileToUpload {
            file_name: "foto.png".into(),
            content: PNG.to_vec(),
        }])
        .await
        .expect("upload");
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    assert_eq!(uploaded[0].file_name, "foto.png");
    let upload_id = uploaded[0].id;
    assert!(upload_id > 0);

    // create
    let created: Created = client
        .create(&new_complaint("PLG-1", vec![upload_id]))
        .await
        .expect("create");
    assert!(created.complaint_id > 0);
    assert!(!created.tracking_id.is_empty());
    let id = created.complaint_id;
    let stored = sim_complaints(&sim).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["attachments"], json!([upload_id]));

    // detail
    let detail = client.complaint(id).await.expect("detail");
    assert_eq!(detail.id, id);
    assert_eq!(detail.tracking_id, created.tracking_id);
    assert_eq!(detail.status, StatusName::Known(Status::Unverified));
    assert_eq!(detail.status_name, "Belum Terverifikasi");
    assert!(
        carries_ref(&detail.tags_raw, "PLG-1"),
        "{}",
        detail.tags_raw
    );
    assert!(!carries_ref(&detail.tags_raw, "PLG-2"));
    assert_eq!(detail.disposition_id, Some(101));
    // WIB parsed to UTC: within the test's own run (to the second).
    let skew = (detail.created_at - before).num_seconds();
    assert!(
        (-2..=60).contains(&skew),
        "created_at {} vs test start {before}",
        detail.created_at
    );

    // list
    let page = client
        .list(
            Scope::Created,
            Utc::now() - chrono::Duration::hours(1),
            1,
            100,
        )
        .await
        .expect("list");
    let summary = page
        .items
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("the created complaint is listed: {page:?}"));
    assert!(carries_ref(&summary.tags_raw, "PLG-1"));
    assert_eq!(summary.status, StatusName::Known(Status::Unverified));
    assert_eq!(page.page, 1);
    assert_eq!(page.total, 1);

    // follow-up before verification: 409
    let followup = NewFollowup {
        complaint_id: id,
        institution_from_id: 101,
        institution_to_id: 101,
        content: "Petugas sudah dijadwalkan memperbaiki lampu.".into(),
        is_secret: false,
    };
    let err = client
        .add_followup(&followup)
        .await
        .expect_err("a follow-up before verification is refused");
    assert!(
        matches!(
            err,
            LaporError::Permanent {
                status: 409,
                kind: FailureKind::Conflict,
                ..
            }
        ),
        "{err:?}"
    );

    // upstream verification, then the follow-up goes through
    sim_post(
        &sim,
        &format!("/complaints/{id}/status"),
        json!({"status_name": "Terverifikasi"}),
    )
    .await;
    let followup_id = client.add_followup(&followup).await.expect("follow-up");
    assert!(followup_id > 0);
    let detail = client.complaint(id).await.expect("detail after follow-up");
    assert_eq!(detail.status, StatusName::Known(Status::InProcess));

    // followups
    let followups = client.followups(id).await.expect("followups");
    assert_eq!(followups.len(), 1, "{followups:?}");
    assert_eq!(followups[0].id, followup_id);
    assert_eq!(followups[0].institution_id, Some(101));
    assert_eq!(followups[0].content, followup.content);
    let skew = (followups[0].created_at - before).num_seconds();
    assert!((-2..=60).contains(&skew), "{:?}", followups[0].created_at);

    // forward
    client
        .forward(&Forward {
            complaint_id: id,
            target_institution_id: 102,
            reason: "Bukan kewenangan kota".into(),
        })
        .await
        .expect("forward");
    let detail = client.complaint(id).await.expect("detail after forward");
    assert_eq!(detail.disposition_id, Some(102));
    assert_eq!(detail.status, StatusName::Known(Status::Verified));

    sim.shutdown();
}

// ----- 2. wrong tokens -----------------------------------------------------

#[tokio::test]
async fn wrong_tokens_are_unauthorized_and_never_shown() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let wrong_api = "wrong-token-abc123";
    let wrong_instansi = "wrong-instansi-xyz789";
    let clients = [
        build_client(
            &sim,
            Duration::from_millis(2000),
            wrong_api,
            INSTANSI_TOKEN,
            AuthHeader::AuthorizationBearer,
        ),
        build_client(
            &sim,
            Duration::from_millis(2000),
            API_TOKEN,
            wrong_instansi,
            AuthHeader::AuthorizationBearer,
        ),
        build_client(
            &sim,
            Duration::from_millis(2000),
            wrong_api,
            wrong_instansi,
            AuthHeader::AuthorizationBearer,
        ),
    ];
    for client in &clients {
        let shown = format!("{client:?}");
        assert!(!shown.contains(wrong_api) && !shown.contains(wrong_instansi));
        let errors = [
            client.institutions().await.expect_err("a read is refused"),
            client
                .create(&new_complaint("PLG-1", vec![]))
                .await
                .expect_err("a write is refused"),
        ];
        for err in errors {
            assert!(
                matches!(err, LaporError::Unauthorized { status: 401, .. }),
                "{err:?}"
            );
            assert_eq!(err.kind(), FailureKind::Unauthorized);
            for text in [format!("{err:?}"), err.to_string(), err.message()] {
                assert!(!text.contains(wrong_api), "api token shown: {text}");
                assert!(
                    !text.contains(wrong_instansi),
                    "instansi token shown: {text}"
                );
            }
        }
    }
    assert!(sim_complaints(&sim).await.is_empty());
    sim.shutdown();
}

// ----- 3. the `auth` header ------------------------------------------------

#[tokio::test]
async fn auth_header_mode_works_and_bearer_is_refused_there() {
    let sim = spawn_sim(SimulatorConfig {
        auth_header: AuthHeader::Auth,
        ..SimulatorConfig::default()
    })
    .await;
    let auth_client = build_client(
        &sim,
        Duration::from_millis(2000),
        API_TOKEN,
        INSTANSI_TOKEN,
        AuthHeader::Auth,
    );
    let institutions = auth_client.institutions().await.expect("auth header works");
    assert!(institutions.iter().any(|i| i.id == 101));
    let created = auth_client
        .create(&new_complaint("PLG-AUTH", vec![]))
        .await
        .expect("create with the auth header");
    assert!(created.complaint_id > 0);

    let bearer_client = default_client(&sim);
    let err = bearer_client
        .institutions()
        .await
        .expect_err("Bearer is refused by an `auth` simulator");
    assert!(
        matches!(err, LaporError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    sim.shutdown();
}

// ----- 4. faults -----------------------------------------------------------

#[tokio::test]
async fn server_errors_are_retryable() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    set_faults(&sim, json!({"error_rate": 1.0})).await;

    let err = client.institutions().await.expect_err("503 on a read");
    assert!(
        matches!(
            err,
            LaporError::Retryable {
                kind: FailureKind::ServerError,
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .create(&new_complaint("PLG-503", vec![]))
        .await
        .expect_err("503 on a create");
    assert!(
        matches!(
            err,
            LaporError::Retryable {
                kind: FailureKind::ServerError,
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    set_faults(&sim, json!({})).await;
    assert!(
        sim_complaints(&sim).await.is_empty(),
        "a 503 is not applied"
    );
    sim.shutdown();
}

#[tokio::test]
async fn html_error_pages_are_retryable_html_errors() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    set_faults(&sim, json!({"html_error_rate": 1.0})).await;

    let err = client.institutions().await.expect_err("502 HTML on a read");
    assert!(
        matches!(
            err,
            LaporError::Retryable {
                kind: FailureKind::HtmlError,
                status: Some(502),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .create(&new_complaint("PLG-502", vec![]))
        .await
        .expect_err("502 HTML on a create");
    // The gateway may have let the write through: its outcome is unknown.
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::HtmlError,
                status: Some(502),
                ..
            }
        ),
        "{err:?}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn rate_limits_are_retryable_with_retry_after() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    set_faults(&sim, json!({"rate_limit_per_sec": 1})).await;

    let mut limited = Vec::new();
    for _ in 0..5 {
        match client.institutions().await {
            Ok(_) => {}
            Err(err) => limited.push(err),
        }
    }
    assert!(!limited.is_empty(), "at least one call is rate limited");
    for err in &limited {
        assert!(
            matches!(
                err,
                LaporError::Retryable {
                    kind: FailureKind::RateLimited,
                    status: Some(429),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)), "{err:?}");
    }
    sim.shutdown();
}

#[tokio::test]
async fn timeouts_are_unknown_on_writes_retryable_on_reads_and_not_applied() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = build_client(
        &sim,
        Duration::from_millis(500),
        API_TOKEN,
        INSTANSI_TOKEN,
        AuthHeader::AuthorizationBearer,
    );
    set_faults(&sim, json!({"timeout_rate": 1.0, "timeout_hold_ms": 5000})).await;

    let err = client
        .create(&new_complaint("PLG-TIMEOUT", vec![]))
        .await
        .expect_err("a held create times out");
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::Timeout,
                status: None,
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .institutions()
        .await
        .expect_err("a held read times out");
    assert!(
        matches!(
            err,
            LaporError::Retryable {
                kind: FailureKind::Timeout,
                status: None,
                ..
            }
        ),
        "{err:?}"
    );

    set_faults(&sim, json!({})).await;
    assert!(
        sim_complaints(&sim).await.is_empty(),
        "the timed-out create was not applied"
    );
    sim.shutdown();
}

#[tokio::test]
async fn a_connection_dropped_after_commit_is_an_unknown_outcome_that_was_applied() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    set_faults(&sim, json!({"drop_after_commit_rate": 1.0})).await;

    let err = client
        .create(&new_complaint("PLG-DROP", vec![]))
        .await
        .expect_err("no answer to the create");
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::ConnectionLost,
                status: None,
                ..
            }
        ),
        "{err:?}"
    );

    set_faults(&sim, json!({})).await;
    let stored = sim_complaints(&sim).await;
    assert_eq!(stored.len(), 1, "created exactly once: {stored:?}");
    assert!(carries_ref(
        stored[0]["tags_raw"].as_str().unwrap_or_default(),
        "PLG-DROP"
    ));
    sim.shutdown();
}

#[tokio::test]
async fn malformed_bodies_are_retryable_on_reads_and_unknown_on_writes() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let id = citizen_complaint(&sim).await;
    set_faults(&sim, json!({"malformed_rate": 1.0})).await;

    let err = client
        .complaint(id)
        .await
        .expect_err("a truncated detail body");
    assert!(
        matches!(
            err,
            LaporError::Retryable {
                kind: FailureKind::Malformed,
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .create(&new_complaint("PLG-MALFORMED", vec![]))
        .await
        .expect_err("a truncated create answer");
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::Malformed,
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn validation_errors_are_permanent_with_field_errors() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let mut bad = new_complaint("PLG-422", vec![]);
    bad.title = String::new();
    bad.content = "short".into();

    let err = client
        .create(&bad)
        .await
        .expect_err("an invalid create is refused");
    match &err {
        LaporError::Permanent {
            kind: FailureKind::Validation,
            status: 422,
            field_errors,
            ..
        } => {
            assert!(field_errors.contains_key("title"), "{field_errors:?}");
            assert!(field_errors.contains_key("content"), "{field_errors:?}");
        }
        other => panic!("expected a 422 validation error, got {other:?}"),
    }
    let message = err.message();
    assert!(message.contains("title"), "{message}");
    assert!(message.contains("content"), "{message}");
    assert!(sim_complaints(&sim).await.is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn an_unknown_complaint_is_permanent_not_found() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let err = client
        .complaint(999_999)
        .await
        .expect_err("no such complaint");
    assert!(
        matches!(
            err,
            LaporError::Permanent {
                kind: FailureKind::NotFound,
                status: 404,
                ..
            }
        ),
        "{err:?}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn an_unknown_status_name_is_kept_raw() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let id = citizen_complaint(&sim).await;
    sim_post(
        &sim,
        &format!("/complaints/{id}/status"),
        json!({"status_name": "Menunggu Tanggapan", "force": true}),
    )
    .await;

    let detail = client.complaint(id).await.expect("detail");
    assert_eq!(
        detail.status,
        StatusName::Unknown("Menunggu Tanggapan".into())
    );
    assert_eq!(detail.status_name, "Menunggu Tanggapan");

    let page = client
        .list(
            Scope::Inbox,
            Utc::now() - chrono::Duration::hours(1),
            1,
            100,
        )
        .await
        .expect("list");
    let summary = page
        .items
        .iter()
        .find(|s| s.id == id)
        .expect("listed in the inbox");
    assert_eq!(
        summary.status,
        StatusName::Unknown("Menunggu Tanggapan".into())
    );
    sim.shutdown();
}

// ----- 5. log templates ----------------------------------------------------

#[tokio::test]
async fn log_templates_are_filled() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let id = citizen_complaint(&sim).await;

    let detail = client.complaint(id).await.expect("detail");
    assert_eq!(detail.status, StatusName::Known(Status::Verified));
    assert!(
        !detail.logs.is_empty(),
        "a dispositioned complaint has logs"
    );
    for log in &detail.logs {
        assert!(!log.content.contains("{{"), "unfilled: {:?}", log.content);
        assert!(!log.content.contains("}}"), "unfilled: {:?}", log.content);
    }
    let disposition = detail
        .logs
        .iter()
        .find(|l| l.institution_to.as_ref().map(|i| i.id) == Some(101))
        .expect("a disposition log entry to 101");
    assert!(
        disposition.content.contains("Pemerintah Kota Palembang"),
        "{:?}",
        disposition.content
    );
    sim.shutdown();
}

/// A complaint updated between two pages of a listing moves to the end of
/// LAPOR!'s order and shifts the rest: read naively, page 2 would skip one
/// complaint and repeat the moved one. `list_all` sees the repeat and reads
/// the listing again, so the answer holds every complaint exactly once.
#[tokio::test]
async fn a_listing_that_moves_between_pages_is_read_again() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let seeded = sim_post(&sim, "/seed", json!({"count": 150, "ref_prefix": "MV-"})).await;
    let first = seeded["first_id"].as_i64().expect("first_id");
    // The move must land in a later second than the seed (LAPOR! orders by
    // whole seconds, then id): wait for the clock's next second.
    let seeded_second = Utc::now().timestamp();
    while Utc::now().timestamp() == seeded_second {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Each page is held 300 ms before it is read: page 2 is on the wire
    // (in flight, page 1 answered) long enough to move a page-1 complaint.
    set_faults(&sim, json!({"latency_ms": [300, 300]})).await;
    let since = Utc::now() - chrono::Duration::hours(1);
    let listing = tokio::spawn({
        let client = client.clone();
        async move { client.list_all(Scope::Created, since).await }
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = sim_get(&sim, "/stats").await;
        if stats["requests"]["list"]["200"] == 1 && stats["in_flight"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "page 2 never left");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim_post(
        &sim,
        &format!("/complaints/{first}/status"),
        json!({"status_name": "Terverifikasi"}),
    )
    .await;
    let listed = listing.await.expect("task").expect("a complete listing");
    let mut ids: Vec<i64> = listed.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    let expected: Vec<i64> = (first..first + 150).collect();
    assert_eq!(ids, expected, "every complaint exactly once");
    // Two passes of two pages: the moving one, then a stable one.
    assert_eq!(sim_get(&sim, "/stats").await["requests"]["list"]["200"], 4);
    sim.shutdown();
}

// ----- gateways that give up, and 403 on one complaint -----------------------

/// nginx answers a 504 page while the backend commits the write later: an
/// unknown outcome for a write, exactly like a JSON 500/502/504; a read with
/// the same answer is simply retryable.
#[tokio::test]
async fn a_gateway_504_on_a_write_is_an_unknown_outcome_and_the_write_lands_later() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    set_faults(
        &sim,
        json!({"slow_commit_rate": 1.0, "slow_commit_ms": 200}),
    )
    .await;
    let err = client
        .create(&new_complaint("PLG-504", vec![]))
        .await
        .expect_err("504 from the gateway");
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::HtmlError,
                status: Some(504),
                ..
            }
        ),
        "{err:?}"
    );
    set_faults(&sim, json!({"error_rate": 1.0, "error_status": 504})).await;
    let err = client
        .create(&new_complaint("PLG-504J", vec![]))
        .await
        .expect_err("JSON 504");
    assert!(
        matches!(
            err,
            LaporError::UnknownOutcome {
                kind: FailureKind::ServerError,
                status: Some(504),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client.institutions().await.expect_err("504 on a read");
    assert!(matches!(err, LaporError::Retryable { .. }), "{err:?}");
    set_faults(&sim, json!({})).await;
    let mut landed = false;
    for _ in 0..100 {
        let all = http()
            .get(format!("{}/_sim/complaints", sim.root_url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if all["data"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["tags_raw"] == "ref:PLG-504"))
        {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(landed, "the slow commit was applied after its 504");
    sim.shutdown();
}

/// A 403 on a write concerns that complaint only; a 403 on the token probe
/// means the tokens.
#[tokio::test]
async fn a_403_on_a_complaint_is_forbidden_and_on_the_probe_unauthorized() {
    let sim = spawn_sim(SimulatorConfig::default()).await;
    let client = default_client(&sim);
    let created = client
        .create(&new_complaint("PLG-403", vec![]))
        .await
        .unwrap();
    sim_post(
        &sim,
        &format!("/complaints/{}/status", created.complaint_id),
        json!({"status_name": "Terverifikasi"}),
    )
    .await;
    set_faults(
        &sim,
        json!({"forbidden_complaints": [created.complaint_id]}),
    )
    .await;
    let err = client
        .add_followup(&NewFollowup {
            complaint_id: created.complaint_id,
            institution_from_id: 101,
            institution_to_id: 101,
            content: "Sudah ditangani.".into(),
            is_secret: false,
        })
        .await
        .expect_err("403");
    assert!(
        matches!(
            err,
            LaporError::Permanent {
                status: 403,
                kind: FailureKind::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    set_faults(&sim, json!({"error_rate": 1.0, "error_status": 403})).await;
    let err = client.institutions().await.expect_err("403 on the probe");
    assert!(
        matches!(err, LaporError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    sim.shutdown();
}

#[test]
fn retry_after_is_read_as_seconds_or_an_http_date() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let parse = |v| client::parse_retry_after(v, now);
    assert_eq!(parse("7"), Some(Duration::from_secs(7)));
    assert_eq!(
        parse("Fri, 04 Dec 2026 10:00:30 GMT"),
        Some(Duration::from_secs(30))
    );
    assert_eq!(parse("Fri, 04 Dec 2026 09:00:00 GMT"), Some(Duration::ZERO));
    assert_eq!(parse("99999"), Some(Duration::from_secs(3600)));
    assert_eq!(parse("soon"), None);
}

// ----- writes before reads under the rate budget ----------------------------

/// Thirty reads are queued when ten writes arrive: the writes take the next
/// slots (not the thirty behind the reads), and the reads still get one slot
/// in five while writes wait.
#[tokio::test(start_paused = true)]
async fn writes_take_the_next_slots_and_reads_keep_a_fifth() {
    use client::{Priority, RateLimiter};
    let limiter = RateLimiter::per_second(10).unwrap();
    let log: Arc<std::sync::Mutex<Vec<(Priority, tokio::time::Instant)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let spawn = |tasks: &mut tokio::task::JoinSet<()>, p: Priority| {
        let limiter = limiter.clone();
        let log = log.clone();
        tasks.spawn(async move {
            limiter.acquire(p).await;
            log.lock().unwrap().push((p, tokio::time::Instant::now()));
        });
    };
    for _ in 0..30 {
        spawn(&mut tasks, Priority::Read);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let writes_arrive = tokio::time::Instant::now();
    for _ in 0..10 {
        spawn(&mut tasks, Priority::Write);
    }
    while tasks.join_next().await.is_some() {}
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 40);
    let last_write = log
        .iter()
        .filter(|(p, _)| *p == Priority::Write)
        .map(|(_, at)| *at)
        .max()
        .unwrap();
    // Ten writes and at most three reads kept for fairness: 13 slots of 100 ms.
    assert!(
        last_write - writes_arrive <= Duration::from_millis(1_400),
        "the last write waited {:?}",
        last_write - writes_arrive
    );
    let reads_meanwhile = log
        .iter()
        .filter(|(p, at)| *p == Priority::Read && *at > writes_arrive && *at <= last_write)
        .count();
    assert!(
        reads_meanwhile >= 2,
        "reads kept a fifth: {reads_meanwhile}"
    );
    // Never more than the budget: 40 slots at 10 a second.
    let first = log.iter().map(|(_, at)| *at).min().unwrap();
    let last = log.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        last - first >= Duration::from_millis(3_900),
        "{:?}",
        last - first
    );
}
