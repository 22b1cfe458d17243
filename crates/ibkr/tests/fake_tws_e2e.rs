//! End-to-end: the real `ibapi` client inside `IbBroker` against the fake TWS over loopback TCP.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_ibkr::fake_tws::{CancelMode, FakeTws, FakeTwsConfig, QuoteScript, proto};
use tradeguard_ibkr::{IbBroker, IbError, IbSettings};
use tradeguard_model::{
    Broker, BrokerEvent, ConnectionState, EventStream, OrderId, OrderStatus, OrderType, Price,
    Side, stubs,
};

const T: Duration = Duration::from_secs(5);

fn settings(port: u16) -> IbSettings {
    IbSettings {
        port,
        client_id: 7,
        account: "DU-TEST".into(),
        reconnect_initial_delay: Duration::from_millis(20),
        reconnect_max_delay: Duration::from_millis(100),
        request_timeout: T,
        ..IbSettings::default()
    }
}

fn broker(port: u16) -> IbBroker {
    IbBroker::new(
        settings(port),
        Arc::new(tradeguard_model::ManualClock::new(stubs::ts())),
    )
}

fn spy_put(con_id: i32, strike: f64) -> proto::Contract {
    FakeTws::option(con_id, "SPY", "20250117", "P", strike)
}

fn spy_call(con_id: i32, strike: f64) -> proto::Contract {
    FakeTws::option(con_id, "SPY", "20250117", "C", strike)
}

async fn fake() -> FakeTws {
    let f = FakeTws::start(FakeTwsConfig::default()).await.unwrap();
    for (id, s) in [(11, 430.0), (12, 440.0)] {
        f.add_contract(spy_put(id, s));
    }
    for (id, s) in [(21, 480.0), (22, 490.0)] {
        f.add_contract(spy_call(id, s));
    }
    f
}

