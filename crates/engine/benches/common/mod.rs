//! What every engine benchmark shares: writing one figure for `make bench`'s table.

/// Writes one figure as `$TRADEGUARD_BENCH_DIR/{id}.json` (default `artifacts/bench`), read by
/// `scripts/bench_table.py`.
pub fn write_figure(id: &str, metric: &str, value: f64, unit: &str, goal: &str) {
    let dir = std::env::var("TRADEGUARD_BENCH_DIR")
        .unwrap_or_else(|_| format!("{}/../../artifacts/bench", env!("CARGO_MANIFEST_DIR")));
    let _ = std::fs::create_dir_all(&dir);
    let body =
        serde_json::json!({"id": id, "metric": metric, "value": value, "unit": unit, "goal": goal});
    if let Err(e) = std::fs::write(format!("{dir}/{id}.json"), body.to_string()) {
        eprintln!("figure {id} not written: {e}");
    }
}
