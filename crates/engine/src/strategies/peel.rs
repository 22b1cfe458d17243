//! Recognition of positions that belong to no managed strategy: greedy peeling of
//! iron condors / iron butterflies, verticals, straddles / strangles and covered positions,
//! with the remainder left as one custom strategy per instrument.
//!
//! Order of work (deterministic; inputs are sorted by account, underlying, expiry, strike):
//! 1. per (account, underlying, expiry): iron condors / butterflies, built from credit
//!    verticals (each short paired with the nearest long on its capping side: a lower put,
//!    a higher call); among candidates, equal sizes first, then equal widths, then the
//!    narrowest body (so nested condors are taken apart inside-out);
//! 2. verticals: each remaining short with the nearest remaining long of the same right,
//!    capping side first (credit spreads), then the other side (debit spreads);
//! 3. straddles / strangles: a short put with a short call at the same or a higher strike,
//!    equal sizes first, then the closest strikes;
//! 4. per (account, underlying), all expiries: covered calls (long stock + short calls) and
//!    covered puts (short stock + short puts), earliest expiry first;
//! 5. whatever is left: one [`StrategyKind::Custom`] per instrument.
//!
//! Quantities split across strategies: 2 short puts can be 1 in a condor and 1 left naked.

use std::collections::BTreeMap;
use tradeguard_model::{
    AccountId, Instrument, Leg, LegRole, OptionContract, Price, Right, StrategyKind, recognize,
};

/// One unassigned holding (the part of a broker position no managed strategy claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: Instrument,
    /// Signed unassigned quantity (never zero).
    pub qty: i64,
    /// Average cost per unit.
    pub avg_price: Price,
}

/// A peeled strategy: its shape and legs (roles assigned by [`recognize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeled {
    /// Account.
    pub account: AccountId,
    /// Shape (as [`recognize`] names the legs).
    pub kind: StrategyKind,
    /// Legs, in the order they were peeled.
    pub legs: Vec<Leg>,
}

#[derive(Debug, Clone)]
struct Slot {
    instrument: Instrument,
    qty: i64,
    avg: Price,
}

impl Slot {
    fn opt(&self) -> Option<&OptionContract> {
        self.instrument.as_option()
    }
    fn strike(&self) -> i64 {
        self.opt().map_or(0, |o| o.strike.raw())
    }
    fn right(&self) -> Option<Right> {
        self.opt().map(|o| o.right)
    }
}

/// A credit vertical candidate inside one expiry group: (short index, long index, size).
#[derive(Debug, Clone, Copy)]
struct Pair {
    short: usize,
    long: usize,
    qty: i64,
}

/// Splits `holdings` into strategies (see the module docs for the order).
pub fn peel(holdings: &[Holding]) -> Vec<Peeled> {
    // account -> underlying -> slots (options and stock); BTreeMaps give the deterministic order.
    let mut by_acct: BTreeMap<&AccountId, BTreeMap<String, Vec<Slot>>> = BTreeMap::new();
    for h in holdings.iter().filter(|h| h.qty != 0) {
        by_acct
            .entry(&h.account)
            .or_default()
            .entry(h.instrument.underlying().to_owned())
            .or_default()
            .push(Slot {
                instrument: h.instrument.clone(),
                qty: h.qty,
                avg: h.avg_price,
            });
    }
    let mut out = Vec::new();
    for (account, unds) in by_acct {
        for (_, mut slots) in unds {
            slots.sort_by(|a, b| a.instrument.cmp(&b.instrument));
            let mut expiries: Vec<_> = slots
                .iter()
                .filter_map(|s| s.opt().map(|o| o.expiry))
                .collect();
            expiries.dedup();
            expiries.sort();
            expiries.dedup();
            let mut found: Vec<Vec<(usize, i64)>> = Vec::new();
            for exp in expiries {
                let group: Vec<usize> = (0..slots.len())
                    .filter(|&i| slots[i].opt().is_some_and(|o| o.expiry == exp))
                    .collect();
                irons(&mut slots, &group, &mut found);
                verticals(&mut slots, &group, &mut found);
                strangles(&mut slots, &group, &mut found);
            }
            covered(&mut slots, &mut found);
            for (i, s) in slots.iter().enumerate() {
                if s.qty != 0 {
                    found.push(vec![(i, s.qty)]);
                }
            }
            for parts in found {
                out.push(build(account, &slots, &parts));
            }
        }
    }
    out
}

fn build(account: &AccountId, slots: &[Slot], parts: &[(usize, i64)]) -> Peeled {
    let mut legs: Vec<Leg> = parts
        .iter()
        .map(|&(i, qty)| Leg {
            instrument: slots[i].instrument.clone(),
            qty,
            role: LegRole::Hedge,
            avg_price: slots[i].avg,
        })
        .collect();
    let r = recognize(&legs);
    for (l, role) in legs.iter_mut().zip(r.roles) {
        l.role = role;
    }
    Peeled {
        account: account.clone(),
        kind: r.kind,
        legs,
    }
}

