//! Live state: positions, marks, P&L and Greeks per position, rebuilt from broker events.
//!
//! [`LiveBook`] folds [`BrokerEvent`]s into the current picture of the account. It never
//! drops a position for want of a quote: a position without a usable quote is still listed,
//! with [`MarkStatus::Missing`] or [`MarkStatus::Stale`], and [`LiveBook::mark_transitions`]
//! tells the caller exactly when a position's mark goes bad or recovers so it can be logged.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tradeguard_model::{
    AccountId, AccountSnapshot, BrokerEvent, ConnectionState, Greeks, Instrument, InstrumentId,
    Money, MoneyError, Position, Price, Quote, Timestamp,
};

/// How trustworthy a position's mark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkStatus {
    /// A two-sided quote no older than the staleness limit.
    Fresh,
    /// The last quote is older than the staleness limit; the mark shown is that old quote.
    Stale,
    /// No usable quote at all (none received, or one-sided with no last trade). A zero bid with
    /// an ask is two-sided: its mark is half the ask.
    Missing,
}

/// One position as the UI and the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionView {
    pub account: AccountId,
    pub instrument: Instrument,
    /// Signed quantity: + long, − short.
    pub qty: i64,
    /// Average cost per unit (per share / per option, before the multiplier).
    pub avg_cost: Price,
    /// Mid of the last two-sided quote, or its last trade; `None` when [`MarkStatus::Missing`].
    pub mark: Option<Price>,
    pub mark_status: MarkStatus,
    /// Age of the quote behind `mark`.
    pub quote_age: Option<Duration>,
    /// `mark × qty × multiplier`.
    pub market_value: Option<Money>,
    /// `(mark − avg_cost) × qty × multiplier`.
    pub unrealized_pnl: Option<Money>,
    /// Per-unit Greeks from the quote (options), when the broker sent them.
    pub greeks: Option<Greeks>,
}

/// A change of a position's [`MarkStatus`], for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkTransition {
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub from: Option<MarkStatus>,
    pub to: MarkStatus,
}

impl MarkTransition {
    fn new(key: &(AccountId, InstrumentId), from: Option<MarkStatus>, to: MarkStatus) -> Self {
        Self {
            account: key.0.clone(),
            instrument: key.1.clone(),
            from,
            to,
        }
    }
}

/// The live picture of every account the broker reports.
#[derive(Debug, Default)]
pub struct LiveBook {
    positions: BTreeMap<(AccountId, InstrumentId), Position>,
    quotes: HashMap<InstrumentId, Quote>,
    accounts: BTreeMap<AccountId, AccountSnapshot>,
    connection: Option<ConnectionState>,
    last_event_at: Option<Timestamp>,
    events_applied: u64,
    reported: HashMap<(AccountId, InstrumentId), MarkStatus>,
    /// Positions first seen without a mark, and when: not reported until the grace has passed.
    awaiting: HashMap<(AccountId, InstrumentId), Timestamp>,
}

