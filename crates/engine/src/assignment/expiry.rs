//! Expiry-day risk: short option legs that are in the money, or within a configurable distance
//! of it, in the last `lead_time` before the close of their expiry day — early enough to close
//! or roll them before they are assigned overnight.

use super::hours::MarketHours;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tradeguard_model::{Instrument, Price, Right, Strategy, StrategyId, StrategyState, Timestamp};

/// Expiry-day risk tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryRiskConfig {
    /// Warn from this long before the close of the expiry day.
    pub lead_time: Duration,
    /// "Near the money": out of the money by at most this many basis points of the spot.
    pub near_bps: u32,
}

impl Default for ExpiryRiskConfig {
    fn default() -> Self {
        Self {
            lead_time: Duration::from_secs(90 * 60),
            near_bps: 50,
        }
    }
}

/// Why a leg is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryRiskKind {
    /// In the money.
    InTheMoney,
    /// Out of the money by less than `near_bps`.
    NearTheMoney,
    /// No underlying price: cannot tell, so it is reported.
    NoSpot,
}

/// One short leg at risk on its expiry day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryRisk {
    /// Strategy.
    pub strategy: StrategyId,
    /// Leg index.
    pub leg: usize,
    /// The short option.
    pub option: Instrument,
    /// Signed quantity (< 0).
    pub qty: i64,
    /// Underlying price used.
    pub spot: Option<Price>,
    /// Why.
    pub kind: ExpiryRiskKind,
    /// Close of the expiry day.
    pub close: Timestamp,
}

/// Short legs of live strategies at risk at `now`.
pub fn check(
    strategies: &[Strategy],
    spot: &dyn Fn(&str) -> Option<Price>,
    now: Timestamp,
    hours: &dyn MarketHours,
    cfg: &ExpiryRiskConfig,
) -> Vec<ExpiryRisk> {
    let today = hours.local(now).date();
    let close = hours.close_of(today);
    if now < close.minus(cfg.lead_time) || now >= close {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in strategies
        .iter()
        .filter(|s| s.state != StrategyState::Closed)
    {
        for (i, l) in s.legs.iter().enumerate() {
            let Some(o) = l.instrument.as_option() else {
                continue;
            };
            if l.qty >= 0 || o.expiry != today {
                continue;
            }
            let px = spot(&o.underlying);
            let kind = match px {
                None => ExpiryRiskKind::NoSpot,
                Some(p) if o.intrinsic(p).is_positive() => ExpiryRiskKind::InTheMoney,
                Some(p) => {
                    let otm = match o.right {
                        Right::Put => p.raw().saturating_sub(o.strike.raw()),
                        Right::Call => o.strike.raw().saturating_sub(p.raw()),
                    };
                    let limit = i128::from(p.raw()) * i128::from(cfg.near_bps) / 10_000;
                    if i128::from(otm) <= limit {
                        ExpiryRiskKind::NearTheMoney
                    } else {
                        continue;
                    }
                }
            };
            out.push(ExpiryRisk {
                strategy: s.id,
                leg: i,
                option: l.instrument.clone(),
                qty: l.qty,
                spot: px,
                kind,
                close,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::hours::UsEquityHours;
    use tradeguard_model::stubs;

    #[test]
    fn warns_only_in_the_lead_window_of_the_expiry_day() {
        // Stub condor: short 440 P and short 460 C, expiring 2025-01-17.
        let h = UsEquityHours::fixed_offset(-5 * 3600);
        let s = [stubs::iron_condor_strategy()];
        let at = |hh, mm| h.instant(stubs::expiry().and_hms_opt(hh, mm, 0).unwrap());
        let cfg = ExpiryRiskConfig::default();
        let run = |spot: Option<&str>, t| {
            let px = spot.map(|p| Price::parse(p).unwrap());
            check(&s, &|_: &str| px, t, &h, &cfg)
        };
        assert!(
            run(Some("439"), at(14, 0)).is_empty(),
            "before the lead window"
        );
        let r = run(Some("439"), at(14, 45));
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!((r[0].leg, r[0].kind), (1, ExpiryRiskKind::InTheMoney));
        assert_eq!(r[0].close, at(16, 0));
        assert!(run(Some("439"), at(16, 0)).is_empty(), "after the close");
        // 0.45 % above the put strike: near; 2 % away from both: nothing.
        let r = run(Some("442"), at(15, 0));
        assert_eq!(
            r.iter().map(|x| x.kind).collect::<Vec<_>>(),
            vec![ExpiryRiskKind::NearTheMoney]
        );
        assert!(run(Some("450"), at(15, 0)).is_empty());
        let r = run(None, at(15, 0));
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|x| x.kind == ExpiryRiskKind::NoSpot));
        // Another day: nothing.
        let other = h.instant(
            stubs::expiry()
                .succ_opt()
                .unwrap()
                .and_hms_opt(15, 0, 0)
                .unwrap(),
        );
        assert!(run(Some("439"), other).is_empty());
    }
}
