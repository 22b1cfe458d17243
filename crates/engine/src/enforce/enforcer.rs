//! The enforcer task: on every relevant broker event (coalesced) and at least every
//! `eval_interval`, evaluates the rules on the live book, alerts and audits each new breach (one
//! that cleared is new again only after staying clear for `realert_after`), queues flatten
//! closes (or, in dry-run, audits the orders it would send), queues the
//! emergency closes of accounts in forced unwind, and drives every close job (see
//! [`crate::enforce::closer`]) through the coordinator. Before each evaluation the strategy
//! book is re-synced from the positions when they changed (the rules see its views).

use crate::alert::Severity;
use crate::enforce::closer::{AfterFailure, CloseState, Exit};
use crate::enforce::core::{Core, SharedCore};
use crate::enforce::evaluator::{CloseLeg, Decision, EvalInput, RuleAction};
use crate::enforce::strategy_link;
use crate::enforce::supervisor::{Heartbeat, TaskResult};
use crate::gate::TradingState;
use crate::group::{Group, GroupPhase};
use crate::intent::Purpose;
use crate::live::{MarkStatus, PositionView};
use std::collections::{BTreeMap, BTreeSet};
use tradeguard_model::{AccountId, ConnectionState, InstrumentId, Position, Timestamp};

pub(crate) async fn run(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let mut tick = tokio::time::interval(core.cfg.eval_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Biased (deterministic under simulation); the wake-up is rare, the tick periodic.
        tokio::select! {
            biased;
            () = core.wake_enforcer.notified() => {}
            _ = tick.tick() => {}
        }
        enforce_once(&core).await?;
        hb.beat();
    }
}

