//! Connection settings for IB Gateway / TWS: host, port, client id, account, rate limit and
//! reconnect policy, with validation.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// IB Gateway paper-trading port.
pub const GATEWAY_PAPER_PORT: u16 = 4002;
/// IB Gateway live port.
pub const GATEWAY_LIVE_PORT: u16 = 4001;
/// TWS paper-trading port.
pub const TWS_PAPER_PORT: u16 = 7497;
/// TWS live port.
pub const TWS_LIVE_PORT: u16 = 7496;

/// Invalid settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Host is empty.
    #[error("host must not be empty")]
    EmptyHost,
    /// Port 0.
    #[error("port must be 1..=65535")]
    BadPort,
    /// Client id out of range.
    #[error("client id must be 0..=999999999, got {0}")]
    BadClientId(i32),
    /// Account contains characters IB never uses.
    #[error("account {0:?} is not a valid IB account code")]
    BadAccount(String),
    /// Message rate of zero.
    #[error("message rate must be 1..=100 per second, got {0}")]
    BadRate(u32),
}

impl SettingsError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyHost => "ib.settings.empty_host",
            Self::BadPort => "ib.settings.bad_port",
            Self::BadClientId(_) => "ib.settings.bad_client_id",
            Self::BadAccount(_) => "ib.settings.bad_account",
            Self::BadRate(_) => "ib.settings.bad_rate",
        }
    }
}

/// How to reach IB and how to behave on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbSettings {
    /// Host running IB Gateway or TWS (normally `127.0.0.1`).
    pub host: String,
    /// Socket port (Gateway paper 4002 / live 4001; TWS paper 7497 / live 7496).
    pub port: u16,
    /// API client id; unique per connection to the same gateway.
    pub client_id: i32,
    /// Account code (e.g. `DU1234567`); empty = the first managed account.
    pub account: String,
    /// Outgoing message limit per second (IB allows 50).
    pub max_messages_per_sec: u32,
    /// First reconnect delay; doubles up to `reconnect_max_delay`.
    pub reconnect_initial_delay: Duration,
    /// Longest reconnect delay.
    pub reconnect_max_delay: Duration,
    /// Upper bound for request/answer round trips (snapshots, what-if, contract details).
    pub request_timeout: Duration,
    /// How long an execution waits for its commission report before it is published without one.
    pub commission_wait: Duration,
}

impl Default for IbSettings {
    /// Paper trading through IB Gateway on this machine, client id 1.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: GATEWAY_PAPER_PORT,
            client_id: 1,
            account: String::new(),
            max_messages_per_sec: 45,
            reconnect_initial_delay: Duration::from_secs(1),
            reconnect_max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            commission_wait: Duration::from_secs(2),
        }
    }
}

impl IbSettings {
    /// Paper defaults with the given port.
    pub fn paper(port: u16) -> Self {
        Self {
            port,
            ..Self::default()
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `true` for the well-known live ports (4001, 7496).
    pub fn is_live_port(&self) -> bool {
        matches!(self.port, GATEWAY_LIVE_PORT | TWS_LIVE_PORT)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.host.trim().is_empty() {
            return Err(SettingsError::EmptyHost);
        }
        if self.port == 0 {
            return Err(SettingsError::BadPort);
        }
        if !(0..=999_999_999).contains(&self.client_id) {
            return Err(SettingsError::BadClientId(self.client_id));
        }
        if !self
            .account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(SettingsError::BadAccount(self.account.clone()));
        }
        if !(1..=100).contains(&self.max_messages_per_sec) {
            return Err(SettingsError::BadRate(self.max_messages_per_sec));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_paper_gateway_and_valid() {
        let s = IbSettings::default();
        assert_eq!(s.port, 4002);
        assert!(!s.is_live_port());
        assert_eq!(s.address(), "127.0.0.1:4002");
        assert_eq!(s.validate(), Ok(()));
        assert!(IbSettings::paper(TWS_LIVE_PORT).is_live_port());
    }

    #[test]
    fn validation_rejects_each_bad_field() {
        let ok = IbSettings::default();
        let cases = [
            (
                IbSettings {
                    host: " ".into(),
                    ..ok.clone()
                },
                "ib.settings.empty_host",
            ),
            (
                IbSettings {
                    port: 0,
                    ..ok.clone()
                },
                "ib.settings.bad_port",
            ),
            (
                IbSettings {
                    client_id: -1,
                    ..ok.clone()
                },
                "ib.settings.bad_client_id",
            ),
            (
                IbSettings {
                    account: "DU 1".into(),
                    ..ok.clone()
                },
                "ib.settings.bad_account",
            ),
            (
                IbSettings {
                    max_messages_per_sec: 0,
                    ..ok.clone()
                },
                "ib.settings.bad_rate",
            ),
        ];
        for (s, code) in cases {
            assert_eq!(s.validate().unwrap_err().code(), code);
        }
    }
}
