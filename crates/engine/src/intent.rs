//! Order intents (what a caller asks the coordinator to do) and the legging plan: the
//! priority score of each leg and the tiers it is sent in.
//!
//! Scores (higher goes first; a tier is every leg with the same score):
//! - **+100** protective: buying back a short, or buying an option whose underlying and right
//!   match a short in the book or a sell in the same intent.
//! - **+50** hedge: another buy that offsets shorts (long stock against short calls, a long
//!   option of the other right next to shorts of the same underlying).
//! - **0** neutral: everything else (e.g. selling a long that protects nothing).
//! - **−50** covered short / protection sale: selling an option covered by a long of the same
//!   underlying and right (book or intent), or selling a long that still protects a short in
//!   the book (exits sell protection only after the shorts are bought back).
//! - **−100** naked short: selling to open with no cover.

use crate::book::Book;
use crate::error::IntentError;
use serde::{Deserialize, Serialize};
use tradeguard_model::{
    AccountId, Instrument, OrderId, OrderRequest, OrderType, Price, Side, StrategyId, Tif,
};

/// Why an order is sent. Drives the gate (what passes in REDUCING / HALTED) and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Purpose {
    /// Open or increase a position.
    Open,
    /// Normal close of a strategy or position.
    Close,
    /// Close everything of an account / strategy (enforcement).
    Flatten,
    /// Emergency exit (assignment guard, forced unwind): passes HALTED and Broken strategies.
    Emergency,
    /// Hedge sent by the emergency hedge manager.
    Hedge,
    /// Exit sent by the hybrid stop-loss.
    StopLoss,
}

/// One leg of an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegIntent {
    /// What to trade.
    pub instrument: Instrument,
    /// Buy or sell.
    pub side: Side,
    /// Quantity, > 0.
    pub qty: i64,
    /// Order type used when the leg is sent on its own.
    pub order_type: OrderType,
}

impl LegIntent {
    /// Signed quantity (+ buy, − sell).
    pub fn signed_qty(&self) -> i64 {
        self.side.sign().saturating_mul(self.qty)
    }
}

/// A request to the coordinator. Single-leg orders are groups of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderIntent {
    /// Why.
    pub purpose: Purpose,
    /// Account.
    pub account: AccountId,
    /// Strategy the order belongs to, if any.
    pub strategy: Option<StrategyId>,
    /// Legs (distinct instruments).
    pub legs: Vec<LegIntent>,
    /// Net limit per combo unit for the native-combo path (negative = credit); `None` = market.
    pub net_limit: Option<Price>,
    /// Time in force.
    pub tif: Tif,
    /// Let the legs fill outside regular trading hours (stock in pre-market; venues ignore it
    /// for options). Applies to single-leg orders; default `false`.
    #[serde(default)]
    pub outside_rth: bool,
    /// A caller's tag for this intent, journaled with its group, so the caller can find the
    /// group — and the broker order ids it used — again after a restart (the assignment guard
    /// resumes an interrupted emergency close this way). Not sent to the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
    /// How long each leg's order may work unfilled before it is cancelled (the group then ends
    /// once the broker confirms the cancel); `None`: the engine's `leg_timeout`. The hybrid exit
    /// gives its limit orders 2 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_timeout: Option<std::time::Duration>,
}

impl OrderIntent {
    /// An intent without legs; add them with [`OrderIntent::leg`].
    pub fn new(purpose: Purpose, account: AccountId) -> Self {
        Self {
            purpose,
            account,
            strategy: None,
            legs: Vec::new(),
            net_limit: None,
            tif: Tif::Day,
            outside_rth: false,
            client_ref: None,
            leg_timeout: None,
        }
    }

    /// Adds a leg.
    pub fn leg(
        mut self,
        instrument: Instrument,
        side: Side,
        qty: i64,
        order_type: OrderType,
    ) -> Self {
        self.legs.push(LegIntent {
            instrument,
            side,
            qty,
            order_type,
        });
        self
    }

    /// Sets the strategy.
    pub fn for_strategy(mut self, s: StrategyId) -> Self {
        self.strategy = Some(s);
        self
    }

    /// Lets the (single-leg) orders fill outside regular trading hours.
    pub fn with_outside_rth(mut self, outside_rth: bool) -> Self {
        self.outside_rth = outside_rth;
        self
    }

    /// Tags the intent (see [`OrderIntent::client_ref`]).
    pub fn with_client_ref(mut self, r: impl Into<String>) -> Self {
        self.client_ref = Some(r.into());
        self
    }

