//! Futures on the simulated venue (issue "ProjectX venue and futures"): the futures demo
//! (5 MNQ long, 2 MES short on a $50 000 account) quoted one tick wide at the products' ticks,
//! and seed 002's max-contracts auto-flatten on it: `max_contracts = 2` reduces the MNQ to 2
//! and the MES is left alone; net liquidation is cash plus the futures' open P&L, not their
//! notional.

mod common;
use common::{guard_on_sim, qty_at_broker};
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::MemoryJournal;
use tradeguard_engine::assignment::AssignmentConfig;
use tradeguard_engine::enforce::EnforceConfig;
use tradeguard_model::{Broker, Instrument, Money, Price};
use tradeguard_sim::{Scenario, SimBroker, Speed};

fn fut(root: &str, multiplier: u32) -> Instrument {
    Instrument::Future {
        symbol: root.into(),
        expiry: chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap(),
        multiplier,
    }
}

#[tokio::test(start_paused = true)]
async fn the_futures_demo_is_reduced_to_max_contracts_and_valued_by_open_pnl() {
    let s = Scenario::futures_demo(3);
    let start = s.config.start;
    let b = Arc::new(SimBroker::new(s.venue().unwrap(), Speed::RealTime));
    b.connect().await.unwrap();
    let acct = b.account().await.unwrap();
    // 50 000 cash; 5 MNQ from 20 990 at 21 000 (+100), 2 MES short from 5 810 at 5 800 (+100).
    let nlv = acct.net_liquidation.to_f64();
    assert!(
        (49_000.0..51_000.0).contains(&nlv),
        "open P&L, not notional: {nlv}"
    );
    let rules = common::rules_file(
        "dry_run = false\n[[max_contracts]]\nid = \"max-2\"\naction = \"flatten\"\nmax_contracts = 2\n",
    );
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        b.clone(),
        start,
        &j,
        "575",
        EnforceConfig::default(),
        rules,
        AssignmentConfig::default(),
    )
    .await;
    let mnq = fut("MNQ", 2);
    for _ in 0..600 {
        if qty_at_broker(&b, &mnq).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(qty_at_broker(&b, &mnq).await, 2, "reduced to the limit");
    assert_eq!(
        qty_at_broker(&b, &fut("MES", 5)).await,
        -2,
        "within the limit: untouched"
    );
    let execs = common::executions(&b).await;
    assert_eq!(execs.len(), 1, "one fill: {execs:?}");
    let tick = Price::parse("0.25").unwrap();
    assert!(
        execs[0].price.is_on_tick(tick),
        "filled on the MNQ tick: {}",
        execs[0].price
    );
    let after = b.account().await.unwrap().net_liquidation;
    assert!(
        (after.to_f64() - nlv).abs() < 1_000.0,
        "selling 3 MNQ moves only realised P&L: {nlv} → {after}"
    );
    assert!(after > Money::ZERO);
    g.shutdown().await;
}

/// A held future on or past its roll date is said once (Warning `futures.roll`), nothing sent;
/// one before its roll date is not.
#[tokio::test(start_paused = true)]
async fn a_future_held_past_its_roll_date_is_said_once_and_nothing_is_sent() {
    let mut s = Scenario::futures_demo(5);
    // The demo holds the March 2025 contracts (roll Thursday 13 March); start the day after.
    let fri = chrono::NaiveDate::from_ymd_opt(2025, 3, 14).unwrap();
    s.config.start = tradeguard_sim::calendar::et_time(fri, 10, 0);
    let (b, j, g) = without_rules(s).await;
    // Alerts are journaled: read from there, none is missed however early it came.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let rolls = roll_alerts(&j);
    assert_eq!(rolls.len(), 2, "MNQ and MES, once each: {rolls:?}");
    assert!(
        rolls
            .iter()
            .any(|a| a.message.contains("+5 MNQ 20250321 FUT")
                && a.message.contains("2025-03-13")
                && a.message.contains("expires 2025-03-21")),
        "{rolls:?}"
    );
    assert!(common::executions(&b).await.is_empty(), "nothing sent");
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_future_before_its_roll_date_is_not_said() {
    let (_b, j, g) = without_rules(Scenario::futures_demo(5)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!g.positions().is_empty(), "the book was read");
    assert!(g.status().await.evaluations > 0, "the enforcer ran");
    assert!(roll_alerts(&j).is_empty());
    g.shutdown().await;
}

/// The scenario's venue and the guard on it, without rules.
async fn without_rules(
    s: Scenario,
) -> (
    Arc<SimBroker>,
    MemoryJournal,
    tradeguard_engine::enforce::Guard,
) {
    let start = s.config.start;
    let b = Arc::new(SimBroker::new(s.venue().unwrap(), Speed::RealTime));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        b.clone(),
        start,
        &j,
        "575",
        EnforceConfig::default(),
        Box::new(tradeguard_engine::enforce::NoRules),
        AssignmentConfig::default(),
    )
    .await;
    (b, j, g)
}

fn roll_alerts(j: &MemoryJournal) -> Vec<tradeguard_engine::Alert> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            tradeguard_engine::JournalRecord::Alert(a) if a.code == "futures.roll" => Some(a),
            _ => None,
        })
        .collect()
}
