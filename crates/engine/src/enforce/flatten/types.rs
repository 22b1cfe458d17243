//! The serializable views of the two-step flatten: what a person asks for
//! ([`FlattenAction`] / [`FlattenScope`]), what the guard would do ([`FlattenPreview`] with its
//! [`FlattenOrder`]s and [`FlattenWarning`]s), what it did ([`FlattenTicket`]) and how far it got
//! ([`FlattenProgress`]). Every type is `Serialize + Deserialize` for the desktop app's IPC.

use crate::alert::Severity;
use crate::assignment::ClosePhase;
use crate::intent::Purpose;
use serde::{Deserialize, Serialize};
use tradeguard_model::{
    AccountId, Instrument, InstrumentId, Money, OrderType, Price, Side, StrategyId, Timestamp,
};

/// Which positions a flatten closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlattenScope {
    /// Every leg of one strategy (its share of each position). A Broken strategy goes through
    /// the emergency path and also closes the positions its assignment close kept.
    Strategy {
        /// The strategy.
        strategy: StrategyId,
    },
    /// "Flatten all": every position of the account (options and stock), as one close.
    Account {
        /// The account.
        account: AccountId,
    },
    /// One position of the account, whole.
    Position {
        /// The account.
        account: AccountId,
        /// The instrument.
        instrument: InstrumentId,
    },
}

/// What a preview is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlattenAction {
    /// Close positions now (click-to-flatten, flatten all).
    Flatten {
        /// Which positions.
        scope: FlattenScope,
    },
    /// Switch the account's forced unwind on or off.
    ForcedUnwind {
        /// The account.
        account: AccountId,
        /// On (close everything, refuse opening orders, survives restarts) or off.
        on: bool,
    },
}

/// Which side of the book an estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteSide {
    /// A sell is estimated at the bid.
    Bid,
    /// A buy is estimated at the ask.
    Ask,
}

/// How trustworthy an estimate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteQuality {
    /// Quote no older than the guard's staleness limit.
    Fresh,
    /// Quote older than the staleness limit.
    Stale,
}

/// The price an order is estimated at, from the live book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceEstimate {
    /// Per-unit price (bid for a sell, ask for a buy).
    pub price: Price,
    /// Bid or ask.
    pub side: QuoteSide,
    /// Age of the quote in milliseconds (clock time).
    pub quote_age_ms: u64,
    /// Fresh or stale.
    pub quality: QuoteQuality,
}

/// One order the flatten would send, in send order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenOrder {
    /// 1-based step: the orders of a step go out together, a step waits for the previous
    /// step's fills (short legs are bought back before the protection is sold).
    pub step: usize,
    /// What to trade.
    pub instrument: Instrument,
    /// Buy (cover a short) or sell (close a long).
    pub side: Side,
    /// Quantity (> 0).
    pub qty: i64,
    /// Order type (market).
    pub order_type: OrderType,
    /// The account's signed position in the instrument now.
    pub position: i64,
    /// Strategies holding the instrument.
    pub strategies: Vec<StrategyId>,
    /// Estimated price; `None` when the book has no usable quote on that side.
    pub estimate: Option<PriceEstimate>,
    /// Estimated cash of the order: + credit received (sell), − debit paid (buy).
    pub estimated_cash: Option<Money>,
    /// The broker orders the coordinator sends it as, in send order: `[qty]` when it goes out
    /// whole, several child orders of at most the gate's `max_order_qty` when the order is
    /// larger (a close is never refused for its size: it is split). Empty when not checked.
    #[serde(default)]
    pub child_orders: Vec<i64>,
    /// Stable code (`gate.*`) of the refusal the coordinator's pre-trade gate would give this
    /// order now (also listed as a [`WarningKind::GateRefusal`] warning); `None` when it passes.
    #[serde(default)]
    pub gate_refusal: Option<String>,
}

