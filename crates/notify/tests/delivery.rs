//! The relay against real servers on loopback: every channel's request shape, retries with an
//! audit trail and an in-app alert when a channel keeps failing, the end of a delivery the
//! server refuses for good, the rate limit, and a restart that delivers what was pending.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::{HookServer, SmtpMode, SmtpServer, unfold_qp, until};
use tokio::sync::broadcast;
use tradeguard_engine::alert::{Alert, AlertSink, Delivery, DeliveryState, Severity};
use tradeguard_engine::enforce::alerter::Alerter;
use tradeguard_engine::{Journal, JournalRecord, MemoryJournal};
use tradeguard_model::{Clock, SystemClock};
use tradeguard_notify::{
    AlertsConfig, MemorySecrets, Relay, RelayDeps, RetryPolicy, SecretStore, inbox,
};

const WAIT: Duration = Duration::from_secs(20);

fn fast() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
        attempts: 4,
        critical_for: Duration::from_secs(3600),
        failing_after: 3,
    }
}

struct Rig {
    sink: Arc<tradeguard_notify::Inbox>,
    relay: Relay,
    alerts: broadcast::Receiver<Alert>,
}

async fn rig(
    cfg: &str,
    secrets: &MemorySecrets,
    journal: &MemoryJournal,
    retry: RetryPolicy,
) -> Rig {
    let config = AlertsConfig::parse(cfg).unwrap();
    let (sink, rx) = inbox();
    let (tx, alerts) = broadcast::channel(256);
    let alerter = Alerter::new(Arc::new(journal.reopen()), Arc::new(SystemClock), tx)
        .with_relay(Some(sink.clone()));
    let state = journal.load().await.unwrap();
    let relay = Relay::start(
        RelayDeps {
            config,
            secrets: Arc::new(secrets.clone()),
            journal: Arc::new(journal.reopen()),
            clock: Arc::new(SystemClock),
            alerter,
            pending: state.pending_deliveries.into_values().collect(),
            last_id: state.last_delivery_id,
            retry,
        },
        rx,
    )
    .await;
    Rig {
        sink,
        relay,
        alerts,
    }
}

fn assignment_alert() -> Alert {
    Alert {
        ts: SystemClock.now(),
        severity: Severity::Critical,
        code: "assignment.detected".into(),
        message: "ASSIGNMENT: SPY 21MAR25 440 P ×2 assigned — emergency close sent. SPY IC 435/440/460/465 is Broken: short SPY 21MAR25 440 P assigned; 200 SPY delivered at 440; emergency close sent: BUY 2 SPY 21MAR25 460 C, SELL 200 SPY, then SELL 2 SPY 21MAR25 435 P, SELL 2 SPY 21MAR25 465 C".into(),
        group: None,
        stop: None,
    }
}

fn warning(code: &str, text: &str) -> Alert {
    Alert {
        ts: SystemClock.now(),
        severity: Severity::Warning,
        code: code.into(),
        message: text.into(),
        group: None,
        stop: None,
    }
}

fn deliveries(j: &MemoryJournal) -> Vec<Delivery> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Delivery(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn audits(j: &MemoryJournal, decision: &str) -> Vec<String> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Audit(a) if a.decision == decision => Some(a.reason),
            _ => None,
        })
        .collect()
}

fn journaled_alerts(j: &MemoryJournal, code: &str) -> Vec<Alert> {
    j.records()
        .into_iter()
        .filter_map(|r| match r {
            JournalRecord::Alert(a) if a.code == code => Some(a),
            _ => None,
        })
        .collect()
}

