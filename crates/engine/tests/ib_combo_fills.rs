//! Native combo (BAG) orders through the Interactive Brokers adapter when the legs do not fill
//! together (issue "Real TWS", row 8). IB reports each leg as an execution of its own; unless
//! the combo is guaranteed, legs fill separately: staggered, out of order, one side first, and
//! the order can end (cancelled) with one side filled. The engine must count every leg's fill
//! as it comes and undo exactly what filled, including a leg whose report arrives after the
//! order's end.

mod common;
use common::{ib_broker, ib_quote, px, sleep_ms};
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::{
    EngineConfig, EngineDeps, ExecutionCoordinator, GroupPhase, IntrinsicStressModel, LegState,
    MemoryJournal, OrderIntent, Purpose,
};
use tradeguard_ibkr::fake_tws::{FakeTws, proto};
use tradeguard_model::{Broker, Instrument, OrderType, Right, Side, SystemClock, stubs};

const ACCOUNT: &str = "DU-TEST";
const T: Duration = Duration::from_secs(20);

/// The condor's legs as the fake lists them: (contract, strike, right, mid).
fn legs() -> Vec<(proto::Contract, i64, Right, f64)> {
    vec![
        (
            FakeTws::option(41, "SPY", "20301220", "P", 490.0),
            490,
            Right::Put,
            2.0,
        ),
        (
            FakeTws::option(42, "SPY", "20301220", "P", 480.0),
            480,
            Right::Put,
            1.0,
        ),
        (
            FakeTws::option(43, "SPY", "20301220", "C", 510.0),
            510,
            Right::Call,
            2.0,
        ),
        (
            FakeTws::option(44, "SPY", "20301220", "C", 520.0),
            520,
            Right::Call,
            1.0,
        ),
    ]
}

fn opt(right: Right, strike: i64) -> Instrument {
    Instrument::Option(tradeguard_model::OptionContract::equity(
        "SPY",
        chrono::NaiveDate::from_ymd_opt(2030, 12, 20).unwrap(),
        right,
        tradeguard_model::Price::from_units(strike).unwrap(),
    ))
}

/// An iron condor ×2 opened as one native combo (sell the 490 P and 510 C, buy the wings).
fn condor() -> OrderIntent {
    let limit = OrderType::Limit { limit: px("2.00") };
    OrderIntent::new(Purpose::Open, stubs::account())
        .leg(opt(Right::Put, 490), Side::Sell, 2, limit)
        .leg(opt(Right::Put, 480), Side::Buy, 2, limit)
        .leg(opt(Right::Call, 510), Side::Sell, 2, limit)
        .leg(opt(Right::Call, 520), Side::Buy, 2, limit)
}

struct Rig {
    f: FakeTws,
    c: ExecutionCoordinator,
    j: MemoryJournal,
}

async fn rig() -> Rig {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    f.add_contract(FakeTws::stock(1, "SPY"));
    f.set_quote(FakeTws::stock(1, "SPY"), ib_quote(500.0));
    for (c, _, _, mid) in legs() {
        f.add_contract(c.clone());
        f.set_quote(c, ib_quote(mid));
    }
    for (tag, v) in [
        ("NetLiquidation", "1000000"),
        ("MaintMarginReq", "0"),
        ("InitMarginReq", "0"),
        ("ExcessLiquidity", "1000000"),
        ("BuyingPower", "4000000"),
    ] {
        f.set_account_value(tag, v);
    }
    let b = ib_broker(f.port(), 7, ACCOUNT);
    b.connect().await.expect("connects to the fake TWS");
    let j = MemoryJournal::new();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("500"));
    let c = ExecutionCoordinator::start(EngineDeps {
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(SystemClock),
        risk: Box::new(risk),
        config: EngineConfig {
            prefer_native_combos: true,
            watch_symbols: vec!["SPY".into()],
            ..EngineConfig::default()
        },
    })
    .await
    .unwrap();
    Rig { f, c, j }
}

/// The position of the condor leg `strike` among the combo's legs as sent (the engine orders
/// them as it plans, not as the intent lists them).
fn bag_leg(f: &FakeTws, id: i32, strike: i64) -> usize {
    let con_id = legs()
        .iter()
        .find(|l| l.1 == strike)
        .and_then(|l| l.0.con_id)
        .unwrap();
    f.placed()
        .iter()
        .find(|p| p.order_id == id)
        .and_then(|p| {
            p.contract
                .combo_legs
                .iter()
                .position(|l| l.con_id == Some(con_id))
        })
        .expect("the leg is in the combo")
}

/// The one combo order at the fake, once it is there.
async fn combo_id(f: &FakeTws) -> i32 {
    assert!(
        f.wait_for(T, |f| f.placed().iter().any(|p| p
            .contract
            .sec_type
            .as_deref()
            == Some("BAG")))
            .await,
        "the combo reaches the gateway"
    );
    f.placed()
        .iter()
        .find(|p| p.contract.sec_type.as_deref() == Some("BAG"))
        .map(|p| p.order_id)
        .unwrap()
}

/// The account's quantity of each condor leg at the fake.
fn held(f: &FakeTws) -> Vec<f64> {
    legs()
        .iter()
        .map(|(c, ..)| {
            f.positions()
                .iter()
                .filter(|(a, p, ..)| a == ACCOUNT && p.con_id == c.con_id)
                .map(|p| p.2)
                .sum()
        })
        .collect()
}

