//! The strategy detail screen across IPC ([`strategy_detail`]): legs, Greeks, the payoff at
//! expiry and today, the stress grid with its worst case against the account's margin buffer (excess liquidity), and every rule that
//! applies with its distance to trigger. The parts fail separately: a leg without a quote
//! leaves the charts empty with the reason, the rules still show.

use crate::error::{ErrorCode, IpcError};
use crate::flatten::{StrategyRow, strategy_row};
use crate::state::AppState;
use serde::Serialize;
use specta::Type;
use tradeguard_engine::PricingStressModel;
use tradeguard_engine::analysis::{self, StrategyRisk};
use tradeguard_engine::rules::{
    DistanceInput, DistanceStatus, RiskConfig, RuleAction, RuleDistance, strategy_rule_distances,
};
use tradeguard_engine::strategies::StrategyView;
use tradeguard_model::Timestamp;

/// Net Greeks of a strategy (delta and gamma in shares, vega and theta in dollars).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct GreeksView {
    pub delta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub theta: f64,
    /// `false` when some option leg had no Greeks (the sums cover only the others).
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PayoffPointView {
    pub spot: f64,
    pub pnl_expiry: f64,
    pub pnl_today: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StressCellView {
    pub move_pct: f64,
    pub vol_mult: f64,
    pub spread_mult: f64,
    /// Mark-to-model P&L (dollars).
    pub pnl: f64,
    /// Cost of crossing the widened half spread on every leg (dollars, ≥ 0).
    pub liquidation_cost: f64,
    /// What liquidating in this scenario loses: `-pnl + liquidation_cost`.
    pub loss: f64,
}

/// The payoff chart and the stress grid.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RiskView {
    pub underlying: String,
    pub spot: f64,
    /// Option strikes (chart markers), ascending.
    pub strikes: Vec<f64>,
    pub payoff: Vec<PayoffPointView>,
    pub moves_pct: Vec<f64>,
    pub vol_mults: Vec<f64>,
    pub spread_mults: Vec<f64>,
    /// Ordered by move, then vol multiplier, then spread multiplier.
    pub cells: Vec<StressCellView>,
    pub worst: StressCellView,
}

/// One rule that applies, and how far the strategy is from it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RuleDistanceView {
    pub rule_id: String,
    /// Section name (`profit_target`, ...).
    pub kind: String,
    /// "alert" | "flatten".
    pub action: String,
    pub dry_run: bool,
    /// "clear" | "triggered" | "unknown" | "inactive".
    pub status: String,
    pub trigger: String,
    pub current: String,
    pub distance: String,
    pub progress: Option<f64>,
}

/// Everything the strategy detail screen shows.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StrategyDetail {
    pub strategy: StrategyRow,
    pub greeks: GreeksView,
    /// Payoff and stress; `None` with `riskError` when a leg cannot be priced.
    pub risk: Option<RiskView>,
    pub risk_error: Option<IpcError>,
    /// The account's excess liquidity (dollars): what a stress loss eats into.
    pub margin_buffer: Option<f64>,
    /// The worst stress loss is larger than the margin buffer.
    pub worst_exceeds_buffer: Option<bool>,
    pub rules: Vec<RuleDistanceView>,
    /// The rules file could not be read (the guard keeps its last good rules).
    pub rules_error: Option<IpcError>,
    pub rules_path: String,
    /// What the assignment guard does when an option of this strategy is assigned.
    pub assignment: AssignmentPlanView,
}

/// What the assignment guard does when an option of a strategy is assigned, and the
/// person's choice for it (the rules file's `[assignment]` table gives the default per shape).
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentPlanView {
    /// "single_option", "covered", "vertical", "iron_condor", ...
    pub shape: String,
    /// The assignment is the plan: an alert, nothing Broken, no close.
    pub intended: bool,
    /// What happens to delivered shares: "keep" | "close".
    pub stock: String,
    /// The person marked it as a wheel.
    pub wheel: bool,
    /// The person's choice for delivered shares ("keep" | "close"), if any.
    pub stock_choice: Option<String>,
    /// One sentence for the screen.
    pub text: String,
}

