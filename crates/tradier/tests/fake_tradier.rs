//! `TradierBroker` against the fake Tradier over real HTTP and WebSockets: positions with
//! Tradier's list quirks, orders (single, multileg) with our id in the tag, fills from the growth
//! of executed quantity, cancels, rejections that come with HTTP 200, 429s, a lost placement
//! answer, assignment as a position change with no order, a close Tradier made itself, and the
//! account stream lost, silent and re-opened with a new session.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_model::{
    Broker, BrokerError, BrokerEvent, ComboLeg, ComboOrder, ConnectionState, EventStream,
    Instrument, OrderId, OrderRequest, OrderStatus, OrderType, Price, Side, SystemClock, Tif,
};
use tradeguard_tradier::fake::{FakeTradier, FakeTradierConfig, FillMode};
use tradeguard_tradier::{Token, TradierBroker, TradierSettings};

const T: Duration = Duration::from_secs(10);
const P440: &str = "SPY301220P00440000";
const P435: &str = "SPY301220P00435000";
const C460: &str = "SPY301220C00460000";
const C465: &str = "SPY301220C00465000";

async fn fake_with(cfg: FakeTradierConfig) -> FakeTradier {
    let f = FakeTradier::start(cfg).await.unwrap();
    for (s, b, a) in [
        ("SPY", 449.9, 450.1),
        (P440, 2.9, 3.1),
        (P435, 1.4, 1.6),
        (C460, 2.4, 2.6),
        (C465, 1.1, 1.3),
    ] {
        f.set_quote(s, b, a);
    }
    f
}

async fn fake() -> FakeTradier {
    fake_with(FakeTradierConfig::default()).await
}

fn settings(f: &FakeTradier) -> TradierSettings {
    let mut s = TradierSettings::at(f.api_url(), f.account(), Token::new(f.token()));
    s.poll = Duration::from_millis(500);
    s.stall = Duration::from_secs(2);
    s
}

async fn connected(f: &FakeTradier) -> (TradierBroker, EventStream) {
    let b = TradierBroker::new(settings(f), Arc::new(SystemClock)).unwrap();
    let ev = b.events();
    b.connect().await.unwrap();
    (b, ev)
}

fn opt(s: &str) -> Instrument {
    Instrument::from_occ(s).unwrap()
}

fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