/// A position in scope that the flatten leaves to someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedPosition {
    /// The instrument.
    pub instrument: Instrument,
    /// Signed quantity in scope.
    pub qty: i64,
    /// Who closes it instead.
    pub reason: ExcludedReason,
}

/// Why a position is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExcludedReason {
    /// A close job of the guard already covers it (rule flatten, forced unwind, earlier flatten).
    AlreadyClosing {
        /// The close job.
        job: u64,
    },
    /// The assignment guard's emergency close of a Broken strategy is armed or working on it;
    /// a second close would double the orders.
    AssignmentClose {
        /// The Broken strategy.
        strategy: StrategyId,
        /// Armed or working.
        phase: ClosePhase,
    },
}

/// What a person should know before confirming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WarningKind {
    /// A Broken strategy is in scope: only the emergency path may close it; confirm uses it.
    BrokenStrategy {
        /// The strategy.
        strategy: StrategyId,
        /// Stable code of why it broke.
        reason: Option<String>,
    },
    /// The regular session is closed.
    MarketClosed {
        /// Next regular open.
        next_open: Timestamp,
        /// `true`: the orders are held (armed) and sent at `next_open`; `false`: they are sent
        /// at once and the broker holds or rejects them until the open.
        armed: bool,
    },
    /// Trading is HALTED: only emergency exits pass the gate, so the close uses the emergency
    /// path.
    TradingHalted,
    /// Trading is REDUCING: closing orders still pass.
    TradingReducing,
    /// No usable quote: the estimate leaves this order out and the close waits briefly for a
    /// quote before it is sent.
    QuoteMissing {
        /// The instrument.
        instrument: InstrumentId,
    },
    /// The quote behind the estimate is stale.
    QuoteStale {
        /// The instrument.
        instrument: InstrumentId,
        /// Quote age in milliseconds.
        age_ms: u64,
    },
    /// Dry-run is on: nothing will be sent; the confirmation is only audited.
    DryRun,
    /// Dry-run is on but does not stop a forced unwind: its orders will be sent.
    DryRunDoesNotStopUnwind,
    /// Nothing in scope to close.
    NothingToFlatten,
    /// Some positions are left out (see [`FlattenPreview::excluded`]).
    PositionsExcluded {
        /// How many.
        count: usize,
    },
    /// The account is in forced unwind: the guard is already closing every position.
    ForcedUnwindOn,
    /// Forced unwind is already in the requested state.
    ForcedUnwindUnchanged {
        /// The state asked for (and current).
        on: bool,
    },
    /// Forced unwind on: closes every position through the emergency path, refuses opening
    /// orders, and is re-applied at every start until a person switches it off.
    ForcedUnwindPersists,
    /// Forced unwind off: no new unwind closes; close jobs already queued or working continue.
    ForcedUnwindOff,
    /// After this close, short options of `underlying`/`right` are left uncovered (their
    /// protection is sold, the shorts stay): the coordinator's hedge manager will buy them
    /// back at market.
    LeavesShortsUncovered {
        /// Underlying.
        underlying: String,
        /// Right.
        right: tradeguard_model::Right,
        /// Naked short contracts after the close (more than before it).
        contracts: i64,
    },
    /// The coordinator's pre-trade gate would refuse this close now (checked at preview on
    /// every listed order alone and on the close as a whole): confirming would fail, be
    /// retried and end as needs-manual unless the cause goes away.
    GateRefusal {
        /// The refused order's instrument; `None` for a refusal of the close as a whole.
        instrument: Option<InstrumentId>,
        /// Stable code of the gate's refusal (`gate.*`, `risk.*`).
        refusal: String,
    },
    /// The assignment guard's emergency close is active on the account.
    AssignmentCloseActive {
        /// The Broken strategy.
        strategy: StrategyId,
        /// Armed or working.
        phase: ClosePhase,
    },
}

/// A warning with its stable code and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenWarning {
    /// Stable code (`flatten.warn.*`).
    pub code: String,
    /// How serious.
    pub severity: Severity,
    /// For a person.
    pub message: String,
    /// Details.
    pub kind: WarningKind,
}

