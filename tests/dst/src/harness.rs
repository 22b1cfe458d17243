//! The harness: runs one [`Scenario`] — the real [`Guard`] (coordinator, rules from a TOML
//! file, assignment guard, supervised tasks) on a [`StoreJournal`] in a temp SQLite file —
//! against the simulated venue in paused tokio time, drives activity, injects crashes, builds
//! an [`Observation`] after every one-second step and checks the invariants.
//!
//! Time: a current-thread runtime with paused time. The venue's driver
//! ([`Speed::RealTime`]) and the guard's clock ([`TokioClock`]) both run on tokio time, so
//! virtual time only moves when every task waits, and the run is a pure function of the seed.
//! Store writes and reads block the single runtime thread (see `ack_journal`): the paused
//! clock does not jump while the disk is busy, and no other task runs meanwhile, so the
//! interleaving never depends on the disk's (wall-clock) speed.

use crate::ack_journal::{AckJournal, normalize};
use crate::invariants::{
    BeatObs, Checker, CheckerConfig, FlattenObs, GroupObs, Invariant, LegObs, LiveOrder,
    Observation, Purpose, StrategyObs, Violation, check_acknowledged,
};
use crate::scenario::{Scenario, UNDERLYING, account, option};
use crate::trace::Trace;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradeguard_engine::assignment::{AssignmentConfig, RecordingNotifier, UsEquityHours};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, RiskRules};
use tradeguard_engine::{
    EngineConfig, OrderIntent, PricingStressModel, StopSpec, StopState, StoreJournal, TokioClock,
};
use tradeguard_model::{
    Broker, Clock, Instrument, OpenOrderKind, OrderType, Price, Right, Side, StrategyId,
    StrategyState, Timestamp,
};
use tradeguard_sim::calendar::{self, Session};
use tradeguard_sim::{FaultConfig, SimBroker, SimVenue, Speed};
use tradeguard_store::{Store, StoreConfig};

/// One harness step of virtual time.
pub const STEP: Duration = Duration::from_secs(1);
/// Longest a (re)start may keep failing before it counts as enforcement stopped.
pub const START_BUDGET: Duration = Duration::from_secs(120);
/// Journal records read per query when checking invariant 5.
const PAGE: u32 = 4096;

/// A run that broke an invariant: everything needed to understand and reproduce it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The scenario as printed at the start.
    pub scenario: String,
    /// What broke.
    pub violation: Violation,
    /// The last trace lines (events, actions, observations), oldest first.
    pub last_events: Vec<String>,
}

impl Failure {
    /// The one-line command reproducing this run.
    pub fn repro(&self) -> String {
        repro_command(self.seed)
    }
}

/// The one-line command that replays `seed`.
pub fn repro_command(seed: u64) -> String {
    format!("cargo run -p tradeguard-dst --release -- --seed {seed}")
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "DST FAILURE seed {}: {}", self.seed, self.violation)?;
        writeln!(f, "{}", self.scenario)?;
        writeln!(f, "last events (oldest first):")?;
        for l in &self.last_events {
            let short: String = l.chars().take(400).collect();
            writeln!(f, "  {short}")?;
        }
        write!(f, "reproduce: {}", self.repro())
    }
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DstError {
    /// The harness could not set the run up (temp dir, store, venue, rules, guard start).
    #[error("seed {seed}: set-up failed at {stage}: {detail}")]
    Setup {
        /// Seed.
        seed: u64,
        /// Stage.
        stage: &'static str,
        /// Underlying error with its code.
        detail: String,
    },
    /// An invariant broke.
    #[error("{0}")]
    Violated(Box<Failure>),
}

impl DstError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Setup { .. } => "dst.setup",
            Self::Violated(f) => f.violation.invariant.code(),
        }
    }

    /// The failure, when an invariant broke.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Violated(f) => Some(f),
            Self::Setup { .. } => None,
        }
    }
}

/// What a passing run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Seed.
    pub seed: u64,
    /// Hash of the whole trace (same seed ⇒ same hash).
    pub trace_hash: u64,
    /// Trace lines.
    pub trace_lines: u64,
    /// Virtual seconds simulated.
    pub virtual_secs: u64,
    /// Crashes injected.
    pub crashes: usize,
    /// Groups the harness submitted (accepted by the gate).
    pub submitted: usize,
    /// Submissions the gate refused.
    pub refused: usize,
    /// Groups the engine ran in total (hedges, closes, flattens and rollbacks included).
    pub groups: usize,
}

