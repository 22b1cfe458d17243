//! Owns [`Store`], the public entry point: opening (lock, checks, migrations), the cloneable
//! async write handle [`StoreWriter`] and orderly shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::Checkpointer;
use crate::cmd::{WriteCmd, WriteOutcome};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::lock::InstanceLock;
use crate::open::{open_reader, open_writer, preflight};
use crate::reader::StoreReader;
use crate::writer::{Counters, Request, Writer};

/// Cloneable async write handle. Every method resolves only after the change is COMMITTED
/// (or failed); concurrent callers are grouped into shared transactions by the writer.
#[derive(Clone)]
pub struct StoreWriter {
    tx: mpsc::Sender<Request>,
}

impl StoreWriter {
    /// Applies one command; resolves after COMMIT.
    pub async fn write(&self, cmd: WriteCmd) -> Result<WriteOutcome, StoreError> {
        cmd.validate()?;
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::One(cmd, ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Applies several commands atomically (all or none); resolves after COMMIT.
    pub async fn write_batch(&self, cmds: Vec<WriteCmd>) -> Result<Vec<WriteOutcome>, StoreError> {
        for c in &cmds {
            c.validate()?;
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::Batch(cmds, ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Requests waiting in the writer's queue right now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Blocking form of [`Self::write_batch`] for non-async threads (e.g. inside
    /// `tokio::task::spawn_blocking`). Panics if called from inside an async runtime.
    pub fn write_batch_blocking(
        &self,
        cmds: Vec<WriteCmd>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        for c in &cmds {
            c.validate()?;
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .blocking_send(Request::Batch(cmds, ack))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Blocking form of [`Self::write`] for non-async threads. Panics if called from inside
    /// an async runtime (tokio's rule for blocking channel operations).
    pub fn write_blocking(&self, cmd: WriteCmd) -> Result<WriteOutcome, StoreError> {
        cmd.validate()?;
        let (ack, rx) = oneshot::channel();
        self.tx
            .blocking_send(Request::One(cmd, ack))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

/// Writer counters since open (for tests, diagnostics and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Requests the writer has taken off the queue (committed, failed or in progress).
    pub received_requests: u64,
    /// Transactions committed (group commits).
    pub commits: u64,
    /// Requests acknowledged as committed.
    pub committed_requests: u64,
    /// Requests that failed.
    pub failed_requests: u64,
}

/// The durable store: one writer thread, a read pool, and the single-instance lock.
///
/// Close it with [`Store::close`] to wait until the writer has finished and released the
/// lock. Dropping it without closing lets the writer finish in the background once every
/// [`StoreWriter`] clone is gone.
pub struct Store {
    writer: StoreWriter,
    reader: StoreReader,
    path: PathBuf,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Opens (creating if needed) the database at `cfg.path`: takes the instance lock,
    /// refuses corrupt / foreign / newer / read-only files with a typed error, migrates, and
    /// starts the writer thread. Blocking (file I/O); call at startup or in `spawn_blocking`.
    pub fn open(cfg: StoreConfig) -> Result<Self, StoreError> {
        preflight(&cfg.path)?;
        let lock = InstanceLock::acquire(&cfg.lock_path(), cfg.opened_at_ms)?;
        let conn = open_writer(&cfg)?;
        let reader = StoreReader::new(cfg.clone());
        // Open one reader now so a problem shows at startup, not on the first read.
        drop(open_reader(&cfg)?);
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let checkpointer = Checkpointer::start(&cfg)?;
        let writer = Writer::new(
            conn,
            cfg.path.clone(),
            cfg.max_group,
            lock,
            Arc::clone(&counters),
            checkpointer,
        );
        let thread = std::thread::Builder::new()
            .name("tradeguard-store-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io {
                path: cfg.path.clone(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            writer: StoreWriter { tx },
            reader,
            path: cfg.path,
            counters,
            thread: Some(thread),
        })
    }

    /// Database file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writer counters since open.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            received_requests: self.counters.received_requests.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            committed_requests: self.counters.committed_requests.load(Ordering::Relaxed),
            failed_requests: self.counters.failed_requests.load(Ordering::Relaxed),
        }
    }

    /// A cloneable write handle.
    pub fn writer(&self) -> StoreWriter {
        self.writer.clone()
    }

    /// The read handle (clone it freely).
    pub fn reader(&self) -> &StoreReader {
        &self.reader
    }

    /// Shorthand for `self.writer().write(cmd)`.
    pub async fn write(&self, cmd: WriteCmd) -> Result<WriteOutcome, StoreError> {
        self.writer.write(cmd).await
    }

    /// Shorthand for `self.writer().write_batch(cmds)`.
    pub async fn write_batch(&self, cmds: Vec<WriteCmd>) -> Result<Vec<WriteOutcome>, StoreError> {
        self.writer.write_batch(cmds).await
    }

    /// Commits everything queued so far, closes the write connection and releases the
    /// instance lock. Writes queued afterwards (through other handles) fail with `Closed`.
    pub async fn close(mut self) -> Result<(), StoreError> {
        let (ack, rx) = oneshot::channel();
        let sent = self.writer.tx.send(Request::Shutdown(ack)).await.is_ok();
        let acked = sent && rx.await.is_ok();
        let joined = self.thread.take().is_some_and(|t| t.join().is_ok());
        if acked && joined {
            Ok(())
        } else {
            Err(StoreError::Closed)
        }
    }
}
