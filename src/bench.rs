//! `lapor-bridge bench`: measures the outbox and reconciliation on this
//! machine, in one run, against a LAPOR! simulator in a child process (so
//! that the bridge's own memory is measured alone):
//!
//! 1. `pgbench -N` TPS on the same PostgreSQL (the database's commit rate);
//! 2. drain rate: N queued complaints delivered (create step, no faults);
//! 3. enqueue-to-delivered latency at an offered rate for a while;
//! 4. a full reconciliation of M tracked complaints;
//! 5. scrapes of `/metrics` with all of that stored (`--scrape-only`: this
//!    phase alone, over `--scrape-complaints` complaints).
//!
//! Peak resident memory of this process is taken for each phase.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::outbox::Engine;

pub const BENCH_DATABASE: &str = "lapor_bridge_bench";
pub const SOAK_DATABASE: &str = "lapor_bridge_soak";
const PGBENCH_DATABASE: &str = "lapor_bridge_pgbench";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Complaints queued for the drain phase.
    #[arg(long, default_value_t = 10_000)]
    pub complaints: usize,
    /// Offered complaints a second in the latency phase.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Length of the latency phase.
    #[arg(long, default_value_t = 30)]
    pub latency_secs: u64,
    /// Tracked complaints in the reconciliation phase.
    #[arg(long, default_value_t = 100_000)]
    pub reconcile: usize,
    /// Length of the pgbench run.
    #[arg(long, default_value_t = 15)]
    pub pgbench_secs: u64,
    /// Outbox workers (BRIDGE_CONCURRENCY for the run).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Instead of the measurements: a soak of this many seconds at
    /// `--soak-rate` complaints a second with faults on, sampling memory and
    /// the outbox table's size every `--soak-sample-secs`.
    #[arg(long)]
    pub soak_secs: Option<u64>,
    #[arg(long, default_value_t = 50)]
    pub soak_rate: u32,
    #[arg(long, default_value_t = 60)]
    pub soak_sample_secs: u64,
    /// Scrapes of `/metrics` timed in the scrape phase.
    #[arg(long, default_value_t = 200)]
    pub scrapes: usize,
    /// Instead of the measurements: store `--scrape-complaints` complaints
    /// and time `--scrapes` scrapes of `/metrics` (no pgbench, no LAPOR!).
    #[arg(long)]
    pub scrape_only: bool,
    #[arg(long, default_value_t = 20_000)]
    pub scrape_complaints: usize,
}

fn current_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The soak: steady load with faults; memory and the hot table must stay flat.
async fn soak(
    bridge: &Bridge,
    sim: &SimulatorProcess,
    opts: &BenchOptions,
    secs: u64,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    http.post(format!("{}/_sim/faults", sim.root))
        .json(
            &json!({"error_rate": 0.1, "drop_after_commit_rate": 0.05, "html_error_rate": 0.03,
                      "malformed_rate": 0.03, "latency_ms": [1, 20]}),
        )
        .send()
        .await?;
    let shutdown = CancellationToken::new();
    let engine = Engine::new(bridge.clone());
    let worker = tokio::spawn(engine.clone().run(shutdown.clone()));
    let pool = &bridge.pool;
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.soak_rate.max(1)));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut next_sample = Duration::ZERO;
    let mut samples = Vec::new();
    let mut i = 0u64;
    let mut submit_errors = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        // The database may go away for a moment (a restart): count it and go on.
        match sqlx::query("SELECT lapor_bridge.submit_complaint($1)")
            .bind(bench_doc(&format!("SOAK-{i:08}")))
            .execute(pool)
            .await
        {
            Ok(_) => i += 1,
            Err(e) => {
                submit_errors += 1;
                eprintln!("soak: submit failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if started.elapsed() >= next_sample {
            // Prune as the daemon's maintenance would, with no retention, so
            // the table size shows the steady state of the hot queue.
            let _ = engine.maintain().await;
            let measured: Result<(i64, i64, i64), _> = sqlx::query_as(
                "SELECT (SELECT count(*) FROM lapor_bridge.outbox),
                        pg_total_relation_size('lapor_bridge.outbox'),
                        (SELECT n_dead_tup FROM pg_stat_user_tables
                          WHERE schemaname = 'lapor_bridge' AND relname = 'outbox')",
            )
            .fetch_one(pool)
            .await;
            let Ok((rows, bytes, dead)) = measured else {
                continue;
            };
            let sample = json!({"at_secs": started.elapsed().as_secs(), "submitted": i,
                                "rss_mib": current_rss_mib(), "outbox_rows": rows,
                                "outbox_bytes": bytes, "outbox_dead_tuples": dead});
            eprintln!("soak: {sample}");
            samples.push(sample);
            next_sample += Duration::from_secs(opts.soak_sample_secs);
        }
    }
    wait_until_done(pool, Duration::from_secs(600)).await?;
    shutdown.cancel();
    let _ = worker.await;
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.outbox WHERE state = 'dead'")
            .fetch_one(pool)
            .await?;
    Ok(
        json!({"seconds": secs, "rate": opts.soak_rate, "submitted": i, "dead": dead,
              "submit_errors": submit_errors,
              "peak_rss_mib": peak_rss_mib(), "samples": samples}),
    )
}

