//! `tradeguard stress FILE|-`: worst-case stress grid of a book (fields as in
//! margin_examples.json `scenario_examples`: `legs [{type, strike, qty, vol, days|t?, style?,
//! half_spread? | bid+ask?, multiplier?}]`, `spot`, `r`, `q`, `days|t`, optional `moves_pct`,
//! `extra_moves_pct`, `vol_mults`, `spread_mults`). A leg with `type: "stock"` holds shares.

use serde_json::{Map, Value, json};
use tradeguard_pricing::{Instrument, RiskLeg, StressConfig, stress_grid};

use crate::error::CliError;
use crate::input::Fields;
use crate::price::num;

/// The book's shared inputs: spot, rates, the default time to expiry and multiplier.
pub struct BookInputs {
    pub spot: f64,
    pub r: f64,
    pub q: f64,
    pub t: Option<f64>,
    pub multiplier: f64,
}

impl BookInputs {
    /// `spot`, `r`, `q` (default 0), `days|t` (optional) and `multiplier` (default 100).
    pub fn read(f: &Fields<'_>) -> Result<Self, CliError> {
        Ok(Self {
            spot: f.f64("spot")?,
            r: f.opt_f64("r")?.unwrap_or(0.0),
            q: f.opt_f64("q")?.unwrap_or(0.0),
            t: if f.has("days") || f.has("t") {
                Some(f.years()?)
            } else {
                None
            },
            multiplier: f.opt_f64("multiplier")?.unwrap_or(100.0),
        })
    }
}

/// The legs under `key` (`[{type, strike, qty, vol, days|t?, style?, half_spread? | bid+ask?,
/// multiplier?, price?}]`; `type: "stock"` holds shares), each validated so an error names it.
/// `price` (else the mid of `bid` and `ask`) is the leg's cost basis.
pub fn risk_legs(
    f: &Fields<'_>,
    key: &str,
    optional: bool,
    b: &BookInputs,
) -> Result<Vec<RiskLeg>, CliError> {
    let legs = f
        .objects(key, optional)?
        .iter()
        .map(|l| {
            let qty = l.i64("qty")?;
            let (bid, ask) = (l.opt_f64("bid")?, l.opt_f64("ask")?);
            let half_spread = match (l.opt_f64("half_spread")?, bid, ask) {
                (Some(h), _, _) => Some(h),
                (None, Some(b), Some(a)) if a >= b => Some(0.5 * (a - b)),
                (None, Some(_), Some(_)) => {
                    return Err(CliError::BadField {
                        case: f.case.clone(),
                        field: l.path("ask"),
                        message: "ask below bid".into(),
                    });
                }
                _ => None,
            };
            let entry_price = match (l.opt_f64("price")?, bid, ask) {
                (Some(p), _, _) => Some(p),
                (None, Some(b), Some(a)) => Some(0.5 * (a + b)),
                _ => None,
            };
            let leg_spot = l.opt_f64("spot")?.unwrap_or(b.spot);
            if l.str("type")? == "stock" {
                return Ok(RiskLeg {
                    instrument: Instrument::Underlying,
                    spot: leg_spot,
                    r: b.r,
                    q: b.q,
                    qty,
                    multiplier: 1.0,
                    half_spread,
                    entry_price,
                });
            }
            let kind = l.option_type("type")?;
            let t = if l.has("days") || l.has("t") {
                l.years()?
            } else {
                b.t.ok_or_else(|| CliError::Missing {
                    case: f.case.clone(),
                    field: l.path("t` or `days"),
                })?
            };
            let american = match l.opt_str("style")?.unwrap_or("european") {
                "european" => false,
                "american" => true,
                other => {
                    return Err(CliError::BadField {
                        case: f.case.clone(),
                        field: l.path("style"),
                        message: format!("unknown style \"{other}\""),
                    });
                }
            };
            Ok(RiskLeg {
                instrument: Instrument::Option {
                    kind,
                    strike: l.f64("strike")?,
                    t,
                    vol: l.f64("vol")?,
                    american,
                },
                spot: leg_spot,
                r: b.r,
                q: b.q,
                qty,
                multiplier: l.opt_f64("multiplier")?.unwrap_or(b.multiplier),
                half_spread,
                entry_price,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    for (i, leg) in legs.iter().enumerate() {
        leg.validate().map_err(|e| {
            let lf = Fields {
                case: f.case,
                obj: f.obj,
                prefix: format!("{key}[{i}]."),
            };
            lf.pricing_err(e)
        })?;
    }
    Ok(legs)
}

/// Stress one book.
pub fn stress_case(f: &Fields<'_>) -> Result<Value, CliError> {
    let b = BookInputs::read(f)?;
    let legs = risk_legs(f, "legs", false, &b)?;
    let mut cfg = match f.opt_numbers("moves_pct")? {
        Some(moves) => StressConfig {
            moves_pct: moves,
            ..StressConfig::default()
        },
        None => {
            StressConfig::with_extra_moves(&f.opt_numbers("extra_moves_pct")?.unwrap_or_default())
        }
    };
    if let Some(v) = f.opt_numbers("vol_mults")? {
        cfg.vol_mults = v;
    }
    if let Some(s) = f.opt_numbers("spread_mults")? {
        cfg.spread_mults = s;
    }
    let res = stress_grid(&legs, &cfg).map_err(|e| f.pricing_err(e))?;
    let cell = |c: &tradeguard_pricing::stress::StressCell| {
        json!({
            "move_pct": num(c.move_pct),
            "vol_mult": num(c.vol_mult),
            "spread_mult": num(c.spread_mult),
            "pnl": num(c.pnl),
            "liquidation_cost": num(c.liquidation_cost),
            "loss": num(c.loss),
        })
    };
    let mut out = Map::new();
    if let Some(id) = f.obj.get("id").or_else(|| f.obj.get("portfolio")) {
        out.insert("id".into(), id.clone());
    }
    out.insert("base_value".into(), num(res.base_value));
    out.insert("worst".into(), cell(&res.worst));
    out.insert(
        "cells".into(),
        Value::Array(res.cells.iter().map(cell).collect()),
    );
    Ok(Value::Object(out))
}
