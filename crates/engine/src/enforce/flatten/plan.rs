//! The pure planning step of a flatten: from the guard's picture (positions, quotes, strategy
//! book, close jobs, the assignment guard's closes, trading state, dry-run, market hours) to
//! the exact orders, their send order (the coordinator's legging tiers), estimates and warnings.
//! The same function runs at preview and again at confirmation (to detect a stale preview).

use crate::alert::Severity;
use crate::assignment::{ArmAt, ClosePhase, EmergencyClose, EmergencyOrderState, MarketHours};
use crate::book::Book;
use crate::enforce::closer::{CloseTracker, close_intent};
use crate::enforce::evaluator::CloseLeg;
use crate::enforce::flatten::error::FlattenError;
use crate::enforce::flatten::types::{
    ExcludedPosition, ExcludedReason, FlattenAction, FlattenOrder, FlattenScope, FlattenWarning,
    PriceEstimate, QuoteQuality, QuoteSide, WarningKind,
};
use crate::engine::IntentCheck;
use crate::gate::TradingState;
use crate::intent::{LegIntent, OrderIntent, Purpose, tiers};
use crate::live::{LiveBook, PositionView};
use crate::strategies::StrategyBook;
use std::collections::BTreeSet;
use std::time::Duration;
use tradeguard_model::{
    AccountId, Instrument, InstrumentId, Money, OrderType, Side, StrategyId, StrategyState,
    Timestamp,
};

/// Everything the plan reads.
pub(crate) struct Inputs<'a> {
    pub now: Timestamp,
    pub stale_after: Duration,
    pub positions: &'a [PositionView],
    pub book: &'a LiveBook,
    pub strategies: &'a StrategyBook,
    pub closes: &'a CloseTracker,
    pub assignment: &'a [EmergencyClose],
    pub trading: TradingState,
    pub dry_run: bool,
    pub forced_unwind: &'a BTreeSet<AccountId>,
    pub hours: &'a dyn MarketHours,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub account: AccountId,
    pub purpose: Purpose,
    /// Strategy the close belongs to (strategy scope only).
    pub strategy: Option<StrategyId>,
    pub orders: Vec<FlattenOrder>,
    pub excluded: Vec<ExcludedPosition>,
    pub warnings: Vec<FlattenWarning>,
    pub armed_until: Option<Timestamp>,
    pub estimated_cash: Money,
    pub estimate_complete: bool,
    pub will_send: bool,
    pub dry_run: bool,
}

impl Plan {
    /// What must not change between preview and confirmation.
    pub fn fingerprint(&self) -> (Purpose, bool, Vec<(InstrumentId, Side, i64)>) {
        (
            self.purpose,
            self.dry_run,
            self.orders
                .iter()
                .map(|o| (o.instrument.id(), o.side, o.qty))
                .collect(),
        )
    }

    /// The close legs (signed positions to take to zero) in send order.
    pub fn close_legs(&self) -> Vec<CloseLeg> {
        self.orders
            .iter()
            .map(|o| CloseLeg {
                instrument: o.instrument.clone(),
                qty: -o.side.sign().saturating_mul(o.qty),
            })
            .collect()
    }

    /// The intent the close job of this plan hands to the coordinator (legs in plan order).
    pub fn intent(&self) -> OrderIntent {
        close_intent(
            self.purpose,
            self.account.clone(),
            self.strategy,
            &self.close_legs(),
        )
    }

    /// Takes in what the coordinator's gate says of [`Plan::intent`] now: each order's child
    /// orders, and a warning per refusal (of an order alone, or of the close as a whole when
    /// no order's own refusal explains it).
    pub fn apply_gate(&mut self, check: &IntentCheck) {
        let mut codes = Vec::new();
        for (o, leg) in self.orders.iter_mut().zip(&check.legs) {
            o.child_orders.clone_from(&leg.child_orders);
            o.gate_refusal = leg.refusal.as_ref().map(|r| r.code().to_owned());
            if let Some(r) = &leg.refusal {
                codes.push(r.code());
                self.warnings.push(warn(
                    Severity::Critical,
                    WarningKind::GateRefusal {
                        instrument: Some(o.instrument.id()),
                        refusal: r.code().to_owned(),
                    },
                    format!(
                        "{}: the pre-trade gate would refuse this order now: {r} ({})",
                        o.instrument.id(),
                        r.code()
                    ),
                ));
            }
        }
        if let Some(r) = check
            .refusal
            .as_ref()
            .filter(|r| !codes.contains(&r.code()))
        {
            self.warnings.push(warn(
                Severity::Critical,
                WarningKind::GateRefusal {
                    instrument: None,
                    refusal: r.code().to_owned(),
                },
                format!(
                    "the pre-trade gate would refuse this close now: {r} ({})",
                    r.code()
                ),
            ));
        }
    }
}

