//! The fake's HTTP and WebSocket server (axum).

use super::book::{Account, Book2, FakeOrderView, FillMode, Holding, Order, Part};
use crate::wire::{List, StreamSession};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::SinkExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeTradierConfig {
    /// The account number.
    pub account: String,
    /// The one token accepted.
    pub token: String,
    /// How often the account stream sends a heartbeat (Tradier: about a minute).
    pub heartbeat: Duration,
    /// How long a stream session id may wait for its connection (Tradier: five minutes).
    pub session_ttl: Duration,
    /// Account and market reads per window (Tradier live: 120 a minute).
    pub reads_per_window: u32,
    /// Trading requests per window (Tradier live: 60 a minute).
    pub trades_per_window: u32,
    /// The rate-limit window.
    pub window: Duration,
    /// How orders fill.
    pub fill: FillMode,
}

impl Default for FakeTradierConfig {
    fn default() -> Self {
        Self {
            account: "VA000001".into(),
            token: "fake-token".into(),
            heartbeat: Duration::from_secs(60),
            session_ttl: Duration::from_secs(300),
            reads_per_window: 120,
            trades_per_window: 60,
            window: Duration::from_secs(60),
            fill: FillMode::Marketable,
        }
    }
}

#[derive(Default)]
struct Faults {
    /// Requests still to answer 429.
    throttle: u32,
    /// The next placement is taken, then rejected downstream (seen on the order only).
    reject_downstream: Option<String>,
    /// The next placement is refused with HTTP 200 and an errors body.
    refuse_next: Option<String>,
    /// The next placement is taken and its answer is a 500 (the order exists).
    lose_answer: bool,
    /// The next order fills no more than this many units.
    partial: Option<i64>,
    /// The account stream sends nothing (the socket stays open).
    silent: bool,
}

struct Window {
    start: Instant,
    used: u32,
}

struct Shared {
    cfg: FakeTradierConfig,
    account: Mutex<Account>,
    faults: Mutex<Faults>,
    windows: Mutex<[Window; 2]>,
    sessions: Mutex<HashMap<String, Instant>>,
    next_session: Mutex<u64>,
    events: broadcast::Sender<String>,
    quotes: broadcast::Sender<String>,
    /// Bumped to close every stream socket ("overnight").
    close_streams: watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
    addr: Mutex<Option<SocketAddr>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn iso_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A running fake Tradier.
pub struct FakeTradier {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeTradier {
    /// Starts on a free local port.
    pub async fn start(cfg: FakeTradierConfig) -> std::io::Result<Self> {
        Self::start_on(cfg, "127.0.0.1:0").await
    }

