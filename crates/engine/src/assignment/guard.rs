//! [`AssignmentGuard`]: turns detections into the response — record, lock, emergency close,
//! alerts — and owns the state of each emergency close. [`AssignmentGuard::start`] loads the
//! journal, compares the last known positions with the broker's snapshot and spawns the guard
//! task; the returned [`GuardHandle`] exposes its status (records, closes with their
//! countdown, banners) and events.
//!
//! Response to an assignment/exercise of a strategy leg:
//! 1. [`AssignmentRecord`] journaled and audited;
//! 2. the strategy is marked Broken and the close plan ([`super::plan`]) is built; both are
//!    journaled together ([`JournalRecord::EmergencyClose`]: the Broken strategy with every
//!    leg, and the plan) before anything else, so a restart restores the strategy and the close;
//! 3. the strategy is marked Broken through the coordinator (journaled; the gate now refuses
//!    every non-emergency order for it with `gate.strategy_broken`; a start-up finds a Broken
//!    strategy the coordinator missed and locks it, [`AssignmentGuard::lock_broken`]);
//! 4. the plan is sent through the coordinator's Emergency path, each order only after the
//!    fills it depends on — or armed for the open when the market is closed;
//! 5. a critical alert, a notification and a banner (until acknowledged); completion or
//!    failure of the close raises its own alert with the orders and fills.

use super::config::AssignmentConfig;
use super::detect::Detector;
use super::error::AssignmentError;
use super::expiry::{self, ExpiryRisk, ExpiryRiskKind};
use super::hours::{ArmAt, MarketHours, MarketSession};
use super::notify::{Notification, Notifier};
use super::plan::{self, KeptPosition, PlannedOrder};
use super::policy::{Decision, StockAction, StrategyChoice};
use super::record::{
    AssignmentRecord, Detection, DetectionKind, DetectionSource, ExecutionMarker, short_name,
};
use crate::alert::{Alert, AuditEntry, Severity};
use crate::coordinator::ExecutionCoordinator;
use crate::engine::EngineSnapshot;
use crate::error::JournalError;
use crate::group::{GroupPhase, LegState};
use crate::intent::{OrderIntent, Purpose};
use crate::journal::{Journal, JournalRecord};
use chrono::NaiveDate;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tradeguard_model::{
    AccountId, BrokenReason, Broker, BrokerEvent, Clock, ConnectionState, EventStream, ExecId,
    Execution, GroupId, Instrument, InstrumentId, OrderId, OrderStatus, OrderType, OrderUpdate,
    Position, Price, StatusReason, Strategy, StrategyId, StrategyState, Timestamp,
};

/// The guard's loop runs (and beats) at least this often, so a stuck or dead guard shows.
pub const LOOP_BEAT: Duration = Duration::from_secs(1);

/// Everything the guard needs.
pub struct GuardDeps {
    /// The execution coordinator (the only way to send orders).
    pub coordinator: ExecutionCoordinator,
    /// The broker (events and snapshots).
    pub broker: Arc<dyn Broker>,
    /// The journal shared with the coordinator.
    pub journal: Arc<dyn Journal>,
    /// Time source (the coordinator's).
    pub clock: Arc<dyn Clock>,
    /// Exchange hours.
    pub hours: Arc<dyn MarketHours>,
    /// OS notification / log line.
    pub notifier: Arc<dyn Notifier>,
    /// Strategies to guard.
    pub strategies: Vec<Strategy>,
    /// Configuration.
    pub config: AssignmentConfig,
}

/// State of one emergency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EmergencyOrderState {
    /// Waiting for the fills it depends on (or for its release time).
    Waiting,
    /// Being handed to the coordinator under [`EmergencyOrder::client_ref`] (journaled first:
    /// after a restart the order is looked up by that tag before anything is sent again).
    Submitting,
    /// Accepted by the coordinator as [`EmergencyOrder::group`] but held there until the
    /// managed stop it supersedes is cancelled (one cancel round-trip, never two live exits):
    /// no order id yet. It is learned from the coordinator when the broker reports an order the
    /// guard does not know (before any fill of it is counted) or on a short poll; after a
    /// restart the step is looked up in the journal like `Submitting`.
    Deferred,
    /// Handed to the coordinator: [`EmergencyOrder::order_id`] is at the broker.
    Sent,
    /// Completely filled.
    Filled,
    /// Refused, rejected or cancelled.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One fill of an emergency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyFill {
    /// The broker order (attempt) that filled.
    pub order_id: Option<OrderId>,
    /// Execution id (fills are counted once).
    pub exec_id: ExecId,
    /// Quantity.
    pub qty: i64,
    /// Price.
    pub price: Price,
    /// When.
    pub ts: Timestamp,
}

/// One order of an emergency close with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyOrder {
    /// The planned order.
    pub planned: PlannedOrder,
    /// Progress.
    pub state: EmergencyOrderState,
    /// Coordinator group of the current attempt.
    pub group: Option<GroupId>,
    /// Broker order id of the current attempt.
    pub order_id: Option<OrderId>,
    /// When the current attempt was sent.
    pub sent_at: Option<Timestamp>,
    /// Fills of every attempt.
    pub fills: Vec<EmergencyFill>,
    /// Armed until: the order does not go out before this time (`None`: as soon as the fills
    /// it depends on are in).
    #[serde(default)]
    pub release_at: Option<Timestamp>,
    /// May go out as an outside-regular-hours order (stock with pre-market arming).
    #[serde(default)]
    pub outside_rth: bool,
    /// Tag of the current attempt's intent (`assignment:<record>:<step>:<attempt>`).
    #[serde(default)]
    pub client_ref: Option<String>,
    /// Attempts made so far (the remainder of an order a restart cancelled is sent again).
    #[serde(default)]
    pub attempts: u32,
    /// Broker ids of earlier attempts.
    #[serde(default)]
    pub previous_orders: Vec<OrderId>,
    /// Quantity the coordinator cut from this step because another exit closes it (the
    /// managed stop it was held for filled meanwhile, or another emergency path's group):
    /// never sent again, or the position would be over-closed.
    #[serde(default)]
    pub covered: i64,
}

impl EmergencyOrder {
    /// Quantity filled over every attempt.
    pub fn filled(&self) -> i64 {
        self.fills.iter().map(|f| f.qty).sum()
    }

    /// Quantity still to close: neither filled nor closed by another exit.
    pub fn remaining(&self) -> i64 {
        self.planned
            .qty
            .saturating_sub(self.filled())
            .saturating_sub(self.covered)
            .max(0)
    }

    /// Takes the coordinator's view of the current attempt: `sent` of the remainder went out,
    /// the rest another exit covers. Returns the quantity newly counted as covered.
    fn cover_cut(&mut self, sent: i64) -> i64 {
        let cut = (self.remaining() - sent.max(0)).max(0);
        self.covered += cut;
        cut
    }

    fn owns(&self, id: OrderId) -> bool {
        self.order_id == Some(id) || self.previous_orders.contains(&id)
    }
}

/// Phase of an emergency close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosePhase {
    /// Market closed: orders go out at `release_at`.
    Armed,
    /// Orders working.
    Working,
    /// Every order filled.
    Completed,
    /// An order failed; what could be sent was sent. Needs a person.
    Failed,
}

/// The emergency close of one broken strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyClose {
    /// Strategy.
    pub strategy: StrategyId,
    /// Account.
    pub account: AccountId,
    /// The assignment record that caused it.
    pub record: u64,
    /// Orders in plan order.
    pub orders: Vec<EmergencyOrder>,
    /// Positions kept on purpose.
    pub kept: Vec<KeptPosition>,
    /// When the (next) armed orders are released: the earliest release time of an order still
    /// waiting for it, else when the close was released.
    pub release_at: Timestamp,
    /// Phase.
    pub phase: ClosePhase,
    /// The assignment was the plan (a cash-secured put, a covered call, a wheel): this close
    /// only sells the delivered stock the trader's policy says to close; nothing is Broken.
    #[serde(default)]
    pub intended: bool,
    /// What the account should hold of each planned instrument once every step filled (held
    /// when planned, moved by the plan's orders): the close is complete only when the broker's
    /// positions show it.
    #[serde(default)]
    pub expected: Vec<(InstrumentId, i64)>,
    /// Every step filled since then; the broker's positions are being checked.
    #[serde(default)]
    pub verifying_since: Option<Timestamp>,
    /// How the orders go out, for a person ("market orders 2 min after the open ...").
    #[serde(default)]
    pub how: String,
}

impl EmergencyClose {
    /// The earliest release time after `now` of an order still waiting.
    pub fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        self.orders
            .iter()
            .filter(|o| o.state == EmergencyOrderState::Waiting)
            .filter_map(|o| o.release_at)
            .filter(|r| *r > now)
            .min()
    }

    fn unfinished(&self) -> bool {
        matches!(self.phase, ClosePhase::Armed | ClosePhase::Working)
    }
}

/// What the journal keeps of an emergency close ([`JournalRecord::EmergencyClose`], the last
/// one per strategy wins): the close with every step's state, and the locked strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseSnapshot {
    /// The close.
    pub close: EmergencyClose,
    /// The strategy as the guard holds it (Broken, or Closed once the close completed).
    pub strategy: Option<Strategy>,
}

/// An alert the UI shows as a banner until a person acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banner {
    /// Id (the assignment record id).
    pub id: u64,
    /// Title.
    pub title: String,
    /// Details.
    pub body: String,
    /// Severity.
    pub severity: Severity,
    /// Acknowledged by a person.
    pub acknowledged: bool,
}

/// What the guard publishes to the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum GuardEvent {
    /// An alert (also journaled).
    Alert(Alert),
    /// A banner appeared or changed.
    Banner(Banner),
}

/// A read-only copy of the guard's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardStatus {
    /// Assignment/exercise records (journal order).
    pub records: Vec<AssignmentRecord>,
    /// Emergency closes.
    pub closes: Vec<EmergencyClose>,
    /// Banners.
    pub banners: Vec<Banner>,
    /// Current expiry-day risks.
    pub expiry_risks: Vec<ExpiryRisk>,
    /// Strategies as the guard sees them (Broken after an assignment).
    pub strategies: Vec<Strategy>,
    /// The assignment policy in effect (the rules file's, with a person's per-strategy
    /// choices in [`AssignmentPolicy::strategies`]).
    #[serde(skip)]
    pub policy: super::policy::AssignmentPolicy,
}

