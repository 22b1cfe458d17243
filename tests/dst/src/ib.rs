//! The IB simulation (issue "Real TWS, not our TWS"): one seed picks an account of spreads and
//! condors, one short leg assigned the way IB reports it (one burst, option or stock first with
//! a gap, or only at the next connect after a gateway restart) and the real gateway's ugly
//! parts at random — a gateway restart while the emergency close works, sides of -1, partial
//! fills, late commissions, corrected executions, a rejection without an order status, order
//! statuses sent twice, an order held Inactive for a while, a connectivity gap (1100 … 1101 or
//! 1102) with nothing coming through — and
//! runs the production guard over the real `ibapi` client inside `IbBroker` against the fake
//! TWS on loopback sockets, in real time. Invariants at the end:
//!
//! 1. every order the gateway received closes a leg of the assigned strategy or the delivered
//!    stock, on the closing side (never an order nobody asked for);
//! 2. no position at the gateway changed sign (nothing over-closed, no fill counted twice);
//! 3. the other strategies are untouched;
//! 4. the close ends: Completed with the strategy and the stock flat at the gateway, or Failed
//!    with a Critical alert (a rejected order needs a person);
//! 5. the guard's positions are the gateway's (reconciliation, broker wins).
//!
//! Timing is real (sockets, threads), so a seed fixes the scenario, not the interleaving.
//! `tradeguard-dst --ib --seeds N` soaks; a few seeds run in `make test`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tradeguard_engine::assignment::ClosePhase;
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_engine::{Alert, Severity};
use tradeguard_ibkr::fake_tws::{FakeTws, QuoteScript, proto};
use tradeguard_ibkr::{IbBroker, IbSettings};
use tradeguard_model::SystemClock;

const ACCOUNT: &str = "DU-SIM";
const EXPIRY: &str = "20301220";
const STOCK_ID: i32 = 756_733;

/// How long one seed may take before it is a failure (the close did not end).
const DEADLINE: Duration = Duration::from_secs(45);

/// How the assignment reaches the gateway's client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delivery {
    /// Both position messages in one burst.
    Batch,
    /// The option's message, then the stock's after this many ms.
    OptionFirst(u64),
    /// The stock's message, then the option's after this many ms.
    StockFirst(u64),
    /// While the gateway is down: first seen in the position list at the next connect.
    AtConnect,
}

/// One leg of the account: contract id, right, strike, quantity, mid.
#[derive(Debug, Clone)]
pub struct SimLeg {
    pub con_id: i32,
    pub right: &'static str,
    pub strike: f64,
    pub qty: f64,
    pub mid: f64,
}

/// What one seed runs.
#[derive(Debug, Clone)]
pub struct IbScenario {
    pub seed: u64,
    /// Strategies, each a list of legs; strategy 0 is the one assigned.
    pub strategies: Vec<Vec<SimLeg>>,
    /// The short leg of strategy 0 assigned, and how many contracts.
    pub assigned: usize,
    pub contracts: f64,
    pub delivery: Delivery,
    /// The gateway restarts (down for this long) once the first emergency order arrived.
    pub restart_mid_close: Option<Duration>,
    /// The first emergency order is rejected with 201 and no order status.
    pub reject_first: bool,
    /// The long legs' bids are -1 (no data).
    pub no_bids: bool,
    /// Fills come in random parts.
    pub partial_fills: bool,
    /// Commission reports are held and released late.
    pub late_commissions: bool,
    /// The first fill is corrected (same quantity, another price).
    pub correct_a_fill: bool,
    /// Every order status comes twice.
    pub duplicate_statuses: bool,
    /// The first order goes Inactive for this long (held by IB, not working), then works.
    pub inactive_first: Option<Duration>,
    /// Once the first order arrived: a connectivity gap (1100, nothing comes through) of this
    /// long, ended by 1101 "data lost" (`true`) or 1102.
    pub gap_mid_close: Option<(Duration, bool)>,
}

