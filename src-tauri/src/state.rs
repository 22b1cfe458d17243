//! Shell state shared by commands and background tasks.

use crate::commands::AppStatus;
use crate::error::{ErrorCode, IpcError};
use crate::venue::Venue;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tradeguard_store::Store;

pub struct AppState {
    started: Instant,
    requests: AtomicU32,
    venue: OnceLock<Result<Arc<Venue>, IpcError>>,
    store: OnceLock<Result<Arc<Store>, IpcError>>,
    go_live: crate::records::GoLiveGate,
    /// While the app waits to try IB Gateway/TWS again: the countdown.
    waiting: std::sync::Mutex<Option<crate::connect::VenueWaiting>>,
    /// The Retry button: cuts the wait short.
    retry: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU32::new(0),
            venue: OnceLock::new(),
            store: OnceLock::new(),
            go_live: crate::records::GoLiveGate::default(),
            waiting: std::sync::Mutex::new(None),
            retry: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The go-live previews of the rules screen (see [`crate::records::save_rules`]).
    pub fn go_live(&self) -> &crate::records::GoLiveGate {
        &self.go_live
    }

    /// The Retry button's signal (see [`crate::connect::retrying`]).
    pub fn retry_signal(&self) -> Arc<tokio::sync::Notify> {
        self.retry.clone()
    }

    /// The countdown to the next attempt to reach the gateway (`None`: not waiting).
    pub fn set_waiting(&self, w: Option<crate::connect::VenueWaiting>) {
        *self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = w;
    }

    /// Records the outcome of connecting to the venue (once, at start-up).
    pub fn set_venue(&self, venue: Result<Arc<Venue>, IpcError>) {
        self.set_waiting(None);
        if self.venue.set(venue).is_err() {
            tracing::error!("venue set twice; keeping the first");
        }
    }

    /// Records the outcome of opening the database (once, at start-up).
    pub fn set_store(&self, store: Result<Arc<Store>, IpcError>) {
        if self.store.set(store).is_err() {
            tracing::error!("store set twice; keeping the first");
        }
    }

    /// The open database, or why there is none (locked by another Tradeguard, corrupt, ...).
    pub fn store(&self) -> Result<Arc<Store>, IpcError> {
        match self.store.get() {
            Some(s) => s.clone(),
            None => Err(IpcError::new(
                ErrorCode::Unavailable,
                "storage.opening",
                "still opening the database",
            )),
        }
    }

    /// The connected venue, or why there is none.
    pub fn venue(&self) -> Result<Arc<Venue>, IpcError> {
        match self.venue.get() {
            Some(v) => v.clone(),
            None => {
                let waiting = self
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                Err(match waiting {
                    Some(w) => IpcError::new(
                        ErrorCode::Unavailable,
                        "venue.waiting_for_gateway",
                        format!(
                            "waiting for IB Gateway/TWS at {}: {} — next attempt in {} s (attempt {}); Tradeguard connects as soon as it is up",
                            w.address, w.message, w.next_in_secs, w.attempt
                        ),
                    ),
                    None => IpcError::new(
                        ErrorCode::Unavailable,
                        "venue.connecting",
                        "still connecting to the venue",
                    ),
                })
            }
        }
    }

    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn status(&self) -> AppStatus {
        let served = self
            .requests
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if served == 1 {
            // The UI asks right after its first render: this is launch-to-first-paint.
            let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(ms, "first screen rendered (first UI request after launch)");
        }
        AppStatus {
            app_name: "Tradeguard".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.uptime_secs(),
            requests_served: served,
        }
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_requests_and_reports_version() {
        let state = AppState::new();
        let first = state.status();
        let second = state.status();
        assert_eq!(first.requests_served, 1);
        assert_eq!(second.requests_served, 2);
        assert_eq!(first.version, env!("CARGO_PKG_VERSION"));
        assert!(second.uptime_secs >= first.uptime_secs);
    }
}