/// One evaluation plus one pass over the close jobs.
pub(crate) async fn enforce_once(core: &SharedCore) -> TaskResult {
    let now = core.now();
    let stale = core.cfg.quote_stale_after;
    let (
        all_positions,
        positions,
        accounts,
        transitions,
        unwinding,
        strategies,
        spots,
        changed,
        (attached, exits_ended),
    ) = {
        let mut st = core.lock();
        let mut positions = st.book.positions(now, stale);
        let changed = strategy_link::refresh(&mut st, &positions);
        let views = st.strategies.views(&positions);
        let attached = crate::entry::attached_rules(&mut st.entry, &views, now);
        let strategies = strategy_link::for_rules(&mut st, views, now, core.cfg.strategy_settle);
        // Positions the assignment guard owns (its close trades them) are not the rules' either;
        // the whole book is kept aside only while it owns some (a forced unwind closes all).
        let all_positions = match st.link.locked.as_ref().filter(|m| !m.is_empty()) {
            Some(owned) => {
                let all = positions.clone();
                positions.retain(|p| !owned.contains_key(&p.instrument.id()));
                Some(all)
            }
            None => None,
        };
        let spots = strategy_link::spots(&st.book, &positions);
        (
            all_positions,
            positions,
            st.book.accounts().cloned().collect::<Vec<_>>(),
            st.book.mark_transitions(now, stale, core.cfg.mark_grace),
            st.forced_unwind.clone(),
            strategies,
            spots,
            changed,
            attached,
        )
    };
    if changed {
        core.strategies_changed.notify_one();
    }
    for a in exits_ended {
        tracing::info!(entry = %a.entry, why = ?a.why_ended, "attached exits ended");
        if let Err(e) = core
            .journal
            .append(crate::journal::JournalRecord::AttachedExit(a))
            .await
        {
            tracing::warn!(
                code = e.code(),
                "the end of attached exits not journaled: {e}"
            );
        }
    }
    futures_past_roll(core, &positions, now).await;
    for t in transitions {
        match t.to {
            MarkStatus::Fresh => {
                tracing::info!(account = %t.account, instrument = %t.instrument, "mark fresh again")
            }
            s => {
                tracing::warn!(account = %t.account, instrument = %t.instrument, status = ?s, "position has no usable mark: rules see it without a price")
            }
        }
    }
    let (decisions, rules, notes, durable, good) = {
        let mut ev = core
            .evaluator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let input = EvalInput {
            now,
            positions: &positions,
            accounts: &accounts,
            strategies: &strategies,
            spots: &spots,
            attached: &attached,
        };
        let d = ev.evaluate(&input);
        (
            d,
            ev.rule_count(),
            ev.drain_alerts(),
            ev.durable_state(),
            ev.good_config(),
        )
    };
    if let Some(state) = durable {
        persist_rule_state(core, state, now).await;
    }
    if let Some(source) = good {
        persist_risk_config(core, &source, now).await;
    }
    for a in notes {
        core.alerter.raise(a.severity, &a.code, a.message).await;
    }
    let mut keys = BTreeSet::new();
    let mut fresh = Vec::new();
    {
        let mut st = core.lock();
        st.evaluations += 1;
        st.rule_evaluations += rules as u64;
        let mut no_data = BTreeSet::new();
        for d in decisions {
            let key = d.key();
            if d.is_no_data() {
                // "Cannot evaluate" waits out the mark grace before it is news (see config).
                let since = *st.no_data_since.entry(key.clone()).or_insert(now);
                no_data.insert(key.clone());
                if !st.active.contains_key(&key) && now.duration_since(since) < core.cfg.mark_grace
                {
                    continue;
                }
            }
            let new = !st.active.contains_key(&key);
            keys.insert(key);
            if new {
                st.decisions_fired += 1;
            }
            let dry = d.dry_run || core.cfg.dry_run;
            let mut queued = None;
            if d.action == RuleAction::Flatten && !dry {
                queued = st.closes.add(
                    d.account.clone(),
                    d.strategy,
                    Purpose::Flatten,
                    &d.rule,
                    d.close.clone(),
                    now,
                );
                if let Some(id) = queued.filter(|_| d.hybrid_exit) {
                    st.closes.set_hybrid(id);
                }
                if queued.is_none() {
                    // Still breached while its close is parked: tried again now and then.
                    let instruments: Vec<_> = d.close.iter().map(|l| l.instrument.id()).collect();
                    for job in st.closes.resume_parked_flattens(
                        &d.account,
                        &instruments,
                        now,
                        core.cfg.close_retry_max,
                    ) {
                        tracing::warn!(
                            job,
                            rule = %d.rule,
                            "rule still breached: close {job}, parked as needs-manual, is tried again"
                        );
                    }
                }
            }
            if d.action == RuleAction::Flatten && dry && new {
                st.dry_run_decisions += 1;
            }
            if new || queued.is_some() {
                fresh.push((d, new, dry, queued));
            }
        }
        st.no_data_since.retain(|k, _| no_data.contains(k));
        let realert_after = core.cfg.realert_after;
        st.active
            .retain(|k, seen| keys.contains(k) || now.duration_since(*seen) < realert_after);
        st.active.extend(keys.iter().map(|k| (k.clone(), now)));
        // A forced unwind closes everything, the assignment guard's instruments included (its
        // emergency path is the one Broken legs may use).
        for account in &unwinding {
            let legs: Vec<CloseLeg> = all_positions
                .as_ref()
                .unwrap_or(&positions)
                .iter()
                .filter(|p| &p.account == account)
                .map(|p| CloseLeg {
                    instrument: p.instrument.clone(),
                    qty: p.qty,
                })
                .collect();
            if let Some(id) = st.closes.add(
                account.clone(),
                None,
                Purpose::Emergency,
                "forced_unwind",
                legs,
                now,
            ) {
                tracing::warn!(account = %account, job = id, "forced unwind: emergency close queued");
            }
        }
    }
    for (d, new, dry, queued) in fresh {
        let code = format!("rule.{}", d.rule);
        if new {
            core.alerter
                .raise(d.severity, &code, d.reason.clone())
                .await;
            core.alerter
                .audit(
                    "rule_fired",
                    &code,
                    format!("{} [{}]", d.reason, d.account),
                    None,
                )
                .await;
        }
        if d.action == RuleAction::Flatten && dry && new {
            let legs: Vec<String> = d
                .close
                .iter()
                .map(|l| {
                    format!(
                        "{} {} {}",
                        if l.qty > 0 { "SELL" } else { "BUY" },
                        l.qty.abs(),
                        l.instrument.id()
                    )
                })
                .collect();
            core.alerter
                .audit(
                    "dry_run",
                    &code,
                    if d.hybrid_exit {
                        format!(
                            "dry-run: would send Flatten {} for {} as the hybrid exit (limits at the touch less {} bps for {} s, then market)",
                            legs.join(", "),
                            d.account,
                            core.cfg.hybrid_exit_slippage_bps,
                            core.cfg.hybrid_exit_timeout.as_secs_f64()
                        )
                    } else {
                        format!(
                            "dry-run: would send Flatten {} at market for {}",
                            legs.join(", "),
                            d.account
                        )
                    },
                    Some(Purpose::Flatten),
                )
                .await;
        }
        if let Some(id) = queued {
            core.alerter
                .audit(
                    "flatten_queued",
                    &code,
                    format!("close job {id}: {}", d.reason),
                    Some(Purpose::Flatten),
                )
                .await;
        }
        if d.locks_opening && new {
            lock_opening(core, &d, dry).await;
        }
    }
    drive_closes(core).await
}

