//! Reporter identity under UU 27/2022: checked on submit, only ciphertext at
//! rest, never copied, shown by role and audited, erased on request and
//! after retention, re-encrypted under a new key, reported.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use common::*;
use lapor_bridge::actions::{self, ActionError};
use lapor_bridge::app::Daemon;
use lapor_bridge::bridge::Bridge;
use lapor_bridge::clock::{Clock, SystemClock};
use lapor_bridge::config::Settings;
use lapor_bridge::inbound::Jobs;
use lapor_bridge::pii::task::{self, TaskError};
use lapor_bridge::pii::{Identity, Keyring, PiiKey, ReporterState};
use lapor_bridge::store::{audit, complaints};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const INTAKE: &str = "pii-intake-token-aaaaaaaaaaaa";
const OPERATOR: &str = "pii-operator-token-bbbbbbbbbb";
const AUDITOR: &str = "pii-auditor-token-cccccccccccc";

/// A reporter whose every value is distinctive enough to find anywhere.
fn reporter() -> Value {
    json!({
        "name": "Kusumawardhani Prameswari",
        "phone": "081298765432",
        "email": "prameswari.kusuma@contoh.id",
        "nik": "3171015708900042",
        "address": "Jl. Cempaka Putih Raya No. 77, Jakarta Pusat"
    })
}

/// The strings that must never show outside the ciphertext.
fn reporter_values() -> Vec<String> {
    let mut values: Vec<String> = reporter()
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    values.extend(
        [
            "Prameswari",
            "Cempaka Putih",
            "98765432",
            "prameswari.kusuma",
        ]
        .map(String::from),
    );
    values
}

fn doc_with_reporter(local_ref: &str, reporter: Value) -> Value {
    let mut doc = complaint_doc(local_ref);
    doc["reporter"] = reporter;
    doc
}

/// Submits straight through the SQL function, as an application sharing
/// the database does.
async fn submit_sql(pool: &sqlx::PgPool, doc: &Value) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1)")
        .bind(doc)
        .fetch_one(pool)
        .await
}

fn keyring(key: &str, old: &[&str]) -> Keyring {
    Keyring::new(
        PiiKey::from_base64("BRIDGE_PII_KEY", key).unwrap(),
        old.iter()
            .map(|k| PiiKey::from_base64("BRIDGE_PII_OLD_KEYS", k).unwrap())
            .collect(),
    )
}

async fn row(pool: &sqlx::PgPool, local_ref: &str) -> complaints::ComplaintRow {
    complaints::by_ref(pool, local_ref).await.unwrap().unwrap()
}

