//! The leg description shared by stress grids, portfolio-margin scans and payoff curves: one
//! option or underlying position with its own market inputs.

use crate::error::{PricingError, finite, non_negative, positive};
use crate::types::OptionType;

/// What a risk leg holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instrument {
    /// An option; `american` floors the model value at intrinsic in shocked scenarios.
    Option {
        kind: OptionType,
        strike: f64,
        /// Years to expiry.
        t: f64,
        /// Implied volatility of this leg.
        vol: f64,
        american: bool,
    },
    /// Shares (or a future/ETF treated one-for-one with the underlying).
    Underlying,
}

/// One position used by the stress grid, the PM scan and the payoff curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskLeg {
    pub instrument: Instrument,
    /// Price of this leg's underlying now.
    pub spot: f64,
    pub r: f64,
    pub q: f64,
    /// Signed quantity (contracts for options, shares for the underlying).
    pub qty: i64,
    /// Shares per contract (100 for US equity options; 1 for shares).
    pub multiplier: f64,
    /// Half the bid-ask spread per share; `None` uses max($0.05, 2% of the model mark).
    pub half_spread: Option<f64>,
    /// Price paid/received per share at entry (payoff curves only); `None` uses the model mark.
    pub entry_price: Option<f64>,
}

impl RiskLeg {
    /// Reject bad inputs; `index` names the leg in errors.
    pub fn validate(&self) -> Result<(), PricingError> {
        positive("spot", self.spot)?;
        finite("r", self.r)?;
        finite("q", self.q)?;
        positive("multiplier", self.multiplier)?;
        if let Some(h) = self.half_spread {
            non_negative("half_spread", h)?;
        }
        if let Some(p) = self.entry_price {
            non_negative("entry_price", p)?;
        }
        if let Instrument::Option { strike, t, vol, .. } = self.instrument {
            positive("strike", strike)?;
            non_negative("t", t)?;
            non_negative("vol", vol)?;
        }
        Ok(())
    }

    /// Model value per share at underlying `spot`, vol scaled by `vol_mult`, time `t_shift` years later.
    #[inline]
    pub fn value_per_share(&self, spot: f64, vol_mult: f64, t_shift: f64) -> f64 {
        match self.instrument {
            Instrument::Underlying => spot,
            Instrument::Option {
                kind,
                strike,
                t,
                vol,
                american,
            } => {
                let rem = (t - t_shift).max(0.0);
                let euro = crate::european::bsm_price_unchecked(
                    kind,
                    spot,
                    strike,
                    rem,
                    self.r,
                    self.q,
                    vol * vol_mult,
                );
                if american {
                    euro.max(kind.intrinsic(spot, strike))
                } else {
                    euro
                }
            }
        }
    }

    /// Default half spread: max($0.05, 2% of mid) per share.
    pub fn effective_half_spread(&self, mark: f64) -> f64 {
        self.half_spread.unwrap_or_else(|| (0.02 * mark).max(0.05))
    }
}
