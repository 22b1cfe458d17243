//! The pairing search: decompose a position into strategy groups the way a broker would, for the
//! lowest net requirement (ties: lowest gross). Depth-first over "what happens to the first still
//! unpaired short leg" (pair it in a vertical, condor, butterfly, straddle, covered position, or
//! set it aside), memoised on the remaining quantities; set-aside shorts and leftover longs end
//! either naked/paid or in a same-expiry maximum-loss combination. Each template uses the largest
//! quantity its legs allow. A node budget keeps huge books fast (then greedy, flagged).

use std::collections::HashMap;

use super::rules::{self, Amounts};
use super::{
    GroupLeg, MarginLeg, MarginPosition, MarginResult, MarginRules, Strategy, StrategyGroup,
};
use crate::error::PricingError;
use crate::types::OptionType;

/// Most legs a position may have (bitmask width).
pub const MAX_LEGS: usize = 128;
/// Search nodes before switching to greedy completion.
const NODE_BUDGET: usize = 5_000;

type Cost = (i128, i128); // (net, gross), compared lexicographically

#[derive(Clone)]
struct Solution {
    cost: Cost,
    groups: Vec<StrategyGroup>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    rem: Vec<i64>,
    aside: u128,
    /// Contracts of calls still coverable by long stock / puts by short stock.
    call_cover: i64,
    put_cover: i64,
}

#[derive(Clone)]
struct Candidate {
    used: Vec<(usize, i64)>,
    strategy: Strategy,
    amounts: Amounts,
    cover: (i64, i64),
}

struct Search<'a> {
    legs: &'a [MarginLeg],
    rules: &'a MarginRules,
    pos: &'a MarginPosition,
    mult: i128,
    memo: HashMap<State, Option<Solution>>,
    nodes: usize,
}

fn group(strategy: Strategy, legs: Vec<GroupLeg>, amounts: Amounts) -> StrategyGroup {
    StrategyGroup {
        strategy,
        legs,
        stock_shares: 0,
        gross: amounts.0,
        net: amounts.1,
    }
}

fn add(a: Option<Solution>, cost: Amounts, g: StrategyGroup) -> Option<Solution> {
    a.map(|mut s| {
        s.cost = (s.cost.0 + cost.1, s.cost.1 + cost.0);
        s.groups.push(g);
        s
    })
}

fn better(a: &Option<Solution>, b: &Option<Solution>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.cost < y.cost,
        (Some(_), None) => true,
        _ => false,
    }
}

