//! How a call to LAPOR! ended, as a type that callers branch on.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What went wrong, for attempt history, metrics and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made: the request never left.
    Connect,
    /// No answer within the timeout after the request was sent.
    Timeout,
    /// The connection broke after the request was sent.
    ConnectionLost,
    /// A 5xx answer with a JSON or text body.
    ServerError,
    /// An HTML error page, typically a reverse proxy's 502/503/504.
    HtmlError,
    /// 429, with the server's Retry-After.
    RateLimited,
    /// A body that is not the JSON the contract promises (truncated, HTML on
    /// 200, missing or mistyped fields, oversize).
    Malformed,
    /// A multi-page listing changed while it was read (a complaint moved to
    /// the end of the order): read again rather than trust a short answer.
    ListingMoved,
    Unauthorized,
    /// 403 on a complaint: the account may not act on that one.
    Forbidden,
    BadRequest,
    NotFound,
    Conflict,
    TooLarge,
    Validation,
    OtherClientError,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::ConnectionLost => "connection_lost",
            FailureKind::ServerError => "server_error",
            FailureKind::HtmlError => "html_error",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Malformed => "malformed",
            FailureKind::ListingMoved => "listing_moved",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Forbidden => "forbidden",
            FailureKind::BadRequest => "bad_request",
            FailureKind::NotFound => "not_found",
            FailureKind::Conflict => "conflict",
            FailureKind::TooLarge => "too_large",
            FailureKind::Validation => "validation",
            FailureKind::OtherClientError => "client_error",
        }
    }
}

impl FailureKind {
    /// What happened, in words, for people.
    pub fn words(self) -> &'static str {
        match self {
            FailureKind::Connect => "cannot connect to LAPOR!",
            FailureKind::Timeout => "LAPOR! did not answer in time",
            FailureKind::ConnectionLost => "the connection to LAPOR! broke",
            FailureKind::ServerError => "LAPOR! had a server error",
            FailureKind::HtmlError => "LAPOR!'s gateway answered with an error page",
            FailureKind::RateLimited => "LAPOR! asked us to slow down",
            FailureKind::Malformed => "LAPOR!'s answer could not be read",
            FailureKind::ListingMoved => "LAPOR!'s listing kept changing while it was read",
            FailureKind::Unauthorized => "LAPOR! rejected the tokens",
            FailureKind::Forbidden => "LAPOR! does not let this account act on the complaint",
            FailureKind::BadRequest => "LAPOR! refused the request as malformed",
            FailureKind::NotFound => "LAPOR! does not know it",
            FailureKind::Conflict => "LAPOR! refused it in the complaint's current state",
            FailureKind::TooLarge => "too large for LAPOR!",
            FailureKind::Validation => "LAPOR! refused the data",
            FailureKind::OtherClientError => "LAPOR! refused the request",
        }
    }
}

/// ` (HTTP 503)`, or nothing when there was no answer.
struct Http(Option<u16>);

impl std::fmt::Display for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(status) => write!(f, " (HTTP {status})"),
            None => Ok(()),
        }
    }
}

/// The classification of a failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LaporError {
    /// Safe to try again later; nothing was applied (or the call only read).
    #[error("{}{}: {message}", kind.words(), Http(*status))]
    Retryable {
        kind: FailureKind,
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    /// A write whose effect is unknown: it may have been applied upstream.
    /// Never resend blindly; look it up first.
    #[error("{}{}, so whether it was applied is unknown: {message}", kind.words(), Http(*status))]
    UnknownOutcome {
        kind: FailureKind,
        status: Option<u16>,
        message: String,
    },
    /// LAPOR! refused the request; sending it again will not help.
    #[error("{} (HTTP {status}): {message}", kind.words())]
    Permanent {
        kind: FailureKind,
        status: u16,
        message: String,
        field_errors: BTreeMap<String, Vec<String>>,
    },
    /// The tokens were rejected: delivery pauses until they work again.
    #[error("LAPOR! rejected the tokens (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
}

impl LaporError {
    pub fn kind(&self) -> FailureKind {
        match self {
            LaporError::Retryable { kind, .. }
            | LaporError::UnknownOutcome { kind, .. }
            | LaporError::Permanent { kind, .. } => *kind,
            LaporError::Unauthorized { .. } => FailureKind::Unauthorized,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            LaporError::Retryable { status, .. } | LaporError::UnknownOutcome { status, .. } => {
                *status
            }
            LaporError::Permanent { status, .. } | LaporError::Unauthorized { status, .. } => {
                Some(*status)
            }
        }
    }

    /// LAPOR!'s message, already truncated and stripped of secrets, with the
    /// field messages of a 422 appended.
    pub fn message(&self) -> String {
        match self {
            LaporError::Retryable { message, .. }
            | LaporError::UnknownOutcome { message, .. }
            | LaporError::Unauthorized { message, .. } => message.clone(),
            LaporError::Permanent {
                message,
                field_errors,
                ..
            } => {
                if field_errors.is_empty() {
                    message.clone()
                } else {
                    let fields: Vec<String> = field_errors
                        .iter()
                        .map(|(field, msgs)| format!("{field}: {}", msgs.join("; ")))
                        .collect();
                    format!("{message} ({})", fields.join(", "))
                }
            }
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LaporError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn malformed(message: impl Into<String>, status: Option<u16>) -> Self {
        LaporError::Retryable {
            kind: FailureKind::Malformed,
            status,
            retry_after: None,
            message: message.into(),
        }
    }
}

/// Longest LAPOR! message kept in history and logs.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Truncates a remote message and removes every secret from it.
pub fn clean_message(raw: &str, secrets: &[&str]) -> String {
    let mut text = raw.to_string();
    for secret in secrets {
        if !secret.is_empty() {
            text = text.replace(secret, "[redacted]");
        }
    }
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = text.trim();
    if trimmed.chars().count() > MAX_MESSAGE_CHARS {
        let mut cut: String = trimmed.chars().take(MAX_MESSAGE_CHARS).collect();
        cut.push('…');
        cut
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn errors_read_as_words() {
        let e = LaporError::Retryable {
            kind: FailureKind::ServerError,
            status: Some(503),
            retry_after: None,
            message: "maintenance".into(),
        };
        assert_eq!(
            e.to_string(),
            "LAPOR! had a server error (HTTP 503): maintenance"
        );
        let e = LaporError::Retryable {
            kind: FailureKind::Connect,
            status: None,
            retry_after: None,
            message: "127.0.0.1:9: connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to LAPOR!: 127.0.0.1:9: connection refused"
        );
        let e = LaporError::UnknownOutcome {
            kind: FailureKind::HtmlError,
            status: Some(504),
            message: "gateway".into(),
        };
        for bad in ["Some(", "None", "HtmlError"] {
            assert!(!e.to_string().contains(bad), "{e}");
        }
    }
}