/// Next event matching `pred` (others are skipped); panics after `T`.
async fn next_match(
    ev: &mut EventStream,
    what: &str,
    pred: impl Fn(&BrokerEvent) -> bool,
) -> BrokerEvent {
    tokio::time::timeout(T, async {
        loop {
            let e = ev.next().await.expect("event stream ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn status(
    ev: &mut EventStream,
    id: OrderId,
    s: OrderStatus,
) -> tradeguard_model::OrderUpdate {
    match next_match(
        ev,
        &format!("{id} {s:?}"),
        |e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_id == id && u.status == s),
    )
    .await
    {
        BrokerEvent::OrderStatus(u) => u,
        _ => unreachable!(),
    }
}

async fn execution(ev: &mut EventStream) -> tradeguard_model::Execution {
    match next_match(ev, "execution", |e| matches!(e, BrokerEvent::Execution(_))).await {
        BrokerEvent::Execution(x) => x,
        _ => unreachable!(),
    }
}

/// Collects every event until `quiet` passes with none (used to assert absence after a barrier).
async fn drain(ev: &mut EventStream, quiet: Duration) -> Vec<BrokerEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(quiet, ev.next()).await {
        out.push(e);
    }
    out
}

fn money(s: &str) -> tradeguard_model::Money {
    tradeguard_model::Money::parse(s).unwrap()
}

fn limit(s: &str) -> OrderType {
    OrderType::Limit {
        limit: Price::parse(s).unwrap(),
    }
}

#[tokio::test]
async fn connect_and_snapshot() {
    let f = fake().await;
    f.set_position("DU-TEST", spy_put(11, 430.0), -2.0, 125.0);
    f.set_position("DU-TEST", FakeTws::stock(1, "SPY"), 100.0, 450.5);
    for (tag, v) in [
        ("NetLiquidation", "100000.25"),
        ("MaintMarginReq", "20000"),
        ("InitMarginReq", "25000"),
        ("ExcessLiquidity", "80000.25"),
        ("BuyingPower", "300000.123456"),
    ] {
        f.set_account_value(tag, v);
    }
    f.set_pnl(150.5, -20.0, 10.0);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    next_match(&mut ev, "connected", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;

    let mut pos = b.positions().await.unwrap();
    pos.sort_by_key(|p| p.qty);
    assert_eq!(pos.len(), 2);
    assert_eq!(pos[0].instrument, stubs::put(430));
    assert_eq!(pos[0].qty, -2);
    assert_eq!(
        pos[0].avg_cost,
        Price::parse("1.25").unwrap(),
        "per share, not per contract"
    );
    assert_eq!(
        pos[1].instrument,
        tradeguard_model::Instrument::stock("SPY")
    );

    let a = b.account().await.unwrap();
    assert_eq!(a.account.as_str(), "DU-TEST");
    assert_eq!(a.net_liquidation, money("100000.25"));
    assert_eq!(a.buying_power, money("300000.1235"));
    assert_eq!(a.maintenance_margin, money("20000"));
    assert_eq!(a.excess_liquidity, money("80000.25"));
    let p = b.pnl().await.unwrap();
    assert_eq!(p.daily, money("150.5"));
    assert_eq!(p.unrealized, Some(money("-20")));

    // Order ids come from the gateway, never below the stored floor.
    let first = b.next_order_id().await.unwrap();
    assert!(first.0 >= 1);
    b.set_order_id_floor(500);
    assert_eq!(b.next_order_id().await.unwrap(), OrderId(501));
    assert_eq!(b.next_order_id().await.unwrap(), OrderId(502));

    // Option chain from contract details.
    let chain = b.option_chain("SPY", stubs::expiry()).await.unwrap();
    assert_eq!(chain.len(), 4);
    assert_eq!(
        chain
            .iter()
            .filter(|c| c.instrument.as_option().is_some())
            .count(),
        4
    );

    // Quotes with model Greeks from tick option computation.
    f.set_quote(
        spy_put(12, 440.0),
        QuoteScript {
            bid: 1.20,
            ask: 1.25,
            last: 1.22,
            bid_size: 10.0,
            ask_size: 12.0,
            greeks: Some((0.18, -0.35, 0.02, 0.11, -0.05, 445.0)),
        },
    );
    b.subscribe_quotes(&[stubs::put(440)]).await.unwrap();
    let q = next_match(
        &mut ev,
        "quote with greeks",
        |e| matches!(e, BrokerEvent::Quote(q) if q.greeks.is_some()),
    )
    .await;
    let BrokerEvent::Quote(q) = q else {
        unreachable!()
    };
    assert_eq!(
        (q.bid, q.ask),
        (
            Some(Price::parse("1.2").unwrap()),
            Some(Price::parse("1.25").unwrap())
        )
    );
    assert_eq!(q.bid_size, 10);
    let g = q.greeks.unwrap();
    assert!((g.delta + 0.35).abs() < 1e-12 && (g.iv - 0.18).abs() < 1e-12);
    assert_eq!(q.underlying_price, Some(Price::from_units(445).unwrap()));
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn single_order_partial_then_full_fill() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    let mut pev = b.events();
    b.connect().await.unwrap();
    let id = b.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Sell, 3, limit("1.50"));
    o.id = id;
    o.instrument = stubs::put(440);
    b.place(&o).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    let placed = f.placed();
    assert_eq!(placed[0].order.order_type.as_deref(), Some("LMT"));
    assert_eq!(placed[0].order.lmt_price, Some(1.5));
    assert_eq!(placed[0].order.action.as_deref(), Some("SELL"));

    assert!(f.fill(id.0 as i32, 1.0, 1.50));
    let x = execution(&mut ev).await;
    assert_eq!((x.qty, x.side, x.order_id), (1, Side::Sell, Some(id)));
    assert_eq!(x.commission, Some(money("0.65")));
    assert_eq!(x.ts, tradeguard_model::Timestamp::from_secs(1_736_780_401));
    let u = status(&mut ev, id, OrderStatus::PartiallyFilled).await;
    assert_eq!((u.filled, u.remaining), (1, 2));
    let p = next_match(&mut pev, "position", |e| {
        matches!(e, BrokerEvent::Position(_))
    })
    .await;
    let BrokerEvent::Position(p) = p else {
        unreachable!()
    };
    assert_eq!(p.qty, -1);

    assert!(f.fill(id.0 as i32, 2.0, 1.56));
    let x = execution(&mut ev).await;
    assert_eq!(x.qty, 2);
    let u = status(&mut ev, id, OrderStatus::Filled).await;
    assert_eq!((u.filled, u.remaining), (3, 0));
    assert_eq!(u.avg_fill_price, Some(Price::parse("1.54").unwrap()));
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn combo_order_sets_symbol_and_fills_per_leg() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let id = b.next_order_id().await.unwrap();
    let mut c = stubs::iron_condor_combo(id, 2, limit("-1.20"));
    // Use the strikes the fake knows.
    let strikes = [(430, true), (440, true), (480, false), (490, false)];
    for (leg, (k, put)) in c.legs.iter_mut().zip(strikes) {
        leg.instrument = if put { stubs::put(k) } else { stubs::call(k) };
    }
    b.place_combo(&c).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    let placed = f.placed();
    let bag = &placed[0].contract;
    assert_eq!(bag.sec_type.as_deref(), Some("BAG"));
    assert_eq!(
        bag.symbol.as_deref(),
        Some("SPY"),
        "TWS rejects combos without a symbol"
    );
    assert_eq!(bag.combo_legs.len(), 4);
    assert_eq!(placed[0].order.lmt_price, Some(-1.2));

    assert!(f.fill_combo(id.0 as i32, 1.0, -1.20, &[0.5, 1.1, 1.0, 0.4]));
    let mut legs = Vec::new();
    for _ in 0..4 {
        legs.push(execution(&mut ev).await);
    }
    let u = status(&mut ev, id, OrderStatus::PartiallyFilled).await;
    assert_eq!((u.filled, u.remaining), (1, 1));
    let mut insts: Vec<_> = legs.iter().map(|x| x.instrument.clone()).collect();
    insts.sort();
    let mut want: Vec<_> = c.legs.iter().map(|l| l.instrument.clone()).collect();
    want.sort();
    assert_eq!(
        insts, want,
        "one execution per leg, none for the BAG itself"
    );
    assert!(f.fill_combo(id.0 as i32, 1.0, -1.20, &[0.5, 1.1, 1.0, 0.4]));
    for _ in 0..4 {
        execution(&mut ev).await;
    }
    status(&mut ev, id, OrderStatus::Filled).await;
    let rest = drain(&mut ev, Duration::from_millis(200)).await;
    assert!(
        !rest.iter().any(|e| matches!(e, BrokerEvent::Execution(_))),
        "no extra executions: {rest:?}"
    );
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn cancel_confirmation_and_fill_during_cancel_race() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();

    let id = b.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Buy, 2, limit("1.00"));
    o.id = id;
    b.place(&o).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    b.cancel(id).await.unwrap();
    status(&mut ev, id, OrderStatus::PendingCancel).await;
    let u = status(&mut ev, id, OrderStatus::Cancelled).await;
    assert_eq!(u.remaining, 2);

    // The race: the order fills before the cancel reaches the exchange.
    f.set_cancel_mode(CancelMode::LateFill(0.95));
    let id2 = b.next_order_id().await.unwrap();
    o.id = id2;
    b.place(&o).await.unwrap();
    status(&mut ev, id2, OrderStatus::Submitted).await;
    b.cancel(id2).await.unwrap();
    status(&mut ev, id2, OrderStatus::PendingCancel).await;
    let x = execution(&mut ev).await;
    assert_eq!((x.order_id, x.qty), (Some(id2), 2));
    status(&mut ev, id2, OrderStatus::Filled).await;
    let notice = next_match(
        &mut ev,
        "notice 161",
        |e| matches!(e, BrokerEvent::Notice(n) if n.code == 161),
    )
    .await;
    assert!(matches!(notice, BrokerEvent::Notice(_)));
    let rest = drain(&mut ev, Duration::from_millis(200)).await;
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_id == id2)),
        "no status after Filled: {rest:?}"
    );
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn assignment_is_a_position_change_without_execution() {
    let f = fake().await;
    f.set_position("DU-TEST", spy_put(12, 440.0), -1.0, 150.0);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    assert_eq!(b.positions().await.unwrap().len(), 1);
    // Overnight: the short put is assigned; IB reports positions, no execution.
    f.set_position("DU-TEST", spy_put(12, 440.0), 0.0, 0.0);
    f.set_position("DU-TEST", FakeTws::stock(1, "SPY"), 100.0, 44_000.0);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let BrokerEvent::Position(p) = next_match(&mut ev, "positions", |e| {
            matches!(e, BrokerEvent::Position(_))
        })
        .await
        else {
            unreachable!()
        };
        if p.qty == 0 || p.instrument == tradeguard_model::Instrument::stock("SPY") {
            seen.push(p);
        }
    }
    assert_eq!(seen[0].instrument, stubs::put(440));
    assert_eq!(seen[0].qty, 0);
    assert_eq!(seen[1].qty, 100);
    let rest = drain(&mut ev, Duration::from_millis(150)).await;
    assert!(!rest.iter().any(|e| matches!(e, BrokerEvent::Execution(_))));
    let now: Vec<_> = b.positions().await.unwrap();
    assert_eq!(now.len(), 1, "closed position no longer listed");
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn disconnect_mid_group_reconnects_and_reconciles_exactly_once() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let mut ids = Vec::new();
    for k in [430, 440] {
        let id = b.next_order_id().await.unwrap();
        let mut o = stubs::order(Side::Sell, 2, limit("1.00"));
        o.id = id;
        o.instrument = stubs::put(k);
        b.place(&o).await.unwrap();
        status(&mut ev, id, OrderStatus::Submitted).await;
        ids.push(id);
    }
    // First leg partly fills while connected.
    f.fill(ids[0].0 as i32, 1.0, 1.0);
    let before = execution(&mut ev).await;
    status(&mut ev, ids[0], OrderStatus::PartiallyFilled).await;

    // The gateway drops us; fills happen during the outage; the id counter rolls back.
    let mut rec = b.events();
    f.set_next_valid_id(1);
    f.drop_connections();
    next_match(&mut ev, "connecting", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connecting)
    })
    .await;
    assert!(f.fill(ids[0].0 as i32, 1.0, 1.0));
    assert!(f.fill(ids[1].0 as i32, 1.0, 1.1));
    next_match(&mut ev, "reconnected", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;
    // Barrier: a round trip after Connected, so everything reconciled has been published.
    b.positions().await.unwrap();
    let all = drain(&mut rec, Duration::from_millis(200)).await;
    let execs: Vec<_> = all
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Execution(x) => Some(x.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(execs.len(), 2, "exactly the two outage fills: {execs:?}");
    assert!(
        execs.iter().all(|x| x.exec_id != before.exec_id),
        "no doubled fill"
    );
    assert!(execs.iter().all(|x| x.commission.is_some()));
    let last_status = |id: OrderId| {
        all.iter().rev().find_map(|e| match e {
            BrokerEvent::OrderStatus(u) if u.order_id == id => {
                Some((u.status, u.filled, u.remaining))
            }
            _ => None,
        })
    };
    assert_eq!(last_status(ids[0]), Some((OrderStatus::Filled, 2, 0)));
    assert_eq!(
        last_status(ids[1]),
        Some((OrderStatus::PartiallyFilled, 1, 1))
    );
    let pos: Vec<_> = b.positions().await.unwrap();
    assert_eq!(
        pos.iter().map(|p| p.qty).sum::<i64>(),
        -3,
        "positions resubscribed: {pos:?}"
    );
    let id_after = b.next_order_id().await.unwrap();
    assert!(
        id_after > ids[1],
        "ids never roll back: {id_after} after {}",
        ids[1]
    );
    // Live events flow again on the new session.
    assert!(f.fill(ids[1].0 as i32, 1.0, 1.1));
    execution(&mut ev).await;
    status(&mut ev, ids[1], OrderStatus::Filled).await;
    b.disconnect().await.unwrap();
}

#[tokio::test]
async fn bad_server_version_is_a_clear_error() {
    let f = FakeTws::start(FakeTwsConfig {
        server_version: 200,
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    let b = broker(f.port());
    let e = b.connect_ib().await.unwrap_err();
    assert_eq!(
        e,
        IbError::ServerVersionTooLow {
            need: 213,
            got: 200
        }
    );
    assert!(e.to_string().contains("update IB Gateway"));
}

#[tokio::test]
async fn refused_connection_is_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let b = broker(port);
    let e = b.connect_ib().await.unwrap_err();
    assert_eq!(e.code(), "ib.nothing_listening");
    let be = b.connect().await.unwrap_err();
    assert!(be.to_string().contains("nothing is listening"), "{be}");
}

#[tokio::test]
async fn read_only_api_rejects_orders_clearly_and_what_if_reports_margin() {
    let f = fake().await;
    f.set_what_if(proto::OrderState {
        status: Some("PreSubmitted".into()),
        init_margin_change: Some(1500.0),
        maint_margin_change: Some(1200.0),
        init_margin_after: Some(26_500.0),
        maint_margin_after: Some(21_200.0),
        commission_and_fees: Some(0.65),
        ..Default::default()
    });
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let o = stubs::order(Side::Sell, 1, limit("1.00"));
    let m = b.what_if(&o).await.unwrap().expect("margin impact");
    assert_eq!(m.initial_change, money("1500"));
    assert_eq!(m.maintenance_change, money("1200"));
    assert_eq!(m.maintenance_after, money("21200"));
    assert_eq!(f.placed().last().unwrap().order.what_if, Some(true));

    f.set_read_only(true);
    let id = b.next_order_id().await.unwrap();
    let mut o = o.clone();
    o.id = id;
    b.place(&o).await.unwrap();
    let u = status(&mut ev, id, OrderStatus::Rejected).await;
    let r = u.reason.unwrap();
    assert_eq!(r.code, "321");
    assert!(r.text.contains("Read-Only API"), "{}", r.text);
    b.disconnect().await.unwrap();
}

/// After a restart (or a crash) of the app, a new session with the same client id must see the
/// orders the earlier session left working — recovery cancels or adopts them; missing them made
/// the guard send a second exit for the same position.
#[tokio::test]
async fn a_new_session_lists_the_working_orders_of_an_earlier_one() {
    let f = fake().await;
    let first = broker(f.port());
    let mut ev = first.events();
    first.connect().await.unwrap();
    let id = first.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Sell, 3, limit("1.50"));
    o.id = id;
    o.instrument = stubs::put(440);
    first.place(&o).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    assert!(f.fill(id.0 as i32, 1.0, 1.50));
    first.disconnect().await.unwrap();
    drop(first);

    let second = broker(f.port());
    second.connect().await.unwrap();
    let open = second.open_orders().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let tradeguard_model::OpenOrderKind::Single(r) = &open[0].order else {
        panic!("a single order: {open:?}")
    };
    assert_eq!(
        (r.id, &r.instrument, r.side, r.qty, r.order_type),
        (id, &stubs::put(440), Side::Sell, 3, limit("1.50"))
    );
    assert_eq!(
        (
            open[0].status.status,
            open[0].status.filled,
            open[0].status.remaining
        ),
        (OrderStatus::PartiallyFilled, 1, 2)
    );
    second.disconnect().await.unwrap();
}

/// IB stamps executions to the whole second; "executions since" a time inside that second
/// still returns them (recovery counts fills by execution id, so more is safe, fewer is not).
#[tokio::test]
async fn executions_since_keeps_the_executions_of_the_same_second() {
    let f = fake().await;
    f.set_clock(1_800_000_000);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let id = b.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Buy, 1, limit("1.00"));
    o.id = id;
    b.place(&o).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    assert!(f.fill(id.0 as i32, 1.0, 1.0));
    let x = execution(&mut ev).await;
    let second = tradeguard_model::Timestamp::from_secs(1_800_000_001);
    assert_eq!(x.ts, second);
    let since = second.plus(Duration::from_millis(400));
    let got = b.executions_since(since).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.exec_id.clone()).collect::<Vec<_>>(),
        vec![x.exec_id.clone()]
    );
    let later = tradeguard_model::Timestamp::from_secs(1_800_000_002);
    assert!(b.executions_since(later).await.unwrap().is_empty());
    b.disconnect().await.unwrap();
}

