//! The composed [`Guard`] on the simulated venue in paused virtual time: real risk rules from a
//! TOML file (a fired flatten reaches the broker, dry-run sends nothing, hot reload applies a
//! changed limit and rejects a bad edit keeping the last good one; a file bad at start runs the
//! last good rules kept in the journal, or none in dry-run, until it is fixed), and the demo
//! scenario's assignment handled end to end (detection, Broken strategy in the book, emergency
//! close in the safe order, exactly one notification per Critical alert, the alert on
//! `subscribe_alerts`).

mod common;
use common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tradeguard_engine::assignment::{
    AssignmentConfig, ClosePhase, DetectionKind, EmergencyOrderState, RecordingNotifier,
    UsEquityHours,
};
use tradeguard_engine::enforce::{
    EnforceConfig, Guard, GuardDeps, NoRules, RiskRules, RuleEvaluator,
};
use tradeguard_engine::{Alert, IntrinsicStressModel, MemoryJournal, Severity, TokioClock};
use tradeguard_model::{Broker, Right, Side, StrategyState};
use tradeguard_sim::{SimBroker, SimConfig, calendar};

fn hours() -> Arc<UsEquityHours> {
    Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS))
}

async fn start_guard(
    b: Arc<SimBroker>,
    j: &MemoryJournal,
    evaluator: Box<dyn RuleEvaluator>,
    n: &RecordingNotifier,
    spot: &str,
) -> Guard {
    let start = venue(&b).lock().unwrap().now();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px(spot));
    Guard::start(GuardDeps {
        relay: None,
        broker: b,
        journal: Arc::new(j.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        // The engine's own hedging of naked shorts is off: these books hold naked shorts.
        engine: tradeguard_engine::EngineConfig {
            hedge_enabled: false,
            ..engine_cfg()
        },
        enforce: EnforceConfig {
            eval_interval: Duration::from_millis(200),
            ..EnforceConfig::default()
        },
        evaluator,
        hours: hours(),
        backstops: Vec::new(),
        notifier: Arc::new(n.clone()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap()
}

fn drain(rx: &mut broadcast::Receiver<Alert>) -> Vec<Alert> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(a) => out.push(a),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("test lost {n} alerts"),
            Err(_) => return out,
        }
    }
}

fn put490() -> tradeguard_model::Instrument {
    opt(Right::Put, 490)
}

fn short_put_book() -> SimConfig {
    let mut c = sim_cfg(3);
    c.positions = vec![position(put490(), -5, "2.00")];
    c
}

fn rules_file(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("risk.toml");
    std::fs::write(&p, body).unwrap();
    p
}

fn max_contracts(limit: i64, dry_run: bool) -> String {
    format!(
        "dry_run = {dry_run}\n\n[[max_contracts]]\nid = \"max-contracts\"\nseverity = \"critical\"\naction = \"flatten\"\nmax_contracts = {limit}\n"
    )
}

