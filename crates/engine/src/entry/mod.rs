//! Order entry: open a strategy through the guard (issue 22).
//!
//! - [`Guard::option_chain`]: the venue's listing of an underlying ([`tradeguard_model::Broker::option_chain`]),
//!   the strikes nearest the price subscribed, each option's bid, ask, last, and its implied
//!   vol and delta from the pricing crate (warm-started tick to tick), read from the guard's
//!   one live book;
//! - [`Guard::preview_entry`]: a [`Ticket`] (template, legs, quantity, limit, time in force)
//!   checked for its shape and priced from the live quotes; the preview holds the exact orders
//!   in the coordinator's send order (protective legs first, or one native combo), the payoff at
//!   expiry and today, maximum profit and loss, breakevens and the model's probability of
//!   profit, the Reg T requirement (Tradeguard's calculator, labelled so), the pre-trade gate's
//!   verdict and its stress figures (worst case of book + order under ±3 %, IV +30 %/+50 %,
//!   spreads ×1.5/×2 against 90 % of the available funds, naming the scenario and the excess),
//!   and the execution policy (leg time-out, hedging of partial fills). It gets a single-use id
//!   that expires after [`PREVIEW_TTL`] of clock time. Nothing is sent;
//! - [`Guard::place_entry`]: only a known, unexpired, unused id; the very intent previewed goes
//!   to the coordinator (its gate decides again, now), tagged `entry:<id>` so the group can be
//!   found after a restart. Every preview, placement and refusal is audited.
//!
//! Promise 1: nothing reaches the broker from here but a previewed ticket a person confirmed.

pub mod ticket;

pub use ticket::{BadTicket, Exits, LimitPrice, Template, Ticket, TicketLeg};

use crate::enforce::error::EnforceError;
use crate::enforce::guard::Guard;
use crate::error::{ExecError, GateRefusal};
use crate::intent::{OrderIntent, Purpose};
use crate::rules::{Rule, RuleAction, RuleCommon, RuleKind, RuleSeverity};
use crate::strategies::StrategyView;
use crate::stress_model::PricingStressModel;
use crate::{Book, StressFigures};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tradeguard_model::{
    AccountId, ChainListing, GroupId, Instrument, InstrumentId, OrderType, Price, Quote, Right,
    Side, StrategyId, Timestamp,
};
use tradeguard_pricing::chain::{ChainQuote, ChainRow, chain_greeks};
use tradeguard_pricing::margin::UnderlyingKind;
use tradeguard_pricing::payoff::PayoffPoint;
use tradeguard_pricing::preview::{ExpiryProfile, expiry_profile, reg_t_of_legs};
use tradeguard_pricing::{OptionType, payoff_curve};

/// How long an entry preview can be placed (clock time): prices move.
pub const PREVIEW_TTL: Duration = Duration::from_secs(60);
/// Spent ids remembered (a second placement is refused as already used).
const USED_KEPT: usize = 1024;
/// Points of the preview's payoff chart.
const PAYOFF_POINTS: usize = 121;
/// Most strikes a chain view shows (each a call and a put).
pub const MAX_CHAIN_STRIKES: usize = 60;

/// Why an entry could not be previewed or placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A ticket field is wrong.
    #[error("ticket {}: {}", .0.field, .0.message)]
    BadTicket(BadTicket),
    /// A leg has no market to price it from.
    #[error("{instrument}: {reason}")]
    NoMarket {
        /// The leg.
        instrument: InstrumentId,
        /// Why.
        reason: String,
    },
    /// The numbers could not be computed.
    #[error("the preview's {what} could not be computed: {code}")]
    Pricing {
        /// Which figure.
        what: &'static str,
        /// The pricing error's code.
        code: &'static str,
    },
    /// The chain asked for is not listed (`expiry` `None`: the venue lists no expiry at all).
    #[error("{underlying} lists {}", match .expiry { Some(e) => format!("no expiry {e}"), None => "no expiries".to_owned() })]
    NoSuchExpiry {
        /// Underlying.
        underlying: String,
        /// Asked expiry.
        expiry: Option<NaiveDate>,
    },
    /// No such preview.
    #[error("no entry preview {id} (never issued, or long expired)")]
    UnknownPreview {
        /// Id.
        id: String,
    },
    /// The preview expired.
    #[error("entry preview {id} expired at {expired_at}: preview again, prices move")]
    ExpiredPreview {
        /// Id.
        id: String,
        /// When.
        expired_at: Timestamp,
    },
    /// Already placed.
    #[error("entry preview {id} was already placed")]
    AlreadyUsed {
        /// Id.
        id: String,
    },
    /// The gate refused the order at placement.
    #[error("refused: {0}")]
    Refused(GateRefusal),
}

