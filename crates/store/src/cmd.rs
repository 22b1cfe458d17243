//! Owns the typed write API: [`WriteCmd`] (every change the store accepts), its validation
//! before queueing, and [`WriteOutcome`].

use crate::error::StoreError;
use crate::records::{
    AccountRecord, AccountSnapshot, AssignmentRecord, ExecutionGroupRecord, ExecutionRecord,
    ForcedUnwindRecord, NewAlert, NewAudit, NewJournalEntry, NewRiskConfig, OrderRecord,
    StopLossRecord, StrategyRecord, StrategyState,
};

/// One change to durable state. Sent to the single writer; acknowledged after COMMIT.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteCmd {
    /// Insert or update an account.
    UpsertAccount(AccountRecord),
    /// Insert or update a strategy and replace its legs.
    UpsertStrategy(StrategyRecord),
    /// Change a strategy's state (reason required for `Broken`). Missing strategy: `NotFound`.
    SetStrategyState {
        /// Strategy.
        strategy_id: String,
        /// New state.
        state: StrategyState,
        /// Reason (kept in `broken_reason`; cleared when `None`).
        reason: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// Insert or update an order; also raises the order-id high-water mark to its id.
    UpsertOrder(OrderRecord),
    /// Raise the highest-order-id mark; a lower value is ignored ([`WriteOutcome::Unchanged`]).
    RaiseHighestOrderId(i64),
    /// Record a fill; a repeated `exec_id` is ignored ([`WriteOutcome::Unchanged`]).
    InsertExecution(ExecutionRecord),
    /// Insert or update an execution group (state + legs).
    UpsertExecutionGroup(ExecutionGroupRecord),
    /// Insert or update a strategy's stop-loss state.
    UpsertStopLoss(StopLossRecord),
    /// Record an assignment; a repeated `assignment_id` is ignored.
    InsertAssignment(AssignmentRecord),
    /// Raise an alert; outcome is [`WriteOutcome::Inserted`] with the alert id.
    RaiseAlert(NewAlert),
    /// Acknowledge an alert (already acknowledged: `Unchanged`; missing: `NotFound`).
    AcknowledgeAlert {
        /// Alert id.
        alert_id: i64,
        /// When.
        at_ms: i64,
    },
    /// Set or clear an account's forced-unwind flag.
    SetForcedUnwind(ForcedUnwindRecord),
    /// Store a new risk config version; outcome is `Inserted` with the version number.
    ApplyRiskConfig(NewRiskConfig),
    /// Record (or overwrite, same account and time) an account snapshot.
    RecordSnapshot(AccountSnapshot),
    /// Append to the audit log; outcome is `Inserted` with the entry id.
    Audit(NewAudit),
    /// Append to the engine journal; outcome is `Inserted` with the record's `seq`.
    AppendJournal(NewJournalEntry),
    /// Insert an account if it does not exist yet (an existing row is left untouched:
    /// [`WriteOutcome::Unchanged`]). For writers that must satisfy the account foreign key
    /// without knowing the account's details.
    EnsureAccount(AccountRecord),
    /// Insert a placeholder strategy (kind `"unknown"`, state `open`, no legs) if it does not
    /// exist yet; an existing row is left untouched ([`WriteOutcome::Unchanged`]). For writers
    /// that record state of a strategy (stop-loss, Broken flag) before its full record exists.
    EnsureStrategy {
        /// Strategy.
        strategy_id: String,
        /// Owning account (must exist).
        account_id: String,
        /// Underlying symbol, if known (`"unknown"` otherwise).
        underlying: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// Clear a strategy's Broken state: a `broken` strategy becomes `open` with no reason.
    /// A strategy in any other state, or a missing one, is left as is ([`WriteOutcome::Unchanged`]).
    ClearStrategyBroken {
        /// Strategy.
        strategy_id: String,
        /// When.
        at_ms: i64,
    },
}

/// Result of one acknowledged (committed) command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The change was applied.
    Applied,
    /// A row was inserted with this id (alerts, audit, risk config version).
    Inserted {
        /// Row id / version.
        id: i64,
    },
    /// Nothing to change: duplicate id, lower high-water mark, alert already acknowledged.
    Unchanged,
}

fn non_empty(field: &'static str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        Err(StoreError::InvalidInput {
            field,
            reason: "must not be empty".to_owned(),
        })
    } else {
        Ok(())
    }
}

fn positive(field: &'static str, v: i64) -> Result<(), StoreError> {
    if v > 0 {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            field,
            reason: format!("must be > 0, got {v}"),
        })
    }
}

