//! Runs the built `tradeguard` binary on good and bad input: every reference case through
//! `price`, every margin example through `margin`, the stress example through `stress`, an
//! iron condor through `order preview`, and the error contract (message names case and field,
//! exit code 2, nothing on stdout).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const PRICING: &str = include_str!("../../pricing/tests/data/pricing_reference.json");
const MARGIN: &str = include_str!("../../pricing/tests/data/margin_examples.json");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(sub: &str, stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradeguard"))
        .args(sub.split(' '))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn ok_json(sub: &str, stdin: &str) -> Value {
    let o = run(sub, stdin);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    serde_json::from_str(&o.stdout).expect("stdout is JSON")
}

fn bad(sub: &str, stdin: &str) -> String {
    let o = run(sub, stdin);
    assert_eq!(
        o.code, 2,
        "expected exit 2; stdout {} stderr {}",
        o.stdout, o.stderr
    );
    assert!(o.stdout.is_empty(), "nothing half-printed: {}", o.stdout);
    o.stderr
}

#[test]
fn price_every_reference_case_through_the_binary() {
    let r: Value = serde_json::from_str(PRICING).unwrap();
    // European BSM and Black-76 cases as given (the extra reference fields are ignored).
    for (section, fields) in [
        (
            "european_bsm",
            &[
                "price",
                "delta",
                "gamma",
                "vega",
                "theta",
                "rho",
                "dividend_rho",
            ][..],
        ),
        (
            "black76",
            &[
                "price",
                "delta_forward",
                "gamma_forward",
                "vega",
                "theta",
                "rho",
            ][..],
        ),
    ] {
        let cases = r[section].as_array().unwrap();
        let out = ok_json("price", &serde_json::to_string(cases).unwrap());
        let out = out.as_array().unwrap();
        assert_eq!(out.len(), cases.len());
        for (c, o) in cases.iter().zip(out) {
            assert_eq!(c["id"], o["id"]);
            for f in fields {
                let (want, got) = (c[*f].as_f64().unwrap(), o[*f].as_f64().unwrap());
                assert!(
                    (want - got).abs() < 1e-9,
                    "{} {f}: {got} vs {want}",
                    c["id"]
                );
            }
        }
    }
    // American cases with style=american.
    let mut cases: Vec<Value> = r["american"].as_array().unwrap().clone();
    for c in &mut cases {
        c["style"] = Value::from("american");
    }
    let out = ok_json("price", &serde_json::to_string(&cases).unwrap());
    for (c, o) in cases.iter().zip(out.as_array().unwrap()) {
        let (want, got) = (
            c["reference_price"].as_f64().unwrap(),
            o["price"].as_f64().unwrap(),
        );
        assert!((want - got).abs() < 0.005, "{}: {got} vs {want}", c["id"]);
        assert!(o["delta"].as_f64().unwrap().abs() <= 1.0);
    }
    // Cash-dividend cases.
    let mut cases: Vec<Value> = r["american_discrete_div"].as_array().unwrap().clone();
    for c in &mut cases {
        c["style"] = Value::from("american");
    }
    let out = ok_json("price", &serde_json::to_string(&cases).unwrap());
    for (c, o) in cases.iter().zip(out.as_array().unwrap()) {
        let (want, got) = (
            c["american_fd_price"].as_f64().unwrap(),
            o["price"].as_f64().unwrap(),
        );
        assert!((want - got).abs() < 0.005, "{}: {got} vs {want}", c["id"]);
    }
}

#[test]
fn single_object_in_gives_single_object_out_and_iv_round_trips() {
    let o = ok_json(
        "price",
        r#"{"type":"put","spot":100,"strike":95,"t":0.5,"r":0.03,"q":0.01,"vol":0.3}"#,
    );
    let price = o["price"].as_f64().unwrap();
    assert!(o.is_object() && price > 0.0);
    let iv = ok_json(
        "price",
        &format!(
            r#"{{"type":"put","spot":100,"strike":95,"t":0.5,"r":0.03,"q":0.01,"market_price":{price}}}"#
        ),
    );
    assert!((iv["implied_vol"].as_f64().unwrap() - 0.3).abs() < 1e-10);
}

#[test]
fn margin_every_example_through_the_binary() {
    let m: Value = serde_json::from_str(MARGIN).unwrap();
    let examples = m["examples"].as_array().unwrap();
    let out = ok_json("margin", &serde_json::to_string(examples).unwrap());
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), examples.len());
    for (e, o) in examples.iter().zip(out) {
        let computed = &e["computed"];
        assert_eq!(
            o["net_of_proceeds"],
            Value::from(computed["net_of_proceeds"].as_f64().unwrap()),
            "{}",
            e["id"]
        );
        if let Some(g) = computed["gross_requirement"].as_f64() {
            assert_eq!(o["gross_requirement"], Value::from(g), "{}", e["id"]);
        }
        assert!(!o["pairing"].as_array().unwrap().is_empty());
    }
}

