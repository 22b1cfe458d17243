//! The risk-rule configuration file (TOML): its schema, parsing with file/line/field errors,
//! and semantic validation. `config/risk.example.toml` at the repository root documents every
//! rule and field.
//!
//! Every rule section is an array of tables (`[[profit_target]]`), so a rule kind can appear
//! several times with different scopes and limits. Every rule has `id` (defaults to the section
//! name, `name#2` for the second ...), `enabled` (default true), `severity` (info | warning |
//! critical, default warning), `action` (alert | flatten, default alert), `dry_run` (default
//! false: the global switch decides) and optional `accounts` / `underlyings` scopes.
//!
//! The top-level `dry_run` is the global switch and fails safe: **a file without it is in
//! dry-run** (every rule decides, logs and audits the orders it would send, and sends none).
//! Only an explicit `dry_run = false` lets rules send orders. A global dry-run wins over every
//! rule's own `dry_run`.

use crate::alert::Severity;
use crate::assignment::AssignmentPolicy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tradeguard_model::{Money, Price};

/// Errors loading a risk configuration. Every variant names the file; parse and validation
/// errors also name the line and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {message}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// OS error kind.
        kind: std::io::ErrorKind,
        /// OS message.
        message: String,
    },
    /// Not valid TOML.
    #[error("{}:{line}:{column}: {}syntax error: {message}", path.display(), field_prefix(field))]
    Syntax {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `section.key` when known.
        field: Option<String>,
        /// Why.
        message: String,
    },
    /// A key the schema does not know (typo?).
    #[error("{}:{line}: {}{message}", path.display(), field_prefix(field))]
    UnknownField {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// `section.key` when known.
        field: Option<String>,
        /// Why (names the accepted fields).
        message: String,
    },
    /// A required key is absent.
    #[error("{}:{line}: {}{message}", path.display(), field_prefix(field))]
    MissingField {
        /// File.
        path: PathBuf,
        /// 1-based line of the table missing it.
        line: usize,
        /// The table (`section`) when known.
        field: Option<String>,
        /// Why.
        message: String,
    },
    /// A value of the wrong type or out of the type's range.
    #[error("{}:{line}: {}{message}", path.display(), field_prefix(field))]
    BadValue {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// `section.key` when known.
        field: Option<String>,
        /// Why.
        message: String,
    },
    /// Well-formed but not sensible (negative limit, give-back above activation, ...).
    #[error("{}:{line}: field `{field}`: {reason}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// 1-based line of the field (or of its table when the field is absent).
        line: usize,
        /// `section.key` (`section#n.key` for the n-th table of a section).
        field: String,
        /// Why.
        reason: String,
    },
    /// Two rules share an id.
    #[error("{}:{line}: duplicate rule id `{id}`", path.display())]
    DuplicateId {
        /// File.
        path: PathBuf,
        /// Line of the second occurrence's table.
        line: usize,
        /// The id.
        id: String,
    },
}

fn field_prefix(f: &Option<String>) -> String {
    f.as_ref()
        .map(|f| format!("field `{f}`: "))
        .unwrap_or_default()
}

impl ConfigError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "config.io",
            Self::Syntax { .. } => "config.syntax",
            Self::UnknownField { .. } => "config.unknown_field",
            Self::MissingField { .. } => "config.missing_field",
            Self::BadValue { .. } => "config.bad_value",
            Self::Invalid { .. } => "config.invalid",
            Self::DuplicateId { .. } => "config.duplicate_id",
        }
    }

    /// The 1-based line the error points at, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Syntax { line, .. }
            | Self::UnknownField { line, .. }
            | Self::MissingField { line, .. }
            | Self::BadValue { line, .. }
            | Self::Invalid { line, .. }
            | Self::DuplicateId { line, .. } => Some(*line),
        }
    }
}

/// Alert severity as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    /// For the record.
    Info,
    /// Needs attention.
    #[default]
    Warning,
    /// Money at risk now.
    Critical,
}

impl From<RuleSeverity> for Severity {
    fn from(s: RuleSeverity) -> Self {
        match s {
            RuleSeverity::Info => Severity::Info,
            RuleSeverity::Warning => Severity::Warning,
            RuleSeverity::Critical => Severity::Critical,
        }
    }
}

/// What a firing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Raise an alert only.
    #[default]
    Alert,
    /// Close the subject (position, strategy or account) and alert.
    Flatten,
}

fn yes() -> bool {
    true
}

