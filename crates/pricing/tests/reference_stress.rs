//! The worked stress example of margin_examples.json (`scenario_examples`): every grid cell, the
//! worst cell and the liquidation-cost rows, plus the PM-scan minimum anchors.

use serde_json::Value;
use tradeguard_pricing::stubs::book_of_legs;
use tradeguard_pricing::{Instrument, OptionType, RiskLeg, StressConfig, stress_grid};

fn scenario() -> Value {
    let v: Value = serde_json::from_str(include_str!("data/margin_examples.json")).unwrap();
    v["scenario_examples"]["portfolios"][0].clone()
}

fn legs(p: &Value) -> Vec<RiskLeg> {
    let t = p["days"].as_f64().unwrap() / 365.0;
    p["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| RiskLeg {
            instrument: Instrument::Option {
                kind: l["type"].as_str().unwrap().parse::<OptionType>().unwrap(),
                strike: l["strike"].as_f64().unwrap(),
                t,
                vol: l["vol"].as_f64().unwrap(),
                american: false,
            },
            spot: p["spot"].as_f64().unwrap(),
            r: p["r"].as_f64().unwrap(),
            q: p["q"].as_f64().unwrap(),
            qty: l["qty"].as_i64().unwrap(),
            multiplier: 100.0,
            half_spread: None,
            entry_price: None,
        })
        .collect()
}

#[test]
fn short_strangle_grid_matches_every_published_cell() {
    let p = scenario();
    let legs = legs(&p);
    let moves: Vec<f64> = p["moves_pct"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_f64().unwrap())
        .collect();
    let cfg = StressConfig {
        moves_pct: moves.clone(),
        vol_mults: vec![1.0, 1.3, 1.5],
        spread_mults: vec![1.0, 1.5, 2.0],
    };
    let res = stress_grid(&legs, &cfg).unwrap();
    assert!((res.base_value - p["base_value"].as_f64().unwrap()).abs() < 1e-3);
    assert_eq!(res.cells.len(), moves.len() * 9);
    let mut checked = 0;
    for (key, vm) in [("vol_x1.0", 1.0), ("vol_x1.3", 1.3), ("vol_x1.5", 1.5)] {
        for (mi, want) in p["pnl_grid"][key].as_array().unwrap().iter().enumerate() {
            let cell = res
                .cells
                .iter()
                .find(|c| c.move_pct == moves[mi] && c.vol_mult == vm && c.spread_mult == 1.0)
                .unwrap();
            // Published to 4 decimals.
            assert!(
                (cell.pnl - want.as_f64().unwrap()).abs() < 6e-5,
                "{key} move {}: {}",
                moves[mi],
                cell.pnl
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 33);
    assert_eq!(
        res.worst.move_pct,
        p["worst_at"]["move_pct"].as_f64().unwrap()
    );
    assert_eq!(
        res.worst.vol_mult,
        p["worst_at"]["vol_mult"].as_f64().unwrap()
    );
    assert_eq!(res.worst.spread_mult, 2.0);
    assert!((res.worst.pnl - p["worst_pnl"].as_f64().unwrap()).abs() < 6e-5);
    for (k, want) in p["worst_loss_incl_liquidation"].as_object().unwrap() {
        let sm: f64 = k.parse().unwrap();
        let worst_at_sm = res
            .cells
            .iter()
            .filter(|c| c.spread_mult == sm)
            .map(|c| c.loss)
            .fold(f64::MIN, f64::max);
        assert!(
            (worst_at_sm - want.as_f64().unwrap()).abs() < 6e-5,
            "spread x{k}"
        );
        let liq = p["liquidation_cost_by_spread_mult"][k].as_f64().unwrap();
        let cell = res.cells.iter().find(|c| c.spread_mult == sm).unwrap();
        assert!((cell.liquidation_cost - liq).abs() < 1e-9);
    }
}

#[test]
fn default_grid_is_plus_minus_three_percent_and_extra_moves_merge() {
    let cfg = StressConfig::with_extra_moves(&[-10.0, 3.0, 10.0]);
    assert_eq!(cfg.moves_pct, vec![-10.0, -3.0, 0.0, 3.0, 10.0]);
    assert_eq!(cfg.vol_mults, vec![1.0, 1.3, 1.5]);
    assert_eq!(cfg.spread_mults, vec![1.0, 1.5, 2.0]);
}

#[test]
fn thousand_leg_grid_has_every_cell_and_a_consistent_worst() {
    let book = book_of_legs(1000);
    let res = stress_grid(&book, &StressConfig::default_grid_21x3x3()).unwrap();
    assert_eq!(res.cells.len(), 21 * 3 * 3);
    let max_loss = res.cells.iter().map(|c| c.loss).fold(f64::MIN, f64::max);
    assert_eq!(res.worst.loss, max_loss);
    // The unshocked, unchanged-vol cell has zero P&L.
    let flat = res
        .cells
        .iter()
        .find(|c| c.move_pct == 0.0 && c.vol_mult == 1.0)
        .unwrap();
    assert!(flat.pnl.abs() < 1e-6);
}

#[test]
fn bad_grids_and_legs_are_typed_errors() {
    let mut book = book_of_legs(2);
    let cfg = StressConfig {
        moves_pct: vec![],
        ..StressConfig::default()
    };
    assert_eq!(
        stress_grid(&book, &cfg).unwrap_err().code(),
        "stress.bad_grid"
    );
    book[0].spot = f64::NAN;
    assert_eq!(
        stress_grid(&book, &StressConfig::default())
            .unwrap_err()
            .code(),
        "pricing.not_finite"
    );
}
