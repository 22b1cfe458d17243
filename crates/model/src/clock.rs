//! Time: [`Timestamp`] (nanoseconds since the Unix epoch, UTC) and the [`Clock`] it is read from.
//!
//! Code never calls the system time directly; it takes a `Clock`. Tests and the simulator use
//! [`ManualClock`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Nanoseconds since 1970-01-01T00:00:00Z. Serializes as a bare integer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Time conversion errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The date is outside the range of i64 nanoseconds (years 1677–2262).
    #[error("time out of range: {0}")]
    OutOfRange(String),
}

impl TimeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfRange(_) => "time.out_of_range",
        }
    }
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(n: i64) -> Self {
        Self(n)
    }
    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(NANOS_PER_SEC))
    }
    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }
    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }
    /// Milliseconds since the epoch (floor).
    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    /// From a chrono UTC time.
    pub fn from_datetime(dt: DateTime<Utc>) -> Result<Self, TimeError> {
        dt.timestamp_nanos_opt()
            .map(Self)
            .ok_or_else(|| TimeError::OutOfRange(dt.to_rfc3339()))
    }
    /// To a chrono UTC time (every i64 nanosecond value is representable).
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }
    /// `self + d`, saturating at the end of the range.
    pub fn plus(self, d: Duration) -> Self {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(n))
    }
    /// `self - d`, saturating at the start of the range.
    pub fn minus(self, d: Duration) -> Self {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(n))
    }
    /// Signed nanoseconds from `earlier` to `self`.
    pub fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(u64::try_from(self.nanos_since(earlier)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

/// Source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // Saturates after year 2262.
        Timestamp(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }
}

/// Wall-clock time shifted by a fixed offset: a run that starts at a chosen moment and then runs
/// at wall speed (the app's `TRADEGUARD_CLOCK_START`: a demo or an end-to-end test of what the
/// guard does at the open, without waiting for 09:30).
#[derive(Debug, Clone, Copy, Default)]
pub struct OffsetClock {
    offset_nanos: i64,
}

impl OffsetClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            offset_nanos: start.0.saturating_sub(SystemClock.now().0),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().0.saturating_add(self.offset_nanos))
    }
}

/// A settable clock; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `t`.
    pub fn new(t: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(t.0)))
    }
    /// Sets the time (may go backwards; callers decide).
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    /// Advances the time by `d` and returns the new time.
    pub fn advance(&self, d: Duration) -> Timestamp {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let prev = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(n))
            })
            .unwrap_or_else(|v| v);
        Timestamp(prev.saturating_add(n))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn chrono_round_trip_and_display() {
        let dt = Utc.with_ymd_and_hms(2025, 1, 17, 14, 30, 0).unwrap();
        let t = Timestamp::from_datetime(dt).unwrap();
        assert_eq!(t.to_datetime(), dt);
        assert_eq!(t.to_string(), "2025-01-17T14:30:00.000Z");
        assert_eq!(t.millis() * 1_000_000, t.nanos());
        let far = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            Timestamp::from_datetime(far).unwrap_err().code(),
            "time.out_of_range"
        );
    }

    #[test]
    fn manual_clock_is_shared_and_advances() {
        let c = ManualClock::new(Timestamp::from_secs(100));
        let c2 = c.clone();
        assert_eq!(
            c.advance(Duration::from_millis(1500)),
            Timestamp::from_millis(101_500)
        );
        assert_eq!(c2.now(), Timestamp::from_millis(101_500));
        c2.set(Timestamp::from_secs(5));
        assert_eq!(c.now(), Timestamp::from_secs(5));
        let t = Timestamp::from_secs(10);
        assert_eq!(t.plus(Duration::from_secs(2)).nanos_since(t), 2_000_000_000);
        assert_eq!(
            t.minus(Duration::from_secs(2)).duration_since(t),
            Duration::ZERO
        );
        assert!(SystemClock.now() > Timestamp::from_secs(1_600_000_000));
    }
}

#[cfg(test)]
mod offset_tests {
    use super::*;

    #[test]
    fn an_offset_clock_starts_where_asked_and_runs_at_wall_speed() {
        let start = Timestamp(1_800_000_000_000_000_000);
        let c = OffsetClock::starting_at(start);
        let a = c.now();
        assert!(a >= start && a.nanos_since(start) < 1_000_000_000, "{a:?}");
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now();
        assert!(b.nanos_since(a) >= 20_000_000, "{a:?} {b:?}");
    }
}
