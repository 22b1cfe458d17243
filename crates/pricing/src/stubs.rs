//! Stub builders for tests and benches: small, valid inputs with one knob each.

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
