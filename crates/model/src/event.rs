//! [`BrokerEvent`]: everything a broker reports, as one enum.

use crate::account::AccountSnapshot;
use crate::clock::Timestamp;
use crate::fill::Execution;
use crate::order::OrderUpdate;
use crate::position::Position;
use crate::quote::Quote;
use serde::{Deserialize, Serialize};

/// Connection state of a broker session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connecting or reconnecting.
    Connecting,
    /// Connected and data flowing.
    Connected,
    /// Disconnected.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Connected per the socket, but no data arrived for `silent_ms` (detected by the watcher).
    Stalled {
        /// Milliseconds without data.
        silent_ms: u64,
    },
}

/// Informational or warning message from the broker (IB error codes ≥ 2000 are notices).
/// The subscriber stream also uses it to report dropped events (code [`Notice::EVENTS_DROPPED`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Broker code.
    pub code: i32,
    /// Human-readable text.
    pub text: String,
    /// When.
    pub ts: Timestamp,
}

impl Notice {
    /// Code used when a lagging subscriber missed events; the text says how many.
    pub const EVENTS_DROPPED: i32 = -1001;
    /// Code used when the venue corrected a fill it already reported (a new price or
    /// quantity): the fill is not counted twice; positions must be re-read from the venue.
    pub const EXECUTION_CORRECTED: i32 = -1002;
    /// Code used when the venue gives no live market data for an instrument (not subscribed,
    /// delayed data only, its data farm down): quotes for it stop or never start, so P&L
    /// marks and quote-triggered stops on it go stale. The text names the instrument and why.
    pub const MARKET_DATA_UNAVAILABLE: i32 = -1003;
    /// Code used when the venue dropped requests unprocessed (IB's pacing, 100): an order just
    /// sent may never have reached it. The adapter reconciles; orders it finds nowhere end as
    /// [`StatusReason::ORDER_LOST`](crate::StatusReason::ORDER_LOST).
    pub const REQUESTS_DROPPED: i32 = -1004;
    /// Code used when the venue's outcome of orders cannot be known after a reconnect (not
    /// listed, and an order of ours it lists could not be matched): a person must look.
    pub const ORDER_OUTCOME_UNKNOWN: i32 = -1005;
}

/// Anything a broker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum BrokerEvent {
    /// Order status change.
    OrderStatus(OrderUpdate),
    /// A fill.
    Execution(Execution),
    /// A position changed (also sent for assignment/exercise, which have no execution).
    Position(Position),
    /// Account values changed.
    Account(AccountSnapshot),
    /// Market data.
    Quote(Quote),
    /// Connection state changed.
    Connection(ConnectionState),
    /// Broker notice / warning.
    Notice(Notice),
}

impl BrokerEvent {
    /// Short name of the variant (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OrderStatus(_) => "order_status",
            Self::Execution(_) => "execution",
            Self::Position(_) => "position",
            Self::Account(_) => "account",
            Self::Quote(_) => "quote",
            Self::Connection(_) => "connection",
            Self::Notice(_) => "notice",
        }
    }
}
