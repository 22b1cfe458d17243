//! `tradeguard guard`: the headless guard. Runs the same [`Guard`] as the desktop app — against
//! the simulated demo venue or IB Gateway/TWS — without a window, prints alerts and the
//! periodic status to stdout (logs go to stderr), and exits cleanly on SIGINT/SIGTERM or after
//! `--for SECONDS`.
//!
//! - Journal: the SQLite store (`tradeguard.db`) in `--data-dir`, else `TRADEGUARD_DATA_DIR`,
//!   else `$XDG_DATA_HOME/tradeguard` / `~/.local/share/tradeguard` (created private to the
//!   user: mode 0700 on Unix, an existing directory is tightened). The store's
//!   single-instance lock makes a second guard on the same directory fail (exit 1, naming the
//!   first one's pid).
//! - `--config FILE`: the risk rules (format of `config/risk.example.toml`, hot-reloaded while
//!   running) plus an optional `[guard]` table of runtime settings (`dry_run`, `reconcile_secs`,
//!   `stall_secs`, `status_secs`) in the same file. Without it no rule runs (the guard still
//!   reconciles, reports and handles assignments).
//! - A bad (or missing) `--config` file never stops the guard: the rules run with the last good
//!   configuration kept in the journal or, when there is none, with no rule in dry-run, and a
//!   Critical `rules.config_rejected` alert names the file, line and field; fixing the file
//!   applies it without a restart. A `[guard]` table that cannot be used is replaced by the one
//!   of the last good file (else the defaults with `dry_run = true`) and raises a Critical
//!   `guard.config_rejected` alert; `[guard]` settings apply at the next start.
//! - `--alerts FILE`: the off-desk alert channels (format of `config/alerts.example.toml`:
//!   email, Slack, Discord, JSON webhook, ntfy, Telegram), their secrets in the OS keychain
//!   (entered in the desktop's Settings → Alerts, or with `secret-tool store --label=tradeguard
//!   service tradeguard username alerts/NAME`). A bad file never stops the guard: it runs
//!   without the channels and raises a Critical `alerts.config_invalid` alert naming the line.
//! - `--market-hours`: `us-equity` (default; an emergency close found outside the regular
//!   session is armed for the open) or `always-open` (closes go out at once, whatever the
//!   time: tests, venues without a session).
//! - Readiness: the line `guard: started; N strategies guarded` is printed once the guard has
//!   recovered from the journal, reconciled with the broker and started its tasks, followed by
//!   one `guard: strategy NAME: STATE` line per strategy (a Broken one with its reason) and the
//!   alerts raised while starting (`alert [CODE] SEVERITY: MESSAGE`, like every later one).
//! - Risk model of the pre-trade gate: [`PricingStressModel`]; notifications: [`LogNotifier`]
//!   (target `tradeguard::notify` on stderr).

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::alert::Severity;
use tradeguard_engine::assignment::{
    AlwaysOpen, AssignmentConfig, AssignmentPolicy, LogNotifier, MarketHours, UsEquityHours,
};
use tradeguard_engine::enforce::{
    EnforceConfig, Guard, GuardDeps, NoRules, RiskRules, RuleEvaluator,
};
use tradeguard_engine::globex::CmeGlobexHours;
use tradeguard_engine::{EngineConfig, Journal, PricingStressModel, StoreJournal};
use tradeguard_model::{AccountId, Broker, Clock, SystemClock, Timestamp};
use tradeguard_store::{Store, StoreConfig, StoreError};

/// Overrides the default data directory.
pub const DATA_DIR_ENV: &str = "TRADEGUARD_DATA_DIR";
/// The database file inside the data directory.
pub const DB_FILE: &str = "tradeguard.db";

/// Which broker to guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// The simulated demo venue.
    Sim,
    /// Interactive Brokers (IB Gateway or TWS).
    Ib,
    /// Tradier (REST and streams); the access token from the OS keychain
    /// (`tradeguard secret tradier --account …` stores it).
    Tradier,
    /// ProjectX (TopstepX and other prop firms); the API key from the OS keychain
    /// (`tradeguard secret projectx --account USER` stores it).
    Projectx,
}

/// Tradier environment (`--tradier-env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TradierEnv {
    /// sandbox.tradier.com: paper trading, delayed data.
    Sandbox,
    /// api.tradier.com: real money.
    Live,
}

