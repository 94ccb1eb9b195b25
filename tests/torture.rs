//! The torture suite (issue 6, point 2): real `lapor-bridge run` processes,
//! several at once, deliver complaints with follow-ups and forwards through
//! a faulty LAPOR! simulator while daemons are SIGKILLed and restarted, every
//! database connection is terminated once and PostgreSQL itself is restarted
//! once. At the end every invariant of exactly-once delivery is asserted.
//!
//! One test function only, so that nothing else in this binary runs beside
//! it. Knobs (environment):
//! - `TORTURE_COMPLAINTS` (default 300): complaints to deliver;
//! - `TORTURE_SECS` (default 150): the longest the chaos phase lasts;
//! - `TORTURE_DRAIN_SECS` (default 120): the longest the final drain lasts
//!   (it gives up earlier when no step finishes for 45 s);
//! - `TORTURE_DAEMONS` (default 3): daemons running at once;
//! - `TORTURE_PG_RESTART` (default 1): restart PostgreSQL once (0: skip; it
//!   disturbs everything else using the same server);
//! - `TORTURE_RATE_LIMIT` (default 50): `BRIDGE_RATE_LIMIT_PER_SEC` per daemon;
//! - `TORTURE_KEEP_DB` (set: keep the database after a failure, for evidence).
//!
//! Daemon and simulator logs go to `target/tmp/torture-<db>/`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestDb, complaint_doc, get_json, server_url, test_settings};
use lapor_bridge::bridge::Bridge;
use lapor_bridge::clock::SystemClock;
use lapor_bridge::lapor::types::ref_in_tags;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};

const BIN: &str = env!("CARGO_BIN_EXE_lapor-bridge");
/// This institution (the simulator's and the bridge's default).
const OWN_INSTITUTION: i64 = 101;
/// Where every tenth complaint is forwarded.
const FORWARD_TO: i64 = 102;
/// The drain gives up when no step finished for this long.
/// Local ref, step, state, attempts, waiting reason, last error.
type UnfinishedStep = (String, String, String, i32, Option<String>, Option<String>);
/// Step id, step, attempt, outcome, HTTP status, failure kind, started at.
type AttemptEvidence = (
    i64,
    String,
    i32,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
);

const STALL: Duration = Duration::from_secs(45);

fn knob<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Knobs {
    complaints: usize,
    chaos: Duration,
    drain: Duration,
    daemons: usize,
    pg_restart: bool,
    rate_limit: u32,
    /// Attempts before a step is dead: low, so that an operator's Retry of
    /// steps that may have reached LAPOR! is part of every run.
    max_attempts: u32,
    /// BRIDGE_LOOKUP_DELAY_SECS: longer than the slow commits below.
    lookup_delay: u64,
}

impl Knobs {
    fn from_env() -> Self {
        Self {
            complaints: knob("TORTURE_COMPLAINTS", 300),
            chaos: Duration::from_secs(knob("TORTURE_SECS", 150)),
            drain: Duration::from_secs(knob("TORTURE_DRAIN_SECS", 120)),
            daemons: knob("TORTURE_DAEMONS", 3usize).max(1),
            pg_restart: knob("TORTURE_PG_RESTART", 1u8) != 0,
            rate_limit: knob("TORTURE_RATE_LIMIT", 50),
            max_attempts: knob("TORTURE_MAX_ATTEMPTS", 4),
            lookup_delay: knob("TORTURE_LOOKUP_DELAY_SECS", 2),
        }
    }
}

fn local_ref(i: usize) -> String {
    format!("PLG-TT-{i:05}")
}

fn followup_content(local_ref: &str) -> String {
    format!("Tindak lanjut untuk {local_ref}: perbaikan dijadwalkan minggu ini.")
}

// ----- child processes -------------------------------------------------------

struct Daemon {
    serial: u32,
    child: Child,
}

