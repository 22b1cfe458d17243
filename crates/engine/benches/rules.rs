//! Rule evaluation with 32 rules over 500 positions (250 verticals in 4 accounts).
//!
//! - event → decision: one position's mark changes (row + strategy view updated), then
//!   [`evaluate_position`] decides; p50/p99 from our own loop (goal: p99 < 1 ms), for quiet
//!   events and for events that fire a flatten (intent built);
//! - position events per second through that path on one thread (goal: ≥ 200 000/s);
//! - a full [`evaluate`] of everything (informational).
//!
//! Figure files go to `$TRADEGUARD_BENCH_DIR` (default `<workspace>/artifacts/bench`).
//! Run: `cargo bench -p tradeguard-engine --bench rules`.

mod common;
use common::write_figure;
use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tradeguard_engine::live::{MarkStatus, PositionView};
use tradeguard_engine::rules::stubs::{bench_config, bench_rows, session, set_mark, snapshot};
use tradeguard_engine::rules::{
    EvalIndex, EvalInput, Evaluation, RiskConfig, RuleState, evaluate, evaluate_indexed,
    evaluate_position,
};
use tradeguard_engine::strategies::{StrategyBook, StrategyView};
use tradeguard_model::{AccountSnapshot, Price, Timestamp};

const POSITIONS: usize = 500;

struct World {
    cfg: RiskConfig,
    rows: Vec<PositionView>,
    strategies: Vec<StrategyView>,
    accounts: Vec<AccountSnapshot>,
    spots: HashMap<String, Price>,
    /// Position index → (strategy index, leg index) holding it.
    holder: Vec<(usize, usize)>,
    now: Timestamp,
    state: RuleState,
}

impl World {
    fn new() -> Self {
        let cfg = bench_config();
        assert_eq!(cfg.rules.len(), 32, "the bench runs 32 rules");
        let rows = bench_rows(POSITIONS);
        let mut book = StrategyBook::new();
        book.sync_views(&rows);
        let strategies = book.views(&rows);
        let holder = rows
            .iter()
            .map(|r| {
                strategies
                    .iter()
                    .enumerate()
                    .find_map(|(si, s)| {
                        let li = s.legs.iter().position(|l| l.instrument == r.instrument)?;
                        (s.account == r.account).then_some((si, li))
                    })
                    .expect("every row is in a strategy")
            })
            .collect();
        let today = chrono::NaiveDate::from_ymd_opt(2025, 3, 4).expect("date");
        let now = Timestamp::from_secs(
            today
                .and_hms_opt(15, 0, 0)
                .expect("time")
                .and_utc()
                .timestamp(),
        );
        let accounts = (0..4)
            .map(|i| snapshot(&format!("B{i}"), "1000000", now))
            .collect();
        Self {
            cfg,
            rows,
            strategies,
            accounts,
            spots: HashMap::new(),
            holder,
            now,
            state: RuleState::new(),
        }
    }

    fn input(&self) -> EvalInput<'_> {
        EvalInput {
            config: &self.cfg,
            strategies: &self.strategies,
            positions: &self.rows,
            accounts: &self.accounts,
            spots: &self.spots,
            session: session(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap_or_default()),
            now: self.now,
        }
    }

    /// Applies a mark to position `i` (row and strategy leg) — the event.
    fn apply(&mut self, i: usize, mark: Price) {
        set_mark(&mut self.rows[i], Some(mark), MarkStatus::Fresh);
        let (si, li) = self.holder[i];
        let r = &self.rows[i];
        let s = &mut self.strategies[si];
        s.legs[li].set_mark(r.mark, r.mark_status, r.quote_age, r.greeks);
        s.recompute();
    }

    /// One event → decision.
    fn event(&mut self, ix: &EvalIndex, i: usize, mark: Price) -> Evaluation {
        self.apply(i, mark);
        let input = EvalInput {
            config: &self.cfg,
            strategies: &self.strategies,
            positions: &self.rows,
            accounts: &self.accounts,
            spots: &self.spots,
            session: session(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap_or_default()),
            now: self.now,
        };
        evaluate_position(&input, ix, i, &mut self.state)
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    (pct(0.50), pct(0.99))
}

/// Quiet marks for short (even) and long (odd) rows: P&L about 20 % of the credit.
fn quiet(i: usize, k: usize) -> Price {
    let base = if i.is_multiple_of(2) { 24_500 } else { 9_000 };
    Price::from_raw(base + (k % 5) as i64 * 100)
}

