//! Cox-Ross-Rubinstein binomial tree: the fallback for regimes the fixed-point engine does not
//! cover (e.g. the double-boundary case `q < r < 0`) and an independent cross-check in tests.

use crate::types::OptionType;

/// American (or European when `american` is false) value on a CRR tree with `steps` steps.
/// Uses the two-tree average (steps and steps+1) to damp the odd/even oscillation.
/// Inputs must be validated; `steps` is clamped to 2..=20_000.
#[allow(clippy::too_many_arguments)] // the textbook parameter list reads best flat
pub fn crr_price(
    kind: OptionType,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    vol: f64,
    steps: usize,
    american: bool,
) -> f64 {
    let n = steps.clamp(2, 20_000);
    0.5 * (crr_once(kind, s, k, t, r, q, vol, n, american)
        + crr_once(kind, s, k, t, r, q, vol, n + 1, american))
}

#[allow(clippy::too_many_arguments)]
fn crr_once(
    kind: OptionType,
    s: f64,
    k: f64,
    t: f64,
    r: f64,
    q: f64,
    vol: f64,
    n: usize,
    american: bool,
) -> f64 {
    if t <= 0.0 || vol <= 0.0 {
        let det = kind.intrinsic(s * (-q * t).exp(), k * (-r * t).exp());
        return if american {
            det.max(kind.intrinsic(s, k))
        } else {
            det
        };
    }
    let dt = t / n as f64;
    let u = (vol * dt.sqrt()).exp();
    let d = 1.0 / u;
    let growth = ((r - q) * dt).exp();
    let p = ((growth - d) / (u - d)).clamp(0.0, 1.0);
    let disc = (-r * dt).exp();
    let (pu, pd) = (disc * p, disc * (1.0 - p));
    let mut values: Vec<f64> = (0..=n)
        .map(|j| kind.intrinsic(s * u.powi(j as i32) * d.powi((n - j) as i32), k))
        .collect();
    let u2 = u * u;
    for step in (0..n).rev() {
        let mut spot = s * d.powi(step as i32);
        for j in 0..=step {
            let cont = pu * values[j + 1] + pd * values[j];
            values[j] = if american {
                cont.max(kind.intrinsic(spot, k))
            } else {
                cont
            };
            spot *= u2;
        }
    }
    values[0]
}