fn all_channels(smtp: &SmtpServer, hook: &HookServer) -> String {
    format!(
        r#"
[[channel]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "Tradeguard <guard@example.com>"
to = ["trader@example.com"]

[[channel]]
name = "slack"
type = "slack"

[[channel]]
name = "discord"
type = "discord"

[[channel]]
name = "json"
type = "webhook"

[[channel]]
name = "phone"
type = "ntfy"
server = "{ntfy}"
topic = "tg-alerts"

[[channel]]
name = "tg"
type = "telegram"
chat_id = "4242"
api = "{tg}"
"#,
        smtp = smtp.port,
        ntfy = hook.url("/ntfy"),
        tg = hook.url("/telegram"),
    )
}

fn secrets_for(hook: &HookServer) -> MemorySecrets {
    let s = MemorySecrets::new();
    s.set("slack", &hook.url("/slack/T0/B0/secretpart"))
        .unwrap();
    s.set("discord", &hook.url("/discord/123/tok")).unwrap();
    s.set("json", &hook.url("/json")).unwrap();
    s.set("phone", "tk_ntfy").unwrap();
    s.set("tg", "123:ABC").unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_reaches_every_channel_in_its_documented_shape() {
    let (smtp, hook) = (SmtpServer::start().await, HookServer::start().await);
    let j = MemoryJournal::new();
    let r = rig(&all_channels(&smtp, &hook), &secrets_for(&hook), &j, fast()).await;
    r.sink.accept(&assignment_alert());
    assert!(
        until(WAIT, || smtp.mails().len() == 1 && hook.hits().len() == 5).await,
        "mails {:?}, hits {:?}",
        smtp.mails(),
        hook.hits()
    );

    // Email: subject, the assignment's details, what to do.
    let mail = &smtp.mails()[0];
    assert_eq!(mail.to, vec!["<trader@example.com>".to_owned()]);
    let data = unfold_qp(&mail.data);
    assert!(
        data.contains("Subject: [Tradeguard CRITICAL] ASSIGNMENT: SPY 21MAR25 440 P"),
        "{data}"
    );
    for s in [
        "SPY IC 435/440/460/465 is Broken",
        "200 SPY delivered at 440",
        "BUY 2 SPY 21MAR25 460 C",
        "What to do: The guard is closing the rest",
        "assignment.detected",
        " ET",
    ] {
        assert!(data.contains(s), "{s:?} not in {data}");
    }

    // Slack: {"text"} on the webhook URL.
    let slack = &hook.hits_on("/slack/T0/B0/secretpart")[0];
    assert_eq!(slack.method, "POST");
    assert!(
        slack.json()["text"]
            .as_str()
            .unwrap()
            .contains("200 SPY delivered")
    );
    // Discord: {"content"} ≤ 2,000 characters, wait=true.
    let discord = &hook.hits_on("/discord/123/tok")[0];
    assert_eq!(discord.query, "wait=true");
    let content = discord.json()["content"].as_str().unwrap().to_owned();
    assert!(content.chars().count() <= 2_000 && content.contains("ASSIGNMENT"));
    // Generic JSON: the structured message.
    let json = hook.hits_on("/json")[0].json();
    assert_eq!(json["source"], "tradeguard");
    assert_eq!(json["message"]["code"], "assignment.detected");
    assert_eq!(json["message"]["severity"], "CRITICAL");
    assert!(
        json["message"]["action"]
            .as_str()
            .unwrap()
            .contains("closing")
    );
    // ntfy: POST <server>/<topic>, text body, Title/Priority/Tags, bearer token.
    let ntfy = &hook.hits_on("/ntfy/tg-alerts")[0];
    assert_eq!(ntfy.header("priority"), "5");
    assert_eq!(ntfy.header("authorization"), "Bearer tk_ntfy");
    assert!(
        ntfy.header("title")
            .starts_with("[Tradeguard CRITICAL] ASSIGNMENT: SPY 21MAR25 440 P x2")
    );
    assert!(ntfy.body.contains("200 SPY delivered at 440"));
    // Telegram: sendMessage with the bot token in the path, chat_id and text.
    let tg = &hook.hits_on("/telegram/bot123:ABC/sendMessage")[0];
    assert_eq!(tg.json()["chat_id"], "4242");
    assert!(tg.json()["text"].as_str().unwrap().contains("Broken"));

    // The record: six deliveries queued then sent, one audit entry each.
    assert!(until(WAIT, || audits(&j, "alert_delivered").len() == 6).await);
    let d = deliveries(&j);
    assert_eq!(
        d.iter()
            .filter(|d| d.state == DeliveryState::Pending)
            .count(),
        6
    );
    assert_eq!(
        d.iter().filter(|d| d.state == DeliveryState::Sent).count(),
        6
    );
    assert!(j.load().await.unwrap().pending_deliveries.is_empty());
    // No secret in any record.
    let text = format!("{:?}", j.records());
    for s in ["secretpart", "tk_ntfy", "123:ABC"] {
        assert!(!text.contains(s), "secret {s} in the journal");
    }
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_is_retried_audited_and_reported_until_it_recovers() {
    let hook = HookServer::start().await;
    hook.answer_on("/json", 503);
    let j = MemoryJournal::new();
    let s = MemorySecrets::new();
    s.set("json", &hook.url("/json")).unwrap();
    s.set("backup", &hook.url("/backup")).unwrap();
    // "backup" works and carries warnings: it is told that "json" fails.
    let cfg = "[[channel]]\nname = \"json\"\ntype = \"webhook\"\n\n[[channel]]\nname = \"backup\"\ntype = \"slack\"\nmin_severity = \"warning\"\nkinds = [\"alerts.\"]\n";
    let mut r = rig(cfg, &s, &j, fast()).await;
    r.sink.accept(&assignment_alert());
    assert!(
        until(WAIT, || !journaled_alerts(&j, "alerts.channel_failing")
            .is_empty())
        .await,
        "no channel_failing alert; audits {:?}",
        audits(&j, "alert_delivery_failed")
    );
    let failing = &journaled_alerts(&j, "alerts.channel_failing")[0];
    // A Critical alert is stuck: the in-app alert is Critical and names the channel and why.
    assert_eq!(failing.severity, Severity::Critical);
    assert!(
        failing.message.contains("\"json\"") && failing.message.contains("503"),
        "{}",
        failing.message
    );
    let failed = audits(&j, "alert_delivery_failed");
    assert!(failed.len() >= 3, "{failed:?}");
    assert!(
        failed[0].contains("attempt 1") && failed[0].contains("retry in"),
        "{}",
        failed[0]
    );
    // The pending record carries the reason.
    let st = j.load().await.unwrap();
    let p: Vec<_> = st
        .pending_deliveries
        .values()
        .filter(|d| d.channel == "json")
        .collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].error_code.as_deref(), Some("alerts.rejected"));
    assert!(p[0].attempts >= 3);
    // The app's alert went out (broadcast), and so did the word to the working channel.
    let mut seen = false;
    while let Ok(a) = r.alerts.try_recv() {
        seen |= a.code == "alerts.channel_failing";
    }
    assert!(seen);
    // The working channel got the assignment, then the word that "json" fails.
    assert!(
        until(WAIT, || hook
            .hits_on("/backup")
            .iter()
            .any(|h| h.body.contains("keeps failing")))
        .await
    );
    assert!(
        hook.hits_on("/backup")[0]
            .body
            .contains("assignment.detected")
    );
    hook.answer_on("/json", 200);
    assert!(
        until(WAIT, || hook
            .hits_on("/json")
            .iter()
            .filter(|h| h.body.contains("assignment.detected"))
            .count()
            >= 1
            && !journaled_alerts(&j, "alerts.channel_recovered")
                .is_empty())
        .await
    );
    // The failing notice itself is not queued on the channel that failed.
    assert!(
        !hook
            .hits_on("/json")
            .iter()
            .any(|h| h.body.contains("alerts.channel_failing"))
    );
    let ch = r.relay.channels();
    let json = ch.iter().find(|c| c.name == "json").unwrap();
    assert_eq!((json.pending, json.failing, json.sent), (0, 0, 1));
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_server_that_is_busy_gets_the_mail_later() {
    let smtp = SmtpServer::start().await;
    smtp.set_mode(SmtpMode::Busy);
    let j = MemoryJournal::new();
    let cfg = format!(
        "[[channel]]\nname = \"mail\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"g@example.com\"\nto = [\"t@example.com\"]\n",
        smtp.port
    );
    let r = rig(&cfg, &MemorySecrets::new(), &j, fast()).await;
    r.sink.accept(&assignment_alert());
    assert!(until(WAIT, || audits(&j, "alert_delivery_failed").len() >= 2).await);
    assert!(audits(&j, "alert_delivery_failed")[0].contains("451"));
    smtp.set_mode(SmtpMode::Accept);
    assert!(until(WAIT, || smtp.mails().len() == 1).await);
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_for_good_ends_the_delivery_at_once_and_says_so() {
    let hook = HookServer::start().await;
    hook.answer(404);
    let j = MemoryJournal::new();
    let s = MemorySecrets::new();
    s.set("slack", &hook.url("/slack/revoked")).unwrap();
    let r = rig(
        "[[channel]]\nname = \"slack\"\ntype = \"slack\"\n",
        &s,
        &j,
        fast(),
    )
    .await;
    r.sink.accept(&assignment_alert());
    assert!(
        until(WAIT, || deliveries(&j)
            .iter()
            .any(|d| d.state == DeliveryState::GaveUp))
        .await
    );
    assert_eq!(hook.hits().len(), 1, "a 404 is not retried");
    let gave_up = deliveries(&j)
        .into_iter()
        .find(|d| d.state == DeliveryState::GaveUp)
        .unwrap();
    assert_eq!(gave_up.attempts, 1);
    // The webhook URL is the secret: it is in no record.
    assert!(!format!("{:?}", j.records()).contains("/slack/revoked"));
    assert!(
        until(WAIT, || !journaled_alerts(&j, "alerts.channel_failing")
            .is_empty())
        .await
    );
    assert!(audits(&j, "alert_delivery_failed")[0].contains("given up"));
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_clear_failure_not_a_silent_skip() {
    let j = MemoryJournal::new();
    let r = rig(
        "[[channel]]\nname = \"tg\"\ntype = \"telegram\"\nchat_id = \"1\"\n",
        &MemorySecrets::new(),
        &j,
        fast(),
    )
    .await;
    let e = r.relay.test("tg").await.unwrap_err();
    assert_eq!(e.code(), "alerts.secret_missing");
    assert!(e.to_string().contains("Settings"), "{e}");
    assert_eq!(
        r.relay.test("nope").await.unwrap_err().code(),
        "alerts.unknown_channel"
    );
    assert!(audits(&j, "alert_delivery_failed")[0].contains("test message"));
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_over_the_rate_wait_their_turn_and_critical_goes_first() {
    let hook = HookServer::start().await;
    let j = MemoryJournal::new();
    let s = MemorySecrets::new();
    s.set("json", &hook.url("/json")).unwrap();
    let r = rig(
        "[[channel]]\nname = \"json\"\ntype = \"webhook\"\nmin_severity = \"warning\"\nper_minute = 2\n",
        &s,
        &j,
        fast(),
    )
    .await;
    for i in 0..4 {
        r.sink
            .accept(&warning("stop.cancel_rejected", &format!("warning {i}")));
    }
    assert!(until(WAIT, || hook.hits().len() == 2).await);
    r.sink.accept(&assignment_alert());
    // Within the minute nothing more goes out; the queue holds 3, the Critical one first.
    assert!(until(WAIT, || r.relay.channels()[0].pending == 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.hits().len(), 2);
    assert_eq!(j.load().await.unwrap().pending_deliveries.len(), 3);
    r.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_what_was_pending_once() {
    let hook = HookServer::start().await;
    hook.answer(500);
    let j = MemoryJournal::new();
    let s = MemorySecrets::new();
    s.set("json", &hook.url("/json")).unwrap();
    let cfg = "[[channel]]\nname = \"json\"\ntype = \"webhook\"\n";
    let first = rig(cfg, &s, &j, fast()).await;
    first.sink.accept(&assignment_alert());
    assert!(until(WAIT, || audits(&j, "alert_delivery_failed").len() >= 2).await);
    // The process ends with the delivery pending.
    first.relay.shutdown();
    drop(first);
    let pending = j.load().await.unwrap().pending_deliveries;
    assert_eq!(pending.len(), 1);
    let id = *pending.keys().next().unwrap();
    hook.answer(200);
    let before = hook.hits().len();
    let second = rig(cfg, &s, &j, fast()).await;
    assert!(until(WAIT, || hook.hits().len() == before + 1).await);
    assert!(
        hook.hits()
            .last()
            .unwrap()
            .body
            .contains("assignment.detected")
    );
    assert!(
        until(WAIT, || deliveries(&j)
            .iter()
            .any(|d| d.state == DeliveryState::Sent))
        .await
    );
    let st = j.load().await.unwrap();
    assert!(st.pending_deliveries.is_empty());
    let sent: Vec<_> = deliveries(&j)
        .into_iter()
        .filter(|d| d.state == DeliveryState::Sent)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, id, "the same delivery, not a new one");
    // New deliveries after the restart get new ids.
    second.sink.accept(&assignment_alert());
    assert!(
        until(WAIT, || deliveries(&j)
            .iter()
            .filter(|d| d.state == DeliveryState::Sent)
            .count()
            == 2)
        .await
    );
    assert!(deliveries(&j).iter().all(|d| d.id >= id));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.hits().len(), before + 2, "nothing delivered twice");
    second.relay.shutdown();
}
