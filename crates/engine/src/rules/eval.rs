//! Pure rule evaluation: config + strategy views + position views + account snapshots + now
//! → [`Decision`]s and alerts. No I/O, no clock, no randomness; the only memory is the
//! [`RuleState`] the caller passes in.
//!
//! - [`evaluate`] checks every enabled rule against every subject in scope.
//! - [`evaluate_position`] checks only what one position event can change: the rules on that
//!   position, on the strategies holding it, on its account, and the global position cap.
//!   Build the [`EvalIndex`] once per set of positions/strategies (not per mark change).
//!
//! Closes: position and account rules use [`Purpose::Flatten`], strategy exits
//! [`Purpose::Close`]; never Emergency. Whatever belongs to a Broken strategy is left to the
//! assignment guard ([`Outcome::LeftToAssignmentGuard`], no intent). A missing or stale mark,
//! a missing underlying price or stale account values give [`Outcome::CannotEvaluate`].
//! In dry-run (rule or global) the decision carries no intents, only `would_send`.

use super::config::{RiskConfig, Rule, RuleAction, RuleKind};
use super::decision::{AccountMarks, Decision, Outcome, RuleState, Subject, alert_key};
use crate::alert::{Alert, Severity};
use crate::intent::{OrderIntent, Purpose};
use crate::live::{MarkStatus, PositionView};
use crate::strategies::StrategyView;
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use tradeguard_model::{
    AccountId, AccountSnapshot, Instrument, InstrumentId, LegRole, Money, OrderType, Price, SCALE,
    Side, StrategyId, StrategyState, Timestamp,
};

/// The exchange's calendar at `now`: the trading date and today's close (the caller has the
/// market calendar; [`Session::fixed_offset`] is a simple stand-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Exchange-local date.
    pub today: NaiveDate,
    /// Today's regular close.
    pub close: Timestamp,
}

impl Session {
    /// Session for an exchange at a fixed UTC offset (minutes) closing at `close_h:close_m`
    /// local time (no DST: pass the offset in effect).
    pub fn fixed_offset(
        now: Timestamp,
        utc_offset_minutes: i32,
        close_h: u32,
        close_m: u32,
    ) -> Self {
        let offset = chrono::TimeDelta::minutes(i64::from(utc_offset_minutes));
        let local = now.to_datetime().naive_utc() + offset;
        let today = local.date();
        let close_local = today
            .and_hms_opt(close_h.min(23), close_m.min(59), 0)
            .unwrap_or(local);
        let close = Timestamp::from_secs((close_local - offset).and_utc().timestamp());
        Self { today, close }
    }
}

/// Everything the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    /// Rules.
    pub config: &'a RiskConfig,
    /// Strategy views (from [`crate::strategies::StrategyBook::views`]).
    pub strategies: &'a [StrategyView],
    /// Position rows (from [`crate::live::LiveBook::positions`]).
    pub positions: &'a [PositionView],
    /// Latest account values.
    pub accounts: &'a [AccountSnapshot],
    /// Underlying prices by symbol (pin risk).
    pub spots: &'a HashMap<String, Price>,
    /// Exchange date and close.
    pub session: Session,
    /// Now.
    pub now: Timestamp,
}

/// What the evaluation produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Every decision (fired, cannot evaluate, left to the assignment guard).
    pub decisions: Vec<Decision>,
    /// Alerts for (rule, subject) pairs that started firing / became unevaluable.
    pub alerts: Vec<Alert>,
    /// Rule × subject checks performed (for the status line).
    pub checks: u64,
}

impl Evaluation {
    /// Every intent to submit, in decision order.
    pub fn intents(&self) -> impl Iterator<Item = &OrderIntent> {
        self.decisions.iter().flat_map(|d| d.intents.iter())
    }
}

type PosKey = (AccountId, InstrumentId);

/// Lookups built once per set of positions and strategies.
#[derive(Debug, Clone, Default)]
pub struct EvalIndex {
    position: HashMap<PosKey, usize>,
    /// Strategies (indices) holding each position.
    holders: HashMap<PosKey, Vec<usize>>,
    /// Quantity of each position claimed by Broken strategies.
    broken_qty: HashMap<PosKey, i64>,
    /// Positions that are a protective leg of a strategy with short legs.
    protection: HashSet<PosKey>,
    account: HashMap<AccountId, usize>,
}

