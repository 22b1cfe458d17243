//! [`Supervisor`]: runs the guard's named tasks (enforcer, reconciler, event pump, status,
//! alert forwarder). A task that panics, returns an error or stops on its own is restarted
//! after an exponential back-off (bounded by `restart_max`; reset after a long healthy run), an
//! alert is raised each time, and every task's [`Heartbeat`] is readable through
//! [`Heartbeats`] ("enforcer: last check 0.3 s ago").
//!
//! Watchdog: a task that neither beats nor returns (a hang: an await that never completes) is
//! as silent as a dead one. Each task has a budget; once its heartbeat (or, before the first
//! beat, its start) is older than that, a Critical `supervisor.task_hung` alert names the task
//! and how long it was silent, and the task is aborted and restarted like a crashed one.
//! Silence is judged in tokio time (the time the tasks' own timers run on; paused and
//! deterministic under test), the heartbeat shown is stamped on the guard's clock.
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
    /// The same beat in tokio time (what the watchdog judges).
    beat_at: Option<tokio::time::Instant>,
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

    /// Tokio time since `name` last beat in the run that started at `run_started` (since that
    /// start when it has not beaten yet).
    fn silent_for(&self, name: &str, run_started: tokio::time::Instant) -> Duration {
        let last = self
            .lock()
            .get(name)
            .and_then(|h| h.beat_at)
            .filter(|t| *t >= run_started)
            .unwrap_or(run_started);
        last.elapsed()
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
        let at = tokio::time::Instant::now();
        if let Some(h) = self.beats.lock().get_mut(self.name) {
            h.last_beat = Some(now);
            h.beat_at = Some(at);
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

    /// Starts `name` and keeps it running until [`Supervisor::shutdown`]. `budget` (> 0) is the
    /// watchdog's: a run silent (no beat) for longer is aborted and restarted.
    pub fn spawn(&mut self, name: &'static str, budget: Duration, factory: TaskFactory) {
        self.beats.lock().insert(name, Health::default());
        let beats = self.beats.clone();
        let alerter = self.alerter.clone();
        let policy = self.policy;
        let mut stop = self.stop.subscribe();
        let check = watchdog_check(budget);
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
                let mut watchdog = tokio::time::interval_at(started + check, check);
                watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let end = loop {
                    // Biased (deterministic under simulation): a stop wins over a child that
                    // ended at the same instant, which wins over the watchdog.
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => {
                            child.abort();
                            return;
                        }
                        r = &mut child => break RunEnd::Returned(r),
                        _ = watchdog.tick() => {
                            let silent = beats.silent_for(name, started);
                            if silent > budget {
                                // Cancelled at its pending await; restarted below.
                                child.abort();
                                break RunEnd::Hung(silent);
                            }
                        }
                    }
                };
                let (code, why) = match end {
                    RunEnd::Returned(Ok(Ok(()))) => {
                        ("supervisor.task_restarted", "stopped on its own".to_owned())
                    }
                    RunEnd::Returned(Ok(Err(e))) => (
                        "supervisor.task_restarted",
                        format!("failed: {e} ({})", e.code()),
                    ),
                    RunEnd::Returned(Err(e)) if e.is_panic() => (
                        "supervisor.task_restarted",
                        format!("panicked: {}", panic_text(e.into_panic())),
                    ),
                    RunEnd::Returned(Err(_)) => {
                        ("supervisor.task_restarted", "was cancelled".to_owned())
                    }
                    RunEnd::Hung(silent) => (
                        "supervisor.task_hung",
                        format!(
                            "hung: no heartbeat for {:.1} s (watchdog budget {:.1} s), aborted",
                            silent.as_secs_f64(),
                            budget.as_secs_f64()
                        ),
                    ),
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
                        code,
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

/// How one run of a task ended.
enum RunEnd {
    /// It returned, failed, panicked or was cancelled.
    Returned(Result<TaskResult, tokio::task::JoinError>),
    /// The watchdog found it silent this long.
    Hung(Duration),
}

/// How often the watchdog looks at a task of `budget`: an eighth of it, between 10 ms and 1 s.
fn watchdog_check(budget: Duration) -> Duration {
    (budget / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::clock::TokioClock;
    use crate::journal::MemoryJournal;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tokio::sync::broadcast;

    const BUDGET: Duration = Duration::from_secs(10);

    fn supervisor() -> (Supervisor, broadcast::Receiver<Alert>) {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::new(Timestamp(0)));
        let (tx, rx) = broadcast::channel(64);
        let alerter = Alerter::new(Arc::new(MemoryJournal::new()), clock.clone(), tx);
        let policy = RestartPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
            reset_after: Duration::from_secs(60),
        };
        (Supervisor::new(clock, alerter, policy), rx)
    }

    fn drain(rx: &mut broadcast::Receiver<Alert>) -> Vec<Alert> {
        let mut out = Vec::new();
        while let Ok(a) = rx.try_recv() {
            out.push(a);
        }
        out
    }

    /// Beats every `period` forever.
    async fn beating(hb: Heartbeat, period: Duration) -> TaskResult {
        loop {
            hb.beat();
            tokio::time::sleep(period).await;
        }
    }

    /// Sets its flag when dropped (the run was aborted, not left behind).
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_task_is_alerted_aborted_and_restarted() {
        let (mut sup, mut rx) = supervisor();
        let runs = Arc::new(AtomicU32::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let (r, d) = (runs.clone(), dropped.clone());
        // The first run hangs: it never beats and never returns. The next ones are healthy.
        sup.spawn(
            "hanger",
            BUDGET,
            Box::new(move |hb| {
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                let d = d.clone();
                async move {
                    if n == 1 {
                        let _guard = Dropped(d);
                        std::future::pending::<()>().await;
                    }
                    beating(hb, Duration::from_secs(1)).await
                }
                .boxed()
            }),
        );
        let beats = sup.heartbeats();
        tokio::time::sleep(BUDGET - Duration::from_secs(1)).await;
        assert!(drain(&mut rx).is_empty(), "not before its budget");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let alerts = drain(&mut rx);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        let a = &alerts[0];
        assert_eq!(a.code, "supervisor.task_hung");
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.message.starts_with("task hanger hung"), "{}", a.message);
        // Silent a little over its budget (checked every budget/8).
        assert!(
            a.message.contains("no heartbeat for 10.")
                || a.message.contains("no heartbeat for 11."),
            "{}",
            a.message
        );
        assert!(dropped.load(Ordering::SeqCst), "the hung run was aborted");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "and run again");
        let h = beats.get("hanger").unwrap();
        assert_eq!(h.restarts, 1);
        assert!(h.running);
        assert!(h.last_failure.unwrap().starts_with("hung: no heartbeat"));
        // The new run beats: nothing more, however long it runs.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(drain(&mut rx).is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        sup.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_stops_beating_after_a_while_is_hung_from_its_last_beat() {
        let (mut sup, mut rx) = supervisor();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn(
            "stuck",
            BUDGET,
            Box::new(move |hb| {
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n == 1 {
                        // 30 s of beats, then stuck on an await that never completes.
                        for _ in 0..30 {
                            hb.beat();
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        std::future::pending::<()>().await;
                    }
                    beating(hb, Duration::from_secs(1)).await
                }
                .boxed()
            }),
        );
        tokio::time::sleep(Duration::from_secs(38)).await;
        assert!(
            drain(&mut rx).is_empty(),
            "last beat at 29 s: silent < 10 s"
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        let alerts = drain(&mut rx);
        assert_eq!(
            alerts.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(),
            vec!["supervisor.task_hung"]
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        sup.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_beating_within_their_budget_are_never_restarted() {
        let (mut sup, mut rx) = supervisor();
        // Beats just inside its budget; another beats once a second.
        sup.spawn(
            "slow",
            BUDGET,
            Box::new(|hb| beating(hb, BUDGET - Duration::from_millis(200)).boxed()),
        );
        sup.spawn(
            "fast",
            BUDGET,
            Box::new(|hb| beating(hb, Duration::from_secs(1)).boxed()),
        );
        let beats = sup.heartbeats();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(drain(&mut rx).is_empty());
        assert!(beats.snapshot().iter().all(|h| h.restarts == 0));
        sup.shutdown().await;
    }
}
