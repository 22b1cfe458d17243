//! Order matching: every order type, partial fills, rejections, combos, cancels, sessions.

mod common;
use common::*;
use std::time::Duration;
use tradeguard_model::{
    BrokerError, BrokerEvent, ComboLeg, ComboOrder, OrderStatus, OrderType, Right, Side, Tif,
    Trail, stubs,
};
use tradeguard_sim::calendar;

#[test]
fn market_order_fills_at_the_touch_and_reports_like_ib() {
    let mut v = venue(cfg(1));
    let q = v.quote(&spy()).unwrap();
    assert_eq!((q.bid, q.ask), (Some(p("499.95")), Some(p("500.05"))));
    let cash_before = v.account().unwrap().net_liquidation;
    let id = place(&mut v, spy(), Side::Buy, 10, OrderType::Market);
    let evs = run(&mut v, 2);
    let kinds: Vec<&str> = evs.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            "order_status",
            "order_status",
            "execution",
            "order_status",
            "position",
            "account"
        ],
        "{evs:#?}"
    );
    let st: Vec<OrderStatus> = statuses(&evs, id).iter().map(|u| u.status).collect();
    assert_eq!(
        st,
        [
            OrderStatus::PendingSubmit,
            OrderStatus::Submitted,
            OrderStatus::Filled
        ]
    );
    let x = &execs(&evs)[0];
    assert_eq!(
        (x.qty, x.price, x.side, x.order_id),
        (10, p("500.05"), Side::Buy, Some(id))
    );
    assert_eq!(positions(&evs)[0].qty, 10);
    assert_eq!(statuses(&evs, id)[2].avg_fill_price, Some(p("500.05")));
    // Buying at the ask and marking at mid costs half the spread.
    let nlv = v.account().unwrap().net_liquidation;
    assert_eq!(
        cash_before.checked_sub(nlv).unwrap(),
        tradeguard_model::Money::parse("0.5").unwrap()
    );
    assert_eq!(v.executions_since(stubs::ts()).unwrap().len(), 1);
}

#[test]
fn market_order_slippage_is_adverse_and_bounded() {
    let mut c = cfg(2);
    c.matching.max_slippage_ticks = 3;
    let mut v = venue(c);
    let mut prices = Vec::new();
    for _ in 0..20 {
        place(&mut v, spy(), Side::Sell, 1, OrderType::Market);
        prices.extend(execs(&run(&mut v, 1)).iter().map(|x| x.price));
    }
    assert_eq!(prices.len(), 20);
    assert!(
        prices
            .iter()
            .all(|x| *x <= p("499.95") && *x >= p("499.92")),
        "{prices:?}"
    );
    assert!(
        prices.iter().any(|x| *x < p("499.95")),
        "some slippage expected"
    );
}

