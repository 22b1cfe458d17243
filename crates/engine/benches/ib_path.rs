//! The real IB path, end to end (issue "Real TWS", latency): an assignment's position messages
//! written on the socket by the fake TWS, read by the real `ibapi` client inside `IbBroker`,
//! through the production guard (event pump, live book, strategy book, assignment guard,
//! coordinator and its gate), until the emergency close's first order arrives back at the fake
//! as a PlaceOrder. A 1-lot put credit spread (SPY 440/435) has its short put assigned; the
//! market is open, so the close goes out at once. Fresh fake and guard per sample (their
//! start-up is not timed); 40 samples. Goal: p99 < 2 ms.
//!
//! Run: `cargo bench -p tradeguard-engine --bench ib_path`.

mod common;
use common::write_figure;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_engine::stubs::production_guard;
use tradeguard_ibkr::fake_tws::{FakeTws, QuoteScript, proto};
use tradeguard_ibkr::{IbBroker, IbSettings};
use tradeguard_model::SystemClock;

const ACCOUNT: &str = "DU-BENCH";
const SAMPLES: usize = 40;

fn quote(mid: f64) -> QuoteScript {
    QuoteScript::around(mid)
}

fn stock() -> proto::Contract {
    FakeTws::stock(756_733, "SPY")
}

fn put(id: i32, strike: f64) -> proto::Contract {
    FakeTws::option(id, "SPY", "20301220", "P", strike)
}

/// One sample: the time from the assignment's first position message to the first order.
async fn sample() -> Duration {
    let f = FakeTws::start_for(ACCOUNT).await.expect("the fake starts");
    f.add_contract(stock());
    f.set_quote(stock(), quote(450.0));
    for (c, qty, mid) in [(put(41, 440.0), -1.0, 3.0), (put(42, 435.0), 1.0, 1.5)] {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(mid));
        f.set_position(ACCOUNT, c, qty, mid * 100.0);
    }
    let broker = Arc::new(IbBroker::new(
        IbSettings {
            port: f.port(),
            client_id: 7,
            account: ACCOUNT.into(),
            ..IbSettings::default()
        },
        Arc::new(SystemClock),
    ));
    let g = production_guard(
        broker,
        Arc::new(SystemClock),
        Arc::new(tradeguard_engine::assignment::AlwaysOpen),
        &[("SPY", "450")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await
    .expect("the guard starts");
    let ready = Instant::now() + Duration::from_secs(30);
    while g.strategies().is_empty() {
        assert!(Instant::now() < ready, "the spread was never recognised");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The strategy book pushes its strategies to the assignment guard once a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let placed = |f: &FakeTws| f.placed().iter().any(|p| p.order.what_if != Some(true));
    assert!(!placed(&f), "nothing placed before the assignment");
    let t0 = Instant::now();
    f.set_position(ACCOUNT, put(41, 440.0), 0.0, 0.0);
    f.set_position(ACCOUNT, stock(), 100.0, 440.0);
    let arrived = f.wait_for(Duration::from_secs(30), placed).await;
    let d = t0.elapsed();
    assert!(arrived, "no emergency order: {:#?}", g.assignment_status());
    g.shutdown().await;
    d
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() {
    // Test runners list the targets (`--list`: this is a benchmark, not a test) and `cargo test
    // --all-targets` runs benches without `--bench`: only `cargo bench` measures.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("ib_path: benchmark");
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        samples.push(rt.block_on(sample()));
    }
    samples.sort();
    let (p50, p99, max) = (pct(&samples, 0.5), pct(&samples, 0.99), pct(&samples, 1.0));
    println!(
        "ib_path: position message on the socket -> emergency order at the fake TWS: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms ({SAMPLES} samples)"
    );
    write_figure(
        "ib_path_p50",
        "IB assignment: socket to emergency order, p50",
        p50,
        "ms",
        "",
    );
    write_figure(
        "ib_path_p99",
        "IB assignment: socket to emergency order, p99",
        p99,
        "ms",
        "< 2 ms",
    );
}
