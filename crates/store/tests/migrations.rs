//! Schema migrations: from an empty file and from every earlier schema version, data survives.

mod common;

use common::temp_db;
use rusqlite::Connection;
use tradeguard_store::{LATEST_VERSION, Store, StoreConfig, migrations};

/// Seeds rows into every table that exists at `version`, with raw SQL as an older build
/// would have written them.
fn seed(conn: &Connection, version: i64) {
    if version >= 1 {
        conn.execute_batch(
            "INSERT INTO accounts VALUES ('U1', 'ibkr', 'Main', 'USD', 1);
             INSERT INTO strategies VALUES ('S1', 'U1', 'put_credit_spread', 'SPY', 'broken', 'assigned', 1, 2);
             INSERT INTO legs VALUES ('S1', 0, 'SPY   240119P00470000', -1, 21500);
             INSERT INTO orders VALUES (42, 'B-42', 'U1', 'S1', NULL, 'SPY   240119P00470000', 'sell',
                                        1, 21500, 'filled', 1, 1, 2);
             INSERT INTO order_id_hwm VALUES (1, 57);
             INSERT INTO executions VALUES ('E1', 42, 'B-42', 'U1', 'SPY   240119P00470000', 'sell',
                                            1, 21500, 6500, 3);
             INSERT INTO audit_log (ts_ms, kind, subject, reason, details)
                 VALUES (5, 'order_sent', 'U1/S1', 'open spread', '{\"order_id\":42}');",
        )
        .unwrap();
    }
    if version >= 2 {
        conn.execute_batch(
            "INSERT INTO execution_groups VALUES ('G1', 'U1', 'S1', 'working', NULL,
                 '[{\"symbol\":\"X\",\"qty\":-1,\"order_id\":42,\"filled_qty\":0}]', 1, 1);
             INSERT INTO stop_loss VALUES ('S1', 'armed', 5000000, NULL, 1);
             INSERT INTO assignments VALUES ('A1', 'U1', 'SPY   240119P00470000', -1, 9);
             INSERT INTO alerts (account_id, severity, kind, text, created_at_ms)
                 VALUES ('U1', 'critical', 'margin', 'Margin call', 10);
             INSERT INTO forced_unwind VALUES ('U1', 1, 'margin call', 11);",
        )
        .unwrap();
    }
    if version >= 3 {
        conn.execute_batch(
            "INSERT INTO risk_config_versions (text, hash, applied_at_ms) VALUES ('a = 1', 'h1', 12);
             INSERT INTO account_snapshots VALUES ('U1', 13, 1, 2, 3, 4, 5);",
        )
        .unwrap();
    }
    if version >= 4 {
        conn.execute_batch(
            "INSERT INTO engine_journal (ts_ms, kind, record)
                 VALUES (14, 'order_id_used', '{\"kind\":\"order_id_used\",\"data\":57}');",
        )
        .unwrap();
    }
}

fn check(store: &Store, version: i64) {
    let r = store.reader();
    assert_eq!(r.schema_version().unwrap(), LATEST_VERSION);
    if version >= 1 {
        assert!(
            r.accounts()
                .unwrap()
                .iter()
                .any(|a| a.account_id == "U1" && a.name == "Main")
        );
        let s = r.strategy("S1").unwrap().unwrap();
        assert_eq!(
            (s.legs.len(), s.broken_reason.as_deref()),
            (1, Some("assigned"))
        );
        assert_eq!(r.order_by_broker_id("B-42").unwrap().unwrap().order_id, 42);
        assert_eq!(r.highest_order_id().unwrap(), 57);
        assert!(r.has_execution("E1").unwrap());
        let audit = r.audit_after(0, 10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].entry.details["order_id"], 42);
    }
    if version >= 2 {
        assert_eq!(
            r.execution_group("G1").unwrap().unwrap().legs[0].order_id,
            Some(42)
        );
        assert!(r.stop_loss("S1").unwrap().is_some());
        assert_eq!(r.assignments("U1").unwrap().len(), 1);
        assert_eq!(r.alerts(true, 10).unwrap()[0].alert.text, "Margin call");
        assert!(r.forced_unwind("U1").unwrap().unwrap().active);
    }
    if version >= 3 {
        assert_eq!(r.latest_risk_config().unwrap().unwrap().config.hash, "h1");
        assert_eq!(r.snapshots("U1", 0, 100).unwrap().len(), 1);
    }
    // The engine journal exists after any upgrade; it holds the seeded record only if the
    // file already had the table.
    let journal: Vec<_> = r
        .journal_after(0, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.kind == "order_id_used")
        .collect();
    if version >= 4 {
        assert_eq!(journal.len(), 1);
        assert_eq!(
            (journal[0].seq, journal[0].entry.kind.as_str()),
            (1, "order_id_used")
        );
        assert_eq!(journal[0].entry.record["data"], 57);
    } else {
        assert!(journal.is_empty());
    }
}

#[test]
fn migrations_validate() {
    migrations().validate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_an_empty_zero_byte_file() {
    let db = temp_db();
    std::fs::write(&db.path, b"").unwrap();
    let s = Store::open(StoreConfig::new(&db.path)).unwrap();
    assert_eq!(s.reader().schema_version().unwrap(), LATEST_VERSION);
    assert_eq!(s.reader().integrity_check().unwrap(), vec!["ok".to_owned()]);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_from_every_earlier_version_and_keeps_data() {
    for version in 0..=LATEST_VERSION {
        let db = temp_db();
        {
            let mut conn = Connection::open(&db.path).unwrap();
            let target = usize::try_from(version).unwrap();
            migrations().to_version(&mut conn, target).unwrap();
            seed(&conn, version);
        }
        let s = Store::open(StoreConfig::new(&db.path))
            .unwrap_or_else(|e| panic!("open from v{version}: {e}"));
        check(&s, version);
        // The upgraded database accepts writes into every table.
        s.write(tradeguard_store::WriteCmd::UpsertAccount(
            tradeguard_store::stubs::account("U2"),
        ))
        .await
        .unwrap();
        s.write(tradeguard_store::WriteCmd::RecordSnapshot(
            tradeguard_store::stubs::snapshot("U2", 1),
        ))
        .await
        .unwrap();
        let seq = s
            .write(tradeguard_store::WriteCmd::AppendJournal(
                tradeguard_store::stubs::journal_entry(20, "group"),
            ))
            .await
            .unwrap();
        let expected = if version >= 4 { 2 } else { 1 };
        assert_eq!(
            seq,
            tradeguard_store::WriteOutcome::Inserted { id: expected }
        );
        s.close().await.unwrap();
        // Reopening a current database is a no-op migration.
        let s = Store::open(StoreConfig::new(&db.path)).unwrap();
        check(&s, version);
        s.close().await.unwrap();
    }
}
