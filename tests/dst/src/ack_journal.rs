//! [`AckJournal`]: the production [`StoreJournal`] (its record encoding and typed-table
//! projection, one atomic store batch per record, load unchanged) that also remembers every
//! record whose `append` returned `Ok` — acknowledged to the engine — normalized as JSON text,
//! so that after a crash the harness can check each one is in the database (invariant 5).
//!
//! Determinism: unlike the production journal (which awaits the commit on the blocking pool),
//! every write and load **blocks the harness's single runtime thread** until the store's
//! writer thread answered. Awaiting it on the blocking pool let the other tasks of the same
//! virtual instant run meanwhile, in an order that depended on how fast the disk was (wall
//! clock, load of the machine) — the same seed could give two traces. Blocking the only
//! runtime thread makes every interleaving a function of the seed.
//!
//! It also counts writes handed to the store's writer and not yet answered
//! ([`AckJournal::drain`]): with blocking writes there are none when a crash is injected, the
//! check stays as a guard.

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

    /// Waits (blocking the runtime thread, so the paused clock holds still and no task runs)
    /// until every write handed to the store has been answered.
    pub fn drain(&self) {
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
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
        // Blocks the (only) runtime thread until the commit (see the module docs).
        // `unconstrained`: tokio's co-operative budget must not make the nested poll Pending.
        let r = futures::executor::block_on(tokio::task::unconstrained(writer.write_batch(cmds)));
        n.fetch_sub(1, Ordering::SeqCst);
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
        // Blocking too (see the module docs): no other task runs while the journal is read.
        futures::executor::block_on(tokio::task::unconstrained(self.inner.load()))
    }
}
