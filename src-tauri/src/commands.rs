//! `#[tauri::command]` wrappers: each is a thin call into a workspace crate or shell state.

use crate::error::IpcError;
use crate::state::AppState;
use crate::view::{self, AlertView, GuardView, PortfolioView};
use serde::Deserialize;
use serde::Serialize;
use specta::Type;
use std::sync::Arc;
use tradeguard_store::{Store, WriteCmd};

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

/// Retry button while the app waits for IB Gateway/TWS: try again now.
#[tauri::command]
#[specta::specta]
pub fn retry_venue_connect(state: tauri::State<'_, AppState>) -> Result<(), IpcError> {
    tracing::info!("retry requested from the UI");
    state.retry_signal().notify_one();
    Ok(())
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

/// How many alerts the alert views show (newest first).
const ALERT_LIMIT: u32 = 200;

pub(crate) fn recent_alerts(store: &Store) -> Result<Vec<AlertView>, IpcError> {
    Ok(store
        .reader()
        .alerts(false, ALERT_LIMIT)?
        .iter()
        .map(view::alert)
        .collect())
}

/// Reads off the async runtime's worker threads (SQLite reads are blocking).
pub(crate) async fn read<T: Send + 'static>(
    store: Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| {
            IpcError::new(
                crate::error::ErrorCode::Internal,
                "task.join",
                e.to_string(),
            )
        })?
}

/// The newest alerts, acknowledged or not (newest first).
#[tauri::command]
#[specta::specta]
pub async fn alerts(state: tauri::State<'_, AppState>) -> Result<Vec<AlertView>, IpcError> {
    read(state.store()?, recent_alerts).await
}

/// Which alert.
#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct AlertId {
    #[specta(type = specta_typescript::Number)]
    pub id: i64,
}

/// Acknowledges an alert (its banner goes away); returns the updated list.
#[tauri::command]
#[specta::specta]
pub async fn acknowledge_alert(
    app: tauri::AppHandle,
    state: tauri::State<'_, AppState>,
    alert: AlertId,
) -> Result<Vec<AlertView>, IpcError> {
    let store = state.store()?;
    // The venue's clock, as the alert's own time (the simulator runs ahead of the wall); the
    // wall clock only while no venue runs.
    let at_ms = state.venue().map_or_else(
        |_| chrono::Utc::now().timestamp_millis(),
        |v| v.now().millis(),
    );
    store
        .writer()
        .write(WriteCmd::AcknowledgeAlert {
            alert_id: alert.id,
            at_ms,
        })
        .await?;
    tracing::info!(alert = alert.id, "alert acknowledged");
    let list = read(store, recent_alerts).await?;
    crate::events::emit_alerts(&app, &list);
    Ok(list)
}

/// A simulator action: which option and how many contracts.
#[cfg(debug_assertions)]
#[derive(Debug, Clone, Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct ForceAssignment {
    /// Instrument id as in `PositionRow.instrumentId` (OCC symbol).
    pub instrument_id: String,
    pub contracts: u32,
}

/// Simulator only: assign or exercise contracts of an option position now (demo and tests).
/// Debug builds only (see `crate::acl`).
#[cfg(debug_assertions)]
#[tauri::command]
#[specta::specta]
pub fn sim_force_assignment(
    state: tauri::State<'_, AppState>,
    req: ForceAssignment,
) -> Result<(), IpcError> {
    if req.contracts == 0 {
        return Err(IpcError::invalid_input(
            "sim.contracts",
            "contracts must be at least 1",
        ));
    }
    state
        .venue()?
        .force_assignment(&req.instrument_id, i64::from(req.contracts))
        .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))
}

/// Simulator only: moves an underlying's price by `bps` basis points now (to see a stop or a
/// rule act). Debug builds only (see `crate::acl`). Answers the new price.
#[cfg(debug_assertions)]
#[tauri::command]
#[specta::specta]
pub fn sim_move_market(
    state: tauri::State<'_, AppState>,
    symbol: String,
    bps: i32,
) -> Result<String, IpcError> {
    if !(-5_000..=5_000).contains(&bps) || bps == 0 {
        return Err(IpcError::invalid_input(
            "sim.bps",
            "a move of -5000 to 5000 basis points, not 0",
        ));
    }
    state
        .venue()?
        .move_market(symbol.trim(), i64::from(bps))
        .map(|p| p.to_string())
        .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))
}

/// The simulator's actions (forcing an assignment) are offered: debug builds only.
pub const SIM_ACTIONS: bool = cfg!(debug_assertions);

/// Enforcement health: task heartbeats, rules file and dry-run, last reconciliation, protections.
#[tauri::command]
#[specta::specta]
pub async fn guard_status(state: tauri::State<'_, AppState>) -> Result<GuardView, IpcError> {
    Ok(state.venue()?.guard_view().await)
}

/// The trader lifts the lock on opening orders a fired loss limit left (closes are never
/// locked); returns the updated guard view.
#[tauri::command]
#[specta::specta]
pub async fn unlock_trading(state: tauri::State<'_, AppState>) -> Result<GuardView, IpcError> {
    let venue = state.venue()?;
    let changed = venue
        .guard()
        .unlock_trading("the trader (the app's Guard card)")
        .await
        .map_err(crate::flatten::ipc)?;
    tracing::info!(changed, "trading unlocked by the user");
    Ok(venue.guard_view().await)
}

/// Margin use per account since the app started (one sample a second), oldest first.
#[tauri::command]
#[specta::specta]
pub fn margin_history(
    state: tauri::State<'_, AppState>,
) -> Result<Vec<crate::venue::MarginSample>, IpcError> {
    Ok(state.venue()?.margin_history())
}