#[test]
fn stress_example_through_the_binary() {
    let m: Value = serde_json::from_str(MARGIN).unwrap();
    let p = &m["scenario_examples"]["portfolios"][0];
    let o = ok_json("stress", &serde_json::to_string(p).unwrap());
    assert_eq!(o["id"], "short_strangle");
    assert!((o["worst"]["pnl"].as_f64().unwrap() - p["worst_pnl"].as_f64().unwrap()).abs() < 1e-4);
    assert!(
        (o["worst"]["loss"].as_f64().unwrap()
            - p["worst_loss_incl_liquidation"]["2.0"].as_f64().unwrap())
        .abs()
            < 1e-4
    );
    assert_eq!(o["cells"].as_array().unwrap().len(), 11 * 3 * 3);
    // Without moves_pct: the default +-3% grid (3 moves x 3 vols x 3 spreads).
    let mut p2 = p.clone();
    p2.as_object_mut().unwrap().remove("moves_pct");
    let o = ok_json("stress", &serde_json::to_string(&p2).unwrap());
    assert_eq!(o["cells"].as_array().unwrap().len(), 27);
}

#[test]
fn bad_input_names_case_and_field_and_exits_2() {
    let good = r#"{"id":"ok","type":"call","spot":100,"strike":100,"days":30,"r":0.05,"vol":0.2}"#;
    // Missing field, in the second case of an array: the good first case is not printed.
    let e = bad(
        "price",
        &format!(
            r#"[{good}, {{"id":"c2","type":"call","spot":100,"days":30,"r":0.05,"vol":0.2}}]"#
        ),
    );
    assert!(
        e.contains("case 1 (id \"c2\")") && e.contains("`strike`") && e.contains("missing"),
        "{e}"
    );
    // Negative strike.
    let e = bad(
        "price",
        r#"[{"type":"put","spot":100,"strike":-1,"days":30,"r":0.05,"vol":0.2}]"#,
    );
    assert!(
        e.contains("case 0") && e.contains("`strike`") && e.contains("pricing.bad_strike"),
        "{e}"
    );
    // NaN as Python writes it.
    let e = bad(
        "price",
        r#"{"id":"n","type":"put","spot":NaN,"strike":1,"days":30,"r":0.05,"vol":0.2}"#,
    );
    assert!(
        e.contains("id \"n\"") && e.contains("`spot`") && e.contains("NaN"),
        "{e}"
    );
    // Unknown type.
    let e = bad(
        "price",
        r#"{"type":"straddle","spot":1,"strike":1,"days":30,"r":0.05,"vol":0.2}"#,
    );
    assert!(
        e.contains("`type`") && e.contains("pricing.unknown_option_type"),
        "{e}"
    );
    // Negative time.
    let e = bad(
        "price",
        r#"{"type":"call","spot":1,"strike":1,"t":-1,"r":0.05,"vol":0.2}"#,
    );
    assert!(e.contains("`t`") && e.contains("pricing.bad_time"), "{e}");
    // Implied vol below intrinsic.
    let e = bad(
        "price",
        r#"{"type":"call","spot":120,"strike":100,"t":1,"r":0,"market_price":5}"#,
    );
    assert!(e.contains("iv.below_intrinsic"), "{e}");
    // Not JSON at all.
    let e = bad("price", "{nope");
    assert!(e.contains("cli.json"), "{e}");
}

