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

/// What to do when the user clicks a notification (focus the window on the alerts).
pub type ClickHandler = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The action id freedesktop servers invoke when the notification body is clicked.
pub const CLICK_ACTION: &str = "default";

/// Sends one notification (blocking).
pub fn send(n: &OsNotification) -> Result<(), NotifyError> {
    send_clickable(n, None)
}

/// Sends one notification (blocking); with `on_click`, a thread waits for the user to click it
/// (where the platform reports clicks) and runs the handler once. The thread ends when the
/// notification is clicked or closed.
pub fn send_clickable(
    n: &OsNotification,
    on_click: Option<ClickHandler>,
) -> Result<(), NotifyError> {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname(APP_NAME)
        .summary(&n.title)
        .body(&n.body)
        .icon("dialog-warning");
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use notify_rust::{Timeout, Urgency};
        if n.critical {
            notification
                .urgency(Urgency::Critical)
                .timeout(Timeout::Never);
        } else {
            notification.urgency(Urgency::Normal);
        }
    }
    if on_click.is_some() {
        notification.action(CLICK_ACTION, "Show in Tradeguard");
    }
    let handle = notification.show()?;
    #[cfg(all(unix, not(target_os = "macos")))]
    if let Some(on_click) = on_click {
        let spawned = std::thread::Builder::new()
            .name("notification-click".to_owned())
            .spawn(move || {
                handle.wait_for_action(|action| {
                    if action == CLICK_ACTION {
                        on_click();
                    }
                })
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot wait for notification clicks");
        }
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = (handle, on_click);
    Ok(())
}

/// Sends one notification from async code without blocking the runtime.
pub async fn send_async(n: OsNotification) -> Result<(), NotifyError> {
    tokio::task::spawn_blocking(move || send(&n)).await?
}

/// The engine's notifier for the desktop: every notification becomes an OS notification
/// (critical ones stay until dismissed); clicking one runs `on_click` (the app focuses its
/// window on the alerts). Sending happens on the blocking pool; the outcome and the delivery
/// time are logged, a failure never stops the guard.
#[derive(Clone, Default)]
pub struct DesktopNotifier {
    pub on_click: Option<ClickHandler>,
}

impl tradeguard_engine::assignment::notify::Notifier for DesktopNotifier {
    fn notify(&self, n: &tradeguard_engine::assignment::notify::Notification) {
        let os = OsNotification {
            title: n.title.clone(),
            body: n.body.clone(),
            critical: n.severity == tradeguard_engine::Severity::Critical,
        };
        let on_click = self.on_click.clone();
        let job = move || {
            let started = std::time::Instant::now();
            match send_clickable(&os, on_click) {
                Ok(()) => {
                    tracing::info!(title = %os.title, ms = started.elapsed().as_millis() as u64, "OS notification delivered")
                }
                Err(e) => {
                    tracing::warn!(title = %os.title, code = e.code(), error = %e, "OS notification not delivered; the in-app alert still shows")
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(job);
            }
            Err(_) => {
                std::thread::spawn(job);
            }
        }
    }
}
