//! Typed errors for every bad input the pricing crate can see. Each variant has a stable `code()`.

use thiserror::Error;

/// Every way a pricing, margin, stress or payoff call can refuse its input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PricingError {
    /// A numeric input is NaN or infinite.
    #[error("field `{field}` is not a finite number ({value})")]
    NotFinite { field: &'static str, value: f64 },
    /// A numeric input is negative (or zero where a positive value is required).
    #[error("field `{field}` must be {requirement}, got {value}")]
    OutOfRange {
        field: &'static str,
        requirement: &'static str,
        value: f64,
    },
    /// An option type string that is neither call nor put.
    #[error("unknown option type `{0}` (expected call or put)")]
    UnknownOptionType(String),
    /// Target price below the no-arbitrage lower bound (intrinsic value).
    #[error("price {price} is below the lower bound {bound} (intrinsic value)")]
    PriceBelowIntrinsic { price: f64, bound: f64 },
    /// Target price at or above the no-arbitrage upper bound.
    #[error("price {price} is at or above the upper bound {bound}")]
    PriceAboveUpperBound { price: f64, bound: f64 },
    /// The implied-vol solver did not converge (should not happen for in-bounds prices).
    #[error("implied volatility did not converge (price {price})")]
    ImpliedVolNoConvergence { price: f64 },
    /// A numerical method could not produce a finite result for these inputs.
    #[error("{method} produced a non-finite result")]
    Numerical { method: &'static str },
    /// Discrete dividends: a dividend date outside (0, t] or a negative amount.
    #[error("dividend {index}: {reason}")]
    BadDividend { index: usize, reason: &'static str },
    /// A margin position needs the underlying price for a rule but it is missing.
    #[error("underlying price is required to margin {what}")]
    MissingUnderlyingPrice { what: &'static str },
    /// A money value does not fit the fixed-point range.
    #[error("field `{field}` value {value} is outside the supported money range")]
    MoneyOverflow { field: &'static str, value: f64 },
    /// A position with no legs and no stock.
    #[error("position is empty")]
    EmptyPosition,
    /// Quantity zero on a leg.
    #[error("leg {index}: quantity must not be zero")]
    ZeroQuantity { index: usize },
    /// Bad stress / scan configuration.
    #[error("bad grid: {0}")]
    BadGrid(&'static str),
}

impl PricingError {
    /// Stable machine-readable code for this error (never changes once published).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFinite { .. } => "pricing.not_finite",
            Self::OutOfRange { field, .. } => match *field {
                "strike" => "pricing.bad_strike",
                "spot" | "forward" => "pricing.bad_underlying",
                "t" | "days" => "pricing.bad_time",
                "vol" => "pricing.bad_vol",
                "price" => "pricing.bad_price",
                "multiplier" => "margin.bad_multiplier",
                "premium" => "margin.bad_premium",
                _ => "pricing.out_of_range",
            },
            Self::UnknownOptionType(_) => "pricing.unknown_option_type",
            Self::PriceBelowIntrinsic { .. } => "iv.below_intrinsic",
            Self::PriceAboveUpperBound { .. } => "iv.above_upper_bound",
            Self::ImpliedVolNoConvergence { .. } => "iv.no_convergence",
            Self::Numerical { .. } => "pricing.numerical",
            Self::BadDividend { .. } => "pricing.bad_dividend",
            Self::MissingUnderlyingPrice { .. } => "margin.missing_underlying_price",
            Self::MoneyOverflow { .. } => "margin.money_overflow",
            Self::EmptyPosition => "margin.empty_position",
            Self::ZeroQuantity { .. } => "margin.zero_quantity",
            Self::BadGrid(_) => "stress.bad_grid",
        }
    }

    /// The input field this error is about, when there is one (for CLI messages).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::NotFinite { field, .. }
            | Self::OutOfRange { field, .. }
            | Self::MoneyOverflow { field, .. } => Some(field),
            Self::UnknownOptionType(_) => Some("type"),
            Self::PriceBelowIntrinsic { .. } | Self::PriceAboveUpperBound { .. } => Some("price"),
            Self::BadDividend { .. } => Some("dividends"),
            Self::MissingUnderlyingPrice { .. } => Some("underlying.price"),
            Self::ZeroQuantity { .. } => Some("qty"),
            _ => None,
        }
    }
}

/// Check that `value` is finite.
pub(crate) fn finite(field: &'static str, value: f64) -> Result<f64, PricingError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(PricingError::NotFinite { field, value })
    }
}

/// Check that `value` is finite and `>= 0`.
pub(crate) fn non_negative(field: &'static str, value: f64) -> Result<f64, PricingError> {
    finite(field, value)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(PricingError::OutOfRange {
            field,
            requirement: "non-negative",
            value,
        })
    }
}

/// Check that `value` is finite and `> 0`.
pub(crate) fn positive(field: &'static str, value: f64) -> Result<f64, PricingError> {
    finite(field, value)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(PricingError::OutOfRange {
            field,
            requirement: "positive",
            value,
        })
    }
}
