//! Cheap scrapes: `/metrics` serves the database gauges from a snapshot that
//! one replica at a time takes every 30 s and stores, so a scrape runs no
//! counting query and every replica serves the same numbers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use common::*;
use lapor_bridge::bridge::Bridge;
use lapor_bridge::gauges::{self, REFRESH_EVERY};
use reqwest::StatusCode;

const INTAKE: &str = "scrape-intake-token-aaaaaaaaaaa";
const OPERATOR: &str = "scrape-operator-token-bbbbbbbbb";
const AUDITOR: &str = "scrape-auditor-token-ccccccccccc";

/// One sample's value in a scrape (`None`: no such line).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn scrape(web: &Served) -> String {
    let resp = web
        .http
        .get(format!("{}/metrics", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

const PENDING: &str = "lapor_bridge_complaints{sync_state=\"pending\"}";
const DEPTH: &str = "lapor_bridge_outbox_depth{state=\"pending\"}";
const OLDEST: &str = "lapor_bridge_outbox_oldest_age_seconds";

#[tokio::test]
async fn a_scrape_serves_the_snapshot_until_the_next_one_is_taken() {
    let app = spawn_app().await;
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    // Before any snapshot: only what the process knows itself.
    let text = scrape(&web).await;
    assert_eq!(sample(&text, PENDING), None, "{text}");
    assert_eq!(sample(&text, "lapor_bridge_lapor_token_ok"), Some(1.0));

    app.submit("PLG-S-1").await;
    app.submit("PLG-S-2").await;
    assert!(gauges::refresh(&app.bridge).await.unwrap());
    let text = scrape(&web).await;
    assert_eq!(sample(&text, PENDING), Some(2.0), "{text}");
    assert_eq!(sample(&text, DEPTH), Some(2.0), "{text}");
    let oldest = sample(&text, OLDEST).unwrap();

    // Three more complaints: the scrape does not count them...
    for i in 3..=5 {
        app.submit(&format!("PLG-S-{i}")).await;
    }
    let text = scrape(&web).await;
    assert_eq!(sample(&text, PENDING), Some(2.0), "{text}");
    // ...nor does a replica's tick while the snapshot is young...
    assert!(
        !gauges::refresh_if_older(&app.bridge, REFRESH_EVERY)
            .await
            .unwrap()
    );
    assert_eq!(sample(&scrape(&web).await, PENDING), Some(2.0));
    // ...while ages still count on from the stored instants.
    app.clock.advance(Span::seconds(31));
    let text = scrape(&web).await;
    assert!(sample(&text, OLDEST).unwrap() >= oldest + 31.0, "{text}");
    // Once it is 30 s old, the next tick takes a new one.
    assert!(
        gauges::refresh_if_older(&app.bridge, REFRESH_EVERY)
            .await
            .unwrap()
    );
    let text = scrape(&web).await;
    assert_eq!(sample(&text, PENDING), Some(5.0), "{text}");
    assert_eq!(sample(&text, DEPTH), Some(5.0), "{text}");
    let taken = sample(&text, "lapor_bridge_gauges_taken_timestamp_seconds").unwrap();
    let now = lapor_bridge::clock::Clock::now(&app.clock).timestamp() as f64;
    assert!((taken - now).abs() < 2.0, "{taken} vs {now}");

    // Another replica, which never counted anything, serves the same numbers.
    let other = Bridge::new(
        app.pool.clone(),
        (*app.bridge.settings).clone(),
        Arc::new(app.clock.clone()),
    )
    .unwrap();
    let theirs = gauges::render(&other).await;
    assert_eq!(sample(&theirs, PENDING), Some(5.0), "{theirs}");

    web.shutdown.cancel();
    app.finish().await;
}

#[tokio::test]
async fn one_replica_at_a_time_takes_the_snapshot() {
    let app = spawn_app().await;
    let replicas: Vec<Bridge> = (0..4)
        .map(|_| {
            Bridge::new(
                app.pool.clone(),
                (*app.bridge.settings).clone(),
                Arc::new(app.clock.clone()),
            )
            .unwrap()
        })
        .collect();
    // Every replica ticks at once on a stale snapshot: one counts.
    let taken = futures_util::future::join_all(
        replicas
            .iter()
            .map(|r| gauges::refresh_if_older(r, REFRESH_EVERY)),
    )
    .await;
    let took = taken.into_iter().filter(|t| *t.as_ref().unwrap()).count();
    assert_eq!(took, 1);
    // While one holds the lock, another does not wait for it or count.
    let mut tx = app.pool.begin().await.unwrap();
    assert!(
        lapor_bridge::store::gauges::try_lock(&mut tx)
            .await
            .unwrap()
    );
    assert!(!gauges::refresh(&replicas[0]).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(gauges::refresh(&replicas[0]).await.unwrap());
    app.finish().await;
}

#[tokio::test]
async fn the_daemon_task_takes_a_snapshot_at_start() {
    let app = spawn_app().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(gauges::run(app.bridge.clone(), shutdown.clone()));
    assert!(
        eventually(Duration::from_secs(10), || async {
            gauges::render(&app.bridge)
                .await
                .contains("lapor_bridge_gauges_taken_timestamp_seconds")
        })
        .await
    );
    shutdown.cancel();
    task.await.unwrap();
    app.finish().await;
}