impl LiveBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in. Returns whether anything a viewer shows changed.
    pub fn apply(&mut self, event: &BrokerEvent) -> bool {
        self.events_applied = self.events_applied.saturating_add(1);
        match event {
            BrokerEvent::Position(p) => {
                // Positions carry no timestamp of their own.
                let key = (p.account.clone(), p.instrument.id());
                if p.qty == 0 {
                    self.reported.remove(&key);
                    self.positions.remove(&key).is_some()
                } else {
                    self.positions.insert(key, p.clone()).as_ref() != Some(p)
                }
            }
            BrokerEvent::Quote(q) => {
                self.touch(q.ts);
                let id = q.instrument.id();
                // Out-of-order delivery: never let an older quote replace a newer one.
                match self.quotes.get(&id) {
                    Some(old) if old.ts > q.ts => false,
                    _ => {
                        self.quotes.insert(id, q.clone());
                        true
                    }
                }
            }
            BrokerEvent::Account(a) => {
                self.touch(a.ts);
                self.accounts.insert(a.account.clone(), a.clone());
                true
            }
            BrokerEvent::Connection(c) => {
                self.connection = Some(c.clone());
                true
            }
            BrokerEvent::OrderStatus(u) => {
                self.touch(u.ts);
                false
            }
            BrokerEvent::Execution(e) => {
                self.touch(e.ts);
                false
            }
            BrokerEvent::Notice(n) => {
                self.touch(n.ts);
                false
            }
        }
    }

    fn touch(&mut self, ts: Timestamp) {
        self.last_event_at = Some(self.last_event_at.map_or(ts, |t| t.max(ts)));
    }

    /// Replaces all positions with a broker snapshot (start-up, reconnect, reconciliation).
    pub fn replace_positions(&mut self, positions: impl IntoIterator<Item = Position>) {
        self.positions = positions
            .into_iter()
            .filter(|p| p.qty != 0)
            .map(|p| ((p.account.clone(), p.instrument.id()), p))
            .collect();
        self.reported.retain(|k, _| self.positions.contains_key(k));
    }

    /// Every open position, in a stable order, marked as of `now`.
    pub fn positions(&self, now: Timestamp, stale_after: Duration) -> Vec<PositionView> {
        self.positions
            .iter()
            .map(|((_, id), p)| self.view(id, p, now, stale_after))
            .collect()
    }

    /// Positions whose mark status changed since the last call (first sight counts as a change
    /// only when the mark is not fresh). A position first seen with no quote at all is reported
    /// only once it has stayed so for `grace` (its first quote follows the subscription by a
    /// moment). The caller logs these; nothing is skipped silently.
    pub fn mark_transitions(
        &mut self,
        now: Timestamp,
        stale_after: Duration,
        grace: Duration,
    ) -> Vec<MarkTransition> {
        self.awaiting.retain(|k, _| self.positions.contains_key(k));
        let mut out = Vec::new();
        for key in self.positions.keys() {
            let status = Self::mark_of(&self.quotes, &key.1, now, stale_after).1;
            let prev = self.reported.get(key).copied();
            match (prev, status) {
                (Some(p), s) if p == s => continue,
                // Fresh first sightings are recorded without being reported.
                (None, MarkStatus::Fresh) => {}
                (None, MarkStatus::Missing) => {
                    let since = *self.awaiting.entry(key.clone()).or_insert(now);
                    if now.duration_since(since) < grace {
                        continue;
                    }
                    out.push(MarkTransition::new(key, prev, status));
                }
                _ => out.push(MarkTransition::new(key, prev, status)),
            }
            self.reported.insert(key.clone(), status);
            self.awaiting.remove(key);
        }
        out
    }

    pub fn quote(&self, id: &InstrumentId) -> Option<&Quote> {
        self.quotes.get(id)
    }

    pub fn account(&self, id: &AccountId) -> Option<&AccountSnapshot> {
        self.accounts.get(id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountSnapshot> {
        self.accounts.values()
    }

    pub fn connection(&self) -> Option<&ConnectionState> {
        self.connection.as_ref()
    }

    /// Timestamp of the newest event seen (the venue's clock, not ours).
    pub fn last_event_at(&self) -> Option<Timestamp> {
        self.last_event_at
    }

    pub fn events_applied(&self) -> u64 {
        self.events_applied
    }

    pub fn position_count(&self) -> usize {
        self.positions.len()
    }

    /// The mark of instrument `id` (the positions' key, so no id is formatted per call).
    fn mark_of(
        quotes: &HashMap<InstrumentId, Quote>,
        id: &InstrumentId,
        now: Timestamp,
        stale_after: Duration,
    ) -> (Option<(Price, Duration)>, MarkStatus) {
        let Some(q) = quotes.get(id) else {
            return (None, MarkStatus::Missing);
        };
        // A zero bid is a market too (a far wing nobody bids for is worth between 0 and the
        // ask); only a missing bid or ask makes the quote one-sided.
        let two_sided = matches!(q.two_sided(), Some((bid, ask)) if bid >= Price::ZERO && ask.is_positive() && ask >= bid);
        let mark = if two_sided { q.mid() } else { q.last };
        let Some(mark) = mark else {
            return (None, MarkStatus::Missing);
        };
        let age = now.duration_since(q.ts);
        let status = if age > stale_after {
            MarkStatus::Stale
        } else {
            MarkStatus::Fresh
        };
        (Some((mark, age)), status)
    }

    fn view(
        &self,
        id: &InstrumentId,
        p: &Position,
        now: Timestamp,
        stale_after: Duration,
    ) -> PositionView {
        let (mark, mark_status) = Self::mark_of(&self.quotes, id, now, stale_after);
        let mult = p.instrument.multiplier();
        let value = |px: Price| px.notional(p.qty, mult);
        let pnl =
            |px: Price| -> Result<Money, MoneyError> { value(px)?.checked_sub(value(p.avg_cost)?) };
        PositionView {
            account: p.account.clone(),
            instrument: p.instrument.clone(),
            qty: p.qty,
            avg_cost: p.avg_cost,
            mark: mark.map(|(m, _)| m),
            mark_status,
            quote_age: mark.map(|(_, a)| a),
            // An overflow here would need a position beyond any real account; show it as unknown.
            market_value: mark.and_then(|(m, _)| value(m).ok()),
            unrealized_pnl: mark.and_then(|(m, _)| pnl(m).ok()),
            greeks: self.quotes.get(&p.instrument.id()).and_then(|q| q.greeks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    const STALE: Duration = Duration::from_secs(5);
    const GRACE: Duration = Duration::from_secs(5);

    fn t(secs: u64) -> Timestamp {
        Timestamp::default().plus(Duration::from_secs(1_700_000_000 + secs))
    }

    fn px(s: &str) -> Price {
        Price::parse(s).expect("valid price")
    }

    fn put_440() -> Instrument {
        stubs::put(440)
    }

    fn position(instrument: Instrument, qty: i64, avg: &str) -> BrokerEvent {
        BrokerEvent::Position(Position {
            account: AccountId::new("DU1"),
            instrument,
            qty,
            avg_cost: px(avg),
        })
    }

    fn quote(instrument: Instrument, bid: &str, ask: &str, ts: Timestamp) -> BrokerEvent {
        BrokerEvent::Quote(Quote {
            instrument,
            bid: Some(px(bid)),
            ask: Some(px(ask)),
            last: None,
            bid_size: 10,
            ask_size: 10,
            greeks: None,
            underlying_price: None,
            ts,
        })
    }

    #[test]
    fn short_put_pnl_uses_mid_and_multiplier() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), -2, "3.00"));
        book.apply(&quote(put_440(), "2.40", "2.60", t(0)));
        let rows = book.positions(t(1), STALE);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.mark, Some(px("2.50")));
        assert_eq!(row.mark_status, MarkStatus::Fresh);
        assert_eq!(row.quote_age, Some(Duration::from_secs(1)));
        // Sold at 3.00, now 2.50: (2.50 - 3.00) × -2 × 100 = +100.
        assert_eq!(
            row.unrealized_pnl,
            Some(Money::parse("100").expect("money"))
        );
        assert_eq!(row.market_value, Some(Money::parse("-500").expect("money")));
    }

    #[test]
    fn position_without_quote_is_listed_as_missing_not_skipped() {
        let mut book = LiveBook::new();
        book.apply(&position(Instrument::stock("SPY"), 100, "440"));
        let rows = book.positions(t(0), STALE);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].mark_status, MarkStatus::Missing);
        assert_eq!(rows[0].unrealized_pnl, None);
    }

    #[test]
    fn old_quote_is_stale_and_transitions_are_reported_once() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), -1, "3.00"));
        book.apply(&quote(put_440(), "2.40", "2.60", t(0)));
        assert!(
            book.mark_transitions(t(1), STALE, GRACE).is_empty(),
            "fresh first sight is not news"
        );
        let went_stale = book.mark_transitions(t(10), STALE, GRACE);
        assert_eq!(went_stale.len(), 1);
        assert_eq!(went_stale[0].from, Some(MarkStatus::Fresh));
        assert_eq!(went_stale[0].to, MarkStatus::Stale);
        assert!(
            book.mark_transitions(t(11), STALE, GRACE).is_empty(),
            "reported once"
        );
        book.apply(&quote(put_440(), "2.30", "2.50", t(12)));
        let recovered = book.mark_transitions(t(12), STALE, GRACE);
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].to, MarkStatus::Fresh);
    }

    #[test]
    fn missing_quote_on_first_sight_is_reported_once_the_grace_has_passed() {
        let mut book = LiveBook::new();
        book.apply(&position(Instrument::stock("SPY"), 100, "440"));
        assert!(book.mark_transitions(t(0), STALE, GRACE).is_empty());
        assert!(book.mark_transitions(t(4), STALE, GRACE).is_empty());
        let tr = book.mark_transitions(t(5), STALE, GRACE);
        assert_eq!(tr.len(), 1);
        assert_eq!((tr[0].from, tr[0].to), (None, MarkStatus::Missing));
        assert!(book.mark_transitions(t(6), STALE, GRACE).is_empty(), "once");
    }

    #[test]
    fn a_first_quote_within_the_grace_is_not_news() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), -1, "3.00"));
        assert!(book.mark_transitions(t(0), STALE, GRACE).is_empty());
        book.apply(&quote(put_440(), "2.40", "2.60", t(1)));
        assert!(book.mark_transitions(t(1), STALE, GRACE).is_empty());
        // Losing it later is a change from fresh, reported at once.
        book.apply(&quote(put_440(), "-1", "-1", t(2)));
        let tr = book.mark_transitions(t(2), STALE, GRACE);
        assert_eq!(tr.len(), 1);
        assert_eq!(
            (tr[0].from, tr[0].to),
            (Some(MarkStatus::Fresh), MarkStatus::Missing)
        );
    }

    #[test]
    fn older_quote_never_replaces_newer_one() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), -1, "3.00"));
        book.apply(&quote(put_440(), "2.40", "2.60", t(10)));
        assert!(!book.apply(&quote(put_440(), "9.00", "9.20", t(5))));
        assert_eq!(book.positions(t(10), STALE)[0].mark, Some(px("2.50")));
    }

    #[test]
    fn zero_quantity_removes_and_snapshot_replaces() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), -1, "3.00"));
        book.apply(&position(Instrument::stock("SPY"), 100, "440"));
        assert_eq!(book.position_count(), 2);
        assert!(book.apply(&position(put_440(), 0, "0")));
        assert_eq!(book.position_count(), 1);
        book.replace_positions(vec![Position {
            account: AccountId::new("DU1"),
            instrument: put_440(),
            qty: -3,
            avg_cost: px("1.00"),
        }]);
        let rows = book.positions(t(0), STALE);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].qty, -3);
    }

    #[test]
    fn zero_bid_is_a_market_not_a_missing_quote() {
        // A far wing quoted 0.00 / 0.04 must keep a fresh mark: treating it as missing left the
        // strategy's rules unable to evaluate whenever its bid touched zero.
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), 1, "0.05"));
        book.apply(&quote(put_440(), "0", "0.04", t(0)));
        let row = &book.positions(t(0), STALE)[0];
        assert_eq!(
            (row.mark, row.mark_status),
            (Some(px("0.02")), MarkStatus::Fresh)
        );
        // No ask at all is still one-sided, so still missing without a last trade.
        book.apply(&quote(put_440(), "0", "0", t(0)));
        let row = &book.positions(t(0), STALE)[0];
        assert_eq!((row.mark, row.mark_status), (None, MarkStatus::Missing));
    }

    #[test]
    fn one_sided_quote_falls_back_to_last_trade() {
        let mut book = LiveBook::new();
        book.apply(&position(put_440(), 1, "1.00"));
        book.apply(&BrokerEvent::Quote(Quote {
            instrument: put_440(),
            // IB's "no bid available".
            bid: None,
            ask: Some(px("0.05")),
            last: Some(px("0.03")),
            bid_size: 0,
            ask_size: 5,
            greeks: None,
            underlying_price: None,
            ts: t(0),
        }));
        assert_eq!(book.positions(t(0), STALE)[0].mark, Some(px("0.03")));
    }
}
