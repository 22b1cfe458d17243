//! [`ConfigWatcher`]: hot reload of the risk configuration by polling the file.
//!
//! Polling (content hash, every `period` of tokio time, so tests run on paused virtual time)
//! instead of OS file events: it survives editors that save by rename, network drives and
//! missing files, and needs no extra dependency. A bad edit keeps the last good configuration
//! and is reported once (until the file changes again); a good edit applies immediately.

use super::config::{ConfigError, RiskConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Same content as last time (good or already reported bad).
    Unchanged,
    /// New content, valid: now in effect.
    Applied(Arc<RiskConfig>),
    /// New content (or an unreadable file), invalid: the last good configuration stays.
    Rejected(ConfigError),
}

/// Watches one risk configuration file.
#[derive(Debug)]
pub struct ConfigWatcher {
    path: PathBuf,
    current: Arc<RiskConfig>,
    /// Hash of the last content seen (good or bad); `None` after a read error.
    last_seen: Option<u64>,
    last_error: Option<ConfigError>,
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl ConfigWatcher {
    /// Loads `path`; it must be valid at start.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let text = read(&path)?;
        let cfg = RiskConfig::parse(&text, &path)?;
        Ok(Self {
            last_seen: Some(fnv(text.as_bytes())),
            path,
            current: Arc::new(cfg),
            last_error: None,
        })
    }

    /// The file watched (shown in the UI).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration in effect (the last good one).
    pub fn current(&self) -> Arc<RiskConfig> {
        Arc::clone(&self.current)
    }

    /// The error of the current bad edit, if the file is bad right now.
    pub fn last_error(&self) -> Option<&ConfigError> {
        self.last_error.as_ref()
    }

    /// Reads the file once and applies or rejects a change.
    pub fn poll(&mut self) -> Reload {
        let text = match read(&self.path) {
            Ok(t) => t,
            Err(e) => {
                if self.last_error.as_ref() == Some(&e) {
                    return Reload::Unchanged;
                }
                self.last_seen = None;
                self.last_error = Some(e.clone());
                return Reload::Rejected(e);
            }
        };
        let h = fnv(text.as_bytes());
        if self.last_seen == Some(h) {
            return Reload::Unchanged;
        }
        self.last_seen = Some(h);
        match RiskConfig::parse(&text, &self.path) {
            Ok(cfg) => {
                self.last_error = None;
                self.current = Arc::new(cfg);
                Reload::Applied(self.current())
            }
            Err(e) => {
                self.last_error = Some(e.clone());
                Reload::Rejected(e)
            }
        }
    }

    /// Polls every `period` in a task. The configuration in effect is published on the
    /// returned watch channel; every `Applied` / `Rejected` is also sent on the event channel
    /// (for the log, the audit and the alert). The task ends when the event receiver is dropped.
    pub fn spawn(mut self, period: Duration) -> WatchHandle {
        let (cfg_tx, cfg_rx) = watch::channel(self.current());
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = self.poll();
                if let Reload::Applied(cfg) = &r {
                    cfg_tx.send_replace(Arc::clone(cfg));
                }
                if r != Reload::Unchanged && ev_tx.send(r).is_err() {
                    return;
                }
            }
        });
        WatchHandle {
            config: cfg_rx,
            events: ev_rx,
            task,
        }
    }
}

/// A running watcher.
#[derive(Debug)]
pub struct WatchHandle {
    /// The configuration in effect.
    pub config: watch::Receiver<Arc<RiskConfig>>,
    /// Applied / rejected reloads.
    pub events: mpsc::UnboundedReceiver<Reload>,
    /// The polling task.
    pub task: tokio::task::JoinHandle<()>,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_owned(),
        kind: e.kind(),
        message: e.to_string(),
    })
}
