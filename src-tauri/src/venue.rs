//! Connects the app to its venue (the simulated one by default) and starts the guard on it (the
//! execution coordinator, enforcement and the assignment guard, journaled in the app's
//! database). The portfolio view is drawn from the guard's own live book; the UI is told at most
//! [`EMIT_INTERVAL`] apart, so a busy market cannot flood the webview. Alerts live in the
//! database; the UI is told when the guard raises one.

use crate::events::PortfolioChanged;
use crate::view::{self, PortfolioView};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tauri_specta::Event;
use tradeguard_engine::assignment::{self, AssignmentConfig};
use tradeguard_engine::enforce::{EnforceConfig, EnforceError, Guard, GuardDeps, RiskRules};
use tradeguard_engine::rules::ConfigError;
use tradeguard_engine::{EngineConfig, PricingStressModel, StoreJournal};
use tradeguard_model::{Broker, BrokerError, Timestamp};
use tradeguard_sim::{Scenario, SimBroker, SimError, SimVenue};
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
    #[error("the risk rules could not be loaded: {0}")]
    Rules(#[from] ConfigError),
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
            Self::Rules(e) => e.code(),
            Self::StarterConfig { .. } => "rules.starter_config",
        }
    }
}

/// A running venue connection and the guard on it.
pub struct Venue {
    name: &'static str,
    broker: Arc<SimBroker>,
    venue: Arc<Mutex<SimVenue>>,
    guard: Guard,
    store: Arc<Store>,
    rules_path: std::path::PathBuf,
    enforce: EnforceConfig,
    /// Venue seconds per wall second (10 on the demo simulator, 1 on a real broker).
    speed: f64,
    started: std::time::Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Venue {
    /// Builds the demo scenario for `seed`, connects to it and starts the guard, journaled in
    /// `store`, with the risk rules of `rules_path` (a starter file in dry-run is written when
    /// there is none).
    pub async fn start_sim(
        seed: u64,
        store: Arc<Store>,
        rules_path: std::path::PathBuf,
        notifier: Arc<dyn assignment::notify::Notifier>,
    ) -> Result<Self, VenueError> {
        let scenario = Scenario::demo(seed);
        let speed = f64::from(scenario.speed.factor().unwrap_or(1));
        let sim = Arc::new(SimBroker::new(scenario.venue()?, scenario.speed));
        let venue = sim.venue();
        let broker: Arc<dyn Broker> = sim.clone();
        let clock = sim.clock();
        let journal = Arc::new(StoreJournal::new(
            &store,
            clock.clone(),
            scenario.config.account.clone(),
        ));
        let engine = EngineConfig {
            watch_symbols: scenario
                .config
                .underlyings
                .iter()
                .map(|u| u.symbol.clone())
                .collect(),
            // The demo holds a short strangle on purpose: don't buy protection for it at start.
            hedge_on_startup: false,
            ..EngineConfig::default()
        };
        write_starter_rules(&rules_path)?;
        let enforce = EnforceConfig::default();
        // The simulator's calendar is New York standard time (UTC-5) all year.
        let sim_hours = Arc::new(assignment::hours::UsEquityHours::fixed_offset(-5 * 3600));
        let guard = Guard::start(GuardDeps {
            broker: broker.clone(),
            journal,
            clock: clock.clone(),
            risk: Box::new(PricingStressModel::new(clock)),
            engine,
            enforce: enforce.clone(),
            evaluator: Box::new(RiskRules::load(&rules_path, sim_hours.clone())?),
            hours: sim_hours,
            backstops: Vec::new(),
            notifier,
            assignment: AssignmentConfig::default(),
        })
        .await?;
        tracing::info!(
            seed,
            positions = guard.positions().len(),
            strategies = guard.strategies().len(),
            rules = %rules_path.display(),
            "guarding the simulated venue"
        );
        Ok(Self {
            name: "sim",
            broker: sim,
            venue,
            guard,
            store,
            rules_path,
            enforce,
            speed,
            started: std::time::Instant::now(),
        })
    }

    /// The running guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The guard's health, rules file and protections for the UI.
    pub async fn guard_view(&self) -> crate::view::GuardView {
        let strategies = self.guard.strategies();
        let names = |id: &tradeguard_model::StrategyId| {
            strategies
                .iter()
                .find(|s| &s.id == id)
                .map_or_else(|| id.to_string(), |s| s.name.clone())
        };
        let closes =
            crate::view::emergency_closes(&self.guard.assignment_status(), &names, self.now());
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
    /// delivered as the broker would overnight: a position change with no execution.
    pub fn force_assignment(&self, instrument: &str, contracts: i64) -> Result<(), VenueError> {
        let id = tradeguard_model::InstrumentId::new(instrument);
        self.broker.force_assignment(&id, contracts)?;
        tracing::warn!(
            instrument,
            contracts,
            "simulator: assignment forced by the user"
        );
        Ok(())
    }

    /// The venue's clock (virtual on the simulator).
    pub fn now(&self) -> Timestamp {
        lock(&self.venue).now()
    }

    pub fn portfolio(&self) -> PortfolioView {
        let now = self.now();
        let stale = self.enforce.quote_stale_after;
        self.guard
            .read_live_book(|book| view::portfolio(self.name, book, now, stale))
    }

    /// Pushes the portfolio to the UI when the guard's book changed, at most every
    /// [`EMIT_INTERVAL`]. Mark problems are logged by the guard's enforcer, not here.
    pub async fn publish_portfolio(self: Arc<Self>, app: tauri::AppHandle) {
        let mut tick = tokio::time::interval(EMIT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published = None;
        loop {
            tick.tick().await;
            let applied = self.guard.read_live_book(|b| b.events_applied());
            if published == Some(applied) {
                continue;
            }
            published = Some(applied);
            if let Err(e) = PortfolioChanged(self.portfolio()).emit(&app) {
                tracing::warn!(error = %e, "portfolio update not delivered to the UI");
            }
        }
    }
}

/// The example rules shipped with Tradeguard (every rule documented).
const EXAMPLE_RULES: &str = include_str!("../../config/risk.example.toml");

/// First start: writes the example rules with the global dry-run on, so example limits never
/// trade by themselves: every rule decides, logs and audits, and sends nothing until the trader
/// edits the file and sets `dry_run = false`. An existing file is never touched.
fn write_starter_rules(path: &std::path::Path) -> Result<(), VenueError> {
    if path.exists() {
        return Ok(());
    }
    let starter = EXAMPLE_RULES.replacen("\ndry_run = false\n", "\ndry_run = true\n", 1);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
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
