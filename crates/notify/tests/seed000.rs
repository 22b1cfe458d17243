//! Seed 000's reference iron condor (SPY 21MAR25 435/440/460/465 ×2) on the simulated venue,
//! the production guard with the off-desk relay wired as the app and `tradeguard guard` wire
//! it: the short put is assigned, and the trader gets the email (loopback SMTP server) and the
//! webhook (axum receiver) with the assignment's details, then the close's end with every order
//! the guard sent and its id.
//! The time from detection to each delivery is measured and printed (the figure is reported in
//! the README; this test asserts delivery and content, not speed).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{HookServer, SmtpServer, unfold_qp, until};
use tradeguard_engine::assignment::{AssignmentConfig, RecordingNotifier, UsEquityHours};
use tradeguard_engine::enforce::{EnforceConfig, Guard, GuardDeps, NoRules};
use tradeguard_engine::{EngineConfig, IntrinsicStressModel, Journal, MemoryJournal, TokioClock};
use tradeguard_model::{
    Broker, Instrument, Money, OptionContract, Position, Price, Right, Timestamp, stubs,
};
use tradeguard_notify::{AlertsConfig, MemorySecrets, Relay, RelayDeps, RetryPolicy, SecretStore};
use tradeguard_sim::{
    DeliveryReport, FaultConfig, MarketConfig, MatchingConfig, SimBroker, SimConfig, SimVenue,
    Speed, UnderlyingSpec, calendar,
};

fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn opt(right: Right, strike: i64) -> Instrument {
    Instrument::Option(OptionContract::equity(
        "SPY",
        chrono::NaiveDate::from_ymd_opt(2025, 3, 21).unwrap(),
        right,
        Price::from_units(strike).unwrap(),
    ))
}

fn pos(i: Instrument, qty: i64, cost: &str) -> Position {
    Position {
        account: stubs::account(),
        instrument: i,
        qty,
        avg_cost: px(cost),
    }
}

