//! [`Journal`]: the durable write-ahead log of the engine. Every group, leg and stop-loss
//! transition, every audit entry and alert, and every order id used is appended **before** the
//! broker call that follows it; start-up folds the records back into a [`JournalState`].
//!
//! [`MemoryJournal`] keeps the records in memory; its clones share them, so a test can drop an
//! engine and "reopen" the same journal ([`MemoryJournal::reopen`]). The SQLite store
//! implements the same trait for production.

use crate::alert::{Alert, AuditEntry};
use crate::assignment::{AssignmentRecord, CloseSnapshot};
use crate::error::JournalError;
use crate::gate::TradingState;
use crate::group::Group;
use crate::stop::StopLoss;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tradeguard_model::{AccountId, GroupId, OrderId, StrategyId};

/// One journal record. Groups and stops are written as full snapshots (last one wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum JournalRecord {
    /// Group snapshot after a transition.
    Group(Group),
    /// Stop-loss snapshot after a transition.
    Stop(StopLoss),
    /// Audit entry.
    Audit(AuditEntry),
    /// Alert.
    Alert(Alert),
    /// An order id about to be used (persisted before the order is placed).
    OrderIdUsed(OrderId),
    /// A strategy's broken flag (`Some(reason code)`) or its clearing (`None`).
    StrategyBroken {
        /// Strategy.
        strategy: StrategyId,
        /// Reason code, `None` when no longer broken.
        reason: Option<String>,
    },
    /// Trading state change.
    TradingState(TradingState),
    /// The risk rules' state between evaluations (trailing-stop highs, day-start and peak
    /// account values): the latest record wins.
    RuleState(crate::rules::RuleState),
    /// An exercise or assignment the assignment guard detected.
    Assignment(AssignmentRecord),
    /// The positions the assignment guard last knew (last one wins); compared with the
    /// broker's snapshot at the next start.
    KnownPositions(Vec<tradeguard_model::Position>),
    /// An emergency close of the assignment guard after a change: its plan and every step's
    /// state (last one per strategy wins). Written before each order goes to the coordinator,
    /// so a restart resumes the close instead of planning it again.
    EmergencyClose(Box<CloseSnapshot>),
    /// A fill as the broker reported it (the blotter's executions; a repeated exec id is
    /// stored once). Written after the engine has acted on it, so it never delays a reaction.
    Execution(tradeguard_model::Execution),
    /// Forced unwind of an account switched on (`true`) or off by a person (`false`).
    ForcedUnwind {
        /// Account.
        account: AccountId,
        /// On or off.
        enabled: bool,
    },
    /// A risk rules configuration that validated and went into effect (the latest one wins):
    /// what the rules run with when the file is bad at the next start.
    RiskConfig(crate::rules::SavedRiskConfig),
    /// A person's assignment choice for one strategy (the latest per strategy wins).
    AssignmentChoice {
        /// Strategy.
        strategy: StrategyId,
        /// The choice.
        choice: crate::assignment::StrategyChoice,
    },
    /// Exits a person attached to an entry (the latest per entry wins; an ended one is
    /// forgotten).
    AttachedExit(crate::entry::AttachedExit),
    /// An off-desk delivery of an alert (queued, attempted, sent or given up): the latest
    /// per id wins; the pending ones are retried after a restart.
    Delivery(crate::alert::Delivery),
}

/// Everything the journal knows, folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalState {
    /// Latest snapshot per group.
    pub groups: BTreeMap<GroupId, Group>,
    /// Latest snapshot per stop.
    pub stops: BTreeMap<u64, StopLoss>,
    /// Highest order id ever used.
    pub highest_order_id: Option<OrderId>,
    /// Broken strategies and their reason codes.
    pub broken: BTreeMap<StrategyId, String>,
    /// Last trading state.
    pub trading_state: Option<TradingState>,
    /// The latest risk-rule state.
    pub rule_state: Option<crate::rules::RuleState>,
    /// Audit log.
    pub audit: Vec<AuditEntry>,
    /// Alerts.
    pub alerts: Vec<Alert>,
    /// Assignment records (assignment guard).
    pub assignments: Vec<AssignmentRecord>,
    /// Last known positions of the assignment guard (`None` before its first start).
    pub known_positions: Option<Vec<tradeguard_model::Position>>,
    /// Accounts in forced unwind (re-applied at start-up until a person disables it).
    pub forced_unwind: BTreeSet<AccountId>,
    /// The latest snapshot of each emergency close, per strategy (assignment guard).
    pub emergency_closes: BTreeMap<StrategyId, CloseSnapshot>,
    /// The last good risk rules configuration.
    pub risk_config: Option<crate::rules::SavedRiskConfig>,
    /// A person's assignment choices per strategy (latest wins).
    pub assignment_choices: BTreeMap<StrategyId, crate::assignment::StrategyChoice>,
    /// Off-desk deliveries not yet sent nor given up, by id.
    pub pending_deliveries: BTreeMap<u64, crate::alert::Delivery>,
    /// The highest delivery id ever journaled.
    pub last_delivery_id: u64,
    /// When the last daily summary was queued (`summary.daily` deliveries).
    pub last_summary: Option<tradeguard_model::Timestamp>,
    /// Exits attached to entries that have not ended, by entry id.
    pub attached_exits: BTreeMap<String, crate::entry::AttachedExit>,
}

