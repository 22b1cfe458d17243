//! `tradeguard guard` on the simulated venue: runs for a short period, prints the status and
//! stops cleanly, its data directory private (0700); a bad config file never stops it (a Critical alert names file, line and field,
//! the last good rules kept in the journal run, or none in dry-run, and fixing the file applies
//! it while running); a second guard on the same data directory fails with the store's lock
//! error naming the first one's pid.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn tradeguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradeguard"))
}

#[test]
fn headless_guard_on_the_sim_reports_status_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // An existing data directory readable by everyone is made private.
    #[cfg(unix)]
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data dir is private");
    }
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

/// Runs `tradeguard guard` on the sim for `secs` with `config` and the data dir `data`.
fn run_guard(config: &std::path::Path, data: &std::path::Path, secs: &str) -> (i32, String) {
    let out = tradeguard()
        .args(["guard", "--broker", "sim", "--speed", "60", "--for", secs])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

fn alert_lines<'a>(stdout: &'a str, code: &str) -> Vec<&'a str> {
    let prefix = format!("alert [{code}] ");
    stdout.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// `max_contracts` (line 5) is text: a hand edit gone wrong.
const BAD_RULES: &str =
    "dry_run = true\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = \"two\"\n";

#[test]
fn bad_rules_file_at_start_still_guards_with_a_critical_alert_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, BAD_RULES).unwrap();
    let (code, stdout) = run_guard(&path, &dir.path().join("data"), "2");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("guard: started"), "{stdout}");
    let rejected = alert_lines(&stdout, "rules.config_rejected");
    assert_eq!(rejected.len(), 1, "{stdout}");
    let a = rejected[0];
    assert!(a.contains("Critical"), "{a}");
    assert!(a.contains("risk.toml:5"), "{a}");
    assert!(a.contains("max_contracts.max_contracts"), "{a}");
    assert!(a.contains("NO risk rule, in dry-run"), "{a}");
    assert!(stdout.contains("9 positions monitored"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("guard: stopped cleanly"),
        "{stdout}"
    );
}

#[test]
fn bad_rules_file_at_restart_runs_the_last_good_rules_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("risk.toml");
    // The demo's put spread holds 2 contracts: a limit of 1 fires (dry-run: audited only).
    let good = "dry_run = true\n\n[[max_contracts]]\nid = \"mc\"\naction = \"flatten\"\nmax_contracts = 1\n";
    std::fs::write(&path, good).unwrap();
    let (code, first) = run_guard(&path, &data, "1.5");
    assert_eq!(code, 0, "{first}");
    assert!(!alert_lines(&first, "rule.mc").is_empty(), "{first}");

    std::fs::write(&path, BAD_RULES).unwrap();
    let (code, second) = run_guard(&path, &data, "1.5");
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("guard: started"), "{second}");
    let rejected = alert_lines(&second, "rules.config_rejected");
    assert_eq!(rejected.len(), 1, "{second}");
    assert!(rejected[0].contains("risk.toml:5"), "{}", rejected[0]);
    assert!(
        rejected[0].contains("last good risk rules") && rejected[0].contains("1 enabled rule(s)"),
        "{}",
        rejected[0]
    );
    assert!(
        !alert_lines(&second, "rule.mc").is_empty(),
        "the last good rule runs: {second}"
    );
}

#[test]
fn fixing_a_bad_rules_file_applies_it_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, BAD_RULES).unwrap();
    let mut child = tradeguard()
        .args(["guard", "--broker", "sim", "--speed", "60", "--for", "6"])
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let started = l.starts_with("guard: started");
        seen.push(l);
        if started {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("guard: started")),
        "{seen:#?}"
    );
    std::fs::write(
        &path,
        "dry_run = true\n\n[[max_contracts]]\nid = \"mc\"\nmax_contracts = 1\n",
    )
    .unwrap();
    seen.extend(lines);
    let status = child.wait().unwrap();
    let stdout = seen.join("\n");
    assert!(status.success(), "{stdout}");
    assert_eq!(
        alert_lines(&stdout, "rules.config_rejected").len(),
        1,
        "{stdout}"
    );
    let applied = alert_lines(&stdout, "rules.config_applied");
    assert_eq!(applied.len(), 1, "{stdout}");
    assert!(
        applied[0].contains("rejected at start is fixed"),
        "{stdout}"
    );
    assert!(
        !alert_lines(&stdout, "rule.mc").is_empty(),
        "the fixed rule runs: {stdout}"
    );
}

