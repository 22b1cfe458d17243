//! CME Globex hours of the equity-index futures (MNQ, NQ, MES, ES, MYM, M2K), Chicago time:
//! the week's session opens Sunday 17:00 and ends Friday 16:00, with a daily halt 16:00–17:00
//! Monday to Thursday; each evening's reopening starts the next trade date.
//!
//! Holidays, from the US exchange holidays of [`crate::calendar`]:
//! - New Year's Day, Good Friday and Christmas (as observed): Globex is closed all day (the
//!   evening before does not reopen; it reopens at 17:00 of the holiday for the next day);
//! - the other exchange holidays (Martin Luther King Jr. Day, Washington's Birthday, Memorial
//!   Day, Juneteenth, Independence Day, Labor Day, Thanksgiving, unscheduled closings): Globex
//!   trades the morning and halts at 12:00, then reopens at 17:00;
//! - the stock exchanges' early-close days (the day after Thanksgiving, Christmas Eve, 3 July):
//!   equity-index futures close at 12:15.
//!
//! Source: CME Group's trading hours and holiday calendar (cmegroup.com/trading-hours.html,
//! cmegroup.com/tools-information/holiday-calendar.html); the 2026 Martin Luther King Jr. Day
//! schedule (open Sunday 17:00, halt Monday 12:00, reopen 17:00) is the pattern. CME announces
//! each holiday's hours separately and sometimes departs from the pattern (a Good Friday with a
//! short session): the venue's own answer wins, and these hours only decide what Tradeguard
//! previews and when it arms a close for the reopening.
//!
//! [`CmeGlobexHours`] implements [`MarketHours`]: "regular" means Globex is trading; there is
//! no pre-market.

use crate::assignment::hours::{ArmAt, MarketHours, MarketSession};
use crate::calendar;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Weekday};
use chrono_tz::America::Chicago;
use serde::{Deserialize, Serialize};
use tradeguard_model::Timestamp;

const fn hm(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(t) => t,
        None => NaiveTime::MIN,
    }
}

/// The daily halt and the week's close (Friday), Chicago time.
pub const CLOSE: NaiveTime = hm(16, 0);
/// The evening reopening, Chicago time.
pub const REOPEN: NaiveTime = hm(17, 0);
/// The halt on an exchange holiday Globex trades in the morning.
pub const HOLIDAY_HALT: NaiveTime = hm(12, 0);
/// The close on a stock-exchange early-close day.
pub const EARLY_CLOSE: NaiveTime = hm(12, 15);

/// What Globex does on a calendar date (Chicago).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobexDay {
    /// Closed all day (New Year's Day, Good Friday, Christmas; Saturday).
    Closed,
    /// The session that opened the evening before (if it did) trades until this time.
    StopsAt(NaiveTime),
}

/// `true` on the holidays Globex's equity products do not trade at all.
fn closed_all_day(date: NaiveDate) -> bool {
    if date.weekday() == Weekday::Sat {
        return true;
    }
    let (ny, xmas) = calendar::new_year_and_christmas(date.year());
    // New Year's Day on a Sunday is observed on Monday 2 January; one on a Saturday is not.
    [ny, xmas, calendar::good_friday(date.year())].contains(&Some(date))
}

/// The date's schedule: closed, or when its trading stops.
pub fn day(date: NaiveDate) -> GlobexDay {
    if closed_all_day(date) {
        GlobexDay::Closed
    } else if calendar::is_holiday(date) {
        GlobexDay::StopsAt(HOLIDAY_HALT)
    } else if calendar::is_early_close(date) {
        GlobexDay::StopsAt(EARLY_CLOSE)
    } else {
        GlobexDay::StopsAt(CLOSE)
    }
}

/// `true` when a session opens at 17:00 on `date`: Sunday to Thursday, unless the next day (the
/// session's trade date) is closed all day.
pub fn reopens(date: NaiveDate) -> bool {
    matches!(
        date.weekday(),
        Weekday::Sun | Weekday::Mon | Weekday::Tue | Weekday::Wed | Weekday::Thu
    ) && date.succ_opt().is_some_and(|next| !closed_all_day(next))
}

/// `true` when Globex trades at this Chicago wall time.
pub fn is_open_at(local: NaiveDateTime) -> bool {
    let (date, t) = (local.date(), local.time());
    if t >= REOPEN {
        return reopens(date);
    }
    let carried = date.pred_opt().is_some_and(reopens);
    match day(date) {
        GlobexDay::Closed => false,
        GlobexDay::StopsAt(stop) => carried && t < stop,
    }
}

/// The next Chicago wall time Globex opens at or after `local` (itself when open); `None` past
/// three weeks of closure (no such calendar).
pub fn next_open(local: NaiveDateTime) -> Option<NaiveDateTime> {
    if is_open_at(local) {
        return Some(local);
    }
    let mut d = local.date();
    if local.time() >= REOPEN {
        d = d.succ_opt()?;
    }
    for _ in 0..21 {
        if reopens(d) {
            return Some(d.and_time(REOPEN));
        }
        d = d.succ_opt()?;
    }
    None
}