    /// Sets the combo net limit.
    pub fn with_net_limit(mut self, p: Price) -> Self {
        self.net_limit = Some(p);
        self
    }

    /// Checks legs: at least one, positive quantities, distinct instruments, valid prices.
    pub fn validate(&self) -> Result<(), IntentError> {
        if self.legs.is_empty() {
            return Err(IntentError::NoLegs);
        }
        for (i, l) in self.legs.iter().enumerate() {
            if l.qty <= 0 {
                return Err(IntentError::NonPositiveQty {
                    instrument: l.instrument.id(),
                    qty: l.qty,
                });
            }
            if self.legs[..i].iter().any(|p| p.instrument == l.instrument) {
                return Err(IntentError::DuplicateLeg(l.instrument.id()));
            }
            self.order_for(l, OrderId(0))
                .validate()
                .map_err(|e| IntentError::BadLeg {
                    instrument: l.instrument.id(),
                    reason: format!("{e} ({})", e.code()),
                })?;
        }
        Ok(())
    }

    /// The single order that sends `leg` with broker id `id`.
    pub fn order_for(&self, leg: &LegIntent, id: OrderId) -> OrderRequest {
        OrderRequest {
            id,
            account: self.account.clone(),
            instrument: leg.instrument.clone(),
            side: leg.side,
            qty: leg.qty,
            order_type: leg.order_type,
            tif: self.tif,
            outside_rth: self.outside_rth,
        }
    }

    /// `true` when every leg only reduces an existing position (never flips or opens).
    pub fn is_reducing(&self, book: &Book) -> bool {
        self.legs.iter().all(|l| leg_reduces(l, book))
    }
}

/// `true` when the leg trades against an existing position and does not exceed it.
pub fn leg_reduces(l: &LegIntent, book: &Book) -> bool {
    let pos = book.qty(&l.instrument.id());
    let s = l.signed_qty();
    pos != 0 && pos.signum() == -s.signum() && s.unsigned_abs() <= pos.unsigned_abs()
}

fn same_class(a: &Instrument, b: &Instrument) -> bool {
    match (a.as_option(), b.as_option()) {
        (Some(x), Some(y)) => x.underlying == y.underlying && x.right == y.right,
        _ => false,
    }
}

fn is_call(i: &Instrument) -> bool {
    i.as_option()
        .is_some_and(|o| o.right == tradeguard_model::Right::Call)
}

/// Priority score of `legs[idx]` given the other legs and the book (see module docs).
pub fn score(legs: &[LegIntent], idx: usize, book: &Book) -> i32 {
    let Some(l) = legs.get(idx) else { return 0 };
    let pos = book.qty(&l.instrument.id());
    let others = || {
        legs.iter()
            .enumerate()
            .filter(move |(j, _)| *j != idx)
            .map(|(_, o)| o)
    };
    let book_shorts = |pred: &dyn Fn(&Instrument) -> bool| {
        book.positions()
            .any(|(i, q)| q < 0 && i.id() != l.instrument.id() && pred(i))
    };
    let book_longs = |pred: &dyn Fn(&Instrument) -> bool| {
        book.positions()
            .any(|(i, q)| q > 0 && i.id() != l.instrument.id() && pred(i))
    };
    let option = l.instrument.as_option().is_some();
    match l.side {
        Side::Buy => {
            if pos < 0 {
                return 100;
            }
            if option {
                let protects = book_shorts(&|i| same_class(i, &l.instrument))
                    || others()
                        .any(|o| o.side == Side::Sell && same_class(&o.instrument, &l.instrument));
                if protects {
                    return 100;
                }
            }
            let offsets = book_shorts(&|i| i.underlying() == l.instrument.underlying())
                || others().any(|o| {
                    o.side == Side::Sell
                        && o.instrument.as_option().is_some()
                        && o.instrument.underlying() == l.instrument.underlying()
                });
            if offsets { 50 } else { 0 }
        }
        Side::Sell => {
            if pos > 0 {
                // Selling a long: protection goes last while it still covers a short.
                let protects = if option {
                    book_shorts(&|i| same_class(i, &l.instrument))
                } else {
                    book_shorts(&|i| is_call(i) && i.underlying() == l.instrument.underlying())
                };
                return if protects { -50 } else { 0 };
            }
            let covered = if option {
                book_longs(&|i| same_class(i, &l.instrument))
                    || others()
                        .any(|o| o.side == Side::Buy && same_class(&o.instrument, &l.instrument))
                    || (is_call(&l.instrument) && {
                        let need = l.qty.saturating_mul(i64::from(l.instrument.multiplier()));
                        let stock = Instrument::stock(l.instrument.underlying());
                        let bought: i64 = others()
                            .filter(|o| o.side == Side::Buy && o.instrument == stock)
                            .map(|o| o.qty)
                            .sum();
                        book.qty(&stock.id()).saturating_add(bought) >= need
                    })
            } else {
                false
            };
            if covered { -50 } else { -100 }
        }
    }
}

