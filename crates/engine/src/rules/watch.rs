//! [`ConfigWatcher`]: hot reload of the risk configuration by polling the file.
//!
//! Polling (content hash, every `period` of tokio time, so tests run on paused virtual time)
//! instead of OS file events: it survives editors that save by rename, network drives and
//! missing files, and needs no extra dependency. A bad edit keeps the last good configuration
//! and is reported once (until the file changes again); a good edit applies immediately.
//!
//! A file that is bad at start does not stop the watching: [`ConfigWatcher::watch`] puts a
//! fallback in effect (the caller's: the last good configuration kept in the database, or no
//! rule in dry-run) and applies the file as soon as an edit makes it valid.
//!
//! [`ConfigSource`] is the text of a configuration that validated, so the guard can keep the
//! last good one ([`SavedRiskConfig`], journal record `risk_config`).

use super::config::{ConfigError, RiskConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tradeguard_model::Timestamp;

/// The text of a risk configuration that validated, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSource {
    /// The file.
    pub path: PathBuf,
    /// The whole file.
    pub text: String,
    /// `fnv1a64:<16 hex digits>` of `text`: equal texts, equal hashes.
    pub hash: String,
}

impl ConfigSource {
    /// `text` read from `path`, with its hash.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            path: path.into(),
            hash: hash_of(&text),
            text,
        }
    }

    /// Parses and validates the text again (errors name [`Self::path`]).
    pub fn parse(&self) -> Result<RiskConfig, ConfigError> {
        RiskConfig::parse(&self.text, &self.path)
    }
}

/// The last good risk configuration as the guard keeps it (journal record `risk_config`,
/// store table `risk_config_versions`): what runs when the file is bad at the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRiskConfig {
    /// The text and its file.
    pub source: ConfigSource,
    /// When it was saved (the guard's clock), i.e. soon after it went into effect.
    pub applied_at: Timestamp,
}

fn hash_of(text: &str) -> String {
    format!("fnv1a64:{:016x}", fnv(text.as_bytes()))
}

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
    /// The text of `current` when it came from the file (`None`: the fallback is in effect).
    source: Option<Arc<ConfigSource>>,
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
    /// Loads `path`; it must be valid at start (see [`Self::watch`] for a watcher that starts
    /// whatever the file holds).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        let path = path.into();
        let fallback = RiskConfig::none(&path);
        match Self::watch(path, fallback) {
            (w, None) => Ok(w),
            (_, Some(e)) => Err(e),
        }
    }

    /// Watches `path` whatever it holds now. A valid file is in effect at once; an unreadable
    /// or invalid one puts `fallback` in effect and is returned as the error (it is not
    /// reported again by [`Self::poll`] until the file changes). The first valid edit applies.
    pub fn watch(path: impl Into<PathBuf>, fallback: RiskConfig) -> (Self, Option<ConfigError>) {
        let path = path.into();
        let mut w = Self {
            path,
            current: Arc::new(fallback),
            source: None,
            last_seen: None,
            last_error: None,
        };
        let text = match read(&w.path) {
            Ok(t) => t,
            Err(e) => {
                w.last_error = Some(e.clone());
                return (w, Some(e));
            }
        };
        w.last_seen = Some(fnv(text.as_bytes()));
        match RiskConfig::parse(&text, &w.path) {
            Ok(cfg) => {
                w.current = Arc::new(cfg);
                w.source = Some(Arc::new(ConfigSource::new(w.path.clone(), text)));
                (w, None)
            }
            Err(e) => {
                w.last_error = Some(e.clone());
                (w, Some(e))
            }
        }
    }

    /// The file watched (shown in the UI).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration in effect (the last good one).
    pub fn current(&self) -> Arc<RiskConfig> {
        Arc::clone(&self.current)
    }

    /// The text of the configuration in effect, when it came from the file (`None` while the
    /// fallback of [`Self::watch`] is in effect).
    pub fn source(&self) -> Option<Arc<ConfigSource>> {
        self.source.clone()
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
                self.source = Some(Arc::new(ConfigSource::new(self.path.clone(), text)));
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
