//! Execution against the simulated venue in paused virtual time: iron condor legging and the
//! native combo path, partial-fill hedging, the hybrid stop-loss, crash recovery.

mod common;
use common::*;
use tradeguard_engine::{
    EngineConfig, GroupPhase, JournalRecord, LegState, MemoryJournal, OrderIntent, Purpose,
    Severity, StopSpec, StopState,
};
use tradeguard_model::{Broker, OrderType, Right, Side, stubs};

/// Marketable limits (market orders on options need a mark for the notional check).
fn iron_condor() -> OrderIntent {
    let buy = OrderType::Limit { limit: px("30") };
    let sell = OrderType::Limit { limit: px("0.05") };
    OrderIntent::new(Purpose::Open, stubs::account())
        .leg(opt(Right::Put, 490), Side::Sell, 2, sell)
        .leg(opt(Right::Put, 480), Side::Buy, 2, buy)
        .leg(opt(Right::Call, 510), Side::Sell, 2, sell)
        .leg(opt(Right::Call, 520), Side::Buy, 2, buy)
}

#[tokio::test(start_paused = true)]
async fn iron_condor_legs_in_protection_first() {
    let b = broker(sim_cfg(1));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let gid = c.submit(iron_condor()).await.unwrap();
    sleep_ms(5_000).await;
    let snap = c.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.phase, GroupPhase::Completed, "{g:#?}");
    assert_eq!(g.tiers, vec![vec![1, 3], vec![0, 2]]);
    // Every short order was sent only after both protective legs had filled.
    let execs = executions(&b).await;
    assert_eq!(execs.len(), 4, "{execs:#?}");
    let last_protective_fill = execs
        .iter()
        .filter(|e| e.side == Side::Buy)
        .map(|e| e.ts)
        .max()
        .unwrap();
    for short in [0, 2] {
        let sent = g.legs[short].sent_at.unwrap();
        assert!(
            sent >= last_protective_fill,
            "short leg sent {sent} before protection filled {last_protective_fill}"
        );
    }
    for (inst, q) in [
        (opt(Right::Put, 480), 2),
        (opt(Right::Put, 490), -2),
        (opt(Right::Call, 510), -2),
        (opt(Right::Call, 520), 2),
    ] {
        assert_eq!(qty_at_broker(&b, &inst).await, q);
    }
    // The journal saw the short legs Pending while the protective tier was working.
    let early = j.records().into_iter().find_map(|r| match r {
        JournalRecord::Group(g) if g.legs[1].state == LegState::Sent => Some(g),
        _ => None,
    });
    assert_eq!(early.unwrap().legs[0].state, LegState::Pending);
}

#[tokio::test(start_paused = true)]
async fn iron_condor_uses_one_native_combo_when_asked() {
    let b = broker(sim_cfg(2));
    let j = MemoryJournal::new();
    let cfg = EngineConfig {
        prefer_native_combos: true,
        ..engine_cfg()
    };
    let c = start(b.clone(), &j, cfg).await;
    let gid = c.submit(iron_condor()).await.unwrap();
    sleep_ms(3_000).await;
    let snap = c.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.phase, GroupPhase::Completed);
    assert_eq!(g.combo_qty, Some(2));
    let execs = executions(&b).await;
    assert_eq!(execs.len(), 4);
    let ids: std::collections::BTreeSet<_> = execs.iter().map(|e| e.order_id).collect();
    assert_eq!(ids.len(), 1, "one combo order: {ids:?}");
    assert!(
        g.legs
            .iter()
            .all(|l| l.state == LegState::Filled && l.filled() == 2)
    );
}

