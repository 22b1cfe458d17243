//! Plain pricing inputs and outputs (f64 is right inside pricing models). The engine adapts its
//! model legs to these; nothing here depends on `tradeguard-model`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{PricingError, finite, non_negative, positive};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionType {
    Call,
    Put,
}

impl OptionType {
    /// +1 for calls, -1 for puts (the `phi` of the textbook formulas).
    #[inline]
    pub fn sign(self) -> f64 {
        match self {
            Self::Call => 1.0,
            Self::Put => -1.0,
        }
    }

    /// Payoff at exercise for underlying `s` and strike `k`.
    #[inline]
    pub fn intrinsic(self, s: f64, k: f64) -> f64 {
        match self {
            Self::Call => (s - k).max(0.0),
            Self::Put => (k - s).max(0.0),
        }
    }
}

impl FromStr for OptionType {
    type Err = PricingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "call" | "c" => Ok(Self::Call),
            "put" | "p" => Ok(Self::Put),
            _ => Err(PricingError::UnknownOptionType(s.to_string())),
        }
    }
}

/// Inputs of a Black-Scholes-Merton option on a spot with continuous dividend yield.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BsmInputs {
    pub kind: OptionType,
    pub spot: f64,
    pub strike: f64,
    /// Time to expiry in years (days/365 for listed options).
    pub t: f64,
    /// Continuously compounded risk-free rate.
    pub r: f64,
    /// Continuously compounded dividend yield.
    pub q: f64,
    /// Black-Scholes volatility (0.20 = 20%).
    pub vol: f64,
}

impl BsmInputs {
    /// Reject NaN/infinite values, non-positive spot or strike, negative time or vol.
    pub fn validate(&self) -> Result<(), PricingError> {
        positive("spot", self.spot)?;
        positive("strike", self.strike)?;
        non_negative("t", self.t)?;
        finite("r", self.r)?;
        finite("q", self.q)?;
        non_negative("vol", self.vol)?;
        Ok(())
    }

    /// Same option with a different spot.
    #[inline]
    pub fn with_spot(self, spot: f64) -> Self {
        Self { spot, ..self }
    }

    /// Same option with a different volatility.
    #[inline]
    pub fn with_vol(self, vol: f64) -> Self {
        Self { vol, ..self }
    }
}

/// Inputs of a Black-76 option on a forward/future.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Black76Inputs {
    pub kind: OptionType,
    pub forward: f64,
    pub strike: f64,
    pub t: f64,
    pub r: f64,
    pub vol: f64,
}

impl Black76Inputs {
    /// Reject NaN/infinite values, non-positive forward or strike, negative time or vol.
    pub fn validate(&self) -> Result<(), PricingError> {
        positive("forward", self.forward)?;
        positive("strike", self.strike)?;
        non_negative("t", self.t)?;
        finite("r", self.r)?;
        non_negative("vol", self.vol)?;
        Ok(())
    }
}

/// Price and Greeks of a BSM option. Units: vega per 1.00 vol, theta per year of calendar time
/// (negative = decay), rho and dividend rho per 1.00 change in r / q.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Greeks {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
    pub dividend_rho: f64,
    pub d1: f64,
    pub d2: f64,
}

/// Price and Greeks of a Black-76 option: delta/gamma with respect to the forward, theta with the
/// forward held fixed, rho = -t * price (forward held fixed).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Black76Greeks {
    pub price: f64,
    pub delta_forward: f64,
    pub gamma_forward: f64,
    pub vega: f64,
    pub theta: f64,
    pub rho: f64,
    pub d1: f64,
    pub d2: f64,
}

/// A discrete cash dividend paid at time `t` (years from now).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CashDividend {
    pub t: f64,
    pub amount: f64,
}
