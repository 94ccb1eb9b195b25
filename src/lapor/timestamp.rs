//! LAPOR!'s timestamps on the wire: three zone-less forms, all Western
//! Indonesian Time (UTC+7), read and written here with [`crate::time`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::time::{format_wib, from_wib};

/// Complaint and log timestamps: `YYYY-MM-DD HH:MM:SS`.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Follow-up timestamps: `DD-MM-YYYY HH:MM:SS`.
pub const FOLLOWUP_FORMAT: &str = "%d-%m-%Y %H:%M:%S";
/// `date_of_incident`: `YYYY-MM-DD`.
pub const DATE_FORMAT: &str = "%Y-%m-%d";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a LAPOR! time in the form {expected}")]
pub struct BadTime {
    pub value: String,
    pub expected: &'static str,
}

fn parse_with(value: &str, format: &'static str) -> Result<DateTime<Utc>, BadTime> {
    let bad = || BadTime {
        value: value.chars().take(64).collect(),
        expected: format,
    };
    let naive = NaiveDateTime::parse_from_str(value.trim(), format).map_err(|_| bad())?;
    // The first seven hours of chrono's first day (-262143-01-01) have no
    // UTC instant: an error, not a panic.
    from_wib(&naive).ok_or_else(bad)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (WIB) to UTC.
pub fn parse_datetime(value: &str) -> Result<DateTime<Utc>, BadTime> {
    parse_with(value, DATETIME_FORMAT)
}

/// Parses `DD-MM-YYYY HH:MM:SS` (WIB) to UTC.
pub fn parse_followup_datetime(value: &str) -> Result<DateTime<Utc>, BadTime> {
    parse_with(value, FOLLOWUP_FORMAT)
}

pub fn parse_date(value: &str) -> Result<NaiveDate, BadTime> {
    NaiveDate::parse_from_str(value.trim(), DATE_FORMAT).map_err(|_| BadTime {
        value: value.chars().take(64).collect(),
        expected: DATE_FORMAT,
    })
}

pub fn format_datetime(at: DateTime<Utc>) -> String {
    format_wib(at, DATETIME_FORMAT)
}

pub fn format_followup_datetime(at: DateTime<Utc>) -> String {
    format_wib(at, FOLLOWUP_FORMAT)
}

pub fn format_date(date: NaiveDate) -> String {
    date.format(DATE_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lapor_forms_are_wib_and_round_trip() {
        let a = parse_datetime("2025-06-01 09:15:00").unwrap();
        assert_eq!(a.to_rfc3339(), "2025-06-01T02:15:00+00:00");
        let b = parse_followup_datetime("01-06-2025 10:00:00").unwrap();
        assert_eq!(b.to_rfc3339(), "2025-06-01T03:00:00+00:00");
        assert_eq!(format_datetime(a), "2025-06-01 09:15:00");
        assert_eq!(format_followup_datetime(b), "01-06-2025 10:00:00");
        // Just after midnight WIB is still the previous day in UTC.
        let c = parse_datetime("2025-06-01 03:00:00").unwrap();
        assert_eq!(c.to_rfc3339(), "2025-05-31T20:00:00+00:00");
    }

    #[test]
    fn the_wrong_form_is_an_error_not_a_guess() {
        assert!(parse_datetime("01-06-2025 10:00:00").is_err());
        assert!(parse_followup_datetime("2025-06-01 09:15:00").is_err());
        assert!(parse_datetime("2025-06-01T09:15:00Z").is_err());
        assert!(parse_date("2025-13-01").is_err());
    }
}
