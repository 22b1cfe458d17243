//! [`Book`]: the engine's view of positions and marks, and the unhedged-exposure measure
//! ([`Book::naked_shorts`]) shared by the interim exposure monitor, the emergency hedge manager
//! and recovery.
//!
//! Positions start from the broker's snapshot and then move with every execution (deduplicated
//! by exec id in the engine). A `Position` event is applied as-is only when no engine order is
//! working in that instrument (assignments, manual trades); the periodic reconciliation of the
//! enforcement layer repairs any remaining drift (broker wins).

use std::collections::BTreeMap;
use tradeguard_model::{Instrument, InstrumentId, Price, Quote, Right};

/// Key of the unhedged-exposure measure: underlying symbol and option right.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ExposureKey {
    /// Underlying symbol (OCC root).
    pub underlying: String,
    /// Call or put.
    pub right: Right,
}

/// Positions and marks.
#[derive(Debug, Clone, Default)]
pub struct Book {
    positions: BTreeMap<InstrumentId, (Instrument, i64)>,
    marks: BTreeMap<InstrumentId, Price>,
    spots: BTreeMap<String, Price>,
    /// Implied vol from the broker's option Greeks, when sent.
    ivs: BTreeMap<InstrumentId, f64>,
    /// Half the quoted bid-ask spread, per unit.
    half_spreads: BTreeMap<InstrumentId, Price>,
}

impl Book {
    /// Empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Signed quantity held in `id` (0 if none).
    pub fn qty(&self, id: &InstrumentId) -> i64 {
        self.positions.get(id).map_or(0, |(_, q)| *q)
    }

    /// Sets the quantity of an instrument (broker snapshot / position event).
    pub fn set(&mut self, instrument: &Instrument, qty: i64) {
        let id = instrument.id();
        if qty == 0 {
            self.positions.remove(&id);
        } else {
            self.positions.insert(id, (instrument.clone(), qty));
        }
    }

    /// Adds a signed fill quantity.
    pub fn apply(&mut self, instrument: &Instrument, signed_qty: i64) {
        let q = self.qty(&instrument.id()).saturating_add(signed_qty);
        self.set(instrument, q);
    }

    /// Non-zero positions.
    pub fn positions(&self) -> impl Iterator<Item = (&Instrument, i64)> {
        self.positions.values().map(|(i, q)| (i, *q))
    }

    /// Records a quote: the instrument's mid as its mark, and the underlying price (stock mid,
    /// or the option quote's underlying price) as the symbol's spot.
    pub fn on_quote(&mut self, q: &Quote) {
        let id = q.instrument.id();
        // A one-sided market (no bid, or no data for a side) marks at its last trade, or keeps
        // the mark it had.
        let Some(mid) = q.mid().or(q.last) else {
            if let Some(iv) = q
                .greeks
                .map(|g| g.iv)
                .filter(|iv| iv.is_finite() && *iv > 0.0)
            {
                self.ivs.insert(id, iv);
            }
            return;
        };
        if let Some(iv) = q
            .greeks
            .map(|g| g.iv)
            .filter(|iv| iv.is_finite() && *iv > 0.0)
        {
            self.ivs.insert(id.clone(), iv);
        }
        if let Some((bid, ask)) = q.two_sided().filter(|(b, a)| a >= b && b.is_positive()) {
            let spread = ask.checked_sub(bid).unwrap_or(Price::ZERO);
            self.half_spreads
                .insert(id.clone(), spread.mul_ratio(1, 2).unwrap_or(spread));
        }
        self.marks.insert(id, mid);
        match (&q.instrument, q.underlying_price) {
            (Instrument::Stock { symbol }, _) => {
                self.spots.insert(symbol.clone(), mid);
            }
            (Instrument::Option(o), Some(u)) => {
                self.spots.insert(o.underlying.clone(), u);
            }
            _ => {}
        }
    }

    /// Sets a mark directly (tests, recovery).
    pub fn set_mark(&mut self, id: InstrumentId, px: Price) {
        self.marks.insert(id, px);
    }

    /// Sets an underlying price directly (tests, recovery).
    pub fn set_spot(&mut self, symbol: &str, px: Price) {
        self.spots.insert(symbol.to_owned(), px);
    }

    /// Last mark of an instrument.
    pub fn mark(&self, id: &InstrumentId) -> Option<Price> {
        self.marks.get(id).copied()
    }