/// Harness switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also place a stop on a position that already has a live one. Off by default: the
    /// engine accepts it and two live exits for the same quantity follow (known engine
    /// finding, seed 16; invariant 2).
    pub double_stops: bool,
}

/// Runs `seed` to the end with the default [`Options`]; `Err` on a broken invariant or a
/// failed set-up.
pub fn run_seed(seed: u64) -> Result<RunReport, DstError> {
    run_seed_with(seed, Options::default())
}

/// Runs `seed` with `opts`.
pub fn run_seed_with(seed: u64, opts: Options) -> Result<RunReport, DstError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| DstError::Setup {
            seed,
            stage: "runtime",
            detail: e.to_string(),
        })?;
    let scenario = Scenario::from_seed(seed);
    // Built inside the runtime: the clock must read the paused tokio time from the start.
    rt.block_on(async move { Run::new(scenario, opts)?.go().await })
}

fn setup(seed: u64, stage: &'static str) -> impl Fn(String) -> DstError {
    move |detail| DstError::Setup {
        seed,
        stage,
        detail,
    }
}

/// Engine settings of every run (short intervals keep the runs short in virtual time).
pub fn engine_config(sc: &Scenario) -> EngineConfig {
    EngineConfig {
        prefer_native_combos: sc.native_combos,
        leg_timeout: Duration::from_secs(10),
        watch_symbols: vec![UNDERLYING.into()],
        ..EngineConfig::default()
    }
}

/// Enforcement settings of every run.
pub fn enforce_config() -> EnforceConfig {
    EnforceConfig {
        eval_interval: Duration::from_millis(500),
        reconcile_interval: Duration::from_secs(5),
        stall_after: Duration::from_secs(10),
        stall_check_interval: Duration::from_secs(1),
        status_interval: Duration::from_secs(5),
        close_retry_max: Duration::from_secs(8),
        ..EnforceConfig::default()
    }
}

/// The checker's limits, derived from the engine and enforcement settings.
pub fn checker_config(sc: &Scenario) -> CheckerConfig {
    let e = engine_config(sc);
    let f = enforce_config();
    let slack = Duration::from_millis(1_500);
    let attempts = f.close_max_attempts;
    let per_attempt = e.leg_timeout + f.close_retry_max;
    let resolve = f.eval_interval
        + f.close_quote_wait
        + per_attempt * attempts
        + f.reconcile_interval
        + Duration::from_secs(5);
    let mut beat_budget = BTreeMap::new();
    for (name, cadence) in [
        ("enforcer", f.eval_interval),
        ("reconciler", f.stall_check_interval),
        ("status", f.status_interval),
    ] {
        beat_budget.insert(name.to_owned(), cadence + f.restart_max + slack);
    }
    CheckerConfig {
        settle_grace: e.leg_timeout + e.hedge_debounce + Duration::from_secs(3),
        hedge_grace: Duration::from_secs(3),
        reconcile: f.reconcile_interval + f.stall_check_interval + Duration::from_secs(2),
        resolve,
        max_contracts: sc.max_contracts,
        beat_budget,
        default_beat_budget: Duration::from_secs(1) + f.restart_max + slack,
    }
}

/// The fault tail after the storm: the longest a fault that started in the storm can last.
fn fault_tail(f: &FaultConfig) -> Duration {
    [
        f.reconnect_after,
        f.stall_duration,
        f.delay_max,
        f.cancel_late_delay,
    ]
    .into_iter()
    .max()
    .unwrap_or_default()
        + Duration::from_secs(2)
}

fn rules_toml(max_contracts: i64) -> String {
    format!(
        "dry_run = false\n\n[[max_contracts]]\nid = \"max-contracts\"\nseverity = \"critical\"\naction = \"flatten\"\nmax_contracts = {max_contracts}\n"
    )
}

struct Run {
    sc: Scenario,
    label: String,
    dir: tempfile::TempDir,
    db: PathBuf,
    rules: PathBuf,
    broker: Arc<SimBroker>,
    venue: Arc<Mutex<SimVenue>>,
    clock: Arc<dyn Clock>,
    hours: Arc<UsEquityHours>,
    acked: Arc<Mutex<Vec<String>>>,
    trace: Arc<Mutex<Trace>>,
    rng: ChaCha8Rng,
    checker: Checker,
    submitted: usize,
    refused: usize,
    max_groups: usize,
    last_venue: (BTreeMap<String, i64>, Timestamp),
    opts: Options,
    /// The flatten of the whole account a person confirms at the start of the calm phase
    /// (every third seed): its ticket and when.
    flatten: Option<(String, Timestamp)>,
}

