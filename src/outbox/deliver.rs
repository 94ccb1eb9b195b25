//! Delivering one claimed step: the LAPOR! calls it makes, and the one
//! transaction that records the outcome (fenced by the claim).

use std::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use super::retry::RetryPolicy;
use super::waiting::WaitingReason;
use crate::bridge::Bridge;
use crate::domain::{AttemptOutcome, StepKind};
use crate::inbound::apply;
use crate::lapor::types::{self, Created};
use crate::lapor::{FailureKind, FileToUpload, LaporError};
use crate::store::complaints;
use crate::store::outbox::{self, Attempt, ClaimedStep, NextState};

/// How far before the first attempt a lookup searches (clock skew margin).
const LOOKUP_MARGIN_MINUTES: i64 = 10;

/// What a step achieved.
#[derive(Debug)]
pub(super) enum Effect {
    Uploaded,
    /// Created or found; `copies`: further LAPOR! complaints found carrying
    /// the same reference (sent twice through a gateway that gave up).
    Created {
        created: Created,
        copies: Vec<i64>,
    },
    FollowupPosted {
        followup_id: i64,
        lapor_followup_id: i64,
    },
    Forwarded {
        target: i64,
    },
}

#[derive(Debug)]
enum Failure {
    Lapor {
        error: LaporError,
        /// Whether the next attempt must look up before resending.
        needs_lookup: bool,
    },
    /// LAPOR! has not verified the complaint yet: wait without an attempt.
    Waiting(WaitingReason),
    /// Not deliverable as it stands (an operator must act).
    Impossible(String),
    Database(sqlx::Error),
    /// Another worker rescued the step while this one looked it up: nothing
    /// is sent, and the new holder's outcome stands.
    LeaseLost,
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Database(e)
    }
}

struct Delivered {
    effect: Effect,
    /// Found upstream rather than sent now.
    adopted: bool,
}

pub(super) struct StepRunner<'a> {
    pub bridge: &'a Bridge,
    pub policy: RetryPolicy,
    pub created: &'a super::lookup::CreatedIndex,
}

