//! Test builders for rule evaluation: position rows with marks, account snapshots, configs
//! from TOML text, and a large deterministic book for the benchmark.

use super::config::RiskConfig;
use super::eval::Session;
use crate::live::{MarkStatus, PositionView};
use crate::strategies::{StrategyBook, StrategyView};
use chrono::NaiveDate;
use std::path::Path;
use std::time::Duration;
use tradeguard_model::{
    AccountId, AccountSnapshot, Instrument, Money, OptionContract, Position, Price, Right,
    Timestamp,
};

/// Price from a decimal string (panics on bad test input).
pub fn px(s: &str) -> Price {
    Price::parse(s).expect("test price")
}

/// Money from a decimal string (panics on bad test input).
pub fn money(s: &str) -> Money {
    Money::parse(s).expect("test money")
}

/// A position row with a fresh mark (1 s old) and its P&L.
pub fn row(account: &str, instrument: Instrument, qty: i64, avg: &str, mark: &str) -> PositionView {
    let mut r = PositionView {
        account: AccountId::new(account),
        instrument,
        qty,
        avg_cost: px(avg),
        mark: None,
        mark_status: MarkStatus::Missing,
        quote_age: None,
        market_value: None,
        unrealized_pnl: None,
        greeks: None,
    };
    set_mark(&mut r, Some(px(mark)), MarkStatus::Fresh);
    r
}

/// Sets a row's mark, status and the derived value and P&L.
pub fn set_mark(r: &mut PositionView, mark: Option<Price>, status: MarkStatus) {
    let mult = r.instrument.multiplier();
    r.mark = mark;
    r.mark_status = status;
    r.quote_age = mark.map(|_| Duration::from_secs(1));
    r.market_value = mark.and_then(|m| m.notional(r.qty, mult).ok());
    let cost = r.avg_cost.notional(r.qty, mult).ok();
    r.unrealized_pnl = r
        .market_value
        .zip(cost)
        .and_then(|(v, c)| v.checked_sub(c).ok());
}

/// Account values at `ts`.
pub fn snapshot(account: &str, nlv: &str, ts: Timestamp) -> AccountSnapshot {
    AccountSnapshot {
        account: AccountId::new(account),
        net_liquidation: money(nlv),
        maintenance_margin: Money::ZERO,
        initial_margin: Money::ZERO,
        excess_liquidity: money(nlv),
        buying_power: money(nlv),
        ts,
    }
}

/// A config from TOML text (panics on an invalid test config).
/// P&L rules act at once (`pnl_confirm_secs = 0`) unless the text sets a confirmation time:
/// the confirmation has its own tests.
pub fn config(text: &str) -> RiskConfig {
    let text = if text.contains("pnl_confirm_secs") {
        text.to_owned()
    } else {
        format!("pnl_confirm_secs = 0\n{text}")
    };
    RiskConfig::parse(&text, Path::new("test.toml")).expect("valid test config")
}

/// Strategy views of `rows` (all recognized).
pub fn views(rows: &[PositionView]) -> Vec<StrategyView> {
    let mut b = StrategyBook::new();
    b.sync_views(rows);
    b.views(rows)
}

/// A session on `today` closing at 21:00 UTC (16:00 New York, EST).
pub fn session(today: NaiveDate) -> Session {
    let close = today
        .and_hms_opt(21, 0, 0)
        .map(|d| Timestamp::from_secs(d.and_utc().timestamp()))
        .unwrap_or_default();
    Session { today, close }
}

/// 32 rules: 4 of each kind (3 max-contracts + 1 global position cap), scoped to the
/// benchmark book's accounts; limits far enough that nothing fires on a quiet tick.
pub fn bench_config() -> RiskConfig {
    let mut t = String::from("dry_run = false\n");
    for i in 0..4 {
        let acct = format!("accounts = [\"B{i}\"]\n");
        if i < 3 {
            t.push_str(&format!(
                "[[max_contracts]]\n{acct}action = \"flatten\"\nmax_contracts = {}\n",
                50 + i
            ));
        } else {
            t.push_str("[[position_cap]]\naction = \"flatten\"\nmax_positions = 10000\n");
        }
        t.push_str(&format!(
            "[[daily_loss]]\n{acct}action = \"flatten\"\nmax_loss = {}\n",
            100_000 + i
        ));
        t.push_str(&format!(
            "[[max_drawdown]]\n{acct}action = \"flatten\"\nmax_drawdown = {}\n",
            200_000 + i
        ));
        t.push_str(&format!(
            "[[profit_target]]\n{acct}action = \"flatten\"\npct_of_credit = {}\n",
            90 + i
        ));
        t.push_str(&format!(
            "[[stop_loss]]\n{acct}action = \"flatten\"\ncredit_multiple = {}.5\n",
            3 + i
        ));
        t.push_str(&format!(
            "[[trailing_stop]]\n{acct}action = \"flatten\"\nactivation_pct = 80\ngive_back_pct = {}\n",
            20 + i
        ));
        t.push_str(&format!(
            "[[dte_exit]]\n{acct}action = \"flatten\"\ndays = {i}\n"
        ));
        t.push_str(&format!(
            "[[pin_risk]]\n{acct}action = \"flatten\"\nwithin = 0.5\nminutes_before_close = {}\n",
            30 + i
        ));
    }
    config(&t)
}

/// The benchmark book: `n` positions over 4 accounts as short-put verticals (one short and
/// one long row each), marked fresh; far-dated so DTE and pin risk do not fire.
pub fn bench_rows(n: usize) -> Vec<PositionView> {
    let expiry = NaiveDate::from_ymd_opt(2025, 6, 20).unwrap_or_default();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let pair = i / 2;
        let acct = format!("B{}", pair % 4);
        let und = format!("U{:03}", pair / 4);
        let short = i % 2 == 0;
        let strike = if short { 100 } else { 90 };
        let inst = Instrument::Option(OptionContract::equity(
            &und,
            expiry,
            Right::Put,
            Price::from_raw(strike * tradeguard_model::SCALE),
        ));
        let (qty, avg, mark) = if short {
            (-2, "3.00", "2.50")
        } else {
            (2, "1.00", "0.90")
        };
        rows.push(row(&acct, inst, qty, avg, mark));
    }
    rows
}

/// Broker positions behind `rows`.
pub fn positions_of(rows: &[PositionView]) -> Vec<Position> {
    rows.iter()
        .map(|r| Position {
            account: r.account.clone(),
            instrument: r.instrument.clone(),
            qty: r.qty,
            avg_cost: r.avg_cost,
        })
        .collect()
}
