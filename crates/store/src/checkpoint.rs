//! Owns WAL checkpointing off the writer's path: a helper thread with its own connection runs
//! `PRAGMA wal_checkpoint(PASSIVE)` when the writer pokes it, so the fsync of the database
//! file never stalls an acknowledgement. The writer keeps a high `wal_autocheckpoint` as a
//! backstop in case this thread falls behind.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::config::StoreConfig;
use crate::error::StoreError;

/// Commits between two checkpoint pokes.
pub(crate) const CHECKPOINT_EVERY_COMMITS: u64 = 64;

/// Handle to the checkpoint thread.
pub(crate) struct Checkpointer {
    tx: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts the thread.
    pub(crate) fn start(cfg: &StoreConfig) -> Result<Self, StoreError> {
        let path = cfg.path.clone();
        let sq = |e: rusqlite::Error| StoreError::sqlite(&e, &cfg.path);
        let conn = Connection::open_with_flags(
            &cfg.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sq)?;
        conn.busy_timeout(cfg.busy_timeout).map_err(sq)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {};",
            cfg.synchronous.pragma()
        ))
        .map_err(sq)?;
        let (tx, rx) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("tradeguard-store-checkpoint".to_owned())
            .spawn(move || {
                while rx.recv().is_ok() {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(path = %path.display(), error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Io {
                path: cfg.path.clone(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint; never blocks (a pending request already covers it).
    pub(crate) fn poke(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }

    /// Stops the thread and closes its connection.
    pub(crate) fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(Err(_)) = self.thread.take().map(JoinHandle::join) {
            tracing::error!("checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
