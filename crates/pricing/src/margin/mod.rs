//! Reg T strategy-based margin (Cboe Rule 10.3 / FINRA 4210(f)(2)) for one underlying: rule
//! amounts per strategy ([`rules`]) and a search over leg pairings that finds the lowest total
//! requirement ([`pairing`]). Money is fixed-point (micro-dollars).
//!
//! Conventions (as in `margin_examples.json`):
//! * `gross_requirement` includes short-option proceeds ("100% of proceeds plus ...") and, for
//!   spreads, is the spread's maximum loss before applying the credit.
//! * `net_of_proceeds` is the cash the customer must add: gross less short proceeds, plus long
//!   premium paid in full. Per group: `net = max loss` for spreads, `gross - proceeds` for naked
//!   shorts, `premium` for unpaired longs; `gross = net + max(group credit, 0)`.

pub mod money;
pub mod pairing;
pub mod rules;

use serde::Serialize;

use crate::error::PricingError;
use crate::types::OptionType;
pub use money::{MICROS, to_dollars, to_micros};

/// What the options are on; sets the naked-option percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderlyingKind {
    /// Equities and ETFs: 20%.
    Equity,
    /// Broad-based index: 15%.
    BroadBasedIndex,
    /// Narrow-based index: 20%.
    NarrowBasedIndex,
}

/// Rule parameters (basis points), defaulting to the Reg T / Cboe figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarginRules {
    pub naked_equity_bps: i128,
    pub naked_broad_index_bps: i128,
    pub naked_narrow_index_bps: i128,
    /// Minimum: 10% of the underlying value (calls) or of the exercise price (puts).
    pub naked_minimum_bps: i128,
    /// Reg T initial margin on long or short stock: 50%.
    pub stock_initial_bps: i128,
    /// Optional house floor per naked contract in micro-dollars (tastytrade/IB: $250); 0 = none.
    pub house_min_per_contract: i128,
}

impl Default for MarginRules {
    fn default() -> Self {
        Self {
            naked_equity_bps: 2000,
            naked_broad_index_bps: 1500,
            naked_narrow_index_bps: 2000,
            naked_minimum_bps: 1000,
            stock_initial_bps: 5000,
            house_min_per_contract: 0,
        }
    }
}

impl MarginRules {
    /// Naked percentage for this underlying kind.
    pub fn naked_bps(&self, kind: UnderlyingKind) -> i128 {
        match kind {
            UnderlyingKind::Equity => self.naked_equity_bps,
            UnderlyingKind::BroadBasedIndex => self.naked_broad_index_bps,
            UnderlyingKind::NarrowBasedIndex => self.naked_narrow_index_bps,
        }
    }
}

/// One option leg of a position. Prices are micro-dollars per share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarginLeg {
    pub kind: OptionType,
    pub strike: i128,
    /// Signed contracts (negative = short).
    pub qty: i64,
    /// Current premium (market value) per share.
    pub premium: i128,
    /// Expiry as any ordinal (days to expiry, yyyymmdd...): only equality and order are used.
    pub expiry: i64,
}

/// Stock held against the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockPosition {
    /// Signed shares.
    pub qty: i64,
    /// Price per share (micro-dollars).
    pub price: i128,
    /// True when the shares are a different symbol that tracks the underlying (SPY against SPX
    /// options): coverage is then by market value instead of share count.
    pub proxy: bool,
}

/// A position on one underlying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginPosition {
    /// Underlying price (micro-dollars); needed for naked-option rules and proxy coverage.
    pub underlying_price: Option<i128>,
    pub underlying_kind: UnderlyingKind,
    pub legs: Vec<MarginLeg>,
    pub stock: Option<StockPosition>,
    /// Shares per contract (100).
    pub multiplier: i64,
}

/// Named strategy a group of legs was margined as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    LongCall,
    LongPut,
    NakedCall,
    NakedPut,
    CoveredCall,
    CoveredPut,
    ProtectivePut,
    LongCallShortStock,
    VerticalCreditSpread,
    VerticalDebitSpread,
    IronCondor,
    IronButterfly,
    LongButterfly,
    ShortButterfly,
    Straddle,
    Strangle,
    /// Any other same-expiry hedged combination, margined at its maximum loss.
    MaxLossCombination,
    LongStock,
    ShortStock,
}

/// One leg's share of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupLeg {
    /// Index into the position's `legs`.
    pub leg: usize,
    /// Signed contracts of that leg used here.
    pub qty: i64,
}

/// A group of legs margined together under one rule. Amounts in micro-dollars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrategyGroup {
    pub strategy: Strategy,
    pub legs: Vec<GroupLeg>,
    /// Signed shares of stock in this group.
    pub stock_shares: i64,
    pub gross: i128,
    pub net: i128,
}

/// Outcome of the pairing search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginResult {
    /// Sum of group gross requirements (micro-dollars).
    pub gross_requirement: i128,
    /// Sum of group net requirements (micro-dollars): what the customer deposits.
    pub net_of_proceeds: i128,
    /// Short-option proceeds (micro-dollars).
    pub short_proceeds: i128,
    /// Long-option premium paid (micro-dollars).
    pub long_premium: i128,
    pub groups: Vec<StrategyGroup>,
    /// False when the search hit its node budget and finished greedily.
    pub exhaustive: bool,
}

impl MarginPosition {
    /// Reject empty positions, zero quantities, bad multipliers.
    pub fn validate(&self) -> Result<(), PricingError> {
        if self.legs.is_empty() && self.stock.is_none() {
            return Err(PricingError::EmptyPosition);
        }
        if self.multiplier <= 0 || self.multiplier > 1_000_000 {
            return Err(PricingError::OutOfRange {
                field: "multiplier",
                requirement: "a positive number of shares per contract",
                value: self.multiplier as f64,
            });
        }
        for (index, l) in self.legs.iter().enumerate() {
            if l.qty == 0 {
                return Err(PricingError::ZeroQuantity { index });
            }
            if l.strike <= 0 {
                return Err(PricingError::OutOfRange {
                    field: "strike",
                    requirement: "positive",
                    value: to_dollars(l.strike),
                });
            }
            if l.qty.unsigned_abs() > 10_000_000 {
                return Err(PricingError::OutOfRange {
                    field: "qty",
                    requirement: "at most 10,000,000 contracts",
                    value: l.qty as f64,
                });
            }
        }
        if self.legs.len() > pairing::MAX_LEGS {
            return Err(PricingError::OutOfRange {
                field: "legs",
                requirement: "at most 128 legs per underlying",
                value: self.legs.len() as f64,
            });
        }
        Ok(())
    }
}

/// Reg T strategy-based requirement of a position, pairing legs for the lowest requirement.
pub fn reg_t_margin(
    pos: &MarginPosition,
    rules: &MarginRules,
) -> Result<MarginResult, PricingError> {
    pos.validate()?;
    pairing::search(pos, rules)
}

#[cfg(test)]
mod tests;
