//! [`Alerter`]: how the guard's tasks raise alerts and write audit entries — logged, journaled
//! and broadcast to the UI. A journal failure is logged, never hides the alert itself.

use crate::alert::{Alert, AuditEntry, Severity};
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
}

impl Alerter {
    /// An alerter writing to `journal`, broadcasting on `tx`.
    pub fn new(
        journal: Arc<dyn Journal>,
        clock: Arc<dyn Clock>,
        tx: broadcast::Sender<Alert>,
    ) -> Self {
        Self { journal, clock, tx }
    }

    /// Alerts raised from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.tx.subscribe()
    }

    /// Sends an alert that was already journaled elsewhere (the coordinator's) to subscribers.
    pub fn forward(&self, a: Alert) {
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
