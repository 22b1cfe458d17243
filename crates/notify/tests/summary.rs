//! The daily summary task on the production guard over the simulated demo venue, in paused
//! virtual time: one summary after its time on a trading day, with the positions and the
//! alerts of the day, none again that day, and none after a restart that already sent it.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradeguard_engine::alert::{Alert, AlertSink, Severity};
use tradeguard_engine::enforce::{EnforceConfig, NoRules};
use tradeguard_engine::{TokioClock, calendar};
use tradeguard_model::{Broker, Timestamp};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Alert>>>);

impl AlertSink for Sink {
    fn accept(&self, a: &Alert) {
        self.0.lock().unwrap().push(a.clone());
    }
}

fn et(h: u32, m: u32) -> Timestamp {
    // Tuesday 4 March 2025 (the demo's day), a trading day.
    calendar::new_york_instant(
        chrono::NaiveDate::from_ymd_opt(2025, 3, 4)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap(),
    )
}

async fn guard(start: Timestamp) -> tradeguard_engine::enforce::Guard {
    let mut scenario = tradeguard_sim::Scenario::demo(1);
    scenario.config.start = start;
    let b = Arc::new(tradeguard_sim::SimBroker::new(
        scenario.venue().unwrap(),
        tradeguard_sim::Speed::RealTime,
    ));
    b.connect().await.unwrap();
    tradeguard_engine::stubs::production_guard(
        b,
        Arc::new(TokioClock::new(start)),
        Arc::new(tradeguard_engine::assignment::AlwaysOpen),
        &[("SPY", "575")],
        EnforceConfig::default(),
        Box::new(NoRules),
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_summary_after_its_time_with_the_day_in_it() {
    let start = et(16, 28);
    let g = guard(start).await;
    let sink = Sink::default();
    let at = chrono::NaiveTime::from_hms_opt(16, 30, 0).unwrap();
    let last = Arc::new(Mutex::new(None));
    let task = tradeguard_notify::summary::spawn(
        g.clone(),
        Arc::new(sink.clone()),
        Arc::new(TokioClock::new(start)),
        at,
        last.clone(),
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    g.raise_alert(Severity::Warning, "stop.cancel_rejected", "test".into())
        .await;
    assert!(sink.0.lock().unwrap().is_empty(), "nothing before 16:30");
    tokio::time::sleep(Duration::from_secs(120)).await;
    {
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        let a = &got[0];
        assert_eq!(a.code, "summary.daily");
        assert!(
            a.message.starts_with("Daily summary Tue 2025-03-04: "),
            "{}",
            a.message
        );
        assert!(
            a.message.contains("positions, unrealized P&L"),
            "{}",
            a.message
        );
        assert!(
            a.message.contains("stop.cancel_rejected ×1"),
            "{}",
            a.message
        );
    }
    // Hours later the same day: nothing more.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    assert_eq!(sink.0.lock().unwrap().len(), 1);
    task.abort();

    // A restart the same evening that knows the summary went out sends none.
    let again = Sink::default();
    let t = tradeguard_notify::summary::spawn(
        g.clone(),
        Arc::new(again.clone()),
        Arc::new(TokioClock::new(et(20, 0))),
        at,
        last,
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(again.0.lock().unwrap().is_empty());
    t.abort();
    g.shutdown().await;
}
