//! The durable journal on the real SQLite store: crash in the middle of a group and restart
//! from the same database file and venue, every record kind through append/load, and failing
//! store writes that must stop the broker call.

mod common;
mod support;

use common::*;
use std::sync::Arc;
use support::*;
use tradeguard_engine::{
    Alert, AuditEntry, Book, GroupPhase, Journal, JournalError, JournalRecord, LegState,
    MemoryJournal, OrderIntent, Purpose, Severity, StopLoss, StopSpec, TradingState,
};
use tradeguard_model::{
    AccountId, Broker, GroupId, ManualClock, OrderId, OrderType, Right, Side, StrategyId,
    Timestamp, stubs,
};
use tradeguard_store::{
    AuditKind, GroupState, NewJournalEntry, StopState as StoreStopState, StrategyState, WriteCmd,
};

/// Marketable limits (market orders on options need a mark for the notional check).
fn iron_condor() -> OrderIntent {
    let buy = OrderType::Limit { limit: px("30") };
    let sell = OrderType::Limit { limit: px("0.05") };
    OrderIntent::new(Purpose::Open, stubs::account())
        .leg(opt(Right::Put, 490), Side::Sell, 2, sell)
        .leg(opt(Right::Put, 480), Side::Buy, 2, buy)
        .leg(opt(Right::Call, 510), Side::Sell, 2, sell)
        .leg(opt(Right::Call, 520), Side::Buy, 2, buy)
}

