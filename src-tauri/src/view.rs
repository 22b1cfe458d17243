//! View models: what the UI receives. Money crosses IPC as exact decimal strings (never
//! floats); quantities as numbers (exact up to 2^53).

use serde::Serialize;
use specta::Type;
use std::time::Duration;
use tradeguard_engine::live::{LiveBook, MarkStatus, PositionView};
use tradeguard_model::{AccountSnapshot, ConnectionState, Instrument, Timestamp};
use tradeguard_store::{AlertRecord, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PortfolioView {
    /// "sim" or "ib".
    pub venue: String,
    pub connection: ConnectionView,
    /// The venue's clock (virtual time on the simulator), RFC 3339.
    pub venue_time: Option<String>,
    pub accounts: Vec<AccountView>,
    pub positions: Vec<PositionRow>,
    /// Broker events folded into the book since start.
    #[specta(type = specta_typescript::Number)]
    pub events_applied: u64,
    /// The simulator's actions (forcing an assignment) are available: the simulated venue in
    /// a debug build (`make run`); never in a release build.
    pub sim_actions: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum ConnectionView {
    Unknown,
    Connecting,
    Connected,
    Disconnected {
        reason: String,
    },
    Stalled {
        #[specta(type = specta_typescript::Number)]
        silent_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account: String,
    pub net_liquidation: String,
    pub maintenance_margin: String,
    pub excess_liquidity: String,
    pub buying_power: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    Stock,
    Option,
    Future,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum MarkStatusView {
    Fresh,
    Stale,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PositionRow {
    /// Stable key: account and instrument id.
    pub key: String,
    pub account: String,
    /// Human label, e.g. "SPY 21MAR25 590 P".
    pub label: String,
    /// Broker-neutral id (OCC symbol for options).
    pub instrument_id: String,
    pub kind: InstrumentKind,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub multiplier: u32,
    pub avg_cost: String,
    pub mark: Option<String>,
    pub mark_status: MarkStatusView,
    pub quote_age_secs: Option<f64>,
    pub market_value: Option<String>,
    pub unrealized_pnl: Option<String>,
    /// Per-unit delta from the broker's Greeks, when known (1 for stock and futures).
    pub delta: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum SeverityView {
    Info,
    Warning,
    Critical,
}

/// One alert from the store's alert table (the source of truth, acknowledgement included).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    #[specta(type = specta_typescript::Number)]
    pub id: i64,
    pub severity: SeverityView,
    /// Stable machine code, e.g. `assignment.detected`.
    pub code: String,
    pub message: String,
    pub account: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub acknowledged_at: Option<String>,
}

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms} ms"), |t| t.to_rfc3339())
}

pub fn alert(r: &AlertRecord) -> AlertView {
    AlertView {
        id: r.id,
        severity: match r.alert.severity {
            Severity::Info => SeverityView::Info,
            Severity::Warning => SeverityView::Warning,
            Severity::Critical => SeverityView::Critical,
        },
        code: r.alert.kind.clone(),
        message: r.alert.text.clone(),
        account: r.alert.account_id.clone(),
        created_at: rfc3339_ms(r.alert.created_at_ms),
        acknowledged_at: r.acknowledged_at_ms.map(rfc3339_ms),
    }
}

/// The guard's health for the status bar: is enforcement running, what it checked, where the
/// rules come from, which protections are local and which live at the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct GuardView {
    /// The risk rules file (edit it; changes apply without restart).
    pub rules_path: String,
    /// Global dry-run: rules decide and log, send nothing.
    pub dry_run: bool,
    /// What still sends orders while the global dry-run is on (the protections the README
    /// names and what a person switches on), from the engine's one list of order paths.
    pub sent_in_dry_run: Vec<String>,
    pub rules: u32,
    #[specta(type = specta_typescript::Number)]
    pub rules_evaluated: u64,
    #[specta(type = specta_typescript::Number)]
    pub decisions_fired: u64,
    #[specta(type = specta_typescript::Number)]
    pub dry_run_decisions: u64,
    /// Venue time of the last reconciliation (RFC 3339) and what it repaired.
    pub last_reconciliation: Option<String>,
    pub last_reconciliation_repairs: u32,
    pub needs_manual_action: u32,
    pub forced_unwind: Vec<String>,
    /// "active" | "reducing" (opening orders locked, e.g. after a loss limit) | "halted".
    pub trading_state: String,
    /// Why the trading state is what it is (empty while it was never changed).
    pub trading_why: String,
    pub tasks: Vec<TaskView>,
    pub protections: Vec<ProtectionView>,
    /// Emergency closes of broken strategies (armed ones count down to the open).
    pub emergency_closes: Vec<EmergencyCloseView>,
}

/// One emergency close as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyCloseView {
    pub strategy: String,
    pub account: String,
    /// "armed" | "working" | "completed" | "failed".
    pub phase: String,
    /// Venue time the orders (were or will be) released (RFC 3339).
    pub release_at: String,
    /// Venue seconds until an armed close goes out; `None` once released.
    pub releases_in_secs: Option<f64>,
    /// The orders in plan order with their progress, e.g. "BUY 2 SPY 21MAR25 600 C — filled".
    pub orders: Vec<String>,
    /// How the orders go out ("market orders 2 min after the open ...").
    pub how: String,
}

/// The assignment guard's emergency closes at venue time `now`.
pub fn emergency_closes(
    s: &tradeguard_engine::assignment::guard::GuardStatus,
    names: &dyn Fn(&tradeguard_model::StrategyId) -> String,
    now: tradeguard_model::Timestamp,
) -> Vec<EmergencyCloseView> {
    use tradeguard_engine::assignment::guard::{ClosePhase, EmergencyOrderState};
    s.closes
        .iter()
        .map(|c| EmergencyCloseView {
            strategy: names(&c.strategy),
            account: c.account.as_str().to_owned(),
            phase: match c.phase {
                ClosePhase::Armed => "armed",
                ClosePhase::Working => "working",
                ClosePhase::Completed => "completed",
                ClosePhase::Failed => "failed",
            }
            .to_owned(),
            release_at: c.release_at.to_datetime().to_rfc3339(),
            how: c.how.clone(),
            releases_in_secs: (c.phase == ClosePhase::Armed)
                .then(|| c.release_at.duration_since(now).as_secs_f64()),
            orders: c
                .orders
                .iter()
                .map(|o| {
                    let state = match &o.state {
                        EmergencyOrderState::Waiting => "waiting".to_owned(),
                        EmergencyOrderState::Submitting => "sending".to_owned(),
                        EmergencyOrderState::Deferred => {
                            "sending once the stop is cancelled".to_owned()
                        }
                        EmergencyOrderState::Sent => "sent".to_owned(),
                        EmergencyOrderState::Filled if o.covered >= o.planned.qty => {
                            "closed by another exit".to_owned()
                        }
                        EmergencyOrderState::Filled if o.covered > 0 => {
                            format!("filled ({} closed by another exit)", o.covered)
                        }
                        EmergencyOrderState::Filled => "filled".to_owned(),
                        EmergencyOrderState::Failed { reason } => format!("failed: {reason}"),
                    };
                    let side = match o.planned.side {
                        tradeguard_model::Side::Buy => "BUY",
                        tradeguard_model::Side::Sell => "SELL",
                    };
                    format!(
                        "{side} {} {} — {state}",
                        o.planned.qty,
                        label(&o.planned.instrument)
                    )
                })
                .collect(),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub name: String,
    pub running: bool,
    /// Seconds since the task's last heartbeat.
    pub since_last_secs: Option<f64>,
    /// The task is late (not checking) when its heartbeat is older than this; `None` for tasks
    /// that beat on activity only.
    pub late_after_secs: Option<f64>,
    pub restarts: u32,
    pub last_failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionView {
    pub name: String,
    /// "local" (only while the app runs) or "broker" (rests at the broker).
    pub at_broker: bool,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A task is down (not running) or late (heartbeat older than its period allows); the UI's
/// `taskHealth` applies the same rule.
pub fn task_is_late(t: &TaskView) -> bool {
    if !t.running {
        return true;
    }
    match (t.late_after_secs, t.since_last_secs) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(limit), Some(since)) => since > limit,
    }
}

/// How often a guard task beats, from the configuration it was started with; a task is late
/// after three periods plus two seconds of slack.
fn late_after(task: &str, cfg: &tradeguard_engine::enforce::EnforceConfig) -> Option<f64> {
    let period = match task {
        "enforcer" => cfg.eval_interval,
        "reconciler" => cfg.reconcile_interval.min(cfg.stall_check_interval),
        "status" => cfg.status_interval,
        _ => return None,
    };
    Some(period.as_secs_f64() * 3.0 + 2.0)
}

pub fn guard(
    s: &tradeguard_engine::enforce::StatusSummary,
    rules_path: &std::path::Path,
    cfg: &tradeguard_engine::enforce::EnforceConfig,
    guard_age: std::time::Duration,
    speed: f64,
    emergency_closes: Vec<EmergencyCloseView>,
) -> GuardView {
    use tradeguard_engine::enforce::ProtectionSite;
    GuardView {
        emergency_closes,
        rules_path: rules_path.display().to_string(),
        dry_run: s.dry_run,
        sent_in_dry_run: tradeguard_engine::enforce::OrderPath::sent_in_dry_run()
            .map(|p| p.label().to_owned())
            .collect(),
        rules: count(s.rules),
        rules_evaluated: s.rules_evaluated,
        decisions_fired: s.decisions_fired,
        dry_run_decisions: s.dry_run_decisions,
        last_reconciliation: s
            .last_reconciliation
            .as_ref()
            .map(|r| r.at.to_datetime().to_rfc3339()),
        last_reconciliation_repairs: s.last_reconciliation.as_ref().map_or(0, |r| {
            count(r.positions.len().saturating_add(r.engine_repairs))
        }),
        needs_manual_action: count(s.needs_manual),
        trading_state: match s.trading.state {
            tradeguard_engine::TradingState::Active => "active",
            tradeguard_engine::TradingState::Reducing => "reducing",
            tradeguard_engine::TradingState::Halted => "halted",
        }
        .to_owned(),
        trading_why: s.trading.why.clone(),
        forced_unwind: s
            .forced_unwind
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        tasks: s
            .tasks
            .iter()
            .map(|t| TaskView {
                name: t.name.to_owned(),
                running: t.running,
                // Heartbeats are stamped on the venue's clock, but the tasks run on wall time:
                // shown (and judged) in wall seconds, or a 10x simulator would look 10x late.
                // Not beaten yet: as old as the guard (a periodic task is late only once the
                // guard has run longer than its period allows).
                since_last_secs: Some(match t.since_last {
                    Some(venue) => venue.as_secs_f64() / speed.max(1.0),
                    None => guard_age.as_secs_f64(),
                }),
                late_after_secs: late_after(t.name, cfg),
                restarts: t.restarts,
                last_failure: t.last_failure.clone(),
            })
            .collect(),
        protections: s
            .protections
            .iter()
            .map(|p| ProtectionView {
                name: p.name.clone(),
                at_broker: p.site == ProtectionSite::Broker,
            })
            .collect(),
    }
}

/// A short human label for an instrument ([`Instrument::label`]).
pub fn label(instrument: &Instrument) -> String {
    instrument.label()
}

fn row(p: &PositionView) -> PositionRow {
    let id = p.instrument.id();
    PositionRow {
        key: format!("{}:{}", p.account.as_str(), id.as_str()),
        account: p.account.as_str().to_owned(),
        label: label(&p.instrument),
        instrument_id: id.as_str().to_owned(),
        kind: match p.instrument {
            Instrument::Stock { .. } => InstrumentKind::Stock,
            Instrument::Option(_) => InstrumentKind::Option,
            Instrument::Future { .. } => InstrumentKind::Future,
        },
        qty: p.qty,
        multiplier: p.instrument.multiplier(),
        avg_cost: p.avg_cost.to_string(),
        mark: p.mark.map(|m| m.to_string()),
        mark_status: match p.mark_status {
            MarkStatus::Fresh => MarkStatusView::Fresh,
            MarkStatus::Stale => MarkStatusView::Stale,
            MarkStatus::Missing => MarkStatusView::Missing,
        },
        quote_age_secs: p.quote_age.map(|a| a.as_secs_f64()),
        market_value: p.market_value.map(|m| m.to_string()),
        unrealized_pnl: p.unrealized_pnl.map(|m| m.to_string()),
        // Stock and futures move one for one with their price.
        delta: p.greeks.map(|g| g.delta).or(match p.instrument {
            tradeguard_model::Instrument::Stock { .. }
            | tradeguard_model::Instrument::Future { .. } => Some(1.0),
            _ => None,
        }),
    }
}

fn account(a: &AccountSnapshot) -> AccountView {
    AccountView {
        account: a.account.as_str().to_owned(),
        net_liquidation: a.net_liquidation.to_string(),
        maintenance_margin: a.maintenance_margin.to_string(),
        excess_liquidity: a.excess_liquidity.to_string(),
        buying_power: a.buying_power.to_string(),
    }
}

fn connection(c: Option<&ConnectionState>) -> ConnectionView {
    match c {
        None => ConnectionView::Unknown,
        Some(ConnectionState::Connecting) => ConnectionView::Connecting,
        Some(ConnectionState::Connected) => ConnectionView::Connected,
        Some(ConnectionState::Disconnected { reason }) => ConnectionView::Disconnected {
            reason: reason.clone(),
        },
        Some(ConnectionState::Stalled { silent_ms }) => ConnectionView::Stalled {
            silent_ms: *silent_ms,
        },
    }
}

/// The whole portfolio as of the venue time `now`.
pub fn portfolio(
    venue: &str,
    book: &LiveBook,
    now: Timestamp,
    stale_after: Duration,
) -> PortfolioView {
    PortfolioView {
        venue: venue.to_owned(),
        connection: connection(book.connection()),
        venue_time: Some(now.to_datetime().to_rfc3339()),
        accounts: book.accounts().map(account).collect(),
        positions: book.positions(now, stale_after).iter().map(row).collect(),
        events_applied: book.events_applied(),
        sim_actions: venue == "sim" && crate::commands::SIM_ACTIONS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use tradeguard_model::{OptionContract, Price, Right};

    #[test]
    fn lateness_follows_each_tasks_own_period() {
        let cfg = tradeguard_engine::enforce::EnforceConfig::default();
        let enforcer = late_after("enforcer", &cfg).expect("periodic");
        let status = late_after("status", &cfg).expect("periodic");
        assert!(
            enforcer < 10.0,
            "the enforcer checks every {:?}",
            cfg.eval_interval
        );
        assert!(
            status > cfg.status_interval.as_secs_f64(),
            "status beats once per interval"
        );
        assert_eq!(late_after("alerts", &cfg), None, "activity-driven");
    }

    #[test]
    fn option_label_is_compact_and_exact() {
        let expiry = NaiveDate::from_ymd_opt(2025, 3, 21).expect("date");
        let put = Instrument::Option(OptionContract::equity(
            "SPY",
            expiry,
            Right::Put,
            Price::parse("590").expect("px"),
        ));
        assert_eq!(label(&put), "SPY 21MAR25 590 P");
        let half = Instrument::Option(OptionContract::equity(
            "SPY",
            expiry,
            Right::Call,
            Price::parse("592.5").expect("px"),
        ));
        assert_eq!(label(&half), "SPY 21MAR25 592.5 C");
        assert_eq!(label(&Instrument::stock("SPY")), "SPY");
    }

    #[test]
    fn stock_and_futures_rows_have_a_delta_of_one_options_only_from_greeks() {
        let view = |instrument: Instrument| PositionView {
            account: tradeguard_model::AccountId::new("U1"),
            instrument,
            qty: 2,
            avg_cost: Price::parse("100").expect("px"),
            mark: None,
            mark_status: tradeguard_engine::live::MarkStatus::Missing,
            quote_age: None,
            market_value: None,
            unrealized_pnl: None,
            greeks: None,
        };
        let mnq = Instrument::Future {
            symbol: "MNQ".into(),
            expiry: NaiveDate::from_ymd_opt(2026, 12, 18).expect("date"),
            multiplier: 2,
        };
        assert_eq!(row(&view(mnq)).delta, Some(1.0));
        assert_eq!(row(&view(Instrument::stock("SPY"))).delta, Some(1.0));
        let put = Instrument::Option(OptionContract::equity(
            "SPY",
            NaiveDate::from_ymd_opt(2025, 3, 21).expect("date"),
            Right::Put,
            Price::parse("590").expect("px"),
        ));
        assert_eq!(
            row(&view(put)).delta,
            None,
            "no Greeks: unknown, not guessed"
        );
    }
}