    /// Starts on `bind` (`127.0.0.1:0`: any free port).
    pub async fn start_on(cfg: FakeTradierConfig, bind: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let now = Instant::now();
        let shared = Arc::new(Shared {
            account: Mutex::new(Account {
                next_id: 1_000_001,
                cash: 100_000.0,
                ..Account::default()
            }),
            faults: Mutex::default(),
            windows: Mutex::new([
                Window {
                    start: now,
                    used: 0,
                },
                Window {
                    start: now,
                    used: 0,
                },
            ]),
            sessions: Mutex::default(),
            next_session: Mutex::new(1),
            events: broadcast::channel(1024).0,
            quotes: broadcast::channel(1024).0,
            close_streams: watch::Sender::new(0),
            requests: Mutex::default(),
            addr: Mutex::new(Some(addr)),
            cfg,
        });
        let app = Router::new()
            .route("/v1/user/profile", get(profile))
            .route("/v1/accounts/{acct}/positions", get(positions))
            .route("/v1/accounts/{acct}/balances", get(balances))
            .route("/v1/accounts/{acct}/orders", get(orders).post(place))
            .route("/v1/accounts/{acct}/orders/{id}", get(order).delete(cancel))
            .route("/v1/accounts/events/session", post(session))
            .route("/v1/markets/events/session", post(session))
            .route("/v1/markets/quotes", get(quotes))
            .route("/v1/accounts/events", get(account_ws))
            .route("/v1/markets/events", get(market_ws))
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

    /// The API base URL (`http://127.0.0.1:port/v1`).
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The account number.
    pub fn account(&self) -> &str {
        &self.shared.cfg.account
    }

    /// The token accepted.
    pub fn token(&self) -> &str {
        &self.shared.cfg.token
    }

    /// Sets a position (a quantity of 0 removes it) without any order: how an exercise or
    /// assignment shows at Tradier. `cost_basis` is the total.
    pub fn set_position(&self, symbol: &str, qty: i64, cost_basis: f64) {
        let mut a = lock(&self.shared.account);
        if qty == 0 {
            a.positions.remove(symbol);
        } else {
            a.positions.insert(
                symbol.to_owned(),
                Holding {
                    qty,
                    cost: cost_basis,
                },
            );
        }
    }

    /// An assignment: `qty` of the short option `option` go away and the delivery of
    /// `shares` (signed) of `stock` at `strike` comes in, with no order and no stream event.
    pub fn assign(&self, option: &str, qty: i64, stock: &str, shares: i64, strike: f64) {
        let mut a = lock(&self.shared.account);
        let held = a.held(option);
        let left = held + qty.abs();
        if let Some(h) = a.positions.get_mut(option) {
            h.cost *= left as f64 / held as f64;
            h.qty = left;
        }
        if left == 0 {
            a.positions.remove(option);
        }
        a.book_fill(stock, shares, strike);
    }

    /// Sets the quote of a symbol (bid or ask 0: none) and fills what became marketable.
    pub fn set_quote(&self, symbol: &str, bid: f64, ask: f64) {
        let changed = {
            let mut a = lock(&self.shared.account);
            a.quotes.insert(symbol.to_owned(), Book2 { bid, ask });
            if self.shared.cfg.fill == FillMode::Marketable {
                let now = iso_now();
                let mut out = Vec::new();
                for i in 0..a.orders.len() {
                    if a.try_fill(i, &now) {
                        out.push(a.orders[i].event(&self.shared.cfg.account));
                    }
                }
                out
            } else {
                Vec::new()
            }
        };
        let _ = self.shared.quotes.send(
            json!({"type":"quote","symbol":symbol,"bid":bid,"bidsz":10,"bidexch":"Q",
                   "biddate":epoch_ms().to_string(),"ask":ask,"asksz":10,"askexch":"Q",
                   "askdate":epoch_ms().to_string()})
            .to_string(),
        );
        for e in changed {
            self.shared.emit(&e);
        }
    }

    /// Fills `units` of order `id` at `prices` per part (the quotes when `None`).
    pub fn fill(&self, id: u64, units: i64, prices: Option<Vec<f64>>) {
        let e = {
            let mut a = lock(&self.shared.account);
            let Some(i) = a.orders.iter().position(|o| o.id == id) else {
                return;
            };
            a.fill_units(i, units, prices.as_deref(), &iso_now());
            a.orders[i].event(&self.shared.cfg.account)
        };
        self.shared.emit(&e);
    }

    /// Tradier closes a position itself (a short option near expiry): a filled order with no
    /// tag, announced on the account stream like any order.
    pub fn broker_close(&self, symbol: &str, price: f64) -> u64 {
        let e = {
            let mut a = lock(&self.shared.account);
            let held = a.held(symbol);
            let side = if held < 0 {
                "buy_to_close"
            } else {
                "sell_to_close"
            };
            let idx = new_order(
                &mut a,
                "option",
                underlying_of(symbol),
                "market",
                None,
                vec![(symbol.to_owned(), side.to_owned(), held.abs())],
                None,
            );
            a.fill_units(idx, held.abs(), Some(&[price]), &iso_now());
            a.orders[idx].event(&self.shared.cfg.account)
        };
        self.shared.emit(&e);
        e.id.unwrap_or(0)
    }

    /// The next `n` requests are answered 429 with the rate-limit headers.
    pub fn throttle_next(&self, n: u32) {
        lock(&self.shared.faults).throttle = n;
    }

    /// The next placement is taken (`"status": "ok"`) and rejected downstream: the rejection
    /// shows only on the order.
    pub fn reject_next_downstream(&self, reason: &str) {
        lock(&self.shared.faults).reject_downstream = Some(reason.to_owned());
    }

    /// The next placement is refused with HTTP 200 and an `errors` body.
    pub fn refuse_next(&self, message: &str) {
        lock(&self.shared.faults).refuse_next = Some(message.to_owned());
    }

    /// The next placement is taken but answered 500 (the order exists).
    pub fn lose_next_answer(&self) {
        lock(&self.shared.faults).lose_answer = true;
    }

    /// The next order fills at most `units` units.
    pub fn partial_next(&self, units: i64) {
        lock(&self.shared.faults).partial = Some(units);
    }

    /// The account stream goes silent (no heartbeat, no events; the socket stays open).
    pub fn silence_account_stream(&self, silent: bool) {
        lock(&self.shared.faults).silent = silent;
    }

    /// Closes every stream socket, as at Tradier's overnight maintenance.
    pub fn close_streams(&self) {
        self.shared.close_streams.send_modify(|n| *n += 1);
    }

    /// The orders, oldest first.
    pub fn orders(&self) -> Vec<FakeOrderView> {
        lock(&self.shared.account)
            .orders
            .iter()
            .map(Order::view)
            .collect()
    }

    /// The positions: symbol → quantity.
    pub fn positions(&self) -> BTreeMap<String, i64> {
        lock(&self.shared.account)
            .positions
            .iter()
            .map(|(s, h)| (s.clone(), h.qty))
            .collect()
    }

    /// Requests seen (`METHOD path`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// Stream sessions created so far.
    pub fn sessions_created(&self) -> u64 {
        *lock(&self.shared.next_session) - 1
    }
}

impl Drop for FakeTradier {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.close_streams();
    }
}

impl Shared {
    fn emit(&self, e: &crate::wire::AccountEvent) {
        if let Ok(s) = serde_json::to_string(e) {
            let _ = self.events.send(s);
        }
    }

