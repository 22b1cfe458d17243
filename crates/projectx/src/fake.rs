//! A fake ProjectX gateway: the REST routes with their envelope, the user and market hubs over
//! SignalR's JSON protocol, and fault switches for tests. What is modelled, and from which page,
//! is tabled in the crate's README.
//!
//! - REST: JSON `POST`s; `success: false` with an endpoint's error code at HTTP 200; 401 for a
//!   missing or expired token; 429 with `Retry-After` past 200 requests a minute.
//! - Hubs: `?access_token=`, the handshake and its `{}` answer, `Subscribe*` invocations answered
//!   with completions, pushes in every shape ProjectX uses (a bare object, `{action, data}`, an
//!   array), pings, no replay after a reconnect.
//! - Faults: a silent hub (the socket open, nothing sent, pings included), a malformed record,
//!   the firm's flatten (market orders without a tag), the account locked mid-session, a
//!   placement whose answer is lost after the order was taken.

use crate::signalr::{self, HubMessage, RS};
use crate::wire::{Account, Order, Position, Trade};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Json, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::SinkExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeProjectxConfig {
    /// User name accepted.
    pub user: String,
    /// API key accepted.
    pub api_key: String,
    /// The account's name.
    pub account: String,
    /// Its id.
    pub account_id: i64,
    /// Starting balance.
    pub balance: f64,
    /// Token lifetime (ProjectX: 24 h).
    pub token_ttl: Duration,
    /// Hub ping interval (SignalR: 15 s).
    pub ping: Duration,
    /// Requests per window before 429 (ProjectX: 200 a minute).
    pub per_window: u32,
    /// The window.
    pub window: Duration,
    /// Whether marketable orders fill at once.
    pub auto_fill: bool,
}

impl Default for FakeProjectxConfig {
    fn default() -> Self {
        Self {
            user: "trader".into(),
            api_key: "fake-key".into(),
            account: "50KTC-V2-FAKE-1".into(),
            account_id: 7001,
            balance: 50_000.0,
            token_ttl: Duration::from_secs(24 * 3600),
            ping: Duration::from_secs(15),
            per_window: 200,
            window: Duration::from_secs(60),
            auto_fill: true,
        }
    }
}

#[derive(Default)]
struct Faults {
    throttle: u32,
    lose_answer: bool,
    /// The next placement is taken, then answered `success: false` with this code.
    ambiguous: Option<i64>,
    silent: bool,
    malformed_next: bool,
}

#[derive(Default)]
struct Book {
    positions: BTreeMap<String, (i64, f64)>,
    quotes: BTreeMap<String, (f64, f64)>,
    orders: Vec<Order>,
    trades: Vec<Trade>,
    next_id: i64,
    can_trade: bool,
    balance: f64,
    tags: std::collections::HashSet<String>,
    /// Requests in the window.
    window: Option<(Instant, u32)>,
}

