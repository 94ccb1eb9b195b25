//! SLA deadlines on the Asia/Jakarta working-day calendar.
//!
//! The rules of `lapor-api.md` ("Public regulation and LAPOR! rules") and
//! `bridge.md` (flow 4):
//!
//! | deadline | counted from | length | kind of day |
//! |---|---|---|---|
//! | follow-up by us | the disposition to us | 5 | working days |
//! | expected auto-close | the last follow-up | 10 | working days |
//! | completion | the creation of the complaint | 60 | calendar days |
//!
//! Days are Western Indonesian Time (UTC+7, [`crate::time::wib`]) dates:
//! an event at 17:00 UTC or later belongs to the next Jakarta day. Working
//! days are Monday to Friday minus a configured list of national holidays and
//! collective leave days (`[sla] holidays`, see [`crate::config::SlaSettings`]).
//!
//! Everything here is pure: the caller passes the facts and `now`, so the
//! same complaint evaluates the same way in tests, in the API and in metrics.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use serde::Serialize;

use crate::time::{from_wib_naive, wib};

/// Working days of a follow-up: the dispositioned institution posts a
/// follow-up within this many working days of the disposition.
pub const FOLLOW_UP_WORKING_DAYS: u32 = 5;
/// LAPOR! closes a complaint this many working days after its last
/// follow-up when nobody answers.
pub const AUTO_CLOSE_WORKING_DAYS: u32 = 10;
/// A complaint is completed within this many calendar days of its creation.
pub const COMPLETION_CALENDAR_DAYS: u64 = 60;

/// The last instant of a Jakarta day: 23:59:59.999 WIB.
fn end_of_wib_day(date: NaiveDate) -> DateTime<Utc> {
    let last = NaiveTime::from_hms_milli_opt(23, 59, 59, 999)
        .unwrap_or_else(|| unreachable!("23:59:59.999 is a valid time"));
    from_wib_naive(date.and_time(last))
}

