//! Simulated market: underlying price paths (GBM + Poisson jumps + gaps at the open) and
//! quotes for stock and options (Black-Scholes theo ± spread that widens in fast markets).
//! Prices are `f64` inside this model only; everything leaving it is a fixed-point `Price`.

use crate::bs;
use crate::calendar::{self, Session};
use crate::config::{MarketConfig, UnderlyingSpec};
use crate::error::SimError;
use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tradeguard_model::{
    ChainListing, ExerciseStyle, Greeks, Instrument, OptionClass, OptionContract, Price, Quote,
    Right, SCALE, Timestamp,
};

/// Trading seconds per year used for the diffusion (252 days × 6.5 h).
const TRADING_SECS_PER_YEAR: f64 = 252.0 * 6.5 * 3600.0;
/// The same for futures, which trade about 23 hours a day on Globex.
const GLOBEX_SECS_PER_YEAR: f64 = 252.0 * 23.0 * 3600.0;
const SECS_PER_YEAR: f64 = 365.0 * 86_400.0;
/// Prices are kept inside this band so conversions can never fail.
const MIN_PX: f64 = 0.01;
const MAX_PX: f64 = 1_000_000.0;

#[derive(Debug, Clone)]
pub(crate) struct Underlying {
    pub spec: UnderlyingSpec,
    pub spot: f64,
    pub fast_until: Timestamp,
    /// A futures root (its contracts trade Globex hours, see [`calendar::globex_open`]).
    pub futures: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Market {
    pub cfg: MarketConfig,
    pub unders: Vec<Underlying>,
    /// Globex traded at the previous step (for the futures' reopening gap).
    globex_was_open: bool,
}

/// `true` with probability `p`; never draws when `p <= 0` (or NaN), always true when `p >= 1`.
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        return false;
    }
    p >= 1.0 || rng.random::<f64>() < p
}

fn clamp_px(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(MIN_PX, MAX_PX)
    } else {
        MIN_PX
    }
}

/// Raw fixed-point value of a finite, clamped f64 (cannot overflow: |x| ≤ 1e6).
fn raw(x: f64) -> i64 {
    let x = if x.is_finite() {
        x.clamp(-MAX_PX, MAX_PX)
    } else {
        0.0
    };
    (x * SCALE as f64).round() as i64
}

fn floor_tick(x: f64, tick: i64) -> Price {
    let r = raw(x);
    Price::from_raw(r - r.rem_euclid(tick.max(1)))
}

fn ceil_tick(x: f64, tick: i64) -> Price {
    let r = raw(x);
    let t = tick.max(1);
    let m = r.rem_euclid(t);
    Price::from_raw(if m == 0 { r } else { r - m + t })
}

impl Market {
    pub fn new(specs: &[UnderlyingSpec], cfg: MarketConfig) -> Self {
        let unders = specs
            .iter()
            .map(|s| Underlying {
                spot: clamp_px(s.price.to_f64()),
                futures: tradeguard_model::futures::spec(&s.symbol).is_some(),
                spec: s.clone(),
                fast_until: Timestamp(i64::MIN),
            })
            .collect();
        Self {
            cfg,
            unders,
            globex_was_open: false,
        }
    }

    /// Some underlying is a futures root.
    pub fn has_futures(&self) -> bool {
        self.unders.iter().any(|u| u.futures)
    }

    fn find(&self, sym: &str) -> Option<&Underlying> {
        // A future's underlying is its root's path.
        self.unders.iter().find(|u| u.spec.symbol == sym)
    }

    /// Advances every underlying by `dt_secs` ending at `t`. Prices move only while their
    /// market trades (regular hours; Globex hours for futures roots); the first step after a
    /// pause applies the overnight gap.
    pub fn step(
        &mut self,
        t: Timestamp,
        dt_secs: f64,
        prev: Session,
        now: Session,
        rng: &mut ChaCha8Rng,
    ) {
        let globex = calendar::globex_open(t);
        let globex_was = std::mem::replace(&mut self.globex_was_open, globex);
        if now != Session::Regular && !(globex && self.has_futures()) {
            return;
        }
        let cfg = &self.cfg;
        for u in &mut self.unders {
            let (open, was_open, year) = if u.futures {
                (globex, globex_was, GLOBEX_SECS_PER_YEAR)
            } else {
                (
                    now == Session::Regular,
                    prev == Session::Regular,
                    TRADING_SECS_PER_YEAR,
                )
            };
            if !open {
                continue;
            }
            let dt = dt_secs / year;
            let mut s = u.spot;
            if !was_open && cfg.gap_std > 0.0 {
                let z: f64 = rng.sample(StandardNormal);
                s *= (cfg.gap_std * z).exp();
            }
            let vol = u.spec.vol.max(0.0);
            let z: f64 = rng.sample(StandardNormal);
            s *= ((u.spec.drift - 0.5 * vol * vol) * dt + vol * dt.sqrt() * z).exp();
            let mut fast = z.abs() > 3.0;
            if chance(rng, cfg.jump_intensity * dt) {
                let j: f64 = rng.sample(StandardNormal);
                s *= (cfg.jump_mean + cfg.jump_std * j).exp();
                fast = true;
            }
            if fast {
                u.fast_until = t.plus(cfg.fast_duration);
            }
            // The opening rotation: wide spreads for the first moments of the session.
            if !was_open {
                u.fast_until = u.fast_until.max(t.plus(cfg.opening_wide));
            }
            u.spot = clamp_px(s);
        }
    }

