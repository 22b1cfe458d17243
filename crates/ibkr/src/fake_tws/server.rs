//! The fake server: accept loop, per-connection reader/writer tasks and the scripted state.

use super::proto::{self, incoming as inc, outgoing as out};
use super::wire;
use prost::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Start-up settings of the fake.
#[derive(Debug, Clone)]
pub struct FakeTwsConfig {
    /// Server version sent in the handshake (IB's protobuf protocol needs ≥ 213).
    pub server_version: i32,
    /// First `NextValidId`.
    pub next_valid_id: i32,
    /// Managed accounts.
    pub accounts: Vec<String>,
}

impl Default for FakeTwsConfig {
    fn default() -> Self {
        Self {
            server_version: 222,
            next_valid_id: 1,
            accounts: vec!["DU-TEST".to_owned()],
        }
    }
}

/// What the fake does with a CancelOrder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CancelMode {
    /// PendingCancel, then Cancelled plus notice 202.
    Confirm,
    /// PendingCancel, then the remainder fills at this price (the cancel lost the race), then
    /// notice 161 (order not cancellable).
    LateFill(f64),
    /// PendingCancel, then `ApiCancelled` (TWS API, Order Submission: "after an order has been
    /// submitted and before it has been acknowledged, an API client can request its
    /// cancelation, producing this state"), and no final word: with `then_fill`, the remainder
    /// fills at that price afterwards (the order was working after all); without, a cancel
    /// asked again is answered with 10148 "…cannot be cancelled, state: ApiCancelled."
    /// <https://interactivebrokers.github.io/tws-api/order_submission.html>
    ApiCancelled {
        /// The remainder fills at this price after the ApiCancelled.
        then_fill: Option<f64>,
    },
}

/// Market data the fake answers a market-data request with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuoteScript {
    /// Bid.
    pub bid: f64,
    /// Ask.
    pub ask: f64,
    /// Last.
    pub last: f64,
    /// Bid size.
    pub bid_size: f64,
    /// Ask size.
    pub ask_size: f64,
    /// Model option computation (iv, delta, gamma, vega, theta, underlying price).
    pub greeks: Option<(f64, f64, f64, f64, f64, f64)>,
}

impl QuoteScript {
    /// A liquid market: 0.05 either side of `mid`, 10 up, last at `mid`, no Greeks.
    pub fn around(mid: f64) -> Self {
        Self {
            bid: mid - 0.05,
            ask: mid + 0.05,
            last: mid,
            bid_size: 10.0,
            ask_size: 10.0,
            greeks: None,
        }
    }
}

/// An order the fake received (what-if orders included).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedOrder {
    /// Client that placed it.
    pub client_id: i32,
    /// Order id.
    pub order_id: i32,
    /// Contract as sent.
    pub contract: proto::Contract,
    /// Order as sent.
    pub order: proto::Order,
}

#[derive(Debug, Clone)]
struct OrderRec {
    placed: PlacedOrder,
    perm_id: i64,
    status: String,
    total: f64,
    filled: f64,
    avg: f64,
    last: f64,
    /// Why IB holds the order (the status's whyHeld), empty when it does not say.
    why_held: String,
    /// Per leg of a combo, the quantity executed (leg units, not combo units).
    legs_filled: Vec<f64>,
}

#[derive(Debug, Clone)]
struct ExecRec {
    client_id: i32,
    /// Execution time, Unix seconds.
    secs: i64,
    contract: proto::Contract,
    execution: proto::Execution,
    commission: f64,
}

struct Conn {
    id: u64,
    client_id: Option<i32>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    positions: bool,
    tasks: Vec<JoinHandle<()>>,
}

struct State {
    cfg: FakeTwsConfig,
    conns: Vec<Conn>,
    next_conn: u64,
    next_perm: i64,
    next_exec: u64,
    orders: BTreeMap<i32, OrderRec>,
    placed: Vec<PlacedOrder>,
    execs: Vec<ExecRec>,
    positions: Vec<(String, proto::Contract, f64, f64)>,
    account_values: Vec<(String, String)>,
    pnl: (f64, f64, f64),
    contracts: Vec<proto::Contract>,
    quotes: Vec<(proto::Contract, QuoteScript)>,
    cancel_mode: CancelMode,
    read_only: bool,
    what_if: proto::OrderState,
    received: Vec<(i32, i32)>,
    clock_secs: i64,
    /// Executions are stamped with the wall clock plus this many seconds (None: `clock_secs`
    /// counts on one second per execution).
    wall_offset: Option<i64>,
    /// A gateway that is down (restarting): connections are refused.
    down: bool,
    /// The next order placed is rejected with this notice and no order status.
    reject_next: Option<(i32, String)>,
    /// Limit and stop prices must be a multiple of this (else notice 110, no status).
    min_tick: Option<f64>,
    /// The next valid id announced as set, even below ids already used (a rolled-back restart).
    rolled_back: bool,
    /// Execution times are written in this zone ("US/Eastern"), as TWS writes them in its
    /// login zone; `None`: UTC.
    exec_zone: Option<chrono_tz::Tz>,
    /// Commission reports are held until [`FakeTws::release_commissions`] (IB sends them
    /// after the execution, sometimes much later).
    hold_commissions: bool,
    held_commissions: Vec<(i32, Vec<u8>)>,
    /// The next order placed is lost: the gateway drops every session as it arrives, before
    /// it reaches IB (no status, no record).
    lose_next_order: bool,
    /// Every order status is sent twice (TWS API: "It is possible that orderStatus() may
    /// return duplicate messages").
    duplicate_statuses: bool,
    /// Market-data requests for these contracts are refused with (code, text) and no ticks.
    md_refused: Vec<(proto::Contract, i32, String)>,
    /// Contracts IB has only delayed data for: notice 10167, then delayed ticks (66/67/68).
    md_delayed: Vec<proto::Contract>,
    /// Most messages a client may send per second before notice 100 (IB: 50); `None` off.
    max_rate: Option<usize>,
    /// Per connection, the times (ms of the wall clock) of the messages of the last second.
    rate_window: BTreeMap<u64, std::collections::VecDeque<u128>>,
    /// Account-summary subscriptions open per connection (IB allows two at a time: 322).
    summaries: BTreeMap<u64, std::collections::BTreeSet<i32>>,
    /// Between 1100 and 1101/1102: the socket is up, IB is not. Nothing IB sends reaches the
    /// clients (statuses, executions, positions of the gap are lost) and requests other than
    /// a connect's go unanswered (an order placed then never reaches IB).
    gap: bool,
}