impl StepRunner<'_> {
    /// Delivers one step; the outcome is written by the caller (batched).
    pub async fn run(&self, step: &ClaimedStep) -> Completion {
        let started_at = self.bridge.clock.now();
        let timer = Instant::now();
        let result = match step.step {
            StepKind::Upload => self.upload(step).await,
            StepKind::Create => self.create(step).await,
            StepKind::Followup => self.followup(step).await,
            StepKind::Forward => self.forward(step).await,
        };
        let elapsed = timer.elapsed();
        self.bridge.metrics.observe(
            "delivery_duration_seconds",
            &[("step", step.step.as_str())],
            elapsed,
        );
        self.outcome(step, result, started_at, elapsed.as_millis() as i32)
    }

    /// What to write for an attempt's result.
    fn outcome(
        &self,
        step: &ClaimedStep,
        result: Result<Delivered, Failure>,
        started_at: DateTime<Utc>,
        duration_ms: i32,
    ) -> Completion {
        let now = self.bridge.clock.now();
        let attempt_no = step.attempts + 1;
        let mut attempt = Attempt {
            outbox_id: step.id,
            complaint_id: step.complaint_id,
            step: step.step,
            attempt: attempt_no,
            started_at,
            duration_ms,
            http_status: None,
            failure_kind: None,
            message: None,
            // Set below, from the result.
            outcome: AttemptOutcome::Delivered,
        };
        let plan = match &result {
            Ok(delivered) => after_delivery(&mut attempt, delivered),
            Err(Failure::Waiting(reason)) => self.after_waiting(step, &mut attempt, *reason, now),
            Err(Failure::Impossible(reason)) => after_impossible(step, &mut attempt, reason),
            Err(Failure::LeaseLost) => after_lease_lost(&mut attempt, now),
            Err(Failure::Database(e)) => self.after_database_error(step, &mut attempt, e, now),
            Err(Failure::Lapor {
                error,
                needs_lookup,
            }) => self.after_lapor_error(step, &mut attempt, error, *needs_lookup, now),
        };
        completion(step, result, attempt, plan, now)
    }

    /// After a write whose outcome is unknown, LAPOR!'s backend may still
    /// commit it: neither a lookup nor a resend before this delay.
    fn lookup_delay(&self) -> ChronoDuration {
        ChronoDuration::seconds(self.bridge.settings.bridge.lookup_delay_secs as i64)
    }

    /// LAPOR! has not verified the complaint: look again after a poll
    /// interval, without counting an attempt.
    fn after_waiting(
        &self,
        step: &ClaimedStep,
        attempt: &mut Attempt,
        reason: WaitingReason,
        now: DateTime<Utc>,
    ) -> Plan {
        attempt.outcome = AttemptOutcome::Waiting;
        attempt.message = Some(reason.describe(None));
        let at =
            now + ChronoDuration::seconds(self.bridge.settings.bridge.poll_interval_secs as i64);
        Plan {
            next: NextState::Pending {
                at,
                needs_lookup: step.needs_lookup,
                count_attempt: false,
                waiting_reason: Some(reason),
            },
            ..Plan::default()
        }
    }

    /// The database failed mid-delivery: retried, after a lookup when a
    /// write may have been sent.
    fn after_database_error(
        &self,
        step: &ClaimedStep,
        attempt: &mut Attempt,
        e: &sqlx::Error,
        now: DateTime<Utc>,
    ) -> Plan {
        let message = format!("database error during delivery: {e}");
        attempt.outcome = AttemptOutcome::Retry;
        attempt.message = Some(message.clone());
        // A write may have been sent before the database failed.
        let write = step.step.is_write();
        let lookup_not_before = write.then(|| now + self.lookup_delay());
        let at = now + to_chrono(self.policy.delay_random(attempt.attempt, None));
        Plan {
            next: NextState::Pending {
                at: lookup_not_before.map_or(at, |floor| at.max(floor)),
                needs_lookup: step.needs_lookup || write,
                count_attempt: false,
                waiting_reason: lookup_not_before.map(|_| WaitingReason::LookupDelay),
            },
            last_error: Some(message),
            audit_after: None,
            lookup_not_before,
        }
    }

    /// LAPOR! refused or failed: paused, dead, or retried as the error says.
    fn after_lapor_error(
        &self,
        step: &ClaimedStep,
        attempt: &mut Attempt,
        error: &LaporError,
        needs_lookup: bool,
        now: DateTime<Utc>,
    ) -> Plan {
        attempt.http_status = error.status().map(i32::from);
        attempt.failure_kind = Some(error.kind().as_str().into());
        let message = error.message();
        attempt.message = Some(message.clone());
        let lookup_not_before =
            matches!(error, LaporError::UnknownOutcome { .. }).then(|| now + self.lookup_delay());
        // A clear failure proves only that this attempt did not commit, not
        // an earlier one: "may be on LAPOR!" stays until the step is done.
        let needs_lookup = needs_lookup || step.needs_lookup;
        let (next, outcome) = self.next_after_lapor_error(
            error,
            &message,
            needs_lookup,
            attempt.attempt,
            now,
            lookup_not_before,
        );
        attempt.outcome = outcome;
        let text = format!("{}: {message}", error.kind().as_str());
        let audit_after = (outcome != AttemptOutcome::Paused).then(|| {
            json!({
                "outcome": outcome,
                "attempt": attempt.attempt,
                "http_status": error.status(),
                "failure_kind": error.kind().as_str(),
                "message": message,
            })
        });
        Plan {
            next,
            last_error: Some(text),
            audit_after,
            lookup_not_before,
        }
    }

    /// The step's next state after a LAPOR! error, and the attempt's outcome.
    fn next_after_lapor_error(
        &self,
        error: &LaporError,
        message: &str,
        needs_lookup: bool,
        attempt_no: i32,
        now: DateTime<Utc>,
        lookup_not_before: Option<DateTime<Utc>>,
    ) -> (NextState, AttemptOutcome) {
        match error {
            LaporError::Unauthorized { .. } => {
                self.bridge.gate.pause(message);
                let next = NextState::Pending {
                    at: now,
                    needs_lookup,
                    count_attempt: false,
                    waiting_reason: Some(WaitingReason::TokensRejected),
                };
                (next, AttemptOutcome::Paused)
            }
            LaporError::Permanent { .. } => {
                (NextState::Dead { needs_lookup }, AttemptOutcome::Dead)
            }
            LaporError::Retryable { .. } | LaporError::UnknownOutcome { .. } => {
                if self.policy.exhausted(attempt_no) {
                    return (NextState::Dead { needs_lookup }, AttemptOutcome::Dead);
                }
                let at = now + to_chrono(self.policy.delay_random(attempt_no, Some(error)));
                // LAPOR! asked us to wait (a 429's Retry-After), or may still
                // apply the write: a wait, not a failure to retry.
                let asked_to_wait =
                    error.kind() == FailureKind::RateLimited && error.retry_after().is_some();
                let waiting_reason = match lookup_not_before {
                    Some(_) => Some(WaitingReason::LookupDelay),
                    None if asked_to_wait => Some(WaitingReason::RetryAfter),
                    None => None,
                };
                let next = NextState::Pending {
                    at: lookup_not_before.map_or(at, |floor| at.max(floor)),
                    needs_lookup,
                    count_attempt: true,
                    waiting_reason,
                };
                let outcome = if needs_lookup {
                    AttemptOutcome::Unknown
                } else {
                    AttemptOutcome::Retry
                };
                (next, outcome)
            }
        }
    }

    /// Before a write sent after a lookup (which may have taken long): the
    /// step must still be ours, and nothing may have linked it meanwhile.
    async fn recheck(&self, step: &ClaimedStep) -> Result<outbox::Holding, Failure> {
        let mut conn = self.bridge.pool.acquire().await?;
        match outbox::holding(&mut conn, step.id, step.fence).await? {
            Some(h) if h.held => Ok(h),
            Some(_) => Err(Failure::LeaseLost),
            None => Err(Failure::Impossible("the outbox step is gone".into())),
        }
    }

    // ---- the steps ----------------------------------------------------

    async fn upload(&self, step: &ClaimedStep) -> Result<Delivered, Failure> {
        let mut conn = self.bridge.pool.acquire().await?;
        let files = complaints::attachments_of(&mut conn, step.complaint_id).await?;
        // One file per request, so each upload id maps to its file; an upload
        // repeated after a lost answer only leaves an unused file upstream.
        for file in files.iter().filter(|f| f.lapor_file_id.is_none()) {
            let uploaded = self
                .bridge
                .client
                .upload(&[FileToUpload {
                    file_name: file.file_name.clone(),
                    content: file.content.clone(),
                }])
                .await
                .map_err(|error| Failure::Lapor {
                    error,
                    needs_lookup: false,
                })?;
            let Some(first) = uploaded.first() else {
                return Err(Failure::Lapor {
                    error: LaporError::malformed("upload answered with no file id", Some(201)),
                    needs_lookup: false,
                });
            };
            complaints::link_attachment(&mut conn, file.id, first.id).await?;
        }
        Ok(Delivered {
            effect: Effect::Uploaded,
            adopted: false,
        })
    }

    async fn create(&self, step: &ClaimedStep) -> Result<Delivered, Failure> {
        if let Some(id) = step.lapor_complaint_id {
            // Linked already (by reconciliation, or an earlier holder).
            return Ok(linked_complaint(id, step.tracking_id.clone()));
        }
        if step.needs_lookup
            && let Some(found) = self.look_up_created(step).await?
        {
            return Ok(found);
        }
        let new = self.new_complaint(step)?;
        match self.bridge.client.create(&new).await {
            Ok(created) => Ok(Delivered {
                effect: Effect::Created {
                    created,
                    copies: Vec::new(),
                },
                adopted: false,
            }),
            Err(error) => {
                let needs_lookup = may_have_committed(&error);
                Err(Failure::Lapor {
                    error,
                    needs_lookup,
                })
            }
        }
    }

    /// After an attempt whose outcome is unknown: the complaint as LAPOR!
    /// holds it under our reference, or linked meanwhile; `None` when it
    /// never arrived and the step is still ours to send.
    async fn look_up_created(&self, step: &ClaimedStep) -> Result<Option<Delivered>, Failure> {
        let since = step.first_attempt_at.unwrap_or(step.complaint_created_at)
            - ChronoDuration::minutes(LOOKUP_MARGIN_MINUTES);
        match self
            .created
            .find(&self.bridge.client, &step.local_ref, since)
            .await
        {
            Ok(Some(found)) => Ok(Some(Delivered {
                effect: Effect::Created {
                    created: found.created,
                    copies: found.copies,
                },
                adopted: true,
            })),
            Ok(None) => {
                // It never arrived: send it, if the step is still ours and
                // nothing linked the complaint meanwhile.
                let holding = self.recheck(step).await?;
                Ok(holding
                    .lapor_complaint_id
                    .map(|id| linked_complaint(id, holding.tracking_id)))
            }
            Err(error) => Err(Failure::Lapor {
                error,
                needs_lookup: true,
            }),
        }
    }

    /// The complaint as LAPOR!'s create takes it, tagged with our reference.
    fn new_complaint(&self, step: &ClaimedStep) -> Result<types::NewComplaint, Failure> {
        let Some(attachment_ids) = step
            .attachment_ids
            .iter()
            .copied()
            .collect::<Option<Vec<i64>>>()
        else {
            return Err(Failure::Impossible(
                "an attachment was never uploaded to LAPOR!".into(),
            ));
        };
        Ok(types::NewComplaint {
            title: step.title.clone(),
            content: step.content.clone(),
            category_id: step.category_id.unwrap_or_default(),
            disposition_id: step.disposition_id.unwrap_or(self.bridge.institution_id()),
            location_id: step.location_id,
            date_of_incident: step.date_of_incident.unwrap_or_else(|| {
                step.complaint_created_at
                    .with_timezone(&crate::time::wib())
                    .date_naive()
            }),
            is_anonymous: step.is_anonymous,
            is_secret: step.is_secret,
            tags_raw: format!("ref:{}", step.local_ref),
            attachment_ids,
        })
    }

    /// Re-reads a complaint's status from LAPOR! and applies it.
    async fn refresh_status(
        &self,
        step: &ClaimedStep,
        lapor_id: i64,
    ) -> Result<Option<String>, Failure> {
        let detail = self
            .bridge
            .client
            .complaint(lapor_id)
            .await
            .map_err(|error| Failure::Lapor {
                error,
                needs_lookup: step.needs_lookup,
            })?;
        let mut tx = self.bridge.pool.begin().await?;
        apply::apply_detail(
            &mut tx,
            self.bridge.institution_id(),
            step.complaint_id,
            &step.local_ref,
            &detail,
            "bridge",
            self.bridge.clock.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(match &detail.status {
            crate::lapor::StatusName::Known(s) => Some(s.canonical().to_string()),
            crate::lapor::StatusName::Unknown(_) => None,
        })
    }

    /// Follow-ups and forwards wait until LAPOR! has verified the complaint.
    /// Returns the LAPOR! id when the step may go ahead.
    async fn verified_target(&self, step: &ClaimedStep) -> Result<i64, Failure> {
        let mut conn = self.bridge.pool.acquire().await?;
        let Some(c) = complaints::for_delivery(&mut conn, step.complaint_id).await? else {
            return Err(Failure::Impossible("complaint row is gone".into()));
        };
        drop(conn);
        let Some(lapor_id) = c.lapor_complaint_id else {
            return Err(Failure::Impossible(
                "the complaint is not on LAPOR! (its create step was discarded)".into(),
            ));
        };
        if apply::awaits_verification(c.status.as_deref()) {
            let status = self.refresh_status(step, lapor_id).await?;
            if apply::awaits_verification(status.as_deref()) {
                return Err(Failure::Waiting(WaitingReason::Verification));
            }
        }
        Ok(lapor_id)
    }

    /// After a 409: wait if the complaint is not verified yet, else dead.
    async fn after_conflict(
        &self,
        step: &ClaimedStep,
        lapor_id: i64,
        error: LaporError,
    ) -> Failure {
        match self.refresh_status(step, lapor_id).await {
            Ok(status) if apply::awaits_verification(status.as_deref()) && status.is_some() => {
                Failure::Waiting(WaitingReason::Verification)
            }
            Ok(_) => Failure::Lapor {
                error,
                needs_lookup: false,
            },
            Err(read_failure) => read_failure,
        }
    }

    /// After an attempt whose outcome is unknown: the LAPOR! id of our
    /// follow-up if LAPOR! lists it (by the pull's matching) or something
    /// linked it meanwhile; `None` when it never arrived and the step is
    /// still ours to send.
    async fn look_up_followup(
        &self,
        step: &ClaimedStep,
        followup_id: i64,
        lapor_id: i64,
    ) -> Result<Option<i64>, Failure> {
        let upstream = self
            .bridge
            .client
            .followups(lapor_id)
            .await
            .map_err(|error| Failure::Lapor {
                error,
                needs_lookup: true,
            })?;
        let local = {
            let mut conn = self.bridge.pool.acquire().await?;
            complaints::followups_of(&mut conn, step.complaint_id).await?
        };
        // The pull's matching: one to one, in order, never older than the
        // first send; an identical template is not ours by text.
        let rules = apply::MatchRules {
            institution_id: self.bridge.institution_id(),
            clock_tolerance: ChronoDuration::seconds(
                self.bridge.settings.lapor.clock_tolerance_secs as i64,
            ),
            known_copies: {
                let mut conn = self.bridge.pool.acquire().await?;
                crate::store::duplicates::followup_copies(&mut conn, step.complaint_id)
                    .await?
                    .into_iter()
                    .collect()
            },
        };
        let matched = apply::match_followups(&local, &upstream, &rules);
        let found = matched
            .links
            .iter()
            .find(|(local_id, _)| *local_id == followup_id)
            .map(|(_, upstream_id)| *upstream_id);
        Ok(match found {
            Some(id) => Some(id),
            None => self.recheck(step).await?.lapor_followup_id,
        })
    }

    async fn followup(&self, step: &ClaimedStep) -> Result<Delivered, Failure> {
        let Some(followup_id) = step.followup_id else {
            return Err(Failure::Impossible(
                "follow-up step without a follow-up".into(),
            ));
        };
        let mut conn = self.bridge.pool.acquire().await?;
        let Some(f) = complaints::followup(&mut conn, followup_id).await? else {
            return Err(Failure::Impossible("follow-up row is gone".into()));
        };
        drop(conn);
        if let Some(id) = f.lapor_followup_id {
            return Ok(Delivered {
                effect: Effect::FollowupPosted {
                    followup_id,
                    lapor_followup_id: id,
                },
                adopted: true,
            });
        }
        let lapor_id = self.verified_target(step).await?;
        let ours = self.bridge.institution_id();
        if step.needs_lookup
            && let Some(lapor_followup_id) =
                self.look_up_followup(step, followup_id, lapor_id).await?
        {
            return Ok(Delivered {
                effect: Effect::FollowupPosted {
                    followup_id,
                    lapor_followup_id,
                },
                adopted: true,
            });
        }
        let c_disposition = {
            let mut conn = self.bridge.pool.acquire().await?;
            complaints::for_delivery(&mut conn, step.complaint_id)
                .await?
                .and_then(|c| c.lapor_disposition_id)
        };
        let new = types::NewFollowup {
            complaint_id: lapor_id,
            institution_from_id: ours,
            institution_to_id: c_disposition.unwrap_or(ours),
            content: f.content.clone(),
            is_secret: f.is_secret,
        };
        // The fence once more, and when it first left: matching never takes
        // an upstream follow-up older than that for this one.
        {
            let mut conn = self.bridge.pool.acquire().await?;
            if !outbox::mark_sent(&mut conn, step.id, step.fence, self.bridge.clock.now()).await? {
                return Err(Failure::LeaseLost);
            }
        }
        match self.bridge.client.add_followup(&new).await {
            Ok(id) => Ok(Delivered {
                effect: Effect::FollowupPosted {
                    followup_id,
                    lapor_followup_id: id,
                },
                adopted: false,
            }),
            Err(error @ LaporError::Permanent { status: 409, .. }) => {
                Err(self.after_conflict(step, lapor_id, error).await)
            }
            Err(error) => {
                let needs_lookup = may_have_committed(&error);
                Err(Failure::Lapor {
                    error,
                    needs_lookup,
                })
            }
        }
    }

    async fn forward(&self, step: &ClaimedStep) -> Result<Delivered, Failure> {
        let target = step
            .payload
            .get("institution_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| Failure::Impossible("forward without a target institution".into()))?;
        let reason = step
            .payload
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let lapor_id = self.verified_target(step).await?;
        if step.needs_lookup {
            let detail = self
                .bridge
                .client
                .complaint(lapor_id)
                .await
                .map_err(|error| Failure::Lapor {
                    error,
                    needs_lookup: true,
                })?;
            if detail.disposition_id == Some(target) {
                return Ok(Delivered {
                    effect: Effect::Forwarded { target },
                    adopted: true,
                });
            }
            self.recheck(step).await?;
        }
        let forward = types::Forward {
            complaint_id: lapor_id,
            target_institution_id: target,
            reason,
        };
        match self.bridge.client.forward(&forward).await {
            Ok(()) => Ok(Delivered {
                effect: Effect::Forwarded { target },
                adopted: false,
            }),
            Err(error @ LaporError::Permanent { status: 409, .. }) => {
                Err(self.after_conflict(step, lapor_id, error).await)
            }
            Err(error) => {
                let needs_lookup = may_have_committed(&error);
                Err(Failure::Lapor {
                    error,
                    needs_lookup,
                })
            }
        }
    }
}

/// Whether a failed write may have been applied upstream: a lost answer, a
/// timeout, or a gateway's 500/502/504 (JSON or HTML), which the client
/// classifies as an unknown outcome.
pub fn may_have_committed(error: &LaporError) -> bool {
    matches!(error, LaporError::UnknownOutcome { .. })
}

/// Linked already (by reconciliation, an earlier holder or a lookup).
fn linked_complaint(id: i64, tracking_id: Option<String>) -> Delivered {
    Delivered {
        effect: Effect::Created {
            created: Created {
                complaint_id: id,
                tracking_id: tracking_id.unwrap_or_default(),
            },
            copies: Vec::new(),
        },
        adopted: true,
    }
}

/// What an attempt's result leads to, besides the attempt row.
#[derive(Debug)]
struct Plan {
    next: NextState,
    last_error: Option<String>,
    audit_after: Option<Value>,
    /// No lookup and no resend of the step before this instant.
    lookup_not_before: Option<DateTime<Utc>>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            next: NextState::Done,
            last_error: None,
            audit_after: None,
            lookup_not_before: None,
        }
    }
}