impl IbScenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1b5e_ed00_0000_0000);
        let n = rng.random_range(1..=2usize);
        let mut next_id = 100;
        let mut strategies = Vec::new();
        for s in 0..n {
            let qty = f64::from(rng.random_range(1..=2u8));
            let put = 440.0 - 20.0 * s as f64;
            let call = 460.0 + 20.0 * s as f64;
            let mut legs = Vec::new();
            let mut leg = |right: &'static str, strike: f64, qty: f64, mid: f64| {
                next_id += 1;
                legs.push(SimLeg {
                    con_id: next_id,
                    right,
                    strike,
                    qty,
                    mid,
                });
            };
            match rng.random_range(0..3u8) {
                0 => {
                    leg("P", put, -qty, 3.0);
                    leg("P", put - 5.0, qty, 1.5);
                }
                1 => {
                    leg("C", call, -qty, 2.5);
                    leg("C", call + 5.0, qty, 1.2);
                }
                _ => {
                    leg("P", put - 5.0, qty, 1.5);
                    leg("P", put, -qty, 3.0);
                    leg("C", call, -qty, 2.5);
                    leg("C", call + 5.0, qty, 1.2);
                }
            }
            strategies.push(legs);
        }
        let shorts: Vec<usize> = strategies[0]
            .iter()
            .enumerate()
            .filter(|(_, l)| l.qty < 0.0)
            .map(|(i, _)| i)
            .collect();
        let assigned = shorts[rng.random_range(0..shorts.len())];
        let held = -strategies[0][assigned].qty;
        let contracts = if held > 1.0 && rng.random_bool(0.5) {
            1.0
        } else {
            held
        };
        let delivery = match rng.random_range(0..4u8) {
            0 => Delivery::Batch,
            1 => Delivery::OptionFirst([1, 300, 1_000][rng.random_range(0..3usize)]),
            2 => Delivery::StockFirst([1, 300, 1_000][rng.random_range(0..3usize)]),
            _ => Delivery::AtConnect,
        };
        IbScenario {
            seed,
            strategies,
            assigned,
            contracts,
            delivery,
            restart_mid_close: rng
                .random_bool(0.3)
                .then(|| Duration::from_millis(rng.random_range(300..1_500))),
            reject_first: rng.random_bool(0.15),
            no_bids: rng.random_bool(0.3),
            partial_fills: rng.random_bool(0.5),
            late_commissions: rng.random_bool(0.3),
            correct_a_fill: rng.random_bool(0.3),
            duplicate_statuses: rng.random_bool(0.3),
            inactive_first: rng
                .random_bool(0.2)
                .then(|| Duration::from_millis(rng.random_range(200..1_500))),
            gap_mid_close: rng.random_bool(0.2).then(|| {
                (
                    Duration::from_millis(rng.random_range(200..2_000)),
                    rng.random_bool(0.5),
                )
            }),
        }
    }
}

/// A broken invariant, with what the seed saw.
#[derive(Debug, Clone)]
pub struct IbFailure {
    pub seed: u64,
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for IbFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IB seed {} broke \"{}\": {}\nreplay: cargo run -p tradeguard-dst --release -- --ib --seed {}",
            self.seed, self.invariant, self.detail, self.seed
        )
    }
}

/// What a passing seed did.
#[derive(Debug, Clone)]
pub struct IbReport {
    pub seed: u64,
    pub orders: usize,
    pub phase: ClosePhase,
    pub took: Duration,
}

fn stock() -> proto::Contract {
    FakeTws::stock(STOCK_ID, "SPY")
}

fn contract(l: &SimLeg) -> proto::Contract {
    FakeTws::option(l.con_id, "SPY", EXPIRY, l.right, l.strike)
}

fn quote(mid: f64, no_bid: bool) -> QuoteScript {
    let q = QuoteScript::around(mid);
    if no_bid {
        // IB's "no data" for the bid.
        QuoteScript {
            bid: -1.0,
            bid_size: 0.0,
            ..q
        }
    } else {
        q
    }
}

/// A contract as the position and order tables name it: "SPY" or "440P".
fn key(c: &proto::Contract) -> String {
    match c.sec_type.as_deref() {
        Some("OPT") => format!(
            "{}{}",
            c.strike.unwrap_or(0.0),
            c.right.as_deref().unwrap_or("")
        ),
        _ => c.symbol.clone().unwrap_or_default(),
    }
}

fn leg_key(l: &SimLeg) -> String {
    format!("{}{}", l.strike, l.right)
}

/// The same key for the guard's instruments.
fn instrument_key(i: &tradeguard_model::Instrument) -> String {
    match i.as_option() {
        Some(o) => format!(
            "{}{}",
            o.strike.to_f64(),
            match o.right {
                tradeguard_model::Right::Put => "P",
                tradeguard_model::Right::Call => "C",
            }
        ),
        None => i.underlying().to_owned(),
    }
}

