//! `lapor-bridge bench`: measures the outbox and reconciliation on this
//! machine, in one run, against a LAPOR! simulator in a child process (so
//! that the bridge's own memory is measured alone):
//!
//! 1. `pgbench -N -c 8 -j 2` TPS on the same PostgreSQL (its commit rate);
//! 2. drain: N queued complaints delivered by `lapor-bridge run` started as
//!    a child process, from its `/healthz` to the last create acknowledged;
//! 3. enqueue-to-delivered latency at an offered rate for a while;
//! 4. follow-ups submitted while a deep reconciliation spends a rate budget;
//! 5. a deep, then a listing-first, reconciliation of M tracked complaints;
//! 6. scrapes of `/metrics` with all of that stored (`--scrape-only`: this
//!    phase alone, over `--scrape-complaints` complaints).
//!
//! Peak resident memory is taken for each phase (the daemon's in 2-3).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::outbox::Engine;
use crate::store::{self, complaints};

pub const BENCH_DATABASE: &str = "lapor_bridge_bench";
pub const SOAK_DATABASE: &str = "lapor_bridge_soak";
const PGBENCH_DATABASE: &str = "lapor_bridge_pgbench";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Complaints queued for the drain phase.
    #[arg(long, default_value_t = 20_000)]
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
    /// Tracked complaints of the deep reconciliation that runs while the
    /// city's follow-ups are measured.
    #[arg(long, default_value_t = 20_000)]
    pub deep_tracked: usize,
    /// The rate budget (BRIDGE_RATE_LIMIT_PER_SEC) of that phase.
    #[arg(long, default_value_t = 20)]
    pub deep_rate: u32,
    /// How long follow-ups (two a second) are submitted during it.
    #[arg(long, default_value_t = 60)]
    pub deep_secs: u64,
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
        match submit(pool, &bench_doc(&format!("SOAK-{i:08}"))).await {
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
            let measured = store::bench::outbox_size(pool).await;
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
    let dead = store::bench::dead_steps(pool).await?;
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
    /// `bridge_pid`: the daemon's process (None: this one).
    fn now(bridge_pid: Option<u32>, simulator_pid: Option<u32>) -> Self {
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
            bridge: bridge_pid.map_or_else(|| of("self"), |p| of(&p.to_string())),
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
        eprintln!("pgbench -N -c 8 -j 2: {tps:.0} TPS");
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
    crate::db::drop_schema(&pool).await?;
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
    if let Some(secs) = opts.soak_secs {
        settings.bridge.outbox_retention_hours = 0;
        settings.bridge.retry_base_ms = 100;
        settings.bridge.retry_max_ms = 5_000;
        settings.bridge.max_attempts = 50;
        let bridge = Bridge::new(pool.clone(), settings, Arc::new(SystemClock))?;
        reset_peak_rss();
        let result = soak(&bridge, &sim, &opts, secs).await?;
        report.insert("soak".into(), result);
        println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
        return Ok(());
    }

    // The outbox phases run `lapor-bridge run` itself, as a child process:
    // what production runs, with its own memory.
    let daemon = drain(&pool, &sim, &settings, &opts, tps, &mut report).await?;
    latency(&pool, &sim, &daemon, &opts, &mut report).await?;
    daemon.stop().await;
    writes_during_deep_reconcile(&pool, &sim, &settings, &opts, &mut report).await?;

    let bridge = Bridge::new(pool.clone(), settings, Arc::new(SystemClock))?;
    reconcile(&bridge, &sim, &opts, &mut report).await?;
    // Scrapes of /metrics with everything the phases above stored.
    report.insert("scrape".into(), scrape_phase(&bridge, opts.scrapes).await?);
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(())
}

/// N queued complaints delivered by a daemon that starts on them: from its
/// `/healthz` answering to the simulator acknowledging the last create.
async fn drain(
    pool: &PgPool,
    sim: &SimulatorProcess,
    settings: &Settings,
    opts: &BenchOptions,
    tps: f64,
    report: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<DaemonProcess> {
    let enqueue_started = Instant::now();
    enqueue(pool, "DRAIN", opts.complaints).await?;
    let enqueue_rate = opts.complaints as f64 / enqueue_started.elapsed().as_secs_f64();
    let before = acknowledged_creates(&sim.stats().await?);
    let daemon = DaemonProcess::start(settings, 0).await?;
    let started = Instant::now();
    let cpu = CpuTimes::now(daemon.pid(), sim.child.id());
    sim.wait_for_creates(before + opts.complaints as u64, Duration::from_secs(1800))
        .await?;
    let drain_secs = started.elapsed().as_secs_f64();
    let drain_cpu = cpu.since(
        CpuTimes::now(daemon.pid(), sim.child.id()),
        drain_secs,
        opts.complaints,
    );
    wait_until_done(pool, Duration::from_secs(60)).await?;
    let drain_rate = opts.complaints as f64 / drain_secs;
    let drain_rss = daemon.peak_rss_mib();
    eprintln!(
        "drain: {} complaints in {drain_secs:.2} s = {drain_rate:.0}/s ({:.2}x pgbench), peak RSS {:.1} MiB",
        opts.complaints,
        drain_rate / tps,
        drain_rss.unwrap_or(0.0)
    );
    report.insert(
        "drain".into(),
        json!({"complaints": opts.complaints, "seconds": drain_secs, "per_second": drain_rate,
               "ratio_to_pgbench": drain_rate / tps, "enqueue_per_second": enqueue_rate,
               "measured_from": "the daemon's /healthz answering",
               "measured_to": "the simulator acknowledging the last create",
               "peak_rss_mib": drain_rss, "cpu": drain_cpu}),
    );
    Ok(daemon)
}

/// Enqueue-to-delivered time at an offered rate.
async fn latency(
    pool: &PgPool,
    sim: &SimulatorProcess,
    daemon: &DaemonProcess,
    opts: &BenchOptions,
    report: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    daemon.reset_peak_rss();
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.rate.max(1)));
    let total = (u64::from(opts.rate) * opts.latency_secs) as usize;
    let cpu = CpuTimes::now(daemon.pid(), sim.child.id());
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        tick.tick().await;
        let doc = bench_doc(&format!("LAT-{i:07}"));
        submit(pool, &doc).await?;
    }
    wait_until_done(pool, Duration::from_secs(600)).await?;
    let latency_cpu = cpu.since(
        CpuTimes::now(daemon.pid(), sim.child.id()),
        started.elapsed().as_secs_f64(),
        total,
    );
    let (p50, p99, max) = step_latency(pool, "LAT-%", "create").await?;
    let latency_rss = daemon.peak_rss_mib();
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
    Ok(())
}

