//! The venues that log in with a secret (Tradier's access token, ProjectX's API key): the
//! secret into the OS keychain (never into `settings.toml`, never back to the UI), whether one
//! is stored, and a connection test each.

use crate::error::{ErrorCode, IpcError};
use crate::settings::{TradierEnv, VenueSettings};

/// A venue that logs in with a secret kept in the keychain under `venues/<name>/<who>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    /// Tradier: the access token of an account.
    Tradier,
    /// ProjectX: the API key of a user.
    Projectx,
}

impl Keyed {
    fn name(self) -> &'static str {
        match self {
            Self::Tradier => "tradier",
            Self::Projectx => "projectx",
        }
    }

    fn secret(self) -> &'static str {
        match self {
            Self::Tradier => "access token",
            Self::Projectx => "API key",
        }
    }

    /// Whose secret: a Tradier account number, or a ProjectX user name.
    fn who(self, s: &str) -> Result<String, IpcError> {
        let s = s.trim();
        let ok =
            |c: char| c.is_ascii_alphanumeric() || (self == Self::Projectx && "-_.@".contains(c));
        if s.is_empty() || !s.chars().all(ok) {
            let what = match self {
                Self::Tradier => "a Tradier account number",
                Self::Projectx => "a ProjectX user name",
            };
            return Err(IpcError::invalid_input(
                &format!("{}.settings", self.name()),
                format!("{s:?} is not {what}"),
            ));
        }
        Ok(s.to_owned())
    }
}

fn keychain_error(e: &tradeguard_notify::NotifyError) -> IpcError {
    IpcError::new(ErrorCode::Unavailable, e.code(), e.to_string())
}

fn joined(e: tokio::task::JoinError) -> IpcError {
    IpcError::new(ErrorCode::Internal, "venue.keychain", e.to_string())
}

/// The stored secret, read off the async runtime (D-Bus can block).
pub async fn secret(venue: Keyed, who: &str) -> Result<String, IpcError> {
    let who = venue.who(who)?;
    let w = who.clone();
    let found =
        tokio::task::spawn_blocking(move || tradeguard_notify::venue_secret(venue.name(), &w))
            .await
            .map_err(joined)?
            .map_err(|e| keychain_error(&e))?;
    found.ok_or_else(|| {
        IpcError::new(
            ErrorCode::Unavailable,
            &format!("{}.no_secret", venue.name()),
            format!(
                "no {} stored for {who}: enter it in Settings → Venue (it is kept in the OS keychain)",
                venue.secret()
            ),
        )
    })
}

async fn store(venue: Keyed, who: &str, secret: &str) -> Result<(), IpcError> {
    let who = venue.who(who)?;
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(IpcError::invalid_input(
            &format!("{}.no_secret", venue.name()),
            format!("the {} is empty; nothing stored", venue.secret()),
        ));
    }
    let w = who.clone();
    tokio::task::spawn_blocking(move || {
        tradeguard_notify::set_venue_secret(venue.name(), &w, &secret)
    })
    .await
    .map_err(joined)?
    .map_err(|e| keychain_error(&e))?;
    tracing::info!(venue = venue.name(), %who, "secret stored in the OS keychain");
    Ok(())
}

