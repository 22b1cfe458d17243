//! ProjectX Gateway's JSON (<https://gateway.docs.projectx.com/docs/intro>): every REST call is
//! a JSON `POST` answered with `{…, "success", "errorCode", "errorMessage"}`, where HTTP 200 can
//! still be a failure and the codes differ per endpoint. Enumerations are integers. Unknown
//! fields are ignored.

use serde::{Deserialize, Serialize};

/// The envelope every answer carries.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Whether the call did what was asked.
    #[serde(default)]
    pub success: bool,
    /// The endpoint's code (0: none).
    #[serde(default)]
    pub error_code: i64,
    /// Text, when given.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// `POST /api/Auth/loginKey`, `/api/Auth/validate`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenAnswer {
    /// The session token (loginKey).
    #[serde(default)]
    pub token: Option<String>,
    /// A fresh token (validate).
    #[serde(default)]
    pub new_token: Option<String>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// An account (`POST /api/Account/search`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Name (`50KTC-V2-…`).
    #[serde(default)]
    pub name: String,
    /// Balance.
    #[serde(default)]
    pub balance: f64,
    /// False when the firm has locked the account.
    #[serde(default)]
    pub can_trade: bool,
    /// Shown to the user.
    #[serde(default)]
    pub is_visible: bool,
    /// A simulated (evaluation or practice) account.
    #[serde(default)]
    pub simulated: bool,
}

/// `POST /api/Account/search`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccountsAnswer {
    /// The accounts.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// A contract (`POST /api/Contract/search`, `/searchById`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    /// `CON.F.US.MNQ.Z25`.
    pub id: String,
    /// `MNQZ5`.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Minimum price increment.
    #[serde(default)]
    pub tick_size: f64,
    /// Dollars per tick.
    #[serde(default)]
    pub tick_value: f64,
    /// The front contract.
    #[serde(default)]
    pub active_contract: bool,
}

/// `POST /api/Contract/search`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContractsAnswer {
    /// The contracts.
    #[serde(default)]
    pub contracts: Vec<Contract>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// A position: `type` 1 long, 2 short; `size` unsigned; a closed position arrives on the hub
/// with size 0.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// Id.
    #[serde(default)]
    pub id: i64,
    /// Account.
    #[serde(default)]
    pub account_id: i64,
    /// Contract.
    pub contract_id: String,
    /// Opened.
    #[serde(default)]
    pub creation_timestamp: String,
    /// 1 long, 2 short.
    #[serde(rename = "type", default)]
    pub position_type: i64,
    /// Unsigned size.
    #[serde(default)]
    pub size: i64,
    /// Average price.
    #[serde(default)]
    pub average_price: f64,
}

/// `POST /api/Position/searchOpen`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PositionsAnswer {
    /// Open positions.
    #[serde(default)]
    pub positions: Vec<Position>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// An order. `status`: 0 none, 1 open, 2 filled, 3 cancelled, 4 expired, 5 rejected,
/// 6 pending, 7 pending cancellation, 8 suspended. `type`: 1 limit, 2 market, 3 stop-limit,
/// 4 stop, 5 trailing stop, 6 join bid, 7 join ask. `side`: 0 buy (bid), 1 sell (ask).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Id.
    pub id: i64,
    /// Account.
    #[serde(default)]
    pub account_id: i64,
    /// Contract.
    #[serde(default)]
    pub contract_id: String,
    /// Created.
    #[serde(default)]
    pub creation_timestamp: String,
    /// Last change.
    #[serde(default)]
    pub update_timestamp: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: i64,
    /// Type.
    #[serde(rename = "type", default)]
    pub order_type: i64,
    /// Side.
    #[serde(default)]
    pub side: i64,
    /// Size.
    #[serde(default)]
    pub size: i64,
    /// Limit price.
    #[serde(default)]
    pub limit_price: Option<f64>,
    /// Stop price.
    #[serde(default)]
    pub stop_price: Option<f64>,
    /// Filled so far.
    #[serde(default)]
    pub fill_volume: i64,
    /// Average fill price.
    #[serde(default)]
    pub filled_price: Option<f64>,
    /// The tag given at placement.
    #[serde(default)]
    pub custom_tag: Option<String>,
}

/// `POST /api/Order/search`, `/searchOpen`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OrdersAnswer {
    /// Orders.
    #[serde(default)]
    pub orders: Vec<Order>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// `POST /api/Order/place`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlaceAnswer {
    /// The new order's id.
    #[serde(default)]
    pub order_id: Option<i64>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// A fill (`POST /api/Trade/search`, `GatewayUserTrade`). `profitAndLoss` is null on the
/// opening half of a round turn.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    /// Id.
    pub id: i64,
    /// Account.
    #[serde(default)]
    pub account_id: i64,
    /// Contract.
    #[serde(default)]
    pub contract_id: String,
    /// When.
    #[serde(default)]
    pub creation_timestamp: String,
    /// Price.
    #[serde(default)]
    pub price: f64,
    /// Realised P&L of a closing fill.
    #[serde(default)]
    pub profit_and_loss: Option<f64>,
    /// Fees.
    #[serde(default)]
    pub fees: f64,
    /// 0 buy, 1 sell.
    #[serde(default)]
    pub side: i64,
    /// Size.
    #[serde(default)]
    pub size: i64,
    /// Voided by the exchange.
    #[serde(default)]
    pub voided: bool,
    /// The order.
    #[serde(default)]
    pub order_id: i64,
}

/// `POST /api/Trade/search`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TradesAnswer {
    /// Fills.
    #[serde(default)]
    pub trades: Vec<Trade>,
    /// The envelope.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// `GatewayQuote` on the market hub.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GatewayQuote {
    /// Symbol (`F.US.MNQ`).
    #[serde(default)]
    pub symbol: String,
    /// Last trade.
    #[serde(default)]
    pub last_price: Option<f64>,
    /// Best bid.
    #[serde(default)]
    pub best_bid: Option<f64>,
    /// Best ask.
    #[serde(default)]
    pub best_ask: Option<f64>,
}
