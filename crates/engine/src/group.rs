//! Execution groups: the per-leg state machine, fill validation, tier progression and the
//! rollback plan. Pure data and transitions; the engine task performs the broker calls.
//!
//! Leg states: `Pending → Sent → PartiallyFilled → Filled | Cancelled | Rejected | TimedOut`
//! (`Sent → Filled/Cancelled/Rejected/TimedOut` directly as well). Terminal states never change.
//!
//! **Child orders.** A leg larger than the per-order limit ([`Group::legged_split`], used by
//! the coordinator for reducing legs over `GateConfig::max_order_qty`) becomes several group
//! legs on the same instrument and side — its *child orders* ([`split_qty`]), each with its own
//! broker order, fills and state, all in the tier of the leg they split (so shorts are still
//! bought back before their protection is sold). Everything downstream works per group leg:
//! fills match by order id, the rollback reverses each filled child, exits sum over the legs
//! of an instrument, and the journal stores every child.

use crate::book::Book;
use crate::intent::{LegIntent, OrderIntent, tiers};
use serde::{Deserialize, Serialize};
use tradeguard_model::{Execution, GroupId, OrderId, OrderStatus, OrderUpdate, Timestamp};

/// State of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LegState {
    /// Not sent yet.
    Pending,
    /// Sent, nothing filled.
    Sent,
    /// Some quantity filled, rest working.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled (by us or the broker) before completing.
    Cancelled,
    /// Rejected by the broker.
    Rejected,
    /// Cancelled by the engine because it did not fill in time.
    TimedOut,
}

impl LegState {
    /// Filled, Cancelled, Rejected or TimedOut.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Cancelled | Self::Rejected | Self::TimedOut
        )
    }

    /// Whether `self → to` is legal.
    pub fn can_transition(self, to: LegState) -> bool {
        use LegState::*;
        matches!(
            (self, to),
            (Pending, Sent | Rejected | Cancelled)
                | (
                    Sent,
                    PartiallyFilled | Filled | Cancelled | Rejected | TimedOut
                )
                | (
                    PartiallyFilled,
                    PartiallyFilled | Filled | Cancelled | TimedOut
                )
        )
    }
}

/// One leg of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLeg {
    /// What the leg does.
    pub intent: LegIntent,
    /// Priority score at planning time.
    pub score: i32,
    /// Broker order (the combo's id on the native-combo path).
    pub order_id: Option<OrderId>,
    /// Combo ratio (1 when legged).
    pub ratio: i64,
    /// State.
    pub state: LegState,
    /// Filled quantity from validated executions.
    pub exec_filled: i64,
    /// Filled quantity from the broker's order status.
    pub status_filled: i64,
    /// When the order was sent.
    pub sent_at: Option<Timestamp>,
    /// Cancel requested because of the time-out.
    pub timeout_cancel: bool,
    /// `true` for legs added by the rollback.
    pub rollback: bool,
    /// Why the leg ended badly.
    pub reason: Option<String>,
}

impl GroupLeg {
    fn new(intent: LegIntent, score: i32, rollback: bool) -> Self {
        Self {
            intent,
            score,
            order_id: None,
            ratio: 1,
            state: LegState::Pending,
            exec_filled: 0,
            status_filled: 0,
            sent_at: None,
            timeout_cancel: false,
            rollback,
            reason: None,
        }
    }

    /// Filled quantity (the larger of executions and status; they converge).
    pub fn filled(&self) -> i64 {
        self.exec_filled.max(self.status_filled)
    }

    fn go(&mut self, to: LegState) -> bool {
        if self.state == to && to != LegState::PartiallyFilled {
            return false;
        }
        if self.state.can_transition(to) {
            self.state = to;
            true
        } else {
            false
        }
    }
}

