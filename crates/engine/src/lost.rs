//! Orders whose events were lost (DST invariant 4, seed 71).
//!
//! A leg that timed out and whose cancel was refused (the broker says the order is filled or
//! unknown) or could not be sent (disconnected), would otherwise stay working forever — and
//! while it does, reconciliation leaves its instrument alone, so the book never again equals
//! the broker's. [`Engine::settle_lost_orders`] asks the broker: a timed-out leg whose order
//! the broker no longer lists is settled from the broker's executions of that order (the
//! missed executions are applied like any other, once: they are marked seen) — Filled if they
//! cover it, Cancelled otherwise — and its group moves on; one still listed gets its cancel
//! again. Called when a time-out cancel fails and on every reconnect, and again 2 s later
//! when the broker could not list its open orders.
//!
//! [`Engine::settle_lost_stops`] does the same for managed stops: a stop whose working order
//! (its stop-limit, or its market order) the broker no longer lists is settled from that
//! order's executions — Done when they cover it, else Failed with a critical alert (the
//! position is not protected) — except a stop-limit whose cancel we asked for: gone is the
//! confirmation, and the stop sends its market order for the rest as on a confirmed cancel. Called when a stop's cancel fails and on every reconnect
//! (DST seed 712: a stop-limit filled while the link was down kept its instrument out of
//! reconciliation for good).

use crate::alert::Severity;
use crate::engine::Engine;
use crate::group::{GroupPhase, LegState};
use crate::stop::StopState;
use std::collections::BTreeSet;
use tradeguard_model::{GroupId, OpenOrderKind, OrderId, Timestamp};

