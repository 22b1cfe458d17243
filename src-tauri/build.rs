fn main() {
    // The single source of truth for the app's configuration is the workspace root.
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("tauri-build failed; see the message above");
}
