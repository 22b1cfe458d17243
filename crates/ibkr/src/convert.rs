//! Conversions between Tradeguard model types and `ibapi` types: contracts, orders, order
//! status, executions, positions, decimals and IB time strings.
//!
//! IB sends prices as `f64` and account values as decimal text; both become fixed-point here
//! (rounded half away from zero to 4 decimals) and nowhere else.

use crate::error::IbError;
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use ibapi::contracts::{
    ComboLeg as IbComboLeg, Contract, Currency, Exchange, LegAction, OptionRight, SecurityType,
    Symbol,
};
use ibapi::orders::{Action, Order, OrderStatusKind, TimeInForce};
use tradeguard_model::{
    AccountId, ComboOrder, ExecId, Execution, ExerciseStyle, Instrument, Liquidity, Money,
    OptionClass, OptionContract, OrderId, OrderRequest, OrderStatus, OrderType, Price, Right, Side,
    Tif, Timestamp, Trail,
};

/// `order_ref` stamped on every order this adapter places.
pub const ORDER_REF: &str = "tradeguard";

/// OCC roots whose IB symbol differs (root → IB symbol); the root is the trading class.
const ROOT_TO_SYMBOL: [(&str, &str); 4] = [
    ("SPXW", "SPX"),
    ("NDXP", "NDX"),
    ("RUTW", "RUT"),
    ("VIXW", "VIX"),
];
/// Cash-settled European broad-index roots.
const BROAD_INDEX: [&str; 10] = [
    "SPX", "SPXW", "NDX", "NDXP", "RUT", "RUTW", "XSP", "VIX", "VIXW", "DJX",
];
/// Futures roots with their IB exchange.
const FUTURE_EXCHANGE: [(&str, &str); 8] = [
    ("ES", "CME"),
    ("MES", "CME"),
    ("NQ", "CME"),
    ("MNQ", "CME"),
    ("RTY", "CME"),
    ("M2K", "CME"),
    ("YM", "CBOT"),
    ("MYM", "CBOT"),
];

/// An IB `f64` price as a fixed-point [`Price`].
pub fn price(v: f64) -> Result<Price, IbError> {
    Price::from_f64(v).map_err(|e| IbError::Conversion(format!("price {v}: {e}")))
}

/// An IB `f64` money value as fixed-point [`Money`].
pub fn money(v: f64) -> Result<Money, IbError> {
    Money::from_f64(v).map_err(|e| IbError::Conversion(format!("money {v}: {e}")))
}

/// Parses IB decimal text ("12345.678901", "-3", "1.5E3" is rejected) to 4 decimals, rounding
/// half away from zero.
pub fn money_text(s: &str) -> Result<Money, IbError> {
    let bad = || IbError::Conversion(format!("not a decimal: {s:?}"));
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int_v: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut frac4: i128 = 0;
    for i in 0..4 {
        let d = frac.as_bytes().get(i).map_or(0, |b| i128::from(b - b'0'));
        frac4 = frac4 * 10 + d;
    }
    let round_up = frac.as_bytes().get(4).is_some_and(|b| *b >= b'5');
    let mut raw = int_v * 10_000 + frac4 + i128::from(round_up);
    if neg {
        raw = -raw;
    }
    i64::try_from(raw)
        .map(Money::from_raw)
        .map_err(|_| IbError::Conversion(format!("out of range: {s:?}")))
}

/// An IB quantity (`f64`, whole units for stock/options/futures) as `i64`.
pub fn qty(v: f64) -> Result<i64, IbError> {
    if !v.is_finite() || v.fract() != 0.0 || v.abs() > 1e15 {
        return Err(IbError::Conversion(format!("quantity {v} is not whole")));
    }
    // Whole and within ±1e15, so the cast is exact.
    Ok(v as i64)
}

fn ib_symbol(root: &str) -> &str {
    ROOT_TO_SYMBOL
        .iter()
        .find(|(r, _)| *r == root)
        .map_or(root, |(_, s)| s)
}