/// CPU seconds spent so far by this process, the simulator and PostgreSQL:
/// the difference over a phase says where its time went.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    bridge: f64,
    simulator: f64,
    postgres: f64,
}

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every
/// mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a process (and of its reaped children), in seconds.
fn process_cpu(stat: &str) -> Option<f64> {
    // The command name may hold spaces: the fields after it start at `)`.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // fields[0] is the state (field 3): utime, stime, cutime, cstime are 14-17.
    let ticks: f64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Some(ticks / TICKS_PER_SEC)
}

impl CpuTimes {
    fn now(simulator_pid: Option<u32>) -> Self {
        let of = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| process_cpu(&s))
                .unwrap_or(0.0)
        };
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
            })
            .map(|e| of(&e.file_name().to_string_lossy()))
            .sum();
        Self {
            bridge: of("self"),
            simulator: simulator_pid.map_or(0.0, |p| of(&p.to_string())),
            postgres,
        }
    }

    /// CPU seconds each spent since `self`, and per item of work in µs.
    fn since(self, later: Self, wall_secs: f64, items: usize) -> Value {
        let per = |secs: f64| (secs * 1e6 / items.max(1) as f64).round();
        let (b, s, p) = (
            later.bridge - self.bridge,
            later.simulator - self.simulator,
            later.postgres - self.postgres,
        );
        json!({"bridge_s": b, "simulator_s": s, "postgres_s": p,
               "busy_cores": (b + s + p) / wall_secs.max(1e-9),
               "bridge_us_per_item": per(b), "simulator_us_per_item": per(s),
               "postgres_us_per_item": per(p)})
    }
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn run(mut settings: Settings, opts: BenchOptions) -> anyhow::Result<()> {
    crate::lapor::client::install_crypto_provider();
    let mut report = serde_json::Map::new();
    report.insert("machine".into(), machine());

    // pgbench on the same server.
    let base = crate::db::connect_options(&settings.database)?;
    let mut tps = f64::NAN;
    if !opts.scrape_only {
        let pg = base.clone().database(PGBENCH_DATABASE);
        crate::db::ensure_database(&pg).await?;
        tps = pgbench(&pg, opts.pgbench_secs).await?;
        report.insert("pgbench_n_tps".into(), json!(tps));
        eprintln!("pgbench -N: {tps:.0} TPS");
    }

    // A fresh bench database.
    let name = if opts.soak_secs.is_some() {
        SOAK_DATABASE
    } else {
        BENCH_DATABASE
    };
    let options = base.clone().database(name);
    crate::db::ensure_database(&options).await?;
    settings.database.url = SecretString::from(options.to_url_lossy().to_string());
    settings.database.max_connections = (opts.concurrency as u32 + 8).min(90);
    let pool = crate::db::connect(&settings.database).await?;
    sqlx::query("DROP SCHEMA IF EXISTS lapor_bridge CASCADE")
        .execute(&pool)
        .await?;
    crate::db::migrate(&pool).await?;

    if opts.scrape_only {
        let bridge = Bridge::new(pool.clone(), settings, Arc::new(SystemClock))?;
        enqueue(&pool, "SCRAPE", opts.scrape_complaints).await?;
        report.insert("scrape".into(), scrape_phase(&bridge, opts.scrapes).await?);
        println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
        return Ok(());
    }

    let sim = SimulatorProcess::start().await?;
    settings.lapor.base_url = format!("{}/api", sim.root);
    settings.lapor.api_token = SecretString::from("api-token");
    settings.lapor.instansi_token = SecretString::from("instansi-token");
    settings.bridge.concurrency = opts.concurrency;
    settings.bridge.rate_limit_per_sec = 0;
    // A throw-away key, as in the demo: submissions seal their reporter.
    let (_, pii_key) = crate::pii::PiiKey::generate();
    settings.pii.key = Some(SecretString::from(pii_key));
    let mut settings = settings;
    if opts.soak_secs.is_some() {
        settings.bridge.outbox_retention_hours = 0;
        settings.bridge.retry_base_ms = 100;
        settings.bridge.retry_max_ms = 5_000;
        settings.bridge.max_attempts = 50;
    }
    let bridge = Bridge::new(pool.clone(), settings, Arc::new(SystemClock))?;
    if let Some(secs) = opts.soak_secs {
        reset_peak_rss();
        let result = soak(&bridge, &sim, &opts, secs).await?;
        report.insert("soak".into(), result);
        println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
        return Ok(());
    }

    // Drain.
    let enqueue_started = Instant::now();
    enqueue(&pool, "DRAIN", opts.complaints).await?;
    let enqueue_rate = opts.complaints as f64 / enqueue_started.elapsed().as_secs_f64();
    reset_peak_rss();
    let shutdown = CancellationToken::new();
    let engine = Engine::new(bridge.clone());
    let cpu = CpuTimes::now(sim.child.id());
    let worker = tokio::spawn(engine.clone().run(shutdown.clone()));
    let started = Instant::now();
    wait_until_done(&pool, Duration::from_secs(1800)).await?;
    let drain_secs = started.elapsed().as_secs_f64();
    let drain_cpu = cpu.since(CpuTimes::now(sim.child.id()), drain_secs, opts.complaints);
    let drain_rate = opts.complaints as f64 / drain_secs;
    let drain_rss = peak_rss_mib();
    eprintln!(
        "drain: {} complaints in {drain_secs:.1} s = {drain_rate:.0}/s ({:.2}x pgbench)",
        opts.complaints,
        drain_rate / tps
    );
    report.insert(
        "drain".into(),
        json!({"complaints": opts.complaints, "seconds": drain_secs, "per_second": drain_rate,
               "ratio_to_pgbench": drain_rate / tps, "enqueue_per_second": enqueue_rate,
               "peak_rss_mib": drain_rss, "cpu": drain_cpu}),
    );

    // Latency at an offered rate.
    reset_peak_rss();
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.rate.max(1)));
    let total = (u64::from(opts.rate) * opts.latency_secs) as usize;
    let cpu = CpuTimes::now(sim.child.id());
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        tick.tick().await;
        let doc = bench_doc(&format!("LAT-{i:07}"));
        sqlx::query("SELECT lapor_bridge.submit_complaint($1)")
            .bind(&doc)
            .execute(&pool)
            .await?;
    }
    wait_until_done(&pool, Duration::from_secs(600)).await?;
    let latency_cpu = cpu.since(
        CpuTimes::now(sim.child.id()),
        started.elapsed().as_secs_f64(),
        total,
    );
    let (p50, p99, max): (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)::float8
           FROM (SELECT (extract(epoch FROM (o.finished_at - o.created_at)) * 1000)::float8 AS ms
                   FROM lapor_bridge.outbox o JOIN lapor_bridge.complaints c ON c.id = o.complaint_id
                  WHERE c.local_ref LIKE 'LAT-%' AND o.state = 'done') t",
    )
    .fetch_one(&pool)
    .await?;
    let latency_rss = peak_rss_mib();
    eprintln!(
        "latency at {}/s for {} s: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        opts.rate, opts.latency_secs
    );
    report.insert(
        "latency".into(),
        json!({"offered_per_second": opts.rate, "seconds": opts.latency_secs, "complaints": total,
               "p50_ms": p50, "p99_ms": p99, "max_ms": max, "peak_rss_mib": latency_rss,
               "cpu": latency_cpu}),
    );
    shutdown.cancel();
    let _ = worker.await;

    // Reconciliation of M tracked complaints.
    let seeded = seed_tracked(&bridge, &sim, opts.reconcile).await?;
    reset_peak_rss();
    let cpu = CpuTimes::now(sim.child.id());
    let started = Instant::now();
    let (summary, requests) =
        crate::lapor::client::counting(crate::inbound::sync::reconcile(&bridge, true)).await;
    let mut summary = summary?;
    summary.count_requests(requests);
    let reconcile_secs = started.elapsed().as_secs_f64();
    let reconcile_cpu = cpu.since(
        CpuTimes::now(sim.child.id()),
        reconcile_secs,
        summary.checked as usize,
    );
    let reconcile_rss = peak_rss_mib();
    eprintln!(
        "reconcile: {} tracked complaints checked in {reconcile_secs:.1} s ({} errors)",
        summary.checked, summary.errors
    );
    report.insert(
        "reconcile".into(),
        json!({"deep": true, "tracked": seeded, "checked": summary.checked, "errors": summary.errors,
               "seconds": reconcile_secs, "per_second": f64::from(summary.checked) / reconcile_secs,
               "requests": summary.requests, "requests_per_complaint": summary.requests_per_complaint,
               "peak_rss_mib": reconcile_rss, "cpu": reconcile_cpu}),
    );
    // The daily, listing-first reconciliation of the same complaints, now
    // that nothing changed: LAPOR!'s listing only.
    let started = Instant::now();
    let (listing, requests) =
        crate::lapor::client::counting(crate::inbound::sync::reconcile(&bridge, false)).await;
    let mut listing = listing?;
    listing.count_requests(requests);
    let listing_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "reconcile (listing first): {} tracked complaints in {listing_secs:.1} s, {} requests ({:.3} a complaint, {} details read)",
        listing.checked, listing.requests, listing.requests_per_complaint, listing.details_read
    );
    report.insert(
        "reconcile_listing_first".into(),
        json!({"tracked": seeded, "checked": listing.checked, "errors": listing.errors,
               "details_read": listing.details_read, "seconds": listing_secs,
               "requests": listing.requests, "requests_per_complaint": listing.requests_per_complaint}),
    );
    // Scrapes of /metrics with everything the phases above stored.
    report.insert("scrape".into(), scrape_phase(&bridge, opts.scrapes).await?);
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(())
}