/// A fired account loss limit locks opening orders in the guard (the trading state goes to
/// `Reducing`, journaled: it survives a restart); closes and exits still pass the gate. Only a
/// person lifts it. In dry-run the lock is only reported.
async fn lock_opening(core: &Core, d: &Decision, dry: bool) {
    // The rules' reason starts with the rule's id and has the numbers.
    let why = format!("{} ({})", d.reason, d.account);
    if dry {
        core.alerter
            .audit(
                "dry_run",
                "trading.lock",
                format!("dry-run: would lock opening orders ({why})"),
                None,
            )
            .await;
        return;
    }
    match core
        .coord
        .change_trading_state(TradingState::Reducing, why.clone(), true)
        .await
    {
        Ok(true) => {
            core.alerter
                .raise(
                    Severity::Critical,
                    "trading.locked",
                    format!(
                        "Opening orders locked in the guard: {why}. Closes still go. A person \
                         unlocks them (the app's Guard card, or the headless guard started with \
                         --unlock)."
                    ),
                )
                .await;
        }
        // Already locked, or halted (stricter): nothing to loosen.
        Ok(false) => {}
        Err(e) => {
            core.alerter
                .raise(
                    Severity::Critical,
                    "trading.lock_failed",
                    format!(
                        "Could not lock opening orders after {}: {e} ({}); the flatten goes on",
                        d.reason,
                        e.code()
                    ),
                )
                .await;
        }
    }
}

/// A held quarterly equity-index future on or past its roll date is said once (Warning
/// `futures.roll`): the volume has moved to the next quarter and the contract expires soon (it
/// is cash-settled at expiry). Nothing is sent: rolling or closing is the trader's decision.
async fn futures_past_roll(core: &Core, positions: &[PositionView], now: Timestamp) {
    use tradeguard_model::futures;
    let today = core.hours.local(now).date();
    let due: Vec<(InstrumentId, chrono::NaiveDate, chrono::NaiveDate, i64)> = {
        let mut st = core.lock();
        let mut due = Vec::new();
        for p in positions {
            let tradeguard_model::Instrument::Future { symbol, expiry, .. } = &p.instrument else {
                continue;
            };
            let quarterly = futures::spec(symbol).is_some_and(|s| s.third_friday);
            let Some(roll) = futures::roll_date(*expiry).filter(|_| quarterly) else {
                continue;
            };
            if today >= roll && st.roll_alerted.insert(p.instrument.id()) {
                due.push((p.instrument.id(), roll, *expiry, p.qty));
            }
        }
        due
    };
    for (id, roll, expiry, qty) in due {
        core.alerter
            .raise(
                Severity::Warning,
                "futures.roll",
                format!(
                    "{qty:+} {id}: the roll date was {roll} (the next quarter is the front month \
                     now) and it expires {expiry}; roll or close it (nothing is sent for you)"
                ),
            )
            .await;
    }
}

/// The hybrid exit's first stage: each leg a limit order at its touch (the ask to buy back, the
/// bid to sell) less the slippage buffer, rounded away from the market to a tick every venue
/// takes ([`tradeguard_model::Instrument::safe_tick`]), working for
/// `hybrid_exit_timeout`. A leg without its touch sends the whole close at market instead (the
/// exit is never held back for want of a quote).
fn hybrid_limits(
    mut intent: crate::intent::OrderIntent,
    book: &crate::live::LiveBook,
    cfg: &crate::enforce::config::EnforceConfig,
) -> crate::intent::OrderIntent {
    use tradeguard_model::{OrderType, Side};
    let mut limits = Vec::with_capacity(intent.legs.len());
    for l in &intent.legs {
        let q = book.quote(&l.instrument.id());
        let touch = match l.side {
            Side::Buy => q.and_then(|q| q.ask),
            Side::Sell => q.and_then(|q| q.bid),
        };
        let Some(touch) = touch.filter(|p| p.raw() > 0) else {
            tracing::warn!(instrument = %l.instrument.id(), "hybrid exit: no touch to price a limit from; the close goes at market");
            return intent;
        };
        let tick = l.instrument.safe_tick(touch);
        limits.push(crate::stop::limit_price(
            l.side,
            touch,
            cfg.hybrid_exit_slippage_bps,
            tick,
        ));
    }
    for (l, limit) in intent.legs.iter_mut().zip(limits) {
        l.order_type = OrderType::Limit { limit };
    }
    intent.leg_timeout = Some(cfg.hybrid_exit_timeout);
    intent
}

