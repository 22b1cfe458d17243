//! Emergency hedge manager: turns *unintended* naked short exposure into hedge orders without
//! ever over-hedging.
//!
//! - Unmatched quantity per (underlying, right) = naked short contracts in the book
//!   ([`Book::naked_shorts`]) minus the naked shorts held on purpose. Acceptance belongs to
//!   specific short positions (legs the plan scored −100 that filled; naked shorts kept at
//!   start-up when start-up hedging is off): an accepted contract stays accepted while that
//!   short is held — whatever other legs of the same underlying do, e.g. an emergency close
//!   selling a spread's protection — and shrinks when that short is bought back.
//! - Hedge = buy back the naked short contracts (exposure-reducing, passes REDUCING / HALTED).
//! - Debounce: the first exposure change arms a deadline `debounce` later; changes in between
//!   do not move it (bounded latency). At the deadline the manager sends only
//!   `unmatched − quantity of its hedges still working`, tracked cumulatively per key, so rapid
//!   partial fills produce hedges whose total equals the unmatched quantity exactly.

use crate::book::{Book, ExposureKey};
use std::collections::BTreeMap;
use std::time::Duration;
use tradeguard_model::{Instrument, InstrumentId, OrderId, Right, Timestamp};

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

/// The manager's state (owned by the engine task).
#[derive(Debug, Clone, Default)]
pub struct HedgeManager {
    debounce: Duration,
    due_at: Option<Timestamp>,
    /// Accepted naked contracts per short instrument (never more than is held short).
    accepted: BTreeMap<InstrumentId, (ExposureKey, i64)>,
    working: BTreeMap<OrderId, (ExposureKey, i64)>,
    /// Total contracts ever sent per key.
    pub sent_total: BTreeMap<ExposureKey, i64>,
}

impl HedgeManager {
    /// A manager with the given debounce.
    pub fn new(debounce: Duration) -> Self {
        Self {
            debounce,
            ..Self::default()
        }
    }

    /// Naked shorts held on purpose: `qty` more contracts of the short option `instrument`
    /// are accepted (ignored for anything but an option).
    pub fn accept(&mut self, instrument: &Instrument, qty: i64) {
        let Some(o) = instrument.as_option() else {
            return;
        };
        let key = ExposureKey {
            underlying: o.underlying.clone(),
            right: o.right,
        };
        let e = self.accepted.entry(instrument.id()).or_insert((key, 0));
        e.1 = e.1.saturating_add(qty.max(0));
    }

    /// Start-up with hedging off: every naked short found is held on purpose. Per key the
    /// naked count is attributed to the shorts farthest from the money first (lowest put /
    /// highest call strike): a spread's short is covered by its nearer long, so the one left
    /// naked is the outermost (e.g. a strangle's short put beside put spreads).
    pub fn accept_current(&mut self, book: &Book) {
        let naked = book.naked_shorts();
        for (key, mut n) in naked {
            n -= self.accepted_of(&key, book);
            let mut shorts = book.shorts_of(&key);
            shorts.sort_by(|a, b| {
                let strike = |i: &Instrument| i.as_option().map(|o| o.strike);
                match key.right {
                    Right::Put => strike(&a.0).cmp(&strike(&b.0)),
                    Right::Call => strike(&b.0).cmp(&strike(&a.0)),
                }
            });
            for (inst, q) in shorts {
                if n <= 0 {
                    break;
                }
                let free = q.saturating_neg() - self.accepted.get(&inst.id()).map_or(0, |a| a.1);
                let take = n.min(free.max(0));
                self.accept(&inst, take);
                n -= take;
            }
        }
    }

    /// Accepted naked contracts of a key, counting only shorts still held.
    pub fn accepted_of(&self, key: &ExposureKey, book: &Book) -> i64 {
        self.accepted
            .iter()
            .filter(|(_, (k, _))| k == key)
            .map(|(id, (_, a))| (*a).min(book.qty(id).saturating_neg().max(0)))
            .sum()
    }