/// Times scrapes of `/metrics` over HTTP against what the database holds:
/// the snapshot is counted once (what one replica does every 30 s), then
/// every scrape reads it.
async fn scrape_phase(bridge: &Bridge, scrapes: usize) -> anyhow::Result<Value> {
    let complaints: i64 = sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.complaints")
        .fetch_one(&bridge.pool)
        .await?;
    let started = Instant::now();
    crate::gauges::refresh(bridge).await?;
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    let state = crate::api::AppState {
        bridge: bridge.clone(),
        tokens: Arc::new(crate::api::auth::TokenStore::default()),
        jobs: Arc::new(crate::inbound::Jobs::new(bridge.clone())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::api::serve(listener, state, shutdown.clone()));
    let http = reqwest::Client::new();
    let mut ms = Vec::with_capacity(scrapes);
    for i in 0..scrapes.max(1) + 5 {
        let t = Instant::now();
        let text = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        if !text.contains("lapor_bridge_complaints{") {
            bail!("the scrape lacks the complaint gauges");
        }
        // The first five warm the connection and the pool.
        if i >= 5 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    shutdown.cancel();
    let _ = server.await;
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    eprintln!(
        "scrape with {complaints} complaints: snapshot counted in {snapshot_ms:.1} ms; \
         {} scrapes p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        ms.len()
    );
    Ok(
        json!({"complaints": complaints, "snapshot_ms": snapshot_ms, "scrapes": ms.len(),
              "p50_ms": p50, "p99_ms": p99, "max_ms": max}),
    )
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(str::to_string))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_string())
        })
        .unwrap_or_default();
    json!({"cpus": cpus, "cpu": cpu, "memory": mem, "date": chrono::Utc::now().to_rfc3339(),
           "version": env!("CARGO_PKG_VERSION")})
}

