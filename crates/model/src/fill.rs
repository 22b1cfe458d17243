//! Executions (fills) reported by the broker.

use crate::clock::Timestamp;
use crate::ids::{AccountId, ExecId, OrderId};
use crate::instrument::Instrument;
use crate::money::{Money, Price};
use crate::order::Side;
use serde::{Deserialize, Serialize};

/// Whether a fill added or removed liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Liquidity {
    /// Added liquidity (resting order).
    Maker,
    /// Removed liquidity.
    Taker,
}

/// One fill of one instrument. Combo fills arrive as one execution per leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// Unique execution id.
    pub exec_id: ExecId,
    /// The order that filled, when known (manual trades at the broker have none).
    pub order_id: Option<OrderId>,
    /// Account.
    pub account: AccountId,
    /// What filled.
    pub instrument: Instrument,
    /// Side.
    pub side: Side,
    /// Filled quantity, > 0.
    pub qty: i64,
    /// Fill price per unit.
    pub price: Price,
    /// When.
    pub ts: Timestamp,
    /// Commission, when reported.
    pub commission: Option<Money>,
    /// Liquidity flag, when reported.
    pub liquidity: Option<Liquidity>,
}

impl Execution {
    /// Signed quantity: + for buys, − for sells.
    pub fn signed_qty(&self) -> i64 {
        self.side.sign().saturating_mul(self.qty)
    }
}
