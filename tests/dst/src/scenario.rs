//! [`Scenario`]: everything one seed decides before the run starts — the trading day, the
//! market path, the account's strategies, the venue's fault rates, the risk limits, the engine
//! options and the storm/calm schedule. Same seed ⇒ same scenario (ChaCha8, its own stream,
//! independent of the venue's RNG).

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;
use tradeguard_model::{
    AccountId, Instrument, Money, OptionContract, Position, Price, Right, SCALE, Timestamp,
};
use tradeguard_sim::{
    AssignmentConfig, DeliveryReport, FaultConfig, MarketConfig, MatchingConfig, SimConfig,
    UnderlyingSpec, calendar,
};

/// The single underlying of every scenario.
pub const UNDERLYING: &str = "SPY";
/// Stream separator so the scenario RNG never equals the venue's (which uses the seed itself).
const SCENARIO_STREAM: u64 = 0x5EED_D57D_0000_0001;

/// Which trading day the run lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// Mid-session on a normal Tuesday: the venue accepts orders all run long.
    Regular,
    /// Starts minutes before the close: early assignments are decided at the close and
    /// delivered overnight (no execution), with the market closed.
    IntoTheClose,
    /// Expiry Friday, minutes before the close: in-the-money options are exercised and
    /// assigned at the close.
    ExpiryDay,
}

/// The shape of the market path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tape {
    /// Low volatility, no jumps.
    Quiet,
    /// Strong drift up.
    TrendUp,
    /// Strong drift down.
    TrendDown,
    /// High volatility with frequent jumps (fast markets, wide spreads).
    VolSpike,
}

/// One strategy the account holds at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Short put spread + short call spread.
    IronCondor,
    /// Short put, long lower put.
    PutVertical,
    /// Short call, long higher call.
    CallVertical,
    /// Naked short put + naked short call.
    Strangle,
    /// Long shares.
    Stock,
}

/// Fault rates and activity rates of one run. Link rates are per venue step (one virtual
/// second); the harness rates are per harness step.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// The venue's transport and cancel faults during the storm.
    pub faults: FaultConfig,
    /// Random order rejections during the storm.
    pub reject: f64,
    /// Partial fills during the storm.
    pub partial_fill: f64,
    /// Daily probability of early assignment of deep-ITM shorts (decided at the close).
    pub early_assignment_per_day: f64,
    /// Per step: the harness gaps the underlying by 2–6 % (through resting stops).
    pub gap: f64,
    /// Per step: the harness assigns part of a short option now (prefers a legging group).
    pub forced_assignment: f64,
    /// Per step: a new opening group (iron condor, vertical, strangle, stock).
    pub open: f64,
    /// Per step: a close of a strategy the guard shows (Broken ones included: the gate must
    /// refuse those).
    pub close: f64,
    /// Per step: a managed stop-loss on a position.
    pub stop: f64,
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Trading day.
    pub day: Day,
    /// Market path.
    pub tape: Tape,
    /// Expiry of every option (on [`Day::ExpiryDay`] it is today).
    pub expiry: NaiveDate,
    /// Starting strategies and their lots.
    pub holdings: Vec<(Holding, i64)>,
    /// Fault and activity rates.
    pub rates: Rates,
    /// Send multi-leg groups as native combos.
    pub native_combos: bool,
    /// The `max_contracts` risk rule's limit (action flatten).
    pub max_contracts: i64,
    /// Forced unwind switched on this far into the storm (never switched off).
    pub forced_unwind_at: Option<Duration>,
    /// Process crashes (engine dropped, restarted from the same database and venue) at these
    /// offsets, each with its downtime.
    pub crashes: Vec<(Duration, Duration)>,
    /// Length of the fault storm.
    pub storm: Duration,
    /// The run lasts at least this long (on closing days: past the close, the overnight
    /// delivery of assignments and a reconciliation after it).
    pub min_run: Duration,
    /// The venue's configuration (fault rates of the storm included).
    pub sim: SimConfig,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    // Constant, valid dates.
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Whole dollars as a price.
pub fn dollars(units: i64) -> Price {
    Price::from_raw(units.saturating_mul(SCALE))
}

