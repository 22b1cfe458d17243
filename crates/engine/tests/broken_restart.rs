//! A Broken strategy across a restart of the composed [`Guard`], on the simulated venue in
//! paused virtual time: an assignment breaks an iron condor before the open (its emergency
//! close is armed for 09:30), the process dies — right after the close was journaled, right
//! after the coordinator journaled the Broken flag, or with a clean shutdown — and the next
//! start must show the condor Broken with its remaining legs (no Open strategy re-recognized
//! from them), refuse normal orders on every one of its instruments, and finish the close.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{
    AssignmentConfig, ClosePhase, RecordingNotifier, UsEquityHours,
};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, NoRules};
use tradeguard_engine::{
    IntrinsicStressModel, Journal, JournalRecord, MemoryJournal, OrderIntent, Purpose, TokioClock,
};
use tradeguard_model::{
    Broker, Instrument, OrderType, Position, Right, Side, StrategyState, Timestamp, stubs,
};
use tradeguard_sim::{SimBroker, SimConfig, calendar};

fn tue(h: u32, m: u32) -> Timestamp {
    calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), h, m)
}

fn condor() -> Vec<Instrument> {
    vec![
        opt(Right::Put, 435),
        opt(Right::Put, 440),
        opt(Right::Call, 460),
        opt(Right::Call, 465),
    ]
}

/// 09:00 New York (options do not trade yet), SPY at 450, an iron condor 435/440/460/465.
fn cfg(seed: u64) -> SimConfig {
    let mut c = sim_cfg(seed);
    c.start = tue(9, 0);
    c.underlyings[0].price = px("450");
    c.underlyings[0].vol = 0.001;
    let [lp, sp, sc, lc]: [Instrument; 4] = condor().try_into().unwrap();
    c.positions = vec![
        position(lp, 2, "1.00"),
        position(sp, -2, "2.00"),
        position(sc, -2, "2.00"),
        position(lc, 2, "1.00"),
    ];
    c
}

