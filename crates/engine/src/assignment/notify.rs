//! [`Notifier`]: how the guard reaches a person outside the app window. The desktop app
//! implements it with an OS notification (notify-rust); the CLI uses [`LogNotifier`]; tests
//! use [`RecordingNotifier`].

use crate::alert::Severity;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Short title, e.g. `ASSIGNMENT: SPY 440 P ×2 assigned — emergency close armed for the open`.
    pub title: String,
    /// Details.
    pub body: String,
    /// Severity.
    pub severity: Severity,
}

/// Delivers notifications. Must not block: called from the guard task.
pub trait Notifier: Send + Sync {
    /// Shows `n`.
    fn notify(&self, n: &Notification);
}

/// Writes notifications as log lines (CLI, headless guard).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, n: &Notification) {
        match n.severity {
            Severity::Critical => {
                tracing::error!(target: "tradeguard::notify", "{} | {}", n.title, n.body)
            }
            Severity::Warning => {
                tracing::warn!(target: "tradeguard::notify", "{} | {}", n.title, n.body)
            }
            Severity::Info => {
                tracing::info!(target: "tradeguard::notify", "{} | {}", n.title, n.body)
            }
        }
    }
}

/// Keeps every notification (tests); clones share the list.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier(Arc<Mutex<Vec<Notification>>>);

impl RecordingNotifier {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything notified so far.
    pub fn all(&self) -> Vec<Notification> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, n: &Notification) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(n.clone());
    }
}
