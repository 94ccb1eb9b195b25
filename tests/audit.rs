//! The audit log: hash chain, append-only, export; and SLA deadlines through
//! the status document with an injected clock.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use lapor_bridge::store::audit::{self, Entry, NewEntry, Verification};
use serde_json::{Value, json};

async fn append(app: &TestApp, actor: &str, local_ref: Option<&str>, after: Value) -> i64 {
    let mut conn = app.pool.acquire().await.unwrap();
    audit::append(
        &mut conn,
        &NewEntry {
            at: Utc::now(),
            actor,
            local_ref,
            action: "test.entry",
            before: Some(json!({"n": 0})),
            after: Some(after),
        },
    )
    .await
    .unwrap()
}

/// `lapor-bridge audit verify` against the test database: its JSON and
/// whether it exited with success.
fn cli_verify(app: &TestApp) -> (Value, bool) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lapor-bridge"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.db.url)
        .env("LAPOR_BASE_URL", app.sim.base_url())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (value, out.status.success())
}

async fn refused(app: &TestApp, sql: &'static str) {
    let err = sqlx::query(sql).execute(&app.pool).await.unwrap_err();
    let db = err.as_database_error().expect("a database error");
    assert_eq!(db.code().as_deref(), Some("42501"), "{sql}: {db}");
    assert!(db.message().contains("append-only"), "{sql}: {db}");
}

/// Every entry an export of `[since, until)` reads, page by page.
async fn export_all(
    pool: &sqlx::PgPool,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Vec<Entry> {
    let mut cursor = audit::ExportCursor::start(pool.clone(), since, until)
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Some(page) = cursor.next_page().await.unwrap() {
        all.extend(page);
    }
    all
}

#[tokio::test]
async fn verify_names_the_tampered_row_and_changes_are_refused() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(append(&app, "tester", Some("PLG-1"), json!({"n": i})).await);
    }
    let v = audit::verify(&app.pool).await.unwrap();
    assert_eq!(
        v,
        Verification::Ok {
            ok: true,
            entries: 7,
            checkpoints: None,
        }
    );
    let (cli, success) = cli_verify(&app);
    assert_eq!(cli, json!({"ok": true, "entries": 7}));
    assert!(success);

    // The trigger refuses every change, even to the database owner.
    refused(&app, "UPDATE lapor_bridge.audit_log SET actor = 'x'").await;
    refused(&app, "DELETE FROM lapor_bridge.audit_log").await;
    refused(&app, "TRUNCATE lapor_bridge.audit_log").await;
    assert_eq!(audit::count(&app.pool).await.unwrap(), 7);
    assert!(audit::verify(&app.pool).await.unwrap().is_ok());

    // An owner can switch the trigger off; verify still names the row.
    let middle = ids[3];
    with_audit_triggers_off(
        &app.pool,
        "UPDATE lapor_bridge.audit_log SET after = '{\"n\": 99}' WHERE id = $1",
        middle,
    )
    .await;
    let v = audit::verify(&app.pool).await.unwrap();
    assert_eq!(
        v,
        Verification::Broken {
            ok: false,
            first_bad_id: middle,
            entries: 7
        }
    );
    let (cli, success) = cli_verify(&app);
    assert_eq!(cli["ok"], false);
    assert_eq!(cli["first_bad_id"], middle);
    assert!(!success, "a broken chain is a failing exit");
    // Triggers are back on.
    refused(&app, "DELETE FROM lapor_bridge.audit_log").await;
    app.finish().await;
}

#[tokio::test]
async fn a_deleted_row_is_named_by_verify() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(append(&app, "tester", None, json!({"n": i})).await);
    }
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM lapor_bridge.audit_log WHERE id = $1")
        .bind(ids[2])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let v = audit::verify(&app.pool).await.unwrap();
    assert_eq!(
        v,
        Verification::Broken {
            ok: false,
            first_bad_id: ids[3],
            entries: 4
        },
        "the entry after the gap no longer links"
    );
    app.finish().await;
}

/// RFC 4180: records separated by CRLF, fields quoted when they hold a
/// comma, quote or line break, a quote inside a quoted field doubled.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a bare CR ends no record");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("a bare LF outside quotes"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record ends in CRLF"
    );
    rows
}

fn json_cell(v: &Option<Value>) -> Option<Value> {
    v.clone()
}

fn cell_json(cell: &str) -> Option<Value> {
    (!cell.is_empty()).then(|| serde_json::from_str(cell).unwrap())
}

