//! Strategy recognition: name the shape of a set of legs and assign each leg its role.
//!
//! Roles are assigned the same way for every shape: stock → [`LegRole::Stock`], short
//! options → [`LegRole::Short`], a long option that caps some short option's risk (same
//! underlying and right, expiring no earlier) → [`LegRole::Protection`], any other long
//! option or future → [`LegRole::Hedge`].

use crate::instrument::{Instrument, OptionContract, Right};
use crate::leg::{Leg, LegRole};
use crate::strategy::StrategyKind;
use serde::{Deserialize, Serialize};

/// Result of [`recognize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognition {
    /// Recognized shape.
    pub kind: StrategyKind,
    /// Role of each input leg, in input order.
    pub roles: Vec<LegRole>,
}

/// Recognizes the strategy formed by `legs` (leg roles in the input are ignored).
/// Zero-quantity legs make the set [`StrategyKind::Custom`].
pub fn recognize(legs: &[Leg]) -> Recognition {
    Recognition {
        kind: kind_of(legs),
        roles: roles_of(legs),
    }
}

fn roles_of(legs: &[Leg]) -> Vec<LegRole> {
    legs.iter()
        .map(|l| match &l.instrument {
            Instrument::Stock { .. } => LegRole::Stock,
            Instrument::Future { .. } => LegRole::Hedge,
            Instrument::Option(_) if l.qty < 0 => LegRole::Short,
            Instrument::Option(o) => {
                let protects = legs.iter().any(|s| match &s.instrument {
                    Instrument::Option(so) => {
                        s.qty < 0
                            && so.underlying == o.underlying
                            && so.right == o.right
                            && o.expiry >= so.expiry
                    }
                    _ => false,
                });
                if protects {
                    LegRole::Protection
                } else {
                    LegRole::Hedge
                }
            }
        })
        .collect()
}

fn kind_of(legs: &[Leg]) -> StrategyKind {
    if legs.is_empty() || legs.iter().any(|l| l.qty == 0) {
        return StrategyKind::Custom;
    }
    let mut opts: Vec<(&OptionContract, i64)> = Vec::new();
    let mut stock: Vec<(&str, i64)> = Vec::new();
    for l in legs {
        match &l.instrument {
            Instrument::Option(o) => opts.push((o, l.qty)),
            Instrument::Stock { symbol } => stock.push((symbol, l.qty)),
            Instrument::Future { .. } => return StrategyKind::Custom,
        }
    }
    if !stock.is_empty() {
        return covered(&stock, &opts);
    }
    let first = opts[0].0;
    if opts.iter().any(|(o, _)| {
        o.underlying != first.underlying
            || o.expiry != first.expiry
            || o.multiplier != first.multiplier
    }) {
        return StrategyKind::Custom;
    }
    opts.sort_by_key(|(o, _)| (o.strike, o.right));
    match opts.as_slice() {
        [a, b] => two_legs(*a, *b),
        [a, b, c] => butterfly(*a, *b, *c),
        [a, b, c, d] => iron(*a, *b, *c, *d),
        _ => StrategyKind::Custom,
    }
}

fn covered(stock: &[(&str, i64)], opts: &[(&OptionContract, i64)]) -> StrategyKind {
    let [(sym, shares)] = stock else {
        return StrategyKind::Custom;
    };
    if opts.is_empty() {
        return StrategyKind::Custom;
    }
    let want = if *shares > 0 { Right::Call } else { Right::Put };
    let mut covered_shares: i64 = 0;
    for (o, q) in opts {
        if o.underlying != *sym || o.right != want || *q >= 0 {
            return StrategyKind::Custom;
        }
        covered_shares = covered_shares
            .saturating_add(q.saturating_abs().saturating_mul(i64::from(o.multiplier)));
    }
    if covered_shares <= shares.saturating_abs() {
        StrategyKind::Covered
    } else {
        StrategyKind::Custom
    }
}

fn two_legs(a: (&OptionContract, i64), b: (&OptionContract, i64)) -> StrategyKind {
    let (oa, qa) = a;
    let (ob, qb) = b;
    if qa.saturating_abs() != qb.saturating_abs() {
        return StrategyKind::Custom;
    }
    if oa.right == ob.right {
        if qa.signum() != qb.signum() && oa.strike != ob.strike {
            return StrategyKind::Vertical;
        }
        return StrategyKind::Custom;
    }
    if qa.signum() != qb.signum() {
        return StrategyKind::Custom;
    }
    if oa.strike == ob.strike {
        return StrategyKind::Straddle;
    }
    // Sorted by strike: a strangle has the put below the call.
    if oa.right == Right::Put {
        StrategyKind::Strangle
    } else {
        StrategyKind::Custom
    }
}

fn butterfly(
    a: (&OptionContract, i64),
    b: (&OptionContract, i64),
    c: (&OptionContract, i64),
) -> StrategyKind {
    let same_right = a.0.right == b.0.right && b.0.right == c.0.right;
    let distinct = a.0.strike < b.0.strike && b.0.strike < c.0.strike;
    if same_right && distinct && a.1 == c.1 && b.1 == a.1.saturating_mul(-2) {
        StrategyKind::Butterfly
    } else {
        StrategyKind::Custom
    }
}

