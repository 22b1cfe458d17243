//! Simulator configuration: market model, matching, assignment and fault rates.
//!
//! Every probability is a plain `f64` in `[0, 1]` (values ≤ 0 or NaN mean "never", ≥ 1
//! "always"); a rate of exactly 0 never draws from the RNG, so enabling a fault does not
//! perturb runs where it is off. All money is fixed point.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tradeguard_model::{AccountId, InstrumentId, Money, Position, Price, Timestamp};

/// One simulated underlying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderlyingSpec {
    /// Ticker (also the OCC root of its options).
    pub symbol: String,
    /// Starting price.
    pub price: Price,
    /// Annualized volatility of the diffusion and the base implied vol (0.18 = 18 %).
    pub vol: f64,
    /// Annual drift.
    pub drift: f64,
    /// Continuous dividend yield used for option pricing.
    pub dividend_yield: f64,
    /// Ex-dividend dates (early assignment of ITM calls is more likely the day before).
    pub ex_dividend_dates: Vec<NaiveDate>,
}

/// Market model parameters shared by all underlyings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketConfig {
    /// Virtual time per simulation step.
    pub step: Duration,
    /// Interval between quote events for subscribed instruments (regular hours only).
    pub quote_interval: Duration,
    /// Interval between periodic account events (regular hours only).
    pub account_interval: Duration,
    /// Expected jumps per year (Poisson intensity).
    pub jump_intensity: f64,
    /// Mean of the log jump size.
    pub jump_mean: f64,
    /// Std-dev of the log jump size.
    pub jump_std: f64,
    /// Std-dev of the log overnight gap applied at each regular-session open.
    pub gap_std: f64,
    /// Risk-free rate for option pricing.
    pub rate: f64,
    /// Implied-vol skew: iv = vol × (1 − skew × ln(K/S)), clamped to [0.05, 3].
    pub skew: f64,
    /// Stock half-spread in basis points of the price (min one tick).
    pub stock_half_spread_bps: u32,
    /// Option half-spread as a fraction of the theoretical value (min one tick).
    pub option_half_spread_frac: f64,
    /// Spread multiplier while the market is fast (after a jump or a 3-sigma move).
    pub fast_spread_mult: f64,
    /// How long the market stays fast after a jump.
    pub fast_duration: Duration,
    /// Minimum price increment for stock and options.
    pub tick: Price,
    /// The opening rotation: for this long after the regular open, spreads are
    /// `fast_spread_mult` wide (option markets open wide and narrow within minutes).
    #[serde(default = "default_opening_wide")]
    pub opening_wide: Duration,
}

fn default_opening_wide() -> Duration {
    Duration::from_secs(60)
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            step: Duration::from_secs(1),
            quote_interval: Duration::from_secs(1),
            account_interval: Duration::from_secs(60),
            jump_intensity: 8.0,
            jump_mean: -0.01,
            jump_std: 0.02,
            gap_std: 0.006,
            rate: 0.04,
            skew: 0.8,
            stock_half_spread_bps: 1,
            option_half_spread_frac: 0.02,
            fast_spread_mult: 3.0,
            fast_duration: Duration::from_secs(120),
            tick: Price::from_raw(100),
            opening_wide: default_opening_wide(),
        }
    }
}

/// Matching and order-handling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchingConfig {
    /// Fixed latency from a call until the venue acts on it.
    pub latency: Duration,
    /// Extra uniformly random latency, 0..=jitter.
    pub latency_jitter: Duration,
    /// Market (and triggered stop) orders slip 0..=this many ticks past the touch.
    pub max_slippage_ticks: u32,
    /// Probability that a fill is partial (only when more than 1 unit remains).
    pub partial_fill_prob: f64,
    /// Probability that an arriving order is rejected at random.
    pub random_reject_prob: f64,
    /// Combos fill atomically (`true`) or one leg per step (`false`).
    pub combo_as_package: bool,
    /// Initial margin as a percentage of maintenance margin.
    pub initial_margin_pct: u32,
    /// Commission per contract/share lot (charged per execution quantity unit of options).
    pub option_commission: Money,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(200),
            latency_jitter: Duration::from_millis(100),
            max_slippage_ticks: 2,
            partial_fill_prob: 0.0,
            random_reject_prob: 0.0,
            combo_as_package: true,
            initial_margin_pct: 110,
            option_commission: Money::from_raw(6_500),
        }
    }
}

