//! The guard's strategy book and its link to the assignment guard.
//!
//! - [`restore_broken`]: at start-up the Broken strategies of the journal's emergency closes go
//!   into the book (managed, with every leg) before anything is recognized, and the gate locks
//!   their instruments before the guard starts; one the book refuses keeps its instruments
//!   locked anyway ([`LinkState::unbooked`]) and is alerted;
//! - [`refresh`]: the book is re-synced from the live positions whenever the set of positions
//!   (account, instrument, quantity) changes — the enforcer calls it before every evaluation;
//! - [`spots`]: underlying prices from the positions' quotes (pin risk);
//! - the `strategies` task: pushes the book's strategies to the assignment guard when they
//!   change — plus, for [`Core::retain_vanished`], the strategies that just vanished from the
//!   book, because an assignment removes the very leg the strategy was recognized from before
//!   the guard has correlated it — and mirrors the assignment guard's locks (Broken) and
//!   completed emergency closes (Closed) into the book, and gives the coordinator the
//!   instruments of the book's Broken strategies ([`broken_legs`]) so its gate locks them for
//!   every normal order, and the stock each Broken strategy's assignments delivered
//!   ([`deliveries`]) so the strategy shows the account's real exposure;
//! - the `assignment` task: forwards the assignment guard's alerts to the guard's alerter
//!   (subscribers + the one notification per Critical alert);
//! - [`CriticalViaAlerts`]: the notifier the assignment guard gets, so its Critical alerts are
//!   notified once, by the alerter, not a second time by the assignment guard itself.
//!
//! [`Core::retain_vanished`]: crate::enforce::core::Core

use crate::assignment::{
    AssignmentRecord, ClosePhase, CloseSnapshot, EmergencyClose, GuardEvent, Notification, Notifier,
};
use crate::enforce::config::EnforceConfig;
use crate::enforce::core::{GuardState, SharedCore};
use crate::enforce::error::EnforceError;
use crate::enforce::supervisor::{Heartbeat, TaskResult};
use crate::live::{LiveBook, PositionView};
use crate::strategies::{StrategyBook, StrategyView};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tradeguard_model::{
    Instrument, InstrumentId, Leg, LegRole, Price, Strategy, StrategyId, StrategyState, Timestamp,
};

/// What the strategy task remembers between pushes.
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    /// The book's strategies at the last push.
    pub book: Vec<Strategy>,
    /// Strategies gone from the book, still given to the assignment guard until the time.
    pub retained: BTreeMap<StrategyId, (Strategy, Timestamp)>,
    /// The list last given to the assignment guard.
    pub pushed: Vec<Strategy>,
    /// The Broken strategies' instruments last given to the coordinator (`None`: never).
    pub locked: Option<BTreeMap<InstrumentId, StrategyId>>,
    /// Instruments of Broken strategies the book could not take (bad legs, id clash): still
    /// locked for normal orders until the assignment guard reports the strategy Closed.
    pub unbooked: BTreeMap<InstrumentId, StrategyId>,
}

/// A Broken strategy of the journal the book could not take at start-up or from the
/// assignment guard: its instruments stay locked through [`LinkState::unbooked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unbooked {
    /// The strategy.
    pub strategy: StrategyId,
    /// Stable code of the reason (`strategies.bad_legs`, `guard.close_without_strategy`...).
    pub code: &'static str,
    /// Why, for a person.
    pub reason: String,
    /// The instruments kept locked.
    pub instruments: Vec<InstrumentId>,
}

