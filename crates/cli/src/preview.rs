//! `tradeguard order preview FILE|-`: what an order would do, before anything is sent. Fields:
//! the book's `spot`, `r`, `q`, `days|t`, `multiplier` (as `stress`); `legs` the order (`qty`
//! signed: + buy, − sell; `price` the limit per share, else the mid of `bid` and `ask`); optional
//! `book` (what the account holds, `price` its cost); `available_funds` and `stress_pct`
//! (default 90) for the stress verdict; `underlying_kind` for Reg T (default `equity`).
//!
//! Out: the net premium (credit +, debit −), the payoff at expiry and today, the profile at the
//! first expiry (maximum profit and loss or unbounded, breakevens, probability of profit from
//! the model), the Reg T requirement of the order and its impact on the book's (Tradeguard's
//! calculator, labelled as such: no venue's what-if here), and the pre-trade gate's stress
//! verdict on book + order (±3 %, IV +30 %/+50 %, spreads ×1.5/×2): refused when the worst case
//! exceeds `stress_pct` % of the available funds, naming the scenario and by how much.

use serde_json::{Map, Value, json};
use tradeguard_engine::StressScenario;
use tradeguard_pricing::margin::UnderlyingKind;
use tradeguard_pricing::preview::{expiry_profile, reg_t_of_legs};
use tradeguard_pricing::{Instrument, RiskLeg, StressConfig, payoff_curve, stress_grid};

use crate::error::CliError;
use crate::input::Fields;
use crate::price::num;
use crate::stress::{BookInputs, risk_legs};

/// Payoff points by default.
const POINTS: i64 = 61;
/// The payoff spans at least this fraction of the price either side of it (as the app's chart).
const HALF_RANGE: f64 = 0.15;

fn bad(f: &Fields<'_>, field: &str, message: impl Into<String>) -> CliError {
    CliError::BadField {
        case: f.case.clone(),
        field: f.path(field),
        message: message.into(),
    }
}