/// The simulated venue's demo (`--demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoKind {
    /// SPY option strategies.
    Options,
    /// Futures on a prop-firm style account (5 MNQ long, 2 MES short).
    Futures,
}

/// Exchange calendar of the guard (`--market-hours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HoursKind {
    /// US equity and option hours (New York time; the simulator's fixed UTC−5 on `sim`).
    UsEquity,
    /// A market that never closes.
    AlwaysOpen,
    /// CME Globex futures hours (Chicago time: Sunday 17:00 to Friday 16:00, the daily halt
    /// 16:00–17:00, CME's holidays; the simulator's fixed week without holidays on `sim`).
    CmeGlobex,
}

/// `tradeguard guard` options.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Broker to connect to.
    #[arg(long, value_enum)]
    pub broker: BrokerKind,
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The simulator's demo.
    #[arg(long, value_enum, default_value_t = DemoKind::Options)]
    pub demo: DemoKind,
    /// Simulator speed multiplier (virtual seconds per wall second).
    #[arg(long, default_value_t = 10)]
    pub speed: u32,
    /// Risk rules (TOML, format of config/risk.example.toml; hot-reloaded), optionally with a
    /// `[guard]` table: dry_run, reconcile_secs, stall_secs, status_secs.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Off-desk alert channels (TOML, format of config/alerts.example.toml); secrets in the OS
    /// keychain.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    /// IB Gateway / TWS host.
    #[arg(long, default_value = "127.0.0.1")]
    pub ib_host: String,
    /// IB Gateway / TWS port (Gateway paper 4002).
    #[arg(long, default_value_t = 4002)]
    pub ib_port: u16,
    /// IB API client id (2 by convention for the CLI, so it can run beside the app's 1).
    #[arg(long, default_value_t = 2)]
    pub ib_client_id: i32,
    /// IB account code (empty: the first managed account).
    #[arg(long, default_value = "")]
    pub ib_account: String,
    /// Tradier account number.
    #[arg(long, default_value = "")]
    pub tradier_account: String,
    /// Tradier environment: `sandbox` (paper, delayed data) or `live`.
    #[arg(long, value_enum, default_value_t = TradierEnv::Sandbox)]
    pub tradier_env: TradierEnv,
    /// Tradier API base URL instead of the environment's (a fake Tradier on this machine:
    /// `http://127.0.0.1:PORT/v1`).
    #[arg(long)]
    pub tradier_url: Option<String>,
    /// ProjectX user name (the API key is the keychain's, stored for this user).
    #[arg(long, default_value = "")]
    pub projectx_user: String,
    /// ProjectX account: its name (e.g. 50KTC-V2-…) or id.
    #[arg(long, default_value = "")]
    pub projectx_account: String,
    /// ProjectX REST base instead of TopstepX's (another firm, or a fake on this machine:
    /// `http://127.0.0.1:PORT`).
    #[arg(long)]
    pub projectx_api: Option<String>,
    /// ProjectX hubs' base instead of TopstepX's (`rtc…`); defaults to `--projectx-api`.
    #[arg(long)]
    pub projectx_rtc: Option<String>,
    /// Data directory of the journal database (default: $TRADEGUARD_DATA_DIR, else
    /// $XDG_DATA_HOME/tradeguard or ~/.local/share/tradeguard).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Exchange calendar: `us-equity` (regular session 09:30–16:00 New York, Monday–Friday;
    /// emergency closes found outside it are armed for the open), `cme-globex` (futures hours)
    /// or `always-open` (every moment is the regular session: closes go out at once; for tests
    /// at any hour and for venues without a session). Default: `cme-globex` on ProjectX and
    /// for the futures demo, `us-equity` otherwise.
    #[arg(long, value_enum)]
    pub market_hours: Option<HoursKind>,
    /// Lift the lock on opening orders that a fired loss limit left (it survives restarts; the
    /// trader decides when to trade again). Closes are never locked.
    #[arg(long)]
    pub unlock: bool,
    /// Stop after this many wall-clock seconds.
    #[arg(long = "for")]
    pub run_for: Option<f64>,
    /// Status summary period in wall-clock seconds (overrides the config file).
    #[arg(long)]
    pub status_every: Option<f64>,
}