impl GuardStatus {
    /// Time left until the earliest armed emergency order is released, if any.
    pub fn countdown(&self, now: Timestamp) -> Option<Duration> {
        self.closes
            .iter()
            .filter(|c| c.unfinished())
            .filter_map(|c| c.next_release(now))
            .map(|r| r.duration_since(now))
            .min()
    }
}

enum Command {
    Acknowledge(u64, oneshot::Sender<bool>),
    SetStrategies(Vec<Strategy>, oneshot::Sender<()>),
    Marked(Execution, ExecutionMarker, oneshot::Sender<()>),
    Reconciled(Vec<Position>, oneshot::Sender<()>),
    Choose(
        StrategyId,
        StrategyChoice,
        oneshot::Sender<Result<(), AssignmentError>>,
    ),
}

/// The guard (see the module docs). Drive it with [`AssignmentGuard::on_event`] /
/// [`AssignmentGuard::on_timer`] or let [`AssignmentGuard::spawn`] do it.
pub struct AssignmentGuard {
    coordinator: ExecutionCoordinator,
    broker: Arc<dyn Broker>,
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    hours: Arc<dyn MarketHours>,
    notifier: Arc<dyn Notifier>,
    cfg: AssignmentConfig,
    detector: Detector,
    strategies: Vec<Strategy>,
    /// Copies of strategies as they were before the strategy book last changed their legs,
    /// with when: an assignment's option update can reach the book (which re-recognises the
    /// shrunk strategy under the same id) before the detector has paired it with its stock.
    prior: BTreeMap<StrategyId, (Strategy, Timestamp)>,
    /// When each strategy id was first given to this guard: an assigned leg belongs to the
    /// strategy that held it first, not to one the book regrouped from the leftovers.
    first_seen: BTreeMap<StrategyId, Timestamp>,
    records: Vec<AssignmentRecord>,
    closes: Vec<EmergencyClose>,
    banners: Vec<Banner>,
    expiry_risks: Vec<ExpiryRisk>,
    expiry_warned: BTreeSet<(StrategyId, usize, NaiveDate, ExpiryRiskKind)>,
    next_expiry_check: Timestamp,
    spots: BTreeMap<String, Price>,
    reconnecting: bool,
    /// Known positions were persisted before (not the very first start).
    had_known: bool,
    /// Orders of resumed closes still working at start-up: the coordinator's recovery cancels
    /// them, and their remainder is sent again once the cancel is confirmed.
    restart_cancels: BTreeSet<OrderId>,
    /// Next look-up of the steps the coordinator holds ([`EmergencyOrderState::Deferred`]).
    deferred_check_at: Option<Timestamp>,
    events: broadcast::Sender<GuardEvent>,
}

/// How long a strategy's copy from before a change of its legs is kept
/// ([`AssignmentGuard::restore_pre_assignment`]): a detection by reconciliation comes up to two
/// reconciliation intervals after the change.
const PRIOR_HORIZON: Duration = Duration::from_secs(90);

/// How often steps held by the coordinator are looked up when no broker event names their
/// order first (e.g. the coordinator ended the group without an order).
const DEFERRED_POLL: Duration = Duration::from_millis(500);

/// A step whose order never reached the broker ([`StatusReason::ORDER_LOST`]) is sent again,
/// up to this many attempts in all; then it fails like any rejection (a person decides).
const LOST_ORDER_ATTEMPTS: u32 = 3;

/// How often a close whose steps all filled looks at the broker's positions again.
pub const VERIFY_EVERY: Duration = Duration::from_secs(1);

/// How long the broker's positions may lag the fills before a filled close whose account
/// still differs from the plan is a Critical alert.
pub const VERIFY_FOR: Duration = Duration::from_secs(15);

impl AssignmentGuard {
    /// Loads the journal (records, last known positions) without touching the broker.
    pub async fn new(deps: GuardDeps) -> Result<Self, AssignmentError> {
        let st = deps.journal.load().await?;
        let mut detector = Detector::new(deps.config.detector, deps.hours.clone());
        if let Some(p) = &st.known_positions {
            detector.seed(p);
        }
        let (events, _) = broadcast::channel(256);
        let now = deps.clock.now();
        let first_check = deps.config.expiry_check_interval;
        // Emergency closes from before the restart, and the strategies they locked.
        let mut saved: Vec<CloseSnapshot> = st.emergency_closes.into_values().collect();
        saved.sort_by_key(|c| c.close.record);
        let mut strategies = deps.strategies;
        for s in saved.iter().filter_map(|c| c.strategy.as_ref()) {
            match strategies.iter_mut().find(|x| x.id == s.id) {
                Some(x) => *x = s.clone(),
                None if s.state == StrategyState::Broken => strategies.push(s.clone()),
                None => {}
            }
        }
        let closes = saved.into_iter().map(|c| c.close).collect();
        let mut cfg = deps.config;
        // A person's choices from the app win over the file's (they are later and per strategy).
        cfg.policy.strategies.extend(st.assignment_choices);
        Ok(Self {
            coordinator: deps.coordinator,
            broker: deps.broker,
            journal: deps.journal,
            clock: deps.clock,
            hours: deps.hours,
            notifier: deps.notifier,
            cfg,
            detector,
            first_seen: strategies.iter().map(|s| (s.id, now)).collect(),
            strategies,
            prior: BTreeMap::new(),
            records: st.assignments,
            closes,
            banners: Vec::new(),
            expiry_risks: Vec::new(),
            expiry_warned: BTreeSet::new(),
            // Quotes get a moment to arrive before the first check.
            next_expiry_check: now.plus(first_check),
            spots: BTreeMap::new(),
            reconnecting: false,
            had_known: st.known_positions.is_some(),
            restart_cancels: BTreeSet::new(),
            deferred_check_at: None,
            events,
        })
    }

    /// Subscribes to the broker, compares its snapshot with the last known positions (an
    /// assignment while the app was closed is handled now) and spawns the guard task.
    pub async fn start(deps: GuardDeps) -> Result<GuardHandle, AssignmentError> {
        let mut g = Self::new(deps).await?;
        let events = g.broker.events();
        g.lock_broken().await?;
        g.resume_closes().await?;
        g.check_snapshot().await?;
        Ok(g.spawn(events))
    }

