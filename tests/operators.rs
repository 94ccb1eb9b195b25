//! What operators and sysadmins meet every day: states that tell the truth,
//! runs that say how they went.

mod common;

use chrono::Duration;
use common::*;
use lapor_bridge::inbound::Jobs;
use serde_json::{Value, json};

async fn pull(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone()).pull("test").await.unwrap()
}

async fn outcomes(app: &TestApp, local_ref: &str, step: &str) -> Vec<String> {
    app.attempts(local_ref)
        .await
        .into_iter()
        .filter(|a| a.0 == step)
        .map(|a| a.1)
        .collect()
}

/// A follow-up that met one 503 and then waits for LAPOR!'s verification
/// is `pending` with its waiting reason, not `retrying`; the wait writes one
/// timeline row when it starts and one when it ends, however many polls.
#[tokio::test]
async fn a_followup_waiting_for_verification_after_a_503_is_pending_with_its_reason() {
    let app = spawn_app().await;
    app.submit("PLG-WV").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-WV").await.lapor_complaint_id.unwrap();
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-WV", "Sedang ditangani.", false, "t")
        .await
        .unwrap();
    // One early 503: the last attempt failed, so it is retrying.
    app.faults(json!({"error_rate": 1.0})).await;
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    app.faults(json!({})).await;
    let doc = app.status("PLG-WV").await;
    assert_eq!(doc.sync_state, "retrying");
    assert!(doc.last_error.is_some());
    assert!(doc.waiting_reason.is_none());
    // Then it waits for verification: pending, with the reason, no error.
    app.advance_to_next_due().await;
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    let doc = app.status("PLG-WV").await;
    assert_eq!(doc.sync_state, "pending", "{doc:?}");
    assert!(doc.last_error.is_none(), "{doc:?}");
    let reason = doc.waiting_reason.clone().unwrap_or_default();
    assert!(reason.contains("verify"), "{reason}");
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["waiting_reason"], json!(reason));
    // A day of polls writes no further row.
    for _ in 0..6 {
        app.clock.advance(Duration::seconds(301));
        app.engine.drain_all().await.unwrap();
    }
    assert_eq!(app.status("PLG-WV").await.sync_state, "pending");
    assert_eq!(
        outcomes(&app, "PLG-WV", "followup").await,
        ["retry", "waiting"],
        "one row when the wait starts"
    );
    // A status check that fails (a 503) is no verification: the wait is
    // not "over", the failure is what the timeline shows.
    app.faults(json!({"error_rate": 1.0})).await;
    app.clock.advance(Duration::seconds(301));
    app.engine.drain_all().await.unwrap();
    app.faults(json!({})).await;
    let seen = outcomes(&app, "PLG-WV", "followup").await;
    assert_eq!(seen, ["retry", "waiting", "retry"], "{seen:?}");
    app.verify_upstream(lapor_id).await;
    app.clock.advance(Duration::seconds(301));
    app.settle(5).await;
    let doc = app.status("PLG-WV").await;
    assert_eq!(doc.sync_state, "synced");
    assert!(doc.waiting_reason.is_none());
    let seen = outcomes(&app, "PLG-WV", "followup").await;
    assert_eq!(
        seen.iter().filter(|o| *o == "wait_over").count(),
        seen.ends_with(&["wait_over".to_string(), "delivered".to_string()]) as usize,
        "one row when it ends, only when LAPOR! verified: {seen:?}"
    );
    assert!(seen.ends_with(&["delivered".to_string()]), "{seen:?}");
    app.finish().await;
}

