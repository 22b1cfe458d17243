//! Closes larger than the gate's per-order limit ("Do no harm", item 2) on the simulated venue
//! in paused virtual time. A book of 500 SPY shares, a 300-lot call spread and 2 000 QQQ
//! shares (every position over `max_order_qty` = 100, the whole book far over the $1M
//! notional) is closed completely by "Flatten all", by strategy flattens, by a daily-loss
//! flatten and by the position cap: a close is never refused for its size, notional or rate;
//! each leg over the limit goes out as child orders of at most 100 in its tier (shorts first),
//! and the preview lists the split (and warns when the gate would refuse an order). Opening
//! orders keep every limit. A native combo over the limit is legged in child orders instead.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{AssignmentConfig, RecordingNotifier, UsEquityHours};
use tradeguard_engine::enforce::flatten::{
    FlattenPreview, FlattenScope, FlattenStatus, WarningKind,
};
use tradeguard_engine::enforce::{
    EnforceConfig, Guard, GuardDeps, NoRules, RiskRules, RuleEvaluator,
};
use tradeguard_engine::{IntrinsicStressModel, MemoryJournal, OrderIntent, Purpose, TokioClock};
use tradeguard_model::{
    Broker, Instrument, InstrumentId, OrderType, Right, Side, StrategyId, StrategyKind, stubs,
};
use tradeguard_sim::{SimBroker, SimConfig, UnderlyingSpec, calendar};

fn hours() -> Arc<UsEquityHours> {
    Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS))
}

fn qqq() -> Instrument {
    Instrument::stock("QQQ")
}
fn c510() -> Instrument {
    opt(Right::Call, 510)
}
fn c520() -> Instrument {
    opt(Right::Call, 520)
}

/// 500 SPY, long 300 510 calls / short 300 520 calls, 2 000 QQQ; account values every second.
fn big_book(seed: u64) -> SimConfig {
    let mut c = sim_cfg(seed);
    c.underlyings.push(UnderlyingSpec {
        symbol: "QQQ".into(),
        price: px("400"),
        vol: 0.15,
        drift: 0.0,
        dividend_yield: 0.0,
        ex_dividend_dates: vec![],
    });
    c.market.account_interval = Duration::from_secs(1);
    c.positions = vec![
        position(spy(), 500, "495"),
        position(c510(), 300, "3.00"),
        position(c520(), -300, "1.00"),
        position(qqq(), 2_000, "395"),
    ];
    c
}

async fn start_guard(
    b: Arc<SimBroker>,
    j: &MemoryJournal,
    evaluator: Box<dyn RuleEvaluator>,
) -> Guard {
    let start = venue(&b).lock().unwrap().now();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("500"));
    risk.fallback_spots.insert("QQQ".into(), px("400"));
    Guard::start(GuardDeps {
        relay: None,
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: tradeguard_engine::EngineConfig {
            hedge_enabled: false,
            watch_symbols: vec!["SPY".into(), "QQQ".into()],
            ..engine_cfg()
        },
        enforce: EnforceConfig {
            eval_interval: Duration::from_millis(200),
            ..EnforceConfig::default()
        },
        evaluator,
        hours: hours(),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap()
}

fn rules(dir: &Path, body: &str) -> Box<dyn RuleEvaluator> {
    let p = dir.join("risk.toml");
    std::fs::write(&p, body).unwrap();
    Box::new(RiskRules::load(&p, hours()).unwrap())
}

async fn positions_of(b: &SimBroker) -> Vec<(InstrumentId, i64)> {
    let mut out: Vec<(InstrumentId, i64)> = b
        .positions()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.qty != 0)
        .map(|p| (p.instrument.id(), p.qty))
        .collect();
    out.sort();
    out
}

