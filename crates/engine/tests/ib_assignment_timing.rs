//! The assignment guard under real broker timing, through the Interactive Brokers adapter: the
//! production guard on `IbBroker` (the real `ibapi` client) against the fake TWS on loopback,
//! which reports an assignment the way IB does — a position message per contract, no
//! execution — with the option's and the stock's messages in one burst or 1 ms, 300 ms, 1 s
//! and 5 s apart, in both orders, or only in the position list at the next connect after the
//! gateway's daily restart (issues "The assignment guard under real broker timing", "Real
//! TWS" row 10):
//!
//! 1. a 2-lot put credit spread with one short put assigned: the remaining short bought back,
//!    the delivered shares and the protection sold (the protection only after both), nothing
//!    else placed, the close complete only once the account is flat;
//! 2. a covered call assigned (shares called away): nothing placed;
//! 3. a cash-secured put assigned: the shares kept, nothing placed.

mod common;
use common::{guard_on_ib, ib_broker, ib_quote as quote};
use std::time::Duration;
use tradeguard_engine::Severity;
use tradeguard_engine::assignment::ClosePhase;
use tradeguard_engine::enforce::{EnforceConfig, Guard, NoRules};
use tradeguard_ibkr::fake_tws::{FakeTws, proto};

const ACCOUNT: &str = "DU-TEST";
const T: Duration = Duration::from_secs(30);

fn spy() -> proto::Contract {
    FakeTws::stock(1, "SPY")
}
fn p440() -> proto::Contract {
    FakeTws::option(41, "SPY", "20301220", "P", 440.0)
}
fn p435() -> proto::Contract {
    FakeTws::option(42, "SPY", "20301220", "P", 435.0)
}
fn c445() -> proto::Contract {
    FakeTws::option(43, "SPY", "20301220", "C", 445.0)
}

fn key(c: &proto::Contract) -> String {
    format!(
        "{} {} {}",
        c.sec_type.as_deref().unwrap_or(""),
        c.right.as_deref().unwrap_or(""),
        c.strike.unwrap_or(0.0)
    )
}

#[derive(Debug, Clone, Copy)]
enum Delivery {
    Batch,
    OptionFirst(u64),
    StockFirst(u64),
    /// Overnight, while the gateway is down for its daily restart: nobody hears the change;
    /// the guard first sees it in the position list when the adapter connects again (issue
    /// "Real TWS", row 10).
    AtConnect,
}

struct Rig {
    f: FakeTws,
    g: Guard,
}