fn bench(c: &mut Criterion) {
    if !measuring() {
        return; // listed or run as a test (nextest, cargo test): measure only under `cargo bench`
    }

    let mut w = World::new();
    let ix = EvalIndex::build(&w.input());

    // Sanity: a quiet event decides nothing; a loss beyond 3.5× credit fires a stop flatten.
    assert!(w.event(&ix, 0, quiet(0, 0)).decisions.is_empty());
    let fired = w.event(&ix, 0, Price::from_raw(200_000));
    assert!(fired.intents().count() > 0, "stop loss fires with intents");
    w.event(&ix, 0, quiet(0, 0));

    // Quiet event → decision latency.
    let mut samples = Vec::with_capacity(100_000);
    for k in 0..100_000 {
        let i = k % POSITIONS;
        let t = Instant::now();
        black_box(w.event(&ix, i, quiet(i, k)));
        samples.push(t.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    // Firing event → decision with the flatten intent built (alternating fire / recover).
    let mut samples = Vec::with_capacity(20_000);
    for k in 0..20_000 {
        let i = (k / 2 * 2) % POSITIONS; // short rows
        let mark = if k.is_multiple_of(2) {
            Price::from_raw(200_000)
        } else {
            quiet(i, k)
        };
        let t = Instant::now();
        black_box(w.event(&ix, i, mark));
        if k.is_multiple_of(2) {
            samples.push(t.elapsed());
        }
    }
    let (f50, f99) = percentiles(samples);

    // Throughput on one thread.
    let n = 400_000;
    let t = Instant::now();
    for k in 0..n {
        let i = k % POSITIONS;
        black_box(w.event(&ix, i, quiet(i, k)));
    }
    let per_sec = n as f64 / t.elapsed().as_secs_f64();

    // Full evaluation of everything.
    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let input = w.input();
        let mut state = w.state.clone();
        let t = Instant::now();
        black_box(evaluate(&input, &mut state));
        samples.push(t.elapsed());
    }
    let (full50, full99) = percentiles(samples);
    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let input = w.input();
        let mut state = w.state.clone();
        let t = Instant::now();
        black_box(evaluate_indexed(&input, &ix, &mut state));
        samples.push(t.elapsed());
    }
    let (_, fullix99) = percentiles(samples);

    println!(
        "rules 32×{POSITIONS}: event→decision p50 {p50:.2} µs p99 {p99:.2} µs; firing p50 {f50:.2} µs p99 {f99:.2} µs; {per_sec:.0} events/s; full evaluate p50 {full50:.1} µs p99 {full99:.1} µs (indexed p99 {fullix99:.1} µs)"
    );
    write_figure(
        "rules_event_to_decision_p50",
        "position event -> rule decision, 32 rules over 500 positions, p50",
        p50,
        "us",
        "informational",
    );
    write_figure(
        "rules_event_to_decision_p99",
        "position event -> rule decision, 32 rules over 500 positions, p99",
        p99,
        "us",
        "< 1000 us",
    );
    write_figure(
        "rules_firing_event_to_intent_p99",
        "position event -> fired decision with flatten intent, 32 rules / 500 positions, p99",
        f99,
        "us",
        "< 1000 us",
    );
    write_figure(
        "rules_events_per_sec",
        "position events through rule evaluation, one thread",
        per_sec,
        "events/s",
        ">= 200000 events/s",
    );
    write_figure(
        "rules_full_evaluate_indexed_p99",
        "full evaluation of 32 rules over 500 positions with a kept index, p99",
        fullix99,
        "us",
        "informational",
    );
    write_figure(
        "rules_full_evaluate_p99",
        "full evaluation of 32 rules over 500 positions (every subject), p99",
        full99,
        "us",
        "informational",
    );

    let mut g = c.benchmark_group("rules");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let mut k = 0usize;
    g.bench_function("event_to_decision_32x500", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let i = k % POSITIONS;
            black_box(w.event(&ix, i, quiet(i, k)))
        })
    });
    let input_owner = World::new();
    let input = input_owner.input();
    let mut state = RuleState::new();
    g.bench_function("full_evaluate_32x500", |b| {
        b.iter(|| black_box(evaluate(&input, &mut state)))
    });
    let full_ix = EvalIndex::build(&input);
    g.bench_function("full_evaluate_indexed_32x500", |b| {
        b.iter(|| black_box(evaluate_indexed(&input, &full_ix, &mut state)))
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
