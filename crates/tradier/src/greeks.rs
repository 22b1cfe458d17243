//! Greeks for Tradier's option quotes from our own pricing on the live quote, not Tradier's
//! (ORATS', refreshed about hourly: <https://docs.tradier.com/docs/quotes>): the implied
//! volatility of the mid, then Black-Scholes-Merton Greeks in the model's conventions (delta per
//! 1.00 of the underlying, vega per vol point, theta per calendar day).

use chrono::TimeZone;
use tradeguard_model::{Greeks, OptionContract, Price, Quote, Right, Timestamp};
use tradeguard_pricing::{BsmInputs, OptionType, bsm, implied_vol};

/// The risk-free rate used for the Greeks (continuously compounded).
pub const RATE: f64 = 0.04;

/// Years from `now` to the option's last close (16:00 New York on expiry), `None` when past.
fn years_left(o: &OptionContract, now: Timestamp) -> Option<f64> {
    let close = o.expiry.and_hms_opt(16, 0, 0)?;
    let at = chrono_tz::America::New_York
        .from_local_datetime(&close)
        .single()?
        .timestamp_millis();
    let ms = at - now.millis();
    (ms > 0).then(|| ms as f64 / (365.0 * 86_400_000.0))
}

/// The Greeks of an option quote given the underlying's price, when the quote is two-sided
/// and the mid has an implied volatility.
pub fn of_quote(o: &OptionContract, q: &Quote, spot: Price, now: Timestamp) -> Option<Greeks> {
    let mid = q.mid()?.to_f64();
    let t = years_left(o, now)?;
    let kind = match o.right {
        Right::Call => OptionType::Call,
        Right::Put => OptionType::Put,
    };
    let (s, k) = (spot.to_f64(), o.strike.to_f64());
    let iv = implied_vol(kind, mid, s, k, t, RATE, 0.0).ok()?;
    let g = bsm(&BsmInputs {
        kind,
        spot: s,
        strike: k,
        t,
        r: RATE,
        q: 0.0,
        vol: iv,
    })
    .ok()?;
    Some(Greeks {
        iv,
        delta: g.delta,
        gamma: g.gamma,
        vega: g.vega / 100.0,
        theta: g.theta / 365.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::Instrument;

    #[test]
    fn a_put_quote_gets_a_negative_delta_and_its_own_iv() {
        let Instrument::Option(o) = Instrument::from_occ("SPY301220P00440000").unwrap() else {
            unreachable!()
        };
        let q = Quote {
            instrument: Instrument::Option(o.clone()),
            bid: Some(Price::parse("29.00").unwrap()),
            ask: Some(Price::parse("31.00").unwrap()),
            last: None,
            bid_size: 1,
            ask_size: 1,
            greeks: None,
            underlying_price: None,
            ts: Timestamp::from_secs(0),
        };
        let now = Timestamp::from_secs(1_796_601_600); // 2026-12-07
        let g = of_quote(&o, &q, Price::parse("450").unwrap(), now).unwrap();
        assert!(g.delta < 0.0 && g.delta > -1.0, "{g:?}");
        assert!(g.iv > 0.05 && g.iv < 1.0, "{g:?}");
        // The mid reprices at that vol.
        let back = bsm(&BsmInputs {
            kind: OptionType::Put,
            spot: 450.0,
            strike: 440.0,
            t: years_left(&o, now).unwrap(),
            r: RATE,
            q: 0.0,
            vol: g.iv,
        })
        .unwrap();
        assert!((back.price - 30.0).abs() < 1e-6, "{}", back.price);
        let one_sided = Quote { bid: None, ..q };
        assert!(of_quote(&o, &one_sided, Price::parse("450").unwrap(), now).is_none());
    }
}
