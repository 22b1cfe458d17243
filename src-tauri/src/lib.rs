//! Tradeguard desktop shell. This crate holds only app-shell code: command wrappers, typed
//! events, window and tray wiring. Everything that guards money lives in the core crates.

pub mod acl;
pub mod bindings;
pub mod blotter;
pub mod commands;
pub mod connect;
pub mod desktop;
pub mod detail;
pub mod diagnostics;
pub mod entry;
pub mod error;
pub mod events;
pub mod flatten;
pub mod keyed_venues;
pub mod logging;
pub mod notify;
pub mod offdesk;
pub mod paths;
pub mod records;
pub mod settings;
pub mod shell;
pub mod state;
pub mod storage;
pub mod venue;
pub mod view;
pub mod webview_env;

use std::time::Duration;
use tauri::Manager;
use tauri_specta::Event;

/// Start the desktop app. Returns when the user quits.
pub fn run() {
    // First, while this is the only thread: WebKitGTK reads its set-up from the environment.
    let webview_env = webview_env::apply_before_threads();
    let paths = match paths::AppPaths::from_process() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Tradeguard: {e} ({})", e.code());
            std::process::exit(2);
        }
    };
    let settings = settings::Settings::load(&paths.settings_file());
    let level = settings
        .as_ref()
        .map(|s| s.log_level)
        .unwrap_or_default()
        .as_filter();
    if let Err(e) = paths.create_all() {
        eprintln!("Tradeguard: cannot create its folders: {e}");
    }
    logging::init(&paths.log_dir, level);
    if let Err(e) = &settings {
        tracing::error!(reason = %e.reason, "{}; running on the default settings", e.message);
    }
    tracing::info!(
        data = %paths.data_dir.display(),
        config = %paths.config_dir.display(),
        logs = %paths.log_dir.display(),
        source = %paths.source,
        "locations"
    );
    for s in &webview_env {
        tracing::info!(name = s.name, value = %s.value, why = s.why, "webview environment");
    }
    let builder = bindings::builder();
    let app = tauri::Builder::default()
        // First: a second launch must reach the running instance before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, args, cwd| {
            shell::on_second_launch(app, args, cwd)
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .manage(state::AppState::new())
        .manage(paths)
        .invoke_handler(builder.invoke_handler())
        .on_window_event(shell::on_window_event)
        .setup(move |app| {
            builder.mount_events(app);
            spawn_heartbeat(app.handle().clone());
            open_store(app.handle());
            start_venue(app.handle());
            if let Err(e) = shell::build_tray(app.handle()) {
                // No tray (no status-notifier host): closing still hides the window; a second
                // launch brings it back.
                tracing::warn!(error = %e, "no tray icon");
            }
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

/// The simulated scenario: the demo, or with `TRADEGUARD_SIM_SCENARIO=load:N` the load test of
/// N option positions quoted at 10 Hz (the UI benchmark, `make measure-ui`).
fn sim_scenario(seed: u64) -> tradeguard_sim::Scenario {
    match std::env::var("TRADEGUARD_SIM_SCENARIO") {
        Err(_) => tradeguard_sim::Scenario::demo(seed),
        Ok(v) => match parse_scenario(&v) {
            Some(n) => {
                tracing::warn!(positions = n, "simulator: load-test scenario");
                tradeguard_sim::Scenario::load_test(seed, n)
            }
            None => {
                tracing::warn!(value = %v, "TRADEGUARD_SIM_SCENARIO is not `demo` or `load:N` (N in 2..=5000); using the demo");
                tradeguard_sim::Scenario::demo(seed)
            }
        },
    }
}

/// `load:N` with N in 2..=5000 → `Some(N)`; `demo` and anything else → `None`.
fn parse_scenario(v: &str) -> Option<usize> {
    let n: usize = v.trim().strip_prefix("load:")?.parse().ok()?;
    (2..=5000).contains(&n).then_some(n)
}

/// Opens the database. A failure (locked by another Tradeguard, corrupt, read-only...) is kept
/// and shown in the UI; the app stays up.
fn open_store(app: &tauri::AppHandle) {
    let state = app.state::<state::AppState>();
    // The venue's own database: the demo's never follows the trader to a real account (a bad
    // settings file runs the simulated venue, so it opens the demo's).
    let paths = app.state::<paths::AppPaths>();
    let kind = settings::Settings::load(&paths.settings_file())
        .map(|s| s.venue.kind)
        .unwrap_or_default();
    let store = storage::open(&paths, kind);
    if let Err(e) = &store {
        tracing::error!(reason = %e.reason, "{}", e.message);
    }
    state.set_store(store.map(std::sync::Arc::new));
}

/// Connects to the venue the settings name (the simulated one by default) and starts the guard
/// on it. A failure is kept and shown in the UI; the app stays up. IB connects in the
/// background (the UI shows "connecting" meanwhile); the simulator is ready at once.
fn start_venue(app: &tauri::AppHandle) {
    let state = app.state::<state::AppState>();
    let store = match state.store() {
        Ok(s) => s,
        Err(e) => {
            // No database, no guard: the UI shows why (locked by another Tradeguard, corrupt...).
            state.set_venue(Err(e));
            return;
        }
    };
    let clicked = app.clone();
    let notifier = std::sync::Arc::new(notify::DesktopNotifier {
        on_click: Some(std::sync::Arc::new(move || shell::show_alerts(&clicked))),
    });
    let rules_path = app.state::<paths::AppPaths>().rules_file();
    // A bad settings file never stops the guard: the defaults (the simulated venue) run, and
    // the error is raised as an alert once the guard is up.
    let (venue, bad_settings) =
        match settings::Settings::load(&app.state::<paths::AppPaths>().settings_file()) {
            Ok(s) => (s.venue, None),
            Err(e) => {
                tracing::error!(reason = %e.reason, "{}; guarding the simulated venue", e.message);
                (settings::VenueSettings::default(), Some(e))
            }
        };
    match venue.kind {
        settings::VenueKind::Sim => {
            let scenario = match venue.sim_demo {
                settings::SimDemo::Futures
                    if std::env::var_os("TRADEGUARD_SIM_SCENARIO").is_none() =>
                {
                    tradeguard_sim::Scenario::futures_demo(sim_seed())
                }
                _ => sim_scenario(sim_seed()),
            };
            let started = tauri::async_runtime::block_on(venue::Venue::start_sim(
                scenario, store, rules_path, notifier,
            ));
            venue_started(app, started, bad_settings);
        }
        settings::VenueKind::Tradier | settings::VenueKind::Projectx => {
            start_keyed(app, venue, store, rules_path, notifier, bad_settings);
        }
        settings::VenueKind::Ib => {
            let ib = match venue.ib() {
                Ok(ib) => ib,
                Err(e) => {
                    tracing::error!(reason = %e.reason, "IB settings: {}", e.message);
                    state.set_venue(Err(e));
                    return;
                }
            };
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let address = ib.address();
                tracing::info!(%address, "connecting to IB Gateway/TWS");
                // The gateway often starts after Tradeguard (start at login).
                let started = patiently(&app, address, || {
                    venue::Venue::start_ib(
                        ib.clone(),
                        store.clone(),
                        rules_path.clone(),
                        notifier.clone(),
                        IB_CONNECT_TIMEOUT,
                    )
                })
                .await;
                venue_started(&app, started, bad_settings);
            });
        }
    }
}

