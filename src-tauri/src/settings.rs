//! App settings (`settings.toml` in the config directory): what the Settings screen edits.
//! A missing file means the defaults; a file that does not parse is an error naming its line
//! and column, shown to the user (never silently replaced): the app still starts, on the
//! defaults, logs the error and raises it as a Critical `settings.rejected` alert once the
//! guard runs.

use crate::error::IpcError;
use serde::{Deserialize, Serialize};
use specta::Type;
use std::path::Path;

/// Log levels the Settings screen offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// Which venue the guard runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    /// The built-in simulated venue (the default: runs with no account).
    #[default]
    Sim,
    /// Interactive Brokers through IB Gateway or TWS.
    Ib,
    /// Tradier (REST and streams; the access token in the OS keychain).
    Tradier,
    /// ProjectX: TopstepX and other prop firms (the API key in the OS keychain).
    Projectx,
}

/// Which demo the simulated venue runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum SimDemo {
    /// SPY option strategies (an iron condor, a strangle, a covered call...).
    #[default]
    Options,
    /// Futures on a prop-firm style account (MNQ, MES).
    Futures,
}

/// Tradier's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum TradierEnv {
    /// sandbox.tradier.com: paper trading, delayed data.
    #[default]
    Sandbox,
    /// api.tradier.com: real money.
    Live,
}

/// The venue and, for IB, where IB Gateway/TWS listens. Applies at the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct VenueSettings {
    pub kind: VenueKind,
    /// The simulated venue's demo.
    pub sim_demo: SimDemo,
    pub ib_host: String,
    pub ib_port: u16,
    #[specta(type = specta_typescript::Number)]
    pub ib_client_id: i32,
    /// Empty: the first account the gateway manages.
    pub ib_account: String,
    /// Tradier account number.
    pub tradier_account: String,
    /// Tradier environment.
    pub tradier_env: TradierEnv,
    /// A Tradier API URL instead of the environment's (a fake Tradier on this machine); empty:
    /// the environment's.
    pub tradier_url: String,
    /// ProjectX user name.
    pub projectx_user: String,
    /// ProjectX account: its name or id.
    pub projectx_account: String,
    /// The firm's REST base; empty: TopstepX.
    pub projectx_api: String,
    /// The firm's hubs' base; empty: the REST base's (TopstepX: its rtc host).
    pub projectx_rtc: String,
}

impl Default for VenueSettings {
    fn default() -> Self {
        let ib = tradeguard_ibkr::IbSettings::default();
        Self {
            kind: VenueKind::Sim,
            sim_demo: SimDemo::Options,
            ib_host: ib.host,
            ib_port: ib.port,
            ib_client_id: ib.client_id,
            ib_account: ib.account,
            tradier_account: String::new(),
            tradier_env: TradierEnv::Sandbox,
            tradier_url: String::new(),
            projectx_user: String::new(),
            projectx_account: String::new(),
            projectx_api: String::new(),
            projectx_rtc: String::new(),
        }
    }
}

impl VenueSettings {
    /// The IB connection settings, validated (host, port, client id, account code).
    pub fn ib(&self) -> Result<tradeguard_ibkr::IbSettings, IpcError> {
        let s = tradeguard_ibkr::IbSettings {
            host: self.ib_host.trim().to_owned(),
            port: self.ib_port,
            client_id: self.ib_client_id,
            account: self.ib_account.trim().to_owned(),
            ..tradeguard_ibkr::IbSettings::default()
        };
        s.validate()
            .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
        Ok(s)
    }

    /// The Tradier settings with `token`, validated (account, URL, token present).
    pub fn tradier(
        &self,
        token: tradeguard_tradier::Token,
    ) -> Result<tradeguard_tradier::TradierSettings, IpcError> {
        let account = self.tradier_account.trim();
        let s = if self.tradier_url.trim().is_empty() {
            let env = match self.tradier_env {
                TradierEnv::Sandbox => tradeguard_tradier::Environment::Sandbox,
                TradierEnv::Live => tradeguard_tradier::Environment::Live,
            };
            tradeguard_tradier::TradierSettings::new(env, account, token)
        } else {
            tradeguard_tradier::TradierSettings::at(self.tradier_url.trim(), account, token)
        };
        s.validate()
            .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
        Ok(s)
    }