/// Delivered, or found on LAPOR! (adopted): the step is done.
fn after_delivery(attempt: &mut Attempt, delivered: &Delivered) -> Plan {
    attempt.outcome = if delivered.adopted {
        AttemptOutcome::Adopted
    } else {
        AttemptOutcome::Delivered
    };
    let mut after = effect_json(&delivered.effect);
    after["outcome"] = json!(attempt.outcome);
    after["attempt"] = json!(attempt.attempt);
    Plan {
        audit_after: Some(after),
        ..Plan::default()
    }
}

/// Not deliverable as it stands: dead until an operator acts.
fn after_impossible(step: &ClaimedStep, attempt: &mut Attempt, reason: &str) -> Plan {
    attempt.outcome = AttemptOutcome::Dead;
    attempt.message = Some(reason.to_string());
    Plan {
        next: NextState::Dead {
            needs_lookup: step.needs_lookup,
        },
        last_error: Some(reason.to_string()),
        audit_after: Some(
            json!({"outcome": AttemptOutcome::Dead, "attempt": attempt.attempt, "message": reason}),
        ),
        lookup_not_before: None,
    }
}

/// Another worker holds the step now: nothing is written (the fence no
/// longer matches).
fn after_lease_lost(attempt: &mut Attempt, now: DateTime<Utc>) -> Plan {
    attempt.outcome = AttemptOutcome::LeaseLost;
    Plan {
        next: NextState::Pending {
            at: now,
            needs_lookup: true,
            count_attempt: false,
            waiting_reason: None,
        },
        ..Plan::default()
    }
}

