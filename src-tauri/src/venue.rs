//! Connects the app to its venue (the simulated one by default) and starts the guard on it (the
//! execution coordinator, enforcement and the assignment guard, journaled in the app's
//! database). The portfolio view is drawn from the guard's own live book; the UI is told at most
//! [`EMIT_INTERVAL`] apart, so a busy market cannot flood the webview. Alerts live in the
//! database; the UI is told when the guard raises one.

use crate::events::PortfolioChanged;
use crate::view::{self, PortfolioView};
use std::sync::Arc;
use std::time::Duration;
use tauri_specta::Event;
use tradeguard_engine::assignment::{self, AssignmentConfig};
use tradeguard_engine::enforce::{EnforceConfig, EnforceError, Guard, GuardDeps, RiskRules};
use tradeguard_engine::{EngineConfig, PricingStressModel, StoreJournal};
use tradeguard_model::{Broker, BrokerError, Clock, Timestamp};
use tradeguard_sim::{Scenario, SimBroker, SimError};
use tradeguard_store::Store;

/// Fastest rate at which portfolio updates are pushed to the UI.
pub const EMIT_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error("the simulated venue could not be built: {0}")]
    Sim(#[from] SimError),
    #[error("the broker refused: {0}")]
    Broker(#[from] BrokerError),
    #[error("the guard did not start: {0}")]
    Guard(#[from] EnforceError),
    #[error("only the simulated venue can force an assignment")]
    NotSimulated,
    #[error("IB Gateway/TWS: {0}")]
    Ib(#[from] tradeguard_ibkr::IbError),
    #[error(
        "IB Gateway/TWS at {address} gave no usable session within {secs} s: check that it runs with the API enabled on that port, then restart Tradeguard (or test the connection in Settings)"
    )]
    IbTimeout { address: String, secs: u64 },
    #[error("Tradier: {0}")]
    Tradier(#[from] tradeguard_tradier::TradierError),
    #[error(
        "{venue} at {address} gave no usable session within {secs} s: check the network, then restart Tradeguard (or test the connection in Settings)"
    )]
    RemoteTimeout {
        venue: &'static str,
        address: String,
        secs: u64,
    },
    #[error("ProjectX: {0}")]
    Projectx(#[from] tradeguard_projectx::ProjectxError),
    #[error("{0}")]
    Store(#[from] tradeguard_store::StoreError),
    #[error("cannot write the starter risk config {path}: {source}")]
    StarterConfig {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl VenueError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sim(e) => e.code(),
            Self::Broker(e) => e.code(),
            Self::Guard(e) => e.code(),
            Self::NotSimulated => "venue.not_simulated",
            Self::Ib(e) => e.code(),
            Self::IbTimeout { .. } => "ib.connect_timeout",
            Self::Tradier(e) => e.code(),
            Self::RemoteTimeout { .. } => "venue.connect_timeout",
            Self::Projectx(e) => e.code(),
            Self::StarterConfig { .. } => "rules.starter_config",
            Self::Store(e) => e.code(),
        }
    }
}

/// A running venue connection and the guard on it.
pub struct Venue {
    name: &'static str,
    /// The simulated venue, when that is what runs (forced assignments are its own).
    sim: Option<Arc<SimBroker>>,
    clock: Arc<dyn Clock>,
    hours: Arc<dyn assignment::hours::MarketHours>,
    guard: Guard,
    store: Arc<Store>,
    rules_path: std::path::PathBuf,
    enforce: EnforceConfig,
    /// Venue seconds per wall second (10 on the demo simulator, 1 on a real broker).
    speed: f64,
    started: std::time::Instant,
    /// Margin use over time, sampled by [`Self::publish_portfolio`].
    margin: std::sync::Mutex<std::collections::VecDeque<MarginSample>>,
    /// The machine-wide lock of the broker account (real venues): one guard per account,
    /// the CLI's included, held while this venue runs.
    _account_lock: Option<tradeguard_store::InstanceLock>,
    /// The off-desk relay (email, chat, phone push): `None` only when it could not start.
    relay: Option<tradeguard_notify::Relay>,
}

/// One account's margin figures at one time (the dashboard's margin-over-time chart).
#[derive(Debug, Clone, PartialEq, serde::Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct MarginSample {
    pub account: String,
    /// Venue time, milliseconds since the epoch.
    pub at_ms: f64,
    pub net_liquidation: f64,
    pub maintenance_margin: f64,
    pub excess_liquidity: f64,
    /// Maintenance margin / net liquidation (0 when net liquidation is not positive).
    pub utilisation: f64,
}

