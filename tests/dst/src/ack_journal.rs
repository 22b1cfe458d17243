//! [`AckJournal`]: the production [`StoreJournal`] (its record encoding and typed-table
//! projection, one atomic store batch per record, load unchanged) that also remembers every
//! record whose `append` returned `Ok` — acknowledged to the engine — normalized as JSON text,
//! so that after a crash the harness can check each one is in the database (invariant 5).
//!
//! It also counts writes handed to the store's writer and not yet answered: a crash in the
//! harness waits for them ([`AckJournal::drain`]), so whether a write that was already on
//! its way to the disk lands does not depend on thread timing (determinism).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradeguard_engine::{Journal, JournalError, JournalRecord, JournalState, StoreJournal};
use tradeguard_store::StoreWriter;

/// A record as compared: serialized, parsed and serialized again, exactly the path a record
/// takes through the database (so float formatting cannot differ).
pub fn normalize(v: &serde_json::Value) -> String {
    let text = v.to_string();
    serde_json::from_str::<serde_json::Value>(&text).map_or(text, |p| p.to_string())
}

/// The production journal plus the list of acknowledged records (shared across restarts).
#[derive(Clone)]
pub struct AckJournal {
    inner: StoreJournal,
    writer: StoreWriter,
    acked: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
}

impl AckJournal {
    /// Wraps `inner` (on the store `writer` belongs to); acknowledged records are appended to
    /// `acked`.
    pub fn new(inner: StoreJournal, writer: StoreWriter, acked: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            inner,
            writer,
            acked,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits (on the blocking pool, so the paused clock holds still) until every write handed
    /// to the store has been answered, even those whose caller was killed.
    pub async fn drain(&self) {
        let n = self.in_flight.clone();
        let _ = tokio::task::spawn_blocking(move || {
            while n.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        })
        .await;
    }
}

#[async_trait::async_trait]
impl Journal for AckJournal {
    async fn append(&self, record: JournalRecord) -> Result<(), JournalError> {
        let json = serde_json::to_value(&record)
            .map_err(|e| JournalError::Write(format!("record cannot be encoded: {e}")))?;
        let cmds = self.inner.batch(&record)?;
        let writer = self.writer.clone();
        let n = self.in_flight.clone();
        n.fetch_add(1, Ordering::SeqCst);
        // As StoreJournal::append: the commit is awaited on the blocking pool.
        let r = tokio::task::spawn_blocking(move || {
            let r = writer.write_batch_blocking(cmds);
            n.fetch_sub(1, Ordering::SeqCst);
            r
        })
        .await
        .map_err(|e| JournalError::Write(format!("journal write task failed: {e}")))?;
        r.map_err(|e| JournalError::Store {
            during: "appending",
            code: e.code(),
            detail: e.to_string(),
        })?;
        self.acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(normalize(&json));
        Ok(())
    }

    async fn load(&self) -> Result<JournalState, JournalError> {
        self.inner.load().await
    }
}