/// Option on the scenario's underlying.
pub fn option(expiry: NaiveDate, right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        UNDERLYING,
        expiry,
        right,
        dollars(strike),
    ))
}

/// The account every scenario trades.
pub fn account() -> AccountId {
    AccountId::new("DU-DST")
}

/// `0` with probability `off`, else uniform in `[lo, hi)`.
fn rate(rng: &mut ChaCha8Rng, off: f64, lo: f64, hi: f64) -> f64 {
    if rng.random_bool(off) {
        0.0
    } else {
        rng.random_range(lo..hi)
    }
}

fn secs(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_secs(rng.random_range(lo..=hi))
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SCENARIO_STREAM);
        let day = match rng.random_range(0..10) {
            0..=5 => Day::Regular,
            6..=7 => Day::IntoTheClose,
            _ => Day::ExpiryDay,
        };
        let tape = match rng.random_range(0..4) {
            0 => Tape::Quiet,
            1 => Tape::TrendUp,
            2 => Tape::TrendDown,
            _ => Tape::VolSpike,
        };
        let (start, expiry) = match day {
            Day::Regular => (
                calendar::et_time(date(2025, 3, 4), 10, 30),
                date(2025, 3, 21),
            ),
            Day::IntoTheClose => (
                calendar::et_time(date(2025, 3, 4), 15, 57),
                date(2025, 3, 21),
            ),
            // Expiry Friday; the 03-21 options expire at today's close.
            Day::ExpiryDay => (
                calendar::et_time(date(2025, 3, 21), 15, 57),
                date(2025, 3, 21),
            ),
        };
        let spot = 5 * rng.random_range(80..=120); // 400 ..= 600
        let mut holdings = Vec::new();
        for h in [
            Holding::IronCondor,
            Holding::PutVertical,
            Holding::CallVertical,
            Holding::Strangle,
            Holding::Stock,
        ] {
            if rng.random_bool(0.5) {
                holdings.push((h, rng.random_range(1..=3)));
            }
        }
        let positions = positions(&mut rng, &holdings, spot, expiry);
        let faults = FaultConfig {
            disconnect_prob: rate(&mut rng, 0.4, 0.001, 0.01),
            reconnect_after: secs(&mut rng, 2, 20),
            stall_prob: rate(&mut rng, 0.4, 0.001, 0.01),
            stall_duration: secs(&mut rng, 3, 25),
            duplicate_prob: rate(&mut rng, 0.4, 0.01, 0.1),
            delay_prob: rate(&mut rng, 0.4, 0.01, 0.1),
            delay_max: Duration::from_millis(rng.random_range(200..=3_000)),
            reorder_prob: rate(&mut rng, 0.4, 0.01, 0.1),
            cancel_reject_prob: rate(&mut rng, 0.4, 0.05, 0.3),
            cancel_late_prob: rate(&mut rng, 0.4, 0.05, 0.3),
            cancel_late_delay: secs(&mut rng, 1, 5),
            fill_after_cancel_prob: rate(&mut rng, 0.4, 0.05, 0.3),
        };
        let rates = Rates {
            faults: faults.clone(),
            reject: rate(&mut rng, 0.4, 0.01, 0.15),
            partial_fill: rate(&mut rng, 0.3, 0.05, 0.4),
            early_assignment_per_day: rate(&mut rng, 0.3, 0.3, 1.0),
            gap: rate(&mut rng, 0.5, 0.002, 0.01),
            forced_assignment: rate(&mut rng, 0.5, 0.002, 0.01),
            open: rng.random_range(0.02..0.08),
            close: rng.random_range(0.005..0.03),
            stop: rng.random_range(0.0..0.02),
        };
        let storm = secs(&mut rng, 90, 180);
        let forced_unwind_at = rng
            .random_bool(0.2)
            .then(|| Duration::from_secs(rng.random_range(10..storm.as_secs())));
        let n_crashes = match rng.random_range(0..10) {
            0..=4 => 0,
            5..=8 => 1,
            _ => 2,
        };
        let mut crashes: Vec<(Duration, Duration)> = (0..n_crashes)
            .map(|_| {
                (
                    Duration::from_millis(rng.random_range(5_000..storm.as_millis() as u64)),
                    Duration::from_millis(rng.random_range(0..5_000)),
                )
            })
            .collect();
        crashes.sort();
        let (vol, drift, jumps) = match tape {
            Tape::Quiet => (0.12, 0.0, 0.0),
            Tape::TrendUp => (0.2, 40.0, 4.0),
            Tape::TrendDown => (0.2, -40.0, 4.0),
            Tape::VolSpike => (0.6, 0.0, 2_000.0),
        };
        let sim = SimConfig {
            seed,
            start,
            account: account(),
            cash: Money::from_raw(250_000 * SCALE),
            positions,
            underlyings: vec![UnderlyingSpec {
                symbol: UNDERLYING.into(),
                price: dollars(spot),
                vol,
                drift,
                dividend_yield: 0.013,
                ex_dividend_dates: vec![],
            }],
            market: MarketConfig {
                jump_intensity: jumps,
                jump_std: 0.01,
                ..MarketConfig::default()
            },
            matching: MatchingConfig {
                partial_fill_prob: rates.partial_fill,
                random_reject_prob: rates.reject,
                ..MatchingConfig::default()
            },
            assignment: AssignmentConfig {
                early_prob_per_day: rates.early_assignment_per_day,
                delivery_delay: Duration::from_secs(30),
                ..AssignmentConfig::default()
            },
            faults,
            scheduled: vec![],
        };
        let native_combos = rng.random_bool(0.3);
        // Was "hedge naked shorts found at start-up" (gone: the guard hedges only its own
        // groups); the draw stays so that every seed replays the same run as before.
        let _ = rng.random_bool(0.5);
        let mut sim = sim;
        // How an assignment's option and stock updates arrive: IB-like gaps of up to several
        // seconds in either order, and in some runs the later update only in a snapshot.
        sim.assignment.report = DeliveryReport {
            max_gap: Duration::from_millis(rng.random_range(0..=6_000)),
            stock_first_prob: 0.5,
            unreported_prob: if rng.random_bool(0.25) { 0.5 } else { 0.0 },
        };
        Self {
            seed,
            day,
            tape,
            expiry,
            holdings,
            rates,
            native_combos,
            max_contracts: rng.random_range(3..=8),
            forced_unwind_at,
            crashes,
            storm,
            min_run: match day {
                Day::Regular => Duration::ZERO,
                // 15:57 start: the close after 180 s, delivery 30 s later, then 60 s to settle.
                Day::IntoTheClose | Day::ExpiryDay => Duration::from_secs(180 + 30 + 60),
            },
            sim,
        }
    }

    /// Virtual start of the run.
    pub fn start(&self) -> Timestamp {
        self.sim.start
    }
}

