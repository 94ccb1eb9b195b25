//! The domain's states and kinds as types: what an outbox step does
//! ([`StepKind`]) and where it is ([`StepState`]), a complaint's derived
//! [`SyncState`], what one delivery attempt came to ([`AttemptOutcome`]), why
//! a complaint waits for an operator ([`ConflictKind`]) and who may do what
//! ([`Role`]).
//!
//! Each is stored, sent and read as the same snake_case code: `as_str()`,
//! `Display`, `FromStr`, serde and `sqlx::Type` (a `text` column) all agree,
//! and the tests hold the codes to the schema's `CHECK` lists.

use std::fmt;
use std::str::FromStr;

/// A code that names no variant of the type it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {code:?}")]
pub struct UnknownCode {
    /// What was read (`step state`, `sync state`, ...).
    pub what: &'static str,
    pub code: String,
}

/// `ALL`, `as_str()`, `Display` and `FromStr` from one list of codes.
macro_rules! codes {
    ($ty:ident, $what:literal, { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $code),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        /// Against a code read elsewhere (a JSON document, a test).
        impl PartialEq<&str> for $ty {
            fn eq(&self, code: &&str) -> bool {
                self.as_str() == *code
            }
        }

        impl FromStr for $ty {
            type Err = UnknownCode;

            fn from_str(code: &str) -> Result<Self, UnknownCode> {
                match code {
                    $($code => Ok($ty::$variant),)+
                    _ => Err(UnknownCode { what: $what, code: code.to_string() }),
                }
            }
        }
    };
}

/// What an outbox step does on LAPOR! (`outbox.step`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum StepKind {
    /// An attachment, before the create that names it.
    Upload,
    Create,
    Followup,
    Forward,
}

codes!(StepKind, "step kind", {
    Upload => "upload",
    Create => "create",
    Followup => "followup",
    Forward => "forward",
});

impl StepKind {
    /// Whether the step changes a complaint on LAPOR! (an upload only
    /// stores a file that nothing names yet).
    pub fn is_write(self) -> bool {
        self != StepKind::Upload
    }
}

/// Where an outbox step or a webhook delivery is (`outbox.state`,
/// `webhook_deliveries.state`). As a filter (`outbox list --state`,
/// `?state=`), `pending` also lists the running ones.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum StepState {
    /// Not finished yet (pending and running).
    Pending,
    /// Claimed by a worker (a filter takes it as part of `pending`).
    #[value(skip)]
    Running,
    Dead,
    Done,
    Discarded,
}

codes!(StepState, "step state", {
    Pending => "pending",
    Running => "running",
    Dead => "dead",
    Done => "done",
    Discarded => "discarded",
});

impl StepState {
    /// The states a list filter selects: `pending` with `running`; no
    /// filter: everything unfinished or dead.
    pub fn filter(state: Option<StepState>) -> Vec<StepState> {
        match state {
            Some(StepState::Pending) => vec![StepState::Pending, StepState::Running],
            Some(s) => vec![s],
            None => vec![StepState::Pending, StepState::Running, StepState::Dead],
        }
    }

    /// The codes of [`StepState::filter`], to bind as `text[]`.
    pub fn filter_codes(state: Option<StepState>) -> Vec<String> {
        Self::filter(state)
            .into_iter()
            .map(|s| s.as_str().to_string())
            .collect()
    }
}

/// A complaint's sync state, derived by the view `complaint_sync`, never
/// stored: `dead` if a step is dead, else `conflict` if an operator must
/// decide, else `retrying` if an unfinished step failed before or needs a
/// lookup, else `pending` if a step is unfinished, else `synced`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SyncState {
    Pending,
    Synced,
    Retrying,
    Dead,
    Conflict,
}

codes!(SyncState, "sync state", {
    Pending => "pending",
    Synced => "synced",
    Retrying => "retrying",
    Dead => "dead",
    Conflict => "conflict",
});