/// Start-up: the Broken strategies of the journal's emergency closes go into the book as
/// managed Broken strategies with all their legs, so the positions they still hold are claimed
/// by them (not recognized again as Open strategies) and [`broken_legs`] covers them. A close
/// with no strategy, or one the book refuses, keeps the instruments it names (legs and planned
/// orders) locked through [`LinkState::unbooked`] and is returned for a critical alert — never
/// dropped. Closed strategies (completed closes) are not loaded.
pub(crate) fn restore_broken<'a>(
    book: &mut StrategyBook,
    link: &mut LinkState,
    closes: impl IntoIterator<Item = &'a CloseSnapshot>,
) -> Vec<Unbooked> {
    let mut out = Vec::new();
    for snap in closes {
        let c = &snap.close;
        let unfinished = matches!(c.phase, ClosePhase::Armed | ClosePhase::Working);
        let (code, reason, legs) = match &snap.strategy {
            Some(s) if s.state == StrategyState::Broken => match book.adopt(s.clone()) {
                Ok(()) => continue,
                Err(e) => (
                    e.code(),
                    e.to_string(),
                    s.legs.iter().map(|l| l.instrument.id()).collect(),
                ),
            },
            Some(_) => continue,
            None if unfinished => (
                "guard.close_without_strategy",
                "the journaled emergency close carries no strategy".to_owned(),
                Vec::new(),
            ),
            None => continue,
        };
        let mut instruments: Vec<InstrumentId> = legs;
        instruments.extend(c.orders.iter().map(|o| o.planned.instrument.id()));
        instruments.sort();
        instruments.dedup();
        for i in &instruments {
            link.unbooked.insert(i.clone(), c.strategy);
        }
        tracing::error!(code, strategy = %c.strategy, "Broken strategy not in the book: {reason}");
        out.push(Unbooked {
            strategy: c.strategy,
            code,
            reason,
            instruments,
        });
    }
    out
}

/// What the coordinator's gate locks: every leg of the book's Broken strategies
/// ([`broken_legs`]), the instruments of Broken strategies the book could not take, and every
/// instrument an unfinished emergency close of the assignment guard trades (the delivered
/// stock included): the guard owns them until its close ends, so no rule or normal order can
/// race it.
pub(crate) fn locked_legs<'a>(
    book: &StrategyBook,
    link: &LinkState,
    closes: impl IntoIterator<Item = &'a EmergencyClose>,
) -> BTreeMap<InstrumentId, StrategyId> {
    let mut out = link.unbooked.clone();
    out.extend(broken_legs(book));
    for c in closes {
        if matches!(c.phase, ClosePhase::Armed | ClosePhase::Working) {
            for o in &c.orders {
                out.entry(o.planned.instrument.id()).or_insert(c.strategy);
            }
        }
    }
    out
}

/// The strategies the rules may evaluate now, out of `views` (the book's, this evaluation):
/// never a Broken or Closed one, never one holding an instrument the assignment guard owns
/// ([`locked_legs`]), and never one that appeared or changed its legs less than `settle` ago
/// (after start): an assignment's option update reaches the book before its stock update, and
/// the book briefly regroups the leftovers into strategies nobody holds; the hold outlasts the
/// assignment detector's pairing window, by which time the assigned strategy is Broken and
/// owns its legs again. Strategies present at the first evaluation are eligible at once.
pub(crate) fn for_rules(
    st: &mut GuardState,
    views: Vec<StrategyView>,
    now: Timestamp,
    settle: Duration,
) -> Vec<StrategyView> {
    let first = !st.strategies_seen_init;
    st.strategies_seen_init = true;
    let mut seen = std::mem::take(&mut st.strategies_seen);
    for v in &views {
        let same = |sig: &[(InstrumentId, i64)]| {
            sig.len() == v.legs.len()
                && sig
                    .iter()
                    .zip(&v.legs)
                    .all(|((i, q), l)| *q == l.qty && *i == l.instrument.id())
        };
        let entry = match seen.remove(&v.id) {
            Some(e) if same(&e.0) => e,
            _ => (
                v.legs.iter().map(|l| (l.instrument.id(), l.qty)).collect(),
                (!first).then_some(now),
            ),
        };
        st.strategies_seen.insert(v.id, entry);
    }
    let locked = st.link.locked.as_ref();
    let seen = &st.strategies_seen;
    views
        .into_iter()
        .filter(|v| !matches!(v.state, StrategyState::Broken | StrategyState::Closed))
        .filter(|v| {
            !v.legs
                .iter()
                .any(|l| locked.is_some_and(|m| m.contains_key(&l.instrument.id())))
        })
        .filter(|v| {
            seen.get(&v.id)
                .and_then(|(_, since)| *since)
                .is_none_or(|t| now.duration_since(t) >= settle)
        })
        .collect()
}

