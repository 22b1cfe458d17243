//! Assignment guard latency: from the position event that completes an assignment (the stock
//! delivery after the option fall of the reference condor) until the first emergency orders
//! were handed to the broker through the coordinator (market open), or armed (market closed).
//! In-process, silent no-op broker, fresh guard + coordinator per sample. Goal: p99 < 10 ms.
//!
//! Run: `cargo bench -p tradeguard-engine --bench assignment`.

mod common;
use common::write_figure;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradeguard_engine::assignment::stubs::reference_condor_guard;
use tradeguard_engine::assignment::{AssignmentGuard, ClosePhase};
use tradeguard_model::{
    BrokerEvent, Instrument, ManualClock, OptionContract, Position, Price, Right, Timestamp, stubs,
};

fn expiry() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap_or_default()
}

fn opt(right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        expiry(),
        right,
        Price::from_units(strike).unwrap_or_default(),
    ))
}

fn pos(i: Instrument, qty: i64) -> Position {
    Position {
        account: stubs::account(),
        instrument: i,
        qty,
        avg_cost: Price::ZERO,
    }
}

/// 2025-03-04 10:00 (open) or 02:30 (closed) New York, simulator calendar (UTC−5).
fn at(open: bool) -> Timestamp {
    Timestamp::from_secs(if open { 1_741_100_400 } else { 1_741_073_400 })
}

/// A fresh coordinator + guard seeded with the condor; returns the guard ready for events.
async fn setup(open: bool) -> AssignmentGuard {
    reference_condor_guard(
        Arc::new(ManualClock::new(at(open))),
        Arc::new(tradeguard_engine::stubs::NoopBroker::silent()),
    )
    .await
    .expect("guard")
}

/// Feeds the option fall, then times the stock delivery event until it returned.
async fn one(open: bool) -> Duration {
    let mut g = setup(open).await;
    g.on_event(&BrokerEvent::Position(pos(opt(Right::Put, 440), 0)))
        .await;
    let t = Instant::now();
    g.on_event(&BrokerEvent::Position(pos(Instrument::stock("SPY"), 200)))
        .await;
    let d = t.elapsed();
    let st = g.status();
    let ok = st.closes.len() == 1
        && if open {
            st.closes[0].orders[0].order_id.is_some()
        } else {
            st.closes[0].phase == ClosePhase::Armed
        };
    assert!(ok, "no emergency response: {st:#?}");
    d
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn bench(c: &mut Criterion) {
    if !measuring() {
        return; // listed or run as a test (nextest, cargo test): measure only under `cargo bench`
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (open, name) in [(true, "submitted"), (false, "armed")] {
        let mut s: Vec<Duration> = (0..400).map(|_| rt.block_on(one(open))).collect();
        s.sort_unstable();
        let (p50, p99) = (pct(&s, 0.50), pct(&s, 0.99));
        println!("assignment event -> emergency orders {name}: p50 {p50:.3} ms, p99 {p99:.3} ms");
        write_figure(
            &format!("assignment_event_to_orders_{name}_p99"),
            &format!("assignment guard: position event -> emergency orders {name}, p99"),
            p99,
            "ms",
            "< 10 ms",
        );
        write_figure(
            &format!("assignment_event_to_orders_{name}_p50"),
            &format!("assignment guard: position event -> emergency orders {name}, p50"),
            p50,
            "ms",
            "< 10 ms (p99)",
        );
    }
    let mut g = c.benchmark_group("assignment");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("event_to_orders_submitted", |b| {
        b.iter_custom(|n| (0..n).map(|_| rt.block_on(one(true))).sum())
    });
    g.finish();
}

/// `cargo bench` passes `--bench`; nextest and `cargo test` list or run bench targets without
/// it, and then nothing is measured and no figure file is written.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

criterion_group!(benches, bench);
criterion_main!(benches);
