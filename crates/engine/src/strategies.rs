//! The strategy book: every account's strategies with their legs, and the per-strategy view
//! (marks, quote ages, P&L, Greeks, entry credit/debit, state badge) the UI and the rules read.
//!
//! Two sources:
//! - **managed** strategies, opened or persisted through Tradeguard ([`StrategyBook::insert`],
//!   [`StrategyBook::update`], [`StrategyBook::remove`] and the state transitions, which follow
//!   the model's rules: Broken only through [`StrategyBook::mark_broken`], the assignment path);
//! - **recognized** strategies, rebuilt by [`StrategyBook::sync_positions`] from the part of each
//!   broker position no managed strategy claims (see [`peel`] for the greedy order).
//!
//! Recognized strategies get a deterministic id with the top bit set
//! ([`StrategyBook::is_recognized`]) derived from their account and legs, so the same
//! positions always produce the same ids (rule state such as trailing-stop high-water marks
//! stays attached across rebuilds). Any state change of a recognized strategy adopts it into
//! the managed set under the same id, so it is no longer re-recognized.
//!
//! Positions that managed strategies claim but the broker does not hold (in full or with the
//! wrong sign) are listed by [`StrategyBook::discrepancies`], never silently dropped.

pub mod peel;

use crate::live::{MarkStatus, PositionView};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tradeguard_model::{
    AccountId, BrokenReason, Greeks, Instrument, InstrumentId, Leg, LegRole, Money, Position,
    Price, Strategy, StrategyError, StrategyId, StrategyKind, StrategyState,
};

use peel::{Holding, Peeled};

/// Top bit of a recognized strategy's id.
const RECOGNIZED_BIT: u64 = 1 << 63;

/// Errors of the strategy book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyBookError {
    /// A strategy with this id already exists.
    #[error("strategy {0} already exists")]
    Duplicate(StrategyId),
    /// No strategy with this id.
    #[error("unknown strategy {0}")]
    Unknown(StrategyId),
    /// Managed ids must not use the recognized id space (top bit set).
    #[error("strategy id {0} is reserved for recognized strategies")]
    ReservedId(StrategyId),
    /// A strategy needs at least one leg, none with quantity zero.
    #[error("strategy {id} has no legs or a zero-quantity leg")]
    BadLegs {
        /// The strategy.
        id: StrategyId,
    },
    /// `update` may not change the state or the account; use the transition methods.
    #[error("strategy {id}: update may not change {field}; use the state transitions")]
    ImmutableField {
        /// The strategy.
        id: StrategyId,
        /// `state` or `account`.
        field: &'static str,
    },
    /// The model refused the transition.
    #[error("strategy {id}: {source}")]
    Transition {
        /// The strategy.
        id: StrategyId,
        /// Why.
        source: StrategyError,
    },
}

impl StrategyBookError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Duplicate(_) => "strategies.duplicate",
            Self::Unknown(_) => "strategies.unknown",
            Self::ReservedId(_) => "strategies.reserved_id",
            Self::BadLegs { .. } => "strategies.bad_legs",
            Self::ImmutableField { .. } => "strategies.immutable_field",
            Self::Transition { source, .. } => source.code(),
        }
    }
}

/// Where a leg of an instrument sits: which strategy, which leg, how many units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRef {
    /// The strategy.
    pub strategy: StrategyId,
    /// Index into the strategy's legs.
    pub leg: usize,
    /// The leg's signed quantity (a position may be split across strategies).
    pub qty: i64,
    /// The leg's role.
    pub role: LegRole,
    /// The strategy's kind.
    pub kind: StrategyKind,
    /// The strategy's state.
    pub state: StrategyState,
    /// Whether the strategy is recognized (not opened through Tradeguard).
    pub recognized: bool,
}

/// A managed position quantity the broker does not back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// What the broker holds.
    pub broker_qty: i64,
    /// What the managed (not closed) strategies claim in total.
    pub claimed_qty: i64,
}

/// Position-sized Greeks (per-unit Greeks × qty × multiplier); stock counts delta 1 per share.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GreekSums {
    /// Delta in shares.
    pub delta: f64,
    /// Gamma in shares per 1.00 of the underlying.
    pub gamma: f64,
    /// Vega in money per vol point.
    pub vega: f64,
    /// Theta in money per calendar day.
    pub theta: f64,
    /// `false` when some option leg had no Greeks (the sums cover only the others).
    pub complete: bool,
}

