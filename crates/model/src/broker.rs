//! The [`Broker`] trait every venue adapter (IB, simulator) implements, its capabilities
//! and its typed errors.

use crate::account::{AccountSnapshot, MarginImpact};
use crate::chain::ChainListing;
use crate::clock::Timestamp;
use crate::event::{BrokerEvent, ConnectionState};
use crate::fill::Execution;
use crate::ids::OrderId;
use crate::instrument::Instrument;
use crate::order::{ComboOrder, OrderError, OrderRequest, OrderUpdate};
use crate::position::Position;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

/// A stream of broker events for one subscriber. A subscriber that falls behind receives a
/// [`crate::Notice`] with code [`crate::Notice::EVENTS_DROPPED`] instead of silently losing events.
pub type EventStream = Pin<Box<dyn Stream<Item = BrokerEvent> + Send>>;

/// What a broker supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Multi-leg orders are filled as one package by the venue.
    pub native_combos: bool,
    /// [`Broker::what_if`] returns margin impact.
    pub what_if: bool,
    /// Trailing stops are held at the venue.
    pub trailing_stops: bool,
    /// Orders may fill outside regular trading hours.
    pub outside_rth: bool,
    /// This is a simulated venue (no real money).
    pub simulated: bool,
}

/// An order the broker still knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "order", rename_all = "snake_case")]
pub enum OpenOrderKind {
    /// A single-instrument order.
    Single(OrderRequest),
    /// A combo order.
    Combo(ComboOrder),
}

/// An open order with its latest status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrder {
    /// The order as placed.
    pub order: OpenOrderKind,
    /// Latest status.
    pub status: OrderUpdate,
}

/// Broker call failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// Not connected.
    #[error("not connected")]
    NotConnected,
    /// The broker refused the request.
    #[error("rejected ({code}): {reason}")]
    Rejected {
        /// Broker code.
        code: String,
        /// Broker text.
        reason: String,
    },
    /// The order id is not known.
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    /// Not supported by this broker.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// No answer in time.
    #[error("timeout waiting for {0}")]
    Timeout(String),
    /// Transport failure.
    #[error("i/o error: {0}")]
    Io(String),
    /// The order failed local validation.
    #[error("invalid order: {0}")]
    InvalidOrder(#[from] OrderError),
}

impl BrokerError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConnected => "broker.not_connected",
            Self::Rejected { .. } => "broker.rejected",
            Self::UnknownOrder(_) => "broker.unknown_order",
            Self::Unsupported(_) => "broker.unsupported",
            Self::Timeout(_) => "broker.timeout",
            Self::Io(_) => "broker.io",
            Self::InvalidOrder(_) => "broker.invalid_order",
        }
    }
}

/// A brokerage connection. All methods are cheap to call concurrently.
///
/// Order placement and cancellation return once the request is accepted for sending; the
/// outcome (submitted, filled, cancelled, rejected) arrives as [`BrokerEvent`]s.
#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// Display name ("sim", "ib").
    fn name(&self) -> &str;
    /// Supported features.
    fn capabilities(&self) -> Capabilities;
    /// Connects (idempotent).
    async fn connect(&self) -> Result<(), BrokerError>;
    /// Disconnects (idempotent).
    async fn disconnect(&self) -> Result<(), BrokerError>;
    /// A new subscriber stream of all events from now on.
    fn events(&self) -> EventStream;
    /// The connection's state as last reported on the event stream (`None`: the adapter does
    /// not track it). A subscriber that came after the connect starts from this, not from
    /// "unknown".
    fn connection(&self) -> Option<ConnectionState> {
        None
    }
    /// Reserves the next order id.
    async fn next_order_id(&self) -> Result<OrderId, BrokerError>;
    /// Places a single order.
    async fn place(&self, order: &OrderRequest) -> Result<(), BrokerError>;
    /// Places a combo order.
    async fn place_combo(&self, order: &ComboOrder) -> Result<(), BrokerError>;
    /// Requests cancellation; the confirmation (or a fill) arrives as an event.
    async fn cancel(&self, id: OrderId) -> Result<(), BrokerError>;
    /// Current positions (non-zero).
    async fn positions(&self) -> Result<Vec<Position>, BrokerError>;
    /// Orders that are not terminal.
    async fn open_orders(&self) -> Result<Vec<OpenOrder>, BrokerError>;
    /// Executions at or after `since`.
    async fn executions_since(&self, since: Timestamp) -> Result<Vec<Execution>, BrokerError>;
    /// Current account values.
    async fn account(&self) -> Result<AccountSnapshot, BrokerError>;
    /// Margin impact of an order without placing it; `None` if the broker cannot tell.
    async fn what_if(&self, order: &OrderRequest) -> Result<Option<MarginImpact>, BrokerError>;
    /// Starts quote events for these instruments.
    async fn subscribe_quotes(&self, instruments: &[Instrument]) -> Result<(), BrokerError>;
    /// The options listed on `underlying` (expiries and strikes). A venue that cannot list
    /// them says so ([`BrokerError::Unsupported`]).
    async fn option_chain(&self, underlying: &str) -> Result<ChainListing, BrokerError> {
        Err(BrokerError::Unsupported(format!(
            "{} does not list option chains yet (asked for {underlying})",
            self.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct() {
        let errs = [
            BrokerError::NotConnected,
            BrokerError::Rejected {
                code: "201".into(),
                reason: "margin".into(),
            },
            BrokerError::UnknownOrder(OrderId(1)),
            BrokerError::Unsupported("x".into()),
            BrokerError::Timeout("x".into()),
            BrokerError::Io("x".into()),
            BrokerError::InvalidOrder(OrderError::EmptyCombo),
        ];
        let mut codes: Vec<_> = errs.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errs.len());
    }

    // The trait must stay object safe: the app holds `Arc<dyn Broker>`.
    #[allow(dead_code)]
    fn object_safe(_: &dyn Broker) {}
}