/// The answers to an executions query are history, not live fills: a new session (after a
/// restart) that asks for the day's executions must not see them again as live events, or the
/// engine counts fills its journal already holds a second time (found by the CLI crash test).
#[tokio::test]
async fn executions_query_answers_are_not_published_as_live_fills() {
    let f = fake().await;
    let first = broker(f.port());
    let mut ev = first.events();
    first.connect().await.unwrap();
    let id = first.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Buy, 2, limit("1.00"));
    o.id = id;
    first.place(&o).await.unwrap();
    status(&mut ev, id, OrderStatus::Submitted).await;
    assert!(f.fill(id.0 as i32, 2.0, 1.0));
    let x = execution(&mut ev).await;
    first.disconnect().await.unwrap();
    drop(first);

    let second = broker(f.port());
    let mut ev = second.events();
    second.connect().await.unwrap();
    let got = second
        .executions_since(tradeguard_model::Timestamp(0))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.exec_id.clone()).collect::<Vec<_>>(),
        vec![x.exec_id.clone()],
        "the query answers"
    );
    // Barrier: one more round trip, then nothing may have arrived as a live execution.
    second.positions().await.unwrap();
    let rest = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !rest.iter().any(|e| matches!(e, BrokerEvent::Execution(_))),
        "history replayed as live fills: {rest:?}"
    );
    // Live fills still arrive.
    let id2 = second.next_order_id().await.unwrap();
    o.id = id2;
    second.place(&o).await.unwrap();
    status(&mut ev, id2, OrderStatus::Submitted).await;
    assert!(f.fill(id2.0 as i32, 2.0, 1.0));
    assert_eq!(execution(&mut ev).await.order_id, Some(id2));
    second.disconnect().await.unwrap();
}

