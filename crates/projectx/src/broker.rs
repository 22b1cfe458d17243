//! [`ProjectxBroker`]: the [`Broker`] over ProjectX's REST API and its user and market hubs.
//!
//! The user hub pushes accounts, orders, positions and fills (`GatewayUserAccount|Order|
//! Position|Trade`), with no replay: after every (re)connect the adapter subscribes again and
//! re-reads positions, open orders and the fills since it last knew. The same reads run every
//! [`ProjectxSettings::poll`] whatever the hub says, so a feed that froze while "connected"
//! costs one poll, not the account. A hub is judged by its frames (SignalR pings come every
//! 15 s), never by the absence of events: a quiet market is not a dead hub.
//!
//! Fills are ProjectX's own trades (`T<id>`); a fill of an order whose placement answer has not
//! come yet waits for it (the event can come first), and a fill of an order that is not ours
//! (the firm's flatten, a trade from the web platform) is published as an execution of no
//! order of ours, booked as the broker reports it and never fought.

use crate::convert::{self, order_id_of_tag};
use crate::error::ProjectxError;
use crate::rest::Rest;
use crate::settings::ProjectxSettings;
use crate::signalr::{self, HubMessage};
use crate::wire::{
    Account, AccountsAnswer, Envelope, Order, OrdersAnswer, PlaceAnswer, PositionsAnswer, Trade,
    TradesAnswer,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tradeguard_model::hub::{EventHub, RestHealth, Tasks, position_changes};
use tradeguard_model::{
    AccountId, AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, Clock, ComboOrder,
    ConnectionState, EventStream, ExecId, Execution, Instrument, InstrumentId, MarginImpact, Money,
    Notice, OpenOrder, OpenOrderKind, OrderId, OrderRequest, OrderStatus, OrderType, OrderUpdate,
    Position, Price, Quote, StatusReason, Tif, Timestamp, Trail,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A notice: the firm locked the account (`canTrade` false) or unlocked it.
pub const ACCOUNT_LOCKED: i32 = -2001;

/// How long a fill of an unknown order waits for a placement answer before the orders are
/// searched for it.
const UNMATCHED_WAIT: Duration = Duration::from_secs(2);

struct Ours {
    order: OrderRequest,
    px: Option<i64>,
    last: Option<(OrderStatus, i64)>,
}

#[derive(Default)]
struct State {
    account: Option<Account>,
    ours: HashMap<OrderId, Ours>,
    by_px: HashMap<i64, OrderId>,
    /// Orders known not to be ours.
    foreign: HashSet<i64>,
    trades_seen: HashSet<i64>,
    /// Fills whose order is not known yet, with when they came.
    unmatched: Vec<(tokio::time::Instant, Trade)>,
    execs: Vec<Execution>,
    positions: BTreeMap<InstrumentId, Position>,
    positions_read: bool,
    /// When the last fill read was made (the next reads from there).
    trades_from: Option<Timestamp>,
}

struct Inner {
    settings: ProjectxSettings,
    /// The account's name (its own lock: read while `state` is held).
    name: Mutex<AccountId>,
    rest: Rest,
    hub: EventHub,
    clock: Arc<dyn Clock>,
    /// Whether the REST side answers (published as connection states).
    health: RestHealth,
    state: Mutex<State>,
    sync: tokio::sync::Mutex<()>,
    next_id: AtomicI64,
    quotes: watch::Sender<BTreeMap<String, Instrument>>,
    /// The last mid (or trade) of each contract: the open P&L in net liquidation.
    marks: Mutex<HashMap<InstrumentId, Price>>,
}

/// A ProjectX account (TopstepX and other prop firms) as a [`Broker`].
pub struct ProjectxBroker {
    inner: Arc<Inner>,
    /// The session's tasks.
    tasks: Tasks,
    /// Serialises connects.
    connecting: tokio::sync::Mutex<()>,
}

fn iso(ts: Timestamp) -> String {
    ts.to_datetime()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl ProjectxBroker {
    /// A broker for these settings (nothing is contacted before [`Broker::connect`]).
    pub fn new(settings: ProjectxSettings, clock: Arc<dyn Clock>) -> Result<Self, ProjectxError> {
        settings.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: Mutex::new(AccountId::new(settings.account.clone())),
                rest: Rest::new(settings.clone())?,
                settings,
                hub: EventHub::new(4096, clock.clone()),
                clock,
                health: RestHealth::default(),
                state: Mutex::default(),
                sync: tokio::sync::Mutex::new(()),
                next_id: AtomicI64::new(0),
                quotes: watch::Sender::new(BTreeMap::new()),
                marks: Mutex::default(),
            }),
            tasks: Tasks::default(),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The account guarded (its name), once connected.
    pub fn account_id(&self) -> AccountId {
        self.inner.account_id()
    }

    /// A connection test: logs in, and lists the user's accounts (name, whether it can trade).
    pub async fn test_connection(&self) -> Result<Vec<(String, bool)>, ProjectxError> {
        self.inner.rest.log_in().await?;
        let accts = self.inner.read_accounts().await?;
        self.inner.pick(&accts)?;
        Ok(accts.into_iter().map(|a| (a.name, a.can_trade)).collect())
    }
}

impl Inner {
    fn account_id(&self) -> AccountId {
        lock(&self.name).clone()
    }

    fn px_account(&self) -> Result<i64, ProjectxError> {
        lock(&self.state)
            .account
            .as_ref()
            .map(|a| a.id)
            .ok_or_else(|| ProjectxError::Transport("not connected".into()))
    }

    async fn read_accounts(&self) -> Result<Vec<Account>, ProjectxError> {
        let a: AccountsAnswer = self
            .rest
            .call("/api/Account/search", &json!({"onlyActiveAccounts": true}))
            .await?;
        Ok(a.accounts)
    }

    fn pick(&self, accts: &[Account]) -> Result<Account, ProjectxError> {
        let want = &self.settings.account;
        accts
            .iter()
            .find(|a| a.name == *want || a.id.to_string() == *want)
            .cloned()
            .ok_or_else(|| ProjectxError::UnknownAccount {
                account: want.clone(),
                known: accts
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The account as the venue has it now; a change of `canTrade` is said.
    fn note_account(&self, a: Account) {
        *lock(&self.name) = AccountId::new(a.name.clone());
        let before = lock(&self.state).account.replace(a.clone());
        let was = before.as_ref().map(|b| b.can_trade);
        if was != Some(a.can_trade) && (was.is_some() || !a.can_trade) {
            let text = if a.can_trade {
                format!("account {} can trade again", a.name)
            } else {
                format!(
                    "account {} is locked by the firm (canTrade false): no order can be placed, closes included",
                    a.name
                )
            };
            tracing::warn!("{text}");
            self.hub.notice(ACCOUNT_LOCKED, text);
        }
        self.hub.publish(BrokerEvent::Account(self.snapshot(&a)));
    }

    /// The account's values: the balance (realised) plus the open P&L of the positions at
    /// their last marks, as the firms measure their loss limits.
    fn snapshot(&self, a: &Account) -> AccountSnapshot {
        let marks = lock(&self.marks).clone();
        let open: f64 = lock(&self.state)
            .positions
            .iter()
            .filter_map(|(k, p)| {
                let m = marks.get(k)?;
                Some(
                    (m.to_f64() - p.avg_cost.to_f64())
                        * p.qty as f64
                        * f64::from(p.instrument.multiplier()),
                )
            })
            .sum();
        let nlv = Money::from_f64(a.balance + open).unwrap_or(Money::ZERO);
        AccountSnapshot {
            account: AccountId::new(a.name.clone()),
            net_liquidation: nlv,
            // Prop accounts carry no margin requirement; their limits are the firm's rules.
            maintenance_margin: Money::ZERO,
            initial_margin: Money::ZERO,
            excess_liquidity: nlv,
            buying_power: nlv,
            ts: self.clock.now(),
        }
    }

    fn position(&self, p: &crate::wire::Position) -> Result<Position, ProjectxError> {
        Ok(Position {
            account: self.account_id(),
            instrument: convert::instrument(&p.contract_id, None)?,
            qty: convert::signed(p.position_type, p.size),
            avg_cost: Price::from_f64(p.average_price).unwrap_or(Price::ZERO),
        })
    }

    async fn read_positions(&self) -> Result<Vec<Position>, ProjectxError> {
        let id = self.px_account()?;
        let a: PositionsAnswer = self
            .rest
            .call("/api/Position/searchOpen", &json!({"accountId": id}))
            .await?;
        a.positions
            .iter()
            .map(|p| self.position(p))
            .filter(|p| !matches!(p, Ok(p) if p.qty == 0))
            .collect()
    }

    async fn read_open_orders(&self) -> Result<Vec<Order>, ProjectxError> {
        let id = self.px_account()?;
        let a: OrdersAnswer = self
            .rest
            .call("/api/Order/searchOpen", &json!({"accountId": id}))
            .await?;
        Ok(a.orders)
    }

    async fn read_orders_since(&self, since: Timestamp) -> Result<Vec<Order>, ProjectxError> {
        let id = self.px_account()?;
        let a: OrdersAnswer = self
            .rest
            .call(
                "/api/Order/search",
                &json!({"accountId": id, "startTimestamp": iso(since)}),
            )
            .await?;
        Ok(a.orders)
    }

    async fn read_trades_since(&self, since: Timestamp) -> Result<Vec<Trade>, ProjectxError> {
        let id = self.px_account()?;
        let a: TradesAnswer = self
            .rest
            .call(
                "/api/Trade/search",
                &json!({"accountId": id, "startTimestamp": iso(since)}),
            )
            .await?;
        Ok(a.trades)
    }

    fn timestamp(&self, iso: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(iso)
            .ok()
            .and_then(|d| Timestamp::from_datetime(d.to_utc()).ok())
            .unwrap_or_else(|| self.clock.now())
    }

    /// An order's news: its status, for ours.
    fn absorb_order(&self, st: &mut State, o: &Order) -> Vec<BrokerEvent> {
        let local = st
            .by_px
            .get(&o.id)
            .copied()
            .or_else(|| order_id_of_tag(o.custom_tag.as_deref()));
        let Some(id) = local else {
            st.foreign.insert(o.id);
            return Vec::new();
        };
        st.by_px.insert(o.id, id);
        if let std::collections::hash_map::Entry::Vacant(slot) = st.ours.entry(id) {
            // Ours, placed by an earlier run: read back from ProjectX.
            match self.rebuild(id, o) {
                Some(order) => {
                    slot.insert(Ours {
                        order,
                        px: Some(o.id),
                        last: None,
                    });
                }
                None => return Vec::new(),
            }
        }
        let Some(status) = convert::status(o.status) else {
            return Vec::new();
        };
        let Some(ours) = st.ours.get_mut(&id) else {
            return Vec::new();
        };
        ours.px = Some(o.id);
        let filled = o.fill_volume.max(0);
        if ours.last == Some((status, filled)) {
            return Vec::new();
        }
        ours.last = Some((status, filled));
        vec![BrokerEvent::OrderStatus(OrderUpdate {
            order_id: id,
            status,
            filled,
            remaining: if status.is_terminal() {
                0
            } else {
                (ours.order.qty - filled).max(0)
            },
            avg_fill_price: o.filled_price.and_then(|p| Price::from_f64(p).ok()),
            reason: matches!(status, OrderStatus::Rejected).then(|| StatusReason {
                code: "projectx.rejected".into(),
                text: "ProjectX rejected the order".into(),
            }),
            ts: o
                .update_timestamp
                .as_deref()
                .map_or_else(|| self.clock.now(), |t| self.timestamp(t)),
        })]
    }

    fn rebuild(&self, id: OrderId, o: &Order) -> Option<OrderRequest> {
        let px = |v: Option<f64>| v.and_then(|v| Price::from_f64(v).ok());
        Some(OrderRequest {
            id,
            account: self.account_id(),
            instrument: convert::instrument(&o.contract_id, None).ok()?,
            side: convert::side_of(o.side)?,
            qty: o.size,
            order_type: match o.order_type {
                1 => OrderType::Limit {
                    limit: px(o.limit_price)?,
                },
                4 => OrderType::Stop {
                    stop: px(o.stop_price)?,
                },
                3 => OrderType::StopLimit {
                    stop: px(o.stop_price)?,
                    limit: px(o.limit_price)?,
                },
                _ => OrderType::Market,
            },
            tif: Tif::Gtc,
            outside_rth: true,
        })
    }

    /// A fill, once (by trade id). `None`: its order is not known yet.
    fn absorb_trade(&self, st: &mut State, t: &Trade) -> Option<Vec<BrokerEvent>> {
        if t.voided {
            if st.trades_seen.contains(&t.id) {
                self.hub.notice(
                    Notice::EXECUTION_CORRECTED,
                    format!("ProjectX voided fill {} ({} @ {})", t.id, t.size, t.price),
                );
            }
            return Some(Vec::new());
        }
        if st.trades_seen.contains(&t.id) {
            return Some(Vec::new());
        }
        let order_id = match st.by_px.get(&t.order_id) {
            Some(id) => Some(*id),
            None if st.foreign.contains(&t.order_id) => None,
            None => return None,
        };
        st.trades_seen.insert(t.id);
        let instrument = match convert::instrument(&t.contract_id, None) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(trade = t.id, "fill of an unreadable contract: {e}");
                self.hub.notice(
                    Notice::EXECUTION_CORRECTED,
                    format!("fill {} unreadable: {e}", t.id),
                );
                return Some(Vec::new());
            }
        };
        let e = Execution {
            exec_id: ExecId::new(format!("T{}", t.id)),
            order_id,
            account: self.account_id(),
            instrument,
            side: convert::side_of(t.side)?,
            qty: t.size,
            price: Price::from_f64(t.price).unwrap_or(Price::ZERO),
            ts: self.timestamp(&t.creation_timestamp),
            commission: Money::from_f64(t.fees).ok(),
            liquidity: None,
        };
        st.execs.push(e.clone());
        Some(vec![BrokerEvent::Execution(e)])
    }

    fn publish(&self, events: Vec<BrokerEvent>) {
        for e in events {
            self.hub.publish(e);
        }
    }

    /// Fills still waiting for their order: after [`UNMATCHED_WAIT`] the day's orders are
    /// searched; an order with our tag is adopted, any other is not ours.
    async fn resolve_unmatched(&self) -> Result<(), ProjectxError> {
        let stale = {
            let st = lock(&self.state);
            st.unmatched
                .iter()
                .any(|(at, _)| at.elapsed() >= UNMATCHED_WAIT)
        };
        if !stale {
            return Ok(());
        }
        let since = self.clock.now().minus(Duration::from_secs(24 * 3600));
        let orders = self.read_orders_since(since).await?;
        let events = {
            let mut st = lock(&self.state);
            let mut ev = Vec::new();
            let waiting: Vec<i64> = st.unmatched.iter().map(|(_, t)| t.order_id).collect();
            let mut status = Vec::new();
            for o in orders.iter().filter(|o| waiting.contains(&o.id)) {
                status.extend(self.absorb_order(&mut st, o));
            }
            for id in waiting {
                if !st.by_px.contains_key(&id) {
                    st.foreign.insert(id);
                }
            }
            ev.extend(self.replay_unmatched(&mut st));
            ev.extend(status);
            ev
        };
        self.publish(events);
        Ok(())
    }

    fn replay_unmatched(&self, st: &mut State) -> Vec<BrokerEvent> {
        let pending = std::mem::take(&mut st.unmatched);
        let mut ev = Vec::new();
        for (at, t) in pending {
            match self.absorb_trade(st, &t) {
                Some(e) => ev.extend(e),
                None => st.unmatched.push((at, t)),
            }
        }
        ev
    }

    /// Positions read now; their changes published (all of them the first time).
    fn positions_changed(&self, fresh: Vec<Position>) -> Vec<BrokerEvent> {
        let mut st = lock(&self.state);
        let all = !std::mem::replace(&mut st.positions_read, true);
        position_changes(&mut st.positions, fresh, all)
    }

    /// Everything, in order: the account, open orders, fills since the last read, positions.
    async fn sync_all(&self) -> Result<(), ProjectxError> {
        let _one = self.sync.lock().await;
        let mut pending_status: Vec<BrokerEvent> = Vec::new();
        let accts = self.read_accounts().await?;
        let acct = self.pick(&accts)?;
        self.note_account(acct);
        let orders = self.read_open_orders().await?;
        let events = {
            let mut st = lock(&self.state);
            let mut ev = Vec::new();
            for o in &orders {
                ev.extend(self.absorb_order(&mut st, o));
            }
            ev
        };
        self.publish(events);
        // Ours that were working and are not any more: finished between two reads (a frozen
        // feed says nothing); their last state is read.
        let gone: Vec<i64> = {
            let st = lock(&self.state);
            st.ours
                .values()
                .filter(|o| o.last.is_none_or(|(s, _)| !s.is_terminal()))
                .filter_map(|o| o.px)
                .filter(|px| !orders.iter().any(|w| w.id == *px))
                .collect()
        };
        if !gone.is_empty() {
            let since = self.clock.now().minus(Duration::from_secs(24 * 3600));
            let all = self.read_orders_since(since).await?;
            let events = {
                let mut st = lock(&self.state);
                let mut ev = Vec::new();
                for o in all.iter().filter(|o| gone.contains(&o.id)) {
                    ev.extend(self.absorb_order(&mut st, o));
                }
                ev
            };
            // After the fills below, so an order never says Filled before its fills.
            pending_status = events;
        }
        let now = self.clock.now();
        let from = lock(&self.state).trades_from;
        if let Some(from) = from {
            // A second of overlap: fills are deduplicated by id.
            let trades = self
                .read_trades_since(from.minus(Duration::from_secs(1)))
                .await?;
            let mut order_ids: Vec<i64> = Vec::new();
            let events = {
                let mut st = lock(&self.state);
                let mut ev = Vec::new();
                for t in &trades {
                    match self.absorb_trade(&mut st, t) {
                        Some(e) => ev.extend(e),
                        None => {
                            order_ids.push(t.order_id);
                            st.unmatched.push((tokio::time::Instant::now(), t.clone()));
                        }
                    }
                }
                ev
            };
            self.publish(events);
            // Fills of orders finished between two reads: their final status.
            if !order_ids.is_empty() {
                let done = self
                    .read_orders_since(from.minus(Duration::from_secs(3600)))
                    .await?;
                let events = {
                    let mut st = lock(&self.state);
                    let mut ev = Vec::new();
                    let mut status = Vec::new();
                    for o in done.iter().filter(|o| order_ids.contains(&o.id)) {
                        status.extend(self.absorb_order(&mut st, o));
                    }
                    ev.extend(self.replay_unmatched(&mut st));
                    ev.extend(status);
                    ev
                };
                self.publish(events);
            }
        } else {
            // At start: the day's fills are in the positions already.
            let trades = self
                .read_trades_since(now.minus(Duration::from_secs(24 * 3600)))
                .await?;
            let mut st = lock(&self.state);
            st.trades_seen.extend(trades.iter().map(|t| t.id));
        }
        lock(&self.state).trades_from = Some(now);
        self.publish(pending_status);
        self.resolve_unmatched().await?;
        let fresh = self.read_positions().await?;
        let ev = self.positions_changed(fresh);
        self.publish(ev);
        Ok(())
    }

    fn rest_result(&self, what: &str, r: Result<(), ProjectxError>) {
        let r = r.map_err(|e| (e.code(), e.to_string()));
        self.health.report(&self.hub, "ProjectX", what, r);
    }

    /// A hub event.
    fn on_event(&self, target: &str, arguments: &[Value]) -> Vec<BrokerEvent> {
        let mut ev = Vec::new();
        for (_action, v) in signalr::payloads(arguments) {
            match target {
                "GatewayUserAccount" => {
                    if let Ok(a) = serde_json::from_value::<Account>(v)
                        && a.name == self.account_id().0
                    {
                        self.note_account(a);
                    }
                }
                "GatewayUserOrder" => match serde_json::from_value::<Order>(v) {
                    Ok(o) => {
                        let mut st = lock(&self.state);
                        let status = self.absorb_order(&mut st, &o);
                        // Fills that waited for this order go first: never Filled before them.
                        ev.extend(self.replay_unmatched(&mut st));
                        ev.extend(status);
                    }
                    Err(e) => self.unreadable(target, &e),
                },
                "GatewayUserTrade" => match serde_json::from_value::<Trade>(v) {
                    Ok(t) => {
                        let mut st = lock(&self.state);
                        match self.absorb_trade(&mut st, &t) {
                            Some(e) => ev.extend(e),
                            None => st.unmatched.push((tokio::time::Instant::now(), t)),
                        }
                    }
                    Err(e) => self.unreadable(target, &e),
                },
                "GatewayUserPosition" => match serde_json::from_value::<crate::wire::Position>(v) {
                    Ok(p) => match self.position(&p) {
                        Ok(pos) => {
                            let mut st = lock(&self.state);
                            let k = pos.instrument.id();
                            let changed = st.positions.get(&k).is_none_or(|o| o.qty != pos.qty);
                            if pos.qty == 0 {
                                st.positions.remove(&k);
                            } else {
                                st.positions.insert(k, pos.clone());
                            }
                            if changed {
                                ev.push(BrokerEvent::Position(pos));
                            }
                        }
                        Err(e) => tracing::warn!("position of an unreadable contract: {e}"),
                    },
                    Err(e) => self.unreadable(target, &e),
                },
                _ => {}
            }
        }
        ev
    }

    fn unreadable(&self, target: &str, e: &serde_json::Error) {
        tracing::warn!(target, "unreadable hub record: {e}");
        self.hub.notice(
            Notice::EVENTS_DROPPED,
            format!("ProjectX sent an unreadable {target} record ({e}); the next read covers it"),
        );
    }

    fn adopt(&self, id: OrderId, px: i64) -> Vec<BrokerEvent> {
        let mut st = lock(&self.state);
        st.by_px.insert(px, id);
        st.foreign.remove(&px);
        if let Some(o) = st.ours.get_mut(&id) {
            o.px = Some(px);
        }
        self.replay_unmatched(&mut st)
    }

    /// The answer to a placement was lost: its tag is searched before anything else.
    async fn resolve_lost(&self, id: OrderId, why: &str) -> Result<(), BrokerError> {
        let tag = convert::tag(id);
        tracing::warn!(
            order = id.0,
            "placement answer lost ({why}); looking for tag {tag}"
        );
        let since = self.clock.now().minus(Duration::from_secs(3600));
        match self.read_orders_since(since).await {
            Ok(orders) => match orders
                .iter()
                .find(|o| o.custom_tag.as_deref() == Some(&tag))
            {
                Some(o) => {
                    let ev = self.adopt(id, o.id);
                    self.publish(ev);
                    let ev = {
                        let mut st = lock(&self.state);
                        self.absorb_order(&mut st, o)
                    };
                    self.publish(ev);
                    Ok(())
                }
                None => {
                    lock(&self.state).ours.remove(&id);
                    Err(BrokerError::Io(format!(
                        "{why}; the order is not at ProjectX (no order tagged {tag}), so it was not placed"
                    )))
                }
            },
            Err(e) => {
                self.hub.notice(
                    Notice::ORDER_OUTCOME_UNKNOWN,
                    format!("order {id}: {why}; whether ProjectX has it is unknown until the next read ({e})"),
                );
                Err(BrokerError::Timeout(format!(
                    "ProjectX's answer to order {id} ({why}); its outcome is read on the next poll"
                )))
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(hub: &str, token: &str) -> String {
    let base = if let Some(r) = hub.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = hub.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        hub.to_owned()
    };
    format!("{base}?access_token={token}")
}

/// Opens a hub: the socket, the handshake, and its answer.
async fn open_hub(inner: &Inner, url: &str) -> Result<Ws, ProjectxError> {
    let token = inner.rest.token().await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(url, &token))
        .await
        .map_err(|e| ProjectxError::Transport(format!("hub: {e}")))?;
    ws.send(Message::text(signalr::handshake()))
        .await
        .map_err(|e| ProjectxError::Transport(format!("hub handshake: {e}")))?;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| ProjectxError::Transport("hub: no handshake answer in 10 s".into()))?;
    match first {
        Some(Ok(Message::Text(t))) => match signalr::parse(&t).into_iter().next() {
            Some(Ok(HubMessage::Handshake { error: None })) => Ok(ws),
            Some(Ok(HubMessage::Handshake { error: Some(e) })) => Err(ProjectxError::Transport(
                format!("hub refused the handshake: {e}"),
            )),
            other => Err(ProjectxError::Malformed(format!(
                "hub handshake answer: {other:?}"
            ))),
        },
        other => Err(ProjectxError::Transport(format!(
            "hub closed at the handshake: {other:?}"
        ))),
    }
}

/// The user hub and the poll.
async fn run_user(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let s = &inner.settings;
    let mut poll = tokio::time::interval(s.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.tick().await;
    let mut ws: Option<Ws> = None;
    let mut delay = Duration::from_secs(1);
    let mut retry_at = tokio::time::Instant::now();
    let mut last_frame = tokio::time::Instant::now();
    let mut stalled = false;
    let mut next_invocation = 1u64;
    loop {
        if ws.is_none() && tokio::time::Instant::now() >= retry_at {
            let opened = async {
                let mut w = open_hub(&inner, &s.hosts.user_hub).await?;
                let id = inner.px_account()?;
                for (target, args) in [
                    ("SubscribeAccounts", vec![]),
                    ("SubscribeOrders", vec![json!(id)]),
                    ("SubscribePositions", vec![json!(id)]),
                    ("SubscribeTrades", vec![json!(id)]),
                ] {
                    w.send(Message::text(signalr::invocation(
                        target,
                        args,
                        Some(next_invocation),
                    )))
                    .await
                    .map_err(|e| ProjectxError::Transport(format!("hub subscribe: {e}")))?;
                    next_invocation += 1;
                }
                Ok::<_, ProjectxError>(w)
            };
            match opened.await {
                Ok(w) => {
                    tracing::info!("ProjectX user hub open and subscribed");
                    ws = Some(w);
                    last_frame = tokio::time::Instant::now();
                    delay = Duration::from_secs(1);
                    if stalled {
                        stalled = false;
                        inner
                            .hub
                            .publish(BrokerEvent::Connection(ConnectionState::Connected));
                    }
                    // No replay on the hub: whatever happened meanwhile is read.
                    let r = inner.sync_all().await;
                    inner.rest_result("read after the hub reopened", r);
                }
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "ProjectX user hub: {e}; again in {delay:?}"
                    );
                    retry_at = tokio::time::Instant::now() + delay;
                    delay = (delay * 2).min(Duration::from_secs(30));
                    if !stalled {
                        stalled = true;
                        inner
                            .hub
                            .publish(BrokerEvent::Connection(ConnectionState::Stalled {
                                silent_ms: last_frame.elapsed().as_millis() as u64,
                            }));
                    }
                }
            }
        }
        let wake = if ws.is_none() {
            retry_at
        } else {
            last_frame + s.stall
        };
        let open = ws.is_some();
        let next = async {
            match ws.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => {
                if let Some(mut w) = ws.take() { let _ = w.close(None).await; }
                return;
            }
            m = next => match m {
                Some(Ok(Message::Text(t))) => {
                    last_frame = tokio::time::Instant::now();
                    tracing::trace!(frame = %t.as_str(), "user hub");
                    let mut events = Vec::new();
                    let mut closed = false;
                    for rec in signalr::parse(&t) {
                        match rec {
                            Ok(HubMessage::Invocation { target, .. }) if target == "GatewayLogout" => {
                                // The session ended (token expired or replaced): a fresh log-in,
                                // then the hub again with the new token in its URL.
                                tracing::warn!("ProjectX logged the session out; logging in again");
                                inner.rest.forget_token();
                                closed = true;
                            }
                            Ok(HubMessage::Invocation { target, arguments, .. }) => {
                                events.extend(inner.on_event(&target, &arguments));
                            }
                            Ok(HubMessage::Completion { error: Some(e), invocation_id }) => {
                                tracing::error!(invocation_id, "ProjectX hub refused a subscription: {e}");
                                inner.hub.notice(Notice::EVENTS_DROPPED, format!("ProjectX hub refused a subscription: {e}; the poll still reads the account"));
                            }
                            Ok(HubMessage::Close { error }) => {
                                tracing::warn!(?error, "ProjectX hub closed the connection");
                                closed = true;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("unreadable hub frame: {e}");
                                inner.hub.notice(Notice::EVENTS_DROPPED, format!("ProjectX hub sent an unreadable record ({e}); reading the account instead"));
                                let r = inner.sync_all().await;
                                inner.rest_result("read", r);
                            }
                        }
                    }
                    inner.publish(events);
                    if closed {
                        ws = None;
                        retry_at = tokio::time::Instant::now();
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tracing::warn!("ProjectX user hub lost; reopening and re-subscribing");
                    ws = None;
                    retry_at = tokio::time::Instant::now();
                }
                Some(Ok(_)) => last_frame = tokio::time::Instant::now(),
            },
            _ = tokio::time::sleep_until(wake) => {
                if open {
                    // No frame at all, not even SignalR's pings: the connection is dead even
                    // if the socket says otherwise.
                    let silent = last_frame.elapsed();
                    tracing::warn!(silent_ms = silent.as_millis() as u64, "ProjectX user hub silent; reopening");
                    if !stalled {
                        stalled = true;
                        inner.hub.publish(BrokerEvent::Connection(ConnectionState::Stalled { silent_ms: silent.as_millis() as u64 }));
                    }
                    if let Some(mut w) = ws.take() { let _ = w.close(None).await; }
                    retry_at = tokio::time::Instant::now();
                }
            }
            _ = ping.tick() => {
                if let Some(w) = ws.as_mut() && w.send(Message::text(signalr::ping())).await.is_err() {
                    ws = None;
                    retry_at = tokio::time::Instant::now();
                }
            }
            _ = poll.tick() => {
                let r = inner.sync_all().await;
                inner.rest_result("poll", r);
            }
        }
    }
}

/// The market hub: quotes of the subscribed contracts.
async fn run_market(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut contracts = inner.quotes.subscribe();
    let mut delay = Duration::from_secs(1);
    loop {
        if contracts.borrow_and_update().is_empty() {
            tokio::select! {
                _ = stop.changed() => return,
                r = contracts.changed() => if r.is_err() { return } else { continue },
            }
        }
        let mut ws = match open_hub(&inner, &inner.settings.hosts.market_hub).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "ProjectX market hub: {e}; again in {delay:?}"
                );
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        delay = Duration::from_secs(1);
        let mut subscribed: HashSet<String> = HashSet::new();
        let mut lost = false;
        loop {
            let want: Vec<String> = contracts
                .borrow()
                .keys()
                .filter(|c| !subscribed.contains(*c))
                .cloned()
                .collect();
            for c in &want {
                if ws
                    .send(Message::text(signalr::invocation(
                        "SubscribeContractQuotes",
                        vec![json!(c)],
                        None,
                    )))
                    .await
                    .is_err()
                {
                    lost = true;
                }
                subscribed.insert(c.clone());
            }
            if lost {
                break;
            }
            tokio::select! {
                _ = stop.changed() => { let _ = ws.close(None).await; return; }
                r = contracts.changed() => if r.is_err() { return },
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        for rec in signalr::parse(&t).into_iter().flatten() {
                            if let HubMessage::Invocation { target, arguments, .. } = rec
                                && target == "GatewayQuote"
                                && let Some(q) = market_quote(&inner, &arguments)
                            {
                                if let Some(m) = q.mid().or(q.last) {
                                    lock(&inner.marks).insert(q.instrument.id(), m);
                                }
                                inner.hub.publish(BrokerEvent::Quote(q));
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => lost = true,
                    Some(Ok(_)) => {}
                }
            }
            if lost {
                tracing::warn!("ProjectX market hub lost; reopening");
                break;
            }
        }
    }
}

fn side_price(v: Option<f64>) -> Option<Price> {
    v.filter(|x| x.is_finite() && *x > 0.0)
        .and_then(|x| Price::from_f64(x).ok())
}

/// `GatewayQuote(contractId, quote)`.
fn market_quote(inner: &Inner, arguments: &[Value]) -> Option<Quote> {
    let contract = arguments.first()?.as_str()?;
    let instrument = inner.quotes.borrow().get(contract).cloned()?;
    let (_, body) = signalr::payloads(&arguments[1..]).into_iter().next()?;
    let q: crate::wire::GatewayQuote = serde_json::from_value(body).ok()?;
    Some(Quote {
        instrument,
        bid: side_price(q.best_bid),
        ask: side_price(q.best_ask),
        last: side_price(q.last_price),
        bid_size: 0,
        ask_size: 0,
        greeks: None,
        underlying_price: None,
        ts: inner.clock.now(),
    })
}

#[async_trait::async_trait]
impl Broker for ProjectxBroker {
    fn name(&self) -> &str {
        "projectx"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_combos: false,
            what_if: false,
            trailing_stops: true,
            outside_rth: true,
            simulated: false,
        }
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        let _one = self.connecting.lock().await;
        if self.tasks.running().await {
            return Ok(());
        }
        let inner = &self.inner;
        inner
            .hub
            .publish(BrokerEvent::Connection(ConnectionState::Connecting));
        let first = async {
            inner.rest.log_in().await?;
            let accts = inner.read_accounts().await?;
            let a = inner.pick(&accts)?;
            *lock(&inner.name) = AccountId::new(a.name.clone());
            lock(&inner.state).account = Some(a);
            inner.sync_all().await
        };
        if let Err(e) = first.await {
            inner
                .hub
                .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                    reason: format!("[{}] {e}", e.code()),
                }));
            return Err(e.into());
        }
        let highest = lock(&inner.state)
            .ours
            .keys()
            .map(|o| o.0)
            .max()
            .unwrap_or(0);
        inner.next_id.fetch_max(
            inner.clock.now().millis().max(highest + 1),
            Ordering::SeqCst,
        );
        self.tasks
            .start(|rx| {
                vec![
                    tokio::spawn(run_user(inner.clone(), rx.clone())),
                    tokio::spawn(run_market(inner.clone(), rx)),
                ]
            })
            .await;
        inner
            .hub
            .publish(BrokerEvent::Connection(ConnectionState::Connected));
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), BrokerError> {
        if self.tasks.stop().await {
            self.inner
                .hub
                .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                    reason: "disconnected".into(),
                }));
        }
        Ok(())
    }

    fn events(&self) -> EventStream {
        self.inner.hub.subscribe()
    }

    fn connection(&self) -> Option<ConnectionState> {
        self.inner.hub.connection()
    }

    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        if !self.tasks.running().await {
            return Err(BrokerError::NotConnected);
        }
        Ok(OrderId(self.inner.next_id.fetch_add(1, Ordering::SeqCst)))
    }

    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError> {
        order.validate()?;
        if !self.tasks.running().await {
            return Err(BrokerError::NotConnected);
        }
        let inner = &self.inner;
        let contract = convert::contract_id(&order.instrument)?;
        let account = inner.px_account()?;
        let px = |p: Price| p.to_f64();
        let (kind, limit, stop, trail) = match order.order_type {
            OrderType::Market => (2, None, None, None),
            OrderType::Limit { limit } => (1, Some(px(limit)), None, None),
            OrderType::Stop { stop } => (4, None, Some(px(stop)), None),
            // Type 3 is not a documented request value.
            OrderType::StopLimit { .. } => {
                return Err(BrokerError::Unsupported(
                    "ProjectX takes market, limit, stop and trailing-stop orders, not stop-limit"
                        .into(),
                ));
            }
            OrderType::TrailingStop {
                trail: Trail::Amount(a),
            } => (5, None, None, Some(px(a))),
            OrderType::TrailingStop { .. } => {
                return Err(BrokerError::Unsupported(
                    "ProjectX trails by a price distance, not a percentage".into(),
                ));
            }
        };
        let body = json!({
            "accountId": account,
            "contractId": contract,
            "type": kind,
            "side": convert::side_code(order.side),
            "size": order.qty,
            "limitPrice": limit,
            "stopPrice": stop,
            "trailPrice": trail,
            "customTag": convert::tag(order.id),
        });
        lock(&inner.state).ours.insert(
            order.id,
            Ours {
                order: order.clone(),
                px: None,
                last: None,
            },
        );
        let sent: Result<PlaceAnswer, ProjectxError> =
            inner.rest.call("/api/Order/place", &body).await;
        match sent {
            Ok(PlaceAnswer {
                order_id: Some(px_id),
                ..
            }) => {
                let ev = inner.adopt(order.id, px_id);
                inner.publish(ev);
                Ok(())
            }
            Ok(_) => {
                inner
                    .resolve_lost(order.id, "ProjectX's answer had no order id")
                    .await
            }
            // OrderPending, UnknownError or a code this adapter does not know: the order may
            // exist. Looked for by its tag, never taken for a rejection.
            Err(ProjectxError::Refused { code, message, .. })
                if !convert::place_refusal_is_final(code) =>
            {
                let why = format!("ProjectX answered error code {code} ({message})");
                inner.resolve_lost(order.id, &why).await
            }
            Err(
                e @ (ProjectxError::Refused { .. }
                | ProjectxError::Unauthorized(_)
                | ProjectxError::RateLimited { .. }),
            ) => {
                lock(&inner.state).ours.remove(&order.id);
                // Sent even when the account was last seen locked (it may have been unlocked
                // since: a close is never refused on a stale flag); a refusal then says why.
                let locked = lock(&inner.state)
                    .account
                    .as_ref()
                    .filter(|a| !a.can_trade)
                    .map(|a| a.name.clone());
                match (e, locked) {
                    (ProjectxError::Refused { message, .. }, Some(name)) => {
                        Err(ProjectxError::Locked(format!("{name} ({message})")).into())
                    }
                    (e, _) => Err(e.into()),
                }
            }
            Err(e) => inner.resolve_lost(order.id, &e.to_string()).await,
        }
    }

    async fn place_combo(&self, _order: &ComboOrder) -> Result<(), BrokerError> {
        Err(BrokerError::Unsupported(
            "ProjectX has no multi-leg orders: legs go out one by one".into(),
        ))
    }

    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError> {
        let px = lock(&self.inner.state).ours.get(&id).and_then(|o| o.px);
        let Some(px) = px else {
            return Err(BrokerError::UnknownOrder(id));
        };
        let account = self.inner.px_account()?;
        let r: Result<Envelope, ProjectxError> = self
            .inner
            .rest
            .call(
                "/api/Order/cancel",
                &json!({"accountId": account, "orderId": px}),
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                // A refusal usually means the order is already over: its state says how.
                let o = self
                    .inner
                    .read_orders_since(self.inner.clock.now().minus(Duration::from_secs(24 * 3600)))
                    .await
                    .ok()
                    .and_then(|v| v.into_iter().find(|o| o.id == px));
                match o {
                    Some(o) if convert::status(o.status).is_some_and(OrderStatus::is_terminal) => {
                        let ev = {
                            let mut st = lock(&self.inner.state);
                            self.inner.absorb_order(&mut st, &o)
                        };
                        self.inner.publish(ev);
                        Ok(())
                    }
                    _ => Err(e.into()),
                }
            }
        }
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        Ok(self.inner.read_positions().await?)
    }

    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        let orders = self.inner.read_open_orders().await?;
        let mut out = Vec::new();
        let mut st = lock(&self.inner.state);
        for o in &orders {
            let Some(status) = convert::status(o.status) else {
                continue;
            };
            if status.is_terminal() {
                continue;
            }
            let Some(id) = st
                .by_px
                .get(&o.id)
                .copied()
                .or_else(|| order_id_of_tag(o.custom_tag.as_deref()))
            else {
                continue;
            };
            let order = match st.ours.get(&id) {
                Some(x) => x.order.clone(),
                None => match self.inner.rebuild(id, o) {
                    Some(r) => r,
                    None => continue,
                },
            };
            st.by_px.insert(o.id, id);
            out.push(OpenOrder {
                status: OrderUpdate {
                    order_id: id,
                    status,
                    filled: o.fill_volume,
                    remaining: (order.qty - o.fill_volume).max(0),
                    avg_fill_price: None,
                    reason: None,
                    ts: self.inner.clock.now(),
                },
                order: OpenOrderKind::Single(order),
            });
        }
        Ok(out)
    }

    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        let trades = self.inner.read_trades_since(since).await?;
        let orders = self
            .inner
            .read_orders_since(since)
            .await
            .unwrap_or_default();
        let st = lock(&self.inner.state);
        let mut out = Vec::new();
        for t in trades.iter().filter(|t| !t.voided) {
            let order_id = st.by_px.get(&t.order_id).copied().or_else(|| {
                orders
                    .iter()
                    .find(|o| o.id == t.order_id)
                    .and_then(|o| order_id_of_tag(o.custom_tag.as_deref()))
            });
            let (Ok(instrument), Some(side)) = (
                convert::instrument(&t.contract_id, None),
                convert::side_of(t.side),
            ) else {
                continue;
            };
            out.push(Execution {
                exec_id: ExecId::new(format!("T{}", t.id)),
                order_id,
                account: self.inner.account_id(),
                instrument,
                side,
                qty: t.size,
                price: Price::from_f64(t.price).unwrap_or(Price::ZERO),
                ts: self.inner.timestamp(&t.creation_timestamp),
                commission: Money::from_f64(t.fees).ok(),
                liquidity: None,
            });
        }
        Ok(out)
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let accts = self.inner.read_accounts().await?;
        let a = self.inner.pick(&accts)?;
        Ok(self.inner.snapshot(&a))
    }

    async fn what_if(&self, _order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        Ok(None)
    }

    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError> {
        let mut add = Vec::new();
        for i in instruments {
            if matches!(i, Instrument::Future { .. }) {
                add.push((convert::contract_id(i)?, i.clone()));
            }
        }
        self.inner.quotes.send_modify(|m| m.extend(add));
        Ok(())
    }
}
