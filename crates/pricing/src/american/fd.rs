//! Crank-Nicolson finite differences in log-spot for options with discrete cash dividends, the
//! dividends applied as jumps of the spot on their ex-dates (`V(S, t-) = V(S - D, t+)`), matching
//! the reference (QuantLib `FdBlackScholesVanillaEngine`, dividends as spot jumps).

use crate::normal::cdf;
use crate::types::{CashDividend, OptionType};

/// Grid sizes of the finite-difference solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdGrid {
    pub space: usize,
    pub time: usize,
}

impl Default for FdGrid {
    fn default() -> Self {
        Self {
            space: 400,
            time: 400,
        }
    }
}

/// Price and delta from the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdResult {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
}

/// Value an option with cash dividends. Inputs must be validated; dividends sorted or not,
/// each with `0 < t_d <= t`. `american = false` gives the European value under the same model.
#[allow(clippy::too_many_arguments)]
pub fn fd_cash_dividends(
    kind: OptionType,
    s0: f64,
    k: f64,
    t: f64,
    r: f64,
    vol: f64,
    dividends: &[CashDividend],
    american: bool,
    grid: FdGrid,
) -> FdResult {
    let nx = grid.space.clamp(50, 20_000);
    let nt = grid.time.clamp(10, 20_000);
    // Log-spot domain wide enough for the diffusion plus the dividend drops.
    let total_div: f64 = dividends.iter().map(|d| d.amount).sum();
    let width = 6.0 * vol * t.sqrt().max(0.05) + 0.2;
    let centre = s0.ln();
    let lo_spot = (s0 - total_div).max(s0 * 0.01).min(k);
    let x_min = (lo_spot.ln() - width).min(centre - width);
    let x_max = (k.max(s0).ln() + width).max(centre + width);
    let dx = (x_max - x_min) / (nx - 1) as f64;
    let xs: Vec<f64> = (0..nx).map(|i| x_min + dx * i as f64).collect();
    let spots: Vec<f64> = xs.iter().map(|x| x.exp()).collect();
    let payoff: Vec<f64> = spots.iter().map(|&s| kind.intrinsic(s, k)).collect();
    let mut v = payoff.clone();

    // Time grid: uniform steps, with dividend dates inserted as exact stops.
    let mut stops: Vec<f64> = (0..=nt).map(|i| t * i as f64 / nt as f64).collect();
    for d in dividends {
        stops.push(d.t);
    }
    stops.sort_by(f64::total_cmp);
    stops.dedup_by(|a, b| (*a - *b).abs() < 1e-12);

    let sig2 = vol * vol;
    let mu = r - 0.5 * sig2;
    // Operator L V = a V_{i-1} + b V_i + c V_{i+1}.
    let a = 0.5 * sig2 / (dx * dx) - 0.5 * mu / dx;
    let c = 0.5 * sig2 / (dx * dx) + 0.5 * mu / dx;
    let b = -sig2 / (dx * dx) - r;
    let mut rhs = vec![0.0; nx];
    let mut cp = vec![0.0; nx];
    let mut dp = vec![0.0; nx];
    let mut tmp = vec![0.0; nx];
    let mut implicit_left = 4usize;
    let mut idx = stops.len() - 1;
    while idx > 0 {
        let t_hi = stops[idx];
        let t_lo = stops[idx - 1];
        let dt = t_hi - t_lo;
        let tau_lo = t - t_lo;
        // Rannacher: a few fully implicit half steps at the start (and after each jump).
        let theta_steps: &[(f64, f64)] = if implicit_left > 0 {
            &[(1.0, 0.5), (1.0, 0.5)]
        } else {
            &[(0.5, 1.0)]
        };
        for &(theta, frac) in theta_steps {
            let h = dt * frac;
            // rhs = (I + (1-theta) h L) V
            for i in 1..nx - 1 {
                rhs[i] = v[i] + (1.0 - theta) * h * (a * v[i - 1] + b * v[i] + c * v[i + 1]);
            }
            // Boundaries: Dirichlet at the discounted-forward values at tau_lo.
            let (lo_val, hi_val) = boundary(kind, spots[0], spots[nx - 1], k, r, tau_lo, american);
            rhs[0] = lo_val;
            rhs[nx - 1] = hi_val;
            // Solve (I - theta h L) V = rhs.
            let (al, bl, cl) = (-theta * h * a, 1.0 - theta * h * b, -theta * h * c);
            cp[0] = 0.0;
            dp[0] = rhs[0];
            for i in 1..nx - 1 {
                let m = bl - al * cp[i - 1];
                cp[i] = cl / m;
                dp[i] = (rhs[i] - al * dp[i - 1]) / m;
            }
            v[nx - 1] = rhs[nx - 1];
            for i in (1..nx - 1).rev() {
                v[i] = dp[i] - cp[i] * v[i + 1];
            }
            v[0] = rhs[0];
            if american {
                for (vi, pi) in v.iter_mut().zip(&payoff) {
                    *vi = vi.max(*pi);
                }
            }
        }
        implicit_left = implicit_left.saturating_sub(1);
        // Dividend jump at t_lo (ex-date): value just before = value just after at S - D.
        let paid: f64 = dividends
            .iter()
            .filter(|d| (d.t - t_lo).abs() < 1e-12 && t_lo > 0.0)
            .map(|d| d.amount)
            .sum();
        if paid > 0.0 {
            for i in 0..nx {
                let s_after = spots[i] - paid;
                tmp[i] = if s_after <= spots[0] {
                    // Below the grid: use the payoff-like lower boundary value.
                    if s_after <= 0.0 {
                        kind.intrinsic(0.0, k) * (-r * (t - t_lo)).exp()
                    } else {
                        interp_linear(&spots, &v, s_after)
                    }
                } else {
                    interp_log(&xs, &v, s_after.ln())
                };
            }
            std::mem::swap(&mut v, &mut tmp);
            if american {
                for (vi, pi) in v.iter_mut().zip(&payoff) {
                    *vi = vi.max(*pi);
                }
            }
            implicit_left = 2;
        }
        idx -= 1;
    }
    let x0 = centre;
    let price = interp_log(&xs, &v, x0);
    // Delta and gamma from a quadratic through the three nearest nodes.
    let i = (((x0 - x_min) / dx).round() as usize).clamp(1, nx - 2);
    let (s_m, s_c, s_p) = (spots[i - 1], spots[i], spots[i + 1]);
    let (v_m, v_c, v_p) = (v[i - 1], v[i], v[i + 1]);
    let d1 = (v_c - v_m) / (s_c - s_m);
    let d2 = (v_p - v_c) / (s_p - s_c);
    let gamma = 2.0 * (d2 - d1) / (s_p - s_m);
    let delta = d1 + (s0 - 0.5 * (s_m + s_c)) * gamma;
    FdResult {
        price,
        delta,
        gamma,
    }
}

