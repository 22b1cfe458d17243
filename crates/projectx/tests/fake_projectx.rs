//! `ProjectxBroker` against the fake ProjectX over HTTP and SignalR: connect, positions, orders
//! with our id in `customTag`, fills (arriving before the placement answer), cancels, a lost
//! answer found by its tag, 429, the firm's flatten, the account locked mid-session, a silent
//! hub re-opened and re-subscribed, a malformed record, hubs closed by the server.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_model::{
    Broker, BrokerError, BrokerEvent, ConnectionState, EventStream, Instrument, OrderId,
    OrderRequest, OrderStatus, OrderType, Price, Side, SystemClock, Tif,
};
use tradeguard_projectx::fake::{FakeProjectx, FakeProjectxConfig};
use tradeguard_projectx::{ACCOUNT_LOCKED, ApiKey, Hosts, ProjectxBroker, ProjectxSettings};

const T: Duration = Duration::from_secs(10);
const MNQ: &str = "CON.F.US.MNQ.Z26";

async fn fake_with(cfg: FakeProjectxConfig) -> FakeProjectx {
    // Pings well inside the adapter's 2 s stall (as SignalR's 15 s are inside its 45 s).
    let f = FakeProjectx::start(FakeProjectxConfig {
        ping: cfg.ping.min(Duration::from_millis(300)),
        ..cfg
    })
    .await
    .unwrap();
    f.set_quote(MNQ, 21_000.0, 21_000.25);
    f
}

fn settings(f: &FakeProjectx) -> ProjectxSettings {
    let c = f.config();
    let mut s = ProjectxSettings::new(
        Hosts::custom(&f.url(), &f.url()),
        &c.user,
        ApiKey::new(c.api_key.clone()),
        &c.account,
    );
    s.poll = Duration::from_millis(500);
    s.stall = Duration::from_secs(2);
    s
}

async fn connected(f: &FakeProjectx) -> (ProjectxBroker, EventStream) {
    connected_with(f, settings(f)).await
}

async fn connected_with(f: &FakeProjectx, s: ProjectxSettings) -> (ProjectxBroker, EventStream) {
    let _ = f;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let b = ProjectxBroker::new(s, Arc::new(SystemClock)).unwrap();
    let ev = b.events();
    b.connect().await.unwrap();
    (b, ev)
}

fn mnq() -> Instrument {
    tradeguard_projectx::convert::instrument(MNQ, None).unwrap()
}

async fn until<T>(ev: &mut EventStream, mut pick: impl FnMut(&BrokerEvent) -> Option<T>) -> T {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(T, async {
        loop {
            let e = ev.next().await.expect("event stream open");
            if let Some(t) = pick(&e) {
                return t;
            }
            seen.push(e);
        }
    })
    .await;
    match r {
        Ok(t) => t,
        Err(_) => panic!(
            "the event never came; these did: {:?}",
            seen.iter()
                .map(|e| match e {
                    BrokerEvent::Notice(n) => format!("notice {}", n.text),
                    other => other.kind().to_owned(),
                })
                .collect::<Vec<_>>()
        ),
    }
}

async fn order(
    b: &ProjectxBroker,
    side: Side,
    qty: i64,
    t: OrderType,
) -> Result<OrderRequest, BrokerError> {
    let o = OrderRequest {
        id: b.next_order_id().await.unwrap(),
        account: b.account_id(),
        instrument: mnq(),
        side,
        qty,
        order_type: t,
        tif: Tif::Day,
        outside_rth: true,
    };
    b.place(&o).await.map(|()| o)
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
async fn connects_reads_positions_and_says_what_is_wrong_with_a_login() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    f.set_position(MNQ, -3, 21_010.0);
    let (b, _ev) = connected(&f).await;
    let p = b.positions().await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].qty, p[0].instrument.multiplier()),
        (-3, 2),
        "type 2 is short; MNQ is $2 a point"
    );
    assert_eq!(b.account_id().0, f.config().account);

    let mut s = settings(&f);
    s.api_key = ApiKey::new("wrong");
    let e = ProjectxBroker::new(s, Arc::new(SystemClock))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Invalid credentials"), "{e}");
    let mut s = settings(&f);
    s.account = "OTHER".into();
    let e = ProjectxBroker::new(s, Arc::new(SystemClock))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&f.config().account),
        "names the user's accounts: {e}"
    );
}

