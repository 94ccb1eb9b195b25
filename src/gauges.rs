//! The gauges of `/metrics` that count what the database holds (outbox
//! depth, complaints per sync state, overdue SLAs, ...). Counting them costs
//! table scans, so a scrape does not: one replica at a time (an advisory
//! lock) takes a [`Snapshot`] every [`REFRESH_EVERY`] and stores it in
//! `lapor_bridge.metrics_snapshot`, and every replica's scrape reads that
//! one row. What a process knows by itself (token health, the version) and
//! the audit log's head (one read of the primary key's index, so that a
//! shrinking log shows at once) stay live.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::domain::StepState;
use crate::store::{self, gauges as sql};

/// How old the stored snapshot may grow before a replica takes a new one.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How often each replica looks at the snapshot's age.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// The database gauges at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub taken_at: DateTime<Utc>,
    /// Outbox steps per state.
    pub outbox_depth: BTreeMap<String, i64>,
    /// When the oldest pending or running step was queued.
    pub outbox_oldest_waiting_at: Option<DateTime<Utc>>,
    /// Complaints per sync state.
    pub complaints: BTreeMap<String, i64>,
    pub conflicts: i64,
    pub upstream_duplicates: i64,
    pub sla_overdue_follow_up: u64,
    pub sla_overdue_completion: u64,
    /// The end of the last successful run per job, as a Unix time.
    pub job_last_success: BTreeMap<String, f64>,
    pub audit_entries: i64,
    /// Change-feed events not readable yet (an older transaction runs).
    #[serde(default)]
    pub feed_unsettled_events: i64,
    /// Webhook deliveries per state (pending, running, dead).
    #[serde(default)]
    pub webhook_deliveries: BTreeMap<String, i64>,
    #[serde(default)]
    pub webhook_endpoints_disabled: i64,
}

impl Snapshot {
    /// Runs the counting queries (the expensive part).
    pub async fn take(bridge: &Bridge) -> Result<Self, sqlx::Error> {
        let pool = &bridge.pool;
        let now = bridge.clock.now();
        let (sla_overdue_follow_up, sla_overdue_completion) = sla_overdue(bridge, now).await?;
        let (states, webhook_endpoints_disabled) = store::webhooks::depth(pool).await?;
        let webhook_deliveries = StepState::filter(None)
            .into_iter()
            .map(|state| {
                let n = states
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n);
                (state.to_string(), n)
            })
            .collect();
        Ok(Self {
            taken_at: now,
            outbox_depth: sql::outbox_depth(pool)
                .await?
                .into_iter()
                .map(|(state, n)| (state.to_string(), n))
                .collect(),
            outbox_oldest_waiting_at: sql::oldest_waiting(pool).await?,
            complaints: store::complaints::count_by_sync_state(pool)
                .await?
                .into_iter()
                .map(|(state, n)| (state.to_string(), n))
                .collect(),
            conflicts: sql::conflicts(pool).await?,
            upstream_duplicates: store::duplicates::count_copies(pool).await?,
            sla_overdue_follow_up,
            sla_overdue_completion,
            job_last_success: sql::job_last_success(pool).await?.into_iter().collect(),
            audit_entries: store::audit::count(pool).await?,
            feed_unsettled_events: store::events::unsettled(pool).await?,
            webhook_deliveries,
            webhook_endpoints_disabled,
        })
    }

    /// The gauges in the text exposition format; ages are counted to `now`.
    pub fn render(&self, now: DateTime<Utc>, out: &mut String) {
        labelled(
            out,
            "lapor_bridge_outbox_depth",
            "state",
            &self.outbox_depth,
        );
        let oldest = self
            .outbox_oldest_waiting_at
            .map(|at| ((now - at).num_milliseconds() as f64 / 1000.0).max(0.0))
            .unwrap_or(0.0);
        gauge(out, "lapor_bridge_outbox_oldest_age_seconds", None, oldest);
        labelled(
            out,
            "lapor_bridge_complaints",
            "sync_state",
            &self.complaints,
        );
        gauge(out, "lapor_bridge_conflicts", None, self.conflicts);
        gauge(
            out,
            "lapor_bridge_upstream_duplicates",
            Some(
                "LAPOR! complaints or follow-ups that carry one local item a second time (for LAPOR!'s admins to archive).",
            ),
            self.upstream_duplicates,
        );
        labelled(
            out,
            "lapor_bridge_sla_overdue",
            "kind",
            [
                ("follow_up", self.sla_overdue_follow_up),
                ("completion", self.sla_overdue_completion),
            ],
        );
        labelled(
            out,
            "lapor_bridge_job_last_success_timestamp_seconds",
            "task",
            &self.job_last_success,
        );
        gauge(out, "lapor_bridge_audit_entries", None, self.audit_entries);
        gauge(
            out,
            "lapor_bridge_feed_unsettled_events",
            Some(
                "Change-feed events not readable yet: an older transaction on the server is still running.",
            ),
            self.feed_unsettled_events,
        );
        labelled(
            out,
            "lapor_bridge_webhook_deliveries",
            "state",
            &self.webhook_deliveries,
        );
        gauge(
            out,
            "lapor_bridge_webhook_endpoints_disabled",
            None,
            self.webhook_endpoints_disabled,
        );
        gauge(
            out,
            "lapor_bridge_gauges_taken_timestamp_seconds",
            Some("When the database gauges of this scrape were counted (Unix time)."),
            self.taken_at.timestamp_millis() as f64 / 1000.0,
        );
    }
}

