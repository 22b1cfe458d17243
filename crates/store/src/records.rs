//! Owns the store's own record types (plain column types) and the enums stored as TEXT.
//!
//! Money and prices are `i64` fixed-point with 4 implied decimals (`_e4` suffix:
//! `12_3400` = 12.34). Times are unix milliseconds (`_ms`). Quantities are signed `i64`.
//! Enums are written as lowercase snake_case TEXT and parsed back strictly: unknown text is
//! a [`StoreError::BadValue`], never silently mapped.

use std::fmt;

use rusqlite::ToSql;
use rusqlite::types::ToSqlOutput;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $col:literal { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$var),+];

            /// Stored TEXT form.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$var => $s),+ }
            }

            /// Strict parse of the stored TEXT form.
            pub fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok(Self::$var),)+
                    other => Err(StoreError::BadValue { column: $col, value: other.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
    };
}

text_enum!(
    /// Lifecycle of a strategy (a set of legs managed together).
    StrategyState, "strategies.state" {
        /// Being opened.
        Opening => "opening",
        /// All legs open.
        Open => "open",
        /// Being closed.
        Closing => "closing",
        /// Fully closed.
        Closed => "closed",
        /// Legs no longer match the plan (partial fill, assignment...); see `broken_reason`.
        Broken => "broken",
    }
);

text_enum!(
    /// Order side.
    Side, "side" {
        /// Buy.
        Buy => "buy",
        /// Sell.
        Sell => "sell",
    }
);

text_enum!(
    /// Order status as last known.
    OrderStatus, "orders.status" {
        /// Created locally, not yet acknowledged by the broker.
        PendingSubmit => "pending_submit",
        /// Working at the broker.
        Submitted => "submitted",
        /// Partly filled, still working.
        PartiallyFilled => "partially_filled",
        /// Cancel requested.
        PendingCancel => "pending_cancel",
        /// Completely filled (terminal).
        Filled => "filled",
        /// Cancelled (terminal).
        Cancelled => "cancelled",
        /// Rejected (terminal).
        Rejected => "rejected",
    }
);

impl OrderStatus {
    /// True for statuses an order never leaves.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Rejected)
    }
}

text_enum!(
    /// State of an execution group (the orders that open/close one multi-leg position).
    GroupState, "execution_groups.state" {
        /// Planned, nothing sent.
        Planned => "planned",
        /// Orders working.
        Working => "working",
        /// Some legs filled.
        PartiallyFilled => "partially_filled",
        /// All legs filled (terminal).
        Filled => "filled",
        /// Undoing filled legs after a failure.
        Unwinding => "unwinding",
        /// Cancelled with nothing filled (terminal).
        Cancelled => "cancelled",
        /// Ended with unmatched legs (terminal, needs attention).
        Broken => "broken",
    }
);

impl GroupState {
    /// True for states a group never leaves.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Broken)
    }
}

text_enum!(
    /// Stop-loss state of a strategy.
    StopState, "stop_loss.state" {
        /// Watching.
        Armed => "armed",
        /// Fired; closing in progress or done.
        Triggered => "triggered",
        /// Switched off.
        Disarmed => "disarmed",
    }
);

text_enum!(
    /// Alert severity.
    Severity, "alerts.severity" {
        /// Informational.
        Info => "info",
        /// Needs a look.
        Warning => "warning",
        /// Needs action now.
        Critical => "critical",
    }
);

text_enum!(
    /// What kind of decision an audit entry records.
    AuditKind, "audit_log.kind" {
        /// A risk rule fired.
        RuleFired => "rule_fired",
        /// An order was sent.
        OrderSent => "order_sent",
        /// The broker rejected an order.
        OrderRejected => "order_rejected",
        /// A cancel was requested.
        CancelSent => "cancel_sent",
        /// The broker confirmed a cancel.
        CancelConfirmed => "cancel_confirmed",
        /// A hedge was placed.
        HedgePlaced => "hedge_placed",
        /// Reconciliation repaired local state from the broker's.
        ReconciliationRepair => "reconciliation_repair",
        /// A stop-loss fired.
        StopTriggered => "stop_triggered",
        /// Forced unwind switched on or off.
        ForcedUnwind => "forced_unwind",
        /// A risk config version was applied.
        ConfigApplied => "config_applied",
        /// A strategy was marked broken.
        StrategyBroken => "strategy_broken",
        /// Guard started.
        GuardStarted => "guard_started",
        /// Guard stopped.
        GuardStopped => "guard_stopped",
        /// Any other engine decision (group finished, trading state changed...); its own
        /// code and text are in `reason` and `details`.
        Decision => "decision",
    }
);

