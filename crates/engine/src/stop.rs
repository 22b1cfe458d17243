//! Hybrid stop-loss: a stop-limit with a slippage buffer; if it has not filled `timeout` after
//! the stop triggered, cancel it, **wait for the broker's confirmation**, and only then send a
//! market order for the quantity still open. A fill while the cancel is pending ends the stop
//! with no market order; a rejected cancel keeps the stop managed (re-armed) and alerts. At no
//! time are two exit orders live for the same quantity.
//!
//! A stop can also be **superseded** by a Close/Flatten of the same position
//! ([`StopLoss::supersede`]): its stop-limit is cancelled, and once the broker confirms, the stop
//! ends [`StopState::Cancelled`] with no market order; the close is sent only then (see
//! `crate::exits`).
//!
//! Pure state machine: inputs are quotes, order statuses, executions and deadlines; outputs are
//! [`StopAction`]s the engine task performs (after journaling the new state).

use serde::{Deserialize, Serialize};
use std::time::Duration;
use tradeguard_model::{
    AccountId, Instrument, OrderId, OrderStatus, OrderUpdate, Price, Quote, Side, StrategyId,
    Timestamp,
};

/// What to protect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSpec {
    /// Account.
    pub account: AccountId,
    /// Instrument held.
    pub instrument: Instrument,
    /// Exit side (Sell for a long, Buy for a short).
    pub side: Side,
    /// Quantity to exit, > 0.
    pub qty: i64,
    /// Stop (trigger) price.
    pub stop: Price,
    /// Strategy, if any.
    pub strategy: Option<StrategyId>,
}

/// Stop-loss state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopState {
    /// Stop-limit working at the broker.
    Working,
    /// Cancel of the stop-limit requested; waiting for the broker.
    CancelPending,
    /// Stop-limit cancelled; market order for the rest working.
    MarketSent,
    /// Exit complete (terminal).
    Done,
    /// Exit could not complete (terminal; alerted).
    Failed,
    /// Cancelled (confirmed by the broker) so a Close/Flatten of the position could take over
    /// the exit (terminal).
    Cancelled,
}

/// What the engine must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopAction {
    /// Request cancellation of the stop-limit.
    Cancel(OrderId),
    /// Send a market order for `qty`.
    SendMarket {
        /// Quantity still open.
        qty: i64,
    },
    /// Raise an alert.
    Alert {
        /// Stable code.
        code: &'static str,
        /// Critical (`true`) or warning.
        critical: bool,
        /// Text.
        message: String,
    },
}

/// How long a requested cancel of the stop-limit may stay unanswered before it is asked again.
pub const CANCEL_UNANSWERED: Duration = Duration::from_secs(5);

/// A managed stop-loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopLoss {
    /// Id (engine-assigned).
    pub id: u64,
    /// What is protected.
    pub spec: StopSpec,
    /// Limit of the stop-limit (stop ± slippage buffer, on tick).
    pub limit: Price,
    /// The stop-limit order.
    pub limit_order: OrderId,
    /// The market order, once sent.
    pub market_order: Option<OrderId>,
    /// State.
    pub state: StopState,
    /// Filled on the stop-limit.
    pub limit_filled: i64,
    /// Filled on the market order.
    pub market_filled: i64,
    /// When the stop triggered (market through the stop, or first fill).
    pub triggered_at: Option<Timestamp>,
    /// When the stop-limit is given up on.
    pub deadline: Option<Timestamp>,
    /// Cancel attempts rejected so far.
    pub cancel_rejections: u32,
    /// A Close/Flatten of the position takes over: once the stop-limit's cancel is confirmed
    /// the stop ends Cancelled, no market order.
    #[serde(default)]
    pub superseded: bool,
    /// The broker acknowledged the pending cancel (PendingCancel): a later Submitted means
    /// it kept the order (a Submitted before is the order's own late acknowledgement).
    #[serde(default)]
    pub cancel_acked: bool,
}

