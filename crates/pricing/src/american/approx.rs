//! Classic closed-form American approximations: Barone-Adesi-Whaley (1987) and Ju-Zhong (1999)
//! quadratic. They carry method error (up to a few cents on a $10 option) and are NOT used for
//! trading numbers; they exist to reproduce the published textbook anchors (Haug; Ju) and as
//! cheap independent cross-checks of the fixed-point engine.

use crate::normal::{INV_SQRT_2PI, cdf};
use crate::types::OptionType;

/// Undiscounted Black formula on the forward.
fn black(kind: OptionType, k: f64, f: f64, sd: f64) -> f64 {
    let phi = kind.sign();
    if sd <= 0.0 {
        return (phi * (f - k)).max(0.0);
    }
    let d1 = (f / k).ln() / sd + 0.5 * sd;
    phi * (f * cdf(phi * d1) - k * cdf(phi * (d1 - sd)))
}

/// Shared inputs of both approximations.
struct Setup {
    kind: OptionType,
    k: f64,
    dr: f64,
    dq: f64,
    var: f64,
    sd: f64,
}

impl Setup {
    fn new(kind: OptionType, k: f64, t: f64, r: f64, q: f64, vol: f64) -> Self {
        let var = vol * vol * t;
        Self {
            kind,
            k,
            dr: (-r * t).exp(),
            dq: (-q * t).exp(),
            var,
            sd: var.sqrt(),
        }
    }

    fn d1(&self, s: f64) -> f64 {
        ((s * self.dq / self.dr) / self.k).ln() / self.sd + 0.5 * self.sd
    }

    fn euro(&self, s: f64) -> f64 {
        black(self.kind, self.k, s * self.dq / self.dr, self.sd) * self.dr
    }

    /// `K` of the quadratic approximation: 2r/(sigma^2 (1 - e^{-rT})).
    fn k_factor(&self) -> f64 {
        if (self.dr - 1.0).abs() > 1000.0 * f64::EPSILON {
            -2.0 * self.dr.ln() / (self.var * (1.0 - self.dr))
        } else {
            2.0 / self.var
        }
    }

    fn n(&self) -> f64 {
        2.0 * (self.dq / self.dr).ln() / self.var
    }

    /// Critical price by Barone-Adesi-Whaley's Newton iteration (relative tolerance on K).
    fn critical_price(&self, tol: f64) -> f64 {
        let (k, dq, var, sd) = (self.k, self.dq, self.var, self.sd);
        let n = self.n();
        let m = -2.0 * self.dr.ln() / var;
        let bt = (dq / self.dr).ln();
        let phi = self.kind.sign();
        // Seed.
        let qu = (-(n - 1.0) + phi * ((n - 1.0) * (n - 1.0) + 4.0 * m).sqrt()) / 2.0;
        let su = k / (1.0 - 1.0 / qu);
        let mut si = match self.kind {
            OptionType::Call => {
                let h = -(bt + 2.0 * sd) * k / (su - k);
                k + (su - k) * (1.0 - h.exp())
            }
            OptionType::Put => {
                let h = (bt - 2.0 * sd) * k / (k - su);
                su + (k - su) * h.exp()
            }
        };
        let qq = (-(n - 1.0) + phi * ((n - 1.0) * (n - 1.0) + 4.0 * self.k_factor()).sqrt()) / 2.0;
        for _ in 0..200 {
            let d1 = self.d1(si);
            let nd = cdf(phi * d1);
            let pdf = INV_SQRT_2PI * (-0.5 * d1 * d1).exp();
            let (lhs, rhs, bi) = match self.kind {
                OptionType::Call => (
                    si - k,
                    self.euro(si) + (1.0 - dq * nd) * si / qq,
                    dq * nd * (1.0 - 1.0 / qq) + (1.0 - dq * pdf / sd) / qq,
                ),
                OptionType::Put => (
                    k - si,
                    self.euro(si) - (1.0 - dq * nd) * si / qq,
                    -dq * nd * (1.0 - 1.0 / qq) - (1.0 + dq * pdf / sd) / qq,
                ),
            };
            if (lhs - rhs).abs() / k <= tol || !si.is_finite() {
                break;
            }
            si = match self.kind {
                OptionType::Call => (k + rhs - bi * si) / (1.0 - bi),
                OptionType::Put => (k - rhs + bi * si) / (1.0 + bi),
            };
        }
        si
    }
}

/// Barone-Adesi-Whaley quadratic approximation (inputs validated; `r >= 0`).
pub fn barone_adesi_whaley(
    kind: OptionType,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    vol: f64,
) -> f64 {
    let st = Setup::new(kind, k, t, r, q, vol);
    if kind == OptionType::Call && st.dq >= 1.0 {
        return st.euro(s);
    }
    let sk = st.critical_price(1e-6);
    let n = st.n();
    let phi = kind.sign();
    let qq = (-(n - 1.0) + phi * ((n - 1.0) * (n - 1.0) + 4.0 * st.k_factor()).sqrt()) / 2.0;
    let a = phi * (sk / qq) * (1.0 - st.dq * cdf(phi * st.d1(sk)));
    if phi * (sk - s) > 0.0 {
        st.euro(s) + a * (s / sk).powf(qq)
    } else {
        phi * (s - k)
    }
}

/// Ju-Zhong (1999) improved quadratic approximation (inputs validated; `r >= 0`).
pub fn ju_quadratic(kind: OptionType, s: f64, k: f64, t: f64, r: f64, q: f64, vol: f64) -> f64 {
    let st = Setup::new(kind, k, t, r, q, vol);
    if kind == OptionType::Call && st.dq >= 1.0 {
        return st.euro(s);
    }
    let sk = st.critical_price(1e-6);
    let (dr, dq, var, sd) = (st.dr, st.dq, st.var, st.sd);
    let phi = kind.sign();
    let alpha = -2.0 * dr.ln() / var;
    let beta = 2.0 * (dq / dr).ln() / var;
    let h = 1.0 - dr;
    let root = ((beta - 1.0) * (beta - 1.0) + 4.0 * alpha / h).sqrt();
    let lambda = (-(beta - 1.0) + phi * root) / 2.0;
    let lambda_prime = -phi * alpha / (h * h * root);
    let fwd_sk = sk * dq / dr;
    let black_sk = black(kind, k, fwd_sk, sd) * dr;
    let ha = phi * (sk - k) - black_sk;
    let d1 = ((fwd_sk / k).ln() + 0.5 * var) / sd;
    let d2 = d1 - sd;
    let part1 = fwd_sk * INV_SQRT_2PI * (-0.5 * d1 * d1).exp() / (alpha * sd);
    let part2 = -phi * fwd_sk * cdf(phi * d1) * dq.ln() / dr.ln();
    let part3 = phi * k * cdf(phi * d2);
    let ve_h = part1 + part2 + part3;
    let denom = 2.0 * lambda + beta - 1.0;
    let b = (1.0 - h) * alpha * lambda_prime / (2.0 * denom);
    let c = -((1.0 - h) * alpha / denom) * (ve_h / ha + 1.0 / h + lambda_prime / denom);
    let x = (s / sk).ln();
    let chi = x * (b * x + c);
    if phi * (sk - s) > 0.0 {
        st.euro(s) + ha * (s / sk).powf(lambda) / (1.0 - chi)
    } else {
        phi * (s - k)
    }
}
