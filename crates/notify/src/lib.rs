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
pub use secrets::{Keychain, MemorySecrets, SecretStore};

use std::sync::Arc;
use tradeguard_engine::enforce::Guard;
use tradeguard_engine::{Journal, JournalError};
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

/// Starts the relay for a running `guard` (its alerter raises the relay's alerts and audit
/// entries), with the deliveries `journal` holds as pending, and the daily summary when a
/// channel asks for it: the one wiring of the desktop and `tradeguard guard`. `sink` is the
/// inbox handed to the guard (the summary is queued through it).
pub async fn start_for_guard(
    guard: &Guard,
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    config: AlertsConfig,
    secrets: Arc<dyn SecretStore>,
    (sink, inbox): (Arc<Inbox>, InboxRx),
) -> Result<Relay, JournalError> {
    let state = journal.load().await?;
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
    Ok(relay)
}