/// The Tradier broker of the options, its token from the OS keychain, connected; and the
/// account's one-guard lock.
async fn tradier_broker(
    args: &GuardArgs,
    clock: Arc<dyn Clock>,
) -> Result<
    (
        tradeguard_tradier::TradierBroker,
        tradeguard_store::InstanceLock,
    ),
    GuardCliError,
> {
    let acct = args.tradier_account.trim();
    if acct.is_empty() {
        return Err(GuardCliError::BadOption {
            option: "--tradier-account",
            reason: "the Tradier account number is required with --broker tradier".into(),
        });
    }
    let token = match tradeguard_notify::venue_secret("tradier", acct) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(GuardCliError::Broker(
                format!(
                    "no Tradier token for {acct} in the OS keychain: store one with `tradeguard secret tradier --account {acct}` (reads it from standard input)"
                ),
                "tradier.no_token",
            ));
        }
        Err(e) => return Err(GuardCliError::Broker(e.to_string(), e.code())),
    };
    let token = tradeguard_tradier::Token::new(token);
    let settings = match (&args.tradier_url, args.tradier_env) {
        (Some(url), _) => tradeguard_tradier::TradierSettings::at(url.clone(), acct, token),
        (None, TradierEnv::Sandbox) => tradeguard_tradier::TradierSettings::new(
            tradeguard_tradier::Environment::Sandbox,
            acct,
            token,
        ),
        (None, TradierEnv::Live) => tradeguard_tradier::TradierSettings::new(
            tradeguard_tradier::Environment::Live,
            acct,
            token,
        ),
    };
    println!("guard: Tradier at {} account {acct}", settings.api_url);
    let b = tradeguard_tradier::TradierBroker::new(settings, clock.clone())
        .map_err(|e| GuardCliError::Broker(e.to_string(), e.code()))?;
    let lock = tradeguard_store::lock_account(
        &tradeguard_store::account_lock_dir(),
        "tradier",
        acct,
        clock.now().millis(),
    )?;
    tradeguard_model::Broker::connect(&b)
        .await
        .map_err(|e| GuardCliError::Broker(e.to_string(), e.code()))?;
    Ok((b, lock))
}

/// The ProjectX broker of the options, its API key from the OS keychain, connected; and the
/// account's one-guard lock.
async fn projectx_broker(
    args: &GuardArgs,
    clock: Arc<dyn Clock>,
) -> Result<
    (
        tradeguard_projectx::ProjectxBroker,
        tradeguard_store::InstanceLock,
    ),
    GuardCliError,
> {
    let user = args.projectx_user.trim();
    let acct = args.projectx_account.trim();
    if user.is_empty() || acct.is_empty() {
        return Err(GuardCliError::BadOption {
            option: "--projectx-user/--projectx-account",
            reason: "the ProjectX user name and account are required with --broker projectx".into(),
        });
    }
    let key = match tradeguard_notify::venue_secret("projectx", user) {
        Ok(Some(k)) => k,
        Ok(None) => {
            return Err(GuardCliError::Broker(
                format!(
                    "no ProjectX API key for {user} in the OS keychain: store one with `tradeguard secret projectx --account {user}` (reads it from standard input)"
                ),
                "projectx.no_key",
            ));
        }
        Err(e) => return Err(GuardCliError::Broker(e.to_string(), e.code())),
    };
    let hosts = match &args.projectx_api {
        Some(api) => {
            tradeguard_projectx::Hosts::custom(api, args.projectx_rtc.as_deref().unwrap_or(api))
        }
        None => tradeguard_projectx::Hosts::topstepx(),
    };
    println!(
        "guard: ProjectX at {} user {user} account {acct}",
        hosts.api
    );
    let settings = tradeguard_projectx::ProjectxSettings::new(
        hosts,
        user,
        tradeguard_projectx::ApiKey::new(key),
        acct,
    );
    let b = tradeguard_projectx::ProjectxBroker::new(settings, clock.clone())
        .map_err(|e| GuardCliError::Broker(e.to_string(), e.code()))?;
    tradeguard_model::Broker::connect(&b)
        .await
        .map_err(|e| GuardCliError::Broker(e.to_string(), e.code()))?;
    let lock = tradeguard_store::lock_account(
        &tradeguard_store::account_lock_dir(),
        "projectx",
        b.account_id().as_str(),
        clock.now().millis(),
    )?;
    Ok((b, lock))
}