/// One leg as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LegView {
    /// Instrument.
    pub instrument: Instrument,
    /// Signed quantity of this leg.
    pub qty: i64,
    /// Role.
    pub role: LegRole,
    /// Average open price per unit.
    pub avg_price: Price,
    /// Mark per unit (from the live book), `None` when missing.
    pub mark: Option<Price>,
    /// Mark quality; `Missing` also when the broker holds no such position.
    pub mark_status: MarkStatus,
    /// Age of the quote behind the mark.
    pub quote_age: Option<Duration>,
    /// `(mark − avg) × qty × multiplier`.
    pub pnl: Option<Money>,
    /// Per-unit Greeks from the quote (options), when sent.
    pub greeks: Option<Greeks>,
}

/// One strategy as the UI and the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyView {
    /// Id.
    pub id: StrategyId,
    /// Account.
    pub account: AccountId,
    /// Name.
    pub name: String,
    /// Shape.
    pub kind: StrategyKind,
    /// Lifecycle state.
    pub state: StrategyState,
    /// Why it is broken, if it is.
    pub broken_reason: Option<BrokenReason>,
    /// Recognized from positions rather than opened through Tradeguard.
    pub recognized: bool,
    /// Legs with marks.
    pub legs: Vec<LegView>,
    /// Cash received at entry: `−Σ avg × qty × multiplier` (positive = credit, negative =
    /// debit; futures legs count zero: opening one moves no cash); `None` only on an overflow
    /// beyond any real account.
    pub entry_credit: Option<Money>,
    /// `Σ mark × qty × multiplier` (a futures leg counts its open P&L); `None` unless every leg
    /// has a mark.
    pub market_value: Option<Money>,
    /// `Σ leg P&L`; `None` unless every leg has a mark.
    pub pnl: Option<Money>,
    /// Worst mark status over the legs.
    pub mark_status: MarkStatus,
    /// Greeks.
    pub greeks: GreekSums,
}

impl StrategyView {
    /// Short badge text for the state (`open`, `broken: SPY 21MAR25 440 P assigned`, ...).
    pub fn badge(&self) -> String {
        let s = match self.state {
            StrategyState::Opening => "opening",
            StrategyState::Open => "open",
            StrategyState::Closing => "closing",
            StrategyState::Closed => "closed",
            StrategyState::Broken => "broken",
        };
        match &self.broken_reason {
            Some(r) if self.state == StrategyState::Broken => format!("{s}: {}", r.describe()),
            _ => s.to_owned(),
        }
    }
}

/// The strategies of every account.
#[derive(Debug, Clone, Default)]
pub struct StrategyBook {
    managed: BTreeMap<StrategyId, Strategy>,
    recognized: BTreeMap<StrategyId, Strategy>,
    discrepancies: Vec<Discrepancy>,
    legs: HashMap<(AccountId, InstrumentId), Vec<LegRef>>,
    /// Last positions given to `sync_positions`, to re-recognize after managed changes.
    holdings: Vec<Holding>,
    /// Stock an assignment or exercise delivered into a Broken strategy (from the assignment
    /// guard's records): part of the strategy while it is Broken, so the account's real
    /// exposure is one view and the shares are no strategy of their own.
    delivered: BTreeMap<StrategyId, Vec<Leg>>,
}