#[test]
fn bad_margin_and_stress_input_names_nested_fields() {
    let e = bad(
        "margin",
        r#"{"id":"m","underlying":{"price":100,"kind":"equity"},"legs":[{"type":"call","strike":100,"qty":-1,"premium":1},{"type":"put","strike":-90,"qty":1,"premium":1}],"multiplier":100}"#,
    );
    assert!(
        e.contains("id \"m\"") && e.contains("legs[1].strike"),
        "{e}"
    );
    let e = bad(
        "margin",
        r#"{"underlying":{"price":100,"kind":"crypto"},"legs":[]}"#,
    );
    assert!(e.contains("underlying.kind"), "{e}");
    let e = bad(
        "margin",
        r#"{"underlying":{"price":null,"kind":"equity"},"legs":[{"type":"put","strike":90,"qty":-1,"premium":1}]}"#,
    );
    assert!(
        e.contains("margin.missing_underlying_price") && e.contains("underlying.price"),
        "{e}"
    );
    let e = bad(
        "stress",
        r#"{"spot":100,"days":30,"legs":[{"type":"call","strike":100,"qty":1}]}"#,
    );
    assert!(e.contains("legs[0].vol") && e.contains("missing"), "{e}");
    let e = bad(
        "stress",
        r#"{"spot":100,"days":30,"legs":[{"type":"call","strike":100,"qty":1,"vol":-0.2}]}"#,
    );
    assert!(
        e.contains("legs[0].vol") && e.contains("pricing.bad_vol"),
        "{e}"
    );
}

