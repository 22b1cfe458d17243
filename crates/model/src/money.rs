//! Fixed-point money: [`Price`] (per unit) and [`Money`] (account values, P&L, cash).
//!
//! Both hold an `i64` count of 1/10 000 units ([`SCALE`]), so `440.05` is `4_400_500`.
//! Arithmetic is checked and returns [`MoneyError::Overflow`] instead of wrapping; products
//! (price × quantity × multiplier) are computed in `i128`. `f64` conversions exist only for
//! pricing models and round half away from zero.
//!
//! **Serde:** both serialize as a decimal string (`"440.05"`) so no precision is lost in
//! JSON/JavaScript. They deserialize from such a string, from a JSON integer (whole units) or
//! from a float (rounded to 4 decimals, for hand-written config files).

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::str::FromStr;

/// Number of raw units per 1.0 (4 implied decimals).
pub const SCALE: i64 = 10_000;
const DECIMALS: usize = 4;

/// Errors from money arithmetic, parsing and conversion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// An `f64` input was NaN or infinite.
    #[error("value is not finite")]
    NotFinite,
    /// Value does not fit the fixed-point range.
    #[error("value out of range: {0}")]
    OutOfRange(String),
    /// Checked arithmetic overflowed.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// Text is not a decimal number.
    #[error("not a decimal number: {0:?}")]
    Parse(String),
    /// More than 4 decimal places were given.
    #[error("more than 4 decimal places: {0:?}")]
    TooManyDecimals(String),
    /// Division by zero.
    #[error("division by zero")]
    DivByZero,
}

impl MoneyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFinite => "money.not_finite",
            Self::OutOfRange(_) => "money.out_of_range",
            Self::Overflow(_) => "money.overflow",
            Self::Parse(_) => "money.parse",
            Self::TooManyDecimals(_) => "money.too_many_decimals",
            Self::DivByZero => "money.div_by_zero",
        }
    }
}

fn raw_from_f64(v: f64) -> Result<i64, MoneyError> {
    if !v.is_finite() {
        return Err(MoneyError::NotFinite);
    }
    // f64::round rounds half away from zero.
    let scaled = (v * SCALE as f64).round();
    // i64::MAX as f64 rounds up to 2^63, so use a strict bound.
    if !(-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&scaled) {
        return Err(MoneyError::OutOfRange(v.to_string()));
    }
    Ok(scaled as i64)
}

fn raw_from_str(s: &str) -> Result<i64, MoneyError> {
    let err = || MoneyError::Parse(s.to_owned());
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err());
    }
    if frac_part.len() > DECIMALS {
        return Err(MoneyError::TooManyDecimals(s.to_owned()));
    }
    let mut raw: i128 = 0;
    for b in int_part.bytes() {
        raw = raw * 10 + i128::from(b - b'0');
        if raw > i128::from(i64::MAX) {
            return Err(MoneyError::OutOfRange(s.to_owned()));
        }
    }
    raw *= i128::from(SCALE);
    let mut frac: i128 = 0;
    for b in frac_part.bytes() {
        frac = frac * 10 + i128::from(b - b'0');
    }
    for _ in frac_part.len()..DECIMALS {
        frac *= 10;
    }
    raw += frac;
    if neg {
        raw = -raw;
    }
    i64::try_from(raw).map_err(|_| MoneyError::OutOfRange(s.to_owned()))
}

