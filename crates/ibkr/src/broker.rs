//! [`IbBroker`]: the [`Broker`] implementation over `ibapi`, with the session supervisor that
//! reconnects, resubscribes and reconciles.

use crate::convert;
use crate::error::IbError;
use crate::settings::IbSettings;
use crate::tracker::Tracker;
use futures::StreamExt;
use ibapi::accounts::{AccountSummaryResult, PositionUpdate};
use ibapi::contracts::tick_types::TickType;
use ibapi::market_data::realtime::TickTypes;
use ibapi::orders::{
    ExecutionFilter, Executions, OrderStatusKind, OrderUpdate as IbOrderUpdate, Orders, PlaceOrder,
};
use ibapi::subscriptions::SubscriptionItem;
use ibapi::{Client, Notice as IbNotice, NoticeCategory, RateLimiter};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tradeguard_model::hub::EventHub;
use tradeguard_model::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, Clock, ComboOrder,
    ConnectionState, EventStream, Execution, Greeks, Instrument, InstrumentId, MarginImpact, Money,
    OpenOrder, OpenOrderKind, OrderId, OrderRequest, OrderStatus, OrderUpdate, Position, Quote,
    StatusReason, Timestamp,
};

/// Market-data notices that mean no live quotes for the instrument: 354 not subscribed, 10089
/// / 10090 / 10091 more subscriptions needed, 10167 / 10168 delayed data only (or none),
/// 10186 not subscribed to delayed data, 10197 no data during a competing live session
/// (TWS API error codes: <https://www.interactivebrokers.com/campus/ibkr-api-page/tws-api-error-codes/>).
const NO_LIVE_DATA: [i32; 8] = [354, 10089, 10090, 10091, 10167, 10168, 10186, 10197];

/// How long an order may stay `ApiCancelled` (our cancel sent before IB acknowledged the
/// order) with no later word before the cancel is asked again for IB's final answer.
const API_CANCEL_RECHECK: Duration = Duration::from_secs(2);

/// Account-summary tags read for [`AccountSnapshot`].
const SUMMARY_TAGS: [&str; 5] = [
    "NetLiquidation",
    "MaintMarginReq",
    "InitMarginReq",
    "ExcessLiquidity",
    "BuyingPower",
];

/// Daily, unrealized and realized P&L of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IbPnl {
    /// Today's P&L.
    pub daily: Money,
    /// Unrealized P&L, when IB reports it.
    pub unrealized: Option<Money>,
    /// Realized P&L, when IB reports it.
    pub realized: Option<Money>,
}

/// An IB contract resolved for an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbContract {
    /// The instrument.
    pub instrument: Instrument,
    /// IB contract id.
    pub con_id: i32,
    /// Minimum tick.
    pub min_tick: tradeguard_model::Price,
}

/// TWS API message codes below 200 that reject an order: they arrive as a notice with the
/// order's id and no order status, and the order is not working
/// (<https://www.interactivebrokers.com/campus/ibkr-api-page/tws-api-error-codes/>): 103 duplicate
/// order id, 105 a modification does not match the order, 106/107 cannot transmit, 109 price out
/// of the percentage range, 110 price not on the minimum tick, 111 time in force and order type
/// incompatible, 113 MOC/LOC need DAY, 116 cannot trade on the exchange, 117 block size,
/// 118/119 VWAP routing, 131 short sale rejected, 133 submit failed, 140/141 malformed size or
/// price, 154 halted security. Codes 200–399 are IB's own rejection band.
pub(crate) const ORDER_REJECTIONS_BELOW_200: [i32; 17] = [
    103, 105, 106, 107, 109, 110, 111, 113, 116, 117, 118, 119, 131, 133, 140, 141, 154,
];

/// What a refused cancel says about the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelRefused {
    /// 10147 (not found) or 10148 "… state: Cancelled/Inactive": nothing is working.
    NotWorking,
    /// 10148 in any other state (Filled, PendingCancel, …): the order's own status and fills
    /// report the outcome; ending it here could send a second exit while it still fills.
    Pending,
}

