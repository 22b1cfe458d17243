//! European Black-Scholes-Merton (continuous dividend yield) and Black-76: price and every Greek in
//! one pass that shares the exp/sqrt/log/CDF work and allocates nothing.

use crate::error::PricingError;
use crate::normal::{INV_SQRT_2PI, fast_cdf as cdf};
use crate::types::{Black76Greeks, Black76Inputs, BsmInputs, Greeks, OptionType};

/// Price and all Greeks of a European BSM option, after validating the inputs.
pub fn bsm(inp: &BsmInputs) -> Result<Greeks, PricingError> {
    inp.validate()?;
    let g = bsm_unchecked(inp);
    if g.price.is_finite() {
        Ok(g)
    } else {
        Err(PricingError::Numerical { method: "bsm" })
    }
}

/// Price and all Greeks without validation (hot path; inputs must satisfy [`BsmInputs::validate`]).
#[inline]
pub fn bsm_unchecked(inp: &BsmInputs) -> Greeks {
    let BsmInputs {
        kind,
        spot: s,
        strike: k,
        t,
        r,
        q,
        vol,
    } = *inp;
    // Zero rates/yields are common (equities without dividends): skip their exp.
    let dq = if q == 0.0 { 1.0 } else { (-q * t).exp() };
    let dr = if r == 0.0 { 1.0 } else { (-r * t).exp() };
    let sq = s * dq;
    let kr = k * dr;
    let sqrt_t = t.sqrt();
    let v = vol * sqrt_t;
    if v <= 0.0 || !v.is_normal() {
        return bsm_deterministic(kind, s, k, t, r, q, sq, kr);
    }
    let inv_v = 1.0 / v;
    let d1 = (sq / kr).ln() * inv_v + 0.5 * v;
    let d2 = d1 - v;
    let phi = kind.sign();
    let n1 = cdf(phi * d1);
    let n2 = cdf(phi * d2);
    let pdf1 = INV_SQRT_2PI * (-0.5 * d1 * d1).exp();
    let sq_pdf = sq * pdf1;
    let price = phi * (sq * n1 - kr * n2);
    Greeks {
        price,
        delta: phi * dq * n1,
        gamma: sq_pdf * inv_v / (s * s),
        vega: sq_pdf * sqrt_t,
        theta: -0.5 * sq_pdf * vol * vol * inv_v - phi * (r * kr * n2 - q * sq * n1),
        rho: phi * kr * t * n2,
        dividend_rho: -phi * sq * t * n1,
        d1,
        d2,
    }
}

/// Zero total variance: the option is worth its discounted forward intrinsic value.
#[allow(clippy::too_many_arguments)]
#[cold]
fn bsm_deterministic(
    kind: OptionType,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    sq: f64,
    kr: f64,
) -> Greeks {
    let phi = kind.sign();
    let itm = phi * (sq - kr) > 0.0;
    let (d1, d2) = if sq > kr {
        (f64::INFINITY, f64::INFINITY)
    } else if sq < kr {
        (f64::NEG_INFINITY, f64::NEG_INFINITY)
    } else {
        (0.0, 0.0)
    };
    if !itm {
        return Greeks {
            d1,
            d2,
            ..Greeks::default()
        };
    }
    let _ = k;
    Greeks {
        price: phi * (sq - kr),
        delta: phi * sq / s,
        gamma: 0.0,
        vega: 0.0,
        theta: phi * (q * sq - r * kr),
        rho: phi * kr * t,
        dividend_rho: -phi * sq * t,
        d1,
        d2,
    }
}

/// Price only (cheaper than the full Greeks; used by the American engines and stress grids).
#[inline]
pub fn bsm_price_unchecked(
    kind: OptionType,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    vol: f64,
) -> f64 {
    let sq = s * (-q * t).exp();
    let kr = k * (-r * t).exp();
    let v = vol * t.sqrt();
    let phi = kind.sign();
    if v <= 0.0 || !v.is_normal() {
        return (phi * (sq - kr)).max(0.0);
    }
    let d1 = ((sq / kr).ln()) / v + 0.5 * v;
    phi * (sq * cdf(phi * d1) - kr * cdf(phi * (d1 - v)))
}

/// Black-76 price and Greeks on a forward, after validating the inputs.
pub fn black76(inp: &Black76Inputs) -> Result<Black76Greeks, PricingError> {
    inp.validate()?;
    let g = black76_unchecked(inp);
    if g.price.is_finite() {
        Ok(g)
    } else {
        Err(PricingError::Numerical { method: "black76" })
    }
}

