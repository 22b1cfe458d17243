//! `tradeguard guard` on the simulated venue: runs for a short period, prints the status and
//! stops cleanly; a bad config names the file and exits with code 2.

use std::process::Command;

fn tradeguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradeguard"))
}

#[test]
fn headless_guard_on_the_sim_reports_status_and_stops_cleanly() {
    let out = tradeguard()
        .args([
            "guard",
            "--broker",
            "sim",
            "--seed",
            "5",
            "--speed",
            "60",
            "--for",
            "1.5",
            "--status-every",
            "0.5",
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("guard: simulated demo venue, seed 5, speed 60x"),
        "{stdout}"
    );
    // The demo account holds 9 positions; every status line reports them all.
    let status: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("status: "))
        .collect();
    assert!(status.len() >= 3, "periodic + final status: {stdout}");
    assert!(
        status.iter().all(|l| l.contains("9 positions monitored")),
        "{stdout}"
    );
    assert!(
        status.last().unwrap().contains("enforcer: last check"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("guard: stopped cleanly"),
        "{stdout}"
    );
}

#[test]
fn bad_guard_config_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.toml");
    std::fs::write(&path, "[guard]\nreconcile_secs = \"often\"\n").unwrap();
    let out = tradeguard()
        .args(["guard", "--broker", "sim", "--for", "1", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guard.toml"), "{err}");
    assert!(err.contains("reconcile_secs"), "{err}");
    assert!(err.contains("guard.bad_config"), "{err}");
}
