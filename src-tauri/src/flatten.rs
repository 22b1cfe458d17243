//! Strategies and the two-step flatten across IPC: the UI asks for a preview (the exact orders,
//! estimated cash, warnings), shows it in a confirmation dialog, and the engine executes only a
//! valid, unexpired, unused preview id. Views here turn the engine's types into what the UI
//! shows: labels, decimal strings for money, RFC 3339 times, ids as strings (64-bit strategy
//! ids do not fit a JavaScript number).

use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;
use crate::view::label;
use serde::{Deserialize, Serialize};
use specta::Type;
use tradeguard_engine::enforce::EnforceError;
use tradeguard_engine::enforce::flatten::{
    ExcludedReason, FlattenAction, FlattenOrder, FlattenPreview, FlattenProgress, FlattenScope,
    FlattenStatus, FlattenTicket, OrderProgressState, QuoteQuality, QuoteSide,
};
use tradeguard_engine::intent::Purpose;
use tradeguard_engine::strategies::StrategyView;
use tradeguard_model::{AccountId, OrderType, Side, StrategyId, Timestamp};

/// An engine refusal as the UI receives it: the engine's code is the `reason`.
pub fn ipc(e: EnforceError) -> IpcError {
    let code = e.code();
    let category = match code {
        "flatten.unknown_preview" | "flatten.unknown_strategy" | "flatten.unknown_ticket" => {
            ErrorCode::NotFound
        }
        c if c.starts_with("flatten.") || c.starts_with("gate.") => ErrorCode::InvalidInput,
        _ => ErrorCode::Unavailable,
    };
    IpcError::new(category, code, e.to_string())
}

/// One strategy row: what the dashboard lists and what "Flatten" acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StrategyRow {
    /// Decimal id (a string: ids are 64-bit).
    pub id: String,
    pub account: String,
    pub name: String,
    /// "iron_condor", "vertical", ...
    pub kind: String,
    /// "open", "closing", "broken: assignment", ...
    pub badge: String,
    pub broken: bool,
    pub recognized: bool,
    /// Entry credit (+) or debit (−), dollars.
    pub entry_credit: Option<String>,
    pub pnl: Option<String>,
    pub legs: Vec<StrategyLegRow>,
    /// Exits attached when it was opened through the guard, a line each.
    pub exits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StrategyLegRow {
    pub label: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub avg_price: String,
    pub mark: Option<String>,
    pub pnl: Option<String>,
    pub delta: Option<f64>,
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".to_owned())
}

pub fn strategy_row(s: &StrategyView) -> StrategyRow {
    StrategyRow {
        id: s.id.0.to_string(),
        account: s.account.as_str().to_owned(),
        name: s.name.clone(),
        kind: s.kind.as_str().to_owned(),
        badge: s.badge(),
        broken: s.state == tradeguard_model::StrategyState::Broken,
        recognized: s.recognized,
        entry_credit: s.entry_credit.map(|m| m.to_string()),
        pnl: s.pnl.map(|m| m.to_string()),
        legs: s
            .legs
            .iter()
            .map(|l| StrategyLegRow {
                label: label(&l.instrument),
                qty: l.qty,
                avg_price: l.avg_price.to_string(),
                mark: l.mark.map(|m| m.to_string()),
                pnl: l.pnl.map(|m| m.to_string()),
                delta: l.greeks.map(|g| g.delta),
            })
            .collect(),
        exits: Vec::new(),
    }
}

/// Every strategy of `guard` as a row, with the exits attached to it at entry.
pub fn strategy_rows(guard: &tradeguard_engine::enforce::Guard) -> Vec<StrategyRow> {
    let attached = guard.attached_exits();
    guard
        .strategies()
        .iter()
        .map(|s| {
            let mut row = strategy_row(s);
            row.exits = attached
                .iter()
                .filter(|(id, _)| *id == Some(s.id))
                .flat_map(|(_, a)| a.exits.labels())
                .collect();
            row
        })
        .collect()
}

/// The strategies the guard protects (Broken ones included).
#[tauri::command]
#[specta::specta]
pub fn strategies(state: tauri::State<'_, AppState>) -> Result<Vec<StrategyRow>, IpcError> {
    Ok(strategy_rows(state.venue()?.guard()))
}

