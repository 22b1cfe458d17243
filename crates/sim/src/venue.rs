//! [`SimVenue`]: the deterministic synchronous core of the simulated broker.
//!
//! Time advances in fixed steps (`MarketConfig::step`) aligned to the start time, so the
//! result depends only on the seed and on *when* (in virtual time) calls are made, never on
//! how `step` calls are batched. Per step, in order: market move, session-close processing
//! (DAY orders, expiry, early-assignment decisions), due actions (order/cancel arrivals,
//! assignment deliveries), matching, quotes, account, connection faults, delivery.
//!
//! Matching rules (`tick` = `MarketConfig::tick`):
//! - Market: buy at the ask, sell at the bid, plus 0..=`max_slippage_ticks` adverse slippage.
//! - Limit: buy fills at the ask once ask ≤ limit; sell at the bid once bid ≥ limit.
//! - Stop: buy triggers when ask ≥ stop, sell when bid ≤ stop, then fills like a market order
//!   (so a gap fills through the stop). Stop-limit: same trigger, then a limit order.
//! - Trailing stop: tracks the best bid (sell) / ask (buy) since arrival; the stop sits `trail`
//!   behind it (amount, or basis points of the reference).
//! - Options match only in regular hours; stock orders also overnight when `outside_rth`.
//! - Combos: natural net price = Σ side × ratio × touch. Package mode fills all legs at once
//!   when natural ≤ limit (negative = credit); leg-by-leg mode fills one leg per step.
//! - At arrival an order is rejected (OrderStatus Rejected + reason code) for an unknown
//!   instrument (`sim.unknown_instrument`), an off-tick price (`sim.invalid_price`), at random
//!   (`sim.random_reject`) or when it would raise initial margin above net liquidation
//!   (`sim.insufficient_margin`).
//! - Each fill emits Execution, OrderStatus, Position(s), Account — like IB.
//!
//! Exercise/assignment (IB style, delivered as Position changes with **no** Execution): at
//! each regular close, options expiring that day that are ≥ 0.01 ITM are exercised/assigned,
//! others expire; deep-ITM short American options may be assigned early. Deliveries happen
//! `AssignmentConfig::delivery_delay` after the close (overnight). Broad/narrow index options
//! settle in cash. [`SimVenue::force_assignment`] delivers immediately.

use crate::calendar::{self, Session};
use crate::config::{FaultConfig, SimConfig};
use crate::error::SimError;
use crate::ledger::Ledger;
use crate::market::{Market, chance};
use crate::outbox::{Link, Outbox};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tradeguard_model::{
    AccountSnapshot, BrokerError, BrokerEvent, ComboOrder, ConnectionState, ExecId, Execution,
    Instrument, InstrumentId, Liquidity, MarginImpact, Money, Notice, OpenOrder, OpenOrderKind,
    OptionClass, OrderId, OrderRequest, OrderStatus, OrderType, OrderUpdate, Position, Price,
    Quote, Right, Side, StatusReason, Tif, Timestamp, Trail,
};

/// Notice code: a cancel could not be applied (IB uses 10148 / 161).
pub const NOTICE_CANCEL_FAILED: i32 = 10148;
/// Notice code: the venue hit an internal limit (e.g. arithmetic overflow) handling an event.
pub const NOTICE_INTERNAL: i32 = 10999;

#[derive(Debug, Clone)]
enum Action {
    Arrive(OrderId),
    CancelArrive(OrderId),
    Assign {
        instrument: Instrument,
        contracts: i64,
    },
    Expire {
        instrument: Instrument,
    },
    /// The later of an assignment's two position updates ([`crate::DeliveryReport`]): the
    /// instrument's position as the ledger holds it then.
    Report {
        instrument: Instrument,
    },
}

#[derive(Debug, Clone)]
struct Working {
    order: OpenOrderKind,
    status: OrderStatus,
    /// Status to restore when a cancel is rejected.
    status_before_cancel: OrderStatus,
    qty: i64,
    filled: i64,
    /// Σ price_raw × qty (net per combo unit for combos).
    notional: i128,
    arrived: bool,
    triggered: bool,
    trail_ref: Option<Price>,
    legs_done: usize,
    reason: Option<StatusReason>,
}

/// The simulated venue. See the module docs for the rules it follows.
#[derive(Debug, Clone)]
pub struct SimVenue {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: Timestamp,
    session: Session,
    market: Market,
    ledger: Ledger,
    orders: BTreeMap<OrderId, Working>,
    executions: Vec<Execution>,
    next_id: i64,
    exec_seq: u64,
    subscribed: BTreeSet<Instrument>,
    actions: BTreeMap<(Timestamp, u64), Action>,
    action_seq: u64,
    out: Outbox,
    next_quote_at: Timestamp,
    next_account_at: Timestamp,
    /// Test hook: cap on the units of any one fill (see [`SimVenue::set_max_fill_qty`]).
    max_fill_qty: Option<i64>,
}

fn reason(code: &str, text: impl Into<String>) -> StatusReason {
    StatusReason {
        code: code.to_owned(),
        text: text.into(),
    }
}

