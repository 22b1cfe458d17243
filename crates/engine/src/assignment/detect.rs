//! [`Detector`]: finds exercises and assignments in what the broker reports. Pure and
//! synchronous; time comes in as an argument.
//!
//! Sources:
//! - **position stream**: an option quantity falls toward zero while the underlying's stock
//!   position changes by `-Δoption × multiplier × (+1 call / −1 put)` shares. The two arrive as
//!   separate position events, in either order, so each unexplained change waits in a pending
//!   list for `window` to find its partner. An option that disappears with nothing delivered
//!   is an expiry (on/after its expiry date: no action) or, before expiry, unexplained.
//! - **executions**: every execution moves the known positions (deduplicated by exec id); an
//!   execution that arrives after its position event explains that pending change instead. An
//!   execution the broker *marks* as assignment/exercise/expiry is a detection by itself.
//! - **snapshots** (start-up, reconnect): the broker's complete positions compared with the
//!   last known ones (persisted by the guard), so an assignment while the app was closed is
//!   found at the next start.
//!
//! Duplicates produce nothing (the quantity did not change); a stale event that restores the
//! quantity a recent change replaced is ignored, so an out-of-order replay cannot trigger a
//! second response.

use super::hours::MarketHours;
use super::record::{Detection, DetectionKind, DetectionSource, ExecutionMarker};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tradeguard_model::{
    AccountId, ExecId, Execution, Instrument, InstrumentId, OptionClass, Position, Price, Right,
    Timestamp,
};

/// Detector tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// How long an unexplained option or stock change waits for its partner (or for the
    /// execution that explains it).
    pub window: Duration,
    /// How long a replaced quantity is remembered to recognise stale replays.
    pub stale_horizon: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            stale_horizon: Duration::from_secs(600),
        }
    }
}

type Key = (AccountId, InstrumentId);

#[derive(Debug, Clone)]
struct Held {
    instrument: Instrument,
    qty: i64,
    avg_cost: Price,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendKind {
    /// An option position moved toward zero.
    OptionFall,
    /// A stock position changed.
    Stock,
    /// Anything else (an option grew): only waits for an execution to explain it.
    Other,
}

#[derive(Debug, Clone)]
struct Pending {
    account: AccountId,
    instrument: Instrument,
    /// Signed change of the position.
    delta: i64,
    /// Quantity before the change.
    before: i64,
    at: Timestamp,
    kind: PendKind,
}

#[derive(Debug, Clone)]
struct Change {
    key: Key,
    before: i64,
    after: i64,
    at: Timestamp,
}

/// Shares an equity option's exercise/assignment moves when its position changes by
/// `option_delta` contracts; `None` for cash-settled options.
pub fn expected_shares(option: &Instrument, option_delta: i64) -> Option<i64> {
    let o = option.as_option()?;
    if o.class != OptionClass::Equity {
        return None;
    }
    let dir = match o.right {
        Right::Call => 1,
        Right::Put => -1,
    };
    Some(
        option_delta
            .saturating_neg()
            .saturating_mul(i64::from(o.multiplier))
            .saturating_mul(dir),
    )
}

/// The detector (see the module docs).
pub struct Detector {
    cfg: DetectorConfig,
    hours: Arc<dyn MarketHours>,
    known: BTreeMap<Key, Held>,
    seen_execs: HashSet<ExecId>,
    pending: Vec<Pending>,
    recent: Vec<Change>,
    /// Stock already credited by a marked option execution: (account, symbol, shares).
    anticipated: Vec<(AccountId, String, i64)>,
    /// Differences the last reconciliation saw (quantity at the broker), confirmed lost when
    /// the next one sees them again.
    suspect: BTreeMap<Key, i64>,
}

fn key_of(account: &AccountId, i: &Instrument) -> Key {
    (account.clone(), i.id())
}

impl Detector {
    /// An empty detector.
    pub fn new(cfg: DetectorConfig, hours: Arc<dyn MarketHours>) -> Self {
        Self {
            cfg,
            hours,
            known: BTreeMap::new(),
            seen_execs: HashSet::new(),
            pending: Vec::new(),
            recent: Vec::new(),
            anticipated: Vec::new(),
            suspect: BTreeMap::new(),
        }
    }