/// Stop-limit limit price: `stop × (1 ∓ bps)` rounded away from the market to `tick`
/// (down for sells, up for buys) so the buffer is never smaller than asked.
pub fn limit_price(side: Side, stop: Price, bps: u32, tick: Price) -> Price {
    let b = i64::from(bps);
    let raw = match side {
        Side::Sell => stop.mul_ratio(10_000 - b, 10_000),
        Side::Buy => stop.mul_ratio(10_000 + b, 10_000),
    }
    .unwrap_or(stop)
    .raw();
    let t = tick.raw().max(1);
    let floor = raw.div_euclid(t) * t;
    let px = match side {
        Side::Sell => floor,
        Side::Buy if floor == raw => floor,
        Side::Buy => floor + t,
    };
    Price::from_raw(px.max(t))
}

impl StopLoss {
    /// A new stop in state Working with its stop-limit `limit_order`.
    pub fn new(id: u64, spec: StopSpec, limit: Price, limit_order: OrderId) -> Self {
        Self {
            id,
            spec,
            limit,
            limit_order,
            market_order: None,
            state: StopState::Working,
            limit_filled: 0,
            market_filled: 0,
            triggered_at: None,
            deadline: None,
            cancel_rejections: 0,
            superseded: false,
            cancel_acked: false,
        }
    }

    /// Quantity not yet exited.
    pub fn remaining(&self) -> i64 {
        (self.spec.qty - self.limit_filled - self.market_filled).max(0)
    }

