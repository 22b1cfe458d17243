//! Owns the SQL that applies each [`WriteCmd`] inside the writer's open transaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::cmd::{WriteCmd, WriteOutcome};
use crate::error::StoreError;

/// Error while applying: keeps the raw rusqlite error so the writer can map it with the
/// database path and detect a transaction that SQLite rolled back.
pub(crate) enum ApplyError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

fn json<T: serde::Serialize>(field: &'static str, v: &T) -> Result<String, ApplyError> {
    serde_json::to_string(v).map_err(|e| {
        ApplyError::Store(StoreError::InvalidInput {
            field,
            reason: e.to_string(),
        })
    })
}

fn changed(n: usize) -> WriteOutcome {
    if n == 0 {
        WriteOutcome::Unchanged
    } else {
        WriteOutcome::Applied
    }
}

/// True when a command may touch more than one row/statement, so a failure halfway needs a
/// savepoint to undo its first part. Single-statement commands are atomic on their own
/// (SQLite rolls back a failed statement), which saves two statements per write.
pub(crate) const fn needs_savepoint(cmd: &WriteCmd) -> bool {
    matches!(
        cmd,
        WriteCmd::UpsertStrategy(_) | WriteCmd::UpsertOrder(_) | WriteCmd::AcknowledgeAlert { .. }
    )
}

