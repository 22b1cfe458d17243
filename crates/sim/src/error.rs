//! Simulator-specific errors (broker-facing calls return [`tradeguard_model::BrokerError`]).

use tradeguard_model::{InstrumentId, MoneyError};

/// Errors of simulator-only operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No position in this instrument.
    #[error("no position in {0}")]
    NoPosition(InstrumentId),
    /// The instrument is not an option.
    #[error("{0} is not an option")]
    NotAnOption(InstrumentId),
    /// The option's underlying is not simulated.
    #[error("unknown underlying {0}")]
    UnknownUnderlying(String),
    /// Fixed-point overflow.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Contract count must be > 0.
    #[error("contract count must be > 0, got {0}")]
    BadCount(i64),
    /// The side an order needs has no market.
    #[error("no market on the side needed for {0}")]
    NoMarket(InstrumentId),
}

impl SimError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoPosition(_) => "sim.no_position",
            Self::NotAnOption(_) => "sim.not_an_option",
            Self::UnknownUnderlying(_) => "sim.unknown_underlying",
            Self::Money(e) => e.code(),
            Self::BadCount(_) => "sim.bad_count",
            Self::NoMarket(_) => "sim.no_market",
        }
    }
}
