//! [`PricingStressModel`]: the pre-trade gate's worst-case requirement from the pricing crate's
//! stress grid — underlying moves × implied-vol shocks × bid-ask spread widening, every option
//! repriced with Black-Scholes (American legs floored at intrinsic).
//!
//! Inputs per leg come from the engine's [`Book`]: the underlying price, the option's implied vol
//! (the broker's Greeks, else implied from the option's mark), and half the quoted spread as the
//! liquidation cost. Time to expiry runs to 16:00 New York on the expiry date. A leg whose inputs
//! are missing is an error naming it (the gate then refuses with that reason), never skipped.

use crate::book::Book;
use crate::error::RiskError;
use crate::intent::LegIntent;
use crate::risk::{RiskModel, StressScenario, WorstCase};
use std::collections::BTreeMap;
use std::sync::Arc;
use tradeguard_model::{Clock, Instrument, InstrumentId, Money, Right, Timestamp};
use tradeguard_pricing::{OptionType, PricingError, RiskLeg, StressConfig, stress_grid};

/// Seconds in the pricing year (t = days / 365).
const YEAR_SECS: f64 = 365.0 * 24.0 * 3600.0;
/// The shortest time to expiry priced: one minute, where value is within a cent of intrinsic.
const MIN_T: f64 = 60.0 / YEAR_SECS;

/// Worst-case stress over the pricing crate's grid (see module docs).
pub struct PricingStressModel {
    /// The grid: moves (%), IV multipliers, spread multipliers. Default: ±3 %, IV +30 %/+50 %,
    /// spreads 1.5×/2×.
    pub grid: StressConfig,
    /// Risk-free rate (continuous).
    pub rate: f64,
    /// Dividend yield per underlying (continuous); missing = 0.
    pub dividend_yields: BTreeMap<String, f64>,
    clock: Arc<dyn Clock>,
}