#[test]
fn bad_guard_table_falls_back_to_dry_run_with_a_critical_alert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.toml");
    std::fs::write(
        &path,
        "dry_run = false\n\n[guard]\nreconcile_secs = \"often\"\n",
    )
    .unwrap();
    let (code, stdout) = run_guard(&path, &dir.path().join("data"), "1");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("guard: started"), "{stdout}");
    let rejected = alert_lines(&stdout, "guard.config_rejected");
    assert_eq!(rejected.len(), 1, "{stdout}");
    let a = rejected[0];
    assert!(a.contains("Critical"), "{a}");
    assert!(a.contains("guard.toml:4:18"), "{a}");
    assert!(a.contains("guard.reconcile_secs"), "{a}");
    assert!(a.contains("dry_run = true"), "{a}");
    assert!(
        alert_lines(&stdout, "rules.config_rejected").is_empty(),
        "the rules part is fine: {stdout}"
    );
}

#[test]
fn a_bad_option_still_exits_2() {
    let out = tradeguard()
        .args(["guard", "--broker", "sim", "--for", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("guard.bad_option") && err.contains("--for"),
        "{err}"
    );
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

/// `--broker tradier` needs the account, and a token in the OS keychain: without either the
/// guard says what to do and exits (2 for the missing option, 1 for the missing token). (The
/// adapter itself runs against the fake Tradier in `tradeguard-tradier` and the engine's
/// `tradier_guard` tests.)
#[test]
fn tradier_without_account_or_token_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = tradeguard()
        .args(["guard", "--broker", "tradier", "--for", "1", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tradier-account"), "{err}");

    let out = tradeguard()
        .args([
            "guard",
            "--broker",
            "tradier",
            "--tradier-account",
            "VA424242",
            "--tradier-url",
            "http://127.0.0.1:9/v1",
            "--for",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        // No Secret Service on this bus: the keychain is unavailable, or has no entry.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keychain"), "{err}");
}

/// A fired loss limit locks opening orders in the headless guard too: said as a Critical alert,
/// kept across a restart (said at start), lifted only by `--unlock`.
#[test]
fn a_loss_limit_locks_opening_orders_across_restarts_until_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("risk.toml");
    // The futures demo's net liquidation moves with MNQ and MES: a cent under its intraday
    // peak fires at once.
    std::fs::write(
        &config,
        "dry_run = false\n[[trailing_max_loss]]\nid = \"mll\"\naction = \"flatten\"\nmax_loss = 0.01\nintraday = true\n",
    )
    .unwrap();
    let run = |secs: &str, extra: &[&str]| {
        let out = tradeguard()
            .args([
                "guard", "--broker", "sim", "--demo", "futures", "--seed", "5",
            ])
            .args(["--speed", "60", "--for", secs, "--config"])
            .arg(&config)
            .args(extra)
            .env("RUST_LOG", "error")
            .env("TRADEGUARD_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}");
        stdout
    };
    let first = run("6", &[]);
    assert_eq!(
        alert_lines(&first, "trading.locked").len(),
        1,
        "locked once: {first}"
    );
    assert!(first.contains("mll: trailing maximum loss"), "{first}");
    let second = run("0.5", &[]);
    assert!(
        second.contains("guard: opening orders locked (Reducing"),
        "kept across the restart: {second}"
    );
    let third = run("0.5", &["--unlock"]);
    assert!(
        third.contains("guard: opening orders unlocked (were Reducing"),
        "{third}"
    );
}