impl EntryError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadTicket(_) => "entry.bad_ticket",
            Self::NoMarket { .. } => "entry.no_market",
            Self::Pricing { .. } => "entry.pricing",
            Self::NoSuchExpiry { .. } => "entry.no_such_expiry",
            Self::UnknownPreview { .. } => "entry.unknown_preview",
            Self::ExpiredPreview { .. } => "entry.expired_preview",
            Self::AlreadyUsed { .. } => "entry.already_used",
            Self::Refused(r) => r.code(),
        }
    }
}

/// One option of the chain view.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOption {
    /// The contract.
    pub instrument: Instrument,
    /// Its last quote in the live book (`None`: none yet).
    pub quote: Option<Quote>,
    /// Implied vol from the mid (`None`: no two-sided market, or outside the bounds).
    pub iv: Option<f64>,
    /// Delta at that vol.
    pub delta: Option<f64>,
}

/// One strike: its call and its put.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStrike {
    /// Strike.
    pub strike: Price,
    /// The call.
    pub call: ChainOption,
    /// The put.
    pub put: ChainOption,
}

/// The chain of one underlying at one expiry, live.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainView {
    /// Underlying.
    pub underlying: String,
    /// Its price (`None` until its first quote).
    pub spot: Option<Price>,
    /// Every listed expiry.
    pub expiries: Vec<NaiveDate>,
    /// The one shown.
    pub expiry: NaiveDate,
    /// The strikes nearest the price, ascending.
    pub strikes: Vec<ChainStrike>,
    /// When.
    pub at: Timestamp,
}

/// One order of the preview, in send order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryOrder {
    /// Send tier (0 first); every order of a native combo is in tier 0.
    pub tier: usize,
    /// Ticket leg index.
    pub leg: usize,
    /// Instrument.
    pub instrument: Instrument,
    /// Side.
    pub side: Side,
    /// Quantity (ratio × units).
    pub qty: i64,
    /// Limit per share.
    pub limit: Price,
    /// Its quote when priced.
    pub bid: Option<Price>,
    /// Its quote when priced.
    pub ask: Option<Price>,
    /// The gate's refusal of this leg as an order of its own.
    pub refusal: Option<GateRefusal>,
}

/// The margin the order needs, by Tradeguard's Reg T calculator (not a venue's what-if).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarginEstimate {
    /// Requirement of the order alone (USD).
    pub gross: f64,
    /// Net of the premium it receives.
    pub net: f64,
}

/// What opening the ticket would do; nothing is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPreview {
    /// Single-use id for [`Guard::place_entry`].
    pub id: String,
    /// The ticket.
    pub ticket: Ticket,
    /// The orders in send order.
    pub orders: Vec<EntryOrder>,
    /// Net per unit per share: + debit, − credit.
    pub net_price: Price,
    /// Cash of the whole order at its limits: + received, − paid (USD).
    pub net_cash: f64,
    /// Sent as one native combo (else legged, protective first).
    pub native_combo: bool,
    /// A leg not filled within this is cancelled and the filled part rolled back.
    pub leg_timeout: Duration,
    /// The naked exposure partial fills leave while legging in is hedged (else alerted).
    pub hedge_enabled: bool,
    /// The underlying's price.
    pub spot: f64,
    /// Option strikes (chart markers).
    pub strikes: Vec<f64>,
    /// P&L at the first expiry and today across prices.
    pub payoff: Vec<PayoffPoint>,
    /// Maximum profit and loss, breakevens, probability of profit.
    pub profile: ExpiryProfile,
    /// Reg T requirement.
    pub margin: MarginEstimate,
    /// The gate's verdict on the whole order now (`None`: it would pass).
    pub refusal: Option<GateRefusal>,
    /// The stress figures of book + order (or why they cannot be had).
    pub stress: Result<StressFigures, GateRefusal>,
    /// Issued at.
    pub created_at: Timestamp,
    /// Place before this.
    pub expires_at: Timestamp,
}

