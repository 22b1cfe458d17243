//! Strategy book tests: the demo account, managed vs recognized, transitions, views.

use super::*;
use crate::live::LiveBook;
use tradeguard_model::stubs::{self, call, put};
use tradeguard_model::{BrokerEvent, Greeks, Quote, Right};
use tradeguard_sim::Scenario;

fn px(s: &str) -> Price {
    Price::parse(s).expect("price")
}

fn money(s: &str) -> Money {
    Money::parse(s).expect("money")
}

fn pos(instrument: Instrument, qty: i64, avg: &str) -> Position {
    Position {
        account: stubs::account(),
        instrument,
        qty,
        avg_cost: px(avg),
    }
}

/// (kind, sorted "P540:+1"-style legs) of every strategy.
fn shapes(book: &StrategyBook) -> Vec<(StrategyKind, Vec<String>)> {
    book.strategies()
        .map(|s| {
            let mut legs: Vec<String> = s
                .legs
                .iter()
                .map(|l| match l.instrument.as_option() {
                    Some(o) => format!(
                        "{}{}:{:+}",
                        if o.right == Right::Put { "P" } else { "C" },
                        o.strike.raw() / 10_000,
                        l.qty
                    ),
                    None => format!("{}:{:+}", l.instrument.id(), l.qty),
                })
                .collect();
            legs.sort();
            (s.kind, legs)
        })
        .collect()
}

fn v(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn demo_account_is_condor_put_spread_strangle_and_stock() {
    let demo = Scenario::demo(7);
    let mut book = StrategyBook::new();
    book.sync_positions(&demo.config.positions);
    let mut got: Vec<_> = shapes(&book)
        .into_iter()
        .map(|(k, l)| (format!("{k:?}"), l))
        .collect();
    got.sort();
    let want = vec![
        (
            StrategyKind::IronCondor,
            v(&["P540:+1", "P550:-1", "C600:-1", "C610:+1"]),
        ),
        (StrategyKind::Vertical, v(&["P590:-2", "P580:+2"])),
        (StrategyKind::Strangle, v(&["P530:-1", "C620:-1"])),
        (StrategyKind::Custom, v(&["SPY:+100"])),
    ];
    let mut want: Vec<_> = want
        .into_iter()
        .map(|(k, l)| (format!("{k:?}"), l))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(book.strategies().all(|s| StrategyBook::is_recognized(s.id)));
    assert!(book.discrepancies().is_empty());
    // Roles come from the model's recognition.
    let ic = book
        .strategies()
        .find(|s| s.kind == StrategyKind::IronCondor)
        .expect("condor");
    assert_eq!(
        ic.legs
            .iter()
            .filter(|l| l.role == LegRole::Protection)
            .count(),
        2
    );
    // Same positions (any order) => same ids.
    let ids: Vec<_> = book.strategies().map(|s| s.id).collect();
    let mut reversed = demo.config.positions.clone();
    reversed.reverse();
    let mut again = StrategyBook::new();
    again.sync_positions(&reversed);
    let ids2: Vec<_> = again.strategies().map(|s| s.id).collect();
    assert_eq!(ids, ids2);
}

#[test]
fn managed_strategy_claims_its_legs_and_the_rest_is_recognized() {
    let mut book = StrategyBook::new();
    let ic = stubs::iron_condor_strategy(); // 430/440/460/470 x1, id 1
    book.insert(ic.clone()).expect("insert");
    book.sync_positions(&[
        pos(put(430), 1, "1.00"),
        pos(put(440), -2, "2.00"),
        pos(call(460), -1, "1.50"),
        pos(call(470), 1, "0.50"),
    ]);
    let got = shapes(&book);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], (StrategyKind::Custom, v(&["P440:-1"])));
    // The 440 P is split: one contract in the managed condor, one naked.
    let refs = book.leg_of(&stubs::account(), &put(440).id());
    assert_eq!(refs.len(), 2);
    assert_eq!(
        (refs[0].strategy, refs[0].qty, refs[0].recognized),
        (ic.id, -1, false)
    );
    assert_eq!((refs[1].qty, refs[1].recognized), (-1, true));
    assert!(book.leg_of(&stubs::account(), &put(999).id()).is_empty());
}

