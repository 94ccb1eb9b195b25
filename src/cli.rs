//! The command line: `lapor-bridge <command>`. Host commands read the
//! database directly. Exit codes: 0 done, 1 the check or action failed,
//! 2 usage or configuration error, or not available.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::actions::{self, ActionError, StepAction};
use crate::bridge::Bridge;
use crate::clock::DatabaseClock;
use crate::config::{ProcessEnv, Settings};
use crate::db::Target;
use crate::domain::StepState;
use crate::inbound::Jobs;
use crate::status_document::StatusDocument;
use crate::store::audit::{self, Verification};
use crate::store::{complaints, outbox, webhooks};

#[derive(Debug, Parser)]
#[command(
    name = "lapor-bridge",
    version,
    about = "Keeps a city's complaint center and SP4N-LAPOR! in step"
)]
pub struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon: outbox workers, scheduled pull and reconcile, admin HTTP server.
    Run,
    /// Apply the embedded migrations and exit.
    Migrate,
    /// The LAPOR! simulator (state in memory).
    Simulator {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// This institution's id on the simulated LAPOR!.
        #[arg(long, default_value_t = 101)]
        institution_id: i64,
    },
    /// Simulator + daemon + seeded sample complaints; prints the dashboard URL.
    Demo {
        /// Where the dashboard and API listen (default: BRIDGE_LISTEN,
        /// 127.0.0.1:8080); `0.0.0.0:8080` in a container.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// First contact with the configured LAPOR!: read calls only (TLS,
    /// tokens, endpoints, document shapes, status names, clock), PASS / FAIL
    /// / UNKNOWN each with what to set; exit 1 when a check fails.
    Doctor,
    /// GET /healthz on the configured listen address (BRIDGE_LISTEN): exit 0
    /// when healthy, 1 otherwise; prints nothing on success.
    Healthcheck,
    /// Sync status of one complaint, or a summary table.
    Status { local_ref: Option<String> },
    /// Backlog and dead letters.
    Outbox {
        #[command(subcommand)]
        action: OutboxCommand,
    },
    /// Webhook endpoints and their deliveries: list, dead letters, enable.
    Webhooks {
        #[command(subcommand)]
        action: WebhooksCommand,
    },
    /// One incremental pull from LAPOR! now.
    Pull,
    /// One reconciliation now: LAPOR!'s listing first, details of what
    /// changed (`--deep`: every tracked complaint's detail).
    Reconcile {
        /// Read every tracked complaint's detail and follow-ups.
        #[arg(long)]
        deep: bool,
    },
    /// Measure drain rate, latency and reconciliation on this machine.
    Bench(crate::bench::BenchOptions),
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Reporter identity (personal data): rotate the key, erase, report.
    Pii {
        #[command(subcommand)]
        action: PiiCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PiiCommand {
    /// Encrypt staged identities and re-encrypt every identity under
    /// BRIDGE_PII_KEY; afterwards BRIDGE_PII_OLD_KEYS are no longer needed.
    Rotate,
    /// Erase one complaint's reporter identity for good (the complaint stays).
    Erase {
        local_ref: String,
        /// Why (e.g. the data subject's request and its date); kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// For the data protection officer: what is held, erased, and under which keys.
    Report,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// List steps: pending (with running), dead, done, discarded.
    List {
        #[arg(long, value_enum)]
        state: Option<StepState>,
    },
    /// Send a dead step again, with fresh attempts.
    Retry { id: i64 },
    /// Give up a dead or pending step.
    Discard { id: i64 },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// The endpoints (with pending and dead counts), or with `--state` the
    /// deliveries in that state: pending (with running), dead, done, discarded.
    List {
        #[arg(long, value_enum)]
        state: Option<StepState>,
    },
    /// Send a dead delivery again, with fresh attempts.
    Retry { id: i64 },
    /// Give up a dead or pending delivery.
    Discard { id: i64 },
    /// Enable an endpoint that a `410 Gone` disabled.
    Enable { id: i64 },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Export a period (RFC 3339 times or dates, UTC; until is exclusive).
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Also write the checkpoints (of `[audit] checkpoint_file`, checked)
        /// to FILE, in their own JSON-lines format.
        #[arg(long, value_name = "FILE")]
        checkpoints_out: Option<PathBuf>,
    },
    /// Recompute the hash chain and check every checkpoint against it.
    Verify {
        /// Checkpoints to check instead of `[audit] checkpoint_file` (e.g. a
        /// copy an auditor keeps elsewhere).
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
}

/// A failure with the exit code it earns.
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

/// The reader went away (`lapor-bridge ... | head`): end quietly.
fn closed_pipe() -> Failure {
    Failure {
        code: 0,
        message: String::new(),
    }
}

/// Writes to standard output; a closed pipe ends the command quietly
/// instead of a panic.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(closed_pipe()),
        Err(e) => Err(Failure::from(format!("cannot write the output: {e}"))),
    }
}

/// `println!` that ends quietly on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), &ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lapor-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(settings.bridge.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lapor-bridge: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("lapor-bridge: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Opens the database of DATABASE_URL, which must exist and hold the
/// current schema (only `migrate` and `demo` create or change it).
async fn bridge(settings: Settings) -> Result<(Bridge, Target), Failure> {
    let (pool, target) = crate::db::open(&settings.database).await?;
    crate::db::require_current_schema(&pool, &target).await?;
    let clock = DatabaseClock::measured(&pool).await?;
    Ok((Bridge::new(pool, settings, Arc::new(clock))?, target))
}

/// The first line of every command that opened the database: which one
/// (host and name, never the password).
fn opened(target: &Target, json: bool) -> Result<(), Failure> {
    if !json {
        out!("{target}");
    }
    Ok(())
}

/// JSON output; an object carries `"database"` (the one opened).
fn print_json(value: &impl serde::Serialize, target: Option<&Target>) -> Result<(), Failure> {
    let mut value = serde_json::to_value(value)
        .map_err(|e| Failure::from(format!("cannot encode output: {e}")))?;
    if let (Some(target), Value::Object(map)) = (target, &mut value) {
        map.insert(
            "database".into(),
            serde_json::to_value(target).unwrap_or(Value::Null),
        );
    }
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| Failure::from(format!("cannot encode output: {e}")))?;
    out!("{text}");
    Ok(())
}

