//! Promise 2 through the Interactive Brokers adapter: a confirmed "flatten all" of a book over
//! every opening limit (500 shares, a 300-lot call spread, 2,000 shares of another stock) goes
//! out through the real `ibapi` client to the fake TWS on loopback as child orders of at most
//! `max_order_qty`, shorts bought back before their protection is sold, and ends flat.

mod common;
use common::px;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{AlwaysOpen, AssignmentConfig, RecordingNotifier};
use tradeguard_engine::enforce::{EnforceConfig, FlattenScope, Guard, GuardDeps, NoRules};
use tradeguard_engine::{EngineConfig, IntrinsicStressModel, MemoryJournal};
use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig, QuoteScript, proto};
use tradeguard_ibkr::{IbBroker, IbSettings};
use tradeguard_model::{AccountId, SystemClock};

const ACCOUNT: &str = "DU-TEST";
const T: Duration = Duration::from_secs(30);

fn quote(mid: f64) -> QuoteScript {
    QuoteScript {
        bid: mid - 0.05,
        ask: mid + 0.05,
        last: mid,
        bid_size: 10.0,
        ask_size: 10.0,
        greeks: None,
    }
}

fn key(c: &proto::Contract) -> String {
    format!(
        "{} {} {} {}",
        c.sec_type.as_deref().unwrap_or(""),
        c.symbol.as_deref().unwrap_or(""),
        c.right.as_deref().unwrap_or(""),
        c.strike.unwrap_or(0.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatten_all_through_ib_closes_a_book_over_every_limit_in_child_orders() {
    let f = FakeTws::start(FakeTwsConfig {
        accounts: vec![ACCOUNT.into()],
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    f.use_wall_clock();
    let spy = FakeTws::stock(1, "SPY");
    let qqq = FakeTws::stock(2, "QQQ");
    let c510 = FakeTws::option(31, "SPY", "20301220", "C", 510.0);
    let c520 = FakeTws::option(32, "SPY", "20301220", "C", 520.0);
    let book = [
        (spy.clone(), 500.0, 500.0, 500.0),
        (qqq.clone(), 2000.0, 400.0, 400.0),
        (c510.clone(), -300.0, 300.0, 3.0),
        (c520.clone(), 300.0, 100.0, 1.0),
    ];
    for (c, qty, avg, mid) in &book {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(*mid));
        f.set_position(ACCOUNT, c.clone(), *qty, *avg);
    }
    let settings = IbSettings {
        port: f.port(),
        client_id: 5,
        account: ACCOUNT.into(),
        ..IbSettings::default()
    };
    let clock: Arc<dyn tradeguard_model::Clock> = Arc::new(SystemClock);
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("500"));
    risk.fallback_spots.insert("QQQ".into(), px("400"));
    let g = Guard::start(GuardDeps {
        broker: Arc::new(IbBroker::new(settings, clock.clone())),
        journal: Arc::new(MemoryJournal::new()),
        clock: clock.clone(),
        risk: Box::new(risk),
        engine: EngineConfig {
            watch_symbols: vec!["SPY".into(), "QQQ".into()],
            ..EngineConfig::default()
        },
        enforce: EnforceConfig::default(),
        evaluator: Box::new(NoRules),
        hours: Arc::new(AlwaysOpen),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap();
    // The live book has the four positions (and their quotes) before the preview.
    let deadline = tokio::time::Instant::now() + T;
    while g.positions().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "positions never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = g
        .preview_flatten(FlattenScope::Account {
            account: AccountId::new(ACCOUNT),
        })
        .await
        .unwrap();
    assert!(
        p.warnings
            .iter()
            .all(|w| w.code != "flatten.warn.gate_refusal"),
        "the preview warns of no refusal: {:#?}",
        p.warnings
    );
    g.confirm_flatten(&p.id).await.unwrap();

    // Play the exchange: fill every working order in full at its mid, until flat.
    let flat = |f: &FakeTws| f.positions().iter().all(|p| p.2 == 0.0);
    let deadline = tokio::time::Instant::now() + T;
    while !flat(&f) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not flat: {:?}\norders {:?}\nclose jobs {:#?}",
            f.positions()
                .iter()
                .map(|p| (key(&p.1), p.2))
                .collect::<Vec<_>>(),
            f.order_states(),
            g.close_jobs()
        );
        let placed: BTreeMap<i32, proto::Contract> = f
            .placed()
            .into_iter()
            .map(|p| (p.order_id, p.contract))
            .collect();
        for (id, status, total, filled) in f.order_states() {
            if matches!(status.as_str(), "Filled" | "Cancelled" | "PendingCancel") {
                continue;
            }
            let mid = placed
                .get(&id)
                .and_then(|c| book.iter().find(|b| key(&b.0) == key(c)))
                .map_or(1.0, |b| b.3);
            f.fill(id, total - filled, mid);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Every order within the per-order limit; per instrument the sizes the split gives.
    let max = EngineConfig::default().gate.max_order_qty as f64;
    let mut sizes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut first_buy_of_short = None;
    let mut last_sell_of_long = None;
    for (n, p) in f
        .placed()
        .iter()
        .filter(|p| p.order.what_if != Some(true))
        .enumerate()
    {
        let q: f64 = p
            .order
            .total_quantity
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap();
        assert!(q <= max, "order {} of {q} over the limit {max}", p.order_id);
        sizes.entry(key(&p.contract)).or_default().push(q);
        if key(&p.contract) == key(&c510) && first_buy_of_short.is_none() {
            first_buy_of_short = Some(n);
        }
        if key(&p.contract) == key(&c520) {
            last_sell_of_long = Some(n);
        }
    }
    assert_eq!(sizes[&key(&spy)], vec![100.0; 5]);
    assert_eq!(sizes[&key(&qqq)], vec![100.0; 20]);
    assert_eq!(sizes[&key(&c510)], vec![100.0; 3]);
    assert_eq!(sizes[&key(&c520)], vec![100.0; 3]);
    assert!(
        first_buy_of_short < last_sell_of_long,
        "the short calls are bought back before the last protection is sold"
    );
    g.shutdown().await;
}
