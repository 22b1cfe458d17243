//! [`EnforceConfig`]: every interval and bound of the enforcement runtime, with defaults.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Enforcement runtime settings. Intervals are tokio (wall) time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnforceConfig {
    /// The enforcer evaluates the rules at least this often (and on every relevant event).
    pub eval_interval: Duration,
    /// Reconciliation with the broker's positions and open orders.
    pub reconcile_interval: Duration,
    /// Connection up, market open and no event for this long: the stream is stalled.
    pub stall_after: Duration,
    /// How often the stall condition is checked.
    pub stall_check_interval: Duration,
    /// Periodic status summary (log + UI).
    pub status_interval: Duration,
    /// A quote older than this makes a mark stale.
    pub quote_stale_after: Duration,
    /// A position with no usable mark is reported (the log's warning, the rules' "cannot
    /// evaluate" alerts) only once it has stayed so this long: a new position's first quote
    /// follows its subscription by a moment, and a start-up with 500 positions raised 500
    /// warnings and 700 alerts that cleared within a second.
    pub mark_grace: Duration,
    /// A new close waits up to this long for a quote on each of its legs (the gate needs a
    /// reference price) before it is sent anyway.
    pub close_quote_wait: Duration,
    /// Attempts for one close before it is raised as "needs manual action".
    pub close_max_attempts: u32,
    /// First retry delay of a failed close; doubles per attempt up to `close_retry_max`.
    pub close_retry_base: Duration,
    /// Longest retry delay of a failed close.
    pub close_retry_max: Duration,
    /// First restart delay of a crashed task; doubles per consecutive crash.
    pub restart_base: Duration,
    /// Longest restart delay (the supervisor's restart budget).
    pub restart_max: Duration,
    /// A task that ran this long without crashing starts again from `restart_base`.
    pub restart_reset_after: Duration,
    /// Watchdog: a supervised task whose heartbeat is older than the larger of this and
    /// `watchdog_periods` × its own period is hung (a Critical `supervisor.task_hung` alert
    /// names it and how long it was silent) and is aborted and restarted. Judged in tokio
    /// (wall) time like the intervals: a healthy task beats every second or every period, and
    /// a broker call times out long before this (IB: 10 s).
    pub watchdog_after: Duration,
    /// See `watchdog_after`: the budget of a task with a long period (the status task's 60 s).
    pub watchdog_periods: u32,
    /// A local order the broker does not list is reported only once it is older than this.
    pub order_grace: Duration,
    /// A rule breach that clears is alerted and audited again only once it has stayed clear
    /// this long (clock time), so a P&L hovering at a threshold alerts once, not at every
    /// crossing. Closes are unaffected: a breach queues its close at every evaluation.
    pub realert_after: Duration,
    /// Global dry-run: decisions are logged and audited, no order is sent.
    pub dry_run: bool,
    /// A strategy that appeared or changed its legs after start is not evaluated by the rules
    /// until it has stood this long: longer than the assignment detector's pairing window, so
    /// the leftovers of an assignment the book regroups for a moment never fire a rule.
    pub strategy_settle: Duration,
    /// A broker connection down this long is a Critical alert (and its restore a Warning).
    pub link_alert_after: Duration,
    /// The hybrid exit of a `stop_loss` rule: its limit orders (the touch ∓ this buffer, in
    /// basis points) work this long before they are cancelled; the rest goes at market once
    /// the broker confirms the cancels.
    pub hybrid_exit_timeout: Duration,
    /// The hybrid exit's slippage buffer in basis points of the touch (50 = 0.5 %).
    pub hybrid_exit_slippage_bps: u32,
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            eval_interval: Duration::from_millis(500),
            reconcile_interval: Duration::from_secs(12),
            stall_after: Duration::from_secs(15),
            stall_check_interval: Duration::from_secs(1),
            status_interval: Duration::from_secs(60),
            quote_stale_after: Duration::from_secs(10),
            mark_grace: Duration::from_secs(5),
            close_quote_wait: Duration::from_secs(5),
            close_max_attempts: 3,
            close_retry_base: Duration::from_secs(1),
            close_retry_max: Duration::from_secs(30),
            restart_base: Duration::from_millis(100),
            restart_max: Duration::from_secs(5),
            restart_reset_after: Duration::from_secs(60),
            watchdog_after: Duration::from_secs(60),
            watchdog_periods: 5,
            order_grace: Duration::from_secs(5),
            realert_after: Duration::from_secs(60),
            dry_run: false,
            strategy_settle: Duration::from_secs(12),
            link_alert_after: Duration::from_secs(5),
            hybrid_exit_timeout: Duration::from_secs(2),
            hybrid_exit_slippage_bps: 50,
        }
    }
}

impl EnforceConfig {
    /// How long a task that beats every `period` may stay silent before the watchdog restarts
    /// it: `max(watchdog_after, watchdog_periods × period)`.
    pub fn watchdog_budget(&self, period: Duration) -> Duration {
        self.watchdog_after
            .max(period.saturating_mul(self.watchdog_periods))
    }
}

/// `base × 2^(n−1)` for the n-th consecutive failure (n ≥ 1), at most `max`.
pub fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << shift).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let b = Duration::from_millis(100);
        let m = Duration::from_secs(1);
        let got: Vec<u128> = (1..=6).map(|n| backoff(b, m, n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(b, m, 0), b);
        assert_eq!(backoff(b, m, u32::MAX), m);
    }

    #[test]
    fn watchdog_budget_is_the_floor_or_a_few_periods() {
        let c = EnforceConfig::default();
        assert_eq!(c.watchdog_budget(Duration::from_secs(1)), c.watchdog_after);
        assert_eq!(
            c.watchdog_budget(c.status_interval),
            c.status_interval * c.watchdog_periods
        );
        assert!(c.watchdog_budget(c.eval_interval) >= Duration::from_secs(60));
    }
}