/// Leg indices grouped into tiers, highest score first; within a tier, intent order.
pub fn tiers(legs: &[LegIntent], book: &Book) -> Vec<Vec<usize>> {
    let mut scored: Vec<(i32, usize)> =
        (0..legs.len()).map(|i| (score(legs, i, book), i)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut last = None;
    for (s, i) in scored {
        match out.last_mut() {
            Some(t) if last == Some(s) => t.push(i),
            _ => out.push(vec![i]),
        }
        last = Some(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    fn ic(open: bool) -> Vec<LegIntent> {
        let (b, s) = if open {
            (Side::Buy, Side::Sell)
        } else {
            (Side::Sell, Side::Buy)
        };
        let leg = |i, side| LegIntent {
            instrument: i,
            side,
            qty: 1,
            order_type: OrderType::Market,
        };
        vec![
            leg(stubs::put(440), s),
            leg(stubs::put(430), b),
            leg(stubs::call(460), s),
            leg(stubs::call(470), b),
        ]
    }

    #[test]
    fn iron_condor_open_sends_protection_first() {
        let legs = ic(true);
        let book = Book::new();
        assert_eq!(score(&legs, 1, &book), 100);
        assert_eq!(score(&legs, 0, &book), -50);
        assert_eq!(tiers(&legs, &book), vec![vec![1, 3], vec![0, 2]]);
    }

    #[test]
    fn iron_condor_exit_buys_back_shorts_first() {
        let legs = ic(false);
        let mut book = Book::new();
        for (i, q) in [
            (stubs::put(430), 1),
            (stubs::put(440), -1),
            (stubs::call(460), -1),
            (stubs::call(470), 1),
        ] {
            book.set(&i, q);
        }
        assert_eq!(tiers(&legs, &book), vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn naked_short_goes_last_and_stock_hedge_before_covered_call() {
        let leg = |i, side, qty| LegIntent {
            instrument: i,
            side,
            qty,
            order_type: OrderType::Market,
        };
        let book = Book::new();
        let legs = vec![leg(stubs::put(400), Side::Sell, 1)];
        assert_eq!(score(&legs, 0, &book), -100);
        let legs = vec![
            leg(stubs::call(460), Side::Sell, 1),
            leg(Instrument::stock("SPY"), Side::Buy, 100),
        ];
        assert_eq!(score(&legs, 1, &book), 50);
        assert_eq!(
            score(&legs, 0, &book),
            -50,
            "covered by the stock bought first"
        );
        assert_eq!(tiers(&legs, &book), vec![vec![1], vec![0]]);
    }

    #[test]
    fn validation_and_reducing() {
        let mut i = OrderIntent::new(Purpose::Open, stubs::account());
        assert_eq!(i.validate().unwrap_err().code(), "intent.no_legs");
        i = i.leg(stubs::put(440), Side::Sell, 0, OrderType::Market);
        assert_eq!(i.validate().unwrap_err().code(), "intent.non_positive_qty");
        i.legs[0].qty = 2;
        i = i.leg(stubs::put(440), Side::Buy, 1, OrderType::Market);
        assert_eq!(i.validate().unwrap_err().code(), "intent.duplicate_leg");
        i.legs.pop();
        i.legs[0].order_type = OrderType::Limit { limit: Price::ZERO };
        assert_eq!(i.validate().unwrap_err().code(), "intent.bad_leg");
        i.legs[0].order_type = OrderType::Market;
        assert_eq!(i.validate(), Ok(()));
        let mut book = Book::new();
        assert!(!i.is_reducing(&book));
        book.set(&stubs::put(440), 3);
        assert!(i.is_reducing(&book));
        book.set(&stubs::put(440), 1);
        assert!(
            !i.is_reducing(&book),
            "selling 2 of a long 1 flips the position"
        );
    }
}
