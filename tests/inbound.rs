//! LAPOR! to local: pull, reconciliation, bad input, concurrency.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use lapor_bridge::inbound::Jobs;
use serde_json::{Value, json};

async fn pull(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone()).pull("test").await.unwrap()
}

async fn reconcile(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone())
        .reconcile("test")
        .await
        .unwrap()
}

async fn deep_reconcile(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone())
        .deep_reconcile("test")
        .await
        .unwrap()
}

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

async fn set_status(app: &TestApp, id: i64, body: Value) -> Value {
    app.sim_post(&format!("/_sim/complaints/{id}/status"), body)
        .await
}

async fn upstream_followup(app: &TestApp, id: i64, content: &str, institution: Option<i64>) {
    app.sim_post(
        &format!("/_sim/complaints/{id}/followups"),
        json!({"content": content, "institution_id": institution}),
    )
    .await;
}

async fn upstream_one(app: &TestApp, id: i64) -> Value {
    let v = get_json(
        &app.http,
        format!("{}/_sim/complaints/{id}", app.sim.root_url()),
    )
    .await;
    v["data"].clone()
}

async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// Complaints, follow-ups, audit entries.
async fn counts(app: &TestApp) -> (i64, i64, i64) {
    (
        scalar(app, "SELECT count(*) FROM lapor_bridge.complaints").await,
        scalar(app, "SELECT count(*) FROM lapor_bridge.followups").await,
        scalar(app, "SELECT count(*) FROM lapor_bridge.audit_log").await,
    )
}

async fn audit_actions(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn n(summary: &Value, key: &str) -> i64 {
    summary["summary"][key].as_i64().unwrap_or_else(|| {
        panic!("summary has no {key}: {summary}");
    })
}

#[tokio::test]
async fn pull_imports_inbox_complaints_and_a_second_pull_changes_nothing() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(citizen(&app, &format!("Lampu jalan {i}")).await);
    }
    let first = pull(&app).await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(n(&first, "imported"), 3, "{first}");
    for id in &ids {
        let doc = app.status(&format!("LAPOR-{id}")).await;
        assert_eq!(doc.origin, "lapor");
        assert_eq!(doc.lapor_complaint_id, Some(*id));
        assert_eq!(doc.status.as_deref(), Some("verified"));
        assert_eq!(doc.lapor_status_name.as_deref(), Some("Terverifikasi"));
        assert_eq!(doc.disposition_id, Some(101));
        assert_eq!(doc.sync_state, "synced");
        assert!(
            doc.sla.follow_up_due_at.is_some(),
            "dispositioned to us: a follow-up is due"
        );
    }
    let before = counts(&app).await;
    assert_eq!(before.0, 3);
    let second = pull(&app).await;
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(n(&second, "imported"), 0);
    assert_eq!(n(&second, "status_changes"), 0);
    assert_eq!(n(&second, "followups_imported"), 0);
    assert_eq!(
        counts(&app).await,
        before,
        "nothing new upstream: no row and no audit entry"
    );
    app.finish().await;
}

/// Waits (on the wall clock the simulator stamps with) until the start of
/// the next second, so that a burst of creations shares one second.
async fn align_to_second() {
    let now = chrono::Utc::now();
    let into = now.timestamp_subsec_micros();
    let left = 1_000_000 - u64::from(into.min(999_999));
    tokio::time::sleep(std::time::Duration::from_micros(left + 1_000)).await;
}

