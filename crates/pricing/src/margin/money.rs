//! Fixed-point money for margin: integer micro-dollars (1e-6 USD) in `i128` while computing, so
//! Reg T percentages of prices quoted to the cent are exact; rates are basis points.

use crate::error::PricingError;

/// Micro-dollars per dollar.
pub const MICROS: i128 = 1_000_000;

/// Largest accepted per-share price or strike: $1e9.
const MAX_PRICE: f64 = 1e9;

/// Convert a quoted price (USD per share, as read from JSON) to micro-dollars, rounding to the
/// nearest micro. Rejects NaN/inf, negatives and absurd magnitudes.
pub fn to_micros(field: &'static str, value: f64) -> Result<i128, PricingError> {
    if !value.is_finite() {
        return Err(PricingError::NotFinite { field, value });
    }
    if value < 0.0 {
        return Err(PricingError::OutOfRange {
            field,
            requirement: "non-negative",
            value,
        });
    }
    if value > MAX_PRICE {
        return Err(PricingError::MoneyOverflow { field, value });
    }
    Ok((value * 1e6).round() as i128)
}

/// `bps` basis points of `amount`, rounded up to the next micro (requirements round up).
#[inline]
pub fn pct_of(amount: i128, bps: i128) -> i128 {
    let num = amount * bps;
    let q = num.div_euclid(10_000);
    if num.rem_euclid(10_000) == 0 {
        q
    } else {
        q + 1
    }
}

/// Micro-dollars to dollars for display (exact for amounts below 2^53 micros).
#[inline]
pub fn to_dollars(micros: i128) -> f64 {
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_of_cent_prices_are_exact() {
        let spx = to_micros("price", 1451.19).unwrap();
        assert_eq!(pct_of(spx, 1500), 217_678_500);
        let ibm = to_micros("price", 97.73).unwrap();
        assert_eq!(pct_of(ibm, 2000), 19_546_000);
        assert_eq!(pct_of(1, 1), 1, "fractions round up");
    }

    #[test]
    fn bad_money_is_rejected() {
        assert_eq!(
            to_micros("strike", -1.0).unwrap_err().code(),
            "pricing.bad_strike"
        );
        assert_eq!(
            to_micros("premium", f64::NAN).unwrap_err().code(),
            "pricing.not_finite"
        );
        assert_eq!(
            to_micros("premium", 1e300).unwrap_err().code(),
            "margin.money_overflow"
        );
    }
}
