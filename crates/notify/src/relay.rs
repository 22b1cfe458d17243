//! [`Relay`]: carries the guard's alerts to the channels of the alerts file.
//!
//! - **Never blocks the guard.** The guard hands each alert to an [`Inbox`] (an unbounded
//!   queue, [`AlertSink`]); everything else runs on the relay's own tasks: one dispatcher, one
//!   worker per channel, each worker supervised (a panic is an alert and the worker starts
//!   again from the same queue).
//! - **Part of the record.** Each delivery is journaled when queued ([`DeliveryState::Pending`])
//!   and after every attempt (sent, failed with its reason, given up); each attempt is an audit
//!   entry (`alert_delivered`, `alert_delivery_failed`). The deliveries still pending at a
//!   restart are sent after it ([`RelayDeps::pending`]).
//! - **Retries** with exponential backoff ([`RetryPolicy`]); a server's `Retry-After` is obeyed.
//!   A Critical alert is retried for a day, others for [`RetryPolicy::attempts`] attempts; a
//!   permanent refusal (bad token, bad address) ends the delivery at once.
//! - **A channel that keeps failing** ([`RetryPolicy::failing_after`] attempts in a row) raises
//!   `alerts.channel_failing` in the app (Critical when a Critical alert is stuck on it, else
//!   Warning), once; `alerts.channel_recovered` when it delivers again. Alerts about delivery
//!   go only to channels that currently work.
//! - **Rate limited** per channel ([`ChannelConfig::per_minute`]): over it, messages wait their
//!   turn (Critical ones first); none is dropped.

use crate::channel;
use crate::config::{AlertsConfig, ChannelConfig};
use crate::error::NotifyError;
use crate::message::Message;
use crate::secrets::SecretStore;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supervised::catch_unwind;
use tokio::sync::{Notify, mpsc};
use tradeguard_engine::alert::{Alert, AlertSink, Delivery, DeliveryState, Severity};
use tradeguard_engine::enforce::alerter::Alerter;
use tradeguard_engine::journal::{Journal, JournalRecord};
use tradeguard_model::Clock;

/// A worker's panic caught (and reported) instead of ending delivery.
mod supervised {
    use std::future::Future;
    use std::panic::AssertUnwindSafe;

    /// Runs `f` on its own task; `Err` when it panicked. Dropping the returned future (the
    /// relay's shutdown aborts its supervisor) aborts that task too.
    pub async fn catch_unwind<F>(f: F) -> Result<(), String>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let mut task = AbortOnDrop(tokio::spawn(AssertUnwindSafe(f)));
        match (&mut task.0).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_panic() => {
                let p = e.into_panic();
                Err(p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned()))
            }
            // Cancelled: the relay is shutting down.
            Err(_) => Ok(()),
        }
    }
}

/// When to try again and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubles after each.
    pub base: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// Attempts of a Warning or Info alert before it is given up.
    pub attempts: u32,
    /// How long a Critical alert is retried.
    pub critical_for: Duration,
    /// Failed attempts in a row after which the channel is reported failing in the app.
    pub failing_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
            attempts: 8,
            critical_for: Duration::from_secs(24 * 3600),
            failing_after: 3,
        }
    }
}

/// The guard's side of the relay: takes each alert without waiting.
#[derive(Debug)]
pub struct Inbox(mpsc::UnboundedSender<Alert>);

/// The relay's side of the [`Inbox`].
#[derive(Debug)]
pub struct InboxRx(mpsc::UnboundedReceiver<Alert>);

/// A new inbox: give the sink to the guard (`GuardDeps::relay`), the receiver to
/// [`Relay::start`] (alerts raised in between wait in it).
pub fn inbox() -> (Arc<Inbox>, InboxRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(Inbox(tx)), InboxRx(rx))
}

impl AlertSink for Inbox {
    fn accept(&self, a: &Alert) {
        // Err only after the relay stopped (shutdown): the alert is journaled by the guard.
        let _ = self.0.send(a.clone());
    }
}

