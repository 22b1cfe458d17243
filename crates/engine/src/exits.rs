//! One live exit per position (DST invariant 2).
//!
//! - A **Close or Flatten** group with a leg that exits an instrument (same account, same side)
//!   on which a managed stop-loss or another exit group (Close / Flatten / Emergency / StopLoss)
//!   is still live is journaled and **held**: its legs stay Pending and nothing is sent. The
//!   stops are superseded ([`crate::stop::StopLoss::supersede`]: their stop-limit is cancelled
//!   and the stop ends with no market order once the broker *confirms* the cancel); other exit
//!   groups are awaited (they end by fill, rejection or leg time-out). When every one of them
//!   has ended, each affected leg is cut by what those exits filled while it was held, and to
//!   the position the book still holds (never more: an over-close would open a naked position),
//!   and the group is sent. Nothing left to close: the group ends Completed with its legs
//!   Cancelled and the reason.
//! - A **stop** is refused on an instrument that already has a live stop
//!   ([`ExecError::StopExists`]) or a live exit group on the stop's side
//!   ([`ExecError::ExitWorking`]).
//! - An **Emergency** exit on a position with a live managed stop is held the same way, but
//!   only for the stops (DST seeds 1100, 1309): their cancel is requested at once, and the
//!   exit goes out as soon as the broker confirms it (or the stop ended otherwise: filled, its
//!   market order done), cut by what the stop filled meanwhile — one cancel round-trip, and
//!   never two live exits for the same quantity. Its callers see a group without an order
//!   for that long (the assignment guard learns the order id later, see
//!   `crate::assignment::guard`; the forced-unwind closer follows the group).
//! - An Emergency exit whose position another live exit *group* already covers is **cut** by
//!   that group's unfilled quantity (to the position still held) instead of being held; cut to
//!   nothing, it ends Completed with its legs Cancelled and the reason (its caller sees a group
//!   without an order). Hedges are never held.
//!
//! The hold is in memory: a restart interrupts the held group like any unsent group (its legs
//! are cancelled, see [`crate::recovery`]) and puts a superseded stop whose stop-limit is still
//! open back to work.

use crate::engine::Engine;
use crate::error::ExecError;
use crate::group::{GroupPhase, LegState};
use crate::intent::{OrderIntent, Purpose};
use crate::journal::JournalRecord;
use crate::stop::StopSpec;
use std::collections::BTreeSet;
use tradeguard_model::{AccountId, GroupId, InstrumentId, Side};

/// A live exit a held group waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// A managed stop-loss (superseded: cancel requested).
    Stop(u64),
    /// Another exit group.
    Group(GroupId),
}

/// A held group: what it waits for, and how much each exit had filled when the hold began.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// Send as a native combo (the decision at submit time; re-checked after cuts).
    pub combo: bool,
    /// (exit, instrument, side it exits, filled when the hold began).
    pub on: Vec<(Exit, InstrumentId, Side, i64)>,
}

fn is_exit(p: Purpose) -> bool {
    matches!(
        p,
        Purpose::Close | Purpose::Flatten | Purpose::Emergency | Purpose::StopLoss
    )
}

impl Engine {
    /// Live stops and exit groups of `account` exiting `instrument` on `side`, with what each
    /// has filled so far.
    fn live_exits(
        &self,
        account: &AccountId,
        instrument: &InstrumentId,
        side: Side,
    ) -> Vec<(Exit, i64)> {
        let stops = self
            .stops
            .values()
            .filter(|s| {
                !s.is_terminal()
                    && s.spec.account == *account
                    && s.spec.side == side
                    && s.spec.instrument.id() == *instrument
            })
            .map(|s| (Exit::Stop(s.id), s.filled()));
        let groups = self
            .groups
            .values()
            .filter(|g| {
                !g.phase.is_terminal()
                    && is_exit(g.intent.purpose)
                    && g.intent.account == *account
                    && g.legs.iter().any(|l| {
                        !l.state.is_terminal()
                            && l.intent.side == side
                            && l.intent.instrument.id() == *instrument
                    })
            })
            .map(|g| (Exit::Group(g.id), self.group_filled(g.id, instrument, side)));
        stops.chain(groups).collect()
    }

    fn group_filled(&self, id: GroupId, instrument: &InstrumentId, side: Side) -> i64 {
        self.groups
            .get(&id)
            .or_else(|| self.history.get(&id))
            .map_or(0, |g| {
                g.legs
                    .iter()
                    .filter(|l| l.intent.side == side && l.intent.instrument.id() == *instrument)
                    .map(|l| l.filled())
                    .sum()
            })
    }

    fn exit_filled(&self, e: Exit, instrument: &InstrumentId, side: Side) -> i64 {
        match e {
            Exit::Stop(id) => self.stops.get(&id).map_or(0, |s| s.filled()),
            Exit::Group(id) => self.group_filled(id, instrument, side),
        }
    }

