//! The US equity and equity-option calendar: New York time from the IANA database (daylight
//! saving included), the exchanges' full-day holidays and early (13:00) closes, and the instant
//! an option expires (the close of its expiry date, New York time).
//!
//! Holidays follow NYSE's rules, so every year is covered, not a pasted list: New Year's Day,
//! Martin Luther King Jr. Day (third Monday of January), Washington's Birthday (third Monday of
//! February), Good Friday, Memorial Day (last Monday of May), Juneteenth, Independence Day,
//! Labor Day (first Monday of September), Thanksgiving (fourth Thursday of November) and
//! Christmas. A holiday on a Saturday is observed the Friday before — except New Year's Day,
//! whose Friday is the last trading day of the year — and one on a Sunday the Monday after.
//! Closings that no rule predicts (the 9 January 2025 national day of mourning) are listed in
//! [`SPECIAL_CLOSINGS`]. Early closes at 13:00: the day after Thanksgiving, Christmas Eve on a
//! weekday, and 3 July when Independence Day falls on a Tuesday to Friday. The tests check the
//! rules against the exchanges' published calendars for 2025, 2026 and 2027.
//! Source: NYSE "Holidays and Trading Hours" (nyse.com/markets/hours-calendars); Cboe follows
//! the same days for equity options.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::America::New_York;
use tradeguard_model::Timestamp;

/// Unscheduled full-day closings no rule predicts.
pub const SPECIAL_CLOSINGS: &[(i32, u32, u32)] = &[
    // National Day of Mourning for President Carter.
    (2025, 1, 9),
];

/// Regular close, New York time.
pub const REGULAR_CLOSE: NaiveTime = match NaiveTime::from_hms_opt(16, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// Close on an early-close day, New York time.
pub const EARLY_CLOSE: NaiveTime = match NaiveTime::from_hms_opt(13, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// The `n`-th (1-based) `weekday` of `month`, or the last one for `n = 0`.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    if n == 0 {
        let next_first = if month == 12 {
            ymd(year + 1, 1, 1)?
        } else {
            ymd(year, month + 1, 1)?
        };
        let last = next_first.pred_opt()?;
        let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
        return last.checked_sub_days(chrono::Days::new(u64::from(back)));
    }
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// Easter Sunday (Gregorian; the anonymous algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// A fixed-date holiday moved to its observed weekday.
fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date.pred_opt().unwrap_or(date),
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// Good Friday of `year` (two days before Easter Sunday).
pub fn good_friday(year: i32) -> Option<NaiveDate> {
    easter(year).and_then(|e| e.checked_sub_days(chrono::Days::new(2)))
}

/// New Year's Day and Christmas as observed in `year` (New Year's Day on a Saturday is not
/// observed: `None`).
pub fn new_year_and_christmas(year: i32) -> (Option<NaiveDate>, Option<NaiveDate>) {
    (
        ymd(year, 1, 1)
            .filter(|d| d.weekday() != Weekday::Sat)
            .map(observed),
        ymd(year, 12, 25).map(observed),
    )
}

/// The exchange holidays (observed dates) of `year`.
pub fn holidays(year: i32) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    // New Year's Day on a Saturday is not observed (31 December trades).
    if let Some(d) = ymd(year, 1, 1).filter(|d| d.weekday() != Weekday::Sat) {
        out.push(observed(d));
    }
    out.extend(nth_weekday(year, 1, Weekday::Mon, 3));
    out.extend(nth_weekday(year, 2, Weekday::Mon, 3));
    out.extend(good_friday(year));
    out.extend(nth_weekday(year, 5, Weekday::Mon, 0));
    // Juneteenth since 2022.
    if year >= 2022 {
        out.extend(ymd(year, 6, 19).map(observed));
    }
    out.extend(ymd(year, 7, 4).map(observed));
    out.extend(nth_weekday(year, 9, Weekday::Mon, 1));
    out.extend(nth_weekday(year, 11, Weekday::Thu, 4));
    out.extend(ymd(year, 12, 25).map(observed));
    out.extend(
        SPECIAL_CLOSINGS
            .iter()
            .filter(|(y, _, _)| *y == year)
            .filter_map(|(y, m, d)| ymd(*y, *m, *d)),
    );
    out.sort();
    out
}

/// `true` on an exchange holiday.
pub fn is_holiday(date: NaiveDate) -> bool {
    holidays(date.year()).contains(&date)
}

/// `true` when the exchange closes at 13:00 New York on `date`.
pub fn is_early_close(date: NaiveDate) -> bool {
    if is_holiday(date) || matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        return false;
    }
    let y = date.year();
    let after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4).and_then(|d| d.succ_opt());
    let christmas_eve = ymd(y, 12, 24);
    let july_3 = ymd(y, 7, 3).filter(|_| {
        ymd(y, 7, 4).is_some_and(|d| {
            matches!(
                d.weekday(),
                Weekday::Tue | Weekday::Wed | Weekday::Thu | Weekday::Fri
            )
        })
    });
    [after_thanksgiving, christmas_eve, july_3].contains(&Some(date))
}

/// `true` when the exchange trades on `date` (a weekday that is not a holiday).
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(date)
}

/// The close of `date`, New York time (13:00 on early-close days).
pub fn close_time(date: NaiveDate) -> NaiveTime {
    if is_early_close(date) {
        EARLY_CLOSE
    } else {
        REGULAR_CLOSE
    }
}

