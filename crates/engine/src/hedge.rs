//! Emergency hedge manager: hedges the unmatched quantity of the guard's **own** multi-leg
//! groups while they leg in, and nothing else.
//!
//! - Scope: a group is *watched* from its submission (hedges themselves excepted) until it
//!   completes; a group that ended otherwise (rolled back, failed, interrupted by a restart)
//!   stays watched while its fills still leave naked exposure. Naked shorts the guard did not
//!   create — sold in TWS, held on purpose (a cash-secured put, a strangle), delivered by an
//!   assignment, found at start-up — are never traded: they are reported
//!   ([`HedgeManager::outside_due`]) once they have stood for `outside_alert_after`.
//! - Unmatched quantity per (underlying, right) = naked short contracts in the book
//!   ([`Book::naked_shorts`]) minus the naked short contracts the book would hold without the
//!   watched groups' executed fills: exactly the naked exposure those fills created. Legs the
//!   plan scored −100 (a naked short opened on purpose) do not count as the group's fills.
//! - Hedge = buy back naked short contracts, only of instruments the watched groups trade
//!   (the short they sold first), never another position of the same underlying.
//! - Debounce: the first exposure change arms a deadline `debounce` later; changes in between
//!   do not move it (bounded latency). At the deadline the manager sends only
//!   `unmatched − quantity of its hedges still working`, tracked cumulatively per key, so rapid
//!   partial fills produce hedges whose total equals the unmatched quantity exactly.

use crate::book::{Book, ExposureKey, naked_shorts_in};
use crate::group::{Group, GroupPhase};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tradeguard_model::{GroupId, Instrument, InstrumentId, OrderId, Timestamp};

/// One hedge order to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HedgeOrder {
    /// Exposure it hedges.
    pub key: ExposureKey,
    /// Short option to buy back.
    pub instrument: Instrument,
    /// Contracts to buy.
    pub qty: i64,
}

/// Net executed fills per instrument of the given groups that count as their own exposure
/// (intended naked shorts excepted; rollback legs included).
fn own_fills<'a>(groups: &[&'a Group]) -> BTreeMap<InstrumentId, (&'a Instrument, i64)> {
    let mut out: BTreeMap<InstrumentId, (&Instrument, i64)> = BTreeMap::new();
    for g in groups {
        for l in g.legs.iter().filter(|l| l.rollback || l.score != -100) {
            if l.exec_filled == 0 {
                continue;
            }
            let signed = l.intent.side.sign().saturating_mul(l.exec_filled);
            let e = out
                .entry(l.intent.instrument.id())
                .or_insert((&l.intent.instrument, 0));
            e.1 = e.1.saturating_add(signed);
        }
    }
    out.retain(|_, (_, q)| *q != 0);
    out
}

fn underlying_of(i: &Instrument) -> Option<&str> {
    match i {
        Instrument::Option(o) => Some(o.underlying.as_str()),
        Instrument::Stock { symbol } => Some(symbol.as_str()),
        Instrument::Future { .. } => None,
    }
}

/// Naked contracts per key that `fills` created: naked(book) − naked(book without `fills`),
/// over the underlyings the fills touch.
fn created_by(
    book: &Book,
    fills: &BTreeMap<InstrumentId, (&Instrument, i64)>,
) -> BTreeMap<ExposureKey, i64> {
    if fills.is_empty() {
        return BTreeMap::new();
    }
    let symbols: BTreeSet<&str> = fills
        .values()
        .filter_map(|(i, _)| underlying_of(i))
        .collect();
    let touched = |i: &Instrument| underlying_of(i).is_some_and(|s| symbols.contains(s));
    let now: Vec<(&Instrument, i64)> = book.positions().filter(|(i, _)| touched(i)).collect();
    let mut without: Vec<(&Instrument, i64)> = now
        .iter()
        .map(|(i, q)| {
            let f = fills.get(&i.id()).map_or(0, |(_, f)| *f);
            (*i, q.saturating_sub(f))
        })
        .collect();
    for (id, (i, f)) in fills {
        if book.qty(id) == 0 {
            without.push((*i, f.saturating_neg()));
        }
    }
    let before = naked_shorts_in(without);
    naked_shorts_in(now)
        .into_iter()
        .filter_map(|(k, n)| {
            let c = n - before.get(&k).copied().unwrap_or(0);
            (c > 0).then_some((k, c))
        })
        .collect()
}