/// How soon a lost-order check the broker did not answer is tried again.
const LOST_CHECK_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// The broker's open orders; `None` when it cannot say now, and then the check is tried
    /// again in [`LOST_CHECK_RETRY`] (DST seed 451636553001: the one check after three cancels
    /// the broker refused as "filled" timed out, and the legs stayed working for good).
    async fn open_order_ids(&mut self) -> Option<BTreeSet<OrderId>> {
        match self.broker.open_orders().await {
            Ok(o) => Some(
                o.iter()
                    .map(|o| match &o.order {
                        OpenOrderKind::Single(r) => r.id,
                        OpenOrderKind::Combo(c) => c.id,
                    })
                    .collect(),
            ),
            Err(e) => {
                let at = self.clock.now().plus(LOST_CHECK_RETRY);
                tracing::warn!(
                    code = e.code(),
                    "lost-order check could not ask the broker: {e}; trying again at {at}"
                );
                self.lost_check_at = Some(self.lost_check_at.map_or(at, |t| t.min(at)));
                None
            }
        }
    }

    /// Settles live stops whose working order the broker no longer lists (module docs).
    pub(crate) async fn settle_lost_stops(&mut self) {
        let live: Vec<(u64, OrderId)> = self
            .stops
            .values()
            .filter(|s| !s.is_terminal())
            .filter_map(|s| match s.state {
                StopState::MarketSent => s.market_order.map(|m| (s.id, m)),
                _ => Some((s.id, s.limit_order)),
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let Some(open) = self.open_order_ids().await else {
            return;
        };
        let gone: Vec<(u64, OrderId)> = live
            .into_iter()
            .filter(|(_, o)| !open.contains(o))
            .collect();
        if gone.is_empty() {
            return;
        }
        let execs = match self.broker.executions_since(Timestamp(0)).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(code = e.code(), "lost-stop check: no executions: {e}");
                return;
            }
        };
        for (id, _) in gone {
            let Some((limit, market)) =
                self.stops.get(&id).map(|s| (s.limit_order, s.market_order))
            else {
                continue;
            };
            let of = |o: OrderId| -> i64 {
                execs
                    .iter()
                    .filter(|e| e.order_id == Some(o))
                    .map(|e| e.qty)
                    .sum()
            };
            let (lf, mf) = (of(limit), market.map_or(0, of));
            for e in execs
                .iter()
                .filter(|e| e.order_id == Some(limit) || (market.is_some() && e.order_id == market))
            {
                // Already-seen executions are ignored there; the others move the book.
                self.on_exec(e.clone()).await;
            }
            let Some(s) = self.stops.get_mut(&id) else {
                continue;
            };
            s.limit_filled = s.limit_filled.max(lf.min(s.spec.qty));
            s.market_filled = s.market_filled.max(mf);
            if s.state == StopState::CancelPending && s.remaining() > 0 {
                // We asked for the cancel and the order is gone: that is the confirmation
                // (its status was lost, or is still on its way), as a restart reads it too
                // (`recovery`). The stop goes on as on a confirmed cancel: the market order for
                // what is left, cut to the position still held (or Cancelled when superseded).
                let now = self.clock.now();
                let timeout = self.cfg.stop_timeout;
                let confirmed = tradeguard_model::OrderUpdate {
                    order_id: limit,
                    status: tradeguard_model::OrderStatus::Cancelled,
                    filled: lf,
                    remaining: 0,
                    avg_fill_price: None,
                    reason: None,
                    ts: now,
                };
                let actions = s.on_status(&confirmed, now, timeout);
                tracing::warn!(
                    stop = id,
                    "stop-limit gone at the broker after its cancel was asked: read as the confirmed cancel"
                );
                self.run_stop_actions_pub(id, actions).await;
                continue;
            }
            let done = s.remaining() == 0;
            s.state = if done {
                StopState::Done
            } else {
                StopState::Failed
            };
            let text = format!(
                "stop {id} on {}: its order is gone at the broker (events lost); {} filled of {}{}",
                s.spec.instrument.id(),
                s.filled(),
                s.spec.qty,
                if done {
                    ""
                } else {
                    ": the rest is NOT protected"
                }
            );
            let r = self.write_stop_pub(id).await;
            self.report_unjournaled(r, "stop-loss state");
            let sev = if done {
                Severity::Warning
            } else {
                Severity::Critical
            };
            self.raise(sev, "stop.order_lost", text, None, Some(id))
                .await;
        }
    }

    /// Settles legs waiting for a cancel whose order the broker no longer lists; re-cancels
    /// the others. Those are the legs of a working group that timed out, and the legs of a
    /// group a restart interrupted whose recovery cancel is unanswered (it may have failed:
    /// the link was down at start-up). Left waiting, such a leg keeps its instrument out of
    /// position updates and reconciliation for good: a close that filled while the guard was
    /// down stayed in the engine's book (DST seed 365774009441).
    pub(crate) async fn settle_lost_orders(&mut self) {
        let stuck: Vec<(GroupId, usize, OrderId, Timestamp)> =
            self.groups
                .values()
                .filter(|g| !g.phase.is_terminal() || g.phase == GroupPhase::Interrupted)
                .flat_map(|g| {
                    let interrupted = g.phase == GroupPhase::Interrupted;
                    g.legs.iter().enumerate().filter_map(move |(i, l)| {
                        match (l.order_id, l.sent_at) {
                            (Some(o), Some(t))
                                if (l.timeout_cancel || interrupted) && !l.state.is_terminal() =>
                            {
                                Some((g.id, i, o, t))
                            }
                            _ => None,
                        }
                    })
                })
                .collect();
        if stuck.is_empty() {
            return;
        }
        let Some(open) = self.open_order_ids().await else {
            return;
        };
        let (gone, listed): (Vec<_>, Vec<_>) = stuck
            .into_iter()
            .partition(|(_, _, o, _)| !open.contains(o));
        let again: BTreeSet<OrderId> = listed.iter().map(|(_, _, o, _)| *o).collect();
        for oid in again {
            let now = self.clock.now();
            self.gate.count_messages(1, now);
            if let Err(e) = self.broker.cancel(oid).await {
                tracing::warn!(order = %oid, code = e.code(), "time-out cancel retry failed: {e}");
            }
        }
        let Some(since) = gone.iter().map(|(.., t)| *t).min() else {
            return;
        };
        let execs = match self.broker.executions_since(since).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(code = e.code(), "lost-order check: no executions: {e}");
                return;
            }
        };
        let orders: BTreeSet<OrderId> = gone.iter().map(|(_, _, o, _)| *o).collect();
        for e in execs
            .into_iter()
            .filter(|e| e.order_id.is_some_and(|o| orders.contains(&o)))
        {
            // Already-seen executions are ignored there.
            self.on_exec(e).await;
        }
        let now = self.clock.now();
        let mut touched: BTreeSet<GroupId> = BTreeSet::new();
        let mut notes = Vec::new();
        for (gid, idx, oid, _) in gone {
            let Some(g) = self.groups.get_mut(&gid) else {
                continue;
            };
            let Some(l) = g.legs.get_mut(idx) else {
                continue;
            };
            if l.state.is_terminal() {
                continue;
            }
            let filled = l.filled();
            l.state = if filled >= l.intent.qty {
                LegState::Filled
            } else {
                LegState::Cancelled
            };
            l.reason = Some(format!(
                "order {oid} gone at the broker (its events were lost); settled from its executions: {filled}/{}",
                l.intent.qty
            ));
            g.updated = now;
            notes.push(format!(
                "group {gid}: {} {:?} {filled}/{}",
                l.intent.instrument.id(),
                l.state,
                l.intent.qty
            ));
            touched.insert(gid);
        }
        for gid in touched {
            if let Err(e) = self.write_group(gid).await {
                self.journal_failed(gid, e).await;
                continue;
            }
            self.advance_group(gid).await;
        }
        if !notes.is_empty() {
            self.raise(
                Severity::Warning,
                "group.order_lost",
                format!(
                    "orders the broker no longer lists, settled from its executions: {}",
                    notes.join(", ")
                ),
                None,
                None,
            )
            .await;
        }
    }
}