fn warn(severity: Severity, kind: WarningKind, message: String) -> FlattenWarning {
    let code = match &kind {
        WarningKind::BrokenStrategy { .. } => "flatten.warn.broken_strategy",
        WarningKind::MarketClosed { .. } => "flatten.warn.market_closed",
        WarningKind::TradingHalted => "flatten.warn.trading_halted",
        WarningKind::TradingReducing => "flatten.warn.trading_reducing",
        WarningKind::QuoteMissing { .. } => "flatten.warn.quote_missing",
        WarningKind::QuoteStale { .. } => "flatten.warn.quote_stale",
        WarningKind::DryRun => "flatten.warn.dry_run",
        WarningKind::DryRunDoesNotStopUnwind => "flatten.warn.dry_run_does_not_stop_unwind",
        WarningKind::NothingToFlatten => "flatten.warn.nothing_to_flatten",
        WarningKind::PositionsExcluded { .. } => "flatten.warn.positions_excluded",
        WarningKind::ForcedUnwindOn => "flatten.warn.forced_unwind_on",
        WarningKind::ForcedUnwindUnchanged { .. } => "flatten.warn.forced_unwind_unchanged",
        WarningKind::ForcedUnwindPersists => "flatten.warn.forced_unwind_persists",
        WarningKind::ForcedUnwindOff => "flatten.warn.forced_unwind_off",
        WarningKind::AssignmentCloseActive { .. } => "flatten.warn.assignment_close_active",
        WarningKind::LeavesShortsUncovered { .. } => "flatten.warn.leaves_shorts_uncovered",
        WarningKind::GateRefusal { .. } => "flatten.warn.gate_refusal",
    };
    FlattenWarning {
        code: code.to_owned(),
        severity,
        message,
        kind,
    }
}

/// `want` limited to what is held with the same sign.
fn clamp(want: i64, held: i64) -> i64 {
    if want == 0 || held == 0 || want.signum() != held.signum() {
        0
    } else {
        want.signum() * want.abs().min(held.abs())
    }
}

fn held(inp: &Inputs<'_>, account: &AccountId, id: &InstrumentId) -> i64 {
    inp.positions
        .iter()
        .find(|p| &p.account == account && &p.instrument.id() == id)
        .map_or(0, |p| p.qty)
}

/// Adds `qty` of `instrument` to the candidates (merging the same instrument).
fn add(c: &mut Vec<(Instrument, i64)>, instrument: &Instrument, qty: i64) {
    if qty == 0 {
        return;
    }
    match c.iter_mut().find(|(i, _)| i == instrument) {
        Some(e) => e.1 = e.1.saturating_add(qty),
        None => c.push((instrument.clone(), qty)),
    }
}

fn active(c: &EmergencyClose) -> bool {
    matches!(c.phase, ClosePhase::Armed | ClosePhase::Working)
}

