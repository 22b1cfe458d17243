//! The enforcement runtime (issue 7): everything that keeps the guard enforcing while the app
//! or the headless `tradeguard guard` runs.
//!
//! - [`guard`]: [`Guard`] — the one place the runtime is wired; [`Guard::start`] + handle;
//! - [`supervisor`]: restarts crashed tasks with bounded back-off, alerts, heartbeats;
//! - `pump` (event stream → live book), `enforcer` (rules → decisions → closes),
//!   [`reconcile`] (broker wins; stalled-stream detection), [`status`] (periodic summary);
//! - [`closer`]: close jobs with bounded retries and "needs manual action";
//! - [`flatten`]: two-step (preview, confirm) flatten and forced-unwind toggle for the UI;
//! - [`evaluator`]: the [`RuleEvaluator`] seam to the rules; [`risk_rules`]: [`RiskRules`], the
//!   evaluator over the TOML risk rules (hot reload, trailing state); market hours come from the assignment guard's calendar ([`MarketHours`]);
//! - `strategy_link`: the guard's strategy book and its link to the assignment guard;
//! - [`config`], [`error`], [`alerter`].

pub mod alerter;
pub mod closer;
pub mod config;
pub(crate) mod core;
pub(crate) mod enforcer;
pub mod error;
pub mod evaluator;
pub mod flatten;
pub mod guard;
pub mod order_paths;
pub(crate) mod pump;
pub mod reconcile;
pub mod risk_rules;
pub mod status;
pub(crate) mod strategy_link;
pub mod supervisor;

pub use crate::assignment::{MarketHours, UsEquityHours};
pub use closer::{CloseJob, CloseState, CloseTracker};
pub use config::EnforceConfig;
pub use error::EnforceError;
pub use evaluator::{
    CloseLeg, Decision, EvalInput, NO_DATA_SUFFIX, NoRules, RuleAction, RuleEvaluator,
};
pub use flatten::{FlattenError, FlattenPreview, FlattenProgress, FlattenScope, FlattenTicket};
pub use guard::{Guard, GuardDeps};
pub use order_paths::{OrderPath, paths_of};
pub use risk_rules::RiskRules;
pub use status::{Protection, ProtectionSite, StatusSummary};
pub use strategy_link::CriticalViaAlerts;
pub use supervisor::{Heartbeats, TaskHealth};