/// Submit-to-delivered time of the city's follow-ups while a deep
/// reconciliation reads every tracked complaint under a rate budget: the
/// writes must take the next slot.
async fn writes_during_deep_reconcile(
    pool: &PgPool,
    sim: &SimulatorProcess,
    settings: &Settings,
    opts: &BenchOptions,
    report: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let first = seed_tracked(pool, sim, "DEEP-", opts.deep_tracked, settings).await?;
    // A few of them verified upstream and here, so follow-ups go at once.
    let targets = opts.deep_tracked.min(50);
    for i in 0..targets {
        sim.set_status(first + i as i64, "Terverifikasi").await?;
    }
    let verified: Vec<String> = (0..targets).map(|i| format!("DEEP-{i}")).collect();
    store::bench::mark_verified(pool, &verified).await?;
    let daemon = DaemonProcess::start(settings, opts.deep_rate).await?;
    let reads_before = sim.reads().await?;
    let http = reqwest::Client::new();
    let reconcile = {
        let http = http.clone();
        let url = format!("{}/api/v1/reconcile?deep=true", daemon.root);
        let token = daemon.admin_token.clone();
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await })
    };
    // Let the reconciliation fill the budget before the first write.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(opts.deep_secs) {
        tick.tick().await;
        let local_ref = format!("DEEP-{}", sent % targets.max(1));
        let answer = http
            .post(format!(
                "{}/api/v1/complaints/{local_ref}/followups",
                daemon.root
            ))
            .bearer_auth(&daemon.admin_token)
            .json(&json!({"content": format!("Tindak lanjut benchmark {sent}.")}))
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!(
                "a follow-up was refused: {} {}",
                answer.status(),
                answer.text().await.unwrap_or_default()
            );
        }
        sent += 1;
    }
    wait_until_done_step(pool, "followup", Duration::from_secs(120)).await?;
    let reads = sim.reads().await? - reads_before;
    let window = started.elapsed().as_secs_f64() + 2.0;
    reconcile.abort();
    daemon.stop().await;
    let (p50, p99, max) = step_latency(pool, "DEEP-%", "followup").await?;
    eprintln!(
        "writes during a deep reconciliation at {}/s: {sent} follow-ups, p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms ({reads} reads meanwhile)",
        opts.deep_rate
    );
    report.insert(
        "writes_during_deep_reconcile".into(),
        json!({"tracked": opts.deep_tracked, "rate_limit_per_sec": opts.deep_rate,
               "followups": sent, "seconds": window, "reads": reads,
               "reads_per_second": reads as f64 / window,
               "p50_ms": p50, "p99_ms": p99, "max_ms": max}),
    );
    Ok(())
}

