//! The orders and executions blotter across IPC: the coordinator's order groups (each leg's
//! order, fills, partial fills, cancels, time-outs and rollback legs), the managed stops, and
//! the last day's executions from the database (the broker's fills as journaled).

use crate::error::IpcError;
use crate::flatten::time;
use crate::state::AppState;
use crate::view::label;
use serde::Serialize;
use specta::Type;
use tradeguard_engine::group::{Group, GroupLeg, GroupPhase, LegState};
use tradeguard_engine::intent::Purpose;
use tradeguard_engine::stop::{StopLoss, StopState};
use tradeguard_model::{Price, Side, Timestamp};

/// One leg of a group: its order and how much of it filled.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BlotterLeg {
    pub label: String,
    /// "buy" | "sell".
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    /// Filled so far (the larger of executions and the broker's order status).
    #[specta(type = specta_typescript::Number)]
    pub filled: i64,
    /// "pending" | "sent" | "partially filled" | "filled" | "cancelled" | "rejected" | "timed out".
    pub state: String,
    /// How the leg's order is priced: "MKT", "LMT 1.25", "STP 4.00", "STP LMT 4.00/3.98", "TRAIL".
    pub order: String,
    pub order_id: Option<String>,
    /// Added by the rollback (unwinds a filled leg).
    pub rollback: bool,
    pub reason: Option<String>,
}

/// One order group (a multi-leg request).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BlotterGroup {
    pub id: String,
    /// "open" | "close" | "flatten" | "emergency" | "hedge" | "stop loss".
    pub purpose: String,
    pub account: String,
    pub strategy_id: Option<String>,
    /// "legging (tier 2/3)", "combo", "rolling back", "completed", "rolled back", "failed",
    /// "interrupted".
    pub phase: String,
    /// Still working (not completed, rolled back, failed or interrupted).
    pub live: bool,
    pub created: String,
    pub updated: String,
    pub reason: Option<String>,
    pub legs: Vec<BlotterLeg>,
}

/// A managed stop-loss.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BlotterStop {
    pub id: String,
    pub account: String,
    pub label: String,
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub stop: String,
    pub limit: String,
    /// "working" | "cancel pending" | "market sent" | "done" | "failed" | "cancelled".
    pub state: String,
    #[specta(type = specta_typescript::Number)]
    pub filled: i64,
}

/// One execution (fill) as the broker reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct BlotterExecution {
    pub exec_id: String,
    pub time: String,
    pub account: String,
    /// Instrument id.
    pub instrument: String,
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub price: String,
    pub commission: String,
    pub order_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Blotter {
    /// Newest first; live groups before settled ones.
    pub groups: Vec<BlotterGroup>,
    pub stops: Vec<BlotterStop>,
    /// Newest first, at most [`MAX_EXECUTIONS`].
    pub executions: Vec<BlotterExecution>,
    /// Executions were not readable (the groups still show).
    pub executions_error: Option<IpcError>,
}

/// Executions listed at most.
pub const MAX_EXECUTIONS: usize = 500;
/// How far back executions are listed.
const EXECUTIONS_WINDOW_MS: i64 = 24 * 3600 * 1000;

fn side(s: Side) -> String {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
    .to_owned()
}

fn purpose(p: Purpose) -> &'static str {
    match p {
        Purpose::Open => "open",
        Purpose::Close => "close",
        Purpose::Flatten => "flatten",
        Purpose::Emergency => "emergency",
        Purpose::Hedge => "hedge",
        Purpose::StopLoss => "stop loss",
    }
}

fn leg_state(s: LegState) -> &'static str {
    match s {
        LegState::Pending => "pending",
        LegState::Sent => "sent",
        LegState::PartiallyFilled => "partially filled",
        LegState::Filled => "filled",
        LegState::Cancelled => "cancelled",
        LegState::Rejected => "rejected",
        LegState::TimedOut => "timed out",
    }
}

