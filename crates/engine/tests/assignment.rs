//! The assignment guard end to end against the simulated venue in paused virtual time: the
//! reference iron condor assignment, overnight delivery armed for the open, an assignment found
//! only at start-up, exercise of our own long, expiry worthless, duplicate and out-of-order
//! position events.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::stubs::{reference_condor, spy_option};
use tradeguard_engine::assignment::{
    AssignmentConfig, AssignmentGuard, ClosePhase, DetectionKind, DetectionSource,
    EmergencyOrderState, GuardDeps, GuardHandle, OpenOrder, RecordingNotifier, UsEquityHours,
};
use tradeguard_engine::{
    ExecError, ExecutionCoordinator, GateRefusal, JournalRecord, MemoryJournal, OrderIntent,
    Purpose, Severity, StopSpec, StopState, TokioClock,
};
use tradeguard_model::{
    Broker, BrokerEvent, EventStream, Instrument, OpenOrderKind, OrderType, Position, Right, Side,
    StrategyId, StrategyState, Timestamp, stubs,
};
use tradeguard_sim::{SimBroker, SimConfig, calendar};

fn expiry() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap()
}

fn o(right: Right, strike: i64) -> Instrument {
    spy_option(expiry(), right, strike)
}

fn condor_positions() -> Vec<Position> {
    vec![
        position(o(Right::Put, 435), 2, "1.00"),
        position(o(Right::Put, 440), -2, "2.00"),
        position(o(Right::Call, 460), -2, "2.00"),
        position(o(Right::Call, 465), 2, "1.00"),
    ]
}

/// SPY at 450 holding the reference condor, starting at `start`.
fn cfg_at(start: Timestamp, seed: u64) -> SimConfig {
    let mut c = sim_cfg(seed);
    c.start = start;
    c.underlyings[0].price = px("450");
    c.underlyings[0].vol = 0.001;
    c.positions = condor_positions();
    // Option and stock updates in one step: these tests are about the response; the split
    // delivery of a real broker has its own (assignment_timing.rs, ib_assignment_timing.rs).
    c.assignment.report = tradeguard_sim::DeliveryReport::batch();
    c
}

fn tue(h: u32, m: u32) -> Timestamp {
    calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), h, m)
}

struct Rig {
    b: Arc<SimBroker>,
    c: ExecutionCoordinator,
    j: MemoryJournal,
    n: RecordingNotifier,
    start: Timestamp,
}

async fn rig(cfg: SimConfig) -> Rig {
    let start = cfg.start;
    let b = broker(cfg);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let c = start_at(b.clone(), &j, start).await;
    Rig {
        b,
        c,
        j,
        n: RecordingNotifier::new(),
        start,
    }
}

async fn start_at(b: Arc<SimBroker>, j: &MemoryJournal, start: Timestamp) -> ExecutionCoordinator {
    let mut risk = tradeguard_engine::IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("450"));
    ExecutionCoordinator::start(tradeguard_engine::EngineDeps {
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        config: engine_cfg(),
    })
    .await
    .unwrap()
}

impl Rig {
    fn deps(&self, events_clock_base: Timestamp) -> GuardDeps {
        GuardDeps {
            coordinator: self.c.clone(),
            broker: self.b.clone(),
            journal: Arc::new(self.j.reopen()),
            clock: Arc::new(TokioClock::new(events_clock_base)),
            hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
            notifier: Arc::new(self.n.clone()),
            strategies: vec![reference_condor(1, stubs::account(), expiry())],
            config: AssignmentConfig::default(),
        }
    }

    async fn guard(&self) -> GuardHandle {
        AssignmentGuard::start(self.deps(self.start)).await.unwrap()
    }

    fn now(&self) -> Timestamp {
        self.b.venue().lock().unwrap().now()
    }
}

fn alerts_with(j: &MemoryJournal, code: &str) -> Vec<tradeguard_engine::Alert> {
    alerts(j).into_iter().filter(|a| a.code == code).collect()
}

async fn all_flat(b: &SimBroker) -> bool {
    b.positions().await.unwrap().is_empty()
}