/// What one attempt came to (`outbox_attempts.outcome`,
/// `webhook_attempts.outcome`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Accepted (LAPOR!, or a webhook endpoint's 2xx).
    Delivered,
    /// Found on LAPOR! by a lookup and linked, not sent again.
    Adopted,
    /// Waits for LAPOR! to verify the complaint (one row when it starts).
    Waiting,
    /// LAPOR! verified the complaint: the wait is over.
    WaitOver,
    /// Failed; tried again after a backoff.
    Retry,
    /// Failed after a write that may have been applied: looked up first.
    Unknown,
    /// LAPOR! rejected the tokens: delivery paused, no attempt counted.
    Paused,
    /// Given up: a permanent error or the last attempt.
    Dead,
    /// The lease ran out meanwhile: the newer holder's outcome stands.
    LeaseLost,
    /// A webhook endpoint answered 410: it is switched off.
    Gone,
}

codes!(AttemptOutcome, "attempt outcome", {
    Delivered => "delivered",
    Adopted => "adopted",
    Waiting => "waiting",
    WaitOver => "wait_over",
    Retry => "retry",
    Unknown => "unknown",
    Paused => "paused",
    Dead => "dead",
    LeaseLost => "lease_lost",
    Gone => "gone",
});

impl AttemptOutcome {
    /// An attempt that failed (shown as such in a step's history).
    pub fn failed(self) -> bool {
        matches!(
            self,
            AttemptOutcome::Retry
                | AttemptOutcome::Unknown
                | AttemptOutcome::Dead
                | AttemptOutcome::Paused
        )
    }
}

/// Why a complaint waits for an operator. `complaints.conflict_reason` keeps
/// the reason in words for people; each kind's reason starts with its
/// [`prefix`](ConflictKind::prefix) (a follow-up missing upstream names its
/// count first), so that [`ConflictKind::of`] reads the kind back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// LAPOR! names a status the bridge does not know.
    UnknownStatus,
    /// LAPOR! holds copies of one complaint or follow-up of ours.
    DuplicateUpstream,
    /// A create was discarded before it could have reached LAPOR!.
    NotOnLapor,
    /// A step was discarded after an attempt whose outcome is unknown.
    MayBeOnLapor,
    /// LAPOR! answers 404 for a complaint it had (deep reconciliation).
    MissingUpstream,
    /// Follow-ups delivered earlier are no longer listed on LAPOR!.
    FollowupsMissingUpstream,
}

codes!(ConflictKind, "conflict kind", {
    UnknownStatus => "unknown_status",
    DuplicateUpstream => "duplicate_upstream",
    NotOnLapor => "not_on_lapor",
    MayBeOnLapor => "may_be_on_lapor",
    MissingUpstream => "missing_upstream",
    FollowupsMissingUpstream => "followups_missing_upstream",
});

impl ConflictKind {
    /// The words a reason of this kind starts with (after the count, for
    /// [`ConflictKind::FollowupsMissingUpstream`]).
    pub const fn prefix(self) -> &'static str {
        match self {
            ConflictKind::UnknownStatus => "unknown LAPOR! status name",
            ConflictKind::DuplicateUpstream => "LAPOR! holds",
            ConflictKind::NotOnLapor => "not on LAPOR!",
            ConflictKind::MayBeOnLapor => "may be on LAPOR!",
            ConflictKind::MissingUpstream => "LAPOR! no longer knows complaint",
            ConflictKind::FollowupsMissingUpstream => {
                "follow-up(s) delivered earlier are no longer listed on LAPOR!"
            }
        }
    }

    /// The kind of a stored reason (`None`: a reason this version does not
    /// write).
    pub fn of(reason: &str) -> Option<ConflictKind> {
        let counted = reason.trim_start_matches(|c: char| c.is_ascii_digit());
        Self::ALL.iter().copied().find(|k| match k {
            ConflictKind::FollowupsMissingUpstream => {
                counted.len() < reason.len() && counted.trim_start().starts_with(k.prefix())
            }
            _ => reason.starts_with(k.prefix()),
        })
    }
}

