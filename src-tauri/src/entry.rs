//! Opening a strategy across IPC (issue 22): the option chain, the ticket's preview with its
//! single-use id, and placing only that preview ([`tradeguard_engine::entry`] does the work).
//! Prices cross as decimal strings, model figures as numbers.

use crate::detail::PayoffPointView;
use crate::error::{ErrorCode, IpcError};
use crate::state::AppState;
use crate::view::label;
use serde::{Deserialize, Serialize};
use specta::Type;
use tradeguard_engine::enforce::EnforceError;
use tradeguard_engine::entry::{
    ChainOption, ChainView, EntryPreview, Exits, LimitPrice, Template, Ticket, TicketLeg,
};
use tradeguard_model::{AccountId, Instrument, Price, Side, Tif, Timestamp};

/// An engine refusal as the UI receives it: the engine's code is the `reason`.
fn ipc(e: EnforceError) -> IpcError {
    let code = e.code();
    let category = match code {
        "entry.unknown_preview" => ErrorCode::NotFound,
        c if c.starts_with("entry.") || c.starts_with("gate.") => ErrorCode::InvalidInput,
        _ => ErrorCode::Unavailable,
    };
    IpcError::new(category, code, e.to_string())
}

/// One option of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChainCellView {
    /// The instrument id the ticket sends back (OCC symbol).
    pub instrument: String,
    pub bid: Option<String>,
    pub ask: Option<String>,
    pub last: Option<String>,
    /// Implied vol from the mid (0.18 = 18 %).
    pub iv: Option<f64>,
    pub delta: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChainRowView {
    pub strike: String,
    pub call: ChainCellView,
    pub put: ChainCellView,
}

/// The chain of one underlying at one expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct OptionChainView {
    pub underlying: String,
    /// The underlying's mid (`None` before its first quote).
    pub spot: Option<String>,
    /// Listed expiries, `YYYY-MM-DD`.
    pub expiries: Vec<String>,
    pub expiry: String,
    pub rows: Vec<ChainRowView>,
    /// The account an order would go to.
    pub account: Option<String>,
}

fn px(p: Option<Price>) -> Option<String> {
    p.map(|p| p.to_string())
}

fn cell(o: &ChainOption) -> ChainCellView {
    ChainCellView {
        instrument: o.instrument.id().as_str().to_owned(),
        bid: px(o.quote.as_ref().and_then(|q| q.bid)),
        ask: px(o.quote.as_ref().and_then(|q| q.ask)),
        last: px(o.quote.as_ref().and_then(|q| q.last)),
        iv: o.iv,
        delta: o.delta,
    }
}

pub fn chain_view(c: &ChainView, account: Option<String>) -> OptionChainView {
    OptionChainView {
        underlying: c.underlying.clone(),
        spot: px(c.spot),
        expiries: c.expiries.iter().map(|d| d.to_string()).collect(),
        expiry: c.expiry.to_string(),
        rows: c
            .strikes
            .iter()
            .map(|s| ChainRowView {
                strike: s.strike.to_string(),
                call: cell(&s.call),
                put: cell(&s.put),
            })
            .collect(),
        account,
    }
}

/// One leg of a ticket as the UI sends it.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TicketLegInput {
    /// An OCC option symbol, or a stock ticker.
    pub instrument: String,
    /// "buy" or "sell".
    pub side: String,
    /// Contracts (shares) per unit.
    #[specta(type = specta_typescript::Number)]
    pub ratio: i64,
}

/// A ticket as the UI sends it.
#[derive(Debug, Clone, PartialEq, Deserialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct TicketInput {
    /// Empty: the venue's account.
    pub account: String,
    /// "vertical", "iron_condor", "strangle", "straddle", "calendar", "butterfly",
    /// "covered_call", "cash_secured_put", "custom".
    pub template: String,
    pub legs: Vec<TicketLegInput>,
    #[specta(type = specta_typescript::Number)]
    pub quantity: i64,
    /// "mid", "natural" or "custom".
    pub limit: String,
    /// For "custom": the net per unit per share, a credit negative ("-2.45") or a debit.
    pub net: Option<String>,
    /// "day" or "gtc".
    pub tif: String,
    /// Stop-loss attached: close (hybrid exit) when the loss reaches this multiple of the
    /// entry premium ("2" = twice the credit); empty or null: none.
    pub stop_loss_multiple: Option<String>,
    /// Profit target attached: close when the P&L reaches this percent of the entry premium.
    pub profit_target_pct: Option<u32>,
}