/// Fields every rule has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleCommon {
    /// Rule id used in decisions, alerts and the audit log.
    pub id: String,
    /// Off rules are not evaluated.
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: RuleSeverity,
    /// Alert or flatten.
    pub action: RuleAction,
    /// Decide and log, but send nothing.
    pub dry_run: bool,
    /// Only these accounts (empty = all).
    pub accounts: Vec<String>,
    /// Only these underlyings (empty = all).
    pub underlyings: Vec<String>,
    /// Only these strategies (empty = all): set on the exits a person attached to a strategy
    /// when opening it (never from the file).
    pub strategies: Vec<tradeguard_model::StrategyId>,
    /// An exit a person attached at entry: the global dry-run does not hold it back (a
    /// stop-loss you placed, see `crate::enforce::order_paths`). Never from the file.
    pub placed_by_person: bool,
}

macro_rules! rule_table {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            #[serde(default)]
            id: Option<String>,
            #[serde(default = "yes")]
            enabled: bool,
            #[serde(default)]
            severity: RuleSeverity,
            #[serde(default)]
            action: RuleAction,
            #[serde(default)]
            dry_run: bool,
            #[serde(default)]
            accounts: Vec<String>,
            #[serde(default)]
            underlyings: Vec<String>,
            $($(#[$fdoc])* $field: $ty,)*
        }

        impl $name {
            fn common(&self, default_id: String) -> RuleCommon {
                RuleCommon {
                    id: self.id.clone().unwrap_or(default_id),
                    enabled: self.enabled,
                    severity: self.severity,
                    action: self.action,
                    dry_run: self.dry_run,
                    accounts: self.accounts.clone(),
                    underlyings: self.underlyings.clone(),
                    strategies: Vec::new(),
                    placed_by_person: false,
                }
            }
        }
    };
}

rule_table!(MaxContractsToml { max_contracts: i64 });
rule_table!(PositionCapToml { max_positions: i64 });
rule_table!(DailyLossToml { max_loss: Money });
rule_table!(MaxDrawdownToml {
    max_drawdown: Money
});
rule_table!(TrailingMaxLossToml {
    max_loss: Money,
    #[serde(default)]
    intraday: bool,
    #[serde(default)]
    stop_at: Option<Money>
});
rule_table!(SessionFlattenToml {
    at: String,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    tz: Option<String>
});
rule_table!(ProfitTargetToml { pct_of_credit: i64 });
rule_table!(StopLossToml {
    credit_multiple: Price
});
rule_table!(TrailingStopToml {
    activation_pct: i64,
    give_back_pct: i64
});
rule_table!(DteExitToml { days: i64 });
rule_table!(PinRiskToml {
    within: Price,
    minutes_before_close: i64
});

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    /// Runtime settings of the headless guard (`tradeguard guard` reads them); not rules.
    #[serde(default, rename = "guard")]
    _guard: Option<toml::Table>,
    /// The assignment policy (`[assignment]`): which assignments are the plan and what happens
    /// to delivered stock; read at the guard's start.
    #[serde(default)]
    assignment: AssignmentPolicy,
    /// Missing = dry-run on: only an explicit `dry_run = false` goes live.
    #[serde(default = "yes")]
    dry_run: bool,
    #[serde(default = "default_stale")]
    account_stale_after_secs: i64,
    /// Profit target, stop loss and trailing stop act on a P&L that has held this long.
    #[serde(default = "default_confirm")]
    pnl_confirm_secs: f64,
    #[serde(default)]
    max_contracts: Vec<MaxContractsToml>,
    #[serde(default)]
    position_cap: Vec<PositionCapToml>,
    #[serde(default)]
    daily_loss: Vec<DailyLossToml>,
    #[serde(default)]
    max_drawdown: Vec<MaxDrawdownToml>,
    #[serde(default)]
    trailing_max_loss: Vec<TrailingMaxLossToml>,
    #[serde(default)]
    session_flatten: Vec<SessionFlattenToml>,
    #[serde(default)]
    profit_target: Vec<ProfitTargetToml>,
    #[serde(default)]
    stop_loss: Vec<StopLossToml>,
    #[serde(default)]
    trailing_stop: Vec<TrailingStopToml>,
    #[serde(default)]
    dte_exit: Vec<DteExitToml>,
    #[serde(default)]
    pin_risk: Vec<PinRiskToml>,
}

fn default_stale() -> i64 {
    300
}

fn default_confirm() -> f64 {
    3.0
}