    /// Unmatched (unintended naked) contracts per key, before working hedges.
    pub fn unmatched(&mut self, book: &Book) -> BTreeMap<ExposureKey, i64> {
        // An acceptance shrinks when its short is bought back and never regrows.
        self.accepted.retain(|id, (_, a)| {
            *a = (*a).min(book.qty(id).saturating_neg().max(0));
            *a > 0
        });
        let naked = book.naked_shorts();
        naked
            .into_iter()
            .filter_map(|(k, n)| {
                let u = n - self.accepted_of(&k, book);
                (u > 0).then_some((k, u))
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
    pub fn to_hedge(&mut self, book: &Book) -> BTreeMap<ExposureKey, i64> {
        let u = self.unmatched(book);
        u.into_iter()
            .filter_map(|(k, n)| {
                let need = n - self.working_qty(&k);
                (need > 0).then_some((k, need))
            })
            .collect()
    }

    /// The book changed: arm the debounce if something needs hedging and nothing is armed.
    pub fn on_book_change(&mut self, book: &Book, now: Timestamp) {
        if self.due_at.is_none() && !self.to_hedge(book).is_empty() {
            self.due_at = Some(now.plus(self.debounce));
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

    /// At/after the deadline: the hedge orders to send now (and disarms).
    pub fn flush(&mut self, book: &Book, now: Timestamp) -> Vec<HedgeOrder> {
        match self.due_at {
            Some(d) if now >= d => self.due_at = None,
            _ => return Vec::new(),
        }
        let mut out = Vec::new();
        for (key, mut need) in self.to_hedge(book) {
            for (inst, q) in book.shorts_of(&key) {
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
        }
        out
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

    /// A hedge order ended; its unfilled rest no longer counts (re-arms if still needed).
    pub fn on_terminal(&mut self, order: OrderId, book: &Book, now: Timestamp) {
        if self.working.remove(&order).is_some() {
            self.on_book_change(book, now);
        }
    }

    /// `true` when `order` is a hedge of this manager.
    pub fn is_hedge(&self, order: OrderId) -> bool {
        self.working.contains_key(&order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::{Right, stubs};

    fn key() -> ExposureKey {
        ExposureKey {
            underlying: "SPY".into(),
            right: Right::Call,
        }
    }

    #[test]
    fn rapid_partials_produce_one_exact_hedge() {
        let mut h = HedgeManager::new(Duration::from_millis(500));
        let mut book = Book::new();
        let t0 = stubs::ts();
        for i in 0..10 {
            book.apply(&stubs::call(480), -1);
            h.on_book_change(&book, t0.plus(Duration::from_millis(20 * i)));
        }
        assert_eq!(h.deadline(), Some(t0.plus(Duration::from_millis(500))));
        assert!(
            h.flush(&book, t0.plus(Duration::from_millis(499)))
                .is_empty()
        );
        let out = h.flush(&book, t0.plus(Duration::from_millis(500)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].qty, 10);
        h.on_sent(OrderId(1), key(), 10);
        // More partials while the hedge works: only the new quantity is hedged.
        book.apply(&stubs::call(480), -2);
        h.on_book_change(&book, t0.plus(Duration::from_millis(600)));
        let out = h.flush(&book, t0.plus(Duration::from_secs(2)));
        assert_eq!(out.iter().map(|o| o.qty).sum::<i64>(), 2);
        h.on_sent(OrderId(2), key(), 2);
        // Hedge fills: book and working move together; nothing more to do.
        book.apply(&stubs::call(480), 10);
        h.on_fill(OrderId(1), 10);
        h.on_book_change(&book, t0.plus(Duration::from_secs(3)));
        assert_eq!(h.deadline(), None);
        assert_eq!(h.sent_total.get(&key()), Some(&12));
    }

    #[test]
    fn intended_naked_shorts_are_not_hedged_and_rejected_hedges_rearm() {
        let mut h = HedgeManager::new(Duration::from_millis(500));
        let mut book = Book::new();
        let t0 = stubs::ts();
        book.apply(&stubs::call(480), -3);
        h.accept(&stubs::call(480), 3);
        h.on_book_change(&book, t0);
        assert_eq!(h.deadline(), None);
        // Bought back one: the allowance shrinks to 2; selling one more unintended is hedged.
        book.apply(&stubs::call(480), 1);
        assert!(h.unmatched(&book).is_empty());
        book.apply(&stubs::call(480), -1);
        assert_eq!(h.unmatched(&book).get(&key()), Some(&1));
        h.on_book_change(&book, t0);
        let out = h.flush(&book, t0.plus(Duration::from_secs(1)));
        assert_eq!(out[0].qty, 1);
        h.on_sent(OrderId(9), key(), 1);
        h.on_terminal(OrderId(9), &book, t0.plus(Duration::from_secs(1)));
        assert!(h.deadline().is_some(), "rejected hedge is retried");
    }

    fn put_key() -> ExposureKey {
        ExposureKey {
            underlying: "SPY".into(),
            right: tradeguard_model::Right::Put,
        }
    }

    /// The demo account's put side: a put spread 590/580 ×2, an iron condor's 550/540 and a
    /// strangle's naked 530 short, kept on purpose at start-up.
    fn demo_puts() -> Book {
        let mut book = Book::new();
        for (strike, qty) in [(590, -2), (580, 2), (550, -1), (540, 1), (530, -1)] {
            book.apply(&stubs::put(strike), qty);
        }
        book
    }

    #[test]
    fn start_up_acceptance_goes_to_the_outermost_short() {
        let mut h = HedgeManager::new(Duration::from_millis(500));
        let book = demo_puts();
        assert_eq!(h.unmatched(&book.clone()).get(&put_key()), Some(&1));
        h.accept_current(&book);
        assert!(h.unmatched(&book).is_empty());
        assert_eq!(h.accepted.get(&stubs::put(530).id()).map(|a| a.1), Some(1));
        // Idempotent.
        h.accept_current(&book);
        assert_eq!(h.accepted_of(&put_key(), &book), 1);
    }

    #[test]
    fn closing_a_broken_spread_does_not_make_an_accepted_strangle_short_unintended() {
        let mut h = HedgeManager::new(Duration::from_millis(500));
        let mut book = demo_puts();
        h.accept_current(&book);
        // One 590 P assigned (the stock is delivered elsewhere), then the emergency close buys
        // back the other 590 P and sells the two 580 P that protected it.
        book.apply(&stubs::put(590), 1);
        assert!(h.unmatched(&book).is_empty());
        book.apply(&stubs::put(590), 1);
        book.apply(&stubs::put(580), -2);
        assert!(
            h.unmatched(&book).is_empty(),
            "the strangle's 530 P is still held on purpose"
        );
        // A new, unintended naked short is still caught.
        book.apply(&stubs::put(520), -1);
        assert_eq!(h.unmatched(&book).get(&put_key()), Some(&1));
    }
}