    /// Resumes the emergency closes a restart interrupted (call after subscribing to the
    /// broker's events, before [`AssignmentGuard::check_snapshot`]). Nothing is planned again
    /// from the current positions. Per step:
    /// - filled or failed: left as it is;
    /// - submitting (the answer was not journaled): its group is looked up in the journal by
    ///   the step's client tag; with a broker order id it counts as sent, else nothing reached
    ///   the broker and the step waits to be sent;
    /// - sent: the broker's executions of its order are counted (once, by exec id); filled in
    ///   full, it is done; still open at the broker, it stays sent (the coordinator's recovery
    ///   cancels it and the remainder goes out again once the cancel is confirmed); gone with a
    ///   remainder, the remainder waits to be sent;
    /// - waiting: goes out in the plan's order once the fills it depends on are in and its
    ///   release time (the open, or pre-market) has come.
    ///
    /// The executions of the guard's own orders are also taken into the known positions
    /// ([`Detector::apply_own_fills`]) so the start-up snapshot does not mistake them for an
    /// assignment.
    pub async fn resume_closes(&mut self) -> Result<(), AssignmentError> {
        let todo: Vec<usize> = (0..self.closes.len())
            .filter(|i| self.closes[*i].unfinished())
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let groups = self.journal.load().await?.groups;
        let open: BTreeSet<OrderId> = self
            .broker
            .open_orders()
            .await?
            .iter()
            .map(|o| o.status.order_id)
            .collect();
        let since = todo
            .iter()
            .flat_map(|ci| self.closes[*ci].orders.iter())
            .filter(|o| !o.fills.is_empty() || o.sent_at.is_some())
            .filter_map(|o| o.fills.iter().map(|f| f.ts).chain(o.sent_at).min())
            .min();
        let execs = match since {
            Some(t) => self.broker.executions_since(t).await?,
            None => Vec::new(),
        };
        let positions = self.broker.positions().await?;
        let mut own = Vec::new();
        let mut notes = Vec::new();
        for &ci in &todo {
            let sid = self.closes[ci].strategy;
            for oi in 0..self.closes[ci].orders.len() {
                let o = &mut self.closes[ci].orders[oi];
                if matches!(
                    o.state,
                    EmergencyOrderState::Submitting | EmergencyOrderState::Deferred
                ) {
                    let found = o.client_ref.as_ref().and_then(|r| {
                        groups
                            .values()
                            .find(|g| g.intent.client_ref.as_ref() == Some(r))
                    });
                    match found
                        .and_then(|g| g.legs.first().and_then(|l| l.order_id).map(|id| (g.id, id)))
                    {
                        Some((gid, id)) => {
                            o.group = Some(gid);
                            o.order_id = Some(id);
                            o.state = EmergencyOrderState::Sent;
                        }
                        None => {
                            o.state = EmergencyOrderState::Waiting;
                            notes
                                .push(format!("{} was not sent before the restart", order_text(o)));
                        }
                    }
                }
                let mine: Vec<&Execution> = execs
                    .iter()
                    .filter(|e| e.order_id.is_some_and(|id| o.owns(id)))
                    .collect();
                for e in mine {
                    own.push(e.clone());
                    if !o.fills.iter().any(|f| f.exec_id == e.exec_id) {
                        o.fills.push(fill_of(e));
                    }
                }
                if o.state != EmergencyOrderState::Sent {
                    continue;
                }
                let Some(id) = o.order_id else { continue };
                if o.remaining() == 0 {
                    o.state = EmergencyOrderState::Filled;
                    notes.push(format!("{} filled", order_text(o)));
                } else if open.contains(&id) {
                    self.restart_cancels.insert(id);
                    notes.push(format!(
                        "{} still working as order {id} ({} filled): its remainder goes out again once the restart's cancel is confirmed",
                        order_text(o),
                        o.filled()
                    ));
                } else {
                    notes.push(format!(
                        "{} order {id} ended with {} of {} filled: the remainder is sent again",
                        order_text(o),
                        o.filled(),
                        o.planned.qty
                    ));
                    retire_attempt(o);
                }
            }
            self.audit(
                "emergency_resume",
                "assignment.close_resumed",
                format!(
                    "{}: emergency close resumed after a restart (nothing planned again){}",
                    self.strategy_label(sid),
                    if notes.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", notes.join("; "))
                    }
                ),
            )
            .await;
            notes.clear();
            self.save(ci).await;
        }
        self.detector.apply_own_fills(&own, &positions);
        self.persist_known().await;
        for ci in todo {
            self.advance(ci).await;
        }
        Ok(())
    }

    /// Journals the close `ci` (after the broker acted: a failure is a critical alert).
    async fn save(&self, ci: usize) {
        if let Err(e) = self.write_close(ci).await {
            let who = self
                .closes
                .get(ci)
                .map_or_else(|| "?".to_owned(), |c| self.strategy_label(c.strategy));
            self.alert(
                Severity::Critical,
                "assignment.journal_failed",
                format!(
                    "emergency close of {who}: state not journaled ({e}, {}); a restart may not resume it correctly",
                    e.code()
                ),
            )
            .await;
        }
    }

    async fn write_close(&self, ci: usize) -> Result<(), JournalError> {
        let Some(c) = self.closes.get(ci) else {
            return Ok(());
        };
        let snap = CloseSnapshot {
            close: c.clone(),
            strategy: self.strategies.iter().find(|s| s.id == c.strategy).cloned(),
        };
        self.journal
            .append(JournalRecord::EmergencyClose(Box::new(snap)))
            .await
    }

    /// Compares the broker's positions with the known ones (start-up, reconnect). On the very
    /// first start (nothing persisted) the snapshot only seeds the known positions.
    pub async fn check_snapshot(&mut self) -> Result<(), AssignmentError> {
        let positions = self.broker.positions().await?;
        let now = self.clock.now();
        if self.had_known {
            let ds = self.detector.on_snapshot(&positions, now);
            self.persist_known().await;
            for d in ds {
                self.handle(d).await;
            }
        } else {
            self.detector.seed(&positions);
            self.had_known = true;
            self.persist_known().await;
        }
        Ok(())
    }

    /// A copy of the state.
    pub fn status(&self) -> GuardStatus {
        GuardStatus {
            records: self.records.clone(),
            closes: self.closes.clone(),
            banners: self.banners.clone(),
            expiry_risks: self.expiry_risks.clone(),
            strategies: self.strategies.clone(),
            policy: self.cfg.policy.clone(),
        }
    }

    /// Whether `s` is what [`Self::status`] would return, without building it: the guard
    /// checks after every event (thousands of quotes a second), and cloning every strategy
    /// for that took about 40% of the app's CPU with 500 positions.
    fn status_is(&self, s: &GuardStatus) -> bool {
        // Destructured, so a field added to the status cannot be left out of the comparison.
        let GuardStatus {
            records,
            closes,
            banners,
            expiry_risks,
            strategies,
            policy,
        } = s;
        *records == self.records
            && *closes == self.closes
            && *banners == self.banners
            && *expiry_risks == self.expiry_risks
            && *strategies == self.strategies
            && *policy == self.cfg.policy
    }

    /// Guard events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<GuardEvent> {
        self.events.subscribe()
    }

    /// Replaces the guarded strategies (the strategy book changed). A strategy this guard
    /// locked (Broken) or closed keeps its state and legs even when the new list still shows
    /// it open (the list may predate the lock) or no longer lists it (a Broken one stays
    /// until its emergency close ends).
    pub fn set_strategies(&mut self, s: Vec<Strategy>) {
        let now = self.clock.now();
        self.prior
            .retain(|_, (_, at)| now.duration_since(*at) <= PRIOR_HORIZON);
        for old in &self.strategies {
            let changed = s
                .iter()
                .find(|n| n.id == old.id)
                .is_none_or(|n| n.legs != old.legs);
            if changed && !matches!(old.state, StrategyState::Broken | StrategyState::Closed) {
                // The oldest copy within the horizon is the one from before an assignment.
                self.prior
                    .entry(old.id)
                    .or_insert_with(|| (old.clone(), now));
            }
        }
        let mut next = s;
        for n in &next {
            self.first_seen.entry(n.id).or_insert(now);
        }
        for old in &self.strategies {
            if !matches!(old.state, StrategyState::Broken | StrategyState::Closed) {
                continue;
            }
            match next.iter_mut().find(|n| n.id == old.id) {
                Some(n) => *n = old.clone(),
                None if old.state == StrategyState::Broken => next.push(old.clone()),
                None => {}
            }
        }
        self.strategies = next;
        let (strategies, prior) = (&self.strategies, &self.prior);
        self.first_seen
            .retain(|id, _| prior.contains_key(id) || strategies.iter().any(|s| s.id == *id));
    }

    /// A person's assignment choice for strategy `sid` (wheel, keep or close delivered
    /// shares): journaled, then in effect for the next assignment of it.
    pub async fn choose(
        &mut self,
        sid: StrategyId,
        choice: StrategyChoice,
    ) -> Result<(), AssignmentError> {
        self.journal
            .append(JournalRecord::AssignmentChoice {
                strategy: sid,
                choice,
            })
            .await?;
        self.cfg.policy.strategies.insert(sid, choice);
        let stock = choice.stock.map_or("the shape's default", |a| a.as_str());
        self.audit(
            "assignment_choice",
            "assignment.choice",
            format!(
                "{}: wheel {}, delivered shares: {stock}",
                self.strategy_label(sid),
                if choice.wheel { "on" } else { "off" }
            ),
        )
        .await;
        Ok(())
    }

    /// Acknowledges a banner; `false` if unknown.
    pub fn acknowledge(&mut self, id: u64) -> bool {
        match self.banners.iter_mut().find(|b| b.id == id) {
            Some(b) => {
                b.acknowledged = true;
                let _ = self.events.send(GuardEvent::Banner(b.clone()));
                true
            }
            None => false,
        }
    }

    /// The earliest time [`AssignmentGuard::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let now = self.clock.now();
        let armed = self
            .closes
            .iter()
            .filter(|c| c.unfinished())
            .filter_map(|c| c.next_release(now));
        let verify = self
            .closes
            .iter()
            .any(|c| c.unfinished() && c.verifying_since.is_some())
            .then(|| now.plus(VERIFY_EVERY));
        [
            self.detector.next_deadline(),
            Some(self.next_expiry_check),
            self.deferred_check_at,
            verify,
        ]
        .into_iter()
        .flatten()
        .chain(armed)
        .min()
    }

    async fn persist_known(&self) {
        let r = JournalRecord::KnownPositions(self.detector.known_positions());
        if let Err(e) = self.journal.append(r).await {
            tracing::error!(code = e.code(), "known positions not journaled: {e}");
        }
    }

    async fn audit(&self, decision: &str, code: &str, reason: String) {
        tracing::info!(decision, code, "{reason}");
        let e = AuditEntry {
            ts: self.clock.now(),
            decision: decision.to_owned(),
            code: code.to_owned(),
            reason,
            purpose: Some(Purpose::Emergency),
            group: None,
        };
        if let Err(e) = self.journal.append(JournalRecord::Audit(e)).await {
            tracing::error!(code = e.code(), "audit entry not journaled: {e}");
        }
    }

    /// How texts for a person name a strategy: its name ("SPY 21MAR25 vertical 590/580"),
    /// or its id when it has none.
    fn strategy_label(&self, id: StrategyId) -> String {
        match self.strategies.iter().find(|s| s.id == id) {
            Some(s) if !s.name.trim().is_empty() => s.name.clone(),
            _ => format!("strategy {id}"),
        }
    }

    async fn alert(&self, severity: Severity, code: &str, message: String) {
        match severity {
            Severity::Critical => tracing::error!(code, "{message}"),
            Severity::Warning => tracing::warn!(code, "{message}"),
            Severity::Info => tracing::info!(code, "{message}"),
        }
        let a = Alert {
            ts: self.clock.now(),
            severity,
            code: code.to_owned(),
            message,
            group: None,
            stop: None,
        };
        if let Err(e) = self.journal.append(JournalRecord::Alert(a.clone())).await {
            tracing::error!(code = e.code(), "alert not journaled: {e}");
        }
        // Err only means nobody is listening right now.
        let _ = self.events.send(GuardEvent::Alert(a));
    }

    /// An alert ("`title`: `body`") and the same as a notification.
    async fn tell(&self, severity: Severity, code: &str, title: String, body: String) {
        self.alert(severity, code, format!("{title}: {body}")).await;
        self.notifier.notify(&Notification {
            title,
            body,
            severity,
        });
    }

    // ----- events -------------------------------------------------------------------------

    /// Processes one broker event.
    pub async fn on_event(&mut self, ev: &BrokerEvent) {
        let now = self.clock.now();
        match ev {
            BrokerEvent::Position(p) => {
                let before = self.detector.qty(&p.account, &p.instrument.id());
                let ds = self.detector.on_position(p, now);
                if self.detector.qty(&p.account, &p.instrument.id()) != before {
                    self.persist_known().await;
                }
                for d in ds {
                    self.handle(d).await;
                }
            }
            BrokerEvent::Execution(e) => {
                if e.order_id.is_some_and(|id| self.find_order(id).is_none()) {
                    self.bind_deferred().await;
                }
                // An own fill is journaled with its close before the known positions contain
                // it (a restart then counts it once).
                let own = self.record_fill(e).await;
                self.detector.on_execution(e, now);
                self.persist_known().await;
                if let Some(ci) = own {
                    self.advance(ci).await;
                }
            }
            BrokerEvent::OrderStatus(u) => {
                if self.find_order(u.order_id).is_none() {
                    self.bind_deferred().await;
                }
                self.on_status(u).await;
            }
            BrokerEvent::Quote(q) => {
                let px = match &q.instrument {
                    Instrument::Stock { symbol } => q
                        .mid()
                        .filter(|_| q.bid.is_some_and(Price::is_positive))
                        .map(|m| (symbol.clone(), m)),
                    Instrument::Option(o) => q.underlying_price.map(|p| (o.underlying.clone(), p)),
                    _ => None,
                };
                if let Some((s, p)) = px {
                    self.spots.insert(s, p);
                }
            }
            BrokerEvent::Connection(c) => match c {
                ConnectionState::Disconnected { .. } => self.reconnecting = true,
                ConnectionState::Connected if self.reconnecting => {
                    self.reconnecting = false;
                    if let Err(e) = self.check_snapshot().await {
                        self.alert(
                            Severity::Warning,
                            "assignment.snapshot_failed",
                            format!(
                                "positions snapshot after reconnect failed: {e} ({})",
                                e.code()
                            ),
                        )
                        .await;
                    }
                }
                _ => {}
            },
            BrokerEvent::Account(_) | BrokerEvent::Notice(_) => {}
        }
    }

    /// An execution the broker marked as exercise / assignment / expiry (adapters that know).
    pub async fn on_marked_execution(&mut self, e: &Execution, marker: ExecutionMarker) {
        let now = self.clock.now();
        let ds = self.detector.on_marked_execution(e, marker, now);
        self.persist_known().await;
        for d in ds {
            self.handle(d).await;
        }
    }

    /// A reconciliation's broker positions: position changes whose events never arrived (a
    /// dropped stream, a gap) go through the detector once the next reconciliation confirms
    /// them ([`Detector::on_reconcile`]).
    pub async fn on_reconcile(&mut self, positions: &[Position]) {
        let now = self.clock.now();
        let before = self.detector.known_positions();
        let ds = self.detector.on_reconcile(positions, now);
        if self.detector.known_positions() != before {
            self.persist_known().await;
        }
        for d in ds {
            self.handle(d).await;
        }
    }

    /// Resolves detection windows, releases armed closes, runs the expiry-day check.
    pub async fn on_timer(&mut self) {
        let now = self.clock.now();
        if self.deferred_check_at.is_some_and(|t| t <= now) {
            self.bind_deferred().await;
        }
        let ds = self.detector.poll(now);
        for d in ds {
            self.handle(d).await;
        }
        let due: Vec<usize> = (0..self.closes.len())
            .filter(|i| !self.ready(*i, now).is_empty())
            .collect();
        for i in due {
            self.advance(i).await;
        }
        let verifying: Vec<usize> = (0..self.closes.len())
            .filter(|i| {
                let c = &self.closes[*i];
                c.unfinished() && c.verifying_since.is_some()
            })
            .collect();
        for i in verifying {
            self.verify(i).await;
        }
        if now >= self.next_expiry_check {
            self.next_expiry_check = now.plus(self.cfg.expiry_check_interval);
            self.check_expiry(now).await;
        }
    }

    async fn check_expiry(&mut self, now: Timestamp) {
        let spots = &self.spots;
        let risks = expiry::check(
            &self.strategies,
            &|u: &str| spots.get(u).copied(),
            now,
            self.hours.as_ref(),
            &self.cfg.expiry,
        );
        let today = self.hours.local(now).date();
        for r in &risks {
            if !self
                .expiry_warned
                .insert((r.strategy, r.leg, today, r.kind))
            {
                continue;
            }
            let left = r.close.duration_since(now).as_secs() / 60;
            let spot = r
                .spot
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            self.alert(
                Severity::Warning,
                "assignment.expiry_risk",
                format!(
                    "EXPIRY RISK: {} short {} ×{} is {:?} (spot {spot}) with {left} min to the close: close or roll it to avoid assignment",
                    self.strategy_label(r.strategy),
                    short_name(&r.option),
                    r.qty.abs(),
                    r.kind
                ),
            )
            .await;
        }
        self.expiry_risks = risks;
    }

    // ----- detections ---------------------------------------------------------------------

    async fn handle(&mut self, d: Detection) {
        let what = format!("{} ×{}", short_name(&d.option), d.contracts);
        match d.kind {
            DetectionKind::Expired => {
                self.audit(
                    "no_action",
                    "assignment.expired",
                    format!(
                        "{what} expired with nothing delivered ({:?}): no action",
                        d.source
                    ),
                )
                .await;
            }
            // A leg of a spread gone from the live stream with no execution and nothing
            // delivered breaks it. A snapshot's difference may be fills the snapshot does not
            // show as executions (a restart): reported below, never traded on.
            DetectionKind::Unexplained
                if d.source == DetectionSource::PositionStream
                    && self
                        .holder_of(&d)
                        .is_some_and(|(si, _)| self.strategies[si].legs.len() >= 2) =>
            {
                self.respond(d).await
            }
            DetectionKind::Unexplained => {
                self.alert(
                    Severity::Warning,
                    "assignment.unexplained",
                    format!(
                        "{what}: option position fell before expiry with no execution and no stock delivered ({:?}); check the account",
                        d.source
                    ),
                )
                .await;
            }
            DetectionKind::Assigned | DetectionKind::Exercised => self.respond(d).await,
        }
    }

    /// The response works from the strategy as it was before the assignment: when the strategy
    /// book already replaced it by the shrunk strategy (same id, fewer contracts on the
    /// assigned leg, or the leg gone), the copy from before the change is put back, so the
    /// plan subtracts the assigned contracts once (what the account holds still bounds every
    /// order).
    fn restore_pre_assignment(&mut self, d: &Detection, now: Timestamp) {
        let oid = d.option.id();
        let side_ok = |q: i64| match d.kind {
            DetectionKind::Assigned => q < 0,
            DetectionKind::Exercised => q > 0,
            _ => true,
        };
        let leg_qty = |s: &Strategy| {
            s.legs
                .iter()
                .filter(|l| l.instrument.id() == oid && side_ok(l.qty))
                .map(|l| l.qty.abs())
                .sum::<i64>()
        };
        let restore: Vec<Strategy> = self
            .prior
            .values()
            .filter(|(old, at)| {
                now.duration_since(*at) <= PRIOR_HORIZON
                    && old.account == d.account
                    && leg_qty(old) > 0
            })
            .filter(|(old, _)| {
                let current = self.strategies.iter().find(|s| s.id == old.id);
                current.is_none_or(|c| {
                    c.state != StrategyState::Broken
                        && c.state != StrategyState::Closed
                        && leg_qty(c) < leg_qty(old)
                })
            })
            .map(|(old, _)| old.clone())
            .collect();
        for old in restore {
            tracing::info!(
                strategy = %old.id,
                "assignment: planning from the strategy as it was before the book re-recognised it"
            );
            self.prior.remove(&old.id);
            match self.strategies.iter_mut().find(|s| s.id == old.id) {
                Some(s) => *s = old,
                None => self.strategies.push(old),
            }
        }
    }

    /// The strategy (index) and leg holding the option of `d`: the one that held it first (one
    /// the book regrouped from the leftovers after the option's update, borrowing other
    /// strategies' legs, is not the one broken). An assignment takes a short leg, an exercise a
    /// long one, a missing leg either.
    fn holder_of(&self, d: &Detection) -> Option<(usize, usize)> {
        let oid = d.option.id();
        let now = self.clock.now();
        let side_ok = |q: i64| match d.kind {
            DetectionKind::Assigned => q < 0,
            DetectionKind::Exercised => q > 0,
            _ => true,
        };
        self.strategies
            .iter()
            .enumerate()
            .filter_map(|(si, s)| {
                if s.account != d.account || s.state == StrategyState::Closed {
                    return None;
                }
                s.legs
                    .iter()
                    .position(|l| l.instrument.id() == oid && side_ok(l.qty))
                    .map(|li| (si, li, self.first_seen.get(&s.id).copied().unwrap_or(now)))
            })
            .min_by_key(|(si, _, seen)| (*seen, *si))
            .map(|(si, li, _)| (si, li))
    }

    async fn respond(&mut self, d: Detection) {
        let now = self.clock.now();
        let what = format!("{} ×{}", short_name(&d.option), d.contracts);
        let oid = d.option.id();
        let want_short = d.kind == DetectionKind::Assigned;
        let missing = d.kind == DetectionKind::Unexplained;
        self.restore_pre_assignment(&d, now);
        let found = self.holder_of(&d);
        let id = self.records.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let record = AssignmentRecord {
            id,
            account: d.account.clone(),
            strategy: found.map(|(si, _)| self.strategies[si].id),
            leg: found.map(|(_, li)| li),
            option: d.option.clone(),
            kind: d.kind,
            contracts: d.contracts,
            stock_delivered: d.stock_delivered,
            stock_price: d
                .option
                .as_option()
                .filter(|_| d.stock_delivered != 0)
                .map(|o| o.strike),
            detected_at: d.at,
            source: d.source,
        };
        if let Err(e) = self
            .journal
            .append(JournalRecord::Assignment(record.clone()))
            .await
        {
            tracing::error!(code = e.code(), "assignment record not journaled: {e}");
        }
        self.records.push(record.clone());
        let verb = verb_of(d.kind);
        let delivered = moved_words(&d);
        self.audit(
            "detected",
            match d.kind {
                DetectionKind::Assigned => "assignment.assigned",
                DetectionKind::Exercised => "assignment.exercised",
                _ => "assignment.leg_missing",
            },
            format!(
                "{what} {verb} ({:?}); {delivered}; {}",
                d.source,
                record.strategy.map_or_else(
                    || "no strategy holds it".to_owned(),
                    |s| self.strategy_label(s)
                )
            ),
        )
        .await;
        let Some((si, _)) = found else {
            self.announce(
                &record,
                format!("{what} {verb} — no strategy holds it: no automatic close"),
                format!("{delivered}. Check the account."),
            )
            .await;
            return;
        };
        let sid = self.strategies[si].id;
        let decision = self.cfg.policy.decide(&self.strategies[si]);
        if decision.intended {
            self.respond_intended(&d, &record, si, decision, now).await;
            return;
        }
        // Lock.
        let reason = if missing {
            let expected = self.strategies[si]
                .legs
                .iter()
                .filter(|l| l.instrument.id() == oid)
                .map(|l| l.qty)
                .sum::<i64>();
            let actual = self.detector.qty(&d.account, &oid);
            if actual == 0 {
                BrokenReason::LegMissing {
                    instrument: oid.clone(),
                }
            } else {
                BrokenReason::QtyMismatch {
                    instrument: oid.clone(),
                    expected,
                    actual,
                }
            }
        } else if want_short {
            BrokenReason::Assigned {
                instrument: oid.clone(),
            }
        } else {
            BrokenReason::Exercised {
                instrument: oid.clone(),
            }
        };
        // The guard's copy is Broken first; the coordinator (the gate) is told once the close
        // snapshot — the Broken strategy with every leg, and the plan — is durable, so a crash
        // in between leaves a journal from which the next start restores both (see
        // `lock_broken`).
        let newly_broken = self.strategies[si].state != StrategyState::Broken;
        if newly_broken && let Err(e) = self.strategies[si].mark_broken(reason.clone()) {
            tracing::warn!(code = e.code(), "strategy {sid}: {e}");
        }
        // Close.
        if let Some(c) = self
            .closes
            .iter()
            .find(|c| c.strategy == sid && c.phase != ClosePhase::Armed)
        {
            let phase = c.phase;
            if newly_broken {
                self.lock_in_gate(sid, &reason).await;
            }
            self.announce(
                &record,
                format!(
                    "{what} {verb} — the emergency close of {} is already {}",
                    self.strategy_label(sid),
                    match phase {
                        ClosePhase::Armed => "armed",
                        ClosePhase::Working => "working",
                        ClosePhase::Completed => "completed",
                        ClosePhase::Failed => "failed",
                    }
                ),
                format!("{delivered}. The running close does not cover this delivery: check the account now."),
            )
            .await;
            return;
        }
        self.closes.retain(|c| c.strategy != sid);
        let acct = d.account.clone();
        let det = &self.detector;
        let held = |i: &tradeguard_model::InstrumentId| det.qty(&acct, i);
        let p = plan::build(
            &self.strategies[si],
            &oid,
            d.contracts,
            d.stock_delivered,
            &held,
            decision.stock == StockAction::Close,
        );
        let ci = self.open_close(sid, &d.account, record.id, p, false, now);
        let plan_text = self.closes[ci]
            .orders
            .iter()
            .map(order_text)
            .collect::<Vec<_>>()
            .join("; ");
        let release_at = self.closes[ci].release_at;
        let armed = self.closes[ci].phase == ClosePhase::Armed;
        let open_at = self.hours.release_time(now, ArmAt::Open);
        // The alert's text stays as written: the moment itself, then how far off it was.
        let left = |t: Timestamp| {
            format!(
                "at {} ET, {}",
                crate::calendar::new_york(t).format("%a %H:%M:%S"),
                time_left(t.duration_since(now))
            )
        };
        let at_open = armed && release_at >= open_at;
        let when = if !armed {
            let later = self.closes[ci].next_release(now);
            match later {
                Some(t) => format!(
                    "emergency close sent (option orders at the open, {})",
                    left(t)
                ),
                None => "emergency close sent".to_owned(),
            }
        } else if at_open {
            format!(
                "emergency close armed for the open: {} ({})",
                self.closes[ci].how,
                left(release_at)
            )
        } else {
            format!(
                "emergency close armed: stock outside regular hours from pre-market ({}), options at the open ({})",
                left(release_at),
                left(open_at)
            )
        };
        let title = format!(
            "{}: {what} {verb} — {}",
            match d.kind {
                DetectionKind::Assigned => "ASSIGNMENT",
                DetectionKind::Exercised => "EXERCISE",
                _ => "MISSING LEG",
            },
            if !armed {
                "emergency close sent"
            } else if at_open {
                "emergency close armed for the open"
            } else {
                "emergency close armed for pre-market"
            }
        );
        let kept = if self.closes[ci].kept.is_empty() {
            String::new()
        } else {
            format!(
                " Kept: {}.",
                self.closes[ci]
                    .kept
                    .iter()
                    .map(|k| format!("{} {} ({})", short_name(&k.instrument), k.qty, k.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let body = format!(
            "{} is Broken: {}; {delivered}; {when}: {plan_text}.{kept}",
            self.strategy_label(sid),
            reason.describe()
        );
        // Planned and armed orders, with the Broken strategy and its legs, are durable before
        // the gate is told and before anything is sent.
        self.save(ci).await;
        if newly_broken {
            self.lock_in_gate(sid, &reason).await;
        }
        self.announce(&record, title, body).await;
        self.advance(ci).await;
    }

    /// An assignment or exercise that was the plan ([`Decision::intended`]): recorded and
    /// alerted with what was delivered or called away; nothing is Broken and no order goes out,
    /// except the sale of delivered stock the trader's policy says to close.
    async fn respond_intended(
        &mut self,
        d: &Detection,
        record: &AssignmentRecord,
        si: usize,
        decision: Decision,
        now: Timestamp,
    ) {
        let sid = self.strategies[si].id;
        let label = self.strategy_label(sid);
        let what = format!("{} ×{}", short_name(&d.option), d.contracts);
        let verb = verb_of(d.kind);
        let stock = Instrument::stock(d.option.underlying());
        let held = self.detector.qty(&d.account, &stock.id());
        let shape = decision.shape.as_str().replace('_', " ");
        let mut close = None;
        // Shares the assignment delivered into the account (not ones it took away, as when a
        // covered call's shares are called away).
        let grew = d.stock_delivered != 0 && held.signum() == d.stock_delivered.signum();
        let action = if !grew {
            "No order sent.".to_owned()
        } else if decision.stock == StockAction::Keep {
            format!(
                "Shares kept (policy for {shape}: keep); no order sent. The account holds {held} {}.",
                stock.underlying()
            )
        } else {
            let q = plan::clamp(d.stock_delivered, held);
            if q == 0 {
                format!(
                    "Policy for {shape} is to close delivered shares, but the account holds {held} {}: no order sent.",
                    stock.underlying()
                )
            } else {
                let p = plan::ClosePlan {
                    orders: vec![PlannedOrder {
                        instrument: stock.clone(),
                        side: if q > 0 {
                            tradeguard_model::Side::Sell
                        } else {
                            tradeguard_model::Side::Buy
                        },
                        qty: q.abs(),
                        after: Vec::new(),
                    }],
                    kept: Vec::new(),
                };
                self.closes.retain(|c| c.strategy != sid || c.unfinished());
                let ci = self.open_close(sid, &d.account, record.id, p, true, now);
                let c = &self.closes[ci];
                let order = order_text(&c.orders[0]);
                close = Some(ci);
                if c.phase == ClosePhase::Armed {
                    format!(
                        "Policy for {shape}: close the shares — {order} armed for the open ({}).",
                        time_left(c.release_at.duration_since(now))
                    )
                } else {
                    format!("Policy for {shape}: close the shares — {order} sent at market.")
                }
            }
        };
        let title = match d.kind {
            DetectionKind::Exercised => format!("EXERCISE: {what} {verb} as planned"),
            DetectionKind::Assigned => format!("ASSIGNMENT: {what} {verb} as planned"),
            // A leg of a covered position or a wheel gone with nothing delivered: a Warning
            // that says so; nothing is traded.
            _ => format!("MISSING LEG: {what} {verb} (a {shape}: not an emergency)"),
        };
        let body = format!("{label}: {}. {action}", moved_words(d));
        self.audit(
            "intended",
            "assignment.intended",
            format!("{title}; {body}"),
        )
        .await;
        self.tell(Severity::Warning, "assignment.intended", title, body)
            .await;
        if let Some(ci) = close {
            self.save(ci).await;
            self.advance(ci).await;
        }
    }

    /// Turns `plan` into the emergency close of `sid` (armed when the market is closed),
    /// pushes it and returns its index. Options go out at the regular open; with pre-market
    /// arming (and a broker that takes outside-RTH orders) stock goes out from 04:00. The plan's
    /// order still holds: a step waits for the fills it depends on, whatever its release time.
    fn open_close(
        &mut self,
        sid: StrategyId,
        account: &AccountId,
        record: u64,
        p: plan::ClosePlan,
        intended: bool,
        now: Timestamp,
    ) -> usize {
        let mut expected: Vec<(InstrumentId, i64)> = Vec::new();
        for o in &p.orders {
            let id = o.instrument.id();
            let signed = match o.side {
                tradeguard_model::Side::Buy => o.qty,
                tradeguard_model::Side::Sell => -o.qty,
            };
            match expected.iter_mut().find(|(i, _)| *i == id) {
                Some((_, q)) => *q += signed,
                None => expected.push((id.clone(), self.detector.qty(account, &id) + signed)),
            }
        }
        let pre = self.cfg.arm_at == ArmAt::PreMarket && self.broker.capabilities().outside_rth;
        let open_at = self.hours.release_time(now, ArmAt::Open);
        let pre_at = self.hours.release_time(now, ArmAt::PreMarket);
        // Armed for the open: the configured delay after it (the opening spreads); the rules
        // file's `open_delay_secs` wins.
        let at_open = match self.cfg.policy.open_delay_secs {
            Some(0) => super::config::OpenOrder::Market,
            Some(secs) => super::config::OpenOrder::DelayedMarket {
                after: Duration::from_secs(secs),
            },
            None => self.cfg.at_open,
        };
        let open_at = if open_at > now {
            open_at.plus(at_open.delay())
        } else {
            open_at
        };
        let orders: Vec<EmergencyOrder> = p
            .orders
            .into_iter()
            .map(|planned| {
                let stock_pre = pre && planned.instrument.as_option().is_none();
                let r = if stock_pre { pre_at } else { open_at };
                EmergencyOrder {
                    planned,
                    state: EmergencyOrderState::Waiting,
                    group: None,
                    order_id: None,
                    sent_at: None,
                    fills: Vec::new(),
                    release_at: (r > now).then_some(r),
                    outside_rth: stock_pre,
                    client_ref: None,
                    attempts: 0,
                    previous_orders: Vec::new(),
                    covered: 0,
                }
            })
            .collect();
        let first = orders.iter().map(|o| o.release_at.unwrap_or(now)).min();
        let release_at = first.unwrap_or(now);
        let armed = release_at > now;
        self.closes.push(EmergencyClose {
            strategy: sid,
            account: account.clone(),
            record,
            orders,
            kept: p.kept,
            release_at,
            phase: if armed {
                ClosePhase::Armed
            } else {
                ClosePhase::Working
            },
            intended,
            expected,
            verifying_since: None,
            how: if armed {
                at_open.describe()
            } else {
                "market orders now (the market is open)".to_owned()
            },
        });
        self.closes.len() - 1
    }

    async fn announce(&mut self, record: &AssignmentRecord, title: String, body: String) {
        let code = match record.kind {
            DetectionKind::Exercised => "assignment.exercise_detected",
            DetectionKind::Unexplained => "assignment.leg_missing",
            _ => "assignment.detected",
        };
        self.alert(Severity::Critical, code, format!("{title}. {body}"))
            .await;
        let n = Notification {
            title: title.clone(),
            body: body.clone(),
            severity: Severity::Critical,
        };
        self.notifier.notify(&n);
        let b = Banner {
            id: record.id,
            title,
            body,
            severity: Severity::Critical,
            acknowledged: false,
        };
        self.banners.push(b.clone());
        let _ = self.events.send(GuardEvent::Banner(b));
    }

    /// Marks `sid` Broken in the coordinator (journaled there; the gate then refuses every
    /// non-emergency order for it). A failure is a critical alert.
    async fn lock_in_gate(&self, sid: StrategyId, reason: &BrokenReason) {
        // Its instruments are locked in the same step: a rule's order for another strategy
        // holding one of them is refused from now on, not from the strategy book's next push.
        let legs = self
            .strategies
            .iter()
            .find(|s| s.id == sid)
            .map(|s| s.legs.iter().map(|l| l.instrument.id()).collect())
            .unwrap_or_default();
        if let Err(e) = self
            .coordinator
            .mark_broken_locking(sid, reason, legs)
            .await
        {
            self.alert(
                Severity::Critical,
                "assignment.lock_failed",
                format!(
                    "{}: could not mark Broken: {e} ({})",
                    self.strategy_label(sid),
                    e.code()
                ),
            )
            .await;
        }
    }

    /// Start-up: every strategy this guard holds Broken (restored from the journal's close
    /// snapshots) is Broken in the coordinator too — a crash between journaling the close and
    /// telling the coordinator left it unlocked there.
    pub async fn lock_broken(&mut self) -> Result<(), AssignmentError> {
        let known: BTreeSet<StrategyId> = self
            .coordinator
            .snapshot()
            .await?
            .broken
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let todo: Vec<(StrategyId, BrokenReason)> = self
            .strategies
            .iter()
            .filter(|s| s.state == StrategyState::Broken && !known.contains(&s.id))
            .filter_map(|s| s.broken_reason.clone().map(|r| (s.id, r)))
            .collect();
        for (sid, reason) in todo {
            self.audit(
                "emergency_resume",
                "assignment.lock_restored",
                format!(
                    "{}: Broken in the journal's emergency close but not in the coordinator (restart right after the close was journaled): locked again",
                    self.strategy_label(sid)
                ),
            )
            .await;
            self.lock_in_gate(sid, &reason).await;
        }
        Ok(())
    }

    // ----- emergency close ----------------------------------------------------------------

    /// Steps of close `ci` that may go out now: waiting, released, every dependency filled.
    fn ready(&self, ci: usize, now: Timestamp) -> Vec<usize> {
        let Some(c) = self.closes.get(ci).filter(|c| c.unfinished()) else {
            return Vec::new();
        };
        (0..c.orders.len())
            .filter(|i| {
                let o = &c.orders[*i];
                o.state == EmergencyOrderState::Waiting
                    && o.release_at.is_none_or(|r| r <= now)
                    && o.planned.after.iter().all(|j| {
                        c.orders
                            .get(*j)
                            .is_some_and(|d| d.state == EmergencyOrderState::Filled)
                    })
            })
            .collect()
    }

    /// Sends every step that may go out now (in plan order); settles the close when nothing
    /// more can happen.
    async fn advance(&mut self, ci: usize) {
        loop {
            let now = self.clock.now();
            let ready = self.ready(ci, now);
            if ready.is_empty() {
                break;
            }
            if self.closes[ci].phase == ClosePhase::Armed {
                self.closes[ci].phase = ClosePhase::Working;
                self.audit(
                    "emergency_release",
                    "assignment.close_released",
                    format!(
                        "{}: armed emergency close released",
                        self.strategy_label(self.closes[ci].strategy)
                    ),
                )
                .await;
            }
            for oi in ready {
                self.send(ci, oi).await;
            }
        }
        let now = self.clock.now();
        if let Some(c) = self.closes.get_mut(ci)
            && let Some(r) = c.next_release(now)
        {
            c.release_at = r;
        }
        self.settle(ci).await;
    }

    /// Sends the remainder of step `oi`: journaled as Submitting (with its client tag) first,
    /// then handed to the coordinator's emergency path, then journaled as Sent.
    async fn send(&mut self, ci: usize, oi: usize) {
        let now = self.clock.now();
        let outside_rth = self.hours.session(now) != MarketSession::Regular;
        // A second attempt (the first order ended, was lost, or a restart cancelled it) is cut
        // to what the account still holds: fills of the earlier order that were not counted
        // yet (an execution or its commission still on the way) must not be sold twice.
        let holds = match self.closes.get(ci).and_then(|c| c.orders.get(oi)) {
            Some(eo) if !eo.previous_orders.is_empty() => {
                let account = &self.closes[ci].account;
                let id = eo.planned.instrument.id();
                self.broker.positions().await.ok().map(|ps| {
                    let held: i64 = ps
                        .iter()
                        .filter(|p| &p.account == account && p.instrument.id() == id)
                        .map(|p| p.qty)
                        .sum();
                    match eo.planned.side {
                        tradeguard_model::Side::Buy => (-held).max(0),
                        tradeguard_model::Side::Sell => held.max(0),
                    }
                })
            }
            _ => None,
        };
        let cut = match (
            self.closes.get_mut(ci).and_then(|c| c.orders.get_mut(oi)),
            holds,
        ) {
            (Some(eo), Some(h)) if h < eo.remaining() => {
                let cut = eo.remaining() - h;
                let t = order_text(eo);
                eo.covered += cut;
                Some((t, h, cut))
            }
            _ => None,
        };
        if let Some((t, h, cut)) = cut {
            let who = self.strategy_label(self.closes[ci].strategy);
            self.audit(
                "emergency_order",
                "assignment.order_cut_to_position",
                format!(
                    "{who}: {t}: {h} sent again, not {}: the account holds {h} to close (the earlier order filled {cut} not counted yet)",
                    h + cut
                ),
            )
            .await;
        }
        let Some(c) = self.closes.get_mut(ci) else {
            return;
        };
        let (sid, account, record) = (c.strategy, c.account.clone(), c.record);
        let Some(eo) = c.orders.get_mut(oi) else {
            return;
        };
        let qty = eo.remaining();
        if qty == 0 {
            eo.state = EmergencyOrderState::Filled;
            return;
        }
        eo.attempts = eo.attempts.saturating_add(1);
        let tag = format!("assignment:{record}:{oi}:{}", eo.attempts);
        eo.client_ref = Some(tag.clone());
        eo.state = EmergencyOrderState::Submitting;
        eo.sent_at = Some(now);
        let o = eo.planned.clone();
        let rth_flag = eo.outside_rth && outside_rth;
        if let Err(e) = self.write_close(ci).await {
            let reason = format!(
                "not sent: the journal refused the write-ahead record ({e}, {})",
                e.code()
            );
            if let Some(eo) = self.closes.get_mut(ci).and_then(|c| c.orders.get_mut(oi)) {
                eo.state = EmergencyOrderState::Failed { reason };
            }
            return;
        }
        let intent = OrderIntent::new(Purpose::Emergency, account)
            .for_strategy(sid)
            .leg(o.instrument.clone(), o.side, qty, OrderType::Market)
            .with_outside_rth(rth_flag)
            .with_client_ref(tag);
        let who = self.strategy_label(sid);
        let result = match self.coordinator.submit(intent).await {
            Ok(gid) => match self.coordinator.snapshot().await {
                Ok(snap) => Ok((gid, group_order(&snap, gid))),
                Err(e) => Err(format!("{e} ({})", e.code())),
            },
            Err(e) => Err(format!("{e} ({})", e.code())),
        };
        let Some(eo) = self.closes.get_mut(ci).and_then(|c| c.orders.get_mut(oi)) else {
            return;
        };
        match result {
            Ok((gid, GroupOrder::Held)) => {
                eo.group = Some(gid);
                eo.state = EmergencyOrderState::Deferred;
                let t = order_text(eo);
                self.deferred_check_at
                    .get_or_insert(now.plus(DEFERRED_POLL));
                self.save(ci).await;
                self.audit(
                    "emergency_order",
                    "assignment.order_deferred",
                    format!(
                        "{who}: {t} ×{qty} accepted as group {gid}, held until the managed stop on the position is cancelled (no two live exits)"
                    ),
                )
                .await;
            }
            Ok((
                gid,
                GroupOrder::Sent {
                    order: id,
                    qty: sent,
                },
            )) => {
                eo.group = Some(gid);
                eo.order_id = Some(id);
                let cut = eo.cover_cut(sent);
                // A fill may already have been counted (it cannot arrive before this, but a
                // restart's recount may have): keep Filled.
                eo.state = if eo.remaining() == 0 {
                    EmergencyOrderState::Filled
                } else {
                    EmergencyOrderState::Sent
                };
                let t = order_text(eo);
                let ext = if rth_flag {
                    ", outside regular hours"
                } else {
                    ""
                };
                let cut = if cut > 0 {
                    format!("; {cut} left to the exit already closing it")
                } else {
                    String::new()
                };
                self.save(ci).await;
                self.audit(
                    "emergency_order",
                    "assignment.order_sent",
                    format!("{who}: {t} ×{sent} (order {id}{ext}{cut})"),
                )
                .await;
            }
            Ok((gid, GroupOrder::Covered { reason })) => {
                eo.group = Some(gid);
                let cut = eo.cover_cut(0);
                eo.state = EmergencyOrderState::Filled;
                let t = order_text(eo);
                self.save(ci).await;
                self.audit(
                    "emergency_order",
                    "assignment.order_covered",
                    format!("{who}: {t}: nothing sent, another exit closes all {cut} ({reason})"),
                )
                .await;
            }
            Ok((_, GroupOrder::Ended { reason })) | Err(reason) => {
                eo.state = EmergencyOrderState::Failed { reason };
                self.save(ci).await;
            }
        }
    }

    /// Looks up the steps the coordinator holds (no order id yet): sent once their group has
    /// an order (before any of its events is processed: a fill is never missed), failed when
    /// the group ended without one; the rest stay deferred (polled again shortly).
    async fn bind_deferred(&mut self) {
        let todo: Vec<(usize, usize, GroupId)> =
            self.closes
                .iter()
                .enumerate()
                .flat_map(|(ci, c)| {
                    c.orders.iter().enumerate().filter_map(move |(oi, o)| {
                        match (&o.state, o.group) {
                            (EmergencyOrderState::Deferred, Some(g)) => Some((ci, oi, g)),
                            _ => None,
                        }
                    })
                })
                .collect();
        if todo.is_empty() {
            self.deferred_check_at = None;
            return;
        }
        let now = self.clock.now();
        self.deferred_check_at = Some(now.plus(DEFERRED_POLL));
        let snap = match self.coordinator.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "deferred emergency orders not looked up: {e}"
                );
                return;
            }
        };
        let mut touched = BTreeSet::new();
        let mut left = false;
        for (ci, oi, gid) in todo {
            let r = group_order(&snap, gid);
            let who = self
                .closes
                .get(ci)
                .map(|c| self.strategy_label(c.strategy))
                .unwrap_or_default();
            let Some(eo) = self.closes.get_mut(ci).and_then(|c| c.orders.get_mut(oi)) else {
                continue;
            };
            let text = match r {
                GroupOrder::Held => {
                    left = true;
                    continue;
                }
                GroupOrder::Sent { order: id, qty } => {
                    eo.order_id = Some(id);
                    let cut = eo.cover_cut(qty);
                    eo.state = if eo.remaining() == 0 {
                        EmergencyOrderState::Filled
                    } else {
                        EmergencyOrderState::Sent
                    };
                    let cut = if cut > 0 {
                        format!("; the stop closed {cut} meanwhile")
                    } else {
                        String::new()
                    };
                    Some((
                        "assignment.order_sent",
                        format!(
                            "{who}: {} ×{qty} (order {id}, group {gid}, sent once the managed stop's cancel was confirmed{cut})",
                            order_text(eo)
                        ),
                    ))
                }
                GroupOrder::Covered { reason } => {
                    let cut = eo.cover_cut(0);
                    eo.state = EmergencyOrderState::Filled;
                    Some((
                        "assignment.order_covered",
                        format!(
                            "{who}: {}: nothing sent, another exit closed all {cut} while it was held (group {gid}: {reason})",
                            order_text(eo)
                        ),
                    ))
                }
                GroupOrder::Ended { reason } => {
                    eo.state = EmergencyOrderState::Failed { reason };
                    None
                }
            };
            self.save(ci).await;
            if let Some((code, t)) = text {
                self.audit("emergency_order", code, t).await;
            }
            touched.insert(ci);
        }
        if !left {
            self.deferred_check_at = None;
        }
        for ci in touched {
            self.advance(ci).await;
        }
    }

    fn find_order(&self, id: OrderId) -> Option<(usize, usize)> {
        self.closes
            .iter()
            .enumerate()
            .find_map(|(ci, c)| c.orders.iter().position(|o| o.owns(id)).map(|oi| (ci, oi)))
    }

    /// Counts a fill of an emergency order once (by exec id) and journals the close; returns
    /// the close to advance.
    async fn record_fill(&mut self, e: &Execution) -> Option<usize> {
        let (ci, oi) = e.order_id.and_then(|id| self.find_order(id))?;
        let o = &mut self.closes[ci].orders[oi];
        if o.fills.iter().any(|f| f.exec_id == e.exec_id) {
            return None;
        }
        o.fills.push(fill_of(e));
        if o.remaining() == 0 && o.state == EmergencyOrderState::Sent {
            o.state = EmergencyOrderState::Filled;
        }
        self.save(ci).await;
        Some(ci)
    }

    async fn on_status(&mut self, u: &OrderUpdate) {
        let Some((ci, oi)) = self.find_order(u.order_id) else {
            return;
        };
        let restart_cancel = self.restart_cancels.contains(&u.order_id);
        let o = &mut self.closes[ci].orders[oi];
        if o.state != EmergencyOrderState::Sent || o.order_id != Some(u.order_id) {
            return;
        }
        match u.status {
            OrderStatus::Filled => o.state = EmergencyOrderState::Filled,
            OrderStatus::Cancelled | OrderStatus::ApiCancelled if restart_cancel => {
                // Cancelled by the coordinator's start-up recovery: send the remainder again.
                retire_attempt(o);
                let t = order_text(o);
                let left = o.remaining();
                self.restart_cancels.remove(&u.order_id);
                self.audit(
                    "emergency_resume",
                    "assignment.order_resumed",
                    format!(
                        "{t}: order {} cancelled by the restart's recovery after {} filled; {left} sent again",
                        u.order_id, u.filled
                    ),
                )
                .await;
            }
            OrderStatus::Rejected
                if u.reason
                    .as_ref()
                    .is_some_and(|r| r.code == StatusReason::ORDER_LOST)
                    && o.attempts < LOST_ORDER_ATTEMPTS =>
            {
                // It never reached the broker (the connection dropped as it went out): send
                // the remainder again, as after a restart's recovery.
                retire_attempt(o);
                let t = order_text(o);
                let left = o.remaining();
                self.audit(
                    "emergency_resume",
                    "assignment.order_resent",
                    format!(
                        "{t}: order {} never reached the broker (lost as the connection dropped); {left} sent again",
                        u.order_id
                    ),
                )
                .await;
            }
            OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::ApiCancelled => {
                o.state = EmergencyOrderState::Failed {
                    reason: format!(
                        "{:?} after {} filled{}",
                        u.status,
                        u.filled,
                        u.reason
                            .as_ref()
                            .map(|r| format!(": {r:?}"))
                            .unwrap_or_default()
                    ),
                }
            }
            _ => return,
        }
        self.save(ci).await;
        self.advance(ci).await;
    }

    /// Ends the close when nothing more can go out: Completed when every step filled, Failed
    /// when a step failed and everything not depending on it is done.
    async fn settle(&mut self, ci: usize) {
        let Some(c) = self.closes.get(ci) else { return };
        if !c.unfinished() {
            return;
        }
        // Waiting steps behind a failed one can never go out.
        let n = c.orders.len();
        let mut blocked: Vec<bool> = c
            .orders
            .iter()
            .map(|o| matches!(o.state, EmergencyOrderState::Failed { .. }))
            .collect();
        for _ in 0..n {
            for i in 0..n {
                if !blocked[i]
                    && c.orders[i].state == EmergencyOrderState::Waiting
                    && c.orders[i]
                        .planned
                        .after
                        .iter()
                        .any(|j| blocked.get(*j).copied().unwrap_or(true))
                {
                    blocked[i] = true;
                }
            }
        }
        let live = c.orders.iter().enumerate().any(|(i, o)| match o.state {
            EmergencyOrderState::Sent
            | EmergencyOrderState::Submitting
            | EmergencyOrderState::Deferred => true,
            EmergencyOrderState::Waiting => !blocked[i],
            _ => false,
        });
        if live {
            return;
        }
        let all_filled = c
            .orders
            .iter()
            .all(|o| o.state == EmergencyOrderState::Filled);
        if all_filled {
            self.verify(ci).await;
        } else {
            let label = self.strategy_label(c.strategy);
            let summary = close_report(c);
            self.closes[ci].phase = ClosePhase::Failed;
            self.save(ci).await;
            self.tell(
                Severity::Critical,
                "assignment.close_failed",
                format!("Emergency close of {label} FAILED — act now"),
                summary,
            )
            .await;
        }
    }

    /// Every step of close `ci` filled: complete once the broker's positions show what the
    /// plan leaves ([`EmergencyClose::expected`]); re-checked every [`VERIFY_EVERY`] until
    /// [`VERIFY_FOR`] has passed, then a Critical alert naming what the account still holds
    /// (a person decides: no order is sent on a difference).
    async fn verify(&mut self, ci: usize) {
        let now = self.clock.now();
        let Some(c) = self.closes.get_mut(ci).filter(|c| c.unfinished()) else {
            return;
        };
        let since = *c.verifying_since.get_or_insert(now);
        let account = c.account.clone();
        let expected = c.expected.clone();
        let diffs: Result<Vec<String>, String> = match self.broker.positions().await {
            Ok(ps) => Ok(expected
                .iter()
                .filter_map(|(id, want)| {
                    let p = ps
                        .iter()
                        .find(|p| p.account == account && p.instrument.id() == *id);
                    let has = p.map_or(0, |p| p.qty);
                    (has != *want).then(|| {
                        let name = p.map_or_else(|| id.to_string(), |p| short_name(&p.instrument));
                        format!("{name} {has} (expected {want})")
                    })
                })
                .collect()),
            Err(e) => Err(format!("positions not available: {e}")),
        };
        if diffs.as_ref().is_ok_and(|d| d.is_empty()) {
            self.complete(ci).await;
            return;
        }
        if now.duration_since(since) < VERIFY_FOR {
            return;
        }
        let why = match diffs {
            Ok(d) => format!("the account still holds {}", d.join(", ")),
            Err(e) => e,
        };
        let label = self.strategy_label(self.closes[ci].strategy);
        self.closes[ci].phase = ClosePhase::Failed;
        self.save(ci).await;
        let title = format!("Emergency close of {label} NOT CONFIRMED — check the account");
        let body = format!(
            "every order filled, but {why}. No further order is sent: close what remains by hand."
        );
        self.tell(
            Severity::Critical,
            "assignment.close_unconfirmed",
            title,
            body,
        )
        .await;
    }

    /// Close `ci` is complete: every step filled and the account shows it.
    async fn complete(&mut self, ci: usize) {
        let c = &self.closes[ci];
        let sid = c.strategy;
        let what = if c.intended {
            format!(
                "Sale of the shares delivered to {}",
                self.strategy_label(sid)
            )
        } else {
            format!("Emergency close of {}", self.strategy_label(sid))
        };
        let summary = close_report(c);
        self.closes[ci].phase = ClosePhase::Completed;
        if self.closes[ci].kept.is_empty()
            && !self.closes[ci].intended
            && let Some(s) = self.strategies.iter_mut().find(|s| s.id == sid)
            && let Err(e) = s.mark_closed()
        {
            tracing::warn!(code = e.code(), "strategy {sid}: {e}");
        }
        self.save(ci).await;
        self.tell(
            Severity::Warning,
            "assignment.close_completed",
            format!("{what} completed"),
            format!("confirmed by the account's positions: {summary}"),
        )
        .await;
    }

    // ----- task ---------------------------------------------------------------------------

    /// Runs the guard on its own task: broker events, timers and handle commands.
    pub fn spawn(mut self, mut events: EventStream) -> GuardHandle {
        let (status_tx, status_rx) = watch::channel(self.status());
        let (tx, mut rx) = mpsc::channel::<Command>(64);
        let bus = self.events.clone();
        let clock = self.clock.clone();
        let (beat_tx, beat_rx) = watch::channel(LoopBeat::now(clock.as_ref()));
        let task = tokio::spawn(async move {
            let mut open = true;
            loop {
                beat_tx.send_replace(LoopBeat::now(self.clock.as_ref()));
                let wait = self
                    .next_deadline()
                    .map(|d| d.duration_since(self.clock.now()))
                    .unwrap_or(LOOP_BEAT)
                    .min(LOOP_BEAT);
                tokio::select! {
                    biased;
                    c = rx.recv() => match c {
                        Some(Command::Acknowledge(id, r)) => { let _ = r.send(self.acknowledge(id)); }
                        Some(Command::SetStrategies(s, r)) => { self.set_strategies(s); let _ = r.send(()); }
                        Some(Command::Marked(e, m, r)) => { self.on_marked_execution(&e, m).await; let _ = r.send(()); }
                        Some(Command::Reconciled(p, r)) => { self.on_reconcile(&p).await; let _ = r.send(()); }
                        Some(Command::Choose(sid, c, r)) => { let _ = r.send(self.choose(sid, c).await); }
                        None => return,
                    },
                    ev = events.next(), if open => match ev {
                        Some(e) => self.on_event(&e).await,
                        None => {
                            open = false;
                            self.alert(Severity::Critical, "assignment.events_closed", "broker event stream ended: assignment detection stopped".into()).await;
                        }
                    },
                    _ = tokio::time::sleep(wait) => self.on_timer().await,
                }
                status_tx.send_if_modified(|s| {
                    if self.status_is(s) {
                        false
                    } else {
                        *s = self.status();
                        true
                    }
                });
            }
        });
        GuardHandle {
            tx,
            status: status_rx,
            events: bus,
            clock,
            task: Arc::new(task),
            beat: beat_rx,
        }
    }
}

