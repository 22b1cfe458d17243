//! The reconciler task: every `reconcile_interval` (and on request: reconnect, dropped events,
//! a close whose position vanished) compares the broker's positions and open orders with the
//! live book and the coordinator; the broker wins, and every difference gets an audit entry and
//! an alert. The assignment guard's detector sees every snapshot too, so an assignment whose
//! position events were dropped is found within a reconciliation interval. Every `stall_check_interval` it also checks for a stalled stream (connected,
//! market open, subscriptions active, no event for `stall_after`): it alerts, probes the broker
//! with a snapshot call and has the pump resubscribe.

use crate::alert::Severity;
use crate::enforce::core::SharedCore;
use crate::enforce::supervisor::{Heartbeat, TaskResult};
use crate::group::LegState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tradeguard_model::{
    AccountId, BrokerEvent, ConnectionState, InstrumentId, OpenOrderKind, OrderId, Position,
    Timestamp,
};

/// One position difference found (and repaired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PositionDiff {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Quantity the guard had.
    pub local: i64,
    /// Quantity the broker reports.
    pub broker: i64,
}

/// Result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// When.
    pub at: Timestamp,
    /// Live-book differences (repaired).
    pub positions: Vec<PositionDiff>,
    /// Coordinator book repairs.
    pub engine_repairs: usize,
    /// Broker orders unknown to the coordinator, and coordinator orders the broker lacks.
    pub order_diffs: Vec<String>,
    /// Why it could not run, if it could not.
    pub error: Option<String>,
}

/// Differences between the local and the broker's positions (pure).
pub fn diff_positions(
    local: &BTreeMap<(AccountId, InstrumentId), i64>,
    broker: &[Position],
) -> Vec<PositionDiff> {
    let theirs: BTreeMap<(AccountId, InstrumentId), i64> = broker
        .iter()
        .filter(|p| p.qty != 0)
        .map(|p| ((p.account.clone(), p.instrument.id()), p.qty))
        .collect();
    let keys: BTreeSet<&(AccountId, InstrumentId)> = local.keys().chain(theirs.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let l = local.get(k).copied().unwrap_or(0);
            let b = theirs.get(k).copied().unwrap_or(0);
            (l != b).then(|| PositionDiff {
                account: k.0.clone(),
                instrument: k.1.clone(),
                local: l,
                broker: b,
            })
        })
        .collect()
}

pub(crate) async fn run(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let start = tokio::time::Instant::now();
    let mut rec = tokio::time::interval_at(
        start + core.cfg.reconcile_interval,
        core.cfg.reconcile_interval,
    );
    rec.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stall = tokio::time::interval(core.cfg.stall_check_interval);
    stall.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Biased (deterministic under simulation): a requested reconciliation first, then the
        // periodic one, then the stall check.
        tokio::select! {
            biased;
            () = core.wake_reconciler.notified() => reconcile_once(&core).await?,
            _ = rec.tick() => reconcile_once(&core).await?,
            _ = stall.tick() => check_stall(&core).await,
        }
        hb.beat();
    }
}

/// One reconciliation. Broker call failures are reported in the status, not fatal.
pub(crate) async fn reconcile_once(core: &SharedCore) -> TaskResult {
    let now = core.now();
    let mut report = ReconcileReport {
        at: now,
        positions: Vec::new(),
        engine_repairs: 0,
        order_diffs: Vec::new(),
        error: None,
    };
    // Asked for now: the coordinator keeps what its book applied after this (fills, position
    // events) over the snapshot.
    let taken = core.now();
    let positions = match core.broker.positions().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(code = e.code(), "reconciliation skipped: {e}");
            report.error = Some(format!("{e} ({})", e.code()));
            let mut st = core.lock();
            st.last_reconcile = Some(report);
            return Ok(());
        }
    };
    let account = core.broker.account().await.ok();
    let new_instruments: Vec<_> = {
        let mut st = core.lock();
        let local: BTreeMap<(AccountId, InstrumentId), i64> = st
            .book
            .positions(now, core.cfg.quote_stale_after)
            .into_iter()
            .map(|p| ((p.account, p.instrument.id()), p.qty))
            .collect();
        report.positions = diff_positions(&local, &positions);
        st.book.replace_positions(positions.clone());
        if let Some(a) = account {
            st.book.apply(&BrokerEvent::Account(a));
        }
        positions
            .iter()
            .filter(|p| !st.subscribed.contains(&p.instrument.id()))
            .map(|p| p.instrument.clone())
            .collect()
    };
    core.subscribe(new_instruments, false).await;
    for d in &report.positions {
        let text = format!(
            "reconciliation: {} {} local {} vs broker {}; repaired (broker wins)",
            d.account, d.instrument, d.local, d.broker
        );
        core.alerter
            .audit(
                "reconciled",
                "reconcile.position_mismatch",
                text.clone(),
                None,
            )
            .await;
        core.alerter
            .raise(Severity::Warning, "reconcile.position_mismatch", text)
            .await;
    }
    // The assignment detector sees every snapshot: an assignment whose position events were
    // lost is found here (once the next reconciliation confirms it).
    if let Err(e) = core.assignment().reconciled(positions.clone()).await {
        core.alerter
            .raise(
                Severity::Critical,
                "reconcile.assignment_unreachable",
                format!(
                    "reconciliation could not reach the assignment guard: {e} ({}); lost assignment events are not being checked",
                    e.code()
                ),
            )
            .await;
    }
    let repairs = core.coord.reconcile_positions(positions, taken).await?;
    report.engine_repairs = repairs.len();
    for r in &repairs {
        let text = format!(
            "reconciliation: coordinator book {} {} -> {} (broker wins)",
            r.instrument, r.local, r.broker
        );
        core.alerter
            .audit("reconciled", "reconcile.engine_book", text.clone(), None)
            .await;
        core.alerter
            .raise(Severity::Warning, "reconcile.engine_book", text)
            .await;
    }
    match core.broker.open_orders().await {
        Ok(open) => report.order_diffs = order_diffs(core, &open, now).await?,
        Err(e) => report.error = Some(format!("open orders: {e} ({})", e.code())),
    }
    let changed = !report.positions.is_empty() || !repairs.is_empty();
    {
        let mut st = core.lock();
        st.last_reconcile = Some(report);
        st.reconciliations += 1;
    }
    if changed {
        core.wake_enforcer.notify_one();
    }
    Ok(())
}