/// Runs one command: each command, or group of subcommands, has a function
/// of its own below.
async fn dispatch(cli: Cli, settings: Settings) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        // A missing key is a configuration error (exit 2), said before connecting.
        Command::Run if settings.pii.key.is_none() => Err(usage(crate::app::NO_PII_KEY)),
        Command::Run => crate::app::run(settings)
            .await
            .map_err(|e| Failure::from(format!("{e:#}"))),
        Command::Migrate => migrate(settings, json).await,
        Command::Simulator {
            listen,
            institution_id,
        } => simulator(listen, institution_id).await,
        Command::Bench(opts) => crate::bench::run(settings, opts)
            .await
            .map_err(|e| Failure::from(format!("{e:#}"))),
        Command::Demo { listen } => demo(settings, listen).await,
        Command::Doctor => doctor(settings, json).await,
        Command::Healthcheck => {
            crate::healthcheck::check(settings.bridge.listen, crate::healthcheck::TIMEOUT)
                .await
                .map_err(Failure::from)
        }
        Command::Status { local_ref } => status(settings, local_ref, json).await,
        Command::Outbox { action } => outbox_command(settings, action, json).await,
        Command::Webhooks { action } => webhooks_command(settings, action, json).await,
        command @ (Command::Pull | Command::Reconcile { .. }) => {
            sync_job(settings, command, json).await
        }
        Command::Pii { action } => {
            let (bridge, target) = bridge(settings).await?;
            opened(&target, json)?;
            pii_command(&bridge, action, json, &target).await
        }
        Command::Audit { action } => audit_command(settings, action, json).await,
    }
}

async fn migrate(settings: Settings, json: bool) -> Result<(), Failure> {
    let pool = crate::db::connect(&settings.database).await?;
    let target = crate::db::Target::of(&crate::db::connect_options(&settings.database)?);
    crate::db::migrate(&pool).await?;
    if json {
        print_json(&serde_json::json!({"migrated": true}), Some(&target))?;
    } else {
        out!("{target}");
        out!("migrations applied");
    }
    Ok(())
}

