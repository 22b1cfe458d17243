//! Portfolio-margin style scan (FINRA 4210(g) / Cboe 10.4 shape): theoretical P&L of the position
//! at ten equidistant underlying moves (per product class, configurable), optional implied-vol
//! shifts, and a minimum of $0.375 x multiplier per contract (longs capped at market value).

use serde::Serialize;

use crate::error::PricingError;
use crate::risk_leg::{Instrument, RiskLeg};

/// Product class, which sets the default valuation range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductClass {
    /// Equity, ETF, narrow-based index: -15% .. +15%.
    Equity,
    /// High-capitalization broad-based index (SPX, NDX, DJX): -8% .. +6%.
    HighCapBroadIndex,
    /// Non-high-capitalization broad-based index (RUT): -10% .. +10%.
    BroadIndex,
}

impl ProductClass {
    /// (down %, up %) of the valuation range.
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::Equity => (15.0, 15.0),
            Self::HighCapBroadIndex => (8.0, 6.0),
            Self::BroadIndex => (10.0, 10.0),
        }
    }
}

/// `per_side` equidistant points down to `-down`% and up to `+up`% (no 0% point).
pub fn valuation_points(down: f64, up: f64, per_side: usize) -> Vec<f64> {
    let n = per_side.max(1) as f64;
    let mut pts: Vec<f64> = (0..per_side).map(|i| -down * (n - i as f64) / n).collect();
    pts.extend((1..=per_side).map(|i| up * i as f64 / n));
    pts
}

/// Scan parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanConfig {
    /// Underlying moves in percent.
    pub points_pct: Vec<f64>,
    /// Implied-vol multipliers applied at every price point (1.0 = unchanged). The SRO rule fixes
    /// only the price range; vol shifts are a house choice, so the default is `[1.0]`.
    pub vol_mults: Vec<f64>,
    /// Minimum charge per contract per share of multiplier ($0.375).
    pub min_per_share: f64,
}

impl ScanConfig {
    /// Ten points over the class's range, no vol shift, $0.375 minimum.
    pub fn for_class(class: ProductClass) -> Self {
        let (down, up) = class.range();
        Self {
            points_pct: valuation_points(down, up, 5),
            vol_mults: vec![1.0],
            min_per_share: 0.375,
        }
    }
}

/// P&L at one scan point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScanPoint {
    pub move_pct: f64,
    pub vol_mult: f64,
    pub pnl: f64,
}

/// Result of the scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanResult {
    /// max(worst scan loss, minimum charge), USD.
    pub requirement: f64,
    /// Largest loss over the points (0 when every point gains), USD.
    pub worst_loss: f64,
    pub worst: ScanPoint,
    /// Sum of the per-contract minimums, USD.
    pub minimum_charge: f64,
    pub points: Vec<ScanPoint>,
}

