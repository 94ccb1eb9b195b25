//! Delivery through every failure class, against the simulator with faults.

mod common;

use chrono::Duration;
use common::*;
use serde_json::json;

async fn step_row(
    app: &TestApp,
    local_ref: &str,
    step: &str,
) -> (String, i32, bool, Option<String>) {
    sqlx::query_as(
        "SELECT o.state, o.attempts, o.needs_lookup, o.last_error FROM lapor_bridge.outbox o
           JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
          WHERE c.local_ref = $1 AND o.step = $2",
    )
    .bind(local_ref)
    .bind(step)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_complaint_is_delivered_once_and_becomes_synced() {
    let app = spawn_app().await;
    app.submit("PLG-1").await;
    assert_eq!(app.status("PLG-1").await.sync_state, "pending");
    app.settle(5).await;
    let doc = app.status("PLG-1").await;
    assert_eq!(doc.sync_state, "synced");
    assert_eq!(doc.pending_ops, 0);
    assert_eq!(doc.status.as_deref(), Some("unverified"));
    let upstream = app.upstream_with_ref("PLG-1").await;
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        Some(upstream[0]["id"].as_i64().unwrap()),
        doc.lapor_complaint_id
    );
    assert_eq!(
        upstream[0]["disposition_id"], 101,
        "default disposition is our institution"
    );
    app.finish().await;
}

/// A transient failure: one attempt recorded, retried after the backoff,
/// delivered once.
async fn transient(faults: serde_json::Value, kind: &str, status: Option<i32>, lookup: bool) {
    let app = spawn_app().await;
    app.submit("PLG-T").await;
    app.faults(faults).await;
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    let (state, attempts, needs_lookup, last_error) = step_row(&app, "PLG-T", "create").await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert_eq!(needs_lookup, lookup, "lookup before resend");
    assert!(last_error.unwrap().starts_with(kind));
    // A write that may have been applied waits for its lookup (pending, with
    // the reason); a clear failure is retried (retrying).
    let doc = app.status("PLG-T").await;
    if lookup {
        assert_eq!(doc.sync_state, "pending");
        assert!(doc.waiting_reason.is_some_and(|w| w.contains("looked up")));
    } else {
        assert_eq!(doc.sync_state, "retrying");
        assert!(doc.waiting_reason.is_none());
    }
    let tried = app.attempts("PLG-T").await;
    assert_eq!(tried[0].2, status);
    assert_eq!(tried[0].3.as_deref(), Some(kind));
    // Not due before the backoff: nothing happens without moving the clock.
    app.faults(json!({})).await;
    let due_now = app.engine.drain_once().await.unwrap();
    if due_now == 0 {
        app.advance_to_next_due().await;
    }
    app.settle(5).await;
    assert_eq!(app.status("PLG-T").await.sync_state, "synced");
    assert_eq!(
        app.upstream_with_ref("PLG-T").await.len(),
        1,
        "exactly once upstream"
    );
    app.finish().await;
}

#[tokio::test]
async fn server_error_503_is_retried() {
    transient(json!({"error_rate": 1.0}), "server_error", Some(503), false).await;
}

#[tokio::test]
async fn html_502_from_a_proxy_is_retried_after_a_lookup() {
    transient(
        json!({"html_error_rate": 1.0}),
        "html_error",
        Some(502),
        true,
    )
    .await;
}

#[tokio::test]
async fn truncated_json_is_an_unknown_outcome() {
    transient(json!({"malformed_rate": 1.0}), "malformed", Some(200), true).await;
}