// ---- Real TWS behaviours (issue "Real TWS, not our TWS"; crates/ibkr/README.md lists them) ----

/// Row 2: IB rejects some orders with a notice carrying the order's id and no order status
/// (103 duplicate id, 110 price off the minimum tick, 201 rejected with a reason): each ends
/// the order as Rejected with IB's code, never a working order for ever.
#[tokio::test]
async fn rejections_without_an_order_status_end_the_order() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let place = |px: &'static str| {
        let b = &b;
        async move {
            let id = b.next_order_id().await.unwrap();
            let mut o = stubs::order(Side::Sell, 1, limit(px));
            o.id = id;
            b.place(&o).await.unwrap();
            id
        }
    };
    for (code, text) in [
        (201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED."),
        (103, "Duplicate order id"),
    ] {
        f.reject_next_order(code, text);
        let id = place("1.00").await;
        let u = status(&mut ev, id, OrderStatus::Rejected).await;
        assert_eq!(u.reason.unwrap().code, code.to_string());
    }
    f.set_min_tick(Some(0.05));
    let id = place("1.03").await;
    let u = status(&mut ev, id, OrderStatus::Rejected).await;
    assert_eq!(u.reason.unwrap().code, "110");
    // A price on the tick is accepted.
    let ok = place("1.05").await;
    status(&mut ev, ok, OrderStatus::Submitted).await;
    assert!(
        !b.open_orders()
            .await
            .unwrap()
            .iter()
            .any(|o| o.status.order_id == id)
    );
    b.disconnect().await.unwrap();
}

/// Row 5: a completed order reports the quantity left unfilled in its total: an order of 10
/// cancelled at the gateway after 6 filled, learned only from the completed orders after a
/// reconnect, is Cancelled with 6 filled and 4 not, never "all done".
#[tokio::test]
async fn a_completed_order_cancelled_after_a_partial_fill_reports_what_was_left() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let id = working(&b, &mut ev, 10).await.id;
    assert!(f.fill(id.0 as i32, 6.0, 1.0));
    status(&mut ev, id, OrderStatus::PartiallyFilled).await;
    // The gateway goes down; meanwhile the order is cancelled there (the TWS user, the day's
    // end); the adapter learns it from the completed orders when it is back.
    f.set_down(true);
    next_match(&mut ev, "connecting", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connecting)
    })
    .await;
    assert!(f.cancel_at_gateway(id.0 as i32));
    f.set_down(false);
    let u = status(&mut ev, id, OrderStatus::Cancelled).await;
    assert_eq!((u.filled, u.remaining), (6, 4), "{u:?}");
    b.disconnect().await.unwrap();
}

