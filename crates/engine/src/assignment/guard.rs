//! [`AssignmentGuard`]: turns detections into the response — record, lock, emergency close,
//! alerts — and owns the state of each emergency close. [`AssignmentGuard::start`] loads the
//! journal, compares the last known positions with the broker's snapshot and spawns the guard
//! task; the returned [`GuardHandle`] exposes its status (records, closes with their
//! countdown, banners) and events.
//!
//! Response to an assignment/exercise of a strategy leg:
//! 1. [`AssignmentRecord`] journaled and audited;
//! 2. the strategy is marked Broken through the coordinator (journaled; the gate now refuses
//!    every non-emergency order for it with `gate.strategy_broken`);
//! 3. the close plan ([`super::plan`]) is sent through the coordinator's Emergency path, each
//!    order only after the fills it depends on — or armed for the open when the market is
//!    closed;
//! 4. a critical alert, a notification and a banner (until acknowledged); completion or
//!    failure of the close raises its own alert with the orders and fills.

use super::config::AssignmentConfig;
use super::detect::Detector;
use super::error::AssignmentError;
use super::expiry::{self, ExpiryRisk, ExpiryRiskKind};
use super::hours::MarketHours;
use super::notify::{Notification, Notifier};
use super::plan::{self, KeptPosition, PlannedOrder};
use super::record::{AssignmentRecord, Detection, DetectionKind, ExecutionMarker, short_name};
use crate::alert::{Alert, AuditEntry, Severity};
use crate::coordinator::ExecutionCoordinator;
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
    AccountId, BrokenReason, Broker, BrokerEvent, Clock, ConnectionState, EventStream, Execution,
    GroupId, Instrument, OrderId, OrderStatus, OrderType, OrderUpdate, Price, Strategy, StrategyId,
    StrategyState, Timestamp,
};

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
    /// Waiting for the fills it depends on (or for the open).
    Waiting,
    /// Handed to the coordinator.
    Sent,
    /// Completely filled.
    Filled,
    /// Refused, rejected or cancelled.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One order of an emergency close with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyOrder {
    /// The planned order.
    pub planned: PlannedOrder,
    /// Progress.
    pub state: EmergencyOrderState,
    /// Coordinator group.
    pub group: Option<GroupId>,
    /// Broker order id.
    pub order_id: Option<OrderId>,
    /// When it was sent.
    pub sent_at: Option<Timestamp>,
    /// Fills: (quantity, price).
    pub fills: Vec<(i64, Price)>,
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
    /// When the orders (were or will be) released.
    pub release_at: Timestamp,
    /// Phase.
    pub phase: ClosePhase,
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
}

impl GuardStatus {
    /// Time left until the earliest armed close is released, if any.
    pub fn countdown(&self, now: Timestamp) -> Option<Duration> {
        self.closes
            .iter()
            .filter(|c| c.phase == ClosePhase::Armed)
            .map(|c| c.release_at.duration_since(now))
            .min()
    }
}

