//! Exercise and assignment: position changes with no execution, expiry, early assignment, demo.

mod common;
use common::*;
use std::time::Duration;
use tradeguard_model::{BrokerEvent, Money, Position, Price, Right, SCALE};
use tradeguard_sim::{
    DeliveryReport, Scenario, SimConfig, calendar, scenario::DEMO_ASSIGNMENT_AFTER,
};

fn with_positions(mut c: SimConfig, legs: &[(tradeguard_model::Instrument, i64)]) -> SimConfig {
    c.positions = legs
        .iter()
        .map(|(i, q)| Position {
            account: c.account.clone(),
            instrument: i.clone(),
            qty: *q,
            avg_cost: p("1"),
        })
        .collect();
    c
}

fn far() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 6, 20).unwrap()
}

#[test]
fn forced_assignment_changes_positions_without_execution() {
    let put = opt(Right::Put, 520, far());
    let call = opt(Right::Call, 480, far());
    let mut c = cfg(1);
    c.assignment.report = DeliveryReport::batch();
    let mut v = venue(with_positions(c, &[(put.clone(), -2), (call.clone(), 3)]));
    let cash0 = v.account().unwrap().net_liquidation;
    v.force_assignment(&put.id(), 1).unwrap();
    let evs = run(&mut v, 1);
    assert!(execs(&evs).is_empty(), "assignment has no execution");
    let pos = positions(&evs);
    assert_eq!((pos[0].instrument.clone(), pos[0].qty), (put.clone(), -1));
    assert_eq!(
        (pos[1].instrument.clone(), pos[1].qty, pos[1].avg_cost),
        (spy(), 100, p("520"))
    );
    // Long call exercised: +100 shares per contract at 480.
    v.force_assignment(&call.id(), 5).unwrap();
    let pos = positions(&run(&mut v, 1));
    assert_eq!((pos[0].qty, pos[1].qty), (0, 400));
    let snap = v.positions().unwrap();
    assert_eq!(
        snap.iter().find(|p| p.instrument == spy()).unwrap().qty,
        400
    );
    // Cash paid 520*100 + 480*300; NLV is unchanged apart from the options' time value.
    assert!(v.account().unwrap().net_liquidation < cash0);
    assert_eq!(
        v.force_assignment(&call.id(), 1).unwrap_err().code(),
        "sim.no_position"
    );
    assert_eq!(
        v.force_assignment(&spy().id(), 1).unwrap_err().code(),
        "sim.not_an_option"
    );
    assert_eq!(
        v.force_assignment(&put.id(), 0).unwrap_err().code(),
        "sim.bad_count"
    );
}

/// The venue reports an assignment as IB does: the option's and the stock's positions as two
/// updates, the later one up to `max_gap` after the first, in the drawn order; with
/// `unreported_prob` 1 the later one never comes and only the positions snapshot shows it.
#[test]
fn an_assignment_is_reported_as_two_updates_with_a_seeded_gap() {
    let put = opt(Right::Put, 520, far());
    let split = |stock_first: bool, unreported: bool| {
        let mut c = cfg(3);
        c.assignment.report = DeliveryReport {
            max_gap: Duration::from_secs(4),
            stock_first_prob: if stock_first { 1.0 } else { 0.0 },
            unreported_prob: if unreported { 1.0 } else { 0.0 },
        };
        let mut v = venue(with_positions(c, &[(put.clone(), -2)]));
        v.force_assignment(&put.id(), 1).unwrap();
        let seen: Vec<(tradeguard_model::Instrument, i64)> = positions(&run(&mut v, 6))
            .into_iter()
            .map(|p| (p.instrument, p.qty))
            .collect();
        (v, seen)
    };
    // Option first, then the stock.
    let (_, seen) = split(false, false);
    assert_eq!(seen, vec![(put.clone(), -1), (spy(), 100)]);
    // Stock first, then the option.
    let (_, seen) = split(true, false);
    assert_eq!(seen, vec![(spy(), 100), (put.clone(), -1)]);
    // The later update lost: only a snapshot shows the option's change.
    let (v, seen) = split(true, true);
    assert_eq!(seen, vec![(spy(), 100)]);
    let snap = v.positions().unwrap();
    assert_eq!(snap.iter().find(|p| p.instrument == put).unwrap().qty, -1);
    // Same seed, same gap: the run replays.
    let gap = |seed: u64| {
        let mut c = cfg(seed);
        c.assignment.report = DeliveryReport {
            max_gap: Duration::from_secs(30),
            ..DeliveryReport::default()
        };
        let mut v = venue(with_positions(c, &[(put.clone(), -2)]));
        v.force_assignment(&put.id(), 1).unwrap();
        let t0 = v.now();
        let mut at = Vec::new();
        for _ in 0..40 {
            for p in positions(&run(&mut v, 1)) {
                at.push((v.now().duration_since(t0), p.instrument));
            }
        }
        at
    };
    assert_eq!(gap(9), gap(9));
    // Gaps are drawn over the whole range: across seeds, some seconds apart.
    let gaps: Vec<Duration> = (1..=12)
        .map(|seed| {
            let at = gap(seed);
            assert_eq!(at.len(), 2, "{at:?}");
            at[1].0 - at[0].0
        })
        .collect();
    assert!(
        gaps.iter().any(|g| *g >= Duration::from_secs(5)),
        "{gaps:?}"
    );
    assert!(gaps.iter().any(|g| *g != gaps[0]), "{gaps:?}");
}