/// The IB contract for an instrument (exchange SMART, USD; futures on their home exchange).
pub fn contract(i: &Instrument) -> Result<Contract, IbError> {
    Ok(match i {
        Instrument::Stock { symbol } => Contract {
            symbol: Symbol::from(symbol.as_str()),
            security_type: SecurityType::Stock,
            exchange: Exchange::from("SMART"),
            currency: Currency::from("USD"),
            ..Default::default()
        },
        Instrument::Option(o) => Contract {
            symbol: Symbol::from(ib_symbol(&o.underlying)),
            security_type: SecurityType::Option,
            last_trade_date_or_contract_month: o.expiry.format("%Y%m%d").to_string(),
            strike: o.strike.to_f64(),
            right: Some(match o.right {
                Right::Call => OptionRight::Call,
                Right::Put => OptionRight::Put,
            }),
            multiplier: o.multiplier.to_string(),
            exchange: Exchange::from("SMART"),
            currency: Currency::from("USD"),
            trading_class: o.underlying.clone(),
            ..Default::default()
        },
        Instrument::Future {
            symbol,
            expiry,
            multiplier,
        } => {
            let exchange = FUTURE_EXCHANGE
                .iter()
                .find(|(r, _)| r == symbol)
                .map(|(_, e)| *e)
                .ok_or_else(|| {
                    IbError::Unsupported(format!("future root {symbol}: exchange unknown"))
                })?;
            Contract {
                symbol: Symbol::from(symbol.as_str()),
                security_type: SecurityType::Future,
                last_trade_date_or_contract_month: expiry.format("%Y%m%d").to_string(),
                multiplier: multiplier.to_string(),
                exchange: Exchange::from(exchange),
                currency: Currency::from("USD"),
                ..Default::default()
            }
        }
    })
}

fn parse_expiry(s: &str) -> Result<NaiveDate, IbError> {
    let d = s.get(..8).unwrap_or(s);
    NaiveDate::parse_from_str(d, "%Y%m%d")
        .map_err(|_| IbError::Conversion(format!("expiry {s:?} is not YYYYMMDD")))
}

fn multiplier(s: &str, default: u32) -> Result<u32, IbError> {
    if s.is_empty() {
        return Ok(default);
    }
    let v: f64 = s
        .parse()
        .map_err(|_| IbError::Conversion(format!("multiplier {s:?}")))?;
    if v.fract() != 0.0 || !(1.0..=1_000_000.0).contains(&v) {
        return Err(IbError::Conversion(format!("multiplier {s:?}")));
    }
    // Whole and in range, so the cast is exact.
    Ok(v as u32)
}

/// The instrument an IB contract describes (STK, OPT, FUT). BAG and others are unsupported.
pub fn instrument(c: &Contract) -> Result<Instrument, IbError> {
    match c.security_type {
        SecurityType::Stock => Ok(Instrument::stock(c.symbol.as_str())),
        SecurityType::Option => {
            let root = if c.trading_class.is_empty() {
                c.symbol.as_str().to_owned()
            } else {
                c.trading_class.clone()
            };
            let right = match c.right {
                Some(OptionRight::Call) => Right::Call,
                Some(OptionRight::Put) => Right::Put,
                None => return Err(IbError::Conversion(format!("option {root} without right"))),
            };
            let index = BROAD_INDEX.contains(&root.as_str());
            Ok(Instrument::Option(OptionContract {
                expiry: parse_expiry(&c.last_trade_date_or_contract_month)?,
                right,
                strike: price(c.strike)?,
                multiplier: multiplier(&c.multiplier, 100)?,
                style: if index {
                    ExerciseStyle::European
                } else {
                    ExerciseStyle::American
                },
                class: if index {
                    OptionClass::BroadIndex
                } else {
                    OptionClass::Equity
                },
                underlying: root,
            }))
        }
        SecurityType::Future => Ok(Instrument::Future {
            symbol: c.symbol.as_str().to_owned(),
            expiry: parse_expiry(&c.last_trade_date_or_contract_month)?,
            multiplier: multiplier(&c.multiplier, 1)?,
        }),
        ref other => Err(IbError::Unsupported(format!(
            "security type {other:?} ({})",
            c.symbol.as_str()
        ))),
    }
}

