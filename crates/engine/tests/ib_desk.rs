//! On the trader's desk with IB (issue "On the trader's desk with IB", point 1): the app
//! connects to the gateway first and starts the guard after, so the guard's live book must
//! start from the adapter's connection state, not from "unknown" until the next reconnect.

mod common;
use common::{guard_on_ib, ib_broker};
use std::time::Duration;
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig};
use tradeguard_model::ConnectionState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_is_known_from_the_first_connect() {
    let f = FakeTws::start(FakeTwsConfig {
        accounts: vec!["DU-TEST".into()],
        ..FakeTwsConfig::default()
    })
    .await
    .unwrap();
    f.use_wall_clock();
    let ib = ib_broker(f.port(), 9, "DU-TEST");
    // As the app and the headless guard do: connect (the account is known only then), then
    // start the guard.
    ib.connect_ib().await.unwrap();
    let g = guard_on_ib(
        ib,
        &[("SPY", "450")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await;
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
