//! On the trader's desk with IB (issue "On the trader's desk with IB", point 1): the app
//! connects to the gateway first and starts the guard after, so the guard's live book must
//! start from the adapter's connection state, not from "unknown" until the next reconnect.

mod common;
use common::px;
use std::sync::Arc;
use std::time::Duration;
use tradeguard_engine::assignment::{AlwaysOpen, AssignmentConfig, RecordingNotifier};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, NoRules};
use tradeguard_engine::{EngineConfig, IntrinsicStressModel, MemoryJournal};
use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig};
use tradeguard_ibkr::{IbBroker, IbSettings};
use tradeguard_model::{ConnectionState, SystemClock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_is_known_from_the_first_connect() {
    let f = FakeTws::start(FakeTwsConfig {
        accounts: vec!["DU-TEST".into()],
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    f.use_wall_clock();
    let clock: Arc<dyn tradeguard_model::Clock> = Arc::new(SystemClock);
    let ib = Arc::new(IbBroker::new(
        IbSettings {
            port: f.port(),
            client_id: 9,
            account: "DU-TEST".into(),
            ..IbSettings::default()
        },
        clock.clone(),
    ));
    // As the app and the headless guard do: connect (the account is known only then), then
    // start the guard.
    ib.connect_ib().await.unwrap();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("450"));
    let g = Guard::start(GuardDeps {
        broker: ib,
        journal: Arc::new(MemoryJournal::new()),
        clock,
        risk: Box::new(risk),
        engine: EngineConfig::default(),
        enforce: EnforceConfig::default(),
        evaluator: Box::new(NoRules),
        hours: Arc::new(AlwaysOpen),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = g.read_live_book(|b| b.connection().cloned());
        if c == Some(ConnectionState::Connected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live book's connection is {c:?}, not Connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    g.shutdown().await;
}