/// A running guard and the store under it.
struct Live {
    guard: Guard,
    journal: AckJournal,
    store: Store,
    started: Timestamp,
}

impl Run {
    fn new(sc: Scenario, opts: Options) -> Result<Self, DstError> {
        let seed = sc.seed;
        let dir = tempfile::tempdir().map_err(|e| setup(seed, "temp dir")(e.to_string()))?;
        let db = dir.path().join("tradeguard.db");
        let rules = dir.path().join("risk.toml");
        std::fs::write(&rules, rules_toml(sc.max_contracts))
            .map_err(|e| setup(seed, "rules file")(e.to_string()))?;
        let venue = SimVenue::new(sc.sim.clone())
            .map_err(|e| setup(seed, "venue")(format!("{e} ({})", e.code())))?;
        let start = venue.now();
        let label = sc.to_string();
        let broker = Arc::new(SimBroker::new(venue, Speed::RealTime));
        Ok(Self {
            venue: broker.venue(),
            broker,
            checker: Checker::new(checker_config(&sc)),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xAC71_0000_0000_0002),
            label,
            dir,
            db,
            rules,
            clock: Arc::new(TokioClock::new(start)),
            hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
            acked: Arc::new(Mutex::new(Vec::new())),
            trace: Arc::new(Mutex::new({
                let mut t = Trace::default();
                t.echo = std::env::var_os("DST_TRACE").is_some_and(|v| v == "1");
                t
            })),
            submitted: 0,
            refused: 0,
            max_groups: 0,
            last_venue: (BTreeMap::new(), start),
            opts,
            flatten: None,
            sc,
        })
    }

    fn log(&self, line: String) {
        self.trace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }

    fn fail(&self, violation: Violation) -> DstError {
        let last_events = self
            .trace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .tail();
        DstError::Violated(Box::new(Failure {
            seed: self.sc.seed,
            scenario: self.label.clone(),
            violation,
            last_events,
        }))
    }

    fn venue(&self) -> std::sync::MutexGuard<'_, SimVenue> {
        // The venue's state is consistent between calls: a poisoned lock is recovered.
        self.venue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the store and starts the guard. A start that fails (the venue is down, a
    /// snapshot call fails) is retried every second, as a process supervisor would; a guard
    /// that cannot start for [`START_BUDGET`] breaks invariant 8.
    async fn start_guard(&self) -> Result<Live, DstError> {
        let seed = self.sc.seed;
        let store = Store::open(StoreConfig::new(&self.db).with_verify_on_open(false))
            .map_err(|e| setup(seed, "store open")(format!("{e} ({})", e.code())))?;
        let first = self.clock.now();
        loop {
            let journal = AckJournal::new(
                StoreJournal::new(&store, self.clock.clone(), account()),
                store.writer(),
                self.acked.clone(),
            );
            let rules = RiskRules::load(&self.rules, self.hours.clone())
                .map_err(|e| setup(seed, "risk rules")(format!("{e} ({})", e.code())))?;
            let r = Guard::start(GuardDeps {
                relay: None,
                broker: self.broker.clone(),
                journal: Arc::new(journal.clone()),
                clock: self.clock.clone(),
                risk: Box::new(PricingStressModel::new(self.clock.clone())),
                engine: engine_config(&self.sc),
                enforce: enforce_config(),
                evaluator: Box::new(rules),
                hours: self.hours.clone(),
                backstops: Vec::new(),
                notifier: Arc::new(RecordingNotifier::new()),
                assignment: AssignmentConfig::default(),
            })
            .await;
            match r {
                Ok(guard) => {
                    return Ok(Live {
                        guard,
                        journal,
                        store,
                        started: self.clock.now(),
                    });
                }
                Err(e) => {
                    self.log(format!("guard start failed: {e} ({})", e.code()));
                    let now = self.clock.now();
                    if since(now, first) >= START_BUDGET {
                        return Err(self.fail(Violation {
                            invariant: Invariant::EnforcementAlive,
                            at: now,
                            detail: format!(
                                "the guard could not start for {} s: {e} ({})",
                                START_BUDGET.as_secs(),
                                e.code()
                            ),
                        }));
                    }
                    tokio::time::sleep(STEP).await;
                }
            }
        }
    }

    /// A crash: the engine task is killed, the guard's tasks stop where they are, the store is
    /// closed (every acknowledged write is already committed; the real-process SIGKILL test
    /// covers an unclean close).
    async fn crash(&self, live: Live) -> Result<(), DstError> {
        live.guard.coordinator().abort();
        live.guard.shutdown().await;
        drop(live.guard);
        live.journal.drain();
        let store = live.store;
        // Blocking the runtime thread: the paused clock must not jump and no other task may
        // run while the writer finishes (determinism, see `ack_journal`).
        let closed = futures::executor::block_on(tokio::task::unconstrained(store.close()));
        closed.map_err(|e| setup(self.sc.seed, "store close")(format!("{e} ({})", e.code())))
    }

    /// Invariant 5 on the reopened store: every acknowledged record is there.
    async fn check_durable(&self, store: &Store) -> Result<(), DstError> {
        let reader = store.reader().clone();
        // Read on the runtime thread (blocking): nothing else runs meanwhile (determinism).
        let stored = (move || -> Result<Vec<String>, String> {
            let mut out = Vec::new();
            let mut after = 0;
            loop {
                let page = reader
                    .journal_after(after, PAGE)
                    .map_err(|e| format!("{e} ({})", e.code()))?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    return Ok(out);
                };
                out.extend(page.iter().map(|e| normalize(&e.entry.record)));
                after = last;
            }
        })()
        .map_err(setup(self.sc.seed, "journal read"))?;
        let acked = self
            .acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.log(format!(
            "durability: {} acknowledged, {} stored",
            acked.len(),
            stored.len()
        ));
        check_acknowledged(&acked, &stored, self.clock.now()).map_err(|v| self.fail(v))
    }

    async fn go(mut self) -> Result<RunReport, DstError> {
        println!("{}", self.label);
        self.broker
            .connect()
            .await
            .map_err(|e| setup(self.sc.seed, "connect")(format!("{e} ({})", e.code())))?;
        let mut events = self.broker.events();
        let trace = self.trace.clone();
        let tap = tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                trace
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(format!("event {ev:?}"));
            }
        });
        let mut live = Some(self.start_guard().await?);
        let storm = self.sc.storm;
        let tail = fault_tail(&self.sc.rates.faults);
        let end =
            (storm + tail + self.checker_resolve() + Duration::from_secs(10)).max(self.sc.min_run);
        let mut crashes = self.sc.crashes.clone().into_iter().peekable();
        let mut elapsed = Duration::ZERO;
        let mut calm_since: Option<Timestamp> = None;
        let mut crashes_done = 0;
        let mut unwind_done = false;
        while elapsed < end {
            let in_storm = elapsed < storm;
            if let Some(&(at, down)) = crashes.peek()
                && at <= elapsed
            {
                crashes.next();
                if let Some(l) = live.take() {
                    self.log(format!("action crash (down {} ms)", down.as_millis()));
                    self.crash(l).await?;
                    crashes_done += 1;
                }
                tokio::time::sleep(down).await;
                let l = self.start_guard().await?;
                self.check_durable(&l.store).await?;
                self.checker.restarted();
                self.log("action restart".into());
                live = Some(l);
            }
            let Some(l) = live.as_ref() else {
                break;
            };
            if in_storm {
                if let Some(at) = self.sc.forced_unwind_at
                    && !unwind_done
                    && at <= elapsed
                {
                    unwind_done = true;
                    let r = l.guard.set_forced_unwind(account(), true).await;
                    self.log(format!(
                        "action forced_unwind on: {:?}",
                        r.map_err(|e| e.code())
                    ));
                }
                self.act(&l.guard).await;
            } else if elapsed == storm {
                let mut v = self.venue();
                v.set_faults(FaultConfig::default());
                v.set_order_faults(0.0, 0.0);
                drop(v);
                self.log("action storm over: faults off".into());
            }
            if !in_storm && calm_since.is_none() && elapsed >= storm + tail {
                calm_since = Some(self.clock.now());
                self.log("calm".into());
                if self.sc.seed.is_multiple_of(3) {
                    self.confirm_flatten(&l.guard).await;
                }
            }
            tokio::time::sleep(STEP).await;
            elapsed += STEP;
            let obs = self.observe(l, calm_since).await;
            self.log(digest(&obs));
            if let Err(v) = self.checker.observe(&obs) {
                return Err(self.fail(v));
            }
        }
        let groups = self.max_groups;
        if let Some(l) = live.take() {
            // A last restart checks durability of everything acknowledged in the run.
            self.crash(l).await?;
            let l = self.start_guard().await?;
            self.check_durable(&l.store).await?;
            self.crash(l).await?;
        }
        tap.abort();
        let t = self
            .trace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        drop(self.dir);
        Ok(RunReport {
            seed: self.sc.seed,
            trace_hash: t.hash(),
            trace_lines: t.len(),
            virtual_secs: end.as_secs(),
            crashes: crashes_done,
            submitted: self.submitted,
            refused: self.refused,
            groups,
        })
    }

    fn checker_resolve(&self) -> Duration {
        checker_config(&self.sc).resolve
    }
}