    /// Current spot as a fixed-point price (rounded to the 4th decimal).
    pub fn spot(&self, sym: &str) -> Option<Price> {
        self.find(sym).map(|u| Price::from_raw(raw(u.spot)))
    }

    /// Sets a spot price (tests and scenarios).
    pub fn set_spot(&mut self, sym: &str, px: Price) -> Result<(), SimError> {
        let u = self
            .unders
            .iter_mut()
            .find(|u| u.spec.symbol == sym)
            .ok_or_else(|| SimError::UnknownUnderlying(sym.to_owned()))?;
        u.spot = clamp_px(px.to_f64());
        Ok(())
    }

    /// The simulator's option listing on `sym` at `now`: expiries on the next eight Fridays
    /// (Thursday when the Friday is not a trading day) and the third Friday of the next six
    /// months; strikes every 0.5 below 25, 1 below 200, 5 below 1,000 and 25 above, from 30 %
    /// under the price to 30 % over it. Futures roots list no options.
    pub fn listing(&self, sym: &str, now: Timestamp) -> Result<ChainListing, SimError> {
        let u = self
            .find(sym)
            .filter(|u| !u.futures)
            .ok_or_else(|| SimError::UnknownUnderlying(sym.to_owned()))?;
        let today = calendar::et_date(now);
        let listed = |d: NaiveDate| {
            if calendar::is_trading_day(d) {
                d
            } else {
                d.pred_opt().unwrap_or(d)
            }
        };
        let to_friday = (4 + 7 - today.weekday().num_days_from_monday()) % 7;
        let first_friday = today + chrono::Days::new(u64::from(to_friday));
        let mut expiries: Vec<NaiveDate> = (0..8u64)
            .map(|w| listed(first_friday + chrono::Days::new(7 * w)))
            .collect();
        let mut month = today.with_day(1).unwrap_or(today);
        for _ in 0..7 {
            if let Some(f) = tradeguard_model::futures::third_friday(month.year(), month.month()) {
                expiries.push(listed(f));
            }
            month = month + chrono::Months::new(1);
        }
        expiries.retain(|d| *d >= today);
        expiries.sort_unstable();
        expiries.dedup();
        expiries.truncate(14);
        let step = match u.spot {
            s if s < 25.0 => SCALE / 2,
            s if s < 200.0 => SCALE,
            s if s < 1_000.0 => 5 * SCALE,
            _ => 25 * SCALE,
        };
        let lo = ((u.spot * 0.7 * SCALE as f64) as i64 / step).max(1) * step;
        let hi = (u.spot * 1.3 * SCALE as f64) as i64;
        let strikes = (0..)
            .map(|i| lo + i * step)
            .take_while(|k| *k <= hi)
            .map(Price::from_raw)
            .collect();
        Ok(ChainListing {
            underlying: sym.to_owned(),
            multiplier: 100,
            style: ExerciseStyle::American,
            class: OptionClass::Equity,
            expiries,
            strikes,
        })
    }

    /// Is the underlying of `sym` in a fast market at `t`?
    pub fn is_fast(&self, sym: &str, t: Timestamp) -> bool {
        self.find(sym).is_some_and(|u| t < u.fast_until)
    }

    fn option_model(&self, u: &Underlying, o: &OptionContract, now: Timestamp) -> bs::Bs {
        let t = calendar::close_of(o.expiry).nanos_since(now) as f64 / 1e9 / SECS_PER_YEAR;
        let call = o.right == Right::Call;
        let (s, k) = (u.spot, o.strike.to_f64());
        bs::price(
            call,
            s,
            k,
            t,
            self.cfg.rate,
            u.spec.dividend_yield,
            self.iv(u, o),
        )
    }

