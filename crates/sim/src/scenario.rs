//! Ready-made simulator setups; [`Scenario::demo`] is what `make run` connects to.

use crate::broker::Speed;
use crate::calendar;
use crate::config::{
    AssignmentConfig, FaultConfig, MarketConfig, MatchingConfig, ScheduledAssignment, SimConfig,
    UnderlyingSpec,
};
use crate::error::SimError;
use crate::venue::SimVenue;
use chrono::NaiveDate;
use std::time::Duration;
use tradeguard_model::{AccountId, Instrument, Money, OptionContract, Position, Price, Right};

/// A configured simulator plus the speed it is meant to run at.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Venue configuration.
    pub config: SimConfig,
    /// Intended speed.
    pub speed: Speed,
}

/// Virtual delay after the demo start at which the short put is assigned.
pub const DEMO_ASSIGNMENT_AFTER: Duration = Duration::from_secs(6 * 60);

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn px(units: i64) -> Price {
    Price::from_raw(units.saturating_mul(tradeguard_model::SCALE))
}

impl Scenario {
    /// The demo account at 10× speed, starting Tuesday 2025-03-04 10:00 New York:
    /// SPY at 575; SPY 2025-03-21 iron condor 540/550/600/610 (1 lot), put credit spread
    /// 590/580 (2 lots, short put ITM), short strangle 530/620 (1 lot), 100 SPY shares and
    /// $100 000 cash. One contract of the short 590 put is assigned
    /// [`DEMO_ASSIGNMENT_AFTER`] (6 virtual minutes = 36 s of wall time at 10×) after the start.
    pub fn demo(seed: u64) -> Self {
        let start = calendar::et_time(date(2025, 3, 4), 10, 0);
        let expiry = date(2025, 3, 21);
        let account = AccountId::new("DU-DEMO");
        let opt = |right, strike| {
            Instrument::Option(OptionContract::equity("SPY", expiry, right, px(strike)))
        };
        let pos = |instrument: Instrument, qty: i64, cost_cents: i64| Position {
            account: account.clone(),
            instrument,
            qty,
            avg_cost: Price::from_raw(cost_cents * 100),
        };
        let short_put = opt(Right::Put, 590);
        let positions = vec![
            pos(opt(Right::Put, 540), 1, 180),
            pos(opt(Right::Put, 550), -1, 290),
            pos(opt(Right::Call, 600), -1, 210),
            pos(opt(Right::Call, 610), 1, 95),
            pos(short_put.clone(), -2, 1_150),
            pos(opt(Right::Put, 580), 2, 640),
            pos(opt(Right::Put, 530), -1, 130),
            pos(opt(Right::Call, 620), -1, 60),
            pos(Instrument::stock("SPY"), 100, 57_012),
        ];
        let config = SimConfig {
            seed,
            start,
            account,
            cash: Money::from_raw(100_000 * tradeguard_model::SCALE),
            positions,
            underlyings: vec![UnderlyingSpec {
                symbol: "SPY".into(),
                price: px(575),
                vol: 0.18,
                drift: 0.05,
                dividend_yield: 0.013,
                ex_dividend_dates: vec![date(2025, 3, 21)],
            }],
            market: MarketConfig::default(),
            matching: MatchingConfig {
                partial_fill_prob: 0.1,
                ..MatchingConfig::default()
            },
            assignment: AssignmentConfig {
                early_prob_per_day: 0.05,
                ..AssignmentConfig::default()
            },
            faults: FaultConfig::default(),
            scheduled: vec![ScheduledAssignment {
                at: start.plus(DEMO_ASSIGNMENT_AFTER),
                instrument: short_put.id(),
                contracts: 1,
            }],
        };
        Self {
            config,
            speed: Speed::X10,
        }
    }