struct Stored {
    intent: OrderIntent,
    expires_at: Timestamp,
    summary: String,
    exits: Exits,
}

/// An attached exit ends this long after its strategy was last seen (closed, or no longer
/// held as placed): position updates of one close arrive one by one.
pub const EXIT_ENDS_UNSEEN: Duration = Duration::from_secs(60);
/// An attached exit whose entry never became a strategy (rolled back, never filled) ends after
/// this.
pub const EXIT_ENDS_NEVER_SEEN: Duration = Duration::from_secs(24 * 3600);

/// Exits attached to one entry, journaled until they end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedExit {
    /// The entry's preview id.
    pub entry: String,
    /// Account.
    pub account: AccountId,
    /// The entry's legs: instrument and whether it is short, sorted (the strategy they become
    /// is the one holding exactly these).
    pub legs: Vec<(InstrumentId, bool)>,
    /// The exits.
    pub exits: Exits,
    /// When the entry was placed.
    pub placed_at: Timestamp,
    /// When it ended (journaled once; ended exits are forgotten).
    pub ended_at: Option<Timestamp>,
    /// Why it ended.
    pub why_ended: Option<String>,
}

impl AttachedExit {
    fn matches(&self, s: &StrategyView) -> bool {
        s.account == self.account
            && signature(
                s.legs
                    .iter()
                    .filter(|l| l.qty != 0)
                    .map(|l| (&l.instrument, l.qty)),
            ) == self.legs
    }
}

fn signature<'a>(legs: impl Iterator<Item = (&'a Instrument, i64)>) -> Vec<(InstrumentId, bool)> {
    let mut v: Vec<(InstrumentId, bool)> = legs.map(|(i, q)| (i.id(), q < 0)).collect();
    v.sort();
    v.dedup();
    v
}

/// The rules of the attached exits whose strategy is held now (scoped to it, placed by a
/// person), marking them seen; and the exits that end now (unseen too long), marked ended.
pub(crate) fn attached_rules(
    reg: &mut Registry,
    strategies: &[StrategyView],
    now: Timestamp,
) -> (Vec<Rule>, Vec<AttachedExit>) {
    let mut rules = Vec::new();
    let mut ended = Vec::new();
    for (entry, a) in &reg.attached {
        match strategies.iter().find(|s| a.matches(s)) {
            Some(s) => {
                reg.seen.insert(entry.clone(), now);
                let common = |kind: &str, severity| RuleCommon {
                    id: format!("entry-{kind}:{entry}"),
                    enabled: true,
                    severity,
                    action: RuleAction::Flatten,
                    dry_run: false,
                    accounts: Vec::new(),
                    underlyings: Vec::new(),
                    strategies: vec![s.id],
                    placed_by_person: true,
                };
                if let Some(m) = a.exits.stop_loss_multiple {
                    rules.push(Rule {
                        common: common("stop", RuleSeverity::Critical),
                        kind: RuleKind::StopLoss { credit_multiple: m },
                    });
                }
                if let Some(p) = a.exits.profit_target_pct {
                    rules.push(Rule {
                        common: common("target", RuleSeverity::Warning),
                        kind: RuleKind::ProfitTarget { pct_of_credit: p },
                    });
                }
            }
            None => {
                let why = match reg.seen.get(entry) {
                    Some(t) if now.duration_since(*t) >= EXIT_ENDS_UNSEEN => {
                        Some("its strategy is no longer held as it was opened")
                    }
                    None if now.duration_since(a.placed_at) >= EXIT_ENDS_NEVER_SEEN => {
                        Some("the entry never became a strategy (not filled, or rolled back)")
                    }
                    _ => None,
                };
                if let Some(why) = why {
                    ended.push(AttachedExit {
                        ended_at: Some(now),
                        why_ended: Some(why.to_owned()),
                        ..a.clone()
                    });
                }
            }
        }
    }
    for e in &ended {
        reg.attached.remove(&e.entry);
        reg.seen.remove(&e.entry);
    }
    (rules, ended)
}

