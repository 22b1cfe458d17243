//! The simulated account: cash, positions with average cost, marking and a simple margin model.
//!
//! Margin is a portfolio-margin-like scan: per underlying, the worst loss of all its positions
//! (options at intrinsic value) over underlying moves of −15 % … +15 % in 1.5 % steps is the
//! maintenance requirement (futures alone on an underlying scan −7 % … +7 % in 0.7 % steps,
//! about CME's SPAN range for equity-index futures: MNQ at 21 000 needs ≈ $2 940 a contract);
//! initial = maintenance × `initial_margin_pct` / 100. Buying power is
//! net liquidation − initial margin (floored at 0). Deliberately simple: it only needs to
//! reject clearly unaffordable orders and give the engine realistic-looking numbers.

use crate::error::SimError;
use crate::market::Market;
use std::collections::BTreeMap;
use tradeguard_model::{
    AccountId, AccountSnapshot, Instrument, InstrumentId, Money, MoneyError, Position, Price,
    Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holding {
    pub instrument: Instrument,
    pub qty: i64,
    pub avg_cost: Price,
}

#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    pub account: AccountId,
    pub cash: Money,
    pub holdings: BTreeMap<InstrumentId, Holding>,
}

fn to_money(v: i128, what: &'static str) -> Result<Money, MoneyError> {
    i64::try_from(v)
        .map(Money::from_raw)
        .map_err(|_| MoneyError::Overflow(what))
}

impl Ledger {
    pub fn new(account: AccountId, cash: Money) -> Self {
        Self {
            account,
            cash,
            holdings: BTreeMap::new(),
        }
    }

    pub fn qty(&self, id: &InstrumentId) -> i64 {
        self.holdings.get(id).map_or(0, |h| h.qty)
    }

    pub fn position(&self, inst: &Instrument) -> Position {
        let h = self.holdings.get(&inst.id());
        Position {
            account: self.account.clone(),
            instrument: inst.clone(),
            qty: h.map_or(0, |h| h.qty),
            avg_cost: h.map_or(Price::ZERO, |h| h.avg_cost),
        }
    }

    /// Non-zero positions in instrument-id order.
    pub fn positions(&self) -> Vec<Position> {
        self.holdings
            .values()
            .filter(|h| h.qty != 0)
            .map(|h| Position {
                account: self.account.clone(),
                instrument: h.instrument.clone(),
                qty: h.qty,
                avg_cost: h.avg_cost,
            })
            .collect()
    }

    /// Changes a position by `dq` at `price`; `cash_flow` moves `price × dq × multiplier` out of
    /// cash (false for the option side of an exercise/assignment). Returns the new position.
    pub fn apply(
        &mut self,
        inst: &Instrument,
        dq: i64,
        price: Price,
        cash_flow: bool,
    ) -> Result<Position, MoneyError> {
        let h = self.holdings.entry(inst.id()).or_insert_with(|| Holding {
            instrument: inst.clone(),
            qty: 0,
            avg_cost: Price::ZERO,
        });
        let old = h.qty;
        if cash_flow {
            if matches!(inst, Instrument::Future { .. }) {
                // Futures move no premium: only what a reduction realises reaches cash.
                let closed = if old != 0 && old.signum() != dq.signum() {
                    dq.abs().min(old.abs()) * old.signum()
                } else {
                    0
                };
                let diff = Price::from_raw(price.raw().saturating_sub(h.avg_cost.raw()));
                self.cash = self
                    .cash
                    .checked_add(diff.notional(closed, inst.multiplier())?)?;
            } else {
                let cost = price.notional(dq, inst.multiplier())?;
                self.cash = self.cash.checked_sub(cost)?;
            }
        }
        let new = old.checked_add(dq).ok_or(MoneyError::Overflow("qty"))?;
        h.avg_cost = if new == 0 {
            Price::ZERO
        } else if old == 0 || old.signum() != new.signum() {
            price
        } else if new.abs() > old.abs() {
            let total = i128::from(h.avg_cost.raw()) * i128::from(old.abs())
                + i128::from(price.raw()) * i128::from(dq.abs());
            let n = i128::from(new.abs());
            let avg = (2 * total + n) / (2 * n);
            Price::from_raw(i64::try_from(avg).map_err(|_| MoneyError::Overflow("avg_cost"))?)
        } else {
            h.avg_cost
        };
        h.qty = new;
        Ok(self.position(inst))
    }