fn cancel_refused_state(code: i32, message: &str) -> Option<CancelRefused> {
    let state = message.rsplit("state:").next().unwrap_or("").trim();
    match code {
        10147 => Some(CancelRefused::NotWorking),
        10148
            if ["Cancelled", "ApiCancelled", "Inactive"]
                .iter()
                .any(|s| state.trim_end_matches('.') == *s) =>
        {
            Some(CancelRefused::NotWorking)
        }
        10148 => Some(CancelRefused::Pending),
        _ => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum SessionEnd {
    Stop,
    Lost(String),
}

struct Supervisor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    settings: IbSettings,
    clock: Arc<dyn Clock>,
    hub: EventHub,
    client: Mutex<Option<Arc<Client>>>,
    account: Mutex<String>,
    tracker: Mutex<Tracker>,
    next_id: AtomicI64,
    floor: AtomicI64,
    placed: Mutex<HashMap<OrderId, OpenOrderKind>>,
    positions: Mutex<BTreeMap<InstrumentId, Position>>,
    positions_ready: watch::Sender<bool>,
    /// The snapshot being read (from a new positions subscription until its end): it replaces
    /// the cache then, so a position closed while nobody heard is not kept.
    positions_snapshot: Mutex<Option<BTreeMap<InstrumentId, Position>>>,
    con_ids: Mutex<HashMap<Instrument, i32>>,
    quotes: Mutex<Vec<Instrument>>,
    quote_tasks: Mutex<Vec<JoinHandle<()>>>,
    supervisor: Mutex<Option<Supervisor>>,
    session_start: Mutex<Option<Timestamp>>,
    /// The midnight whose history gap was last announced (once per day, not per query).
    history_gap_told: Mutex<Option<Timestamp>>,
    /// Bumped at the start of every reconciliation; each order placed remembers the value then,
    /// so a reconciliation judges only orders placed before it began (one placed while it runs
    /// is not in its snapshots yet, and not lost).
    epoch: std::sync::atomic::AtomicU64,
    /// A reconciliation is waiting to run (after IB dropped requests, or one that failed).
    reconcile_scheduled: std::sync::atomic::AtomicBool,
    placed_in: Mutex<HashMap<OrderId, u64>>,
}

/// Interactive Brokers through IB Gateway / TWS.
///
/// Create with [`IbBroker::new`], then [`Broker::connect`]. The connection is supervised: when it
/// drops, the broker publishes `Connection(Connecting)`, reconnects with backoff, resubscribes
/// positions, order updates and quotes, reconciles (executions since the last one seen, open
/// and completed orders) and publishes `Connection(Connected)`.
#[derive(Clone)]
pub struct IbBroker {
    inner: Arc<Inner>,
}

impl IbBroker {
    /// A broker for these settings (validated on connect).
    pub fn new(settings: IbSettings, clock: Arc<dyn Clock>) -> Self {
        let hub = EventHub::new(4096, clock.clone());
        let (positions_ready, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                settings,
                clock,
                hub,
                client: Mutex::new(None),
                account: Mutex::new(String::new()),
                tracker: Mutex::new(Tracker::default()),
                next_id: AtomicI64::new(0),
                floor: AtomicI64::new(0),
                placed: Mutex::new(HashMap::new()),
                positions: Mutex::new(BTreeMap::new()),
                positions_snapshot: Mutex::new(None),
                positions_ready,
                con_ids: Mutex::new(HashMap::new()),
                quotes: Mutex::new(Vec::new()),
                quote_tasks: Mutex::new(Vec::new()),
                supervisor: Mutex::new(None),
                history_gap_told: Mutex::new(None),
                epoch: std::sync::atomic::AtomicU64::new(0),
                reconcile_scheduled: std::sync::atomic::AtomicBool::new(false),
                placed_in: Mutex::new(HashMap::new()),
                session_start: Mutex::new(None),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &IbSettings {
        &self.inner.settings
    }

    /// Order ids handed out are always above `highest_stored` (the highest id the store knows):
    /// after a gateway restart IB's counter can roll back below ids already used.
    pub fn set_order_id_floor(&self, highest_stored: i64) {
        self.inner.floor.fetch_max(highest_stored, Ordering::SeqCst);
        self.inner
            .next_id
            .fetch_max(highest_stored.saturating_add(1), Ordering::SeqCst);
    }

    /// The account in use (settings, else the first managed account).
    pub fn account_id(&self) -> String {
        lock(&self.inner.account).clone()
    }

    /// Connects like [`Broker::connect`] but returns the typed [`IbError`].
    pub async fn connect_ib(&self) -> Result<(), IbError> {
        if lock(&self.inner.supervisor).is_some() {
            return Ok(());
        }
        self.inner.settings.validate()?;
        self.inner
            .hub
            .publish(BrokerEvent::Connection(ConnectionState::Connecting));
        let client = match self.inner.open_client().await {
            Ok(c) => c,
            Err(e) => {
                self.inner
                    .hub
                    .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                        reason: e.to_string(),
                    }));
                return Err(e);
            }
        };
        *lock(&self.inner.session_start) = Some(self.inner.clock.now());
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        let task = tokio::spawn(supervise(inner, client, stop_rx, ready_tx));
        *lock(&self.inner.supervisor) = Some(Supervisor { stop, task });
        match ready_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.disconnect_ib().await;
                Err(e)
            }
            Err(_) => Err(IbError::NotConnected),
        }
    }

    /// Disconnects and stops reconnecting.
    pub async fn disconnect_ib(&self) {
        let sup = lock(&self.inner.supervisor).take();
        if let Some(sup) = sup {
            let _ = sup.stop.send(true);
            let _ = sup.task.await;
            self.inner
                .hub
                .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                    reason: "disconnected by request".into(),
                }));
        }
    }

    /// Current daily / unrealized / realized P&L of the account.
    pub async fn pnl(&self) -> Result<IbPnl, IbError> {
        let client = self.inner.client()?;
        let account = ibapi::accounts::types::AccountId::from(self.account_id());
        let mut sub = client.pnl(&account, None).await?;
        let t = self.inner.settings.request_timeout;
        let first = tokio::time::timeout(t, async {
            loop {
                match sub.next().await {
                    Some(Ok(SubscriptionItem::Data(p))) => return Ok(p),
                    Some(Ok(SubscriptionItem::Notice(n))) => self.inner.forward_notice(&n),
                    Some(Err(e)) => return Err(IbError::from(e)),
                    None => return Err(IbError::NotConnected),
                }
            }
        })
        .await
        .map_err(|_| IbError::Timeout("PnL".into()))??;
        Ok(IbPnl {
            daily: convert::money(first.daily_pnl)?,
            unrealized: first.unrealized_pnl.map(convert::money).transpose()?,
            realized: first.realized_pnl.map(convert::money).transpose()?,
        })
    }

    /// Contract details for an instrument, or for a partial option (strike 0 and/or no right is
    /// not expressible in the model, so use [`IbBroker::option_chain`] for chains).
    pub async fn contract_details(&self, i: &Instrument) -> Result<Vec<IbContract>, IbError> {
        let c = convert::contract(i)?;
        self.inner.details(&c).await
    }

    /// Every listed option of `underlying` expiring on `expiry` (IB contract details).
    pub async fn option_chain(
        &self,
        underlying: &str,
        expiry: chrono::NaiveDate,
    ) -> Result<Vec<IbContract>, IbError> {
        let probe = Instrument::Option(tradeguard_model::OptionContract::equity(
            underlying,
            expiry,
            tradeguard_model::Right::Call,
            tradeguard_model::Price::ZERO,
        ));
        let mut c = convert::contract(&probe)?;
        c.strike = 0.0;
        c.right = None;
        let mut v = self.inner.details(&c).await?;
        v.sort_by(|a, b| a.instrument.cmp(&b.instrument));
        Ok(v)
    }

    async fn reserve_id(&self) -> Result<OrderId, IbError> {
        self.inner.client()?;
        let floor = self.inner.floor.load(Ordering::SeqCst).saturating_add(1);
        let prev = self
            .inner
            .next_id
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.max(floor).saturating_add(1))
            })
            .unwrap_or_else(|v| v);
        Ok(OrderId(prev.max(floor)))
    }
}

impl Inner {
    fn client(&self) -> Result<Arc<Client>, IbError> {
        lock(&self.client).clone().ok_or(IbError::NotConnected)
    }

    async fn open_client(&self) -> Result<Arc<Client>, IbError> {
        let address = self.settings.address();
        let client = Client::builder()
            .address(address.as_str())
            .client_id(self.settings.client_id)
            .max_reconnect_attempts(0)
            .rate_limiter(RateLimiter::per_second(self.settings.max_messages_per_sec))
            .connect()
            .await
            .map_err(|e| IbError::from_connect(&address, &e))?;
        let client = Arc::new(client);
        let account = choose_account(&self.settings.account, client.handshake_managed_accounts())?;
        *lock(&self.account) = account;
        let server_next = i64::from(
            tokio::time::timeout(self.settings.request_timeout, client.next_valid_order_id())
                .await
                .map_err(|_| IbError::Timeout("next valid order id".into()))??,
        );
        let floor = self.floor.load(Ordering::SeqCst).saturating_add(1);
        self.next_id
            .fetch_max(server_next.max(floor), Ordering::SeqCst);
        Ok(client)
    }

    /// IB gives no live quotes for `i` (not subscribed, delayed only, competing session, the
    /// stream failed): said as [`Notice::MARKET_DATA_UNAVAILABLE`], which the guard alerts on.
    /// Delayed prices are never used as live ones (their ticks are other tick types).
    ///
    /// [`Notice::MARKET_DATA_UNAVAILABLE`]: tradeguard_model::Notice::MARKET_DATA_UNAVAILABLE
    fn no_live_data(&self, i: &Instrument, code: i32, message: &str) {
        let why = match code {
            0 => format!("the quote stream failed: {message}"),
            _ => format!("IB {code}: {message}"),
        };
        let text = format!(
            "no live market data for {} ({why}): its marks and P&L go stale and no stop triggers on its quotes; check the account's market data subscriptions in Client Portal",
            i.id()
        );
        self.say(tradeguard_model::Notice::MARKET_DATA_UNAVAILABLE, text);
    }

    /// Logs `text` and publishes it as the typed notice `code` (one the guard alerts on).
    fn say(&self, code: i32, text: String) {
        tracing::warn!(code, "{text}");
        self.hub
            .publish(BrokerEvent::Notice(tradeguard_model::Notice {
                code,
                text,
                ts: self.clock.now(),
            }));
    }

    fn forward_notice(&self, n: &IbNotice) {
        self.hub.notice(n.code, n.message.clone());
    }

    fn publish_status(&self, u: OrderUpdate) {
        if let Some(u) = lock(&self.tracker).status(u) {
            self.hub.publish(BrokerEvent::OrderStatus(u));
        }
    }