/// Failures of the guard command. A bad `--config` file is not one: the guard runs without it
/// (see the module docs).
#[derive(Debug, thiserror::Error)]
pub enum GuardCliError {
    /// A bad option value.
    #[error("option {option}: {reason}")]
    BadOption {
        /// Option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Simulator set-up.
    #[error("simulator: {0}")]
    Sim(#[from] tradeguard_sim::SimError),
    /// The journal database could not be opened (another guard holds it, damaged, ...).
    #[error("journal database: {0}")]
    Store(#[from] StoreError),
    /// No data directory could be determined.
    #[error("no data directory: set --data-dir or {DATA_DIR_ENV} (HOME is not set)")]
    NoDataDir,
    /// The guard failed to start.
    #[error("guard: {0}")]
    Guard(#[from] tradeguard_engine::enforce::EnforceError),
    /// Runtime / data dir.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The broker refused the connection or the account.
    #[error("broker: {0} ({1})")]
    Broker(String, &'static str),
}

impl GuardCliError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadOption { .. } => "guard.bad_option",
            Self::Sim(e) => e.code(),
            Self::Store(e) => e.code(),
            Self::NoDataDir => "guard.no_data_dir",
            Self::Guard(e) => e.code(),
            Self::Io(_) => "guard.io",
            Self::Broker(_, code) => code,
        }
    }
}

/// The `[guard]` table of the config file (the rest of the file is the risk rules).
#[derive(Debug, Default, serde::Deserialize)]
struct GuardFile {
    #[serde(default)]
    guard: GuardSection,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardSection {
    dry_run: Option<bool>,
    reconcile_secs: Option<f64>,
    stall_secs: Option<f64>,
    status_secs: Option<f64>,
}

fn positive_secs(v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{v} is not a positive number of seconds"))
}

fn secs(option: &'static str, v: f64) -> Result<Duration, GuardCliError> {
    positive_secs(v).map_err(|reason| GuardCliError::BadOption { option, reason })
}

/// Why the `[guard]` table of the config file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardTableError {
    /// The file could not be read.
    #[error("{path}: cannot read: {message}")]
    Read {
        /// File.
        path: String,
        /// OS message.
        message: String,
    },
    /// Not valid TOML, or a `[guard]` key unknown or of the wrong type.
    #[error("{path}:{line}:{column}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Parse {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `section.key` of that line, when it has one.
        field: Option<String>,
        /// Parser message.
        message: String,
    },
    /// A value of the right type but unusable.
    #[error("{path}: field `{field}`: {reason}")]
    Invalid {
        /// File.
        path: String,
        /// `guard.key`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl GuardTableError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "guard.config_read",
            Self::Parse { .. } => "guard.config_parse",
            Self::Invalid { .. } => "guard.config_invalid",
        }
    }
}

/// The settings of one `[guard]` table over `cfg`.
fn guard_table(
    path: &str,
    text: &str,
    mut cfg: EnforceConfig,
) -> Result<EnforceConfig, GuardTableError> {
    let f: GuardFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| {
            tradeguard_engine::rules::line_col(text, s.start)
        });
        GuardTableError::Parse {
            path: path.to_owned(),
            line,
            column,
            field: tradeguard_engine::rules::field_at(text, line),
            message: e.message().trim().to_owned(),
        }
    })?;
    let secs = |field: &'static str, v: f64| {
        positive_secs(v).map_err(|reason| GuardTableError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        })
    };
    if let Some(d) = f.guard.dry_run {
        cfg.dry_run = d;
    }
    if let Some(s) = f.guard.reconcile_secs {
        cfg.reconcile_interval = secs("guard.reconcile_secs", s)?;
    }
    if let Some(s) = f.guard.stall_secs {
        cfg.stall_after = secs("guard.stall_secs", s)?;
    }
    if let Some(s) = f.guard.status_secs {
        cfg.status_interval = secs("guard.status_secs", s)?;
    }
    Ok(cfg)
}