/// What the coordinator did with an emergency step's group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupOrder {
    /// Held (a managed stop's cancel is in flight): no order yet.
    Held,
    /// Its order is at the broker for `qty` (less than the step's remainder when the
    /// coordinator cut it because another exit closes the rest).
    Sent { order: OrderId, qty: i64 },
    /// Cut to nothing: another exit closes all of it (Completed, no order).
    Covered { reason: String },
    /// Ended without an order for any other reason.
    Ended { reason: String },
}

/// What became of coordinator group `gid` (a step's group has one leg): held, sent (its first
/// leg's order and quantity), cut to nothing, or ended without an order / unknown.
fn group_order(snap: &EngineSnapshot, gid: GroupId) -> GroupOrder {
    let g = snap.groups.iter().find(|g| g.id == gid);
    let leg = g.and_then(|g| g.legs.first());
    match (g, leg.and_then(|l| l.order_id.map(|id| (id, l.intent.qty)))) {
        (_, Some((order, qty))) => GroupOrder::Sent { order, qty },
        (Some(g), None) if !g.phase.is_terminal() => GroupOrder::Held,
        (Some(g), None)
            if g.phase == GroupPhase::Completed
                && g.legs.iter().all(|l| l.state == LegState::Cancelled) =>
        {
            GroupOrder::Covered {
                reason: g
                    .reason
                    .clone()
                    .unwrap_or_else(|| "another exit closes it".into()),
            }
        }
        (g, None) => GroupOrder::Ended {
            reason: format!(
                "group {gid} ended without an order: {}",
                g.and_then(|g| g.reason.clone())
                    .unwrap_or_else(|| "not known to the coordinator".to_owned())
            ),
        },
    }
}

