//! Two-step flatten on the simulated venue in paused virtual time: preview (orders in send
//! order with book prices, warnings), confirm by single-use expiring id through the closer,
//! progress, refusals (expired, reused, unknown, stale), dry-run, flatten all, forced unwind,
//! and a Broken strategy closed through the emergency path.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{AssignmentConfig, RecordingNotifier, UsEquityHours};
use tradeguard_engine::enforce::flatten::{
    FlattenPreview, FlattenScope, FlattenStatus, OrderProgressState, QuoteSide, WarningKind,
};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, NoRules};
use tradeguard_engine::{IntrinsicStressModel, MemoryJournal, OrderIntent, Purpose, TokioClock};
use tradeguard_model::{
    Broker, Instrument, Money, OrderType, Right, Side, StrategyKind, StrategyState, stubs,
};
use tradeguard_sim::{SimBroker, SimConfig, calendar};

async fn start_guard_with(
    b: Arc<SimBroker>,
    j: &MemoryJournal,
    enforce: EnforceConfig,
    assignment: AssignmentConfig,
    spot: &str,
) -> Guard {
    let start = venue(&b).lock().unwrap().now();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px(spot));
    Guard::start(GuardDeps {
        relay: None,
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: tradeguard_engine::EngineConfig {
            hedge_enabled: false,
            ..engine_cfg()
        },
        enforce,
        evaluator: Box::new(NoRules),
        hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment,
    })
    .await
    .unwrap()
}

fn enforce_cfg(dry_run: bool) -> EnforceConfig {
    EnforceConfig {
        eval_interval: Duration::from_millis(200),
        dry_run,
        ..EnforceConfig::default()
    }
}

async fn start_guard(b: Arc<SimBroker>, j: &MemoryJournal, dry_run: bool) -> Guard {
    start_guard_with(
        b,
        j,
        enforce_cfg(dry_run),
        AssignmentConfig::default(),
        "500",
    )
    .await
}

fn p480() -> Instrument {
    opt(Right::Put, 480)
}
fn p490() -> Instrument {
    opt(Right::Put, 490)
}
fn c510() -> Instrument {
    opt(Right::Call, 510)
}
fn c520() -> Instrument {
    opt(Right::Call, 520)
}

fn condor_book(extra: Vec<tradeguard_model::Position>) -> SimConfig {
    let mut c = sim_cfg(11);
    c.positions = vec![
        position(p480(), 2, "1.00"),
        position(p490(), -2, "2.00"),
        position(c510(), -2, "2.10"),
        position(c520(), 2, "1.05"),
    ];
    c.positions.extend(extra);
    c
}

fn condor_id(g: &Guard) -> tradeguard_model::StrategyId {
    let views = g.strategies();
    views
        .iter()
        .find(|s| s.kind == StrategyKind::IronCondor)
        .unwrap_or_else(|| panic!("the condor is recognized: {views:#?}"))
        .id
}

async fn positions_of(b: &SimBroker) -> Vec<(Instrument, i64)> {
    b.positions()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.qty != 0)
        .map(|p| (p.instrument, p.qty))
        .collect()
}

/// (instrument, side, qty) summed over the venue's executions.
async fn executed(b: &SimBroker) -> Vec<(Instrument, Side, i64)> {
    let mut out: Vec<(Instrument, Side, i64)> = Vec::new();
    for e in executions(b).await {
        match out
            .iter_mut()
            .find(|(i, s, _)| *i == e.instrument && *s == e.side)
        {
            Some(x) => x.2 += e.qty,
            None => out.push((e.instrument, e.side, e.qty)),
        }
    }
    out.sort_by_key(|a| a.0.id());
    out
}

fn planned(p: &FlattenPreview) -> Vec<(Instrument, Side, i64)> {
    let mut out: Vec<_> = p
        .orders
        .iter()
        .map(|o| (o.instrument.clone(), o.side, o.qty))
        .collect();
    out.sort_by_key(|a| a.0.id());
    out
}

fn has(p: &FlattenPreview, f: impl Fn(&WarningKind) -> bool) -> bool {
    p.warnings.iter().any(|w| f(&w.kind))
}

fn code_of(e: &tradeguard_engine::enforce::EnforceError) -> &'static str {
    e.code()
}

