//! [`OrderPath`]: every way an order can reach the broker, who asks for it, and whether the
//! global dry-run holds it back. This is the one place the dry-run contract is written down:
//! the Guard card and the README list the paths that still send in dry-run from here, and
//! [`paths_of`] classifies every coordinator [`Purpose`] (a new purpose does not compile until
//! it is classified).
//!
//! Dry-run holds back what the rules decide on their own and the closes a person confirms from
//! a preview that said "dry-run: nothing will be sent". It does not hold back the protections
//! the README names (an assignment's emergency close, the hedge of the guard's own order while
//! it legs in, a stop-loss a person placed) nor a forced unwind a person switched on.

use crate::intent::Purpose;
use serde::Serialize;

/// One way an order reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPath {
    /// A risk rule the trader wrote fires a close (flatten action).
    RuleClose,
    /// A person confirms a flatten preview (a strategy, an account, everything).
    ConfirmedFlatten,
    /// A person switched forced unwind on for an account.
    ForcedUnwind,
    /// The assignment guard closes what an assignment, exercise or missing leg broke.
    AssignmentClose,
    /// The hedge of the unmatched quantity of the guard's own multi-leg order while it legs in.
    LeggingHedge,
    /// A stop-loss a person placed (or a broker-side backstop) exits.
    StopLoss,
    /// An order a person entered.
    PersonOrder,
}

impl OrderPath {
    /// Every path.
    pub const ALL: [OrderPath; 7] = [
        Self::RuleClose,
        Self::ConfirmedFlatten,
        Self::ForcedUnwind,
        Self::AssignmentClose,
        Self::LeggingHedge,
        Self::StopLoss,
        Self::PersonOrder,
    ];

    /// `true` when the global dry-run stops this path from sending (it decides, logs and
    /// audits what it would send).
    pub const fn held_by_dry_run(self) -> bool {
        matches!(self, Self::RuleClose | Self::ConfirmedFlatten)
    }

    /// What it is, for a person.
    pub const fn label(self) -> &'static str {
        match self {
            Self::RuleClose => "closes your risk rules fire",
            Self::ConfirmedFlatten => "flattens you confirm from a preview",
            Self::ForcedUnwind => "a forced unwind you switch on",
            Self::AssignmentClose => "emergency closes of strategies an assignment broke",
            Self::LeggingHedge => "hedges of the guard's own orders while they leg in",
            Self::StopLoss => "stop-losses you placed",
            Self::PersonOrder => "orders you enter",
        }
    }

    /// The paths that still send while the global dry-run is on.
    pub fn sent_in_dry_run() -> impl Iterator<Item = OrderPath> {
        Self::ALL.into_iter().filter(|p| !p.held_by_dry_run())
    }
}

/// The paths whose orders carry `purpose` (exhaustive over [`Purpose`]).
pub const fn paths_of(purpose: Purpose) -> &'static [OrderPath] {
    match purpose {
        Purpose::Open => &[OrderPath::PersonOrder],
        Purpose::Close => &[OrderPath::RuleClose, OrderPath::PersonOrder],
        Purpose::Flatten => &[OrderPath::RuleClose, OrderPath::ConfirmedFlatten],
        Purpose::Emergency => &[OrderPath::AssignmentClose, OrderPath::ForcedUnwind],
        Purpose::Hedge => &[OrderPath::LeggingHedge],
        Purpose::StopLoss => &[OrderPath::StopLoss],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_belongs_to_a_path_and_every_path_to_a_purpose() {
        let purposes = [
            Purpose::Open,
            Purpose::Close,
            Purpose::Flatten,
            Purpose::Emergency,
            Purpose::Hedge,
            Purpose::StopLoss,
        ];
        for p in purposes {
            assert!(!paths_of(p).is_empty(), "{p:?}");
        }
        for path in OrderPath::ALL {
            assert!(
                purposes.iter().any(|p| paths_of(*p).contains(&path)),
                "{path:?} has no purpose"
            );
        }
    }

    #[test]
    fn dry_run_holds_back_what_rules_decide_and_confirmed_flattens_only() {
        let held: Vec<_> = OrderPath::ALL
            .into_iter()
            .filter(|p| p.held_by_dry_run())
            .collect();
        assert_eq!(
            held,
            vec![OrderPath::RuleClose, OrderPath::ConfirmedFlatten]
        );
        // An emergency order (assignment close, forced unwind) and a hedge are never held.
        for p in [Purpose::Emergency, Purpose::Hedge, Purpose::StopLoss] {
            assert!(paths_of(p).iter().all(|x| !x.held_by_dry_run()), "{p:?}");
        }
    }
}
