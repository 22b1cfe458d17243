//! Every example of tests/data/margin_examples.json: our Reg T requirement equals the published
//! figure on its stated basis, and equals the reference's recomputed figures on both bases. The
//! two examples the source marks inconsistent are documented exceptions (see below).

use serde_json::Value;
use tradeguard_pricing::OptionType;
use tradeguard_pricing::margin::{
    MarginLeg, MarginPosition, MarginRules, StockPosition, Strategy, UnderlyingKind, reg_t_margin,
    to_dollars, to_micros,
};

fn examples() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("data/margin_examples.json")).unwrap();
    v["examples"].as_array().unwrap().clone()
}

fn position(e: &Value) -> MarginPosition {
    let u = &e["underlying"];
    let kind = match u["kind"].as_str().unwrap() {
        "equity" => UnderlyingKind::Equity,
        "broad_based_index" => UnderlyingKind::BroadBasedIndex,
        "narrow_based_index" => UnderlyingKind::NarrowBasedIndex,
        other => panic!("kind {other}"),
    };
    let legs = e["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| MarginLeg {
            kind: l["type"].as_str().unwrap().parse::<OptionType>().unwrap(),
            strike: to_micros("strike", l["strike"].as_f64().unwrap()).unwrap(),
            qty: l["qty"].as_i64().unwrap(),
            premium: to_micros("premium", l["premium"].as_f64().unwrap()).unwrap(),
            expiry: 0,
        })
        .collect();
    let stock = (!e["stock"].is_null()).then(|| StockPosition {
        qty: e["stock"]["qty"].as_i64().unwrap(),
        price: to_micros("price", e["stock"]["price"].as_f64().unwrap()).unwrap(),
        proxy: e["stock"].get("symbol").is_some(),
    });
    MarginPosition {
        underlying_price: u["price"].as_f64().map(|p| to_micros("price", p).unwrap()),
        underlying_kind: kind,
        legs,
        stock,
        multiplier: e["multiplier"].as_i64().unwrap(),
    }
}

/// The strategy labels we expect the pairing to report for each example's `strategy` field.
fn expected_strategies(strategy: &str) -> Vec<Strategy> {
    let head = strategy.split_whitespace().next().unwrap();
    match head {
        "naked_short_call" => vec![Strategy::NakedCall],
        "naked_short_put" => vec![Strategy::NakedPut],
        "covered_call" => vec![Strategy::CoveredCall, Strategy::LongStock],
        "protective_put" => vec![Strategy::ProtectivePut, Strategy::LongStock],
        "synthetic_long" => vec![Strategy::NakedPut, Strategy::LongCall],
        "risk_reversal" => vec![Strategy::NakedCall, Strategy::LongPut],
        "long_call_vertical" => vec![Strategy::VerticalDebitSpread],
        "long_straddle" => vec![Strategy::LongCall, Strategy::LongPut],
        "short_iron_condor" => vec![Strategy::IronCondor],
        "long_butterfly" => vec![Strategy::LongButterfly],
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_margin_example_matches_on_its_stated_basis() {
    let all = examples();
    assert_eq!(all.len(), 24);
    let mut inconsistent = 0;
    for e in &all {
        let id = e["id"].as_str().unwrap();
        let res = reg_t_margin(&position(e), &MarginRules::default()).unwrap();
        let gross = to_dollars(res.gross_requirement);
        let net = to_dollars(res.net_of_proceeds);
        // Our figures equal the reference's recomputation on every basis it gives.
        let computed = &e["computed"];
        if let Some(g) = computed["gross_requirement"].as_f64() {
            assert_eq!(gross, g, "{id}: gross");
        }
        assert_eq!(
            net,
            computed["net_of_proceeds"].as_f64().unwrap(),
            "{id}: net"
        );
        // The published figure on its stated basis.
        let published = e["published"]["value"].as_f64().unwrap();
        let basis = e["published"]["basis"].as_str().unwrap();
        let ours = if basis.starts_with("gross") {
            gross
        } else {
            net
        };
        if e["matches_published"].as_bool().unwrap() {
            assert_eq!(ours, published, "{id}: published {basis}");
        } else {
            // Documented exceptions (cboe07-ibm-long-straddle, cboe07-spx-long-straddle): the
            // printed strategy figure is $100 off the premiums printed beside it. A long straddle
            // is both premiums paid in full, so we keep the premium sum and assert the gap.
            inconsistent += 1;
            assert!(id.ends_with("long-straddle"), "{id}");
            assert_eq!((ours - published).abs(), 100.0, "{id}");
            assert_eq!(
                net,
                res.long_premium as f64 / 1e6,
                "{id}: long straddle = premiums paid"
            );
        }
        let mut got: Vec<Strategy> = res.groups.iter().map(|g| g.strategy).collect();
        got.sort_by_key(|s| format!("{s:?}"));
        let mut want = expected_strategies(e["strategy"].as_str().unwrap());
        want.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(got, want, "{id}: pairing");
    }
    assert_eq!(inconsistent, 2);
}