/// Preview one order.
pub fn preview_case(f: &Fields<'_>) -> Result<Value, CliError> {
    let b = BookInputs::read(f)?;
    let order = risk_legs(f, "legs", false, &b)?;
    let book = risk_legs(f, "book", true, &b)?;
    let points = f.opt_i64("points")?.unwrap_or(POINTS);
    if !(2..=2_000).contains(&points) {
        return Err(bad(f, "points", "must be 2 to 2000"));
    }
    // Net premium: what filling the order at its prices receives (+) or pays (−).
    let mut premium = 0.0;
    for l in &order {
        let px = l
            .entry_price
            .unwrap_or_else(|| l.value_per_share(l.spot, 1.0, 0.0));
        premium -= l.qty as f64 * l.multiplier * px;
    }
    // The probability of profit's volatility: the order's option legs' average.
    let vols: Vec<f64> = order
        .iter()
        .filter_map(|l| match l.instrument {
            Instrument::Option { vol, .. } => Some(vol),
            Instrument::Underlying => None,
        })
        .collect();
    let pop_vol = if vols.is_empty() {
        0.2
    } else {
        vols.iter().sum::<f64>() / vols.len() as f64
    };
    let profile = expiry_profile(&order, pop_vol, b.r, b.q).map_err(|e| f.pricing_err(e))?;
    // The chart spans every strike and the price.
    let (low, top) = order
        .iter()
        .filter_map(|l| match l.instrument {
            Instrument::Option { strike, .. } => Some(strike),
            Instrument::Underlying => None,
        })
        .fold((b.spot, b.spot), |(lo, hi), k| (lo.min(k), hi.max(k)));
    let (lo, hi) = (
        (low.min(b.spot * (1.0 - HALF_RANGE)) * 0.95).max(b.spot * 0.01),
        top.max(b.spot * (1.0 + HALF_RANGE)) * 1.05,
    );
    let curve = payoff_curve(&order, lo, hi, points as usize).map_err(|e| f.pricing_err(e))?;

    let kind = match f.opt_str("underlying_kind")?.unwrap_or("equity") {
        "equity" | "etf" => UnderlyingKind::Equity,
        "broad_based_index" => UnderlyingKind::BroadBasedIndex,
        "narrow_based_index" => UnderlyingKind::NarrowBasedIndex,
        other => {
            return Err(bad(
                f,
                "underlying_kind",
                format!(
                    "unknown underlying kind \"{other}\" (expected equity, etf, broad_based_index, narrow_based_index)"
                ),
            ));
        }
    };
    let margin_of = |legs: &[&RiskLeg]| -> Result<Option<(f64, f64)>, CliError> {
        if legs.is_empty() {
            return Ok(None);
        }
        reg_t_of_legs(legs, b.spot, b.multiplier, kind)
            .map(Some)
            .map_err(|e| f.pricing_err(e))
    };
    let order_refs: Vec<&RiskLeg> = order.iter().collect();
    let with_book: Vec<&RiskLeg> = book.iter().chain(order.iter()).collect();
    let book_refs: Vec<&RiskLeg> = book.iter().collect();
    let order_margin = margin_of(&order_refs)?;
    let before = margin_of(&book_refs)?;
    let after = margin_of(&with_book)?;
    let mut margin = Map::new();
    margin.insert("source".into(), json!("reg_t_calculator"));
    margin.insert(
        "note".into(),
        json!("Tradeguard's Reg T strategy-based calculator, not the venue's what-if"),
    );
    if let Some((gross, net)) = order_margin {
        margin.insert(
            "order".into(),
            json!({"gross_requirement": num(gross), "net_of_proceeds": num(net)}),
        );
    }
    if !book.is_empty() {
        let (bg, _) = before.unwrap_or((0.0, 0.0));
        let (ag, _) = after.unwrap_or((0.0, 0.0));
        margin.insert("book_before".into(), num(bg));
        margin.insert("book_after".into(), num(ag));
        margin.insert("impact".into(), num(ag - bg));
    }

    // The gate's stress of book + order.
    let combined: Vec<RiskLeg> = book.iter().chain(order.iter()).copied().collect();
    let grid = stress_grid(&combined, &StressConfig::default()).map_err(|e| f.pricing_err(e))?;
    let w = &grid.worst;
    let scenario = StressScenario {
        move_bps: (w.move_pct * 100.0).round() as i64,
        vol_pct: (w.vol_mult * 100.0).round().max(0.0) as u32,
        spread_pct: (w.spread_mult * 100.0).round().max(0.0) as u32,
    };
    let loss = w.loss.max(0.0);
    let pct = f.opt_i64("stress_pct")?.unwrap_or(90);
    if !(1..=100).contains(&pct) {
        return Err(bad(f, "stress_pct", "must be 1 to 100"));
    }
    let mut stress = Map::new();
    stress.insert("worst_loss".into(), num(loss));
    stress.insert(
        "scenario".into(),
        json!({
            "move_pct": num(w.move_pct),
            "vol_mult": num(w.vol_mult),
            "spread_mult": num(w.spread_mult),
            "text": scenario.to_string(),
        }),
    );
    stress.insert("pct".into(), json!(pct));
    match f.opt_f64("available_funds")? {
        Some(funds) if funds.is_finite() => {
            let limit = funds.max(0.0) * pct as f64 / 100.0;
            stress.insert("available_funds".into(), num(funds));
            stress.insert("limit".into(), num(limit));
            if loss > limit {
                stress.insert("verdict".into(), json!("refused"));
                stress.insert("excess".into(), num(loss - limit));
                stress.insert(
                    "reason".into(),
                    json!(format!(
                        "worst case {loss:.2} ({scenario}) exceeds {limit:.2} ({pct}% of available funds {funds:.2}) by {:.2}",
                        loss - limit
                    )),
                );
            } else {
                stress.insert("verdict".into(), json!("pass"));
                stress.insert("headroom".into(), num(limit - loss));
            }
        }
        Some(_) => return Err(bad(f, "available_funds", "must be a finite number")),
        None => {
            stress.insert("verdict".into(), json!("unknown"));
            stress.insert(
                "reason".into(),
                json!("no available_funds given: the gate would refuse until it knows them"),
            );
        }
    }

    let mut out = Map::new();
    if let Some(id) = f.obj.get("id") {
        out.insert("id".into(), id.clone());
    }
    out.insert("net_premium".into(), num(premium));
    out.insert(
        "profile".into(),
        json!({
            "horizon_days": num(profile.horizon * 365.0),
            "max_profit": profile.max_profit.map(num),
            "max_loss": profile.max_loss.map(num),
            "breakevens": profile.breakevens.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "probability_of_profit": num(profile.probability_of_profit),
            "probability_vol": num(pop_vol),
            "exact": profile.exact,
        }),
    );
    out.insert(
        "payoff".into(),
        Value::Array(
            curve
                .iter()
                .map(|p| {
                    json!({"spot": num(p.spot), "pnl_expiry": num(p.pnl_expiry), "pnl_today": num(p.pnl_today)})
                })
                .collect(),
        ),
    );
    out.insert("margin".into(), Value::Object(margin));
    out.insert("stress".into(), Value::Object(stress));
    Ok(Value::Object(out))
}
