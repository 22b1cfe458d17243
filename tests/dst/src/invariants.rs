//! The eight invariants as a pure checker over plain [`Observation`]s, so that each one can be
//! shown to fail on a crafted state (see `tests/invariants.rs`). The harness turns the live
//! guard, engine and venue into an `Observation` after every step; [`Checker::observe`] keeps
//! what it needs between steps (groups already seen, when the engine went quiet, since when a
//! condition has held).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;
use tradeguard_model::{Side, Timestamp};

/// The invariants, numbered as in the issue and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1: after any group settles, no (unintended) naked short option is left open.
    NoNakedShortAfterSettle,
    /// 2: never two live exit orders for the same quantity of the same instrument.
    NoDuplicateExit,
    /// 3: hedges never exceed the unmatched quantity.
    HedgeWithinUnmatched,
    /// 4: after a reconciliation interval without new faults, local state equals the venue's.
    LocalEqualsVenue,
    /// 5: every acknowledged database write is present after a crash.
    AcknowledgedWritesDurable,
    /// 6: a cap breach, auto-flatten or forced unwind is resolved within its configured time
    /// once the venue accepts orders.
    BreachResolvedInTime,
    /// 7: a Broken strategy is never closed by a non-emergency path.
    BrokenOnlyEmergency,
    /// 8: the heartbeat is never stale beyond the supervisor's restart budget.
    EnforcementAlive,
    /// 9: no order nobody asked for: a hedge only ever trades an instrument one of the guard's
    /// own (non-hedge) groups traded — never a short the trader holds, sold elsewhere, or an
    /// assignment left.
    NoUnaskedOrder,
    /// 10: a confirmed flatten ends flat or says exactly why not, within the close budget of
    /// an accepting venue.
    ConfirmedFlattenEnds,
}

impl Invariant {
    /// Number as in the issue.
    pub fn number(self) -> u8 {
        match self {
            Self::NoNakedShortAfterSettle => 1,
            Self::NoDuplicateExit => 2,
            Self::HedgeWithinUnmatched => 3,
            Self::LocalEqualsVenue => 4,
            Self::AcknowledgedWritesDurable => 5,
            Self::BreachResolvedInTime => 6,
            Self::BrokenOnlyEmergency => 7,
            Self::EnforcementAlive => 8,
            Self::NoUnaskedOrder => 9,
            Self::ConfirmedFlattenEnds => 10,
        }
    }

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoNakedShortAfterSettle => "inv1.naked_short_after_settle",
            Self::NoDuplicateExit => "inv2.duplicate_exit",
            Self::HedgeWithinUnmatched => "inv3.over_hedge",
            Self::LocalEqualsVenue => "inv4.local_differs_from_venue",
            Self::AcknowledgedWritesDurable => "inv5.acknowledged_write_lost",
            Self::BreachResolvedInTime => "inv6.breach_unresolved",
            Self::BrokenOnlyEmergency => "inv7.broken_closed_by_normal_path",
            Self::EnforcementAlive => "inv8.heartbeat_stale",
            Self::NoUnaskedOrder => "inv9.order_nobody_asked_for",
            Self::ConfirmedFlattenEnds => "inv10.confirmed_flatten_unfinished",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} ({})", self.number(), self.code())
    }
}

/// A broken invariant with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// When (virtual).
    pub at: Timestamp,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.invariant, self.at, self.detail)
    }
}

/// Why an order group was sent (mirrors the engine's purposes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Opening.
    Open,
    /// Normal close.
    Close,
    /// Rule flatten.
    Flatten,
    /// Emergency exit (assignment guard, forced unwind).
    Emergency,
    /// Emergency hedge.
    Hedge,
    /// Stop-loss exit.
    StopLoss,
}

impl Purpose {
    /// Reduces a position on purpose (an exit order).
    pub fn is_exit(self) -> bool {
        matches!(
            self,
            Self::Close | Self::Flatten | Self::Emergency | Self::StopLoss
        )
    }
}

