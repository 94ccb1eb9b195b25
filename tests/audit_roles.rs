//! The runtime role (`lapor_bridge_runtime`) and the audit checkpoints: what
//! the role may not do to the audit log, that the daemon works end to end
//! under it, that it never migrates, and that a log cut short after a
//! checkpoint is named by `audit verify`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use lapor_bridge::app::Daemon;
use lapor_bridge::checkpoints::{self, Checkpoint, Writer};
use lapor_bridge::clock::{Clock, SystemClock};
use lapor_bridge::store::audit::{self, NewEntry, Verification};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A login role that holds only `lapor_bridge_runtime`. Roles are shared by
/// every database of the cluster: a random name, dropped at the end.
struct AppRole {
    name: String,
    /// The test database's URL with this role's credentials.
    url: String,
}

const APP_PASSWORD: &str = "app-role-password";

impl AppRole {
    async fn create(owner: &PgPool, db_url: &str) -> Self {
        let name = format!("lb_app_{:016x}", rand::random::<u64>());
        let sql = format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{APP_PASSWORD}' IN ROLE lapor_bridge_runtime"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(owner)
            .await
            .unwrap();
        let url = url_as(db_url, &name);
        Self { name, url }
    }

    async fn pool(&self) -> PgPool {
        let mut settings = lapor_bridge::config::Settings::default();
        settings.database.url = secrecy::SecretString::from(self.url.clone());
        lapor_bridge::db::connect(&settings.database).await.unwrap()
    }

    async fn drop_role(self, owner: &PgPool) {
        let sql = format!("DROP ROLE IF EXISTS {}", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(owner)
            .await
            .unwrap();
    }
}

/// `db_url` with the credentials of `role` (password [`APP_PASSWORD`]).
fn url_as(db_url: &str, role: &str) -> String {
    let rest = db_url.split_once("://").unwrap().1;
    let host_and_db = rest.split_once('@').map_or(rest, |(_, r)| r);
    format!("postgres://{role}:{APP_PASSWORD}@{host_and_db}")
}

/// A migrated test database and a login role in `lapor_bridge_runtime`.
async fn spawn_with_role() -> (TestApp, AppRole) {
    let app = spawn_app().await;
    let role = AppRole::create(&app.pool, &app.db.url).await;
    (app, role)
}

async fn finish_with_role(app: TestApp, role: AppRole) {
    app.finish().await;
    role.drop_role(&cluster_pool().await).await;
}

/// A pool on the cluster's maintenance database, for roles.
async fn cluster_pool() -> PgPool {
    let mut settings = lapor_bridge::config::Settings::default();
    settings.database.url = secrecy::SecretString::from(server_url());
    let options = lapor_bridge::db::connect_options(&settings.database).unwrap();
    lapor_bridge::db::pool(options, 2).await.unwrap()
}

async fn try_append(pool: &PgPool, n: i64) -> Result<i64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    audit::append(
        &mut conn,
        &NewEntry {
            at: Utc::now(),
            actor: "tester",
            local_ref: None,
            action: "test.entry",
            before: None,
            after: Some(json!({"n": n})),
        },
    )
    .await
}

async fn append(pool: &PgPool, n: i64) -> i64 {
    try_append(pool, n).await.unwrap()
}

fn temp_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "lapor-bridge-{tag}-{:016x}.jsonl",
        rand::random::<u64>()
    ))
}

