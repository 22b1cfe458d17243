//! Orders: single and combo order requests, their validation, status and status updates.

use crate::clock::Timestamp;
use crate::ids::{AccountId, OrderId};
use crate::instrument::Instrument;
use crate::money::Price;
use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Buy (increase a long / reduce a short).
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// +1 for buy, −1 for sell.
    pub fn sign(self) -> i64 {
        match self {
            Self::Buy => 1,
            Self::Sell => -1,
        }
    }
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

/// Trailing-stop distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trail {
    /// Fixed distance in price.
    Amount(Price),
    /// Percentage of the reference price in basis points (100 = 1 %).
    Percent(u32),
}

/// Order type with its prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderType {
    /// Fill at the market.
    Market,
    /// Fill at `limit` or better.
    Limit {
        /// Limit price (for combos: net price, negative = credit).
        limit: Price,
    },
    /// Becomes a market order once the market trades through `stop`.
    Stop {
        /// Trigger price.
        stop: Price,
    },
    /// Becomes a limit order at `limit` once the market trades through `stop`.
    StopLimit {
        /// Trigger price.
        stop: Price,
        /// Limit after triggering.
        limit: Price,
    },
    /// Stop that follows the market at a distance.
    TrailingStop {
        /// Distance.
        trail: Trail,
    },
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tif {
    /// Cancelled at the end of the regular session.
    Day,
    /// Good till cancelled.
    Gtc,
}

/// A single-instrument order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Broker order id (from [`crate::Broker::next_order_id`]).
    pub id: OrderId,
    /// Account.
    pub account: AccountId,
    /// What to trade.
    pub instrument: Instrument,
    /// Buy or sell.
    pub side: Side,
    /// Quantity, > 0.
    pub qty: i64,
    /// Type and prices.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: Tif,
    /// Allow triggering/filling outside regular trading hours.
    pub outside_rth: bool,
}

/// One leg of a combo order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComboLeg {
    /// Leg instrument.
    pub instrument: Instrument,
    /// Leg side when the combo is bought.
    pub side: Side,
    /// Leg units per combo unit, > 0.
    pub ratio: u32,
}

/// A multi-leg order filled as one package (natively or by the venue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComboOrder {
    /// Broker order id.
    pub id: OrderId,
    /// Account.
    pub account: AccountId,
    /// Legs (distinct instruments).
    pub legs: Vec<ComboLeg>,
    /// Number of combo units, > 0.
    pub qty: i64,
    /// Market, or Limit on the net price per combo unit (per share; positive = debit paid,
    /// negative = credit received).
    pub order_type: OrderType,
    /// Time in force.
    pub tif: Tif,
}

/// Invalid order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Quantity is zero or negative.
    #[error("order quantity must be > 0, got {0}")]
    NonPositiveQty(i64),
    /// A limit/stop/trail price is zero or negative.
    #[error("{field} price must be > 0, got {price}")]
    NonPositivePrice {
        /// Which price.
        field: &'static str,
        /// The value.
        price: Price,
    },
    /// Stop-limit whose limit cannot fill after triggering (buy: limit < stop; sell: limit > stop).
    #[error("stop-limit inconsistent: {side:?} stop {stop} limit {limit}")]
    StopLimitInconsistent {
        /// Order side.
        side: Side,
        /// Stop price.
        stop: Price,
        /// Limit price.
        limit: Price,
    },
    /// Trailing percent outside 1..=9999 bps.
    #[error("trailing percent must be 1..=9999 bps, got {0}")]
    BadTrailPercent(u32),
    /// Combo without legs.
    #[error("combo order has no legs")]
    EmptyCombo,
    /// Combo leg ratio of zero.
    #[error("combo leg ratio must be > 0")]
    ZeroRatio,
    /// The same instrument appears twice in a combo.
    #[error("combo has duplicate leg {0}")]
    DuplicateLeg(String),
    /// Combos only take Market or Limit.
    #[error("combo orders must be Market or Limit")]
    ComboOrderType,
}

