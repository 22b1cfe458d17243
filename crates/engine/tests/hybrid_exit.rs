//! The `stop_loss` rule's exit is the hybrid exit (issue "Open strategies through the guard"):
//! limit orders at the touch less 0.5 % for 2 s, and only once the broker has confirmed their
//! cancels, the rest at market.
//!
//! 1. The limits fill: one group of limit orders, the short bought back first, at or better
//!    than ask × 1.005; no market order.
//! 2. The market runs away while the first limit is on its way: it rests, is cancelled after
//!    2 s, and the market group is created only after the broker confirmed that cancel (the
//!    long leg of the limit group was never sent); the vertical ends flat.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::AssignmentConfig;
use tradeguard_engine::enforce::EnforceConfig;
use tradeguard_engine::{GroupPhase, LegState, MemoryJournal};
use tradeguard_model::{OrderType, Right, Side};

/// A put credit spread sold for 3.00 and worth about 5.90 with SPY at 500: a stop at half
/// the credit fires at once (the loss is about twice that).
fn vertical_cfg(seed: u64, latency_ms: u64) -> tradeguard_sim::SimConfig {
    let mut c = sim_cfg(seed);
    c.positions = vec![
        position(opt(Right::Put, 510), -2, "12"),
        position(opt(Right::Put, 500), 2, "9"),
    ];
    c.matching.latency = Duration::from_millis(latency_ms);
    c.matching.partial_fill_prob = 0.0;
    c
}

fn stop_loss_rules() -> Box<dyn tradeguard_engine::enforce::RuleEvaluator> {
    rules_file(
        "dry_run = false\n[[stop_loss]]\nid = \"sl\"\naction = \"flatten\"\ncredit_multiple = 0.5\n",
    )
}

/// The guard on `b` with the stop-loss rule.
async fn guarded(
    b: &Arc<tradeguard_sim::SimBroker>,
) -> (MemoryJournal, tradeguard_engine::enforce::Guard) {
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        b.clone(),
        start_ts(),
        &j,
        "500",
        EnforceConfig::default(),
        stop_loss_rules(),
        AssignmentConfig::default(),
    )
    .await;
    (j, g)
}

async fn flat(b: &tradeguard_sim::SimBroker) -> bool {
    qty_at_broker(b, &opt(Right::Put, 510)).await == 0
        && qty_at_broker(b, &opt(Right::Put, 500)).await == 0
}

#[tokio::test(start_paused = true)]
async fn a_stop_loss_exits_with_limits_at_the_touch_less_the_buffer() {
    let b = broker(vertical_cfg(31, 100));
    let ask = venue(&b)
        .lock()
        .unwrap()
        .quote(&opt(Right::Put, 510))
        .unwrap()
        .ask
        .unwrap();
    let (j, g) = guarded(&b).await;
    for _ in 0..300 {
        if flat(&b).await {
            break;
        }
        sleep_ms(100).await;
    }
    assert!(
        flat(&b).await,
        "the vertical is closed: {:#?} {:#?} {:#?}",
        audits(&j),
        alerts(&j),
        g.strategies()
    );
    let groups = group_records(&j);
    let ids: std::collections::BTreeSet<_> = groups.iter().map(|g| g.id).collect();
    assert_eq!(ids.len(), 1, "one group, no market follow-up: {groups:#?}");
    let last = groups.last().unwrap();
    assert_eq!(last.phase, GroupPhase::Completed);
    assert_eq!(last.intent.leg_timeout, Some(Duration::from_secs(2)));
    let buy = last
        .legs
        .iter()
        .find(|l| l.intent.side == Side::Buy)
        .unwrap();
    match buy.intent.order_type {
        OrderType::Limit { limit } => {
            // The ask when the stop fired × 1.005, rounded up to the dime (an option over $3:
            // a tick every class takes), within a hair of the ask at the start (the market
            // barely moved meanwhile), and the buy-back filled at or under it.
            assert_eq!(limit.raw() % 1_000, 0, "{limit} on the dime");
            let (l, a) = (limit.to_f64(), ask.to_f64());
            assert!(
                l > a && l <= a * 1.005 + 0.1 + 0.05,
                "{limit} vs ask {ask} at the start"
            );
            let fills: Vec<_> = executions(&b)
                .await
                .into_iter()
                .filter(|e| e.side == Side::Buy)
                .collect();
            assert!(
                !fills.is_empty() && fills.iter().all(|e| e.price <= limit),
                "{fills:?}"
            );
        }
        other => panic!("the short is bought back with a limit: {other:?}"),
    }
    assert!(
        last.legs
            .iter()
            .all(|l| matches!(l.intent.order_type, OrderType::Limit { .. })),
        "every leg a limit"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_limit_the_market_ran_from_is_cancelled_and_only_then_the_rest_goes_at_market() {
    let b = broker(vertical_cfg(32, 1_000));
    let (j, g) = guarded(&b).await;
    // The first limit is on its way (a second of latency): SPY falls 6 %, the 510 put's ask
    // runs far above the limit.
    let mut moved = false;
    for _ in 0..3_000 {
        if !group_records(&j).is_empty() {
            venue(&b)
                .lock()
                .unwrap()
                .set_spot("SPY", px("470"))
                .unwrap();
            moved = true;
            break;
        }
        sleep_ms(10).await;
    }
    assert!(moved, "the stop never fired");
    for _ in 0..600 {
        if flat(&b).await {
            break;
        }
        sleep_ms(100).await;
    }
    assert!(flat(&b).await, "the vertical ends flat");
    let groups = group_records(&j);
    let first = groups[0].id;
    let market = groups
        .iter()
        .find(|g| g.id != first)
        .expect("a market group followed");
    assert!(
        market
            .legs
            .iter()
            .all(|l| l.intent.order_type == OrderType::Market),
        "{market:#?}"
    );
    // The market group is journaled only after the limit group ended: every one of its
    // orders done at the broker (the buy-back cancelled and confirmed; the long never sent).
    let market_at = groups.iter().position(|g| g.id == market.id).unwrap();
    let first_done = groups
        .iter()
        .position(|g| g.id == first && g.phase.is_terminal())
        .expect("the limit group ended");
    assert!(first_done < market_at);
    let limit_group = &groups[first_done];
    let buy = limit_group
        .legs
        .iter()
        .find(|l| l.intent.side == Side::Buy)
        .unwrap();
    assert_eq!(buy.state, LegState::TimedOut, "{limit_group:#?}");
    let sell = limit_group
        .legs
        .iter()
        .find(|l| l.intent.side == Side::Sell)
        .unwrap();
    assert!(sell.order_id.is_none(), "the long was never sent alone");
    // What the market group closed is what was left: 2 each, nothing more.
    let qty = |side| {
        market
            .legs
            .iter()
            .filter(|l| l.intent.side == side)
            .map(|l| l.intent.qty)
            .sum::<i64>()
    };
    assert_eq!((qty(Side::Buy), qty(Side::Sell)), (2, 2));
    assert!(
        audits(&j).iter().any(|a| a.code == "close.hybrid_market"),
        "the switch to market is audited"
    );
    g.shutdown().await;
}