/// A broker account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Broker account id (primary key).
    pub account_id: String,
    /// Broker name.
    pub broker: String,
    /// Display name.
    pub name: String,
    /// Base currency (ISO code).
    pub currency: String,
    /// First seen.
    pub created_at_ms: i64,
}

/// One leg of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegRecord {
    /// OCC option symbol or stock ticker.
    pub symbol: String,
    /// Signed quantity (negative = short).
    pub qty: i64,
    /// Average open price (e4), if known.
    pub open_price_e4: Option<i64>,
}

/// A strategy with its legs (legs are replaced as a whole on upsert).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyRecord {
    /// Strategy id (primary key).
    pub strategy_id: String,
    /// Owning account.
    pub account_id: String,
    /// Kind, e.g. "iron_condor".
    pub kind: String,
    /// Underlying symbol.
    pub underlying: String,
    /// State.
    pub state: StrategyState,
    /// Why it is broken (set with [`StrategyState::Broken`]).
    pub broken_reason: Option<String>,
    /// When the strategy was first written; a later upsert keeps it.
    pub opened_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// Legs in order.
    pub legs: Vec<LegRecord>,
}

/// An order we sent (or adopted during reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Our order id (primary key, from the monotonic high-water mark).
    pub order_id: i64,
    /// Broker's order id once known (unique).
    pub broker_order_id: Option<String>,
    /// Account.
    pub account_id: String,
    /// Strategy it belongs to.
    pub strategy_id: Option<String>,
    /// Execution group it belongs to.
    pub group_id: Option<String>,
    /// Instrument.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Quantity (> 0).
    pub qty: i64,
    /// Limit price (e4); `None` = market.
    pub limit_price_e4: Option<i64>,
    /// Status.
    pub status: OrderStatus,
    /// Filled so far (0..=qty).
    pub filled_qty: i64,
    /// Created.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// A fill reported by the broker. `exec_id` is unique: a repeat is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Broker execution id (primary key).
    pub exec_id: String,
    /// Our order id when matched.
    pub order_id: Option<i64>,
    /// Broker order id as reported.
    pub broker_order_id: Option<String>,
    /// Account.
    pub account_id: String,
    /// Instrument.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Quantity (> 0).
    pub qty: i64,
    /// Price (e4).
    pub price_e4: i64,
    /// Commission (e4).
    pub commission_e4: i64,
    /// Execution time.
    pub executed_at_ms: i64,
}

/// One leg inside an execution group (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLegRecord {
    /// Instrument.
    pub symbol: String,
    /// Signed target quantity.
    pub qty: i64,
    /// Order working this leg.
    pub order_id: Option<i64>,
    /// Signed filled quantity.
    pub filled_qty: i64,
}

/// A group of orders executed together, with its state machine state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionGroupRecord {
    /// Group id (primary key).
    pub group_id: String,
    /// Account.
    pub account_id: String,
    /// Strategy being opened/closed.
    pub strategy_id: Option<String>,
    /// State.
    pub state: GroupState,
    /// Why it reached its state (for Broken/Unwinding).
    pub reason: Option<String>,
    /// Legs.
    pub legs: Vec<GroupLegRecord>,
    /// Created.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// Stop-loss state of one strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopLossRecord {
    /// Strategy (primary key).
    pub strategy_id: String,
    /// State.
    pub state: StopState,
    /// Loss level that triggers (e4, account currency).
    pub trigger_e4: i64,
    /// When it fired.
    pub triggered_at_ms: Option<i64>,
    /// Last change.
    pub updated_at_ms: i64,
}

/// An option assignment reported by the broker (`assignment_id` unique).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// Broker id of the assignment event.
    pub assignment_id: String,
    /// Account.
    pub account_id: String,
    /// Option assigned.
    pub symbol: String,
    /// Signed option quantity assigned.
    pub qty: i64,
    /// When.
    pub assigned_at_ms: i64,
}