/// Margin samples kept (per app run): two hours at one every [`MARGIN_SAMPLE_EVERY`].
pub const MARGIN_SAMPLES_KEPT: usize = 7200;
/// Wall time between margin samples.
pub const MARGIN_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// A venue reached over the network with a login (Tradier, ProjectX): its start after the
/// adapter's own first step (log-in, account), the account lock, the guard, and a disconnect
/// when any of it fails or takes longer than allowed.
struct Remote {
    name: &'static str,
    address: String,
    broker: Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    store: Arc<Store>,
    rules_path: std::path::PathBuf,
    notifier: Arc<dyn assignment::notify::Notifier>,
    /// The venue's market hours (US equity for Tradier, CME Globex for ProjectX).
    hours: Arc<dyn assignment::hours::MarketHours>,
}

impl Remote {
    async fn start(
        self,
        first: impl std::future::Future<Output = Result<tradeguard_model::AccountId, VenueError>>,
        timeout: Duration,
    ) -> Result<Venue, VenueError> {
        let broker = self.broker.clone();
        let (name, address) = (self.name, self.address.clone());
        let start = async {
            let account = first.await?;
            let account_lock = tradeguard_store::lock_account(
                &tradeguard_store::account_lock_dir(),
                name,
                account.as_str(),
                self.clock.now().millis(),
            )?;
            tracing::info!(venue = name, %address, %account, "connected");
            let v = Venue::start_guard(Start {
                name,
                broker: self.broker,
                clock: self.clock,
                sim: None,
                hours: self.hours,
                account,
                engine: EngineConfig::default(),
                speed: 1.0,
                store: self.store,
                rules_path: self.rules_path,
                notifier: self.notifier,
                account_lock: Some(account_lock),
            })
            .await?;
            tracing::info!(
                venue = name,
                positions = v.guard.positions().len(),
                strategies = v.guard.strategies().len(),
                "guarding"
            );
            Ok(v)
        };
        let started =
            tokio::time::timeout(timeout, start)
                .await
                .unwrap_or(Err(VenueError::RemoteTimeout {
                    venue: name,
                    address,
                    secs: timeout.as_secs(),
                }));
        if started.is_err() {
            let _ = broker.disconnect().await;
        }
        started
    }
}

/// The simulated venue's market hours for the guard: its calendar is New York standard time
/// (UTC-5) all year, without holidays; a book of futures only (the futures demo) keeps its
/// Globex week (Chicago standard time, UTC-6), as the simulator trades futures.
fn sim_hours(positions: &[tradeguard_model::Position]) -> Arc<dyn assignment::hours::MarketHours> {
    let futures = !positions.is_empty()
        && positions
            .iter()
            .all(|p| matches!(p.instrument, tradeguard_model::Instrument::Future { .. }));
    if futures {
        Arc::new(tradeguard_engine::globex::CmeGlobexHours::Fixed(
            tradeguard_sim::calendar::CT_OFFSET_SECS,
        ))
    } else {
        Arc::new(assignment::hours::UsEquityHours::fixed_offset(
            tradeguard_sim::calendar::ET_OFFSET_SECS,
        ))
    }
}

