//! Tradier's JSON, as it comes: the shapes of <https://docs.tradier.com/reference/brokerage-api>
//! with its quirks read tolerantly.
//!
//! - A list of one comes as a bare object, an empty list as the string `"null"` (or JSON
//!   `null`, or the wrapper missing): [`List`] reads all of them.
//! - Quantities and prices are JSON numbers with decimals (`"quantity": 1.00000000`).
//! - Unknown fields are ignored: Tradier adds fields without notice.
//!
//! The fake server writes the same types, quirks included ([`List::to_quirky`]).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A Tradier list: `"null"`, `null`, one bare object or an array.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Many(Vec<T>),
            One(T),
            Text(String),
            Null(()),
        }
        match Raw::<T>::deserialize(d)? {
            Raw::Many(v) => Ok(Self(v)),
            Raw::One(t) => Ok(Self(vec![t])),
            Raw::Null(()) => Ok(Self(Vec::new())),
            Raw::Text(s) if s == "null" || s.is_empty() => Ok(Self(Vec::new())),
            Raw::Text(s) => Err(de::Error::custom(format!(
                "expected a list, an object or \"null\", got the string {s:?}"
            ))),
        }
    }
}

impl<T: Serialize> List<T> {
    /// As Tradier writes it: `"null"` when empty, a bare object for one, an array otherwise.
    pub fn to_quirky(&self) -> serde_json::Value {
        match self.0.as_slice() {
            [] => serde_json::Value::String("null".into()),
            [one] => serde_json::to_value(one).unwrap_or(serde_json::Value::Null),
            many => serde_json::to_value(many).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A wrapper object that may itself be `"null"`: `{"positions": "null"}` or
/// `{"positions": {"position": [...]}}`.
fn wrapped<'de, D, T>(d: D, key: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    match v {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(s) if s == "null" || s.is_empty() => Ok(Vec::new()),
        serde_json::Value::Object(mut m) => match m.remove(key) {
            None => Ok(Vec::new()),
            Some(inner) => List::<T>::deserialize(inner)
                .map(|l| l.0)
                .map_err(de::Error::custom),
        },
        other => Err(de::Error::custom(format!(
            "expected {{\"{key}\": ...}} or \"null\", got {other}"
        ))),
    }
}

/// `GET /v1/accounts/{id}/positions`
/// (<https://docs.tradier.com/reference/brokerage-api-accounts-get-account-positions>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PositionsResponse {
    /// The positions (none: `"null"`).
    #[serde(deserialize_with = "positions_list", default)]
    pub positions: Vec<WirePosition>,
}

fn positions_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WirePosition>, D::Error> {
    wrapped(d, "position")
}

/// One position. `quantity` is signed (negative: short); `cost_basis` is the total paid
/// (negative for a short), not per unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WirePosition {
    /// Total cost of the position.
    pub cost_basis: f64,
    /// When it was opened.
    #[serde(default)]
    pub date_acquired: Option<String>,
    /// Tradier's position id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Signed quantity.
    pub quantity: f64,
    /// Equity symbol or compact OCC option symbol (`SPY240119C00450000`).
    pub symbol: String,
}

/// `GET /v1/accounts/{id}/orders`
/// (<https://docs.tradier.com/reference/brokerage-api-accounts-get-account-orders>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrdersResponse {
    /// The orders (none: `"null"`).
    #[serde(deserialize_with = "orders_list", default)]
    pub orders: Vec<WireOrder>,
}

fn orders_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireOrder>, D::Error> {
    wrapped(d, "order")
}

/// `GET /v1/accounts/{id}/orders/{order_id}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderResponse {
    /// The order.
    pub order: WireOrder,
}

/// An order as Tradier reports it. Multileg orders carry their legs in `leg`, each with its
/// own executed quantity and fill price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WireOrder {
    /// Tradier's order id.
    pub id: u64,
    /// `market`, `limit`, `stop`, `stop_limit`; multileg: `market`, `debit`, `credit`, `even`.
    #[serde(rename = "type", default)]
    pub order_type: String,
    /// Underlying or equity symbol.
    #[serde(default)]
    pub symbol: String,
    /// `buy`, `sell`, `sell_short`, `buy_to_cover`, `buy_to_open`, `buy_to_close`,
    /// `sell_to_open`, `sell_to_close`.
    #[serde(default)]
    pub side: String,
    /// Ordered quantity.
    #[serde(default)]
    pub quantity: f64,
    /// `open`, `partially_filled`, `filled`, `expired`, `canceled`, `pending`, `rejected`,
    /// `error`, `pending_cancel`…
    #[serde(default)]
    pub status: String,
    /// `day`, `gtc`, `pre`, `post`.
    #[serde(default)]
    pub duration: String,
    /// Limit price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Stop price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<f64>,
    /// Average fill price.
    #[serde(default)]
    pub avg_fill_price: f64,
    /// Filled so far.
    #[serde(default)]
    pub exec_quantity: f64,
    /// Price of the last fill.
    #[serde(default)]
    pub last_fill_price: f64,
    /// Size of the last fill.
    #[serde(default)]
    pub last_fill_quantity: f64,
    /// Still working.
    #[serde(default)]
    pub remaining_quantity: f64,
    /// Created.
    #[serde(default)]
    pub create_date: String,
    /// Last change.
    #[serde(default)]
    pub transaction_date: String,
    /// `equity`, `option`, `multileg`, `combo`, `oto`, `oco`, `otoco`.
    #[serde(default)]
    pub class: String,
    /// The option of an `option` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_symbol: Option<String>,
    /// The tag given at placement (returned with `includeTags=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Why the order was rejected, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_description: Option<String>,
    /// Number of legs (multileg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_legs: Option<u32>,
    /// Tradier's strategy name (multileg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Legs (multileg, combo): one or many.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "legs"
    )]
    pub leg: Vec<WireOrder>,
}

