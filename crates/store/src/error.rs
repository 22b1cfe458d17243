//! Owns [`StoreError`]: every way the store can fail, each with a stable `code()` and a
//! Display text written for a trader (what happened and what to do).

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Errors returned by the store. Cloneable so one failed group commit can be reported to
/// every caller whose write was in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another `Store` in this process) already guards this database.
    #[error(
        "another Tradeguard (pid {pid} on {host}, running since {}) is already guarding {}; \
         close that instance first or choose a different data directory",
        fmt_ms(*since_ms), path.display()
    )]
    Locked {
        /// Process id of the holder, as written in the lock file.
        pid: u32,
        /// Host name of the holder.
        host: String,
        /// When the holder opened the database (unix ms).
        since_ms: i64,
        /// The lock file.
        path: PathBuf,
    },
    /// Another Tradeguard (the app or the CLI, whatever its data directory) already guards
    /// this broker account on this machine.
    #[error(
        "another Tradeguard (pid {pid} on {host}, running since {}) is already guarding the \
         {venue} account {account} on this machine; two guards on one account would each \
         answer the same assignment: stop that one first (lock file {})",
        fmt_ms(*since_ms), path.display()
    )]
    AccountGuarded {
        /// Venue name.
        venue: String,
        /// Broker account.
        account: String,
        /// Process id of the holder.
        pid: u32,
        /// Host name of the holder.
        host: String,
        /// When the holder took the account (unix ms).
        since_ms: i64,
        /// The lock file.
        path: PathBuf,
    },
    /// The file is not a readable SQLite database or its pages are damaged.
    #[error(
        "the database file {} is damaged or is not a database ({detail}); \
         restore it from a backup, or move it aside so Tradeguard can start a new one",
        path.display()
    )]
    Corrupt {
        /// Database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// A SQLite database that belongs to some other program.
    #[error(
        "{} is a database of another program (application id {application_id:#x}, schema version \
         {user_version}), not a Tradeguard database; choose a different file",
        path.display()
    )]
    Foreign {
        /// Database file.
        path: PathBuf,
        /// `PRAGMA application_id` found.
        application_id: i32,
        /// `PRAGMA user_version` found.
        user_version: i64,
    },
    /// The database was written by a newer Tradeguard.
    #[error(
        "{} was written by a newer Tradeguard (schema version {found}, this version understands up \
         to {supported}); update Tradeguard before opening it",
        path.display()
    )]
    NewerVersion {
        /// Database file.
        path: PathBuf,
        /// Schema version in the file.
        found: i64,
        /// Latest schema version this build knows.
        supported: i64,
    },
    /// The file or its directory cannot be written.
    #[error(
        "{} cannot be written ({detail}); make the file and its folder writable or choose \
         another location",
        path.display()
    )]
    ReadOnly {
        /// File or directory that is read-only.
        path: PathBuf,
        /// Which part is read-only.
        detail: String,
    },
    /// The disk (or the configured size cap) is full; the write was not saved.
    #[error(
        "the disk holding {} is full, so the last change was NOT saved; free some space \
         (Tradeguard keeps guarding from memory but cannot record until then)",
        path.display()
    )]
    DiskFull {
        /// Database file.
        path: PathBuf,
    },
    /// The database file could not be opened or created.
    #[error("cannot open {} ({detail}); check that the folder exists and is accessible", path.display())]
    CannotOpen {
        /// Database file.
        path: PathBuf,
        /// OS / SQLite detail.
        detail: String,
    },
    /// File-system error outside SQLite (lock file).
    #[error("file error on {}: {detail}", path.display())]
    Io {
        /// File involved.
        path: PathBuf,
        /// OS error text.
        detail: String,
    },
    /// A write broke a database rule (missing account, duplicate key, append-only audit log...).
    #[error("the change was refused by the database: {detail}")]
    Constraint {
        /// SQLite's message.
        detail: String,
    },
    /// A write referred to a row that does not exist.
    #[error("{what} {key} does not exist")]
    NotFound {
        /// Kind of row ("alert", "strategy").
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A stored value could not be read back (unknown enum text, bad JSON).
    #[error("stored value {value:?} in column {column} is not understood by this version")]
    BadValue {
        /// Table.column.
        column: &'static str,
        /// Offending stored text.
        value: String,
    },
    /// A write command was rejected before reaching the database.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Applying schema migrations failed.
    #[error("upgrading the database schema failed ({detail}); the file was left unchanged")]
    Migration {
        /// Detail.
        detail: String,
    },
    /// The store was closed (or its writer stopped); the write was not saved.
    #[error("the store is closed; the change was not saved")]
    Closed,
    /// Any other SQLite error.
    #[error("database error {code}: {detail}")]
    Sqlite {
        /// SQLite primary error code name.
        code: String,
        /// Message.
        detail: String,
    },
}

