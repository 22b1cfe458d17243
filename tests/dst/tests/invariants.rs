//! Each invariant's checker fails on a crafted violating state (and passes on the fixed one),
//! so a green seed run means something.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tradeguard_dst::invariants::{
    BeatObs, FlattenObs, GroupObs, LegObs, LiveOrder, Purpose, StrategyObs, check_acknowledged,
};
use tradeguard_dst::{Checker, CheckerConfig, Invariant, Observation};
use tradeguard_model::{Side, Timestamp};

const PUT: &str = "SPY   250321P00500000";
const CALL: &str = "SPY   250321C00600000";

fn t(secs: i64) -> Timestamp {
    Timestamp(1_741_100_000_000_000_000 + secs * 1_000_000_000)
}

fn cfg() -> CheckerConfig {
    CheckerConfig {
        settle_grace: Duration::from_secs(10),
        hedge_grace: Duration::from_secs(3),
        reconcile: Duration::from_secs(8),
        resolve: Duration::from_secs(60),
        max_contracts: 5,
        beat_budget: BTreeMap::from([("status".to_owned(), Duration::from_secs(12))]),
        default_beat_budget: Duration::from_secs(7),
    }
}

/// A consistent, calm state at `now` (everything equal, nothing working).
fn calm(now: i64) -> Observation {
    let pos = BTreeMap::from([(PUT.to_owned(), -2)]);
    Observation {
        now: t(now),
        guard_started: t(0),
        venue_unchanged_since: t(0),
        venue_accepts: true,
        calm_since: Some(t(0)),
        groups: vec![],
        stop_orders: BTreeSet::new(),
        placed_during_snapshot: BTreeSet::new(),
        venue_positions: pos.clone(),
        engine_positions: pos.clone(),
        guard_positions: pos,
        venue_orders: vec![],
        unmatched: BTreeMap::new(),
        exposure_key: BTreeMap::from([
            (PUT.to_owned(), "SPY/Put".to_owned()),
            (CALL.to_owned(), "SPY/Call".to_owned()),
        ]),
        strategies: vec![],
        forced_unwind: false,
        beats: vec![BeatObs {
            name: "enforcer".into(),
            since_last: Some(Duration::from_millis(300)),
        }],
        flatten: None,
    }
}

fn group(id: u64, purpose: Purpose, terminal: bool, created: i64, legs: Vec<LegObs>) -> GroupObs {
    GroupObs {
        id,
        purpose,
        strategy: None,
        terminal,
        created: t(created),
        legs,
    }
}

fn leg(instrument: &str, side: Side, qty: i64, filled: i64, order: Option<i64>) -> LegObs {
    LegObs {
        instrument: instrument.into(),
        side,
        qty,
        filled,
        order,
    }
}

/// Runs `states` through a fresh checker; the first violation's invariant, if any.
fn first_violation(states: &[Observation]) -> Option<Invariant> {
    let mut c = Checker::new(cfg());
    states
        .iter()
        .find_map(|o| c.observe(o).err())
        .map(|v| v.invariant)
}

#[test]
fn a_calm_consistent_run_passes() {
    let states: Vec<Observation> = (100..200).map(calm).collect();
    assert_eq!(first_violation(&states), None);
}

#[test]
fn inv1_naked_short_left_after_groups_settled() {
    let mut states: Vec<Observation> = (100..120).map(calm).collect();
    for o in &mut states {
        o.groups = vec![group(1, Purpose::Open, true, 90, vec![])];
        o.unmatched = BTreeMap::from([("SPY/Put".to_owned(), 2)]);
    }
    assert_eq!(
        first_violation(&states),
        Some(Invariant::NoNakedShortAfterSettle)
    );
    // Within the grace (hedge still to come) it is not a violation.
    assert_eq!(first_violation(&states[..5]), None);
}

/// Seed 516: the groups settled long ago, then a managed stop sold a spread's long leg and left
/// its short naked. The hedge manager's debounce starts at that fill, so the naked short gets
/// the grace from when it appeared — and is a violation once that grace is over.
#[test]
fn inv1_a_naked_short_born_outside_a_group_gets_the_grace_from_its_birth() {
    let mut states: Vec<Observation> = (100..140).map(calm).collect();
    for (i, o) in states.iter_mut().enumerate() {
        o.groups = vec![group(1, Purpose::Open, true, 20, vec![])];
        if i >= 10 {
            o.unmatched = BTreeMap::from([("SPY/Put".to_owned(), 2)]);
        }
    }
    let grace = usize::try_from(cfg().settle_grace.as_secs()).unwrap();
    // Hedged in time (gone within the grace): no violation.
    let mut hedged = states.clone();
    for o in &mut hedged[10 + grace - 1..] {
        o.unmatched.clear();
    }
    assert_eq!(first_violation(&hedged), None);
    assert_eq!(first_violation(&states[..10 + grace]), None);
    assert_eq!(
        first_violation(&states),
        Some(Invariant::NoNakedShortAfterSettle)
    );
}

