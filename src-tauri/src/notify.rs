//! OS notifications (freedesktop notifications on Linux, through notify-rust).
//!
//! Sending talks to the session bus and may block, so async callers use [`send_async`], which
//! runs it on the blocking pool. A failure is returned, never swallowed: the caller logs it and
//! the in-app alert still shows.

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsNotification {
    pub title: String,
    pub body: String,
    /// Critical notifications stay until dismissed (urgency critical).
    pub critical: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the desktop notification service did not accept the notification: {0}")]
    Service(#[from] notify_rust::error::Error),
    #[error("the notification task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl NotifyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Service(_) => "notify.service",
            Self::Task(_) => "notify.task",
        }
    }
}

/// The application name notifications are sent under.
pub const APP_NAME: &str = "Tradeguard";

/// Sends one notification (blocking).
pub fn send(n: &OsNotification) -> Result<(), NotifyError> {
    let mut notification = notify_rust::Notification::new();
    notification.appname(APP_NAME).summary(&n.title).body(&n.body).icon("dialog-warning");
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use notify_rust::{Timeout, Urgency};
        if n.critical {
            notification.urgency(Urgency::Critical).timeout(Timeout::Never);
        } else {
            notification.urgency(Urgency::Normal);
        }
    }
    notification.show()?;
    Ok(())
}

/// Sends one notification from async code without blocking the runtime.
pub async fn send_async(n: OsNotification) -> Result<(), NotifyError> {
    tokio::task::spawn_blocking(move || send(&n)).await?
}
