//! The emergency close plan of a broken strategy: which orders, and which must fill before
//! another may go out (the safe order).
//!
//! Every remaining leg and the delivered stock are closed at market. A closing order waits for
//! the closing fills of every position its position protects (same underlying):
//! - a long call protects short calls and short stock; a long put protects short puts and long
//!   stock;
//! - long stock covers short calls; short stock covers short puts;
//! - short options protect nothing, so buying them back goes first.
//!
//! Reference: short 440 P assigned (200 SPY delivered) in a 435/440/460/465 condor gives
//! `buy 460 C ×2` → then `sell 465 C ×2` and `sell 200 SPY` → then `sell 435 P ×2`.

use serde::{Deserialize, Serialize};
use tradeguard_model::{Instrument, InstrumentId, Right, Side, Strategy};

/// One order of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOrder {
    /// What to trade.
    pub instrument: Instrument,
    /// Buy or sell.
    pub side: Side,
    /// Quantity, > 0.
    pub qty: i64,
    /// Indices of orders that must be filled before this one is sent.
    pub after: Vec<usize>,
}

/// A position the plan deliberately leaves open, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPosition {
    /// The instrument.
    pub instrument: Instrument,
    /// Signed quantity kept.
    pub qty: i64,
    /// Why.
    pub reason: String,
}

/// Orders in send order plus what is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClosePlan {
    /// Orders.
    pub orders: Vec<PlannedOrder>,
    /// Positions left open on purpose.
    pub kept: Vec<KeptPosition>,
}

/// `true` if holding `a` (signed) protects holding `b` (signed); same underlying assumed.
fn protects(a: &Instrument, qa: i64, b: &Instrument, qb: i64) -> bool {
    if a.underlying() != b.underlying() {
        return false;
    }
    let right = |i: &Instrument| i.as_option().map(|o| o.right);
    let stock = |i: &Instrument| matches!(i, Instrument::Stock { .. });
    match (right(a), qa > 0) {
        // Short calls and short stock.
        (Some(Right::Call), true) => qb < 0 && (right(b) == Some(Right::Call) || stock(b)),
        (Some(Right::Put), true) => {
            (right(b) == Some(Right::Put) && qb < 0) || (stock(b) && qb > 0)
        }
        (Some(_), false) => false,
        (None, long) if stock(a) => {
            let r = right(b);
            if long {
                r == Some(Right::Call) && qb < 0
            } else {
                r == Some(Right::Put) && qb < 0
            }
        }
        (None, _) => false,
    }
}

/// Clamps a wanted close quantity by what the account actually holds.
pub(crate) fn clamp(want: i64, held: i64) -> i64 {
    if want == 0 || held == 0 || want.signum() != held.signum() {
        0
    } else {
        want.signum() * want.abs().min(held.abs())
    }
}

