//! The daemon (`lapor-bridge run`): outbox workers, scheduled pull and
//! reconciliation, the admin HTTP server and the auxiliary tasks, all tasks
//! of one [`Supervisor`], stopped by one cancellation signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::checkpoints;
use crate::clock::{DatabaseClock, SharedClock};
use crate::config::Settings;
use crate::inbound::{Job, JobError, Jobs};
use crate::outbox::Engine;
use crate::store::audit::{self, NewEntry};
use crate::supervisor::Supervisor;
use crate::web::{self, AppState, api::auth::TokenStore};

/// Why `run` does not start without a key.
pub const NO_PII_KEY: &str = "BRIDGE_PII_KEY is not set: reporter identity (name, phone, email, \
NIK, address) is stored only encrypted, so the bridge needs a key. Generate one with \
`openssl rand -base64 32`, keep it in your secret store and a backup (losing it loses every \
stored identity), and set BRIDGE_PII_KEY (or [pii] key). See docs/privacy.md.";

/// What `run` warns about at start, one line each: settings that work but
/// leave the bridge unusable or exposed.
pub fn start_warnings(settings: &Settings) -> Vec<String> {
    use secrecy::ExposeSecret;
    let mut out = Vec::new();
    if settings.bridge.admin_token.is_none() && settings.tokens.is_empty() {
        out.push(
            "no API token can sign in: neither BRIDGE_ADMIN_TOKEN nor [[tokens]] is set, so the \
             API and the dashboard refuse everyone"
                .to_string(),
        );
    }
    let empty: Vec<&str> = [
        ("LAPOR_API_TOKEN", &settings.lapor.api_token),
        ("LAPOR_INSTANSI_TOKEN", &settings.lapor.instansi_token),
    ]
    .into_iter()
    .filter(|(_, token)| token.expose_secret().trim().is_empty())
    .map(|(name, _)| name)
    .collect();
    if !empty.is_empty() {
        out.push(format!(
            "{} empty: LAPOR! will reject every request until set",
            if empty.len() == 1 {
                format!("{} is", empty[0])
            } else {
                format!("{} are", empty.join(" and "))
            }
        ));
    }
    let listen = settings.bridge.listen;
    if !listen.ip().is_loopback() {
        out.push(format!(
            "listening on {listen}, beyond this machine, over plain HTTP: put a TLS-terminating \
             reverse proxy in front (tokens and reporter identity travel in the clear otherwise)"
        ));
    }
    out
}

/// A running daemon, for `run`, `demo` and tests.
pub struct Daemon {
    pub bridge: Bridge,
    pub addr: std::net::SocketAddr,
    pub engine: Arc<Engine>,
    supervisor: Supervisor,
    jobs: Arc<Jobs>,
}

impl Daemon {
    /// Connects, migrates (as the schema owner; under the runtime role it
    /// refuses to start while migrations are pending), records the
    /// configuration in force, binds the admin server and starts every part.
    /// `schedule`: run the pull and reconcile schedules (tests leave them off
    /// and call jobs directly).
    pub async fn start(
        settings: Settings,
        clock: SharedClock,
        shutdown: CancellationToken,
        schedule: bool,
    ) -> anyhow::Result<Self> {
        // The API and `submit_complaint` accept reporter identity at any
        // time, so the daemon never runs without the key to encrypt it.
        let keyring = crate::pii::Keyring::from_settings(&settings.pii)?
            .map(Arc::new)
            .ok_or_else(|| anyhow::anyhow!("{}", NO_PII_KEY))?;
        let pool = prepare_database(&settings, &clock, &keyring).await?;
        let listener = tokio::net::TcpListener::bind(settings.bridge.listen)
            .await
            .with_context(|| format!("binding BRIDGE_LISTEN {}", settings.bridge.listen))?;
        let addr = listener.local_addr()?;
        let bridge = Bridge::new(pool, settings, clock).context("building the LAPOR! client")?;
        record_configuration(&bridge).await?;

        let mut supervisor = Supervisor::new(shutdown.clone());
        let engine = Engine::new(bridge.clone());
        spawn_engine(&mut supervisor, &engine, &shutdown);
        spawn_background(&mut supervisor, &bridge, keyring, &shutdown).await?;
        let jobs = Arc::new(Jobs::with_shutdown(bridge.clone(), shutdown.clone()));
        let state = AppState {
            bridge: bridge.clone(),
            tokens: Arc::new(TokenStore::from_settings(&bridge.settings)),
            jobs: jobs.clone(),
        };
        let server_shutdown = shutdown.clone();
        supervisor.spawn_fallible("http server", async move {
            web::serve(listener, state, server_shutdown)
                .await
                .context("admin HTTP server failed")
        });
        if schedule {
            let scheduler = start_schedules(&bridge, jobs.clone()).await?;
            supervisor.spawn("schedules", stop_schedules_at(scheduler, shutdown));
        }
        tracing::info!(%addr, "lapor-bridge running");
        Ok(Self {
            bridge,
            addr,
            engine,
            supervisor,
            jobs,
        })
    }