impl Search<'_> {
    fn is_short(&self, i: usize) -> bool {
        self.legs[i].qty < 0
    }

    fn naked(&self, i: usize, contracts: i128) -> Option<Amounts> {
        let price = self.pos.underlying_price?;
        Some(rules::naked_short(
            &self.legs[i],
            contracts,
            price,
            self.pos.underlying_kind,
            self.rules,
            self.mult,
        ))
    }

    fn solve(&mut self, st: &State) -> Option<Solution> {
        if let Some(hit) = self.memo.get(st) {
            return hit.clone();
        }
        self.nodes += 1;
        let first = (0..self.legs.len())
            .find(|&i| self.is_short(i) && st.rem[i] > 0 && st.aside & (1u128 << i) == 0);
        let result = match first {
            None => self.terminal(st),
            Some(i) => self.branch(st, i),
        };
        self.memo.insert(st.clone(), result.clone());
        result
    }

    fn branch(&mut self, st: &State, i: usize) -> Option<Solution> {
        let legs = self.legs;
        let li = legs[i];
        let mult = self.mult;
        let greedy = self.nodes > NODE_BUDGET;
        // Candidate groups containing short i: (legs used, strategy, amounts, stock cover used).
        let mut cands: Vec<Candidate> = Vec::new();
        let push = |cands: &mut Vec<Candidate>,
                    used: &[(usize, i64)],
                    strategy: Strategy,
                    amounts: Amounts,
                    cover: (i64, i64)| {
            cands.push(Candidate {
                used: used.to_vec(),
                strategy,
                amounts,
                cover,
            });
        };

        // Covered call / covered put.
        if li.kind == OptionType::Call && st.call_cover > 0 {
            let q = st.rem[i].min(st.call_cover);
            let a = rules::covered_call(&li, i128::from(q), mult);
            push(&mut cands, &[(i, q)], Strategy::CoveredCall, a, (q, 0));
        }
        if li.kind == OptionType::Put
            && st.put_cover > 0
            && let Some(price) = self.pos.underlying_price
        {
            let q = st.rem[i].min(st.put_cover);
            let a = rules::covered_put(&li, i128::from(q), price, mult);
            push(&mut cands, &[(i, q)], Strategy::CoveredPut, a, (0, q));
        }
        // Verticals: short i with a long j of the same type expiring no earlier — per expiry,
        // the nearest strike on each side (a broker pairs adjacent strikes; wider spreads only
        // cost more width, and the max-loss combination at the end covers the rest).
        let wings = self.nearest_longs(st, &li, false);
        for &j in &wings {
            let lj = legs[j];
            let q = st.rem[i].min(st.rem[j]);
            let parts = [(&li, -i128::from(q)), (&lj, i128::from(q))];
            if let Some(a) = rules::max_loss(&parts, mult) {
                let credit = match li.kind {
                    OptionType::Call => lj.strike > li.strike,
                    OptionType::Put => lj.strike < li.strike,
                };
                let s = if credit {
                    Strategy::VerticalCreditSpread
                } else {
                    Strategy::VerticalDebitSpread
                };
                push(&mut cands, &[(i, q), (j, q)], s, a, (0, 0));
            }
        }
        // Iron condor / iron butterfly: credit spread on i's side plus one on the other side.
        for (j, &lj) in legs.iter().enumerate() {
            if j == i
                || lj.qty >= 0
                || st.rem[j] == 0
                || lj.kind == li.kind
                || lj.expiry != li.expiry
            {
                continue;
            }
            if st.aside & (1u128 << j) != 0 {
                continue;
            }
            let wings_j = self.nearest_longs(st, &lj, true);
            for &a in wings
                .iter()
                .filter(|&&a| legs[a].expiry == li.expiry && is_credit_wing(&li, &legs[a]))
            {
                let la = legs[a];
                for &b in wings_j.iter().filter(|&&b| is_credit_wing(&lj, &legs[b])) {
                    let lb = legs[b];
                    let q = st.rem[i].min(st.rem[j]).min(st.rem[a]).min(st.rem[b]);
                    let q128 = i128::from(q);
                    let parts = [(&li, -q128), (&lj, -q128), (&la, q128), (&lb, q128)];
                    if let Some(amt) = rules::max_loss(&parts, mult) {
                        let s = if li.strike == lj.strike {
                            Strategy::IronButterfly
                        } else {
                            Strategy::IronCondor
                        };
                        push(
                            &mut cands,
                            &[(i, q), (j, q), (a, q), (b, q)],
                            s,
                            amt,
                            (0, 0),
                        );
                    }
                }
            }
        }
        // Butterflies with i as the short body (long wings) or as a short wing (long body).
        for (a, &la) in legs.iter().enumerate() {
            for (b, &lb) in legs.iter().enumerate() {
                if a == b
                    || la.kind != li.kind
                    || lb.kind != li.kind
                    || la.expiry != li.expiry
                    || lb.expiry != li.expiry
                {
                    continue;
                }
                if st.rem[a] == 0 || st.rem[b] == 0 {
                    continue;
                }
                // Long butterfly: long a < short body i < long b, equal intervals.
                if la.qty > 0
                    && lb.qty > 0
                    && la.strike < li.strike
                    && li.strike - la.strike == lb.strike - li.strike
                {
                    let q = (st.rem[i] / 2).min(st.rem[a]).min(st.rem[b]);
                    if q > 0 {
                        let q128 = i128::from(q);
                        let parts = [(&la, q128), (&li, -2 * q128), (&lb, q128)];
                        if let Some(amt) = rules::max_loss(&parts, mult) {
                            push(
                                &mut cands,
                                &[(a, q), (i, 2 * q), (b, q)],
                                Strategy::LongButterfly,
                                amt,
                                (0, 0),
                            );
                        }
                    }
                }
                // Short butterfly: short wing i < long body a < short wing b.
                if la.qty > 0
                    && lb.qty < 0
                    && st.aside & (1u128 << b) == 0
                    && li.strike < la.strike
                    && la.strike - li.strike == lb.strike - la.strike
                {
                    let q = st.rem[i].min(st.rem[a] / 2).min(st.rem[b]);
                    if q > 0 {
                        let q128 = i128::from(q);
                        let parts = [(&li, -q128), (&la, 2 * q128), (&lb, -q128)];
                        if let Some(amt) = rules::max_loss(&parts, mult) {
                            push(
                                &mut cands,
                                &[(i, q), (a, 2 * q), (b, q)],
                                Strategy::ShortButterfly,
                                amt,
                                (0, 0),
                            );
                        }
                    }
                }
            }
        }
        // Straddle / strangle with another short of the other type.
        for (j, &lj) in legs.iter().enumerate() {
            if lj.qty >= 0
                || st.rem[j] == 0
                || lj.kind == li.kind
                || lj.expiry != li.expiry
                || st.aside & (1u128 << j) != 0
            {
                continue;
            }
            let q = st.rem[i].min(st.rem[j]);
            let q128 = i128::from(q);
            if let (Some(ni), Some(nj)) = (self.naked(i, q128), self.naked(j, q128)) {
                let (call, put, cl, pl) = if li.kind == OptionType::Call {
                    (ni, nj, li, lj)
                } else {
                    (nj, ni, lj, li)
                };
                let amt = rules::straddle(
                    call,
                    cl.premium * mult * q128,
                    put,
                    pl.premium * mult * q128,
                );
                let s = if li.strike == lj.strike {
                    Strategy::Straddle
                } else {
                    Strategy::Strangle
                };
                push(&mut cands, &[(i, q), (j, q)], s, amt, (0, 0));
            }
        }
        // Past the node budget, follow only the candidate that saves most against margining its
        // legs alone (greedy completion, reported as not exhaustive).
        if greedy {
            let saving = |c: &Candidate| -> i128 {
                let alone: Option<i128> = c
                    .used
                    .iter()
                    .map(|&(j, q)| {
                        let q = i128::from(q);
                        if legs[j].qty < 0 {
                            self.naked(j, q).map(|a| a.1)
                        } else {
                            Some(rules::long_paid(&legs[j], q, mult).1)
                        }
                    })
                    .sum();
                alone.map_or(i128::MAX, |a| a - c.amounts.1)
            };
            if let Some(c) = cands
                .iter()
                .max_by_key(|c| saving(c))
                .filter(|c| saving(c) > 0)
            {
                let c = c.clone();
                return self.take(st, &c);
            }
        }
        let mut best: Option<Solution> = None;
        for c in &cands {
            let cand = self.take(st, c);
            if better(&cand, &best) {
                best = cand;
            }
        }
        // Set i aside (naked, or part of a max-loss combination at the end).
        let mut next = st.clone();
        next.aside |= 1u128 << i;
        let cand = self.solve(&next);
        if better(&cand, &best) {
            best = cand;
        }
        best
    }

    /// Apply a candidate group to the state and solve the rest.
    fn take(&mut self, st: &State, c: &Candidate) -> Option<Solution> {
        let legs = self.legs;
        let mut next = st.clone();
        for &(j, q) in &c.used {
            next.rem[j] -= q;
        }
        next.call_cover -= c.cover.0;
        next.put_cover -= c.cover.1;
        let gl = c
            .used
            .iter()
            .map(|&(j, q)| GroupLeg {
                leg: j,
                qty: if legs[j].qty < 0 { -q } else { q },
            })
            .collect();
        let mut g = group(c.strategy, gl, c.amounts);
        let mult = self.pos.multiplier;
        g.stock_shares = if c.cover.0 > 0 {
            c.cover.0 * mult
        } else if c.cover.1 > 0 {
            -c.cover.1 * mult
        } else {
            0
        };
        add(self.solve(&next), c.amounts, g)
    }

    /// Longs that can hedge `short` (same type, expiring no earlier, or the same day when
    /// `same_expiry`): for each expiry, the nearest strike above and the nearest at-or-below.
    fn nearest_longs(&self, st: &State, short: &MarginLeg, same_expiry: bool) -> Vec<usize> {
        let mut best: Vec<(i64, bool, usize)> = Vec::new(); // (expiry, above?, leg)
        for (j, l) in self.legs.iter().enumerate() {
            if l.qty <= 0 || st.rem[j] == 0 || l.kind != short.kind || l.expiry < short.expiry {
                continue;
            }
            if same_expiry && l.expiry != short.expiry {
                continue;
            }
            let above = l.strike > short.strike;
            match best
                .iter_mut()
                .find(|(e, a, _)| *e == l.expiry && *a == above)
            {
                Some(slot) => {
                    let cur = &self.legs[slot.2];
                    let closer = if above {
                        l.strike < cur.strike
                    } else {
                        l.strike > cur.strike
                    };
                    if closer {
                        slot.2 = j;
                    }
                }
                None => best.push((l.expiry, above, j)),
            }
        }
        best.into_iter().map(|(_, _, j)| j).collect()
    }

    /// Leftovers: per expiry, either shorts naked + longs paid, or a max-loss combination.
    fn terminal(&mut self, st: &State) -> Option<Solution> {
        let mut expiries: Vec<i64> = (0..self.legs.len())
            .filter(|&i| st.rem[i] > 0)
            .map(|i| self.legs[i].expiry)
            .collect();
        expiries.sort_unstable();
        expiries.dedup();
        let mut total = Solution {
            cost: (0, 0),
            groups: Vec::new(),
        };
        for e in expiries {
            let idx: Vec<usize> = (0..self.legs.len())
                .filter(|&i| st.rem[i] > 0 && self.legs[i].expiry == e)
                .collect();
            let best = self.leftover_expiry(st, &idx)?;
            total.cost = (total.cost.0 + best.cost.0, total.cost.1 + best.cost.1);
            total.groups.extend(best.groups);
        }
        Some(total)
    }

    fn leftover_expiry(&self, st: &State, idx: &[usize]) -> Option<Solution> {
        let mult = self.mult;
        let singles = |set: &[usize]| -> Option<Solution> {
            let mut s = Solution {
                cost: (0, 0),
                groups: Vec::new(),
            };
            for &i in set {
                let l = &self.legs[i];
                let q = i128::from(st.rem[i]);
                let (strategy, amt) = if l.qty < 0 {
                    let s = if l.kind == OptionType::Call {
                        Strategy::NakedCall
                    } else {
                        Strategy::NakedPut
                    };
                    (s, self.naked(i, q)?)
                } else {
                    let s = if l.kind == OptionType::Call {
                        Strategy::LongCall
                    } else {
                        Strategy::LongPut
                    };
                    (s, rules::long_paid(l, q, mult))
                };
                s.cost = (s.cost.0 + amt.1, s.cost.1 + amt.0);
                let signed = if l.qty < 0 { -st.rem[i] } else { st.rem[i] };
                s.groups.push(group(
                    strategy,
                    vec![GroupLeg {
                        leg: i,
                        qty: signed,
                    }],
                    amt,
                ));
            }
            Some(s)
        };
        let combo = |set: &[usize]| -> Option<Solution> {
            let parts: Vec<(&MarginLeg, i128)> = set
                .iter()
                .map(|&i| {
                    let l = &self.legs[i];
                    let q = i128::from(st.rem[i]);
                    (l, if l.qty < 0 { -q } else { q })
                })
                .collect();
            let amt = rules::max_loss(&parts, mult)?;
            let legs = set
                .iter()
                .map(|&i| GroupLeg {
                    leg: i,
                    qty: if self.legs[i].qty < 0 {
                        -st.rem[i]
                    } else {
                        st.rem[i]
                    },
                })
                .collect();
            Some(Solution {
                cost: (amt.1, amt.0),
                groups: vec![group(Strategy::MaxLossCombination, legs, amt)],
            })
        };
        let mut best = singles(idx);
        let has_short = idx.iter().any(|&i| self.legs[i].qty < 0);
        let has_long = idx.iter().any(|&i| self.legs[i].qty > 0);
        if has_short && has_long {
            let longs: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| self.legs[i].qty > 0)
                .collect();
            for pick in [None, Some(OptionType::Call), Some(OptionType::Put)] {
                // Combination of all longs with all shorts (None) or with one type's shorts.
                let shorts_in: Vec<usize> = idx
                    .iter()
                    .copied()
                    .filter(|&i| {
                        self.legs[i].qty < 0 && pick.is_none_or(|k| self.legs[i].kind == k)
                    })
                    .collect();
                if shorts_in.is_empty() {
                    continue;
                }
                let shorts_out: Vec<usize> = idx
                    .iter()
                    .copied()
                    .filter(|&i| self.legs[i].qty < 0 && !shorts_in.contains(&i))
                    .collect();
                let mut set = longs.clone();
                set.extend(&shorts_in);
                let cand = match (combo(&set), singles(&shorts_out)) {
                    (Some(mut c), Some(s)) => {
                        c.cost = (c.cost.0 + s.cost.0, c.cost.1 + s.cost.1);
                        c.groups.extend(s.groups);
                        Some(c)
                    }
                    _ => None,
                };
                if better(&cand, &best) {
                    best = cand;
                }
            }
        }
        best
    }
}