impl OrderError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NonPositiveQty(_) => "order.non_positive_qty",
            Self::NonPositivePrice { .. } => "order.non_positive_price",
            Self::StopLimitInconsistent { .. } => "order.stop_limit_inconsistent",
            Self::BadTrailPercent(_) => "order.bad_trail_percent",
            Self::EmptyCombo => "order.empty_combo",
            Self::ZeroRatio => "order.zero_ratio",
            Self::DuplicateLeg(_) => "order.duplicate_leg",
            Self::ComboOrderType => "order.combo_order_type",
        }
    }
}

fn positive(field: &'static str, price: Price) -> Result<(), OrderError> {
    if price.is_positive() {
        Ok(())
    } else {
        Err(OrderError::NonPositivePrice { field, price })
    }
}

impl OrderRequest {
    /// Checks quantity and prices. Tick-size rules are venue specific and not checked here.
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.qty <= 0 {
            return Err(OrderError::NonPositiveQty(self.qty));
        }
        match self.order_type {
            OrderType::Market => Ok(()),
            OrderType::Limit { limit } => positive("limit", limit),
            OrderType::Stop { stop } => positive("stop", stop),
            OrderType::StopLimit { stop, limit } => {
                positive("stop", stop)?;
                positive("limit", limit)?;
                let bad = match self.side {
                    Side::Buy => limit < stop,
                    Side::Sell => limit > stop,
                };
                if bad {
                    Err(OrderError::StopLimitInconsistent {
                        side: self.side,
                        stop,
                        limit,
                    })
                } else {
                    Ok(())
                }
            }
            OrderType::TrailingStop {
                trail: Trail::Amount(a),
            } => positive("trail", a),
            OrderType::TrailingStop {
                trail: Trail::Percent(bps),
            } => {
                if (1..10_000).contains(&bps) {
                    Ok(())
                } else {
                    Err(OrderError::BadTrailPercent(bps))
                }
            }
        }
    }
}

impl ComboOrder {
    /// Checks legs, ratios, quantity and order type. The net limit may be ≤ 0 (credit).
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.qty <= 0 {
            return Err(OrderError::NonPositiveQty(self.qty));
        }
        if self.legs.is_empty() {
            return Err(OrderError::EmptyCombo);
        }
        for (i, l) in self.legs.iter().enumerate() {
            if l.ratio == 0 {
                return Err(OrderError::ZeroRatio);
            }
            if self.legs[..i].iter().any(|p| p.instrument == l.instrument) {
                return Err(OrderError::DuplicateLeg(l.instrument.id().0));
            }
        }
        match self.order_type {
            OrderType::Market | OrderType::Limit { .. } => Ok(()),
            _ => Err(OrderError::ComboOrderType),
        }
    }
}

/// Order status as reported by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Sent, not yet acknowledged.
    PendingSubmit,
    /// Working at the venue.
    Submitted,
    /// Some quantity filled, rest working.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
    /// Cancel requested, not yet confirmed.
    PendingCancel,
    /// Cancelled (terminal; may have a partial fill).
    Cancelled,
    /// Rejected (terminal).
    Rejected,
    /// Cancelled by the broker/system rather than the user (terminal).
    ApiCancelled,
    /// At the venue but not working (IB's `Inactive`: accepted, then held for a system,
    /// exchange or other reason). Not terminal: it may become active again and fill, or end
    /// with a rejection or a cancel. Nothing should be sent in its place while it lasts.
    Inactive,
}

impl OrderStatus {
    /// `true` for Filled, Cancelled, Rejected, ApiCancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Cancelled | Self::Rejected | Self::ApiCancelled
        )
    }
}

/// Machine code plus the broker's human text for a rejection or cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReason {
    /// Stable code (simulator: e.g. `"sim.insufficient_margin"`; IB: its numeric code).
    pub code: String,
    /// Human-readable text from the broker.
    pub text: String,
}