/// What an API token or a dashboard session may do
/// (`dashboard_sessions.role`, `[[api.tokens]] role`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    Intake,
    Operator,
    Auditor,
    Admin,
}

codes!(Role, "role", {
    Intake => "intake",
    Operator => "operator",
    Auditor => "auditor",
    Admin => "admin",
});

impl Role {
    /// Admins may do everything; every other role only its own routes.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use sqlx::Encode;
    use sqlx::postgres::{PgArgumentBuffer, Postgres};

    const INITIAL: &str = include_str!("../migrations/20261128000001_initial.sql");
    const SESSIONS: &str = include_str!("../migrations/20261128000006_dashboard_sessions.sql");
    const FEED: &str = include_str!("../migrations/20261205150000_change_feed.sql");
    const OUTCOMES: &str = include_str!("../migrations/20261206100000_attempt_outcomes.sql");
    /// The latest definition of the view `complaint_sync`.
    const SYNC_VIEW: &str = include_str!("../migrations/20261205000000_waiting_reasons.sql");

    /// The quoted codes of `column IN (...)` at its `nth` occurrence.
    fn check_list(sql: &str, column: &str, nth: usize) -> Vec<String> {
        let needle = format!("{column} IN (");
        let (start, _) = sql
            .match_indices(&needle)
            .nth(nth)
            .unwrap_or_else(|| panic!("no CHECK ({column} IN ...) #{nth}"));
        let list = &sql[start + needle.len()..];
        list[..list.find(')').unwrap()]
            .split(',')
            .map(|code| code.trim().trim_matches('\'').to_string())
            .collect()
    }

    fn sorted(mut codes: Vec<String>) -> Vec<String> {
        codes.sort();
        codes
    }