fn held(positions: &[Position]) -> BTreeMap<(AccountId, InstrumentId), i64> {
    positions
        .iter()
        .map(|p| ((p.account.clone(), p.instrument.id()), p.qty))
        .collect()
}

fn group_failure(g: &Group) -> String {
    let legs: Vec<String> = g
        .legs
        .iter()
        .filter_map(|l| {
            l.reason
                .as_ref()
                .map(|r| format!("{}: {r}", l.intent.instrument.id()))
        })
        .collect();
    format!(
        "group {} ended {:?}: {}{}",
        g.id,
        g.phase,
        g.reason.clone().unwrap_or_default(),
        if legs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", legs.join("; "))
        }
    )
}

/// Error codes meaning the broker could not be reached (the order's fate says nothing).
const UNREACHABLE_CODES: &[&str] = &["broker.not_connected", "broker.timeout", "broker.io"];

/// A failed close: retried with back-off, parked as needs-manual after the attempt budget.
/// A failure with an [`UNREACHABLE_CODES`] code, or seen while the connection is down, does
/// not use up an attempt (the close is retried once the broker answers again).
async fn fail(core: &SharedCore, job: u64, reason: String, code: Option<&str>) {
    let now = core.now();
    let c = &core.cfg;
    let (after, what) = {
        let mut st = core.lock();
        let down = matches!(
            st.book.connection(),
            Some(ConnectionState::Disconnected { .. } | ConnectionState::Connecting)
        );
        let unreachable = down || code.is_some_and(|c| UNREACHABLE_CODES.contains(&c));
        let after = if unreachable {
            st.closes.fail_unreachable(
                job,
                reason.clone(),
                now,
                c.close_retry_base,
                c.close_retry_max,
            )
        } else {
            st.closes.fail(
                job,
                reason.clone(),
                now,
                c.close_max_attempts,
                c.close_retry_base,
                c.close_retry_max,
            )
        };
        let what = st.closes.get(job).map(|j| {
            let ids: Vec<String> = j.instruments().map(|i| i.to_string()).collect();
            (j.account.clone(), ids.join(", "), j.failures, j.purpose)
        });
        (after, what)
    };
    let Some((account, ids, failures, purpose)) = what else {
        return;
    };
    match after {
        Some(AfterFailure::Retry(at)) => {
            core.alerter
                .raise(
                    Severity::Warning,
                    "close.retry",
                    format!(
                        "close {job} of {ids} ({account}) failed (attempt {failures}/{}): {reason}; retrying at {at}",
                        c.close_max_attempts
                    ),
                )
                .await;
        }
        Some(AfterFailure::RetryUnreachable(at)) => {
            tracing::warn!(
                job,
                failures,
                "close {job} of {ids} ({account}) failed because the broker is unreachable: {reason}; not counted as an attempt ({failures}/{} used), retrying at {at}",
                c.close_max_attempts
            );
        }
        Some(AfterFailure::ParkedAgain) => {
            let r#while = if purpose == Purpose::Emergency {
                "forced unwind is on"
            } else {
                "its rule is still breached"
            };
            tracing::warn!(
                job,
                "close {job} of {ids} ({account}) failed again: {reason}; still needs manual action, retried every {} s while {}",
                c.close_retry_max.as_secs(),
                r#while
            );
        }
        Some(AfterFailure::NeedsManual) => {
            core.alerter
                .raise(
                    Severity::Critical,
                    "close.needs_manual_action",
                    format!(
                        "NEEDS MANUAL ACTION: close {job} of {ids} ({account}) failed {failures} times, last: {reason}. The position is still open and tracked."
                    ),
                )
                .await;
        }
        None => {}
    }
}

