//! The change feed to the city's app: what happened to its complaints, in
//! order, from one append-only table (`lapor_bridge.events`).
//!
//! - Events are written by triggers in the same transaction as the change
//!   they describe (migration `change_feed`), and the SLA events by
//!   [`check_sla`], once per deadline.
//! - `GET /api/v1/changes` reads them by cursor ([`read_changes`]), long
//!   polling up to [`MAX_WAIT`].
//! - [`webhook`] POSTs them to the configured endpoints (Standard Webhooks).
//! - `NOTIFY lapor_bridge_events` carries each event's cursor, and the view
//!   `lapor_bridge.changes` serves applications that share the database.

pub mod webhook;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::sla::{self, SlaFacts};
use crate::store::events::{self, EventRow, OnceEvent};

/// Every event type, as the catalogue in `docs/integration.md` lists them.
pub const EVENT_TYPES: [&str; 10] = [
    "complaint.linked",
    "complaint.imported",
    "complaint.status_changed",
    "complaint.disposition_changed",
    "followup.received",
    "followup.posted",
    "delivery.dead",
    "complaint.conflict",
    "sla.due_soon",
    "sla.overdue",
];

/// The NOTIFY channel of new events; the payload is the event's cursor.
pub const CHANNEL: &str = "lapor_bridge_events";

/// The longest `wait` of `GET /api/v1/changes`.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The most items one read answers.
pub const MAX_LIMIT: i64 = 1000;
/// Items of one read when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 100;

/// How long before a deadline `sla.due_soon` is written.
pub const DUE_SOON: chrono::Duration = chrono::Duration::hours(24);
/// How often the SLA deadlines are checked.
const SLA_CHECK_EVERY: Duration = Duration::from_secs(60);

/// A position in the feed: the transaction that wrote an event and its id.
/// Shown as an opaque string; [`Cursor::START`] is before every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub txid: i64,
    pub id: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor { txid: 0, id: 0 };
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.txid, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor of this feed (use the `cursor` of an item or the `next` of an answer)")]
pub struct BadCursor;

impl FromStr for Cursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<Self, BadCursor> {
        let (t, i) = s.trim().split_once('-').ok_or(BadCursor)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(t) || !digits(i) {
            return Err(BadCursor);
        }
        Ok(Cursor {
            txid: t.parse().map_err(|_| BadCursor)?,
            id: i.parse().map_err(|_| BadCursor)?,
        })
    }
}

/// One event as the feed and the webhooks show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeItem {
    pub cursor: String,
    /// Stable and unique: the webhook's `webhook-id` too.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: Value,
}

/// The stable id of an event.
pub fn event_id(id: i64) -> String {
    format!("evt_{id}")
}

impl ChangeItem {
    pub fn new(txid: i64, id: i64, kind: &str, at: DateTime<Utc>, data: Value) -> Self {
        Self {
            cursor: Cursor { txid, id }.to_string(),
            id: event_id(id),
            kind: kind.to_string(),
            at,
            data,
        }
    }
}

impl From<EventRow> for ChangeItem {
    fn from(r: EventRow) -> Self {
        ChangeItem::new(r.txid, r.id, &r.r#type, r.at, r.data)
    }
}

/// An answer of `GET /api/v1/changes`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangesPage {
    pub items: Vec<ChangeItem>,
    /// Where to resume: the last item's cursor, or `after` when none came.
    pub next: String,
}

/// Reads the events after `after`, waiting up to `wait` for the first one
/// (polling the database every quarter second: an event becomes readable
/// when every older transaction has ended, which no notification says).
/// `submitted_by`: only the events of that intake token's complaints.
pub async fn read_changes(
    bridge: &Bridge,
    after: Cursor,
    limit: i64,
    wait: Duration,
    submitted_by: Option<&str>,
) -> Result<ChangesPage, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        let rows = events::read(
            &bridge.pool,
            after.txid,
            after.id,
            limit.clamp(1, MAX_LIMIT),
            submitted_by,
        )
        .await?;
        let now = tokio::time::Instant::now();
        if !rows.is_empty() || now >= deadline {
            let next = rows
                .last()
                .map(|r| Cursor {
                    txid: r.txid,
                    id: r.id,
                })
                .unwrap_or(after);
            return Ok(ChangesPage {
                items: rows.into_iter().map(ChangeItem::from).collect(),
                next: next.to_string(),
            });
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(250))).await;
    }
}

