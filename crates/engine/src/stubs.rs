//! Test builders: a no-op [`Broker`] (benchmarks, gate tests) and ready-made intents.

use crate::intent::{OrderIntent, Purpose};
use std::sync::atomic::{AtomicI64, Ordering};
use tradeguard_model::{
    AccountSnapshot, Broker, BrokerError, Capabilities, ComboOrder, EventStream, Execution,
    Instrument, MarginImpact, Money, OpenOrder, OrderId, OrderRequest, OrderType, Position, Side,
    Timestamp, stubs,
};

/// A broker that accepts everything, reports nothing and never fills (for overhead benches).
#[derive(Debug, Default)]
pub struct NoopBroker {
    next: AtomicI64,
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
        Box::pin(futures::stream::pending())
    }
    async fn next_order_id(&self) -> Result<OrderId, BrokerError> {
        Ok(OrderId(self.next.fetch_add(1, Ordering::Relaxed) + 1))
    }
    async fn place(&self, _order: &OrderRequest) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn place_combo(&self, _order: &ComboOrder) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn cancel(&self, _id: OrderId) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn positions(&self) -> Result<Vec<Position>, BrokerError> {
        Ok(Vec::new())
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
