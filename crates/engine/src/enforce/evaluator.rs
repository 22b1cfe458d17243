//! The seam between the enforcer and the risk rules: [`RuleEvaluator`] takes the live picture
//! and returns [`Decision`]s. The rules module implements it; tests use fakes.

use crate::alert::{Alert, Severity};
use crate::live::PositionView;
use crate::strategies::StrategyView;
use serde::Serialize;
use std::collections::HashMap;
use tradeguard_model::{AccountId, AccountSnapshot, Instrument, Price, StrategyId, Timestamp};

/// What the rules see at one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    /// Clock time.
    pub now: Timestamp,
    /// Every open position (missing / stale marks included and flagged).
    pub positions: &'a [PositionView],
    /// Latest account values.
    pub accounts: &'a [AccountSnapshot],
    /// Strategies of the guard's strategy book (recognized from these positions, plus the
    /// managed / Broken ones), marked from `positions`.
    pub strategies: &'a [StrategyView],
    /// Underlying prices by symbol (from the quotes of the positions), for pin risk.
    pub spots: &'a HashMap<String, Price>,
    /// The exits people attached to their entries, as rules scoped to each strategy
    /// ([`crate::entry`]): evaluated with the file's rules, not held back by its dry-run.
    pub attached: &'a [crate::rules::Rule],
}

/// What a fired rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RuleAction {
    /// Alert only.
    Alert,
    /// Close the listed positions.
    Flatten,
}

/// One position to close: the instrument and its signed quantity when the rule fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseLeg {
    /// Instrument.
    pub instrument: Instrument,
    /// Signed position quantity to take to zero (+ long, − short).
    pub qty: i64,
}

/// A fired rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Rule id (e.g. `max_contracts`), used in codes and the audit log.
    pub rule: String,
    /// How bad.
    pub severity: Severity,
    /// Alert or flatten.
    pub action: RuleAction,
    /// The rule's own dry-run flag: log and audit the orders, send none.
    pub dry_run: bool,
    /// Account.
    pub account: AccountId,
    /// Strategy concerned, if any.
    pub strategy: Option<StrategyId>,
    /// Positions to close (for `Flatten`).
    pub close: Vec<CloseLeg>,
    /// Why, for a person.
    pub reason: String,
    /// A fired account loss limit (daily loss, drawdown, trailing maximum loss) that flattens:
    /// opening orders are locked in the guard too (the trading state goes to `Reducing`) until
    /// the trader unlocks them.
    pub locks_opening: bool,
    /// The close goes out as the hybrid exit (limit orders for a moment, then market for the
    /// rest once their cancels are confirmed): the `stop_loss` rule's.
    pub hybrid_exit: bool,
}

/// Suffix of the rule id of a decision that could not be evaluated for want of data (a mark,
/// an account value): `<rule id>.no_data`.
pub const NO_DATA_SUFFIX: &str = ".no_data";

impl Decision {
    /// The rule could not be evaluated for want of data (its id ends in [`NO_DATA_SUFFIX`]).
    pub fn is_no_data(&self) -> bool {
        self.rule.ends_with(NO_DATA_SUFFIX)
    }

    /// Identity of the condition (rule, account, strategy, instruments) used to alert once per
    /// new breach rather than on every evaluation.
    pub fn key(&self) -> String {
        let mut ids: Vec<String> = self
            .close
            .iter()
            .map(|l| l.instrument.id().to_string())
            .collect();
        ids.sort_unstable();
        format!(
            "{}|{}|{}|{}",
            self.rule,
            self.account,
            self.strategy.map_or_else(String::new, |s| s.to_string()),
            ids.join(",")
        )
    }
}

/// Evaluates the configured rules. `&mut self`: rules may keep state (trailing-stop high-water
/// marks); the state survives an enforcer restart because the guard owns the evaluator.
pub trait RuleEvaluator: Send {
    /// Number of enabled rules (for "rules evaluated" in the status).
    fn rule_count(&self) -> usize;
    /// Evaluates every rule against the input.
    fn evaluate(&mut self, input: &EvalInput<'_>) -> Vec<Decision>;
    /// Names of the enabled local protections (shown as "local" in the status).
    fn protections(&self) -> Vec<String> {
        Vec::new()
    }
    /// Alerts the evaluator raised outside any decision since the last call (a configuration
    /// reload applied or rejected); the enforcer raises them after each evaluation.
    fn drain_alerts(&mut self) -> Vec<Alert> {
        Vec::new()
    }
    /// The state the rules carry between evaluations (trailing-stop highs, day-start and peak
    /// account values), to persist so it survives a restart; `None` when there is none.
    fn durable_state(&self) -> Option<crate::rules::RuleState> {
        None
    }
    /// Restores the state persisted by an earlier run (start-up).
    fn restore_state(&mut self, _state: crate::rules::RuleState) {}
    /// Start-up, once: the last good rules configuration an earlier run kept (`None`: none
    /// was). An evaluator whose file cannot be used now runs with it instead, and the next
    /// [`Self::drain_alerts`] says so (stamped `now`).
    fn restore_config(&mut self, _saved: Option<crate::rules::SavedRiskConfig>, _now: Timestamp) {}
    /// The text of the configuration in effect, to keep as the last good one (`None` for
    /// evaluators without a file, or while no valid configuration is known).
    fn good_config(&self) -> Option<std::sync::Arc<crate::rules::ConfigSource>> {
        None
    }
    /// The rules' own global dry-run (no rule sends orders), as opposed to the guard's.
    fn global_dry_run(&self) -> bool {
        false
    }
}

/// No rules (a guard that only reconciles, unwinds and reports).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRules;

impl RuleEvaluator for NoRules {
    fn rule_count(&self) -> usize {
        0
    }
    fn evaluate(&mut self, _input: &EvalInput<'_>) -> Vec<Decision> {
        Vec::new()
    }
}