#[tokio::test]
async fn rate_limit_429_honours_retry_after() {
    let app = spawn_app().await;
    app.submit("PLG-R").await;
    app.faults(json!({"rate_limit_per_sec": 1})).await;
    // Burn the one allowed request of this second.
    let _ = app
        .http
        .get(format!(
            "{}/masters/institutions/external",
            app.sim.base_url()
        ))
        .bearer_auth("api-token")
        .header("token", "instansi-token")
        .send()
        .await
        .unwrap();
    let before = lapor_bridge::clock::Clock::now(&app.clock);
    app.engine.drain_once().await.unwrap();
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT next_attempt_at FROM lapor_bridge.outbox WHERE step = 'create'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let tried = app.attempts("PLG-R").await;
    assert_eq!(tried[0].2, Some(429));
    // (PostgreSQL keeps microseconds.)
    assert!(
        next - before >= Duration::milliseconds(999),
        "Retry-After: 1 is a floor"
    );
    app.faults(json!({})).await;
    app.settle(5).await;
    assert_eq!(app.upstream_with_ref("PLG-R").await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn response_lost_after_commit_is_looked_up_not_resent() {
    let app = spawn_app().await;
    app.submit("PLG-D").await;
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    app.engine.drain_once().await.unwrap();
    let (state, _, needs_lookup, _) = step_row(&app, "PLG-D", "create").await;
    assert_eq!(state, "pending");
    assert!(needs_lookup);
    assert_eq!(
        app.upstream_with_ref("PLG-D").await.len(),
        1,
        "LAPOR! applied it"
    );
    app.faults(json!({})).await;
    app.settle(5).await;
    let doc = app.status("PLG-D").await;
    assert_eq!(doc.sync_state, "synced");
    let upstream = app.upstream_with_ref("PLG-D").await;
    assert_eq!(upstream.len(), 1, "adopted, never resent");
    assert_eq!(
        Some(upstream[0]["id"].as_i64().unwrap()),
        doc.lapor_complaint_id
    );
    let outcomes: Vec<String> = app
        .attempts("PLG-D")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(outcomes, vec!["unknown", "adopted"]);
    app.finish().await;
}

/// The lookup finds our complaint upstream, but its LAPOR! id is already
/// held by another local complaint: linking would break the one-to-one rule.
/// The step is dead-lettered with the reason, not retried forever.
#[tokio::test]
async fn an_outcome_that_breaks_an_integrity_rule_is_dead_lettered() {
    let app = spawn_app().await;
    app.submit("PLG-X1").await;
    app.settle(5).await;
    app.submit("PLG-X2").await;
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    app.engine.drain_once().await.unwrap();
    app.faults(json!({})).await;
    let upstream = app.upstream_with_ref("PLG-X2").await;
    let taken = upstream[0]["id"].as_i64().unwrap();
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = $1 WHERE local_ref = 'PLG-X1'",
    )
    .bind(taken)
    .execute(&app.pool)
    .await
    .unwrap();
    app.settle(5).await;
    let (state, _, _, last_error) = step_row(&app, "PLG-X2", "create").await;
    assert_eq!(state, "dead");
    assert!(
        last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot be recorded")),
        "{last_error:?}"
    );
    assert_eq!(app.status("PLG-X2").await.lapor_complaint_id, None);
    assert_eq!(
        app.upstream_with_ref("PLG-X2").await.len(),
        1,
        "never resent"
    );
    app.finish().await;
}

#[tokio::test]
async fn timeout_is_an_unknown_outcome_resent_only_after_an_empty_lookup() {
    let app = spawn_app_with(|s| s.bridge.http_timeout_ms = 300).await;
    app.submit("PLG-TO").await;
    app.faults(json!({"timeout_rate": 1.0, "timeout_hold_ms": 2000}))
        .await;
    app.engine.drain_once().await.unwrap();
    let tried = app.attempts("PLG-TO").await;
    assert_eq!(tried[0].3.as_deref(), Some("timeout"));
    let (_, _, needs_lookup, _) = step_row(&app, "PLG-TO", "create").await;
    assert!(needs_lookup);
    // The lookup itself fails while LAPOR! is down: no resend.
    app.faults(json!({"error_rate": 1.0})).await;
    app.advance_to_next_due().await;
    app.engine.drain_once().await.unwrap();
    assert_eq!(app.upstream_with_ref("PLG-TO").await.len(), 0);
    let (_, _, still_lookup, _) = step_row(&app, "PLG-TO", "create").await;
    assert!(still_lookup, "a failed lookup keeps the lookup pending");
    let list_calls = get_json(&app.http, format!("{}/_sim/stats", app.sim.root_url())).await;
    assert_eq!(
        list_calls["requests"]["create"]["503"],
        serde_json::Value::Null,
        "no create was sent while the lookup failed"
    );
    app.faults(json!({})).await;
    app.settle(5).await;
    assert_eq!(app.upstream_with_ref("PLG-TO").await.len(), 1);
    assert_eq!(app.status("PLG-TO").await.sync_state, "synced");
    app.finish().await;
}

#[tokio::test]
async fn validation_422_is_dead_at_once_with_lapor_message_and_blocks_only_its_complaint() {
    let app = spawn_app().await;
    let mut doc = complaint_doc("PLG-BAD");
    doc["disposition_id"] = json!(999_999); // LAPOR! does not know it
    lapor_bridge::actions::submit(&app.bridge, &doc, "test")
        .await
        .unwrap();
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-BAD", "Sedang ditangani", false, "test")
        .await
        .unwrap();
    app.submit("PLG-OK").await;
    app.settle(5).await;
    let bad = app.status("PLG-BAD").await;
    assert_eq!(bad.sync_state, "dead");
    assert!(
        bad.last_error
            .as_deref()
            .unwrap()
            .contains("disposition_id"),
        "{:?}",
        bad.last_error
    );
    assert_eq!(
        bad.pending_ops, 2,
        "the follow-up waits behind the dead create"
    );
    let (state, attempts, _, _) = step_row(&app, "PLG-BAD", "followup").await;
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    assert_eq!(app.status("PLG-OK").await.sync_state, "synced");
    app.finish().await;
}

#[tokio::test]
async fn retries_end_dead_after_max_attempts_and_an_operator_retry_delivers() {
    let app = spawn_app_with(|s| s.bridge.max_attempts = 3).await;
    app.submit("PLG-M").await;
    app.faults(json!({"error_rate": 1.0})).await;
    app.settle(10).await;
    let (state, attempts, _, _) = step_row(&app, "PLG-M", "create").await;
    assert_eq!((state.as_str(), attempts), ("dead", 3));
    assert_eq!(app.status("PLG-M").await.sync_state, "dead");
    app.faults(json!({})).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM lapor_bridge.outbox WHERE step = 'create'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    lapor_bridge::actions::act_on_step(
        &app.bridge,
        id,
        lapor_bridge::actions::StepAction::Retry,
        "token:op",
    )
    .await
    .unwrap();
    app.settle(5).await;
    assert_eq!(app.status("PLG-M").await.sync_state, "synced");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.audit_log WHERE action = 'operator.retry' AND actor = 'token:op'")
        .fetch_one(&app.pool).await.unwrap();
    assert_eq!(audited, 1);
    app.finish().await;
}

#[tokio::test]
async fn followups_wait_for_verification_without_burning_attempts_then_go_in_order() {
    let app = spawn_app().await;
    app.submit("PLG-F").await;
    for text in ["Tindak lanjut pertama", "Tindak lanjut kedua"] {
        lapor_bridge::actions::add_followup(&app.bridge, "PLG-F", text, false, "test")
            .await
            .unwrap();
    }
    app.settle(3).await;
    let (state, attempts, _, _) = sqlx::query_as::<_, (String, i32, bool, Option<String>)>(
        "SELECT state, attempts, needs_lookup, waiting_reason FROM lapor_bridge.outbox WHERE step = 'followup' ORDER BY seq LIMIT 1")
        .fetch_one(&app.pool).await.unwrap();
    assert_eq!(
        (state.as_str(), attempts),
        ("pending", 0),
        "waiting burns no attempt"
    );
    let lapor_id = app.status("PLG-F").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    app.clock.advance(Duration::seconds(301));
    app.settle(5).await;
    let doc = app.status("PLG-F").await;
    assert_eq!(doc.sync_state, "synced");
    // LAPOR! moved it to "Dalam Proses"; the bridge learns it by pulling.
    let jobs = lapor_bridge::inbound::Jobs::new(app.bridge.clone());
    jobs.pull("test").await.unwrap();
    let doc = app.status("PLG-F").await;
    assert_eq!(doc.status.as_deref(), Some("in_process"));
    let up = app.upstream_with_ref("PLG-F").await;
    let contents: Vec<&str> = up[0]["followups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        vec!["Tindak lanjut pertama", "Tindak lanjut kedua"]
    );
    app.finish().await;
}

#[tokio::test]
async fn a_409_on_a_closed_complaint_is_dead_after_rereading_status() {
    let app = spawn_app().await;
    app.submit("PLG-C").await;
    app.settle(3).await;
    let id = app.status("PLG-C").await.lapor_complaint_id.unwrap();
    // Verified, then rejected upstream: 1→2? No: verified then in process then closed.
    app.verify_upstream(id).await;
    app.sim_post(
        &format!("/_sim/complaints/{id}/followups"),
        json!({"content": "oleh instansi", "institution_id": 101}),
    )
    .await;
    app.sim_post(
        &format!("/_sim/complaints/{id}/status"),
        json!({"status_name": "Dalam Proses"}),
    )
    .await;
    app.sim_post(
        &format!("/_sim/complaints/{id}/status"),
        json!({"status_name": "Selesai"}),
    )
    .await;
    // The bridge still believes it is unverified → it re-reads, sees closed.
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-C", "Terlambat", false, "test")
        .await
        .unwrap();
    sqlx::query("UPDATE lapor_bridge.complaints SET status = 'verified'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle(5).await;
    let doc = app.status("PLG-C").await;
    assert_eq!(doc.sync_state, "dead");
    assert_eq!(doc.status.as_deref(), Some("completed"));
    assert!(app.attempts("PLG-C").await.iter().any(|a| a.2 == Some(409)));
    app.finish().await;
}

#[tokio::test]
async fn unknown_status_name_is_stored_raw_and_flagged() {
    let app = spawn_app().await;
    app.submit("PLG-U").await;
    app.settle(3).await;
    let id = app.status("PLG-U").await.lapor_complaint_id.unwrap();
    app.sim_post(
        &format!("/_sim/complaints/{id}/status"),
        json!({"status_name": "Menunggu Tanggapan", "force": true}),
    )
    .await;
    lapor_bridge::actions::add_followup(&app.bridge, "PLG-U", "Mohon data tambahan", false, "test")
        .await
        .unwrap();
    app.engine.drain_once().await.unwrap();
    let doc = app.status("PLG-U").await;
    assert_eq!(doc.lapor_status_name.as_deref(), Some("Menunggu Tanggapan"));
    assert_eq!(doc.status, None, "never mapped to a default");
    assert!(doc.conflict_reason.unwrap().contains("Menunggu Tanggapan"));
    app.finish().await;
}

#[tokio::test]
async fn unauthorized_pauses_delivery_without_burning_attempts() {
    let app = spawn_app_with(|s| s.lapor.api_token = "revoked-token".to_string().into()).await;
    app.submit("PLG-A").await;
    app.engine.drain_once().await.unwrap();
    assert!(app.bridge.gate.is_paused());
    let (state, attempts, _, _) = step_row(&app, "PLG-A", "create").await;
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    assert_eq!(
        app.engine.drain_once().await.unwrap(),
        0,
        "paused: nothing is claimed"
    );
    let text = format!("{:?}", app.attempts("PLG-A").await);
    assert!(!text.contains("revoked-token"));
    app.finish().await;
}

#[tokio::test]
async fn a_worker_killed_mid_call_loses_its_lease_and_the_step_finishes_once() {
    let app = spawn_app_with(|s| s.bridge.lease_secs = 10).await;
    app.submit("PLG-K").await;
    // LAPOR! is slow: the create is in flight when the worker dies.
    app.faults(json!({"latency_ms": [400, 400]})).await;
    let engine = app.engine.clone();
    let worker = tokio::spawn(async move { engine.drain_once().await });
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM lapor_bridge.outbox WHERE state = 'running'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            n == 1
        })
        .await
    );
    // The create is on the wire (LAPOR! holds it 400 ms) when the worker dies.
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            get_json(&app.http, format!("{}/_sim/stats", app.sim.root_url())).await["in_flight"]
                == 1
        })
        .await
    );
    worker.abort();
    let _ = worker.await;
    app.faults(json!({})).await;
    // Before the lease expires no one can take it.
    let replica = app.replica();
    assert_eq!(replica.drain_once().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(11));
    replica.maintain().await.unwrap();
    let (state, _, needs_lookup, _) = step_row(&app, "PLG-K", "create").await;
    assert_eq!(state, "pending");
    assert!(needs_lookup, "a rescued write is looked up first");
    app.advance_to_next_due().await;
    assert_eq!(replica.drain_once().await.unwrap(), 1);
    assert_eq!(app.status("PLG-K").await.sync_state, "synced");
    assert_eq!(
        app.upstream_with_ref("PLG-K").await.len(),
        1,
        "finished once"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_stale_worker_cannot_overwrite_a_newer_outcome() {
    let app = spawn_app().await;
    app.submit("PLG-S").await;
    let old = app.replica();
    let claimed = lapor_bridge::store::outbox::claim(
        &app.pool,
        "old-worker",
        lapor_bridge::clock::Clock::now(&app.clock),
        30,
        10,
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    app.clock.advance(Duration::seconds(31));
    app.engine.maintain().await.unwrap();
    app.settle(5).await;
    assert_eq!(app.status("PLG-S").await.sync_state, "synced");
    // The old holder wakes up and reports a failure with its stale fence,
    // through the outcome writer every worker uses.
    app.faults(json!({"error_rate": 1.0, "error_status": 503}))
        .await;
    old.deliver(claimed[0].clone()).await;
    let doc = app.status("PLG-S").await;
    assert_eq!(doc.sync_state, "synced", "the fence rejects it");
    let (state, attempts, _, _) = step_row(&app, "PLG-S", "create").await;
    assert_eq!((state.as_str(), attempts), ("done", 1));
    let outcomes: Vec<String> = app
        .attempts("PLG-S")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(outcomes.last().map(String::as_str), Some("lease_lost"));
    app.finish().await;
}

#[tokio::test]
async fn two_replicas_at_once_deliver_each_step_once() {
    let app = spawn_app_with(|s| s.bridge.concurrency = 4).await;
    for i in 0..40 {
        app.submit(&format!("PLG-2R-{i}")).await;
    }
    app.faults(json!({"latency_ms": [5, 20]})).await;
    let a = app.engine.clone();
    let b = app.replica();
    let (ra, rb) = tokio::join!(a.drain_all(), b.drain_all());
    let (na, nb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(na + nb, 40, "each step claimed once: {na} + {nb}");
    assert!(na > 0 && nb > 0, "both replicas worked: {na} + {nb}");
    let upstream = app.upstream().await;
    assert_eq!(upstream.len(), 40);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox_attempts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 40);
    app.finish().await;
}

#[tokio::test]
async fn attachments_are_uploaded_before_the_create_in_lapor_form() {
    let app = spawn_app_with(|s| s.bridge.max_attempts = 40).await;
    let mut doc = complaint_doc("PLG-ATT");
    doc["attachments"] = json!([
        {"file_name": "foto.jpg", "content_base64": "aGVsbG8="},
        {"file_name": "surat.pdf", "content_base64": "d29ybGQ="}
    ]);
    lapor_bridge::actions::submit(&app.bridge, &doc, "test")
        .await
        .unwrap();
    app.faults(json!({"drop_after_commit_rate": 0.5})).await;
    app.settle(40).await;
    app.faults(json!({})).await;
    app.settle(20).await;
    let doc = app.status("PLG-ATT").await;
    assert_eq!(doc.sync_state, "synced", "{:?}", doc.last_error);
    let up = app.upstream_with_ref("PLG-ATT").await;
    assert_eq!(up.len(), 1);
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT lapor_file_id FROM lapor_bridge.attachments ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(ids.len(), 2);
    app.finish().await;
}
