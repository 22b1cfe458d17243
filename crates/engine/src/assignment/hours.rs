//! Exchange hours the assignment guard needs: is the market open now, when do armed emergency
//! orders go out, when is the close of an expiry day.
//!
//! [`UsEquityHours`] models US equity/options hours: pre-market 04:00–09:30, regular
//! 09:30–16:00, Monday–Friday, New York time. [`UsEquityHours::new_york`] is the real calendar
//! ([`crate::calendar`]): New York time from the IANA database, exchange holidays, 13:00 early
//! closes. [`UsEquityHours::fixed_offset`] uses one offset all year and only weekends
//! (the simulator's calendar is UTC−5).
//! [`AlwaysOpen`] is a market that never closes (tests, 24-hour venues).

use crate::calendar;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};
use tradeguard_model::Timestamp;

/// When armed emergency orders are released while the market is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmAt {
    /// At the regular open (09:30 New York).
    Open,
    /// Stock closes at the start of pre-market (04:00 New York) as outside-RTH orders where
    /// the broker allows them; option orders still wait for the regular open.
    PreMarket,
}

/// Trading session at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MarketSession {
    /// 04:00–09:30 on a trading day.
    PreMarket,
    /// 09:30–16:00 on a trading day.
    Regular,
    /// Anything else.
    Closed,
}

/// Exchange calendar used by the guard.
pub trait MarketHours: Send + Sync {
    /// Exchange-local wall time of `ts`.
    fn local(&self, ts: Timestamp) -> NaiveDateTime;
    /// The instant of an exchange-local wall time.
    fn instant(&self, local: NaiveDateTime) -> Timestamp;
    /// Whether the exchange trades on `date`.
    fn is_trading_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// `true` during the regular session (the stall detector expects events then).
    fn is_open(&self, ts: Timestamp) -> bool {
        self.session(ts) == MarketSession::Regular
    }

    /// Session at `ts`.
    fn session(&self, ts: Timestamp) -> MarketSession {
        let l = self.local(ts);
        if !self.is_trading_day(l.date()) {
            return MarketSession::Closed;
        }
        let t = l.time();
        if t >= hm(9, 30) && t < self.close_time(l.date()) {
            MarketSession::Regular
        } else if t >= hm(4, 0) && t < hm(9, 30) {
            MarketSession::PreMarket
        } else {
            MarketSession::Closed
        }
    }

    /// Exchange-local time of the regular close of `date` (16:00; 13:00 on early-close days
    /// where the calendar has them).
    fn close_time(&self, _date: NaiveDate) -> NaiveTime {
        hm(16, 0)
    }

    /// Regular close of `date`.
    fn close_of(&self, date: NaiveDate) -> Timestamp {
        self.instant(date.and_time(self.close_time(date)))
    }

    /// The earliest instant at or after `ts` at which orders of kind `at` may go out:
    /// `ts` itself when that session is already running.
    fn release_time(&self, ts: Timestamp, at: ArmAt) -> Timestamp {
        let s = self.session(ts);
        let start = match at {
            ArmAt::Open if s == MarketSession::Regular => return ts,
            ArmAt::PreMarket if s != MarketSession::Closed => return ts,
            ArmAt::Open => hm(9, 30),
            ArmAt::PreMarket => hm(4, 0),
        };
        let l = self.local(ts);
        let mut d = l.date();
        if l.time() >= start {
            d = d.succ_opt().unwrap_or(d);
        }
        // At most a long weekend plus a week of holidays: bounded search.
        for _ in 0..14 {
            if self.is_trading_day(d) {
                return self.instant(d.and_time(start));
            }
            d = d.succ_opt().unwrap_or(d);
        }
        self.instant(d.and_time(start))
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    // Callers pass literal in-range values.
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// Offset rule of [`UsEquityHours`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Zone {
    /// America/New_York with US daylight-saving rules (since 2007).
    NewYork,
    /// A fixed offset from UTC in seconds (e.g. −18 000 for UTC−5).
    Fixed(i64),
}

/// US equity and equity-option hours (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsEquityHours {
    /// Offset rule.
    pub zone: Zone,
}

impl UsEquityHours {
    /// New York time with daylight saving.
    pub fn new_york() -> Self {
        Self {
            zone: Zone::NewYork,
        }
    }

    /// One offset all year (the simulator's calendar is `fixed_offset(-5 * 3600)`).
    pub fn fixed_offset(secs: i64) -> Self {
        Self {
            zone: Zone::Fixed(secs),
        }
    }
}