/// The fake TWS holding `book` (contract, qty, IB avg cost, mid) and the production guard on
/// it through `IbBroker`, its live book filled.
async fn rig(book: &[(proto::Contract, f64, f64, f64)]) -> Rig {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    f.add_contract(spy());
    f.set_quote(spy(), quote(450.0));
    for (c, qty, avg, mid) in book {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(*mid));
        f.set_position(ACCOUNT, c.clone(), *qty, *avg);
    }
    let g = guard_on_ib(
        ib_broker(f.port(), 7, ACCOUNT),
        &[("SPY", "450")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await;
    let deadline = tokio::time::Instant::now() + T;
    while g.positions().len() < book.len() || g.strategies().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "positions never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The strategy book pushes its strategies to the assignment guard once a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    Rig { f, g }
}

impl Rig {
    /// IB's overnight assignment: the option's and the stock's position messages, no
    /// execution, in the given order and gap.
    async fn assign(&self, option: (proto::Contract, f64), stock: (f64, f64), d: Delivery) {
        let opt = || {
            self.f
                .set_position(ACCOUNT, option.0.clone(), option.1, 0.0)
        };
        let stk = || self.f.set_position(ACCOUNT, spy(), stock.0, stock.1);
        match d {
            Delivery::Batch => {
                opt();
                stk();
            }
            Delivery::AtConnect => {
                self.f.set_down(true);
                tokio::time::sleep(Duration::from_millis(300)).await;
                opt();
                stk();
                tokio::time::sleep(Duration::from_millis(300)).await;
                self.f.set_down(false);
            }
            Delivery::OptionFirst(ms) => {
                opt();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                stk();
            }
            Delivery::StockFirst(ms) => {
                stk();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                opt();
            }
        }
    }

    /// Plays the exchange: every working order filled in full at its mid, until `done`.
    async fn fill_until(&self, mids: &[(proto::Contract, f64)], done: impl Fn(&Rig) -> bool) {
        let deadline = tokio::time::Instant::now() + T;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not done: positions {:?}\norders {:?}\n{:#?}",
                self.held(),
                self.f.order_states(),
                self.g.assignment_status()
            );
            let placed = self.f.placed();
            for (id, status, total, filled) in self.f.order_states() {
                if matches!(status.as_str(), "Filled" | "Cancelled" | "PendingCancel") {
                    continue;
                }
                let c = placed
                    .iter()
                    .find(|p| p.order_id == id)
                    .map(|p| &p.contract);
                let mid = c
                    .and_then(|c| mids.iter().find(|m| key(&m.0) == key(c)))
                    .map_or(1.0, |m| m.1);
                self.f.fill(id, total - filled, mid);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn held(&self) -> Vec<(String, f64)> {
        self.f
            .positions()
            .iter()
            .filter(|p| p.2 != 0.0)
            .map(|p| (key(&p.1), p.2))
            .collect()
    }

    /// Orders placed (not what-if): (instrument key, action, quantity), in placement order.
    fn placed(&self) -> Vec<(String, String, f64)> {
        self.f
            .placed()
            .iter()
            .filter(|p| p.order.what_if != Some(true))
            .map(|p| {
                (
                    key(&p.contract),
                    p.order.action.clone().unwrap_or_default(),
                    p.order
                        .total_quantity
                        .as_deref()
                        .unwrap_or("0")
                        .parse()
                        .unwrap(),
                )
            })
            .collect()
    }

    fn alerts(&self) -> String {
        let st = self.g.assignment_status();
        format!("{:#?}", st.records)
    }
}

async fn spread(d: Delivery) {
    let book = [(p440(), -2.0, 300.0, 3.0), (p435(), 2.0, 150.0, 1.5)];
    let r = rig(&book).await;
    r.assign((p440(), -1.0), (100.0, 440.0), d).await;
    let mids = [(p440(), 3.0), (p435(), 1.5), (spy(), 450.0)];
    r.fill_until(&mids, |r| {
        r.held().is_empty()
            && r.g
                .assignment_status()
                .closes
                .iter()
                .any(|c| c.phase == ClosePhase::Completed)
    })
    .await;
    let placed = r.placed();
    let why = format!("{d:?} {placed:?} {}", r.alerts());
    let of = |k: &str, action: &str| -> f64 {
        placed
            .iter()
            .filter(|p| p.0 == k && p.1 == action)
            .map(|p| p.2)
            .sum()
    };
    assert_eq!(of(&key(&p440()), "BUY"), 1.0, "{why}");
    assert_eq!(of(&key(&spy()), "SELL"), 100.0, "{why}");
    assert_eq!(of(&key(&p435()), "SELL"), 2.0, "{why}");
    assert_eq!(placed.len(), 3, "nothing else placed: {why}");
    // The protection goes out last: placed only after the short and the stock filled.
    assert_eq!(placed[2].0, key(&p435()), "{why}");
    let st = r.g.assignment_status();
    assert_eq!(st.records.len(), 1, "{why}");
    assert_eq!(st.closes.len(), 1, "{why}");
    r.g.shutdown().await;
}

/// Waits until the assignment guard recorded the assignment, and a little more: the time
/// anything the guard would send goes out.
async fn recorded(r: &Rig) {
    let deadline = tokio::time::Instant::now() + T;
    while r.g.assignment_status().records.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded: {:?}",
            r.held()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

async fn covered_call(d: Delivery) {
    let book = [(spy(), 100.0, 440.0, 450.0), (c445(), -1.0, 200.0, 6.0)];
    let r = rig(&book).await;
    r.assign((c445(), 0.0), (0.0, 0.0), d).await;
    recorded(&r).await;
    let why = format!("{d:?} {}", r.alerts());
    assert!(r.placed().is_empty(), "no order: {:?} {why}", r.placed());
    let st = r.g.assignment_status();
    assert!(st.closes.is_empty(), "{why}");
    assert!(st.banners.iter().all(|b| b.severity != Severity::Critical));
    r.g.shutdown().await;
}

async fn cash_secured_put(d: Delivery) {
    let book = [(p440(), -1.0, 300.0, 3.0)];
    let r = rig(&book).await;
    r.assign((p440(), 0.0), (100.0, 440.0), d).await;
    recorded(&r).await;
    let why = format!("{d:?} {}", r.alerts());
    assert!(r.placed().is_empty(), "no order: {:?} {why}", r.placed());
    assert_eq!(r.held(), vec![(key(&spy()), 100.0)], "{why}");
    assert!(r.g.assignment_status().closes.is_empty(), "{why}");
    r.g.shutdown().await;
}

macro_rules! deliveries {
    ($case:ident: $($name:ident => $d:expr),* $(,)?) => {
        mod $case {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$case($d).await;
                }
            )*
        }
    };
}

macro_rules! every_delivery {
    ($($case:ident),*) => {
        $(
            deliveries!($case:
                batch => Delivery::Batch,
                option_first_1ms => Delivery::OptionFirst(1),
                option_first_300ms => Delivery::OptionFirst(300),
                option_first_1s => Delivery::OptionFirst(1_000),
                option_first_5s => Delivery::OptionFirst(5_000),
                stock_first_1ms => Delivery::StockFirst(1),
                stock_first_300ms => Delivery::StockFirst(300),
                stock_first_1s => Delivery::StockFirst(1_000),
                stock_first_5s => Delivery::StockFirst(5_000),
                at_connect_after_a_restart => Delivery::AtConnect,
            );
        )*
    };
}

every_delivery!(spread, covered_call, cash_secured_put);