impl EvalIndex {
    /// Builds the index for `input`.
    pub fn build(input: &EvalInput<'_>) -> Self {
        let mut ix = Self::default();
        for (i, p) in input.positions.iter().enumerate() {
            ix.position
                .insert((p.account.clone(), p.instrument.id()), i);
        }
        for (si, s) in input.strategies.iter().enumerate() {
            let has_short = s.legs.iter().any(|l| l.role == LegRole::Short);
            for l in &s.legs {
                let key = (s.account.clone(), l.instrument.id());
                if s.state == StrategyState::Broken {
                    let e = ix.broken_qty.entry(key.clone()).or_default();
                    *e = e.saturating_add(l.qty);
                }
                if has_short && l.role == LegRole::Protection {
                    ix.protection.insert(key.clone());
                }
                ix.holders.entry(key).or_default().push(si);
            }
        }
        for (i, a) in input.accounts.iter().enumerate() {
            ix.account.insert(a.account.clone(), i);
        }
        ix
    }
}

/// Evaluates every enabled rule on every subject. Replaces the alert memory of `state`.
pub fn evaluate(input: &EvalInput<'_>, state: &mut RuleState) -> Evaluation {
    evaluate_indexed(input, &EvalIndex::build(input), state)
}

/// [`evaluate`] with an index the caller keeps (valid while the set of positions and
/// strategies is unchanged; marks may change).
pub fn evaluate_indexed(
    input: &EvalInput<'_>,
    ix: &EvalIndex,
    state: &mut RuleState,
) -> Evaluation {
    let mut ev = Eval::new(input, ix, state);
    ev.update_accounts(None);
    let accounts = ev.accounts_in_play();
    for rule in input.config.enabled_rules() {
        match &rule.kind {
            RuleKind::MaxContracts { .. } => {
                for p in input.positions {
                    ev.max_contracts(rule, p);
                }
            }
            RuleKind::PositionCap { max_positions } => ev.position_cap(rule, *max_positions),
            RuleKind::DailyLoss { .. }
            | RuleKind::MaxDrawdown { .. }
            | RuleKind::TrailingMaxLoss { .. } => {
                for a in &accounts {
                    ev.account_rule(rule, a);
                }
            }
            RuleKind::SessionFlatten { at, until, tz } => {
                for a in &accounts {
                    ev.session_flatten(rule, a, *at, *until, *tz);
                }
            }
            _ => {
                for s in input.strategies {
                    ev.strategy_rule(rule, s);
                }
            }
        }
    }
    // Trailing state of strategies that are gone is dropped.
    let live: HashSet<_> = input.strategies.iter().map(|s| s.id).collect();
    for m in ev.state.trailing.values_mut() {
        m.retain(|id, _| live.contains(id));
    }
    ev.state.pnl_window.retain(|(_, id), _| live.contains(id));
    ev.finish(true)
}

/// Evaluates only what an event on `input.positions[position]` can change (see module docs).
/// Alerts for pairs that clear are re-armed by the next full [`evaluate`].
pub fn evaluate_position(
    input: &EvalInput<'_>,
    ix: &EvalIndex,
    position: usize,
    state: &mut RuleState,
) -> Evaluation {
    let mut ev = Eval::new(input, ix, state);
    let Some(p) = input.positions.get(position) else {
        return ev.finish(false);
    };
    let key = (p.account.clone(), p.instrument.id());
    ev.update_accounts(Some(&p.account));
    let holders = ix.holders.get(&key).map_or(&[][..], Vec::as_slice);
    for rule in input.config.enabled_rules() {
        match &rule.kind {
            RuleKind::MaxContracts { .. } => ev.max_contracts(rule, p),
            RuleKind::PositionCap { max_positions } => ev.position_cap(rule, *max_positions),
            RuleKind::DailyLoss { .. }
            | RuleKind::MaxDrawdown { .. }
            | RuleKind::TrailingMaxLoss { .. } => ev.account_rule(rule, &p.account),
            RuleKind::SessionFlatten { at, until, tz } => {
                ev.session_flatten(rule, &p.account, *at, *until, *tz)
            }
            _ => {
                for &si in holders {
                    if let Some(s) = input.strategies.get(si) {
                        ev.strategy_rule(rule, s);
                    }
                }
            }
        }
    }
    ev.finish(false)
}

struct Eval<'a, 'i> {
    input: &'a EvalInput<'i>,
    ix: &'a EvalIndex,
    state: &'a mut RuleState,
    decisions: Vec<Decision>,
    checks: u64,
}