fn venue(start: Timestamp) -> SimConfig {
    let assignment = tradeguard_sim::AssignmentConfig {
        report: DeliveryReport::batch(),
        ..Default::default()
    };
    SimConfig {
        seed: 0,
        start,
        account: stubs::account(),
        cash: Money::from_units(1_000_000).unwrap(),
        positions: vec![
            pos(opt(Right::Put, 435), 2, "1.00"),
            pos(opt(Right::Put, 440), -2, "2.00"),
            pos(opt(Right::Call, 460), -2, "2.00"),
            pos(opt(Right::Call, 465), 2, "1.00"),
        ],
        underlyings: vec![UnderlyingSpec {
            symbol: "SPY".into(),
            price: px("450"),
            vol: 0.001,
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
        assignment,
        faults: FaultConfig::default(),
        scheduled: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_condor_assignment_reaches_email_and_webhook() {
    let (smtp, hook) = (SmtpServer::start().await, HookServer::start().await);
    let secrets = MemorySecrets::new();
    secrets.set("json", &hook.url("/hook")).unwrap();
    let config = AlertsConfig::parse(&format!(
        "[[channel]]\nname = \"mail\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"guard@example.com\"\nto = [\"trader@example.com\"]\n\n[[channel]]\nname = \"json\"\ntype = \"webhook\"\n",
        smtp.port
    ))
    .unwrap();

    // Tuesday 10:00 New York: the market is open, the close goes out at once.
    let start = calendar::et_time(chrono::NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(), 10, 0);
    let b = Arc::new(SimBroker::new(
        SimVenue::new(venue(start)).unwrap(),
        Speed::RealTime,
    ));
    b.connect().await.unwrap();
    let journal = MemoryJournal::new();
    let (sink, inbox) = tradeguard_notify::inbox();
    let mut risk = IntrinsicStressModel::default();
    risk.fallback_spots.insert("SPY".into(), px("450"));
    let guard = Guard::start(GuardDeps {
        broker: b.clone(),
        journal: Arc::new(journal.reopen()),
        clock: Arc::new(TokioClock::new(start)),
        risk: Box::new(risk),
        engine: EngineConfig {
            watch_symbols: vec!["SPY".into()],
            ..EngineConfig::default()
        },
        enforce: EnforceConfig::default(),
        evaluator: Box::new(NoRules),
        hours: Arc::new(UsEquityHours::fixed_offset(calendar::ET_OFFSET_SECS)),
        backstops: Vec::new(),
        notifier: Arc::new(RecordingNotifier::new()),
        assignment: AssignmentConfig::default(),
        relay: Some(sink),
    })
    .await
    .unwrap();
    let state = journal.load().await.unwrap();
    let relay = Relay::start(
        RelayDeps {
            config,
            secrets: Arc::new(secrets),
            journal: Arc::new(journal.reopen()),
            clock: Arc::new(TokioClock::new(start)),
            alerter: guard.alerter(),
            pending: state.pending_deliveries.into_values().collect(),
            last_id: state.last_delivery_id,
            retry: RetryPolicy::default(),
        },
        inbox,
    )
    .await;
    let mut alerts = guard.subscribe_alerts();
    tokio::time::sleep(Duration::from_millis(500)).await;

    b.force_assignment(&opt(Right::Put, 440).id(), 2).unwrap();
    let detected = loop {
        let a = tokio::time::timeout(Duration::from_secs(20), alerts.recv())
            .await
            .expect("the assignment is detected")
            .unwrap();
        if a.code == "assignment.detected" {
            break Instant::now();
        }
    };
    let mail_with = |s: &str| {
        smtp.mails()
            .into_iter()
            .find(|m| unfold_qp(&m.data).contains(s))
    };
    assert!(
        until(Duration::from_secs(30), || mail_with("ASSIGNMENT")
            .is_some()
            && hook
                .hits()
                .iter()
                .any(|h| h.body.contains("assignment.detected")))
        .await,
        "mails {:?} hits {:?}",
        smtp.mails(),
        hook.hits()
    );
    let mail = mail_with("ASSIGNMENT").unwrap();
    let hit = hook
        .hits()
        .into_iter()
        .find(|h| h.body.contains("assignment.detected"))
        .unwrap();
    let (to_mail, to_hook) = (
        mail.at.saturating_duration_since(detected),
        hit.at.saturating_duration_since(detected),
    );
    println!(
        "seed 000 condor assignment: email {:.1} ms, webhook {:.1} ms after detection",
        to_mail.as_secs_f64() * 1e3,
        to_hook.as_secs_f64() * 1e3
    );

    // What seed 000 lists: symbol, strike, strategy, what was assigned, delivered stock, the
    // close plan, what to do.
    let text = unfold_qp(&mail.data);
    for s in [
        "Subject: [Tradeguard CRITICAL] ASSIGNMENT: SPY 21MAR25 440 P",
        "assigned",
        "Broken",
        "200 SPY",
        "460 C",
        "What to do:",
    ] {
        assert!(text.contains(s), "{s:?} not in the email:\n{text}");
    }
    let json = hit.json();
    assert_eq!(json["message"]["severity"], "CRITICAL");
    assert!(
        json["message"]["title"]
            .as_str()
            .unwrap()
            .contains("SPY 21MAR25 440 P")
    );

    // Then the close's end: every order the guard sent with its id and fill.
    assert!(
        until(Duration::from_secs(30), || mail_with(
            "assignment.close_completed"
        )
        .is_some())
        .await,
        "no close alert by email: {:?}",
        smtp.mails()
            .iter()
            .map(|m| unfold_qp(&m.data))
            .collect::<Vec<_>>()
    );
    let done = unfold_qp(&mail_with("assignment.close_completed").unwrap().data);
    for s in [
        "buy to close SPY 21MAR25 460 C ×2 [order ",
        "sell 200 SPY [order ",
        "Filled",
    ] {
        assert!(done.contains(s), "{s:?} not in {done}");
    }
    relay.shutdown();
    guard.shutdown().await;
}
