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