#[tokio::test(start_paused = true)]
async fn reference_condor_assignment_end_to_end() {
    let r = rig(cfg_at(tue(10, 0), 1)).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(500).await;

    // Detection, record, lock.
    let st = g.status();
    assert_eq!(st.records.len(), 1, "{st:#?}");
    let rec = &st.records[0];
    assert_eq!(rec.kind, DetectionKind::Assigned);
    assert_eq!((rec.strategy, rec.leg), (Some(StrategyId(1)), Some(1)));
    assert_eq!((rec.contracts, rec.stock_delivered), (2, 200));
    assert_eq!(rec.stock_price, Some(px("440")));
    assert_eq!(rec.source, DetectionSource::PositionStream);
    assert!(
        r.j.records()
            .iter()
            .any(|x| matches!(x, JournalRecord::Assignment(a) if a == rec))
    );
    assert!(r.j.records().iter().any(
        |x| matches!(x, JournalRecord::StrategyBroken { strategy, reason: Some(c) } if *strategy == StrategyId(1) && c == "broken.assigned")
    ));
    assert_eq!(st.strategies[0].state, StrategyState::Broken);

    // A normal close is refused: broken, and why.
    let close = OrderIntent::new(Purpose::Close, stubs::account())
        .for_strategy(StrategyId(1))
        .leg(o(Right::Call, 460), Side::Buy, 2, OrderType::Market);
    let err = r.c.submit(close).await.unwrap_err();
    assert_eq!(err.code(), "gate.strategy_broken");
    assert!(
        matches!(&err, ExecError::Refused(GateRefusal::StrategyBroken { reason, .. }) if reason == "broken.assigned")
    );
    assert!(
        err.to_string().contains("broken (broken.assigned)"),
        "{err}"
    );

    // Alert and notification sent at once.
    let n = r.n.all();
    assert_eq!(
        n[0].title,
        "ASSIGNMENT: SPY 21MAR25 440 P ×2 assigned — emergency close sent"
    );
    assert_eq!(n[0].severity, Severity::Critical);
    assert!(
        n[0].body.contains("buy to close SPY 21MAR25 460 C ×2"),
        "{}",
        n[0].body
    );
    // The person reads the strategy's name, not its id.
    assert!(
        n[0].body.starts_with("SPY IC 435/440/460/465 is Broken"),
        "{}",
        n[0].body
    );
    assert_eq!(alerts_with(&r.j, "assignment.detected").len(), 1);
    assert_eq!(
        alerts_with(&r.j, "assignment.detected")[0].severity,
        Severity::Critical
    );
    assert_eq!(st.banners.len(), 1);

    sleep_ms(10_000).await;
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    let plan: Vec<(Instrument, Side, i64)> = c
        .orders
        .iter()
        .map(|x| (x.planned.instrument.clone(), x.planned.side, x.planned.qty))
        .collect();
    assert_eq!(
        plan,
        vec![
            (o(Right::Call, 460), Side::Buy, 2),
            (Instrument::stock("SPY"), Side::Sell, 200),
            (o(Right::Put, 435), Side::Sell, 2),
            (o(Right::Call, 465), Side::Sell, 2),
        ]
    );
    // The venue saw them in the safe order: each dependent order placed only after the fill
    // it waits for.
    let execs = executions(&r.b).await;
    let fill_ts = |i: usize| {
        let id = c.orders[i].order_id.unwrap();
        execs
            .iter()
            .filter(|e| e.order_id == Some(id))
            .map(|e| e.ts)
            .max()
            .unwrap()
    };
    let sent = |i: usize| c.orders[i].sent_at.unwrap();
    assert_eq!(
        execs[0].instrument,
        o(Right::Call, 460),
        "first fill is the buy-back"
    );
    assert!(
        sent(3) >= fill_ts(0),
        "465 C sold only after the 460 C fill"
    );
    assert!(sent(1) >= fill_ts(0));
    assert!(
        sent(2) >= fill_ts(1),
        "435 P sold only after the 200 SPY sale filled"
    );
    assert!(
        c.orders
            .iter()
            .all(|x| x.state == EmergencyOrderState::Filled)
    );
    assert!(
        all_flat(&r.b).await,
        "{:#?}",
        r.b.positions().await.unwrap()
    );
    // Completion raised its own alert with the orders and fills.
    let done = alerts_with(&r.j, "assignment.close_completed");
    assert_eq!(done.len(), 1);
    assert!(
        done[0].message.contains("sell 200 SPY"),
        "{}",
        done[0].message
    );
    assert!(done[0].message.contains(" @ "), "{}", done[0].message);
    assert_eq!(r.n.all().len(), 2);
    assert_eq!(st.strategies[0].state, StrategyState::Closed);
    // The banner stays until acknowledged.
    assert!(!g.status().banners[0].acknowledged);
    assert!(g.acknowledge(rec.id).await.unwrap());
    sleep_ms(10).await;
    assert!(g.status().banners[0].acknowledged);
}

