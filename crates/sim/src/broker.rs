//! [`SimBroker`]: the async [`Broker`] adapter over [`SimVenue`].
//!
//! A driver task advances the venue against tokio time at a [`Speed`] multiplier and
//! broadcasts its events. Because it reads `tokio::time::Instant`, a test under
//! `#[tokio::test(start_paused = true)]` runs deterministically and instantly. The venue is
//! behind a `std::sync::Mutex` that is never held across an await; a poisoned lock is
//! recovered (the venue's state is consistent between calls).

use crate::error::SimError;
use crate::venue::SimVenue;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tradeguard_model::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, Clock, ComboOrder,
    ConnectionState, EventStream, Execution, Instrument, InstrumentId, MarginImpact, Notice,
    OpenOrder, OrderId, OrderRequest, Position, Price, Timestamp,
};

/// How fast virtual time runs relative to (tokio) wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Speed {
    /// 1×.
    RealTime,
    /// 10×.
    X10,
    /// 60×.
    X60,
    /// Any integer multiplier.
    Multiplier(u32),
    /// Steps of one virtual minute back to back, yielding between them.
    AsFastAsPossible,
}

impl Speed {
    /// Virtual seconds per wall second; `None` when the venue runs as fast as it can.
    pub fn factor(self) -> Option<u32> {
        match self {
            Self::RealTime => Some(1),
            Self::X10 => Some(10),
            Self::X60 => Some(60),
            Self::Multiplier(m) => Some(m.max(1)),
            Self::AsFastAsPossible => None,
        }
    }
}

/// Wall-time interval between driver steps at finite speeds.
pub const DRIVER_INTERVAL: Duration = Duration::from_millis(100);
/// Broadcast buffer per subscriber; a subscriber further behind gets an events-dropped notice.
pub const EVENT_BUFFER: usize = 8192;

/// Reads the venue's virtual time.
struct VenueClock(Arc<Mutex<SimVenue>>);

impl Clock for VenueClock {
    fn now(&self) -> Timestamp {
        lock(&self.0).now()
    }
}

/// The simulated broker.
pub struct SimBroker {
    venue: Arc<Mutex<SimVenue>>,
    tx: broadcast::Sender<BrokerEvent>,
    speed: Speed,
    driver: Mutex<Option<JoinHandle<()>>>,
}

fn lock(v: &Mutex<SimVenue>) -> MutexGuard<'_, SimVenue> {
    v.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimBroker {
    /// Wraps a venue. The driver starts on the first [`Broker::connect`].
    pub fn new(venue: SimVenue, speed: Speed) -> Self {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            venue: Arc::new(Mutex::new(venue)),
            tx,
            speed,
            driver: Mutex::new(None),
        }
    }

    /// Shared handle to the venue (tests, demo controls).
    pub fn venue(&self) -> Arc<Mutex<SimVenue>> {
        self.venue.clone()
    }

    /// The venue's virtual clock as a [`Clock`]: what the engine should read for timestamps
    /// and market hours while it runs against this venue (it advances with the driver).
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(VenueClock(self.venue.clone()))
    }

    /// Demo/test hook: assign or exercise `contracts` of an option position now.
    pub fn force_assignment(
        &self,
        instrument: &InstrumentId,
        contracts: i64,
    ) -> Result<(), SimError> {
        lock(&self.venue).force_assignment(instrument, contracts)
    }

    /// Moves `symbol`'s price by `bps` basis points now (a gap: the demo's "what if the market
    /// falls"); its options requote from the new price. Returns the new price.
    pub fn move_market(&self, symbol: &str, bps: i64) -> Result<Price, SimError> {
        let mut v = lock(&self.venue);
        let spot = v
            .spot(symbol)
            .ok_or_else(|| SimError::UnknownUnderlying(symbol.to_owned()))?;
        let to = spot.mul_ratio(10_000 + bps, 10_000)?;
        v.set_spot(symbol, to)?;
        Ok(to)
    }

    fn start_driver(&self) {
        let mut d = self
            .driver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if d.is_some() {
            return;
        }
        let venue = self.venue.clone();
        let tx = self.tx.clone();
        let speed = self.speed;
        *d = Some(tokio::spawn(async move {
            let wall0 = tokio::time::Instant::now();
            let virt0 = lock(&venue).now();
            loop {
                let events = match speed.factor() {
                    Some(f) => {
                        tokio::time::sleep(DRIVER_INTERVAL).await;
                        let elapsed = wall0.elapsed().saturating_mul(f);
                        lock(&venue).step(virt0.plus(elapsed))
                    }
                    None => {
                        tokio::task::yield_now().await;
                        let mut v = lock(&venue);
                        let until = v.now().plus(Duration::from_secs(60));
                        v.step(until)
                    }
                };
                for ev in events {
                    // Err only means nobody is subscribed right now.
                    let _ = tx.send(ev);
                }
            }
        }));
    }
}

impl Drop for SimBroker {
    fn drop(&mut self) {
        if let Some(h) = self
            .driver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            h.abort();
        }
    }
}

#[async_trait::async_trait]
impl Broker for SimBroker {
    fn name(&self) -> &str {
        "sim"
    }

    fn connection(&self) -> Option<ConnectionState> {
        Some(if lock(&self.venue).is_connected() {
            ConnectionState::Connected
        } else {
            ConnectionState::Disconnected {
                reason: "sim: not connected".into(),
            }
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_combos: true,
            what_if: true,
            trailing_stops: true,
            outside_rth: true,
            simulated: true,
        }
    }

    async fn connect(&self) -> Result<(), BrokerError> {
        lock(&self.venue).connect();
        self.start_driver();
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), BrokerError> {
        lock(&self.venue).disconnect();
        Ok(())
    }

    fn events(&self) -> EventStream {
        let rx = self.tx.subscribe();
        let venue = self.venue.clone();
        futures::stream::unfold((rx, venue), |(mut rx, venue)| async move {
            match rx.recv().await {
                Ok(ev) => Some((ev, (rx, venue))),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let ts: Timestamp = lock(&venue).now();
                    let text =
                        format!("subscriber lagged: {n} events dropped; resync from snapshots");
                    Some((
                        BrokerEvent::Notice(Notice {
                            code: Notice::EVENTS_DROPPED,
                            text,
                            ts,
                        }),
                        (rx, venue),
                    ))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    }

    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        lock(&self.venue).next_order_id()
    }

    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError> {
        lock(&self.venue).place(order)
    }

    async fn place_combo(&self, order: &ComboOrder) -> Result<(), BrokerError> {
        lock(&self.venue).place_combo(order)
    }

    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError> {
        lock(&self.venue).cancel(id)
    }

    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        lock(&self.venue).positions()
    }

    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        lock(&self.venue).open_orders()
    }

    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        lock(&self.venue).executions_since(since)
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        lock(&self.venue).account()
    }

    async fn what_if(&self, order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        lock(&self.venue).what_if(order).map(Some)
    }

    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError> {
        lock(&self.venue).subscribe_quotes(instruments)
    }

    async fn option_chain(
        &self,
        underlying: &str,
    ) -> Result<tradeguard_model::ChainListing, BrokerError> {
        lock(&self.venue)
            .listing(underlying)
            .map_err(|e| BrokerError::Rejected {
                code: e.code().to_owned(),
                reason: e.to_string(),
            })
    }
}