/// What one flush decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flush {
    /// Hedge orders to send now.
    pub orders: Vec<HedgeOrder>,
    /// Unmatched contracts per key that no short of the watched groups' instruments can
    /// hedge (reported when they change).
    pub unplaced: BTreeMap<ExposureKey, i64>,
}

/// The manager's state (owned by the engine task).
#[derive(Debug, Clone, Default)]
pub struct HedgeManager {
    debounce: Duration,
    due_at: Option<Timestamp>,
    /// The guard's own groups whose fills may still leave naked exposure.
    watched: BTreeSet<GroupId>,
    working: BTreeMap<OrderId, (ExposureKey, i64)>,
    /// Total contracts ever sent per key.
    pub sent_total: BTreeMap<ExposureKey, i64>,
    outside_after: Duration,
    outside_due: Option<Timestamp>,
    /// Naked contracts not created by the guard, as last reported, per key.
    outside_reported: BTreeMap<ExposureKey, i64>,
    /// Unplaceable contracts per key at the last flush.
    unplaced: BTreeMap<ExposureKey, i64>,
}

impl HedgeManager {
    /// A manager with the given debounce; naked shorts from outside are reported once they
    /// have stood for `outside_after` (an assignment's two position updates may leave a
    /// covered call briefly naked).
    pub fn new(debounce: Duration, outside_after: Duration) -> Self {
        Self {
            debounce,
            outside_after,
            ..Self::default()
        }
    }

    /// Ids of the watched groups (the engine looks them up for every other call).
    pub fn watched(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.watched.iter().copied()
    }

    /// A group of the guard was submitted: its fills are watched.
    pub fn watch(&mut self, id: GroupId) {
        self.watched.insert(id);
    }

    /// Drops watched groups that are gone (`groups` holds the watched ones still known) or
    /// ended with nothing unmatched.
    fn prune(&mut self, book: &Book, groups: &[&Group]) {
        let known: BTreeSet<GroupId> = groups.iter().map(|g| g.id).collect();
        self.watched.retain(|id| known.contains(id));
        for g in groups {
            let done = g.phase == GroupPhase::Completed
                || (g.phase.is_terminal() && created_by(book, &own_fills(&[g])).is_empty());
            if done {
                self.watched.remove(&g.id);
            }
        }
    }

    /// Unmatched naked contracts per key that the watched `groups` created, before working
    /// hedges.
    ///
    /// A native combo still working at the broker is not owed anything: it is one order, and
    /// the broker works its remaining legs; its legs fill one at a time (IB reports each leg
    /// of a non-guaranteed combo as it fills, in any order), so a leg imbalance is the order's
    /// own passing state. Buying back its short would leave the strategy broken once the
    /// combo completes. If it ends short of complete (cancelled, rejected, timed out after
    /// `leg_timeout`) its group is no longer `Combo`, and what its fills left is owed.
    pub fn unmatched(&mut self, book: &Book, groups: &[&Group]) -> BTreeMap<ExposureKey, i64> {
        self.created(book, groups, false)
    }

    /// Naked contracts per key the watched groups created; `working_combos`: counting the
    /// fills of native combos still working too.
    fn created(
        &mut self,
        book: &Book,
        groups: &[&Group],
        working_combos: bool,
    ) -> BTreeMap<ExposureKey, i64> {
        if self.watched.is_empty() {
            return BTreeMap::new();
        }
        self.prune(book, groups);
        let live: Vec<&Group> = groups
            .iter()
            .copied()
            .filter(|g| self.watched.contains(&g.id))
            .filter(|g| working_combos || g.phase != GroupPhase::Combo)
            .collect();
        created_by(book, &own_fills(&live))
    }

    /// The part of [`HedgeManager::unmatched`] that shorts of the watched groups' own
    /// instruments can hedge: what the manager owes. The rest (a group sold the protection of
    /// a short it does not trade) is reported as unplaceable, never bought.
    pub fn hedgeable(&mut self, book: &Book, groups: &[&Group]) -> BTreeMap<ExposureKey, i64> {
        let u = self.unmatched(book, groups);
        if u.is_empty() {
            return u;
        }
        let traded: BTreeSet<InstrumentId> = groups
            .iter()
            .filter(|g| self.watched.contains(&g.id))
            .flat_map(|g| g.legs.iter().map(|l| l.intent.instrument.id()))
            .collect();
        u.into_iter()
            .filter_map(|(k, n)| {
                let held: i64 = book
                    .shorts_of(&k)
                    .iter()
                    .filter(|(i, _)| traded.contains(&i.id()))
                    .map(|(_, q)| q.saturating_neg())
                    .sum();
                let h = n.min(held);
                (h > 0).then_some((k, h))
            })
            .collect()
    }

