//! `#[tauri::command]` wrappers: each is a thin call into a workspace crate or shell state.

use crate::error::IpcError;
use crate::state::AppState;
use crate::view::PortfolioView;
use serde::Serialize;
use specta::Type;

/// What the first screen shows: who we are and that the backend is alive.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub app_name: String,
    pub version: String,
    /// Seconds since the backend started (fractional).
    pub uptime_secs: f64,
    /// How many status requests the backend has answered, this one included.
    pub requests_served: u32,
}

/// Live status round trip: the UI calls this and renders the answer.
#[tauri::command]
#[specta::specta]
pub fn app_status(state: tauri::State<'_, AppState>) -> Result<AppStatus, IpcError> {
    Ok(state.status())
}

/// The live portfolio: accounts, positions with marks, quote ages and P&L.
#[tauri::command]
#[specta::specta]
pub fn portfolio(state: tauri::State<'_, AppState>) -> Result<PortfolioView, IpcError> {
    Ok(state.venue()?.portfolio())
}