fn rules(path: &Path) -> Box<dyn RuleEvaluator> {
    Box::new(RiskRules::load(path, hours()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn fired_flatten_reaches_the_broker_and_is_notified_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(dir.path(), &max_contracts(3, false));
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, rules(&path), &n, "500").await;
    let mut rx = g.subscribe_alerts();
    sleep_ms(5_000).await;
    assert_eq!(
        qty_at_broker(&b, &put490()).await,
        -3,
        "reduced to the limit at the venue"
    );
    let buys: i64 = executions(&b)
        .await
        .iter()
        .filter(|e| e.instrument == put490() && e.side == Side::Buy)
        .map(|e| e.qty)
        .sum();
    assert_eq!(
        buys, 2,
        "exactly the contracts over the limit were bought back"
    );
    let alerts = drain(&mut rx);
    let fired: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.code == "rule.max-contracts")
        .collect();
    assert_eq!(fired.len(), 1, "{alerts:#?}");
    assert!(fired[0].message.contains("exceeds the maximum of 3"));
    let critical = alerts
        .iter()
        .filter(|a| a.severity == Severity::Critical)
        .count();
    let notified = n.all();
    assert_eq!(notified.len(), critical, "{notified:#?}");
    assert!(
        notified
            .iter()
            .any(|x| x.title.contains("exceeds the maximum of 3"))
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn global_dry_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(dir.path(), &max_contracts(3, true));
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, rules(&path), &n, "500").await;
    sleep_ms(5_000).await;
    assert!(executions(&b).await.is_empty());
    assert_eq!(qty_at_broker(&b, &put490()).await, -5);
    let dry: Vec<_> = audits(&j)
        .into_iter()
        .filter(|a| a.decision == "dry_run")
        .collect();
    assert_eq!(dry.len(), 1, "{dry:#?}");
    assert!(
        dry[0].reason.contains("would send Flatten BUY 2"),
        "{dry:?}"
    );
    let status = g.status().await;
    assert_eq!(status.dry_run_decisions, 1);
    assert!(
        status.dry_run,
        "the status shows the rules file's global dry-run"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reload_applies_a_changed_limit_and_a_bad_edit_keeps_the_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(dir.path(), &max_contracts(10, false));
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, rules(&path), &n, "500").await;
    let mut rx = g.subscribe_alerts();
    sleep_ms(3_000).await;
    assert_eq!(
        qty_at_broker(&b, &put490()).await,
        -5,
        "5 ≤ 10: nothing fires"
    );

    // A bad edit: rejected with file, line and field; the limit of 10 stays.
    std::fs::write(&path, max_contracts(-3, false)).unwrap();
    sleep_ms(3_000).await;
    let alerts = drain(&mut rx);
    let rejected: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.code == "rules.config_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "reported once: {alerts:#?}");
    let m = &rejected[0].message;
    assert!(m.contains(&format!("{}:7", path.display())), "{m}");
    assert!(m.contains("max_contracts"), "{m}");
    assert!(m.contains("last good configuration"), "{m}");
    assert_eq!(qty_at_broker(&b, &put490()).await, -5);
    assert!(executions(&b).await.is_empty());

    // A good edit applies without a restart.
    std::fs::write(&path, max_contracts(4, false)).unwrap();
    sleep_ms(5_000).await;
    let alerts = drain(&mut rx);
    assert!(
        alerts.iter().any(|a| a.code == "rules.config_applied"),
        "{alerts:#?}"
    );
    assert!(alerts.iter().any(|a| a.code == "rule.max-contracts"));
    assert_eq!(qty_at_broker(&b, &put490()).await, -4);
    g.shutdown().await;
}

/// A hand edit gone wrong: `max_contracts` (line 6) is text.
const BAD_RULES: &str = "dry_run = false\n\n[[max_contracts]]\nid = \"max-contracts\"\naction = \"flatten\"\nmax_contracts = \"two\"\n";

fn risk_configs(j: &MemoryJournal) -> Vec<tradeguard_engine::rules::SavedRiskConfig> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            tradeguard_engine::JournalRecord::RiskConfig(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn bad_rules_file_at_start_runs_without_rules_in_dry_run_until_it_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(dir.path(), BAD_RULES);
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(
        b.clone(),
        &j,
        Box::new(RiskRules::watch(&path, hours())),
        &n,
        "500",
    )
    .await;
    // The guard runs; one Critical alert says why and what runs instead.
    let rejected: Vec<&Alert> = g
        .startup_alerts()
        .iter()
        .filter(|a| a.code == "rules.config_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{:#?}", g.startup_alerts());
    assert_eq!(rejected[0].severity, Severity::Critical);
    let m = &rejected[0].message;
    assert!(m.contains(&format!("{}:6", path.display())), "{m}");
    assert!(m.contains("max_contracts.max_contracts"), "{m}");
    assert!(m.contains("NO risk rule, in dry-run"), "{m}");
    assert!(
        n.all()
            .iter()
            .any(|x| x.title.starts_with("Risk rules file rejected at start")),
        "notified: {:#?}",
        n.all()
    );
    let status = g.status().await;
    assert_eq!(status.rules, 0);
    assert!(status.dry_run, "no rules, in dry-run");
    assert!(risk_configs(&j).is_empty(), "nothing good to keep yet");
    let mut rx = g.subscribe_alerts();
    sleep_ms(3_000).await;
    assert_eq!(qty_at_broker(&b, &put490()).await, -5);
    assert!(
        drain(&mut rx)
            .iter()
            .all(|a| a.code != "rules.config_rejected"),
        "reported once"
    );

    // Fixing the file applies it without a restart, and it is kept as the last good one.
    std::fs::write(&path, max_contracts(3, false)).unwrap();
    sleep_ms(5_000).await;
    let alerts = drain(&mut rx);
    let applied: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.code == "rules.config_applied")
        .collect();
    assert_eq!(applied.len(), 1, "{alerts:#?}");
    assert!(applied[0].message.contains("rejected at start is fixed"));
    assert!(alerts.iter().any(|a| a.code == "rule.max-contracts"));
    assert_eq!(
        qty_at_broker(&b, &put490()).await,
        -3,
        "the fixed rule acts: reduced to its limit"
    );
    let kept = risk_configs(&j);
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert_eq!(kept[0].source.text, max_contracts(3, false));
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_rules_file_at_start_runs_the_last_good_rules_kept_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    // First run: good rules (in dry-run, so the breach is audited, not closed).
    let good = max_contracts(3, true);
    let path = rules_file(dir.path(), &good);
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, rules(&path), &n, "500").await;
    sleep_ms(2_000).await;
    g.shutdown().await;
    let kept = risk_configs(&j);
    assert_eq!(kept.len(), 1, "the good rules are kept: {kept:#?}");
    assert_eq!(
        (kept[0].source.text.as_str(), kept[0].source.path.as_path()),
        (good.as_str(), path.as_path())
    );
    let dry_before = audits(&j)
        .iter()
        .filter(|a| a.decision == "dry_run")
        .count();
    assert_eq!(dry_before, 1);

    // Edited badly while the guard was down: the restart runs the last good rules.
    std::fs::write(&path, BAD_RULES).unwrap();
    let g = start_guard(
        b.clone(),
        &j,
        Box::new(RiskRules::watch(&path, hours())),
        &n,
        "500",
    )
    .await;
    let rejected: Vec<&Alert> = g
        .startup_alerts()
        .iter()
        .filter(|a| a.code == "rules.config_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{:#?}", g.startup_alerts());
    assert_eq!(rejected[0].severity, Severity::Critical);
    let m = &rejected[0].message;
    assert!(m.contains(&format!("{}:6", path.display())), "{m}");
    assert!(m.contains("max_contracts.max_contracts"), "{m}");
    assert!(m.contains("last good risk rules"), "{m}");
    assert!(m.contains("1 enabled rule(s), global dry-run on"), "{m}");
    let status = g.status().await;
    assert_eq!(status.rules, 1, "the last good rule runs");
    sleep_ms(2_000).await;
    let dry_after = audits(&j)
        .iter()
        .filter(|a| a.decision == "dry_run")
        .count();
    assert_eq!(
        dry_after, 2,
        "the last good rule decided again after the restart"
    );
    assert_eq!(
        qty_at_broker(&b, &put490()).await,
        -5,
        "in dry-run, as it was"
    );
    assert_eq!(
        risk_configs(&j).len(),
        1,
        "the same rules are not kept twice"
    );
    g.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn demo_assignment_breaks_the_spread_closes_it_in_safe_order_and_notifies_once() {
    let b = broker(tradeguard_sim::Scenario::demo(7).config);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, Box::new(NoRules), &n, "575").await;
    let mut rx = g.subscribe_alerts();
    let spread_short = opt(Right::Put, 590);
    let spread_long = opt(Right::Put, 580);
    sleep_ms(2_000).await;
    let before = g.strategies();
    assert!(
        before.iter().any(|s| s.state == StrategyState::Open
            && s.legs.iter().any(|l| l.instrument == spread_short)
            && s.legs.iter().any(|l| l.instrument == spread_long)),
        "the put spread is recognized: {before:#?}"
    );

    // The short 590 put is assigned 6 virtual minutes in; watch the strategy book meanwhile.
    let steps = (tradeguard_sim::scenario::DEMO_ASSIGNMENT_AFTER.as_millis() + 20_000) / 100;
    let mut broken_views = Vec::new();
    for _ in 0..steps {
        sleep_ms(100).await;
        broken_views.extend(
            g.strategies()
                .into_iter()
                .filter(|s| s.state == StrategyState::Broken),
        );
    }

    let st = g.assignment_status();
    assert_eq!(st.records.len(), 1, "{st:#?}");
    let rec = &st.records[0];
    assert_eq!(rec.kind, DetectionKind::Assigned);
    assert_eq!(rec.option, spread_short);
    assert_eq!((rec.contracts, rec.stock_delivered), (1, 100));
    let broken = rec.strategy.expect("correlated with a strategy");

    // The spread became Broken in the guard's strategy book (with its reason) ...
    let b0 = broken_views
        .first()
        .expect("a Broken strategy was shown in the book");
    assert_eq!(b0.id, broken);
    assert!(b0.legs.iter().any(|l| l.instrument == spread_short));
    assert!(b0.legs.iter().any(|l| l.instrument == spread_long));
    assert_eq!(b0.badge(), "broken: SPY 21MAR25 590 P assigned");
    assert!(broken_views.iter().all(|v| v.id == broken));
    // ... and, once its emergency close completed, Closed (no longer listed; the rest stays).
    let views = g.strategies();
    assert!(views.iter().all(|v| v.id != broken), "{views:#?}");
    assert!(
        views
            .iter()
            .all(|v| v.legs.iter().all(|l| l.instrument != spread_short)),
        "{views:#?}"
    );
    assert!(
        !views.is_empty(),
        "the condor and the rest are still guarded"
    );
    let guarded = st.strategies.iter().find(|s| s.id == broken).unwrap();
    assert!(guarded.legs.iter().any(|l| l.instrument == spread_short));
    assert!(guarded.legs.iter().any(|l| l.instrument == spread_long));
    assert!(matches!(
        guarded.state,
        StrategyState::Broken | StrategyState::Closed
    ));

    // The emergency close reached the venue in the safe order: every order went out only
    // after the fills it depends on, the short covered first.
    let c = st
        .closes
        .iter()
        .find(|c| c.strategy == broken)
        .expect("emergency close");
    assert_eq!(c.phase, ClosePhase::Completed, "{c:#?}");
    let first = &c.orders[0].planned;
    assert_eq!((&first.instrument, first.side), (&spread_short, Side::Buy));
    let execs = executions(&b).await;
    for o in &c.orders {
        assert_eq!(o.state, EmergencyOrderState::Filled, "{o:#?}");
        for &dep in &o.planned.after {
            let dep_id = c.orders[dep].order_id.unwrap();
            let dep_fill = execs
                .iter()
                .filter(|e| e.order_id == Some(dep_id))
                .map(|e| e.ts)
                .max()
                .unwrap();
            assert!(
                o.sent_at.unwrap() >= dep_fill,
                "{o:#?} before its dependency"
            );
        }
    }
    assert!(
        c.orders
            .iter()
            .any(|o| o.planned.instrument == spread_long && o.planned.side == Side::Sell),
        "the protection is sold: {c:#?}"
    );
    assert_eq!(qty_at_broker(&b, &spread_short).await, 0);

    // One notification per Critical alert, and the assignment alert on subscribe_alerts.
    let alerts = drain(&mut rx);
    let detected: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.code == "assignment.detected")
        .collect();
    assert_eq!(detected.len(), 1, "{alerts:#?}");
    assert_eq!(detected[0].severity, Severity::Critical);
    let critical: Vec<_> = n
        .all()
        .into_iter()
        .filter(|x| x.severity == Severity::Critical)
        .collect();
    assert_eq!(
        critical.len(),
        alerts
            .iter()
            .filter(|a| a.severity == Severity::Critical)
            .count(),
        "{critical:#?} vs {alerts:#?}"
    );
    let assignment: Vec<_> = critical
        .iter()
        .filter(|x| {
            x.title
                .starts_with("ASSIGNMENT: SPY 21MAR25 590 P ×1 assigned")
        })
        .collect();
    assert_eq!(assignment.len(), 1, "notified exactly once: {critical:#?}");
    assert_eq!(
        assignment[0].title,
        "ASSIGNMENT: SPY 21MAR25 590 P ×1 assigned — emergency close sent"
    );
    g.shutdown().await;
}

