//! [`Alerter`]: how the guard's tasks raise alerts and write audit entries — logged, journaled
//! and broadcast to the UI. A journal failure is logged, never hides the alert itself.
//!
//! Every alert of the guard passes through here exactly once — its own ([`Alerter::raise`]),
//! and the coordinator's and the assignment guard's ([`Alerter::forward`]) — so this is where
//! each Critical alert gets its one notification (see [`notification_of`]).

use crate::alert::{Alert, AlertSink, AuditEntry, Severity};
use crate::assignment::{Notification, Notifier};
use crate::intent::Purpose;
use crate::journal::{Journal, JournalRecord};
use std::sync::Arc;
use tokio::sync::broadcast;
use tradeguard_model::Clock;

/// Raises alerts and audit entries for the guard.
#[derive(Clone)]
pub struct Alerter {
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    tx: broadcast::Sender<Alert>,
    notifier: Option<Arc<dyn Notifier>>,
    relay: Option<Arc<dyn AlertSink>>,
}

/// Longest notification title (characters); the whole message is always in the body.
const TITLE_MAX: usize = 120;

/// The notification for a Critical alert: the title is the alert's first sentence (the
/// assignment guard writes its `ASSIGNMENT: SPY 440 P ×2 assigned — …` title that way), cut at
/// [`TITLE_MAX`] characters; the body is the rest (or the whole message when it was cut).
pub fn notification_of(a: &Alert) -> Notification {
    let (first, rest) = match a.message.split_once(". ") {
        Some((t, r)) => (t, r),
        None => (a.message.as_str(), ""),
    };
    let (title, body) = if first.chars().count() <= TITLE_MAX {
        (first.to_owned(), rest.to_owned())
    } else {
        let cut: String = first.chars().take(TITLE_MAX - 1).collect();
        (format!("{cut}…"), a.message.clone())
    };
    Notification {
        title,
        body: format!("{body} [{}]", a.code).trim_start().to_owned(),
        severity: a.severity,
    }
}

impl Alerter {
    /// An alerter writing to `journal`, broadcasting on `tx`.
    pub fn new(
        journal: Arc<dyn Journal>,
        clock: Arc<dyn Clock>,
        tx: broadcast::Sender<Alert>,
    ) -> Self {
        Self {
            journal,
            clock,
            tx,
            notifier: None,
            relay: None,
        }
    }

    /// Sends one notification per Critical alert (raised or forwarded) through `n`.
    #[must_use]
    pub fn with_notifier(mut self, n: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(n);
        self
    }

    /// Hands every alert (raised or forwarded) to `sink` as well: the off-desk relay.
    #[must_use]
    pub fn with_relay(mut self, sink: Option<Arc<dyn AlertSink>>) -> Self {
        self.relay = sink;
        self
    }

    fn notify(&self, a: &Alert) {
        if let Some(r) = &self.relay {
            r.accept(a);
        }
        if a.severity == Severity::Critical
            && let Some(n) = &self.notifier
        {
            n.notify(&notification_of(a));
        }
    }

    /// Alerts raised from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.tx.subscribe()
    }

    /// Sends an alert that was already journaled elsewhere (the coordinator's) to subscribers.
    pub fn forward(&self, a: Alert) {
        self.notify(&a);
        // Err only means no subscriber right now.
        let _ = self.tx.send(a);
    }

    /// Logs, journals and broadcasts an alert.
    pub async fn raise(&self, severity: Severity, code: &str, message: String) {
        match severity {
            Severity::Critical => tracing::error!(code, "{message}"),
            Severity::Warning => tracing::warn!(code, "{message}"),
            Severity::Info => tracing::info!(code, "{message}"),
        }
        let a = Alert {
            ts: self.clock.now(),
            severity,
            code: code.to_owned(),
            message,
            group: None,
            stop: None,
        };
        // The person first: a slow journal must not delay the notification.
        self.notify(&a);
        if let Err(e) = self.journal.append(JournalRecord::Alert(a.clone())).await {
            tracing::error!(code = e.code(), "alert not journaled: {e}");
        }
        let _ = self.tx.send(a);
    }

    /// Logs and journals an audit entry (a decision and its reason).
    pub async fn audit(
        &self,
        decision: &str,
        code: &str,
        reason: String,
        purpose: Option<Purpose>,
    ) {
        tracing::info!(decision, code, purpose = ?purpose, "{reason}");
        let e = AuditEntry {
            ts: self.clock.now(),
            decision: decision.to_owned(),
            code: code.to_owned(),
            reason,
            purpose,
            group: None,
        };
        if let Err(err) = self.journal.append(JournalRecord::Audit(e)).await {
            tracing::error!(code = err.code(), "audit entry not journaled: {err}");
        }
    }
}