/// One leg of a group as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegObs {
    /// Instrument id (display form).
    pub instrument: String,
    /// Side.
    pub side: Side,
    /// Quantity asked.
    pub qty: i64,
    /// Quantity filled.
    pub filled: i64,
    /// Broker order id once sent.
    pub order: Option<i64>,
}

/// One order group (the engine's unit of execution) as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupObs {
    /// Id.
    pub id: u64,
    /// Why.
    pub purpose: Purpose,
    /// Strategy it was sent for.
    pub strategy: Option<u64>,
    /// Settled (completed, rolled back, failed, interrupted).
    pub terminal: bool,
    /// Created at.
    pub created: Timestamp,
    /// Legs.
    pub legs: Vec<LegObs>,
}

/// An order working at the venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOrder {
    /// Broker order id.
    pub order: i64,
    /// Instrument (for combos: one entry per leg, same order id).
    pub instrument: String,
    /// Side.
    pub side: Side,
    /// Quantity still to fill (per leg).
    pub remaining: i64,
}

/// A strategy the guard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyObs {
    /// Id.
    pub id: u64,
    /// Broken (assignment, partial legs): only the emergency path may close it.
    pub broken: bool,
    /// Instruments of its legs.
    pub instruments: Vec<String>,
}

/// A supervised task's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatObs {
    /// Task name.
    pub name: String,
    /// Time since its last beat (`None`: none yet).
    pub since_last: Option<Duration>,
}

/// A flatten a person confirmed, as its progress reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenObs {
    /// When it was confirmed.
    pub confirmed_at: Timestamp,
    /// `done`, `working`, `armed`, `incomplete`, `dry_run` or `needs_manual:<reason>`.
    pub status: String,
}

/// Everything the checker looks at after one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Virtual time.
    pub now: Timestamp,
    /// When the guard (re)started.
    pub guard_started: Timestamp,
    /// The venue accepts orders now: faults off, connected, regular session.
    pub venue_accepts: bool,
    /// Since when faults are off and the engine is running (the calm phase), if they are.
    pub calm_since: Option<Timestamp>,
    /// Since when the venue's positions are unchanged (an assignment or expiry changes them
    /// without an execution: only reconciliation can tell the engine).
    pub venue_unchanged_since: Timestamp,
    /// Every group of this engine session.
    pub groups: Vec<GroupObs>,
    /// Order ids owned by the engine's stop-losses (limit and market orders).
    pub stop_orders: BTreeSet<i64>,
    /// Venue orders that appeared while the engine's snapshot was being taken (the engine
    /// placed them at this same instant, after answering): not "unknown to the engine".
    pub placed_during_snapshot: BTreeSet<i64>,
    /// Non-zero positions at the venue.
    pub venue_positions: BTreeMap<String, i64>,
    /// Non-zero positions in the engine's book.
    pub engine_positions: BTreeMap<String, i64>,
    /// Non-zero positions in the guard's live book.
    pub guard_positions: BTreeMap<String, i64>,
    /// Orders working at the venue.
    pub venue_orders: Vec<LiveOrder>,
    /// Unintended naked short contracts per exposure key (before working hedges).
    pub unmatched: BTreeMap<String, i64>,
    /// Exposure key (underlying + right) of each option instrument.
    pub exposure_key: BTreeMap<String, String>,
    /// Strategies the guard shows.
    pub strategies: Vec<StrategyObs>,
    /// Forced unwind is on.
    pub forced_unwind: bool,
    /// Heartbeats.
    pub beats: Vec<BeatObs>,
    /// The flatten a person confirmed in this run, if any.
    pub flatten: Option<FlattenObs>,
}

/// Limits the checker judges against (taken from the engine configuration of the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Hedge debounce + a fill round trip: how long an unintended naked short may exist after
    /// the engine went quiet while the venue accepts orders.
    pub settle_grace: Duration,
    /// How long a working hedge may exceed the unmatched quantity (events in flight).
    pub hedge_grace: Duration,
    /// Reconciliation interval (+ one stall check).
    pub reconcile: Duration,
    /// Longest time a breach may take to resolve once the venue accepts orders.
    pub resolve: Duration,
    /// The max-contracts rule's limit (per option position).
    pub max_contracts: i64,
    /// Heartbeat budget per task: its own cadence + the supervisor's restart budget.
    pub beat_budget: BTreeMap<String, Duration>,
    /// Budget of a task not listed.
    pub default_beat_budget: Duration,
}