impl PricingStressModel {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            grid: StressConfig::default(),
            rate: 0.04,
            dividend_yields: BTreeMap::new(),
            clock,
        }
    }

    /// Years from `now` to the close of `expiry` (New York time), at least one minute.
    pub fn years_to_expiry(&self, expiry: chrono::NaiveDate, now: Timestamp) -> f64 {
        // The close of the expiry date, New York time (daylight saving and early closes).
        let close = crate::calendar::expiry_close(expiry);
        let secs = (close.nanos().saturating_sub(now.nanos())) as f64 / 1e9;
        (secs / YEAR_SECS).max(MIN_T)
    }

    /// One position as the pricing crate's leg: spot, implied vol and half spread from `book`,
    /// time to expiry from `now`; `entry_price` is left `None`.
    pub fn risk_leg(
        &self,
        book: &Book,
        inst: &Instrument,
        qty: i64,
        now: Timestamp,
    ) -> Result<RiskLeg, RiskError> {
        let id = inst.id();
        let symbol = inst.underlying();
        let spot = book
            .spot(symbol)
            .ok_or_else(|| RiskError::NoSpot(symbol.to_owned()))?
            .to_f64();
        let q = self.dividend_yields.get(symbol).copied().unwrap_or(0.0);
        let half_spread = book.half_spread(&id).map(|p| p.to_f64());
        let instrument = match inst {
            Instrument::Option(o) => {
                let t = self.years_to_expiry(o.expiry, now);
                let kind = match o.right {
                    Right::Call => OptionType::Call,
                    Right::Put => OptionType::Put,
                };
                let strike = o.strike.to_f64();
                let vol = match book.iv(&id) {
                    Some(v) => v,
                    None => implied_from_mark(book, &id, kind, spot, strike, t, self.rate, q)?,
                };
                tradeguard_pricing::Instrument::Option {
                    kind,
                    strike,
                    t,
                    vol,
                    american: matches!(o.style, tradeguard_model::ExerciseStyle::American),
                }
            }
            Instrument::Stock { .. } | Instrument::Future { .. } => {
                tradeguard_pricing::Instrument::Underlying
            }
        };
        Ok(RiskLeg {
            instrument,
            spot,
            r: self.rate,
            q,
            qty,
            multiplier: f64::from(inst.multiplier()),
            half_spread,
            entry_price: None,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn implied_from_mark(
    book: &Book,
    id: &InstrumentId,
    kind: OptionType,
    spot: f64,
    strike: f64,
    t: f64,
    r: f64,
    q: f64,
) -> Result<f64, RiskError> {
    let mark = book
        .mark(id)
        .ok_or_else(|| RiskError::NoVol(id.as_str().to_owned()))?;
    tradeguard_pricing::implied_vol(kind, mark.to_f64(), spot, strike, t, r, q)
        .map_err(|_: PricingError| RiskError::NoVol(id.as_str().to_owned()))
}

impl RiskModel for PricingStressModel {
    fn worst_case(&self, book: &Book, order: &[LegIntent]) -> Result<WorstCase, RiskError> {
        let mut pos: BTreeMap<InstrumentId, (Instrument, i64)> = BTreeMap::new();
        for (i, q) in book.positions() {
            pos.insert(i.id(), (i.clone(), q));
        }
        for l in order {
            let e = pos
                .entry(l.instrument.id())
                .or_insert((l.instrument.clone(), 0));
            e.1 = e.1.saturating_add(l.signed_qty());
        }
        let now = self.clock.now();
        let legs = pos
            .values()
            .filter(|(_, q)| *q != 0)
            .map(|(inst, q)| self.risk_leg(book, inst, *q, now))
            .collect::<Result<Vec<_>, _>>()?;
        if legs.is_empty() {
            return Ok(WorstCase {
                requirement: Money::ZERO,
                scenario: StressScenario::moved(0),
            });
        }
        let result = stress_grid(&legs, &self.grid).map_err(|e| RiskError::Pricing {
            subject: "the book".to_owned(),
            code: e.code(),
        })?;
        let w = &result.worst;
        Ok(WorstCase {
            requirement: Money::from_f64(w.loss.max(0.0)).map_err(|_| RiskError::Overflow)?,
            scenario: StressScenario {
                move_bps: (w.move_pct * 100.0).round() as i64,
                vol_pct: (w.vol_mult * 100.0).round().max(0.0) as u32,
                spread_pct: (w.spread_mult * 100.0).round().max(0.0) as u32,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::LegIntent;
    use tradeguard_model::{Greeks, ManualClock, OrderType, Price, Quote, Side, stubs};

    fn px(s: &str) -> Price {
        Price::parse(s).expect("price")
    }

    /// The stubs' expiry, minus 30 days, at 15:00 UTC.
    fn clock_30_days_out() -> Arc<ManualClock> {
        let expiry = stubs::expiry();
        let day = expiry - chrono::Duration::days(30);
        let dt = day.and_hms_opt(15, 0, 0).expect("time").and_utc();
        Arc::new(ManualClock::new(Timestamp::from_datetime(dt).expect("ts")))
    }

    fn quote(inst: Instrument, bid: &str, ask: &str, iv: Option<f64>, underlying: &str) -> Quote {
        Quote {
            instrument: inst,
            bid: Some(px(bid)),
            ask: Some(px(ask)),
            last: None,
            bid_size: 10,
            ask_size: 10,
            greeks: iv.map(|iv| Greeks {
                iv,
                delta: 0.0,
                gamma: 0.0,
                vega: 0.0,
                theta: 0.0,
            }),
            underlying_price: Some(px(underlying)),
            ts: Timestamp::default(),
        }
    }

    fn leg(instrument: Instrument, side: Side, qty: i64) -> LegIntent {
        LegIntent {
            instrument,
            side,
            qty,
            order_type: OrderType::Market,
        }
    }

    fn sell(inst: Instrument, qty: i64) -> LegIntent {
        leg(inst, Side::Sell, qty)
    }

    #[test]
    fn naked_short_put_worst_case_exceeds_defined_risk_spread() {
        let clock = clock_30_days_out();
        let model = PricingStressModel::new(clock);
        let mut book = Book::new();
        book.on_quote(&quote(stubs::put(440), "4.90", "5.10", Some(0.20), "450"));
        book.on_quote(&quote(stubs::put(435), "3.40", "3.60", Some(0.21), "450"));

        let naked = model
            .worst_case_requirement(&book, &[sell(stubs::put(440), 1)])
            .expect("naked");
        let mut spread_legs = vec![sell(stubs::put(440), 1)];
        spread_legs.push(leg(stubs::put(435), Side::Buy, 1));
        let spread = model
            .worst_case_requirement(&book, &spread_legs)
            .expect("spread");
        assert!(naked.is_positive() && spread.is_positive());
        assert!(
            spread < naked,
            "a protected put ({spread}) must stress lighter than a naked one ({naked})"
        );
        // A 5-wide spread can never lose more than its width plus the liquidation cost.
        assert!(
            spread <= Money::parse("560").expect("money"),
            "spread worst case {spread}"
        );
    }

    #[test]
    fn the_worst_case_names_its_scenario() {
        let model = PricingStressModel::new(clock_30_days_out());
        let mut book = Book::new();
        book.on_quote(&quote(stubs::put(440), "4.90", "5.10", Some(0.20), "450"));
        let w = model
            .worst_case(&book, &[sell(stubs::put(440), 1)])
            .expect("naked");
        // A short put loses most when the underlying falls, vol rises and spreads widen.
        assert_eq!(
            w.scenario,
            StressScenario {
                move_bps: -300,
                vol_pct: 150,
                spread_pct: 200
            }
        );
        assert_eq!(
            w.scenario.to_string(),
            "underlying −3 %, IV +50 %, spreads ×2"
        );
        assert_eq!(
            Some(w.requirement),
            model
                .worst_case_requirement(&book, &[sell(stubs::put(440), 1)])
                .ok()
        );
        assert_eq!(
            StressScenario {
                move_bps: 150,
                vol_pct: 130,
                spread_pct: 150
            }
            .to_string(),
            "underlying +1.5 %, IV +30 %, spreads ×1.5"
        );
    }

    #[test]
    fn option_without_iv_uses_vol_implied_from_its_mark() {
        let clock = clock_30_days_out();
        let model = PricingStressModel::new(clock.clone());
        // The vol that the 5.00 mid implies, computed independently.
        let t = model.years_to_expiry(stubs::expiry(), clock.now());
        let iv =
            tradeguard_pricing::implied_vol(OptionType::Put, 5.0, 450.0, 440.0, t, model.rate, 0.0)
                .expect("implied vol");
        let mut with_iv = Book::new();
        with_iv.on_quote(&quote(stubs::put(440), "4.90", "5.10", Some(iv), "450"));
        let mut without = Book::new();
        without.on_quote(&quote(stubs::put(440), "4.90", "5.10", None, "450"));
        let a = model
            .worst_case_requirement(&with_iv, &[sell(stubs::put(440), 1)])
            .expect("iv");
        let b = model
            .worst_case_requirement(&without, &[sell(stubs::put(440), 1)])
            .expect("implied");
        assert!(a.is_positive());
        let diff = a.checked_sub(b).expect("diff").checked_abs().expect("abs");
        assert!(diff <= Money::parse("0.01").expect("money"), "{a} vs {b}");
        // And a higher vol stresses a short put harder.
        let mut high = Book::new();
        high.on_quote(&quote(
            stubs::put(440),
            "4.90",
            "5.10",
            Some(iv * 1.5),
            "450",
        ));
        let c = model
            .worst_case_requirement(&high, &[sell(stubs::put(440), 1)])
            .expect("high");
        assert!(c > a, "{c} should exceed {a}");
    }

    #[test]
    fn missing_inputs_name_the_instrument() {
        let clock = clock_30_days_out();
        let model = PricingStressModel::new(clock.clone());
        let book = Book::new();
        let err = model
            .worst_case_requirement(&book, &[sell(stubs::put(440), 1)])
            .expect_err("no spot");
        assert_eq!(err.code(), "risk.no_spot");
        let mut book = Book::new();
        book.set_spot("SPY", px("450"));
        let err = model
            .worst_case_requirement(&book, &[sell(stubs::put(440), 1)])
            .expect_err("no vol");
        assert_eq!(err.code(), "risk.no_vol");
        assert!(err.to_string().contains("440"), "{err}");
    }

    #[test]
    fn empty_book_and_order_need_nothing() {
        let model = PricingStressModel::new(clock_30_days_out());
        assert_eq!(
            model
                .worst_case_requirement(&Book::new(), &[])
                .expect("empty"),
            Money::ZERO
        );
    }
}
