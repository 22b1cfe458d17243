//! Test rig for the durable-journal and exposure-monitor tests: a real [`Store`] in a temp
//! dir, an engine started on any [`Journal`], and [`WrappedBroker`], a SimBroker wrapper that
//! can (a) hand out order ids from a restarted counter (a gateway restart) and (b) hold back
//! the executions and position events of one instrument (IB's execDetails lagging orderStatus).
#![allow(dead_code)]

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tradeguard_engine::{
    EngineConfig, EngineDeps, ExecutionCoordinator, IntrinsicStressModel, Journal, StoreJournal,
    TokioClock,
};
use tradeguard_model::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, ComboOrder, EventStream,
    Execution, Instrument, MarginImpact, OpenOrder, OrderId, OrderRequest, Position, Timestamp,
    stubs,
};
use tradeguard_sim::SimBroker;
use tradeguard_store::{Store, StoreConfig};

/// A database path in a fresh temp dir (the dir lives as long as the value).
pub struct TempDb {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn temp_db() -> TempDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tradeguard.db");
    TempDb { _dir: dir, path }
}

pub fn open_store(path: &Path) -> Store {
    Store::open(StoreConfig::new(path)).expect("open store")
}

/// The venue's current time (engines started later in a test must agree with the venue).
pub fn venue_now(b: &SimBroker) -> Timestamp {
    b.venue().lock().expect("venue lock").now()
}

/// A StoreJournal on `store` with a clock reading `now` at this instant.
pub fn store_journal(store: &Store, now: Timestamp) -> StoreJournal {
    StoreJournal::new(store, Arc::new(TokioClock::new(now)), stubs::account())
}

/// Starts an engine on `broker` and `journal`, its clock reading `now` at this instant.
pub async fn start_on(
    broker: Arc<dyn Broker>,
    journal: Arc<dyn Journal>,
    cfg: EngineConfig,
    now: Timestamp,
) -> ExecutionCoordinator {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert(
        "SPY".into(),
        tradeguard_model::Price::parse("500").expect("price"),
    );
    ExecutionCoordinator::start(EngineDeps {
        broker,
        journal,
        clock: Arc::new(TokioClock::new(now)),
        risk: Box::new(risk),
        config: cfg,
    })
    .await
    .expect("engine starts")
}

/// A SimBroker with test faults layered on top.
pub struct WrappedBroker {
    inner: Arc<SimBroker>,
    /// `Some(next)`: `next_order_id` answers from this counter instead of the venue's.
    restarted_ids: Option<AtomicI64>,
    /// Executions and position events of this instrument reach subscribers this much later.
    hold_back: Option<(Instrument, Duration)>,
    /// Position events of these instruments are lost until this time (a dropped stream).
    lose: Option<(Vec<Instrument>, tokio::time::Instant)>,
    /// Position events of this instrument sent in the window reach subscribers this much later
    /// (IB reports each contract's position as its own message, seconds apart); later ones
    /// stay behind them (one contract's updates keep their order).
    late_positions: Option<LatePositions>,
    /// Added to every positions snapshot (a broker whose positions disagree with its fills).
    phantom: Option<(Position, tokio::time::Instant)>,
    /// Cancels fail (not connected) until this time.
    failing_cancels: Option<tokio::time::Instant>,
    /// Open-orders requests time out in this window.
    silent_open_orders: Option<(tokio::time::Instant, tokio::time::Instant)>,
}

#[derive(Clone)]
struct LatePositions {
    instrument: Instrument,
    delay: Duration,
    from: tokio::time::Instant,
    until: tokio::time::Instant,
}

impl WrappedBroker {
    pub fn new(inner: Arc<SimBroker>) -> Self {
        Self {
            inner,
            restarted_ids: None,
            hold_back: None,
            lose: None,
            late_positions: None,
            phantom: None,
            failing_cancels: None,
            silent_open_orders: None,
        }
    }

    /// Every open-orders request from `from` until `until` times out (a gateway too busy to
    /// answer).
    pub fn with_silent_open_orders(
        mut self,
        from: tokio::time::Instant,
        until: tokio::time::Instant,
    ) -> Self {
        self.silent_open_orders = Some((from, until));
        self
    }

    /// Every cancel fails as not connected until `until` (the link dropped as they went out).
    pub fn with_failing_cancels(mut self, until: tokio::time::Instant) -> Self {
        self.failing_cancels = Some(until);
        self
    }

    /// Every positions snapshot from `from` on also lists `p` (merged into the instrument's
    /// quantity).
    pub fn with_phantom_position(mut self, p: Position, from: tokio::time::Instant) -> Self {
        self.phantom = Some((p, from));
        self
    }

    /// Position events of `instrument` sent between `from` and `until` are delivered `delay`
    /// late; every later event of it queues behind them (per-contract order is kept).
    pub fn with_late_positions(
        mut self,
        instrument: Instrument,
        delay: Duration,
        from: tokio::time::Instant,
        until: tokio::time::Instant,
    ) -> Self {
        self.late_positions = Some(LatePositions {
            instrument,
            delay,
            from,
            until,
        });
        self
    }

