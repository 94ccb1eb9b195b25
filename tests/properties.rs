//! Property tests: the retry backoff's bounds, LAPOR!'s
//! WIB time formats, the Asia/Jakarta working-day calendar, and the matching
//! of our follow-ups with LAPOR!'s.
//!
//! Pure functions only: no database, no network. Fuzz targets for the same
//! and other input surfaces live in `fuzz/` (see `docs/fuzzing.md`).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;

use lapor_bridge::config::Settings;
use lapor_bridge::lapor::timestamp;
use lapor_bridge::lapor::{FailureKind, LaporError};
use lapor_bridge::outbox::retry::RetryPolicy;
use lapor_bridge::sla::{WorkingCalendar, wib_date};
use lapor_bridge::time;

/// Failures are shrunk and printed; they are kept as named tests below
/// rather than in a `proptest-regressions` file.
fn config() -> Config {
    Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// Backoff

/// `base <= max`, both up to a week, in milliseconds as the configuration
/// gives them (`retry_base_ms`, `retry_max_ms`).
fn policy() -> impl Strategy<Value = RetryPolicy> {
    const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;
    (0..=WEEK_MS)
        .prop_flat_map(|base| (Just(base), base..=WEEK_MS))
        .prop_map(|(base, max)| RetryPolicy {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            max_attempts: 12,
        })
}

fn rate_limited(retry_after: Option<Duration>) -> LaporError {
    LaporError::Retryable {
        kind: FailureKind::RateLimited,
        status: Some(429),
        retry_after,
        message: String::new(),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn delay_stays_under_its_ceiling_and_the_ceiling_under_max(
        p in policy(),
        attempt in 1i32..100,
        unit in 0.0f64..=1.0,
    ) {
        let ceiling = p.ceiling(attempt);
        prop_assert!(ceiling <= p.max, "ceiling {ceiling:?} > max {:?}", p.max);
        prop_assert!(ceiling >= p.base, "ceiling {ceiling:?} < base {:?}", p.base);
        let d = p.delay(attempt, None, unit);
        prop_assert!(d <= ceiling, "delay {d:?} > ceiling {ceiling:?}");
        // The ceiling never shrinks as failures accumulate.
        prop_assert!(p.ceiling(attempt + 1) >= ceiling);
    }

    #[test]
    fn retry_after_is_a_floor_bounded_by_max(
        p in policy(),
        attempt in 1i32..100,
        unit in 0.0f64..=1.0,
        retry_after_ms in 0u64..=30 * 24 * 3600 * 1000,
    ) {
        let r = Duration::from_millis(retry_after_ms);
        let d = p.delay(attempt, Some(&rate_limited(Some(r))), unit);
        prop_assert!(d >= r.min(p.max), "delay {d:?} < min(Retry-After {r:?}, max {:?})", p.max);
        prop_assert!(d <= p.max, "delay {d:?} > max {:?}", p.max);
        prop_assert!(d <= p.ceiling(attempt).max(r.min(p.max)));
    }

    #[test]
    fn a_429_without_retry_after_and_a_timeout_wait_at_least_base(
        p in policy(),
        attempt in 1i32..100,
        unit in 0.0f64..=1.0,
    ) {
        let d = p.delay(attempt, Some(&rate_limited(None)), unit);
        prop_assert!(d >= p.base && d <= p.max, "429: {d:?}");
        let timeout = LaporError::UnknownOutcome {
            kind: FailureKind::Timeout,
            status: None,
            message: String::new(),
        };
        let d = p.delay(attempt, Some(&timeout), unit);
        prop_assert!(d >= p.base && d <= p.max, "timeout: {d:?}");
    }

    #[test]
    fn a_jitter_unit_outside_0_1_is_clamped(
        p in policy(),
        attempt in 1i32..100,
        unit in -1.0e6f64..1.0e6,
    ) {
        prop_assert!(p.delay(attempt, None, unit) <= p.ceiling(attempt));
    }
}

// ---------------------------------------------------------------------------
// WIB times

/// Any second from 1970-01-01 00:00:00 to 2099-12-31 23:59:59 (as a naive
/// local time).
fn naive_1970_2100() -> impl Strategy<Value = NaiveDateTime> {
    let end = NaiveDate::from_ymd_opt(2100, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(4_102_444_800);
    (0..end).prop_map(|secs| {
        DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .naive_utc()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn both_lapor_forms_parse_to_wib_minus_seven_hours(naive in naive_1970_2100()) {
        let expected = (naive - TimeDelta::hours(7)).and_utc();
        let plain = naive.format("%Y-%m-%d %H:%M:%S").to_string();
        let followup = naive.format("%d-%m-%Y %H:%M:%S").to_string();
        prop_assert_eq!(timestamp::parse_datetime(&plain), Ok(expected));
        prop_assert_eq!(timestamp::parse_followup_datetime(&followup), Ok(expected));
        // Surrounding whitespace is tolerated, the other form is not.
        prop_assert_eq!(timestamp::parse_datetime(&format!(" {plain}\n")), Ok(expected));
        prop_assert!(timestamp::parse_datetime(&followup).is_err());
        prop_assert!(timestamp::parse_followup_datetime(&plain).is_err());
        // And back.
        prop_assert_eq!(timestamp::format_datetime(expected), plain);
        prop_assert_eq!(timestamp::format_followup_datetime(expected), followup);
        prop_assert_eq!(timestamp::parse_date(&naive.format("%Y-%m-%d").to_string()), Ok(naive.date()));
    }

    #[test]
    fn garbage_never_panics(s in any::<String>()) {
        let _ = timestamp::parse_datetime(&s);
        let _ = timestamp::parse_followup_datetime(&s);
        let _ = timestamp::parse_date(&s);
    }

    #[test]
    fn near_misses_never_panic_and_round_trip_when_accepted(
        s in r"[ +-]?[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,7}( [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3})?"
    ) {
        for parsed in [timestamp::parse_datetime(&s), timestamp::parse_followup_datetime(&s)]
            .into_iter()
            .flatten()
        {
            prop_assert_eq!(timestamp::parse_datetime(&timestamp::format_datetime(parsed)), Ok(parsed));
            prop_assert_eq!(
                timestamp::parse_followup_datetime(&timestamp::format_followup_datetime(parsed)),
                Ok(parsed)
            );
        }
        if let Ok(d) = timestamp::parse_date(&s) {
            prop_assert_eq!(timestamp::parse_date(&timestamp::format_date(d)), Ok(d));
        }
    }
}

// ---------------------------------------------------------------------------
// Working-day calendar

/// The calendar of the shipped example configuration (the holidays and
/// collective leave days of 2025 and 2026).
fn calendar() -> &'static WorkingCalendar {
    static CALENDAR: OnceLock<WorkingCalendar> = OnceLock::new();
    CALENDAR.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lapor-bridge.example.toml");
        let settings =
            Settings::from_toml_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !settings.sla.holidays.is_empty(),
            "the example configuration lists holidays"
        );
        WorkingCalendar::from_settings(&settings.sla)
    })
}

fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap_or_default()
}