    /// Replaces the known positions without detecting anything (first start, or the journal's
    /// last known positions before the start-up snapshot is compared).
    pub fn seed(&mut self, positions: &[Position]) {
        self.known.clear();
        for p in positions.iter().filter(|p| p.qty != 0) {
            self.known.insert(
                key_of(&p.account, &p.instrument),
                Held {
                    instrument: p.instrument.clone(),
                    qty: p.qty,
                    avg_cost: p.avg_cost,
                },
            );
        }
    }

    /// The positions as the detector knows them (persisted by the guard).
    pub fn known_positions(&self) -> Vec<Position> {
        self.known
            .iter()
            .map(|((a, _), h)| Position {
                account: a.clone(),
                instrument: h.instrument.clone(),
                qty: h.qty,
                avg_cost: h.avg_cost,
            })
            .collect()
    }

    /// Known signed quantity of `instrument` in `account`.
    pub fn qty(&self, account: &AccountId, instrument: &InstrumentId) -> i64 {
        self.known
            .get(&(account.clone(), instrument.clone()))
            .map_or(0, |h| h.qty)
    }

    /// The earliest time [`Detector::poll`] has something to resolve.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.pending
            .iter()
            .map(|p| p.at.plus(self.cfg.window))
            .min()
    }

    fn set_known(&mut self, key: Key, instrument: &Instrument, qty: i64, avg: Option<Price>) {
        if qty == 0 {
            self.known.remove(&key);
            return;
        }
        let avg_cost = avg
            .or_else(|| self.known.get(&key).map(|h| h.avg_cost))
            .unwrap_or(Price::ZERO);
        self.known.insert(
            key,
            Held {
                instrument: instrument.clone(),
                qty,
                avg_cost,
            },
        );
    }

    fn prune(&mut self, now: Timestamp) {
        let h = self.cfg.stale_horizon;
        self.recent.retain(|c| now <= c.at.plus(h));
    }

    /// A position event from the live stream.
    pub fn on_position(&mut self, p: &Position, now: Timestamp) -> Vec<Detection> {
        self.prune(now);
        let key = key_of(&p.account, &p.instrument);
        let before = self.known.get(&key).map_or(0, |h| h.qty);
        if p.qty == before {
            if p.qty != 0 {
                self.set_known(key, &p.instrument, p.qty, Some(p.avg_cost));
            }
            return Vec::new();
        }
        if self
            .recent
            .iter()
            .any(|c| c.key == key && c.after == before && c.before == p.qty)
        {
            tracing::info!(instrument = %key.1, stale = p.qty, current = before, "stale position event ignored (replay of a replaced quantity)");
            return Vec::new();
        }
        let delta = p.qty.saturating_sub(before);
        self.set_known(key.clone(), &p.instrument, p.qty, Some(p.avg_cost));
        self.recent.push(Change {
            key,
            before,
            after: p.qty,
            at: now,
        });
        let falls =
            before != 0 && delta.signum() == -before.signum() && delta.abs() <= before.abs();
        let kind = match &p.instrument {
            Instrument::Option(_) if falls => PendKind::OptionFall,
            Instrument::Stock { .. } => PendKind::Stock,
            _ => PendKind::Other,
        };
        self.pending.push(Pending {
            account: p.account.clone(),
            instrument: p.instrument.clone(),
            delta,
            before,
            at: now,
            kind,
        });
        self.try_match(
            &p.account,
            p.instrument.underlying(),
            now,
            DetectionSource::PositionStream,
        )
    }

