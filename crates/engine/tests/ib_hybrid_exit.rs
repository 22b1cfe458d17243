//! The `stop_loss` rule's hybrid exit through the Interactive Brokers adapter (the real
//! `ibapi` client against the fake TWS, which fills only what the test fills): the buy-back of
//! the short call goes as a limit at the ask + 0.5 % on a dime; one of its two contracts fills;
//! after 2 s it is cancelled, and only once the gateway reports it Cancelled does the one
//! contract left go at market; the long is sold only after the short is bought back, at
//! market, never as a limit alone. Nothing more is sent.

mod common;
use common::{guard_on_ib, ib_broker, ib_quote as quote, until};
use std::time::Duration;
use tradeguard_engine::enforce::EnforceConfig;
use tradeguard_ibkr::fake_tws::{FakeTws, PlacedOrder};

const ACCOUNT: &str = "DU-HYBRID";

fn c510() -> tradeguard_ibkr::fake_tws::proto::Contract {
    FakeTws::option(41, "SPY", "20301220", "C", 510.0)
}
fn c520() -> tradeguard_ibkr::fake_tws::proto::Contract {
    FakeTws::option(42, "SPY", "20301220", "C", 520.0)
}

/// The orders placed for the call of `strike` (the adapter names options by their terms).
fn placed_for(f: &FakeTws, strike: f64) -> Vec<PlacedOrder> {
    f.placed()
        .into_iter()
        .filter(|p| p.contract.strike == Some(strike) && !p.order.what_if.unwrap_or(false))
        .collect()
}

fn status(f: &FakeTws, id: i32) -> String {
    f.order_states()
        .into_iter()
        .find(|s| s.0 == id)
        .map(|s| s.1)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hybrid_exit_on_ib_sends_market_only_after_the_gateway_confirms_the_cancel() {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    // A call credit spread sold for 0.70, now worth 2.00: the stop at half the credit fires.
    for (c, qty, avg, mid) in [(c510(), -2.0, 100.0, 3.0), (c520(), 2.0, 30.0, 1.0)] {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(mid));
        f.set_position(ACCOUNT, c, qty, avg);
    }
    let rules = common::rules_file(
        "dry_run = false\n[[stop_loss]]\nid = \"sl\"\naction = \"flatten\"\ncredit_multiple = 0.5\n",
    );
    let g = guard_on_ib(
        ib_broker(f.port(), 7, ACCOUNT),
        &[("SPY", "505")],
        EnforceConfig {
            eval_interval: Duration::from_millis(200),
            ..EnforceConfig::default()
        },
        rules,
    )
    .await;

    // The short first, as a limit: ask 3.05 × 1.005 = 3.065, up to the dime.
    let limit = until("the buy-back limit", || {
        placed_for(&f, 510.0).into_iter().next()
    })
    .await;
    assert_eq!(limit.order.action.as_deref(), Some("BUY"));
    assert_eq!(limit.order.order_type.as_deref(), Some("LMT"));
    assert_eq!(limit.order.lmt_price, Some(3.1));
    assert_eq!(limit.order.total_quantity.as_deref(), Some("2"));
    assert!(
        placed_for(&f, 520.0).is_empty(),
        "the long waits for the short"
    );
    assert!(f.fill(limit.order_id, 1.0, 3.05), "one of the two fills");

    // 2 s later the engine cancels it; the gateway confirms; only then the one left at market.
    let market = until("the market order for the rest", || {
        placed_for(&f, 510.0).into_iter().nth(1)
    })
    .await;
    assert_eq!(
        status(&f, limit.order_id),
        "Cancelled",
        "the limit's cancel was confirmed before the market order"
    );
    assert_eq!(market.order.order_type.as_deref(), Some("MKT"));
    assert_eq!(market.order.action.as_deref(), Some("BUY"));
    assert_eq!(
        market.order.total_quantity.as_deref(),
        Some("1"),
        "only what is left"
    );
    assert!(f.fill(market.order_id, 1.0, 3.05));

    // Then the long, at market, the whole 2.
    let sell = until("the long's sale", || {
        placed_for(&f, 520.0).into_iter().next()
    })
    .await;
    assert_eq!(sell.order.order_type.as_deref(), Some("MKT"));
    assert_eq!(sell.order.action.as_deref(), Some("SELL"));
    assert_eq!(sell.order.total_quantity.as_deref(), Some("2"));
    assert!(f.fill(sell.order_id, 2.0, 0.95));
    until("flat at the gateway", || {
        f.positions()
            .iter()
            .filter(|p| p.0 == ACCOUNT)
            .all(|p| p.2 == 0.0)
            .then_some(())
    })
    .await;
    // Nothing more: three orders in all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ours: Vec<_> = f
        .placed()
        .into_iter()
        .filter(|p| !p.order.what_if.unwrap_or(false))
        .collect();
    assert_eq!(ours.len(), 3, "{ours:#?}");
    g.shutdown().await;
}