/// A rule's parameters (what it checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Per position: `|qty| > max_contracts` fires; flatten reduces that position to the
    /// limit in whole units of the multi-leg strategies holding it (every leg in proportion,
    /// shorts bought back first), then from the part no strategy holds; never a protective
    /// long alone.
    MaxContracts {
        /// Largest allowed |qty| of one position, in contracts (shares for stock).
        max_contracts: i64,
    },
    /// Global: more than `max_positions` open positions fires; flatten closes the smallest
    /// exposures first until the count is back at the cap.
    PositionCap {
        /// Largest allowed number of open positions (within the rule's scope).
        max_positions: usize,
    },
    /// Per account: net liquidation fell `max_loss` or more below its value at the start of
    /// the trading day; flatten closes every position of the account.
    DailyLoss {
        /// Loss limit.
        max_loss: Money,
    },
    /// Per account: net liquidation fell `max_drawdown` or more below its peak.
    MaxDrawdown {
        /// Drawdown limit.
        max_drawdown: Money,
    },
    /// Per account, the prop firms' trailing maximum loss: net liquidation at or below
    /// `high − max_loss`, where `high` is the highest end-of-day balance (the value at the
    /// start of each trading day; the intraday peak with `intraday`), and the floor stops
    /// rising once it reaches `stop_at` (Topstep: the starting balance).
    TrailingMaxLoss {
        /// Distance of the floor below the high.
        max_loss: Money,
        /// Trail the intraday peak instead of end-of-day balances.
        intraday: bool,
        /// The floor never rises above this.
        stop_at: Option<Money>,
    },
    /// Per account, a flatten time the trader sets before the firm's (Topstep flattens at
    /// 3:08 PM CT): on weekdays from `at` until `until` (local time in `tz`), every position
    /// in scope is closed, and closed again if reopened in that window.
    SessionFlatten {
        /// Start of the window.
        at: chrono::NaiveTime,
        /// End of the window.
        until: chrono::NaiveTime,
        /// The zone of both.
        tz: chrono_tz::Tz,
    },
    /// Per strategy: P&L ≥ `pct_of_credit` % of the entry premium.
    ProfitTarget {
        /// Percent of the entry credit (debit for debit strategies).
        pct_of_credit: u32,
    },
    /// Per strategy: loss ≥ `credit_multiple` × the entry premium.
    StopLoss {
        /// Multiple of the entry credit (decimal).
        credit_multiple: Price,
    },
    /// Per strategy: once P&L reached `activation_pct` % of the premium, fires when P&L falls
    /// `give_back_pct` % of the premium below its high-water mark.
    TrailingStop {
        /// Activation threshold, percent of the premium.
        activation_pct: u32,
        /// Give-back from the high-water mark, percent of the premium.
        give_back_pct: u32,
    },
    /// Per strategy: the nearest option expiry is `days` calendar days away or less.
    DteExit {
        /// Days to expiry at which to exit (0 = on the expiry day).
        days: u32,
    },
    /// Per strategy: on an expiry day, within `minutes_before_close` of the close, a short
    /// leg expiring that day is in the money or within `within` of its strike.
    PinRisk {
        /// Distance to the strike that counts as pinned.
        within: Price,
        /// How long before the close the check starts.
        minutes_before_close: u32,
    },
}

impl RuleKind {
    /// Section name in the file, also the prefix of decision codes (`rules.<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MaxContracts { .. } => "max_contracts",
            Self::PositionCap { .. } => "position_cap",
            Self::DailyLoss { .. } => "daily_loss",
            Self::MaxDrawdown { .. } => "max_drawdown",
            Self::TrailingMaxLoss { .. } => "trailing_max_loss",
            Self::SessionFlatten { .. } => "session_flatten",
            Self::ProfitTarget { .. } => "profit_target",
            Self::StopLoss { .. } => "stop_loss",
            Self::TrailingStop { .. } => "trailing_stop",
            Self::DteExit { .. } => "dte_exit",
            Self::PinRisk { .. } => "pin_risk",
        }
    }
}

/// One configured rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Shared fields.
    pub common: RuleCommon,
    /// What it checks.
    pub kind: RuleKind,
}