/// Plans `action` on the current picture.
pub(crate) fn plan(action: &FlattenAction, inp: &Inputs<'_>) -> Result<Plan, FlattenError> {
    let mut warnings = Vec::new();
    let mut broken: Vec<StrategyId> = Vec::new();
    let (account, strategy, candidates, unwind) = match action {
        FlattenAction::Flatten { scope } => match scope {
            FlattenScope::Strategy { strategy } => {
                let s = inp
                    .strategies
                    .get(*strategy)
                    .ok_or(FlattenError::UnknownStrategy(*strategy))?;
                let mut c = Vec::new();
                if s.state != StrategyState::Closed {
                    let mut want: Vec<(Instrument, i64)> = Vec::new();
                    for l in &s.legs {
                        add(&mut want, &l.instrument, l.qty);
                    }
                    if s.state == StrategyState::Broken {
                        // Positions its assignment close kept on purpose belong to it too.
                        for ec in inp.assignment.iter().filter(|e| e.strategy == s.id) {
                            for k in &ec.kept {
                                add(&mut want, &k.instrument, k.qty);
                            }
                        }
                    }
                    for (i, q) in want {
                        add(&mut c, &i, clamp(q, held(inp, &s.account, &i.id())));
                    }
                }
                (s.account.clone(), Some(s.id), c, None)
            }
            FlattenScope::Account { account } => {
                let mut c = Vec::new();
                for p in inp.positions.iter().filter(|p| &p.account == account) {
                    add(&mut c, &p.instrument, p.qty);
                }
                (account.clone(), None, c, None)
            }
            FlattenScope::Position {
                account,
                instrument,
            } => {
                let mut c = Vec::new();
                if let Some(p) = inp
                    .positions
                    .iter()
                    .find(|p| &p.account == account && &p.instrument.id() == instrument)
                {
                    add(&mut c, &p.instrument, p.qty);
                }
                (account.clone(), None, c, None)
            }
        },
        FlattenAction::ForcedUnwind { account, on } => {
            let mut c = Vec::new();
            if *on {
                for p in inp.positions.iter().filter(|p| &p.account == account) {
                    add(&mut c, &p.instrument, p.qty);
                }
            }
            (account.clone(), None, c, Some(*on))
        }
    };

    // Positions another close already owns.
    let mut keep = Vec::new();
    let mut excluded = Vec::new();
    for (instrument, qty) in candidates {
        let id = instrument.id();
        let job = inp
            .closes
            .jobs()
            .find(|j| j.account == account && j.instruments().any(|i| i == id))
            .map(|j| j.id);
        if let Some(job) = job {
            excluded.push(ExcludedPosition {
                instrument,
                qty,
                reason: ExcludedReason::AlreadyClosing { job },
            });
            continue;
        }
        let assigned = inp.assignment.iter().find(|e| {
            e.account == account
                && active(e)
                && e.orders.iter().any(|o| {
                    o.planned.instrument.id() == id
                        && matches!(
                            o.state,
                            EmergencyOrderState::Waiting
                                | EmergencyOrderState::Deferred
                                | EmergencyOrderState::Sent
                        )
                })
        });
        // A forced unwind closes everything (the enforcer does not exclude these); a flatten
        // leaves them to the assignment guard.
        if let (Some(e), None) = (assigned, unwind) {
            excluded.push(ExcludedPosition {
                instrument,
                qty,
                reason: ExcludedReason::AssignmentClose {
                    strategy: e.strategy,
                    phase: e.phase,
                },
            });
            continue;
        }
        keep.push((instrument, qty));
    }
    for e in inp
        .assignment
        .iter()
        .filter(|e| e.account == account && active(e))
    {
        let concerned = match action {
            FlattenAction::Flatten {
                scope: FlattenScope::Strategy { strategy },
            } => e.strategy == *strategy,
            _ => true,
        };
        if concerned {
            warnings.push(warn(
                Severity::Warning,
                WarningKind::AssignmentCloseActive {
                    strategy: e.strategy,
                    phase: e.phase,
                },
                format!(
                    "the assignment guard's emergency close of strategy {} is {:?}{}",
                    e.strategy,
                    e.phase,
                    if unwind.is_some() {
                        ": the unwind may send orders for the same positions"
                    } else {
                        ": its positions are left to it"
                    }
                ),
            ));
        }
    }
    if !excluded.is_empty() {
        warnings.push(warn(
            Severity::Info,
            WarningKind::PositionsExcluded {
                count: excluded.len(),
            },
            format!(
                "{} position(s) left out: another close already covers them",
                excluded.len()
            ),
        ));
    }

    // Broken strategies in scope: only the emergency path may close them.
    if let Some(s) = strategy.and_then(|id| inp.strategies.get(id))
        && s.state == StrategyState::Broken
    {
        broken.push(s.id);
    }
    for (instrument, _) in &keep {
        for l in inp.strategies.leg_of(&account, &instrument.id()) {
            if l.state == StrategyState::Broken && !broken.contains(&l.strategy) {
                broken.push(l.strategy);
            }
        }
    }
    if !keep.is_empty() || strategy.is_some() {
        for id in &broken {
            let reason = inp
                .strategies
                .get(*id)
                .and_then(|s| s.broken_reason.as_ref())
                .map(|r| r.code().to_owned());
            warnings.push(warn(
                Severity::Critical,
                WarningKind::BrokenStrategy {
                    strategy: *id,
                    reason: reason.clone(),
                },
                format!(
                    "strategy {id} is Broken ({}): a normal close is refused; this close goes through the emergency path",
                    reason.as_deref().unwrap_or("no reason recorded")
                ),
            ));
        }
    }
    let mut purpose = Purpose::Flatten;
    if unwind.is_some() || !broken.is_empty() {
        purpose = Purpose::Emergency;
    }
    match inp.trading {
        TradingState::Halted if unwind.is_none() => {
            purpose = Purpose::Emergency;
            warnings.push(warn(
                Severity::Warning,
                WarningKind::TradingHalted,
                "trading is HALTED: only emergency exits pass the gate, so this close goes through the emergency path".into(),
            ));
        }
        TradingState::Reducing => warnings.push(warn(
            Severity::Info,
            WarningKind::TradingReducing,
            "trading is REDUCING: closing orders still pass".into(),
        )),
        _ => {}
    }
    if unwind.is_none() && inp.forced_unwind.contains(&account) {
        warnings.push(warn(
            Severity::Info,
            WarningKind::ForcedUnwindOn,
            format!(
                "forced unwind of {account} is on: the guard is already closing every position"
            ),
        ));
    }

    // Orders in the coordinator's send order (its legging tiers over the account's book).
    let mut ob = Book::new();
    for p in inp.positions.iter().filter(|p| p.account == account) {
        ob.set(&p.instrument, p.qty);
    }
    let legs: Vec<LegIntent> = keep
        .iter()
        .map(|(i, q)| LegIntent {
            instrument: i.clone(),
            side: if *q > 0 { Side::Sell } else { Side::Buy },
            qty: q.saturating_abs(),
            order_type: OrderType::Market,
        })
        .collect();
    // Shorts this close leaves without their protection (the engine hedges them at market).
    let mut after = ob.clone();
    for l in &legs {
        after.apply(&l.instrument, l.signed_qty());
    }
    let before = ob.naked_shorts();
    for (k, n) in after.naked_shorts() {
        if n > before.get(&k).copied().unwrap_or(0) {
            warnings.push(warn(
                Severity::Warning,
                WarningKind::LeavesShortsUncovered {
                    underlying: k.underlying.clone(),
                    right: k.right,
                    contracts: n,
                },
                format!(
                    "this close sells the protection of {n} short {} {:?} contract(s) that stay open: the guard's hedge manager will buy them back at market",
                    k.underlying, k.right
                ),
            ));
        }
    }
    let mut orders = Vec::new();
    let mut cash = Money::ZERO;
    let mut complete = true;
    for (step, tier) in tiers(&legs, &ob).into_iter().enumerate() {
        for idx in tier {
            let Some(l) = legs.get(idx) else { continue };
            let id = l.instrument.id();
            let estimate = estimate(inp, l, &mut warnings);
            let order_cash = estimate.as_ref().and_then(|e| {
                let n = e.price.notional(l.qty, l.instrument.multiplier()).ok()?;
                if l.side == Side::Buy {
                    n.checked_neg().ok()
                } else {
                    Some(n)
                }
            });
            match order_cash.map(|c| cash.checked_add(c)) {
                Some(Ok(c)) => cash = c,
                _ => complete = false,
            }
            let mut strategies: Vec<StrategyId> = inp
                .strategies
                .leg_of(&account, &id)
                .iter()
                .map(|r| r.strategy)
                .collect();
            strategies.dedup();
            orders.push(FlattenOrder {
                step: step + 1,
                instrument: l.instrument.clone(),
                side: l.side,
                qty: l.qty,
                order_type: l.order_type,
                position: held(inp, &account, &id),
                strategies,
                estimate,
                estimated_cash: order_cash,
                child_orders: Vec::new(),
                gate_refusal: None,
            });
        }
    }

    // Market hours: a flatten is held (armed) until the regular open; a forced unwind is not.
    let mut armed_until = None;
    if !inp.hours.is_open(inp.now) && (!orders.is_empty() || unwind == Some(true)) {
        let next_open = inp.hours.release_time(inp.now, ArmAt::Open);
        let armed = unwind.is_none();
        if armed {
            armed_until = Some(next_open);
        }
        warnings.push(warn(
            Severity::Warning,
            WarningKind::MarketClosed { next_open, armed },
            if armed {
                format!("market closed: the orders are armed and sent at the regular open ({next_open}); estimates will have moved by then")
            } else {
                format!("market closed: the unwind's orders go out at once and the broker holds or rejects them until the open ({next_open})")
            },
        ));
    }
    let dry_run = inp.dry_run && unwind.is_none();
    match unwind {
        None => {
            if orders.is_empty() {
                warnings.push(warn(
                    Severity::Info,
                    WarningKind::NothingToFlatten,
                    "nothing to flatten: no open position in scope is left to close".into(),
                ));
            }
            if dry_run {
                warnings.push(warn(
                    Severity::Warning,
                    WarningKind::DryRun,
                    "dry-run is on: nothing will be sent; the confirmation is only audited".into(),
                ));
            }
        }
        Some(on) => {
            if inp.forced_unwind.contains(&account) == on {
                warnings.push(warn(
                    Severity::Info,
                    WarningKind::ForcedUnwindUnchanged { on },
                    format!(
                        "forced unwind of {account} is already {}",
                        if on { "on" } else { "off" }
                    ),
                ));
            }
            if on {
                warnings.push(warn(
                    Severity::Critical,
                    WarningKind::ForcedUnwindPersists,
                    format!("forced unwind of {account}: every position is closed through the emergency path, opening orders are refused, and it stays on across restarts until a person switches it off"),
                ));
                if inp.dry_run {
                    warnings.push(warn(
                        Severity::Warning,
                        WarningKind::DryRunDoesNotStopUnwind,
                        "dry-run is on but does not stop a forced unwind: its orders will be sent"
                            .into(),
                    ));
                }
            } else {
                warnings.push(warn(
                    Severity::Warning,
                    WarningKind::ForcedUnwindOff,
                    format!("forced unwind of {account} off: no new unwind closes; close jobs already queued or working continue"),
                ));
            }
        }
    }
    let will_send = match unwind {
        None => !dry_run && !orders.is_empty(),
        Some(on) => on && !orders.is_empty(),
    };
    Ok(Plan {
        account,
        purpose,
        strategy,
        orders,
        excluded,
        warnings,
        armed_until,
        estimated_cash: cash,
        estimate_complete: complete,
        will_send,
        dry_run,
    })
}