fn order_ids_used(store: &tradeguard_store::Store) -> Vec<i64> {
    store
        .reader()
        .journal_after(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.kind == "order_id_used")
        .map(|e| e.entry.record["data"].as_i64().unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn crash_mid_group_on_the_store_recovers_from_the_same_file_and_never_reuses_an_id() {
    let db = temp_db();
    let sim = broker(sim_cfg(9));
    let store = open_store(&db.path);
    let j1: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&sim)));
    let c1 = start_on(sim.clone(), j1, engine_cfg(), venue_now(&sim)).await;
    // Protective 520 C rests far below the market; 480 P fills. Shorts never go out.
    let mut ic = iron_condor();
    ic.legs[3].order_type = OrderType::Limit { limit: px("0.05") };
    let gid = c1.submit(ic).await.unwrap();
    // Crash right after the first tier was handed to the broker: the engine task dies, the
    // process lets go of the database (closing the store releases the instance lock).
    c1.abort();
    drop(c1);
    tokio::task::yield_now().await;
    store.close().await.unwrap();

    // While the app is down: the 480 P fills, and somebody sells two naked calls in TWS.
    let call = opt(Right::Call, 530);
    external(&sim, call.clone(), Side::Sell, 2).await;
    sleep_ms(3_000).await;

    // Reopen the same file (the lock was released) and look at what survived the crash.
    let store = open_store(&db.path);
    let g_row = store
        .reader()
        .execution_group(&gid.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(g_row.state, GroupState::Working, "{g_row:#?}");
    assert_eq!(
        g_row.legs.iter().filter(|l| l.order_id.is_some()).count(),
        2,
        "the protective tier was journaled as sent before the broker call"
    );
    let used_before = order_ids_used(&store);
    let highest_before = store.reader().highest_order_id().unwrap();
    assert_eq!(Some(&highest_before), used_before.iter().max());

    // The gateway restarted too: its id counter starts again at 1.
    let b2 = Arc::new(WrappedBroker::new(sim.clone()).with_restarted_ids(1));
    let j2: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&sim)));
    let c2 = start_on(b2, j2, engine_cfg(), venue_now(&sim)).await;
    sleep_ms(3_000).await;

    let snap = c2.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(g.phase, GroupPhase::Interrupted);
    assert_eq!(
        (g.legs[1].state, g.legs[1].filled()),
        (LegState::Filled, 2),
        "480 P filled while down: broker wins"
    );
    assert_eq!(
        g.legs[3].state,
        LegState::Cancelled,
        "resting 520 C cancelled"
    );
    assert_eq!(
        (g.legs[0].state, g.legs[0].order_id),
        (LegState::Cancelled, None)
    );
    assert!(sim.open_orders().await.unwrap().is_empty());
    // Broker state reached: the calls sold in TWS are the trader's and stay, the spread leg
    // is kept.
    assert_eq!(qty_at_broker(&sim, &call).await, -2);
    assert_eq!(qty_at_broker(&sim, &opt(Right::Put, 480)).await, 2);
    // The trader closes the leftover 480 P through the guard.
    let close = OrderIntent::new(Purpose::Close, stubs::account()).leg(
        opt(Right::Put, 480),
        Side::Sell,
        2,
        OrderType::Limit { limit: px("0.05") },
    );
    c2.submit(close).await.unwrap();
    sleep_ms(3_000).await;
    assert_eq!(qty_at_broker(&sim, &opt(Right::Put, 480)).await, 0);
    let closed: Vec<_> = executions(&sim)
        .await
        .into_iter()
        .filter(|e| e.instrument == opt(Right::Put, 480) && e.side == Side::Sell)
        .collect();
    let snap = c2.snapshot().await.unwrap();

    // Order ids never repeat across the restart even though the gateway counts from 1 again:
    // every new id is above everything persisted before and every id the broker reported
    // (the manual TWS order), in strictly increasing journal order.
    let used = order_ids_used(&store);
    let after: Vec<i64> = used[used_before.len()..].to_vec();
    let manual = executions(&sim)
        .await
        .iter()
        .find(|e| e.instrument == call && e.side == Side::Sell)
        .and_then(|e| e.order_id)
        .unwrap();
    assert!(!after.is_empty());
    assert_eq!(after[0], highest_before.max(manual.0) + 1);
    assert!(used.windows(2).all(|w| w[0] < w[1]), "{used:?}");
    let close_id = closed[0].order_id.unwrap();
    assert!(close_id.0 > highest_before && close_id != manual);
    assert_eq!(
        store.reader().highest_order_id().unwrap(),
        *used.last().unwrap()
    );
    assert_eq!(snap.highest_order_id, Some(OrderId(*used.last().unwrap())));

    // The typed tables follow the journal: group settled, alerts and audit queryable.
    let g_row = store
        .reader()
        .execution_group(&gid.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(
        g_row.state,
        GroupState::Broken,
        "interrupted with a filled leg"
    );
    assert_eq!(
        g_row.reason.as_deref(),
        Some("interrupted by a restart; not resumed")
    );
    let alerts = store.reader().alerts(false, 100).unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.alert.kind == "exposure.naked_at_startup"
                && a.alert.severity == tradeguard_store::Severity::Warning
                && a.alert.text.contains("SPY Call"))
    );
    assert!(alerts.iter().any(|a| a.alert.kind == "group.interrupted"));
    let audit = store.reader().audit_after(0, 1_000).unwrap();
    assert!(!audit.iter().any(|a| a.entry.kind == AuditKind::HedgePlaced));
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.entry.kind == AuditKind::ReconciliationRepair)
            .count(),
        2,
        "one recovery per start"
    );
    drop(c2);
    store.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_order_ids_continue_from_the_highest_persisted() {
    let db = temp_db();
    let sim = broker(sim_cfg(15));
    let buy_put = || {
        OrderIntent::new(Purpose::Open, stubs::account()).leg(
            opt(Right::Put, 480),
            Side::Buy,
            1,
            OrderType::Limit { limit: px("30") },
        )
    };
    let store = open_store(&db.path);
    let j1: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&sim)));
    let b1 = Arc::new(WrappedBroker::new(sim.clone()).with_restarted_ids(1));
    let c1 = start_on(b1, j1, engine_cfg(), venue_now(&sim)).await;
    c1.submit(buy_put()).await.unwrap();
    sleep_ms(2_000).await; // filled: the group is finished, the broker will not mention it
    c1.abort();
    drop(c1);
    tokio::task::yield_now().await;
    store.close().await.unwrap();

    // Same file, and a gateway that forgot its ids: only the journal knows id 1 was used.
    let store = open_store(&db.path);
    assert_eq!(store.reader().highest_order_id().unwrap(), 1);
    let j2: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&sim)));
    let b2 = Arc::new(WrappedBroker::new(sim.clone()).with_restarted_ids(1));
    let c2 = start_on(b2, j2, engine_cfg(), venue_now(&sim)).await;
    let gid = c2.submit(buy_put()).await.unwrap();
    sleep_ms(2_000).await;
    let snap = c2.snapshot().await.unwrap();
    let g = snap.groups.iter().find(|g| g.id == gid).unwrap();
    assert_eq!(
        g.legs[0].order_id,
        Some(OrderId(2)),
        "highest persisted + 1"
    );
    assert_eq!(g.phase, GroupPhase::Completed, "the venue accepted the id");
    assert_eq!(order_ids_used(&store), vec![1, 2]);
    assert_eq!(qty_at_broker(&sim, &opt(Right::Put, 480)).await, 2);
    drop(c2);
    store.close().await.unwrap();
}

