//! Owns the single-instance guard: an exclusive advisory lock on `<db>.lock` that holds the
//! holder's pid, host name and start time. The OS drops the lock when the process dies (also
//! on SIGKILL), so a stale lock file never blocks a restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use crate::error::StoreError;

/// Who holds (or held) a lock file, as written in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// Unix ms when the holder opened the database.
    pub since_ms: i64,
}

impl LockHolder {
    fn encode(&self) -> String {
        format!(
            "pid={}\nhost={}\nsince_ms={}\n",
            self.pid, self.host, self.since_ms
        )
    }

    /// Parses the lock file text; unknown or missing fields read as 0 / "unknown" because a
    /// holder may be mid-write when we look.
    fn decode(text: &str) -> Self {
        let mut h = Self {
            pid: 0,
            host: "unknown".to_owned(),
            since_ms: 0,
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => h.pid = v.trim().parse().unwrap_or(0),
                Some(("host", v)) => h.host = v.trim().to_owned(),
                Some(("since_ms", v)) => h.since_ms = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        h
    }
}

/// A held instance lock. Released on drop (and by the OS on process death).
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock at `path` or returns [`StoreError::Locked`] naming the holder.
    pub fn acquire(path: &Path, since_ms: i64) -> Result<Self, StoreError> {
        let io_err = |e: std::io::Error| StoreError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    StoreError::ReadOnly {
                        path: path.to_path_buf(),
                        detail: format!("lock file: {e}"),
                    }
                }
                _ => io_err(e),
            })?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Best effort: the holder's details are informational.
                let _ = file.read_to_string(&mut text);
                let h = LockHolder::decode(&text);
                return Err(StoreError::Locked {
                    pid: h.pid,
                    host: h.host,
                    since_ms: h.since_ms,
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let me = LockHolder {
            pid: std::process::id(),
            host: host_name(),
            since_ms,
        };
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(me.encode().as_bytes()).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Lock file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the holder recorded in a lock file without taking the lock.
    pub fn read_holder(path: &Path) -> Option<LockHolder> {
        std::fs::read_to_string(path)
            .ok()
            .map(|t| LockHolder::decode(&t))
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it immediate.
        let _ = FileExt::unlock(&self.file);
    }
}

/// Environment variable naming the directory of the machine-wide account locks (tests).
pub const LOCK_DIR_ENV: &str = "TRADEGUARD_LOCK_DIR";

/// Where the machine-wide broker-account locks live, the same for the desktop app and the CLI
/// whatever their data directories: `$TRADEGUARD_LOCK_DIR`, else `$XDG_RUNTIME_DIR/tradeguard`,
/// else `$HOME/.local/state/tradeguard/locks`, else the system temp dir.
pub fn account_lock_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(LOCK_DIR_ENV)
        .or_else(|| env("XDG_RUNTIME_DIR").map(|d| d.join("tradeguard")))
        .or_else(|| env("HOME").map(|h| h.join(".local/state/tradeguard/locks")))
        .unwrap_or_else(|| std::env::temp_dir().join("tradeguard-locks"))
}

/// Takes the machine-wide lock of one broker account in `dir` (see [`account_lock_dir`]): one
/// guard per (venue, account), so the app and the CLI never both answer one assignment. The
/// directory is created private to the user. Fails with [`StoreError::AccountGuarded`] naming
/// the holder.
pub fn lock_account(
    dir: &Path,
    venue: &str,
    account: &str,
    since_ms: i64,
) -> Result<InstanceLock, StoreError> {
    let io_err = |e: std::io::Error| StoreError::Io {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    };
    crate::private::create_private_dir(dir).map_err(io_err)?;
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let path = dir.join(format!("{}-{}.lock", safe(venue), safe(account)));
    InstanceLock::acquire(&path, since_ms).map_err(|e| match e {
        StoreError::Locked {
            pid,
            host,
            since_ms,
            path,
        } => StoreError::AccountGuarded {
            venue: venue.to_owned(),
            account: account.to_owned(),
            pid,
            host,
            since_ms,
            path,
        },
        other => other,
    })
}

/// Best-effort host name without extra dependencies.
fn host_name() -> String {
    let from_file = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    from_file
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_in_process_is_locked_and_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.db.lock");
        let first = InstanceLock::acquire(&p, 123).unwrap();
        let err = InstanceLock::acquire(&p, 456).unwrap_err();
        match err {
            StoreError::Locked {
                pid,
                since_ms,
                path,
                ..
            } => {
                assert_eq!(pid, std::process::id());
                assert_eq!(since_ms, 123);
                assert_eq!(path, p);
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        let again = InstanceLock::acquire(&p, 789).unwrap();
        assert_eq!(
            InstanceLock::read_holder(again.path()).unwrap().since_ms,
            789
        );
    }

    #[test]
    fn decode_tolerates_garbage() {
        let h = LockHolder::decode("pid=abc\nnoise\nsince_ms=5");
        assert_eq!(
            h,
            LockHolder {
                pid: 0,
                host: "unknown".into(),
                since_ms: 5
            }
        );
    }

    /// Do no harm: two guards (the app and the CLI, any data directories) cannot take the
    /// same broker account; another account is free; the lock dir is private.
    #[test]
    fn one_guard_per_broker_account() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        let first = lock_account(&locks, "ib", "DU123", 1).unwrap();
        match lock_account(&locks, "ib", "DU123", 2).unwrap_err() {
            StoreError::AccountGuarded {
                venue,
                account,
                pid,
                ..
            } => assert_eq!(
                (venue.as_str(), account.as_str(), pid),
                ("ib", "DU123", std::process::id())
            ),
            other => panic!("expected AccountGuarded, got {other:?}"),
        }
        let other = lock_account(&locks, "ib", "DU999", 3).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&locks).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        drop((first, other));
        assert!(lock_account(&locks, "ib", "DU123", 4).is_ok());
    }
}