/// The plan for `s` under `policy`.
pub fn assignment_plan(
    s: &StrategyView,
    policy: &tradeguard_engine::assignment::AssignmentPolicy,
) -> AssignmentPlanView {
    use tradeguard_engine::assignment::{AssignedShape, StockAction};
    let shape = AssignedShape::from_parts(s.kind, s.legs.iter().map(|l| &l.instrument));
    let d = policy.decide_for(s.id, shape);
    let choice = policy.strategies.get(&s.id).copied().unwrap_or_default();
    let shares = match d.stock {
        StockAction::Keep => "delivered shares are kept",
        StockAction::Close => "delivered shares are sold (bought back if short) at once",
    };
    let text = if d.intended {
        format!(
            "An assignment is the plan: an alert with what was delivered or called away; nothing is closed, and {shares}."
        )
    } else {
        format!(
            "An assignment breaks it: marked Broken and closed, shorts first (at the open when the market is closed); {shares}."
        )
    };
    AssignmentPlanView {
        shape: shape.as_str().to_owned(),
        intended: d.intended,
        stock: d.stock.as_str().to_owned(),
        wheel: choice.wheel,
        stock_choice: choice.stock.map(|a| a.as_str().to_owned()),
        text,
    }
}

fn risk_view(r: StrategyRisk) -> RiskView {
    let cell = |c: tradeguard_pricing::stress::StressCell| StressCellView {
        move_pct: c.move_pct,
        vol_mult: c.vol_mult,
        spread_mult: c.spread_mult,
        pnl: c.pnl,
        liquidation_cost: c.liquidation_cost,
        loss: c.loss,
    };
    RiskView {
        underlying: r.underlying,
        spot: r.spot,
        strikes: r.strikes,
        payoff: r
            .payoff
            .iter()
            .map(|p| PayoffPointView {
                spot: p.spot,
                pnl_expiry: p.pnl_expiry,
                pnl_today: p.pnl_today,
            })
            .collect(),
        moves_pct: r.grid.moves_pct,
        vol_mults: r.grid.vol_mults,
        spread_mults: r.grid.spread_mults,
        cells: r.stress.cells.iter().copied().map(cell).collect(),
        worst: cell(r.stress.worst),
    }
}

fn rule_view(d: RuleDistance) -> RuleDistanceView {
    RuleDistanceView {
        rule_id: d.rule_id,
        kind: d.kind.to_owned(),
        action: match d.action {
            RuleAction::Alert => "alert",
            RuleAction::Flatten => "flatten",
        }
        .to_owned(),
        dry_run: d.dry_run,
        status: match d.status {
            DistanceStatus::Clear => "clear",
            DistanceStatus::Triggered => "triggered",
            DistanceStatus::Unknown => "unknown",
            DistanceStatus::Inactive => "inactive",
        }
        .to_owned(),
        trigger: d.trigger,
        current: d.current,
        distance: d.distance,
        progress: d.progress,
    }
}

/// The rules part of a detail: the config as loaded (or why not), what the distances need, and
/// where the file lives.
pub struct RulesInput {
    pub config: Result<RiskConfig, IpcError>,
    pub distance: DistanceInput,
    pub path: String,
}