/// What the relay needs.
pub struct RelayDeps {
    /// The channels.
    pub config: AlertsConfig,
    /// Where their secrets are.
    pub secrets: Arc<dyn SecretStore>,
    /// The guard's journal (deliveries are records of it).
    pub journal: Arc<dyn Journal>,
    /// Time stamps.
    pub clock: Arc<dyn Clock>,
    /// The guard's alerter: in-app alerts and audit entries about deliveries.
    pub alerter: Alerter,
    /// Deliveries the journal holds as pending (`JournalState::pending_deliveries`).
    pub pending: Vec<Delivery>,
    /// The highest delivery id in the journal (`JournalState::last_delivery_id`).
    pub last_id: u64,
    /// Retries.
    pub retry: RetryPolicy,
}

/// One channel as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelStatus {
    /// Name.
    pub name: String,
    /// `email`, `slack`, ...
    pub kind: String,
    /// Enabled in the file.
    pub enabled: bool,
    /// Deliveries waiting.
    pub pending: usize,
    /// Delivered since start.
    pub sent: u64,
    /// Failed attempts in a row (0 when the last one worked).
    pub failing: u32,
    /// The last failure: code and text.
    pub last_error: Option<(String, String)>,
}

/// State of one channel, shared by the dispatcher and the channel's worker.
struct Lane {
    cfg: ChannelConfig,
    queue: VecDeque<Delivery>,
    /// Earliest moment of the next attempt (backoff, server's Retry-After).
    not_before: Option<Instant>,
    /// Moments of the sends of the last minute (rate limit).
    sent_at: VecDeque<Instant>,
    sent: u64,
    failing: u32,
    reported: bool,
    last_error: Option<(String, String)>,
    removed: bool,
}

/// A channel's state and the bell that wakes its worker.
type LaneHandle = (Arc<Mutex<Lane>>, Arc<Notify>);

struct Shared {
    deps: RelayDeps,
    lanes: Mutex<BTreeMap<String, LaneHandle>>,
    next_id: Mutex<u64>,
    recent: Mutex<VecDeque<Delivery>>,
}

/// Deliveries kept for the app's delivery log.
const RECENT: usize = 200;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Handle to the running relay (cheap to clone).
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// The daily summary.
    summary: Arc<Mutex<Summary>>,
}

/// The daily summary's task, what it needs to start again, and when it last went out.
#[derive(Default)]
struct Summary {
    deps: Option<(
        tradeguard_engine::enforce::Guard,
        Arc<Inbox>,
        Arc<dyn Clock>,
    )>,
    last: Arc<Mutex<Option<tradeguard_model::Timestamp>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Starts the dispatcher and one worker per channel; pending deliveries of channels still
    /// in the file are queued again, those of removed channels are given up (journaled).
    pub async fn start(deps: RelayDeps, inbox: InboxRx) -> Self {
        let pending = deps.pending.clone();
        let next = deps.last_id + 1;
        let relay = Self {
            shared: Arc::new(Shared {
                deps,
                lanes: Mutex::new(BTreeMap::new()),
                next_id: Mutex::new(next),
                recent: Mutex::new(VecDeque::new()),
            }),
            tasks: Arc::new(Mutex::new(Vec::new())),
            summary: Arc::default(),
        };
        let channels = relay.shared.deps.config.channel.clone();
        for c in channels {
            relay.add_lane(c);
        }
        for mut d in pending {
            let lane = lock(&relay.shared.lanes).get(&d.channel).cloned();
            match lane {
                Some((lane, wake)) => {
                    lock(&lane).queue.push_back(d);
                    wake.notify_one();
                }
                None => {
                    d.state = DeliveryState::GaveUp;
                    d.error_code = Some("alerts.unknown_channel".to_owned());
                    d.error = Some(format!(
                        "channel {:?} is no longer in the alerts file",
                        d.channel
                    ));
                    relay.shared.record(d).await;
                }
            }
        }
        let shared = relay.shared.clone();
        let h = tokio::spawn(dispatch(shared, inbox));
        lock(&relay.tasks).push(h);
        relay
    }

    fn add_lane(&self, cfg: ChannelConfig) {
        let name = cfg.name.clone();
        let lane = Arc::new(Mutex::new(Lane {
            cfg,
            queue: VecDeque::new(),
            not_before: None,
            sent_at: VecDeque::new(),
            sent: 0,
            failing: 0,
            reported: false,
            last_error: None,
            removed: false,
        }));
        let wake = Arc::new(Notify::new());
        lock(&self.shared.lanes).insert(name, (lane.clone(), wake.clone()));
        let shared = self.shared.clone();
        let h = tokio::spawn(supervise(shared, lane, wake));
        lock(&self.tasks).push(h);
    }

