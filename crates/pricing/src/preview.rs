//! What an order preview says about a position at its first expiry: the maximum profit and loss
//! (or that one is unbounded), the breakevens, and the model's probability of profit.
//!
//! The P&L at expiry is each leg's value at the first expiry (intrinsic for the legs that expire
//! then, Black-Scholes for later ones) less its cost basis (`entry_price`, else its model value
//! now), as [`crate::payoff_curve`] draws it. When every option leg expires at the first expiry
//! the P&L is piecewise linear with its kinks at the strikes, so the extremes and breakevens are
//! exact; otherwise (a calendar) they are read from a dense grid and flagged `exact: false`.
//!
//! The probability of profit is the chance that the underlying ends the first expiry in a
//! profitable region under a lognormal law with drift `r − q` and the given volatility (the
//! model's, not a forecast).

use crate::error::PricingError;
use crate::normal::cdf;
use crate::risk_leg::{Instrument, RiskLeg};
use serde::Serialize;

/// Points of the dense grid used for positions with several expiries.
const DENSE_POINTS: usize = 2_000;

/// The position's profile at its first expiry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpiryProfile {
    /// Years to the first expiry.
    pub horizon: f64,
    /// The largest P&L (USD); `None` when unbounded (long calls or shares net of short ones).
    pub max_profit: Option<f64>,
    /// The largest loss as a positive amount (USD); `None` when unbounded.
    pub max_loss: Option<f64>,
    /// Underlying prices where the P&L crosses zero, ascending.
    pub breakevens: Vec<f64>,
    /// Probability that the P&L at expiry is positive (lognormal, see module docs).
    pub probability_of_profit: f64,
    /// `true` when every option leg expires at the first expiry (piecewise-linear P&L).
    pub exact: bool,
}

/// The profile of `legs` at their first expiry (see module docs); `vol` is the volatility of the
/// probability of profit, `r` and `q` its drift.
pub fn expiry_profile(
    legs: &[RiskLeg],
    vol: f64,
    r: f64,
    q: f64,
) -> Result<ExpiryProfile, PricingError> {
    if legs.is_empty() {
        return Err(PricingError::EmptyPosition);
    }
    for leg in legs {
        leg.validate()?;
    }
    crate::error::positive("vol", vol)?;
    crate::error::finite("r", r)?;
    crate::error::finite("q", q)?;
    let expiries: Vec<f64> = legs
        .iter()
        .filter_map(|l| match l.instrument {
            Instrument::Option { t, .. } => Some(t),
            Instrument::Underlying => None,
        })
        .collect();
    let horizon = expiries.iter().copied().fold(f64::INFINITY, f64::min);
    let horizon = if horizon.is_finite() { horizon } else { 0.0 };
    let exact = expiries.iter().all(|t| (t - horizon).abs() < 1e-9);
    let basis = crate::payoff::cost_basis(legs);
    let pnl = |s: f64| -> f64 {
        legs.iter()
            .zip(&basis)
            .map(|(l, cost)| {
                l.qty as f64 * l.multiplier * (l.value_per_share(s, 1.0, horizon) - cost)
            })
            .sum()
    };
    // Slope of the P&L as the price rises without limit: calls and shares gain one per share.
    let slope_up: f64 = legs
        .iter()
        .filter(|l| match l.instrument {
            Instrument::Underlying => true,
            Instrument::Option { kind, .. } => kind == crate::OptionType::Call,
        })
        .map(|l| l.qty as f64 * l.multiplier)
        .sum();
    let spot = legs[0].spot;
    let mut strikes: Vec<f64> = legs
        .iter()
        .filter_map(|l| match l.instrument {
            Instrument::Option { strike, .. } => Some(strike),
            Instrument::Underlying => None,
        })
        .collect();
    strikes.sort_by(f64::total_cmp);
    strikes.dedup();
    let top = strikes.last().copied().unwrap_or(spot).max(spot);
    // The price at zero (a hair above, where every value is defined), the kinks, and beyond.
    let mut xs: Vec<f64> = vec![spot * 1e-9];
    xs.extend(&strikes);
    xs.push(top * 2.0);
    if !exact {
        let hi = top * 3.0;
        xs.extend((1..DENSE_POINTS).map(|i| hi * i as f64 / DENSE_POINTS as f64));
    }
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let ys: Vec<f64> = xs.iter().map(|&s| pnl(s)).collect();
    let flat = |v: f64| v.abs() < 1e-9;
    let hi_y = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo_y = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let max_profit = if slope_up > 1e-9 {
        None
    } else {
        Some(hi_y.max(0.0))
    };
    let max_loss = if slope_up < -1e-9 {
        None
    } else {
        Some((-lo_y).max(0.0))
    };
    let mut breakevens = Vec::new();
    for i in 1..xs.len() {
        let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
        if flat(y1) && !flat(y0) {
            breakevens.push(x1);
        } else if y0 * y1 < 0.0 && !flat(y0) {
            breakevens.push(x0 + (x1 - x0) * y0 / (y0 - y1));
        }
    }
    // Beyond the last point the P&L runs on at `slope_up`.
    if let (Some(&x), Some(&y)) = (xs.last(), ys.last())
        && !flat(y)
        && !flat(slope_up)
        && y * slope_up < 0.0
    {
        breakevens.push(x - y / slope_up);
    }
    // Probability of a positive P&L: the profitable stretches between breakevens.
    let tail = |k: f64| -> f64 {
        // P(S_T > k).
        if horizon <= 0.0 {
            return if spot > k { 1.0 } else { 0.0 };
        }
        let sd = vol * horizon.sqrt();
        cdf(((spot / k).ln() + (r - q - 0.5 * vol * vol) * horizon) / sd)
    };
    let mut edges = vec![0.0];
    edges.extend(&breakevens);
    let mut pop = 0.0;
    for (i, &a) in edges.iter().enumerate() {
        let b = edges.get(i + 1).copied();
        let mid = match b {
            Some(b) => 0.5 * (a + b),
            None => a.max(top) * 2.0 + 1.0,
        };
        let profitable = if b.is_none() && mid > *xs.last().unwrap_or(&mid) {
            ys.last().copied().unwrap_or(0.0) + slope_up * (mid - xs.last().copied().unwrap_or(mid))
                > 1e-9
        } else {
            pnl(mid) > 1e-9
        };
        if profitable {
            let upper = b.map_or(0.0, tail);
            let lower = if a <= 0.0 { 1.0 } else { tail(a) };
            pop += lower - upper;
        }
    }
    Ok(ExpiryProfile {
        horizon,
        max_profit,
        max_loss,
        breakevens,
        probability_of_profit: pop.clamp(0.0, 1.0),
        exact,
    })
}