/// The completion to write: the attempt and the plan, with the rows that
/// start and end a wait. Waiting writes one row when it starts and one when
/// it ends, not one per poll.
fn completion(
    step: &ClaimedStep,
    result: Result<Delivered, Failure>,
    attempt: Attempt,
    plan: Plan,
    now: DateTime<Utc>,
) -> Completion {
    let waited_before = step.waiting_reason.as_deref() == Some(WaitingReason::Verification.code());
    let waiting_now = matches!(result, Err(Failure::Waiting(_)));
    let record_attempt = !(waiting_now && waited_before);
    // The wait is over only when the step went ahead: a failed status
    // check (a 503, a lost connection) proves no verification.
    let wait_over = (waited_before && result.is_ok()).then(|| Attempt {
        outcome: AttemptOutcome::WaitOver,
        message: Some("LAPOR! verified the complaint: no longer waiting".into()),
        http_status: None,
        failure_kind: None,
        duration_ms: 0,
        ..attempt.clone()
    });
    Completion {
        outbox_id: step.id,
        fence: step.fence,
        complaint_id: step.complaint_id,
        local_ref: step.local_ref.clone(),
        step: step.step,
        attempt,
        record_attempt,
        wait_over,
        next: plan.next,
        last_error: plan.last_error,
        lookup_not_before: plan.lookup_not_before,
        effect: result.ok().map(|d| d.effect),
        audit_after: plan.audit_after,
        now,
    }
}

