//! Rules never race the assignment guard (issue "On the trader's desk with IB", point 2 and 3):
//! when an assigned leg's option update reaches the book before its stock update, the book
//! regroups the leftovers for a moment into strategies nobody holds ("vertical 460/465",
//! "435 P ×2"); no rule may evaluate them, nor the Broken strategy, nor the instruments the
//! emergency close owns. A rule that flattens every strategy it is shown (the worst rule a
//! trader could write) is run beside the production guard while the condor's short put is
//! assigned with the stock update 3 s late: the venue receives the emergency close's orders and
//! nothing else.

mod common;
mod support;
use common::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::WrappedBroker;
use tradeguard_engine::MemoryJournal;
use tradeguard_engine::Severity;
use tradeguard_engine::assignment::{AssignmentConfig, ClosePhase};
use tradeguard_engine::enforce::{
    CloseLeg, Decision, EnforceConfig, EvalInput, RuleAction, RuleEvaluator,
};
use tradeguard_model::{Broker, Right, StrategyId, StrategyState};

/// Flattens every strategy it is shown, except those of its first evaluation; records every
/// strategy it saw (id, name, state).
#[derive(Clone, Default)]
struct FlattenEverythingNew {
    first: Arc<Mutex<Option<BTreeSet<StrategyId>>>>,
    seen: Arc<Mutex<Vec<(StrategyId, String, StrategyState)>>>,
}

impl RuleEvaluator for FlattenEverythingNew {
    fn rule_count(&self) -> usize {
        1
    }
    fn evaluate(&mut self, input: &EvalInput<'_>) -> Vec<Decision> {
        let mut first = self.first.lock().unwrap();
        let first = first.get_or_insert_with(|| input.strategies.iter().map(|s| s.id).collect());
        let mut out = Vec::new();
        for s in input.strategies {
            self.seen
                .lock()
                .unwrap()
                .push((s.id, s.name.clone(), s.state));
            if first.contains(&s.id) {
                continue;
            }
            out.push(Decision {
                rule: "flatten_anything_new".into(),
                severity: Severity::Warning,
                action: RuleAction::Flatten,
                dry_run: false,
                account: s.account.clone(),
                strategy: Some(s.id),
                close: s
                    .legs
                    .iter()
                    .map(|l| CloseLeg {
                        instrument: l.instrument.clone(),
                        qty: l.qty,
                    })
                    .collect(),
                reason: format!("{} is new", s.name),
                locks_opening: false,
                hybrid_exit: false,
            });
        }
        out
    }
}

#[tokio::test(start_paused = true)]
async fn no_rule_acts_on_what_an_assignment_leaves_before_the_guard_owns_it() {
    let mut cfg = sim_cfg(5);
    cfg.underlyings[0].price = px("450");
    cfg.underlyings[0].vol = 0.001;
    cfg.positions = vec![
        position(opt(Right::Put, 435), 2, "1.00"),
        position(opt(Right::Put, 440), -2, "2.00"),
        position(opt(Right::Call, 460), -2, "2.00"),
        position(opt(Right::Call, 465), 2, "1.00"),
    ];
    let sim = broker(cfg);
    sim.connect().await.unwrap();
    let start = venue(&sim).lock().unwrap().now();
    let t0 = tokio::time::Instant::now() + Duration::from_secs(5);
    // The option's update first, the stock's 3 s later (IB's separate messages).
    let b = Arc::new(WrappedBroker::new(sim.clone()).with_late_positions(
        spy(),
        Duration::from_secs(3),
        t0,
        t0 + Duration::from_secs(2),
    ));
    let rules = FlattenEverythingNew::default();
    let j = MemoryJournal::new();
    let g = guard_on_sim(
        b,
        start,
        &j,
        "450",
        EnforceConfig {
            eval_interval: Duration::from_millis(100),
            ..EnforceConfig::default()
        },
        Box::new(rules.clone()),
        AssignmentConfig::default(),
    )
    .await;
    tokio::time::sleep_until(t0).await;
    let before = executions(&sim).await.len();
    venue(&sim)
        .lock()
        .unwrap()
        .force_assignment(&opt(Right::Put, 440).id(), 2)
        .unwrap();
    sleep_ms(90_000).await;
    let execs = executions(&sim).await.split_off(before);
    let st = g.assignment_status();
    let close = st.closes.first().expect("an emergency close");
    assert_eq!(close.phase, ClosePhase::Completed, "{st:#?}");
    // Every execution is one of the emergency close's orders.
    let ours: BTreeSet<_> = close
        .orders
        .iter()
        .flat_map(|o| {
            o.order_id
                .into_iter()
                .chain(o.previous_orders.iter().copied())
        })
        .collect();
    let foreign: Vec<_> = execs
        .iter()
        .filter(|e| e.order_id.is_none_or(|id| !ours.contains(&id)))
        .collect();
    let seen = rules.seen.lock().unwrap().clone();
    let first = rules.first.lock().unwrap().clone().unwrap();
    assert!(
        foreign.is_empty(),
        "orders nobody but the assignment guard may send: {foreign:#?}\nrules saw {seen:#?}"
    );
    // The rules never saw the Broken condor, nor a strategy regrouped from its legs.
    assert!(
        seen.iter().all(|(id, _, state)| first.contains(id)
            && !matches!(state, StrategyState::Broken | StrategyState::Closed)),
        "{seen:#?}"
    );
    assert!(sim.positions().await.unwrap().is_empty());
    g.shutdown().await;
}