    /// Runs the daily summary of `guard` (queued through `sink`) at the alerts file's time,
    /// from now on and after every [`Self::reconfigure`]; `last`: when the last one was queued.
    pub fn run_summary(
        &self,
        guard: &tradeguard_engine::enforce::Guard,
        sink: Arc<Inbox>,
        clock: Arc<dyn Clock>,
        at: Option<chrono::NaiveTime>,
        last: Option<tradeguard_model::Timestamp>,
    ) {
        {
            let mut s = lock(&self.summary);
            s.deps = Some((guard.clone(), sink, clock));
            *lock(&s.last) = last;
        }
        self.restart_summary(at);
    }

    fn restart_summary(&self, at: Option<chrono::NaiveTime>) {
        let mut s = lock(&self.summary);
        if let Some(h) = s.task.take() {
            h.abort();
        }
        if let (Some(at), Some((guard, sink, clock))) = (at, s.deps.clone()) {
            s.task = Some(crate::summary::spawn(
                guard,
                sink,
                clock,
                at,
                s.last.clone(),
            ));
        }
    }

    /// Applies a new alerts file: changed channels keep their queue, new ones start, removed
    /// ones give up what they held (journaled).
    pub async fn reconfigure(&self, cfg: AlertsConfig) {
        let mut gone = Vec::new();
        {
            let lanes = lock(&self.shared.lanes);
            for (name, (lane, wake)) in lanes.iter() {
                let mut l = lock(lane);
                match cfg.get(name) {
                    Some(c) => l.cfg = c.clone(),
                    None => {
                        l.removed = true;
                        gone.extend(l.queue.drain(..));
                    }
                }
                wake.notify_one();
            }
        }
        lock(&self.shared.lanes).retain(|n, _| cfg.get(n).is_some());
        for c in &cfg.channel {
            if !lock(&self.shared.lanes).contains_key(&c.name) {
                self.add_lane(c.clone());
            }
        }
        for mut d in gone {
            d.state = DeliveryState::GaveUp;
            d.error_code = Some("alerts.unknown_channel".to_owned());
            d.error = Some(format!("channel {:?} was removed", d.channel));
            self.shared.record(d).await;
        }
        self.restart_summary(cfg.summary_time());
    }

    /// Sends a test message through `channel` now (the Settings test button): the result, and
    /// an audit entry either way.
    pub async fn test(&self, channel: &str) -> Result<(), NotifyError> {
        let cfg = lock(&self.shared.lanes)
            .get(channel)
            .map(|(l, _)| lock(l).cfg.clone())
            .ok_or_else(|| NotifyError::UnknownChannel(channel.to_owned()))?;
        let m = Message::test(channel, self.shared.deps.clock.now().millis());
        let r = self.shared.send(&cfg, &m).await;
        let (decision, code, reason) = match &r {
            Ok(()) => (
                "alert_delivered",
                "alerts.test",
                format!("test message delivered to channel {channel:?}"),
            ),
            Err(e) => (
                "alert_delivery_failed",
                e.code(),
                format!("test message to channel {channel:?} failed: {e}"),
            ),
        };
        self.shared
            .deps
            .alerter
            .audit(decision, code, reason, None)
            .await;
        r
    }

    /// Every channel's state.
    pub fn channels(&self) -> Vec<ChannelStatus> {
        lock(&self.shared.lanes)
            .values()
            .map(|(l, _)| {
                let l = lock(l);
                ChannelStatus {
                    name: l.cfg.name.clone(),
                    kind: l.cfg.kind.type_name().to_owned(),
                    enabled: l.cfg.enabled,
                    pending: l.queue.len(),
                    sent: l.sent,
                    failing: l.failing,
                    last_error: l.last_error.clone(),
                }
            })
            .collect()
    }

    /// The latest delivery records, newest first.
    pub fn recent(&self) -> Vec<Delivery> {
        lock(&self.shared.recent).iter().rev().cloned().collect()
    }

