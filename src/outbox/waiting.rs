//! Why a step waits. Stored as a code in `outbox.waiting_reason`; the
//! instant it waits for is the step's own (`next_attempt_at`,
//! `lookup_not_before`). A step that waits is `pending` with its reason; a
//! step whose last attempt failed and that only backs off is `retrying`
//! (see the view `complaint_sync`).

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitingReason {
    /// LAPOR! has not verified the complaint: a follow-up or a forward waits
    /// (re-checked every poll interval, at once after a pull saw it move).
    Verification,
    /// An earlier write may still be applied upstream: no lookup and no
    /// resend before `lookup_not_before`.
    LookupDelay,
    /// LAPOR! answered 429 with a `Retry-After`.
    RetryAfter,
    /// LAPOR! rejected the tokens: every delivery is paused, no attempt is
    /// counted, and the step waits for working tokens.
    TokensRejected,
}

impl WaitingReason {
    pub const ALL: [WaitingReason; 4] = [
        WaitingReason::Verification,
        WaitingReason::LookupDelay,
        WaitingReason::RetryAfter,
        WaitingReason::TokensRejected,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            WaitingReason::Verification => "verification",
            WaitingReason::LookupDelay => "lookup_delay",
            WaitingReason::RetryAfter => "retry_after",
            WaitingReason::TokensRejected => "tokens_rejected",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// In English, with the instant it waits for (API, CLI, logs).
    pub fn describe(self, until: Option<DateTime<Utc>>) -> String {
        let at = |prefix: &str| match until {
            Some(t) => format!("{prefix} {} WIB", crate::time::display(t)),
            None => String::new(),
        };
        match self {
            WaitingReason::Verification => "waiting for LAPOR! to verify the complaint".into(),
            WaitingReason::LookupDelay => format!(
                "LAPOR! may still apply the last attempt: looked up, not resent, {}",
                at("from")
            )
            .trim_end()
            .to_string(),
            WaitingReason::RetryAfter => {
                format!("LAPOR! asked to wait (Retry-After) {}", at("until"))
                    .trim_end()
                    .to_string()
            }
            WaitingReason::TokensRejected => {
                "LAPOR! rejected the tokens: delivery is paused until they work again".into()
            }
        }
    }

    /// A stored code told in English; an unknown code as it is.
    pub fn describe_code(code: &str, until: Option<DateTime<Utc>>) -> String {
        match Self::parse(code) {
            Some(r) => r.describe(until),
            None => code.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_read_as_words() {
        for r in WaitingReason::ALL {
            assert_eq!(WaitingReason::parse(r.code()), Some(r));
            assert!(!r.describe(None).contains('_'));
        }
        assert_eq!(WaitingReason::parse("bogus"), None);
        assert!(
            WaitingReason::LookupDelay
                .describe(Some(Utc::now()))
                .contains("looked up, not resent, from")
        );
        assert!(
            WaitingReason::Verification
                .describe(None)
                .contains("verify")
        );
    }
}