fn take(slots: &mut [Slot], parts: &[(usize, i64)], found: &mut Vec<Vec<(usize, i64)>>) {
    for &(i, q) in parts {
        slots[i].qty = slots[i].qty.saturating_sub(q);
    }
    found.push(parts.to_vec());
}

/// Nearest long of the same right on the capping side of each short (puts: lower strike,
/// calls: higher strike).
fn credit_pairs(slots: &[Slot], group: &[usize], right: Right) -> Vec<Pair> {
    let mut out = Vec::new();
    for &s in group {
        if slots[s].qty >= 0 || slots[s].right() != Some(right) {
            continue;
        }
        let ks = slots[s].strike();
        let best = group
            .iter()
            .copied()
            .filter(|&l| slots[l].qty > 0 && slots[l].right() == Some(right))
            .filter(|&l| match right {
                Right::Put => slots[l].strike() < ks,
                Right::Call => slots[l].strike() > ks,
            })
            .min_by_key(|&l| (slots[l].strike().abs_diff(ks), slots[l].strike()));
        if let Some(l) = best {
            out.push(Pair {
                short: s,
                long: l,
                qty: slots[s].qty.saturating_abs().min(slots[l].qty),
            });
        }
    }
    out
}

/// Condor preference: unequal sizes, width difference, body width, put strike, call strike.
type IronKey = (bool, u64, i64, i64, i64);
/// Vertical preference: strike distance, short strike, right.
type VerticalKey = (u64, i64, Option<Right>);

fn irons(slots: &mut [Slot], group: &[usize], found: &mut Vec<Vec<(usize, i64)>>) {
    loop {
        let puts = credit_pairs(slots, group, Right::Put);
        let calls = credit_pairs(slots, group, Right::Call);
        let mut best: Option<(IronKey, Pair, Pair)> = None;
        for p in &puts {
            for c in &calls {
                let (ps, cs) = (slots[p.short].strike(), slots[c.short].strike());
                if ps > cs {
                    continue;
                }
                let wp = ps.abs_diff(slots[p.long].strike());
                let wc = cs.abs_diff(slots[c.long].strike());
                let key = (
                    p.qty != c.qty,
                    wp.abs_diff(wc),
                    cs.saturating_sub(ps),
                    ps,
                    cs,
                );
                if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                    best = Some((key, *p, *c));
                }
            }
        }
        let Some((_, p, c)) = best else { return };
        let q = p.qty.min(c.qty);
        take(
            slots,
            &[(p.long, q), (p.short, -q), (c.short, -q), (c.long, q)],
            found,
        );
    }
}

fn verticals(slots: &mut [Slot], group: &[usize], found: &mut Vec<Vec<(usize, i64)>>) {
    for capping_side in [true, false] {
        loop {
            let mut best: Option<(VerticalKey, usize, usize)> = None;
            for &s in group {
                if slots[s].qty >= 0 {
                    continue;
                }
                let r = slots[s].right();
                let ks = slots[s].strike();
                for &l in group {
                    if slots[l].qty <= 0 || slots[l].right() != r {
                        continue;
                    }
                    let kl = slots[l].strike();
                    let caps = match r {
                        Some(Right::Put) => kl < ks,
                        _ => kl > ks,
                    };
                    if caps != capping_side || kl == ks {
                        continue;
                    }
                    let key = (kl.abs_diff(ks), ks, r);
                    if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                        best = Some((key, s, l));
                    }
                }
            }
            let Some((_, s, l)) = best else { break };
            let q = slots[s].qty.saturating_abs().min(slots[l].qty);
            take(slots, &[(s, -q), (l, q)], found);
        }
    }
}

fn strangles(slots: &mut [Slot], group: &[usize], found: &mut Vec<Vec<(usize, i64)>>) {
    loop {
        let mut best: Option<((bool, i64, i64), usize, usize)> = None;
        for &p in group {
            if slots[p].qty >= 0 || slots[p].right() != Some(Right::Put) {
                continue;
            }
            for &c in group {
                if slots[c].qty >= 0 || slots[c].right() != Some(Right::Call) {
                    continue;
                }
                let (kp, kc) = (slots[p].strike(), slots[c].strike());
                if kp > kc {
                    continue;
                }
                let key = (slots[p].qty != slots[c].qty, kc.saturating_sub(kp), kp);
                if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                    best = Some((key, p, c));
                }
            }
        }
        let Some((_, p, c)) = best else { return };
        let q = slots[p].qty.max(slots[c].qty); // both negative: the smaller size
        take(slots, &[(p, q), (c, q)], found);
    }
}