async fn until<T>(ev: &mut EventStream, mut pick: impl FnMut(&BrokerEvent) -> Option<T>) -> T {
    tokio::time::timeout(T, async {
        loop {
            let e = ev.next().await.expect("event stream open");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("the event came in time")
}

async fn quiet(ev: &mut EventStream, d: Duration) -> Vec<BrokerEvent> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + d;
    while let Ok(Some(e)) = tokio::time::timeout_at(end, ev.next()).await {
        out.push(e);
    }
    out
}

async fn single(
    b: &TradierBroker,
    instrument: Instrument,
    side: Side,
    qty: i64,
    t: OrderType,
) -> OrderRequest {
    let o = OrderRequest {
        id: b.next_order_id().await.unwrap(),
        account: b.account_id().clone(),
        instrument,
        side,
        qty,
        order_type: t,
        tif: Tif::Day,
        outside_rth: false,
    };
    b.place(&o).await.unwrap();
    o
}

async fn status_of(
    ev: &mut EventStream,
    id: OrderId,
    want: OrderStatus,
) -> tradeguard_model::OrderUpdate {
    until(ev, |e| match e {
        BrokerEvent::OrderStatus(u) if u.order_id == id && u.status == want => Some(u.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn positions_come_through_every_list_shape_and_a_bad_token_is_said() {
    let f = fake().await;
    let (b, _ev) = connected(&f).await;
    assert!(
        b.positions().await.unwrap().is_empty(),
        "\"null\" is no positions"
    );
    f.set_position(P440, -2, -620.0);
    let one = b.positions().await.unwrap();
    assert_eq!(one.len(), 1, "a bare object is one position");
    assert_eq!(one[0].qty, -2);
    assert_eq!(
        one[0].avg_cost,
        px("3.10"),
        "cost_basis is a total: per share of a short"
    );
    f.set_position(P435, 2, 300.0);
    f.set_position("SPY", 100, 45_000.0);
    let many = b.positions().await.unwrap();
    assert_eq!(many.len(), 3);
    assert_eq!(
        many.iter()
            .find(|p| p.instrument == Instrument::stock("SPY"))
            .unwrap()
            .avg_cost,
        px("450")
    );

    let mut s = settings(&f);
    s.token = Token::new("wrong");
    let bad = TradierBroker::new(s, Arc::new(SystemClock)).unwrap();
    let e = bad.connect().await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    let mut s = settings(&f);
    s.account = "VA999".into();
    let other = TradierBroker::new(s, Arc::new(SystemClock)).unwrap();
    let e = other.connect().await.unwrap_err();
    assert!(
        e.to_string().contains("VA000001"),
        "names the token's accounts: {e}"
    );
}

#[tokio::test]
async fn an_option_order_carries_our_id_in_the_tag_and_fills_into_an_execution_and_a_position() {
    let f = fake().await;
    let (b, mut ev) = connected(&f).await;
    let o = single(
        &b,
        opt(P440),
        Side::Sell,
        2,
        OrderType::Limit { limit: px("2.90") },
    )
    .await;
    let exec = until(&mut ev, |e| match e {
        BrokerEvent::Execution(x) if x.order_id == Some(o.id) => Some(x.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (exec.qty, exec.side, exec.price),
        (2, Side::Sell, px("2.90"))
    );
    let done = status_of(&mut ev, o.id, OrderStatus::Filled).await;
    assert_eq!(done.filled, 2);
    let pos = until(&mut ev, |e| match e {
        BrokerEvent::Position(p) if p.instrument == opt(P440) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(pos.qty, -2);
    let placed = f.orders();
    assert_eq!(placed.len(), 1);
    assert_eq!(
        placed[0].tag.as_deref(),
        Some(format!("tg-{}", o.id).as_str())
    );
    assert_eq!(placed[0].parts[0].1, "sell_to_open");
    // Closing it says close (the fake refuses a close word without the position, and an open
    // word against it).
    let c = single(&b, opt(P440), Side::Buy, 2, OrderType::Market).await;
    status_of(&mut ev, c.id, OrderStatus::Filled).await;
    assert_eq!(f.orders()[1].parts[0].1, "buy_to_close");
    assert!(f.positions().is_empty());
    // Crossing zero is refused before anything is sent.
    f.set_position(P435, 1, 150.0);
    let o = OrderRequest {
        id: b.next_order_id().await.unwrap(),
        qty: 3,
        side: Side::Sell,
        ..o.clone()
    };
    let o = OrderRequest {
        instrument: opt(P435),
        ..o
    };
    let e = b.place(&o).await.unwrap_err();
    assert!(e.to_string().contains("cross zero"), "{e}");
    assert_eq!(f.orders().len(), 2);
}

#[tokio::test]
async fn an_iron_condor_is_one_multileg_order_filled_per_leg() {
    let f = fake().await;
    let (b, mut ev) = connected(&f).await;
    let leg = |s: &str, side| ComboLeg {
        instrument: opt(s),
        side,
        ratio: 1,
    };
    let c = ComboOrder {
        id: b.next_order_id().await.unwrap(),
        account: b.account_id().clone(),
        legs: vec![
            leg(P435, Side::Buy),
            leg(P440, Side::Sell),
            leg(C460, Side::Sell),
            leg(C465, Side::Buy),
        ],
        qty: 3,
        order_type: OrderType::Limit { limit: px("-2.00") },
        tif: Tif::Day,
    };
    b.place_combo(&c).await.unwrap();
    let done = status_of(&mut ev, c.id, OrderStatus::Filled).await;
    assert_eq!(done.filled, 3);
    let placed = &f.orders()[0];
    assert_eq!(placed.class, "multileg");
    let sides: Vec<_> = placed.parts.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(
        sides,
        ["buy_to_open", "sell_to_open", "sell_to_open", "buy_to_open"]
    );
    let held = f.positions();
    assert_eq!(held[P440], -3);
    assert_eq!(held[C465], 3);
    let mut b2 = b
        .executions_since(tradeguard_model::Timestamp(0))
        .await
        .unwrap();
    b2.retain(|e| e.order_id == Some(c.id));
    assert_eq!(b2.len(), 4, "one execution per leg: {b2:?}");
    assert!(b2.iter().all(|e| e.qty == 3));
}

#[tokio::test]
async fn a_partial_fill_then_the_rest_and_a_cancel_of_a_resting_order() {
    let f = fake_with(FakeTradierConfig {
        fill: FillMode::Manual,
        ..FakeTradierConfig::default()
    })
    .await;
    let (b, mut ev) = connected(&f).await;
    let o = single(
        &b,
        opt(P440),
        Side::Sell,
        3,
        OrderType::Limit { limit: px("3.00") },
    )
    .await;
    status_of(&mut ev, o.id, OrderStatus::Submitted).await;
    let tid = f.orders()[0].id;
    f.fill(tid, 1, Some(vec![3.0]));
    let part = status_of(&mut ev, o.id, OrderStatus::PartiallyFilled).await;
    assert_eq!((part.filled, part.remaining), (1, 2));
    f.fill(tid, 2, Some(vec![3.2]));
    let x = until(&mut ev, |e| match e {
        BrokerEvent::Execution(x) if x.order_id == Some(o.id) && x.qty == 2 => Some(x.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        x.price,
        px("3.20"),
        "the second fill's own price, from the averages"
    );
    status_of(&mut ev, o.id, OrderStatus::Filled).await;

    let r = single(
        &b,
        opt(P435),
        Side::Buy,
        1,
        OrderType::Limit { limit: px("0.50") },
    )
    .await;
    status_of(&mut ev, r.id, OrderStatus::Submitted).await;
    b.cancel(r.id).await.unwrap();
    status_of(&mut ev, r.id, OrderStatus::Cancelled).await;
    assert_eq!(f.orders()[1].status, "canceled");
    // A second cancel of a finished order is no error: its status already said.
    b.cancel(r.id).await.unwrap();
}

#[tokio::test]
async fn a_rejection_with_http_200_ends_the_order_and_a_refusal_is_an_error() {
    let f = fake().await;
    let (b, mut ev) = connected(&f).await;
    f.reject_next_downstream("Backoffice rejected: DayTradingBuyingPowerExceeded");
    let o = single(&b, opt(P440), Side::Sell, 1, OrderType::Market).await;
    let r = status_of(&mut ev, o.id, OrderStatus::Rejected).await;
    assert!(
        r.reason
            .unwrap()
            .text
            .contains("DayTradingBuyingPowerExceeded")
    );

    f.refuse_next("Invalid parameter, price: too far from the market");
    let o = OrderRequest {
        id: b.next_order_id().await.unwrap(),
        ..o
    };
    match b.place(&o).await {
        Err(BrokerError::Rejected { reason, .. }) => {
            assert!(reason.contains("too far"), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_waits_for_the_window_and_a_lost_answer_is_found_by_its_tag_not_sent_again() {
    let f = fake().await;
    let (b, mut ev) = connected(&f).await;
    f.set_position(P440, -1, -300.0);
    f.throttle_next(1);
    assert_eq!(
        b.positions().await.unwrap().len(),
        1,
        "read after the window"
    );

    f.lose_next_answer();
    let o = single(&b, opt(P440), Side::Buy, 1, OrderType::Market).await;
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
    assert_eq!(f.orders().len(), 1, "placed once: {:?}", f.orders());
    assert!(f.positions().is_empty());
}

#[tokio::test]
async fn an_assignment_is_a_position_change_with_no_execution() {
    let f = fake().await;
    f.set_position(P440, -2, -620.0);
    f.set_position(P435, 2, 300.0);
    let (_b, mut ev) = connected(&f).await;
    quiet(&mut ev, Duration::from_millis(700)).await;
    f.assign(P440, 1, "SPY", 100, 440.0);
    let mut seen = Vec::new();
    let evs = quiet(&mut ev, Duration::from_millis(1500)).await;
    for e in &evs {
        match e {
            BrokerEvent::Position(p) => seen.push((p.instrument.clone(), p.qty)),
            BrokerEvent::Execution(x) => panic!("an assignment has no execution: {x:?}"),
            _ => {}
        }
    }
    assert!(seen.contains(&(opt(P440), -1)), "{seen:?}");
    assert!(seen.contains(&(Instrument::stock("SPY"), 100)), "{seen:?}");
}

#[tokio::test]
async fn a_close_tradier_made_itself_is_an_execution_of_no_order_of_ours() {
    let f = fake().await;
    f.set_position(P440, -2, -620.0);
    let (_b, mut ev) = connected(&f).await;
    f.broker_close(P440, 0.05);
    let x = until(&mut ev, |e| match e {
        BrokerEvent::Execution(x) => Some(x.clone()),
        _ => None,
    })
    .await;
    assert_eq!((x.order_id, x.side, x.qty), (None, Side::Buy, 2));
    let p = until(&mut ev, |e| match e {
        BrokerEvent::Position(p) if p.instrument == opt(P440) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(p.qty, 0);
}

#[tokio::test]
async fn a_closed_or_silent_stream_is_reopened_with_a_new_session_and_fills_still_arrive() {
    let f = fake_with(FakeTradierConfig {
        heartbeat: Duration::from_millis(300),
        ..FakeTradierConfig::default()
    })
    .await;
    let (b, mut ev) = connected(&f).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = f.sessions_created();
    assert!(first >= 1);
    f.close_streams();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        f.sessions_created() > first,
        "a new session after the close"
    );

    f.silence_account_stream(true);
    let stalled = until(&mut ev, |e| match e {
        BrokerEvent::Connection(ConnectionState::Stalled { silent_ms }) => Some(*silent_ms),
        _ => None,
    })
    .await;
    assert!(stalled >= 1000, "{stalled}");
    let before = f.sessions_created();
    // Re-opened at once, with a new session.
    until(&mut ev, |e| {
        matches!(e, BrokerEvent::Connection(ConnectionState::Connected)).then_some(())
    })
    .await;
    assert!(f.sessions_created() > before);
    // Orders still fill while the stream is silent: the poll reads them.
    let o = single(&b, opt(P440), Side::Sell, 1, OrderType::Market).await;
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
}

#[tokio::test]
async fn option_quotes_carry_greeks_from_our_pricing_at_the_underlyings_live_price() {
    let f = fake().await;
    let (b, mut ev) = connected(&f).await;
    b.subscribe_quotes(&[opt(P440)]).await.unwrap();
    let q = until(&mut ev, |e| match e {
        BrokerEvent::Quote(q) if q.instrument == opt(P440) && q.greeks.is_some() => Some(q.clone()),
        _ => None,
    })
    .await;
    let g = q.greeks.unwrap();
    assert!(
        g.delta < 0.0 && g.delta > -0.5,
        "an out-of-the-money put: {g:?}"
    );
    assert_eq!(q.underlying_price, Some(px("450")));
    // A new underlying price moves them, through the market stream.
    f.set_quote("SPY", 439.9, 440.1);
    f.set_quote(P440, 7.9, 8.1);
    let moved = until(&mut ev, |e| match e {
        BrokerEvent::Quote(q)
            if q.instrument == opt(P440) && q.underlying_price == Some(px("440")) =>
        {
            q.greeks
        }
        _ => None,
    })
    .await;
    assert!(
        moved.delta < g.delta,
        "deeper in the money: {moved:?} vs {g:?}"
    );
}