    /// Waits for every part to stop (after the shutdown signal): no new
    /// scheduled run starts, and runs in flight are stopped and closed.
    /// Failures are logged as they happen.
    pub async fn wait(self) {
        let _ = self.finish().await;
    }

    /// [`Daemon::wait`], and an error when a task the daemon cannot work
    /// without ended or failed before shutdown (it then cancelled the
    /// shutdown token itself).
    pub async fn finish(self) -> anyhow::Result<()> {
        let stopped = self.supervisor.wait().await;
        self.jobs.stop().await;
        stopped
    }
}

/// Opens the database (`run` never creates one: a typo in DATABASE_URL must
/// not start an empty bridge), migrates or checks it, measures the clock's
/// offset and encrypts any plain reporter identity left behind.
async fn prepare_database(
    settings: &Settings,
    clock: &SharedClock,
    keyring: &crate::pii::Keyring,
) -> anyhow::Result<sqlx::PgPool> {
    let (pool, target) = crate::db::open(&settings.database).await?;
    tracing::info!(database = %target.name, host = %target.host, port = target.port, "opened {target}");
    for warning in start_warnings(settings) {
        tracing::warn!("{warning}");
    }
    crate::db::migrate_or_check(&pool)
        .await
        .context("preparing the database")?;
    // Leases and deadlines count on the database's clock.
    {
        let mut conn = pool.acquire().await?;
        clock.observe_offset(crate::db::clock_offset(&mut conn).await?);
    }
    // Plain text left by a migration or a direct submit_complaint() is
    // encrypted before anything is served.
    crate::pii::task::prepare(&pool, keyring)
        .await
        .context("encrypting reporter identities")?;
    Ok(pool)
}

/// The outbox workers, their lease heartbeat and maintenance. The heartbeat
/// and maintenance stop after the workers have drained (or died): the steps
/// in flight keep their leases until then.
fn spawn_engine(supervisor: &mut Supervisor, engine: &Arc<Engine>, shutdown: &CancellationToken) {
    let drained = CancellationToken::new();
    supervisor.spawn(
        "outbox heartbeat",
        engine.clone().heartbeat(drained.clone()),
    );
    let (maintained, until) = (engine.clone(), drained.clone());
    supervisor.spawn_restarting("outbox maintenance", move || {
        maintained.clone().maintenance(until.clone())
    });
    let (workers, shutdown) = (engine.clone(), shutdown.clone());
    supervisor.spawn("outbox workers", async move {
        let _drained = drained.drop_guard();
        workers.work(shutdown).await;
    });
}

