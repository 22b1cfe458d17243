//! Owns reads: a small pool of read-only connections (`SQLITE_OPEN_READ_ONLY`) and the typed
//! queries. In WAL mode a reader sees the last committed state and never waits for the
//! writer. Queries are synchronous and short; call them from `spawn_blocking` if a caller
//! needs to read large ranges from async code.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::open::{check_lines, open_reader};
use crate::records::{
    AccountRecord, AccountSnapshot, AlertRecord, AssignmentRecord, AuditEntry, AuditKind,
    ExecutionGroupRecord, ExecutionRecord, ForcedUnwindRecord, GroupState, JournalEntry, LegRecord,
    NewAlert, NewAudit, NewJournalEntry, NewRiskConfig, OrderRecord, OrderStatus, RiskConfigRecord,
    Severity, Side, StopLossRecord, StopState, StrategyRecord, StrategyState,
};

type R<T> = Result<T, StoreError>;

/// Cloneable read handle. Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct StoreReader {
    inner: Arc<Pool>,
}

struct Pool {
    cfg: StoreConfig,
    idle: Mutex<Vec<Connection>>,
}

/// Row mapping error: either SQLite's or a strict-parse failure.
enum RowErr {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for RowErr {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for RowErr {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn text(row: &Row<'_>, i: usize) -> Result<String, RowErr> {
    Ok(row.get::<_, String>(i)?)
}

fn from_json<T: serde::de::DeserializeOwned>(column: &'static str, s: String) -> Result<T, RowErr> {
    serde_json::from_str(&s).map_err(|_| RowErr::Store(StoreError::BadValue { column, value: s }))
}

impl StoreReader {
    pub(crate) fn new(cfg: StoreConfig) -> Self {
        Self {
            inner: Arc::new(Pool {
                cfg,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `f` on a pooled read-only connection.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, RowErr>) -> R<T> {
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.inner.cfg)?,
        };
        let out = f(&conn).map_err(|e| match e {
            RowErr::Sql(e) => StoreError::sqlite(&e, &self.inner.cfg.path),
            RowErr::Store(e) => e,
        });
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.inner.cfg.read_pool_size {
            idle.push(conn);
        }
        out
    }

    /// Runs a query returning many rows through `map`.
    fn many<T>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        map: impl Fn(&Row<'_>) -> Result<T, RowErr>,
    ) -> R<Vec<T>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(args)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(map(r)?);
            }
            Ok(out)
        })
    }