/// Where a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum GroupPhase {
    /// Sending tier `tier` of the forward plan and waiting for its fills.
    Legging {
        /// Index into `Group::tiers`.
        tier: usize,
    },
    /// One native combo order working.
    Combo,
    /// Unwinding filled legs, tier `tier` of `Group::rollback_tiers`.
    RollingBack {
        /// Index into `Group::rollback_tiers`.
        tier: usize,
    },
    /// Every leg filled.
    Completed,
    /// Could not complete; filled legs were unwound.
    RolledBack,
    /// Could not complete and could not unwind: needs a person.
    Failed,
    /// Found unfinished at start-up; working orders cancelled, not resumed.
    Interrupted,
}

impl GroupPhase {
    /// Completed, RolledBack, Failed or Interrupted.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::RolledBack | Self::Failed | Self::Interrupted
        )
    }
}

/// Why a fill was refused by validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// The execution's instrument is not the leg's.
    #[error("fill of {got} on order {order} does not match any leg")]
    WrongInstrument {
        /// Order.
        order: OrderId,
        /// Instrument reported.
        got: String,
    },
    /// The execution's side is not the leg's.
    #[error("fill on order {order} has the wrong side")]
    WrongSide {
        /// Order.
        order: OrderId,
    },
    /// More than the leg's quantity.
    #[error("overfill on order {order}: {filled} + {qty} > {max}")]
    Overfill {
        /// Order.
        order: OrderId,
        /// Filled before.
        filled: i64,
        /// This fill.
        qty: i64,
        /// Leg quantity.
        max: i64,
    },
}

impl FillError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongInstrument { .. } => "fill.wrong_instrument",
            Self::WrongSide { .. } => "fill.wrong_side",
            Self::Overfill { .. } => "fill.overfill",
        }
    }
}

/// Outcome of the current tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierOutcome {
    /// Orders still working.
    Working,
    /// Every leg of the tier filled.
    Filled,
    /// Every leg is terminal and at least one did not fill.
    Failed,
}

/// A multi-leg (or single-leg) execution group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Id.
    pub id: GroupId,
    /// The request (legs included).
    pub intent: OrderIntent,
    /// Legs: the intent's legs in intent order (a leg sent as child orders appears once per
    /// child, see the module docs), then rollback legs.
    pub legs: Vec<GroupLeg>,
    /// Forward tiers (indices into `legs`).
    pub tiers: Vec<Vec<usize>>,
    /// Rollback tiers (indices into `legs`).
    pub rollback_tiers: Vec<Vec<usize>>,
    /// Native combo quantity (units) when sent as a combo.
    pub combo_qty: Option<i64>,
    /// Phase.
    pub phase: GroupPhase,
    /// Created.
    pub created: Timestamp,
    /// Last transition.
    pub updated: Timestamp,
    /// Why it failed / was rolled back.
    pub reason: Option<String>,
}

