//! Where the app keeps its data, configuration and logs.
//!
//! Platform conventions by default (XDG on Linux):
//! - data (database): `$XDG_DATA_HOME/dev.tradeguard.desktop` (`~/.local/share/...`)
//! - config (risk rules, settings): `$XDG_CONFIG_HOME/dev.tradeguard.desktop` (`~/.config/...`)
//! - logs: `$XDG_STATE_HOME/dev.tradeguard.desktop/logs` (`~/.local/state/...`)
//!
//! `--data-dir DIR` on the command line, else `TRADEGUARD_DATA_DIR`, puts all three under one
//! directory (`DIR`, `DIR`, `DIR/logs`): tests and portable installs. The locations are resolved
//! once, before anything starts, so logging can begin at the first line.
//!
//! The three directories are private (mode 0700 on Unix, an existing one is tightened): the
//! journal, the settings and the logs name broker accounts and positions.

use serde::Serialize;
use specta::Type;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The app's identifier (tauri.conf.json), which names its directories.
pub const IDENTIFIER: &str = "dev.tradeguard.desktop";
/// Environment variable that overrides every location (as `--data-dir` does).
pub const DATA_DIR_ENV: &str = "TRADEGUARD_DATA_DIR";
/// The database file inside the data directory.
pub const DB_FILE: &str = "tradeguard.db";
/// The simulated venue's database: the demo keeps its own data, so its alerts, strategies and
/// audit never follow the trader to a real account.
pub const DEMO_DB_FILE: &str = "demo.db";
/// The risk rules (TOML) inside the config directory.
pub const RULES_FILE: &str = "risk.toml";
/// The app settings (TOML) inside the config directory.
pub const SETTINGS_FILE: &str = "settings.toml";

/// Where this run keeps its files. Shown in Settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AppPaths {
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
    pub log_dir: PathBuf,
    /// What chose them: `--data-dir`, `TRADEGUARD_DATA_DIR` or `platform`.
    pub source: String,
}

/// A location that cannot be resolved: the app says so and refuses to start without one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathsError {
    #[error("--data-dir needs a directory after it")]
    MissingDataDir,
    #[error("no home directory to put the app's files in; pass --data-dir DIR")]
    NoHome,
}

impl PathsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingDataDir => "paths.missing_data_dir",
            Self::NoHome => "paths.no_home",
        }
    }
}

impl AppPaths {
    /// One directory for everything (`--data-dir`, `TRADEGUARD_DATA_DIR`).
    pub fn portable(dir: PathBuf, source: &str) -> Self {
        Self {
            log_dir: dir.join("logs"),
            config_dir: dir.clone(),
            data_dir: dir,
            source: source.to_owned(),
        }
    }

    /// Resolves the locations from the command line, the environment and the platform.
    pub fn resolve(
        args: impl IntoIterator<Item = OsString>,
        env_dir: Option<OsString>,
    ) -> Result<Self, PathsError> {
        if let Some(dir) = data_dir_arg(args)? {
            return Ok(Self::portable(dir, "--data-dir"));
        }
        if let Some(dir) = env_dir.filter(|d| !d.is_empty()) {
            return Ok(Self::portable(PathBuf::from(dir), DATA_DIR_ENV));
        }
        let data = dirs::data_dir().ok_or(PathsError::NoHome)?;
        let config = dirs::config_dir().ok_or(PathsError::NoHome)?;
        // Logs are state (XDG); platforms without a state dir keep them beside the data.
        let log_base = dirs::state_dir().unwrap_or_else(|| data.clone());
        Ok(Self {
            data_dir: data.join(IDENTIFIER),
            config_dir: config.join(IDENTIFIER),
            log_dir: log_base.join(IDENTIFIER).join("logs"),
            source: "platform".to_owned(),
        })
    }

    /// From this process's command line and environment.
    pub fn from_process() -> Result<Self, PathsError> {
        Self::resolve(std::env::args_os().skip(1), std::env::var_os(DATA_DIR_ENV))
    }