    /// Token, rate limit; the headers every answer carries.
    fn gate(
        &self,
        h: &HeaderMap,
        method: &str,
        path: &str,
        trading: bool,
        acct: Option<&str>,
    ) -> Result<HeaderMap, Box<Response>> {
        lock(&self.requests).push(format!("{method} {path}"));
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {}", self.cfg.token) {
            return Err(Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"fault":{"faultstring":"Invalid Access Token",
                    "detail":{"errorcode":"keymanagement.service.invalid_access_token"}}})),
                )
                    .into_response(),
            ));
        }
        let allowed = if trading {
            self.cfg.trades_per_window
        } else {
            self.cfg.reads_per_window
        };
        let mut w = lock(&self.windows);
        let win = &mut w[usize::from(trading)];
        if win.start.elapsed() >= self.cfg.window {
            win.start = Instant::now();
            win.used = 0;
        }
        win.used += 1;
        let left = self.cfg.window.saturating_sub(win.start.elapsed());
        let expiry = epoch_ms() + left.as_millis() as i64;
        let mut headers = HeaderMap::new();
        let mut put = |k: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(k, v);
            }
        };
        put("x-ratelimit-allowed", allowed.to_string());
        put("x-ratelimit-used", win.used.to_string());
        put(
            "x-ratelimit-available",
            allowed.saturating_sub(win.used).to_string(),
        );
        put("x-ratelimit-expiry", expiry.to_string());
        let forced = {
            let mut f = lock(&self.faults);
            let t = f.throttle > 0;
            f.throttle = f.throttle.saturating_sub(1);
            t
        };
        if forced || win.used > allowed {
            if forced {
                // A forced 429 ends its window in 300 ms (tests wait that long, not a minute).
                let expiry = epoch_ms() + 300;
                if let Ok(v) = HeaderValue::from_str(&expiry.to_string()) {
                    headers.insert("x-ratelimit-expiry", v);
                }
                headers.insert("x-ratelimit-available", HeaderValue::from_static("0"));
            }
            return Err(Box::new((
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                axum::Json(json!({"fault":{"faultstring":"Rate limit quota violation. Quota limit exceeded",
                    "detail":{"errorcode":"policies.ratelimit.QuotaViolation"}}})),
            )
                .into_response()));
        }
        if let Some(a) = acct
            && a != self.cfg.account
        {
            return Err(Box::new(errors(StatusCode::BAD_REQUEST, "Invalid account")));
        }
        Ok(headers)
    }
}