/// "in 52 s", "in 14 min", "in 2 h 05 min": the countdown a person reads.
pub fn time_left(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("in {s} s")
    } else if s < 3600 {
        format!("in {} min", s.div_ceil(60))
    } else {
        let m = s.div_ceil(60);
        format!("in {} h {:02} min", m / 60, m % 60)
    }
}

/// What an assignment or exercise did to the stock, in a trader's words: "100 SPY delivered
/// at 440", "100 SPY called away at 445", "100 SPY bought at 445 (exercise)", "cash-settled".
fn moved_words(d: &Detection) -> String {
    let n = d.stock_delivered.abs();
    let sym = d.option.underlying();
    let at = d
        .option
        .as_option()
        .map(|o| format!(" at {}", super::record::strike_text(o.strike)))
        .unwrap_or_default();
    match (d.kind, d.stock_delivered.signum()) {
        (_, 0) if d.kind == DetectionKind::Unexplained => "nothing delivered".to_owned(),
        (_, 0) => "no stock moved (cash-settled)".to_owned(),
        (DetectionKind::Assigned, 1) => format!("{n} {sym} delivered{at}"),
        (DetectionKind::Assigned, _) => format!("{n} {sym} called away{at}"),
        (_, 1) => format!("{n} {sym} bought{at} (exercise)"),
        _ => format!("{n} {sym} sold{at} (exercise)"),
    }
}