#[test]
fn inv2_two_live_exits_for_the_same_quantity() {
    let mut o = calm(100);
    o.groups = vec![
        group(
            1,
            Purpose::Flatten,
            false,
            99,
            vec![leg(PUT, Side::Buy, 2, 0, Some(7))],
        ),
        group(
            2,
            Purpose::Open,
            true,
            50,
            vec![leg(PUT, Side::Sell, 2, 2, Some(3))],
        ),
    ];
    o.stop_orders = BTreeSet::from([8]);
    let live = |order| LiveOrder {
        order,
        instrument: PUT.into(),
        side: Side::Buy,
        remaining: 2,
    };
    o.venue_orders = vec![live(7), live(8)];
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::NoDuplicateExit)
    );
    o.venue_orders = vec![live(7)];
    assert_eq!(first_violation(&[o.clone()]), None);
    // The child orders of one group (a close split under the per-order limit) are one exit...
    o.groups[0].legs.push(leg(PUT, Side::Buy, 2, 0, Some(9)));
    o.venue_orders = vec![live(7), live(9)];
    assert_eq!(first_violation(&[o.clone()]), None);
    // ... and a stop next to them is a second one.
    o.venue_orders = vec![live(7), live(9), live(8)];
    assert_eq!(first_violation(&[o]), Some(Invariant::NoDuplicateExit));
}

/// Issue seed 55001494 (invariant 2 before it was corrected): a forced unwind's Emergency
/// exit and a person's close of one strategy each sold 1 of the 2 puts the account held: two
/// exits, each of its own part, not a duplicate (the coordinator had cut the Emergency by the
/// close's unfilled quantity). Only exits that together would sell more than is held are.
#[test]
fn inv2_two_exits_each_of_its_own_part_are_not_duplicates() {
    let mut o = calm(100);
    o.venue_positions = BTreeMap::from([(PUT.to_owned(), 2)]);
    o.engine_positions = o.venue_positions.clone();
    o.guard_positions = o.venue_positions.clone();
    o.groups = vec![
        group(
            3,
            Purpose::Close,
            false,
            99,
            vec![leg(PUT, Side::Sell, 1, 0, Some(4))],
        ),
        group(
            4,
            Purpose::Emergency,
            false,
            99,
            vec![leg(PUT, Side::Sell, 1, 0, Some(5))],
        ),
    ];
    let live = |order| LiveOrder {
        order,
        instrument: PUT.into(),
        side: Side::Sell,
        remaining: 1,
    };
    o.venue_orders = vec![live(4), live(5)];
    assert_eq!(first_violation(&[o.clone()]), None);
    // One put held: the second sale would open a short. That is a duplicate.
    o.venue_positions = BTreeMap::from([(PUT.to_owned(), 1)]);
    o.engine_positions = o.venue_positions.clone();
    o.guard_positions = o.venue_positions.clone();
    assert_eq!(first_violation(&[o]), Some(Invariant::NoDuplicateExit));
}

#[test]
fn inv3_working_hedges_above_unmatched() {
    let mut states: Vec<Observation> = (100..110).map(calm).collect();
    for o in &mut states {
        o.groups = vec![
            // The guard's own group that sold the put (the hedge is of its short).
            group(
                0,
                Purpose::Open,
                true,
                98,
                vec![leg(PUT, Side::Sell, 1, 1, Some(8))],
            ),
            group(
                1,
                Purpose::Hedge,
                false,
                99,
                vec![leg(PUT, Side::Buy, 3, 0, Some(9))],
            ),
        ];
        o.unmatched = BTreeMap::from([("SPY/Put".to_owned(), 1)]);
        o.calm_since = None; // judged in storms too
    }
    assert_eq!(
        first_violation(&states),
        Some(Invariant::HedgeWithinUnmatched)
    );
    assert_eq!(first_violation(&states[..3]), None, "inside the grace");
}

#[test]
fn inv4_engine_book_differs_from_the_venue_after_reconciliation() {
    let mut o = calm(100);
    o.engine_positions.insert(CALL.into(), -1);
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::LocalEqualsVenue)
    );
    // Not judged right after a venue change (an assignment) or a restart.
    o.venue_unchanged_since = t(97);
    assert_eq!(first_violation(&[o]), None);
    let mut g = calm(100);
    g.guard_positions.clear();
    assert_eq!(first_violation(&[g]), Some(Invariant::LocalEqualsVenue));
    let mut stray = calm(100);
    stray.venue_orders = vec![LiveOrder {
        order: 44,
        instrument: PUT.into(),
        side: Side::Buy,
        remaining: 1,
    }];
    assert_eq!(first_violation(&[stray]), Some(Invariant::LocalEqualsVenue));
}

