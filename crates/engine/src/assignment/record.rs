//! The vocabulary of the assignment guard: what was detected ([`Detection`]), from which source,
//! and the persisted [`AssignmentRecord`].

use serde::{Deserialize, Serialize};
use tradeguard_model::{AccountId, Instrument, Price, SCALE, StrategyId, Timestamp};

/// Where a detection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionSource {
    /// The live position stream (an option quantity fell with stock delivered, no execution).
    PositionStream,
    /// An execution the broker marked as exercise / assignment.
    Execution,
    /// The start-up or reconnect snapshot compared with the last known (persisted) positions.
    Snapshot,
}

/// The marker some brokers put on the executions an exercise or assignment produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMarker {
    /// Our short option was assigned.
    Assignment,
    /// Our long option was exercised.
    Exercise,
    /// The option expired (worthless or cash settled).
    Expiry,
}

/// What happened to an option position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionKind {
    /// Our short was assigned: stock delivered (or cash for index options).
    Assigned,
    /// Our long was exercised.
    Exercised,
    /// The option disappeared on or after its expiry with nothing delivered: no action.
    Expired,
    /// The option quantity fell before expiry with neither an execution nor a delivery.
    Unexplained,
}

/// One detection of the [`super::Detector`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// Account.
    pub account: AccountId,
    /// The option concerned.
    pub option: Instrument,
    /// What happened.
    pub kind: DetectionKind,
    /// Contracts removed from the option position (> 0).
    pub contracts: i64,
    /// Signed shares delivered to the account (+ received, − delivered away); 0 if none.
    pub stock_delivered: i64,
    /// Detection time.
    pub at: Timestamp,
    /// Source.
    pub source: DetectionSource,
}

/// A persisted assignment or exercise, correlated with its strategy and leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// Sequence number within this journal (1, 2, ...).
    pub id: u64,
    /// Account.
    pub account: AccountId,
    /// Strategy the option belonged to, if any.
    pub strategy: Option<StrategyId>,
    /// Index of the leg within the strategy.
    pub leg: Option<usize>,
    /// The option.
    pub option: Instrument,
    /// Assigned or exercised.
    pub kind: DetectionKind,
    /// Contracts.
    pub contracts: i64,
    /// Signed shares delivered (+ received).
    pub stock_delivered: i64,
    /// Price the stock was delivered at (the strike), for equity options.
    pub stock_price: Option<Price>,
    /// When detected.
    pub detected_at: Timestamp,
    /// Source.
    pub source: DetectionSource,
}

/// Display of an instrument for people ([`Instrument::label`]): `SPY 21MAR25 440 P`, `SPY`.
pub fn short_name(i: &Instrument) -> String {
    i.label()
}

/// `440` for whole strikes, `440.5` otherwise.
pub fn strike_text(p: Price) -> String {
    if p.raw() % SCALE == 0 {
        (p.raw() / SCALE).to_string()
    } else {
        let s = p.to_string();
        s.trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    #[test]
    fn names() {
        assert_eq!(short_name(&stubs::put(440)), "SPY 17JAN25 440 P");
        assert_eq!(short_name(&stubs::call(465)), "SPY 17JAN25 465 C");
        assert_eq!(short_name(&Instrument::stock("SPY")), "SPY");
        assert_eq!(strike_text(Price::parse("440.5").unwrap()), "440.5");
        assert_eq!(strike_text(Price::parse("2.25").unwrap()), "2.25");
    }
}
