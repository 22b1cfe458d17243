//! Tradeguard desktop shell. This crate holds only app-shell code: command wrappers, typed
//! events, window and tray wiring. Everything that guards money lives in the core crates.

pub mod bindings;
pub mod commands;
pub mod error;
pub mod events;
pub mod state;

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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
