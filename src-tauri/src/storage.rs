//! Opening the database. Opening takes the single-guard lock: a second Tradeguard on the same
//! database gets a `store.locked` error naming the first, shown in the UI. Where the database
//! lives is [`crate::paths`]'s business.

use crate::error::{ErrorCode, IpcError};
use crate::paths::AppPaths;
use tradeguard_store::{Store, StoreConfig};

/// Creates the directories if needed and opens (or creates) the database.
pub fn open(paths: &AppPaths, kind: crate::settings::VenueKind) -> Result<Store, IpcError> {
    paths.create_all().map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "storage.create_dir",
            format!(
                "cannot create the app's folders under {}: {e}",
                paths.data_dir.display()
            ),
        )
    })?;
    let store = Store::open(StoreConfig::new(paths.db_file_for(kind)))?;
    Ok(store)
}
