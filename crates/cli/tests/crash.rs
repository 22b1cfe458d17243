//! Real-process crash tests of `tradeguard guard`: the guard runs as its own process against a
//! fake TWS living in this test process (the broker, whose state survives the crash), is killed
//! with SIGKILL at points chosen from a seed, and restarted on the same data directory.
//!
//! The test plays the exchange: it fills the guard's orders (at once, or in two parts), fills
//! while the guard is down, and chooses how a cancel ends (confirmed, or the remainder fills
//! first). Invariants checked:
//! - every order the broker saw before the crash was journaled first (its id and its
//!   execution group are in the database), and the decisions audited before it are there;
//! - after the restart nothing is traded twice: at no moment do two orders work on the same
//!   instrument, and the filled quantity per instrument is exactly what had to be closed;
//! - everything the close had to flatten ends flat at the broker; a strategy broken by an
//!   assignment is in the database with its legs, Broken until its close completed (then
//!   Closed, its broken reason kept).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradeguard_ibkr::fake_tws::{CancelMode, FakeTws, QuoteScript, proto};
use tradeguard_store::{Store, StoreConfig, StrategyState};

const ACCOUNT: &str = "DU-TEST";
const EXPIRY: &str = "20301220";
const T: Duration = Duration::from_secs(15);

fn opt(con_id: i32, right: &str, strike: f64) -> proto::Contract {
    FakeTws::option(con_id, "SPY", EXPIRY, right, strike)
}

/// The guard process with every stdout/stderr line collected.
struct GuardProc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl GuardProc {
    fn spawn(port: u16, dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tradeguard"))
            .args(["guard", "--broker", "ib", "--market-hours", "always-open"])
            .args(["--ib-account", ACCOUNT, "--ib-port", &port.to_string()])
            .args(["--status-every", "0.3"])
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            // The account lock of this case (the cases run side by side on one account id).
            .env("TRADEGUARD_LOCK_DIR", dir.join("locks"))
            .env(
                "RUST_LOG",
                std::env::var("TRADEGUARD_CRASH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                o.lock().unwrap().push(format!("out: {l}"));
            }
        });
        let o = out.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                o.lock().unwrap().push(format!("err: {l}"));
            }
        });
        Self { child, out }
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.out.lock().unwrap().iter().filter(|l| pred(l)).count()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit; returns whether it stopped cleanly.
    fn terminate(&mut self) -> bool {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let code = self.child.wait().unwrap();
        // The reader threads drain the pipes after the exit.
        for _ in 0..100 {
            if self.count(|l| l.contains("guard: stopped cleanly")) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        code.success() && self.count(|l| l.contains("guard: stopped cleanly")) == 1
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().join("\n")
    }

    async fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_until(what, |g| g.count(&pred) > 0).await;
    }

    /// Polls `cond` until it holds; panics with the output after `T`.
    async fn wait_until(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + T;
        while !cond(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for GuardProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fake_with_condor() -> FakeTws {
    let f = FakeTws::start_for(ACCOUNT).await.unwrap();
    let legs = [
        (opt(11, "P", 435.0), 2.0, 120.0),
        (opt(12, "P", 440.0), -2.0, 180.0),
        (opt(21, "C", 460.0), -2.0, 150.0),
        (opt(22, "C", 465.0), 2.0, 90.0),
    ];
    f.add_contract(FakeTws::stock(1, "SPY"));
    for (c, q, avg) in legs {
        f.add_contract(c.clone());
        f.set_quote(
            c.clone(),
            QuoteScript {
                bid: avg / 100.0 - 0.05,
                ask: avg / 100.0 + 0.05,
                last: avg / 100.0,
                bid_size: 10.0,
                ask_size: 10.0,
                greeks: None,
            },
        );
        f.set_position(ACCOUNT, c, q, avg);
    }
    f.set_quote(
        FakeTws::stock(1, "SPY"),
        QuoteScript {
            bid: 437.9,
            ask: 438.1,
            last: 438.0,
            bid_size: 100.0,
            ask_size: 100.0,
            greeks: None,
        },
    );
    for (tag, v) in [
        ("NetLiquidation", "100000"),
        ("MaintMarginReq", "2000"),
        ("InitMarginReq", "2000"),
        ("ExcessLiquidity", "98000"),
        ("BuyingPower", "300000"),
    ] {
        f.set_account_value(tag, v);
    }
    f
}

/// Seeds `0..n`, or the comma-separated list in `TRADEGUARD_CRASH_SEEDS` (to replay the seed a
/// failure names).
fn seeds(n: u64) -> Vec<u64> {
    match std::env::var("TRADEGUARD_CRASH_SEEDS") {
        Ok(v) => v.split(',').map(|x| x.trim().parse().unwrap()).collect(),
        Err(_) => (0..n).collect(),
    }
}

/// splitmix64: the seeded choices of a case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn coin(&mut self) -> bool {
        self.below(2) == 1
    }
}