/// The guard's entry previews and spent ids (inside the guard's shared state).
#[derive(Default)]
pub(crate) struct Registry {
    seq: u64,
    previews: BTreeMap<String, Stored>,
    used: VecDeque<String>,
    /// The last chain rows per (underlying, expiry): the warm start of the next solve.
    chain_rows: BTreeMap<(String, NaiveDate), Vec<ChainRow>>,
    /// Live attached exits by entry id.
    pub attached: BTreeMap<String, AttachedExit>,
    /// When each attached exit's strategy was last seen.
    seen: BTreeMap<String, Timestamp>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("previews", &self.previews.len())
            .field("used", &self.used.len())
            .finish()
    }
}

impl Registry {
    fn take(&mut self, id: &str, now: Timestamp) -> Result<Stored, EntryError> {
        if self.used.iter().any(|u| u == id) {
            return Err(EntryError::AlreadyUsed { id: id.to_owned() });
        }
        let s = self
            .previews
            .remove(id)
            .ok_or_else(|| EntryError::UnknownPreview { id: id.to_owned() })?;
        self.used.push_back(id.to_owned());
        while self.used.len() > USED_KEPT {
            self.used.pop_front();
        }
        if now > s.expires_at {
            return Err(EntryError::ExpiredPreview {
                id: id.to_owned(),
                expired_at: s.expires_at,
            });
        }
        Ok(s)
    }
}

fn pricing(what: &'static str) -> impl Fn(tradeguard_pricing::PricingError) -> EntryError {
    move |e| EntryError::Pricing {
        what,
        code: e.code(),
    }
}

impl Guard {
    /// The chain of `underlying` at `expiry` (`None`: the first listed), the `strikes` nearest
    /// the price (at most [`MAX_CHAIN_STRIKES`]). Their quotes are subscribed; an option
    /// without a quote yet shows without one.
    pub async fn option_chain(
        &self,
        underlying: &str,
        expiry: Option<NaiveDate>,
        strikes: usize,
    ) -> Result<ChainView, EnforceError> {
        let core = self.core();
        let listing: ChainListing = core.broker.option_chain(underlying).await?;
        let expiry = match expiry {
            Some(e) if listing.expiries.contains(&e) => e,
            Some(e) => {
                return Err(EntryError::NoSuchExpiry {
                    underlying: underlying.to_owned(),
                    expiry: Some(e),
                }
                .into());
            }
            None => *listing.expiries.first().ok_or(EntryError::NoSuchExpiry {
                underlying: underlying.to_owned(),
                expiry: None,
            })?,
        };
        let stock = Instrument::stock(underlying);
        let spot = {
            let st = core.lock();
            st.book.quote(&stock.id()).and_then(Quote::mid)
        };
        // Before the first quote of the underlying, the window centres on the listing.
        let centre = spot.unwrap_or_else(|| {
            listing
                .strikes
                .get(listing.strikes.len() / 2)
                .copied()
                .unwrap_or(Price::ZERO)
        });
        let window: Vec<Price> = listing
            .strikes_around(centre, strikes.clamp(1, MAX_CHAIN_STRIKES))
            .to_vec();
        let contracts: Vec<(Price, Instrument, Instrument)> = window
            .iter()
            .filter_map(|k| {
                Some((
                    *k,
                    listing.contract(expiry, Right::Call, *k)?,
                    listing.contract(expiry, Right::Put, *k)?,
                ))
            })
            .collect();
        let mut wanted = vec![stock.clone()];
        for (_, c, p) in &contracts {
            wanted.push(c.clone());
            wanted.push(p.clone());
        }
        core.subscribe(wanted, false).await;
        let now = core.now();
        let model = PricingStressModel::new(core.clock.clone());
        let t = model.years_to_expiry(expiry, now);
        let mut st = core.lock();
        let quotes: Vec<(Option<Quote>, Option<Quote>)> = contracts
            .iter()
            .map(|(_, c, p)| {
                (
                    st.book.quote(&c.id()).cloned(),
                    st.book.quote(&p.id()).cloned(),
                )
            })
            .collect();
        let spot = st.book.quote(&stock.id()).and_then(Quote::mid).or(spot);
        let f = |p: Option<Price>| p.filter(|p| p.raw() > 0).map(Price::to_f64);
        let mut input = Vec::with_capacity(2 * contracts.len());
        for ((k, ..), (cq, pq)) in contracts.iter().zip(&quotes) {
            for (kind, q) in [(OptionType::Call, cq), (OptionType::Put, pq)] {
                input.push(ChainQuote {
                    kind,
                    strike: k.to_f64(),
                    t,
                    bid: q.as_ref().and_then(|q| f(q.bid)),
                    ask: q.as_ref().and_then(|q| f(q.ask)),
                });
            }
        }
        let key = (underlying.to_owned(), expiry);
        let rows = st.entry.chain_rows.entry(key).or_default();
        if let Some(s) = spot {
            let q = model
                .dividend_yields
                .get(underlying)
                .copied()
                .unwrap_or(0.0);
            chain_greeks(s.to_f64(), model.rate, q, &input, rows);
        } else {
            rows.clear();
        }
        let greek = |i: usize| {
            rows.get(i)
                .and_then(|r| r.greeks.ok())
                .map(|(iv, g)| (iv, g.delta))
        };
        let strikes = contracts
            .into_iter()
            .zip(quotes)
            .enumerate()
            .map(|(i, ((strike, call, put), (cq, pq)))| {
                let (c, p) = (greek(2 * i), greek(2 * i + 1));
                ChainStrike {
                    strike,
                    call: ChainOption {
                        instrument: call,
                        quote: cq,
                        iv: c.map(|g| g.0),
                        delta: c.map(|g| g.1),
                    },
                    put: ChainOption {
                        instrument: put,
                        quote: pq,
                        iv: p.map(|g| g.0),
                        delta: p.map(|g| g.1),
                    },
                }
            })
            .collect();
        Ok(ChainView {
            underlying: underlying.to_owned(),
            spot,
            expiries: listing.expiries,
            expiry,
            strikes,
            at: now,
        })
    }