    fn exit_ended(&self, e: Exit) -> bool {
        match e {
            Exit::Stop(id) => self.stops.get(&id).is_none_or(|s| s.is_terminal()),
            Exit::Group(id) => self.groups.get(&id).is_none_or(|g| g.phase.is_terminal()),
        }
    }

    /// The live exits a new `intent` must wait for: every stop and exit group for a
    /// Close/Flatten, the stops only for an Emergency exit (other exit groups cut it instead,
    /// see [`Engine::cut_emergency`]), nothing for other purposes.
    pub(crate) fn exits_to_wait_for(
        &self,
        intent: &OrderIntent,
    ) -> Vec<(Exit, InstrumentId, Side, i64)> {
        let stops_only = match intent.purpose {
            Purpose::Close | Purpose::Flatten => false,
            Purpose::Emergency => true,
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for l in &intent.legs {
            let id = l.instrument.id();
            for (e, filled) in self.live_exits(&intent.account, &id, l.side) {
                if stops_only && !matches!(e, Exit::Stop(_)) {
                    continue;
                }
                out.push((e, id.clone(), l.side, filled));
            }
        }
        out
    }

    /// A stop on `spec` would be a second live exit: the refusal, if so.
    pub(crate) fn stop_conflict(&self, spec: &StopSpec) -> Option<ExecError> {
        let id = spec.instrument.id();
        if let Some(s) = self.stops.values().find(|s| {
            !s.is_terminal() && s.spec.account == spec.account && s.spec.instrument.id() == id
        }) {
            return Some(ExecError::StopExists {
                instrument: id,
                stop: s.id,
            });
        }
        self.live_exits(&spec.account, &id, spec.side)
            .into_iter()
            .find_map(|(e, _)| match e {
                Exit::Group(g) => Some(ExecError::ExitWorking {
                    instrument: id.clone(),
                    group: g,
                }),
                Exit::Stop(_) => None,
            })
    }

    /// Holds the journaled group `id` until `on` ended; supersedes the stops among them.
    pub(crate) async fn hold(
        &mut self,
        id: GroupId,
        combo: bool,
        on: Vec<(Exit, InstrumentId, Side, i64)>,
    ) {
        let what: BTreeSet<String> = on
            .iter()
            .map(|(e, i, s, _)| match e {
                Exit::Stop(sid) => format!("stop {sid} ({s:?} {i})"),
                Exit::Group(g) => format!("group {g} ({s:?} {i})"),
            })
            .collect();
        let stops: BTreeSet<u64> = on
            .iter()
            .filter_map(|(e, ..)| match e {
                Exit::Stop(s) => Some(*s),
                Exit::Group(_) => None,
            })
            .collect();
        self.held.insert(id, Held { combo, on });
        let purpose = self.groups.get(&id).map(|g| g.intent.purpose);
        let r = self
            .audit(
                "held",
                "exit.held",
                format!(
                    "group {id} held: {} still working on the same position; stops are cancelled first (sent after the broker confirms), other exits awaited",
                    what.into_iter().collect::<Vec<_>>().join(", ")
                ),
                purpose,
                Some(id),
            )
            .await;
        self.report_unjournaled(r, "audit entry");
        for sid in stops {
            let now = self.now();
            let action = self.stops.get_mut(&sid).and_then(|s| s.supersede(now));
            tracing::info!(stop = sid, group = %id, purpose = ?purpose, "stop superseded by an exit of its position");
            self.run_stop_actions_pub(sid, action.into_iter().collect())
                .await;
        }
    }

    /// Sends every held group whose exits all ended, cut to what is still open.
    pub(crate) async fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let ready: Vec<GroupId> = self
            .held
            .iter()
            .filter(|(_, h)| h.on.iter().all(|(e, ..)| self.exit_ended(*e)))
            .map(|(g, _)| *g)
            .collect();
        for id in ready {
            if let Some(h) = self.held.remove(&id) {
                self.send_held(id, h).await;
            }
        }
    }

    async fn send_held(&mut self, id: GroupId, h: Held) {
        let Some(g) = self.groups.get(&id) else {
            return;
        };
        if g.phase.is_terminal() {
            return;
        }
        let mut intent = g.intent.clone();
        let created = g.created;
        let mut cuts = Vec::new();
        for leg in &mut intent.legs {
            let lid = leg.instrument.id();
            let related: Vec<_> =
                h.on.iter()
                    .filter(|(_, i, s, _)| *i == lid && *s == leg.side)
                    .collect();
            if related.is_empty() {
                continue;
            }
            let meanwhile: i64 = related
                .iter()
                .map(|(e, i, s, f0)| (self.exit_filled(*e, i, *s) - f0).max(0))
                .sum();
            let pos = self.book.qty(&lid);
            let open = match leg.side {
                Side::Sell => pos.max(0),
                Side::Buy => (-pos).max(0),
            };
            let q = (leg.qty - meanwhile).min(open).max(0);
            if q != leg.qty {
                cuts.push(format!(
                    "{lid} {} -> {q} (filled meanwhile {meanwhile}, position {pos})",
                    leg.qty
                ));
                leg.qty = q;
            }
        }
        if intent.purpose == Purpose::Emergency {
            cuts.extend(self.emergency_cuts(id, &mut intent));
        }
        if cuts.is_empty() {
            tracing::info!(group = %id, "held group released: the exits it waited for ended");
            self.advance_group(id).await;
            return;
        }
        let text = format!(
            "group {id} released and cut to what is still open: {}",
            cuts.join(", ")
        );
        self.apply_cut(id, intent, created, h.combo, text).await;
    }