/// Applies one command inside the writer's transaction (see [`needs_savepoint`]).
pub(crate) fn apply(conn: &Connection, cmd: &WriteCmd) -> Result<WriteOutcome, ApplyError> {
    match cmd {
        WriteCmd::UpsertAccount(a) => {
            conn.prepare_cached(
                "INSERT INTO accounts (account_id, broker, name, currency, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(account_id) DO UPDATE SET broker = excluded.broker,
                   name = excluded.name, currency = excluded.currency",
            )?
            .execute(params![
                a.account_id,
                a.broker,
                a.name,
                a.currency,
                a.created_at_ms
            ])?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::UpsertStrategy(s) => {
            // A strategy is opened once: a later upsert keeps the first `opened_at_ms`.
            conn.prepare_cached(
                "INSERT INTO strategies (strategy_id, account_id, kind, underlying, state,
                   broken_reason, opened_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(strategy_id) DO UPDATE SET account_id = excluded.account_id,
                   kind = excluded.kind, underlying = excluded.underlying, state = excluded.state,
                   broken_reason = excluded.broken_reason, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![
                s.strategy_id,
                s.account_id,
                s.kind,
                s.underlying,
                s.state,
                s.broken_reason,
                s.opened_at_ms,
                s.updated_at_ms
            ])?;
            conn.prepare_cached("DELETE FROM legs WHERE strategy_id = ?1")?
                .execute([&s.strategy_id])?;
            let mut ins = conn.prepare_cached(
                "INSERT INTO legs (strategy_id, leg_index, symbol, qty, open_price_e4)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, l) in s.legs.iter().enumerate() {
                let idx = i64::try_from(i).map_err(|_| {
                    ApplyError::Store(StoreError::InvalidInput {
                        field: "legs",
                        reason: "too many legs".to_owned(),
                    })
                })?;
                ins.execute(params![
                    s.strategy_id,
                    idx,
                    l.symbol,
                    l.qty,
                    l.open_price_e4
                ])?;
            }
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::SetStrategyState {
            strategy_id,
            state,
            reason,
            at_ms,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE strategies SET state = ?2, broken_reason = ?3, updated_at_ms = ?4
                     WHERE strategy_id = ?1",
                )?
                .execute(params![strategy_id, state, reason, at_ms])?;
            if n == 0 {
                return Err(ApplyError::Store(StoreError::NotFound {
                    what: "strategy",
                    key: strategy_id.clone(),
                }));
            }
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::UpsertOrder(o) => {
            conn.prepare_cached(
                "INSERT INTO orders (order_id, broker_order_id, account_id, strategy_id, group_id,
                   symbol, side, qty, limit_price_e4, status, filled_qty, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(order_id) DO UPDATE SET broker_order_id = excluded.broker_order_id,
                   account_id = excluded.account_id, strategy_id = excluded.strategy_id,
                   group_id = excluded.group_id, symbol = excluded.symbol, side = excluded.side,
                   qty = excluded.qty, limit_price_e4 = excluded.limit_price_e4,
                   status = excluded.status, filled_qty = excluded.filled_qty,
                   updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![
                o.order_id,
                o.broker_order_id,
                o.account_id,
                o.strategy_id,
                o.group_id,
                o.symbol,
                o.side,
                o.qty,
                o.limit_price_e4,
                o.status,
                o.filled_qty,
                o.created_at_ms,
                o.updated_at_ms
            ])?;
            raise_hwm(conn, o.order_id)?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::RaiseHighestOrderId(v) => Ok(changed(raise_hwm(conn, *v)?)),
        WriteCmd::InsertExecution(e) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO executions (exec_id, order_id, broker_order_id, account_id, symbol,
                       side, qty, price_e4, commission_e4, executed_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(exec_id) DO NOTHING",
                )?
                .execute(params![
                    e.exec_id,
                    e.order_id,
                    e.broker_order_id,
                    e.account_id,
                    e.symbol,
                    e.side,
                    e.qty,
                    e.price_e4,
                    e.commission_e4,
                    e.executed_at_ms
                ])?;
            Ok(changed(n))
        }
        WriteCmd::UpsertExecutionGroup(g) => {
            let legs = json("legs", &g.legs)?;
            conn.prepare_cached(
                "INSERT INTO execution_groups (group_id, account_id, strategy_id, state, reason, legs,
                   created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(group_id) DO UPDATE SET account_id = excluded.account_id,
                   strategy_id = excluded.strategy_id, state = excluded.state,
                   reason = excluded.reason, legs = excluded.legs,
                   updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![
                g.group_id,
                g.account_id,
                g.strategy_id,
                g.state,
                g.reason,
                legs,
                g.created_at_ms,
                g.updated_at_ms
            ])?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::UpsertStopLoss(s) => {
            conn.prepare_cached(
                "INSERT INTO stop_loss (strategy_id, state, trigger_e4, triggered_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(strategy_id) DO UPDATE SET state = excluded.state,
                   trigger_e4 = excluded.trigger_e4, triggered_at_ms = excluded.triggered_at_ms,
                   updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![s.strategy_id, s.state, s.trigger_e4, s.triggered_at_ms, s.updated_at_ms])?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::InsertAssignment(a) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO assignments (assignment_id, account_id, symbol, qty, assigned_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(assignment_id) DO NOTHING",
                )?
                .execute(params![a.assignment_id, a.account_id, a.symbol, a.qty, a.assigned_at_ms])?;
            Ok(changed(n))
        }
        WriteCmd::RaiseAlert(a) => {
            conn.prepare_cached(
                "INSERT INTO alerts (account_id, severity, kind, text, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                a.account_id,
                a.severity,
                a.kind,
                a.text,
                a.created_at_ms
            ])?;
            Ok(WriteOutcome::Inserted {
                id: conn.last_insert_rowid(),
            })
        }
        WriteCmd::AcknowledgeAlert { alert_id, at_ms } => {
            let current: Option<Option<i64>> = conn
                .prepare_cached("SELECT acknowledged_at_ms FROM alerts WHERE id = ?1")?
                .query_row([alert_id], |r| r.get(0))
                .optional()?;
            match current {
                None => Err(ApplyError::Store(StoreError::NotFound {
                    what: "alert",
                    key: alert_id.to_string(),
                })),
                Some(Some(_)) => Ok(WriteOutcome::Unchanged),
                Some(None) => {
                    conn.prepare_cached("UPDATE alerts SET acknowledged_at_ms = ?2 WHERE id = ?1")?
                        .execute(params![alert_id, at_ms])?;
                    Ok(WriteOutcome::Applied)
                }
            }
        }
        WriteCmd::SetForcedUnwind(f) => {
            conn.prepare_cached(
                "INSERT INTO forced_unwind (account_id, active, reason, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(account_id) DO UPDATE SET active = excluded.active,
                   reason = excluded.reason, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![f.account_id, f.active, f.reason, f.updated_at_ms])?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::ApplyRiskConfig(c) => {
            conn.prepare_cached(
                "INSERT INTO risk_config_versions (text, hash, applied_at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![c.text, c.hash, c.applied_at_ms])?;
            Ok(WriteOutcome::Inserted {
                id: conn.last_insert_rowid(),
            })
        }
        WriteCmd::RecordSnapshot(s) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO account_snapshots (account_id, ts_ms, net_liq_e4, cash_e4,
                   init_margin_e4, maint_margin_e4, buying_power_e4)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.account_id,
                s.ts_ms,
                s.net_liq_e4,
                s.cash_e4,
                s.init_margin_e4,
                s.maint_margin_e4,
                s.buying_power_e4
            ])?;
            Ok(WriteOutcome::Applied)
        }
        WriteCmd::Audit(a) => {
            let details = json("details", &a.details)?;
            conn.prepare_cached(
                "INSERT INTO audit_log (ts_ms, kind, subject, reason, details)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![a.ts_ms, a.kind, a.subject, a.reason, details])?;
            Ok(WriteOutcome::Inserted {
                id: conn.last_insert_rowid(),
            })
        }
        WriteCmd::AppendJournal(j) => {
            let record = json("record", &j.record)?;
            conn.prepare_cached(
                "INSERT INTO engine_journal (ts_ms, kind, record) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![j.ts_ms, j.kind, record])?;
            Ok(WriteOutcome::Inserted {
                id: conn.last_insert_rowid(),
            })
        }
        WriteCmd::EnsureAccount(a) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO accounts (account_id, broker, name, currency, created_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(account_id) DO NOTHING",
                )?
                .execute(params![
                    a.account_id,
                    a.broker,
                    a.name,
                    a.currency,
                    a.created_at_ms
                ])?;
            Ok(changed(n))
        }
        WriteCmd::EnsureStrategy {
            strategy_id,
            account_id,
            underlying,
            at_ms,
        } => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO strategies (strategy_id, account_id, kind, underlying, state,
                       broken_reason, opened_at_ms, updated_at_ms)
                     VALUES (?1, ?2, 'unknown', ?3, 'open', NULL, ?4, ?4)
                     ON CONFLICT(strategy_id) DO NOTHING",
                )?
                .execute(params![
                    strategy_id,
                    account_id,
                    underlying.as_deref().unwrap_or("unknown"),
                    at_ms
                ])?;
            Ok(changed(n))
        }
        WriteCmd::ClearStrategyBroken { strategy_id, at_ms } => {
            let n = conn
                .prepare_cached(
                    "UPDATE strategies SET state = 'open', broken_reason = NULL, updated_at_ms = ?2
                     WHERE strategy_id = ?1 AND state = 'broken'",
                )?
                .execute(params![strategy_id, at_ms])?;
            Ok(changed(n))
        }
    }
}

/// Raises the high-water mark; returns rows changed (0 when `v` is not higher).
fn raise_hwm(conn: &Connection, v: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO order_id_hwm (singleton, highest) VALUES (1, ?1)
         ON CONFLICT(singleton) DO UPDATE SET highest = excluded.highest
         WHERE excluded.highest > order_id_hwm.highest",
    )?
    .execute([v])
}
