//! Model ↔ Tradier: symbols, sides (which must say open or close), statuses and order forms
//! (<https://docs.tradier.com/reference/brokerage-api-trading-place-order>).

use crate::error::TradierError;
use crate::wire::{WireOrder, WirePosition};
use tradeguard_model::{
    AccountId, ComboOrder, Instrument, OrderId, OrderRequest, OrderStatus, OrderType, Position,
    Price, Side, Tif, occ,
};

/// The prefix of the tag that carries our order id (`tg-1234`): Tradier tags are up to 255
/// alphanumeric characters and dashes.
pub const TAG_PREFIX: &str = "tg-";

/// The tag of a local order id.
pub fn tag(id: OrderId) -> String {
    // Negative ids never come from this adapter; a dash keeps them legal anyway.
    format!("{TAG_PREFIX}{}", id.0)
}

/// The local order id of a tag, when the tag is ours.
pub fn order_id_of_tag(tag: Option<&str>) -> Option<OrderId> {
    tag?.strip_prefix(TAG_PREFIX)?.parse().ok().map(OrderId)
}

/// Tradier's symbol of an instrument: the equity symbol or the compact OCC symbol.
pub fn symbol(i: &Instrument) -> Result<String, TradierError> {
    match i {
        Instrument::Stock { symbol } => Ok(symbol.clone()),
        Instrument::Option(o) => occ::format(o)
            .map(|s| s.replace(' ', ""))
            .map_err(|e| TradierError::Unsupported(format!("option symbol: {e}"))),
        Instrument::Future { symbol, .. } => Err(TradierError::Unsupported(format!(
            "futures ({symbol}) are not traded at Tradier"
        ))),
    }
}

/// The instrument of a Tradier symbol: an OCC option symbol when it parses as one.
pub fn instrument(symbol: &str) -> Instrument {
    if symbol.len() >= 16
        && let Ok(i) = Instrument::from_occ(symbol)
    {
        return i;
    }
    Instrument::stock(symbol)
}

/// The underlying of an instrument (the `symbol` field of an option order).
pub fn underlying(i: &Instrument) -> String {
    match i {
        Instrument::Stock { symbol } | Instrument::Future { symbol, .. } => symbol.clone(),
        Instrument::Option(o) => o.underlying.clone(),
    }
}

fn price(v: f64, what: &str) -> Result<Price, TradierError> {
    Price::from_f64(v).map_err(|e| TradierError::Malformed(format!("{what} {v}: {e}")))
}

/// A whole quantity from Tradier's decimal one.
pub fn qty(v: f64, what: &str) -> Result<i64, TradierError> {
    if !v.is_finite() || v.fract().abs() > 1e-6 || v.abs() > 1e12 {
        return Err(TradierError::Malformed(format!(
            "{what} {v} is not a whole quantity"
        )));
    }
    Ok(v.round() as i64)
}

/// A position: `cost_basis` is the total, so the average cost per unit is
/// `cost_basis / (quantity × multiplier)`, positive for longs and shorts alike.
pub fn position(account: &AccountId, p: &WirePosition) -> Result<Position, TradierError> {
    let instrument = instrument(&p.symbol);
    let qty = qty(p.quantity, "position quantity")?;
    let mult = match &instrument {
        Instrument::Option(o) => f64::from(o.multiplier),
        _ => 1.0,
    };
    let avg = if qty == 0 {
        0.0
    } else {
        (p.cost_basis / (qty as f64 * mult)).abs()
    };
    Ok(Position {
        account: account.clone(),
        instrument,
        qty,
        avg_cost: price(avg, "cost basis")?,
    })
}

/// Our status of a Tradier status. `None`: a status we do not know (kept as the last known).
pub fn status(s: &str) -> Option<OrderStatus> {
    Some(match s {
        "pending" | "calculated" | "accepted_for_bidding" => OrderStatus::PendingSubmit,
        "open" | "held" => OrderStatus::Submitted,
        "partially_filled" => OrderStatus::PartiallyFilled,
        "filled" => OrderStatus::Filled,
        "pending_cancel" => OrderStatus::PendingCancel,
        // An expired order is over: nothing more fills.
        "canceled" | "expired" => OrderStatus::Cancelled,
        "rejected" | "error" => OrderStatus::Rejected,
        _ => return None,
    })
}

