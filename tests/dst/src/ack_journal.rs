//! [`AckJournal`]: wraps the production [`StoreJournal`] and remembers every record whose
//! `append` returned `Ok` (acknowledged to the engine), normalized as JSON text, so that after a
//! crash the harness can check that each one is in the database (invariant 5).

use std::sync::{Arc, Mutex};
use tradeguard_engine::{Journal, JournalError, JournalRecord, JournalState, StoreJournal};

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
    acked: Arc<Mutex<Vec<String>>>,
}

impl AckJournal {
    /// Wraps `inner`; acknowledged records are appended to `acked`.
    pub fn new(inner: StoreJournal, acked: Arc<Mutex<Vec<String>>>) -> Self {
        Self { inner, acked }
    }
}

#[async_trait::async_trait]
impl Journal for AckJournal {
    async fn append(&self, record: JournalRecord) -> Result<(), JournalError> {
        let json = serde_json::to_value(&record)
            .map_err(|e| JournalError::Write(format!("record cannot be encoded: {e}")))?;
        self.inner.append(record).await?;
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
