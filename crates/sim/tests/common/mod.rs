//! Shared builders for the simulator integration tests.
#![allow(dead_code)]

use std::time::Duration;
use tradeguard_model::{
    BrokerEvent, Execution, Instrument, Money, OptionContract, OrderId, OrderRequest, OrderStatus,
    OrderType, OrderUpdate, Position, Price, Right, Side, Tif, stubs,
};
use tradeguard_sim::{
    AssignmentConfig, FaultConfig, MarketConfig, MatchingConfig, SimConfig, SimVenue,
    UnderlyingSpec, calendar,
};

pub fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

pub fn date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap()
}

/// Quiet market: SPY 500, no diffusion/jumps/gaps, 100 ms latency, no slippage or partials.
pub fn cfg(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        start: calendar::et_time(date(), 10, 0),
        account: stubs::account(),
        cash: Money::from_units(1_000_000).unwrap(),
        positions: vec![],
        underlyings: vec![UnderlyingSpec {
            symbol: "SPY".into(),
            price: p("500"),
            vol: 0.0,
            drift: 0.0,
            dividend_yield: 0.0,
            ex_dividend_dates: vec![],
        }],
        market: MarketConfig {
            jump_intensity: 0.0,
            gap_std: 0.0,
            ..MarketConfig::default()
        },
        matching: MatchingConfig {
            latency: Duration::from_millis(100),
            latency_jitter: Duration::ZERO,
            max_slippage_ticks: 0,
            ..MatchingConfig::default()
        },
        assignment: AssignmentConfig::default(),
        faults: FaultConfig::default(),
        scheduled: vec![],
    }
}

/// A connected venue with the connect events drained.
pub fn venue(cfg: SimConfig) -> SimVenue {
    let mut v = SimVenue::new(cfg).unwrap();
    v.connect();
    run(&mut v, 1);
    v
}

pub fn run(v: &mut SimVenue, secs: u64) -> Vec<BrokerEvent> {
    let until = v.now().plus(Duration::from_secs(secs));
    v.step(until)
}

pub fn spy() -> Instrument {
    Instrument::stock("SPY")
}

pub fn opt(right: Right, strike: i64, expiry: chrono::NaiveDate) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        expiry,
        right,
        Price::from_units(strike).unwrap(),
    ))
}

pub fn order(
    v: &mut SimVenue,
    inst: Instrument,
    side: Side,
    qty: i64,
    t: OrderType,
) -> OrderRequest {
    order_with_id(v.next_order_id().unwrap(), inst, side, qty, t)
}

pub fn order_with_id(
    id: OrderId,
    inst: Instrument,
    side: Side,
    qty: i64,
    t: OrderType,
) -> OrderRequest {
    OrderRequest {
        id,
        account: stubs::account(),
        instrument: inst,
        side,
        qty,
        order_type: t,
        tif: Tif::Day,
        outside_rth: false,
    }
}

pub fn place(v: &mut SimVenue, inst: Instrument, side: Side, qty: i64, t: OrderType) -> OrderId {
    let o = order(v, inst, side, qty, t);
    v.place(&o).unwrap();
    o.id
}

pub fn execs(evs: &[BrokerEvent]) -> Vec<Execution> {
    evs.iter()
        .filter_map(|e| match e {
            BrokerEvent::Execution(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

pub fn statuses(evs: &[BrokerEvent], id: OrderId) -> Vec<OrderUpdate> {
    evs.iter()
        .filter_map(|e| match e {
            BrokerEvent::OrderStatus(u) if u.order_id == id => Some(u.clone()),
            _ => None,
        })
        .collect()
}

pub fn last_status(evs: &[BrokerEvent], id: OrderId) -> Option<OrderStatus> {
    statuses(evs, id).last().map(|u| u.status)
}

pub fn positions(evs: &[BrokerEvent]) -> Vec<Position> {
    evs.iter()
        .filter_map(|e| match e {
            BrokerEvent::Position(x) => Some(x.clone()),
            _ => None,
        })
        .collect()
}
