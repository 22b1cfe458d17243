//! An option chain's implied vols and Greeks from its quotes, all at once (every quote tick of
//! the chain view): each option's implied volatility from the mid of its two-sided quote, then
//! Black-Scholes-Merton price and Greeks at that volatility. European exercise is the model (for
//! American equity options the common approximation; the chain shows it as such).
//!
//! An option without a two-sided market, or whose mid is outside the no-arbitrage bounds, has no
//! implied vol: its row says why, never a guessed number.

use crate::european::bsm_unchecked;
use crate::implied::implied_vol_from;
use crate::types::{BsmInputs, Greeks, OptionType};

/// One option of the chain as quoted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainQuote {
    /// Call or put.
    pub kind: OptionType,
    /// Strike.
    pub strike: f64,
    /// Years to expiry.
    pub t: f64,
    /// Best bid (`None`: no bid).
    pub bid: Option<f64>,
    /// Best ask (`None`: no ask).
    pub ask: Option<f64>,
}

/// Why a row has no implied vol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoVol {
    /// Not a two-sided market (a bid or an ask missing, or a crossed or zero quote).
    OneSided,
    /// The mid is outside the no-arbitrage bounds or the solver failed; the pricing error's
    /// code.
    Unsolved(&'static str),
}

/// One row: the mid, and the implied vol with the Greeks, or why not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainRow {
    /// Mid of the quote, when two-sided.
    pub mid: Option<f64>,
    /// Implied vol and the Greeks at it.
    pub greeks: Result<(f64, Greeks), NoVol>,
}

/// Implied vols are solved to this (absolute) precision: far below what a quote can tell.
pub const VOL_TOL: f64 = 1e-9;

/// The rows of `quotes` on an underlying at `spot` (rates `r`, `q`), into `out`. When `out`
/// holds the previous tick's rows of the same chain (same length), each option's implied vol
/// there is the solver's starting guess (a step or two instead of a cold solve); otherwise it
/// is solved from scratch.
pub fn chain_greeks(spot: f64, r: f64, q: f64, quotes: &[ChainQuote], out: &mut Vec<ChainRow>) {
    if out.len() != quotes.len() {
        out.clear();
        out.resize(
            quotes.len(),
            ChainRow {
                mid: None,
                greeks: Err(NoVol::OneSided),
            },
        );
    }
    for (c, row) in quotes.iter().zip(out.iter_mut()) {
        let guess = row.greeks.ok().map(|(v, _)| v).filter(|v| *v > 0.0);
        let mid = match (c.bid, c.ask) {
            (Some(b), Some(a)) if b > 0.0 && a >= b && a.is_finite() => Some(0.5 * (a + b)),
            _ => None,
        };
        let greeks = match mid {
            None => Err(NoVol::OneSided),
            Some(m) => match implied_vol_from(c.kind, m, spot, c.strike, c.t, r, q, guess, VOL_TOL)
            {
                Ok(vol) => Ok((
                    vol,
                    bsm_unchecked(&BsmInputs {
                        kind: c.kind,
                        spot,
                        strike: c.strike,
                        t: c.t,
                        r,
                        q,
                        vol,
                    }),
                )),
                Err(e) => Err(NoVol::Unsolved(e.code())),
            },
        };
        *row = ChainRow { mid, greeks };
    }
}