#[test]
fn claimed_but_missing_position_is_a_discrepancy() {
    let mut book = StrategyBook::new();
    book.insert(stubs::iron_condor_strategy()).expect("insert");
    // The short 440 P was assigned: the broker no longer holds it.
    book.sync_positions(&[
        pos(put(430), 1, "1.00"),
        pos(call(460), -1, "1.50"),
        pos(call(470), 1, "0.50"),
        pos(Instrument::stock("SPY"), 100, "440"),
    ]);
    assert_eq!(
        book.discrepancies(),
        &[Discrepancy {
            account: stubs::account(),
            instrument: put(440).id(),
            broker_qty: 0,
            claimed_qty: -1,
        }]
    );
    assert_eq!(shapes(&book)[1], (StrategyKind::Custom, v(&["SPY:+100"])));
}

#[test]
fn insert_update_remove_and_transitions() {
    let mut book = StrategyBook::new();
    let ic = stubs::iron_condor_strategy();
    book.insert(ic.clone()).expect("insert");
    assert_eq!(
        book.insert(ic.clone()).unwrap_err().code(),
        "strategies.duplicate"
    );
    let mut reserved = ic.clone();
    reserved.id = StrategyId(RECOGNIZED_BIT | 5);
    assert_eq!(
        book.insert(reserved).unwrap_err().code(),
        "strategies.reserved_id"
    );
    let mut empty = ic.clone();
    empty.id = StrategyId(2);
    empty.legs.clear();
    assert_eq!(
        book.insert(empty).unwrap_err().code(),
        "strategies.bad_legs"
    );

    let mut sneaky = ic.clone();
    sneaky.state = StrategyState::Broken;
    assert_eq!(
        book.update(sneaky).unwrap_err().code(),
        "strategies.immutable_field"
    );
    let mut renamed = ic.clone();
    renamed.name = "renamed".into();
    book.update(renamed).expect("update");
    assert_eq!(book.get(ic.id).map(|s| s.name.as_str()), Some("renamed"));

    // Open -> Open is illegal (model rules), Open -> Broken only via mark_broken.
    assert_eq!(
        book.mark_open(ic.id).unwrap_err().code(),
        "strategy.illegal_transition"
    );
    let reason = BrokenReason::Assigned {
        instrument: put(440).id(),
    };
    book.mark_broken(ic.id, reason.clone()).expect("broken");
    let s = book.get(ic.id).expect("strategy");
    assert_eq!(
        (s.state, s.broken_reason.clone()),
        (StrategyState::Broken, Some(reason))
    );
    book.begin_close(ic.id).expect("emergency close");
    book.mark_closed(ic.id).expect("closed");
    assert_eq!(
        book.begin_close(ic.id).unwrap_err().code(),
        "strategy.illegal_transition"
    );
    assert_eq!(
        book.mark_open(StrategyId(99)).unwrap_err().code(),
        "strategies.unknown"
    );
    book.remove(ic.id).expect("remove");
    assert!(book.get(ic.id).is_none());
    assert_eq!(book.remove(ic.id).unwrap_err().code(), "strategies.unknown");
}

#[test]
fn breaking_a_recognized_strategy_adopts_it() {
    let mut book = StrategyBook::new();
    let legs = [
        pos(put(430), 1, "1.00"),
        pos(put(440), -1, "2.00"),
        pos(call(460), -1, "1.50"),
        pos(call(470), 1, "0.50"),
    ];
    book.sync_positions(&legs);
    let id = book.strategies().next().map(|s| s.id).expect("condor");
    book.mark_broken(
        id,
        BrokenReason::Assigned {
            instrument: put(440).id(),
        },
    )
    .expect("broken");
    // Re-sync with the 440 P gone: the adopted strategy stays (Broken) and is not re-recognized.
    book.sync_positions(&[legs[0].clone(), legs[2].clone(), legs[3].clone()]);
    let all: Vec<_> = book.strategies().collect();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].id, all[0].state), (id, StrategyState::Broken));
    assert_eq!(book.discrepancies().len(), 1);
}