fn since(now: Timestamp, then: Timestamp) -> Duration {
    Duration::from_nanos(u64::try_from(now.nanos_since(then)).unwrap_or(0))
}

/// Strike grid of the scenarios.
fn round5(units: i64) -> i64 {
    (units + 2).div_euclid(5) * 5
}

/// `p × (1000 + permille) / 1000`, rounded to the cent.
fn scaled(p: Price, permille: i64) -> Price {
    let raw = i128::from(p.raw()) * i128::from(1_000 + permille) / 1_000;
    let cent = i128::from(tradeguard_model::SCALE / 100);
    let raw = (raw / cent).max(1) * cent;
    Price::from_raw(i64::try_from(raw).unwrap_or(i64::MAX))
}

fn purpose(p: tradeguard_engine::Purpose) -> Purpose {
    use tradeguard_engine::Purpose as P;
    match p {
        P::Open => Purpose::Open,
        P::Close => Purpose::Close,
        P::Flatten => Purpose::Flatten,
        P::Emergency => Purpose::Emergency,
        P::Hedge => Purpose::Hedge,
        P::StopLoss => Purpose::StopLoss,
    }
}

fn exposure_key(i: &Instrument) -> Option<String> {
    i.as_option()
        .map(|o| format!("{}/{:?}", o.underlying, o.right))
}