fn effect_json(effect: &Effect) -> Value {
    match effect {
        Effect::Uploaded => json!({}),
        Effect::Created { created, copies } => {
            let mut v = json!({"lapor_complaint_id": created.complaint_id, "tracking_id": created.tracking_id});
            if !copies.is_empty() {
                v["copies"] = json!(copies);
            }
            v
        }
        Effect::FollowupPosted {
            followup_id,
            lapor_followup_id,
        } => json!({"followup_id": followup_id, "lapor_followup_id": lapor_followup_id}),
        Effect::Forwarded { target } => json!({"institution_id": target}),
    }
}

fn to_chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// The outcome of one attempt, to be written in one transaction (possibly
/// with others): the fenced state change, the attempt row, the effect on the
/// complaint and the audit entry.
#[derive(Debug)]
pub struct Completion {
    pub(super) outbox_id: i64,
    pub(super) fence: i64,
    pub(super) complaint_id: i64,
    pub(super) local_ref: String,
    pub step: StepKind,
    pub(super) attempt: Attempt,
    /// False while a wait goes on: its start was recorded already.
    pub(super) record_attempt: bool,
    /// The row that ends a wait, recorded before this attempt's.
    pub(super) wait_over: Option<Attempt>,
    pub(super) next: NextState,
    pub(super) last_error: Option<String>,
    /// No lookup and no resend of this step before this instant.
    pub(super) lookup_not_before: Option<DateTime<Utc>>,
    pub(super) effect: Option<Effect>,
    pub(super) audit_after: Option<Value>,
    pub(super) now: DateTime<Utc>,
}