#[tokio::test(start_paused = true)]
async fn overnight_delivery_without_execution_is_armed_for_the_open() {
    // 09:00 New York: options do not trade yet.
    let r = rig(cfg_at(tue(9, 0), 2)).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(500).await;
    assert!(
        executions(&r.b).await.is_empty(),
        "an assignment has no execution"
    );
    let st = g.status();
    assert_eq!(st.records.len(), 1);
    assert_eq!(st.closes[0].phase, ClosePhase::Armed);
    // Market orders 2 min after the open (the default), not into the opening rotation.
    assert_eq!(st.closes[0].release_at, tue(9, 32));
    assert!(
        st.closes[0].how.contains("2 min after the open"),
        "{}",
        st.closes[0].how
    );
    let left = g.countdown().unwrap();
    assert!(
        left > Duration::from_secs(31 * 60) && left <= Duration::from_secs(32 * 60),
        "{left:?}"
    );
    assert_eq!(
        r.n.all()[0].title,
        "ASSIGNMENT: SPY 21MAR25 440 P ×2 assigned — emergency close armed for the open"
    );
    assert!(
        r.n.all()[0].body.contains("in 32 min"),
        "{}",
        r.n.all()[0].body
    );
    // Nothing sent before the open.
    sleep_ms(20 * 60_000).await;

    assert!(
        g.status().closes[0]
            .orders
            .iter()
            .all(|x| x.sent_at.is_none())
    );
    // After the open: released, filled, flat.
    sleep_ms(20 * 60_000).await;
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    assert!(c.orders.iter().all(|x| x.sent_at.unwrap() >= tue(9, 32)));
    assert!(all_flat(&r.b).await);
    assert_eq!(g.countdown(), None);
}

/// The emergency close armed for the open goes out as the trader chose: market orders into the
/// opening rotation (spreads at their widest) pay more than the default, market orders 2 min
/// after the open. Same seed, same market path; only the order style differs.
#[tokio::test(start_paused = true)]
async fn the_close_armed_for_the_open_waits_out_the_opening_spreads() {
    async fn paid_for_the_buy_back(at_open: OpenOrder) -> (Timestamp, i64) {
        let r = rig(cfg_at(tue(9, 0), 2)).await;
        let mut deps = r.deps(r.start);
        deps.config.at_open = at_open;
        let g = AssignmentGuard::start(deps).await.unwrap();
        sleep_ms(1_000).await;
        r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
        sleep_ms(45 * 60_000).await;
        let st = g.status();
        let c = &st.closes[0];
        assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
        let buy = &c.orders[0];
        assert_eq!(buy.planned.instrument, o(Right::Call, 460));
        let paid: i64 = buy.fills.iter().map(|f| f.price.raw() * f.qty).sum();
        (buy.sent_at.unwrap(), paid)
    }
    let (sent_at_open, at_open) = paid_for_the_buy_back(OpenOrder::Market).await;
    let (sent_later, later) = paid_for_the_buy_back(OpenOrder::default()).await;
    assert!(sent_at_open >= tue(9, 30) && sent_at_open < tue(9, 31));
    assert!(sent_later >= tue(9, 32));
    assert!(
        later < at_open,
        "2 min after the open paid {later}, into the opening spreads {at_open}"
    );
}