async fn simulator(listen: std::net::SocketAddr, institution_id: i64) -> Result<(), Failure> {
    let mut config = crate::simulator::SimulatorConfig::from_env();
    config.institution_id = institution_id;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    out!(
        "LAPOR! simulator on http://{}/api (control: /_sim)",
        listener.local_addr()?
    );
    crate::simulator::serve(listener, config, crate::shutdown::on_signal()).await?;
    Ok(())
}

async fn demo(settings: Settings, listen: Option<std::net::SocketAddr>) -> Result<(), Failure> {
    let mut settings = settings;
    if let Some(listen) = listen {
        settings.bridge.listen = listen;
    }
    crate::demo::run(settings)
        .await
        .map_err(|e| Failure::from(format!("{e:#}")))
}

async fn doctor(settings: Settings, json: bool) -> Result<(), Failure> {
    let report = crate::doctor::run(&settings).await?;
    if json {
        print_json(&report, None)?;
    } else {
        emit(&crate::doctor::render(&report))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(Failure::from("a check failed (see above)"))
    }
}

async fn status(settings: Settings, local_ref: Option<String>, json: bool) -> Result<(), Failure> {
    let (bridge, target) = bridge(settings).await?;
    opened(&target, json)?;
    match local_ref {
        Some(r) => match actions::status(&bridge, &r).await {
            Ok(doc) => {
                if json {
                    print_json(&doc, Some(&target))?;
                } else {
                    print_status(&doc)?;
                }
                Ok(())
            }
            Err(ActionError::NotFound) => Err(Failure::from(format!("no complaint {r:?}"))),
            Err(e) => Err(e.into()),
        },
        None => {
            let counts = complaints::count_by_sync_state(&bridge.pool).await?;
            if json {
                let map: serde_json::Map<String, Value> = counts
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v)))
                    .collect();
                print_json(&map, Some(&target))?;
            } else {
                out!("{:<10} {:>8}", "SYNC", "COUNT");
                for (state, n) in counts {
                    out!("{state:<10} {n:>8}");
                }
            }
            Ok(())
        }
    }
}

async fn outbox_command(
    settings: Settings,
    action: OutboxCommand,
    json: bool,
) -> Result<(), Failure> {
    let (bridge, target) = bridge(settings).await?;
    opened(&target, json)?;
    let (id, act) = match action {
        OutboxCommand::List { state } => return outbox_list(&bridge, &target, state, json).await,
        OutboxCommand::Retry { id } => (id, StepAction::Retry),
        OutboxCommand::Discard { id } => (id, StepAction::Discard),
    };
    let actor = cli_actor();
    match actions::act_on_step(&bridge, id, act, &actor).await {
        Ok(step) => {
            if json {
                print_json(&step, Some(&target))?;
            } else {
                out!("step {} is now {}", step.id, step.state);
            }
            Ok(())
        }
        Err(ActionError::NotFound) => Err(Failure::from(format!("no outbox step {id}"))),
        Err(e) => Err(Failure::from(e.to_string())),
    }
}

async fn outbox_list(
    bridge: &Bridge,
    target: &Target,
    state: Option<StepState>,
    json: bool,
) -> Result<(), Failure> {
    let crate::params::Paging { size, offset, .. } =
        crate::params::Paging::first(crate::params::MAX_PAGE_SIZE);
    let (items, total) = outbox::list(&bridge.pool, state, offset, size).await?;
    if json {
        print_json(
            &serde_json::json!({"items": items, "total": total}),
            Some(target),
        )?;
    } else {
        out!(
            "{:>8} {:<24} {:<9} {:<8} {:>8}  LAST ERROR / WAITING",
            "ID",
            "LOCAL_REF",
            "STEP",
            "STATE",
            "ATTEMPTS"
        );
        for s in &items {
            let note = s
                .last_error
                .as_deref()
                .or(s.waiting_reason.as_deref())
                .unwrap_or("");
            out!(
                "{:>8} {:<24} {:<9} {:<8} {:>8}  {}",
                s.id,
                s.local_ref,
                s.step,
                s.state,
                s.attempts,
                note
            );
        }
        out!("{total} step(s)");
    }
    Ok(())
}

