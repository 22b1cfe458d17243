//! The assignment guard across a crash, on the simulated venue in paused virtual time: an
//! emergency close interrupted after its first fill, or between a submit and its fill, is
//! resumed from the journal at the next start — filled steps are not sent again, the step in
//! flight is matched with the broker by its order, the rest goes out once in the plan's order,
//! and the strategy stays Broken. Also pre-market arming: stock at 04:00 as an outside-RTH
//! order, options at 09:30.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use tradeguard_engine::assignment::stubs::{reference_condor, spy_option};
use tradeguard_engine::assignment::{
    ArmAt, AssignmentConfig, AssignmentGuard, ClosePhase, EmergencyOrderState, GuardDeps,
    GuardHandle, RecordingNotifier, UsEquityHours,
};
use tradeguard_engine::{
    EngineDeps, ExecutionCoordinator, IntrinsicStressModel, Journal, JournalRecord, MemoryJournal,
    OrderIntent, Purpose, StopSpec, TokioClock,
};
use tradeguard_model::{
    Broker, Execution, Instrument, OpenOrderKind, OrderId, OrderType, Position, Right, Side,
    Strategy, StrategyId, StrategyState, Timestamp, stubs,
};
use tradeguard_sim::{SimBroker, SimConfig, calendar};

fn expiry() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap()
}

fn o(right: Right, strike: i64) -> Instrument {
    spy_option(expiry(), right, strike)
}

fn tue(h: u32, m: u32) -> Timestamp {
    calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), h, m)
}

fn wed(h: u32, m: u32) -> Timestamp {
    calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 5).unwrap(), h, m)
}

fn cfg_at(start: Timestamp, seed: u64, positions: Vec<Position>) -> SimConfig {
    let mut c = sim_cfg(seed);
    c.start = start;
    c.underlyings[0].price = px("450");
    c.underlyings[0].vol = 0.001;
    c.positions = positions;
    // One-step delivery: the split delivery has its own tests (assignment_timing.rs).
    c.assignment.report = tradeguard_sim::DeliveryReport::batch();
    c
}

fn condor_positions() -> Vec<Position> {
    vec![
        position(o(Right::Put, 435), 2, "1.00"),
        position(o(Right::Put, 440), -2, "2.00"),
        position(o(Right::Call, 460), -2, "2.00"),
        position(o(Right::Call, 465), 2, "1.00"),
    ]
}

async fn coordinator(
    b: Arc<SimBroker>,
    j: Arc<dyn Journal>,
    now: Timestamp,
) -> ExecutionCoordinator {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("450"));
    ExecutionCoordinator::start(EngineDeps {
        broker: b,
        journal: j,
        clock: Arc::new(TokioClock::new(now)),
        risk: Box::new(risk),
        config: engine_cfg(),
    })
    .await
    .unwrap()
}

fn now(b: &SimBroker) -> Timestamp {
    b.venue().lock().unwrap().now()
}

/// Coordinator + assignment guard on `j`, as the app starts them.
async fn start(
    b: &Arc<SimBroker>,
    j: Arc<dyn Journal>,
    n: &RecordingNotifier,
    strategy: Strategy,
    arm_at: ArmAt,
) -> (ExecutionCoordinator, GuardHandle) {
    let t = now(b);
    let c = coordinator(b.clone(), j.clone(), t).await;
    let g = AssignmentGuard::start(GuardDeps {
        coordinator: c.clone(),
        broker: b.clone(),
        journal: j,
        clock: Arc::new(TokioClock::new(t)),
        hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
        notifier: Arc::new(n.clone()),
        strategies: vec![strategy],
        config: AssignmentConfig {
            arm_at,
            ..AssignmentConfig::default()
        },
    })
    .await
    .unwrap();
    (c, g)
}

