//! Seed 002's max-contracts auto-flatten for futures, on ProjectX: the production guard on
//! `ProjectxBroker` against the fake ProjectX (issue "ProjectX venue and futures"). An MNQ
//! position of 5 with `max_contracts = 2`:
//!
//! 1. live: reduced to 2 by one market order selling 3, nothing else sent;
//! 2. dry-run: reported (audited, counted), nothing sent;
//! 3. the firm's flatten (orders without our tag) is recognised, not fought: nothing sent
//!    back;
//! 4. the trailing maximum loss: an open loss that takes net liquidation (balance + open P&L
//!    at the live quote) to the floor flattens the account.

use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::AlwaysOpen;
use tradeguard_engine::enforce::{EnforceConfig, Guard, NoRules, RiskRules, RuleEvaluator};
use tradeguard_engine::{ExecError, OrderIntent, Purpose, TradingState};
use tradeguard_model::{AccountId, Instrument, OrderType, Side, SystemClock};
use tradeguard_projectx::fake::{FakeProjectx, FakeProjectxConfig};
use tradeguard_projectx::{ApiKey, Hosts, ProjectxBroker, ProjectxSettings};

const T: Duration = Duration::from_secs(30);
const MNQ: &str = "CON.F.US.MNQ.Z26";

async fn rig(evaluator: Box<dyn RuleEvaluator>) -> (FakeProjectx, Guard) {
    let f = FakeProjectx::start(FakeProjectxConfig {
        ping: Duration::from_millis(500),
        ..FakeProjectxConfig::default()
    })
    .await
    .unwrap();
    f.set_quote(MNQ, 21_000.0, 21_000.25);
    f.set_position(MNQ, 5, 20_990.0);
    let c = f.config().clone();
    let mut s = ProjectxSettings::new(
        Hosts::custom(&f.url(), &f.url()),
        &c.user,
        ApiKey::new(c.api_key),
        &c.account,
    );
    s.poll = Duration::from_millis(500);
    let b = Arc::new(ProjectxBroker::new(s, Arc::new(SystemClock)).unwrap());
    let g = tradeguard_engine::stubs::production_guard(
        b,
        Arc::new(SystemClock),
        Arc::new(AlwaysOpen),
        &[],
        EnforceConfig::default(),
        evaluator,
    )
    .await
    .expect("the guard starts on ProjectX");
    let deadline = tokio::time::Instant::now() + T;
    while g.positions().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "positions never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (f, g)
}

fn rules(dry_run: bool) -> Box<dyn RuleEvaluator> {
    rules_file(&format!(
        "dry_run = {dry_run}\n[[max_contracts]]\nid = \"mnq-2\"\naction = \"flatten\"\nmax_contracts = 2\n"
    ))
}

fn rules_file(text: &str) -> Box<dyn RuleEvaluator> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, text).unwrap();
    let r = RiskRules::load(&path, Arc::new(AlwaysOpen)).unwrap();
    // The file is read; the directory may go.
    std::mem::forget(dir);
    Box::new(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mnq_position_of_5_with_max_2_is_reduced_to_2_by_one_order() {
    let (f, g) = rig(rules(false)).await;
    let deadline = tokio::time::Instant::now() + T;
    while f.positions().get(MNQ) != Some(&2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reduced: {:?} orders {:?}",
            f.positions(),
            f.orders()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let orders = f.orders();
    assert_eq!(orders.len(), 1, "one order: {orders:?}");
    assert_eq!(
        (orders[0].side, orders[0].size, orders[0].order_type),
        (1, 3, 2),
        "sell 3 at market"
    );
    assert!(
        orders[0]
            .custom_tag
            .as_deref()
            .is_some_and(|t| t.starts_with("tg-"))
    );
    assert_eq!(f.positions().get(MNQ), Some(&2));
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_the_breach_is_reported_and_nothing_is_sent() {
    let (f, g) = rig(rules(true)).await;
    let deadline = tokio::time::Instant::now() + T;
    while g.status().await.dry_run_decisions == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dry-run decision"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        f.orders().is_empty(),
        "dry-run sends nothing: {:?}",
        f.orders()
    );
    assert_eq!(f.positions().get(MNQ), Some(&5));
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firms_flatten_is_recognised_not_fought() {
    let (f, g) = rig(Box::new(NoRules)).await;
    f.firm_flatten();
    let deadline = tokio::time::Instant::now() + T;
    while !g.positions().iter().all(|p| p.qty == 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guard never saw the flatten: {:?}",
            g.positions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ours: Vec<_> = f
        .orders()
        .into_iter()
        .filter(|o| o.custom_tag.is_some())
        .collect();
    assert!(ours.is_empty(), "nothing sent back: {ours:?}");
    assert!(f.positions().is_empty());
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trailing_maximum_loss_flattens_the_account_on_an_open_loss() {
    let (f, g) = rig(rules_file(
        "dry_run = false\n[[trailing_max_loss]]\nid = \"mll\"\naction = \"flatten\"\nmax_loss = 2000\nstop_at = 50000\n",
    ))
    .await;
    // The guard subscribes the position's quotes; the balance is 50,000 and 5 MNQ are held
    // from 20,990 (+10 points: +100).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.positions().get(MNQ), Some(&5), "above the floor: nothing");
    // 290 points under the entry: 5 × 2 × 290 = 2,900 open loss, net liquidation 47,100.
    f.set_quote(MNQ, 20_700.0, 20_700.25);
    let deadline = tokio::time::Instant::now() + T;
    while !f.positions().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not flattened: {:?} orders {:?}",
            f.positions(),
            f.orders()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let orders = f.orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(
        (orders[0].side, orders[0].size),
        (1, 5),
        "sell the 5 at market"
    );
    // The account is locked in the guard: opening orders are refused, and it says why.
    let t = g.status().await.trading;
    assert_eq!(t.state, TradingState::Reducing, "{t:?}");
    assert!(
        t.why.contains("mll") && t.why.contains("floor"),
        "{}",
        t.why
    );
    let open = OrderIntent::new(Purpose::Open, AccountId::new(&f.config().account)).leg(
        mnq(),
        Side::Buy,
        1,
        OrderType::Market,
    );
    match g.coordinator().submit(open.clone()).await {
        Err(ExecError::Refused(r)) => assert_eq!(r.code(), "gate.not_reducing"),
        other => panic!("an opening order passed the lock: {other:?}"),
    }
    assert_eq!(f.orders().len(), 1, "nothing more sent");
    // A person unlocks: opening orders pass the lock again.
    assert!(g.unlock_trading("the test").await.unwrap());
    assert_eq!(g.status().await.trading.state, TradingState::Active);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_the_trailing_maximum_loss_neither_flattens_nor_locks() {
    let (f, g) = rig(rules_file(
        "dry_run = true\n[[trailing_max_loss]]\nid = \"mll\"\naction = \"flatten\"\nmax_loss = 2000\nstop_at = 50000\n",
    ))
    .await;
    f.set_quote(MNQ, 20_700.0, 20_700.25);
    let deadline = tokio::time::Instant::now() + T;
    while g.status().await.dry_run_decisions == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(g.status().await.trading.state, TradingState::Active);
    assert!(f.orders().is_empty());
    assert_eq!(f.positions().get(MNQ), Some(&5));
    g.shutdown().await;
}

fn mnq() -> Instrument {
    tradeguard_projectx::convert::instrument(MNQ, None).unwrap()
}