fn lines(path: &Path) -> Vec<Checkpoint> {
    checkpoints::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// Runs the real binary; its stdout, stderr and whether it succeeded. A
/// process still running after a minute is killed and fails the test.
async fn cli(args: &[&str], envs: &[(&str, &str)]) -> (String, String, bool) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("BRIDGE_AUDIT_CHECKPOINT_FILE")
        .env("BRIDGE_PII_KEY", TEST_PII_KEY)
        .env("BRIDGE_LISTEN", "127.0.0.1:0")
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command finished within a minute")
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

async fn refused(pool: &PgPool, sql: &str) {
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .expect_err(sql);
    let db = err.as_database_error().expect("a database error");
    assert_eq!(db.code().as_deref(), Some("42501"), "{sql}: {db}");
}

#[tokio::test]
async fn the_runtime_role_may_only_read_and_append_the_audit_log() {
    let app = spawn_app().await;
    for i in 0..3 {
        append(&app.pool, i).await;
    }
    let role = AppRole::create(&app.pool, &app.db.url).await;
    let runtime = role.pool().await;

    // Appending goes through the functions, which run with the owner's rights.
    let id = append(&runtime, 3).await;
    sqlx::query(
        "SELECT lapor_bridge.audit_append_many(ARRAY[now()], ARRAY['tester'], ARRAY[NULL::text],
                ARRAY['test.many'], ARRAY[NULL::jsonb], ARRAY['{}'::jsonb])",
    )
    .execute(&runtime)
    .await
    .unwrap();
    assert_eq!(audit::count(&runtime).await.unwrap(), 5);
    assert_eq!(audit::head_id(&runtime).await.unwrap(), id + 1);

    for sql in [
        "UPDATE lapor_bridge.audit_log SET actor = 'x'",
        "DELETE FROM lapor_bridge.audit_log",
        "TRUNCATE lapor_bridge.audit_log",
        "INSERT INTO lapor_bridge.audit_log (at, actor, action, prev_hash, hash)
             VALUES (now(), 'x', 'forged', '', '')",
        "ALTER TABLE lapor_bridge.audit_log DISABLE TRIGGER USER",
        "ALTER TABLE lapor_bridge.audit_log DISABLE TRIGGER audit_log_append_only",
        "DROP TRIGGER audit_log_append_only ON lapor_bridge.audit_log",
        "DROP TRIGGER audit_log_no_truncate ON lapor_bridge.audit_log",
        "ALTER TABLE lapor_bridge.audit_log RENAME TO audit_log_old",
        "DROP TABLE lapor_bridge.audit_log",
        "SET session_replication_role = replica",
        "SELECT setval('lapor_bridge.audit_log_id_seq', 1)",
        "ALTER FUNCTION lapor_bridge.audit_append(timestamptz, text, text, text, jsonb, jsonb)
             SECURITY INVOKER",
        "CREATE OR REPLACE FUNCTION lapor_bridge.audit_log_refuse_change() RETURNS trigger
             LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TABLE lapor_bridge.audit_log_copy (id bigint)",
        "DELETE FROM lapor_bridge._sqlx_migrations",
    ] {
        refused(&runtime, sql).await;
    }
    assert_eq!(audit::count(&app.pool).await.unwrap(), 5);
    assert!(audit::verify(&runtime).await.unwrap().is_ok());

    // Applying migrations is the owner's: refused before any DDL.
    let err = lapor_bridge::db::migrate(&runtime).await.unwrap_err();
    assert!(
        matches!(err, lapor_bridge::db::DbError::NotOwner { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lapor-bridge migrate"), "{err}");

    runtime.close().await;
    finish_with_role(app, role).await;
}

#[tokio::test]
async fn what_a_later_migration_adds_or_redefines_is_granted_by_migrate() {
    let (app, role) = spawn_with_role().await;
    let runtime = role.pool().await;
    // What a later migration does: a new table.
    sqlx::query("CREATE TABLE lapor_bridge.later_things (id bigserial PRIMARY KEY, note text)")
        .execute(&app.pool)
        .await
        .unwrap();
    refused(
        &runtime,
        "INSERT INTO lapor_bridge.later_things (note) VALUES ('x')",
    )
    .await;
    // A later migration that redefines an append function (CREATE OR
    // REPLACE resets it to SECURITY INVOKER).
    sqlx::query(
        "ALTER FUNCTION lapor_bridge.audit_append(timestamptz, text, text, text, jsonb, jsonb)
             SECURITY INVOKER RESET search_path",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let err = try_append(&runtime, 0).await.unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("42501"),
        "{err}"
    );
    lapor_bridge::db::migrate(&app.pool).await.unwrap();
    append(&runtime, 1).await;
    sqlx::query("INSERT INTO lapor_bridge.later_things (note) VALUES ('x')")
        .execute(&runtime)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.later_things")
        .fetch_one(&runtime)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // The audit log stays closed after the second grant.
    refused(&runtime, "DELETE FROM lapor_bridge.audit_log").await;
    runtime.close().await;
    finish_with_role(app, role).await;
}

#[tokio::test]
async fn fresh_databases_migrate_concurrently_and_each_grants_the_shared_role() {
    let dbs = futures_util::future::join_all((0..4).map(|_| TestDb::create())).await;
    let mut pools = Vec::new();
    for db in &dbs {
        let mut settings = lapor_bridge::config::Settings::default();
        settings.database.url = secrecy::SecretString::from(db.url.clone());
        pools.push(lapor_bridge::db::connect(&settings.database).await.unwrap());
    }
    // Four databases at once, and the first one twice.
    let results = futures_util::future::join_all(
        pools
            .iter()
            .chain(std::iter::once(&pools[0]))
            .map(lapor_bridge::db::migrate),
    )
    .await;
    for r in results {
        r.unwrap();
    }
    for pool in &pools {
        let (outbox, audit_read, audit_insert, audit_delete): (bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT has_table_privilege('lapor_bridge_runtime', 'lapor_bridge.outbox', 'INSERT'),
                        has_table_privilege('lapor_bridge_runtime', 'lapor_bridge.audit_log', 'SELECT'),
                        has_table_privilege('lapor_bridge_runtime', 'lapor_bridge.audit_log', 'INSERT'),
                        has_table_privilege('lapor_bridge_runtime', 'lapor_bridge.audit_log', 'DELETE')",
            )
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(outbox && audit_read);
        assert!(!audit_insert && !audit_delete);
        let login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(lapor_bridge::db::RUNTIME_ROLE)
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(!login, "the runtime role itself cannot log in");
        assert!(lapor_bridge::db::migrations_current(pool).await.unwrap());
    }
    for (pool, db) in pools.into_iter().zip(&dbs) {
        pool.close().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn the_daemon_runs_end_to_end_under_the_runtime_role() {
    let (app, role) = spawn_with_role().await;
    let file = temp_file("e2e");
    let mut settings = test_settings(&role.url, &app.sim.base_url());
    settings.audit.checkpoint_file = Some(file.clone());
    settings.audit.checkpoint_secs = 3600;
    let shutdown = CancellationToken::new();
    let daemon = Daemon::start(settings, Arc::new(SystemClock), shutdown.clone(), false)
        .await
        .unwrap();
    let bridge = daemon.bridge.clone();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&bridge.pool)
        .await
        .unwrap();
    assert_eq!(user, role.name);
    let base = format!("http://{}", daemon.addr);

    // Submitted over HTTP, delivered to LAPOR! by the daemon's engine.
    let resp = app
        .http
        .post(format!("{base}/api/v1/complaints"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&complaint_doc("PLG-ROLE-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let synced = eventually(Duration::from_secs(30), || async {
        lapor_bridge::actions::status(&bridge, "PLG-ROLE-1")
            .await
            .is_ok_and(|s| s.sync_state == "synced")
    })
    .await;
    assert!(synced, "delivered under the runtime role");
    assert_eq!(app.upstream_with_ref("PLG-ROLE-1").await.len(), 1);

    // A complaint filed on LAPOR! comes in with the pull; reconcile runs.
    app.sim_post(
        "/_sim/complaints",
        json!({"title": "Lampu jalan", "content": "Lampu jalan mati sejak seminggu.", "disposition_id": 101}),
    )
    .await;
    let jobs = lapor_bridge::inbound::Jobs::new(bridge.clone());
    let pulled = jobs.pull("test").await.unwrap();
    assert_eq!(pulled["ok"], true, "{pulled}");
    let reconciled = jobs.reconcile("test").await.unwrap();
    assert_eq!(reconciled["ok"], true, "{reconciled}");
    let imported: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.complaints WHERE origin = 'lapor'")
            .fetch_one(&bridge.pool)
            .await
            .unwrap();
    assert_eq!(imported, 1);
    // Maintenance (lease rescue, pruning, the vacuum it may not run) works.
    daemon.engine.maintain().await.unwrap();

    // Readiness, the head metric, the checkpoint written at start, verify.
    let get = |path: &str| {
        app.http
            .get(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let head = audit::head_id(&bridge.pool).await.unwrap();
    assert!(head >= 3, "started, delivered, pulled: {head}");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(&format!("\nlapor_bridge_audit_head_id {head}\n")),
        "{metrics}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async { file.exists() }).await,
        "the checkpoint at start"
    );
    let verify: Value = get("/api/v1/audit/verify")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["checkpoints"].as_u64().unwrap() >= 1, "{verify}");
    let copy = get("/api/v1/audit/checkpoints")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        checkpoints::parse(&copy, Path::new("download")).unwrap(),
        lines(&file)
    );
    let (stdout, stderr, ok) = cli(
        &["audit", "verify"],
        &[
            ("DATABASE_URL", &role.url),
            ("LAPOR_BASE_URL", &app.sim.base_url()),
            ("BRIDGE_AUDIT_CHECKPOINT_FILE", file.to_str().unwrap()),
        ],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], json!(audit::count(&app.pool).await.unwrap()));

    // At shutdown the writer records the head once more.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), daemon.wait())
        .await
        .unwrap();
    let last = lines(&file).pop().unwrap();
    assert_eq!(
        Some((last.id, last.hash)),
        audit::head(&app.pool).await.unwrap()
    );

    std::fs::remove_file(&file).ok();
    finish_with_role(app, role).await;
}

#[tokio::test]
async fn run_refuses_to_start_on_pending_migrations_under_the_runtime_role() {
    let (app, role) = spawn_with_role().await;
    // A binary newer than the schema: one of its migrations is not applied
    // (the runtime role's, which is written to be applied again).
    let newest: i64 = 20261204100000;
    sqlx::query("DELETE FROM lapor_bridge._sqlx_migrations WHERE version = $1")
        .bind(newest)
        .execute(&app.pool)
        .await
        .unwrap();
    let base = app.sim.base_url();
    let env: [(&str, &str); 2] = [("DATABASE_URL", &role.url), ("LAPOR_BASE_URL", &base)];
    let (stdout, stderr, ok) = cli(&["run"], &env).await;
    assert!(!ok, "run started: {stdout}{stderr}");
    assert!(
        stderr.contains("1 migration(s) pending")
            && stderr.contains(&newest.to_string())
            && stderr.contains("run `lapor-bridge migrate` as the schema owner"),
        "{stderr}"
    );
    // The other commands refuse the same way.
    let (_, stderr, ok) = cli(&["status"], &env).await;
    assert!(!ok && stderr.contains("lapor-bridge migrate"), "{stderr}");
    let (_, stderr, ok) = cli(&["migrate"], &env).await;
    assert!(
        !ok && stderr.contains("does not own schema lapor_bridge"),
        "{stderr}"
    );
    // Nothing was applied under the runtime role.
    let pending = lapor_bridge::db::pending_migrations(&app.pool)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending, vec![newest]);

    // The owner's start still applies what is pending (the migration is
    // written to be applied again).
    lapor_bridge::db::migrate_or_check(&app.pool).await.unwrap();
    assert!(
        lapor_bridge::db::migrations_current(&app.pool)
            .await
            .unwrap()
    );

    // A database migrated by a version that did not grant the runtime role.
    sqlx::query("REVOKE USAGE ON SCHEMA lapor_bridge FROM lapor_bridge_runtime")
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, stderr, ok) = cli(&["run"], &env).await;
    assert!(
        !ok && stderr.contains("may not read schema lapor_bridge")
            && stderr.contains("lapor-bridge migrate"),
        "{stderr}"
    );
    lapor_bridge::db::migrate(&app.pool).await.unwrap();

    // A database that was never migrated, and one that does not exist.
    let fresh = TestDb::create().await;
    let fresh_url = role.url.replace(&app.db.name, &fresh.name);
    let (_, stderr, ok) = cli(
        &["run"],
        &[
            ("DATABASE_URL", fresh_url.as_str()),
            ("LAPOR_BASE_URL", &app.sim.base_url()),
        ],
    )
    .await;
    assert!(
        !ok && stderr.contains("no lapor_bridge schema") && stderr.contains("lapor-bridge migrate"),
        "{stderr}"
    );
    let missing_url = role.url.replace(&app.db.name, "lb_test_missing_db");
    let (_, stderr, ok) = cli(
        &["run"],
        &[
            ("DATABASE_URL", missing_url.as_str()),
            ("LAPOR_BASE_URL", &app.sim.base_url()),
        ],
    )
    .await;
    assert!(
        !ok && stderr.contains("does not exist") && stderr.contains("lapor-bridge migrate"),
        "{stderr}"
    );
    let schema: Option<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = 'lapor_bridge'")
            .fetch_optional(&owner_pool(&fresh).await)
            .await
            .unwrap();
    assert_eq!(schema, None, "the runtime role created nothing");

    fresh.drop_db().await;
    finish_with_role(app, role).await;
}

async fn owner_pool(db: &TestDb) -> PgPool {
    let mut settings = lapor_bridge::config::Settings::default();
    settings.database.url = secrecy::SecretString::from(db.url.clone());
    let options = lapor_bridge::db::connect_options(&settings.database).unwrap();
    lapor_bridge::db::pool(options, 1).await.unwrap()
}

#[tokio::test]
async fn the_checkpoint_writer_writes_when_the_head_moved_and_only_then() {
    let app = spawn_app().await;
    let file = temp_file("writer");
    let mut writer = Writer::open(file.clone(), Arc::new(app.clock.clone()))
        .await
        .unwrap();
    assert_eq!(writer.tick(&app.pool).await.unwrap(), None, "an empty log");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "",
        "opened, nothing written"
    );

    append(&app.pool, 1).await;
    let first = writer
        .tick(&app.pool)
        .await
        .unwrap()
        .expect("the head moved");
    let (id, hash) = audit::head(&app.pool).await.unwrap().unwrap();
    assert_eq!((first.id, &first.hash), (id, &hash));
    assert_eq!(first.at, app.clock.now());
    assert_eq!(lines(&file), vec![first.clone()]);
    let raw = std::fs::read_to_string(&file).unwrap();
    let line: Value = serde_json::from_str(raw.trim_end()).unwrap();
    assert_eq!(
        line.as_object().unwrap().len(),
        3,
        "{{id, hash, at}}: {raw}"
    );

    app.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(writer.tick(&app.pool).await.unwrap(), None, "not moved");
    assert_eq!(lines(&file).len(), 1);

    append(&app.pool, 2).await;
    append(&app.pool, 3).await;
    app.clock.advance(chrono::Duration::minutes(5));
    let second = writer.tick(&app.pool).await.unwrap().unwrap();
    assert_eq!(second.id, id + 2);
    assert_eq!(lines(&file), vec![first, second]);

    // A restarted writer continues the file instead of repeating the head.
    let mut again = Writer::open(file.clone(), Arc::new(app.clock.clone()))
        .await
        .unwrap();
    assert_eq!(again.tick(&app.pool).await.unwrap(), None);
    assert_eq!(lines(&file).len(), 2);
    // A last line cut short (a crash or a full disk mid-write) is removed
    // when the file is opened again, so that it reads back.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(br#"{"id":99,"ha"#).unwrap();
    }
    let _ = Writer::open(file.clone(), Arc::new(app.clock.clone()))
        .await
        .unwrap();
    assert_eq!(lines(&file).len(), 2);
    // A file that cannot be written stops the writer (and the daemon) at once.
    let unwritable = std::path::PathBuf::from("/nonexistent-directory/checkpoints.jsonl");
    assert!(
        Writer::open(unwritable, Arc::new(app.clock.clone()))
            .await
            .is_err()
    );

    std::fs::remove_file(&file).ok();
    app.finish().await;
}