#[tokio::test]
async fn same_second_updates_at_a_page_boundary_are_applied_exactly_once() {
    let app = spawn_app().await;
    // 105 complaints in one second: the list's page of 100 ends inside a run
    // of equal `updated_at` seconds.
    let mut ids = Vec::new();
    align_to_second().await;
    for i in 0..105 {
        ids.push(citizen(&app, &format!("Keluhan {i}")).await);
    }
    let mut upstream: Vec<(String, i64)> = app
        .upstream()
        .await
        .iter()
        .map(|c| {
            (
                c["updated_at"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect();
    upstream.sort();
    assert_eq!(
        upstream[99].0, upstream[100].0,
        "precondition: the 100th and 101st share a second"
    );
    let first = pull(&app).await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(n(&first, "imported"), 105);
    let imported: Vec<i64> = sqlx::query_scalar(
        "SELECT lapor_complaint_id FROM lapor_bridge.complaints WHERE origin = 'lapor' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(imported, ids, "every one exactly once");
    assert_eq!(audit_actions(&app, "inbound.complaint_imported").await, 105);

    // Changes in the same second as the saved cursor (the last complaint's
    // second): as close to it as the simulator's wall clock lets us.
    let changed_before = audit_actions(&app, "inbound.complaint_changed").await;
    let cursor: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT value FROM lapor_bridge.sync_cursors WHERE name = 'inbox'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let last = upstream.last().unwrap();
    assert_eq!(
        lapor_bridge::lapor::timestamp::format_datetime(cursor),
        last.0,
        "the cursor is the last listed second"
    );
    let to_change = [ids[0], ids[99], ids[100], ids[104]];
    for id in to_change {
        upstream_followup(&app, id, "Sedang kami tangani.", Some(101)).await;
    }
    let second = pull(&app).await;
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(n(&second, "imported"), 0);
    assert_eq!(n(&second, "status_changes"), 4, "{second}");
    assert_eq!(n(&second, "followups_imported"), 4, "{second}");
    assert_eq!(
        audit_actions(&app, "inbound.complaint_changed").await - changed_before,
        4
    );
    for id in to_change {
        let doc = app.status(&format!("LAPOR-{id}")).await;
        assert_eq!(doc.status.as_deref(), Some("in_process"));
    }
    let before = counts(&app).await;
    let third = pull(&app).await;
    assert_eq!(n(&third, "status_changes"), 0, "{third}");
    assert_eq!(n(&third, "followups_imported"), 0, "{third}");
    assert_eq!(n(&third, "imported"), 0, "{third}");
    assert_eq!(counts(&app).await, before);
    app.finish().await;
}

/// A closed complaint is re-read only when the list shows it moved. LAPOR!
/// shows `updated_at` to the second: a reopen in the same second as the
/// close that we saw looks unchanged by time alone, but not by its status.
#[tokio::test]
async fn a_same_second_reopen_of_a_closed_complaint_is_not_missed() {
    let app = spawn_app().await;
    let id = citizen(&app, "Sampah menumpuk").await;
    upstream_followup(&app, id, "Sudah diangkut.", Some(101)).await;
    set_status(&app, id, json!({"status_name": "Selesai"})).await;
    pull(&app).await;
    let local = format!("LAPOR-{id}");
    assert_eq!(
        app.status(&local).await.status.as_deref(),
        Some("completed")
    );
    // The reporter answers: reopened. Pretend our last read was in that same
    // second (what a pull racing the reopen records).
    set_status(&app, id, json!({"status_name": "Dalam Proses"})).await;
    let up = upstream_one(&app, id).await;
    let updated = chrono::DateTime::parse_from_rfc3339(up["updated_at_utc"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let second =
        updated - chrono::Duration::nanoseconds(i64::from(updated.timestamp_subsec_nanos()));
    sqlx::query("UPDATE lapor_bridge.complaints SET lapor_updated_at = $2 WHERE local_ref = $1")
        .bind(&local)
        .bind(second)
        .execute(&app.pool)
        .await
        .unwrap();
    let run = pull(&app).await;
    assert_eq!(n(&run, "status_changes"), 1, "{run}");
    let doc = app.status(&local).await;
    assert_eq!(doc.status.as_deref(), Some("in_process"));
    app.finish().await;
}

#[tokio::test]
async fn upstream_followups_are_imported_once_and_ours_are_linked() {
    let app = spawn_app().await;
    // Upstream follow-ups on an inbox complaint.
    let id = citizen(&app, "Banjir").await;
    pull(&app).await;
    upstream_followup(&app, id, "Air masih menggenang, mohon dicek.", None).await;
    upstream_followup(&app, id, "Kami teruskan ke dinas terkait.", Some(103)).await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "followups_imported"), 2, "{run}");
    let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT f.origin, f.institution_id, f.lapor_followup_id FROM lapor_bridge.followups f
           JOIN lapor_bridge.complaints c ON c.id = f.complaint_id
          WHERE c.local_ref = $1 ORDER BY f.id",
    )
    .bind(format!("LAPOR-{id}"))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("lapor", None));
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("lapor", Some(103)));
    assert!(rows.iter().all(|r| r.2.is_some()));
    assert_eq!(audit_actions(&app, "inbound.followup_imported").await, 2);
    let again = pull(&app).await;
    assert_eq!(n(&again, "followups_imported"), 0);
    assert_eq!(audit_actions(&app, "inbound.followup_imported").await, 2);

    // Our own follow-up, delivered, then seen on a pull: linked, not duplicated.
    app.submit("PLG-F").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-F").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    lapor_bridge::actions::add_followup(
        &app.bridge,
        "PLG-F",
        "Sudah kami perbaiki.",
        false,
        "test",
    )
    .await
    .unwrap();
    app.settle(5).await;
    let run = pull(&app).await;
    assert_eq!(run["ok"], true, "{run}");
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT f.origin, f.lapor_followup_id FROM lapor_bridge.followups f
           JOIN lapor_bridge.complaints c ON c.id = f.complaint_id
          WHERE c.local_ref = 'PLG-F'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "local");
    let up = upstream_one(&app, lapor_id).await;
    assert_eq!(up["followups"].as_array().unwrap().len(), 1);
    assert_eq!(rows[0].1, up["followups"][0]["id"].as_i64());
    assert_eq!(
        app.status("PLG-F").await.status.as_deref(),
        Some("in_process")
    );
    app.finish().await;
}

