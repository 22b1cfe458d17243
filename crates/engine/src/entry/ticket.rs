//! The strategy ticket (what the trader asks to open) and the pure steps of its preview: the
//! template's shape check and the limit price of each leg.

use serde::{Deserialize, Serialize};
use tradeguard_model::{AccountId, Instrument, Price, Quote, Right, Side, Tif};

/// The shape a ticket claims; checked against its legs before anything is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Two options of one right and expiry, one bought and one sold.
    Vertical,
    /// A put vertical under a call vertical, one expiry: long put < short put ≤ short call <
    /// long call, one ratio.
    IronCondor,
    /// A put and a call of one expiry on the same side, put strike under call strike.
    Strangle,
    /// A put and a call of one expiry and strike on the same side.
    Straddle,
    /// One right and strike, two expiries, opposite sides.
    Calendar,
    /// Three strikes of one right and expiry, equally spaced, 1 : 2 : 1, the body on the other
    /// side from the wings.
    Butterfly,
    /// 100 shares bought per call sold.
    CoveredCall,
    /// One put sold (its cash is the account's).
    CashSecuredPut,
    /// Up to four legs of one underlying.
    Custom,
}

impl Template {
    /// Name in the ticket and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vertical => "vertical",
            Self::IronCondor => "iron_condor",
            Self::Strangle => "strangle",
            Self::Straddle => "straddle",
            Self::Calendar => "calendar",
            Self::Butterfly => "butterfly",
            Self::CoveredCall => "covered_call",
            Self::CashSecuredPut => "cash_secured_put",
            Self::Custom => "custom",
        }
    }
}

/// One leg of a ticket: per unit of the ticket's quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLeg {
    /// What to trade.
    pub instrument: Instrument,
    /// Buy or sell.
    pub side: Side,
    /// Contracts (shares for stock) per unit, > 0.
    pub ratio: i64,
}

/// How the ticket is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LimitPrice {
    /// Each leg at its mid, on a tick every venue takes.
    Mid,
    /// Each leg at its touch: the ask to buy, the bid to sell (fills at once in a quiet market).
    Natural,
    /// A net price per unit (+ debit paid, − credit received): the legs start at their mids
    /// and move a tick at a time, the largest premiums first, until the net is reached (never
    /// past it; within the smallest tick), each leg at most its spread (at least 0.10) through its touch.
    Custom {
        /// Net per unit, per share.
        net: Price,
    },
}

/// What the trader asks to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Account.
    pub account: AccountId,
    /// Claimed shape.
    pub template: Template,
    /// Legs per unit.
    pub legs: Vec<TicketLeg>,
    /// Units, > 0.
    pub quantity: i64,
    /// Pricing.
    pub limit: LimitPrice,
    /// Time in force.
    pub tif: Tif,
    /// Exits attached to the strategy the entry becomes.
    #[serde(default)]
    pub exits: Exits,
}

/// Exits a person attaches when opening a strategy: once the entry's legs are held as one
/// strategy they close it like the rules of the same kind, scoped to it, and the global
/// dry-run does not hold them back (a stop you placed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exits {
    /// Stop-loss: close through the hybrid exit when the loss reaches this multiple of the
    /// entry premium (credit or debit).
    #[serde(default)]
    pub stop_loss_multiple: Option<Price>,
    /// Profit target: close when the P&L reaches this percent of the entry premium.
    #[serde(default)]
    pub profit_target_pct: Option<u32>,
}

impl Exits {
    /// No exit attached.
    pub fn is_empty(&self) -> bool {
        self.stop_loss_multiple.is_none() && self.profit_target_pct.is_none()
    }

    /// One line per exit, for a person.
    pub fn labels(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(m) = self.stop_loss_multiple {
            v.push(format!(
                "stop-loss at a loss of {m} × the entry premium (hybrid exit)"
            ));
        }
        if let Some(p) = self.profit_target_pct {
            v.push(format!("profit target at {p} % of the entry premium"));
        }
        v
    }
}

/// Largest quantity a ticket may ask (units); the gate's own size limits apply on top.
pub const MAX_QUANTITY: i64 = 10_000;