/// Broker orders per instrument: (order id, total filled).
fn orders_by_instrument(execs: &[Execution]) -> BTreeMap<String, BTreeMap<OrderId, i64>> {
    let mut m: BTreeMap<String, BTreeMap<OrderId, i64>> = BTreeMap::new();
    for e in execs {
        *m.entry(e.instrument.id().to_string())
            .or_default()
            .entry(e.order_id.unwrap())
            .or_default() += e.qty;
    }
    m
}

/// Alerts and audit entries with `code`.
fn alerts_with(j: &MemoryJournal, code: &str) -> usize {
    alerts(j).iter().filter(|a| a.code == code).count()
        + audits(j).iter().filter(|a| a.code == code).count()
}

/// Crashes at `at`, restarts on the same journal and venue, and checks that the close ends
/// with exactly one order per planned step, in the safe order, the strategy Broken until then.
async fn crash_and_resume(
    seed: u64,
    at: impl Fn(&JournalRecord) -> bool + Send + Sync + 'static,
) -> (MemoryJournal, Arc<SimBroker>, GuardHandle) {
    let b = broker(cfg_at(tue(10, 0), seed, condor_positions()));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let crash = Crashing::new(&j, at);
    let n1 = RecordingNotifier::new();
    let condor = reference_condor(1, stubs::account(), expiry());
    let (c1, g1) = start(
        &b,
        Arc::new(crash.clone()),
        &n1,
        condor.clone(),
        ArmAt::Open,
    )
    .await;
    sleep_ms(1_000).await;
    b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    for _ in 0..1_000 {
        if crash.dead() {
            break;
        }
        sleep_ms(10).await;
    }
    assert!(
        crash.dead(),
        "the crash point was reached: {:#?}",
        g1.status().closes
    );
    // Kill: the guard task is dropped where it stands, the coordinator with its last handle.
    g1.abort();
    drop(c1);
    sleep_ms(2_000).await;

    // Restart on the same journal and the same venue.
    let n2 = RecordingNotifier::new();
    let (c2, g2) = start(&b, Arc::new(j.reopen()), &n2, condor, ArmAt::Open).await;
    let st = g2.status();
    assert_eq!(st.records.len(), 1, "no new detection: {:#?}", st.records);
    assert_eq!(st.closes.len(), 1);
    assert_eq!(
        st.strategies[0].state,
        StrategyState::Broken,
        "stays Broken"
    );
    let refused = c2
        .submit(
            OrderIntent::new(Purpose::Close, stubs::account())
                .for_strategy(StrategyId(1))
                .leg(o(Right::Put, 435), Side::Sell, 2, OrderType::Market),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "gate.strategy_broken");
    sleep_ms(10_000).await;

    let st = g2.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    assert!(
        c.orders
            .iter()
            .all(|x| x.state == EmergencyOrderState::Filled && x.filled() == x.planned.qty)
    );
    // Exactly one broker order per step, each for the full quantity: nothing sent twice.
    let execs = executions(&b).await;
    let by = orders_by_instrument(&execs);
    assert_eq!(by.len(), 4, "{by:#?}");
    for x in &c.orders {
        let orders = &by[&x.planned.instrument.id().to_string()];
        assert_eq!(
            orders.len(),
            1,
            "{} sent once: {by:#?}",
            x.planned.instrument.id()
        );
        assert_eq!(orders.values().sum::<i64>(), x.planned.qty);
    }
    // Safe order across the restart: each order only after the fills it depends on.
    for x in &c.orders {
        for &d in &x.planned.after {
            let dep = c.orders[d].fills.iter().map(|f| f.ts).max().unwrap();
            assert!(
                x.fills.iter().all(|f| f.ts >= dep),
                "{x:#?} before its dependency"
            );
        }
    }
    assert!(b.positions().await.unwrap().is_empty(), "flat");
    assert_eq!(alerts_with(&j, "assignment.detected"), 1);
    assert_eq!(
        alerts_with(&j, "assignment.unexplained"),
        0,
        "own fills are not a mystery"
    );
    assert_eq!(alerts_with(&j, "assignment.close_resumed"), 1);
    assert_eq!(alerts_with(&j, "assignment.close_completed"), 1);
    assert_eq!(
        n2.all().len(),
        1,
        "the second run only reports the completion"
    );
    assert!(n2.all()[0].title.ends_with("completed"));
    assert_eq!(st.strategies[0].state, StrategyState::Closed);
    (j, b, g2)
}