/// A new alert to raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAlert {
    /// Account concerned, if any.
    pub account_id: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// Machine kind, e.g. "margin.cushion_low".
    pub kind: String,
    /// Text for the trader.
    pub text: String,
    /// When raised.
    pub created_at_ms: i64,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Row id.
    pub id: i64,
    /// The alert.
    pub alert: NewAlert,
    /// When the trader acknowledged it.
    pub acknowledged_at_ms: Option<i64>,
}

/// Forced-unwind flag of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForcedUnwindRecord {
    /// Account (primary key).
    pub account_id: String,
    /// Whether forced unwind is on.
    pub active: bool,
    /// Why it was switched.
    pub reason: String,
    /// When.
    pub updated_at_ms: i64,
}

/// A risk config to apply (new version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRiskConfig {
    /// Config text (TOML).
    pub text: String,
    /// Hash of `text` computed by the caller (e.g. hex SHA-256).
    pub hash: String,
    /// When applied.
    pub applied_at_ms: i64,
}

/// A stored risk config version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskConfigRecord {
    /// Version number (1, 2, ...).
    pub version: i64,
    /// The config.
    pub config: NewRiskConfig,
}

/// Account figures at one moment (for margin charts). Key: (account, ts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// Account.
    pub account_id: String,
    /// Time.
    pub ts_ms: i64,
    /// Net liquidation value (e4).
    pub net_liq_e4: i64,
    /// Cash (e4).
    pub cash_e4: i64,
    /// Initial margin (e4).
    pub init_margin_e4: i64,
    /// Maintenance margin (e4).
    pub maint_margin_e4: i64,
    /// Buying power (e4).
    pub buying_power_e4: i64,
}

/// A new audit entry: one decision with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    /// When decided.
    pub ts_ms: i64,
    /// Kind of decision.
    pub kind: AuditKind,
    /// What it is about, e.g. "account:U1/strategy:S7".
    pub subject: String,
    /// Why (rule name and figures, broker message...).
    pub reason: String,
    /// Structured details.
    pub details: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id (increasing).
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
}

/// A new engine journal record: one write-ahead entry of the execution engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJournalEntry {
    /// When appended (engine clock).
    pub ts_ms: i64,
    /// Record kind (the engine's serde tag, e.g. `"group"`), for queries without parsing JSON.
    pub kind: String,
    /// The whole record as JSON (stored as text).
    pub record: serde_json::Value,
}

/// A stored engine journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Sequence number: increasing in commit order, never reused.
    pub seq: i64,
    /// The record.
    pub entry: NewJournalEntry,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Copy + PartialEq + fmt::Debug>(
        all: &[T],
        s: fn(T) -> &'static str,
        p: fn(&str) -> Result<T, StoreError>,
    ) {
        for v in all {
            assert_eq!(p(s(*v)).unwrap(), *v);
        }
    }

    #[test]
    fn enums_roundtrip_through_text() {
        roundtrip(
            StrategyState::ALL,
            StrategyState::as_str,
            StrategyState::parse,
        );
        roundtrip(Side::ALL, Side::as_str, Side::parse);
        roundtrip(OrderStatus::ALL, OrderStatus::as_str, OrderStatus::parse);
        roundtrip(GroupState::ALL, GroupState::as_str, GroupState::parse);
        roundtrip(StopState::ALL, StopState::as_str, StopState::parse);
        roundtrip(Severity::ALL, Severity::as_str, Severity::parse);
        roundtrip(AuditKind::ALL, AuditKind::as_str, AuditKind::parse);
    }

    #[test]
    fn unknown_text_is_a_typed_error() {
        let e = OrderStatus::parse("Filled").unwrap_err();
        assert_eq!(e.code(), "store.bad_value");
        assert_eq!(
            e,
            StoreError::BadValue {
                column: "orders.status",
                value: "Filled".into()
            }
        );
        assert!(Severity::parse("").is_err());
    }

    #[test]
    fn serde_form_matches_stored_form() {
        for k in AuditKind::ALL {
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }
}