/// The auxiliary tasks: reporter sealing and retention, the gauges of
/// /metrics, the SLA check and webhook delivery start again if they end
/// before shutdown; the audit checkpoints writer, which keeps the last head
/// it wrote, stops the daemon instead.
async fn spawn_background(
    supervisor: &mut Supervisor,
    bridge: &Bridge,
    keyring: Arc<crate::pii::Keyring>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (b, s) = (bridge.clone(), shutdown.clone());
    supervisor.spawn_restarting("pii", move || {
        crate::pii::task::run(b.clone(), keyring.clone(), s.clone())
    });
    // The database gauges of /metrics, counted by one replica at a time.
    let (b, s) = (bridge.clone(), shutdown.clone());
    supervisor.spawn_restarting("metrics gauges", move || {
        crate::gauges::run(b.clone(), s.clone())
    });
    let (b, s) = (bridge.clone(), shutdown.clone());
    supervisor.spawn_restarting("sla check", move || crate::feed::run(b.clone(), s.clone()));
    if let Some(dispatcher) = crate::feed::webhook::Dispatcher::start(bridge.clone())
        .await
        .context("registering the webhook endpoints")?
    {
        let s = shutdown.clone();
        supervisor.spawn_restarting("webhook delivery", move || {
            dispatcher.clone().run(s.clone())
        });
    }
    if let Some(path) = bridge.settings.audit.checkpoint_file.clone() {
        let writer = checkpoints::Writer::open(path, bridge.clock.clone())
            .await
            .context("audit.checkpoint_file (BRIDGE_AUDIT_CHECKPOINT_FILE)")?;
        let every = Duration::from_secs(bridge.settings.audit.checkpoint_secs);
        // The writer holds the last head it saw: it is not started twice.
        supervisor.spawn(
            "audit checkpoints",
            writer.run(bridge.pool.clone(), every, shutdown.clone()),
        );
    }
    Ok(())
}

/// The configuration in force at start goes into the audit log (no secrets).
async fn record_configuration(bridge: &Bridge) -> anyhow::Result<()> {
    let s = &bridge.settings;
    let mut conn = bridge.pool.acquire().await?;
    audit::append(
        &mut conn,
        &NewEntry {
            at: bridge.clock.now(),
            actor: "bridge",
            local_ref: None,
            action: "bridge.started",
            before: None,
            after: Some(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "lapor_base_url": s.lapor.base_url,
                "institution_id": s.lapor.institution_id,
                "auth_header": s.lapor.auth_header.as_str(),
                "concurrency": s.bridge.concurrency,
                "rate_limit_per_sec": s.bridge.rate_limit_per_sec,
                "retry_base_ms": s.bridge.retry_base_ms,
                "retry_max_ms": s.bridge.retry_max_ms,
                "max_attempts": s.bridge.max_attempts,
                "http_timeout_ms": s.bridge.http_timeout_ms,
                "poll_interval_secs": s.bridge.poll_interval_secs,
                "reconcile_cron": s.bridge.reconcile_cron,
                "deep_reconcile_cron": s.bridge.deep_reconcile_cron,
                "holidays": s.sla.holidays.len(),
                "audit_checkpoint_file": s.audit.checkpoint_file.as_ref().map(|p| p.display().to_string()),
                "audit_checkpoint_secs": s.audit.checkpoint_secs,
                "pii_key_id": bridge.pii.as_ref().map(|k| k.current_id().to_string()),
                "pii_old_keys": s.pii.old_keys.len(),
                "pii_retention_days": s.pii.retention_days,
                "tokens": s.tokens.iter().map(|t| json!({"name": t.name, "role": t.role})).collect::<Vec<_>>(),
                "webhooks": s.webhooks.iter().map(|w| json!({
                    "url": crate::feed::webhook::shown(&w.url),
                    "events": w.events,
                })).collect::<Vec<_>>(),
            })),
        },
    )
    .await?;
    Ok(())
}

/// A run's result in one line: outcome, counts and the first problem.
pub fn run_line(result: &serde_json::Value) -> String {
    let s = &result["summary"];
    let n = |k: &str| s.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let mut line = format!(
        "{} (run {}): {} checked, {} imported, {} failed, {} conflict(s)",
        result["outcome"].as_str().unwrap_or("?"),
        result["run_id"],
        n("checked"),
        n("imported"),
        n("failed"),
        n("conflicts"),
    );
    let problems = s.get("problems").and_then(serde_json::Value::as_array);
    if let Some(first) = problems
        .and_then(|p| p.first())
        .and_then(serde_json::Value::as_str)
    {
        let more = n("errors").saturating_sub(1);
        line.push_str(&format!("; first problem: {first}"));
        if more > 0 {
            line.push_str(&format!(" (and {more} more)"));
        }
    }
    line
}