/// One record of every kind the engine writes today.
fn one_of_each() -> Vec<JournalRecord> {
    let t = Timestamp::from_millis(1_741_100_400_000);
    let mut g = tradeguard_engine::Group::legged(
        GroupId(3),
        tradeguard_engine::stubs::iron_condor_open(1).for_strategy(StrategyId(7)),
        &Book::new(),
        t,
    );
    g.mark_sent(1, OrderId(41), t);
    let spec = StopSpec {
        account: stubs::account(),
        instrument: spy(),
        side: Side::Sell,
        qty: 100,
        stop: px("495"),
        strategy: Some(StrategyId(7)),
    };
    let mut stop = StopLoss::new(1, spec.clone(), px("492.52"), OrderId(42));
    stop.triggered_at = Some(t);
    let loose = StopLoss::new(
        2,
        StopSpec {
            strategy: None,
            ..spec
        },
        px("492.52"),
        OrderId(43),
    );
    vec![
        JournalRecord::Group(g),
        JournalRecord::Stop(stop),
        JournalRecord::Stop(loose),
        JournalRecord::Audit(AuditEntry {
            ts: t,
            decision: "refused".into(),
            code: "gate.max_order_qty".into(),
            reason: "leg qty 20 exceeds 10".into(),
            purpose: Some(Purpose::Open),
            group: None,
        }),
        JournalRecord::Alert(Alert {
            ts: t,
            severity: Severity::Critical,
            code: "exposure.unhedged".into(),
            message: "SPY Put: 2 naked".into(),
            group: Some(GroupId(3)),
            stop: None,
        }),
        JournalRecord::OrderIdUsed(OrderId(43)),
        JournalRecord::StrategyBroken {
            strategy: StrategyId(8),
            reason: Some("broken.assigned".into()),
        },
        JournalRecord::StrategyBroken {
            strategy: StrategyId(9),
            reason: Some("broken.partial_fill".into()),
        },
        JournalRecord::StrategyBroken {
            strategy: StrategyId(9),
            reason: None,
        },
        JournalRecord::TradingState(TradingState::Reducing),
        JournalRecord::ForcedUnwind {
            account: AccountId::new("DU2"),
            enabled: true,
        },
        JournalRecord::ForcedUnwind {
            account: stubs::account(),
            enabled: true,
        },
        JournalRecord::ForcedUnwind {
            account: stubs::account(),
            enabled: false,
        },
        JournalRecord::RiskConfig(saved_rules("dry_run = true\n", t)),
        JournalRecord::RiskConfig(saved_rules("dry_run = false\n", t)),
    ]
}

fn saved_rules(text: &str, at: Timestamp) -> tradeguard_engine::rules::SavedRiskConfig {
    tradeguard_engine::rules::SavedRiskConfig {
        source: tradeguard_engine::rules::ConfigSource::new("/etc/risk.toml", text),
        applied_at: at,
    }
}