/// Any millisecond of 2025-2027, Jakarta time.
fn instant_2025_2027() -> impl Strategy<Value = DateTime<Utc>> {
    let start = timestamp::parse_datetime("2025-01-01 00:00:00").map(|t| t.timestamp_millis());
    let end = timestamp::parse_datetime("2028-01-01 00:00:00").map(|t| t.timestamp_millis());
    let (start, end) = (start.unwrap_or_default(), end.unwrap_or_default());
    (start..end).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_working_days_lands_at_the_end_of_the_nth_working_day(
        from in instant_2025_2027(),
        n in 0u32..70,
    ) {
        let cal = calendar();
        let due = cal.add_working_days(from, n);
        let local = due.with_timezone(&time::wib());
        prop_assert_eq!(local.time(), end_of_day(), "{} + {} -> {}", from, n, due);
        let (from_day, due_day) = (wib_date(from), wib_date(due));
        if n > 0 {
            prop_assert!(cal.is_working_day(due_day), "{due_day} is not a working day");
            prop_assert!(due > from);
        } else {
            prop_assert_eq!(due_day, from_day);
            prop_assert!(due >= from);
        }
        prop_assert_eq!(cal.working_days_between(from, due), i64::from(n));
        prop_assert_eq!(cal.working_days_between(due, from), -i64::from(n));

        // Independent count: the working days in (from's date, due's date].
        let counted = from_day
            .iter_days()
            .skip(1)
            .take_while(|d| *d <= due_day)
            .filter(|d| cal.is_working_day(*d))
            .count();
        prop_assert_eq!(counted, n as usize);

        if n > 0 {
            // Any instant of the day before the deadline is one short.
            let day_before = due - TimeDelta::days(1);
            prop_assert_eq!(cal.working_days_between(from, day_before), i64::from(n) - 1);
            // One more working day is strictly later.
            prop_assert!(cal.add_working_days(from, n + 1) > due);
        }
    }

    #[test]
    fn configured_weekday_holidays_are_not_working_days(
        day in 0u64..(3 * 366),
    ) {
        let cal = calendar();
        let d = NaiveDate::from_ymd_opt(2025, 1, 1)
            .and_then(|s| s.checked_add_days(chrono::Days::new(day)))
            .unwrap_or_default();
        let plain = WorkingCalendar::default();
        // Holidays only ever remove working days.
        if cal.is_working_day(d) {
            prop_assert!(plain.is_working_day(d));
        }
        use chrono::Datelike;
        let weekend = matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
        prop_assert_eq!(plain.is_working_day(d), !weekend);
    }
}