#[tokio::test]
async fn a_forwarded_complaint_leaves_our_inbox_but_stays_tracked() {
    let app = spawn_app().await;
    app.submit("PLG-W").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-W").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    pull(&app).await;
    assert_eq!(app.status("PLG-W").await.disposition_id, Some(101));
    lapor_bridge::actions::forward(&app.bridge, "PLG-W", 102, "bukan wewenang", "test")
        .await
        .unwrap();
    app.settle(5).await;
    let up = upstream_one(&app, lapor_id).await;
    assert_eq!(up["disposition_id"], 102);
    assert_eq!(up["status_name"], "Terverifikasi");
    let run = pull(&app).await;
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(n(&run, "imported"), 0);
    let doc = app.status("PLG-W").await;
    assert_eq!(doc.disposition_id, Some(102));
    assert_eq!(doc.status.as_deref(), Some("verified"));
    assert_eq!(doc.sync_state, "synced");
    // The follow-up is no longer ours to post: never overdue.
    app.clock.advance(chrono::Duration::days(20));
    let doc = app.status("PLG-W").await;
    assert!(
        !doc.sla
            .overdue
            .contains(&lapor_bridge::sla::DeadlineKind::FollowUp),
        "{:?}",
        doc.sla
    );
    // Not in our inbox any more.
    let inbox = app
        .bridge
        .client
        .list(
            lapor_bridge::lapor::types::Scope::Inbox,
            chrono::Utc::now() - chrono::Duration::days(1),
            1,
            100,
        )
        .await
        .unwrap();
    assert!(inbox.items.iter().all(|s| s.id != lapor_id));
    // Still tracked: an upstream change reaches us.
    upstream_followup(&app, lapor_id, "Diterima oleh provinsi.", Some(102)).await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "followups_imported"), 1, "{run}");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM lapor_bridge.complaints").await,
        1,
        "not re-imported as LAPOR-<id>"
    );
    app.finish().await;
}

