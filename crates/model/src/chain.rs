//! The options a venue lists on one underlying: its expiries and strikes (IB answers this with
//! `reqSecDefOptParams`; the simulator with its own listing). Quotes and Greeks are not here:
//! the guard subscribes the contracts it shows and reads them from its one live book.

use crate::instrument::{ExerciseStyle, Instrument, OptionClass, OptionContract, Right};
use crate::money::Price;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The listed options of one underlying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainListing {
    /// Underlying symbol (the OCC root of its options).
    pub underlying: String,
    /// Shares per contract.
    pub multiplier: u32,
    /// Exercise style of the listed options.
    pub style: ExerciseStyle,
    /// Margin class.
    pub class: OptionClass,
    /// Listed expiries (last trading days), ascending.
    pub expiries: Vec<NaiveDate>,
    /// Listed strikes, ascending.
    pub strikes: Vec<Price>,
}

impl ChainListing {
    /// The listed contract at `expiry`, `right`, `strike`; `None` when it is not listed.
    pub fn contract(&self, expiry: NaiveDate, right: Right, strike: Price) -> Option<Instrument> {
        if !self.expiries.contains(&expiry) || self.strikes.binary_search(&strike).is_err() {
            return None;
        }
        Some(Instrument::Option(OptionContract {
            underlying: self.underlying.clone(),
            expiry,
            right,
            strike,
            multiplier: self.multiplier,
            style: self.style,
            class: self.class,
        }))
    }

    /// The `count` strikes nearest `spot` (fewer when fewer are listed), ascending.
    pub fn strikes_around(&self, spot: Price, count: usize) -> &[Price] {
        let n = self.strikes.len();
        if count >= n {
            return &self.strikes;
        }
        let at = self.strikes.partition_point(|k| *k < spot);
        let start = at.saturating_sub(count / 2).min(n - count);
        &self.strikes[start..start + count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::SCALE;

    fn listing() -> ChainListing {
        ChainListing {
            underlying: "SPY".into(),
            multiplier: 100,
            style: ExerciseStyle::American,
            class: OptionClass::Equity,
            expiries: vec![NaiveDate::from_ymd_opt(2026, 12, 18).expect("date")],
            strikes: (400..=500)
                .step_by(5)
                .map(|k| Price::from_raw(k * SCALE))
                .collect(),
        }
    }

    #[test]
    fn only_listed_contracts_are_made() {
        let l = listing();
        let d = l.expiries[0];
        assert!(
            l.contract(d, Right::Put, Price::from_raw(445 * SCALE))
                .is_some()
        );
        assert!(
            l.contract(d, Right::Put, Price::from_raw(446 * SCALE))
                .is_none()
        );
        assert!(
            l.contract(
                d.succ_opt().expect("d"),
                Right::Put,
                Price::from_raw(445 * SCALE)
            )
            .is_none()
        );
    }

    #[test]
    fn the_window_centres_on_the_price_and_stays_inside_the_listing() {
        let l = listing();
        let w = l.strikes_around(Price::from_raw(451 * SCALE), 4);
        assert_eq!(w, &l.strikes[9..13]);
        assert_eq!(w[0], Price::from_raw(445 * SCALE));
        assert_eq!(
            l.strikes_around(Price::from_raw(SCALE), 3),
            &l.strikes[0..3]
        );
        assert_eq!(
            l.strikes_around(Price::from_raw(900 * SCALE), 3),
            &l.strikes[18..21]
        );
        assert_eq!(
            l.strikes_around(Price::from_raw(450 * SCALE), 100).len(),
            21
        );
    }
}
