//! Exactly once at the edges: an operator's Retry and Discard after an
//! unknown outcome, a backend that commits after the gateway gave up,
//! copies we could not prevent, identical follow-up texts, a 403 on one
//! complaint, leases on the database's clock, and jobs that cannot leak a
//! lock.

mod common;

use chrono::Duration;
use common::*;
use lapor_bridge::actions::{self, StepAction};
use lapor_bridge::clock::Clock;
use lapor_bridge::inbound::Jobs;
use serde_json::{Value, json};

/// The step of `kind` of a complaint, as the API shows it.
async fn step(app: &TestApp, local_ref: &str, kind: &str) -> lapor_bridge::store::outbox::StepView {
    let row = lapor_bridge::store::complaints::by_ref(&app.pool, local_ref)
        .await
        .unwrap()
        .unwrap();
    lapor_bridge::store::outbox::steps_of(&app.pool, row.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.step == kind)
        .unwrap()
}

async fn reconcile(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone())
        .reconcile("test")
        .await
        .unwrap()
}

async fn pull(app: &TestApp) -> Value {
    Jobs::new(app.bridge.clone()).pull("test").await.unwrap()
}

/// Waits for the simulator to have applied `n` complaints carrying the ref
/// (a slow commit lands after its 504).
async fn upstream_reaches(app: &TestApp, local_ref: &str, n: usize) {
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            app.upstream_with_ref(local_ref).await.len() >= n
        })
        .await,
        "LAPOR! never held {n} of {local_ref}"
    );
}

async fn audit_after(app: &TestApp, action: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT coalesce(after, 'null'::jsonb) FROM lapor_bridge.audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn metric(app: &TestApp, name: &str) -> String {
    assert!(lapor_bridge::gauges::refresh(&app.bridge).await.unwrap());
    let text = lapor_bridge::gauges::render(&app.bridge).await;
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_string()
}

// ----- 1. an operator's Retry never sends blind ---------------------------

/// The answer to the only attempt is lost after LAPOR! committed it: the
/// step is dead, and an operator's Retry looks it up (after the delay)
/// instead of filing the complaint a second time.
#[tokio::test]
async fn a_retry_of_a_dead_step_that_may_have_reached_lapor_looks_up_first() {
    let app = spawn_app_with(|s| {
        s.bridge.max_attempts = 1;
        s.bridge.lookup_delay_secs = 120;
    })
    .await;
    app.submit("PLG-R1").await;
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    app.engine.drain_all().await.unwrap();
    app.faults(json!({})).await;
    let dead = step(&app, "PLG-R1", "create").await;
    assert_eq!(dead.state, "dead");
    assert!(dead.needs_lookup, "may have reached LAPOR! survives dead");
    assert_eq!(app.upstream_with_ref("PLG-R1").await.len(), 1);

    actions::act_on_step(&app.bridge, dead.id, StepAction::Retry, "operator:test")
        .await
        .unwrap();
    let retried = step(&app, "PLG-R1", "create").await;
    assert_eq!(retried.state, "pending");
    assert!(retried.needs_lookup, "and survives the Retry");
    // Not before the lookup delay, Retry or not.
    app.clock.advance(Duration::seconds(60));
    assert_eq!(app.engine.drain_once().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(61));
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    let doc = app.status("PLG-R1").await;
    assert_eq!(doc.sync_state, "synced", "{:?}", doc.last_error);
    assert_eq!(app.upstream_with_ref("PLG-R1").await.len(), 1, "filed once");
    let outcomes: Vec<String> = app
        .attempts("PLG-R1")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(outcomes, ["dead", "adopted"]);
    app.finish().await;
}

/// A dead step whose outcome is unknown is discarded: the complaint says it
/// may be on LAPOR!, and reconciliation that finds it links it and clears
/// the conflict.
#[tokio::test]
async fn a_discarded_create_that_may_have_committed_is_linked_when_found() {
    let app = spawn_app_with(|s| s.bridge.max_attempts = 1).await;
    app.submit("PLG-D1").await;
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    app.engine.drain_all().await.unwrap();
    app.faults(json!({})).await;
    let dead = step(&app, "PLG-D1", "create").await;
    actions::act_on_step(&app.bridge, dead.id, StepAction::Discard, "operator:test")
        .await
        .unwrap();
    let doc = app.status("PLG-D1").await;
    assert_eq!(doc.sync_state, "conflict");
    let reason = doc.conflict_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("may be on LAPOR!"), "{reason}");

    let run = reconcile(&app).await;
    assert_eq!(run["summary"]["drift"]["unlinked_upstream"], 1, "{run}");
    let doc = app.status("PLG-D1").await;
    let upstream = app.upstream_with_ref("PLG-D1").await;
    assert_eq!(upstream.len(), 1);
    assert_eq!(doc.lapor_complaint_id, upstream[0]["id"].as_i64());
    assert_eq!(doc.conflict_reason, None, "the conflict is cleared");
    assert_eq!(doc.sync_state, "synced");
    assert_eq!(
        audit_after(&app, "reconcile.conflict_cleared").await.len(),
        1
    );
    app.finish().await;
}

