//! [`Core`]: the state the guard's tasks share — the live book, close jobs, counters — behind
//! one short-held `std::sync::Mutex` (never held across an await), plus the wake-ups between
//! tasks (event → enforcer, closer → reconciler, stall detector → event pump).

use crate::assignment::MarketHours;
use crate::assignment::{GuardEvent, GuardHandle};
use crate::coordinator::ExecutionCoordinator;
use crate::enforce::alerter::Alerter;
use crate::enforce::closer::CloseTracker;
use crate::enforce::config::EnforceConfig;
use crate::enforce::evaluator::RuleEvaluator;
use crate::enforce::reconcile::ReconcileReport;
use crate::enforce::status::StatusSummary;
use crate::enforce::supervisor::Heartbeats;
use crate::live::LiveBook;
use crate::strategies::StrategyBook;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tradeguard_model::{
    AccountId, Broker, Clock, Instrument, InstrumentId, OrderId, StrategyId, Timestamp,
};

/// A strategy's legs (instrument, signed quantity) and since when it has held them (`None`:
/// since the first evaluation).
pub(crate) type SeenLegs = (Vec<(InstrumentId, i64)>, Option<Timestamp>);

/// Mutable state shared by the tasks.
#[derive(Default)]
pub(crate) struct GuardState {
    pub book: LiveBook,
    /// Strategies recognized from the live positions plus the managed (Broken) ones.
    pub strategies: StrategyBook,
    /// Each strategy's legs at the last evaluation and since when (`None`: present at the
    /// first one): what [`crate::enforce::strategy_link::for_rules`] holds back.
    pub strategies_seen: BTreeMap<StrategyId, SeenLegs>,
    /// The first evaluation has recorded the strategies present at start.
    pub strategies_seen_init: bool,
    /// Since when the broker connection is down (Disconnected or Connecting), and why.
    pub link_down: Option<(Timestamp, String)>,
    /// The loss was alerted (a restore is then announced too).
    pub link_down_alerted: bool,
    /// The positions (account, instrument, qty) the strategy book was last synced from.
    pub strategy_sig: Vec<(AccountId, InstrumentId, i64)>,
    /// What was last given to the assignment guard.
    pub link: crate::enforce::strategy_link::LinkState,
    /// Clock time of the last broker event received by the pump.
    pub last_event_at: Option<Timestamp>,
    /// Instruments with a quote subscription.
    pub subscribed: BTreeSet<InstrumentId>,
    pub forced_unwind: BTreeSet<AccountId>,
    pub closes: CloseTracker,
    /// Keys of the decisions that fired, with the clock time each was last seen; a key is
    /// dropped (re-armed) once unseen for `realert_after` (alert once per breach).
    pub active: BTreeMap<String, Timestamp>,
    /// "Cannot evaluate" decisions not yet past the mark grace, with when each was first seen.
    pub no_data_since: BTreeMap<String, Timestamp>,
    pub evaluations: u64,
    pub rule_evaluations: u64,
    pub decisions_fired: u64,
    pub dry_run_decisions: u64,
    pub last_reconcile: Option<ReconcileReport>,
    pub reconciliations: u64,
    pub stalls: u64,
    pub resubscribes: u64,
    /// Order differences already reported (reported once).
    pub reported_orders: BTreeSet<OrderId>,
    /// Futures already said to be past their roll date (said once per contract).
    pub roll_alerted: BTreeSet<InstrumentId>,
    /// Flatten previews, spent ids and tickets.
    pub flatten: crate::enforce::flatten::Registry,
    /// Entry previews, spent ids, the chain's warm start.
    pub entry: crate::entry::Registry,
}

/// Everything the tasks share.
pub(crate) struct Core {
    pub broker: Arc<dyn Broker>,
    pub coord: ExecutionCoordinator,
    pub clock: Arc<dyn Clock>,
    pub cfg: EnforceConfig,
    pub hours: Arc<dyn MarketHours>,
    pub alerter: Alerter,
    pub beats: Heartbeats,
    pub state: Mutex<GuardState>,
    pub evaluator: Mutex<Box<dyn RuleEvaluator>>,
    pub wake_enforcer: Notify,
    pub wake_reconciler: Notify,
    pub resubscribe: Notify,
    pub status_tx: watch::Sender<StatusSummary>,
    /// The running assignment guard (replaced when the supervisor restarts it); read it
    /// through [`Core::assignment`].
    pub assignment: std::sync::RwLock<GuardHandle>,
    /// What a restart of the assignment guard is built with.
    pub assignment_deps: AssignmentRestart,
    /// The assignment guard's events from before its task started (taken by the first run
    /// of the forwarder, so a start-up detection is not lost).
    pub assignment_first_rx: Mutex<Option<broadcast::Receiver<GuardEvent>>>,
    /// The strategy book changed (enforcer → strategy link task).
    pub strategies_changed: Notify,
    /// How long a strategy that vanished from the book stays known to the assignment guard.
    pub retain_vanished: Duration,
    /// Where the rules' state is persisted.
    pub journal: Arc<dyn crate::journal::Journal>,
    /// The rules' state last persisted, and when.
    pub rule_state_saved: Mutex<(Option<crate::rules::RuleState>, Option<Timestamp>)>,
    /// Hash of the last good rules configuration kept in the journal.
    pub risk_config_saved: Mutex<Option<String>>,
}

/// The assignment guard's own dependencies, kept for a restart.
pub(crate) struct AssignmentRestart {
    /// Its notifier (Critical notifications go through the alerter instead).
    pub notifier: Arc<dyn crate::assignment::Notifier>,
    /// Its configuration.
    pub config: crate::assignment::AssignmentConfig,
}

impl Core {
    /// The running assignment guard.
    pub fn assignment(&self) -> GuardHandle {
        self.assignment
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The shared state. Poisoning is recovered: every mutation leaves it consistent.
    pub fn lock(&self) -> MutexGuard<'_, GuardState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Subscribes quotes for the instruments not subscribed yet (`all`: every one again, after
    /// a resubscribe). A failure is logged and retried at the next call.
    pub async fn subscribe(&self, instruments: Vec<Instrument>, all: bool) {
        let todo: Vec<Instrument> = {
            let st = self.lock();
            instruments
                .into_iter()
                .filter(|i| all || !st.subscribed.contains(&i.id()))
                .collect()
        };
        if todo.is_empty() {
            return;
        }
        match self.broker.subscribe_quotes(&todo).await {
            Ok(()) => {
                let mut st = self.lock();
                st.subscribed.extend(todo.iter().map(Instrument::id));
            }
            Err(e) => tracing::warn!(
                code = e.code(),
                count = todo.len(),
                "quote subscription failed (retried later): {e}"
            ),
        }
    }
}

/// Shared handle.
pub(crate) type SharedCore = Arc<Core>;