fn bench_doc(local_ref: &str) -> Value {
    json!({"local_ref": local_ref, "title": "Benchmark complaint",
           "content": "A complaint queued by the benchmark.", "category_id": 1,
           "date_of_incident": "2026-11-01"})
}

async fn enqueue(pool: &PgPool, prefix: &str, n: usize) -> anyhow::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await?;
        for i in chunk {
            sqlx::query("SELECT lapor_bridge.submit_complaint($1)")
                .bind(bench_doc(&format!("{prefix}-{i:07}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn wait_until_done(pool: &PgPool, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM lapor_bridge.outbox WHERE state IN ('pending', 'running')",
        )
        .fetch_one(pool)
        .await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("{left} steps still pending after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// M complaints on the simulator, each linked to a local complaint whose
/// LAPOR!-owned fields already match (a steady-state reconciliation).
async fn seed_tracked(bridge: &Bridge, sim: &SimulatorProcess, n: usize) -> anyhow::Result<usize> {
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(format!("{}/_sim/seed", sim.root))
        .json(&json!({"count": n, "ref_prefix": "REC-"}))
        .send()
        .await?
        .json()
        .await?;
    let first = answer["first_id"]
        .as_i64()
        .context("seed answered no first id")?;
    sqlx::query(
        "INSERT INTO lapor_bridge.complaints
             (local_ref, origin, title, content, category_id, lapor_complaint_id, tracking_id,
              lapor_status_name, status, lapor_disposition_id)
         SELECT 'REC-' || i, 'local', 'Seeded complaint ' || i, 'seeded', 1, $1 + i, '',
                'Belum Terverifikasi', 'unverified', $3
           FROM generate_series(0, $2 - 1) AS i",
    )
    .bind(first)
    .bind(n as i64)
    .bind(bridge.institution_id())
    .execute(&bridge.pool)
    .await?;
    Ok(n)
}

async fn pgbench(options: &sqlx::postgres::PgConnectOptions, secs: u64) -> anyhow::Result<f64> {
    let db = options
        .get_database()
        .unwrap_or(PGBENCH_DATABASE)
        .to_string();
    let host = options.get_host().to_string();
    let port = options.get_port().to_string();
    let user = options.get_username().to_string();
    let common = ["-h", &host, "-p", &port, "-U", &user];
    let init = tokio::process::Command::new("pgbench")
        .args(common)
        .args(["-i", "-q", "-s", "10", &db])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("running pgbench -i (is pgbench installed?)")?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let run = tokio::process::Command::new("pgbench")
        .args(common)
        .args(["-N", "-c", "8", "-j", "2", "-T", &secs.to_string(), &db])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&run.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench output: {text}"))
}

/// The simulator as a child process (`lapor-bridge simulator`).
struct SimulatorProcess {
    child: tokio::process::Child,
    root: String,
}

impl SimulatorProcess {
    async fn start() -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let exe = std::env::current_exe()?;
        let child = tokio::process::Command::new(exe)
            .args(["simulator", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("LAPOR_API_TOKEN")
            .env_remove("LAPOR_INSTANSI_TOKEN")
            .env_remove("LAPOR_AUTH_HEADER")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let root = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{root}/_sim/faults")).send().await.is_ok() {
                return Ok(Self { child, root });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the simulator did not start")
    }
}

impl Drop for SimulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::process_cpu;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        // utime 250, stime 50, cutime 100, cstime 0 ticks: 4 s.
        let stat = "4242 (tokio (runtime) w) S 1 4242 4242 0 -1 4194304 101 0 0 0 \
                    250 50 100 0 20 0 9 0 188329 3133440 382";
        assert_eq!(process_cpu(stat), Some(4.0));
        assert_eq!(process_cpu("garbage"), None);
    }
}
