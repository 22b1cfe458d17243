//! [`RiskRules`]: the [`RuleEvaluator`] over the risk rules of a TOML file
//! ([`crate::rules`]) — the one the desktop app and `tradeguard guard` give the enforcer.
//!
//! - Hot reload: the file is polled (through [`ConfigWatcher`]) at most every `reload_every`
//!   of clock time, inside the evaluation, so it runs on virtual time in tests. A good edit
//!   applies at the next evaluation; a bad edit keeps the last good configuration and raises
//!   one `rules.config_rejected` alert naming the file, line, field and reason.
//! - A bad file at start never disarms the guard ([`RiskRules::watch`]): the rules run with the
//!   last good configuration the guard kept in its journal ([`RuleEvaluator::restore_config`])
//!   or, when there is none, with no rule in dry-run; one **Critical** `rules.config_rejected`
//!   alert names the file, line, field and what runs instead. The file stays watched: fixing it
//!   applies it without a restart. (The assignment guard, reconciliation and forced unwind do
//!   not depend on this file at all.)
//! - Trailing state (high-water marks, day-start and peak account values) lives in the
//!   [`RuleState`] owned here; the guard owns the evaluator, so it survives enforcer restarts.
//! - Each rule decision becomes an enforcer [`Decision`]: fired flatten decisions carry the
//!   positions their intents close (in dry-run, the ones they would close); "cannot evaluate"
//!   and "left to the assignment guard" become alerts under `<rule id>.no_data` /
//!   `<rule id>.broken`, so each keeps its own alert.

use crate::alert::{Alert, Severity};
use crate::assignment::MarketHours;
use crate::enforce::evaluator::{
    CloseLeg, Decision, EvalInput, NO_DATA_SUFFIX, RuleAction, RuleEvaluator,
};
use crate::intent::OrderIntent;
use crate::live::PositionView;
use crate::rules::{
    self, ConfigError, ConfigSource, ConfigWatcher, Outcome, Reload, RiskConfig, RuleState,
    SavedRiskConfig, Session, Subject,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_model::{AccountId, InstrumentId, Timestamp};

/// Default period of the configuration file poll.
pub const DEFAULT_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What runs while the file rejected at start is not fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fallback {
    /// No rule, in dry-run: no good configuration is known.
    NoRules,
    /// The last good configuration kept by an earlier run.
    LastGood(Timestamp),
    /// A last good configuration was kept but does not validate any more (it is named).
    LastGoodInvalid(ConfigError),
}

/// The file could not be used at start.
#[derive(Debug, Clone)]
struct StartRejection {
    error: ConfigError,
    fallback: Fallback,
    /// Its Critical alert was raised.
    announced: bool,
}

/// The risk rules as a [`RuleEvaluator`] (see the module docs).
pub struct RiskRules {
    watcher: Option<ConfigWatcher>,
    config: Arc<RiskConfig>,
    /// The text of `config` (the file's, or the last good one restored), when known.
    source: Option<Arc<ConfigSource>>,
    /// Set while the file rejected at start has not been fixed.
    rejected_at_start: Option<StartRejection>,
    state: RuleState,
    hours: Arc<dyn MarketHours>,
    reload_every: Duration,
    next_poll: Option<Timestamp>,
    alerts: Vec<Alert>,
}

impl std::fmt::Debug for RiskRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskRules")
            .field("path", &self.config.path)
            .field("rules", &self.config.rules.len())
            .finish_non_exhaustive()
    }
}

impl RiskRules {
    /// Loads the rules from `path` (which must be valid now) and watches it for edits.
    /// `hours` gives the exchange date and close (days to expiry, pin risk). The guard's
    /// callers use [`Self::watch`], which never fails.
    pub fn load(path: impl AsRef<Path>, hours: Arc<dyn MarketHours>) -> Result<Self, ConfigError> {
        let rules = Self::watch(path, hours);
        match rules.rejected_at_start {
            Some(r) => Err(r.error),
            None => Ok(rules),
        }
    }

    /// Watches the rules of `path` whatever the file holds now: a valid file is in effect at
    /// once; a bad or missing one leaves no rule in dry-run (until [`Self::restore_config`]
    /// brings the last good configuration) and raises one Critical `rules.config_rejected`
    /// alert; the first valid edit applies. `hours` gives the exchange date and close.
    pub fn watch(path: impl AsRef<Path>, hours: Arc<dyn MarketHours>) -> Self {
        let path = path.as_ref();
        let (watcher, error) = ConfigWatcher::watch(path, RiskConfig::none(path));
        let mut rules = Self::from_config(RiskConfig::none(path), hours);
        rules.config = watcher.current();
        rules.source = watcher.source();
        rules.watcher = Some(watcher);
        rules.rejected_at_start = error.map(|error| StartRejection {
            error,
            fallback: Fallback::NoRules,
            announced: false,
        });
        rules
    }