/// The child order quantities of a leg of `qty` under a per-order limit of `max`: full
/// orders of `max`, then the rest (`[100, 100, 50]` for 250 under 100); `[qty]` when it fits
/// (or when `max` is not positive).
pub fn split_qty(qty: i64, max: i64) -> Vec<i64> {
    if max <= 0 || qty <= max {
        return vec![qty];
    }
    let mut out = Vec::new();
    let mut left = qty;
    while left > 0 {
        let q = left.min(max);
        out.push(q);
        left -= q;
    }
    out
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Group {
    /// Plans a legged group (tiers by priority score), one broker order per intent leg.
    pub fn legged(id: GroupId, intent: OrderIntent, book: &Book, now: Timestamp) -> Self {
        Self::legged_split(id, intent, book, now, i64::MAX)
    }

    /// Plans a legged group whose legs over `max_order_qty` are sent as child orders of at
    /// most `max_order_qty` each ([`split_qty`]): the children of a leg follow each other in
    /// `legs` (intent order), share its priority score and go in its tier.
    pub fn legged_split(
        id: GroupId,
        intent: OrderIntent,
        book: &Book,
        now: Timestamp,
        max_order_qty: i64,
    ) -> Self {
        let mut legs = Vec::new();
        // Group-leg indices of each intent leg's children.
        let mut children: Vec<Vec<usize>> = Vec::with_capacity(intent.legs.len());
        for (i, l) in intent.legs.iter().enumerate() {
            let score = crate::intent::score(&intent.legs, i, book);
            let mut mine = Vec::new();
            for q in split_qty(l.qty, max_order_qty) {
                mine.push(legs.len());
                legs.push(GroupLeg::new(
                    LegIntent {
                        qty: q,
                        ..l.clone()
                    },
                    score,
                    false,
                ));
            }
            children.push(mine);
        }
        let t = tiers(&intent.legs, book)
            .into_iter()
            .map(|tier| {
                tier.into_iter()
                    .flat_map(|i| children.get(i).cloned().unwrap_or_default())
                    .collect()
            })
            .collect();
        Self {
            id,
            intent,
            legs,
            tiers: t,
            rollback_tiers: Vec::new(),
            combo_qty: None,
            phase: GroupPhase::Legging { tier: 0 },
            created: now,
            updated: now,
            reason: None,
        }
    }

    /// Plans a native-combo group: units = gcd of leg quantities, ratios = qty / units. Legs
    /// are ordered protective first (venues that leg in follow the given order).
    pub fn combo(id: GroupId, intent: OrderIntent, book: &Book, now: Timestamp) -> Self {
        let mut g = Self::legged(id, intent, book, now);
        let units = g.legs.iter().fold(0, |a, l| gcd(a, l.intent.qty)).max(1);
        for l in &mut g.legs {
            l.ratio = l.intent.qty / units;
        }
        g.combo_qty = Some(units);
        g.phase = GroupPhase::Combo;
        g
    }

    /// Leg indices of the current tier (all legs for a combo, none when terminal).
    pub fn current_tier(&self) -> Vec<usize> {
        match self.phase {
            GroupPhase::Legging { tier } => self.tiers.get(tier).cloned().unwrap_or_default(),
            GroupPhase::RollingBack { tier } => {
                self.rollback_tiers.get(tier).cloned().unwrap_or_default()
            }
            GroupPhase::Combo => (0..self.legs.len()).collect(),
            _ => Vec::new(),
        }
    }

    /// Legs whose order is `id`.
    pub fn legs_of(&self, id: OrderId) -> Vec<usize> {
        (0..self.legs.len())
            .filter(|i| self.legs[*i].order_id == Some(id))
            .collect()
    }

    /// Working (sent, not terminal) legs.
    pub fn working(&self) -> Vec<usize> {
        (0..self.legs.len())
            .filter(|i| {
                let l = &self.legs[*i];
                l.order_id.is_some() && !l.state.is_terminal()
            })
            .collect()
    }

    /// Marks `idx` sent with `order` at `now`.
    pub fn mark_sent(&mut self, idx: usize, order: OrderId, now: Timestamp) {
        if let Some(l) = self.legs.get_mut(idx) {
            l.order_id = Some(order);
            l.sent_at = Some(now);
            l.go(LegState::Sent);
        }
        self.updated = now;
    }

    /// Marks `idx` rejected at send time.
    pub fn mark_rejected(&mut self, idx: usize, why: String, now: Timestamp) {
        if let Some(l) = self.legs.get_mut(idx)
            && l.go(LegState::Rejected)
        {
            l.reason = Some(why);
        }
        self.updated = now;
    }

    /// Applies an order status to the legs of that order. Returns whether anything changed.
    pub fn on_status(&mut self, u: &OrderUpdate) -> bool {
        let mut changed = false;
        for i in self.legs_of(u.order_id) {
            let l = &mut self.legs[i];
            let filled = u.filled.saturating_mul(l.ratio).min(l.intent.qty);
            if filled > l.status_filled {
                l.status_filled = filled;
                changed = true;
            }
            let to = match u.status {
                OrderStatus::Filled => Some(LegState::Filled),
                OrderStatus::Cancelled | OrderStatus::ApiCancelled if l.timeout_cancel => {
                    Some(LegState::TimedOut)
                }
                OrderStatus::Cancelled | OrderStatus::ApiCancelled => Some(LegState::Cancelled),
                OrderStatus::Rejected => Some(LegState::Rejected),
                OrderStatus::PartiallyFilled => Some(LegState::PartiallyFilled),
                _ if l.filled() > 0 && l.state == LegState::Sent => Some(LegState::PartiallyFilled),
                _ => None,
            };
            if let Some(to) = to
                && l.state != to
                && l.go(to)
            {
                changed = true;
                if to.is_terminal() && to != LegState::Filled {
                    l.reason = u
                        .reason
                        .as_ref()
                        .map(|r| format!("{}: {}", r.code, r.text))
                        .or_else(|| Some(format!("{to:?}")));
                }
            }
        }
        changed
    }

    /// Validates an execution against the legs of its order and counts it.
    pub fn on_exec(&mut self, e: &Execution) -> Result<usize, FillError> {
        let order = e.order_id.unwrap_or(OrderId(0));
        let idxs = self.legs_of(order);
        let Some(i) = idxs
            .iter()
            .copied()
            .find(|i| self.legs[*i].intent.instrument == e.instrument)
        else {
            return Err(FillError::WrongInstrument {
                order,
                got: e.instrument.id().0,
            });
        };
        let l = &mut self.legs[i];
        if l.intent.side != e.side {
            return Err(FillError::WrongSide { order });
        }
        if l.exec_filled.saturating_add(e.qty) > l.intent.qty {
            let err = FillError::Overfill {
                order,
                filled: l.exec_filled,
                qty: e.qty,
                max: l.intent.qty,
            };
            l.exec_filled = l.intent.qty;
            return Err(err);
        }
        l.exec_filled += e.qty;
        if l.state == LegState::Sent {
            l.go(LegState::PartiallyFilled);
        }
        Ok(i)
    }

    /// Outcome of the current tier.
    pub fn tier_outcome(&self) -> TierOutcome {
        let tier = self.current_tier();
        if tier.is_empty() {
            return TierOutcome::Filled;
        }
        let legs: Vec<&GroupLeg> = tier.iter().filter_map(|i| self.legs.get(*i)).collect();
        if legs.iter().all(|l| l.state == LegState::Filled) {
            TierOutcome::Filled
        } else if legs
            .iter()
            .all(|l| l.state.is_terminal() || l.state == LegState::Pending)
            && legs
                .iter()
                .any(|l| l.state.is_terminal() && l.state != LegState::Filled)
        {
            TierOutcome::Failed
        } else {
            TierOutcome::Working
        }
    }

    /// Appends the rollback legs (reverse every forward fill) and their tiers, planned with the
    /// same priority rules against `book`. Returns `false` when nothing was filled.
    pub fn plan_rollback(&mut self, book: &Book) -> bool {
        let unwind: Vec<LegIntent> = self
            .legs
            .iter()
            .filter(|l| !l.rollback && l.filled() > 0)
            .map(|l| LegIntent {
                instrument: l.intent.instrument.clone(),
                side: l.intent.side.opposite(),
                qty: l.filled(),
                order_type: tradeguard_model::OrderType::Market,
            })
            .collect();
        if unwind.is_empty() {
            return false;
        }
        self.rollback_tiers.clear();
        let first = self.append_rollback(&unwind, book);
        self.phase = GroupPhase::RollingBack { tier: first };
        true
    }

    /// Appends `unwind` as rollback legs, in safe-order tiers after the rollback tiers already
    /// planned; returns the index of the first new tier.
    fn append_rollback(&mut self, unwind: &[LegIntent], book: &Book) -> usize {
        let base = self.legs.len();
        let first = self.rollback_tiers.len();
        for (i, l) in unwind.iter().enumerate() {
            let s = crate::intent::score(unwind, i, book);
            self.legs.push(GroupLeg::new(l.clone(), s, true));
        }
        self.rollback_tiers.extend(
            tiers(unwind, book)
                .into_iter()
                .map(|tier| tier.into_iter().map(|i| base + i).collect::<Vec<_>>()),
        );
        first
    }

    /// Forward fills reported after the rollback was planned (a leg's execution that arrives
    /// after its order ended: IB reports each leg of a combo on its own, late ones included):
    /// appends rollback legs for what the planned rollback does not undo, as tiers after the
    /// planned ones, and rolls back again from the first of them if the group had ended.
    /// Returns `false` when the planned rollback already covers every forward fill.
    pub fn plan_late_rollback(&mut self, book: &Book) -> bool {
        if !matches!(
            self.phase,
            GroupPhase::RollingBack { .. } | GroupPhase::RolledBack
        ) {
            return false;
        }
        // Net signed quantity per instrument of the forward fills and the planned undo.
        let mut net: Vec<(tradeguard_model::Instrument, i64)> = Vec::new();
        for l in &self.legs {
            let q = if l.rollback { l.intent.qty } else { l.filled() };
            let signed = l.intent.side.sign().saturating_mul(q);
            match net.iter_mut().find(|(i, _)| *i == l.intent.instrument) {
                Some((_, n)) => *n = n.saturating_add(signed),
                None => net.push((l.intent.instrument.clone(), signed)),
            }
        }
        let unwind: Vec<LegIntent> = net
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|(instrument, n)| LegIntent {
                instrument,
                side: if n > 0 {
                    tradeguard_model::Side::Sell
                } else {
                    tradeguard_model::Side::Buy
                },
                qty: n.saturating_abs(),
                order_type: tradeguard_model::OrderType::Market,
            })
            .collect();
        if unwind.is_empty() {
            return false;
        }
        let first_new_tier = self.append_rollback(&unwind, book);
        if self.phase == GroupPhase::RolledBack {
            self.phase = GroupPhase::RollingBack {
                tier: first_new_tier,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::Purpose;
    use tradeguard_model::{Instrument, OrderType, Price, Side, StatusReason, stubs};

    fn ic() -> OrderIntent {
        OrderIntent::new(Purpose::Open, stubs::account())
            .leg(stubs::put(440), Side::Sell, 2, OrderType::Market)
            .leg(stubs::put(430), Side::Buy, 2, OrderType::Market)
            .leg(stubs::call(460), Side::Sell, 2, OrderType::Market)
            .leg(stubs::call(470), Side::Buy, 2, OrderType::Market)
    }

    fn upd(id: i64, status: OrderStatus, filled: i64) -> OrderUpdate {
        OrderUpdate {
            order_id: OrderId(id),
            status,
            filled,
            remaining: 0,
            avg_fill_price: None,
            reason: Some(StatusReason {
                code: "x".into(),
                text: "y".into(),
            }),
            ts: stubs::ts(),
        }
    }

    fn exec(id: i64, inst: Instrument, side: Side, qty: i64) -> Execution {
        Execution {
            exec_id: tradeguard_model::ExecId(format!("e{id}-{qty}")),
            order_id: Some(OrderId(id)),
            account: stubs::account(),
            instrument: inst,
            side,
            qty,
            price: Price::from_raw(10_000),
            ts: stubs::ts(),
            commission: None,
            liquidity: None,
        }
    }

    #[test]
    fn leg_state_machine_refuses_illegal_moves() {
        assert!(LegState::Pending.can_transition(LegState::Sent));
        assert!(!LegState::Pending.can_transition(LegState::Filled));
        assert!(!LegState::Filled.can_transition(LegState::Cancelled));
        assert!(!LegState::Rejected.can_transition(LegState::Sent));
        assert!(LegState::PartiallyFilled.can_transition(LegState::TimedOut));
    }

    #[test]
    fn tiers_progress_and_fills_are_validated() {
        let mut g = Group::legged(GroupId(1), ic(), &Book::new(), stubs::ts());
        assert_eq!(g.current_tier(), vec![1, 3]);
        g.mark_sent(1, OrderId(10), stubs::ts());
        g.mark_sent(3, OrderId(11), stubs::ts());
        assert_eq!(g.tier_outcome(), TierOutcome::Working);
        assert_eq!(
            g.on_exec(&exec(10, stubs::put(440), Side::Buy, 1))
                .unwrap_err()
                .code(),
            "fill.wrong_instrument"
        );
        assert_eq!(
            g.on_exec(&exec(10, stubs::put(430), Side::Sell, 1))
                .unwrap_err()
                .code(),
            "fill.wrong_side"
        );
        assert_eq!(g.on_exec(&exec(10, stubs::put(430), Side::Buy, 1)), Ok(1));
        assert_eq!(g.legs[1].state, LegState::PartiallyFilled);
        assert_eq!(
            g.on_exec(&exec(10, stubs::put(430), Side::Buy, 2))
                .unwrap_err()
                .code(),
            "fill.overfill"
        );
        assert!(g.on_status(&upd(10, OrderStatus::Filled, 2)));
        assert!(g.on_status(&upd(11, OrderStatus::Filled, 2)));
        assert_eq!(g.tier_outcome(), TierOutcome::Filled);
        g.phase = GroupPhase::Legging { tier: 1 };
        assert_eq!(g.current_tier(), vec![0, 2]);
    }

    #[test]
    fn failed_tier_rolls_back_in_safe_order() {
        let mut g = Group::legged(GroupId(1), ic(), &Book::new(), stubs::ts());
        g.mark_sent(1, OrderId(10), stubs::ts());
        g.mark_sent(3, OrderId(11), stubs::ts());
        g.on_status(&upd(10, OrderStatus::Filled, 2));
        g.legs[3].timeout_cancel = true;
        g.on_status(&upd(11, OrderStatus::Cancelled, 0));
        assert_eq!(g.legs[3].state, LegState::TimedOut);
        assert_eq!(g.tier_outcome(), TierOutcome::Failed);
        let mut book = Book::new();
        book.set(&stubs::put(430), 2);
        assert!(g.plan_rollback(&book));
        assert_eq!(g.rollback_tiers, vec![vec![4]]);
        assert_eq!(g.legs[4].intent.side, Side::Sell);
        assert_eq!(g.legs[4].intent.qty, 2);
        assert!(g.legs[4].rollback);
    }

    #[test]
    fn a_fill_reported_after_the_rollback_was_planned_is_undone_too() {
        let mut g = Group::legged(GroupId(1), ic(), &Book::new(), stubs::ts());
        g.mark_sent(1, OrderId(10), stubs::ts());
        g.mark_sent(3, OrderId(11), stubs::ts());
        g.on_status(&upd(10, OrderStatus::Filled, 2));
        g.on_status(&upd(11, OrderStatus::Cancelled, 0));
        let mut book = Book::new();
        book.set(&stubs::put(430), 2);
        assert!(g.plan_rollback(&book));
        assert!(
            !g.plan_late_rollback(&book),
            "the rollback covers every fill"
        );
        g.phase = GroupPhase::RolledBack;
        // The cancelled 470 C reports 1 bought after all.
        assert_eq!(g.on_exec(&exec(11, stubs::call(470), Side::Buy, 1)), Ok(3));
        assert!(g.plan_late_rollback(&book));
        assert_eq!(g.phase, GroupPhase::RollingBack { tier: 1 });
        assert_eq!(g.rollback_tiers, vec![vec![4], vec![5]]);
        let late = &g.legs[5];
        assert!(late.rollback);
        assert_eq!(
            (
                late.intent.instrument.clone(),
                late.intent.side,
                late.intent.qty
            ),
            (stubs::call(470), Side::Sell, 1)
        );
        assert!(!g.plan_late_rollback(&book), "planned once");
    }

    #[test]
    fn oversized_legs_become_child_orders_in_their_tier() {
        assert_eq!(split_qty(500, 100), vec![100; 5]);
        assert_eq!(split_qty(250, 100), vec![100, 100, 50]);
        assert_eq!(split_qty(100, 100), vec![100]);
        assert_eq!(split_qty(7, 0), vec![7]);
        // Closing a 300-lot call spread (only 250 of the short): the short's children are
        // bought back (tier 0) before any child of the protection is sold (tier 1).
        let mut book = Book::new();
        book.set(&stubs::call(460), -300);
        book.set(&stubs::call(470), 300);
        let exit = OrderIntent::new(Purpose::Flatten, stubs::account())
            .leg(stubs::call(470), Side::Sell, 300, OrderType::Market)
            .leg(stubs::call(460), Side::Buy, 250, OrderType::Market);
        let mut g = Group::legged_split(GroupId(3), exit.clone(), &book, stubs::ts(), 100);
        assert_eq!(g.intent, exit, "the intent keeps its legs whole");
        let legs: Vec<(Instrument, i64, i32)> = g
            .legs
            .iter()
            .map(|l| (l.intent.instrument.clone(), l.intent.qty, l.score))
            .collect();
        assert_eq!(
            legs,
            vec![
                (stubs::call(470), 100, -50),
                (stubs::call(470), 100, -50),
                (stubs::call(470), 100, -50),
                (stubs::call(460), 100, 100),
                (stubs::call(460), 100, 100),
                (stubs::call(460), 50, 100),
            ]
        );
        assert_eq!(g.tiers, vec![vec![3, 4, 5], vec![0, 1, 2]]);
        assert_eq!(
            Group::legged(GroupId(4), exit, &book, stubs::ts())
                .legs
                .len(),
            2,
            "unsplit without a limit"
        );
        // Each child is its own order: fills match by order id, each is capped at its size.
        for (i, oid) in [(3, 20), (4, 21), (5, 22)] {
            g.mark_sent(i, OrderId(oid), stubs::ts());
        }
        assert_eq!(
            g.on_exec(&exec(21, stubs::call(460), Side::Buy, 100)),
            Ok(4)
        );
        assert_eq!(
            g.on_exec(&exec(22, stubs::call(460), Side::Buy, 60))
                .unwrap_err()
                .code(),
            "fill.overfill"
        );
        g.on_status(&upd(20, OrderStatus::Filled, 100));
        assert_eq!(g.tier_outcome(), TierOutcome::Working);
        g.on_status(&upd(21, OrderStatus::Filled, 100));
        g.on_status(&upd(22, OrderStatus::Filled, 50));
        assert_eq!(g.tier_outcome(), TierOutcome::Filled);
        // A rollback reverses each filled child (each within the limit).
        assert!(g.plan_rollback(&book));
        let back: Vec<(Side, i64)> = g.legs[6..]
            .iter()
            .map(|l| (l.intent.side, l.intent.qty))
            .collect();
        assert_eq!(
            back,
            vec![(Side::Sell, 100), (Side::Sell, 100), (Side::Sell, 50)]
        );
    }

    #[test]
    fn combo_units_and_ratios() {
        let i = OrderIntent::new(Purpose::Open, stubs::account())
            .leg(stubs::put(440), Side::Sell, 2, OrderType::Market)
            .leg(stubs::put(430), Side::Buy, 4, OrderType::Market);
        let mut g = Group::combo(GroupId(2), i, &Book::new(), stubs::ts());
        assert_eq!(g.combo_qty, Some(2));
        assert_eq!((g.legs[0].ratio, g.legs[1].ratio), (1, 2));
        g.mark_sent(0, OrderId(5), stubs::ts());
        g.mark_sent(1, OrderId(5), stubs::ts());
        g.on_status(&upd(5, OrderStatus::PartiallyFilled, 1));
        assert_eq!((g.legs[0].filled(), g.legs[1].filled()), (1, 2));
        g.on_status(&upd(5, OrderStatus::Filled, 2));
        assert_eq!(g.tier_outcome(), TierOutcome::Filled);
    }
}