/// Row 6: a gateway restart can roll IB's order ids back; placing an id it already used is
/// rejected with 103. The adapter never reuses one it has seen (the store gives a new process
/// the highest id ever sent: `set_order_id_floor`), and a reuse that happens anyway ends as a
/// rejection instead of a working order for ever.
#[tokio::test]
async fn an_order_id_the_gateway_already_used_is_rejected_and_the_floor_prevents_it() {
    let f = fake().await;
    let first = broker(f.port());
    let mut ev = first.events();
    first.connect().await.unwrap();
    let mut o = working(&first, &mut ev, 1).await;
    let used = o.id;
    assert!(f.fill(used.0 as i32, 1.0, 1.0));
    status(&mut ev, used, OrderStatus::Filled).await;
    first.disconnect().await.unwrap();

    // The gateway restarts with its counter rolled back to the id just used.
    f.set_next_valid_id(used.0 as i32);
    let fresh = broker(f.port());
    let mut ev = fresh.events();
    fresh.connect().await.unwrap();
    let reused = fresh.next_order_id().await.unwrap();
    assert_eq!(
        reused, used,
        "a process without the floor takes the gateway's word"
    );
    o.id = reused;
    o.instrument = stubs::put(430);
    fresh.place(&o).await.unwrap();
    let u = status(&mut ev, reused, OrderStatus::Rejected).await;
    assert_eq!(u.reason.unwrap().code, "103");
    fresh.disconnect().await.unwrap();

    let guarded = broker(f.port());
    guarded.set_order_id_floor(used.0);
    let mut ev = guarded.events();
    guarded.connect().await.unwrap();
    let next = guarded.next_order_id().await.unwrap();
    assert!(next > used, "{next} after {used}");
    o.id = next;
    guarded.place(&o).await.unwrap();
    status(&mut ev, next, OrderStatus::Submitted).await;
    guarded.disconnect().await.unwrap();
}

/// Row 1: IB sends -1 for a side it has no data for ("no data currently available"); the
/// adapter delivers no price for that side, never -1 as a price.
#[tokio::test]
async fn a_side_of_minus_one_is_no_price() {
    let f = fake().await;
    f.set_quote(
        spy_put(12, 440.0),
        QuoteScript {
            bid: -1.0,
            ask: 0.05,
            last: -1.0,
            bid_size: 0.0,
            ask_size: 12.0,
            greeks: None,
        },
    );
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&[stubs::put(440)]).await.unwrap();
    let BrokerEvent::Quote(q) =
        next_match(&mut ev, "quote", |e| matches!(e, BrokerEvent::Quote(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        (q.bid, q.ask, q.last),
        (None, Some(Price::parse("0.05").unwrap()), None)
    );
    assert_eq!(q.mid(), None, "a one-sided market has no mid");
    b.disconnect().await.unwrap();
}

/// Places a sell of `qty` at 1.50 and waits until the gateway works it; returns the order.
async fn working(b: &IbBroker, ev: &mut EventStream, qty: i64) -> tradeguard_model::OrderRequest {
    let mut o = stubs::order(Side::Sell, qty, limit("1.50"));
    o.id = b.next_order_id().await.unwrap();
    b.place(&o).await.unwrap();
    status(ev, o.id, OrderStatus::Submitted).await;
    o
}

/// Places a 2-lot sell and fills it at 1.50 through the fake; returns the order id.
async fn filled_two_lot(f: &FakeTws, b: &IbBroker, ev: &mut EventStream) -> OrderId {
    let id = working(b, ev, 2).await.id;
    assert!(f.fill(id.0 as i32, 2.0, 1.50));
    id
}

/// Row 4: IB corrects an execution with a new one whose id differs after the final period
/// ("….01" → "….02"). The correction replaces, never adds: no second fill on the stream, a
/// notice the guard alerts on and reconciles after, and one execution in the history.
#[tokio::test]
async fn an_execution_correction_replaces_the_fill_and_never_adds_one() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let since = tradeguard_model::Timestamp::from_secs(1_736_780_400);
    filled_two_lot(&f, &b, &mut ev).await;
    let x = execution(&mut ev).await;
    assert!(x.exec_id.as_str().ends_with(".01"), "{}", x.exec_id);
    let fix = f.correct_execution(x.exec_id.as_str(), 2.0, 1.45).unwrap();
    assert!(fix.ends_with(".02"));
    let n = next_match(&mut ev, "correction notice", |e| {
        matches!(e, BrokerEvent::Notice(n) if n.code == tradeguard_model::Notice::EXECUTION_CORRECTED)
    })
    .await;
    let BrokerEvent::Notice(n) = n else {
        unreachable!()
    };
    assert!(n.text.contains(x.exec_id.as_str()), "{}", n.text);
    let later = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !later.iter().any(|e| matches!(e, BrokerEvent::Execution(_))),
        "no second fill: {later:?}"
    );
    let history = b.executions_since(since).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].exec_id, x.exec_id, "the original's id");
    assert_eq!(
        history[0].price,
        Price::parse("1.45").unwrap(),
        "the corrected price"
    );
    b.disconnect().await.unwrap();
}

/// Row 4: TWS writes execution times in its login zone, and the commission report comes after
/// the execution: the time is the same instant, and the fill waits for its commission.
#[tokio::test]
async fn execution_times_in_the_gateways_zone_and_a_late_commission() {
    let f = fake().await;
    f.set_exec_time_zone(Some(chrono_tz::US::Eastern));
    f.hold_commissions(true);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    filled_two_lot(&f, &b, &mut ev).await;
    let early = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !early.iter().any(|e| matches!(e, BrokerEvent::Execution(_))),
        "the fill waits for its commission"
    );
    f.release_commissions();
    let x = execution(&mut ev).await;
    assert_eq!(x.commission, Some(money("1.30")));
    // 10:00:01 New York is 15:00:01 UTC.
    assert_eq!(x.ts, tradeguard_model::Timestamp::from_secs(1_736_780_401));
    b.disconnect().await.unwrap();
}

/// Row 4: the gateway answers execution requests with today's executions only (midnight New
/// York): after midnight yesterday's fills are gone from it, and the adapter says so instead of
/// returning a history that silently lacks them.
#[tokio::test]
async fn yesterdays_executions_are_gone_after_midnight_and_the_adapter_says_so() {
    let f = fake().await;
    // 23:59:00 New York (04:59 UTC next day).
    f.set_clock(1_736_830_740);
    let clock =
        tradeguard_model::ManualClock::new(tradeguard_model::Timestamp::from_secs(1_736_830_740));
    let b = IbBroker::new(settings(f.port()), Arc::new(clock.clone()));
    let mut ev = b.events();
    b.connect().await.unwrap();
    filled_two_lot(&f, &b, &mut ev).await;
    execution(&mut ev).await;
    let before_midnight = tradeguard_model::Timestamp::from_secs(1_736_830_700);
    assert_eq!(b.executions_since(before_midnight).await.unwrap().len(), 1);
    // Past midnight New York.
    f.set_clock(1_736_830_900);
    clock.set(tradeguard_model::Timestamp::from_secs(1_736_830_900));
    let mut notices = b.events();
    let after = b.executions_since(before_midnight).await.unwrap();
    assert!(
        after.is_empty(),
        "the gateway keeps today's only: {after:?}"
    );
    let n = next_match(
        &mut notices,
        "history notice",
        |e| matches!(e, BrokerEvent::Notice(n) if n.text.contains("before midnight")),
    )
    .await;
    println!("{n:?}");
    b.disconnect().await.unwrap();
}

