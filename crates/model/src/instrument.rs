//! Instruments: stock, equity/index options and futures, with their canonical [`InstrumentId`].

use crate::ids::InstrumentId;
use crate::money::Price;
use crate::occ;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Right {
    /// Right to buy.
    Call,
    /// Right to sell.
    Put,
}

/// When an option may be exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExerciseStyle {
    /// Any day up to expiry (equity options).
    American,
    /// Only at expiry (most index options).
    European,
}

/// Option class, which drives Reg T margin rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OptionClass {
    /// Options on a single stock or ETF.
    Equity,
    /// Broad-based index options (SPX, NDX, RUT ...).
    BroadIndex,
    /// Narrow-based index options.
    NarrowIndex,
}

/// A listed option contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OptionContract {
    /// OCC root / underlying symbol (e.g. "SPY", "SPXW").
    pub underlying: String,
    /// Last trading day.
    pub expiry: NaiveDate,
    /// Call or put.
    pub right: Right,
    /// Strike price.
    pub strike: Price,
    /// Shares per contract (100 for standard equity options).
    pub multiplier: u32,
    /// Exercise style.
    pub style: ExerciseStyle,
    /// Margin class.
    pub class: OptionClass,
}

impl OptionContract {
    /// A standard American equity option with multiplier 100.
    pub fn equity(underlying: &str, expiry: NaiveDate, right: Right, strike: Price) -> Self {
        Self {
            underlying: underlying.to_owned(),
            expiry,
            right,
            strike,
            multiplier: 100,
            style: ExerciseStyle::American,
            class: OptionClass::Equity,
        }
    }

    /// Intrinsic value per share given the underlying price (never negative).
    pub fn intrinsic(&self, underlying: Price) -> Price {
        let v = match self.right {
            Right::Call => underlying.raw().saturating_sub(self.strike.raw()),
            Right::Put => self.strike.raw().saturating_sub(underlying.raw()),
        };
        Price::from_raw(v.max(0))
    }
}

/// A tradable instrument.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Instrument {
    /// Common stock or ETF.
    Stock {
        /// Ticker.
        symbol: String,
    },
    /// Equity or index option.
    Option(OptionContract),
    /// Futures contract.
    Future {
        /// Root symbol (e.g. "ES").
        symbol: String,
        /// Expiry date.
        expiry: NaiveDate,
        /// Contract multiplier (e.g. 50 for ES).
        multiplier: u32,
    },
}

impl Instrument {
    /// A price increment every venue takes for a limit near `at`: US equity options trade in
    /// 0.01, 0.05 or 0.10 by class and price, so 0.05 under $3 and 0.10 from $3 is valid in
    /// every class; a future its product's tick (0.01 when the root is unknown); stock 0.01.
    pub fn safe_tick(&self, at: Price) -> Price {
        match self {
            Self::Future { symbol, .. } => {
                crate::futures::spec(symbol).map_or(Price::from_raw(100), |s| s.tick)
            }
            Self::Option(_) if at < Price::from_raw(30_000) => Price::from_raw(500),
            Self::Option(_) => Price::from_raw(1_000),
            Self::Stock { .. } => Price::from_raw(100),
        }
    }

    /// A stock by ticker.
    pub fn stock(symbol: &str) -> Self {
        Self::Stock {
            symbol: symbol.to_owned(),
        }
    }

    /// How a person reads it, the one format of every screen, alert and log line:
    /// `SPY 21MAR25 590 P`, `SPY 21MAR25 440.5 C`, `SPY` for stock, the id for futures.
    pub fn label(&self) -> String {
        match self {
            Self::Option(o) => {
                let right = match o.right {
                    Right::Call => "C",
                    Right::Put => "P",
                };
                let expiry = o.expiry.format("%d%b%y").to_string().to_uppercase();
                let strike = o.strike.to_string();
                let strike = if strike.contains('.') {
                    strike.trim_end_matches('0').trim_end_matches('.')
                } else {
                    &strike
                };
                format!("{} {expiry} {strike} {right}", o.underlying)
            }
            other => other.id().as_str().to_owned(),
        }
    }

