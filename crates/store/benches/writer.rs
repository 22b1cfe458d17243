//! Store write benchmarks.
//!
//! Figures (written as JSON into `$TRADEGUARD_BENCH_DIR`, default `<workspace>/artifacts/bench`):
//! - `store_group_commit_rows_per_s`: acknowledged audit rows/s through the single writer with
//!   64 concurrent tokio writers (each awaits its ack before the next write).
//! - `store_naive_rows_per_s`: same writers, naive baseline: one transaction per write on a
//!   shared `Mutex<Connection>` via `spawn_blocking`, same pragmas (WAL, synchronous=NORMAL).
//! - `store_group_vs_naive_x`: the ratio, measured in the same run.
//! - `store_ack_p50_ms` / `store_ack_p99_ms`: ack latency with writes paced at 10,000/s.
//! - `store_ack_unloaded_us`: one write's ack latency with nothing else queued.
//!
//! Criterion then times a single unloaded write and a burst of 1,000 concurrent writes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tokio::runtime::Runtime;
use tradeguard_store::{Store, StoreConfig, StoreWriter, Synchronous, WriteCmd, stubs};

/// Concurrent tokio writers in the throughput runs; each awaits its ack before writing again.
const WRITERS: usize = 256;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench_dir() -> PathBuf {
    std::env::var_os("TRADEGUARD_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/bench"),
        PathBuf::from,
    )
}

fn figure(id: &str, metric: &str, value: f64, unit: &str, goal: &str) {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    let v = serde_json::json!({ "id": id, "metric": metric, "value": value, "unit": unit, "goal": goal });
    std::fs::write(dir.join(format!("{id}.json")), v.to_string()).expect("write figure");
    println!("figure {id}: {value:.3} {unit} (goal {goal})");
}

fn audit(i: usize) -> WriteCmd {
    WriteCmd::Audit(stubs::audit(
        i64::try_from(i).unwrap_or(0),
        "bench/account:U1",
    ))
}

