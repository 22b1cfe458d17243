//! The daily summary: once a trading day, at the time of the alerts file's `[summary]` table
//! (New York time, 16:30 by default), one Info message `summary.daily` with the positions, the
//! unrealized P&L, every strategy that is not plainly open (Broken ones with their reason), the
//! close jobs, and what the guard raised since the last summary. It goes only to the channels
//! that ask for it (`daily_summary = true`), through the same outbox as every alert (journaled,
//! retried); the day of the last one is read back from the journal, so a restart after the
//! summary time does not send a second one.

use chrono::{NaiveDate, NaiveTime};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::alert::{Alert, AlertSink, Severity};
use tradeguard_engine::calendar;
use tradeguard_engine::enforce::{Guard, StatusSummary};
use tradeguard_engine::strategies::StrategyView;
use tradeguard_model::{Clock, StrategyState, Timestamp};

/// The summary's code.
pub const CODE: &str = "summary.daily";

/// How often the task looks at the clock.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Alerts seen since the last summary: (severity, code) → how many.
pub type Seen = BTreeMap<(Severity, String), u32>;

/// The summary's text for `date` (a pure function of what the guard shows).
pub fn compose(
    date: NaiveDate,
    status: &StatusSummary,
    strategies: &[StrategyView],
    seen: &Seen,
    now: Timestamp,
) -> Alert {
    let mut by_state: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut notable = Vec::new();
    for s in strategies {
        let state = match s.state {
            StrategyState::Opening => "opening",
            StrategyState::Open => "open",
            StrategyState::Closing => "closing",
            StrategyState::Closed => "closed",
            StrategyState::Broken => "broken",
        };
        *by_state.entry(state).or_default() += 1;
        match (&s.state, &s.broken_reason) {
            (StrategyState::Broken, Some(r)) => {
                notable.push(format!("{} BROKEN ({})", s.name, r.describe()))
            }
            (StrategyState::Broken, None) => notable.push(format!("{} BROKEN", s.name)),
            (StrategyState::Closing, _) => notable.push(format!("{} closing", s.name)),
            _ => {}
        }
    }
    let states = if by_state.is_empty() {
        "none".to_owned()
    } else {
        by_state
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let count = |sev: Severity| -> u32 {
        seen.iter()
            .filter(|((s, _), _)| *s == sev)
            .map(|(_, n)| *n)
            .sum()
    };
    let top: Vec<String> = {
        let mut v: Vec<_> = seen
            .iter()
            .filter(|((s, _), _)| *s >= Severity::Warning)
            .collect();
        v.sort_by(|a, b| b.0.0.cmp(&a.0.0).then(b.1.cmp(a.1)));
        v.iter()
            .take(8)
            .map(|((_, c), n)| format!("{c} ×{n}"))
            .collect()
    };
    let mut text = format!(
        "Daily summary {}: {} positions, unrealized P&L {}{}. Strategies: {states}{}.",
        date.format("%a %Y-%m-%d"),
        status.positions_monitored,
        status.unrealized_pnl,
        if status.marks_missing > 0 {
            format!(" ({} without a mark)", status.marks_missing)
        } else {
            String::new()
        },
        if notable.is_empty() {
            String::new()
        } else {
            format!(" — {}", notable.join("; "))
        },
    );
    text.push_str(&format!(
        " Since the last summary: {} Critical, {} Warning alerts{}.",
        count(Severity::Critical),
        count(Severity::Warning),
        if top.is_empty() {
            String::new()
        } else {
            format!(" ({})", top.join(", "))
        }
    ));
    text.push_str(&format!(
        " Close jobs: {} ({} need manual action). Rules: {} enabled, {} fired{}.",
        status.closes.len(),
        status.needs_manual,
        status.rules,
        status.decisions_fired,
        if status.dry_run { ", DRY-RUN" } else { "" }
    ));
    if !status.forced_unwind.is_empty() {
        text.push_str(&format!(
            " Forced unwind on: {}.",
            status
                .forced_unwind
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Alert {
        ts: now,
        severity: Severity::Info,
        code: CODE.to_owned(),
        message: text,
        group: None,
        stop: None,
    }
}

/// Whether the summary of the day `now` falls in is due: a trading day, at or after `at` New
/// York time, and none sent that day (`last`: the time of the last one).
pub fn due(now: Timestamp, at: NaiveTime, last: Option<Timestamp>) -> Option<NaiveDate> {
    let local = calendar::new_york(now);
    let date = local.date();
    if !calendar::is_trading_day(date) || local.time() < at {
        return None;
    }
    if last.is_some_and(|l| calendar::new_york(l).date() >= date) {
        return None;
    }
    Some(date)
}

/// Runs the daily summary for `guard` until aborted: alerts it raises are counted, and when a
/// summary is [`due`] it is handed to `sink` (the relay's inbox).
pub fn spawn(
    guard: Guard,
    sink: Arc<dyn AlertSink>,
    clock: Arc<dyn Clock>,
    at: NaiveTime,
    last: Arc<std::sync::Mutex<Option<Timestamp>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut alerts = guard.subscribe_alerts();
        let mut seen = Seen::new();
        let mut tick = tokio::time::interval(LOOK_EVERY);
        loop {
            tokio::select! {
                a = alerts.recv() => match a {
                    Ok(a) => *seen.entry((a.severity, a.code)).or_default() += 1,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        *seen.entry((Severity::Info, "guard.alerts_lagged".to_owned())).or_default() += u32::try_from(n).unwrap_or(u32::MAX);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let now = clock.now();
                    let before = *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(date) = due(now, at, before) {
                        let a = compose(date, &guard.status().await, &guard.strategies(), &seen, now);
                        tracing::info!(code = CODE, "{}", a.message);
                        sink.accept(&a);
                        seen.clear();
                        *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn et(d: u32, h: u32, m: u32) -> Timestamp {
        calendar::new_york_instant(
            NaiveDate::from_ymd_opt(2026, 12, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap(),
        )
    }

    #[test]
    fn due_once_a_trading_day_after_its_time() {
        let at = NaiveTime::from_hms_opt(16, 30, 0).unwrap();
        // Monday 7 December 2026.
        assert_eq!(due(et(7, 16, 29), at, None), None);
        assert_eq!(
            due(et(7, 16, 30), at, None),
            NaiveDate::from_ymd_opt(2026, 12, 7)
        );
        assert_eq!(due(et(7, 20, 0), at, Some(et(7, 16, 31))), None);
        assert_eq!(
            due(et(8, 16, 31), at, Some(et(7, 16, 31))),
            NaiveDate::from_ymd_opt(2026, 12, 8)
        );
        // Saturday: none.
        assert_eq!(due(et(12, 17, 0), at, Some(et(11, 16, 31))), None);
        // Christmas: none.
        assert_eq!(due(et(25, 17, 0), at, Some(et(24, 16, 31))), None);
    }

    #[test]
    fn the_summary_says_the_broken_strategy_and_what_was_raised() {
        let mut seen = Seen::new();
        seen.insert((Severity::Critical, "assignment.detected".into()), 1);
        seen.insert((Severity::Warning, "stop.cancel_rejected".into()), 2);
        seen.insert((Severity::Info, "stop.placed".into()), 5);
        let status = StatusSummary {
            positions_monitored: 9,
            ..StatusSummary::default()
        };
        let a = compose(
            NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            &status,
            &[],
            &seen,
            et(7, 16, 30),
        );
        assert_eq!(a.code, CODE);
        assert_eq!(a.severity, Severity::Info);
        assert!(
            a.message
                .starts_with("Daily summary Mon 2026-12-07: 9 positions, unrealized P&L"),
            "{}",
            a.message
        );
        assert!(
            a.message.contains(
                "1 Critical, 2 Warning alerts (assignment.detected ×1, stop.cancel_rejected ×2)"
            ),
            "{}",
            a.message
        );
        assert!(!a.message.contains("stop.placed"));
    }
}
