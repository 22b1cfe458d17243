//! Shared rig for the engine's integration tests: a quiet simulated venue, a SimBroker in
//! paused tokio time and an engine on a TokioClock aligned with the venue's start.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradeguard_engine::{
    EngineConfig, EngineDeps, ExecutionCoordinator, IntrinsicStressModel, JournalRecord,
    MemoryJournal, TokioClock,
};
use tradeguard_model::{
    Broker, Execution, Instrument, Money, OptionContract, OrderId, OrderRequest, OrderType,
    Position, Price, Right, Side, Tif, Timestamp, stubs,
};
use tradeguard_sim::{
    AssignmentConfig, FaultConfig, MarketConfig, MatchingConfig, SimBroker, SimConfig, SimVenue,
    Speed, UnderlyingSpec, calendar,
};

pub fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

pub fn start_ts() -> Timestamp {
    calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), 10, 0)
}

pub fn opt(right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap(),
        right,
        Price::from_units(strike).unwrap(),
    ))
}

pub fn spy() -> Instrument {
    Instrument::stock("SPY")
}

/// SPY at 500, no jumps or gaps, 100 ms latency, no slippage or random partials.
pub fn sim_cfg(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        start: start_ts(),
        account: stubs::account(),
        cash: Money::from_units(1_000_000).unwrap(),
        positions: vec![],
        underlyings: vec![UnderlyingSpec {
            symbol: "SPY".into(),
            price: px("500"),
            vol: 0.15,
            drift: 0.0,
            dividend_yield: 0.0,
            ex_dividend_dates: vec![],
        }],
        market: MarketConfig {
            jump_intensity: 0.0,
            gap_std: 0.0,
            ..MarketConfig::default()
        },
        matching: MatchingConfig {
            latency: Duration::from_millis(100),
            latency_jitter: Duration::ZERO,
            max_slippage_ticks: 0,
            ..MatchingConfig::default()
        },
        assignment: AssignmentConfig::default(),
        faults: FaultConfig::default(),
        scheduled: vec![],
    }
}

pub fn position(instrument: Instrument, qty: i64, cost: &str) -> Position {
    Position {
        account: stubs::account(),
        instrument,
        qty,
        avg_cost: px(cost),
    }
}

pub fn broker(cfg: SimConfig) -> Arc<SimBroker> {
    Arc::new(SimBroker::new(SimVenue::new(cfg).unwrap(), Speed::RealTime))
}

pub fn venue(b: &SimBroker) -> Arc<Mutex<SimVenue>> {
    b.venue()
}

pub fn engine_cfg() -> EngineConfig {
    EngineConfig {
        watch_symbols: vec!["SPY".into()],
        ..EngineConfig::default()
    }
}

pub async fn start(
    b: Arc<SimBroker>,
    journal: &MemoryJournal,
    cfg: EngineConfig,
) -> ExecutionCoordinator {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("500"));
    ExecutionCoordinator::start(EngineDeps {
        broker: b,
        journal: Arc::new(journal.reopen()),
        clock: Arc::new(TokioClock::new(start_ts())),
        risk: Box::new(risk),
        config: cfg,
    })
    .await
    .unwrap()
}

pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub async fn executions(b: &SimBroker) -> Vec<Execution> {
    b.executions_since(Timestamp(0)).await.unwrap()
}

pub async fn qty_at_broker(b: &SimBroker, inst: &Instrument) -> i64 {
    b.positions()
        .await
        .unwrap()
        .iter()
        .find(|p| &p.instrument == inst)
        .map_or(0, |p| p.qty)
}

/// Places an order directly at the venue, bypassing the engine (a manual trade in TWS).
pub async fn external(b: &SimBroker, inst: Instrument, side: Side, qty: i64) -> OrderId {
    let id = b.next_order_id().await.unwrap();
    b.place(&OrderRequest {
        id,
        account: stubs::account(),
        instrument: inst,
        side,
        qty,
        order_type: OrderType::Market,
        tif: Tif::Day,
        outside_rth: false,
    })
    .await
    .unwrap();
    id
}

pub fn audits(j: &MemoryJournal) -> Vec<tradeguard_engine::AuditEntry> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Audit(a) => Some(a),
            _ => None,
        })
        .collect()
}

pub fn alerts(j: &MemoryJournal) -> Vec<tradeguard_engine::Alert> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// A journal whose process "dies" right after the first record `at` accepts: that record is
/// durable, every later write fails (nothing after the crash point reaches the journal).
#[derive(Clone)]
pub struct Crashing {
    inner: MemoryJournal,
    at: Arc<dyn Fn(&JournalRecord) -> bool + Send + Sync>,
    dead: Arc<std::sync::atomic::AtomicBool>,
}