/// Is `long` the protective wing of a credit spread with `short`?
fn is_credit_wing(short: &MarginLeg, long: &MarginLeg) -> bool {
    match short.kind {
        OptionType::Call => long.strike > short.strike,
        OptionType::Put => long.strike < short.strike,
    }
}

/// Search `legs` (indices into the position) with the given stock cover.
fn run_search(
    pos: &MarginPosition,
    rules: &MarginRules,
    legs: &[MarginLeg],
    call_cover: i64,
    put_cover: i64,
) -> (Option<Solution>, bool) {
    let mut s = Search {
        legs,
        rules,
        pos,
        mult: i128::from(pos.multiplier),
        memo: HashMap::new(),
        nodes: 0,
    };
    let start = State {
        rem: legs.iter().map(|l| l.qty.abs()).collect(),
        aside: 0,
        call_cover,
        put_cover,
    };
    let sol = s.solve(&start);
    (sol, s.nodes <= NODE_BUDGET)
}

/// The whole position searched jointly; if that search had to finish greedily, also each expiry
/// searched on its own (no diagonal spreads; stock cover handed out nearest expiry first), and
/// the cheaper decomposition wins. Returns the solution and whether it is provably optimal.
fn best_decomposition(
    pos: &MarginPosition,
    rules: &MarginRules,
    call_cover: i64,
    put_cover: i64,
) -> Result<(Solution, bool), PricingError> {
    let missing = PricingError::MissingUnderlyingPrice {
        what: "a naked short option",
    };
    let (joint, exhaustive) = run_search(pos, rules, &pos.legs, call_cover, put_cover);
    if exhaustive {
        return joint.map(|s| (s, true)).ok_or(missing);
    }
    let mut expiries: Vec<i64> = pos.legs.iter().map(|l| l.expiry).collect();
    expiries.sort_unstable();
    expiries.dedup();
    let mut split = Some(Solution {
        cost: (0, 0),
        groups: Vec::new(),
    });
    let (mut cc, mut pc) = (call_cover, put_cover);
    for e in expiries {
        let idx: Vec<usize> = (0..pos.legs.len())
            .filter(|&i| pos.legs[i].expiry == e)
            .collect();
        let sub: Vec<MarginLeg> = idx.iter().map(|&i| pos.legs[i]).collect();
        let (part, _) = run_search(pos, rules, &sub, cc, pc);
        let (Some(part), Some(acc)) = (part, split.as_mut()) else {
            split = None;
            break;
        };
        for mut g in part.groups {
            for gl in &mut g.legs {
                gl.leg = idx[gl.leg];
            }
            match g.strategy {
                Strategy::CoveredCall => cc -= g.stock_shares / pos.multiplier,
                Strategy::CoveredPut => pc -= -g.stock_shares / pos.multiplier,
                _ => {}
            }
            acc.groups.push(g);
        }
        acc.cost = (acc.cost.0 + part.cost.0, acc.cost.1 + part.cost.1);
    }
    let best = if better(&split, &joint) { split } else { joint };
    best.map(|s| (s, false)).ok_or(missing)
}