/// A running fake TWS. Dropping it stops the accept loop and closes all connections.
pub struct FakeTws {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Drop for FakeTws {
    fn drop(&mut self) {
        self.accept.abort();
        let mut st = lock(&self.state);
        for c in st.conns.drain(..) {
            for t in c.tasks {
                t.abort();
            }
        }
    }
}

fn wall_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fmt_qty(q: f64) -> String {
    if q.fract() == 0.0 {
        format!("{q:.0}")
    } else {
        q.to_string()
    }
}

/// An order IB will never work again: open-order lists leave it out, completed orders list it.
fn ended(status: &str) -> bool {
    matches!(status, "Filled" | "Cancelled" | "ApiCancelled")
}

fn key_matches(want: &proto::Contract, have: &proto::Contract) -> bool {
    if let (Some(a), Some(b)) = (want.con_id, have.con_id)
        && a != 0
        && b != 0
    {
        return a == b;
    }
    let eq = |a: &Option<String>, b: &Option<String>| match a.as_deref() {
        None | Some("") => true,
        Some(x) => b.as_deref() == Some(x),
    };
    eq(&want.symbol, &have.symbol)
        && eq(&want.sec_type, &have.sec_type)
        && eq(
            &want.last_trade_date_or_contract_month,
            &have.last_trade_date_or_contract_month,
        )
        && eq(&want.right, &have.right)
        && match want.strike {
            None => true,
            Some(0.0) => true,
            Some(s) => have.strike == Some(s),
        }
}

impl State {
    fn bump(&mut self) -> i64 {
        if let Some(offset) = self.wall_offset {
            let now = wall_secs().saturating_add(offset);
            self.clock_secs = self.clock_secs.max(now);
        } else {
            self.clock_secs += 1;
        }
        self.clock_secs
    }

    fn send_to_client(&self, client_id: i32, body: Vec<u8>) {
        if self.gap {
            return;
        }
        for c in self.conns.iter().filter(|c| c.client_id == Some(client_id)) {
            let _ = c.tx.send(body.clone());
        }
    }

    fn send_to_conn(&self, conn: u64, body: Vec<u8>) {
        if let Some(c) = self.conns.iter().find(|c| c.id == conn) {
            let _ = c.tx.send(body);
        }
    }

    fn broadcast(&self, body: &[u8]) {
        if self.gap {
            return;
        }
        for c in &self.conns {
            let _ = c.tx.send(body.to_vec());
        }
    }

    fn exec_time(&mut self) -> (i64, String) {
        let secs = self.bump();
        let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let text = match self.exec_zone {
            Some(tz) => format!(
                "{} {}",
                dt.with_timezone(&tz).format("%Y%m%d %H:%M:%S"),
                tz.name()
            ),
            None => format!("{} UTC", dt.format("%Y%m%d %H:%M:%S")),
        };
        (secs, text)
    }

    /// The fake's time now (Unix seconds): the wall clock (shifted) or the scripted clock.
    fn now_secs(&self) -> i64 {
        match self.wall_offset {
            Some(offset) => wall_secs().saturating_add(offset),
            None => self.clock_secs,
        }
    }

    /// Midnight New York of the fake's day: TWS answers execution requests with today's
    /// executions only (TWS API "Executions and Commissions": "executions … since midnight of
    /// the current day", more only with the Trade Log's setting).
    fn history_start(&self) -> i64 {
        let now = chrono::DateTime::from_timestamp(self.now_secs(), 0).unwrap_or_default();
        let ny = now.with_timezone(&chrono_tz::America::New_York);
        ny.date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|m| {
                m.and_local_timezone(chrono_tz::America::New_York)
                    .earliest()
            })
            .map_or(i64::MIN, |m| m.timestamp())
    }

    /// The order's status to its client (twice when statuses are duplicated, as TWS does).
    fn send_status(&self, rec: &OrderRec) {
        let msg = Self::order_status_msg(rec);
        if self.duplicate_statuses {
            self.send_to_client(rec.placed.client_id, msg.clone());
        }
        self.send_to_client(rec.placed.client_id, msg);
    }

    fn order_status_msg(rec: &OrderRec) -> Vec<u8> {
        proto::body(
            inc::ORDER_STATUS,
            &proto::OrderStatus {
                order_id: Some(rec.placed.order_id),
                status: Some(rec.status.clone()),
                filled: Some(fmt_qty(rec.filled)),
                remaining: Some(fmt_qty(rec.total - rec.filled)),
                avg_fill_price: Some(rec.avg),
                perm_id: Some(rec.perm_id),
                last_fill_price: Some(rec.last),
                client_id: Some(rec.placed.client_id),
                why_held: (!rec.why_held.is_empty()).then(|| rec.why_held.clone()),
            },
        )
    }

    fn open_order_msg(rec: &OrderRec) -> Vec<u8> {
        let mut order = rec.placed.order.clone();
        order.perm_id = Some(rec.perm_id);
        order.client_id = Some(rec.placed.client_id);
        order.order_id = Some(rec.placed.order_id);
        order.filled_quantity = Some(fmt_qty(rec.filled));
        proto::body(
            inc::OPEN_ORDER,
            &proto::OpenOrder {
                order_id: Some(rec.placed.order_id),
                contract: Some(rec.placed.contract.clone()),
                order: Some(order),
                order_state: Some(proto::OrderState {
                    status: Some(rec.status.clone()),
                    ..Default::default()
                }),
            },
        )
    }

    fn error_msg(id: i32, code: i32, text: &str) -> Vec<u8> {
        proto::body(
            inc::ERROR,
            &proto::ErrorMessage {
                id: Some(id),
                error_time: None,
                error_code: Some(code),
                error_msg: Some(text.to_owned()),
            },
        )
    }

    fn position_msg(account: &str, contract: &proto::Contract, qty: f64, avg: f64) -> Vec<u8> {
        proto::body(
            inc::POSITION,
            &proto::Position {
                account: Some(account.to_owned()),
                contract: Some(contract.clone()),
                position: Some(fmt_qty(qty)),
                avg_cost: Some(avg),
            },
        )
    }

    /// Sets a position and pushes it to every positions subscriber.
    fn set_position(&mut self, account: &str, contract: proto::Contract, qty: f64, avg: f64) {
        let existing = self
            .positions
            .iter_mut()
            .find(|(a, c, _, _)| a == account && key_matches(&contract, c));
        match existing {
            Some(p) => {
                p.2 = qty;
                p.3 = avg;
            }
            None => self
                .positions
                .push((account.to_owned(), contract.clone(), qty, avg)),
        }
        let msg = Self::position_msg(account, &contract, qty, avg);
        if self.gap {
            return;
        }
        for c in self.conns.iter().filter(|c| c.positions) {
            let _ = c.tx.send(msg.clone());
        }
    }

    fn adjust_position(&mut self, account: &str, contract: &proto::Contract, delta: f64, px: f64) {
        let cur = self
            .positions
            .iter()
            .find(|(a, c, _, _)| a == account && key_matches(contract, c))
            .map(|p| (p.2, p.3))
            .unwrap_or((0.0, 0.0));
        let mult = contract.multiplier.unwrap_or(1.0).max(1.0);
        let new_qty = cur.0 + delta;
        let avg = if new_qty == 0.0 {
            0.0
        } else if cur.0 == 0.0 || (cur.0 > 0.0) == (delta > 0.0) {
            (cur.0 * cur.1 + delta * px * mult) / new_qty
        } else {
            cur.1
        };
        self.set_position(account, contract.clone(), new_qty, avg);
    }

    fn contract_by_con_id(&self, con_id: i32) -> Option<proto::Contract> {
        self.contracts
            .iter()
            .find(|c| c.con_id == Some(con_id))
            .cloned()
    }