/// Globex hours in Chicago time, or in a fixed offset from UTC without holidays (the simulated
/// venue's calendar, which ignores daylight saving and holidays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmeGlobexHours {
    /// America/Chicago with CME's holidays.
    Chicago,
    /// A fixed offset from UTC in seconds, no holidays.
    Fixed(i64),
}

impl CmeGlobexHours {
    fn plain_week(local: NaiveDateTime) -> bool {
        let (d, t) = (local.date(), local.time());
        match d.weekday() {
            Weekday::Sat => false,
            Weekday::Sun => t >= REOPEN,
            Weekday::Fri => t < CLOSE,
            _ => t < CLOSE || t >= REOPEN,
        }
    }

    /// The next opening of the plain week at or after `local`.
    fn plain_next_open(local: NaiveDateTime) -> NaiveDateTime {
        if Self::plain_week(local) {
            return local;
        }
        let d = local.date();
        // Closed in a weekday's halt: 17:00 the same day; else (Friday evening, Saturday, Sunday
        // before 17:00) Sunday 17:00.
        if !matches!(d.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun) {
            return d.and_time(REOPEN);
        }
        let to_sunday = 6 - u64::from(d.weekday().num_days_from_monday());
        d.checked_add_days(chrono::Days::new(to_sunday))
            .unwrap_or(d)
            .and_time(REOPEN)
    }
}