fn phase(g: &Group) -> (String, bool) {
    match g.phase {
        GroupPhase::Legging { tier } => (
            format!("legging (tier {}/{})", tier + 1, g.tiers.len().max(1)),
            true,
        ),
        GroupPhase::Combo => ("combo".to_owned(), true),
        GroupPhase::RollingBack { .. } => ("rolling back".to_owned(), true),
        GroupPhase::Completed => ("completed".to_owned(), false),
        GroupPhase::RolledBack => ("rolled back".to_owned(), false),
        GroupPhase::Failed => ("failed".to_owned(), false),
        GroupPhase::Interrupted => ("interrupted".to_owned(), false),
    }
}

fn order_type(t: &tradeguard_model::OrderType) -> String {
    use tradeguard_model::OrderType as T;
    match t {
        T::Market => "MKT".to_owned(),
        T::Limit { limit } => format!("LMT {limit}"),
        T::Stop { stop } => format!("STP {stop}"),
        T::StopLimit { stop, limit } => format!("STP LMT {stop}/{limit}"),
        T::TrailingStop { .. } => "TRAIL".to_owned(),
    }
}

fn leg(l: &GroupLeg) -> BlotterLeg {
    BlotterLeg {
        label: label(&l.intent.instrument),
        side: side(l.intent.side),
        qty: l.intent.qty,
        filled: l.exec_filled.max(l.status_filled),
        state: leg_state(l.state).to_owned(),
        order: order_type(&l.intent.order_type),
        order_id: l.order_id.map(|o| o.0.to_string()),
        rollback: l.rollback,
        reason: l.reason.clone(),
    }
}

pub fn group(g: &Group) -> BlotterGroup {
    let (phase, live) = phase(g);
    BlotterGroup {
        id: g.id.0.to_string(),
        purpose: purpose(g.intent.purpose).to_owned(),
        account: g.intent.account.as_str().to_owned(),
        strategy_id: g.intent.strategy.map(|s| s.0.to_string()),
        phase,
        live,
        created: time(g.created),
        updated: time(g.updated),
        reason: g.reason.clone(),
        legs: g.legs.iter().map(leg).collect(),
    }
}

pub fn stop(s: &StopLoss) -> BlotterStop {
    BlotterStop {
        id: s.id.to_string(),
        account: s.spec.account.as_str().to_owned(),
        label: label(&s.spec.instrument),
        side: side(s.spec.side),
        qty: s.spec.qty,
        stop: s.spec.stop.to_string(),
        limit: s.limit.to_string(),
        state: match s.state {
            StopState::Working => "working",
            StopState::CancelPending => "cancel pending",
            StopState::MarketSent => "market sent",
            StopState::Done => "done",
            StopState::Failed => "failed",
            StopState::Cancelled => "cancelled",
        }
        .to_owned(),
        filled: s.limit_filled.saturating_add(s.market_filled),
    }
}

fn execution(e: &tradeguard_store::ExecutionRecord) -> BlotterExecution {
    let e4 = |v: i64| Price::from_raw(v).to_string();
    BlotterExecution {
        exec_id: e.exec_id.clone(),
        time: chrono::DateTime::from_timestamp_millis(e.executed_at_ms)
            .map_or_else(|| e.executed_at_ms.to_string(), |t| t.to_rfc3339()),
        account: e.account_id.clone(),
        instrument: e.symbol.clone(),
        side: e.side.as_str().to_owned(),
        qty: e.qty,
        price: e4(e.price_e4),
        commission: e4(e.commission_e4),
        order_id: e.order_id.map(|o| o.to_string()),
    }
}

/// Live groups first, then newest first.
pub fn order_groups(groups: &[Group]) -> Vec<BlotterGroup> {
    let mut rows: Vec<(Timestamp, BlotterGroup)> =
        groups.iter().map(|g| (g.created, group(g))).collect();
    rows.sort_by(|(ta, a), (tb, b)| b.live.cmp(&a.live).then(tb.cmp(ta)));
    rows.into_iter().map(|(_, g)| g).collect()
}