/// One line per observation for the trace: positions, groups, unmatched.
fn digest(o: &Observation) -> String {
    let groups: Vec<String> = o
        .groups
        .iter()
        .map(|g| {
            let filled: i64 = g.legs.iter().map(|l| l.filled).sum();
            format!(
                "{}:{:?}:{}:{}",
                g.id,
                g.purpose,
                u8::from(g.terminal),
                filled
            )
        })
        .collect();
    format!(
        "obs {} venue {:?} engine {:?} guard {:?} orders {} groups [{}] unmatched {:?} broken {:?}",
        o.now,
        o.venue_positions,
        o.engine_positions,
        o.guard_positions,
        o.venue_orders.len(),
        groups.join(" "),
        o.unmatched,
        o.strategies
            .iter()
            .filter(|s| s.broken)
            .map(|s| s.id)
            .collect::<Vec<_>>()
    )
}

impl Run {
    /// One step of activity during the storm (each with its rate).
    /// A person previews "flatten the account" and confirms it (invariant 10 follows it).
    async fn confirm_flatten(&mut self, guard: &Guard) {
        let scope = tradeguard_engine::enforce::FlattenScope::Account { account: account() };
        let r = match guard.preview_flatten(scope).await {
            Ok(p) => guard.confirm_flatten(&p.id).await.map(|t| t.id),
            Err(e) => Err(e),
        };
        self.log(format!(
            "action flatten account confirmed: {:?}",
            r.as_ref().map_err(|e| e.code())
        ));
        if let Ok(id) = r {
            self.flatten = Some((id, self.clock.now()));
        }
    }

    async fn act(&mut self, guard: &Guard) {
        let r = self.sc.rates.clone();
        if self.rng.random_bool(r.open) {
            self.open(guard).await;
        }
        if self.rng.random_bool(r.close) {
            self.close(guard).await;
        }
        if self.rng.random_bool(r.stop) {
            self.stop(guard).await;
        }
        if self.rng.random_bool(r.gap) {
            let pct =
                self.rng.random_range(20..=60) * if self.rng.random_bool(0.5) { 1 } else { -1 };
            let mut v = self.venue();
            let res = v.spot(UNDERLYING).ok_or("no spot").and_then(|s| {
                v.set_spot(UNDERLYING, scaled(s, pct))
                    .map_err(|_| "set_spot")
            });
            drop(v);
            self.log(format!("action gap {pct}‰: {res:?}"));
        }
        if self.rng.random_bool(r.forced_assignment) {
            self.assign(guard).await;
        }
    }

