//! Where a firm's ProjectX gateway is and how to log in: user name and API key (the key held
//! in memory only; it comes from the OS keychain and is never printed).

use crate::error::ProjectxError;
use std::fmt;
use std::time::Duration;

/// A firm's hosts: the REST API and the two SignalR hubs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// REST base, e.g. `https://api.topstepx.com`.
    pub api: String,
    /// User hub URL, e.g. `https://rtc.topstepx.com/hubs/user`.
    pub user_hub: String,
    /// Market hub URL.
    pub market_hub: String,
}

impl Hosts {
    /// TopstepX (<https://gateway.docs.projectx.com/docs/getting-started/connection-urls>).
    pub fn topstepx() -> Self {
        Self {
            api: "https://api.topstepx.com".into(),
            user_hub: "https://rtc.topstepx.com/hubs/user".into(),
            market_hub: "https://rtc.topstepx.com/hubs/market".into(),
        }
    }

    /// A gateway at `api` with its hubs at `rtc` (another firm, or a fake on this machine).
    pub fn custom(api: &str, rtc: &str) -> Self {
        let rtc = rtc.trim_end_matches('/');
        Self {
            api: api.trim_end_matches('/').into(),
            user_hub: format!("{rtc}/hubs/user"),
            market_hub: format!("{rtc}/hubs/market"),
        }
    }
}

/// An API key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into().trim().to_owned())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
    /// Whether there is one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// How to reach ProjectX.
#[derive(Debug, Clone)]
pub struct ProjectxSettings {
    /// The firm's hosts.
    pub hosts: Hosts,
    /// The user name.
    pub user: String,
    /// The API key.
    pub api_key: ApiKey,
    /// The account: its name (`50KTC-V2-…`) or id.
    pub account: String,
    /// Positions, open orders and fills are read this often even when the hub is quiet.
    pub poll: Duration,
    /// The hub pings every 15 s; this long without any frame and it is re-opened.
    pub stall: Duration,
    /// The session token lives 24 h; it is renewed after this long.
    pub renew_after: Duration,
    /// Bound of one request.
    pub request_timeout: Duration,
}

impl ProjectxSettings {
    /// Settings with the defaults.
    pub fn new(hosts: Hosts, user: &str, api_key: ApiKey, account: &str) -> Self {
        Self {
            hosts,
            user: user.trim().into(),
            api_key,
            account: account.trim().into(),
            poll: Duration::from_secs(10),
            stall: Duration::from_secs(45),
            renew_after: Duration::from_secs(20 * 3600),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ProjectxError> {
        if self.api_key.is_empty() {
            return Err(ProjectxError::Settings(
                "no API key: store one with `tradeguard secret projectx` (kept in the OS keychain)"
                    .into(),
            ));
        }
        if self.user.is_empty() || self.account.is_empty() {
            return Err(ProjectxError::Settings(
                "the user name and the account are required".into(),
            ));
        }
        for u in [
            &self.hosts.api,
            &self.hosts.user_hub,
            &self.hosts.market_hub,
        ] {
            if !(u.starts_with("https://") || u.starts_with("http://127.")) {
                return Err(ProjectxError::Settings(format!(
                    "{u:?} must be https (plain http only to this machine)"
                )));
            }
        }
        Ok(())
    }
}
