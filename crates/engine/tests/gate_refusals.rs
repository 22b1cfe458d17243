//! Every gate refusal through the coordinator, with its typed reason and its audit entry.

mod common;
use common::*;
use tradeguard_engine::{
    EngineConfig, GateConfig, GateRefusal, MemoryJournal, OrderIntent, Purpose, TradingState,
};
use tradeguard_model::{BrokenReason, Broker, Money, OrderType, Right, Side, StrategyId, stubs};

fn buy_put(qty: i64, limit: &str) -> OrderIntent {
    OrderIntent::new(Purpose::Open, stubs::account()).leg(
        opt(Right::Put, 480),
        Side::Buy,
        qty,
        OrderType::Limit { limit: px(limit) },
    )
}

fn refused(e: tradeguard_engine::ExecError) -> GateRefusal {
    match e {
        tradeguard_engine::ExecError::Refused(r) => r,
        other => panic!("expected a gate refusal, got {other:?}"),
    }
}

fn audited(j: &MemoryJournal, code: &str) -> bool {
    audits(j)
        .iter()
        .any(|a| a.decision == "refused" && a.code == code && !a.reason.is_empty())
}

#[tokio::test(start_paused = true)]
async fn each_refusal_has_its_reason_and_an_audit_entry() {
    let b = broker(sim_cfg(11));
    let j = MemoryJournal::new();
    let cfg = EngineConfig {
        gate: GateConfig {
            max_order_qty: 10,
            max_notional: Money::from_units(10_000).unwrap(),
            stress_pct: 90,
            burst: 3,
            max_msgs_per_sec: 1,
        },
        ..engine_cfg()
    };
    let c = start(b.clone(), &j, cfg).await;

    let r = refused(c.submit(buy_put(11, "1")).await.unwrap_err());
    assert_eq!(
        r,
        GateRefusal::MaxOrderQty {
            instrument: opt(Right::Put, 480).id(),
            qty: 11,
            max: 10
        }
    );
    assert!(audited(&j, "gate.max_order_qty"));

    let r = refused(c.submit(buy_put(10, "20")).await.unwrap_err());
    assert_eq!(r.code(), "gate.max_notional");
    assert!(r.to_string().contains("20000"), "{r}");
    assert!(audited(&j, "gate.max_notional"));

    let mut mkt = buy_put(1, "1");
    mkt.legs[0].order_type = OrderType::Market;
    assert_eq!(
        refused(c.submit(mkt).await.unwrap_err()).code(),
        "gate.no_price"
    );

    // Stress: 10 naked 500 puts, −15 % ⇒ 75 × 100 × 10 = 75 000, within 90 % of ~1 000 000
    // (the refusal itself is the next test).
    let naked = OrderIntent::new(Purpose::Open, stubs::account()).leg(
        opt(Right::Put, 500),
        Side::Sell,
        10,
        OrderType::Limit { limit: px("5") },
    );
    assert!(
        c.submit(naked.clone()).await.is_ok(),
        "75 000 worst case fits in 90 % of 1 000 000"
    );

    // Throttle: burst 3, 1 msg/s; one message used above.
    assert!(c.submit(buy_put(1, "1")).await.is_ok());
    assert!(c.submit(buy_put(1, "1")).await.is_ok());
    let r = refused(c.submit(buy_put(1, "1")).await.unwrap_err());
    assert_eq!(r.code(), "gate.throttled");
    assert!(audited(&j, "gate.throttled"));
    sleep_ms(1_100).await;
    assert!(
        c.submit(buy_put(1, "1")).await.is_ok(),
        "bucket refilled on clock time"
    );
    sleep_ms(3_000).await;

    c.set_trading_state(TradingState::Reducing).await.unwrap();
    let r = refused(c.submit(buy_put(1, "1")).await.unwrap_err());
    assert_eq!(r.code(), "gate.not_reducing");
    assert!(audited(&j, "gate.not_reducing"));

    c.set_trading_state(TradingState::Halted).await.unwrap();
    let r = refused(c.submit(buy_put(1, "1")).await.unwrap_err());
    assert_eq!(
        r,
        GateRefusal::Halted {
            purpose: Purpose::Open
        }
    );
    assert!(audited(&j, "gate.halted"));
    c.set_trading_state(TradingState::Active).await.unwrap();

    // A normal close of a Broken strategy is refused; the emergency path passes.
    c.mark_broken(
        StrategyId(7),
        &BrokenReason::Assigned {
            instrument: opt(Right::Put, 500).id(),
        },
    )
    .await
    .unwrap();
    let close = OrderIntent::new(Purpose::Close, stubs::account())
        .for_strategy(StrategyId(7))
        .leg(
            opt(Right::Put, 500),
            Side::Buy,
            10,
            OrderType::Limit { limit: px("9") },
        );
    let r = refused(c.submit(close.clone()).await.unwrap_err());
    assert_eq!(
        r,
        GateRefusal::StrategyBroken {
            strategy: StrategyId(7),
            reason: "broken.assigned".into()
        }
    );
    assert!(audited(&j, "gate.strategy_broken"));
    let mut em = close;
    em.purpose = Purpose::Emergency;
    assert!(c.submit(em).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn stress_limit_refuses_with_requirement_and_limit() {
    let b = broker(sim_cfg(12));
    let j = MemoryJournal::new();
    let cfg = EngineConfig {
        gate: GateConfig {
            stress_pct: 5,
            ..GateConfig::default()
        },
        ..engine_cfg()
    };
    let c = start(b, &j, cfg).await;
    let naked = OrderIntent::new(Purpose::Open, stubs::account()).leg(
        opt(Right::Put, 500),
        Side::Sell,
        10,
        OrderType::Limit { limit: px("5") },
    );
    match refused(c.submit(naked).await.unwrap_err()) {
        GateRefusal::StressLimit {
            requirement,
            limit,
            pct,
            scenario,
            excess,
            ..
        } => {
            assert_eq!(requirement, Money::from_units(75_000).unwrap());
            assert_eq!(pct, 5);
            assert!(limit < requirement);
            assert_eq!(scenario, tradeguard_engine::StressScenario::moved(-1500));
            assert_eq!(excess, requirement.checked_sub(limit).unwrap());
        }
        other => panic!("{other:?}"),
    }
    // The audit log says which scenario breaks the line, and by how much.
    let a = audits(&j)
        .into_iter()
        .find(|a| a.code == "gate.stress_limit")
        .expect("audited");
    assert!(
        a.reason.contains("(underlying −15 %)") && a.reason.contains(" by "),
        "{}",
        a.reason
    );
}

#[tokio::test(start_paused = true)]
async fn journal_failure_means_no_broker_call() {
    let b = broker(sim_cfg(13));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    j.set_fail_writes(true);
    let e = c.submit(buy_put(1, "30")).await.unwrap_err();
    assert_eq!(e.code(), "journal.write");
    sleep_ms(1_000).await;
    assert!(b.open_orders().await.unwrap().is_empty());
    assert!(executions(&b).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_after_the_broker_acted_is_raised_not_dropped() {
    let b = broker(sim_cfg(13));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    let mut alerts = c.subscribe_alerts();
    c.submit(buy_put(1, "30")).await.unwrap();
    // The order is at the broker; the journal fails before its fill is recorded.
    j.set_fail_writes(true);
    sleep_ms(5_000).await;
    assert_eq!(
        executions(&b).await.len(),
        1,
        "the order filled at the venue"
    );
    let mut raised = Vec::new();
    while let Ok(a) = alerts.try_recv() {
        raised.push(a);
    }
    let failed: Vec<_> = raised
        .iter()
        .filter(|a| a.code.starts_with("journal."))
        .collect();
    assert!(
        !failed.is_empty(),
        "a journal failure must be raised: {raised:#?}"
    );
    assert!(
        failed
            .iter()
            .all(|a| a.severity == tradeguard_engine::Severity::Critical)
    );
    assert!(
        failed[0].message.contains("journal write failed"),
        "{}",
        failed[0].message
    );
}

/// A lock on opening orders (what a fired loss limit asks) only tightens, says why, and is
/// restored from the journal at the next start; a person's unlock loosens it.
#[tokio::test(start_paused = true)]
async fn a_lock_only_tightens_and_survives_a_restart() {
    let b = broker(sim_cfg(12));
    let j = MemoryJournal::new();
    let c = start(b.clone(), &j, engine_cfg()).await;
    assert_eq!(c.trading_status().state, TradingState::Active);
    assert!(
        c.change_trading_state(TradingState::Reducing, "daily loss".into(), true)
            .await
            .unwrap()
    );
    let s = c.trading_status();
    assert_eq!(
        (s.state, s.why.as_str()),
        (TradingState::Reducing, "daily loss")
    );
    assert!(s.since.is_some());
    let r = refused(c.submit(buy_put(1, "1")).await.unwrap_err());
    assert_eq!(r.code(), "gate.not_reducing");

    // Halted is stricter: a second lock does not loosen it.
    c.set_trading_state(TradingState::Halted).await.unwrap();
    assert!(
        !c.change_trading_state(TradingState::Reducing, "again".into(), true)
            .await
            .unwrap()
    );
    assert_eq!(c.trading_status().state, TradingState::Halted);
    c.change_trading_state(TradingState::Reducing, "a person".into(), false)
        .await
        .unwrap();
    c.abort();

    // Restarted on the same journal: still locked, and it says so.
    let c = start(b.clone(), &j, engine_cfg()).await;
    let s = c.trading_status();
    assert_eq!(s.state, TradingState::Reducing);
    assert!(s.why.contains("before the restart"), "{}", s.why);
    assert_eq!(
        refused(c.submit(buy_put(1, "1")).await.unwrap_err()).code(),
        "gate.not_reducing"
    );
    assert!(
        audits(&j)
            .iter()
            .any(|a| a.code == "state.changed"
                && a.reason.contains("Active -> Reducing: daily loss"))
    );
}