/// The exact orders a flatten (or forced unwind) would send, for the confirmation dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenPreview {
    /// Single-use id to confirm with.
    pub id: String,
    /// What it is for.
    pub action: FlattenAction,
    /// The account.
    pub account: AccountId,
    /// Flatten (normal close) or Emergency (Broken strategy, HALTED, forced unwind).
    pub purpose: Purpose,
    /// Orders in send order.
    pub orders: Vec<FlattenOrder>,
    /// Positions in scope left to another close.
    pub excluded: Vec<ExcludedPosition>,
    /// Sum of the priced orders' cash: + net credit, − net debit.
    pub estimated_cash: Money,
    /// `true` when every order has an estimate.
    pub estimate_complete: bool,
    /// Everything a person should know.
    pub warnings: Vec<FlattenWarning>,
    /// `false` when confirming sends nothing (dry-run, nothing to flatten).
    pub will_send: bool,
    /// Market closed: the orders are held until then.
    pub armed_until: Option<Timestamp>,
    /// When the preview was made (clock time).
    pub created_at: Timestamp,
    /// Confirm before this (clock time).
    pub expires_at: Timestamp,
}

/// A confirmed preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenTicket {
    /// Id to poll [`crate::enforce::Guard::flatten_progress`] with.
    pub id: String,
    /// The preview it confirmed.
    pub preview_id: String,
    /// What it does.
    pub action: FlattenAction,
    /// The account.
    pub account: AccountId,
    /// Flatten or Emergency.
    pub purpose: Purpose,
    /// The orders (as previewed).
    pub orders: Vec<FlattenOrder>,
    /// Dry-run: nothing was sent.
    pub dry_run: bool,
    /// Close jobs created (empty for dry-run; a forced unwind's jobs are created by the
    /// enforcer and found by instrument).
    pub close_jobs: Vec<u64>,
    /// Held until then (market closed).
    pub armed_until: Option<Timestamp>,
    /// When confirmed.
    pub confirmed_at: Timestamp,
}

/// Where one order of a ticket is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderProgressState {
    /// Dry-run: never sent.
    NotSent,
    /// Waiting to be sent (armed for the open, quote wait, retry back-off, earlier step).
    Waiting,
    /// At the broker, nothing filled yet.
    Sent,
    /// Partly filled.
    PartiallyFilled,
    /// The position is closed.
    Filled,
    /// The close failed and needs a person (retries exhausted) or the order ended badly.
    Failed {
        /// Why.
        reason: String,
    },
    /// No close is working on it and the position is still held (check the account).
    NotWorking,
}

/// Progress of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProgress {
    /// The instrument.
    pub instrument: Instrument,
    /// Side.
    pub side: Side,
    /// Quantity ordered.
    pub qty: i64,
    /// Quantity closed so far (from the account's position).
    pub filled: i64,
    /// The account's signed position now.
    pub position: i64,
    /// State.
    pub state: OrderProgressState,
}

/// Overall state of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FlattenStatus {
    /// Dry-run: nothing was sent.
    DryRun,
    /// Held until the open.
    Armed {
        /// When the orders go out.
        release_at: Timestamp,
    },
    /// Orders waiting or working.
    Working,
    /// Every position is closed (forced unwind off: switched off).
    Done,
    /// A close failed: a person must act.
    NeedsManual {
        /// Why.
        reason: String,
    },
    /// Nothing is working but some position is still held.
    Incomplete,
}

/// Progress of a ticket, for the dialog to show in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenProgress {
    /// The ticket.
    pub ticket: String,
    /// Overall.
    pub status: FlattenStatus,
    /// Per order, in send order.
    pub orders: Vec<OrderProgress>,
    /// Orders sent (sent, partially filled or filled).
    pub sent: usize,
    /// Orders filled.
    pub filled: usize,
    /// Orders failed.
    pub failed: usize,
    /// Close jobs still tracked for these positions.
    pub close_jobs: Vec<u64>,
}