/// Stateful checker of invariants 1–4 and 6–9 (5 is [`check_acknowledged`]).
#[derive(Debug, Clone)]
pub struct Checker {
    cfg: CheckerConfig,
    seen_groups: BTreeSet<u64>,
    prev: Option<(Timestamp, BTreeSet<u64>, BTreeSet<String>)>,
    quiet_since: Option<Timestamp>,
    /// Since when each exposure key has had unmatched naked shorts (continuously).
    unmatched_since: BTreeMap<String, Timestamp>,
    over_hedge_since: BTreeMap<String, Timestamp>,
    /// Instruments the guard's own non-hedge groups traded (kept across restarts).
    own_instruments: BTreeSet<String>,
}

fn since(now: Timestamp, then: Timestamp) -> Duration {
    Duration::from_nanos(u64::try_from(now.nanos_since(then)).unwrap_or(0))
}

impl Checker {
    /// A checker.
    pub fn new(cfg: CheckerConfig) -> Self {
        Self {
            cfg,
            seen_groups: BTreeSet::new(),
            prev: None,
            quiet_since: None,
            unmatched_since: BTreeMap::new(),
            over_hedge_since: BTreeMap::new(),
            own_instruments: BTreeSet::new(),
        }
    }

    /// The engine restarted: group ids restart with it and nothing carries over except the
    /// Broken strategies and over-hedge clocks.
    pub fn restarted(&mut self) {
        self.seen_groups.clear();
        self.quiet_since = None;
        self.unmatched_since.clear();
    }

    /// Checks one observation; the first violation found is returned.
    pub fn observe(&mut self, o: &Observation) -> Result<(), Violation> {
        let v = |invariant, detail: String| Violation {
            invariant,
            at: o.now,
            detail,
        };
        self.naked_after_settle(o)
            .map_err(|d| v(Invariant::NoNakedShortAfterSettle, d))?;
        duplicate_exits(o).map_err(|d| v(Invariant::NoDuplicateExit, d))?;
        self.over_hedge(o)
            .map_err(|d| v(Invariant::HedgeWithinUnmatched, d))?;
        self.local_equals_venue(o)
            .map_err(|d| v(Invariant::LocalEqualsVenue, d))?;
        self.breach_resolved(o)
            .map_err(|d| v(Invariant::BreachResolvedInTime, d))?;
        self.broken_only_emergency(o)
            .map_err(|d| v(Invariant::BrokenOnlyEmergency, d))?;
        self.alive(o)
            .map_err(|d| v(Invariant::EnforcementAlive, d))?;
        self.asked_for(o)
            .map_err(|d| v(Invariant::NoUnaskedOrder, d))?;
        self.flatten_ends(o)
            .map_err(|d| v(Invariant::ConfirmedFlattenEnds, d))?;
        Ok(())
    }

