//! The assignment guard keeps guarding when its own machinery fails (issue "Do no harm"):
//! position events the stream lost are found through the reconciler's snapshots, and a guard
//! task that died is started again by the supervisor from its journal, loudly.

mod common;
mod support;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use support::WrappedBroker;
use tradeguard_engine::assignment::{
    AssignmentConfig, ClosePhase, DetectionKind, RecordingNotifier, UsEquityHours,
};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, NoRules};
use tradeguard_engine::{Alert, IntrinsicStressModel, MemoryJournal, Severity, TokioClock};
use tradeguard_model::{Broker, Instrument, Right};
use tradeguard_sim::scenario::DEMO_ASSIGNMENT_AFTER;
use tradeguard_sim::{SimBroker, calendar};

async fn start_guard(
    b: Arc<dyn Broker>,
    start: tradeguard_model::Timestamp,
    j: &MemoryJournal,
) -> Guard {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("575"));
    Guard::start(GuardDeps {
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: engine_cfg(),
        enforce: EnforceConfig::default(),
        evaluator: Box::new(NoRules),
        hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap()
}

fn demo() -> Arc<SimBroker> {
    broker(tradeguard_sim::Scenario::demo(7).config)
}

fn stock() -> Instrument {
    Instrument::stock("SPY")
}

/// The demo's assignment (one short 590 P of the 590/580 put spread, 100 shares delivered)
/// was handled: one record, its close completed, the spread gone at the venue.
async fn assert_demo_assignment_handled(g: &Guard, b: &SimBroker) {
    let st = g.assignment_status();
    assert_eq!(st.records.len(), 1, "{st:#?}");
    let rec = &st.records[0];
    assert_eq!(rec.kind, DetectionKind::Assigned);
    assert_eq!(rec.option, opt(Right::Put, 590));
    assert_eq!((rec.contracts, rec.stock_delivered), (1, 100));
    let c = st
        .closes
        .iter()
        .find(|c| Some(c.strategy) == rec.strategy)
        .expect("an emergency close of the spread");
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    for strike in [590, 580] {
        assert_eq!(
            qty_at_broker(b, &opt(Right::Put, strike)).await,
            0,
            "{st:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_assignment_whose_position_events_were_lost_is_found_by_reconciliation() {
    let sim = demo();
    sim.connect().await.unwrap();
    let start = venue(&sim).lock().unwrap().now();
    // Every position event of the assigned put and of the stock is lost until well after the
    // assignment: only the broker's snapshots show it.
    let until = tokio::time::Instant::now() + DEMO_ASSIGNMENT_AFTER + Duration::from_secs(120);
    let b = Arc::new(
        WrappedBroker::new(sim.clone())
            .with_lost_positions(vec![opt(Right::Put, 590), stock()], until),
    );
    let j = MemoryJournal::new();
    let g = start_guard(b, start, &j).await;
    // Two reconciliation intervals after the assignment at the most (one to see, one to
    // confirm), then the close.
    let interval = EnforceConfig::default().reconcile_interval;
    sleep_ms((DEMO_ASSIGNMENT_AFTER + interval * 2 + Duration::from_secs(30)).as_millis() as u64)
        .await;
    assert_demo_assignment_handled(&g, &sim).await;
    // The book regrouped the leftover puts with the iron condor's calls meanwhile; the close
    // is the put spread's alone: the condor and the strangle are untouched.
    for (i, q) in [
        (opt(Right::Call, 600), -1),
        (opt(Right::Call, 610), 1),
        (opt(Right::Put, 550), -1),
        (opt(Right::Put, 540), 1),
    ] {
        assert_eq!(qty_at_broker(&sim, &i).await, q, "{i:?}");
    }
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_assignment_guard_is_restarted_with_a_critical_alert_and_keeps_guarding() {
    let sim = demo();
    sim.connect().await.unwrap();
    let start = venue(&sim).lock().unwrap().now();
    let j = MemoryJournal::new();
    let g = start_guard(sim.clone(), start, &j).await;
    let mut rx = g.subscribe_alerts();
    sleep_ms(2_000).await;
    let first = g.assignment();
    first.abort();
    sleep_ms(10_000).await;
    assert!(first.is_finished());
    assert!(!g.assignment().is_finished(), "a new assignment guard runs");
    let mut alerts: Vec<Alert> = Vec::new();
    while let Ok(a) = rx.try_recv() {
        alerts.push(a);
    }
    assert!(
        alerts
            .iter()
            .any(|a| a.code == "assignment.restarted" && a.severity == Severity::Critical),
        "{alerts:#?}"
    );
    // The restarted guard handles the demo's assignment at 6 minutes.
    sleep_ms((DEMO_ASSIGNMENT_AFTER + Duration::from_secs(30)).as_millis() as u64).await;
    assert_demo_assignment_handled(&g, &sim).await;
    g.shutdown().await;
}