fn positions(
    rng: &mut ChaCha8Rng,
    holdings: &[(Holding, i64)],
    spot: i64,
    expiry: NaiveDate,
) -> Vec<Position> {
    let acct = account();
    let pos = |instrument: Instrument, qty: i64, cost_cents: i64| Position {
        account: acct.clone(),
        instrument,
        qty,
        avg_cost: Price::from_raw(cost_cents.max(5) * (SCALE / 100)),
    };
    let cost = |right: Right, strike: i64| -> i64 {
        let intrinsic = match right {
            Right::Put => strike - spot,
            Right::Call => spot - strike,
        };
        intrinsic.max(0) * 100 + 150
    };
    let mut out: Vec<Position> = Vec::new();
    let mut add = |right: Right, strike: i64, qty: i64| {
        let inst = option(expiry, right, strike);
        if let Some(p) = out.iter_mut().find(|p| p.instrument == inst) {
            p.qty += qty;
        } else {
            out.push(pos(inst, qty, cost(right, strike)));
        }
    };
    for &(h, lots) in holdings {
        // Offsets in multiples of 5; some shorts end up in the money (early assignment).
        let off = 5 * rng.random_range(-4..=8);
        let width = 5 * rng.random_range(1..=4);
        match h {
            Holding::IronCondor => {
                add(Right::Put, spot - off - width, lots);
                add(Right::Put, spot - off, -lots);
                add(Right::Call, spot + off, -lots);
                add(Right::Call, spot + off + width, lots);
            }
            Holding::PutVertical => {
                add(Right::Put, spot - off, -lots);
                add(Right::Put, spot - off - width, lots);
            }
            Holding::CallVertical => {
                add(Right::Call, spot + off, -lots);
                add(Right::Call, spot + off + width, lots);
            }
            Holding::Strangle => {
                add(Right::Put, spot - off.abs() - 10, -lots);
                add(Right::Call, spot + off.abs() + 10, -lots);
            }
            Holding::Stock => {}
        }
    }
    out.retain(|p| p.qty != 0);
    if let Some(&(_, lots)) = holdings.iter().find(|(h, _)| *h == Holding::Stock) {
        out.push(pos(Instrument::stock(UNDERLYING), 100 * lots, spot * 100));
    }
    out
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.rates;
        let x = &r.faults;
        writeln!(
            f,
            "seed {}: day {:?}, tape {:?}, holdings {:?}, storm {} s, min run {} s, crashes {:?}, forced unwind {:?}, native combos {}, max contracts {}",
            self.seed,
            self.day,
            self.tape,
            self.holdings,
            self.storm.as_secs(),
            self.min_run.as_secs(),
            self.crashes
                .iter()
                .map(|(at, down)| format!("{:.1}s+{:.1}s", at.as_secs_f64(), down.as_secs_f64()))
                .collect::<Vec<_>>(),
            self.forced_unwind_at.map(|d| d.as_secs()),
            self.native_combos,
            self.max_contracts,
        )?;
        write!(
            f,
            "  rates: disconnect {:.4} (reconnect {} s), stall {:.4} ({} s), duplicate {:.3}, delay {:.3} (≤{} ms), reorder {:.3}, cancel reject {:.3}, cancel late {:.3}, fill after cancel {:.3}, reject {:.3}, partial {:.3}, early assignment/day {:.2}, gap {:.4}, forced assignment {:.4}, open {:.3}, close {:.3}, stop {:.3}",
            x.disconnect_prob,
            x.reconnect_after.as_secs(),
            x.stall_prob,
            x.stall_duration.as_secs(),
            x.duplicate_prob,
            x.delay_prob,
            x.delay_max.as_millis(),
            x.reorder_prob,
            x.cancel_reject_prob,
            x.cancel_late_prob,
            x.fill_after_cancel_prob,
            r.reject,
            r.partial_fill,
            r.early_assignment_per_day,
            r.gap,
            r.forced_assignment,
            r.open,
            r.close,
            r.stop,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_scenario_and_seeds_differ() {
        let a = Scenario::from_seed(7);
        let b = Scenario::from_seed(7);
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(a.sim, b.sim);
        let distinct: std::collections::BTreeSet<String> = (0..50)
            .map(|s| Scenario::from_seed(s).to_string())
            .collect();
        assert_eq!(distinct.len(), 50);
    }

    #[test]
    fn every_scenario_builds_a_venue() {
        for s in 0..200 {
            let sc = Scenario::from_seed(s);
            assert!(
                tradeguard_sim::SimVenue::new(sc.sim.clone()).is_ok(),
                "seed {s}: {sc}"
            );
        }
    }

    #[test]
    fn seeds_cover_days_tapes_crashes_and_faults() {
        let all: Vec<Scenario> = (0..100).map(Scenario::from_seed).collect();
        assert!(all.iter().any(|s| s.day == Day::ExpiryDay));
        assert!(all.iter().any(|s| s.day == Day::IntoTheClose));
        assert!(all.iter().any(|s| s.tape == Tape::VolSpike));
        assert!(all.iter().any(|s| s.crashes.len() == 2));
        assert!(all.iter().any(|s| s.forced_unwind_at.is_some()));
        assert!(all.iter().any(|s| s.rates.faults.disconnect_prob > 0.0));
        assert!(all.iter().any(|s| s.rates.faults.disconnect_prob == 0.0));
    }
}
