//! Owns the single writer: a dedicated OS thread that owns the only write connection, drains
//! the bounded request queue and commits whatever is queued (up to a cap) in ONE transaction
//! (group commit). A request that can fail halfway (a batch, a multi-statement command) gets
//! its own savepoint; single statements are atomic by themselves. So one bad request fails
//! alone and a batch is all-or-nothing. Acks are sent only after COMMIT returned.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::apply::{ApplyError, apply, needs_savepoint};
use crate::checkpoint::{CHECKPOINT_EVERY_COMMITS, Checkpointer};
use crate::cmd::{WriteCmd, WriteOutcome};
use crate::error::StoreError;
use crate::lock::InstanceLock;

/// A queued request.
pub(crate) enum Request {
    /// One command.
    One(WriteCmd, oneshot::Sender<Result<WriteOutcome, StoreError>>),
    /// Several commands, applied atomically.
    Batch(
        Vec<WriteCmd>,
        oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>,
    ),
    /// Stop after everything queued before this; ack when the connection is closed.
    Shutdown(oneshot::Sender<()>),
}

/// A request's commands and where its answer goes, while its group is being committed.
struct Slot {
    cmds: Cmds,
    /// Outcomes inside the current (uncommitted) transaction.
    tentative: Option<Vec<WriteOutcome>>,
    /// Final failure of this request.
    failed: Option<StoreError>,
}

enum Cmds {
    One(WriteCmd, oneshot::Sender<Result<WriteOutcome, StoreError>>),
    Batch(
        Vec<WriteCmd>,
        oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>,
    ),
}

impl Cmds {
    fn as_slice(&self) -> &[WriteCmd] {
        match self {
            Self::One(c, _) => std::slice::from_ref(c),
            Self::Batch(cs, _) => cs,
        }
    }
}

/// Result of one attempt at committing a group.
enum Attempt {
    Committed,
    /// SQLite rolled the whole transaction back after a request failed; retry the rest.
    Restart,
    /// BEGIN or COMMIT failed: nothing was saved.
    Failed(StoreError),
}