/// The owner switches the append-only triggers off, deletes the newest
/// entries and switches them on again: the chain that is left is valid.
async fn cut_tail(pool: &PgPool, from_id: i64) {
    with_audit_triggers_off(
        pool,
        "DELETE FROM lapor_bridge.audit_log WHERE id >= $1",
        from_id,
    )
    .await;
}

/// `lapor-bridge audit verify ARGS` against the test database: its JSON,
/// whether it succeeded, and its stderr.
async fn cli_verify(app: &TestApp, args: &[&str], file: Option<&Path>) -> (Value, bool, String) {
    let base = app.sim.base_url();
    let file = file.map(|f| f.display().to_string());
    let mut env = vec![
        ("DATABASE_URL", app.db.url.as_str()),
        ("LAPOR_BASE_URL", &base),
    ];
    if let Some(f) = &file {
        env.push(("BRIDGE_AUDIT_CHECKPOINT_FILE", f));
    }
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let (stdout, stderr, ok) = cli(&all, &env).await;
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (v, ok, stderr)
}

#[tokio::test]
async fn a_tail_deleted_after_a_checkpoint_is_named_by_verify() {
    let app = spawn_app().await;
    let file = temp_file("tail");
    let mut writer = Writer::open(file.clone(), Arc::new(app.clock.clone()))
        .await
        .unwrap();
    for i in 0..5 {
        append(&app.pool, i).await;
    }
    writer.tick(&app.pool).await.unwrap().unwrap();
    let sixth = append(&app.pool, 5).await;
    let seventh = append(&app.pool, 6).await;
    writer.tick(&app.pool).await.unwrap().unwrap();
    // The auditor keeps a copy elsewhere.
    let copy = temp_file("auditor-copy");
    std::fs::copy(&file, &copy).unwrap();

    // Untouched: the chain and both checkpoints hold.
    assert_eq!(
        checkpoints::verify(&app.pool, Some(&file)).await.unwrap(),
        Verification::Ok {
            ok: true,
            entries: 7,
            checkpoints: Some(2),
        }
    );
    let (v, ok, _) = cli_verify(&app, &[], Some(&file)).await;
    assert!(ok);
    assert_eq!(v, json!({"ok": true, "entries": 7, "checkpoints": 2}));

    cut_tail(&app.pool, sixth).await;
    // The chain alone cannot tell.
    assert!(audit::verify(&app.pool).await.unwrap().is_ok());
    let expected = json!({"ok": false, "reason": "checkpoint_mismatch",
                          "checkpoint_id": seventh, "entries": 5});
    assert_eq!(
        checkpoints::verify(&app.pool, Some(&file)).await.unwrap(),
        Verification::CheckpointMismatch {
            ok: false,
            reason: "checkpoint_mismatch",
            checkpoint_id: seventh,
            entries: 5,
        }
    );
    let (v, ok, stderr) = cli_verify(&app, &[], Some(&file)).await;
    assert!(!ok, "a failing exit");
    assert_eq!(v, expected);
    assert!(
        stderr.contains(&format!("checkpoint {seventh}")),
        "{stderr}"
    );
    // The auditor's own copy, with the configured file gone.
    std::fs::remove_file(&file).unwrap();
    let (v, ok, _) = cli_verify(&app, &["--checkpoints", copy.to_str().unwrap()], None).await;
    assert!(!ok);
    assert_eq!(v, expected);

    // New entries after the cut take new ids: the checkpointed id stays missing.
    append(&app.pool, 7).await;
    append(&app.pool, 8).await;
    assert!(audit::verify(&app.pool).await.unwrap().is_ok());
    let (v, ok, _) = cli_verify(&app, &[], Some(&copy)).await;
    assert!(!ok);
    assert_eq!(v["checkpoint_id"], seventh);

    std::fs::remove_file(&copy).ok();
    app.finish().await;
}