/// The `[guard]` settings of the run and, when the file's table could not be used, why and
/// what runs instead.
struct GuardSettings {
    enforce: EnforceConfig,
    rejected: Option<(GuardTableError, &'static str)>,
}

/// The settings of `--config`'s `[guard]` table and `--status-every`; `last_good` is the text
/// of the last good rules file kept in the journal (its table stands in for a bad one).
fn enforce_config(
    args: &GuardArgs,
    last_good: Option<&str>,
) -> Result<GuardSettings, GuardCliError> {
    let mut settings = GuardSettings {
        enforce: EnforceConfig::default(),
        rejected: None,
    };
    if let Some(path) = &args.config {
        let p = path.display().to_string();
        let table = std::fs::read_to_string(path)
            .map_err(|e| GuardTableError::Read {
                path: p.clone(),
                message: e.to_string(),
            })
            .and_then(|text| guard_table(&p, &text, EnforceConfig::default()));
        match table {
            Ok(cfg) => settings.enforce = cfg,
            Err(e) => {
                // Never live by accident: the last good file's table, else dry-run.
                let kept = last_good
                    .and_then(|t| guard_table("last good rules", t, EnforceConfig::default()).ok());
                let instead = match kept {
                    Some(cfg) => {
                        settings.enforce = cfg;
                        "the [guard] settings of the last good rules file kept in the journal"
                    }
                    None => {
                        settings.enforce.dry_run = true;
                        "the default [guard] settings with dry_run = true"
                    }
                };
                settings.rejected = Some((e, instead));
            }
        }
    }
    if let Some(s) = args.status_every {
        settings.enforce.status_interval = secs("--status-every", s)?;
    }
    Ok(settings)
}

/// Simulator time as the guard sees it: the venue's start plus tokio time × speed.
struct ScaledClock {
    base: Timestamp,
    start: tokio::time::Instant,
    factor: u32,
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        self.base
            .plus(self.start.elapsed().saturating_mul(self.factor))
    }
}

