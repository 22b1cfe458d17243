//! The engine task: ONE tokio task owns all mutable execution state (groups, legs, stops, the
//! hedge manager, the order-id allocator, the book) and processes, in order, commands from
//! [`crate::ExecutionCoordinator`] handles, broker events and its own deadlines (leg time-outs,
//! stop time-outs, hedge debounce, exposure checks). No locks around domain state.
//!
//! Write-ahead rule: every state transition is appended to the [`Journal`] before the broker
//! call that follows it; if the journal write fails, the call is not made.

use crate::alert::{Alert, AuditEntry, Severity};
use crate::book::{Book, ExposureKey};
use crate::config::EngineConfig;
use crate::error::{ExecError, GateRefusal, JournalError};
use crate::gate::{GateContext, PreTradeGate, TradingState, TradingStatus};
use crate::group::{Group, GroupPhase, LegState, TierOutcome};
use crate::hedge::HedgeManager;
use crate::intent::{OrderIntent, Purpose};
use crate::journal::{Journal, JournalRecord};
use crate::risk::RiskModel;
use crate::stop::{StopAction, StopLoss, StopSpec, StopState, limit_price};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tradeguard_model::{
    AccountId, Broker, BrokerError, BrokerEvent, Clock, ComboLeg, ComboOrder, EventStream, ExecId,
    Execution, GroupId, InstrumentId, Money, Notice, OrderId, OrderRequest, OrderType, OrderUpdate,
    Position, Side, StrategyId, Tif, Timestamp,
};

/// Finished groups kept in memory for snapshots.
const HISTORY: usize = 1000;

/// Commands from handles.
/// How long instruments locked as a strategy was marked Broken stay locked without the
/// strategy book's push showing it Broken (it pushes every second).
const BREAK_LOCK_HANDOFF: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) enum Command {
    Submit(OrderIntent, oneshot::Sender<Result<GroupId, ExecError>>),
    PlaceStop(StopSpec, oneshot::Sender<Result<u64, ExecError>>),
    SetTradingState(TradingChange, oneshot::Sender<Result<bool, ExecError>>),
    SetBroken(
        StrategyId,
        Option<String>,
        Vec<InstrumentId>,
        oneshot::Sender<Result<(), ExecError>>,
    ),
    SetBrokenLegs(BTreeMap<InstrumentId, StrategyId>, oneshot::Sender<()>),
    Snapshot(oneshot::Sender<EngineSnapshot>),
    SetForcedUnwind(AccountId, bool, oneshot::Sender<Result<(), ExecError>>),
    ReconcilePositions(
        Vec<Position>,
        Timestamp,
        oneshot::Sender<Vec<PositionRepair>>,
    ),
    Check(OrderIntent, oneshot::Sender<Result<IntentCheck, ExecError>>),
}

/// A change of the trading state asked of the engine.
#[derive(Debug, Clone)]
pub(crate) struct TradingChange {
    pub to: TradingState,
    /// For the audit log and the status.
    pub why: String,
    /// Only towards a stricter state (a lock never loosens a stricter one).
    pub only_stricter: bool,
}

/// What the coordinator would do with an intent now, nothing sent and no throttle token taken
/// ([`crate::ExecutionCoordinator::check`]): the gate's verdict on the whole intent and on
/// each leg alone, and the child orders each leg would be sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentCheck {
    /// The gate's refusal of the whole intent submitted now; `None` when it would pass.
    pub refusal: Option<GateRefusal>,
    /// Per intent leg, in intent order.
    pub legs: Vec<LegCheck>,
    /// The group would go out as one native combo order.
    pub native_combo: bool,
    /// The legged send order: tiers of intent leg indices, protective first (one tier of every
    /// leg for a native combo).
    pub tiers: Vec<Vec<usize>>,
    /// The stress figures of book + intent, whether or not they pass: the worst case, the
    /// line it is held to and the funds behind it. `Err`: why they cannot be computed (a
    /// missing quote, no account yet) — the gate refuses an opening order for the same reason.
    pub stress: Result<StressFigures, GateRefusal>,
    /// How long each sent leg may work before it is cancelled and the group rolled back.
    pub leg_timeout: std::time::Duration,
    /// The naked exposure the group leaves while it legs in is hedged (else only alerted).
    pub hedge_enabled: bool,
}

/// The worst case of book + an intent against the gate's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StressFigures {
    /// Worst-case loss and where it happens.
    pub worst: crate::risk::WorstCase,
    /// `pct` % of the available funds.
    pub limit: Money,
    /// The gate's percentage.
    pub pct: u32,
    /// The account's available funds.
    pub available: Money,
}

/// One leg of an [`IntentCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegCheck {
    /// Quantities of the broker orders the leg is sent as, in send order: one entry when it
    /// goes out whole, several child orders of at most `GateConfig::max_order_qty` when it is
    /// split ([`crate::group::split_qty`]).
    pub child_orders: Vec<i64>,
    /// The gate's refusal of this leg as an order of its own; `None` when it would pass.
    pub refusal: Option<GateRefusal>,
}

/// A book position the engine changed to the broker's quantity during reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionRepair {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Quantity the engine's book had.
    pub local: i64,
    /// Quantity the broker reports (now in the book).
    pub broker: i64,
}

/// Who owns a broker order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Group(GroupId),
    Stop(u64),
}

/// A read-only copy of the engine's state (UI, tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineSnapshot {
    /// Trading state.
    pub trading_state: TradingState,
    /// Every group known this session (terminal ones included).
    pub groups: Vec<Group>,
    /// Every stop known this session.
    pub stops: Vec<StopLoss>,
    /// Book positions.
    pub positions: Vec<(InstrumentId, i64)>,
    /// Naked shorts per key the guard's own groups left and the hedge manager will hedge
    /// (before working hedges; what it may not place is a Critical `hedge.unplaceable`).
    pub unmatched: Vec<(ExposureKey, i64)>,
    /// Hedge contracts sent per key since start.
    pub hedges_sent: Vec<(ExposureKey, i64)>,
    /// Highest order id used.
    pub highest_order_id: Option<OrderId>,
    /// Available funds for the stress check.
    pub available_funds: Option<Money>,
    /// Accounts in forced unwind.
    pub forced_unwind: Vec<AccountId>,
    /// Broken strategies with their reason codes (only emergency exits may trade them).
    pub broken: Vec<(StrategyId, String)>,
    /// Instruments locked for every normal order, with the Broken strategy holding each.
    pub broken_legs: Vec<(InstrumentId, StrategyId)>,
}

/// Everything the engine task owns.
pub(crate) struct Engine {
    pub cfg: EngineConfig,
    pub broker: Arc<dyn Broker>,
    pub journal: Arc<dyn Journal>,
    pub clock: Arc<dyn Clock>,
    pub risk: Box<dyn RiskModel>,
    pub gate: PreTradeGate,
    pub state: TradingState,
    /// Publishes the trading state with why and since when (read by the guard's status).
    pub state_tx: watch::Sender<TradingStatus>,
    pub broken: BTreeMap<StrategyId, String>,
    /// Instruments locked for every normal order: those of the strategy book's Broken
    /// strategies (`link_legs`) and those locked as a strategy was marked Broken
    /// (`break_legs`), until the book's push shows it (see [`Self::relock`]).
    pub broken_legs: BTreeMap<InstrumentId, StrategyId>,
    link_legs: BTreeMap<InstrumentId, StrategyId>,
    break_legs: BTreeMap<StrategyId, (Timestamp, Vec<InstrumentId>)>,
    pub book: Book,
    pub available_funds: Option<Money>,
    pub groups: BTreeMap<GroupId, Group>,
    /// Finished groups, most recent last (bounded by `HISTORY`).
    pub history: BTreeMap<GroupId, Group>,
    owners: HashMap<OrderId, Owner>,
    pub stops: BTreeMap<u64, StopLoss>,
    pub hedge: HedgeManager,
    seen_execs: HashSet<ExecId>,
    pub next_group: u64,
    pub next_stop: u64,
    pub highest_order: Option<OrderId>,
    next_exposure_check: Option<Timestamp>,
    /// A lost-order check that could not ask the broker (its open orders timed out): tried
    /// again at this time (see [`crate::lost`]).
    pub(crate) lost_check_at: Option<Timestamp>,
    /// When a fill or a position event last moved (or confirmed) each instrument's position:
    /// a reconciliation snapshot asked for before that is older than the book.
    touched_at: HashMap<InstrumentId, Timestamp>,
    exposure_alerted: BTreeMap<ExposureKey, i64>,
    /// Orders whose cancel recovery requested; hedging waits for them (bounded).
    pub recovery_cancels: BTreeSet<OrderId>,
    pub recovery_deadline: Option<Timestamp>,
    pub alerts: broadcast::Sender<Alert>,
    /// Account seen in the broker's positions / executions / account values.
    pub account: Option<AccountId>,
    /// Accounts in forced unwind: only reducing orders and emergency exits pass the gate.
    pub forced_unwind: BTreeSet<AccountId>,
    /// Close/Flatten (and Emergency) groups held until earlier exits of the same position ended
    /// ([`crate::exits`]).
    pub(crate) held: BTreeMap<GroupId, crate::exits::Held>,
}