    /// 1: once no group works and the venue has accepted orders for `settle_grace`, the
    /// engine holds no unintended naked short.
    fn naked_after_settle(&mut self, o: &Observation) -> Result<(), String> {
        let quiet = o.groups.iter().all(|g| g.terminal);
        self.quiet_since = match (quiet, self.quiet_since) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(o.now),
        };
        let mut since_map = BTreeMap::new();
        for k in o.unmatched.keys() {
            let t = self.unmatched_since.get(k).copied().unwrap_or(o.now);
            since_map.insert(k.clone(), t);
        }
        self.unmatched_since = since_map;
        let grace = self.cfg.settle_grace;
        let judged = match (self.quiet_since, o.calm_since) {
            (Some(q), Some(c)) if o.venue_accepts => {
                since(o.now, q) >= grace && since(o.now, c) >= grace
            }
            _ => false,
        };
        // The hedge manager arms its debounce when the naked short appears, so a naked short
        // born from a fill outside any group (a stop, an assignment) gets the same grace.
        let stale: BTreeMap<&String, &i64> = o
            .unmatched
            .iter()
            .filter(|(k, _)| {
                self.unmatched_since
                    .get(*k)
                    .is_some_and(|t| since(o.now, *t) >= grace)
            })
            .collect();
        if judged && !stale.is_empty() {
            return Err(format!(
                "every group settled {:.1} s ago and the venue accepts orders, yet unhedged naked shorts remain: {:?}",
                since(o.now, self.quiet_since.unwrap_or(o.now)).as_secs_f64(),
                stale
            ));
        }
        Ok(())
    }

    /// 3: remaining quantity of working hedges per exposure key ≤ unmatched, except for a
    /// short moment while events are in flight.
    fn over_hedge(&mut self, o: &Observation) -> Result<(), String> {
        let mut working: BTreeMap<String, i64> = BTreeMap::new();
        for g in o
            .groups
            .iter()
            .filter(|g| g.purpose == Purpose::Hedge && !g.terminal)
        {
            for l in &g.legs {
                let key = o
                    .exposure_key
                    .get(&l.instrument)
                    .cloned()
                    .unwrap_or_else(|| l.instrument.clone());
                *working.entry(key).or_insert(0) += (l.qty - l.filled).max(0);
            }
        }
        let mut over = BTreeSet::new();
        for (key, w) in &working {
            let u = o.unmatched.get(key).copied().unwrap_or(0);
            if *w > u {
                over.insert(key.clone());
                let first = *self.over_hedge_since.entry(key.clone()).or_insert(o.now);
                if since(o.now, first) > self.cfg.hedge_grace {
                    return Err(format!(
                        "{key}: working hedges {w} > unmatched {u} for {:.1} s",
                        since(o.now, first).as_secs_f64()
                    ));
                }
            }
        }
        self.over_hedge_since.retain(|k, _| over.contains(k));
        Ok(())
    }

    /// 4: after `reconcile` of calm (and of unchanged venue positions), the engine's and the guard's positions equal the
    /// venue's, every engine leg the engine thinks is working is open at the venue, and every
    /// order open at the venue is owned by the engine.
    fn local_equals_venue(&self, o: &Observation) -> Result<(), String> {
        let Some(c) = o.calm_since else {
            return Ok(());
        };
        let settled = [c, o.guard_started, o.venue_unchanged_since]
            .into_iter()
            .all(|t| since(o.now, t) >= self.cfg.reconcile);
        if !settled {
            return Ok(());
        }
        if o.engine_positions != o.venue_positions {
            return Err(format!(
                "engine book {:?} != venue {:?}",
                o.engine_positions, o.venue_positions
            ));
        }
        if o.guard_positions != o.venue_positions {
            return Err(format!(
                "guard live book {:?} != venue {:?}",
                o.guard_positions, o.venue_positions
            ));
        }
        let venue_ids: BTreeSet<i64> = o.venue_orders.iter().map(|l| l.order).collect();
        let mut owned: BTreeSet<i64> = o.stop_orders.clone();
        for g in &o.groups {
            owned.extend(g.legs.iter().filter_map(|l| l.order));
        }
        if let Some(stray) = venue_ids
            .iter()
            .find(|id| !owned.contains(id) && !o.placed_during_snapshot.contains(id))
        {
            return Err(format!(
                "order {stray} works at the venue but the engine does not know it"
            ));
        }
        Ok(())
    }

    /// 6: once the venue has accepted orders for `resolve`, no option position exceeds the
    /// max-contracts cap and, under forced unwind, nothing is left open.
    fn breach_resolved(&self, o: &Observation) -> Result<(), String> {
        let Some(c) = o.calm_since else {
            return Ok(());
        };
        if !o.venue_accepts || since(o.now, c) < self.cfg.resolve {
            return Ok(());
        }
        if o.forced_unwind && !o.venue_positions.is_empty() {
            return Err(format!(
                "forced unwind on and the venue accepting orders for {:.0} s, yet positions remain: {:?}",
                since(o.now, c).as_secs_f64(),
                o.venue_positions
            ));
        }
        if let Some((i, q)) = o
            .venue_positions
            .iter()
            .find(|(i, q)| o.exposure_key.contains_key(*i) && q.abs() > self.cfg.max_contracts)
        {
            return Err(format!(
                "{i}: {q} contracts > max_contracts {} after {:.0} s of an accepting venue",
                self.cfg.max_contracts,
                since(o.now, c).as_secs_f64()
            ));
        }
        Ok(())
    }

    /// 7: a group first seen now, created after the previous observation, that is not an
    /// emergency exit or a hedge, must not trade an instrument of (or name) a strategy that
    /// was Broken at the previous observation.
    fn broken_only_emergency(&mut self, o: &Observation) -> Result<(), String> {
        let mut found = None;
        if let Some((prev_t, broken_ids, broken_instruments)) = &self.prev {
            for g in &o.groups {
                if self.seen_groups.contains(&g.id) || g.created < *prev_t {
                    continue;
                }
                if matches!(
                    g.purpose,
                    Purpose::Emergency | Purpose::Hedge | Purpose::Open
                ) {
                    continue;
                }
                let sent: Vec<&LegObs> = g.legs.iter().filter(|l| l.order.is_some()).collect();
                let named = g.strategy.is_some_and(|s| broken_ids.contains(&s));
                let touched = sent
                    .iter()
                    .find(|l| broken_instruments.contains(&l.instrument));
                if named && !sent.is_empty() {
                    found = Some(format!(
                        "group {} ({:?}) sent orders for Broken strategy {:?}",
                        g.id, g.purpose, g.strategy
                    ));
                } else if let Some(l) = touched {
                    found = Some(format!(
                        "group {} ({:?}) sent {:?} {} of {}, a leg of a Broken strategy",
                        g.id, g.purpose, l.side, l.qty, l.instrument
                    ));
                }
                if found.is_some() {
                    break;
                }
            }
        }
        self.seen_groups.extend(o.groups.iter().map(|g| g.id));
        let ids = o
            .strategies
            .iter()
            .filter(|s| s.broken)
            .map(|s| s.id)
            .collect();
        let insts = o
            .strategies
            .iter()
            .filter(|s| s.broken)
            .flat_map(|s| s.instruments.iter().cloned())
            .collect();
        self.prev = Some((o.now, ids, insts));
        found.map_or(Ok(()), Err)
    }

    /// 10: once the venue has accepted orders for the close budget since a flatten was
    /// confirmed, the flatten is done (every position it had to close is gone) or needs a
    /// person with a reason; never still working or "incomplete" with nothing said.
    fn flatten_ends(&self, o: &Observation) -> Result<(), String> {
        let (Some(f), Some(calm)) = (&o.flatten, o.calm_since) else {
            return Ok(());
        };
        let from = if calm > f.confirmed_at {
            calm
        } else {
            f.confirmed_at
        };
        if !o.venue_accepts || since(o.now, from) < self.cfg.resolve {
            return Ok(());
        }
        match f.status.as_str() {
            "done" | "dry_run" => Ok(()),
            s if s.starts_with("needs_manual:") && s.len() > "needs_manual:".len() => Ok(()),
            s => Err(format!(
                "flatten confirmed at {} is {s} after {:.0} s of an accepting venue; venue positions {:?}",
                f.confirmed_at,
                since(o.now, from).as_secs_f64(),
                o.venue_positions
            )),
        }
    }

    /// 9: every hedge that sent an order trades an instrument a non-hedge group of the guard
    /// traded (in this session or one the journal restored).
    fn asked_for(&mut self, o: &Observation) -> Result<(), String> {
        for g in o.groups.iter().filter(|g| g.purpose != Purpose::Hedge) {
            self.own_instruments
                .extend(g.legs.iter().map(|l| l.instrument.clone()));
        }
        for g in o.groups.iter().filter(|g| g.purpose == Purpose::Hedge) {
            if let Some(l) = g
                .legs
                .iter()
                .find(|l| l.order.is_some() && !self.own_instruments.contains(&l.instrument))
            {
                return Err(format!(
                    "hedge group {} bought {} {}, which no order of the guard traded",
                    g.id, l.qty, l.instrument
                ));
            }
        }
        Ok(())
    }

    /// 8: every task beat within its budget (also: one that never beat since the start).
    fn alive(&self, o: &Observation) -> Result<(), String> {
        let up = since(o.now, o.guard_started);
        for b in &o.beats {
            let budget = self
                .cfg
                .beat_budget
                .get(&b.name)
                .copied()
                .unwrap_or(self.cfg.default_beat_budget);
            let stale = b.since_last.unwrap_or(up);
            if stale > budget {
                return Err(format!(
                    "task {} last beat {:.1} s ago (budget {:.1} s)",
                    b.name,
                    stale.as_secs_f64(),
                    budget.as_secs_f64()
                ));
            }
        }
        Ok(())
    }
}

