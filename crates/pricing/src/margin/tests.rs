//! Unit tests of the pairing search on positions where the best decomposition is known.

use super::*;
use crate::margin::money::to_micros;

fn leg(kind: OptionType, strike: f64, qty: i64, premium: f64) -> MarginLeg {
    MarginLeg {
        kind,
        strike: to_micros("strike", strike).unwrap(),
        qty,
        premium: to_micros("premium", premium).unwrap(),
        expiry: 30,
    }
}

fn pos(price: Option<f64>, legs: Vec<MarginLeg>) -> MarginPosition {
    MarginPosition {
        underlying_price: price.map(|p| to_micros("price", p).unwrap()),
        underlying_kind: UnderlyingKind::Equity,
        legs,
        stock: None,
        multiplier: 100,
    }
}

fn dollars(m: i128) -> f64 {
    to_dollars(m)
}

#[test]
fn credit_spread_uses_width_when_cheaper_than_naked() {
    use OptionType::Put;
    // Short 95 put, long 90 put at S=100: naked = 1.5 + max(20 - 5, 9.5) = 16.5/sh; width = 5/sh.
    let p = pos(
        Some(100.0),
        vec![leg(Put, 95.0, -2, 1.5), leg(Put, 90.0, 2, 0.5)],
    );
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].strategy, Strategy::VerticalCreditSpread);
    assert_eq!(dollars(r.gross_requirement), 1000.0);
    assert_eq!(dollars(r.net_of_proceeds), 800.0); // width 1000 - credit 200
}

#[test]
fn ratio_spread_pairs_what_it_can_and_margins_the_rest_naked() {
    use OptionType::Call;
    // Short 3 calls 105, long 1 call 100 at S=100.
    let p = pos(
        Some(100.0),
        vec![leg(Call, 105.0, -3, 1.0), leg(Call, 100.0, 1, 3.0)],
    );
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    let naked = r
        .groups
        .iter()
        .find(|g| g.strategy == Strategy::NakedCall)
        .unwrap();
    assert_eq!(naked.legs[0].qty, -2);
    // naked per contract: 1.0 + max(20 - 5, 10) = 16 -> 1600 x 2
    assert_eq!(dollars(naked.gross), 3200.0);
    let spread = r
        .groups
        .iter()
        .find(|g| g.strategy == Strategy::VerticalDebitSpread)
        .unwrap();
    assert_eq!(dollars(spread.net), 200.0); // debit 3 - 1
}

#[test]
fn short_strangle_charges_the_larger_side_plus_the_other_premium() {
    use OptionType::{Call, Put};
    let p = pos(
        Some(100.0),
        vec![leg(Call, 110.0, -1, 1.0), leg(Put, 95.0, -1, 2.0)],
    );
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].strategy, Strategy::Strangle);
    // call: 1 + max(20-10, 10) = 11; put: 2 + max(20-5, 9.5) = 17 -> 1700 + 100 call premium.
    assert_eq!(dollars(r.gross_requirement), 1800.0);
    assert_eq!(dollars(r.net_of_proceeds), 1500.0);
}

#[test]
fn box_spread_is_margined_at_max_loss() {
    use OptionType::{Call, Put};
    // Long 100/110 call spread + long 110/100 put spread = box worth 10 at expiry, paid 9.8.
    let p = pos(
        None,
        vec![
            leg(Call, 100.0, 1, 6.0),
            leg(Call, 110.0, -1, 1.2),
            leg(Put, 110.0, 1, 6.5),
            leg(Put, 100.0, -1, 1.5),
        ],
    );
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    // Two debit spreads cost their debits: 480 + 500 = 980 net, nothing more.
    assert_eq!(dollars(r.net_of_proceeds), 980.0);
}

#[test]
fn lowest_requirement_beats_greedy_pairing() {
    use OptionType::Call;
    // Short 100 call, longs at 95 and 120. Pairing with 95 (debit spread) is far cheaper than
    // with 120 (credit spread, width 20) — the search must find it.
    let p = pos(
        Some(100.0),
        vec![
            leg(Call, 100.0, -1, 4.0),
            leg(Call, 120.0, 1, 0.5),
            leg(Call, 95.0, 1, 7.0),
        ],
    );
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    assert_eq!(dollars(r.net_of_proceeds), 350.0); // debit 7 - 4 = 3 plus the 0.5 long paid
    assert!(r.exhaustive);
}

