//! American options: the QD+ fixed-point engine (default), a CRR binomial fallback, a
//! Crank-Nicolson solver for discrete cash dividends, and the classic BAW / Ju approximations
//! (for the published anchors only). Greeks by bump-and-reprice.

pub mod approx;
pub mod binomial;
pub mod fd;
pub mod qdfp;
pub mod quadrature;

pub use binomial::crr_price;
pub use fd::{FdGrid, FdResult, fd_cash_dividends};
pub use qdfp::{QdFpScheme, american_qdfp};

use crate::error::{PricingError, non_negative};
use crate::types::{BsmInputs, CashDividend, Greeks, OptionType};

/// Which American engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmericanMethod {
    /// QD+ fixed point with the scheme chosen by expiry ([`QdFpScheme::for_expiry`]); the default.
    #[default]
    Auto,
    /// Andersen-Lake-Offengelt fixed point on the QD+ boundary with an explicit scheme.
    QdFp(QdFpScheme),
    /// Cox-Ross-Rubinstein tree with this many steps.
    Binomial { steps: usize },
}

/// Steps of the binomial fallback.
pub const FALLBACK_STEPS: usize = 2000;

/// American price with the default engine (QD+ fixed point, binomial where it does not apply).
pub fn american_price(inp: &BsmInputs) -> Result<f64, PricingError> {
    american_price_with(inp, AmericanMethod::default())
}

/// American price with an explicit engine.
pub fn american_price_with(inp: &BsmInputs, method: AmericanMethod) -> Result<f64, PricingError> {
    inp.validate()?;
    let price = american_price_unchecked(inp, method);
    if price.is_finite() {
        Ok(price)
    } else {
        Err(PricingError::Numerical { method: "american" })
    }
}

/// American price without validation (hot path).
#[inline]
pub fn american_price_unchecked(inp: &BsmInputs, method: AmericanMethod) -> f64 {
    let BsmInputs {
        kind,
        spot,
        strike,
        t,
        r,
        q,
        vol,
    } = *inp;
    match method {
        AmericanMethod::Auto => {
            american_qdfp(kind, spot, strike, t, r, q, vol, QdFpScheme::for_expiry(t))
                .unwrap_or_else(|| {
                    crr_price(kind, spot, strike, t, r, q, vol, FALLBACK_STEPS, true)
                })
        }
        AmericanMethod::QdFp(scheme) => american_qdfp(kind, spot, strike, t, r, q, vol, scheme)
            .unwrap_or_else(|| crr_price(kind, spot, strike, t, r, q, vol, FALLBACK_STEPS, true)),
        AmericanMethod::Binomial { steps } => {
            crr_price(kind, spot, strike, t, r, q, vol, steps, true)
        }
    }
}

/// American price and Greeks by central bump-and-reprice on the accurate QD+ scheme (same units
/// as the European Greeks; `d1`/`d2` left at zero). For the hot path use [`american_price`].
pub fn american_greeks(inp: &BsmInputs) -> Result<Greeks, PricingError> {
    inp.validate()?;
    // Second differences amplify the scheme's small price error (which is not smooth in spot
    // near the exercise boundary), so the Greeks use the accurate scheme; still well under 1 ms.
    let m = AmericanMethod::QdFp(QdFpScheme::ACCURATE);
    let p = |i: BsmInputs| american_price_unchecked(&i, m);
    let price = p(*inp);
    let (delta, gamma) = spot_greeks(inp, price, &p);
    let hv = 1e-4;
    let vol_dn = (inp.vol - hv).max(0.0);
    let vega = (p(inp.with_vol(inp.vol + hv)) - p(inp.with_vol(vol_dn))) / (inp.vol + hv - vol_dn);
    let ht = (1.0 / 365.0_f64).min(inp.t);
    let theta = if ht > 0.0 {
        (p(BsmInputs {
            t: inp.t - ht,
            ..*inp
        }) - price)
            / ht
    } else {
        0.0
    };
    let hr = 1e-4;
    let rho = (p(BsmInputs {
        r: inp.r + hr,
        ..*inp
    }) - p(BsmInputs {
        r: inp.r - hr,
        ..*inp
    })) / (2.0 * hr);
    let dividend_rho = (p(BsmInputs {
        q: inp.q + hr,
        ..*inp
    }) - p(BsmInputs {
        q: inp.q - hr,
        ..*inp
    })) / (2.0 * hr);
    let g = Greeks {
        price,
        delta,
        gamma,
        vega,
        theta,
        rho,
        dividend_rho,
        d1: 0.0,
        d2: 0.0,
    };
    if g.price.is_finite() && g.delta.is_finite() {
        Ok(g)
    } else {
        Err(PricingError::Numerical { method: "american" })
    }
}