/// Bid for a sell, ask for a buy, with its age; warns when missing or stale.
fn estimate(
    inp: &Inputs<'_>,
    l: &LegIntent,
    warnings: &mut Vec<FlattenWarning>,
) -> Option<PriceEstimate> {
    let id = l.instrument.id();
    let q = inp.book.quote(&id);
    // A side with no market (none, or the venue has no data) is a missing quote.
    let (price, side) = match (q, l.side) {
        (Some(q), Side::Sell) => (
            q.bid.unwrap_or(tradeguard_model::Price::ZERO),
            QuoteSide::Bid,
        ),
        (Some(q), Side::Buy) => (
            q.ask.unwrap_or(tradeguard_model::Price::ZERO),
            QuoteSide::Ask,
        ),
        (None, _) => (tradeguard_model::Price::ZERO, QuoteSide::Bid),
    };
    let Some(q) = q.filter(|_| price.is_positive()) else {
        warnings.push(warn(
            Severity::Warning,
            WarningKind::QuoteMissing {
                instrument: id.clone(),
            },
            format!(
                "{id}: no usable {} quote; the estimate leaves this order out",
                if l.side == Side::Sell { "bid" } else { "ask" }
            ),
        ));
        return None;
    };
    let age = inp.now.duration_since(q.ts);
    let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    let quality = if age > inp.stale_after {
        warnings.push(warn(
            Severity::Warning,
            WarningKind::QuoteStale {
                instrument: id.clone(),
                age_ms,
            },
            format!(
                "{id}: the quote is {} s old; the estimate may be off",
                age.as_secs()
            ),
        ));
        QuoteQuality::Stale
    } else {
        QuoteQuality::Fresh
    };
    Some(PriceEstimate {
        price,
        side,
        quote_age_ms: age_ms,
        quality,
    })
}