fn action(side: Side) -> Action {
    match side {
        Side::Buy => Action::Buy,
        Side::Sell => Action::Sell,
    }
}

fn tif(t: Tif) -> TimeInForce {
    match t {
        Tif::Day => TimeInForce::Day,
        Tif::Gtc => TimeInForce::GoodTillCanceled,
    }
}

fn apply_type(o: &mut Order, t: OrderType) {
    match t {
        OrderType::Market => o.order_type = "MKT".into(),
        OrderType::Limit { limit } => {
            o.order_type = "LMT".into();
            o.limit_price = Some(limit.to_f64());
        }
        OrderType::Stop { stop } => {
            o.order_type = "STP".into();
            o.aux_price = Some(stop.to_f64());
        }
        OrderType::StopLimit { stop, limit } => {
            o.order_type = "STP LMT".into();
            o.limit_price = Some(limit.to_f64());
            o.aux_price = Some(stop.to_f64());
        }
        OrderType::TrailingStop {
            trail: Trail::Amount(a),
        } => {
            o.order_type = "TRAIL".into();
            o.aux_price = Some(a.to_f64());
        }
        OrderType::TrailingStop {
            trail: Trail::Percent(bps),
        } => {
            o.order_type = "TRAIL".into();
            o.trailing_percent = Some(f64::from(bps) / 100.0);
        }
    }
}

fn ib_order_id(id: OrderId) -> Result<i32, IbError> {
    i32::try_from(id.0)
        .map_err(|_| IbError::Unsupported(format!("order id {id} exceeds IB's 32-bit ids")))
}

/// The IB contract and order for a single order.
pub fn single_order(r: &OrderRequest, what_if: bool) -> Result<(i32, Contract, Order), IbError> {
    let id = ib_order_id(r.id)?;
    let mut o = Order {
        order_id: id,
        action: action(r.side),
        total_quantity: r.qty as f64,
        tif: tif(r.tif),
        outside_rth: r.outside_rth,
        account: r.account.0.clone(),
        order_ref: ORDER_REF.into(),
        what_if,
        transmit: true,
        ..Default::default()
    };
    apply_type(&mut o, r.order_type);
    Ok((id, contract(&r.instrument)?, o))
}

/// The order of an open-order report — TWS's own copy of an order — as the request that placed
/// it: how a session learns the working orders an earlier session (before a restart or a crash)
/// placed. Single orders only (a combo's legs would need their contracts looked up); an order
/// type Tradeguard does not place is an error.
pub fn reported_order(
    order_id: i32,
    contract: &Contract,
    order: &Order,
) -> Result<OrderRequest, IbError> {
    if contract.security_type == SecurityType::Spread {
        return Err(IbError::Unsupported(format!(
            "combo order {order_id} from an earlier session"
        )));
    }
    let side = match order.action {
        Action::Buy => Side::Buy,
        Action::Sell | Action::SellShort | Action::SellLong => Side::Sell,
    };
    let px = |v: Option<f64>, what: &str| {
        v.ok_or_else(|| IbError::Conversion(format!("order {order_id}: {what} missing")))
            .and_then(price)
    };
    let order_type = match order.order_type.as_str() {
        "MKT" => OrderType::Market,
        "LMT" => OrderType::Limit {
            limit: px(order.limit_price, "limit price")?,
        },
        "STP" => OrderType::Stop {
            stop: px(order.aux_price, "stop price")?,
        },
        "STP LMT" => OrderType::StopLimit {
            stop: px(order.aux_price, "stop price")?,
            limit: px(order.limit_price, "limit price")?,
        },
        "TRAIL" => match (order.trailing_percent, order.aux_price) {
            (Some(p), _) if p > 0.0 => OrderType::TrailingStop {
                trail: Trail::Percent((p * 100.0).round() as u32),
            },
            (_, a) => OrderType::TrailingStop {
                trail: Trail::Amount(px(a, "trailing amount")?),
            },
        },
        other => {
            return Err(IbError::Unsupported(format!(
                "order {order_id}: order type {other:?}"
            )));
        }
    };
    Ok(OrderRequest {
        id: OrderId(i64::from(order_id)),
        account: AccountId::new(order.account.as_str()),
        instrument: instrument(contract)?,
        side,
        qty: qty(order.total_quantity)?,
        order_type,
        tif: match order.tif {
            TimeInForce::GoodTillCanceled => Tif::Gtc,
            _ => Tif::Day,
        },
        outside_rth: order.outside_rth,
    })
}