    fn on_status(&self, s: &ibapi::orders::OrderStatus) {
        let id = OrderId(i64::from(s.order_id));
        let conv = (|| -> Result<OrderUpdate, IbError> {
            let filled = convert::qty(s.filled)?;
            let remaining = convert::qty(s.remaining)?;
            Ok(OrderUpdate {
                order_id: id,
                status: convert::status(&s.status, filled, remaining)?,
                filled,
                remaining,
                avg_fill_price: s
                    .average_fill_price
                    .filter(|p| *p != 0.0)
                    .map(convert::price)
                    .transpose()?,
                reason: (s.status == OrderStatusKind::Inactive).then(|| StatusReason {
                    code: StatusReason::INACTIVE.into(),
                    text: if s.why_held.is_empty() {
                        "IB holds the order without working it (Inactive)".into()
                    } else {
                        format!(
                            "IB holds the order without working it (Inactive): {}",
                            s.why_held
                        )
                    },
                }),
                ts: self.clock.now(),
            })
        })();
        {
            let mut tracker = lock(&self.tracker);
            tracker.bind_perm(s.perm_id, id);
            if s.status == OrderStatusKind::ApiCancelled {
                tracker.recheck_cancel(id, tokio::time::Instant::now() + API_CANCEL_RECHECK);
            }
        }
        match conv {
            Ok(u) => self.publish_status(u),
            Err(e) => self.hub.notice(0, format!("order {id}: {e}")),
        }
    }

    fn on_execution(&self, d: &ibapi::orders::ExecutionData) {
        // The client also copies the answers to our own execution queries (request id ≠ −1)
        // onto this stream. They are history the caller handles (recovery, reconciliation);
        // published here, a new session would report every earlier fill again as a live one
        // and the engine would count fills a journal from before a restart already holds.
        if d.request_id != -1 {
            tracing::debug!(exec = %d.execution.execution_id, req = d.request_id, "execution query answer: not a live fill");
            return;
        }
        match convert::execution(&d.contract, &d.execution, self.clock.now()) {
            Ok(Some(e)) => {
                let raw = &d.execution.execution_id;
                if convert::is_correction(raw) && lock(&self.tracker).knows(e.exec_id.as_str()) {
                    self.corrected(raw, &e);
                    return;
                }
                let deadline = tokio::time::Instant::now() + self.settings.commission_wait;
                lock(&self.tracker).execution(e, deadline);
            }
            Ok(None) => {
                tracing::debug!(exec = %d.execution.execution_id, "combo-level execution; legs are reported separately");
            }
            Err(e) => self.hub.notice(
                0,
                format!("execution {} not mapped: {e}", d.execution.execution_id),
            ),
        }
    }

    /// IB corrected a fill already reported: not a second fill; the engine re-reads the
    /// account's positions (a notice it alerts on and reconciles after).
    fn corrected(&self, raw_id: &str, e: &Execution) {
        let text = format!(
            "IB corrected execution {} (now {raw_id}: {:?} {} {} @ {}): the fill is not counted twice; positions are re-read from the account",
            e.exec_id,
            e.side,
            e.qty,
            e.instrument.id(),
            e.price
        );
        self.say(tradeguard_model::Notice::EXECUTION_CORRECTED, text);
    }

    fn on_commission(&self, c: &ibapi::orders::CommissionReport) {
        match convert::money(c.commission) {
            Ok(m) => {
                if let Some(e) = lock(&self.tracker).commission(&c.execution_id, m) {
                    self.hub.publish(BrokerEvent::Execution(e));
                }
            }
            Err(e) => self
                .hub
                .notice(0, format!("commission {}: {e}", c.execution_id)),
        }
    }

    /// Orders left `ApiCancelled` (our cancel before IB acknowledged them) with no later word:
    /// the cancel is asked again, and IB's answer ends them (Cancelled and 202, 10147 not
    /// found, 10148 "state: ApiCancelled/Cancelled", or a fill).
    async fn cancel_again(&self, client: &Client) {
        let due = lock(&self.tracker).due_rechecks(tokio::time::Instant::now());
        for id in due {
            let Ok(ib_id) = i32::try_from(id.0) else {
                continue;
            };
            tracing::info!(order = %id, "still ApiCancelled: asking IB to cancel again for its final answer");
            if let Err(e) = client.cancel_order(ib_id, "").await {
                self.hub.notice(
                    0,
                    format!("order {id}: cancel asked again after ApiCancelled failed: {e}"),
                );
            }
        }
    }

    fn flush_due(&self) {
        let due = lock(&self.tracker).due(tokio::time::Instant::now());
        for e in due {
            self.hub.publish(BrokerEvent::Execution(e));
        }
    }

    fn on_order_update(&self, u: &IbOrderUpdate) {
        match u {
            IbOrderUpdate::OrderStatus(s) => self.on_status(s),
            IbOrderUpdate::OpenOrder(d) => {
                lock(&self.tracker).bind_perm(d.order.perm_id, OrderId(i64::from(d.order_id)));
            }
            IbOrderUpdate::OrderBound(b) => {
                lock(&self.tracker).bind_perm(b.perm_id, OrderId(i64::from(b.order_id)));
            }
            IbOrderUpdate::ExecutionData(d) => self.on_execution(d),
            IbOrderUpdate::CommissionReport(c) => self.on_commission(c),
        }
    }

    /// Order-bound notices: 202 confirms a cancel, rejections end the order, the rest are
    /// published as notices.
    fn on_order_notice(&self, n: &IbNotice) {
        let now = self.clock.now();
        let Some(id) = n
            .request_id
            .filter(|id| *id >= 0)
            .map(|id| OrderId(i64::from(id)))
        else {
            self.forward_notice(n);
            return;
        };
        let update = if n.code == ibapi::ORDER_CANCELLED_CODE {
            lock(&self.tracker).terminal_from_notice(
                id,
                OrderStatus::Cancelled,
                n.code,
                &n.message,
                now,
            )
        } else if IbError::is_read_only_notice(n.code, &n.message) {
            let e = IbError::ReadOnly(n.message.clone());
            self.hub.notice(n.code, e.to_string());
            lock(&self.tracker).terminal_from_notice(
                id,
                OrderStatus::Rejected,
                n.code,
                &e.to_string(),
                now,
            )
        } else if n.category() == NoticeCategory::OrderRejection
            || ORDER_REJECTIONS_BELOW_200.contains(&n.code)
        {
            // These come with the order's id and no order status: the order is not working.
            lock(&self.tracker).terminal_from_notice(
                id,
                OrderStatus::Rejected,
                n.code,
                &n.message,
                now,
            )
        } else if let Some(state) = cancel_refused_state(n.code, &n.message) {
            // 10147: the gateway does not know the order; 10148: it is already Cancelled.
            // Either way nothing is working. (10148 in another state is left to the order's
            // own status.)
            match state {
                CancelRefused::NotWorking => lock(&self.tracker).terminal_from_notice(
                    id,
                    OrderStatus::Cancelled,
                    n.code,
                    &n.message,
                    now,
                ),
                CancelRefused::Pending => {
                    self.hub
                        .notice(n.code, format!("order {id}: {}", n.message));
                    None
                }
            }
        } else {
            self.hub
                .notice(n.code, format!("order {id}: {}", n.message));
            None
        };
        if let Some(u) = update {
            self.hub.publish(BrokerEvent::OrderStatus(u));
        }
    }