/// Instrument → Broken strategy holding it, over every leg of every Broken strategy in the book
/// (legs already at zero included: the assignment emptied them, the close plan still uses them).
pub(crate) fn broken_legs(book: &StrategyBook) -> BTreeMap<InstrumentId, StrategyId> {
    book.strategies()
        .filter(|s| s.state == StrategyState::Broken)
        .flat_map(|s| s.legs.iter().map(|l| (l.instrument.id(), s.id)))
        .collect()
}

/// Re-syncs the strategy book when the positions changed; `true` when it did.
pub(crate) fn refresh(st: &mut GuardState, positions: &[PositionView]) -> bool {
    let same = st.strategy_sig.len() == positions.len()
        && st
            .strategy_sig
            .iter()
            .zip(positions)
            .all(|((a, i, q), p)| *q == p.qty && a == &p.account && *i == p.instrument.id());
    if same {
        return false;
    }
    st.strategy_sig = positions
        .iter()
        .map(|p| (p.account.clone(), p.instrument.id(), p.qty))
        .collect();
    st.strategies.sync_views(positions);
    true
}

/// Underlying prices by symbol: stock quotes (mid) and the underlying price option quotes carry.
pub(crate) fn spots(book: &LiveBook, positions: &[PositionView]) -> HashMap<String, Price> {
    let mut out = HashMap::new();
    for p in positions {
        let Some(q) = book.quote(&p.instrument.id()) else {
            continue;
        };
        match &p.instrument {
            Instrument::Stock { symbol } => {
                if let Some(mid) = q.mid().filter(|_| q.bid.is_some_and(Price::is_positive)) {
                    out.insert(symbol.clone(), mid);
                }
            }
            Instrument::Option(o) => {
                if let Some(u) = q.underlying_price {
                    out.entry(o.underlying.clone()).or_insert(u);
                }
            }
            _ => {}
        }
    }
    out
}

/// The list for the assignment guard: the book's strategies plus the recently vanished ones;
/// `None` when it is the list already pushed.
pub(crate) fn next_push(
    link: &mut LinkState,
    book: &StrategyBook,
    now: Timestamp,
    retain: Duration,
) -> Option<Vec<Strategy>> {
    let current: Vec<Strategy> = book.strategies().cloned().collect();
    for s in &link.book {
        if !current.iter().any(|c| c.id == s.id) {
            link.retained
                .entry(s.id)
                .or_insert_with(|| (s.clone(), now.plus(retain)));
        }
    }
    link.retained
        .retain(|id, (_, until)| now < *until && !current.iter().any(|c| c.id == *id));
    let mut list = current.clone();
    list.extend(link.retained.values().map(|(s, _)| s.clone()));
    link.book = current;
    if list == link.pushed {
        return None;
    }
    link.pushed.clone_from(&list);
    Some(list)
}