/// 2: two different exits (a group with an exit purpose, or a stop-loss) live at once for the
/// same instrument and side that together would close more than the venue holds: one of them
/// is a second exit of the same position. The child orders of one group (a close over the
/// gate's per-order limit, sent as several orders of at most that size) are one exit, and two
/// exits that each close their own part (two strategies' delivered shares, bought back by
/// their two emergency closes) are not duplicates.
fn duplicate_exits(o: &Observation) -> Result<(), String> {
    let mut purpose: BTreeMap<i64, Purpose> = BTreeMap::new();
    let mut group: BTreeMap<i64, u64> = BTreeMap::new();
    for g in &o.groups {
        for l in &g.legs {
            if let Some(id) = l.order {
                purpose.insert(id, g.purpose);
                group.insert(id, g.id);
            }
        }
    }
    let same_group = |a: i64, b: i64| group.get(&a).is_some_and(|g| group.get(&b) == Some(g));
    let is_exit =
        |id: i64| o.stop_orders.contains(&id) || purpose.get(&id).is_some_and(|p| p.is_exit());
    // Per (instrument, side): the orders and their total remaining.
    let mut live: BTreeMap<(&str, bool), (Vec<i64>, i64)> = BTreeMap::new();
    for l in o
        .venue_orders
        .iter()
        .filter(|l| is_exit(l.order) && l.remaining > 0)
    {
        let e = live
            .entry((l.instrument.as_str(), l.side == Side::Buy))
            .or_default();
        e.0.push(l.order);
        e.1 += l.remaining;
    }
    for ((instrument, buy), (orders, total)) in live {
        let Some(first) = orders.first().copied() else {
            continue;
        };
        let Some(other) = orders
            .iter()
            .copied()
            .find(|o| !same_group(first, *o) && *o != first)
        else {
            continue;
        };
        let held = o.venue_positions.get(instrument).copied().unwrap_or(0);
        let closable = if buy { (-held).max(0) } else { held.max(0) };
        if total > closable {
            return Err(format!(
                "orders {first} and {other} both exit {} {instrument}: {total} together, the venue holds {held}",
                if buy { "Buy" } else { "Sell" }
            ));
        }
    }
    Ok(())
}

/// 5: every acknowledged journal record (JSON, normalized) is among the stored ones, counted
/// with multiplicity.
pub fn check_acknowledged(
    acknowledged: &[String],
    stored: &[String],
    at: Timestamp,
) -> Result<(), Violation> {
    let mut have: BTreeMap<&str, usize> = BTreeMap::new();
    for s in stored {
        *have.entry(s.as_str()).or_insert(0) += 1;
    }
    for (i, a) in acknowledged.iter().enumerate() {
        match have.get_mut(a.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                let mut head: String = a.chars().take(200).collect();
                if a.len() > head.len() {
                    head.push('…');
                }
                return Err(Violation {
                    invariant: Invariant::AcknowledgedWritesDurable,
                    at,
                    detail: format!(
                        "acknowledged write #{i} of {} is missing after the restart ({} stored): {head}",
                        acknowledged.len(),
                        stored.len()
                    ),
                });
            }
        }
    }
    Ok(())
}