/// The Jakarta date of an instant.
pub fn wib_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&wib()).date_naive()
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Monday to Friday among the days `0001-01-01 ..= d` (proleptic Gregorian;
/// day 1 of the common era is a Monday).
fn weekdays_through(d: NaiveDate) -> i64 {
    let k = i64::from(d.num_days_from_ce());
    k.div_euclid(7) * 5 + k.rem_euclid(7).min(5)
}

/// The Asia/Jakarta working-day calendar: Saturdays, Sundays and the
/// configured holidays are not working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    /// Configured holidays that fall on a weekday (a holiday on a Saturday or
    /// Sunday changes nothing, so it is not kept).
    holidays: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().filter(|d| !is_weekend(*d)).collect(),
        }
    }

    /// The calendar of `[sla] holidays` (both `libur` and `cuti_bersama`:
    /// government offices close on both).
    pub fn from_settings(s: &crate::config::SlaSettings) -> Self {
        Self::new(s.holidays.iter().map(|h| h.date))
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !is_weekend(d) && !self.holidays.contains(&d)
    }

    /// The instant `n` working days after `from`, on the Jakarta calendar.
    ///
    /// The rule: the day of `from` (its WIB date) never counts, whatever the
    /// hour and whether or not it is a working day; counting starts on the
    /// next working day after it, and the deadline is the END of the `n`-th
    /// working day, 23:59:59.999 WIB (16:59:59.999 UTC of that date). So a
    /// disposition on Monday at 09:00 WIB has its 5-working-day follow-up due
    /// on the following Monday at 23:59:59.999 WIB, and one on Friday at
    /// 18:00 UTC (Saturday 01:00 WIB) is counted from Saturday.
    ///
    /// `n = 0` is the end of `from`'s own Jakarta day. A result beyond the
    /// calendar's range saturates at [`DateTime::<Utc>::MAX_UTC`].
    pub fn add_working_days(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut day = wib_date(from);
        let mut left = n;
        while left > 0 {
            day = match day.succ_opt() {
                Some(next) => next,
                None => return DateTime::<Utc>::MAX_UTC,
            };
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        end_of_wib_day(day)
    }

    /// Working days elapsed from `from` to `to`: the number of working days
    /// whose Jakarta date is after `from`'s date and not after `to`'s date
    /// (negative when `to` is before `from`). It is the inverse of
    /// [`Self::add_working_days`]: for every `n`,
    /// `working_days_between(t, add_working_days(t, n)) == n`, and at any
    /// instant of the day before that deadline it is `n - 1`. Hours within a
    /// day do not matter: only Jakarta dates are compared.
    pub fn working_days_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let (a, b) = (wib_date(from), wib_date(to));
        if b < a {
            return -self.working_days_in(b, a);
        }
        self.working_days_in(a, b)
    }

    /// Working days in `(a, b]`, for `a <= b`.
    fn working_days_in(&self, a: NaiveDate, b: NaiveDate) -> i64 {
        let weekdays = weekdays_through(b) - weekdays_through(a);
        let holidays = match a.succ_opt() {
            // `holidays` holds weekdays only.
            Some(start) if start <= b => self.holidays.range(start..=b).count(),
            _ => 0,
        };
        weekdays - holidays as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    FollowUp,
    AutoClose,
    Completion,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deadline {
    pub kind: DeadlineKind,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
}

/// The SLA part of a complaint's status document.
///
/// The `*_at` fields are the deadlines computed from the facts, shown whether
/// or not they are still pending (a met follow-up keeps its due date, so an
/// auditor sees what it was measured against); `next` and `overdue` carry
/// what is pending.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlaView {
    /// 5 working days after the disposition to us; `None` when the complaint
    /// was never dispositioned to us.
    pub follow_up_due_at: Option<DateTime<Utc>>,
    /// 10 working days after the last follow-up, while the complaint is open
    /// and has a follow-up; `None` otherwise (it is an expectation about
    /// LAPOR!, not a deadline of ours).
    pub auto_close_expected_at: Option<DateTime<Utc>>,
    /// 60 calendar days after creation.
    pub completion_due_at: Option<DateTime<Utc>>,
    /// The earliest pending deadline (ties: follow-up, auto-close, completion).
    pub next: Option<Deadline>,
    /// Pending deadlines of ours that have passed, earliest first. Never
    /// contains [`DeadlineKind::AutoClose`].
    pub overdue: Vec<DeadlineKind>,
}

impl SlaView {
    pub fn is_overdue(&self) -> bool {
        !self.overdue.is_empty()
    }
}

/// Inputs about one complaint.
#[derive(Debug, Clone, Default)]
pub struct SlaFacts {
    pub created_at: DateTime<Utc>,
    /// When the complaint was (last) dispositioned to our institution.
    pub dispositioned_to_us_at: Option<DateTime<Utc>>,
    /// Our first follow-up posted after that disposition. A follow-up from
    /// before the disposition (an earlier round, before a forward) does not
    /// meet the deadline and is treated as none.
    pub first_followup_by_us_at: Option<DateTime<Utc>>,
    /// The last follow-up on the complaint, by anyone.
    pub last_followup_at: Option<DateTime<Utc>>,
    pub closed: bool,
}