fn iron(
    a: (&OptionContract, i64),
    b: (&OptionContract, i64),
    c: (&OptionContract, i64),
    d: (&OptionContract, i64),
) -> StrategyKind {
    // Sorted by (strike, right) with Call < Put, so at an equal short strike the call comes first.
    let (b, c) = if b.0.strike == c.0.strike && b.0.right == Right::Call {
        (c, b)
    } else {
        (b, c)
    };
    let shape = a.0.right == Right::Put
        && b.0.right == Right::Put
        && c.0.right == Right::Call
        && d.0.right == Right::Call;
    let n = a.1;
    let signs = n > 0 && b.1 == -n && c.1 == -n && d.1 == n;
    let strikes = a.0.strike < b.0.strike && b.0.strike <= c.0.strike && c.0.strike < d.0.strike;
    if !(shape && signs && strikes) {
        return StrategyKind::Custom;
    }
    if b.0.strike == c.0.strike {
        StrategyKind::IronButterfly
    } else {
        StrategyKind::IronCondor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::{call, leg, put, stock_leg};
    use LegRole::*;
    use StrategyKind::*;

    fn kinds(legs: &[Leg]) -> (StrategyKind, Vec<LegRole>) {
        let r = recognize(legs);
        (r.kind, r.roles)
    }

    #[test]
    fn iron_condor_and_butterfly() {
        let ic = [
            leg(put(430), 1),
            leg(put(440), -1),
            leg(call(460), -1),
            leg(call(470), 1),
        ];
        assert_eq!(
            kinds(&ic),
            (IronCondor, vec![Protection, Short, Short, Protection])
        );
        // Input order must not matter for the kind; roles follow input order.
        let shuffled = [ic[2].clone(), ic[0].clone(), ic[3].clone(), ic[1].clone()];
        assert_eq!(
            kinds(&shuffled),
            (IronCondor, vec![Short, Protection, Protection, Short])
        );
        let ib = [
            leg(put(430), 2),
            leg(put(450), -2),
            leg(call(450), -2),
            leg(call(470), 2),
        ];
        assert_eq!(recognize(&ib).kind, IronButterfly);
        // Unequal sizes, reversed (long inside) and wrong order are not iron condors.
        let mut uneq = ic.clone();
        uneq[3].qty = 2;
        assert_eq!(recognize(&uneq).kind, Custom);
        let reversed: Vec<Leg> = ic
            .iter()
            .cloned()
            .map(|mut l| {
                l.qty = -l.qty;
                l
            })
            .collect();
        assert_eq!(recognize(&reversed).kind, Custom);
        let crossed = [
            leg(put(430), 1),
            leg(put(465), -1),
            leg(call(460), -1),
            leg(call(470), 1),
        ];
        assert_eq!(recognize(&crossed).kind, Custom);
    }

    #[test]
    fn verticals_straddles_strangles() {
        assert_eq!(
            kinds(&[leg(put(440), -1), leg(put(430), 1)]),
            (Vertical, vec![Short, Protection])
        );
        assert_eq!(
            kinds(&[leg(call(440), 1), leg(call(450), -1)]),
            (Vertical, vec![Protection, Short])
        );
        assert_eq!(
            recognize(&[leg(call(440), 1), leg(call(450), 1)]).kind,
            Custom
        );
        assert_eq!(
            recognize(&[leg(call(440), 2), leg(call(450), -1)]).kind,
            Custom
        );
        assert_eq!(
            kinds(&[leg(put(450), -3), leg(call(450), -3)]),
            (Straddle, vec![Short, Short])
        );
        assert_eq!(
            kinds(&[leg(put(450), 1), leg(call(450), 1)]),
            (Straddle, vec![Hedge, Hedge])
        );
        assert_eq!(
            kinds(&[leg(call(470), -1), leg(put(430), -1)]),
            (Strangle, vec![Short, Short])
        );
        assert_eq!(
            recognize(&[leg(put(470), -1), leg(call(430), -1)]).kind,
            Custom
        );
        assert_eq!(
            recognize(&[leg(put(430), -1), leg(call(470), 1)]).kind,
            Custom
        );
    }

    #[test]
    fn butterflies() {
        let fly = [leg(call(440), 1), leg(call(450), -2), leg(call(460), 1)];
        assert_eq!(
            kinds(&fly),
            (Butterfly, vec![Protection, Short, Protection])
        );
        let short_fly = [leg(put(440), -1), leg(put(450), 2), leg(put(460), -1)];
        assert_eq!(recognize(&short_fly).kind, Butterfly);
        let bad = [leg(call(440), 1), leg(call(450), -1), leg(call(460), 1)];
        assert_eq!(recognize(&bad).kind, Custom);
        let mixed = [leg(call(440), 1), leg(put(450), -2), leg(call(460), 1)];
        assert_eq!(recognize(&mixed).kind, Custom);
    }

    #[test]
    fn covered_positions() {
        assert_eq!(
            kinds(&[stock_leg(200), leg(call(460), -2)]),
            (Covered, vec![Stock, Short])
        );
        assert_eq!(
            recognize(&[stock_leg(-100), leg(put(430), -1)]).kind,
            Covered
        );
        // Not enough shares, wrong right, long call.
        assert_eq!(
            recognize(&[stock_leg(100), leg(call(460), -2)]).kind,
            Custom
        );
        assert_eq!(recognize(&[stock_leg(100), leg(put(430), -1)]).kind, Custom);
        assert_eq!(recognize(&[stock_leg(100), leg(call(460), 1)]).kind, Custom);
    }

    #[test]
    fn custom_and_mixed_expiries() {
        let mut far = call(470);
        if let Instrument::Option(o) = &mut far {
            o.expiry = o.expiry.succ_opt().unwrap();
        }
        let ic = [
            leg(put(430), 1),
            leg(put(440), -1),
            leg(call(460), -1),
            leg(far, 1),
        ];
        assert_eq!(
            kinds(&ic),
            (Custom, vec![Protection, Short, Short, Protection])
        );
        assert_eq!(recognize(&[]).kind, Custom);
        assert_eq!(
            recognize(&[leg(put(440), 0), leg(put(430), 0)]).kind,
            Custom
        );
        assert_eq!(kinds(&[leg(put(440), -1)]), (Custom, vec![Short]));
    }
}