/// The Reg T strategy-based requirement of `legs` (one underlying at `spot`): `(gross, net of
/// the premium received)` in USD. Legs price at their `entry_price`, else their model value
/// now; options of one expiry pair with each other (whole days tell expiries apart).
pub fn reg_t_of_legs(
    legs: &[&RiskLeg],
    spot: f64,
    multiplier: f64,
    kind: crate::margin::UnderlyingKind,
) -> Result<(f64, f64), PricingError> {
    use crate::margin::{
        MarginLeg, MarginPosition, MarginRules, StockPosition, reg_t_margin, to_dollars, to_micros,
    };
    let mut options = Vec::new();
    let mut shares = 0i64;
    let mut share_cost = 0.0;
    for l in legs {
        let price = l
            .entry_price
            .unwrap_or_else(|| l.value_per_share(l.spot, 1.0, 0.0));
        match l.instrument {
            Instrument::Underlying => {
                shares += l.qty;
                share_cost = price;
            }
            Instrument::Option {
                kind: k, strike, t, ..
            } => options.push(MarginLeg {
                kind: k,
                strike: to_micros("strike", strike)?,
                qty: l.qty,
                premium: to_micros("price", price)?,
                expiry: (t * 365.0).round() as i64,
            }),
        }
    }
    let pos = MarginPosition {
        underlying_price: Some(to_micros("spot", spot)?),
        underlying_kind: kind,
        legs: options,
        stock: if shares == 0 {
            None
        } else {
            Some(StockPosition {
                qty: shares,
                price: to_micros("price", share_cost)?,
                proxy: false,
            })
        },
        multiplier: multiplier.round() as i64,
    };
    let res = reg_t_margin(&pos, &MarginRules::default())?;
    Ok((
        to_dollars(res.gross_requirement),
        to_dollars(res.net_of_proceeds),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::option_leg;
    use crate::types::OptionType;

    fn leg(kind: OptionType, strike: f64, qty: i64, price: f64) -> RiskLeg {
        let mut l = option_leg(kind, strike, qty);
        l.entry_price = Some(price);
        l
    }

    #[test]
    fn an_iron_condor_has_capped_profit_and_loss_and_two_breakevens() {
        // Short 95/105 strangle inside long 90/110 wings for a 2.00 credit.
        let legs = [
            leg(OptionType::Put, 90.0, 1, 0.50),
            leg(OptionType::Put, 95.0, -1, 1.50),
            leg(OptionType::Call, 105.0, -1, 1.50),
            leg(OptionType::Call, 110.0, 1, 0.50),
        ];
        let p = expiry_profile(&legs, 0.2, 0.0, 0.0).unwrap();
        assert!(p.exact);
        assert!((p.max_profit.unwrap() - 200.0).abs() < 1e-6, "{p:?}");
        assert!((p.max_loss.unwrap() - 300.0).abs() < 1e-6, "{p:?}");
        assert_eq!(p.breakevens.len(), 2, "{p:?}");
        assert!((p.breakevens[0] - 93.0).abs() < 1e-9);
        assert!((p.breakevens[1] - 107.0).abs() < 1e-9);
        // Between 93 and 107 under the lognormal law.
        let Instrument::Option { t, .. } = legs[0].instrument else {
            unreachable!("an option leg")
        };
        let sd = 0.2 * t.sqrt();
        let above = |k: f64| cdf(((100.0_f64 / k).ln() - 0.5 * 0.2 * 0.2 * t) / sd);
        let want = above(93.0) - above(107.0);
        assert!(
            (p.probability_of_profit - want).abs() < 1e-12,
            "{p:?} {want}"
        );
        assert!(p.probability_of_profit > 0.3 && p.probability_of_profit < 0.9);
    }

    #[test]
    fn naked_calls_lose_without_limit_and_long_calls_gain_without_limit() {
        let short =
            expiry_profile(&[leg(OptionType::Call, 105.0, -1, 2.0)], 0.2, 0.0, 0.0).unwrap();
        assert_eq!(short.max_loss, None, "unbounded");
        assert!((short.max_profit.unwrap() - 200.0).abs() < 1e-9);
        assert_eq!(short.breakevens, vec![107.0]);
        let long = expiry_profile(&[leg(OptionType::Call, 105.0, 1, 2.0)], 0.2, 0.0, 0.0).unwrap();
        assert_eq!(long.max_profit, None);
        assert!((long.max_loss.unwrap() - 200.0).abs() < 1e-9);
        assert!((long.breakevens[0] - 107.0).abs() < 1e-9);
        // Complementary events.
        assert!((short.probability_of_profit + long.probability_of_profit - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_short_put_is_bounded_by_its_strike() {
        let p = expiry_profile(&[leg(OptionType::Put, 95.0, -1, 3.0)], 0.25, 0.0, 0.0).unwrap();
        // It loses at most the strike less the premium (the price can fall to zero).
        assert!((p.max_loss.unwrap() - 9_200.0).abs() < 1e-3, "{p:?}");
        assert!((p.max_profit.unwrap() - 300.0).abs() < 1e-9);
        assert_eq!(p.breakevens.len(), 1);
        assert!((p.breakevens[0] - 92.0).abs() < 1e-9);
    }

    #[test]
    fn a_calendar_is_read_from_the_dense_grid() {
        let mut far = leg(OptionType::Call, 100.0, 1, 4.0);
        far.instrument = match far.instrument {
            Instrument::Option {
                kind,
                strike,
                t,
                vol,
                american,
            } => Instrument::Option {
                kind,
                strike,
                t: t * 2.0,
                vol,
                american,
            },
            other => other,
        };
        let legs = [leg(OptionType::Call, 100.0, -1, 2.5), far];
        let p = expiry_profile(&legs, 0.2, 0.0, 0.0).unwrap();
        assert!(!p.exact);
        assert!(
            p.max_profit.unwrap() > 0.0 && p.max_loss.unwrap() > 0.0,
            "{p:?}"
        );
        assert_eq!(p.breakevens.len(), 2, "{p:?}");
        assert!(p.breakevens[0] < 100.0 && p.breakevens[1] > 100.0);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(
            expiry_profile(&[], 0.2, 0.0, 0.0).unwrap_err().code(),
            PricingError::EmptyPosition.code()
        );
        let l = leg(OptionType::Put, 95.0, -1, 3.0);
        assert_eq!(
            expiry_profile(&[l], f64::NAN, 0.0, 0.0).unwrap_err().code(),
            "pricing.not_finite"
        );
    }
}
