//! The OS notification path against a mock freedesktop notification server on a private
//! session bus: no X, no real notification daemon. The test starts `dbus-daemon`, serves
//! `org.freedesktop.Notifications` on it with zbus, then re-runs this test binary as a child
//! whose `DBUS_SESSION_BUS_ADDRESS` points at that bus; the child sends through
//! `tradeguard_app::notify`, and the parent asserts on what the mock recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tradeguard_app::notify::{CLICK_ACTION, OsNotification, send, send_clickable};

const CHILD_ENV: &str = "TRADEGUARD_NOTIFY_CHILD";

#[derive(Debug, Clone, PartialEq)]
struct Call {
    app_name: String,
    summary: String,
    body: String,
    urgency: Option<u8>,
    expire_timeout: i32,
    actions: Vec<String>,
}

struct MockNotifications {
    calls: Arc<Mutex<Vec<Call>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl MockNotifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        mut hints: HashMap<String, zbus::OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.remove("urgency").and_then(|v| u8::try_from(v).ok());
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        calls.push(Call {
            app_name,
            summary,
            body,
            urgency,
            expire_timeout,
            actions,
        });
        u32::try_from(calls.len()).unwrap_or(u32::MAX)
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".to_owned(), "persistence".to_owned()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "mock".to_owned(),
            "tradeguard-tests".to_owned(),
            "1.0".to_owned(),
            "1.2".to_owned(),
        )
    }

    fn close_notification(&self, _id: u32) {}

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// A private session bus; killed on drop.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start() -> Bus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon must be installed (scripts/install-deps.sh installs dbus)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut address = String::new();
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("dbus-daemon prints its address");
        let address = address.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "unexpected bus address {address:?}"
        );
        Bus { child, address }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_child(bus: &Bus, test: &str) -> std::process::Output {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", test, "--ignored", "--nocapture"])
        .env(CHILD_ENV, "1")
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .output()
        .expect("re-run the test binary")
}

/// Child side, run only by the parent tests below on their private bus.
#[test]
#[ignore = "helper process, spawned by the notification tests on a private bus"]
fn child_sends_assignment_notification() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "run by the parent tests only"
    );
    send(&OsNotification {
        title: "ASSIGNMENT: SPY 440 P ×2 assigned".to_owned(),
        body: "Strategy SPY iron condor is BROKEN — emergency close armed for the open".to_owned(),
        critical: true,
    })
    .expect("notification accepted by the bus");
    send(&OsNotification {
        title: "Connection restored".to_owned(),
        body: "sim".to_owned(),
        critical: false,
    })
    .expect("notification accepted by the bus");
}

/// Child side: sends a clickable notification and waits for the click.
#[test]
#[ignore = "helper process, spawned by the notification tests on a private bus"]
fn child_waits_for_a_click() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "run by the parent tests only"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    send_clickable(
        &OsNotification {
            title: "ASSIGNMENT: SPY 590 P ×1 assigned".to_owned(),
            body: "click me".to_owned(),
            critical: true,
        },
        Some(Arc::new(move || {
            let _ = tx.lock().map(|t| t.send(()));
        })),
    )
    .expect("notification accepted by the bus");
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the click handler ran");
    println!("CLICK HANDLED");
}

fn serve_mock(bus: &Bus, calls: Arc<Mutex<Vec<Call>>>) -> zbus::Connection {
    futures::executor::block_on(async {
        zbus::connection::Builder::address(bus.address.as_str())
            .name("org.freedesktop.Notifications")
            .serve_at(
                "/org/freedesktop/Notifications",
                MockNotifications { calls },
            )
            .build()
            .await
            .expect("connect the mock to the private bus")
    })
}

#[test]
fn clicking_a_notification_runs_the_click_handler() {
    let bus = Bus::start();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let server = serve_mock(&bus, calls.clone());
    // The user "clicks" notification 1 until the child has seen it (the child subscribes to
    // the signal only after Notify returns, so one early signal could be missed).
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clicker = {
        let done = done.clone();
        let server = server.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                futures::executor::block_on(async {
                    if let Ok(iface) = server
                        .object_server()
                        .interface::<_, MockNotifications>("/org/freedesktop/Notifications")
                        .await
                    {
                        let _ = MockNotifications::action_invoked(
                            iface.signal_emitter(),
                            1,
                            CLICK_ACTION,
                        )
                        .await;
                    }
                });
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let out = run_child(&bus, "child_waits_for_a_click");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    clicker.join().expect("clicker thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CLICK HANDLED"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].actions,
        vec![CLICK_ACTION.to_owned(), "Show in Tradeguard".to_owned()]
    );
}

#[test]
fn notifications_reach_the_desktop_service_with_urgency() {
    let bus = Bus::start();
    let calls = Arc::new(Mutex::new(Vec::new()));
    // zbus serves requests on its own executor thread once connected.
    let _server = futures::executor::block_on(async {
        zbus::connection::Builder::address(bus.address.as_str())
            .name("org.freedesktop.Notifications")
            .serve_at(
                "/org/freedesktop/Notifications",
                MockNotifications {
                    calls: calls.clone(),
                },
            )
            .build()
            .await
            .expect("connect the mock to the private bus")
    });

    let out = run_child(&bus, "child_sends_assignment_notification");
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let calls = calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].app_name, "Tradeguard");
    assert_eq!(calls[0].summary, "ASSIGNMENT: SPY 440 P ×2 assigned");
    assert!(calls[0].body.contains("emergency close armed"));
    assert_eq!(calls[0].urgency, Some(2), "critical urgency");
    assert_eq!(
        calls[0].expire_timeout, 0,
        "critical notifications never expire"
    );
    assert_eq!(calls[1].urgency, Some(1), "normal urgency");
}

#[test]
fn no_notification_service_is_an_error_not_a_silent_success() {
    // A bus with nobody serving org.freedesktop.Notifications.
    let bus = Bus::start();
    let out = run_child(&bus, "child_sends_assignment_notification");
    assert!(
        !out.status.success(),
        "sending without a notification service must fail"
    );
    let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        output.contains("notification accepted by the bus"),
        "{output}"
    );
}