/// Builds the detail of `s` from the live quotes (pure, for tests).
pub fn build_detail(
    s: &StrategyView,
    quotes: &[tradeguard_model::Quote],
    now: Timestamp,
    model: &PricingStressModel,
    margin_buffer: Option<f64>,
    rules: RulesInput,
    policy: &tradeguard_engine::assignment::AssignmentPolicy,
) -> StrategyDetail {
    let RulesInput {
        config: rules,
        distance,
        path: rules_path,
    } = rules;
    let (risk, risk_error) = match analysis::analyse(model, s, quotes, now) {
        Ok(r) => (Some(risk_view(r)), None),
        Err(e) => (
            None,
            Some(IpcError::new(
                ErrorCode::Unavailable,
                e.code(),
                e.to_string(),
            )),
        ),
    };
    let worst_exceeds_buffer = match (&risk, margin_buffer) {
        (Some(r), Some(b)) => Some(r.worst.loss > b),
        _ => None,
    };
    let (rules, rules_error) = match rules {
        Ok(cfg) => (
            strategy_rule_distances(&cfg, s, distance)
                .into_iter()
                .map(rule_view)
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    let g = s.greeks;
    StrategyDetail {
        strategy: strategy_row(s),
        greeks: GreeksView {
            delta: g.delta,
            gamma: g.gamma,
            vega: g.vega,
            theta: g.theta,
            complete: g.complete,
        },
        risk,
        risk_error,
        margin_buffer,
        worst_exceeds_buffer,
        rules,
        rules_error,
        rules_path,
        assignment: assignment_plan(s, policy),
    }
}

/// The detail of one strategy, by `StrategyRow.id`.
#[tauri::command]
#[specta::specta]
pub fn strategy_detail(
    state: tauri::State<'_, AppState>,
    strategy_id: String,
) -> Result<StrategyDetail, IpcError> {
    let venue = state.venue()?;
    let id: u64 = strategy_id.trim().parse().map_err(|_| {
        IpcError::invalid_input(
            "detail.bad_id",
            format!("{strategy_id:?} is not a strategy id"),
        )
    })?;
    let strategies = venue.guard().strategies();
    let s = strategies.iter().find(|s| s.id.0 == id).ok_or_else(|| {
        IpcError::new(
            ErrorCode::NotFound,
            "detail.unknown_strategy",
            format!("no strategy {id} (closed, or its legs changed)"),
        )
    })?;
    let now = venue.now();
    let (quotes, spot, buffer) = venue.guard().read_live_book(|b| {
        let quotes: Vec<_> = s
            .legs
            .iter()
            .filter_map(|l| b.quote(&l.instrument.id()).cloned())
            .collect();
        let spot = quotes.iter().find_map(|q| q.underlying_price);
        let buffer = b.account(&s.account).map(|a| a.excess_liquidity.to_f64());
        (quotes, spot, buffer)
    });
    let rules_path = venue.rules_path();
    let rules =
        RiskConfig::load(rules_path).map_err(|e| IpcError::invalid_input(e.code(), e.to_string()));
    Ok(build_detail(
        s,
        &quotes,
        now,
        &PricingStressModel::new(std::sync::Arc::new(tradeguard_model::ManualClock::new(now))),
        buffer,
        RulesInput {
            config: rules,
            distance: DistanceInput {
                today: venue.trading_date(),
                spot,
            },
            path: rules_path.display().to_string(),
        },
        &venue.guard().assignment_status().policy,
    ))
}

/// A person's assignment choice for one strategy.
#[derive(Debug, Clone, serde::Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentChoiceInput {
    /// `StrategyRow.id`.
    pub strategy_id: String,
    /// A wheel: its assignment is the plan (alert only).
    pub wheel: bool,
    /// Delivered shares: "keep", "close", or none for the rules file's default.
    pub stock: Option<String>,
}

/// Records a person's assignment choice for a strategy (journaled; used from the next
/// assignment on); returns the strategy's plan as it now stands.
#[tauri::command]
#[specta::specta]
pub async fn set_assignment_choice(
    state: tauri::State<'_, AppState>,
    choice: AssignmentChoiceInput,
) -> Result<AssignmentPlanView, IpcError> {
    use tradeguard_engine::assignment::{StockAction, StrategyChoice};
    let venue = state.venue()?;
    let id: u64 = choice.strategy_id.trim().parse().map_err(|_| {
        IpcError::invalid_input(
            "detail.bad_id",
            format!("{:?} is not a strategy id", choice.strategy_id),
        )
    })?;
    let stock = match choice.stock.as_deref() {
        None | Some("") | Some("default") => None,
        Some("keep") => Some(StockAction::Keep),
        Some("close") => Some(StockAction::Close),
        Some(other) => {
            return Err(IpcError::invalid_input(
                "assignment.bad_choice",
                format!("{other:?} is not keep, close or default"),
            ));
        }
    };
    let guard = venue.guard();
    let s = guard
        .strategies()
        .into_iter()
        .find(|s| s.id.0 == id)
        .ok_or_else(|| {
            IpcError::new(
                ErrorCode::NotFound,
                "detail.unknown_strategy",
                format!("no strategy {id} (closed, or its legs changed)"),
            )
        })?;
    guard
        .assignment()
        .choose(
            s.id,
            StrategyChoice {
                wheel: choice.wheel,
                stock,
            },
        )
        .await
        .map_err(|e| IpcError::new(ErrorCode::Unavailable, e.code(), e.to_string()))?;
    tracing::info!(strategy = id, wheel = choice.wheel, stock = ?choice.stock, "assignment choice");
    let mut policy = guard.assignment_status().policy;
    policy.strategies.insert(
        s.id,
        StrategyChoice {
            wheel: choice.wheel,
            stock,
        },
    );
    Ok(assignment_plan(&s, &policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_of_a_spread_and_of_a_wheel() {
        use tradeguard_engine::assignment::{AssignmentPolicy, StockAction, StrategyChoice};
        let (s, _) = vertical();
        // The kind the screen reads ("vertical", "iron_condor"), not the enum's name.
        assert_eq!(strategy_row(&s).kind, "vertical");
        let mut p = AssignmentPolicy::default();
        let v = assignment_plan(&s, &p);
        assert_eq!(
            (v.shape.as_str(), v.intended, v.stock.as_str()),
            ("vertical", false, "close")
        );
        assert!(v.text.starts_with("An assignment breaks it"), "{}", v.text);
        p.strategies.insert(
            s.id,
            StrategyChoice {
                wheel: true,
                stock: Some(StockAction::Keep),
            },
        );
        let v = assignment_plan(&s, &p);
        assert!(v.intended && v.wheel);
        assert_eq!(v.stock_choice.as_deref(), Some("keep"));
        assert!(v.text.contains("delivered shares are kept"), "{}", v.text);
    }
    use tradeguard_engine::live::MarkStatus;
    use tradeguard_engine::strategies::LegView;
    use tradeguard_model::{
        AccountId, Greeks, Instrument, LegRole, ManualClock, Money, Price, Quote, StrategyId,
        StrategyKind, StrategyState, stubs,
    };

    fn px(s: &str) -> Price {
        Price::parse(s).expect("price")
    }

    fn quote(inst: &Instrument, mid: &str, iv: f64) -> Quote {
        let m = px(mid);
        Quote {
            instrument: inst.clone(),
            bid: Some(m.checked_sub(px("0.05")).expect("bid")),
            ask: Some(m.checked_add(px("0.05")).expect("ask")),
            last: None,
            bid_size: 1,
            ask_size: 1,
            greeks: Some(Greeks {
                iv,
                delta: -0.2,
                gamma: 0.01,
                vega: 0.1,
                theta: -0.02,
            }),
            underlying_price: Some(px("450")),
            ts: Timestamp::default(),
        }
    }

    fn vertical() -> (StrategyView, Vec<Quote>) {
        let short = stubs::put(440);
        let long = stubs::put(435);
        let leg = |instrument: Instrument, qty, avg: &str| LegView {
            instrument,
            qty,
            role: LegRole::Hedge,
            avg_price: px(avg),
            mark: None,
            mark_status: MarkStatus::Fresh,
            quote_age: None,
            pnl: None,
            greeks: None,
        };
        let s = StrategyView {
            id: StrategyId(42),
            account: AccountId::new("DU1"),
            name: "SPY 440/435 put vertical".into(),
            kind: StrategyKind::Vertical,
            state: StrategyState::Open,
            broken_reason: None,
            recognized: false,
            legs: vec![leg(short.clone(), -1, "2.00"), leg(long.clone(), 1, "1.00")],
            entry_credit: Some(Money::parse("100").expect("money")),
            market_value: None,
            pnl: Some(Money::parse("20").expect("money")),
            mark_status: MarkStatus::Fresh,
            greeks: Default::default(),
        };
        (
            s,
            vec![quote(&short, "1.50", 0.2), quote(&long, "1.10", 0.21)],
        )
    }

    fn now() -> Timestamp {
        let day = stubs::expiry() - chrono::Duration::days(20);
        Timestamp::from_datetime(day.and_hms_opt(15, 0, 0).expect("t").and_utc()).expect("ts")
    }

    fn rules() -> Result<RiskConfig, IpcError> {
        RiskConfig::parse(
            "[[profit_target]]\npct_of_credit = 50\n",
            std::path::Path::new("risk.toml"),
        )
        .map_err(|e| IpcError::invalid_input(e.code(), e.to_string()))
    }

    fn detail(
        quotes: &[Quote],
        buffer: Option<f64>,
        rules: Result<RiskConfig, IpcError>,
    ) -> StrategyDetail {
        let (s, _) = vertical();
        build_detail(
            &s,
            quotes,
            now(),
            &PricingStressModel::new(std::sync::Arc::new(ManualClock::new(now()))),
            buffer,
            RulesInput {
                config: rules,
                distance: DistanceInput {
                    today: stubs::expiry() - chrono::Duration::days(20),
                    spot: Some(px("450")),
                },
                path: "/c/risk.toml".into(),
            },
            &tradeguard_engine::assignment::AssignmentPolicy::default(),
        )
    }

    #[test]
    fn detail_carries_payoff_stress_against_the_buffer_and_rules() {
        let (_, quotes) = vertical();
        let d = detail(&quotes, Some(100.0), rules());
        assert_eq!(d.strategy.id, "42");
        let risk = d.risk.as_ref().expect("priced");
        assert_eq!(risk.payoff.len(), analysis::PAYOFF_POINTS);
        assert_eq!(risk.cells.len(), risk.moves_pct.len() * 9);
        // A 5-wide vertical for 1.00 credit can lose 400 at expiry; stressed today it loses
        // more than the 100 buffer in the worst cell.
        assert!(risk.worst.loss > 100.0, "{:?}", risk.worst);
        assert_eq!(d.worst_exceeds_buffer, Some(true));
        assert_eq!(
            detail(&quotes, Some(1e6), rules()).worst_exceeds_buffer,
            Some(false)
        );
        assert_eq!(detail(&quotes, None, rules()).worst_exceeds_buffer, None);
        assert_eq!(d.rules.len(), 1);
        assert_eq!(d.rules[0].kind, "profit_target");
        assert_eq!(d.rules[0].status, "clear");
        assert_eq!(d.rules[0].distance, "30.00 more profit");
        assert_eq!(d.rules_path, "/c/risk.toml");
    }

    #[test]
    fn a_missing_quote_or_a_bad_rules_file_fails_its_part_only() {
        let (_, quotes) = vertical();
        let d = detail(&quotes[..1], Some(100.0), rules());
        assert!(d.risk.is_none());
        let e = d.risk_error.expect("why");
        assert_eq!(e.reason, "risk.no_vol");
        assert!(e.message.contains("435"), "{}", e.message);
        assert_eq!(d.rules.len(), 1, "rules still measured");
        let bad = Err(IpcError::invalid_input(
            "rules.syntax",
            "risk.toml:3: syntax error",
        ));
        let d = detail(&quotes, Some(100.0), bad);
        assert!(d.risk.is_some());
        assert!(d.rules.is_empty());
        assert_eq!(d.rules_error.expect("error").reason, "rules.syntax");
    }
}
