//! Start-up recovery: load the journal, take positions and open orders from the broker (the
//! broker wins), settle every group and stop-loss the journal left unfinished, and hedge the
//! naked exposure those unfinished groups of the guard left; naked shorts found otherwise (the
//! trader's own, an assignment's) are reported once, never traded.
//!
//! Policy: an unfinished group is **not resumed** (prices and intent may be stale). Its working
//! orders are cancelled, its legs take the broker's fills, and it ends `Interrupted` with an
//! alert; naked exposure its fills left is covered by the hedge manager (once the cancels are
//! confirmed or `recovery_cancel_wait` passed) with a critical alert. A stop-loss
//! whose order is still working is resumed; one that was waiting for a cancel confirmation and
//! whose order is gone continues to its market order; one whose order vanished otherwise fails
//! with a critical alert.

use crate::alert::Severity;
use crate::book::ExposureKey;
use crate::engine::{Engine, berr, watched_groups};
use crate::error::ExecError;
use crate::gate::TradingState;
use crate::group::{GroupPhase, LegState};
use crate::intent::Purpose;
use crate::journal::JournalRecord;
use crate::stop::{StopAction, StopState};
use std::collections::{BTreeMap, BTreeSet};
use tradeguard_model::{EventStream, Execution, Instrument, OpenOrderKind, OrderId};

