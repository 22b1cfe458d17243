//! The pre-trade gate: a pure, synchronous decision in front of every broker order.
//!
//! Checks, in order (the first failure is returned; a refused order consumes no throttle
//! token):
//! 1. trading state — HALTED lets only Emergency orders (and hedges that only reduce) pass;
//!    REDUCING lets only orders whose every leg reduces an existing position pass;
//! 2. Broken strategy — only Emergency and Hedge orders may touch it: neither an order naming
//!    it nor any order with a leg on one of its instruments (whatever strategy the order names,
//!    whichever direction: a Broken strategy's instruments are locked for every normal path,
//!    so only the assignment guard's emergency close changes them);
//! 3. maximum leg quantity and maximum notional — *opening* limits: not for Emergency / Hedge,
//!    and not for an order whose every leg reduces an existing position
//!    ([`OrderIntent::is_reducing`]): a close always goes through. The coordinator sends a
//!    reducing leg larger than `max_order_qty` as several child orders of at most
//!    `max_order_qty` each ([`crate::group::split_qty`]; Emergency and Hedge orders go out
//!    whole, as they always did); a stop-loss, one resting order that cannot be split, stays
//!    limited to `max_order_qty` (refused at placement);
//! 4. worst-case stress of book + order against `stress_pct` of available funds (only for
//!    orders that do not purely reduce);
//! 5. the token-bucket throttle on Clock time — Emergency and purely reducing orders are
//!    counted (their messages take tokens, so the bucket reflects real traffic), never refused.

use crate::book::Book;
use crate::config::GateConfig;
use crate::error::GateRefusal;
use crate::intent::{OrderIntent, Purpose, leg_reduces};
use crate::risk::RiskModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tradeguard_model::{InstrumentId, Money, OrderType, StrategyId, Timestamp};

/// Account-wide trading state, ordered from the least to the most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TradingState {
    /// Everything the limits allow.
    Active,
    /// Only exposure-reducing orders.
    Reducing,
    /// Only emergency exits.
    Halted,
}

/// The trading state in force, why, and since when (what the coordinator publishes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradingStatus {
    /// The state.
    pub state: TradingState,
    /// Why it was set, for a person (empty while `Active` was never changed).
    pub why: String,
    /// Clock time it was set (`None`: at start).
    pub since: Option<Timestamp>,
}

impl Default for TradingStatus {
    fn default() -> Self {
        Self {
            state: TradingState::Active,
            why: String::new(),
            since: None,
        }
    }
}

/// Token bucket in milli-tokens, refilled from Clock time.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity_milli: u64,
    per_sec: u64,
    milli: u64,
    last: Option<Timestamp>,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `per_sec` tokens per second.
    pub fn new(capacity: u32, per_sec: u32) -> Self {
        let capacity_milli = u64::from(capacity.max(1)) * 1000;
        Self {
            capacity_milli,
            per_sec: u64::from(per_sec.max(1)),
            milli: capacity_milli,
            last: None,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        if let Some(last) = self.last {
            let ns = u64::try_from(now.nanos_since(last)).unwrap_or(0);
            // milli-tokens = ns × per_sec / 1e6; in u128 to avoid overflow.
            let add = u128::from(ns) * u128::from(self.per_sec) / 1_000_000;
            let add = u64::try_from(add).unwrap_or(u64::MAX);
            self.milli = self.milli.saturating_add(add).min(self.capacity_milli);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Timestamp) -> u32 {
        self.refill(now);
        u32::try_from(self.milli / 1000).unwrap_or(u32::MAX)
    }

    /// Takes `n` tokens, or says how long until they are there.
    pub fn try_take(&mut self, n: u32, now: Timestamp) -> Result<(), (u32, u64)> {
        self.refill(now);
        let need = u64::from(n) * 1000;
        if self.milli >= need {
            self.milli -= need;
            Ok(())
        } else {
            let missing = need - self.milli;
            let wait_ms = missing.div_ceil(self.per_sec);
            Err((u32::try_from(self.milli / 1000).unwrap_or(0), wait_ms))
        }
    }

    /// Takes `n` tokens even if that goes below zero (clamped at zero): emergency traffic.
    pub fn take_forced(&mut self, n: u32, now: Timestamp) {
        self.refill(now);
        self.milli = self.milli.saturating_sub(u64::from(n) * 1000);
    }
}

/// What the gate reads besides the intent.
pub struct GateContext<'a> {
    /// Current trading state.
    pub state: TradingState,
    /// Clock time.
    pub now: Timestamp,
    /// Positions and marks.
    pub book: &'a Book,
    /// Available funds for the stress check (`None` until the first account snapshot).
    pub available_funds: Option<Money>,
    /// Broken strategies with the stable code of their reason.
    pub broken: &'a BTreeMap<StrategyId, String>,
    /// Instruments held by a Broken strategy's legs, with that strategy (locked for every
    /// order that is not an emergency exit or a hedge).
    pub broken_legs: &'a BTreeMap<InstrumentId, StrategyId>,
    /// Stress model.
    pub risk: &'a dyn RiskModel,
}