fn legs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireOrder>, D::Error> {
    List::<WireOrder>::deserialize(d).map(|l| l.0)
}

/// The answer to a placement, a change or a cancel: `{"order": {"id": 1, "status": "ok"}}`.
/// With `preview=true` the same object carries the cost and margin fields instead of an id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlacedResponse {
    /// What Tradier said.
    pub order: Placed,
}

/// See [`PlacedResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Placed {
    /// The new order's id (absent in a preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// `ok` (the request was accepted, not that the order is: a downstream rejection comes
    /// later, on the order).
    #[serde(default)]
    pub status: String,
    /// Preview: commission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<f64>,
    /// Preview: total cost (negative: credit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Preview: fees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<f64>,
    /// Preview: change of the margin requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_change: Option<f64>,
    /// Preview: order cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_cost: Option<f64>,
    /// Preview: whether the order would be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<bool>,
}

/// An error answer: `{"errors": {"error": "..."}}` or `{"errors": {"error": ["...", "..."]}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorsResponse {
    /// The messages.
    pub errors: ErrorList,
}

/// See [`ErrorsResponse`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorList {
    /// One or many messages.
    pub error: List<String>,
}

/// `GET /v1/accounts/{id}/balances`
/// (<https://docs.tradier.com/reference/brokerage-api-accounts-get-account-balance>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BalancesResponse {
    /// The balances.
    pub balances: WireBalances,
}

/// Account balances. Exactly one of `margin`, `cash`, `pdt` is present, by account type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WireBalances {
    /// Account number.
    #[serde(default)]
    pub account_number: String,
    /// `margin`, `cash` or `pdt`.
    #[serde(default)]
    pub account_type: String,
    /// Total equity.
    #[serde(default)]
    pub total_equity: f64,
    /// Total cash.
    #[serde(default)]
    pub total_cash: f64,
    /// Current margin requirement.
    #[serde(default)]
    pub current_requirement: f64,
    /// Option requirement.
    #[serde(default)]
    pub option_requirement: f64,
    /// Margin account values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<MarginBalances>,
    /// Pattern-day-trader account values (same fields as margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdt: Option<MarginBalances>,
    /// Cash account values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash: Option<CashBalances>,
}

/// `balances.margin` / `balances.pdt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MarginBalances {
    /// Federal call.
    #[serde(default)]
    pub fed_call: f64,
    /// Maintenance call.
    #[serde(default)]
    pub maintenance_call: f64,
    /// Option buying power.
    #[serde(default)]
    pub option_buying_power: f64,
    /// Stock buying power.
    #[serde(default)]
    pub stock_buying_power: f64,
}

/// `balances.cash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CashBalances {
    /// Cash available to trade.
    #[serde(default)]
    pub cash_available: f64,
    /// Unsettled funds.
    #[serde(default)]
    pub unsettled_funds: f64,
}

/// `GET /v1/user/profile` (<https://docs.tradier.com/reference/brokerage-api-user-get-profile>):
/// the accounts the token may use.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProfileResponse {
    /// The profile.
    pub profile: Profile,
}

/// See [`ProfileResponse`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Profile {
    /// The user's name.
    #[serde(default)]
    pub name: String,
    /// One or many accounts.
    #[serde(default)]
    pub account: List<ProfileAccount>,
}

/// One account of the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileAccount {
    /// Account number.
    pub account_number: String,
    /// `active`, `closed`…
    #[serde(default)]
    pub status: String,
    /// `margin`, `cash`, `pdt`.
    #[serde(rename = "type", default)]
    pub account_type: String,
}

/// `POST /v1/accounts/events/session` and `POST /v1/markets/events/session`: a stream session
/// (<https://docs.tradier.com/reference/brokerage-api-streaming-create-account-session>); the id
/// is valid for five minutes and for one connection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SessionResponse {
    /// The session.
    pub stream: StreamSession,
}