/// A create discarded before anything was sent is simply not on LAPOR!.
#[tokio::test]
async fn a_discarded_create_that_never_left_says_not_on_lapor() {
    let app = spawn_app().await;
    app.submit("PLG-D0").await;
    let pending = step(&app, "PLG-D0", "create").await;
    actions::act_on_step(
        &app.bridge,
        pending.id,
        StepAction::Discard,
        "operator:test",
    )
    .await
    .unwrap();
    let reason = app
        .status("PLG-D0")
        .await
        .conflict_reason
        .unwrap_or_default();
    assert!(reason.starts_with("not on LAPOR!"), "{reason}");
    app.finish().await;
}

/// A later clear failure (a 503 to the resend) does not make "may have
/// reached LAPOR!" go away: the dead step's Retry still looks up, and finds
/// the first write, which landed late.
#[tokio::test]
async fn may_have_reached_lapor_survives_a_later_clear_failure() {
    let app = spawn_app_with(|s| {
        s.bridge.max_attempts = 2;
        s.bridge.lookup_delay_secs = 1;
    })
    .await;
    app.submit("PLG-STICKY").await;
    app.faults(json!({"slow_commit_rate": 1.0, "slow_commit_ms": 2500}))
        .await;
    app.engine.drain_once().await.unwrap();
    // The lookup finds nothing yet; the resend meets a 503.
    app.faults(json!({"error_rate": 1.0, "error_status": 503}))
        .await;
    app.clock.advance(Duration::seconds(2));
    app.engine.drain_all().await.unwrap();
    let listed_before_commit = app.upstream_with_ref("PLG-STICKY").await.is_empty();
    app.faults(json!({})).await;
    let dead = step(&app, "PLG-STICKY", "create").await;
    assert_eq!(dead.state, "dead");
    assert!(
        dead.needs_lookup,
        "a 503 to the resend proves nothing of the first"
    );
    upstream_reaches(&app, "PLG-STICKY", 1).await;
    actions::act_on_step(&app.bridge, dead.id, StepAction::Retry, "operator:test")
        .await
        .unwrap();
    app.settle(5).await;
    assert_eq!(app.status("PLG-STICKY").await.sync_state, "synced");
    assert_eq!(
        app.upstream_with_ref("PLG-STICKY").await.len(),
        1,
        "filed once"
    );
    assert!(
        listed_before_commit,
        "the slow commit landed after the lookup"
    );
    app.finish().await;
}

// ----- 2. a backend that commits after the gateway gave up ----------------