/// The gate: configuration plus the throttle's state.
#[derive(Debug, Clone)]
pub struct PreTradeGate {
    cfg: GateConfig,
    bucket: TokenBucket,
}

impl PreTradeGate {
    /// A gate with a full throttle bucket.
    pub fn new(cfg: GateConfig) -> Self {
        let bucket = TokenBucket::new(cfg.burst, cfg.max_msgs_per_sec);
        Self { cfg, bucket }
    }

    /// The configuration.
    pub fn config(&self) -> &GateConfig {
        &self.cfg
    }

    /// Counts broker messages sent outside a gated intent (cancels, later tiers, stop market
    /// orders) so the throttle reflects real traffic; never refuses.
    pub fn count_messages(&mut self, n: u32, now: Timestamp) {
        self.bucket.take_forced(n, now);
    }

    /// Decides whether `intent`, which will need `messages` broker messages, may be sent.
    pub fn check(
        &mut self,
        intent: &OrderIntent,
        messages: u32,
        ctx: &GateContext<'_>,
    ) -> Result<(), GateRefusal> {
        let emergency = intent.purpose == Purpose::Emergency;
        let hedge = intent.purpose == Purpose::Hedge;
        let reducing = intent.is_reducing(ctx.book);
        match ctx.state {
            TradingState::Halted if !(emergency || (hedge && reducing)) => {
                return Err(GateRefusal::Halted {
                    purpose: intent.purpose,
                });
            }
            TradingState::Reducing if !emergency => {
                if let Some(l) = intent.legs.iter().find(|l| !leg_reduces(l, ctx.book)) {
                    return Err(GateRefusal::NotReducing {
                        instrument: l.instrument.id(),
                        position: ctx.book.qty(&l.instrument.id()),
                        signed_qty: l.signed_qty(),
                    });
                }
            }
            _ => {}
        }
        if !(emergency || hedge) {
            if let Some(s) = intent.strategy
                && let Some(reason) = ctx.broken.get(&s)
            {
                return Err(GateRefusal::StrategyBroken {
                    strategy: s,
                    reason: reason.clone(),
                });
            }
            if let Some((l, s)) = intent
                .legs
                .iter()
                .find_map(|l| ctx.broken_legs.get(&l.instrument.id()).map(|s| (l, *s)))
            {
                return Err(GateRefusal::BrokenStrategyLeg {
                    instrument: l.instrument.id(),
                    strategy: s,
                    reason: ctx.broken.get(&s).cloned(),
                });
            }
            if !reducing {
                self.check_size(intent, ctx.book)?;
            }
        }
        if !reducing && !emergency {
            let worst = ctx.risk.worst_case(ctx.book, &intent.legs)?;
            let requirement = worst.requirement;
            let available = ctx.available_funds.ok_or(GateRefusal::NoAccount)?;
            let limit = available
                .mul_ratio(i64::from(self.cfg.stress_pct), 100)
                .unwrap_or(Money::ZERO);
            if requirement > limit {
                return Err(GateRefusal::StressLimit {
                    requirement,
                    scenario: worst.scenario,
                    excess: requirement.checked_sub(limit).unwrap_or(requirement),
                    limit,
                    pct: self.cfg.stress_pct,
                    available,
                });
            }
        }
        if emergency || reducing {
            self.bucket.take_forced(messages, ctx.now);
            return Ok(());
        }
        self.bucket
            .try_take(messages, ctx.now)
            .map_err(|(available, retry_after_ms)| GateRefusal::Throttled {
                needed: messages,
                available,
                retry_after_ms,
            })
    }

