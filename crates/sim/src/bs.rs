//! Private, deliberately simple Black-Scholes-Merton pricer for simulated option quotes.
//! Not the project's pricing library (see tradeguard-pricing); European formula with a
//! continuous dividend yield, used for American equity options too (fine for quoting).

/// Price and Greeks (vega per 1 vol point, theta per calendar day).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bs {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
}

fn ncdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

fn npdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// `t` in years; at or past expiry returns intrinsic value with step delta.
pub(crate) fn price(call: bool, s: f64, k: f64, t: f64, r: f64, q: f64, vol: f64) -> Bs {
    if t <= 0.0 || vol <= 0.0 {
        let intrinsic = if call {
            (s - k).max(0.0)
        } else {
            (k - s).max(0.0)
        };
        let itm = intrinsic > 0.0;
        let delta = match (call, itm) {
            (true, true) => 1.0,
            (false, true) => -1.0,
            _ => 0.0,
        };
        return Bs {
            price: intrinsic,
            delta,
            gamma: 0.0,
            vega: 0.0,
            theta: 0.0,
        };
    }
    let sq = t.sqrt();
    let d1 = ((s / k).ln() + (r - q + 0.5 * vol * vol) * t) / (vol * sq);
    let d2 = d1 - vol * sq;
    let dq = (-q * t).exp();
    let dr = (-r * t).exp();
    let pdf = npdf(d1);
    let gamma = dq * pdf / (s * vol * sq);
    let vega = s * dq * pdf * sq / 100.0;
    let common = -s * dq * pdf * vol / (2.0 * sq);
    let (price, delta, theta_y) = if call {
        let p = s * dq * ncdf(d1) - k * dr * ncdf(d2);
        let th = common - r * k * dr * ncdf(d2) + q * s * dq * ncdf(d1);
        (p, dq * ncdf(d1), th)
    } else {
        let p = k * dr * ncdf(-d2) - s * dq * ncdf(-d1);
        let th = common + r * k * dr * ncdf(-d2) - q * s * dq * ncdf(-d1);
        (p, -dq * ncdf(-d1), th)
    };
    Bs {
        price: price.max(0.0),
        delta,
        gamma,
        vega,
        theta: theta_y / 365.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_value_and_parity() {
        // Hull: S=42, K=40, r=10%, vol=20%, T=0.5 -> call 4.76, put 0.81.
        let c = price(true, 42.0, 40.0, 0.5, 0.1, 0.0, 0.2);
        let p = price(false, 42.0, 40.0, 0.5, 0.1, 0.0, 0.2);
        assert!((c.price - 4.7594).abs() < 1e-3, "{}", c.price);
        assert!((p.price - 0.8086).abs() < 1e-3, "{}", p.price);
        let parity = c.price - p.price - (42.0 - 40.0 * (-0.05f64).exp());
        assert!(parity.abs() < 1e-9);
        assert!(c.delta > 0.0 && p.delta < 0.0 && c.theta < 0.0);
        assert_eq!(price(false, 90.0, 100.0, 0.0, 0.1, 0.0, 0.2).price, 10.0);
    }
}