    /// Stops the relay's tasks (what is pending stays journaled for the next start).
    pub fn shutdown(&self) {
        for h in lock(&self.tasks).drain(..) {
            h.abort();
        }
        if let Some(h) = lock(&self.summary).task.take() {
            h.abort();
        }
    }
}

impl Shared {
    async fn record(&self, d: Delivery) {
        {
            let mut r = lock(&self.recent);
            r.push_back(d.clone());
            while r.len() > RECENT {
                r.pop_front();
            }
        }
        if let Err(e) = self.deps.journal.append(JournalRecord::Delivery(d)).await {
            tracing::error!(code = e.code(), "alert delivery not journaled: {e}");
        }
    }

    async fn secret(&self, channel: &str) -> Result<Option<String>, NotifyError> {
        let store = self.deps.secrets.clone();
        let name = channel.to_owned();
        tokio::task::spawn_blocking(move || store.get(&name))
            .await
            .unwrap_or_else(|e| Err(NotifyError::Keychain(e.to_string())))
    }

    async fn send(&self, cfg: &ChannelConfig, m: &Message) -> Result<(), NotifyError> {
        let secret = if !cfg.kind.uses_secret() {
            None
        } else if cfg.kind.needs_secret() {
            self.secret(&cfg.name).await?
        } else {
            // An optional secret (an ntfy token): a keychain that cannot be asked does not
            // stop the message; the server refuses it if the topic needs the token.
            self.secret(&cfg.name).await.unwrap_or_else(|e| {
                tracing::warn!(code = e.code(), channel = %cfg.name, "sending without the optional secret: {e}");
                None
            })
        };
        channel::send(cfg, secret.as_deref(), m).await
    }
}

async fn dispatch(shared: Arc<Shared>, mut inbox: InboxRx) {
    while let Some(a) = inbox.0.recv().await {
        let lanes: Vec<_> = lock(&shared.lanes).values().cloned().collect();
        for (lane, wake) in lanes {
            let d = {
                let l = lock(&lane);
                // Alerts about delivery only go where delivery works.
                if !l.cfg.carries(&a) || (a.code.starts_with("alerts.") && l.failing > 0) {
                    continue;
                }
                let mut id = lock(&shared.next_id);
                let d = Delivery {
                    id: *id,
                    channel: l.cfg.name.clone(),
                    alert: a.clone(),
                    state: DeliveryState::Pending,
                    attempts: 0,
                    error_code: None,
                    error: None,
                    updated: shared.deps.clock.now(),
                };
                *id += 1;
                d
            };
            // Journaled before it is queued: a crash from here on still delivers it.
            shared.record(d.clone()).await;
            lock(&lane).queue.push_back(d);
            wake.notify_one();
        }
    }
}

