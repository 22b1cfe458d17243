//! Test builders for the assignment guard: the reference SPY iron condor of issue 8
//! (long 435 P ×2 / short 440 P ×2 / short 460 C ×2 / long 465 C ×2) on any expiry.

use chrono::NaiveDate;
use tradeguard_model::{
    AccountId, Instrument, Leg, LegRole, OptionContract, Price, Right, Strategy, StrategyId,
    StrategyKind, StrategyState,
};

/// A SPY equity option.
pub fn spy_option(expiry: NaiveDate, right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        expiry,
        right,
        Price::from_raw(strike.saturating_mul(tradeguard_model::SCALE)),
    ))
}

/// The reference condor's legs: (instrument, signed qty, role).
pub fn reference_legs(expiry: NaiveDate) -> Vec<Leg> {
    let leg = |right, strike, qty, role| Leg {
        instrument: spy_option(expiry, right, strike),
        qty,
        role,
        avg_price: Price::from_raw(tradeguard_model::SCALE),
    };
    vec![
        leg(Right::Put, 435, 2, LegRole::Protection),
        leg(Right::Put, 440, -2, LegRole::Short),
        leg(Right::Call, 460, -2, LegRole::Short),
        leg(Right::Call, 465, 2, LegRole::Protection),
    ]
}

/// The reference condor as an Open strategy.
pub fn reference_condor(id: u64, account: AccountId, expiry: NaiveDate) -> Strategy {
    Strategy {
        id: StrategyId(id),
        account,
        name: "SPY IC 435/440/460/465".into(),
        kind: StrategyKind::IronCondor,
        legs: reference_legs(expiry),
        state: StrategyState::Open,
        broken_reason: None,
    }
}
