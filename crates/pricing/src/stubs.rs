//! Stub builders for tests and benches: small, valid inputs with one knob each.

use crate::risk_leg::{Instrument, RiskLeg};
use crate::types::{BsmInputs, OptionType};

/// A one-year, 20%-vol option at r = 5%, q = 1%.
pub fn bsm_inputs(kind: OptionType, spot: f64, strike: f64) -> BsmInputs {
    BsmInputs {
        kind,
        spot,
        strike,
        t: 1.0,
        r: 0.05,
        q: 0.01,
        vol: 0.2,
    }
}

/// A 30-day, 25%-vol European option leg on a 100.00 underlying, multiplier 100.
pub fn option_leg(kind: OptionType, strike: f64, qty: i64) -> RiskLeg {
    RiskLeg {
        instrument: Instrument::Option {
            kind,
            strike,
            t: 30.0 / 365.0,
            vol: 0.25,
            american: false,
        },
        spot: 100.0,
        r: 0.045,
        q: 0.0,
        qty,
        multiplier: 100.0,
        half_spread: None,
        entry_price: None,
    }
}

/// A deterministic book of `n` option legs across strikes, expiries, sides and types (plus the
/// variety a real book has: some American legs, explicit spreads).
pub fn book_of_legs(n: usize) -> Vec<RiskLeg> {
    (0..n)
        .map(|i| {
            let kind = if i % 2 == 0 {
                OptionType::Call
            } else {
                OptionType::Put
            };
            let strike = 70.0 + (i % 61) as f64;
            let days = 7 + (i * 37) % 720;
            let qty = if i % 3 == 0 {
                -((i % 7) as i64 + 1)
            } else {
                (i % 5) as i64 + 1
            };
            RiskLeg {
                instrument: Instrument::Option {
                    kind,
                    strike,
                    t: days as f64 / 365.0,
                    vol: 0.15 + 0.01 * (i % 30) as f64,
                    american: i % 4 == 0,
                },
                spot: 100.0,
                r: 0.045,
                q: 0.01,
                qty,
                multiplier: 100.0,
                half_spread: if i % 2 == 0 { Some(0.05) } else { None },
                entry_price: None,
            }
        })
        .collect()
}

/// A 20-leg, two-expiry Reg T position (condors, butterflies, verticals, naked legs, covered
/// calls against 100 shares) for margin tests and benches.
pub fn twenty_leg_margin_position() -> crate::margin::MarginPosition {
    use crate::margin::{MarginLeg, MarginPosition, StockPosition, UnderlyingKind};
    let m = |x: f64| (x * 1e6).round() as i128;
    let mut legs = Vec::new();
    for (expiry, base) in [(30, 100.0), (60, 105.0)] {
        for (kind, dk, qty, prem) in [
            (OptionType::Put, -15.0, 3, 0.4),
            (OptionType::Put, -10.0, -3, 0.9),
            (OptionType::Call, 10.0, -3, 1.1),
            (OptionType::Call, 15.0, 3, 0.5),
            (OptionType::Call, -5.0, 2, 7.0),
            (OptionType::Call, 0.0, -4, 4.0),
            (OptionType::Call, 5.0, 2, 2.0),
            (OptionType::Put, -20.0, -5, 0.2),
            (OptionType::Call, 25.0, -2, 0.1),
            (OptionType::Put, 5.0, 1, 6.5),
        ] {
            legs.push(MarginLeg {
                kind,
                strike: m(base + dk),
                qty,
                premium: m(prem),
                expiry,
            });
        }
    }
    MarginPosition {
        underlying_price: Some(m(100.0)),
        underlying_kind: UnderlyingKind::Equity,
        legs,
        stock: Some(StockPosition {
            qty: 100,
            price: m(100.0),
            proxy: false,
        }),
        multiplier: 100,
    }
}