/// A validated risk configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskConfig {
    /// Where it was loaded from (empty for in-memory configs).
    pub path: PathBuf,
    /// Global dry-run: every decision is logged, nothing is sent. On unless the file says
    /// `dry_run = false`.
    pub dry_run: bool,
    /// Account snapshots older than this cannot be used by the account rules.
    pub account_stale_after_secs: u64,
    /// Every rule, in file order (by section, then table order).
    pub rules: Vec<Rule>,
    /// The file's `[assignment]` table (the assignment guard reads it at start).
    pub assignment: AssignmentPolicy,
    /// Profit target, stop loss and trailing stop act only on a strategy P&L that has held for
    /// this long (`pnl_confirm_secs`, default 3): the legs' marks update one by one, so for a
    /// moment after a gap the P&L mixes legs priced before and after it; such a phantom
    /// extreme neither fires an exit nor raises a trailing stop's high.
    pub pnl_confirm: std::time::Duration,
}

impl Default for RiskConfig {
    /// No rule, in dry-run (what an empty file means).
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            dry_run: true,
            account_stale_after_secs: u64::try_from(default_stale()).unwrap_or(300),
            rules: Vec::new(),
            assignment: AssignmentPolicy::default(),
            pnl_confirm: std::time::Duration::from_secs(3),
        }
    }
}

impl RiskConfig {
    /// No rule, in dry-run: what the guard runs with while `path` cannot be used and no
    /// earlier good configuration is known.
    pub fn none(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_owned(),
            kind: e.kind(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: FileToml = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
        Validator { text, path }.build(raw)
    }

    /// Rules that are enabled.
    pub fn enabled_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.common.enabled)
    }
}

/// 1-based line and column of byte `offset` in a TOML `text` (for errors naming where).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

/// Header of the table in effect at `line` (1-based), as written inside the brackets.
fn section_at(text: &str, line: usize) -> Option<String> {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let t = l.trim();
            let inner = t.strip_prefix("[[").and_then(|r| r.split("]]").next());
            inner
                .or_else(|| t.strip_prefix('[').and_then(|r| r.split(']').next()))
                .map(|s| s.trim().to_owned())
        })
        .last()
}

/// `section.key` of the `key = value` on 1-based `line` of a TOML `text` (the table header
/// on a header line).
pub fn field_at(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if l.starts_with('[') || l.starts_with('#') {
        return section_at(text, line);
    }
    let key = l.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    Some(match section_at(text, line) {
        Some(s) => format!("{s}.{key}"),
        None => key.to_owned(),
    })
}