/// Delegates to the real rules and records what `Guard::start` restores into it.
struct RestoreSpy {
    inner: RiskRules,
    restored: Arc<std::sync::Mutex<Option<tradeguard_engine::rules::RuleState>>>,
}

impl RuleEvaluator for RestoreSpy {
    fn rule_count(&self) -> usize {
        self.inner.rule_count()
    }
    fn evaluate(
        &mut self,
        input: &tradeguard_engine::enforce::EvalInput<'_>,
    ) -> Vec<tradeguard_engine::enforce::Decision> {
        self.inner.evaluate(input)
    }
    fn drain_alerts(&mut self) -> Vec<Alert> {
        self.inner.drain_alerts()
    }
    fn durable_state(&self) -> Option<tradeguard_engine::rules::RuleState> {
        self.inner.durable_state()
    }
    fn restore_state(&mut self, state: tradeguard_engine::rules::RuleState) {
        *self.restored.lock().unwrap() = Some(state.clone());
        self.inner.restore_state(state);
    }
}

#[tokio::test(start_paused = true)]
async fn rule_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(
        dir.path(),
        "[[max_drawdown]]\nid = \"dd\"\nmax_drawdown = 1000000\n",
    );
    let b = broker(short_put_book());
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let restored = Arc::new(std::sync::Mutex::new(None));
    let spy = |r: &Arc<std::sync::Mutex<Option<_>>>| -> Box<dyn RuleEvaluator> {
        Box::new(RestoreSpy {
            inner: RiskRules::load(&path, hours()).unwrap(),
            restored: r.clone(),
        })
    };
    let g = start_guard(b.clone(), &j, spy(&restored), &n, "500").await;
    assert!(
        restored.lock().unwrap().is_none(),
        "first start: nothing to restore"
    );
    sleep_ms(15_000).await;
    g.shutdown().await;
    let saved: Vec<_> = j
        .records()
        .into_iter()
        .filter_map(|r| match r {
            tradeguard_engine::JournalRecord::RuleState(s) => Some(s),
            _ => None,
        })
        .collect();
    let last = saved
        .last()
        .expect("the rules' day-start/peak values were journaled")
        .clone();
    assert!(!last.accounts.is_empty(), "account peak tracked: {last:?}");
    assert!(
        saved.len() <= 4,
        "throttled, not one record per evaluation: {}",
        saved.len()
    );

    let g2 = start_guard(b.clone(), &j, spy(&restored), &n, "500").await;
    let got = restored
        .lock()
        .unwrap()
        .clone()
        .expect("restored at the restart");
    assert_eq!(got.accounts, last.accounts);
    assert_eq!(got.trailing, last.trailing);
    g2.shutdown().await;
}