fn in_scope(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn close_leg(intent: OrderIntent, instrument: &Instrument, qty: i64) -> OrderIntent {
    let side = if qty > 0 { Side::Sell } else { Side::Buy };
    intent.leg(
        instrument.clone(),
        side,
        qty.saturating_abs(),
        OrderType::Market,
    )
}

/// `a × pct / 100 ≤ b`-style comparisons in i128 on raw fixed-point values.
fn pct_of(amount: Money, pct: u32) -> i128 {
    i128::from(amount.raw()) * i128::from(pct)
}

impl<'a, 'i> Eval<'a, 'i> {
    fn new(input: &'a EvalInput<'i>, ix: &'a EvalIndex, state: &'a mut RuleState) -> Self {
        Self {
            input,
            ix,
            state,
            decisions: Vec::new(),
            checks: 0,
        }
    }

    fn dry(&self, rule: &Rule) -> bool {
        (self.input.config.dry_run && !rule.common.placed_by_person) || rule.common.dry_run
    }

    /// Records a fired decision; `intents` are what flatten would send.
    fn fire(&mut self, rule: &Rule, subject: Subject, reason: String, intents: Vec<OrderIntent>) {
        let dry = self.dry(rule);
        let flatten = rule.common.action == RuleAction::Flatten;
        let (send, would) = match (flatten, dry) {
            (true, false) => (intents, Vec::new()),
            (true, true) => (Vec::new(), intents),
            (false, _) => (Vec::new(), Vec::new()),
        };
        self.push(rule, subject, Outcome::Fired, reason, send, would);
    }

    fn cannot(&mut self, rule: &Rule, subject: Subject, why: String) {
        let reason = format!(
            "cannot evaluate rule {} for {subject}: {why}",
            rule.common.id
        );
        self.push(
            rule,
            subject,
            Outcome::CannotEvaluate,
            reason,
            Vec::new(),
            Vec::new(),
        );
    }

    fn broken(&mut self, rule: &Rule, subject: Subject, reason: String) {
        let reason = format!("{reason}; the close is left to the assignment guard (Broken)");
        self.push(
            rule,
            subject,
            Outcome::LeftToAssignmentGuard,
            reason,
            Vec::new(),
            Vec::new(),
        );
    }

    fn push(
        &mut self,
        rule: &Rule,
        subject: Subject,
        outcome: Outcome,
        reason: String,
        intents: Vec<OrderIntent>,
        would_send: Vec<OrderIntent>,
    ) {
        let severity = match outcome {
            Outcome::CannotEvaluate => Severity::Warning,
            _ => rule.common.severity.into(),
        };
        self.decisions.push(Decision {
            rule_id: rule.common.id.clone(),
            rule: rule.kind.name(),
            subject,
            outcome,
            severity,
            action: rule.common.action,
            dry_run: self.dry(rule),
            reason,
            intents,
            would_send,
        });
    }

    fn finish(self, full: bool) -> Evaluation {
        let mut alerts = Vec::new();
        let mut fired = HashSet::with_capacity(self.decisions.len());
        for d in &self.decisions {
            let key = alert_key(&d.rule_id, &d.subject);
            fired.insert(key);
            if !self.state.alerted.contains(&key) {
                let dry = if d.dry_run { " [dry-run]" } else { "" };
                alerts.push(Alert {
                    ts: self.input.now,
                    severity: d.severity,
                    code: d.code(),
                    message: format!("{}{dry}", d.reason),
                    group: None,
                    stop: None,
                });
            }
        }
        if full {
            self.state.alerted = fired;
        } else {
            self.state.alerted.extend(fired);
        }
        Evaluation {
            decisions: self.decisions,
            alerts,
            checks: self.checks,
        }
    }

    // ---- position rules -------------------------------------------------------------

    fn max_contracts(&mut self, rule: &Rule, p: &PositionView) {
        let RuleKind::MaxContracts { max_contracts } = rule.kind else {
            return;
        };
        // Contracts: options and futures. Stock is held in shares (a covered call's 100 shares
        // are one contract's worth); flattening it would leave the call naked.
        if matches!(p.instrument, tradeguard_model::Instrument::Stock { .. })
            || !in_scope(&rule.common.accounts, p.account.as_str())
            || !in_scope(&rule.common.underlyings, p.instrument.underlying())
        {
            return;
        }
        self.checks += 1;
        let excess = p.qty.saturating_abs().saturating_sub(max_contracts);
        if excess <= 0 {
            return;
        }
        let subject = Subject::Position {
            account: p.account.clone(),
            instrument: p.instrument.id(),
        };
        let base = format!(
            "{}: {} {} exceeds the maximum of {max_contracts}",
            rule.common.id,
            p.instrument.id(),
            p.qty
        );
        let (closes, left) = self.reduce_by_units(p, excess);
        if closes.is_empty() {
            self.broken(rule, subject, base);
            return;
        }
        let tail = if left > 0 {
            format!("; {left} more belong to a Broken strategy (left to the assignment guard)")
        } else {
            String::new()
        };
        // The part no spread holds is this position's decision; each spread's units are that
        // strategy's own decision, so the close tracker keeps a spread's legs together (it
        // never sends part of a strategy's close, e.g. its protection alone).
        for (strategy, intent, what) in closes {
            let reason = format!("{base}: reducing by {excess}: {what}{tail}");
            let subject = match strategy {
                Some(strategy) => Subject::Strategy {
                    account: p.account.clone(),
                    strategy,
                },
                None => subject.clone(),
            };
            self.fire(rule, subject, reason, vec![intent]);
        }
    }

    /// Closes at least `excess` contracts of `p` without ever selling protection alone: first
    /// from the part no multi-leg strategy holds, then whole units of each (non-Broken)
    /// multi-leg strategy holding it, every leg in proportion (the coordinator buys the shorts
    /// back first). Every leg of a spread that breaches thus asks for the same units, and the
    /// close tracker keeps one job of them. Returns each close (the strategy whose units it
    /// closes, the intent, what it closes) and the contracts it could not reduce (held by a
    /// Broken strategy).
    fn reduce_by_units(
        &self,
        p: &PositionView,
        excess: i64,
    ) -> (Vec<(Option<StrategyId>, OrderIntent, String)>, i64) {
        let key = (p.account.clone(), p.instrument.id());
        let holders: Vec<(&StrategyView, i64)> = self
            .ix
            .holders
            .get(&key)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|&si| self.input.strategies.get(si))
            .filter(|s| s.legs.len() >= 2 || s.state == StrategyState::Broken)
            .filter_map(|s| {
                let q = s.legs.iter().find(|l| l.instrument.id() == key.1)?.qty;
                Some((s, q))
            })
            .collect();
        let held: i64 = holders.iter().map(|(_, q)| *q).sum();
        let mut closes = Vec::new();
        let mut left = excess;
        let free = p.qty.saturating_sub(held);
        if free != 0 && free.signum() == p.qty.signum() {
            let take = left.min(free.saturating_abs());
            closes.push((
                None,
                close_leg(
                    OrderIntent::new(Purpose::Flatten, p.account.clone()),
                    &p.instrument,
                    take * p.qty.signum(),
                ),
                format!("{take} held outside any spread"),
            ));
            left -= take;
        }
        for (s, q) in holders {
            if left <= 0 {
                break;
            }
            if s.state == StrategyState::Broken {
                continue;
            }
            let units = s.legs.iter().fold(0, |g, l| gcd(g, l.qty.saturating_abs()));
            let per_unit = q.saturating_abs() / units.max(1);
            if units == 0 || per_unit == 0 {
                continue;
            }
            let take = ((left + per_unit - 1) / per_unit).min(units);
            let mut intent =
                OrderIntent::new(Purpose::Flatten, s.account.clone()).for_strategy(s.id);
            for l in &s.legs {
                intent = close_leg(intent, &l.instrument, l.qty / units * take);
            }
            closes.push((
                Some(s.id),
                intent,
                format!("{take} of {units} unit(s) of {} ({})", s.name, s.id),
            ));
            left -= take * per_unit;
        }
        (closes, left.max(0))
    }

    /// Fires a flatten of exactly `p` (minus any part held by a Broken strategy).
    fn close_position(&mut self, rule: &Rule, p: &PositionView, subject: Subject, reason: String) {
        let key = (p.account.clone(), p.instrument.id());
        let broken = self.ix.broken_qty.get(&key).copied().unwrap_or(0);
        let free = p.qty.saturating_sub(broken);
        if broken != 0 && (free == 0 || free.signum() != p.qty.signum()) {
            self.broken(rule, subject, reason);
            return;
        }
        let intent = close_leg(
            OrderIntent::new(Purpose::Flatten, p.account.clone()),
            &p.instrument,
            free,
        );
        let reason = if broken != 0 {
            format!("{reason} (closing {free}; {broken} belong to a Broken strategy)")
        } else {
            reason
        };
        self.fire(rule, subject, reason, vec![intent]);
    }

    fn position_cap(&mut self, rule: &Rule, max_positions: usize) {
        let c = &rule.common;
        let scoped = |p: &&PositionView| {
            in_scope(&c.accounts, p.account.as_str())
                && in_scope(&c.underlyings, p.instrument.underlying())
        };
        self.checks += 1;
        let count = if c.accounts.is_empty() && c.underlyings.is_empty() {
            self.input.positions.len()
        } else {
            self.input.positions.iter().filter(scoped).count()
        };
        if count <= max_positions {
            return;
        }
        let excess = count - max_positions;
        // Candidates: positions with a usable mark that protect no short, smallest exposure first.
        let mut cands: Vec<(Money, &PositionView)> = Vec::new();
        let mut unranked: Vec<String> = Vec::new();
        let mut kept: Vec<String> = Vec::new();
        for p in self.input.positions.iter().filter(scoped) {
            let key = (p.account.clone(), p.instrument.id());
            if self.ix.protection.contains(&key) {
                kept.push(key.1.to_string());
                continue;
            }
            match (p.mark_status, p.market_value) {
                (MarkStatus::Fresh, Some(v)) => match v.checked_abs() {
                    Ok(a) => cands.push((a, p)),
                    Err(_) => unranked.push(key.1.to_string()),
                },
                _ => unranked.push(key.1.to_string()),
            }
        }
        cands.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.account.cmp(&b.1.account))
                .then_with(|| a.1.instrument.cmp(&b.1.instrument))
        });
        if !unranked.is_empty() {
            self.cannot(
                rule,
                Subject::Global,
                format!(
                    "no fresh mark to rank the exposure of {} (not considered for closing)",
                    unranked.join(", ")
                ),
            );
        }
        let base = format!(
            "{}: {count} open positions exceed the cap of {max_positions}",
            c.id
        );
        let chosen: Vec<&PositionView> = cands.iter().take(excess).map(|(_, p)| *p).collect();
        if chosen.len() < excess {
            self.fire(
                rule,
                Subject::Global,
                format!(
                    "{base}; only {} of {excess} can be closed automatically (kept as protection: {})",
                    chosen.len(),
                    if kept.is_empty() { "none".into() } else { kept.join(", ") }
                ),
                Vec::new(),
            );
        }
        for p in chosen {
            let subject = Subject::Position {
                account: p.account.clone(),
                instrument: p.instrument.id(),
            };
            let exposure = p
                .market_value
                .and_then(|v| v.checked_abs().ok())
                .unwrap_or_default();
            let reason = format!(
                "{base}: closing {} {} (exposure {exposure}, smallest first)",
                p.instrument.id(),
                p.qty
            );
            self.close_position(rule, p, subject, reason);
        }
    }

    // ---- account rules ---------------------------------------------------------------

    fn account_fresh(&self, a: &AccountSnapshot) -> bool {
        let limit = std::time::Duration::from_secs(self.input.config.account_stale_after_secs);
        // A snapshot stamped in the future (clock skew) counts as fresh.
        self.input.now.duration_since(a.ts) < limit
    }

    /// Rolls the day-start value and raises the peak from fresh snapshots.
    fn update_accounts(&mut self, only: Option<&AccountId>) {
        let today = self.input.session.today;
        for a in self.input.accounts {
            if only.is_some_and(|o| o != &a.account) || !self.account_fresh(a) {
                continue;
            }
            let nlv = a.net_liquidation;
            let m = self
                .state
                .accounts
                .entry(a.account.clone())
                .or_insert(AccountMarks {
                    day: today,
                    day_start: nlv,
                    peak: nlv,
                    eod_high: nlv,
                });
            if m.day != today {
                m.day = today;
                m.day_start = nlv;
                // The first value of a day is the last one's end-of-day balance.
                m.eod_high = m.eod_high.max(nlv);
            }
            m.peak = m.peak.max(nlv);
        }
    }

    /// Accounts with positions or values, sorted.
    fn accounts_in_play(&self) -> Vec<AccountId> {
        let input = self.input;
        let set: std::collections::BTreeSet<&AccountId> = input
            .positions
            .iter()
            .map(|p| &p.account)
            .chain(input.accounts.iter().map(|a| &a.account))
            .collect();
        set.into_iter().cloned().collect()
    }

    fn account_rule(&mut self, rule: &Rule, account: &AccountId) {
        if !in_scope(&rule.common.accounts, account.as_str()) {
            return;
        }
        self.checks += 1;
        let subject = Subject::Account {
            account: account.clone(),
        };
        let snap = self
            .ix
            .account
            .get(account)
            .and_then(|&i| self.input.accounts.get(i));
        let Some(snap) = snap else {
            self.cannot(rule, subject, "no account values received".into());
            return;
        };
        if !self.account_fresh(snap) {
            let age = self.input.now.duration_since(snap.ts).as_secs();
            self.cannot(
                rule,
                subject,
                format!("account values are stale ({age} s old)"),
            );
            return;
        }
        let Some(m) = self.state.accounts.get(account).copied() else {
            self.cannot(rule, subject, "no day-start value yet".into());
            return;
        };
        let nlv = snap.net_liquidation;
        let (fired, what) = match rule.kind {
            RuleKind::DailyLoss { max_loss } => {
                let loss = m.day_start.raw().saturating_sub(nlv.raw());
                (
                    loss >= max_loss.raw(),
                    format!(
                        "daily loss {} (day start {}, now {}) vs limit {max_loss}",
                        Money::from_raw(loss),
                        m.day_start,
                        nlv
                    ),
                )
            }
            RuleKind::TrailingMaxLoss {
                max_loss,
                intraday,
                stop_at,
            } => {
                // A state kept before this rule existed has no end-of-day high yet.
                let high = if intraday {
                    m.peak
                } else {
                    m.eod_high.max(m.day_start)
                };
                let mut floor = Money::from_raw(high.raw().saturating_sub(max_loss.raw()));
                if let Some(cap) = stop_at {
                    floor = floor.min(cap);
                }
                (
                    nlv.raw() <= floor.raw(),
                    format!(
                        "trailing maximum loss: balance {nlv} at or below the floor {floor} ({} high {high} − {max_loss}{})",
                        if intraday { "intraday" } else { "end-of-day" },
                        stop_at.map_or(String::new(), |c| format!(", the floor stops at {c}"))
                    ),
                )
            }
            RuleKind::MaxDrawdown { max_drawdown } => {
                let dd = m.peak.raw().saturating_sub(nlv.raw());
                (
                    dd >= max_drawdown.raw(),
                    format!(
                        "drawdown {} (peak {}, now {}) vs limit {max_drawdown}",
                        Money::from_raw(dd),
                        m.peak,
                        nlv
                    ),
                )
            }
            _ => return,
        };
        if !fired {
            return;
        }
        let reason = format!("{}: {what}", rule.common.id);
        // One intent over every position of the account (the coordinator buys back shorts
        // before selling their protection), minus what Broken strategies hold.
        let mut intent = OrderIntent::new(Purpose::Flatten, account.clone());
        let mut broken_parts = Vec::new();
        for p in self
            .input
            .positions
            .iter()
            .filter(|p| &p.account == account)
        {
            let key = (p.account.clone(), p.instrument.id());
            let broken = self.ix.broken_qty.get(&key).copied().unwrap_or(0);
            let free = p.qty.saturating_sub(broken);
            if broken != 0 {
                broken_parts.push(key.1.to_string());
            }
            if free != 0 && free.signum() == p.qty.signum() {
                intent = close_leg(intent, &p.instrument, free);
            }
        }
        let reason = if broken_parts.is_empty() {
            reason
        } else {
            format!(
                "{reason}; left to the assignment guard (Broken): {}",
                broken_parts.join(", ")
            )
        };
        let intents = if intent.legs.is_empty() {
            Vec::new()
        } else {
            vec![intent]
        };
        self.fire(rule, subject, reason, intents);
    }

    /// The trader's own flatten time: on weekdays within [at, until) local time, every
    /// position of the account in the rule's scope is closed (Broken ones are the assignment
    /// guard's).
    fn session_flatten(
        &mut self,
        rule: &Rule,
        account: &AccountId,
        at: chrono::NaiveTime,
        until: chrono::NaiveTime,
        tz: chrono_tz::Tz,
    ) {
        use chrono::{Datelike, Weekday};
        if !in_scope(&rule.common.accounts, account.as_str()) {
            return;
        }
        self.checks += 1;
        let local = self.input.now.to_datetime().with_timezone(&tz);
        let t = local.time();
        if matches!(local.weekday(), Weekday::Sat | Weekday::Sun) || t < at || t >= until {
            return;
        }
        let mut intent = OrderIntent::new(Purpose::Flatten, account.clone());
        let mut closed = Vec::new();
        for p in self.input.positions.iter().filter(|p| {
            &p.account == account && in_scope(&rule.common.underlyings, p.instrument.underlying())
        }) {
            let key = (p.account.clone(), p.instrument.id());
            let broken = self.ix.broken_qty.get(&key).copied().unwrap_or(0);
            let free = p.qty.saturating_sub(broken);
            if free != 0 && free.signum() == p.qty.signum() {
                intent = close_leg(intent, &p.instrument, free);
                closed.push(p.instrument.label());
            }
        }
        if intent.legs.is_empty() {
            return;
        }
        let reason = format!(
            "{}: session flatten time {} {} reached ({} local): closing {}",
            rule.common.id,
            at.format("%H:%M"),
            tz.name(),
            t.format("%H:%M:%S"),
            closed.join(", ")
        );
        self.fire(
            rule,
            Subject::Account {
                account: account.clone(),
            },
            reason,
            vec![intent],
        );
    }

    // ---- strategy rules --------------------------------------------------------------

    fn strategy_rule(&mut self, rule: &Rule, s: &StrategyView) {
        let c = &rule.common;
        let underlying = s.legs.first().map_or("", |l| l.instrument.underlying());
        if !in_scope(&c.accounts, s.account.as_str())
            || !in_scope(&c.underlyings, underlying)
            || !(c.strategies.is_empty() || c.strategies.contains(&s.id))
        {
            return;
        }
        if matches!(s.state, StrategyState::Closing | StrategyState::Closed)
            || !s.legs.iter().any(|l| l.instrument.as_option().is_some())
        {
            return;
        }
        self.checks += 1;
        let subject = Subject::Strategy {
            account: s.account.clone(),
            strategy: s.id,
        };
        let fired = match rule.kind {
            RuleKind::DteExit { days } => self.dte(rule, s, days),
            RuleKind::PinRisk {
                within,
                minutes_before_close,
            } => match self.pin(s, within, minutes_before_close) {
                Ok(r) => r,
                Err(why) => {
                    self.cannot(rule, subject, why);
                    return;
                }
            },
            _ => match self.pnl_rule(rule, s) {
                Ok(r) => r,
                Err(why) => {
                    self.cannot(rule, subject, why);
                    return;
                }
            },
        };
        let Some(what) = fired else { return };
        let reason = format!("{}: {} ({}): {what}", c.id, s.name, s.id);
        if s.state == StrategyState::Broken {
            self.broken(rule, subject, reason);
            return;
        }
        let mut intent = OrderIntent::new(Purpose::Close, s.account.clone()).for_strategy(s.id);
        for l in &s.legs {
            intent = close_leg(intent, &l.instrument, l.qty);
        }
        self.fire(rule, subject, reason, vec![intent]);
    }

    fn dte(&self, _rule: &Rule, s: &StrategyView, days: u32) -> Option<String> {
        let expiry = s.legs.iter().filter_map(|l| l.instrument.expiry()).min()?;
        let dte = (expiry - self.input.session.today).num_days();
        (dte <= i64::from(days))
            .then(|| format!("{dte} day(s) to expiry {expiry} ≤ exit at {days}"))
    }

    fn pin(&self, s: &StrategyView, within: Price, minutes: u32) -> Result<Option<String>, String> {
        let today = self.input.session.today;
        let start = self
            .input
            .session
            .close
            .minus(std::time::Duration::from_secs(u64::from(minutes) * 60));
        if self.input.now < start {
            return Ok(None);
        }
        let mut hits = Vec::new();
        for l in s.legs.iter().filter(|l| l.qty < 0) {
            let Some(o) = l.instrument.as_option() else {
                continue;
            };
            if o.expiry != today {
                continue;
            }
            let Some(&spot) = self.input.spots.get(&o.underlying) else {
                return Err(format!("no underlying price for {}", o.underlying));
            };
            let itm = o.intrinsic(spot).is_positive();
            let dist = spot.raw().abs_diff(o.strike.raw());
            if itm || dist <= within.raw().unsigned_abs() {
                let how = if itm {
                    "in the money"
                } else {
                    "near the strike"
                };
                hits.push(format!(
                    "short {} ×{} {how} ({} at {spot})",
                    l.instrument.id(),
                    l.qty.saturating_abs(),
                    o.underlying
                ));
            }
        }
        if hits.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "expiry-day pin risk within {minutes} min of the close: {}",
            hits.join("; ")
        )))
    }

    /// Records `pnl` for (rule, strategy) and returns the lowest and highest P&L over the last
    /// `pnl_confirm` (each sample holds until the next), or `None` while the samples do not yet
    /// cover that long.
    fn sustained(&mut self, rule: &Rule, id: StrategyId, pnl: Money) -> Option<(Money, Money)> {
        let now = self.input.now;
        let confirm = self.input.config.pnl_confirm;
        let w = self
            .state
            .pnl_window
            .entry((rule.common.id.clone(), id))
            .or_default();
        if w.back().is_none_or(|(_, p)| *p != pnl) {
            w.push_back((now, pnl));
        }
        while w.len() >= 2
            && w.get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= confirm)
        {
            w.pop_front();
        }
        let first = w.front()?.0;
        if now.duration_since(first) < confirm {
            return None;
        }
        let low = w.iter().map(|(_, p)| *p).min()?;
        let high = w.iter().map(|(_, p)| *p).max()?;
        Some((low, high))
    }

    /// Profit target, stop loss and trailing stop: need a fresh P&L and a premium.
    fn pnl_rule(&mut self, rule: &Rule, s: &StrategyView) -> Result<Option<String>, String> {
        if s.mark_status != MarkStatus::Fresh {
            let bad: Vec<String> = s
                .legs
                .iter()
                .filter(|l| l.mark_status != MarkStatus::Fresh)
                .map(|l| {
                    let st = match l.mark_status {
                        MarkStatus::Stale => "stale mark",
                        _ => "no mark",
                    };
                    format!("{} ({st})", l.instrument.id())
                })
                .collect();
            return Err(format!("no fresh mark: {}", bad.join(", ")));
        }
        let pnl = s.pnl.ok_or_else(|| "P&L out of range".to_owned())?;
        let entry = s
            .entry_credit
            .ok_or_else(|| "entry premium out of range".to_owned())?;
        let premium = entry
            .checked_abs()
            .map_err(|_| "entry premium out of range".to_owned())?;
        if !premium.is_positive() {
            return Err("no entry premium (credit or debit) to measure against".into());
        }
        // The P&L that has held for the confirmation time: `low` (it stayed at least this)
        // and `high` (at most this) over the window; nothing is decided before the window is
        // covered (a phantom extreme of marks updating one leg at a time never counts).
        let Some((low, high)) = self.sustained(rule, s.id, pnl) else {
            return Ok(None);
        };
        let low100 = i128::from(low.raw()) * 100;
        let high100 = i128::from(high.raw()) * 100;
        Ok(match rule.kind {
            RuleKind::ProfitTarget { pct_of_credit } => (low100 >= pct_of(premium, pct_of_credit))
                .then(|| format!("P&L {pnl} ≥ {pct_of_credit}% of the entry premium {premium}")),
            RuleKind::StopLoss { credit_multiple } => {
                let loss = -i128::from(high.raw());
                let limit = i128::from(premium.raw()) * i128::from(credit_multiple.raw())
                    / i128::from(SCALE);
                (loss >= limit).then(|| {
                    format!(
                        "loss {} ≥ {credit_multiple} × the entry premium {premium}",
                        Money::from_raw(i64::try_from(loss).unwrap_or(i64::MAX))
                    )
                })
            }
            RuleKind::TrailingStop {
                activation_pct,
                give_back_pct,
            } => {
                let prev = self
                    .state
                    .trailing
                    .get(&rule.common.id)
                    .and_then(|m| m.get(&s.id).copied());
                // The high-water mark rises only to a level the P&L held.
                let top = match prev {
                    Some(h) => h.max(low),
                    None if low100 >= pct_of(premium, activation_pct) => low,
                    None => return Ok(None),
                };
                if prev != Some(top) {
                    self.state
                        .trailing
                        .entry(rule.common.id.clone())
                        .or_default()
                        .insert(s.id, top);
                }
                let stop = i128::from(top.raw()) * 100 - pct_of(premium, give_back_pct);
                (high100 <= stop).then(|| {
                    format!(
                        "P&L {pnl} gave back {give_back_pct}% of the premium {premium} from its high {top} (activated at {activation_pct}%)"
                    )
                })
            }
            _ => None,
        })
    }
}