#[tokio::test]
async fn a_market_order_fills_with_its_events_before_the_placement_answer() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    // No poll within the test: everything comes over the hub.
    let mut s = settings(&f);
    s.poll = Duration::from_secs(3600);
    let (b, mut ev) = connected_with(&f, s).await;
    // The hub is open and subscribed once its first ping is in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let o = order(&b, Side::Buy, 2, OrderType::Market).await.unwrap();
    // The venue's order of events: the order, its fill, the position, the order filled.
    let (mut x, mut filled, mut pos) = (None, None, None);
    tokio::time::timeout(T, async {
        while x.is_none() || filled.is_none() || pos.is_none() {
            match ev.next().await.expect("events") {
                BrokerEvent::Execution(e) => x = Some(e),
                BrokerEvent::OrderStatus(u)
                    if u.order_id == o.id && u.status == OrderStatus::Filled =>
                {
                    assert!(x.is_some(), "the fill before the Filled status");
                    filled = Some(u);
                }
                BrokerEvent::Position(p) => pos = Some(p),
                _ => {}
            }
        }
    })
    .await
    .expect("fill, status and position over the hub");
    let x = x.unwrap();
    assert_eq!(
        x.order_id,
        Some(o.id),
        "the fill waited for the placement answer, then was ours"
    );
    assert_eq!(
        (x.qty, x.side, x.price),
        (2, Side::Buy, Price::parse("21000.25").unwrap())
    );
    assert_eq!(filled.unwrap().filled, 2);
    assert_eq!(pos.unwrap().qty, 2);
    let placed = f.orders();
    assert_eq!(
        placed[0].custom_tag.as_deref(),
        Some(format!("tg-{}", o.id).as_str())
    );
    assert_eq!(placed[0].side, 0);
}

#[tokio::test]
async fn a_resting_limit_is_cancelled_and_a_stop_limit_is_refused_before_sending() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    let (b, mut ev) = connected(&f).await;
    let o = order(
        &b,
        Side::Buy,
        1,
        OrderType::Limit {
            limit: Price::parse("20000").unwrap(),
        },
    )
    .await
    .unwrap();
    status_of(&mut ev, o.id, OrderStatus::Submitted).await;
    b.cancel(o.id).await.unwrap();
    status_of(&mut ev, o.id, OrderStatus::Cancelled).await;
    let e = order(
        &b,
        Side::Sell,
        1,
        OrderType::StopLimit {
            stop: Price::parse("20000").unwrap(),
            limit: Price::parse("19990").unwrap(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, BrokerError::Unsupported(_)), "{e:?}");
    assert_eq!(f.orders().len(), 1);
}

#[tokio::test]
async fn a_lost_or_ambiguous_answer_is_found_by_its_tag_and_a_429_waits() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    let (b, mut ev) = connected(&f).await;
    f.lose_next_answer();
    let o = order(&b, Side::Sell, 1, OrderType::Market).await.unwrap();
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
    assert_eq!(f.orders().len(), 1, "placed once");
    // 6 OrderPending is no rejection: the order is there, found by its tag.
    f.ambiguous_next(6);
    let o = order(&b, Side::Sell, 1, OrderType::Market).await.unwrap();
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
    assert_eq!(f.orders().len(), 2, "placed once each");
    f.throttle_next(1);
    assert_eq!(
        b.positions().await.unwrap().len(),
        1,
        "read after Retry-After (short 2)"
    );
}

#[tokio::test]
async fn the_firms_flatten_is_a_fill_of_no_order_of_ours_and_a_locked_account_is_said() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    f.set_position(MNQ, 5, 20_990.0);
    let (b, mut ev) = connected(&f).await;
    f.firm_flatten();
    let x = until(&mut ev, |e| match e {
        BrokerEvent::Execution(x) => Some(x.clone()),
        _ => None,
    })
    .await;
    assert_eq!((x.order_id, x.side, x.qty), (None, Side::Sell, 5));
    let p = until(&mut ev, |e| match e {
        BrokerEvent::Position(p) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(p.qty, 0, "a closed position arrives as size 0");

    f.set_can_trade(false);
    let n = until(&mut ev, |e| match e {
        BrokerEvent::Notice(n) if n.code == ACCOUNT_LOCKED => Some(n.text.clone()),
        _ => None,
    })
    .await;
    assert!(n.contains("locked"), "{n}");
    let e = order(&b, Side::Buy, 1, OrderType::Market)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("locked"), "{e}");
    // Unlocked at the firm before the adapter hears of it: the order goes out all the same (a
    // close is never refused on a stale flag).
    f.unlock_quietly();
    let o = order(&b, Side::Buy, 1, OrderType::Market).await.unwrap();
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
}

#[tokio::test]
async fn a_silent_hub_is_reopened_and_resubscribed_a_bad_record_is_said_and_fills_still_arrive() {
    let f = fake_with(FakeProjectxConfig::default()).await;
    let (b, mut ev) = connected(&f).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let opens = f.hub_opens();
    // Pings keep a quiet hub alive: no reopen while nothing trades.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(f.hub_opens(), opens, "a quiet hub is not a dead one");
    f.silence_hubs(true);
    until(&mut ev, |e| {
        matches!(e, BrokerEvent::Connection(ConnectionState::Stalled { .. })).then_some(())
    })
    .await;
    until(&mut ev, |e| {
        matches!(e, BrokerEvent::Connection(ConnectionState::Connected)).then_some(())
    })
    .await;
    assert!(f.hub_opens() > opens, "reopened");
    f.silence_hubs(false);
    f.close_hubs();
    f.malformed_next();
    // Fills arrive whatever the hub does: the poll reads them.
    let o = order(&b, Side::Buy, 1, OrderType::Market).await.unwrap();
    status_of(&mut ev, o.id, OrderStatus::Filled).await;
}