    fn check_size(&self, intent: &OrderIntent, book: &Book) -> Result<(), GateRefusal> {
        let mut notional = Money::ZERO;
        for l in &intent.legs {
            if l.qty > self.cfg.max_order_qty {
                return Err(GateRefusal::MaxOrderQty {
                    instrument: l.instrument.id(),
                    qty: l.qty,
                    max: self.cfg.max_order_qty,
                });
            }
            let px = match l.order_type {
                OrderType::Limit { limit } | OrderType::StopLimit { limit, .. } => Some(limit),
                OrderType::Stop { stop } => Some(stop),
                OrderType::Market | OrderType::TrailingStop { .. } => book.mark(&l.instrument.id()),
            }
            .ok_or_else(|| GateRefusal::NoPrice {
                instrument: l.instrument.id(),
            })?;
            let n = px
                .notional(l.qty, l.instrument.multiplier())
                .unwrap_or(Money::MAX);
            notional = notional.checked_add(n).unwrap_or(Money::MAX);
        }
        if notional > self.cfg.max_notional {
            return Err(GateRefusal::MaxNotional {
                notional,
                max: self.cfg.max_notional,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::IntrinsicStressModel;
    use tradeguard_model::{Instrument, Price, Side, stubs};

    fn px(u: i64) -> Price {
        Price::from_units(u).unwrap_or_default()
    }

    struct Fx {
        book: Book,
        broken: BTreeMap<StrategyId, String>,
        broken_legs: BTreeMap<InstrumentId, StrategyId>,
        risk: IntrinsicStressModel,
    }

    impl Fx {
        fn new() -> Self {
            let mut book = Book::new();
            book.set_spot("SPY", px(450));
            book.set(&stubs::put(440), -1);
            Self {
                book,
                broken: BTreeMap::new(),
                broken_legs: BTreeMap::new(),
                risk: IntrinsicStressModel::default(),
            }
        }
        fn ctx(&self, state: TradingState, secs: i64) -> GateContext<'_> {
            GateContext {
                state,
                now: Timestamp::from_secs(1_000 + secs),
                book: &self.book,
                available_funds: Some(Money::from_units(100_000).unwrap_or_default()),
                broken: &self.broken,
                broken_legs: &self.broken_legs,
                risk: &self.risk,
            }
        }
    }

    fn buy_put(qty: i64, purpose: Purpose) -> OrderIntent {
        OrderIntent::new(purpose, stubs::account()).leg(
            stubs::put(440),
            Side::Buy,
            qty,
            OrderType::Limit { limit: px(2) },
        )
    }

    #[test]
    fn states_filter_by_purpose_and_direction() {
        let fx = Fx::new();
        let mut g = PreTradeGate::new(GateConfig::default());
        let open = OrderIntent::new(Purpose::Open, stubs::account()).leg(
            stubs::put(430),
            Side::Buy,
            1,
            OrderType::Limit { limit: px(1) },
        );
        assert_eq!(g.check(&open, 1, &fx.ctx(TradingState::Active, 0)), Ok(()));
        let e = g
            .check(&open, 1, &fx.ctx(TradingState::Reducing, 0))
            .unwrap_err();
        assert_eq!(e.code(), "gate.not_reducing");
        assert!(e.to_string().contains("430"), "{e}");
        // Buying back the short passes REDUCING, but not HALTED.
        let close = buy_put(1, Purpose::Close);
        assert_eq!(
            g.check(&close, 1, &fx.ctx(TradingState::Reducing, 0)),
            Ok(())
        );
        let e = g
            .check(&close, 1, &fx.ctx(TradingState::Halted, 0))
            .unwrap_err();
        assert_eq!(
            e,
            GateRefusal::Halted {
                purpose: Purpose::Close
            }
        );
        assert_eq!(
            g.check(
                &buy_put(1, Purpose::Emergency),
                1,
                &fx.ctx(TradingState::Halted, 0)
            ),
            Ok(())
        );
        assert_eq!(
            g.check(
                &buy_put(1, Purpose::Hedge),
                1,
                &fx.ctx(TradingState::Halted, 0)
            ),
            Ok(())
        );
        // Over-buying flips the position: not reducing.
        let e = g
            .check(
                &buy_put(2, Purpose::Close),
                1,
                &fx.ctx(TradingState::Reducing, 0),
            )
            .unwrap_err();
        assert_eq!(e.code(), "gate.not_reducing");
    }

    #[test]
    fn broken_strategy_only_takes_emergency() {
        let mut fx = Fx::new();
        fx.broken.insert(StrategyId(7), "broken.assigned".into());
        let mut g = PreTradeGate::new(GateConfig::default());
        let close = buy_put(1, Purpose::Close).for_strategy(StrategyId(7));
        let e = g
            .check(&close, 1, &fx.ctx(TradingState::Active, 0))
            .unwrap_err();
        assert_eq!(e.code(), "gate.strategy_broken");
        assert!(e.to_string().contains("broken.assigned"));
        let mut em = close.clone();
        em.purpose = Purpose::Emergency;
        assert_eq!(g.check(&em, 1, &fx.ctx(TradingState::Active, 0)), Ok(()));
    }

    #[test]
    fn broken_strategy_legs_are_locked_for_every_normal_order() {
        let mut fx = Fx::new();
        fx.broken.insert(StrategyId(7), "broken.assigned".into());
        fx.broken_legs.insert(stubs::put(440).id(), StrategyId(7));
        let mut g = PreTradeGate::new(GateConfig::default());
        // Another strategy's close, an untagged flatten, an open adding to the leg, a stop.
        for purpose in [
            Purpose::Close,
            Purpose::Flatten,
            Purpose::Open,
            Purpose::StopLoss,
        ] {
            let o = buy_put(1, purpose).for_strategy(StrategyId(8));
            let e = g
                .check(&o, 1, &fx.ctx(TradingState::Active, 0))
                .unwrap_err();
            assert_eq!(
                e,
                GateRefusal::BrokenStrategyLeg {
                    instrument: stubs::put(440).id(),
                    strategy: StrategyId(7),
                    reason: Some("broken.assigned".into()),
                },
                "{purpose:?}"
            );
            assert_eq!(e.code(), "gate.broken_strategy_leg");
            assert!(e.to_string().contains("strategy 7"), "{e}");
        }
        // Emergency exits and hedges pass; other instruments are not locked.
        for purpose in [Purpose::Emergency, Purpose::Hedge] {
            assert_eq!(
                g.check(&buy_put(1, purpose), 1, &fx.ctx(TradingState::Active, 0)),
                Ok(())
            );
        }
        let other = OrderIntent::new(Purpose::Close, stubs::account()).leg(
            stubs::put(430),
            Side::Sell,
            1,
            OrderType::Limit { limit: px(1) },
        );
        assert_eq!(g.check(&other, 1, &fx.ctx(TradingState::Active, 0)), Ok(()));
    }

    #[test]
    fn size_notional_and_price_limits() {
        let fx = Fx::new();
        let cfg = GateConfig {
            max_order_qty: 10,
            max_notional: Money::from_units(5_000).unwrap_or_default(),
            ..GateConfig::default()
        };
        let mut g = PreTradeGate::new(cfg);
        let big = buy_put(11, Purpose::Close);
        assert_eq!(
            g.check(&big, 1, &fx.ctx(TradingState::Active, 0)),
            Err(GateRefusal::MaxOrderQty {
                instrument: stubs::put(440).id(),
                qty: 11,
                max: 10
            })
        );
        // 2.00 × 100 × 10 = 2 000 passes; at 6.00 it is 6 000.
        assert_eq!(
            g.check(
                &buy_put(10, Purpose::Close),
                1,
                &fx.ctx(TradingState::Active, 0)
            ),
            Ok(())
        );
        let mut dear = buy_put(10, Purpose::Close);
        dear.legs[0].order_type = OrderType::Limit { limit: px(6) };
        assert_eq!(
            g.check(&dear, 1, &fx.ctx(TradingState::Active, 0))
                .unwrap_err()
                .code(),
            "gate.max_notional"
        );
        // Buying 2 against a short 1 flips the position: an opening order, so priced.
        let mut mkt = buy_put(2, Purpose::Close);
        mkt.legs[0].order_type = OrderType::Market;
        assert_eq!(
            g.check(&mkt, 1, &fx.ctx(TradingState::Active, 0))
                .unwrap_err()
                .code(),
            "gate.no_price"
        );
    }

    #[test]
    fn reducing_orders_skip_opening_limits() {
        let mut fx = Fx::new();
        fx.book.set(&stubs::put(440), -500);
        fx.book.set(&Instrument::stock("SPY"), 2_000);
        let cfg = GateConfig {
            max_order_qty: 100,
            max_notional: Money::from_units(10_000).unwrap_or_default(),
            max_msgs_per_sec: 1,
            burst: 2,
            ..GateConfig::default()
        };
        let mut g = PreTradeGate::new(cfg);
        // Funds for the stress of the short 500 puts: only the limits under test refuse.
        let ctx = |secs| GateContext {
            available_funds: Some(Money::from_units(100_000_000).unwrap_or_default()),
            ..fx.ctx(TradingState::Active, secs)
        };
        let ctx0 = ctx(0);
        // Buying back 500 short puts and selling 2 000 shares at market: over the size limit,
        // over the notional (500 × 100 × 2.00 alone is 100 000) and 25 messages against a
        // bucket of 2. A close: it passes.
        let close = buy_put(500, Purpose::Flatten).leg(
            Instrument::stock("SPY"),
            Side::Sell,
            2_000,
            OrderType::Market,
        );
        assert!(close.is_reducing(&fx.book));
        assert_eq!(g.check(&close, 25, &ctx0), Ok(()));
        // Its messages were counted: the bucket is empty for an opening order...
        let open_small = OrderIntent::new(Purpose::Open, stubs::account()).leg(
            stubs::put(430),
            Side::Buy,
            1,
            OrderType::Limit { limit: px(1) },
        );
        assert_eq!(
            g.check(&open_small, 1, &ctx0).unwrap_err().code(),
            "gate.throttled"
        );
        // ... while closes still go through.
        assert_eq!(g.check(&buy_put(100, Purpose::Close), 1, &ctx0), Ok(()));
        // One second later the opening limits still apply to opening orders, whatever the
        // purpose: buying 501 flips the short 500 (not reducing), 101 new puts are too many,
        // and 100 at 2.00 is 20 000 of notional.
        let ctx = ctx(5);
        assert_eq!(
            g.check(&buy_put(501, Purpose::Flatten), 1, &ctx),
            Err(GateRefusal::MaxOrderQty {
                instrument: stubs::put(440).id(),
                qty: 501,
                max: 100
            })
        );
        let mut open_big = open_small.clone();
        open_big.legs[0].qty = 101;
        assert_eq!(
            g.check(&open_big, 1, &ctx).unwrap_err().code(),
            "gate.max_order_qty"
        );
        let mut open_dear = open_small.clone();
        open_dear.legs[0].qty = 100;
        open_dear.legs[0].order_type = OrderType::Limit { limit: px(2) };
        assert_eq!(
            g.check(&open_dear, 1, &ctx).unwrap_err().code(),
            "gate.max_notional"
        );
        // A mix of a close and an opening leg is an opening order: every limit applies.
        let mixed = buy_put(100, Purpose::Close).leg(
            stubs::put(430),
            Side::Buy,
            101,
            OrderType::Limit { limit: px(1) },
        );
        assert!(!mixed.is_reducing(&fx.book));
        assert_eq!(
            g.check(&mixed, 2, &ctx).unwrap_err().code(),
            "gate.max_order_qty"
        );
    }

    #[test]
    fn stress_limit_against_available_funds() {
        let mut fx = Fx::new();
        let mut g = PreTradeGate::new(GateConfig::default());
        // 20 naked 400 puts: at −15 % (382.50) each is worth 17.50 → 35 000; book's 440 put adds 5 750.
        let naked = OrderIntent::new(Purpose::Open, stubs::account()).leg(
            stubs::put(400),
            Side::Sell,
            20,
            OrderType::Limit { limit: px(1) },
        );
        let mut ctx = fx.ctx(TradingState::Active, 0);
        ctx.available_funds = Some(Money::from_units(40_000).unwrap_or_default());
        let e = g.check(&naked, 1, &ctx).unwrap_err();
        assert_eq!(
            e,
            GateRefusal::StressLimit {
                requirement: Money::from_units(40_750).unwrap_or_default(),
                scenario: crate::risk::StressScenario::moved(-1500),
                excess: Money::from_units(4_750).unwrap_or_default(),
                limit: Money::from_units(36_000).unwrap_or_default(),
                pct: 90,
                available: Money::from_units(40_000).unwrap_or_default(),
            }
        );
        assert_eq!(
            e.to_string(),
            "worst case 40750.00 (underlying −15 %) exceeds 36000.00 (90% of available funds \
             40000.00) by 4750.00"
        );
        ctx.available_funds = Some(Money::from_units(50_000).unwrap_or_default());
        assert_eq!(g.check(&naked, 1, &ctx), Ok(()));
        ctx.available_funds = None;
        assert_eq!(g.check(&naked, 1, &ctx), Err(GateRefusal::NoAccount));
        fx.book = Book::new();
        let ctx = fx.ctx(TradingState::Active, 0);
        assert_eq!(g.check(&naked, 1, &ctx).unwrap_err().code(), "risk.no_spot");
    }

    #[test]
    fn throttle_refills_on_clock_time_and_spares_emergencies() {
        let fx = Fx::new();
        let cfg = GateConfig {
            max_msgs_per_sec: 50,
            burst: 50,
            ..GateConfig::default()
        };
        let mut g = PreTradeGate::new(cfg);
        // An opening order (a close is never throttled, see reducing_orders_skip_opening_limits).
        let o = OrderIntent::new(Purpose::Open, stubs::account()).leg(
            stubs::put(430),
            Side::Buy,
            1,
            OrderType::Limit { limit: px(1) },
        );
        for _ in 0..50 {
            assert_eq!(g.check(&o, 1, &fx.ctx(TradingState::Active, 0)), Ok(()));
        }
        let e = g
            .check(&o, 1, &fx.ctx(TradingState::Active, 0))
            .unwrap_err();
        assert_eq!(
            e,
            GateRefusal::Throttled {
                needed: 1,
                available: 0,
                retry_after_ms: 20
            }
        );
        assert_eq!(
            g.check(
                &buy_put(1, Purpose::Emergency),
                1,
                &fx.ctx(TradingState::Active, 0)
            ),
            Ok(())
        );
        // One second later the bucket is full again: 50 more pass, the 51st does not.
        for _ in 0..50 {
            assert_eq!(g.check(&o, 1, &fx.ctx(TradingState::Active, 1)), Ok(()));
        }
        assert_eq!(
            g.check(&o, 1, &fx.ctx(TradingState::Active, 1))
                .unwrap_err()
                .code(),
            "gate.throttled"
        );
    }
}
