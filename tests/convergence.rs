//! Convergence under faults: 1,000 complaints and their follow-ups through a
//! LAPOR! that fails 40% of requests in every way it can, and rate-limits.
//! Every complaint must exist upstream exactly once, each follow-up once.

mod common;

use std::collections::HashMap;

use chrono::Duration;
use common::*;
use serde_json::json;

const COMPLAINTS: usize = 1_000;

fn complaints() -> usize {
    std::env::var("CONVERGENCE_COMPLAINTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(COMPLAINTS)
}

/// Delivers what is due and moves the clock past the longest backoff
/// (retry_max_ms), until `remaining` counts nothing.
async fn drive(app: &TestApp, remaining: &str) {
    for _ in 0..3_000 {
        app.engine.drain_all().await.unwrap();
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(remaining.to_string()))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        app.clock.advance(Duration::milliseconds(2_100));
    }
    let states: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
        "SELECT step, state, attempts, last_error FROM lapor_bridge.outbox
          WHERE state NOT IN ('done') ORDER BY id LIMIT 10",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    panic!("did not converge: {remaining}: {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_complaints_converge_exactly_once_through_faults() {
    let app = spawn_app_with(|s| {
        s.bridge.concurrency = 16;
        s.bridge.max_attempts = 60;
        s.bridge.rate_limit_per_sec = 400;
        s.bridge.retry_base_ms = 100;
        s.bridge.retry_max_ms = 2_000;
        // The test's clock jumps ahead of the simulator's wall clock (every
        // backoff is skipped by moving it): allow for that when follow-ups
        // are matched by the time they were first sent.
        s.lapor.clock_tolerance_secs = 86_400;
    })
    .await;
    for i in 0..complaints() {
        let local_ref = format!("PLG-CV-{i:05}");
        sqlx::query("SELECT lapor_bridge.submit_complaint($1)")
            .bind(complaint_doc(&local_ref))
            .execute(&app.pool)
            .await
            .unwrap();
        lapor_bridge::actions::add_followup(
            &app.bridge,
            &local_ref,
            &format!("Tindak lanjut untuk {local_ref}"),
            false,
            "test",
        )
        .await
        .unwrap();
    }
    app.faults(json!({
        "error_rate": 0.2,
        "drop_after_commit_rate": 0.1,
        "html_error_rate": 0.05,
        "malformed_rate": 0.05,
        "rate_limit_per_sec": 300,
    }))
    .await;

    // Creates go through; follow-ups wait for LAPOR!'s verification.
    drive(
        &app,
        "SELECT count(*) FROM lapor_bridge.outbox WHERE step = 'create' AND state <> 'done'",
    )
    .await;
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.complaints WHERE lapor_complaint_id IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(created, complaints() as i64);

    // LAPOR!'s admin verifies everything.
    for c in app.upstream().await {
        app.verify_upstream(c["id"].as_i64().unwrap()).await;
    }
    app.clock.advance(Duration::seconds(301));
    drive(
        &app,
        "SELECT count(*) FROM lapor_bridge.outbox WHERE state IN ('pending', 'running')",
    )
    .await;

    let not_done: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.local_ref, o.state, o.last_error FROM lapor_bridge.outbox o
           JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
          WHERE o.state NOT IN ('done', 'discarded') LIMIT 5",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(not_done.is_empty(), "unfinished steps: {not_done:?}");

    // Upstream: every reference exactly once, every follow-up exactly once.
    let upstream = app.upstream().await;
    let mut by_ref: HashMap<String, usize> = HashMap::new();
    for c in &upstream {
        let tags = c["tags_raw"].as_str().unwrap_or_default();
        let local_ref = lapor_bridge::lapor::types::ref_in_tags(tags)
            .unwrap()
            .to_string();
        *by_ref.entry(local_ref.clone()).or_default() += 1;
        let ours: Vec<&serde_json::Value> = c["followups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["content"] == json!(format!("Tindak lanjut untuk {local_ref}")))
            .collect();
        assert_eq!(ours.len(), 1, "{local_ref}: follow-up count {}", ours.len());
    }
    assert_eq!(by_ref.len(), complaints(), "every complaint is upstream");
    let duplicates: Vec<_> = by_ref.iter().filter(|(_, n)| **n != 1).collect();
    assert!(duplicates.is_empty(), "duplicates upstream: {duplicates:?}");
    assert_eq!(upstream.len(), complaints());

    // The faults really happened, and history and audit kept up.
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT failure_kind, count(*) FROM lapor_bridge.outbox_attempts
          WHERE failure_kind IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let kinds: HashMap<String, i64> = kinds.into_iter().collect();
    for kind in ["server_error", "connection_lost", "html_error", "malformed"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} seen: {kinds:?}"
        );
    }
    let adopted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.outbox_attempts WHERE outcome = 'adopted'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(adopted > 0, "lost answers were adopted after a lookup");
    assert!(
        lapor_bridge::store::audit::verify(&app.pool)
            .await
            .unwrap()
            .is_ok()
    );
    app.finish().await;
}