async fn webhooks_command(
    settings: Settings,
    action: WebhooksCommand,
    json: bool,
) -> Result<(), Failure> {
    let (bridge, target) = bridge(settings).await?;
    opened(&target, json)?;
    let actor = cli_actor();
    let (id, act) = match action {
        WebhooksCommand::List { state: None } => {
            return webhook_endpoints(&bridge, &target, json).await;
        }
        WebhooksCommand::List { state: Some(state) } => {
            return webhook_deliveries(&bridge, &target, state, json).await;
        }
        WebhooksCommand::Enable { id } => {
            return enable_webhook(&bridge, &target, id, &actor, json).await;
        }
        WebhooksCommand::Retry { id } => (id, StepAction::Retry),
        WebhooksCommand::Discard { id } => (id, StepAction::Discard),
    };
    match actions::act_on_webhook_delivery(&bridge, id, act, &actor).await {
        Ok(d) => {
            if json {
                print_json(&d, Some(&target))?;
            } else {
                out!("webhook delivery {} is now {}", d.id, d.state);
            }
            Ok(())
        }
        Err(ActionError::NotFound) => Err(Failure::from(format!("no webhook delivery {id}"))),
        Err(e) => Err(Failure::from(e.to_string())),
    }
}

async fn webhook_endpoints(bridge: &Bridge, target: &Target, json: bool) -> Result<(), Failure> {
    let mut items = webhooks::endpoints(&bridge.pool).await?;
    for e in &mut items {
        e.url = crate::feed::webhook::shown(&e.url);
    }
    if json {
        print_json(
            &serde_json::json!({"items": items, "total": items.len()}),
            Some(target),
        )?;
    } else {
        out!(
            "{:>4} {:<8} {:>8} {:>6}  URL",
            "ID",
            "STATE",
            "PENDING",
            "DEAD"
        );
        for e in &items {
            let state = if e.disabled_at.is_some() {
                "disabled"
            } else {
                "enabled"
            };
            out!(
                "{:>4} {:<8} {:>8} {:>6}  {}",
                e.id,
                state,
                e.pending,
                e.dead,
                e.url
            );
        }
    }
    Ok(())
}

async fn webhook_deliveries(
    bridge: &Bridge,
    target: &Target,
    state: StepState,
    json: bool,
) -> Result<(), Failure> {
    let crate::params::Paging { size, offset, .. } =
        crate::params::Paging::first(crate::params::MAX_PAGE_SIZE);
    let (mut items, total) = webhooks::list(&bridge.pool, Some(state), offset, size).await?;
    // Credentials and query tokens in a URL are never shown.
    for d in &mut items {
        d.url = crate::feed::webhook::shown(&d.url);
    }
    if json {
        print_json(
            &serde_json::json!({"items": items, "total": total}),
            Some(target),
        )?;
    } else {
        out!(
            "{:>8} {:>4} {:<24} {:<30} {:<9} {:>8}  LAST ERROR",
            "ID",
            "EP",
            "LOCAL_REF",
            "EVENT",
            "STATE",
            "ATTEMPTS"
        );
        for d in &items {
            out!(
                "{:>8} {:>4} {:<24} {:<30} {:<9} {:>8}  {}",
                d.id,
                d.endpoint_id,
                d.local_ref.as_deref().unwrap_or(""),
                d.event_type,
                d.state,
                d.attempts,
                d.last_error.as_deref().unwrap_or("")
            );
        }
        out!("{total} deliver(ies)");
    }
    Ok(())
}

async fn enable_webhook(
    bridge: &Bridge,
    target: &Target,
    id: i64,
    actor: &str,
    json: bool,
) -> Result<(), Failure> {
    match actions::enable_webhook(bridge, id, actor).await {
        Ok(url) => {
            if json {
                print_json(
                    &serde_json::json!({"id": id, "url": url, "enabled": true}),
                    Some(target),
                )?;
            } else {
                out!("webhook endpoint {id} ({url}) is enabled");
            }
            Ok(())
        }
        Err(ActionError::NotFound) => Err(Failure::from(format!("no webhook endpoint {id}"))),
        Err(e) => Err(Failure::from(e.to_string())),
    }
}