/// What [`Venue::start_guard`] needs besides the broker's own setup.
struct Start {
    name: &'static str,
    broker: Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    sim: Option<Arc<SimBroker>>,
    hours: Arc<dyn assignment::hours::MarketHours>,
    account: tradeguard_model::AccountId,
    engine: EngineConfig,
    speed: f64,
    store: Arc<Store>,
    rules_path: std::path::PathBuf,
    notifier: Arc<dyn assignment::notify::Notifier>,
    account_lock: Option<tradeguard_store::InstanceLock>,
}

/// A real venue's clock (IB, Tradier, ProjectX): the wall clock, or with `TRADEGUARD_CLOCK_START` (RFC 3339, e.g.
/// `2027-01-11T09:29:00-05:00`) the wall clock shifted to start at that moment, for a demo or an
/// end-to-end test of what the guard does at the open. A value that does not parse is an error
/// in the log and the wall clock is used.
pub fn venue_clock(start: Option<&str>) -> Arc<dyn Clock> {
    let Some(text) = start.map(str::trim).filter(|t| !t.is_empty()) else {
        return Arc::new(tradeguard_model::SystemClock);
    };
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            Timestamp::from_datetime(t.with_timezone(&chrono::Utc)).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(start) => {
            tracing::warn!(
                "TRADEGUARD_CLOCK_START={text}: the guard's clock starts at {start} and runs at wall speed (market hours, countdowns and order times follow it)"
            );
            Arc::new(tradeguard_model::OffsetClock::starting_at(start))
        }
        Err(e) => {
            tracing::error!(
                "TRADEGUARD_CLOCK_START={text:?} is not an RFC 3339 time ({e}): using the wall clock"
            );
            Arc::new(tradeguard_model::SystemClock)
        }
    }
}

impl Venue {
    /// Builds the simulated venue of `scenario`, connects to it and starts the guard, journaled
    /// in `store`, with the risk rules of `rules_path` (a starter file in dry-run is written
    /// when there is none).
    pub async fn start_sim(
        scenario: Scenario,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
    ) -> Result<Self, VenueError> {
        let seed = scenario.config.seed;
        let speed = f64::from(scenario.speed.factor().unwrap_or(1));
        let sim = Arc::new(SimBroker::new(scenario.venue()?, scenario.speed));
        let engine = EngineConfig {
            watch_symbols: scenario
                .config
                .underlyings
                .iter()
                .map(|u| u.symbol.clone())
                .collect(),
            ..EngineConfig::default()
        };
        let v = Self::start_guard(Start {
            name: "sim",
            broker: sim.clone(),
            clock: sim.clock(),
            sim: Some(sim),
            hours: sim_hours(&scenario.config.positions),
            account: scenario.config.account.clone(),
            engine,
            speed,
            store,
            rules_path,
            notifier,
            account_lock: None,
        })
        .await?;
        tracing::info!(
            seed,
            positions = v.guard.positions().len(),
            strategies = v.guard.strategies().len(),
            rules = %v.rules_path.display(),
            "guarding the simulated venue"
        );
        Ok(v)
    }

    /// Connects to IB Gateway/TWS with `settings` and starts the guard on that account, within
    /// `timeout`. A start that fails or times out after the connect disconnects again, so the
    /// next attempt does not find its own session holding the client id.
    pub async fn start_ib(
        settings: tradeguard_ibkr::IbSettings,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
        timeout: Duration,
    ) -> Result<Self, VenueError> {
        let clock = venue_clock(std::env::var("TRADEGUARD_CLOCK_START").ok().as_deref());
        let address = settings.address();
        let ib = Arc::new(tradeguard_ibkr::IbBroker::new(settings, clock.clone()));
        let started = tokio::time::timeout(
            timeout,
            Self::start_ib_on(ib.clone(), &address, clock, store, rules_path, notifier),
        )
        .await
        .unwrap_or_else(|_| {
            Err(VenueError::IbTimeout {
                address: address.clone(),
                secs: timeout.as_secs(),
            })
        });
        if started.is_err() {
            ib.disconnect_ib().await;
        }
        started
    }

