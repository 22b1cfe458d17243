//! [`NotifyError`]: why an alert could not be delivered or a channel not be used, with stable
//! codes (`alerts.*`).

use std::time::Duration;

/// What went wrong, per channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The alerts file (or a channel from Settings) cannot be used.
    #[error("alerts file{}: {field}{}{reason}", line.map(|l| format!(", line {l}")).unwrap_or_default(), if field.is_empty() { "" } else { ": " })]
    Config {
        /// Line of the file, when the parser knows it.
        line: Option<usize>,
        /// The field (`channel "mail": to`), or empty.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No channel of that name.
    #[error("no alert channel named {0:?}")]
    UnknownChannel(String),
    /// The channel's secret is not in the keychain.
    #[error("channel {0:?} has no secret in the keychain: enter it in Settings → Alerts")]
    SecretMissing(String),
    /// The keychain cannot be used.
    #[error("the OS keychain is not available: {0}")]
    Keychain(String),
    /// The server could not be reached (DNS, refused, TLS handshake, connection dropped).
    #[error("{channel}: cannot reach the server: {detail}")]
    Unreachable {
        /// Channel name.
        channel: String,
        /// What the transport said.
        detail: String,
    },
    /// The server answered, and refused (HTTP status or SMTP reply).
    #[error("{channel}: refused by the server ({status}): {detail}")]
    Rejected {
        /// Channel name.
        channel: String,
        /// HTTP status or SMTP reply code.
        status: u16,
        /// The server's words.
        detail: String,
        /// Permanent (the same message will never be taken: bad address, bad token).
        permanent: bool,
    },
    /// The server asked to wait (HTTP 429 / SMTP 4xx rate limits).
    #[error("{channel}: rate limited by the server, retry in {:.0} s", retry_after.as_secs_f64())]
    RateLimited {
        /// Channel name.
        channel: String,
        /// What the server asked for.
        retry_after: Duration,
    },
    /// No answer in time.
    #[error("{channel}: no answer within {:.0} s", after.as_secs_f64())]
    Timeout {
        /// Channel name.
        channel: String,
        /// The budget.
        after: Duration,
    },
}

impl NotifyError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "alerts.config_invalid",
            Self::UnknownChannel(_) => "alerts.unknown_channel",
            Self::SecretMissing(_) => "alerts.secret_missing",
            Self::Keychain(_) => "alerts.keychain_unavailable",
            Self::Unreachable { .. } => "alerts.unreachable",
            Self::Rejected { .. } => "alerts.rejected",
            Self::RateLimited { .. } => "alerts.rate_limited",
            Self::Timeout { .. } => "alerts.timeout",
        }
    }

    /// Whether trying again can help (a bad token or address will not get better).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::RateLimited { .. } | Self::Timeout { .. } => true,
            Self::Rejected { permanent, .. } => !permanent,
            // A secret entered or a keychain unlocked later makes the next attempt work.
            Self::SecretMissing(_) | Self::Keychain(_) => true,
            Self::Config { .. } | Self::UnknownChannel(_) => false,
        }
    }
}