#[test]
fn inv5_an_acknowledged_write_missing_after_restart() {
    let acked = vec![
        "{\"a\":1}".to_owned(),
        "{\"b\":2}".to_owned(),
        "{\"b\":2}".to_owned(),
    ];
    let stored = vec![
        "{\"b\":2}".to_owned(),
        "{\"a\":1}".to_owned(),
        "{\"b\":2}".to_owned(),
        "{\"c\":3}".to_owned(),
    ];
    assert!(check_acknowledged(&acked, &stored, t(1)).is_ok());
    let lost = vec!["{\"a\":1}".to_owned(), "{\"b\":2}".to_owned()];
    let v = check_acknowledged(&acked, &lost, t(1)).unwrap_err();
    assert_eq!(v.invariant, Invariant::AcknowledgedWritesDurable);
    assert!(v.detail.contains("#2"), "{v}");
}

#[test]
fn inv6_cap_breach_or_unwind_unresolved_in_time() {
    let mut o = calm(100);
    for p in [
        &mut o.venue_positions,
        &mut o.engine_positions,
        &mut o.guard_positions,
    ] {
        p.insert(PUT.into(), -9);
    }
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::BreachResolvedInTime)
    );
    o.now = t(30); // before the resolve budget
    assert_eq!(first_violation(&[o]), None);
    let mut u = calm(100);
    u.forced_unwind = true;
    assert_eq!(
        first_violation(&[u.clone()]),
        Some(Invariant::BreachResolvedInTime)
    );
    u.venue_accepts = false; // market closed: not judged
    assert_eq!(first_violation(&[u]), None);
}

#[test]
fn inv7_broken_strategy_closed_by_a_normal_path() {
    let broken = StrategyObs {
        id: 4,
        broken: true,
        instruments: vec![PUT.into()],
    };
    let mut a = calm(100);
    a.strategies = vec![broken.clone()];
    let mut b = calm(101);
    b.strategies = vec![broken];
    b.groups = vec![group(
        1,
        Purpose::Flatten,
        false,
        100,
        vec![leg(PUT, Side::Buy, 2, 0, Some(5))],
    )];
    assert_eq!(
        first_violation(&[a.clone(), b.clone()]),
        Some(Invariant::BrokenOnlyEmergency)
    );
    let mut named = b.clone();
    named.groups = vec![GroupObs {
        strategy: Some(4),
        ..group(
            1,
            Purpose::Close,
            false,
            100,
            vec![leg(CALL, Side::Buy, 1, 0, Some(5))],
        )
    }];
    assert_eq!(
        first_violation(&[a.clone(), named]),
        Some(Invariant::BrokenOnlyEmergency)
    );
    b.groups[0].purpose = Purpose::Emergency;
    assert_eq!(first_violation(&[a, b]), None);
}

#[test]
fn inv8_stale_heartbeat() {
    let mut o = calm(100);
    o.beats.push(BeatObs {
        name: "reconciler".into(),
        since_last: Some(Duration::from_secs(9)),
    });
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::EnforcementAlive)
    );
    o.beats[1].name = "status".into(); // status has a longer cadence
    assert_eq!(first_violation(&[o.clone()]), None);
    o.beats[1].since_last = None; // never beat since the start 100 s ago
    assert_eq!(first_violation(&[o]), Some(Invariant::EnforcementAlive));
}

#[test]
fn inv9_a_hedge_of_a_short_the_guard_never_traded() {
    let mut o = calm(100);
    // The trader's own naked put (no group of the guard traded it) bought back by a hedge.
    o.groups = vec![group(
        1,
        Purpose::Hedge,
        false,
        99,
        vec![leg(PUT, Side::Buy, 1, 0, Some(9))],
    )];
    o.unmatched = BTreeMap::from([("SPY/Put".to_owned(), 1)]);
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::NoUnaskedOrder)
    );
    // The hedge of the guard's own group's short is asked for.
    o.groups.insert(
        0,
        group(
            0,
            Purpose::Open,
            false,
            98,
            vec![leg(PUT, Side::Sell, 1, 1, Some(8))],
        ),
    );
    assert_eq!(first_violation(&[o]), None);
}

#[test]
fn inv10_a_confirmed_flatten_still_working_past_its_budget() {
    let budget = 60; // the checker config's resolve, seconds (see `cfg()`)
    let mut o = calm(1000);
    o.flatten = Some(FlattenObs {
        confirmed_at: t(900),
        status: "working".into(),
    });
    assert_eq!(
        first_violation(&[o.clone()]),
        Some(Invariant::ConfirmedFlattenEnds)
    );
    o.flatten = Some(FlattenObs {
        confirmed_at: t(1000 - budget / 2),
        status: "working".into(),
    });
    assert_eq!(first_violation(&[o.clone()]), None, "inside its budget");
    for ok in ["done", "needs_manual:gate.halted: trading halted"] {
        o.flatten = Some(FlattenObs {
            confirmed_at: t(900),
            status: ok.into(),
        });
        assert_eq!(first_violation(&[o.clone()]), None, "{ok}");
    }
    o.flatten = Some(FlattenObs {
        confirmed_at: t(900),
        status: "incomplete".into(),
    });
    assert_eq!(first_violation(&[o]), Some(Invariant::ConfirmedFlattenEnds));
}