fn toml_error(e: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
    let field = field_at(text, line);
    let message = e.message().trim().to_owned();
    let path = path.to_owned();
    if message.starts_with("unknown field") {
        ConfigError::UnknownField {
            path,
            line,
            field,
            message,
        }
    } else if message.starts_with("missing field") {
        ConfigError::MissingField {
            path,
            line,
            field: section_at(text, line),
            message,
        }
    } else if message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("unknown variant")
        || message.contains("decimal")
        || message.contains("out of range")
    {
        ConfigError::BadValue {
            path,
            line,
            field,
            message,
        }
    } else {
        ConfigError::Syntax {
            path,
            line,
            column,
            field,
            message,
        }
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    /// Line of the `index`-th (0-based) `[[section]]` header.
    fn table_line(&self, section: &str, index: usize) -> usize {
        let header = format!("[[{section}]]");
        self.text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim().replace(' ', "") == header)
            .nth(index)
            .map_or(1, |(i, _)| i + 1)
    }

    /// Line of `key = ...` inside the `index`-th `[[section]]` (the header's line if absent).
    fn field_line(&self, section: &str, index: usize, key: &str) -> usize {
        let start = self.table_line(section, index);
        for (i, l) in self.text.lines().enumerate().skip(start) {
            let t = l.trim();
            if t.starts_with('[') {
                break;
            }
            if t.split('=').next().map(str::trim) == Some(key) {
                return i + 1;
            }
        }
        start
    }

    fn invalid(&self, section: &str, index: usize, key: &str, reason: String) -> ConfigError {
        let field = if index == 0 {
            format!("{section}.{key}")
        } else {
            format!("{section}#{}.{key}", index + 1)
        };
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.field_line(section, index, key),
            field,
            reason,
        }
    }

    fn positive_i64(&self, s: &str, i: usize, key: &str, v: i64) -> Result<i64, ConfigError> {
        if v <= 0 {
            return Err(self.invalid(s, i, key, format!("must be greater than 0, got {v}")));
        }
        Ok(v)
    }

    fn pct(&self, s: &str, i: usize, key: &str, v: i64) -> Result<u32, ConfigError> {
        match u32::try_from(v) {
            Ok(p) if (1..=1000).contains(&p) => Ok(p),
            _ => Err(self.invalid(
                s,
                i,
                key,
                format!("must be a percentage from 1 to 1000, got {v}"),
            )),
        }
    }

    fn build(&self, raw: FileToml) -> Result<RiskConfig, ConfigError> {
        let mut rules = Vec::new();
        let id = |s: &str, i: usize| {
            if i == 0 {
                s.to_owned()
            } else {
                format!("{s}#{}", i + 1)
            }
        };
        const MC: &str = "max_contracts";
        for (i, t) in raw.max_contracts.iter().enumerate() {
            let max_contracts = self.positive_i64(MC, i, MC, t.max_contracts)?;
            rules.push((
                MC,
                i,
                t.common(id(MC, i)),
                RuleKind::MaxContracts { max_contracts },
            ));
        }
        const PC: &str = "position_cap";
        for (i, t) in raw.position_cap.iter().enumerate() {
            let n = self.positive_i64(PC, i, "max_positions", t.max_positions)?;
            let max_positions = usize::try_from(n)
                .map_err(|_| self.invalid(PC, i, "max_positions", format!("too large: {n}")))?;
            rules.push((
                PC,
                i,
                t.common(id(PC, i)),
                RuleKind::PositionCap { max_positions },
            ));
        }
        const DL: &str = "daily_loss";
        for (i, t) in raw.daily_loss.iter().enumerate() {
            if !t.max_loss.is_positive() {
                return Err(self.invalid(
                    DL,
                    i,
                    "max_loss",
                    format!("must be a positive amount, got {}", t.max_loss),
                ));
            }
            rules.push((
                DL,
                i,
                t.common(id(DL, i)),
                RuleKind::DailyLoss {
                    max_loss: t.max_loss,
                },
            ));
        }
        const DD: &str = "max_drawdown";
        for (i, t) in raw.max_drawdown.iter().enumerate() {
            if !t.max_drawdown.is_positive() {
                return Err(self.invalid(
                    DD,
                    i,
                    DD,
                    format!("must be a positive amount, got {}", t.max_drawdown),
                ));
            }
            let kind = RuleKind::MaxDrawdown {
                max_drawdown: t.max_drawdown,
            };
            rules.push((DD, i, t.common(id(DD, i)), kind));
        }
        const TML: &str = "trailing_max_loss";
        for (i, t) in raw.trailing_max_loss.iter().enumerate() {
            if !t.max_loss.is_positive() {
                return Err(self.invalid(
                    TML,
                    i,
                    "max_loss",
                    format!("must be a positive amount, got {}", t.max_loss),
                ));
            }
            if let Some(at) = t.stop_at
                && !at.is_positive()
            {
                return Err(self.invalid(
                    TML,
                    i,
                    "stop_at",
                    format!("must be a positive balance, got {at}"),
                ));
            }
            let kind = RuleKind::TrailingMaxLoss {
                max_loss: t.max_loss,
                intraday: t.intraday,
                stop_at: t.stop_at,
            };
            rules.push((TML, i, t.common(id(TML, i)), kind));
        }
        const SF: &str = "session_flatten";
        for (i, t) in raw.session_flatten.iter().enumerate() {
            let time = |key: &str, v: &str| {
                chrono::NaiveTime::parse_from_str(v.trim(), "%H:%M")
                    .map_err(|_| self.invalid(SF, i, key, format!("{v:?} is not a time HH:MM")))
            };
            let at = time("at", &t.at)?;
            // The CME's daily halt begins at 16:00 Chicago time.
            let until = time("until", t.until.as_deref().unwrap_or("16:00"))?;
            if until <= at {
                return Err(self.invalid(
                    SF,
                    i,
                    "until",
                    format!("{until} must be after at ({at})"),
                ));
            }
            let tz_name = t.tz.as_deref().unwrap_or("America/Chicago");
            let tz: chrono_tz::Tz = tz_name.trim().parse().map_err(|_| {
                self.invalid(
                    SF,
                    i,
                    "tz",
                    format!("{tz_name:?} is not a time zone (e.g. America/Chicago)"),
                )
            })?;
            rules.push((
                SF,
                i,
                t.common(id(SF, i)),
                RuleKind::SessionFlatten { at, until, tz },
            ));
        }
        const PT: &str = "profit_target";
        for (i, t) in raw.profit_target.iter().enumerate() {
            let pct_of_credit = self.pct(PT, i, "pct_of_credit", t.pct_of_credit)?;
            rules.push((
                PT,
                i,
                t.common(id(PT, i)),
                RuleKind::ProfitTarget { pct_of_credit },
            ));
        }
        const SL: &str = "stop_loss";
        for (i, t) in raw.stop_loss.iter().enumerate() {
            if !t.credit_multiple.is_positive() {
                return Err(self.invalid(
                    SL,
                    i,
                    "credit_multiple",
                    format!("must be greater than 0, got {}", t.credit_multiple),
                ));
            }
            let kind = RuleKind::StopLoss {
                credit_multiple: t.credit_multiple,
            };
            rules.push((SL, i, t.common(id(SL, i)), kind));
        }
        const TS: &str = "trailing_stop";
        for (i, t) in raw.trailing_stop.iter().enumerate() {
            let activation_pct = self.pct(TS, i, "activation_pct", t.activation_pct)?;
            let give_back_pct = self.pct(TS, i, "give_back_pct", t.give_back_pct)?;
            if give_back_pct > activation_pct {
                return Err(self.invalid(
                    TS,
                    i,
                    "give_back_pct",
                    format!(
                        "give-back {give_back_pct}% is larger than the activation threshold \
                         {activation_pct}%: the stop would sit below the entry"
                    ),
                ));
            }
            let kind = RuleKind::TrailingStop {
                activation_pct,
                give_back_pct,
            };
            rules.push((TS, i, t.common(id(TS, i)), kind));
        }
        const DT: &str = "dte_exit";
        for (i, t) in raw.dte_exit.iter().enumerate() {
            let days = u32::try_from(t.days).map_err(|_| {
                self.invalid(DT, i, "days", format!("must be 0 or more, got {}", t.days))
            })?;
            rules.push((DT, i, t.common(id(DT, i)), RuleKind::DteExit { days }));
        }
        const PR: &str = "pin_risk";
        for (i, t) in raw.pin_risk.iter().enumerate() {
            if t.within.is_negative() {
                return Err(self.invalid(
                    PR,
                    i,
                    "within",
                    format!("must be 0 or more, got {}", t.within),
                ));
            }
            let minutes =
                self.positive_i64(PR, i, "minutes_before_close", t.minutes_before_close)?;
            let minutes_before_close = u32::try_from(minutes).map_err(|_| {
                self.invalid(
                    PR,
                    i,
                    "minutes_before_close",
                    format!("too large: {minutes}"),
                )
            })?;
            let kind = RuleKind::PinRisk {
                within: t.within,
                minutes_before_close,
            };
            rules.push((PR, i, t.common(id(PR, i)), kind));
        }
        let account_stale_after_secs = u64::try_from(raw.account_stale_after_secs)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| ConfigError::Invalid {
                path: self.path.to_owned(),
                line: self.top_level_line("account_stale_after_secs"),
                field: "account_stale_after_secs".into(),
                reason: format!(
                    "must be greater than 0, got {}",
                    raw.account_stale_after_secs
                ),
            })?;
        let mut seen = std::collections::BTreeSet::new();
        for (s, i, common, _) in &rules {
            if common.id.is_empty() {
                return Err(self.invalid(s, *i, "id", "must not be empty".into()));
            }
            if !seen.insert(common.id.clone()) {
                return Err(ConfigError::DuplicateId {
                    path: self.path.to_owned(),
                    line: self.field_line(s, *i, "id"),
                    id: common.id.clone(),
                });
            }
        }
        Ok(RiskConfig {
            path: self.path.to_owned(),
            assignment: raw.assignment.clone(),
            pnl_confirm: std::time::Duration::try_from_secs_f64(raw.pnl_confirm_secs)
                .ok()
                .filter(|d| *d <= std::time::Duration::from_secs(600))
                .ok_or_else(|| ConfigError::Invalid {
                    path: self.path.to_owned(),
                    line: self.top_level_line("pnl_confirm_secs"),
                    field: "pnl_confirm_secs".into(),
                    reason: format!(
                        "{} is not a number of seconds from 0 to 600",
                        raw.pnl_confirm_secs
                    ),
                })?,
            dry_run: raw.dry_run,
            account_stale_after_secs,
            rules: rules
                .into_iter()
                .map(|(_, _, common, kind)| Rule { common, kind })
                .collect(),
        })
    }

    fn top_level_line(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| l.trim().split('=').next().map(str::trim) == Some(key))
            .map_or(1, |i| i + 1)
    }
}