/// nginx answers 504 at once; PHP commits 1.5 s later. No lookup and no
/// resend happen before the lookup delay, so the late commit is found.
#[tokio::test]
async fn a_write_that_commits_after_a_504_is_found_not_resent() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 120).await;
    app.submit("PLG-SC").await;
    app.faults(json!({"slow_commit_rate": 1.0, "slow_commit_ms": 1500}))
        .await;
    assert_eq!(app.engine.drain_once().await.unwrap(), 1);
    app.faults(json!({})).await;
    let waiting = step(&app, "PLG-SC", "create").await;
    assert_eq!(waiting.state, "pending");
    assert!(waiting.needs_lookup);
    let reason = waiting.waiting_reason.clone().unwrap_or_default();
    assert!(reason.contains("looked up, not resent"), "{reason}");
    let sent = lapor_bridge::clock::Clock::now(&app.clock);
    assert!(waiting.lookup_not_before.unwrap() >= sent + Duration::seconds(119));
    let attempts = app.attempts("PLG-SC").await;
    assert_eq!(attempts[0].2, Some(504));
    assert_eq!(attempts[0].3.as_deref(), Some("html_error"));
    // Well past any backoff, still within the delay: nothing is claimed.
    app.clock.advance(Duration::seconds(30));
    assert_eq!(app.engine.drain_once().await.unwrap(), 0);
    upstream_reaches(&app, "PLG-SC", 1).await;
    app.clock.advance(Duration::seconds(91));
    app.settle(5).await;
    assert_eq!(app.status("PLG-SC").await.sync_state, "synced");
    assert_eq!(app.upstream_with_ref("PLG-SC").await.len(), 1, "filed once");
    let outcomes: Vec<String> = app
        .attempts("PLG-SC")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(outcomes, ["unknown", "adopted"]);
    app.finish().await;
}

const INTAKE: &str = "edges-intake-token-aaaaaaaaaaa";
const OPERATOR: &str = "edges-operator-token-bbbbbbbbb";
const AUDITOR: &str = "edges-auditor-token-cccccccccc";

/// The complaint's page for an operator.
async fn complaint_page(app: &TestApp, local_ref: &str) -> String {
    let web = serve(app, INTAKE, OPERATOR, AUDITOR).await;
    let cookie = web.session(OPERATOR).await;
    let (status, page, _) = web.page(&format!("/complaints/{local_ref}"), &cookie).await;
    assert!(status.is_success(), "{status}: {page}");
    web.shutdown.cancel();
    page
}

/// The lookup delay is the step's waiting reason, in the API's step and on
/// the operator's page.
#[tokio::test]
async fn the_lookup_delay_shows_as_the_steps_waiting_reason() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 120).await;
    app.submit("PLG-WR").await;
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    app.engine.drain_once().await.unwrap();
    app.faults(json!({})).await;
    let reason = step(&app, "PLG-WR", "create")
        .await
        .waiting_reason
        .unwrap_or_default();
    assert!(reason.contains("looked up, not resent"), "{reason}");
    let page = complaint_page(&app, "PLG-WR").await;
    assert!(
        page.contains("diperiksa dulu, tidak dikirim ulang"),
        "the page shows it, in Bahasa Indonesia"
    );
    app.finish().await;
}

/// The same for a follow-up and a JSON 500.
#[tokio::test]
async fn a_followup_after_a_json_500_waits_for_the_delay_before_its_lookup() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 120).await;
    app.submit("PLG-SF").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-SF").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    pull(&app).await;
    actions::add_followup(
        &app.bridge,
        "PLG-SF",
        "Petugas sudah dijadwalkan.",
        false,
        "t",
    )
    .await
    .unwrap();
    app.faults(json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    app.engine.drain_all().await.unwrap();
    app.faults(json!({})).await;
    let waiting = step(&app, "PLG-SF", "followup").await;
    assert!(waiting.needs_lookup, "a 500 on a write may have committed");
    app.clock.advance(Duration::seconds(100));
    assert_eq!(app.engine.drain_once().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(21));
    app.settle(5).await;
    assert_eq!(app.status("PLG-SF").await.sync_state, "synced");
    let up = get_json(
        &app.http,
        format!("{}/_sim/complaints/{lapor_id}", app.sim.root_url()),
    )
    .await;
    assert_eq!(up["data"]["followups"].as_array().unwrap().len(), 1);
    app.finish().await;
}