impl Engine {
    pub(crate) fn new(
        cfg: EngineConfig,
        broker: Arc<dyn Broker>,
        journal: Arc<dyn Journal>,
        clock: Arc<dyn Clock>,
        risk: Box<dyn RiskModel>,
        alerts: broadcast::Sender<Alert>,
        state_tx: watch::Sender<TradingStatus>,
    ) -> Self {
        Self {
            state_tx,
            gate: PreTradeGate::new(cfg.gate.clone()),
            hedge: HedgeManager::new(cfg.hedge_debounce, cfg.naked_alert_after),
            cfg,
            broker,
            journal,
            clock,
            risk,
            state: TradingState::Active,
            broken: BTreeMap::new(),
            broken_legs: BTreeMap::new(),
            link_legs: BTreeMap::new(),
            break_legs: BTreeMap::new(),
            book: Book::new(),
            available_funds: None,
            groups: BTreeMap::new(),
            history: BTreeMap::new(),
            owners: HashMap::new(),
            stops: BTreeMap::new(),
            seen_execs: HashSet::new(),
            next_group: 1,
            next_stop: 1,
            highest_order: None,
            next_exposure_check: None,
            lost_check_at: None,
            touched_at: HashMap::new(),
            exposure_alerted: BTreeMap::new(),
            recovery_cancels: BTreeSet::new(),
            recovery_deadline: None,
            alerts,
            account: None,
            forced_unwind: BTreeSet::new(),
            held: BTreeMap::new(),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn own_group(&mut self, order: OrderId, g: GroupId) {
        self.owners.insert(order, Owner::Group(g));
    }

    pub(crate) fn own_stop(&mut self, order: OrderId, s: u64) {
        self.owners.insert(order, Owner::Stop(s));
    }

    // ----- journal, alerts, audit ---------------------------------------------------------

    pub(crate) async fn write(&self, r: JournalRecord) -> Result<(), JournalError> {
        self.journal.append(r).await
    }

    pub(crate) async fn write_group(&self, id: GroupId) -> Result<(), JournalError> {
        match self.groups.get(&id).or_else(|| self.history.get(&id)) {
            Some(g) => self.write(JournalRecord::Group(g.clone())).await,
            None => Ok(()),
        }
    }

    pub(crate) async fn write_stop_pub(&self, id: u64) -> Result<(), JournalError> {
        self.write_stop(id).await
    }

    async fn write_stop(&self, id: u64) -> Result<(), JournalError> {
        match self.stops.get(&id) {
            Some(s) => self.write(JournalRecord::Stop(s.clone())).await,
            None => Ok(()),
        }
    }

    /// Reports a journal write that came after the broker already acted (a settled group, an
    /// audit entry): its failure cannot undo anything, so it is logged and broadcast as a
    /// critical alert — not journaled, the journal is what failed — never dropped. The broker's
    /// state wins at the next start.
    pub(crate) fn report_unjournaled(&self, r: Result<(), JournalError>, what: &str) {
        if let Err(e) = r {
            let message = format!(
                "{what} not journaled ({e}); it is lost if the app stops before the next reconciliation"
            );
            tracing::error!(code = e.code(), "{message}");
            // Err only means no subscriber right now.
            let _ = self.alerts.send(Alert {
                ts: self.now(),
                severity: Severity::Critical,
                code: "journal.write_failed".to_owned(),
                message,
                group: None,
                stop: None,
            });
        }
    }

    pub(crate) async fn raise(
        &self,
        severity: Severity,
        code: &str,
        message: String,
        group: Option<GroupId>,
        stop: Option<u64>,
    ) {
        match severity {
            Severity::Critical => tracing::error!(code, group = ?group, stop = ?stop, "{message}"),
            Severity::Warning => tracing::warn!(code, group = ?group, stop = ?stop, "{message}"),
            Severity::Info => tracing::info!(code, group = ?group, stop = ?stop, "{message}"),
        }
        let a = Alert {
            ts: self.now(),
            severity,
            code: code.to_owned(),
            message,
            group,
            stop,
        };
        if let Err(e) = self.write(JournalRecord::Alert(a.clone())).await {
            tracing::error!(code = e.code(), "alert not journaled: {e}");
        }
        // Err only means no subscriber right now.
        let _ = self.alerts.send(a);
    }

    pub(crate) async fn audit(
        &self,
        decision: &str,
        code: &str,
        reason: String,
        purpose: Option<Purpose>,
        group: Option<GroupId>,
    ) -> Result<(), JournalError> {
        tracing::info!(decision, code, group = ?group, purpose = ?purpose, "{reason}");
        self.write(JournalRecord::Audit(AuditEntry {
            ts: self.now(),
            decision: decision.to_owned(),
            code: code.to_owned(),
            reason,
            purpose,
            group,
        }))
        .await
    }

    // ----- order ids ----------------------------------------------------------------------

    /// The broker's next valid id, never at or below the highest id ever persisted; the id is
    /// journaled before it is used.
    async fn alloc_order_id(&mut self) -> Result<OrderId, ExecError> {
        let b = self.broker.next_order_id().await?;
        let id = match self.highest_order {
            Some(h) if b <= h => OrderId(h.0.saturating_add(1)),
            _ => b,
        };
        self.write(JournalRecord::OrderIdUsed(id)).await?;
        self.highest_order = Some(id);
        Ok(id)
    }

    // ----- commands -----------------------------------------------------------------------

    pub(crate) async fn on_command(&mut self, c: Command) {
        match c {
            Command::Submit(intent, reply) => {
                let r = self.submit(intent).await;
                let _ = reply.send(r);
            }
            Command::PlaceStop(spec, reply) => {
                let r = self.place_stop(spec).await;
                let _ = reply.send(r);
            }
            Command::SetTradingState(change, reply) => {
                let r = self.set_trading_state(change).await;
                let _ = reply.send(r);
            }
            Command::SetBroken(strategy, reason, legs, reply) => {
                let r = self
                    .write(JournalRecord::StrategyBroken {
                        strategy,
                        reason: reason.clone(),
                    })
                    .await;
                if r.is_ok() {
                    match reason {
                        Some(code) => {
                            self.broken.insert(strategy, code);
                            if !legs.is_empty() {
                                self.break_legs.insert(strategy, (self.clock.now(), legs));
                            }
                        }
                        None => {
                            self.broken.remove(&strategy);
                            self.break_legs.remove(&strategy);
                        }
                    }
                    self.relock();
                }
                let _ = reply.send(r.map_err(ExecError::from));
            }
            Command::SetBrokenLegs(legs, reply) => {
                // The book's push takes over the lock of a strategy it shows Broken; a lock
                // it never shows (the strategy vanished first) lapses after a while.
                let now = self.clock.now();
                self.break_legs.retain(|s, (at, _)| {
                    !legs.values().any(|b| b == s) && now.duration_since(*at) < BREAK_LOCK_HANDOFF
                });
                self.link_legs = legs;
                self.relock();
                let _ = reply.send(());
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::SetForcedUnwind(account, enabled, reply) => {
                let r = self.set_forced_unwind(account, enabled).await;
                let _ = reply.send(r);
            }
            Command::ReconcilePositions(positions, taken, reply) => {
                let _ = reply.send(self.reconcile_positions(positions, taken));
            }
            Command::Check(intent, reply) => {
                let _ = reply.send(self.check_intent(&intent));
            }
        }
    }

    /// The locked instruments: the book's Broken strategies' and those locked as a strategy
    /// was marked Broken (the book's owner wins where both name one).
    fn relock(&mut self) {
        let mut legs = self.link_legs.clone();
        for (s, (_, instruments)) in &self.break_legs {
            for i in instruments {
                legs.entry(i.clone()).or_insert(*s);
            }
        }
        if legs != self.broken_legs {
            tracing::info!(
                locked = legs.len(),
                "broken strategies' instruments locked for normal orders"
            );
            self.broken_legs = legs;
        }
    }

    /// Journals, applies, audits and publishes a trading-state change; `Ok(false)` when nothing
    /// changed (the same state, or a looser one asked with `only_stricter`).
    async fn set_trading_state(&mut self, c: TradingChange) -> Result<bool, ExecError> {
        let from = self.state;
        if c.to == from || (c.only_stricter && c.to < from) {
            return Ok(false);
        }
        self.write(JournalRecord::TradingState(c.to)).await?;
        self.state = c.to;
        let now = self.now();
        self.state_tx.send_replace(TradingStatus {
            state: c.to,
            why: c.why.clone(),
            since: Some(now),
        });
        let r = self
            .audit(
                "trading_state",
                "state.changed",
                format!("{from:?} -> {:?}: {}", c.to, c.why),
                None,
                None,
            )
            .await;
        self.report_unjournaled(r, "audit entry");
        Ok(true)
    }

    fn snapshot(&mut self) -> EngineSnapshot {
        EngineSnapshot {
            trading_state: self.state,
            groups: self
                .history
                .values()
                .chain(self.groups.values())
                .cloned()
                .collect(),
            stops: self.stops.values().cloned().collect(),
            positions: self.book.positions().map(|(i, q)| (i.id(), q)).collect(),
            unmatched: {
                let gs = watched_groups(&self.hedge, &self.groups, &self.history);
                self.hedge.hedgeable(&self.book, &gs).into_iter().collect()
            },
            hedges_sent: self
                .hedge
                .sent_total
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            highest_order_id: self.highest_order,
            available_funds: self.available_funds,
            forced_unwind: self.forced_unwind.iter().cloned().collect(),
            broken: self.broken.iter().map(|(s, r)| (*s, r.clone())).collect(),
            broken_legs: self
                .broken_legs
                .iter()
                .map(|(i, s)| (i.clone(), *s))
                .collect(),
        }
    }

    /// Journals the flag first, then applies it to the gate.
    async fn set_forced_unwind(
        &mut self,
        account: AccountId,
        enabled: bool,
    ) -> Result<(), ExecError> {
        self.write(JournalRecord::ForcedUnwind {
            account: account.clone(),
            enabled,
        })
        .await?;
        let code = if enabled {
            "unwind.enabled"
        } else {
            "unwind.disabled"
        };
        let r = self
            .audit(
                "forced_unwind",
                code,
                format!(
                    "forced unwind of {account}: {}",
                    if enabled { "on" } else { "off" }
                ),
                None,
                None,
            )
            .await;
        self.report_unjournaled(r, "audit entry");
        if enabled {
            self.forced_unwind.insert(account);
        } else {
            self.forced_unwind.remove(&account);
        }
        Ok(())
    }

    /// `true` while a group leg or a stop of ours is working on `id` and fills of it may be in
    /// flight (its events will settle the book). A stop that rests untouched (not triggered,
    /// nothing filled, no cancel or market order of its own) does not count: a GTC stop can
    /// rest for days, and an assignment or expiry delivery on its instrument must still reach
    /// the book (DST invariant 4, seed 71).
    fn working_on(&self, id: &InstrumentId) -> bool {
        self.groups.values().any(|g| {
            g.legs.iter().any(|l| {
                l.order_id.is_some() && !l.state.is_terminal() && l.intent.instrument.id() == *id
            })
        }) || self.stops.values().any(|s| {
            !s.is_terminal()
                && s.spec.instrument.id() == *id
                && !(s.state == StopState::Working && s.triggered_at.is_none() && s.filled() == 0)
        })
    }

    /// Reconciliation, returning what changed: the broker's positions win for every instrument
    /// nothing of ours is working on and no fill or position event touched since the snapshot
    /// was asked for (`taken`): a snapshot older than what the book
    /// already applied would put back a position that is gone (DST seed 365774009879: the
    /// expiry's position events, then a snapshot from before them, put the expired options
    /// back and took the delivered stock out).
    fn reconcile_positions(
        &mut self,
        positions: Vec<Position>,
        taken: Timestamp,
    ) -> Vec<PositionRepair> {
        let mut target: BTreeMap<InstrumentId, (tradeguard_model::Instrument, i64)> = self
            .book
            .positions()
            .map(|(i, _)| (i.id(), (i.clone(), 0)))
            .collect();
        for p in positions {
            target.insert(p.instrument.id(), (p.instrument, p.qty));
        }
        let mut out = Vec::new();
        for (id, (inst, qty)) in target {
            let local = self.book.qty(&id);
            let newer = self.touched_at.get(&id).is_some_and(|t| *t >= taken);
            if local == qty || self.working_on(&id) || newer {
                continue;
            }
            tracing::warn!(instrument = %id, from = local, to = qty, "reconciliation: book repaired (broker wins)");
            self.book.set(&inst, qty);
            out.push(PositionRepair {
                instrument: id,
                local,
                broker: qty,
            });
        }
        if !out.is_empty() {
            self.hedge_book_changed();
        }
        out
    }

    fn forced_unwind_refusal(&self, intent: &OrderIntent) -> Option<GateRefusal> {
        (self.forced_unwind.contains(&intent.account)
            && !matches!(intent.purpose, Purpose::Emergency | Purpose::Hedge)
            && !intent.is_reducing(&self.book))
        .then(|| GateRefusal::ForcedUnwind {
            account: intent.account.clone(),
        })
    }

    fn gate_ctx(&self) -> GateContext<'_> {
        GateContext {
            state: self.state,
            now: self.clock.now(),
            book: &self.book,
            available_funds: self.available_funds,
            broken: &self.broken,
            broken_legs: &self.broken_legs,
            risk: self.risk.as_ref(),
        }
    }

    /// The per-order limit `intent`'s legs are split under, or `None` when every leg goes out
    /// as one order. A leg over `max_order_qty` passes the gate only when the whole intent
    /// reduces (or for Emergency / Hedge): such legs are sent as child orders of at most
    /// `max_order_qty`. Emergency and Hedge groups are sent whole, as before: their callers
    /// (the assignment guard, the hedge manager) follow one broker order per step, and they
    /// were never size-limited.
    fn split_limit(&self, intent: &OrderIntent) -> Option<i64> {
        let max = self.cfg.gate.max_order_qty;
        (!matches!(intent.purpose, Purpose::Emergency | Purpose::Hedge)
            && intent.legs.iter().any(|l| l.qty > max))
        .then_some(max)
    }

    /// Native combo path: asked for, supported, more than one leg, and no leg to split (a
    /// combo with a leg over the per-order limit is legged instead, its legs split into child
    /// orders in the shorts-first tiers: one order per child is simpler and as safe for a
    /// close as several combo orders would be).
    pub(crate) fn use_combo(&self, intent: &OrderIntent) -> bool {
        self.cfg.prefer_native_combos
            && intent.legs.len() > 1
            && self.broker.capabilities().native_combos
            && self.split_limit(intent).is_none()
    }

    /// Child order quantities per leg of `intent` (see [`Engine::split_limit`]).
    fn child_orders(&self, intent: &OrderIntent) -> Vec<Vec<i64>> {
        let limit = self.split_limit(intent);
        intent
            .legs
            .iter()
            .map(|l| limit.map_or_else(|| vec![l.qty], |m| crate::group::split_qty(l.qty, m)))
            .collect()
    }

    /// Broker messages `intent` needs when it is sent.
    fn messages(&self, intent: &OrderIntent, combo: bool) -> u32 {
        if combo {
            return 1;
        }
        let n: usize = self.child_orders(intent).iter().map(Vec::len).sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The group that sends `intent`: a native combo, or legged with its oversized legs
    /// split into child orders.
    pub(crate) fn plan_group(
        &self,
        id: GroupId,
        intent: OrderIntent,
        combo: bool,
        now: Timestamp,
    ) -> Group {
        if combo {
            Group::combo(id, intent, &self.book, now)
        } else {
            match self.split_limit(&intent) {
                Some(max) => Group::legged_split(id, intent, &self.book, now, max),
                None => Group::legged(id, intent, &self.book, now),
            }
        }
    }

    /// What [`Engine::submit`] would decide for `intent` now, on a copy of the gate (no
    /// throttle token taken, nothing journaled or sent).
    fn check_intent(&self, intent: &OrderIntent) -> Result<IntentCheck, ExecError> {
        intent.validate()?;
        let combo = self.use_combo(intent);
        let verdict = |i: &OrderIntent, messages: u32| {
            if let Some(r) = self.forced_unwind_refusal(i) {
                return Some(r);
            }
            let mut gate = self.gate.clone();
            gate.check(i, messages, &self.gate_ctx()).err()
        };
        let refusal = verdict(intent, self.messages(intent, combo));
        let legs = intent
            .legs
            .iter()
            .zip(self.child_orders(intent))
            .map(|(l, child_orders)| {
                let mut alone = intent.clone();
                alone.legs = vec![l.clone()];
                let messages = u32::try_from(child_orders.len()).unwrap_or(u32::MAX);
                LegCheck {
                    refusal: verdict(&alone, messages),
                    child_orders,
                }
            })
            .collect();
        let tiers = if combo {
            vec![(0..intent.legs.len()).collect()]
        } else {
            crate::intent::tiers(&intent.legs, &self.book)
        };
        let stress = self
            .risk
            .worst_case(&self.book, &intent.legs)
            .map_err(GateRefusal::from)
            .and_then(|worst| {
                let available = self.available_funds.ok_or(GateRefusal::NoAccount)?;
                let pct = self.gate.config().stress_pct;
                Ok(StressFigures {
                    worst,
                    limit: available
                        .mul_ratio(i64::from(pct), 100)
                        .unwrap_or(Money::ZERO),
                    pct,
                    available,
                })
            });
        Ok(IntentCheck {
            refusal,
            legs,
            native_combo: combo,
            tiers,
            stress,
            leg_timeout: intent.leg_timeout.unwrap_or(self.cfg.leg_timeout),
            hedge_enabled: self.cfg.hedge_enabled,
        })
    }

    fn gate_check(&mut self, intent: &OrderIntent, messages: u32) -> Result<(), GateRefusal> {
        if let Some(r) = self.forced_unwind_refusal(intent) {
            return Err(r);
        }
        let ctx = GateContext {
            state: self.state,
            now: self.clock.now(),
            book: &self.book,
            available_funds: self.available_funds,
            broken: &self.broken,
            broken_legs: &self.broken_legs,
            risk: self.risk.as_ref(),
        };
        self.gate.check(intent, messages, &ctx)
    }

    async fn refuse(&self, intent: &OrderIntent, code: &str, reason: String) {
        if let Err(e) = self
            .audit("refused", code, reason, Some(intent.purpose), None)
            .await
        {
            tracing::error!(code = e.code(), "refusal not journaled: {e}");
        }
    }

    /// Validates, gates, journals and starts a group. Returns once the first broker call of
    /// the group has been made (or the group ended at send time).
    pub(crate) async fn submit(&mut self, intent: OrderIntent) -> Result<GroupId, ExecError> {
        if let Err(e) = intent.validate() {
            self.refuse(&intent, e.code(), e.to_string()).await;
            return Err(e.into());
        }
        let combo = self.use_combo(&intent);
        let messages = self.messages(&intent, combo);
        if let Err(r) = self.gate_check(&intent, messages) {
            self.refuse(&intent, r.code(), r.to_string()).await;
            return Err(r.into());
        }
        // One live exit per position: a Close/Flatten waits for the stops / exit groups already
        // working on it, an Emergency exit for the stops (crate::exits).
        let wait_for = self.exits_to_wait_for(&intent);
        let id = GroupId(self.next_group);
        self.next_group += 1;
        let now = self.now();
        let g = self.plan_group(id, intent, combo, now);
        let split = if g.legs.len() > g.intent.legs.len() {
            format!(
                ", as {} orders of at most {}",
                g.legs.len(),
                self.cfg.gate.max_order_qty
            )
        } else {
            String::new()
        };
        let summary = format!(
            "{:?} group {} ({} leg(s){split}, {}): tiers {:?}",
            g.intent.purpose,
            id,
            g.intent.legs.len(),
            if combo { "native combo" } else { "legged" },
            g.tiers
        );
        let purpose = g.intent.purpose;
        if purpose != Purpose::Hedge {
            self.hedge.watch(id);
        }
        self.groups.insert(id, g);
        self.audit("accepted", "gate.passed", summary, Some(purpose), Some(id))
            .await?;
        self.write_group(id).await?;
        if wait_for.is_empty() {
            if purpose == Purpose::Emergency {
                // Drives the group itself (cut or not).
                self.cut_emergency(id, combo).await;
            } else {
                self.advance_group(id).await;
            }
        } else {
            self.hold(id, combo, wait_for).await;
        }
        Ok(id)
    }

    // ----- groups -------------------------------------------------------------------------

    /// Drives a group as far as it can go now: sends pending legs of the current tier, moves
    /// to the next tier when the current one filled, plans the rollback when it failed.
    pub(crate) async fn advance_group(&mut self, id: GroupId) {
        if self.held.contains_key(&id) {
            return;
        }
        loop {
            let Some(g) = self.groups.get(&id) else {
                return;
            };
            let phase = g.phase;
            if phase.is_terminal() {
                return;
            }
            let outcome = g.tier_outcome();
            let now = self.now();
            match (phase, outcome) {
                (GroupPhase::Legging { tier }, TierOutcome::Filled)
                | (GroupPhase::RollingBack { tier }, TierOutcome::Filled) => {
                    let rolling = matches!(phase, GroupPhase::RollingBack { .. });
                    let count = if rolling {
                        g.rollback_tiers.len()
                    } else {
                        g.tiers.len()
                    };
                    let next = tier + 1;
                    let done = next >= count;
                    if let Some(g) = self.groups.get_mut(&id) {
                        g.updated = now;
                        g.phase = match (done, rolling) {
                            (false, false) => GroupPhase::Legging { tier: next },
                            (false, true) => GroupPhase::RollingBack { tier: next },
                            (true, false) => GroupPhase::Completed,
                            (true, true) => GroupPhase::RolledBack,
                        };
                    }
                    if let Err(e) = self.write_group(id).await {
                        self.journal_failed(id, e).await;
                        return;
                    }
                    if done {
                        self.group_finished(id).await;
                        return;
                    }
                }
                (GroupPhase::Combo, TierOutcome::Filled) => {
                    if let Some(g) = self.groups.get_mut(&id) {
                        g.phase = GroupPhase::Completed;
                        g.updated = now;
                    }
                    let r = self.write_group(id).await;
                    self.report_unjournaled(r, "group state");
                    self.group_finished(id).await;
                    return;
                }
                (GroupPhase::Legging { .. } | GroupPhase::Combo, TierOutcome::Failed) => {
                    let book = self.book.clone();
                    let mut reason = String::new();
                    if let Some(g) = self.groups.get_mut(&id) {
                        reason = g
                            .legs
                            .iter()
                            .filter(|l| l.state.is_terminal() && l.state != LegState::Filled)
                            .map(|l| {
                                format!(
                                    "{} {:?}{}",
                                    l.intent.instrument.id(),
                                    l.state,
                                    l.reason
                                        .as_deref()
                                        .map(|r| format!(" ({r})"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        g.reason = Some(reason.clone());
                        g.updated = now;
                        // Cancel legs of later tiers that were never sent.
                        for l in g.legs.iter_mut().filter(|l| l.state == LegState::Pending) {
                            l.state = LegState::Cancelled;
                        }
                        // An exit is never rolled back: undoing its filled legs would re-open
                        // the exposure it just closed (a forced unwind re-buying the stock it
                        // sold, a hedge re-selling: DST seeds 599, 871). It ends Failed with
                        // what filled kept; its caller retries the rest.
                        if !rolls_back(g.intent.purpose) {
                            g.phase = GroupPhase::Failed;
                        } else if !g.plan_rollback(&book) {
                            g.phase = GroupPhase::RolledBack;
                        }
                    }
                    if let Err(e) = self.write_group(id).await {
                        self.journal_failed(id, e).await;
                        return;
                    }
                    let what = if self
                        .groups
                        .get(&id)
                        .is_some_and(|g| !rolls_back(g.intent.purpose))
                    {
                        "filled legs kept (an exit is not rolled back)"
                    } else {
                        "unwinding filled legs"
                    };
                    self.raise(
                        Severity::Warning,
                        "group.incomplete",
                        format!("group {id} could not complete ({reason}); {what}"),
                        Some(id),
                        None,
                    )
                    .await;
                    if self.groups.get(&id).is_some_and(|g| g.phase.is_terminal()) {
                        self.group_finished(id).await;
                        return;
                    }
                }
                (GroupPhase::RollingBack { .. }, TierOutcome::Failed) => {
                    if let Some(g) = self.groups.get_mut(&id) {
                        g.phase = GroupPhase::Failed;
                        g.updated = now;
                    }
                    let r = self.write_group(id).await;
                    self.report_unjournaled(r, "group state");
                    self.raise(
                        Severity::Critical,
                        "group.rollback_failed",
                        format!(
                            "group {id}: rollback could not complete; positions need manual action"
                        ),
                        Some(id),
                        None,
                    )
                    .await;
                    return;
                }
                (_, TierOutcome::Working) => {
                    self.send_pending(id).await;
                    // Sending may have ended the tier (rejections): evaluate again if so.
                    let again = self
                        .groups
                        .get(&id)
                        .is_some_and(|g| g.tier_outcome() != TierOutcome::Working);
                    if !again {
                        self.arm_exposure_check();
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    fn arm_exposure_check(&mut self) {
        if self.next_exposure_check.is_none() {
            self.next_exposure_check = Some(self.now().plus(self.cfg.exposure_check_interval));
        }
    }

    pub(crate) async fn journal_failed(&mut self, id: GroupId, e: JournalError) {
        self.raise(
            Severity::Critical,
            e.code(),
            format!("group {id}: journal write failed ({e}); no further orders sent for it"),
            Some(id),
            None,
        )
        .await;
    }

    /// Moves a finished group to the bounded history (its fills may still arrive: the order
    /// index keeps pointing at it).
    pub(crate) fn retire(&mut self, id: GroupId) {
        if let Some(g) = self.groups.remove(&id) {
            self.history.insert(id, g);
            while self.history.len() > HISTORY {
                self.history.pop_first();
            }
        }
    }

    /// A forward leg's fill counted after the group's rollback was planned (an execution
    /// reported after its order ended): the rollback is extended to undo it too, and a group
    /// that had finished rolling back is working again. Returns whether it was.
    fn late_fill(&mut self, id: GroupId, leg: usize) -> bool {
        let Some(g) = self
            .groups
            .get_mut(&id)
            .or_else(|| self.history.get_mut(&id))
        else {
            return false;
        };
        let late = rolls_back(g.intent.purpose)
            && matches!(
                g.phase,
                GroupPhase::RollingBack { .. } | GroupPhase::RolledBack
            )
            && g.legs.get(leg).is_some_and(|l| !l.rollback);
        let extended = late && g.plan_late_rollback(&self.book);
        if extended && let Some(g) = self.history.remove(&id) {
            self.groups.insert(id, g);
        }
        extended
    }

    fn group_mut(&mut self, id: GroupId) -> Option<&mut Group> {
        if self.groups.contains_key(&id) {
            self.groups.get_mut(&id)
        } else {
            self.history.get_mut(&id)
        }
    }

    pub(crate) async fn group_finished(&mut self, id: GroupId) {
        self.finish_notes(id).await;
        self.retire(id);
    }

    async fn finish_notes(&mut self, id: GroupId) {
        let Some(g) = self.groups.get(&id) else {
            return;
        };
        let (phase, purpose) = (g.phase, g.intent.purpose);
        let reason = format!("group {id} {purpose:?} finished: {phase:?}");
        let r = self
            .audit(
                "finished",
                "group.finished",
                reason,
                Some(purpose),
                Some(id),
            )
            .await;
        self.report_unjournaled(r, "audit entry");
        if phase == GroupPhase::RolledBack {
            self.raise(
                Severity::Warning,
                "group.rolled_back",
                format!("group {id} rolled back: {}", g_reason(self.groups.get(&id))),
                Some(id),
                None,
            )
            .await;
        }
    }

    /// Sends the Pending legs of the current tier (or the combo), journaling first.
    async fn send_pending(&mut self, id: GroupId) {
        let Some(g) = self.groups.get(&id) else {
            return;
        };
        let pending: Vec<usize> = g
            .current_tier()
            .into_iter()
            .filter(|i| g.legs.get(*i).is_some_and(|l| l.state == LegState::Pending))
            .collect();
        if pending.is_empty() {
            return;
        }
        if g.phase == GroupPhase::Combo {
            self.send_combo(id, pending).await;
            return;
        }
        for (n, idx) in pending.iter().copied().enumerate() {
            let oid = match self.alloc_order_id().await {
                Ok(o) => o,
                Err(e) => {
                    self.fail_unsent(id, &pending[n..], e.to_string()).await;
                    return;
                }
            };
            let now = self.now();
            let Some(g) = self.groups.get_mut(&id) else {
                return;
            };
            g.mark_sent(idx, oid, now);
            let order = g.intent.order_for(&g.legs[idx].intent, oid);
            self.own_group(oid, id);
            if let Err(e) = self.write_group(id).await {
                self.fail_unsent(id, &pending[n..], e.to_string()).await;
                return;
            }
            if is_later_tier(self.groups.get(&id)) {
                self.gate.count_messages(1, now);
            }
            if let Err(e) = self.broker.place(&order).await {
                self.fail_unsent(id, &pending[n..], format!("{} ({})", e, e.code()))
                    .await;
                return;
            }
        }
    }

    async fn send_combo(&mut self, id: GroupId, legs: Vec<usize>) {
        let oid = match self.alloc_order_id().await {
            Ok(o) => o,
            Err(e) => return self.fail_unsent(id, &legs, e.to_string()).await,
        };
        let now = self.now();
        let Some(g) = self.groups.get_mut(&id) else {
            return;
        };
        for i in &legs {
            g.mark_sent(*i, oid, now);
        }
        let mut order_legs: Vec<(i32, ComboLeg)> = g
            .legs
            .iter()
            .map(|l| {
                (
                    l.score,
                    ComboLeg {
                        instrument: l.intent.instrument.clone(),
                        side: l.intent.side,
                        ratio: u32::try_from(l.ratio).unwrap_or(1),
                    },
                )
            })
            .collect();
        order_legs.sort_by_key(|l| std::cmp::Reverse(l.0));
        let combo = ComboOrder {
            id: oid,
            account: g.intent.account.clone(),
            legs: order_legs.into_iter().map(|(_, l)| l).collect(),
            qty: g.combo_qty.unwrap_or(1),
            order_type: match g.intent.net_limit {
                Some(limit) => OrderType::Limit { limit },
                None => OrderType::Market,
            },
            tif: g.intent.tif,
        };
        self.own_group(oid, id);
        if let Err(e) = self.write_group(id).await {
            return self.fail_unsent(id, &legs, e.to_string()).await;
        }
        if let Err(e) = self.broker.place_combo(&combo).await {
            self.fail_unsent(id, &legs, format!("{} ({})", e, e.code()))
                .await;
        }
    }

    /// Legs that could not be sent become Rejected (journaled); the caller re-evaluates.
    async fn fail_unsent(&mut self, id: GroupId, legs: &[usize], why: String) {
        let now = self.now();
        if let Some(g) = self.groups.get_mut(&id) {
            for i in legs {
                g.mark_rejected(*i, why.clone(), now);
            }
        }
        if let Err(e) = self.write_group(id).await {
            tracing::error!(
                code = e.code(),
                "group {id}: send failure not journaled: {e}"
            );
        }
        self.raise(
            Severity::Warning,
            "group.send_failed",
            format!("group {id}: could not send: {why}"),
            Some(id),
            None,
        )
        .await;
    }

    // ----- stops --------------------------------------------------------------------------

    async fn place_stop(&mut self, spec: StopSpec) -> Result<u64, ExecError> {
        let limit = limit_price(
            spec.side,
            spec.stop,
            self.cfg.stop_slippage_bps,
            self.cfg.tick,
        );
        let mut intent = OrderIntent::new(Purpose::StopLoss, spec.account.clone()).leg(
            spec.instrument.clone(),
            spec.side,
            spec.qty,
            OrderType::StopLimit {
                stop: spec.stop,
                limit,
            },
        );
        intent.strategy = spec.strategy;
        intent.tif = Tif::Gtc;
        if let Err(e) = intent.validate() {
            self.refuse(&intent, e.code(), e.to_string()).await;
            return Err(e.into());
        }
        if let Some(e) = self.stop_conflict(&spec) {
            self.refuse(&intent, e.code(), e.to_string()).await;
            return Err(e);
        }
        // A stop is one resting order: it cannot be split into child orders (one live exit
        // per position), so the per-order limit applies to it even when it reduces.
        let max = self.cfg.gate.max_order_qty;
        let oversized = (spec.qty > max).then(|| GateRefusal::MaxOrderQty {
            instrument: spec.instrument.id(),
            qty: spec.qty,
            max,
        });
        if let Some(r) = oversized.map_or_else(|| self.gate_check(&intent, 1).err(), Some) {
            self.refuse(&intent, r.code(), r.to_string()).await;
            return Err(r.into());
        }
        let oid = self.alloc_order_id().await?;
        let id = self.next_stop;
        self.next_stop += 1;
        let order = intent.order_for(&intent.legs[0], oid);
        self.stops
            .insert(id, StopLoss::new(id, spec.clone(), limit, oid));
        self.own_stop(oid, id);
        self.audit(
            "accepted",
            "stop.placed",
            format!(
                "stop {id}: {:?} {} {} stop {} limit {limit}",
                spec.side,
                spec.qty,
                spec.instrument.id(),
                spec.stop
            ),
            Some(Purpose::StopLoss),
            None,
        )
        .await?;
        self.write_stop(id).await?;
        if let Err(e) = self
            .broker
            .subscribe_quotes(std::slice::from_ref(&spec.instrument))
            .await
        {
            tracing::warn!(code = e.code(), "stop {id}: quote subscription failed: {e}");
        }
        if let Err(e) = self.broker.place(&order).await {
            if let Some(s) = self.stops.get_mut(&id) {
                s.state = StopState::Failed;
            }
            let r = self.write_stop(id).await;
            self.report_unjournaled(r, "stop-loss state");
            self.raise(
                Severity::Critical,
                "stop.place_failed",
                format!("stop {id}: stop-limit could not be placed: {e}"),
                None,
                Some(id),
            )
            .await;
            return Err(e.into());
        }
        Ok(id)
    }

    pub(crate) async fn run_stop_actions_pub(&mut self, id: u64, actions: Vec<StopAction>) {
        self.run_stop_actions(id, actions).await;
    }

    pub(crate) fn seen_exec(&mut self, id: ExecId) {
        self.seen_execs.insert(id);
    }

    async fn run_stop_actions(&mut self, id: u64, actions: Vec<StopAction>) {
        if let Err(e) = self.write_stop(id).await {
            self.raise(
                Severity::Critical,
                e.code(),
                format!("stop {id}: journal write failed ({e}); broker call skipped"),
                None,
                Some(id),
            )
            .await;
            return;
        }
        for a in actions {
            match a {
                StopAction::Alert {
                    code,
                    critical,
                    message,
                } => {
                    let sev = if critical {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    self.raise(sev, code, message, None, Some(id)).await;
                }
                StopAction::Cancel(oid) => {
                    self.gate.count_messages(1, self.now());
                    if let Err(e) = self.broker.cancel(oid).await {
                        let now = self.now();
                        let timeout = self.cfg.stop_timeout;
                        let Some(s) = self.stops.get_mut(&id) else {
                            return;
                        };
                        let alert =
                            s.on_cancel_failed(&format!("{e} ({})", e.code()), now, timeout);
                        if matches!(e, BrokerError::NotConnected) {
                            // Tried again every time-out while the link is down: the lost
                            // connection is alerted once (guard.connection_lost), not each try.
                            tracing::warn!(
                                stop = id,
                                "stop-limit cancel not sent (not connected); tried again in {} ms",
                                timeout.as_millis()
                            );
                        } else {
                            Box::pin(self.run_stop_actions(id, vec![alert])).await;
                        }
                        // Filled or unknown at the broker with its events lost (crate::lost).
                        Box::pin(self.settle_lost_stops()).await;
                        return;
                    }
                }
                StopAction::SendMarket { qty } => {
                    // Never more than the position still held: an assignment, expiry or
                    // another exit may have closed it meanwhile, and a market order for a
                    // position that is gone would open a new one (DST seed 27).
                    let open = self.stops.get(&id).map_or(0, |s| {
                        let pos = self.book.qty(&s.spec.instrument.id());
                        match s.spec.side {
                            Side::Sell => pos.max(0),
                            Side::Buy => (-pos).max(0),
                        }
                    });
                    let qty = qty.min(open);
                    if qty <= 0 {
                        if let Some(s) = self.stops.get_mut(&id) {
                            s.state = StopState::Done;
                        }
                        let r = self.write_stop(id).await;
                        self.report_unjournaled(r, "stop-loss state");
                        self.raise(
                            Severity::Warning,
                            "stop.position_gone",
                            format!("stop {id}: stop-limit cancelled (confirmed) and the position is already closed: no market order"),
                            None,
                            Some(id),
                        )
                        .await;
                        return;
                    }
                    let oid = match self.alloc_order_id().await {
                        Ok(o) => o,
                        Err(e) => {
                            self.stop_market_failed(id, e.to_string()).await;
                            return;
                        }
                    };
                    let Some(s) = self.stops.get_mut(&id) else {
                        return;
                    };
                    s.market_order = Some(oid);
                    let order = OrderRequest {
                        id: oid,
                        account: s.spec.account.clone(),
                        instrument: s.spec.instrument.clone(),
                        side: s.spec.side,
                        qty,
                        order_type: OrderType::Market,
                        tif: Tif::Day,
                        outside_rth: false,
                    };
                    self.own_stop(oid, id);
                    if let Err(e) = self.write_stop(id).await {
                        self.stop_market_failed(id, e.to_string()).await;
                        return;
                    }
                    self.gate.count_messages(1, self.now());
                    let r = self
                        .audit(
                            "stop_market",
                            "stop.market_sent",
                            format!("stop {id}: stop-limit cancelled (confirmed); market order {oid} for {qty}"),
                            Some(Purpose::StopLoss),
                            None,
                        ).await;
                    self.report_unjournaled(r, "audit entry");
                    if let Err(e) = self.broker.place(&order).await {
                        self.stop_market_failed(id, format!("{e} ({})", e.code()))
                            .await;
                        return;
                    }
                }
            }
        }
    }

    async fn stop_market_failed(&mut self, id: u64, why: String) {
        if let Some(s) = self.stops.get_mut(&id) {
            s.state = StopState::Failed;
        }
        let r = self.write_stop(id).await;
        self.report_unjournaled(r, "stop-loss state");
        self.raise(
            Severity::Critical,
            "stop.market_failed",
            format!("stop {id}: market exit could not be sent: {why}"),
            None,
            Some(id),
        )
        .await;
    }

    // ----- broker events ------------------------------------------------------------------

    pub(crate) async fn on_event(&mut self, ev: BrokerEvent) {
        match ev {
            BrokerEvent::OrderStatus(u) => self.on_status(u).await,
            BrokerEvent::Execution(e) => self.on_exec(e).await,
            BrokerEvent::Position(p) => {
                let id = p.instrument.id();
                let now = self.now();
                self.touched_at.insert(id.clone(), now);
                if !self.working_on(&id) && self.book.qty(&id) != p.qty {
                    tracing::info!(instrument = %id, from = self.book.qty(&id), to = p.qty, "position event applied (broker wins)");
                    self.book.set(&p.instrument, p.qty);
                    self.hedge_book_changed();
                }
            }
            BrokerEvent::Account(a) => {
                self.available_funds = Some(a.net_liquidation);
                self.account = Some(a.account);
            }
            BrokerEvent::Quote(q) => {
                self.book.on_quote(&q);
                let now = self.now();
                let timeout = self.cfg.stop_timeout;
                let hit: Vec<u64> = self
                    .stops
                    .values_mut()
                    .filter(|s| s.spec.instrument == q.instrument)
                    .filter_map(|s| s.on_quote(&q, now, timeout).then_some(s.id))
                    .collect();
                for id in hit {
                    tracing::info!(stop = id, "stop triggered: market through the stop");
                    if let Err(e) = self.write_stop(id).await {
                        tracing::error!(code = e.code(), "stop {id} trigger not journaled: {e}");
                    }
                }
            }
            BrokerEvent::Connection(c) => {
                tracing::info!(state = ?c, "broker connection");
                if c == tradeguard_model::ConnectionState::Connected {
                    // Events of the disconnected time are lost: settle what they would have.
                    self.settle_lost_orders().await;
                    self.settle_lost_stops().await;
                }
            }
            BrokerEvent::Notice(n) => {
                if n.code == Notice::EVENTS_DROPPED {
                    self.raise(
                        Severity::Warning,
                        "broker.events_dropped",
                        format!("engine fell behind the broker event stream: {}", n.text),
                        None,
                        None,
                    )
                    .await;
                } else {
                    tracing::info!(code = n.code, "broker notice: {}", n.text);
                }
            }
        }
    }

    async fn on_status(&mut self, u: OrderUpdate) {
        if u.status.is_terminal() && self.recovery_cancels.remove(&u.order_id) {
            tracing::info!(order = %u.order_id, status = ?u.status, "recovery cancel settled");
        }
        match self.owners.get(&u.order_id).copied() {
            Some(Owner::Group(gid)) => {
                let changed = self.group_mut(gid).is_some_and(|g| g.on_status(&u));
                if u.status.is_terminal() && self.hedge.on_terminal(u.order_id) {
                    // Its unfilled rest no longer counts: re-arms if still needed.
                    self.hedge_book_changed();
                }
                if changed {
                    if let Err(e) = self.write_group(gid).await {
                        self.journal_failed(gid, e).await;
                        return;
                    }
                    self.advance_group(gid).await;
                }
            }
            Some(Owner::Stop(sid)) => {
                let now = self.now();
                let timeout = self.cfg.stop_timeout;
                let Some(s) = self.stops.get_mut(&sid) else {
                    return;
                };
                let before = s.clone();
                let actions = s.on_status(&u, now, timeout);
                if *s != before || !actions.is_empty() {
                    self.run_stop_actions(sid, actions).await;
                }
            }
            None => {
                tracing::debug!(order = %u.order_id, "status for an order the engine does not own")
            }
        }
    }

    pub(crate) async fn on_exec(&mut self, e: Execution) {
        if !self.seen_execs.insert(e.exec_id.clone()) {
            tracing::debug!(exec = %e.exec_id, "duplicate execution ignored");
            return;
        }
        self.book.apply(&e.instrument, e.signed_qty());
        let now = self.now();
        self.touched_at.insert(e.instrument.id(), now);
        if self.account.is_none() {
            self.account = Some(e.account.clone());
        }
        let owner = e.order_id.and_then(|o| self.owners.get(&o).copied());
        match owner {
            Some(Owner::Group(gid)) => {
                let res = self.group_mut(gid).map(|g| g.on_exec(&e));
                match res {
                    Some(Ok(leg)) => {
                        if let Some(oid) = e.order_id {
                            self.hedge.on_fill(oid, e.qty);
                        }
                        let late = self.late_fill(gid, leg);
                        if let Err(err) = self.write_group(gid).await {
                            self.journal_failed(gid, err).await;
                        } else if late {
                            self.raise(
                                Severity::Warning,
                                "group.late_fill",
                                format!(
                                    "group {gid}: {} {} {} reported after its order ended and the rollback was planned; unwinding it too",
                                    if e.side == Side::Buy { "bought" } else { "sold" },
                                    e.qty,
                                    e.instrument.id()
                                ),
                                Some(gid),
                                None,
                            )
                            .await;
                            self.advance_group(gid).await;
                        }
                    }
                    Some(Err(fe)) => {
                        self.raise(
                            Severity::Critical,
                            fe.code(),
                            format!("group {gid}: invalid fill {} ({fe}); booked as the broker reports it", e.exec_id),
                            Some(gid),
                            None,
                        )
                        .await;
                    }
                    None => {}
                }
            }
            Some(Owner::Stop(_)) => {}
            None => {
                tracing::info!(exec = %e.exec_id, instrument = %e.instrument.id(), qty = e.signed_qty(), "execution of an order the engine did not send")
            }
        }
        self.hedge_book_changed();
        let exec_id = e.exec_id.clone();
        if let Err(err) = self.journal.append(JournalRecord::Execution(e)).await {
            tracing::error!(exec = %exec_id, "execution not recorded for the blotter: {err}");
        }
    }

    // ----- deadlines ----------------------------------------------------------------------

    fn active_groups(&self) -> bool {
        self.groups.values().any(|g| !g.phase.is_terminal())
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        let mut d: Option<Timestamp> = None;
        let mut put = |t: Timestamp| d = Some(d.map_or(t, |x| x.min(t)));
        for g in self.groups.values().filter(|g| !g.phase.is_terminal()) {
            let timeout = g.intent.leg_timeout.unwrap_or(self.cfg.leg_timeout);
            for l in &g.legs {
                if let (Some(s), false, true) = (
                    l.sent_at,
                    l.timeout_cancel,
                    l.order_id.is_some() && !l.state.is_terminal(),
                ) {
                    put(s.plus(timeout));
                }
            }
        }
        for s in self.stops.values() {
            if matches!(s.state, StopState::Working | StopState::CancelPending)
                && let Some(t) = s.deadline
            {
                put(t);
            }
        }
        if let Some(h) = self.hedge.deadline() {
            let blocked = !self.recovery_cancels.is_empty();
            match (blocked, self.recovery_deadline) {
                (true, Some(r)) => put(h.max(r)),
                _ => put(h),
            }
        }
        if let Some(t) = self.hedge.outside_deadline() {
            put(t);
        }
        if let Some(t) = self.lost_check_at {
            put(t);
        }
        if let Some(t) = self.next_exposure_check {
            put(t);
        }
        d
    }

    pub(crate) async fn on_timers(&mut self) {
        let now = self.now();
        // Leg time-outs.
        let mut to_cancel: Vec<(GroupId, usize, OrderId)> = Vec::new();
        for g in self.groups.values().filter(|g| !g.phase.is_terminal()) {
            let timeout = g.intent.leg_timeout.unwrap_or(self.cfg.leg_timeout);
            for (i, l) in g.legs.iter().enumerate() {
                if let (Some(s), Some(oid)) = (l.sent_at, l.order_id)
                    && !l.timeout_cancel
                    && !l.state.is_terminal()
                    && now >= s.plus(timeout)
                {
                    to_cancel.push((g.id, i, oid));
                }
            }
        }
        let mut cancelled: BTreeSet<OrderId> = BTreeSet::new();
        let mut cancel_failed = false;
        for (gid, i, oid) in to_cancel {
            if let Some(g) = self.groups.get_mut(&gid) {
                g.legs[i].timeout_cancel = true;
                g.updated = now;
            }
            if let Err(e) = self.write_group(gid).await {
                self.journal_failed(gid, e).await;
                continue;
            }
            if cancelled.insert(oid) {
                self.gate.count_messages(1, now);
                tracing::warn!(group = %gid, order = %oid, "leg not filled in time: cancelling");
                if let Err(e) = self.broker.cancel(oid).await {
                    cancel_failed = true;
                    self.raise(
                        Severity::Warning,
                        "group.cancel_failed",
                        format!("group {gid}: cancel of timed-out order {oid} failed: {e}"),
                        Some(gid),
                        None,
                    )
                    .await;
                }
            }
        }
        if cancel_failed {
            // Filled or unknown at the broker with its events lost (crate::lost).
            self.settle_lost_orders().await;
        }
        // A lost-order check the broker did not answer, once more.
        if self.lost_check_at.is_some_and(|t| now >= t) {
            self.lost_check_at = None;
            self.settle_lost_orders().await;
            self.settle_lost_stops().await;
        }
        // Stop time-outs.
        let due: Vec<(u64, StopState)> = self
            .stops
            .values()
            .filter(|s| {
                matches!(s.state, StopState::Working | StopState::CancelPending)
                    && s.deadline.is_some_and(|d| now >= d)
            })
            .map(|s| (s.id, s.state))
            .collect();
        let mut unanswered = false;
        for (id, state) in due {
            let action = self.stops.get_mut(&id).and_then(|s| s.on_deadline(now));
            if let Some(a) = action {
                if state == StopState::CancelPending {
                    unanswered = true;
                    tracing::warn!(
                        stop = id,
                        "stop-limit cancel unanswered: asking the broker again"
                    );
                } else {
                    tracing::warn!(
                        stop = id,
                        "stop-limit not filled in time: cancelling, market order only after confirmation"
                    );
                }
                self.run_stop_actions(id, vec![a]).await;
            }
        }
        if unanswered {
            // The order may be gone at the broker with its last events lost (crate::lost).
            self.settle_lost_stops().await;
        }
        // Hedges (after recovery cancels settled, or their wait expired).
        let recovery_blocked =
            !self.recovery_cancels.is_empty() && self.recovery_deadline.is_some_and(|r| now < r);
        if !recovery_blocked && self.hedge.deadline().is_some_and(|d| now >= d) {
            self.recovery_deadline = None;
            self.send_hedges(now).await;
        }
        if self.hedge.outside_deadline().is_some_and(|d| now >= d) {
            self.report_outside_naked(now).await;
        }
        // Interim exposure monitor.
        if self.next_exposure_check.is_some_and(|t| now >= t) {
            self.next_exposure_check = None;
            self.check_exposure().await;
            if self.active_groups() {
                self.arm_exposure_check();
            }
        }
    }

    /// The book changed: the hedge manager re-checks the watched groups' exposure.
    fn hedge_book_changed(&mut self) {
        let now = self.now();
        let gs = watched_groups(&self.hedge, &self.groups, &self.history);
        self.hedge.on_book_change(&self.book, &gs, now);
    }

    /// Naked shorts the guard did not create grew and stood: told once, never traded.
    async fn report_outside_naked(&mut self, now: Timestamp) {
        let gs = watched_groups(&self.hedge, &self.groups, &self.history);
        let grown = self.hedge.outside_due(&self.book, &gs, now);
        for (k, n) in grown {
            self.raise(
                Severity::Warning,
                "exposure.naked_short",
                format!(
                    "{} {:?}: {n} naked short contract(s) the guard did not open (sold outside \
                     Tradeguard, assigned away from its cover, or left by a stop); the guard \
                     does not trade them: cover or close them yourself, or write a rule",
                    k.underlying, k.right
                ),
                None,
                None,
            )
            .await;
        }
    }

    async fn send_hedges(&mut self, now: Timestamp) {
        let gs = watched_groups(&self.hedge, &self.groups, &self.history);
        let flush = self.hedge.flush(&self.book, &gs, now);
        for (k, n) in flush.unplaced {
            self.raise(
                Severity::Critical,
                "hedge.unplaceable",
                format!(
                    "{} {:?}: {n} naked short contract(s) left by the guard's own order, but \
                     no short that order traded is held to buy back; close it by hand",
                    k.underlying, k.right
                ),
                None,
                None,
            )
            .await;
        }
        for h in flush.orders {
            let intent = OrderIntent::new(Purpose::Hedge, self.account_of(&h.instrument.id())).leg(
                h.instrument.clone(),
                Side::Buy,
                h.qty,
                OrderType::Market,
            );
            let r = self
                .audit(
                    "hedge",
                    "hedge.unmatched",
                    format!(
                        "{} {:?}: {} unintended naked short contract(s); buying back {} {}",
                        h.key.underlying,
                        h.key.right,
                        h.qty,
                        h.qty,
                        h.instrument.id()
                    ),
                    Some(Purpose::Hedge),
                    None,
                )
                .await;
            self.report_unjournaled(r, "audit entry");
            match Box::pin(self.submit(intent)).await {
                Ok(gid) => {
                    let oid = self
                        .groups
                        .get(&gid)
                        .and_then(|g| g.legs.first())
                        .and_then(|l| l.order_id);
                    if let Some(oid) = oid {
                        self.hedge.on_sent(oid, h.key.clone(), h.qty);
                        // The fill may already have been processed? No: events are handled by
                        // this task after this returns.
                    }
                }
                Err(e) => {
                    self.raise(
                        Severity::Critical,
                        "hedge.refused",
                        format!(
                            "hedge of {} {} refused: {e} ({})",
                            h.qty,
                            h.instrument.id(),
                            e.code()
                        ),
                        None,
                        None,
                    )
                    .await;
                }
            }
        }
    }

    fn account_of(&self, _instrument: &InstrumentId) -> AccountId {
        self.account
            .clone()
            .unwrap_or_else(|| AccountId::new(self.broker.name()))
    }

    async fn check_exposure(&mut self) {
        let gs = watched_groups(&self.hedge, &self.groups, &self.history);
        let unmatched = self.hedge.unmatched(&self.book, &gs);
        let limit = self.cfg.max_unhedged_contracts;
        let over: BTreeMap<ExposureKey, i64> =
            unmatched.into_iter().filter(|(_, n)| *n > limit).collect();
        for (k, n) in &over {
            if self.exposure_alerted.get(k) != Some(n) {
                self.raise(
                    Severity::Critical,
                    "exposure.unhedged",
                    format!(
                        "{} {:?}: {n} naked short contract(s) while legging in (limit {limit})",
                        k.underlying, k.right
                    ),
                    None,
                    None,
                )
                .await;
            }
        }
        self.exposure_alerted = over;
    }

    /// The engine loop: commands first, then broker events, then deadlines.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut events: EventStream) {
        let mut events_open = true;
        loop {
            let wait = self
                .next_deadline()
                .map(|d| d.duration_since(self.now()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => {
                        tracing::info!("all coordinator handles dropped: engine stops");
                        return;
                    }
                },
                ev = events.next(), if events_open => match ev {
                    Some(e) => self.on_event(e).await,
                    None => {
                        events_open = false;
                        self.raise(Severity::Critical, "broker.events_closed", "broker event stream ended".into(), None, None).await;
                    }
                },
                _ = tokio::time::sleep(wait) => self.on_timers().await,
            }
            self.release_held().await;
        }
    }
}

/// Only opening groups are rolled back when they cannot complete (no half-built structure
/// left); exits, hedges and stop exits keep what filled.
/// The watched groups of the hedge manager that the engine still knows.
pub(crate) fn watched_groups<'a>(
    hedge: &HedgeManager,
    groups: &'a BTreeMap<GroupId, Group>,
    history: &'a BTreeMap<GroupId, Group>,
) -> Vec<&'a Group> {
    hedge
        .watched()
        .filter_map(|id| groups.get(&id).or_else(|| history.get(&id)))
        .collect()
}

fn rolls_back(p: Purpose) -> bool {
    p == Purpose::Open
}

fn g_reason(g: Option<&Group>) -> String {
    g.and_then(|g| g.reason.clone()).unwrap_or_default()
}

fn is_later_tier(g: Option<&Group>) -> bool {
    matches!(
        g.map(|g| g.phase),
        Some(GroupPhase::Legging { tier }) | Some(GroupPhase::RollingBack { tier }) if tier > 0
    ) || matches!(g.map(|g| g.phase), Some(GroupPhase::RollingBack { .. }))
}

/// Helper for the recovery module: broker error text with code.
pub(crate) fn berr(e: &BrokerError) -> String {
    format!("{e} ({})", e.code())
}