/// Run the scan over `legs` (all on one underlying / class group: gains offset losses fully).
pub fn pm_scan(legs: &[RiskLeg], cfg: &ScanConfig) -> Result<ScanResult, PricingError> {
    if cfg.points_pct.is_empty() || cfg.vol_mults.is_empty() {
        return Err(PricingError::BadGrid(
            "scan needs price points and at least one vol multiplier",
        ));
    }
    if cfg
        .points_pct
        .iter()
        .any(|m| !m.is_finite() || *m <= -100.0)
        || cfg.vol_mults.iter().any(|v| !v.is_finite() || *v < 0.0)
        || !cfg.min_per_share.is_finite()
        || cfg.min_per_share < 0.0
    {
        return Err(PricingError::BadGrid(
            "scan points/multipliers out of range",
        ));
    }
    for leg in legs {
        leg.validate()?;
    }
    let base: Vec<f64> = legs
        .iter()
        .map(|l| l.value_per_share(l.spot, 1.0, 0.0))
        .collect();
    let mut points = Vec::with_capacity(cfg.points_pct.len() * cfg.vol_mults.len());
    for &m in &cfg.points_pct {
        for &vm in &cfg.vol_mults {
            let g = 1.0 + m / 100.0;
            let pnl = legs
                .iter()
                .zip(&base)
                .map(|(l, b)| {
                    l.qty as f64 * l.multiplier * (l.value_per_share(l.spot * g, vm, 0.0) - b)
                })
                .sum();
            points.push(ScanPoint {
                move_pct: m,
                vol_mult: vm,
                pnl,
            });
        }
    }
    let worst = *points
        .iter()
        .min_by(|a, b| a.pnl.total_cmp(&b.pnl))
        .ok_or(PricingError::BadGrid("empty scan"))?;
    let minimum_charge: f64 = legs
        .iter()
        .zip(&base)
        .filter(|(l, _)| matches!(l.instrument, Instrument::Option { .. }))
        .map(|(l, b)| {
            let per_contract = cfg.min_per_share * l.multiplier;
            let capped = if l.qty > 0 {
                per_contract.min(b * l.multiplier)
            } else {
                per_contract
            };
            capped * l.qty.unsigned_abs() as f64
        })
        .sum();
    let worst_loss = (-worst.pnl).max(0.0);
    Ok(ScanResult {
        requirement: worst_loss.max(minimum_charge),
        worst_loss,
        worst,
        minimum_charge,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::option_leg;
    use crate::types::OptionType;

    #[test]
    fn class_points_match_the_published_ranges() {
        let eq = ScanConfig::for_class(ProductClass::Equity).points_pct;
        assert_eq!(
            eq,
            vec![-15.0, -12.0, -9.0, -6.0, -3.0, 3.0, 6.0, 9.0, 12.0, 15.0]
        );
        let spx = ScanConfig::for_class(ProductClass::HighCapBroadIndex).points_pct;
        let want = [-8.0, -6.4, -4.8, -3.2, -1.6, 1.2, 2.4, 3.6, 4.8, 6.0];
        assert!(spx.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn long_straddle_pays_the_per_contract_minimum() {
        // Cboe 2007 table: 100 long calls + 100 long puts -> PM = 200 x $37.50 = $7,500.
        let legs = [
            option_leg(OptionType::Call, 100.0, 100),
            option_leg(OptionType::Put, 100.0, 100),
        ];
        let res = pm_scan(&legs, &ScanConfig::for_class(ProductClass::Equity)).unwrap();
        assert_eq!(res.worst_loss, 0.0);
        assert!((res.minimum_charge - 7500.0).abs() < 1e-9);
        assert!((res.requirement - 7500.0).abs() < 1e-9);
    }

    #[test]
    fn short_call_requirement_is_the_up_move_loss() {
        let legs = [option_leg(OptionType::Call, 100.0, -10)];
        let res = pm_scan(&legs, &ScanConfig::for_class(ProductClass::Equity)).unwrap();
        assert_eq!(res.worst.move_pct, 15.0);
        let l = &legs[0];
        let expected = -10.0
            * 100.0
            * (l.value_per_share(115.0, 1.0, 0.0) - l.value_per_share(100.0, 1.0, 0.0));
        assert!((res.requirement + expected).abs() < 1e-9);
        assert!(res.requirement > res.minimum_charge);
    }

    #[test]
    fn vol_shifts_are_scanned_when_configured() {
        let legs = [
            option_leg(OptionType::Call, 100.0, 1),
            option_leg(OptionType::Put, 100.0, 1),
        ];
        let mut cfg = ScanConfig::for_class(ProductClass::Equity);
        cfg.vol_mults = vec![0.5, 1.0];
        let res = pm_scan(&legs, &cfg).unwrap();
        assert_eq!(res.points.len(), 20);
        assert_eq!(res.worst.vol_mult, 0.5);
        assert!(res.worst_loss > 0.0);
    }
}
