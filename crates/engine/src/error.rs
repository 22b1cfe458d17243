//! Typed errors of the execution engine: [`GateRefusal`] (the pre-trade gate said no, with the
//! reason), [`IntentError`] (the request itself is malformed), [`JournalError`] and the umbrella
//! [`ExecError`] returned by the coordinator handle. Every variant has a stable `code()`.

use crate::intent::Purpose;
use tradeguard_model::{AccountId, BrokerError, GroupId, InstrumentId, Money, StrategyId};

/// Why the pre-trade gate refused an order. Every refusal is also written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    /// Trading is HALTED: only Emergency orders pass.
    #[error("trading is halted: {purpose:?} orders are refused, only emergency exits pass")]
    Halted {
        /// Purpose of the refused order.
        purpose: Purpose,
    },
    /// Trading is REDUCING and this leg would open or increase exposure.
    #[error(
        "trading is reducing: leg {instrument} would increase exposure (position {position}, order {signed_qty})"
    )]
    NotReducing {
        /// The offending leg.
        instrument: InstrumentId,
        /// Current signed position.
        position: i64,
        /// Signed order quantity.
        signed_qty: i64,
    },
    /// The order-rate throttle is exhausted.
    #[error(
        "order rate limit: {needed} message(s) needed, {available} available; retry in {retry_after_ms} ms"
    )]
    Throttled {
        /// Broker messages the order needs.
        needed: u32,
        /// Tokens left in the bucket.
        available: u32,
        /// Earliest time the order would pass.
        retry_after_ms: u64,
    },
    /// A leg exceeds the maximum order size.
    #[error("leg {instrument} quantity {qty} exceeds the maximum {max}")]
    MaxOrderQty {
        /// The offending leg.
        instrument: InstrumentId,
        /// Its quantity.
        qty: i64,
        /// Configured maximum.
        max: i64,
    },
    /// The order's notional exceeds the maximum.
    #[error("order notional {notional} exceeds the maximum {max}")]
    MaxNotional {
        /// Σ |qty| × multiplier × reference price.
        notional: Money,
        /// Configured maximum.
        max: Money,
    },
    /// No reference price for a market order leg (needed for the notional check).
    #[error("no reference price for {instrument}: cannot check notional")]
    NoPrice {
        /// The leg.
        instrument: InstrumentId,
    },
    /// No account snapshot yet: the stress check cannot run.
    #[error("no account values yet: cannot run the stress check")]
    NoAccount,
    /// Worst-case stress requirement above the allowed share of available funds.
    #[error(
        "worst case {requirement} ({scenario}) exceeds {limit} ({pct}% of available funds {available}) by {excess}"
    )]
    StressLimit {
        /// Worst-case requirement of book + order.
        requirement: Money,
        /// The scenario it happens in.
        scenario: crate::risk::StressScenario,
        /// By how much it exceeds the limit.
        excess: Money,
        /// Allowed maximum.
        limit: Money,
        /// Configured percentage.
        pct: u32,
        /// Available funds used.
        available: Money,
    },
    /// The risk model could not evaluate the order.
    #[error("risk model failed: {0}")]
    Risk(#[from] RiskError),
    /// A normal (non-emergency) order for a Broken strategy.
    #[error("strategy {strategy} is broken ({reason}): only the emergency path may close it")]
    StrategyBroken {
        /// The strategy.
        strategy: StrategyId,
        /// Stable code of the broken reason (e.g. `broken.assigned`).
        reason: String,
    },
    /// A normal (non-emergency, non-hedge) order with a leg on an instrument that a Broken
    /// strategy holds: whatever strategy the order is for, only the emergency path may trade
    /// a Broken strategy's instruments.
    #[error(
        "{instrument} is a leg of broken strategy {strategy} ({}): only the emergency path may trade it",
        reason.as_deref().unwrap_or("reason not recorded")
    )]
    BrokenStrategyLeg {
        /// The locked instrument.
        instrument: InstrumentId,
        /// The Broken strategy holding it.
        strategy: StrategyId,
        /// Stable code of the broken reason, when the coordinator has it.
        reason: Option<String>,
    },
    /// The account is in forced unwind: only orders that reduce (and emergency exits) pass.
    #[error("account {account} is in forced unwind: new opening orders are refused")]
    ForcedUnwind {
        /// The account.
        account: AccountId,
    },
}

impl GateRefusal {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Halted { .. } => "gate.halted",
            Self::NotReducing { .. } => "gate.not_reducing",
            Self::Throttled { .. } => "gate.throttled",
            Self::MaxOrderQty { .. } => "gate.max_order_qty",
            Self::MaxNotional { .. } => "gate.max_notional",
            Self::NoPrice { .. } => "gate.no_price",
            Self::NoAccount => "gate.no_account",
            Self::StressLimit { .. } => "gate.stress_limit",
            Self::Risk(e) => e.code(),
            Self::StrategyBroken { .. } => "gate.strategy_broken",
            Self::BrokenStrategyLeg { .. } => "gate.broken_strategy_leg",
            Self::ForcedUnwind { .. } => "gate.forced_unwind",
        }
    }
}

/// Risk-model failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// No underlying price to stress from.
    #[error("no underlying price for {0}")]
    NoSpot(String),
    /// Fixed-point overflow.
    #[error("arithmetic overflow in the stress computation")]
    Overflow,
    /// No implied vol for an option: neither the broker's Greeks nor one implied from its mark.
    #[error(
        "no implied volatility for {0}: no Greeks in its quotes and none implied from its mark"
    )]
    NoVol(String),
    /// The pricing model refused its inputs (`code` is the pricing crate's stable code).
    #[error("the stress model refused the inputs for {subject}: {code}")]
    Pricing { subject: String, code: &'static str },
}

