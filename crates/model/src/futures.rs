//! Futures contracts: the specifications of the contracts traders guard most (tick size, tick
//! value, multiplier), CME month codes, the quarterly equity-index expiry, and the roll (CME's
//! convention: volume moves to the next quarter eight days before expiry, on the Thursday of
//! the week before; <https://www.cmegroup.com/trading/equity-index/rolldates.html>).
//!
//! Specifications from CME Group's contract pages (e.g.
//! <https://www.cmegroup.com/markets/equities/nasdaq/micro-e-mini-nasdaq-100.contractSpecs.html>).

use crate::money::Price;
use chrono::{Datelike, NaiveDate, Weekday};

/// One futures product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureSpec {
    /// Root symbol (`MNQ`).
    pub root: &'static str,
    /// Name.
    pub name: &'static str,
    /// Minimum price increment.
    pub tick: Price,
    /// Dollars per point (tick value = tick × multiplier).
    pub multiplier: u32,
    /// Expires on the third Friday of the contract month (CME equity index futures).
    pub third_friday: bool,
}

impl FutureSpec {
    /// Dollars per tick.
    pub fn tick_value(&self) -> f64 {
        self.tick.to_f64() * f64::from(self.multiplier)
    }
}

const QUARTER: Price = Price::from_raw(2_500);

/// The products with a known specification.
pub const SPECS: &[FutureSpec] = &[
    FutureSpec {
        root: "MNQ",
        name: "Micro E-mini Nasdaq-100",
        tick: QUARTER,
        multiplier: 2,
        third_friday: true,
    },
    FutureSpec {
        root: "NQ",
        name: "E-mini Nasdaq-100",
        tick: QUARTER,
        multiplier: 20,
        third_friday: true,
    },
    FutureSpec {
        root: "MES",
        name: "Micro E-mini S&P 500",
        tick: QUARTER,
        multiplier: 5,
        third_friday: true,
    },
    FutureSpec {
        root: "ES",
        name: "E-mini S&P 500",
        tick: QUARTER,
        multiplier: 50,
        third_friday: true,
    },
    FutureSpec {
        root: "MYM",
        name: "Micro E-mini Dow",
        tick: Price::from_raw(10_000),
        multiplier: 1,
        third_friday: true,
    },
    FutureSpec {
        root: "M2K",
        name: "Micro E-mini Russell 2000",
        tick: Price::from_raw(1_000),
        multiplier: 5,
        third_friday: true,
    },
];

/// The specification of `root`, when known.
pub fn spec(root: &str) -> Option<&'static FutureSpec> {
    SPECS.iter().find(|s| s.root == root)
}

/// CME month codes, January first.
pub const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

/// The month (1–12) of a CME month code.
pub fn month_of_code(c: char) -> Option<u32> {
    MONTH_CODES
        .iter()
        .position(|m| *m == c)
        .map(|i| i as u32 + 1)
}

/// The CME month code of a month (1–12).
pub fn code_of_month(month: u32) -> Option<char> {
    MONTH_CODES.get(month.checked_sub(1)? as usize).copied()
}

/// The third Friday of a month: the last trading day of CME equity index futures.
pub fn third_friday(year: i32, month: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let to_friday =
        (7 + Weekday::Fri.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    first.checked_add_days(chrono::Days::new(u64::from(to_friday) + 14))
}

/// The roll date of a quarterly equity-index contract expiring on `expiry`: eight days before
/// (the Thursday before its expiry week), when the next quarter becomes the front month.
pub fn roll_date(expiry: NaiveDate) -> Option<NaiveDate> {
    expiry.checked_sub_days(chrono::Days::new(8))
}

/// The expiry of the front quarterly (March, June, September, December) equity-index contract
/// on `date`: the first quarter whose roll date is still ahead.
pub fn front_quarter(date: NaiveDate) -> Option<NaiveDate> {
    let (mut y, mut m) = (date.year(), date.month().div_ceil(3) * 3);
    for _ in 0..3 {
        let expiry = third_friday(y, m)?;
        if roll_date(expiry)? > date {
            return Some(expiry);
        }
        (y, m) = if m == 12 { (y + 1, 3) } else { (y, m + 3) };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_expiries() {
        let mnq = spec("MNQ").unwrap();
        assert_eq!(mnq.tick_value(), 0.5);
        assert_eq!(spec("ES").unwrap().tick_value(), 12.5);
        assert_eq!(spec("MES").unwrap().tick_value(), 1.25);
        assert_eq!(spec("NQ").unwrap().tick_value(), 5.0);
        assert_eq!(
            third_friday(2025, 12),
            NaiveDate::from_ymd_opt(2025, 12, 19)
        );
        assert_eq!(third_friday(2026, 3), NaiveDate::from_ymd_opt(2026, 3, 20));
        assert_eq!(month_of_code('Z'), Some(12));
        assert_eq!(code_of_month(3), Some('H'));
        assert_eq!(code_of_month(13), None);
    }

    #[test]
    fn the_front_quarter_rolls_eight_days_before_expiry() {
        let d = |y, m, x| NaiveDate::from_ymd_opt(y, m, x).unwrap();
        // December 2026 expires Friday the 18th and rolls Thursday the 10th.
        assert_eq!(roll_date(d(2026, 12, 18)), Some(d(2026, 12, 10)));
        assert_eq!(front_quarter(d(2026, 12, 7)), Some(d(2026, 12, 18)));
        assert_eq!(front_quarter(d(2026, 12, 9)), Some(d(2026, 12, 18)));
        assert_eq!(
            front_quarter(d(2026, 12, 10)),
            Some(d(2027, 3, 19)),
            "on the roll date the March contract is the front"
        );
        assert_eq!(front_quarter(d(2026, 1, 5)), Some(d(2026, 3, 20)));
        assert_eq!(front_quarter(d(2025, 3, 4)), Some(d(2025, 3, 21)));
        assert_eq!(front_quarter(d(2025, 3, 13)), Some(d(2025, 6, 20)));
    }
}