fn quote(instrument: Instrument, bid: &str, ask: &str, greeks: Option<Greeks>) -> BrokerEvent {
    BrokerEvent::Quote(Quote {
        instrument,
        bid: Some(px(bid)),
        ask: Some(px(ask)),
        last: None,
        bid_size: 1,
        ask_size: 1,
        greeks,
        underlying_price: None,
        ts: stubs::ts(),
    })
}

#[test]
fn view_sums_pnl_entry_credit_greeks_and_flags_missing_marks() {
    let g = |delta| {
        Some(Greeks {
            iv: 0.2,
            delta,
            gamma: 0.01,
            vega: 0.1,
            theta: -0.05,
        })
    };
    let mut live = LiveBook::new();
    for p in [pos(put(440), -2, "3.00"), pos(put(430), 2, "1.00")] {
        live.apply(&BrokerEvent::Position(p));
    }
    live.apply(&quote(put(440), "1.90", "2.10", g(-0.30)));
    let now = stubs::ts().plus(Duration::from_secs(2));
    let rows = live.positions(now, Duration::from_secs(5));
    let mut book = StrategyBook::new();
    book.sync_views(&rows);
    let id = book.strategies().next().map(|s| s.id).expect("vertical");
    let view = book.view(id, &rows).expect("view");
    assert_eq!(view.kind, StrategyKind::Vertical);
    // Sold 2 × 3.00, bought 2 × 1.00: credit 400.
    assert_eq!(view.entry_credit, Some(money("400")));
    // The 430 P has no quote: no strategy P&L, worst status Missing, incomplete Greeks.
    assert_eq!(view.mark_status, MarkStatus::Missing);
    assert_eq!(view.pnl, None);
    assert!(!view.greeks.complete);
    assert_eq!(view.badge(), "open");
    let short = &view.legs.iter().find(|l| l.qty < 0).expect("short");
    assert_eq!(short.pnl, Some(money("200")));
    assert_eq!(short.quote_age, Some(Duration::from_secs(2)));

    live.apply(&quote(put(430), "0.40", "0.60", g(-0.10)));
    let rows = live.positions(now, Duration::from_secs(5));
    let view = book.view(id, &rows).expect("view");
    // (2.00 - 3.00) × -2 × 100 + (0.50 - 1.00) × 2 × 100 = 200 - 100.
    assert_eq!(view.pnl, Some(money("100")));
    assert_eq!(view.market_value, Some(money("-300")));
    assert_eq!(view.mark_status, MarkStatus::Fresh);
    assert!(view.greeks.complete);
    // Delta: -0.30 × -200 + -0.10 × 200 = 60 - 20 = 40.
    assert!((view.greeks.delta - 40.0).abs() < 1e-9);
    assert_eq!(book.views(&rows).len(), 1);
}

/// A futures position opens for no cash and is worth its open P&L: no notional as entry
/// credit or value; its delta is one per point times the multiplier.
#[test]
fn a_future_has_no_entry_credit_and_is_worth_its_open_pnl() {
    let mnq = Instrument::Future {
        symbol: "MNQ".into(),
        expiry: chrono::NaiveDate::from_ymd_opt(2026, 12, 18).unwrap(),
        multiplier: 2,
    };
    let mut live = LiveBook::new();
    live.apply(&BrokerEvent::Position(pos(mnq.clone(), 5, "20990")));
    live.apply(&quote(mnq, "20999.75", "21000.25", None));
    let now = stubs::ts().plus(Duration::from_secs(1));
    let rows = live.positions(now, Duration::from_secs(5));
    let mut book = StrategyBook::new();
    book.sync_views(&rows);
    let views = book.views(&rows);
    assert_eq!(views.len(), 1, "{views:?}");
    let v = &views[0];
    assert_eq!(v.entry_credit, Some(Money::ZERO));
    // (21 000 − 20 990) × 5 × 2.
    assert_eq!(v.pnl, Some(money("100")));
    assert_eq!(v.market_value, Some(money("100")));
    assert!(v.greeks.complete);
    assert!((v.greeks.delta - 10.0).abs() < 1e-9);
}