/// Runs a venue's start until it succeeds or fails for a reason a person must fix: a start
/// that fails for a reason that passes on its own is tried again with backoff, a countdown on
/// screen and a Retry button.
async fn patiently<F, Fut>(
    app: &tauri::AppHandle,
    address: String,
    attempt: F,
) -> Result<venue::Venue, venue::VenueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<venue::Venue, venue::VenueError>>,
{
    let retry = app.state::<state::AppState>().retry_signal();
    connect::retrying(attempt, &retry, |attempt, e, left| {
        let w = connect::VenueWaiting {
            address: address.clone(),
            attempt,
            next_in_secs: left,
            message: e.to_string(),
            code: e.code().to_owned(),
        };
        app.state::<state::AppState>().set_waiting(Some(w.clone()));
        use tauri_specta::Event;
        if let Err(err) = w.emit(app) {
            tracing::warn!(error = %err, "venue countdown not delivered to the UI");
        }
    })
    .await
}

/// The settings of a venue that logs in with a secret.
#[derive(Clone)]
enum Keyed {
    Tradier(tradeguard_tradier::TradierSettings),
    Projectx(tradeguard_projectx::ProjectxSettings),
}

/// Tradier and ProjectX: the secret from the OS keychain, then the same patient start as IB's.
fn start_keyed(
    app: &tauri::AppHandle,
    venue: settings::VenueSettings,
    store: std::sync::Arc<tradeguard_store::Store>,
    rules_path: std::path::PathBuf,
    notifier: std::sync::Arc<notify::DesktopNotifier>,
    bad_settings: Option<error::IpcError>,
) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<state::AppState>();
        let (kind, who) = match venue.kind {
            settings::VenueKind::Projectx => {
                (keyed_venues::Keyed::Projectx, venue.projectx_user.clone())
            }
            _ => (keyed_venues::Keyed::Tradier, venue.tradier_account.clone()),
        };
        let built = async {
            let secret = keyed_venues::secret(kind, &who).await?;
            Ok::<_, error::IpcError>(match kind {
                keyed_venues::Keyed::Tradier => {
                    let s = venue.tradier(tradeguard_tradier::Token::new(secret))?;
                    (s.api_url.clone(), Keyed::Tradier(s))
                }
                keyed_venues::Keyed::Projectx => {
                    let s = venue.projectx(tradeguard_projectx::ApiKey::new(secret))?;
                    (s.hosts.api.clone(), Keyed::Projectx(s))
                }
            })
        };
        let (address, keyed) = match built.await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(reason = %e.reason, "{}", e.message);
                state.set_venue(Err(e));
                return;
            }
        };
        tracing::info!(%address, ?kind, "connecting");
        let started = patiently(&app, address, || {
            let (store, rules_path, notifier) =
                (store.clone(), rules_path.clone(), notifier.clone());
            let keyed = keyed.clone();
            async move {
                match keyed {
                    Keyed::Tradier(t) => {
                        venue::Venue::start_tradier(
                            t,
                            store,
                            rules_path,
                            notifier,
                            IB_CONNECT_TIMEOUT,
                        )
                        .await
                    }
                    Keyed::Projectx(p) => {
                        venue::Venue::start_projectx(
                            p,
                            store,
                            rules_path,
                            notifier,
                            IB_CONNECT_TIMEOUT,
                        )
                        .await
                    }
                }
            }
        })
        .await;
        venue_started(&app, started, bad_settings);
    });
}

