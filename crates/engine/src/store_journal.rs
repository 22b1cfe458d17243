//! [`StoreJournal`]: the production [`Journal`] on the SQLite store.
//!
//! `append` writes, in ONE store batch (all or nothing): the record as JSON into the
//! append-only `engine_journal` table (`kind` = the record's serde tag), plus its projection
//! into the typed tables where one exists (execution groups, stop-loss state, alerts, audit log,
//! highest order id, Broken strategies, forced-unwind flags; see `project`). It resolves only
//! after the store's writer has COMMITTED the batch. `load` replays `engine_journal` in commit
//! order into a [`JournalState`] exactly as [`crate::MemoryJournal`] folds its records, and
//! raises the highest order id to the store's high-water mark (which also covers ids other
//! writers put in the `orders` table), so ids never repeat after a restart.
//!
//! Store failures map to [`JournalError::Store`] carrying the store's own code
//! (`store.disk_full`, `store.closed`, ...); a record that cannot be decoded stops the load
//! with [`JournalError::Decode`] (never skipped).

mod project;

use crate::error::JournalError;
use crate::journal::{Journal, JournalRecord, JournalState};
use std::sync::Arc;
use tradeguard_model::{AccountId, Clock, OrderId};
use tradeguard_store::{
    JournalEntry, NewJournalEntry, Store, StoreError, StoreReader, StoreWriter, WriteCmd,
};

/// Records read per query while loading.
const LOAD_PAGE: u32 = 4096;

/// The durable engine journal on a [`Store`]. Holds write/read handles only: the owner of the
/// `Store` closes it (which releases the single-instance lock).
#[derive(Clone)]
pub struct StoreJournal {
    writer: StoreWriter,
    reader: StoreReader,
    clock: Arc<dyn Clock>,
    account: AccountId,
}

impl std::fmt::Debug for StoreJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJournal")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn store_err(during: &'static str, e: &StoreError) -> JournalError {
    JournalError::Store {
        during,
        code: e.code(),
        detail: e.to_string(),
    }
}

impl StoreJournal {
    /// A journal on `store`. `clock` stamps each record (`ts_ms`); `account` is the account this
    /// engine guards: it owns the strategy rows the journal must create for a Broken flag of a
    /// strategy the store does not know yet (records that name an account use theirs).
    pub fn new(store: &Store, clock: Arc<dyn Clock>, account: AccountId) -> Self {
        Self {
            writer: store.writer(),
            reader: store.reader().clone(),
            clock,
            account,
        }
    }

    /// The store commands one append writes atomically: the journal entry first, then the
    /// typed-table projection.
    pub fn batch(&self, record: &JournalRecord) -> Result<Vec<WriteCmd>, JournalError> {
        let now_ms = self.clock.now().millis();
        let json = serde_json::to_value(record)
            .map_err(|e| JournalError::Write(format!("record cannot be encoded: {e}")))?;
        let kind = json
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| JournalError::Write("encoded record has no kind tag".to_owned()))?
            .to_owned();
        let mut cmds = vec![WriteCmd::AppendJournal(NewJournalEntry {
            ts_ms: now_ms,
            kind,
            record: json,
        })];
        cmds.extend(project::project(record, now_ms, &self.account));
        Ok(cmds)
    }
}

/// Decodes one stored entry; its `kind` column must agree with the record's tag.
fn decode(e: JournalEntry) -> Result<JournalRecord, JournalError> {
    let JournalEntry { seq, entry } = e;
    let bad = |detail: String| JournalError::Decode {
        seq,
        kind: entry.kind.clone(),
        detail,
    };
    let tag = entry.record.get("kind").and_then(serde_json::Value::as_str);
    if tag != Some(entry.kind.as_str()) {
        return Err(bad(format!(
            "kind column {:?} does not match the record's tag {tag:?}",
            entry.kind
        )));
    }
    serde_json::from_value(entry.record.clone()).map_err(|e| bad(e.to_string()))
}

/// Folds the whole journal, page by page (blocking reads).
fn load_blocking(reader: &StoreReader) -> Result<JournalState, JournalError> {
    let mut st = JournalState::default();
    let mut after = 0;
    loop {
        let page = reader
            .journal_after(after, LOAD_PAGE)
            .map_err(|e| store_err("loading", &e))?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in page {
            st.apply(decode(e)?);
        }
        after = last;
    }
    let hwm = reader
        .highest_order_id()
        .map_err(|e| store_err("loading", &e))?;
    if hwm > 0 {
        let h = OrderId(hwm);
        st.highest_order_id = Some(st.highest_order_id.map_or(h, |j| j.max(h)));
    }
    Ok(st)
}

#[async_trait::async_trait]
impl Journal for StoreJournal {
    async fn append(&self, record: JournalRecord) -> Result<(), JournalError> {
        let cmds = self.batch(&record)?;
        let writer = self.writer.clone();
        // Wait for the commit on the blocking pool: the runtime counts the write as work in
        // flight, so a paused test clock does not jump while the disk is busy (deterministic
        // virtual time); in production it costs one thread hand-off per append.
        tokio::task::spawn_blocking(move || writer.write_batch_blocking(cmds))
            .await
            .map_err(|e| JournalError::Write(format!("journal write task failed: {e}")))?
            .map_err(|e| store_err("appending", &e))?;
        Ok(())
    }

    async fn load(&self) -> Result<JournalState, JournalError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || load_blocking(&reader))
            .await
            .map_err(|e| JournalError::Read(format!("journal load task failed: {e}")))?
    }
}
