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
use crate::inbound::Jobs;
use crate::status_document::{StatusDocument, page_bounds};
use crate::store::audit::{self, Verification};
use crate::store::{complaints, outbox};

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
        #[arg(long)]
        state: Option<String>,
    },
    /// Send a dead step again, with fresh attempts.
    Retry { id: i64 },
    /// Give up a dead or pending step.
    Discard { id: i64 },
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
            eprintln!("lapor-bridge: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn bridge(settings: Settings) -> Result<Bridge, Failure> {
    let pool = crate::db::connect(&settings.database).await?;
    crate::db::migrate_or_check(&pool).await?;
    let clock = DatabaseClock::measured(&pool).await?;
    Ok(Bridge::new(pool, settings, Arc::new(clock))?)
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("lapor-bridge: cannot encode output: {e}"),
    }
}

async fn dispatch(cli: Cli, settings: Settings) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        // A missing key is a configuration error (exit 2), said before connecting.
        Command::Run if settings.pii.key.is_none() => Err(usage(crate::app::NO_PII_KEY)),
        Command::Run => crate::app::run(settings)
            .await
            .map_err(|e| Failure::from(format!("{e:#}"))),
        Command::Migrate => {
            let pool = crate::db::connect(&settings.database).await?;
            crate::db::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Simulator {
            listen,
            institution_id,
        } => {
            let mut config = crate::simulator::SimulatorConfig::from_env();
            config.institution_id = institution_id;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!(
                "LAPOR! simulator on http://{}/api (control: /_sim)",
                listener.local_addr()?
            );
            crate::simulator::serve(listener, config, crate::shutdown::on_signal()).await?;
            Ok(())
        }
        Command::Bench(opts) => crate::bench::run(settings, opts)
            .await
            .map_err(|e| Failure::from(format!("{e:#}"))),
        Command::Demo { listen } => {
            let mut settings = settings;
            if let Some(listen) = listen {
                settings.bridge.listen = listen;
            }
            crate::demo::run(settings)
                .await
                .map_err(|e| Failure::from(format!("{e:#}")))
        }
        Command::Doctor => {
            let report = crate::doctor::run(&settings).await?;
            if json {
                print_json(&report);
            } else {
                print!("{}", crate::doctor::render(&report));
            }
            if report.ok {
                Ok(())
            } else {
                Err(Failure::from("a check failed (see above)"))
            }
        }
        Command::Healthcheck => {
            crate::healthcheck::check(settings.bridge.listen, crate::healthcheck::TIMEOUT)
                .await
                .map_err(Failure::from)
        }
        Command::Status { local_ref } => {
            let bridge = bridge(settings).await?;
            match local_ref {
                Some(r) => match actions::status(&bridge, &r).await {
                    Ok(doc) => {
                        if json {
                            print_json(&doc);
                        } else {
                            print_status(&doc);
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
                            .map(|(k, v)| (k, Value::from(v)))
                            .collect();
                        print_json(&map);
                    } else {
                        println!("{:<10} {:>8}", "SYNC", "COUNT");
                        for (state, n) in counts {
                            println!("{state:<10} {n:>8}");
                        }
                    }
                    Ok(())
                }
            }
        }
        Command::Outbox { action } => {
            let bridge = bridge(settings).await?;
            let (id, act) = match action {
                OutboxCommand::List { state } => {
                    let (_, size, offset) = page_bounds(Some(1), Some(500));
                    let (items, total) =
                        outbox::list(&bridge.pool, state.as_deref(), offset, size).await?;
                    if json {
                        print_json(&serde_json::json!({"items": items, "total": total}));
                    } else {
                        println!(
                            "{:>8} {:<24} {:<9} {:<8} {:>8}  LAST ERROR",
                            "ID", "LOCAL_REF", "STEP", "STATE", "ATTEMPTS"
                        );
                        for s in &items {
                            println!(
                                "{:>8} {:<24} {:<9} {:<8} {:>8}  {}",
                                s.id,
                                s.local_ref,
                                s.step,
                                s.state,
                                s.attempts,
                                s.last_error.as_deref().unwrap_or("")
                            );
                        }
                        println!("{total} step(s)");
                    }
                    return Ok(());
                }
                OutboxCommand::Retry { id } => (id, StepAction::Retry),
                OutboxCommand::Discard { id } => (id, StepAction::Discard),
            };
            let actor = cli_actor();
            match actions::act_on_step(&bridge, id, act, &actor).await {
                Ok(step) => {
                    if json {
                        print_json(&step);
                    } else {
                        println!("step {} is now {}", step.id, step.state);
                    }
                    Ok(())
                }
                Err(ActionError::NotFound) => Err(Failure::from(format!("no outbox step {id}"))),
                Err(e) => Err(Failure::from(e.to_string())),
            }
        }
        Command::Pull | Command::Reconcile { .. } => {
            let bridge = bridge(settings).await?;
            let jobs = Jobs::new(bridge);
            let result = match cli.command {
                Command::Pull => jobs.pull("cli").await?,
                Command::Reconcile { deep: true } => jobs.deep_reconcile("cli").await?,
                _ => jobs.reconcile("cli").await?,
            };
            print_json(&result);
            if result.get("ok").and_then(Value::as_bool) == Some(true) {
                Ok(())
            } else {
                Err(Failure::from("the run finished with errors (see summary)"))
            }
        }
        Command::Pii { action } => {
            let bridge = bridge(settings).await?;
            pii_command(&bridge, action, json).await
        }
        Command::Audit { action } => {
            let bridge = bridge(settings).await?;
            match action {
                AuditCommand::Verify { checkpoints } => {
                    let file =
                        checkpoints.or_else(|| bridge.settings.audit.checkpoint_file.clone());
                    let v = crate::checkpoints::verify(&bridge.pool, file.as_deref()).await?;
                    print_json(&v);
                    match v {
                        Verification::Ok { .. } => Ok(()),
                        Verification::Broken { .. } => {
                            Err(Failure::from("the audit chain is broken"))
                        }
                        Verification::CheckpointMismatch { checkpoint_id, .. } => {
                            Err(Failure::from(format!(
                                "checkpoint {checkpoint_id} does not match the audit log: \
                                 entries were removed or rewritten"
                            )))
                        }
                        Verification::CheckpointsUnreadable { error, .. } => {
                            Err(Failure::from(error))
                        }
                    }
                }
                AuditCommand::Export {
                    format,
                    since,
                    until,
                    checkpoints_out,
                } => {
                    let since =
                        crate::api::parse_instant("--since", since.as_deref()).map_err(usage)?;
                    let until =
                        crate::api::parse_instant("--until", until.as_deref()).map_err(usage)?;
                    // The checkpoints before the entries: every checkpoint of
                    // the copy is then older than the export.
                    if let Some(out) = checkpoints_out {
                        let source = bridge.settings.audit.checkpoint_file.clone().ok_or_else(|| {
                            usage("--checkpoints-out needs [audit] checkpoint_file (BRIDGE_AUDIT_CHECKPOINT_FILE)")
                        })?;
                        let checkpoints = crate::checkpoints::read(&source).await?;
                        std::fs::write(&out, crate::checkpoints::to_jsonl(&checkpoints)).map_err(
                            |e| Failure::from(format!("cannot write {}: {e}", out.display())),
                        )?;
                    }
                    let entries = audit::export(&bridge.pool, since, until).await?;
                    let text = match format {
                        ExportFormat::Jsonl => audit::to_jsonl(&entries),
                        ExportFormat::Csv => audit::to_csv(&entries),
                    };
                    print!("{text}");
                    Ok(())
                }
            }
        }
    }
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn pii_command(bridge: &Bridge, action: PiiCommand, json: bool) -> Result<(), Failure> {
    match action {
        PiiCommand::Rotate => {
            let keyring = bridge
                .pii
                .clone()
                .ok_or_else(|| usage(crate::app::NO_PII_KEY))?;
            let rotation = crate::pii::task::rotate(bridge, &keyring, &cli_actor()).await?;
            if json {
                print_json(&rotation);
            } else {
                println!(
                    "key {}: {} staged identit(ies) encrypted, {} re-encrypted; old keys are no longer needed",
                    rotation.key_id, rotation.sealed, rotation.reencrypted
                );
            }
            Ok(())
        }
        PiiCommand::Erase { local_ref, reason } => {
            match actions::erase_reporter(bridge, &local_ref, &reason, &cli_actor()).await {
                Ok(outcome) => {
                    if json {
                        print_json(&outcome);
                    } else if outcome.already_erased {
                        println!(
                            "{local_ref}: already erased at {}",
                            outcome.erased_at.to_rfc3339()
                        );
                    } else {
                        println!("{local_ref}: reporter identity erased");
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
                print_json(&report);
            } else {
                print_pii_report(&report);
            }
            Ok(())
        }
    }
}

fn print_pii_report(r: &crate::pii::task::Report) {
    let c = &r.counts;
    println!("complaints holding reporter identity  {}", c.holding);
    println!("  of which awaiting encryption        {}", c.staged);
    println!(
        "erased on request                     {}",
        c.erased_on_request
    );
    println!(
        "erased by retention                   {}",
        c.erased_by_retention
    );
    match (&c.oldest_local_ref, c.oldest_since) {
        (Some(r), Some(since)) => println!(
            "oldest retained                       {r} ({} {})",
            if c.oldest_closed == Some(true) {
                "closed"
            } else {
                "created"
            },
            since.to_rfc3339()
        ),
        _ => println!("oldest retained                       -"),
    }
    println!(
        "retention after closing               {} days",
        r.retention_days
    );
    println!(
        "current key id                        {}",
        r.current_key_id
            .as_deref()
            .unwrap_or("- (BRIDGE_PII_KEY not set)")
    );
    for k in &r.key_ids {
        println!(
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
}

fn print_status(doc: &StatusDocument) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("local_ref          {}", doc.local_ref);
    println!("origin             {}", doc.origin);
    println!("sync_state         {}", doc.sync_state);
    println!("pending_ops        {}", doc.pending_ops);
    println!(
        "lapor_complaint_id {}",
        opt(doc.lapor_complaint_id.map(|i| i.to_string()))
    );
    println!("tracking_id        {}", opt(doc.tracking_id.clone()));
    println!("lapor_status_name  {}", opt(doc.lapor_status_name.clone()));
    println!("status             {}", opt(doc.status.clone()));
    println!("last_error         {}", opt(doc.last_error.clone()));
    println!(
        "last_synced_at     {}",
        opt(doc.last_synced_at.map(|t| t.to_rfc3339()))
    );
    if let Some(next) = &doc.sla.next {
        println!(
            "sla next           {:?} due {}{}",
            next.kind,
            next.due_at.to_rfc3339(),
            if next.overdue { " (OVERDUE)" } else { "" }
        );
    }
}
