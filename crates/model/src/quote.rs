//! Market quotes with optional model Greeks.

use crate::clock::Timestamp;
use crate::instrument::Instrument;
use crate::money::Price;
use serde::{Deserialize, Serialize};

/// Option Greeks as the broker/model computes them (f64 is fine: model output, not money).
/// Conventions follow IB: delta per 1.00 underlying move, vega per 1 vol point (0.01),
/// theta per calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Greeks {
    /// Implied volatility (0.20 = 20 %).
    pub iv: f64,
    /// Delta.
    pub delta: f64,
    /// Gamma.
    pub gamma: f64,
    /// Vega.
    pub vega: f64,
    /// Theta.
    pub theta: f64,
}

/// Top of book for one instrument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Instrument.
    pub instrument: Instrument,
    /// Best bid; `None` when there is none or the venue has no data for it (IB's -1). Never a
    /// sentinel price.
    pub bid: Option<Price>,
    /// Best ask; `None` when there is none or the venue has no data for it.
    pub ask: Option<Price>,
    /// Last trade.
    pub last: Option<Price>,
    /// Size at the bid.
    pub bid_size: i64,
    /// Size at the ask.
    pub ask_size: i64,
    /// Greeks when known (options).
    pub greeks: Option<Greeks>,
    /// Underlying price used for the Greeks (options).
    pub underlying_price: Option<Price>,
    /// When.
    pub ts: Timestamp,
}

impl Quote {
    /// Both sides, when the market has both.
    pub fn two_sided(&self) -> Option<(Price, Price)> {
        self.bid.zip(self.ask)
    }

    /// Midpoint of a two-sided market, rounded half away from zero to the 4th decimal.
    pub fn mid(&self) -> Option<Price> {
        let (bid, ask) = self.two_sided()?;
        let sum = i128::from(bid.raw()) + i128::from(ask.raw());
        let half = if sum >= 0 {
            (sum + 1) / 2
        } else {
            (sum - 1) / 2
        };
        // (a + b) / 2 of two i64 always fits in i64.
        Some(Price::from_raw(i64::try_from(half).unwrap_or(i64::MAX)))
    }
}