    /// `true` once Done, Failed or Cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state,
            StopState::Done | StopState::Failed | StopState::Cancelled
        )
    }

    /// Filled so far (stop-limit + market order).
    pub fn filled(&self) -> i64 {
        self.limit_filled + self.market_filled
    }

    /// A Close/Flatten of the position takes over the exit: from Working, request the cancel
    /// of the stop-limit (the stop ends Cancelled once the broker confirms, with no market
    /// order); from CancelPending (its own time-out) the pending cancel now ends it the same
    /// way. A stop whose market order is already out is left to finish.
    pub fn supersede(&mut self, now: Timestamp) -> Option<StopAction> {
        if self.is_terminal() {
            return None;
        }
        self.superseded = true;
        match self.state {
            StopState::Working => {
                self.state = StopState::CancelPending;
                self.cancel_acked = false;
                self.deadline = Some(now.plus(CANCEL_UNANSWERED));
                Some(StopAction::Cancel(self.limit_order))
            }
            _ => None,
        }
    }

    fn trigger(&mut self, now: Timestamp, timeout: Duration) {
        if self.triggered_at.is_none() {
            self.triggered_at = Some(now);
            self.deadline = Some(now.plus(timeout));
        }
    }

    /// A quote for the stop's instrument: starts the time-out when the market is through the stop.
    pub fn on_quote(&mut self, q: &Quote, now: Timestamp, timeout: Duration) -> bool {
        if self.state != StopState::Working || self.triggered_at.is_some() {
            return false;
        }
        // Only a real market is through the stop: a side with no data (IB's -1) is not.
        let hit = match self.spec.side {
            Side::Sell => q.bid.is_some_and(|b| b <= self.spec.stop),
            Side::Buy => q.ask.is_some_and(|a| a >= self.spec.stop),
        };
        if hit {
            self.trigger(now, timeout);
        }
        hit
    }

    /// Deadline reached: from Working, request the cancel; from CancelPending (the cancel
    /// unanswered for [`CANCEL_UNANSWERED`]: lost in a disconnect, or dropped by the venue),
    /// ask again. Left waiting, the stop would hold every exit of its position for ever (DST
    /// seed 451636547290: a forced unwind held behind a cancel sent as the link dropped).
    pub fn on_deadline(&mut self, now: Timestamp) -> Option<StopAction> {
        match (self.state, self.deadline) {
            (StopState::Working, Some(d)) if now >= d && self.remaining() > 0 => {
                self.state = StopState::CancelPending;
                self.cancel_acked = false;
                self.deadline = Some(now.plus(CANCEL_UNANSWERED));
                Some(StopAction::Cancel(self.limit_order))
            }
            (StopState::CancelPending, Some(d)) if now >= d => {
                self.deadline = Some(now.plus(CANCEL_UNANSWERED));
                Some(StopAction::Cancel(self.limit_order))
            }
            _ => None,
        }
    }

    /// The cancel request itself failed at the broker: stay managed, re-arm, alert.
    pub fn on_cancel_failed(&mut self, why: &str, now: Timestamp, timeout: Duration) -> StopAction {
        self.state = StopState::Working;
        self.deadline = Some(now.plus(timeout));
        self.cancel_rejections += 1;
        StopAction::Alert {
            code: "stop.cancel_rejected",
            critical: false,
            message: format!(
                "stop {} on {}: cancel of order {} rejected ({why}); stop-limit stays working and managed, retry in {} ms",
                self.id,
                self.spec.instrument.id(),
                self.limit_order,
                timeout.as_millis()
            ),
        }
    }

    /// Order status for one of the stop's orders.
    pub fn on_status(
        &mut self,
        u: &OrderUpdate,
        now: Timestamp,
        timeout: Duration,
    ) -> Vec<StopAction> {
        let mut out = Vec::new();
        if u.order_id == self.limit_order {
            self.limit_filled = self.limit_filled.max(u.filled.min(self.spec.qty));
            if self.limit_filled > 0 {
                self.trigger(now, timeout);
            }
            match (self.state, u.status) {
                (StopState::Working | StopState::CancelPending, OrderStatus::Filled) => {
                    self.state = StopState::Done;
                }
                (StopState::CancelPending, OrderStatus::Cancelled | OrderStatus::ApiCancelled)
                    if self.superseded =>
                {
                    self.state = if self.remaining() > 0 {
                        StopState::Cancelled
                    } else {
                        StopState::Done
                    };
                }
                (StopState::CancelPending, OrderStatus::Cancelled | OrderStatus::ApiCancelled) => {
                    let qty = self.remaining();
                    if qty > 0 {
                        self.state = StopState::MarketSent;
                        out.push(StopAction::SendMarket { qty });
                    } else {
                        self.state = StopState::Done;
                    }
                }
                (StopState::CancelPending, OrderStatus::PendingCancel) => {
                    self.cancel_acked = true;
                }
                // Back to working (a partial fill during the pending cancel carries no reason
                // and is not a rejection; neither is the order's own late acknowledgement,
                // Submitted with no reason before the broker acknowledged the cancel).
                (StopState::CancelPending, OrderStatus::Submitted | OrderStatus::PendingSubmit)
                | (StopState::CancelPending, OrderStatus::PartiallyFilled)
                    if u.reason.is_some()
                        || (u.status != OrderStatus::PartiallyFilled && self.cancel_acked) =>
                {
                    let why = u
                        .reason
                        .as_ref()
                        .map_or("broker kept the order working".to_owned(), |r| {
                            format!("{}: {}", r.code, r.text)
                        });
                    out.push(self.on_cancel_failed(&why, now, timeout));
                }
                (
                    StopState::Working,
                    OrderStatus::Cancelled | OrderStatus::ApiCancelled | OrderStatus::Rejected,
                ) => {
                    self.state = StopState::Failed;
                    out.push(StopAction::Alert {
                        code: "stop.order_lost",
                        critical: true,
                        message: format!(
                            "stop {} on {}: stop-limit {} ended {:?} without our cancel; {} not protected",
                            self.id,
                            self.spec.instrument.id(),
                            self.limit_order,
                            u.status,
                            self.remaining()
                        ),
                    });
                }
                _ => {}
            }
        } else if Some(u.order_id) == self.market_order {
            self.market_filled = self.market_filled.max(u.filled);
            match u.status {
                OrderStatus::Filled => self.state = StopState::Done,
                OrderStatus::Cancelled | OrderStatus::ApiCancelled | OrderStatus::Rejected => {
                    self.state = StopState::Failed;
                    out.push(StopAction::Alert {
                        code: "stop.market_failed",
                        critical: true,
                        message: format!(
                            "stop {} on {}: market exit {} ended {:?}; {} still open",
                            self.id,
                            self.spec.instrument.id(),
                            u.order_id,
                            u.status,
                            self.remaining()
                        ),
                    });
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::{StatusReason, stubs};

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap_or_default()
    }

    fn upd(id: i64, status: OrderStatus, filled: i64, reason: Option<&str>) -> OrderUpdate {
        OrderUpdate {
            order_id: OrderId(id),
            status,
            filled,
            remaining: 0,
            avg_fill_price: None,
            reason: reason.map(|c| StatusReason {
                code: c.into(),
                text: c.into(),
            }),
            ts: stubs::ts(),
        }
    }

    fn stop() -> StopLoss {
        let spec = StopSpec {
            account: stubs::account(),
            instrument: Instrument::stock("SPY"),
            side: Side::Sell,
            qty: 100,
            stop: p("495"),
            strategy: None,
        };
        StopLoss::new(1, spec, p("492.52"), OrderId(10))
    }

    const T: Duration = Duration::from_secs(2);

    #[test]
    fn limit_price_buffer_rounds_away_from_the_market() {
        assert_eq!(
            limit_price(Side::Sell, p("495"), 50, p("0.01")),
            p("492.52")
        );
        assert_eq!(limit_price(Side::Buy, p("495"), 50, p("0.01")), p("497.48"));
        assert_eq!(limit_price(Side::Buy, p("100"), 50, p("0.01")), p("100.50"));
    }

    /// DST seed 451636547290: the stop-limit's cancel went out as the link dropped and no
    /// answer ever came; the stop waited in CancelPending for ever and held the forced unwind's
    /// exit of its position behind it. An unanswered cancel is asked again.
    #[test]
    fn an_unanswered_cancel_is_asked_again_until_the_broker_answers() {
        let mut s = stop();
        let t0 = stubs::ts();
        s.on_status(&upd(10, OrderStatus::PartiallyFilled, 30, None), t0, T);
        assert_eq!(
            s.on_deadline(t0.plus(T)),
            Some(StopAction::Cancel(OrderId(10)))
        );
        let sent = t0.plus(T);
        assert_eq!(s.on_deadline(sent.plus(Duration::from_secs(1))), None);
        let again = sent.plus(CANCEL_UNANSWERED);
        assert_eq!(s.on_deadline(again), Some(StopAction::Cancel(OrderId(10))));
        assert_eq!(s.state, StopState::CancelPending);
        assert_eq!(s.on_deadline(again.plus(Duration::from_secs(1))), None);
        // A superseded stop's cancel is followed the same way.
        let mut s = stop();
        assert_eq!(s.supersede(t0), Some(StopAction::Cancel(OrderId(10))));
        assert_eq!(
            s.on_deadline(t0.plus(CANCEL_UNANSWERED)),
            Some(StopAction::Cancel(OrderId(10)))
        );
        // The answer ends it: no further cancel.
        s.on_status(&upd(10, OrderStatus::Cancelled, 0, None), t0, T);
        assert_eq!(
            s.on_deadline(t0.plus(CANCEL_UNANSWERED).plus(CANCEL_UNANSWERED)),
            None
        );
    }

    #[test]
    fn partial_then_cancel_confirmed_sends_market_for_the_rest_only() {
        let mut s = stop();
        let t0 = stubs::ts();
        assert!(s.on_deadline(t0).is_none(), "not triggered, no deadline");
        s.on_status(&upd(10, OrderStatus::PartiallyFilled, 30, None), t0, T);
        assert_eq!(s.deadline, Some(t0.plus(T)));
        assert_eq!(
            s.on_deadline(t0.plus(T)),
            Some(StopAction::Cancel(OrderId(10)))
        );
        // A partial fill during the pending cancel is not a rejection.
        assert!(
            s.on_status(&upd(10, OrderStatus::PartiallyFilled, 40, None), t0, T)
                .is_empty()
        );
        assert_eq!(s.state, StopState::CancelPending);
        let a = s.on_status(&upd(10, OrderStatus::Cancelled, 40, None), t0, T);
        assert_eq!(a, vec![StopAction::SendMarket { qty: 60 }]);
        assert_eq!(s.state, StopState::MarketSent);
    }

    /// Real TWS row 1: IB's bid of -1 ("no data") reaches the engine as no bid, and a sell
    /// stop at 495 is not through on it; a real bid at the stop is.
    #[test]
    fn a_side_with_no_data_never_triggers_a_stop() {
        let mut s = stop();
        let t0 = stubs::ts();
        let q = |bid: Option<Price>| tradeguard_model::Quote {
            instrument: Instrument::stock("SPY"),
            bid,
            ask: Some(p("494.02")),
            last: None,
            bid_size: 0,
            ask_size: 1,
            greeks: None,
            underlying_price: None,
            ts: t0,
        };
        assert!(!s.on_quote(&q(None), t0, T));
        assert_eq!(s.state, StopState::Working);
        assert!(s.on_quote(&q(Some(p("495"))), t0, T));
    }

    #[test]
    fn fill_while_cancel_pending_and_rejected_cancel() {
        let mut s = stop();
        let t0 = stubs::ts();
        let q = tradeguard_model::Quote {
            instrument: Instrument::stock("SPY"),
            bid: Some(p("494")),
            ask: Some(p("494.02")),
            last: None,
            bid_size: 1,
            ask_size: 1,
            greeks: None,
            underlying_price: None,
            ts: t0,
        };
        assert!(s.on_quote(&q, t0, T));
        s.on_deadline(t0.plus(T));
        let a = s.on_status(
            &upd(10, OrderStatus::Submitted, 0, Some("sim.cancel_rejected")),
            t0.plus(T),
            T,
        );
        assert!(matches!(
            &a[0],
            StopAction::Alert {
                code: "stop.cancel_rejected",
                ..
            }
        ));
        assert_eq!(s.state, StopState::Working);
        assert_eq!(s.deadline, Some(t0.plus(T).plus(T)));
        s.on_deadline(t0.plus(T).plus(T));
        assert!(
            s.on_status(&upd(10, OrderStatus::Filled, 100, None), t0, T)
                .is_empty()
        );
        assert_eq!((s.state, s.market_order), (StopState::Done, None));
    }

    #[test]
    fn superseded_stop_ends_cancelled_without_a_market_order() {
        let mut s = stop();
        let t0 = stubs::ts();
        assert_eq!(
            s.supersede(Timestamp(0)),
            Some(StopAction::Cancel(OrderId(10)))
        );
        assert_eq!(s.state, StopState::CancelPending);
        // A rejected cancel re-arms the stop; its deadline retries the cancel.
        let a = s.on_status(
            &upd(10, OrderStatus::Submitted, 0, Some("sim.cancel_rejected")),
            t0,
            T,
        );
        assert!(matches!(
            &a[0],
            StopAction::Alert {
                code: "stop.cancel_rejected",
                ..
            }
        ));
        assert_eq!(s.state, StopState::Working);
        assert_eq!(
            s.on_deadline(t0.plus(T)),
            Some(StopAction::Cancel(OrderId(10)))
        );
        let a = s.on_status(&upd(10, OrderStatus::Cancelled, 30, None), t0, T);
        assert!(
            a.is_empty(),
            "no market order: the close takes over ({a:?})"
        );
        assert_eq!(
            (s.state, s.filled(), s.market_order),
            (StopState::Cancelled, 30, None)
        );
        assert!(s.is_terminal());
        assert_eq!(s.supersede(Timestamp(0)), None);
        // Superseding during the stop's own pending cancel: no market order either.
        let mut s = stop();
        s.on_status(&upd(10, OrderStatus::PartiallyFilled, 10, None), t0, T);
        s.on_deadline(t0.plus(T));
        assert_eq!(s.supersede(Timestamp(0)), None);
        assert!(
            s.on_status(&upd(10, OrderStatus::Cancelled, 10, None), t0, T)
                .is_empty()
        );
        assert_eq!(s.state, StopState::Cancelled);
    }

    #[test]
    fn a_late_acknowledgement_is_not_a_rejected_cancel() {
        let mut s = stop();
        let t0 = stubs::ts();
        assert!(s.supersede(Timestamp(0)).is_some());
        // The stop-limit's own Submitted ack arrives after our cancel request: ignored.
        assert!(
            s.on_status(&upd(10, OrderStatus::Submitted, 0, None), t0, T)
                .is_empty()
        );
        assert_eq!(s.state, StopState::CancelPending);
        // After the broker acknowledged the cancel, Submitted means it kept the order.
        assert!(
            s.on_status(&upd(10, OrderStatus::PendingCancel, 0, None), t0, T)
                .is_empty()
        );
        let a = s.on_status(&upd(10, OrderStatus::Submitted, 0, None), t0, T);
        assert!(matches!(
            &a[0],
            StopAction::Alert {
                code: "stop.cancel_rejected",
                ..
            }
        ));
        assert_eq!(s.state, StopState::Working);
    }
}