/// Run the search (position already validated).
pub fn search(pos: &MarginPosition, rules: &MarginRules) -> Result<MarginResult, PricingError> {
    let mult = i128::from(pos.multiplier);
    let mut stock_groups = Vec::new();
    let (mut call_cover, mut put_cover) = (0i64, 0i64);
    if let Some(stock) = pos.stock {
        let amounts = rules::stock(stock.qty, stock.price, rules);
        let strategy = if stock.qty >= 0 {
            Strategy::LongStock
        } else {
            Strategy::ShortStock
        };
        stock_groups.push(StrategyGroup {
            strategy,
            legs: Vec::new(),
            stock_shares: stock.qty,
            gross: amounts.0,
            net: amounts.1,
        });
        let contracts = if stock.proxy {
            let price = pos
                .underlying_price
                .ok_or(PricingError::MissingUnderlyingPrice {
                    what: "options covered by a proxy stock position",
                })?;
            let value = stock.price * i128::from(stock.qty.unsigned_abs());
            i64::try_from(value / (price * mult)).unwrap_or(i64::MAX)
        } else {
            i64::try_from(i128::from(stock.qty.unsigned_abs()) / mult).unwrap_or(i64::MAX)
        };
        if stock.qty > 0 {
            call_cover = contracts;
        } else {
            put_cover = contracts;
        }
    }
    let (sol, exhaustive) = best_decomposition(pos, rules, call_cover, put_cover)?;
    let mut groups = sol.groups;
    groups.reverse();
    // Label long puts held against long stock (and long calls against short stock): the Reg T
    // initial amount is unchanged (put paid in full), but the pairing is what a broker reports.
    if let Some(stock) = pos.stock {
        for g in &mut groups {
            match g.strategy {
                Strategy::LongPut if stock.qty > 0 => g.strategy = Strategy::ProtectivePut,
                Strategy::LongCall if stock.qty < 0 => g.strategy = Strategy::LongCallShortStock,
                _ => {}
            }
        }
    }
    groups.extend(stock_groups);
    let gross_requirement = groups.iter().map(|g| g.gross).sum();
    let net_of_proceeds = groups.iter().map(|g| g.net).sum();
    let short_proceeds = pos
        .legs
        .iter()
        .filter(|l| l.qty < 0)
        .map(|l| l.premium * mult * i128::from(-l.qty))
        .sum();
    let long_premium = pos
        .legs
        .iter()
        .filter(|l| l.qty > 0)
        .map(|l| l.premium * mult * i128::from(l.qty))
        .sum();
    Ok(MarginResult {
        gross_requirement,
        net_of_proceeds,
        short_proceeds,
        long_premium,
        groups,
        exhaustive,
    })
}