fn order_text(o: &EmergencyOrder) -> String {
    let p = &o.planned;
    let verb = match (p.side, p.instrument.as_option().is_some()) {
        (tradeguard_model::Side::Buy, true) => "buy to close",
        (tradeguard_model::Side::Sell, true) => "sell to close",
        (tradeguard_model::Side::Buy, false) => "buy",
        (tradeguard_model::Side::Sell, false) => "sell",
    };
    if p.instrument.as_option().is_some() {
        format!("{verb} {} ×{}", short_name(&p.instrument), p.qty)
    } else {
        format!("{verb} {} {}", p.qty, short_name(&p.instrument))
    }
}

fn fill_of(e: &Execution) -> EmergencyFill {
    EmergencyFill {
        order_id: e.order_id,
        exec_id: e.exec_id.clone(),
        qty: e.qty,
        price: e.price,
        ts: e.ts,
    }
}

/// Ends the current attempt of `o` (its order is done at the broker): filled in full, the step
/// is Filled; otherwise the remainder waits to be sent as a new attempt.
fn retire_attempt(o: &mut EmergencyOrder) {
    if let Some(id) = o.order_id.take() {
        o.previous_orders.push(id);
    }
    o.group = None;
    o.state = if o.remaining() == 0 {
        EmergencyOrderState::Filled
    } else {
        EmergencyOrderState::Waiting
    };
}

