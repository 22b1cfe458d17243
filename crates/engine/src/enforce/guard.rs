//! [`Guard`]: the one place the enforcement runtime is wired — broker, execution coordinator,
//! live book, strategy book, rules (through a [`RuleEvaluator`]), the assignment guard and the
//! supervised tasks (event pump, enforcer, reconciler, status, alert forwarders, strategy
//! link). The desktop app and `tradeguard guard` both call [`Guard::start`] and use the
//! returned handle.
//!
//! Notifications: every Critical alert — the guard's own, the coordinator's and the assignment
//! guard's — is notified exactly once through [`GuardDeps::notifier`] (by the alerter); the
//! assignment guard gets the notifier wrapped in [`CriticalViaAlerts`] so it does not notify
//! its Critical alerts a second time.

use crate::alert::{Alert, Severity};
use crate::assignment::MarketHours;
use crate::assignment::{
    self, AssignmentConfig, AssignmentGuard, GuardHandle, GuardStatus, Notifier,
};
use crate::config::EngineConfig;
use crate::coordinator::{EngineDeps, ExecutionCoordinator};
use crate::enforce::alerter::Alerter;
use crate::enforce::closer::CloseJob;
use crate::enforce::config::EnforceConfig;
use crate::enforce::core::{AssignmentRestart, Core, GuardState, SharedCore};
use crate::enforce::error::EnforceError;
use crate::enforce::evaluator::RuleEvaluator;
use crate::enforce::status::{StatusSummary, summary};
use crate::enforce::strategy_link::{self, CriticalViaAlerts, LinkState};
use crate::enforce::supervisor::{Heartbeat, RestartPolicy, Supervisor, TaskFactory, TaskHealth};
use crate::enforce::{enforcer, pump, reconcile, status};
use crate::journal::Journal;
use crate::live::PositionView;
use crate::risk::RiskModel;
use crate::stop::StopSpec;
use crate::strategies::{StrategyBook, StrategyView};
use futures::FutureExt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tradeguard_model::{AccountId, Broker, Clock, Strategy};

/// Everything a guard needs. Swapping the journal (memory → SQLite store) is the one line
/// that builds `journal`.
pub struct GuardDeps {
    /// The broker (simulator or IB).
    pub broker: Arc<dyn Broker>,
    /// Durable journal shared with the coordinator (forced-unwind flags live here).
    pub journal: Arc<dyn Journal>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Stress model of the pre-trade gate.
    pub risk: Box<dyn RiskModel>,
    /// Coordinator settings.
    pub engine: EngineConfig,
    /// Enforcement settings.
    pub enforce: EnforceConfig,
    /// The rules.
    pub evaluator: Box<dyn RuleEvaluator>,
    /// The exchange calendar: stall detection (regular session), the assignment guard (arming
    /// for the open, expiry-day checks).
    pub hours: Arc<dyn MarketHours>,
    /// Broker-side backstops: GTC stop orders resting at the broker (optional, per strategy).
    pub backstops: Vec<StopSpec>,
    /// Reaches a person outside the window (OS notification in the app, log in the CLI):
    /// exactly one notification per Critical alert of any source.
    pub notifier: Arc<dyn Notifier>,
    /// Assignment guard settings.
    pub assignment: AssignmentConfig,
    /// Off-desk relay (email, chat, phone push): every alert of any source, once. `None`
    /// when no channel is configured.
    pub relay: Option<Arc<dyn crate::alert::AlertSink>>,
}

/// Shortest time a strategy that vanished from the book stays known to the assignment guard.
const RETAIN_VANISHED_MIN: Duration = Duration::from_secs(60);

/// Handle to a running guard (cheap to clone).
#[derive(Clone)]
pub struct Guard {
    core: SharedCore,
    supervisor: Arc<Mutex<Option<Supervisor>>>,
    status_rx: watch::Receiver<StatusSummary>,
    startup_alerts: Arc<Vec<Alert>>,
}

fn task<F, Fut>(core: &SharedCore, f: F) -> TaskFactory
where
    F: Fn(SharedCore, Heartbeat) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), EnforceError>> + Send + 'static,
{
    let core = core.clone();
    Box::new(move |hb| f(core.clone(), hb).boxed())
}