#[test]
fn expiry_exercises_itm_and_expires_otm_overnight() {
    let today = date();
    let itm_short_put = opt(Right::Put, 510, today);
    let otm_long_call = opt(Right::Call, 520, today);
    let itm_short_call = opt(Right::Call, 490, today);
    let mut c = cfg(2);
    c.assignment.report = DeliveryReport::batch();
    let c = with_positions(
        c,
        &[
            (itm_short_put.clone(), -1),
            (otm_long_call.clone(), 2),
            (itm_short_call.clone(), -1),
        ],
    );
    let mut v = venue(c);
    let close = calendar::close_of(today);
    let evs = v.step(close.plus(Duration::from_secs(60)));
    assert!(
        positions(&evs).is_empty(),
        "nothing delivered at the close itself"
    );
    let evs = v.step(close.plus(Duration::from_secs(7 * 3600)));
    assert!(execs(&evs).is_empty());
    let pos = positions(&evs);
    let qty = |i: &tradeguard_model::Instrument| {
        pos.iter().rev().find(|p| &p.instrument == i).map(|p| p.qty)
    };
    assert_eq!(qty(&itm_short_put), Some(0));
    assert_eq!(qty(&otm_long_call), Some(0));
    assert_eq!(qty(&itm_short_call), Some(0));
    // -100 from the call and +100 from the put (delivered in instrument-id order).
    assert_eq!(qty(&spy()), Some(0));
    assert!(pos.iter().any(|p| p.instrument == spy() && p.qty == -100));
    assert!(v.positions().unwrap().is_empty());
    // Cash: -510*100 (bought at the put strike) + 490*100 (sold at the call strike).
    assert_eq!(
        v.account().unwrap().net_liquidation,
        Money::from_units(1_000_000 - 2_000).unwrap()
    );
}

#[test]
fn early_assignment_of_deep_itm_shorts_depends_on_probability_and_ex_dividend() {
    let deep_put = opt(Right::Put, 600, far());
    let run_day = |c: SimConfig| {
        let mut v = venue(c);
        let next_morning = calendar::et_time(date().succ_opt().unwrap(), 8, 0);
        positions(&v.step(next_morning))
    };
    let mut c = with_positions(cfg(3), &[(deep_put.clone(), -3)]);
    c.assignment.early_prob_per_day = 1.0;
    let pos = run_day(c.clone());
    assert!(
        pos.iter().any(|p| p.instrument == deep_put && p.qty > -3),
        "{pos:?}"
    );
    assert!(pos.iter().any(|p| p.instrument == spy() && p.qty > 0));
    c.assignment.early_prob_per_day = 0.0;
    assert!(run_day(c).is_empty());

    // A deep ITM call the day before ex-dividend: tiny base probability × huge multiplier.
    let deep_call = opt(Right::Call, 400, far());
    let mut c = with_positions(cfg(4), &[(deep_call.clone(), -1)]);
    // With a dividend yield above the rate a deep ITM call has no time value left.
    c.market.rate = 0.0;
    c.underlyings[0].dividend_yield = 0.03;
    c.assignment.early_prob_per_day = 1e-9;
    c.assignment.ex_div_multiplier = 1e9;
    assert!(
        run_day(c.clone()).is_empty(),
        "no ex-dividend date: practically never"
    );
    c.underlyings[0].ex_dividend_dates = vec![date().succ_opt().unwrap()];
    let pos = run_day(c);
    assert!(pos.iter().any(|p| p.instrument == deep_call && p.qty == 0));
    assert!(pos.iter().any(|p| p.instrument == spy() && p.qty == -100));
}