#[tokio::test]
async fn csv_and_jsonl_exports_round_trip() {
    let app = spawn_app().await;
    let awkward = "Jalan \"Sudirman\", depan pasar\r\nbaris kedua\nbaris, ketiga \"\"";
    append(
        &app,
        "operator \"Siti\", shift 2\nmalam",
        Some("PLG,\"X\""),
        json!({"content": awkward, "list": [1, "a,b"], "nested": {"q": "\""}}),
    )
    .await;
    append(&app, "plain", None, json!({"n": 1})).await;
    {
        let mut conn = app.pool.acquire().await.unwrap();
        audit::append(
            &mut conn,
            &NewEntry {
                at: Utc::now(),
                actor: "nulls",
                local_ref: None,
                action: "test.null",
                before: None,
                after: None,
            },
        )
        .await
        .unwrap();
    }
    let entries = export_all(&app.pool, None, None).await;
    assert_eq!(entries.len(), 3);

    let csv = audit::to_csv(&entries);
    let rows = parse_csv(&csv);
    assert_eq!(
        rows[0],
        [
            "id",
            "at",
            "actor",
            "local_ref",
            "action",
            "before",
            "after",
            "prev_hash",
            "hash"
        ]
    );
    assert_eq!(rows.len(), entries.len() + 1);
    for (row, e) in rows[1..].iter().zip(&entries) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[0], e.id.to_string());
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339(&row[1]).unwrap().into();
        assert_eq!(at, e.at);
        assert_eq!(row[2], e.actor);
        assert_eq!(row[3], e.local_ref.clone().unwrap_or_default());
        assert_eq!(row[4], e.action);
        assert_eq!(cell_json(&row[5]), json_cell(&e.before));
        assert_eq!(cell_json(&row[6]), json_cell(&e.after));
        assert_eq!(row[7], e.prev_hash);
        assert_eq!(row[8], e.hash);
    }
    assert_eq!(rows[1][2], "operator \"Siti\", shift 2\nmalam");
    assert_eq!(rows[1][3], "PLG,\"X\"");
    assert_eq!(cell_json(&rows[1][6]).unwrap()["content"], awkward);

    let jsonl = audit::to_jsonl(&entries);
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), entries.len());
    for (line, e) in lines.iter().zip(&entries) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["id"], e.id);
        assert_eq!(v["actor"], e.actor.as_str());
        assert_eq!(v["local_ref"], json!(e.local_ref));
        assert_eq!(v["after"], json!(e.after));
        assert_eq!(v["hash"], e.hash.as_str());
        let at: DateTime<Utc> = serde_json::from_value(v["at"].clone()).unwrap();
        assert_eq!(at, e.at);
    }

    // A period: [since, until).
    let second: &Entry = &entries[1];
    let only = export_all(&app.pool, Some(second.at), Some(entries[2].at)).await;
    assert_eq!(
        only.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second.id]
    );
    app.finish().await;
}

#[tokio::test]
async fn concurrent_appends_keep_the_chain_intact() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let pool = app.pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let mut tx = pool.begin().await.unwrap();
                let actor = format!("worker-{t}");
                audit::append(
                    &mut tx,
                    &NewEntry {
                        at: Utc::now(),
                        actor: &actor,
                        local_ref: None,
                        action: "test.concurrent",
                        before: None,
                        after: Some(json!({"task": t, "i": i})),
                    },
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        audit::verify(&app.pool).await.unwrap(),
        Verification::Ok {
            ok: true,
            entries: 400,
            checkpoints: None,
        }
    );
    app.finish().await;
}

/// The example configuration's holidays.
fn example_sla() -> lapor_bridge::config::SlaSettings {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lapor-bridge.example.toml");
    lapor_bridge::config::Settings::from_toml_file(&path)
        .unwrap()
        .sla
}

fn wib(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The end of a Jakarta day: 23:59:59.999 WIB.
fn end_of_wib_day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    wib(y, m, d, 23, 59) + Duration::milliseconds(59_999)
}

async fn inbox_complaint(app: &TestApp, dispositioned: DateTime<Utc>) -> String {
    let v = app
        .sim_post(
            "/_sim/complaints",
            json!({"title": "Drainase", "content": "Drainase tersumbat di Jl. Kapten.", "disposition_id": 101}),
        )
        .await;
    let id = v["complaint_id"].as_i64().unwrap();
    lapor_bridge::inbound::Jobs::new(app.bridge.clone())
        .pull("test")
        .await
        .unwrap();
    let local_ref = format!("LAPOR-{id}");
    // LAPOR!'s timestamps are the simulator's wall clock: put the facts at a
    // known instant instead.
    let updated = sqlx::query(
        "UPDATE lapor_bridge.complaints SET dispositioned_at = $2, lapor_created_at = $2
          WHERE local_ref = $1 AND first_followup_by_us_at IS NULL AND closed_at IS NULL",
    )
    .bind(&local_ref)
    .bind(dispositioned)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    local_ref
}