/// Evaluates one complaint's deadlines at `now`.
///
/// - **Follow-up** ([`FOLLOW_UP_WORKING_DAYS`] working days after
///   `dispositioned_to_us_at`, by [`WorkingCalendar::add_working_days`]):
///   pending until we post a follow-up at or after the disposition; overdue
///   when still pending after its due time. A late follow-up ends it too
///   (it is no longer pending; the lateness is a matter for reports).
/// - **Auto-close** ([`AUTO_CLOSE_WORKING_DAYS`] working days after
///   `last_followup_at`): informational. It is what LAPOR! is expected to do
///   when the reporter does not answer, not a duty of ours, so it can be the
///   `next` deadline but is never overdue; a passed expectation only means
///   the next pull should see the complaint closed.
/// - **Completion** ([`COMPLETION_CALENDAR_DAYS`] after `created_at`, to the
///   end of that Jakarta day): *calendar* days, unlike the other two. The
///   rules in `lapor-api.md` say "completion within 60 days" without "working"
///   while they say "working days" for the others, and the public-service
///   rule behind it counts "hari" (days), not "hari kerja" (working days).
///   Calendar days are also the stricter reading (60 calendar days are about
///   42 working days), so the bridge warns early rather than late.
/// - A closed complaint has no pending deadline: `next` is `None` and
///   `overdue` is empty.
pub fn evaluate(cal: &WorkingCalendar, facts: &SlaFacts, now: DateTime<Utc>) -> SlaView {
    let follow_up_due_at = facts
        .dispositioned_to_us_at
        .map(|at| cal.add_working_days(at, FOLLOW_UP_WORKING_DAYS));
    let auto_close_expected_at = match facts.last_followup_at {
        Some(at) if !facts.closed => Some(cal.add_working_days(at, AUTO_CLOSE_WORKING_DAYS)),
        _ => None,
    };
    let completion_due_at = Some(
        wib_date(facts.created_at)
            .checked_add_days(Days::new(COMPLETION_CALENDAR_DAYS))
            .map_or(DateTime::<Utc>::MAX_UTC, end_of_wib_day),
    );

    let mut pending: Vec<Deadline> = Vec::new();
    if !facts.closed {
        let follow_up_met = match (facts.dispositioned_to_us_at, facts.first_followup_by_us_at) {
            (Some(disposed), Some(ours)) => ours >= disposed,
            _ => false,
        };
        if let Some(due_at) = follow_up_due_at
            && !follow_up_met
        {
            pending.push(Deadline {
                kind: DeadlineKind::FollowUp,
                due_at,
                overdue: due_at < now,
            });
        }
        if let Some(due_at) = auto_close_expected_at {
            pending.push(Deadline {
                kind: DeadlineKind::AutoClose,
                due_at,
                overdue: false,
            });
        }
        if let Some(due_at) = completion_due_at {
            pending.push(Deadline {
                kind: DeadlineKind::Completion,
                due_at,
                overdue: due_at < now,
            });
        }
    }
    // Stable sort: equal times keep the order follow-up, auto-close, completion.
    pending.sort_by_key(|d| d.due_at);
    SlaView {
        follow_up_due_at,
        auto_close_expected_at,
        completion_due_at,
        next: pending.first().cloned(),
        overdue: pending
            .iter()
            .filter(|d| d.overdue)
            .map(|d| d.kind)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{Duration, TimeZone};

    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// `YYYY-MM-DD HH:MM:SS` in WIB.
    fn wib_at(s: &str) -> DateTime<Utc> {
        crate::lapor::timestamp::parse_datetime(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The end of a Jakarta day, spelled in UTC.
    fn due(d: &str) -> DateTime<Utc> {
        end_of_wib_day(date(d))
    }

    fn example_calendar() -> WorkingCalendar {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lapor-bridge.example.toml");
        let settings = crate::config::Settings::from_toml_file(&path).unwrap();
        WorkingCalendar::from_settings(&settings.sla)
    }

    #[test]
    fn the_deadline_is_the_end_of_the_day_in_jakarta() {
        let end = due("2025-06-20");
        assert_eq!(end, utc("2025-06-20T16:59:59.999Z"));
        assert_eq!(wib_date(end), date("2025-06-20"));
        assert_eq!(
            wib_date(end + Duration::milliseconds(1)),
            date("2025-06-21")
        );
    }

    #[test]
    fn weekends_are_skipped() {
        let cal = WorkingCalendar::new([]);
        assert!(cal.is_working_day(date("2025-06-13"))); // Friday
        assert!(!cal.is_working_day(date("2025-06-14"))); // Saturday
        assert!(!cal.is_working_day(date("2025-06-15"))); // Sunday
        // Monday 09:00: Tue..Fri, Mon.
        let monday = wib_at("2025-06-16 09:00:00");
        assert_eq!(cal.add_working_days(monday, 5), due("2025-06-23"));
        // Wednesday: Thu, Fri, Mon, Tue, Wed.
        let wednesday = wib_at("2025-06-18 15:30:00");
        assert_eq!(cal.add_working_days(wednesday, 5), due("2025-06-25"));
        // Saturday and Sunday start counting on Monday.
        let saturday = wib_at("2025-06-14 10:00:00");
        let sunday = wib_at("2025-06-15 23:00:00");
        assert_eq!(cal.add_working_days(saturday, 1), due("2025-06-16"));
        assert_eq!(cal.add_working_days(sunday, 5), due("2025-06-20"));
        // Ten working days are two calendar weeks.
        assert_eq!(cal.add_working_days(monday, 10), due("2025-06-30"));
        // n = 0: the end of the same Jakarta day.
        assert_eq!(cal.add_working_days(monday, 0), due("2025-06-16"));
        assert_eq!(cal.working_days_between(monday, due("2025-06-23")), 5);
        assert_eq!(cal.working_days_between(due("2025-06-23"), monday), -5);
        assert_eq!(cal.working_days_between(monday, saturday), -1);
    }

    #[test]
    fn the_idulfitri_block_of_2025_is_skipped() {
        let cal = example_calendar();
        for d in [
            "2025-03-28",
            "2025-03-31",
            "2025-04-01",
            "2025-04-02",
            "2025-04-03",
            "2025-04-04",
            "2025-04-07",
        ] {
            assert!(!cal.is_working_day(date(d)), "{d}");
        }
        assert!(cal.is_working_day(date("2025-03-27")));
        assert!(cal.is_working_day(date("2025-04-08")));
        // Dispositioned on Thursday 2025-03-27: nothing counts until Tuesday
        // 2025-04-08; then 8, 9, 10, 11, 14.
        let disposed = wib_at("2025-03-27 10:00:00");
        assert_eq!(cal.add_working_days(disposed, 5), due("2025-04-14"));
        // Auto-close: 8, 9, 10, 11, 14, 15, 16, 17, (18 Good Friday) 21, 22.
        assert_eq!(cal.add_working_days(disposed, 10), due("2025-04-22"));
        // Without holidays it would have been the next Thursday.
        assert_eq!(
            WorkingCalendar::new([]).add_working_days(disposed, 5),
            due("2025-04-03")
        );
        assert_eq!(
            cal.working_days_between(disposed, wib_at("2025-04-07 12:00:00")),
            0
        );
        assert_eq!(
            cal.working_days_between(disposed, wib_at("2025-04-08 00:00:00")),
            1
        );
    }

    #[test]
    fn holidays_of_2026_are_skipped() {
        let cal = example_calendar();
        // Nyepi and Idulfitri 2026: 18 (cuti), 19 (libur), 20 (cuti), weekend,
        // 23 and 24 (cuti); then 25, 26, 27, 30, 31.
        let disposed = wib_at("2026-03-17 09:00:00");
        assert_eq!(cal.add_working_days(disposed, 5), due("2026-03-31"));
        // Ascension: 14 (libur) and 15 (cuti); then 18..22.
        let disposed = wib_at("2026-05-13 14:00:00");
        assert_eq!(cal.add_working_days(disposed, 5), due("2026-05-22"));
        // Iduladha 27 (libur), 28 (cuti), Pancasila 1 June (Monday).
        let disposed = wib_at("2026-05-26 08:00:00");
        assert_eq!(cal.add_working_days(disposed, 5), due("2026-06-05"));
    }

    #[test]
    fn a_holiday_on_a_weekend_changes_nothing() {
        // 2025-06-01 (Hari Lahir Pancasila) is a Sunday.
        let with = WorkingCalendar::new([date("2025-06-01")]);
        assert_eq!(with, WorkingCalendar::new([]));
    }

    #[test]
    fn the_jakarta_date_boundary_is_17_00_utc() {
        let cal = example_calendar();
        // Thursday 23:59:59 WIB is still Thursday: Fri, Mon, Tue, Wed, Thu.
        let thursday_night = utc("2025-06-12T16:59:59Z");
        assert_eq!(wib_date(thursday_night), date("2025-06-12"));
        assert_eq!(cal.add_working_days(thursday_night, 5), due("2025-06-19"));
        // One second later it is Friday 00:00 WIB (still Thursday in UTC):
        // Friday does not count; Mon..Fri.
        let friday_midnight = utc("2025-06-12T17:00:00Z");
        assert_eq!(wib_date(friday_midnight), date("2025-06-13"));
        assert_eq!(cal.add_working_days(friday_midnight, 5), due("2025-06-20"));
        assert_eq!(due("2025-06-20"), utc("2025-06-20T16:59:59.999Z"));

        // A disposition on Friday evening UTC is Saturday in Jakarta.
        let friday_evening_utc = utc("2025-06-13T18:30:00Z");
        assert_eq!(friday_evening_utc.weekday(), Weekday::Fri);
        assert_eq!(wib_date(friday_evening_utc), date("2025-06-14"));
        assert_eq!(
            cal.add_working_days(friday_evening_utc, 1),
            due("2025-06-16")
        );
        assert_eq!(
            cal.add_working_days(friday_evening_utc, 5),
            due("2025-06-20")
        );
        // Friday afternoon in Jakarta: Friday itself does not count either.
        let friday_afternoon = wib_at("2025-06-13 16:00:00");
        assert_eq!(cal.add_working_days(friday_afternoon, 5), due("2025-06-20"));
        // A follow-up at Friday 23:59 WIB is in time; at 00:00 WIB Saturday
        // (17:00 UTC Friday) it is late.
        let facts = SlaFacts {
            created_at: friday_evening_utc,
            dispositioned_to_us_at: Some(friday_evening_utc),
            ..Default::default()
        };
        let view = evaluate(&cal, &facts, utc("2025-06-20T16:59:59Z"));
        assert!(view.overdue.is_empty());
        let view = evaluate(&cal, &facts, utc("2025-06-20T17:00:00Z"));
        assert_eq!(view.overdue, vec![DeadlineKind::FollowUp]);
    }

    #[test]
    fn overdue_follow_up_with_an_injected_now() {
        let cal = example_calendar();
        let created = wib_at("2025-06-16 09:00:00");
        let facts = SlaFacts {
            created_at: created,
            dispositioned_to_us_at: Some(wib_at("2025-06-16 10:00:00")),
            first_followup_by_us_at: None,
            last_followup_at: None,
            closed: false,
        };
        let before = evaluate(&cal, &facts, wib_at("2025-06-23 23:00:00"));
        assert_eq!(before.follow_up_due_at, Some(due("2025-06-23")));
        assert_eq!(before.completion_due_at, Some(due("2025-08-15")));
        assert_eq!(before.auto_close_expected_at, None);
        let next = before.next.clone().unwrap();
        assert_eq!(next.kind, DeadlineKind::FollowUp);
        assert_eq!(next.due_at, due("2025-06-23"));
        assert!(!next.overdue);
        assert!(!before.is_overdue());

        let after = evaluate(&cal, &facts, wib_at("2025-06-24 00:00:00"));
        assert_eq!(after.overdue, vec![DeadlineKind::FollowUp]);
        assert!(after.next.as_ref().unwrap().overdue);

        // Much later both of ours are overdue, earliest first.
        let late = evaluate(&cal, &facts, wib_at("2025-08-16 00:00:00"));
        assert_eq!(
            late.overdue,
            vec![DeadlineKind::FollowUp, DeadlineKind::Completion]
        );

        // Our follow-up, even a late one, ends the follow-up deadline and
        // starts the auto-close expectation.
        let answered = SlaFacts {
            first_followup_by_us_at: Some(wib_at("2025-06-24 08:00:00")),
            last_followup_at: Some(wib_at("2025-06-24 08:00:00")),
            ..facts.clone()
        };
        let view = evaluate(&cal, &answered, wib_at("2025-06-25 00:00:00"));
        assert!(view.overdue.is_empty());
        assert_eq!(view.follow_up_due_at, Some(due("2025-06-23")));
        // 25, 26, (27 Muharam) 30, 1, 2, 3, 4, 7, 8, 9.
        assert_eq!(view.auto_close_expected_at, Some(due("2025-07-09")));
        let next = view.next.unwrap();
        assert_eq!(next.kind, DeadlineKind::AutoClose);
        assert_eq!(next.due_at, due("2025-07-09"));

        // A passed auto-close expectation is never overdue.
        let view = evaluate(&cal, &answered, wib_at("2025-07-20 00:00:00"));
        assert!(view.overdue.is_empty());
        assert_eq!(view.next.unwrap().kind, DeadlineKind::AutoClose);

        // A follow-up from before the disposition (an earlier round) does not
        // count.
        let stale = SlaFacts {
            first_followup_by_us_at: Some(wib_at("2025-06-16 09:30:00")),
            ..facts.clone()
        };
        let view = evaluate(&cal, &stale, wib_at("2025-06-24 00:00:00"));
        assert_eq!(view.overdue, vec![DeadlineKind::FollowUp]);
    }

    #[test]
    fn completion_is_sixty_calendar_days_and_closed_has_nothing_pending() {
        let cal = example_calendar();
        // Created at 23:30 WIB on 2025-03-01 (16:30 UTC): day 0 is 1 March.
        let created = wib_at("2025-03-01 23:30:00");
        let facts = SlaFacts {
            created_at: created,
            ..Default::default()
        };
        let view = evaluate(&cal, &facts, created);
        assert_eq!(view.completion_due_at, Some(due("2025-04-30")));
        assert_eq!(view.follow_up_due_at, None);
        assert_eq!(view.next.as_ref().unwrap().kind, DeadlineKind::Completion);
        // Created 00:30 WIB on 2 March (still 1 March in UTC): 1 May.
        let created = utc("2025-03-01T17:30:00Z");
        let view = evaluate(
            &cal,
            &SlaFacts {
                created_at: created,
                ..Default::default()
            },
            created,
        );
        assert_eq!(view.completion_due_at, Some(due("2025-05-01")));

        let late = wib_at("2025-05-01 00:00:00");
        let open = SlaFacts {
            created_at: wib_at("2025-03-01 23:30:00"),
            dispositioned_to_us_at: Some(wib_at("2025-03-03 09:00:00")),
            first_followup_by_us_at: None,
            last_followup_at: Some(wib_at("2025-03-04 09:00:00")),
            closed: false,
        };
        let view = evaluate(&cal, &open, late);
        assert_eq!(
            view.overdue,
            vec![DeadlineKind::FollowUp, DeadlineKind::Completion]
        );
        let closed = SlaFacts {
            closed: true,
            ..open
        };
        let view = evaluate(&cal, &closed, late);
        assert!(view.next.is_none());
        assert!(view.overdue.is_empty());
        assert_eq!(view.auto_close_expected_at, None);
        assert!(view.follow_up_due_at.is_some());
        assert!(view.completion_due_at.is_some());
    }

    #[test]
    fn the_view_serializes_in_snake_case() {
        let cal = WorkingCalendar::new([]);
        let created = wib_at("2025-06-16 09:00:00");
        let facts = SlaFacts {
            created_at: created,
            dispositioned_to_us_at: Some(created),
            ..Default::default()
        };
        let json =
            serde_json::to_value(evaluate(&cal, &facts, wib_at("2025-07-01 00:00:00"))).unwrap();
        assert_eq!(json["next"]["kind"], "follow_up");
        assert_eq!(json["overdue"][0], "follow_up");
        assert_eq!(json["follow_up_due_at"], "2025-06-23T16:59:59.999Z");
        assert!(json["auto_close_expected_at"].is_null());
        assert_eq!(
            serde_json::to_value(DeadlineKind::AutoClose).unwrap(),
            "auto_close"
        );
    }

    #[test]
    fn the_example_config_gives_the_real_calendar() {
        let cal = example_calendar();
        assert!(!cal.is_working_day(date("2025-04-02")), "cuti bersama");
        assert!(cal.is_working_day(date("2025-04-08")));
        assert!(
            !cal.is_working_day(date("2025-08-18")),
            "cuti bersama HUT RI 80"
        );
        assert!(!cal.is_working_day(date("2026-12-24")));
    }

    /// Working days in `(a, b]` by walking the days, to check the arithmetic.
    fn walk(cal: &WorkingCalendar, a: NaiveDate, b: NaiveDate) -> i64 {
        a.iter_days()
            .skip(1)
            .take_while(|d| *d <= b)
            .filter(|d| cal.is_working_day(*d))
            .count() as i64
    }

    #[test]
    fn every_day_of_2025_and_2026() {
        let cal = example_calendar();
        let mut day = date("2025-01-01");
        let end = date("2026-12-31");
        while day <= end {
            // The first instant of the Jakarta day (17:00 UTC the day before),
            // noon, and its last instant (16:59:59.999 UTC).
            let starts = [
                Utc.from_utc_datetime(&day.and_hms_opt(17, 0, 0).unwrap()) - Duration::days(1),
                from_wib_naive(day.and_hms_opt(12, 0, 0).unwrap()),
                end_of_wib_day(day),
            ];
            for from in starts {
                assert_eq!(wib_date(from), day);
                let mut previous = cal.add_working_days(from, 0);
                assert_eq!(previous, end_of_wib_day(day));
                for n in (1..=12).chain([20, 42, 60]) {
                    let deadline = cal.add_working_days(from, n);
                    let due_day = wib_date(deadline);
                    assert!(cal.is_working_day(due_day), "{from} + {n} = {deadline}");
                    assert!(deadline > from && due_day > day, "{from} + {n}");
                    assert_eq!(deadline, end_of_wib_day(due_day));
                    assert!(deadline > previous, "{from}: monotonic at {n}");
                    assert_eq!(cal.working_days_between(from, deadline), i64::from(n));
                    assert_eq!(cal.working_days_between(deadline, from), -i64::from(n));
                    // A day earlier, only n - 1 working days have passed.
                    assert_eq!(
                        cal.working_days_between(from, deadline - Duration::days(1)),
                        i64::from(n) - 1,
                        "{from} + {n}"
                    );
                    // The first instant after the deadline has not reached n + 1.
                    assert_eq!(
                        cal.working_days_between(from, deadline + Duration::milliseconds(1)),
                        i64::from(n) + i64::from(cal.is_working_day(due_day.succ_opt().unwrap())),
                    );
                    previous = deadline;
                }
            }
            // The arithmetic count agrees with walking the days.
            for span in [0u64, 1, 2, 6, 7, 8, 13, 30, 61] {
                let to = day.checked_add_days(Days::new(span)).unwrap();
                assert_eq!(
                    cal.working_days_between(end_of_wib_day(day), end_of_wib_day(to)),
                    walk(&cal, day, to),
                    "{day} .. {to}"
                );
            }
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn day_one_of_the_common_era_is_a_monday() {
        assert_eq!(date("0001-01-01").weekday(), Weekday::Mon);
        assert_eq!(weekdays_through(date("0001-01-05")), 5);
        assert_eq!(weekdays_through(date("0001-01-07")), 5);
        assert_eq!(weekdays_through(date("0001-01-08")), 6);
    }

    #[test]
    fn far_dates_saturate_instead_of_panicking() {
        let cal = WorkingCalendar::new([]);
        let near_end = end_of_wib_day(NaiveDate::MAX - Days::new(3));
        assert_eq!(cal.add_working_days(near_end, 10), DateTime::<Utc>::MAX_UTC);
    }
}