async fn audit_count(pool: &sqlx::PgPool, action: &str, local_ref: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.audit_log WHERE action = $1 AND local_ref = $2",
    )
    .bind(action)
    .bind(local_ref)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn pg_dump_bin() -> String {
    if std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .is_ok()
    {
        return "pg_dump".into();
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().expect("a pg_dump binary").display().to_string()
}

/// The whole database, schema and data, as `pg_dump` writes it.
fn pg_dump(url: &str) -> String {
    let out = std::process::Command::new(pg_dump_bin())
        .args(["--no-owner", "-d", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_absent(haystack: &str, what: &str) {
    for v in reporter_values() {
        assert!(!haystack.contains(&v), "{v:?} found in {what}");
    }
}

// 1. What a reporter is -------------------------------------------------------------------

#[tokio::test]
async fn each_reporter_field_is_checked_by_the_one_submit_function() {
    let app = spawn_app().await;
    let cases: [(&str, Value); 12] = [
        ("reporter.nik", json!({"nik": "317101570890004"})),
        ("reporter.nik", json!({"nik": "31710157089000a2"})),
        ("reporter.nik", json!({"nik": "9971015708900042"})),
        ("reporter.nik", json!({"nik": "3171019908900042"})),
        ("reporter.nik", json!({"nik": "3171015713900042"})),
        ("reporter.nik", json!({"nik": "3171015708900000"})),
        ("reporter.phone", json!({"phone": "0812-abc"})),
        ("reporter.email", json!({"email": "prameswari.contoh.id"})),
        ("reporter.address", json!({"address": "x".repeat(501)})),
        ("reporter.name", json!({"name": "Siti\u{7}Aminah"})),
        ("reporter.name", json!({"name": 5})),
        ("reporter.age", json!({"age": "30"})),
    ];
    for (i, (field, reporter)) in cases.iter().enumerate() {
        let doc = doc_with_reporter(&format!("PLG-BAD-{i}"), reporter.clone());
        // Through the API's action ...
        match actions::submit(&app.bridge, &doc, "test").await {
            Err(ActionError::Invalid(errors)) => {
                assert_eq!(errors.keys().collect::<Vec<_>>(), vec![field], "{reporter}")
            }
            other => panic!("{reporter}: {other:?}"),
        }
        // ... and straight through SQL: the same function answers.
        let err = submit_sql(&app.pool, &doc).await.unwrap_err();
        let db = err.as_database_error().unwrap();
        assert_eq!(db.code().as_deref(), Some("LB422"));
        let pg = db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .unwrap();
        assert!(pg.detail().unwrap().contains(field), "{reporter}: {pg:?}");
    }
    // All optional; a woman's NIK (day + 40), spaces in a phone, an address
    // over two lines are fine.
    for (i, reporter) in [
        json!(null),
        json!({}),
        json!({"name": null, "nik": null}),
        json!({"nik": "3171015708900042", "phone": "+62 812-9876-5432",
               "address": "Jl. Cempaka\nJakarta"}),
        reporter(),
    ]
    .into_iter()
    .enumerate()
    {
        let doc = doc_with_reporter(&format!("PLG-OK-{i}"), reporter.clone());
        let (created, _) = actions::submit(&app.bridge, &doc, "test")
            .await
            .unwrap_or_else(|e| panic!("{reporter}: {e:?}"));
        assert!(created);
    }
    let r = row(&app.pool, "PLG-OK-0").await;
    assert!(r.reporter_ciphertext.is_none() && !r.reporter_staged);
    app.finish().await;
}

// 2 and 3. Encrypted at rest, never copied ---------------------------------------------------

#[tokio::test]
async fn only_ciphertext_is_stored_and_no_copy_reaches_any_table_or_lapor() {
    let app = spawn_app().await;
    let keyring = app.bridge.pii.clone().unwrap();
    // Through the API's path: sealed in the submitting transaction.
    actions::submit(
        &app.bridge,
        &doc_with_reporter("PLG-PII-1", reporter()),
        "test",
    )
    .await
    .unwrap();
    let r = row(&app.pool, "PLG-PII-1").await;
    assert!(!r.reporter_staged);
    let expected_id = hex::encode(
        &Sha256::digest(
            base64_decode(TEST_PII_KEY), // the key's bytes
        )[..4],
    );
    assert_eq!(r.reporter_key_id.as_deref(), Some(expected_id.as_str()));
    let ciphertext = r.reporter_ciphertext.clone().unwrap();
    assert_eq!(
        keyring
            .open("PLG-PII-1", &expected_id, &ciphertext)
            .unwrap(),
        serde_json::from_value::<Identity>(reporter()).unwrap()
    );

    // Straight through SQL: staged, then sealed by the daemon's pass.
    let mut secret = doc_with_reporter("PLG-PII-2", reporter());
    secret["is_secret"] = json!(true);
    submit_sql(&app.pool, &secret).await.unwrap();
    assert!(row(&app.pool, "PLG-PII-2").await.reporter_staged);
    assert_eq!(task::seal_pending(&app.pool, &keyring).await.unwrap(), 1);
    let r2 = row(&app.pool, "PLG-PII-2").await;
    assert!(!r2.reporter_staged && r2.reporter_ciphertext.is_some());

    // Deliver, follow up, verify, pull, close, reconcile.
    app.settle(20).await;
    actions::add_followup(
        &app.bridge,
        "PLG-PII-1",
        "Mohon segera ditangani.",
        false,
        "test",
    )
    .await
    .unwrap();
    for r in ["PLG-PII-1", "PLG-PII-2"] {
        let id = app.status(r).await.lapor_complaint_id.unwrap();
        app.verify_upstream(id).await;
    }
    app.settle(20).await;
    let jobs = Jobs::new(app.bridge.clone());
    let id = app.status("PLG-PII-2").await.lapor_complaint_id.unwrap();
    app.sim_post(
        &format!("/_sim/complaints/{id}/status"),
        json!({"status_name": "Selesai", "force": true}),
    )
    .await;
    app.clock.set(Utc::now() + chrono::Duration::seconds(30));
    jobs.pull("test").await.unwrap();
    jobs.reconcile("test").await.unwrap();
    assert!(row(&app.pool, "PLG-PII-2").await.closed_at.is_some());
    assert_eq!(app.status("PLG-PII-1").await.sync_state, "synced");

    // What LAPOR! received: content, tags, everything.
    let upstream = app.upstream().await;
    assert_eq!(upstream.len(), 2);
    assert_absent(&serde_json::to_string(&upstream).unwrap(), "LAPOR!");

    // The database, every table, as a backup would hold it.
    let dump = pg_dump(&app.db.url);
    assert!(dump.contains("PLG-PII-1") && dump.contains("complaint.submitted"));
    assert_absent(&dump, "pg_dump");

    // A ciphertext moved to another row does not open there.
    sqlx::query(
        "UPDATE lapor_bridge.complaints c SET reporter_ciphertext = o.reporter_ciphertext
           FROM lapor_bridge.complaints o
          WHERE c.local_ref = 'PLG-PII-1' AND o.local_ref = 'PLG-PII-2'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let moved = row(&app.pool, "PLG-PII-1").await;
    let view = lapor_bridge::pii::view(Some(&keyring), &moved, true);
    assert_eq!(view.state, ReporterState::Unreadable);
    assert!(view.identity.is_empty());
    app.finish().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A database from before: plain-text reporters in `complaints.reporter`.
async fn database_with_plain_text_reporters(db: &TestDb) -> sqlx::PgPool {
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(db.url.clone());
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    sqlx::query("CREATE SCHEMA IF NOT EXISTS lapor_bridge")
        .execute(&pool)
        .await
        .unwrap();
    let all = &lapor_bridge::db::MIGRATOR;
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version < 20261204200000)
                .cloned()
                .collect(),
        ),
        ignore_missing: all.ignore_missing,
        locking: all.locking,
        no_tx: all.no_tx,
        table_name: all.table_name.clone(),
        create_schemas: all.create_schemas.clone(),
    };
    before.run(&pool).await.unwrap();
    let old = reporter();
    let doc = doc_with_reporter("PLG-OLD-1", old.clone());
    sqlx::query(
        "INSERT INTO lapor_bridge.complaints (local_ref, origin, submit_doc, title, content, reporter)
         VALUES ('PLG-OLD-1', 'local', $1, 'Lama', 'Pengaduan dari sebelum enkripsi.', $2),
                ('PLG-OLD-2', 'local', NULL, 'Tanpa pelapor', 'Pengaduan tanpa pelapor.', NULL)",
    )
    .bind(&doc)
    .bind(&old)
    .execute(&pool)
    .await
    .unwrap();
    pool
}

#[tokio::test]
async fn run_refuses_without_a_key_and_encrypts_old_plain_text_before_serving() {
    lapor_bridge::lapor::client::install_crypto_provider();
    let db = TestDb::create().await;
    let sim = lapor_bridge::simulator::spawn(Default::default())
        .await
        .unwrap();
    let pool = database_with_plain_text_reporters(&db).await;
    assert_eq!(reporter_values().len(), 9);
    assert!(pg_dump(&db.url).contains("Kusumawardhani Prameswari"));

    // Without a key: refused, with the way to make one.
    let mut settings = test_settings(&db.url, &sim.base_url());
    settings.pii.key = None;
    let err = Daemon::start(
        settings,
        Arc::new(SystemClock),
        CancellationToken::new(),
        false,
    )
    .await
    .err()
    .expect("run refuses without a key")
    .to_string();
    assert!(
        err.contains("BRIDGE_PII_KEY") && err.contains("openssl rand -base64 32"),
        "{err}"
    );

    // With it: the migration staged the plain text and dropped the column;
    // start encrypted it before returning (before serving).
    let shutdown = CancellationToken::new();
    let daemon = Daemon::start(
        test_settings(&db.url, &sim.base_url()),
        Arc::new(SystemClock),
        shutdown.clone(),
        false,
    )
    .await
    .unwrap();
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = 'lapor_bridge' AND table_name = 'complaints' AND column_name LIKE 'reporter%'
          ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!columns.contains(&"reporter".to_string()), "{columns:?}");
    let old = row(&pool, "PLG-OLD-1").await;
    assert!(!old.reporter_staged);
    let keyring = daemon.bridge.pii.clone().unwrap();
    let opened = keyring
        .open(
            "PLG-OLD-1",
            old.reporter_key_id.as_deref().unwrap(),
            old.reporter_ciphertext.as_deref().unwrap(),
        )
        .unwrap();
    assert_eq!(opened.name.as_deref(), Some("Kusumawardhani Prameswari"));
    assert_eq!(opened.nik.as_deref(), Some("3171015708900042"));
    let empty = row(&pool, "PLG-OLD-2").await;
    assert!(empty.reporter_ciphertext.is_none() && !empty.reporter_staged);
    // The idempotency document keeps field names only.
    let kept: Value = sqlx::query_scalar(
        "SELECT submit_doc -> 'reporter' FROM lapor_bridge.complaints WHERE local_ref = 'PLG-OLD-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, json!(["address", "email", "name", "nik", "phone"]));
    assert_absent(&pg_dump(&db.url), "pg_dump after the upgrade");

    shutdown.cancel();
    daemon.wait().await;
    pool.close().await;
    sim.shutdown();
    db.drop_db().await;
}

#[tokio::test]
async fn the_daemon_task_seals_sql_submissions_at_once_and_stops_on_shutdown() {
    let app = spawn_app().await;
    let keyring = app.bridge.pii.clone().unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(task::run(app.bridge.clone(), keyring, shutdown.clone()));
    submit_sql(&app.pool, &doc_with_reporter("PLG-TASK", reporter()))
        .await
        .unwrap();
    // Well before the task's periodic check: the NOTIFY wakes it.
    let sealed = eventually(Duration::from_secs(10), || async {
        !row(&app.pool, "PLG-TASK").await.reporter_staged
    })
    .await;
    assert!(sealed, "the staged reporter was not encrypted");
    assert!(
        row(&app.pool, "PLG-TASK")
            .await
            .reporter_ciphertext
            .is_some()
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the task stops on shutdown")
        .unwrap();
    app.finish().await;
}

// 4 and 5. Who sees it; erasure --------------------------------------------------------------

#[tokio::test]
async fn each_role_sees_what_it_may_and_every_clear_view_is_audited() {
    let app = spawn_app().await;
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    let (status, answer) = web
        .post(
            "/api/v1/complaints",
            INTAKE,
            doc_with_reporter("PLG-SEE", reporter()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // Intake: masked.
    assert_eq!(answer["reporter"]["masked"], true);
    assert_eq!(answer["reporter"]["name"], "Kusumawardhani P***");
    assert_eq!(answer["reporter"]["phone"], "0812****432");
    assert_eq!(answer["reporter"]["email"], "p***@contoh.id");
    assert_eq!(answer["reporter"]["nik"], "3171********0042");
    assert_eq!(answer["reporter"]["address"], "Jl. ***");
    let mut anon = doc_with_reporter("PLG-SEE-ANON", reporter());
    anon["is_anonymous"] = json!(true);
    let (status, answer) = web.post("/api/v1/complaints", INTAKE, anon).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_absent(&answer.to_string(), "an intake answer");
    // A bad reporter: 422 naming the field.
    let (status, answer) = web
        .post(
            "/api/v1/complaints",
            INTAKE,
            doc_with_reporter("PLG-SEE-BAD", json!({"nik": "12345"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["fields"]["reporter.nik"].is_array(), "{answer}");
    assert_eq!(audit_count(&app.pool, "pii_viewed", "PLG-SEE").await, 0);

    // Operator, one complaint: in clear, and audited.
    let (status, doc) = web.get("/api/v1/complaints/PLG-SEE", OPERATOR).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["reporter"]["masked"], false);
    assert_eq!(doc["reporter"]["state"], "held");
    for (k, v) in reporter().as_object().unwrap() {
        assert_eq!(&doc["reporter"][k], v);
    }
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM lapor_bridge.audit_log WHERE action = 'pii_viewed' AND local_ref = 'PLG-SEE'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(actors, vec!["token:ops".to_string()]);
    // Lists and timelines: masked, not audited.
    let (_, list) = web.get("/api/v1/complaints", OPERATOR).await;
    let (_, admin_list) = web.get("/api/v1/complaints", ADMIN_TOKEN).await;
    let (_, timeline) = web
        .get("/api/v1/complaints/PLG-SEE/timeline", OPERATOR)
        .await;
    for shown in [&list, &admin_list, &timeline] {
        assert_absent(&shown.to_string(), "a list");
    }
    assert_eq!(list["items"][0]["reporter"]["masked"], true);
    assert_eq!(audit_count(&app.pool, "pii_viewed", "PLG-SEE").await, 1);
    // Anonymous: masked for the operator; admins see it, audited.
    let (_, doc) = web.get("/api/v1/complaints/PLG-SEE-ANON", OPERATOR).await;
    assert_eq!(doc["reporter"]["masked"], true);
    assert_absent(&doc.to_string(), "an anonymous complaint to an operator");
    assert_eq!(
        audit_count(&app.pool, "pii_viewed", "PLG-SEE-ANON").await,
        0
    );
    let (_, doc) = web
        .get("/api/v1/complaints/PLG-SEE-ANON", ADMIN_TOKEN)
        .await;
    assert_eq!(doc["reporter"]["name"], "Kusumawardhani Prameswari");
    assert_eq!(
        audit_count(&app.pool, "pii_viewed", "PLG-SEE-ANON").await,
        1
    );
    // Auditors and intake tokens do not open a complaint.
    for token in [AUDITOR, INTAKE] {
        let (status, _) = web.get("/api/v1/complaints/PLG-SEE", token).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    // The dashboard: the operator's page shows it, audited; anonymous masked.
    let ops = web.session(OPERATOR).await;
    let (status, page, _) = web.page("/complaints/PLG-SEE", &ops).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Kusumawardhani Prameswari") && page.contains("3171015708900042"));
    assert!(!page.contains("erase-reporter"), "only admins erase");
    assert_eq!(audit_count(&app.pool, "pii_viewed", "PLG-SEE").await, 2);
    let (_, page, _) = web.page("/complaints/PLG-SEE-ANON", &ops).await;
    assert_absent(&page, "the anonymous complaint's page to an operator");
    assert!(page.contains("Kusumawardhani P***"));
    let (_, list, _) = web.page("/complaints", &ops).await;
    assert_absent(&list, "the dashboard's list");
    assert!(list.contains("Kusumawardhani P***"), "masked in the list");
    assert_eq!(
        audit_count(&app.pool, "pii_viewed", "PLG-SEE-ANON").await,
        1
    );
    // The audit log itself holds no identity.
    let (_, log) = web.get("/api/v1/audit?format=jsonl", AUDITOR).await;
    assert_absent(&log.to_string(), "the audit log");

    web.shutdown.cancel();
    app.finish().await;
}

#[tokio::test]
async fn erasure_is_for_good_audited_idempotent_and_keeps_the_chain_valid() {
    let app = spawn_app().await;
    let web = serve(&app, INTAKE, OPERATOR, AUDITOR).await;
    for r in ["PLG-ERASE-API", "PLG-ERASE-WEB", "PLG-ERASE-CLI"] {
        app.submit_doc(&doc_with_reporter(r, reporter())).await;
    }
    app.settle(20).await;
    let path = "/api/v1/complaints/PLG-ERASE-API/erase";
    let (status, _) = web.post(path, OPERATOR, json!({"reason": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = web.post(path, ADMIN_TOKEN, json!({"reason": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["fields"]["reason"].is_array(), "{answer}");
    let (status, answer) = web.post(path, ADMIN_TOKEN, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        row(&app.pool, "PLG-ERASE-API")
            .await
            .reporter_ciphertext
            .is_some()
    );
    let (status, answer) = web
        .post(
            path,
            ADMIN_TOKEN,
            json!({"reason": "Permintaan subjek data 2026-12-04"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["already_erased"], false);
    let r = row(&app.pool, "PLG-ERASE-API").await;
    assert!(r.reporter_ciphertext.is_none() && r.reporter_key_id.is_none() && !r.reporter_staged);
    assert_eq!(r.reporter_erasure.as_deref(), Some("request"));
    assert!(r.reporter_erased_at.is_some());
    // The complaint stays, delivered and readable; the reporter reads erased.
    let (status, doc) = web
        .get("/api/v1/complaints/PLG-ERASE-API", ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["sync_state"], "synced");
    assert_eq!(doc["reporter"]["state"], "erased");
    assert_eq!(doc["reporter"]["erasure"], "request");
    assert!(doc["reporter"].get("name").is_none());
    assert_eq!(
        audit_count(&app.pool, "pii_viewed", "PLG-ERASE-API").await,
        0
    );
    // Audited with actor and reason; a second request changes nothing.
    let entry: (String, Value) = sqlx::query_as(
        "SELECT actor, after FROM lapor_bridge.audit_log WHERE action = 'pii_erased' AND local_ref = 'PLG-ERASE-API'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(entry.0, "token:admin");
    assert_eq!(entry.1["reason"], "Permintaan subjek data 2026-12-04");
    assert_eq!(entry.1["erasure"], "request");
    let (status, again) = web.post(path, ADMIN_TOKEN, json!({"reason": "lagi"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["already_erased"], true);
    assert_eq!(
        audit_count(&app.pool, "pii_erased", "PLG-ERASE-API").await,
        1
    );
    let (status, _) = web
        .post(
            "/api/v1/complaints/PLG-NOPE/erase",
            ADMIN_TOKEN,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The dashboard: a confirmation page; without the box ticked, nothing.
    let admin = web.session(ADMIN_TOKEN).await;
    let (_, page, _) = web.page("/complaints/PLG-ERASE-WEB", &admin).await;
    assert!(
        page.contains("href=\"/complaints/PLG-ERASE-WEB/erase\""),
        "{page}"
    );
    let (status, form, _) = web.page("/complaints/PLG-ERASE-WEB/erase", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("type=\"checkbox\" name=\"confirm\"") && form.contains("required"));
    let csrf = csrf_in(&form);
    let target = "/complaints/PLG-ERASE-WEB/erase";
    let (status, location) = web
        .form(
            target,
            &admin,
            &[("csrf", &csrf), ("reason", "Permintaan warga")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("/erase?missing=1"), "{location}");
    assert!(
        row(&app.pool, "PLG-ERASE-WEB")
            .await
            .reporter_ciphertext
            .is_some()
    );
    let ops = web.session(OPERATOR).await;
    let (_, ops_form, _) = web.page("/complaints/PLG-ERASE-WEB", &ops).await;
    let (status, _) = web
        .form(
            target,
            &ops,
            &[
                ("csrf", &csrf_in(&ops_form)),
                ("reason", "x"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location) = web
        .form(
            target,
            &admin,
            &[
                ("csrf", &csrf),
                ("reason", "Permintaan warga"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/complaints/PLG-ERASE-WEB?done=erased");
    assert!(
        row(&app.pool, "PLG-ERASE-WEB")
            .await
            .reporter_erased_at
            .is_some()
    );
    let (_, page, _) = web.page(&location, &admin).await;
    assert!(page.contains("id=\"flash\"") && !page.contains("Kusumawardhani"));

    // The command line: erase, then report.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
            .args(args)
            .env("DATABASE_URL", &app.db.url)
            .env("LAPOR_BASE_URL", app.sim.base_url())
            .env("BRIDGE_PII_KEY", TEST_PII_KEY)
            .env("USER", "dpo")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = cli(&["pii", "erase", "PLG-ERASE-CLI", "--reason", ""]);
    assert!(!ok && err.contains("--reason"), "{err}");
    let (ok, out, err) = cli(&["pii", "erase", "PLG-ERASE-CLI", "--reason", "Surat 12/2026"]);
    assert!(ok, "{out}{err}");
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM lapor_bridge.audit_log WHERE action = 'pii_erased' AND local_ref = 'PLG-ERASE-CLI'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "cli:dpo");
    let (ok, out, err) = cli(&["pii", "report", "--json"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["holding"], 0, "{report}");
    assert_eq!(report["erased_on_request"], 3);
    assert_eq!(report["erased_by_retention"], 0);
    assert_eq!(report["retention_days"], 730);

    // Nothing of the identity is left, and the chain still verifies.
    assert_absent(&pg_dump(&app.db.url), "pg_dump after erasure");
    let v = audit::verify(&app.pool).await.unwrap();
    assert!(v.is_ok(), "{v:?}");
    let (ok, out, _) = cli(&["audit", "verify"]);
    assert!(ok && out.contains("\"ok\": true"), "{out}");

    web.shutdown.cancel();
    app.finish().await;
}

// 6. Retention ---------------------------------------------------------------------------------

#[tokio::test]
async fn retention_erases_closed_complaints_once_across_replicas() {
    let app = spawn_app_with(|s| s.pii.retention_days = 30).await;
    for r in ["PLG-RET-DONE", "PLG-RET-REJECTED", "PLG-RET-OPEN"] {
        app.submit_doc(&doc_with_reporter(r, reporter())).await;
    }
    app.settle(20).await;
    for (r, status) in [("PLG-RET-DONE", "Selesai"), ("PLG-RET-REJECTED", "Ditolak")] {
        let id = app.status(r).await.lapor_complaint_id.unwrap();
        app.sim_post(
            &format!("/_sim/complaints/{id}/status"),
            json!({"status_name": status, "force": true}),
        )
        .await;
    }
    app.clock.set(Utc::now() + chrono::Duration::seconds(30));
    Jobs::new(app.bridge.clone()).pull("test").await.unwrap();
    let closed_at = row(&app.pool, "PLG-RET-DONE").await.closed_at.unwrap();
    assert!(row(&app.pool, "PLG-RET-REJECTED").await.closed_at.is_some());
    assert!(row(&app.pool, "PLG-RET-OPEN").await.closed_at.is_none());

    // Not yet: 29 days after closing.
    app.clock.set(closed_at + chrono::Duration::days(29));
    assert_eq!(
        task::enforce_retention(&app.bridge, app.clock.now())
            .await
            .unwrap(),
        0
    );
    // 30 days on, two replicas at once: each identity erased exactly once.
    app.clock
        .set(closed_at + chrono::Duration::days(30) + chrono::Duration::minutes(1));
    let other = Bridge::new(
        app.pool.clone(),
        (*app.bridge.settings).clone(),
        Arc::new(app.clock.clone()),
    )
    .unwrap();
    let now = app.clock.now();
    let (a, b) = tokio::join!(
        task::enforce_retention(&app.bridge, now),
        task::enforce_retention(&other, now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 2);
    for r in ["PLG-RET-DONE", "PLG-RET-REJECTED"] {
        let gone = row(&app.pool, r).await;
        assert!(gone.reporter_ciphertext.is_none());
        assert_eq!(gone.reporter_erasure.as_deref(), Some("retention"));
        let after: Value = sqlx::query_scalar(
            "SELECT after FROM lapor_bridge.audit_log WHERE action = 'pii_erased' AND local_ref = $1",
        )
        .bind(r)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(after["reason"], "retention");
    }
    assert!(
        row(&app.pool, "PLG-RET-OPEN")
            .await
            .reporter_ciphertext
            .is_some()
    );
    assert_eq!(
        task::enforce_retention(&app.bridge, now).await.unwrap(),
        0,
        "nothing twice"
    );
    let report = task::report(&app.bridge).await.unwrap();
    assert_eq!(report.counts.erased_by_retention, 2);
    assert_eq!(report.counts.holding, 1);
    assert_eq!(
        report.counts.oldest_local_ref.as_deref(),
        Some("PLG-RET-OPEN")
    );

    // 0 days: erased at the very next check after closing.
    let mut zero = (*app.bridge.settings).clone();
    zero.pii.retention_days = 0;
    let zero = Bridge::new(app.pool.clone(), zero, Arc::new(app.clock.clone())).unwrap();
    sqlx::query(
        "UPDATE lapor_bridge.complaints SET closed_at = $1 WHERE local_ref = 'PLG-RET-OPEN'",
    )
    .bind(now)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(task::enforce_retention(&zero, now).await.unwrap(), 1);
    assert!(audit::verify(&app.pool).await.unwrap().is_ok());
    app.finish().await;
}

// 2 and 7. Rotation and the report ------------------------------------------------------------

const NEW_KEY: &str = "bmV3LXBpaS1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM=";

#[tokio::test]
async fn rotation_reencrypts_everything_so_the_old_key_is_no_longer_needed() {
    let app = spawn_app().await;
    for r in ["PLG-ROT-1", "PLG-ROT-2"] {
        app.submit_doc(&doc_with_reporter(r, reporter())).await;
    }
    submit_sql(&app.pool, &doc_with_reporter("PLG-ROT-3", reporter()))
        .await
        .unwrap();
    let old_id = app.bridge.pii.as_ref().unwrap().current_id().to_string();

    // The new key alone cannot open what the old one sealed: run refuses.
    let only_new = keyring(NEW_KEY, &[]);
    assert!(matches!(
        task::check_keys(&app.pool, &only_new).await,
        Err(TaskError::MissingKeys(ids)) if ids == old_id
    ));
    let mut settings = (*app.bridge.settings).clone();
    settings.pii.key = Some(SecretString::from(NEW_KEY));
    settings.bridge.listen = "127.0.0.1:0".parse().unwrap();
    let err = Daemon::start(
        settings.clone(),
        Arc::new(SystemClock),
        CancellationToken::new(),
        false,
    )
    .await
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("BRIDGE_PII_OLD_KEYS"),
        "{err:#}"
    );

    // New key with the old one beside it: rotate.
    settings.pii.old_keys = vec![SecretString::from(TEST_PII_KEY)];
    let rotating = Bridge::new(
        app.pool.clone(),
        settings.clone(),
        Arc::new(app.clock.clone()),
    )
    .unwrap();
    let before = task::report(&rotating).await.unwrap();
    assert_eq!(before.key_ids.len(), 1);
    assert_eq!(before.counts.staged, 1);
    let rotation = task::rotate(&rotating, rotating.pii.as_ref().unwrap(), "cli:test")
        .await
        .unwrap();
    assert_eq!((rotation.sealed, rotation.reencrypted), (1, 2));
    assert_eq!(rotation.key_id, only_new.current_id());
    let after = task::report(&rotating).await.unwrap();
    assert_eq!(after.key_ids.len(), 1);
    assert_eq!(after.key_ids[0].key_id, only_new.current_id());
    assert_eq!(after.counts.holding, 3);

    // The old key is no longer needed: the new one alone opens everything.
    task::check_keys(&app.pool, &only_new).await.unwrap();
    for r in ["PLG-ROT-1", "PLG-ROT-2", "PLG-ROT-3"] {
        let view = lapor_bridge::pii::view(Some(&only_new), &row(&app.pool, r).await, true);
        assert_eq!(view.state, ReporterState::Held, "{r}");
        assert_eq!(view.identity.nik.as_deref(), Some("3171015708900042"));
    }
    settings.pii.old_keys.clear();
    let shutdown = CancellationToken::new();
    let daemon = Daemon::start(settings, Arc::new(SystemClock), shutdown.clone(), false)
        .await
        .unwrap();
    shutdown.cancel();
    daemon.wait().await;
    assert!(audit_count_any(&app.pool, "pii_rotated").await == 1);
    app.finish().await;
}

async fn audit_count_any(pool: &sqlx::PgPool, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(pool)
        .await
        .unwrap()
}

// 3. Never in logs or metrics -----------------------------------------------------------------

/// `lapor-bridge run` as deployed, logging at debug level: a reporter
/// submitted through the API and through SQL, delivered, shown to an admin
/// and erased, appears in none of its log lines and in no metric.
#[tokio::test]
async fn the_running_daemon_never_logs_or_measures_a_reporter() {
    lapor_bridge::lapor::client::install_crypto_provider();
    let db = TestDb::create().await;
    let sim = lapor_bridge::simulator::spawn(Default::default())
        .await
        .unwrap();
    // Without a key the binary says how to make one, and exits 2.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
        .arg("run")
        .env("DATABASE_URL", &db.url)
        .env_remove("BRIDGE_PII_KEY")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("openssl rand -base64 32"), "{said}");
    // The schema first, as a sysadmin does: `run` lays none down.
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir().join(format!("lb-pii-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
        .arg("run")
        .env("DATABASE_URL", &db.url)
        .env("LAPOR_BASE_URL", sim.base_url())
        .env("LAPOR_API_TOKEN", "api-token")
        .env("LAPOR_INSTANSI_TOKEN", "instansi-token")
        .env("BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("BRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BRIDGE_PII_KEY", TEST_PII_KEY)
        .env("BRIDGE_RETRY_BASE_MS", "20")
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = eventually(Duration::from_secs(30), || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "the daemon did not start");

    let resp = http
        .post(format!("{base}/api/v1/complaints"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&doc_with_reporter("PLG-LOG-1", reporter()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut settings = Settings::default();
    settings.database.url = SecretString::from(db.url.clone());
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    submit_sql(&pool, &doc_with_reporter("PLG-LOG-2", reporter()))
        .await
        .unwrap();
    let done = eventually(Duration::from_secs(30), || async {
        let mut all = true;
        for r in ["PLG-LOG-1", "PLG-LOG-2"] {
            let doc: Value = http
                .get(format!("{base}/api/v1/complaints/{r}"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all &= doc["sync_state"] == "synced" && doc["reporter"]["state"] == "held";
        }
        all
    })
    .await;
    assert!(done, "not delivered and sealed in time");
    let resp = http
        .post(format!("{base}/api/v1/complaints/PLG-LOG-2/erase"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "Permintaan subjek data"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("lapor_bridge_"));
    assert_absent(&metrics, "/metrics");

    child.kill().unwrap();
    child.wait().unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("lapor-bridge running"), "{logged}");
    assert!(logged.contains("DEBUG"), "logged at debug level");
    assert_absent(&logged, "the daemon's log");
    std::fs::remove_dir_all(&dir).unwrap();
    pool.close().await;
    sim.shutdown();
    db.drop_db().await;
}

/// A NUL character anywhere in the document is a 422 naming the field, not
/// a database error (whose log line would quote the values around it).
#[tokio::test]
async fn a_nul_character_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let mut doc = complaint_doc("PLG-NUL");
    doc["reporter"]["name"] = serde_json::json!("Siti\u{0}Aminah");
    doc["title"] = serde_json::json!("Jalan\u{0}rusak");
    let err = lapor_bridge::actions::submit(&app.bridge, &doc, "test")
        .await
        .expect_err("refused");
    match err {
        lapor_bridge::actions::ActionError::Invalid(fields) => {
            assert!(fields.contains_key("reporter.name"), "{fields:?}");
            assert!(fields.contains_key("title"), "{fields:?}");
        }
        other => panic!("{other:?}"),
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.complaints")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing stored");
    app.finish().await;
}