#[tokio::test]
async fn status_changes_and_unknown_status_names_arrive_by_pull() {
    let app = spawn_app().await;
    let id = citizen(&app, "Pohon tumbang").await;
    let local = format!("LAPOR-{id}");
    pull(&app).await;
    upstream_followup(&app, id, "Tim sudah ke lokasi.", Some(101)).await;
    pull(&app).await;
    assert_eq!(
        app.status(&local).await.status.as_deref(),
        Some("in_process")
    );
    set_status(&app, id, json!({"status_name": "Selesai"})).await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "status_changes"), 1, "{run}");
    let doc = app.status(&local).await;
    assert_eq!(doc.status.as_deref(), Some("completed"));
    assert_eq!(doc.lapor_status_name.as_deref(), Some("Selesai"));
    let closed: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT closed_at FROM lapor_bridge.complaints WHERE local_ref = $1")
            .bind(&local)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(closed.is_some());
    assert!(doc.sla.next.is_none(), "closed: nothing pending");

    // An unknown name on an open complaint.
    let other = citizen(&app, "Parit tersumbat").await;
    let other_local = format!("LAPOR-{other}");
    pull(&app).await;
    set_status(
        &app,
        other,
        json!({"status_name": "Menunggu Tanggapan", "force": true}),
    )
    .await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "unknown_statuses"), 1, "{run}");
    let doc = app.status(&other_local).await;
    assert_eq!(doc.lapor_status_name.as_deref(), Some("Menunggu Tanggapan"));
    assert_eq!(doc.status, None, "never mapped to a default");
    assert_eq!(doc.sync_state, "conflict");
    assert!(
        doc.conflict_reason
            .as_deref()
            .unwrap()
            .contains("Menunggu Tanggapan")
    );
    // Seen again: still unknown, not counted twice, nothing written.
    let before = counts(&app).await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "unknown_statuses"), 0, "{run}");
    assert_eq!(counts(&app).await, before);
    assert_eq!(app.status(&other_local).await.status, None);
    app.finish().await;
}

async fn job_runs(app: &TestApp, job: &str) -> Vec<(bool, Value)> {
    sqlx::query_as(
        "SELECT ok, summary FROM lapor_bridge.job_runs WHERE job = $1 AND finished_at IS NOT NULL ORDER BY id",
    )
    .bind(job)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn reconcile_repairs_status_drift_and_missing_followups() {
    let app = spawn_app().await;
    let id = citizen(&app, "Jalan rusak").await;
    let local = format!("LAPOR-{id}");
    pull(&app).await;
    // (a) status drift and (b) a follow-up missing locally.
    upstream_followup(&app, id, "Perbaikan dijadwalkan.", Some(101)).await;
    let run = reconcile(&app).await;
    assert_eq!(run["ok"], true, "{run}");
    // No deep run yet: the first reconciliation reads every detail.
    assert_eq!(run["summary"]["deep"], true, "{run}");
    let drift = &run["summary"]["drift"];
    assert!(drift["status"].as_i64().unwrap() >= 1, "{run}");
    assert!(
        drift["followups_missing_locally"].as_i64().unwrap() >= 1,
        "{run}"
    );
    assert!(n(&run, "repaired") >= 1);
    let doc = app.status(&local).await;
    assert_eq!(doc.status.as_deref(), Some("in_process"));
    let followups: i64 = scalar(&app, "SELECT count(*) FROM lapor_bridge.followups").await;
    assert_eq!(followups, 1);
    // Nothing left to repair, and what LAPOR!'s listing shows unchanged is
    // not read again: one listing page per scope, no detail.
    let run = reconcile(&app).await;
    assert_eq!(n(&run, "repaired"), 0, "{run}");
    assert_eq!(run["summary"]["drift"], json!({}));
    assert_eq!(n(&run, "details_read"), 0, "{run}");
    assert_eq!(run["summary"]["deep"], false, "{run}");
    assert_eq!(n(&run, "requests"), 2, "{run}");
    let runs = job_runs(&app, "reconcile").await;
    assert_eq!(runs.len(), 2);
    assert!(runs[0].0);
    assert!(runs[0].1["drift"]["status"].as_i64().unwrap() >= 1);

    // (e) A follow-up linked to an upstream id that LAPOR! no longer lists
    // (the simulator cannot delete follow-ups: the link is made to point at
    // an id it never had). LAPOR!'s listing does not show that: the deep
    // reconciliation, which reads every detail, does.
    sqlx::query("UPDATE lapor_bridge.followups SET lapor_followup_id = 999999")
        .execute(&app.pool)
        .await
        .unwrap();
    let run = reconcile(&app).await;
    assert!(
        run["summary"]["drift"]
            .get("followups_missing_upstream")
            .is_none()
    );
    let run = deep_reconcile(&app).await;
    assert_eq!(run["summary"]["deep"], true, "{run}");
    assert!(n(&run, "details_read") >= 1, "{run}");
    assert_eq!(
        run["summary"]["drift"]["followups_missing_upstream"], 1,
        "{run}"
    );
    assert_eq!(n(&run, "conflicts"), 1, "{run}");
    let doc = app.status(&local).await;
    assert_eq!(doc.sync_state, "conflict");
    assert!(
        doc.conflict_reason
            .unwrap()
            .contains("no longer listed on LAPOR!")
    );
    app.finish().await;
}

#[tokio::test]
async fn reconcile_flags_a_complaint_lapor_no_longer_knows() {
    let app = spawn_app().await;
    let id = citizen(&app, "Lubang di trotoar").await;
    let local = format!("LAPOR-{id}");
    pull(&app).await;
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = 999999 WHERE local_ref = $1",
    )
    .bind(&local)
    .execute(&app.pool)
    .await
    .unwrap();
    let run = reconcile(&app).await;
    assert_eq!(n(&run, "conflicts"), 1, "{run}");
    assert_eq!(run["summary"]["drift"]["missing_upstream"], 1, "{run}");
    let doc = app.status(&local).await;
    assert_eq!(doc.sync_state, "conflict");
    assert!(doc.conflict_reason.unwrap().contains("404"));
    assert_eq!(audit_actions(&app, "reconcile.conflict").await, 1);
    // Flagged once: a second run writes no new audit entry.
    reconcile(&app).await;
    assert_eq!(audit_actions(&app, "reconcile.conflict").await, 1);
    let runs = job_runs(&app, "reconcile").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].1["conflicts"], 1);
    app.finish().await;
}

