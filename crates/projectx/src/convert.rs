//! Model ↔ ProjectX: contract ids, sides, statuses, order types.

use crate::error::ProjectxError;
use chrono::{Datelike, NaiveDate};
use tradeguard_model::futures::{self, FutureSpec};
use tradeguard_model::{Instrument, OrderId, OrderStatus, Side};

/// The prefix of the `customTag` that carries our order id (`tg-1234`). ProjectX refuses a
/// tag already used on the account, so ids are never reused.
pub const TAG_PREFIX: &str = "tg-";

/// The tag of an order id.
pub fn tag(id: OrderId) -> String {
    format!("{TAG_PREFIX}{}", id.0)
}

/// The order id of a tag, when it is ours.
pub fn order_id_of_tag(tag: Option<&str>) -> Option<OrderId> {
    tag?.strip_prefix(TAG_PREFIX)?.parse().ok().map(OrderId)
}

/// The instrument of a contract id (`CON.F.US.MNQ.Z25`): root MNQ, December 2025, expiring
/// on the third Friday for the equity index products; the multiplier from the product's
/// specification, or from the contract's tick value ÷ tick size when it is not known here.
pub fn instrument(
    contract_id: &str,
    tick: Option<(f64, f64)>,
) -> Result<Instrument, ProjectxError> {
    let bad = || {
        ProjectxError::Malformed(format!(
            "contract id {contract_id:?} is not CON.F.<region>.<root>.<month><yy>"
        ))
    };
    let parts: Vec<&str> = contract_id.split('.').collect();
    let [_, _, _, root, month] = parts.as_slice() else {
        return Err(bad());
    };
    let mut chars = month.chars();
    let code = chars.next().ok_or_else(bad)?;
    let yy: i32 = chars.as_str().parse().map_err(|_| bad())?;
    let m = futures::month_of_code(code).ok_or_else(bad)?;
    let year = 2000 + yy;
    let spec: Option<&FutureSpec> = futures::spec(root);
    let expiry = match spec {
        Some(s) if s.third_friday => futures::third_friday(year, m),
        // Unknown products: the contract month's last day stands for the expiry.
        _ => NaiveDate::from_ymd_opt(year, m, 1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .and_then(|d| d.pred_opt()),
    }
    .ok_or_else(bad)?;
    let multiplier = match (spec, tick) {
        (Some(s), _) => s.multiplier,
        (None, Some((size, value))) if size > 0.0 && value > 0.0 => (value / size).round() as u32,
        _ => {
            return Err(ProjectxError::Unsupported(format!(
                "{root}: no tick size and value known for this product"
            )));
        }
    };
    Ok(Instrument::Future {
        symbol: (*root).to_owned(),
        expiry,
        multiplier,
    })
}

/// The contract id of a future (`CON.F.US.<root>.<month code><yy>`).
pub fn contract_id(i: &Instrument) -> Result<String, ProjectxError> {
    match i {
        Instrument::Future { symbol, expiry, .. } => {
            let code = futures::code_of_month(expiry.month())
                .ok_or_else(|| ProjectxError::Unsupported(format!("{symbol}: bad expiry")))?;
            Ok(format!(
                "CON.F.US.{symbol}.{code}{:02}",
                expiry.year() % 100
            ))
        }
        other => Err(ProjectxError::Unsupported(format!(
            "{} is not a future: ProjectX trades futures only",
            other.label()
        ))),
    }
}

/// 0 buy (bid), 1 sell (ask).
pub fn side_code(s: Side) -> i64 {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Our side of ProjectX's.
pub fn side_of(code: i64) -> Option<Side> {
    match code {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}

/// Our status of ProjectX's; `None` for 0 (none) and anything unknown.
pub fn status(code: i64) -> Option<OrderStatus> {
    Some(match code {
        1 => OrderStatus::Submitted,
        2 => OrderStatus::Filled,
        3 | 4 => OrderStatus::Cancelled,
        5 => OrderStatus::Rejected,
        6 => OrderStatus::PendingSubmit,
        7 => OrderStatus::PendingCancel,
        // Suspended: held by the venue, not working, not over.
        8 => OrderStatus::Inactive,
        _ => return None,
    })
}

/// Whether an `Order/place` refusal says the order does not exist. The codes
/// (`projectx-client`'s `error_codes.rs`, from the provider's Swagger): 1 AccountNotFound,
/// 2 OrderRejected, 3 InsufficientFunds, 4 AccountViolation, 5 OutsideTradingHours,
/// 8 ContractNotFound, 9 ContractNotActive, 10 AccountRejected are final; 6 OrderPending,
/// 7 UnknownError and any code not in the table may leave an order behind.
pub fn place_refusal_is_final(code: i64) -> bool {
    matches!(code, 1..=5 | 8..=10)
}

/// The signed quantity of a position (`type` 1 long, 2 short; size unsigned).
pub fn signed(position_type: i64, size: i64) -> i64 {
    if position_type == 2 {
        -size.abs()
    } else {
        size.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_ids_round_trip() {
        let i = instrument("CON.F.US.MNQ.Z25", None).unwrap();
        assert_eq!(
            i,
            Instrument::Future {
                symbol: "MNQ".into(),
                expiry: NaiveDate::from_ymd_opt(2025, 12, 19).unwrap(),
                multiplier: 2
            }
        );
        assert_eq!(contract_id(&i).unwrap(), "CON.F.US.MNQ.Z25");
        let cl = instrument("CON.F.US.CLE.F26", Some((0.01, 10.0))).unwrap();
        assert_eq!(cl.multiplier(), 1000);
        assert!(instrument("CON.F.US.XYZ.F26", None).is_err());
        assert!(instrument("MNQZ5", None).is_err());
        assert!(contract_id(&Instrument::stock("SPY")).is_err());
        assert_eq!(signed(2, 3), -3);
        assert_eq!(status(8), Some(OrderStatus::Inactive));
        assert!(place_refusal_is_final(2) && place_refusal_is_final(10));
        assert!(
            !place_refusal_is_final(6) && !place_refusal_is_final(7) && !place_refusal_is_final(11)
        );
        assert_eq!(order_id_of_tag(Some(&tag(OrderId(9)))), Some(OrderId(9)));
    }
}
