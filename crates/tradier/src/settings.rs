//! Where Tradier is and how the adapter behaves: environment (live or sandbox), account, the
//! token (held in memory only; it comes from the OS keychain and is never printed), polling
//! and stall times.

use crate::error::TradierError;
use std::fmt;
use std::time::Duration;

/// Live API (<https://docs.tradier.com/docs/getting-started>).
pub const LIVE_API: &str = "https://api.tradier.com/v1";
/// Sandbox API (paper trading, delayed data).
pub const SANDBOX_API: &str = "https://sandbox.tradier.com/v1";

/// A Tradier environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Paper trading at `sandbox.tradier.com`.
    Sandbox,
    /// Real money at `api.tradier.com`.
    Live,
}

impl Environment {
    /// The API base URL.
    pub fn api_url(self) -> &'static str {
        match self {
            Self::Sandbox => SANDBOX_API,
            Self::Live => LIVE_API,
        }
    }
}

/// An access token. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into().trim().to_owned())
    }
    /// The header value (the only way out).
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
    /// Whether there is one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// How to reach Tradier.
#[derive(Debug, Clone)]
pub struct TradierSettings {
    /// API base URL (`…/v1`): [`LIVE_API`], [`SANDBOX_API`], or a fake's.
    pub api_url: String,
    /// Account number.
    pub account: String,
    /// Access token.
    pub token: Token,
    /// Positions and orders are read this often even when the account stream is quiet
    /// (Tradier allows about 120 account reads a minute on live).
    pub poll: Duration,
    /// The account stream's heartbeat comes every few seconds; this long without any message
    /// and the stream is re-opened with a new session.
    pub stall: Duration,
    /// Bound of one HTTP request.
    pub request_timeout: Duration,
    /// Longest reconnect delay (the first is one second, doubling).
    pub reconnect_max_delay: Duration,
}

impl TradierSettings {
    /// Settings for an environment's account with the defaults.
    pub fn new(env: Environment, account: impl Into<String>, token: Token) -> Self {
        Self::at(env.api_url(), account, token)
    }

    /// Settings for an API at `api_url` (a fake's, in tests).
    pub fn at(api_url: impl Into<String>, account: impl Into<String>, token: Token) -> Self {
        Self {
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            account: account.into().trim().to_owned(),
            token,
            poll: Duration::from_secs(15),
            stall: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            reconnect_max_delay: Duration::from_secs(30),
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), TradierError> {
        if self.token.is_empty() {
            return Err(TradierError::Settings(
                "no access token: store one in Settings (it is kept in the OS keychain)".into(),
            ));
        }
        if self.account.is_empty() || !self.account.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TradierError::Settings(format!(
                "account {:?} is not a Tradier account number",
                self.account
            )));
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://127.")) {
            return Err(TradierError::Settings(format!(
                "API URL {:?} must be https (plain http only to this machine)",
                self.api_url
            )));
        }
        if self.poll.is_zero() || self.stall.is_zero() {
            return Err(TradierError::Settings(
                "poll and stall times must be above zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let s = TradierSettings::new(Environment::Sandbox, "VA123", Token::new("secret-abc"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("secret-abc"), "{dbg}");
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn bad_settings_say_why() {
        let mut s = TradierSettings::new(Environment::Live, "VA123", Token::new(""));
        assert!(s.validate().unwrap_err().to_string().contains("keychain"));
        s.token = Token::new("t");
        s.account = "VA 1".into();
        assert!(s.validate().unwrap_err().to_string().contains("account"));
        s.account = "VA1".into();
        s.api_url = "http://example.com/v1".into();
        assert!(s.validate().unwrap_err().to_string().contains("https"));
    }
}