async fn order_diffs(
    core: &SharedCore,
    open: &[tradeguard_model::OpenOrder],
    now: Timestamp,
) -> Result<Vec<String>, crate::enforce::error::EnforceError> {
    let snap = core.coord.snapshot().await?;
    let grace = core.cfg.order_grace;
    let mut ours: BTreeSet<OrderId> = BTreeSet::new();
    let mut expected: BTreeMap<OrderId, String> = BTreeMap::new();
    for g in &snap.groups {
        for l in &g.legs {
            if let Some(id) = l.order_id {
                ours.insert(id);
                let live = matches!(l.state, LegState::Sent | LegState::PartiallyFilled);
                if live && l.sent_at.is_some_and(|t| now.duration_since(t) >= grace) {
                    expected.insert(
                        id,
                        format!("group {} leg {}", g.id, l.intent.instrument.id()),
                    );
                }
            }
        }
    }
    for s in &snap.stops {
        ours.insert(s.limit_order);
        ours.extend(s.market_order);
    }
    let at_broker: BTreeSet<OrderId> = open
        .iter()
        .map(|o| match &o.order {
            OpenOrderKind::Single(r) => r.id,
            OpenOrderKind::Combo(c) => c.id,
        })
        .collect();
    let mut out = Vec::new();
    for id in at_broker.difference(&ours) {
        out.push((
            *id,
            format!(
                "broker order {id} is not known to the coordinator (placed outside Tradeguard?)"
            ),
            "reconcile.unknown_order",
        ));
    }
    for (id, what) in &expected {
        if !at_broker.contains(id) {
            out.push((
                *id,
                format!("{what}: order {id} is working locally but the broker does not list it"),
                "reconcile.order_missing",
            ));
        }
    }
    let mut texts = Vec::new();
    for (id, text, code) in out {
        let first = core.lock().reported_orders.insert(id);
        if first {
            core.alerter
                .audit("reconciled", code, text.clone(), None)
                .await;
            core.alerter
                .raise(Severity::Warning, code, text.clone())
                .await;
        }
        texts.push(text);
    }
    Ok(texts)
}

/// Stall detection: connected, market open, subscribed, silent for `stall_after`.
pub(crate) async fn check_stall(core: &SharedCore) {
    let now = core.now();
    let silent = {
        let mut st = core.lock();
        let connected = matches!(
            st.book.connection(),
            None | Some(ConnectionState::Connected | ConnectionState::Stalled { .. })
        );
        let silent = st.last_event_at.map(|t| now.duration_since(t));
        let stalled = connected
            && !st.subscribed.is_empty()
            && core.hours.is_open(now)
            && silent.is_some_and(|s| s >= core.cfg.stall_after);
        if !stalled {
            return;
        }
        st.stalls += 1;
        st.resubscribes += 1;
        // Wait another full `stall_after` before the next verdict.
        st.last_event_at = Some(now);
        silent.unwrap_or_default()
    };
    let probe = match tokio::time::timeout(core.cfg.stall_after, core.broker.account()).await {
        Ok(Ok(_)) => "probe answered".to_owned(),
        Ok(Err(e)) => format!("probe failed: {e} ({})", e.code()),
        Err(_) => "probe timed out".to_owned(),
    };
    core.alerter
        .raise(
            Severity::Warning,
            "broker.stream_stalled",
            format!(
                "no broker events for {:.1} s while connected and the market is open ({probe}); resubscribing",
                silent.as_secs_f64()
            ),
        )
        .await;
    core.resubscribe.notify_one();
    core.wake_reconciler.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::{Price, stubs};

    #[test]
    fn diff_finds_missing_extra_and_changed() {
        let a = stubs::account();
        let mut local = BTreeMap::new();
        local.insert((a.clone(), stubs::put(440).id()), -1);
        local.insert((a.clone(), stubs::put(430).id()), 1);
        let pos = |i: tradeguard_model::Instrument, q| Position {
            account: a.clone(),
            instrument: i,
            qty: q,
            avg_cost: Price::ZERO,
        };
        let broker = vec![pos(stubs::put(430), 2), pos(stubs::call(460), -1)];
        let d = diff_positions(&local, &broker);
        let got: Vec<(String, i64, i64)> = d
            .iter()
            .map(|d| (d.instrument.to_string(), d.local, d.broker))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.contains(&(stubs::put(440).id().to_string(), -1, 0)));
        assert!(got.contains(&(stubs::put(430).id().to_string(), 1, 2)));
        assert!(got.contains(&(stubs::call(460).id().to_string(), 0, -1)));
        assert!(
            diff_positions(&local, &[pos(stubs::put(440), -1), pos(stubs::put(430), 1)]).is_empty()
        );
    }
}
