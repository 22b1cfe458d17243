//! Single instance per database: in-process and across processes.

mod common;

use std::process::{Command, Stdio};

use common::{open, temp_db};
use tradeguard_store::{Store, StoreConfig, StoreError};

const CHILD_ENV: &str = "TG_STORE_LOCK_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_in_process_is_locked_until_close() {
    let db = temp_db();
    let first =
        Store::open(StoreConfig::new(&db.path).with_opened_at_ms(1_700_000_000_000)).unwrap();
    let Err(e) = Store::open(StoreConfig::new(&db.path)) else {
        panic!("second open succeeded")
    };
    match &e {
        StoreError::Locked {
            pid,
            since_ms,
            path,
            ..
        } => {
            assert_eq!(*pid, std::process::id());
            assert_eq!(*since_ms, 1_700_000_000_000);
            assert_eq!(*path, StoreConfig::new(&db.path).lock_path());
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    first.close().await.unwrap();
    open(&db.path).close().await.unwrap();
}

/// Runs this test binary's `lock_child` in a new process against `path`; returns its verdict.
fn child_verdict(path: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("VERDICT "))
        .unwrap_or_else(|| panic!("child printed no verdict: {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_gets_locked_naming_the_first() {
    let db = temp_db();
    let s = open(&db.path);
    assert_eq!(
        child_verdict(&db.path),
        format!("locked {}", std::process::id())
    );
    s.close().await.unwrap();
    assert_eq!(child_verdict(&db.path), "opened");
}

/// Helper process for `second_process_gets_locked_naming_the_first` (runs only when spawned).
#[test]
#[ignore = "helper process, spawned by second_process_gets_locked_naming_the_first"]
fn lock_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let verdict = match Store::open(StoreConfig::new(path)) {
        Err(StoreError::Locked { pid, .. }) => format!("locked {pid}"),
        Err(e) => format!("error {}", e.code()),
        Ok(s) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(s.close()).unwrap();
            "opened".to_owned()
        }
    };
    // Leading newline: libtest has printed "test lock_child ... " without one.
    println!("\nVERDICT {verdict}");
}
