//! Owns [`StoreConfig`]: where the database lives and how the connections are tuned.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// SQLite `synchronous` level for the write connection (WAL mode).
///
/// With WAL + `Normal`, a transaction acknowledged by the store survives a crash of the
/// Tradeguard process (the WAL is in the OS page cache); only a power loss / kernel crash can
/// lose the last transactions before the next checkpoint. `Full` also survives power loss at
/// the cost of one fsync per group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `PRAGMA synchronous = NORMAL` (default).
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`.
    Full,
}

impl Synchronous {
    pub(crate) const fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// How to open a [`crate::Store`]. Build with [`StoreConfig::new`] and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Database file path. The lock file is `<path>.lock`.
    pub path: PathBuf,
    /// Durability level of commits.
    pub synchronous: Synchronous,
    /// SQLite busy timeout for every connection. The single writer never contends with
    /// itself; this only covers checkpoints and foreign tools reading the file.
    pub busy_timeout: Duration,
    /// Capacity of the writer's bounded request queue (backpressure beyond it).
    pub queue_capacity: usize,
    /// Most queued requests folded into one transaction (group commit cap).
    pub max_group: usize,
    /// Read-only connections kept for reuse.
    pub read_pool_size: usize,
    /// Run `PRAGMA quick_check` when opening (detects damaged pages early).
    pub verify_on_open: bool,
    /// Optional cap on the database size in pages (`PRAGMA max_page_count`); a write beyond
    /// it fails with [`crate::StoreError::DiskFull`]. Used to simulate a full disk.
    pub max_page_count: Option<u32>,
    /// Stamp written into the lock file as "running since" (unix ms). Metadata for humans only.
    pub opened_at_ms: i64,
}

impl StoreConfig {
    /// Defaults: WAL, `synchronous=NORMAL`, 5 s busy timeout, queue 4096, groups of up to
    /// 1024 requests, 4 pooled readers, quick check on open, no size cap.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            queue_capacity: 4096,
            max_group: 1024,
            read_pool_size: 4,
            verify_on_open: true,
            max_page_count: None,
            opened_at_ms: wall_clock_ms(),
        }
    }

    /// Sets the durability level.
    #[must_use]
    pub const fn with_synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Caps the database size in pages (simulates a full disk).
    #[must_use]
    pub const fn with_max_page_count(mut self, pages: u32) -> Self {
        self.max_page_count = Some(pages);
        self
    }

    /// Enables or disables the quick check on open.
    #[must_use]
    pub const fn with_verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }

    /// Sets the group-commit cap (1 disables grouping).
    #[must_use]
    pub const fn with_max_group(mut self, n: usize) -> Self {
        self.max_group = n;
        self
    }

    /// Sets the "running since" stamp of the lock file.
    #[must_use]
    pub const fn with_opened_at_ms(mut self, ms: i64) -> Self {
        self.opened_at_ms = ms;
        self
    }

    /// Path of the single-instance lock file.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }
}

/// Wall-clock default for [`StoreConfig::opened_at_ms`] only (human-facing lock metadata,
/// never used for decisions).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