#[test]
fn the_example_holidays_are_honoured() {
    let cal = calendar();
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
    // Tahun Baru 2025 (Wednesday) and Imlek cuti bersama 2025-01-28 (Tuesday).
    assert!(!cal.is_working_day(date("2025-01-01")));
    assert!(!cal.is_working_day(date("2025-01-28")));
    assert!(cal.is_working_day(date("2025-01-02")));
    // Disposition on Tuesday 2024-12-31 at 10:00 WIB: Jan 1 is a holiday, so
    // the 5th working day is Wednesday 2025-01-08.
    let from = timestamp::parse_datetime("2024-12-31 10:00:00").unwrap_or_default();
    assert_eq!(
        timestamp::format_datetime(cal.add_working_days(from, 5)),
        "2025-01-08 23:59:59"
    );
}

// ---------------------------------------------------------------------------
// Regressions

/// Found while fuzzing `wib_times` (by reading the panic branch the fuzzer
/// did not reach): a WIB time in the first seven hours of chrono's first day
/// has no UTC instant, and `wib::from_wib_naive` hit `unreachable!` at
/// src/lapor/wib.rs:38. A LAPOR! answer with such a `created_at` panicked the
/// parser; it is now a field error.
#[test]
fn regression_the_first_hours_of_chronos_range_are_an_error_not_a_panic() {
    assert!(timestamp::parse_datetime("-262143-01-01 00:00:00").is_err());
    assert!(timestamp::parse_datetime("-262143-01-01 06:59:59").is_err());
    assert!(timestamp::parse_followup_datetime("01-01--262143 00:00:00").is_err());
    // From 07:00 WIB on it is the first UTC instant chrono has.
    assert_eq!(
        timestamp::parse_datetime("-262143-01-01 07:00:00"),
        Ok(DateTime::<Utc>::MIN_UTC)
    );
    let doc = serde_json::json!({"results": {"data": [{"id": 1,
        "created_at": "-262143-01-01 00:00:00", "updated_at": "2025-06-01 10:00:00",
        "status_name": "Selesai"}], "meta": {"page": 1, "page_size": 1, "total": 1}}});
    let err = lapor_bridge::lapor::types::parse_summary_page(
        &doc,
        &lapor_bridge::lapor::StatusTable::default(),
    )
    .unwrap_err();
    assert_eq!(err.field, "created_at");
    let naive = NaiveDate::MIN.and_hms_opt(0, 0, 0).unwrap_or_default();
    assert_eq!(time::from_wib_naive(naive), DateTime::<Utc>::MIN_UTC);
}