/// Delta and gamma by spot bumps that never straddle the exercise boundary: gamma jumps there
/// (smooth pasting keeps delta continuous), so a central difference across it is wrong. In the
/// exercise region the option is its intrinsic value; next to it, one-sided differences on the
/// continuation side are used.
fn spot_greeks(inp: &BsmInputs, price: f64, p: &impl Fn(BsmInputs) -> f64) -> (f64, f64) {
    let (s, k) = (inp.spot, inp.strike);
    let exercised = |spot: f64, v: f64| v - inp.kind.intrinsic(spot, k) <= 1e-9 * k;
    let slope = -inp.kind.sign(); // continuation side is up for puts, down for calls
    if exercised(s, price) && inp.kind.intrinsic(s, k) > 0.0 {
        return (inp.kind.sign(), 0.0);
    }
    let h = s * 1e-3;
    let up = p(inp.with_spot(s + h));
    let dn = p(inp.with_spot(s - h));
    let crosses = exercised(s - h, dn) && inp.kind.intrinsic(s - h, k) > 0.0 && slope > 0.0
        || exercised(s + h, up) && inp.kind.intrinsic(s + h, k) > 0.0 && slope < 0.0;
    if !crosses {
        return ((up - dn) / (2.0 * h), (up - 2.0 * price + dn) / (h * h));
    }
    // One-sided, second order, stepping away from the boundary.
    let step = slope * h;
    let p1 = p(inp.with_spot(s + step));
    let p2 = p(inp.with_spot(s + 2.0 * step));
    let delta = (-3.0 * price + 4.0 * p1 - p2) / (2.0 * step);
    let gamma = (price - 2.0 * p1 + p2) / (h * h);
    (delta, gamma)
}

/// Validate discrete dividends against the option's life.
pub fn validate_dividends(t: f64, dividends: &[CashDividend]) -> Result<(), PricingError> {
    for (index, d) in dividends.iter().enumerate() {
        if !d.t.is_finite() || !d.amount.is_finite() {
            return Err(PricingError::BadDividend {
                index,
                reason: "not a finite number",
            });
        }
        if d.amount < 0.0 {
            return Err(PricingError::BadDividend {
                index,
                reason: "negative amount",
            });
        }
        if d.t <= 0.0 || d.t > t {
            return Err(PricingError::BadDividend {
                index,
                reason: "ex-date outside the option's life",
            });
        }
    }
    Ok(())
}

/// Option with discrete cash dividends (American or European) on the finite-difference grid.
#[allow(clippy::too_many_arguments)]
pub fn cash_dividend_price(
    kind: OptionType,
    spot: f64,
    strike: f64,
    t: f64,
    r: f64,
    vol: f64,
    dividends: &[CashDividend],
    american: bool,
) -> Result<FdResult, PricingError> {
    BsmInputs {
        kind,
        spot,
        strike,
        t,
        r,
        q: 0.0,
        vol,
    }
    .validate()?;
    non_negative("t", t)?;
    validate_dividends(t, dividends)?;
    if t == 0.0 {
        return Ok(FdResult {
            price: kind.intrinsic(spot, strike),
            delta: 0.0,
            gamma: 0.0,
        });
    }
    let res = fd_cash_dividends(
        kind,
        spot,
        strike,
        t,
        r,
        vol,
        dividends,
        american,
        FdGrid::default(),
    );
    if res.price.is_finite() {
        Ok(res)
    } else {
        Err(PricingError::Numerical {
            method: "fd_cash_dividends",
        })
    }
}
