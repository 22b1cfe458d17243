//! Gate + coordinator overhead per order: from `submit` (decision) until the broker's `place`
//! returned, in-process, with a broker that fills at once (so groups complete and state stays
//! small). Criterion timing plus p50/p99 figure files (goal: p99 < 50 µs).
//!
//! Run: `cargo bench -p tradeguard-engine`.

mod common;
use common::write_figure;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradeguard_engine::stubs::NoopBroker;
use tradeguard_engine::{
    EngineConfig, EngineDeps, ExecutionCoordinator, GateConfig, IntrinsicStressModel,
    MemoryJournal, OrderIntent, Purpose,
};
use tradeguard_model::{OrderType, Price, Side, SystemClock, stubs};

fn engine(rt: &tokio::runtime::Runtime) -> ExecutionCoordinator {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots
        .insert("SPY".into(), Price::from_units(450).unwrap_or_default());
    let config = EngineConfig {
        // The bench measures overhead, not the 50 msg/s pacing.
        gate: GateConfig {
            max_msgs_per_sec: 10_000_000,
            burst: 10_000_000,
            ..GateConfig::default()
        },
        ..EngineConfig::default()
    };
    rt.block_on(ExecutionCoordinator::start(EngineDeps {
        broker: Arc::new(NoopBroker::filling()),
        journal: Arc::new(MemoryJournal::new()),
        clock: Arc::new(SystemClock),
        risk: Box::new(risk),
        config,
    }))
    .expect("engine starts")
}

fn intent() -> OrderIntent {
    // A covered-by-nothing long put: runs every gate check including the stress grid.
    OrderIntent::new(Purpose::Open, stubs::account()).leg(
        stubs::put(430),
        Side::Buy,
        1,
        OrderType::Limit {
            limit: Price::from_units(2).unwrap_or_default(),
        },
    )
}

fn bench(c: &mut Criterion) {
    if !measuring() {
        return; // listed or run as a test (nextest, cargo test): measure only under `cargo bench`
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let coord = engine(&rt);
    let i = intent();
    // Percentiles from our own loop.
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..2_000 {
        rt.block_on(coord.submit(i.clone())).expect("accepted");
    }
    for _ in 0..20_000 {
        let t = Instant::now();
        rt.block_on(coord.submit(i.clone())).expect("accepted");
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    let (p50, p99) = (pct(0.50), pct(0.99));
    println!("engine gate+coordinator per order: p50 {p50:.2} µs, p99 {p99:.2} µs");
    write_figure(
        "engine_order_overhead_p50",
        "gate + coordinator per order (decision to broker call), p50",
        p50,
        "us",
        "informational",
    );
    write_figure(
        "engine_order_overhead_p99",
        "gate + coordinator per order (decision to broker call), p99",
        p99,
        "us",
        "< 50 us",
    );
    let mut g = c.benchmark_group("engine");
    g.sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("submit_single_leg_open", |b| {
        b.iter(|| rt.block_on(coord.submit(i.clone())).expect("accepted"))
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