async fn group(c: &ExecutionCoordinator) -> tradeguard_engine::Group {
    c.snapshot()
        .await
        .unwrap()
        .groups
        .into_iter()
        .next()
        .expect("one group")
}

async fn until_phase(
    c: &ExecutionCoordinator,
    done: impl Fn(GroupPhase) -> bool,
) -> tradeguard_engine::Group {
    let end = tokio::time::Instant::now() + T;
    loop {
        let g = group(c).await;
        if done(g.phase) || tokio::time::Instant::now() > end {
            return g;
        }
        sleep_ms(50).await;
    }
}

/// Legs reported one at a time, out of order, a leg in two parts: every fill counts once, the
/// group completes when the last leg is in, and nothing else is sent.
#[tokio::test]
async fn combo_legs_filled_staggered_and_out_of_order_complete_the_group_once() {
    let r = rig().await;
    r.c.submit(condor()).await.unwrap();
    let id = combo_id(&r.f).await;
    // The short call first (naked until its wing is in), the put wing in two parts, the
    // call wing, each longer apart than the hedge's debounce; the short put last.
    for (strike, qty, price) in [
        (510, 2.0, 2.0),
        (480, 1.0, 1.0),
        (520, 2.0, 1.0),
        (480, 1.0, 1.0),
    ] {
        assert!(r.f.fill_combo_leg(id, bag_leg(&r.f, id, strike), qty, price));
        sleep_ms(700).await;
        assert_ne!(
            group(&r.c).await.phase,
            GroupPhase::Completed,
            "490 P not in yet"
        );
    }
    assert!(r.f.fill_combo_leg(id, bag_leg(&r.f, id, 490), 2.0, 2.0));
    let g = until_phase(&r.c, |p| p == GroupPhase::Completed).await;
    assert_eq!(g.phase, GroupPhase::Completed, "{g:#?}");
    assert!(
        g.legs
            .iter()
            .all(|l| l.state == LegState::Filled && l.filled() == 2),
        "{g:#?}"
    );
    sleep_ms(500).await;
    let audits: Vec<String> = common::audits(&r.j)
        .into_iter()
        .map(|a| format!("{} {}", a.code, a.reason))
        .collect();
    assert_eq!(
        r.f.placed().len(),
        1,
        "one order, nothing else: {audits:#?}"
    );
    assert!(
        !common::alerts(&r.j)
            .iter()
            .any(|a| a.code.starts_with("exposure.")),
        "a combo's legs filling one by one is not a naked exposure: {:#?}",
        common::alerts(&r.j)
    );
    assert_eq!(held(&r.f), vec![-2.0, 2.0, -2.0, 2.0]);
}

/// One side first, then the combo ends (cancelled at the gateway) with the put side filled and
/// the call side not; the put side's last report arrives after the Cancelled (its commission
/// late). The engine undoes exactly what filled, the late leg included, and never touches the
/// call side: the account ends flat.
#[tokio::test]
async fn a_combo_cancelled_after_one_side_filled_is_undone_exactly_late_legs_included() {
    let r = rig().await;
    r.c.submit(condor()).await.unwrap();
    let id = combo_id(&r.f).await;
    assert!(r.f.fill_combo_leg(id, bag_leg(&r.f, id, 480), 2.0, 1.0));
    sleep_ms(200).await;
    r.f.hold_commissions(true);
    assert!(r.f.fill_combo_leg(id, bag_leg(&r.f, id, 490), 2.0, 2.0));
    assert!(r.f.cancel_at_gateway(id));
    // The 490 P's execution waits for its commission (2 s) and reaches the engine after the
    // Cancelled. Every unwinding order fills at once.
    let end = tokio::time::Instant::now() + T;
    let mut filled = std::collections::BTreeSet::new();
    while tokio::time::Instant::now() < end {
        for p in r.f.placed() {
            if p.order_id != id && p.order.what_if != Some(true) && !filled.contains(&p.order_id) {
                let qty: f64 = p
                    .order
                    .total_quantity
                    .as_deref()
                    .unwrap_or("0")
                    .parse()
                    .unwrap();
                if r.f.fill(p.order_id, qty, 1.5) {
                    filled.insert(p.order_id);
                }
            }
        }
        if held(&r.f) == vec![0.0; 4]
            && group(&r.c).await.phase == GroupPhase::RolledBack
            && filled.len() >= 2
        {
            break;
        }
        sleep_ms(100).await;
    }
    sleep_ms(1_000).await;
    let g = group(&r.c).await;
    let said: Vec<String> = common::alerts(&r.j)
        .into_iter()
        .map(|a| format!("{} {}", a.code, a.message))
        .collect();
    assert_eq!(held(&r.f), vec![0.0; 4], "flat: {:?} {said:#?}", g.phase);
    assert_eq!(g.phase, GroupPhase::RolledBack, "{said:#?}");
    assert!(
        said.iter()
            .any(|a| a.starts_with("group.late_fill") && a.contains("sold 2")),
        "the late fill is said: {said:#?}"
    );
    assert!(
        !said.iter().any(|a| a.starts_with("exposure.")),
        "the guard's own late fill is not someone else's naked short: {said:#?}"
    );
    // Nothing was ever sent for the call side.
    for p in r.f.placed().iter().filter(|p| p.order_id != id) {
        assert_eq!(p.contract.right.as_deref(), Some("P"), "{p:#?}");
    }
}