/// The blotter: groups and stops from the coordinator, executions from the database.
#[tauri::command]
#[specta::specta]
pub async fn blotter(state: tauri::State<'_, AppState>) -> Result<Blotter, IpcError> {
    let venue = state.venue()?;
    let snap = venue.guard().coordinator().snapshot().await.map_err(|e| {
        IpcError::new(
            crate::error::ErrorCode::Unavailable,
            e.code(),
            e.to_string(),
        )
    })?;
    let groups = order_groups(&snap.groups);
    let stops = snap.stops.iter().rev().map(stop).collect();
    let now_ms = venue.now().nanos() / 1_000_000;
    let accounts: Vec<String> = venue.guard().read_live_book(|b| {
        b.accounts()
            .map(|a| a.account.as_str().to_owned())
            .collect()
    });
    let store = venue.store().clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for a in &accounts {
            all.extend(
                store
                    .reader()
                    .executions(a, now_ms - EXECUTIONS_WINDOW_MS, now_ms + 1)?,
            );
        }
        Ok::<_, tradeguard_store::StoreError>(all)
    })
    .await;
    let (executions, executions_error) = match read {
        Ok(Ok(mut all)) => {
            all.sort_by(|a, b| {
                b.executed_at_ms
                    .cmp(&a.executed_at_ms)
                    .then_with(|| b.exec_id.cmp(&a.exec_id))
            });
            all.truncate(MAX_EXECUTIONS);
            (all.iter().map(execution).collect(), None)
        }
        Ok(Err(e)) => (Vec::new(), Some(IpcError::from(e))),
        Err(e) => (
            Vec::new(),
            Some(IpcError::new(
                crate::error::ErrorCode::Internal,
                "blotter.reader",
                e.to_string(),
            )),
        ),
    };
    Ok(Blotter {
        groups,
        stops,
        executions,
        executions_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_engine::Book;
    use tradeguard_engine::intent::OrderIntent;
    use tradeguard_model::{AccountId, GroupId, OrderId, OrderType, StrategyId, stubs};

    fn close(id: u64, created_secs: i64) -> Group {
        let intent = OrderIntent::new(Purpose::Close, AccountId::new("DU1"))
            .for_strategy(StrategyId(9))
            .leg(stubs::put(440), Side::Buy, 2, OrderType::Market)
            .leg(stubs::put(435), Side::Sell, 2, OrderType::Market);
        Group::legged(
            GroupId(id),
            intent,
            &Book::new(),
            Timestamp::from_secs(created_secs),
        )
    }

    #[test]
    fn groups_show_partial_fills_and_live_ones_come_first() {
        let mut working = close(1, 100);
        working.legs[0].order_id = Some(OrderId(77));
        working.legs[0].state = LegState::PartiallyFilled;
        working.legs[0].exec_filled = 1;
        working.legs[0].status_filled = 0;
        let mut done = close(2, 200);
        done.phase = GroupPhase::Completed;
        let mut rolled = close(3, 300);
        rolled.phase = GroupPhase::RolledBack;
        rolled.reason = Some("short leg rejected".into());
        let rows = order_groups(&[working, done, rolled]);
        let ids: Vec<&str> = rows.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "2"], "live first, then newest first");
        let g = &rows[0];
        assert!(g.live);
        assert_eq!(g.purpose, "close");
        assert_eq!(g.strategy_id.as_deref(), Some("9"));
        assert!(g.phase.starts_with("legging (tier 1/"), "{}", g.phase);
        let l = &g.legs[0];
        assert_eq!((l.side.as_str(), l.qty, l.filled), ("buy", 2, 1));
        assert_eq!(l.state, "partially filled");
        assert_eq!(l.order_id.as_deref(), Some("77"));
        assert_eq!(rows[1].phase, "rolled back");
        assert_eq!(rows[1].reason.as_deref(), Some("short leg rejected"));
        assert!(!rows[1].live && !rows[2].live);
    }
}