fn bad(reason: &str, message: impl Into<String>) -> IpcError {
    IpcError::invalid_input(reason, message)
}

fn parse_ticket(t: TicketInput, default_account: Option<String>) -> Result<Ticket, IpcError> {
    let template: Template = serde_json::from_value(serde_json::Value::String(t.template.clone()))
        .map_err(|_| {
            bad(
                "entry.bad_ticket",
                format!("unknown template {:?}", t.template),
            )
        })?;
    let mut legs = Vec::with_capacity(t.legs.len());
    for (i, l) in t.legs.iter().enumerate() {
        let s = l.instrument.trim();
        let instrument = if s.len() > 12 {
            Instrument::Option(tradeguard_model::occ::parse(s).map_err(|e| {
                bad(
                    "entry.bad_ticket",
                    format!("legs[{i}].instrument {s:?}: {e}"),
                )
            })?)
        } else if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            Instrument::stock(s)
        } else {
            return Err(bad(
                "entry.bad_ticket",
                format!("legs[{i}].instrument {s:?} is neither an OCC option symbol nor a ticker"),
            ));
        };
        let side = match l.side.as_str() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => {
                return Err(bad(
                    "entry.bad_ticket",
                    format!("legs[{i}].side {other:?}: buy or sell"),
                ));
            }
        };
        legs.push(TicketLeg {
            instrument,
            side,
            ratio: l.ratio,
        });
    }
    let limit = match t.limit.as_str() {
        "mid" => LimitPrice::Mid,
        "natural" => LimitPrice::Natural,
        "custom" => {
            let raw = t.net.as_deref().unwrap_or("").trim();
            let net = Price::parse(raw).map_err(|e| {
                bad(
                    "entry.bad_ticket",
                    format!("net {raw:?}: {e} (a credit negative, e.g. -2.45)"),
                )
            })?;
            LimitPrice::Custom { net }
        }
        other => {
            return Err(bad(
                "entry.bad_ticket",
                format!("limit {other:?}: mid, natural or custom"),
            ));
        }
    };
    let tif = match t.tif.as_str() {
        "day" => Tif::Day,
        "gtc" => Tif::Gtc,
        other => {
            return Err(bad(
                "entry.bad_ticket",
                format!("tif {other:?}: day or gtc"),
            ));
        }
    };
    let account = match t.account.trim() {
        "" => default_account.ok_or_else(|| {
            IpcError::new(
                ErrorCode::Unavailable,
                "entry.no_account",
                "no account seen on the venue yet: wait for its first account update",
            )
        })?,
        a => a.to_owned(),
    };
    Ok(Ticket {
        account: AccountId::new(&account),
        template,
        legs,
        quantity: t.quantity,
        limit,
        tif,
        exits: Exits {
            stop_loss_multiple: match t.stop_loss_multiple.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(m) => Some(Price::parse(m).map_err(|e| {
                    bad(
                        "entry.bad_ticket",
                        format!("stop-loss multiple {m:?}: {e} (e.g. 2 for twice the credit)"),
                    )
                })?),
            },
            profit_target_pct: t.profit_target_pct,
        },
    })
}

/// One order of the preview, in send order.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EntryOrderView {
    /// 1 = sent first.
    pub step: u32,
    /// "BUY" / "SELL".
    pub side: String,
    #[specta(type = specta_typescript::Number)]
    pub qty: i64,
    pub label: String,
    pub limit: String,
    pub bid: Option<String>,
    pub ask: Option<String>,
    /// Why the gate would refuse this leg alone.
    pub refusal: Option<String>,
}

/// The gate's stress figures of book + order.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct StressVerdictView {
    /// Worst-case loss (USD), when it could be computed.
    pub worst_case: Option<String>,
    /// Where it happens ("underlying −3 %, IV +50 %, spreads ×2").
    pub scenario: Option<String>,
    /// The line: `pct` % of the available funds.
    pub limit: Option<String>,
    pub available: Option<String>,
    pub pct: Option<u32>,
    /// Why the figures could not be computed.
    pub error: Option<String>,
}

