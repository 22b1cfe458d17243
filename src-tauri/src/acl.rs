//! The app's ACL manifest: the commands the main window may call. `build.rs` generates one
//! `allow-<command>` permission per command (Tauri's app manifest: with it, a command no
//! capability grants is refused), and `capabilities/` grants them to the main window:
//! `default.json` the app's own commands, `simulator.json` the simulator's, in debug builds
//! only. Release builds (the .deb) register, permit and grant no simulator command.
//!
//! Shared with `build.rs` (`#[path]`): plain constants only.

/// The app's own commands, in every build (`src/bindings.rs` registers them).
pub const COMMANDS: &[&str] = &[
    "app_status",
    "portfolio",
    "alerts",
    "acknowledge_alert",
    "guard_status",
    "unlock_trading",
    "margin_history",
    "locations",
    "settings",
    "save_settings",
    "open_logs_folder",
    "export_diagnostics",
    "quit_app",
    "test_ib_connection",
    "strategies",
    "preview_flatten",
    "preview_forced_unwind",
    "confirm_flatten",
    "flatten_progress",
    "strategy_detail",
    "set_assignment_choice",
    "retry_venue_connect",
    "blotter",
    "audit_log",
    "export_audit_csv",
    "rules_file",
    "check_rules",
    "save_rules",
    "alert_channels",
    "save_alert_channel",
    "delete_alert_channel",
    "test_alert_channel",
    "save_tradier_token",
    "tradier_token_stored",
    "test_tradier_connection",
    "save_projectx_key",
    "projectx_key_stored",
    "test_projectx_connection",
    "option_chain",
    "preview_entry",
    "place_entry",
];

/// Simulator-only commands (forcing an assignment on the simulated venue): debug builds only
/// (`make run`, the E2E tests).
pub const SIM_COMMANDS: &[&str] = &["sim_force_assignment", "sim_move_market"];
