//! Promise 2 through the Interactive Brokers adapter: closes of a book over every opening limit
//! (500 shares, a 300-lot call spread, 2,000 shares of another stock) — a confirmed "flatten
//! all", confirmed strategy flattens, and a rule's auto-flatten — go out through the real
//! `ibapi` client to the fake TWS on loopback as child orders of at most `max_order_qty`,
//! shorts bought back before their protection is sold, and end where they should.

mod common;
use common::{guard_on_ib, ib_broker, ib_quote as quote};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::EngineConfig;
use tradeguard_engine::assignment::AlwaysOpen;
use tradeguard_engine::enforce::{
    EnforceConfig, FlattenScope, Guard, NoRules, RiskRules, RuleEvaluator,
};
use tradeguard_ibkr::fake_tws::{FakeTws, proto};
use tradeguard_model::AccountId;

const ACCOUNT: &str = "DU-TEST";
const T: Duration = Duration::from_secs(30);

fn key(c: &proto::Contract) -> String {
    format!(
        "{} {} {} {}",
        c.sec_type.as_deref().unwrap_or(""),
        c.symbol.as_deref().unwrap_or(""),
        c.right.as_deref().unwrap_or(""),
        c.strike.unwrap_or(0.0)
    )
}

struct Rig {
    f: FakeTws,
    g: Guard,
    book: Vec<(proto::Contract, f64, f64, f64)>,
}

fn spy() -> proto::Contract {
    FakeTws::stock(1, "SPY")
}
fn qqq() -> proto::Contract {
    FakeTws::stock(2, "QQQ")
}
fn c510() -> proto::Contract {
    FakeTws::option(31, "SPY", "20301220", "C", 510.0)
}
fn c520() -> proto::Contract {
    FakeTws::option(32, "SPY", "20301220", "C", 520.0)
}

/// The fake TWS holding the big book and a guard on it through `IbBroker`, its live book
/// filled.
async fn rig(evaluator: Box<dyn RuleEvaluator>) -> Rig {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    let book = vec![
        (spy(), 500.0, 500.0, 500.0),
        (qqq(), 2000.0, 400.0, 400.0),
        (c510(), -300.0, 300.0, 3.0),
        (c520(), 300.0, 100.0, 1.0),
    ];
    for (c, qty, avg, mid) in &book {
        f.add_contract(c.clone());
        f.set_quote(c.clone(), quote(*mid));
        f.set_position(ACCOUNT, c.clone(), *qty, *avg);
    }
    let g = guard_on_ib(
        ib_broker(f.port(), 5, ACCOUNT),
        &[("SPY", "500"), ("QQQ", "400")],
        EnforceConfig {
            eval_interval: Duration::from_millis(200),
            ..EnforceConfig::default()
        },
        evaluator,
    )
    .await;
    let deadline = tokio::time::Instant::now() + T;
    while g.positions().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "positions never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Rig { f, g, book }
}