    fn on_position(&self, p: &ibapi::accounts::Position) {
        let account = lock(&self.account).clone();
        if !account.is_empty() && p.account != account {
            tracing::debug!(account = %p.account, "position of another account ignored");
            return;
        }
        match convert::position(p) {
            Ok(pos) => {
                lock(&self.positions).insert(pos.instrument.id(), pos.clone());
                if let Some(snap) = lock(&self.positions_snapshot).as_mut() {
                    snap.insert(pos.instrument.id(), pos.clone());
                }
                self.hub.publish(BrokerEvent::Position(pos));
            }
            Err(e) => self.hub.notice(0, format!("position not mapped: {e}")),
        }
    }

    /// Connectivity notices become connection states; the rest are notices. Returns `true`
    /// for a restore (1101 / 1102): the caller takes a fresh positions snapshot, since
    /// position changes of the gap never came.
    async fn on_notice(self: &Arc<Self>, n: &IbNotice, client: &Arc<Client>) -> bool {
        if matches!(n.code, 1101 | 1102) {
            // Until the fresh snapshot is in, positions() waits for it.
            self.positions_ready.send_replace(false);
        }
        match n.code {
            1100 => self
                .hub
                .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                    reason: format!("1100: {}", n.message),
                })),
            1101 => {
                // Restored with data lost: market data must be requested again.
                self.restart_quotes(client);
                self.reconcile_or_retry(client).await;
                self.hub
                    .publish(BrokerEvent::Connection(ConnectionState::Connected));
            }
            1102 => {
                // Restored with data kept: market data continues, but fills and order updates
                // of the gap are read again (IB delays execution reports during a reset).
                self.reconcile_or_retry(client).await;
                self.hub
                    .publish(BrokerEvent::Connection(ConnectionState::Connected));
            }
            // IB dropped a request over its message rate, unprocessed (TWS API message codes:
            // 100 "Max rate of messages per second has been exceeded"). It may have been an
            // order: once the burst is over (IB counts per second), reconcile, which ends
            // orders the gateway never got as lost (the guard sends such a step again).
            100 => {
                let text = format!(
                    "IB dropped requests over its message rate ({}: {}): an order just sent may not have reached it; reconciling orders in 1 s",
                    n.code, n.message
                );
                self.say(tradeguard_model::Notice::REQUESTS_DROPPED, text);
                self.reconcile_later(client, Duration::from_secs(1));
            }
            // A data farm down (2103 market data, 2105 historical, 2157 sec-def): quotes stop
            // until IB says it is OK again (2104 / 2106 / 2158, only forwarded).
            2103 | 2105 | 2157 => {
                let text = format!(
                    "IB's data farm connection is broken ({}: {}): quotes may stop and marks go stale until IB restores it",
                    n.code, n.message
                );
                self.say(tradeguard_model::Notice::MARKET_DATA_UNAVAILABLE, text);
            }
            _ => self.forward_notice(n),
        }
        matches!(n.code, 1101 | 1102)
    }

    async fn collect_executions(
        &self,
        client: &Client,
        since: Timestamp,
    ) -> Result<Vec<Execution>, IbError> {
        self.tell_history_gap(since);
        let filter = ExecutionFilter {
            time: since.to_datetime().format("%Y%m%d-%H:%M:%S").to_string(),
            ..Default::default()
        };
        let mut sub = client.executions(filter).await?;
        let mut execs: Vec<Execution> = Vec::new();
        let mut commissions: HashMap<String, Money> = HashMap::new();
        let mut corrections: Vec<String> = Vec::new();
        let now = self.clock.now();
        tokio::time::timeout(self.settings.request_timeout, async {
            while let Some(item) = sub.next().await {
                match item {
                    Ok(SubscriptionItem::Data(Executions::ExecutionData(d))) => {
                        match convert::execution(&d.contract, &d.execution, now) {
                            Ok(Some(e)) => {
                                if convert::is_correction(&d.execution.execution_id) {
                                    corrections.push(d.execution.execution_id.clone());
                                }
                                // A correction replaces the execution it corrects.
                                execs.retain(|x| x.exec_id != e.exec_id);
                                execs.push(e);
                            }
                            Ok(None) => {}
                            Err(e) => self.hub.notice(0, format!("execution not mapped: {e}")),
                        }
                    }
                    Ok(SubscriptionItem::Data(Executions::CommissionReport(c))) => {
                        if let Ok(m) = convert::money(c.commission) {
                            commissions.insert(convert::exec_original(&c.execution_id), m);
                        }
                    }
                    Ok(SubscriptionItem::Notice(n)) => self.forward_notice(&n),
                    Err(ibapi::Error::EndOfStream) => break,
                    Err(e) => return Err(IbError::from(e)),
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| IbError::Timeout("executions".into()))??;
        for e in &mut execs {
            e.commission = commissions.get(e.exec_id.as_str()).copied();
        }
        // IB stamps executions to the whole second: one in the same second as `since` (but
        // before it by the sub-second part) is kept — callers count fills once by exec id.
        let since_second = Timestamp(since.0 - since.0.rem_euclid(1_000_000_000));
        execs.retain(|e| e.ts >= since_second);
        execs.sort_by_key(|e| e.ts);
        // A correction of a fill this session already published is a notice, not a fill.
        for raw in corrections {
            if let Some(e) = execs
                .iter()
                .find(|e| e.exec_id.as_str() == convert::exec_original(&raw))
                && lock(&self.tracker).knows(e.exec_id.as_str())
            {
                self.corrected(&raw, e);
            }
        }
        Ok(execs)
    }

    fn note_placed(&self, id: OrderId) {
        lock(&self.placed_in).insert(id, self.epoch.load(Ordering::SeqCst));
    }

    /// IB Gateway answers execution requests with today's executions only (since midnight New
    /// York; TWS API "Executions and Commissions"). A request reaching back before midnight
    /// cannot return the fills in between: said once per day, and the account's positions
    /// (reconciliation, broker wins) stand for them.
    fn tell_history_gap(&self, since: Timestamp) {
        let now = self.clock.now();
        let ny = now
            .to_datetime()
            .with_timezone(&chrono_tz::America::New_York);
        let Some(midnight) = ny
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|m| {
                m.and_local_timezone(chrono_tz::America::New_York)
                    .earliest()
            })
            .and_then(|m| Timestamp::from_datetime(m.with_timezone(&chrono::Utc)).ok())
        else {
            return;
        };
        if since >= midnight {
            return;
        }
        let mut told = lock(&self.history_gap_told);
        if *told == Some(midnight) {
            return;
        }
        *told = Some(midnight);
        self.hub.notice(
            0,
            format!(
                "executions before midnight New York ({midnight}) are not available from IB Gateway (it keeps today's only): fills from {since} to midnight are taken from the account's positions"
            ),
        );
    }

    /// After a reconnect: executions since the last seen, then open orders, then orders that
    /// ended while the connection was down. Each step that fails becomes a notice.
    /// Reads what the gap may have hidden: executions since the last one seen, open orders, and
    /// the completed orders of those no longer open. Returns `false` when a query failed (the
    /// caller tries again: a lost order is only settled by a reconciliation that completes).
    async fn reconcile(&self, client: &Client) -> bool {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let since = lock(&self.tracker)
            .last_exec_ts()
            .or(*lock(&self.session_start))
            .unwrap_or(Timestamp(0));
        let mut executed: HashSet<OrderId> = HashSet::new();
        match self.collect_executions(client, since).await {
            Ok(execs) => {
                for e in execs {
                    executed.extend(e.order_id);
                    if let Some(e) = lock(&self.tracker).reconciled(e) {
                        self.hub.publish(BrokerEvent::Execution(e));
                    }
                }
            }
            Err(e) => self
                .hub
                .notice(0, format!("reconcile executions failed: {e}")),
        }
        let t = self.settings.request_timeout;
        let mut open: HashSet<OrderId> = HashSet::new();
        let res = async {
            let mut sub = client.all_open_orders().await?;
            tokio::time::timeout(t, async {
                while let Some(item) = sub.next().await {
                    match item {
                        Ok(SubscriptionItem::Data(Orders::OrderStatus(s)))
                            if s.client_id == client.client_id() || s.client_id == 0 =>
                        {
                            open.insert(OrderId(i64::from(s.order_id)));
                            self.on_status(&s);
                        }
                        Ok(SubscriptionItem::Data(Orders::OrderData(d)))
                            if d.order.client_id == client.client_id() =>
                        {
                            open.insert(OrderId(i64::from(d.order_id)));
                            lock(&self.tracker)
                                .bind_perm(d.order.perm_id, OrderId(i64::from(d.order_id)));
                        }
                        Ok(SubscriptionItem::Data(_)) => {}
                        Ok(SubscriptionItem::Notice(n)) => self.forward_notice(&n),
                        Err(ibapi::Error::EndOfStream) => break,
                        Err(e) => return Err(IbError::from(e)),
                    }
                }
                Ok::<(), IbError>(())
            })
            .await
            .map_err(|_| IbError::Timeout("open orders".into()))?
        }
        .await;
        if let Err(e) = res {
            self.hub
                .notice(0, format!("reconcile open orders failed: {e}"));
            return false;
        }
        // Working orders the gateway no longer lists, and orders this session placed that it
        // never acknowledged (the connection dropped as they went out); only those placed
        // before this reconciliation began.
        let missing: Vec<OrderId> = {
            let tracker = lock(&self.tracker);
            let placed_in = lock(&self.placed_in);
            let mut v: Vec<OrderId> = tracker
                .working()
                .into_iter()
                .chain(
                    lock(&self.placed)
                        .keys()
                        .copied()
                        .filter(|id| !tracker.is_terminal(*id)),
                )
                .filter(|id| !open.contains(id))
                .filter(|id| placed_in.get(id).copied().unwrap_or(0) < epoch)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if missing.is_empty() {
            return true;
        }
        let mut resolved: HashSet<OrderId> = HashSet::new();
        let mut unmapped = 0usize;
        let res = async {
            let mut sub = client.completed_orders(false).await?;
            tokio::time::timeout(t, async {
                while let Some(item) = sub.next().await {
                    match item {
                        Ok(SubscriptionItem::Data(Orders::OrderData(d))) => {
                            match lock(&self.tracker).by_perm(d.order.perm_id) {
                                Some(id) => {
                                    resolved.insert(id);
                                }
                                None if d.order.client_id == client.client_id() => unmapped += 1,
                                None => {}
                            }
                            self.on_completed(&d, &missing)
                        }
                        Ok(SubscriptionItem::Data(Orders::OrderStatus(_))) => {}
                        Ok(SubscriptionItem::Notice(n)) => self.forward_notice(&n),
                        Err(ibapi::Error::EndOfStream) => break,
                        Err(e) => return Err(IbError::from(e)),
                    }
                }
                Ok::<(), IbError>(())
            })
            .await
            .map_err(|_| IbError::Timeout("completed orders".into()))?
        }
        .await;
        if let Err(e) = res {
            self.hub
                .notice(0, format!("reconcile completed orders failed: {e}"));
            return false;
        }
        self.settle_lost(&missing, &resolved, &executed, unmapped);
        true
    }

    /// Reconciles; when a query fails (a gap, a timeout), tries again every 2 s while this
    /// session lasts, one attempt at a time.
    async fn reconcile_or_retry(self: &Arc<Self>, client: &Arc<Client>) {
        if !self.reconcile(client).await {
            self.reconcile_later(client, Duration::from_secs(2));
        }
    }

    /// One reconciliation `after` from now (none if one is already waiting), retried while it
    /// fails and the session is the current one.
    fn reconcile_later(self: &Arc<Self>, client: &Arc<Client>, after: Duration) {
        if self.reconcile_scheduled.swap(true, Ordering::SeqCst) {
            return;
        }
        let (inner, client) = (Arc::clone(self), Arc::clone(client));
        tokio::spawn(async move {
            let mut wait = after;
            loop {
                tokio::time::sleep(wait).await;
                let current = lock(&inner.client)
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &client));
                if !current || inner.reconcile(&client).await {
                    break;
                }
                tracing::warn!("reconciliation failed; trying again in 2 s");
                wait = Duration::from_secs(2);
            }
            inner.reconcile_scheduled.store(false, Ordering::SeqCst);
        });
    }

    /// Orders placed while the connection dropped that the gateway neither lists as open nor
    /// completed, and that have no execution, never reached IB: they end as Rejected
    /// (`StatusReason::ORDER_LOST`) so the caller can send them again, instead of "sent" for ever. When a
    /// completed order of this client cannot be matched to one of ours (its acknowledgement was
    /// lost too), nothing can be concluded: a notice says which orders are unknown.
    fn settle_lost(
        &self,
        missing: &[OrderId],
        resolved: &HashSet<OrderId>,
        executed: &HashSet<OrderId>,
        unmapped: usize,
    ) {
        let lost: Vec<OrderId> = missing
            .iter()
            .copied()
            .filter(|id| !resolved.contains(id) && !executed.contains(id))
            .filter(|id| !lock(&self.tracker).is_terminal(*id))
            .collect();
        if lost.is_empty() {
            return;
        }
        if unmapped > 0 {
            let text = format!(
                "orders {lost:?} are not at the gateway after the reconnect, and {unmapped} completed order(s) of this client could not be matched: their outcome is unknown; check TWS"
            );
            self.say(tradeguard_model::Notice::ORDER_OUTCOME_UNKNOWN, text);
            return;
        }
        let now = self.clock.now();
        for id in lost {
            let text = "not at the gateway after the reconnect (neither open nor completed, no execution): it never reached IB";
            tracing::warn!(order = %id, "{text}");
            if let Some(u) =
                lock(&self.tracker).terminal_from_notice(id, OrderStatus::Rejected, 0, text, now)
            {
                let mut u = u;
                u.reason = Some(tradeguard_model::StatusReason {
                    code: tradeguard_model::StatusReason::ORDER_LOST.into(),
                    text: text.into(),
                });
                self.hub.publish(BrokerEvent::OrderStatus(u));
            }
        }
    }

    fn on_completed(&self, d: &ibapi::orders::OrderData, missing: &[OrderId]) {
        let Some(id) = lock(&self.tracker).by_perm(d.order.perm_id) else {
            return;
        };
        if !missing.contains(&id) {
            return;
        }
        let conv = (|| -> Result<OrderUpdate, IbError> {
            // A completed order's totalQuantity is the quantity left unfilled (0 once filled;
            // 400 for 1,000 cancelled after 600 filled), not the size it was placed with.
            let remaining = convert::qty(d.order.total_quantity)?.max(0);
            let filled = convert::qty(d.order.filled_quantity)?;
            let mut status = convert::status(&d.order_state.status, filled, remaining)?;
            if status == OrderStatus::Filled {
                return Ok(OrderUpdate {
                    order_id: id,
                    status,
                    filled,
                    remaining: 0,
                    avg_fill_price: None,
                    reason: None,
                    ts: self.clock.now(),
                });
            }
            if !status.is_terminal() {
                status = OrderStatus::Cancelled;
            }
            Ok(OrderUpdate {
                order_id: id,
                status,
                filled,
                remaining,
                avg_fill_price: None,
                reason: None,
                ts: self.clock.now(),
            })
        })();
        match conv {
            Ok(u) => self.publish_status(u),
            Err(e) => self.hub.notice(0, format!("completed order {id}: {e}")),
        }
    }

    async fn details(&self, c: &ibapi::contracts::Contract) -> Result<Vec<IbContract>, IbError> {
        let client = self.client()?;
        let list = tokio::time::timeout(self.settings.request_timeout, client.contract_details(c))
            .await
            .map_err(|_| IbError::Timeout("contract details".into()))??;
        list.iter()
            .map(|d| {
                Ok(IbContract {
                    instrument: convert::instrument(&d.contract)?,
                    con_id: d.contract.contract_id,
                    min_tick: convert::price(d.min_tick)?,
                })
            })
            .collect()
    }

    async fn con_id(&self, i: &Instrument) -> Result<i32, IbError> {
        if let Some(id) = lock(&self.con_ids).get(i) {
            return Ok(*id);
        }
        let found = self.details(&convert::contract(i)?).await?;
        let hit = found
            .iter()
            .find(|c| &c.instrument == i)
            .or(found.first())
            .ok_or_else(|| IbError::Api {
                code: 200,
                text: format!("no contract for {}", i.id()),
            })?;
        lock(&self.con_ids).insert(i.clone(), hit.con_id);
        Ok(hit.con_id)
    }

    fn restart_quotes(self: &Arc<Self>, client: &Arc<Client>) {
        let list = lock(&self.quotes).clone();
        let mut tasks = lock(&self.quote_tasks);
        for t in tasks.drain(..) {
            t.abort();
        }
        for i in list {
            tasks.push(tokio::spawn(quote_task(self.clone(), client.clone(), i)));
        }
    }

    fn stop_quotes(&self) {
        for t in lock(&self.quote_tasks).drain(..) {
            t.abort();
        }
    }
}

