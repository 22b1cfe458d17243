//! Tradeguard durable state: a SQLite store with ONE writer thread (group commit, acks after
//! COMMIT), a read-only connection pool (WAL: reads never wait for the writer), versioned
//! migrations, an append-only audit log, and a single-instance lock per database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tradeguard_store::StoreError> {
//! use tradeguard_store::{Store, StoreConfig, WriteCmd, stubs};
//! let store = Store::open(StoreConfig::new("/data/tradeguard.db"))?;
//! store.write(WriteCmd::UpsertAccount(stubs::account("U1"))).await?;
//! let accounts = store.reader().accounts()?;
//! store.close().await?;
//! # let _ = accounts; Ok(()) }
//! ```
//!
//! Durability: WAL with `synchronous=NORMAL` (default) keeps every acknowledged write across
//! a crash or kill of the process; only an OS crash / power loss can lose the last commits.
//! Choose [`Synchronous::Full`] to survive those too (one fsync per group commit).

mod apply;
mod checkpoint;
mod cmd;
mod config;
mod error;
mod lock;
mod open;
mod private;
mod reader;
pub mod records;
mod schema;
mod store;
pub mod stubs;
mod writer;

pub use cmd::{WriteCmd, WriteOutcome};
pub use config::{StoreConfig, Synchronous};
pub use error::StoreError;
pub use lock::{InstanceLock, LOCK_DIR_ENV, LockHolder, account_lock_dir, lock_account};
pub use private::create_private_dir;
pub use reader::StoreReader;
pub use records::*;
pub use schema::{APPLICATION_ID, LATEST_VERSION, migrations};
pub use store::{Store, StoreWriter, WriterStats};
