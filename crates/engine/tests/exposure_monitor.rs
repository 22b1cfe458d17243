//! The interim exposure monitor while a group legs in: the venue confirms the protective leg
//! (order status Filled) but its execution report lags (IB's execDetails can trail
//! orderStatus), so the engine legs the short in and, for a while, its book holds a naked
//! short. The monitor (every 100 ms) must raise a critical alert naming the exposure; once the
//! late fill lands the exposure is gone and no hedge is sent.

mod common;
mod support;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tradeguard_engine::{EngineConfig, GroupPhase, Journal, OrderIntent, Purpose, Severity};
use tradeguard_model::{OrderType, Right, Side, stubs};

#[tokio::test(start_paused = true)]
async fn naked_short_while_legging_raises_an_alert_naming_the_exposure() {
    let db = temp_db();
    let mut sim_config = sim_cfg(21);
    sim_config.market.step = Duration::from_millis(100);
    let sim = broker(sim_config);
    let protective = opt(Right::Put, 480);
    let short = opt(Right::Put, 490);
    let late = Duration::from_millis(1_000);
    let b =
        Arc::new(WrappedBroker::new(sim.clone()).with_held_back_fills(protective.clone(), late));
    let store = open_store(&db.path);
    let j: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&sim)));
    let cfg = EngineConfig {
        // The hedge manager waits longer than the fill lags: the monitor is what speaks up.
        hedge_debounce: Duration::from_secs(3),
        ..engine_cfg()
    };
    let interval = cfg.exposure_check_interval;
    let c = start_on(b, j, cfg, venue_now(&sim)).await;
    let mut alerts = c.subscribe_alerts();
    // Tier 1: buy the 480 P. Tier 2: sell the 490 P (covered by it). Tier 3: a naked 540 C
    // offered far above the market that rests, so the group is still legging afterwards.
    let intent = OrderIntent::new(Purpose::Open, stubs::account())
        .leg(
            short.clone(),
            Side::Sell,
            2,
            OrderType::Limit { limit: px("0.05") },
        )
        .leg(
            protective.clone(),
            Side::Buy,
            2,
            OrderType::Limit { limit: px("30") },
        )
        .leg(
            opt(Right::Call, 540),
            Side::Sell,
            1,
            OrderType::Limit { limit: px("100") },
        );
    let gid = c.submit(intent).await.unwrap();
    sleep_ms(3_000).await;

    let snap = c.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.tiers, vec![vec![1], vec![0], vec![2]]);
    assert_eq!(g.phase, GroupPhase::Legging { tier: 2 }, "{g:#?}");
    // The venue holds the spread: the short went out after the protection was confirmed.
    assert_eq!(qty_at_broker(&sim, &protective).await, 2);
    assert_eq!(qty_at_broker(&sim, &short).await, -2);
    let execs = executions(&sim).await;
    let short_fill = execs.iter().find(|e| e.instrument == short).unwrap().ts;
    let protective_fill = execs
        .iter()
        .find(|e| e.instrument == protective)
        .unwrap()
        .ts;
    assert!(protective_fill <= short_fill);

    // Exactly one exposure alert, naming the underlying, the right and the contracts, raised
    // within one monitor period of the naked short appearing in the book.
    let mut exposure = Vec::new();
    while let Ok(a) = alerts.try_recv() {
        if a.code == "exposure.unhedged" {
            exposure.push(a);
        }
    }
    assert_eq!(exposure.len(), 1, "{exposure:#?}");
    let a = &exposure[0];
    assert_eq!(a.severity, Severity::Critical);
    assert!(
        a.message
            .starts_with("SPY Put: 2 naked short contract(s) while legging in"),
        "{}",
        a.message
    );
    assert!(a.ts >= short_fill, "raised after the short filled");
    assert!(
        a.ts.duration_since(short_fill) <= interval + Duration::from_millis(100),
        "raised within one monitor period: {:?}",
        a.ts.duration_since(short_fill)
    );
    assert!(
        a.ts < short_fill.plus(late),
        "raised before the late protective fill arrived"
    );
    // The late fill closed the gap: nothing unmatched, no hedge bought back the short.
    assert!(snap.unmatched.is_empty(), "{:?}", snap.unmatched);
    assert!(snap.hedges_sent.is_empty());
    assert!(
        !execs
            .iter()
            .any(|e| e.instrument == short && e.side == Side::Buy)
    );
    // The alert is durable in the store's alerts table too.
    let stored = store.reader().alerts(false, 100).unwrap();
    assert!(stored.iter().any(|s| s.alert.kind == "exposure.unhedged"
        && s.alert.severity == tradeguard_store::Severity::Critical
        && s.alert.text.contains("SPY Put: 2 naked short")));
    drop(c);
    store.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn legging_with_timely_fills_raises_no_exposure_alert() {
    let mut sim_config = sim_cfg(22);
    sim_config.market.step = Duration::from_millis(100);
    let sim = broker(sim_config);
    let j: Arc<dyn Journal> = Arc::new(tradeguard_engine::MemoryJournal::new());
    let c = start_on(sim.clone(), j, engine_cfg(), venue_now(&sim)).await;
    let mut alerts = c.subscribe_alerts();
    let intent = OrderIntent::new(Purpose::Open, stubs::account())
        .leg(
            opt(Right::Put, 490),
            Side::Sell,
            2,
            OrderType::Limit { limit: px("0.05") },
        )
        .leg(
            opt(Right::Put, 480),
            Side::Buy,
            2,
            OrderType::Limit { limit: px("30") },
        )
        .leg(
            opt(Right::Call, 540),
            Side::Sell,
            1,
            OrderType::Limit { limit: px("100") },
        );
    let gid = c.submit(intent).await.unwrap();
    sleep_ms(3_000).await;
    let snap = c.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.phase, GroupPhase::Legging { tier: 2 });
    assert_eq!(qty_at_broker(&sim, &opt(Right::Put, 490)).await, -2);
    while let Ok(a) = alerts.try_recv() {
        assert_ne!(a.code, "exposure.unhedged", "{a:#?}");
    }
}
