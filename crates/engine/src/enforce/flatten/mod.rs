//! Two-step flatten (issue 10's "Actions"): click-to-flatten a strategy, "Flatten all" of an
//! account, one position, and the forced-unwind toggle — each first previewed, then confirmed
//! with the preview's single-use id.
//!
//! - [`crate::enforce::Guard::preview_flatten`] / [`crate::enforce::Guard::preview_forced_unwind`]
//!   plan the exact orders (in the coordinator's send order: shorts bought back before their
//!   protection is sold), estimate them from the live book and list the warnings; the preview
//!   gets an id that expires after [`PREVIEW_TTL`] of clock time;
//! - [`crate::enforce::Guard::confirm_flatten`] re-plans and executes only when the id is
//!   known, unexpired, unused and the orders are still the same; a flatten becomes one close
//!   job of the guard's closer (the same path as rule flattens, through the coordinator and
//!   its gate), a forced unwind calls [`crate::enforce::Guard::set_forced_unwind`];
//! - [`crate::enforce::Guard::flatten_progress`] reports per order: waiting, sent, filled,
//!   failed.
//!
//! Every preview, confirmation and refusal is audited with its reason.
//!
//! Modules: [`types`] (the serializable views), [`error`] ([`FlattenError`]), `plan` (the pure
//! planning step).

pub mod error;
pub(crate) mod plan;
pub mod types;

pub use error::FlattenError;
pub use types::{
    ExcludedPosition, ExcludedReason, FlattenAction, FlattenOrder, FlattenPreview, FlattenProgress,
    FlattenScope, FlattenStatus, FlattenTicket, FlattenWarning, OrderProgress, OrderProgressState,
    PriceEstimate, QuoteQuality, QuoteSide, WarningKind,
};

use crate::assignment::EmergencyClose;
use crate::enforce::closer::CloseState;
use crate::enforce::core::{Core, GuardState};
use crate::enforce::error::EnforceError;
use crate::enforce::guard::Guard;
use crate::enforce::strategy_link;
use crate::gate::TradingState;
use crate::group::{GroupLeg, LegState};
use plan::{Inputs, Plan};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tradeguard_model::{AccountId, Side, Timestamp};

/// How long a preview can be confirmed (clock time).
pub const PREVIEW_TTL: Duration = Duration::from_secs(30);
/// An expired preview is still reported as expired (not unknown) this long after expiry.
const EXPIRED_KEPT: Duration = Duration::from_secs(600);
/// Used ids remembered (reported as already used).
const USED_KEPT: usize = 1024;
/// Tickets remembered for progress queries.
const TICKETS_KEPT: usize = 256;
/// Audit rule name of a confirmed flatten's close job.
const RULE: &str = "manual_flatten";

/// One issued preview.
#[derive(Debug, Clone)]
struct Stored {
    action: FlattenAction,
    plan: Plan,
    expires_at: Timestamp,
}

/// The guard's previews, used ids and tickets (inside the guard's shared state).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    seq: u64,
    previews: BTreeMap<String, Stored>,
    used: VecDeque<String>,
    tickets: BTreeMap<String, FlattenTicket>,
    ticket_order: VecDeque<String>,
}

/// SplitMix64: ids that look random but follow from a counter and the clock (same run, same ids).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Registry {
    fn next_id(&mut self, prefix: &str, now: Timestamp) -> String {
        self.seq = self.seq.wrapping_add(1);
        // Timestamps are i64 nanoseconds; the bit pattern is what matters for mixing.
        let t = now.0.to_le_bytes();
        format!(
            "{prefix}-{:016x}",
            mix(self.seq ^ mix(u64::from_le_bytes(t)))
        )
    }

    fn purge(&mut self, now: Timestamp) {
        self.previews
            .retain(|_, s| now <= s.expires_at.plus(EXPIRED_KEPT));
    }

    fn mark_used(&mut self, id: &str) {
        self.previews.remove(id);
        self.used.push_back(id.to_owned());
        while self.used.len() > USED_KEPT {
            self.used.pop_front();
        }
    }

    /// The stored preview if it may be confirmed now.
    fn check(&self, id: &str, now: Timestamp) -> Result<&Stored, FlattenError> {
        if self.used.iter().any(|u| u == id) {
            return Err(FlattenError::AlreadyUsed { id: id.to_owned() });
        }
        let s = self
            .previews
            .get(id)
            .ok_or_else(|| FlattenError::UnknownPreview { id: id.to_owned() })?;
        if now > s.expires_at {
            return Err(FlattenError::ExpiredPreview {
                id: id.to_owned(),
                expired_at: s.expires_at,
            });
        }
        Ok(s)
    }

    fn keep_ticket(&mut self, t: FlattenTicket) {
        self.ticket_order.push_back(t.id.clone());
        self.tickets.insert(t.id.clone(), t);
        while self.ticket_order.len() > TICKETS_KEPT {
            if let Some(old) = self.ticket_order.pop_front() {
                self.tickets.remove(&old);
            }
        }
    }
}