#[test]
fn limit_orders_fill_only_when_crossed() {
    let mut v = venue(cfg(3));
    let buy = place(
        &mut v,
        spy(),
        Side::Buy,
        5,
        OrderType::Limit { limit: p("499") },
    );
    let sell = place(
        &mut v,
        spy(),
        Side::Sell,
        5,
        OrderType::Limit { limit: p("502") },
    );
    let evs = run(&mut v, 5);
    assert!(execs(&evs).is_empty());
    assert_eq!(last_status(&evs, buy), Some(OrderStatus::Submitted));
    v.set_spot("SPY", p("498")).unwrap();
    let evs = run(&mut v, 1);
    let x = execs(&evs);
    assert_eq!(
        (x.len(), x[0].order_id, x[0].price),
        (1, Some(buy), p("498.05"))
    );
    v.set_spot("SPY", p("503")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!(
        (x.len(), x[0].order_id, x[0].price),
        (1, Some(sell), p("502.94"))
    );
}

#[test]
fn stop_triggers_and_gaps_through() {
    let mut v = venue(cfg(4));
    let id = place(
        &mut v,
        spy(),
        Side::Sell,
        3,
        OrderType::Stop { stop: p("495") },
    );
    assert!(execs(&run(&mut v, 5)).is_empty());
    v.set_spot("SPY", p("480")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].order_id, Some(id));
    assert!(
        x[0].price < p("495"),
        "gap fills through the stop: {}",
        x[0].price
    );
    // Buy stop.
    let id = place(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Stop { stop: p("490") },
    );
    assert!(execs(&run(&mut v, 2)).is_empty());
    v.set_spot("SPY", p("491")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!((x[0].order_id, x[0].price), (Some(id), p("491.05")));
}

#[test]
fn stop_limit_triggers_then_waits_for_its_limit() {
    let mut v = venue(cfg(5));
    let id = place(
        &mut v,
        spy(),
        Side::Sell,
        2,
        OrderType::StopLimit {
            stop: p("495"),
            limit: p("494"),
        },
    );
    v.set_spot("SPY", p("480")).unwrap();
    assert!(
        execs(&run(&mut v, 3)).is_empty(),
        "triggered but below the limit"
    );
    v.set_spot("SPY", p("496")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!(
        (x.len(), x[0].order_id, x[0].price),
        (1, Some(id), p("495.95"))
    );
}

#[test]
fn trailing_stop_follows_the_market() {
    let mut v = venue(cfg(6));
    let id = place(
        &mut v,
        spy(),
        Side::Sell,
        1,
        OrderType::TrailingStop {
            trail: Trail::Amount(p("2")),
        },
    );
    run(&mut v, 1);
    v.set_spot("SPY", p("505")).unwrap();
    run(&mut v, 1); // reference bid 504.94 -> stop 502.94
    v.set_spot("SPY", p("503.5")).unwrap();
    // bid 503.44 is above the trailed stop 502.94.
    assert!(execs(&run(&mut v, 1)).is_empty());
    v.set_spot("SPY", p("502.9")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!(
        (x.len(), x[0].order_id, x[0].price),
        (1, Some(id), p("502.84"))
    );

    let id = place(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::TrailingStop {
            trail: Trail::Percent(100),
        },
    );
    run(&mut v, 1); // ref ask 502.95, stop = 502.95 * 1.01 = 507.9795
    v.set_spot("SPY", p("490")).unwrap();
    run(&mut v, 1); // ref ask 490.05 -> stop 494.95
    v.set_spot("SPY", p("494")).unwrap();
    assert!(execs(&run(&mut v, 1)).is_empty());
    v.set_spot("SPY", p("495")).unwrap();
    let x = execs(&run(&mut v, 1));
    assert_eq!((x.len(), x[0].order_id), (1, Some(id)));
}

#[test]
fn partial_fills_add_up() {
    let mut c = cfg(7);
    c.matching.partial_fill_prob = 1.0;
    let mut v = venue(c);
    let id = place(&mut v, spy(), Side::Buy, 10, OrderType::Market);
    let evs = run(&mut v, 30);
    let x = execs(&evs);
    assert!(x.len() > 1, "several fills expected");
    assert_eq!(x.iter().map(|e| e.qty).sum::<i64>(), 10);
    let st = statuses(&evs, id);
    assert!(st.iter().any(|u| u.status == OrderStatus::PartiallyFilled));
    let last = st.last().unwrap();
    assert_eq!(
        (last.status, last.filled, last.remaining),
        (OrderStatus::Filled, 10, 0)
    );
    for w in st.windows(2) {
        assert!(w[1].filled >= w[0].filled);
    }
    assert_eq!(v.positions().unwrap()[0].qty, 10);
}

#[test]
fn rejections_are_typed() {
    let mut v = venue(cfg(8));
    let bad = order(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Limit { limit: p("0") },
    );
    assert_eq!(v.place(&bad).unwrap_err().code(), "broker.invalid_order");
    let id = place(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Limit {
            limit: p("499.995"),
        },
    );
    let st = statuses(&run(&mut v, 1), id);
    assert_eq!(st.last().unwrap().status, OrderStatus::Rejected);
    assert_eq!(
        st.last().unwrap().reason.as_ref().unwrap().code,
        "sim.invalid_price"
    );
    let id = place(&mut v, spy(), Side::Buy, 100_000, OrderType::Market);
    let st = statuses(&run(&mut v, 1), id);
    assert_eq!(
        st.last().unwrap().reason.as_ref().unwrap().code,
        "sim.insufficient_margin"
    );
    let dup = order(&mut v, spy(), Side::Buy, 1, OrderType::Market);
    v.place(&dup).unwrap();
    assert_eq!(v.place(&dup).unwrap_err().code(), "broker.rejected");

    let mut c = cfg(8);
    c.matching.random_reject_prob = 1.0;
    let mut v = venue(c);
    let id = place(&mut v, spy(), Side::Buy, 1, OrderType::Market);
    let st = statuses(&run(&mut v, 1), id);
    assert_eq!(
        st.last().unwrap().reason.as_ref().unwrap().code,
        "sim.random_reject"
    );
}

fn iron_condor(v: &mut tradeguard_sim::SimVenue, limit: OrderType) -> ComboOrder {
    let exp = chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap();
    let leg = |r, k, side| ComboLeg {
        instrument: opt(r, k, exp),
        side,
        ratio: 1,
    };
    ComboOrder {
        id: v.next_order_id().unwrap(),
        account: stubs::account(),
        legs: vec![
            leg(Right::Put, 470, Side::Buy),
            leg(Right::Put, 480, Side::Sell),
            leg(Right::Call, 520, Side::Sell),
            leg(Right::Call, 530, Side::Buy),
        ],
        qty: 2,
        order_type: limit,
        tif: Tif::Day,
    }
}

#[test]
fn combo_fills_as_a_package() {
    let mut c = cfg(9);
    c.underlyings[0].vol = 0.2;
    c.underlyings[0].drift = 0.0;
    c.market.step = Duration::from_secs(1);
    let mut v = venue(c);
    // Too greedy a credit never fills; a modest one does, all legs in one step.
    let greedy = iron_condor(&mut v, OrderType::Limit { limit: p("-50") });
    v.place_combo(&greedy).unwrap();
    let evs = run(&mut v, 3);
    assert!(execs(&evs).is_empty());
    let ok = iron_condor(&mut v, OrderType::Limit { limit: p("-0.01") });
    v.place_combo(&ok).unwrap();
    let evs = run(&mut v, 3);
    let x = execs(&evs);
    assert_eq!(x.len(), 4, "{evs:#?}");
    assert!(x.iter().all(|e| e.ts == x[0].ts && e.qty == 2));
    let st = statuses(&evs, ok.id);
    let last = st.last().unwrap();
    assert_eq!(last.status, OrderStatus::Filled);
    let net: i64 = x.iter().map(|e| e.side.sign() * e.price.raw()).sum();
    assert_eq!(last.avg_fill_price.unwrap().raw(), net);
    assert!(net <= p("-0.01").raw());
    assert_eq!(v.positions().unwrap().len(), 4);
}

#[test]
fn combo_fills_leg_by_leg_when_configured() {
    let mut c = cfg(10);
    c.underlyings[0].vol = 0.2;
    c.matching.combo_as_package = false;
    let mut v = venue(c);
    let o = iron_condor(&mut v, OrderType::Market);
    v.place_combo(&o).unwrap();
    let evs = run(&mut v, 10);
    let x = execs(&evs);
    assert_eq!(x.len(), 4);
    let mut ts: Vec<_> = x.iter().map(|e| e.ts).collect();
    ts.dedup();
    assert_eq!(ts.len(), 4, "one leg per step");
    assert_eq!(last_status(&evs, o.id), Some(OrderStatus::Filled));
}

#[test]
fn cancel_confirms_by_event() {
    let mut v = venue(cfg(11));
    let id = place(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Limit { limit: p("400") },
    );
    run(&mut v, 1);
    v.cancel(id).unwrap();
    let evs = run(&mut v, 1);
    let st: Vec<_> = statuses(&evs, id).iter().map(|u| u.status).collect();
    assert_eq!(st, [OrderStatus::PendingCancel, OrderStatus::Cancelled]);
    assert!(v.open_orders().unwrap().is_empty());
    assert_eq!(v.cancel(id).unwrap_err().code(), "broker.rejected");
    assert_eq!(
        v.cancel(tradeguard_model::OrderId(999)).unwrap_err(),
        BrokerError::UnknownOrder(tradeguard_model::OrderId(999))
    );
}

#[test]
fn day_orders_expire_and_sessions_gate_matching() {
    let mut v = venue(cfg(12));
    let day = place(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Limit { limit: p("400") },
    );
    let mut gtc = order(
        &mut v,
        spy(),
        Side::Buy,
        1,
        OrderType::Limit { limit: p("400") },
    );
    gtc.tif = Tif::Gtc;
    v.place(&gtc).unwrap();
    let until = calendar::et_time(date(), 16, 0).plus(Duration::from_secs(5));
    let evs = v.step(until);
    let st = statuses(&evs, day);
    assert_eq!(st.last().unwrap().status, OrderStatus::Cancelled);
    assert_eq!(
        st.last().unwrap().reason.as_ref().unwrap().code,
        "sim.day_expired"
    );
    assert_eq!(last_status(&evs, gtc.id), Some(OrderStatus::Submitted));
    // Overnight: a regular market order waits, an outside-RTH stock order fills.
    let rth = place(&mut v, spy(), Side::Buy, 1, OrderType::Market);
    let mut ext = order(&mut v, spy(), Side::Buy, 1, OrderType::Market);
    ext.outside_rth = true;
    v.place(&ext).unwrap();
    let x = execs(&run(&mut v, 60));
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].order_id, Some(ext.id));
    let open: Vec<_> = v
        .open_orders()
        .unwrap()
        .iter()
        .map(|o| o.status.order_id)
        .collect();
    assert!(open.contains(&rth) && open.contains(&gtc.id));
    let _ = BrokerEvent::kind;
}

/// Futures trade CME Globex's week: through the night (prices move, market orders fill), not
/// in the daily halt (an order rests until the 18:00 New York reopening), while options and
/// stock keep regular hours.
#[test]
fn futures_trade_through_the_night_but_rest_in_the_daily_halt() {
    let mut s = tradeguard_sim::Scenario::futures_demo(4);
    let tue = chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap();
    s.config.start = calendar::et_time(tue, 20, 0);
    let mnq = s.config.positions[0].instrument.clone();
    assert_eq!(mnq.id().as_str(), "MNQ 20250321 FUT", "the front quarter");
    let mut v = venue(s.config);
    let q0 = v.quote(&mnq).unwrap();
    let id = place(&mut v, mnq.clone(), Side::Sell, 1, OrderType::Market);
    let evs = run(&mut v, 2);
    assert_eq!(last_status(&evs, id), Some(OrderStatus::Filled), "{evs:#?}");
    v.subscribe_quotes(std::slice::from_ref(&mnq)).unwrap();
    let evs = run(&mut v, 600);
    assert!(
        evs.iter().any(|e| e.kind() == "quote"),
        "futures quote at night"
    );
    assert!(evs.iter().any(|e| e.kind() == "account"), "and the account");
    assert_ne!(v.quote(&mnq).unwrap().bid, q0.bid, "the price moved");

    // Wednesday 17:10: the daily halt.
    let wed = tue.succ_opt().unwrap();
    v.step(calendar::et_time(wed, 17, 10));
    let id = place(&mut v, mnq.clone(), Side::Sell, 1, OrderType::Market);
    let evs = run(&mut v, 60);
    assert_ne!(last_status(&evs, id), Some(OrderStatus::Filled));
    let before = calendar::et_time(wed, 17, 59);
    let evs = v.step(before);
    assert_ne!(
        last_status(&evs, id),
        Some(OrderStatus::Filled),
        "filled in the halt"
    );
    let evs = run(&mut v, 62);
    assert_eq!(last_status(&evs, id), Some(OrderStatus::Filled), "{evs:#?}");
    let fill = execs(&evs)[0].ts;
    assert!(
        fill >= calendar::et_time(wed, 18, 0),
        "filled at the reopening"
    );
}
