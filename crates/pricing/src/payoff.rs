//! Payoff curves for charts: P&L at expiry and today (T+0) over a range of underlying prices.

use serde::Serialize;

use crate::error::{PricingError, positive};
use crate::risk_leg::{Instrument, RiskLeg};

/// One point of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PayoffPoint {
    pub spot: f64,
    /// P&L if held to the first expiry in the book (later legs valued by BSM at that date).
    pub pnl_expiry: f64,
    /// P&L if the underlying moved there right now (model value today).
    pub pnl_today: f64,
}

/// Each leg's cost basis per share: its `entry_price`, else its model value now.
pub(crate) fn cost_basis(legs: &[RiskLeg]) -> Vec<f64> {
    legs.iter()
        .map(|l| {
            l.entry_price
                .unwrap_or_else(|| l.value_per_share(l.spot, 1.0, 0.0))
        })
        .collect()
}

/// P&L at `points` evenly spaced spots in `[lo, hi]`. Each leg's cost basis is its
/// `entry_price`, or its model value now when absent.
pub fn payoff_curve(
    legs: &[RiskLeg],
    lo: f64,
    hi: f64,
    points: usize,
) -> Result<Vec<PayoffPoint>, PricingError> {
    positive("lo", lo)?;
    positive("hi", hi)?;
    if hi <= lo || !(2..=100_000).contains(&points) {
        return Err(PricingError::BadGrid("need lo < hi and 2..=100000 points"));
    }
    for leg in legs {
        leg.validate()?;
    }
    let first_expiry = legs
        .iter()
        .filter_map(|l| match l.instrument {
            Instrument::Option { t, .. } => Some(t),
            Instrument::Underlying => None,
        })
        .fold(f64::INFINITY, f64::min);
    let horizon = if first_expiry.is_finite() {
        first_expiry
    } else {
        0.0
    };
    let basis = cost_basis(legs);
    let out = (0..points)
        .map(|i| {
            let spot = lo + (hi - lo) * i as f64 / (points - 1) as f64;
            let (mut at_expiry, mut today) = (0.0, 0.0);
            for (leg, &cost) in legs.iter().zip(&basis) {
                // Each leg moves with its own underlying by the same ratio as the chart's spot.
                let s = spot;
                let units = leg.qty as f64 * leg.multiplier;
                at_expiry += units * (leg.value_per_share(s, 1.0, horizon) - cost);
                today += units * (leg.value_per_share(s, 1.0, 0.0) - cost);
            }
            PayoffPoint {
                spot,
                pnl_expiry: at_expiry,
                pnl_today: today,
            }
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::option_leg;
    use crate::types::OptionType;

    #[test]
    fn bull_call_spread_payoff_is_capped() {
        let mut long = option_leg(OptionType::Call, 100.0, 1);
        long.entry_price = Some(5.0);
        let mut short = option_leg(OptionType::Call, 110.0, -1);
        short.entry_price = Some(2.0);
        let curve = payoff_curve(&[long, short], 80.0, 130.0, 51).unwrap();
        let at = |s: f64| curve.iter().find(|p| (p.spot - s).abs() < 1e-9).unwrap();
        // Below 100 lose the 3.00 debit, above 110 make 10 - 3 = 7 (x100).
        assert!((at(90.0).pnl_expiry + 300.0).abs() < 1e-9);
        assert!((at(120.0).pnl_expiry - 700.0).abs() < 1e-9);
        assert!((at(105.0).pnl_expiry - 200.0).abs() < 1e-9);
        // Today the curve is smooth and strictly inside the expiry extremes.
        assert!(at(120.0).pnl_today < 700.0 && at(90.0).pnl_today > -300.0);
    }

    #[test]
    fn bad_range_is_rejected() {
        let leg = option_leg(OptionType::Put, 100.0, 1);
        assert_eq!(
            payoff_curve(&[leg], 100.0, 90.0, 10).unwrap_err().code(),
            "stress.bad_grid"
        );
        assert_eq!(
            payoff_curve(&[leg], f64::NAN, 90.0, 10).unwrap_err().code(),
            "pricing.not_finite"
        );
    }
}