fn errors(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"errors":{"error": msg}}))).into_response()
}

fn quirky<T: serde::Serialize>(items: Vec<T>) -> Value {
    List(items).to_quirky()
}

fn underlying_of(symbol: &str) -> &str {
    if symbol.len() > 15 {
        &symbol[..symbol.len() - 15]
    } else {
        symbol
    }
}

fn new_order(
    a: &mut Account,
    class: &str,
    underlying: &str,
    order_type: &str,
    price: Option<f64>,
    parts: Vec<(String, String, i64)>,
    tag: Option<String>,
) -> usize {
    let id = a.next_id;
    a.next_id += 1 + parts.len() as u64;
    a.seq += 1;
    let units = parts.iter().map(|p| p.2).fold(0, gcd).max(1);
    let units = if class == "multileg" {
        units
    } else {
        parts[0].2
    };
    let now = iso_now();
    a.orders.push(Order {
        id,
        leg_ids: (1..=parts.len() as u64).map(|k| id + k).collect(),
        class: class.to_owned(),
        underlying: underlying.to_owned(),
        order_type: order_type.to_owned(),
        duration: "day".into(),
        price,
        stop: None,
        status: "pending".into(),
        tag,
        parts: parts
            .into_iter()
            .map(|(symbol, side, qty)| Part {
                symbol,
                side,
                qty,
                exec: 0,
                avg: 0.0,
                last_price: 0.0,
                last_qty: 0,
            })
            .collect(),
        units,
        reason: None,
        created: now.clone(),
        updated: now,
        seq: a.seq,
        cap: None,
    });
    a.orders.len() - 1
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

type Shr = State<Arc<Shared>>;

async fn profile(State(s): Shr, h: HeaderMap) -> Response {
    match s.gate(&h, "GET", "/user/profile", false, None) {
        Err(r) => *r,
        Ok(hd) => (
            hd,
            axum::Json(json!({"profile":{"id":"id-fake","name":"Fake Trader",
                "account": {"account_number": s.cfg.account, "classification":"individual",
                    "day_trader": false, "option_level": 4, "status":"active", "type":"margin"}}})),
        )
            .into_response(),
    }
}

async fn positions(State(s): Shr, Path(acct): Path<String>, h: HeaderMap) -> Response {
    let hd = match s.gate(&h, "GET", "/positions", false, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let list = lock(&s.account).wire_positions();
    let body = if list.is_empty() {
        json!({"positions": "null"})
    } else {
        json!({"positions": {"position": quirky(list)}})
    };
    (hd, axum::Json(body)).into_response()
}

async fn balances(State(s): Shr, Path(acct): Path<String>, h: HeaderMap) -> Response {
    let hd = match s.gate(&h, "GET", "/balances", false, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let a = lock(&s.account);
    let mut long = 0.0;
    let mut requirement = 0.0;
    for (sym, h) in &a.positions {
        let m = super::book::multiplier(sym);
        let mark = a.quotes.get(sym).map_or(0.0, |q| (q.bid + q.ask) / 2.0);
        long += h.qty as f64 * mark * m;
        if h.qty < 0 {
            requirement += (h.qty.abs() as f64) * mark * m * 0.2 + 100.0;
        }
    }
    let equity = a.cash + long;
    (
        hd,
        axum::Json(json!({"balances":{
            "account_number": s.cfg.account, "account_type":"margin",
            "total_equity": equity, "total_cash": a.cash,
            "current_requirement": requirement, "option_requirement": requirement,
            "margin": {"fed_call":0,"maintenance_call":0,
                "option_buying_power": equity - requirement,
                "stock_buying_power": 2.0 * (equity - requirement),
                "stock_short_value":0,"sweep":0}}})),
    )
        .into_response()
}

async fn orders(
    State(s): Shr,
    Path(acct): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let hd = match s.gate(&h, "GET", "/orders", false, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let tags = q.get("includeTags").is_some_and(|v| v == "true");
    let list: Vec<_> = lock(&s.account)
        .orders
        .iter()
        .map(|o| o.wire(tags))
        .collect();
    let body = if list.is_empty() {
        json!({"orders": "null"})
    } else {
        json!({"orders": {"order": quirky(list)}})
    };
    (hd, axum::Json(body)).into_response()
}

async fn order(
    State(s): Shr,
    Path((acct, id)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let hd = match s.gate(&h, "GET", "/orders/{id}", false, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let tags = q.get("includeTags").is_some_and(|v| v == "true");
    match lock(&s.account).orders.iter().find(|o| o.id == id) {
        Some(o) => (hd, axum::Json(json!({"order": o.wire(tags)}))).into_response(),
        None => errors(StatusCode::NOT_FOUND, "Order not found"),
    }
}

async fn place(State(s): Shr, Path(acct): Path<String>, h: HeaderMap, body: Bytes) -> Response {
    let hd = match s.gate(&h, "POST", "/orders", true, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return errors(StatusCode::BAD_REQUEST, &format!("Invalid form: {e}")),
    };
    let get = |k: &str| form.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let class = get("class").unwrap_or_default();
    let tag = get("tag");
    if let Some(t) = &tag
        && (t.is_empty()
            || t.len() > 255
            || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return errors(
            StatusCode::BAD_REQUEST,
            "Invalid parameter, tag: letters, numbers and - only, up to 255",
        );
    }
    let num = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok());
    let mut parts: Vec<(String, String, i64)> = Vec::new();
    match class.as_str() {
        "equity" | "option" => {
            let sym = if class == "option" {
                get("option_symbol")
            } else {
                get("symbol")
            };
            let (Some(sym), Some(side), Some(q)) = (sym, get("side"), num("quantity")) else {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "Invalid parameter: symbol, side and quantity are required",
                );
            };
            parts.push((sym, side, q as i64));
        }
        "multileg" => {
            for i in 0..4 {
                match (
                    get(&format!("option_symbol[{i}]")),
                    get(&format!("side[{i}]")),
                    num(&format!("quantity[{i}]")),
                ) {
                    (Some(sym), Some(side), Some(q)) => parts.push((sym, side, q as i64)),
                    _ => break,
                }
            }
            if parts.len() < 2 {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "Invalid parameter: a multileg order needs 2 to 4 legs",
                );
            }
        }
        other => {
            return errors(
                StatusCode::BAD_REQUEST,
                &format!("Invalid parameter, class: {other} is not offered by this fake"),
            );
        }
    }
    let order_type = get("type").unwrap_or_default();
    let price = num("price");
    let preview = get("preview").is_some_and(|v| v == "true");
    // Open or close must match what is held (checked against positions, as Tradier does).
    let mut a = lock(&s.account);
    for (sym, side, q) in &parts {
        let held = a.held(sym);
        let ok = match side.as_str() {
            "buy_to_close" | "buy_to_cover" => held < 0 && *q <= -held,
            "sell_to_close" | "sell" => held > 0 && *q <= held,
            "buy_to_open" | "buy" => held >= 0,
            "sell_to_open" | "sell_short" => held <= 0,
            _ => false,
        };
        if !ok || *q <= 0 {
            // A business refusal: HTTP 200 with errors (documented on the errors page).
            return (
                hd,
                axum::Json(json!({"errors":{"error":[format!("Invalid side {side} for {sym}: {held} held"),"IncorrectOrderQuantity"]}})),
            )
                .into_response();
        }
    }
    if preview {
        let margin_change: f64 = parts
            .iter()
            .filter(|(_, side, _)| side == "sell_to_open")
            .map(|(sym, _, q)| {
                let mark = a.quotes.get(sym).map_or(1.0, |b| (b.bid + b.ask) / 2.0);
                *q as f64 * mark * 100.0 * 0.2 + 100.0
            })
            .sum();
        return (
            hd,
            axum::Json(
                json!({"order":{"status":"ok","commission":0.35 * parts.len() as f64,
                "cost": 0.0, "fees": 0.0, "symbol": get("symbol"), "type": order_type,
                "duration":"day","result":true,"order_cost":0.0,"margin_change": margin_change,
                "request_date":"2026-12-07T15:56:47.371","extended_hours":false,
                "class": class,"strategy":"unknown","day_trades":0}}),
            ),
        )
            .into_response();
    }
    let mut f = lock(&s.faults);
    if let Some(msg) = f.refuse_next.take() {
        return (hd, axum::Json(json!({"errors":{"error": msg}}))).into_response();
    }
    let underlying = get("symbol").unwrap_or_default();
    let idx = new_order(&mut a, &class, &underlying, &order_type, price, parts, tag);
    a.orders[idx].stop = num("stop");
    a.orders[idx].duration = get("duration").unwrap_or_else(|| "day".into());
    a.orders[idx].cap = f.partial.take();
    let id = a.orders[idx].id;
    let mut events = vec![a.orders[idx].event(&s.cfg.account)];
    if let Some(reason) = f.reject_downstream.take() {
        a.orders[idx].status = "rejected".into();
        a.orders[idx].reason = Some(reason);
    } else {
        a.orders[idx].status = "open".into();
        if s.cfg.fill == FillMode::Marketable {
            a.try_fill(idx, &iso_now());
        }
    }
    events.push(a.orders[idx].event(&s.cfg.account));
    let lose = std::mem::take(&mut f.lose_answer);
    drop(f);
    drop(a);
    for e in &events {
        s.emit(e);
    }
    if lose {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"fault":{"faultstring":"Datastore Error","detail":{"errorcode":"steps.servicecallout.ExecutionFailed"}}})),
        )
            .into_response();
    }
    (
        hd,
        axum::Json(json!({"order":{"id": id, "status":"ok","partner_id":"c4998eb7-06e8-4820-a7ab-55d9760065fb"}})),
    )
        .into_response()
}

