//! Corrupt, foreign, newer, read-only, missing and full databases give typed errors.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{open, temp_db};
use rusqlite::Connection;
use tradeguard_store::{LATEST_VERSION, Store, StoreConfig, StoreError, WriteCmd, stubs};

fn open_err(cfg: StoreConfig) -> StoreError {
    match Store::open(cfg) {
        Ok(_) => panic!("open should have failed"),
        Err(e) => e,
    }
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    let db = temp_db();
    std::fs::write(
        &db.path,
        "these are my trading notes, not a database\n".repeat(200),
    )
    .unwrap();
    let e = open_err(StoreConfig::new(&db.path));
    assert_eq!(e.code(), "store.corrupt", "{e:?}");
    assert!(e.to_string().contains("restore it from a backup"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_pages_are_detected_on_open() {
    let db = temp_db();
    let s = open(&db.path);
    let big = "x".repeat(2000);
    for i in 0..400 {
        let mut a = stubs::audit(i, "fill");
        a.reason.clone_from(&big);
        s.write(WriteCmd::Audit(a)).await.unwrap();
    }
    s.close().await.unwrap();
    let mut bytes = std::fs::read(&db.path).unwrap();
    assert!(
        bytes.len() > 16 * 4096,
        "database too small to damage: {}",
        bytes.len()
    );
    for b in &mut bytes[4096 * 3..4096 * 12] {
        *b = 0x5A;
    }
    std::fs::write(&db.path, &bytes).unwrap();
    let e = open_err(StoreConfig::new(&db.path));
    assert_eq!(e.code(), "store.corrupt", "{e:?}");
}

#[test]
fn another_programs_database_is_foreign_and_left_untouched() {
    let db = temp_db();
    {
        let c = Connection::open(&db.path).unwrap();
        c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
    }
    let before = std::fs::read(&db.path).unwrap();
    let e = open_err(StoreConfig::new(&db.path));
    assert_eq!(
        e,
        StoreError::Foreign {
            path: db.path.clone(),
            application_id: 0,
            user_version: 0
        }
    );
    assert!(e.to_string().contains("not a Tradeguard database"), "{e}");
    assert_eq!(
        std::fs::read(&db.path).unwrap(),
        before,
        "foreign file must not be modified"
    );

    let other = db.dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("PRAGMA application_id = 77;")
        .unwrap();
    let e = open_err(StoreConfig::new(&other));
    assert!(
        matches!(
            e,
            StoreError::Foreign {
                application_id: 77,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_version_is_refused() {
    let db = temp_db();
    open(&db.path).close().await.unwrap();
    Connection::open(&db.path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {};", LATEST_VERSION + 1))
        .unwrap();
    let e = open_err(StoreConfig::new(&db.path));
    assert_eq!(
        e,
        StoreError::NewerVersion {
            path: db.path.clone(),
            found: LATEST_VERSION + 1,
            supported: LATEST_VERSION
        }
    );
    assert!(e.to_string().contains("update Tradeguard"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_file_and_folder_are_refused() {
    let db = temp_db();
    open(&db.path).close().await.unwrap();
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let e = open_err(StoreConfig::new(&db.path));
    assert_eq!(e.code(), "store.read_only", "{e:?}");
    assert!(
        e.to_string()
            .contains("make the file and its folder writable"),
        "{e}"
    );
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let ro_dir = db.dir.path().join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let e = open_err(StoreConfig::new(ro_dir.join("t.db")));
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        matches!(&e, StoreError::ReadOnly { path, .. } if *path == ro_dir),
        "{e:?}"
    );
}

#[test]
fn a_missing_folder_cannot_be_opened() {
    let db = temp_db();
    let e = open_err(StoreConfig::new(db.dir.path().join("nope").join("t.db")));
    assert_eq!(e.code(), "store.cannot_open", "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_with_disk_full_and_keeps_earlier_data() {
    let db = temp_db();
    let s = Store::open(StoreConfig::new(&db.path).with_max_page_count(1)).unwrap();
    let big = "y".repeat(8000);
    let mut saved = 0_i64;
    let mut err = None;
    for i in 0..200 {
        let mut a = stubs::audit(i, "full");
        a.reason.clone_from(&big);
        match s.write(WriteCmd::Audit(a)).await {
            Ok(_) => saved += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("a 1-page cap must fill up");
    assert_eq!(
        e,
        StoreError::DiskFull {
            path: db.path.clone()
        }
    );
    assert!(e.to_string().contains("was NOT saved"), "{e}");
    assert_eq!(s.reader().audit_count().unwrap(), saved);
    // Still usable: reads work and a retry after space is freed succeeds.
    assert_eq!(s.reader().integrity_check().unwrap(), vec!["ok".to_owned()]);
    s.close().await.unwrap();
    let s = open(&db.path);
    s.write(WriteCmd::Audit(stubs::audit(999, "after")))
        .await
        .unwrap();
    assert_eq!(s.reader().audit_count().unwrap(), saved + 1);
    s.close().await.unwrap();
}