/// `pull` and `reconcile`.
async fn sync_job(settings: Settings, command: Command, json: bool) -> Result<(), Failure> {
    // Always JSON: the database opened is named on standard error,
    // or in the JSON with --json.
    let (bridge, target) = bridge(settings).await?;
    if !json {
        eprintln!("lapor-bridge: {target}");
    }
    let jobs = Jobs::new(bridge);
    let result = match command {
        Command::Pull => jobs.pull("cli").await?,
        Command::Reconcile { deep: true } => jobs.deep_reconcile("cli").await?,
        _ => jobs.reconcile("cli").await?,
    };
    print_json(&result, json.then_some(&target))?;
    match result.get("outcome").and_then(Value::as_str) {
        Some("ok") => Ok(()),
        Some("partial") => Err(Failure::from(
            "the run could not read some complaints (see failed_complaints)",
        )),
        _ => Err(Failure::from("the run failed (see problems)")),
    }
}

async fn audit_command(
    settings: Settings,
    action: AuditCommand,
    json: bool,
) -> Result<(), Failure> {
    let (bridge, target) = bridge(settings).await?;
    match action {
        AuditCommand::Verify { checkpoints } => {
            audit_verify(&bridge, &target, checkpoints, json).await
        }
        AuditCommand::Export {
            format,
            since,
            until,
            checkpoints_out,
        } => audit_export(&bridge, &target, format, since, until, checkpoints_out).await,
    }
}

async fn audit_verify(
    bridge: &Bridge,
    target: &Target,
    checkpoints: Option<PathBuf>,
    json: bool,
) -> Result<(), Failure> {
    // Always JSON, as the API answers it: the database opened
    // is named on standard error, or in the JSON with --json.
    if !json {
        eprintln!("lapor-bridge: {target}");
    }

    let file = checkpoints.or_else(|| bridge.settings.audit.checkpoint_file.clone());
    let v = crate::checkpoints::verify(&bridge.pool, file.as_deref()).await?;
    print_json(&v, json.then_some(target))?;
    match v {
        Verification::Ok { .. } => Ok(()),
        Verification::Broken { .. } => Err(Failure::from("the audit chain is broken")),
        Verification::CheckpointMismatch { checkpoint_id, .. } => Err(Failure::from(format!(
            "checkpoint {checkpoint_id} does not match the audit log: \
                 entries were removed or rewritten"
        ))),
        Verification::CheckpointsUnreadable { error, .. } => Err(Failure::from(error)),
    }
}