/// Builds the plan for `strategy` after `contracts` of `option` were assigned/exercised with
/// `stock_delivered` shares. `held` gives the account's current signed quantity per
/// instrument; `close_stock` closes the delivered stock (and the strategy's stock legs).
pub fn build(
    strategy: &Strategy,
    option: &InstrumentId,
    contracts: i64,
    stock_delivered: i64,
    held: &dyn Fn(&InstrumentId) -> i64,
    close_stock: bool,
) -> ClosePlan {
    // Positions to close: (instrument, signed qty held by the strategy now).
    let mut positions: Vec<(Instrument, i64)> = Vec::new();
    let mut stock: Option<(Instrument, i64)> = None;
    for l in &strategy.legs {
        let mut q = l.qty;
        if &l.instrument.id() == option {
            let m = contracts.min(q.abs());
            q -= q.signum() * m;
        }
        match &l.instrument {
            Instrument::Stock { .. } => {
                let s = stock.get_or_insert((l.instrument.clone(), 0));
                s.1 = s.1.saturating_add(q);
            }
            _ => positions.push((l.instrument.clone(), q)),
        }
    }
    if stock_delivered != 0 {
        let sym = strategy
            .legs
            .iter()
            .find(|l| &l.instrument.id() == option)
            .map(|l| l.instrument.underlying().to_owned())
            .unwrap_or_default();
        let s = stock.get_or_insert((Instrument::stock(&sym), 0));
        s.1 = s.1.saturating_add(stock_delivered);
    }
    let mut plan = ClosePlan::default();
    let mut open: Vec<(Instrument, i64)> = positions
        .into_iter()
        .map(|(i, q)| {
            let h = held(&i.id());
            (i, clamp(q, h))
        })
        .filter(|(_, q)| *q != 0)
        .collect();
    if let Some((i, q)) = stock {
        let q = clamp(q, held(&i.id()));
        if q != 0 {
            if close_stock {
                open.push((i, q));
            } else {
                plan.kept.push(KeptPosition {
                    instrument: i.clone(),
                    qty: q,
                    reason: "stock close is off".into(),
                });
                // Keep what protects the kept stock.
                open.retain(|(o, oq)| {
                    let keep = protects(o, *oq, &i, q);
                    if keep {
                        plan.kept.push(KeptPosition {
                            instrument: o.clone(),
                            qty: *oq,
                            reason: format!("protects the kept {} shares", q),
                        });
                    }
                    !keep
                });
            }
        }
    }
    // Send order: shorts bought back, then stock, then longs (protection last).
    let rank = |i: &Instrument, q: i64| match (i.as_option().is_some(), q < 0) {
        (true, true) => 0,
        (false, _) => 1,
        (true, false) => 2,
    };
    open.sort_by_key(|(i, q)| rank(i, *q));
    for (idx, (i, q)) in open.iter().enumerate() {
        let after = open
            .iter()
            .enumerate()
            .filter(|(j, (o, oq))| *j != idx && protects(i, *q, o, *oq))
            .map(|(j, _)| j)
            .collect();
        plan.orders.push(PlannedOrder {
            instrument: i.clone(),
            side: if *q > 0 { Side::Sell } else { Side::Buy },
            qty: q.abs(),
            after,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tradeguard_model::stubs;

    fn condor() -> Strategy {
        let mut s = stubs::iron_condor_strategy();
        s.legs = vec![
            stubs::leg(stubs::put(435), 2),
            stubs::leg(stubs::put(440), -2),
            stubs::leg(stubs::call(460), -2),
            stubs::leg(stubs::call(465), 2),
        ];
        s
    }

    fn held_after_put_assignment() -> BTreeMap<InstrumentId, i64> {
        [
            (stubs::put(435).id(), 2),
            (stubs::call(460).id(), -2),
            (stubs::call(465).id(), 2),
            (Instrument::stock("SPY").id(), 200),
        ]
        .into_iter()
        .collect()
    }

    fn describe(p: &ClosePlan) -> Vec<String> {
        p.orders
            .iter()
            .map(|o| {
                format!(
                    "{:?} {} {} after {:?}",
                    o.side,
                    o.instrument.id(),
                    o.qty,
                    o.after
                )
            })
            .collect()
    }

    #[test]
    fn reference_condor_put_assignment() {
        let h = held_after_put_assignment();
        let held = |i: &InstrumentId| h.get(i).copied().unwrap_or(0);
        let p = build(&condor(), &stubs::put(440).id(), 2, 200, &held, true);
        let c = stubs::call(460).id();
        let c2 = stubs::call(465).id();
        let p1 = stubs::put(435).id();
        assert_eq!(
            describe(&p),
            vec![
                format!("Buy {c} 2 after []"),
                "Sell SPY 200 after [0]".to_string(),
                format!("Sell {p1} 2 after [1]"),
                format!("Sell {c2} 2 after [0]"),
            ]
        );
        assert!(p.kept.is_empty());
    }

    #[test]
    fn stock_close_off_keeps_the_protecting_put() {
        let h = held_after_put_assignment();
        let held = |i: &InstrumentId| h.get(i).copied().unwrap_or(0);
        let p = build(&condor(), &stubs::put(440).id(), 2, 200, &held, false);
        assert_eq!(p.orders.len(), 2, "{:#?}", describe(&p));
        assert_eq!(p.kept.len(), 2);
        assert_eq!(p.kept[1].instrument, stubs::put(435));
    }

    #[test]
    fn partial_assignment_and_broker_clamp() {
        // One of two contracts assigned; the broker shows only one 465 C left.
        let mut h = held_after_put_assignment();
        h.insert(stubs::put(440).id(), -1);
        h.insert(Instrument::stock("SPY").id(), 100);
        h.insert(stubs::call(465).id(), 1);
        let held = |i: &InstrumentId| h.get(i).copied().unwrap_or(0);
        let p = build(&condor(), &stubs::put(440).id(), 1, 100, &held, true);
        let d = describe(&p);
        assert!(
            d.contains(&format!("Buy {} 1 after []", stubs::put(440).id())),
            "{d:#?}"
        );
        assert!(d.iter().any(|s| s.starts_with("Sell SPY 100")), "{d:#?}");
        assert!(
            d.contains(&format!("Sell {} 1 after [1]", stubs::call(465).id())),
            "{d:#?}"
        );
        // The 435 P waits for both the 440 P buy-back and the stock sale.
        let put = p
            .orders
            .iter()
            .find(|o| o.instrument == stubs::put(435))
            .unwrap();
        assert_eq!(put.after.len(), 2);
    }

    #[test]
    fn short_call_assignment_buys_stock_back_before_selling_the_call_protection() {
        let h: BTreeMap<InstrumentId, i64> = [
            (stubs::put(435).id(), 2),
            (stubs::put(440).id(), -2),
            (stubs::call(465).id(), 2),
            (Instrument::stock("SPY").id(), -200),
        ]
        .into_iter()
        .collect();
        let held = |i: &InstrumentId| h.get(i).copied().unwrap_or(0);
        let p = build(&condor(), &stubs::call(460).id(), 2, -200, &held, true);
        let stock = p
            .orders
            .iter()
            .position(|o| o.instrument == Instrument::stock("SPY"))
            .unwrap();
        assert_eq!(p.orders[stock].side, Side::Buy);
        let call = p
            .orders
            .iter()
            .find(|o| o.instrument == stubs::call(465))
            .unwrap();
        assert_eq!(call.after, vec![stock]);
        // Short stock covers the short put: bought back only after the 440 P.
        assert_eq!(p.orders[stock].after, vec![0]);
    }
}