    async fn open(&mut self, guard: &Guard) {
        let Some(spot) = self.venue().spot(UNDERLYING) else {
            return;
        };
        let k = round5(spot.raw() / tradeguard_model::SCALE);
        let off = 5 * self.rng.random_range(1..=6);
        let w = 5 * self.rng.random_range(1..=3);
        let q = self.rng.random_range(1..=3);
        let e = self.sc.expiry;
        let o = |right, strike| option(e, right, strike);
        let m = OrderType::Market;
        let i = OrderIntent::new(tradeguard_engine::Purpose::Open, account());
        let (name, intent) = match self.rng.random_range(0..5) {
            0 => (
                "iron condor",
                i.leg(o(Right::Put, k - off - w), Side::Buy, q, m)
                    .leg(o(Right::Put, k - off), Side::Sell, q, m)
                    .leg(o(Right::Call, k + off), Side::Sell, q, m)
                    .leg(o(Right::Call, k + off + w), Side::Buy, q, m),
            ),
            1 => (
                "put vertical",
                i.leg(o(Right::Put, k - off), Side::Sell, q, m).leg(
                    o(Right::Put, k - off - w),
                    Side::Buy,
                    q,
                    m,
                ),
            ),
            2 => (
                "call vertical",
                i.leg(o(Right::Call, k + off), Side::Sell, q, m).leg(
                    o(Right::Call, k + off + w),
                    Side::Buy,
                    q,
                    m,
                ),
            ),
            3 => (
                "strangle",
                i.leg(o(Right::Put, k - off - 10), Side::Sell, q, m).leg(
                    o(Right::Call, k + off + 10),
                    Side::Sell,
                    q,
                    m,
                ),
            ),
            _ => (
                "stock",
                i.leg(Instrument::stock(UNDERLYING), Side::Buy, 100 * q, m),
            ),
        };
        self.submit(guard, name, intent).await;
    }

    async fn submit(&mut self, guard: &Guard, name: &str, intent: OrderIntent) {
        let r = guard.coordinator().submit(intent).await;
        match &r {
            Ok(_) => self.submitted += 1,
            Err(_) => self.refused += 1,
        }
        self.log(format!(
            "action submit {name}: {:?}",
            r.map_err(|e| e.code())
        ));
    }

    /// Closes a strategy the guard shows through the normal path (a Broken one included: the
    /// gate must refuse it, invariant 7 checks that nothing went out).
    async fn close(&mut self, guard: &Guard) {
        let strategies = guard.strategies();
        if strategies.is_empty() {
            return;
        }
        let s = &strategies[self.rng.random_range(0..strategies.len())];
        let mut intent =
            OrderIntent::new(tradeguard_engine::Purpose::Close, account()).for_strategy(s.id);
        for l in s.legs.iter().filter(|l| l.qty != 0) {
            let side = if l.qty > 0 { Side::Sell } else { Side::Buy };
            intent = intent.leg(l.instrument.clone(), side, l.qty.abs(), OrderType::Market);
        }
        if intent.legs.is_empty() {
            return;
        }
        let name = format!("close strategy {} ({:?})", s.id, s.state);
        self.submit(guard, &name, intent).await;
    }