struct Shared {
    cfg: FakeProjectxConfig,
    book: Mutex<Book>,
    faults: Mutex<Faults>,
    tokens: Mutex<HashMap<String, Instant>>,
    next_token: Mutex<u64>,
    /// (target, arguments) pushed to user-hub subscribers.
    user: broadcast::Sender<(String, Value)>,
    market: broadcast::Sender<(String, Value)>,
    close: watch::Sender<u64>,
    hub_opens: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// A running fake ProjectX.
pub struct FakeProjectx {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeProjectx {
    /// Starts on `bind` (`127.0.0.1:0`: a free port).
    pub async fn start_on(cfg: FakeProjectxConfig, bind: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            book: Mutex::new(Book {
                next_id: 90_001,
                can_trade: true,
                balance: cfg.balance,
                ..Book::default()
            }),
            cfg,
            faults: Mutex::default(),
            tokens: Mutex::default(),
            next_token: Mutex::new(1),
            user: broadcast::channel(1024).0,
            market: broadcast::channel(1024).0,
            close: watch::Sender::new(0),
            hub_opens: Mutex::new(0),
        });
        let app = Router::new()
            .route("/api/{group}/{action}", post(api))
            .route("/hubs/user", get(user_hub))
            .route("/hubs/market", get(market_hub))
            .route("/fake/quote", post(fake_quote))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            shared,
            addr,
            stop: Some(stop),
        })
    }

    /// Starts on a free local port.
    pub async fn start(cfg: FakeProjectxConfig) -> std::io::Result<Self> {
        Self::start_on(cfg, "127.0.0.1:0").await
    }

    /// The base URL (`http://127.0.0.1:PORT`): REST and hubs alike.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration.
    pub fn config(&self) -> &FakeProjectxConfig {
        &self.shared.cfg
    }

    /// A position (signed), with no order: how a test sets the scene.
    pub fn set_position(&self, contract: &str, qty: i64, avg: f64) {
        let mut b = lock(&self.shared.book);
        if qty == 0 {
            b.positions.remove(contract);
        } else {
            b.positions.insert(contract.to_owned(), (qty, avg));
        }
    }

    /// A quote; working orders that became marketable fill.
    pub fn set_quote(&self, contract: &str, bid: f64, ask: f64) {
        self.shared.set_quote(contract, bid, ask);
    }

    /// The firm flattens the account: a market order without a tag per position, filled.
    pub fn firm_flatten(&self) {
        let held: Vec<(String, i64)> = lock(&self.shared.book)
            .positions
            .iter()
            .map(|(c, (q, _))| (c.clone(), *q))
            .collect();
        for (c, q) in held {
            let id =
                self.shared
                    .new_order(&c, 2, if q > 0 { 1 } else { 0 }, q.abs(), None, None, None);
            self.shared.fill(id, q.abs(), None);
        }
    }

    /// The firm locks (or unlocks) the account: `canTrade`, pushed on the hub.
    pub fn set_can_trade(&self, can: bool) {
        lock(&self.shared.book).can_trade = can;
        let a = self.shared.account();
        let _ = self
            .shared
            .user
            .send(("GatewayUserAccount".into(), json!([a])));
    }

    /// The firm unlocks the account without a hub push (the adapter's flag is stale until it
    /// reads the account again).
    pub fn unlock_quietly(&self) {
        lock(&self.shared.book).can_trade = true;
    }

    /// The next `n` requests answer 429 with `Retry-After: 1`.
    pub fn throttle_next(&self, n: u32) {
        lock(&self.shared.faults).throttle = n;
    }

    /// The next placement is taken, then answered with a 500.
    pub fn lose_next_answer(&self) {
        lock(&self.shared.faults).lose_answer = true;
    }

    /// The next placement is taken, then answered `success: false` with `code` (6
    /// OrderPending, 7 UnknownError: the order exists all the same).
    pub fn ambiguous_next(&self, code: i64) {
        lock(&self.shared.faults).ambiguous = Some(code);
    }

    /// The hubs send nothing (no events, no pings), the sockets stay open.
    pub fn silence_hubs(&self, silent: bool) {
        lock(&self.shared.faults).silent = silent;
    }

    /// The next user-hub push is a malformed record.
    pub fn malformed_next(&self) {
        lock(&self.shared.faults).malformed_next = true;
    }

    /// Closes every hub socket.
    pub fn close_hubs(&self) {
        self.shared.close.send_modify(|n| *n += 1);
    }

    /// Hub connections opened so far.
    pub fn hub_opens(&self) -> u64 {
        *lock(&self.shared.hub_opens)
    }

    /// Fills `size` of order `id` at `price` (the quote when `None`).
    pub fn fill(&self, id: i64, size: i64, price: Option<f64>) {
        self.shared.fill(id, size, price);
    }

    /// Orders, oldest first.
    pub fn orders(&self) -> Vec<Order> {
        lock(&self.shared.book).orders.clone()
    }

    /// Positions: contract → signed size.
    pub fn positions(&self) -> BTreeMap<String, i64> {
        lock(&self.shared.book)
            .positions
            .iter()
            .map(|(c, (q, _))| (c.clone(), *q))
            .collect()
    }
}

impl Drop for FakeProjectx {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.close_hubs();
    }
}

impl Shared {
    fn account(&self) -> Account {
        let b = lock(&self.book);
        Account {
            id: self.cfg.account_id,
            name: self.cfg.account.clone(),
            balance: b.balance,
            can_trade: b.can_trade,
            is_visible: true,
            simulated: true,
        }
    }