impl StatusReason {
    /// The order never reached the venue (the connection dropped as it went out, and after the
    /// reconnect the venue lists it nowhere and reports no fill of it): sending it again cannot
    /// double it.
    pub const ORDER_LOST: &'static str = "broker.order_lost";
    /// The venue holds the order without working it ([`OrderStatus::Inactive`]); the text says
    /// why when the venue does.
    pub const INACTIVE: &'static str = "broker.order_inactive";
}

/// A change of an order's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// The order.
    pub order_id: OrderId,
    /// New status.
    pub status: OrderStatus,
    /// Cumulative filled quantity (combo units for combos).
    pub filled: i64,
    /// Quantity still working.
    pub remaining: i64,
    /// Average fill price so far (net per unit for combos).
    pub avg_fill_price: Option<Price>,
    /// Why (rejections, cancels by the venue).
    pub reason: Option<StatusReason>,
    /// When.
    pub ts: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }

    #[test]
    fn single_order_validation() {
        let mut o = stubs::order(Side::Buy, 1, OrderType::Market);
        assert_eq!(o.validate(), Ok(()));
        o.qty = 0;
        assert_eq!(o.validate().unwrap_err().code(), "order.non_positive_qty");
        o.qty = 2;
        let cases = [
            (
                OrderType::Limit { limit: p("0") },
                Some("order.non_positive_price"),
            ),
            (OrderType::Limit { limit: p("1.05") }, None),
            (
                OrderType::Stop { stop: p("-1") },
                Some("order.non_positive_price"),
            ),
            (
                OrderType::StopLimit {
                    stop: p("2"),
                    limit: p("1.9"),
                },
                Some("order.stop_limit_inconsistent"),
            ),
            (
                OrderType::StopLimit {
                    stop: p("2"),
                    limit: p("2.1"),
                },
                None,
            ),
            (
                OrderType::TrailingStop {
                    trail: Trail::Amount(p("0")),
                },
                Some("order.non_positive_price"),
            ),
            (
                OrderType::TrailingStop {
                    trail: Trail::Percent(0),
                },
                Some("order.bad_trail_percent"),
            ),
            (
                OrderType::TrailingStop {
                    trail: Trail::Percent(10_000),
                },
                Some("order.bad_trail_percent"),
            ),
            (
                OrderType::TrailingStop {
                    trail: Trail::Percent(150),
                },
                None,
            ),
        ];
        for (t, want) in cases {
            o.order_type = t;
            assert_eq!(o.validate().err().map(|e| e.code()), want, "{t:?}");
        }
        o.side = Side::Sell;
        o.order_type = OrderType::StopLimit {
            stop: p("2"),
            limit: p("2.1"),
        };
        assert_eq!(
            o.validate().unwrap_err().code(),
            "order.stop_limit_inconsistent"
        );
    }

    #[test]
    fn combo_validation() {
        let mut c = stubs::iron_condor_combo(OrderId(9), 1, OrderType::Limit { limit: p("-1.20") });
        assert_eq!(c.validate(), Ok(()));
        c.order_type = OrderType::Stop { stop: p("1") };
        assert_eq!(c.validate().unwrap_err().code(), "order.combo_order_type");
        c.order_type = OrderType::Market;
        c.legs[0].ratio = 0;
        assert_eq!(c.validate().unwrap_err().code(), "order.zero_ratio");
        c.legs[0].ratio = 1;
        c.legs[1] = c.legs[0].clone();
        assert_eq!(c.validate().unwrap_err().code(), "order.duplicate_leg");
        c.legs.clear();
        assert_eq!(c.validate().unwrap_err().code(), "order.empty_combo");
        c.qty = -1;
        assert_eq!(c.validate().unwrap_err().code(), "order.non_positive_qty");
    }

    #[test]
    fn order_type_serde_shape() {
        let j = serde_json::to_string(&OrderType::Limit { limit: p("1.25") }).unwrap();
        assert_eq!(j, r#"{"type":"limit","limit":"1.25"}"#);
        assert!(OrderStatus::Filled.is_terminal());
        assert!(!OrderStatus::PendingCancel.is_terminal());
        assert!(!OrderStatus::Inactive.is_terminal());
    }
}