/// What to flatten.
#[derive(Debug, Clone, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FlattenTarget {
    /// One strategy, by `StrategyRow.id`.
    #[serde(rename_all = "camelCase")]
    Strategy { strategy_id: String },
    /// Everything of an account ("Flatten all").
    Account { account: String },
}

/// One order of a preview or ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FlattenOrderView {
    /// Orders of a step go out together; the next step waits for their fills.
    pub step: u32,
    /// "BUY" | "SELL".
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub label: String,
    /// "market", "limit 1.25", ...
    pub order_type: String,
    /// Estimated price, from the bid (sells) or the ask (buys).
    pub price: Option<String>,
    pub price_side: Option<String>,
    pub quote_age_secs: Option<f64>,
    pub stale_quote: bool,
    /// Estimated cash of this order (+ credit, − debit).
    pub cash: Option<String>,
    /// Broker orders it goes out as: 1, or the number of child orders a close larger than the
    /// per-order limit is split into (a close is never refused for its size).
    pub child_orders: u32,
    /// Quantity of the largest child order when split; `None` when it goes out as one order.
    pub max_child_qty: Option<u32>,
    /// Stable code (`gate.*`) of the refusal the pre-trade gate would give this order now
    /// (also among the warnings); `None` when it passes.
    pub gate_refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FlattenWarningView {
    pub code: String,
    /// "info" | "warning" | "critical".
    pub severity: String,
    pub message: String,
}

/// A preview: exactly what confirming it would do.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FlattenPreviewView {
    pub id: String,
    /// "Flatten SPY iron condor 540/550/600/610", "Flatten all of DU000001", ...
    pub title: String,
    pub account: String,
    /// Goes through the emergency path (a Broken strategy, HALTED trading, forced unwind).
    pub emergency: bool,
    pub orders: Vec<FlattenOrderView>,
    /// Positions left to another close already under way, and why.
    pub excluded: Vec<String>,
    pub estimated_cash: String,
    /// Every order had a quote; otherwise the estimate leaves some out.
    pub estimate_complete: bool,
    pub warnings: Vec<FlattenWarningView>,
    /// Confirming sends orders (false in dry-run or when there is nothing to do).
    pub will_send: bool,
    /// Market closed: orders are held until then (venue time, RFC 3339).
    pub armed_until: Option<String>,
    /// Venue seconds left to confirm.
    pub expires_in_secs: f64,
}

/// What a confirmation started.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FlattenTicketView {
    pub id: String,
    pub preview_id: String,
    pub dry_run: bool,
    pub armed_until: Option<String>,
    pub orders: Vec<FlattenOrderView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct OrderProgressView {
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    #[specta(type = specta_typescript::Number)]
    pub filled: i64,
    pub label: String,
    /// "not_sent" | "waiting" | "sent" | "partially_filled" | "filled" | "failed" | "not_working".
    pub state: String,
    pub reason: Option<String>,
}

/// How far a confirmed flatten got.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FlattenProgressView {
    pub ticket: String,
    /// "dry_run" | "armed" | "working" | "done" | "needs_manual" | "incomplete".
    pub status: String,
    /// Release time (armed) or why a person is needed.
    pub detail: Option<String>,
    /// The flatten is over (done, dry run, or needs a person): stop polling.
    pub finished: bool,
    pub orders: Vec<OrderProgressView>,
    pub sent: u32,
    pub filled: u32,
    pub failed: u32,
}

fn side(s: Side) -> String {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
    .to_owned()
}