async fn sla_at(app: &TestApp, local_ref: &str, now: DateTime<Utc>) -> Value {
    app.clock.set(now);
    serde_json::to_value(app.status(local_ref).await.sla).unwrap()
}

#[tokio::test]
async fn follow_up_deadline_skips_weekends_and_holidays() {
    let app = spawn_app_with(|s| s.sla = example_sla()).await;

    // Tuesday 17 March 2026, 10:00 WIB, the day before the Nyepi and
    // Idulfitri block (18-24 March: Wed, Thu, Fri, Sat, Sun, Mon, Tue).
    // Working days after it: Wed 25 (1), Thu 26 (2), Fri 27 (3), Mon 30 (4),
    // Tue 31 March (5).
    let tuesday = inbox_complaint(&app, wib(2026, 3, 17, 10, 0)).await;
    let due = end_of_wib_day(2026, 3, 31);
    let sla = sla_at(&app, &tuesday, wib(2026, 3, 30, 9, 0)).await;
    assert_eq!(sla["follow_up_due_at"], json!(due));
    assert_eq!(sla["next"]["kind"], "follow_up");
    assert_eq!(sla["next"]["due_at"], json!(due));
    assert_eq!(sla["overdue"], json!([]));
    // At the deadline itself: not overdue yet.
    let sla = sla_at(&app, &tuesday, due).await;
    assert_eq!(sla["overdue"], json!([]));
    // Just past it.
    let sla = sla_at(&app, &tuesday, due + Duration::milliseconds(1)).await;
    assert_eq!(sla["overdue"], json!(["follow_up"]));
    assert_eq!(sla["next"]["overdue"], true);
    // Completion: 60 calendar days from creation, 16 May 2026.
    assert_eq!(sla["completion_due_at"], json!(end_of_wib_day(2026, 5, 16)));

    // Friday 13 March 2026, 10:00 WIB: a weekend, then the same block.
    // Mon 16 (1), Tue 17 (2), Wed 25 (3), Thu 26 (4), Fri 27 March (5).
    let friday = inbox_complaint(&app, wib(2026, 3, 13, 10, 0)).await;
    let due = end_of_wib_day(2026, 3, 27);
    let sla = sla_at(&app, &friday, wib(2026, 3, 13, 12, 0)).await;
    assert_eq!(sla["follow_up_due_at"], json!(due));
    assert_eq!(sla["overdue"], json!([]));
    let sla = sla_at(&app, &friday, wib(2026, 3, 28, 0, 0)).await;
    assert_eq!(sla["overdue"], json!(["follow_up"]));

    // Friday 18:00 UTC is Saturday 01:00 WIB: counted from Saturday, so the
    // same five working days as a disposition on Friday in Jakarta.
    let late = inbox_complaint(&app, wib(2026, 11, 7, 1, 0)).await;
    let sla = sla_at(&app, &late, wib(2026, 11, 9, 8, 0)).await;
    // Mon 9 (1) .. Fri 13 November (5).
    assert_eq!(sla["follow_up_due_at"], json!(end_of_wib_day(2026, 11, 13)));
    app.finish().await;
}

#[tokio::test]
async fn without_a_holiday_list_only_weekends_count() {
    // An empty holiday list: the same Tuesday is due a week earlier.
    let app = spawn_app_with(|s| s.sla.holidays.clear()).await;
    let tuesday = inbox_complaint(&app, wib(2026, 3, 17, 10, 0)).await;
    let sla = sla_at(&app, &tuesday, wib(2026, 3, 18, 9, 0)).await;
    assert_eq!(sla["follow_up_due_at"], json!(end_of_wib_day(2026, 3, 24)));
    app.finish().await;
}

/// The schema's owner rewrites an entry and replaces `audit_hash` with one
/// that answers the stored hashes: verify does not use it, and names the
/// entry.
#[tokio::test]
async fn verify_does_not_trust_a_replaced_hash_function() {
    let app = spawn_app().await;
    app.submit("PLG-HASH").await;
    let first: i64 = sqlx::query_scalar("SELECT min(id) FROM lapor_bridge.audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    with_audit_triggers_off(
        &app.pool,
        "UPDATE lapor_bridge.audit_log SET actor = 'someone else' WHERE id = $1",
        first,
    )
    .await;
    sqlx::raw_sql(
        "CREATE OR REPLACE FUNCTION lapor_bridge.audit_hash(
             p_prev_hash text, p_id bigint, p_at timestamptz, p_actor text, p_local_ref text,
             p_action text, p_before jsonb, p_after jsonb) RETURNS text
         LANGUAGE sql STABLE AS $$ SELECT hash FROM lapor_bridge.audit_log WHERE id = p_id $$",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let verdict = lapor_bridge::store::audit::verify(&app.pool).await.unwrap();
    assert!(
        matches!(verdict, lapor_bridge::store::audit::Verification::Broken { first_bad_id, .. } if first_bad_id == first),
        "{verdict:?}"
    );
    app.finish().await;
}

