//! Market calendar: sessions in New York time.
//!
//! New York time is modelled as a **fixed UTC−5 offset** (EST all year; DST and exchange
//! holidays are ignored — the simulator only needs a consistent calendar, not the real one).
//! Regular hours are 09:30–16:00 Monday–Friday. Outside them on weekdays the market is in the
//! overnight session (prices frozen, only `outside_rth` stock orders match); it is closed from
//! Friday 20:00 to Sunday 20:00. Options expire at 16:00 on their expiry date.
//!
//! Futures trade CME Globex's week instead ([`globex_open`]): Sunday 18:00 to Friday 17:00 New
//! York time (17:00 to 16:00 Chicago), with the daily halt 17:00–18:00 Monday to Thursday; no
//! holidays here either (the guard's real Globex calendar is `tradeguard_engine::globex`).

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike, Weekday};
use tradeguard_model::Timestamp;

/// Offset of simulated New York time from UTC, in seconds.
pub const ET_OFFSET_SECS: i64 = -5 * 3600;
/// Offset of simulated Chicago time (CME Globex's clock) from UTC, in seconds: an hour behind
/// New York, also without daylight saving.
pub const CT_OFFSET_SECS: i64 = ET_OFFSET_SECS - 3600;

/// Trading session at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// 09:30–16:00 on a weekday.
    Regular,
    /// Weekday evening/night/morning outside regular hours.
    Overnight,
    /// Weekend.
    Closed,
}

fn local(ts: Timestamp) -> chrono::NaiveDateTime {
    ts.to_datetime().naive_utc() + chrono::TimeDelta::seconds(ET_OFFSET_SECS)
}

/// New York calendar date of `ts`.
pub fn et_date(ts: Timestamp) -> NaiveDate {
    local(ts).date()
}

/// The instant of `h:m` New York time on `date`.
pub fn et_time(date: NaiveDate, h: u32, m: u32) -> Timestamp {
    let t = NaiveTime::from_hms_opt(h.min(23), m.min(59), 0).unwrap_or_default();
    let utc = date.and_time(t).and_utc().timestamp() - ET_OFFSET_SECS;
    Timestamp::from_secs(utc)
}

/// Regular-session close (16:00 ET) of `date`.
pub fn close_of(date: NaiveDate) -> Timestamp {
    et_time(date, 16, 0)
}

/// Session at `ts`.
pub fn session(ts: Timestamp) -> Session {
    let l = local(ts);
    let mins = l.hour() * 60 + l.minute();
    match l.weekday() {
        Weekday::Sat => Session::Closed,
        Weekday::Sun if mins < 20 * 60 => Session::Closed,
        Weekday::Sun => Session::Overnight,
        Weekday::Fri if mins >= 20 * 60 => Session::Closed,
        _ if (9 * 60 + 30..16 * 60).contains(&mins) => Session::Regular,
        _ => Session::Overnight,
    }
}

/// `true` while CME Globex trades (futures): Sunday 18:00 to Friday 17:00 New York time, less
/// the daily halt 17:00–18:00.
pub fn globex_open(ts: Timestamp) -> bool {
    let l = local(ts);
    let h = l.hour();
    match l.weekday() {
        Weekday::Sat => false,
        Weekday::Sun => h >= 18,
        Weekday::Fri => h < 17,
        _ => h != 17,
    }
}

/// `true` if `date` is Monday–Friday.
pub fn is_trading_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn sessions_across_a_week() {
        let tue = d(2025, 3, 4);
        assert_eq!(session(et_time(tue, 9, 29)), Session::Overnight);
        assert_eq!(session(et_time(tue, 9, 30)), Session::Regular);
        assert_eq!(session(et_time(tue, 15, 59)), Session::Regular);
        assert_eq!(session(close_of(tue)), Session::Overnight);
        assert_eq!(session(et_time(d(2025, 3, 7), 20, 0)), Session::Closed);
        assert_eq!(session(et_time(d(2025, 3, 8), 12, 0)), Session::Closed);
        assert_eq!(session(et_time(d(2025, 3, 9), 19, 59)), Session::Closed);
        assert_eq!(session(et_time(d(2025, 3, 9), 20, 0)), Session::Overnight);
        // 14:30 UTC is 09:30 in the fixed UTC-5 model.
        assert_eq!(et_time(tue, 9, 30).to_string(), "2025-03-04T14:30:00.000Z");
        assert_eq!(et_date(et_time(tue, 23, 59)), tue);
        assert!(is_trading_day(tue) && !is_trading_day(d(2025, 3, 8)));
    }

    #[test]
    fn globex_trades_nights_but_halts_daily_and_at_the_weekend() {
        let tue = d(2025, 3, 4);
        assert!(globex_open(et_time(tue, 3, 0)), "overnight");
        assert!(globex_open(et_time(tue, 16, 59)));
        assert!(!globex_open(et_time(tue, 17, 0)), "daily halt");
        assert!(!globex_open(et_time(tue, 17, 59)));
        assert!(globex_open(et_time(tue, 18, 0)));
        assert!(!globex_open(et_time(d(2025, 3, 7), 17, 0)), "Friday close");
        assert!(!globex_open(et_time(d(2025, 3, 8), 12, 0)), "Saturday");
        assert!(!globex_open(et_time(d(2025, 3, 9), 17, 59)));
        assert!(globex_open(et_time(d(2025, 3, 9), 18, 0)), "Sunday open");
    }
}