#[tokio::test(start_paused = true)]
async fn assignment_while_closed_is_found_at_start_up() {
    let r = rig(cfg_at(tue(10, 0), 3)).await;
    let g = r.guard().await;
    sleep_ms(500).await;
    g.abort();
    // The app is closed; the broker assigns.
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(2_000).await;
    // Next start: the journal's last known positions against the broker's snapshot.
    let now = r.now();
    let g2 = AssignmentGuard::start(r.deps(now)).await.unwrap();
    let st = g2.status();
    assert_eq!(st.records.len(), 1, "{st:#?}");
    assert_eq!(st.records[0].source, DetectionSource::Snapshot);
    assert_eq!(st.records[0].stock_delivered, 200);
    sleep_ms(10_000).await;
    assert_eq!(g2.status().closes[0].phase, ClosePhase::Completed);
    assert!(all_flat(&r.b).await);
    // A third start finds nothing new.
    g2.abort();
    let g3 = AssignmentGuard::start(r.deps(r.now())).await.unwrap();
    assert_eq!(g3.status().records.len(), 1, "records reloaded, none added");
    // The finished close is reloaded as it ended; nothing is planned or sent again.
    let orders_before = executions(&r.b).await.len();
    sleep_ms(5_000).await;
    let st3 = g3.status();
    assert_eq!(st3.closes.len(), 1);
    assert_eq!(st3.closes[0].phase, ClosePhase::Completed);
    assert_eq!(executions(&r.b).await.len(), orders_before);
    assert_eq!(st3.strategies[0].state, StrategyState::Closed);
    assert_eq!(alerts_with(&r.j, "assignment.detected").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn exercise_of_our_long_leg() {
    let r = rig(cfg_at(tue(10, 0), 4)).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    r.b.force_assignment(&o(Right::Call, 465).id(), 2).unwrap();
    sleep_ms(1_000).await;
    let st = g.status();
    assert_eq!(st.records.len(), 1);
    assert_eq!(st.records[0].kind, DetectionKind::Exercised);
    assert_eq!(st.records[0].stock_delivered, 200);
    assert_eq!(st.records[0].leg, Some(3));
    assert!(
        r.n.all()[0]
            .title
            .starts_with("EXERCISE: SPY 21MAR25 465 C ×2 exercised")
    );
    assert!(r.j.records().iter().any(
        |x| matches!(x, JournalRecord::StrategyBroken { reason: Some(c), .. } if c == "broken.exercised")
    ));
    sleep_ms(10_000).await;
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    // Long stock covers the short call: sold only after the 460 C is bought back.
    let idx = |i: &Instrument| {
        c.orders
            .iter()
            .position(|x| &x.planned.instrument == i)
            .unwrap()
    };
    let stock = idx(&Instrument::stock("SPY"));
    assert_eq!(c.orders[stock].planned.side, Side::Sell);
    assert!(
        c.orders[stock]
            .planned
            .after
            .contains(&idx(&o(Right::Call, 460)))
    );
    assert!(all_flat(&r.b).await);
}

#[tokio::test(start_paused = true)]
async fn expiry_worthless_takes_no_action_and_expiry_day_risk_warns() {
    // The condor expires today; SPY at 441 is 0.23 % above the short 440 put.
    let mut cfg = cfg_at(tue(15, 0), 5);
    let today = chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap();
    cfg.positions = condor_positions()
        .into_iter()
        .map(|mut p| {
            let mut oc = p.instrument.as_option().unwrap().clone();
            oc.expiry = today;
            p.instrument = Instrument::Option(oc);
            p
        })
        .collect();
    cfg.underlyings[0].price = px("441");
    cfg.assignment.delivery_delay = Duration::from_secs(60);
    let r = rig(cfg).await;
    let mut deps = r.deps(r.start);
    deps.strategies = vec![reference_condor(1, stubs::account(), today)];
    r.b.subscribe_quotes(&[Instrument::stock("SPY")])
        .await
        .unwrap();
    let g = AssignmentGuard::start(deps).await.unwrap();
    sleep_ms(2 * 60_000).await;
    let warn = alerts_with(&r.j, "assignment.expiry_risk");
    assert_eq!(warn.len(), 1, "{warn:#?}");
    assert!(
        warn[0]
            .message
            .contains("SPY 04MAR25 440 P ×2 is NearTheMoney"),
        "{}",
        warn[0].message
    );
    assert_eq!(g.status().expiry_risks.len(), 1);
    // Through the close and the (overnight) expiry delivery.
    sleep_ms(70 * 60_000).await;
    assert!(all_flat(&r.b).await, "all four legs expired");
    let st = g.status();
    assert!(st.records.is_empty(), "{st:#?}");
    assert!(st.closes.is_empty());
    assert!(r.n.all().is_empty());
    assert_eq!(st.strategies[0].state, StrategyState::Open);
    let expired = audits(&r.j)
        .into_iter()
        .filter(|a| a.code == "assignment.expired")
        .count();
    assert_eq!(expired, 4);
    assert_eq!(
        alerts_with(&r.j, "assignment.expiry_risk").len(),
        1,
        "warned once"
    );
}

/// The broker's stream plus events a test injects (duplicates, stale replays).
fn merged(b: &SimBroker) -> (EventStream, tokio::sync::mpsc::UnboundedSender<BrokerEvent>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let injected = tokio_stream_from(rx);
    (Box::pin(futures::stream::select(b.events(), injected)), tx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<BrokerEvent>,
) -> impl futures::Stream<Item = BrokerEvent> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(start_paused = true)]
async fn duplicate_and_out_of_order_position_events_get_one_response() {
    let r = rig(cfg_at(tue(10, 0), 6)).await;
    let mut guard = AssignmentGuard::new(r.deps(r.start)).await.unwrap();
    let (events, inject) = merged(&r.b);
    guard.check_snapshot().await.unwrap();
    let g = guard.spawn(events);
    sleep_ms(500).await;
    let put = position(o(Right::Put, 440), 0, "0");
    let stock = position(Instrument::stock("SPY"), 200, "440");
    // Out of order: the stock arrives first (injected), then the venue's own pair, then
    // duplicates and stale replays of the old quantities.
    inject.send(BrokerEvent::Position(stock.clone())).unwrap();
    sleep_ms(50).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(150).await;
    for e in [
        put.clone(),
        stock.clone(),
        position(o(Right::Put, 440), -2, "2.00"),
        position(Instrument::stock("SPY"), 0, "0"),
        put.clone(),
        stock.clone(),
    ] {
        inject.send(BrokerEvent::Position(e)).unwrap();
    }
    sleep_ms(15_000).await;
    let st = g.status();
    assert_eq!(st.records.len(), 1, "{:#?}", st.records);
    assert_eq!(st.closes.len(), 1);
    assert_eq!(
        st.closes[0].phase,
        ClosePhase::Completed,
        "{:#?}",
        st.closes[0]
    );
    assert_eq!(alerts_with(&r.j, "assignment.detected").len(), 1);
    assert_eq!(alerts_with(&r.j, "assignment.unexplained").len(), 0);
    assert_eq!(r.n.all().len(), 2, "one assignment + one completion");
    assert!(all_flat(&r.b).await);
    // Every emergency order was sent once.
    let sent: Vec<_> = audits(&r.j)
        .into_iter()
        .filter(|a| a.code == "assignment.order_sent")
        .collect();
    assert_eq!(sent.len(), 4);
    // Each audit line names the strategy as the tables do, never by its id.
    let st = g.status();
    let name = &st.strategies[0].name;
    assert!(name.contains("SPY IC"), "{name}");
    for a in &sent {
        assert!(a.reason.starts_with(&format!("{name}: ")), "{}", a.reason);
        assert!(!a.reason.contains("strategy "), "{}", a.reason);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_emergency_order_is_its_own_critical_alert_and_nothing_behind_it_goes_out() {
    // The venue rejects every order: the 460 C buy-back fails, so neither the stock, the
    // 435 P nor the 465 C (all behind it) may be sold.
    let mut cfg = cfg_at(tue(10, 0), 7);
    cfg.matching.random_reject_prob = 1.0;
    let r = rig(cfg).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(5_000).await;
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Failed, "{c:#?}");
    assert!(matches!(
        &c.orders[0].state,
        EmergencyOrderState::Failed { reason } if reason.contains("Rejected")
    ));
    assert!(
        c.orders[1..]
            .iter()
            .all(|x| x.state == EmergencyOrderState::Waiting && x.sent_at.is_none()),
        "{c:#?}"
    );
    let sent: Vec<_> = audits(&r.j)
        .into_iter()
        .filter(|a| a.code == "assignment.order_sent")
        .collect();
    assert_eq!(sent.len(), 1, "only the buy-back went out: {sent:#?}");
    let failed = alerts_with(&r.j, "assignment.close_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].severity, Severity::Critical);
    let m = &failed[0].message;
    assert!(m.contains("buy to close SPY 21MAR25 460 C ×2"), "{m}");
    assert!(m.contains("FAILED (Rejected after 0 filled"), "{m}");
    assert!(m.contains("sell 200 SPY Waiting, no fills"), "{m}");
    let n = r.n.all();
    assert_eq!(n.len(), 2, "assignment + failure: {n:#?}");
    assert_eq!(
        n[1].title,
        "Emergency close of SPY IC 435/440/460/465 FAILED — act now"
    );
    assert_eq!(n[1].severity, Severity::Critical);
    assert_eq!(
        st.strategies[0].state,
        StrategyState::Broken,
        "still locked"
    );
    assert!(alerts_with(&r.j, "assignment.close_completed").is_empty());
}

/// Live buy orders of `inst` at the venue.
async fn live_buys(b: &SimBroker, inst: &Instrument) -> usize {
    b.open_orders()
        .await
        .unwrap()
        .iter()
        .filter(|x| {
            matches!(&x.order, OpenOrderKind::Single(o) if o.instrument == *inst && o.side == Side::Buy)
        })
        .count()
}

/// DST seeds 1100 / 1309 (invariant 2): the emergency buy-back of a short call with a working
/// managed stop went out while the stop's cancel was in flight. The coordinator now holds it
/// until the cancel is confirmed; the guard sees a group without an order (step Deferred),
/// learns the order id once it is sent, and counts its fills as usual.
#[tokio::test(start_paused = true)]
async fn an_emergency_order_held_for_a_stops_cancel_is_followed_to_its_fill() {
    let r = rig(cfg_at(tue(10, 0), 1100)).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    let call = o(Right::Call, 460);
    let stop =
        r.c.place_stop(StopSpec {
            account: stubs::account(),
            instrument: call.clone(),
            side: Side::Buy,
            qty: 2,
            stop: px("50"),
            strategy: Some(StrategyId(1)),
        })
        .await
        .unwrap();
    sleep_ms(500).await;
    assert_eq!(live_buys(&r.b, &call).await, 1, "the stop-limit rests");
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    let mut deferred_seen = false;
    for _ in 0..1_000 {
        sleep_ms(10).await;
        assert!(
            live_buys(&r.b, &call).await <= 1,
            "two live exits of the 460 C"
        );
        let st = g.status();
        if let Some(c) = st.closes.first() {
            deferred_seen |= c.orders[0].state == EmergencyOrderState::Deferred;
        }
    }
    assert!(deferred_seen, "the buy-back waited for the stop's cancel");
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    let first = &c.orders[0];
    assert_eq!(first.state, EmergencyOrderState::Filled);
    let id = first.order_id.expect("order id learned");
    let execs = executions(&r.b).await;
    let bought: i64 = execs
        .iter()
        .filter(|e| e.order_id == Some(id))
        .map(|e| e.qty)
        .sum();
    assert_eq!((bought, first.filled()), (2, 2));
    assert!(
        all_flat(&r.b).await,
        "{:#?}",
        r.b.positions().await.unwrap()
    );
    let snap = r.c.snapshot().await.unwrap();
    let s = snap.stops.iter().find(|s| s.id == stop).unwrap();
    assert_eq!((s.state, s.market_order), (StopState::Cancelled, None));
    assert!(
        audits(&r.j)
            .iter()
            .any(|a| a.code == "assignment.order_deferred")
    );
}

/// The reference condor with a managed buy-stop (2.00) on its short 460 C, on a venue whose
/// calls take 1.5 s: the put is assigned, and while the guard's buy-back is held for the stop's
/// cancel, SPY rallies so the call's ask sits inside the stop-limit and the stop fills (at most
/// `stop_fill_cap` per venue step). Returns once everything has settled.
async fn stop_fills_while_held(stop_fill_cap: Option<i64>) -> (Rig, GuardHandle) {
    let mut cfg = cfg_at(tue(10, 0), 1100);
    // A slow venue: the stop's cancel takes 1.5 s to arrive, long enough for the gap below.
    cfg.matching.latency = Duration::from_millis(1_500);
    cfg.matching.latency_jitter = Duration::ZERO;
    let r = rig(cfg).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    let call = o(Right::Call, 460);
    r.c.place_stop(StopSpec {
        account: stubs::account(),
        instrument: call.clone(),
        side: Side::Buy,
        qty: 2,
        stop: px("2.00"),
        strategy: Some(StrategyId(1)),
    })
    .await
    .unwrap();
    sleep_ms(500).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    let mut moved = false;
    for _ in 0..3_000 {
        sleep_ms(10).await;
        let held = g
            .status()
            .closes
            .first()
            .is_some_and(|c| c.orders[0].state == EmergencyOrderState::Deferred);
        if held && !moved {
            // SPY rallies while the stop's cancel travels to the venue: the call's ask reaches
            // the stop and stays inside the stop-limit's limit (the stop fills in full).
            let v = r.b.venue();
            let mut v = v.lock().unwrap();
            let (mut lo, mut hi) = (450.0_f64, 470.0_f64);
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                v.set_spot("SPY", px(&format!("{mid:.4}"))).unwrap();
                let ask = v.quote(&call).unwrap().ask.expect("an ask");
                if ask < px("2.00") {
                    lo = mid;
                } else if ask > px("2.01") {
                    hi = mid;
                } else {
                    break;
                }
            }
            let ask = v.quote(&call).unwrap().ask.expect("an ask");
            assert!(ask >= px("2.00") && ask <= px("2.01"), "ask {ask}");
            v.set_max_fill_qty(stop_fill_cap);
            moved = true;
        }
    }
    assert!(moved, "the buy-back was never held for the stop's cancel");
    r.b.venue().lock().unwrap().set_max_fill_qty(None);
    sleep_ms(5_000).await;
    (r, g)
}

/// Checks the 460 C was bought back exactly once overall, the guard's step ended Filled with
/// `covered` closed by the stop and `filled` by its own order, the close Completed with no
/// FAILED alert, and the account is flat.
async fn assert_closed_once(r: &Rig, g: &GuardHandle, covered: i64, filled: i64) {
    let call = o(Right::Call, 460);
    let execs = executions(&r.b).await;
    let bought: i64 = execs
        .iter()
        .filter(|e| e.instrument.id() == call.id() && e.side == Side::Buy)
        .map(|e| e.qty)
        .sum();
    assert_eq!(
        bought, 2,
        "the 460 C was bought back exactly once: {execs:#?}"
    );
    let st = g.status();
    let c = &st.closes[0];
    let first = &c.orders[0];
    assert_eq!(
        (first.covered, first.filled()),
        (covered, filled),
        "{first:#?}"
    );
    assert_eq!(first.state, EmergencyOrderState::Filled);
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    assert!(alerts_with(&r.j, "assignment.close_failed").is_empty());
    assert!(
        all_flat(&r.b).await,
        "{:#?}",
        r.b.positions().await.unwrap()
    );
}

/// The managed stop an emergency buy-back was held for fills the whole position while its
/// cancel is in flight: the coordinator cuts the held group to nothing. The step is closed by
/// the stop (covered), nothing is bought twice, and the close completes — no "FAILED, act
/// now" alert for a position that is flat.
#[tokio::test(start_paused = true)]
async fn a_stop_that_fills_while_the_emergency_order_is_held_covers_the_step() {
    let (r, g) = stop_fills_while_held(None).await;
    assert_closed_once(&r, &g, 2, 0).await;
    assert!(
        audits(&r.j)
            .iter()
            .any(|a| a.code == "assignment.order_covered")
    );
}

/// The stop fills one of the two contracts before its cancel lands: the coordinator sends the
/// held buy-back for the one left, and the guard counts the other as covered — it must not
/// send a second attempt for it (that would leave the account long a call).
#[tokio::test(start_paused = true)]
async fn a_stop_that_fills_part_while_held_leaves_the_rest_to_the_emergency_order() {
    let (r, g) = stop_fills_while_held(Some(1)).await;
    assert_closed_once(&r, &g, 1, 1).await;
}

/// Do no harm: a leg that disappears with no execution and nothing delivered breaks its
/// strategy (LegMissing, Critical alert, locked) and what remains is closed in the safe order:
/// the put spread's short, now naked, is bought back.
#[tokio::test(start_paused = true)]
async fn a_leg_that_disappears_without_a_fill_breaks_the_strategy_and_closes_the_rest() {
    let r = rig(cfg_at(tue(10, 0), 8)).await;
    let mut guard = AssignmentGuard::new(r.deps(r.start)).await.unwrap();
    let (events, inject) = merged(&r.b);
    guard.check_snapshot().await.unwrap();
    let g = guard.spawn(events);
    sleep_ms(500).await;
    // The broker reports the long 435 P gone: no execution, no stock.
    inject
        .send(BrokerEvent::Position(position(o(Right::Put, 435), 0, "0")))
        .unwrap();
    sleep_ms(20_000).await;
    let st = g.status();
    assert_eq!(st.records.len(), 1, "{:#?}", st.records);
    assert_eq!(st.records[0].kind, DetectionKind::Unexplained);
    let s = st
        .strategies
        .iter()
        .find(|s| s.id == StrategyId(1))
        .unwrap();
    assert!(
        matches!(s.state, StrategyState::Broken | StrategyState::Closed),
        "{s:#?}"
    );
    assert_eq!(
        s.broken_reason.as_ref().map(|r| r.code()),
        Some("broken.leg_missing")
    );
    let missing = alerts_with(&r.j, "assignment.leg_missing");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0].severity, Severity::Critical);
    assert!(
        missing[0].message.contains("MISSING LEG"),
        "{}",
        missing[0].message
    );
    let c = &st.closes[0];
    let first = &c.orders[0].planned;
    assert_eq!(
        (&first.instrument, first.side, first.qty),
        (&o(Right::Put, 440), Side::Buy, 2)
    );
    assert!(
        c.orders
            .iter()
            .all(|o2| o2.planned.instrument != o(Right::Put, 435)),
        "nothing is traded on the leg the broker no longer reports: {c:#?}"
    );
    assert_eq!(qty_at_broker(&r.b, &o(Right::Put, 440)).await, 0);
    assert_eq!(qty_at_broker(&r.b, &o(Right::Call, 460)).await, 0);
}

/// DST seeds 451636552076, 365774012079 and 365774012458 (invariant 7): the instant the
/// assignment guard marks a strategy Broken, its instruments are locked for every normal
/// order. A rule's Flatten of another strategy holding one of them (here strategy 2 on the
/// condor's 460 C) was sent in the second before the strategy book's next push of the locked
/// instruments, because the gate then knew only the Broken strategy's id.
#[tokio::test(start_paused = true)]
async fn a_broken_strategys_instruments_are_locked_the_moment_it_breaks() {
    let r = rig(cfg_at(tue(10, 0), 4)).await;
    let g = r.guard().await;
    sleep_ms(1_000).await;
    r.b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(300).await;
    assert_eq!(g.status().records.len(), 1, "the assignment is detected");
    // No strategy book runs in this rig: the lock can only come from the break itself.
    let flatten_other = OrderIntent::new(Purpose::Flatten, stubs::account())
        .for_strategy(StrategyId(2))
        .leg(o(Right::Call, 460), Side::Buy, 1, OrderType::Market);
    match r.c.submit(flatten_other).await {
        Err(ExecError::Refused(GateRefusal::BrokenStrategyLeg {
            instrument,
            strategy,
            ..
        })) => {
            assert_eq!(instrument, o(Right::Call, 460).id());
            assert_eq!(strategy, StrategyId(1));
        }
        other => panic!(
            "the Flatten of another strategy on the Broken condor's 460 C went through: {other:?}"
        ),
    }
    // The guard's own emergency close still trades it.
    sleep_ms(5_000).await;
    assert!(all_flat(&r.b).await, "{:?}", r.b.positions().await.unwrap());
}