#[tokio::test]
async fn reconcile_relinks_an_upstream_complaint_carrying_our_ref() {
    let app = spawn_app().await;
    app.submit("PLG-L").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-L").await.lapor_complaint_id.unwrap();
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = NULL WHERE local_ref = 'PLG-L'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let run = reconcile(&app).await;
    assert_eq!(run["summary"]["drift"]["unlinked_upstream"], 1, "{run}");
    assert!(n(&run, "repaired") >= 1);
    assert_eq!(app.status("PLG-L").await.lapor_complaint_id, Some(lapor_id));
    assert_eq!(
        app.upstream_with_ref("PLG-L").await.len(),
        1,
        "no duplicate"
    );
    assert_eq!(audit_actions(&app, "reconcile.linked").await, 1);
    let run = reconcile(&app).await;
    assert!(run["summary"]["drift"].get("unlinked_upstream").is_none());
    let runs = job_runs(&app, "reconcile").await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].1["drift"]["unlinked_upstream"], 1);
    app.finish().await;
}

/// Our own complaint lands in our inbox (we file it to ourselves). When the
/// create's response was lost it is not linked yet, and a pull that runs
/// first must leave it to the outbox instead of importing it as a second,
/// inbound complaint.
#[tokio::test]
async fn pull_does_not_import_our_own_unlinked_complaint() {
    let app = spawn_app().await;
    app.submit("PLG-OWN").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-OWN").await.lapor_complaint_id.unwrap();
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = NULL WHERE local_ref = 'PLG-OWN'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let run = pull(&app).await;
    assert_eq!(n(&run, "imported"), 0, "{run}");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM lapor_bridge.complaints").await,
        1
    );
    reconcile(&app).await;
    assert_eq!(
        app.status("PLG-OWN").await.lapor_complaint_id,
        Some(lapor_id)
    );
    let run = pull(&app).await;
    assert_eq!(n(&run, "imported"), 0, "{run}");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM lapor_bridge.complaints").await,
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn malformed_answers_are_recorded_and_never_stored_as_fact() {
    let app = spawn_app().await;
    let ids = [citizen(&app, "Satu").await, citizen(&app, "Dua").await];
    app.faults(json!({"malformed_rate": 1.0})).await;
    let before = counts(&app).await;
    let run = pull(&app).await;
    assert_eq!(run["ok"], false, "{run}");
    assert!(n(&run, "errors") > 0, "{run}");
    assert_eq!(counts(&app).await, before, "nothing stored");
    let cursors = scalar(&app, "SELECT count(*) FROM lapor_bridge.sync_cursors").await;
    assert_eq!(cursors, 0, "the cursor does not move past what failed");
    let runs = job_runs(&app, "pull").await;
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].0);
    app.faults(json!({})).await;
    let run = pull(&app).await;
    assert_eq!(run["ok"], true, "{run}");
    assert_eq!(n(&run, "imported"), 2);
    for id in ids {
        assert_eq!(
            app.status(&format!("LAPOR-{id}")).await.status.as_deref(),
            Some("verified")
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn one_failing_complaint_does_not_stop_the_others() {
    let app = spawn_app().await;
    let ids = [
        citizen(&app, "A").await,
        citizen(&app, "B").await,
        citizen(&app, "C").await,
    ];
    pull(&app).await;
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET lapor_complaint_id = 999999 WHERE local_ref = $1",
    )
    .bind(format!("LAPOR-{}", ids[1]))
    .execute(&app.pool)
    .await
    .unwrap();
    for id in [ids[0], ids[2]] {
        upstream_followup(&app, id, "Ditindaklanjuti.", Some(101)).await;
    }
    let run = pull(&app).await;
    assert_eq!(run["ok"], false, "{run}");
    assert_eq!(n(&run, "errors"), 1, "{run}");
    assert_eq!(n(&run, "status_changes"), 2, "{run}");
    let problems = run["summary"]["problems"].as_array().unwrap();
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains(&format!("LAPOR-{}", ids[1])),
        "{run}"
    );
    for id in [ids[0], ids[2]] {
        assert_eq!(
            app.status(&format!("LAPOR-{id}")).await.status.as_deref(),
            Some("in_process")
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn two_pulls_at_once_import_nothing_twice() {
    let app = spawn_app().await;
    let mut ids = HashSet::new();
    for i in 0..20 {
        ids.insert(citizen(&app, &format!("Serentak {i}")).await);
    }
    let a = Jobs::new(app.bridge.clone());
    let b = Jobs::new(app.bridge.clone());
    let (ra, rb) = tokio::join!(a.pull("a"), b.pull("b"));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(n(&ra, "imported") + n(&rb, "imported"), 20, "{ra} {rb}");
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT lapor_complaint_id, count(*) FROM lapor_bridge.complaints GROUP BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let by_id: BTreeMap<i64, i64> = rows.into_iter().collect();
    assert_eq!(by_id.len(), 20);
    assert!(by_id.values().all(|c| *c == 1));
    assert_eq!(by_id.keys().copied().collect::<HashSet<_>>(), ids);
    assert_eq!(audit_actions(&app, "inbound.complaint_imported").await, 20);
    // They ran one after the other, not overlapping.
    let spans: Vec<(i64, Option<bool>)> =
        sqlx::query_as("SELECT id, ok FROM lapor_bridge.job_runs WHERE job = 'pull' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.1 == Some(true)));
    app.finish().await;
}

/// A complaint that is already closed when the pull first sees it in the
/// inbox has its follow-ups read in that same pull: listing-first
/// reconciliation, which skips what LAPOR!'s listing shows unchanged, would
/// never read them.
#[tokio::test]
async fn an_imported_complaint_has_its_followups_read_at_once() {
    let app = spawn_app().await;
    let id = citizen(&app, "Sampah menumpuk").await;
    upstream_followup(&app, id, "Sudah diangkut kemarin.", Some(101)).await;
    set_status(&app, id, json!({"status_name": "Selesai"})).await;
    let run = pull(&app).await;
    assert_eq!(n(&run, "imported"), 1, "{run}");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM lapor_bridge.followups").await,
        1,
        "{run}"
    );
    app.finish().await;
}