fn boundary(
    kind: OptionType,
    s_lo: f64,
    s_hi: f64,
    k: f64,
    r: f64,
    tau: f64,
    american: bool,
) -> (f64, f64) {
    let disc = (-r * tau).exp();
    match kind {
        OptionType::Call => (
            0.0,
            if american {
                (s_hi - k).max(s_hi - k * disc)
            } else {
                s_hi - k * disc
            },
        ),
        OptionType::Put => (
            if american {
                k - s_lo
            } else {
                (k * disc - s_lo).max(0.0)
            },
            0.0,
        ),
    }
}

/// Cubic (Catmull-Rom) interpolation on the uniform log grid, linear at the edges.
fn interp_log(xs: &[f64], v: &[f64], x: f64) -> f64 {
    let n = xs.len();
    let dx = xs[1] - xs[0];
    if x <= xs[0] {
        return v[0];
    }
    if x >= xs[n - 1] {
        return v[n - 1];
    }
    let pos = (x - xs[0]) / dx;
    let i = (pos.floor() as usize).min(n - 2);
    let f = pos - i as f64;
    if i == 0 || i + 2 >= n {
        return v[i] + f * (v[i + 1] - v[i]);
    }
    let (p0, p1, p2, p3) = (v[i - 1], v[i], v[i + 1], v[i + 2]);
    p1 + 0.5
        * f
        * (p2 - p0 + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + f * (3.0 * (p1 - p2) + p3 - p0)))
}

fn interp_linear(spots: &[f64], v: &[f64], s: f64) -> f64 {
    // Only used below the first node: extrapolate linearly from the first two nodes.
    let slope = (v[1] - v[0]) / (spots[1] - spots[0]);
    v[0] + slope * (s - spots[0])
}

/// Escrowed-dividend European approximation (spot less PV of dividends in BSM); used only as a
/// sanity bound in tests.
pub fn escrowed_european(
    kind: OptionType,
    s0: f64,
    k: f64,
    t: f64,
    r: f64,
    vol: f64,
    dividends: &[CashDividend],
) -> f64 {
    let pv: f64 = dividends.iter().map(|d| d.amount * (-r * d.t).exp()).sum();
    let s = (s0 - pv).max(1e-12);
    let v = vol * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * vol * vol) * t) / v;
    let d2 = d1 - v;
    let phi = kind.sign();
    phi * (s * cdf(phi * d1) - k * (-r * t).exp() * cdf(phi * d2))
}
