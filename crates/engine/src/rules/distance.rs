//! How far one strategy is from each rule that applies to it: the strategy detail screen's
//! "rules" table. The thresholds are the evaluator's ([`super::eval`]): profit target and stop
//! loss against the entry premium, the trailing stop's activation, days to expiry, the pin
//! window's strikes and max contracts per option leg. Account-wide rules (daily loss,
//! drawdown, position cap) are not listed here: they do not depend on one strategy.
//!
//! A rule that cannot be measured (no fresh mark, no premium) says why, like the evaluator's
//! "cannot evaluate" warning.

use super::config::{RiskConfig, Rule, RuleAction, RuleKind, RuleSeverity};
use crate::live::MarkStatus;
use crate::strategies::StrategyView;
use chrono::NaiveDate;
use tradeguard_model::{Money, Price, SCALE};

/// Where a strategy stands against one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDistance {
    /// Rule id from the file.
    pub rule_id: String,
    /// Section name (`profit_target`, ...).
    pub kind: &'static str,
    /// Alert or flatten.
    pub action: RuleAction,
    /// Severity of its alert.
    pub severity: RuleSeverity,
    /// The rule or the whole file is in dry-run.
    pub dry_run: bool,
    /// The measurement.
    pub status: DistanceStatus,
    /// When it fires, in words ("P&L ≥ 100.00 (50 % of the 200.00 premium)").
    pub trigger: String,
    /// Where the strategy is now ("P&L 40.00"), or why it cannot be measured.
    pub current: String,
    /// What is left before it fires ("60.00 more profit"), empty once it has.
    pub distance: String,
    /// Progress toward the trigger, 0 = far, 1 = at it (capped); `None` when not measurable.
    pub progress: Option<f64>,
}

/// Whether the rule would fire now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistanceStatus {
    /// Not at its trigger.
    Clear,
    /// At or past its trigger (it fires at the next evaluation, or already has).
    Triggered,
    /// Cannot be measured now (see `current`).
    Unknown,
    /// Its time window has not started (pin risk before the window, no leg expiring today).
    Inactive,
}

/// Inputs that are not on the strategy itself.
#[derive(Debug, Clone, Copy)]
pub struct DistanceInput {
    /// The exchange's trading date.
    pub today: NaiveDate,
    /// The underlying's price now, when known.
    pub spot: Option<Price>,
}

/// Every enabled rule of `config` in scope for `s`, with its distance, in the config's order.
pub fn strategy_rule_distances(
    config: &RiskConfig,
    s: &StrategyView,
    input: DistanceInput,
) -> Vec<RuleDistance> {
    let underlying = s.legs.first().map_or("", |l| l.instrument.underlying());
    config
        .enabled_rules()
        .filter(|r| {
            in_scope(&r.common.accounts, s.account.as_str())
                && in_scope(&r.common.underlyings, underlying)
        })
        .filter_map(|r| {
            let m = measure(r, s, input)?;
            Some(RuleDistance {
                rule_id: r.common.id.clone(),
                kind: r.kind.name(),
                action: r.common.action,
                severity: r.common.severity,
                dry_run: config.dry_run || r.common.dry_run,
                status: m.status,
                trigger: m.trigger,
                current: m.current,
                distance: m.distance,
                progress: m.progress,
            })
        })
        .collect()
}