impl Rig {
    /// Plays the exchange (every working order filled in full at its mid) until every
    /// position is at `want` (instrument key → quantity; missing = flat).
    async fn drive_to(&self, want: &BTreeMap<String, f64>) {
        let at = |f: &FakeTws| {
            self.book.iter().all(|(c, ..)| {
                let held: f64 = f
                    .positions()
                    .iter()
                    .filter(|p| key(&p.1) == key(c))
                    .map(|p| p.2)
                    .sum();
                held == want.get(&key(c)).copied().unwrap_or(0.0)
            })
        };
        let deadline = tokio::time::Instant::now() + T;
        while !at(&self.f) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not there: {:?}\norders {:?}\nclose jobs {:#?}",
                self.f
                    .positions()
                    .iter()
                    .map(|p| (key(&p.1), p.2))
                    .collect::<Vec<_>>(),
                self.f.order_states(),
                self.g.close_jobs()
            );
            let placed: BTreeMap<i32, proto::Contract> = self
                .f
                .placed()
                .into_iter()
                .map(|p| (p.order_id, p.contract))
                .collect();
            for (id, status, total, filled) in self.f.order_states() {
                if matches!(status.as_str(), "Filled" | "Cancelled" | "PendingCancel") {
                    continue;
                }
                let mid = placed
                    .get(&id)
                    .and_then(|c| self.book.iter().find(|b| key(&b.0) == key(c)))
                    .map_or(1.0, |b| b.3);
                self.f.fill(id, total - filled, mid);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sizes of the orders placed per instrument, in order; and the position in placement
    /// order of the first buy of the short call and of the last sale of the long call.
    fn orders(&self) -> (BTreeMap<String, Vec<f64>>, Option<usize>, Option<usize>) {
        let max = EngineConfig::default().gate.max_order_qty as f64;
        let mut sizes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let (mut first_buy_of_short, mut last_sell_of_long) = (None, None);
        for (n, p) in self
            .f
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
            if key(&p.contract) == key(&c510()) && first_buy_of_short.is_none() {
                first_buy_of_short = Some(n);
            }
            if key(&p.contract) == key(&c520()) {
                last_sell_of_long = Some(n);
            }
        }
        (sizes, first_buy_of_short, last_sell_of_long)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatten_all_through_ib_closes_a_book_over_every_limit_in_child_orders() {
    let r = rig(Box::new(NoRules)).await;
    let p =
        r.g.preview_flatten(FlattenScope::Account {
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
    r.g.confirm_flatten(&p.id).await.unwrap();
    r.drive_to(&BTreeMap::new()).await;
    let (sizes, first_buy_of_short, last_sell_of_long) = r.orders();
    assert_eq!(sizes[&key(&spy())], vec![100.0; 5]);
    assert_eq!(sizes[&key(&qqq())], vec![100.0; 20]);
    assert_eq!(sizes[&key(&c510())], vec![100.0; 3]);
    assert_eq!(sizes[&key(&c520())], vec![100.0; 3]);
    assert!(
        first_buy_of_short < last_sell_of_long,
        "the short calls are bought back before the last protection is sold"
    );
    r.g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_flattens_through_ib_close_each_strategy_in_child_orders() {
    let r = rig(Box::new(NoRules)).await;
    for s in r.g.strategies() {
        let p =
            r.g.preview_flatten(FlattenScope::Strategy { strategy: s.id })
                .await
                .unwrap();
        r.g.confirm_flatten(&p.id).await.unwrap();
    }
    r.drive_to(&BTreeMap::new()).await;
    let (sizes, first_buy_of_short, last_sell_of_long) = r.orders();
    assert_eq!(sizes[&key(&c510())], vec![100.0; 3]);
    assert_eq!(sizes[&key(&qqq())], vec![100.0; 20]);
    assert!(first_buy_of_short < last_sell_of_long);
    r.g.shutdown().await;
}

/// A rule's auto-flatten (max contracts 100 on the 300-lot spread) reduces it by 200 whole
/// spreads through IB, shorts first, in child orders; the stock is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_flatten_through_ib_reduces_the_spread_in_child_orders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.toml");
    std::fs::write(
        &path,
        "dry_run = false\n[[max_contracts]]\nid = \"mc\"\naction = \"flatten\"\nmax_contracts = 100\n",
    )
    .unwrap();
    let rules = RiskRules::load(&path, Arc::new(AlwaysOpen)).unwrap();
    let r = rig(Box::new(rules)).await;
    let want = BTreeMap::from([
        (key(&spy()), 500.0),
        (key(&qqq()), 2000.0),
        (key(&c510()), -100.0),
        (key(&c520()), 100.0),
    ]);
    r.drive_to(&want).await;
    let (sizes, first_buy_of_short, last_sell_of_long) = r.orders();
    assert_eq!(sizes.get(&key(&spy())), None, "the stock is not touched");
    assert_eq!(sizes[&key(&c510())], vec![100.0; 2]);
    assert_eq!(sizes[&key(&c520())], vec![100.0; 2]);
    assert!(first_buy_of_short < last_sell_of_long);
    r.g.shutdown().await;
}