#[tokio::test]
async fn an_unreadable_checkpoint_file_is_an_error_not_ok() {
    let app = spawn_app().await;
    append(&app.pool, 1).await;
    let bad = temp_file("malformed");
    let head = audit::head(&app.pool).await.unwrap().unwrap();
    std::fs::write(
        &bad,
        format!(
            "{{\"id\":{},\"hash\":\"{}\",\"at\":\"2026-12-04T10:00:00Z\"}}\nnot json\n",
            head.0, head.1
        ),
    )
    .unwrap();
    let missing = temp_file("missing");
    for (path, expect) in [(&bad, "line 2"), (&missing, "cannot read")] {
        let v = checkpoints::verify(&app.pool, Some(path)).await.unwrap();
        let Verification::CheckpointsUnreadable { error, .. } = &v else {
            panic!("{v:?}");
        };
        assert!(error.contains(expect), "{error}");
        let (stdout, stderr, ok) = cli(
            &["audit", "verify", "--checkpoints", path.to_str().unwrap()],
            &[
                ("DATABASE_URL", &app.db.url),
                ("LAPOR_BASE_URL", &app.sim.base_url()),
            ],
        )
        .await;
        assert!(!ok, "{stdout}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["reason"], "checkpoints_unreadable");
        assert!(stderr.contains(expect), "{stderr}");
    }
    std::fs::remove_file(&bad).ok();
    app.finish().await;
}

#[tokio::test]
async fn the_export_carries_the_checkpoints_when_asked() {
    let app = spawn_app().await;
    let file = temp_file("export-src");
    let mut writer = Writer::open(file.clone(), Arc::new(app.clock.clone()))
        .await
        .unwrap();
    append(&app.pool, 1).await;
    writer.tick(&app.pool).await.unwrap().unwrap();
    append(&app.pool, 2).await;
    writer.tick(&app.pool).await.unwrap().unwrap();
    let out = temp_file("export-out");
    let args = [
        "audit",
        "export",
        "--format",
        "jsonl",
        "--checkpoints-out",
        out.to_str().unwrap(),
    ];
    let base = app.sim.base_url();
    let mut env = vec![
        ("DATABASE_URL", app.db.url.as_str()),
        ("LAPOR_BASE_URL", &base),
    ];
    // Without a checkpoint file the option is a usage error.
    let (_, stderr, ok) = cli(&args, &env).await;
    assert!(
        !ok && stderr.contains("BRIDGE_AUDIT_CHECKPOINT_FILE"),
        "{stderr}"
    );
    env.push(("BRIDGE_AUDIT_CHECKPOINT_FILE", file.to_str().unwrap()));
    let (stdout, stderr, ok) = cli(&args, &env).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "the entries on stdout");
    assert_eq!(lines(&out), lines(&file));
    std::fs::remove_file(&file).ok();
    std::fs::remove_file(&out).ok();
    app.finish().await;
}

