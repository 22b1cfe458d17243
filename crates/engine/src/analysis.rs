//! What the strategy detail screen shows about one strategy's risk: the payoff at expiry and
//! today over a range of underlying prices, and the stress grid (price moves × implied-vol
//! shocks × spread widening) with its worst cell.
//!
//! The legs are priced exactly as the pre-trade gate prices them ([`PricingStressModel`]): the
//! underlying price, each option's implied vol (the broker's Greeks, else implied from its
//! mark) and half its quoted spread come from the live quotes. A leg without those inputs is an
//! error naming it, never left out of the numbers.

use crate::book::Book;
use crate::error::RiskError;
use crate::strategies::StrategyView;
use crate::stress_model::PricingStressModel;
use tradeguard_model::{Quote, Timestamp};
use tradeguard_pricing::payoff::PayoffPoint;
use tradeguard_pricing::{StressConfig, StressResult, payoff_curve, stress_grid};

/// Points on the payoff chart.
pub const PAYOFF_POINTS: usize = 121;
/// The chart spans at least this fraction of the underlying price either side of it.
pub const PAYOFF_MIN_HALF_RANGE: f64 = 0.15;

/// The stress grid of the detail screen: moves −15 % … +15 % in 1.5 % steps, IV ×1.0/×1.3/×1.5,
/// spreads ×1.0/×1.5/×2.0 (the gate's shocks on a wider range of moves).
pub fn detail_grid() -> StressConfig {
    StressConfig::default_grid_21x3x3()
}

/// Payoff and stress of one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyRisk {
    /// Underlying symbol.
    pub underlying: String,
    /// Its price now.
    pub spot: f64,
    /// P&L at the first expiry and today, from `lo` to `hi`.
    pub payoff: Vec<PayoffPoint>,
    /// Strikes of the option legs (chart markers), ascending, deduplicated.
    pub strikes: Vec<f64>,
    /// The grid's axes.
    pub grid: StressConfig,
    /// Every cell and the worst.
    pub stress: StressResult,
}

/// Errors of [`analyse`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The strategy has no legs left.
    #[error("the strategy has no open legs")]
    NoLegs,
    /// A leg could not be priced (no underlying price, no implied vol, ...).
    #[error(transparent)]
    Risk(#[from] RiskError),
    /// The pricing crate refused the inputs.
    #[error("pricing failed: {0}")]
    Pricing(&'static str),
}

impl AnalysisError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoLegs => "analysis.no_legs",
            Self::Risk(e) => e.code(),
            Self::Pricing(code) => code,
        }
    }
}

/// The payoff and stress grid of `s`, priced from `quotes` (the live book's last quotes) at
/// `now`. Entry prices are the legs' average open prices.
pub fn analyse<'a>(
    model: &PricingStressModel,
    s: &StrategyView,
    quotes: impl IntoIterator<Item = &'a Quote>,
    now: Timestamp,
) -> Result<StrategyRisk, AnalysisError> {
    let open: Vec<_> = s.legs.iter().filter(|l| l.qty != 0).collect();
    let first = open.first().ok_or(AnalysisError::NoLegs)?;
    let underlying = first.instrument.underlying().to_owned();
    let mut book = Book::new();
    for q in quotes {
        book.on_quote(q);
    }
    let mut legs = Vec::with_capacity(open.len());
    for l in &open {
        let mut leg = model.risk_leg(&book, &l.instrument, l.qty, now)?;
        leg.entry_price = Some(l.avg_price.to_f64());
        legs.push(leg);
    }
    let spot = book
        .spot(&underlying)
        .ok_or_else(|| RiskError::NoSpot(underlying.clone()))?
        .to_f64();
    let mut strikes: Vec<f64> = open
        .iter()
        .filter_map(|l| l.instrument.as_option().map(|o| o.strike.to_f64()))
        .collect();
    strikes.sort_by(f64::total_cmp);
    strikes.dedup();
    let (lo, hi) = chart_range(spot, &strikes);
    let payoff =
        payoff_curve(&legs, lo, hi, PAYOFF_POINTS).map_err(|e| AnalysisError::Pricing(e.code()))?;
    let grid = detail_grid();
    let stress = stress_grid(&legs, &grid).map_err(|e| AnalysisError::Pricing(e.code()))?;
    Ok(StrategyRisk {
        underlying,
        spot,
        payoff,
        strikes,
        grid,
        stress,
    })
}