/// A deterministic chain of `expiries × strikes × 2` options around `spot`, quoted a cent either
/// side of Black-Scholes prices on a volatility smile (benchmarks and tests).
pub fn sample_chain(spot: f64, r: f64, q: f64, expiries: usize, strikes: usize) -> Vec<ChainQuote> {
    let mut out = Vec::with_capacity(expiries * strikes * 2);
    for e in 0..expiries {
        let t = (7.0 + 14.0 * e as f64) / 365.0;
        for k in 0..strikes {
            let strike = spot * (0.7 + 0.6 * k as f64 / strikes.max(2).saturating_sub(1) as f64);
            let m = (strike / spot).ln();
            let vol = 0.18 + 0.25 * m * m - 0.08 * m;
            for kind in [OptionType::Call, OptionType::Put] {
                let px = bsm_unchecked(&BsmInputs {
                    kind,
                    spot,
                    strike,
                    t,
                    r,
                    q,
                    vol,
                })
                .price;
                out.push(ChainQuote {
                    kind,
                    strike,
                    t,
                    bid: Some((px - 0.01).max(0.0)),
                    ask: Some(px + 0.01),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_vols_round_trip_and_one_sided_quotes_say_so() {
        let (spot, r, q) = (575.0, 0.04, 0.01);
        let quotes = [
            ChainQuote {
                kind: OptionType::Put,
                strike: 550.0,
                t: 30.0 / 365.0,
                bid: None,
                ask: None,
            },
            ChainQuote {
                kind: OptionType::Call,
                strike: 600.0,
                t: 30.0 / 365.0,
                bid: Some(0.0),
                ask: Some(0.05),
            },
            ChainQuote {
                kind: OptionType::Call,
                strike: 500.0,
                t: 30.0 / 365.0,
                bid: Some(1.0),
                ask: Some(1.2),
            },
        ];
        let mut rows = Vec::new();
        chain_greeks(spot, r, q, &quotes, &mut rows);
        assert_eq!(rows[0].greeks, Err(NoVol::OneSided));
        assert_eq!(rows[1].greeks, Err(NoVol::OneSided), "no bid");
        assert!(
            matches!(rows[2].greeks, Err(NoVol::Unsolved(_))),
            "a 75-dollar-deep call at 1.10 is below intrinsic: {:?}",
            rows[2]
        );

        // A whole chain priced at known vols: each implied vol is the one it was priced at (the
        // mid is the model price when the quote is a cent either side and the price is above a
        // cent).
        let chain = sample_chain(spot, r, q, 4, 25);
        chain_greeks(spot, r, q, &chain, &mut rows);
        assert_eq!(rows.len(), chain.len());
        let mut solved = 0;
        for (c, row) in chain.iter().zip(&rows) {
            let m = (c.strike / spot).ln();
            let vol = 0.18 + 0.25 * m * m - 0.08 * m;
            // Where the time value is material (deep in or out of the money a week out, the
            // vol is not identifiable from a price: the solver's answer is any vol).
            let fwd_intrinsic = match c.kind {
                OptionType::Call => spot * (-q * c.t).exp() - c.strike * (-r * c.t).exp(),
                OptionType::Put => c.strike * (-r * c.t).exp() - spot * (-q * c.t).exp(),
            }
            .max(0.0);
            let mid = row.mid.unwrap_or(0.0);
            if c.bid.is_some_and(|b| b > 0.0) && mid - fwd_intrinsic > 0.25 {
                let (iv, g) = row.greeks.expect("solved");
                assert!((iv - vol).abs() < 1e-7, "{c:?}: {iv} vs {vol}");
                assert!((g.price - mid).abs() < 1e-6, "{c:?}");
                solved += 1;
            }
        }
        assert!(solved > chain.len() / 4, "{solved} of {}", chain.len());
        // The next tick, a cent higher everywhere: started from this tick's vols, the rows
        // agree with a cold solve.
        let next: Vec<ChainQuote> = chain
            .iter()
            .map(|c| ChainQuote {
                bid: c.bid.map(|b| b + 0.01),
                ask: c.ask.map(|a| a + 0.01),
                ..*c
            })
            .collect();
        let mut cold = Vec::new();
        chain_greeks(spot, r, q, &next, &mut cold);
        chain_greeks(spot, r, q, &next, &mut rows);
        for (w, c) in rows.iter().zip(&cold) {
            match (w.greeks, c.greeks) {
                (Ok((a, _)), Ok((b, _))) => assert!((a - b).abs() < 1e-8 || c.mid.unwrap() < 0.3),
                (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{w:?} {c:?}"),
            }
        }
        // Every two-sided row has an answer: a vol or the solver's reason.
        assert!(rows.iter().all(|r| r.mid.is_none()
            || r.greeks.is_ok()
            || matches!(r.greeks, Err(NoVol::Unsolved(_)))));
    }
}