/// Identity of an instrument at the fake (orders carry no contract id).
fn key(c: &proto::Contract) -> String {
    format!(
        "{} {} {} {}",
        c.sec_type.as_deref().unwrap_or(""),
        c.symbol.as_deref().unwrap_or(""),
        c.right.as_deref().unwrap_or(""),
        c.strike.unwrap_or(0.0)
    )
}

fn is_working(status: &str) -> bool {
    !matches!(status, "Filled" | "Cancelled")
}

/// The test's side of the market: sees the guard's orders, fills them, and checks that no two
/// orders ever work on the same instrument at once.
struct Exchange {
    rng: Rng,
    /// Orders seen, in arrival order.
    seen: Vec<i32>,
    /// Per order: filled in two parts.
    split: BTreeMap<i32, bool>,
}

impl Exchange {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng(seed ^ 0x5EED),
            seen: Vec::new(),
            split: BTreeMap::new(),
        }
    }

    fn placed(f: &FakeTws) -> BTreeMap<i32, proto::Contract> {
        f.placed()
            .into_iter()
            .filter(|p| p.order.what_if != Some(true))
            .map(|p| (p.order_id, p.contract))
            .collect()
    }

    /// Orders the fake accepted that this exchange has not seen yet (id order), registered as
    /// seen after checking that each is the only working order on its instrument.
    fn take_new(&mut self, f: &FakeTws, g: &GuardProc, ctx: &str) -> Vec<i32> {
        // States first: the fake records an order as placed before it has a state, so every
        // order in `states` is in a `placed` read after it (the other way round raced).
        let states = f.order_states();
        let placed = Self::placed(f);
        let mut new: Vec<i32> = states
            .iter()
            .map(|s| s.0)
            .filter(|id| !self.seen.contains(id))
            .collect();
        new.sort_unstable();
        for id in &new {
            let k = key(&placed[id]);
            let others: Vec<_> = states
                .iter()
                .filter(|s| s.0 != *id && is_working(&s.1) && key(&placed[&s.0]) == k)
                .collect();
            assert!(
                others.is_empty(),
                "{ctx}: order {id} on {k} while {others:?} still works: a duplicate exit\n{}",
                g.text()
            );
            self.seen.push(*id);
            let split = self.rng.coin();
            self.split.insert(*id, split);
        }
        new
    }

    fn price(c: &proto::Contract) -> f64 {
        if c.sec_type.as_deref() == Some("STK") {
            438.0
        } else {
            1.0
        }
    }

    /// One fill step of order `id`: half of it the first time when it is split, else the rest.
    fn fill_step(&self, f: &FakeTws, id: i32) {
        let Some((_, status, total, filled)) = f.order_states().into_iter().find(|s| s.0 == id)
        else {
            return;
        };
        if !is_working(&status) || status == "PendingCancel" {
            return;
        }
        let rest = total - filled;
        let qty = if filled == 0.0 && total >= 2.0 && self.split[&id] {
            (total / 2.0).floor()
        } else {
            rest
        };
        let c = Self::placed(f)[&id].clone();
        assert!(f.fill(id, qty, Self::price(&c)));
    }

    fn fill_all(&self, f: &FakeTws, id: i32) {
        for _ in 0..2 {
            self.fill_step(f, id);
        }
    }

    fn working(f: &FakeTws) -> Vec<i32> {
        f.order_states()
            .into_iter()
            .filter(|s| is_working(&s.1) && s.1 != "PendingCancel")
            .map(|s| s.0)
            .collect()
    }
}