impl Engine {
    /// Runs recovery and returns the broker event stream (subscribed before connecting).
    pub(crate) async fn recover(&mut self) -> Result<EventStream, ExecError> {
        let st = self.journal.load().await?;
        let events = self.broker.events();
        self.broker.connect().await?;
        let positions = self.broker.positions().await?;
        let open = self.broker.open_orders().await?;
        match self.broker.account().await {
            Ok(a) => {
                self.available_funds = Some(a.net_liquidation);
                self.account = Some(a.account);
            }
            Err(e) => tracing::warn!(code = e.code(), "no account values at start-up: {e}"),
        }
        for p in &positions {
            self.book.set(&p.instrument, p.qty);
            self.account.get_or_insert_with(|| p.account.clone());
        }
        let watch: Vec<Instrument> = self
            .cfg
            .watch_symbols
            .iter()
            .map(|s| Instrument::stock(s))
            .collect();
        if !watch.is_empty()
            && let Err(e) = self.broker.subscribe_quotes(&watch).await
        {
            tracing::warn!(code = e.code(), "quote subscription failed: {e}");
        }
        self.highest_order = st.highest_order_id;
        self.broken = st.broken.clone();
        self.forced_unwind = st.forced_unwind.clone();
        for a in &self.forced_unwind {
            tracing::warn!(account = %a, "forced unwind re-applied from the journal");
        }
        if let Some(s) = st.trading_state {
            self.state = s;
            if s != TradingState::Active {
                tracing::warn!(state = ?s, "trading state re-applied from the journal");
            }
            self.state_tx.send_replace(crate::gate::TradingStatus {
                state: s,
                why: "set before the restart (the audit log says by what)".to_owned(),
                since: None,
            });
        }
        self.next_group = st.groups.keys().next_back().map_or(1, |g| g.0 + 1);
        self.next_stop = st.stops.keys().next_back().map_or(1, |s| s + 1);
        let open_ids: BTreeSet<OrderId> = open
            .iter()
            .map(|o| match &o.order {
                OpenOrderKind::Single(r) => r.id,
                OpenOrderKind::Combo(c) => c.id,
            })
            .collect();
        let since = st
            .groups
            .values()
            .filter(|g| !g.phase.is_terminal())
            .map(|g| g.created)
            .chain(
                st.stops
                    .values()
                    .filter(|s| !s.is_terminal())
                    .map(|_| tradeguard_model::Timestamp(0)),
            )
            .min();
        let execs: Vec<Execution> = match since {
            Some(t) => self.broker.executions_since(t).await?,
            None => Vec::new(),
        };
        for e in &execs {
            // Already contained in the position snapshot: never apply them again.
            self.mark_seen(e);
        }
        // Ids the broker reports in use (other clients, manual orders) are never handed out
        // either, even by a restarted gateway that counts from a lower id again.
        let seen = open_ids
            .iter()
            .copied()
            .chain(execs.iter().filter_map(|e| e.order_id))
            .max();
        self.highest_order = self.highest_order.max(seen);
        let filled_of = |oid: OrderId, inst: &Instrument| -> i64 {
            execs
                .iter()
                .filter(|e| e.order_id == Some(oid) && &e.instrument == inst)
                .map(|e| e.qty)
                .sum()
        };
        let now = self.clock.now();
        let mut summary = Vec::new();
        for (gid, mut g) in st.groups.clone() {
            if g.phase.is_terminal() {
                for oid in g.legs.iter().filter_map(|l| l.order_id) {
                    self.own_group(oid, gid);
                }
                self.history.insert(gid, g);
                continue;
            }
            let mut cancel = BTreeSet::new();
            for l in g.legs.iter_mut() {
                let Some(oid) = l.order_id else {
                    if l.state == LegState::Pending {
                        l.state = LegState::Cancelled;
                        l.reason = Some("not sent before the restart".into());
                    }
                    continue;
                };
                if l.state.is_terminal() {
                    continue;
                }
                let f = filled_of(oid, &l.intent.instrument);
                l.exec_filled = l.exec_filled.max(f.min(l.intent.qty));
                if open_ids.contains(&oid) {
                    cancel.insert(oid);
                    if l.filled() > 0 {
                        l.state = LegState::PartiallyFilled;
                    }
                } else if l.filled() >= l.intent.qty {
                    l.state = LegState::Filled;
                } else {
                    l.state = LegState::Cancelled;
                    l.reason = Some("order gone at the broker after the restart".into());
                }
            }
            g.phase = GroupPhase::Interrupted;
            g.updated = now;
            g.reason = Some("interrupted by a restart; not resumed".into());
            let legs: Vec<String> = g
                .legs
                .iter()
                .map(|l| {
                    format!(
                        "{} {:?} {}/{}",
                        l.intent.instrument.id(),
                        l.state,
                        l.filled(),
                        l.intent.qty
                    )
                })
                .collect();
            for oid in g.legs.iter().filter_map(|l| l.order_id) {
                self.own_group(oid, gid);
            }
            if g.intent.purpose != Purpose::Hedge {
                // Its fills may have left it naked: the guard's own exposure to hedge.
                self.hedge.watch(gid);
            }
            self.groups.insert(gid, g);
            self.write(JournalRecord::Group(self.groups[&gid].clone()))
                .await?;
            for oid in cancel {
                self.gate.count_messages(1, now);
                match self.broker.cancel(oid).await {
                    Ok(()) => {
                        self.recovery_cancels.insert(oid);
                    }
                    Err(e) => tracing::warn!(order = %oid, "recovery cancel failed: {}", berr(&e)),
                }
            }
            summary.push(format!("group {gid}: {}", legs.join(", ")));
            self.raise(
                Severity::Warning,
                "group.interrupted",
                format!("group {gid} was unfinished at start-up; working orders cancelled, legs per broker: {}", legs.join(", ")),
                Some(gid),
                None,
            )
            .await;
        }
        self.recover_stops(&st.stops, &open_ids, &execs).await?;
        self.audit(
            "recovered",
            "recovery.done",
            format!(
                "{} position(s), {} open order(s) at the broker; {} group(s) settled{}",
                positions.len(),
                open.len(),
                summary.len(),
                if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {}", summary.join("; "))
                }
            ),
            None,
            None,
        )
        .await?;
        if !self.recovery_cancels.is_empty() {
            self.recovery_deadline = Some(now.plus(self.cfg.recovery_cancel_wait));
        }
        let gs = watched_groups(&self.hedge, &self.groups, &self.history);
        let own: BTreeMap<ExposureKey, i64> = self.hedge.unmatched(&self.book, &gs);
        let outside = self.hedge.outside_at_startup(&self.book, &gs);
        if !own.is_empty() {
            let action = if self.cfg.hedge_enabled {
                self.hedge.arm_at(now);
                "emergency hedge armed for exactly that quantity"
            } else {
                "hedging is disabled: close them by hand"
            };
            self.raise(
                Severity::Critical,
                "exposure.unhedged_at_startup",
                format!(
                    "naked shorts left by the guard's own orders that a restart interrupted: {}; {action}",
                    exposure_list(&own)
                ),
                None,
                None,
            )
            .await;
        }
        if !outside.is_empty() {
            self.raise(
                Severity::Warning,
                "exposure.naked_at_startup",
                format!(
                    "naked shorts held at start-up that the guard did not open: {}; the guard \
                     does not trade them (cover or close them yourself, or write a rule)",
                    exposure_list(&outside)
                ),
                None,
                None,
            )
            .await;
        }
        Ok(events)
    }

    fn mark_seen(&mut self, e: &Execution) {
        self.seen_exec(e.exec_id.clone());
    }

    async fn recover_stops(
        &mut self,
        stops: &BTreeMap<u64, crate::stop::StopLoss>,
        open_ids: &BTreeSet<OrderId>,
        execs: &[Execution],
    ) -> Result<(), ExecError> {
        let filled = |oid: OrderId| -> i64 {
            execs
                .iter()
                .filter(|e| e.order_id == Some(oid))
                .map(|e| e.qty)
                .sum()
        };
        for (id, s) in stops {
            let mut s = s.clone();
            self.own_stop(s.limit_order, *id);
            if let Some(m) = s.market_order {
                self.own_stop(m, *id);
            }
            if s.is_terminal() {
                self.stops.insert(*id, s);
                continue;
            }
            s.limit_filled = s.limit_filled.max(filled(s.limit_order).min(s.spec.qty));
            if let Some(m) = s.market_order {
                s.market_filled = s.market_filled.max(filled(m));
            }
            let mut actions = Vec::new();
            if s.remaining() == 0 {
                s.state = StopState::Done;
            } else {
                match s.state {
                    StopState::Working if open_ids.contains(&s.limit_order) => {
                        if let Err(e) = self
                            .broker
                            .subscribe_quotes(std::slice::from_ref(&s.spec.instrument))
                            .await
                        {
                            tracing::warn!("stop {id}: quote subscription failed: {}", berr(&e));
                        }
                    }
                    // Superseded by a close the restart interrupted: the stop-limit is still
                    // there, so it protects the position again.
                    StopState::CancelPending
                        if s.superseded && open_ids.contains(&s.limit_order) =>
                    {
                        s.state = StopState::Working;
                        s.superseded = false;
                        s.deadline = s
                            .triggered_at
                            .map(|_| self.clock.now().plus(self.cfg.stop_timeout));
                    }
                    StopState::CancelPending if open_ids.contains(&s.limit_order) => {
                        s.deadline = Some(self.clock.now().plus(crate::stop::CANCEL_UNANSWERED));
                        actions.push(StopAction::Cancel(s.limit_order));
                    }
                    StopState::CancelPending if !s.superseded => {
                        // The cancel completed while we were down: continue to the market order.
                        s.state = StopState::MarketSent;
                        actions.push(StopAction::SendMarket { qty: s.remaining() });
                    }
                    StopState::MarketSent
                        if s.market_order.is_some_and(|m| open_ids.contains(&m)) => {}
                    _ => {
                        s.state = StopState::Failed;
                        actions.push(StopAction::Alert {
                            code: "stop.lost_in_restart",
                            critical: true,
                            message: format!(
                                "stop {id} on {}: its order is gone after the restart; {} not protected",
                                s.spec.instrument.id(),
                                s.remaining()
                            ),
                        });
                    }
                }
            }
            self.stops.insert(*id, s);
            self.run_stop_actions_pub(*id, actions).await;
        }
        Ok(())
    }
}

/// `SPY Put ×2, QQQ Call ×1`.
fn exposure_list(m: &BTreeMap<ExposureKey, i64>) -> String {
    m.iter()
        .map(|(k, n)| format!("{} {:?} ×{n}", k.underlying, k.right))
        .collect::<Vec<_>>()
        .join(", ")
}