/// The dry-run contract, checked on every order that reached the broker: with the global
/// dry-run on and rules that fire on the demo book, the rules send nothing and the demo's
/// assignment is still closed; every group that sent an order is on a path dry-run does not
/// hold back ([`tradeguard_engine::enforce::OrderPath`]), the list the Guard card shows.
#[tokio::test(start_paused = true)]
async fn in_dry_run_only_the_paths_dry_run_does_not_hold_reach_the_broker() {
    use tradeguard_engine::enforce::{OrderPath, paths_of};
    let dir = tempfile::tempdir().unwrap();
    let path = rules_file(
        dir.path(),
        "dry_run = true\n\n[[max_contracts]]\nid = \"mc\"\naction = \"flatten\"\nmax_contracts = 1\n\n[[position_cap]]\nid = \"cap\"\naction = \"flatten\"\nmax_positions = 1\n",
    );
    let b = broker(tradeguard_sim::Scenario::demo(7).config);
    b.connect().await.unwrap();
    let j = MemoryJournal::new();
    let n = RecordingNotifier::new();
    let g = start_guard(b.clone(), &j, rules(&path), &n, "575").await;
    let wait = tradeguard_sim::scenario::DEMO_ASSIGNMENT_AFTER + Duration::from_secs(60);
    sleep_ms(wait.as_millis() as u64).await;
    let status = g.status().await;
    assert!(status.dry_run && status.dry_run_decisions > 0, "{status:?}");
    let snap = g.coordinator().snapshot().await.unwrap();
    let sent: Vec<_> = snap
        .groups
        .iter()
        .filter(|gr| gr.legs.iter().any(|l| l.order_id.is_some()))
        .collect();
    assert!(
        !sent.is_empty(),
        "the assignment's emergency close went out"
    );
    for gr in &sent {
        let paths = paths_of(gr.intent.purpose);
        assert!(
            paths.iter().any(|p| !p.held_by_dry_run()),
            "group {} ({:?}) reached the broker in dry-run on {paths:?}",
            gr.id,
            gr.intent.purpose
        );
        assert_ne!(gr.intent.purpose, tradeguard_engine::Purpose::Flatten);
    }
    assert!(
        OrderPath::sent_in_dry_run().any(|p| p == OrderPath::AssignmentClose),
        "the card lists the emergency close as still sent"
    );
    g.shutdown().await;
}