/// From 15 % below the spot (or 5 % below the lowest strike, if lower) to 15 % above it (or 5 %
/// above the highest strike).
fn chart_range(spot: f64, strikes: &[f64]) -> (f64, f64) {
    let mut lo = spot * (1.0 - PAYOFF_MIN_HALF_RANGE);
    let mut hi = spot * (1.0 + PAYOFF_MIN_HALF_RANGE);
    if let (Some(&min), Some(&max)) = (strikes.first(), strikes.last()) {
        lo = lo.min(min * 0.95);
        hi = hi.max(max * 1.05);
    }
    (lo.max(0.01), hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::MarkStatus;
    use crate::strategies::{LegView, StrategyView};
    use tradeguard_model::{
        AccountId, Greeks, Instrument, LegRole, ManualClock, Price, StrategyId, StrategyKind,
        StrategyState, stubs,
    };

    fn px(s: &str) -> Price {
        Price::parse(s).expect("price")
    }

    fn now_30_days_out() -> Timestamp {
        let day = stubs::expiry() - chrono::Duration::days(30);
        Timestamp::from_datetime(day.and_hms_opt(15, 0, 0).expect("time").and_utc()).expect("ts")
    }

    fn quote(inst: &Instrument, bid: &str, ask: &str, iv: f64) -> Quote {
        Quote {
            instrument: inst.clone(),
            bid: Some(px(bid)),
            ask: Some(px(ask)),
            last: None,
            bid_size: 10,
            ask_size: 10,
            greeks: Some(Greeks {
                iv,
                delta: 0.0,
                gamma: 0.0,
                vega: 0.0,
                theta: 0.0,
            }),
            underlying_price: Some(px("450")),
            ts: Timestamp::default(),
        }
    }

    fn model() -> PricingStressModel {
        PricingStressModel::new(std::sync::Arc::new(ManualClock::new(now_30_days_out())))
    }

    fn leg(instrument: Instrument, qty: i64, avg: &str) -> LegView {
        LegView {
            instrument,
            qty,
            role: LegRole::Hedge,
            avg_price: px(avg),
            mark: None,
            mark_status: MarkStatus::Fresh,
            quote_age: None,
            pnl: None,
            greeks: None,
        }
    }

    /// SPY iron condor 435/440/460/465: shorts sold at 2.00, wings bought at 1.00 (a 2.00 credit).
    fn condor() -> (StrategyView, Vec<Quote>) {
        let p435 = stubs::put(435);
        let p440 = stubs::put(440);
        let c460 = stubs::call(460);
        let c465 = stubs::call(465);
        let quotes = vec![
            quote(&p435, "0.95", "1.05", 0.20),
            quote(&p440, "1.45", "1.55", 0.19),
            quote(&c460, "1.45", "1.55", 0.17),
            quote(&c465, "0.95", "1.05", 0.16),
        ];
        let s = StrategyView {
            id: StrategyId(7),
            account: AccountId::new("DU1"),
            name: "SPY IC".into(),
            kind: StrategyKind::IronCondor,
            state: StrategyState::Open,
            broken_reason: None,
            recognized: false,
            legs: vec![
                leg(p435, 1, "1.00"),
                leg(p440, -1, "2.00"),
                leg(c460, -1, "2.00"),
                leg(c465, 1, "1.00"),
            ],
            entry_credit: None,
            market_value: None,
            pnl: None,
            mark_status: MarkStatus::Fresh,
            greeks: Default::default(),
        };
        (s, quotes)
    }

    #[test]
    fn condor_payoff_at_expiry_is_the_credit_inside_and_the_width_less_credit_outside() {
        let (s, quotes) = condor();
        let model = model();
        let r = analyse(&model, &s, &quotes, now_30_days_out()).expect("analysed");
        assert_eq!(r.underlying, "SPY");
        assert!((r.spot - 450.0).abs() < 1e-9);
        assert_eq!(r.strikes, vec![435.0, 440.0, 460.0, 465.0]);
        assert_eq!(r.payoff.len(), PAYOFF_POINTS);
        // 15 % either side of 450 covers every strike ± 5 %.
        assert!((r.payoff[0].spot - 382.5).abs() < 1e-9);
        assert!((r.payoff[PAYOFF_POINTS - 1].spot - 517.5).abs() < 1e-9);
        let at = |spot: f64| {
            r.payoff
                .iter()
                .min_by(|a, b| (a.spot - spot).abs().total_cmp(&(b.spot - spot).abs()))
                .expect("point")
        };
        // Credit 2 × (2.00 − 1.00) = 2.00 a share = $200; wings 5 wide: max loss $300.
        assert!((at(450.0).pnl_expiry - 200.0).abs() < 1e-6);
        assert!((at(400.0).pnl_expiry + 300.0).abs() < 1e-6);
        assert!((at(500.0).pnl_expiry + 300.0).abs() < 1e-6);
        // Today the curve lies strictly between the extremes.
        assert!(at(450.0).pnl_today < 200.0 && at(450.0).pnl_today > -300.0);
    }

    #[test]
    fn stress_grid_covers_the_detail_axes_and_its_worst_cell_is_a_loss() {
        let (s, quotes) = condor();
        let model = model();
        let r = analyse(&model, &s, &quotes, now_30_days_out()).expect("analysed");
        assert_eq!(r.stress.cells.len(), 21 * 3 * 3);
        let worst = r.stress.worst;
        assert!(r.stress.cells.iter().all(|c| c.loss <= worst.loss));
        // A 5-wide condor cannot lose more than its width (plus liquidation costs) per unit.
        assert!(worst.loss > 0.0 && worst.loss < 500.0 + 100.0, "{worst:?}");
        assert!(
            worst.move_pct.abs() >= 3.0,
            "the worst case is a large move: {worst:?}"
        );
    }

    #[test]
    fn a_leg_without_a_quote_is_an_error_naming_it() {
        let (s, mut quotes) = condor();
        quotes.retain(|q| q.instrument != s.legs[2].instrument);
        let model = model();
        let e = analyse(&model, &s, &quotes, now_30_days_out()).unwrap_err();
        assert_eq!(e.code(), "risk.no_vol", "{e}");
        assert!(e.to_string().contains("460"), "{e}");
    }

    #[test]
    fn no_open_legs_is_refused() {
        let (mut s, quotes) = condor();
        for l in &mut s.legs {
            l.qty = 0;
        }
        let model = model();
        assert_eq!(
            analyse(&model, &s, &quotes, now_30_days_out()).unwrap_err(),
            AnalysisError::NoLegs
        );
    }
}