/// A rescued step (its worker died mid-call) and a step given back at
/// shutdown wait out the delay too.
#[tokio::test]
async fn rescued_and_released_steps_wait_for_the_lookup_delay() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 120).await;
    app.submit("PLG-RS").await;
    app.submit("PLG-RL").await;
    let now = app.clock.now();
    let claimed = lapor_bridge::store::outbox::claim(&app.pool, "dead-worker", now, 30, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let released = claimed.iter().find(|c| c.local_ref == "PLG-RL").unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(
        lapor_bridge::store::outbox::release(&mut conn, released.id, released.fence, now, 120,)
            .await
            .unwrap()
    );
    drop(conn);
    app.clock.advance(Duration::seconds(31));
    app.engine.maintain().await.unwrap();
    for r in ["PLG-RS", "PLG-RL"] {
        let s = step(&app, r, "create").await;
        assert_eq!(s.state, "pending");
        assert!(s.needs_lookup, "{r}");
    }
    app.clock.advance(Duration::seconds(60));
    assert_eq!(app.engine.drain_once().await.unwrap(), 0);
    app.clock.advance(Duration::seconds(91));
    app.settle(5).await;
    for r in ["PLG-RS", "PLG-RL"] {
        assert_eq!(app.status(r).await.sync_state, "synced");
        assert_eq!(app.upstream_with_ref(r).await.len(), 1);
    }
    app.finish().await;
}

// ----- 3. copies we could not prevent are found and named -----------------

/// A backend slower than the delay: the lookup finds nothing, the create is
/// sent again, and then the first one lands. Pull and reconciliation name
/// both LAPOR! ids; the first stays linked.
#[tokio::test]
async fn a_copy_of_a_complaint_is_named_with_every_lapor_id() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 1).await;
    app.submit("PLG-DUP").await;
    app.faults(json!({"slow_commit_rate": 1.0, "slow_commit_ms": 2500}))
        .await;
    app.engine.drain_once().await.unwrap();
    app.faults(json!({})).await;
    app.clock.advance(Duration::seconds(2));
    app.settle(5).await;
    let linked = app.status("PLG-DUP").await.lapor_complaint_id.unwrap();
    upstream_reaches(&app, "PLG-DUP", 2).await;
    let ids: Vec<i64> = app
        .upstream_with_ref("PLG-DUP")
        .await
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    let copy = *ids.iter().find(|id| **id != linked).unwrap();

    let run = pull(&app).await;
    assert_eq!(run["summary"]["drift"]["duplicate_upstream"], 1, "{run}");
    let doc = app.status("PLG-DUP").await;
    assert_eq!(doc.sync_state, "conflict");
    assert_eq!(
        doc.lapor_complaint_id,
        Some(linked),
        "the first stays linked"
    );
    let reason = doc.conflict_reason.unwrap_or_default();
    assert!(
        reason.contains(&linked.to_string()) && reason.contains(&copy.to_string()),
        "{reason}"
    );
    assert!(reason.contains("archive"), "{reason}");
    let audit = audit_after(&app, "reconcile.conflict").await;
    assert!(
        audit
            .iter()
            .any(|a| a.to_string().contains(&copy.to_string()))
    );
    assert_eq!(
        metric(&app, "lapor_bridge_upstream_duplicates").await,
        "lapor_bridge_upstream_duplicates 1"
    );
    let page = complaint_page(&app, "PLG-DUP").await;
    assert!(
        page.contains(&copy.to_string()) && page.contains("archive"),
        "the page names the copy"
    );
    // Reconciliation finds the same and writes nothing new.
    let run = reconcile(&app).await;
    assert!(
        run["summary"]["drift"].get("duplicate_upstream").is_none(),
        "{run}"
    );
    assert_eq!(
        audit_after(&app, "reconcile.conflict").await.len(),
        audit.len()
    );
    app.finish().await;
}