    fn working_qty(&self, key: &ExposureKey) -> i64 {
        self.working
            .values()
            .filter(|(k, _)| k == key)
            .map(|(_, q)| *q)
            .sum()
    }

    /// Contracts that still need a hedge per key (unmatched − working hedges).
    pub fn to_hedge(&mut self, book: &Book, groups: &[&Group]) -> BTreeMap<ExposureKey, i64> {
        let u = self.unmatched(book, groups);
        u.into_iter()
            .filter_map(|(k, n)| {
                let need = n - self.working_qty(&k);
                (need > 0).then_some((k, need))
            })
            .collect()
    }

    /// The book changed: arm the debounce if something needs hedging and nothing is armed,
    /// and the outside report if naked shorts the guard did not create grew.
    pub fn on_book_change(&mut self, book: &Book, groups: &[&Group], now: Timestamp) {
        if self.due_at.is_none() && !self.to_hedge(book, groups).is_empty() {
            self.due_at = Some(now.plus(self.debounce));
        }
        if self.outside_due.is_none() {
            let outside = self.outside(book, groups);
            if outside
                .iter()
                .any(|(k, n)| *n > self.outside_reported.get(k).copied().unwrap_or(0))
            {
                self.outside_due = Some(now.plus(self.outside_after));
            } else {
                // Shrunk (bought back, covered): a later growth is news again.
                self.outside_reported = outside;
            }
        }
    }

    /// Arms the hedge for `at` (start-up: immediately after recovery).
    pub fn arm_at(&mut self, at: Timestamp) {
        self.due_at = Some(self.due_at.map_or(at, |d| d.min(at)));
    }