/// Acked rows/s with `WRITERS` tasks each writing `per_writer` rows through the store.
fn group_commit_rate(rt: &Runtime, sync: Synchronous, per_writer: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreConfig::new(dir.path().join("b.db")).with_synchronous(sync))
        .expect("open");
    let rate = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|t| {
                let w = store.writer();
                tokio::spawn(async move {
                    for i in 0..per_writer {
                        w.write(audit(t * per_writer + i)).await.expect("write");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        (WRITERS * per_writer) as f64 / start.elapsed().as_secs_f64()
    });
    let n = store.reader().audit_count().expect("count");
    assert_eq!(n, i64::try_from(WRITERS * per_writer).unwrap_or(-1));
    let st = store.stats();
    println!(
        "group commit ({sync:?}): {} requests in {} commits (avg group {:.1})",
        st.committed_requests,
        st.commits,
        st.committed_requests as f64 / st.commits.max(1) as f64
    );
    rt.block_on(store.close()).expect("close");
    rate
}

/// The naive baseline: one transaction per write, shared connection behind a mutex.
fn naive_rate(rt: &Runtime, sync: Synchronous, per_writer: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.db");
    // Same schema and pragmas as the store.
    rt.block_on(Store::open(StoreConfig::new(&path)).expect("open").close())
        .expect("close");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let sync_sql = match sync {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync_sql}; PRAGMA foreign_keys = ON;"
    ))
    .expect("pragmas");
    let conn = Arc::new(Mutex::new(conn));
    let details = serde_json::to_string(&stubs::audit(0, "x").details).expect("json");
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|t| {
                let conn = Arc::clone(&conn);
                let details = details.clone();
                tokio::spawn(async move {
                    for i in 0..per_writer {
                        let conn = Arc::clone(&conn);
                        let details = details.clone();
                        tokio::task::spawn_blocking(move || {
                            let c = conn.lock().expect("mutex");
                            c.execute_batch("BEGIN IMMEDIATE").expect("begin");
                            c.prepare_cached(
                                "INSERT INTO audit_log (ts_ms, kind, subject, reason, details)
                                 VALUES (?1, 'rule_fired', 'bench/account:U1', 'naive', ?2)",
                            )
                            .expect("prepare")
                            .execute(rusqlite::params![
                                i64::try_from(t * per_writer + i).unwrap_or(0),
                                details
                            ])
                            .expect("insert");
                            c.execute_batch("COMMIT").expect("commit");
                        })
                        .await
                        .expect("join");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        (WRITERS * per_writer) as f64 / start.elapsed().as_secs_f64()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Ack latencies with writes issued at `per_sec` for `secs` seconds.
fn paced_latencies(rt: &Runtime, per_sec: u32, secs: u32) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreConfig::new(dir.path().join("p.db"))).expect("open");
    let total = (per_sec * secs) as usize;
    let interval = Duration::from_secs(1) / per_sec;
    let mut lat = rt.block_on(async {
        let start = tokio::time::Instant::now();
        let mut handles = Vec::with_capacity(total);
        for i in 0..total {
            tokio::time::sleep_until(start + interval * u32::try_from(i).unwrap_or(u32::MAX)).await;
            let w: StoreWriter = store.writer();
            handles.push(tokio::spawn(async move {
                let t0 = Instant::now();
                w.write(audit(i)).await.expect("write");
                t0.elapsed()
            }));
        }
        let mut out = Vec::with_capacity(total);
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    });
    rt.block_on(store.close()).expect("close");
    lat.sort_unstable();
    lat
}

fn figures() {
    let rt = runtime();
    // Warm up file system / allocator once.
    let _ = group_commit_rate(&rt, Synchronous::Normal, 20);
    let group = group_commit_rate(&rt, Synchronous::Normal, 500);
    let naive = naive_rate(&rt, Synchronous::Normal, 40);
    figure(
        "store_group_commit_rows_per_s",
        "acked audit rows/s, single writer + group commit, 256 writers, WAL+NORMAL (default)",
        group,
        "rows/s",
        ">= 50000 rows/s",
    );
    figure(
        "store_naive_rows_per_s",
        "acked audit rows/s, naive 1 txn per write on Mutex<Connection>, 256 writers, WAL+NORMAL",
        naive,
        "rows/s",
        "baseline",
    );
    figure(
        "store_group_vs_naive_x",
        "group commit / naive throughput, same run, WAL+NORMAL (no fsync per commit)",
        group / naive,
        "x",
        ">= 20 x",
    );
    let group_full = group_commit_rate(&rt, Synchronous::Full, 200);
    let naive_full = naive_rate(&rt, Synchronous::Full, 4);
    figure(
        "store_group_full_rows_per_s",
        "acked audit rows/s, group commit, 256 writers, WAL+FULL (fsync per commit)",
        group_full,
        "rows/s",
        "info",
    );
    figure(
        "store_group_vs_naive_full_x",
        "group commit / naive throughput, same run, WAL+FULL (fsync per commit)",
        group_full / naive_full,
        "x",
        ">= 20 x",
    );

    let lat = paced_latencies(&rt, 10_000, 2);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    figure(
        "store_ack_p50_ms",
        "ack latency p50 at paced 10k writes/s (default config)",
        ms(percentile(&lat, 0.50)),
        "ms",
        "info",
    );
    figure(
        "store_ack_p99_ms",
        "ack latency p99 at paced 10k writes/s (default config)",
        ms(percentile(&lat, 0.99)),
        "ms",
        "< 5 ms",
    );
    println!(
        "paced 10k/s: n={} max={:.3} ms",
        lat.len(),
        ms(*lat.last().unwrap_or(&Duration::ZERO))
    );
}

fn criterion_benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreConfig::new(dir.path().join("c.db"))).expect("open");
    let w = store.writer();
    let mut i = 0_usize;
    let mut unloaded = Vec::new();
    c.bench_function("store/write_ack_unloaded", |b| {
        b.iter(|| {
            i += 1;
            let t0 = Instant::now();
            rt.block_on(w.write(audit(i))).expect("write");
            unloaded.push(t0.elapsed());
        });
    });
    unloaded.sort_unstable();
    if !unloaded.is_empty() {
        figure(
            "store_ack_unloaded_us",
            "ack latency of one write, nothing else queued (median)",
            percentile(&unloaded, 0.5).as_secs_f64() * 1e6,
            "us",
            "info",
        );
    }
    c.bench_function("store/burst_1000_concurrent_writes", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..1000)
                    .map(|k| {
                        let w = w.clone();
                        tokio::spawn(async move { w.write(audit(k)).await })
                    })
                    .collect();
                for h in hs {
                    h.await.expect("task").expect("write");
                }
            });
        });
    });
    drop(w);
    rt.block_on(store.close()).expect("close");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = criterion_benches
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // listed or run as a test (nextest, cargo test): measure only under `cargo bench`
    }
    figures();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