impl RiskError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSpot(_) => "risk.no_spot",
            Self::Overflow => "risk.overflow",
            Self::NoVol(_) => "risk.no_vol",
            Self::Pricing { .. } => "risk.pricing",
        }
    }
}

/// A malformed order intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    /// No legs.
    #[error("order intent has no legs")]
    NoLegs,
    /// A leg quantity ≤ 0.
    #[error("leg {instrument} quantity must be > 0, got {qty}")]
    NonPositiveQty {
        /// The leg.
        instrument: InstrumentId,
        /// Its quantity.
        qty: i64,
    },
    /// The same instrument twice.
    #[error("instrument {0} appears in two legs")]
    DuplicateLeg(InstrumentId),
    /// The leg's order failed model validation (prices, stop-limit consistency).
    #[error("leg {instrument}: {reason}")]
    BadLeg {
        /// The leg.
        instrument: InstrumentId,
        /// Model validation text.
        reason: String,
    },
}

impl IntentError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoLegs => "intent.no_legs",
            Self::NonPositiveQty { .. } => "intent.non_positive_qty",
            Self::DuplicateLeg(_) => "intent.duplicate_leg",
            Self::BadLeg { .. } => "intent.bad_leg",
        }
    }
}

/// Journal (durable write-ahead log) failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The journal refused or failed the write.
    #[error("journal write failed: {0}")]
    Write(String),
    /// The journal could not be read back.
    #[error("journal read failed: {0}")]
    Read(String),
    /// The durable store refused or failed the operation; `code` is the store's own code
    /// (e.g. `store.disk_full`, `store.closed`) and `detail` its message for a person.
    #[error("journal store failure while {during} ({code}): {detail}")]
    Store {
        /// What the journal was doing (`"appending"`, `"loading"`).
        during: &'static str,
        /// The store error's stable code.
        code: &'static str,
        /// The store error's message.
        detail: String,
    },
    /// A stored record cannot be decoded (written by a newer version, or damaged): start-up
    /// stops rather than replaying a journal with a hole in it.
    #[error("journal record {seq} ({kind}) cannot be decoded: {detail}")]
    Decode {
        /// Sequence number of the record.
        seq: i64,
        /// Its stored kind.
        kind: String,
        /// Why.
        detail: String,
    },
}

impl JournalError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Write(_) => "journal.write",
            Self::Read(_) => "journal.read",
            Self::Store { code, .. } => code,
            Self::Decode { .. } => "journal.decode",
        }
    }
}

/// Errors of the coordinator handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The pre-trade gate refused the order.
    #[error("refused by the pre-trade gate: {0}")]
    Refused(#[from] GateRefusal),
    /// The intent is malformed.
    #[error("invalid order intent: {0}")]
    Invalid(#[from] IntentError),
    /// The journal write that must precede the broker call failed; nothing was sent.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The broker refused a call.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// Unknown stop-loss id.
    #[error("unknown stop-loss {0}")]
    UnknownStop(u64),
    /// A stop on a position that already has a live managed stop: two live exits for the same
    /// quantity.
    #[error(
        "stop {stop} already protects {instrument}: a second stop would be a second live exit for the same position"
    )]
    StopExists {
        /// The instrument.
        instrument: InstrumentId,
        /// The live stop.
        stop: u64,
    },
    /// A stop on a position that a live exit group (Close / Flatten / Emergency) is closing.
    #[error(
        "group {group} is already closing {instrument}: a stop would be a second live exit for the same position"
    )]
    ExitWorking {
        /// The instrument.
        instrument: InstrumentId,
        /// The live exit group.
        group: GroupId,
    },
    /// The engine task is not running.
    #[error("the execution engine is not running")]
    EngineStopped,
}

impl ExecError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::Invalid(e) => e.code(),
            Self::Journal(e) => e.code(),
            Self::Broker(e) => e.code(),
            Self::UnknownStop(_) => "exec.unknown_stop",
            Self::StopExists { .. } => "stop.already_exists",
            Self::ExitWorking { .. } => "stop.exit_working",
            Self::EngineStopped => "exec.engine_stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_distinct() {
        let id = InstrumentId::from("SPY");
        let all = [
            GateRefusal::Halted {
                purpose: Purpose::Open,
            },
            GateRefusal::NotReducing {
                instrument: id.clone(),
                position: 0,
                signed_qty: 1,
            },
            GateRefusal::Throttled {
                needed: 1,
                available: 0,
                retry_after_ms: 20,
            },
            GateRefusal::MaxOrderQty {
                instrument: id.clone(),
                qty: 2,
                max: 1,
            },
            GateRefusal::MaxNotional {
                notional: Money::ZERO,
                max: Money::ZERO,
            },
            GateRefusal::NoPrice { instrument: id },
            GateRefusal::NoAccount,
            GateRefusal::StressLimit {
                requirement: Money::ZERO,
                scenario: crate::risk::StressScenario::moved(-300),
                excess: Money::ZERO,
                limit: Money::ZERO,
                pct: 90,
                available: Money::ZERO,
            },
            GateRefusal::Risk(RiskError::Overflow),
            GateRefusal::StrategyBroken {
                strategy: StrategyId(1),
                reason: "broken.assigned".into(),
            },
            GateRefusal::BrokenStrategyLeg {
                instrument: InstrumentId::from("SPY"),
                strategy: StrategyId(1),
                reason: None,
            },
            GateRefusal::ForcedUnwind {
                account: AccountId::new("DU1"),
            },
        ];
        let mut codes: Vec<_> = all.iter().map(GateRefusal::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(
            ExecError::from(GateRefusal::NoAccount).code(),
            "gate.no_account"
        );
    }
}