    /// Runs a query returning at most one row.
    fn one<T>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        map: impl Fn(&Row<'_>) -> Result<T, RowErr>,
    ) -> R<Option<T>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(args)?;
            match rows.next()? {
                Some(r) => Ok(Some(map(r)?)),
                None => Ok(None),
            }
        })
    }

    /// All accounts.
    pub fn accounts(&self) -> R<Vec<AccountRecord>> {
        self.many(
            "SELECT account_id, broker, name, currency, created_at_ms FROM accounts ORDER BY account_id",
            [],
            |r| {
                Ok(AccountRecord {
                    account_id: r.get(0)?,
                    broker: r.get(1)?,
                    name: r.get(2)?,
                    currency: r.get(3)?,
                    created_at_ms: r.get(4)?,
                })
            },
        )
    }

    fn legs(&self, c: &Connection, strategy_id: &str) -> Result<Vec<LegRecord>, RowErr> {
        let mut stmt = c.prepare_cached(
            "SELECT symbol, qty, open_price_e4 FROM legs WHERE strategy_id = ?1 ORDER BY leg_index",
        )?;
        let rows = stmt.query_map([strategy_id], |r| {
            Ok(LegRecord {
                symbol: r.get(0)?,
                qty: r.get(1)?,
                open_price_e4: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn strategies_where(&self, filter: &str, key: &str) -> R<Vec<StrategyRecord>> {
        let sql = format!(
            "SELECT strategy_id, account_id, kind, underlying, state, broken_reason, opened_at_ms,
               updated_at_ms FROM strategies WHERE {filter} = ?1 ORDER BY strategy_id"
        );
        self.with(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query([key])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                out.push(StrategyRecord {
                    legs: self.legs(c, &id)?,
                    strategy_id: id,
                    account_id: r.get(1)?,
                    kind: r.get(2)?,
                    underlying: r.get(3)?,
                    state: StrategyState::parse(&text(r, 4)?)?,
                    broken_reason: r.get(5)?,
                    opened_at_ms: r.get(6)?,
                    updated_at_ms: r.get(7)?,
                });
            }
            Ok(out)
        })
    }

    /// One strategy with its legs.
    pub fn strategy(&self, strategy_id: &str) -> R<Option<StrategyRecord>> {
        Ok(self.strategies_where("strategy_id", strategy_id)?.pop())
    }

    /// All strategies of an account.
    pub fn strategies(&self, account_id: &str) -> R<Vec<StrategyRecord>> {
        self.strategies_where("account_id", account_id)
    }

    const ORDER_COLS: &str = "SELECT order_id, broker_order_id, account_id, strategy_id, group_id,
        symbol, side, qty, limit_price_e4, status, filled_qty, created_at_ms, updated_at_ms FROM orders";

    fn order_row(r: &Row<'_>) -> Result<OrderRecord, RowErr> {
        Ok(OrderRecord {
            order_id: r.get(0)?,
            broker_order_id: r.get(1)?,
            account_id: r.get(2)?,
            strategy_id: r.get(3)?,
            group_id: r.get(4)?,
            symbol: r.get(5)?,
            side: Side::parse(&text(r, 6)?)?,
            qty: r.get(7)?,
            limit_price_e4: r.get(8)?,
            status: OrderStatus::parse(&text(r, 9)?)?,
            filled_qty: r.get(10)?,
            created_at_ms: r.get(11)?,
            updated_at_ms: r.get(12)?,
        })
    }

    /// One order by our id.
    pub fn order(&self, order_id: i64) -> R<Option<OrderRecord>> {
        self.one(
            &format!("{} WHERE order_id = ?1", Self::ORDER_COLS),
            [order_id],
            Self::order_row,
        )
    }

    /// One order by the broker's id.
    pub fn order_by_broker_id(&self, broker_order_id: &str) -> R<Option<OrderRecord>> {
        self.one(
            &format!("{} WHERE broker_order_id = ?1", Self::ORDER_COLS),
            [broker_order_id],
            Self::order_row,
        )
    }

    /// Orders of an account that are not in a terminal status, by id.
    pub fn open_orders(&self, account_id: &str) -> R<Vec<OrderRecord>> {
        self.many(
            &format!(
                "{} WHERE account_id = ?1 AND status NOT IN ('filled', 'cancelled', 'rejected')
                 ORDER BY order_id",
                Self::ORDER_COLS
            ),
            [account_id],
            Self::order_row,
        )
    }

    /// Highest order id ever used (0 if none). The next order id must be greater.
    pub fn highest_order_id(&self) -> R<i64> {
        Ok(self
            .one(
                "SELECT max(coalesce((SELECT highest FROM order_id_hwm WHERE singleton = 1), 0),
                            coalesce((SELECT max(order_id) FROM orders), 0))",
                [],
                |r| Ok(r.get::<_, i64>(0)?),
            )?
            .unwrap_or(0))
    }

    fn exec_row(r: &Row<'_>) -> Result<ExecutionRecord, RowErr> {
        Ok(ExecutionRecord {
            exec_id: r.get(0)?,
            order_id: r.get(1)?,
            broker_order_id: r.get(2)?,
            account_id: r.get(3)?,
            symbol: r.get(4)?,
            side: Side::parse(&text(r, 5)?)?,
            qty: r.get(6)?,
            price_e4: r.get(7)?,
            commission_e4: r.get(8)?,
            executed_at_ms: r.get(9)?,
        })
    }

    /// Executions of an account with `from_ms <= executed_at_ms < to_ms`, oldest first.
    pub fn executions(
        &self,
        account_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> R<Vec<ExecutionRecord>> {
        self.many(
            "SELECT exec_id, order_id, broker_order_id, account_id, symbol, side, qty, price_e4,
               commission_e4, executed_at_ms FROM executions
             WHERE account_id = ?1 AND executed_at_ms >= ?2 AND executed_at_ms < ?3
             ORDER BY executed_at_ms, exec_id",
            params![account_id, from_ms, to_ms],
            Self::exec_row,
        )
    }

    /// One execution by broker exec id.
    pub fn execution(&self, exec_id: &str) -> R<Option<ExecutionRecord>> {
        self.one(
            "SELECT exec_id, order_id, broker_order_id, account_id, symbol, side, qty, price_e4,
               commission_e4, executed_at_ms FROM executions WHERE exec_id = ?1",
            [exec_id],
            Self::exec_row,
        )
    }

    fn group_row(r: &Row<'_>) -> Result<ExecutionGroupRecord, RowErr> {
        Ok(ExecutionGroupRecord {
            group_id: r.get(0)?,
            account_id: r.get(1)?,
            strategy_id: r.get(2)?,
            state: GroupState::parse(&text(r, 3)?)?,
            reason: r.get(4)?,
            legs: from_json("execution_groups.legs", text(r, 5)?)?,
            created_at_ms: r.get(6)?,
            updated_at_ms: r.get(7)?,
        })
    }

    /// One execution group.
    pub fn execution_group(&self, group_id: &str) -> R<Option<ExecutionGroupRecord>> {
        self.one(
            "SELECT group_id, account_id, strategy_id, state, reason, legs, created_at_ms,
               updated_at_ms FROM execution_groups WHERE group_id = ?1",
            [group_id],
            Self::group_row,
        )
    }

    /// Execution groups of an account not in a terminal state (to resume after restart).
    pub fn active_execution_groups(&self, account_id: &str) -> R<Vec<ExecutionGroupRecord>> {
        self.many(
            "SELECT group_id, account_id, strategy_id, state, reason, legs, created_at_ms,
               updated_at_ms FROM execution_groups
             WHERE account_id = ?1 AND state NOT IN ('filled', 'cancelled', 'broken')
             ORDER BY created_at_ms, group_id",
            [account_id],
            Self::group_row,
        )
    }

    /// Stop-loss state of a strategy.
    pub fn stop_loss(&self, strategy_id: &str) -> R<Option<StopLossRecord>> {
        self.one(
            "SELECT strategy_id, state, trigger_e4, triggered_at_ms, updated_at_ms FROM stop_loss
             WHERE strategy_id = ?1",
            [strategy_id],
            |r| {
                Ok(StopLossRecord {
                    strategy_id: r.get(0)?,
                    state: StopState::parse(&text(r, 1)?)?,
                    trigger_e4: r.get(2)?,
                    triggered_at_ms: r.get(3)?,
                    updated_at_ms: r.get(4)?,
                })
            },
        )
    }

    /// Assignments of an account, oldest first.
    pub fn assignments(&self, account_id: &str) -> R<Vec<AssignmentRecord>> {
        self.many(
            "SELECT assignment_id, account_id, symbol, qty, assigned_at_ms FROM assignments
             WHERE account_id = ?1 ORDER BY assigned_at_ms, assignment_id",
            [account_id],
            |r| {
                Ok(AssignmentRecord {
                    assignment_id: r.get(0)?,
                    account_id: r.get(1)?,
                    symbol: r.get(2)?,
                    qty: r.get(3)?,
                    assigned_at_ms: r.get(4)?,
                })
            },
        )
    }

    /// Most recent alerts first, at most `limit`; only unacknowledged ones if asked.
    pub fn alerts(&self, unacknowledged_only: bool, limit: u32) -> R<Vec<AlertRecord>> {
        self.many(
            "SELECT id, account_id, severity, kind, text, created_at_ms, acknowledged_at_ms
             FROM alerts WHERE (?1 = 0 OR acknowledged_at_ms IS NULL) ORDER BY id DESC LIMIT ?2",
            params![unacknowledged_only, limit],
            |r| {
                Ok(AlertRecord {
                    id: r.get(0)?,
                    alert: NewAlert {
                        account_id: r.get(1)?,
                        severity: Severity::parse(&text(r, 2)?)?,
                        kind: r.get(3)?,
                        text: r.get(4)?,
                        created_at_ms: r.get(5)?,
                    },
                    acknowledged_at_ms: r.get(6)?,
                })
            },
        )
    }

    /// Forced-unwind flag of an account (`None` = never set).
    pub fn forced_unwind(&self, account_id: &str) -> R<Option<ForcedUnwindRecord>> {
        self.one(
            "SELECT account_id, active, reason, updated_at_ms FROM forced_unwind WHERE account_id = ?1",
            [account_id],
            |r| {
                Ok(ForcedUnwindRecord {
                    account_id: r.get(0)?,
                    active: r.get(1)?,
                    reason: r.get(2)?,
                    updated_at_ms: r.get(3)?,
                })
            },
        )
    }

    fn risk_row(r: &Row<'_>) -> Result<RiskConfigRecord, RowErr> {
        Ok(RiskConfigRecord {
            version: r.get(0)?,
            config: NewRiskConfig {
                text: r.get(1)?,
                hash: r.get(2)?,
                applied_at_ms: r.get(3)?,
            },
        })
    }

    /// The risk config in force (latest version).
    pub fn latest_risk_config(&self) -> R<Option<RiskConfigRecord>> {
        self.one(
            "SELECT version, text, hash, applied_at_ms FROM risk_config_versions
             ORDER BY version DESC LIMIT 1",
            [],
            Self::risk_row,
        )
    }

    /// All risk config versions, newest first.
    pub fn risk_config_history(&self, limit: u32) -> R<Vec<RiskConfigRecord>> {
        self.many(
            "SELECT version, text, hash, applied_at_ms FROM risk_config_versions
             ORDER BY version DESC LIMIT ?1",
            [limit],
            Self::risk_row,
        )
    }

    /// Snapshots of an account with `from_ms <= ts_ms < to_ms`, oldest first.
    pub fn snapshots(&self, account_id: &str, from_ms: i64, to_ms: i64) -> R<Vec<AccountSnapshot>> {
        self.many(
            "SELECT account_id, ts_ms, net_liq_e4, cash_e4, init_margin_e4, maint_margin_e4,
               buying_power_e4 FROM account_snapshots
             WHERE account_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms",
            params![account_id, from_ms, to_ms],
            |r| {
                Ok(AccountSnapshot {
                    account_id: r.get(0)?,
                    ts_ms: r.get(1)?,
                    net_liq_e4: r.get(2)?,
                    cash_e4: r.get(3)?,
                    init_margin_e4: r.get(4)?,
                    maint_margin_e4: r.get(5)?,
                    buying_power_e4: r.get(6)?,
                })
            },
        )
    }

    fn audit_row(r: &Row<'_>) -> Result<AuditEntry, RowErr> {
        Ok(AuditEntry {
            id: r.get(0)?,
            entry: NewAudit {
                ts_ms: r.get(1)?,
                kind: AuditKind::parse(&text(r, 2)?)?,
                subject: r.get(3)?,
                reason: r.get(4)?,
                details: from_json("audit_log.details", text(r, 5)?)?,
            },
        })
    }

    /// Audit entries with id > `after_id`, oldest first, at most `limit` (for paging/tailing).
    pub fn audit_after(&self, after_id: i64, limit: u32) -> R<Vec<AuditEntry>> {
        self.many(
            "SELECT id, ts_ms, kind, subject, reason, details FROM audit_log
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![after_id, limit],
            Self::audit_row,
        )
    }

    /// The newest `limit` audit entries, newest first (the audit screen).
    pub fn audit_latest(&self, limit: u32) -> R<Vec<AuditEntry>> {
        self.many(
            "SELECT id, ts_ms, kind, subject, reason, details FROM audit_log
             ORDER BY id DESC LIMIT ?1",
            params![limit],
            Self::audit_row,
        )
    }

    /// Audit entries with `from_ms <= ts_ms < to_ms`, oldest first, at most `limit`.
    pub fn audit_range(&self, from_ms: i64, to_ms: i64, limit: u32) -> R<Vec<AuditEntry>> {
        self.many(
            "SELECT id, ts_ms, kind, subject, reason, details FROM audit_log
             WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY ts_ms, id LIMIT ?3",
            params![from_ms, to_ms, limit],
            Self::audit_row,
        )
    }

    /// Number of audit entries.
    pub fn audit_count(&self) -> R<i64> {
        Ok(self
            .one("SELECT count(*) FROM audit_log", [], |r| {
                Ok(r.get::<_, i64>(0)?)
            })?
            .unwrap_or(0))
    }

    /// Engine journal records with `seq > after_seq`, in commit order, at most `limit`
    /// (page through with the last `seq` returned).
    pub fn journal_after(&self, after_seq: i64, limit: u32) -> R<Vec<JournalEntry>> {
        self.many(
            "SELECT seq, ts_ms, kind, record FROM engine_journal
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after_seq, limit],
            |r| {
                Ok(JournalEntry {
                    seq: r.get(0)?,
                    entry: NewJournalEntry {
                        ts_ms: r.get(1)?,
                        kind: r.get(2)?,
                        record: from_json("engine_journal.record", text(r, 3)?)?,
                    },
                })
            },
        )
    }

    /// Number of engine journal records.
    pub fn journal_count(&self) -> R<i64> {
        Ok(self
            .one("SELECT count(*) FROM engine_journal", [], |r| {
                Ok(r.get::<_, i64>(0)?)
            })?
            .unwrap_or(0))
    }

    /// `PRAGMA integrity_check` lines (`["ok"]` when healthy).
    pub fn integrity_check(&self) -> R<Vec<String>> {
        let path = self.inner.cfg.path.clone();
        self.with(|c| check_lines(c, "PRAGMA integrity_check", &path).map_err(RowErr::Store))
    }

    /// Schema version of the file as seen by a reader.
    pub fn schema_version(&self) -> R<i64> {
        Ok(self
            .one("PRAGMA user_version", [], |r| Ok(r.get::<_, i64>(0)?))?
            .unwrap_or(0))
    }

    /// True if an execution with this id is stored.
    pub fn has_execution(&self, exec_id: &str) -> R<bool> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM executions WHERE exec_id = ?1")?
                    .query_row([exec_id], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
    }
}
