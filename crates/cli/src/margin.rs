//! `tradeguard margin FILE|-`: Reg T strategy-based requirement of a position (fields as in
//! margin_examples.json: `underlying {price, kind}`, `legs [{type, strike, qty, premium}]`,
//! `stock`, `multiplier`) -> `gross_requirement`, `net_of_proceeds` and the pairing used.

use serde_json::{Map, Value, json};
use tradeguard_pricing::margin::{
    MarginLeg, MarginPosition, MarginRules, StockPosition, UnderlyingKind, reg_t_margin,
    to_dollars, to_micros,
};

use crate::error::CliError;
use crate::input::Fields;
use crate::price::num;

fn micros(f: &Fields<'_>, key: &'static str) -> Result<i128, CliError> {
    let v = f.f64(key)?;
    to_micros(key, v).map_err(|e| f.pricing_err(e))
}

/// Margin one position.
pub fn margin_case(f: &Fields<'_>) -> Result<Value, CliError> {
    let u = f.object("underlying")?;
    let kind = match u.str("kind")? {
        "equity" | "etf" => UnderlyingKind::Equity,
        "broad_based_index" => UnderlyingKind::BroadBasedIndex,
        "narrow_based_index" => UnderlyingKind::NarrowBasedIndex,
        other => {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: u.path("kind"),
                message: format!(
                    "unknown underlying kind \"{other}\" (expected equity, etf, broad_based_index, narrow_based_index)"
                ),
            });
        }
    };
    let underlying_price = match u.opt_f64("price")? {
        Some(p) => Some(to_micros("price", p).map_err(|e| u.pricing_err(e))?),
        None => None,
    };
    let underlying_symbol = u.opt_str("symbol")?;
    let legs = f
        .objects("legs", false)?
        .iter()
        .map(|l| {
            let strike = micros(l, "strike")?;
            if strike == 0 {
                return Err(CliError::BadField {
                    case: f.case.clone(),
                    field: l.path("strike"),
                    message: "must be positive".into(),
                });
            }
            let qty = l.i64("qty")?;
            if qty == 0 {
                return Err(CliError::BadField {
                    case: f.case.clone(),
                    field: l.path("qty"),
                    message: "must not be zero".into(),
                });
            }
            Ok(MarginLeg {
                kind: l.option_type("type")?,
                strike,
                qty,
                premium: micros(l, "premium")?,
                expiry: l.opt_i64("expiry")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let stock = match f.opt_object("stock")? {
        None => None,
        Some(s) => {
            let symbol = s.opt_str("symbol")?;
            Some(StockPosition {
                qty: s.i64("qty")?,
                price: micros(&s, "price")?,
                proxy: symbol.is_some() && symbol != underlying_symbol,
            })
        }
    };
    let multiplier = f.opt_i64("multiplier")?.unwrap_or(100);
    let pos = MarginPosition {
        underlying_price,
        underlying_kind: kind,
        legs,
        stock,
        multiplier,
    };
    let res = reg_t_margin(&pos, &MarginRules::default()).map_err(|e| f.pricing_err(e))?;
    let pairing: Vec<Value> = res
        .groups
        .iter()
        .map(|g| {
            json!({
                "strategy": g.strategy,
                "legs": g.legs,
                "stock_shares": g.stock_shares,
                "gross": num(to_dollars(g.gross)),
                "net": num(to_dollars(g.net)),
            })
        })
        .collect();
    let mut out = Map::new();
    if let Some(id) = f.obj.get("id") {
        out.insert("id".into(), id.clone());
    }
    out.insert(
        "gross_requirement".into(),
        num(to_dollars(res.gross_requirement)),
    );
    out.insert(
        "net_of_proceeds".into(),
        num(to_dollars(res.net_of_proceeds)),
    );
    out.insert("short_proceeds".into(), num(to_dollars(res.short_proceeds)));
    out.insert("long_premium".into(), num(to_dollars(res.long_premium)));
    out.insert("pairing".into(), Value::Array(pairing));
    out.insert("exhaustive_search".into(), json!(res.exhaustive));
    Ok(Value::Object(out))
}
