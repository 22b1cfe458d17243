//! [`TradierBroker`]: the [`Broker`] over Tradier's REST API and its account and market
//! streams.
//!
//! Tradier has no executions endpoint and its account stream carries neither symbol nor side
//! (<https://docs.tradier.com/docs/account-streaming-responses>), so every order event is a
//! prompt to fetch the order, and fills are the growth of each part's executed quantity. Exercise
//! and assignment never arrive on a stream: they are a change of the positions with no order
//! behind it. The session therefore reads, in this order, on every order event, after each
//! placement, and every [`TradierSettings::poll`] even when the stream is quiet:
//!
//! 1. the order(s), publishing their executions and then their status;
//! 2. the positions, publishing each change as a [`BrokerEvent::Position`], as IB's position
//!    stream does, so a change no execution explains reaches the assignment guard unchanged.
//!
//! Orders are placed with our id in their `tag` (`tg-<id>`). A placement whose answer is lost
//! is never sent again: the orders are searched for its tag first.

use crate::convert::{self, order_id_of_tag};
use crate::error::TradierError;
use crate::rest::Rest;
use crate::settings::TradierSettings;
use crate::wire::{
    AccountEvent, BalancesResponse, MarketEvent, OrderResponse, OrdersResponse, Placed,
    PlacedResponse, PositionsResponse, ProfileResponse, QuotesResponse, SessionResponse, WireOrder,
};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tradeguard_model::hub::{EventHub, RestHealth, Tasks, position_changes};
use tradeguard_model::{
    AccountId, AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, Clock, ComboLeg,
    ComboOrder, ConnectionState, EventStream, ExecId, Execution, Instrument, InstrumentId,
    MarginImpact, Money, Notice, OpenOrder, OpenOrderKind, OrderId, OrderRequest, OrderStatus,
    OrderType, OrderUpdate, Position, Price, Quote, Side, StatusReason, Tif, Timestamp,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fills of one part (the order itself, or one leg) as last read.
#[derive(Debug, Clone, Copy, Default)]
struct PartFill {
    exec: i64,
    avg: f64,
}

/// An order this adapter placed (or found with our tag).
#[derive(Debug, Clone)]
struct Ours {
    kind: OpenOrderKind,
    tradier: Option<u64>,
    /// The last status published: (status, filled).
    last: Option<(OrderStatus, i64)>,
}

#[derive(Default)]
struct State {
    ours: HashMap<OrderId, Ours>,
    by_tradier: HashMap<u64, OrderId>,
    parts: HashMap<u64, Vec<PartFill>>,
    /// Executions published by this process (the answer to `executions_since` for them).
    execs: Vec<Execution>,
    positions: BTreeMap<InstrumentId, Position>,
    positions_read: bool,
}

struct Inner {
    settings: TradierSettings,
    account: AccountId,
    rest: Rest,
    hub: EventHub,
    clock: Arc<dyn Clock>,
    /// Whether the REST side answers (published as connection states).
    health: RestHealth,
    state: Mutex<State>,
    /// Serialises syncs: fills before positions, one reader at a time.
    sync: tokio::sync::Mutex<()>,
    next_id: AtomicI64,
    /// Asks the running session to read an order now.
    kick: Mutex<Option<mpsc::UnboundedSender<u64>>>,
    /// Symbols with live quotes (Tradier symbol → instrument); the market task follows it.
    quotes: watch::Sender<BTreeMap<String, Instrument>>,
    /// The last price of each underlying (its mid, else its last trade): the Greeks' spot.
    spots: Mutex<HashMap<String, Price>>,
}

/// A Tradier account as a [`Broker`].
pub struct TradierBroker {
    inner: Arc<Inner>,
    /// The session's tasks.
    tasks: Tasks,
    /// Serialises connects.
    connecting: tokio::sync::Mutex<()>,
}

impl TradierBroker {
    /// A broker for these settings (nothing is contacted before [`Broker::connect`]).
    pub fn new(settings: TradierSettings, clock: Arc<dyn Clock>) -> Result<Self, TradierError> {
        settings.validate()?;
        let rest = Rest::new(&settings, clock.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                account: AccountId::new(settings.account.clone()),
                settings,
                rest,
                hub: EventHub::new(4096, clock.clone()),
                clock,
                health: RestHealth::default(),
                state: Mutex::default(),
                sync: tokio::sync::Mutex::new(()),
                next_id: AtomicI64::new(0),
                kick: Mutex::new(None),
                quotes: watch::Sender::new(BTreeMap::new()),
                spots: Mutex::default(),
            }),
            tasks: Tasks::default(),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The account guarded.
    pub fn account_id(&self) -> &AccountId {
        &self.inner.account
    }

    /// A connection test for Settings: the token's accounts (the profile), and whether the
    /// configured account is among them.
    pub async fn test_connection(&self) -> Result<Vec<String>, TradierError> {
        self.inner.check_account().await
    }
}

impl Inner {
    fn path(&self, rest: &str) -> String {
        format!("/accounts/{}{rest}", self.account)
    }

    async fn check_account(&self) -> Result<Vec<String>, TradierError> {
        let p: ProfileResponse = self.rest.get("/user/profile", &[]).await?;
        let known: Vec<String> = p
            .profile
            .account
            .0
            .iter()
            .map(|a| a.account_number.clone())
            .collect();
        if !known.contains(&self.settings.account) {
            return Err(TradierError::UnknownAccount {
                account: self.settings.account.clone(),
                known: known.join(", "),
            });
        }
        Ok(known)
    }

    async fn read_orders(&self) -> Result<Vec<WireOrder>, TradierError> {
        let r: OrdersResponse = self
            .rest
            .get(&self.path("/orders"), &[("includeTags", "true")])
            .await?;
        Ok(r.orders)
    }

    async fn read_order(&self, id: u64) -> Result<WireOrder, TradierError> {
        let r: OrderResponse = self
            .rest
            .get(
                &self.path(&format!("/orders/{id}")),
                &[("includeTags", "true")],
            )
            .await?;
        Ok(r.order)
    }

    async fn read_positions(&self) -> Result<Vec<Position>, TradierError> {
        let r: PositionsResponse = self.rest.get(&self.path("/positions"), &[]).await?;
        r.positions
            .iter()
            .map(|p| convert::position(&self.account, p))
            .filter(|p| !matches!(p, Ok(p) if p.qty == 0))
            .collect()
    }

    fn timestamp(&self, iso: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(iso)
            .ok()
            .and_then(|d| Timestamp::from_datetime(d.to_utc()).ok())
            .unwrap_or_else(|| self.clock.now())
    }

    /// Reads an order's news into events: its new fills (executions), then its status.
    /// `baseline`: an order first seen at start-up, whose fills so far are in the positions
    /// already (they are answered by `executions_since`, not published).
    fn absorb(&self, st: &mut State, o: &WireOrder, baseline: bool) -> Vec<BrokerEvent> {
        let mut out = Vec::new();
        let local = st
            .by_tradier
            .get(&o.id)
            .copied()
            .or_else(|| order_id_of_tag(o.tag.as_deref()));
        if let Some(id) = local {
            st.by_tradier.insert(o.id, id);
            let kind = match st.ours.get(&id) {
                Some(ours) => ours.kind.clone(),
                None => match self.rebuild(id, o) {
                    Some(k) => k,
                    None => {
                        tracing::warn!(
                            order = o.id,
                            "an order with our tag could not be read back"
                        );
                        return out;
                    }
                },
            };
            let ours = st.ours.entry(id).or_insert(Ours {
                kind,
                tradier: Some(o.id),
                last: None,
            });
            ours.tradier = Some(o.id);
        }
        let parts = convert::parts(o);
        let first = !st.parts.contains_key(&o.id);
        let prev = st
            .parts
            .entry(o.id)
            .or_insert_with(|| vec![PartFill::default(); parts.len()])
            .clone();
        let mut now_fills = Vec::with_capacity(parts.len());
        for (i, (part, instrument)) in parts.iter().enumerate() {
            let exec = match convert::qty(part.exec_quantity, "executed quantity") {
                Ok(q) => q,
                Err(e) => {
                    self.hub
                        .notice(Notice::EXECUTION_CORRECTED, format!("order {}: {e}", o.id));
                    prev.get(i).map_or(0, |p| p.exec)
                }
            };
            let before = prev.get(i).copied().unwrap_or_default();
            now_fills.push(PartFill {
                exec,
                avg: part.avg_fill_price,
            });
            if baseline && first {
                continue;
            }
            if exec < before.exec {
                self.hub.notice(
                    Notice::EXECUTION_CORRECTED,
                    format!(
                        "Tradier order {} now reports {exec} executed where it reported {}",
                        o.id, before.exec
                    ),
                );
                continue;
            }
            let delta = exec - before.exec;
            if delta == 0 {
                continue;
            }
            let side = convert::side_of(&part.side)
                .or_else(|| convert::side_of(&o.side))
                .unwrap_or(Side::Buy);
            let value = part.avg_fill_price * exec as f64 - before.avg * before.exec as f64;
            let mut px = value / delta as f64;
            if !px.is_finite() || px <= 0.0 {
                px = if part.last_fill_price > 0.0 {
                    part.last_fill_price
                } else {
                    part.avg_fill_price
                };
            }
            let e = Execution {
                exec_id: ExecId::new(format!("T{}-{i}-{exec}", o.id)),
                order_id: local,
                account: self.account.clone(),
                instrument: instrument.clone(),
                side,
                qty: delta,
                price: Price::from_f64(px).unwrap_or(Price::ZERO),
                ts: self.timestamp(&part.transaction_date),
                commission: None,
                liquidity: None,
            };
            st.execs.push(e.clone());
            out.push(BrokerEvent::Execution(e));
        }
        st.parts.insert(o.id, now_fills.clone());
        let Some(id) = local else { return out };
        let Some(status) = convert::status(&o.status) else {
            tracing::warn!(order = o.id, status = %o.status, "unknown Tradier order status; kept the last");
            return out;
        };
        let Some(ours) = st.ours.get_mut(&id) else {
            return out;
        };
        let (total, filled) = match &ours.kind {
            OpenOrderKind::Single(r) => (r.qty, now_fills.first().map_or(0, |p| p.exec)),
            OpenOrderKind::Combo(c) => (
                c.qty,
                c.legs
                    .iter()
                    .zip(&now_fills)
                    .map(|(l, p)| p.exec / i64::from(l.ratio.max(1)))
                    .min()
                    .unwrap_or(0),
            ),
        };
        if ours.last == Some((status, filled)) {
            return out;
        }
        ours.last = Some((status, filled));
        let reason = matches!(status, OrderStatus::Rejected).then(|| StatusReason {
            code: "tradier.rejected".into(),
            text: o
                .reason_description
                .clone()
                .unwrap_or_else(|| format!("Tradier reports the order {}", o.status)),
        });
        let avg = if filled > 0 && o.avg_fill_price > 0.0 {
            Price::from_f64(o.avg_fill_price).ok()
        } else {
            None
        };
        out.push(BrokerEvent::OrderStatus(OrderUpdate {
            order_id: id,
            status,
            filled,
            remaining: if status.is_terminal() {
                0
            } else {
                (total - filled).max(0)
            },
            avg_fill_price: avg,
            reason,
            ts: self.timestamp(&o.transaction_date),
        }));
        out
    }

    /// An order of ours placed by an earlier run, read back from Tradier.
    fn rebuild(&self, id: OrderId, o: &WireOrder) -> Option<OpenOrderKind> {
        let tif = if o.duration == "gtc" {
            Tif::Gtc
        } else {
            Tif::Day
        };
        let px = |v: Option<f64>| v.and_then(|v| Price::from_f64(v).ok());
        if o.leg.is_empty() {
            let qty = convert::qty(o.quantity, "quantity").ok()?;
            let order_type = match o.order_type.as_str() {
                "limit" => OrderType::Limit {
                    limit: px(o.price)?,
                },
                "stop" => OrderType::Stop {
                    stop: px(o.stop_price)?,
                },
                "stop_limit" => OrderType::StopLimit {
                    stop: px(o.stop_price)?,
                    limit: px(o.price)?,
                },
                _ => OrderType::Market,
            };
            let sym = o.option_symbol.as_deref().unwrap_or(&o.symbol);
            return Some(OpenOrderKind::Single(OrderRequest {
                id,
                account: self.account.clone(),
                instrument: convert::instrument(sym),
                side: convert::side_of(&o.side)?,
                qty,
                order_type,
                tif,
                outside_rth: false,
            }));
        }
        let qtys: Vec<i64> = o
            .leg
            .iter()
            .map(|l| convert::qty(l.quantity, "leg quantity").ok())
            .collect::<Option<_>>()?;
        let unit = qtys.iter().copied().fold(0, gcd).max(1);
        let legs = o
            .leg
            .iter()
            .zip(&qtys)
            .map(|(l, q)| {
                Some(ComboLeg {
                    instrument: convert::instrument(
                        l.option_symbol.as_deref().unwrap_or(&l.symbol),
                    ),
                    side: convert::side_of(&l.side)?,
                    ratio: u32::try_from(q / unit).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let order_type = match (o.order_type.as_str(), px(o.price)) {
            ("debit", Some(p)) => OrderType::Limit { limit: p },
            ("credit", Some(p)) => OrderType::Limit {
                limit: Price::from_raw(p.raw().saturating_neg()),
            },
            ("even", _) => OrderType::Limit { limit: Price::ZERO },
            _ => OrderType::Market,
        };
        Some(OpenOrderKind::Combo(ComboOrder {
            id,
            account: self.account.clone(),
            legs,
            qty: unit,
            order_type,
            tif,
        }))
    }

    fn publish(&self, events: Vec<BrokerEvent>) {
        for e in events {
            self.hub.publish(e);
        }
    }

    /// Positions read now, their changes published (all of them the first time).
    async fn sync_positions(&self) -> Result<(), TradierError> {
        let fresh = self.read_positions().await?;
        let events = {
            let mut st = lock(&self.state);
            let all = !std::mem::replace(&mut st.positions_read, true);
            position_changes(&mut st.positions, fresh, all)
        };
        self.publish(events);
        Ok(())
    }

    /// Everything: orders (fills, statuses), then positions, then the account.
    async fn sync_all(&self, baseline: bool) -> Result<(), TradierError> {
        let _one = self.sync.lock().await;
        let orders = self.read_orders().await?;
        let events = {
            let mut st = lock(&self.state);
            let mut ev = Vec::new();
            for o in &orders {
                ev.extend(self.absorb(&mut st, o, baseline));
            }
            ev
        };
        self.publish(events);
        self.sync_positions().await?;
        if let Ok(a) = self.read_account().await {
            self.hub.publish(BrokerEvent::Account(a));
        }
        Ok(())
    }

    /// One order (after its event or our placement), then the positions when it filled.
    async fn sync_order(&self, id: u64) -> Result<(), TradierError> {
        let _one = self.sync.lock().await;
        let o = self.read_order(id).await?;
        let events = {
            let mut st = lock(&self.state);
            self.absorb(&mut st, &o, false)
        };
        let filled = events
            .iter()
            .any(|e| matches!(e, BrokerEvent::Execution(_)));
        self.publish(events);
        if filled {
            self.sync_positions().await?;
        }
        Ok(())
    }

    fn rest_result(&self, what: &str, r: Result<(), TradierError>) {
        let r = r.map_err(|e| (e.code(), e.to_string()));
        self.health.report(&self.hub, "Tradier", what, r);
    }

    async fn read_account(&self) -> Result<AccountSnapshot, TradierError> {
        let r: BalancesResponse = self.rest.get(&self.path("/balances"), &[]).await?;
        let b = r.balances;
        let m = |v: f64| Money::from_f64(v).unwrap_or(Money::ZERO);
        let buying_power = match (&b.margin, &b.pdt, &b.cash) {
            (Some(x), _, _) | (None, Some(x), _) => x.option_buying_power,
            (None, None, Some(c)) => c.cash_available,
            _ => b.total_cash,
        };
        Ok(AccountSnapshot {
            account: self.account.clone(),
            net_liquidation: m(b.total_equity),
            maintenance_margin: m(b.current_requirement),
            // Tradier reports one requirement.
            initial_margin: m(b.current_requirement),
            excess_liquidity: m(b.total_equity - b.current_requirement),
            buying_power: m(buying_power),
            ts: self.clock.now(),
        })
    }

    /// The quantity held now, read fresh: the side of an order (open or close) depends on it,
    /// and a position the last poll has not seen must not make a close an open.
    async fn holdings(&self) -> HashMap<InstrumentId, i64> {
        match self.read_positions().await {
            Ok(ps) => ps.into_iter().map(|p| (p.instrument.id(), p.qty)).collect(),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "positions unreadable before an order; using the last read: {e}"
                );
                lock(&self.state)
                    .positions
                    .iter()
                    .map(|(k, p)| (k.clone(), p.qty))
                    .collect()
            }
        }
    }

    /// Sends an order form; a lost answer is resolved by looking for the tag.
    async fn submit(
        &self,
        id: OrderId,
        kind: OpenOrderKind,
        form: Vec<(String, String)>,
    ) -> Result<(), BrokerError> {
        lock(&self.state).ours.insert(
            id,
            Ours {
                kind,
                tradier: None,
                last: None,
            },
        );
        let sent: Result<PlacedResponse, TradierError> = self
            .rest
            .send(Method::POST, &self.path("/orders"), &form)
            .await;
        match sent {
            Ok(PlacedResponse {
                order: Placed { id: Some(t), .. },
            }) => {
                self.adopt(id, t);
                Ok(())
            }
            Ok(_) => {
                self.resolve_lost(id, "Tradier's answer had no order id")
                    .await
            }
            // A 5xx may come after the order was taken (Tradier's "Datastore Error"): ambiguous.
            Err(TradierError::Refused { status, message }) if status >= 500 => {
                self.resolve_lost(id, &format!("Tradier answered {status}: {message}"))
                    .await
            }
            Err(e @ (TradierError::Refused { .. } | TradierError::Unauthorized)) => {
                lock(&self.state).ours.remove(&id);
                Err(e.into())
            }
            Err(TradierError::RateLimited { wait_ms }) => {
                lock(&self.state).ours.remove(&id);
                Err(BrokerError::Rejected {
                    code: "tradier.rate_limited".into(),
                    reason: format!(
                        "Tradier's trading rate limit is used up for {wait_ms} ms more; not placed"
                    ),
                })
            }
            Err(e) => self.resolve_lost(id, &e.to_string()).await,
        }
    }

    fn adopt(&self, id: OrderId, tradier: u64) {
        {
            let mut st = lock(&self.state);
            st.by_tradier.insert(tradier, id);
            if let Some(o) = st.ours.get_mut(&id) {
                o.tradier = Some(tradier);
            }
        }
        // A downstream rejection shows only on the order: read it now.
        self.read_soon(tradier);
    }

    /// The answer to a placement was lost: the order may or may not be at Tradier. Never sent
    /// again blind: the day's orders are searched for its tag.
    async fn resolve_lost(&self, id: OrderId, why: &str) -> Result<(), BrokerError> {
        let tag = convert::tag(id);
        tracing::warn!(
            order = id.0,
            "placement answer lost ({why}); looking for tag {tag}"
        );
        match self.read_orders().await {
            Ok(orders) => match orders.iter().find(|o| o.tag.as_deref() == Some(&tag)) {
                Some(o) => {
                    self.adopt(id, o.id);
                    Ok(())
                }
                None => {
                    lock(&self.state).ours.remove(&id);
                    Err(BrokerError::Io(format!(
                        "{why}; the order is not at Tradier (no order tagged {tag}), so it was not placed"
                    )))
                }
            },
            Err(e) => {
                // Kept: the next poll adopts it if it is there after all.
                self.hub.notice(
                    Notice::ORDER_OUTCOME_UNKNOWN,
                    format!("order {id}: {why}; whether Tradier has it is unknown until the next read ({e})"),
                );
                Err(BrokerError::Timeout(format!(
                    "Tradier's answer to order {id} ({why}); its outcome is read on the next poll"
                )))
            }
        }
    }

    /// A quote as published: a stock's price kept as its options' spot; an option's Greeks from
    /// our pricing at that spot (Tradier's own are hours old).
    fn enrich(&self, mut q: Quote) -> Quote {
        match &q.instrument {
            Instrument::Stock { symbol } => {
                if let Some(p) = q.mid().or(q.last) {
                    lock(&self.spots).insert(symbol.clone(), p);
                }
            }
            Instrument::Option(o) => {
                let spot = lock(&self.spots).get(&o.underlying).copied();
                if let Some(spot) = spot {
                    q.greeks = crate::greeks::of_quote(o, &q, spot, self.clock.now());
                    q.underlying_price = Some(spot);
                }
            }
            Instrument::Future { .. } => {}
        }
        q
    }

    fn read_soon(&self, tradier: u64) {
        if let Some(k) = lock(&self.kick).as_ref() {
            let _ = k.send(tradier);
        }
    }

    fn next_reconnect(delay: Duration, max: Duration) -> Duration {
        (delay * 2).min(max)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The account stream: a new session, the socket, the subscription.
async fn open_account_stream(inner: &Inner) -> Result<Ws, TradierError> {
    let s: SessionResponse = inner
        .rest
        .send(Method::POST, "/accounts/events/session", &[])
        .await?;
    let url = format!(
        "{}/accounts/events",
        ws_base(&inner.settings.api_url, &s.stream.url)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| TradierError::Transport(format!("account stream: {e}")))?;
    let sub = serde_json::json!({
        "events": ["order"],
        "sessionid": s.stream.sessionid,
        "excludeAccounts": [],
    });
    ws.send(Message::text(sub.to_string()))
        .await
        .map_err(|e| TradierError::Transport(format!("account stream: {e}")))?;
    Ok(ws)
}

/// The WebSocket base of an API: the session's URL names the host for streams; Tradier's live
/// and sandbox stream hosts are `ws.tradier.com` and `sandbox-ws.tradier.com`.
fn ws_base(api: &str, session_url: &str) -> String {
    // A session URL on a WebSocket scheme names the host (the fake's); otherwise the
    // documented hosts by environment.
    if let Some(rest) = session_url
        .strip_prefix("ws://")
        .or_else(|| session_url.strip_prefix("wss://"))
    {
        let scheme = if session_url.starts_with("ws://") {
            "ws"
        } else {
            "wss"
        };
        let host = rest.split('/').next().unwrap_or(rest);
        return format!("{scheme}://{host}/v1");
    }
    if api.contains("sandbox.tradier.com") {
        "wss://sandbox-ws.tradier.com/v1".into()
    } else {
        "wss://ws.tradier.com/v1".into()
    }
}

/// The session: the account stream (re-opened with a new session after any loss or silence),
/// the poll, and the prompts after placements.
async fn run_account(
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
    mut kicks: mpsc::UnboundedReceiver<u64>,
) {
    let s = &inner.settings;
    let mut poll = tokio::time::interval(s.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    let mut ws: Option<Ws> = None;
    let mut delay = Duration::from_secs(1);
    let mut retry_at = tokio::time::Instant::now();
    let mut last_msg = tokio::time::Instant::now();
    let mut stalled = false;
    loop {
        if ws.is_none() && tokio::time::Instant::now() >= retry_at {
            match open_account_stream(&inner).await {
                Ok(w) => {
                    tracing::info!("Tradier account stream open");
                    ws = Some(w);
                    last_msg = tokio::time::Instant::now();
                    delay = Duration::from_secs(1);
                    if stalled {
                        stalled = false;
                        inner
                            .hub
                            .publish(BrokerEvent::Connection(ConnectionState::Connected));
                    }
                    // Whatever happened while the stream was away: there is no replay.
                    let r = inner.sync_all(false).await;
                    inner.rest_result("read after the stream reopened", r);
                }
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "Tradier account stream: {e}; again in {delay:?}"
                    );
                    retry_at = tokio::time::Instant::now() + delay;
                    delay = Inner::next_reconnect(delay, s.reconnect_max_delay);
                    if !stalled {
                        stalled = true;
                        inner
                            .hub
                            .publish(BrokerEvent::Connection(ConnectionState::Stalled {
                                silent_ms: last_msg.elapsed().as_millis() as u64,
                            }));
                    }
                }
            }
        }
        let wake = if ws.is_none() {
            retry_at
        } else {
            last_msg + s.stall
        };
        let open = ws.is_some();
        let next_msg = async {
            match ws.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => {
                if let Some(mut w) = ws.take() {
                    let _ = w.close(None).await;
                }
                return;
            }
            m = next_msg => {
                match m {
                    Some(Ok(Message::Text(t))) => {
                        last_msg = tokio::time::Instant::now();
                        match serde_json::from_str::<AccountEvent>(&t) {
                            Ok(ev) if ev.event == "order" => {
                                if let Some(id) = ev.id {
                                    let r = inner.sync_order(id).await;
                                    inner.rest_result("order read", r);
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("unreadable account-stream message ({e}): {}", t.chars().take(200).collect::<String>());
                                inner.hub.notice(Notice::EVENTS_DROPPED, format!("Tradier account stream sent an unreadable message ({e}); reading the orders instead"));
                                let r = inner.sync_all(false).await;
                                inner.rest_result("read", r);
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        tracing::warn!("Tradier account stream closed; reopening with a new session");
                        ws = None;
                        retry_at = tokio::time::Instant::now();
                    }
                    Some(Ok(_)) => last_msg = tokio::time::Instant::now(),
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if open {
                    let silent = last_msg.elapsed();
                    tracing::warn!(silent_ms = silent.as_millis() as u64, "Tradier account stream silent; reopening with a new session");
                    if !stalled {
                        stalled = true;
                        inner.hub.publish(BrokerEvent::Connection(ConnectionState::Stalled {
                            silent_ms: silent.as_millis() as u64,
                        }));
                    }
                    if let Some(mut w) = ws.take() {
                        let _ = w.close(None).await;
                    }
                    retry_at = tokio::time::Instant::now();
                }
            }
            _ = poll.tick() => {
                let r = inner.sync_all(false).await;
                inner.rest_result("poll", r);
            }
            Some(id) = kicks.recv() => {
                let r = inner.sync_order(id).await;
                inner.rest_result("order read", r);
            }
        }
    }
}

/// Live quotes: a market session and socket carrying every subscribed symbol; re-subscribed
/// (the whole list, as Tradier wants) when the list grows, re-opened when lost.
async fn run_market(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut symbols = inner.quotes.subscribe();
    let mut delay = Duration::from_secs(1);
    loop {
        if symbols.borrow_and_update().is_empty() {
            tokio::select! {
                _ = stop.changed() => return,
                r = symbols.changed() => if r.is_err() { return } else { continue },
            }
        }
        let opened = async {
            let s: SessionResponse = inner
                .rest
                .send(Method::POST, "/markets/events/session", &[])
                .await?;
            let url = format!(
                "{}/markets/events",
                ws_base(&inner.settings.api_url, &s.stream.url)
            );
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(|e| TradierError::Transport(format!("market stream: {e}")))?;
            Ok::<_, TradierError>((ws, s.stream.sessionid))
        };
        let (mut ws, session) = match opened.await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "Tradier market stream: {e}; again in {delay:?}"
                );
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = Inner::next_reconnect(delay, inner.settings.reconnect_max_delay);
                continue;
            }
        };
        delay = Duration::from_secs(1);
        let mut subscribed = true;
        let payload = |list: &BTreeMap<String, Instrument>| {
            serde_json::json!({
                "symbols": list.keys().collect::<Vec<_>>(),
                "sessionid": session,
                "filter": ["quote"],
                "linebreak": true,
            })
            .to_string()
        };
        let first = payload(&symbols.borrow());
        if ws.send(Message::text(first)).await.is_err() {
            continue;
        }
        loop {
            tokio::select! {
                _ = stop.changed() => { let _ = ws.close(None).await; return; }
                r = symbols.changed() => {
                    if r.is_err() { return; }
                    let p = payload(&symbols.borrow_and_update());
                    if ws.send(Message::text(p)).await.is_err() { subscribed = false; }
                }
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        for line in t.lines().filter(|l| !l.trim().is_empty()) {
                            match serde_json::from_str::<MarketEvent>(line) {
                                Ok(q) if q.kind == "quote" => {
                                    let instrument = symbols.borrow().get(&q.symbol).cloned();
                                    if let Some(instrument) = instrument {
                                        let quote = inner.enrich(market_quote(&inner, instrument, &q));
                                        inner.hub.publish(BrokerEvent::Quote(quote));
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => tracing::warn!("unreadable market-stream message ({e})"),
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => subscribed = false,
                    Some(Ok(_)) => {}
                }
            }
            if !subscribed {
                tracing::warn!("Tradier market stream lost; reopening");
                break;
            }
        }
    }
}

fn side_price(v: f64) -> Option<Price> {
    // Tradier writes 0 for an empty side.
    (v.is_finite() && v > 0.0)
        .then(|| Price::from_f64(v).ok())
        .flatten()
}

fn market_quote(inner: &Inner, instrument: Instrument, q: &MarketEvent) -> Quote {
    Quote {
        instrument,
        bid: side_price(q.bid),
        ask: side_price(q.ask),
        last: q.price.and_then(side_price),
        bid_size: q.bidsz.max(0.0) as i64,
        ask_size: q.asksz.max(0.0) as i64,
        // Tradier's Greeks are ORATS', refreshed about hourly: the guard's own pricing is used.
        greeks: None,
        underlying_price: None,
        ts: inner.clock.now(),
    }
}

#[async_trait::async_trait]
impl Broker for TradierBroker {
    fn name(&self) -> &str {
        "tradier"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_combos: true,
            what_if: true,
            trailing_stops: false,
            outside_rth: false,
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
            inner.check_account().await?;
            inner.sync_all(true).await
        };
        if let Err(e) = first.await {
            inner
                .hub
                .publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                    reason: format!("[{}] {e}", e.code()),
                }));
            return Err(e.into());
        }
        // Ids above every tag of ours Tradier still lists and above the last run's (time).
        let highest = lock(&inner.state)
            .ours
            .keys()
            .map(|o| o.0)
            .max()
            .unwrap_or(0);
        let start = inner.clock.now().millis().max(highest + 1);
        inner.next_id.fetch_max(start, Ordering::SeqCst);
        let (kick, kicks) = mpsc::unbounded_channel();
        *lock(&inner.kick) = Some(kick);
        self.tasks
            .start(|rx| {
                vec![
                    tokio::spawn(run_account(inner.clone(), rx.clone(), kicks)),
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
        let held = self
            .inner
            .holdings()
            .await
            .get(&order.instrument.id())
            .copied()
            .unwrap_or(0);
        let form = convert::single_form(order, held, false).map_err(BrokerError::from)?;
        self.inner
            .submit(order.id, OpenOrderKind::Single(order.clone()), form)
            .await
    }

    async fn place_combo(&self, order: &ComboOrder) -> Result<(), BrokerError> {
        order.validate()?;
        if !self.tasks.running().await {
            return Err(BrokerError::NotConnected);
        }
        let held = self.inner.holdings().await;
        let form = convert::multileg_form(order, |i| held.get(&i.id()).copied().unwrap_or(0))
            .map_err(BrokerError::from)?;
        self.inner
            .submit(order.id, OpenOrderKind::Combo(order.clone()), form)
            .await
    }

    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError> {
        let tradier = lock(&self.inner.state)
            .ours
            .get(&id)
            .and_then(|o| o.tradier);
        let Some(t) = tradier else {
            return Err(BrokerError::UnknownOrder(id));
        };
        let r: Result<PlacedResponse, TradierError> = self
            .inner
            .rest
            .send(
                Method::DELETE,
                &self.inner.path(&format!("/orders/{t}")),
                &[],
            )
            .await;
        // Whatever the answer, the order's own state says what happened: read it.
        self.inner.read_soon(t);
        match r {
            Ok(_) => Ok(()),
            // "order already in finalized state": its status (filled, cancelled) is read now.
            Err(TradierError::Refused { message, .. }) if message.contains("finalized") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        Ok(self.inner.read_positions().await?)
    }

    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        let orders = self.inner.read_orders().await?;
        let mut st = lock(&self.inner.state);
        let mut out = Vec::new();
        for o in &orders {
            let Some(status) = convert::status(&o.status) else {
                continue;
            };
            if status.is_terminal() {
                continue;
            }
            let Some(id) = st
                .by_tradier
                .get(&o.id)
                .copied()
                .or_else(|| order_id_of_tag(o.tag.as_deref()))
            else {
                continue;
            };
            let kind = match st.ours.get(&id) {
                Some(x) => x.kind.clone(),
                None => match self.inner.rebuild(id, o) {
                    Some(k) => k,
                    None => continue,
                },
            };
            st.by_tradier.insert(o.id, id);
            let filled = convert::qty(o.exec_quantity, "executed").unwrap_or(0);
            let total = match &kind {
                OpenOrderKind::Single(r) => r.qty,
                OpenOrderKind::Combo(c) => c.qty,
            };
            out.push(OpenOrder {
                order: kind,
                status: OrderUpdate {
                    order_id: id,
                    status,
                    filled,
                    remaining: (total - filled).max(0),
                    avg_fill_price: None,
                    reason: None,
                    ts: self.inner.timestamp(&o.transaction_date),
                },
            });
        }
        Ok(out)
    }

    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        let orders = self.inner.read_orders().await?;
        let st = lock(&self.inner.state);
        let mut out: Vec<Execution> = st.execs.iter().filter(|e| e.ts >= since).cloned().collect();
        for o in &orders {
            let emitted = st
                .execs
                .iter()
                .any(|e| e.exec_id.as_str().starts_with(&format!("T{}-", o.id)));
            if emitted {
                continue;
            }
            let local = st
                .by_tradier
                .get(&o.id)
                .copied()
                .or_else(|| order_id_of_tag(o.tag.as_deref()));
            for (i, (part, instrument)) in convert::parts(o).into_iter().enumerate() {
                let exec = convert::qty(part.exec_quantity, "executed").unwrap_or(0);
                let ts = self.inner.timestamp(&part.transaction_date);
                if exec <= 0 || ts < since {
                    continue;
                }
                let Some(side) = convert::side_of(&part.side).or_else(|| convert::side_of(&o.side))
                else {
                    continue;
                };
                out.push(Execution {
                    exec_id: ExecId::new(format!("T{}-{i}-{exec}", o.id)),
                    order_id: local,
                    account: self.inner.account.clone(),
                    instrument,
                    side,
                    qty: exec,
                    price: Price::from_f64(part.avg_fill_price).unwrap_or(Price::ZERO),
                    ts,
                    commission: None,
                    liquidity: None,
                });
            }
        }
        Ok(out)
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        Ok(self.inner.read_account().await?)
    }

    async fn what_if(&self, order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        order.validate()?;
        let held = self
            .inner
            .holdings()
            .await
            .get(&order.instrument.id())
            .copied()
            .unwrap_or(0);
        let form = convert::single_form(order, held, true).map_err(BrokerError::from)?;
        let r: PlacedResponse = self
            .inner
            .rest
            .send(Method::POST, &self.inner.path("/orders"), &form)
            .await?;
        if r.order.result == Some(false) {
            return Err(BrokerError::Rejected {
                code: "tradier.preview_refused".into(),
                reason: "Tradier's preview refuses the order".into(),
            });
        }
        let before = self.inner.read_account().await?.maintenance_margin;
        let m = |v: Option<f64>| v.and_then(|v| Money::from_f64(v).ok());
        let change = m(r.order.margin_change).unwrap_or(Money::ZERO);
        let after = before.checked_add(change).unwrap_or(before);
        Ok(Some(MarginImpact {
            initial_change: change,
            maintenance_change: change,
            initial_after: after,
            maintenance_after: after,
            commission: m(r.order.commission),
        }))
    }

    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError> {
        let mut added = Vec::new();
        for i in instruments {
            added.push((convert::symbol(i).map_err(BrokerError::from)?, i.clone()));
            // An option's underlying too: its price is the Greeks' spot.
            if let Instrument::Option(o) = i {
                added.push((o.underlying.clone(), Instrument::stock(&o.underlying)));
            }
        }
        // Stocks first: the spot is known before the options' Greeks are computed.
        added.sort_by_key(|(_, i)| !matches!(i, Instrument::Stock { .. }));
        added.dedup_by(|a, b| a.0 == b.0);
        let symbols: Vec<String> = added.iter().map(|(s, _)| s.clone()).collect();
        self.inner.quotes.send_modify(|m| {
            for (s, i) in added.iter().cloned() {
                m.insert(s, i);
            }
        });
        // A first quote at once over REST (the stream sends changes).
        if !symbols.is_empty() {
            let joined = symbols.join(",");
            match self
                .inner
                .rest
                .get::<QuotesResponse>("/markets/quotes", &[("symbols", joined.as_str())])
                .await
            {
                Ok(r) => {
                    let map = self.inner.quotes.borrow().clone();
                    let mut quotes = r.quotes.quote.0;
                    quotes.sort_by_key(|q| q.symbol.len() > 6);
                    for q in quotes {
                        if let Some(instrument) = map.get(&q.symbol) {
                            let quote = self.inner.enrich(Quote {
                                instrument: instrument.clone(),
                                bid: q.bid.and_then(side_price),
                                ask: q.ask.and_then(side_price),
                                last: q.last.and_then(side_price),
                                bid_size: q.bidsize.unwrap_or(0.0).max(0.0) as i64,
                                ask_size: q.asksize.unwrap_or(0.0).max(0.0) as i64,
                                greeks: None,
                                underlying_price: None,
                                ts: self.inner.clock.now(),
                            });
                            self.inner.hub.publish(BrokerEvent::Quote(quote));
                        }
                    }
                }
                Err(e) => tracing::warn!(code = e.code(), "Tradier quotes: {e}"),
            }
        }
        Ok(())
    }
}