/// `BUY` / `SELL` (a map key: `Side` is not ordered).
fn dir(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

type ByLeg = BTreeMap<(InstrumentId, &'static str), Vec<i64>>;

/// Per (instrument, side): the quantity each broker order filled, largest first.
async fn orders_by_leg(b: &SimBroker) -> ByLeg {
    let mut per_order: BTreeMap<(InstrumentId, &'static str, i64), i64> = BTreeMap::new();
    for e in executions(b).await {
        let id = e.order_id.expect("engine orders carry their id").0;
        *per_order
            .entry((e.instrument.id(), dir(e.side), id))
            .or_default() += e.qty;
    }
    let mut out = ByLeg::new();
    for ((i, s, _), q) in per_order {
        out.entry((i, s)).or_default().push(q);
    }
    for v in out.values_mut() {
        v.sort_unstable_by(|a, b| b.cmp(a));
    }
    out
}

/// The whole book closed: 3 child orders per spread leg, 5 for SPY, 20 for QQQ, all of 100.
fn whole_book_closed_in_children() -> ByLeg {
    BTreeMap::from([
        ((c510().id(), "SELL"), vec![100; 3]),
        ((c520().id(), "BUY"), vec![100; 3]),
        ((spy().id(), "SELL"), vec![100; 5]),
        ((qqq().id(), "SELL"), vec![100; 20]),
    ])
}

fn refusals(j: &MemoryJournal) -> Vec<String> {
    audits(j)
        .into_iter()
        .filter(|a| a.decision == "refused")
        .map(|a| format!("{}: {}", a.code, a.reason))
        .collect()
}

/// Time of the last fill of `(instrument, side)` and of the first one.
async fn fill_span(b: &SimBroker, i: &Instrument, side: Side) -> (i64, i64) {
    let ts: Vec<i64> = executions(b)
        .await
        .iter()
        .filter(|e| &e.instrument == i && e.side == side)
        .map(|e| e.ts.0)
        .collect();
    (
        ts.iter().copied().min().unwrap(),
        ts.iter().copied().max().unwrap(),
    )
}

fn has(p: &FlattenPreview, f: impl Fn(&WarningKind) -> bool) -> bool {
    p.warnings.iter().any(|w| f(&w.kind))
}

#[tokio::test(start_paused = true)]
async fn flatten_all_of_a_book_over_every_limit_closes_it_in_child_orders() {
    let b = broker(big_book(21));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, Box::new(NoRules)).await;
    sleep_ms(2_000).await;

    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    // The preview shows the split and no refusal: what the gate will do.
    let split: Vec<(usize, InstrumentId, Side, i64, Vec<i64>)> = p
        .orders
        .iter()
        .map(|o| {
            (
                o.step,
                o.instrument.id(),
                o.side,
                o.qty,
                o.child_orders.clone(),
            )
        })
        .collect();
    assert_eq!(
        split,
        vec![
            (1, c520().id(), Side::Buy, 300, vec![100; 3]),
            (2, qqq().id(), Side::Sell, 2_000, vec![100; 20]),
            (3, spy().id(), Side::Sell, 500, vec![100; 5]),
            (3, c510().id(), Side::Sell, 300, vec![100; 3]),
        ],
        "{:#?}",
        p.orders
    );
    assert!(p.orders.iter().all(|o| o.gate_refusal.is_none()));
    assert!(
        !has(&p, |k| matches!(k, WarningKind::GateRefusal { .. })),
        "{:#?}",
        p.warnings
    );
    assert!(
        audits(&j)
            .iter()
            .any(|a| a.decision == "flatten_preview"
                && a.reason.contains("SELL 2000 QQQ as 20 orders")),
        "the audit shows the split"
    );

    let t = g.confirm_flatten(&p.id).await.unwrap();
    assert_eq!(
        t.orders[1].child_orders,
        vec![100; 20],
        "the ticket keeps the split"
    );
    sleep_ms(10_000).await;
    assert_eq!(positions_of(&b).await, vec![], "flat at the venue");
    assert_eq!(orders_by_leg(&b).await, whole_book_closed_in_children());
    assert_eq!(refusals(&j), Vec::<String>::new());
    // Shorts first: every child buying back the short calls filled before any sale of their
    // protection (the long calls, the stock covering them).
    let (_, short_done) = fill_span(&b, &c520(), Side::Buy).await;
    for (i, side) in [(c510(), Side::Sell), (spy(), Side::Sell)] {
        let (first, _) = fill_span(&b, &i, side).await;
        assert!(
            short_done <= first,
            "{} sold before the short was bought back",
            i.id()
        );
    }
    let pr = g.flatten_progress(&t.id).await.unwrap();
    assert_eq!(pr.status, FlattenStatus::Done, "{pr:#?}");
    assert_eq!((pr.sent, pr.filled, pr.failed), (4, 4, 0));
    // One group with a leg per child order, each at most 100.
    let snap = g.coordinator().snapshot().await.unwrap();
    let grp = snap
        .groups
        .iter()
        .find(|g| g.intent.purpose == Purpose::Flatten)
        .expect("the flatten's group");
    assert_eq!((grp.intent.legs.len(), grp.legs.len()), (4, 31));
    assert!(
        grp.legs
            .iter()
            .all(|l| l.intent.qty == 100 && l.filled() == 100)
    );

    // An opening order over the limit is still refused, and nothing is sent for it.
    let open = OrderIntent::new(Purpose::Open, stubs::account()).leg(
        spy(),
        Side::Buy,
        101,
        OrderType::Limit { limit: px("500") },
    );
    let e = g.coordinator().submit(open).await.unwrap_err();
    assert_eq!(e.code(), "gate.max_order_qty", "{e}");
    sleep_ms(2_000).await;
    assert_eq!(positions_of(&b).await, vec![]);
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn preview_warns_before_confirm_when_the_gate_would_refuse_an_order() {
    let b = broker(big_book(22));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, Box::new(NoRules)).await;
    sleep_ms(2_000).await;
    // The coordinator locks the long calls for normal orders (as for a Broken strategy's leg
    // the guard's book does not know of yet).
    g.coordinator()
        .set_broken_legs(BTreeMap::from([(c510().id(), StrategyId(99))]))
        .await
        .unwrap();
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    let refused: Vec<(InstrumentId, Option<String>)> = p
        .orders
        .iter()
        .map(|o| (o.instrument.id(), o.gate_refusal.clone()))
        .filter(|(_, r)| r.is_some())
        .collect();
    assert_eq!(
        refused,
        vec![(c510().id(), Some("gate.broken_strategy_leg".to_owned()))]
    );
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "flatten.warn.gate_refusal")
        .unwrap_or_else(|| panic!("{:#?}", p.warnings));
    assert_eq!(
        w.kind,
        WarningKind::GateRefusal {
            instrument: Some(c510().id()),
            refusal: "gate.broken_strategy_leg".into()
        }
    );
    assert!(w.message.contains("strategy 99"), "{}", w.message);
    assert_eq!(
        p.warnings
            .iter()
            .filter(|w| w.code == "flatten.warn.gate_refusal")
            .count(),
        1,
        "the close's own refusal is the same one: listed once"
    );
    assert!(executions(&b).await.is_empty(), "a preview sends nothing");
    // Unlocked: no warning.
    g.coordinator()
        .set_broken_legs(BTreeMap::new())
        .await
        .unwrap();
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: stubs::account(),
        })
        .await
        .unwrap();
    assert!(!has(&p, |k| matches!(k, WarningKind::GateRefusal { .. })));
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn strategy_flattens_close_the_300_lot_spread_and_the_stock_in_child_orders() {
    let b = broker(big_book(23));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, Box::new(NoRules)).await;
    sleep_ms(2_000).await;
    let views = g.strategies();
    let spread = views
        .iter()
        .find(|s| s.kind == StrategyKind::Vertical)
        .unwrap_or_else(|| panic!("the call spread is recognized: {views:#?}"))
        .id;
    let p = g
        .preview_flatten(FlattenScope::Strategy { strategy: spread })
        .await
        .unwrap();
    let split: Vec<(usize, InstrumentId, Vec<i64>)> = p
        .orders
        .iter()
        .map(|o| (o.step, o.instrument.id(), o.child_orders.clone()))
        .collect();
    assert_eq!(
        split,
        vec![
            (1, c520().id(), vec![100; 3]),
            (2, c510().id(), vec![100; 3])
        ]
    );
    g.confirm_flatten(&p.id).await.unwrap();
    sleep_ms(6_000).await;
    assert_eq!(
        positions_of(&b).await,
        vec![(qqq().id(), 2_000), (spy().id(), 500)],
        "the spread is closed, the stock is another strategy"
    );
    let (_, short_done) = fill_span(&b, &c520(), Side::Buy).await;
    let (first_sale, _) = fill_span(&b, &c510(), Side::Sell).await;
    assert!(short_done <= first_sale);

    // The stock positions are strategies of their own: flattened one by one, the book ends flat.
    let rest: Vec<StrategyId> = g.strategies().iter().map(|s| s.id).collect();
    assert_eq!(rest.len(), 2, "{:#?}", g.strategies());
    for id in rest {
        let p = g
            .preview_flatten(FlattenScope::Strategy { strategy: id })
            .await
            .unwrap();
        assert_eq!(p.orders.len(), 1);
        assert_eq!(
            p.orders[0].child_orders.len(),
            usize::try_from(p.orders[0].qty / 100).unwrap()
        );
        g.confirm_flatten(&p.id).await.unwrap();
        sleep_ms(6_000).await;
    }
    assert_eq!(positions_of(&b).await, vec![], "flat at the venue");
    assert_eq!(orders_by_leg(&b).await, whole_book_closed_in_children());
    assert_eq!(refusals(&j), Vec::<String>::new());
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_daily_loss_flatten_closes_the_whole_book_in_child_orders() {
    let dir = tempfile::tempdir().unwrap();
    // Any loss fires: the book's marks move every second.
    let evaluator = rules(
        dir.path(),
        "dry_run = false\n[[daily_loss]]\nid = \"daily-loss\"\nseverity = \"critical\"\naction = \"flatten\"\nmax_loss = 1\n",
    );
    let b = broker(big_book(24));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, evaluator).await;
    sleep_ms(30_000).await;
    assert!(
        alerts(&j).iter().any(|a| a.code == "rule.daily-loss"),
        "the daily loss fired: {:#?}",
        alerts(&j)
    );
    assert_eq!(positions_of(&b).await, vec![], "flat at the venue");
    assert_eq!(orders_by_leg(&b).await, whole_book_closed_in_children());
    assert_eq!(refusals(&j), Vec::<String>::new());
    assert!(g.close_jobs().is_empty(), "{:#?}", g.close_jobs());
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_position_cap_closes_positions_over_the_order_limit_in_child_orders() {
    let dir = tempfile::tempdir().unwrap();
    let evaluator = rules(
        dir.path(),
        "dry_run = false\n[[position_cap]]\nid = \"position-cap\"\naction = \"flatten\"\nmax_positions = 1\n",
    );
    let b = broker(big_book(25));
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let g = start_guard(b.clone(), &j, evaluator).await;
    sleep_ms(30_000).await;
    assert!(
        alerts(&j).iter().any(|a| a.code == "rule.position-cap"),
        "{:#?}",
        alerts(&j)
    );
    // At the cap or below (the rule re-ranks while its closes are in flight, and the long
    // calls stop being protection once the short calls are bought back): every position it
    // chose is closed completely, in child orders of 100, whatever its size; none is refused.
    let left = positions_of(&b).await;
    assert!(left.len() <= 1, "{left:?}");
    let start: BTreeMap<InstrumentId, i64> = BTreeMap::from([
        (spy().id(), 500),
        (c510().id(), 300),
        (c520().id(), -300),
        (qqq().id(), 2_000),
    ]);
    for (i, q) in &left {
        assert_eq!(*q, start[i], "{i} left untouched");
    }
    let mut expected = whole_book_closed_in_children();
    expected.retain(|(i, _), _| left.iter().all(|(l, _)| l != i));
    assert!(expected.len() >= 3, "{expected:?}");
    assert_eq!(orders_by_leg(&b).await, expected);
    assert_eq!(refusals(&j), Vec::<String>::new());
    assert!(g.close_jobs().is_empty(), "{:#?}", g.close_jobs());
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_native_combo_over_the_limit_is_legged_in_child_orders_and_a_small_one_stays_a_combo() {
    let p480 = opt(Right::Put, 480);
    let p490 = opt(Right::Put, 490);
    let mut c = sim_cfg(26);
    c.positions = vec![
        position(c510(), 300, "3.00"),
        position(c520(), -300, "1.00"),
        position(p480.clone(), 50, "1.00"),
        position(p490.clone(), -50, "2.00"),
    ];
    let b = broker(c);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let coord = start(
        b.clone(),
        &j,
        tradeguard_engine::EngineConfig {
            prefer_native_combos: true,
            hedge_enabled: false,
            ..engine_cfg()
        },
    )
    .await;
    sleep_ms(1_000).await;
    let close = |legs: [(Instrument, Side); 2], qty: i64| {
        legs.into_iter().fold(
            OrderIntent::new(Purpose::Close, stubs::account()),
            |i, (inst, side)| i.leg(inst, side, qty, OrderType::Market),
        )
    };
    // 50 lots: within the limit, one native combo order.
    let small = coord
        .submit(close(
            [(p490.clone(), Side::Buy), (p480.clone(), Side::Sell)],
            50,
        ))
        .await
        .unwrap();
    // 300 lots: legged, each leg as 3 child orders of 100, the short bought back first.
    let big = coord
        .submit(close([(c520(), Side::Buy), (c510(), Side::Sell)], 300))
        .await
        .unwrap();
    sleep_ms(5_000).await;
    let snap = coord.snapshot().await.unwrap();
    let group = |id| snap.groups.iter().find(|g| g.id == id).unwrap();
    assert_eq!(group(small).combo_qty, Some(50));
    assert_eq!(group(small).legs.len(), 2);
    let g = group(big);
    assert_eq!(g.combo_qty, None, "legged");
    assert_eq!(g.tiers, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    assert!(
        g.legs
            .iter()
            .all(|l| l.intent.qty == 100 && l.filled() == 100)
    );
    assert!(
        snap.groups
            .iter()
            .all(|g| g.phase == tradeguard_engine::GroupPhase::Completed)
    );
    assert_eq!(positions_of(&b).await, vec![], "flat at the venue");
    let legs = orders_by_leg(&b).await;
    assert_eq!(legs[&(c520().id(), "BUY")], vec![100; 3]);
    assert_eq!(legs[&(c510().id(), "SELL")], vec![100; 3]);
    let (_, short_done) = fill_span(&b, &c520(), Side::Buy).await;
    let (first_sale, _) = fill_span(&b, &c510(), Side::Sell).await;
    assert!(short_done <= first_sale);
    assert_eq!(refusals(&j), Vec::<String>::new());
}