/// Runs the command; the exit code is 0 after a clean stop, 2 on bad options, 1 otherwise.
pub fn run(args: GuardArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&GuardCliError::Io(e)),
    };
    match rt.block_on(guard_main(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn report(e: &GuardCliError) -> ExitCode {
    eprintln!("tradeguard guard: error [{}]: {e}", e.code());
    match e {
        GuardCliError::BadOption { .. } => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn guard_main(args: GuardArgs) -> Result<(), GuardCliError> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let run_for = args.run_for.map(|s| secs("--for", s)).transpose()?;
    if let Some(s) = args.status_every {
        secs("--status-every", s)?;
    }
    if args.broker == BrokerKind::Sim && args.speed == 0 {
        return Err(GuardCliError::BadOption {
            option: "--speed",
            reason: "must be at least 1".into(),
        });
    }
    let kind = args.market_hours.unwrap_or(match (args.broker, args.demo) {
        (BrokerKind::Projectx, _) | (BrokerKind::Sim, DemoKind::Futures) => HoursKind::CmeGlobex,
        _ => HoursKind::UsEquity,
    });
    let sim = args.broker == BrokerKind::Sim;
    let hours: Arc<dyn MarketHours> = match kind {
        HoursKind::AlwaysOpen => Arc::new(AlwaysOpen),
        HoursKind::UsEquity if sim => Arc::new(UsEquityHours::fixed_offset(
            tradeguard_sim::calendar::ET_OFFSET_SECS,
        )),
        HoursKind::UsEquity => Arc::new(UsEquityHours::new_york()),
        // The simulator's Globex week: Chicago standard time (its New York time less an hour).
        HoursKind::CmeGlobex if sim => Arc::new(CmeGlobexHours::Fixed(
            tradeguard_sim::calendar::CT_OFFSET_SECS,
        )),
        HoursKind::CmeGlobex => Arc::new(CmeGlobexHours::Chicago),
    };
    let dir = data_dir(&args)?;
    // Private (0700 on Unix, tightened when it exists): the journal names accounts and positions.
    tradeguard_store::create_private_dir(&dir)?;
    let store = Store::open(StoreConfig::new(dir.join(DB_FILE)))?;
    println!("guard: journal {}", dir.join(DB_FILE).display());
    // The last good rules file (its [guard] table stands in for a bad one).
    let last_good = match store.reader().latest_risk_config() {
        Ok(r) => r.map(|r| r.config.text),
        Err(e) => {
            eprintln!(
                "tradeguard guard: the last good rules could not be read [{}]: {e}",
                e.code()
            );
            None
        }
    };
    let GuardSettings {
        enforce,
        rejected: guard_rejected,
    } = enforce_config(&args, last_good.as_deref())?;
    // The rules file's [assignment] table (read at start; none or a bad file: the defaults).
    let mut policy = AssignmentPolicy::default();
    let evaluator: Box<dyn RuleEvaluator> = match &args.config {
        Some(path) => {
            let rules = RiskRules::watch(path, hours.clone());
            policy = rules.config().assignment.clone();
            match rules.start_error() {
                None => println!(
                    "guard: {} risk rule(s) from {} (watched for edits)",
                    rules.rule_count(),
                    path.display()
                ),
                Some(e) => println!(
                    "guard: risk rules file REJECTED [{}]: {e}; running with the last good rules or none (see the alert), watching {} for a fix",
                    e.code(),
                    path.display()
                ),
            }
            Box::new(rules)
        }
        None => {
            println!("guard: no risk rules (--config not given)");
            Box::new(NoRules)
        }
    };
    println!("guard: assignments: {}", policy.describe());
    let mut engine = EngineConfig::default();
    // The account the journal is kept for: the demo's, or the IB account the gateway confirms.
    let account: AccountId;
    let mut account_lock = None;
    let (broker, clock): (Arc<dyn Broker>, Arc<dyn Clock>) = match args.broker {
        BrokerKind::Sim => {
            let scenario = match args.demo {
                DemoKind::Options => tradeguard_sim::Scenario::demo(args.seed),
                DemoKind::Futures => tradeguard_sim::Scenario::futures_demo(args.seed),
            };
            let venue = scenario.venue()?;
            let clock = ScaledClock {
                base: venue.now(),
                start: tokio::time::Instant::now(),
                factor: args.speed,
            };
            engine.watch_symbols = scenario
                .config
                .underlyings
                .iter()
                .map(|u| u.symbol.clone())
                .collect();
            account = scenario.config.account.clone();
            let b = tradeguard_sim::SimBroker::new(
                venue,
                tradeguard_sim::Speed::Multiplier(args.speed),
            );
            println!(
                "guard: simulated demo venue, seed {}, speed {}x",
                args.seed, args.speed
            );
            (Arc::new(b), Arc::new(clock))
        }
        BrokerKind::Ib => {
            let settings = tradeguard_ibkr::IbSettings {
                host: args.ib_host.clone(),
                port: args.ib_port,
                client_id: args.ib_client_id,
                account: args.ib_account.clone(),
                ..tradeguard_ibkr::IbSettings::default()
            };
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            println!(
                "guard: IB at {}:{} client id {}",
                args.ib_host, args.ib_port, args.ib_client_id
            );
            let ib = tradeguard_ibkr::IbBroker::new(settings, clock.clone());
            // Connected first: the account is known only then, and one guard per account on
            // this machine (the app's and this one share the lock whatever their data dirs).
            ib.connect_ib()
                .await
                .map_err(|e| GuardCliError::Broker(e.to_string(), e.code()))?;
            account = AccountId::new(ib.account_id());
            account_lock = Some(tradeguard_store::lock_account(
                &tradeguard_store::account_lock_dir(),
                "ib",
                account.as_str(),
                clock.now().millis(),
            )?);
            println!("guard: guarding IB account {account}");
            (Arc::new(ib), clock)
        }
        BrokerKind::Projectx => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let (b, lock) = projectx_broker(&args, clock.clone()).await?;
            account = b.account_id();
            account_lock = Some(lock);
            println!("guard: guarding ProjectX account {account}");
            (Arc::new(b), clock)
        }
        BrokerKind::Tradier => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let (b, lock) = tradier_broker(&args, clock.clone()).await?;
            account = b.account_id().clone();
            account_lock = Some(lock);
            println!("guard: guarding Tradier account {account}");
            (Arc::new(b), clock)
        }
    };
    let journal: Arc<dyn Journal> = Arc::new(StoreJournal::new(&store, clock.clone(), account));
    let alerts_cfg = args
        .alerts
        .as_ref()
        .map(|p| (p, tradeguard_notify::read_config(p)));
    let (sink, inbox) = tradeguard_notify::inbox();
    let relay_on = matches!(&alerts_cfg, Some((_, Ok(_))));
    let guard = Guard::start(GuardDeps {
        relay: relay_on.then(|| sink.clone() as Arc<dyn tradeguard_engine::alert::AlertSink>),
        broker,
        journal: journal.clone(),
        clock: clock.clone(),
        risk: Box::new(PricingStressModel::new(clock.clone())),
        engine,
        enforce,
        evaluator,
        hours,
        backstops: Vec::new(),
        notifier: Arc::new(LogNotifier),
        assignment: AssignmentConfig {
            policy: policy.clone(),
            ..AssignmentConfig::default()
        },
    })
    .await?;
    // The live book fills from the broker's events after the start; the strategy book was
    // built during it (journal + broker snapshot), so it is what the readiness line reports.
    let strategies = guard.strategies();
    println!(
        "guard: started; {} strateg{} guarded",
        strategies.len(),
        if strategies.len() == 1 { "y" } else { "ies" }
    );
    for s in &strategies {
        println!(
            "guard: strategy {}: {:?}{}",
            if s.name.trim().is_empty() {
                s.id.to_string()
            } else {
                s.name.clone()
            },
            s.state,
            s.broken_reason
                .as_ref()
                .map_or_else(String::new, |r| format!(" ({})", r.code()))
        );
    }
    let print_alert = |a: &tradeguard_engine::Alert| {
        println!("alert [{}] {:?}: {}", a.code, a.severity, a.message);
    };
    for a in guard.startup_alerts() {
        print_alert(a);
    }
    let trading = guard.status().await.trading;
    if args.unlock {
        match guard.unlock_trading("the trader (--unlock at start)").await {
            Ok(true) => println!(
                "guard: opening orders unlocked (were {:?}: {})",
                trading.state, trading.why
            ),
            Ok(false) => println!("guard: --unlock: opening orders were not locked"),
            Err(e) => println!("guard: --unlock failed: {e} ({})", e.code()),
        }
    } else if trading.state != tradeguard_engine::TradingState::Active {
        println!(
            "guard: opening orders locked ({:?}: {}); closes still go; --unlock lifts it",
            trading.state, trading.why
        );
    }
    let mut alerts = guard.subscribe_alerts();
    let mut status = guard.watch_status();
    let mut relay = None;
    match alerts_cfg {
        None => println!("guard: no off-desk alert channels (--alerts not given)"),
        Some((path, Ok(cfg))) => {
            println!(
                "guard: alerts: {} channel(s) from {}: {}",
                cfg.channel.len(),
                path.display(),
                cfg.channel
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.kind.type_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            relay = tradeguard_notify::start_for_guard(
                &guard,
                journal.clone(),
                clock.clone(),
                cfg,
                Arc::new(tradeguard_notify::Keychain),
                (sink, inbox),
            )
            .await;
        }
        Some((path, Err(e))) => {
            println!(
                "guard: alerts file REJECTED [{}]: {e}; no off-desk alerts",
                e.code()
            );
            tradeguard_notify::alert_rejected(&guard, path, &e, "Fix the file and restart.").await;
        }
    }
    if let Some((e, instead)) = guard_rejected {
        guard
            .raise_alert(
                Severity::Critical,
                "guard.config_rejected",
                format!(
                    "[guard] settings rejected: {e} ({}). The guard runs with {instead}; fix the file and restart to apply its [guard] settings.",
                    e.code()
                ),
            )
            .await;
    }
    let deadline = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(deadline);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            () = &mut signal => {
                println!("guard: signal received, stopping");
                break;
            }
            a = alerts.recv() => match a {
                Ok(a) => print_alert(&a),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("alert: {n} alerts skipped (in the journal)"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            r = status.changed() => {
                if r.is_err() {
                    break;
                }
                let s = status.borrow_and_update().clone();
                println!("{s}");
            }
        }
    }
    println!("{}", guard.status().await);
    if let Some(r) = &relay {
        r.shutdown();
    }
    guard.shutdown().await;
    drop(guard);
    drop(account_lock);
    store.close().await?;
    println!("guard: stopped cleanly");
    Ok(())
}

/// `--data-dir`, else `TRADEGUARD_DATA_DIR`, else `$XDG_DATA_HOME/tradeguard`, else
/// `~/.local/share/tradeguard`.
fn data_dir(args: &GuardArgs) -> Result<PathBuf, GuardCliError> {
    if let Some(d) = &args.data_dir {
        return Ok(d.clone());
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env(DATA_DIR_ENV) {
        return Ok(d);
    }
    if let Some(x) = env("XDG_DATA_HOME") {
        return Ok(x.join("tradeguard"));
    }
    env("HOME")
        .map(|h| h.join(".local/share/tradeguard"))
        .ok_or(GuardCliError::NoDataDir)
}
