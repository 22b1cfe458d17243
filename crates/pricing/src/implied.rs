//! Implied volatility for European BSM prices: safeguarded Newton from the inflection point of
//! the price in vol (where Newton converges monotonically), with a bisection bracket as a net.
//! Prices outside the no-arbitrage bounds are typed errors.

use crate::error::{PricingError, finite, non_negative, positive};
use crate::european::bsm_price_unchecked;
use crate::normal::pdf;
use crate::types::OptionType;

/// Largest vol the solver will return (1000%).
pub const MAX_VOL: f64 = 10.0;

/// Implied volatility of a European option price under BSM with dividend yield `q`.
pub fn implied_vol(
    kind: OptionType,
    price: f64,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
) -> Result<f64, PricingError> {
    implied_vol_from(kind, price, s, k, t, r, q, None, 0.0)
}

/// [`implied_vol`] from a starting guess (e.g. the same option's implied vol at the previous
/// quote: Newton then needs a step or two), stopping once a step moves the vol less than
/// `vol_tol` (absolute; `0.0`: to the last bits, as [`implied_vol`]). A guess outside the
/// solver's bracket is ignored.
#[allow(clippy::too_many_arguments)]
pub fn implied_vol_from(
    kind: OptionType,
    price: f64,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    guess: Option<f64>,
    vol_tol: f64,
) -> Result<f64, PricingError> {
    finite("price", price)?;
    positive("spot", s)?;
    positive("strike", k)?;
    positive("t", t)?;
    finite("r", r)?;
    finite("q", q)?;
    non_negative("price", price)?;
    let sq = s * (-q * t).exp();
    let kr = k * (-r * t).exp();
    let lower = (kind.sign() * (sq - kr)).max(0.0);
    let upper = match kind {
        OptionType::Call => sq,
        OptionType::Put => kr,
    };
    let tol = 1e-13 * upper.max(1.0);
    if price < lower - tol {
        return Err(PricingError::PriceBelowIntrinsic {
            price,
            bound: lower,
        });
    }
    if price >= upper - tol * 1e-3 {
        return Err(PricingError::PriceAboveUpperBound {
            price,
            bound: upper,
        });
    }
    if price <= lower + 1e-300 {
        return Ok(0.0);
    }
    let price_at = |v: f64| bsm_price_unchecked(kind, s, k, t, r, q, v);
    let sqrt_t = t.sqrt();
    let x = (sq / kr).ln();
    // Inflection point of price(vol): total vol sqrt(2|x|).
    let mut v = match guess {
        Some(g) if g.is_finite() && g > 0.0 && g < MAX_VOL => g,
        _ => ((2.0 * x.abs()).sqrt() / sqrt_t).max(0.05),
    };
    let (mut lo, mut hi) = (0.0_f64, MAX_VOL);
    if price_at(hi) < price {
        return Err(PricingError::ImpliedVolNoConvergence { price });
    }
    for _ in 0..200 {
        let p = price_at(v);
        let diff = p - price;
        if diff > 0.0 {
            hi = hi.min(v);
        } else {
            lo = lo.max(v);
        }
        let tv = v * sqrt_t;
        let vega = sq * pdf(x / tv + 0.5 * tv) * sqrt_t;
        let mut next = if vega > 0.0 {
            v - diff / vega
        } else {
            f64::NAN
        };
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - v).abs() < (1e-15 * v.max(1e-3)).max(vol_tol) || hi - lo < 1e-15 {
            return Ok(next);
        }
        if diff.abs() <= 1e-15 * price.max(1e-300) {
            return Ok(v);
        }
        v = next;
    }
    // The bracket is tiny by now; report its midpoint only if it prices back correctly.
    let mid = 0.5 * (lo + hi);
    if (price_at(mid) - price).abs() <= 1e-9 * price.max(1.0) {
        Ok(mid)
    } else {
        Err(PricingError::ImpliedVolNoConvergence { price })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_moneyness_and_expiry() {
        for kind in [OptionType::Call, OptionType::Put] {
            for &k in &[40.0, 80.0, 100.0, 125.0, 250.0] {
                for &t in &[1.0 / 365.0, 0.1, 1.0, 5.0] {
                    for &vol in &[0.05, 0.2, 0.8, 2.0] {
                        let p = bsm_price_unchecked(kind, 100.0, k, t, 0.03, 0.01, vol);
                        let lower = (kind.sign()
                            * (100.0 * (-0.01 * t).exp() - k * (-0.03 * t).exp()))
                        .max(0.0);
                        // Prices indistinguishable from intrinsic carry no vol information.
                        if p - lower < 1e-10 * p.max(1.0) {
                            continue;
                        }
                        let iv = implied_vol(kind, p, 100.0, k, t, 0.03, 0.01).unwrap();
                        let back = bsm_price_unchecked(kind, 100.0, k, t, 0.03, 0.01, iv);
                        assert!(
                            (back - p).abs() < 1e-10 * p.max(1.0),
                            "{kind:?} k={k} t={t} vol={vol}: iv={iv}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn out_of_bounds_prices_are_typed_errors() {
        // Deep ITM call worth less than intrinsic.
        let e = implied_vol(OptionType::Call, 5.0, 100.0, 90.0, 0.5, 0.0, 0.0).unwrap_err();
        assert_eq!(e.code(), "iv.below_intrinsic");
        let e = implied_vol(OptionType::Call, 100.0, 100.0, 90.0, 0.5, 0.0, 0.0).unwrap_err();
        assert_eq!(e.code(), "iv.above_upper_bound");
        let e = implied_vol(OptionType::Put, f64::NAN, 100.0, 90.0, 0.5, 0.0, 0.0).unwrap_err();
        assert_eq!(e.code(), "pricing.not_finite");
        let e = implied_vol(OptionType::Put, 1.0, 100.0, 90.0, 0.0, 0.0, 0.0).unwrap_err();
        assert_eq!(e.code(), "pricing.bad_time");
    }

    #[test]
    fn price_at_intrinsic_gives_zero_vol() {
        let iv = implied_vol(OptionType::Put, 10.0, 90.0, 100.0, 0.5, 0.0, 0.0).unwrap();
        assert_eq!(iv, 0.0);
    }
}