    /// The live attached exits, each with the strategy holding its legs now (`None`: not yet
    /// held as one strategy, e.g. still filling).
    pub fn attached_exits(&self) -> Vec<(Option<StrategyId>, AttachedExit)> {
        let strategies = self.strategies();
        let st = self.core().lock();
        st.entry
            .attached
            .values()
            .map(|a| {
                (
                    strategies.iter().find(|s| a.matches(s)).map(|s| s.id),
                    a.clone(),
                )
            })
            .collect()
    }

    /// Prices `ticket` and returns what it would do; nothing is sent. Place it with
    /// [`Guard::place_entry`] before [`EntryPreview::expires_at`].
    pub async fn preview_entry(&self, ticket: Ticket) -> Result<EntryPreview, EnforceError> {
        let core = self.core();
        let result = self.preview_inner(ticket.clone()).await;
        match &result {
            Ok(p) => {
                core.alerter
                    .audit(
                        "entry_preview",
                        p.refusal
                            .as_ref()
                            .map_or("entry.previewed", GateRefusal::code),
                        format!(
                            "entry preview {}: {}; {}",
                            p.id,
                            summary(&p.ticket, p.net_price),
                            p.refusal.as_ref().map_or_else(
                                || "the gate would pass it".to_owned(),
                                |r| { format!("the gate would refuse it: {r}") }
                            )
                        ),
                        Some(Purpose::Open),
                    )
                    .await;
            }
            Err(e) => {
                core.alerter
                    .audit(
                        "entry_preview",
                        e.code(),
                        format!(
                            "entry preview of a {} refused: {e}",
                            ticket.template.as_str()
                        ),
                        Some(Purpose::Open),
                    )
                    .await;
            }
        }
        result
    }