/// What opening the ticket would do; nothing is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EntryPreviewView {
    pub id: String,
    pub title: String,
    pub account: String,
    pub orders: Vec<EntryOrderView>,
    /// "credit 2.40" / "debit 1.15" per unit per share.
    pub net_label: String,
    /// Cash of the whole order at its limits: + received, − paid.
    pub net_cash: String,
    /// How it goes out, a line each.
    pub plan: Vec<String>,
    pub underlying: String,
    pub spot: f64,
    pub strikes: Vec<f64>,
    pub payoff: Vec<PayoffPointView>,
    /// `None`: unbounded.
    pub max_profit: Option<f64>,
    pub max_loss: Option<f64>,
    pub breakevens: Vec<f64>,
    pub probability_of_profit: f64,
    /// `false`: a calendar, read from a dense grid.
    pub profile_exact: bool,
    pub margin_gross: f64,
    pub margin_net: f64,
    /// Where the margin figure comes from.
    pub margin_source: String,
    /// `true` when the gate would pass the order now.
    pub passes: bool,
    /// The gate's refusal, said in full (names the scenario and the excess for stress).
    pub refusal: Option<String>,
    pub refusal_code: Option<String>,
    pub stress: StressVerdictView,
    pub expires_in_secs: f64,
    /// Exits attached to the strategy once it is held, a line each.
    pub exits: Vec<String>,
}

fn money(m: tradeguard_model::Money) -> String {
    m.to_string()
}

pub fn preview_view(p: &EntryPreview, now: Timestamp) -> EntryPreviewView {
    let t = &p.ticket;
    let units = t.quantity;
    let (kind, net) = if p.net_price.is_negative() {
        ("credit", p.net_price.checked_neg().unwrap_or(p.net_price))
    } else {
        ("debit", p.net_price)
    };
    let first = t.legs.first().map(|l| l.instrument.underlying().to_owned());
    let mut plan = Vec::new();
    if p.native_combo {
        plan.push(
            "One native combo order at the net limit: the venue fills every leg together."
                .to_owned(),
        );
    } else {
        let tiers = p.orders.iter().map(|o| o.tier).max().map_or(0, |m| m + 1);
        plan.push(format!(
            "Legged in {tiers} step{}: protective legs first, each step only after the one before has filled.",
            if tiers == 1 { "" } else { "s" }
        ));
        plan.push(format!(
            "A leg not filled within {} s is cancelled, and what filled is rolled back.",
            p.leg_timeout.as_secs()
        ));
        plan.push(if p.hedge_enabled {
            "A partial fill that leaves short options uncovered is hedged for exactly the unmatched quantity while the group legs in.".to_owned()
        } else {
            "A partial fill that leaves short options uncovered is alerted (hedging is off).".to_owned()
        });
    }
    plan.push(
        "Sent even while the rules file is in dry-run: an order you enter, and the exits you attach to it."
            .to_owned(),
    );
    let stress = match &p.stress {
        Ok(s) => StressVerdictView {
            worst_case: Some(money(s.worst.requirement)),
            scenario: Some(s.worst.scenario.to_string()),
            limit: Some(money(s.limit)),
            available: Some(money(s.available)),
            pct: Some(s.pct),
            error: None,
        },
        Err(e) => StressVerdictView {
            worst_case: None,
            scenario: None,
            limit: None,
            available: None,
            pct: None,
            error: Some(e.to_string()),
        },
    };
    EntryPreviewView {
        id: p.id.clone(),
        title: format!(
            "Open {units} × {} on {}",
            t.template.as_str().replace('_', " "),
            first.unwrap_or_default()
        ),
        account: t.account.as_str().to_owned(),
        orders: p
            .orders
            .iter()
            .map(|o| EntryOrderView {
                step: u32::try_from(o.tier + 1).unwrap_or(u32::MAX),
                side: match o.side {
                    Side::Buy => "BUY",
                    Side::Sell => "SELL",
                }
                .to_owned(),
                qty: o.qty,
                label: label(&o.instrument),
                limit: o.limit.to_string(),
                bid: px(o.bid),
                ask: px(o.ask),
                refusal: o.refusal.as_ref().map(ToString::to_string),
            })
            .collect(),
        net_label: format!("{kind} {net}"),
        net_cash: format!("{:.2}", p.net_cash),
        plan,
        underlying: t
            .legs
            .first()
            .map(|l| l.instrument.underlying().to_owned())
            .unwrap_or_default(),
        spot: p.spot,
        strikes: p.strikes.clone(),
        payoff: p
            .payoff
            .iter()
            .map(|x| PayoffPointView {
                spot: x.spot,
                pnl_expiry: x.pnl_expiry,
                pnl_today: x.pnl_today,
            })
            .collect(),
        max_profit: p.profile.max_profit,
        max_loss: p.profile.max_loss,
        breakevens: p.profile.breakevens.clone(),
        probability_of_profit: p.profile.probability_of_profit,
        profile_exact: p.profile.exact,
        margin_gross: p.margin.gross,
        margin_net: p.margin.net,
        margin_source: "Reg T strategy-based requirement from Tradeguard's calculator (not the venue's what-if)".to_owned(),
        passes: p.refusal.is_none(),
        refusal: p.refusal.as_ref().map(ToString::to_string),
        refusal_code: p.refusal.as_ref().map(|r| r.code().to_owned()),
        stress,
        expires_in_secs: p.expires_at.duration_since(now).as_secs_f64(),
        exits: t.exits.labels(),
    }
}