async fn audit_export(
    bridge: &Bridge,
    target: &Target,
    format: ExportFormat,
    since: Option<String>,
    until: Option<String>,
    checkpoints_out: Option<PathBuf>,
) -> Result<(), Failure> {
    // The export itself is the output: the database is named
    // on standard error.
    eprintln!("lapor-bridge: {target}");
    let since = crate::params::parse_instant("--since", since.as_deref()).map_err(usage)?;
    let until = crate::params::parse_instant("--until", until.as_deref()).map_err(usage)?;
    // The checkpoints before the entries: every checkpoint of
    // the copy is then older than the export.
    if let Some(out) = checkpoints_out {
        let source = bridge.settings.audit.checkpoint_file.clone().ok_or_else(|| {
            usage("--checkpoints-out needs [audit] checkpoint_file (BRIDGE_AUDIT_CHECKPOINT_FILE)")
        })?;
        let checkpoints = crate::checkpoints::read(&source).await?;
        std::fs::write(&out, crate::checkpoints::to_jsonl(&checkpoints))
            .map_err(|e| Failure::from(format!("cannot write {}: {e}", out.display())))?;
    }
    // A page at a time: the log is never held whole in memory.
    let cursor = audit::ExportCursor::start(bridge.pool.clone(), since, until).await?;
    let format = match format {
        ExportFormat::Jsonl => crate::audit_export::Format::Jsonl,
        ExportFormat::Csv => crate::audit_export::Format::Csv,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    match crate::audit_export::write(cursor, format, &mut out).await {
        Ok(_) => Ok(()),
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Err(closed_pipe())
        }
        Err(e) => Err(Failure::from(format!("{e:#}"))),
    }
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn pii_command(
    bridge: &Bridge,
    action: PiiCommand,
    json: bool,
    target: &Target,
) -> Result<(), Failure> {
    match action {
        PiiCommand::Rotate => {
            let keyring = bridge
                .pii
                .clone()
                .ok_or_else(|| usage(crate::app::NO_PII_KEY))?;
            let rotation = crate::pii::task::rotate(bridge, &keyring, &cli_actor()).await?;
            if json {
                print_json(&rotation, Some(target))?;
            } else {
                out!(
                    "key {}: {} staged identit(ies) encrypted, {} re-encrypted; old keys are no longer needed",
                    rotation.key_id,
                    rotation.sealed,
                    rotation.reencrypted
                );
            }
            Ok(())
        }
        PiiCommand::Erase { local_ref, reason } => {
            match actions::erase_reporter(bridge, &local_ref, &reason, &cli_actor()).await {
                Ok(outcome) => {
                    if json {
                        print_json(&outcome, Some(target))?;
                    } else if outcome.already_erased {
                        out!(
                            "{local_ref}: already erased at {}",
                            outcome.erased_at.to_rfc3339()
                        );
                    } else {
                        out!("{local_ref}: reporter identity erased");
                    }
                    Ok(())
                }
                Err(ActionError::NotFound) => {
                    Err(Failure::from(format!("no complaint {local_ref:?}")))
                }
                Err(ActionError::Invalid(_)) => Err(usage("--reason must be 1-2000 characters")),
                Err(e) => Err(e.into()),
            }
        }
        PiiCommand::Report => {
            let report = crate::pii::task::report(bridge).await?;
            if json {
                print_json(&report, Some(target))?;
            } else {
                print_pii_report(&report)?;
            }
            Ok(())
        }
    }
}

fn print_pii_report(r: &crate::pii::task::Report) -> Result<(), Failure> {
    let c = &r.counts;
    out!("complaints holding reporter identity  {}", c.holding);
    out!("  of which awaiting encryption        {}", c.staged);
    out!(
        "erased on request                     {}",
        c.erased_on_request
    );
    out!(
        "erased by retention                   {}",
        c.erased_by_retention
    );
    match (&c.oldest_local_ref, c.oldest_since) {
        (Some(r), Some(since)) => out!(
            "oldest retained                       {r} ({} {})",
            if c.oldest_closed == Some(true) {
                "closed"
            } else {
                "created"
            },
            since.to_rfc3339()
        ),
        _ => out!("oldest retained                       -"),
    }
    out!(
        "retention after closing               {} days",
        r.retention_days
    );
    out!(
        "current key id                        {}",
        r.current_key_id
            .as_deref()
            .unwrap_or("- (BRIDGE_PII_KEY not set)")
    );
    for k in &r.key_ids {
        out!(
            "key id {}  {:>8} identit(ies){}",
            k.key_id,
            k.count,
            if k.known {
                ""
            } else {
                "  (NOT in BRIDGE_PII_KEY / BRIDGE_PII_OLD_KEYS)"
            }
        );
    }
    Ok(())
}

fn print_status(doc: &StatusDocument) -> Result<(), Failure> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    out!("local_ref          {}", doc.local_ref);
    out!("origin             {}", doc.origin);
    out!("sync_state         {}", doc.sync_state);
    out!("pending_ops        {}", doc.pending_ops);
    out!(
        "lapor_complaint_id {}",
        opt(doc.lapor_complaint_id.map(|i| i.to_string()))
    );
    out!("tracking_id        {}", opt(doc.tracking_id.clone()));
    out!("lapor_status_name  {}", opt(doc.lapor_status_name.clone()));
    out!("status             {}", opt(doc.status.clone()));
    out!("last_error         {}", opt(doc.last_error.clone()));
    out!("waiting_reason     {}", opt(doc.waiting_reason.clone()));
    out!(
        "last_synced_at     {}",
        opt(doc.last_synced_at.map(|t| t.to_rfc3339()))
    );
    if let Some(next) = &doc.sla.next {
        out!(
            "sla next           {} due {}{}",
            match next.kind {
                crate::sla::DeadlineKind::FollowUp => "follow-up",
                crate::sla::DeadlineKind::AutoClose => "expected auto-close",
                crate::sla::DeadlineKind::Completion => "completion",
            },
            next.due_at.to_rfc3339(),
            if next.overdue { " (OVERDUE)" } else { "" }
        );
    }
    Ok(())
}