fn held(f: &FakeTws, k: &str) -> f64 {
    f.positions()
        .iter()
        .filter(|p| key(&p.1) == k)
        .map(|p| p.2)
        .sum()
}

/// Runs one seed on a fresh runtime.
pub fn run_ib_seed(seed: u64) -> Result<IbReport, IbFailure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| IbFailure {
            seed,
            invariant: "runtime",
            detail: e.to_string(),
        })?;
    rt.block_on(run(IbScenario::from_seed(seed)))
}

async fn run(sc: IbScenario) -> Result<IbReport, IbFailure> {
    let fail = |invariant: &'static str, detail: String| IbFailure {
        seed: sc.seed,
        invariant,
        detail: format!("{detail}\nscenario: {sc:#?}"),
    };
    let t0 = Instant::now();
    let f = Arc::new(
        FakeTws::start_for(ACCOUNT)
            .await
            .map_err(|e| fail("setup", e.to_string()))?,
    );
    f.add_contract(stock());
    f.set_quote(stock(), quote(450.0, false));
    let mut start: BTreeMap<String, f64> = BTreeMap::new();
    let mut mids: BTreeMap<String, f64> = BTreeMap::from([("SPY".to_owned(), 450.0)]);
    for l in sc.strategies.iter().flatten() {
        f.add_contract(contract(l));
        f.set_quote(contract(l), quote(l.mid, sc.no_bids && l.qty > 0.0));
        f.set_position(ACCOUNT, contract(l), l.qty, l.mid * 100.0);
        start.insert(leg_key(l), l.qty);
        mids.insert(leg_key(l), l.mid);
    }
    if sc.late_commissions {
        f.hold_commissions(true);
    }
    if sc.duplicate_statuses {
        f.duplicate_statuses(true);
    }
    let broker = Arc::new(IbBroker::new(
        IbSettings {
            port: f.port(),
            client_id: 7,
            account: ACCOUNT.into(),
            reconnect_initial_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(400),
            ..IbSettings::default()
        },
        Arc::new(SystemClock),
    ));
    let g = tradeguard_engine::stubs::production_guard(
        broker,
        Arc::new(SystemClock),
        Arc::new(tradeguard_engine::assignment::AlwaysOpen),
        &[("SPY", "450")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await
    .map_err(|e| fail("setup", e.to_string()))?;
    let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let mut rx = g.subscribe_alerts();
    let sink = alerts.clone();
    let listener = tokio::spawn(async move {
        while let Ok(a) = rx.recv().await {
            if let Ok(mut v) = sink.lock() {
                v.push(a);
            }
        }
    });
    // Ready once the guard holds every leg in some strategy (it groups them as its strategy
    // book recognises them, not necessarily as the scenario wrote them).
    let legs = sc.strategies.iter().flatten().count();
    let ready = Instant::now() + Duration::from_secs(20);
    while g.strategies().iter().map(|s| s.legs.len()).sum::<usize>() < legs {
        if Instant::now() > ready {
            return Err(fail(
                "setup",
                format!("strategies never recognised: {:#?}", g.strategies()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The strategy book pushes its strategies to the assignment guard once a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The exchange: fills working orders at the quote, in parts when the seed says so.
    let exchange = {
        let f2 = f.clone();
        let mids = mids.clone();
        let partial = sc.partial_fills;
        let reject_first = sc.reject_first;
        let correct = sc.correct_a_fill;
        let late = sc.late_commissions;
        let restart = sc.restart_mid_close;
        let inactive = sc.inactive_first;
        let gap = sc.gap_mid_close;
        let seed = sc.seed;
        tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(7));
            let mut corrected = false;
            let mut restarted = false;
            let mut gapped = false;
            let mut held: Option<(i32, Instant)> = None;
            if reject_first {
                f2.reject_next_order(201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED.");
            }
            loop {
                tokio::time::sleep(Duration::from_millis(25)).await;
                let placed = f2.placed();
                if let Some(d) = restart
                    && !restarted
                    && placed.iter().any(|p| p.order.what_if != Some(true))
                {
                    restarted = true;
                    f2.set_down(true);
                    tokio::time::sleep(d).await;
                    f2.set_down(false);
                }
                if let Some((d, data_lost)) = gap
                    && !gapped
                    && placed.iter().any(|p| p.order.what_if != Some(true))
                {
                    gapped = true;
                    f2.connectivity_lost();
                    tokio::time::sleep(d).await;
                    f2.connectivity_restored(data_lost);
                }
                if let Some(d) = inactive
                    && held.is_none()
                    && let Some(p) = placed.iter().find(|p| p.order.what_if != Some(true))
                {
                    f2.set_order_status(p.order_id, "Inactive", "held by the exchange");
                    held = Some((p.order_id, Instant::now() + d));
                }
                if let Some((id, until)) = held
                    && until <= Instant::now()
                    && f2
                        .order_states()
                        .iter()
                        .any(|s| s.0 == id && s.1 == "Inactive")
                {
                    f2.set_order_status(id, "Submitted", "");
                }
                for (id, status, total, filled) in f2.order_states() {
                    if matches!(
                        status.as_str(),
                        "Filled" | "Cancelled" | "PendingCancel" | "Inactive" | "ApiCancelled"
                    ) || total <= filled
                    {
                        continue;
                    }
                    let Some(p) = placed.iter().find(|p| p.order_id == id) else {
                        continue;
                    };
                    let Some(mid) = mids.get(&key(&p.contract)).copied() else {
                        continue;
                    };
                    let left = total - filled;
                    let qty = if partial && left > 1.0 {
                        f64::from(rng.random_range(1..=left as u32))
                    } else {
                        left
                    };
                    f2.fill(id, qty, mid);
                    if correct && !corrected {
                        corrected = true;
                        if let Some(x) = f2.executions().last() {
                            let exec_id = x.1.exec_id.clone().unwrap_or_default();
                            f2.correct_execution(&exec_id, qty, mid + 0.01);
                        }
                    }
                }
                if late {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    f2.release_commissions();
                }
            }
        })
    };

    // The assignment, as IB reports it.
    let leg = &sc.strategies[0][sc.assigned];
    let shares = if leg.right == "P" { 100.0 } else { -100.0 } * sc.contracts;
    let opt = || f.set_position(ACCOUNT, contract(leg), leg.qty + sc.contracts, 0.0);
    let stk = || f.set_position(ACCOUNT, stock(), shares, leg.strike);
    match sc.delivery {
        Delivery::Batch => {
            opt();
            stk();
        }
        Delivery::OptionFirst(ms) => {
            opt();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            stk();
        }
        Delivery::StockFirst(ms) => {
            stk();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            opt();
        }
        Delivery::AtConnect => {
            f.set_down(true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            opt();
            stk();
            tokio::time::sleep(Duration::from_millis(300)).await;
            f.set_down(false);
        }
    }
    let original = start.clone();
    start.insert("SPY".to_owned(), shares);
    if let Some(s) = start.get_mut(&leg_key(leg)) {
        *s += sc.contracts;
    }

    // Until the close ends (and a little more: anything it would still send).
    let deadline = Instant::now() + DEADLINE;
    let phase = loop {
        let st = g.assignment_status();
        let ended = |p: ClosePhase| matches!(p, ClosePhase::Completed | ClosePhase::Failed);
        if !st.closes.is_empty() && st.closes.iter().all(|c| ended(c.phase)) {
            // Settled only if nothing else starts within 2 s (another strategy the
            // assignment broke, anything a close would still send).
            tokio::time::sleep(Duration::from_secs(2)).await;
            let again = g.assignment_status();
            if again.closes.len() == st.closes.len() && again.closes.iter().all(|c| ended(c.phase))
            {
                break if again.closes.iter().any(|c| c.phase == ClosePhase::Failed) {
                    ClosePhase::Failed
                } else {
                    ClosePhase::Completed
                };
            }
            continue;
        }
        if Instant::now() > deadline {
            exchange.abort();
            return Err(fail(
                "4: the close ends",
                format!(
                    "not ended after {DEADLINE:?}: {st:#?}\norders: {:?}",
                    f.order_states()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    exchange.abort();

    let placed: Vec<_> = f
        .placed()
        .into_iter()
        .filter(|p| p.order.what_if != Some(true))
        .collect();
    // The strategy the guard broke, as its strategy book had grouped the legs.
    let st = g.assignment_status();
    // Every strategy the assignment broke (contracts beyond one strategy's quantity can leave
    // another without its short leg: it breaks too), summed per instrument.
    let mut broken: BTreeMap<String, f64> = BTreeMap::new();
    for c in &st.closes {
        if let Some(s) = st.strategies.iter().find(|s| s.id == c.strategy) {
            for l in &s.legs {
                *broken.entry(instrument_key(&l.instrument)).or_default() += l.qty as f64;
            }
        }
    }
    if !broken.contains_key(&leg_key(leg)) {
        return Err(fail(
            "4: the close ends",
            format!("the assigned leg's strategy was not broken: {st:#?}"),
        ));
    }
    // What the close may trade (the Broken strategy's legs, the delivered stock) and what the
    // gateway should hold after a completed close: the rest of each position.
    let ours: BTreeMap<String, f64> = broken
        .iter()
        .map(|(k, q)| (k.clone(), *q))
        .chain([("SPY".to_owned(), shares)])
        .collect();
    // The assigned contracts are the Broken strategy's first; any beyond its quantity were
    // another strategy's (IB does not say whose).
    let beyond = (sc.contracts - broken.get(&leg_key(leg)).map_or(0.0, |q| q.abs())).max(0.0);
    let after: BTreeMap<String, f64> = start
        .keys()
        .map(|k| {
            let mut rest = match k.as_str() {
                "SPY" => 0.0,
                _ => {
                    original.get(k).copied().unwrap_or(0.0) - broken.get(k).copied().unwrap_or(0.0)
                }
            };
            if *k == leg_key(leg) {
                rest += beyond;
            }
            (k.clone(), rest)
        })
        .collect();
    // 1. Every order closes a leg of the assigned strategy or the stock, on the closing side.
    for p in &placed {
        let con = key(&p.contract);
        let buy = p.order.action.as_deref() == Some("BUY");
        let ok = ours
            .get(&con)
            .is_some_and(|q| (*q < 0.0 && buy) || (*q > 0.0 && !buy));
        if !ok {
            return Err(fail(
                "1: no order nobody asked for",
                format!("{} {:?} on {con}: {placed:#?}", p.order_id, p.order.action),
            ));
        }
    }
    // 2. No position changed sign; 3. the other strategies are untouched.
    for (con, was) in &start {
        let now = held(&f, con);
        if now != 0.0 && now.signum() != was.signum() {
            let orders: Vec<String> = placed
                .iter()
                .map(|p| {
                    format!(
                        "#{} {} {} {}",
                        p.order_id,
                        p.order.action.as_deref().unwrap_or("?"),
                        p.order.total_quantity.as_deref().unwrap_or("?"),
                        key(&p.contract)
                    )
                })
                .collect();
            return Err(fail(
                "2: nothing over-closed",
                format!(
                    "{con}: {was} -> {now}\norders at the gateway: {orders:?}\nstates: {:?}\ncloses: {:#?}",
                    f.order_states(),
                    g.assignment_status().closes
                ),
            ));
        }
        let rest = after.get(con).copied().unwrap_or(*was);
        if now.abs() < rest.abs() {
            return Err(fail(
                "3: other strategies untouched",
                format!("{con}: {was} -> {now}, other strategies hold {rest}"),
            ));
        }
    }
    // 4. Completed and flat, or Failed with a Critical alert.
    let critical = alerts
        .lock()
        .map(|v| v.iter().any(|a| a.severity == Severity::Critical))
        .unwrap_or(false);
    match phase {
        ClosePhase::Completed => {
            for (con, rest) in &after {
                let now = held(&f, con);
                if now != *rest {
                    return Err(fail(
                        "4: a completed close leaves only the other strategies",
                        format!("{con}: {now}, expected {rest}"),
                    ));
                }
            }
        }
        _ if !critical => {
            return Err(fail(
                "4: a failed close is a Critical alert",
                format!("{:#?}", g.assignment_status().closes),
            ));
        }
        _ => {}
    }
    // 5. The guard's positions are the gateway's.
    let settle = Instant::now() + Duration::from_secs(10);
    loop {
        let mine: BTreeMap<String, f64> = g
            .positions()
            .iter()
            .filter(|p| p.qty != 0)
            .map(|p| (instrument_key(&p.instrument), p.qty as f64))
            .collect();
        let theirs: BTreeMap<String, f64> = f
            .positions()
            .iter()
            .filter(|p| p.2 != 0.0)
            .map(|p| (key(&p.1), p.2))
            .collect();
        if mine == theirs {
            break;
        }
        if Instant::now() > settle {
            return Err(fail(
                "5: the guard's positions are the gateway's",
                format!("guard {mine:?}\ngateway {:?}", f.positions()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listener.abort();
    g.shutdown().await;
    Ok(IbReport {
        seed: sc.seed,
        orders: placed.len(),
        phase,
        took: t0.elapsed(),
    })
}
