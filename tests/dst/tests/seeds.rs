//! The short DST suite: 320 seeds spread over four tests (nextest runs them in parallel),
//! determinism of the trace, regression seeds and the known engine failures.
//!
//! `DST_SEED=N cargo test -p tradeguard-dst -- seed_from_env` replays one seed.

use tradeguard_dst::{DstError, Options, run_seed, run_seed_with};

/// Seeds that still break an invariant because of an engine finding (see README "Known
/// failures"). They are run by `known_failures` (ignored until fixed), never silently skipped.
pub const KNOWN_FAILURES: &[u64] = &[];

fn batch(from: u64, to: u64) {
    let mut failures = Vec::new();
    for seed in (from..to).filter(|s| !KNOWN_FAILURES.contains(s)) {
        match run_seed(seed) {
            Ok(_) => {}
            Err(e) => {
                eprintln!("{e}");
                failures.push((seed, e.code()));
            }
        }
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn seeds_000_079() {
    batch(0, 80);
}

#[test]
fn seeds_080_159() {
    batch(80, 160);
}

#[test]
fn seeds_160_239() {
    batch(160, 240);
}

#[test]
fn seeds_240_319() {
    batch(240, 320);
}

/// Seeds past the short suite's range that found engine bugs, now fixed (see README "Fixed
/// findings"): Broken-strategy leg lock (505, 1051), one live exit per position (842, 379,
/// 650), deliveries and lost orders / stops reaching the engine's book (444, 587, 622, 712,
/// 896, 1461, 1897), exits never rolled back (599, 871), emergency exits wait for a stop's
/// confirmed cancel (1100, 1309), a naked short born from a stop fill gets the hedge's grace
/// (516), an unreachable broker uses up no close attempt (1149), a parked forced unwind is tried
/// again (6036, 6966), orders on an expired contract end at the venue (4418), a spread's
/// close job is never queued in part (67), exposure a person's close left on the trader's own
/// short is reported, not owed as a hedge (100304), the stock a Broken strategy lists as
/// delivered is not one of its own legs for invariant 7 (451636547068, 451636549224), an
/// interrupted leg whose recovery cancel failed is settled when the broker is back
/// (365774009441), two exits that each close their own part are not duplicates
/// (365774012847), a Broken strategy's instruments are locked the moment it breaks
/// (451636552076, 365774012079, 365774012458), an unanswered stop cancel is asked again
/// (451636547290, 451636547534), a parked rule flatten is retried while its rule still asks
/// (365774015124), a lost-order check the broker did not answer is tried again (451636553001),
/// a reconciliation snapshot older than the book's last event leaves it alone (365774009879).
#[test]
fn regression_seeds() {
    let failing: Vec<(u64, &str)> = [
        505,
        1051,
        842,
        379,
        650,
        444,
        587,
        622,
        712,
        896,
        1461,
        1897,
        599,
        871,
        1100,
        1309,
        516,
        1149,
        6036,
        6966,
        4418,
        67,
        100304,
        // The delivered stock a Broken strategy lists is not one of its own legs for
        // invariant 7 (a person's confirmed flatten, another strategy's stock close).
        451_636_547_068,
        451_636_549_224,
        // An interrupted leg whose recovery cancel failed is settled when the broker is back.
        365_774_009_441,
        // Two exits that each close their own part of a position are not duplicates.
        365_774_012_847,
        // A Broken strategy's instruments are locked the moment it breaks (a rule's Flatten of
        // another strategy holding one went out before the book's next push).
        451_636_552_076,
        365_774_012_079,
        365_774_012_458,
        // A stop-limit cancel lost as the link dropped is asked again (a forced unwind was
        // held behind it for ever).
        451_636_547_290,
        // A rule flatten parked after rejections in a storm is tried again while its rule is
        // still breached.
        365_774_015_124,
        // A lost-order check the broker did not answer is tried again.
        451_636_553_001,
        // A stop's unanswered cancel around a disconnect is asked again.
        451_636_547_534,
        // A reconciliation snapshot older than the book's last event leaves it alone.
        365_774_009_879,
        // Issue "Simulation: failures outside the seeds run so far": two exits each of its own
        // part of a position are not duplicates (invariant 2 corrected, see 365774012847) ...
        55_001_494,
        // ... and the hedger hedges only its own groups' shorts, never a short the engine's
        // book holds that the venue does not (a6673b9, hedge.rs
        // a_short_sold_outside_the_guard_is_reported_once_never_hedged).
        7_340_206,
    ]
    .into_iter()
    .filter_map(|s| {
        run_seed(s).err().map(|e: DstError| {
            eprintln!("{e}");
            (s, e.code())
        })
    })
    .collect();
    assert!(failing.is_empty(), "{failing:?}");
}

fn hash(seed: u64) -> u64 {
    match run_seed(seed) {
        Ok(r) => r.trace_hash,
        Err(e) => panic!("{e}"),
    }
}

/// Same seed, same trace: venue events, harness actions and every observation, hashed —
/// also while the other tests load the machine (every `select!` on the way is `biased;` and
/// store writes block the single runtime thread, see README "Determinism"). Seed 3 used to
/// give one of two traces, seed 16 has a crash and a restart.
#[test]
fn one_seed_twice_gives_the_same_trace() {
    let mut first = Vec::new();
    for seed in [2, 3, 16, 27] {
        let h = hash(seed);
        assert_eq!(h, hash(seed), "seed {seed}");
        first.push(h);
    }
    assert_ne!(first[0], first[3], "seeds 2 and 27 differ");
}

#[test]
fn seed_from_env() {
    let Some(seed) = std::env::var("DST_SEED").ok().and_then(|s| s.parse().ok()) else {
        eprintln!("DST_SEED not set: nothing to replay");
        return;
    };
    if let Err(e) = run_seed(seed) {
        panic!("{e}");
    }
}

/// Seed 16 with a second stop on a position that has one: the engine used to accept it, and
/// two live exits for the same 100 shares followed (invariant 2). It now refuses the second
/// stop (`stop.already_exists`).
#[test]
fn double_stop_seed_16_is_refused() {
    let r = run_seed_with(16, Options { double_stops: true });
    if let Err(e) = r {
        panic!("{e}");
    }
}

#[test]
#[ignore = "known engine findings, see README"]
fn known_failures() {
    let failing: Vec<(u64, &str)> = KNOWN_FAILURES
        .iter()
        .filter_map(|&s| run_seed(s).err().map(|e: DstError| (s, e.code())))
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
}