    /// Net liquidation: cash + positions marked at model value.
    pub fn net_liquidation(&self, market: &Market, now: Timestamp) -> Result<Money, SimError> {
        let mut v = i128::from(self.cash.raw());
        for h in self.holdings.values().filter(|h| h.qty != 0) {
            let mark = market.theo(&h.instrument, now)?;
            // A future is worth its open P&L; everything else its marked value.
            let value = if matches!(h.instrument, Instrument::Future { .. }) {
                Price::from_raw(mark.raw().saturating_sub(h.avg_cost.raw()))
            } else {
                mark
            };
            v += i128::from(value.notional(h.qty, h.instrument.multiplier())?.raw());
        }
        Ok(to_money(v, "net_liquidation")?)
    }

    /// Maintenance requirement from the ±15 % scan (±7 % for futures; see module docs).
    pub fn maintenance(&self, market: &Market, now: Timestamp) -> Result<Money, SimError> {
        let mut by_under: BTreeMap<&str, Vec<&Holding>> = BTreeMap::new();
        for h in self.holdings.values().filter(|h| h.qty != 0) {
            by_under
                .entry(h.instrument.underlying())
                .or_default()
                .push(h);
        }
        let mut total: i128 = 0;
        for (sym, hs) in by_under {
            let spot = market
                .spot(sym)
                .ok_or_else(|| SimError::UnknownUnderlying(sym.to_owned()))?;
            let mut marks = Vec::with_capacity(hs.len());
            for h in &hs {
                marks.push(market.theo(&h.instrument, now)?);
            }
            let futures_only = hs
                .iter()
                .all(|h| matches!(h.instrument, Instrument::Future { .. }));
            let step = if futures_only { 7 } else { 15 };
            let mut worst: i128 = 0;
            for k in -10i64..=10 {
                let s = spot.mul_ratio(1000 + step * k, 1000)?;
                let mut pnl: i128 = 0;
                for (h, mark) in hs.iter().zip(&marks) {
                    let value = match &h.instrument {
                        Instrument::Option(o) => o.intrinsic(s),
                        _ => s,
                    };
                    let diff = i128::from(value.raw()) - i128::from(mark.raw());
                    pnl += diff * i128::from(h.qty) * i128::from(h.instrument.multiplier());
                }
                worst = worst.min(pnl);
            }
            total -= worst;
        }
        Ok(to_money(total, "maintenance")?)
    }