/// RFC 3339 text of a venue time.
pub(crate) fn time(t: Timestamp) -> String {
    t.to_datetime().to_rfc3339()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn order(o: &FlattenOrder) -> FlattenOrderView {
    FlattenOrderView {
        step: count(o.step),
        side: side(o.side),
        qty: o.qty,
        label: label(&o.instrument),
        order_type: match &o.order_type {
            OrderType::Market => "market".to_owned(),
            OrderType::Limit { limit } => format!("limit {limit}"),
            other => snake(other),
        },
        price: o.estimate.as_ref().map(|e| e.price.to_string()),
        price_side: o.estimate.as_ref().map(|e| {
            match e.side {
                QuoteSide::Bid => "bid",
                QuoteSide::Ask => "ask",
            }
            .to_owned()
        }),
        quote_age_secs: o.estimate.as_ref().map(|e| e.quote_age_ms as f64 / 1000.0),
        stale_quote: o
            .estimate
            .as_ref()
            .is_some_and(|e| e.quality == QuoteQuality::Stale),
        cash: o.estimated_cash.map(|m| m.to_string()),
        child_orders: count(o.child_orders.len().max(1)),
        max_child_qty: (o.child_orders.len() > 1)
            .then(|| o.child_orders.iter().copied().max().unwrap_or(0))
            .map(|q| u32::try_from(q).unwrap_or(u32::MAX)),
        gate_refusal: o.gate_refusal.clone(),
    }
}

fn title(p: &FlattenPreview, strategies: &[StrategyView]) -> String {
    match &p.action {
        FlattenAction::Flatten {
            scope: FlattenScope::Strategy { strategy },
        } => {
            let name = strategies
                .iter()
                .find(|s| &s.id == strategy)
                .map_or_else(|| format!("strategy {strategy}"), |s| s.name.clone());
            format!("Flatten {name}")
        }
        FlattenAction::Flatten {
            scope: FlattenScope::Account { account },
        } => format!("Flatten all of {account}"),
        FlattenAction::Flatten {
            scope:
                FlattenScope::Position {
                    account,
                    instrument,
                },
        } => format!("Flatten {instrument} in {account}"),
        FlattenAction::ForcedUnwind { account, on } => format!(
            "Forced unwind {} for {account}",
            if *on { "ON" } else { "OFF" }
        ),
    }
}

pub fn preview_view(
    p: &FlattenPreview,
    strategies: &[StrategyView],
    now: Timestamp,
) -> FlattenPreviewView {
    FlattenPreviewView {
        id: p.id.clone(),
        title: title(p, strategies),
        account: p.account.as_str().to_owned(),
        emergency: p.purpose == Purpose::Emergency,
        orders: p.orders.iter().map(order).collect(),
        excluded: p
            .excluded
            .iter()
            .map(|x| {
                let why = match &x.reason {
                    ExcludedReason::AlreadyClosing { job } => {
                        format!("already closing (job {job})")
                    }
                    ExcludedReason::AssignmentClose { .. } => {
                        "left to the assignment's emergency close".to_owned()
                    }
                };
                format!("{} {} — {why}", x.qty, label(&x.instrument))
            })
            .collect(),
        estimated_cash: p.estimated_cash.to_string(),
        estimate_complete: p.estimate_complete,
        warnings: p
            .warnings
            .iter()
            .map(|w| FlattenWarningView {
                code: w.code.clone(),
                severity: snake(&w.severity),
                message: w.message.clone(),
            })
            .collect(),
        will_send: p.will_send,
        armed_until: p.armed_until.map(time),
        expires_in_secs: p.expires_at.duration_since(now).as_secs_f64(),
    }
}

fn ticket_view(t: &FlattenTicket) -> FlattenTicketView {
    FlattenTicketView {
        id: t.id.clone(),
        preview_id: t.preview_id.clone(),
        dry_run: t.dry_run,
        armed_until: t.armed_until.map(time),
        orders: t.orders.iter().map(order).collect(),
    }
}

pub fn progress_view(p: &FlattenProgress) -> FlattenProgressView {
    let (status, detail, finished) = match &p.status {
        FlattenStatus::DryRun => ("dry_run", None, true),
        FlattenStatus::Armed { release_at } => ("armed", Some(time(*release_at)), false),
        FlattenStatus::Working => ("working", None, false),
        FlattenStatus::Done => ("done", None, true),
        FlattenStatus::NeedsManual { reason } => ("needs_manual", Some(reason.clone()), true),
        FlattenStatus::Incomplete => ("incomplete", None, false),
    };
    FlattenProgressView {
        ticket: p.ticket.clone(),
        status: status.to_owned(),
        detail,
        finished,
        orders: p
            .orders
            .iter()
            .map(|o| {
                let (state, reason) = match &o.state {
                    OrderProgressState::Failed { reason } => {
                        ("failed".to_owned(), Some(reason.clone()))
                    }
                    other => (snake_tagged(other), None),
                };
                OrderProgressView {
                    side: side(o.side),
                    qty: o.qty,
                    filled: o.filled,
                    label: label(&o.instrument),
                    state,
                    reason,
                }
            })
            .collect(),
        sent: count(p.sent),
        filled: count(p.filled),
        failed: count(p.failed),
    }
}

/// `{"state": "sent"}` → "sent".
fn snake_tagged(s: &OrderProgressState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|j| j.get("state").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "other".to_owned())
}

