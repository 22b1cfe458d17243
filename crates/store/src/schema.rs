//! Owns the database schema: the versioned, APPEND-ONLY migration list.
//!
//! Rules: never edit or reorder a shipped migration; add a new one at the end. The schema
//! version is SQLite's `user_version` (managed by `rusqlite_migration`); the file is marked
//! as ours with `application_id` = [`APPLICATION_ID`] in migration 1.

use rusqlite_migration::{M, Migrations};

/// `PRAGMA application_id` of Tradeguard databases ("TGRD").
pub const APPLICATION_ID: i32 = 0x5447_5244;

const M1_CORE: &str = r"
PRAGMA application_id = 1413960260;

CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY NOT NULL,
    broker        TEXT NOT NULL,
    name          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE strategies (
    strategy_id   TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts(account_id),
    kind          TEXT NOT NULL,
    underlying    TEXT NOT NULL,
    state         TEXT NOT NULL,
    broken_reason TEXT,
    opened_at_ms  INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX strategies_by_account ON strategies(account_id);

CREATE TABLE legs (
    strategy_id   TEXT NOT NULL REFERENCES strategies(strategy_id) ON DELETE CASCADE,
    leg_index     INTEGER NOT NULL,
    symbol        TEXT NOT NULL,
    qty           INTEGER NOT NULL,
    open_price_e4 INTEGER,
    PRIMARY KEY (strategy_id, leg_index)
) STRICT;

CREATE TABLE orders (
    order_id        INTEGER PRIMARY KEY NOT NULL,
    broker_order_id TEXT UNIQUE,
    account_id      TEXT NOT NULL REFERENCES accounts(account_id),
    strategy_id     TEXT,
    group_id        TEXT,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty             INTEGER NOT NULL CHECK (qty > 0),
    limit_price_e4  INTEGER,
    status          TEXT NOT NULL,
    filled_qty      INTEGER NOT NULL CHECK (filled_qty >= 0 AND filled_qty <= qty),
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_by_account_status ON orders(account_id, status);

-- Highest order id ever used: a single row that only ever grows.
CREATE TABLE order_id_hwm (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    highest   INTEGER NOT NULL CHECK (highest >= 0)
) STRICT;
CREATE TRIGGER order_id_hwm_monotonic BEFORE UPDATE ON order_id_hwm
WHEN NEW.highest < OLD.highest
BEGIN SELECT RAISE(ABORT, 'highest_order_id never decreases'); END;
CREATE TRIGGER order_id_hwm_no_delete BEFORE DELETE ON order_id_hwm
BEGIN SELECT RAISE(ABORT, 'highest_order_id cannot be deleted'); END;

CREATE TABLE executions (
    exec_id         TEXT PRIMARY KEY NOT NULL,
    order_id        INTEGER,
    broker_order_id TEXT,
    account_id      TEXT NOT NULL REFERENCES accounts(account_id),
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty             INTEGER NOT NULL CHECK (qty > 0),
    price_e4        INTEGER NOT NULL,
    commission_e4   INTEGER NOT NULL,
    executed_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX executions_by_account_time ON executions(account_id, executed_at_ms);
CREATE INDEX executions_by_order ON executions(order_id);

-- Append-only decision log. Plain rowid ids stay increasing because rows are never deleted
-- (AUTOINCREMENT would add a sqlite_sequence write to every insert).
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    ts_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason  TEXT NOT NULL,
    details TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
";

const M2_EXECUTION_STATE: &str = r"
CREATE TABLE execution_groups (
    group_id      TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts(account_id),
    strategy_id   TEXT,
    state         TEXT NOT NULL,
    reason        TEXT,
    legs          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX execution_groups_by_account ON execution_groups(account_id, state);

CREATE TABLE stop_loss (
    strategy_id     TEXT PRIMARY KEY NOT NULL REFERENCES strategies(strategy_id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    trigger_e4      INTEGER NOT NULL,
    triggered_at_ms INTEGER,
    updated_at_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE assignments (
    assignment_id  TEXT PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(account_id),
    symbol         TEXT NOT NULL,
    qty            INTEGER NOT NULL,
    assigned_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE alerts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         TEXT REFERENCES accounts(account_id),
    severity           TEXT NOT NULL,
    kind               TEXT NOT NULL,
    text               TEXT NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    acknowledged_at_ms INTEGER
) STRICT;
CREATE INDEX alerts_unacknowledged ON alerts(id) WHERE acknowledged_at_ms IS NULL;

CREATE TABLE forced_unwind (
    account_id    TEXT PRIMARY KEY NOT NULL REFERENCES accounts(account_id),
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    reason        TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
";

const M3_HISTORY: &str = r"
CREATE TABLE risk_config_versions (
    version       INTEGER PRIMARY KEY AUTOINCREMENT,
    text          TEXT NOT NULL,
    hash          TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE account_snapshots (
    account_id      TEXT NOT NULL REFERENCES accounts(account_id),
    ts_ms           INTEGER NOT NULL,
    net_liq_e4      INTEGER NOT NULL,
    cash_e4         INTEGER NOT NULL,
    init_margin_e4  INTEGER NOT NULL,
    maint_margin_e4 INTEGER NOT NULL,
    buying_power_e4 INTEGER NOT NULL,
    PRIMARY KEY (account_id, ts_ms)
) STRICT, WITHOUT ROWID;

CREATE INDEX audit_log_by_time ON audit_log(ts_ms);
";

const M4_ENGINE_JOURNAL: &str = r"
-- The execution engine's write-ahead journal: every record as JSON, in commit order.
-- Append-only like the audit log; `seq` is a plain rowid (never reused: rows are never deleted).
CREATE TABLE engine_journal (
    seq    INTEGER PRIMARY KEY,
    ts_ms  INTEGER NOT NULL,
    kind   TEXT NOT NULL CHECK (length(kind) > 0),
    record TEXT NOT NULL CHECK (json_valid(record))
) STRICT;
CREATE TRIGGER engine_journal_no_update BEFORE UPDATE ON engine_journal
BEGIN SELECT RAISE(ABORT, 'engine_journal is append-only'); END;
CREATE TRIGGER engine_journal_no_delete BEFORE DELETE ON engine_journal
BEGIN SELECT RAISE(ABORT, 'engine_journal is append-only'); END;
";

const MIGRATION_LIST: &[M<'static>] = &[
    M::up(M1_CORE).comment("core: accounts, strategies, legs, orders, hwm, executions, audit"),
    M::up(M2_EXECUTION_STATE)
        .comment("execution groups, stop loss, assignments, alerts, forced unwind"),
    M::up(M3_HISTORY).comment("risk config versions, account snapshots, audit time index"),
    M::up(M4_ENGINE_JOURNAL).comment("engine write-ahead journal (append-only JSON records)"),
];

/// Schema version after all migrations.
pub const LATEST_VERSION: i64 = MIGRATION_LIST.len() as i64;

/// The migration list (append-only).
pub fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATION_LIST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn application_id_literal_matches_constant() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut c).unwrap();
        let id: i32 = c
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST_VERSION);
    }
}