/// Do no harm: a naked sale the engine did not send (a manual trade in TWS), filling one
/// contract per 20 ms, is the trader's: never bought back, reported once. (Hedging of the
/// guard's own unmatched quantity, rapid partials included, is `hedge::tests` and the restart
/// tests below.)
#[tokio::test(start_paused = true)]
async fn ten_partial_fills_of_a_manual_naked_sale_are_reported_once_never_hedged() {
    let mut cfg = sim_cfg(3);
    cfg.market.step = std::time::Duration::from_millis(20);
    let b = broker(cfg);
    venue(&b).lock().unwrap().set_max_fill_qty(Some(1));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let call = opt(Right::Call, 530);
    let ext = external(&b, call.clone(), Side::Sell, 10).await;
    sleep_ms(10_000).await;
    let execs = executions(&b).await;
    let sells = execs.iter().filter(|e| e.order_id == Some(ext)).count();
    assert_eq!(sells, 10, "ten partial fills");
    assert!(execs.iter().all(|e| e.side == Side::Sell), "{execs:#?}");
    assert_eq!(qty_at_broker(&b, &call).await, -10);
    let reports: Vec<_> = alerts(&j)
        .into_iter()
        .filter(|a| a.code == "exposure.naked_short")
        .collect();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(reports[0].message.contains("SPY Call: 10"), "{reports:#?}");
    let snap = c.snapshot().await.unwrap();
    assert!(snap.hedges_sent.is_empty() && snap.unmatched.is_empty());
}

#[tokio::test(start_paused = true)]
async fn intended_naked_short_is_not_hedged() {
    let b = broker(sim_cfg(5));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let put = opt(Right::Put, 480);
    let sell = OrderType::Limit { limit: px("0.05") };
    c.submit(OrderIntent::new(Purpose::Open, stubs::account()).leg(
        put.clone(),
        Side::Sell,
        1,
        sell,
    ))
    .await
    .unwrap();
    sleep_ms(3_000).await;
    assert_eq!(qty_at_broker(&b, &put).await, -1);
    assert!(executions(&b).await.iter().all(|e| e.side == Side::Sell));
}

fn long_spy_stop_rig(seed: u64) -> tradeguard_sim::SimConfig {
    let mut cfg = sim_cfg(seed);
    cfg.positions = vec![position(spy(), 100, "500")];
    cfg
}

fn stop_spec() -> StopSpec {
    StopSpec {
        account: stubs::account(),
        instrument: spy(),
        side: Side::Sell,
        qty: 100,
        stop: px("495"),
        strategy: None,
    }
}

#[tokio::test(start_paused = true)]
async fn stop_limit_filled_during_pending_cancel_sends_no_market_order() {
    let mut cfg = long_spy_stop_rig(6);
    cfg.faults.fill_after_cancel_prob = 1.0;
    let b = broker(cfg);
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let id = c.place_stop(stop_spec()).await.unwrap();
    sleep_ms(1_000).await;
    // Gap through the stop and below the limit (492.52): triggered, not fillable.
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("480"))
        .unwrap();
    sleep_ms(6_000).await;
    let snap = c.snapshot().await.unwrap();
    let s = snap.stops.iter().find(|s| s.id == id).unwrap();
    assert_eq!(s.limit, px("492.52"));
    assert_eq!(s.state, StopState::Done, "{s:#?}");
    assert_eq!(
        s.market_order, None,
        "no market order after a fill during the pending cancel"
    );
    let execs = executions(&b).await;
    assert!(execs.iter().all(|e| e.order_id == Some(s.limit_order)));
    assert_eq!(execs.iter().map(|e| e.qty).sum::<i64>(), 100);
    assert_eq!(qty_at_broker(&b, &spy()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn stop_limit_not_filled_is_cancelled_then_market_after_confirmation() {
    let b = broker(long_spy_stop_rig(7));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let id = c.place_stop(stop_spec()).await.unwrap();
    sleep_ms(1_000).await;
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("480"))
        .unwrap();
    sleep_ms(6_000).await;
    let snap = c.snapshot().await.unwrap();
    let s = snap.stops.iter().find(|s| s.id == id).unwrap();
    assert_eq!(s.state, StopState::Done, "{s:#?}");
    let market = s.market_order.unwrap();
    let execs = executions(&b).await;
    assert!(execs.iter().all(|e| e.order_id == Some(market)));
    assert_eq!(qty_at_broker(&b, &spy()).await, 0);
    // Write-ahead: the journal had the stop in CancelPending before the market order existed.
    let order: Vec<StopState> = j
        .records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Stop(s) if s.id == id => Some(s.state),
            _ => None,
        })
        .collect();
    let cp = order
        .iter()
        .position(|s| *s == StopState::CancelPending)
        .unwrap();
    let ms = order
        .iter()
        .position(|s| *s == StopState::MarketSent)
        .unwrap();
    assert!(cp < ms);
}