/// Quantity traded per instrument (BOT positive, SLD negative), BAG executions left out.
fn traded(f: &FakeTws) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (c, x) in f.executions() {
        if c.sec_type.as_deref() == Some("BAG") {
            continue;
        }
        let q: f64 = x.shares.as_deref().unwrap_or("0").parse().unwrap();
        let signed = if x.side.as_deref() == Some("BOT") {
            q
        } else {
            -q
        };
        *m.entry(key(&c)).or_insert(0.0) += signed;
    }
    m
}

fn position(f: &FakeTws, c: &proto::Contract) -> f64 {
    f.positions()
        .iter()
        .filter(|p| p.0 == ACCOUNT && key(&p.1) == key(c))
        .map(|p| p.2)
        .sum()
}

/// What the database holds, read with the store's own reader (the guard is dead or stopped).
struct Db {
    /// State, broken reason and number of legs of each strategy row.
    strategies: Vec<(StrategyState, Option<String>, usize)>,
    /// Audit reasons ("code: reason").
    audit: Vec<String>,
    highest_order_id: i64,
    /// Order ids named by journaled execution groups.
    group_orders: BTreeSet<i64>,
    /// Journal records by kind.
    kinds: BTreeMap<String, usize>,
}

fn collect_order_ids(v: &serde_json::Value, out: &mut BTreeSet<i64>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "order_id"
                    && let Some(n) = x.as_i64()
                {
                    out.insert(n);
                }
                collect_order_ids(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_order_ids(x, out)),
        _ => {}
    }
}

async fn read_db(dir: &Path) -> Db {
    let store = Store::open(StoreConfig::new(db_path(dir))).unwrap();
    let r = store.reader();
    let strategies = r
        .strategies(ACCOUNT)
        .unwrap()
        .into_iter()
        .map(|s| (s.state, s.broken_reason, s.legs.len()))
        .collect();
    let audit = r
        .audit_after(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|a| a.entry.reason)
        .collect();
    let mut group_orders = BTreeSet::new();
    let mut kinds = BTreeMap::new();
    for e in r.journal_after(0, 100_000).unwrap() {
        *kinds.entry(e.entry.kind.clone()).or_insert(0) += 1;
        if e.entry.kind == "group" {
            collect_order_ids(&e.entry.record, &mut group_orders);
        }
    }
    let db = Db {
        strategies,
        audit,
        highest_order_id: r.highest_order_id().unwrap(),
        group_orders,
        kinds,
    };
    store.close().await.unwrap();
    db
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("tradeguard.db")
}

/// Every order the broker saw was journaled before it was sent: its id is at or below the
/// persisted high-water mark and a journaled execution group names it.
fn assert_write_ahead(db: &Db, seen_by_broker: &[i32], ctx: &str) {
    for id in seen_by_broker {
        assert!(
            db.highest_order_id >= i64::from(*id),
            "{ctx}: order {id} reached the broker but the journaled high-water mark is {}",
            db.highest_order_id
        );
        assert!(
            db.group_orders.contains(&i64::from(*id)),
            "{ctx}: order {id} reached the broker but no journaled group names it ({:?}; {:?})",
            db.group_orders,
            db.kinds
        );
    }
}

fn put_435() -> proto::Contract {
    opt(11, "P", 435.0)
}
fn put_440() -> proto::Contract {
    opt(12, "P", 440.0)
}
fn call_460() -> proto::Contract {
    opt(21, "C", 460.0)
}
fn call_465() -> proto::Contract {
    opt(22, "C", 465.0)
}
fn spy() -> proto::Contract {
    FakeTws::stock(1, "SPY")
}

fn guard_config(dir: &Path, rules: &str) -> PathBuf {
    let p = dir.join("guard.toml");
    std::fs::write(&p, format!("{rules}\n[guard]\nreconcile_secs = 0.5\n")).unwrap();
    p
}

/// Drives the exchange after a (re)start until everything in `flat` is flat at the broker and
/// no order works, then for three more status periods in which nothing may be sent.
async fn drive_to_flat(
    f: &FakeTws,
    ex: &mut Exchange,
    g: &GuardProc,
    flat: &[proto::Contract],
    ctx: &str,
) {
    let targets: Vec<(proto::Contract, f64)> = flat.iter().map(|c| (c.clone(), 0.0)).collect();
    drive_to(f, ex, g, &targets, ctx).await;
}