impl Crashing {
    pub fn new(
        inner: &MemoryJournal,
        at: impl Fn(&JournalRecord) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: inner.reopen(),
            at: Arc::new(at),
            dead: Arc::default(),
        }
    }

    /// The crash point was reached.
    pub fn dead(&self) -> bool {
        self.dead.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl tradeguard_engine::Journal for Crashing {
    async fn append(&self, record: JournalRecord) -> Result<(), tradeguard_engine::JournalError> {
        if self.dead() {
            return Err(tradeguard_engine::JournalError::Write("crashed".into()));
        }
        let hit = (self.at)(&record);
        self.inner.append(record).await?;
        if hit {
            self.dead.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    async fn load(
        &self,
    ) -> Result<tradeguard_engine::JournalState, tradeguard_engine::JournalError> {
        self.inner.load().await
    }
}

/// The production guard on a simulated venue `broker` (virtual time from `start`, New York
/// hours, a fallback SPY spot), journaling to `journal`.
pub async fn guard_on_sim(
    broker: Arc<dyn Broker>,
    start: Timestamp,
    journal: &MemoryJournal,
    spot: &str,
    enforce: tradeguard_engine::enforce::EnforceConfig,
    evaluator: Box<dyn tradeguard_engine::enforce::RuleEvaluator>,
    assignment: tradeguard_engine::assignment::AssignmentConfig,
) -> tradeguard_engine::enforce::Guard {
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px(spot));
    tradeguard_engine::enforce::Guard::start(tradeguard_engine::enforce::GuardDeps {
        relay: None,
        broker,
        journal: Arc::new(journal.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: engine_cfg(),
        enforce,
        evaluator,
        hours: Arc::new(tradeguard_engine::assignment::UsEquityHours::fixed_offset(
            calendar::ET_OFFSET_SECS,
        )),
        backstops: Vec::new(),
        notifier: Arc::new(tradeguard_engine::assignment::RecordingNotifier::new()),
        assignment,
    })
    .await
    .expect("the guard starts")
}

/// A fake TWS quote 0.05 either side of `mid`, 10 up.
pub fn ib_quote(mid: f64) -> tradeguard_ibkr::fake_tws::QuoteScript {
    tradeguard_ibkr::fake_tws::QuoteScript::around(mid)
}

/// `IbBroker` (the real `ibapi` client) for the fake TWS on `port`, on the wall clock.
pub fn ib_broker(port: u16, client_id: i32, account: &str) -> Arc<tradeguard_ibkr::IbBroker> {
    Arc::new(tradeguard_ibkr::IbBroker::new(
        tradeguard_ibkr::IbSettings {
            port,
            client_id,
            account: account.into(),
            ..tradeguard_ibkr::IbSettings::default()
        },
        Arc::new(tradeguard_model::SystemClock),
    ))
}

/// Every journaled version of every group, in journal order.
pub fn group_records(j: &MemoryJournal) -> Vec<tradeguard_engine::Group> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            tradeguard_engine::JournalRecord::Group(g) => Some(g),
            _ => None,
        })
        .collect()
}

/// Polls `f` every 20 ms until it answers, for at most 30 s of (tokio) time; fails naming
/// `what` otherwise.
pub async fn until<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The production guard on `broker` (wall clock, market always open, a fallback spot per
/// watched symbol), as the app and `tradeguard guard` start it.
pub async fn guard_on_ib(
    broker: Arc<tradeguard_ibkr::IbBroker>,
    spots: &[(&str, &str)],
    enforce: tradeguard_engine::enforce::EnforceConfig,
    evaluator: Box<dyn tradeguard_engine::enforce::RuleEvaluator>,
) -> tradeguard_engine::enforce::Guard {
    tradeguard_engine::stubs::production_guard(
        broker,
        Arc::new(tradeguard_model::SystemClock),
        Arc::new(tradeguard_engine::assignment::AlwaysOpen),
        spots,
        enforce,
        evaluator,
    )
    .await
    .expect("the guard starts")
}

/// The risk rules of a `risk.toml` holding `text` (its directory kept for the rules' file
/// watch), on an always-open calendar.
pub fn rules_file(text: &str) -> Box<dyn tradeguard_engine::enforce::RuleEvaluator> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.toml");
    std::fs::write(&path, text).unwrap();
    let r = tradeguard_engine::enforce::RiskRules::load(
        &path,
        Arc::new(tradeguard_engine::assignment::AlwaysOpen),
    )
    .unwrap();
    std::mem::forget(dir);
    Box::new(r)
}