/// Writes `sla.due_soon` (within [`DUE_SOON`] of a deadline) and
/// `sla.overdue` (past it) for the follow-up and completion deadlines of
/// every open complaint, each once per complaint, kind and deadline (a
/// deadline that moves, e.g. after a new disposition, is a new one). One
/// replica checks at a time. Returns how many events were new.
pub async fn check_sla(bridge: &Bridge) -> Result<u64, sqlx::Error> {
    // The lock first: the other replicas skip the scan.
    let mut tx = bridge.pool.begin().await?;
    if !events::try_lock_sla_check(&mut tx).await? {
        return Ok(0);
    }
    let now = bridge.clock.now();
    let rows = events::open_sla_facts(&mut tx).await?;
    let mut new = Vec::new();
    for (complaint_id, created_at, dispositioned, first_ours, last) in rows {
        let facts = SlaFacts {
            created_at,
            dispositioned_to_us_at: dispositioned,
            first_followup_by_us_at: first_ours,
            last_followup_at: last,
            closed: false,
        };
        new.extend(sla_events(complaint_id, &bridge.calendar, &facts, now));
    }
    let mut written = 0;
    for chunk in new.chunks(1000) {
        written += events::insert_once(&mut tx, chunk).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// The SLA events one complaint's deadlines call for at `now`: the
/// follow-up deadline while no follow-up of ours answers the disposition,
/// and the completion deadline, each `sla.overdue` once passed and
/// `sla.due_soon` within [`DUE_SOON`] of it (the auto-close expectation is
/// LAPOR!'s, not ours: no event).
pub fn sla_events(
    complaint_id: i64,
    cal: &sla::WorkingCalendar,
    facts: &SlaFacts,
    now: DateTime<Utc>,
) -> Vec<OnceEvent> {
    let view = sla::evaluate(cal, facts, now);
    let follow_up_met = matches!(
        (facts.dispositioned_to_us_at, facts.first_followup_by_us_at),
        (Some(disposed), Some(ours)) if ours >= disposed
    );
    let deadlines = [
        ("follow_up", view.follow_up_due_at, !follow_up_met),
        ("completion", view.completion_due_at, true),
    ];
    let mut out = Vec::new();
    for (name, due_at, pending) in deadlines {
        let Some(due_at) = due_at else { continue };
        if !pending || facts.closed {
            continue;
        }
        let event = if due_at < now {
            "sla.overdue"
        } else if due_at - now <= DUE_SOON {
            "sla.due_soon"
        } else {
            continue;
        };
        out.push(OnceEvent {
            r#type: event,
            complaint_id,
            once_key: format!(
                "{event}:{complaint_id}:{name}:{}",
                due_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
            data: json!({"deadline": name, "due_at": due_at}),
        });
    }
    out
}

/// The feed's background work in `run`: the SLA check every minute.
pub async fn run(bridge: Bridge, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SLA_CHECK_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match check_sla(&bridge).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "SLA deadlines due soon or overdue"),
            Err(e) => tracing::warn!(error = %e, "SLA check failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let c = Cursor {
            txid: 123_456,
            id: 42,
        };
        assert_eq!(c.to_string(), "123456-42");
        assert_eq!("123456-42".parse::<Cursor>(), Ok(c));
        assert_eq!("0-0".parse::<Cursor>(), Ok(Cursor::START));
        for bad in [
            "",
            "12",
            "12-",
            "-3",
            "a-1",
            "1-2-3",
            "1--2",
            "+1-2",
            "99999999999999999999-1",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(BadCursor), "{bad:?}");
        }
        assert!(Cursor { txid: 5, id: 1 } > Cursor { txid: 4, id: 99 });
    }
}