/// What planning needs from outside the shared state (read before locking it).
struct Outside {
    trading: TradingState,
    assignment: Vec<EmergencyClose>,
    dry_run: bool,
}

async fn outside(core: &Core) -> Result<Outside, EnforceError> {
    let trading = core.coord.snapshot().await?.trading_state;
    let assignment = core.assignment().status().closes;
    let rules_dry_run = core
        .evaluator
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .global_dry_run();
    Ok(Outside {
        trading,
        assignment,
        // Either switch the status shows as "dry-run" stops a manual flatten too.
        dry_run: core.cfg.dry_run || rules_dry_run,
    })
}

/// Plans `action` under the state lock (the strategy book is re-synced first, as the enforcer
/// does before every evaluation).
fn plan_locked(
    core: &Core,
    st: &mut GuardState,
    o: &Outside,
    action: &FlattenAction,
    now: Timestamp,
) -> Result<Plan, FlattenError> {
    let positions = st.book.positions(now, core.cfg.quote_stale_after);
    if strategy_link::refresh(st, &positions) {
        core.strategies_changed.notify_one();
    }
    plan::plan(
        action,
        &Inputs {
            now,
            stale_after: core.cfg.quote_stale_after,
            positions: &positions,
            book: &st.book,
            strategies: &st.strategies,
            closes: &st.closes,
            assignment: &o.assignment,
            trading: o.trading,
            dry_run: o.dry_run,
            forced_unwind: &st.forced_unwind,
            hours: core.hours.as_ref(),
        },
    )
}

fn orders_text(p: &Plan) -> String {
    if p.orders.is_empty() {
        return "no order".to_owned();
    }
    orders_text_of(&p.orders)
}