    async fn start_ib_on(
        ib: Arc<tradeguard_ibkr::IbBroker>,
        address: &str,
        clock: Arc<dyn Clock>,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
    ) -> Result<Self, VenueError> {
        ib.connect_ib().await?;
        let account = tradeguard_model::AccountId::new(ib.account_id());
        tracing::info!(%address, account = %account, "connected to IB");
        let account_lock = tradeguard_store::lock_account(
            &tradeguard_store::account_lock_dir(),
            "ib",
            account.as_str(),
            clock.now().millis(),
        )?;
        let v = Self::start_guard(Start {
            name: "ib",
            broker: ib,
            clock,
            sim: None,
            hours: Arc::new(assignment::hours::UsEquityHours::new_york()),
            account,
            engine: EngineConfig::default(),
            speed: 1.0,
            store,
            rules_path,
            notifier,
            account_lock: Some(account_lock),
        })
        .await?;
        tracing::info!(
            positions = v.guard.positions().len(),
            strategies = v.guard.strategies().len(),
            rules = %v.rules_path.display(),
            "guarding the IB account"
        );
        Ok(v)
    }

    /// Connects to Tradier with `settings` (the token already in them) and starts the guard
    /// on that account, within `timeout`; a start that fails disconnects again.
    pub async fn start_tradier(
        settings: tradeguard_tradier::TradierSettings,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
        timeout: Duration,
    ) -> Result<Self, VenueError> {
        let clock = venue_clock(std::env::var("TRADEGUARD_CLOCK_START").ok().as_deref());
        let address = settings.api_url.clone();
        let b = Arc::new(tradeguard_tradier::TradierBroker::new(
            settings,
            clock.clone(),
        )?);
        let first = async {
            // The token and the account first: their errors are Tradier's own, typed.
            b.test_connection().await?;
            b.connect().await?;
            Ok(b.account_id().clone())
        };
        let remote = Remote {
            name: "tradier",
            address,
            broker: b.clone(),
            clock,
            store,
            rules_path,
            notifier,
            hours: Arc::new(assignment::hours::UsEquityHours::new_york()),
        };
        remote.start(first, timeout).await
    }

    /// Connects to a ProjectX firm with `settings` (the API key in them) and starts the guard
    /// on that account, within `timeout`; a start that fails disconnects again.
    pub async fn start_projectx(
        settings: tradeguard_projectx::ProjectxSettings,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
        timeout: Duration,
    ) -> Result<Self, VenueError> {
        let clock = venue_clock(std::env::var("TRADEGUARD_CLOCK_START").ok().as_deref());
        let address = settings.hosts.api.clone();
        let b = Arc::new(tradeguard_projectx::ProjectxBroker::new(
            settings,
            clock.clone(),
        )?);
        let first = async {
            b.test_connection().await?;
            b.connect().await?;
            Ok(b.account_id())
        };
        let remote = Remote {
            name: "projectx",
            address,
            broker: b.clone(),
            clock,
            store,
            rules_path,
            notifier,
            // ProjectX trades futures: Globex hours (daily halt, CME holidays), Chicago time.
            hours: Arc::new(tradeguard_engine::globex::CmeGlobexHours::Chicago),
        };
        remote.start(first, timeout).await
    }