    /// An Emergency group `id` (just journaled, nothing sent) whose legs another live exit
    /// group already covers is cut by that group's unfilled quantity, and to the position
    /// still held: two emergency paths (forced unwind, assignment guard) must not both buy back
    /// the same delivery (DST seed 650). Then drives the group. Returns `false` when nothing
    /// was left to send (the group ended Completed, legs Cancelled, with the reason).
    pub(crate) async fn cut_emergency(&mut self, id: GroupId, combo: bool) -> bool {
        let Some(g) = self.groups.get(&id) else {
            return false;
        };
        if g.intent.purpose != Purpose::Emergency {
            self.advance_group(id).await;
            return true;
        }
        let mut intent = g.intent.clone();
        let created = g.created;
        let cuts = self.emergency_cuts(id, &mut intent);
        if cuts.is_empty() {
            self.advance_group(id).await;
            return true;
        }
        let text = format!(
            "emergency group {id} cut: another exit already covers {}",
            cuts.join(", ")
        );
        self.apply_cut(id, intent, created, combo, text).await
    }

    /// Cuts the legs of Emergency group `id`'s `intent` by the unfilled quantity of the other
    /// live exit groups on the same position, and to the position still held; the texts of
    /// the cuts made.
    fn emergency_cuts(&self, id: GroupId, intent: &mut OrderIntent) -> Vec<String> {
        let mut cuts = Vec::new();
        for leg in &mut intent.legs {
            let lid = leg.instrument.id();
            let working: i64 = self
                .groups
                .values()
                .filter(|o| {
                    o.id != id
                        && !o.phase.is_terminal()
                        && is_exit(o.intent.purpose)
                        && o.intent.account == intent.account
                })
                .flat_map(|o| o.legs.iter())
                .filter(|l| {
                    !l.state.is_terminal()
                        && l.intent.side == leg.side
                        && l.intent.instrument.id() == lid
                })
                .map(|l| (l.intent.qty - l.filled()).max(0))
                .sum();
            if working == 0 {
                continue;
            }
            let pos = self.book.qty(&lid);
            let open = match leg.side {
                Side::Sell => pos.max(0),
                Side::Buy => (-pos).max(0),
            };
            let q = leg.qty.min((open - working).max(0));
            if q != leg.qty {
                cuts.push(format!(
                    "{lid} {} -> {q} (another exit is working on {working}, position {pos})",
                    leg.qty
                ));
                leg.qty = q;
            }
        }
        cuts
    }

    /// Replaces unsent group `id` by `intent` (legs at zero dropped), journals it with an
    /// audit entry; ends it when nothing is left, else drives it. `true` if it goes on.
    async fn apply_cut(
        &mut self,
        id: GroupId,
        mut intent: OrderIntent,
        created: tradeguard_model::Timestamp,
        combo: bool,
        text: String,
    ) -> bool {
        let now = self.clock.now();
        intent.legs.retain(|l| l.qty > 0);
        if intent.legs.is_empty() {
            if let Some(g) = self.groups.get_mut(&id) {
                for l in &mut g.legs {
                    l.state = LegState::Cancelled;
                    l.reason = Some("nothing left to close".into());
                }
                g.phase = GroupPhase::Completed;
                g.reason = Some(format!("nothing left to close: {text}"));
                g.updated = now;
            }
        } else {
            let combo = combo && self.use_combo(&intent);
            let mut ng = self.plan_group(id, intent, combo, now);
            ng.created = created;
            self.groups.insert(id, ng);
        }
        let purpose = self.groups.get(&id).map(|g| g.intent.purpose);
        let r = self.audit("cut", "exit.cut", text, purpose, Some(id)).await;
        self.report_unjournaled(r, "audit entry");
        let terminal = self.groups.get(&id).is_some_and(|g| g.phase.is_terminal());
        let w = match self.groups.get(&id) {
            Some(g) => self.write(JournalRecord::Group(g.clone())).await,
            None => Ok(()),
        };
        if let Err(e) = w {
            self.journal_failed(id, e).await;
            return false;
        }
        if terminal {
            self.group_finished(id).await;
            false
        } else {
            self.advance_group(id).await;
            true
        }
    }
}