async fn start_guard(b: Arc<SimBroker>, j: Arc<dyn Journal>) -> Guard {
    let start = venue(&b).lock().unwrap().now();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("450"));
    Guard::start(GuardDeps {
        relay: None,
        broker: b,
        journal: j,
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: tradeguard_engine::EngineConfig {
            hedge_enabled: false,
            ..engine_cfg()
        },
        enforce: EnforceConfig {
            eval_interval: Duration::from_millis(200),
            ..EnforceConfig::default()
        },
        evaluator: Box::new(NoRules),
        hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap()
}

/// Breaks the condor with an assignment of the 440 P, "crashes" at `at` (never: a clean
/// shutdown once the close is armed), restarts and checks the Broken strategy end to end.
async fn break_crash_restart(seed: u64, at: Option<fn(&JournalRecord) -> bool>) {
    let b = broker(cfg(seed));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let crash = Crashing::new(&j, move |r| at.is_some_and(|f| f(r)));
    let g1 = start_guard(b.clone(), Arc::new(crash.clone())).await;
    sleep_ms(2_000).await;
    let before = g1.strategies();
    assert!(
        before
            .iter()
            .any(|s| s.state == StrategyState::Open && s.legs.len() == 4),
        "the condor is recognized: {before:#?}"
    );
    b.force_assignment(&opt(Right::Put, 440).id(), 1).unwrap();
    for _ in 0..500 {
        let armed = g1
            .assignment_status()
            .closes
            .iter()
            .any(|c| c.phase == ClosePhase::Armed);
        if crash.dead() || (at.is_none() && armed) {
            break;
        }
        sleep_ms(10).await;
    }
    if at.is_some() {
        assert!(crash.dead(), "the crash point was reached");
    }
    let broken_id = g1.assignment_status().records[0]
        .strategy
        .expect("the assignment is correlated with the condor");
    g1.shutdown().await;
    drop(g1);
    sleep_ms(2_000).await;
    assert_eq!(
        qty_at_broker(&b, &opt(Right::Put, 440)).await,
        -1,
        "nothing closed before the restart (the close waits for the open)"
    );

    // Restart on the same journal and venue; look before any task of the new guard ran.
    let g2 = start_guard(b.clone(), Arc::new(j.reopen())).await;
    let legs: BTreeSet<_> = condor().iter().map(Instrument::id).collect();
    let views = g2.strategies();
    let broken: Vec<_> = views
        .iter()
        .filter(|s| s.state == StrategyState::Broken)
        .collect();
    assert_eq!(broken.len(), 1, "one Broken strategy: {views:#?}");
    assert_eq!(broken[0].id, broken_id);
    assert_eq!(broken[0].badge(), "broken: SPY 21MAR25 440 P assigned");
    let shown: BTreeSet<_> = broken[0].legs.iter().map(|l| l.instrument.id()).collect();
    assert_eq!(shown, legs, "every leg of the condor: {:#?}", broken[0]);
    for v in views.iter().filter(|v| v.state != StrategyState::Broken) {
        assert!(
            v.legs.iter().all(|l| !legs.contains(&l.instrument.id())),
            "no other strategy holds a leg of the Broken condor: {v:#?}"
        );
    }
    // The gate locks every instrument of it for normal orders, naming the strategy or not.
    let snap = g2.coordinator().snapshot().await.unwrap();
    assert!(
        snap.broken.iter().any(|(s, _)| *s == broken_id),
        "{snap:#?}"
    );
    let locked: BTreeSet<_> = snap
        .broken_legs
        .iter()
        .filter(|(_, s)| *s == broken_id)
        .map(|(i, _)| i.clone())
        .collect();
    // ...and the delivered stock its armed close sells: the assignment guard owns it too.
    let mut owned = legs.clone();
    owned.insert(Instrument::stock("SPY").id());
    assert_eq!(locked, owned);
    for (inst, side) in [
        (opt(Right::Put, 435), Side::Sell),
        (opt(Right::Call, 460), Side::Buy),
    ] {
        let refused = g2
            .coordinator()
            .submit(OrderIntent::new(Purpose::Close, stubs::account()).leg(
                inst.clone(),
                side,
                1,
                OrderType::Market,
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "gate.broken_strategy_leg", "{inst:?}");
    }
    let refused = g2
        .coordinator()
        .submit(
            OrderIntent::new(Purpose::Close, stubs::account())
                .for_strategy(broken_id)
                .leg(opt(Right::Put, 465), Side::Sell, 1, OrderType::Market),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "gate.strategy_broken");

    // At the open the armed close goes out and completes; the strategy is Closed, not shown.
    sleep_ms(40 * 60_000).await;
    let st = g2.assignment_status();
    assert_eq!(
        st.records.len(),
        1,
        "no second detection: {:#?}",
        st.records
    );
    let c = st
        .closes
        .iter()
        .find(|c| c.strategy == broken_id)
        .expect("the close survived the restart");
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    assert!(c.orders.iter().all(|o| o.sent_at.unwrap() >= tue(9, 30)));
    let guarded = st.strategies.iter().find(|s| s.id == broken_id).unwrap();
    assert_eq!(guarded.state, StrategyState::Closed);
    sleep_ms(2_000).await;
    let views = g2.strategies();
    assert!(views.iter().all(|v| v.id != broken_id), "{views:#?}");
    let left: Vec<Position> = b.positions().await.unwrap();
    assert!(
        left.iter().all(|p| !legs.contains(&p.instrument.id())),
        "the condor is flat: {left:#?}"
    );
    g2.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restart_after_a_clean_shutdown_keeps_the_broken_condor_and_closes_it() {
    break_crash_restart(41, None).await;
}

#[tokio::test(start_paused = true)]
async fn crash_right_after_the_broken_flag_keeps_the_condor_locked_and_closes_it() {
    break_crash_restart(
        42,
        Some(|r| {
            matches!(
                r,
                JournalRecord::StrategyBroken {
                    reason: Some(_),
                    ..
                }
            )
        }),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn crash_right_after_the_close_is_journaled_keeps_the_condor_locked_and_closes_it() {
    break_crash_restart(43, Some(|r| matches!(r, JournalRecord::EmergencyClose(_)))).await;
}