    async fn start_guard(s: Start) -> Result<Self, VenueError> {
        let journal: Arc<dyn tradeguard_engine::Journal> =
            Arc::new(StoreJournal::new(&s.store, s.clock.clone(), s.account));
        let (sink, inbox) = tradeguard_notify::inbox();
        if let Err(e) = write_starter_rules(&s.rules_path) {
            // The guard starts anyway: the missing file raises the rules' Critical alert.
            tracing::error!(code = e.code(), "{e}");
        }
        let enforce = EnforceConfig::default();
        let rules = RiskRules::watch(&s.rules_path, s.hours.clone());
        // The rules file's [assignment] table, read at start (a bad file: the defaults).
        let policy = rules.config().assignment.clone();
        tracing::info!("assignments: {}", policy.describe());
        let guard = Guard::start(GuardDeps {
            relay: Some(sink.clone()),
            broker: s.broker,
            journal: journal.clone(),
            clock: s.clock.clone(),
            risk: Box::new(PricingStressModel::new(s.clock.clone())),
            engine: s.engine,
            enforce: enforce.clone(),
            // A bad rules file never stops the guard: the last good rules (or none, in
            // dry-run) run with a Critical alert until the file is fixed.
            evaluator: Box::new(rules),
            hours: s.hours.clone(),
            backstops: Vec::new(),
            notifier: s.notifier,
            assignment: AssignmentConfig {
                policy,
                ..AssignmentConfig::default()
            },
        })
        .await?;
        let relay = crate::offdesk::start(
            &guard,
            journal,
            s.clock.clone(),
            &s.rules_path,
            (sink, inbox),
        )
        .await;
        Ok(Self {
            relay,
            name: s.name,
            sim: s.sim,
            clock: s.clock,
            hours: s.hours,
            guard,
            store: s.store,
            rules_path: s.rules_path,
            enforce,
            speed: s.speed,
            started: std::time::Instant::now(),
            margin: std::sync::Mutex::new(std::collections::VecDeque::new()),
            _account_lock: s.account_lock,
        })
    }

    /// The off-desk relay, when it runs.
    pub fn relay(&self) -> Option<&tradeguard_notify::Relay> {
        self.relay.as_ref()
    }

    /// Short name of the venue ("sim", "ib").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The risk rules file.
    pub fn rules_path(&self) -> &std::path::Path {
        &self.rules_path
    }

    /// The exchange's trading date now.
    pub fn trading_date(&self) -> chrono::NaiveDate {
        self.hours.local(self.now()).date()
    }

    /// The database.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The running guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The guard's health, rules file and protections for the UI.
    pub async fn guard_view(&self) -> crate::view::GuardView {
        let strategies = self.guard.strategies();
        let status = self.guard.assignment_status();
        // A completed close's strategy has left the book; the assignment guard still knows
        // its name.
        let names = |id: &tradeguard_model::StrategyId| {
            strategies
                .iter()
                .map(|s| (s.id, &s.name))
                .chain(status.strategies.iter().map(|s| (s.id, &s.name)))
                .find(|(sid, name)| sid == id && !name.trim().is_empty())
                .map_or_else(|| format!("strategy {id}"), |(_, name)| name.clone())
        };
        let closes = crate::view::emergency_closes(&status, &names, self.now());
        crate::view::guard(
            &self.guard.status().await,
            &self.rules_path,
            &self.enforce,
            self.started.elapsed(),
            self.speed,
            closes,
        )
    }