// ---------------------------------------------------------------------------
// Matching our follow-ups with LAPOR!'s (issue 9, point 4)

mod followup_matching {
    use super::*;
    use lapor_bridge::inbound::apply::{MatchRules, match_followups};
    use lapor_bridge::lapor::types::Followup;
    use lapor_bridge::store::complaints::FollowupRow;

    const OURS: i64 = 101;
    const TEXTS: [&str; 2] = [
        "Laporan Anda sedang kami tindak lanjuti.",
        "Petugas sudah dijadwalkan.",
    ];

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + secs, 0).unwrap_or_default()
    }

    /// Local follow-ups: text, linked to upstream index (maybe), first
    /// attempt (maybe), origin local or lapor.
    fn local() -> impl Strategy<Value = Vec<(usize, Option<usize>, Option<i64>, bool)>> {
        proptest::collection::vec(
            (
                0..2usize,
                proptest::option::of(0..8usize),
                proptest::option::of(0..600i64),
                any::<bool>(),
            ),
            0..6,
        )
    }

    /// Upstream follow-ups: text, institution ours or not, created at.
    fn upstream() -> impl Strategy<Value = Vec<(usize, bool, i64)>> {
        proptest::collection::vec((0..2usize, any::<bool>(), 0..600i64), 0..8)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn matching_is_one_to_one_and_never_older_than_the_first_attempt(
            local in local(), upstream in upstream()
        ) {
            let up: Vec<Followup> = upstream
                .iter()
                .enumerate()
                .map(|(i, (text, ours, created))| Followup {
                    id: 700 + i as i64,
                    content: TEXTS[*text].to_string(),
                    is_secret: false,
                    institution_id: if *ours { Some(OURS) } else { Some(202) },
                    institution_name: None,
                    created_at: at(*created),
                    attachments: Vec::new(),
                })
                .collect();
            let mut taken = std::collections::HashSet::new();
            let rows: Vec<FollowupRow> = local
                .iter()
                .enumerate()
                .map(|(i, (text, linked, sent, is_local))| {
                    // A link names an upstream id at most once.
                    let linked = linked
                        .filter(|u| *u < up.len() && taken.insert(*u))
                        .map(|u| up[u].id);
                    FollowupRow {
                        id: 1 + i as i64,
                        origin: if *is_local { "local".into() } else { "lapor".into() },
                        content: TEXTS[*text].to_string(),
                        is_secret: false,
                        institution_id: Some(OURS),
                        lapor_followup_id: linked,
                        lapor_created_at: None,
                        created_at: at(0),
                        sent_from: sent.map(at),
                        unknown_until: sent.map(|s| at(s + 120)),
                    }
                })
                .collect();
            let rules = MatchRules {
                institution_id: OURS,
                clock_tolerance: TimeDelta::seconds(60),
                known_copies: Default::default(),
            };
            let found = match_followups(&rows, &up, &rules);
            let mut locals = std::collections::HashSet::new();
            let mut ups = std::collections::HashSet::new();
            for (l, u) in found.links.iter().chain(&found.copies) {
                let row = rows.iter().find(|r| r.id == *l).unwrap();
                let f = up.iter().find(|f| f.id == *u).unwrap();
                prop_assert_eq!(&row.content, &f.content, "same text only");
                prop_assert_eq!(f.institution_id, Some(OURS), "ours only");
                prop_assert_eq!(row.origin.as_str(), "local");
                prop_assert!(ups.insert(*u), "an upstream follow-up used twice: {:?}", found);
                prop_assert!(
                    rows.iter().all(|r| r.lapor_followup_id != Some(*u)),
                    "an upstream follow-up linked elsewhere already"
                );
                let sent = row.sent_from.expect("never attempted: never matched");
                prop_assert!(
                    f.created_at >= sent - rules.clock_tolerance,
                    "older than the first send"
                );
            }
            for (l, _) in &found.links {
                prop_assert!(locals.insert(*l), "a local follow-up linked twice");
                let row = rows.iter().find(|r| r.id == *l).unwrap();
                prop_assert!(row.lapor_followup_id.is_none(), "linked already");
            }
        }
    }
}