fn in_scope(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

struct Measure {
    status: DistanceStatus,
    trigger: String,
    current: String,
    distance: String,
    progress: Option<f64>,
}

impl Measure {
    fn unknown(trigger: String, why: impl Into<String>) -> Self {
        Self {
            status: DistanceStatus::Unknown,
            trigger,
            current: why.into(),
            distance: String::new(),
            progress: None,
        }
    }
}

fn money(raw: i128) -> Money {
    Money::from_raw(i64::try_from(raw).unwrap_or(if raw < 0 { i64::MIN } else { i64::MAX }))
}

/// Progress `current / trigger` in [0, 1] for a positive trigger.
fn progress(current: i128, trigger: i128) -> Option<f64> {
    (trigger > 0).then(|| (current as f64 / trigger as f64).clamp(0.0, 1.0))
}

fn measure(rule: &Rule, s: &StrategyView, input: DistanceInput) -> Option<Measure> {
    match rule.kind {
        RuleKind::ProfitTarget { .. }
        | RuleKind::StopLoss { .. }
        | RuleKind::TrailingStop { .. } => Some(pnl_rule(rule, s)),
        RuleKind::DteExit { days } => Some(dte(s, days, input.today)),
        RuleKind::PinRisk {
            within,
            minutes_before_close,
        } => Some(pin(s, within, minutes_before_close, input)),
        RuleKind::MaxContracts { max_contracts } => Some(max_contracts_rule(s, max_contracts)),
        RuleKind::PositionCap { .. }
        | RuleKind::DailyLoss { .. }
        | RuleKind::MaxDrawdown { .. }
        | RuleKind::TrailingMaxLoss { .. }
        | RuleKind::SessionFlatten { .. } => None,
    }
}

fn pnl_rule(rule: &Rule, s: &StrategyView) -> Measure {
    let premium = s.entry_credit.and_then(|e| e.checked_abs().ok());
    let trigger_text = |premium: Option<Money>| {
        let p = premium.map_or_else(|| "the entry premium".to_owned(), |p| format!("{p}"));
        match rule.kind {
            RuleKind::ProfitTarget { pct_of_credit } => {
                format!("P&L ≥ {pct_of_credit} % of {p}")
            }
            RuleKind::StopLoss { credit_multiple } => format!("loss ≥ {credit_multiple} × {p}"),
            RuleKind::TrailingStop {
                activation_pct,
                give_back_pct,
            } => format!(
                "after P&L reaches {activation_pct} % of {p}, a give-back of {give_back_pct} % of it"
            ),
            _ => String::new(),
        }
    };
    let Some(premium) = premium.filter(|p| p.is_positive()) else {
        return Measure::unknown(trigger_text(None), "no entry premium to measure against");
    };
    let trigger = trigger_text(Some(premium));
    if s.mark_status != MarkStatus::Fresh {
        return Measure::unknown(trigger, "no fresh mark on every leg");
    }
    let Some(pnl) = s.pnl else {
        return Measure::unknown(trigger, "P&L unknown");
    };
    let p = i128::from(pnl.raw());
    let prem = i128::from(premium.raw());
    let current = format!("P&L {pnl}");
    let (target, toward): (i128, i128) = match rule.kind {
        // Fires at P&L ≥ target.
        RuleKind::ProfitTarget { pct_of_credit } => (prem * i128::from(pct_of_credit) / 100, p),
        // Fires at −P&L ≥ limit.
        RuleKind::StopLoss { credit_multiple } => (
            prem * i128::from(credit_multiple.raw()) / i128::from(SCALE),
            -p,
        ),
        // Shown against its activation (the high-water mark lives in the evaluator's state).
        RuleKind::TrailingStop { activation_pct, .. } => {
            (prem * i128::from(activation_pct) / 100, p)
        }
        _ => (0, 0),
    };
    let reached = toward >= target;
    let status = match (reached, &rule.kind) {
        // An activated trailing stop is live, not fired: its stop moves with the high.
        (true, RuleKind::TrailingStop { .. }) => DistanceStatus::Clear,
        (true, _) => DistanceStatus::Triggered,
        (false, _) => DistanceStatus::Clear,
    };
    let distance = match (&rule.kind, reached) {
        (RuleKind::TrailingStop { .. }, true) => "activated: trailing the high".to_owned(),
        (_, true) => String::new(),
        (RuleKind::StopLoss { .. }, false) => format!("{} more loss", money(target - toward)),
        (RuleKind::TrailingStop { .. }, false) => {
            format!("activates after {} more profit", money(target - toward))
        }
        (_, false) => format!("{} more profit", money(target - toward)),
    };
    Measure {
        status,
        trigger,
        current,
        distance,
        progress: progress(toward, target),
    }
}

fn dte(s: &StrategyView, days: u32, today: NaiveDate) -> Measure {
    let trigger = format!("{days} day(s) or less to the nearest expiry");
    let Some(expiry) = s.legs.iter().filter_map(|l| l.instrument.expiry()).min() else {
        return Measure::unknown(trigger, "no option leg");
    };
    let left = (expiry - today).num_days();
    let over = left - i64::from(days);
    Measure {
        status: if over <= 0 {
            DistanceStatus::Triggered
        } else {
            DistanceStatus::Clear
        },
        trigger,
        current: format!("{left} day(s) to {expiry}"),
        distance: if over > 0 {
            format!("{over} day(s)")
        } else {
            String::new()
        },
        // Within a 30-day horizon before the trigger.
        progress: Some((1.0 - over as f64 / 30.0).clamp(0.0, 1.0)),
    }
}

fn pin(s: &StrategyView, within: Price, minutes: u32, input: DistanceInput) -> Measure {
    let trigger = format!(
        "a short leg expiring today in the money or within {within} of its strike, in the last {minutes} min"
    );
    let shorts: Vec<_> = s
        .legs
        .iter()
        .filter(|l| l.qty < 0)
        .filter_map(|l| l.instrument.as_option())
        .filter(|o| o.expiry == input.today)
        .collect();
    if shorts.is_empty() {
        return Measure {
            status: DistanceStatus::Inactive,
            trigger,
            current: "no short leg expires today".to_owned(),
            distance: String::new(),
            progress: None,
        };
    }
    let Some(spot) = input.spot else {
        return Measure::unknown(trigger, "no underlying price");
    };
    let nearest = shorts
        .iter()
        .map(|o| {
            let itm = o.intrinsic(spot).is_positive();
            (itm, spot.raw().abs_diff(o.strike.raw()), o.strike)
        })
        .min_by_key(|(itm, d, _)| (!itm, *d));
    let Some((itm, dist, strike)) = nearest else {
        return Measure::unknown(trigger, "no short leg");
    };
    let hit = itm || dist <= within.raw().unsigned_abs();
    let dist = Price::from_raw(i64::try_from(dist).unwrap_or(i64::MAX));
    Measure {
        // Whether the window has started is the evaluator's call (it has the session's
        // close); here: the strikes are within reach.
        status: if hit {
            DistanceStatus::Triggered
        } else {
            DistanceStatus::Clear
        },
        trigger,
        current: if itm {
            format!("short {strike} is in the money (spot {spot})")
        } else {
            format!("spot {spot} is {dist} from the short {strike}")
        },
        distance: if hit {
            String::new()
        } else {
            let left = dist.raw().saturating_sub(within.raw());
            format!("{}", Price::from_raw(left))
        },
        progress: None,
    }
}

fn max_contracts_rule(s: &StrategyView, max: i64) -> Measure {
    let trigger = format!("more than {max} contracts in one option position");
    let largest = s
        .legs
        .iter()
        .filter(|l| l.instrument.as_option().is_some())
        .map(|l| l.qty.saturating_abs())
        .max();
    let Some(largest) = largest else {
        return Measure::unknown(trigger, "no option leg");
    };
    Measure {
        status: if largest > max {
            DistanceStatus::Triggered
        } else {
            DistanceStatus::Clear
        },
        trigger,
        current: format!("largest leg {largest} contract(s)"),
        distance: if largest > max {
            String::new()
        } else {
            format!("{} contract(s)", max - largest + 1)
        },
        progress: progress(i128::from(largest), i128::from(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::LegView;
    use std::path::Path;
    use tradeguard_model::{AccountId, LegRole, StrategyId, StrategyKind, StrategyState, stubs};

    fn px(s: &str) -> Price {
        Price::parse(s).expect("price")
    }

    fn m(s: &str) -> Money {
        Money::parse(s).expect("money")
    }

    fn leg(instrument: tradeguard_model::Instrument, qty: i64) -> LegView {
        LegView {
            instrument,
            qty,
            role: LegRole::Hedge,
            avg_price: px("1.00"),
            mark: Some(px("1.00")),
            mark_status: MarkStatus::Fresh,
            quote_age: None,
            pnl: None,
            greeks: None,
        }
    }

    /// A SPY put vertical for a 200.00 credit with `pnl` of P&L.
    fn vertical(pnl: &str) -> StrategyView {
        StrategyView {
            id: StrategyId(1),
            account: AccountId::new("DU1"),
            name: "SPY 440/435 put vertical".into(),
            kind: StrategyKind::Vertical,
            state: StrategyState::Open,
            broken_reason: None,
            recognized: false,
            legs: vec![leg(stubs::put(440), -3), leg(stubs::put(435), 3)],
            entry_credit: Some(m("200")),
            market_value: None,
            pnl: Some(m(pnl)),
            mark_status: MarkStatus::Fresh,
            greeks: Default::default(),
        }
    }

    fn config(text: &str) -> RiskConfig {
        RiskConfig::parse(text, Path::new("risk.toml")).expect("config")
    }

    fn input() -> DistanceInput {
        DistanceInput {
            today: stubs::expiry() - chrono::Duration::days(10),
            spot: Some(px("450")),
        }
    }

    fn by<'a>(d: &'a [RuleDistance], id: &str) -> &'a RuleDistance {
        d.iter().find(|r| r.rule_id == id).expect(id)
    }

    const RULES: &str = r#"
[[profit_target]]
id = "tp"
action = "flatten"
pct_of_credit = 50
[[stop_loss]]
id = "sl"
credit_multiple = 2.0
dry_run = true
[[trailing_stop]]
activation_pct = 40
give_back_pct = 15
[[dte_exit]]
days = 1
[[max_contracts]]
max_contracts = 5
[[daily_loss]]
max_loss = 1000
[[profit_target]]
id = "tp-qqq"
underlyings = ["QQQ"]
pct_of_credit = 75
"#;

    #[test]
    fn distances_follow_the_evaluator_thresholds() {
        // Live (explicitly): a rule's own dry_run shows; a file without dry_run is all dry-run.
        let live = format!("dry_run = false\n{RULES}");
        let d = strategy_rule_distances(&config(&live), &vertical("40"), input());
        let mut ids: Vec<&str> = d.iter().map(|r| r.rule_id.as_str()).collect();
        ids.sort_unstable();
        // Account-wide rules and rules scoped to other underlyings are not listed.
        assert_eq!(
            ids,
            ["dte_exit", "max_contracts", "sl", "tp", "trailing_stop"]
        );
        let tp = by(&d, "tp");
        assert_eq!(tp.status, DistanceStatus::Clear);
        assert_eq!(tp.current, "P&L 40.00");
        assert_eq!(tp.distance, "60.00 more profit");
        assert_eq!(tp.progress, Some(0.4));
        assert_eq!(tp.action, RuleAction::Flatten);
        assert!(!tp.dry_run);
        let sl = by(&d, "sl");
        assert!(sl.dry_run);
        assert_eq!(
            sl.distance, "440.00 more loss",
            "limit 2 × 200 = 400 below zero"
        );
        assert_eq!(sl.progress, Some(0.0));
        let trailing = by(&d, "trailing_stop");
        assert_eq!(trailing.distance, "activates after 40.00 more profit");
        let dte = by(&d, "dte_exit");
        assert_eq!(dte.current, format!("10 day(s) to {}", stubs::expiry()));
        assert_eq!(dte.distance, "9 day(s)");
        let max = by(&d, "max_contracts");
        assert_eq!(max.current, "largest leg 3 contract(s)");
        assert_eq!(max.distance, "3 contract(s)");
    }

    #[test]
    fn at_the_threshold_a_rule_is_triggered() {
        let d = strategy_rule_distances(&config(RULES), &vertical("100"), input());
        let tp = by(&d, "tp");
        assert_eq!(tp.status, DistanceStatus::Triggered);
        assert_eq!(tp.distance, "");
        assert_eq!(tp.progress, Some(1.0));
        // The trailing stop is activated (live), not fired.
        let trailing = by(&d, "trailing_stop");
        assert_eq!(trailing.status, DistanceStatus::Clear);
        assert_eq!(trailing.distance, "activated: trailing the high");
        let d = strategy_rule_distances(&config(RULES), &vertical("-399.99"), input());
        assert_eq!(by(&d, "sl").status, DistanceStatus::Clear);
        let d = strategy_rule_distances(&config(RULES), &vertical("-400"), input());
        assert_eq!(by(&d, "sl").status, DistanceStatus::Triggered);
    }

    #[test]
    fn stale_marks_and_missing_premium_are_unknown_with_the_reason() {
        let mut s = vertical("40");
        s.mark_status = MarkStatus::Stale;
        let d = strategy_rule_distances(&config(RULES), &s, input());
        assert_eq!(by(&d, "tp").status, DistanceStatus::Unknown);
        assert_eq!(by(&d, "tp").current, "no fresh mark on every leg");
        assert_eq!(by(&d, "tp").progress, None);
        let mut s = vertical("40");
        s.entry_credit = Some(Money::ZERO);
        let d = strategy_rule_distances(&config(RULES), &s, input());
        assert_eq!(by(&d, "tp").current, "no entry premium to measure against");
    }

    #[test]
    fn global_dry_run_marks_every_rule() {
        let text = format!("dry_run = true\n{RULES}");
        let d = strategy_rule_distances(&config(&text), &vertical("0"), input());
        assert!(d.iter().all(|r| r.dry_run));
    }

    #[test]
    fn pin_risk_measures_the_nearest_short_strike_on_the_expiry_day() {
        let text = "[[pin_risk]]\nwithin = 0.50\nminutes_before_close = 90\n";
        let on_expiry = |spot: &str| DistanceInput {
            today: stubs::expiry(),
            spot: Some(px(spot)),
        };
        let d = strategy_rule_distances(&config(text), &vertical("0"), input());
        assert_eq!(d[0].status, DistanceStatus::Inactive);
        let d = strategy_rule_distances(&config(text), &vertical("0"), on_expiry("442.00"));
        assert_eq!(d[0].status, DistanceStatus::Clear);
        assert_eq!(d[0].current, "spot 442.00 is 2.00 from the short 440.00");
        assert_eq!(d[0].distance, "1.50");
        let d = strategy_rule_distances(&config(text), &vertical("0"), on_expiry("440.40"));
        assert_eq!(d[0].status, DistanceStatus::Triggered);
        let d = strategy_rule_distances(&config(text), &vertical("0"), on_expiry("439.00"));
        assert_eq!(d[0].current, "short 440.00 is in the money (spot 439.00)");
    }
}