async fn cancel(State(s): Shr, Path((acct, id)): Path<(String, u64)>, h: HeaderMap) -> Response {
    let hd = match s.gate(&h, "DELETE", "/orders/{id}", true, Some(&acct)) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let e = {
        let mut a = lock(&s.account);
        let Some(o) = a.orders.iter_mut().find(|o| o.id == id) else {
            return errors(StatusCode::BAD_REQUEST, "Order not found");
        };
        if o.is_final() {
            return errors(
                StatusCode::BAD_REQUEST,
                &format!("order already in finalized state: {}", o.status),
            );
        }
        o.status = "canceled".into();
        o.updated = iso_now();
        o.event(&s.cfg.account)
    };
    s.emit(&e);
    (hd, axum::Json(json!({"order":{"id": id, "status":"ok"}}))).into_response()
}

async fn session(State(s): Shr, h: HeaderMap, uri: axum::http::Uri) -> Response {
    let hd = match s.gate(&h, "POST", uri.path(), false, None) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let id = {
        let mut n = lock(&s.next_session);
        let id = format!("fake-session-{}", *n);
        *n += 1;
        id
    };
    lock(&s.sessions).insert(id.clone(), Instant::now());
    let addr = lock(&s.addr).map(|a| a.to_string()).unwrap_or_default();
    let path = if uri.path().contains("markets") {
        "markets"
    } else {
        "accounts"
    };
    let body = json!({"stream": StreamSession {
        url: format!("ws://{addr}/v1/{path}/events"),
        sessionid: id,
    }});
    (hd, axum::Json(body)).into_response()
}