impl MarketHours for CmeGlobexHours {
    fn local(&self, ts: Timestamp) -> NaiveDateTime {
        match self {
            Self::Chicago => ts.to_datetime().with_timezone(&Chicago).naive_local(),
            Self::Fixed(off) => ts.to_datetime().naive_utc() + TimeDelta::seconds(*off),
        }
    }

    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        let utc = match self {
            Self::Chicago => match Chicago.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                    t.naive_utc()
                }
                // The spring-forward gap: the first instant after it.
                chrono::LocalResult::None => {
                    return self.instant(local + TimeDelta::hours(1));
                }
            },
            Self::Fixed(off) => local - TimeDelta::seconds(*off),
        }
        .and_utc();
        Timestamp::from_secs(utc.timestamp()).plus(std::time::Duration::from_nanos(u64::from(
            utc.timestamp_subsec_nanos(),
        )))
    }

    /// A date a session trades into (its trade date): the evening before reopened.
    fn is_trading_day(&self, date: NaiveDate) -> bool {
        match self {
            Self::Chicago => date.pred_opt().is_some_and(reopens),
            Self::Fixed(_) => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    fn session(&self, ts: Timestamp) -> MarketSession {
        let l = self.local(ts);
        let open = match self {
            Self::Chicago => is_open_at(l),
            Self::Fixed(_) => Self::plain_week(l),
        };
        if open {
            MarketSession::Regular
        } else {
            MarketSession::Closed
        }
    }

    fn close_time(&self, date: NaiveDate) -> NaiveTime {
        match (self, day(date)) {
            (Self::Chicago, GlobexDay::StopsAt(t)) => t,
            _ => CLOSE,
        }
    }

    /// Futures have no pre-market: both wait for Globex to trade.
    fn release_time(&self, ts: Timestamp, _at: ArmAt) -> Timestamp {
        let l = self.local(ts);
        let next = match self {
            Self::Chicago => next_open(l),
            Self::Fixed(_) => Some(Self::plain_next_open(l)),
        };
        match next {
            Some(n) if n == l => ts,
            Some(n) => self.instant(n),
            None => ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn at(date: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
        date.and_time(hm(h, m))
    }

    #[test]
    fn a_plain_week_with_its_daily_halt() {
        // Week of Sunday 6 December 2026.
        let sun = d(2026, 12, 6);
        assert!(!is_open_at(at(sun, 16, 59)));
        assert!(is_open_at(at(sun, 17, 0)));
        let tue = d(2026, 12, 8);
        assert!(is_open_at(at(tue, 3, 0)));
        assert!(is_open_at(at(tue, 15, 59)));
        assert!(!is_open_at(at(tue, 16, 0)), "daily halt");
        assert!(!is_open_at(at(tue, 16, 59)), "daily halt");
        assert!(is_open_at(at(tue, 17, 0)));
        let fri = d(2026, 12, 11);
        assert!(is_open_at(at(fri, 15, 59)));
        assert!(!is_open_at(at(fri, 17, 30)), "no Friday evening");
        assert!(!is_open_at(at(d(2026, 12, 12), 12, 0)), "Saturday");
        assert_eq!(
            next_open(at(fri, 16, 0)),
            Some(at(d(2026, 12, 13), 17, 0)),
            "Friday's close reopens on Sunday"
        );
        assert_eq!(next_open(at(tue, 16, 30)), Some(at(tue, 17, 0)));
        assert_eq!(next_open(at(tue, 10, 0)), Some(at(tue, 10, 0)));
    }

    #[test]
    fn holidays_halt_at_noon_or_close_all_day() {
        // Martin Luther King Jr. Day 2026 (Monday 19 January): Sunday 17:00 open, halt 12:00,
        // reopen 17:00 (CME's published 2026 schedule).
        let mlk = d(2026, 1, 19);
        assert!(is_open_at(at(d(2026, 1, 18), 18, 0)));
        assert!(is_open_at(at(mlk, 11, 59)));
        assert!(!is_open_at(at(mlk, 12, 0)));
        assert!(is_open_at(at(mlk, 17, 0)));
        // Thanksgiving 2026 (26 November): halt at noon; Friday closes at 12:15, then the
        // weekend.
        let thx = d(2026, 11, 26);
        assert!(!is_open_at(at(thx, 12, 30)));
        assert!(is_open_at(at(thx, 17, 0)));
        let black_friday = d(2026, 11, 27);
        assert!(is_open_at(at(black_friday, 12, 14)));
        assert!(!is_open_at(at(black_friday, 12, 15)));
        // Christmas 2026 is a Friday: Christmas Eve closes at 12:15 and nothing reopens until
        // Sunday 27 December.
        let eve = d(2026, 12, 24);
        assert!(is_open_at(at(eve, 12, 0)));
        assert!(!is_open_at(at(eve, 12, 15)));
        assert!(!is_open_at(at(eve, 17, 30)));
        assert!(!is_open_at(at(d(2026, 12, 25), 10, 0)));
        assert_eq!(next_open(at(eve, 13, 0)), Some(at(d(2026, 12, 27), 17, 0)));
        // Good Friday 2026 (3 April): Thursday closes at 16:00 without the evening reopening.
        assert!(!is_open_at(at(d(2026, 4, 2), 17, 30)));
        assert!(!is_open_at(at(d(2026, 4, 3), 9, 0)));
        assert!(is_open_at(at(d(2026, 4, 5), 17, 0)));
        // New Year's Day 2027 is a Friday: 31 December closes at 16:00 and does not reopen.
        assert!(is_open_at(at(d(2026, 12, 31), 15, 0)));
        assert!(!is_open_at(at(d(2026, 12, 31), 17, 30)));
        // New Year's Day 2023 fell on a Sunday (observed Monday 2 January): no Sunday evening.
        assert!(!is_open_at(at(d(2023, 1, 1), 17, 30)));
        assert!(is_open_at(at(d(2023, 1, 2), 17, 30)));
    }

    #[test]
    fn market_hours_in_chicago_time_with_daylight_saving() {
        let h = CmeGlobexHours::Chicago;
        // 8 December 2026, 10:00 Chicago = 16:00 UTC (CST, UTC-6).
        let ts = h.instant(at(d(2026, 12, 8), 10, 0));
        assert_eq!(ts.to_datetime().to_rfc3339(), "2026-12-08T16:00:00+00:00");
        assert!(h.is_open(ts));
        // July: CDT, UTC-5.
        let summer = h.instant(at(d(2026, 7, 8), 10, 0));
        assert_eq!(
            summer.to_datetime().to_rfc3339(),
            "2026-07-08T15:00:00+00:00"
        );
        let halt = h.instant(at(d(2026, 12, 8), 16, 30));
        assert_eq!(h.session(halt), MarketSession::Closed);
        assert_eq!(
            h.release_time(halt, ArmAt::Open),
            h.instant(at(d(2026, 12, 8), 17, 0))
        );
        assert_eq!(h.release_time(ts, ArmAt::PreMarket), ts);
        assert_eq!(h.close_time(d(2026, 11, 27)), EARLY_CLOSE);
        assert_eq!(h.close_time(d(2026, 1, 19)), HOLIDAY_HALT);
        assert!(
            h.is_trading_day(d(2026, 1, 19)),
            "MLK day trades its morning"
        );
        assert!(!h.is_trading_day(d(2026, 12, 25)));
    }

    #[test]
    fn the_fixed_offset_week_has_no_holidays() {
        let h = CmeGlobexHours::Fixed(-6 * 3600);
        let xmas = h.instant(at(d(2026, 12, 25), 10, 0));
        assert!(h.is_open(xmas), "the simulator ignores holidays");
        let halt = h.instant(at(d(2026, 12, 8), 16, 10));
        assert!(!h.is_open(halt));
        assert_eq!(
            h.release_time(halt, ArmAt::Open),
            h.instant(at(d(2026, 12, 8), 17, 0))
        );
        let sat = h.instant(at(d(2026, 12, 12), 9, 30));
        assert_eq!(
            h.release_time(sat, ArmAt::Open),
            h.instant(at(d(2026, 12, 13), 17, 0))
        );
    }
}
