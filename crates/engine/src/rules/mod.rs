//! Risk rules from a config file: [`config`] (TOML schema, errors with file/line/field,
//! validation), [`watch`] (hot reload keeping the last good config), [`eval`] (pure
//! evaluation into [`Decision`]s and alerts) and [`decision`] (decisions and the
//! [`RuleState`] the caller keeps between evaluations).

pub mod config;
pub mod decision;
pub mod distance;
pub mod eval;
#[cfg(any(test, feature = "stubs"))]
pub mod stubs;
pub mod watch;

pub use config::{
    ConfigError, RiskConfig, Rule, RuleAction, RuleCommon, RuleKind, RuleSeverity, field_at,
    line_col,
};
pub use decision::{AccountMarks, Decision, Outcome, RuleState, Subject};
pub use distance::{DistanceInput, DistanceStatus, RuleDistance, strategy_rule_distances};
pub use eval::{
    EvalIndex, EvalInput, Evaluation, Session, evaluate, evaluate_indexed, evaluate_position,
};
pub use watch::{ConfigSource, ConfigWatcher, Reload, SavedRiskConfig, WatchHandle};

#[cfg(test)]
mod tests;