    fn iv(&self, u: &Underlying, o: &OptionContract) -> f64 {
        (u.spec.vol * (1.0 - self.cfg.skew * (o.strike.to_f64() / u.spot).ln())).clamp(0.05, 3.0)
    }

    /// Theoretical value per unit (stock: spot; option: model price).
    pub fn theo(&self, inst: &Instrument, now: Timestamp) -> Result<Price, SimError> {
        let u = self
            .find(inst.underlying())
            .ok_or_else(|| SimError::UnknownUnderlying(inst.underlying().to_owned()))?;
        match inst {
            Instrument::Stock { .. } => Ok(Price::from_raw(raw(u.spot))),
            Instrument::Option(o) => Ok(Price::from_raw(raw(self.option_model(u, o, now).price))),
            // A future on its own underlying (the index level the root's path follows), at its
            // tick.
            Instrument::Future { symbol, .. } => {
                Ok(Price::from_raw(raw(u.spot)).round_to_tick(future_tick(symbol, self.cfg.tick)))
            }
        }
    }

    /// Top-of-book quote at `now`.
    pub fn quote(&self, inst: &Instrument, now: Timestamp) -> Result<Quote, SimError> {
        let u = self
            .find(inst.underlying())
            .ok_or_else(|| SimError::UnknownUnderlying(inst.underlying().to_owned()))?;
        let fast = now < u.fast_until;
        let mult = if fast {
            self.cfg.fast_spread_mult.max(1.0)
        } else {
            1.0
        };
        let tick = self.cfg.tick.raw().max(1);
        let tick_f = tick as f64 / SCALE as f64;
        let size_div = if fast { 4 } else { 1 };
        match inst {
            Instrument::Stock { .. } => {
                let half = (u.spot * f64::from(self.cfg.stock_half_spread_bps) / 10_000.0)
                    .max(tick_f)
                    * mult;
                let bid = floor_tick(u.spot - half, tick).max(Price::from_raw(tick));
                let ask = ceil_tick(u.spot + half, tick).max(Price::from_raw(bid.raw() + tick));
                Ok(Quote {
                    instrument: inst.clone(),
                    bid: Some(bid),
                    ask: Some(ask),
                    last: Some(Price::from_raw(raw(u.spot)).round_to_tick(Price::from_raw(tick))),
                    bid_size: 500 / size_div,
                    ask_size: 500 / size_div,
                    greeks: None,
                    underlying_price: None,
                    ts: now,
                })
            }
            Instrument::Option(o) => {
                let m = self.option_model(u, o, now);
                let half = (m.price * self.cfg.option_half_spread_frac).max(tick_f) * mult;
                let bid = floor_tick((m.price - half).max(0.0), tick);
                let ask = ceil_tick(m.price + half, tick).max(Price::from_raw(bid.raw() + tick));
                Ok(Quote {
                    instrument: inst.clone(),
                    bid: Some(bid),
                    ask: Some(ask),
                    last: None,
                    bid_size: 20 / size_div,
                    ask_size: 20 / size_div,
                    greeks: Some(Greeks {
                        iv: self.iv(u, o),
                        delta: m.delta,
                        gamma: m.gamma,
                        vega: m.vega,
                        theta: m.theta,
                    }),
                    underlying_price: Some(Price::from_raw(raw(u.spot))),
                    ts: now,
                })
            }
            Instrument::Future { symbol, .. } => {
                // One tick wide, as the index futures trade (two in a fast market).
                let t = future_tick(symbol, self.cfg.tick).raw().max(1);
                let wide = if fast { 2 } else { 1 };
                let mid = Price::from_raw(raw(u.spot)).round_to_tick(Price::from_raw(t));
                let bid = Price::from_raw(mid.raw() - t * wide / 2);
                let bid = bid.round_to_tick(Price::from_raw(t));
                let ask = Price::from_raw(bid.raw() + t * wide);
                Ok(Quote {
                    instrument: inst.clone(),
                    bid: Some(bid),
                    ask: Some(ask),
                    last: Some(mid),
                    bid_size: 40 / size_div,
                    ask_size: 40 / size_div,
                    greeks: None,
                    underlying_price: None,
                    ts: now,
                })
            }
        }
    }
}

/// A future's minimum tick: its product's (CME specifications), else the market's.
fn future_tick(root: &str, fallback: Price) -> Price {
    tradeguard_model::futures::spec(root).map_or(fallback, |s| s.tick)
}

/// The minimum tick of an instrument: a future's product's, else the market's.
pub fn tick_of(inst: &Instrument, market_tick: Price) -> Price {
    match inst {
        Instrument::Future { symbol, .. } => future_tick(symbol, market_tick),
        _ => market_tick,
    }
}