/// Every step of a close with its fills, for a person.
fn close_report(c: &EmergencyClose) -> String {
    c.orders
        .iter()
        .map(order_report)
        .collect::<Vec<_>>()
        .join("; ")
}

/// "assigned", "exercised", or what a missing leg is.
fn verb_of(kind: DetectionKind) -> &'static str {
    match kind {
        DetectionKind::Assigned => "assigned",
        DetectionKind::Exercised => "exercised",
        _ => "gone with no execution and nothing delivered",
    }
}

fn order_report(o: &EmergencyOrder) -> String {
    let fills = if o.fills.is_empty() {
        "no fills".to_owned()
    } else {
        o.fills
            .iter()
            .map(|f| format!("{} @ {}", f.qty, f.price))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let state = match &o.state {
        EmergencyOrderState::Failed { reason } => format!("FAILED ({reason})"),
        s => format!("{s:?}"),
    };
    let covered = if o.covered > 0 {
        format!(", {} closed by another exit", o.covered)
    } else {
        String::new()
    };
    format!(
        "{}{} {state}, {fills}{covered}",
        order_text(o),
        o.order_id
            .map(|i| format!(" [order {i}]"))
            .unwrap_or_default()
    )
}

/// Handle to a running guard.
#[derive(Clone)]
pub struct GuardHandle {
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<GuardStatus>,
    events: broadcast::Sender<GuardEvent>,
    clock: Arc<dyn Clock>,
    task: Arc<JoinHandle<()>>,
    beat: watch::Receiver<LoopBeat>,
}

/// When the guard's loop last ran: on its clock (shown) and in tokio time (judged: the loop
/// runs on tokio timers, and the simulator's clock may run faster than they do).
#[derive(Debug, Clone, Copy)]
struct LoopBeat {
    at: Timestamp,
    instant: tokio::time::Instant,
}

impl LoopBeat {
    fn now(clock: &dyn Clock) -> Self {
        Self {
            at: clock.now(),
            instant: tokio::time::Instant::now(),
        }
    }
}

impl GuardHandle {
    /// `true` once the guard's task has ended (a panic, an abort): nothing detects anymore.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// When the guard's loop last ran (it runs at least every [`LOOP_BEAT`]).
    pub fn last_beat(&self) -> Timestamp {
        self.beat.borrow().at
    }

    /// Tokio (wall) time since the guard's loop last ran: what a watchdog judges, whatever
    /// the speed of the guard's clock.
    pub fn since_last_beat(&self) -> Duration {
        self.beat.borrow().instant.elapsed()
    }

    /// The latest status.
    pub fn status(&self) -> GuardStatus {
        self.status.borrow().clone()
    }

    /// Time left until the earliest armed emergency close goes out.
    pub fn countdown(&self) -> Option<Duration> {
        self.status.borrow().countdown(self.clock.now())
    }

    /// Guard events (alerts, banners) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<GuardEvent> {
        self.events.subscribe()
    }

    /// A watch on the status (UI).
    pub fn watch(&self) -> watch::Receiver<GuardStatus> {
        self.status.clone()
    }

    /// Acknowledges a banner; `false` if unknown.
    pub async fn acknowledge(&self, id: u64) -> Result<bool, AssignmentError> {
        self.ask(|r| Command::Acknowledge(id, r)).await
    }

    /// Sends `cmd` to the guard task and waits for its answer.
    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, AssignmentError> {
        let (r, rx) = oneshot::channel();
        self.tx
            .send(cmd(r))
            .await
            .map_err(|_| AssignmentError::Stopped)?;
        rx.await.map_err(|_| AssignmentError::Stopped)
    }

    /// Records a person's assignment choice for a strategy ([`AssignmentGuard::choose`]).
    pub async fn choose(
        &self,
        strategy: StrategyId,
        choice: StrategyChoice,
    ) -> Result<(), AssignmentError> {
        self.ask(|r| Command::Choose(strategy, choice, r)).await?
    }

    /// Replaces the guarded strategies.
    pub async fn set_strategies(&self, s: Vec<Strategy>) -> Result<(), AssignmentError> {
        self.ask(|r| Command::SetStrategies(s, r)).await
    }

    /// Feeds an execution the broker marked as exercise / assignment / expiry.
    pub async fn marked_execution(
        &self,
        e: Execution,
        m: ExecutionMarker,
    ) -> Result<(), AssignmentError> {
        self.ask(|r| Command::Marked(e, m, r)).await
    }

    /// Feeds a reconciliation's broker positions ([`AssignmentGuard::on_reconcile`]).
    pub async fn reconciled(&self, positions: Vec<Position>) -> Result<(), AssignmentError> {
        self.ask(|r| Command::Reconciled(positions, r)).await
    }

    /// Stops the guard task.
    pub fn abort(&self) {
        self.task.abort();
    }
}