impl WriteCmd {
    /// Checks what the schema cannot express well, before the command is queued.
    pub fn validate(&self) -> Result<(), StoreError> {
        match self {
            Self::UpsertAccount(a) => {
                non_empty("account_id", &a.account_id)?;
                non_empty("currency", &a.currency)
            }
            Self::UpsertStrategy(s) => {
                non_empty("strategy_id", &s.strategy_id)?;
                non_empty("account_id", &s.account_id)?;
                if s.state == StrategyState::Broken && s.broken_reason.is_none() {
                    return Err(StoreError::InvalidInput {
                        field: "broken_reason",
                        reason: "a broken strategy needs a reason".to_owned(),
                    });
                }
                for l in &s.legs {
                    non_empty("legs.symbol", &l.symbol)?;
                    if l.qty == 0 {
                        return Err(StoreError::InvalidInput {
                            field: "legs.qty",
                            reason: "must not be 0".to_owned(),
                        });
                    }
                }
                Ok(())
            }
            Self::SetStrategyState {
                strategy_id,
                state,
                reason,
                ..
            } => {
                non_empty("strategy_id", strategy_id)?;
                if *state == StrategyState::Broken && reason.as_deref().is_none_or(str::is_empty) {
                    return Err(StoreError::InvalidInput {
                        field: "reason",
                        reason: "a broken strategy needs a reason".to_owned(),
                    });
                }
                Ok(())
            }
            Self::UpsertOrder(o) => {
                positive("order_id", o.order_id)?;
                positive("qty", o.qty)?;
                non_empty("symbol", &o.symbol)?;
                if o.filled_qty < 0 || o.filled_qty > o.qty {
                    return Err(StoreError::InvalidInput {
                        field: "filled_qty",
                        reason: format!("must be within 0..={}, got {}", o.qty, o.filled_qty),
                    });
                }
                Ok(())
            }
            Self::RaiseHighestOrderId(v) => {
                if *v < 0 {
                    return Err(StoreError::InvalidInput {
                        field: "highest_order_id",
                        reason: format!("must be >= 0, got {v}"),
                    });
                }
                Ok(())
            }
            Self::InsertExecution(e) => {
                non_empty("exec_id", &e.exec_id)?;
                positive("qty", e.qty)
            }
            Self::UpsertExecutionGroup(g) => non_empty("group_id", &g.group_id),
            Self::UpsertStopLoss(s) => non_empty("strategy_id", &s.strategy_id),
            Self::InsertAssignment(a) => {
                non_empty("assignment_id", &a.assignment_id)?;
                non_empty("symbol", &a.symbol)
            }
            Self::RaiseAlert(a) => {
                non_empty("kind", &a.kind)?;
                non_empty("text", &a.text)
            }
            Self::AcknowledgeAlert { .. } => Ok(()),
            Self::SetForcedUnwind(f) => {
                non_empty("account_id", &f.account_id)?;
                non_empty("reason", &f.reason)
            }
            Self::ApplyRiskConfig(c) => non_empty("hash", &c.hash),
            Self::RecordSnapshot(s) => non_empty("account_id", &s.account_id),
            Self::Audit(a) => {
                non_empty("subject", &a.subject)?;
                non_empty("reason", &a.reason)
            }
            Self::AppendJournal(j) => {
                non_empty("kind", &j.kind)?;
                if !j.record.is_object() {
                    return Err(StoreError::InvalidInput {
                        field: "record",
                        reason: "must be a JSON object".to_owned(),
                    });
                }
                Ok(())
            }
            Self::EnsureAccount(a) => {
                non_empty("account_id", &a.account_id)?;
                non_empty("currency", &a.currency)
            }
            Self::EnsureStrategy {
                strategy_id,
                account_id,
                ..
            } => {
                non_empty("strategy_id", strategy_id)?;
                non_empty("account_id", account_id)
            }
            Self::ClearStrategyBroken { strategy_id, .. } => non_empty("strategy_id", strategy_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs;

    #[test]
    fn validation_rejects_bad_input_with_field_names() {
        let mut o = stubs::order(1, "U1");
        o.filled_qty = o.qty + 1;
        let e = WriteCmd::UpsertOrder(o).validate().unwrap_err();
        assert_eq!(
            e,
            StoreError::InvalidInput {
                field: "filled_qty",
                reason: "must be within 0..=1, got 2".into()
            }
        );

        let e = WriteCmd::RaiseHighestOrderId(-1).validate().unwrap_err();
        assert_eq!(e.code(), "store.invalid_input");

        let e = WriteCmd::SetStrategyState {
            strategy_id: "S".into(),
            state: StrategyState::Broken,
            reason: None,
            at_ms: 0,
        }
        .validate()
        .unwrap_err();
        assert!(matches!(
            e,
            StoreError::InvalidInput {
                field: "reason",
                ..
            }
        ));

        let mut a = stubs::audit(0, "x");
        a.subject = " ".into();
        assert!(WriteCmd::Audit(a).validate().is_err());

        let mut j = stubs::journal_entry(0, "group");
        j.kind = String::new();
        let e = WriteCmd::AppendJournal(j).validate().unwrap_err();
        assert!(matches!(e, StoreError::InvalidInput { field: "kind", .. }));
        let mut j = stubs::journal_entry(0, "group");
        j.record = serde_json::json!([1, 2]);
        let e = WriteCmd::AppendJournal(j).validate().unwrap_err();
        assert!(matches!(
            e,
            StoreError::InvalidInput {
                field: "record",
                ..
            }
        ));

        let e = WriteCmd::EnsureStrategy {
            strategy_id: "S1".into(),
            account_id: String::new(),
            underlying: None,
            at_ms: 0,
        }
        .validate()
        .unwrap_err();
        assert!(matches!(
            e,
            StoreError::InvalidInput {
                field: "account_id",
                ..
            }
        ));
        let mut acc = stubs::account("U1");
        acc.currency = String::new();
        assert!(WriteCmd::EnsureAccount(acc).validate().is_err());
        assert!(
            WriteCmd::ClearStrategyBroken {
                strategy_id: " ".into(),
                at_ms: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn stubs_are_valid() {
        assert!(
            WriteCmd::UpsertOrder(stubs::order(7, "U1"))
                .validate()
                .is_ok()
        );
        assert!(
            WriteCmd::UpsertStrategy(stubs::strategy("S1", "U1"))
                .validate()
                .is_ok()
        );
        assert!(WriteCmd::Audit(stubs::audit(1, "s")).validate().is_ok());
        assert!(
            WriteCmd::AppendJournal(stubs::journal_entry(1, "group"))
                .validate()
                .is_ok()
        );
    }
}
