//! Three daemons on one database deliver every step exactly once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lapor_bridge::app::Daemon;
use lapor_bridge::clock::SystemClock;
use lapor_bridge::simulator::{self, SimulatorConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_deliver_each_step_once_with_faults_on() {
    lapor_bridge::lapor::client::install_crypto_provider();
    let db = TestDb::create().await;
    let sim = simulator::spawn(SimulatorConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let mut settings = test_settings(&db.url, &sim.base_url());
    settings.bridge.retry_base_ms = 10;
    settings.bridge.retry_max_ms = 200;
    settings.bridge.max_attempts = 40;
    settings.bridge.concurrency = 4;

    let shutdown = CancellationToken::new();
    let mut daemons = Vec::new();
    for _ in 0..3 {
        daemons.push(
            Daemon::start(
                settings.clone(),
                Arc::new(SystemClock),
                shutdown.clone(),
                false,
            )
            .await
            .unwrap(),
        );
    }
    http.post(format!("{}/_sim/faults", sim.root_url()))
        .json(&json!({"error_rate": 0.15, "drop_after_commit_rate": 0.1, "latency_ms": [1, 10]}))
        .send()
        .await
        .unwrap();
    let bridge = daemons[0].bridge.clone();
    for i in 0..150 {
        lapor_bridge::actions::submit(&bridge, &complaint_doc(&format!("PLG-3R-{i:03}")), "test")
            .await
            .unwrap();
    }
    let pool = bridge.pool.clone();
    let done = eventually(Duration::from_secs(120), || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state <> 'done'")
                .fetch_one(&pool)
                .await
                .unwrap();
        left == 0
    })
    .await;
    assert!(done, "every step delivered");

    let all = get_json(&http, format!("{}/_sim/complaints", sim.root_url())).await;
    let upstream = all["data"].as_array().unwrap();
    assert_eq!(upstream.len(), 150, "exactly once upstream");
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.audit_log WHERE action = 'bridge.started'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(started, 3, "each daemon recorded its configuration");
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.outbox_attempts WHERE outcome IN ('delivered', 'adopted')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delivered, 150, "one successful outcome per step");
    assert!(
        lapor_bridge::store::audit::verify(&pool)
            .await
            .unwrap()
            .is_ok()
    );

    shutdown.cancel();
    for d in daemons {
        d.wait().await;
    }
    pool.close().await;
    sim.shutdown();
    db.drop_db().await;
}