    fn codes_of<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
        sorted(all.iter().map(|v| as_str(*v).to_string()).collect())
    }

    /// `as_str`, `Display`, `FromStr`, serde and the sqlx encoding agree.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy
            + fmt::Debug
            + PartialEq
            + fmt::Display
            + FromStr<Err = UnknownCode>
            + Serialize
            + DeserializeOwned,
    {
        for &v in all {
            let code = as_str(v);
            assert_eq!(v.to_string(), code);
            assert_eq!(code.parse::<T>(), Ok(v));
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(code));
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(code)).unwrap(),
                v
            );
        }
        let bogus = "bogus".parse::<T>().unwrap_err();
        assert_eq!(bogus.code, "bogus");
    }

    fn encodes_as_code<'q, T>(v: T, code: &str)
    where
        T: Encode<'q, Postgres> + fmt::Debug,
    {
        let mut ours = PgArgumentBuffer::default();
        let mut text = PgArgumentBuffer::default();
        let _ = v.encode_by_ref(&mut ours).unwrap();
        let _ = code.encode_by_ref(&mut text).unwrap();
        assert_eq!(&ours[..], &text[..], "{v:?}");
    }

    #[test]
    fn step_kinds_match_the_schema() {
        round_trips(StepKind::ALL, StepKind::as_str);
        for &k in StepKind::ALL {
            encodes_as_code(k, k.as_str());
        }
        assert_eq!(
            codes_of(StepKind::ALL, StepKind::as_str),
            sorted(check_list(INITIAL, "step", 0))
        );
        assert!(!StepKind::Upload.is_write() && StepKind::Create.is_write());
    }

    #[test]
    fn step_states_match_the_schema() {
        round_trips(StepState::ALL, StepState::as_str);
        for &s in StepState::ALL {
            encodes_as_code(s, s.as_str());
        }
        let all = codes_of(StepState::ALL, StepState::as_str);
        // outbox.state, then webhook_deliveries.state.
        assert_eq!(all, sorted(check_list(INITIAL, "(state", 0)));
        assert_eq!(all, sorted(check_list(FEED, "(state", 0)));
        assert_eq!(
            StepState::filter_codes(Some(StepState::Pending)),
            ["pending", "running"]
        );
        assert_eq!(
            StepState::filter_codes(None),
            ["pending", "running", "dead"]
        );
        assert_eq!(StepState::filter_codes(Some(StepState::Done)), ["done"]);
    }

    /// The CLI offers every state but `running` (part of `pending`).
    #[test]
    fn the_cli_filters_by_four_states() {
        use clap::ValueEnum;
        let offered: Vec<&str> = StepState::value_variants()
            .iter()
            .filter_map(|s| s.to_possible_value())
            .map(|v| {
                <StepState as FromStr>::from_str(v.get_name())
                    .unwrap()
                    .as_str()
            })
            .collect();
        assert_eq!(offered, ["pending", "dead", "done", "discarded"]);
    }

    #[test]
    fn sync_states_match_the_view() {
        round_trips(SyncState::ALL, SyncState::as_str);
        for &s in SyncState::ALL {
            encodes_as_code(s, s.as_str());
        }
        let view = &SYNC_VIEW[SYNC_VIEW.find("CREATE VIEW complaint_sync").unwrap()..];
        let case = &view[view.find("CASE").unwrap()..view.find("END AS sync_state").unwrap()];
        // The quoted result of every `THEN '...'` and `ELSE '...'`.
        let derived: Vec<String> = ["THEN '", "ELSE '"]
            .iter()
            .flat_map(|word| case.match_indices(word).map(move |(i, _)| i + word.len()))
            .map(|at| case[at..at + case[at..].find('\'').unwrap()].to_string())
            .collect();
        assert_eq!(codes_of(SyncState::ALL, SyncState::as_str), sorted(derived));
    }

    #[test]
    fn attempt_outcomes_round_trip() {
        round_trips(AttemptOutcome::ALL, AttemptOutcome::as_str);
        for &o in AttemptOutcome::ALL {
            encodes_as_code(o, o.as_str());
        }
        let failed: Vec<&str> = AttemptOutcome::ALL
            .iter()
            .filter(|o| o.failed())
            .map(|o| o.as_str())
            .collect();
        assert_eq!(failed, ["retry", "unknown", "paused", "dead"]);
        // Both attempt tables hold exactly these codes.
        let all = codes_of(AttemptOutcome::ALL, AttemptOutcome::as_str);
        assert_eq!(all, sorted(check_list(OUTCOMES, "outcome", 0)));
        assert_eq!(all, sorted(check_list(OUTCOMES, "outcome", 1)));
    }

    #[test]
    fn conflict_kinds_read_back_from_their_reasons() {
        round_trips(ConflictKind::ALL, ConflictKind::as_str);
        let reasons = [
            (
                "unknown LAPOR! status name \"x\"",
                ConflictKind::UnknownStatus,
            ),
            (
                "LAPOR! holds 2 copies of this complaint",
                ConflictKind::DuplicateUpstream,
            ),
            (
                "not on LAPOR!: its create step 1 was discarded",
                ConflictKind::NotOnLapor,
            ),
            (
                "may be on LAPOR!: its create step 1 ...",
                ConflictKind::MayBeOnLapor,
            ),
            (
                "LAPOR! no longer knows complaint 7 (404)",
                ConflictKind::MissingUpstream,
            ),
            (
                "2 follow-up(s) delivered earlier are no longer listed on LAPOR!",
                ConflictKind::FollowupsMissingUpstream,
            ),
        ];
        for (reason, kind) in reasons {
            assert_eq!(ConflictKind::of(reason), Some(kind), "{reason}");
        }
        assert_eq!(ConflictKind::of("set by hand"), None);
        assert_eq!(reasons.len(), ConflictKind::ALL.len());
    }

    #[test]
    fn roles_match_the_schema() {
        round_trips(Role::ALL, Role::as_str);
        for &r in Role::ALL {
            encodes_as_code(r, r.as_str());
        }
        assert_eq!(
            codes_of(Role::ALL, Role::as_str),
            sorted(check_list(SESSIONS, "role", 0))
        );
        assert!(Role::Admin.allows(Role::Intake) && !Role::Auditor.allows(Role::Operator));
    }
}