impl StrategyBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` when `id` is in the recognized id space.
    pub fn is_recognized(id: StrategyId) -> bool {
        id.0 & RECOGNIZED_BIT != 0
    }

    /// Adds a managed strategy (opened or loaded from the store).
    pub fn insert(&mut self, s: Strategy) -> Result<(), StrategyBookError> {
        if Self::is_recognized(s.id) {
            return Err(StrategyBookError::ReservedId(s.id));
        }
        if self.managed.contains_key(&s.id) {
            return Err(StrategyBookError::Duplicate(s.id));
        }
        check_legs(&s)?;
        self.managed.insert(s.id, s);
        self.rebuild();
        Ok(())
    }

    /// Replaces a managed strategy's name, kind and legs (rolls, partial closes). State and
    /// account may not change here.
    pub fn update(&mut self, s: Strategy) -> Result<(), StrategyBookError> {
        let old = self
            .managed
            .get(&s.id)
            .ok_or(StrategyBookError::Unknown(s.id))?;
        if old.state != s.state || old.broken_reason != s.broken_reason {
            return Err(StrategyBookError::ImmutableField {
                id: s.id,
                field: "state",
            });
        }
        if old.account != s.account {
            return Err(StrategyBookError::ImmutableField {
                id: s.id,
                field: "account",
            });
        }
        check_legs(&s)?;
        self.managed.insert(s.id, s);
        self.rebuild();
        Ok(())
    }

    /// Takes `s` into the managed set under its own id, whatever its id space and state — for
    /// a strategy the assignment guard locked (Broken) after the positions it was recognized
    /// from changed, so it no longer exists among the recognized ones. Refused if a managed
    /// strategy already has the id; a recognized one with the id is replaced.
    pub fn adopt(&mut self, s: Strategy) -> Result<(), StrategyBookError> {
        if self.managed.contains_key(&s.id) {
            return Err(StrategyBookError::Duplicate(s.id));
        }
        check_legs(&s)?;
        self.managed.insert(s.id, s);
        self.rebuild();
        Ok(())
    }

    /// Removes a managed strategy; its positions become recognizable again.
    pub fn remove(&mut self, id: StrategyId) -> Result<Strategy, StrategyBookError> {
        let s = self
            .managed
            .remove(&id)
            .ok_or(StrategyBookError::Unknown(id))?;
        self.rebuild();
        Ok(s)
    }

    /// Opening orders filled (or a close aborted).
    pub fn mark_open(&mut self, id: StrategyId) -> Result<(), StrategyBookError> {
        self.transition(id, |s| s.mark_open())
    }

    /// Closing orders sent (from Broken: the emergency close).
    pub fn begin_close(&mut self, id: StrategyId) -> Result<(), StrategyBookError> {
        self.transition(id, |s| s.begin_close())
    }

    /// All legs flat.
    pub fn mark_closed(&mut self, id: StrategyId) -> Result<(), StrategyBookError> {
        self.transition(id, |s| s.mark_closed())
    }

    /// The assignment path: the strategy no longer matches its legs. Only the assignment
    /// guard (and reconciliation of a missing leg) calls this.
    pub fn mark_broken(
        &mut self,
        id: StrategyId,
        reason: BrokenReason,
    ) -> Result<(), StrategyBookError> {
        self.transition(id, |s| s.mark_broken(reason))
    }

    fn transition(
        &mut self,
        id: StrategyId,
        f: impl FnOnce(&mut Strategy) -> Result<(), StrategyError>,
    ) -> Result<(), StrategyBookError> {
        // A recognized strategy is adopted (kept under its id) before it changes state.
        let mut s = match self.managed.get(&id) {
            Some(s) => s.clone(),
            None => self
                .recognized
                .get(&id)
                .cloned()
                .ok_or(StrategyBookError::Unknown(id))?,
        };
        f(&mut s).map_err(|source| StrategyBookError::Transition { id, source })?;
        self.managed.insert(id, s);
        self.rebuild();
        Ok(())
    }

    /// Recomputes the recognized strategies and discrepancies from the broker's positions
    /// (all accounts). Call after every position change.
    pub fn sync_positions<'a>(&mut self, positions: impl IntoIterator<Item = &'a Position>) {
        self.holdings = positions
            .into_iter()
            .filter(|p| p.qty != 0)
            .map(|p| Holding {
                account: p.account.clone(),
                instrument: p.instrument.clone(),
                qty: p.qty,
                avg_price: p.avg_cost,
            })
            .collect();
        self.rebuild();
    }

    /// [`StrategyBook::sync_positions`] from the live book's rows.
    pub fn sync_views(&mut self, views: &[PositionView]) {
        self.holdings = views
            .iter()
            .filter(|p| p.qty != 0)
            .map(|p| Holding {
                account: p.account.clone(),
                instrument: p.instrument.clone(),
                qty: p.qty,
                avg_price: p.avg_cost,
            })
            .collect();
        self.rebuild();
    }

    /// Sets the stock delivered into Broken strategy `id` by its assignments (empty: none).
    /// Counted only while the strategy is Broken: the shares are claimed by it (no separate
    /// strategy) and shown among its legs.
    pub fn set_delivered(&mut self, id: StrategyId, legs: Vec<Leg>) {
        let legs: Vec<Leg> = legs.into_iter().filter(|l| l.qty != 0).collect();
        let changed = if legs.is_empty() {
            self.delivered.remove(&id).is_some()
        } else if self.delivered.get(&id) == Some(&legs) {
            false
        } else {
            self.delivered.insert(id, legs);
            true
        };
        if changed {
            self.rebuild();
        }
    }

    /// The stock delivered into `id` while it is Broken.
    fn delivered_into(&self, s: &Strategy) -> &[Leg] {
        match self.delivered.get(&s.id) {
            Some(l) if s.state == StrategyState::Broken => l,
            _ => &[],
        }
    }

    fn rebuild(&mut self) {
        // What managed, still-live strategies claim per (account, instrument).
        let mut claimed: BTreeMap<(AccountId, InstrumentId), i64> = BTreeMap::new();
        for s in self
            .managed
            .values()
            .filter(|s| s.state != StrategyState::Closed)
        {
            for l in s.legs.iter().chain(self.delivered_into(s)) {
                let e = claimed
                    .entry((s.account.clone(), l.instrument.id()))
                    .or_default();
                *e = e.saturating_add(l.qty);
            }
        }
        let mut free = Vec::new();
        let mut seen = BTreeMap::new();
        for h in &self.holdings {
            let key = (h.account.clone(), h.instrument.id());
            let c = claimed.get(&key).copied().unwrap_or(0);
            seen.insert(key, h.qty);
            let rest = h.qty.saturating_sub(c);
            if rest != 0 && rest.signum() == h.qty.signum() {
                free.push(Holding {
                    qty: rest,
                    ..h.clone()
                });
            }
        }
        self.discrepancies = claimed
            .iter()
            .filter_map(|(key, &c)| {
                let b = seen.get(key).copied().unwrap_or(0);
                let rest = b.saturating_sub(c);
                let short_of_claim = rest != 0 && (b == 0 || rest.signum() != b.signum());
                short_of_claim.then(|| Discrepancy {
                    account: key.0.clone(),
                    instrument: key.1.clone(),
                    broker_qty: b,
                    claimed_qty: c,
                })
            })
            .collect();
        self.recognized.clear();
        for p in peel::peel(&free) {
            let mut id = recognized_id(&p);
            while self.recognized.contains_key(&id) || self.managed.contains_key(&id) {
                id = StrategyId(RECOGNIZED_BIT | (id.0.wrapping_add(1) & !RECOGNIZED_BIT));
            }
            let s = Strategy {
                id,
                account: p.account.clone(),
                name: name_of(&p),
                kind: p.kind,
                legs: p.legs,
                state: StrategyState::Open,
                broken_reason: None,
            };
            self.recognized.insert(id, s);
        }
        self.legs.clear();
        for (s, recognized) in self
            .managed
            .values()
            .map(|s| (s, false))
            .chain(self.recognized.values().map(|s| (s, true)))
        {
            for (i, l) in s.legs.iter().enumerate() {
                self.legs
                    .entry((s.account.clone(), l.instrument.id()))
                    .or_default()
                    .push(LegRef {
                        strategy: s.id,
                        leg: i,
                        qty: l.qty,
                        role: l.role,
                        kind: s.kind,
                        state: s.state,
                        recognized,
                    });
            }
        }
    }

    /// A strategy by id (managed or recognized).
    pub fn get(&self, id: StrategyId) -> Option<&Strategy> {
        self.managed.get(&id).or_else(|| self.recognized.get(&id))
    }

    /// Every strategy: managed (by id) then recognized (by id).
    pub fn strategies(&self) -> impl Iterator<Item = &Strategy> {
        self.managed.values().chain(self.recognized.values())
    }

    /// Strategies of one account.
    pub fn of_account<'a>(&'a self, account: &'a AccountId) -> impl Iterator<Item = &'a Strategy> {
        self.strategies().filter(move |s| &s.account == account)
    }

    /// Every strategy leg holding `instrument` in `account` (managed first); a position split
    /// across strategies gives several entries. Empty when nothing holds it.
    pub fn leg_of(&self, account: &AccountId, instrument: &InstrumentId) -> &[LegRef] {
        self.legs
            .get(&(account.clone(), instrument.clone()))
            .map_or(&[], Vec::as_slice)
    }

    /// Managed quantities the broker does not back (after the last sync).
    pub fn discrepancies(&self) -> &[Discrepancy] {
        &self.discrepancies
    }

    /// Views of every strategy that is not closed, marked from the live book's rows.
    pub fn views(&self, positions: &[PositionView]) -> Vec<StrategyView> {
        let index: HashMap<(&AccountId, InstrumentId), &PositionView> = positions
            .iter()
            .map(|p| ((&p.account, p.instrument.id()), p))
            .collect();
        self.strategies()
            .filter(|s| s.state != StrategyState::Closed)
            .map(|s| view_of(s, self.delivered_into(s), &index))
            .collect()
    }

    /// The view of one strategy.
    pub fn view(&self, id: StrategyId, positions: &[PositionView]) -> Option<StrategyView> {
        let s = self.get(id)?;
        let index: HashMap<(&AccountId, InstrumentId), &PositionView> = positions
            .iter()
            .filter(|p| p.account == s.account)
            .map(|p| ((&p.account, p.instrument.id()), p))
            .collect();
        Some(view_of(s, self.delivered_into(s), &index))
    }
}

fn check_legs(s: &Strategy) -> Result<(), StrategyBookError> {
    if s.legs.is_empty() || s.legs.iter().any(|l| l.qty == 0) {
        return Err(StrategyBookError::BadLegs { id: s.id });
    }
    Ok(())
}

/// FNV-1a over the account and the legs' instrument ids and signs (not sizes, so a partial
/// close keeps the id), with the top bit set.
fn recognized_id(p: &Peeled) -> StrategyId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(p.account.as_str().as_bytes());
    for l in &p.legs {
        feed(&[0xff]);
        feed(l.instrument.id().as_str().as_bytes());
        feed(if l.qty < 0 { b"-" } else { b"+" });
    }
    StrategyId(h | RECOGNIZED_BIT)
}

fn name_of(p: &Peeled) -> String {
    let Some(first) = p.legs.first() else {
        return String::new();
    };
    let kind = match p.kind {
        StrategyKind::IronCondor => "iron condor",
        StrategyKind::IronButterfly => "iron butterfly",
        StrategyKind::Vertical => "vertical",
        StrategyKind::Straddle => "straddle",
        StrategyKind::Strangle => "strangle",
        StrategyKind::Butterfly => "butterfly",
        StrategyKind::Covered => "covered",
        StrategyKind::Custom => "",
    };
    let mut strikes: Vec<String> = p
        .legs
        .iter()
        .filter_map(|l| l.instrument.as_option())
        .map(|o| o.strike.to_string().trim_end_matches(".00").to_owned())
        .collect();
    strikes.dedup();
    let expiry = p
        .legs
        .iter()
        .find_map(|l| l.instrument.expiry())
        .map(|e| format!(" {}", e.format("%d%b%y").to_string().to_uppercase()))
        .unwrap_or_default();
    if p.kind == StrategyKind::Custom && p.legs.len() == 1 {
        let side = if first.qty < 0 { "short" } else { "long" };
        return format!("{side} {} {}", first.qty.abs(), first.instrument.label());
    }
    format!(
        "{}{} {} {}",
        first.instrument.underlying(),
        expiry,
        kind,
        strikes.join("/")
    )
}

fn worse(a: MarkStatus, b: MarkStatus) -> MarkStatus {
    let rank = |m| match m {
        MarkStatus::Fresh => 0,
        MarkStatus::Stale => 1,
        MarkStatus::Missing => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The view of `s`. A Broken strategy shows what the account holds of it: each leg clamped
/// to the broker's position (an assigned leg is gone, a half-closed one shows what is left),
/// plus the stock its assignment delivered (at the strike), so its P&L, Greeks and payoff are
/// the account's real exposure.
fn view_of(
    s: &Strategy,
    delivered: &[Leg],
    index: &HashMap<(&AccountId, InstrumentId), &PositionView>,
) -> StrategyView {
    // Clamped only once the live book holds any of its instruments: before the first positions
    // (a restart) "not in the book" is "not known yet", not "gone"; the legs show as opened.
    let broken = s.state == StrategyState::Broken
        && s.legs
            .iter()
            .chain(delivered)
            .any(|l| index.contains_key(&(&s.account, l.instrument.id())));
    let delivered = if broken { delivered } else { &[] };
    let held = |l: &Leg| -> i64 {
        if !broken {
            return l.qty;
        }
        let h = index
            .get(&(&s.account, l.instrument.id()))
            .map_or(0, |p| p.qty);
        if h.signum() == l.qty.signum() {
            l.qty.signum() * h.abs().min(l.qty.abs())
        } else {
            0
        }
    };
    let legs = s
        .legs
        .iter()
        .chain(delivered)
        .filter_map(|l| {
            let qty = held(l);
            if broken && qty == 0 {
                return None;
            }
            Some((l, qty))
        })
        .map(|(l, qty)| {
            let pv = index.get(&(&s.account, l.instrument.id()));
            let mut leg = LegView {
                instrument: l.instrument.clone(),
                qty,
                role: l.role,
                avg_price: l.avg_price,
                mark: None,
                mark_status: MarkStatus::Missing,
                quote_age: None,
                pnl: None,
                greeks: None,
            };
            if let Some(p) = pv {
                leg.set_mark(p.mark, p.mark_status, p.quote_age, p.greeks);
            }
            leg
        })
        .collect();
    let mut v = StrategyView {
        id: s.id,
        account: s.account.clone(),
        name: s.name.clone(),
        kind: s.kind,
        state: s.state,
        broken_reason: s.broken_reason.clone(),
        recognized: StrategyBook::is_recognized(s.id),
        legs,
        entry_credit: None,
        market_value: None,
        pnl: None,
        mark_status: MarkStatus::Missing,
        greeks: GreekSums::default(),
    };
    v.recompute();
    v
}

fn add(a: Option<Money>, b: Option<Money>) -> Option<Money> {
    a?.checked_add(b?).ok()
}

impl LegView {
    /// Sets the mark (from a position row) and the leg's P&L.
    pub fn set_mark(
        &mut self,
        mark: Option<Price>,
        status: MarkStatus,
        quote_age: Option<Duration>,
        greeks: Option<Greeks>,
    ) {
        let mult = self.instrument.multiplier();
        self.mark = mark;
        self.mark_status = status;
        self.quote_age = quote_age;
        self.greeks = greeks;
        let value = mark.and_then(|m| m.notional(self.qty, mult).ok());
        let cost = self.avg_price.notional(self.qty, mult).ok();
        self.pnl = value.zip(cost).and_then(|(v, c)| v.checked_sub(c).ok());
    }
}

impl StrategyView {
    /// Recomputes the totals (entry, value, P&L, worst mark, Greeks) from the legs; call
    /// after changing a leg's mark with [`LegView::set_mark`].
    pub fn recompute(&mut self) {
        let mut entry = Some(Money::ZERO);
        let mut value = Some(Money::ZERO);
        let mut pnl = Some(Money::ZERO);
        let mut status = MarkStatus::Fresh;
        let mut greeks = GreekSums {
            complete: true,
            ..GreekSums::default()
        };
        for l in &self.legs {
            let mult = l.instrument.multiplier();
            if matches!(l.instrument, Instrument::Future { .. }) {
                // No cash changes hands when a future is opened, and it is worth its open P&L
                // (marked to market daily), not its notional.
                value = add(value, l.pnl);
            } else {
                let cost = l.avg_price.notional(l.qty, mult).ok();
                entry = entry.zip(cost).and_then(|(e, c)| e.checked_sub(c).ok());
                value = add(value, l.mark.and_then(|m| m.notional(l.qty, mult).ok()));
            }
            pnl = add(pnl, l.pnl);
            status = worse(status, l.mark_status);
            let size = l.qty as f64 * f64::from(mult);
            match (&l.instrument, l.greeks) {
                // A delta of one per unit (per share; per point times the multiplier).
                (Instrument::Stock { .. } | Instrument::Future { .. }, _) => greeks.delta += size,
                (_, Some(g)) => {
                    greeks.delta += g.delta * size;
                    greeks.gamma += g.gamma * size;
                    greeks.vega += g.vega * size;
                    greeks.theta += g.theta * size;
                }
                (_, None) => greeks.complete = false,
            }
        }
        // A Broken strategy's legs are what the account holds now (delivered stock included),
        // not what was opened: no entry credit to show.
        self.entry_credit = entry.filter(|_| self.state != StrategyState::Broken);
        self.market_value = value;
        self.pnl = pnl;
        self.mark_status = status;
        self.greeks = greeks;
    }
}

#[cfg(test)]
mod tests;