    /// Fixed rules, no file (tests, embedded defaults).
    pub fn from_config(config: RiskConfig, hours: Arc<dyn MarketHours>) -> Self {
        Self {
            watcher: None,
            config: Arc::new(config),
            source: None,
            rejected_at_start: None,
            state: RuleState::new(),
            hours,
            reload_every: DEFAULT_RELOAD_EVERY,
            next_poll: None,
            alerts: Vec::new(),
        }
    }

    /// Polls the file at most this often (clock time).
    #[must_use]
    pub fn with_reload_every(mut self, every: Duration) -> Self {
        self.reload_every = every;
        self
    }

    /// Starts from a persisted rule state (trailing highs, day-start values).
    #[must_use]
    pub fn with_state(mut self, state: RuleState) -> Self {
        self.state = state;
        self
    }

    /// The rule state (persist it to keep trailing stops across restarts).
    pub fn state(&self) -> &RuleState {
        &self.state
    }

    /// The configuration in effect (the last good one).
    pub fn config(&self) -> Arc<RiskConfig> {
        Arc::clone(&self.config)
    }

    /// Why the file could not be used at start, while it is not fixed.
    pub fn start_error(&self) -> Option<&ConfigError> {
        self.rejected_at_start.as_ref().map(|r| &r.error)
    }

    /// The Critical alert of a file rejected at start, once.
    fn announce_start(&mut self, now: Timestamp) {
        let Some(r) = self.rejected_at_start.as_mut() else {
            return;
        };
        if r.announced {
            return;
        }
        r.announced = true;
        let instead = match &r.fallback {
            Fallback::LastGood(at) => format!(
                "The guard runs with the last good risk rules it kept (from {}, in force since {at}): {} enabled rule(s){}",
                self.config.path.display(),
                self.config.enabled_rules().count(),
                if self.config.dry_run {
                    ", global dry-run on"
                } else {
                    ""
                }
            ),
            Fallback::NoRules => {
                "The guard runs with NO risk rule, in dry-run (no earlier good rules are known)"
                    .to_owned()
            }
            Fallback::LastGoodInvalid(e) => format!(
                "The guard runs with NO risk rule, in dry-run: the last good rules it kept no longer validate ({e}, {})",
                e.code()
            ),
        };
        let message = format!(
            "Risk rules file rejected at start: {} ({}). {instead}. The file is watched: fix it and it applies without a restart. The assignment guard, reconciliation and forced unwind run as usual.",
            r.error,
            r.error.code()
        );
        self.alert(now, Severity::Critical, "rules.config_rejected", message);
    }

    fn alert(&mut self, now: Timestamp, severity: Severity, code: &str, message: String) {
        self.alerts.push(Alert {
            ts: now,
            severity,
            code: code.to_owned(),
            message,
            group: None,
            stop: None,
        });
    }