async fn quotes(State(s): Shr, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let hd = match s.gate(&h, "GET", "/markets/quotes", false, None) {
        Ok(hd) => hd,
        Err(r) => return *r,
    };
    let a = lock(&s.account);
    let mut found = Vec::new();
    let mut unmatched = Vec::new();
    for sym in q
        .get("symbols")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|x| !x.is_empty())
    {
        match a.quotes.get(sym) {
            Some(b) => found.push(json!({"symbol": sym, "bid": b.bid, "ask": b.ask,
                "bidsize": 10, "asksize": 10, "last": null, "type": if sym.len() > 6 {"option"} else {"stock"}})),
            None => unmatched.push(sym.to_owned()),
        }
    }
    let mut body = serde_json::Map::new();
    if !found.is_empty() {
        body.insert("quote".into(), quirky(found));
    }
    if !unmatched.is_empty() {
        body.insert(
            "unmatched_symbols".into(),
            json!({"symbol": quirky(unmatched)}),
        );
    }
    (hd, axum::Json(json!({"quotes": body}))).into_response()
}

/// Takes the session id of a subscription payload: known, unused, within its time.
fn claim(s: &Shared, payload: &Value) -> Result<(), &'static str> {
    let id = payload
        .get("sessionid")
        .and_then(Value::as_str)
        .ok_or("missing sessionid")?;
    let created = lock(&s.sessions).remove(id).ok_or("session not found")?;
    if created.elapsed() > s.cfg.session_ttl {
        return Err("session expired");
    }
    Ok(())
}

