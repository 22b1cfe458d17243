//! Tradeguard domain model: the shared vocabulary of every other crate.
//!
//! No I/O and no async runtime here. Money and prices are fixed point ([`Price`], [`Money`],
//! 4 implied decimals); quantities are signed `i64` (+ long, − short); time is a [`Timestamp`]
//! read from a [`Clock`]. Brokers (IB, the simulator) implement the async [`Broker`] trait and
//! report everything that happens as a [`BrokerEvent`].

pub mod account;
pub mod broker;
pub mod chain;
pub mod clock;
pub mod event;
pub mod fill;
pub mod futures;
#[cfg(feature = "hub")]
pub mod hub;
pub mod ids;
pub mod instrument;
pub mod leg;
pub mod money;
pub mod occ;
pub mod order;
pub mod position;
pub mod quote;
pub mod recognition;
pub mod strategy;
#[cfg(any(test, feature = "stubs"))]
pub mod stubs;

pub use account::{AccountSnapshot, MarginImpact};
pub use broker::{Broker, BrokerError, Capabilities, EventStream, OpenOrder, OpenOrderKind};
pub use chain::ChainListing;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock, TimeError, Timestamp};
pub use event::{BrokerEvent, ConnectionState, Notice};
pub use fill::{Execution, Liquidity};
pub use ids::{AccountId, ExecId, GroupId, InstrumentId, OrderId, StrategyId};
pub use instrument::{ExerciseStyle, Instrument, OptionClass, OptionContract, Right};
pub use leg::{Leg, LegRole};
pub use money::{Money, MoneyError, Price, SCALE};
pub use occ::OccError;
pub use order::{
    ComboLeg, ComboOrder, OrderError, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side,
    StatusReason, Tif, Trail,
};
pub use position::Position;
pub use quote::{Greeks, Quote};
pub use recognition::{Recognition, recognize};
pub use strategy::{BrokenReason, Strategy, StrategyError, StrategyKind, StrategyState};