impl SimVenue {
    /// Builds a venue from `cfg`. Starts disconnected: call [`SimVenue::connect`].
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        let market = Market::new(&cfg.underlyings, cfg.market.clone());
        let mut ledger = Ledger::new(cfg.account.clone(), cfg.cash);
        for p in &cfg.positions {
            market.theo(&p.instrument, cfg.start)?;
            ledger.apply(&p.instrument, p.qty, p.avg_cost, false)?;
        }
        let mut v = Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            now: cfg.start,
            session: calendar::session(cfg.start),
            market,
            ledger,
            orders: BTreeMap::new(),
            executions: Vec::new(),
            next_id: 1,
            exec_seq: 0,
            subscribed: BTreeSet::new(),
            actions: BTreeMap::new(),
            action_seq: 0,
            out: Outbox::new(),
            next_quote_at: cfg.start,
            next_account_at: cfg.start,
            max_fill_qty: None,
            cfg,
        };
        for s in v.cfg.scheduled.clone() {
            let inst = v
                .ledger
                .holdings
                .get(&s.instrument)
                .map(|h| h.instrument.clone())
                .ok_or_else(|| SimError::NoPosition(s.instrument.clone()))?;
            v.schedule(
                s.at,
                Action::Assign {
                    instrument: inst,
                    contracts: s.contracts,
                },
            );
        }
        Ok(v)
    }

    /// Current virtual time (the last processed step).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Current spot of a simulated underlying.
    pub fn spot(&self, symbol: &str) -> Option<Price> {
        self.market.spot(symbol)
    }

    /// Sets a spot price (tests, demos). Takes effect for quotes and matching immediately.
    pub fn set_spot(&mut self, symbol: &str, px: Price) -> Result<(), SimError> {
        self.market.set_spot(symbol, px)
    }

    /// `true` while the underlying is in a fast market (after a jump; spreads are wider).
    pub fn is_fast_market(&self, symbol: &str) -> bool {
        self.market.is_fast(symbol, self.now)
    }

    /// The options listed on `symbol` now (see `Market::listing`).
    pub fn listing(&self, symbol: &str) -> Result<tradeguard_model::ChainListing, SimError> {
        self.market.listing(symbol, self.now)
    }

    /// Current quote for an instrument (ignores the connection state).
    pub fn quote(&self, inst: &Instrument) -> Result<Quote, SimError> {
        self.market.quote(inst, self.now)
    }

    fn schedule(&mut self, at: Timestamp, a: Action) {
        self.action_seq += 1;
        self.actions.insert((at, self.action_seq), a);
    }

    fn emit(&mut self, ev: BrokerEvent) {
        self.out.push(ev, self.now, &self.cfg.faults, &mut self.rng);
    }

    fn notice(&mut self, code: i32, text: String) {
        let ts = self.now;
        self.emit(BrokerEvent::Notice(Notice { code, text, ts }));
    }

    fn emit_account(&mut self) {
        match self.account_snapshot() {
            Ok(a) => self.emit(BrokerEvent::Account(a)),
            Err(e) => self.notice(
                NOTICE_INTERNAL,
                format!("account snapshot failed: {} ({})", e, e.code()),
            ),
        }
    }

    fn account_snapshot(&self) -> Result<AccountSnapshot, SimError> {
        self.ledger
            .snapshot(&self.market, self.now, self.cfg.matching.initial_margin_pct)
    }

    fn latency(&mut self) -> Duration {
        let m = &self.cfg.matching;
        let jitter = u64::try_from(m.latency_jitter.as_millis()).unwrap_or(0);
        let extra = if jitter > 0 {
            self.rng.random_range(0..=jitter)
        } else {
            0
        };
        m.latency + Duration::from_millis(extra)
    }

    fn check_link(&self) -> Result<(), BrokerError> {
        match self.out.link {
            Link::Down { .. } => Err(BrokerError::NotConnected),
            _ => Ok(()),
        }
    }

    fn check_query(&self, what: &str) -> Result<(), BrokerError> {
        match self.out.link {
            Link::Down { .. } => Err(BrokerError::NotConnected),
            Link::Stalled { .. } => Err(BrokerError::Timeout(what.to_owned())),
            Link::Up => Ok(()),
        }
    }

    // ----- connection ---------------------------------------------------------------------

    /// `true` unless disconnected (a stalled link still claims to be connected).
    pub fn is_connected(&self) -> bool {
        !matches!(self.out.link, Link::Down { .. })
    }

    /// Connects and sends Connected, every position and an account snapshot.
    pub fn connect(&mut self) {
        if self.is_connected() {
            return;
        }
        self.out.link = Link::Up;
        self.out.push_control(
            BrokerEvent::Connection(ConnectionState::Connected),
            self.now,
        );
        for p in self.ledger.positions() {
            self.emit(BrokerEvent::Position(p));
        }
        self.emit_account();
    }

    /// User disconnect: in-flight events are lost.
    pub fn disconnect(&mut self) {
        if !self.is_connected() {
            return;
        }
        self.out.link = Link::Down { until: None };
        self.out.drop_in_flight();
        let ev = BrokerEvent::Connection(ConnectionState::Disconnected {
            reason: "disconnect requested".into(),
        });
        self.out.push_control(ev, self.now);
    }

    // ----- orders -------------------------------------------------------------------------

    /// Reserves the next order id.
    pub fn next_order_id(&mut self) -> Result<OrderId, BrokerError> {
        self.check_link()?;
        let id = OrderId(self.next_id);
        self.next_id += 1;
        Ok(id)
    }

    fn admit(&mut self, id: OrderId, order: OpenOrderKind, qty: i64) -> Result<(), BrokerError> {
        if self.orders.contains_key(&id) {
            return Err(BrokerError::Rejected {
                code: "sim.duplicate_order_id".into(),
                reason: format!("order id {id} already used"),
            });
        }
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.orders.insert(
            id,
            Working {
                order,
                status: OrderStatus::PendingSubmit,
                status_before_cancel: OrderStatus::PendingSubmit,
                qty,
                filled: 0,
                notional: 0,
                arrived: false,
                triggered: false,
                trail_ref: None,
                legs_done: 0,
                reason: None,
            },
        );
        self.emit_status(id);
        let at = self.now.plus(self.latency());
        self.schedule(at, Action::Arrive(id));
        Ok(())
    }

    /// Places a single order; outcome arrives as events after the latency.
    pub fn place(&mut self, o: &OrderRequest) -> Result<(), BrokerError> {
        self.check_link()?;
        o.validate()?;
        self.admit(o.id, OpenOrderKind::Single(o.clone()), o.qty)
    }

    /// Places a combo order.
    pub fn place_combo(&mut self, c: &ComboOrder) -> Result<(), BrokerError> {
        self.check_link()?;
        c.validate()?;
        self.admit(c.id, OpenOrderKind::Combo(c.clone()), c.qty)
    }

    /// Requests cancellation; PendingCancel now, Cancelled (or a fault) after the latency.
    pub fn cancel(&mut self, id: OrderId) -> Result<(), BrokerError> {
        self.check_link()?;
        let w = self
            .orders
            .get_mut(&id)
            .ok_or(BrokerError::UnknownOrder(id))?;
        if w.status.is_terminal() {
            return Err(BrokerError::Rejected {
                code: "sim.not_cancellable".into(),
                reason: format!("order {id} is {:?}", w.status),
            });
        }
        if w.status == OrderStatus::PendingCancel {
            return Ok(());
        }
        w.status_before_cancel = w.status;
        w.status = OrderStatus::PendingCancel;
        self.emit_status(id);
        let mut at = self.now.plus(self.latency());
        if chance(&mut self.rng, self.cfg.faults.cancel_late_prob) {
            at = at.plus(self.cfg.faults.cancel_late_delay);
        }
        self.schedule(at, Action::CancelArrive(id));
        Ok(())
    }

    fn update_of(&self, id: OrderId, w: &Working) -> OrderUpdate {
        let avg = if w.filled > 0 {
            let n = i128::from(w.filled);
            let q = w.notional / n;
            let r = w.notional % n;
            let q = if 2 * r.abs() >= n {
                q + w.notional.signum()
            } else {
                q
            };
            Some(Price::from_raw(i64::try_from(q).unwrap_or(i64::MAX)))
        } else {
            None
        };
        OrderUpdate {
            order_id: id,
            status: w.status,
            filled: w.filled,
            remaining: w.qty - w.filled,
            avg_fill_price: avg,
            reason: w.reason.clone(),
            ts: self.now,
        }
    }

    fn emit_status(&mut self, id: OrderId) {
        if let Some(w) = self.orders.get(&id) {
            let u = self.update_of(id, w);
            self.emit(BrokerEvent::OrderStatus(u));
        }
    }

    fn finish(&mut self, id: OrderId, status: OrderStatus, why: Option<StatusReason>) {
        if let Some(w) = self.orders.get_mut(&id) {
            w.status = status;
            w.reason = why;
        }
        self.emit_status(id);
    }

    // ----- snapshots ----------------------------------------------------------------------

    /// Non-zero positions.
    pub fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.check_query("positions")?;
        Ok(self.ledger.positions())
    }

    /// Test oracle: the venue's true non-zero positions whatever the link state (the
    /// [`SimVenue::positions`] query fails while disconnected or stalled). Draws nothing from
    /// the RNG and emits nothing.
    pub fn positions_truth(&self) -> Vec<Position> {
        self.ledger.positions()
    }

    /// Test oracle: the venue's true working orders whatever the link state.
    pub fn open_orders_truth(&self) -> Vec<OpenOrder> {
        self.orders
            .iter()
            .filter(|(_, w)| !w.status.is_terminal())
            .map(|(id, w)| OpenOrder {
                order: w.order.clone(),
                status: self.update_of(*id, w),
            })
            .collect()
    }

    /// Non-terminal orders.
    pub fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        self.check_query("open_orders")?;
        Ok(self
            .orders
            .iter()
            .filter(|(_, w)| !w.status.is_terminal())
            .map(|(id, w)| OpenOrder {
                order: w.order.clone(),
                status: self.update_of(*id, w),
            })
            .collect())
    }

    /// Executions at or after `since`.
    pub fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        self.check_query("executions")?;
        Ok(self
            .executions
            .iter()
            .filter(|e| e.ts >= since)
            .cloned()
            .collect())
    }

    /// Account values now.
    pub fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        self.check_query("account")?;
        self.account_snapshot().map_err(|e| BrokerError::Rejected {
            code: e.code().into(),
            reason: e.to_string(),
        })
    }

    /// Margin impact of filling `o` at the current touch.
    pub fn what_if(&self, o: &OrderRequest) -> Result<MarginImpact, BrokerError> {
        self.check_query("what_if")?;
        o.validate()?;
        let to_err = |e: SimError| BrokerError::Rejected {
            code: e.code().into(),
            reason: e.to_string(),
        };
        let q = self.market.quote(&o.instrument, self.now).map_err(to_err)?;
        let px = touch(&q, o.side).ok_or_else(|| BrokerError::Rejected {
            code: "sim.no_market".into(),
            reason: format!("no {} for {}", side_word(o.side), o.instrument.id()),
        })?;
        let (before, after) = self
            .margin_before_after(&[(o.instrument.clone(), o.side.sign() * o.qty, px)])
            .map_err(to_err)?;
        Ok(MarginImpact {
            initial_change: Money::from_raw(
                after
                    .initial_margin
                    .raw()
                    .saturating_sub(before.initial_margin.raw()),
            ),
            maintenance_change: Money::from_raw(
                after
                    .maintenance_margin
                    .raw()
                    .saturating_sub(before.maintenance_margin.raw()),
            ),
            initial_after: after.initial_margin,
            maintenance_after: after.maintenance_margin,
            commission: Some(self.commission(&o.instrument, o.qty)),
        })
    }

    fn margin_before_after(
        &self,
        fills: &[(Instrument, i64, Price)],
    ) -> Result<(AccountSnapshot, AccountSnapshot), SimError> {
        let before = self.account_snapshot()?;
        let mut hypo = self.ledger.clone();
        for (inst, dq, px) in fills {
            hypo.apply(inst, *dq, *px, true)?;
        }
        let after = hypo.snapshot(&self.market, self.now, self.cfg.matching.initial_margin_pct)?;
        Ok((before, after))
    }

    fn commission(&self, inst: &Instrument, qty: i64) -> Money {
        match inst {
            Instrument::Option(_) => Money::from_raw(
                self.cfg
                    .matching
                    .option_commission
                    .raw()
                    .saturating_mul(qty),
            ),
            _ => Money::ZERO,
        }
    }

    /// Starts quote events for these instruments (and sends one quote each now).
    pub fn subscribe_quotes(&mut self, insts: &[Instrument]) -> Result<(), BrokerError> {
        self.check_link()?;
        for i in insts {
            match self.market.quote(i, self.now) {
                Ok(q) => {
                    self.subscribed.insert(i.clone());
                    self.emit(BrokerEvent::Quote(q));
                }
                Err(e) => {
                    return Err(BrokerError::Rejected {
                        code: e.code().into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    // ----- assignment ---------------------------------------------------------------------

    /// Test/demo hook: assigns (short) or exercises (long) `contracts` of the option position
    /// `instrument` now. Events go out with the next step.
    pub fn force_assignment(
        &mut self,
        instrument: &InstrumentId,
        contracts: i64,
    ) -> Result<(), SimError> {
        let inst = self
            .ledger
            .holdings
            .get(instrument)
            .filter(|h| h.qty != 0)
            .map(|h| h.instrument.clone())
            .ok_or_else(|| SimError::NoPosition(instrument.clone()))?;
        self.deliver_assignment(&inst, contracts)
    }

    fn deliver_assignment(&mut self, inst: &Instrument, contracts: i64) -> Result<(), SimError> {
        if contracts <= 0 {
            return Err(SimError::BadCount(contracts));
        }
        let o = inst
            .as_option()
            .ok_or_else(|| SimError::NotAnOption(inst.id()))?
            .clone();
        let q = self.ledger.qty(&inst.id());
        if q == 0 {
            return Err(SimError::NoPosition(inst.id()));
        }
        let n = contracts.min(q.abs());
        let sign = q.signum();
        let mult = i64::from(o.multiplier);
        let opt_pos = self.ledger.apply(inst, -sign * n, Price::ZERO, false)?;
        let stock_pos = match o.class {
            OptionClass::Equity => {
                let dir = if o.right == Right::Call { 1 } else { -1 };
                let shares = sign * n * mult * dir;
                let stock = Instrument::stock(&o.underlying);
                Some(self.ledger.apply(&stock, shares, o.strike, true)?)
            }
            OptionClass::BroadIndex | OptionClass::NarrowIndex => {
                let spot = self
                    .market
                    .spot(&o.underlying)
                    .ok_or_else(|| SimError::UnknownUnderlying(o.underlying.clone()))?;
                let cash = o.intrinsic(spot).notional(sign * n, o.multiplier)?;
                self.ledger.cash = self.ledger.cash.checked_add(cash)?;
                None
            }
        };
        let Some(stock_pos) = stock_pos else {
            self.emit(BrokerEvent::Position(opt_pos));
            self.emit_account();
            return Ok(());
        };
        // IB reports each contract's position on its own: the two updates come in either
        // order, seconds apart, the later one sometimes only in the next snapshot.
        let r = self.cfg.assignment.report.clone();
        let (first, later) = if chance(&mut self.rng, r.stock_first_prob) {
            (stock_pos, opt_pos)
        } else {
            (opt_pos, stock_pos)
        };
        self.emit(BrokerEvent::Position(first));
        let gap_ms = u64::try_from(r.max_gap.as_millis()).unwrap_or(u64::MAX);
        if gap_ms == 0 {
            self.emit(BrokerEvent::Position(later));
        } else {
            let gap = Duration::from_millis(self.rng.random_range(0..=gap_ms));
            if !chance(&mut self.rng, r.unreported_prob) {
                self.schedule(
                    self.now.plus(gap),
                    Action::Report {
                        instrument: later.instrument,
                    },
                );
            }
        }
        self.emit_account();
        Ok(())
    }

    fn deliver_expiry(&mut self, inst: &Instrument) -> Result<(), SimError> {
        let q = self.ledger.qty(&inst.id());
        if q != 0 {
            let p = self.ledger.apply(inst, -q, Price::ZERO, false)?;
            self.emit(BrokerEvent::Position(p));
            self.emit_account();
        }
        Ok(())
    }

    fn on_close(&mut self, date: chrono::NaiveDate) {
        // DAY orders expire.
        let day: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, w)| !w.status.is_terminal())
            .filter(|(_, w)| match &w.order {
                OpenOrderKind::Single(o) => o.tif == Tif::Day,
                OpenOrderKind::Combo(c) => c.tif == Tif::Day,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in day {
            self.finish(
                id,
                OrderStatus::Cancelled,
                Some(reason("sim.day_expired", "DAY order expired at the close")),
            );
        }
        // Orders of any TIF on a contract whose last trading day this was are cancelled, like
        // a broker does for an expired contract (a GTC order must not outlive its contract:
        // DST seed 4418, a stop's market exit placed after the close kept working).
        let expires = |i: &Instrument| i.as_option().is_some_and(|o| o.expiry <= date);
        let expired: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, w)| !w.status.is_terminal())
            .filter(|(_, w)| match &w.order {
                OpenOrderKind::Single(o) => expires(&o.instrument),
                OpenOrderKind::Combo(c) => c.legs.iter().any(|l| expires(&l.instrument)),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.finish(
                id,
                OrderStatus::Cancelled,
                Some(reason(
                    "sim.contract_expired",
                    "order cancelled: its contract expired at the close",
                )),
            );
        }
        let deliver_at = self.now.plus(self.cfg.assignment.delivery_delay);
        let holdings: Vec<(Instrument, i64)> = self
            .ledger
            .holdings
            .values()
            .filter(|h| h.qty != 0)
            .map(|h| (h.instrument.clone(), h.qty))
            .collect();
        let ac = self.cfg.assignment.clone();
        for (inst, qty) in holdings {
            let Some(o) = inst.as_option() else { continue };
            let Some(spot) = self.market.spot(&o.underlying) else {
                self.notice(
                    NOTICE_INTERNAL,
                    format!("no spot for {} at expiry", o.underlying),
                );
                continue;
            };
            let intrinsic = o.intrinsic(spot);
            if o.expiry <= date {
                let action = if intrinsic.raw() >= 100 {
                    Action::Assign {
                        instrument: inst.clone(),
                        contracts: qty.abs(),
                    }
                } else {
                    Action::Expire {
                        instrument: inst.clone(),
                    }
                };
                self.schedule(deliver_at, action);
                continue;
            }
            if qty >= 0
                || o.style != tradeguard_model::ExerciseStyle::American
                || !intrinsic.is_positive()
            {
                continue;
            }
            let Ok(theo) = self.market.theo(&inst, self.now) else {
                continue;
            };
            if theo.raw().saturating_sub(intrinsic.raw()) >= ac.deep_itm_max_time_value.raw() {
                continue;
            }
            let next_day = date.succ_opt().unwrap_or(date);
            let ex_div =
                o.right == Right::Call
                    && self.cfg.underlyings.iter().any(|u| {
                        u.symbol == o.underlying && u.ex_dividend_dates.contains(&next_day)
                    });
            let p = ac.early_prob_per_day * if ex_div { ac.ex_div_multiplier } else { 1.0 };
            if chance(&mut self.rng, p) {
                let n = self.rng.random_range(1..=qty.abs());
                self.schedule(
                    deliver_at,
                    Action::Assign {
                        instrument: inst.clone(),
                        contracts: n,
                    },
                );
            }
        }
    }

    // ----- arrivals and cancels -----------------------------------------------------------

    fn on_arrive(&mut self, id: OrderId) {
        let Some(w) = self.orders.get(&id) else {
            return;
        };
        if w.status.is_terminal() || w.arrived {
            return;
        }
        let order = w.order.clone();
        let tick = self.cfg.market.tick;
        let (insts, prices): (Vec<(Instrument, i64)>, Vec<Price>) = match &order {
            OpenOrderKind::Single(o) => {
                let prices = match o.order_type {
                    OrderType::Market => vec![],
                    OrderType::Limit { limit } => vec![limit],
                    OrderType::Stop { stop } => vec![stop],
                    OrderType::StopLimit { stop, limit } => vec![stop, limit],
                    OrderType::TrailingStop {
                        trail: Trail::Amount(a),
                    } => vec![a],
                    OrderType::TrailingStop {
                        trail: Trail::Percent(_),
                    } => vec![],
                };
                (vec![(o.instrument.clone(), o.side.sign() * o.qty)], prices)
            }
            OpenOrderKind::Combo(c) => {
                let prices = match c.order_type {
                    OrderType::Limit { limit } => vec![limit],
                    _ => vec![],
                };
                let legs = c
                    .legs
                    .iter()
                    .map(|l| {
                        (
                            l.instrument.clone(),
                            l.side.sign() * i64::from(l.ratio) * c.qty,
                        )
                    })
                    .collect();
                (legs, prices)
            }
        };
        let mut fills = Vec::new();
        for (inst, dq) in &insts {
            let side = if *dq > 0 { Side::Buy } else { Side::Sell };
            match self
                .market
                .quote(inst, self.now)
                .and_then(|q| touch(&q, side).ok_or_else(|| SimError::NoMarket(inst.id())))
            {
                Ok(px) => fills.push((inst.clone(), *dq, px)),
                Err(e) => {
                    return self.finish(
                        id,
                        OrderStatus::Rejected,
                        Some(reason("sim.unknown_instrument", e.to_string())),
                    );
                }
            }
        }
        // A futures order's prices are on its product's tick (0.25 for the index futures).
        let tick = insts
            .iter()
            .map(|(i, _)| crate::market::tick_of(i, tick))
            .max()
            .unwrap_or(tick);
        if let Some(bad) = prices.iter().find(|p| !p.is_on_tick(tick)) {
            let text = format!("price {bad} is not a multiple of the tick {tick}");
            return self.finish(
                id,
                OrderStatus::Rejected,
                Some(reason("sim.invalid_price", text)),
            );
        }
        // A contract past its last close no longer trades (see `on_close`).
        let now = self.now;
        if let Some(i) = insts.iter().map(|(i, _)| i).find(|i| {
            i.as_option()
                .is_some_and(|o| now >= calendar::close_of(o.expiry))
        }) {
            let text = format!("{} expired: it no longer trades", i.id());
            return self.finish(
                id,
                OrderStatus::Rejected,
                Some(reason("sim.contract_expired", text)),
            );
        }
        if chance(&mut self.rng, self.cfg.matching.random_reject_prob) {
            return self.finish(
                id,
                OrderStatus::Rejected,
                Some(reason("sim.random_reject", "order rejected by the venue")),
            );
        }
        match self.margin_before_after(&fills) {
            Ok((before, after)) => {
                if after.initial_margin > after.net_liquidation
                    && after.initial_margin > before.initial_margin
                {
                    let text = format!(
                        "initial margin {} would exceed net liquidation {}",
                        after.initial_margin, after.net_liquidation
                    );
                    return self.finish(
                        id,
                        OrderStatus::Rejected,
                        Some(reason("sim.insufficient_margin", text)),
                    );
                }
            }
            Err(e) => {
                return self.finish(
                    id,
                    OrderStatus::Rejected,
                    Some(reason(e.code(), e.to_string())),
                );
            }
        }
        if let Some(w) = self.orders.get_mut(&id) {
            w.arrived = true;
            if w.status == OrderStatus::PendingSubmit {
                w.status = OrderStatus::Submitted;
            }
            // Trailing reference: bid for sells, ask for buys (fills[0] holds the touch for the side).
            match (&w.order, fills.first()) {
                (OpenOrderKind::Single(o), Some((_, _, px)))
                    if matches!(o.order_type, OrderType::TrailingStop { .. }) =>
                {
                    w.trail_ref = Some(*px);
                }
                _ => {}
            }
        }
        self.emit_status(id);
    }

    fn on_cancel_arrive(&mut self, id: OrderId) {
        let Some(w) = self.orders.get(&id) else {
            return;
        };
        if w.status.is_terminal() {
            let text = format!("order {id} cannot be cancelled: it is {:?}", w.status);
            return self.notice(NOTICE_CANCEL_FAILED, text);
        }
        let arrived = w.arrived;
        if arrived && chance(&mut self.rng, self.cfg.faults.fill_after_cancel_prob) {
            self.fill_remaining_now(id);
            if self.orders.get(&id).is_some_and(|w| w.status.is_terminal()) {
                return self.notice(
                    NOTICE_CANCEL_FAILED,
                    format!("order {id} cannot be cancelled: it is Filled"),
                );
            }
        }
        if chance(&mut self.rng, self.cfg.faults.cancel_reject_prob) {
            if let Some(w) = self.orders.get_mut(&id) {
                w.status = w.status_before_cancel;
                w.reason = Some(reason(
                    "sim.cancel_rejected",
                    "cancel rejected by the venue",
                ));
            }
            self.emit_status(id);
            return self.notice(
                NOTICE_CANCEL_FAILED,
                format!("cancel of order {id} rejected"),
            );
        }
        self.finish(id, OrderStatus::Cancelled, None);
    }

    // ----- matching -----------------------------------------------------------------------

    fn can_match(&self, o: &OrderRequest) -> bool {
        if matches!(o.instrument, Instrument::Future { .. }) {
            return calendar::globex_open(self.now);
        }
        match self.session {
            Session::Regular => true,
            Session::Overnight => o.outside_rth && matches!(o.instrument, Instrument::Stock { .. }),
            Session::Closed => false,
        }
    }

    fn slip(&mut self, px: Price, side: Side, inst: &Instrument) -> Price {
        let max = self.cfg.matching.max_slippage_ticks;
        if max == 0 {
            return px;
        }
        let ticks = i64::from(self.rng.random_range(0..=max));
        let tick = crate::market::tick_of(inst, self.cfg.market.tick).raw();
        let raw = px.raw().saturating_add(side.sign() * ticks * tick);
        Price::from_raw(raw.max(tick))
    }

    fn fill_qty(&mut self, remaining: i64) -> i64 {
        let n = if remaining > 1 && chance(&mut self.rng, self.cfg.matching.partial_fill_prob) {
            self.rng.random_range(1..remaining)
        } else {
            remaining
        };
        match self.max_fill_qty {
            Some(cap) if cap > 0 => n.min(cap),
            _ => n,
        }
    }

    /// Test hook: every fill (single orders and combo packages) is at most `cap` units, so a
    /// test can force a deterministic schedule of partial fills (one fill per order per step).
    /// `None` removes the cap. Draws nothing from the RNG.
    pub fn set_max_fill_qty(&mut self, cap: Option<i64>) {
        self.max_fill_qty = cap;
    }

    /// Replaces the fault rates from now on (a fault storm starting or ending mid-run; the
    /// deterministic simulation suite's calm phase). A link already down or stalled recovers
    /// at its scheduled time. Draws nothing from the RNG.
    pub fn set_faults(&mut self, faults: FaultConfig) {
        self.cfg.faults = faults;
    }

    /// Replaces the random-rejection and partial-fill probabilities from now on. Draws nothing
    /// from the RNG.
    pub fn set_order_faults(&mut self, random_reject_prob: f64, partial_fill_prob: f64) {
        self.cfg.matching.random_reject_prob = random_reject_prob;
        self.cfg.matching.partial_fill_prob = partial_fill_prob;
    }

    fn match_orders(&mut self) {
        let ids: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, w)| w.arrived && !w.status.is_terminal())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(w) = self.orders.get(&id) else {
                continue;
            };
            match w.order.clone() {
                OpenOrderKind::Single(o) => self.match_single(id, &o),
                OpenOrderKind::Combo(c) => self.match_combo(id, &c),
            }
        }
    }

    fn match_single(&mut self, id: OrderId, o: &OrderRequest) {
        if !self.can_match(o) {
            return;
        }
        let q = match self.market.quote(&o.instrument, self.now) {
            Ok(q) => q,
            Err(e) => {
                return self.finish(
                    id,
                    OrderStatus::Cancelled,
                    Some(reason(e.code(), e.to_string())),
                );
            }
        };
        let buy = o.side == Side::Buy;
        // A side with no market: nothing to trigger on or fill against.
        let Some(touch) = touch(&q, o.side) else {
            return;
        };
        let Some(w) = self.orders.get_mut(&id) else {
            return;
        };
        // Trigger logic for stops.
        let stop_level = match o.order_type {
            OrderType::Stop { stop } | OrderType::StopLimit { stop, .. } => Some(stop),
            OrderType::TrailingStop { trail } => {
                let r = w.trail_ref.unwrap_or(touch);
                let r = if buy { r.min(touch) } else { r.max(touch) };
                w.trail_ref = Some(r);
                let dist = match trail {
                    Trail::Amount(a) => a,
                    Trail::Percent(bps) => {
                        r.mul_ratio(i64::from(bps), 10_000).unwrap_or(Price::MAX)
                    }
                };
                Some(Price::from_raw(if buy {
                    r.raw().saturating_add(dist.raw())
                } else {
                    r.raw().saturating_sub(dist.raw())
                }))
            }
            _ => None,
        };
        match stop_level {
            Some(stop) if !w.triggered => {
                let hit = if buy { touch >= stop } else { touch <= stop };
                if !hit {
                    return;
                }
                w.triggered = true;
            }
            _ => {}
        }
        let remaining = w.qty - w.filled;
        let limit = match o.order_type {
            OrderType::Limit { limit } | OrderType::StopLimit { limit, .. } => Some(limit),
            _ => None,
        };
        let price = match limit {
            Some(l) => {
                let crosses = if buy {
                    touch <= l
                } else {
                    touch >= l && touch.is_positive()
                };
                if !crosses {
                    return;
                }
                touch
            }
            None => self.slip(touch, o.side, &o.instrument),
        };
        let n = self.fill_qty(remaining);
        let liq = if limit.is_some() {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        };
        self.fill_single(id, o, n, price, liq);
    }

    fn fill_single(&mut self, id: OrderId, o: &OrderRequest, n: i64, price: Price, liq: Liquidity) {
        let pos = match self.book_fill(id, &o.instrument, o.side, n, price, liq) {
            Ok(p) => p,
            Err(e) => {
                return self.finish(
                    id,
                    OrderStatus::Cancelled,
                    Some(reason(e.code(), e.to_string())),
                );
            }
        };
        if let Some(w) = self.orders.get_mut(&id) {
            w.filled += n;
            w.notional += i128::from(price.raw()) * i128::from(n);
            w.status = if w.filled >= w.qty {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
        }
        self.emit_status(id);
        self.emit(BrokerEvent::Position(pos));
        self.emit_account();
    }

    /// Books one execution in the ledger and emits the Execution event.
    fn book_fill(
        &mut self,
        id: OrderId,
        inst: &Instrument,
        side: Side,
        n: i64,
        price: Price,
        liq: Liquidity,
    ) -> Result<Position, SimError> {
        let pos = self.ledger.apply(inst, side.sign() * n, price, true)?;
        let commission = self.commission(inst, n);
        self.ledger.cash = self.ledger.cash.checked_sub(commission)?;
        self.exec_seq += 1;
        let exec = Execution {
            exec_id: ExecId(format!("sim-{:08}", self.exec_seq)),
            order_id: Some(id),
            account: self.ledger.account.clone(),
            instrument: inst.clone(),
            side,
            qty: n,
            price,
            ts: self.now,
            commission: Some(commission),
            liquidity: Some(liq),
        };
        self.executions.push(exec.clone());
        self.emit(BrokerEvent::Execution(exec));
        Ok(pos)
    }

    fn leg_touches(&self, c: &ComboOrder) -> Result<Vec<Price>, SimError> {
        c.legs
            .iter()
            .map(|l| {
                self.market.quote(&l.instrument, self.now).and_then(|q| {
                    touch(&q, l.side).ok_or_else(|| SimError::NoMarket(l.instrument.id()))
                })
            })
            .collect()
    }

    fn match_combo(&mut self, id: OrderId, c: &ComboOrder) {
        if self.session != Session::Regular {
            return;
        }
        let touches = match self.leg_touches(c) {
            Ok(t) => t,
            Err(e) => {
                return self.finish(
                    id,
                    OrderStatus::Cancelled,
                    Some(reason(e.code(), e.to_string())),
                );
            }
        };
        let natural: i64 = c
            .legs
            .iter()
            .zip(&touches)
            .map(|(l, p)| l.side.sign() * i64::from(l.ratio) * p.raw())
            .sum();
        let Some(w) = self.orders.get(&id) else {
            return;
        };
        let (legs_done, remaining) = (w.legs_done, w.qty - w.filled);
        match c.order_type {
            OrderType::Limit { limit } if legs_done == 0 && natural > limit.raw() => return,
            _ => {}
        }
        if self.cfg.matching.combo_as_package {
            let units = self.fill_qty(remaining);
            let mut positions = Vec::new();
            for (l, px) in c.legs.iter().zip(&touches) {
                let n = units * i64::from(l.ratio);
                match self.book_fill(id, &l.instrument, l.side, n, *px, Liquidity::Taker) {
                    Ok(p) => positions.push(p),
                    Err(e) => {
                        return self.finish(
                            id,
                            OrderStatus::Cancelled,
                            Some(reason(e.code(), e.to_string())),
                        );
                    }
                }
            }
            if let Some(w) = self.orders.get_mut(&id) {
                w.filled += units;
                w.notional += i128::from(natural) * i128::from(units);
                w.status = if w.filled >= w.qty {
                    OrderStatus::Filled
                } else {
                    OrderStatus::PartiallyFilled
                };
            }
            self.emit_status(id);
            for p in positions {
                self.emit(BrokerEvent::Position(p));
            }
            self.emit_account();
        } else {
            // One leg per step at that leg's current touch: the venue legs in.
            let (l, px) = (&c.legs[legs_done], touches[legs_done]);
            let n = c.qty * i64::from(l.ratio);
            let pos = match self.book_fill(id, &l.instrument, l.side, n, px, Liquidity::Taker) {
                Ok(p) => p,
                Err(e) => {
                    return self.finish(
                        id,
                        OrderStatus::Cancelled,
                        Some(reason(e.code(), e.to_string())),
                    );
                }
            };
            let done = legs_done + 1 == c.legs.len();
            if let Some(w) = self.orders.get_mut(&id) {
                w.legs_done += 1;
                w.notional +=
                    i128::from(l.side.sign() * i64::from(l.ratio) * px.raw()) * i128::from(c.qty);
                if done {
                    w.filled = w.qty;
                    w.status = OrderStatus::Filled;
                }
            }
            if done {
                self.emit_status(id);
            }
            self.emit(BrokerEvent::Position(pos));
            self.emit_account();
        }
    }

    /// Fault "fill after cancel requested": the rest fills at the touch (limit orders at their limit).
    fn fill_remaining_now(&mut self, id: OrderId) {
        let Some(w) = self.orders.get(&id) else {
            return;
        };
        let remaining = w.qty - w.filled;
        match w.order.clone() {
            OpenOrderKind::Single(o) => {
                let Ok(q) = self.market.quote(&o.instrument, self.now) else {
                    return;
                };
                let Some(touch) = touch(&q, o.side) else {
                    return;
                };
                let price = match o.order_type {
                    OrderType::Limit { limit } | OrderType::StopLimit { limit, .. } => limit,
                    _ => touch,
                };
                self.fill_single(id, &o, remaining, price, Liquidity::Maker);
            }
            OpenOrderKind::Combo(c) => {
                let saved = self.cfg.matching.clone();
                self.cfg.matching.combo_as_package = true;
                self.cfg.matching.partial_fill_prob = 0.0;
                let session = self.session;
                self.session = Session::Regular;
                if let Some(w) = self.orders.get_mut(&id) {
                    w.legs_done = 0;
                }
                let mut c2 = c.clone();
                c2.order_type = OrderType::Market;
                self.match_combo(id, &c2);
                self.session = session;
                self.cfg.matching = saved;
            }
        }
    }

    // ----- time ---------------------------------------------------------------------------

    /// Advances virtual time in whole steps up to `until` and returns the delivered events.
    pub fn step(&mut self, until: Timestamp) -> Vec<BrokerEvent> {
        let mut out = Vec::new();
        let step = self.cfg.market.step.max(Duration::from_millis(1));
        let dt = step.as_secs_f64();
        while self.now.plus(step) <= until {
            let t = self.now.plus(step);
            let prev = self.session;
            let cur = calendar::session(t);
            self.market.step(t, dt, prev, cur, &mut self.rng);
            self.now = t;
            self.session = cur;
            if prev == Session::Regular && cur != Session::Regular {
                self.on_close(calendar::et_date(t));
            }
            self.link_faults(t);
            while let Some(entry) = self.actions.first_entry() {
                if entry.key().0 > t {
                    break;
                }
                match entry.remove() {
                    Action::Arrive(id) => self.on_arrive(id),
                    Action::CancelArrive(id) => self.on_cancel_arrive(id),
                    Action::Assign {
                        instrument,
                        contracts,
                    } => {
                        if let Err(e) = self.deliver_assignment(&instrument, contracts) {
                            self.notice(
                                NOTICE_INTERNAL,
                                format!(
                                    "assignment of {} skipped: {} ({})",
                                    instrument.id(),
                                    e,
                                    e.code()
                                ),
                            );
                        }
                    }
                    Action::Report { instrument } => {
                        let p = self.ledger.position(&instrument);
                        self.emit(BrokerEvent::Position(p));
                    }
                    Action::Expire { instrument } => {
                        if let Err(e) = self.deliver_expiry(&instrument) {
                            self.notice(
                                NOTICE_INTERNAL,
                                format!(
                                    "expiry of {} failed: {} ({})",
                                    instrument.id(),
                                    e,
                                    e.code()
                                ),
                            );
                        }
                    }
                }
            }
            self.match_orders();
            // Futures quote through Globex hours; the rest in regular hours only.
            let globex = self.market.has_futures() && calendar::globex_open(t);
            if (cur == Session::Regular || globex) && t >= self.next_quote_at {
                self.next_quote_at = t.plus(self.cfg.market.quote_interval);
                let subs: Vec<Instrument> = self
                    .subscribed
                    .iter()
                    .filter(|i| cur == Session::Regular || matches!(i, Instrument::Future { .. }))
                    .cloned()
                    .collect();
                for i in subs {
                    match self.market.quote(&i, t) {
                        Ok(q) => self.emit(BrokerEvent::Quote(q)),
                        Err(e) => self.notice(
                            NOTICE_INTERNAL,
                            format!("quote for {} failed: {}", i.id(), e),
                        ),
                    }
                }
            }
            if (cur == Session::Regular || globex) && t >= self.next_account_at {
                self.next_account_at = t.plus(self.cfg.market.account_interval);
                if self.is_connected() {
                    self.emit_account();
                }
            }
            out.extend(self.out.release(t, &self.cfg.faults, &mut self.rng));
        }
        out
    }

    fn link_faults(&mut self, t: Timestamp) {
        let f = self.cfg.faults.clone();
        match self.out.link {
            Link::Down { until: Some(u) } if t >= u => {
                self.out.link = Link::Up;
                self.out
                    .push_control(BrokerEvent::Connection(ConnectionState::Connecting), t);
                self.out
                    .push_control(BrokerEvent::Connection(ConnectionState::Connected), t);
            }
            Link::Stalled { until } if t >= until => self.out.link = Link::Up,
            Link::Up => {
                if chance(&mut self.rng, f.disconnect_prob) {
                    self.out.link = Link::Down {
                        until: Some(t.plus(f.reconnect_after)),
                    };
                    self.out.drop_in_flight();
                    let ev = BrokerEvent::Connection(ConnectionState::Disconnected {
                        reason: "sim: connection lost".into(),
                    });
                    self.out.push_control(ev, t);
                } else if chance(&mut self.rng, f.stall_prob) {
                    self.out.link = Link::Stalled {
                        until: t.plus(f.stall_duration),
                    };
                }
            }
            _ => {}
        }
    }
}

/// The price an order on `side` trades against: the ask for a buy, the bid for a sell.
fn touch(q: &Quote, side: Side) -> Option<Price> {
    match side {
        Side::Buy => q.ask,
        Side::Sell => q.bid,
    }
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "ask",
        Side::Sell => "bid",
    }
}