    /// Pushes the alert list (read from the database, the source of truth) to the UI at start
    /// and whenever the guard (enforcement, execution or assignment) raises an alert.
    /// Acknowledgements push their own update.
    pub async fn forward_alerts(self: Arc<Self>, app: tauri::AppHandle) {
        use tokio::sync::broadcast::error::RecvError;
        let mut alerts = self.guard.subscribe_alerts();
        loop {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || crate::commands::recent_alerts(&store)).await
            {
                Ok(Ok(list)) => crate::events::emit_alerts(&app, &list),
                Ok(Err(e)) => {
                    tracing::warn!(reason = %e.reason, "alerts could not be read: {}", e.message)
                }
                Err(e) => tracing::warn!(error = %e, "alert reader task failed"),
            }
            // A lagged receiver re-reads too: the list comes from the database, nothing is lost.
            if let Err(RecvError::Closed) = alerts.recv().await {
                return;
            }
        }
    }

    /// Simulator only: assign (short) or exercise (long) `contracts` of an option position now,
    /// delivered as the broker would overnight: a position change with no execution. Debug
    /// builds only (see `crate::acl`).
    #[cfg(debug_assertions)]
    pub fn force_assignment(&self, instrument: &str, contracts: i64) -> Result<(), VenueError> {
        let id = tradeguard_model::InstrumentId::new(instrument);
        let Some(sim) = &self.sim else {
            return Err(VenueError::NotSimulated);
        };
        sim.force_assignment(&id, contracts)?;
        tracing::warn!(
            instrument,
            contracts,
            "simulator: assignment forced by the user"
        );
        Ok(())
    }

    /// Simulator only: moves `symbol` by `bps` basis points now (debug builds: see
    /// `crate::commands::sim_move_market`). Returns the new price.
    pub fn move_market(
        &self,
        symbol: &str,
        bps: i64,
    ) -> Result<tradeguard_model::Price, VenueError> {
        let Some(sim) = &self.sim else {
            return Err(VenueError::NotSimulated);
        };
        let to = sim.move_market(symbol, bps)?;
        tracing::warn!(symbol, bps, to = %to, "simulator: market moved by the user");
        Ok(to)
    }

    /// The venue's clock (virtual on the simulator).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn portfolio(&self) -> PortfolioView {
        let now = self.now();
        let stale = self.enforce.quote_stale_after;
        self.guard
            .read_live_book(|book| view::portfolio(self.name, book, now, stale))
    }

    /// Pushes the portfolio and the strategies to the UI when the guard's book changed, at most
    /// every [`EMIT_INTERVAL`], and samples margin use every [`MARGIN_SAMPLE_EVERY`]. Mark
    /// problems are logged by the guard's enforcer, not here.
    pub async fn publish_portfolio(self: Arc<Self>, app: tauri::AppHandle) {
        let mut tick = tokio::time::interval(EMIT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published = None;
        let mut sampled: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if sampled.is_none_or(|t| t.elapsed() >= MARGIN_SAMPLE_EVERY) {
                sampled = Some(std::time::Instant::now());
                self.sample_margin();
            }
            let applied = self.guard.read_live_book(|b| b.events_applied());
            if published == Some(applied) {
                continue;
            }
            published = Some(applied);
            if let Err(e) = PortfolioChanged(self.portfolio()).emit(&app) {
                tracing::warn!(error = %e, "portfolio update not delivered to the UI");
            }
            let rows = crate::flatten::strategy_rows(&self.guard);
            if let Err(e) = crate::events::StrategiesChanged(rows).emit(&app) {
                tracing::warn!(error = %e, "strategies update not delivered to the UI");
            }
        }
    }

    fn sample_margin(&self) {
        let at_ms = self.now().nanos() as f64 / 1e6;
        let samples: Vec<MarginSample> = self.guard.read_live_book(|b| {
            b.accounts()
                .map(|a| {
                    let nl = a.net_liquidation.to_f64();
                    let mm = a.maintenance_margin.to_f64();
                    MarginSample {
                        account: a.account.as_str().to_owned(),
                        at_ms,
                        net_liquidation: nl,
                        maintenance_margin: mm,
                        excess_liquidity: a.excess_liquidity.to_f64(),
                        utilisation: if nl > 0.0 { mm / nl } else { 0.0 },
                    }
                })
                .collect()
        });
        let mut kept = self
            .margin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in samples {
            if kept.len() >= MARGIN_SAMPLES_KEPT {
                kept.pop_front();
            }
            kept.push_back(s);
        }
    }

    /// Margin samples since start, oldest first.
    pub fn margin_history(&self) -> Vec<MarginSample> {
        self.margin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Every account id the guard knows (its book's accounts and the accounts of its
    /// positions): what the diagnostics export redacts.
    pub fn known_accounts(&self) -> Vec<String> {
        let now = self.now();
        let stale = self.enforce.quote_stale_after;
        let ids: std::collections::BTreeSet<String> = self.guard.read_live_book(|b| {
            b.accounts()
                .map(|a| a.account.as_str().to_owned())
                .chain(
                    b.positions(now, stale)
                        .into_iter()
                        .map(|p| p.account.as_str().to_owned()),
                )
                .collect()
        });
        ids.into_iter().collect()
    }
}

/// The example rules shipped with Tradeguard (every rule documented).
const EXAMPLE_RULES: &str = include_str!("../../config/risk.example.toml");

/// First start: writes the example rules, which ship with the global dry-run on, so example
/// limits never trade by themselves: every rule decides, logs and audits, and sends nothing
/// until the trader edits the file and sets `dry_run = false`. An existing file is never
/// touched.
fn write_starter_rules(path: &std::path::Path) -> Result<(), VenueError> {
    if path.exists() {
        return Ok(());
    }
    let starter = EXAMPLE_RULES;
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            tradeguard_store::create_private_dir(dir)?;
        }
        std::fs::write(path, starter)
    };
    write().map_err(|source| VenueError::StarterConfig {
        path: path.to_path_buf(),
        source,
    })?;
    tracing::warn!(path = %path.display(), "wrote starter risk rules in DRY-RUN: edit them and set dry_run = false to let the rules act");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_start_shifts_the_wall_clock_and_a_bad_one_is_the_wall_clock() {
        let c = venue_clock(Some("2027-01-11T09:29:00-05:00"));
        let want = Timestamp::from_datetime(
            chrono::DateTime::parse_from_rfc3339("2027-01-11T14:29:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
        )
        .unwrap();
        assert!(c.now().duration_since(want) < Duration::from_secs(5));
        let wall = tradeguard_model::SystemClock.now();
        for bad in [None, Some(""), Some("09:29 tomorrow")] {
            assert!(venue_clock(bad).now().duration_since(wall) < Duration::from_secs(5));
            assert!(wall.duration_since(venue_clock(bad).now()) < Duration::from_secs(5));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_rules_file_at_start_still_starts_the_guard_with_a_critical_alert() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("risk.toml");
        std::fs::write(
            &rules,
            "dry_run = false\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = \"two\"\n",
        )
        .expect("write");
        let store = Arc::new(
            Store::open(tradeguard_store::StoreConfig::new(
                dir.path().join("tradeguard.db"),
            ))
            .expect("store"),
        );
        let notifier = Arc::new(assignment::RecordingNotifier::new());
        let v = Venue::start_sim(Scenario::demo(7), store, rules.clone(), notifier.clone())
            .await
            .expect("the venue starts whatever the rules file holds");
        let rejected: Vec<_> = v
            .guard()
            .startup_alerts()
            .iter()
            .filter(|a| a.code == "rules.config_rejected")
            .cloned()
            .collect();
        assert_eq!(rejected.len(), 1, "{:#?}", v.guard().startup_alerts());
        assert_eq!(rejected[0].severity, tradeguard_engine::Severity::Critical);
        let m = &rejected[0].message;
        assert!(m.contains(&format!("{}:5", rules.display())), "{m}");
        assert!(m.contains("max_contracts.max_contracts"), "{m}");
        assert!(!notifier.all().is_empty(), "the person is notified");
        assert!(v.guard().status().await.dry_run, "no rules known: dry-run");
        v.guard().shutdown().await;
    }

    #[test]
    fn starter_rules_are_the_example_in_global_dry_run_and_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("risk.toml");
        write_starter_rules(&path).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        let global: Vec<&str> = text.lines().filter(|l| l.starts_with("dry_run")).collect();
        assert_eq!(global.first(), Some(&"dry_run = true"), "global dry-run on");
        let cfg = tradeguard_engine::rules::RiskConfig::load(&path).expect("parses");
        assert!(cfg.dry_run);
        // An existing file (the trader's) is never overwritten.
        std::fs::write(&path, "dry_run = false\n").expect("edit");
        write_starter_rules(&path).expect("kept");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "dry_run = false\n"
        );
    }
}