/// Exercise and assignment parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentConfig {
    /// Daily probability that a deep-ITM short American option is (partly) assigned early.
    pub early_prob_per_day: f64,
    /// Multiplier of that probability for calls on the day before an ex-dividend date.
    pub ex_div_multiplier: f64,
    /// An option is "deep ITM" when its time value is below this.
    pub deep_itm_max_time_value: Price,
    /// Delay from the decision (at the close) until delivery (overnight).
    pub delivery_delay: Duration,
    /// How a delivery's option and stock position updates reach the client.
    #[serde(default)]
    pub report: DeliveryReport,
}

/// How the two position updates of one assignment or exercise (the option's and the stock's)
/// reach the client. Documented: IB sends each contract's position as its own message
/// (`position` / `updatePortfolio`, one per contract:
/// <https://interactivebrokers.github.io/tws-api/positions.html>) and promises no order between
/// contracts. Observed, not documented (issue "The assignment guard under real broker timing"):
/// the two messages of an assignment come in either order, up to seconds apart, and an
/// overnight one is often first seen in the positions listed at the next connect. The defaults
/// model that; [`DeliveryReport::batch`] is the kind model (both in one step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Largest gap between the two updates; the gap is drawn uniformly in `0..=max_gap`
    /// (zero: both in one step, no draw).
    pub max_gap: Duration,
    /// Probability that the stock's update comes first.
    pub stock_first_prob: f64,
    /// Probability that the later update is never sent: the change shows only in the
    /// positions a snapshot (reconciliation, the next connect) lists.
    pub unreported_prob: f64,
}

impl DeliveryReport {
    /// Both updates in the same step, option first (no draw).
    pub fn batch() -> Self {
        Self {
            max_gap: Duration::ZERO,
            stock_first_prob: 0.0,
            unreported_prob: 0.0,
        }
    }
}

impl Default for DeliveryReport {
    fn default() -> Self {
        Self {
            max_gap: Duration::from_secs(3),
            stock_first_prob: 0.5,
            unreported_prob: 0.0,
        }
    }
}

impl Default for AssignmentConfig {
    fn default() -> Self {
        Self {
            early_prob_per_day: 0.0,
            ex_div_multiplier: 10.0,
            deep_itm_max_time_value: Price::from_raw(500),
            delivery_delay: Duration::from_secs(6 * 3600),
            report: DeliveryReport::default(),
        }
    }
}

/// Fault injection; all rates default to 0 (off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FaultConfig {
    /// Probability per step of a disconnect.
    pub disconnect_prob: f64,
    /// How long a disconnect lasts before reconnecting (events in between are lost).
    pub reconnect_after: Duration,
    /// Probability per step of a silent stall (connection up, events withheld; quotes dropped).
    pub stall_prob: f64,
    /// How long a stall lasts; withheld non-quote events are delivered when it ends.
    pub stall_duration: Duration,
    /// Probability that an event is delivered twice.
    pub duplicate_prob: f64,
    /// Probability that an event is delayed by 1..=`delay_max`.
    pub delay_prob: f64,
    /// Maximum extra delay.
    pub delay_max: Duration,
    /// Probability that a delivered event swaps places with the next one.
    pub reorder_prob: f64,
    /// Probability that a cancel is rejected (order keeps working).
    pub cancel_reject_prob: f64,
    /// Probability that a cancel takes `cancel_late_delay` longer (order keeps matching).
    pub cancel_late_prob: f64,
    /// Extra delay of a late cancel.
    pub cancel_late_delay: Duration,
    /// Probability that the remaining quantity fills just before a cancel takes effect.
    pub fill_after_cancel_prob: f64,
}

/// A scheduled forced assignment/exercise (deterministic demo events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAssignment {
    /// When.
    pub at: Timestamp,
    /// Option position to assign (short) or exercise (long).
    pub instrument: InstrumentId,
    /// Number of contracts.
    pub contracts: i64,
}

/// Full simulator configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// RNG seed: same seed + same inputs ⇒ same events.
    pub seed: u64,
    /// Virtual start time.
    pub start: Timestamp,
    /// Account id.
    pub account: AccountId,
    /// Starting cash.
    pub cash: Money,
    /// Starting positions (their `account` field is ignored).
    pub positions: Vec<Position>,
    /// Underlyings.
    pub underlyings: Vec<UnderlyingSpec>,
    /// Market model.
    pub market: MarketConfig,
    /// Matching.
    pub matching: MatchingConfig,
    /// Assignment.
    pub assignment: AssignmentConfig,
    /// Faults.
    pub faults: FaultConfig,
    /// Forced assignments at fixed times.
    pub scheduled: Vec<ScheduledAssignment>,
}