    async fn preview_inner(&self, ticket: Ticket) -> Result<EntryPreview, EnforceError> {
        let core = self.core();
        ticket::check(&ticket).map_err(EntryError::BadTicket)?;
        let instruments: Vec<Instrument> =
            ticket.legs.iter().map(|l| l.instrument.clone()).collect();
        let underlying = instruments[0].underlying().to_owned();
        let mut wanted = instruments.clone();
        wanted.push(Instrument::stock(&underlying));
        core.subscribe(wanted, false).await;
        let now = core.now();
        let (quotes, book) = {
            let st = core.lock();
            let mut book = Book::new();
            let mut quotes = Vec::with_capacity(instruments.len());
            for i in &instruments {
                let q = st
                    .book
                    .quote(&i.id())
                    .cloned()
                    .ok_or_else(|| EntryError::NoMarket {
                        instrument: i.id(),
                        reason: "no quote yet (subscribed now: preview again in a moment)".into(),
                    })?;
                book.on_quote(&q);
                quotes.push(q);
            }
            if let Some(q) = st.book.quote(&Instrument::stock(&underlying).id()) {
                book.on_quote(q);
            }
            (quotes, book)
        };
        let limits =
            ticket::leg_limits(&ticket.legs, &quotes, ticket.limit).map_err(|(i, r)| {
                EntryError::NoMarket {
                    instrument: instruments[i].id(),
                    reason: r,
                }
            })?;
        let mut intent = OrderIntent::new(Purpose::Open, ticket.account.clone());
        intent.tif = ticket.tif;
        for (l, limit) in ticket.legs.iter().zip(&limits) {
            intent = intent.leg(
                l.instrument.clone(),
                l.side,
                l.ratio * ticket.quantity,
                OrderType::Limit { limit: *limit },
            );
        }
        let net_price = ticket::net_of(&ticket.legs, &limits);
        // The numbers: each leg priced as the gate prices it, at its limit.
        let model = PricingStressModel::new(core.clock.clone());
        let mut legs = Vec::with_capacity(intent.legs.len());
        for (l, limit) in intent.legs.iter().zip(&limits) {
            let mut leg = model
                .risk_leg(&book, &l.instrument, l.signed_qty(), now)
                .map_err(|e| EntryError::NoMarket {
                    instrument: l.instrument.id(),
                    reason: e.to_string(),
                })?;
            leg.entry_price = Some(limit.to_f64());
            legs.push(leg);
        }
        let spot = legs[0].spot;
        let mut strikes: Vec<f64> = instruments
            .iter()
            .filter_map(|i| i.as_option().map(|o| o.strike.to_f64()))
            .collect();
        strikes.sort_by(f64::total_cmp);
        strikes.dedup();
        let lo = strikes.first().map_or(spot, |k| k.min(spot)) * 0.85;
        let hi = strikes.last().map_or(spot, |k| k.max(spot)) * 1.15;
        let payoff =
            payoff_curve(&legs, lo.max(0.01), hi, PAYOFF_POINTS).map_err(pricing("payoff"))?;
        let vols: Vec<f64> = legs
            .iter()
            .filter_map(|l| match l.instrument {
                tradeguard_pricing::Instrument::Option { vol, .. } => Some(vol),
                tradeguard_pricing::Instrument::Underlying => None,
            })
            .collect();
        let pop_vol = if vols.is_empty() {
            0.2
        } else {
            vols.iter().sum::<f64>() / vols.len() as f64
        };
        let q = model
            .dividend_yields
            .get(&underlying)
            .copied()
            .unwrap_or(0.0);
        let profile = expiry_profile(&legs, pop_vol, model.rate, q).map_err(pricing("profile"))?;
        let multiplier = legs.iter().map(|l| l.multiplier).fold(1.0, f64::max);
        let kind = match instruments[0].as_option().map(|o| o.class) {
            Some(tradeguard_model::OptionClass::BroadIndex) => UnderlyingKind::BroadBasedIndex,
            Some(tradeguard_model::OptionClass::NarrowIndex) => UnderlyingKind::NarrowBasedIndex,
            _ => UnderlyingKind::Equity,
        };
        let refs: Vec<_> = legs.iter().collect();
        let (gross, net) =
            reg_t_of_legs(&refs, spot, multiplier, kind).map_err(pricing("margin"))?;
        let net_cash = -legs
            .iter()
            .map(|l| l.qty as f64 * l.multiplier * l.entry_price.unwrap_or(0.0))
            .sum::<f64>();
        // The gate's verdict and send order, nothing sent.
        let check = core.coord.check(intent.clone()).await?;
        let mut orders = Vec::with_capacity(intent.legs.len());
        for (tier, idx) in check.tiers.iter().enumerate() {
            for &i in idx {
                let l = &intent.legs[i];
                orders.push(EntryOrder {
                    tier,
                    leg: i,
                    instrument: l.instrument.clone(),
                    side: l.side,
                    qty: l.qty,
                    limit: limits[i],
                    bid: quotes[i].bid,
                    ask: quotes[i].ask,
                    refusal: check.legs.get(i).and_then(|c| c.refusal.clone()),
                });
            }
        }
        let expires_at = now.plus(PREVIEW_TTL);
        let id = {
            let mut st = core.lock();
            let reg = &mut st.entry;
            reg.previews
                .retain(|_, s| now <= s.expires_at.plus(Duration::from_secs(600)));
            reg.seq = reg.seq.wrapping_add(1);
            let id = format!(
                "ep-{:016x}",
                crate::enforce::flatten::mix(reg.seq ^ crate::enforce::flatten::mix(now.0 as u64))
            );
            reg.previews.insert(
                id.clone(),
                Stored {
                    intent,
                    expires_at,
                    summary: summary(&ticket, net_price),
                    exits: ticket.exits,
                },
            );
            id
        };
        Ok(EntryPreview {
            id,
            ticket,
            orders,
            net_price,
            net_cash,
            native_combo: check.native_combo,
            leg_timeout: check.leg_timeout,
            hedge_enabled: check.hedge_enabled,
            spot,
            strikes,
            payoff,
            profile,
            margin: MarginEstimate { gross, net },
            refusal: check.refusal,
            stress: check.stress,
            created_at: now,
            expires_at,
        })
    }

