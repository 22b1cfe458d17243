//! Worst-case stress grid (the pre-trade gate uses it): instantaneous underlying moves x implied
//! vol multipliers, with bid-ask spread widening as a liquidation cost. Returns every cell and the
//! worst one. European BSM closed form per leg (American legs floored at intrinsic), no time decay.

use serde::Serialize;

use crate::error::PricingError;
use crate::normal::fast_cdf as cdf;
use crate::risk_leg::{Instrument, RiskLeg};

/// Axes of the stress grid.
#[derive(Debug, Clone, PartialEq)]
pub struct StressConfig {
    /// Underlying moves in percent (e.g. -3.0, 0.0, 3.0).
    pub moves_pct: Vec<f64>,
    /// Implied-vol multipliers ("IV +30%" = 1.3).
    pub vol_mults: Vec<f64>,
    /// Bid-ask spread multipliers for the liquidation cost (1.5x, 2x widening).
    pub spread_mults: Vec<f64>,
}

impl Default for StressConfig {
    /// +-3% moves (and the unmoved mark), IV x1.0/x1.3/x1.5, spreads x1.0/x1.5/x2.0.
    fn default() -> Self {
        Self {
            moves_pct: vec![-3.0, 0.0, 3.0],
            vol_mults: vec![1.0, 1.3, 1.5],
            spread_mults: vec![1.0, 1.5, 2.0],
        }
    }
}

impl StressConfig {
    /// Default grid plus extra price moves (deduplicated, sorted).
    pub fn with_extra_moves(extra: &[f64]) -> Self {
        let mut c = Self::default();
        c.moves_pct.extend_from_slice(extra);
        c.moves_pct.sort_by(f64::total_cmp);
        c.moves_pct.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        c
    }

    /// The benchmark grid: 21 moves from -15% to +15% in 1.5% steps x 3 vols x 3 spreads.
    pub fn default_grid_21x3x3() -> Self {
        Self {
            moves_pct: (0..21).map(|i| -15.0 + 1.5 * i as f64).collect(),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), PricingError> {
        if self.moves_pct.is_empty() || self.vol_mults.is_empty() || self.spread_mults.is_empty() {
            return Err(PricingError::BadGrid("every axis needs at least one point"));
        }
        if self
            .moves_pct
            .iter()
            .any(|m| !m.is_finite() || *m <= -100.0)
        {
            return Err(PricingError::BadGrid(
                "moves must be finite and above -100%",
            ));
        }
        if self
            .vol_mults
            .iter()
            .chain(&self.spread_mults)
            .any(|m| !m.is_finite() || *m < 0.0)
        {
            return Err(PricingError::BadGrid(
                "multipliers must be finite and non-negative",
            ));
        }
        Ok(())
    }
}

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StressCell {
    pub move_pct: f64,
    pub vol_mult: f64,
    pub spread_mult: f64,
    /// Mark-to-model P&L of the book in this scenario (USD).
    pub pnl: f64,
    /// Cost of crossing the (widened) half spread on every leg (USD, >= 0).
    pub liquidation_cost: f64,
    /// `-pnl + liquidation_cost`: what the book loses if liquidated in this scenario.
    pub loss: f64,
}

/// The whole grid and its worst cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressResult {
    /// Model value of the book now (USD).
    pub base_value: f64,
    /// Cells ordered by move, then vol multiplier, then spread multiplier.
    pub cells: Vec<StressCell>,
    /// The cell with the largest loss.
    pub worst: StressCell,
}

/// Run the stress grid over `legs`.
pub fn stress_grid(legs: &[RiskLeg], cfg: &StressConfig) -> Result<StressResult, PricingError> {
    cfg.validate()?;
    for leg in legs {
        leg.validate()?;
    }
    let nm = cfg.moves_pct.len();
    let nv = cfg.vol_mults.len();
    let ln_moves: Vec<f64> = cfg
        .moves_pct
        .iter()
        .map(|m| (1.0 + m / 100.0).ln())
        .collect();
    let growth: Vec<f64> = cfg.moves_pct.iter().map(|m| 1.0 + m / 100.0).collect();
    let mut pnl = vec![0.0; nm * nv];
    let mut base_value = 0.0;
    let mut liquidation_unit = 0.0;
    for leg in legs {
        let units = leg.qty as f64 * leg.multiplier;
        match leg.instrument {
            Instrument::Underlying => {
                base_value += units * leg.spot;
                for (mi, g) in growth.iter().enumerate() {
                    for vi in 0..nv {
                        pnl[mi * nv + vi] += units * leg.spot * (g - 1.0);
                    }
                }
                liquidation_unit += units.abs() * leg.effective_half_spread(leg.spot);
            }
            Instrument::Option {
                kind,
                strike,
                t,
                vol,
                american,
            } => {
                let dq = (-leg.q * t).exp();
                let dr = (-leg.r * t).exp();
                let sq = leg.spot * dq;
                let kr = strike * dr;
                let sqrt_t = t.sqrt();
                let ln_fk = (sq / kr).ln();
                let phi = kind.sign();
                let price_at = |ln_move: f64, g: f64, vm: f64| -> f64 {
                    let v = vol * vm * sqrt_t;
                    let euro = if v > 0.0 && v.is_normal() {
                        let d1 = (ln_fk + ln_move) / v + 0.5 * v;
                        phi * (sq * g * cdf(phi * d1) - kr * cdf(phi * (d1 - v)))
                    } else {
                        (phi * (sq * g - kr)).max(0.0)
                    };
                    if american {
                        euro.max(kind.intrinsic(leg.spot * g, strike))
                    } else {
                        euro
                    }
                };
                let base = price_at(0.0, 1.0, 1.0);
                base_value += units * base;
                liquidation_unit += units.abs() * leg.effective_half_spread(base);
                for mi in 0..nm {
                    for (vi, &vm) in cfg.vol_mults.iter().enumerate() {
                        pnl[mi * nv + vi] +=
                            units * (price_at(ln_moves[mi], growth[mi], vm) - base);
                    }
                }
            }
        }
    }
    let mut cells = Vec::with_capacity(nm * nv * cfg.spread_mults.len());
    for (mi, &m) in cfg.moves_pct.iter().enumerate() {
        for (vi, &vm) in cfg.vol_mults.iter().enumerate() {
            for &sm in &cfg.spread_mults {
                let p = pnl[mi * nv + vi];
                let liq = liquidation_unit * sm;
                cells.push(StressCell {
                    move_pct: m,
                    vol_mult: vm,
                    spread_mult: sm,
                    pnl: p,
                    liquidation_cost: liq,
                    loss: -p + liq,
                });
            }
        }
    }
    let worst = *cells
        .iter()
        .max_by(|a, b| a.loss.total_cmp(&b.loss))
        .ok_or(PricingError::BadGrid("empty grid"))?;
    if !worst.loss.is_finite() {
        return Err(PricingError::Numerical {
            method: "stress_grid",
        });
    }
    Ok(StressResult {
        base_value,
        cells,
        worst,
    })
}