/// Counters shared between the writer thread and the [`crate::Store`] handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests taken off the queue.
    pub(crate) received_requests: AtomicU64,
    /// Transactions committed.
    pub(crate) commits: AtomicU64,
    /// Requests acknowledged as committed.
    pub(crate) committed_requests: AtomicU64,
    /// Requests that failed.
    pub(crate) failed_requests: AtomicU64,
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    max_group: usize,
    /// Held for the lifetime of the writer; released after the connection closes.
    lock: InstanceLock,
    counters: Arc<Counters>,
    checkpointer: Checkpointer,
    commits_since_checkpoint: u64,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        path: PathBuf,
        max_group: usize,
        lock: InstanceLock,
        counters: Arc<Counters>,
        checkpointer: Checkpointer,
    ) -> Self {
        Self {
            conn,
            path,
            max_group: max_group.max(1),
            lock,
            counters,
            checkpointer,
            commits_since_checkpoint: 0,
        }
    }

    /// The writer loop; returns when the queue closes or a shutdown request arrives.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut group: Vec<Slot> = Vec::with_capacity(self.max_group);
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some(req) = next.take() {
                match req {
                    Request::One(c, ack) => group.push(slot(Cmds::One(c, ack))),
                    Request::Batch(cs, ack) => group.push(slot(Cmds::Batch(cs, ack))),
                    Request::Shutdown(ack) => {
                        shutdown = Some(ack);
                        break;
                    }
                }
                if group.len() < self.max_group {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.counters
                    .received_requests
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                self.commit_group(&mut group);
            }
            if shutdown.is_some() {
                break;
            }
        }
        // Requests queued after shutdown are dropped: their callers see `Closed`.
        rx.close();
        let Self {
            conn, path, lock, ..
        } = self;
        if let Err((_, e)) = conn.close() {
            tracing::warn!(path = %path.display(), error = %e, "closing the write connection failed");
        }
        drop(lock);
        if let Some(ack) = shutdown {
            let _ = ack.send(());
        }
    }

    fn commit_group(&mut self, group: &mut Vec<Slot>) {
        loop {
            match self.attempt(group) {
                Attempt::Committed => {
                    self.counters.commits.fetch_add(1, Ordering::Relaxed);
                    self.commits_since_checkpoint += 1;
                    if self.commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS {
                        self.commits_since_checkpoint = 0;
                        self.checkpointer.poke();
                    }
                    break;
                }
                Attempt::Restart => {}
                Attempt::Failed(e) => {
                    for s in group.iter_mut().filter(|s| s.failed.is_none()) {
                        s.failed = Some(e.clone());
                    }
                    break;
                }
            }
        }
        let failed = group.iter().filter(|s| s.failed.is_some()).count() as u64;
        let total = group.len() as u64;
        self.counters
            .failed_requests
            .fetch_add(failed, Ordering::Relaxed);
        self.counters
            .committed_requests
            .fetch_add(total - failed, Ordering::Relaxed);
        for s in group.drain(..) {
            // A caller that stopped waiting is not an error for the writer.
            match (s.cmds, s.failed, s.tentative) {
                (Cmds::One(_, ack), None, Some(mut out)) if out.len() == 1 => {
                    let _ = ack.send(Ok(out.remove(0)));
                }
                (Cmds::Batch(_, ack), None, Some(out)) => {
                    let _ = ack.send(Ok(out));
                }
                (Cmds::One(_, ack), failed, _) => {
                    let _ = ack.send(Err(failed.unwrap_or(StoreError::Closed)));
                }
                (Cmds::Batch(_, ack), failed, _) => {
                    let _ = ack.send(Err(failed.unwrap_or(StoreError::Closed)));
                }
            }
        }
    }

    fn sq(&self, e: &rusqlite::Error) -> StoreError {
        StoreError::sqlite(e, &self.path)
    }

    fn attempt(&mut self, group: &mut [Slot]) -> Attempt {
        for s in group.iter_mut() {
            s.tentative = None;
        }
        if let Err(e) = self.exec("BEGIN IMMEDIATE") {
            return Attempt::Failed(self.sq(&e));
        }
        for s in group.iter_mut().filter(|s| s.failed.is_none()) {
            let cmds = s.cmds.as_slice();
            let savepoint = cmds.len() > 1 || cmds.iter().any(needs_savepoint);
            if let Err(e) = self.exec_if(savepoint, "SAVEPOINT req") {
                let err = self.sq(&e);
                self.rollback();
                return Attempt::Failed(err);
            }
            let mut outs = Vec::with_capacity(s.cmds.as_slice().len());
            let mut err = None;
            for c in s.cmds.as_slice() {
                match apply(&self.conn, c) {
                    Ok(o) => outs.push(o),
                    Err(ApplyError::Store(e)) => {
                        err = Some(e);
                        break;
                    }
                    Err(ApplyError::Sql(e)) => {
                        err = Some(self.sq(&e));
                        break;
                    }
                }
            }
            match err {
                None => {
                    if let Err(e) = self.exec_if(savepoint, "RELEASE req") {
                        let err = self.sq(&e);
                        self.rollback();
                        return Attempt::Failed(err);
                    }
                    s.tentative = Some(outs);
                }
                Some(e) => {
                    s.failed = Some(e);
                    if self.conn.is_autocommit() {
                        // SQLite already rolled back the whole transaction (e.g. disk full):
                        // earlier requests of this group were lost and must be retried.
                        return Attempt::Restart;
                    }
                    if let Err(e) = self
                        .exec_if(savepoint, "ROLLBACK TO req")
                        .and_then(|()| self.exec_if(savepoint, "RELEASE req"))
                    {
                        let err = self.sq(&e);
                        self.rollback();
                        return Attempt::Failed(err);
                    }
                }
            }
        }
        match self.exec("COMMIT") {
            Ok(()) => Attempt::Committed,
            Err(e) => {
                let err = self.sq(&e);
                self.rollback();
                Attempt::Failed(err)
            }
        }
    }

    /// Runs a transaction-control statement through the statement cache.
    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// [`Self::exec`] when `cond` holds.
    fn exec_if(&self, cond: bool, sql: &str) -> rusqlite::Result<()> {
        if cond { self.exec(sql) } else { Ok(()) }
    }

    fn rollback(&self) {
        if self.conn.is_autocommit() {
            return;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
            tracing::error!(path = %self.path.display(), error = %e, "rollback failed");
        }
    }
}

fn slot(cmds: Cmds) -> Slot {
    Slot {
        cmds,
        tentative: None,
        failed: None,
    }
}