    /// Parses an OCC option symbol (padded or compact) into an option instrument.
    pub fn from_occ(s: &str) -> Result<Self, occ::OccError> {
        occ::parse(s).map(Self::Option)
    }

    /// Canonical id: padded OCC symbol for options (`"SPY   250117P00440000"`), the ticker
    /// for stock, `"ES 20250321 FUT"` for futures. An option whose strike cannot be written in
    /// OCC form (more than 3 decimals or ≥ 100 000) gets `"ROOT YYYYMMDD P 440.0005"` instead.
    pub fn id(&self) -> InstrumentId {
        match self {
            Self::Stock { symbol } => InstrumentId(symbol.clone()),
            Self::Option(o) => InstrumentId(occ::format(o).unwrap_or_else(|_| {
                let r = match o.right {
                    Right::Call => 'C',
                    Right::Put => 'P',
                };
                format!(
                    "{} {} {} {}",
                    o.underlying,
                    o.expiry.format("%Y%m%d"),
                    r,
                    o.strike
                )
            })),
            Self::Future { symbol, expiry, .. } => {
                InstrumentId(format!("{} {} FUT", symbol, expiry.format("%Y%m%d")))
            }
        }
    }

    /// Cash multiplier: 1 for stock, the contract multiplier otherwise.
    pub fn multiplier(&self) -> u32 {
        match self {
            Self::Stock { .. } => 1,
            Self::Option(o) => o.multiplier,
            Self::Future { multiplier, .. } => *multiplier,
        }
    }

    /// Underlying symbol: the ticker for stock, the root for options and futures.
    pub fn underlying(&self) -> &str {
        match self {
            Self::Stock { symbol } | Self::Future { symbol, .. } => symbol,
            Self::Option(o) => &o.underlying,
        }
    }

    /// The option contract, if this is an option.
    pub fn as_option(&self) -> Option<&OptionContract> {
        match self {
            Self::Option(o) => Some(o),
            _ => None,
        }
    }

    /// Expiry date for options and futures.
    pub fn expiry(&self) -> Option<NaiveDate> {
        match self {
            Self::Stock { .. } => None,
            Self::Option(o) => Some(o.expiry),
            Self::Future { expiry, .. } => Some(*expiry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn ids_and_multipliers() {
        let o = Instrument::Option(OptionContract::equity(
            "SPY",
            d(2025, 1, 17),
            Right::Put,
            Price::from_units(440).unwrap(),
        ));
        assert_eq!(o.id().as_str(), "SPY   250117P00440000");
        assert_eq!(o.multiplier(), 100);
        assert_eq!(Instrument::stock("SPY").id().as_str(), "SPY");
        assert_eq!(Instrument::stock("SPY").multiplier(), 1);
        let f = Instrument::Future {
            symbol: "ES".into(),
            expiry: d(2025, 3, 21),
            multiplier: 50,
        };
        assert_eq!(f.id().as_str(), "ES 20250321 FUT");
        assert_eq!(f.multiplier(), 50);
    }

    #[test]
    fn unrepresentable_strike_gets_fallback_id() {
        let o = Instrument::Option(OptionContract::equity(
            "SPY",
            d(2025, 1, 17),
            Right::Call,
            Price::from_raw(4_400_005),
        ));
        assert_eq!(o.id().as_str(), "SPY 20250117 C 440.0005");
    }

    #[test]
    fn intrinsic_values() {
        let c = OptionContract::equity(
            "X",
            d(2025, 1, 17),
            Right::Call,
            Price::from_units(100).unwrap(),
        );
        let p = OptionContract {
            right: Right::Put,
            ..c.clone()
        };
        let s = Price::from_units(103).unwrap();
        assert_eq!(c.intrinsic(s), Price::from_units(3).unwrap());
        assert_eq!(p.intrinsic(s), Price::ZERO);
    }

    #[test]
    fn serde_round_trip() {
        let o = Instrument::from_occ("SPY250117P00440000").unwrap();
        let j = serde_json::to_string(&o).unwrap();
        assert!(j.contains("\"type\":\"option\""), "{j}");
        assert_eq!(serde_json::from_str::<Instrument>(&j).unwrap(), o);
    }
}