/// A deep reconciliation of M tracked complaints, then the daily
/// listing-first one of the same, unchanged.
async fn reconcile(
    bridge: &Bridge,
    sim: &SimulatorProcess,
    opts: &BenchOptions,
    report: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    seed_tracked(&bridge.pool, sim, "REC-", opts.reconcile, &bridge.settings).await?;
    reset_peak_rss();
    let cpu = CpuTimes::now(None, sim.child.id());
    let started = Instant::now();
    let (summary, requests) =
        crate::lapor::client::counting(crate::inbound::sync::reconcile(bridge, true)).await;
    let mut summary = summary?;
    summary.count_requests(requests);
    let reconcile_secs = started.elapsed().as_secs_f64();
    let reconcile_cpu = cpu.since(
        CpuTimes::now(None, sim.child.id()),
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
        json!({"deep": true, "checked": summary.checked, "errors": summary.errors,
               "seconds": reconcile_secs, "per_second": f64::from(summary.checked) / reconcile_secs,
               "requests": summary.requests, "requests_per_complaint": summary.requests_per_complaint,
               "peak_rss_mib": reconcile_rss, "cpu": reconcile_cpu}),
    );
    let started = Instant::now();
    let (listing, requests) =
        crate::lapor::client::counting(crate::inbound::sync::reconcile(bridge, false)).await;
    let mut listing = listing?;
    listing.count_requests(requests);
    let listing_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "reconcile (listing first): {} tracked complaints in {listing_secs:.1} s, {} requests ({:.3} a complaint, {} details read)",
        listing.checked, listing.requests, listing.requests_per_complaint, listing.details_read
    );
    report.insert(
        "reconcile_listing_first".into(),
        json!({"checked": listing.checked, "errors": listing.errors,
               "details_read": listing.details_read, "seconds": listing_secs,
               "requests": listing.requests, "requests_per_complaint": listing.requests_per_complaint}),
    );
    Ok(())
}

/// p50, p99 and max of enqueue-to-delivered time of one step kind, in ms.
async fn step_latency(pool: &PgPool, refs: &str, step: &str) -> anyhow::Result<(f64, f64, f64)> {
    let row = store::bench::step_latency(pool, refs, step).await?;
    match row {
        (Some(p50), Some(p99), Some(max)) => Ok((p50, p99, max)),
        _ => bail!("no {step} step of {refs} was delivered"),
    }
}

/// Creates the simulator answered with success.
fn acknowledged_creates(stats: &Value) -> u64 {
    ["200", "201"]
        .iter()
        .filter_map(|s| stats["requests"]["create"][s].as_u64())
        .sum()
}