#[tokio::test]
async fn every_record_kind_round_trips_through_append_and_load() {
    let db = temp_db();
    let store = open_store(&db.path);
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_741_100_500_000)));
    let j = tradeguard_engine::StoreJournal::new(&store, clock, stubs::account());
    let mem = MemoryJournal::new();
    let records = one_of_each();
    for r in &records {
        j.append(r.clone()).await.unwrap();
        mem.append(r.clone()).await.unwrap();
    }
    // Load folds exactly like the in-memory journal, from a fresh handle on the same file.
    let loaded = j.load().await.unwrap();
    assert_eq!(loaded, mem.load().await.unwrap());
    assert_eq!(
        loaded.groups[&GroupId(3)].legs[1].order_id,
        Some(OrderId(41))
    );
    assert_eq!(loaded.stops.len(), 2);
    assert_eq!(loaded.highest_order_id, Some(OrderId(43)));
    assert_eq!(loaded.trading_state, Some(TradingState::Reducing));
    assert_eq!(loaded.broken.len(), 1);
    assert_eq!(
        loaded.forced_unwind.iter().collect::<Vec<_>>(),
        vec![&AccountId::new("DU2")]
    );
    assert_eq!(
        loaded.risk_config.as_ref().map(|c| c.source.text.as_str()),
        Some("dry_run = false\n"),
        "the last good rules: the latest one"
    );

    // Stored kinds are the serde tags, in append order.
    let r = store.reader();
    let kinds: Vec<String> = r
        .journal_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.entry.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "group",
            "stop",
            "stop",
            "audit",
            "alert",
            "order_id_used",
            "strategy_broken",
            "strategy_broken",
            "strategy_broken",
            "trading_state",
            "forced_unwind",
            "forced_unwind",
            "forced_unwind",
            "risk_config",
            "risk_config"
        ]
    );

    // Projections into the typed tables.
    let g = r.execution_group("3").unwrap().unwrap();
    assert_eq!(
        (g.state, g.strategy_id.as_deref(), g.legs.len()),
        (GroupState::Working, Some("7"), 4)
    );
    assert_eq!((g.legs[1].qty, g.legs[1].order_id), (1, Some(41)));
    assert!(
        g.legs.iter().any(|l| l.qty == -1),
        "short legs are negative"
    );
    let sl = r.stop_loss("7").unwrap().unwrap();
    assert_eq!(
        (sl.state, sl.trigger_e4, sl.triggered_at_ms),
        (StoreStopState::Triggered, 495_0000, Some(1_741_100_400_000))
    );
    let s7 = r.strategy("7").unwrap().unwrap();
    assert_eq!(
        (s7.account_id.as_str(), s7.underlying.as_str()),
        (stubs::account().as_str(), "SPY")
    );
    let s8 = r.strategy("8").unwrap().unwrap();
    assert_eq!(
        (s8.state, s8.broken_reason.as_deref()),
        (StrategyState::Broken, Some("broken.assigned"))
    );
    let s9 = r.strategy("9").unwrap().unwrap();
    assert_eq!((s9.state, s9.broken_reason), (StrategyState::Open, None));
    assert_eq!(r.highest_order_id().unwrap(), 43);
    let audit = r.audit_after(0, 10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entry.kind, AuditKind::RuleFired);
    assert_eq!(audit[0].entry.details["code"], "gate.max_order_qty");
    let alerts = r.alerts(false, 10).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.kind, "exposure.unhedged");
    assert!(alerts[0].alert.text.contains("[group 3]"));
    assert!(r.forced_unwind("DU2").unwrap().unwrap().active);
    assert!(
        !r.forced_unwind(stubs::account().as_str())
            .unwrap()
            .unwrap()
            .active
    );
    let versions = r.risk_config_history(10).unwrap();
    assert_eq!(versions.len(), 2, "every version kept: {versions:#?}");
    let latest = r.latest_risk_config().unwrap().unwrap();
    assert_eq!(latest.config.text, "dry_run = false\n");
    assert_eq!(
        latest.config.hash,
        tradeguard_engine::rules::ConfigSource::new("x", "dry_run = false\n").hash
    );
    assert_eq!(latest.config.applied_at_ms, 1_741_100_400_000);
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_undecodable_record_stops_the_load_with_its_seq() {
    let db = temp_db();
    let store = open_store(&db.path);
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1)));
    let j = tradeguard_engine::StoreJournal::new(&store, clock, stubs::account());
    j.append(JournalRecord::OrderIdUsed(OrderId(5)))
        .await
        .unwrap();
    // A record kind this build does not know (written by a newer version).
    store
        .write(WriteCmd::AppendJournal(NewJournalEntry {
            ts_ms: 2,
            kind: "from_the_future".into(),
            record: serde_json::json!({ "kind": "from_the_future", "data": 1 }),
        }))
        .await
        .unwrap();
    j.append(JournalRecord::OrderIdUsed(OrderId(6)))
        .await
        .unwrap();
    let e = j.load().await.unwrap_err();
    assert_eq!(e.code(), "journal.decode");
    assert!(
        matches!(&e, JournalError::Decode { seq: 2, kind, .. } if kind == "from_the_future"),
        "{e:?}"
    );
    store.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_closed_store_means_no_broker_call() {
    let db = temp_db();
    let b = broker(sim_cfg(13));
    let store = open_store(&db.path);
    let j: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&b)));
    let c = start_on(b.clone(), j, engine_cfg(), venue_now(&b)).await;
    // The writer stops (e.g. the store was shut down under the engine).
    store.close().await.unwrap();
    let e = c
        .submit(OrderIntent::new(Purpose::Open, stubs::account()).leg(
            opt(Right::Put, 480),
            Side::Buy,
            1,
            OrderType::Limit { limit: px("30") },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "store.closed");
    sleep_ms(1_000).await;
    assert!(b.open_orders().await.unwrap().is_empty());
    assert!(executions(&b).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_refused_projection_fails_the_whole_append_and_no_order_is_sent() {
    let db = temp_db();
    let b = broker(sim_cfg(14));
    let store = open_store(&db.path);
    let j: Arc<dyn Journal> = Arc::new(store_journal(&store, venue_now(&b)));
    let c = start_on(b.clone(), j, engine_cfg(), venue_now(&b)).await;
    // An intent without an account: the group's row cannot be written (its account is
    // required), so the group record is refused as a whole and nothing reaches the broker.
    let e = c
        .submit(OrderIntent::new(Purpose::Open, AccountId::new("")).leg(
            opt(Right::Put, 480),
            Side::Buy,
            1,
            OrderType::Limit { limit: px("30") },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "store.invalid_input", "{e}");
    sleep_ms(1_000).await;
    assert!(b.open_orders().await.unwrap().is_empty());
    assert!(executions(&b).await.is_empty());
    let kinds: Vec<String> = store
        .reader()
        .journal_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.entry.kind)
        .collect();
    assert!(kinds.contains(&"audit".to_owned()), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == "group" || k == "order_id_used"),
        "the refused group record was not half-written: {kinds:?}"
    );
    drop(c);
    store.close().await.unwrap();
}

/// The strategy an emergency close locked reaches the strategies/legs tables with every leg
/// (Broken, then Closed when the close completed), and the journal gives back exactly the same
/// strategy — instruments with underlying, expiry, strike, right and multiplier, roles, prices.
#[tokio::test(start_paused = true)]
async fn a_broken_strategy_is_stored_with_its_legs_and_loads_back_exactly() {
    use tradeguard_engine::assignment::stubs::reference_condor;
    use tradeguard_engine::assignment::{ClosePhase, CloseSnapshot, EmergencyClose};
    use tradeguard_model::{BrokenReason, Instrument, LegRole, StrategyState as ModelState};
    let db = temp_db();
    let store = open_store(&db.path);
    let j = store_journal(&store, start_ts());
    let expiry = chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap();
    let mut condor = reference_condor(77, stubs::account(), expiry);
    // A stock leg too, with a non-default multiplier on one option.
    condor.legs.push(tradeguard_model::Leg {
        instrument: Instrument::stock("SPY"),
        qty: 200,
        role: LegRole::Stock,
        avg_price: px("440.00"),
    });
    if let Instrument::Option(o) = &mut condor.legs[0].instrument {
        o.multiplier = 10;
    }
    let short_put = condor.legs[1].instrument.id();
    condor
        .mark_broken(BrokenReason::Assigned {
            instrument: short_put,
        })
        .unwrap();
    let mut snap = CloseSnapshot {
        close: EmergencyClose {
            strategy: condor.id,
            account: stubs::account(),
            record: 1,
            orders: Vec::new(),
            kept: Vec::new(),
            release_at: start_ts(),
            phase: ClosePhase::Armed,
            intended: false,
            expected: Vec::new(),
            verifying_since: None,
            how: String::new(),
        },
        strategy: Some(condor.clone()),
    };
    j.append(JournalRecord::EmergencyClose(Box::new(snap.clone())))
        .await
        .unwrap();

    let row = store.reader().strategy("77").unwrap().expect("row written");
    assert_eq!(row.state, StrategyState::Broken);
    assert_eq!(row.broken_reason.as_deref(), Some("broken.assigned"));
    assert_eq!(
        (row.kind.as_str(), row.underlying.as_str()),
        ("iron_condor", "SPY")
    );
    assert_eq!(row.legs.len(), condor.legs.len());
    for (r, l) in row.legs.iter().zip(&condor.legs) {
        assert_eq!(r.symbol, l.instrument.id().to_string());
        assert_eq!(r.qty, l.qty);
        assert_eq!(r.open_price_e4, Some(l.avg_price.raw()));
    }
    let back = j.load().await.unwrap();
    let restored = back.emergency_closes[&condor.id].strategy.as_ref().unwrap();
    assert_eq!(restored, &condor, "exact round trip through the journal");

    // The close completed: the row is Closed, legs kept.
    let mut closed = condor.clone();
    closed.begin_close().unwrap();
    closed.mark_closed().unwrap();
    snap.close.phase = ClosePhase::Completed;
    snap.strategy = Some(closed);
    j.append(JournalRecord::EmergencyClose(Box::new(snap)))
        .await
        .unwrap();
    let row = store.reader().strategy("77").unwrap().unwrap();
    assert_eq!(row.state, StrategyState::Closed);
    assert_eq!(row.legs.len(), condor.legs.len());
    let back = j.load().await.unwrap();
    assert_eq!(
        back.emergency_closes[&condor.id]
            .strategy
            .as_ref()
            .unwrap()
            .state,
        ModelState::Closed
    );
}