    pub fn snapshot(
        &self,
        market: &Market,
        now: Timestamp,
        initial_pct: u32,
    ) -> Result<AccountSnapshot, SimError> {
        let nlv = self.net_liquidation(market, now)?;
        let maint = self.maintenance(market, now)?;
        let init = maint.mul_ratio(i64::from(initial_pct), 100)?;
        let excess = nlv.checked_sub(maint)?;
        let bp = nlv.checked_sub(init)?.max(Money::ZERO);
        Ok(AccountSnapshot {
            account: self.account.clone(),
            net_liquidation: nlv,
            maintenance_margin: maint,
            initial_margin: init,
            excess_liquidity: excess,
            buying_power: bp,
            ts: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    #[test]
    fn average_cost_and_cash() {
        let mut l = Ledger::new(stubs::account(), Money::from_units(10_000).unwrap());
        let spy = Instrument::stock("SPY");
        let p = |s: &str| Price::parse(s).unwrap();
        l.apply(&spy, 10, p("100"), true).unwrap();
        let pos = l.apply(&spy, 30, p("104"), true).unwrap();
        assert_eq!((pos.qty, pos.avg_cost), (40, p("103")));
        let pos = l.apply(&spy, -20, p("110"), true).unwrap();
        assert_eq!((pos.qty, pos.avg_cost), (20, p("103")));
        let pos = l.apply(&spy, -30, p("90"), true).unwrap();
        assert_eq!((pos.qty, pos.avg_cost), (-10, p("90")));
        // 10000 - 1000 - 3120 + 2200 + 2700
        assert_eq!(l.cash, Money::from_units(10_780).unwrap());
        let put = stubs::put(440);
        l.apply(&put, -2, p("1.25"), true).unwrap();
        assert_eq!(l.cash, Money::from_units(11_030).unwrap());
        l.apply(&put, 2, Price::ZERO, false).unwrap();
        assert_eq!(l.cash, Money::from_units(11_030).unwrap());
        assert_eq!(l.positions().len(), 1);
    }

    #[test]
    fn futures_move_only_realised_pnl_into_cash() {
        let mut l = Ledger::new(stubs::account(), Money::from_units(50_000).unwrap());
        let mnq = Instrument::Future {
            symbol: "MNQ".into(),
            expiry: chrono::NaiveDate::from_ymd_opt(2025, 12, 19).unwrap(),
            multiplier: 2,
        };
        let p = |s: &str| Price::parse(s).unwrap();
        l.apply(&mnq, 5, p("21000"), true).unwrap();
        assert_eq!(l.cash, Money::from_units(50_000).unwrap(), "no premium");
        // 3 sold 10 points higher: 3 × 10 × 2 realised.
        let pos = l.apply(&mnq, -3, p("21010"), true).unwrap();
        assert_eq!((pos.qty, pos.avg_cost), (2, p("21000")));
        assert_eq!(l.cash, Money::from_units(50_060).unwrap());
        // Through zero: 2 closed 20 points lower, 1 opened short.
        let pos = l.apply(&mnq, -3, p("20980"), true).unwrap();
        assert_eq!((pos.qty, pos.avg_cost), (-1, p("20980")));
        assert_eq!(l.cash, Money::from_units(49_980).unwrap());
    }

    #[test]
    fn futures_scan_seven_percent_and_options_fifteen() {
        let spec = |symbol: &str, price: i64| crate::config::UnderlyingSpec {
            symbol: symbol.into(),
            price: Price::from_units(price).unwrap(),
            vol: 0.2,
            drift: 0.0,
            dividend_yield: 0.0,
            ex_dividend_dates: Vec::new(),
        };
        let market = Market::new(
            &[spec("MNQ", 21_000), spec("SPY", 500)],
            crate::config::MarketConfig::default(),
        );
        let now = stubs::ts();
        let mut l = Ledger::new(stubs::account(), Money::from_units(50_000).unwrap());
        let mnq = Instrument::Future {
            symbol: "MNQ".into(),
            expiry: chrono::NaiveDate::from_ymd_opt(2025, 12, 19).unwrap(),
            multiplier: 2,
        };
        l.apply(&mnq, 5, Price::from_units(21_000).unwrap(), true)
            .unwrap();
        // 7 % of 21 000 × 2 × 5.
        assert_eq!(
            l.maintenance(&market, now).unwrap(),
            Money::from_units(14_700).unwrap()
        );
        let mut l = Ledger::new(stubs::account(), Money::from_units(50_000).unwrap());
        l.apply(
            &Instrument::stock("SPY"),
            100,
            Price::from_units(500).unwrap(),
            true,
        )
        .unwrap();
        // 15 % of 500 × 100.
        assert_eq!(
            l.maintenance(&market, now).unwrap(),
            Money::from_units(7_500).unwrap()
        );
    }
}