/// The chain of `underlying` at `expiry` (empty: the first listed), `strikes` around the price.
#[tauri::command]
#[specta::specta]
pub async fn option_chain(
    state: tauri::State<'_, AppState>,
    underlying: String,
    expiry: String,
    strikes: u32,
) -> Result<OptionChainView, IpcError> {
    let venue = state.venue()?;
    let underlying = underlying.trim().to_ascii_uppercase();
    if underlying.is_empty() {
        return Err(bad("entry.no_underlying", "say which underlying"));
    }
    let expiry = match expiry.trim() {
        "" => None,
        s => Some(
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|e| bad("entry.bad_expiry", format!("expiry {s:?}: {e}")))?,
        ),
    };
    let c = venue
        .guard()
        .option_chain(&underlying, expiry, strikes as usize)
        .await
        .map_err(ipc)?;
    Ok(chain_view(&c, venue.known_accounts().into_iter().next()))
}

/// Step one: what the ticket would do. Sends nothing.
#[tauri::command]
#[specta::specta]
pub async fn preview_entry(
    state: tauri::State<'_, AppState>,
    ticket: TicketInput,
) -> Result<EntryPreviewView, IpcError> {
    let venue = state.venue()?;
    let t = parse_ticket(ticket, venue.known_accounts().into_iter().next())?;
    let p = venue.guard().preview_entry(t).await.map_err(ipc)?;
    Ok(preview_view(&p, venue.now()))
}

/// What a placement returns: the group the coordinator started.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct EntryPlacedView {
    pub preview_id: String,
    pub group: String,
}

/// Step two: places a valid, unexpired, unused preview.
#[tauri::command]
#[specta::specta]
pub async fn place_entry(
    state: tauri::State<'_, AppState>,
    preview_id: String,
) -> Result<EntryPlacedView, IpcError> {
    let g = state
        .venue()?
        .guard()
        .place_entry(&preview_id)
        .await
        .map_err(ipc)?;
    tracing::info!(preview = %preview_id, group = %g, "entry placed by the user");
    Ok(EntryPlacedView {
        preview_id,
        group: g.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(template: &str) -> TicketInput {
        TicketInput {
            account: String::new(),
            template: template.into(),
            legs: vec![TicketLegInput {
                instrument: "SPY   250321P00480000".into(),
                side: "sell".into(),
                ratio: 1,
            }],
            quantity: 1,
            limit: "custom".into(),
            net: Some("-1.25".into()),
            tif: "day".into(),
            stop_loss_multiple: Some("2".into()),
            profit_target_pct: None,
        }
    }

    #[test]
    fn tickets_are_read_with_their_errors_named() {
        let t = parse_ticket(input("cash_secured_put"), Some("DU1".into())).expect("ticket");
        assert_eq!(t.account.as_str(), "DU1");
        assert_eq!(t.template, Template::CashSecuredPut);
        assert_eq!(
            t.limit,
            LimitPrice::Custom {
                net: Price::parse("-1.25").unwrap()
            }
        );
        assert!(t.legs[0].instrument.as_option().is_some());
        assert_eq!(t.exits.stop_loss_multiple, Some(Price::parse("2").unwrap()));
        let mut i = input("custom");
        i.stop_loss_multiple = Some("twice".into());
        let e = parse_ticket(i, Some("DU1".into())).unwrap_err();
        assert!(e.message.contains("stop-loss multiple"), "{e:?}");
        let e = parse_ticket(input("iron_butterfly"), Some("DU1".into())).unwrap_err();
        assert!(e.message.contains("unknown template"), "{e:?}");
        let mut i = input("custom");
        i.legs[0].side = "short".into();
        let e = parse_ticket(i, Some("DU1".into())).unwrap_err();
        assert!(e.message.contains("legs[0].side"), "{e:?}");
        let mut i = input("custom");
        i.net = Some("two".into());
        assert_eq!(
            parse_ticket(i, None).unwrap_err().reason,
            "entry.bad_ticket"
        );
        assert_eq!(
            parse_ticket(input("custom"), None).unwrap_err().reason,
            "entry.no_account"
        );
    }
}