/// Row 3: IB's connectivity notices: 1100 (IB ↔ gateway lost) is a lost connection though the
/// socket stays open; 1101 (restored, data lost) re-requests market data and reconciles;
/// 1102 (restored, data kept) reconciles.
#[tokio::test]
async fn connectivity_notices_are_connection_states_and_a_restore_re_reads() {
    let f = fake().await;
    f.set_quote(
        spy_put(12, 440.0),
        QuoteScript {
            bid: 1.20,
            ask: 1.25,
            last: 1.22,
            bid_size: 10.0,
            ask_size: 12.0,
            greeks: None,
        },
    );
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&[stubs::put(440)]).await.unwrap();
    next_match(&mut ev, "quote", |e| matches!(e, BrokerEvent::Quote(_))).await;
    let requests = f.received(proto::outgoing::REQ_MKT_DATA);
    f.notice(
        -1,
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
    );
    next_match(&mut ev, "lost", |e| {
        matches!(e, BrokerEvent::Connection(ConnectionState::Disconnected { reason }) if reason.starts_with("1100"))
    })
    .await;
    f.notice(
        -1,
        1101,
        "Connectivity between IB and Trader Workstation has been restored - data lost.",
    );
    next_match(&mut ev, "quote again", |e| {
        matches!(e, BrokerEvent::Quote(_))
    })
    .await;
    next_match(&mut ev, "restored", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;
    assert!(
        f.received(proto::outgoing::REQ_MKT_DATA) > requests,
        "market data re-requested"
    );
    f.notice(
        -1,
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
    );
    let executions = f.received(proto::outgoing::REQ_EXECUTIONS);
    f.notice(
        -1,
        1102,
        "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    );
    next_match(&mut ev, "restored", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;
    assert!(
        f.received(proto::outgoing::REQ_EXECUTIONS) > executions,
        "fills of the gap re-read"
    );
    b.disconnect().await.unwrap();
}

/// An order that never reached IB (the connection dropped as it went out) is neither open nor
/// completed after the reconnect and has no execution: it ends as Rejected `broker.order_lost`,
/// never "sent" for ever (found by the IB simulation, seed 75).
#[tokio::test]
async fn an_order_lost_in_a_disconnect_ends_after_the_reconnect() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    f.lose_next_order();
    let id = b.next_order_id().await.unwrap();
    let mut o = stubs::order(Side::Sell, 1, limit("1.00"));
    o.id = id;
    // The write may or may not see the socket close first.
    let _ = b.place(&o).await;
    let u = status(&mut ev, id, OrderStatus::Rejected).await;
    assert_eq!(
        u.reason.unwrap().code,
        tradeguard_model::StatusReason::ORDER_LOST
    );
    assert!(f.placed().is_empty(), "it never reached the gateway");
    // An order that did reach it is not touched by the same reconciliation.
    let id2 = working(&b, &mut ev, 1).await.id;
    f.drop_connections();
    next_match(&mut ev, "reconnected", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;
    b.positions().await.unwrap();
    let after = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !after.iter().any(|e| matches!(e, BrokerEvent::OrderStatus(u) if u.order_id == id2 && u.status.is_terminal())),
        "{after:?}"
    );
    b.disconnect().await.unwrap();
}

/// The statuses of one order on the stream until `quiet` passes with none.
async fn statuses_of(ev: &mut EventStream, id: OrderId, quiet: Duration) -> Vec<OrderStatus> {
    drain(ev, quiet)
        .await
        .into_iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderStatus(u) if u.order_id == id => Some(u.status),
            _ => None,
        })
        .collect()
}

/// Row 7: `Inactive` is not the end of an order. IB holds an order it accepted without
/// working it ("due to system, exchange or other issues. When the order becomes active, the
/// order status … will change"): it is reported Inactive, with IB's reason, and stays open;
/// when it becomes active again and fills, the fill and Filled reach the engine. (Read as a
/// rejection, as before, the later fill was dropped as a status "after the end", and a guard
/// would have sent a second order for a quantity the first one then bought.)
#[tokio::test]
async fn a_temporary_inactive_order_stays_open_and_its_later_fill_counts() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let id = working(&b, &mut ev, 2).await.id;
    assert!(f.set_order_status(id.0 as i32, "Inactive", "exchange closed"));
    let u = status(&mut ev, id, OrderStatus::Inactive).await;
    let why = u.reason.expect("the reason travels with the status");
    assert_eq!(why.code, tradeguard_model::StatusReason::INACTIVE);
    assert!(why.text.contains("exchange closed"), "{}", why.text);
    assert!(
        b.open_orders()
            .await
            .unwrap()
            .iter()
            .any(|o| o.status.order_id == id),
        "an Inactive order is still open"
    );
    assert!(f.set_order_status(id.0 as i32, "Submitted", ""));
    status(&mut ev, id, OrderStatus::Submitted).await;
    assert!(f.fill(id.0 as i32, 2.0, 1.50));
    let x = execution(&mut ev).await;
    assert_eq!((x.order_id, x.qty), (Some(id), 2));
    status(&mut ev, id, OrderStatus::Filled).await;
    b.disconnect().await.unwrap();
}

/// Row 7: `ApiCancelled` (our cancel sent before IB acknowledged the order) is a cancel under
/// way, not its end: the engine sees PendingCancel, and the order's real end follows. A fill
/// after it is a fill (a stop that had sent its market exit on ApiCancelled would have sold
/// twice); with no word after it, the cancel is asked again and IB's answer (10148 "state:
/// ApiCancelled") ends it as Cancelled, without anyone waiting for ever.
#[tokio::test]
async fn api_cancelled_is_a_cancel_under_way_and_its_end_comes_from_ib() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    // The order was working after all: it fills after the ApiCancelled.
    f.set_cancel_mode(CancelMode::ApiCancelled {
        then_fill: Some(1.45),
    });
    let id = working(&b, &mut ev, 2).await.id;
    b.cancel(id).await.unwrap();
    let x = execution(&mut ev).await;
    assert_eq!((x.order_id, x.qty), (Some(id), 2));
    status(&mut ev, id, OrderStatus::Filled).await;
    // No final word: asked again after 2 s, ended by IB's answer.
    f.set_cancel_mode(CancelMode::ApiCancelled { then_fill: None });
    let id = working(&b, &mut ev, 2).await.id;
    b.cancel(id).await.unwrap();
    let seen = statuses_of(&mut ev, id, Duration::from_millis(500)).await;
    assert_eq!(seen, vec![OrderStatus::PendingCancel], "not ended yet");
    let u = status(&mut ev, id, OrderStatus::Cancelled).await;
    assert_eq!(u.reason.expect("IB's answer").code, "10148");
    assert_eq!(u.remaining, 2);
    b.disconnect().await.unwrap();
}