fn covered(slots: &mut [Slot], found: &mut Vec<Vec<(usize, i64)>>) {
    let Some(st) = slots
        .iter()
        .position(|s| matches!(s.instrument, Instrument::Stock { .. }) && s.qty != 0)
    else {
        return;
    };
    let want = if slots[st].qty > 0 {
        Right::Call
    } else {
        Right::Put
    };
    let mut shorts: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].qty < 0 && slots[i].right() == Some(want))
        .collect();
    shorts.sort_by_key(|&i| {
        let o = slots[i].opt();
        (o.map(|o| o.expiry), slots[i].strike())
    });
    for i in shorts {
        let mult = i64::from(slots[i].instrument.multiplier().max(1));
        let contracts = slots[i]
            .qty
            .saturating_abs()
            .min(slots[st].qty.saturating_abs() / mult);
        if contracts == 0 {
            break;
        }
        let shares = contracts
            .saturating_mul(mult)
            .saturating_mul(slots[st].qty.signum());
        take(slots, &[(st, shares), (i, -contracts)], found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs::{call, put};

    fn h(instrument: Instrument, qty: i64) -> Holding {
        Holding {
            account: AccountId::new("A"),
            instrument,
            qty,
            avg_price: Price::from_raw(10_000),
        }
    }

    fn shape(p: &Peeled) -> (StrategyKind, Vec<(String, i64)>) {
        let mut legs: Vec<_> = p
            .legs
            .iter()
            .map(|l| {
                let k = l
                    .instrument
                    .as_option()
                    .map_or(0, |o| o.strike.raw() / 10_000);
                let r = match l.instrument.as_option().map(|o| o.right) {
                    Some(Right::Put) => "P",
                    Some(Right::Call) => "C",
                    None => "S",
                };
                (format!("{r}{k}"), l.qty)
            })
            .collect();
        legs.sort();
        (p.kind, legs)
    }

    fn legs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
        let mut v: Vec<_> = v.iter().map(|(s, q)| ((*s).to_owned(), *q)).collect();
        v.sort();
        v
    }

    #[test]
    fn nested_condors_come_apart_inside_out() {
        let hs = [
            h(put(500), 1),
            h(put(510), -1),
            h(put(560), 1),
            h(put(570), -1),
            h(call(580), -1),
            h(call(590), 1),
            h(call(620), -1),
            h(call(630), 1),
        ];
        let out: Vec<_> = peel(&hs).iter().map(shape).collect();
        assert_eq!(
            out,
            vec![
                (
                    StrategyKind::IronCondor,
                    legs(&[("P560", 1), ("P570", -1), ("C580", -1), ("C590", 1)])
                ),
                (
                    StrategyKind::IronCondor,
                    legs(&[("P500", 1), ("P510", -1), ("C620", -1), ("C630", 1)])
                ),
            ]
        );
    }

    #[test]
    fn quantity_splits_between_condor_and_naked_short() {
        let hs = [
            h(put(430), 1),
            h(put(440), -2),
            h(call(460), -1),
            h(call(470), 1),
        ];
        let out: Vec<_> = peel(&hs).iter().map(shape).collect();
        assert_eq!(
            out,
            vec![
                (
                    StrategyKind::IronCondor,
                    legs(&[("P430", 1), ("P440", -1), ("C460", -1), ("C470", 1)])
                ),
                (StrategyKind::Custom, legs(&[("P440", -1)])),
            ]
        );
    }

    #[test]
    fn iron_butterfly_debit_vertical_straddle_and_covered() {
        let ib = [
            h(put(430), 2),
            h(put(450), -2),
            h(call(450), -2),
            h(call(470), 2),
        ];
        assert_eq!(peel(&ib)[0].kind, StrategyKind::IronButterfly);
        assert_eq!(peel(&ib).len(), 1);
        // Long 450 P above a short 440 P: no credit pair, so a debit vertical.
        let debit = [h(put(440), -1), h(put(450), 1)];
        let out = peel(&debit);
        assert_eq!((out.len(), out[0].kind), (1, StrategyKind::Vertical));
        let straddle = [h(put(450), -3), h(call(450), -3)];
        assert_eq!(peel(&straddle)[0].kind, StrategyKind::Straddle);
        // 250 shares cover two of three short calls; 50 shares and one call are left over.
        let cov = [h(Instrument::stock("SPY"), 250), h(call(470), -3)];
        let out: Vec<_> = peel(&cov).iter().map(shape).collect();
        assert_eq!(
            out,
            vec![
                (StrategyKind::Covered, legs(&[("S0", 200), ("C470", -2)])),
                (StrategyKind::Custom, legs(&[("S0", 50)])),
                (StrategyKind::Custom, legs(&[("C470", -1)])),
            ]
        );
    }
}
