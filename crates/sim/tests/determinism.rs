//! Same seed ⇒ identical event log; different seed ⇒ different log. Also through SimBroker
//! under paused tokio time.

mod common;
use common::*;
use futures::{FutureExt, StreamExt};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;
use tradeguard_model::{Broker, OrderType, Side};
use tradeguard_sim::{FaultConfig, Scenario, SimBroker, Speed};

/// One busy virtual hour of the demo with orders, partial fills and every fault switched on.
fn event_log(seed: u64) -> (u64, usize) {
    let mut s = Scenario::demo(seed);
    s.config.faults = FaultConfig {
        disconnect_prob: 0.0005,
        reconnect_after: Duration::from_secs(20),
        stall_prob: 0.0005,
        stall_duration: Duration::from_secs(10),
        duplicate_prob: 0.01,
        delay_prob: 0.01,
        delay_max: Duration::from_secs(3),
        reorder_prob: 0.01,
        cancel_reject_prob: 0.3,
        cancel_late_prob: 0.3,
        cancel_late_delay: Duration::from_secs(5),
        fill_after_cancel_prob: 0.3,
    };
    let mut v = s.venue().unwrap();
    v.connect();
    v.subscribe_quotes(&s.instruments()).unwrap();
    let mut log = Vec::new();
    for minute in 0..60 {
        log.extend(run(&mut v, 60));
        if v.is_connected() && v.positions().is_ok() {
            let side = if minute % 2 == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            if let Ok(id) = v.next_order_id() {
                let mut o = order(&mut v, spy(), side, 7, OrderType::Market);
                o.id = id;
                let _ = v.place(&o);
                let mut l = order(&mut v, spy(), side, 3, OrderType::Limit { limit: p("100") });
                l.side = Side::Buy;
                if v.place(&l).is_ok() {
                    let _ = v.cancel(l.id);
                }
            }
        }
    }
    let mut h = DefaultHasher::new();
    for e in &log {
        serde_json::to_string(e).unwrap().hash(&mut h);
    }
    (h.finish(), log.len())
}

#[test]
fn same_seed_same_log_different_seed_different_log() {
    let (a, n) = event_log(7);
    assert!(n > 10_000, "a busy log: {n}");
    assert_eq!(event_log(7), (a, n));
    assert_ne!(event_log(8).0, a);
}

async fn broker_log(seed: u64) -> Vec<String> {
    let s = Scenario::demo(seed);
    let b = SimBroker::new(s.venue().unwrap(), Speed::X60);
    let mut events = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&s.instruments()[..2]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id = b.next_order_id().await.unwrap();
    let o = order_with_id(id, spy(), Side::Buy, 5, OrderType::Market);
    b.place(&o).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut out = Vec::new();
    while let Some(Some(e)) = tokio::task::unconstrained(events.next()).now_or_never() {
        out.push(serde_json::to_string(&e).unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn sim_broker_is_deterministic_under_paused_time() {
    let a = broker_log(3).await;
    assert!(a.len() > 100, "{}", a.len());
    let statuses: Vec<_> = a.iter().filter(|e| e.contains("order_status")).collect();
    assert!(
        a.iter().any(|e| e.contains("\"kind\":\"execution\"")),
        "{statuses:?}"
    );
    assert_eq!(a, broker_log(3).await);
}