#[tokio::test]
async fn a_schema_owner_without_superuser_rights_migrates_and_can_still_be_caught() {
    // The production setup: the owner is an ordinary role owning its
    // database; the runtime role exists already (another database made it).
    let app = spawn_app().await;
    let cluster = cluster_pool().await;
    let owner = format!("lb_owner_{:016x}", rand::random::<u64>());
    let sql = format!("CREATE ROLE {owner} LOGIN PASSWORD '{APP_PASSWORD}'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&cluster)
        .await
        .unwrap();
    let db = TestDb::create().await;
    let sql = format!("ALTER DATABASE {} OWNER TO {owner}", db.name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&cluster)
        .await
        .unwrap();
    let owner_url = url_as(&db.url, &owner);
    let mut settings = lapor_bridge::config::Settings::default();
    settings.database.url = secrecy::SecretString::from(owner_url);
    let owner_pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    lapor_bridge::db::migrate(&owner_pool).await.unwrap();

    let role = AppRole::create(&cluster, &db.url).await;
    let runtime = role.pool().await;
    for i in 0..3 {
        append(&runtime, i).await;
    }
    refused(&runtime, "DELETE FROM lapor_bridge.audit_log").await;
    refused(
        &runtime,
        "ALTER TABLE lapor_bridge.audit_log DISABLE TRIGGER USER",
    )
    .await;
    let file = temp_file("owner");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut writer = Writer::open(file.clone(), clock).await.unwrap();
    let cp = writer.tick(&runtime).await.unwrap().unwrap();
    // The owner can still cut the tail; the checkpoint names it.
    cut_tail(&owner_pool, cp.id).await;
    assert!(audit::verify(&runtime).await.unwrap().is_ok());
    let v = checkpoints::verify(&runtime, Some(&file)).await.unwrap();
    assert!(
        matches!(v, Verification::CheckpointMismatch { checkpoint_id, .. } if checkpoint_id == cp.id),
        "{v:?}"
    );

    runtime.close().await;
    owner_pool.close().await;
    db.drop_db().await;
    std::fs::remove_file(&file).ok();
    role.drop_role(&cluster).await;
    let sql = format!("DROP ROLE IF EXISTS {owner}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&cluster)
        .await
        .unwrap();
    app.finish().await;
}
