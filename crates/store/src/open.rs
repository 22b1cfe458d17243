//! Owns opening the database file safely: pre-flight checks (read-only file/dir), telling our
//! file apart from corrupt / foreign / newer ones BEFORE changing anything in it, connection
//! pragmas, and running migrations.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::schema::{APPLICATION_ID, LATEST_VERSION, migrations};

/// Rejects a read-only database file or folder up front. Checks permission bits explicitly
/// (not by trying), so the answer is the same when running as root.
pub(crate) fn preflight(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_meta = std::fs::metadata(dir).map_err(|e| StoreError::CannotOpen {
        path: path.to_path_buf(),
        detail: format!("folder {}: {e}", dir.display()),
    })?;
    if !dir_meta.is_dir() {
        return Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: format!("{} is not a folder", dir.display()),
        });
    }
    if dir_meta.permissions().readonly() {
        return Err(StoreError::ReadOnly {
            path: dir.to_path_buf(),
            detail:
                "the folder is read-only (the database needs to create journal files next to it)"
                    .to_owned(),
        });
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: "it is a folder, not a file".to_owned(),
        }),
        Ok(m) if m.permissions().readonly() => Err(StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: "the file is read-only".to_owned(),
        }),
        _ => Ok(()),
    }
}

/// What an existing file turned out to be.
enum Kind {
    Fresh,
    Ours,
}

/// Opens the write connection, classifies the file, sets pragmas and migrates to the latest
/// schema.
pub(crate) fn open_writer(cfg: &StoreConfig) -> Result<Connection, StoreError> {
    let path = cfg.path.as_path();
    let sq = |e: rusqlite::Error| StoreError::sqlite(&e, path);
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sq)?;
    conn.busy_timeout(cfg.busy_timeout).map_err(sq)?;
    conn.set_prepared_statement_cache_capacity(64);

    match classify(&conn, path)? {
        Kind::Fresh => {}
        Kind::Ours => {
            if cfg.verify_on_open {
                quick_check(&conn, path)?;
            }
        }
    }

    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sq)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: format!("could not switch to WAL journal (got {mode})"),
        });
    }
    // Checkpoints normally run on the checkpoint thread; 10,000 pages is only a backstop.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864;",
        cfg.synchronous.pragma()
    ))
    .map_err(sq)?;

    migrations()
        .to_latest(&mut conn)
        .map_err(|e| migration_error(e, path))?;

    if let Some(pages) = cfg.max_page_count {
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(sq)?;
    }
    Ok(conn)
}

/// Opens one read-only connection (WAL readers never wait for the writer).
pub(crate) fn open_reader(cfg: &StoreConfig) -> Result<Connection, StoreError> {
    let path = cfg.path.as_path();
    let sq = |e: rusqlite::Error| StoreError::sqlite(&e, path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sq)?;
    conn.busy_timeout(cfg.busy_timeout).map_err(sq)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Reads the header fields without writing anything.
fn classify(conn: &Connection, path: &Path) -> Result<Kind, StoreError> {
    let sq = |e: rusqlite::Error| StoreError::sqlite(&e, path);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sq)?;
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sq)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(sq)?;
    if app_id == APPLICATION_ID {
        if user_version > LATEST_VERSION {
            return Err(StoreError::NewerVersion {
                path: path.to_path_buf(),
                found: user_version,
                supported: LATEST_VERSION,
            });
        }
        return Ok(Kind::Ours);
    }
    if app_id == 0 && user_version == 0 && objects == 0 {
        return Ok(Kind::Fresh);
    }
    Err(StoreError::Foreign {
        path: path.to_path_buf(),
        application_id: app_id,
        user_version,
    })
}

/// `PRAGMA quick_check`; anything but "ok" is [`StoreError::Corrupt`].
pub(crate) fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let lines = check_lines(conn, "PRAGMA quick_check", path)?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: lines.into_iter().take(3).collect::<Vec<_>>().join("; "),
        })
    }
}

/// Runs an integrity/quick check pragma and returns its lines.
pub(crate) fn check_lines(
    conn: &Connection,
    sql: &str,
    path: &Path,
) -> Result<Vec<String>, StoreError> {
    let sq = |e: rusqlite::Error| StoreError::sqlite(&e, path);
    let mut stmt = conn.prepare(sql).map_err(sq)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sq)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sq)
}

fn migration_error(e: rusqlite_migration::Error, path: &Path) -> StoreError {
    match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => {
            match StoreError::sqlite(&err, path) {
                s @ (StoreError::DiskFull { .. }
                | StoreError::Corrupt { .. }
                | StoreError::ReadOnly { .. }) => s,
                other => StoreError::Migration {
                    detail: other.to_string(),
                },
            }
        }
        other => StoreError::Migration {
            detail: other.to_string(),
        },
    }
}