/// Every child process; killed on drop (also on panic).
struct Fleet {
    dir: PathBuf,
    config: PathBuf,
    env: Vec<(&'static str, String)>,
    sim: Option<(Child, ChildStdout)>,
    daemons: Vec<Daemon>,
    next_serial: u32,
    killed: u32,
    /// Daemons that exited without being told to (serial, status).
    self_exits: Vec<(u32, ExitStatus)>,
}

impl Fleet {
    fn log_file(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .expect("log file")
    }

    fn spawn_daemon(&mut self) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let log = self.log_file(&format!("daemon-{serial:03}.log"));
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start lapor-bridge run");
        self.daemons.push(Daemon { serial, child });
    }

    /// Replaces daemons that exited on their own (for instance one started
    /// while PostgreSQL was down).
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.daemons.len() {
            if let Ok(Some(status)) = self.daemons[i].child.try_wait() {
                let d = self.daemons.remove(i);
                self.self_exits.push((d.serial, status));
                self.spawn_daemon();
            } else {
                i += 1;
            }
        }
    }

    /// SIGKILLs a random daemon and starts a replacement.
    fn kill_one(&mut self) {
        self.reap();
        if self.daemons.is_empty() {
            return;
        }
        let i = rand::random_range(0..self.daemons.len());
        let mut d = self.daemons.remove(i);
        let _ = d.child.kill(); // SIGKILL
        let _ = d.child.wait();
        self.killed += 1;
        self.spawn_daemon();
    }

    /// SIGTERMs every daemon and waits (up to `deadline`) for them to exit.
    fn terminate_all(&mut self, deadline: Duration) -> Vec<(u32, Option<ExitStatus>)> {
        for d in &self.daemons {
            let _ = Command::new("kill")
                .args(["-TERM", &d.child.id().to_string()])
                .status();
        }
        let until = Instant::now() + deadline;
        let mut out = Vec::new();
        for mut d in std::mem::take(&mut self.daemons) {
            let status = loop {
                match d.child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = d.child.kill();
                        let _ = d.child.wait();
                        break None;
                    }
                }
            };
            out.push((d.serial, status));
        }
        out
    }

    fn kill_everything(&mut self) {
        for d in &mut self.daemons {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
        self.daemons.clear();
        if let Some((mut sim, _stdout)) = self.sim.take() {
            let _ = sim.kill();
            let _ = sim.wait();
        }
    }
}

/// Kills every child and drops the database, also when the test panics.
struct Guard {
    fleet: Arc<Mutex<Fleet>>,
    db: Option<TestDb>,
    stop: Arc<AtomicBool>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        lock(&self.fleet).kill_everything();
        if let Some(db) = self.db.take() {
            if std::thread::panicking() && std::env::var_os("TORTURE_KEEP_DB").is_some() {
                eprintln!("torture: keeping database {} for inspection", db.name);
                return;
            }
            // Drop cannot await: a small runtime on its own thread.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(db.drop_db())
            })
            .join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `lapor-bridge simulator` on a free port; answers the child, its
/// stdout (kept open) and the root URL (`http://127.0.0.1:PORT`).
fn start_simulator(dir: &Path) -> (Child, ChildStdout, String) {
    let log = std::fs::File::create(dir.join("simulator.log")).expect("log file");
    let mut child = Command::new(BIN)
        .args(["simulator", "--listen", "127.0.0.1:0"])
        .env("LAPOR_API_TOKEN", "api-token")
        .env("LAPOR_INSTANSI_TOKEN", "instansi-token")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start lapor-bridge simulator");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("simulator banner");
    // "LAPOR! simulator on http://127.0.0.1:PORT/api (control: /_sim)"
    let api = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in the simulator's banner: {line:?}"));
    let root = api.trim_end_matches("/api").to_string();
    (child, reader.into_inner(), root)
}

// ----- database chaos ----------------------------------------------------------

async fn admin_connection() -> Result<sqlx::PgConnection, sqlx::Error> {
    sqlx::PgConnection::connect(&server_url()).await
}

/// Terminates every connection to the test database; answers how many.
async fn terminate_connections(db_name: &str) -> i64 {
    let mut conn = admin_connection().await.expect("admin connection");
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(db_name)
    .fetch_one(&mut conn)
    .await
    .expect("pg_terminate_backend");
    let _ = conn.close().await;
    n
}