/// Applies the assignment guard's locks and completed closes to the book. A Broken strategy
/// the book refuses keeps its instruments locked through [`LinkState::unbooked`] until the
/// assignment guard reports it Closed.
pub(crate) fn mirror(book: &mut StrategyBook, link: &mut LinkState, guarded: &[Strategy]) {
    for s in guarded {
        if s.state == StrategyState::Closed {
            link.unbooked.retain(|_, id| *id != s.id);
        }
        let mine = book.get(s.id).map(|b| b.state);
        let r = match (s.state, mine) {
            (StrategyState::Broken, None) => book.adopt(s.clone()).inspect_err(|_| {
                for l in &s.legs {
                    link.unbooked.insert(l.instrument.id(), s.id);
                }
            }),
            (StrategyState::Broken, Some(st)) if st != StrategyState::Broken => {
                match &s.broken_reason {
                    Some(reason) => book.mark_broken(s.id, reason.clone()),
                    None => Ok(()),
                }
            }
            (StrategyState::Closed, Some(StrategyState::Broken | StrategyState::Closing)) => {
                if mine == Some(StrategyState::Broken) {
                    book.begin_close(s.id)
                } else {
                    Ok(())
                }
                .and_then(|()| book.mark_closed(s.id))
            }
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(code = e.code(), strategy = %s.id, "strategy book: {e}");
        }
    }
}

/// Gives each Broken strategy of the book the stock its assignments delivered (signed shares
/// per underlying, at the strike; the average strike when several deliveries add up), from
/// the assignment guard's records.
pub(crate) fn deliveries(book: &mut StrategyBook, records: &[AssignmentRecord]) {
    let mut by: BTreeMap<StrategyId, Vec<Leg>> = BTreeMap::new();
    for r in records {
        let Some(id) = r.strategy else { continue };
        if r.stock_delivered == 0 {
            continue;
        }
        let stock = Instrument::stock(r.option.underlying());
        let px = r.stock_price.unwrap_or(Price::ZERO);
        let legs = by.entry(id).or_default();
        match legs.iter_mut().find(|l| l.instrument == stock) {
            Some(l) => {
                let (a, b) = (
                    l.qty.unsigned_abs() as f64,
                    r.stock_delivered.unsigned_abs() as f64,
                );
                let avg = (l.avg_price.to_f64() * a + px.to_f64() * b) / (a + b);
                l.avg_price = Price::from_f64(avg).unwrap_or(px);
                l.qty = l.qty.saturating_add(r.stock_delivered);
            }
            None => legs.push(Leg {
                instrument: stock,
                qty: r.stock_delivered,
                role: LegRole::Stock,
                avg_price: px,
            }),
        }
    }
    let broken: Vec<StrategyId> = book
        .strategies()
        .filter(|s| s.state == StrategyState::Broken)
        .map(|s| s.id)
        .collect();
    for id in broken {
        book.set_delivered(id, by.remove(&id).unwrap_or_default());
    }
}

/// How often the strategies task runs when nothing changes.
pub(crate) const STRATEGIES_BEAT: Duration = Duration::from_secs(1);

/// Keeps the book and the assignment guard's strategies in step (see the module docs).
pub(crate) async fn run_strategies(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let mut guarded = core.assignment().watch();
    let mut tick = tokio::time::interval(STRATEGIES_BEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (list, locked) = {
            let status = guarded.borrow_and_update().clone();
            let g = &status.strategies;
            let now = core.now();
            let mut st = core.lock();
            let st = &mut *st;
            mirror(&mut st.strategies, &mut st.link, g);
            deliveries(&mut st.strategies, &status.records);
            let locked = locked_legs(&st.strategies, &st.link, &status.closes);
            let locked = (st.link.locked.as_ref() != Some(&locked)).then_some(locked);
            let list = next_push(&mut st.link, &st.strategies, now, core.retain_vanished);
            (list, locked)
        };
        if let Some(locked) = locked {
            core.coord.set_broken_legs(locked.clone()).await?;
            core.lock().link.locked = Some(locked);
        }
        if let Some(list) = list {
            core.assignment().set_strategies(list).await?;
        }
        hb.beat();
        // Biased (deterministic under simulation): rare changes first, the periodic tick last.
        tokio::select! {
            biased;
            r = guarded.changed() => r.map_err(|_| {
                EnforceError::Assignment(crate::assignment::AssignmentError::Stopped)
            })?,
            () = core.strategies_changed.notified() => {}
            _ = tick.tick() => {}
        }
    }
}