#[tokio::test(start_paused = true)]
async fn condor_preview_covers_shorts_first_with_book_prices_and_confirm_sends_exactly_that() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    let id = condor_id(&g);

    let p = g
        .preview_flatten(FlattenScope::Strategy { strategy: id })
        .await
        .unwrap();
    assert_eq!(p.purpose, Purpose::Flatten);
    assert!(p.will_send);
    assert_eq!(p.account, stubs::account());
    assert!(p.id.starts_with("fp-") && p.id.len() == 19, "{}", p.id);
    assert_eq!(p.expires_at, p.created_at.plus(Duration::from_secs(30)));
    let steps: Vec<(usize, Instrument, Side, i64)> = p
        .orders
        .iter()
        .map(|o| (o.step, o.instrument.clone(), o.side, o.qty))
        .collect();
    assert_eq!(
        steps,
        vec![
            (1, p490(), Side::Buy, 2),
            (1, c510(), Side::Buy, 2),
            (2, p480(), Side::Sell, 2),
            (2, c520(), Side::Sell, 2),
        ],
        "shorts bought back before their protection is sold"
    );
    // Prices from the live book: a buy at the ask, a sell at the bid.
    let mut total = Money::ZERO;
    for o in &p.orders {
        let e = o.estimate.as_ref().expect("quoted");
        let q = g
            .read_live_book(|lb| lb.quote(&o.instrument.id()).cloned())
            .expect("quote in the book");
        match o.side {
            Side::Buy => assert_eq!((e.side, e.price), (QuoteSide::Ask, q.ask.unwrap())),
            Side::Sell => assert_eq!((e.side, e.price), (QuoteSide::Bid, q.bid.unwrap())),
        }
        let n = e.price.notional(o.qty, 100).unwrap();
        let cash = if o.side == Side::Buy {
            n.checked_neg().unwrap()
        } else {
            n
        };
        assert_eq!(o.estimated_cash, Some(cash));
        total = total.checked_add(cash).unwrap();
    }
    assert!(p.estimate_complete);
    assert_eq!(p.estimated_cash, total);
    assert!(
        total.is_negative(),
        "closing a credit condor costs a debit: {total}"
    );
    assert!(
        !has(&p, |k| matches!(
            k,
            WarningKind::BrokenStrategy { .. }
                | WarningKind::DryRun
                | WarningKind::QuoteMissing { .. }
                | WarningKind::MarketClosed { .. }
        )),
        "{:#?}",
        p.warnings
    );
    assert!(executions(&b).await.is_empty(), "a preview sends nothing");

    let t = g.confirm_flatten(&p.id).await.unwrap();
    assert_eq!(t.preview_id, p.id);
    assert!(!t.dry_run);
    assert_eq!(t.close_jobs.len(), 1);
    sleep_ms(5_000).await;
    assert_eq!(
        executed(&b).await,
        planned(&p),
        "exactly the previewed orders"
    );
    assert!(positions_of(&b).await.is_empty(), "flat at the venue");
    // Shorts filled before any protection was sold.
    let execs = executions(&b).await;
    let last_buy = execs
        .iter()
        .filter(|e| e.side == Side::Buy)
        .map(|e| e.ts)
        .max();
    let first_sell = execs
        .iter()
        .filter(|e| e.side == Side::Sell)
        .map(|e| e.ts)
        .min();
    assert!(last_buy <= first_sell, "{execs:#?}");
    let pr = g.flatten_progress(&t.id).await.unwrap();
    assert_eq!(pr.status, FlattenStatus::Done, "{pr:#?}");
    assert_eq!((pr.sent, pr.filled, pr.failed), (4, 4, 0));
    assert!(pr.orders.iter().all(|o| o.filled == 2 && o.position == 0));
    assert!(g.strategies().iter().all(|s| s.id != id));
    let a = audits(&j);
    assert!(
        a.iter()
            .any(|e| e.decision == "flatten_preview" && e.reason.contains(&p.id))
    );
    assert!(a.iter().any(|e| e.decision == "flatten_confirmed"
        && e.code == "flatten.confirmed"
        && e.reason.contains(&t.id)));
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn expired_reused_and_unknown_ids_are_refused_and_audited() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    // Selling a protection alone is previewed with its consequence.
    let unprotect = g
        .preview_flatten(FlattenScope::Position {
            account: stubs::account(),
            instrument: c520().id(),
        })
        .await
        .unwrap();
    assert!(
        has(&unprotect, |k| matches!(
            k,
            WarningKind::LeavesShortsUncovered {
                right: Right::Call,
                contracts: 2,
                ..
            }
        )),
        "{:#?}",
        unprotect.warnings
    );
    let scope = FlattenScope::Position {
        account: stubs::account(),
        instrument: c510().id(),
    };

    let old = g.preview_flatten(scope.clone()).await.unwrap();
    sleep_ms(31_000).await;
    let e = g.confirm_flatten(&old.id).await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.expired_preview", "{e}");
    assert!(executions(&b).await.is_empty());

    let p = g.preview_flatten(scope).await.unwrap();
    assert_ne!(p.id, old.id);
    assert_eq!(planned(&p), vec![(c510(), Side::Buy, 2)]);
    assert!(
        !has(&p, |k| matches!(
            k,
            WarningKind::LeavesShortsUncovered { .. }
        )),
        "buying back a short uncovers nothing"
    );
    sleep_ms(29_000).await;
    g.confirm_flatten(&p.id).await.unwrap();
    let e = g.confirm_flatten(&p.id).await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.already_used", "{e}");
    let e = g.confirm_flatten("fp-0000000000000000").await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.unknown_preview", "{e}");
    let e = g.flatten_progress("ft-nope").await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.unknown_ticket");
    sleep_ms(3_000).await;
    assert_eq!(
        executed(&b).await,
        vec![(c510(), Side::Buy, 2)],
        "sent once"
    );
    let refused: Vec<String> = audits(&j)
        .into_iter()
        .filter(|a| a.decision == "flatten_refused")
        .map(|a| a.code)
        .collect();
    assert_eq!(
        refused,
        vec![
            "flatten.expired_preview",
            "flatten.already_used",
            "flatten.unknown_preview"
        ]
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_position_change_after_the_preview_makes_it_stale() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    assert_eq!(p.orders.len(), 4);
    // A person buys one short put back in TWS meanwhile.
    external(&b, p490(), Side::Buy, 1).await;
    sleep_ms(2_000).await;
    let e = g.confirm_flatten(&p.id).await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.stale_preview", "{e}");
    assert!(e.to_string().contains("BUY 1"), "{e}");
    sleep_ms(3_000).await;
    assert_eq!(
        executed(&b).await,
        vec![(p490(), Side::Buy, 1)],
        "only the outside trade"
    );
    let e = g.confirm_flatten(&p.id).await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.already_used", "a stale id is spent");
    // A fresh preview reflects the new position.
    let p2 = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    assert!(
        p2.orders
            .iter()
            .any(|o| o.instrument == p490() && o.qty == 1)
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dry_run_preview_warns_and_confirm_sends_nothing() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, true).await;
    sleep_ms(2_000).await;
    let p = g
        .preview_flatten(FlattenScope::Strategy {
            strategy: condor_id(&g),
        })
        .await
        .unwrap();
    assert!(has(&p, |k| *k == WarningKind::DryRun), "{:#?}", p.warnings);
    assert!(!p.will_send);
    assert_eq!(
        p.orders.len(),
        4,
        "the orders it would send are still listed"
    );
    let t = g.confirm_flatten(&p.id).await.unwrap();
    assert!(t.dry_run);
    assert!(t.close_jobs.is_empty());
    sleep_ms(5_000).await;
    assert!(executions(&b).await.is_empty());
    assert_eq!(positions_of(&b).await.len(), 4);
    assert!(g.close_jobs().is_empty());
    let pr = g.flatten_progress(&t.id).await.unwrap();
    assert_eq!(pr.status, FlattenStatus::DryRun);
    assert!(
        pr.orders
            .iter()
            .all(|o| o.state == OrderProgressState::NotSent)
    );
    assert!(
        audits(&j)
            .iter()
            .any(|a| a.decision == "flatten_dry_run" && a.reason.contains("nothing sent"))
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn flatten_all_covers_every_strategy_and_the_stock() {
    let extra = vec![
        position(spy(), 100, "495"),
        position(opt(Right::Call, 530), -1, "0.80"),
        position(opt(Right::Put, 470), -1, "0.70"),
    ];
    let b = broker(condor_book(extra));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    assert!(g.strategies().len() >= 2, "{:#?}", g.strategies());
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    assert_eq!(p.orders.len(), 7, "{:#?}", p.orders);
    // Every buy-back of a short comes before every sale.
    let last_buy_step = p
        .orders
        .iter()
        .filter(|o| o.side == Side::Buy)
        .map(|o| o.step)
        .max()
        .unwrap();
    let first_sell_step = p
        .orders
        .iter()
        .filter(|o| o.side == Side::Sell)
        .map(|o| o.step)
        .min()
        .unwrap();
    assert!(last_buy_step < first_sell_step, "{:#?}", p.orders);
    assert!(
        p.orders
            .iter()
            .any(|o| o.instrument == spy() && o.side == Side::Sell && o.qty == 100)
    );
    let t = g.confirm_flatten(&p.id).await.unwrap();
    sleep_ms(8_000).await;
    assert!(
        positions_of(&b).await.is_empty(),
        "{:?}",
        positions_of(&b).await
    );
    assert_eq!(executed(&b).await, planned(&p));
    assert_eq!(
        g.flatten_progress(&t.id).await.unwrap().status,
        FlattenStatus::Done
    );
    assert!(g.strategies().is_empty());
    // Nothing left: a new preview says so and cannot be confirmed.
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    assert!(p.orders.is_empty() && !p.will_send);
    assert!(has(&p, |k| *k == WarningKind::NothingToFlatten));
    let e = g.confirm_flatten(&p.id).await.unwrap_err();
    assert_eq!(code_of(&e), "flatten.nothing_to_flatten");
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn forced_unwind_goes_through_preview_and_confirm() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    let a = stubs::account();
    let p = g.preview_forced_unwind(a.clone(), true).await.unwrap();
    assert_eq!(p.purpose, Purpose::Emergency);
    assert!(p.will_send);
    assert!(has(&p, |k| *k == WarningKind::ForcedUnwindPersists));
    assert_eq!(p.orders.len(), 4);
    assert!(
        executions(&b).await.is_empty(),
        "nothing before the confirmation"
    );
    assert!(g.status().await.forced_unwind.is_empty());
    let t = g.confirm_flatten(&p.id).await.unwrap();
    assert_eq!(g.status().await.forced_unwind, vec![a.clone()]);
    sleep_ms(6_000).await;
    assert!(positions_of(&b).await.is_empty());
    assert_eq!(
        g.flatten_progress(&t.id).await.unwrap().status,
        FlattenStatus::Done
    );
    // And off again, through the same two steps.
    let off = g.preview_forced_unwind(a.clone(), false).await.unwrap();
    assert!(off.orders.is_empty());
    assert!(has(&off, |k| *k == WarningKind::ForcedUnwindOff));
    g.confirm_flatten(&off.id).await.unwrap();
    assert!(g.status().await.forced_unwind.is_empty());
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn market_closed_flatten_is_armed_for_the_open() {
    let mut c = condor_book(vec![]);
    // 17:00 ET on Tuesday: next regular open Wednesday 09:30.
    c.start = calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), 17, 0);
    let b = broker(c);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    let p = g
        .preview_flatten(FlattenScope::Position {
            account: stubs::account(),
            instrument: p490().id(),
        })
        .await
        .unwrap();
    let open = calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 5).unwrap(), 9, 30);
    assert_eq!(p.armed_until, Some(open));
    assert!(has(&p, |k| *k
        == WarningKind::MarketClosed {
            next_open: open,
            armed: true
        }));
    let t = g.confirm_flatten(&p.id).await.unwrap();
    sleep_ms(5_000).await;
    assert!(executions(&b).await.is_empty(), "held until the open");
    let pr = g.flatten_progress(&t.id).await.unwrap();
    assert_eq!(
        pr.status,
        FlattenStatus::Armed { release_at: open },
        "{pr:#?}"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn broken_strategy_is_flattened_through_the_emergency_path_only() {
    // The demo book: its short 590 put is assigned 6 minutes in; with the delivered stock kept,
    // the spread stays Broken holding the long 580 puts and the stock.
    let b = broker(tradeguard_sim::Scenario::demo(7).config);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard_with(
        b.clone(),
        &j,
        enforce_cfg(false),
        AssignmentConfig {
            policy: tradeguard_engine::assignment::AssignmentPolicy::keep_all_stock(),
            ..AssignmentConfig::default()
        },
        "575",
    )
    .await;
    sleep_ms(
        u64::try_from(tradeguard_sim::scenario::DEMO_ASSIGNMENT_AFTER.as_millis()).unwrap()
            + 30_000,
    )
    .await;
    let views = g.strategies();
    let broken = views
        .iter()
        .find(|s| s.state == StrategyState::Broken)
        .unwrap_or_else(|| panic!("a Broken strategy: {views:#?} {:#?}", g.assignment_status()))
        .clone();
    let account = broken.account.clone();

    // A normal close is refused by the gate.
    let leg = broken
        .legs
        .iter()
        .find(|l| l.qty > 0)
        .expect("a long leg left");
    let normal = OrderIntent::new(Purpose::Close, account.clone())
        .for_strategy(broken.id)
        .leg(leg.instrument.clone(), Side::Sell, 1, OrderType::Market);
    let e = g.coordinator().submit(normal).await.unwrap_err();
    assert_eq!(e.code(), "gate.strategy_broken", "{e}");

    let p = g
        .preview_flatten(FlattenScope::Strategy {
            strategy: broken.id,
        })
        .await
        .unwrap();
    assert_eq!(p.purpose, Purpose::Emergency);
    assert!(
        has(
            &p,
            |k| matches!(k, WarningKind::BrokenStrategy { strategy, .. } if *strategy == broken.id)
        ),
        "{:#?}",
        p.warnings
    );
    assert!(!p.orders.is_empty(), "{p:#?}");
    let before = executions(&b).await.len();
    let t = g.confirm_flatten(&p.id).await.unwrap();
    assert_eq!(t.purpose, Purpose::Emergency);
    sleep_ms(8_000).await;
    let pr = g.flatten_progress(&t.id).await.unwrap();
    assert_eq!(pr.status, FlattenStatus::Done, "{pr:#?}");
    for o in &p.orders {
        let now = qty_at_broker(&b, &o.instrument).await;
        assert_eq!(
            now,
            o.position + o.side.sign() * o.qty,
            "{} closed by exactly the previewed qty",
            o.instrument.id()
        );
    }
    let mut after: Vec<(Instrument, Side, i64)> = Vec::new();
    for e in executions(&b).await.into_iter().skip(before) {
        match after
            .iter_mut()
            .find(|(i, s, _)| *i == e.instrument && *s == e.side)
        {
            Some(x) => x.2 += e.qty,
            None => after.push((e.instrument, e.side, e.qty)),
        }
    }
    after.sort_by_key(|a| a.0.id());
    assert_eq!(
        after,
        planned(&p),
        "exactly the previewed orders, nothing else"
    );
    // Still refused on the normal path afterwards (the strategy stays locked).
    let again = OrderIntent::new(Purpose::Close, account)
        .for_strategy(broken.id)
        .leg(leg.instrument.clone(), Side::Buy, 1, OrderType::Market);
    assert_eq!(
        g.coordinator().submit(again).await.unwrap_err().code(),
        "gate.strategy_broken"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn halted_trading_flattens_through_the_emergency_path_and_says_so() {
    let b = broker(condor_book(vec![]));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, false).await;
    sleep_ms(2_000).await;
    g.coordinator()
        .set_trading_state(tradeguard_engine::TradingState::Halted)
        .await
        .unwrap();
    let p = g
        .preview_flatten(FlattenScope::Strategy {
            strategy: condor_id(&g),
        })
        .await
        .unwrap();
    assert!(
        has(&p, |k| *k == WarningKind::TradingHalted),
        "{:#?}",
        p.warnings
    );
    assert_eq!(p.purpose, Purpose::Emergency);
    let t = g.confirm_flatten(&p.id).await.unwrap();
    sleep_ms(5_000).await;
    assert!(positions_of(&b).await.is_empty());
    assert_eq!(
        g.flatten_progress(&t.id).await.unwrap().status,
        FlattenStatus::Done
    );
    g.shutdown().await;
}
