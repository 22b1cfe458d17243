//! Tradeguard desktop shell. This crate holds only app-shell code: command wrappers, typed
//! events, window and tray wiring. Everything that guards money lives in the core crates.

pub mod bindings;
pub mod commands;
pub mod error;
pub mod events;
pub mod notify;
pub mod state;
pub mod storage;
pub mod venue;
pub mod view;

use std::time::Duration;
use tauri::Manager;
use tauri_specta::Event;

/// Start the desktop app. Returns when the last window closes.
pub fn run() {
    init_logging();
    let builder = bindings::builder();
    let app = tauri::Builder::default()
        .manage(state::AppState::new())
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            spawn_heartbeat(app.handle().clone());
            open_store(app.handle());
            start_venue(app.handle());
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "Tradeguard started");
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"));
    match app {
        Ok(app) => app.run(|_, _| {}),
        Err(e) => {
            tracing::error!(error = %e, "Tradeguard could not start");
            eprintln!("Tradeguard could not start: {e}");
            std::process::exit(1);
        }
    }
}

fn spawn_heartbeat(handle: tauri::AppHandle) {
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let uptime_secs = handle.state::<state::AppState>().uptime_secs();
            if let Err(e) = (events::BackendHeartbeat { uptime_secs }).emit(&handle) {
                tracing::warn!(error = %e, "heartbeat emit failed");
            }
        }
    });
}

/// Seed of the simulated venue; `TRADEGUARD_SIM_SEED` overrides it to reproduce a run.
fn sim_seed() -> u64 {
    const DEFAULT_SEED: u64 = 7;
    match std::env::var("TRADEGUARD_SIM_SEED") {
        Ok(s) => s.parse().unwrap_or_else(|_| {
            tracing::warn!(value = %s, "TRADEGUARD_SIM_SEED is not a u64; using the default seed");
            DEFAULT_SEED
        }),
        Err(_) => DEFAULT_SEED,
    }
}

/// Opens the database. A failure (locked by another Tradeguard, corrupt, read-only...) is kept
/// and shown in the UI; the app stays up.
fn open_store(app: &tauri::AppHandle) {
    let state = app.state::<state::AppState>();
    let store = storage::data_dir(app).and_then(|dir| {
        tracing::info!(dir = %dir.display(), "data directory");
        storage::open(&dir)
    });
    if let Err(e) = &store {
        tracing::error!(reason = %e.reason, "{}", e.message);
    }
    state.set_store(store.map(std::sync::Arc::new));
}

/// Connects to the simulated venue. A failure is kept and shown in the UI; the app stays up.
fn start_venue(app: &tauri::AppHandle) {
    let seed = sim_seed();
    let state = app.state::<state::AppState>();
    let store = match state.store() {
        Ok(s) => s,
        Err(e) => {
            // No database, no guard: the UI shows why (locked by another Tradeguard, corrupt...).
            state.set_venue(Err(e));
            return;
        }
    };
    let notifier = std::sync::Arc::new(notify::DesktopNotifier);
    let rules_path = match storage::data_dir(app) {
        Ok(dir) => dir.join(storage::RULES_FILE),
        Err(e) => {
            state.set_venue(Err(e));
            return;
        }
    };
    match tauri::async_runtime::block_on(venue::Venue::start_sim(seed, store, rules_path, notifier))
    {
        Ok(v) => {
            let v = std::sync::Arc::new(v);
            state.set_venue(Ok(v.clone()));
            tauri::async_runtime::spawn(v.clone().publish_portfolio(app.clone()));
            tauri::async_runtime::spawn(v.forward_alerts(app.clone()));
        }
        Err(e) => {
            tracing::error!(error = %e, "venue did not start");
            state.set_venue(Err(error::IpcError::new(
                error::ErrorCode::Unavailable,
                e.code(),
                e.to_string(),
            )));
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