/// The side word for an order of `side`, `qty` units of `instrument` when the account holds
/// `held` of it. Tradier wants to know whether the order opens or closes: an option order
/// that would cross zero (sell 3 while long 2) is refused here, as Tradier would refuse it.
pub fn side_word(
    instrument: &Instrument,
    side: Side,
    qty: i64,
    held: i64,
) -> Result<&'static str, TradierError> {
    let closes = match side {
        Side::Buy => held < 0,
        Side::Sell => held > 0,
    };
    if closes && qty > held.abs() {
        return Err(TradierError::CrossesZero {
            symbol: instrument.label(),
            held,
            qty: side.sign() * qty,
        });
    }
    Ok(match (instrument, side, closes) {
        (Instrument::Option(_), Side::Buy, false) => "buy_to_open",
        (Instrument::Option(_), Side::Buy, true) => "buy_to_close",
        (Instrument::Option(_), Side::Sell, false) => "sell_to_open",
        (Instrument::Option(_), Side::Sell, true) => "sell_to_close",
        (_, Side::Buy, false) => "buy",
        (_, Side::Buy, true) => "buy_to_cover",
        (_, Side::Sell, true) => "sell",
        (_, Side::Sell, false) => "sell_short",
    })
}

/// Our side of a Tradier side word.
pub fn side_of(word: &str) -> Option<Side> {
    match word {
        "buy" | "buy_to_open" | "buy_to_close" | "buy_to_cover" => Some(Side::Buy),
        "sell" | "sell_short" | "sell_to_open" | "sell_to_close" => Some(Side::Sell),
        _ => None,
    }
}

fn duration(tif: Tif) -> &'static str {
    match tif {
        Tif::Day => "day",
        Tif::Gtc => "gtc",
    }
}

fn money(p: Price) -> String {
    p.to_string()
}

/// The form of a single order (`class` `equity` or `option`).
pub fn single_form(
    o: &OrderRequest,
    held: i64,
    preview: bool,
) -> Result<Vec<(String, String)>, TradierError> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_owned(), v));
    let sym = symbol(&o.instrument)?;
    match &o.instrument {
        Instrument::Option(_) => {
            put("class", "option".into());
            put("symbol", underlying(&o.instrument));
            put("option_symbol", sym);
        }
        _ => {
            put("class", "equity".into());
            put("symbol", sym);
        }
    }
    put(
        "side",
        side_word(&o.instrument, o.side, o.qty, held)?.to_owned(),
    );
    put("quantity", o.qty.to_string());
    match o.order_type {
        OrderType::Market => put("type", "market".into()),
        OrderType::Limit { limit } => {
            put("type", "limit".into());
            put("price", money(limit));
        }
        OrderType::Stop { stop } => {
            put("type", "stop".into());
            put("stop", money(stop));
        }
        OrderType::StopLimit { stop, limit } => {
            put("type", "stop_limit".into());
            put("price", money(limit));
            put("stop", money(stop));
        }
        OrderType::TrailingStop { .. } => {
            return Err(TradierError::Unsupported(
                "trailing stops are not offered by Tradier's order API".into(),
            ));
        }
    }
    put("duration", duration(o.tif).into());
    put("tag", tag(o.id));
    if preview {
        put("preview", "true".into());
    }
    Ok(f)
}