enum Command {
    Acknowledge(u64, oneshot::Sender<bool>),
    SetStrategies(Vec<Strategy>, oneshot::Sender<()>),
    Marked(Execution, ExecutionMarker, oneshot::Sender<()>),
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
    events: broadcast::Sender<GuardEvent>,
}

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
        Ok(Self {
            coordinator: deps.coordinator,
            broker: deps.broker,
            journal: deps.journal,
            clock: deps.clock,
            hours: deps.hours,
            notifier: deps.notifier,
            cfg: deps.config,
            detector,
            strategies: deps.strategies,
            records: st.assignments,
            closes: Vec::new(),
            banners: Vec::new(),
            expiry_risks: Vec::new(),
            expiry_warned: BTreeSet::new(),
            // Quotes get a moment to arrive before the first check.
            next_expiry_check: now.plus(first_check),
            spots: BTreeMap::new(),
            reconnecting: false,
            had_known: st.known_positions.is_some(),
            events,
        })
    }

    /// Subscribes to the broker, compares its snapshot with the last known positions (an
    /// assignment while the app was closed is handled now) and spawns the guard task.
    pub async fn start(deps: GuardDeps) -> Result<GuardHandle, AssignmentError> {
        let mut g = Self::new(deps).await?;
        let events = g.broker.events();
        g.check_snapshot().await?;
        Ok(g.spawn(events))
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
        }
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
        let mut next = s;
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
        let armed = self
            .closes
            .iter()
            .filter(|c| c.phase == ClosePhase::Armed)
            .map(|c| c.release_at);
        [self.detector.next_deadline(), Some(self.next_expiry_check)]
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
                self.detector.on_execution(e, now);
                self.persist_known().await;
                self.on_fill(e).await;
            }
            BrokerEvent::OrderStatus(u) => self.on_status(u).await,
            BrokerEvent::Quote(q) => {
                let px = match &q.instrument {
                    Instrument::Stock { symbol } if q.bid.is_positive() => {
                        Some((symbol.clone(), q.mid()))
                    }
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

    /// Resolves detection windows, releases armed closes, runs the expiry-day check.
    pub async fn on_timer(&mut self) {
        let now = self.clock.now();
        let ds = self.detector.poll(now);
        for d in ds {
            self.handle(d).await;
        }
        let due: Vec<usize> = (0..self.closes.len())
            .filter(|i| {
                self.closes[*i].phase == ClosePhase::Armed && now >= self.closes[*i].release_at
            })
            .collect();
        for i in due {
            self.closes[i].phase = ClosePhase::Working;
            self.audit(
                "emergency_release",
                "assignment.close_released",
                format!(
                    "strategy {}: armed emergency close released",
                    self.closes[i].strategy
                ),
            )
            .await;
            self.advance(i).await;
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
                    "EXPIRY RISK: strategy {} short {} ×{} is {:?} (spot {spot}) with {left} min to the close: close or roll it to avoid assignment",
                    r.strategy,
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

    async fn respond(&mut self, d: Detection) {
        let now = self.clock.now();
        let what = format!("{} ×{}", short_name(&d.option), d.contracts);
        let oid = d.option.id();
        let want_short = d.kind == DetectionKind::Assigned;
        let found = self.strategies.iter().enumerate().find_map(|(si, s)| {
            if s.account != d.account || s.state == StrategyState::Closed {
                return None;
            }
            s.legs
                .iter()
                .position(|l| l.instrument.id() == oid && (l.qty < 0) == want_short)
                .map(|li| (si, li))
        });
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
        let verb = if want_short { "assigned" } else { "exercised" };
        let delivered = if d.stock_delivered != 0 {
            format!("{} {} shares", d.stock_delivered, d.option.underlying())
        } else {
            "no stock".to_owned()
        };
        self.audit(
            "detected",
            if want_short {
                "assignment.assigned"
            } else {
                "assignment.exercised"
            },
            format!(
                "{what} {verb} ({:?}); {delivered}; strategy {}",
                d.source,
                record
                    .strategy
                    .map_or_else(|| "none".to_owned(), |s| s.to_string())
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
        // Lock.
        let reason = if want_short {
            BrokenReason::Assigned {
                instrument: oid.clone(),
            }
        } else {
            BrokenReason::Exercised {
                instrument: oid.clone(),
            }
        };
        if self.strategies[si].state != StrategyState::Broken {
            if let Err(e) = self.coordinator.mark_broken(sid, &reason).await {
                self.alert(
                    Severity::Critical,
                    "assignment.lock_failed",
                    format!("strategy {sid}: could not mark Broken: {e} ({})", e.code()),
                )
                .await;
            }
            if let Err(e) = self.strategies[si].mark_broken(reason.clone()) {
                tracing::warn!(code = e.code(), "strategy {sid}: {e}");
            }
        }
        // Close.
        if let Some(c) = self
            .closes
            .iter()
            .find(|c| c.strategy == sid && c.phase != ClosePhase::Armed)
        {
            let phase = c.phase;
            self.announce(
                &record,
                format!("{what} {verb} — strategy {sid} emergency close already {phase:?}"),
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
            self.cfg.close_stock,
        );
        let release_at = self.hours.release_time(now, self.cfg.arm_at);
        let armed = release_at > now;
        self.closes.push(EmergencyClose {
            strategy: sid,
            account: d.account.clone(),
            record: record.id,
            orders: p
                .orders
                .into_iter()
                .map(|planned| EmergencyOrder {
                    planned,
                    state: EmergencyOrderState::Waiting,
                    group: None,
                    order_id: None,
                    sent_at: None,
                    fills: Vec::new(),
                })
                .collect(),
            kept: p.kept,
            release_at,
            phase: if armed {
                ClosePhase::Armed
            } else {
                ClosePhase::Working
            },
        });
        let ci = self.closes.len() - 1;
        let plan_text = self.closes[ci]
            .orders
            .iter()
            .map(order_text)
            .collect::<Vec<_>>()
            .join("; ");
        let when = if armed {
            let mins = release_at.duration_since(now).as_secs() / 60;
            format!(
                "emergency close armed for the open (in {}h {:02}m)",
                mins / 60,
                mins % 60
            )
        } else {
            "emergency close sent".to_owned()
        };
        let title = format!(
            "{}: {what} {verb} — {}",
            if want_short { "ASSIGNMENT" } else { "EXERCISE" },
            if armed {
                "emergency close armed for the open"
            } else {
                "emergency close sent"
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
            "Strategy {sid} is Broken ({}); {delivered} delivered; {when}: {plan_text}.{kept}",
            reason.code()
        );
        self.announce(&record, title, body).await;
        if !armed {
            self.advance(ci).await;
        }
    }

    async fn announce(&mut self, record: &AssignmentRecord, title: String, body: String) {
        let code = match record.kind {
            DetectionKind::Exercised => "assignment.exercise_detected",
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

    // ----- emergency close ----------------------------------------------------------------

    /// Sends every Waiting order whose dependencies filled; settles the close when nothing
    /// more can happen.
    async fn advance(&mut self, ci: usize) {
        loop {
            let Some(c) = self.closes.get(ci) else { return };
            if c.phase != ClosePhase::Working {
                return;
            }
            let ready: Vec<usize> = (0..c.orders.len())
                .filter(|i| {
                    c.orders[*i].state == EmergencyOrderState::Waiting
                        && c.orders[*i].planned.after.iter().all(|j| {
                            c.orders
                                .get(*j)
                                .is_some_and(|o| o.state == EmergencyOrderState::Filled)
                        })
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            for oi in ready {
                self.send(ci, oi).await;
            }
        }
        self.settle(ci).await;
    }

    async fn send(&mut self, ci: usize, oi: usize) {
        let Some(c) = self.closes.get(ci) else { return };
        let (sid, account, o) = (c.strategy, c.account.clone(), c.orders[oi].planned.clone());
        let intent = OrderIntent::new(Purpose::Emergency, account)
            .for_strategy(sid)
            .leg(o.instrument.clone(), o.side, o.qty, OrderType::Market);
        let now = self.clock.now();
        let result = match self.coordinator.submit(intent).await {
            Ok(gid) => match self.coordinator.snapshot().await {
                Ok(snap) => {
                    let g = snap.groups.iter().find(|g| g.id == gid);
                    match g.and_then(|g| g.legs.first()).and_then(|l| l.order_id) {
                        Some(id) => Ok((gid, id)),
                        None => Err(format!(
                            "group {gid} ended without an order: {}",
                            g.and_then(|g| g.reason.clone()).unwrap_or_default()
                        )),
                    }
                }
                Err(e) => Err(format!("{e} ({})", e.code())),
            },
            Err(e) => Err(format!("{e} ({})", e.code())),
        };
        let Some(eo) = self.closes.get_mut(ci).and_then(|c| c.orders.get_mut(oi)) else {
            return;
        };
        eo.sent_at = Some(now);
        match result {
            Ok((gid, id)) => {
                eo.group = Some(gid);
                eo.order_id = Some(id);
                eo.state = EmergencyOrderState::Sent;
                let t = order_text(eo);
                self.audit(
                    "emergency_order",
                    "assignment.order_sent",
                    format!("strategy {sid}: {t} (order {id})"),
                )
                .await;
            }
            Err(reason) => {
                eo.state = EmergencyOrderState::Failed { reason };
            }
        }
    }

    fn find_order(&self, id: OrderId) -> Option<(usize, usize)> {
        self.closes.iter().enumerate().find_map(|(ci, c)| {
            c.orders
                .iter()
                .position(|o| o.order_id == Some(id))
                .map(|oi| (ci, oi))
        })
    }

    async fn on_fill(&mut self, e: &Execution) {
        let Some((ci, oi)) = e.order_id.and_then(|id| self.find_order(id)) else {
            return;
        };
        let o = &mut self.closes[ci].orders[oi];
        o.fills.push((e.qty, e.price));
        if o.fills.iter().map(|f| f.0).sum::<i64>() >= o.planned.qty
            && o.state == EmergencyOrderState::Sent
        {
            o.state = EmergencyOrderState::Filled;
            self.advance(ci).await;
        }
    }

    async fn on_status(&mut self, u: &OrderUpdate) {
        let Some((ci, oi)) = self.find_order(u.order_id) else {
            return;
        };
        let o = &mut self.closes[ci].orders[oi];
        if o.state != EmergencyOrderState::Sent {
            return;
        }
        match u.status {
            OrderStatus::Filled => o.state = EmergencyOrderState::Filled,
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
        self.advance(ci).await;
    }

    async fn settle(&mut self, ci: usize) {
        let Some(c) = self.closes.get(ci) else { return };
        if c.phase != ClosePhase::Working
            || c.orders
                .iter()
                .any(|o| o.state == EmergencyOrderState::Sent)
        {
            return;
        }
        let all_filled = c
            .orders
            .iter()
            .all(|o| o.state == EmergencyOrderState::Filled);
        let sid = c.strategy;
        let summary = c
            .orders
            .iter()
            .map(order_report)
            .collect::<Vec<_>>()
            .join("; ");
        if all_filled {
            self.closes[ci].phase = ClosePhase::Completed;
            if self.closes[ci].kept.is_empty()
                && let Some(s) = self.strategies.iter_mut().find(|s| s.id == sid)
                && let Err(e) = s.mark_closed()
            {
                tracing::warn!(code = e.code(), "strategy {sid}: {e}");
            }
            let msg = format!("Emergency close of strategy {sid} completed: {summary}");
            self.alert(Severity::Warning, "assignment.close_completed", msg.clone())
                .await;
            self.notifier.notify(&Notification {
                title: format!("Emergency close of strategy {sid} completed"),
                body: summary,
                severity: Severity::Warning,
            });
        } else {
            self.closes[ci].phase = ClosePhase::Failed;
            let msg = format!("Emergency close of strategy {sid} FAILED — act now: {summary}");
            self.alert(Severity::Critical, "assignment.close_failed", msg)
                .await;
            self.notifier.notify(&Notification {
                title: format!("Emergency close of strategy {sid} FAILED — act now"),
                body: summary,
                severity: Severity::Critical,
            });
        }
    }

    // ----- task ---------------------------------------------------------------------------

    /// Runs the guard on its own task: broker events, timers and handle commands.
    pub fn spawn(mut self, mut events: EventStream) -> GuardHandle {
        let (status_tx, status_rx) = watch::channel(self.status());
        let (tx, mut rx) = mpsc::channel::<Command>(64);
        let bus = self.events.clone();
        let clock = self.clock.clone();
        let task = tokio::spawn(async move {
            let mut open = true;
            loop {
                let wait = self
                    .next_deadline()
                    .map(|d| d.duration_since(self.clock.now()))
                    .unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    biased;
                    c = rx.recv() => match c {
                        Some(Command::Acknowledge(id, r)) => { let _ = r.send(self.acknowledge(id)); }
                        Some(Command::SetStrategies(s, r)) => { self.set_strategies(s); let _ = r.send(()); }
                        Some(Command::Marked(e, m, r)) => { self.on_marked_execution(&e, m).await; let _ = r.send(()); }
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
                    let new = self.status();
                    if *s == new {
                        false
                    } else {
                        *s = new;
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
        }
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

fn order_report(o: &EmergencyOrder) -> String {
    let fills = if o.fills.is_empty() {
        "no fills".to_owned()
    } else {
        o.fills
            .iter()
            .map(|(q, p)| format!("{q} @ {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let state = match &o.state {
        EmergencyOrderState::Failed { reason } => format!("FAILED ({reason})"),
        s => format!("{s:?}"),
    };
    format!(
        "{}{} {state}, {fills}",
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
}

impl GuardHandle {
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
        let (r, rx) = oneshot::channel();
        self.tx
            .send(Command::Acknowledge(id, r))
            .await
            .map_err(|_| AssignmentError::Stopped)?;
        rx.await.map_err(|_| AssignmentError::Stopped)
    }

    /// Replaces the guarded strategies.
    pub async fn set_strategies(&self, s: Vec<Strategy>) -> Result<(), AssignmentError> {
        let (r, rx) = oneshot::channel();
        self.tx
            .send(Command::SetStrategies(s, r))
            .await
            .map_err(|_| AssignmentError::Stopped)?;
        rx.await.map_err(|_| AssignmentError::Stopped)
    }

    /// Feeds an execution the broker marked as exercise / assignment / expiry.
    pub async fn marked_execution(
        &self,
        e: Execution,
        m: ExecutionMarker,
    ) -> Result<(), AssignmentError> {
        let (r, rx) = oneshot::channel();
        self.tx
            .send(Command::Marked(e, m, r))
            .await
            .map_err(|_| AssignmentError::Stopped)?;
        rx.await.map_err(|_| AssignmentError::Stopped)
    }

    /// Stops the guard task.
    pub fn abort(&self) {
        self.task.abort();
    }
}
