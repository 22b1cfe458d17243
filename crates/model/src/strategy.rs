//! Strategies: a named set of legs with a kind and a lifecycle state machine.
//!
//! Legal transitions (anything else is [`StrategyError::IllegalTransition`]):
//! - Opening → Open | Closing | Closed | Broken
//! - Open → Closing | Broken
//! - Closing → Closed | Open (close aborted) | Broken
//! - Broken → Closing (emergency close) | Closed
//! - Closed → nothing (terminal)

use crate::ids::{AccountId, InstrumentId, OrderId, StrategyId};
use crate::leg::Leg;
use serde::{Deserialize, Serialize};

/// Recognized strategy shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StrategyKind {
    /// Long put < short put < short call < long call, equal sizes, one expiry.
    IronCondor,
    /// Iron condor whose short put and short call share a strike.
    IronButterfly,
    /// Two options, same right and expiry, opposite signs, equal sizes.
    Vertical,
    /// Put + call, same strike and expiry, same sign.
    Straddle,
    /// Put + call, different strikes, same expiry, same sign.
    Strangle,
    /// 1 / −2 / 1 (or −1 / 2 / −1) same right and expiry.
    Butterfly,
    /// Stock plus short calls, or short stock plus short puts.
    Covered,
    /// Anything else.
    Custom,
}

impl StrategyKind {
    /// Stable snake_case name (`iron_condor`, `vertical`...), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IronCondor => "iron_condor",
            Self::IronButterfly => "iron_butterfly",
            Self::Vertical => "vertical",
            Self::Straddle => "straddle",
            Self::Strangle => "strangle",
            Self::Butterfly => "butterfly",
            Self::Covered => "covered",
            Self::Custom => "custom",
        }
    }
}

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StrategyState {
    /// Opening orders are working.
    Opening,
    /// All legs are on.
    Open,
    /// Closing orders are working.
    Closing,
    /// Flat; terminal.
    Closed,
    /// Legs no longer match the strategy (assignment, partial fill, missing leg).
    Broken,
}

/// Why a strategy is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokenReason {
    /// A short leg was assigned.
    Assigned {
        /// The assigned leg.
        instrument: InstrumentId,
    },
    /// A long leg was exercised.
    Exercised {
        /// The exercised leg.
        instrument: InstrumentId,
    },
    /// A leg is missing from the broker's positions.
    LegMissing {
        /// The missing leg.
        instrument: InstrumentId,
    },
    /// Broker quantity differs from the strategy's.
    QtyMismatch {
        /// The leg.
        instrument: InstrumentId,
        /// Quantity the strategy expects.
        expected: i64,
        /// Quantity the broker reports.
        actual: i64,
    },
    /// An opening or closing combo filled only partly.
    PartialFill {
        /// The order.
        order_id: OrderId,
    },
    /// Marked broken by the user.
    Manual {
        /// User note.
        note: String,
    },
}

impl BrokenReason {
    /// What happened, in a trader's words: "SPY 21MAR25 440 P assigned", "SPY 21MAR25 435 P
    /// missing", "SPY 21MAR25 435 P: 1 held, 2 expected", "order 12 filled in part".
    pub fn describe(&self) -> String {
        let name = |i: &InstrumentId| {
            crate::instrument::Instrument::from_occ(i.as_str())
                .map_or_else(|_| i.as_str().trim().to_owned(), |x| x.label())
        };
        match self {
            Self::Assigned { instrument } => format!("{} assigned", name(instrument)),
            Self::Exercised { instrument } => format!("{} exercised", name(instrument)),
            Self::LegMissing { instrument } => format!("{} missing", name(instrument)),
            Self::QtyMismatch {
                instrument,
                expected,
                actual,
            } => format!("{}: {actual} held, {expected} expected", name(instrument)),
            Self::PartialFill { order_id } => format!("order {order_id} filled in part"),
            Self::Manual { note } => format!("marked by you: {note}"),
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Assigned { .. } => "broken.assigned",
            Self::Exercised { .. } => "broken.exercised",
            Self::LegMissing { .. } => "broken.leg_missing",
            Self::QtyMismatch { .. } => "broken.qty_mismatch",
            Self::PartialFill { .. } => "broken.partial_fill",
            Self::Manual { .. } => "broken.manual",
        }
    }
}

