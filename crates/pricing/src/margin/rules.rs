//! Per-strategy Reg T amounts (micro-dollars, whole group): naked options, spreads by maximum
//! loss, straddles/strangles, covered positions and stock.

use super::money::pct_of;
use super::{MarginLeg, MarginRules, UnderlyingKind};
use crate::types::OptionType;

/// (gross, net) of a group in micro-dollars.
pub type Amounts = (i128, i128);

/// Naked short option, `contracts` > 0: proceeds + pct x underlying - OTM, at least proceeds +
/// 10% of the underlying (calls) / exercise price (puts); house floor per contract on top.
pub fn naked_short(
    leg: &MarginLeg,
    contracts: i128,
    price: i128,
    kind: UnderlyingKind,
    rules: &MarginRules,
    mult: i128,
) -> Amounts {
    let otm = match leg.kind {
        OptionType::Call => (leg.strike - price).max(0),
        OptionType::Put => (price - leg.strike).max(0),
    };
    let base = pct_of(price, rules.naked_bps(kind)) - otm;
    let floor_basis = match leg.kind {
        OptionType::Call => price,
        OptionType::Put => leg.strike,
    };
    let minimum = pct_of(floor_basis, rules.naked_minimum_bps);
    let per_contract = ((leg.premium + base.max(minimum)) * mult).max(rules.house_min_per_contract);
    let gross = per_contract * contracts;
    (gross, gross - leg.premium * mult * contracts)
}

/// Long option paid in full.
pub fn long_paid(leg: &MarginLeg, contracts: i128, mult: i128) -> Amounts {
    let cost = leg.premium * mult * contracts;
    (cost, cost)
}

/// Short straddle/strangle: the larger naked requirement plus the other side's premium.
pub fn straddle(call: Amounts, call_premium: i128, put: Amounts, put_premium: i128) -> Amounts {
    let gross = if call.0 >= put.0 {
        call.0 + put_premium
    } else {
        put.0 + call_premium
    };
    (gross, gross - call_premium - put_premium)
}

/// Maximum loss at expiry of a same-expiry combination given as (leg, signed contracts).
/// Returns `None` when the loss is unbounded (net short calls as the underlying rises).
/// Later-dated longs count at intrinsic value, which understates their worth (conservative).
pub fn max_loss(parts: &[(&MarginLeg, i128)], mult: i128) -> Option<Amounts> {
    let net_calls: i128 = parts
        .iter()
        .filter(|(l, _)| l.kind == OptionType::Call)
        .map(|(_, q)| q)
        .sum();
    if net_calls < 0 {
        return None;
    }
    let payoff_at = |s: i128| -> i128 {
        parts
            .iter()
            .map(|(l, q)| {
                let intrinsic = match l.kind {
                    OptionType::Call => (s - l.strike).max(0),
                    OptionType::Put => (l.strike - s).max(0),
                };
                intrinsic * q
            })
            .sum::<i128>()
            * mult
    };
    // Piecewise linear in S with kinks at strikes; the minimum is at 0, a strike, or +inf (where
    // the slope is net_calls >= 0, so never below the last strike's value).
    let min_payoff = std::iter::once(0)
        .chain(parts.iter().map(|(l, _)| l.strike))
        .map(payoff_at)
        .min()
        .unwrap_or(0);
    let debit: i128 = parts.iter().map(|(l, q)| l.premium * q * mult).sum();
    // Long premium is always paid in full, so a combination whose payoff can never be negative
    // (a box) still needs its net debit; otherwise the maximum loss.
    let net = (debit - min_payoff.min(0)).max(0);
    let credit = -debit;
    Some((net + credit.max(0), net))
}

/// Covered call: no requirement on the call, proceeds applied (the stock is margined on its own).
pub fn covered_call(leg: &MarginLeg, contracts: i128, mult: i128) -> Amounts {
    (0, -leg.premium * mult * contracts)
}

/// Covered put (short put against short stock): the put's in-the-money amount; proceeds applied.
pub fn covered_put(leg: &MarginLeg, contracts: i128, price: i128, mult: i128) -> Amounts {
    let itm = (leg.strike - price).max(0) * mult * contracts;
    (itm + leg.premium * mult * contracts, itm)
}

/// Reg T initial margin on stock (long or short).
pub fn stock(shares: i64, price: i128, rules: &MarginRules) -> Amounts {
    let req = pct_of(
        price * i128::from(shares.unsigned_abs()),
        rules.stock_initial_bps,
    );
    (req, req)
}
