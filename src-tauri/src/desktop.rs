//! Commands for the app itself rather than the guard: where files live, settings, logs,
//! diagnostics, start at login, quitting.

use crate::error::{ErrorCode, IpcError};
use crate::paths::AppPaths;
use crate::settings::Settings;
use crate::state::AppState;
use tauri_plugin_autostart::ManagerExt;

/// Where this run keeps its data, config and logs (and what chose them).
#[tauri::command]
#[specta::specta]
pub fn locations(paths: tauri::State<'_, AppPaths>) -> AppPaths {
    paths.inner().clone()
}

/// The settings as saved, with "start at login" as the system has it now.
#[tauri::command]
#[specta::specta]
pub fn settings(
    app: tauri::AppHandle,
    paths: tauri::State<'_, AppPaths>,
) -> Result<Settings, IpcError> {
    let mut s = Settings::load(&paths.settings_file())?;
    match app.autolaunch().is_enabled() {
        Ok(on) => s.start_at_login = on,
        Err(e) => tracing::warn!(error = %e, "cannot tell whether start at login is on"),
    }
    Ok(s)
}

/// Saves the settings and applies "start at login" now; the log level and the venue apply at
/// the next start. IB settings that do not validate are refused before anything is written.
#[tauri::command]
#[specta::specta]
pub fn save_settings(
    app: tauri::AppHandle,
    paths: tauri::State<'_, AppPaths>,
    settings: Settings,
) -> Result<Settings, IpcError> {
    match settings.venue.kind {
        crate::settings::VenueKind::Ib => {
            settings.venue.ib()?;
        }
        crate::settings::VenueKind::Tradier => settings.venue.check_tradier()?,
        crate::settings::VenueKind::Projectx => settings.venue.check_projectx()?,
        crate::settings::VenueKind::Sim => {}
    }
    let autostart = app.autolaunch();
    let applied = if settings.start_at_login {
        autostart.enable()
    } else {
        autostart.disable()
    };
    // Disabling what was never enabled is not an error worth refusing the save for.
    if let Err(e) = applied
        && (settings.start_at_login || autostart.is_enabled().unwrap_or(true))
    {
        return Err(IpcError::new(
            ErrorCode::Unavailable,
            "settings.start_at_login",
            format!("could not change start at login: {e}"),
        ));
    }
    settings.save(&paths.settings_file())?;
    tracing::info!(?settings, "settings saved");
    Ok(settings)
}

/// Opens the log folder in the file manager.
#[tauri::command]
#[specta::specta]
pub fn open_logs_folder(paths: tauri::State<'_, AppPaths>) -> Result<(), IpcError> {
    let dir = &paths.log_dir;
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(dir)
        .spawn()
        .map(|_| ())
        .map_err(|e| {
            IpcError::new(
                ErrorCode::Unavailable,
                "logs.open",
                format!("could not open {} with {opener}: {e}", dir.display()),
            )
        })
}

/// Writes a diagnostics file for a bug report; returns its path.
#[tauri::command]
#[specta::specta]
pub async fn export_diagnostics(
    paths: tauri::State<'_, AppPaths>,
    state: tauri::State<'_, AppState>,
) -> Result<String, IpcError> {
    let (guard, mut accounts) = match state.venue() {
        Ok(v) => (Ok(v.guard_view().await), v.known_accounts()),
        Err(e) => (Err(e), Vec::new()),
    };
    // The database's accounts are redacted too; its recent alerts give their codes.
    let stored = match state.store() {
        Ok(store) => {
            crate::commands::read(store, |s| {
                Ok((
                    s.reader().accounts().map_err(IpcError::from),
                    crate::commands::recent_alerts(s),
                ))
            })
            .await
        }
        Err(e) => Err(e),
    };
    let alerts = match stored {
        Ok((known, alerts)) => {
            match known {
                Ok(list) => accounts.extend(list.into_iter().map(|a| a.account_id)),
                // The export still replaces IB-shaped ids and the venue's accounts.
                Err(e) => {
                    tracing::warn!(reason = %e.reason, "diagnostics: stored accounts not readable: {}", e.message)
                }
            }
            alerts
        }
        Err(e) => Err(e),
    };
    let now = chrono::Utc::now();
    let text = crate::diagnostics::report(&crate::diagnostics::Inputs {
        paths: &paths,
        version: env!("CARGO_PKG_VERSION"),
        guard,
        alerts,
        accounts,
        home: dirs::home_dir(),
        now: &now.to_rfc3339(),
    });
    let path = crate::diagnostics::write(
        &paths.data_dir,
        &now.format("%Y%m%dT%H%M%SZ").to_string(),
        &text,
    )
    .map_err(|e| {
        IpcError::new(
            ErrorCode::Storage,
            "diagnostics.write",
            format!(
                "could not write the diagnostics file in {}: {e}",
                paths.data_dir.display()
            ),
        )
    })?;
    tracing::info!(path = %path.display(), "diagnostics exported");
    Ok(path.display().to_string())
}

