//! The command line as sysadmins meet it: the database it opened, refusals
//! that name what to run, pipes that close, values checked like the API's,
//! warnings at start, plain logs, and one demo at a time.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lapor-bridge");

fn lb(db_url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("BRIDGE_PII_KEY", TEST_PII_KEY)
        .env_remove("RUST_LOG")
        .env_remove("BRIDGE_CONCURRENCY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A database URL on the test server with another database name.
fn url_of(name: &str) -> String {
    let base = server_url();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

async fn database_exists(name: &str) -> bool {
    let pool = sqlx::PgPool::connect(&server_url()).await.unwrap();
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    exists
}

/// A typo in DATABASE_URL: no database is created, the command exits 1
/// naming the database and what to run.
#[tokio::test]
async fn a_missing_database_is_named_and_never_created() {
    let name = format!("lb_typo_{:016x}", rand::random::<u64>());
    let url = url_of(&name);
    for args in [
        &["status"][..],
        &["outbox", "list"],
        &["pull"],
        &["audit", "verify"],
    ] {
        let out = lb(&url, args);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&format!("database {name}")), "{args:?}: {err}");
        assert!(
            err.contains("DATABASE_URL") && err.contains("lapor-bridge migrate"),
            "{err}"
        );
    }
    assert!(
        !database_exists(&name).await,
        "nothing but migrate creates it"
    );
    // `migrate` does.
    let out = lb(&url, &["migrate"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let (stdout, _) = text(&out);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!("database {name} on ")),
        "{stdout}"
    );
    assert!(database_exists(&name).await);
    let db = TestDb {
        name: name.clone(),
        url,
    };
    db.drop_db().await;
}

/// An existing database without the schema, or with an older one, is
/// refused the same way; nothing is migrated behind the sysadmin's back.
#[tokio::test]
async fn a_database_without_the_current_schema_is_refused() {
    let db = TestDb::create().await;
    let out = lb(&db.url, &["status"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("database {}", db.name)) && err.contains("no lapor_bridge schema"),
        "{err}"
    );
    assert!(err.contains("lapor-bridge migrate"), "{err}");
    // Still no schema.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'lapor_bridge')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!schema, "status created nothing");
    // `run` upgrades an older schema, but lays none into a database that
    // has none (another application's database, a typo).
    let out = lb(&db.url, &["run"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no lapor_bridge schema") && err.contains("lapor-bridge migrate"),
        "{err}"
    );
    let schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'lapor_bridge')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!schema, "run created nothing");
    assert!(lb(&db.url, &["migrate"]).status.success());
    // One migration "missing": an older schema.
    sqlx::query(
        "DELETE FROM lapor_bridge._sqlx_migrations
          WHERE version = (SELECT max(version) FROM lapor_bridge._sqlx_migrations)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let out = lb(&db.url, &["outbox", "list"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("older schema") && err.contains("lapor-bridge migrate"),
        "{err}"
    );
    pool.close().await;
    db.drop_db().await;
}

/// Every command's first line (or `--json` field) names the database it
/// opened, host and name, never the password.
#[tokio::test]
async fn commands_name_the_database_they_opened() {
    let app = spawn_app().await;
    app.submit("PLG-CLI-1").await;
    let (prefix, rest) = app.db.url.split_once("://").unwrap();
    let with_password = match rest.split_once('@') {
        Some((user, host)) => format!(
            "{prefix}://{}:s3cret-pw@{host}",
            user.split(':').next().unwrap()
        ),
        None => format!("{prefix}://postgres:s3cret-pw@{rest}"),
    };
    let out = lb(&with_password, &["status"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("database {} on 127.0.0.1:", app.db.name)),
        "{first}"
    );
    assert!(!stdout.contains("s3cret-pw") && !err.contains("s3cret-pw"));
    let out = lb(&app.db.url, &["--json", "status", "PLG-CLI-1"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["database"]["name"], app.db.name.as_str());
    assert_eq!(doc["database"]["host"], "127.0.0.1");
    assert!(doc["database"]["port"].is_u64());
    assert!(doc.get("waiting_reason").is_some(), "{doc}");
    let out = lb(&app.db.url, &["--json", "outbox", "list"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["database"]["name"], app.db.name.as_str());
    app.finish().await;
}

/// `outbox list --state bogus` is a usage error (exit 2) naming the values.
#[tokio::test]
async fn an_unknown_state_is_a_usage_error() {
    let app = spawn_app().await;
    let out = lb(&app.db.url, &["outbox", "list", "--state", "bogus"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bogus") && err.contains("pending") && err.contains("dead"),
        "{err}"
    );
    for state in ["pending", "dead", "done", "discarded"] {
        let out = lb(&app.db.url, &["outbox", "list", "--state", state]);
        assert!(out.status.success(), "{state}: {:?}", text(&out));
    }
    let out = lb(
        &app.db.url,
        &["audit", "export", "--format", "csv", "--since", "yesterday"],
    );
    assert_eq!(out.status.code(), Some(2));
    app.finish().await;
}

/// `lapor-bridge ... | head`: the reader goes away, the command ends
/// quietly instead of panicking.
#[tokio::test]
async fn a_closed_pipe_ends_quietly() {
    let app = spawn_app().await;
    for i in 0..30 {
        app.submit(&format!("PLG-PIPE-{i}")).await;
    }
    for args in [
        &["outbox", "list"][..],
        &["audit", "export", "--format", "jsonl"],
        &["status"],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &app.db.url)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let (_, err) = text(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    app.finish().await;
}

/// Configuration and connection errors in words: the key and where it came
/// from; the host and port; a missing role pointing at DATABASE_URL.
#[tokio::test]
async fn errors_name_the_key_the_host_and_the_role() {
    let app = spawn_app().await;
    let out = Command::new(BIN)
        .arg("status")
        .env("DATABASE_URL", &app.db.url)
        .env("BRIDGE_CONCURRENCY", "0")
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environment variable BRIDGE_CONCURRENCY"),
        "{err}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = lb(
        &format!("postgres://postgres@127.0.0.1:{port}/x"),
        &["status"],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}")),
        "{err}"
    );
    let (_, rest) = app.db.url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let out = lb(&format!("postgres://no_such_role_lb@{host}"), &["status"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no role no_such_role_lb") && err.contains("DATABASE_URL"),
        "{err}"
    );
    for bad in ["Some(", "None", "at line"] {
        assert!(!err.contains(bad), "{err}");
    }
    app.finish().await;
}

/// Reads a child's stderr until `until` shows or the deadline passes.
fn read_until(child: &mut std::process::Child, until: &str, deadline: Duration) -> String {
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < deadline {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(chunk);
        }
        if String::from_utf8_lossy(&seen).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// `run` warns at start, one line each, and logs without colour codes when
/// standard error is not a terminal.
#[tokio::test]
async fn run_warns_at_start_in_plain_lines() {
    let app = spawn_app().await;
    let mut child = Command::new(BIN)
        .arg("run")
        .env("DATABASE_URL", &app.db.url)
        .env("LAPOR_BASE_URL", app.sim.base_url())
        .env("LAPOR_API_TOKEN", "")
        .env("LAPOR_INSTANSI_TOKEN", "")
        .env("BRIDGE_LISTEN", "0.0.0.0:0")
        .env("BRIDGE_PII_KEY", TEST_PII_KEY)
        .env_remove("BRIDGE_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = read_until(&mut child, "lapor-bridge running", Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("lapor-bridge running"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI codes: {log:?}");
    let line_with = |s: &str| log.lines().filter(|l| l.contains(s)).count();
    assert_eq!(line_with("no API token can sign in"), 1, "{log}");
    assert_eq!(
        line_with("LAPOR_API_TOKEN and LAPOR_INSTANSI_TOKEN are empty"),
        1,
        "{log}"
    );
    assert_eq!(line_with("TLS"), 1, "{log}");
    assert!(
        log.contains(&format!("opened database {}", app.db.name)),
        "{log}"
    );
    app.finish().await;
}

/// A second demo refuses before it touches the first one's database: the
/// port, then the demo's lock.
#[tokio::test]
async fn a_second_demo_refuses_and_leaves_the_first_alone() {
    let free_port = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port = free_port();
    let demo = |port: u16| {
        let mut c = Command::new(BIN);
        c.arg("demo")
            .env("DATABASE_URL", server_url())
            .env("BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut first = demo(port).spawn().unwrap();
    let mut stdout = first.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
            if s.contains("Stop with ctrl-c") {
                let _ = tx.send(s.clone());
            }
        }
    });
    let banner = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the first demo started");
    assert!(
        banner.contains("database lapor_bridge_demo on "),
        "{banner}"
    );
    let demo_url = url_of("lapor_bridge_demo");
    let pool = sqlx::PgPool::connect(&demo_url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM lapor_bridge.complaints")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = count().await;
    assert!(before > 0);
    for second_port in [port, free_port()] {
        let out = demo(second_port).output().unwrap();
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("taken") || err.contains("another `lapor-bridge demo`"),
            "{err}"
        );
        assert!(
            count().await >= before,
            "the first demo's database is intact"
        );
    }
    // The demo's history: a complaint filed over sixty days ago (its
    // completion deadline passed) and a closed one, once the first pull ran.
    let history = eventually(Duration::from_secs(40), || async {
        let (old, closed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE lapor_created_at < now() - interval '60 days'),
                    count(*) FILTER (WHERE closed_at IS NOT NULL)
               FROM lapor_bridge.complaints",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        old >= 1 && closed >= 1
    })
    .await;
    let _ = first.kill();
    let _ = first.wait();
    pool.close().await;
    assert!(history, "the demo seeds an overdue and a closed complaint");
}
