//! Owns test builders: valid records with sensible defaults, for this crate's and other
//! crates' tests. Not used by production code.

use crate::records::{
    AccountRecord, AccountSnapshot, AssignmentRecord, AuditKind, ExecutionGroupRecord,
    ExecutionRecord, ForcedUnwindRecord, GroupLegRecord, GroupState, LegRecord, NewAlert, NewAudit,
    NewJournalEntry, NewRiskConfig, OrderRecord, OrderStatus, Severity, Side, StopLossRecord,
    StopState, StrategyRecord, StrategyState,
};

/// Whole currency units as fixed-point e4.
pub const fn e4(units: i64) -> i64 {
    units * 10_000
}

/// Base time of the stubs (2024-01-02 14:30:00 UTC).
pub const T0_MS: i64 = 1_704_205_800_000;

/// An account.
pub fn account(id: &str) -> AccountRecord {
    AccountRecord {
        account_id: id.to_owned(),
        broker: "ibkr".to_owned(),
        name: format!("Account {id}"),
        currency: "USD".to_owned(),
        created_at_ms: T0_MS,
    }
}

/// An open two-leg put credit spread.
pub fn strategy(id: &str, account_id: &str) -> StrategyRecord {
    StrategyRecord {
        strategy_id: id.to_owned(),
        account_id: account_id.to_owned(),
        kind: "put_credit_spread".to_owned(),
        underlying: "SPY".to_owned(),
        state: StrategyState::Open,
        broken_reason: None,
        opened_at_ms: T0_MS,
        updated_at_ms: T0_MS,
        legs: vec![
            LegRecord {
                symbol: "SPY   240119P00470000".to_owned(),
                qty: -1,
                open_price_e4: Some(2_1500),
            },
            LegRecord {
                symbol: "SPY   240119P00465000".to_owned(),
                qty: 1,
                open_price_e4: Some(1_3000),
            },
        ],
    }
}

/// A working limit order for 1 contract.
pub fn order(order_id: i64, account_id: &str) -> OrderRecord {
    OrderRecord {
        order_id,
        broker_order_id: None,
        account_id: account_id.to_owned(),
        strategy_id: None,
        group_id: None,
        symbol: "SPY   240119P00470000".to_owned(),
        side: Side::Sell,
        qty: 1,
        limit_price_e4: Some(2_1500),
        status: OrderStatus::Submitted,
        filled_qty: 0,
        created_at_ms: T0_MS,
        updated_at_ms: T0_MS,
    }
}

/// A fill of 1 contract.
pub fn execution(exec_id: &str, account_id: &str) -> ExecutionRecord {
    ExecutionRecord {
        exec_id: exec_id.to_owned(),
        order_id: None,
        broker_order_id: Some("B-1".to_owned()),
        account_id: account_id.to_owned(),
        symbol: "SPY   240119P00470000".to_owned(),
        side: Side::Sell,
        qty: 1,
        price_e4: 2_1500,
        commission_e4: 6500,
        executed_at_ms: T0_MS,
    }
}

/// A working two-leg execution group.
pub fn group(id: &str, account_id: &str) -> ExecutionGroupRecord {
    ExecutionGroupRecord {
        group_id: id.to_owned(),
        account_id: account_id.to_owned(),
        strategy_id: None,
        state: GroupState::Working,
        reason: None,
        legs: vec![
            GroupLegRecord {
                symbol: "SPY   240119P00470000".to_owned(),
                qty: -1,
                order_id: Some(1),
                filled_qty: 0,
            },
            GroupLegRecord {
                symbol: "SPY   240119P00465000".to_owned(),
                qty: 1,
                order_id: Some(2),
                filled_qty: 0,
            },
        ],
        created_at_ms: T0_MS,
        updated_at_ms: T0_MS,
    }
}

/// An armed stop at a 500.00 loss.
pub fn stop_loss(strategy_id: &str) -> StopLossRecord {
    StopLossRecord {
        strategy_id: strategy_id.to_owned(),
        state: StopState::Armed,
        trigger_e4: e4(500),
        triggered_at_ms: None,
        updated_at_ms: T0_MS,
    }
}

/// An assignment of one short put.
pub fn assignment(id: &str, account_id: &str) -> AssignmentRecord {
    AssignmentRecord {
        assignment_id: id.to_owned(),
        account_id: account_id.to_owned(),
        symbol: "SPY   240119P00470000".to_owned(),
        qty: -1,
        assigned_at_ms: T0_MS,
    }
}

/// A warning alert.
pub fn alert(kind: &str) -> NewAlert {
    NewAlert {
        account_id: None,
        severity: Severity::Warning,
        kind: kind.to_owned(),
        text: "Margin cushion below 20%".to_owned(),
        created_at_ms: T0_MS,
    }
}

/// A forced-unwind flag.
pub fn forced_unwind(account_id: &str, active: bool) -> ForcedUnwindRecord {
    ForcedUnwindRecord {
        account_id: account_id.to_owned(),
        active,
        reason: "maintenance margin breached".to_owned(),
        updated_at_ms: T0_MS,
    }
}

/// A risk config version.
pub fn risk_config(text: &str) -> NewRiskConfig {
    NewRiskConfig {
        text: text.to_owned(),
        hash: format!("h{}", text.len()),
        applied_at_ms: T0_MS,
    }
}

/// An account snapshot at `ts_ms`.
pub fn snapshot(account_id: &str, ts_ms: i64) -> AccountSnapshot {
    AccountSnapshot {
        account_id: account_id.to_owned(),
        ts_ms,
        net_liq_e4: e4(100_000),
        cash_e4: e4(50_000),
        init_margin_e4: e4(20_000),
        maint_margin_e4: e4(15_000),
        buying_power_e4: e4(80_000),
    }
}

/// A "rule fired" audit entry.
pub fn audit(ts_ms: i64, subject: &str) -> NewAudit {
    NewAudit {
        ts_ms,
        kind: AuditKind::RuleFired,
        subject: subject.to_owned(),
        reason: "max_loss_per_strategy exceeded".to_owned(),
        details: serde_json::json!({ "loss_e4": e4(510), "limit_e4": e4(500) }),
    }
}

/// An engine journal entry of `kind` whose record is `{"kind": kind, "data": {"n": ts_ms}}`.
pub fn journal_entry(ts_ms: i64, kind: &str) -> NewJournalEntry {
    NewJournalEntry {
        ts_ms,
        kind: kind.to_owned(),
        record: serde_json::json!({ "kind": kind, "data": { "n": ts_ms } }),
    }
}
