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