#[test]
fn missing_price_for_a_naked_leg_is_a_typed_error() {
    let p = pos(None, vec![leg(OptionType::Put, 50.0, -1, 1.0)]);
    assert_eq!(
        reg_t_margin(&p, &MarginRules::default())
            .unwrap_err()
            .code(),
        "margin.missing_underlying_price"
    );
}

#[test]
fn zero_quantity_and_empty_positions_are_rejected() {
    let p = pos(Some(10.0), vec![leg(OptionType::Put, 50.0, 0, 1.0)]);
    assert_eq!(
        reg_t_margin(&p, &MarginRules::default())
            .unwrap_err()
            .code(),
        "margin.zero_quantity"
    );
    let p = pos(Some(10.0), vec![]);
    assert_eq!(
        reg_t_margin(&p, &MarginRules::default())
            .unwrap_err()
            .code(),
        "margin.empty_position"
    );
}

#[test]
fn house_minimum_applies_per_naked_contract() {
    let rules = MarginRules {
        house_min_per_contract: 250 * MICROS,
        ..MarginRules::default()
    };
    // Far OTM cheap put: 0.05 + max(0.2*10 - 5, 0.1*5) = 0.55/sh = 55 < 250 floor.
    let p = pos(Some(10.0), vec![leg(OptionType::Put, 5.0, -2, 0.05)]);
    let r = reg_t_margin(&p, &rules).unwrap();
    assert_eq!(dollars(r.gross_requirement), 500.0);
}

/// A realistic multi-strategy book: condor, butterfly, verticals, naked legs and covered calls
/// across two expiries (20 legs). Too big to prove optimal within the node budget, so the result
/// is the best of the joint greedy completion and the per-expiry searches: it must still find
/// the named strategies, account for every contract once, and beat margining legs one by one.
/// (Its speed is a bench figure, not a test.)
#[test]
fn realistic_twenty_leg_book_finds_the_strategies() {
    use OptionType::{Call, Put};
    let mut legs = Vec::new();
    for (exp, base) in [(30, 100.0), (60, 105.0)] {
        let mut push = |kind, strike: f64, qty, prem| {
            let mut l = leg(kind, strike, qty, prem);
            l.expiry = exp;
            legs.push(l);
        };
        push(Put, base - 15.0, 3, 0.4);
        push(Put, base - 10.0, -3, 0.9);
        push(Call, base + 10.0, -3, 1.1);
        push(Call, base + 15.0, 3, 0.5);
        push(Call, base - 5.0, 2, 7.0);
        push(Call, base, -4, 4.0);
        push(Call, base + 5.0, 2, 2.0);
        push(Put, base - 20.0, -5, 0.2);
        push(Call, base + 25.0, -2, 0.1);
        push(Put, base + 5.0, 1, 6.5);
    }
    let mut p = pos(Some(100.0), legs);
    p.stock = Some(StockPosition {
        qty: 100,
        price: to_micros("price", 100.0).unwrap(),
        proxy: false,
    });
    let r = reg_t_margin(&p, &MarginRules::default()).unwrap();
    // Upper bound: shorts naked, longs paid, stock 50%.
    let price = to_micros("price", 100.0).unwrap();
    let naive: i128 = p
        .legs
        .iter()
        .map(|l| {
            let q = i128::from(l.qty.abs());
            if l.qty < 0 {
                rules::naked_short(
                    l,
                    q,
                    price,
                    UnderlyingKind::Equity,
                    &MarginRules::default(),
                    100,
                )
                .1
            } else {
                rules::long_paid(l, q, 100).1
            }
        })
        .sum::<i128>()
        + rules::stock(100, price, &MarginRules::default()).1;
    assert!(
        r.net_of_proceeds < naive,
        "{} vs naive {}",
        r.net_of_proceeds,
        naive
    );
    let strategies: Vec<Strategy> = r.groups.iter().map(|g| g.strategy).collect();
    assert!(strategies.contains(&Strategy::IronCondor), "{strategies:?}");
    assert!(
        strategies.contains(&Strategy::LongButterfly),
        "{strategies:?}"
    );
    assert!(
        strategies.contains(&Strategy::CoveredCall),
        "{strategies:?}"
    );
    // Every contract of every leg is accounted for exactly once.
    for (i, l) in p.legs.iter().enumerate() {
        let used: i64 = r
            .groups
            .iter()
            .flat_map(|g| &g.legs)
            .filter(|gl| gl.leg == i)
            .map(|gl| gl.qty)
            .sum();
        assert_eq!(used, l.qty, "leg {i}");
    }
}
