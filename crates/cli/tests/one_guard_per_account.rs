//! One guard per broker account on a machine (issue "Do no harm"): a second `tradeguard
//! guard` on the same IB account — another data directory, another client id, as the app and
//! the CLI would be — refuses to start and names the first; with several managed accounts and
//! none chosen the guard refuses and lists them. Both against a fake TWS on loopback.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig};

fn guard(port: u16, data: &Path, locks: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradeguard"));
    c.args(["guard", "--broker", "ib", "--market-hours", "always-open"])
        .args(["--ib-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("TRADEGUARD_LOCK_DIR", locks)
        .env("RUST_LOG", "off");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_guard_on_the_same_account_refuses_naming_the_first() {
    let f = FakeTws::start(FakeTwsConfig {
        accounts: vec!["DU-ONE".into()],
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let mut first = guard(
        f.port(),
        &dir.path().join("a"),
        &locks,
        &["--ib-client-id", "2", "--for", "20"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let started = tokio::task::spawn_blocking(move || {
        lines
            .map_while(Result::ok)
            .any(|l| l.starts_with("guard: started"))
    })
    .await
    .unwrap();
    assert!(started, "the first guard started");
    let out = tokio::task::spawn_blocking({
        let (port, data, locks) = (f.port(), dir.path().join("b"), locks.clone());
        move || {
            guard(port, &data, &locks, &["--ib-client-id", "3", "--for", "1"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("store.account_guarded"), "{all}");
    assert!(all.contains("DU-ONE"), "{all}");
    assert!(all.contains(&format!("pid {}", first.id())), "{all}");
    assert!(!all.contains("guard: started"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_managed_accounts_and_none_chosen_is_refused_with_the_list() {
    let f = FakeTws::start(FakeTwsConfig {
        accounts: vec!["DU-A".into(), "DU-B".into()],
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let (port, data, locks) = (f.port(), dir.path().join("d"), dir.path().join("l"));
        move || {
            guard(port, &data, &locks, &["--for", "1"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("ib.account_ambiguous"), "{all}");
    assert!(all.contains("DU-A, DU-B"), "{all}");
    assert!(!all.contains("guard: started"), "{all}");
}
