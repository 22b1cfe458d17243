//! Venue throughput: virtual seconds simulated per wall second for the demo book with quotes.
//! Writes `sim_venue_steps_per_sec.json` into TRADEGUARD_BENCH_DIR (default artifacts/bench).

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use tradeguard_sim::Scenario;

fn demo_hour(c: &mut Criterion) {
    if !measuring() {
        return; // listed or run as a test (nextest, cargo test): measure only under `cargo bench`
    }

    let s = Scenario::demo(1);
    let mut g = c.benchmark_group("sim");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("demo_10_virtual_minutes", |b| {
        b.iter(|| {
            let mut v = s.venue().expect("demo venue");
            v.connect();
            let _ = v.subscribe_quotes(&s.instruments());
            let until = v.now().plus(Duration::from_secs(600));
            v.step(until).len()
        })
    });
    g.finish();

    // Figure file: steps (virtual seconds) per wall second over one virtual hour.
    let mut v = s.venue().expect("demo venue");
    v.connect();
    let _ = v.subscribe_quotes(&s.instruments());
    let t0 = Instant::now();
    let until = v.now().plus(Duration::from_secs(3600));
    v.step(until);
    let rate = 3600.0 / t0.elapsed().as_secs_f64();
    let dir = std::env::var("TRADEGUARD_BENCH_DIR").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../artifacts/bench").to_owned()
    });
    if std::fs::create_dir_all(&dir).is_ok() {
        let json = format!(
            "{{\"id\": \"sim_venue_steps_per_sec\", \"metric\": \"sim venue: 1 s steps per wall second (demo book, 9 quoted instruments)\", \"value\": {rate:.1}, \"unit\": \"steps/s\", \"goal\": \">= 600 (60x speed with headroom)\"}}"
        );
        let _ = std::fs::write(format!("{dir}/sim_venue_steps_per_sec.json"), json);
    }
}

/// `cargo bench` passes `--bench`; nextest and `cargo test` list or run bench targets without
/// it, and then nothing is measured and no figure file is written.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

criterion_group!(benches, demo_hour);
criterion_main!(benches);
