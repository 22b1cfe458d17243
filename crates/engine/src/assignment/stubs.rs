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

/// An assignment guard over a fresh coordinator on `broker` (e.g.
/// [`crate::stubs::NoopBroker::silent`]: accepts every order, reports only what the test emits),
/// holding the reference condor (SPY 21MAR25 435/440/460/465 ×2, strategy id 1) on `clock`
/// (New York at UTC−5): events are fed to it by hand (`on_event`). For benchmarks and tests of
/// its responses.
pub async fn reference_condor_guard(
    clock: std::sync::Arc<tradeguard_model::ManualClock>,
    broker: std::sync::Arc<crate::stubs::NoopBroker>,
) -> Result<super::AssignmentGuard, super::AssignmentError> {
    use crate::{Journal, JournalRecord};
    use std::sync::Arc;
    let expiry = NaiveDate::from_ymd_opt(2025, 3, 21).unwrap_or_default();
    let journal = crate::MemoryJournal::new();
    let condor = reference_legs(expiry)
        .into_iter()
        .map(|l| tradeguard_model::Position {
            account: tradeguard_model::stubs::account(),
            instrument: l.instrument,
            qty: l.qty,
            avg_cost: tradeguard_model::Price::ZERO,
        })
        .collect();
    journal
        .append(JournalRecord::KnownPositions(condor))
        .await
        .map_err(super::AssignmentError::from)?;
    let coordinator = crate::ExecutionCoordinator::start(crate::EngineDeps {
        broker: broker.clone(),
        journal: Arc::new(journal.clone()),
        clock: clock.clone(),
        risk: Box::new(crate::IntrinsicStressModel::default()),
        config: crate::EngineConfig::default(),
    })
    .await
    .map_err(super::AssignmentError::from)?;
    super::AssignmentGuard::new(super::GuardDeps {
        coordinator,
        broker,
        journal: Arc::new(journal),
        clock,
        hours: Arc::new(super::UsEquityHours::fixed_offset(-5 * 3600)),
        notifier: Arc::new(super::LogNotifier),
        strategies: vec![reference_condor(
            1,
            tradeguard_model::stubs::account(),
            expiry,
        )],
        config: super::AssignmentConfig::default(),
    })
    .await
}
