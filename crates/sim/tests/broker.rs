//! SimBroker: the async Broker adapter (events, snapshots, speed, lag notice).

mod common;
use common::*;
use futures::{FutureExt, StreamExt};
use std::time::Duration;
use tradeguard_model::{Broker, BrokerEvent, Notice, OrderStatus, OrderType, Side};
use tradeguard_sim::{Scenario, SimBroker, Speed, scenario::DEMO_ASSIGNMENT_AFTER};

#[tokio::test(start_paused = true)]
async fn demo_at_10x_shows_quotes_at_once_and_the_assignment_within_two_minutes() {
    let s = Scenario::demo(1);
    let b = SimBroker::new(s.venue().unwrap(), s.speed);
    assert!(b.capabilities().simulated && b.capabilities().native_combos);
    let mut ev = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&s.instruments()).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut first_quote = None;
    let mut assigned = None;
    while start.elapsed() < Duration::from_secs(120) && assigned.is_none() {
        let e = tokio::time::timeout(Duration::from_secs(1), ev.next()).await;
        match e {
            Ok(Some(BrokerEvent::Quote(_))) if first_quote.is_none() => {
                first_quote = Some(start.elapsed())
            }
            Ok(Some(BrokerEvent::Position(p)))
                if p.instrument.id().as_str() == "SPY   250321P00590000" && p.qty == -1 =>
            {
                assigned = Some(start.elapsed())
            }
            Ok(None) => panic!("stream ended"),
            _ => {}
        }
    }
    assert!(first_quote.unwrap() < Duration::from_secs(1));
    let at = assigned.expect("assignment within two minutes of wall time");
    assert!(
        at >= DEMO_ASSIGNMENT_AFTER / 10 && at < Duration::from_secs(120),
        "{at:?}"
    );
    let pos = b.positions().await.unwrap();
    assert_eq!(pos.iter().find(|p| p.instrument == spy()).unwrap().qty, 200);
}

#[tokio::test(start_paused = true)]
async fn orders_round_trip_through_the_trait() {
    let b = SimBroker::new(venue(cfg(5)), Speed::RealTime);
    let mut ev = b.events();
    b.connect().await.unwrap();
    let id = b.next_order_id().await.unwrap();
    let o = order_with_id(
        id,
        spy(),
        Side::Buy,
        2,
        OrderType::Limit { limit: p("400") },
    );
    b.place(&o).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.open_orders().await.unwrap().len(), 1);
    let wi = b.what_if(&o).await.unwrap().unwrap();
    assert!(wi.maintenance_change.is_positive());
    b.cancel(id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen = Vec::new();
    while let Some(Some(e)) = tokio::task::unconstrained(ev.next()).now_or_never() {
        if let BrokerEvent::OrderStatus(u) = e {
            seen.push(u.status);
        }
    }
    assert_eq!(
        seen,
        [
            OrderStatus::PendingSubmit,
            OrderStatus::Submitted,
            OrderStatus::PendingCancel,
            OrderStatus::Cancelled
        ]
    );
    b.disconnect().await.unwrap();
    assert_eq!(
        b.account().await.unwrap_err().code(),
        "broker.not_connected"
    );
}

#[tokio::test(start_paused = true)]
async fn lagging_subscriber_gets_a_dropped_events_notice() {
    let s = Scenario::demo(2);
    let b = SimBroker::new(s.venue().unwrap(), Speed::X60);
    let mut slow = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&s.instruments()).await.unwrap();
    // 9 instruments × 1 quote/s × 60 = 540 events per wall second; 8192 overflow in ~16 s.
    tokio::time::sleep(Duration::from_secs(40)).await;
    match slow.next().await {
        Some(BrokerEvent::Notice(n)) => {
            assert_eq!(n.code, Notice::EVENTS_DROPPED);
            assert!(n.text.contains("dropped"));
        }
        other => panic!("expected a dropped-events notice, got {other:?}"),
    }
    assert!(
        slow.next().await.is_some(),
        "stream continues after the notice"
    );
}

#[tokio::test(start_paused = true)]
async fn clock_reads_the_venues_virtual_time() {
    use tradeguard_model::Broker;
    let scenario = tradeguard_sim::Scenario::demo(1);
    let start = scenario.config.start;
    let broker = tradeguard_sim::SimBroker::new(
        scenario.venue().expect("venue"),
        tradeguard_sim::Speed::X10,
    );
    let clock = broker.clock();
    assert_eq!(clock.now(), start);
    broker.connect().await.expect("connect");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    // 6 s of (paused) wall time at 10x is one virtual minute.
    let elapsed = clock.now().duration_since(start);
    assert!(
        elapsed >= std::time::Duration::from_secs(55)
            && elapsed <= std::time::Duration::from_secs(61),
        "virtual time advanced {elapsed:?}"
    );
}

#[tokio::test]
async fn the_listing_has_weeklies_monthlies_and_strikes_around_the_price() {
    // Tuesday 2025-03-04, SPY at 500; Friday 2025-04-18 is Good Friday in the real calendar,
    // but the simulator's calendar is weekdays, so its monthly stays on the Friday.
    let b = SimBroker::new(venue(cfg(1)), tradeguard_sim::Speed::RealTime);
    let l = b.option_chain("SPY").await.unwrap();
    let d = |m, day| chrono::NaiveDate::from_ymd_opt(2025, m, day).unwrap();
    assert_eq!(l.expiries[0], d(3, 7));
    assert_eq!(l.expiries[7], d(4, 25));
    assert!(l.expiries.contains(&d(3, 21)) && l.expiries.contains(&d(5, 16)));
    assert!(l.expiries.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(l.strikes.first(), Some(&p("350")));
    assert_eq!(l.strikes.last(), Some(&p("650")));
    assert!(
        l.strikes
            .windows(2)
            .all(|w| w[1].raw() - w[0].raw() == p("5").raw())
    );
    assert!(
        l.contract(d(3, 21), tradeguard_model::Right::Put, p("480"))
            .is_some()
    );
    let e = b.option_chain("QQQ").await.unwrap_err();
    assert_eq!(e.code(), "broker.rejected");
    assert!(e.to_string().contains("QQQ"), "{e}");
}