#[tokio::test(start_paused = true)]
async fn restart_after_the_first_emergency_fill_sends_only_the_rest_once() {
    // The process dies right after journaling the 460 C buy-back as filled.
    let (j, _b, _g) = crash_and_resume(21, |r| {
        matches!(r, JournalRecord::EmergencyClose(c)
            if c.close.orders[0].state == EmergencyOrderState::Filled)
    })
    .await;
    // The journal said: step 0 filled, the rest waiting.
    assert!(
        j.records()
            .iter()
            .any(|r| matches!(r, JournalRecord::Audit(a)
        if a.code == "assignment.close_resumed"))
    );
}

#[tokio::test(start_paused = true)]
async fn restart_between_submit_and_fill_matches_the_order_instead_of_resending() {
    // The process dies right after the coordinator journaled the 460 C group with its broker
    // order id (the order then goes out and fills while nothing runs): the guard's journal
    // only says "submitting" with the step's client tag.
    let (j, _b, _g) = crash_and_resume(22, |r| {
        matches!(r, JournalRecord::Group(g)
            if g.intent.client_ref.is_some() && g.legs.iter().any(|l| l.order_id.is_some()))
    })
    .await;
    let resumed = audits(&j)
        .into_iter()
        .find(|a| a.code == "assignment.close_resumed")
        .unwrap();
    assert!(
        resumed
            .reason
            .contains("buy to close SPY 21MAR25 460 C ×2 filled"),
        "{}",
        resumed.reason
    );
}

/// Short 440 P ×2 / long 435 P ×2: the delivered stock is protected by the long put, so its
/// sale depends on nothing.
fn put_spread() -> Strategy {
    let mut s = reference_condor(1, stubs::account(), expiry());
    s.legs.truncate(2);
    s.kind = tradeguard_model::StrategyKind::Vertical;
    s
}

#[tokio::test(start_paused = true)]
async fn pre_market_arming_sells_stock_at_four_and_options_at_the_open() {
    // Overnight Tuesday -> Wednesday, 02:30 New York.
    let b = broker(cfg_at(
        wed(2, 30),
        23,
        vec![
            position(o(Right::Put, 435), 2, "1.00"),
            position(o(Right::Put, 440), -2, "2.00"),
        ],
    ));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let (_c, g) = start(&b, Arc::new(j.reopen()), &n, put_spread(), ArmAt::PreMarket).await;
    sleep_ms(1_000).await;
    b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    sleep_ms(1_000).await;
    let st = g.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Armed);
    assert_eq!(c.release_at, wed(4, 0));
    assert_eq!(
        n.all()[0].title,
        "ASSIGNMENT: SPY 21MAR25 440 P ×2 assigned — emergency close armed for pre-market"
    );
    let left = g.countdown().unwrap();
    assert!(
        left <= std::time::Duration::from_secs(90 * 60)
            && left > std::time::Duration::from_secs(88 * 60),
        "{left:?}"
    );
    // Through 04:00: the stock sale goes out as an outside-RTH order and fills; the put waits.
    sleep_ms(95 * 60_000).await;
    let execs = executions(&b).await;
    assert_eq!(execs.len(), 1, "{execs:#?}");
    assert_eq!(execs[0].instrument, Instrument::stock("SPY"));
    assert_eq!((execs[0].side, execs[0].qty), (Side::Sell, 200));
    assert!(execs[0].ts >= wed(4, 0) && execs[0].ts < wed(4, 1));
    let st = g.status();
    let stock = &st.closes[0].orders[0];
    assert_eq!(stock.planned.instrument, Instrument::stock("SPY"));
    assert!(stock.outside_rth);
    assert_eq!(st.closes[0].phase, ClosePhase::Working);
    assert_eq!(st.closes[0].orders[1].state, EmergencyOrderState::Waiting);
    assert_eq!(
        st.closes[0].release_at,
        wed(9, 32),
        "countdown moves to the open (market orders 2 min after it)"
    );
    assert!(g.countdown().is_some());
    assert!(
        audits_sent(&j)
            .iter()
            .any(|m| m.contains("outside regular hours")),
        "{:#?}",
        audits_sent(&j)
    );
    // The open (market orders 2 min after it): the put is sold.
    let to_open = wed(9, 33).duration_since(now(&b));
    tokio::time::sleep(to_open).await;
    let st = g.status();
    assert_eq!(
        st.closes[0].phase,
        ClosePhase::Completed,
        "{:#?}",
        st.closes[0]
    );
    let put = executions(&b)
        .await
        .into_iter()
        .find(|e| e.instrument == o(Right::Put, 435))
        .unwrap();
    assert!(put.ts >= wed(9, 30));
    assert!(b.positions().await.unwrap().is_empty());
    assert_eq!(g.countdown(), None);
}