impl Completion {
    pub fn outcome(&self) -> AttemptOutcome {
        self.attempt.outcome
    }

    /// The same attempt, dead-lettered with `reason` and without its effect.
    /// What it found or sent is on LAPOR!: a Retry looks it up first.
    pub(super) fn into_dead(mut self, reason: String) -> Self {
        self.attempt.outcome = AttemptOutcome::Dead;
        self.attempt.message = Some(reason.clone());
        self.record_attempt = true;
        self.next = NextState::Dead { needs_lookup: true };
        self.effect = None;
        self.audit_after = Some(json!({
            "outcome": AttemptOutcome::Dead,
            "attempt": self.attempt.attempt,
            "message": reason,
        }));
        self.last_error = Some(reason);
        self
    }

    pub(super) async fn apply_effect(
        &self,
        conn: &mut sqlx::PgConnection,
        effect: &Effect,
    ) -> Result<(), sqlx::Error> {
        let now = self.now;
        match effect {
            Effect::Uploaded => Ok(()),
            Effect::Created { created, copies } => self.link(conn, created, copies).await,
            Effect::FollowupPosted {
                followup_id,
                lapor_followup_id,
            } => {
                complaints::link_followup(conn, *followup_id, *lapor_followup_id, Some(now))
                    .await?;
                complaints::note_our_followup(conn, self.complaint_id, now).await
            }
            Effect::Forwarded { target } => {
                complaints::record_forwarded(conn, self.complaint_id, *target, now).await
            }
        }
    }