/// Settles working jobs from the coordinator's groups, then sends the due ones.
async fn drive_closes(core: &SharedCore) -> TaskResult {
    let now = core.now();
    let working = core.lock().closes.working();
    if !working.is_empty() {
        let snap = core.coord.snapshot().await?;
        for (job, gid) in working {
            match snap.groups.iter().find(|g| g.id == gid) {
                Some(g) if g.phase == GroupPhase::Completed => {
                    core.lock().closes.remove(job);
                    core.alerter
                        .audit(
                            "close_done",
                            "close.done",
                            format!("close {job}: group {gid} completed"),
                            None,
                        )
                        .await;
                }
                Some(g) if g.phase.is_terminal() => {
                    // The hybrid exit's limit stage is over: every order of it is done at the
                    // broker (filled, or its cancel confirmed); the rest goes at market.
                    let mut filled: BTreeMap<InstrumentId, i64> = BTreeMap::new();
                    for l in g.legs.iter().filter(|l| !l.rollback) {
                        *filled.entry(l.intent.instrument.id()).or_default() += l.filled();
                    }
                    if core.lock().closes.to_market(job, &filled, now) {
                        core.alerter
                            .audit(
                                "hybrid_exit_market",
                                "close.hybrid_market",
                                format!(
                                    "close {job}: the limit orders of group {gid} left part of the exit ({}); their cancels are confirmed, the rest goes at market",
                                    group_failure(g)
                                ),
                                Some(Purpose::Flatten),
                            )
                            .await;
                        continue;
                    }
                    fail(core, job, group_failure(g), None).await;
                }
                Some(_) => {}
                None => {
                    let why = format!("group {gid} unknown to the coordinator");
                    fail(core, job, why, None).await;
                }
            }
        }
    }
    // Manual jobs whose positions are gone (closed by a person) are resolved.
    let resolved: Vec<u64> = {
        let st = core.lock();
        let views = st.book.positions(now, core.cfg.quote_stale_after);
        st.closes
            .jobs()
            .filter(|j| matches!(j.state, CloseState::NeedsManual { .. }))
            .filter(|j| {
                !views.iter().any(|p| {
                    p.account == j.account && j.instruments().any(|i| i == p.instrument.id())
                })
            })
            .map(|j| j.id)
            .collect()
    };
    for job in resolved {
        core.lock().closes.remove(job);
        core.alerter
            .raise(
                Severity::Info,
                "close.resolved",
                format!("close {job}: positions no longer held; manual action done"),
            )
            .await;
    }
    // Forced unwind means every position must go: a parked unwind job is tried again.
    let resumed = {
        let mut st = core.lock();
        let unwinding = st.forced_unwind.clone();
        st.closes
            .resume_parked_unwinds(&unwinding, now, core.cfg.close_retry_max)
    };
    for job in resumed {
        tracing::warn!(
            job,
            "forced unwind is on: close {job}, parked as needs-manual, is tried again"
        );
    }
    let due = core.lock().closes.due(now);
    for job in due {
        let Some(retry) = core
            .lock()
            .closes
            .get(job)
            .map(|j| j.failures > 0 || j.unreachable > 0 || j.check_broker)
        else {
            continue;
        };
        // A retry first asks the broker: a position it no longer has is not retried (and an
        // unreachable broker fails here, before any group is made).
        let holdings = if retry {
            match core.broker.positions().await {
                Ok(p) => held(&p),
                Err(e) => {
                    fail(
                        core,
                        job,
                        format!("position check before retry failed: {e} ({})", e.code()),
                        Some(e.code()),
                    )
                    .await;
                    continue;
                }
            }
        } else {
            let st = core.lock();
            let views = st.book.positions(now, core.cfg.quote_stale_after);
            let Some(j) = st.closes.get(job) else {
                continue;
            };
            let unquoted = j.legs.iter().any(|l| {
                views.iter().any(|v| {
                    v.account == j.account
                        && v.instrument == l.instrument
                        && v.mark_status == MarkStatus::Missing
                })
            });
            if unquoted && now < j.created.plus(core.cfg.close_quote_wait) {
                continue;
            }
            views
                .into_iter()
                .map(|p| ((p.account, p.instrument.id()), p.qty))
                .collect()
        };
        let (gone, intent) = {
            let mut st = core.lock();
            let Some(j) = st.closes.get_mut(job) else {
                continue;
            };
            let mut gone = Vec::new();
            let account = j.account.clone();
            j.legs.retain_mut(|l| {
                let q = holdings
                    .get(&(account.clone(), l.instrument.id()))
                    .copied()
                    .unwrap_or(0);
                if q == 0 || q.signum() != l.qty.signum() {
                    gone.push(l.instrument.id());
                    false
                } else {
                    // Never more than the job asked for (a position shared by several
                    // strategies is closed only by the share in the job), less when less is held.
                    l.qty = l.qty.signum() * l.qty.abs().min(q.abs());
                    true
                }
            });
            let intent = (!j.legs.is_empty()).then(|| j.intent());
            let hybrid = j.exit == Exit::HybridLimit;
            let intent = match intent {
                None => {
                    st.closes.remove(job);
                    None
                }
                Some(i) if hybrid => Some(hybrid_limits(i, &st.book, &core.cfg)),
                Some(i) => Some(i),
            };
            (gone, intent)
        };
        if !gone.is_empty() {
            let ids: Vec<String> = gone.iter().map(ToString::to_string).collect();
            core.alerter
                .raise(
                    Severity::Warning,
                    "close.position_gone",
                    format!(
                        "close {job}: broker no longer holds {}; reconciling instead of retrying",
                        ids.join(", ")
                    ),
                )
                .await;
            core.wake_reconciler.notify_one();
        }
        let Some(intent) = intent else {
            continue;
        };
        let purpose = intent.purpose;
        match core.coord.submit(intent).await {
            Ok(gid) => {
                if let Some(j) = core.lock().closes.get_mut(job) {
                    j.state = CloseState::Working { group: gid };
                }
                tracing::info!(job, group = %gid, ?purpose, "close handed to the coordinator");
            }
            Err(e) => {
                // The coordinator may not have processed the first quote yet: within the quote
                // wait a missing reference price is not a failed attempt.
                let created = core.lock().closes.get(job).map(|j| j.created);
                let waiting = created.is_some_and(|c| now < c.plus(core.cfg.close_quote_wait));
                let no_price = matches!(
                    e,
                    crate::error::ExecError::Refused(crate::error::GateRefusal::NoPrice { .. })
                );
                if no_price && waiting {
                    if let Some(j) = core.lock().closes.get_mut(job) {
                        j.state = CloseState::Pending {
                            not_before: now.plus(core.cfg.eval_interval),
                        };
                    }
                    tracing::info!(job, "close waits for the coordinator's first quote");
                } else {
                    fail(core, job, format!("{e} ({})", e.code()), Some(e.code())).await;
                }
            }
        }
    }
    Ok(())
}

