//! [`Supervisor`]: runs the guard's named tasks (enforcer, reconciler, event pump, status,
//! alert forwarder). A task that panics, returns an error or stops on its own is restarted
//! after an exponential back-off (bounded by `restart_max`; reset after a long healthy run), an
//! alert is raised each time, and every task's [`Heartbeat`] is readable through
//! [`Heartbeats`] ("enforcer: last check 0.3 s ago").
//!
//! The supervisor never gives up on a task: a guard that silently stops is the failure this
//! module exists to prevent.

use crate::alert::Severity;
use crate::enforce::alerter::Alerter;
use crate::enforce::config::backoff;
use crate::enforce::error::EnforceError;
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tradeguard_model::{Clock, Timestamp};

/// What a supervised task returns.
pub type TaskResult = Result<(), EnforceError>;

/// Builds one run of a task (called again for every restart).
pub type TaskFactory = Box<dyn Fn(Heartbeat) -> BoxFuture<'static, TaskResult> + Send + Sync>;

#[derive(Debug, Clone, Default)]
struct Health {
    last_beat: Option<Timestamp>,
    restarts: u32,
    last_failure: Option<String>,
    running: bool,
}

/// Shared heartbeat table of every supervised task.
#[derive(Clone)]
pub struct Heartbeats {
    clock: Arc<dyn Clock>,
    table: Arc<Mutex<BTreeMap<&'static str, Health>>>,
}

/// One task's heartbeat as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskHealth {
    /// Task name.
    pub name: &'static str,
    /// Time since its last check (`None` before the first).
    pub since_last: Option<Duration>,
    /// Restarts so far.
    pub restarts: u32,
    /// Why it last crashed.
    pub last_failure: Option<String>,
    /// Currently running (not waiting for a restart).
    pub running: bool,
}

impl fmt::Display for TaskHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.since_last {
            Some(d) => write!(f, "{}: last check {:.1} s ago", self.name, d.as_secs_f64())?,
            None => write!(f, "{}: no check yet", self.name)?,
        }
        if !self.running {
            write!(f, " (restarting)")?;
        }
        if self.restarts > 0 {
            write!(f, ", {} restart(s)", self.restarts)?;
        }
        Ok(())
    }
}

impl Heartbeats {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            table: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Health>> {
        // The table is plain data; a panic elsewhere cannot leave it inconsistent.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every task's heartbeat, by name.
    pub fn snapshot(&self) -> Vec<TaskHealth> {
        let now = self.clock.now();
        self.lock()
            .iter()
            .map(|(name, h)| TaskHealth {
                name,
                since_last: h.last_beat.map(|t| now.duration_since(t)),
                restarts: h.restarts,
                last_failure: h.last_failure.clone(),
                running: h.running,
            })
            .collect()
    }

    /// One task's heartbeat.
    pub fn get(&self, name: &str) -> Option<TaskHealth> {
        self.snapshot().into_iter().find(|h| h.name == name)
    }
}

/// Handed to a task: call [`Heartbeat::beat`] after every check.
#[derive(Clone)]
pub struct Heartbeat {
    name: &'static str,
    beats: Heartbeats,
}

impl Heartbeat {
    /// Records a check now.
    pub fn beat(&self) {
        let now = self.beats.clock.now();
        if let Some(h) = self.beats.lock().get_mut(self.name) {
            h.last_beat = Some(now);
        }
    }
}

/// Restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// A run this long resets the delay to `base`.
    pub reset_after: Duration,
}

/// Runs and restarts named tasks.
pub struct Supervisor {
    beats: Heartbeats,
    alerter: Alerter,
    policy: RestartPolicy,
    stop: watch::Sender<bool>,
    monitors: Vec<JoinHandle<()>>,
}

impl Supervisor {
    /// A supervisor raising its alerts through `alerter`.
    pub fn new(clock: Arc<dyn Clock>, alerter: Alerter, policy: RestartPolicy) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            beats: Heartbeats::new(clock),
            alerter,
            policy,
            stop,
            monitors: Vec::new(),
        }
    }

    /// The heartbeat table.
    pub fn heartbeats(&self) -> Heartbeats {
        self.beats.clone()
    }

    /// Starts `name` and keeps it running until [`Supervisor::shutdown`].
    pub fn spawn(&mut self, name: &'static str, factory: TaskFactory) {
        self.beats.lock().insert(name, Health::default());
        let beats = self.beats.clone();
        let alerter = self.alerter.clone();
        let policy = self.policy;
        let mut stop = self.stop.subscribe();
        self.monitors.push(tokio::spawn(async move {
            let mut consecutive = 0u32;
            loop {
                if let Some(h) = beats.lock().get_mut(name) {
                    h.running = true;
                }
                let hb = Heartbeat {
                    name,
                    beats: beats.clone(),
                };
                let started = tokio::time::Instant::now();
                let mut child = tokio::spawn(factory(hb));
                // Biased (deterministic under simulation): a stop wins over a child that ended
                // at the same instant.
                let outcome = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => {
                        child.abort();
                        return;
                    }
                    r = &mut child => r,
                };
                let why = match outcome {
                    Ok(Ok(())) => "stopped on its own".to_owned(),
                    Ok(Err(e)) => format!("failed: {e} ({})", e.code()),
                    Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                    Err(_) => "was cancelled".to_owned(),
                };
                if started.elapsed() >= policy.reset_after {
                    consecutive = 0;
                }
                consecutive = consecutive.saturating_add(1);
                let delay = backoff(policy.base, policy.max, consecutive);
                let restarts = {
                    let mut t = beats.lock();
                    let h = t.entry(name).or_default();
                    h.running = false;
                    h.restarts = h.restarts.saturating_add(1);
                    h.last_failure = Some(why.clone());
                    h.restarts
                };
                alerter
                    .raise(
                        Severity::Critical,
                        "supervisor.task_restarted",
                        format!(
                            "task {name} {why}; restart #{restarts} in {} ms",
                            delay.as_millis()
                        ),
                    )
                    .await;
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }));
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for m in self.monitors {
            let _ = m.await;
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}