    /// When the next hedge decision is due.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.due_at
    }

    /// When the next report of naked shorts from outside is due.
    pub fn outside_deadline(&self) -> Option<Timestamp> {
        self.outside_due
    }

    /// Naked contracts per key that the guard's own groups did not create.
    pub fn outside(&mut self, book: &Book, groups: &[&Group]) -> BTreeMap<ExposureKey, i64> {
        let own = self.created(book, groups, true);
        book.naked_shorts()
            .into_iter()
            .filter_map(|(k, n)| {
                let o = n - own.get(&k).copied().unwrap_or(0);
                (o > 0).then_some((k, o))
            })
            .collect()
    }

    /// Start-up: the naked shorts from outside found now are reported by the caller at once;
    /// only growth beyond them is reported later.
    pub fn outside_at_startup(
        &mut self,
        book: &Book,
        groups: &[&Group],
    ) -> BTreeMap<ExposureKey, i64> {
        let outside = self.outside(book, groups);
        self.outside_reported = outside.clone();
        self.outside_due = None;
        outside
    }

    /// At/after the outside deadline: the keys whose naked contracts from outside grew since
    /// the last report, with their count now (reported once; disarms).
    pub fn outside_due(
        &mut self,
        book: &Book,
        groups: &[&Group],
        now: Timestamp,
    ) -> BTreeMap<ExposureKey, i64> {
        match self.outside_due {
            Some(d) if now >= d => self.outside_due = None,
            _ => return BTreeMap::new(),
        }
        let outside = self.outside(book, groups);
        let grown = outside
            .iter()
            .filter(|(k, n)| **n > self.outside_reported.get(*k).copied().unwrap_or(0))
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        self.outside_reported = outside;
        grown
    }

    /// At/after the deadline: the hedge orders to send now (and disarms). Only shorts of
    /// instruments the watched groups trade are bought back, the ones they sold first; what
    /// no such short can hedge (a group that sold protection of a short it does not trade) is
    /// in [`Flush::unplaced`] when it changed since the last flush.
    pub fn flush(&mut self, book: &Book, groups: &[&Group], now: Timestamp) -> Flush {
        match self.due_at {
            Some(d) if now >= d => self.due_at = None,
            _ => return Flush::default(),
        }
        let need = self.to_hedge(book, groups);
        let live: Vec<&Group> = groups
            .iter()
            .copied()
            .filter(|g| self.watched.contains(&g.id))
            .collect();
        let sold = own_fills(&live);
        let traded: BTreeSet<InstrumentId> = live
            .iter()
            .flat_map(|g| g.legs.iter().map(|l| l.intent.instrument.id()))
            .collect();
        let mut out = Vec::new();
        let mut unplaced = BTreeMap::new();
        for (key, mut need) in need {
            let mut shorts: Vec<(Instrument, i64)> = book
                .shorts_of(&key)
                .into_iter()
                .filter(|(i, _)| traded.contains(&i.id()))
                .collect();
            // The shorts the groups sold first (stable: then most negative, then id).
            shorts.sort_by_key(|(i, _)| sold.get(&i.id()).is_none_or(|(_, f)| *f >= 0));
            for (inst, q) in shorts {
                if need == 0 {
                    break;
                }
                let n = need.min(q.saturating_neg());
                out.push(HedgeOrder {
                    key: key.clone(),
                    instrument: inst,
                    qty: n,
                });
                need -= n;
            }
            if need > 0 {
                unplaced.insert(key, need);
            }
        }
        let news = unplaced
            .iter()
            .filter(|(k, n)| self.unplaced.get(*k) != Some(*n))
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        self.unplaced = unplaced;
        Flush {
            orders: out,
            unplaced: news,
        }
    }

    /// A hedge order was sent.
    pub fn on_sent(&mut self, order: OrderId, key: ExposureKey, qty: i64) {
        *self.sent_total.entry(key.clone()).or_insert(0) += qty;
        self.working.insert(order, (key, qty));
    }

    /// A fill of a hedge order (booked in the same step as the book update).
    pub fn on_fill(&mut self, order: OrderId, qty: i64) {
        if let Some((_, q)) = self.working.get_mut(&order) {
            *q = (*q - qty).max(0);
        }
    }

    /// A hedge order ended; its unfilled rest no longer counts (the caller re-checks the
    /// book, which re-arms if still needed). Returns whether it was a hedge.
    pub fn on_terminal(&mut self, order: OrderId) -> bool {
        self.working.remove(&order).is_some()
    }

    /// `true` when `order` is a hedge of this manager.
    pub fn is_hedge(&self, order: OrderId) -> bool {
        self.working.contains_key(&order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{OrderIntent, Purpose};
    use tradeguard_model::{OrderType, Price, Right, Side, stubs};

    const MS: Duration = Duration::from_millis(500);
    const OUTSIDE: Duration = Duration::from_secs(5);

    fn key(right: Right) -> ExposureKey {
        ExposureKey {
            underlying: "SPY".into(),
            right,
        }
    }

    fn lmt() -> OrderType {
        OrderType::Limit {
            limit: Price::from_units(1).unwrap_or_default(),
        }
    }

    /// A group of the guard trading `legs` (instrument, side, qty), planned on an empty book.
    fn group(id: u64, purpose: Purpose, legs: &[(Instrument, Side, i64)]) -> Group {
        group_on(&Book::new(), id, purpose, legs)
    }

    fn group_on(book: &Book, id: u64, purpose: Purpose, legs: &[(Instrument, Side, i64)]) -> Group {
        let mut intent = OrderIntent::new(purpose, stubs::account());
        for (i, s, q) in legs {
            intent = intent.leg(i.clone(), *s, *q, lmt());
        }
        Group::legged(GroupId(id), intent, book, stubs::ts())
    }

    /// Books `qty` executed contracts of leg `idx` of `g` in both the group and the book.
    fn fill(g: &mut Group, book: &mut Book, idx: usize, qty: i64) {
        let l = &mut g.legs[idx];
        l.exec_filled += qty;
        book.apply(&l.intent.instrument, l.intent.side.sign() * qty);
    }

    fn call_spread(id: u64, qty: i64) -> Group {
        group(
            id,
            Purpose::Open,
            &[
                (stubs::call(480), Side::Sell, qty),
                (stubs::call(490), Side::Buy, qty),
            ],
        )
    }

    #[test]
    fn rapid_partials_of_a_short_leg_produce_one_exact_hedge() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = Book::new();
        let mut g = call_spread(1, 12);
        h.watch(g.id);
        let t0 = stubs::ts();
        for i in 0..10 {
            fill(&mut g, &mut book, 0, 1);
            h.on_book_change(&book, &[&g], t0.plus(Duration::from_millis(20 * i)));
        }
        assert_eq!(h.deadline(), Some(t0.plus(MS)));
        assert!(
            h.flush(&book, &[&g], t0.plus(Duration::from_millis(499)))
                .orders
                .is_empty()
        );
        let out = h.flush(&book, &[&g], t0.plus(MS)).orders;
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].instrument.clone(), out[0].qty),
            (stubs::call(480), 10)
        );
        h.on_sent(OrderId(1), key(Right::Call), 10);
        // More partials while the hedge works: only the new quantity is hedged.
        fill(&mut g, &mut book, 0, 2);
        h.on_book_change(&book, &[&g], t0.plus(Duration::from_millis(600)));
        let out = h
            .flush(&book, &[&g], t0.plus(Duration::from_secs(2)))
            .orders;
        assert_eq!(out.iter().map(|o| o.qty).sum::<i64>(), 2);
        h.on_sent(OrderId(2), key(Right::Call), 2);
        // The hedge fills: book and working move together; nothing more to do.
        book.apply(&stubs::call(480), 10);
        h.on_fill(OrderId(1), 10);
        h.on_book_change(&book, &[&g], t0.plus(Duration::from_secs(3)));
        assert_eq!(h.deadline(), None);
        assert_eq!(h.sent_total.get(&key(Right::Call)), Some(&12));
    }

    #[test]
    fn a_short_sold_outside_the_guard_is_reported_once_never_hedged() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = Book::new();
        let t0 = stubs::ts();
        // Sold in TWS: no group of the guard.
        book.apply(&stubs::put(520), -1);
        h.on_book_change(&book, &[], t0);
        assert_eq!(h.deadline(), None, "nothing of the guard's to hedge");
        assert!(h.unmatched(&book, &[]).is_empty());
        assert!(
            h.flush(&book, &[], t0.plus(Duration::from_secs(60)))
                .orders
                .is_empty()
        );
        // Reported after it stood for `outside_after`, once.
        assert!(
            h.outside_due(&book, &[], t0.plus(Duration::from_secs(4)))
                .is_empty()
        );
        let r = h.outside_due(&book, &[], t0.plus(OUTSIDE));
        assert_eq!(r.get(&key(Right::Put)), Some(&1));
        h.on_book_change(&book, &[], t0.plus(Duration::from_secs(6)));
        assert_eq!(h.outside_deadline(), None, "reported already");
        // One more sold: news again.
        book.apply(&stubs::put(515), -1);
        h.on_book_change(&book, &[], t0.plus(Duration::from_secs(7)));
        let r = h.outside_due(&book, &[], t0.plus(Duration::from_secs(12)));
        assert_eq!(r.get(&key(Right::Put)), Some(&2));
    }

    #[test]
    fn a_covered_call_briefly_naked_during_an_assignment_is_not_news() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = Book::new();
        book.apply(&stubs::option(Right::Call, 445), -1);
        book.apply(
            &Instrument::Stock {
                symbol: "SPY".into(),
            },
            100,
        );
        let t0 = stubs::ts();
        assert!(h.outside_at_startup(&book, &[]).is_empty());
        // The shares are called away first; the option update follows 600 ms later.
        book.apply(
            &Instrument::Stock {
                symbol: "SPY".into(),
            },
            -100,
        );
        h.on_book_change(&book, &[], t0);
        book.apply(&stubs::option(Right::Call, 445), 1);
        h.on_book_change(&book, &[], t0.plus(Duration::from_millis(600)));
        assert!(
            h.flush(&book, &[], t0.plus(Duration::from_secs(1)))
                .orders
                .is_empty()
        );
        assert!(h.outside_due(&book, &[], t0.plus(OUTSIDE)).is_empty());
    }

    /// The demo account's put side: a put spread 590/580 ×2, an iron condor's 550/540 and a
    /// strangle's naked 530 short, all the trader's.
    fn demo_puts() -> Book {
        let mut book = Book::new();
        for (strike, qty) in [(590, -2), (580, 2), (550, -1), (540, 1), (530, -1)] {
            book.apply(&stubs::put(strike), qty);
        }
        book
    }

    #[test]
    fn a_group_legging_beside_the_traders_strangle_hedges_only_its_own_short() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = demo_puts();
        let t0 = stubs::ts();
        assert_eq!(
            h.outside_at_startup(&book, &[]).get(&key(Right::Put)),
            Some(&1),
            "the strangle's 530 P"
        );
        // A new put spread 500/490: its short fills first, its long does not.
        let mut g = group(
            7,
            Purpose::Open,
            &[
                (stubs::put(500), Side::Sell, 1),
                (stubs::put(490), Side::Buy, 1),
            ],
        );
        h.watch(g.id);
        fill(&mut g, &mut book, 0, 1);
        h.on_book_change(&book, &[&g], t0);
        assert_eq!(h.unmatched(&book, &[&g]).get(&key(Right::Put)), Some(&1));
        let out = h.flush(&book, &[&g], t0.plus(MS)).orders;
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].instrument.clone(), out[0].qty),
            (stubs::put(500), 1)
        );
        // Once the long fills, nothing is unmatched and the 530 P was never touched.
        fill(&mut g, &mut book, 1, 1);
        assert!(h.unmatched(&book, &[&g]).is_empty());
        assert_eq!(book.qty(&stubs::put(530).id()), -1);
    }

    #[test]
    fn an_intended_naked_short_of_the_guard_is_not_hedged() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = Book::new();
        let mut g = group(3, Purpose::Open, &[(stubs::put(500), Side::Sell, 1)]);
        assert_eq!(g.legs[0].score, -100, "a lone short is naked on purpose");
        h.watch(g.id);
        fill(&mut g, &mut book, 0, 1);
        h.on_book_change(&book, &[&g], stubs::ts());
        assert_eq!(h.deadline(), None);
    }

    #[test]
    fn a_close_that_sold_protection_it_did_not_pair_is_reported_not_hedged_with_a_traders_short() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = demo_puts();
        let t0 = stubs::ts();
        h.outside_at_startup(&book, &[]);
        // A close selling the two 580 P alone (the 590 P buy-back is not part of it).
        let mut g = group_on(
            &book,
            9,
            Purpose::Close,
            &[(stubs::put(580), Side::Sell, 2)],
        );
        h.watch(g.id);
        fill(&mut g, &mut book, 0, 2);
        h.on_book_change(&book, &[&g], t0);
        assert_eq!(h.unmatched(&book, &[&g]).get(&key(Right::Put)), Some(&2));
        let f = h.flush(&book, &[&g], t0.plus(MS));
        assert!(
            f.orders.is_empty(),
            "never buys a short the group does not trade"
        );
        assert_eq!(f.unplaced.get(&key(Right::Put)), Some(&2));
        assert!(
            h.hedgeable(&book, &[&g]).is_empty(),
            "owes no hedge it may not place"
        );
        // Reported once while unchanged.
        h.arm_at(t0.plus(MS));
        assert!(h.flush(&book, &[&g], t0.plus(MS)).unplaced.is_empty());
    }

    #[test]
    fn a_completed_or_unwound_group_is_no_longer_watched() {
        let mut h = HedgeManager::new(MS, OUTSIDE);
        let mut book = Book::new();
        let mut g = call_spread(4, 1);
        h.watch(g.id);
        fill(&mut g, &mut book, 1, 1);
        fill(&mut g, &mut book, 0, 1);
        g.phase = GroupPhase::Completed;
        assert!(h.unmatched(&book, &[&g]).is_empty());
        assert_eq!(h.watched().count(), 0);
        // A failed group whose short was bought back by hand: nothing left, forgotten.
        let mut f = call_spread(5, 1);
        h.watch(f.id);
        fill(&mut f, &mut book, 0, 1);
        f.phase = GroupPhase::Failed;
        assert_eq!(h.unmatched(&book, &[&f]).get(&key(Right::Call)), Some(&1));
        book.apply(&stubs::call(480), 1);
        assert!(h.unmatched(&book, &[&f]).is_empty());
        assert_eq!(h.watched().count(), 0);
        // A watched group the engine no longer knows is dropped.
        h.watch(GroupId(77));
        let _ = h.unmatched(&book, &[]);
        assert_eq!(h.watched().count(), 0);
    }
}
