//! The Tradier venue's commands: its access token into the OS keychain (never into
//! `settings.toml`, never back to the UI), whether one is stored, and a connection test.

use crate::error::{ErrorCode, IpcError};
use crate::settings::{TradierEnv, VenueSettings};

/// The keychain's venue name.
const VENUE: &str = "tradier";

fn keychain_error(e: &tradeguard_notify::NotifyError) -> IpcError {
    IpcError::new(ErrorCode::Unavailable, e.code(), e.to_string())
}

fn account_of(account: &str) -> Result<String, IpcError> {
    let a = account.trim();
    if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(IpcError::invalid_input(
            "tradier.settings",
            format!("{a:?} is not a Tradier account number"),
        ));
    }
    Ok(a.to_owned())
}

/// The stored token of `account`, read off the async runtime (D-Bus can block).
pub async fn token(account: &str) -> Result<tradeguard_tradier::Token, IpcError> {
    let account = account_of(account)?;
    let acct = account.clone();
    let found = tokio::task::spawn_blocking(move || tradeguard_notify::venue_secret(VENUE, &acct))
        .await
        .map_err(|e| IpcError::new(ErrorCode::Internal, "tradier.keychain", e.to_string()))?
        .map_err(|e| keychain_error(&e))?;
    match found {
        Some(t) => Ok(tradeguard_tradier::Token::new(t)),
        None => Err(IpcError::new(
            ErrorCode::Unavailable,
            "tradier.no_token",
            format!(
                "no Tradier access token stored for {account}: enter it in Settings → Venue (it is kept in the OS keychain)"
            ),
        )),
    }
}

/// Stores the access token of `account` in the OS keychain. It applies at the next start.
#[tauri::command]
#[specta::specta]
pub async fn save_tradier_token(account: String, token: String) -> Result<(), IpcError> {
    let account = account_of(&account)?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(IpcError::invalid_input(
            "tradier.no_token",
            "the token is empty; nothing stored",
        ));
    }
    let acct = account.clone();
    tokio::task::spawn_blocking(move || tradeguard_notify::set_venue_secret(VENUE, &acct, &token))
        .await
        .map_err(|e| IpcError::new(ErrorCode::Internal, "tradier.keychain", e.to_string()))?
        .map_err(|e| keychain_error(&e))?;
    tracing::info!(%account, "Tradier token stored in the OS keychain");
    Ok(())
}

/// Whether a token is stored for `account` (the token itself never leaves the backend).
#[tauri::command]
#[specta::specta]
pub async fn tradier_token_stored(account: String) -> Result<bool, IpcError> {
    match token(&account).await {
        Ok(_) => Ok(true),
        Err(e) if e.reason == "tradier.no_token" => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a Tradier connection test found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct TradierTest {
    /// The API tried.
    pub api_url: String,
    /// The account the guard would use.
    pub account: String,
    /// Every account the token may use.
    pub accounts: Vec<String>,
    /// Milliseconds to the answer.
    #[specta(type = specta_typescript::Number)]
    pub millis: u64,
    /// The live environment: real money.
    pub live: bool,
}

/// Reads the profile with the stored token: the token works, the account is one of its own.
/// Nothing is saved, nothing is subscribed.
#[tauri::command]
#[specta::specta]
pub async fn test_tradier_connection(venue: VenueSettings) -> Result<TradierTest, IpcError> {
    let settings = venue.tradier(token(&venue.tradier_account).await?)?;
    test(settings, venue.tradier_env == TradierEnv::Live).await
}

pub async fn test(
    settings: tradeguard_tradier::TradierSettings,
    live: bool,
) -> Result<TradierTest, IpcError> {
    let api_url = settings.api_url.clone();
    let account = settings.account.clone();
    let clock: std::sync::Arc<dyn tradeguard_model::Clock> =
        std::sync::Arc::new(tradeguard_model::SystemClock);
    let b = tradeguard_tradier::TradierBroker::new(settings, clock)
        .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
    let started = std::time::Instant::now();
    match tokio::time::timeout(crate::desktop::CONNECTION_TEST_TIMEOUT, b.test_connection()).await {
        Ok(Ok(accounts)) => Ok(TradierTest {
            api_url,
            account,
            accounts,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            live,
        }),
        Ok(Err(e)) => Err(IpcError::new(
            ErrorCode::Unavailable,
            e.code(),
            format!("{api_url}: {e}"),
        )),
        Err(_) => Err(IpcError::new(
            ErrorCode::Unavailable,
            "tradier.test_timeout",
            format!(
                "{api_url}: no answer within {} s",
                crate::desktop::CONNECTION_TEST_TIMEOUT.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_tradier::fake::{FakeTradier, FakeTradierConfig};
    use tradeguard_tradier::{Token, TradierSettings};

    #[tokio::test]
    async fn the_test_lists_the_tokens_accounts_and_names_a_wrong_token() {
        let f = FakeTradier::start(FakeTradierConfig::default())
            .await
            .unwrap();
        let ok = TradierSettings::at(f.api_url(), f.account(), Token::new(f.token()));
        let t = test(ok, false).await.unwrap();
        assert_eq!(t.accounts, vec![f.account().to_owned()]);
        let bad = TradierSettings::at(f.api_url(), f.account(), Token::new("nope"));
        let e = test(bad, false).await.unwrap_err();
        assert_eq!(e.reason, "tradier.unauthorized");
        let other = TradierSettings::at(f.api_url(), "VA999", Token::new(f.token()));
        let e = test(other, false).await.unwrap_err();
        assert_eq!(e.reason, "tradier.unknown_account");
        assert!(e.message.contains(f.account()), "{}", e.message);
    }

    #[test]
    fn settings_without_a_token_are_checked_and_the_token_never_saved() {
        let v = VenueSettings {
            kind: crate::settings::VenueKind::Tradier,
            tradier_account: "VA12345".into(),
            ..VenueSettings::default()
        };
        v.check_tradier().unwrap();
        let text = toml::to_string(&crate::settings::Settings {
            venue: v.clone(),
            ..crate::settings::Settings::default()
        })
        .unwrap();
        assert!(!text.to_lowercase().contains("token"), "{text}");
        let bad = VenueSettings {
            tradier_account: "VA 1".into(),
            ..v
        };
        assert_eq!(bad.check_tradier().unwrap_err().reason, "tradier.settings");
    }
}