async fn stored(venue: Keyed, who: &str) -> Result<bool, IpcError> {
    match secret(venue, who).await {
        Ok(_) => Ok(true),
        Err(e) if e.reason.ends_with(".no_secret") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores the Tradier access token of `account` in the OS keychain (applies at the next start).
#[tauri::command]
#[specta::specta]
pub async fn save_tradier_token(account: String, token: String) -> Result<(), IpcError> {
    store(Keyed::Tradier, &account, &token).await
}

/// Whether a Tradier token is stored for `account` (the token never leaves the backend).
#[tauri::command]
#[specta::specta]
pub async fn tradier_token_stored(account: String) -> Result<bool, IpcError> {
    stored(Keyed::Tradier, &account).await
}

/// Stores the ProjectX API key of `user` in the OS keychain (applies at the next start).
#[tauri::command]
#[specta::specta]
pub async fn save_projectx_key(user: String, key: String) -> Result<(), IpcError> {
    store(Keyed::Projectx, &user, &key).await
}

/// Whether a ProjectX API key is stored for `user`.
#[tauri::command]
#[specta::specta]
pub async fn projectx_key_stored(user: String) -> Result<bool, IpcError> {
    stored(Keyed::Projectx, &user).await
}

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct VenueTest {
    /// The API tried.
    pub api_url: String,
    /// The account the guard would use.
    pub account: String,
    /// Every account the login may use (ProjectX: `name (locked)` for one the firm locked).
    pub accounts: Vec<String>,
    /// Milliseconds to the answer.
    #[specta(type = specta_typescript::Number)]
    pub millis: u64,
    /// Real money.
    pub live: bool,
}

fn failed(api: &str, code: &str, e: impl std::fmt::Display) -> IpcError {
    IpcError::new(ErrorCode::Unavailable, code, format!("{api}: {e}"))
}

/// Runs a connection test within the settings screen's time limit.
async fn timed<T, E: std::fmt::Display>(
    api: &str,
    venue: &str,
    code: impl Fn(&E) -> &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(T, u64), IpcError> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(crate::desktop::CONNECTION_TEST_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok((
            v,
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        )),
        Ok(Err(e)) => Err(failed(api, code(&e), e)),
        Err(_) => Err(failed(
            api,
            &format!("{venue}.test_timeout"),
            format!(
                "no answer within {} s",
                crate::desktop::CONNECTION_TEST_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Reads the token's accounts with the stored token. Nothing is saved or subscribed.
#[tauri::command]
#[specta::specta]
pub async fn test_tradier_connection(venue: VenueSettings) -> Result<VenueTest, IpcError> {
    let token =
        tradeguard_tradier::Token::new(secret(Keyed::Tradier, &venue.tradier_account).await?);
    test_tradier(venue.tradier(token)?, venue.tradier_env == TradierEnv::Live).await
}

pub async fn test_tradier(
    settings: tradeguard_tradier::TradierSettings,
    live: bool,
) -> Result<VenueTest, IpcError> {
    let api_url = settings.api_url.clone();
    let account = settings.account.clone();
    let b = tradeguard_tradier::TradierBroker::new(
        settings,
        std::sync::Arc::new(tradeguard_model::SystemClock),
    )
    .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
    let (accounts, millis) = timed(
        &api_url,
        "tradier",
        tradeguard_tradier::TradierError::code,
        b.test_connection(),
    )
    .await?;
    Ok(VenueTest {
        api_url,
        account,
        accounts,
        millis,
        live,
    })
}

/// Logs in with the stored API key and lists the user's accounts. Nothing is saved.
#[tauri::command]
#[specta::specta]
pub async fn test_projectx_connection(venue: VenueSettings) -> Result<VenueTest, IpcError> {
    let key =
        tradeguard_projectx::ApiKey::new(secret(Keyed::Projectx, &venue.projectx_user).await?);
    test_projectx(venue.projectx(key)?).await
}

pub async fn test_projectx(
    settings: tradeguard_projectx::ProjectxSettings,
) -> Result<VenueTest, IpcError> {
    let api_url = settings.hosts.api.clone();
    let account = settings.account.clone();
    let b = tradeguard_projectx::ProjectxBroker::new(
        settings,
        std::sync::Arc::new(tradeguard_model::SystemClock),
    )
    .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))?;
    let (accounts, millis) = timed(
        &api_url,
        "projectx",
        tradeguard_projectx::ProjectxError::code,
        b.test_connection(),
    )
    .await?;
    Ok(VenueTest {
        api_url,
        account,
        accounts: accounts
            .into_iter()
            .map(|(name, can)| {
                if can {
                    name
                } else {
                    format!("{name} (locked by the firm)")
                }
            })
            .collect(),
        millis,
        // Prop-firm accounts trade the firm's money; the guard's orders are real orders.
        live: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_projectx::fake::{FakeProjectx, FakeProjectxConfig};
    use tradeguard_tradier::fake::{FakeTradier, FakeTradierConfig};
    use tradeguard_tradier::{Token, TradierSettings};

    #[tokio::test]
    async fn the_tradier_test_lists_the_tokens_accounts_and_names_a_wrong_token() {
        let f = FakeTradier::start(FakeTradierConfig::default())
            .await
            .unwrap();
        let ok = TradierSettings::at(f.api_url(), f.account(), Token::new(f.token()));
        let t = test_tradier(ok, false).await.unwrap();
        assert_eq!(t.accounts, vec![f.account().to_owned()]);
        let bad = TradierSettings::at(f.api_url(), f.account(), Token::new("nope"));
        let e = test_tradier(bad, false).await.unwrap_err();
        assert_eq!(e.reason, "tradier.unauthorized");
        let other = TradierSettings::at(f.api_url(), "VA999", Token::new(f.token()));
        let e = test_tradier(other, false).await.unwrap_err();
        assert_eq!(e.reason, "tradier.unknown_account");
        assert!(e.message.contains(f.account()), "{}", e.message);
    }

    #[tokio::test]
    async fn the_projectx_test_logs_in_and_names_a_wrong_key_or_account() {
        let f = FakeProjectx::start(FakeProjectxConfig::default())
            .await
            .unwrap();
        let c = f.config().clone();
        let v = VenueSettings {
            kind: crate::settings::VenueKind::Projectx,
            projectx_user: c.user.clone(),
            projectx_account: c.account.clone(),
            projectx_api: f.url(),
            ..VenueSettings::default()
        };
        let t = test_projectx(
            v.projectx(tradeguard_projectx::ApiKey::new(c.api_key.clone()))
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(t.accounts, vec![c.account.clone()]);
        let e = test_projectx(
            v.projectx(tradeguard_projectx::ApiKey::new("nope"))
                .unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.reason, "projectx.unauthorized");
        let other = VenueSettings {
            projectx_account: "OTHER".into(),
            ..v
        };
        let e = test_projectx(
            other
                .projectx(tradeguard_projectx::ApiKey::new(c.api_key))
                .unwrap(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.reason, "projectx.unknown_account");
    }

    #[test]
    fn venue_settings_are_checked_without_their_secret_and_never_hold_it() {
        let v = VenueSettings {
            kind: crate::settings::VenueKind::Tradier,
            tradier_account: "VA12345".into(),
            projectx_user: "trader".into(),
            projectx_account: "50KTC-V2-1".into(),
            ..VenueSettings::default()
        };
        v.check_tradier().unwrap();
        v.check_projectx().unwrap();
        let text = toml::to_string(&crate::settings::Settings {
            venue: v.clone(),
            ..crate::settings::Settings::default()
        })
        .unwrap();
        assert!(!text.to_lowercase().contains("token"), "{text}");
        assert!(!text.to_lowercase().contains("apikey"), "{text}");
        let bad = VenueSettings {
            tradier_account: "VA 1".into(),
            ..v.clone()
        };
        assert_eq!(bad.check_tradier().unwrap_err().reason, "tradier.settings");
        let bad = VenueSettings {
            projectx_api: "http://example.com".into(),
            ..v
        };
        assert_eq!(
            bad.check_projectx().unwrap_err().reason,
            "projectx.settings"
        );
    }
}