/// Two upstream copies of one local follow-up are named the same way, and
/// the copy is not imported as a follow-up of its own.
#[tokio::test]
async fn a_copy_of_a_followup_is_named_not_imported() {
    let app = spawn_app_with(|s| s.bridge.lookup_delay_secs = 1).await;
    app.submit("PLG-FDUP").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-FDUP").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    actions::add_followup(&app.bridge, "PLG-FDUP", "Sudah kami tangani.", false, "t")
        .await
        .unwrap();
    app.faults(json!({"slow_commit_rate": 1.0, "slow_commit_ms": 2500}))
        .await;
    app.engine.drain_once().await.unwrap();
    app.faults(json!({})).await;
    app.clock.advance(Duration::seconds(2));
    app.settle(5).await;
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            let up = get_json(
                &app.http,
                format!("{}/_sim/complaints/{lapor_id}", app.sim.root_url()),
            )
            .await;
            up["data"]["followups"].as_array().map_or(0, Vec::len) == 2
        })
        .await
    );
    pull(&app).await;
    let doc = app.status("PLG-FDUP").await;
    assert_eq!(doc.sync_state, "conflict");
    let reason = doc.conflict_reason.unwrap_or_default();
    assert!(reason.contains("follow-up"), "{reason}");
    let local: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.followups")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(local, 1, "the copy is not imported");
    assert_eq!(
        metric(&app, "lapor_bridge_upstream_duplicates").await,
        "lapor_bridge_upstream_duplicates 1"
    );
    // A second pull and a reconciliation see nothing new.
    let run = reconcile(&app).await;
    assert_eq!(run["summary"]["applied"].get("followups_imported"), None);
    let local: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.followups")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(local, 1);
    app.finish().await;
}

// ----- 4. same text, different follow-ups ---------------------------------

