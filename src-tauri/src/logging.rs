//! Logging: to stderr and to daily rolling files in the log directory (14 days kept).
//! File writes are synchronous, so the lines before a crash are on disk. The level comes from
//! the settings; `RUST_LOG`, when set, overrides it.

use std::path::Path;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// Log file names: `tradeguard.YYYY-MM-DD.log`.
pub const FILE_PREFIX: &str = "tradeguard";
pub const FILE_SUFFIX: &str = "log";
const KEEP_FILES: usize = 14;

/// Starts logging. Without a usable log directory the app still logs to stderr and says why.
pub fn init(log_dir: &Path, level: &str) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let file = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX)
        .max_log_files(KEEP_FILES)
        .build(log_dir);
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    match file {
        Ok(file) => {
            let files = fmt::layer()
                .with_ansi(false)
                .with_writer(file)
                .with_filter(filter());
            let _ = tracing_subscriber::registry()
                .with(stderr)
                .with(files)
                .try_init();
            tracing::info!(dir = %log_dir.display(), level, "logging to files");
        }
        Err(e) => {
            let _ = tracing_subscriber::registry().with(stderr).try_init();
            tracing::error!(dir = %log_dir.display(), error = %e, "no log files: cannot write the log directory");
        }
    }
}

/// The newest log file, if any.
pub fn newest_file(log_dir: &Path) -> Option<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(log_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        })
        .collect();
    // Dated names sort by date.
    files.sort();
    files.pop()
}

/// The last `n` lines of the newest log file.
pub fn tail(log_dir: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let Some(path) = newest_file(log_dir) else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)?;
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    Ok(lines[from..].iter().map(|l| (*l).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reads_the_newest_file_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(tail(dir.path(), 5).unwrap().is_empty());
        std::fs::write(dir.path().join("tradeguard.2026-11-20.log"), "old\n").unwrap();
        std::fs::write(dir.path().join("tradeguard.2026-11-21.log"), "a\nb\nc\n").unwrap();
        std::fs::write(dir.path().join("other.txt"), "no\n").unwrap();
        assert_eq!(tail(dir.path(), 2).unwrap(), vec!["b", "c"]);
        assert_eq!(tail(dir.path(), 10).unwrap(), vec!["a", "b", "c"]);
    }
}
