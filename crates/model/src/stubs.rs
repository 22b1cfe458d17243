//! Test builders for model types (enable feature `stubs` in other crates' dev-dependencies).
//!
//! Defaults: account "DU-TEST", underlying SPY, expiry 2025-01-17, multiplier 100.

use crate::clock::Timestamp;
use crate::ids::{AccountId, OrderId, StrategyId};
use crate::instrument::{Instrument, OptionContract, Right};
use crate::leg::{Leg, LegRole};
use crate::money::Price;
use crate::order::{ComboLeg, ComboOrder, OrderRequest, OrderType, Side, Tif};
use crate::recognition::recognize;
use crate::strategy::{Strategy, StrategyState};
use chrono::NaiveDate;

/// The stub account id.
pub fn account() -> AccountId {
    AccountId::new("DU-TEST")
}

/// The stub expiry, 2025-01-17 (a Friday).
pub fn expiry() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 17).unwrap_or_default()
}

/// A timestamp at 2025-01-13T15:00:00Z (Monday 10:00 New York).
pub fn ts() -> Timestamp {
    Timestamp::from_secs(1_736_780_400)
}

/// A SPY option with a whole-dollar strike.
pub fn option(right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        expiry(),
        right,
        Price::from_raw(strike.saturating_mul(crate::SCALE)),
    ))
}

/// SPY call at `strike`.
pub fn call(strike: i64) -> Instrument {
    option(Right::Call, strike)
}

/// SPY put at `strike`.
pub fn put(strike: i64) -> Instrument {
    option(Right::Put, strike)
}

/// A leg with role Hedge and price 1.00 (recognition assigns real roles).
pub fn leg(instrument: Instrument, qty: i64) -> Leg {
    Leg {
        instrument,
        qty,
        role: LegRole::Hedge,
        avg_price: Price::from_raw(crate::SCALE),
    }
}

/// A SPY stock leg.
pub fn stock_leg(qty: i64) -> Leg {
    Leg {
        instrument: Instrument::stock("SPY"),
        qty,
        role: LegRole::Stock,
        avg_price: Price::from_raw(450 * crate::SCALE),
    }
}

/// A single SPY stock order.
pub fn order(side: Side, qty: i64, order_type: OrderType) -> OrderRequest {
    OrderRequest {
        id: OrderId(1),
        account: account(),
        instrument: Instrument::stock("SPY"),
        side,
        qty,
        order_type,
        tif: Tif::Day,
        outside_rth: false,
    }
}

/// 430/440/460/470 SPY iron condor legs, one lot, recognized roles.
pub fn iron_condor_legs() -> Vec<Leg> {
    let mut legs = vec![
        leg(put(430), 1),
        leg(put(440), -1),
        leg(call(460), -1),
        leg(call(470), 1),
    ];
    let r = recognize(&legs);
    for (l, role) in legs.iter_mut().zip(r.roles) {
        l.role = role;
    }
    legs
}

/// An open iron condor strategy.
pub fn iron_condor_strategy() -> Strategy {
    let legs = iron_condor_legs();
    Strategy {
        id: StrategyId(1),
        account: account(),
        name: "SPY IC".into(),
        kind: recognize(&legs).kind,
        legs,
        state: StrategyState::Open,
        broken_reason: None,
    }
}

/// A combo order selling the 430/440/460/470 iron condor (buying the combo = buying the wings).
pub fn iron_condor_combo(id: OrderId, qty: i64, order_type: OrderType) -> ComboOrder {
    let cl = |instrument, side| ComboLeg {
        instrument,
        side,
        ratio: 1,
    };
    ComboOrder {
        id,
        account: account(),
        legs: vec![
            cl(put(430), Side::Buy),
            cl(put(440), Side::Sell),
            cl(call(460), Side::Sell),
            cl(call(470), Side::Buy),
        ],
        qty,
        order_type,
        tif: Tif::Day,
    }
}