/// See [`SessionResponse`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StreamSession {
    /// WebSocket URL to connect to.
    #[serde(default)]
    pub url: String,
    /// Session id for the subscription payload.
    pub sessionid: String,
}

/// A message on the account stream
/// (<https://docs.tradier.com/docs/account-streaming-responses>): an order event (no symbol, no
/// side, no quantity: the order is fetched for those) or a heartbeat
/// (`{"event":"heartbeat","status":"active","timestamp":…}`, about once a minute).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
pub struct AccountEvent {
    /// `order` or `heartbeat`.
    #[serde(default)]
    pub event: String,
    /// Order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Order status.
    #[serde(default)]
    pub status: String,
    /// Account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Filled so far (`exec_quantity` at docs.tradier.com, `executed_quantity` in the older
    /// reference: both are read).
    #[serde(default, alias = "executed_quantity")]
    pub exec_quantity: f64,
    /// The parent order (multileg and OTO children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    /// Still working.
    #[serde(default)]
    pub remaining_quantity: f64,
    /// Last fill size.
    #[serde(default)]
    pub last_fill_quantity: f64,
    /// Last fill price.
    #[serde(default)]
    pub last_fill_price: f64,
    /// Average fill price.
    #[serde(default)]
    pub avg_fill_price: f64,
}

/// A message on the market stream: `{"type": "quote", "symbol": …, "bid": …, "bidsz": …}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
pub struct MarketEvent {
    /// `quote`, `trade`, `summary`, `timesale`, `tradex`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Symbol.
    #[serde(default)]
    pub symbol: String,
    /// Bid (0: none).
    #[serde(default)]
    pub bid: f64,
    /// Bid size.
    #[serde(default)]
    pub bidsz: f64,
    /// Ask (0: none).
    #[serde(default)]
    pub ask: f64,
    /// Ask size.
    #[serde(default)]
    pub asksz: f64,
    /// Trade price (`trade` events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// `GET /v1/markets/quotes` (<https://docs.tradier.com/reference/brokerage-api-markets-get-quotes>).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QuotesResponse {
    /// The quotes.
    pub quotes: QuotesBody,
}

/// See [`QuotesResponse`].
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct QuotesBody {
    /// One or many quotes.
    #[serde(default)]
    pub quote: List<WireQuote>,
}

/// One quote. `bid`/`ask` of 0 or `null`: no market on that side.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
pub struct WireQuote {
    /// Symbol.
    pub symbol: String,
    /// Last trade.
    #[serde(default)]
    pub last: Option<f64>,
    /// Bid.
    #[serde(default)]
    pub bid: Option<f64>,
    /// Bid size.
    #[serde(default)]
    pub bidsize: Option<f64>,
    /// Ask.
    #[serde(default)]
    pub ask: Option<f64>,
    /// Ask size.
    #[serde(default)]
    pub asksize: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_as_null_one_or_many() {
        let none: PositionsResponse = serde_json::from_str(r#"{"positions":"null"}"#).unwrap();
        assert!(none.positions.is_empty());
        let none: PositionsResponse = serde_json::from_str(r#"{"positions":null}"#).unwrap();
        assert!(none.positions.is_empty());
        let one: PositionsResponse = serde_json::from_str(
            r#"{"positions":{"position":{"cost_basis":-96.0,"date_acquired":"2024-01-02T14:41:11.405Z","id":1,"quantity":-1.00000000,"symbol":"SPY240119P00450000"}}}"#,
        )
        .unwrap();
        assert_eq!(one.positions.len(), 1);
        assert_eq!(one.positions[0].quantity, -1.0);
        let many: OrdersResponse = serde_json::from_str(
            r#"{"orders":{"order":[{"id":1,"status":"open","class":"option"},{"id":2,"status":"filled","class":"multileg","leg":{"id":3,"status":"filled","option_symbol":"SPY240119P00450000"}}]}}"#,
        )
        .unwrap();
        assert_eq!(many.orders.len(), 2);
        assert_eq!(many.orders[1].leg.len(), 1, "a single leg comes bare");
        let err: ErrorsResponse =
            serde_json::from_str(r#"{"errors":{"error":"Backend rejected : margin"}}"#).unwrap();
        assert_eq!(err.errors.error.0, vec!["Backend rejected : margin"]);
        let bad = serde_json::from_str::<PositionsResponse>(r#"{"positions":"oops"}"#);
        assert!(bad.is_err(), "a string other than \"null\" is an error");
    }

    #[test]
    fn the_fake_writes_the_same_quirks() {
        let empty: List<WirePosition> = List(Vec::new());
        assert_eq!(empty.to_quirky(), serde_json::json!("null"));
        let one = List(vec![1u32]);
        assert_eq!(one.to_quirky(), serde_json::json!(1));
        let two = List(vec![1u32, 2]);
        assert_eq!(two.to_quirky(), serde_json::json!([1, 2]));
    }
}
