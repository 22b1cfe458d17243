//! A stand-alone fake IB Gateway for the app's end-to-end tests and for trying Tradeguard's IB
//! venue without an account: the project's fake TWS on a port, holding an iron condor (SPY
//! 15JAN27 435/440/460/465 ×2), filling every order at the quote (buys at the ask, sells at the
//! bid) as a paper account would, and driven by lines on stdin:
//!
//! | line | what the gateway does |
//! |---|---|
//! | `assign <strike><P\|C> <contracts>` | IB's overnight assignment of that short option: the option's and the stock's position messages, no execution |
//! | `down` / `up` | a gateway restart: every session closed and new ones refused / accepted again |
//! | `quit` | exits |
//!
//! It reports on stdout, one line each: `ready <port>`, `order <id> <BUY|SELL> <qty> <what>` for
//! each order placed (what-if checks excluded), `fill <id> <qty> @ <price>`, `error <text>`.
//!
//! ```text
//! fake-ib-gateway --port 4002 [--account DU123456] [--clock-start 2027-01-11T09:29:00-05:00]
//! ```
//! `--clock-start` stamps executions on a clock that reads that time at start (the app's
//! `TRADEGUARD_CLOCK_START`).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::Duration;
use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig, QuoteScript, proto};

const EXPIRY: &str = "20270115";
const SPOT: f64 = 450.0;

struct Leg {
    contract: proto::Contract,
    qty: f64,
    /// IB's average cost: per contract, times the multiplier.
    avg_cost: f64,
    mid: f64,
}

fn book() -> Vec<Leg> {
    let opt = |id, right, strike, qty, mid: f64| Leg {
        contract: FakeTws::option(id, "SPY", EXPIRY, right, strike),
        qty,
        avg_cost: mid * 100.0,
        mid,
    };
    vec![
        opt(435_001, "P", 435.0, 2.0, 1.20),
        opt(440_001, "P", 440.0, -2.0, 1.90),
        opt(460_001, "C", 460.0, -2.0, 1.70),
        opt(465_001, "C", 465.0, 2.0, 1.00),
    ]
}

fn quote(mid: f64) -> QuoteScript {
    QuoteScript::around(mid)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn describe(c: &proto::Contract) -> String {
    match c.sec_type.as_deref() {
        Some("OPT") => format!(
            "{} {} {}{}",
            c.symbol.as_deref().unwrap_or("?"),
            c.last_trade_date_or_contract_month
                .as_deref()
                .unwrap_or("?"),
            c.strike.unwrap_or(0.0),
            c.right.as_deref().unwrap_or("?")
        ),
        _ => c.symbol.clone().unwrap_or_else(|| "?".into()),
    }
}

struct Args {
    port: u16,
    account: String,
    clock_start: Option<i64>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        port: 4002,
        account: "DU1234567".into(),
        clock_start: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                a.port = v.parse().map_err(|_| format!("--port {v}: not a port"))?;
            }
            "--account" => a.account = value()?,
            "--clock-start" => {
                let v = value()?;
                let t = chrono::DateTime::parse_from_rfc3339(&v)
                    .map_err(|e| format!("--clock-start {v}: {e}"))?;
                a.clock_start = Some(t.timestamp());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake-ib-gateway: {e}");
            std::process::exit(2);
        }
    };
    let f = match FakeTws::start_on(
        a.port,
        FakeTwsConfig {
            accounts: vec![a.account.clone()],
            ..FakeTwsConfig::default()
        },
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "fake-ib-gateway: cannot listen on 127.0.0.1:{}: {e}",
                a.port
            );
            std::process::exit(1);
        }
    };
    match a.clock_start {
        Some(s) => f.use_wall_clock_from(s),
        None => f.use_wall_clock(),
    }
    for (tag, v) in [
        ("NetLiquidation", "250000"),
        ("ExcessLiquidity", "180000"),
        ("AvailableFunds", "180000"),
        ("BuyingPower", "720000"),
        ("MaintMarginReq", "70000"),
        ("InitMarginReq", "70000"),
    ] {
        f.set_account_value(tag, v);
    }
    let stock = FakeTws::stock(756_733, "SPY");
    f.add_contract(stock.clone());
    f.set_quote(stock.clone(), quote(SPOT));
    let legs = book();
    for l in &legs {
        f.add_contract(l.contract.clone());
        f.set_quote(l.contract.clone(), quote(l.mid));
        f.set_position(&a.account, l.contract.clone(), l.qty, l.avg_cost);
    }
    let mut mids: Vec<(proto::Contract, f64)> =
        legs.iter().map(|l| (l.contract.clone(), l.mid)).collect();
    mids.push((stock.clone(), SPOT));
    say(&format!("ready {}", f.port()));

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        let _ = tx.send("quit".into());
    });

    let mut told = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            line = rx.recv() => {
                let line = line.unwrap_or_else(|| "quit".into());
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["quit"] => break,
                    ["down"] => { f.set_down(true); say("down"); }
                    ["up"] => { f.set_down(false); say("up"); }
                    ["assign", what, n] => match assign(&f, &a.account, &legs, &stock, what, n) {
                        Ok(text) => say(&text),
                        Err(e) => say(&format!("error {e}")),
                    },
                    [] => {}
                    _ => say(&format!("error unknown command {line:?}")),
                }
            }
            _ = tick.tick() => fill_working(&f, &mids, &mut told),
        }
    }
}