/// The form of a multileg order (`class` `multileg`, up to four option legs of one
/// underlying). A limit's net price is a `debit` when positive, a `credit` when negative,
/// `even` at zero; Tradier takes the price unsigned.
pub fn multileg_form(
    c: &ComboOrder,
    held: impl Fn(&Instrument) -> i64,
) -> Result<Vec<(String, String)>, TradierError> {
    if c.legs.len() > 4 {
        return Err(TradierError::Unsupported(format!(
            "a multileg order has at most 4 legs, this one {}",
            c.legs.len()
        )));
    }
    let mut under: Option<String> = None;
    let mut f: Vec<(String, String)> = vec![("class".into(), "multileg".into())];
    for (i, leg) in c.legs.iter().enumerate() {
        if !matches!(leg.instrument, Instrument::Option(_)) {
            return Err(TradierError::Unsupported(format!(
                "multileg orders take option legs only ({} is not one)",
                leg.instrument.label()
            )));
        }
        let u = underlying(&leg.instrument);
        if under.as_ref().is_some_and(|x| *x != u) {
            return Err(TradierError::Unsupported(
                "multileg legs must share one underlying".into(),
            ));
        }
        under = Some(u);
        let q = c.qty.saturating_mul(i64::from(leg.ratio));
        f.push((format!("option_symbol[{i}]"), symbol(&leg.instrument)?));
        f.push((
            format!("side[{i}]"),
            side_word(&leg.instrument, leg.side, q, held(&leg.instrument))?.to_owned(),
        ));
        f.push((format!("quantity[{i}]"), q.to_string()));
    }
    f.insert(1, ("symbol".into(), under.unwrap_or_default()));
    match c.order_type {
        OrderType::Market => f.push(("type".into(), "market".into())),
        OrderType::Limit { limit } => {
            let (kind, p) = if limit.is_positive() {
                ("debit", limit)
            } else if limit.raw() < 0 {
                ("credit", Price::from_raw(limit.raw().saturating_neg()))
            } else {
                ("even", limit)
            };
            f.push(("type".into(), kind.into()));
            if kind != "even" {
                f.push(("price".into(), money(p)));
            }
        }
        _ => {
            return Err(TradierError::Unsupported(
                "multileg orders are market or net limit".into(),
            ));
        }
    }
    f.push(("duration".into(), duration(c.tif).into()));
    f.push(("tag".into(), tag(c.id)));
    Ok(f)
}

/// The instrument and signed quantity of each fillable part of an order: the order itself,
/// or its legs.
pub fn parts(o: &WireOrder) -> Vec<(&WireOrder, Instrument)> {
    if o.leg.is_empty() {
        let sym = o.option_symbol.as_deref().unwrap_or(&o.symbol);
        vec![(o, instrument(sym))]
    } else {
        o.leg
            .iter()
            .map(|l| {
                let sym = l.option_symbol.as_deref().unwrap_or(&l.symbol);
                (l, instrument(sym))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    #[test]
    fn option_symbols_are_compact_occ() {
        let leg = stubs::iron_condor_combo(OrderId(1), 1, OrderType::Market).legs[0].clone();
        let s = symbol(&leg.instrument).unwrap();
        assert!(!s.contains(' '), "{s}");
        assert_eq!(instrument(&s), leg.instrument);
        assert_eq!(instrument("SPY"), Instrument::stock("SPY"));
    }

    #[test]
    fn sides_say_open_or_close_and_never_cross_zero() {
        let leg = stubs::iron_condor_combo(OrderId(1), 1, OrderType::Market).legs[0].clone();
        let opt = leg.instrument;
        assert_eq!(side_word(&opt, Side::Sell, 1, 0).unwrap(), "sell_to_open");
        assert_eq!(side_word(&opt, Side::Buy, 1, -2).unwrap(), "buy_to_close");
        assert_eq!(side_word(&opt, Side::Sell, 2, 2).unwrap(), "sell_to_close");
        let e = side_word(&opt, Side::Sell, 3, 2).unwrap_err();
        assert_eq!(e.code(), "tradier.crosses_zero");
        let stock = Instrument::stock("SPY");
        assert_eq!(side_word(&stock, Side::Sell, 100, 0).unwrap(), "sell_short");
        assert_eq!(
            side_word(&stock, Side::Buy, 100, -100).unwrap(),
            "buy_to_cover"
        );
        assert_eq!(side_word(&stock, Side::Sell, 100, 100).unwrap(), "sell");
    }

    #[test]
    fn a_credit_condor_is_a_credit_multileg() {
        let c = stubs::iron_condor_combo(
            OrderId(7),
            2,
            OrderType::Limit {
                limit: Price::parse("-1.20").unwrap(),
            },
        );
        let f = multileg_form(&c, |_| 0).unwrap();
        let get = |k: &str| f.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("class"), Some("multileg"));
        assert_eq!(get("type"), Some("credit"));
        assert_eq!(get("price"), Some("1.20"));
        assert_eq!(get("tag"), Some("tg-7"));
        assert_eq!(get("quantity[0]"), Some("2"));
        assert!(get("side[3]").is_some());
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(order_id_of_tag(Some(&tag(OrderId(42)))), Some(OrderId(42)));
        assert_eq!(order_id_of_tag(Some("mine")), None);
        assert_eq!(order_id_of_tag(None), None);
    }
}
