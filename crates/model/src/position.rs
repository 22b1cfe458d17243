//! Broker positions.

use crate::ids::AccountId;
use crate::instrument::Instrument;
use crate::money::Price;
use serde::{Deserialize, Serialize};

/// A holding as the broker reports it. `qty == 0` means the position was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: Instrument,
    /// Signed quantity (+ long, − short).
    pub qty: i64,
    /// Average cost per unit (per share for options, like IB's avgCost / multiplier).
    pub avg_cost: Price,
}