/// Strategy errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    /// The requested state change is not allowed.
    #[error("illegal strategy transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// Current state.
        from: StrategyState,
        /// Requested state.
        to: StrategyState,
    },
}

impl StrategyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IllegalTransition { .. } => "strategy.illegal_transition",
        }
    }
}

/// A multi-leg position managed as one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Identifier.
    pub id: StrategyId,
    /// Account holding the legs.
    pub account: AccountId,
    /// User-visible name.
    pub name: String,
    /// Shape.
    pub kind: StrategyKind,
    /// Legs.
    pub legs: Vec<Leg>,
    /// Lifecycle state; change it only through the transition methods.
    pub state: StrategyState,
    /// Set when (and only while) the state is [`StrategyState::Broken`] or was closed from it.
    pub broken_reason: Option<BrokenReason>,
}

impl StrategyState {
    /// Whether `self -> to` is a legal transition.
    pub fn can_transition(self, to: StrategyState) -> bool {
        use StrategyState::*;
        matches!(
            (self, to),
            (Opening, Open | Closing | Closed | Broken)
                | (Open, Closing | Broken)
                | (Closing, Closed | Open | Broken)
                | (Broken, Closing | Closed)
        )
    }
}

impl Strategy {
    fn go(&mut self, to: StrategyState) -> Result<(), StrategyError> {
        if !self.state.can_transition(to) {
            return Err(StrategyError::IllegalTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }

    /// Opening orders filled: Opening → Open (or an aborted close: Closing → Open).
    pub fn mark_open(&mut self) -> Result<(), StrategyError> {
        self.go(StrategyState::Open)
    }

    /// Closing orders sent. From Broken this is the emergency-close path.
    pub fn begin_close(&mut self) -> Result<(), StrategyError> {
        self.go(StrategyState::Closing)
    }

    /// All legs flat.
    pub fn mark_closed(&mut self) -> Result<(), StrategyError> {
        self.go(StrategyState::Closed)
    }

    /// Legs no longer match the strategy.
    pub fn mark_broken(&mut self, reason: BrokenReason) -> Result<(), StrategyError> {
        self.go(StrategyState::Broken)?;
        self.broken_reason = Some(reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs;
    use StrategyState::*;

    #[test]
    fn a_broken_reason_reads_as_a_trader_says_it() {
        let put = stubs::put(440).id();
        assert_eq!(
            BrokenReason::Assigned {
                instrument: put.clone()
            }
            .describe(),
            "SPY 17JAN25 440 P assigned"
        );
        assert_eq!(
            BrokenReason::QtyMismatch {
                instrument: put,
                expected: -2,
                actual: -1
            }
            .describe(),
            "SPY 17JAN25 440 P: -1 held, -2 expected"
        );
        assert_eq!(
            BrokenReason::LegMissing {
                instrument: InstrumentId("SPY".into())
            }
            .describe(),
            "SPY missing"
        );
    }

    #[test]
    fn transition_table() {
        let all = [Opening, Open, Closing, Closed, Broken];
        let legal = [
            (Opening, Open),
            (Opening, Closing),
            (Opening, Closed),
            (Opening, Broken),
            (Open, Closing),
            (Open, Broken),
            (Closing, Closed),
            (Closing, Open),
            (Closing, Broken),
            (Broken, Closing),
            (Broken, Closed),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_transition(to),
                    legal.contains(&(from, to)),
                    "{from:?}->{to:?}"
                );
            }
        }
    }

    #[test]
    fn methods_enforce_transitions() {
        let mut s = stubs::iron_condor_strategy();
        s.state = Opening;
        s.mark_open().unwrap();
        let reason = BrokenReason::Assigned {
            instrument: s.legs[1].instrument.id(),
        };
        s.mark_broken(reason.clone()).unwrap();
        assert_eq!(s.broken_reason, Some(reason));
        assert_eq!(
            s.mark_open().unwrap_err(),
            StrategyError::IllegalTransition {
                from: Broken,
                to: Open
            }
        );
        s.begin_close().unwrap();
        s.mark_closed().unwrap();
        let e = s.mark_open().unwrap_err();
        assert_eq!(e.code(), "strategy.illegal_transition");
        assert_eq!(s.state, Closed);
    }
}
