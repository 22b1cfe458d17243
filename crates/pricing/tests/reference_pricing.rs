//! Accuracy against every case of tests/data/pricing_reference.json (QuantLib 1.44 + published
//! anchors). European/Black-76: 1e-9 absolute on price and every Greek; American: 0.005 absolute
//! of QuantLib's QdFp reference; published anchors to their printed decimals.

use serde_json::Value;
use tradeguard_pricing::american::{AmericanMethod, QdFpScheme, crr_price};
use tradeguard_pricing::{
    Black76Inputs, BsmInputs, CashDividend, OptionType, american_price, black76, bsm,
    cash_dividend_price,
};

fn reference() -> Value {
    let text = include_str!("data/pricing_reference.json");
    serde_json::from_str(text).expect("reference parses")
}

fn f(c: &Value, k: &str) -> f64 {
    c[k].as_f64().unwrap_or_else(|| panic!("field {k} in {c}"))
}

fn kind(c: &Value) -> OptionType {
    c["type"].as_str().unwrap().parse().unwrap()
}

/// t = days/365 for grid cases (the JSON's `t` is rounded to 12 digits).
fn years(c: &Value) -> f64 {
    match c.get("days").and_then(Value::as_f64) {
        Some(d) => d / 365.0,
        None => f(c, "t"),
    }
}

fn bsm_case(c: &Value) -> BsmInputs {
    BsmInputs {
        kind: kind(c),
        spot: f(c, "spot"),
        strike: f(c, "strike"),
        t: years(c),
        r: f(c, "r"),
        q: c.get("q").and_then(Value::as_f64).unwrap_or(0.0),
        vol: f(c, "vol"),
    }
}

fn close(id: &str, what: &str, got: f64, want: f64, tol: f64) -> Option<String> {
    ((got - want).abs() > tol).then(|| {
        format!(
            "{id} {what}: got {got:.12} want {want:.12} diff {:.3e}",
            got - want
        )
    })
}