/// Quits after the user confirmed: stops the guard, then the app.
#[tauri::command]
#[specta::specta]
pub fn quit_app(app: tauri::AppHandle) {
    crate::shell::quit_now(&app);
}

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTest {
    /// `host:port` tried.
    pub address: String,
    /// The account the guard would use (settings, else the first managed account).
    pub account: String,
    /// Milliseconds from the first byte to a usable session.
    #[specta(type = specta_typescript::Number)]
    pub millis: u64,
    /// The port is one of IB's live-trading defaults (4001, 7496): real money.
    pub live_port: bool,
}

/// The connection test's client id is the configured one plus this.
pub const TEST_CLIENT_ID_OFFSET: i32 = 900;

/// How long a connection test may take before it is reported as a time-out.
pub const CONNECTION_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Connects to IB Gateway/TWS with `venue`'s settings (on a client id of its own, so the running
/// guard is not disturbed), reports the account, and disconnects. Nothing is saved.
#[tauri::command]
#[specta::specta]
pub async fn test_ib_connection(
    venue: crate::settings::VenueSettings,
) -> Result<ConnectionTest, IpcError> {
    test_ib(&venue, CONNECTION_TEST_TIMEOUT).await
}

pub async fn test_ib(
    venue: &crate::settings::VenueSettings,
    timeout: std::time::Duration,
) -> Result<ConnectionTest, IpcError> {
    let mut settings = venue.ib()?;
    // The test must not take the guard's client id (IB refuses a second session on it) nor the
    // CLI's (2 by convention): it uses the configured id + 900.
    settings.client_id = (settings.client_id.saturating_add(TEST_CLIENT_ID_OFFSET)) % 1_000_000_000;
    settings.reconnect_max_delay = std::time::Duration::from_secs(1);
    let address = settings.address();
    let live_port = settings.is_live_port();
    let clock: std::sync::Arc<dyn tradeguard_model::Clock> =
        std::sync::Arc::new(tradeguard_model::SystemClock);
    let ib = tradeguard_ibkr::IbBroker::new(settings, clock);
    let started = std::time::Instant::now();
    tracing::info!(%address, "testing the IB connection");
    let outcome = tokio::time::timeout(timeout, ib.connect_ib()).await;
    let account = ib.account_id();
    ib.disconnect_ib().await;
    match outcome {
        Ok(Ok(())) => {
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(%address, %account, millis, "IB connection test passed");
            Ok(ConnectionTest {
                address,
                account,
                millis,
                live_port,
            })
        }
        Ok(Err(e)) => {
            tracing::warn!(%address, error = %e, "IB connection test failed");
            Err(IpcError::new(
                ErrorCode::Unavailable,
                e.code(),
                format!("{address}: {e}"),
            ))
        }
        Err(_) => {
            tracing::warn!(%address, "IB connection test timed out");
            Err(IpcError::new(
                ErrorCode::Unavailable,
                "ib.test_timeout",
                format!(
                    "{address}: no usable session within {} s (is IB Gateway/TWS running with the API enabled on this port?)",
                    timeout.as_secs()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{VenueKind, VenueSettings};
    use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig};

    fn venue(port: u16) -> VenueSettings {
        VenueSettings {
            kind: VenueKind::Ib,
            ib_port: port,
            ..VenueSettings::default()
        }
    }

    #[tokio::test]
    async fn connection_test_reports_the_account_of_a_running_gateway() {
        let tws = FakeTws::start(FakeTwsConfig {
            accounts: vec!["DU777".into()],
            ..FakeTwsConfig::default()
        })
        .await
        .unwrap();
        let t = test_ib(&venue(tws.port()), CONNECTION_TEST_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(t.account, "DU777");
        assert_eq!(t.address, format!("127.0.0.1:{}", tws.port()));
        assert!(!t.live_port);
    }

    #[tokio::test]
    async fn connection_test_names_what_failed() {
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = test_ib(&venue(port), CONNECTION_TEST_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.reason.starts_with("ib."), "{e:?}");
        assert!(e.message.contains(&port.to_string()), "{e:?}");
        // An old gateway is refused with the adapter's reason.
        let old = FakeTws::start(FakeTwsConfig {
            server_version: 200,
            ..FakeTwsConfig::default()
        })
        .await
        .unwrap();
        let e = test_ib(&venue(old.port()), CONNECTION_TEST_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.reason.starts_with("ib."), "{e:?}");
        // Bad input never reaches the network.
        let e = test_ib(&venue(0), CONNECTION_TEST_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e.reason, "ib.settings.bad_port");
    }
}
