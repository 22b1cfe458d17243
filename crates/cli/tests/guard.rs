//! `tradeguard guard` on the simulated venue: runs for a short period, prints the status and
//! stops cleanly; a bad config names the file and exits with code 2; a second guard on the same
//! data directory fails with the store's lock error naming the first one's pid.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn tradeguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradeguard"))
}

#[test]
fn headless_guard_on_the_sim_reports_status_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
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
        .env("TRADEGUARD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        dir.path().join("tradeguard.db").exists(),
        "journal in the data dir"
    );
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

#[test]
fn second_guard_on_the_same_data_dir_fails_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = tradeguard()
        .args(["guard", "--broker", "sim", "--speed", "60", "--for", "20"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first guard holds the store (it prints its journal path after opening).
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let opened = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("guard: journal "));
    assert!(opened, "first guard did not open its journal");
    let out = tradeguard()
        .args(["guard", "--broker", "sim", "--for", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.locked"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("guard: started"),
        "the second guard never started"
    );
}