/// Row 7: PreSubmitted (a stop IB holds until elected) is working; statuses IB sends twice
/// reach the engine once; a Submitted with nothing remaining (IB sends one around the last
/// fill) is the fill, and nothing after Filled reopens the order.
#[tokio::test]
async fn presubmitted_is_working_and_repeated_statuses_are_published_once() {
    let f = fake().await;
    f.duplicate_statuses(true);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let mut o = stubs::order(
        Side::Sell,
        2,
        OrderType::StopLimit {
            stop: Price::parse("1.20").unwrap(),
            limit: Price::parse("1.10").unwrap(),
        },
    );
    o.id = b.next_order_id().await.unwrap();
    b.place(&o).await.unwrap();
    let id = o.id;
    let seen = statuses_of(&mut ev, id, Duration::from_millis(300)).await;
    assert_eq!(seen, vec![OrderStatus::Submitted], "once, working");
    assert_eq!(
        f.order_states()
            .iter()
            .find(|s| s.0 == id.0 as i32)
            .map(|s| s.1.clone())
            .as_deref(),
        Some("PreSubmitted")
    );
    assert!(f.fill(id.0 as i32, 1.0, 1.15));
    assert!(f.set_order_status(id.0 as i32, "Submitted", ""));
    assert!(f.fill(id.0 as i32, 1.0, 1.15));
    // IB's Submitted with nothing remaining: no second Filled, no reopening.
    assert!(f.set_order_status(id.0 as i32, "Submitted", ""));
    let seen = statuses_of(&mut ev, id, Duration::from_millis(300)).await;
    assert_eq!(
        seen,
        vec![OrderStatus::PartiallyFilled, OrderStatus::Filled],
        "each once, nothing after Filled"
    );
    b.disconnect().await.unwrap();
}

/// The texts of the "no live market data" notices on the stream until `quiet` passes.
async fn no_data_notices(ev: &mut EventStream, quiet: Duration) -> (Vec<String>, Vec<BrokerEvent>) {
    let all = drain(ev, quiet).await;
    let said = all
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Notice(n)
                if n.code == tradeguard_model::Notice::MARKET_DATA_UNAVAILABLE =>
            {
                Some(n.text.clone())
            }
            _ => None,
        })
        .collect();
    (said, all)
}

/// Row 9: market data IB will not give. A subscription refused with 354 (not subscribed) ends
/// with no ticks; one answered with 10167 sends delayed ticks (15–20 minutes old) under their
/// own tick types. Each is said once, naming the instrument (the guard alerts on it), and no
/// delayed price ever becomes a quote a stop could trigger on. The data farms' "OK" notices at
/// connect are no alarm; a farm that breaks (2103) is.
#[tokio::test]
async fn market_data_ib_will_not_give_is_said_and_delayed_prices_are_never_quotes() {
    let f = fake().await;
    f.set_quote(spy_put(11, 430.0), QuoteScript::around(1.00));
    f.set_quote(spy_put(12, 440.0), QuoteScript::around(2.00));
    f.set_quote(spy_call(21, 480.0), QuoteScript::around(3.00));
    f.refuse_market_data(
        spy_put(12, 440.0),
        354,
        "Requested market data is not subscribed.",
    );
    f.delayed_market_data_only(spy_put(11, 430.0));
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let (said, _) = no_data_notices(&mut ev, Duration::from_millis(300)).await;
    assert!(
        said.is_empty(),
        "the farms' OK notices are no alarm: {said:?}"
    );
    let put = |s: i64| stubs::put(s);
    b.subscribe_quotes(&[put(430), put(440), stubs::call(480)])
        .await
        .unwrap();
    let (said, all) = no_data_notices(&mut ev, Duration::from_millis(500)).await;
    assert_eq!(said.len(), 2, "{said:#?}");
    let of = |s: i64| said.iter().find(|t| t.contains(&put(s).id().0)).cloned();
    assert!(of(440).is_some_and(|t| t.contains("354")), "{said:#?}");
    assert!(of(430).is_some_and(|t| t.contains("10167")), "{said:#?}");
    let quoted: Vec<String> = all
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Quote(q) => Some(q.instrument.id().0),
            _ => None,
        })
        .collect();
    assert!(
        quoted.iter().all(|q| *q == stubs::call(480).id().0) && !quoted.is_empty(),
        "only the live market is quoted: {quoted:?}"
    );
    f.notice(-1, 2103, "Market data farm connection is broken:usfarm");
    let (said, _) = no_data_notices(&mut ev, Duration::from_millis(300)).await;
    assert!(said.len() == 1 && said[0].contains("2103"), "{said:#?}");
    b.disconnect().await.unwrap();
}

/// Row 11: IB's limits. Account summaries: at most two subscriptions open at once (322 for a
/// third): the adapter ends each one it reads, so reading the account again and again never
/// hits the limit. Messages: at most 50 a second (100 "Max rate of messages per second has
/// been exceeded", the message dropped): a burst of orders (a large flatten's child orders)
/// is paced under it, every order arrives and none is refused.
#[tokio::test]
async fn ibs_limits_are_kept_account_summaries_and_message_rate() {
    let f = fake().await;
    for (tag, v) in [
        ("NetLiquidation", "100000"),
        ("MaintMarginReq", "0"),
        ("InitMarginReq", "0"),
        ("ExcessLiquidity", "100000"),
        ("BuyingPower", "400000"),
    ] {
        f.set_account_value(tag, v);
    }
    f.set_max_messages_per_sec(Some(50));
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    for n in 0..5 {
        let a = b.account().await;
        assert!(a.is_ok(), "read {n}: {a:?}");
    }
    let mut ids = Vec::new();
    for _ in 0..120 {
        let mut o = stubs::order(Side::Sell, 1, limit("1.50"));
        o.id = b.next_order_id().await.unwrap();
        b.place(&o).await.unwrap();
        ids.push(o.id);
    }
    assert!(
        f.wait_for(T, |f| f.placed().len() >= 120).await,
        "every order arrives: {}",
        f.placed().len()
    );
    let seen = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, BrokerEvent::Notice(n) if n.code == 100 || n.code == 322)),
        "no limit hit: {:?}",
        seen.iter()
            .filter(|e| matches!(e, BrokerEvent::Notice(_)))
            .collect::<Vec<_>>()
    );
    b.disconnect().await.unwrap();
}

