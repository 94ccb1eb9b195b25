//! The status document of one complaint, as the API, the CLI and the
//! dashboard show it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::SyncState;
use crate::outbox::waiting::WaitingReason;
use crate::pii::ReporterView;
use crate::sla::{self, SlaFacts, SlaView, WorkingCalendar};
use crate::store::complaints::ComplaintRow;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusDocument {
    pub local_ref: String,
    /// `local` (submitted here) or `lapor` (imported from LAPOR!'s inbox).
    pub origin: String,
    pub lapor_complaint_id: Option<i64>,
    pub tracking_id: Option<String>,
    pub lapor_status_name: Option<String>,
    /// The bridge's name of the status; `null` while unknown.
    pub status: Option<String>,
    pub sync_state: SyncState,
    /// Outbox steps not finished yet (pending, running or dead).
    pub pending_ops: i64,
    pub last_error: Option<String>,
    /// Why a pending step waits for LAPOR! (its verification, the lookup
    /// delay after an unknown outcome, a Retry-After), in words; `null` when
    /// nothing waits.
    pub waiting_reason: Option<String>,
    /// When the wait ends or is checked again.
    pub waiting_until: Option<DateTime<Utc>>,
    /// The code of `waiting_reason` (for the dashboard's own words).
    #[serde(skip)]
    pub waiting_code: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub conflict_reason: Option<String>,
    pub title: String,
    pub disposition_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub sla: SlaView,
    /// The reporter as this viewer may see it: masked unless the role may
    /// see it in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter: Option<ReporterView>,
}

impl StatusDocument {
    pub fn build(row: &ComplaintRow, calendar: &WorkingCalendar, now: DateTime<Utc>) -> Self {
        let facts = SlaFacts {
            created_at: row.lapor_created_at.unwrap_or(row.created_at),
            dispositioned_to_us_at: row.dispositioned_at,
            first_followup_by_us_at: row.first_followup_by_us_at,
            last_followup_at: row.last_followup_at,
            closed: row.closed_at.is_some(),
        };
        Self {
            local_ref: row.local_ref.clone(),
            origin: row.origin.clone(),
            lapor_complaint_id: row.lapor_complaint_id,
            tracking_id: row.tracking_id.clone(),
            lapor_status_name: row.lapor_status_name.clone(),
            status: row.status.clone(),
            sync_state: row.sync_state,
            pending_ops: row.pending_ops,
            last_error: row.step_error.clone().or_else(|| row.last_error.clone()),
            waiting_reason: row.waiting_reason.as_deref().map(|code| {
                let until = (code != WaitingReason::Verification.code())
                    .then_some(row.waiting_until)
                    .flatten();
                WaitingReason::describe_code(code, until)
            }),
            waiting_until: row.waiting_until,
            waiting_code: row.waiting_reason.clone(),
            last_synced_at: row.last_synced_at,
            conflict_reason: row.conflict_reason.clone(),
            title: row.title.clone(),
            disposition_id: row.lapor_disposition_id.or(row.disposition_id),
            created_at: row.created_at,
            sla: sla::evaluate(calendar, &facts, now),
            reporter: None,
        }
    }
}

/// Every list answers in this shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}