impl StoreError {
    /// Stable machine-readable code, e.g. `"store.locked"`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Locked { .. } => "store.locked",
            Self::AccountGuarded { .. } => "store.account_guarded",
            Self::Corrupt { .. } => "store.corrupt",
            Self::Foreign { .. } => "store.foreign",
            Self::NewerVersion { .. } => "store.newer_version",
            Self::ReadOnly { .. } => "store.read_only",
            Self::DiskFull { .. } => "store.disk_full",
            Self::CannotOpen { .. } => "store.cannot_open",
            Self::Io { .. } => "store.io",
            Self::Constraint { .. } => "store.constraint",
            Self::NotFound { .. } => "store.not_found",
            Self::BadValue { .. } => "store.bad_value",
            Self::InvalidInput { .. } => "store.invalid_input",
            Self::Migration { .. } => "store.migration",
            Self::Closed => "store.closed",
            Self::Sqlite { .. } => "store.sqlite",
        }
    }

    /// Maps a rusqlite error on database `path` to the matching variant.
    pub(crate) fn sqlite(err: &rusqlite::Error, path: &Path) -> Self {
        let detail = err.to_string();
        let path = path.to_path_buf();
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull { path },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                Self::Corrupt { path, detail }
            }
            Some(ErrorCode::ReadOnly) => Self::ReadOnly { path, detail },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                Self::CannotOpen { path, detail }
            }
            Some(ErrorCode::ConstraintViolation) => Self::Constraint { detail },
            Some(code) => Self::Sqlite {
                code: format!("{code:?}"),
                detail,
            },
            None => Self::Sqlite {
                code: "Other".to_owned(),
                detail,
            },
        }
    }
}

/// Formats unix milliseconds as RFC 3339 UTC for messages.
fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_prefixed() {
        let p = PathBuf::from("/x/t.db");
        let all = [
            StoreError::Locked {
                pid: 1,
                host: "h".into(),
                since_ms: 0,
                path: p.clone(),
            },
            StoreError::AccountGuarded {
                venue: "ib".into(),
                account: "DU1".into(),
                pid: 1,
                host: "h".into(),
                since_ms: 0,
                path: p.clone(),
            },
            StoreError::Corrupt {
                path: p.clone(),
                detail: String::new(),
            },
            StoreError::Foreign {
                path: p.clone(),
                application_id: 1,
                user_version: 1,
            },
            StoreError::NewerVersion {
                path: p.clone(),
                found: 9,
                supported: 3,
            },
            StoreError::ReadOnly {
                path: p.clone(),
                detail: String::new(),
            },
            StoreError::DiskFull { path: p.clone() },
            StoreError::CannotOpen {
                path: p.clone(),
                detail: String::new(),
            },
            StoreError::Io {
                path: p,
                detail: String::new(),
            },
            StoreError::Constraint {
                detail: String::new(),
            },
            StoreError::NotFound {
                what: "alert",
                key: "1".into(),
            },
            StoreError::BadValue {
                column: "c",
                value: String::new(),
            },
            StoreError::InvalidInput {
                field: "f",
                reason: String::new(),
            },
            StoreError::Migration {
                detail: String::new(),
            },
            StoreError::Closed,
            StoreError::Sqlite {
                code: String::new(),
                detail: String::new(),
            },
        ];
        let mut codes: Vec<_> = all.iter().map(StoreError::code).collect();
        assert!(codes.iter().all(|c| c.starts_with("store.")));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn locked_message_names_the_holder() {
        let e = StoreError::Locked {
            pid: 4242,
            host: "desk".into(),
            since_ms: 1_700_000_000_000,
            path: PathBuf::from("/d/t.db.lock"),
        };
        let s = e.to_string();
        assert!(s.contains("pid 4242 on desk"), "{s}");
        assert!(s.contains("2023-11-14 22:13:20 UTC"), "{s}");
        assert!(s.contains("/d/t.db.lock"), "{s}");
    }
}