fn fmt_raw(raw: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let neg = raw < 0;
    let abs = i128::from(raw).unsigned_abs();
    let int = abs / SCALE as u128;
    let frac = abs % SCALE as u128;
    let mut frac_s = format!("{frac:04}");
    while frac_s.len() > 2 && frac_s.ends_with('0') {
        frac_s.pop();
    }
    let sign = if neg { "-" } else { "" };
    let s = format!("{sign}{int}.{frac_s}");
    f.pad(&s)
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(i64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);
            /// The largest representable value.
            pub const MAX: Self = Self(i64::MAX);

            /// From a raw count of 1/10 000 units.
            pub const fn from_raw(raw: i64) -> Self {
                Self(raw)
            }
            /// Raw count of 1/10 000 units.
            pub const fn raw(self) -> i64 {
                self.0
            }
            /// From whole units, e.g. `from_units(440)` is `440.00`.
            pub fn from_units(units: i64) -> Result<Self, MoneyError> {
                units
                    .checked_mul(SCALE)
                    .map(Self)
                    .ok_or(MoneyError::OutOfRange(units.to_string()))
            }
            /// From cents, e.g. `from_cents(44005)` is `440.05`.
            pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
                cents
                    .checked_mul(SCALE / 100)
                    .map(Self)
                    .ok_or(MoneyError::OutOfRange(cents.to_string()))
            }
            /// From `f64`, rounding half away from zero to 4 decimals; NaN/inf are rejected.
            pub fn from_f64(v: f64) -> Result<Self, MoneyError> {
                raw_from_f64(v).map(Self)
            }
            /// To `f64`; for pricing models only (lossy above 2^53 raw units).
            pub fn to_f64(self) -> f64 {
                self.0 as f64 / SCALE as f64
            }
            /// `self + rhs`, or [`MoneyError::Overflow`].
            pub fn checked_add(self, rhs: Self) -> Result<Self, MoneyError> {
                self.0.checked_add(rhs.0).map(Self).ok_or(MoneyError::Overflow("add"))
            }
            /// `self - rhs`, or [`MoneyError::Overflow`].
            pub fn checked_sub(self, rhs: Self) -> Result<Self, MoneyError> {
                self.0.checked_sub(rhs.0).map(Self).ok_or(MoneyError::Overflow("sub"))
            }
            /// `self × k` for an integer `k`.
            pub fn checked_mul_int(self, k: i64) -> Result<Self, MoneyError> {
                self.0.checked_mul(k).map(Self).ok_or(MoneyError::Overflow("mul"))
            }
            /// `self × num / den`, computed in i128 and rounded half away from zero.
            pub fn mul_ratio(self, num: i64, den: i64) -> Result<Self, MoneyError> {
                if den == 0 {
                    return Err(MoneyError::DivByZero);
                }
                let p = i128::from(self.0) * i128::from(num);
                let d = i128::from(den);
                let q = p / d;
                let r = p % d;
                let q = if 2 * r.abs() >= d.abs() {
                    if (p < 0) != (d < 0) { q - 1 } else { q + 1 }
                } else {
                    q
                };
                i64::try_from(q).map(Self).map_err(|_| MoneyError::Overflow("mul_ratio"))
            }
            /// Negation (fails only for `i64::MIN`).
            pub fn checked_neg(self) -> Result<Self, MoneyError> {
                self.0.checked_neg().map(Self).ok_or(MoneyError::Overflow("neg"))
            }
            /// Absolute value (fails only for `i64::MIN`).
            pub fn checked_abs(self) -> Result<Self, MoneyError> {
                self.0.checked_abs().map(Self).ok_or(MoneyError::Overflow("abs"))
            }
            /// `true` if strictly positive.
            pub const fn is_positive(self) -> bool {
                self.0 > 0
            }
            /// `true` if strictly negative.
            pub const fn is_negative(self) -> bool {
                self.0 < 0
            }
            /// Parses a decimal string with at most 4 decimals (`"440.05"`, `"-1"`, `".5"`).
            pub fn parse(s: &str) -> Result<Self, MoneyError> {
                raw_from_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            /// Decimal with at least 2 and at most 4 decimals: `440.05`, `1.50`, `0.0001`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_raw(self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = MoneyError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a decimal string or number")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_units(v).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        let v = i64::try_from(v).map_err(E::custom)?;
                        $name::from_units(v).map_err(E::custom)
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        $name::from_f64(v).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

fixed_point!(
    /// A per-unit price (option premium per share, stock price, strike), 4 implied decimals.
    /// May be negative (combo net prices: negative = credit).
    Price
);
fixed_point!(
    /// An amount of money (cash, P&L, margin, account values), 4 implied decimals.
    Money
);

impl Price {
    /// Cash value of `qty` units at this price with a contract `multiplier`:
    /// `price × qty × multiplier`, computed in i128. Positive for positive qty and price.
    pub fn notional(self, qty: i64, multiplier: u32) -> Result<Money, MoneyError> {
        let v = i128::from(self.0) * i128::from(qty) * i128::from(multiplier);
        i64::try_from(v)
            .map(Money)
            .map_err(|_| MoneyError::Overflow("notional"))
    }

    /// `true` if this price is a whole multiple of `tick` (tick must be > 0).
    pub fn is_on_tick(self, tick: Price) -> bool {
        tick.0 > 0 && self.0 % tick.0 == 0
    }

    /// Rounds to the nearest multiple of `tick` (half away from zero). `tick <= 0` returns self.
    pub fn round_to_tick(self, tick: Price) -> Price {
        if tick.0 <= 0 {
            return self;
        }
        let t = i128::from(tick.0);
        let v = i128::from(self.0);
        let r = v.rem_euclid(t);
        let down = v - r;
        let rounded = if 2 * r >= t { down + t } else { down };
        // Saturate only at the extreme edges of the i64 range (not reachable with real prices).
        Price(i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN }))
    }
}

