//! Where the app keeps its database, and opening it. The data directory follows the platform's
//! conventions (XDG on Linux: `~/.local/share/dev.tradeguard.desktop`); `TRADEGUARD_DATA_DIR`
//! overrides it (tests, portable use). Opening takes the single-guard lock: a second Tradeguard
//! on the same database gets a `store.locked` error naming the first, shown in the UI.

use crate::error::{ErrorCode, IpcError};
use std::path::PathBuf;
use tauri::Manager;
use tradeguard_store::{Store, StoreConfig};

/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "TRADEGUARD_DATA_DIR";
/// The database file inside the data directory.
pub const DB_FILE: &str = "tradeguard.db";
/// The risk rules (TOML) inside the data directory.
pub const RULES_FILE: &str = "risk.toml";

/// The data directory: `TRADEGUARD_DATA_DIR`, else the platform's app data directory.
pub fn data_dir(app: &tauri::AppHandle) -> Result<PathBuf, IpcError> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    app.path().app_data_dir().map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "storage.no_data_dir",
            format!("no data directory for this platform: {e}; set {DATA_DIR_ENV}"),
        )
    })
}

/// Creates the data directory if needed and opens (or creates) the database in it.
pub fn open(dir: &std::path::Path) -> Result<Store, IpcError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "storage.create_dir",
            format!("cannot create the data directory {}: {e}", dir.display()),
        )
    })?;
    let store = Store::open(StoreConfig::new(dir.join(DB_FILE)))?;
    Ok(store)
}
