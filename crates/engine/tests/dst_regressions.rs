//! Regressions for engine bugs the deterministic simulation (`tests/dst`) found, each on the
//! simulated venue in paused (virtual) time. The DST seed that found each one is named.

mod common;
use common::*;
use std::collections::BTreeMap;
use tradeguard_engine::{ExecError, GateRefusal, MemoryJournal, OrderIntent, Purpose};
use tradeguard_model::{BrokenReason, OrderType, Right, Side, StrategyId, stubs};

fn refused(e: ExecError) -> GateRefusal {
    match e {
        ExecError::Refused(r) => r,
        other => panic!("expected a gate refusal, got {other:?}"),
    }
}

/// DST seed 188 (invariant 7): strategy 1 (a call vertical) was assigned on its short 490 and
/// is Broken; strategy 2 holds the same 495 call. A normal Close of strategy 2 sold the 495,
/// a leg of Broken strategy 1, because the gate only checked the order's strategy id.
#[tokio::test(start_paused = true)]
async fn a_normal_close_of_another_strategy_cannot_trade_a_broken_strategys_leg() {
    let mut cfg = sim_cfg(188);
    cfg.positions = vec![
        position(opt(Right::Call, 490), -1, "3"),
        position(opt(Right::Call, 495), 3, "2"),
    ];
    let b = broker(cfg);
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    sleep_ms(500).await;
    c.mark_broken(
        StrategyId(1),
        &BrokenReason::Assigned {
            instrument: opt(Right::Call, 490).id(),
        },
    )
    .await
    .unwrap();
    c.set_broken_legs(BTreeMap::from([
        (opt(Right::Call, 490).id(), StrategyId(1)),
        (opt(Right::Call, 495).id(), StrategyId(1)),
    ]))
    .await
    .unwrap();

    let close_other = OrderIntent::new(Purpose::Close, stubs::account())
        .for_strategy(StrategyId(2))
        .leg(
            opt(Right::Call, 495),
            Side::Sell,
            2,
            OrderType::Limit { limit: px("0.05") },
        );
    let r = refused(c.submit(close_other.clone()).await.unwrap_err());
    assert_eq!(
        r,
        GateRefusal::BrokenStrategyLeg {
            instrument: opt(Right::Call, 495).id(),
            strategy: StrategyId(1),
            reason: Some("broken.assigned".into()),
        }
    );
    assert_eq!(r.code(), "gate.broken_strategy_leg");
    assert!(r.to_string().contains("broken strategy 1"), "{r}");
    // Untagged flattens and new stops on the locked instrument are refused too.
    let flatten = OrderIntent::new(Purpose::Flatten, stubs::account()).leg(
        opt(Right::Call, 495),
        Side::Sell,
        3,
        OrderType::Market,
    );
    assert_eq!(
        refused(c.submit(flatten).await.unwrap_err()).code(),
        "gate.broken_strategy_leg"
    );
    assert!(
        audits(&j)
            .iter()
            .any(|a| a.decision == "refused" && a.code == "gate.broken_strategy_leg")
    );
    sleep_ms(2_000).await;
    assert!(executions(&b).await.is_empty(), "nothing reached the venue");
    assert_eq!(qty_at_broker(&b, &opt(Right::Call, 495)).await, 3);

    // The emergency path still passes; once the strategy is no longer Broken the lock is gone.
    let mut em = close_other.clone();
    em.purpose = Purpose::Emergency;
    em.legs[0].qty = 1;
    c.submit(em).await.unwrap();
    sleep_ms(2_000).await;
    assert_eq!(qty_at_broker(&b, &opt(Right::Call, 495)).await, 2);
    c.set_broken_legs(BTreeMap::new()).await.unwrap();
    c.clear_broken(StrategyId(1)).await.unwrap();
    c.submit(close_other).await.unwrap();
    sleep_ms(2_000).await;
    assert_eq!(qty_at_broker(&b, &opt(Right::Call, 495)).await, 0);
}
