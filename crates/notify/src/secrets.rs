//! Channel secrets (SMTP password, webhook URL, bot token): in the OS keychain — the Secret
//! Service on Linux (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on
//! Windows — under service [`SERVICE`] and account `alerts/<channel>`. Never in a file, a log
//! line or a diagnostics bundle: nothing here implements `Display` for a secret, and errors
//! name the channel, not the value.

use crate::error::NotifyError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The keychain service name of every Tradeguard secret.
pub const SERVICE: &str = "tradeguard";

/// Where secrets are kept. Calls may block (D-Bus): the relay calls them off its task.
pub trait SecretStore: Send + Sync {
    /// The secret of `channel`, `None` when there is none.
    fn get(&self, channel: &str) -> Result<Option<String>, NotifyError>;
    /// Stores (or replaces) the secret of `channel`.
    fn set(&self, channel: &str, secret: &str) -> Result<(), NotifyError>;
    /// Removes the secret of `channel` (no error when there was none).
    fn delete(&self, channel: &str) -> Result<(), NotifyError>;
}

fn account(channel: &str) -> String {
    format!("alerts/{channel}")
}

/// The OS keychain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keychain;

fn entry(channel: &str) -> Result<keyring::Entry, NotifyError> {
    keyring::Entry::new(SERVICE, &account(channel))
        .map_err(|e| NotifyError::Keychain(e.to_string()))
}

impl SecretStore for Keychain {
    fn get(&self, channel: &str) -> Result<Option<String>, NotifyError> {
        match entry(channel)?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(NotifyError::Keychain(e.to_string())),
        }
    }

    fn set(&self, channel: &str, secret: &str) -> Result<(), NotifyError> {
        entry(channel)?
            .set_password(secret)
            .map_err(|e| NotifyError::Keychain(e.to_string()))
    }

    fn delete(&self, channel: &str) -> Result<(), NotifyError> {
        match entry(channel)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(NotifyError::Keychain(e.to_string())),
        }
    }
}

/// A venue's secret (the Tradier access token, a ProjectX API key): the keychain account
/// `venues/<venue>/<account>`, beside the channels' `alerts/<channel>`.
pub fn venue_key(venue: &str, account: &str) -> String {
    format!("venues/{venue}/{account}")
}

/// The venue secret kept for `venue` and `account` in the OS keychain (`None`: none stored).
pub fn venue_secret(venue: &str, account: &str) -> Result<Option<String>, NotifyError> {
    let e = keyring::Entry::new(SERVICE, &venue_key(venue, account))
        .map_err(|e| NotifyError::Keychain(e.to_string()))?;
    match e.get_password() {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(NotifyError::Keychain(e.to_string())),
    }
}

/// Stores the venue secret of `venue` and `account` in the OS keychain.
pub fn set_venue_secret(venue: &str, account: &str, secret: &str) -> Result<(), NotifyError> {
    keyring::Entry::new(SERVICE, &venue_key(venue, account))
        .and_then(|e| e.set_password(secret))
        .map_err(|e| NotifyError::Keychain(e.to_string()))
}

/// Secrets in memory (tests; a keychain-less run that was told so); clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemorySecrets(Arc<Mutex<BTreeMap<String, String>>>);

impl MemorySecrets {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemorySecrets {
    fn get(&self, channel: &str) -> Result<Option<String>, NotifyError> {
        Ok(self.map().get(channel).cloned())
    }

    fn set(&self, channel: &str, secret: &str) -> Result<(), NotifyError> {
        self.map().insert(channel.to_owned(), secret.to_owned());
        Ok(())
    }

    fn delete(&self, channel: &str) -> Result<(), NotifyError> {
        self.map().remove(channel);
        Ok(())
    }
}
