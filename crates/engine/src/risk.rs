//! [`RiskModel`]: worst-case requirement of (book + proposed order) for the pre-trade gate, and
//! [`IntrinsicStressModel`], the built-in implementation.
//!
//! `IntrinsicStressModel` moves every underlying by each point of a grid (±3 … ±15 % by
//! default) and values options at intrinsic and stock at the moved price, all in fixed point.
//! The requirement is the largest loss versus the unmoved valuation. It ignores volatility and
//! time value (the pricing crate's stress grid adds them; an adapter over it can implement this
//! trait without touching the gate).

use crate::book::Book;
use crate::error::RiskError;
use crate::intent::LegIntent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tradeguard_model::{Instrument, Money, Price};

/// One stress scenario: the underlying's move and the implied-vol and spread shocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StressScenario {
    /// Underlying move in basis points (−300 = −3 %).
    pub move_bps: i64,
    /// Implied vol as a percentage of today's (130 = IV +30 %).
    pub vol_pct: u32,
    /// Bid-ask spread as a percentage of today's (200 = spreads ×2).
    pub spread_pct: u32,
}

impl StressScenario {
    /// A move only (volatility and spreads as today).
    pub const fn moved(move_bps: i64) -> Self {
        Self {
            move_bps,
            vol_pct: 100,
            spread_pct: 100,
        }
    }
}

impl std::fmt::Display for StressScenario {
    /// `underlying −3 %, IV +50 %, spreads ×2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |bps: i64| {
            let s = format!("{:.2}", bps as f64 / 100.0);
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        };
        let m = if self.move_bps > 0 {
            format!("+{} %", pct(self.move_bps))
        } else if self.move_bps < 0 {
            format!("−{} %", pct(-self.move_bps))
        } else {
            "unmoved".to_owned()
        };
        write!(f, "underlying {m}")?;
        if self.vol_pct != 100 {
            let d = i64::from(self.vol_pct) - 100;
            write!(f, ", IV {}{d} %", if d > 0 { "+" } else { "" })?;
        }
        if self.spread_pct != 100 {
            write!(f, ", spreads ×{}", pct(i64::from(self.spread_pct)))?;
        }
        Ok(())
    }
}

/// The worst case of a stress: the loss and the scenario it happens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorstCase {
    /// Worst-case loss (≥ 0).
    pub requirement: Money,
    /// Where it happens.
    pub scenario: StressScenario,
}

/// Computes the worst-case requirement of the book plus an order.
pub trait RiskModel: Send + Sync {
    /// The worst case (loss ≥ 0 and its scenario) of `book` with `order` filled, over the
    /// model's stress scenarios.
    fn worst_case(&self, book: &Book, order: &[LegIntent]) -> Result<WorstCase, RiskError>;

    /// Worst-case loss (≥ 0) of `book` with `order` filled.
    fn worst_case_requirement(&self, book: &Book, order: &[LegIntent]) -> Result<Money, RiskError> {
        self.worst_case(book, order).map(|w| w.requirement)
    }
}

/// Intrinsic-value stress over a grid of underlying moves (see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrinsicStressModel {
    /// Underlying moves in basis points (−1500 = −15 %).
    pub moves_bps: Vec<i64>,
    /// Underlying prices used when the book has no quote yet (start-up, tests).
    pub fallback_spots: BTreeMap<String, Price>,
}

impl Default for IntrinsicStressModel {
    fn default() -> Self {
        Self {
            moves_bps: vec![-1500, -1000, -500, -300, 0, 300, 500, 1000, 1500],
            fallback_spots: BTreeMap::new(),
        }
    }
}

fn value(inst: &Instrument, qty: i64, spot: Price) -> Result<Money, RiskError> {
    let per_unit = match inst {
        Instrument::Option(o) => o.intrinsic(spot),
        Instrument::Stock { .. } | Instrument::Future { .. } => spot,
    };
    per_unit
        .notional(qty, inst.multiplier())
        .map_err(|_| RiskError::Overflow)
}

impl RiskModel for IntrinsicStressModel {
    fn worst_case(&self, book: &Book, order: &[LegIntent]) -> Result<WorstCase, RiskError> {
        let mut pos: BTreeMap<tradeguard_model::InstrumentId, (Instrument, i64)> = BTreeMap::new();
        for (i, q) in book.positions() {
            pos.insert(i.id(), (i.clone(), q));
        }
        for l in order {
            let e = pos
                .entry(l.instrument.id())
                .or_insert((l.instrument.clone(), 0));
            e.1 = e.1.saturating_add(l.signed_qty());
        }
        let mut worst = WorstCase {
            requirement: Money::ZERO,
            scenario: StressScenario::moved(0),
        };
        for m in &self.moves_bps {
            let mut pnl = Money::ZERO;
            for (inst, q) in pos.values() {
                if *q == 0 {
                    continue;
                }
                let sym = inst.underlying();
                let spot = book
                    .spot(sym)
                    .or_else(|| self.fallback_spots.get(sym).copied())
                    .ok_or_else(|| RiskError::NoSpot(sym.to_owned()))?;
                let moved = spot
                    .mul_ratio(10_000 + m, 10_000)
                    .map_err(|_| RiskError::Overflow)?;
                let d = value(inst, *q, moved)?
                    .checked_sub(value(inst, *q, spot)?)
                    .map_err(|_| RiskError::Overflow)?;
                pnl = pnl.checked_add(d).map_err(|_| RiskError::Overflow)?;
            }
            let loss = pnl.checked_neg().map_err(|_| RiskError::Overflow)?;
            if loss > worst.requirement {
                worst = WorstCase {
                    requirement: loss,
                    scenario: StressScenario::moved(*m),
                };
            }
        }
        Ok(worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::{OrderType, Side, stubs};

    fn leg(i: Instrument, side: Side) -> LegIntent {
        LegIntent {
            instrument: i,
            side,
            qty: 1,
            order_type: OrderType::Market,
        }
    }

    #[test]
    fn spread_risk_is_bounded_by_width_and_naked_is_not() {
        let mut book = Book::new();
        book.set_spot("SPY", Price::from_units(450).unwrap_or_default());
        let m = IntrinsicStressModel::default();
        let naked = [leg(stubs::put(440), Side::Sell)];
        // −15 %: 382.50, put worth 57.50 × 100.
        assert_eq!(
            m.worst_case_requirement(&book, &naked),
            Ok(Money::from_units(5_750).unwrap_or_default())
        );
        let spread = [
            leg(stubs::put(440), Side::Sell),
            leg(stubs::put(430), Side::Buy),
        ];
        assert_eq!(
            m.worst_case_requirement(&book, &spread),
            Ok(Money::from_units(1_000).unwrap_or_default())
        );
        let nospot = Book::new();
        assert_eq!(
            m.worst_case_requirement(&nospot, &naked)
                .unwrap_err()
                .code(),
            "risk.no_spot"
        );
    }
}
