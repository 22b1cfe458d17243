//! The fake's account: positions, orders and quotes, and how orders fill.

use crate::wire::{AccountEvent, WireOrder, WirePosition};
use std::collections::BTreeMap;

/// How placed orders fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// A marketable order fills at once at the quote (market orders, limits through it).
    Marketable,
    /// Orders rest until [`crate::fake::FakeTradier::fill`].
    Manual,
}

/// A test's view of an order.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOrderView {
    /// Tradier's id.
    pub id: u64,
    /// The tag given.
    pub tag: Option<String>,
    /// Class.
    pub class: String,
    /// Status.
    pub status: String,
    /// (option or equity symbol, side word, quantity, executed) per part.
    pub parts: Vec<(String, String, i64, i64)>,
    /// When it was placed (order of arrival).
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub symbol: String,
    pub side: String,
    pub qty: i64,
    pub exec: i64,
    pub avg: f64,
    pub last_price: f64,
    pub last_qty: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: u64,
    pub leg_ids: Vec<u64>,
    pub class: String,
    pub underlying: String,
    pub order_type: String,
    pub duration: String,
    pub price: Option<f64>,
    pub stop: Option<f64>,
    pub status: String,
    pub tag: Option<String>,
    pub parts: Vec<Part>,
    /// Units of the order (multileg: the legs' common divisor).
    pub units: i64,
    pub reason: Option<String>,
    pub created: String,
    pub updated: String,
    pub seq: u64,
    /// Fill no more than this many units (a partial-fill fault).
    pub cap: Option<i64>,
}

impl Order {
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "filled" | "canceled" | "rejected" | "expired" | "error"
        )
    }

    fn ratio(&self, i: usize) -> i64 {
        (self.parts[i].qty / self.units.max(1)).max(1)
    }

    fn units_filled(&self) -> i64 {
        (0..self.parts.len())
            .map(|i| self.parts[i].exec / self.ratio(i))
            .min()
            .unwrap_or(0)
    }

    pub fn wire(&self, include_tag: bool) -> WireOrder {
        let single = self.parts.len() == 1 && self.class != "multileg";
        let leg = |p: &Part, id: u64| WireOrder {
            id,
            order_type: self.order_type.clone(),
            symbol: self.underlying.clone(),
            side: p.side.clone(),
            quantity: p.qty as f64,
            status: self.status.clone(),
            duration: self.duration.clone(),
            price: self.price,
            stop_price: self.stop,
            avg_fill_price: p.avg,
            exec_quantity: p.exec as f64,
            last_fill_price: p.last_price,
            last_fill_quantity: p.last_qty as f64,
            remaining_quantity: if self.is_final() {
                0.0
            } else {
                (p.qty - p.exec) as f64
            },
            create_date: self.created.clone(),
            transaction_date: self.updated.clone(),
            class: if p.symbol.len() > 6 {
                "option".into()
            } else {
                "equity".into()
            },
            option_symbol: (p.symbol.len() > 6).then(|| p.symbol.clone()),
            ..WireOrder::default()
        };
        if single {
            let p = &self.parts[0];
            let mut o = leg(p, self.id);
            o.class = self.class.clone();
            if self.class == "equity" {
                o.symbol = p.symbol.clone();
            }
            o.tag = self.tag.clone().filter(|_| include_tag);
            o.reason_description = self.reason.clone();
            return o;
        }
        let filled = self.units_filled();
        let net_avg: f64 = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let sign = if p.side.starts_with("buy") { 1.0 } else { -1.0 };
                sign * p.avg * self.ratio(i) as f64
            })
            .sum();
        WireOrder {
            id: self.id,
            order_type: self.order_type.clone(),
            symbol: self.underlying.clone(),
            side: "buy".into(),
            quantity: self.units as f64,
            status: self.status.clone(),
            duration: self.duration.clone(),
            price: self.price,
            avg_fill_price: if filled > 0 { net_avg.abs() } else { 0.0 },
            exec_quantity: filled as f64,
            remaining_quantity: if self.is_final() {
                0.0
            } else {
                (self.units - filled) as f64
            },
            create_date: self.created.clone(),
            transaction_date: self.updated.clone(),
            class: self.class.clone(),
            tag: self.tag.clone().filter(|_| include_tag),
            reason_description: self.reason.clone(),
            num_legs: Some(self.parts.len() as u32),
            strategy: Some("unknown".into()),
            leg: self
                .parts
                .iter()
                .zip(&self.leg_ids)
                .map(|(p, id)| leg(p, *id))
                .collect(),
            ..WireOrder::default()
        }
    }

    /// The account-stream event of this order's current state: no symbol, no side, no
    /// quantity (<https://docs.tradier.com/docs/account-streaming-responses>).
    pub fn event(&self, account: &str) -> AccountEvent {
        let w = self.wire(false);
        AccountEvent {
            event: "order".into(),
            id: Some(self.id),
            status: self.status.clone(),
            account: Some(account.into()),
            exec_quantity: w.exec_quantity,
            remaining_quantity: w.remaining_quantity,
            last_fill_quantity: w.last_fill_quantity,
            last_fill_price: w.last_fill_price,
            avg_fill_price: w.avg_fill_price,
            parent_id: None,
        }
    }

    pub fn view(&self) -> FakeOrderView {
        FakeOrderView {
            id: self.id,
            tag: self.tag.clone(),
            class: self.class.clone(),
            status: self.status.clone(),
            parts: self
                .parts
                .iter()
                .map(|p| (p.symbol.clone(), p.side.clone(), p.qty, p.exec))
                .collect(),
            seq: self.seq,
        }
    }
}