#[derive(Default)]
struct QuoteState {
    bid: Option<f64>,
    ask: Option<f64>,
    last: Option<f64>,
    bid_size: f64,
    ask_size: f64,
    greeks: Option<Greeks>,
    und: Option<f64>,
}

async fn quote_task(inner: Arc<Inner>, client: Arc<Client>, i: Instrument) {
    let contract = match convert::contract(&i) {
        Ok(c) => c,
        Err(e) => return inner.hub.notice(0, format!("quotes for {}: {e}", i.id())),
    };
    let mut sub = match client.market_data(&contract).subscribe().await {
        Ok(s) => s,
        Err(e) => return inner.hub.notice(0, format!("quotes for {}: {e}", i.id())),
    };
    let mut st = QuoteState::default();
    let mut told = false;
    while let Some(item) = sub.next().await {
        let tick = match item {
            Ok(SubscriptionItem::Data(t)) => t,
            Ok(SubscriptionItem::Notice(n)) => {
                if NO_LIVE_DATA.contains(&n.code) && !std::mem::replace(&mut told, true) {
                    inner.no_live_data(&i, n.code, &n.message);
                } else {
                    inner.forward_notice(&n);
                }
                continue;
            }
            Err(ibapi::Error::Notice(n)) if NO_LIVE_DATA.contains(&n.code) => {
                if !told {
                    inner.no_live_data(&i, n.code, &n.message);
                }
                return;
            }
            Err(e) => {
                inner.no_live_data(&i, 0, &e.to_string());
                return;
            }
        };
        let mut price_tick = |t: &TickType, p: f64| match t {
            TickType::Bid => st.bid = Some(p),
            TickType::Ask => st.ask = Some(p),
            TickType::Last => st.last = Some(p),
            _ => {}
        };
        match &tick {
            TickTypes::Price(p) => price_tick(&p.tick_type, p.price),
            TickTypes::PriceSize(p) => {
                price_tick(&p.price_tick_type, p.price);
                match p.size_tick_type {
                    TickType::BidSize => st.bid_size = p.size,
                    TickType::AskSize => st.ask_size = p.size,
                    _ => {}
                }
            }
            TickTypes::Size(s) => match s.tick_type {
                TickType::BidSize => st.bid_size = s.size,
                TickType::AskSize => st.ask_size = s.size,
                _ => {}
            },
            TickTypes::OptionComputation(oc) if oc.field == TickType::ModelOption => {
                if let (Some(iv), Some(delta), Some(gamma), Some(vega), Some(theta)) =
                    (oc.implied_volatility, oc.delta, oc.gamma, oc.vega, oc.theta)
                {
                    st.greeks = Some(Greeks {
                        iv,
                        delta,
                        gamma,
                        vega,
                        theta,
                    });
                }
                st.und = oc.underlying_price.or(st.und);
            }
            _ => continue,
        }
        // Both sides heard from before the first quote; a side of -1 is IB's "no data
        // currently available" (TWS API "Tick Types"), a market with no such side, never a
        // price. https://interactivebrokers.github.io/tws-api/tick_types.html
        let (Some(bid), Some(ask)) = (st.bid, st.ask) else {
            continue;
        };
        let q = (|| -> Result<Quote, IbError> {
            Ok(Quote {
                instrument: i.clone(),
                bid: convert::market_price(bid)?,
                ask: convert::market_price(ask)?,
                last: convert::market_price(st.last.unwrap_or(-1.0))?,
                bid_size: convert::qty(st.bid_size.trunc())?,
                ask_size: convert::qty(st.ask_size.trunc())?,
                greeks: st.greeks,
                underlying_price: st.und.map(convert::price).transpose()?,
                ts: inner.clock.now(),
            })
        })();
        match q {
            Ok(q) => inner.hub.publish(BrokerEvent::Quote(q)),
            Err(e) => inner.hub.notice(0, format!("quote for {}: {e}", i.id())),
        }
    }
}