    fn poll(&mut self, now: Timestamp) {
        self.announce_start(now);
        if self.next_poll.is_some_and(|t| now < t) {
            return;
        }
        self.next_poll = Some(now.plus(self.reload_every));
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        match w.poll() {
            Reload::Unchanged => {}
            Reload::Applied(cfg) => {
                let n = cfg.enabled_rules().count();
                let path = cfg.path.display().to_string();
                self.config = cfg;
                self.source = w.source();
                let fixed = if self.rejected_at_start.take().is_some() {
                    " (the file rejected at start is fixed)"
                } else {
                    ""
                };
                self.alert(
                    now,
                    Severity::Info,
                    "rules.config_applied",
                    format!(
                        "risk rules reloaded from {path}: {n} enabled rule(s) in force{}{fixed}",
                        if self.config.dry_run {
                            ", global dry-run on"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Reload::Rejected(e) => {
                let path = self.config.path.display().to_string();
                self.alert(
                    now,
                    Severity::Warning,
                    "rules.config_rejected",
                    format!(
                        "risk rules edit rejected: {e} ({}); the last good configuration from {path} stays in force",
                        e.code()
                    ),
                );
            }
        }
    }
}

/// The positions an intent closes, as signed position quantities.
fn legs_of(intents: &[OrderIntent]) -> Vec<CloseLeg> {
    intents
        .iter()
        .flat_map(|i| i.legs.iter())
        .map(|l| CloseLeg {
            instrument: l.instrument.clone(),
            qty: l.signed_qty().saturating_neg(),
        })
        .collect()
}

/// The positions by account and instrument id, built once per evaluation: a rule can decide
/// about every position (a position cap over 500 of them), and formatting each position's OCC
/// id again for each decision kept a core busy.
type PositionIndex<'a> = HashMap<(&'a AccountId, InstrumentId), &'a PositionView>;

fn index(positions: &[PositionView]) -> PositionIndex<'_> {
    positions
        .iter()
        .map(|p| ((&p.account, p.instrument.id()), p))
        .collect()
}

/// One rule decision as an enforcer decision.
fn convert(d: rules::Decision, positions: &PositionIndex<'_>) -> Decision {
    let (mut account, strategy) = match &d.subject {
        Subject::Position { account, .. } | Subject::Account { account } => {
            (Some(account.clone()), None)
        }
        Subject::Strategy { account, strategy } => (Some(account.clone()), Some(*strategy)),
        Subject::Global => (None, None),
    };
    let fired = d.outcome == Outcome::Fired;
    let flatten = fired && d.action == rules::RuleAction::Flatten;
    let mut close = if d.dry_run {
        legs_of(&d.would_send)
    } else {
        legs_of(&d.intents)
    };
    if close.is_empty()
        && let Subject::Position {
            account: a,
            instrument,
        } = &d.subject
    {
        // Alert-only decisions about one position name it (it also keeps their alerts apart).
        close.extend(positions.get(&(a, instrument.clone())).map(|p| CloseLeg {
            instrument: p.instrument.clone(),
            qty: p.qty,
        }));
    }
    if account.is_none() {
        account = d
            .intents
            .iter()
            .chain(&d.would_send)
            .map(|i| i.account.clone())
            .next();
    }
    let rule = match d.outcome {
        Outcome::Fired => d.rule_id,
        Outcome::CannotEvaluate => format!("{}{NO_DATA_SUFFIX}", d.rule_id),
        Outcome::LeftToAssignmentGuard => format!("{}.broken", d.rule_id),
    };
    Decision {
        rule,
        severity: d.severity,
        action: if flatten && !close.is_empty() {
            RuleAction::Flatten
        } else {
            RuleAction::Alert
        },
        dry_run: d.dry_run,
        account: account.unwrap_or_else(|| AccountId::new("*")),
        strategy,
        close,
        reason: d.reason,
        locks_opening: flatten && LOSS_LIMITS.contains(&d.rule),
        hybrid_exit: flatten && d.rule == "stop_loss",
    }
}

/// The account loss limits whose flatten also locks opening orders in the guard (a prop firm
/// locks the account after them too).
const LOSS_LIMITS: [&str; 3] = ["daily_loss", "max_drawdown", "trailing_max_loss"];

impl RuleEvaluator for RiskRules {
    fn durable_state(&self) -> Option<RuleState> {
        Some(self.state.clone())
    }

    fn global_dry_run(&self) -> bool {
        self.config.dry_run
    }

    fn restore_config(&mut self, saved: Option<SavedRiskConfig>, now: Timestamp) {
        if let Some(r) = self.rejected_at_start.as_mut()
            && !r.announced
            && let Some(saved) = saved
        {
            match saved.source.parse() {
                Ok(cfg) => {
                    tracing::warn!(
                        path = %saved.source.path.display(),
                        applied_at = %saved.applied_at,
                        rules = cfg.enabled_rules().count(),
                        "risk rules file rejected at start: running with the last good rules kept in the journal"
                    );
                    r.fallback = Fallback::LastGood(saved.applied_at);
                    self.config = Arc::new(cfg);
                    self.source = Some(Arc::new(saved.source));
                }
                Err(e) => r.fallback = Fallback::LastGoodInvalid(e),
            }
        }
        self.announce_start(now);
    }

    fn good_config(&self) -> Option<Arc<ConfigSource>> {
        self.source.clone()
    }

    fn restore_state(&mut self, state: RuleState) {
        tracing::info!(
            trailing = state.trailing.values().map(|m| m.len()).sum::<usize>(),
            accounts = state.accounts.len(),
            "rule state restored from the journal (trailing highs, day-start and peak values)"
        );
        self.state = state;
    }

    fn rule_count(&self) -> usize {
        self.config.enabled_rules().count()
    }

    fn evaluate(&mut self, input: &EvalInput<'_>) -> Vec<Decision> {
        self.poll(input.now);
        let today = self.hours.local(input.now).date();
        // The attached exits run beside the file's rules (a bad file leaves them running).
        let merged;
        let config: &RiskConfig = if input.attached.is_empty() {
            &self.config
        } else {
            merged = RiskConfig {
                rules: self
                    .config
                    .rules
                    .iter()
                    .chain(input.attached)
                    .cloned()
                    .collect(),
                ..(*self.config).clone()
            };
            &merged
        };
        let ri = rules::EvalInput {
            config,
            strategies: input.strategies,
            positions: input.positions,
            accounts: input.accounts,
            spots: input.spots,
            session: Session {
                today,
                close: self.hours.close_of(today),
            },
            now: input.now,
        };
        let decisions = rules::evaluate(&ri, &mut self.state).decisions;
        if decisions.is_empty() {
            return Vec::new();
        }
        let positions = index(input.positions);
        decisions
            .into_iter()
            .map(|d| convert(d, &positions))
            .collect()
    }

    fn protections(&self) -> Vec<String> {
        self.config
            .enabled_rules()
            .map(|r| {
                format!(
                    "{} ({}, {:?}{})",
                    r.common.id,
                    r.kind.name(),
                    r.common.action,
                    if r.common.dry_run || self.config.dry_run {
                        ", dry-run"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    }

    fn drain_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.alerts)
    }
}