impl Guard {
    /// Starts the coordinator (recovery from journal + broker), re-applies persisted forced
    /// unwinds, places missing broker-side backstops and starts the supervised tasks.
    pub async fn start(deps: GuardDeps) -> Result<Self, EnforceError> {
        let cfg = deps.enforce;
        if cfg.eval_interval.is_zero()
            || cfg.reconcile_interval.is_zero()
            || cfg.status_interval.is_zero()
            || cfg.stall_check_interval.is_zero()
        {
            return Err(EnforceError::Config {
                field: "intervals",
                reason: "eval, reconcile, stall-check and status intervals must be > 0".into(),
            });
        }
        if cfg.watchdog_after.is_zero() || cfg.watchdog_periods == 0 {
            return Err(EnforceError::Config {
                field: "watchdog_after",
                reason: "the watchdog's budget must be > 0 (watchdog_after and watchdog_periods)"
                    .into(),
            });
        }
        if cfg.close_max_attempts == 0 {
            return Err(EnforceError::Config {
                field: "close_max_attempts",
                reason: "at least one attempt".into(),
            });
        }
        let coord = ExecutionCoordinator::start(EngineDeps {
            broker: deps.broker.clone(),
            journal: deps.journal.clone(),
            clock: deps.clock.clone(),
            risk: deps.risk,
            config: deps.engine,
        })
        .await?;
        let (alerts, _) = broadcast::channel(1024);
        let alerter = Alerter::new(deps.journal.clone(), deps.clock.clone(), alerts)
            .with_notifier(deps.notifier.clone())
            .with_relay(deps.relay.clone());
        // The alerts raised during the start, for callers that subscribe after it returns.
        let mut start_rx = alerter.subscribe();
        let supervisor = Supervisor::new(
            deps.clock.clone(),
            alerter.clone(),
            RestartPolicy {
                base: cfg.restart_base,
                max: cfg.restart_max,
                reset_after: cfg.restart_reset_after,
            },
        );
        let snap = coord.snapshot().await?;
        // The strategy book: first from the positions known before the last stop (so an
        // assignment that happened while the guard was down is still correlated with its
        // strategy), then from the broker's positions now.
        let now = deps.clock.now();
        let retain = RETAIN_VANISHED_MIN.max(deps.assignment.detector.window.saturating_mul(6));
        let journaled = deps.journal.load().await?;
        let known = journaled.known_positions;
        let held = deps.broker.positions().await?;
        let mut book = StrategyBook::new();
        let mut link = LinkState::default();
        // The Broken strategies of emergency closes from before the restart come first, as
        // managed strategies with all their legs: the positions they hold are theirs (not
        // recognized again as Open strategies) and the gate locks every one of their
        // instruments before this returns.
        let mut saved: Vec<_> = journaled.emergency_closes.values().collect();
        saved.sort_by_key(|c| c.close.record);
        let unbooked = strategy_link::restore_broken(&mut book, &mut link, saved.iter().copied());
        if let Some(k) = &known {
            book.sync_positions(k);
            link.book = book.strategies().cloned().collect();
        }
        book.sync_positions(&held);
        let locked = strategy_link::locked_legs(&book, &link, saved.iter().map(|c| &c.close));
        coord.set_broken_legs(locked.clone()).await?;
        link.locked = Some(locked);
        let initial: Vec<Strategy> =
            strategy_link::next_push(&mut link, &book, now, retain).unwrap_or_default();
        let assignment_deps = AssignmentRestart {
            notifier: Arc::new(CriticalViaAlerts(deps.notifier.clone())),
            config: deps.assignment.clone(),
        };
        let mut ag = AssignmentGuard::new(assignment::GuardDeps {
            coordinator: coord.clone(),
            broker: deps.broker.clone(),
            journal: deps.journal.clone(),
            clock: deps.clock.clone(),
            hours: deps.hours.clone(),
            notifier: assignment_deps.notifier.clone(),
            strategies: initial,
            config: deps.assignment,
        })
        .await?;
        // Subscribed before the start-up snapshot check so its alerts reach the forwarder.
        let first_rx = ag.subscribe();
        let events = deps.broker.events();
        // An emergency close a restart interrupted goes on where it stopped (never re-planned).
        ag.lock_broken().await?;
        ag.resume_closes().await?;
        ag.check_snapshot().await?;
        let assignment = ag.spawn(events);
        let (status_tx, status_rx) = watch::channel(StatusSummary::default());
        let mut state = GuardState {
            forced_unwind: snap.forced_unwind.iter().cloned().collect(),
            strategies: book,
            link,
            ..GuardState::default()
        };
        // The exits people attached to their entries guard on across the restart.
        state.entry.attached = journaled.attached_exits.clone();
        // The rules' state (trailing highs, day-start and peak values) from before the restart,
        // and the last good rules configuration (what runs when the file is bad now).
        let mut evaluator = deps.evaluator;
        let saved = deps.journal.load().await?;
        let saved_rules = saved.rule_state;
        if let Some(s) = saved_rules.clone() {
            evaluator.restore_state(s);
        }
        let saved_config = saved.risk_config.as_ref().map(|c| c.source.hash.clone());
        evaluator.restore_config(saved.risk_config, now);
        let rules_alerts = evaluator.drain_alerts();
        let good_config = evaluator.good_config();
        let core: SharedCore = Arc::new(Core {
            journal: deps.journal.clone(),
            rule_state_saved: Mutex::new((saved_rules, None)),
            risk_config_saved: Mutex::new(saved_config),
            broker: deps.broker,
            coord,
            clock: deps.clock,
            cfg,
            hours: deps.hours,
            alerter,
            beats: supervisor.heartbeats(),
            state: Mutex::new(state),
            evaluator: Mutex::new(evaluator),
            wake_enforcer: Notify::new(),
            wake_reconciler: Notify::new(),
            resubscribe: Notify::new(),
            status_tx,
            assignment: std::sync::RwLock::new(assignment),
            assignment_deps,
            assignment_first_rx: Mutex::new(Some(first_rx)),
            strategies_changed: Notify::new(),
            retain_vanished: retain,
        });
        // A rules file rejected at start (Critical: which rules run instead).
        for a in rules_alerts {
            core.alerter.raise(a.severity, &a.code, a.message).await;
        }
        if let Some(source) = good_config {
            enforcer::persist_risk_config(&core, &source, now).await;
        }
        for u in &unbooked {
            core.alerter
                .raise(
                    Severity::Critical,
                    "guard.broken_strategy_unbooked",
                    format!(
                        "Broken strategy {} from before the restart is not in the strategy book: {} ({}); its instruments stay locked for normal orders: {}",
                        u.strategy,
                        u.reason,
                        u.code,
                        u.instruments
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .await;
        }
        for a in &snap.forced_unwind {
            core.alerter
                .raise(
                    Severity::Critical,
                    "unwind.reapplied",
                    format!("forced unwind of {a} is still on (from before the restart): closing every position, refusing opening orders"),
                )
                .await;
        }
        for spec in deps.backstops {
            let exists = snap
                .stops
                .iter()
                .any(|s| !s.is_terminal() && s.spec == spec);
            if exists {
                continue;
            }
            if let Err(e) = core.coord.place_stop(spec.clone()).await {
                core.alerter
                    .raise(
                        Severity::Critical,
                        "backstop.place_failed",
                        format!("broker-side backstop for {} could not be placed: {e} ({}); only local protection applies", spec.instrument.id(), e.code()),
                    )
                    .await;
            }
        }
        // Before any task runs: only the start's own alerts are in the channel yet.
        let mut startup_alerts = Vec::new();
        while let Ok(a) = start_rx.try_recv() {
            startup_alerts.push(a);
        }
        // Each task's watchdog budget from how often it beats (see `EnforceConfig`).
        let budget = |period| core.cfg.watchdog_budget(period);
        let mut sup = supervisor;
        sup.spawn("events", budget(pump::IDLE_BEAT), task(&core, pump::run));
        sup.spawn(
            "enforcer",
            budget(core.cfg.eval_interval),
            task(&core, enforcer::run),
        );
        sup.spawn(
            "reconciler",
            budget(
                core.cfg
                    .stall_check_interval
                    .min(core.cfg.reconcile_interval),
            ),
            task(&core, reconcile::run),
        );
        sup.spawn(
            "status",
            budget(core.cfg.status_interval),
            task(&core, status::run),
        );
        sup.spawn(
            "alerts",
            budget(FORWARD_IDLE_BEAT),
            task(&core, forward_alerts),
        );
        sup.spawn(
            "assignment",
            strategy_link::assignment_budget(&core.cfg),
            task(&core, strategy_link::run_assignment_alerts),
        );
        sup.spawn(
            "strategies",
            budget(strategy_link::STRATEGIES_BEAT),
            task(&core, strategy_link::run_strategies),
        );
        Ok(Self {
            core,
            supervisor: Arc::new(Mutex::new(Some(sup))),
            status_rx,
            startup_alerts: Arc::new(startup_alerts),
        })
    }

    /// The alerts the guard raised while starting (a rules file rejected at start, a forced
    /// unwind re-applied, ...), in order: [`Self::subscribe_alerts`] only sees later ones.
    pub fn startup_alerts(&self) -> &[Alert] {
        &self.startup_alerts
    }

    /// Raises an alert of the caller's (journaled, broadcast, and notified when Critical),
    /// e.g. about a settings file the caller could not use.
    pub async fn raise_alert(&self, severity: Severity, code: &str, message: String) {
        self.core.alerter.raise(severity, code, message).await;
    }

    /// The guard's alerter: raises alerts and writes audit entries like the guard's own tasks
    /// (the off-desk relay reports its deliveries through it).
    pub fn alerter(&self) -> Alerter {
        self.core.alerter.clone()
    }

    /// The shared state (for the guard's other `impl` blocks, e.g. [`crate::enforce::flatten`]).
    pub(crate) fn core(&self) -> &SharedCore {
        &self.core
    }

    /// The execution coordinator (manual orders from the UI go through it too).
    pub fn coordinator(&self) -> &ExecutionCoordinator {
        &self.core.coord
    }

    /// Every alert from now on: the guard's own, the coordinator's and the assignment guard's.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Alert> {
        self.core.alerter.subscribe()
    }

    /// Every strategy that is not closed — recognized from the positions, managed, and the
    /// ones the assignment guard locked (Broken) — with marks, P&L and Greeks, for the UI.
    pub fn strategies(&self) -> Vec<StrategyView> {
        let now = self.core.now();
        let st = self.core.lock();
        let positions = st.book.positions(now, self.core.cfg.quote_stale_after);
        st.strategies.views(&positions)
    }

    /// The assignment guard's handle (status watch, events, banners, marked executions): the
    /// running one (the supervisor replaces it when it restarts the guard).
    pub fn assignment(&self) -> GuardHandle {
        self.core.assignment()
    }

    /// The assignment guard's status: records, emergency closes (armed ones with their release
    /// time), banners, expiry-day risks.
    pub fn assignment_status(&self) -> GuardStatus {
        self.core.assignment().status()
    }

    /// Time left until the earliest armed emergency close goes out.
    pub fn assignment_countdown(&self) -> Option<Duration> {
        self.core.assignment().countdown()
    }

    /// Acknowledges an assignment banner; `false` if unknown.
    pub async fn acknowledge_banner(&self, id: u64) -> Result<bool, EnforceError> {
        Ok(self.core.assignment().acknowledge(id).await?)
    }

    /// The periodic status (updated every `status_interval`).
    pub fn watch_status(&self) -> watch::Receiver<StatusSummary> {
        self.status_rx.clone()
    }

    /// The status right now.
    pub async fn status(&self) -> StatusSummary {
        summary(&self.core).await
    }

    /// Heartbeat of every task.
    pub fn heartbeats(&self) -> Vec<TaskHealth> {
        self.core.beats.snapshot()
    }

    /// Every position the guard watches, marked now.
    /// Reads the guard's live book (positions, quotes, accounts, connection) under its lock:
    /// what a viewer draws, without folding the broker's events a second time.
    pub fn read_live_book<R>(&self, f: impl FnOnce(&crate::live::LiveBook) -> R) -> R {
        f(&self.core.lock().book)
    }

    pub fn positions(&self) -> Vec<PositionView> {
        let now = self.core.now();
        self.core
            .lock()
            .book
            .positions(now, self.core.cfg.quote_stale_after)
    }

    /// Close jobs (working, retrying, needing manual action).
    pub fn close_jobs(&self) -> Vec<CloseJob> {
        self.core.lock().closes.jobs().cloned().collect()
    }

    /// Switches forced unwind of `account` on or off. The flag is journaled by the coordinator
    /// (its gate then refuses opening orders) and re-applied at every start until switched off.
    pub async fn set_forced_unwind(
        &self,
        account: AccountId,
        enabled: bool,
    ) -> Result<(), EnforceError> {
        self.core
            .coord
            .set_forced_unwind(account.clone(), enabled)
            .await?;
        {
            let mut st = self.core.lock();
            if enabled {
                st.forced_unwind.insert(account.clone());
            } else {
                st.forced_unwind.remove(&account);
            }
        }
        let (sev, text) = if enabled {
            (
                Severity::Critical,
                format!(
                    "forced unwind of {account} ON: closing every position through the emergency path, refusing opening orders"
                ),
            )
        } else {
            (
                Severity::Warning,
                format!("forced unwind of {account} switched off by a person"),
            )
        };
        self.core
            .alerter
            .raise(
                sev,
                if enabled {
                    "unwind.enabled"
                } else {
                    "unwind.disabled"
                },
                text,
            )
            .await;
        self.core.wake_enforcer.notify_one();
        Ok(())
    }

    /// A person lifts the lock on opening orders (the trading state back to `Active`): journaled,
    /// audited with `who`, alerted. `Ok(false)` when trading was not restricted.
    pub async fn unlock_trading(&self, who: &str) -> Result<bool, EnforceError> {
        let before = self.core.coord.trading_status();
        let changed = self
            .core
            .coord
            .change_trading_state(
                crate::gate::TradingState::Active,
                format!("unlocked by {who}"),
                false,
            )
            .await?;
        if changed {
            self.core
                .alerter
                .raise(
                    Severity::Warning,
                    "trading.unlocked",
                    format!(
                        "Opening orders unlocked by {who} (were {:?}: {})",
                        before.state, before.why
                    ),
                )
                .await;
        }
        Ok(changed)
    }

    /// A person asks to try a needs-manual close again (fresh attempt budget).
    pub fn retry_manual_close(&self, job: u64) -> bool {
        let now = self.core.now();
        let ok = self.core.lock().closes.retry_manual(job, now);
        if ok {
            self.core.wake_enforcer.notify_one();
        }
        ok
    }

    /// Reconcile now.
    pub fn request_reconciliation(&self) {
        self.core.wake_reconciler.notify_one();
    }

    /// Stops the guard's tasks (the coordinator stops when its last handle is dropped).
    pub async fn shutdown(&self) {
        let sup = self
            .supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(s) = sup {
            s.shutdown().await;
        }
        self.core.assignment().abort();
    }
}

/// How often the alert forwarder beats while no alert comes.
const FORWARD_IDLE_BEAT: Duration = Duration::from_secs(1);

async fn forward_alerts(core: SharedCore, hb: Heartbeat) -> Result<(), EnforceError> {
    let mut rx = core.coord.subscribe_alerts();
    hb.beat();
    let mut idle = tokio::time::interval(FORWARD_IDLE_BEAT);
    loop {
        // Biased (deterministic under simulation); every alert beats the heartbeat too.
        let r = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = idle.tick() => {
                hb.beat();
                continue;
            }
        };
        match r {
            Ok(a) => core.alerter.forward(a),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                core.alerter
                    .raise(Severity::Warning, "guard.alerts_lagged", format!("{n} coordinator alerts not forwarded to the UI (they are in the journal)"))
                    .await;
            }
            Err(broadcast::error::RecvError::Closed) => return Err(EnforceError::StreamEnded),
        }
        hb.beat();
    }
}
