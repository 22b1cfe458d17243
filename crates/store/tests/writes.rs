//! Write/read behaviour of every table, group commit, savepoint isolation and WAL reads.

mod common;

use common::{open, open_with_account, temp_db};
use tradeguard_store::{
    GroupState, OrderStatus, StoreError, StrategyState, WriteCmd, WriteOutcome, stubs,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_upsert_replaces_legs_and_broken_state_keeps_reason() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let mut st = stubs::strategy("S1", "U1");
    s.write(WriteCmd::UpsertStrategy(st.clone())).await.unwrap();
    assert_eq!(s.reader().strategy("S1").unwrap().unwrap(), st);

    st.legs.truncate(1);
    st.legs[0].qty = -3;
    st.opened_at_ms = stubs::T0_MS + 3;
    st.updated_at_ms = stubs::T0_MS + 3;
    s.write(WriteCmd::UpsertStrategy(st.clone())).await.unwrap();
    let got = s.reader().strategy("S1").unwrap().unwrap();
    assert_eq!(got.legs, st.legs);
    assert_eq!(got.updated_at_ms, stubs::T0_MS + 3);
    assert_eq!(
        got.opened_at_ms,
        stubs::strategy("S1", "U1").opened_at_ms,
        "a strategy keeps the time it was first written"
    );

    let out = s
        .write(WriteCmd::SetStrategyState {
            strategy_id: "S1".into(),
            state: StrategyState::Broken,
            reason: Some("short put assigned".into()),
            at_ms: stubs::T0_MS + 5,
        })
        .await
        .unwrap();
    assert_eq!(out, WriteOutcome::Applied);
    let got = s.reader().strategy("S1").unwrap().unwrap();
    assert_eq!(got.state, StrategyState::Broken);
    assert_eq!(got.broken_reason.as_deref(), Some("short put assigned"));
    assert_eq!(got.updated_at_ms, stubs::T0_MS + 5);
    assert_eq!(s.reader().strategies("U1").unwrap().len(), 1);

    let err = s
        .write(WriteCmd::SetStrategyState {
            strategy_id: "nope".into(),
            state: StrategyState::Closed,
            reason: None,
            at_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::NotFound {
            what: "strategy",
            key: "nope".into()
        }
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_raise_the_high_water_mark_which_never_decreases() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    assert_eq!(s.reader().highest_order_id().unwrap(), 0);
    let mut o = stubs::order(41, "U1");
    s.write(WriteCmd::UpsertOrder(o.clone())).await.unwrap();
    assert_eq!(s.reader().highest_order_id().unwrap(), 41);
    assert_eq!(
        s.write(WriteCmd::RaiseHighestOrderId(100)).await.unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        s.write(WriteCmd::RaiseHighestOrderId(7)).await.unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(
        s.write(WriteCmd::RaiseHighestOrderId(100)).await.unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(s.reader().highest_order_id().unwrap(), 100);

    o.broker_order_id = Some("B-77".into());
    o.status = OrderStatus::PartiallyFilled;
    o.filled_qty = 1;
    o.qty = 2;
    s.write(WriteCmd::UpsertOrder(o.clone())).await.unwrap();
    assert_eq!(s.reader().order(41).unwrap().unwrap(), o);
    assert_eq!(
        s.reader()
            .order_by_broker_id("B-77")
            .unwrap()
            .unwrap()
            .order_id,
        41
    );
    assert_eq!(s.reader().open_orders("U1").unwrap().len(), 1);
    o.status = OrderStatus::Filled;
    o.filled_qty = 2;
    s.write(WriteCmd::UpsertOrder(o)).await.unwrap();
    assert!(s.reader().open_orders("U1").unwrap().is_empty());
    assert_eq!(s.reader().highest_order_id().unwrap(), 100);
    let path = s.path().to_path_buf();
    s.close().await.unwrap();

    // The database itself refuses to lower the mark, whoever writes.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let err = raw
        .execute("UPDATE order_id_hwm SET highest = 5", [])
        .unwrap_err();
    assert!(err.to_string().contains("never decreases"), "{err}");
    assert!(raw.execute("DELETE FROM order_id_hwm", []).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_execution_is_ignored_idempotently() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let e = stubs::execution("E1", "U1");
    assert_eq!(
        s.write(WriteCmd::InsertExecution(e.clone())).await.unwrap(),
        WriteOutcome::Applied
    );
    let mut again = e.clone();
    again.price_e4 = 9_9999; // a replay must not overwrite the first report
    assert_eq!(
        s.write(WriteCmd::InsertExecution(again)).await.unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(s.reader().execution("E1").unwrap().unwrap(), e);
    assert!(s.reader().has_execution("E1").unwrap());
    assert!(!s.reader().has_execution("E2").unwrap());
    let all = s.reader().executions("U1", 0, i64::MAX).unwrap();
    assert_eq!(all, vec![e]);
    assert!(
        s.reader()
            .executions("U1", stubs::T0_MS + 1, i64::MAX)
            .unwrap()
            .is_empty()
    );

    let a = stubs::assignment("A1", "U1");
    assert_eq!(
        s.write(WriteCmd::InsertAssignment(a.clone()))
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        s.write(WriteCmd::InsertAssignment(a.clone()))
            .await
            .unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(s.reader().assignments("U1").unwrap(), vec![a]);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_groups_stop_loss_unwind_config_and_snapshots_roundtrip() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    s.write(WriteCmd::UpsertStrategy(stubs::strategy("S1", "U1")))
        .await
        .unwrap();

    let mut g = stubs::group("G1", "U1");
    s.write(WriteCmd::UpsertExecutionGroup(g.clone()))
        .await
        .unwrap();
    assert_eq!(s.reader().execution_group("G1").unwrap().unwrap(), g);
    assert_eq!(s.reader().active_execution_groups("U1").unwrap().len(), 1);
    g.state = GroupState::Broken;
    g.reason = Some("second leg rejected".into());
    g.legs[0].filled_qty = -1;
    s.write(WriteCmd::UpsertExecutionGroup(g.clone()))
        .await
        .unwrap();
    assert_eq!(s.reader().execution_group("G1").unwrap().unwrap(), g);
    assert!(s.reader().active_execution_groups("U1").unwrap().is_empty());

    let sl = stubs::stop_loss("S1");
    s.write(WriteCmd::UpsertStopLoss(sl.clone())).await.unwrap();
    assert_eq!(s.reader().stop_loss("S1").unwrap().unwrap(), sl);

    assert!(s.reader().forced_unwind("U1").unwrap().is_none());
    s.write(WriteCmd::SetForcedUnwind(stubs::forced_unwind("U1", true)))
        .await
        .unwrap();
    assert!(s.reader().forced_unwind("U1").unwrap().unwrap().active);
    s.write(WriteCmd::SetForcedUnwind(stubs::forced_unwind("U1", false)))
        .await
        .unwrap();
    assert!(!s.reader().forced_unwind("U1").unwrap().unwrap().active);

    let v1 = s
        .write(WriteCmd::ApplyRiskConfig(stubs::risk_config("a = 1")))
        .await
        .unwrap();
    let v2 = s
        .write(WriteCmd::ApplyRiskConfig(stubs::risk_config("a = 22")))
        .await
        .unwrap();
    assert_eq!(
        (v1, v2),
        (
            WriteOutcome::Inserted { id: 1 },
            WriteOutcome::Inserted { id: 2 }
        )
    );
    let latest = s.reader().latest_risk_config().unwrap().unwrap();
    assert_eq!((latest.version, latest.config.text.as_str()), (2, "a = 22"));
    assert_eq!(s.reader().risk_config_history(10).unwrap().len(), 2);

    for i in 0..10 {
        s.write(WriteCmd::RecordSnapshot(stubs::snapshot(
            "U1",
            stubs::T0_MS + i * 60_000,
        )))
        .await
        .unwrap();
    }
    let window = s
        .reader()
        .snapshots("U1", stubs::T0_MS + 60_000, stubs::T0_MS + 4 * 60_000)
        .unwrap();
    let ts: Vec<i64> = window
        .iter()
        .map(|x| (x.ts_ms - stubs::T0_MS) / 60_000)
        .collect();
    assert_eq!(ts, vec![1, 2, 3]);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_acknowledged_once() {
    let db = temp_db();
    let s = open(&db.path);
    let WriteOutcome::Inserted { id } = s
        .write(WriteCmd::RaiseAlert(stubs::alert("margin")))
        .await
        .unwrap()
    else {
        panic!("alert insert must return its id");
    };
    s.write(WriteCmd::RaiseAlert(stubs::alert("other")))
        .await
        .unwrap();
    assert_eq!(s.reader().alerts(true, 10).unwrap().len(), 2);
    let ack = WriteCmd::AcknowledgeAlert {
        alert_id: id,
        at_ms: stubs::T0_MS + 9,
    };
    assert_eq!(s.write(ack.clone()).await.unwrap(), WriteOutcome::Applied);
    assert_eq!(s.write(ack).await.unwrap(), WriteOutcome::Unchanged);
    let open_alerts = s.reader().alerts(true, 10).unwrap();
    assert_eq!(open_alerts.len(), 1);
    assert_eq!(open_alerts[0].alert.kind, "other");
    let all = s.reader().alerts(false, 10).unwrap();
    assert_eq!(
        all.iter().find(|a| a.id == id).unwrap().acknowledged_at_ms,
        Some(stubs::T0_MS + 9)
    );
    let err = s
        .write(WriteCmd::AcknowledgeAlert {
            alert_id: 999,
            at_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store.not_found");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_append_only_even_for_raw_sql() {
    let db = temp_db();
    let s = open(&db.path);
    for i in 0..5 {
        s.write(WriteCmd::Audit(stubs::audit(
            stubs::T0_MS + i,
            &format!("s{i}"),
        )))
        .await
        .unwrap();
    }
    let page = s.reader().audit_after(2, 10).unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(page[0].entry, stubs::audit(stubs::T0_MS + 2, "s2"));
    let range = s
        .reader()
        .audit_range(stubs::T0_MS + 1, stubs::T0_MS + 3, 100)
        .unwrap();
    assert_eq!(range.len(), 2);
    let latest = s.reader().audit_latest(2).unwrap();
    assert_eq!(
        latest.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![5, 4],
        "newest first"
    );
    s.close().await.unwrap();

    let raw = rusqlite::Connection::open(&db.path).unwrap();
    for sql in [
        "UPDATE audit_log SET reason = 'edited'",
        "DELETE FROM audit_log WHERE id = 1",
    ] {
        let err = raw.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = raw
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_does_not_sink_its_group_and_batches_are_atomic() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let w = s.writer();
    // Concurrent: valid audits interleaved with orders for a missing account (FK violation).
    let mut tasks = Vec::new();
    for i in 0..40_i64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                w.write(WriteCmd::UpsertOrder(stubs::order(i + 1, "missing")))
                    .await
            } else {
                w.write(WriteCmd::Audit(stubs::audit(i, "ok"))).await
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if i % 4 == 0 {
            assert_eq!(r.unwrap_err().code(), "store.constraint");
        } else {
            assert!(matches!(r.unwrap(), WriteOutcome::Inserted { .. }));
        }
    }
    assert_eq!(s.reader().audit_count().unwrap(), 30);
    assert!(s.reader().order(1).unwrap().is_none());

    // A batch with one bad command leaves nothing behind.
    let err = s
        .write_batch(vec![
            WriteCmd::Audit(stubs::audit(1, "batch")),
            WriteCmd::UpsertOrder(stubs::order(500, "missing")),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store.constraint");
    assert_eq!(s.reader().audit_count().unwrap(), 30);
    assert_eq!(s.reader().highest_order_id().unwrap(), 0);
    let outs = s
        .write_batch(vec![
            WriteCmd::UpsertOrder(stubs::order(501, "U1")),
            WriteCmd::InsertExecution(stubs::execution("E9", "U1")),
        ])
        .await
        .unwrap();
    assert_eq!(outs, vec![WriteOutcome::Applied, WriteOutcome::Applied]);
    let st = s.stats();
    assert_eq!(st.failed_requests, 11);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_are_committed_as_one_group() {
    let db = temp_db();
    let s = open(&db.path);
    // Hold the database write lock from outside so the writer stalls on its first group.
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    let w = s.writer();
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.write(WriteCmd::Audit(stubs::audit(0, "first"))).await }
    });
    let rest: Vec<_> = (1..=200)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move { w.write(WriteCmd::Audit(stubs::audit(i, "rest"))).await })
        })
        .collect();
    // Wait until all 201 requests are queued or in the (stalled) writer's hands.
    while s.stats().received_requests + (w.queued() as u64) < 201 {
        assert!(
            !first.is_finished(),
            "writer gave up while the lock was held: {:?}",
            s.stats()
        );
        tokio::task::yield_now().await;
    }
    raw.execute_batch("COMMIT").unwrap();
    first.await.unwrap().unwrap();
    for r in rest {
        r.await.unwrap().unwrap();
    }
    let st = s.stats();
    assert_eq!(st.committed_requests, 201);
    assert!(
        st.commits <= 3,
        "201 queued requests took {} commits",
        st.commits
    );
    assert_eq!(s.reader().audit_count().unwrap(), 201);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_committed_state_while_a_write_transaction_is_open() {
    let db = temp_db();
    let s = open(&db.path);
    s.write(WriteCmd::Audit(stubs::audit(0, "committed")))
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&db.path).unwrap();
    raw.execute_batch(
        "BEGIN IMMEDIATE; INSERT INTO audit_log (ts_ms, kind, subject, reason, details)
         VALUES (1, 'rule_fired', 'x', 'y', '{}');",
    )
    .unwrap();
    // A reader must not wait for (nor see) the open transaction.
    assert_eq!(s.reader().audit_count().unwrap(), 1);
    raw.execute_batch("COMMIT").unwrap();
    assert_eq!(s.reader().audit_count().unwrap(), 2);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_close_fail_with_closed_and_data_persists() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let w = s.writer();
    s.close().await.unwrap();
    let err = w
        .write(WriteCmd::Audit(stubs::audit(0, "late")))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Closed);
    let s = open(&db.path);
    assert_eq!(s.reader().accounts().unwrap(), vec![stubs::account("U1")]);
    assert_eq!(s.reader().audit_count().unwrap(), 0);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_commands_are_rejected_before_the_queue() {
    let db = temp_db();
    let s = open(&db.path);
    let mut o = stubs::order(1, "U1");
    o.qty = 0;
    let err = s.write(WriteCmd::UpsertOrder(o)).await.unwrap_err();
    assert_eq!(err.code(), "store.invalid_input");
    assert_eq!(s.stats().committed_requests + s.stats().failed_requests, 0);
    s.close().await.unwrap();
}