fn scope(target: FlattenTarget) -> Result<FlattenScope, IpcError> {
    Ok(match target {
        FlattenTarget::Strategy { strategy_id } => {
            let id = strategy_id.trim().parse::<u64>().map_err(|_| {
                IpcError::invalid_input(
                    "flatten.bad_strategy_id",
                    format!("{strategy_id:?} is not a strategy id"),
                )
            })?;
            FlattenScope::Strategy {
                strategy: StrategyId(id),
            }
        }
        FlattenTarget::Account { account } => {
            if account.trim().is_empty() {
                return Err(IpcError::invalid_input(
                    "flatten.no_account",
                    "say which account to flatten",
                ));
            }
            FlattenScope::Account {
                account: AccountId::new(account.trim()),
            }
        }
    })
}

/// Step one: what flattening `target` would do. Sends nothing.
#[tauri::command]
#[specta::specta]
pub async fn preview_flatten(
    state: tauri::State<'_, AppState>,
    target: FlattenTarget,
) -> Result<FlattenPreviewView, IpcError> {
    let venue = state.venue()?;
    let p = venue
        .guard()
        .preview_flatten(scope(target)?)
        .await
        .map_err(ipc)?;
    Ok(preview_view(&p, &venue.guard().strategies(), venue.now()))
}

/// Step one for the forced-unwind switch of an account.
#[tauri::command]
#[specta::specta]
pub async fn preview_forced_unwind(
    state: tauri::State<'_, AppState>,
    account: String,
    on: bool,
) -> Result<FlattenPreviewView, IpcError> {
    let venue = state.venue()?;
    if account.trim().is_empty() {
        return Err(IpcError::invalid_input(
            "flatten.no_account",
            "say which account",
        ));
    }
    let p = venue
        .guard()
        .preview_forced_unwind(AccountId::new(account.trim()), on)
        .await
        .map_err(ipc)?;
    Ok(preview_view(&p, &venue.guard().strategies(), venue.now()))
}

/// Step two: executes a valid, unexpired, unused preview.
#[tauri::command]
#[specta::specta]
pub async fn confirm_flatten(
    state: tauri::State<'_, AppState>,
    preview_id: String,
) -> Result<FlattenTicketView, IpcError> {
    let t = state
        .venue()?
        .guard()
        .confirm_flatten(&preview_id)
        .await
        .map_err(ipc)?;
    tracing::info!(preview = %preview_id, ticket = %t.id, dry_run = t.dry_run, "flatten confirmed by the user");
    Ok(ticket_view(&t))
}

/// Progress of a confirmed flatten (the dialog polls it until `finished`).
#[tauri::command]
#[specta::specta]
pub async fn flatten_progress(
    state: tauri::State<'_, AppState>,
    ticket: String,
) -> Result<FlattenProgressView, IpcError> {
    let p = state
        .venue()?
        .guard()
        .flatten_progress(&ticket)
        .await
        .map_err(ipc)?;
    Ok(progress_view(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_ids_arrive_as_strings_and_bad_ones_are_refused() {
        let s = scope(FlattenTarget::Strategy {
            strategy_id: "18446744073709551615".to_owned(),
        })
        .unwrap();
        assert_eq!(
            s,
            FlattenScope::Strategy {
                strategy: StrategyId(u64::MAX)
            }
        );
        let e = scope(FlattenTarget::Strategy {
            strategy_id: "12abc".to_owned(),
        })
        .unwrap_err();
        assert_eq!(e.reason, "flatten.bad_strategy_id");
        let e = scope(FlattenTarget::Account {
            account: "  ".to_owned(),
        })
        .unwrap_err();
        assert_eq!(e.reason, "flatten.no_account");
    }

    #[test]
    fn targets_deserialize_from_the_ui_shape() {
        let t: FlattenTarget =
            serde_json::from_str(r#"{"kind":"strategy","strategyId":"42"}"#).unwrap();
        assert!(matches!(t, FlattenTarget::Strategy { strategy_id } if strategy_id == "42"));
        let t: FlattenTarget =
            serde_json::from_str(r#"{"kind":"account","account":"DU1"}"#).unwrap();
        assert!(matches!(t, FlattenTarget::Account { account } if account == "DU1"));
    }
}
