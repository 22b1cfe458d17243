//! `tradeguard price FILE|-`: price and Greeks for each case (fields as in pricing_reference.json:
//! `type`, `spot` or `forward`, `strike`, `t` or `days`, `r`, `q`, `vol`, plus `style`
//! european|american, `model` bsm|black76, optional `dividends` [{days|t, amount}] for cash
//! dividends, optional `market_price` to solve for implied volatility instead of `vol`).

use serde_json::{Map, Value, json};
use tradeguard_pricing::american::cash_dividend_price;
use tradeguard_pricing::{
    Black76Inputs, BsmInputs, CashDividend, OptionType, american_greeks, black76, bsm, implied_vol,
};

use crate::error::CliError;
use crate::input::Fields;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    European,
    American,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Model {
    Bsm,
    Black76,
}

/// Price one case.
pub fn price_case(f: &Fields<'_>) -> Result<Value, CliError> {
    let kind = f.option_type("type")?;
    let style = match f.opt_str("style")?.unwrap_or("european") {
        "european" => Style::European,
        "american" => Style::American,
        other => {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: f.path("style"),
                message: format!("unknown style \"{other}\" (expected european or american)"),
            });
        }
    };
    let model = match f.opt_str("model")? {
        Some("bsm") => Model::Bsm,
        Some("black76") => Model::Black76,
        None if f.has("forward") && !f.has("spot") => Model::Black76,
        None => Model::Bsm,
        Some(other) => {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: f.path("model"),
                message: format!("unknown model \"{other}\" (expected bsm or black76)"),
            });
        }
    };
    let strike = f.f64("strike")?;
    let t = f.years()?;
    let r = f.f64("r")?;
    let mut out = Map::new();
    if let Some(id) = f.obj.get("id") {
        out.insert("id".into(), id.clone());
    }
    out.insert(
        "type".into(),
        json!(if kind == OptionType::Call {
            "call"
        } else {
            "put"
        }),
    );
    out.insert(
        "style".into(),
        json!(if style == Style::American {
            "american"
        } else {
            "european"
        }),
    );
    out.insert(
        "model".into(),
        json!(if model == Model::Bsm {
            "bsm"
        } else {
            "black76"
        }),
    );

    if model == Model::Black76 {
        if style == Style::American {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: f.path("style"),
                message: "black76 prices European options only".into(),
            });
        }
        let forward = f.f64("forward")?;
        let vol = f.f64("vol")?;
        let g = black76(&Black76Inputs {
            kind,
            forward,
            strike,
            t,
            r,
            vol,
        })
        .map_err(|e| f.pricing_err(e))?;
        for (k, v) in [
            ("price", g.price),
            ("delta_forward", g.delta_forward),
            ("gamma_forward", g.gamma_forward),
            ("vega", g.vega),
            ("theta", g.theta),
            ("rho", g.rho),
            ("d1", g.d1),
            ("d2", g.d2),
        ] {
            out.insert(k.into(), num(v));
        }
        return Ok(Value::Object(out));
    }

    let spot = f.f64("spot")?;
    let q = f.opt_f64("q")?.unwrap_or(0.0);
    if let Some(market) = f.opt_f64("market_price")? {
        if style == Style::American {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: f.path("market_price"),
                message: "implied volatility is solved for European prices only".into(),
            });
        }
        let iv = implied_vol(kind, market, spot, strike, t, r, q).map_err(|e| f.pricing_err(e))?;
        out.insert("market_price".into(), num(market));
        out.insert("implied_vol".into(), num(iv));
        return Ok(Value::Object(out));
    }
    let vol = f.f64("vol")?;
    let inputs = BsmInputs {
        kind,
        spot,
        strike,
        t,
        r,
        q,
        vol,
    };
    let dividends = f
        .objects("dividends", true)?
        .iter()
        .map(|d| {
            Ok(CashDividend {
                t: d.years()?,
                amount: d.f64("amount")?,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    if !dividends.is_empty() {
        if q != 0.0 {
            return Err(CliError::BadField {
                case: f.case.clone(),
                field: f.path("q"),
                message: "give either a dividend yield q or cash dividends, not both".into(),
            });
        }
        let res = cash_dividend_price(
            kind,
            spot,
            strike,
            t,
            r,
            vol,
            &dividends,
            style == Style::American,
        )
        .map_err(|e| f.pricing_err(e))?;
        out.insert("price".into(), num(res.price));
        out.insert("delta".into(), num(res.delta));
        out.insert("gamma".into(), num(res.gamma));
        out.insert("method".into(), json!("finite_difference_cash_dividends"));
        return Ok(Value::Object(out));
    }
    let g = match style {
        Style::European => bsm(&inputs),
        Style::American => american_greeks(&inputs),
    }
    .map_err(|e| f.pricing_err(e))?;
    for (k, v) in [
        ("price", g.price),
        ("delta", g.delta),
        ("gamma", g.gamma),
        ("vega", g.vega),
        ("theta", g.theta),
        ("rho", g.rho),
        ("dividend_rho", g.dividend_rho),
    ] {
        out.insert(k.into(), num(v));
    }
    if style == Style::European {
        out.insert("d1".into(), num(g.d1));
        out.insert("d2".into(), num(g.d2));
    } else {
        out.insert("method".into(), json!("qd_plus_fixed_point"));
    }
    Ok(Value::Object(out))
}

/// JSON number, or null for a non-finite value (never produced for valid inputs).
pub fn num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}