/// A template posted on lapor.go.id earlier is not one of ours; two local
/// follow-ups with the same text, both answers lost, arrive exactly twice.
#[tokio::test]
async fn identical_followup_texts_each_arrive_once() {
    let app = spawn_app().await;
    app.submit("PLG-TPL").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-TPL").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    let text = "Laporan Anda sedang kami tindak lanjuti.";
    // Our own staff posted the template on lapor.go.id ten minutes ago.
    let staff = app
        .sim_post(
            &format!("/_sim/complaints/{lapor_id}/followups"),
            json!({"content": text, "institution_id": 101, "seconds_ago": 600}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..2 {
        actions::add_followup(&app.bridge, "PLG-TPL", text, false, "t")
            .await
            .unwrap();
    }
    app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    // Each follow-up: sent (answer lost), then looked up.
    for _ in 0..2 {
        app.engine.drain_all().await.unwrap();
        app.faults(json!({})).await;
        app.advance_to_next_due().await;
        app.engine.drain_all().await.unwrap();
        app.faults(json!({"drop_after_commit_rate": 1.0})).await;
    }
    app.faults(json!({})).await;
    app.settle(10).await;
    let up = get_json(
        &app.http,
        format!("{}/_sim/complaints/{lapor_id}", app.sim.root_url()),
    )
    .await;
    let same: Vec<&Value> = up["data"]["followups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["content"] == text)
        .collect();
    assert_eq!(same.len(), 3, "the staff's and our two: {up}");
    let linked: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT lapor_followup_id FROM lapor_bridge.followups WHERE origin = 'local' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(linked.len(), 2);
    assert!(linked.iter().all(Option::is_some));
    assert_ne!(linked[0], linked[1], "one to one");
    assert!(!linked.contains(&Some(staff)), "the staff's is not ours");
    // The staff's is imported by the pull as LAPOR!'s own.
    pull(&app).await;
    let imported: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT lapor_followup_id FROM lapor_bridge.followups WHERE origin = 'lapor'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(imported, [Some(staff)]);
    assert_eq!(app.status("PLG-TPL").await.conflict_reason, None);
    app.finish().await;
}

/// A follow-up that waits for verification was never sent: a template that
/// city staff post on lapor.go.id meanwhile is not taken for it, and ours
/// is still posted.
#[tokio::test]
async fn a_followup_never_sent_is_not_matched_with_a_staff_template() {
    let app = spawn_app().await;
    app.submit("PLG-WAIT").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-WAIT").await.lapor_complaint_id.unwrap();
    let text = "Laporan Anda sedang kami tindak lanjuti.";
    actions::add_followup(&app.bridge, "PLG-WAIT", text, false, "t")
        .await
        .unwrap();
    app.engine.drain_all().await.unwrap();
    assert!(
        step(&app, "PLG-WAIT", "followup")
            .await
            .waiting_reason
            .is_some_and(|w| w.contains("verify"))
    );
    app.verify_upstream(lapor_id).await;
    let staff = app
        .sim_post(
            &format!("/_sim/complaints/{lapor_id}/followups"),
            json!({"content": text, "institution_id": 101}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    pull(&app).await;
    app.settle(5).await;
    assert_eq!(app.status("PLG-WAIT").await.sync_state, "synced");
    let ours: Option<i64> = sqlx::query_scalar(
        "SELECT lapor_followup_id FROM lapor_bridge.followups WHERE origin = 'local'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        ours.is_some() && ours != Some(staff),
        "ours was posted: {ours:?}"
    );
    app.finish().await;
}

/// A follow-up delivered with every answer seen cannot have a copy: the same
/// template posted by staff soon after is imported, not flagged.
#[tokio::test]
async fn a_staff_template_after_a_clean_delivery_is_not_a_copy() {
    let app = spawn_app().await;
    app.submit("PLG-CLEAN").await;
    app.settle(5).await;
    let lapor_id = app.status("PLG-CLEAN").await.lapor_complaint_id.unwrap();
    app.verify_upstream(lapor_id).await;
    pull(&app).await;
    let text = "Laporan Anda sedang kami tindak lanjuti.";
    actions::add_followup(&app.bridge, "PLG-CLEAN", text, false, "t")
        .await
        .unwrap();
    app.settle(5).await;
    app.sim_post(
        &format!("/_sim/complaints/{lapor_id}/followups"),
        json!({"content": text, "institution_id": 101}),
    )
    .await;
    pull(&app).await;
    let doc = app.status("PLG-CLEAN").await;
    assert_eq!(doc.conflict_reason, None);
    let imported: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.followups WHERE origin = 'lapor'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(imported, 1);
    app.finish().await;
}

// ----- 5. a 403 is about one complaint -------------------------------------

#[tokio::test]
async fn a_403_kills_only_its_step_and_delivery_goes_on() {
    let app = spawn_app().await;
    for r in ["PLG-F403", "PLG-OK"] {
        app.submit(r).await;
    }
    app.settle(5).await;
    let forbidden = app.status("PLG-F403").await.lapor_complaint_id.unwrap();
    let fine = app.status("PLG-OK").await.lapor_complaint_id.unwrap();
    for id in [forbidden, fine] {
        app.verify_upstream(id).await;
    }
    app.faults(json!({"forbidden_complaints": [forbidden]}))
        .await;
    for r in ["PLG-F403", "PLG-OK"] {
        actions::add_followup(&app.bridge, r, "Sudah ditindaklanjuti.", false, "t")
            .await
            .unwrap();
    }
    app.settle(5).await;
    assert!(
        !app.bridge.gate.is_paused(),
        "a 403 does not pause delivery"
    );
    let dead = step(&app, "PLG-F403", "followup").await;
    assert_eq!(dead.state, "dead");
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("tidak memiliki akses"),
        "LAPOR!'s message: {error}"
    );
    assert_eq!(app.status("PLG-OK").await.sync_state, "synced");
    let attempts = app.attempts("PLG-F403").await;
    let last = attempts.last().unwrap();
    assert_eq!((last.2, last.3.as_deref()), (Some(403), Some("forbidden")));
    app.finish().await;
}

// ----- 6. an outcome after the lease was lost -----------------------------

/// A worker whose lease was rescued still gets LAPOR!'s id for its create:
/// the id is kept, and the new holder adopts it without a lookup.
#[tokio::test]
async fn a_late_outcome_with_a_lapor_id_is_kept_for_the_new_holder() {
    let app = spawn_app().await;
    app.submit("PLG-LATE").await;
    let old = app.replica();
    let now = app.clock.now();
    let claimed = lapor_bridge::store::outbox::claim(&app.pool, "slow-worker", now, 30, 10)
        .await
        .unwrap();
    app.clock.advance(Duration::seconds(31));
    app.engine.maintain().await.unwrap();
    // The slow worker's create goes through after all.
    old.deliver(claimed[0].clone()).await;
    let doc = app.status("PLG-LATE").await;
    let upstream = app.upstream_with_ref("PLG-LATE").await;
    assert_eq!(upstream.len(), 1);
    assert_eq!(doc.lapor_complaint_id, upstream[0]["id"].as_i64(), "kept");
    assert_eq!(
        audit_after(&app, "delivery.late_outcome_kept").await.len(),
        1
    );
    app.settle(5).await;
    assert_eq!(app.status("PLG-LATE").await.sync_state, "synced");
    assert_eq!(app.upstream_with_ref("PLG-LATE").await.len(), 1);
    let outcomes: Vec<String> = app
        .attempts("PLG-LATE")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(outcomes, ["lease_lost", "adopted"]);
    app.finish().await;
}

// ----- 7. jobs cannot leak a lock -------------------------------------------

async fn advisory_locks(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn open_runs(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.job_runs WHERE finished_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Starts a reconciliation that hangs on a slow LAPOR!, and answers once
/// it has its row and a call on the wire.
async fn hanging_reconcile(
    app: &TestApp,
    jobs: std::sync::Arc<Jobs>,
) -> tokio::task::JoinHandle<Result<Value, lapor_bridge::inbound::JobError>> {
    app.submit("PLG-JOB").await;
    app.settle(5).await;
    app.faults(json!({"latency_ms": [30000, 30000]})).await;
    let task = tokio::spawn(async move { jobs.reconcile("test").await });
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            let stats = get_json(&app.http, format!("{}/_sim/stats", app.sim.root_url())).await;
            open_runs(app).await == 1 && stats["in_flight"].as_u64() >= Some(1)
        })
        .await
    );
    assert_eq!(advisory_locks(app).await, 1);
    task
}

/// An on-demand run whose caller goes away (its future is dropped, as when
/// an HTTP client disconnects) leaves no lock and no run marked running.
#[tokio::test]
async fn a_run_whose_caller_goes_away_leaks_no_lock() {
    let app = spawn_app().await;
    let jobs = std::sync::Arc::new(Jobs::new(app.bridge.clone()));
    let task = hanging_reconcile(&app, jobs.clone()).await;
    task.abort();
    let _ = task.await;
    assert!(
        eventually(std::time::Duration::from_secs(10), || async {
            advisory_locks(&app).await == 0 && open_runs(&app).await == 0
        })
        .await,
        "locks {} open runs {}",
        advisory_locks(&app).await,
        open_runs(&app).await
    );
    let error: Option<String> =
        sqlx::query_scalar("SELECT error FROM lapor_bridge.job_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(error.as_deref(), Some("aborted"));
    app.faults(json!({})).await;
    // The next scheduled run is not refused as busy.
    jobs.run(lapor_bridge::inbound::Job::Reconcile, "schedule", false)
        .await
        .unwrap();
    app.finish().await;
}

/// Shutdown stops a run in flight: it ends at once, marked aborted, with
/// its lock released, and `stop` returns.
#[tokio::test]
async fn shutdown_stops_a_run_in_flight() {
    let app = spawn_app().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let jobs = std::sync::Arc::new(Jobs::with_shutdown(app.bridge.clone(), shutdown.clone()));
    let task = hanging_reconcile(&app, jobs.clone()).await;
    shutdown.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the run stops at once")
        .unwrap();
    assert!(
        matches!(result, Err(lapor_bridge::inbound::JobError::Aborted(_))),
        "{result:?}"
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), jobs.stop())
        .await
        .expect("stop returns");
    assert_eq!(open_runs(&app).await, 0, "marked aborted, not running");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            advisory_locks(&app).await == 0
        })
        .await
    );
    app.finish().await;
}