/// One gauge without labels: its help line (when given), type and value.
fn gauge(out: &mut String, name: &str, help: Option<&str>, value: impl std::fmt::Display) {
    if let Some(help) = help {
        let _ = writeln!(out, "# HELP {name} {help}");
    }
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// One gauge with a value per label value.
fn labelled<K: std::fmt::Display, V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    label: &str,
    values: impl IntoIterator<Item = (K, V)>,
) {
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (key, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {value}");
    }
}

/// Open complaints past their follow-up and completion deadlines.
async fn sla_overdue(bridge: &Bridge, now: DateTime<Utc>) -> Result<(u64, u64), sqlx::Error> {
    let (mut follow_up, mut completion) = (0, 0);
    for (created_at, dispositioned, first_ours, last) in sql::open_sla_facts(&bridge.pool).await? {
        let facts = crate::sla::SlaFacts {
            created_at,
            dispositioned_to_us_at: dispositioned,
            first_followup_by_us_at: first_ours,
            last_followup_at: last,
            closed: false,
        };
        for kind in &crate::sla::evaluate(&bridge.calendar, &facts, now).overdue {
            match kind {
                crate::sla::DeadlineKind::FollowUp => follow_up += 1,
                crate::sla::DeadlineKind::Completion => completion += 1,
                crate::sla::DeadlineKind::AutoClose => {}
            }
        }
    }
    Ok((follow_up, completion))
}

/// Takes and stores a snapshot when the stored one is at least `max_age`
/// old (on the bridge's clock, the database's in a daemon) and no other
/// replica is taking one. Returns whether this call took it.
pub async fn refresh_if_older(bridge: &Bridge, max_age: Duration) -> Result<bool, sqlx::Error> {
    let mut tx = bridge.pool.begin().await?;
    if !sql::try_lock(&mut tx).await? {
        return Ok(false);
    }
    let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    if let Some(taken) = sql::taken_at(&mut tx).await?
        && bridge.clock.now() - taken < max_age
    {
        return Ok(false);
    }
    let snapshot = Snapshot::take(bridge).await?;
    let value = serde_json::to_value(&snapshot).unwrap_or_default();
    sql::save(&mut tx, snapshot.taken_at, &value).await?;
    tx.commit().await?;
    Ok(true)
}

/// Takes and stores a snapshot now (unless another replica is taking one).
pub async fn refresh(bridge: &Bridge) -> Result<bool, sqlx::Error> {
    refresh_if_older(bridge, Duration::ZERO).await
}

/// The daemon's task: keeps the stored snapshot at most [`REFRESH_EVERY`]
/// old, whichever replica takes it.
pub async fn run(bridge: Bridge, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match refresh_if_older(&bridge, REFRESH_EVERY).await {
            Ok(true) => tracing::debug!("metrics gauges counted"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot count the metrics gauges"),
        }
    }
}

/// The gauges of a scrape: the stored snapshot (one row; left out when
/// there is none or the database cannot be read) and the live ones.
pub async fn render(bridge: &Bridge) -> String {
    let mut out = String::new();
    match sql::load(&bridge.pool).await {
        Ok(Some(value)) => match serde_json::from_value::<Snapshot>(value) {
            Ok(snapshot) => snapshot.render(bridge.clock.now(), &mut out),
            Err(e) => tracing::warn!(error = %e, "the stored metrics snapshot does not read"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the metrics snapshot"),
    }
    // The log's head only grows: a decrease is an alert (entries removed).
    if let Ok(id) = store::audit::head_id(&bridge.pool).await {
        let _ = writeln!(out, "# TYPE lapor_bridge_audit_head_id gauge");
        let _ = writeln!(out, "lapor_bridge_audit_head_id {id}");
    }
    let _ = writeln!(out, "# TYPE lapor_bridge_lapor_token_ok gauge");
    let _ = writeln!(
        out,
        "lapor_bridge_lapor_token_ok {}",
        u8::from(!bridge.gate.is_paused())
    );
    let _ = writeln!(out, "# TYPE lapor_bridge_build_info gauge");
    let _ = writeln!(
        out,
        "lapor_bridge_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}