async fn account_ws(State(s): Shr, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| account_stream(s, socket))
}

async fn account_stream(s: Arc<Shared>, mut socket: WebSocket) {
    let mut closes = s.close_streams.subscribe();
    closes.borrow_and_update();
    // The subscription payload first.
    let Some(Ok(Message::Text(first))) = socket.recv().await else {
        return;
    };
    let ok = serde_json::from_str::<Value>(&first)
        .map_err(|_| "invalid payload")
        .and_then(|v| claim(&s, &v));
    if let Err(e) = ok {
        let _ = socket
            .send(Message::text(json!({"error": e}).to_string()))
            .await;
        let _ = socket.close().await;
        return;
    }
    let mut events = s.events.subscribe();
    let mut beat = tokio::time::interval(s.cfg.heartbeat);
    beat.tick().await;
    loop {
        let silent = lock(&s.faults).silent;
        tokio::select! {
            _ = closes.changed() => { let _ = socket.close().await; return; }
            e = events.recv() => match e {
                Ok(text) if !silent => {
                    if socket.send(Message::text(text)).await.is_err() { return; }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = beat.tick() => {
                if !silent {
                    let hb = json!({"event":"heartbeat","status":"active","timestamp": iso_now()});
                    if socket.send(Message::text(hb.to_string())).await.is_err() { return; }
                }
            }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            }
        }
    }
}

async fn market_ws(State(s): Shr, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| market_stream(s, socket))
}

async fn market_stream(s: Arc<Shared>, mut socket: WebSocket) {
    let mut closes = s.close_streams.subscribe();
    closes.borrow_and_update();
    let mut symbols: Vec<String> = Vec::new();
    let mut claimed = false;
    let mut quotes = s.quotes.subscribe();
    loop {
        tokio::select! {
            _ = closes.changed() => { let _ = socket.close().await; return; }
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    if !claimed {
                        if let Err(e) = claim(&s, &v) {
                            let _ = socket.send(Message::text(json!({"error": e}).to_string())).await;
                            let _ = socket.close().await;
                            return;
                        }
                        claimed = true;
                    }
                    symbols = v.get("symbols").and_then(Value::as_array).map(|a| {
                        a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()
                    }).unwrap_or_default();
                    let now: Vec<String> = {
                        let a = lock(&s.account);
                        symbols.iter().filter_map(|sym| a.quotes.get(sym).map(|b| json!({
                            "type":"quote","symbol":sym,"bid":b.bid,"bidsz":10,"ask":b.ask,"asksz":10,
                            "biddate": epoch_ms().to_string(), "askdate": epoch_ms().to_string()}).to_string())).collect()
                    };
                    for q in now {
                        if socket.send(Message::text(format!("{q}\n"))).await.is_err() { return; }
                    }
                }
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            },
            q = quotes.recv() => match q {
                Ok(text) => {
                    let sym = serde_json::from_str::<Value>(&text).ok()
                        .and_then(|v| v.get("symbol").and_then(Value::as_str).map(str::to_owned));
                    if sym.is_some_and(|x| symbols.contains(&x))
                        && socket.send(Message::text(format!("{text}\n"))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