    /// Links the complaint to the LAPOR! complaint created or found (unless
    /// it is linked already), and names further copies: those the lookup
    /// found, and this one when the complaint already had another link.
    async fn link(
        &self,
        conn: &mut sqlx::PgConnection,
        created: &Created,
        copies: &[i64],
    ) -> Result<(), sqlx::Error> {
        let linked = complaints::link_created(
            conn,
            self.complaint_id,
            created.complaint_id,
            &created.tracking_id,
            self.now,
        )
        .await?;
        let mut all: Vec<i64> = copies.to_vec();
        if created.complaint_id != linked {
            all.push(created.complaint_id);
        }
        if !all.is_empty() {
            apply::note_copies(
                conn,
                self.complaint_id,
                &self.local_ref,
                None,
                linked,
                &all,
                self.now,
            )
            .await?;
        }
        Ok(())
    }

    /// An outcome that arrives after the lease was lost still carries a
    /// LAPOR! id: it is kept, for the new holder to adopt, instead of thrown
    /// away (the new holder would otherwise look up, or even resend).
    pub(super) async fn keep_late_effect(
        &self,
        conn: &mut sqlx::PgConnection,
        effect: &Effect,
    ) -> Result<(), sqlx::Error> {
        let kept = match effect {
            Effect::Created { created, copies } => {
                self.link(conn, created, copies).await?;
                json!({"lapor_complaint_id": created.complaint_id})
            }
            Effect::FollowupPosted {
                followup_id,
                lapor_followup_id,
            } => {
                if !complaints::link_followup_if_unlinked(conn, *followup_id, *lapor_followup_id)
                    .await?
                {
                    return Ok(());
                }
                json!({"followup_id": followup_id, "lapor_followup_id": lapor_followup_id})
            }
            Effect::Uploaded | Effect::Forwarded { .. } => return Ok(()),
        };
        crate::store::audit::append(
            conn,
            &crate::store::audit::NewEntry {
                at: self.now,
                actor: "bridge",
                local_ref: Some(&self.local_ref),
                action: "delivery.late_outcome_kept",
                before: None,
                after: Some(kept),
            },
        )
        .await?;
        Ok(())
    }
}
