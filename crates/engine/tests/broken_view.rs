//! After an assignment one view shows the account's real exposure (issue "On the trader's desk
//! with IB", point 6): the Broken strategy lists what the account holds of it (the assigned leg
//! gone) with the delivered stock inside it at the strike, and its Greeks and payoff count the
//! shares; the stock is no strategy of its own with its own Flatten button.

mod common;
use common::*;
use tradeguard_engine::MemoryJournal;
use tradeguard_engine::PricingStressModel;
use tradeguard_engine::analysis::analyse;
use tradeguard_engine::assignment::{AssignmentConfig, ClosePhase};
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_model::{Broker, Instrument, ManualClock, Right, StrategyState};

#[tokio::test(start_paused = true)]
async fn a_broken_strategy_shows_what_the_account_holds_with_the_delivered_stock_inside() {
    let mut cfg = sim_cfg(7);
    // Tuesday evening: the emergency close waits for the open, the Broken strategy stays.
    cfg.start = tradeguard_sim::calendar::et_time(
        chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(),
        18,
        0,
    );
    cfg.underlyings[0].price = px("438");
    cfg.underlyings[0].vol = 0.001;
    cfg.positions = vec![
        position(opt(Right::Put, 435), 2, "1.00"),
        position(opt(Right::Put, 440), -2, "3.00"),
        position(opt(Right::Call, 460), -2, "1.50"),
        position(opt(Right::Call, 465), 2, "0.50"),
    ];
    let sim = broker(cfg);
    sim.connect().await.unwrap();
    let start = venue(&sim).lock().unwrap().now();
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        sim.clone(),
        start,
        &j,
        "438",
        EnforceConfig::default(),
        Box::new(NoRules),
        AssignmentConfig::default(),
    )
    .await;
    sleep_ms(15_000).await;
    let before = g.strategies();
    assert_eq!(before.len(), 1, "{before:#?}");
    assert!(before[0].name.contains("iron condor"), "{}", before[0].name);

    venue(&sim)
        .lock()
        .unwrap()
        .force_assignment(&opt(Right::Put, 440).id(), 2)
        .unwrap();
    sleep_ms(10_000).await;
    let st = g.assignment_status();
    assert_eq!(st.closes.len(), 1, "{st:#?}");
    assert_eq!(st.closes[0].phase, ClosePhase::Armed);

    let views = g.strategies();
    assert_eq!(
        views.len(),
        1,
        "one strategy, the delivered stock inside it: {:#?}",
        views.iter().map(|v| &v.name).collect::<Vec<_>>()
    );
    let s = &views[0];
    assert_eq!(s.state, StrategyState::Broken);
    let legs: Vec<(String, i64)> = s
        .legs
        .iter()
        .map(|l| (l.instrument.label(), l.qty))
        .collect();
    assert_eq!(
        legs,
        vec![
            ("SPY 21MAR25 435 P".to_owned(), 2),
            ("SPY 21MAR25 460 C".to_owned(), -2),
            ("SPY 21MAR25 465 C".to_owned(), 2),
            ("SPY".to_owned(), 200),
        ],
        "what the account holds, the assigned 440 P gone"
    );
    let stock = s.legs.iter().find(|l| l.instrument == spy()).unwrap();
    assert_eq!(stock.avg_price, px("440"), "delivered at the strike");
    // Net delta: 200 shares, long 435 puts (negative), short calls (small): well above +100.
    assert!(s.greeks.delta > 100.0, "delta {}", s.greeks.delta);
    // P&L counts the shares against the strike at the stock's mark; what was opened is gone,
    // so there is no entry credit to show (not the −88,000 of the shares).
    assert!(s.pnl.is_some(), "{s:#?}");
    assert_eq!(s.entry_credit, None);

    // The payoff is that of the holdings: below 435 the long puts cap the stock's loss, so
    // the curve is flat there; above, it rises with the shares until the short calls.
    let quotes: Vec<_> = g.read_live_book(|b| {
        s.legs
            .iter()
            .filter_map(|l| b.quote(&l.instrument.id()).cloned())
            .collect()
    });
    let model = PricingStressModel::new(std::sync::Arc::new(ManualClock::new(start)));
    let risk = analyse(&model, s, &quotes, start).expect("payoff of the holdings");
    let at = |x: f64| {
        risk.payoff
            .iter()
            .min_by(|a, b| (a.spot - x).abs().total_cmp(&(b.spot - x).abs()))
            .map(|p| p.pnl_expiry)
            .unwrap()
    };
    let (lo, mid) = (at(420.0), at(450.0));
    assert!(
        mid > lo + 1_000.0,
        "rises with the shares: {lo} at 420, {mid} at 450"
    );

    // The instrument list the trader sees holds the stock once, inside the Broken strategy.
    let with_stock = views
        .iter()
        .filter(|v| {
            v.legs
                .iter()
                .any(|l| matches!(l.instrument, Instrument::Stock { .. }))
        })
        .count();
    assert_eq!(with_stock, 1);
}
