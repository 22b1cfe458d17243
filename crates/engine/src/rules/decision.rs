//! What rule evaluation produces: [`Decision`]s (with the intents to submit) and the
//! [`RuleState`] the caller keeps between evaluations (trailing-stop high-water marks,
//! per-account day-start and peak values, which alerts were already raised).

use super::config::RuleAction;
use crate::alert::Severity;
use crate::intent::OrderIntent;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use tradeguard_model::{AccountId, InstrumentId, Money, StrategyId, Timestamp};

/// What a decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// One position.
    Position {
        /// Account.
        account: AccountId,
        /// Instrument.
        instrument: InstrumentId,
    },
    /// One strategy.
    Strategy {
        /// Account.
        account: AccountId,
        /// Strategy.
        strategy: StrategyId,
    },
    /// A whole account.
    Account {
        /// Account.
        account: AccountId,
    },
    /// Every position in the rule's scope.
    Global,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Position {
                account,
                instrument,
            } => write!(f, "position {account}/{instrument}"),
            Self::Strategy { account, strategy } => write!(f, "strategy {account}/{strategy}"),
            Self::Account { account } => write!(f, "account {account}"),
            Self::Global => f.write_str("all positions"),
        }
    }
}

/// Result of one rule on one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The rule's trigger is met.
    Fired,
    /// The rule could not be checked (no or stale mark, stale account values ...): said
    /// explicitly, never skipped silently.
    CannotEvaluate,
    /// The rule fired on a Broken strategy (or the Broken part of a position): its close is
    /// the assignment guard's job, so no intent is produced.
    LeftToAssignmentGuard,
}

/// One decision of one rule about one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Rule id from the config.
    pub rule_id: String,
    /// Rule kind (`max_contracts`, `trailing_stop`, ...).
    pub rule: &'static str,
    /// What it is about.
    pub subject: Subject,
    /// Fired / cannot evaluate / left to the assignment guard.
    pub outcome: Outcome,
    /// Severity from the config (Warning for `CannotEvaluate`).
    pub severity: Severity,
    /// Alert or flatten.
    pub action: RuleAction,
    /// The rule (or the global switch) is in dry-run: nothing is sent.
    pub dry_run: bool,
    /// For a person, with the numbers.
    pub reason: String,
    /// Orders to submit now (empty unless fired, action flatten and not dry-run).
    pub intents: Vec<OrderIntent>,
    /// In dry-run: the orders that would have been sent (for the log).
    pub would_send: Vec<OrderIntent>,
}

impl Decision {
    /// Stable code: `rules.<kind>.fired`, `rules.<kind>.no_data` or `rules.<kind>.broken`.
    pub fn code(&self) -> String {
        let o = match self.outcome {
            Outcome::Fired => "fired",
            Outcome::CannotEvaluate => "no_data",
            Outcome::LeftToAssignmentGuard => "broken",
        };
        format!("rules.{}.{o}", self.rule)
    }
}

/// Day-start and peak net liquidation of an account (for daily loss and drawdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMarks {
    /// Trading day `day_start` belongs to.
    pub day: NaiveDate,
    /// Net liquidation at the first fresh snapshot of `day`.
    pub day_start: Money,
    /// Highest net liquidation seen since tracking began.
    pub peak: Money,
    /// Highest end-of-day balance (each day's first value) since tracking began.
    #[serde(default)]
    pub eod_high: Money,
}

/// State the rules carry between evaluations. The caller owns it and should persist it
/// (serde) so trailing stops and day-start values survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Trailing stops: rule id → strategy → high-water P&L since activation.
    pub trailing: BTreeMap<String, BTreeMap<StrategyId, Money>>,
    /// Per account day-start and peak values.
    pub accounts: BTreeMap<AccountId, AccountMarks>,
    /// (rule, subject) pairs whose alert was raised and that have not cleared since.
    #[serde(skip)]
    pub(crate) alerted: HashSet<u64>,
    /// P&L samples of each (P&L rule, strategy) over the confirmation window.
    #[serde(skip)]
    pub(crate) pnl_window:
        BTreeMap<(String, StrategyId), std::collections::VecDeque<(Timestamp, Money)>>,
}

impl RuleState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// High-water mark of a trailing stop, if activated.
    pub fn trailing_high(&self, rule_id: &str, strategy: StrategyId) -> Option<Money> {
        self.trailing.get(rule_id)?.get(&strategy).copied()
    }
}

/// Key of a (rule, subject) pair for alert de-duplication (FNV-1a).
pub(crate) fn alert_key(rule_id: &str, subject: &Subject) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(rule_id.as_bytes());
    match subject {
        Subject::Position {
            account,
            instrument,
        } => {
            feed(b"p");
            feed(account.as_str().as_bytes());
            feed(instrument.as_str().as_bytes());
        }
        Subject::Strategy { account, strategy } => {
            feed(b"s");
            feed(account.as_str().as_bytes());
            feed(&strategy.0.to_le_bytes());
        }
        Subject::Account { account } => {
            feed(b"a");
            feed(account.as_str().as_bytes());
        }
        Subject::Global => feed(b"g"),
    }
    h
}
