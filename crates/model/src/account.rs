//! Account values and what-if margin impact.

use crate::clock::Timestamp;
use crate::ids::AccountId;
use crate::money::Money;
use serde::{Deserialize, Serialize};

/// Account values at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// Account.
    pub account: AccountId,
    /// Net liquidation value (cash + marked positions).
    pub net_liquidation: Money,
    /// Maintenance margin requirement.
    pub maintenance_margin: Money,
    /// Initial margin requirement.
    pub initial_margin: Money,
    /// Net liquidation − maintenance margin; below zero means liquidation.
    pub excess_liquidity: Money,
    /// Buying power.
    pub buying_power: Money,
    /// When.
    pub ts: Timestamp,
}

/// Margin effect of a hypothetical order (IB "what-if").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginImpact {
    /// Change of the initial margin requirement.
    pub initial_change: Money,
    /// Change of the maintenance margin requirement.
    pub maintenance_change: Money,
    /// Initial margin after the order.
    pub initial_after: Money,
    /// Maintenance margin after the order.
    pub maintenance_after: Money,
    /// Estimated commission, when known.
    pub commission: Option<Money>,
}
