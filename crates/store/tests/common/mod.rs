//! Shared helpers for the store's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tradeguard_store::{Store, StoreConfig, WriteCmd, stubs};

/// A temp dir with a database path inside.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn temp_db() -> TempDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tradeguard.db");
    TempDb { dir, path }
}

pub fn open(path: &Path) -> Store {
    Store::open(StoreConfig::new(path)).expect("open store")
}

/// Opens and seeds account "U1".
pub async fn open_with_account(path: &Path) -> Store {
    let s = open(path);
    s.write(WriteCmd::UpsertAccount(stubs::account("U1")))
        .await
        .expect("account");
    s
}