    fn position_json(&self, contract: &str, qty: i64, avg: f64) -> Position {
        Position {
            id: 5000 + contract.len() as i64,
            account_id: self.cfg.account_id,
            contract_id: contract.to_owned(),
            creation_timestamp: now_iso(),
            position_type: if qty >= 0 { 1 } else { 2 },
            size: qty.abs(),
            average_price: avg,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_order(
        &self,
        contract: &str,
        kind: i64,
        side: i64,
        size: i64,
        limit: Option<f64>,
        stop: Option<f64>,
        tag: Option<String>,
    ) -> i64 {
        let o = {
            let mut b = lock(&self.book);
            let id = b.next_id;
            b.next_id += 1;
            let o = Order {
                id,
                account_id: self.cfg.account_id,
                contract_id: contract.to_owned(),
                creation_timestamp: now_iso(),
                update_timestamp: Some(now_iso()),
                status: 1,
                order_type: kind,
                side,
                size,
                limit_price: limit,
                stop_price: stop,
                fill_volume: 0,
                filled_price: None,
                custom_tag: tag,
            };
            b.orders.push(o.clone());
            o
        };
        // Orders come bare.
        let _ = self.user.send(("GatewayUserOrder".into(), json!([o])));
        o.id
    }

    fn try_fill(&self, id: i64) {
        let (price, left) = {
            let b = lock(&self.book);
            let Some(o) = b.orders.iter().find(|o| o.id == id && o.status == 1) else {
                return;
            };
            let Some((bid, ask)) = b.quotes.get(&o.contract_id).copied() else {
                return;
            };
            let at = if o.side == 0 { ask } else { bid };
            let ok = match (o.order_type, o.limit_price) {
                (2, _) => true,
                (1, Some(l)) => (o.side == 0 && at <= l) || (o.side == 1 && at >= l),
                _ => false,
            };
            if !ok {
                return;
            }
            (at, o.size - o.fill_volume)
        };
        self.fill(id, left, Some(price));
    }

    fn fill(&self, id: i64, size: i64, price: Option<f64>) {
        let (order, trade, position) = {
            let mut b = lock(&self.book);
            let quotes = b.quotes.clone();
            let Some(idx) = b.orders.iter().position(|o| o.id == id) else {
                return;
            };
            let tid = b.next_id;
            b.next_id += 1;
            let o = &mut b.orders[idx];
            let size = size.min(o.size - o.fill_volume);
            if size <= 0 {
                return;
            }
            let px = price
                .or_else(|| {
                    quotes
                        .get(&o.contract_id)
                        .map(|(bid, ask)| if o.side == 0 { *ask } else { *bid })
                })
                .unwrap_or(1.0);
            let before = o.fill_volume as f64 * o.filled_price.unwrap_or(0.0);
            o.fill_volume += size;
            o.filled_price = Some((before + px * size as f64) / o.fill_volume as f64);
            if o.fill_volume >= o.size {
                o.status = 2;
            }
            o.update_timestamp = Some(now_iso());
            let order = o.clone();
            let signed = if order.side == 0 { size } else { -size };
            let (q, avg) = b
                .positions
                .get(&order.contract_id)
                .copied()
                .unwrap_or((0, 0.0));
            let nq = q + signed;
            let navg = if q == 0 || q.signum() == signed.signum() {
                (avg * q.abs() as f64 + px * size as f64) / nq.abs().max(1) as f64
            } else {
                avg
            };
            if nq == 0 {
                b.positions.remove(&order.contract_id);
            } else {
                b.positions.insert(order.contract_id.clone(), (nq, navg));
            }
            let trade = Trade {
                id: tid,
                account_id: self.cfg.account_id,
                contract_id: order.contract_id.clone(),
                creation_timestamp: now_iso(),
                price: px,
                profit_and_loss: None,
                fees: 0.37 * size as f64,
                side: order.side,
                size,
                voided: false,
                order_id: id,
            };
            b.trades.push(trade.clone());
            (order, trade, (nq, navg))
        };
        // Trades in an array, positions wrapped as {action, data} (closed: size 0), orders bare.
        let _ = self
            .user
            .send(("GatewayUserTrade".into(), json!([[trade]])));
        let p = self.position_json(&order.contract_id, position.0, position.1);
        let _ = self.user.send((
            "GatewayUserPosition".into(),
            json!([{"action": 1, "data": p}]),
        ));
        let _ = self.user.send(("GatewayUserOrder".into(), json!([order])));
    }

    /// Token and rate limit; `Err` is the answer to send.
    fn gate(&self, h: &HeaderMap, login: bool) -> Result<(), Box<Response>> {
        {
            let mut f = lock(&self.faults);
            if f.throttle > 0 {
                f.throttle -= 1;
                let mut hd = HeaderMap::new();
                hd.insert("retry-after", HeaderValue::from_static("1"));
                return Err(Box::new(
                    (StatusCode::TOO_MANY_REQUESTS, hd, "Too Many Requests").into_response(),
                ));
            }
        }
        {
            let mut b = lock(&self.book);
            let w = b.window.get_or_insert((Instant::now(), 0));
            if w.0.elapsed() >= self.cfg.window {
                *w = (Instant::now(), 0);
            }
            w.1 += 1;
            if w.1 > self.cfg.per_window {
                let left = self
                    .cfg
                    .window
                    .saturating_sub(w.0.elapsed())
                    .as_secs()
                    .max(1);
                let mut hd = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&left.to_string()) {
                    hd.insert("retry-after", v);
                }
                return Err(Box::new(
                    (StatusCode::TOO_MANY_REQUESTS, hd, "Too Many Requests").into_response(),
                ));
            }
        }
        if login {
            return Ok(());
        }
        let token = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok = lock(&self.tokens)
            .get(token)
            .is_some_and(|at| at.elapsed() < self.cfg.token_ttl);
        if ok {
            Ok(())
        } else {
            Err(Box::new(StatusCode::UNAUTHORIZED.into_response()))
        }
    }

    fn issue_token(&self) -> String {
        let mut n = lock(&self.next_token);
        let t = format!("fake-jwt-{n}");
        *n += 1;
        lock(&self.tokens).insert(t.clone(), Instant::now());
        t
    }
}

fn ok(mut v: Value) -> Response {
    v["success"] = json!(true);
    v["errorCode"] = json!(0);
    v["errorMessage"] = Value::Null;
    axum::Json(v).into_response()
}

/// `success: false` at HTTP 200 (<https://gateway.docs.projectx.com/docs/intro>), with the
/// endpoint's code from the provider's tables (`projectx-client` `error_codes.rs`).
fn refused(code: i64, msg: &str) -> Response {
    axum::Json(json!({"success": false, "errorCode": code, "errorMessage": msg})).into_response()
}

impl Shared {
    /// A quote; working orders that became marketable fill.
    fn set_quote(&self, contract: &str, bid: f64, ask: f64) {
        lock(&self.book)
            .quotes
            .insert(contract.to_owned(), (bid, ask));
        let _ = self.market.send((
            "GatewayQuote".into(),
            json!([contract, {"symbol": contract, "bestBid": bid, "bestAsk": ask, "lastPrice": (bid + ask) / 2.0, "timestamp": now_iso()}]),
        ));
        if self.cfg.auto_fill {
            let ids: Vec<i64> = lock(&self.book)
                .orders
                .iter()
                .filter(|o| o.status == 1)
                .map(|o| o.id)
                .collect();
            for id in ids {
                self.try_fill(id);
            }
        }
    }
}

/// The test's own door (not ProjectX's): `POST /fake/quote {contract, bid, ask}` moves the
/// market, for end-to-end tests of the app against the `fake-projectx` process.
async fn fake_quote(State(s): State<Arc<Shared>>, Json(q): Json<Value>) -> StatusCode {
    let (Some(c), Some(bid), Some(ask)) =
        (q["contract"].as_str(), q["bid"].as_f64(), q["ask"].as_f64())
    else {
        return StatusCode::BAD_REQUEST;
    };
    s.set_quote(c, bid, ask);
    StatusCode::NO_CONTENT
}

async fn api(
    State(s): State<Arc<Shared>>,
    axum::extract::Path((group, action)): axum::extract::Path<(String, String)>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let login = group == "Auth" && action == "loginKey";
    if let Err(r) = s.gate(&h, login) {
        return *r;
    }
    let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let acct_ok = || b.get("accountId").and_then(Value::as_i64) == Some(s.cfg.account_id);
    match (group.as_str(), action.as_str()) {
        ("Auth", "loginKey") => {
            if b["userName"] == json!(s.cfg.user) && b["apiKey"] == json!(s.cfg.api_key) {
                ok(json!({"token": s.issue_token()}))
            } else {
                refused(3, "Invalid credentials")
            }
        }
        ("Auth", "validate") => ok(json!({"newToken": s.issue_token()})),
        ("Account", "search") => ok(json!({"accounts": [s.account()]})),
        ("Contract", "search") | ("Contract", "searchById") => ok(json!({"contracts": [
            {"id": "CON.F.US.MNQ.Z26", "name": "MNQZ6", "description": "Micro E-mini Nasdaq-100", "tickSize": 0.25, "tickValue": 0.5, "activeContract": true}
        ]})),
        ("Position", "searchOpen") if acct_ok() => {
            let list: Vec<Position> = lock(&s.book)
                .positions
                .iter()
                .map(|(c, (q, a))| s.position_json(c, *q, *a))
                .collect();
            ok(json!({"positions": list}))
        }
        ("Order", "searchOpen") if acct_ok() => {
            let list: Vec<Order> = lock(&s.book)
                .orders
                .iter()
                .filter(|o| matches!(o.status, 1 | 6))
                .cloned()
                .collect();
            ok(json!({"orders": list}))
        }
        ("Order", "search") if acct_ok() => ok(json!({"orders": lock(&s.book).orders.clone()})),
        ("Trade", "search") if acct_ok() => ok(json!({"trades": lock(&s.book).trades.clone()})),
        ("Order", "place") if acct_ok() => place(&s, &b),
        ("Order", "cancel") if acct_ok() => {
            let id = b["orderId"].as_i64().unwrap_or(0);
            let o = {
                let mut book = lock(&s.book);
                match book.orders.iter_mut().find(|o| o.id == id) {
                    Some(o) if o.status == 1 => {
                        o.status = 3;
                        o.update_timestamp = Some(now_iso());
                        Some(o.clone())
                    }
                    _ => None,
                }
            };
            match o {
                Some(o) => {
                    let _ = s.user.send(("GatewayUserOrder".into(), json!([o])));
                    ok(json!({}))
                }
                None => refused(2, "Order not found or not working"),
            }
        }
        ("Position", "closeContract") if acct_ok() => {
            let c = b["contractId"].as_str().unwrap_or("").to_owned();
            let q = lock(&s.book).positions.get(&c).map_or(0, |p| p.0);
            if q == 0 {
                return refused(2, "No open position");
            }
            let id = s.new_order(&c, 2, if q > 0 { 1 } else { 0 }, q.abs(), None, None, None);
            s.try_fill(id);
            ok(json!({}))
        }
        (_, _) if b.get("accountId").is_some() && !acct_ok() => refused(1, "Account not found"),
        _ => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}

fn place(s: &Arc<Shared>, b: &Value) -> Response {
    if !lock(&s.book).can_trade {
        // 4 AccountViolation (which code a locked account gets is not documented).
        return refused(4, "Account is not allowed to trade");
    }
    let contract = b["contractId"].as_str().unwrap_or("").to_owned();
    if !contract.starts_with("CON.F.") {
        return refused(8, "Contract not found");
    }
    let size = b["size"].as_i64().unwrap_or(0);
    if size <= 0 {
        return refused(2, "Invalid size");
    }
    let tag = b["customTag"].as_str().map(str::to_owned);
    if let Some(t) = &tag {
        let mut book = lock(&s.book);
        if !book.tags.insert(t.clone()) {
            // 2 OrderRejected (the text is a trader's report, not documented).
            return refused(2, "An order with this custom tag already exists");
        }
    }
    let id = s.new_order(
        &contract,
        b["type"].as_i64().unwrap_or(2),
        b["side"].as_i64().unwrap_or(0),
        size,
        b["limitPrice"].as_f64(),
        b["stopPrice"].as_f64(),
        tag,
    );
    // Events go out before the answer: a marketable order fills first.
    if s.cfg.auto_fill {
        s.try_fill(id);
    }
    let mut f = lock(&s.faults);
    if std::mem::take(&mut f.lose_answer) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    if let Some(code) = f.ambiguous.take() {
        return refused(code, "Order pending");
    }
    ok(json!({"orderId": id}))
}

#[derive(serde::Deserialize)]
struct HubQuery {
    access_token: Option<String>,
}

async fn user_hub(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HubQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    hub(s, q, ws, true)
}

async fn market_hub(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HubQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    hub(s, q, ws, false)
}

fn hub(s: Arc<Shared>, q: HubQuery, ws: WebSocketUpgrade, user: bool) -> Response {
    let ok = q.access_token.as_deref().is_some_and(|t| {
        lock(&s.tokens)
            .get(t)
            .is_some_and(|at| at.elapsed() < s.cfg.token_ttl)
    });
    if !ok {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    *lock(&s.hub_opens) += 1;
    ws.on_upgrade(move |socket| serve_hub(s, socket, user))
}

async fn serve_hub(s: Arc<Shared>, mut socket: WebSocket, user: bool) {
    let mut close = s.close.subscribe();
    close.borrow_and_update();
    // The handshake.
    match socket.recv().await {
        Some(Ok(Message::Text(t))) if t.contains("\"protocol\":\"json\"") => {
            if socket
                .send(Message::text(format!("{{}}{RS}")))
                .await
                .is_err()
            {
                return;
            }
        }
        _ => {
            let _ = socket
                .send(Message::text(format!(
                    "{}{RS}",
                    json!({"error": "handshake expected"})
                )))
                .await;
            return;
        }
    }
    let mut pushes = if user {
        s.user.subscribe()
    } else {
        s.market.subscribe()
    };
    let mut subscribed: Vec<String> = Vec::new();
    let mut ping = tokio::time::interval(s.cfg.ping);
    ping.tick().await;
    loop {
        let silent = lock(&s.faults).silent;
        tokio::select! {
            _ = close.changed() => {
                let _ = socket.send(Message::text(format!("{}{RS}", json!({"type": 7, "error": "closed by the server"})))).await;
                let _ = socket.close().await;
                return;
            }
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    for rec in signalr::parse(&t).into_iter().flatten() {
                        if let HubMessage::Invocation { target, arguments, invocation_id } = rec {
                            subscribed.push(match arguments.first() {
                                Some(a) if !user => format!("{target}:{}", a.as_str().unwrap_or("")),
                                _ => target.clone(),
                            });
                            if let Some(id) = invocation_id {
                                let done = json!({"type": 3, "invocationId": id, "result": null});
                                if socket.send(Message::text(format!("{done}{RS}"))).await.is_err() { return; }
                            }
                            // A quote subscription starts with the current quote.
                            if !user && target == "SubscribeContractQuotes" {
                                let c = arguments.first().and_then(Value::as_str).unwrap_or("").to_owned();
                                let q = lock(&s.book).quotes.get(&c).copied();
                                if let Some((bid, ask)) = q {
                                    let args = json!([c, {"symbol": c, "bestBid": bid, "bestAsk": ask, "lastPrice": (bid + ask) / 2.0}]);
                                    let frame = format!("{}{RS}", json!({"type": 1, "target": "GatewayQuote", "arguments": args}));
                                    if socket.send(Message::text(frame)).await.is_err() { return; }
                                }
                            }
                        }
                    }
                }
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            },
            p = pushes.recv() => match p {
                Ok((target, args)) => {
                    if silent { continue; }
                    let wanted = if user {
                        let kind = target.trim_start_matches("GatewayUser");
                        subscribed.iter().any(|x| x.ends_with(&format!("{kind}s")))
                    } else {
                        let c = args.get(0).and_then(Value::as_str).unwrap_or("");
                        subscribed.iter().any(|x| x == &format!("SubscribeContractQuotes:{c}"))
                    };
                    if !wanted { continue; }
                    let frame = if user && std::mem::take(&mut lock(&s.faults).malformed_next) {
                        format!("{{\"type\":1,\"target\":\"{target}\",\"arguments\":[{{\"id\": oops}}]}}{RS}")
                    } else {
                        format!("{}{RS}", json!({"type": 1, "target": target, "arguments": args}))
                    };
                    if socket.send(Message::text(frame)).await.is_err() { return; }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if !silent && socket.send(Message::text(signalr::ping())).await.is_err() { return; }
            }
        }
    }
}