fn audits_sent(j: &MemoryJournal) -> Vec<String> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Audit(a) if a.code == "assignment.order_sent" => Some(a.reason),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pre_market_arming_keeps_the_safe_order_and_open_arming_waits_for_the_open() {
    // The condor: the stock covers the short 460 C, so it is not sold before that call is
    // bought back at the open, even with pre-market arming.
    for arm_at in [ArmAt::PreMarket, ArmAt::Open] {
        // 03:50: the assignment is armed across the 04:00 pre-market start.
        let b = broker(cfg_at(wed(3, 50), 24, condor_positions()));
        b.connect().await.unwrap();
        let j = MemoryJournal::new();
        let n = RecordingNotifier::new();
        let condor = reference_condor(1, stubs::account(), expiry());
        let (_c, g) = start(&b, Arc::new(j.reopen()), &n, condor, arm_at).await;
        sleep_ms(1_000).await;
        b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
        sleep_ms(1_000).await;
        let st = g.status();
        assert_eq!(st.closes[0].phase, ClosePhase::Armed, "{arm_at:?}");
        // 09:29: nothing went out.
        tokio::time::sleep(wed(9, 29).duration_since(now(&b))).await;
        assert!(
            executions(&b).await.is_empty(),
            "{arm_at:?}: nothing before the open"
        );
        sleep_ms(5 * 60_000).await;
        let st = g.status();
        assert_eq!(st.closes[0].phase, ClosePhase::Completed, "{arm_at:?}");
        let execs = executions(&b).await;
        assert!(
            execs.iter().all(|e| e.ts >= wed(9, 30)),
            "{arm_at:?}: {execs:#?}"
        );
        assert_eq!(execs[0].instrument, o(Right::Call, 460), "{arm_at:?}");
        assert!(
            st.closes[0]
                .orders
                .iter()
                .all(|x| !x.outside_rth || x.planned.instrument.as_option().is_none())
        );
        assert!(b.positions().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn emergency_close_records_survive_the_sqlite_store_and_old_intents_still_decode() {
    use tradeguard_engine::StoreJournal;
    use tradeguard_engine::assignment::{CloseSnapshot, EmergencyClose};
    let dir = tempfile::tempdir().unwrap();
    let store =
        tradeguard_store::Store::open(tradeguard_store::StoreConfig::new(dir.path().join("t.db")))
            .unwrap();
    let j = StoreJournal::new(
        &store,
        Arc::new(TokioClock::new(tue(10, 0))),
        stubs::account(),
    );
    let snap = CloseSnapshot {
        close: EmergencyClose {
            strategy: StrategyId(9),
            account: stubs::account(),
            record: 1,
            orders: Vec::new(),
            kept: Vec::new(),
            release_at: tue(9, 30),
            phase: ClosePhase::Armed,
            intended: false,
            expected: Vec::new(),
            verifying_since: None,
            how: String::new(),
        },
        strategy: Some(put_spread()),
    };
    j.append(JournalRecord::EmergencyClose(Box::new(snap.clone())))
        .await
        .unwrap();
    let st = j.load().await.unwrap();
    assert_eq!(st.emergency_closes.get(&StrategyId(9)), Some(&snap));
    // An intent journaled before `outside_rth` / `client_ref` existed.
    let mut v = serde_json::to_value(
        OrderIntent::new(Purpose::Close, stubs::account()).with_client_ref("x"),
    )
    .unwrap();
    let m = v.as_object_mut().unwrap();
    assert!(m.remove("outside_rth").is_some() && m.remove("client_ref").is_some());
    let old: OrderIntent = serde_json::from_value(v).unwrap();
    assert!(!old.outside_rth && old.client_ref.is_none());
}

/// DST seeds 1100 / 1309: the emergency buy-back of the 460 C waits in the coordinator for the
/// cancel of a managed stop on it (step Deferred, no order id yet) when the process dies. The
/// restart looks the step up by its client tag like a step in flight: its group never sent an
/// order, so the step goes out again — once, never beside a live stop-limit.
#[tokio::test(start_paused = true)]
async fn restart_while_the_emergency_order_waits_for_a_stops_cancel_sends_it_once() {
    let b = broker(cfg_at(tue(10, 0), 1309, condor_positions()));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let crash = Crashing::new(&j, |r| {
        matches!(r, JournalRecord::EmergencyClose(c)
            if c.close.orders[0].state == EmergencyOrderState::Deferred)
    });
    let condor = reference_condor(1, stubs::account(), expiry());
    let n1 = RecordingNotifier::new();
    let (c1, g1) = start(
        &b,
        Arc::new(crash.clone()),
        &n1,
        condor.clone(),
        ArmAt::Open,
    )
    .await;
    sleep_ms(1_000).await;
    let call = o(Right::Call, 460);
    c1.place_stop(StopSpec {
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
    let live_buys = |b: Arc<SimBroker>, call: Instrument| async move {
        b.open_orders()
            .await
            .unwrap()
            .iter()
            .filter(|x| matches!(&x.order, OpenOrderKind::Single(o) if o.instrument == call && o.side == Side::Buy))
            .count()
    };
    assert_eq!(live_buys(b.clone(), call.clone()).await, 1);
    b.force_assignment(&o(Right::Put, 440).id(), 2).unwrap();
    for _ in 0..1_000 {
        if crash.dead() {
            break;
        }
        sleep_ms(10).await;
        assert!(live_buys(b.clone(), call.clone()).await <= 1);
    }
    assert!(crash.dead(), "{:#?}", g1.status().closes);
    g1.abort();
    drop(c1);
    sleep_ms(2_000).await;

    let n2 = RecordingNotifier::new();
    let (_c2, g2) = start(&b, Arc::new(j.reopen()), &n2, condor, ArmAt::Open).await;
    for _ in 0..1_000 {
        sleep_ms(10).await;
        assert!(
            live_buys(b.clone(), call.clone()).await <= 1,
            "two live exits of the 460 C"
        );
    }
    let st = g2.status();
    let c = &st.closes[0];
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    let by = orders_by_instrument(&executions(&b).await);
    let bought = &by[&call.id().to_string()];
    assert_eq!(bought.len(), 1, "one buy-back order: {by:#?}");
    assert_eq!(bought.values().sum::<i64>(), 2);
    assert!(b.positions().await.unwrap().is_empty(), "flat");
    assert_eq!(alerts_with(&j, "assignment.close_resumed"), 1);
}