/// New York wall time of an instant.
pub fn new_york(ts: Timestamp) -> NaiveDateTime {
    ts.to_datetime().with_timezone(&New_York).naive_local()
}

/// The instant of a New York wall time. A time the spring-forward gap skips maps to the first
/// instant after the gap; a repeated autumn time to its first occurrence.
pub fn new_york_instant(local: NaiveDateTime) -> Timestamp {
    let dt = match New_York.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
        chrono::LocalResult::None => {
            let later = local + chrono::TimeDelta::hours(1);
            match New_York.from_local_datetime(&later) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
                chrono::LocalResult::None => {
                    return Timestamp::from_secs(local.and_utc().timestamp());
                }
            }
        }
    };
    Timestamp::from_secs(dt.timestamp()).plus(std::time::Duration::from_nanos(u64::from(
        dt.timestamp_subsec_nanos(),
    )))
}

/// When an option of `expiry` stops trading: the close of its expiry date, New York time
/// (16:00, or 13:00 on an early-close day).
pub fn expiry_close(expiry: NaiveDate) -> Timestamp {
    new_york_instant(expiry.and_time(close_time(expiry)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// NYSE's published full-day closings for 2025–2027.
    #[test]
    fn holidays_match_the_published_calendars_2025_to_2027() {
        let want =
            |v: &[(i32, u32, u32)]| v.iter().map(|(y, m, x)| d(*y, *m, *x)).collect::<Vec<_>>();
        assert_eq!(
            holidays(2025),
            want(&[
                (2025, 1, 1),
                (2025, 1, 9),
                (2025, 1, 20),
                (2025, 2, 17),
                (2025, 4, 18),
                (2025, 5, 26),
                (2025, 6, 19),
                (2025, 7, 4),
                (2025, 9, 1),
                (2025, 11, 27),
                (2025, 12, 25),
            ])
        );
        assert_eq!(
            holidays(2026),
            want(&[
                (2026, 1, 1),
                (2026, 1, 19),
                (2026, 2, 16),
                (2026, 4, 3),
                (2026, 5, 25),
                (2026, 6, 19),
                (2026, 7, 3),
                (2026, 9, 7),
                (2026, 11, 26),
                (2026, 12, 25),
            ])
        );
        assert_eq!(
            holidays(2027),
            want(&[
                (2027, 1, 1),
                (2027, 1, 18),
                (2027, 2, 15),
                (2027, 3, 26),
                (2027, 5, 31),
                (2027, 6, 18),
                (2027, 7, 5),
                (2027, 9, 6),
                (2027, 11, 25),
                (2027, 12, 24),
            ])
        );
        // New Year's Day 2028 is a Saturday: not observed on Friday 31 December 2027.
        assert!(is_trading_day(d(2027, 12, 31)));
        assert!(!holidays(2028).contains(&d(2027, 12, 31)));
    }

    #[test]
    fn early_closes_2025_to_2027() {
        let early: Vec<NaiveDate> = (2025..=2027)
            .flat_map(|y| {
                d(y, 1, 1)
                    .iter_days()
                    .take_while(move |x| x.year() == y)
                    .filter(|x| is_early_close(*x))
            })
            .collect();
        assert_eq!(
            early,
            vec![
                d(2025, 7, 3),
                d(2025, 11, 28),
                d(2025, 12, 24),
                d(2026, 11, 27),
                d(2026, 12, 24),
                d(2027, 11, 26),
            ]
        );
        assert_eq!(close_time(d(2025, 11, 28)), EARLY_CLOSE);
        assert_eq!(close_time(d(2025, 11, 26)), REGULAR_CLOSE);
    }

    #[test]
    fn expiry_is_the_new_york_close_in_both_seasons() {
        // EST in January: 16:00 = 21:00 UTC; EDT in July: 20:00 UTC; 13:00 EST on an early close.
        assert_eq!(
            expiry_close(d(2025, 1, 17)).to_datetime().to_rfc3339(),
            "2025-01-17T21:00:00+00:00"
        );
        assert_eq!(
            expiry_close(d(2025, 7, 18)).to_datetime().to_rfc3339(),
            "2025-07-18T20:00:00+00:00"
        );
        assert_eq!(
            expiry_close(d(2025, 11, 28)).to_datetime().to_rfc3339(),
            "2025-11-28T18:00:00+00:00"
        );
    }

    #[test]
    fn new_york_time_across_the_clock_changes() {
        // 2025: daylight saving from 9 March to 2 November.
        let spring = new_york_instant(d(2025, 3, 9).and_hms_opt(2, 30, 0).unwrap());
        assert_eq!(
            spring.to_datetime().to_rfc3339(),
            "2025-03-09T07:30:00+00:00"
        );
        let autumn = new_york_instant(d(2025, 11, 2).and_hms_opt(1, 30, 0).unwrap());
        assert_eq!(
            autumn.to_datetime().to_rfc3339(),
            "2025-11-02T05:30:00+00:00"
        );
        let open = new_york_instant(d(2025, 3, 10).and_hms_opt(9, 30, 0).unwrap());
        assert_eq!(
            new_york(open),
            d(2025, 3, 10).and_hms_opt(9, 30, 0).unwrap()
        );
    }
}