    /// The futures demo: a prop-firm style $50 000 account holding 5 MNQ long and 2 MES
    /// short (the front quarter at the start, March 2025, quoted one tick wide on the indexes' paths), no options,
    /// no assignment. With `max_contracts = 2` the guard reduces the MNQ to 2.
    pub fn futures_demo(seed: u64) -> Self {
        let mut s = Self::demo(seed);
        let account = AccountId::new("DU-FUTURES");
        // The front quarter at the demo's start (March 2025, rolling on the 13th).
        let expiry = tradeguard_model::futures::front_quarter(calendar::et_date(s.config.start))
            .unwrap_or(date(2025, 3, 21));
        let fut = |root: &str| {
            let spec = tradeguard_model::futures::spec(root).map_or(1, |s| s.multiplier);
            Instrument::Future {
                symbol: root.into(),
                expiry,
                multiplier: spec,
            }
        };
        let index = |symbol: &str, price: i64, vol: f64| UnderlyingSpec {
            symbol: symbol.into(),
            price: px(price),
            vol,
            drift: 0.05,
            dividend_yield: 0.0,
            ex_dividend_dates: Vec::new(),
        };
        s.config.account = account.clone();
        s.config.cash = Money::from_raw(50_000 * tradeguard_model::SCALE);
        s.config.underlyings = vec![index("MNQ", 21_000, 0.22), index("MES", 5_800, 0.16)];
        s.config.positions = vec![
            Position {
                account: account.clone(),
                instrument: fut("MNQ"),
                qty: 5,
                avg_cost: px(20_990),
            },
            Position {
                account,
                instrument: fut("MES"),
                qty: -2,
                avg_cost: px(5_810),
            },
        ];
        s.config.scheduled = Vec::new();
        s.config.assignment.early_prob_per_day = 0.0;
        s
    }

    /// A load-test account: `positions` option positions (rounded down to an even number) held
    /// as credit verticals one strike wide, spread over two expiries and both rights, away from
    /// the money, each quoted once a virtual second (10 Hz at the 10× speed), with $1 000 000
    /// cash and no scheduled assignment. The UI benchmark runs the app on it.
    pub fn load_test(seed: u64, positions: usize) -> Self {
        let mut s = Self::demo(seed);
        let expiries = [date(2025, 3, 21), date(2025, 4, 17)];
        let spot = 575;
        let account = s.config.account.clone();
        let mut held = Vec::with_capacity(positions);
        for pair in 0..positions / 2 {
            let bucket = pair % 4;
            let step = i64::try_from(pair / 4).unwrap_or(i64::MAX);
            let expiry = expiries[bucket / 2];
            // Puts below the money, calls above: short the strike nearer the money.
            let (right, short, long) = if bucket % 2 == 0 {
                let k = spot - 5 - 2 * step;
                (Right::Put, k, k - 1)
            } else {
                let k = spot + 5 + 2 * step;
                (Right::Call, k, k + 1)
            };
            let opt = |strike: i64| {
                Instrument::Option(OptionContract::equity("SPY", expiry, right, px(strike)))
            };
            // Opened for a credit: the short strike, nearer the money, was sold for more.
            let pos = |instrument, qty, cents: i64| Position {
                account: account.clone(),
                instrument,
                qty,
                avg_cost: Price::from_raw(cents * 100),
            };
            held.push(pos(opt(short), -1, 60));
            held.push(pos(opt(long), 1, 40));
        }
        s.config.positions = held;
        s.config.cash = Money::from_raw(1_000_000 * tradeguard_model::SCALE);
        s.config.scheduled.clear();
        s.config.assignment.early_prob_per_day = 0.0;
        s
    }

    /// Every instrument held at the start (to subscribe quotes for).
    pub fn instruments(&self) -> Vec<Instrument> {
        self.config
            .positions
            .iter()
            .map(|p| p.instrument.clone())
            .collect()
    }

    /// Builds the venue.
    pub fn venue(&self) -> Result<SimVenue, SimError> {
        SimVenue::new(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn load_test_holds_distinct_credit_verticals_and_no_naked_short() {
        let s = Scenario::load_test(3, 500);
        let p = &s.config.positions;
        assert_eq!(p.len(), 500);
        let ids: BTreeSet<_> = p.iter().map(|x| x.instrument.id()).collect();
        assert_eq!(ids.len(), 500, "every position is its own instrument");
        // Per (expiry, right): as many long contracts as short ones, so every short is covered.
        let mut net: BTreeMap<(NaiveDate, bool), (i64, i64)> = BTreeMap::new();
        for x in p {
            let o = x.instrument.as_option().expect("options only");
            let e = net.entry((o.expiry, o.right == Right::Put)).or_default();
            if x.qty < 0 {
                e.0 -= x.qty
            } else {
                e.1 += x.qty
            }
        }
        assert_eq!(net.len(), 4, "two expiries × both rights");
        assert!(net.values().all(|(short, long)| short == long), "{net:?}");
        // Each vertical was opened for a credit (the short leg sold above the long leg's cost).
        for pair in p.chunks(2) {
            assert_eq!((pair[0].qty, pair[1].qty), (-1, 1));
            assert!(pair[0].avg_cost > pair[1].avg_cost, "{pair:?}");
        }
        assert!(s.config.scheduled.is_empty());
        // Odd counts round down to whole verticals.
        assert_eq!(Scenario::load_test(3, 7).config.positions.len(), 6);
        // It builds a venue.
        s.venue().expect("venue");
    }
}
