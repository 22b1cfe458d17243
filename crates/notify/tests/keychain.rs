//! Channel secrets in a real Secret Service: GNOME Keyring on a private D-Bus session bus
//! (`dbus-run-session`), started by the test, with a throw-away home. The outer test starts
//! the session and runs the inner one (this same binary) inside it; `make deps` installs
//! `gnome-keyring`.

use std::process::Command;
use tradeguard_notify::{Keychain, SecretStore};

#[test]
fn secrets_round_trip_through_the_secret_service() {
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("dbus-run-session")
        .args([
            "--",
            "sh",
            "-c",
            // An unlocked login keyring (password "test") for this session only.
            "printf test | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null && exec \"$0\" --exact secrets_in_the_session --include-ignored --nocapture --test-threads=1",
        ])
        .arg(&exe)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("TRADEGUARD_KEYCHAIN_HOME", home.path())
        .output()
        .expect("dbus-run-session runs (make deps installs dbus and gnome-keyring)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run: {text}"
    );
}

#[test]
#[ignore = "runs inside the private session of secrets_round_trip_through_the_secret_service"]
fn secrets_in_the_session() {
    let k = Keychain;
    assert_eq!(k.get("mail").unwrap(), None);
    k.set("mail", "s3cr3t-smtp-password").unwrap();
    k.set("slack", "https://hooks.slack.com/services/T0/B0/XYZ")
        .unwrap();
    assert_eq!(
        k.get("mail").unwrap().as_deref(),
        Some("s3cr3t-smtp-password")
    );
    k.set("mail", "changed").unwrap();
    assert_eq!(k.get("mail").unwrap().as_deref(), Some("changed"));
    k.delete("mail").unwrap();
    k.delete("mail").unwrap();
    assert_eq!(k.get("mail").unwrap(), None);
    assert!(k.get("slack").unwrap().is_some());
    // Nothing under the home in clear text (the keyring file is encrypted).
    let home = std::env::var_os("TRADEGUARD_KEYCHAIN_HOME").expect("run by the outer test");
    let mut stack = vec![std::path::PathBuf::from(home)];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let s = String::from_utf8_lossy(&bytes);
                assert!(
                    !s.contains("hooks.slack.com"),
                    "secret in clear in {path:?}"
                );
            }
        }
    }
}