    /// A managed stop-loss on a random venue position, 0.5–3 % away from the mid.
    async fn stop(&mut self, guard: &Guard) {
        let protected: BTreeSet<Instrument> = match guard.coordinator().snapshot().await {
            Ok(s) => s
                .stops
                .iter()
                .filter(|s| !s.is_terminal())
                .map(|s| s.spec.instrument.clone())
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        let mut positions = self.venue().positions_truth();
        if !self.opts.double_stops {
            // The engine accepts a second stop on a position that already has one (two live
            // exits for the same quantity, seed 16): see `Options::double_stops`.
            positions.retain(|p| !protected.contains(&p.instrument));
        }
        if positions.is_empty() {
            return;
        }
        let p = positions[self.rng.random_range(0..positions.len())].clone();
        let picked = self.venue().quote(&p.instrument).ok().map(|q| (p, q));
        let Some((p, q)) = picked else {
            return;
        };
        let Some((bid, ask)) = q.two_sided() else {
            return;
        };
        let mid = Price::from_raw((bid.raw() + ask.raw()) / 2);
        let away = self.rng.random_range(5..=30);
        let (side, stop) = if p.qty > 0 {
            (Side::Sell, scaled(mid, -away))
        } else {
            (Side::Buy, scaled(mid, away))
        };
        let spec = StopSpec {
            account: account(),
            instrument: p.instrument.clone(),
            side,
            qty: p.qty.abs(),
            stop,
            strategy: None,
        };
        let r = guard.coordinator().place_stop(spec).await;
        self.log(format!(
            "action stop {:?} {} {} @ {stop}: {:?}",
            side,
            p.qty.abs(),
            p.instrument.id(),
            r.map_err(|e| e.code())
        ));
    }

    /// Assigns part of a short option now, preferring one a group is legging.
    async fn assign(&mut self, guard: &Guard) {
        let legging: BTreeSet<String> = match guard.coordinator().snapshot().await {
            Ok(s) => s
                .groups
                .iter()
                .filter(|g| !g.phase.is_terminal())
                .flat_map(|g| g.legs.iter().map(|l| l.intent.instrument.id().to_string()))
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        let shorts: Vec<(Instrument, i64)> = {
            let v = self.venue();
            v.positions_truth()
                .into_iter()
                .filter(|p| p.qty < 0 && p.instrument.as_option().is_some())
                .map(|p| (p.instrument, p.qty))
                .collect()
        };
        if shorts.is_empty() {
            return;
        }
        let during: Vec<&(Instrument, i64)> = shorts
            .iter()
            .filter(|(i, _)| legging.contains(&i.id().to_string()))
            .collect();
        let (inst, qty) = if during.is_empty() {
            shorts[self.rng.random_range(0..shorts.len())].clone()
        } else {
            during[self.rng.random_range(0..during.len())].clone()
        };
        let n = self.rng.random_range(1..=qty.abs());
        let r = self.broker.force_assignment(&inst.id(), n);
        self.log(format!(
            "action assign {n} of {} (legging {}): {:?}",
            inst.id(),
            !during.is_empty(),
            r.map_err(|e| e.code())
        ));
    }

    async fn observe(&mut self, live: &Live, calm_since: Option<Timestamp>) -> Observation {
        let flatten = match &self.flatten {
            // A restart forgets tickets (in memory): nothing to follow then.
            Some((id, at)) => live.guard.flatten_progress(id).await.ok().map(|p| {
                use tradeguard_engine::enforce::flatten::FlattenStatus as S;
                FlattenObs {
                    confirmed_at: *at,
                    status: match p.status {
                        S::Done => "done".to_owned(),
                        S::Working => "working".to_owned(),
                        S::Armed { .. } => "armed".to_owned(),
                        S::Incomplete => "incomplete".to_owned(),
                        S::DryRun => "dry_run".to_owned(),
                        S::NeedsManual { reason } => format!("needs_manual:{reason}"),
                    },
                }
            }),
            None => None,
        };
        let now = self.clock.now();
        let order_ids = |v: &SimVenue| -> BTreeSet<i64> {
            v.open_orders_truth()
                .iter()
                .map(|o| match &o.order {
                    OpenOrderKind::Single(r) => r.id.0,
                    OpenOrderKind::Combo(c) => c.id.0,
                })
                .collect()
        };
        let before = order_ids(&self.venue());
        // Awaiting the snapshot lets the engine go on with what it had queued at this same
        // instant (e.g. a stop's market order after a confirmed cancel): orders it places then
        // are at the venue but not in the snapshot (`placed_during_snapshot`).
        let snap = live.guard.coordinator().snapshot().await.ok();
        let placed_during_snapshot: BTreeSet<i64> = order_ids(&self.venue())
            .difference(&before)
            .copied()
            .collect();
        let mut exposure = BTreeMap::new();
        let (venue_positions, venue_orders, connected) = {
            // The truth, whatever the link (a stalled or down link fails the broker queries).
            let v = self.venue();
            let mut pos: BTreeMap<String, i64> = BTreeMap::new();
            for p in v.positions_truth().into_iter().filter(|p| p.qty != 0) {
                if let Some(k) = exposure_key(&p.instrument) {
                    exposure.insert(p.instrument.id().to_string(), k);
                }
                pos.insert(p.instrument.id().to_string(), p.qty);
            }
            let mut orders = Vec::new();
            for o in v.open_orders_truth() {
                let remaining = o.status.remaining;
                match &o.order {
                    OpenOrderKind::Single(r) => orders.push(LiveOrder {
                        order: r.id.0,
                        instrument: r.instrument.id().to_string(),
                        side: r.side,
                        remaining,
                    }),
                    OpenOrderKind::Combo(c) => {
                        for l in &c.legs {
                            orders.push(LiveOrder {
                                order: c.id.0,
                                instrument: l.instrument.id().to_string(),
                                side: l.side,
                                remaining: remaining.saturating_mul(i64::from(l.ratio)),
                            });
                        }
                    }
                }
            }
            (pos, orders, v.is_connected())
        };
        let mut groups = Vec::new();
        let mut stop_orders = BTreeSet::new();
        let mut engine_positions = BTreeMap::new();
        let mut unmatched = BTreeMap::new();
        let mut forced_unwind = false;
        if let Some(s) = &snap {
            self.max_groups = self.max_groups.max(s.groups.len());
            for g in &s.groups {
                let legs = g
                    .legs
                    .iter()
                    .map(|l| {
                        if let Some(k) = exposure_key(&l.intent.instrument) {
                            exposure.insert(l.intent.instrument.id().to_string(), k);
                        }
                        LegObs {
                            instrument: l.intent.instrument.id().to_string(),
                            side: l.intent.side,
                            qty: l.intent.qty,
                            filled: l.filled(),
                            order: l.order_id.map(|o| o.0),
                        }
                    })
                    .collect();
                groups.push(GroupObs {
                    id: g.id.0,
                    purpose: purpose(g.intent.purpose),
                    strategy: g.intent.strategy.map(|s: StrategyId| s.0),
                    terminal: g.phase.is_terminal(),
                    created: g.created,
                    legs,
                });
            }
            for st in s
                .stops
                .iter()
                .filter(|s| !matches!(s.state, StopState::Done | StopState::Failed))
            {
                stop_orders.insert(st.limit_order.0);
                if let Some(m) = st.market_order {
                    stop_orders.insert(m.0);
                }
            }
            engine_positions = s
                .positions
                .iter()
                .filter(|(_, q)| *q != 0)
                .map(|(i, q)| (i.to_string(), *q))
                .collect();
            unmatched = s
                .unmatched
                .iter()
                .map(|(k, n)| (format!("{}/{:?}", k.underlying, k.right), *n))
                .collect();
            forced_unwind = !s.forced_unwind.is_empty();
        }
        let positions = live.guard.positions();
        for p in &positions {
            if let Some(k) = exposure_key(&p.instrument) {
                exposure.insert(p.instrument.id().to_string(), k);
            }
        }
        let guard_positions = positions
            .iter()
            .filter(|p| p.qty != 0)
            .map(|p| (p.instrument.id().to_string(), p.qty))
            .collect();
        // A Broken strategy lists the stock its assignments delivered among its legs (the
        // trader's view of what it holds). Those shares are not a leg it was opened with: who
        // may trade them is the assignment guard's close first, then whoever the trader asks
        // (a confirmed flatten); two exits of them at once is invariant 2. Invariant 7 judges
        // the strategy's own legs.
        let delivered: BTreeSet<(u64, String)> = live
            .guard
            .assignment_status()
            .records
            .iter()
            .filter(|r| r.stock_delivered != 0)
            .filter_map(|r| {
                let sid = r.strategy?;
                Some((
                    sid.0,
                    Instrument::stock(r.option.underlying()).id().to_string(),
                ))
            })
            .collect();
        let strategies = live
            .guard
            .strategies()
            .into_iter()
            .map(|s| StrategyObs {
                id: s.id.0,
                broken: s.state == StrategyState::Broken,
                instruments: s
                    .legs
                    .iter()
                    .map(|l| l.instrument.id().to_string())
                    .filter(|i| !delivered.contains(&(s.id.0, i.clone())))
                    .collect(),
            })
            .collect();
        let beats = live
            .guard
            .heartbeats()
            .into_iter()
            .map(|h| BeatObs {
                name: h.name.to_owned(),
                since_last: h.since_last,
            })
            .collect();
        if self.last_venue.0 != venue_positions {
            self.last_venue = (venue_positions.clone(), now);
        }
        let regular = calendar::session(now) == Session::Regular;
        let calm = calm_since.filter(|_| connected && snap.is_some());
        Observation {
            now,
            guard_started: live.started,
            venue_unchanged_since: self.last_venue.1,
            venue_accepts: calm.is_some() && regular,
            calm_since: calm,
            groups,
            stop_orders,
            placed_during_snapshot,
            venue_positions,
            engine_positions,
            guard_positions,
            venue_orders,
            unmatched,
            exposure_key: exposure,
            strategies,
            forced_unwind,
            beats,
            flatten,
        }
    }
}

/// Invariant codes, for reports.
pub fn invariant_codes() -> Vec<&'static str> {
    [
        Invariant::NoNakedShortAfterSettle,
        Invariant::NoDuplicateExit,
        Invariant::HedgeWithinUnmatched,
        Invariant::LocalEqualsVenue,
        Invariant::AcknowledgedWritesDurable,
        Invariant::BreachResolvedInTime,
        Invariant::BrokenOnlyEmergency,
        Invariant::EnforcementAlive,
        Invariant::NoUnaskedOrder,
        Invariant::ConfirmedFlattenEnds,
    ]
    .into_iter()
    .map(Invariant::code)
    .collect()
}
