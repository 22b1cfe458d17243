//! tradeguard-sim: the simulated broker venue (the embedded default broker).
//!
//! [`SimVenue`] is a deterministic, synchronous core: a seeded ChaCha RNG, virtual time, a
//! market calendar, GBM-with-jumps underlyings, Black-Scholes option quotes, order matching,
//! exercise/assignment and fault injection. Same [`SimConfig`] (seed included) and same calls
//! ⇒ the identical [`BrokerEvent`](tradeguard_model::BrokerEvent) sequence.
//! [`SimBroker`] is a thin async adapter implementing [`tradeguard_model::Broker`] that drives
//! the venue against tokio time at a [`Speed`] multiplier. [`Scenario::demo`] builds the
//! `make run` demo account.

pub mod broker;
mod bs;
pub mod calendar;
pub mod config;
pub mod error;
mod ledger;
mod market;
mod outbox;
pub mod scenario;
pub mod venue;

pub use broker::{SimBroker, Speed};
pub use config::{
    AssignmentConfig, DeliveryReport, FaultConfig, MarketConfig, MatchingConfig,
    ScheduledAssignment, SimConfig, UnderlyingSpec,
};
pub use error::SimError;
pub use scenario::Scenario;
pub use venue::SimVenue;