/// The "assignment" task's watchdog budget. Its heartbeat is the assignment guard's own loop
/// beat (at least every [`crate::assignment::LOOP_BEAT`]), so the budget is that of a task
/// beating every `LOOP_BEAT`: a guard whose loop has not run for longer is hung.
pub(crate) fn assignment_budget(cfg: &EnforceConfig) -> Duration {
    cfg.watchdog_budget(crate::assignment::LOOP_BEAT)
}

/// The supervised "assignment" task: forwards the assignment guard's alerts to the guard's
/// subscribers (journaled already) and watches the guard itself. Its heartbeat is the
/// assignment guard's own (the guard's loop beats at least every second): a stuck guard shows
/// stale on the Guard card, and the watchdog restarts this task once it has been silent for
/// [`assignment_budget`]. A guard whose task ended (a panic) makes this task fail, so the
/// supervisor raises a Critical alert and runs it again; the new run first starts a new
/// assignment guard from the journal (locks, emergency closes resumed, positions compared) in
/// place of one that ended or whose loop has not run for the watchdog's budget (hung: it is
/// aborted first).
pub(crate) async fn run_assignment_alerts(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let first = core
        .assignment_first_rx
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let mut rx = match first {
        Some(rx) => rx,
        None => {
            let guard = core.assignment();
            let silent = guard.since_last_beat();
            if guard.is_finished() {
                restart_assignment(&core, "had stopped").await?
            } else if silent > assignment_budget(&core.cfg) {
                guard.abort();
                let why = format!(
                    "was hung (its loop had not run for {:.1} s) and was aborted",
                    silent.as_secs_f64()
                );
                restart_assignment(&core, &why).await?
            } else {
                guard.subscribe()
            }
        }
    };
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    let stale_after = crate::assignment::LOOP_BEAT.saturating_mul(5);
    loop {
        let guard = core.assignment();
        if guard.is_finished() {
            return Err(EnforceError::Assignment(
                crate::assignment::AssignmentError::Stopped,
            ));
        }
        // Tokio time, as the guard's loop runs: a 10x simulator clock would make it look stale.
        if guard.since_last_beat() <= stale_after {
            hb.beat();
        }
        // Biased (deterministic under simulation).
        let r = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = idle.tick() => continue,
        };
        match r {
            Ok(GuardEvent::Alert(a)) => core.alerter.forward(a),
            Ok(GuardEvent::Banner(_)) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                core.alerter
                    .raise(
                        crate::alert::Severity::Critical,
                        "guard.assignment_alerts_lagged",
                        format!("{n} assignment-guard alerts not forwarded (they are in the journal and its status): check the assignment banners"),
                    )
                    .await;
            }
            Err(broadcast::error::RecvError::Closed) => {
                return Err(EnforceError::Assignment(
                    crate::assignment::AssignmentError::Stopped,
                ));
            }
        }
    }
}

/// Starts a new assignment guard in place of one whose task ended, from the journal (the
/// Broken locks, the emergency closes where they stopped) and the broker's positions now;
/// returns its alert stream (subscribed before its start-up checks).
async fn restart_assignment(
    core: &SharedCore,
    why: &str,
) -> Result<broadcast::Receiver<GuardEvent>, EnforceError> {
    let strategies = core.lock().link.pushed.clone();
    let mut ag = crate::assignment::AssignmentGuard::new(crate::assignment::GuardDeps {
        coordinator: core.coord.clone(),
        broker: core.broker.clone(),
        journal: core.journal.clone(),
        clock: core.clock.clone(),
        hours: core.hours.clone(),
        notifier: core.assignment_deps.notifier.clone(),
        strategies,
        config: core.assignment_deps.config.clone(),
    })
    .await?;
    let rx = ag.subscribe();
    let events = core.broker.events();
    ag.lock_broken().await?;
    ag.resume_closes().await?;
    ag.check_snapshot().await?;
    let handle = ag.spawn(events);
    *core
        .assignment
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = handle;
    core.alerter
        .raise(
            crate::alert::Severity::Critical,
            "assignment.restarted",
            format!(
                "the assignment guard {why}; a new one was started from its journal: \
                 emergency closes resumed, positions compared with the broker's; check the banners"
            ),
        )
        .await;
    Ok(rx)
}

