//! Owns the projection of a [`JournalRecord`] into the store's typed tables: the extra
//! [`WriteCmd`]s written in the same batch as the record itself, so the UI and reports can
//! query groups, stops, alerts, the audit log, the order-id mark, Broken strategies (with the
//! legs of the ones an emergency close locked), forced-unwind flags and the versions of the risk
//! rules that went into effect without parsing the journal.
//!
//! Records without a typed table (trading state, and any variant this module does not name)
//! produce no extra command: they are durable in `engine_journal` only. A new record kind
//! therefore needs no change here to be journaled; add an arm only to give it a table.

use crate::alert::{Alert, AuditEntry, Severity};
use crate::group::{Group, GroupPhase};
use crate::journal::JournalRecord;
use crate::stop::{StopLoss, StopState};
use tradeguard_model::{AccountId, Strategy, StrategyId, StrategyState as ModelState};
use tradeguard_store::{
    AccountRecord, AuditKind, ExecutionGroupRecord, ForcedUnwindRecord, GroupLegRecord, GroupState,
    LegRecord, NewAlert, NewAudit, NewRiskConfig, Severity as StoreSeverity, StopLossRecord,
    StopState as StoreStopState, StrategyRecord, StrategyState, WriteCmd,
};

/// Typed-table commands for `record`, appended at `now_ms`. `account` owns strategy rows that
/// must be created for a record that names no account (a Broken flag).
pub(super) fn project(record: &JournalRecord, now_ms: i64, account: &AccountId) -> Vec<WriteCmd> {
    match record {
        JournalRecord::Group(g) => vec![
            ensure_account(&g.intent.account, now_ms),
            WriteCmd::UpsertExecutionGroup(group_record(g)),
        ],
        JournalRecord::Stop(s) => match s.spec.strategy {
            // The stop_loss table is keyed by strategy: a stop without one lives in the
            // journal only.
            Some(strategy) => vec![
                ensure_account(&s.spec.account, now_ms),
                ensure_strategy(
                    strategy,
                    &s.spec.account,
                    Some(s.spec.instrument.underlying()),
                    now_ms,
                ),
                WriteCmd::UpsertStopLoss(stop_record(strategy, s, now_ms)),
            ],
            None => Vec::new(),
        },
        JournalRecord::Audit(a) => vec![WriteCmd::Audit(audit_record(a))],
        JournalRecord::Execution(e) => vec![WriteCmd::InsertExecution(execution_record(e))],
        JournalRecord::Alert(a) => vec![WriteCmd::RaiseAlert(alert_record(a))],
        JournalRecord::OrderIdUsed(id) => vec![WriteCmd::RaiseHighestOrderId(id.0)],
        JournalRecord::StrategyBroken {
            strategy,
            reason: Some(reason),
        } => vec![
            ensure_account(account, now_ms),
            ensure_strategy(*strategy, account, None, now_ms),
            WriteCmd::SetStrategyState {
                strategy_id: strategy.to_string(),
                state: StrategyState::Broken,
                reason: Some(or_placeholder(reason, "broken")),
                at_ms: now_ms,
            },
        ],
        JournalRecord::StrategyBroken {
            strategy,
            reason: None,
        } => vec![WriteCmd::ClearStrategyBroken {
            strategy_id: strategy.to_string(),
            at_ms: now_ms,
        }],
        JournalRecord::ForcedUnwind { account, enabled } => vec![
            ensure_account(account, now_ms),
            WriteCmd::SetForcedUnwind(ForcedUnwindRecord {
                account_id: account.to_string(),
                active: *enabled,
                reason: if *enabled {
                    "forced unwind switched on by the engine".to_owned()
                } else {
                    "forced unwind switched off by a person".to_owned()
                },
                updated_at_ms: now_ms,
            }),
        ],
        // The strategy an emergency close locked (Broken, later Closed), with every leg, into
        // the strategies/legs tables. The journal record itself is the engine's source at the
        // next start (it keeps each leg's exact instrument and role); the table is for the UI
        // and reports. A strategy the table cannot hold stays in the journal only: the
        // projection must never make the close's write-ahead record fail.
        JournalRecord::EmergencyClose(c) => match &c.strategy {
            Some(st) => {
                let cmd = WriteCmd::UpsertStrategy(strategy_record(st, now_ms));
                match cmd.validate() {
                    Ok(()) => vec![ensure_account(&st.account, now_ms), cmd],
                    Err(e) => {
                        tracing::warn!(
                            code = e.code(),
                            strategy = %st.id,
                            "emergency close's strategy not projected to the strategies table (journal only): {e}"
                        );
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        },
        // Every version of the rules that went into effect, for the record (the engine reads
        // the last good one back from the journal record itself).
        JournalRecord::RiskConfig(c) => vec![WriteCmd::ApplyRiskConfig(NewRiskConfig {
            text: c.source.text.clone(),
            hash: c.source.hash.clone(),
            applied_at_ms: c.applied_at.millis(),
        })],
        // Trading state and every other kind: durable in engine_journal only.
        _ => Vec::new(),
    }
}

/// The store's row for a strategy: legs by instrument id (OCC symbol or ticker) with their
/// signed quantity and open price; `opened_at_ms`/`updated_at_ms` are the record's time (the
/// store keeps the `opened_at_ms` of a strategy's first record).
pub(super) fn strategy_record(s: &Strategy, now_ms: i64) -> StrategyRecord {
    StrategyRecord {
        strategy_id: s.id.to_string(),
        account_id: s.account.to_string(),
        kind: s.kind.as_str().to_owned(),
        underlying: s
            .legs
            .first()
            .map(|l| l.instrument.underlying().to_owned())
            .unwrap_or_default(),
        state: match s.state {
            ModelState::Opening => StrategyState::Opening,
            ModelState::Open => StrategyState::Open,
            ModelState::Closing => StrategyState::Closing,
            ModelState::Closed => StrategyState::Closed,
            ModelState::Broken => StrategyState::Broken,
        },
        // The store requires a reason with Broken: a Broken strategy without one gets a
        // visible placeholder.
        broken_reason: match (&s.broken_reason, s.state) {
            (Some(r), _) => Some(r.code().to_owned()),
            (None, ModelState::Broken) => Some("broken".to_owned()),
            (None, _) => None,
        },
        opened_at_ms: now_ms,
        updated_at_ms: now_ms,
        legs: s
            .legs
            .iter()
            .map(|l| LegRecord {
                symbol: l.instrument.id().to_string(),
                qty: l.qty,
                open_price_e4: Some(l.avg_price.raw()),
            })
            .collect(),
    }
}

/// Text columns the store requires to be non-empty get a visible placeholder instead.
fn or_placeholder(s: &str, placeholder: &str) -> String {
    if s.trim().is_empty() {
        placeholder.to_owned()
    } else {
        s.to_owned()
    }
}

/// An account row for the foreign keys; an existing row (with the real details the app
/// wrote) is never overwritten. `XXX` is the ISO 4217 code for "no currency".
fn ensure_account(account: &AccountId, now_ms: i64) -> WriteCmd {
    WriteCmd::EnsureAccount(AccountRecord {
        account_id: account.to_string(),
        broker: "unknown".to_owned(),
        name: account.to_string(),
        currency: "XXX".to_owned(),
        created_at_ms: now_ms,
    })
}

fn ensure_strategy(
    strategy: StrategyId,
    account: &AccountId,
    underlying: Option<&str>,
    now_ms: i64,
) -> WriteCmd {
    WriteCmd::EnsureStrategy {
        strategy_id: strategy.to_string(),
        account_id: account.to_string(),
        underlying: underlying.map(str::to_owned),
        at_ms: now_ms,
    }
}

/// The store's coarser group state for an engine group.
pub(super) fn group_state(g: &Group) -> GroupState {
    let forward = || g.legs.iter().filter(|l| !l.rollback);
    let any_filled = g.legs.iter().any(|l| l.filled() > 0);
    let all_filled = forward().all(|l| l.filled() >= l.intent.qty);
    match g.phase {
        GroupPhase::Legging { .. } | GroupPhase::Combo => {
            if g.legs.iter().all(|l| l.order_id.is_none()) {
                GroupState::Planned
            } else if any_filled {
                GroupState::PartiallyFilled
            } else {
                GroupState::Working
            }
        }
        GroupPhase::RollingBack { .. } => GroupState::Unwinding,
        GroupPhase::Completed => GroupState::Filled,
        // Filled legs were unwound: nothing remains of the group.
        GroupPhase::RolledBack => GroupState::Cancelled,
        GroupPhase::Failed => GroupState::Broken,
        GroupPhase::Interrupted if !any_filled => GroupState::Cancelled,
        GroupPhase::Interrupted if all_filled => GroupState::Filled,
        GroupPhase::Interrupted => GroupState::Broken,
    }
}

fn execution_record(e: &tradeguard_model::Execution) -> tradeguard_store::ExecutionRecord {
    tradeguard_store::ExecutionRecord {
        exec_id: e.exec_id.as_str().to_owned(),
        order_id: e.order_id.map(|o| o.0),
        broker_order_id: e.order_id.map(|o| o.0.to_string()),
        account_id: e.account.as_str().to_owned(),
        symbol: e.instrument.id().as_str().to_owned(),
        side: match e.side {
            tradeguard_model::Side::Buy => tradeguard_store::Side::Buy,
            tradeguard_model::Side::Sell => tradeguard_store::Side::Sell,
        },
        qty: e.qty,
        price_e4: e.price.raw(),
        commission_e4: e.commission.map_or(0, |c| c.raw()),
        executed_at_ms: e.ts.millis(),
    }
}

fn group_record(g: &Group) -> ExecutionGroupRecord {
    ExecutionGroupRecord {
        group_id: g.id.to_string(),
        account_id: g.intent.account.to_string(),
        strategy_id: g.intent.strategy.map(|s| s.to_string()),
        state: group_state(g),
        reason: g.reason.clone(),
        legs: g
            .legs
            .iter()
            .map(|l| GroupLegRecord {
                symbol: l.intent.instrument.id().to_string(),
                qty: l.intent.signed_qty(),
                order_id: l.order_id.map(|o| o.0),
                filled_qty: l.intent.side.sign().saturating_mul(l.filled()),
            })
            .collect(),
        created_at_ms: g.created.millis(),
        updated_at_ms: g.updated.millis(),
    }
}

/// `trigger_e4` holds the stop (trigger) price in fixed-point e4, the engine's trigger.
fn stop_record(strategy: StrategyId, s: &StopLoss, now_ms: i64) -> StopLossRecord {
    let fired = s.triggered_at.is_some() || s.state != StopState::Working;
    StopLossRecord {
        strategy_id: strategy.to_string(),
        state: if fired {
            StoreStopState::Triggered
        } else {
            StoreStopState::Armed
        },
        trigger_e4: s.spec.stop.raw(),
        triggered_at_ms: s.triggered_at.map(|t| t.millis()),
        updated_at_ms: now_ms,
    }
}

fn audit_kind(decision: &str) -> AuditKind {
    match decision {
        "accepted" => AuditKind::OrderSent,
        "refused" => AuditKind::RuleFired,
        "hedge" => AuditKind::HedgePlaced,
        "recovered" => AuditKind::ReconciliationRepair,
        "forced_unwind" => AuditKind::ForcedUnwind,
        "stop_market" => AuditKind::StopTriggered,
        _ => AuditKind::Decision,
    }
}

fn audit_record(a: &AuditEntry) -> NewAudit {
    NewAudit {
        ts_ms: a.ts.millis(),
        kind: audit_kind(&a.decision),
        subject: a
            .group
            .map_or_else(|| "engine".to_owned(), |g| format!("group:{g}")),
        reason: or_placeholder(&format!("{}: {}", a.code, a.reason), "(no reason)"),
        // The whole entry (decision, code, purpose, group) stays queryable.
        details: serde_json::json!({
            "decision": a.decision,
            "code": a.code,
            "purpose": a.purpose,
            "group": a.group,
        }),
    }
}

fn alert_record(a: &Alert) -> NewAlert {
    let mut text = or_placeholder(&a.message, &or_placeholder(&a.code, "(no text)"));
    if let Some(g) = a.group {
        text.push_str(&format!(" [group {g}]"));
    }
    if let Some(s) = a.stop {
        text.push_str(&format!(" [stop {s}]"));
    }
    NewAlert {
        account_id: None,
        severity: match a.severity {
            Severity::Info => StoreSeverity::Info,
            Severity::Warning => StoreSeverity::Warning,
            Severity::Critical => StoreSeverity::Critical,
        },
        kind: or_placeholder(&a.code, "engine.alert"),
        text,
        created_at_ms: a.ts.millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Book;
    use tradeguard_model::{GroupId, OrderId, Timestamp};

    fn group() -> Group {
        Group::legged(
            GroupId(1),
            crate::stubs::iron_condor_open(1),
            &Book::new(),
            Timestamp(0),
        )
    }

    #[test]
    fn group_states_follow_phase_and_fills() {
        let mut g = group();
        assert_eq!(group_state(&g), GroupState::Planned);
        g.mark_sent(1, OrderId(1), Timestamp(1));
        assert_eq!(group_state(&g), GroupState::Working);
        g.legs[1].status_filled = 1;
        assert_eq!(group_state(&g), GroupState::PartiallyFilled);
        g.phase = GroupPhase::Interrupted;
        assert_eq!(group_state(&g), GroupState::Broken, "unmatched legs left");
        for l in &mut g.legs {
            l.status_filled = l.intent.qty;
        }
        assert_eq!(group_state(&g), GroupState::Filled);
        for l in &mut g.legs {
            l.status_filled = 0;
        }
        assert_eq!(group_state(&g), GroupState::Cancelled, "nothing filled");
        g.phase = GroupPhase::RolledBack;
        assert_eq!(group_state(&g), GroupState::Cancelled);
        g.phase = GroupPhase::Failed;
        assert_eq!(group_state(&g), GroupState::Broken);
        g.phase = GroupPhase::RollingBack { tier: 0 };
        assert_eq!(group_state(&g), GroupState::Unwinding);
    }

    #[test]
    fn an_execution_projects_to_the_executions_table() {
        let e = tradeguard_model::Execution {
            exec_id: tradeguard_model::ExecId::new("0001.01"),
            order_id: Some(OrderId(42)),
            account: AccountId::new("DU1"),
            instrument: tradeguard_model::stubs::put(440),
            side: tradeguard_model::Side::Buy,
            qty: 2,
            price: tradeguard_model::Price::parse("1.25").unwrap(),
            ts: Timestamp::from_secs(1_700_000_000),
            commission: Some(tradeguard_model::Money::parse("1.30").unwrap()),
            liquidity: None,
        };
        let cmds = project(
            &JournalRecord::Execution(e.clone()),
            0,
            &AccountId::new("DU1"),
        );
        let [WriteCmd::InsertExecution(r)] = cmds.as_slice() else {
            panic!("one execution insert: {cmds:?}");
        };
        assert_eq!(r.exec_id, "0001.01");
        assert_eq!(r.order_id, Some(42));
        assert_eq!(r.symbol, e.instrument.id().as_str());
        assert_eq!(r.side, tradeguard_store::Side::Buy);
        assert_eq!((r.qty, r.price_e4, r.commission_e4), (2, 12_500, 13_000));
        assert_eq!(r.executed_at_ms, 1_700_000_000_000);
        cmds[0].validate().unwrap();
    }

    #[test]
    fn records_without_a_table_project_to_nothing() {
        let acc = AccountId::new("DU1");
        let r = JournalRecord::TradingState(crate::gate::TradingState::Halted);
        assert!(project(&r, 0, &acc).is_empty());
        // Every projected command passes the store's validation.
        let r = JournalRecord::Group(group());
        let cmds = project(&r, 0, &acc);
        assert_eq!(cmds.len(), 2);
        assert!(cmds.iter().all(|c| c.validate().is_ok()));
    }

    #[test]
    fn empty_texts_get_placeholders_the_store_accepts() {
        let a = Alert {
            ts: Timestamp(0),
            severity: Severity::Info,
            code: String::new(),
            message: " ".into(),
            group: None,
            stop: None,
        };
        let cmd = WriteCmd::RaiseAlert(alert_record(&a));
        assert!(cmd.validate().is_ok(), "{cmd:?}");
        assert_eq!(audit_kind("finished"), AuditKind::Decision);
        assert_eq!(audit_kind("hedge"), AuditKind::HedgePlaced);
    }
}
