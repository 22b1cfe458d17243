//! Typed events pushed from the backend to the UI (names and payloads exported by tauri-specta).

use serde::{Deserialize, Serialize};
use specta::Type;

/// Emitted once a second so the UI can show that the backend is alive without polling.
#[derive(Debug, Clone, Serialize, Deserialize, Type, tauri_specta::Event)]
#[serde(rename_all = "camelCase")]
pub struct BackendHeartbeat {
    pub uptime_secs: f64,
}

/// The live portfolio changed (throttled; see `venue::EMIT_INTERVAL`).
#[derive(Debug, Clone, Serialize, Type, tauri_specta::Event)]
pub struct PortfolioChanged(pub crate::view::PortfolioView);

/// The strategies changed (sent with [`PortfolioChanged`], same throttle).
#[derive(Debug, Clone, Serialize, Type, tauri_specta::Event)]
pub struct StrategiesChanged(pub Vec<crate::flatten::StrategyRow>);

/// The alert list changed (raised or acknowledged): the newest alerts, newest first.
#[derive(Debug, Clone, Serialize, Type, tauri_specta::Event)]
pub struct AlertsChanged(pub Vec<crate::view::AlertView>);

/// Pushes the alert list to the UI; a failure is logged (the UI also polls on focus).
pub fn emit_alerts(app: &tauri::AppHandle, list: &[crate::view::AlertView]) {
    use tauri_specta::Event;
    if let Err(e) = AlertsChanged(list.to_vec()).emit(app) {
        tracing::warn!(error = %e, "alert update not delivered to the UI");
    }
}

/// What the shell (tray menu) asks the UI to do with a person's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub enum ShellRequestKind {
    /// "Quit…" while positions are guarded: show what stops and what stays, then confirm.
    ConfirmQuit,
    /// "Flatten all…": open the flatten-all preview.
    FlattenAll,
    /// A notification was clicked: show the alerts.
    ShowAlerts,
}

/// Emitted by the tray after it has shown and focused the window.
#[derive(Debug, Clone, Serialize, Deserialize, Type, tauri_specta::Event)]
#[serde(rename_all = "camelCase")]
pub struct ShellRequest {
    pub kind: ShellRequestKind,
}
