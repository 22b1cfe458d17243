//! Connects the app to its venue (the simulated one by default) and keeps the live book
//! current. Broker events are folded into the book as they arrive; the UI is told at most
//! [`EMIT_INTERVAL`] apart, so a busy market cannot flood the webview.

use crate::events::PortfolioChanged;
use crate::view::{self, PortfolioView};
use futures::StreamExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tauri_specta::Event;
use tradeguard_engine::live::{LiveBook, MarkStatus};
use tradeguard_model::{Broker, BrokerError, Timestamp};
use tradeguard_sim::{Scenario, SimBroker, SimError, SimVenue};

/// Fastest rate at which portfolio updates are pushed to the UI.
pub const EMIT_INTERVAL: Duration = Duration::from_millis(250);
/// A quote older than this (venue time) marks its position stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Quotes are requested at start; a position still without one after this is reported.
pub const QUOTE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error("the simulated venue could not be built: {0}")]
    Sim(#[from] SimError),
    #[error("the broker refused: {0}")]
    Broker(#[from] BrokerError),
}

impl VenueError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sim(e) => e.code(),
            Self::Broker(e) => e.code(),
        }
    }
}

/// A running venue connection and the book it feeds.
pub struct Venue {
    name: &'static str,
    broker: Arc<SimBroker>,
    venue: Arc<Mutex<SimVenue>>,
    book: Arc<Mutex<LiveBook>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Venue {
    /// Builds the demo scenario for `seed` and connects to it.
    pub async fn start_sim(seed: u64) -> Result<Self, VenueError> {
        let scenario = Scenario::demo(seed);
        let broker = Arc::new(SimBroker::new(scenario.venue()?, scenario.speed));
        let venue = broker.venue();
        broker.connect().await?;
        let mut book = LiveBook::new();
        book.replace_positions(broker.positions().await?);
        book.apply(&tradeguard_model::BrokerEvent::Account(
            broker.account().await?,
        ));
        broker.subscribe_quotes(&scenario.instruments()).await?;
        tracing::info!(
            seed,
            positions = book.position_count(),
            "connected to the simulated venue"
        );
        Ok(Self {
            name: "sim",
            broker,
            venue,
            book: Arc::new(Mutex::new(book)),
        })
    }

    /// Simulator only: assign (short) or exercise (long) `contracts` of an option position now,
    /// delivered as the broker would overnight: a position change with no execution.
    pub fn force_assignment(&self, instrument: &str, contracts: i64) -> Result<(), VenueError> {
        let id = tradeguard_model::InstrumentId::new(instrument);
        self.broker.force_assignment(&id, contracts)?;
        tracing::warn!(instrument, contracts, "simulator: assignment forced by the user");
        Ok(())
    }

    /// The venue's clock (virtual on the simulator).
    pub fn now(&self) -> Timestamp {
        lock(&self.venue).now()
    }

    pub fn portfolio(&self) -> PortfolioView {
        let now = self.now();
        view::portfolio(self.name, &lock(&self.book), now, STALE_AFTER)
    }

    /// Logs every position whose mark went bad (warn) or recovered (info), once per change.
    fn log_mark_transitions(&self) {
        let now = self.now();
        for t in lock(&self.book).mark_transitions(now, STALE_AFTER) {
            let (account, instrument) = (t.account.as_str(), t.instrument.as_str());
            match t.to {
                MarkStatus::Fresh => {
                    tracing::info!(account, instrument, from = ?t.from, "position mark recovered")
                }
                MarkStatus::Stale => tracing::warn!(
                    account,
                    instrument,
                    "position mark is stale: its quote is older than {STALE_AFTER:?}"
                ),
                MarkStatus::Missing => tracing::warn!(
                    account,
                    instrument,
                    "position has no usable quote: P&L and rules use no mark for it"
                ),
            }
        }
    }

    /// Folds broker events into the book and pushes throttled updates to the UI. Runs until
    /// the broker's event stream ends.
    pub async fn pump(self: Arc<Self>, app: tauri::AppHandle) {
        let mut events = self.broker.events();
        let mut tick = tokio::time::interval(EMIT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = true;
        let report_marks_from = tokio::time::Instant::now() + QUOTE_GRACE;
        loop {
            tokio::select! {
                ev = events.next() => {
                    let Some(ev) = ev else {
                        tracing::error!("venue event stream ended; live updates stopped");
                        return;
                    };
                    dirty |= lock(&self.book).apply(&ev);
                }
                _ = tick.tick() => {
                    if tokio::time::Instant::now() >= report_marks_from {
                        self.log_mark_transitions();
                    }
                    if dirty {
                        dirty = false;
                        if let Err(e) = PortfolioChanged(self.portfolio()).emit(&app) {
                            tracing::warn!(error = %e, "portfolio update not delivered to the UI");
                        }
                    }
                }
            }
        }
    }
}
