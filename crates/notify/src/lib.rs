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

pub use config::{AlertsConfig, ChannelConfig, ChannelKind, MinSeverity, SmtpSecurity};
pub use error::NotifyError;
pub use message::Message;
pub use relay::{ChannelStatus, Inbox, InboxRx, Relay, RelayDeps, RetryPolicy, inbox};
pub use secrets::{Keychain, MemorySecrets, SecretStore};