    /// Position events of `instruments` never reach subscribers until `until` (the broker's
    /// snapshots still show the positions).
    pub fn with_lost_positions(
        mut self,
        instruments: Vec<Instrument>,
        until: tokio::time::Instant,
    ) -> Self {
        self.lose = Some((instruments, until));
        self
    }

    /// Order ids start again at `first` (the gateway forgot the ids it handed out).
    pub fn with_restarted_ids(mut self, first: i64) -> Self {
        self.restarted_ids = Some(AtomicI64::new(first));
        self
    }

    /// Executions and position events of `instrument` are delivered `delay` late.
    pub fn with_held_back_fills(mut self, instrument: Instrument, delay: Duration) -> Self {
        self.hold_back = Some((instrument, delay));
        self
    }
}

fn held(ev: &BrokerEvent, inst: &Instrument) -> bool {
    match ev {
        BrokerEvent::Execution(e) => &e.instrument == inst,
        BrokerEvent::Position(p) => &p.instrument == inst,
        _ => false,
    }
}

/// `inner` through one FIFO delay line: an event `delay_of` gives a time goes out then (in
/// order behind the ones already waiting), every other event at once.
fn delayed(
    mut inner: EventStream,
    mut delay_of: impl FnMut(&BrokerEvent) -> Option<tokio::time::Instant> + Send + 'static,
) -> EventStream {
    let (out, rx) = futures::channel::mpsc::unbounded::<BrokerEvent>();
    let (late_tx, mut late_rx) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, BrokerEvent)>();
    let direct = out.clone();
    tokio::spawn(async move {
        while let Some(ev) = inner.next().await {
            let sent = match delay_of(&ev) {
                Some(at) => late_tx.send((at, ev)).is_ok(),
                None => direct.unbounded_send(ev).is_ok(),
            };
            if !sent {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((at, ev)) = late_rx.recv().await {
            tokio::time::sleep_until(at).await;
            if out.unbounded_send(ev).is_err() {
                return;
            }
        }
    });
    Box::pin(rx)
}

/// The stream with [`LatePositions`] applied: the instrument's position events through the
/// delay line (late inside the window, never ahead of an earlier one), everything else direct.
fn late_positions(inner: EventStream, late: LatePositions) -> EventStream {
    let mut last = tokio::time::Instant::now();
    delayed(inner, move |ev| match ev {
        BrokerEvent::Position(p) if p.instrument == late.instrument => {
            let now = tokio::time::Instant::now();
            let at = if now >= late.from && now < late.until {
                now + late.delay
            } else {
                now
            };
            last = last.max(at);
            Some(last)
        }
        _ => None,
    })
}

#[async_trait::async_trait]
impl Broker for WrappedBroker {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn connection(&self) -> Option<tradeguard_model::ConnectionState> {
        self.inner.connection()
    }
    async fn connect(&self) -> Result<(), BrokerError> {
        self.inner.connect().await
    }
    async fn disconnect(&self) -> Result<(), BrokerError> {
        self.inner.disconnect().await
    }
    fn events(&self) -> EventStream {
        let inner = self.inner.events();
        if let Some((lost, until)) = self.lose.clone() {
            return Box::pin(inner.filter(move |ev| {
                let gone = tokio::time::Instant::now() < until
                    && matches!(ev, BrokerEvent::Position(p) if lost.contains(&p.instrument));
                futures::future::ready(!gone)
            }));
        }
        if let Some(late) = self.late_positions.clone() {
            return late_positions(inner, late);
        }
        let Some((inst, delay)) = self.hold_back.clone() else {
            return inner;
        };
        // Equal delays keep the held events in their original order.
        delayed(inner, move |ev| {
            held(ev, &inst).then(|| tokio::time::Instant::now() + delay)
        })
    }
    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        match &self.restarted_ids {
            Some(n) => Ok(OrderId(n.fetch_add(1, Ordering::SeqCst))),
            None => self.inner.next_order_id().await,
        }
    }
    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError> {
        self.inner.place(order).await
    }
    async fn place_combo(&self, order: &ComboOrder) -> Result<(), BrokerError> {
        self.inner.place_combo(order).await
    }
    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError> {
        if self
            .failing_cancels
            .is_some_and(|until| tokio::time::Instant::now() < until)
        {
            return Err(BrokerError::NotConnected);
        }
        self.inner.cancel(id).await
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        let mut ps = self.inner.positions().await?;
        if let Some((extra, from)) = &self.phantom
            && tokio::time::Instant::now() >= *from
        {
            match ps.iter_mut().find(|p| p.instrument == extra.instrument) {
                Some(p) => p.qty += extra.qty,
                None => ps.push(extra.clone()),
            }
            ps.retain(|p| p.qty != 0);
        }
        Ok(ps)
    }
    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        if self.silent_open_orders.is_some_and(|(from, until)| {
            let now = tokio::time::Instant::now();
            from <= now && now < until
        }) {
            return Err(BrokerError::Timeout("open_orders".into()));
        }
        self.inner.open_orders().await
    }
    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        self.inner.executions_since(since).await
    }
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        self.inner.account().await
    }
    async fn what_if(&self, order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        self.inner.what_if(order).await
    }
    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError> {
        self.inner.subscribe_quotes(instruments).await
    }
}
