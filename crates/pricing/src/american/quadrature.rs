//! Gauss-Legendre nodes/weights (computed once, cached) and barycentric interpolation on
//! Chebyshev-Lobatto (second kind) points, as used by the QD+ fixed-point engine.

use std::sync::OnceLock;

/// Largest Gauss-Legendre order kept in the cache.
pub const MAX_GL_ORDER: usize = 64;

/// Nodes and weights of one Gauss-Legendre rule on [-1, 1].
#[derive(Debug, Clone)]
pub struct GaussLegendre {
    pub x: Vec<f64>,
    pub w: Vec<f64>,
}

fn compute_gauss_legendre(n: usize) -> GaussLegendre {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        // Tricomi initial guess, then Newton on P_n.
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0_f64, z);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * z * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { z } else { p1 };
            let pn1 = if n == 1 { 1.0 } else { p0 };
            dp = nf * (z * pn - pn1) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        let wi = 2.0 / ((1.0 - z * z) * dp * dp);
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = wi;
        w[n - 1 - i] = wi;
    }
    if n % 2 == 1 {
        x[n / 2] = 0.0;
    }
    GaussLegendre { x, w }
}

/// The Gauss-Legendre rule of order `n` (1..=MAX_GL_ORDER), nodes ascending.
pub fn gauss_legendre(n: usize) -> &'static GaussLegendre {
    static CACHE: OnceLock<Vec<GaussLegendre>> = OnceLock::new();
    let all = CACHE.get_or_init(|| (1..=MAX_GL_ORDER).map(compute_gauss_legendre).collect());
    // Invariant: callers pass orders from the fixed schemes in this crate (1..=MAX_GL_ORDER).
    &all[n.clamp(1, MAX_GL_ORDER) - 1]
}

/// Chebyshev-Lobatto points `z_k = -cos(k*pi/n)`, k = 0..=n, ascending from -1 to 1.
pub fn chebyshev_nodes(n: usize, out: &mut [f64]) {
    for (k, z) in out.iter_mut().enumerate().take(n + 1) {
        *z = -(std::f64::consts::PI * k as f64 / n as f64).cos();
    }
    out[0] = -1.0;
    out[n] = 1.0;
}

/// Barycentric coefficients `c` with `p(z) = sum_k c_k y_k` for the interpolating polynomial
/// through the n+1 Chebyshev-Lobatto points (also valid slightly outside [-1, 1]).
pub fn barycentric_coefficients(nodes: &[f64], z: f64, out: &mut [f64]) {
    let n = nodes.len() - 1;
    for (k, &zk) in nodes.iter().enumerate() {
        if (z - zk).abs() < 1e-15 {
            out[..=n].iter_mut().for_each(|c| *c = 0.0);
            out[k] = 1.0;
            return;
        }
    }
    let mut sum = 0.0;
    for (k, &zk) in nodes.iter().enumerate() {
        let mut wk = if k % 2 == 0 { 1.0 } else { -1.0 };
        if k == 0 || k == n {
            wk *= 0.5;
        }
        let c = wk / (z - zk);
        out[k] = c;
        sum += c;
    }
    let inv = 1.0 / sum;
    out[..=n].iter_mut().for_each(|c| *c *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in [1usize, 2, 5, 7, 27] {
            let gl = gauss_legendre(n);
            let wsum: f64 = gl.w.iter().sum();
            assert!((wsum - 2.0).abs() < 1e-13, "order {n}");
            // x^(2n-2) integrates to 2/(2n-1)
            let deg = 2 * n - 2;
            let integral: f64 =
                gl.x.iter()
                    .zip(&gl.w)
                    .map(|(x, w)| w * x.powi(deg as i32))
                    .sum();
            assert!(
                (integral - 2.0 / (deg as f64 + 1.0)).abs() < 1e-12,
                "order {n}"
            );
        }
    }

    #[test]
    fn barycentric_reproduces_polynomials() {
        let n = 6;
        let mut nodes = [0.0; 7];
        chebyshev_nodes(n, &mut nodes);
        let f = |z: f64| 3.0 * z.powi(5) - z * z + 0.5;
        let y: Vec<f64> = nodes.iter().map(|&z| f(z)).collect();
        let mut c = [0.0; 7];
        for z in [-0.93, -0.2, 0.0, 0.41, 1.0] {
            barycentric_coefficients(&nodes, z, &mut c);
            let p: f64 = c.iter().zip(&y).map(|(c, y)| c * y).sum();
            assert!((p - f(z)).abs() < 1e-12);
        }
    }
}
