//! Western Indonesian Time (WIB, UTC+7): the zone of LAPOR!'s timestamps,
//! of the SLA calendar, of the schedules and of the times people read.
//! Instants are kept in UTC; every conversion to and from WIB goes through
//! here. (LAPOR!'s zone-less wire forms are read in `lapor::timestamp`.)

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// How a WIB time is shown to people: `YYYY-MM-DD HH:MM:SS`.
pub const DISPLAY_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Western Indonesian Time: UTC+7, no daylight saving.
pub fn wib() -> FixedOffset {
    // 7 hours is always a valid offset.
    FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| unreachable!())
}

/// A WIB wall-clock time as UTC, or `None` for the first seven hours of
/// chrono's first day (-262143-01-01), which have no UTC instant.
pub fn from_wib(naive: &NaiveDateTime) -> Option<DateTime<Utc>> {
    wib()
        .from_local_datetime(naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A WIB wall-clock time as UTC. A fixed offset maps every local time once,
/// except the first seven hours of chrono's range, which lie before
/// [`DateTime::<Utc>::MIN_UTC`] and saturate to it.
pub fn from_wib_naive(naive: NaiveDateTime) -> DateTime<Utc> {
    from_wib(&naive).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An instant in WIB, formatted with a chrono format string.
pub fn format_wib(at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&wib()).format(format).to_string()
}

/// An instant as people read it: WIB, `YYYY-MM-DD HH:MM:SS`.
pub fn display(at: DateTime<Utc>) -> String {
    format_wib(at, DISPLAY_FORMAT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wib_is_seven_hours_ahead_and_saturates_at_the_start_of_time() {
        let at = DateTime::parse_from_rfc3339("2025-05-31T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(display(at), "2025-06-01 03:00:00");
        let naive = NaiveDateTime::parse_from_str("2025-06-01 03:00:00", DISPLAY_FORMAT).unwrap();
        assert_eq!(from_wib_naive(naive), at);
        assert_eq!(from_wib_naive(NaiveDateTime::MIN), DateTime::<Utc>::MIN_UTC);
    }
}