/// The rules' state is written at most this often (clock time) while it changes: a crash loses
/// at most this much progress of a trailing high, and the journal does not grow per evaluation.
pub const RULE_STATE_SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Journals the rules' durable state when it differs from the last saved one (throttled).
/// Keeps the rules configuration in effect in the journal when it is not the one kept last:
/// the last good one runs when the file is bad at the next start. A failed write is logged and
/// retried at the next evaluation.
pub(crate) async fn persist_risk_config(
    core: &Core,
    source: &crate::rules::ConfigSource,
    now: Timestamp,
) {
    let kept = core
        .risk_config_saved
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_deref()
        == Some(source.hash.as_str());
    if kept {
        return;
    }
    let record = crate::journal::JournalRecord::RiskConfig(crate::rules::SavedRiskConfig {
        source: source.clone(),
        applied_at: now,
    });
    match core.journal.append(record).await {
        Ok(()) => {
            *core
                .risk_config_saved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(source.hash.clone());
        }
        Err(e) => {
            tracing::error!(code = e.code(), error = %e, "risk rules configuration not kept as the last good one; retried at the next evaluation")
        }
    }
}

async fn persist_rule_state(core: &Core, state: crate::rules::RuleState, now: Timestamp) {
    {
        let saved = core
            .rule_state_saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let unchanged = saved
            .0
            .as_ref()
            .is_some_and(|s| s.trailing == state.trailing && s.accounts == state.accounts);
        let recent = saved
            .1
            .is_some_and(|at| now.duration_since(at) < RULE_STATE_SAVE_EVERY);
        if unchanged || recent {
            return;
        }
    }
    match core
        .journal
        .append(crate::journal::JournalRecord::RuleState(state.clone()))
        .await
    {
        Ok(()) => {
            *core
                .rule_state_saved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (Some(state), Some(now));
        }
        Err(e) => {
            tracing::error!(code = e.code(), error = %e, "rule state not persisted; retried at the next evaluation")
        }
    }
}