    /// The database of a real venue.
    pub fn db_file(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    /// The database the guard on `kind` keeps (the demo's is its own, [`DEMO_DB_FILE`]).
    pub fn db_file_for(&self, kind: crate::settings::VenueKind) -> PathBuf {
        match kind {
            crate::settings::VenueKind::Sim => self.data_dir.join(DEMO_DB_FILE),
            crate::settings::VenueKind::Ib
            | crate::settings::VenueKind::Tradier
            | crate::settings::VenueKind::Projectx => self.db_file(),
        }
    }

    pub fn rules_file(&self) -> PathBuf {
        self.config_dir.join(RULES_FILE)
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join(SETTINGS_FILE)
    }

    /// Creates every directory (first start), private to the user; tightens existing ones.
    pub fn create_all(&self) -> std::io::Result<()> {
        for d in [&self.data_dir, &self.config_dir, &self.log_dir] {
            tradeguard_store::create_private_dir(d)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        }
        Ok(())
    }
}

/// `--data-dir DIR` or `--data-dir=DIR`; other arguments are left to others (the
/// single-instance plugin passes a second launch's arguments on, for instance).
fn data_dir_arg(args: impl IntoIterator<Item = OsString>) -> Result<Option<PathBuf>, PathsError> {
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--data-dir" {
            return match args.next() {
                Some(d) if !d.is_empty() => Ok(Some(PathBuf::from(d))),
                _ => Err(PathsError::MissingDataDir),
            };
        }
        if let Some(d) = a.to_str().and_then(|s| s.strip_prefix("--data-dir=")) {
            if d.is_empty() {
                return Err(PathsError::MissingDataDir);
            }
            return Ok(Some(PathBuf::from(d)));
        }
    }
    Ok(None)
}

/// Shown with a path in messages.
/// Writes `text` to `path` atomically (a temp file beside it, then a rename: a crash
/// mid-write leaves the old file, never half a file), creating its folder private to the user.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tradeguard_store::create_private_dir(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

pub fn show(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn data_dir_flag_puts_everything_under_one_directory() {
        let p = AppPaths::resolve(args(&["--data-dir", "/tmp/tg"]), None).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/tmp/tg"));
        assert_eq!(p.config_dir, PathBuf::from("/tmp/tg"));
        assert_eq!(p.log_dir, PathBuf::from("/tmp/tg/logs"));
        assert_eq!(p.db_file(), PathBuf::from("/tmp/tg/tradeguard.db"));
        assert_eq!(
            p.db_file_for(crate::settings::VenueKind::Ib),
            PathBuf::from("/tmp/tg/tradeguard.db")
        );
        assert_eq!(
            p.db_file_for(crate::settings::VenueKind::Sim),
            PathBuf::from("/tmp/tg/demo.db"),
            "the demo's data never follows the trader to a real venue"
        );
        assert_eq!(p.rules_file(), PathBuf::from("/tmp/tg/risk.toml"));
        assert_eq!(p.source, "--data-dir");
        let eq = AppPaths::resolve(args(&["--data-dir=/tmp/x"]), None).unwrap();
        assert_eq!(eq.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn the_flag_beats_the_environment_which_beats_the_platform() {
        let env = Some(OsString::from("/tmp/env"));
        let flag = AppPaths::resolve(args(&["--data-dir", "/tmp/flag"]), env.clone()).unwrap();
        assert_eq!(flag.data_dir, PathBuf::from("/tmp/flag"));
        let from_env = AppPaths::resolve(args(&[]), env).unwrap();
        assert_eq!(from_env.data_dir, PathBuf::from("/tmp/env"));
        assert_eq!(from_env.source, DATA_DIR_ENV);
    }

    #[test]
    fn platform_locations_follow_xdg_and_name_the_app() {
        let p = AppPaths::resolve(args(&[]), None).expect("this machine has a home directory");
        assert_eq!(p.source, "platform");
        for d in [&p.data_dir, &p.config_dir] {
            assert!(d.ends_with(IDENTIFIER), "{}", d.display());
        }
        assert!(p.log_dir.ends_with(format!("{IDENTIFIER}/logs")));
        assert_ne!(p.data_dir, p.config_dir);
    }

    #[cfg(unix)]
    #[test]
    fn every_directory_is_created_private_and_an_open_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let p = AppPaths {
            data_dir: root.path().join("data"),
            config_dir: root.path().join("config"),
            log_dir: root.path().join("state/logs"),
            source: "test".to_owned(),
        };
        // The data directory exists already, readable by everyone.
        std::fs::create_dir(&p.data_dir).unwrap();
        std::fs::set_permissions(&p.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.create_all().unwrap();
        for d in [&p.data_dir, &p.config_dir, &p.log_dir] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        // Portable: everything under one directory, which is private too.
        let one = AppPaths::portable(root.path().join("one"), "--data-dir");
        one.create_all().unwrap();
        assert_eq!(mode(&one.data_dir), 0o700);
        assert_eq!(mode(&one.log_dir), 0o700);
    }

    #[test]
    fn a_flag_without_a_directory_is_an_error_not_a_default() {
        let e = AppPaths::resolve(args(&["--data-dir"]), None).unwrap_err();
        assert_eq!(e.code(), "paths.missing_data_dir");
        let e = AppPaths::resolve(args(&["--data-dir="]), None).unwrap_err();
        assert_eq!(e, PathsError::MissingDataDir);
    }
}