    /// Implied vol of an option from its last quote's Greeks.
    pub fn iv(&self, id: &InstrumentId) -> Option<f64> {
        self.ivs.get(id).copied()
    }

    /// Half the last quoted bid-ask spread of an instrument.
    pub fn half_spread(&self, id: &InstrumentId) -> Option<Price> {
        self.half_spreads.get(id).copied()
    }

    /// Last underlying price of a symbol.
    pub fn spot(&self, symbol: &str) -> Option<Price> {
        self.spots.get(symbol).copied()
    }

    /// Naked short option contracts per (underlying, right) of the whole book
    /// ([`naked_shorts_in`]).
    pub fn naked_shorts(&self) -> BTreeMap<ExposureKey, i64> {
        naked_shorts_in(self.positions.values().map(|(i, q)| (i, *q)))
    }

    /// Short option instruments of a key, most negative first, then by id (deterministic).
    pub fn shorts_of(&self, key: &ExposureKey) -> Vec<(Instrument, i64)> {
        let mut v: Vec<(Instrument, i64)> = self
            .positions
            .values()
            .filter(|(i, q)| {
                *q < 0
                    && i.as_option()
                        .is_some_and(|o| o.underlying == key.underlying && o.right == key.right)
            })
            .map(|(i, q)| (i.clone(), *q))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id().cmp(&b.0.id())));
        v
    }
}

/// Naked short option contracts per (underlying, right) of `positions`: short contracts not covered by
/// long contracts of the same underlying and right (any strike or expiry — the spread's
/// width bounds the risk) or, for calls, by long shares (one contract per `multiplier`
/// shares). Keys with no naked contracts are omitted.
pub fn naked_shorts_in<'a>(
    positions: impl IntoIterator<Item = (&'a Instrument, i64)>,
) -> BTreeMap<ExposureKey, i64> {
    let mut shorts: BTreeMap<ExposureKey, (i64, i64, u32)> = BTreeMap::new();
    let mut shares: BTreeMap<&str, i64> = BTreeMap::new();
    for (inst, qty) in positions {
        match inst {
            Instrument::Option(o) => {
                let e = shorts
                    .entry(ExposureKey {
                        underlying: o.underlying.clone(),
                        right: o.right,
                    })
                    .or_insert((0, 0, o.multiplier));
                if qty < 0 {
                    e.0 = e.0.saturating_add(qty.saturating_neg());
                } else {
                    e.1 = e.1.saturating_add(qty);
                }
            }
            Instrument::Stock { symbol } => {
                *shares.entry(symbol.as_str()).or_insert(0) += qty;
            }
            Instrument::Future { .. } => {}
        }
    }
    shorts
        .into_iter()
        .filter_map(|(k, (short, long, mult))| {
            let stock_cover = if k.right == Right::Call {
                let s = shares.get(k.underlying.as_str()).copied().unwrap_or(0);
                (s.max(0)) / i64::from(mult.max(1))
            } else {
                0
            };
            let naked = short
                .saturating_sub(long)
                .saturating_sub(stock_cover)
                .max(0);
            (naked > 0).then_some((k, naked))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    fn key(right: Right) -> ExposureKey {
        ExposureKey {
            underlying: "SPY".into(),
            right,
        }
    }

    #[test]
    fn naked_shorts_count_uncovered_contracts() {
        let mut b = Book::new();
        b.set(&stubs::put(440), -2);
        b.set(&stubs::put(430), 1);
        b.set(&stubs::call(460), -3);
        assert_eq!(b.naked_shorts().get(&key(Right::Put)), Some(&1));
        assert_eq!(b.naked_shorts().get(&key(Right::Call)), Some(&3));
        // 250 shares cover two calls.
        b.set(&Instrument::stock("SPY"), 250);
        assert_eq!(b.naked_shorts().get(&key(Right::Call)), Some(&1));
        b.apply(&stubs::put(430), 1);
        assert_eq!(b.naked_shorts().get(&key(Right::Put)), None);
        assert_eq!(b.shorts_of(&key(Right::Call))[0].1, -3);
        b.apply(&stubs::call(460), 3);
        assert!(b.naked_shorts().is_empty());
        assert_eq!(b.qty(&stubs::call(460).id()), 0);
    }
}
