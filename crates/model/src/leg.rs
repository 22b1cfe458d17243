//! A strategy leg: an instrument held in a signed quantity with a role.

use crate::instrument::Instrument;
use crate::money::Price;
use serde::{Deserialize, Serialize};

/// What a leg does inside its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LegRole {
    /// A long option that caps a short leg's risk.
    Protection,
    /// A short option (the premium seller).
    Short,
    /// Any other long option or future held as a hedge.
    Hedge,
    /// Stock (shares).
    Stock,
}

/// One leg of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The instrument held.
    pub instrument: Instrument,
    /// Signed quantity in contracts/shares: + long, − short.
    pub qty: i64,
    /// Role within the strategy.
    pub role: LegRole,
    /// Average open price per unit.
    pub avg_price: Price,
}
