//! The engine journal table: append-only, ordered by `seq`, paged reads, validated appends,
//! and the helper commands its projection uses (ensure account / strategy, clear Broken).

mod common;

use common::{open, open_with_account, temp_db};
use tradeguard_store::{StoreError, StrategyState, WriteCmd, WriteOutcome, stubs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_records_come_back_in_commit_order_and_page() {
    let db = temp_db();
    let s = open(&db.path);
    let w = s.writer();
    // Concurrent appends: seq is the commit order, dense and increasing.
    let mut tasks = Vec::new();
    for i in 0..50_i64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            w.write(WriteCmd::AppendJournal(stubs::journal_entry(i, "audit")))
                .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            WriteOutcome::Inserted { id } => seqs.push(id),
            other => panic!("{other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = s.reader().journal_after(after, 7).unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page);
    }
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|p| p[0].seq < p[1].seq));
    // The record written for seq n is the one whose ack said n.
    for e in &all {
        assert_eq!(e.entry.record["data"]["n"], e.entry.ts_ms);
        assert_eq!(e.entry.kind, "audit");
    }
    assert_eq!(s.reader().journal_count().unwrap(), 50);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_is_append_only_even_for_raw_sql_and_rejects_bad_json() {
    let db = temp_db();
    let s = open(&db.path);
    s.write(WriteCmd::AppendJournal(stubs::journal_entry(1, "group")))
        .await
        .unwrap();
    let e = s
        .write(WriteCmd::AppendJournal(tradeguard_store::NewJournalEntry {
            ts_ms: 1,
            kind: "group".into(),
            record: serde_json::Value::Null,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "store.invalid_input");
    s.close().await.unwrap();

    let raw = rusqlite::Connection::open(&db.path).unwrap();
    for sql in [
        "UPDATE engine_journal SET kind = 'edited'",
        "DELETE FROM engine_journal WHERE seq = 1",
    ] {
        let err = raw.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let err = raw
        .execute(
            "INSERT INTO engine_journal (ts_ms, kind, record) VALUES (1, 'x', 'not json')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
    let n: i64 = raw
        .query_row("SELECT count(*) FROM engine_journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_commands_never_overwrite_and_clear_broken_only_clears_broken() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let mut placeholder = stubs::account("U1");
    placeholder.name = "placeholder".into();
    assert_eq!(
        s.write(WriteCmd::EnsureAccount(placeholder)).await.unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(s.reader().accounts().unwrap()[0].name, "Account U1");
    let mut fresh = stubs::account("U9");
    fresh.name = "new".into();
    assert_eq!(
        s.write(WriteCmd::EnsureAccount(fresh)).await.unwrap(),
        WriteOutcome::Applied
    );

    // A missing strategy gets a placeholder row; an existing one is untouched.
    s.write(WriteCmd::UpsertStrategy(stubs::strategy("S1", "U1")))
        .await
        .unwrap();
    let ensure = |id: &str| WriteCmd::EnsureStrategy {
        strategy_id: id.into(),
        account_id: "U1".into(),
        underlying: Some("QQQ".into()),
        at_ms: 7,
    };
    assert_eq!(
        s.write(ensure("S1")).await.unwrap(),
        WriteOutcome::Unchanged
    );
    assert_eq!(s.reader().strategy("S1").unwrap().unwrap().legs.len(), 2);
    assert_eq!(s.write(ensure("S2")).await.unwrap(), WriteOutcome::Applied);
    let s2 = s.reader().strategy("S2").unwrap().unwrap();
    assert_eq!(
        (s2.kind.as_str(), s2.underlying.as_str(), s2.state),
        ("unknown", "QQQ", StrategyState::Open)
    );
    // Placeholder for a missing account is refused by the foreign key.
    let e = s
        .write(WriteCmd::EnsureStrategy {
            strategy_id: "S3".into(),
            account_id: "nobody".into(),
            underlying: None,
            at_ms: 7,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Constraint { .. }), "{e:?}");

    // Clearing Broken: only a broken strategy changes, to open without a reason.
    let clear = |id: &str| WriteCmd::ClearStrategyBroken {
        strategy_id: id.into(),
        at_ms: 9,
    };
    assert_eq!(s.write(clear("S1")).await.unwrap(), WriteOutcome::Unchanged);
    s.write(WriteCmd::SetStrategyState {
        strategy_id: "S1".into(),
        state: StrategyState::Broken,
        reason: Some("broken.assigned".into()),
        at_ms: 8,
    })
    .await
    .unwrap();
    assert_eq!(s.write(clear("S1")).await.unwrap(), WriteOutcome::Applied);
    let s1 = s.reader().strategy("S1").unwrap().unwrap();
    assert_eq!(
        (s1.state, s1.broken_reason, s1.updated_at_ms),
        (StrategyState::Open, None, 9)
    );
    assert_eq!(
        s.write(clear("missing")).await.unwrap(),
        WriteOutcome::Unchanged
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_batch_is_atomic_and_acked_after_commit() {
    let db = temp_db();
    let s = open_with_account(&db.path).await;
    let w = s.writer();
    let ok = tokio::task::spawn_blocking({
        let w = w.clone();
        move || {
            w.write_batch_blocking(vec![
                WriteCmd::AppendJournal(stubs::journal_entry(1, "group")),
                WriteCmd::UpsertExecutionGroup(stubs::group("G1", "U1")),
            ])
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ok[0], WriteOutcome::Inserted { id: 1 });
    assert!(s.reader().execution_group("G1").unwrap().is_some());
    // The second command violates the account foreign key: the journal row is not kept either.
    let err = tokio::task::spawn_blocking(move || {
        w.write_batch_blocking(vec![
            WriteCmd::AppendJournal(stubs::journal_entry(2, "group")),
            WriteCmd::UpsertExecutionGroup(stubs::group("G2", "missing")),
        ])
    })
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.code(), "store.constraint");
    assert_eq!(s.reader().journal_count().unwrap(), 1);
    assert!(s.reader().execution_group("G2").unwrap().is_none());
    s.close().await.unwrap();
}