async fn scheduled(jobs: Arc<Jobs>, job: Job) {
    match jobs.run(job, "schedule", false).await {
        Ok(result) => {
            // One short line: the problems themselves are in job_runs and on
            // the dashboard, not repeated in the log at every tick.
            let line = run_line(&result);
            match result.get("outcome").and_then(serde_json::Value::as_str) {
                Some("ok") => tracing::info!(job = job.name(), "scheduled run finished: {line}"),
                _ => tracing::warn!(job = job.name(), "scheduled run finished: {line}"),
            }
        }
        Err(JobError::Busy(_)) => {
            tracing::debug!(job = job.name(), "another replica is running it")
        }
        Err(JobError::Aborted(_)) => {}
        Err(e) => {
            tracing::error!(job = job.name(), error = %e, "scheduled run failed; retried at the next tick")
        }
    }
}

async fn start_schedules(bridge: &Bridge, jobs: Arc<Jobs>) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let every = Duration::from_secs(bridge.settings.bridge.poll_interval_secs);
    let pull_jobs = jobs.clone();
    scheduler
        .add(CronJob::new_repeated_async(every, move |_, _| {
            let jobs = pull_jobs.clone();
            Box::pin(async move { scheduled(jobs, Job::Pull).await })
        })?)
        .await?;
    for (key, cron, job) in [
        (
            "bridge.reconcile_cron",
            bridge.settings.bridge.reconcile_cron.clone(),
            Job::Reconcile,
        ),
        (
            "bridge.deep_reconcile_cron",
            bridge.settings.bridge.deep_reconcile_cron.clone(),
            Job::DeepReconcile,
        ),
    ] {
        let jobs = jobs.clone();
        scheduler
            .add(
                CronJob::new_async_tz(cron.as_str(), crate::time::wib(), move |_, _| {
                    let jobs = jobs.clone();
                    Box::pin(async move { scheduled(jobs, job).await })
                })
                .with_context(|| format!("{key} {cron:?} is not a valid schedule"))?,
            )
            .await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}

/// The scheduler runs tasks of its own; this one stops it at shutdown, so
/// that no new scheduled run starts.
async fn stop_schedules_at(mut scheduler: JobScheduler, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "stopping the schedules");
    }
}

/// `lapor-bridge run`.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // `run` upgrades an older schema but lays none down: the first one comes
    // from `lapor-bridge migrate`, run on purpose against the right database.
    {
        let (pool, target) = crate::db::open(&settings.database).await?;
        crate::db::require_some_schema(&pool, &target).await?;
        pool.close().await;
    }
    let shutdown = crate::shutdown::on_signal();
    let clock = Arc::new(DatabaseClock::default());
    let daemon = Daemon::start(settings, clock, shutdown, true).await?;
    daemon.finish().await
}

#[cfg(test)]
mod warning_tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn run_warns_once_per_problem_in_one_line() {
        let mut s = Settings::default();
        s.bridge.listen = "0.0.0.0:8080".parse().unwrap();
        s.lapor.api_token = SecretString::from("");
        s.lapor.instansi_token = SecretString::from("x");
        let w = start_warnings(&s);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("no API token can sign in"));
        assert!(w[1].contains("LAPOR_API_TOKEN is empty"));
        assert!(w[2].contains("0.0.0.0:8080") && w[2].contains("TLS"));
        assert!(w.iter().all(|l| !l.contains('\n')));
        s.bridge.listen = "127.0.0.1:8080".parse().unwrap();
        s.bridge.admin_token = Some(SecretString::from("a-long-admin-token-123"));
        s.lapor.api_token = SecretString::from("x");
        assert!(start_warnings(&s).is_empty());
    }

    #[test]
    fn a_run_is_logged_in_one_short_line() {
        let problems: Vec<String> = (0..40)
            .map(|i| format!("PLG-{i}: LAPOR! had a server error"))
            .collect();
        let result = json!({"run_id": 7, "outcome": "partial",
            "summary": {"checked": 50, "failed": 40, "errors": 40, "problems": problems}});
        let line = run_line(&result);
        assert!(line.starts_with("partial (run 7): 50 checked"), "{line}");
        assert!(
            line.contains("PLG-0") && line.contains("and 39 more"),
            "{line}"
        );
        assert!(!line.contains("PLG-1:"), "{line}");
        assert!(!line.contains('\n'));
    }
}
