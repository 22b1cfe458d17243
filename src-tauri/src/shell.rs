//! Always-on desktop behaviour: one instance, close-to-tray, the tray menu, quitting on purpose.
//!
//! - A second launch focuses the running window (single-instance plugin) instead of starting a
//!   second guard; the store's lock stays the last line of defence.
//! - Closing the window hides it: the guard keeps running and the tray says so (the first time,
//!   an OS notification says so too).
//! - The tray shows guard status and offers Show, "Flatten all…" and "Quit…". Quitting while
//!   positions are guarded asks the UI to confirm (it lists what stops and what stays at the
//!   broker); only [`quit_now`] ends the process.

use crate::events::{ShellRequest, ShellRequestKind};
use crate::state::AppState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, WindowEvent};
use tauri_specta::Event;

pub const MAIN_WINDOW: &str = "main";
const TRAY_ID: &str = "tradeguard";

/// Set once the user confirmed quitting (or nothing needs guarding): closing no longer hides.
static QUITTING: AtomicBool = AtomicBool::new(false);
/// The "still guarding in the tray" notification is shown once per run.
static TOLD_ABOUT_TRAY: AtomicBool = AtomicBool::new(false);

/// Shows, unminimizes and focuses the main window.
pub fn focus_main(app: &AppHandle) {
    let Some(w) = app.get_webview_window(MAIN_WINDOW) else {
        tracing::warn!("no main window to focus");
        return;
    };
    for (what, r) in [
        ("show", w.show()),
        ("unminimize", w.unminimize()),
        ("focus", w.set_focus()),
    ] {
        if let Err(e) = r {
            tracing::warn!(error = %e, "main window {what} failed");
        }
    }
}

/// The single-instance callback: a second launch lands here (in the first process).
pub fn on_second_launch(app: &AppHandle, args: Vec<String>, _cwd: String) {
    tracing::info!(
        ?args,
        "second launch: focusing the running Tradeguard instead"
    );
    focus_main(app);
}

/// Window events: a close request hides the window unless the user is quitting.
pub fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else {
        return;
    };
    if window.label() != MAIN_WINDOW || QUITTING.load(Ordering::SeqCst) {
        return;
    }
    api.prevent_close();
    if let Err(e) = window.hide() {
        tracing::warn!(error = %e, "hiding the window failed");
    }
    tracing::info!("window closed: hidden to the tray, the guard keeps running");
    if !TOLD_ABOUT_TRAY.swap(true, Ordering::SeqCst) {
        tauri::async_runtime::spawn(async {
            let n = crate::notify::OsNotification {
                title: "Tradeguard is still guarding".to_owned(),
                body: "The window is closed; protection keeps running. Use the tray icon to open it or to quit.".to_owned(),
                critical: false,
            };
            if let Err(e) = crate::notify::send_async(n).await {
                tracing::warn!(code = e.code(), error = %e, "tray notification not delivered");
            }
        });
    }
}

/// A notification was clicked: the window comes forward on the alerts.
pub fn show_alerts(app: &AppHandle) {
    tracing::info!("notification clicked: showing the alerts");
    request(app, ShellRequestKind::ShowAlerts);
}

/// Asks the UI (shown and focused) to do something that needs a person: confirm a quit, preview
/// a flatten.
fn request(app: &AppHandle, kind: ShellRequestKind) {
    focus_main(app);
    if let Err(e) = (ShellRequest { kind }).emit(app) {
        tracing::error!(error = %e, ?kind, "the UI did not get the request");
    }
}

/// Quit from the tray: straight out when nothing is guarded, else the UI asks first.
fn quit_requested(app: &AppHandle) {
    let guarded = app
        .state::<AppState>()
        .venue()
        .map(|v| !v.guard().positions().is_empty())
        .unwrap_or(false);
    if guarded {
        request(app, ShellRequestKind::ConfirmQuit);
    } else {
        tracing::info!("quit from the tray: nothing guarded");
        quit_now(app);
    }
}

/// Stops the guard cleanly and exits. Only called after the user confirmed (or nothing is guarded).
pub fn quit_now(app: &AppHandle) {
    QUITTING.store(true, Ordering::SeqCst);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Ok(v) = app.state::<AppState>().venue() {
            tracing::info!("quitting: stopping the guard");
            v.guard().shutdown().await;
        }
        tracing::info!("Tradeguard quit by the user");
        app.exit(0);
    });
}

/// Builds the tray and keeps its status line current.
pub fn build_tray(app: &AppHandle) -> tauri::Result<()> {
    let status = MenuItem::with_id(app, "status", "Guard: starting…", false, None::<&str>)?;
    let show = MenuItem::with_id(app, "show", "Show Tradeguard", true, None::<&str>)?;
    let flatten = MenuItem::with_id(app, "flatten_all", "Flatten all…", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit…", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&status, &sep, &show, &flatten, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Tradeguard")
        .menu(&menu)
        .on_menu_event(|app, e| match e.id().as_ref() {
            "show" => focus_main(app),
            "flatten_all" => request(app, ShellRequestKind::FlattenAll),
            "quit" => quit_requested(app),
            other => tracing::warn!(item = other, "unknown tray item"),
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let tray = builder.build(app)?;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let line = status_line(&app).await;
            if let Err(e) = status.set_text(&line) {
                tracing::debug!(error = %e, "tray status not updated");
            }
            if let Err(e) = tray.set_tooltip(Some(&format!("Tradeguard — {line}"))) {
                tracing::debug!(error = %e, "tray tooltip not updated");
            }
        }
    });
    Ok(())
}

/// "Guard: enforcing · 4 strategies" / "Guard: DOWN — database locked" ...
async fn status_line(app: &AppHandle) -> String {
    match app.state::<AppState>().venue() {
        Err(e) => format!("Guard: DOWN — {}", e.message),
        Ok(v) => {
            let g = v.guard_view().await;
            let late = g
                .tasks
                .iter()
                .filter(|t| crate::view::task_is_late(t))
                .count();
            let health = if late == 0 {
                "enforcing".to_owned()
            } else {
                format!("{late} task(s) late")
            };
            let window = if QUITTING.load(Ordering::SeqCst) {
                " · quitting"
            } else {
                ""
            };
            format!(
                "Guard: {health} · {} strategies{}{window}",
                v.guard().strategies().len(),
                if g.dry_run { " · DRY-RUN" } else { "" }
            )
        }
    }
}