/// [`drive_to_flat`] for target positions other than flat.
async fn drive_to(
    f: &FakeTws,
    ex: &mut Exchange,
    g: &GuardProc,
    targets: &[(proto::Contract, f64)],
    ctx: &str,
) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        ex.take_new(f, g, ctx);
        for id in Exchange::working(f)
            .into_iter()
            .filter(|id| ex.seen.contains(id))
        {
            ex.fill_step(f, id);
        }
        let done = targets.iter().all(|(c, q)| position(f, c) == *q)
            && f.order_states().iter().all(|s| !is_working(&s.1));
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ctx}: not flat: positions {:?}, orders {:?}\n{}",
            f.positions()
                .iter()
                .map(|p| (key(&p.1), p.2))
                .collect::<Vec<_>>(),
            f.order_states(),
            g.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The broker never overfilled: a fill the journal already counted must not count twice.
    assert_eq!(
        g.count(|l| l.contains("fill.overfill")),
        0,
        "{ctx}: a fill was counted twice\n{}",
        g.text()
    );
    let n = g.count(|l| l.starts_with("out: status: "));
    g.wait_until("three quiet status periods", |g| {
        g.count(|l| l.starts_with("out: status: ")) >= n + 3
    })
    .await;
    assert!(
        ex.take_new(f, g, ctx).is_empty(),
        "{ctx}: an order after everything was flat: {:?}\n{}",
        f.order_states(),
        g.text()
    );
}