async fn supervise(shared: Arc<Shared>, lane: Arc<Mutex<Lane>>, wake: Arc<Notify>) {
    loop {
        let r = catch_unwind(work(shared.clone(), lane.clone(), wake.clone())).await;
        match r {
            Ok(()) => return,
            Err(why) => {
                let name = lock(&lane).cfg.name.clone();
                shared
                    .deps
                    .alerter
                    .raise(
                        Severity::Critical,
                        "alerts.relay_restarted",
                        format!(
                            "The delivery task of alert channel {name:?} stopped ({why}) and was started again; nothing queued was lost."
                        ),
                    )
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// What the worker does next.
enum Next {
    Wait,
    Sleep(Duration),
    Send(Box<Delivery>, ChannelConfig),
    Stop,
}

fn next(l: &mut Lane, now: Instant) -> Next {
    if l.removed {
        return Next::Stop;
    }
    if l.queue.is_empty() {
        return Next::Wait;
    }
    if let Some(t) = l.not_before
        && t > now
    {
        return Next::Sleep(t - now);
    }
    while l
        .sent_at
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        l.sent_at.pop_front();
    }
    if l.sent_at.len() >= l.cfg.per_minute as usize
        && let Some(first) = l.sent_at.front()
    {
        return Next::Sleep(Duration::from_secs(60) - now.duration_since(*first));
    }
    if !l.cfg.enabled {
        return Next::Wait;
    }
    // Critical first, then in order.
    let i = l
        .queue
        .iter()
        .position(|d| d.alert.severity == Severity::Critical)
        .unwrap_or(0);
    match l.queue.remove(i) {
        Some(d) => Next::Send(Box::new(d), l.cfg.clone()),
        None => Next::Wait,
    }
}

async fn work(shared: Arc<Shared>, lane: Arc<Mutex<Lane>>, wake: Arc<Notify>) {
    let policy = shared.deps.retry;
    loop {
        let step = next(&mut lock(&lane), Instant::now());
        let (mut d, cfg) = match step {
            Next::Stop => return,
            Next::Wait => {
                wake.notified().await;
                continue;
            }
            Next::Sleep(t) => {
                tokio::select! {
                    () = tokio::time::sleep(t) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
            Next::Send(d, cfg) => (*d, cfg),
        };
        let m = Message::of(&d.alert);
        let r = shared.send(&cfg, &m).await;
        d.attempts += 1;
        d.updated = shared.deps.clock.now();
        let alerter = &shared.deps.alerter;
        match r {
            Ok(()) => {
                d.state = DeliveryState::Sent;
                d.error_code = None;
                d.error = None;
                let recovered = {
                    let mut l = lock(&lane);
                    l.sent += 1;
                    l.sent_at.push_back(Instant::now());
                    l.not_before = None;
                    let was = l.reported;
                    l.failing = 0;
                    l.reported = false;
                    l.last_error = None;
                    was
                };
                alerter
                    .audit(
                        "alert_delivered",
                        &d.alert.code,
                        format!(
                            "alert {} delivered to channel {:?} (attempt {})",
                            d.alert.code, cfg.name, d.attempts
                        ),
                        None,
                    )
                    .await;
                shared.record(d).await;
                if recovered {
                    alerter
                        .raise(
                            Severity::Info,
                            "alerts.channel_recovered",
                            format!("Alert channel {:?} delivers again.", cfg.name),
                        )
                        .await;
                }
            }
            Err(e) => {
                let age = Duration::from_nanos(
                    u64::try_from(d.updated.0.saturating_sub(d.alert.ts.0)).unwrap_or(0),
                );
                let critical = d.alert.severity == Severity::Critical;
                let give_up = !e.retryable()
                    || (critical && age >= policy.critical_for)
                    || (!critical && d.attempts >= policy.attempts);
                let wait = match &e {
                    NotifyError::RateLimited { retry_after, .. } => *retry_after,
                    _ => policy
                        .base
                        .saturating_mul(1u32 << (d.attempts - 1).min(16))
                        .min(policy.max),
                };
                d.error_code = Some(e.code().to_owned());
                d.error = Some(e.to_string());
                d.state = if give_up {
                    DeliveryState::GaveUp
                } else {
                    DeliveryState::Pending
                };
                let (report, failing) = {
                    let mut l = lock(&lane);
                    l.failing += 1;
                    l.last_error = Some((e.code().to_owned(), e.to_string()));
                    if !give_up {
                        l.not_before = Some(Instant::now() + wait);
                        l.queue.push_front(d.clone());
                    }
                    let report = !l.reported && l.failing >= policy.failing_after;
                    if report {
                        l.reported = true;
                    }
                    (report, l.failing)
                };
                let what = if give_up {
                    "given up".to_owned()
                } else {
                    format!("retry in {:.0} s", wait.as_secs_f64())
                };
                alerter
                    .audit(
                        "alert_delivery_failed",
                        e.code(),
                        format!(
                            "alert {} to channel {:?}, attempt {}: {e}; {what}",
                            d.alert.code, cfg.name, d.attempts
                        ),
                        None,
                    )
                    .await;
                shared.record(d).await;
                if report || (give_up && critical) {
                    alerter
                        .raise(
                            if critical {
                                Severity::Critical
                            } else {
                                Severity::Warning
                            },
                            "alerts.channel_failing",
                            format!(
                                "Alert channel {:?} keeps failing ({failing} attempts in a row): {e}. {}",
                                cfg.name,
                                if give_up {
                                    "A message was given up: check Tradeguard's alerts."
                                } else {
                                    "Messages wait and are retried."
                                }
                            ),
                        )
                        .await;
                }
            }
        }
    }
}
