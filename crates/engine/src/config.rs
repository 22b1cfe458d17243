//! [`EngineConfig`]: every tunable of the coordinator, with the documented defaults.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use tradeguard_model::{Money, Price};

/// Pre-trade gate limits (see [`crate::gate`]). Size, notional and throttle are *opening*
/// limits: an order whose every leg reduces an existing position (a close, a flatten) is never
/// refused by them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Order messages per second refilled into the throttle bucket (IB allows about 50/s).
    /// Closes and emergency exits are counted, never refused.
    pub max_msgs_per_sec: u32,
    /// Bucket capacity (burst).
    pub burst: u32,
    /// Maximum quantity of one broker order. An opening leg above it is refused
    /// (`gate.max_order_qty`); a reducing leg above it is sent as child orders of at most this
    /// many (Emergency and Hedge orders go out whole); a stop-loss above it is refused.
    pub max_order_qty: i64,
    /// Maximum notional of one opening intent (Σ |qty| × multiplier × reference price over
    /// its legs); closes are not limited.
    pub max_notional: Money,
    /// Refuse when the worst-case stress requirement exceeds this % of available funds.
    pub stress_pct: u32,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            max_msgs_per_sec: 50,
            burst: 50,
            max_order_qty: 100,
            max_notional: Money::from_raw(1_000_000 * tradeguard_model::SCALE),
            stress_pct: 90,
        }
    }
}

/// Coordinator configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Gate limits.
    pub gate: GateConfig,
    /// Send multi-leg groups as one native combo when the broker supports it.
    pub prefer_native_combos: bool,
    /// A sent leg (or combo) not filled within this is cancelled and the group rolled back.
    pub leg_timeout: Duration,
    /// Interim exposure monitor period while a group is legging in.
    pub exposure_check_interval: Duration,
    /// Alert when naked short contracts (per underlying and right) exceed this while legging.
    pub max_unhedged_contracts: i64,
    /// Hedging of the naked exposure the guard's own multi-leg groups leave while they leg in
    /// (never of shorts it did not open) on/off.
    pub hedge_enabled: bool,
    /// Debounce between the first exposure change and the hedge.
    pub hedge_debounce: Duration,
    /// Stop-limit slippage buffer in basis points of the stop price (50 = 0.5 %).
    pub stop_slippage_bps: u32,
    /// Time after the stop triggers before the stop-limit is cancelled and replaced by a market order.
    pub stop_timeout: Duration,
    /// Price tick used to round stop-limit prices.
    pub tick: Price,
    /// Naked shorts the guard did not open are reported (never traded) once they have stood
    /// this long (an assignment's option and stock updates may arrive seconds apart).
    pub naked_alert_after: Duration,
    /// At start-up, how long to wait for cancels of interrupted orders before hedging anyway.
    pub recovery_cancel_wait: Duration,
    /// Underlyings whose stock quotes are subscribed at start (marks and stress spots).
    pub watch_symbols: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            gate: GateConfig::default(),
            prefer_native_combos: false,
            leg_timeout: Duration::from_secs(30),
            exposure_check_interval: Duration::from_millis(100),
            max_unhedged_contracts: 0,
            hedge_enabled: true,
            hedge_debounce: Duration::from_millis(500),
            stop_slippage_bps: 50,
            stop_timeout: Duration::from_secs(2),
            tick: Price::from_raw(100),
            naked_alert_after: Duration::from_secs(5),
            recovery_cancel_wait: Duration::from_secs(5),
            watch_symbols: Vec::new(),
        }
    }
}