/// Restarts the PostgreSQL cluster and waits until it accepts connections;
/// answers the time it took.
async fn restart_postgres() -> Duration {
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .args([
            "-c",
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -n1) main restart",
        ])
        .output()
        .await
        .expect("run pg_ctlcluster");
    assert!(
        out.status.success(),
        "pg_ctlcluster restart failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = admin_connection().await
            && sqlx::query("SELECT 1").execute(&mut c).await.is_ok()
        {
            let _ = c.close().await;
            return started.elapsed();
        }
        assert!(
            Instant::now() < until,
            "PostgreSQL did not come back within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Outbox steps not finished yet (dead ones wait for the operator's Retry);
/// None while the database is unreachable.
async fn unfinished(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.outbox WHERE state IN ('pending', 'running', 'dead')",
    )
    .fetch_one(pool)
    .await
    .ok()
}

// ----- the simulator -----------------------------------------------------------

async fn upstream(http: &reqwest::Client, root: &str) -> Vec<Value> {
    let v: Value = http
        .get(format!("{root}/_sim/complaints"))
        .send()
        .await
        .expect("GET /_sim/complaints")
        .json()
        .await
        .expect("simulator JSON");
    v["data"].as_array().cloned().unwrap_or_default()
}

/// LAPOR!'s admin: verifies every complaint still waiting, every ~200 ms.
async fn verifier(
    http: reqwest::Client,
    root: String,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(resp) = http.get(format!("{root}/_sim/complaints")).send().await
            && let Ok(v) = resp.json::<Value>().await
        {
            for c in v["data"].as_array().into_iter().flatten() {
                if c["status_name"] == "Belum Terverifikasi" {
                    let id = c["id"].as_i64().unwrap_or_default();
                    let ok = http
                        .post(format!("{root}/_sim/complaints/{id}/status"))
                        .json(&json!({"status_name": "Terverifikasi"}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ----- the test ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_deliver_exactly_once_through_kills_terminations_and_a_postgres_restart() {
    lapor_bridge::lapor::client::install_crypto_provider();
    let knobs = Knobs::from_env();
    let started = Instant::now();
    let n = knobs.complaints;

    let db = TestDb::create().await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("torture-{}", db.name));
    std::fs::create_dir_all(&dir).expect("log directory");
    let config = dir.join("lapor-bridge.toml");
    std::fs::write(&config, "[bridge]\nlease_secs = 5\n").expect("config file");

    let (sim, sim_stdout, root) = start_simulator(&dir);
    let api = format!("{root}/api");
    let env: Vec<(&'static str, String)> = vec![
        ("DATABASE_URL", db.url.clone()),
        ("LAPOR_BASE_URL", api.clone()),
        ("LAPOR_API_TOKEN", "api-token".into()),
        ("LAPOR_INSTANSI_TOKEN", "instansi-token".into()),
        ("BRIDGE_LISTEN", "127.0.0.1:0".into()),
        ("BRIDGE_PII_KEY", common::TEST_PII_KEY.into()),
        ("BRIDGE_RETRY_BASE_MS", "20".into()),
        ("BRIDGE_RETRY_MAX_MS", "500".into()),
        ("BRIDGE_MAX_ATTEMPTS", knobs.max_attempts.to_string()),
        ("BRIDGE_LOOKUP_DELAY_SECS", knobs.lookup_delay.to_string()),
        ("BRIDGE_HTTP_TIMEOUT_MS", "1000".into()),
        ("BRIDGE_CONCURRENCY", "4".into()),
        ("BRIDGE_POLL_INTERVAL_SECS", "2".into()),
        ("BRIDGE_RATE_LIMIT_PER_SEC", knobs.rate_limit.to_string()),
        ("RUST_LOG", "warn".into()),
    ];
    let fleet = Arc::new(Mutex::new(Fleet {
        dir: dir.clone(),
        config,
        env,
        sim: Some((sim, sim_stdout)),
        daemons: Vec::new(),
        next_serial: 1,
        killed: 0,
        self_exits: Vec::new(),
    }));
    let stop_chaos = Arc::new(AtomicBool::new(false));
    let guard = Guard {
        fleet: fleet.clone(),
        db: Some(db),
        stop: stop_chaos.clone(),
    };
    let db_name = guard.db.as_ref().unwrap().name.clone();
    let db_url = guard.db.as_ref().unwrap().url.clone();
    eprintln!(
        "torture: {n} complaints, {} daemons, database {db_name}, logs in {}",
        knobs.daemons,
        dir.display()
    );

    // The test's own pool (it must survive the terminations and the restart).
    let settings = test_settings(&db_url, &api);
    let pool = lapor_bridge::db::connect(&settings.database).await.unwrap();
    lapor_bridge::db::migrate(&pool).await.unwrap();
    let bridge = Bridge::new(pool.clone(), settings, Arc::new(SystemClock)).unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let faults = json!({
        "error_rate": 0.1,
        "drop_after_commit_rate": 0.05,
        "html_error_rate": 0.03,
        "malformed_rate": 0.03,
        "timeout_rate": 0.01,
        "timeout_hold_ms": 1500,
        "latency_ms": [1, 20],
        "rate_limit_per_sec": 100,
        // nginx gives up at once, PHP commits a second later: within the
        // lookup delay, so nothing may be filed twice.
        "slow_commit_rate": 0.03,
        "slow_commit_ms": 1000,
    });
    let resp = http
        .post(format!("{root}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "faults rejected");

    for _ in 0..knobs.daemons {
        lock(&fleet).spawn_daemon();
    }

    // LAPOR!'s admin verifies what arrives.
    let stop_verifier = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicU64::new(0));
    let verifier_task = tokio::spawn(verifier(
        http.clone(),
        root.clone(),
        stop_verifier.clone(),
        verified.clone(),
    ));

    // Kill chaos: every 1-3 s a random daemon is SIGKILLed and replaced.
    let kill_task = {
        let fleet = fleet.clone();
        let stop = stop_chaos.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let pause = rand::random_range(1_000..3_000u64);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                lock(&fleet).kill_one();
            }
        })
    };

    // An operator retries every dead step from the dashboard, a second or
    // two after it died, until the end of the drain.
    let stop_operator = Arc::new(AtomicBool::new(false));
    let operator_retries = Arc::new(AtomicU64::new(0));
    let operator_task = {
        let bridge = bridge.clone();
        let pool = pool.clone();
        let stop = stop_operator.clone();
        let retries = operator_retries.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rand::random_range(500..2_000u64))).await;
                let dead: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM lapor_bridge.outbox WHERE state = 'dead' ORDER BY id",
                )
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                for id in dead {
                    let retried = lapor_bridge::actions::act_on_step(
                        &bridge,
                        id,
                        lapor_bridge::actions::StepAction::Retry,
                        "operator:torture",
                    )
                    .await;
                    if retried.is_ok() {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // Enqueue: each complaint, one follow-up each, a forward every tenth.
    let enqueue_started = Instant::now();
    for i in 0..n {
        let r = local_ref(i);
        let created: Value = sqlx::query_scalar("SELECT lapor_bridge.submit_complaint($1)")
            .bind(complaint_doc(&r))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(created["created"], true, "{r}: {created}");
        lapor_bridge::actions::add_followup(&bridge, &r, &followup_content(&r), false, "torture")
            .await
            .unwrap();
        if i % 10 == 0 {
            lapor_bridge::actions::forward(
                &bridge,
                &r,
                FORWARD_TO,
                "Bukan kewenangan pemerintah kota",
                "torture",
            )
            .await
            .unwrap();
        }
    }
    let enqueue_secs = enqueue_started.elapsed().as_secs_f64();
    eprintln!("torture: enqueued {n} complaints in {enqueue_secs:.1} s");

    // Database chaos while the daemons work: terminations, then a restart.
    let chaos_until = Instant::now() + knobs.chaos;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let terminated = terminate_connections(&db_name).await;
    eprintln!("torture: terminated {terminated} connections");
    let mut pg_restarts = 0;
    let mut pg_outage = Duration::ZERO;
    if knobs.pg_restart {
        tokio::time::sleep(Duration::from_secs(4)).await;
        pg_outage = restart_postgres().await;
        pg_restarts += 1;
        eprintln!(
            "torture: PostgreSQL restarted, back after {:.1} s",
            pg_outage.as_secs_f64()
        );
    }

    // Kills go on while work remains, up to the deadline.
    while Instant::now() < chaos_until {
        if unfinished(&pool).await == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_chaos.store(true, Ordering::SeqCst);
    kill_task.await.unwrap();
    let chaos_secs = started.elapsed().as_secs_f64();
    lock(&fleet).reap();

    // Let the daemons finish without chaos.
    let drain_until = Instant::now() + knobs.drain;
    let mut left = unfinished(&pool).await;
    let mut last_change = Instant::now();
    while left != Some(0) && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        lock(&fleet).reap();
        let now_left = unfinished(&pool).await;
        if now_left != left {
            last_change = Instant::now();
        }
        left = now_left;
        // Stuck: no step finished for longer than any backoff, lease expiry
        // plus rescue, or verification wait can explain.
        if last_change.elapsed() > STALL {
            break;
        }
    }
    let drained = left == Some(0);
    stop_verifier.store(true, Ordering::SeqCst);
    verifier_task.await.unwrap();
    stop_operator.store(true, Ordering::SeqCst);
    operator_task.await.unwrap();

    let exits = lock(&fleet).terminate_all(Duration::from_secs(30));
    let total_secs = started.elapsed().as_secs_f64();

    // ----- evidence ----------------------------------------------------------
    let mut violations: Vec<String> = Vec::new();
    let mut suspects: Vec<String> = Vec::new();
    if !drained {
        let rows: Vec<UnfinishedStep> = sqlx::query_as(
            "SELECT c.local_ref, o.step, o.state, o.attempts, o.waiting_reason, o.last_error
               FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
              WHERE o.state IN ('pending', 'running') ORDER BY o.id LIMIT 10",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        violations.push(format!(
            "not drained (limit {} s, stall {} s): {left:?} steps unfinished, e.g. {rows:?}",
            knobs.drain.as_secs(),
            STALL.as_secs()
        ));
    }
    for (serial, status) in &exits {
        match status {
            Some(s) if s.success() => {}
            other => violations.push(format!("daemon {serial} after SIGTERM: {other:?}")),
        }
    }

    // Nothing lost locally, nothing imported twice.
    let local: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT local_ref, origin, lapor_complaint_id FROM lapor_bridge.complaints ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    if local.len() != n {
        let extra: Vec<_> = local
            .iter()
            .filter(|(_, o, _)| o != "local")
            .take(10)
            .collect();
        violations.push(format!(
            "{} local complaints, expected {n}; not ours, e.g. {extra:?}",
            local.len()
        ));
        suspects.extend(
            extra
                .iter()
                .filter_map(|(r, _, _)| r.strip_prefix("LAPOR-"))
                .map(|id| format!("lapor:{id}")),
        );
    }
    let local_ids: HashMap<&str, Option<i64>> =
        local.iter().map(|(r, _, id)| (r.as_str(), *id)).collect();

    // Upstream: each complaint exactly once, each follow-up once, forwards applied.
    let up = upstream(&http, &root).await;
    let mut by_ref: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut untagged = 0;
    for c in &up {
        match ref_in_tags(c["tags_raw"].as_str().unwrap_or("")) {
            Some(r) => by_ref.entry(r.to_string()).or_default().push(c),
            None => untagged += 1,
        }
    }
    if untagged > 0 {
        violations.push(format!("{untagged} upstream complaints without a ref: tag"));
    }
    let mut duplicates = 0usize;
    let mut lost = 0usize;
    let mut followup_dupes = 0usize;
    let mut followups_missing = 0usize;
    let mut forwards_wrong = 0usize;
    for i in 0..n {
        let r = local_ref(i);
        let copies = by_ref.get(&r).map(Vec::as_slice).unwrap_or_default();
        match copies.len() {
            0 => {
                lost += 1;
                suspects.push(r.clone());
                continue;
            }
            1 => {}
            k => {
                duplicates += k - 1;
                suspects.push(r.clone());
            }
        }
        let c = copies[0];
        let linked = local_ids.get(r.as_str()).copied().flatten();
        if linked != c["id"].as_i64() {
            violations.push(format!(
                "{r}: linked locally to LAPOR! id {}, upstream id {}",
                linked.map_or("none".into(), |id| id.to_string()),
                c["id"]
            ));
        }
        let content = followup_content(&r);
        let ours = c["followups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["institution_id"] == OWN_INSTITUTION && f["content"] == content.as_str())
            .count();
        match ours {
            1 => {}
            0 => {
                followups_missing += 1;
                suspects.push(r.clone());
            }
            k => {
                followup_dupes += k - 1;
                suspects.push(r.clone());
            }
        }
        let forwards = c["data_logs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["content"].as_str().unwrap_or("").contains("diteruskan"))
            .count();
        let (want_forwards, want_disposition) = if i % 10 == 0 {
            (1, FORWARD_TO)
        } else {
            (0, OWN_INSTITUTION)
        };
        if forwards != want_forwards || c["disposition_id"] != want_disposition {
            forwards_wrong += 1;
            suspects.push(r.clone());
        }
    }
    let strangers: Vec<&String> = by_ref
        .keys()
        .filter(|r| !local_ids.contains_key(r.as_str()))
        .collect();
    if !strangers.is_empty() {
        violations.push(format!("upstream refs never submitted: {strangers:?}"));
    }
    if duplicates > 0 {
        violations.push(format!("{duplicates} duplicate complaints upstream"));
    }
    if lost > 0 {
        violations.push(format!("{lost} complaints missing upstream"));
    }
    if followup_dupes > 0 {
        violations.push(format!("{followup_dupes} duplicate follow-ups upstream"));
    }
    if followups_missing > 0 {
        violations.push(format!("{followups_missing} follow-ups missing upstream"));
    }
    if forwards_wrong > 0 {
        violations.push(format!("{forwards_wrong} complaints with a wrong forward"));
    }

    // Locally: one follow-up each (nothing imported back twice), no dead step.
    let local_followups: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.local_ref, count(f.id) FROM lapor_bridge.complaints c
           LEFT JOIN lapor_bridge.followups f ON f.complaint_id = c.id
          GROUP BY c.local_ref HAVING count(f.id) <> 1 ORDER BY 1 LIMIT 10",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    if !local_followups.is_empty() {
        violations.push(format!(
            "complaints without exactly one local follow-up: {local_followups:?}"
        ));
    }
    let states: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM lapor_bridge.outbox GROUP BY state ORDER BY state",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let dead: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.local_ref, o.step, o.last_error FROM lapor_bridge.outbox o
           JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
          WHERE o.state = 'dead' ORDER BY o.id LIMIT 10",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    if !dead.is_empty() {
        violations.push(format!(
            "dead steps left after the operator's retries (no permanent error was injected): {dead:?}"
        ));
    }
    let steps_expected = (2 * n + n.div_ceil(10)) as i64;
    let steps_done: i64 = states
        .iter()
        .filter(|(s, _)| s == "done")
        .map(|(_, k)| *k)
        .sum();
    if steps_done != steps_expected {
        violations.push(format!(
            "{steps_done} outbox steps done, expected {steps_expected} ({states:?})"
        ));
    }
    let audit = lapor_bridge::store::audit::verify(&pool).await.unwrap();
    if !audit.is_ok() {
        violations.push(format!("audit chain broken: {audit:?}"));
    }

    // ----- figures ---------------------------------------------------------------
    let stats = get_json(&http, format!("{root}/_sim/stats")).await;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for (_, counts) in stats["requests"].as_object().into_iter().flatten() {
        for (status, k) in counts.as_object().into_iter().flatten() {
            *by_status.entry(status.clone()).or_default() += k.as_u64().unwrap_or(0);
        }
    }
    let requests: u64 = by_status.values().sum();
    let kinds: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT failure_kind, count(*) FROM lapor_bridge.outbox_attempts
          GROUP BY failure_kind ORDER BY count(*) DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM lapor_bridge.outbox_attempts
          GROUP BY outcome ORDER BY count(*) DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let rescued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lapor_bridge.outbox_attempts WHERE outcome = 'lease_lost'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (killed, self_exits, started_daemons) = {
        let f = lock(&fleet);
        (f.killed, f.self_exits.clone(), f.next_serial - 1)
    };
    let fmt_kinds = kinds
        .iter()
        .map(|(k, c)| format!("{}={c}", k.as_deref().unwrap_or("none")))
        .collect::<Vec<_>>()
        .join(",");
    let fmt_outcomes = outcomes
        .iter()
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(",");
    let fmt_status = by_status
        .iter()
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "TORTURE complaints={n} followups={n} forwards={} daemons={} started={started_daemons} \
         killed={killed} self_exits={} conn_terminations=1 (backends={terminated}) \
         pg_restarts={pg_restarts} (outage={:.1}s) verified_upstream={} \
         sim_requests={requests} sim_by_status[{fmt_status}] \
         attempts_by_failure_kind[{fmt_kinds}] attempts_by_outcome[{fmt_outcomes}] \
         lease_lost={rescued} operator_retries={} duplicates={duplicates} followup_duplicates={followup_dupes} \
         lost={lost} dead={} audit_ok={} enqueue={enqueue_secs:.1}s chaos={chaos_secs:.1}s \
         total={total_secs:.1}s",
        n.div_ceil(10),
        knobs.daemons,
        self_exits.len(),
        pg_outage.as_secs_f64(),
        verified.load(Ordering::Relaxed),
        operator_retries.load(Ordering::Relaxed),
        dead.len(),
        audit.is_ok(),
    );
    if !self_exits.is_empty() {
        eprintln!("torture: daemons that exited on their own (replaced): {self_exits:?}");
        for (serial, _) in &self_exits {
            let log = std::fs::read_to_string(dir.join(format!("daemon-{serial:03}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            eprintln!("torture: daemon {serial} said: {tail:?}");
        }
    }

    if !violations.is_empty() {
        suspects.sort();
        suspects.dedup();
        for s in suspects.iter().take(5) {
            let attempts: Vec<AttemptEvidence> = sqlx::query_as(
                "SELECT a.outbox_id, a.step, a.attempt, a.outcome, a.http_status, a.failure_kind,
                            a.started_at::text
                       FROM lapor_bridge.outbox_attempts a
                       JOIN lapor_bridge.complaints c ON c.id = a.complaint_id
                      WHERE c.local_ref = $1 ORDER BY a.id",
            )
            .bind(s)
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            let entries = lapor_bridge::store::audit::of_complaint(&pool, s)
                .await
                .unwrap_or_default();
            let upstream_copies: Vec<&Value> = by_ref
                .get(s.as_str())
                .map(|v| v.to_vec())
                .unwrap_or_default();
            eprintln!("torture evidence {s}: attempts {attempts:?}");
            for e in entries {
                eprintln!(
                    "torture evidence {s}: audit {} {} {} {:?} {:?}",
                    e.at, e.actor, e.action, e.before, e.after
                );
            }
            for c in upstream_copies {
                eprintln!(
                    "torture evidence {s}: upstream id={} created={} followups={} logs={}",
                    c["id"], c["created_at_utc"], c["followups"], c["data_logs"]
                );
            }
        }
        eprintln!("torture: logs in {}", dir.display());
    }
    pool.close().await;
    assert!(
        violations.is_empty(),
        "torture invariants violated:\n  {}",
        violations.join("\n  ")
    );

    guard.stop.store(true, Ordering::SeqCst);
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}