#[test]
fn european_bsm_every_case_within_1e_9() {
    let r = reference();
    let cases = r["european_bsm"].as_array().unwrap();
    assert!(cases.len() >= 100);
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let g = bsm(&bsm_case(c)).unwrap();
        for (name, got) in [
            ("price", g.price),
            ("delta", g.delta),
            ("gamma", g.gamma),
            ("vega", g.vega),
            ("theta", g.theta),
            ("rho", g.rho),
            ("dividend_rho", g.dividend_rho),
        ] {
            failures.extend(close(id, name, got, f(c, name), 1e-9));
        }
        for (name, got) in [("d1", g.d1), ("d2", g.d2)] {
            failures.extend(close(
                id,
                name,
                got,
                f(c, name),
                1e-9 * f(c, name).abs().max(1.0),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn black76_every_case_within_1e_9() {
    let r = reference();
    let cases = r["black76"].as_array().unwrap();
    assert!(cases.len() >= 11);
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let g = black76(&Black76Inputs {
            kind: kind(c),
            forward: f(c, "forward"),
            strike: f(c, "strike"),
            t: years(c),
            r: f(c, "r"),
            vol: f(c, "vol"),
        })
        .unwrap();
        for (name, got) in [
            ("price", g.price),
            ("delta_forward", g.delta_forward),
            ("gamma_forward", g.gamma_forward),
            ("vega", g.vega),
            ("theta", g.theta),
            ("rho", g.rho),
            ("d1", g.d1),
            ("d2", g.d2),
        ] {
            failures.extend(close(id, name, got, f(c, name), 1e-9));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn american_every_case_within_0_005_of_qdfp_reference() {
    let r = reference();
    let cases = r["american"].as_array().unwrap();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    let mut worst = 0.0_f64;
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let got = american_price(&bsm_case(c)).unwrap();
        let want = f(c, "reference_price");
        worst = worst.max((got - want).abs());
        failures.extend(close(id, "price", got, want, 0.005));
        // The American value is never below the European one nor below intrinsic.
        let euro = c["engines"]["european_bsm"].as_f64().unwrap();
        assert!(got >= euro - 1e-9, "{id}: american {got} < european {euro}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("american worst abs error vs QdFp reference: {worst:.2e}");
}

#[test]
fn binomial_fallback_agrees_with_reference_within_0_005() {
    let r = reference();
    let mut failures = Vec::new();
    for c in r["american"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let i = bsm_case(c);
        let got = crr_price(i.kind, i.spot, i.strike, i.t, i.r, i.q, i.vol, 2000, true);
        failures.extend(close(id, "crr", got, f(c, "reference_price"), 0.005));
        let via_method = tradeguard_pricing::american::american_price_with(
            &i,
            AmericanMethod::Binomial { steps: 2000 },
        )
        .unwrap();
        assert_eq!(via_method, got);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn accurate_qdfp_scheme_is_tighter_still() {
    let r = reference();
    for c in r["american"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let got = tradeguard_pricing::american::american_price_with(
            &bsm_case(c),
            AmericanMethod::QdFp(QdFpScheme::ACCURATE),
        )
        .unwrap();
        let want = f(c, "reference_price");
        assert!((got - want).abs() < 5e-4, "{id}: {got} vs {want}");
    }
}

fn dividends(c: &Value) -> Vec<CashDividend> {
    c["dividends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| CashDividend {
            t: f(d, "days") / 365.0,
            amount: f(d, "amount"),
        })
        .collect()
}

#[test]
fn american_discrete_dividends_every_case_within_0_005() {
    let r = reference();
    let cases = r["american_discrete_div"].as_array().unwrap();
    assert!(cases.len() >= 3);
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let i = bsm_case(c);
        let divs = dividends(c);
        let am =
            cash_dividend_price(i.kind, i.spot, i.strike, i.t, i.r, i.vol, &divs, true).unwrap();
        let eu =
            cash_dividend_price(i.kind, i.spot, i.strike, i.t, i.r, i.vol, &divs, false).unwrap();
        failures.extend(close(
            id,
            "american",
            am.price,
            f(c, "american_fd_price"),
            0.005,
        ));
        failures.extend(close(
            id,
            "european",
            eu.price,
            f(c, "european_fd_price"),
            0.005,
        ));
        failures.extend(close(
            id,
            "american delta",
            am.delta,
            f(c, "american_fd_delta"),
            0.005,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Number of decimals printed in the published figure.
fn printed_decimals(x: f64) -> i32 {
    let s = format!("{x}");
    s.split('.').nth(1).map_or(0, |d| d.len() as i32)
}

fn matches_printed(got: f64, published: f64) -> bool {
    let dp = printed_decimals(published);
    // One unit of the last printed digit: Haug's printed figures are not always correctly rounded
    // (1.8734 for a value of 1.873345), and QuantLib's own test suite checks them at 1e-4.
    (got - published).abs() <= 10f64.powi(-dp) + 1e-12
}

#[test]
fn published_european_anchors_to_printed_decimals() {
    let r = reference();
    let a = &r["published_anchors"];
    let mut n = 0;
    for c in a["haug_european_bsm"].as_array().unwrap() {
        let g = bsm(&bsm_case(c)).unwrap();
        assert!(
            matches_printed(g.price, f(c, "published")),
            "{c}: got {}",
            g.price
        );
        assert!((g.price - f(c, "computed_closed_form")).abs() < 1e-9);
        n += 1;
    }
    for c in a["haug_european_greeks"].as_array().unwrap() {
        let g = bsm(&bsm_case(c)).unwrap();
        let got = match c["greek"].as_str().unwrap() {
            "delta" => g.delta,
            "gamma" => g.gamma,
            "vega" => g.vega,
            "theta" => g.theta,
            "theta_per_day" => g.theta / 365.0,
            "rho" => g.rho,
            "dividend_rho" => g.dividend_rho,
            other => panic!("unknown greek {other}"),
        };
        assert!(matches_printed(got, f(c, "published")), "{c}: got {got}");
        assert!(
            (got - f(c, "computed_closed_form")).abs() < 1e-8,
            "{c}: got {got}"
        );
        n += 1;
    }
    assert_eq!(n, 21);
}

/// The American anchors are printed values of *approximations* (BAW, Bjerksund-Stensland, Ju);
/// the reference also carries QuantLib's accurate QdFp value for each. Our engine is checked
/// against that accurate value (0.005), and the published figure is checked to be within the
/// approximation's known method error of it.
#[test]
fn published_american_anchors_against_accurate_values() {
    let r = reference();
    let a = &r["published_anchors"];
    let mut n = 0;
    for key in [
        "haug_baw_american",
        "haug_bjerksund_stensland_american",
        "ju_1999_american_approximation_values",
    ] {
        for c in a[key].as_array().unwrap() {
            let got = american_price(&bsm_case(c)).unwrap();
            let accurate = f(c, "quantlib_qdfp_accurate");
            assert!((got - accurate).abs() < 0.005, "{key} {c}: got {got}");
            n += 1;
        }
    }
    assert_eq!(n, 22);
}

/// Beyond the reference set: the default scheme stays within 0.005 of the accurate scheme over a
/// wide grid of moneyness, expiry (to 10y), vol (to 80%), rates and yields, calls and puts.
#[test]
fn default_american_scheme_tracks_the_accurate_one_on_a_wide_grid() {
    let mut worst = 0.0_f64;
    let mut n = 0;
    for kind in [OptionType::Call, OptionType::Put] {
        for &k in &[60.0, 85.0, 100.0, 115.0, 150.0] {
            for &t in &[2.0 / 365.0, 0.1, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
                for &vol in &[0.08, 0.25, 0.5, 0.8] {
                    for &(r, q) in &[(0.05, 0.0), (0.02, 0.06), (0.08, 0.03), (0.0005, 0.0)] {
                        let i = BsmInputs {
                            kind,
                            spot: 100.0,
                            strike: k,
                            t,
                            r,
                            q,
                            vol,
                        };
                        let fast = american_price(&i).unwrap();
                        let acc = tradeguard_pricing::american::american_price_with(
                            &i,
                            AmericanMethod::QdFp(QdFpScheme::ACCURATE),
                        )
                        .unwrap();
                        worst = worst.max((fast - acc).abs());
                        assert!((fast - acc).abs() < 0.005, "{i:?}: {fast} vs {acc}");
                        assert!(
                            fast >= kind.intrinsic(100.0, k) - 1e-9,
                            "{i:?} below intrinsic"
                        );
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 1280);
    eprintln!("default vs accurate scheme, worst abs diff {worst:.2e}");
}

/// Haug's BAW and Ju's printed values come from those approximations, so they are reproduced with
/// our ports of the same approximations (which never price trades): Ju to its printed decimals,
/// BAW within 3e-3 — QuantLib's own BAW test tolerance, since Haug's figures carry the rounding of
/// his critical-price iteration (10.0089 printed vs 10.0061 from the published algorithm).
/// Both ports also agree with QuantLib's implementations to 1e-6 on every case that has them.
#[test]
fn published_american_approximation_anchors() {
    use tradeguard_pricing::american::approx::{barone_adesi_whaley, ju_quadratic};
    let r = reference();
    let a = &r["published_anchors"];
    for c in a["haug_baw_american"].as_array().unwrap() {
        let i = bsm_case(c);
        let got = barone_adesi_whaley(i.kind, i.spot, i.strike, i.t, i.r, i.q, i.vol);
        assert!((got - f(c, "quantlib_baw")).abs() < 1e-6, "{c}: {got}");
        assert!((got - f(c, "published")).abs() < 3e-3, "{c}: {got}");
    }
    for c in a["ju_1999_american_approximation_values"]
        .as_array()
        .unwrap()
    {
        let i = bsm_case(c);
        // Ju's maturities are printed rounded (0.0833 for 1/12); QuantLib's test runs them as
        // whole days on Actual/360, which is what its value (and Ju's table) correspond to.
        let t = (i.t * 360.0).round() / 360.0;
        let got = ju_quadratic(i.kind, i.spot, i.strike, t, i.r, i.q, i.vol);
        assert!(
            (got - f(c, "quantlib_ju_quadratic")).abs() < 1e-6,
            "{c}: {got}"
        );
        assert!(
            matches_printed(got, f(c, "published_ju_approx")),
            "{c}: {got}"
        );
    }
    for c in r["american"].as_array().unwrap() {
        let i = bsm_case(c);
        let got = barone_adesi_whaley(i.kind, i.spot, i.strike, i.t, i.r, i.q, i.vol);
        assert!(
            (got - c["engines"]["baw"].as_f64().unwrap()).abs() < 1e-6,
            "{}: {got}",
            c["id"]
        );
    }
}

/// American Greeks by bump-and-reprice agree with the reference finite-difference delta and
/// gamma, and the double-boundary regime (q < r < 0, puts) falls back to the binomial tree.
#[test]
fn american_greeks_and_binomial_fallback() {
    use tradeguard_pricing::american_greeks;
    let r = reference();
    for c in r["american"].as_array().unwrap() {
        let i = bsm_case(c);
        let g = american_greeks(&i).unwrap();
        let id = c["id"].as_str().unwrap();
        assert!(
            (g.delta - f(c, "fd_delta")).abs() < 0.005,
            "{id}: delta {} vs {}",
            g.delta,
            f(c, "fd_delta")
        );
        // Within a few cents of the boundary the reference's finite-difference gamma straddles the
        // gamma jump of the exercise boundary (am-12: 0.045 from the grid, while a 10,000-step
        // tree gives 0.028, as we do); there only the sign and bound are checked.
        let near_boundary = f(c, "reference_price") - i.kind.intrinsic(i.spot, i.strike) < 1e-3;
        if near_boundary {
            assert!(
                g.gamma >= 0.0 && g.gamma <= f(c, "fd_gamma") + 1e-3,
                "{id}: gamma {}",
                g.gamma
            );
        } else {
            assert!(
                (g.gamma - f(c, "fd_gamma")).abs() < 0.005,
                "{id}: gamma {} vs {}",
                g.gamma,
                f(c, "fd_gamma")
            );
        }
    }
    let i = BsmInputs {
        kind: OptionType::Put,
        spot: 100.0,
        strike: 100.0,
        t: 1.0,
        r: -0.01,
        q: -0.03,
        vol: 0.2,
    };
    let got = american_price(&i).unwrap();
    assert_eq!(
        got,
        crr_price(i.kind, i.spot, i.strike, i.t, i.r, i.q, i.vol, 2000, true)
    );
    let euro = bsm(&i).unwrap().price;
    assert!(got >= euro && got >= 0.0, "{got} vs european {euro}");
}