    /// Places a previewed ticket: the exact intent previewed, through the coordinator (whose
    /// gate decides again, now). Returns the group.
    pub async fn place_entry(&self, preview_id: &str) -> Result<GroupId, EnforceError> {
        let core = self.core();
        let now = core.now();
        let taken = core.lock().entry.take(preview_id, now);
        let stored = match taken {
            Ok(s) => s,
            Err(e) => {
                core.alerter
                    .audit(
                        "entry_place",
                        e.code(),
                        format!("placing entry {preview_id} refused: {e}"),
                        Some(Purpose::Open),
                    )
                    .await;
                return Err(e.into());
            }
        };
        let intent = stored.intent.with_client_ref(format!("entry:{preview_id}"));
        let legs = signature(intent.legs.iter().map(|l| (&l.instrument, l.signed_qty())));
        let account = intent.account.clone();
        match core.coord.submit(intent).await {
            Ok(g) => {
                if !stored.exits.is_empty() {
                    let a = AttachedExit {
                        entry: preview_id.to_owned(),
                        account,
                        legs,
                        exits: stored.exits,
                        placed_at: now,
                        ended_at: None,
                        why_ended: None,
                    };
                    // Journaled before it is live: a restart keeps it.
                    if let Err(e) = core
                        .journal
                        .append(crate::journal::JournalRecord::AttachedExit(a.clone()))
                        .await
                    {
                        core.alerter
                            .raise(
                                crate::alert::Severity::Critical,
                                "entry.exits_not_saved",
                                format!(
                                    "the exits attached to entry {preview_id} could not be saved ({e}); they guard it until the app stops, not after a restart"
                                ),
                            )
                            .await;
                    }
                    core.lock().entry.attached.insert(a.entry.clone(), a);
                }
                core.alerter
                    .audit(
                        "entry_place",
                        "entry.placed",
                        format!(
                            "entry {preview_id} placed as group {g}: {}{}",
                            stored.summary,
                            if stored.exits.is_empty() {
                                String::new()
                            } else {
                                format!("; attached: {}", stored.exits.labels().join(", "))
                            }
                        ),
                        Some(Purpose::Open),
                    )
                    .await;
                Ok(g)
            }
            Err(ExecError::Refused(r)) => {
                // The coordinator audits its refusal (with the scenario for a stress limit).
                Err(EntryError::Refused(r).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn summary(t: &Ticket, net: Price) -> String {
    let legs: Vec<String> = t
        .legs
        .iter()
        .map(|l| {
            format!(
                "{} {} {}",
                match l.side {
                    Side::Buy => "BUY",
                    Side::Sell => "SELL",
                },
                l.ratio * t.quantity,
                l.instrument.id()
            )
        })
        .collect();
    let (what, px) = if net.is_negative() {
        ("credit", net.checked_neg().unwrap_or(net))
    } else {
        ("debit", net)
    };
    format!(
        "{} × {} ({}) at a net {what} of {px} on {}",
        t.quantity,
        t.template.as_str(),
        legs.join(", "),
        t.account.as_str()
    )
}
