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

/// Saves the settings and applies "start at login" now; the log level applies at the next start.
#[tauri::command]
#[specta::specta]
pub fn save_settings(
    app: tauri::AppHandle,
    paths: tauri::State<'_, AppPaths>,
    settings: Settings,
) -> Result<Settings, IpcError> {
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
    let guard = match state.venue() {
        Ok(v) => serde_json::to_string_pretty(&v.guard_view().await).map_err(|e| e.to_string()),
        Err(e) => Err(e.message),
    };
    let now = chrono::Utc::now();
    let text = crate::diagnostics::report(&crate::diagnostics::Inputs {
        paths: &paths,
        version: env!("CARGO_PKG_VERSION"),
        guard,
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