impl MarketHours for UsEquityHours {
    fn local(&self, ts: Timestamp) -> NaiveDateTime {
        match self.zone {
            Zone::NewYork => calendar::new_york(ts),
            Zone::Fixed(off) => ts.to_datetime().naive_utc() + TimeDelta::seconds(off),
        }
    }

    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        match self.zone {
            Zone::NewYork => calendar::new_york_instant(local),
            Zone::Fixed(off) => {
                let utc = (local - TimeDelta::seconds(off)).and_utc();
                Timestamp::from_secs(utc.timestamp()).plus(std::time::Duration::from_nanos(
                    u64::from(utc.timestamp_subsec_nanos()),
                ))
            }
        }
    }

    fn is_trading_day(&self, date: NaiveDate) -> bool {
        match self.zone {
            Zone::NewYork => calendar::is_trading_day(date),
            Zone::Fixed(_) => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    fn close_time(&self, date: NaiveDate) -> NaiveTime {
        match self.zone {
            Zone::NewYork => calendar::close_time(date),
            Zone::Fixed(_) => hm(16, 0),
        }
    }
}

/// A market that never closes: every instant is in the regular session, every day trades,
/// exchange-local time is UTC. Armed emergency orders go out at once and the stall detector
/// always expects events. For tests of the live response at any wall-clock time, and for
/// venues without a session (24-hour markets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlwaysOpen;

impl MarketHours for AlwaysOpen {
    fn local(&self, ts: Timestamp) -> NaiveDateTime {
        ts.to_datetime().naive_utc()
    }

    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        let utc = local.and_utc();
        Timestamp::from_secs(utc.timestamp()).plus(std::time::Duration::from_nanos(u64::from(
            utc.timestamp_subsec_nanos(),
        )))
    }

    fn is_trading_day(&self, _date: NaiveDate) -> bool {
        true
    }

    fn session(&self, _ts: Timestamp) -> MarketSession {
        MarketSession::Regular
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn sessions_and_release_times_fixed_offset() {
        let h = UsEquityHours::fixed_offset(-5 * 3600);
        let tue = d(2025, 3, 4);
        let at = |date: NaiveDate, hh, mm| h.instant(date.and_time(hm(hh, mm)));
        assert_eq!(at(tue, 9, 30), Timestamp::from_secs(1_741_098_600));
        assert_eq!(h.session(at(tue, 3, 59)), MarketSession::Closed);
        assert_eq!(h.session(at(tue, 4, 0)), MarketSession::PreMarket);
        assert_eq!(h.session(at(tue, 9, 30)), MarketSession::Regular);
        assert_eq!(h.session(at(tue, 16, 0)), MarketSession::Closed);
        // Overnight Tuesday -> Wednesday open; pre-market arming -> Wednesday 04:00.
        let night = at(d(2025, 3, 5), 2, 30);
        assert_eq!(h.release_time(night, ArmAt::Open), at(d(2025, 3, 5), 9, 30));
        assert_eq!(
            h.release_time(night, ArmAt::PreMarket),
            at(d(2025, 3, 5), 4, 0)
        );
        // During pre-market, option orders wait for the open, stock may go now.
        let pre = at(tue, 8, 0);
        assert_eq!(h.release_time(pre, ArmAt::Open), at(tue, 9, 30));
        assert_eq!(h.release_time(pre, ArmAt::PreMarket), pre);
        // Friday evening -> Monday.
        let fri = at(d(2025, 3, 7), 18, 0);
        assert_eq!(h.release_time(fri, ArmAt::Open), at(d(2025, 3, 10), 9, 30));
        let open = at(tue, 11, 0);
        assert_eq!(h.release_time(open, ArmAt::Open), open);
        assert_eq!(h.close_of(tue), at(tue, 16, 0));
    }

    #[test]
    fn always_open_releases_at_once_on_any_day() {
        let h = AlwaysOpen;
        let sat_night = h.instant(d(2025, 3, 8).and_time(hm(23, 15)));
        assert_eq!(
            sat_night.to_datetime().to_rfc3339(),
            "2025-03-08T23:15:00+00:00"
        );
        assert_eq!(h.local(sat_night), d(2025, 3, 8).and_time(hm(23, 15)));
        assert_eq!(h.session(sat_night), MarketSession::Regular);
        assert!(h.is_open(sat_night));
        assert_eq!(h.release_time(sat_night, ArmAt::Open), sat_night);
        assert_eq!(h.release_time(sat_night, ArmAt::PreMarket), sat_night);
    }

    #[test]
    fn new_york_follows_daylight_saving() {
        let h = UsEquityHours::new_york();
        // 2025: DST from 9 March to 2 November.
        // 14:30 UTC is 09:30 EDT in July, 09:30 EST in January is 14:30 UTC as well -> 13:30 UTC in July.
        let jul = h.instant(d(2025, 7, 15).and_time(hm(9, 30)));
        assert_eq!(jul.to_datetime().to_rfc3339(), "2025-07-15T13:30:00+00:00");
        let jan = h.instant(d(2025, 1, 15).and_time(hm(9, 30)));
        assert_eq!(jan.to_datetime().to_rfc3339(), "2025-01-15T14:30:00+00:00");
        assert_eq!(h.local(jul), d(2025, 7, 15).and_time(hm(9, 30)));
        assert_eq!(h.local(jan), d(2025, 1, 15).and_time(hm(9, 30)));
        assert_eq!(h.session(jul), MarketSession::Regular);
    }

    /// Do no harm: an emergency close armed for "the open" is never released on an exchange
    /// holiday, and the session ends at 13:00 on an early-close day.
    #[test]
    fn new_york_skips_holidays_and_knows_early_closes() {
        let h = UsEquityHours::new_york();
        let at = |date: NaiveDate, hh, mm| h.instant(date.and_time(hm(hh, mm)));
        // Thursday evening before Good Friday 2026 (3 April): next open is Monday 6 April.
        let thu = at(d(2026, 4, 2), 18, 0);
        assert_eq!(h.release_time(thu, ArmAt::Open), at(d(2026, 4, 6), 9, 30));
        // Wednesday evening before Thanksgiving 2025: Friday's open (an early-close day).
        let wed = at(d(2025, 11, 26), 20, 0);
        assert_eq!(h.release_time(wed, ArmAt::Open), at(d(2025, 11, 28), 9, 30));
        assert_eq!(
            h.session(at(d(2025, 11, 28), 12, 59)),
            MarketSession::Regular
        );
        assert_eq!(h.session(at(d(2025, 11, 28), 13, 0)), MarketSession::Closed);
        assert_eq!(h.close_of(d(2025, 11, 28)), at(d(2025, 11, 28), 13, 0));
        assert_eq!(h.session(at(d(2025, 12, 25), 11, 0)), MarketSession::Closed);
        // The simulator's fixed calendar knows weekends only.
        let sim = UsEquityHours::fixed_offset(-5 * 3600);
        assert!(sim.is_trading_day(d(2025, 12, 25)));
    }
}
