//! Tradeguard pricing: European BSM / Black-76 with Greeks, American options (QD+ fixed point,
//! binomial fallback, discrete cash dividends), implied volatility, Reg T strategy-based margin,
//! portfolio-margin style scans, worst-case stress grids and payoff curves.
//!
//! Inputs are this crate's own plain types (f64 inside the models); margin money is fixed-point.

pub mod american;
pub mod chain;
pub mod error;
pub mod european;
pub mod normal;
pub mod stubs;
pub mod types;

pub use american::{AmericanMethod, american_greeks, american_price, cash_dividend_price};
pub use error::PricingError;
pub use european::{black76, bsm};
pub use types::{Black76Greeks, Black76Inputs, BsmInputs, CashDividend, Greeks, OptionType};
pub mod implied;
pub mod margin;
pub mod payoff;
pub mod preview;
pub mod risk_leg;
pub mod scan;
pub mod stress;

pub use implied::implied_vol;
pub use margin::{MarginPosition, MarginResult, MarginRules, reg_t_margin};
pub use payoff::payoff_curve;
pub use risk_leg::{Instrument, RiskLeg};
pub use scan::{ProductClass, ScanConfig, pm_scan};
pub use stress::{StressConfig, StressResult, stress_grid};