fn endpoint_total(stats: &Value, endpoint: &str) -> u64 {
    stats["requests"][endpoint]
        .as_object()
        .map(|by| by.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Times scrapes of `/metrics` over HTTP against what the database holds:
/// the snapshot is counted once (what one replica does every 30 s), then
/// every scrape reads it.
async fn scrape_phase(bridge: &Bridge, scrapes: usize) -> anyhow::Result<Value> {
    let complaints = store::bench::complaint_count(&bridge.pool).await?;
    let started = Instant::now();
    crate::gauges::refresh(bridge).await?;
    let snapshot_ms = started.elapsed().as_secs_f64() * 1000.0;
    let state = crate::web::AppState {
        bridge: bridge.clone(),
        tokens: Arc::new(crate::web::api::auth::TokenStore::default()),
        jobs: Arc::new(crate::inbound::Jobs::new(bridge.clone())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::web::serve(listener, state, shutdown.clone()));
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

/// Submits one complaint as an application would.
async fn submit(pool: &PgPool, doc: &Value) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    complaints::submit(&mut conn, doc).await?;
    Ok(())
}

async fn enqueue(pool: &PgPool, prefix: &str, n: usize) -> anyhow::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await?;
        for i in chunk {
            complaints::submit(&mut tx, &bench_doc(&format!("{prefix}-{i:07}"))).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn wait_until_done(pool: &PgPool, limit: Duration) -> anyhow::Result<()> {
    wait_until_done_step(pool, "%", limit).await
}

/// Waits until no step of the kind (`%`: any) is pending or running.
async fn wait_until_done_step(pool: &PgPool, step: &str, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let left = store::bench::unfinished_steps(pool, step).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("{left} steps still pending after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// N complaints on the simulator, each linked to a local complaint whose
/// LAPOR!-owned fields already match (a steady-state reconciliation).
/// Returns the LAPOR! id of `<prefix>0`; `<prefix>i` has that id plus i.
async fn seed_tracked(
    pool: &PgPool,
    sim: &SimulatorProcess,
    prefix: &str,
    n: usize,
    settings: &Settings,
) -> anyhow::Result<i64> {
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(format!("{}/_sim/seed", sim.root))
        .json(&json!({"count": n, "ref_prefix": prefix}))
        .send()
        .await?
        .json()
        .await?;
    let first = answer["first_id"]
        .as_i64()
        .context("seed answered no first id")?;
    store::bench::seed_tracked(pool, prefix, first, n as i64, settings.lapor.institution_id)
        .await?;
    Ok(first)
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

impl SimulatorProcess {
    async fn stats(&self) -> anyhow::Result<Value> {
        Ok(reqwest::get(format!("{}/_sim/stats", self.root))
            .await?
            .json()
            .await?)
    }

    /// Requests to LAPOR!'s read endpoints so far.
    async fn reads(&self) -> anyhow::Result<u64> {
        let stats = self.stats().await?;
        Ok(stats["requests"]
            .as_object()
            .map(|by| {
                by.keys()
                    .filter(|e| {
                        !matches!(e.as_str(), "upload" | "create" | "followup_add" | "forward")
                    })
                    .map(|e| endpoint_total(&stats, e))
                    .sum()
            })
            .unwrap_or(0))
    }

    /// Waits until the simulator has acknowledged `n` creates in all.
    async fn wait_for_creates(&self, n: u64, limit: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + limit;
        let http = reqwest::Client::new();
        loop {
            let stats: Value = http
                .get(format!("{}/_sim/stats", self.root))
                .send()
                .await?
                .json()
                .await?;
            let acknowledged = acknowledged_creates(&stats);
            if acknowledged >= n {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("{acknowledged} of {n} creates acknowledged after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn set_status(&self, lapor_id: i64, name: &str) -> anyhow::Result<()> {
        let answer = reqwest::Client::new()
            .post(format!("{}/_sim/complaints/{lapor_id}/status", self.root))
            .json(&json!({"status_name": name}))
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("the simulator refused a status change: {}", answer.status());
        }
        Ok(())
    }
}

/// `lapor-bridge run` as a child process against the bench database and
/// the simulator, with an admin token of its own.
struct DaemonProcess {
    child: tokio::process::Child,
    root: String,
    admin_token: String,
}

impl DaemonProcess {
    /// Starts the daemon and returns once `/healthz` answers.
    async fn start(settings: &Settings, rate_limit_per_sec: u32) -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let admin_token = format!("bench-{:032x}", rand::random::<u128>());
        let log_path = std::env::temp_dir().join("lapor-bridge-bench-daemon.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let pii_key = settings
            .pii
            .key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_default();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("run")
            .env("DATABASE_URL", settings.database.url.expose_secret())
            .env("LAPOR_BASE_URL", &settings.lapor.base_url)
            .env("LAPOR_API_TOKEN", settings.lapor.api_token.expose_secret())
            .env(
                "LAPOR_INSTANSI_TOKEN",
                settings.lapor.instansi_token.expose_secret(),
            )
            .env(
                "LAPOR_INSTITUTION_ID",
                settings.lapor.institution_id.to_string(),
            )
            .env("BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
            .env("BRIDGE_ADMIN_TOKEN", &admin_token)
            .env(
                "BRIDGE_CONCURRENCY",
                settings.bridge.concurrency.to_string(),
            )
            .env("BRIDGE_RATE_LIMIT_PER_SEC", rate_limit_per_sec.to_string())
            .env("BRIDGE_PII_KEY", pii_key)
            .env_remove("BRIDGE_AUDIT_CHECKPOINT_FILE")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let root = format!("http://127.0.0.1:{port}");
        let daemon = Self {
            child,
            root,
            admin_token,
        };
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(answer) = http.get(format!("{}/healthz", daemon.root)).send().await
                && answer.status().is_success()
            {
                return Ok(daemon);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!(
            "the daemon did not answer /healthz within a minute; see {}",
            log_path.display()
        )
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The daemon's peak resident memory since the last reset, in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    fn reset_peak_rss(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// SIGTERM, as a service manager stops it; killed if it lingers.
    async fn stop(mut self) {
        if let Some(pid) = self.pid() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
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