    /// Pairs pending option falls with pending stock changes of the same account and
    /// underlying: one exact partner first, else all falls together.
    fn try_match(
        &mut self,
        account: &AccountId,
        underlying: &str,
        now: Timestamp,
        source: DetectionSource,
    ) -> Vec<Detection> {
        let mut out = Vec::new();
        loop {
            let stock_idx = self.pending.iter().position(|p| {
                p.kind == PendKind::Stock
                    && &p.account == account
                    && p.instrument.underlying() == underlying
            });
            let Some(si) = stock_idx else { break };
            let shares = self.pending[si].delta;
            let falls: Vec<usize> = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.kind == PendKind::OptionFall
                        && &p.account == account
                        && p.instrument.underlying() == underlying
                        && expected_shares(&p.instrument, p.delta).is_some()
                })
                .map(|(i, _)| i)
                .collect();
            let exp =
                |i: usize| expected_shares(&self.pending[i].instrument, self.pending[i].delta);
            let chosen: Vec<usize> =
                if let Some(i) = falls.iter().copied().find(|i| exp(*i) == Some(shares)) {
                    vec![i]
                } else if falls.len() > 1
                    && falls.iter().map(|i| exp(*i).unwrap_or(0)).sum::<i64>() == shares
                {
                    falls
                } else {
                    break;
                };
            for i in &chosen {
                let p = &self.pending[*i];
                out.push(Detection {
                    account: p.account.clone(),
                    option: p.instrument.clone(),
                    kind: if p.before < 0 {
                        DetectionKind::Assigned
                    } else {
                        DetectionKind::Exercised
                    },
                    contracts: p.delta.abs(),
                    stock_delivered: exp(*i).unwrap_or(0),
                    at: now,
                    source,
                });
            }
            let mut drop: Vec<usize> = chosen;
            drop.push(si);
            drop.sort_unstable();
            for i in drop.into_iter().rev() {
                self.pending.remove(i);
            }
        }
        out
    }

    /// An execution without an exercise/assignment marker (a trade).
    pub fn on_execution(&mut self, e: &Execution, now: Timestamp) -> Vec<Detection> {
        self.prune(now);
        if !self.seen_execs.insert(e.exec_id.clone()) {
            return Vec::new();
        }
        let key = key_of(&e.account, &e.instrument);
        let mut rest = e.signed_qty();
        // A position event that arrived first: the execution explains (part of) it.
        for p in self
            .pending
            .iter_mut()
            .filter(|p| key_of(&p.account, &p.instrument) == key)
        {
            if rest == 0 || p.delta.signum() != rest.signum() {
                continue;
            }
            let m = p.delta.abs().min(rest.abs()) * rest.signum();
            p.delta -= m;
            rest -= m;
        }
        self.pending.retain(|p| p.delta != 0);
        if rest != 0 {
            let q = self
                .known
                .get(&key)
                .map_or(0, |h| h.qty)
                .saturating_add(rest);
            self.set_known(key, &e.instrument, q, None);
        }
        Vec::new()
    }

    /// Executions of the guard's own emergency orders found at start-up (they may have filled
    /// while the app was down, and the last known positions may or may not contain them).
    /// Per instrument, a difference between `broker` and the known quantity that these fills
    /// explain (same direction, no larger than their sum) is taken into the known positions,
    /// so the start-up snapshot comparison does not mistake the guard's own fills for an
    /// assignment; any other difference is left for [`Detector::on_snapshot`]. Every exec id is
    /// remembered, so a replay of these executions changes nothing.
    pub fn apply_own_fills(&mut self, execs: &[Execution], broker: &[Position]) {
        let mut sums: BTreeMap<Key, (Instrument, i64)> = BTreeMap::new();
        for e in execs {
            self.seen_execs.insert(e.exec_id.clone());
            let s = sums
                .entry(key_of(&e.account, &e.instrument))
                .or_insert_with(|| (e.instrument.clone(), 0));
            s.1 = s.1.saturating_add(e.signed_qty());
        }
        for (key, (inst, ours)) in sums {
            let known = self.known.get(&key).map_or(0, |h| h.qty);
            let (now, avg) = broker
                .iter()
                .find(|p| key_of(&p.account, &p.instrument) == key)
                .map_or((0, None), |p| (p.qty, Some(p.avg_cost)));
            let diff = now.saturating_sub(known);
            if diff != 0 && diff.signum() == ours.signum() && diff.abs() <= ours.abs() {
                self.set_known(key, &inst, now, avg);
            }
        }
    }

    /// An execution the broker marked as assignment, exercise or expiry.
    pub fn on_marked_execution(
        &mut self,
        e: &Execution,
        marker: ExecutionMarker,
        now: Timestamp,
    ) -> Vec<Detection> {
        self.prune(now);
        if !self.seen_execs.insert(e.exec_id.clone()) {
            return Vec::new();
        }
        let key = key_of(&e.account, &e.instrument);
        let signed = e.signed_qty();
        if e.instrument.as_option().is_none() {
            // The stock side of a marked assignment.
            if let Some(i) = self.anticipated.iter().position(|(a, s, q)| {
                a == &e.account && s == e.instrument.underlying() && *q == signed
            }) {
                self.anticipated.remove(i);
                return Vec::new();
            }
            let before = self.qty(&e.account, &key.1);
            let after = before.saturating_add(signed);
            self.set_known(key, &e.instrument, after, None);
            self.pending.push(Pending {
                account: e.account.clone(),
                instrument: e.instrument.clone(),
                delta: signed,
                before,
                at: now,
                kind: PendKind::Stock,
            });
            return self.try_match(
                &e.account,
                e.instrument.underlying(),
                now,
                DetectionSource::Execution,
            );
        }
        // The option side: the position event may have come first.
        let before = match self.pending.iter().position(|p| {
            p.kind == PendKind::OptionFall && key_of(&p.account, &p.instrument) == key
        }) {
            Some(i) => self.pending.remove(i).before,
            None => {
                let b = self.qty(&e.account, &key.1);
                self.set_known(key, &e.instrument, b.saturating_add(signed), None);
                b
            }
        };
        let kind = match marker {
            ExecutionMarker::Assignment => DetectionKind::Assigned,
            ExecutionMarker::Exercise => DetectionKind::Exercised,
            ExecutionMarker::Expiry => DetectionKind::Expired,
        };
        let shares = if kind == DetectionKind::Expired {
            0
        } else {
            expected_shares(&e.instrument, signed).unwrap_or(0)
        };
        if shares != 0 {
            let sym = e.instrument.underlying().to_owned();
            let stock = Instrument::stock(&sym);
            // Already seen as a stock position change? Otherwise credit it now so the coming
            // stock event (or marked stock execution) is not counted twice.
            if let Some(i) = self.pending.iter().position(|p| {
                p.kind == PendKind::Stock
                    && p.account == e.account
                    && p.instrument == stock
                    && p.delta == shares
            }) {
                self.pending.remove(i);
            } else {
                let sk = key_of(&e.account, &stock);
                let q = self.qty(&e.account, &sk.1).saturating_add(shares);
                self.set_known(
                    sk,
                    &stock,
                    q,
                    Some(e.instrument.as_option().map_or(Price::ZERO, |o| o.strike)),
                );
                self.anticipated.push((e.account.clone(), sym, shares));
            }
        }
        tracing::debug!(before, "marked execution");
        vec![Detection {
            account: e.account.clone(),
            option: e.instrument.clone(),
            kind,
            contracts: e.qty,
            stock_delivered: shares,
            at: now,
            source: DetectionSource::Execution,
        }]
    }

    /// The broker's complete positions (start-up or reconnect) against the known ones.
    pub fn on_snapshot(&mut self, positions: &[Position], now: Timestamp) -> Vec<Detection> {
        self.suspect.clear();
        self.compare(positions, None, now)
    }

    /// A periodic reconciliation's positions (or one after the broker stream dropped events).
    /// A difference from the known positions may be an event still in flight, so it is only
    /// applied when the next reconciliation shows the same quantity again with nothing in
    /// between explaining it: its events were lost, and it goes through the same matching as a
    /// start-up snapshot (an assignment whose two position events were dropped is found).
    pub fn on_reconcile(&mut self, positions: &[Position], now: Timestamp) -> Vec<Detection> {
        let snap = Self::snapshot_map(positions);
        let mut keys: Vec<&Key> = self.known.keys().chain(snap.keys()).collect();
        keys.sort();
        keys.dedup();
        let diffs: BTreeMap<Key, i64> = keys
            .into_iter()
            .filter_map(|k| {
                let theirs = snap.get(k).map_or(0, |p| p.qty);
                let ours = self.known.get(k).map_or(0, |h| h.qty);
                (theirs != ours).then(|| (k.clone(), theirs))
            })
            .collect();
        let confirmed: std::collections::BTreeSet<Key> = diffs
            .iter()
            .filter(|(k, q)| self.suspect.get(*k) == Some(*q))
            .map(|(k, _)| k.clone())
            .collect();
        self.suspect = diffs
            .into_iter()
            .filter(|(k, _)| !confirmed.contains(k))
            .collect();
        if confirmed.is_empty() {
            return Vec::new();
        }
        tracing::warn!(
            keys = ?confirmed.iter().map(|k| k.1.to_string()).collect::<Vec<_>>(),
            "position changes the event stream never delivered: compared as a snapshot"
        );
        self.compare(positions, Some(&confirmed), now)
    }

    fn snapshot_map(positions: &[Position]) -> BTreeMap<Key, &Position> {
        positions
            .iter()
            .filter(|p| p.qty != 0)
            .map(|p| (key_of(&p.account, &p.instrument), p))
            .collect()
    }

    /// Compares `positions` with the known ones, for every key or only `only`'s (whose pending
    /// changes are then resolved now; other pending changes keep their window).
    fn compare(
        &mut self,
        positions: &[Position],
        only: Option<&std::collections::BTreeSet<Key>>,
        now: Timestamp,
    ) -> Vec<Detection> {
        self.prune(now);
        let snap = Self::snapshot_map(positions);
        let mut keys: Vec<Key> = self.known.keys().cloned().collect();
        keys.extend(snap.keys().cloned());
        keys.sort();
        keys.dedup();
        keys.retain(|k| only.is_none_or(|o| o.contains(k)));
        for key in keys {
            let before = self.known.get(&key).map_or(0, |h| h.qty);
            let (after, inst, avg) = match snap.get(&key) {
                Some(p) => (p.qty, p.instrument.clone(), Some(p.avg_cost)),
                None => match self.known.get(&key) {
                    Some(h) => (0, h.instrument.clone(), None),
                    None => continue,
                },
            };
            if after == before {
                continue;
            }
            let delta = after - before;
            self.set_known(key.clone(), &inst, after, avg);
            let falls =
                before != 0 && delta.signum() == -before.signum() && delta.abs() <= before.abs();
            let kind = match &inst {
                Instrument::Option(_) if falls => PendKind::OptionFall,
                Instrument::Stock { .. } => PendKind::Stock,
                _ => PendKind::Other,
            };
            self.pending.push(Pending {
                account: key.0.clone(),
                instrument: inst,
                delta,
                before,
                at: now,
                kind,
            });
        }
        if only.is_none() {
            self.anticipated.clear();
        }
        let mut groups: Vec<(AccountId, String)> = self
            .pending
            .iter()
            .map(|p| (p.account.clone(), p.instrument.underlying().to_owned()))
            .collect();
        groups.sort();
        groups.dedup();
        let mut out = Vec::new();
        for (a, u) in groups {
            out.extend(self.try_match(&a, &u, now, DetectionSource::Snapshot));
        }
        // What the snapshot covers is complete: whatever is still unpaired there is resolved.
        out.extend(self.resolve(
            |p| only.is_none_or(|o| o.contains(&key_of(&p.account, &p.instrument))),
            now,
            DetectionSource::Snapshot,
        ));
        out
    }

    /// Resolves pending changes whose window has passed.
    pub fn poll(&mut self, now: Timestamp) -> Vec<Detection> {
        self.prune(now);
        let w = self.cfg.window;
        self.resolve(
            |p| now >= p.at.plus(w),
            now,
            DetectionSource::PositionStream,
        )
    }

    fn resolve(
        &mut self,
        due: impl Fn(&Pending) -> bool,
        now: Timestamp,
        source: DetectionSource,
    ) -> Vec<Detection> {
        let (done, keep): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| due(p));
        self.pending = keep;
        let today = self.hours.local(now).date();
        let mut out = Vec::new();
        for p in done {
            match p.kind {
                PendKind::OptionFall => {
                    let expired = p.instrument.expiry().is_some_and(|x| today >= x);
                    out.push(Detection {
                        account: p.account,
                        kind: if expired {
                            DetectionKind::Expired
                        } else {
                            DetectionKind::Unexplained
                        },
                        option: p.instrument,
                        contracts: p.delta.abs(),
                        stock_delivered: 0,
                        at: now,
                        source,
                    });
                }
                PendKind::Stock | PendKind::Other => tracing::info!(
                    instrument = %p.instrument.id(),
                    delta = p.delta,
                    "position change with no execution and no option partner: taken as the broker reports it"
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::hours::UsEquityHours;
    use tradeguard_model::{ExecId, Side, stubs};

    fn det() -> Detector {
        Detector::new(
            DetectorConfig::default(),
            Arc::new(UsEquityHours::fixed_offset(-5 * 3600)),
        )
    }

    fn pos(i: Instrument, qty: i64) -> Position {
        Position {
            account: stubs::account(),
            instrument: i,
            qty,
            avg_cost: Price::ZERO,
        }
    }

    fn spy() -> Instrument {
        Instrument::stock("SPY")
    }

    /// Before the stubs' expiry (2025-01-17).
    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_736_000_000 + s)
    }

    fn condor() -> Vec<Position> {
        vec![
            pos(stubs::put(435), 2),
            pos(stubs::put(440), -2),
            pos(stubs::call(460), -2),
            pos(stubs::call(465), 2),
        ]
    }

    #[test]
    fn expected_shares_by_right_and_side() {
        assert_eq!(
            expected_shares(&stubs::put(440), 2),
            Some(200),
            "short put assigned"
        );
        assert_eq!(
            expected_shares(&stubs::call(460), 2),
            Some(-200),
            "short call assigned"
        );
        assert_eq!(
            expected_shares(&stubs::call(460), -1),
            Some(100),
            "long call exercised"
        );
        assert_eq!(
            expected_shares(&stubs::put(435), -1),
            Some(-100),
            "long put exercised"
        );
        assert_eq!(expected_shares(&spy(), 1), None);
    }

    #[test]
    fn option_then_stock_and_stock_then_option_pair_once() {
        for stock_first in [false, true] {
            let mut d = det();
            d.seed(&condor());
            let mut got = Vec::new();
            let evs = if stock_first {
                vec![pos(spy(), 200), pos(stubs::put(440), 0)]
            } else {
                vec![pos(stubs::put(440), 0), pos(spy(), 200)]
            };
            for (n, e) in evs.iter().enumerate() {
                got.extend(d.on_position(e, t(n as i64)));
            }
            // Duplicates and a stale replay of the old quantities: nothing more.
            for e in evs
                .iter()
                .chain([pos(stubs::put(440), -2), pos(spy(), 0)].iter())
            {
                got.extend(d.on_position(e, t(5)));
            }
            got.extend(d.poll(t(100)));
            assert_eq!(got.len(), 1, "stock_first={stock_first}: {got:#?}");
            assert_eq!(got[0].kind, DetectionKind::Assigned);
            assert_eq!(got[0].contracts, 2);
            assert_eq!(got[0].stock_delivered, 200);
            assert_eq!(got[0].option, stubs::put(440));
            assert_eq!(d.qty(&stubs::account(), &spy().id()), 200);
            assert_eq!(d.qty(&stubs::account(), &stubs::put(440).id()), 0);
        }
    }

    #[test]
    fn exercise_of_a_long_and_expiry_and_unexplained() {
        let mut d = det();
        d.seed(&condor());
        let mut got = d.on_position(&pos(stubs::call(465), 1), t(0));
        got.extend(d.on_position(&pos(spy(), 100), t(1)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, DetectionKind::Exercised);
        assert_eq!(got[0].contracts, 1);
        // Before expiry with nothing delivered: unexplained after the window.
        assert!(d.on_position(&pos(stubs::put(435), 0), t(2)).is_empty());
        assert!(d.poll(t(5)).is_empty(), "still inside the window");
        let u = d.poll(t(13));
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].kind, DetectionKind::Unexplained);
        // On expiry day: expired, no stock.
        let exp = Timestamp::from_secs(1_737_154_800); // 2025-01-17 23:00 UTC = 18:00 ET
        assert!(d.on_position(&pos(stubs::call(460), 0), exp).is_empty());
        let e = d.poll(exp.plus(Duration::from_secs(60)));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, DetectionKind::Expired);
        assert_eq!(e[0].stock_delivered, 0);
    }

    fn exec(id: &str, i: Instrument, side: Side, qty: i64) -> Execution {
        Execution {
            exec_id: ExecId::new(id),
            order_id: None,
            account: stubs::account(),
            instrument: i,
            side,
            qty,
            price: Price::ZERO,
            ts: t(0),
            commission: None,
            liquidity: None,
        }
    }

    #[test]
    fn trades_are_not_assignments_in_either_order() {
        let mut d = det();
        d.seed(&condor());
        // Execution first, then its position event.
        assert!(
            d.on_execution(&exec("e1", stubs::call(460), Side::Buy, 2), t(0))
                .is_empty()
        );
        assert!(d.on_position(&pos(stubs::call(460), 0), t(0)).is_empty());
        // Position event first, then the execution (reordered), and a stock sale.
        assert!(d.on_position(&pos(stubs::put(440), 0), t(1)).is_empty());
        assert!(
            d.on_execution(&exec("e2", stubs::put(440), Side::Buy, 2), t(2))
                .is_empty()
        );
        assert!(
            d.on_execution(&exec("e2", stubs::put(440), Side::Buy, 2), t(2))
                .is_empty(),
            "dup"
        );
        assert!(d.on_position(&pos(spy(), -200), t(3)).is_empty());
        assert!(d.poll(t(100)).is_empty(), "nothing left unexplained");
        assert_eq!(d.qty(&stubs::account(), &stubs::put(440).id()), 0);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn marked_execution_detects_once_with_its_position_events() {
        let mut d = det();
        d.seed(&condor());
        let e = exec("a1", stubs::put(440), Side::Buy, 2);
        let got = d.on_marked_execution(&e, ExecutionMarker::Assignment, t(0));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].source, DetectionSource::Execution);
        assert_eq!(got[0].stock_delivered, 200);
        assert!(
            d.on_marked_execution(&e, ExecutionMarker::Assignment, t(0))
                .is_empty()
        );
        assert!(d.on_position(&pos(stubs::put(440), 0), t(1)).is_empty());
        assert!(d.on_position(&pos(spy(), 200), t(1)).is_empty());
        assert!(d.poll(t(100)).is_empty());
    }

    #[test]
    fn snapshot_finds_what_happened_while_closed() {
        let mut d = det();
        d.seed(&condor());
        let mut now = condor();
        now.retain(|p| p.instrument != stubs::put(440));
        now.push(pos(spy(), 200));
        let got = d.on_snapshot(&now, t(0));
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].kind, DetectionKind::Assigned);
        assert_eq!(got[0].source, DetectionSource::Snapshot);
        assert!(
            d.on_snapshot(&now, t(1)).is_empty(),
            "same snapshot again: nothing"
        );
        assert_eq!(d.known_positions().len(), 4);
    }

    /// Do no harm: an assignment whose position events were both dropped is found by the
    /// reconciliations (the second one that still sees it), and an event merely in flight
    /// at the first one is never taken for a lost one.
    #[test]
    fn reconciliations_find_a_dropped_assignment_and_ignore_events_in_flight() {
        let mut d = det();
        d.seed(&condor());
        let mut now = condor();
        now.retain(|p| p.instrument != stubs::put(440));
        now.push(pos(spy(), 200));
        assert!(
            d.on_reconcile(&now, t(0)).is_empty(),
            "first sight: in flight?"
        );
        let got = d.on_reconcile(&now, t(12));
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(
            (got[0].kind, got[0].contracts, got[0].stock_delivered),
            (DetectionKind::Assigned, 2, 200)
        );
        assert!(d.on_reconcile(&now, t(24)).is_empty(), "found once");

        // A close whose execution is in flight at one reconciliation and arrives before the
        // next: nothing is detected, nothing counted twice.
        let mut d = det();
        d.seed(&condor());
        let mut closed = condor();
        closed.retain(|p| p.instrument != stubs::put(440));
        assert!(d.on_reconcile(&closed, t(0)).is_empty());
        assert!(
            d.on_execution(&exec("c1", stubs::put(440), Side::Buy, 2), t(1))
                .is_empty()
        );
        assert!(d.on_reconcile(&closed, t(12)).is_empty());
        assert_eq!(d.qty(&stubs::account(), &stubs::put(440).id()), 0);
        assert!(d.poll(t(100)).is_empty());
    }
}