/// IB's overnight assignment of `contracts` of the short option `what` ("440P"): the option's
/// position, then the stock's, as position messages with no execution.
fn assign(
    f: &FakeTws,
    account: &str,
    legs: &[Leg],
    stock: &proto::Contract,
    what: &str,
    contracts: &str,
) -> Result<String, String> {
    let n: f64 = contracts
        .parse()
        .map_err(|_| format!("{contracts}: not a number of contracts"))?;
    let leg = legs
        .iter()
        .find(|l| {
            format!(
                "{}{}",
                l.contract.strike.unwrap_or(0.0),
                l.contract.right.as_deref().unwrap_or("")
            ) == what
        })
        .ok_or_else(|| format!("{what}: no such option in the book"))?;
    let held = f
        .positions()
        .iter()
        .find(|p| p.1.con_id == leg.contract.con_id)
        .map_or(0.0, |p| p.2);
    if held > -n {
        return Err(format!(
            "{what}: {held} held, cannot assign {n} short contracts"
        ));
    }
    let strike = leg.contract.strike.unwrap_or(0.0);
    let put = leg.contract.right.as_deref() == Some("P");
    let shares = if put { 100.0 * n } else { -100.0 * n };
    let stock_now = f
        .positions()
        .iter()
        .find(|p| p.1.con_id == stock.con_id)
        .map_or(0.0, |p| p.2);
    f.set_position(
        account,
        leg.contract.clone(),
        held + n,
        if held + n == 0.0 { 0.0 } else { leg.avg_cost },
    );
    f.set_position(account, stock.clone(), stock_now + shares, strike);
    Ok(format!("assigned {n} {what}: stock {}", stock_now + shares))
}

/// The same contract: by id when both carry one, else by type, symbol, strike and right.
fn same(a: &proto::Contract, b: &proto::Contract) -> bool {
    match (a.con_id, b.con_id) {
        (Some(x), Some(y)) if x != 0 && y != 0 => x == y,
        _ => {
            a.sec_type == b.sec_type
                && a.symbol == b.symbol
                && a.strike.unwrap_or(0.0) == b.strike.unwrap_or(0.0)
                && a.right.as_deref().unwrap_or("") == b.right.as_deref().unwrap_or("")
        }
    }
}

/// Fills every working order in full at the quote (a paper account at a liquid market).
fn fill_working(f: &FakeTws, mids: &[(proto::Contract, f64)], told: &mut BTreeSet<i32>) {
    let placed = f.placed();
    for (id, status, total, filled) in f.order_states() {
        let Some(p) = placed.iter().find(|p| p.order_id == id) else {
            continue;
        };
        let buy = p.order.action.as_deref() == Some("BUY");
        let first = told.insert(id);
        if first {
            say(&format!(
                "order {id} {} {total} {}",
                if buy { "BUY" } else { "SELL" },
                describe(&p.contract)
            ));
        }
        if matches!(status.as_str(), "Filled" | "Cancelled" | "PendingCancel") || total <= filled {
            continue;
        }
        let Some(mid) = mids
            .iter()
            .find(|(c, _)| same(c, &p.contract))
            .map(|(_, m)| *m)
        else {
            if first {
                say(&format!(
                    "error order {id}: no quote for {}",
                    describe(&p.contract)
                ));
            }
            continue;
        };
        let q = quote(mid);
        let px = if buy { q.ask } else { q.bid };
        if f.fill(id, total - filled, px) {
            say(&format!("fill {id} {} @ {px:.2}", total - filled));
        }
    }
}