    /// One execution + commission for `contract`, sent to the order's client.
    fn execute(
        &mut self,
        rec: &OrderRec,
        contract: proto::Contract,
        side_buy: bool,
        qty: f64,
        price: f64,
        position: bool,
    ) {
        self.next_exec += 1;
        let exec_id = format!("0000e0d5.{:08x}.{:02}.01", rec.perm_id, self.next_exec);
        let (secs, time) = self.exec_time();
        let account = rec
            .placed
            .order
            .account
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| self.cfg.accounts.first().cloned())
            .unwrap_or_default();
        let execution = proto::Execution {
            order_id: Some(rec.placed.order_id),
            exec_id: Some(exec_id.clone()),
            time: Some(time),
            acct_number: Some(account.clone()),
            exchange: Some("CBOE".into()),
            side: Some(if side_buy { "BOT" } else { "SLD" }.into()),
            shares: Some(fmt_qty(qty)),
            price: Some(price),
            perm_id: Some(rec.perm_id),
            client_id: Some(rec.placed.client_id),
            cum_qty: Some(fmt_qty(qty)),
            avg_price: Some(price),
            last_liquidity: Some(1),
        };
        let commission = 0.65 * qty;
        let details = proto::body(
            inc::EXECUTION_DATA,
            &proto::ExecutionDetails {
                req_id: Some(-1),
                contract: Some(contract.clone()),
                execution: Some(execution.clone()),
            },
        );
        let report = proto::body(
            inc::COMMISSION_REPORT,
            &proto::CommissionAndFeesReport {
                exec_id: Some(exec_id),
                commission_and_fees: Some(commission),
                currency: Some("USD".into()),
            },
        );
        self.send_to_client(rec.placed.client_id, details);
        if self.hold_commissions {
            self.held_commissions.push((rec.placed.client_id, report));
        } else {
            self.send_to_client(rec.placed.client_id, report);
        }
        self.execs.push(ExecRec {
            client_id: rec.placed.client_id,
            secs,
            contract: contract.clone(),
            execution,
            commission,
        });
        if position {
            let delta = if side_buy { qty } else { -qty };
            self.adjust_position(&account, &contract, delta, price);
        }
    }

    /// Fills `qty` of an order at `price` (net price for combos; legs at `leg_prices`).
    fn fill(&mut self, order_id: i32, qty: f64, price: f64, leg_prices: &[f64]) -> bool {
        let Some(mut rec) = self.orders.get(&order_id).cloned() else {
            return false;
        };
        let buy = rec.placed.order.action.as_deref() == Some("BUY");
        let contract = rec.placed.contract.clone();
        if contract.sec_type.as_deref() == Some("BAG") {
            for (i, leg) in contract.combo_legs.iter().enumerate() {
                let Some(leg_contract) = self.contract_by_con_id(leg.con_id.unwrap_or_default())
                else {
                    return false;
                };
                let leg_buy = (leg.action.as_deref() == Some("BUY")) == buy;
                let ratio = f64::from(leg.ratio.unwrap_or(1));
                let px = leg_prices.get(i).copied().unwrap_or(price);
                self.execute(&rec, leg_contract, leg_buy, qty * ratio, px, true);
            }
            // IB also reports one execution for the BAG itself.
            self.execute(&rec, contract, buy, qty, price, false);
        } else {
            self.execute(&rec, contract, buy, qty, price, true);
        }
        let new_filled = rec.filled + qty;
        rec.avg = (rec.avg * rec.filled + price * qty) / new_filled;
        rec.filled = new_filled;
        rec.last = price;
        if rec.filled >= rec.total {
            rec.status = "Filled".into();
        } else if matches!(rec.status.as_str(), "PreSubmitted" | "Inactive") {
            rec.status = "Submitted".into();
        }
        self.send_status(&rec);
        self.orders.insert(order_id, rec);
        true
    }

    /// Executes `qty` of one leg of a combo at `price`, alone. The order's filled quantity
    /// counts whole combo units only (the least filled leg over its ratio); Filled, and IB's
    /// execution of the BAG itself, when every leg is done.
    fn fill_combo_leg(&mut self, order_id: i32, leg: usize, qty: f64, price: f64) -> bool {
        let Some(mut rec) = self.orders.get(&order_id).cloned() else {
            return false;
        };
        let contract = rec.placed.contract.clone();
        let Some(l) = contract.combo_legs.get(leg).cloned() else {
            return false;
        };
        let Some(leg_contract) = self.contract_by_con_id(l.con_id.unwrap_or_default()) else {
            return false;
        };
        let buy = rec.placed.order.action.as_deref() == Some("BUY");
        let leg_buy = (l.action.as_deref() == Some("BUY")) == buy;
        self.execute(&rec, leg_contract, leg_buy, qty, price, true);
        rec.legs_filled.resize(contract.combo_legs.len(), 0.0);
        rec.legs_filled[leg] += qty;
        let units = contract
            .combo_legs
            .iter()
            .zip(&rec.legs_filled)
            .map(|(l, f)| (f / f64::from(l.ratio.unwrap_or(1))).floor())
            .fold(f64::INFINITY, f64::min);
        if units > rec.filled {
            rec.filled = units;
            rec.last = price;
        }
        if rec.filled >= rec.total {
            rec.status = "Filled".into();
            self.execute(&rec, contract, buy, rec.total, price, false);
        }
        self.send_status(&rec);
        self.orders.insert(order_id, rec);
        true
    }

    /// Counts a message of `conn`; true when it is over the per-second limit.
    fn over_rate(&mut self, conn: u64) -> bool {
        let Some(max) = self.max_rate else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let w = self.rate_window.entry(conn).or_default();
        while w.front().is_some_and(|t| now.saturating_sub(*t) >= 1000) {
            w.pop_front();
        }
        // A message over the limit is dropped and does not count.
        if w.len() >= max {
            return true;
        }
        w.push_back(now);
        false
    }

    fn handle(&mut self, conn: u64, msg_id: i32, payload: &[u8]) {
        let client_id = self
            .conns
            .iter()
            .find(|c| c.id == conn)
            .and_then(|c| c.client_id)
            .unwrap_or(-1);
        self.received.push((client_id, msg_id));
        if self.over_rate(conn) {
            // TWS API message codes: 100 "Max rate of messages per second has been exceeded";
            // the message is not processed.
            self.send_to_conn(
                conn,
                Self::error_msg(
                    -1,
                    100,
                    "Max rate of messages per second has been exceeded:max=50 rec=51 (1)",
                ),
            );
            return;
        }
        if self.gap && !matches!(msg_id, out::START_API | out::REQ_IDS) {
            // TWS itself answers a connect, but cannot reach IB for anything else.
            return;
        }
        match msg_id {
            out::START_API => {
                let Ok(req) = proto::StartApiRequest::decode(payload) else {
                    return;
                };
                if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
                    c.client_id = req.client_id;
                }
                // As IB Gateway: ManagedAccounts, then NextValidId, then the data farms'
                // status notices (id -1: 2104 market data, 2106 historical, 2158 sec-def).
                // TWS API message codes: https://interactivebrokers.github.io/tws-api/message_codes.html
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::MANAGED_ACCOUNTS,
                        &proto::ManagedAccounts {
                            accounts_list: Some(self.cfg.accounts.join(",")),
                        },
                    ),
                );
                let next = self.next_valid_id();
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::NEXT_VALID_ID,
                        &proto::NextValidId {
                            order_id: Some(next),
                        },
                    ),
                );
                for (code, text) in [
                    (2104, "Market data farm connection is OK:usfarm"),
                    (2106, "HMDS data farm connection is OK:ushmds"),
                    (2158, "Sec-def data farm connection is OK:secdefnj"),
                ] {
                    self.send_to_conn(conn, Self::error_msg(-1, code, text));
                }
            }
            out::REQ_IDS => {
                let next = self.next_valid_id();
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::NEXT_VALID_ID,
                        &proto::NextValidId {
                            order_id: Some(next),
                        },
                    ),
                );
            }
            out::PLACE_ORDER => self.place(conn, client_id, payload),
            out::CANCEL_ORDER => {
                let Ok(req) = proto::CancelOrderRequest::decode(payload) else {
                    return;
                };
                self.cancel(conn, req.order_id.unwrap_or_default());
            }
            out::REQ_POSITIONS => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
                    c.positions = true;
                }
                for (a, c, q, avg) in self.positions.clone() {
                    self.send_to_conn(conn, Self::position_msg(&a, &c, q, avg));
                }
                self.send_to_conn(conn, proto::body(inc::POSITION_END, &proto::PositionEnd {}));
            }
            out::REQ_EXECUTIONS => {
                let Ok(req) = proto::ExecutionRequest::decode(payload) else {
                    return;
                };
                let req_id = req.req_id.unwrap_or_default();
                let want_client = req.execution_filter.as_ref().and_then(|f| f.client_id);
                // As TWS: only executions at or after the filter's time ("yyyymmdd-hh:mm:ss",
                // whole seconds; read as UTC, as the adapter writes it).
                let from = req
                    .execution_filter
                    .as_ref()
                    .and_then(|f| f.time.as_deref())
                    .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%d-%H:%M:%S").ok())
                    .map(|t| t.and_utc().timestamp());
                let today = self.history_start();
                for e in self.execs.clone() {
                    if want_client.is_some_and(|w| w != e.client_id)
                        || from.is_some_and(|t| e.secs < t)
                        || e.secs < today
                    {
                        continue;
                    }
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::EXECUTION_DATA,
                            &proto::ExecutionDetails {
                                req_id: Some(req_id),
                                contract: Some(e.contract.clone()),
                                execution: Some(e.execution.clone()),
                            },
                        ),
                    );
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::COMMISSION_REPORT,
                            &proto::CommissionAndFeesReport {
                                exec_id: e.execution.exec_id.clone(),
                                commission_and_fees: Some(e.commission),
                                currency: Some("USD".into()),
                            },
                        ),
                    );
                }
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::EXECUTION_DATA_END,
                        &proto::ExecutionDetailsEnd {
                            req_id: Some(req_id),
                        },
                    ),
                );
            }
            out::REQ_OPEN_ORDERS | out::REQ_ALL_OPEN_ORDERS => {
                for rec in self.orders.values() {
                    let terminal = ended(&rec.status);
                    if terminal
                        || (msg_id == out::REQ_OPEN_ORDERS && rec.placed.client_id != client_id)
                    {
                        continue;
                    }
                    self.send_to_conn(conn, Self::open_order_msg(rec));
                    self.send_to_conn(conn, Self::order_status_msg(rec));
                }
                self.send_to_conn(
                    conn,
                    proto::body(inc::OPEN_ORDER_END, &proto::OpenOrdersEnd {}),
                );
            }
            out::REQ_COMPLETED_ORDERS => {
                for rec in self.orders.values() {
                    if !ended(&rec.status) {
                        continue;
                    }
                    let mut order = rec.placed.order.clone();
                    order.perm_id = Some(rec.perm_id);
                    order.client_id = Some(rec.placed.client_id);
                    order.order_id = Some(0);
                    order.filled_quantity = Some(fmt_qty(rec.filled));
                    // IB's completed orders carry the quantity left unfilled in totalQuantity
                    // (0 once filled; 400 for 1,000 cancelled after 600 filled), not the size
                    // the order was placed with.
                    // https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/#completed-orders
                    order.total_quantity = Some(fmt_qty((rec.total - rec.filled).max(0.0)));
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::COMPLETED_ORDER,
                            &proto::CompletedOrder {
                                contract: Some(rec.placed.contract.clone()),
                                order: Some(order),
                                order_state: Some(proto::OrderState {
                                    status: Some(rec.status.clone()),
                                    completed_status: Some(rec.status.clone()),
                                    ..Default::default()
                                }),
                            },
                        ),
                    );
                }
                self.send_to_conn(
                    conn,
                    proto::body(inc::COMPLETED_ORDERS_END, &proto::CompletedOrdersEnd {}),
                );
            }
            out::CANCEL_ACCOUNT_SUMMARY => {
                if let Ok(req) = proto::CancelAccountSummary::decode(payload)
                    && let Some(open) = self.summaries.get_mut(&conn)
                {
                    open.remove(&req.req_id.unwrap_or_default());
                }
            }
            out::REQ_ACCOUNT_SUMMARY => {
                let Ok(req) = proto::AccountSummaryRequest::decode(payload) else {
                    return;
                };
                // IB keeps at most two account-summary subscriptions open per client: the
                // third is refused with 322 until one is cancelled (TWS API, Account Summary:
                // "only two active summary subscriptions").
                // https://interactivebrokers.github.io/tws-api/account_summary.html
                let open = self.summaries.entry(conn).or_default();
                if open.len() >= 2 {
                    self.send_to_conn(
                        conn,
                        Self::error_msg(
                            req.req_id.unwrap_or(-1),
                            322,
                            "Error processing request:-'bd' : cause - Maximum number of account summary requests exceeded",
                        ),
                    );
                    return;
                }
                open.insert(req.req_id.unwrap_or_default());
                let account = self.cfg.accounts.first().cloned().unwrap_or_default();
                for (tag, value) in self.account_values.clone() {
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::ACCOUNT_SUMMARY,
                            &proto::AccountSummary {
                                req_id: req.req_id,
                                account: Some(account.clone()),
                                tag: Some(tag),
                                value: Some(value),
                                currency: Some("USD".into()),
                            },
                        ),
                    );
                }
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::ACCOUNT_SUMMARY_END,
                        &proto::AccountSummaryEnd { req_id: req.req_id },
                    ),
                );
            }
            out::REQ_PNL => {
                let Ok(req) = proto::PnLRequest::decode(payload) else {
                    return;
                };
                let (d, u, r) = self.pnl;
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::PNL,
                        &proto::PnL {
                            req_id: req.req_id,
                            daily_pn_l: Some(d),
                            unrealized_pn_l: Some(u),
                            realized_pn_l: Some(r),
                        },
                    ),
                );
            }
            out::REQ_CONTRACT_DATA => {
                let Ok(req) = proto::ContractDataRequest::decode(payload) else {
                    return;
                };
                let want = req.contract.unwrap_or_default();
                let found: Vec<_> = self
                    .contracts
                    .iter()
                    .filter(|c| key_matches(&want, c))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    self.send_to_conn(
                        conn,
                        Self::error_msg(
                            req.req_id.unwrap_or(-1),
                            200,
                            "No security definition has been found for the request",
                        ),
                    );
                    return;
                }
                for c in found {
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::CONTRACT_DATA,
                            &proto::ContractData {
                                req_id: req.req_id,
                                contract: Some(c),
                                contract_details: Some(proto::ContractDetails {
                                    market_name: Some("OPT".into()),
                                    min_tick: Some("0.01".into()),
                                    under_con_id: None,
                                }),
                            },
                        ),
                    );
                }
                self.send_to_conn(
                    conn,
                    proto::body(
                        inc::CONTRACT_DATA_END,
                        &proto::ContractDataEnd { req_id: req.req_id },
                    ),
                );
            }
            out::REQ_MKT_DATA => {
                let Ok(req) = proto::MarketDataRequest::decode(payload) else {
                    return;
                };
                let want = req.contract.unwrap_or_default();
                let req_id = req.req_id.unwrap_or(-1);
                if let Some((_, code, text)) = self
                    .md_refused
                    .iter()
                    .find(|(c, ..)| key_matches(&want, c))
                    .cloned()
                {
                    self.send_to_conn(conn, Self::error_msg(req_id, code, &text));
                    return;
                }
                let delayed = self.md_delayed.iter().any(|c| key_matches(&want, c));
                if delayed {
                    self.send_to_conn(
                        conn,
                        Self::error_msg(
                            req_id,
                            10167,
                            "Requested market data is not subscribed. Displaying delayed market data.",
                        ),
                    );
                }
                let Some(q) = self
                    .quotes
                    .iter()
                    .find(|(c, _)| key_matches(&want, c))
                    .map(|(_, q)| *q)
                else {
                    return;
                };
                let tp = |t: i32, p: f64, s: f64| {
                    proto::body(
                        inc::TICK_PRICE,
                        &proto::TickPrice {
                            req_id: req.req_id,
                            tick_type: Some(t),
                            price: Some(p),
                            size: Some(fmt_qty(s)),
                        },
                    )
                };
                // Delayed data comes as its own tick types: 66 delayed bid, 67 delayed ask,
                // 68 delayed last (TWS API, Tick Types).
                let (bid, ask, last) = if delayed { (66, 67, 68) } else { (1, 2, 4) };
                self.send_to_conn(conn, tp(bid, q.bid, q.bid_size));
                self.send_to_conn(conn, tp(ask, q.ask, q.ask_size));
                self.send_to_conn(conn, tp(last, q.last, 1.0));
                if let Some((iv, delta, gamma, vega, theta, und)) = q.greeks {
                    self.send_to_conn(
                        conn,
                        proto::body(
                            inc::TICK_OPTION_COMPUTATION,
                            &proto::TickOptionComputation {
                                req_id: req.req_id,
                                tick_type: Some(13),
                                tick_attrib: Some(0),
                                implied_vol: Some(iv),
                                delta: Some(delta),
                                opt_price: Some((q.bid + q.ask) / 2.0),
                                pv_dividend: Some(0.0),
                                gamma: Some(gamma),
                                vega: Some(vega),
                                theta: Some(theta),
                                und_price: Some(und),
                            },
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    fn next_valid_id(&self) -> i32 {
        if self.rolled_back {
            return self.cfg.next_valid_id;
        }
        let placed = self.orders.keys().next_back().map_or(0, |k| k + 1);
        self.cfg.next_valid_id.max(placed)
    }

    fn place(&mut self, conn: u64, client_id: i32, payload: &[u8]) {
        let Ok(req) = proto::PlaceOrderRequest::decode(payload) else {
            return;
        };
        let order_id = req.order_id.unwrap_or_default();
        let placed = PlacedOrder {
            client_id,
            order_id,
            contract: req.contract.unwrap_or_default(),
            order: req.order.unwrap_or_default(),
        };
        if self.lose_next_order && placed.order.what_if != Some(true) {
            self.lose_next_order = false;
            for c in self.conns.drain(..) {
                for t in c.tasks {
                    t.abort();
                }
            }
            return;
        }
        self.placed.push(placed.clone());
        if self.read_only {
            self.send_to_conn(
                conn,
                Self::error_msg(
                    order_id,
                    321,
                    "Error validating request.-'bW' : cause - The API interface is currently in Read-Only mode.",
                ),
            );
            return;
        }
        if placed.contract.sec_type.as_deref() == Some("BAG")
            && placed.contract.symbol.as_deref().unwrap_or("").is_empty()
        {
            self.send_to_conn(
                conn,
                Self::error_msg(
                    order_id,
                    321,
                    "Error validating request: combo symbol missing",
                ),
            );
            return;
        }
        if placed.order.what_if != Some(true) {
            // Rejections that come as a notice with the order's id and never an order status
            // (TWS API message codes: 103 duplicate order id, 110 price does not conform to
            // the minimum price variation, 201 order rejected with a reason).
            // https://www.interactivebrokers.com/campus/ibkr-api-page/tws-api-error-codes/
            let reused = self.orders.get(&order_id).is_some_and(|r| {
                ended(&r.status) || !key_matches(&r.placed.contract, &placed.contract)
            });
            let rejection = if reused {
                Some((103, format!("Duplicate order id: {order_id}")))
            } else if let Some(r) = self.reject_next.take() {
                Some(r)
            } else {
                self.min_tick.and_then(|tick| {
                    let off = |p: Option<f64>| {
                        p.is_some_and(|p| {
                            let n = p / tick;
                            (n - n.round()).abs() > 1e-6
                        })
                    };
                    (off(placed.order.lmt_price) || off(placed.order.aux_price)).then(|| {
                        (
                            110,
                            format!(
                                "The price does not conform to the minimum price variation for this contract ({tick})."
                            ),
                        )
                    })
                })
            };
            if let Some((code, text)) = rejection {
                self.send_to_conn(conn, Self::error_msg(order_id, code, &text));
                return;
            }
        }
        if placed.order.what_if == Some(true) {
            let mut order = placed.order.clone();
            order.order_id = Some(order_id);
            self.send_to_conn(
                conn,
                proto::body(
                    inc::OPEN_ORDER,
                    &proto::OpenOrder {
                        order_id: Some(order_id),
                        contract: Some(placed.contract.clone()),
                        order: Some(order),
                        order_state: Some(self.what_if.clone()),
                    },
                ),
            );
            return;
        }
        self.next_perm += 1;
        let total = placed
            .order
            .total_quantity
            .as_deref()
            .and_then(|q| q.parse::<f64>().ok())
            .unwrap_or(0.0);
        // Stop orders are simulated by IB, held until elected: PreSubmitted (TWS API, Order
        // Submission: "PreSubmitted - indicates that a simulated order type has been accepted
        // by the IB system and that this order has yet to be elected").
        let simulated = matches!(
            placed.order.order_type.as_deref(),
            Some("STP" | "STP LMT" | "TRAIL" | "TRAIL LIMIT")
        );
        let rec = OrderRec {
            placed,
            perm_id: self.next_perm,
            status: if simulated {
                "PreSubmitted"
            } else {
                "Submitted"
            }
            .into(),
            total,
            filled: 0.0,
            avg: 0.0,
            last: 0.0,
            why_held: String::new(),
            legs_filled: Vec::new(),
        };
        self.send_to_client(client_id, Self::open_order_msg(&rec));
        self.send_status(&rec);
        self.orders.insert(order_id, rec);
    }

    fn cancel(&mut self, conn: u64, order_id: i32) {
        let Some(mut rec) = self.orders.get(&order_id).cloned() else {
            // TWS API message code 10147: the order to cancel is not known (never placed, or
            // rejected without a status).
            self.send_to_conn(
                conn,
                Self::error_msg(
                    order_id,
                    10147,
                    &format!("OrderId {order_id} that needs to be cancelled is not found."),
                ),
            );
            return;
        };
        let client = rec.placed.client_id;
        if rec.status == "ApiCancelled" {
            self.send_to_client(
                client,
                Self::error_msg(
                    order_id,
                    10148,
                    &format!(
                        "OrderId {order_id} that needs to be cancelled cannot be cancelled, state: ApiCancelled."
                    ),
                ),
            );
            return;
        }
        if ended(&rec.status) {
            self.send_to_client(
                client,
                Self::error_msg(
                    order_id,
                    161,
                    "Cancel attempted when order is not in a cancellable state.",
                ),
            );
            return;
        }
        rec.status = "PendingCancel".into();
        self.send_status(&rec);
        self.orders.insert(order_id, rec.clone());
        match self.cancel_mode {
            CancelMode::Confirm => {
                rec.status = "Cancelled".into();
                self.send_status(&rec);
                self.send_to_client(
                    client,
                    Self::error_msg(order_id, 202, "Order Canceled - reason:"),
                );
                self.orders.insert(order_id, rec);
            }
            CancelMode::ApiCancelled { then_fill } => {
                rec.status = "ApiCancelled".into();
                self.send_status(&rec);
                self.orders.insert(order_id, rec.clone());
                if let Some(px) = then_fill {
                    let rest = rec.total - rec.filled;
                    self.fill(order_id, rest, px, &[]);
                }
            }
            CancelMode::LateFill(px) => {
                let rest = rec.total - rec.filled;
                self.fill(order_id, rest, px, &[]);
                self.send_to_client(
                    client,
                    Self::error_msg(
                        order_id,
                        161,
                        "Cancel attempted when order is not in a cancellable state.",
                    ),
                );
            }
        }
    }
}

impl FakeTws {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub async fn start(cfg: FakeTwsConfig) -> std::io::Result<Self> {
        Self::start_on(0, cfg).await
    }

    /// A gateway for the one account `account`, its executions stamped on the wall clock (as
    /// the guard's system clock reads them): what a test of the guard over `IbBroker` starts.
    pub async fn start_for(account: &str) -> std::io::Result<Self> {
        let f = Self::start(FakeTwsConfig {
            accounts: vec![account.to_owned()],
            ..FakeTwsConfig::default()
        })
        .await?;
        f.use_wall_clock();
        Ok(f)
    }

    /// Binds 127.0.0.1:`port` (a gateway that comes up on the port the app was told to use,
    /// after the app) and starts accepting.
    pub async fn start_on(port: u16, cfg: FakeTwsConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            cfg,
            conns: Vec::new(),
            next_conn: 0,
            next_perm: 1_000,
            next_exec: 0,
            orders: BTreeMap::new(),
            placed: Vec::new(),
            execs: Vec::new(),
            positions: Vec::new(),
            account_values: Vec::new(),
            pnl: (0.0, 0.0, 0.0),
            contracts: Vec::new(),
            quotes: Vec::new(),
            cancel_mode: CancelMode::Confirm,
            read_only: false,
            what_if: proto::OrderState::default(),
            received: Vec::new(),
            clock_secs: 1_736_780_400,
            wall_offset: None,
            down: false,
            reject_next: None,
            min_tick: None,
            rolled_back: false,
            exec_zone: None,
            hold_commissions: false,
            held_commissions: Vec::new(),
            lose_next_order: false,
            duplicate_statuses: false,
            md_refused: Vec::new(),
            md_delayed: Vec::new(),
            max_rate: None,
            rate_window: BTreeMap::new(),
            summaries: BTreeMap::new(),
            gap: false,
        }));
        let (changed, _) = watch::channel(0u64);
        let st = state.clone();
        let ch = changed.clone();
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                if lock(&st).down {
                    // A gateway restarting: the port answers, the session ends at once.
                    drop(sock);
                    continue;
                }
                let st = st.clone();
                let ch = ch.clone();
                tokio::spawn(serve(sock, st, ch));
            }
        });
        Ok(Self {
            addr,
            state,
            changed,
            accept,
        })
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut lock(&self.state));
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// A stock contract.
    pub fn stock(con_id: i32, symbol: &str) -> proto::Contract {
        proto::Contract {
            con_id: Some(con_id),
            symbol: Some(symbol.into()),
            sec_type: Some("STK".into()),
            exchange: Some("SMART".into()),
            currency: Some("USD".into()),
            ..Default::default()
        }
    }

    /// An option contract (`right` "C" or "P", expiry "YYYYMMDD"), multiplier 100.
    pub fn option(
        con_id: i32,
        symbol: &str,
        expiry: &str,
        right: &str,
        strike: f64,
    ) -> proto::Contract {
        proto::Contract {
            con_id: Some(con_id),
            symbol: Some(symbol.into()),
            sec_type: Some("OPT".into()),
            last_trade_date_or_contract_month: Some(expiry.into()),
            strike: Some(strike),
            right: Some(right.into()),
            multiplier: Some(100.0),
            exchange: Some("SMART".into()),
            currency: Some("USD".into()),
            trading_class: Some(symbol.into()),
            ..Default::default()
        }
    }

    /// Registers a contract for contract-details queries and combo legs.
    pub fn add_contract(&self, c: proto::Contract) {
        self.with(|s| s.contracts.push(c));
    }

    /// Sets a position (no execution) and pushes it to subscribers: how an overnight
    /// assignment looks on the wire.
    pub fn set_position(&self, account: &str, c: proto::Contract, qty: f64, avg_cost: f64) {
        self.with(|s| s.set_position(account, c, qty, avg_cost));
    }

    /// Sets an account-summary tag (e.g. "NetLiquidation").
    pub fn set_account_value(&self, tag: &str, value: &str) {
        self.with(|s| {
            s.account_values.retain(|(t, _)| t != tag);
            s.account_values.push((tag.into(), value.into()));
        });
    }

    /// Sets the PnL answer (daily, unrealized, realized).
    pub fn set_pnl(&self, daily: f64, unrealized: f64, realized: f64) {
        self.with(|s| s.pnl = (daily, unrealized, realized));
    }

    /// Sets the market data answered for a contract.
    pub fn set_quote(&self, c: proto::Contract, q: QuoteScript) {
        self.with(|s| s.quotes.push((c, q)));
    }

    /// Sets the what-if answer (the order state with margin fields).
    pub fn set_what_if(&self, state: proto::OrderState) {
        self.with(|s| s.what_if = state);
    }

    /// Sets what CancelOrder does.
    pub fn set_cancel_mode(&self, m: CancelMode) {
        self.with(|s| s.cancel_mode = m);
    }

    /// Rejects orders as a read-only API would (error 321).
    pub fn set_read_only(&self, on: bool) {
        self.with(|s| s.read_only = on);
    }

    /// Sets the fake's clock (Unix seconds): execution times count on from it, one second per
    /// execution. The default starts at 2025-01-13 15:00 UTC.
    pub fn set_clock(&self, unix_secs: i64) {
        self.with(|s| s.clock_secs = unix_secs);
    }

    /// Stamps executions with the wall clock in whole seconds, as TWS does (never going back;
    /// several executions may share a second): for tests whose client runs on the system
    /// clock.
    pub fn use_wall_clock(&self) {
        self.with(|s| s.wall_offset = Some(0));
    }

    /// Stamps executions with the wall clock shifted to read `start_unix_secs` now (for a client
    /// whose clock is shifted the same way, e.g. the app's `TRADEGUARD_CLOCK_START`).
    pub fn use_wall_clock_from(&self, start_unix_secs: i64) {
        let offset = start_unix_secs.saturating_sub(wall_secs());
        self.with(|s| s.wall_offset = Some(offset));
    }

    /// Takes the gateway down (every connection closed, new ones refused: a restart, or the
    /// nightly reset) or brings it back up.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
        if down {
            self.drop_connections();
        }
    }

    /// Rejects the next order placed with notice `code` and no order status (IB's 103, 110,
    /// 201 ...).
    pub fn reject_next_order(&self, code: i32, text: &str) {
        self.with(|s| s.reject_next = Some((code, text.to_owned())));
    }

    /// Rejects limit and stop prices that are not a multiple of `tick` with notice 110.
    pub fn set_min_tick(&self, tick: Option<f64>) {
        self.with(|s| s.min_tick = tick);
    }

    /// Writes execution times in `zone` (TWS writes them in its login zone, e.g. "US/Eastern");
    /// `None`: UTC.
    pub fn set_exec_time_zone(&self, zone: Option<chrono_tz::Tz>) {
        self.with(|s| s.exec_zone = zone);
    }

    /// Loses the next order: the connection drops as it arrives and it never reaches IB.
    pub fn lose_next_order(&self) {
        self.with(|s| s.lose_next_order = true);
    }

    /// Holds commission reports (they come after the execution) until released.
    pub fn hold_commissions(&self, on: bool) {
        self.with(|s| s.hold_commissions = on);
    }

    /// Sends the commission reports held so far.
    pub fn release_commissions(&self) {
        self.with(|s| {
            for (client, body) in std::mem::take(&mut s.held_commissions) {
                s.send_to_client(client, body);
            }
        });
    }

    /// IB corrects an execution it reported: a new execution with the same id but the next
    /// correction number ("….01" → "….02"), the new quantity and price, and the position
    /// adjusted by the difference. Returns the correction's id.
    pub fn correct_execution(&self, exec_id: &str, qty: f64, price: f64) -> Option<String> {
        self.with(|s| {
            let old = s
                .execs
                .iter()
                .find(|e| e.execution.exec_id.as_deref() == Some(exec_id))?
                .clone();
            let (base, n) = exec_id.rsplit_once('.')?;
            let n: u32 = n.parse().ok()?;
            let new_id = format!("{base}.{:02}", n + 1);
            let mut execution = old.execution.clone();
            execution.exec_id = Some(new_id.clone());
            execution.shares = Some(fmt_qty(qty));
            execution.cum_qty = Some(fmt_qty(qty));
            execution.price = Some(price);
            execution.avg_price = Some(price);
            let was: f64 = old
                .execution
                .shares
                .as_deref()
                .and_then(|q| q.parse().ok())
                .unwrap_or(0.0);
            let buy = execution.side.as_deref() == Some("BOT");
            let account = execution.acct_number.clone().unwrap_or_default();
            s.send_to_client(
                old.client_id,
                proto::body(
                    inc::EXECUTION_DATA,
                    &proto::ExecutionDetails {
                        req_id: Some(-1),
                        contract: Some(old.contract.clone()),
                        execution: Some(execution.clone()),
                    },
                ),
            );
            s.send_to_client(
                old.client_id,
                proto::body(
                    inc::COMMISSION_REPORT,
                    &proto::CommissionAndFeesReport {
                        exec_id: Some(new_id.clone()),
                        commission_and_fees: Some(old.commission),
                        currency: Some("USD".into()),
                    },
                ),
            );
            let delta = if buy { qty - was } else { was - qty };
            if delta != 0.0 {
                s.adjust_position(&account, &old.contract, delta, price);
            }
            s.execs.push(ExecRec { execution, ..old });
            Some(new_id)
        })
    }

    /// Sets the next valid order id the gateway announces, even below ids it already used: a
    /// gateway restart can roll IB's counter back, and placing a used id is then rejected with
    /// 103 (TWS API "Order Management": "the next valid identifier is persistent between TWS
    /// sessions" unless reset).
    pub fn set_next_valid_id(&self, id: i32) {
        self.with(|s| {
            s.cfg.next_valid_id = id;
            s.rolled_back = true;
        });
    }

    /// Cancels an order at the gateway itself (the TWS user, or the day ending), reporting it
    /// to its client if connected.
    pub fn cancel_at_gateway(&self, order_id: i32) -> bool {
        self.with(|s| {
            let Some(mut rec) = s.orders.get(&order_id).cloned() else {
                return false;
            };
            rec.status = "Cancelled".into();
            s.send_status(&rec);
            s.orders.insert(order_id, rec);
            true
        })
    }

    /// Puts an order in an IB status and reports it ("Inactive" and back to "Submitted": TWS
    /// Reference, Order Status: an order "accepted … but currently … not working, due to
    /// system, exchange or other issues. When the order becomes active, the order status …
    /// will change"; `why_held` goes in the status's whyHeld, empty for none). Returns false
    /// for an unknown order.
    /// <https://www.interactivebrokers.com/php/webhelp/TWS_Reference_Information/orderStatus.htm>
    pub fn set_order_status(&self, order_id: i32, status: &str, why_held: &str) -> bool {
        self.with(|s| {
            let Some(mut rec) = s.orders.get(&order_id).cloned() else {
                return false;
            };
            rec.status = status.to_owned();
            why_held.clone_into(&mut rec.why_held);
            s.send_status(&rec);
            s.orders.insert(order_id, rec);
            true
        })
    }

    /// Every order status is sent twice from now on (TWS API, orderStatus: "It is possible
    /// that orderStatus() may return duplicate messages").
    pub fn duplicate_statuses(&self, on: bool) {
        self.with(|s| s.duplicate_statuses = on);
    }

    /// Fills `qty` of a single order at `price`. Returns false for an unknown order.
    pub fn fill(&self, order_id: i32, qty: f64, price: f64) -> bool {
        self.with(|s| s.fill(order_id, qty, price, &[]))
    }

    /// Fills `qty` combo units at net `price`, legs at `leg_prices` (leg order).
    pub fn fill_combo(&self, order_id: i32, qty: f64, price: f64, leg_prices: &[f64]) -> bool {
        self.with(|s| s.fill(order_id, qty, price, leg_prices))
    }

    /// Executes `qty` of one leg of a combo order alone, at `price` (TWS API, Spread
    /// contracts: the legs of a combo are reported as executions of their own, and unless the
    /// combo is guaranteed they can fill separately: one side first, staggered, in any order).
    /// The order's status counts whole combo units. Returns false for an unknown order or leg.
    /// <https://interactivebrokers.github.io/tws-api/spread_contracts.html>
    pub fn fill_combo_leg(&self, order_id: i32, leg: usize, qty: f64, price: f64) -> bool {
        self.with(|s| s.fill_combo_leg(order_id, leg, qty, price))
    }

    /// Market-data requests for `c` are answered with notice `code` (354 "Requested market
    /// data is not subscribed", 10089 "requires additional subscription for API", 10197 "No
    /// market data during competing live session", …) and no ticks: the stream ends there.
    /// <https://www.interactivebrokers.com/campus/ibkr-api-page/tws-api-error-codes/>
    pub fn refuse_market_data(&self, c: proto::Contract, code: i32, text: &str) {
        self.with(|s| s.md_refused.push((c, code, text.to_owned())));
    }

    /// IB has only delayed data for `c`: a request is answered with notice 10167 ("Displaying
    /// delayed market data") and the quote as delayed ticks (66/67/68), 15–20 minutes old.
    pub fn delayed_market_data_only(&self, c: proto::Contract) {
        self.with(|s| s.md_delayed.push(c));
    }

    /// At most `max` messages per second per client, as IB (50): the one over is not
    /// processed and answered with notice 100. `None` (the default) does not count.
    pub fn set_max_messages_per_sec(&self, max: Option<usize>) {
        self.with(|s| s.max_rate = max);
    }

    /// IB loses its connection to TWS while the socket stays up: notice 1100, then nothing
    /// from IB reaches the clients (order statuses, executions, quotes) and requests go
    /// unanswered (TWS still answers a connect) until
    /// [`FakeTws::connectivity_restored`]; orders still fill at IB meanwhile (TWS API message
    /// codes 1100/1101/1102: <https://interactivebrokers.github.io/tws-api/message_codes.html>).
    pub fn connectivity_lost(&self) {
        self.with(|s| {
            s.broadcast(&State::error_msg(
                -1,
                1100,
                "Connectivity between IB and Trader Workstation has been lost.",
            ));
            s.gap = true;
        });
    }

    /// The end of a [`FakeTws::connectivity_lost`] gap: 1101 "restored - data lost" (market
    /// data subscriptions are gone: quotes must be requested again) or 1102 "data maintained".
    /// What happened in the gap is not sent again.
    pub fn connectivity_restored(&self, data_lost: bool) {
        self.with(|s| {
            s.gap = false;
            let (code, text) = if data_lost {
                (1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
            } else {
                (1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
            };
            s.broadcast(&State::error_msg(-1, code, text));
        });
    }

    /// Sends an error/notice frame to every connection (e.g. 1100, 1101, 1102).
    pub fn notice(&self, id: i32, code: i32, text: &str) {
        self.with(|s| s.broadcast(&State::error_msg(id, code, text)));
    }

    /// Closes every client connection (as a gateway restart would).
    pub fn drop_connections(&self) {
        self.with(|s| {
            for c in s.conns.drain(..) {
                for t in c.tasks {
                    t.abort();
                }
            }
        });
    }

    /// Number of live connections that completed StartApi.
    pub fn connections(&self) -> usize {
        lock(&self.state)
            .conns
            .iter()
            .filter(|c| c.client_id.is_some())
            .count()
    }

    /// Every order received so far, in order.
    pub fn placed(&self) -> Vec<PlacedOrder> {
        lock(&self.state).placed.clone()
    }

    /// Every execution reported so far (per leg for combos, plus one for the BAG itself), in
    /// order: (contract, execution).
    pub fn executions(&self) -> Vec<(proto::Contract, proto::Execution)> {
        lock(&self.state)
            .execs
            .iter()
            .map(|e| (e.contract.clone(), e.execution.clone()))
            .collect()
    }

    /// Every accepted order (what-if and rejected ones excluded) by id: its status as the fake
    /// reports it ("Submitted", "PendingCancel", "Filled", "Cancelled"), total and filled
    /// quantity.
    pub fn order_states(&self) -> Vec<(i32, String, f64, f64)> {
        lock(&self.state)
            .orders
            .values()
            .map(|r| (r.placed.order_id, r.status.clone(), r.total, r.filled))
            .collect()
    }

    /// Current positions: (account, contract, quantity, average cost).
    pub fn positions(&self) -> Vec<(String, proto::Contract, f64, f64)> {
        lock(&self.state).positions.clone()
    }

    /// How many messages with this id (offset removed) were received.
    pub fn received(&self, msg_id: i32) -> usize {
        lock(&self.state)
            .received
            .iter()
            .filter(|(_, m)| *m == msg_id)
            .count()
    }

    /// Waits until `pred` holds on the fake's view (`timeout` is an upper bound only).
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&FakeTws) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return pred(self);
            }
        }
    }
}