/// A position: quantity and total cost basis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Holding {
    pub qty: i64,
    pub cost: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Book2 {
    pub bid: f64,
    pub ask: f64,
}

/// Everything the fake account holds.
#[derive(Debug, Default)]
pub(crate) struct Account {
    pub positions: BTreeMap<String, Holding>,
    pub quotes: BTreeMap<String, Book2>,
    pub orders: Vec<Order>,
    pub next_id: u64,
    pub seq: u64,
    pub cash: f64,
}

pub(crate) fn multiplier(symbol: &str) -> f64 {
    if symbol.len() > 6 { 100.0 } else { 1.0 }
}

impl Account {
    pub fn wire_positions(&self) -> Vec<WirePosition> {
        self.positions
            .iter()
            .filter(|(_, h)| h.qty != 0)
            .enumerate()
            .map(|(i, (s, h))| WirePosition {
                cost_basis: (h.cost * 100.0).round() / 100.0,
                date_acquired: Some("2026-12-01T14:41:11.405Z".into()),
                id: Some(130_000 + i as u64),
                quantity: h.qty as f64,
                symbol: s.clone(),
            })
            .collect()
    }

    pub fn held(&self, symbol: &str) -> i64 {
        self.positions.get(symbol).map_or(0, |h| h.qty)
    }

    /// Books a fill of `qty` (signed) at `price` into the positions and cash.
    pub fn book_fill(&mut self, symbol: &str, signed: i64, price: f64) {
        let m = multiplier(symbol);
        let h = self
            .positions
            .entry(symbol.to_owned())
            .or_insert(Holding { qty: 0, cost: 0.0 });
        let before = h.qty;
        let after = before + signed;
        if before == 0 || before.signum() == signed.signum() {
            h.cost += signed as f64 * price * m;
        } else if after == 0 || after.signum() == before.signum() {
            // Reducing: the cost goes down in proportion.
            h.cost *= after as f64 / before as f64;
        } else {
            h.cost = after as f64 * price * m;
        }
        h.qty = after;
        if h.qty == 0 {
            self.positions.remove(symbol);
        }
        self.cash -= signed as f64 * price * m;
    }

    /// The price one unit of part `p` fills at now, when marketable at all.
    fn part_price(&self, p: &Part) -> Option<f64> {
        let q = self.quotes.get(&p.symbol)?;
        if p.side.starts_with("buy") {
            (q.ask > 0.0).then_some(q.ask)
        } else {
            (q.bid > 0.0).then_some(q.bid)
        }
    }

    /// Fills what is marketable of order `idx`; true when something filled.
    pub fn try_fill(&mut self, idx: usize, now: &str) -> bool {
        let o = &self.orders[idx];
        if o.is_final() {
            return false;
        }
        let prices: Option<Vec<f64>> = o.parts.iter().map(|p| self.part_price(p)).collect();
        let Some(prices) = prices else { return false };
        let marketable = match (o.order_type.as_str(), o.price) {
            ("market", _) => true,
            ("limit", Some(l)) => {
                if o.parts[0].side.starts_with("buy") {
                    prices[0] <= l
                } else {
                    prices[0] >= l
                }
            }
            (kind @ ("debit" | "credit" | "even"), limit) => {
                let debit: f64 = o
                    .parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let s = if p.side.starts_with("buy") { 1.0 } else { -1.0 };
                        s * prices[i] * o.ratio(i) as f64
                    })
                    .sum();
                match kind {
                    "debit" => debit <= limit.unwrap_or(0.0) + 1e-9,
                    "credit" => -debit >= limit.unwrap_or(0.0) - 1e-9,
                    _ => debit <= 1e-9,
                }
            }
            // Stops rest in the fake (no trigger model).
            _ => false,
        };
        if !marketable {
            return false;
        }
        let cap = o.cap.unwrap_or(o.units);
        let units = cap.min(o.units) - o.units_filled();
        if units <= 0 {
            return false;
        }
        self.fill_units(idx, units, Some(&prices), now);
        true
    }

    /// Fills `units` of order `idx` at `prices` per part (the quotes when `None`).
    pub fn fill_units(&mut self, idx: usize, units: i64, prices: Option<&[f64]>, now: &str) {
        let n = self.orders[idx].parts.len();
        for i in 0..n {
            let ratio = self.orders[idx].ratio(i);
            let p = self.orders[idx].parts[i].clone();
            let px = prices
                .and_then(|v| v.get(i).copied())
                .or_else(|| self.part_price(&p))
                .unwrap_or(p.avg.max(0.01));
            let q = (units * ratio).min(p.qty - p.exec);
            if q <= 0 {
                continue;
            }
            let signed = if p.side.starts_with("buy") { q } else { -q };
            self.book_fill(&p.symbol, signed, px);
            let part = &mut self.orders[idx].parts[i];
            part.avg = (part.avg * part.exec as f64 + px * q as f64) / (part.exec + q) as f64;
            part.exec += q;
            part.last_price = px;
            part.last_qty = q;
        }
        let o = &mut self.orders[idx];
        o.status = if o.units_filled() >= o.units {
            "filled".into()
        } else {
            "partially_filled".into()
        };
        o.updated = now.to_owned();
    }
}
