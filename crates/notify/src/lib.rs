//! Off-desk alerts: the guard's alerts carried to email (SMTP), Slack, Discord, a JSON
//! webhook, ntfy (phone push) and Telegram.
//!
//! - [`config`]: the alerts file (`alerts.toml`): channels and routing, no secrets.
//! - [`secrets`]: channel secrets in the OS keychain.
//! - [`message`]: what an alert says away from the desk.
//! - [`channel`]: one message to one channel, as each service documents it.
//! - [`relay`]: the journaled outbox, retries, rate limits, in-app alerts about delivery.
//!
//! Wiring: `let (sink, rx) = relay::inbox();` — `sink` goes into `GuardDeps::relay` (every
//! alert of the guard, once, without waiting), `rx` into [`Relay::start`] once the guard runs.

pub mod channel;
pub mod config;
pub mod error;
pub mod message;
pub mod relay;
pub mod secrets;
pub mod summary;

pub use config::{
    AlertsConfig, ChannelConfig, ChannelKind, MinSeverity, SmtpSecurity, SummaryConfig,
};
pub use error::NotifyError;
pub use message::Message;
pub use relay::{ChannelStatus, Inbox, InboxRx, Relay, RelayDeps, RetryPolicy, inbox};
pub use secrets::{
    Keychain, MemorySecrets, SecretStore, set_venue_secret, venue_key, venue_secret,
};

use std::sync::Arc;
use tradeguard_engine::Journal;
use tradeguard_engine::enforce::Guard;
use tradeguard_model::Clock;

/// Reads and validates an alerts file.
pub fn read_config(path: &std::path::Path) -> Result<AlertsConfig, NotifyError> {
    let text = std::fs::read_to_string(path).map_err(|e| NotifyError::Config {
        line: None,
        field: String::new(),
        reason: format!("{}: cannot read: {e}", path.display()),
    })?;
    AlertsConfig::parse(&text)
}

/// Raises the Critical alert for an alerts file that cannot be used (the guard goes on without
/// its channels); `fix` says where to mend it.
pub async fn alert_rejected(guard: &Guard, path: &std::path::Path, e: &NotifyError, fix: &str) {
    guard
        .raise_alert(
            tradeguard_engine::Severity::Critical,
            e.code(),
            format!(
                "Off-desk alerts are OFF: {} was rejected: {e}. {fix}",
                path.display()
            ),
        )
        .await;
}

/// Starts the relay for a running `guard` (its alerter raises the relay's alerts and audit
/// entries), with the deliveries `journal` holds as pending, and the daily summary when a
/// channel asks for it: the one wiring of the desktop and `tradeguard guard`. `sink` is the
/// inbox handed to the guard (the summary is queued through it). A journal that cannot be read
/// is a Critical alert and no relay (`None`).
pub async fn start_for_guard(
    guard: &Guard,
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    config: AlertsConfig,
    secrets: Arc<dyn SecretStore>,
    (sink, inbox): (Arc<Inbox>, InboxRx),
) -> Option<Relay> {
    let state = match journal.load().await {
        Ok(s) => s,
        Err(e) => {
            guard
                .raise_alert(
                    tradeguard_engine::Severity::Critical,
                    "alerts.relay_not_started",
                    format!(
                        "Off-desk alerts are OFF: the journal could not be read for pending deliveries: {e} ({})",
                        e.code()
                    ),
                )
                .await;
            return None;
        }
    };
    let summary_at = config.summary_time();
    let relay = Relay::start(
        RelayDeps {
            config,
            secrets,
            journal,
            clock: clock.clone(),
            alerter: guard.alerter(),
            pending: state.pending_deliveries.into_values().collect(),
            last_id: state.last_delivery_id,
            retry: RetryPolicy::default(),
        },
        inbox,
    )
    .await;
    relay.run_summary(guard, sink, clock, summary_at, state.last_summary);
    Some(relay)
}
