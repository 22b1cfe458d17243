//! The production guard on Tradier: `TradierBroker` against the fake Tradier over HTTP and
//! WebSockets (issue "Tradier venue"). Seed 000's reference iron condor (SPY 435/440/460/465
//! puts and calls ×2):
//!
//! 1. the short put is assigned the way Tradier shows it, a change of the positions with no
//!    order and no stream event: the guard detects it from the poll, buys back the short call,
//!    sells the delivered shares, and sells the protection only after; the account ends flat;
//! 2. a confirmed flatten of the four-leg strategy ends flat, the shorts bought back before the
//!    last long is sold.

mod common;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{AlwaysOpen, ClosePhase};
use tradeguard_engine::enforce::{EnforceConfig, FlattenScope, Guard, NoRules};
use tradeguard_model::SystemClock;
use tradeguard_tradier::fake::{FakeOrderView, FakeTradier, FakeTradierConfig, FillMode};
use tradeguard_tradier::{Token, TradierBroker, TradierSettings};

const T: Duration = Duration::from_secs(40);
const P435: &str = "SPY301220P00435000";
const P440: &str = "SPY301220P00440000";
const C460: &str = "SPY301220C00460000";
const C465: &str = "SPY301220C00465000";

struct Rig {
    f: FakeTradier,
    g: Guard,
}

async fn rig() -> Rig {
    let f = FakeTradier::start(FakeTradierConfig {
        fill: FillMode::Manual,
        ..FakeTradierConfig::default()
    })
    .await
    .unwrap();
    for (s, b, a, qty, cost) in [
        (P435, 1.4, 1.6, 2, 300.0),
        (P440, 2.9, 3.1, -2, -600.0),
        (C460, 2.4, 2.6, -2, -500.0),
        (C465, 1.1, 1.3, 2, 240.0),
    ] {
        f.set_quote(s, b, a);
        f.set_position(s, qty, cost);
    }
    f.set_quote("SPY", 449.95, 450.05);
    let mut s = TradierSettings::at(f.api_url(), f.account(), Token::new(f.token()));
    s.poll = Duration::from_millis(500);
    let b = Arc::new(TradierBroker::new(s, Arc::new(SystemClock)).unwrap());
    let g = tradeguard_engine::stubs::production_guard(
        b,
        Arc::new(SystemClock),
        Arc::new(AlwaysOpen),
        &[("SPY", "450")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await
    .expect("the guard starts on Tradier");
    let deadline = tokio::time::Instant::now() + T;
    while g.positions().len() < 4 || g.strategies().is_empty() {
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
    /// Plays the exchange: every working order filled at the quotes, until `done`.
    async fn fill_until(&self, done: impl Fn(&Rig) -> bool) {
        let deadline = tokio::time::Instant::now() + T;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not done: positions {:?}\norders {:#?}\n{:#?}",
                self.f.positions(),
                self.f.orders(),
                self.g.assignment_status()
            );
            for o in self.f.orders() {
                if matches!(o.status.as_str(), "open" | "partially_filled" | "pending") {
                    self.f.fill(o.id, 1_000_000, None);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (symbol, side word, quantity) of every part of every order, in placement order.
    fn placed(&self) -> Vec<(String, String, i64)> {
        let mut orders: Vec<FakeOrderView> = self.f.orders();
        orders.sort_by_key(|o| o.seq);
        orders
            .into_iter()
            .flat_map(|o| o.parts.into_iter().map(|p| (p.0, p.1, p.2)))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000s_condor_assigned_on_tradier_is_closed_in_the_safe_order() {
    let r = rig().await;
    // Both short puts assigned overnight: 200 shares delivered at 440, no order, no event.
    r.f.assign(P440, 2, "SPY", 200, 440.0);
    r.fill_until(|r| {
        r.f.positions().is_empty()
            && r.g
                .assignment_status()
                .closes
                .iter()
                .any(|c| c.phase == ClosePhase::Completed)
    })
    .await;
    let placed = r.placed();
    let why = format!("{placed:?}\n{:#?}", r.g.assignment_status().records);
    let at = |sym: &str, side: &str| placed.iter().position(|p| p.0 == sym && p.1 == side);
    let short_call = at(C460, "buy_to_close").expect("the short call bought back");
    let shares = at("SPY", "sell").expect("the shares sold");
    let put = at(P435, "sell_to_close").expect("the put protection sold");
    let call = at(C465, "sell_to_close").expect("the call protection sold");
    assert!(short_call < put && short_call < call, "shorts first: {why}");
    assert!(
        shares < put.max(call),
        "the stock before the last protection: {why}"
    );
    let sold_shares: i64 = placed.iter().filter(|p| p.0 == "SPY").map(|p| p.2).sum();
    assert_eq!(sold_shares, 200, "{why}");
    assert!(
        placed
            .iter()
            .all(|p| p.1.ends_with("_to_close") || p.0 == "SPY"),
        "nothing opened: {why}"
    );
    r.g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_flatten_of_the_four_leg_strategy_ends_flat() {
    let r = rig().await;
    let s = r.g.strategies().into_iter().next().unwrap();
    let p =
        r.g.preview_flatten(FlattenScope::Strategy { strategy: s.id })
            .await
            .unwrap();
    r.g.confirm_flatten(&p.id).await.unwrap();
    r.fill_until(|r| r.f.positions().is_empty()).await;
    let placed = r.placed();
    let last_short = placed
        .iter()
        .rposition(|p| p.1 == "buy_to_close")
        .expect("shorts bought back");
    let last_long = placed
        .iter()
        .rposition(|p| p.1 == "sell_to_close")
        .expect("longs sold");
    assert!(last_short < last_long, "{placed:?}");
    assert!(
        placed.iter().all(|p| p.1.ends_with("_to_close")),
        "{placed:?}"
    );
    r.g.shutdown().await;
}