    /// The ProjectX settings with `key`, validated.
    pub fn projectx(
        &self,
        key: tradeguard_projectx::ApiKey,
    ) -> Result<tradeguard_projectx::ProjectxSettings, IpcError> {
        let api = self.projectx_api.trim();
        let hosts = if api.is_empty() {
            tradeguard_projectx::Hosts::topstepx()
        } else {
            let rtc = self.projectx_rtc.trim();
            tradeguard_projectx::Hosts::custom(api, if rtc.is_empty() { api } else { rtc })
        };
        let s = tradeguard_projectx::ProjectxSettings::new(
            hosts,
            &self.projectx_user,
            key,
            &self.projectx_account,
        );
        s.validate()
            .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
        Ok(s)
    }

    /// The ProjectX settings checked without the key.
    pub fn check_projectx(&self) -> Result<(), IpcError> {
        self.projectx(tradeguard_projectx::ApiKey::new("placeholder"))
            .map(|_| ())
    }

    /// The Tradier settings without the token: everything but the token checked (saving
    /// the settings before the token is stored is fine).
    pub fn check_tradier(&self) -> Result<(), IpcError> {
        self.tradier(tradeguard_tradier::Token::new("placeholder"))
            .map(|_| ())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// Start Tradeguard when the user logs in (off by default).
    pub start_at_login: bool,
    /// Level of the log files (RUST_LOG, when set, overrides it).
    pub log_level: LogLevel,
    /// The venue to guard (applies at the next start).
    pub venue: VenueSettings,
}

impl Settings {
    /// Reads the settings file; missing means defaults.
    pub fn load(path: &Path) -> Result<Self, IpcError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(IpcError::new(
                    crate::error::ErrorCode::Storage,
                    "settings.read",
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        toml::from_str(&text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| {
                tradeguard_engine::rules::line_col(&text, s.start)
            });
            IpcError::invalid_input(
                "settings.parse",
                format!(
                    "{}:{line}:{column}: settings not valid: {}",
                    path.display(),
                    e.message().trim()
                ),
            )
        })
    }

    /// Writes the settings file atomically ([`crate::paths::write_atomically`]).
    pub fn save(&self, path: &Path) -> Result<(), IpcError> {
        let storage = |what: &str, e: std::io::Error| {
            IpcError::new(
                crate::error::ErrorCode::Storage,
                "settings.write",
                format!("cannot {what} {}: {e}", path.display()),
            )
        };
        let text = toml::to_string_pretty(self).map_err(|e| {
            IpcError::new(
                crate::error::ErrorCode::Internal,
                "settings.encode",
                e.to_string(),
            )
        })?;
        crate::paths::write_atomically(path, &text).map_err(|e| storage("write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_the_defaults_and_a_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        assert!(
            !Settings::default().start_at_login,
            "start at login is off by default"
        );
        let s = Settings {
            start_at_login: true,
            log_level: LogLevel::Debug,
            venue: VenueSettings {
                kind: VenueKind::Ib,
                ib_port: 4001,
                ib_account: "U1234567".into(),
                ..VenueSettings::default()
            },
        };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("logLevel = \"debug\"")
        );
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it_not_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "logLevel = \"loud\"\n").unwrap();
        let e = Settings::load(&path).unwrap_err();
        assert_eq!(e.reason, "settings.parse");
        assert!(e.message.contains("settings.toml"), "{}", e.message);
        std::fs::write(&path, "startAtLogin = true\n\n[venue]\nibPort = \"x\"\n").unwrap();
        let e = Settings::load(&path).unwrap_err();
        assert!(
            e.message.contains("settings.toml:4:10:"),
            "line and column of the bad value: {}",
            e.message
        );
        std::fs::write(&path, "startAtLogon = true\n").unwrap();
        assert_eq!(Settings::load(&path).unwrap_err().reason, "settings.parse");
    }

    #[test]
    fn ib_settings_are_validated_with_the_adapter_codes() {
        let ok = VenueSettings {
            kind: VenueKind::Ib,
            ib_host: " 10.0.0.5 ".into(),
            ..VenueSettings::default()
        };
        let ib = ok.ib().unwrap();
        assert_eq!((ib.host.as_str(), ib.port), ("10.0.0.5", 4002));
        let empty = VenueSettings {
            ib_host: "  ".into(),
            ..ok.clone()
        };
        assert_eq!(empty.ib().unwrap_err().reason, "ib.settings.empty_host");
        let port = VenueSettings {
            ib_port: 0,
            ..ok.clone()
        };
        assert_eq!(port.ib().unwrap_err().reason, "ib.settings.bad_port");
        let client = VenueSettings {
            ib_client_id: -1,
            ..ok
        };
        assert_eq!(client.ib().unwrap_err().reason, "ib.settings.bad_client_id");
    }
}