/// A stop whose time-out cancel cannot be sent because the link is down tries again every
/// time-out without an alert each time (the lost connection is alerted once by the guard); the
/// link back, the cancel goes out and the stop exits at market once the cancel is confirmed.
#[tokio::test(start_paused = true)]
async fn a_cancel_the_link_cannot_carry_is_retried_quietly_and_goes_out_when_it_is_back() {
    let b = broker(long_spy_stop_rig(8));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let mut alerts = c.subscribe_alerts();
    let id = c.place_stop(stop_spec()).await.unwrap();
    sleep_ms(1_000).await;
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("480"))
        .unwrap();
    sleep_ms(1_200).await;
    venue(&b).lock().unwrap().disconnect();
    sleep_ms(12_000).await;
    let mut codes = Vec::new();
    while let Ok(a) = alerts.try_recv() {
        codes.push(a.code);
    }
    assert!(
        !codes.iter().any(|c| c == "stop.cancel_rejected"),
        "one alert per retry while disconnected: {codes:?}"
    );
    let s = c
        .snapshot()
        .await
        .unwrap()
        .stops
        .into_iter()
        .find(|s| s.id == id)
        .unwrap();
    assert_eq!(s.market_order, None, "no exit while the cancel is unsent");
    venue(&b).lock().unwrap().connect();
    sleep_ms(8_000).await;
    let mut later = Vec::new();
    while let Ok(a) = alerts.try_recv() {
        later.push(a.code);
    }
    assert!(!later.iter().any(|c| c == "stop.order_lost"), "{later:?}");
    let s = c
        .snapshot()
        .await
        .unwrap()
        .stops
        .into_iter()
        .find(|s| s.id == id)
        .unwrap();
    assert_eq!(s.state, StopState::Done, "{s:#?}");
    assert!(s.market_order.is_some());
    assert_eq!(qty_at_broker(&b, &spy()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn rejected_cancel_keeps_the_stop_managed_and_alerts() {
    let mut cfg = long_spy_stop_rig(8);
    cfg.faults.cancel_reject_prob = 1.0;
    let b = broker(cfg);
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let mut alerts = c.subscribe_alerts();
    let id = c.place_stop(stop_spec()).await.unwrap();
    sleep_ms(1_000).await;
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("480"))
        .unwrap();
    sleep_ms(4_500).await;
    let snap = c.snapshot().await.unwrap();
    let s = snap.stops.iter().find(|s| s.id == id).unwrap().clone();
    assert_eq!(s.state, StopState::Working, "{s:#?}");
    assert!(s.cancel_rejections >= 1);
    assert_eq!(s.market_order, None);
    assert!(executions(&b).await.is_empty(), "no second exit order");
    let open = b.open_orders().await.unwrap();
    assert_eq!(open.len(), 1, "only the stop-limit is live");
    let a = alerts.try_recv().unwrap();
    assert_eq!(a.code, "stop.cancel_rejected");
    assert_eq!(a.stop, Some(id));
    // Still managed: when the market comes back above the limit, the stop-limit fills.
    venue(&b)
        .lock()
        .unwrap()
        .set_spot("SPY", px("494"))
        .unwrap();
    sleep_ms(3_000).await;
    let snap = c.snapshot().await.unwrap();
    let s = snap.stops.iter().find(|s| s.id == id).unwrap();
    assert_eq!(s.state, StopState::Done);
    assert_eq!(qty_at_broker(&b, &spy()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn crash_mid_group_recovers_broker_state_and_leaves_a_manual_sale_alone() {
    let b = broker(sim_cfg(9));
    let j = MemoryJournal::new();
    let c1 = start(b.clone(), &j, engine_cfg()).await;
    // Protective 520 C rests far below the market; 480 P fills. Shorts never go out.
    let mut ic = iron_condor();
    ic.legs[3].order_type = OrderType::Limit { limit: px("0.05") };
    let gid = c1.submit(ic).await.unwrap();
    // Crash right after the first tier was handed to the broker: fills happen while down.
    c1.abort();
    drop(c1);
    // While the app is down, somebody sells two naked calls in TWS.
    let call = opt(Right::Call, 530);
    external(&b, call.clone(), Side::Sell, 2).await;
    sleep_ms(3_000).await;
    let highest_before = j
        .records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::OrderIdUsed(id) => Some(id),
            _ => None,
        })
        .max()
        .unwrap();
    let c2 = start(b.clone(), &j, engine_cfg()).await;
    sleep_ms(3_000).await;
    let snap = c2.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.phase, GroupPhase::Interrupted);
    assert_eq!(
        g.legs[1].state,
        LegState::Filled,
        "480 P filled while down: broker wins"
    );
    assert_eq!(g.legs[1].filled(), 2);
    assert_eq!(
        g.legs[3].state,
        LegState::Cancelled,
        "resting 520 C cancelled at recovery"
    );
    assert_eq!(
        (g.legs[0].state, g.legs[0].order_id),
        (LegState::Cancelled, None)
    );
    assert!(b.open_orders().await.unwrap().is_empty());
    // The calls sold in TWS are the trader's: reported, never bought back.
    assert_eq!(qty_at_broker(&b, &call).await, -2);
    assert_eq!(qty_at_broker(&b, &opt(Right::Put, 480)).await, 2);
    assert!(
        executions(&b)
            .await
            .iter()
            .all(|e| e.instrument != call || e.side == Side::Sell),
        "nothing bought"
    );
    let a = alerts(&j);
    assert!(a.iter().any(|a| a.code == "exposure.naked_at_startup"
        && a.severity == Severity::Warning
        && a.message.contains("SPY Call ×2")));
    assert!(
        !a.iter().any(|a| a.code == "exposure.unhedged_at_startup"),
        "the interrupted group left no naked short of its own: {a:#?}"
    );
    assert!(a.iter().any(|a| a.code == "group.interrupted"));
    // Order ids never go back.
    assert!(snap.highest_order_id.unwrap() >= highest_before);
}

/// Do no harm: naked shorts the trader holds on purpose (a cash-secured put, a strangle's
/// short call) are found at start-up and reported, never bought back, on the default config.
#[tokio::test(start_paused = true)]
async fn naked_shorts_held_at_start_up_are_reported_not_traded() {
    let mut cfg = sim_cfg(21);
    cfg.positions = vec![
        position(opt(Right::Put, 480), -1, "2"),
        position(opt(Right::Call, 520), -2, "1.5"),
    ];
    let b = broker(cfg);
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    sleep_ms(60_000).await;
    assert!(
        executions(&b).await.is_empty(),
        "{:#?}",
        executions(&b).await
    );
    assert_eq!(qty_at_broker(&b, &opt(Right::Put, 480)).await, -1);
    assert_eq!(qty_at_broker(&b, &opt(Right::Call, 520)).await, -2);
    let a = alerts(&j);
    let found: Vec<_> = a
        .iter()
        .filter(|a| a.code == "exposure.naked_at_startup")
        .collect();
    assert_eq!(found.len(), 1, "{a:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(found[0].message.contains("SPY Put ×1") && found[0].message.contains("SPY Call ×2"));
    assert!(!a.iter().any(|a| a.code == "exposure.unhedged_at_startup"));
    assert!(c.snapshot().await.unwrap().hedges_sent.is_empty());
}

/// Do no harm: a short sold in TWS while the guard runs is alerted once, not bought.
#[tokio::test(start_paused = true)]
async fn a_short_sold_outside_the_guard_is_alerted_not_bought() {
    let b = broker(sim_cfg(22));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let put = opt(Right::Put, 470);
    external(&b, put.clone(), Side::Sell, 1).await;
    sleep_ms(30_000).await;
    assert_eq!(qty_at_broker(&b, &put).await, -1);
    assert!(
        executions(&b).await.iter().all(|e| e.side == Side::Sell),
        "nothing bought: {:#?}",
        executions(&b).await
    );
    let n = alerts(&j)
        .iter()
        .filter(|a| a.code == "exposure.naked_short" && a.message.contains("SPY Put: 1"))
        .count();
    assert_eq!(n, 1, "{:#?}", alerts(&j));
    assert!(c.snapshot().await.unwrap().hedges_sent.is_empty());
}