/// How long the start-up connection to IB may take.
const IB_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

fn venue_started(
    app: &tauri::AppHandle,
    started: Result<venue::Venue, venue::VenueError>,
    bad_settings: Option<error::IpcError>,
) {
    let state = app.state::<state::AppState>();
    match started {
        Ok(v) => {
            let v = std::sync::Arc::new(v);
            state.set_venue(Ok(v.clone()));
            if let Some(e) = bad_settings {
                let guard = v.guard().clone();
                tauri::async_runtime::spawn(async move {
                    guard
                        .raise_alert(
                            tradeguard_engine::Severity::Critical,
                            "settings.rejected",
                            format!(
                                "Settings file rejected: {} ({}). Tradeguard runs on the default settings (the simulated venue); fix them in Settings, they apply at the next start.",
                                e.message, e.reason
                            ),
                        )
                        .await;
                });
            }
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

#[cfg(test)]
mod tests {
    #[test]
    fn scenario_variable_accepts_load_n_in_range_only() {
        assert_eq!(super::parse_scenario("load:500"), Some(500));
        assert_eq!(super::parse_scenario(" load:2 "), Some(2));
        assert_eq!(super::parse_scenario("load:1"), None);
        assert_eq!(super::parse_scenario("load:5001"), None);
        assert_eq!(super::parse_scenario("load:many"), None);
        assert_eq!(super::parse_scenario("demo"), None);
    }
}