/// Runs sessions until stopped: each lost connection is followed by reconnect attempts with
/// exponential backoff, then resubscription and reconciliation.
async fn supervise(
    inner: Arc<Inner>,
    first: Arc<Client>,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<Result<(), IbError>>,
) {
    let mut client = first;
    let mut ready = Some(ready);
    let mut reconnect = false;
    loop {
        let end = run_session(&inner, &client, reconnect, &mut stop, &mut ready).await;
        inner.stop_quotes();
        *lock(&inner.client) = None;
        inner.positions_ready.send_replace(false);
        client.disconnect().await;
        let reason = match end {
            SessionEnd::Stop => return,
            SessionEnd::Lost(r) => r,
        };
        inner
            .hub
            .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                reason,
            }));
        inner
            .hub
            .publish(BrokerEvent::Connection(ConnectionState::Connecting));
        let mut delay = inner.settings.reconnect_initial_delay;
        client = loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match inner.open_client().await {
                Ok(c) => break c,
                Err(e) => {
                    inner.hub.notice(0, format!("reconnect failed: {e}"));
                    delay = (delay * 2)
                        .min(inner.settings.reconnect_max_delay)
                        .max(Duration::from_millis(1));
                }
            }
        };
        reconnect = true;
    }
}

async fn run_session(
    inner: &Arc<Inner>,
    client: &Arc<Client>,
    reconnect: bool,
    stop: &mut watch::Receiver<bool>,
    ready: &mut Option<tokio::sync::oneshot::Sender<Result<(), IbError>>>,
) -> SessionEnd {
    let opened = async {
        let orders = client.order_update_stream().await?;
        let notices = client.notice_stream()?;
        *lock(&inner.positions_snapshot) = Some(BTreeMap::new());
        let positions = client.positions().await?;
        Ok::<_, ibapi::Error>((orders, notices, positions))
    }
    .await;
    let (mut orders, mut notices, mut positions) = match opened {
        Ok(s) => s,
        Err(e) => {
            let e = IbError::from(e);
            if let Some(r) = ready.take() {
                let _ = r.send(Err(e.clone()));
                return SessionEnd::Stop;
            }
            return SessionEnd::Lost(e.to_string());
        }
    };
    *lock(&inner.client) = Some(client.clone());
    if reconnect {
        inner.reconcile_or_retry(client).await;
    }
    inner.restart_quotes(client);
    inner
        .hub
        .publish(BrokerEvent::Connection(ConnectionState::Connected));
    if let Some(r) = ready.take() {
        let _ = r.send(Ok(()));
    }
    loop {
        let deadline = lock(&inner.tracker).next_deadline();
        tokio::select! {
            _ = stop.changed() => return SessionEnd::Stop,
            item = orders.next() => match item {
                Some(Ok(SubscriptionItem::Data(u))) => inner.on_order_update(&u),
                Some(Ok(SubscriptionItem::Notice(n))) => inner.on_order_notice(&n),
                Some(Err(e)) => return SessionEnd::Lost(format!("order stream: {e}")),
                None => return SessionEnd::Lost("order stream ended".into()),
            },
            item = positions.next() => match item {
                Some(Ok(SubscriptionItem::Data(PositionUpdate::Position(p)))) => inner.on_position(&p),
                Some(Ok(SubscriptionItem::Data(PositionUpdate::PositionEnd))) => {
                    if let Some(snap) = lock(&inner.positions_snapshot).take() {
                        *lock(&inner.positions) = snap;
                    }
                    inner.positions_ready.send_replace(true);
                }
                Some(Ok(SubscriptionItem::Notice(n))) => inner.forward_notice(&n),
                Some(Err(e)) => return SessionEnd::Lost(format!("position stream: {e}")),
                None => return SessionEnd::Lost("position stream ended".into()),
            },
            n = notices.next() => match n {
                Some(n) => {
                    if inner.on_notice(&n, client).await {
                        // A fresh positions subscription: its snapshot replaces what the gap
                        // hid (IB does not send the gap's position changes again).
                        drop(positions);
                        *lock(&inner.positions_snapshot) = Some(BTreeMap::new());
                        positions = match client.positions().await {
                            Ok(p) => p,
                            Err(e) => return SessionEnd::Lost(format!("positions after a restore: {e}")),
                        };
                    }
                }
                None => return SessionEnd::Lost("notice stream ended".into()),
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                inner.flush_due();
                inner.cancel_again(client).await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Broker for IbBroker {
    fn name(&self) -> &str {
        "ib"
    }

    fn connection(&self) -> Option<ConnectionState> {
        self.inner.hub.connection()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_combos: true,
            what_if: true,
            trailing_stops: true,
            outside_rth: true,
            simulated: false,
        }
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        self.connect_ib().await.map_err(BrokerError::from)
    }

    async fn disconnect(&self) -> Result<(), BrokerError> {
        self.disconnect_ib().await;
        Ok(())
    }

    fn events(&self) -> EventStream {
        self.inner.hub.subscribe()
    }

    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        Ok(self.reserve_id().await?)
    }

    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError> {
        order.validate()?;
        let client = self.inner.client()?;
        let (id, contract, o) = convert::single_order(order, false)?;
        lock(&self.inner.placed).insert(order.id, OpenOrderKind::Single(order.clone()));
        self.inner.note_placed(order.id);
        client
            .submit_order(id, &contract, &o)
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))
    }

    async fn place_combo(&self, order: &ComboOrder) -> Result<(), BrokerError> {
        order.validate()?;
        let client = self.inner.client()?;
        let mut con_ids = Vec::with_capacity(order.legs.len());
        for l in &order.legs {
            con_ids.push(self.inner.con_id(&l.instrument).await?);
        }
        let (id, contract, o) = convert::combo_order(order, &con_ids)?;
        lock(&self.inner.placed).insert(order.id, OpenOrderKind::Combo(order.clone()));
        self.inner.note_placed(order.id);
        client
            .submit_order(id, &contract, &o)
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))
    }

    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError> {
        let client = self.inner.client()?;
        let ib_id = i32::try_from(id.0).map_err(|_| BrokerError::UnknownOrder(id))?;
        // The outcome (Cancelled + 202, or a fill) arrives on the order stream.
        let _sub = client
            .cancel_order(ib_id, "")
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))?;
        Ok(())
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        self.inner.client()?;
        let mut rx = self.inner.positions_ready.subscribe();
        tokio::time::timeout(self.inner.settings.request_timeout, rx.wait_for(|r| *r))
            .await
            .map_err(|_| BrokerError::Timeout("positions".into()))?
            .map_err(|_| BrokerError::NotConnected)?;
        Ok(lock(&self.inner.positions)
            .values()
            .filter(|p| p.qty != 0)
            .cloned()
            .collect())
    }

    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        let client = self.inner.client()?;
        let mut sub = client
            .open_orders()
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))?;
        let mut statuses: BTreeMap<OrderId, ibapi::orders::OrderStatus> = BTreeMap::new();
        let mut reported: BTreeMap<OrderId, ibapi::orders::OrderData> = BTreeMap::new();
        tokio::time::timeout(self.inner.settings.request_timeout, async {
            while let Some(item) = sub.next().await {
                match item {
                    Ok(SubscriptionItem::Data(Orders::OrderStatus(s))) => {
                        statuses.insert(OrderId(i64::from(s.order_id)), s);
                    }
                    Ok(SubscriptionItem::Data(Orders::OrderData(d))) => {
                        reported.insert(OrderId(i64::from(d.order_id)), d);
                    }
                    Ok(SubscriptionItem::Notice(n)) => self.inner.forward_notice(&n),
                    Err(ibapi::Error::EndOfStream) => break,
                    Err(e) => return Err(BrokerError::from(IbError::from(e))),
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| BrokerError::Timeout("open orders".into()))??;
        let mut out = Vec::new();
        for (id, s) in statuses {
            // Placed by this session: as placed. Placed before a restart (or a crash) of this
            // process: as TWS reports it, and remembered, so its events are recognised.
            let known = lock(&self.inner.placed).get(&id).cloned();
            let order = match (known, reported.get(&id)) {
                (Some(o), _) => o,
                (None, Some(d)) => {
                    match convert::reported_order(d.order_id, &d.contract, &d.order) {
                        Ok(r) => {
                            let o = OpenOrderKind::Single(r);
                            lock(&self.inner.placed).insert(id, o.clone());
                            o
                        }
                        Err(e) => {
                            self.inner.hub.notice(
                                0,
                                format!("open order {id} of an earlier session not listed: {e}"),
                            );
                            continue;
                        }
                    }
                }
                (None, None) => {
                    self.inner.hub.notice(
                        0,
                        format!("open order {id} reported without its order; not listed"),
                    );
                    continue;
                }
            };
            let filled = convert::qty(s.filled)?;
            let remaining = convert::qty(s.remaining)?;
            let status = convert::status(&s.status, filled, remaining)?;
            if status.is_terminal() {
                continue;
            }
            out.push(OpenOrder {
                order,
                status: OrderUpdate {
                    order_id: id,
                    status,
                    filled,
                    remaining,
                    avg_fill_price: s
                        .average_fill_price
                        .filter(|p| *p != 0.0)
                        .map(convert::price)
                        .transpose()?,
                    reason: None,
                    ts: self.inner.clock.now(),
                },
            });
        }
        Ok(out)
    }

    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        let client = self.inner.client()?;
        Ok(self.inner.collect_executions(&client, since).await?)
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let client = self.inner.client()?;
        let account = self.account_id();
        let group = ibapi::accounts::types::AccountGroup::from("All");
        let mut sub = client
            .account_summary(&group, &SUMMARY_TAGS)
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))?;
        let mut values: HashMap<String, Money> = HashMap::new();
        tokio::time::timeout(self.inner.settings.request_timeout, async {
            while let Some(item) = sub.next().await {
                match item {
                    Ok(SubscriptionItem::Data(AccountSummaryResult::Summary(s))) => {
                        if s.account == account {
                            values.insert(s.tag.clone(), convert::money_text(&s.value)?);
                        }
                    }
                    Ok(SubscriptionItem::Data(AccountSummaryResult::End)) => break,
                    Ok(SubscriptionItem::Notice(n)) => self.inner.forward_notice(&n),
                    Err(e) => return Err(IbError::from(e)),
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| BrokerError::Timeout("account summary".into()))?
        .map_err(BrokerError::from)?;
        let get = |tag: &str| {
            values.get(tag).copied().ok_or_else(|| {
                BrokerError::from(IbError::Conversion(format!(
                    "account value {tag} missing for {account}"
                )))
            })
        };
        Ok(AccountSnapshot {
            account: tradeguard_model::AccountId::new(account.clone()),
            net_liquidation: get("NetLiquidation")?,
            maintenance_margin: get("MaintMarginReq")?,
            initial_margin: get("InitMarginReq")?,
            excess_liquidity: get("ExcessLiquidity")?,
            buying_power: get("BuyingPower")?,
            ts: self.inner.clock.now(),
        })
    }

    async fn what_if(&self, order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        order.validate()?;
        let client = self.inner.client()?;
        let probe = OrderRequest {
            id: self.reserve_id().await?,
            ..order.clone()
        };
        let (id, contract, o) = convert::single_order(&probe, true)?;
        let mut sub = client
            .place_order(id, &contract, &o)
            .await
            .map_err(|e| BrokerError::from(IbError::from(e)))?;
        let state = tokio::time::timeout(self.inner.settings.request_timeout, async {
            while let Some(item) = sub.next().await {
                match item {
                    Ok(SubscriptionItem::Data(PlaceOrder::OpenOrder(d))) => {
                        return Ok(d.order_state);
                    }
                    Ok(SubscriptionItem::Notice(n))
                        if IbError::is_read_only_notice(n.code, &n.message) =>
                    {
                        return Err(IbError::ReadOnly(n.message));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(IbError::from(e)),
                }
            }
            Err(IbError::NotConnected)
        })
        .await
        .map_err(|_| BrokerError::Timeout("what-if".into()))?
        .map_err(BrokerError::from)?;
        let (Some(ic), Some(mc), Some(ia), Some(ma)) = (
            state.initial_margin_change,
            state.maintenance_margin_change,
            state.initial_margin_after,
            state.maintenance_margin_after,
        ) else {
            return Ok(None);
        };
        Ok(Some(MarginImpact {
            initial_change: convert::money(ic)?,
            maintenance_change: convert::money(mc)?,
            initial_after: convert::money(ia)?,
            maintenance_after: convert::money(ma)?,
            commission: state
                .commission
                .filter(|c| c.is_finite() && *c < 1e9)
                .map(convert::money)
                .transpose()?,
        }))
    }

    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError> {
        let client = self.inner.client()?;
        for i in instruments {
            convert::contract(i)?;
        }
        let mut list = lock(&self.inner.quotes);
        let mut tasks = lock(&self.inner.quote_tasks);
        for i in instruments {
            if !list.contains(i) {
                list.push(i.clone());
                tasks.push(tokio::spawn(quote_task(
                    self.inner.clone(),
                    client.clone(),
                    i.clone(),
                )));
            }
        }
        Ok(())
    }
}

/// The one account this guard guards: the configured one (which the gateway must manage),
/// else the only managed one. Several managed accounts and none chosen is refused with the list:
/// one book must never mix the positions of several accounts.
fn choose_account(configured: &str, managed: &[String]) -> Result<String, IbError> {
    if !configured.is_empty() {
        if !managed.is_empty() && !managed.iter().any(|a| a == configured) {
            return Err(IbError::AccountNotManaged {
                account: configured.to_owned(),
                managed: managed.to_vec(),
            });
        }
        return Ok(configured.to_owned());
    }
    match managed {
        [] => Ok(String::new()),
        [one] => Ok(one.clone()),
        several => Err(IbError::AccountAmbiguous {
            managed: several.to_vec(),
        }),
    }
}

#[cfg(test)]
mod account_tests {
    use super::*;

    #[test]
    fn one_account_is_guarded_never_a_mix() {
        let m = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(choose_account("", &m(&["DU1"])).unwrap(), "DU1");
        assert_eq!(choose_account("DU2", &m(&["DU1", "DU2"])).unwrap(), "DU2");
        let e = choose_account("", &m(&["DU1", "DU2"])).unwrap_err();
        assert_eq!(e.code(), "ib.account_ambiguous");
        assert!(e.to_string().contains("DU1, DU2"), "{e}");
        let e = choose_account("DU9", &m(&["DU1"])).unwrap_err();
        assert_eq!(e.code(), "ib.account_not_managed");
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;

    #[test]
    fn a_refused_cancel_ends_the_order_only_when_nothing_can_be_working() {
        assert_eq!(
            cancel_refused_state(10147, "OrderId 7 that needs to be cancelled is not found."),
            Some(CancelRefused::NotWorking)
        );
        for state in ["Cancelled", "ApiCancelled", "Inactive"] {
            let m = format!(
                "OrderId 7 that needs to be cancelled cannot be cancelled, state: {state}."
            );
            assert_eq!(
                cancel_refused_state(10148, &m),
                Some(CancelRefused::NotWorking),
                "{m}"
            );
        }
        for state in ["Filled", "PendingCancel", "Submitted"] {
            let m = format!(
                "OrderId 7 that needs to be cancelled cannot be cancelled, state: {state}."
            );
            assert_eq!(
                cancel_refused_state(10148, &m),
                Some(CancelRefused::Pending),
                "{m}"
            );
        }
        assert_eq!(cancel_refused_state(202, "Order Canceled - reason:"), None);
        // Below IB's 200–399 rejection band, the codes that end an order are listed.
        for code in [103, 110] {
            assert!(ORDER_REJECTIONS_BELOW_200.contains(&code));
        }
        assert!(
            !ORDER_REJECTIONS_BELOW_200.contains(&161),
            "161 refuses a cancel, not the order"
        );
    }
}
