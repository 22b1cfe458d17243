//! Diagnostics export: one text file for a bug report with versions, locations, settings and
//! rules (secrets removed), guard health with the last reconciliation, and the recent log.

use crate::paths::AppPaths;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many log lines the export carries.
pub const LOG_LINES: usize = 2000;

/// Keys whose values never leave the machine.
const SECRET_KEYS: &[&str] = &[
    "password", "secret", "token", "api_key", "apikey", "account",
];

/// Replaces the value of every `key = value` line whose key names a secret.
pub fn redact_toml(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some((key, _)) = line.split_once('=') else {
                return line.to_owned();
            };
            let k = key.trim().to_ascii_lowercase();
            if SECRET_KEYS.iter().any(|s| k.contains(s)) {
                format!("{} = \"<redacted>\"", key.trim_end())
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What goes into the report besides the files it reads itself.
pub struct Inputs<'a> {
    pub paths: &'a AppPaths,
    pub version: &'a str,
    /// Guard health as JSON (tasks, rules, last reconciliation, protections), or why there is none.
    pub guard: Result<String, String>,
    /// Wall-clock time of the export (RFC 3339).
    pub now: &'a str,
}

/// The report text.
pub fn report(i: &Inputs<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Tradeguard diagnostics\n");
    let _ = writeln!(out, "exported: {}", i.now);
    let _ = writeln!(out, "version: {}", i.version);
    let _ = writeln!(out, "os: {}", os_release());
    let _ = writeln!(out, "arch: {}", std::env::consts::ARCH);
    let _ = writeln!(out, "\n## Locations ({})", i.paths.source);
    let _ = writeln!(out, "data: {}", i.paths.data_dir.display());
    let _ = writeln!(out, "config: {}", i.paths.config_dir.display());
    let _ = writeln!(out, "logs: {}", i.paths.log_dir.display());
    for (title, path) in [
        ("Settings", i.paths.settings_file()),
        ("Risk rules", i.paths.rules_file()),
    ] {
        let _ = writeln!(out, "\n## {title} ({})", path.display());
        match std::fs::read_to_string(&path) {
            Ok(t) => {
                let _ = writeln!(out, "{}", redact_toml(&t));
            }
            Err(e) => {
                let _ = writeln!(out, "(not readable: {e})");
            }
        }
    }
    let _ = writeln!(out, "\n## Guard health and last reconciliation");
    match &i.guard {
        Ok(json) => {
            let _ = writeln!(out, "{json}");
        }
        Err(why) => {
            let _ = writeln!(out, "(no guard: {why})");
        }
    }
    let _ = writeln!(out, "\n## Recent log (last {LOG_LINES} lines)");
    match crate::logging::tail(&i.paths.log_dir, LOG_LINES) {
        Ok(lines) if lines.is_empty() => {
            let _ = writeln!(out, "(no log file yet)");
        }
        Ok(lines) => {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "(log not readable: {e})");
        }
    }
    out
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// Writes the report into `dir` as `tradeguard-diagnostics-<stamp>.txt`; returns its path.
pub fn write(dir: &Path, stamp: &str, text: &str) -> std::io::Result<PathBuf> {
    let dir = dir.join("diagnostics");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("tradeguard-diagnostics-{stamp}.txt"));
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let t = "[ib]\nhost = \"127.0.0.1\"\naccount = \"U1234567\"\nApiKey=abc\n# account note\n";
        let r = redact_toml(t);
        assert!(r.contains("host = \"127.0.0.1\""));
        assert!(!r.contains("U1234567"));
        assert!(!r.contains("abc"));
        assert!(r.contains("account = \"<redacted>\""));
        assert!(r.contains("# account note"));
    }

    #[test]
    fn report_carries_versions_locations_rules_guard_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let paths = AppPaths::portable(dir.path().to_path_buf(), "--data-dir");
        paths.create_all().unwrap();
        std::fs::write(paths.rules_file(), "[global]\ndry_run = true\n").unwrap();
        std::fs::write(
            paths.log_dir.join("tradeguard.2026-11-22.log"),
            "INFO reconciliation done\n",
        )
        .unwrap();
        let text = report(&Inputs {
            paths: &paths,
            version: "9.9.9",
            guard: Ok("{\"lastReconciliation\":\"2026-11-22T10:00:00Z\"}".to_owned()),
            now: "2026-11-22T10:00:01Z",
        });
        for want in [
            "version: 9.9.9",
            "dry_run = true",
            "lastReconciliation",
            "INFO reconciliation done",
            "(not readable",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let file = write(&paths.data_dir, "20261122T100001Z", &text).unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    }
}
