//! Test builders: a no-op [`Broker`] (benchmarks, gate tests) and ready-made intents.

use crate::intent::{OrderIntent, Purpose};
use std::sync::atomic::{AtomicI64, Ordering};
use tradeguard_model::{
    AccountSnapshot, Broker, BrokerError, BrokerEvent, Capabilities, ComboOrder, EventStream,
    ExecId, Execution, Instrument, MarginImpact, Money, OpenOrder, OrderId, OrderRequest,
    OrderStatus, OrderType, OrderUpdate, Position, Price, Side, Timestamp, stubs,
};

/// A broker that accepts everything at once. With `fill`, every single order is reported
/// filled at its limit (or 1.00) right away; otherwise it never reports anything.
#[derive(Debug)]
pub struct NoopBroker {
    next: AtomicI64,
    exec: AtomicI64,
    fill: bool,
    tx: tokio::sync::broadcast::Sender<BrokerEvent>,
    positions: std::sync::Mutex<Vec<Position>>,
}

impl NoopBroker {
    /// A broker that never reports anything.
    pub fn silent() -> Self {
        Self::new(false)
    }

    /// A broker that fills every single order immediately.
    pub fn filling() -> Self {
        Self::new(true)
    }

    /// Reports `ev` to every subscriber, as a venue would.
    pub fn emit(&self, ev: BrokerEvent) {
        let _ = self.tx.send(ev);
    }

    fn new(fill: bool) -> Self {
        let (tx, _) = tokio::sync::broadcast::channel(65_536);
        Self {
            next: AtomicI64::new(0),
            exec: AtomicI64::new(0),
            fill,
            tx,
            positions: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// What `positions()` answers from now on (nothing until set).
    pub fn set_positions(&self, positions: Vec<Position>) {
        *self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = positions;
    }
}

#[async_trait::async_trait]
impl Broker for NoopBroker {
    fn name(&self) -> &str {
        "noop"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_combos: false,
            what_if: false,
            trailing_stops: false,
            outside_rth: false,
            simulated: true,
        }
    }
    async fn connect(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn disconnect(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    fn events(&self) -> EventStream {
        let rx = self.tx.subscribe();
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        Ok(OrderId(self.next.fetch_add(1, Ordering::Relaxed) + 1))
    }
    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError> {
        if self.fill {
            let price = match order.order_type {
                OrderType::Limit { limit } | OrderType::StopLimit { limit, .. } => limit,
                _ => Price::from_raw(tradeguard_model::SCALE),
            };
            let n = self.exec.fetch_add(1, Ordering::Relaxed);
            let _ = self.tx.send(BrokerEvent::Execution(Execution {
                exec_id: ExecId(format!("noop-{n}")),
                order_id: Some(order.id),
                account: order.account.clone(),
                instrument: order.instrument.clone(),
                side: order.side,
                qty: order.qty,
                price,
                ts: stubs::ts(),
                commission: None,
                liquidity: None,
            }));
            let _ = self.tx.send(BrokerEvent::OrderStatus(OrderUpdate {
                order_id: order.id,
                status: OrderStatus::Filled,
                filled: order.qty,
                remaining: 0,
                avg_fill_price: Some(price),
                reason: None,
                ts: stubs::ts(),
            }));
        }
        Ok(())
    }
    async fn place_combo(&self, _order: &ComboOrder) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn cancel(&self, _id: OrderId) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        Ok(self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError> {
        Ok(Vec::new())
    }
    async fn executions_since(&self, _since: Timestamp) -> Result<Vec<Execution>, BrokerError> {
        Ok(Vec::new())
    }
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let big = Money::from_raw(10_000_000 * tradeguard_model::SCALE);
        Ok(AccountSnapshot {
            account: stubs::account(),
            net_liquidation: big,
            maintenance_margin: Money::ZERO,
            initial_margin: Money::ZERO,
            excess_liquidity: big,
            buying_power: big,
            ts: stubs::ts(),
        })
    }
    async fn what_if(&self, _order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError> {
        Ok(None)
    }
    async fn subscribe_quotes(&self, _instruments: &[Instrument]) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// A one-lot SPY iron condor open (440/430 puts, 460/470 calls, stub expiry), market legs.
pub fn iron_condor_open(qty: i64) -> OrderIntent {
    OrderIntent::new(Purpose::Open, stubs::account())
        .leg(stubs::put(440), Side::Sell, qty, OrderType::Market)
        .leg(stubs::put(430), Side::Buy, qty, OrderType::Market)
        .leg(stubs::call(460), Side::Sell, qty, OrderType::Market)
        .leg(stubs::call(470), Side::Buy, qty, OrderType::Market)
}

/// The production guard (`enforce::Guard` with its default configuration and the default
/// assignment settings) on `broker`, as the app and `tradeguard guard` start it, for tests,
/// benchmarks and simulations: an in-memory journal, the intrinsic stress model with a fallback
/// spot per watched symbol, a recording notifier.
pub async fn production_guard(
    broker: std::sync::Arc<dyn Broker>,
    clock: std::sync::Arc<dyn tradeguard_model::Clock>,
    hours: std::sync::Arc<dyn crate::assignment::MarketHours>,
    spots: &[(&str, &str)],
    enforce: crate::enforce::EnforceConfig,
    evaluator: Box<dyn crate::enforce::RuleEvaluator>,
) -> Result<crate::enforce::Guard, crate::enforce::EnforceError> {
    let mut risk = crate::IntrinsicStressModel::default();
    for (s, p) in spots {
        if let Ok(p) = Price::parse(p) {
            risk.fallback_spots.insert((*s).into(), p);
        }
    }
    crate::enforce::Guard::start(crate::enforce::GuardDeps {
        relay: None,
        broker,
        journal: std::sync::Arc::new(crate::MemoryJournal::new()),
        clock,
        risk: Box::new(risk),
        engine: crate::EngineConfig {
            watch_symbols: spots.iter().map(|(s, _)| (*s).to_owned()).collect(),
            ..crate::EngineConfig::default()
        },
        enforce,
        evaluator,
        hours,
        backstops: Vec::new(),
        notifier: std::sync::Arc::new(crate::assignment::RecordingNotifier::new()),
        assignment: crate::assignment::AssignmentConfig::default(),
    })
    .await
}