#[test]
fn file_argument_and_missing_file() {
    let dir = std::env::temp_dir().join(format!("tradeguard-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("case.json");
    std::fs::write(
        &path,
        r#"[{"type":"call","spot":100,"strike":100,"days":30,"r":0.05,"vol":0.2}]"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tradeguard"))
        .args(["price", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let o = Command::new(env!("CARGO_BIN_EXE_tradeguard"))
        .args(["price", dir.join("missing.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

/// An SPY iron condor 540/550/600/610 for a 2.00 credit.
fn condor(extra: &str) -> String {
    format!(
        r#"{{"id": "condor", "spot": 575, "r": 0.04, "days": 17, {extra}
        "legs": [
          {{"type": "put", "strike": 540, "qty": 1, "vol": 0.24, "bid": 0.95, "ask": 1.05, "price": 1.00}},
          {{"type": "put", "strike": 550, "qty": -1, "vol": 0.22, "bid": 1.95, "ask": 2.05, "price": 2.00}},
          {{"type": "call", "strike": 600, "qty": -1, "vol": 0.16, "bid": 1.75, "ask": 1.85, "price": 1.80}},
          {{"type": "call", "strike": 610, "qty": 1, "vol": 0.15, "bid": 0.75, "ask": 0.85, "price": 0.80}}
        ]}}"#
    )
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6)
}

#[test]
fn an_iron_condor_preview_has_its_payoff_margin_and_a_passing_stress_verdict() {
    let v = ok_json("order preview", &condor(r#""available_funds": 100000,"#));
    assert!(close(&v["net_premium"], 200.0), "{v}");
    let p = &v["profile"];
    assert!(close(&p["max_profit"], 200.0), "{p}");
    assert!(close(&p["max_loss"], 800.0), "{p}");
    assert!(
        close(&p["breakevens"][0], 548.0) && close(&p["breakevens"][1], 602.0),
        "{p}"
    );
    assert_eq!(p["exact"], true);
    let pop = p["probability_of_profit"].as_f64().unwrap();
    assert!(pop > 0.5 && pop < 1.0, "{p}");
    // The payoff at expiry: the full credit between the short strikes, the full loss outside.
    let curve = v["payoff"].as_array().unwrap();
    assert_eq!(curve.len(), 61);
    let inside: Vec<&Value> = curve
        .iter()
        .filter(|p| (551.0..599.0).contains(&p["spot"].as_f64().unwrap()))
        .collect();
    assert!(inside.len() > 3, "{curve:?}");
    assert!(
        inside.iter().all(|p| close(&p["pnl_expiry"], 200.0)),
        "{inside:?}"
    );
    assert!(close(&curve[0]["pnl_expiry"], -800.0), "{}", curve[0]);
    // Reg T: the wider wing (10 × 100) gross, less the credit net.
    let m = &v["margin"];
    assert_eq!(m["source"], "reg_t_calculator");
    assert!(close(&m["order"]["gross_requirement"], 1000.0), "{m}");
    assert!(close(&m["order"]["net_of_proceeds"], 800.0), "{m}");
    let s = &v["stress"];
    assert_eq!(s["verdict"], "pass", "{s}");
    assert!(close(&s["limit"], 90_000.0));
    let loss = s["worst_loss"].as_f64().unwrap();
    assert!(loss > 0.0 && loss < 1_000.0, "a defined-risk condor: {s}");
}

#[test]
fn a_stress_refused_preview_names_the_scenario_and_by_how_much() {
    let v = ok_json("order preview", &condor(r#""available_funds": 300,"#));
    let s = &v["stress"];
    assert_eq!(s["verdict"], "refused", "{s}");
    let loss = s["worst_loss"].as_f64().unwrap();
    assert!(close(&s["excess"], loss - 270.0), "{s}");
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains(s["scenario"]["text"].as_str().unwrap())
            && reason.contains("underlying")
            && reason.contains("exceeds 270.00 (90% of available funds 300.00) by"),
        "{reason}"
    );
    // Without funds the verdict is unknown, said so.
    let v = ok_json("order preview", &condor(""));
    assert_eq!(v["stress"]["verdict"], "unknown");
}

#[test]
fn a_naked_call_preview_says_its_loss_is_unbounded_and_its_margin_impact() {
    let v = ok_json(
        "order preview",
        r#"{"spot": 575, "days": 30, "available_funds": 50000,
            "book": [{"type": "stock", "qty": 100, "price": 560, "bid": 574.99, "ask": 575.01}],
            "legs": [{"type": "call", "strike": 600, "qty": -2, "vol": 0.18, "price": 3.1}]}"#,
    );
    assert_eq!(v["profile"]["max_loss"], Value::Null, "{v}");
    assert!(close(&v["profile"]["max_profit"], 620.0), "{v}");
    assert!(close(&v["profile"]["breakevens"][0], 603.1), "{v}");
    let m = &v["margin"];
    assert!(
        m["impact"].as_f64().unwrap() > 0.0,
        "one call is covered, one naked: {m}"
    );
}

#[test]
fn bad_preview_input_names_the_field_and_exits_2() {
    let e = bad("order preview", &condor(r#""points": 1,"#));
    assert!(e.contains("points") && e.contains("condor"), "{e}");
    let e = bad(
        "order preview",
        r#"{"spot": 575, "days": 10, "legs": [{"type": "put", "strike": 550, "qty": -1}]}"#,
    );
    assert!(e.contains("legs[0].vol"), "{e}");
    let e = bad("order preview", r#"{"spot": 575, "days": 10, "legs": []}"#);
    assert!(e.contains("error ["), "{e}");
}