/// Row 11: when IB drops requests anyway (its limit lower than ours, another program on the
/// same session), it says 100 and nothing else: an order it dropped would be "sent" for ever.
/// The adapter says so (the guard alerts) and reconciles once the burst is over; every order
/// the gateway never got ends as Rejected `broker.order_lost` (the assignment guard sends such
/// a step again), every other one is working.
#[tokio::test]
async fn orders_ib_dropped_over_its_message_rate_end_as_lost() {
    let f = fake().await;
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    f.set_max_messages_per_sec(Some(20));
    let mut ids = Vec::new();
    for _ in 0..40 {
        let mut o = stubs::order(Side::Sell, 1, limit("1.50"));
        o.id = b.next_order_id().await.unwrap();
        b.place(&o).await.unwrap();
        ids.push(o.id);
    }
    let mut ends: std::collections::BTreeMap<OrderId, OrderStatus> = Default::default();
    let mut dropped_said = false;
    // A reconciliation whose own requests are dropped is tried again (each waits up to T).
    let deadline = tokio::time::Instant::now() + 4 * T;
    while ends.len() < ids.len() && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), ev.next()).await {
            Ok(Some(BrokerEvent::Notice(n)))
                if n.code == tradeguard_model::Notice::REQUESTS_DROPPED =>
            {
                dropped_said = true;
            }
            Ok(Some(BrokerEvent::OrderStatus(u))) if ids.contains(&u.order_id) => {
                if u.status == OrderStatus::Rejected {
                    assert_eq!(
                        u.reason.as_ref().map(|r| r.code.as_str()),
                        Some(tradeguard_model::StatusReason::ORDER_LOST)
                    );
                }
                ends.insert(u.order_id, u.status);
            }
            _ => {}
        }
    }
    assert!(dropped_said, "the dropped requests are said");
    let at_gateway: std::collections::BTreeSet<i64> =
        f.placed().iter().map(|p| i64::from(p.order_id)).collect();
    assert!(at_gateway.len() < 40, "the fake dropped some");
    for id in &ids {
        let want = if at_gateway.contains(&id.0) {
            OrderStatus::Submitted
        } else {
            OrderStatus::Rejected
        };
        assert_eq!(ends.get(id), Some(&want), "order {id}: {ends:?}");
    }
    b.disconnect().await.unwrap();
}

/// Row 3, the gap itself: between 1100 and 1101 the socket stays up but nothing comes through,
/// and an order fills at IB meanwhile. After "restored - data lost" the adapter asks for the
/// quotes again and reconciles: the gap's fill and the order's end reach the engine once.
#[tokio::test]
async fn a_fill_during_a_connectivity_gap_arrives_after_the_restore() {
    let f = fake().await;
    f.set_quote(spy_put(12, 440.0), QuoteScript::around(1.20));
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    b.subscribe_quotes(&[stubs::put(440)]).await.unwrap();
    next_match(&mut ev, "quote", |e| matches!(e, BrokerEvent::Quote(_))).await;
    let id = working(&b, &mut ev, 2).await.id;
    f.connectivity_lost();
    next_match(&mut ev, "lost", |e| {
        matches!(
            e,
            BrokerEvent::Connection(ConnectionState::Disconnected { .. })
        )
    })
    .await;
    assert!(f.fill(id.0 as i32, 2.0, 1.50));
    let quiet = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !quiet
            .iter()
            .any(|e| matches!(e, BrokerEvent::Execution(_) | BrokerEvent::OrderStatus(_))),
        "nothing comes through the gap: {quiet:?}"
    );
    let requests = f.received(proto::outgoing::REQ_MKT_DATA);
    f.connectivity_restored(true);
    let x = execution(&mut ev).await;
    assert_eq!((x.order_id, x.qty), (Some(id), 2));
    status(&mut ev, id, OrderStatus::Filled).await;
    let rest = drain(&mut ev, Duration::from_millis(300)).await;
    assert!(
        !rest.iter().any(|e| matches!(e, BrokerEvent::Execution(_))),
        "the fill once: {rest:?}"
    );
    assert!(
        f.received(proto::outgoing::REQ_MKT_DATA) > requests,
        "quotes asked for again"
    );
    b.disconnect().await.unwrap();
}

/// Row 3, positions: an assignment that lands during a connectivity gap (the short put gone,
/// the shares delivered) is never pushed. After "restored - data maintained" the adapter takes
/// a fresh positions snapshot, so its positions, which the guard's reconciliation reads, are
/// the account's; before, they stayed as they were before the gap, and the assignment went
/// unseen.
#[tokio::test]
async fn positions_changed_during_a_connectivity_gap_are_read_after_the_restore() {
    let f = fake().await;
    f.set_position("DU-TEST", spy_put(12, 440.0), -2.0, 300.0);
    let b = broker(f.port());
    let mut ev = b.events();
    b.connect().await.unwrap();
    let before = b.positions().await.unwrap();
    assert_eq!(before.len(), 1);
    f.connectivity_lost();
    next_match(&mut ev, "lost", |e| {
        matches!(
            e,
            BrokerEvent::Connection(ConnectionState::Disconnected { .. })
        )
    })
    .await;
    f.set_position("DU-TEST", spy_put(12, 440.0), 0.0, 0.0);
    f.add_contract(FakeTws::stock(1, "SPY"));
    f.set_position("DU-TEST", FakeTws::stock(1, "SPY"), 200.0, 440.0);
    f.connectivity_restored(false);
    next_match(&mut ev, "restored", |e| {
        *e == BrokerEvent::Connection(ConnectionState::Connected)
    })
    .await;
    let after = b.positions().await.unwrap();
    let held: Vec<(String, i64)> = after.iter().map(|p| (p.instrument.id().0, p.qty)).collect();
    assert_eq!(held, vec![("SPY".to_owned(), 200)], "{after:#?}");
    b.disconnect().await.unwrap();
}