/// LAPOR! asking us to wait (429 with Retry-After) is a wait, not a failure.
#[tokio::test]
async fn a_retry_after_is_pending_with_its_reason() {
    let app = spawn_app().await;
    app.submit("PLG-RA").await;
    app.faults(json!({"rate_limit_per_sec": 0.001})).await;
    // Someone else takes the one request the bucket holds.
    let _ = app
        .http
        .get(format!("{}/complaints", app.sim.base_url()))
        .send()
        .await;
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    app.faults(json!({})).await;
    let doc = app.status("PLG-RA").await;
    assert_eq!(doc.sync_state, "pending", "{doc:?}");
    let reason = doc.waiting_reason.unwrap_or_default();
    assert!(reason.contains("Retry-After"), "{reason}");
    assert!(doc.waiting_until.is_some());
    app.settle(5).await;
    assert_eq!(app.status("PLG-RA").await.sync_state, "synced");
    app.finish().await;
}

/// The dashboard shows the waiting reason on the complaint page and as a
/// note in the list, in Bahasa Indonesia.
#[tokio::test]
async fn the_dashboard_shows_why_a_complaint_waits() {
    let app = spawn_app().await;
    app.submit("PLG-WD").await;
    app.settle(5).await;
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-WD", "Sedang ditangani.", false, "t")
        .await
        .unwrap();
    app.engine.drain_all().await.unwrap();
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let cookie = web.session(OPERATOR).await;
    let (_, page, _) = web.page("/complaints/PLG-WD", &cookie).await;
    assert!(
        page.contains("menunggu LAPOR! memverifikasi pengaduan"),
        "{page}"
    );
    assert!(!page.contains("mencoba ulang"));
    let (_, list, _) = web.page("/complaints", &cookie).await;
    assert!(
        list.contains("menunggu LAPOR! memverifikasi pengaduan"),
        "{list}"
    );
    web.shutdown.cancel();
    app.finish().await;
}

const INTAKE: &str = "operators-intake-token-aaaaaaaaa";
const OPERATOR: &str = "operators-operator-token-bbbbbbb";
const AUDITOR: &str = "operators-auditor-token-cccccccc";

/// A citizen's complaint filed on lapor.go.id and dispositioned to us.
async fn citizen(app: &TestApp, title: &str) -> i64 {
    let v = app
        .sim_post(
            "/_sim/complaints",
            json!({
                "title": title,
                "content": "Lampu jalan mati sejak seminggu di Jl. Merdeka.",
                "disposition_id": 101,
                "category_id": 7,
            }),
        )
        .await;
    v["complaint_id"].as_i64().unwrap()
}

/// Some complaints failed: `partial`, how many and which, in words; the
/// dashboard names them with links.
#[tokio::test]
async fn a_run_with_failing_complaints_is_partial_and_names_them() {
    let app = spawn_app().await;
    let ids = [citizen(&app, "A").await, citizen(&app, "B").await];
    assert_eq!(pull(&app).await["outcome"], "ok");
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = 999999 WHERE local_ref = $1",
    )
    .bind(format!("LAPOR-{}", ids[1]))
    .execute(&app.pool)
    .await
    .unwrap();
    let run = pull(&app).await;
    assert_eq!(run["outcome"], "partial", "{run}");
    assert_eq!(run["summary"]["outcome"], "partial", "{run}");
    assert_eq!(run["ok"], false);
    assert_eq!(run["summary"]["failed"], 1, "{run}");
    let failed = &run["summary"]["failed_complaints"][0];
    assert_eq!(failed["local_ref"], format!("LAPOR-{}", ids[1]));
    let what = failed["what"].as_str().unwrap();
    assert!(what.contains("404"), "{what}");
    for bad in ["Some(", "None", "Permanent"] {
        assert!(!what.contains(bad), "in words: {what}");
    }
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let cookie = web.session(OPERATOR).await;
    let (_, page, _) = web.page("/reconciliation", &cookie).await;
    assert!(page.contains("sebagian"), "{page}");
    assert!(
        page.contains(&format!("href=\"/complaints/LAPOR-{}\"", ids[1])),
        "{page}"
    );
    web.shutdown.cancel();
    app.finish().await;
}

/// Nothing could be read: `failed`.
#[tokio::test]
async fn a_run_that_reads_nothing_is_failed() {
    let app = spawn_app().await;
    citizen(&app, "A").await;
    pull(&app).await;
    app.faults(json!({"error_rate": 1.0})).await;
    let run = pull(&app).await;
    assert_eq!(run["outcome"], "failed", "{run}");
    app.finish().await;
}