/// The assignment guard's notifier inside a [`crate::enforce::Guard`]: Critical notifications
/// are dropped because the guard's alerter notifies every Critical alert (the assignment
/// guard's included) exactly once; the others (an emergency close completed) go through.
pub struct CriticalViaAlerts(pub Arc<dyn Notifier>);

impl Notifier for CriticalViaAlerts {
    fn notify(&self, n: &Notification) {
        if n.severity != crate::alert::Severity::Critical {
            self.0.notify(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::EmergencyClose;
    use crate::assignment::stubs::reference_condor;
    use tradeguard_model::{BrokenReason, stubs};

    fn snap(strategy: Option<Strategy>, phase: ClosePhase) -> CloseSnapshot {
        CloseSnapshot {
            close: EmergencyClose {
                strategy: StrategyId(5),
                account: stubs::account(),
                record: 1,
                orders: Vec::new(),
                kept: Vec::new(),
                release_at: Timestamp(0),
                phase,
                intended: false,
                expected: Vec::new(),
                verifying_since: None,
                how: String::new(),
            },
            strategy,
        }
    }

    fn broken() -> Strategy {
        let expiry = chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap();
        let mut s = reference_condor(5, stubs::account(), expiry);
        let i = s.legs[1].instrument.id();
        s.mark_broken(BrokenReason::Assigned { instrument: i })
            .unwrap();
        s
    }

    #[test]
    fn broken_strategies_are_booked_and_closed_ones_are_not() {
        let mut book = StrategyBook::new();
        let mut link = LinkState::default();
        let s = broken();
        let mut closed = s.clone();
        closed.id = StrategyId(6);
        closed.begin_close().unwrap();
        closed.mark_closed().unwrap();
        let snaps = [
            snap(Some(s.clone()), ClosePhase::Armed),
            snap(Some(closed), ClosePhase::Completed),
        ];
        assert!(restore_broken(&mut book, &mut link, &snaps).is_empty());
        assert_eq!(book.get(s.id), Some(&s));
        assert!(book.get(StrategyId(6)).is_none(), "Closed is not loaded");
        let locked = locked_legs(&book, &link, []);
        assert_eq!(locked.len(), 4);
        assert!(locked.values().all(|id| *id == s.id));
    }

    #[test]
    fn a_broken_strategy_the_book_refuses_keeps_its_instruments_locked() {
        let mut book = StrategyBook::new();
        let mut link = LinkState::default();
        // Bad data: a leg with quantity zero (the book refuses it).
        let mut s = broken();
        s.legs[0].qty = 0;
        let out = restore_broken(
            &mut book,
            &mut link,
            &[snap(Some(s.clone()), ClosePhase::Working)],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].strategy, out[0].code),
            (s.id, "strategies.bad_legs")
        );
        assert!(book.get(s.id).is_none());
        let locked = locked_legs(&book, &link, []);
        for l in &s.legs {
            assert_eq!(locked.get(&l.instrument.id()), Some(&s.id));
        }
        // A close without its strategy is reported too (its planned orders stay locked).
        let out = restore_broken(&mut book, &mut link, &[snap(None, ClosePhase::Armed)]);
        assert_eq!(out[0].code, "guard.close_without_strategy");
        // Once the assignment guard reports the strategy Closed the lock goes.
        let mut closed = broken();
        closed.begin_close().unwrap();
        closed.mark_closed().unwrap();
        mirror(&mut book, &mut link, &[closed]);
        assert!(locked_legs(&book, &link, []).is_empty());
    }
}