async fn serve(sock: TcpStream, state: Arc<Mutex<State>>, changed: watch::Sender<u64>) {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let Ok(_range) = wire::read_handshake(&mut rd).await else {
        return;
    };
    let version = lock(&state).cfg.server_version;
    if wire::write_frame(
        &mut wr,
        &wire::handshake_reply(version, "20250113 15:00:00 UTC"),
    )
    .await
    .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(body) = rx.recv().await {
            if wire::write_frame(&mut wr, &body).await.is_err() {
                break;
            }
        }
    });
    let id = {
        let mut st = lock(&state);
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.push(Conn {
            id,
            client_id: None,
            tx,
            positions: false,
            tasks: vec![writer],
        });
        id
    };
    let st2 = state.clone();
    let ch2 = changed.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(frame)) = wire::read_frame(&mut rd).await {
            if let Some((msg_id, payload)) = wire::split_body(&frame) {
                lock(&st2).handle(id, msg_id, payload);
                ch2.send_modify(|v| *v += 1);
            }
        }
        let mut st = lock(&st2);
        if let Some(pos) = st.conns.iter().position(|c| c.id == id) {
            let c = st.conns.remove(pos);
            for t in c.tasks {
                t.abort();
            }
        }
        drop(st);
        ch2.send_modify(|v| *v += 1);
    });
    let mut st = lock(&state);
    match st.conns.iter_mut().find(|c| c.id == id) {
        Some(c) => c.tasks.push(reader),
        None => reader.abort(),
    }
    drop(st);
    changed.send_modify(|v| *v += 1);
}