impl Money {
    /// Reinterprets a per-unit price as a money amount (same scale).
    pub const fn from_price(p: Price) -> Money {
        Money(p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for (s, raw, shown) in [
            ("440.05", 4_400_500, "440.05"),
            ("440", 4_400_000, "440.00"),
            ("1.5", 15_000, "1.50"),
            ("0.0001", 1, "0.0001"),
            ("-2.125", -21_250, "-2.125"),
            (".5", 5_000, "0.50"),
            ("+3", 30_000, "3.00"),
            ("-0.01", -100, "-0.01"),
        ] {
            let p = Price::parse(s).unwrap();
            assert_eq!(p.raw(), raw, "{s}");
            assert_eq!(p.to_string(), shown);
            assert_eq!(Price::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn parse_rejects_bad_text() {
        for s in ["", "-", ".", "1.2.3", "abc", "1e5", " 1", "1,5", "--1"] {
            assert_eq!(Price::parse(s).unwrap_err().code(), "money.parse", "{s:?}");
        }
        assert_eq!(
            Price::parse("1.00001").unwrap_err().code(),
            "money.too_many_decimals"
        );
        assert_eq!(
            Price::parse("99999999999999999999").unwrap_err().code(),
            "money.out_of_range"
        );
    }

    #[test]
    fn from_f64_rounds_half_away_and_rejects_non_finite() {
        assert_eq!(Price::from_f64(1.00005).unwrap().raw(), 10_001);
        assert_eq!(Price::from_f64(-1.00005).unwrap().raw(), -10_001);
        assert_eq!(
            Price::from_f64(0.1 + 0.2).unwrap(),
            Price::parse("0.3").unwrap()
        );
        assert_eq!(
            Price::from_f64(f64::NAN).unwrap_err(),
            MoneyError::NotFinite
        );
        assert_eq!(
            Price::from_f64(f64::INFINITY).unwrap_err().code(),
            "money.not_finite"
        );
        assert_eq!(
            Price::from_f64(1e300).unwrap_err().code(),
            "money.out_of_range"
        );
    }

    #[test]
    fn no_drift_when_summing_many_cents() {
        let cent = Money::from_cents(1).unwrap();
        let mut total = Money::ZERO;
        for _ in 0..100_000 {
            total = total.checked_add(cent).unwrap();
        }
        assert_eq!(total, Money::from_units(1000).unwrap());
    }

    #[test]
    fn notional_uses_wide_product_and_detects_overflow() {
        let p = Price::parse("2.35").unwrap();
        assert_eq!(p.notional(-3, 100).unwrap(), Money::parse("-705").unwrap());
        assert_eq!(
            Price::MAX.notional(2, 100).unwrap_err().code(),
            "money.overflow"
        );
        assert_eq!(
            Money::MAX
                .checked_add(Money::from_raw(1))
                .unwrap_err()
                .code(),
            "money.overflow"
        );
    }

    #[test]
    fn ticks_and_ratios() {
        let tick = Price::parse("0.05").unwrap();
        assert!(Price::parse("1.25").unwrap().is_on_tick(tick));
        assert!(!Price::parse("1.27").unwrap().is_on_tick(tick));
        assert_eq!(
            Price::parse("1.27").unwrap().round_to_tick(tick),
            Price::parse("1.25").unwrap()
        );
        assert_eq!(
            Price::parse("1.275").unwrap().round_to_tick(tick),
            Price::parse("1.30").unwrap()
        );
        assert_eq!(
            Price::parse("-1.27").unwrap().round_to_tick(tick),
            Price::parse("-1.25").unwrap()
        );
        assert_eq!(
            Money::from_raw(5).mul_ratio(1, 2).unwrap(),
            Money::from_raw(3)
        );
        assert_eq!(
            Money::from_raw(-5).mul_ratio(1, 2).unwrap(),
            Money::from_raw(-3)
        );
        assert_eq!(
            Money::from_raw(5).mul_ratio(1, 0).unwrap_err().code(),
            "money.div_by_zero"
        );
    }

    #[test]
    fn serde_as_decimal_string_and_accepts_numbers() {
        let p = Price::parse("440.05").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"440.05\"");
        assert_eq!(serde_json::from_str::<Price>("\"440.05\"").unwrap(), p);
        assert_eq!(serde_json::from_str::<Price>("440.05").unwrap(), p);
        assert_eq!(
            serde_json::from_str::<Price>("440").unwrap(),
            Price::from_units(440).unwrap()
        );
        assert!(serde_json::from_str::<Price>("\"4x\"").is_err());
    }
}
