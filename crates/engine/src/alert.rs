//! Alerts and audit entries the engine raises; both are journaled and alerts are also
//! broadcast to subscribers (UI, notifications).

use crate::intent::Purpose;
use serde::{Deserialize, Serialize};
use tradeguard_model::{GroupId, Timestamp};

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention.
    Warning,
    /// Money at risk now.
    Critical,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// When.
    pub ts: Timestamp,
    /// How bad.
    pub severity: Severity,
    /// Stable code (e.g. `stop.cancel_rejected`).
    pub code: String,
    /// What happened and why, for a person.
    pub message: String,
    /// Group concerned.
    pub group: Option<GroupId>,
    /// Stop-loss concerned.
    pub stop: Option<u64>,
}

/// One audit-log entry: a decision and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub ts: Timestamp,
    /// Decision (`accepted`, `refused`, `hedge`, `recovered`, ...).
    pub decision: String,
    /// Stable code of the reason.
    pub code: String,
    /// Reason text.
    pub reason: String,
    /// Purpose of the order concerned.
    pub purpose: Option<Purpose>,
    /// Group concerned.
    pub group: Option<GroupId>,
}

/// Receives every alert the guard raises, as it is raised: the off-desk relay
/// (`tradeguard-notify`) queues it for email, chat and phone channels. Must not block: called
/// from the guard's tasks.
pub trait AlertSink: Send + Sync {
    /// Takes `a` (queue it; never wait on I/O here).
    fn accept(&self, a: &Alert);
}

/// Where one off-desk delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    /// Not delivered yet: retried (also after a restart).
    Pending,
    /// The channel accepted it.
    Sent,
    /// Retried until its deadline without success (Warning/Info after their attempts;
    /// Critical after a day).
    GaveUp,
}

/// One alert on its way to one channel (the relay's outbox; the latest record per id wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Delivery id (unique in the journal).
    pub id: u64,
    /// Channel name (from the alerts file).
    pub channel: String,
    /// The alert.
    pub alert: Alert,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// Stable code of the last failure (`alerts.smtp_rejected`, ...).
    pub error_code: Option<String>,
    /// The last failure, for a person.
    pub error: Option<String>,
    /// When this record was written.
    pub updated: Timestamp,
}