/// One seeded case of scenario 1; returns a one-line description.
async fn assignment_crash_case(seed: u64) -> String {
    let mut rng = Rng(seed);
    // The plan has 4 orders: buy 460 C ×2 → sell 465 C ×2 and sell 200 SPY → sell 435 P ×2.
    // Seeds 0..12 cover every (order, stage) kill point; the rest of a case is drawn from it.
    let kill_at = 1 + (seed % 4) as usize;
    let stage = (seed / 4) % 3; // 0: just arrived, 1: partly filled, 2: filled
    let late_fill = rng.coin();
    let fill_while_down = rng.coin();
    let slow = rng.coin();
    let ctx = format!(
        "seed {seed}: kill at order {kill_at} {}, cancel {}, {}, {} exchange",
        ["unfilled", "partly filled", "filled"][stage as usize],
        if late_fill {
            "loses to a late fill"
        } else {
            "confirmed"
        },
        if fill_while_down {
            "fills while down"
        } else {
            "no fill while down"
        },
        if slow { "slow" } else { "quick" }
    );
    println!("{ctx}");
    let mut ex = Exchange::new(seed);
    let f = fake_with_condor().await;
    if late_fill {
        f.set_cancel_mode(CancelMode::LateFill(1.0));
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "");
    let cfg_arg = cfg.to_str().unwrap();
    let mut g = GuardProc::spawn(f.port(), dir.path(), &["--config", cfg_arg]);
    g.wait_line("status with the condor's 4 legs", |l| {
        l.starts_with("out: status: 4 positions monitored")
    })
    .await;

    // Overnight assignment: the short 440 P is gone, 200 shares delivered, no execution.
    f.set_position(ACCOUNT, put_440(), 0.0, 0.0);
    f.set_position(ACCOUNT, spy(), 200.0, 440.0);

    'run: loop {
        let n = ex.seen.len();
        assert!(
            f.wait_for(T, |f| f.order_states().len() > n).await,
            "{ctx}: order {} never came: {:?}\n{}",
            n + 1,
            f.order_states(),
            g.text()
        );
        for id in ex.take_new(&f, &g, &ctx) {
            let nth = ex.seen.iter().position(|s| *s == id).unwrap() + 1;
            if nth < kill_at {
                if slow {
                    // Fills a second or more apart: recovery then spans several of the
                    // broker's whole-second execution times.
                    tokio::time::sleep(Duration::from_millis(1100)).await;
                }
                ex.fill_all(&f, id);
                continue;
            }
            match stage {
                0 => {}
                1 => {
                    let (_, _, total, _) =
                        f.order_states().into_iter().find(|s| s.0 == id).unwrap();
                    let c = Exchange::placed(&f)[&id].clone();
                    assert!(f.fill(id, (total / 2.0).floor(), Exchange::price(&c)));
                }
                _ => ex.fill_all(&f, id),
            }
            g.sigkill();
            break 'run;
        }
    }

    // The crash: what the broker saw must have been journaled first.
    let seen_at_crash: Vec<i32> = Exchange::placed(&f).keys().copied().collect();
    let db = read_db(dir.path()).await;
    assert!(
        db.strategies
            .iter()
            .any(|(s, r, legs)| *s == StrategyState::Broken && r.is_some() && *legs == 4),
        "{ctx}: the condor is Broken in the database at the crash, with its four legs: {:?}",
        db.strategies
    );
    assert!(
        db.audit
            .iter()
            .any(|a| a.starts_with("assignment.assigned: SPY 20DEC30 440 P ×2 assigned")),
        "{ctx}: the detection was audited before the first order: {:#?}",
        db.audit
    );
    assert_write_ahead(&db, &seen_at_crash, &ctx);
    // Two orders may go out back to back; each was audited as sent before the next went out.
    let last = seen_at_crash.iter().max().copied();
    for id in seen_at_crash.iter().filter(|id| Some(**id) != last) {
        assert!(
            db.audit
                .iter()
                .any(|a| a.starts_with("assignment.order_sent")
                    && a.contains(&format!("(order {id}"))),
            "{ctx}: order {id} was followed by another order, so its audit entry was \
             acknowledged before the crash: {:#?}",
            db.audit
        );
    }
    let audit_at_crash = db.audit.clone();
    let unfinished_at_crash = kill_at < 4 || stage < 2;

    // The exchange keeps trading while the guard is down.
    if fill_while_down {
        for id in Exchange::working(&f) {
            ex.fill_step(&f, id);
        }
    }

    let mut g = GuardProc::spawn(f.port(), dir.path(), &["--config", cfg_arg]);
    g.wait_line("restart", |l| l.contains("guard: started"))
        .await;
    drive_to_flat(
        &f,
        &mut ex,
        &g,
        &[put_435(), put_440(), call_460(), call_465(), spy()],
        &ctx,
    )
    .await;

    // Nothing exited twice: exactly what had to be closed was traded, per instrument.
    let want = BTreeMap::from([
        (key(&spy()), -200.0),
        (key(&put_435()), -2.0),
        (key(&call_460()), 2.0),
        (key(&call_465()), -2.0),
    ]);
    assert_eq!(traded(&f), want, "{ctx}: traded per con id\n{}", g.text());

    assert!(g.terminate(), "{ctx}: clean stop\n{}", g.text());
    let db = read_db(dir.path()).await;
    assert!(
        db.strategies.iter().any(|(s, r, legs)| matches!(
            s,
            StrategyState::Broken | StrategyState::Closed
        ) && r.as_deref() == Some("broken.assigned")
            && *legs == 4),
        "{ctx}: Broken after the restart (Closed once its close completed), reason and legs kept: {:?}",
        db.strategies
    );
    assert_eq!(
        db.audit.get(..audit_at_crash.len()),
        Some(&audit_at_crash[..]),
        "{ctx}: the audit log from before the crash is intact"
    );
    assert_write_ahead(
        &db,
        &Exchange::placed(&f).keys().copied().collect::<Vec<_>>(),
        &ctx,
    );
    if unfinished_at_crash {
        assert!(
            db.audit
                .iter()
                .any(|a| a.starts_with("assignment.close_resumed")),
            "{ctx}: the restart resumed the close: {:#?}",
            db.audit
        );
    }
    format!("{ctx}: {} orders", ex.seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_close_survives_sigkill_at_seeded_points() {
    for seed in seeds(12) {
        let t = std::time::Instant::now();
        let what = assignment_crash_case(seed).await;
        println!("{what} ({:.1} s)", t.elapsed().as_secs_f64());
    }
}

fn call_480() -> proto::Contract {
    opt(31, "C", 480.0)
}

const MAX_CONTRACTS_FLATTEN: &str = r#"dry_run = false

[[max_contracts]]
id = "max-contracts"
severity = "critical"
action = "flatten"
max_contracts = 2
"#;

/// One seeded case of scenario 2; returns a one-line description.
async fn flatten_crash_case(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(31));
    let partly = rng.coin();
    let late_fill = rng.coin();
    let fill_while_down = rng.coin();
    let ctx = format!(
        "flatten seed {seed}: kill with the flatten order {}, cancel {}, {}",
        if partly { "partly filled" } else { "unfilled" },
        if late_fill {
            "loses to a late fill"
        } else {
            "confirmed"
        },
        if fill_while_down {
            "fills while down"
        } else {
            "no fill while down"
        }
    );
    println!("{ctx}");
    let mut ex = Exchange::new(seed);
    let f = fake_with_condor().await;
    // Over the limit: 8 long 480 C (the condor's legs hold 2 each, within it); the rule
    // reduces it to 2.
    let c480 = call_480();
    f.add_contract(c480.clone());
    f.set_quote(
        c480.clone(),
        QuoteScript {
            bid: 0.95,
            ask: 1.05,
            last: 1.0,
            bid_size: 10.0,
            ask_size: 10.0,
            greeks: None,
        },
    );
    f.set_position(ACCOUNT, c480.clone(), 8.0, 100.0);
    if late_fill {
        f.set_cancel_mode(CancelMode::LateFill(1.0));
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), MAX_CONTRACTS_FLATTEN);
    let cfg_arg = cfg.to_str().unwrap();
    let mut g = GuardProc::spawn(f.port(), dir.path(), &["--config", cfg_arg]);
    assert!(
        f.wait_for(T, |f| !f.order_states().is_empty()).await,
        "{ctx}: no flatten order\n{}",
        g.text()
    );
    let first = ex.take_new(&f, &g, &ctx);
    assert_eq!(
        first.len(),
        1,
        "{ctx}: one flatten order: {:?}",
        f.order_states()
    );
    let id = first[0];
    let placed = Exchange::placed(&f);
    assert_eq!(
        key(&placed[&id]),
        key(&c480),
        "{ctx}: the flatten closes the 480 C"
    );
    if partly {
        assert!(f.fill(id, 2.0, 1.0));
    }
    g.sigkill();

    let seen_at_crash: Vec<i32> = Exchange::placed(&f).keys().copied().collect();
    let db = read_db(dir.path()).await;
    assert_write_ahead(&db, &seen_at_crash, &ctx);
    let audit_at_crash = db.audit.clone();
    if fill_while_down {
        assert!(f.fill(id, 1.0, 1.0));
    }
    // Still over the limit at the restart: the rule closes what is left, once.
    assert!(position(&f, &c480) > 2.0);

    let mut g = GuardProc::spawn(f.port(), dir.path(), &["--config", cfg_arg]);
    g.wait_line("restart", |l| l.contains("guard: started"))
        .await;
    // Broker wins: the restarted guard finds the order still working and cancels it (an
    // unfinished group is never resumed) before the exchange fills anything more.
    g.wait_until(
        "the order working at the crash ended by the recovery",
        |_| {
            f.order_states()
                .iter()
                .any(|s| s.0 == id && !is_working(&s.1))
        },
    )
    .await;
    drive_to(&f, &mut ex, &g, &[(c480.clone(), 2.0)], &ctx).await;
    // The order working at the crash was cancelled or filled before anything else went out
    // for the 480 C (checked on every new order), and the position was reduced to the limit
    // exactly once.
    assert_eq!(
        traded(&f),
        BTreeMap::from([(key(&c480), -6.0)]),
        "{ctx}: traded\n{}",
        g.text()
    );
    for c in [put_435(), put_440(), call_460(), call_465()] {
        assert_ne!(position(&f, &c), 0.0, "{ctx}: the condor is left alone");
    }
    assert!(g.terminate(), "{ctx}: clean stop\n{}", g.text());
    let db = read_db(dir.path()).await;
    assert_eq!(
        db.audit.get(..audit_at_crash.len()),
        Some(&audit_at_crash[..]),
        "{ctx}: the audit log from before the crash is intact"
    );
    assert_write_ahead(
        &db,
        &Exchange::placed(&f).keys().copied().collect::<Vec<_>>(),
        &ctx,
    );
    format!("{ctx}: {} orders", ex.seen.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatten_with_a_working_order_survives_sigkill() {
    for seed in seeds(4) {
        let t = std::time::Instant::now();
        let what = flatten_crash_case(seed).await;
        println!("{what} ({:.1} s)", t.elapsed().as_secs_f64());
    }
}