/// `step:SIDE qty instrument`, with the child orders of a split order.
fn orders_text_of(orders: &[FlattenOrder]) -> String {
    orders
        .iter()
        .map(|o| {
            format!(
                "{}:{} {} {}{}",
                o.step,
                if o.side == Side::Buy { "BUY" } else { "SELL" },
                o.qty,
                o.instrument.id(),
                if o.child_orders.len() > 1 {
                    format!(" as {} orders", o.child_orders.len())
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn action_text(a: &FlattenAction) -> String {
    match a {
        FlattenAction::Flatten { scope } => match scope {
            FlattenScope::Strategy { strategy } => format!("flatten strategy {strategy}"),
            FlattenScope::Account { account } => format!("flatten all of {account}"),
            FlattenScope::Position {
                account,
                instrument,
            } => format!("flatten {instrument} in {account}"),
        },
        FlattenAction::ForcedUnwind { account, on } => format!(
            "forced unwind of {account} {}",
            if *on { "ON" } else { "OFF" }
        ),
    }
}

fn describe_change(old: &Plan, new: &Plan) -> String {
    if old.dry_run != new.dry_run {
        return format!(
            "dry-run was switched {}",
            if new.dry_run { "on" } else { "off" }
        );
    }
    if old.purpose != new.purpose {
        return format!(
            "the close would now go as {:?} instead of {:?}",
            new.purpose, old.purpose
        );
    }
    format!(
        "the orders would now be [{}] instead of [{}]",
        orders_text(new),
        orders_text(old)
    )
}

impl Guard {
    /// Plans a flatten of `scope` and returns the preview to show (nothing is sent). Confirm it
    /// with [`Guard::confirm_flatten`] before [`FlattenPreview::expires_at`].
    pub async fn preview_flatten(
        &self,
        scope: FlattenScope,
    ) -> Result<FlattenPreview, EnforceError> {
        self.preview(FlattenAction::Flatten { scope }).await
    }

    /// Plans switching forced unwind of `account` on or off: the orders the unwind would send
    /// (when on), and that it survives restarts. Confirm with [`Guard::confirm_flatten`].
    pub async fn preview_forced_unwind(
        &self,
        account: AccountId,
        on: bool,
    ) -> Result<FlattenPreview, EnforceError> {
        self.preview(FlattenAction::ForcedUnwind { account, on })
            .await
    }

    async fn preview(&self, action: FlattenAction) -> Result<FlattenPreview, EnforceError> {
        let core = self.core();
        let o = outside(core).await?;
        let now = core.now();
        let planned = {
            let mut st = core.lock();
            plan_locked(core, &mut st, &o, &action, now)
        };
        // Every listed order through the coordinator's gate (nothing sent): the child orders
        // it would be split into, and any refusal as a warning before confirm.
        let planned = match planned {
            Ok(mut plan) if !plan.orders.is_empty() => {
                let check = core.coord.check(plan.intent()).await?;
                plan.apply_gate(&check);
                Ok(plan)
            }
            other => other,
        };
        let result = {
            let mut st = core.lock();
            let st = &mut *st;
            planned.map(|plan| {
                st.flatten.purge(now);
                let id = st.flatten.next_id("fp", now);
                let expires_at = now.plus(PREVIEW_TTL);
                st.flatten.previews.insert(
                    id.clone(),
                    Stored {
                        action: action.clone(),
                        plan: plan.clone(),
                        expires_at,
                    },
                );
                FlattenPreview {
                    id,
                    action: action.clone(),
                    account: plan.account,
                    purpose: plan.purpose,
                    orders: plan.orders,
                    excluded: plan.excluded,
                    estimated_cash: plan.estimated_cash,
                    estimate_complete: plan.estimate_complete,
                    warnings: plan.warnings,
                    will_send: plan.will_send,
                    armed_until: plan.armed_until,
                    created_at: now,
                    expires_at,
                }
            })
        };
        match &result {
            Ok(p) => {
                let warnings: Vec<&str> = p.warnings.iter().map(|w| w.code.as_str()).collect();
                core.alerter
                    .audit(
                        "flatten_preview",
                        "flatten.preview",
                        format!(
                            "{} ({}): preview {} as {:?}: [{}]; estimated cash {}{}; warnings [{}]",
                            action_text(&action),
                            p.account,
                            p.id,
                            p.purpose,
                            orders_text_of(&p.orders),
                            p.estimated_cash,
                            if p.estimate_complete {
                                ""
                            } else {
                                " (incomplete)"
                            },
                            warnings.join(", ")
                        ),
                        Some(p.purpose),
                    )
                    .await;
            }
            Err(e) => {
                core.alerter
                    .audit(
                        "flatten_preview_refused",
                        e.code(),
                        format!("{}: {e}", action_text(&action)),
                        None,
                    )
                    .await;
            }
        }
        Ok(result?)
    }

    /// Executes a preview: only with a known, unexpired, unused id whose orders are still the
    /// ones shown. A flatten becomes one close job of the guard's closer (sent through the
    /// coordinator and its gate; Broken strategies and HALTED trading through the emergency
    /// path; held until the open when the market is closed; nothing sent in dry-run); a forced
    /// unwind preview switches the flag through [`Guard::set_forced_unwind`]. The id is spent
    /// by any decision (accepted, stale, nothing to do).
    pub async fn confirm_flatten(&self, preview_id: &str) -> Result<FlattenTicket, EnforceError> {
        let core = self.core();
        let first = {
            let mut st = core.lock();
            let now = core.now();
            st.flatten.purge(now);
            st.flatten.check(preview_id, now).map(|s| s.action.clone())
        };
        let action = match first {
            Ok(a) => a,
            Err(e) => return Err(self.refused(preview_id, None, e).await),
        };
        let o = outside(core).await?;
        let now = core.now();
        let decided = {
            let mut st = core.lock();
            let st = &mut *st;
            self.decide(st, &o, preview_id, now)
        };
        let ticket = match decided {
            Ok(t) => t,
            Err(e) => return Err(self.refused(preview_id, Some(&action), e).await),
        };
        let what = if ticket.dry_run {
            ("flatten_dry_run", "flatten.dry_run")
        } else {
            ("flatten_confirmed", "flatten.confirmed")
        };
        core.alerter
            .audit(
                what.0,
                what.1,
                format!(
                    "{} ({}): preview {} confirmed as ticket {} ({:?}{}{}): [{}]",
                    action_text(&ticket.action),
                    ticket.account,
                    ticket.preview_id,
                    ticket.id,
                    ticket.purpose,
                    if ticket.dry_run {
                        ", dry-run: nothing sent"
                    } else {
                        ""
                    },
                    ticket
                        .armed_until
                        .map_or_else(String::new, |t| format!(", armed until {t}")),
                    orders_text_of(&ticket.orders)
                ),
                Some(ticket.purpose),
            )
            .await;
        if let FlattenAction::ForcedUnwind { account, on } = &ticket.action {
            self.set_forced_unwind(account.clone(), *on).await?;
        } else if !ticket.close_jobs.is_empty() {
            core.wake_enforcer.notify_one();
        }
        Ok(ticket)
    }

    /// Re-checks and spends the id, re-plans, compares, queues the close (state lock held).
    fn decide(
        &self,
        st: &mut GuardState,
        o: &Outside,
        id: &str,
        now: Timestamp,
    ) -> Result<FlattenTicket, FlattenError> {
        let core = self.core();
        let stored = st.flatten.check(id, now)?.clone();
        // Spent from here on, whatever the outcome.
        st.flatten.mark_used(id);
        let mut fresh = plan_locked(core, st, o, &stored.action, now)?;
        if fresh.fingerprint() != stored.plan.fingerprint() {
            return Err(FlattenError::StalePreview {
                id: id.to_owned(),
                detail: describe_change(&stored.plan, &fresh),
            });
        }
        // Same orders: the split the preview showed.
        for (f, s) in fresh.orders.iter_mut().zip(&stored.plan.orders) {
            f.child_orders.clone_from(&s.child_orders);
            f.gate_refusal.clone_from(&s.gate_refusal);
        }
        let unwind = matches!(stored.action, FlattenAction::ForcedUnwind { .. });
        if fresh.orders.is_empty() && !unwind {
            return Err(FlattenError::NothingToFlatten {
                detail: if fresh.excluded.is_empty() {
                    "no open position in scope".to_owned()
                } else {
                    format!(
                        "every position in scope is already being closed ({})",
                        fresh.excluded.len()
                    )
                },
            });
        }
        let mut jobs = Vec::new();
        if !unwind && !fresh.dry_run {
            let job = st
                .closes
                .add(
                    fresh.account.clone(),
                    fresh.strategy,
                    fresh.purpose,
                    RULE,
                    fresh.close_legs(),
                    now,
                )
                .ok_or_else(|| FlattenError::StalePreview {
                    id: id.to_owned(),
                    detail: "every position is now covered by another close".to_owned(),
                })?;
            if let (Some(at), Some(j)) = (fresh.armed_until, st.closes.get_mut(job)) {
                j.state = CloseState::Pending { not_before: at };
            }
            jobs.push(job);
        }
        let ticket = FlattenTicket {
            id: st.flatten.next_id("ft", now),
            preview_id: id.to_owned(),
            action: stored.action,
            account: fresh.account,
            purpose: fresh.purpose,
            orders: fresh.orders,
            dry_run: fresh.dry_run,
            close_jobs: jobs,
            armed_until: fresh.armed_until,
            confirmed_at: now,
        };
        st.flatten.keep_ticket(ticket.clone());
        Ok(ticket)
    }

    async fn refused(
        &self,
        id: &str,
        action: Option<&FlattenAction>,
        e: FlattenError,
    ) -> EnforceError {
        self.core()
            .alerter
            .audit(
                "flatten_refused",
                e.code(),
                format!(
                    "confirmation of preview {id}{} refused: {e}",
                    action.map_or_else(String::new, |a| format!(" ({})", action_text(a)))
                ),
                None,
            )
            .await;
        EnforceError::Flatten(e)
    }

    /// Progress of a confirmed flatten or forced unwind, per order, from the account's
    /// positions, the close jobs and the coordinator's groups.
    pub async fn flatten_progress(&self, ticket: &str) -> Result<FlattenProgress, EnforceError> {
        let core = self.core();
        let t = core
            .lock()
            .flatten
            .tickets
            .get(ticket)
            .cloned()
            .ok_or_else(|| FlattenError::UnknownTicket(ticket.to_owned()))?;
        let groups = if t.dry_run {
            Vec::new()
        } else {
            core.coord.snapshot().await?.groups
        };
        let now = core.now();
        let st = core.lock();
        let positions = st.book.positions(now, core.cfg.quote_stale_after);
        let mut orders = Vec::new();
        let mut job_ids = Vec::new();
        for o in &t.orders {
            let id = o.instrument.id();
            let position = positions
                .iter()
                .find(|p| p.account == t.account && p.instrument.id() == id)
                .map_or(0, |p| p.qty);
            // Closed so far: how far the position moved toward zero since the confirmation.
            let toward = -o.side.sign();
            let filled = (o.position.saturating_sub(position))
                .saturating_mul(toward)
                .clamp(0, o.qty);
            let job = st
                .closes
                .jobs()
                .find(|j| j.account == t.account && j.instruments().any(|i| i == id));
            if let Some(j) = job
                && !job_ids.contains(&j.id)
            {
                job_ids.push(j.id);
            }
            let state = if t.dry_run {
                OrderProgressState::NotSent
            } else if filled >= o.qty {
                OrderProgressState::Filled
            } else {
                match job.map(|j| &j.state) {
                    Some(CloseState::NeedsManual { reason }) => OrderProgressState::Failed {
                        reason: reason.clone(),
                    },
                    Some(CloseState::Pending { .. }) => OrderProgressState::Waiting,
                    Some(CloseState::Working { group }) => {
                        // The order's group legs: one, or its child orders when split.
                        let legs: Vec<&GroupLeg> = groups
                            .iter()
                            .find(|g| g.id == *group)
                            .map(|g| {
                                g.legs
                                    .iter()
                                    .filter(|l| !l.rollback && l.intent.instrument == o.instrument)
                                    .collect()
                            })
                            .unwrap_or_default();
                        legs_progress(&legs, filled)
                    }
                    // The enforcer queues a forced unwind's closes at its next pass.
                    None if matches!(t.action, FlattenAction::ForcedUnwind { on: true, .. })
                        && now
                            <= t.confirmed_at
                                .plus(core.cfg.eval_interval.saturating_mul(2)) =>
                    {
                        OrderProgressState::Waiting
                    }
                    None => OrderProgressState::NotWorking,
                }
            };
            orders.push(OrderProgress {
                instrument: o.instrument.clone(),
                side: o.side,
                qty: o.qty,
                filled,
                position,
                state,
            });
        }
        drop(st);
        let count =
            |f: &dyn Fn(&OrderProgressState) -> bool| orders.iter().filter(|o| f(&o.state)).count();
        let sent = count(&|s| {
            matches!(
                s,
                OrderProgressState::Sent
                    | OrderProgressState::PartiallyFilled
                    | OrderProgressState::Filled
            )
        });
        let filled = count(&|s| matches!(s, OrderProgressState::Filled));
        let failed = count(&|s| matches!(s, OrderProgressState::Failed { .. }));
        let waiting = count(&|s| matches!(s, OrderProgressState::Waiting));
        let working = count(&|s| {
            matches!(
                s,
                OrderProgressState::Waiting
                    | OrderProgressState::Sent
                    | OrderProgressState::PartiallyFilled
            )
        });
        let status = if t.dry_run {
            FlattenStatus::DryRun
        } else if filled == orders.len() {
            FlattenStatus::Done
        } else if let Some(reason) = orders.iter().find_map(|o| match &o.state {
            OrderProgressState::Failed { reason } => Some(reason.clone()),
            _ => None,
        }) {
            FlattenStatus::NeedsManual { reason }
        } else if let Some(at) = t
            .armed_until
            .filter(|at| now < *at && waiting + filled == orders.len())
        {
            FlattenStatus::Armed { release_at: at }
        } else if working > 0 {
            FlattenStatus::Working
        } else {
            FlattenStatus::Incomplete
        };
        Ok(FlattenProgress {
            ticket: t.id,
            status,
            orders,
            sent,
            filled,
            failed,
            close_jobs: job_ids,
        })
    }
}

/// Progress of one order from its group legs (its child orders when it was split): failed
/// when one ended badly, filled when all filled, sent / partially filled once one is at the
/// broker, else waiting.
fn legs_progress(legs: &[&GroupLeg], filled: i64) -> OrderProgressState {
    if let Some(l) = legs
        .iter()
        .find(|l| l.state.is_terminal() && l.state != LegState::Filled)
    {
        return OrderProgressState::Failed {
            reason: l.reason.clone().unwrap_or_else(|| format!("{:?}", l.state)),
        };
    }
    if !legs.is_empty() && legs.iter().all(|l| l.state == LegState::Filled) {
        return OrderProgressState::Filled;
    }
    if legs.iter().any(|l| l.state != LegState::Pending) {
        return if filled == 0 {
            OrderProgressState::Sent
        } else {
            OrderProgressState::PartiallyFilled
        };
    }
    OrderProgressState::Waiting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_distinct_and_single_use() {
        let t = Timestamp::from_secs(1_000);
        let mut a = Registry::default();
        let mut b = Registry::default();
        let ids: Vec<String> = (0..3).map(|_| a.next_id("fp", t)).collect();
        let again: Vec<String> = (0..3).map(|_| b.next_id("fp", t)).collect();
        assert_eq!(ids, again, "same clock and sequence, same ids");
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
        assert!(ids.iter().all(|i| i.len() == 19 && i.starts_with("fp-")));
        assert_eq!(
            a.check("fp-x", t).map(|_| ()).unwrap_err().code(),
            "flatten.unknown_preview"
        );
        a.mark_used("fp-x");
        assert_eq!(
            a.check("fp-x", t).map(|_| ()).unwrap_err().code(),
            "flatten.already_used"
        );
    }
}