/// A ticket that cannot be priced: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTicket {
    /// Field path ("legs[2].ratio").
    pub field: String,
    /// Why.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> BadTicket {
    BadTicket {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks the ticket's fields and that its legs have the template's shape.
pub fn check(t: &Ticket) -> Result<(), BadTicket> {
    if !(1..=MAX_QUANTITY).contains(&t.quantity) {
        return Err(bad(
            "quantity",
            format!("must be 1 to {MAX_QUANTITY}, got {}", t.quantity),
        ));
    }
    if t.legs.is_empty() || t.legs.len() > 4 {
        return Err(bad(
            "legs",
            format!("a ticket has 1 to 4 legs, got {}", t.legs.len()),
        ));
    }
    if let Some(m) = t.exits.stop_loss_multiple
        && !(m.is_positive() && m <= Price::from_raw(100 * tradeguard_model::SCALE))
    {
        return Err(bad(
            "exits.stop_loss_multiple",
            format!("must be above 0 and at most 100, got {m}"),
        ));
    }
    if let Some(p) = t.exits.profit_target_pct
        && !(1..=1_000).contains(&p)
    {
        return Err(bad(
            "exits.profit_target_pct",
            format!("must be 1 to 1000, got {p}"),
        ));
    }
    let underlying = t.legs[0].instrument.underlying();
    for (i, l) in t.legs.iter().enumerate() {
        if l.ratio <= 0 {
            return Err(bad(format!("legs[{i}].ratio"), "must be > 0"));
        }
        if l.instrument.underlying() != underlying {
            return Err(bad(
                format!("legs[{i}].instrument"),
                format!(
                    "every leg is on one underlying: {} is not on {underlying}",
                    l.instrument.id()
                ),
            ));
        }
        if t.legs[..i].iter().any(|p| p.instrument == l.instrument) {
            return Err(bad(
                format!("legs[{i}].instrument"),
                format!("{} is in the ticket twice", l.instrument.id()),
            ));
        }
    }
    shape(t.template, &t.legs)
        .map_err(|m| bad("legs", format!("not a {}: {m}", t.template.as_str())))
}

fn shape(template: Template, legs: &[TicketLeg]) -> Result<(), String> {
    let opts: Vec<_> = legs
        .iter()
        .filter_map(|l| l.instrument.as_option().map(|o| (o, l.side, l.ratio)))
        .collect();
    let all_options = || {
        if opts.len() == legs.len() {
            Ok(())
        } else {
            Err("every leg must be an option".to_owned())
        }
    };
    let count = |n: usize| {
        if legs.len() == n {
            Ok(())
        } else {
            Err(format!("{n} legs expected, got {}", legs.len()))
        }
    };
    let one_ratio = || {
        if legs.iter().all(|l| l.ratio == legs[0].ratio) {
            Ok(())
        } else {
            Err("every leg must have the same ratio".to_owned())
        }
    };
    let one_expiry = || {
        if opts.iter().all(|(o, ..)| o.expiry == opts[0].0.expiry) {
            Ok(())
        } else {
            Err("every leg must expire on the same day".to_owned())
        }
    };
    match template {
        Template::Custom => Ok(()),
        Template::Vertical => {
            count(2)?;
            all_options()?;
            one_ratio()?;
            one_expiry()?;
            let (a, b) = (&opts[0], &opts[1]);
            if a.0.right != b.0.right {
                return Err("both legs must be calls or both puts".into());
            }
            if a.1 == b.1 {
                return Err("one leg is bought and the other sold".into());
            }
            if a.0.strike == b.0.strike {
                return Err("the strikes must differ".into());
            }
            Ok(())
        }
        Template::IronCondor => {
            count(4)?;
            all_options()?;
            one_ratio()?;
            one_expiry()?;
            let mut puts: Vec<_> = opts.iter().filter(|o| o.0.right == Right::Put).collect();
            let mut calls: Vec<_> = opts.iter().filter(|o| o.0.right == Right::Call).collect();
            if puts.len() != 2 || calls.len() != 2 {
                return Err("two puts and two calls".into());
            }
            puts.sort_by_key(|o| o.0.strike);
            calls.sort_by_key(|o| o.0.strike);
            let sides = [puts[0].1, puts[1].1, calls[0].1, calls[1].1];
            let short = sides == [Side::Buy, Side::Sell, Side::Sell, Side::Buy];
            let long = sides == [Side::Sell, Side::Buy, Side::Buy, Side::Sell];
            if !(short || long) {
                return Err("the outer strikes (wings) on one side, the inner on the other".into());
            }
            if puts[0].0.strike == puts[1].0.strike
                || calls[0].0.strike == calls[1].0.strike
                || puts[1].0.strike > calls[0].0.strike
            {
                return Err("put strikes under the call strikes, each pair distinct".into());
            }
            Ok(())
        }
        Template::Strangle | Template::Straddle => {
            count(2)?;
            all_options()?;
            one_ratio()?;
            one_expiry()?;
            let put = opts.iter().find(|o| o.0.right == Right::Put);
            let call = opts.iter().find(|o| o.0.right == Right::Call);
            let (Some(p), Some(c)) = (put, call) else {
                return Err("one put and one call".into());
            };
            if p.1 != c.1 {
                return Err("both legs bought or both sold".into());
            }
            match template {
                Template::Straddle if p.0.strike != c.0.strike => {
                    Err("the put and the call share one strike".into())
                }
                Template::Strangle if p.0.strike >= c.0.strike => {
                    Err("the put's strike under the call's".into())
                }
                _ => Ok(()),
            }
        }
        Template::Calendar => {
            count(2)?;
            all_options()?;
            one_ratio()?;
            let (a, b) = (&opts[0], &opts[1]);
            if a.0.right != b.0.right || a.0.strike != b.0.strike {
                return Err("one right and one strike".into());
            }
            if a.0.expiry == b.0.expiry {
                return Err("two different expiries".into());
            }
            if a.1 == b.1 {
                return Err("one leg bought and the other sold".into());
            }
            Ok(())
        }
        Template::Butterfly => {
            count(3)?;
            all_options()?;
            one_expiry()?;
            let mut o = opts.clone();
            o.sort_by_key(|x| x.0.strike);
            if o.iter().any(|x| x.0.right != o[0].0.right) {
                return Err("one right".into());
            }
            let (k1, k2, k3) = (
                o[0].0.strike.raw(),
                o[1].0.strike.raw(),
                o[2].0.strike.raw(),
            );
            if k1 == k2 || k2 - k1 != k3 - k2 {
                return Err("three strikes, equally spaced".into());
            }
            if o[0].2 != o[2].2 || o[1].2 != 2 * o[0].2 {
                return Err("ratios 1 : 2 : 1".into());
            }
            if o[0].1 != o[2].1 || o[1].1 == o[0].1 {
                return Err("the body on the other side from the wings".into());
            }
            Ok(())
        }
        Template::CoveredCall => {
            count(2)?;
            let stock = legs
                .iter()
                .find(|l| matches!(l.instrument, Instrument::Stock { .. }));
            let call = opts.iter().find(|o| o.0.right == Right::Call);
            let (Some(s), Some(c)) = (stock, call) else {
                return Err("shares and a call".into());
            };
            if s.side != Side::Buy || c.1 != Side::Sell {
                return Err("shares bought, the call sold".into());
            }
            if s.ratio != c.2 * i64::from(c.0.multiplier) {
                return Err(format!(
                    "{} shares per call sold, got {}",
                    c.0.multiplier, s.ratio
                ));
            }
            Ok(())
        }
        Template::CashSecuredPut => {
            count(1)?;
            all_options()?;
            if opts[0].0.right != Right::Put || opts[0].1 != Side::Sell {
                return Err("one put sold".into());
            }
            Ok(())
        }
    }
}

/// Per leg (ticket order): its limit per share, from its quote. `Err`: the leg index and why
/// (no two-sided market to price from).
pub fn leg_limits(
    legs: &[TicketLeg],
    quotes: &[Quote],
    limit: LimitPrice,
) -> Result<Vec<Price>, (usize, String)> {
    let mut out = Vec::with_capacity(legs.len());
    for (i, (l, q)) in legs.iter().zip(quotes).enumerate() {
        let (bid, ask) = q
            .two_sided()
            .filter(|(b, a)| a >= b && b.raw() >= 0)
            .ok_or_else(|| (i, "no two-sided market to price the leg from".to_owned()))?;
        let px = match limit {
            LimitPrice::Natural => match l.side {
                Side::Buy => ask,
                Side::Sell => bid,
            },
            LimitPrice::Mid | LimitPrice::Custom { .. } => {
                let mid = Price::from_raw((bid.raw() + ask.raw()) / 2);
                on_tick(&l.instrument, mid, l.side)
            }
        };
        out.push(px);
    }
    if let LimitPrice::Custom { net } = limit {
        let touches: Vec<(Price, Price)> = quotes
            .iter()
            .map(|q| q.two_sided().unwrap_or((Price::ZERO, Price::ZERO)))
            .collect();
        concede(legs, &mut out, &touches, net)?;
    }
    Ok(out)
}

/// How far past its near touch a custom net may price a leg (per share): its spread, at least
/// 0.10 — room to pay up and fill in a moving market, bounded against a slip of the finger.
fn through_allowance(bid: Price, ask: Price) -> i64 {
    (ask.raw() - bid.raw()).max(1_000)
}

/// Moves the legs from their mids towards the asked `net`, one tick of each leg in turn
/// (largest premium first): a higher net (less credit, more debit) raises the buys and lowers
/// the sells, a lower one the reverse. Paying up, every leg first reaches its near touch (the
/// natural price: each leg marketable, whatever order they are sent in), and only then goes
/// through it, by at most [`through_allowance`]; improving, a leg stops at its far touch. It
/// stops when no leg's next tick fits in what is left, so the net reached is never past the
/// asked one and within the smallest tick of it. A net out of reach is refused, never sent at
/// some other price.
fn concede(
    legs: &[TicketLeg],
    out: &mut [Price],
    touches: &[(Price, Price)],
    net: Price,
) -> Result<(), (usize, String)> {
    let mut left = net.raw() - net_of(legs, out).raw();
    let mut order: Vec<usize> = (0..legs.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(out[*i].raw() * legs[*i].ratio));
    // Paying up: to the near touches first, then through them. Improving: one phase.
    for through in [false, true] {
        loop {
            let mut moved = false;
            for &i in &order {
                let l = &legs[i];
                let tick = l.instrument.safe_tick(out[i]).raw().max(1);
                let step = tick * l.ratio;
                if left == 0 || step > left.abs() {
                    continue;
                }
                let paying = left > 0;
                // Up: the leg's price rises (a buy when paying up, a sell when improving).
                let up = paying == (l.side == Side::Buy);
                let next = out[i].raw() + if up { tick } else { -tick };
                let (bid, ask) = (touches[i].0.raw(), touches[i].1.raw());
                let extra = if through {
                    through_allowance(touches[i].0, touches[i].1)
                } else {
                    0
                };
                let (lo, hi) = match (paying, l.side) {
                    // Paying up: a buy rises to its ask (+ extra), a sell falls to its bid.
                    (true, Side::Buy) => (i64::MIN, ask + extra),
                    (true, Side::Sell) => (bid - extra, i64::MAX),
                    // Improving: a buy falls to its bid, a sell rises to its ask.
                    (false, Side::Buy) => (bid, i64::MAX),
                    (false, Side::Sell) => (i64::MIN, ask),
                };
                if next <= 0 || next < lo || next > hi {
                    continue;
                }
                out[i] = Price::from_raw(next);
                left -= left.signum() * step;
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
    let smallest = (0..legs.len())
        .map(|i| legs[i].instrument.safe_tick(out[i]).raw() * legs[i].ratio)
        .min()
        .unwrap_or(1);
    if left.abs() < smallest {
        return Ok(());
    }
    let far: Vec<Price> = legs
        .iter()
        .zip(touches)
        .map(|(l, (b, a))| if l.side == Side::Buy { *b } else { *a })
        .collect();
    let through: Vec<Price> = legs
        .iter()
        .zip(touches)
        .map(|(l, (b, a))| {
            let x = through_allowance(*b, *a);
            if l.side == Side::Buy {
                Price::from_raw(a.raw() + x)
            } else {
                Price::from_raw((b.raw() - x).max(0))
            }
        })
        .collect();
    Err((
        order[0],
        format!(
            "the net {net} is outside the legs' markets: from {} (every leg at its far touch) to {} (the natural price paid through by the most each leg allows)",
            net_of(legs, &far),
            net_of(legs, &through)
        ),
    ))
}

/// Net per unit at `prices`: + debit paid, − credit received.
pub fn net_of(legs: &[TicketLeg], prices: &[Price]) -> Price {
    let raw: i64 = legs
        .iter()
        .zip(prices)
        .map(|(l, p)| {
            let s = match l.side {
                Side::Buy => 1,
                Side::Sell => -1,
            };
            s * l.ratio * p.raw()
        })
        .sum();
    Price::from_raw(raw)
}

/// `px` on the instrument's safe tick, towards the trader's side: a buy rounds down, a sell up.
fn on_tick(inst: &Instrument, px: Price, side: Side) -> Price {
    let tick = inst.safe_tick(px).raw().max(1);
    let r = px.raw();
    let down = r.div_euclid(tick) * tick;
    let v = match side {
        Side::Buy => down,
        Side::Sell if down == r => r,
        Side::Sell => down + tick,
    };
    Price::from_raw(v.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradeguard_model::stubs;

    fn px(s: &str) -> Price {
        Price::parse(s).expect("price")
    }

    fn leg(i: Instrument, side: Side) -> TicketLeg {
        TicketLeg {
            instrument: i,
            side,
            ratio: 1,
        }
    }

    fn condor() -> Vec<TicketLeg> {
        vec![
            leg(stubs::put(435), Side::Buy),
            leg(stubs::put(440), Side::Sell),
            leg(stubs::call(460), Side::Sell),
            leg(stubs::call(465), Side::Buy),
        ]
    }

    fn ticket(template: Template, legs: Vec<TicketLeg>) -> Ticket {
        Ticket {
            account: stubs::account(),
            template,
            legs,
            quantity: 1,
            limit: LimitPrice::Mid,
            tif: Tif::Day,
            exits: Exits::default(),
        }
    }

    fn quote(i: &Instrument, bid: &str, ask: &str) -> Quote {
        Quote {
            instrument: i.clone(),
            bid: Some(px(bid)),
            ask: Some(px(ask)),
            last: None,
            bid_size: 1,
            ask_size: 1,
            greeks: None,
            underlying_price: None,
            ts: tradeguard_model::Timestamp::default(),
        }
    }

    #[test]
    fn templates_accept_their_shape_and_name_what_is_wrong() {
        assert_eq!(check(&ticket(Template::IronCondor, condor())), Ok(()));
        let mut inverted = condor();
        inverted[0].side = Side::Sell;
        let e = check(&ticket(Template::IronCondor, inverted)).unwrap_err();
        assert_eq!(e.field, "legs");
        assert!(
            e.message.contains("not a iron_condor: the outer strikes"),
            "{e:?}"
        );
        let vertical = vec![
            leg(stubs::put(440), Side::Sell),
            leg(stubs::put(435), Side::Buy),
        ];
        assert_eq!(check(&ticket(Template::Vertical, vertical.clone())), Ok(()));
        let e = check(&ticket(Template::Strangle, vertical)).unwrap_err();
        assert!(e.message.contains("one put and one call"), "{e:?}");
        let fly = vec![
            leg(stubs::call(450), Side::Buy),
            TicketLeg {
                ratio: 2,
                ..leg(stubs::call(455), Side::Sell)
            },
            leg(stubs::call(460), Side::Buy),
        ];
        assert_eq!(check(&ticket(Template::Butterfly, fly)), Ok(()));
        let covered = vec![
            TicketLeg {
                ratio: 100,
                ..leg(Instrument::stock("SPY"), Side::Buy)
            },
            leg(stubs::call(460), Side::Sell),
        ];
        assert_eq!(check(&ticket(Template::CoveredCall, covered)), Ok(()));
        let csp = vec![leg(stubs::put(440), Side::Sell)];
        assert_eq!(check(&ticket(Template::CashSecuredPut, csp)), Ok(()));
    }

    #[test]
    fn bad_fields_name_their_path() {
        let mut t = ticket(Template::Custom, condor());
        t.quantity = 0;
        assert_eq!(check(&t).unwrap_err().field, "quantity");
        let mut t = ticket(Template::Custom, condor());
        t.legs[2].ratio = 0;
        assert_eq!(check(&t).unwrap_err().field, "legs[2].ratio");
        let mut t = ticket(Template::Custom, condor());
        t.legs[3].instrument = t.legs[0].instrument.clone();
        assert_eq!(check(&t).unwrap_err().field, "legs[3].instrument");
        let mut t = ticket(Template::Custom, condor());
        t.legs.push(leg(stubs::call(470), Side::Buy));
        assert_eq!(check(&t).unwrap_err().field, "legs");
        let mut t = ticket(Template::Custom, condor());
        t.exits.stop_loss_multiple = Some(Price::ZERO);
        assert_eq!(check(&t).unwrap_err().field, "exits.stop_loss_multiple");
        t.exits = Exits {
            stop_loss_multiple: Some(px("2")),
            profit_target_pct: Some(0),
        };
        assert_eq!(check(&t).unwrap_err().field, "exits.profit_target_pct");
    }

    #[test]
    fn mid_natural_and_custom_prices() {
        let legs = condor();
        let quotes: Vec<Quote> = [
            ("0.95", "1.10"),
            ("1.45", "1.60"),
            ("3.10", "3.40"),
            ("0.95", "1.05"),
        ]
        .iter()
        .zip(&legs)
        .map(|((b, a), l)| quote(&l.instrument, b, a))
        .collect();
        // Mid on 0.05 under $3 / 0.10 from $3, towards the trader: buys down, sells up.
        let mid = leg_limits(&legs, &quotes, LimitPrice::Mid).unwrap();
        assert_eq!(mid, vec![px("1.00"), px("1.55"), px("3.30"), px("1.00")]);
        assert_eq!(net_of(&legs, &mid), px("-2.85"));
        let nat = leg_limits(&legs, &quotes, LimitPrice::Natural).unwrap();
        assert_eq!(nat, vec![px("1.10"), px("1.45"), px("3.10"), px("1.05")]);
        assert_eq!(net_of(&legs, &nat), px("-2.40"));
        // A custom credit of 2.65: 0.20 less than at mid, a tick of each leg in turn from the
        // largest premium: the 460 call a dime lower, the 440 put a nickel, the 435 put bought
        // a nickel higher.
        let c = leg_limits(&legs, &quotes, LimitPrice::Custom { net: px("-2.65") }).unwrap();
        assert_eq!(c, vec![px("1.05"), px("1.50"), px("3.20"), px("1.00")]);
        assert_eq!(net_of(&legs, &c), px("-2.65"));
        // A better credit than the mid: the sells rise, the buys fall; never past the ask.
        let c = leg_limits(&legs, &quotes, LimitPrice::Custom { net: px("-2.97") }).unwrap();
        assert_eq!(
            net_of(&legs, &c),
            px("-2.95"),
            "within a nickel, not past it: {c:?}"
        );
        // Out of the markets: refused, not sent at some other price.
        let e = leg_limits(&legs, &quotes, LimitPrice::Custom { net: px("-500") }).unwrap_err();
        assert!(
            e.1.contains("from -3.10") && e.1.contains("to -1.70"),
            "{e:?}"
        );
        let e = leg_limits(&legs, &quotes, LimitPrice::Custom { net: px("-1.00") }).unwrap_err();
        assert!(
            e.1.contains("to -1.70 (the natural price paid through"),
            "{e:?}"
        );
        // Paying through the natural price to fill, within a spread per leg.
        let c = leg_limits(&legs, &quotes, LimitPrice::Custom { net: px("-2.00") }).unwrap();
        assert_eq!(net_of(&legs, &c), px("-2.00"));
        // Every leg marketable (at or through its touch), none past its allowance.
        for (i, p) in c.iter().enumerate() {
            let (b, a) = (quotes[i].bid.unwrap(), quotes[i].ask.unwrap());
            let w = (a.raw() - b.raw()).max(1_000);
            match legs[i].side {
                Side::Buy => assert!(p.raw() >= a.raw() && p.raw() <= a.raw() + w, "{i}: {p}"),
                Side::Sell => assert!(p.raw() <= b.raw() && p.raw() >= b.raw() - w, "{i}: {p}"),
            }
        }
        // No market: the leg is named.
        let mut q = quotes.clone();
        q[1].bid = None;
        assert_eq!(leg_limits(&legs, &q, LimitPrice::Mid).unwrap_err().0, 1);
    }
}