/// The IB BAG contract and order for a combo; `con_ids` are the legs' contract ids (leg order).
/// The BAG carries the legs' common IB symbol: TWS rejects combos without one.
pub fn combo_order(c: &ComboOrder, con_ids: &[i32]) -> Result<(i32, Contract, Order), IbError> {
    let id = ib_order_id(c.id)?;
    let first = c
        .legs
        .first()
        .ok_or_else(|| IbError::Unsupported("combo without legs".into()))?;
    let symbol = ib_symbol(first.instrument.underlying()).to_owned();
    if c.legs
        .iter()
        .any(|l| ib_symbol(l.instrument.underlying()) != symbol)
    {
        return Err(IbError::Unsupported(
            "combo legs must share one underlying".into(),
        ));
    }
    if con_ids.len() != c.legs.len() {
        return Err(IbError::Conversion("missing leg contract ids".into()));
    }
    let legs = c
        .legs
        .iter()
        .zip(con_ids)
        .map(|(l, &con)| {
            Ok(IbComboLeg {
                contract_id: con,
                ratio: i32::try_from(l.ratio)
                    .map_err(|_| IbError::Unsupported(format!("leg ratio {}", l.ratio)))?,
                action: match l.side {
                    Side::Buy => LegAction::Buy,
                    Side::Sell => LegAction::Sell,
                },
                exchange: "SMART".into(),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, IbError>>()?;
    let bag = Contract {
        symbol: Symbol::from(symbol.as_str()),
        security_type: SecurityType::Spread,
        exchange: Exchange::from("SMART"),
        currency: Currency::from("USD"),
        combo_legs: legs,
        ..Default::default()
    };
    let mut o = Order {
        order_id: id,
        action: Action::Buy,
        total_quantity: c.qty as f64,
        tif: tif(c.tif),
        account: c.account.0.clone(),
        order_ref: ORDER_REF.into(),
        transmit: true,
        ..Default::default()
    };
    apply_type(&mut o, c.order_type);
    Ok((id, bag, o))
}

/// The id of the execution `exec_id` reports or corrects. IB reports a correction of an
/// execution as another execution whose id differs only in the number after the final period
/// ("….01" is the original, "….02" its first correction; TWS API "Executions and
/// Commissions"). Mapping a correction onto the original's id makes it one fill, never two.
/// <https://interactivebrokers.github.io/tws-api/executions_commissions.html>
pub fn exec_original(exec_id: &str) -> String {
    match exec_id.rsplit_once('.') {
        Some((base, n))
            if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{base}.01")
        }
        _ => exec_id.to_owned(),
    }
}

/// Whether `exec_id` is a correction of an earlier execution (its correction number is not 1).
pub fn is_correction(exec_id: &str) -> bool {
    exec_id
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}

/// A bid, ask or last price from a tick: IB sends -1 (any negative) when it has no data for
/// that side, which is no price at all. Zero is a price (an option nobody bids for).
pub fn market_price(v: f64) -> Result<Option<Price>, IbError> {
    if v < 0.0 {
        return Ok(None);
    }
    price(v).map(Some)
}

/// Maps an IB status. `Submitted` with a fill becomes `PartiallyFilled` (or `Filled` with
/// nothing remaining: IB sends `Submitted` with remaining 0 before `Filled`).
///
/// Two IB states are *not* the end of the order, whatever their names suggest:
/// - `Inactive`: "accepted by the system … but currently the order is not working, due to
///   system, exchange or other issues. When the order becomes active, the order status … will
///   change" (TWS Reference, Order Status:
///   <https://www.interactivebrokers.com/php/webhelp/TWS_Reference_Information/orderStatus.htm>).
///   A rejection that ends the order comes as its own notice (201 …), which ends it there.
/// - `ApiCancelled`: "after an order has been submitted and before it has been acknowledged,
///   an API client can request its cancelation, producing this state" (TWS API, Order
///   Submission: <https://interactivebrokers.github.io/tws-api/order_submission.html>): our
///   cancel is under way, as `PendingCancel`; the cancel's answer (Cancelled, 202, 10148, or a
///   fill) ends it. Ending it here could send a second exit while the first still fills.
pub fn status(kind: &OrderStatusKind, filled: i64, remaining: i64) -> Result<OrderStatus, IbError> {
    Ok(match kind {
        OrderStatusKind::ApiPending | OrderStatusKind::PendingSubmit => OrderStatus::PendingSubmit,
        OrderStatusKind::PreSubmitted | OrderStatusKind::Submitted => {
            if filled > 0 && remaining > 0 {
                OrderStatus::PartiallyFilled
            } else if filled > 0 && remaining == 0 {
                OrderStatus::Filled
            } else {
                OrderStatus::Submitted
            }
        }
        OrderStatusKind::PendingCancel | OrderStatusKind::ApiCancelled => {
            OrderStatus::PendingCancel
        }
        OrderStatusKind::Cancelled => OrderStatus::Cancelled,
        OrderStatusKind::Filled => OrderStatus::Filled,
        OrderStatusKind::Inactive => OrderStatus::Inactive,
        OrderStatusKind::Unknown(s) => {
            return Err(IbError::Conversion(format!("unknown order status {s:?}")));
        }
    })
}

/// Parses IB execution times: `YYYYMMDD HH:MM:SS <zone>` or `YYYYMMDD-HH:MM:SS` (UTC). The
/// zone is the one TWS / IB Gateway is set to: any IANA name (`US/Eastern`, `America/Chicago`,
/// `Europe/London`, `Asia/Hong_Kong`, ...), its daylight-saving rules applied, and the US
/// abbreviations `EST`/`EDT`/`CST`/`CDT`/`MST`/`MDT`/`PST`/`PDT` (read as their region's zone).
/// See IB's TWS API reference, "Execution": `time` is in the TWS time zone.
pub fn exec_time(s: &str) -> Result<Timestamp, IbError> {
    let bad = || IbError::Conversion(format!("execution time {s:?}"));
    let t = s.trim();
    let (stamp, zone) = if t.len() >= 17 && t.as_bytes().get(8) == Some(&b'-') {
        (t.get(..17).ok_or_else(bad)?.replacen('-', " ", 1), "UTC")
    } else {
        let stamp = t.get(..17).ok_or_else(bad)?.to_owned();
        (stamp, t.get(17..).unwrap_or("").trim())
    };
    let local = NaiveDateTime::parse_from_str(&stamp, "%Y%m%d %H:%M:%S").map_err(|_| bad())?;
    let name = match zone {
        "" | "UTC" | "GMT" => "Etc/UTC",
        "EST" | "EDT" | "EST5EDT" => "America/New_York",
        "CST" | "CDT" | "CST6CDT" => "America/Chicago",
        "MST" | "MDT" => "America/Denver",
        "PST" | "PDT" => "America/Los_Angeles",
        other => other,
    };
    let tz: chrono_tz::Tz = name
        .parse()
        .map_err(|_| IbError::Conversion(format!("execution time zone {zone:?}")))?;
    // A time repeated by the autumn change is read as its first occurrence; one the spring
    // change skips cannot be a real stamp and is refused.
    let dt = tz.from_local_datetime(&local).earliest().ok_or_else(|| {
        IbError::Conversion(format!("execution time {s:?} does not exist in {zone}"))
    })?;
    Timestamp::from_datetime(dt.with_timezone(&Utc))
        .map_err(|e| IbError::Conversion(format!("execution time {s:?}: {e}")))
}

/// An IB execution as a model [`Execution`] (commission joined later). `Ok(None)` for the
/// execution IB reports for a combo (BAG) as a whole: fills are reported per leg.
pub fn execution(
    c: &Contract,
    e: &ibapi::orders::Execution,
    received: Timestamp,
) -> Result<Option<Execution>, IbError> {
    if c.security_type == SecurityType::Spread {
        return Ok(None);
    }
    // A fill must never be dropped over its time stamp: fall back to the receipt time.
    let ts = if e.time.is_empty() {
        received
    } else {
        exec_time(&e.time).unwrap_or_else(|err| {
            tracing::warn!(exec = %e.execution_id, "{err}; using receipt time");
            received
        })
    };
    Ok(Some(Execution {
        exec_id: ExecId::new(exec_original(&e.execution_id)),
        order_id: (e.order_id > 0).then_some(OrderId(i64::from(e.order_id))),
        account: AccountId::new(e.account_number.clone()),
        instrument: instrument(c)?,
        side: match e.side {
            ibapi::orders::ExecutionSide::Bought => Side::Buy,
            ibapi::orders::ExecutionSide::Sold => Side::Sell,
        },
        qty: qty(e.shares)?,
        price: price(e.price)?,
        ts,
        commission: None,
        liquidity: match e.last_liquidity {
            ibapi::orders::Liquidity::AddedLiquidity => Some(Liquidity::Maker),
            ibapi::orders::Liquidity::RemovedLiquidity => Some(Liquidity::Taker),
            _ => None,
        },
    }))
}

/// An IB position as a model position. IB's average cost is per contract; the model's is per
/// unit (divided by the multiplier).
pub fn position(p: &ibapi::accounts::Position) -> Result<tradeguard_model::Position, IbError> {
    let instrument = instrument(&p.contract)?;
    let per_unit = p.average_cost / f64::from(instrument.multiplier());
    Ok(tradeguard_model::Position {
        account: AccountId::new(p.account.clone()),
        qty: qty(p.position)?,
        avg_cost: price(per_unit)?,
        instrument,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    #[test]
    fn money_text_rounds_to_four_decimals() {
        assert_eq!(
            money_text("100000.25").unwrap(),
            Money::from_raw(1_000_002_500)
        );
        assert_eq!(money_text("-1.00005").unwrap(), Money::from_raw(-10_001));
        assert_eq!(money_text("1.00004").unwrap(), Money::from_raw(10_000));
        assert_eq!(money_text("7").unwrap(), Money::from_raw(70_000));
        assert_eq!(money_text(".5").unwrap(), Money::from_raw(5_000));
        for bad in ["", "-", "1e5", "12a", "1.2.3"] {
            assert_eq!(
                money_text(bad).unwrap_err().code(),
                "ib.conversion",
                "{bad}"
            );
        }
    }

    #[test]
    fn option_round_trips_through_contract() {
        let put = stubs::put(440);
        let c = contract(&put).unwrap();
        assert_eq!(c.security_type, SecurityType::Option);
        assert_eq!(c.last_trade_date_or_contract_month, "20250117");
        assert_eq!(instrument(&c).unwrap(), put);
        let spxw = Instrument::Option(OptionContract {
            underlying: "SPXW".into(),
            style: ExerciseStyle::European,
            class: OptionClass::BroadIndex,
            ..stubs::call(5000).as_option().unwrap().clone()
        });
        let c = contract(&spxw).unwrap();
        assert_eq!(c.symbol.as_str(), "SPX");
        assert_eq!(c.trading_class, "SPXW");
        assert_eq!(instrument(&c).unwrap(), spxw);
    }

    #[test]
    fn order_types_map_to_ib_fields() {
        let p = |s: &str| Price::parse(s).unwrap();
        let mut r = stubs::order(
            Side::Sell,
            2,
            OrderType::StopLimit {
                stop: p("2"),
                limit: p("1.9"),
            },
        );
        let (_, _, o) = single_order(&r, false).unwrap();
        assert_eq!(o.order_type, "STP LMT");
        assert_eq!((o.aux_price, o.limit_price), (Some(2.0), Some(1.9)));
        assert_eq!(o.action, Action::Sell);
        r.order_type = OrderType::TrailingStop {
            trail: Trail::Percent(150),
        };
        let (_, _, o) = single_order(&r, true).unwrap();
        assert_eq!(
            (o.order_type.as_str(), o.trailing_percent, o.what_if),
            ("TRAIL", Some(1.5), true)
        );
        r.id = OrderId(i64::from(i32::MAX) + 1);
        assert_eq!(
            single_order(&r, false).unwrap_err().code(),
            "ib.unsupported"
        );
    }

    #[test]
    fn combo_sets_symbol_and_legs() {
        let c = stubs::iron_condor_combo(
            OrderId(7),
            1,
            OrderType::Limit {
                limit: Price::parse("-1.2").unwrap(),
            },
        );
        let ids: Vec<i32> = (1..=c.legs.len() as i32).collect();
        let (id, bag, o) = combo_order(&c, &ids).unwrap();
        assert_eq!(id, 7);
        assert_eq!(bag.symbol.as_str(), "SPY");
        assert_eq!(bag.security_type, SecurityType::Spread);
        assert_eq!(bag.combo_legs.len(), c.legs.len());
        assert_eq!(o.limit_price, Some(-1.2));
        assert_eq!(
            combo_order(&c, &ids[1..]).unwrap_err().code(),
            "ib.conversion"
        );
    }

    #[test]
    fn statuses_map() {
        use OrderStatusKind as K;
        assert_eq!(
            status(&K::Submitted, 1, 2).unwrap(),
            OrderStatus::PartiallyFilled
        );
        assert_eq!(
            status(&K::PreSubmitted, 0, 2).unwrap(),
            OrderStatus::Submitted
        );
        // Neither is the end of the order (see `status`).
        assert_eq!(
            status(&K::ApiCancelled, 0, 2).unwrap(),
            OrderStatus::PendingCancel
        );
        assert_eq!(status(&K::Inactive, 0, 2).unwrap(), OrderStatus::Inactive);
        assert_eq!(status(&K::Submitted, 2, 0).unwrap(), OrderStatus::Filled);
        assert_eq!(status(&K::Submitted, 0, 0).unwrap(), OrderStatus::Submitted);
        assert_eq!(
            status(&K::Unknown("X".into()), 0, 2).unwrap_err().code(),
            "ib.conversion"
        );
    }

    #[test]
    fn exec_times_parse_with_zones() {
        let utc = exec_time("20250113 15:00:00 UTC").unwrap();
        assert_eq!(utc, Timestamp::from_secs(1_736_780_400));
        assert_eq!(exec_time("20250113-15:00:00").unwrap(), utc);
        // 10:00 New York in January is 15:00 UTC; in July it is 14:00 UTC.
        assert_eq!(exec_time("20250113 10:00:00 US/Eastern").unwrap(), utc);
        let july = exec_time("20250714 10:00:00 America/New_York").unwrap();
        assert_eq!(july, exec_time("20250714 14:00:00 UTC").unwrap());
        // Any zone TWS can be set to, with its own daylight saving.
        assert_eq!(
            exec_time("20250113 10:00:00 Asia/Tokyo").unwrap(),
            exec_time("20250113 01:00:00 UTC").unwrap()
        );
        assert_eq!(
            exec_time("20250714 10:00:00 Europe/London").unwrap(),
            exec_time("20250714 09:00:00 UTC").unwrap()
        );
        assert_eq!(
            exec_time("20250113 10:00:00 Mars/Olympus")
                .unwrap_err()
                .code(),
            "ib.conversion"
        );
        // 02:30 on 9 March 2025 does not exist in New York (the clocks jump to 03:00).
        assert!(exec_time("20250309 02:30:00 US/Eastern").is_err());
        assert!(exec_time("garbage").is_err());
    }
}
