//! US equity regular-session hours (09:30–16:00 New York, Monday–Friday, DST by the US rule),
//! used to decide whether a silent event stream is suspicious. Exchange holidays are not
//! modelled: on a holiday a quiet stream is probed and resubscribed, which is harmless.

use chrono::{Datelike, Duration as TimeDelta, NaiveDate, Timelike, Weekday};
use tradeguard_model::Timestamp;

/// Whether the market is open at a time.
pub trait MarketHours: Send + Sync {
    /// `true` while the regular session is open.
    fn is_open(&self, ts: Timestamp) -> bool;
}

/// US equity and equity-option regular session.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsRegularSession;

/// Always open (tests, 24 h venues).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOpen;

impl MarketHours for AlwaysOpen {
    fn is_open(&self, _ts: Timestamp) -> bool {
        true
    }
}

/// The assignment guard's exchange calendar answers the stall detector too (regular session).
impl MarketHours for crate::assignment::UsEquityHours {
    fn is_open(&self, ts: Timestamp) -> bool {
        crate::assignment::MarketHours::session(self, ts)
            == crate::assignment::MarketSession::Regular
    }
}

fn nth_sunday(year: i32, month: u32, n: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first.checked_add_signed(TimeDelta::days(i64::from(to_sunday + 7 * (n - 1))))
}

/// UTC offset of New York in hours at a UTC time (−4 in daylight time, −5 otherwise).
fn ny_offset_hours(ts: Timestamp) -> i64 {
    let utc = ts.to_datetime().naive_utc();
    let year = utc.year();
    // DST: second Sunday of March 02:00 EST (07:00 UTC) to first Sunday of November 02:00 EDT
    // (06:00 UTC).
    let start = nth_sunday(year, 3, 2).and_then(|d| d.and_hms_opt(7, 0, 0));
    let end = nth_sunday(year, 11, 1).and_then(|d| d.and_hms_opt(6, 0, 0));
    match (start, end) {
        (Some(s), Some(e)) if utc >= s && utc < e => -4,
        _ => -5,
    }
}

impl MarketHours for UsRegularSession {
    fn is_open(&self, ts: Timestamp) -> bool {
        let local = ts.to_datetime().naive_utc() + TimeDelta::hours(ny_offset_hours(ts));
        if matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        (9 * 60 + 30..16 * 60).contains(&minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
        Timestamp::from_datetime(Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()).unwrap()
    }

    #[test]
    fn session_edges_in_standard_and_daylight_time() {
        let s = UsRegularSession;
        // Tue 2025-03-04 (EST, UTC−5): opens 14:30 UTC, closes 21:00 UTC.
        assert!(!s.is_open(at(2025, 3, 4, 14, 29)));
        assert!(s.is_open(at(2025, 3, 4, 14, 30)));
        assert!(s.is_open(at(2025, 3, 4, 20, 59)));
        assert!(!s.is_open(at(2025, 3, 4, 21, 0)));
        // Tue 2025-03-11 (EDT, UTC−4): opens 13:30 UTC.
        assert!(s.is_open(at(2025, 3, 11, 13, 30)));
        assert!(!s.is_open(at(2025, 3, 11, 20, 0)));
        // Saturday.
        assert!(!s.is_open(at(2025, 3, 8, 16, 0)));
        // Mon 2025-11-03 is back in EST.
        assert!(!s.is_open(at(2025, 11, 3, 14, 0)));
        assert!(s.is_open(at(2025, 11, 3, 14, 30)));
    }
}