#[test]
fn index_options_settle_in_cash() {
    let mut c = cfg(5);
    c.underlyings[0].symbol = "SPX".into();
    let spx = tradeguard_model::Instrument::from_occ("SPX   250620P00520000").unwrap();
    let c = with_positions(c, &[(spx.clone(), -1)]);
    let mut v = venue(c);
    let before = v.account().unwrap().net_liquidation.raw();
    let q = v.quote(&spx).unwrap();
    v.force_assignment(&spx.id(), 1).unwrap();
    let pos = positions(&run(&mut v, 1));
    assert_eq!(pos.len(), 1, "no stock delivered: {pos:?}");
    assert_eq!(pos[0].qty, 0);
    // Short put assigned: pays intrinsic (520 - 500) * 100 in cash and drops the option's
    // (negative) mark, so NLV moves by (mark - 20) * 100; the mark lies within the spread.
    let after = v.account().unwrap().net_liquidation.raw();
    let intrinsic = 20 * SCALE;
    let lo = (q.bid.unwrap().raw() - intrinsic) * 100;
    let hi = (q.ask.unwrap().raw() - intrinsic) * 100;
    assert!(
        (lo..=hi).contains(&(after - before)),
        "{lo} <= {} <= {hi}",
        after - before
    );
    assert!(v.positions().unwrap().is_empty());
}

#[test]
fn demo_moves_quotes_and_assigns_a_short_put_within_twenty_virtual_minutes() {
    let s = Scenario::demo(42);
    let mut v = s.venue().unwrap();
    v.connect();
    v.subscribe_quotes(&s.instruments()).unwrap();
    let start = v.now();
    let evs = v.step(start.plus(Duration::from_secs(20 * 60)));
    let spy_quotes: Vec<Price> = evs
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::Quote(q) if q.instrument == spy() => q.bid,
            _ => None,
        })
        .take(10)
        .collect();
    assert_eq!(spy_quotes.len(), 10);
    assert!(
        spy_quotes.windows(2).any(|w| w[0] != w[1]),
        "quotes move at once"
    );
    let put590 = tradeguard_model::Instrument::from_occ("SPY   250321P00590000").unwrap();
    let assigned = evs
        .iter()
        .any(|e| matches!(e, BrokerEvent::Position(p) if p.instrument == put590 && p.qty == -1));
    assert!(assigned, "short put assigned");
    let pos = positions(&evs);
    assert!(pos.iter().any(|p| p.instrument == spy() && p.qty == 200));
    assert!(execs(&evs).is_empty(), "no executions: nobody traded");
    assert!(DEMO_ASSIGNMENT_AFTER <= Duration::from_secs(20 * 60));
}

/// DST seed 4418: a GTC market order on an option expiring today, placed after the close,
/// kept working after its contract expired. Orders on an expired contract are now cancelled
/// at its last close (any TIF); orders on later expiries stay.
#[test]
fn orders_on_a_contract_expiring_today_are_cancelled_at_the_close_and_refused_after() {
    let today = date();
    let expiring = opt(Right::Call, 520, today);
    let later = opt(Right::Call, 520, far());
    let c = with_positions(cfg(3), &[(expiring.clone(), 1), (later.clone(), 1)]);
    let mut v = venue(c);
    let mut ids = Vec::new();
    for i in [&expiring, &later] {
        let mut o = order(
            &mut v,
            i.clone(),
            tradeguard_model::Side::Sell,
            1,
            tradeguard_model::OrderType::Limit { limit: p("50") },
        );
        o.tif = tradeguard_model::Tif::Gtc;
        v.place(&o).unwrap();
        ids.push(o.id);
    }
    let evs = v.step(calendar::close_of(today).plus(Duration::from_secs(5)));
    let st = statuses(&evs, ids[0]);
    let last = st.last().unwrap();
    assert_eq!(last.status, tradeguard_model::OrderStatus::Cancelled);
    assert_eq!(last.reason.as_ref().unwrap().code, "sim.contract_expired");
    assert_eq!(
        last_status(&evs, ids[1]),
        Some(tradeguard_model::OrderStatus::Submitted)
    );
    let open: Vec<_> = v
        .open_orders()
        .unwrap()
        .iter()
        .map(|o| o.status.order_id)
        .collect();
    assert_eq!(open, vec![ids[1]]);
    // After its last close the contract no longer trades: a new order on it is rejected.
    let id = place(
        &mut v,
        expiring,
        tradeguard_model::Side::Sell,
        1,
        tradeguard_model::OrderType::Market,
    );
    let evs = run(&mut v, 2);
    let st = statuses(&evs, id);
    let last = st.last().unwrap();
    assert_eq!(last.status, tradeguard_model::OrderStatus::Rejected);
    assert_eq!(last.reason.as_ref().unwrap().code, "sim.contract_expired");
}