/// Black-76 without validation (hot path).
#[inline]
pub fn black76_unchecked(inp: &Black76Inputs) -> Black76Greeks {
    let Black76Inputs {
        kind,
        forward: f,
        strike: k,
        t,
        r,
        vol,
    } = *inp;
    let df = (-r * t).exp();
    let sqrt_t = t.sqrt();
    let v = vol * sqrt_t;
    let phi = kind.sign();
    if v <= 0.0 || !v.is_normal() {
        let itm = phi * (f - k) > 0.0;
        let price = if itm { df * phi * (f - k) } else { 0.0 };
        let inf = if f > k {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        return Black76Greeks {
            price,
            delta_forward: if itm { phi * df } else { 0.0 },
            gamma_forward: 0.0,
            vega: 0.0,
            theta: r * price,
            rho: -t * price,
            d1: inf,
            d2: inf,
        };
    }
    let d1 = (f / k).ln() / v + 0.5 * v;
    let d2 = d1 - v;
    let n1 = cdf(phi * d1);
    let n2 = cdf(phi * d2);
    let pdf1 = INV_SQRT_2PI * (-0.5 * d1 * d1).exp();
    let price = df * phi * (f * n1 - k * n2);
    let dfp = df * f * pdf1;
    Black76Greeks {
        price,
        delta_forward: phi * df * n1,
        gamma_forward: df * pdf1 / (f * v),
        vega: dfp * sqrt_t,
        theta: r * price - dfp * vol / (2.0 * sqrt_t),
        rho: -t * price,
        d1,
        d2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::bsm_inputs;

    #[test]
    fn put_call_parity_holds() {
        let c = bsm(&bsm_inputs(OptionType::Call, 100.0, 95.0)).unwrap();
        let p = bsm(&bsm_inputs(OptionType::Put, 100.0, 95.0)).unwrap();
        let i = bsm_inputs(OptionType::Call, 100.0, 95.0);
        let fwd = i.spot * (-i.q * i.t).exp() - i.strike * (-i.r * i.t).exp();
        assert!((c.price - p.price - fwd).abs() < 1e-12);
        assert!((c.gamma - p.gamma).abs() < 1e-15);
        assert!((c.vega - p.vega).abs() < 1e-12);
    }

    #[test]
    fn greeks_match_finite_differences() {
        let base = bsm_inputs(OptionType::Put, 100.0, 105.0);
        let g = bsm(&base).unwrap();
        let h = 1e-4;
        let up = bsm_price_unchecked(
            base.kind,
            base.spot + h,
            base.strike,
            base.t,
            base.r,
            base.q,
            base.vol,
        );
        let dn = bsm_price_unchecked(
            base.kind,
            base.spot - h,
            base.strike,
            base.t,
            base.r,
            base.q,
            base.vol,
        );
        assert!(((up - dn) / (2.0 * h) - g.delta).abs() < 1e-7);
        let vu = bsm_price_unchecked(
            base.kind,
            base.spot,
            base.strike,
            base.t,
            base.r,
            base.q,
            base.vol + h,
        );
        let vd = bsm_price_unchecked(
            base.kind,
            base.spot,
            base.strike,
            base.t,
            base.r,
            base.q,
            base.vol - h,
        );
        assert!(((vu - vd) / (2.0 * h) - g.vega).abs() < 1e-6);
        // theta is minus the derivative in time to expiry
        let tu = bsm_price_unchecked(
            base.kind,
            base.spot,
            base.strike,
            base.t + h,
            base.r,
            base.q,
            base.vol,
        );
        let td = bsm_price_unchecked(
            base.kind,
            base.spot,
            base.strike,
            base.t - h,
            base.r,
            base.q,
            base.vol,
        );
        assert!((-(tu - td) / (2.0 * h) - g.theta).abs() < 1e-5);
    }

    #[test]
    fn zero_vol_and_expiry_give_intrinsic() {
        let mut i = bsm_inputs(OptionType::Call, 110.0, 100.0);
        i.t = 0.0;
        let g = bsm(&i).unwrap();
        assert_eq!(g.price, 10.0);
        assert_eq!(g.delta, 1.0);
        i.kind = OptionType::Put;
        assert_eq!(bsm(&i).unwrap().price, 0.0);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let mut i = bsm_inputs(OptionType::Call, 100.0, -1.0);
        assert_eq!(bsm(&i).unwrap_err().code(), "pricing.bad_strike");
        i.strike = 100.0;
        i.vol = f64::NAN;
        assert_eq!(bsm(&i).unwrap_err().code(), "pricing.not_finite");
        i.vol = 0.2;
        i.t = -0.1;
        assert_eq!(bsm(&i).unwrap_err().code(), "pricing.bad_time");
    }
}