/// A second entry chained to the same predecessor (a writer that read the
/// head from an old snapshot) is refused: the chain cannot fork.
#[tokio::test]
async fn the_chain_cannot_fork() {
    let app = spawn_app().await;
    app.submit("PLG-FORK").await;
    let (id, prev): (i64, String) =
        sqlx::query_as("SELECT id, prev_hash FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let forked = sqlx::query(
        "INSERT INTO lapor_bridge.audit_log (id, at, actor, local_ref, action, prev_hash, hash)
         VALUES ($1, now(), 'x', NULL, 'forged', $2, repeat('f', 64))",
    )
    .bind(id + 1000)
    .bind(&prev)
    .execute(&app.pool)
    .await;
    let err = forked.expect_err("a second entry after the same predecessor");
    assert!(err.to_string().contains("audit_log_prev_hash_idx"), "{err}");
    app.finish().await;
}

// ----- exports stream a page at a time ----------------------------------------

#[tokio::test]
async fn a_large_export_is_complete_and_ordered_and_streamed() {
    let app = spawn_app().await;
    let n = 5 * audit::EXPORT_PAGE as usize + 321;
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let at: Vec<DateTime<Utc>> = chunk
            .iter()
            .map(|i| base + Duration::milliseconds(*i as i64))
            .collect();
        let actor: Vec<&str> = chunk
            .iter()
            .map(|i| {
                if i % 1000 == 7 {
                    "=cmd|'/c calc'!A1"
                } else {
                    "exporter"
                }
            })
            .collect();
        let refs = vec!["PLG-EXP"; chunk.len()];
        let action: Vec<String> = chunk.iter().map(|i| format!("test.export.{i}")).collect();
        let before = vec![None; chunk.len()];
        let after: Vec<Option<Value>> = chunk.iter().map(|i| Some(json!({"i": i}))).collect();
        let mut conn = app.pool.acquire().await.unwrap();
        audit::append_many(&mut conn, &at, &actor, &refs, &action, &before, &after)
            .await
            .unwrap();
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM lapor_bridge.audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), n);
    let web = serve(
        &app,
        "export-intake-token-aaaaaaaaaaa",
        "export-operator-token-bbbbbbbbb",
        "export-auditor-token-ccccccccccc",
    )
    .await;
    let get = |path: &str| {
        web.http
            .get(format!("{}{path}", web.base))
            .bearer_auth("export-auditor-token-ccccccccccc")
            .send()
    };

    // JSON lines: every entry once, in id order, sent in chunks as read.
    let resp = get("/api/v1/audit?format=jsonl").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-length").is_none(), "streamed");
    let text = resp.text().await.unwrap();
    let got: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, ids);

    // CSV: the header, every entry in order, formulas neutralised.
    let resp = get("/api/v1/audit?format=csv").await.unwrap();
    assert!(resp.headers().get("content-length").is_none(), "streamed");
    let rows = parse_csv(&resp.text().await.unwrap());
    assert_eq!(rows[0][0], "id");
    let got: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(got, ids);
    assert!(rows[1..].iter().any(|r| r[2] == "'=cmd|'/c calc'!A1"));
    assert!(!rows[1..].iter().any(|r| r[2].starts_with('=')));

    // A period across page boundaries: [since, until).
    let (from, to) = (1234, 4321);
    let since = (base + Duration::milliseconds(from)).to_rfc3339();
    let until = (base + Duration::milliseconds(to)).to_rfc3339();
    let resp = web
        .http
        .get(format!("{}/api/v1/audit", web.base))
        .query(&[("since", since.as_str()), ("until", until.as_str())])
        .bearer_auth("export-auditor-token-ccccccccccc")
        .send()
        .await
        .unwrap();
    let got: Vec<i64> = resp
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, ids[from as usize..to as usize]);

    // The dashboard's download is the same stream.
    let cookie = web.session("export-auditor-token-ccccccccccc").await;
    let (status, csv, _) = web.page("/audit/export.csv", &cookie).await;
    assert_eq!(status, 200);
    assert_eq!(parse_csv(&csv).len(), n + 1);

    // An export is the log up to its start, read a page at a time.
    let mut cursor = audit::ExportCursor::start(app.pool.clone(), None, None)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    audit::append(
        &mut conn,
        &NewEntry {
            at: Utc::now(),
            actor: "late",
            local_ref: None,
            action: "test.late",
            before: None,
            after: None,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let mut read = Vec::new();
    while let Some(page) = cursor.next_page().await.unwrap() {
        assert!(page.len() <= audit::EXPORT_PAGE as usize);
        read.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(read, ids);

    web.shutdown.cancel();
    app.finish().await;
}