impl JournalState {
    /// Folds one record in.
    pub fn apply(&mut self, r: JournalRecord) {
        match r {
            JournalRecord::Group(g) => {
                self.groups.insert(g.id, g);
            }
            JournalRecord::Stop(s) => {
                self.stops.insert(s.id, s);
            }
            JournalRecord::Audit(a) => self.audit.push(a),
            JournalRecord::Alert(a) => self.alerts.push(a),
            JournalRecord::OrderIdUsed(id) => {
                self.highest_order_id = Some(self.highest_order_id.map_or(id, |h| h.max(id)));
            }
            JournalRecord::StrategyBroken { strategy, reason } => match reason {
                Some(r) => {
                    self.broken.insert(strategy, r);
                }
                None => {
                    self.broken.remove(&strategy);
                }
            },
            JournalRecord::TradingState(s) => self.trading_state = Some(s),
            JournalRecord::RuleState(s) => self.rule_state = Some(s),
            JournalRecord::Assignment(a) => self.assignments.push(a),
            JournalRecord::KnownPositions(p) => self.known_positions = Some(p),
            JournalRecord::EmergencyClose(c) => {
                self.emergency_closes.insert(c.close.strategy, *c);
            }
            // Fills are for the record (the blotter); the engine's state is rebuilt from the
            // broker's executions at recovery.
            JournalRecord::Execution(_) => {}
            JournalRecord::ForcedUnwind { account, enabled } => {
                if enabled {
                    self.forced_unwind.insert(account);
                } else {
                    self.forced_unwind.remove(&account);
                }
            }
            JournalRecord::RiskConfig(c) => self.risk_config = Some(c),
            JournalRecord::AssignmentChoice { strategy, choice } => {
                self.assignment_choices.insert(strategy, choice);
            }
            JournalRecord::AttachedExit(a) => {
                if a.ended_at.is_some() {
                    self.attached_exits.remove(&a.entry);
                } else {
                    self.attached_exits.insert(a.entry.clone(), a);
                }
            }
            JournalRecord::Delivery(d) => {
                self.last_delivery_id = self.last_delivery_id.max(d.id);
                if d.alert.code == "summary.daily" {
                    self.last_summary =
                        Some(self.last_summary.map_or(d.alert.ts, |t| t.max(d.alert.ts)));
                }
                if d.state == crate::alert::DeliveryState::Pending {
                    self.pending_deliveries.insert(d.id, d);
                } else {
                    self.pending_deliveries.remove(&d.id);
                }
            }
        }
    }
}

/// Durable write-ahead log.
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    /// Appends a record durably; returns only after it is safe.
    async fn append(&self, record: JournalRecord) -> Result<(), JournalError>;
    /// Reads everything back.
    async fn load(&self) -> Result<JournalState, JournalError>;
}

/// In-memory journal; clones share the records.
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    records: Arc<Mutex<Vec<JournalRecord>>>,
    fail_writes: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryJournal {
    /// Empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new handle on the same records, as if the database were opened again after a crash.
    pub fn reopen(&self) -> Self {
        self.clone()
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<JournalRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Test hook: make every following write fail (disk full, database locked).
    pub fn set_fail_writes(&self, fail: bool) {
        self.fail_writes
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, record: JournalRecord) -> Result<(), JournalError> {
        if self.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(JournalError::Write(
                "memory journal: writes disabled".into(),
            ));
        }
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
        Ok(())
    }

    async fn load(&self) -> Result<JournalState, JournalError> {
        let mut st = JournalState::default();
        for r in self.records() {
            st.apply(r);
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Delivery, DeliveryState, Severity};
    use tradeguard_model::Timestamp;

    fn delivery(id: u64, code: &str, ts: i64, state: DeliveryState) -> JournalRecord {
        JournalRecord::Delivery(Delivery {
            id,
            channel: "mail".into(),
            alert: Alert {
                ts: Timestamp(ts),
                severity: Severity::Info,
                code: code.into(),
                message: "m".into(),
                group: None,
                stop: None,
            },
            state,
            attempts: 0,
            error_code: None,
            error: None,
            updated: Timestamp(ts),
        })
    }

    #[test]
    fn deliveries_fold_to_the_pending_ones_the_last_id_and_the_last_summary() {
        let mut s = JournalState::default();
        s.apply(delivery(
            1,
            "assignment.detected",
            10,
            DeliveryState::Pending,
        ));
        s.apply(delivery(2, "summary.daily", 20, DeliveryState::Pending));
        s.apply(delivery(3, "stop.placed", 30, DeliveryState::Pending));
        s.apply(delivery(1, "assignment.detected", 10, DeliveryState::Sent));
        s.apply(delivery(3, "stop.placed", 30, DeliveryState::GaveUp));
        assert_eq!(
            s.pending_deliveries.keys().copied().collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(s.last_delivery_id, 3);
        assert_eq!(s.last_summary, Some(Timestamp(20)));
    }
}