/// An unreachable LAPOR! fails the run after the first few connection
/// errors instead of trying every complaint.
#[tokio::test]
async fn an_unreachable_lapor_fails_the_run_after_a_few_connection_errors() {
    let app = spawn_app_with(|s| s.bridge.concurrency = 2).await;
    for i in 0..20 {
        citizen(&app, &format!("Lampu {i}")).await;
    }
    assert_eq!(pull(&app).await["outcome"], "ok");
    // Nothing listens on the port any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut settings = app.bridge.settings.as_ref().clone();
    settings.lapor.base_url = format!("http://127.0.0.1:{port}/api");
    let away = lapor_bridge::bridge::Bridge::new(
        app.pool.clone(),
        settings,
        std::sync::Arc::new(app.clock.clone()),
    )
    .unwrap();
    let run = Jobs::new(away).pull("test").await.unwrap();
    assert_eq!(run["outcome"], "failed", "{run}");
    let s = &run["summary"];
    assert_eq!(s["unreachable"], true, "{s}");
    assert!(s["checked"].as_u64().unwrap() <= 4, "{s}");
    assert!(s["not_checked"].as_u64().unwrap() >= 16, "{s}");
    let first = s["problems"][0].as_str().unwrap();
    assert!(first.contains("unreachable"), "{first}");
    let what = s["failed_complaints"][0]["what"].as_str().unwrap();
    assert!(
        what.contains(&format!("127.0.0.1:{port}")),
        "names host and port: {what}"
    );
    app.finish().await;
}

/// A dashboard an operator reads: the disposition by the institution's
/// name, Discard only with its confirmation, and a past complaint's
/// deadline shown overdue.
#[tokio::test]
async fn the_complaint_page_names_the_institution_and_discard_needs_confirmation() {
    let app = spawn_app().await;
    let mut doomed = complaint_doc("PLG-DISC");
    doomed["disposition_id"] = json!(999_999);
    app.submit_doc(&doomed).await;
    app.settle(3).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM lapor_bridge.outbox WHERE state = 'dead'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // History: filed 75 days ago on LAPOR!, imported by a pull.
    let old = app
        .sim_post(
            "/_sim/complaints",
            json!({"title": "Jembatan rusak", "days_ago": 75, "disposition_id": 101}),
        )
        .await["complaint_id"]
        .as_i64()
        .unwrap();
    pull(&app).await;
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let cookie = web.session(OPERATOR).await;
    let (_, page, _) = web.page(&format!("/complaints/LAPOR-{old}"), &cookie).await;
    assert!(page.contains("Pemerintah Kota Palembang"), "{page}");
    let doc = app.status(&format!("LAPOR-{old}")).await;
    assert!(doc.sla.is_overdue(), "{doc:?}");
    // Discard without the confirmation: nothing happens.
    let (_, dead_page, _) = web.page("/outbox/dead", &cookie).await;
    assert!(
        dead_page.contains(&format!("data-confirm=\"{id}\"")) && dead_page.contains("required")
    );
    let csrf = csrf_in(&dead_page);
    let path = format!("/outbox/{id}/discard");
    let (_, to) = web
        .form(&path, &cookie, &[("csrf", &csrf), ("back", "/outbox/dead")])
        .await;
    assert!(to.contains("failed=unconfirmed"), "{to}");
    let state: String = sqlx::query_scalar("SELECT state FROM lapor_bridge.outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "dead");
    let (_, flash, _) = web.page(&to, &cookie).await;
    assert!(flash.contains("centang konfirmasi"), "{flash}");
    let (_, to) = web
        .form(
            &path,
            &cookie,
            &[
                ("csrf", &csrf),
                ("back", "/outbox/dead"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert!(to.contains("done=discard"), "{to}");
    web.shutdown.cancel();
    app.finish().await;
}
