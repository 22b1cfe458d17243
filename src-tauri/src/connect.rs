//! Connecting to IB Gateway/TWS when it is not up yet: with "Start Tradeguard when I log in"
//! the app usually starts before the gateway. A start that fails for a reason that passes on
//! its own (nothing listening yet, the gateway still starting, a connection dropped) is tried
//! again with backoff (2, 4, 8, 16, then every 30 s), a countdown each second for the screen,
//! and a Retry button that tries at once; a reason a person must fix (bad settings, an account
//! that is not managed, another guard on the account) ends the attempts at once.

use crate::venue::VenueError;
use serde::Serialize;
use specta::Type;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Notify;
use tradeguard_ibkr::IbError;

/// Emitted once a second while the app waits to try the gateway again.
#[derive(Debug, Clone, PartialEq, Serialize, Type, tauri_specta::Event)]
#[serde(rename_all = "camelCase")]
pub struct VenueWaiting {
    /// `host:port` tried.
    pub address: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// Seconds until the next attempt.
    pub next_in_secs: u32,
    /// Why the last attempt failed (for a person).
    pub message: String,
    /// Its stable code.
    pub code: String,
}

/// Whether a failed start passes on its own (worth trying again without a person).
pub fn transient(e: &VenueError) -> bool {
    match e {
        VenueError::IbTimeout { .. } => true,
        VenueError::Ib(e) => matches!(
            e,
            IbError::NothingListening { .. }
                | IbError::ConnectionRejected { .. }
                | IbError::NotConnected
                | IbError::Timeout(_)
                | IbError::Transport(_)
                | IbError::ClientIdInUse(_)
        ),
        VenueError::RemoteTimeout { .. } => true,
        VenueError::Projectx(e) => matches!(
            e,
            tradeguard_projectx::ProjectxError::Transport(_)
                | tradeguard_projectx::ProjectxError::RateLimited { .. }
        ),
        VenueError::Tradier(e) => matches!(
            e,
            tradeguard_tradier::TradierError::Transport(_)
                | tradeguard_tradier::TradierError::RateLimited { .. }
        ),
        VenueError::Broker(e) => matches!(
            e,
            tradeguard_model::BrokerError::Io(_)
                | tradeguard_model::BrokerError::Timeout(_)
                | tradeguard_model::BrokerError::NotConnected
        ),
        _ => false,
    }
}

/// The wait after the `attempt`-th failure (1-based): 2, 4, 8, 16, then 30 s.
pub fn retry_delay(attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(4);
    Duration::from_secs(2u64 << shift).min(Duration::from_secs(30))
}

/// Runs `attempt` until it succeeds or fails for a reason a person must fix; between transient
/// failures waits [`retry_delay`], calling `waiting(attempt, error, seconds_left)` once a
/// second; `retry_now` cuts the wait short.
pub async fn retrying<T, F, Fut>(
    mut attempt: F,
    retry_now: &Notify,
    mut waiting: impl FnMut(u32, &VenueError, u32),
) -> Result<T, VenueError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, VenueError>>,
{
    let mut n = 0u32;
    loop {
        n = n.saturating_add(1);
        let e = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if transient(&e) => e,
            Err(e) => return Err(e),
        };
        let until = tokio::time::Instant::now() + retry_delay(n);
        tracing::warn!(
            attempt = n,
            code = e.code(),
            "{e}; trying again in {:?}",
            retry_delay(n)
        );
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                break;
            }
            let left = until - now;
            waiting(
                n,
                &e,
                u32::try_from(left.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX),
            );
            let tick = left.min(Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = retry_now.notified() => {
                    tracing::info!("retry requested");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tradeguard_ibkr::fake_tws::{FakeTws, FakeTwsConfig};
    use tradeguard_ibkr::{IbBroker, IbSettings};

    fn nothing() -> VenueError {
        VenueError::Ib(IbError::NothingListening {
            address: "127.0.0.1:4002".into(),
        })
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let d: Vec<u64> = (1..=7).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(d, vec![2, 4, 8, 16, 30, 30, 30]);
        assert!(transient(&nothing()));
        assert!(!transient(&VenueError::Ib(IbError::AccountNotManaged {
            account: "U1".into(),
            managed: vec!["U2".into()],
        })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_with_a_countdown_and_a_lasting_one_is_not() {
        let calls = AtomicU32::new(0);
        let mut seen = Vec::new();
        let notify = Notify::new();
        let r = retrying(
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 2 { Err(nothing()) } else { Ok(n) } }
            },
            &notify,
            |attempt, e, left| seen.push((attempt, e.code(), left)),
        )
        .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(
            seen,
            vec![
                (1, "ib.nothing_listening", 2),
                (1, "ib.nothing_listening", 1),
                (2, "ib.nothing_listening", 4),
                (2, "ib.nothing_listening", 3),
                (2, "ib.nothing_listening", 2),
                (2, "ib.nothing_listening", 1),
            ]
        );
        let lasting = retrying(
            || async {
                Err::<(), _>(VenueError::Ib(IbError::AccountNotManaged {
                    account: "U1".into(),
                    managed: vec!["U2".into()],
                }))
            },
            &notify,
            |_, _, _| panic!("a lasting failure is not waited on"),
        )
        .await;
        assert_eq!(lasting.unwrap_err().code(), "ib.account_not_managed");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_now_cuts_the_wait_short() {
        let calls = AtomicU32::new(0);
        let notify = Arc::new(Notify::new());
        let n2 = notify.clone();
        let t0 = tokio::time::Instant::now();
        let r = retrying(
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 5 { Err(nothing()) } else { Ok(()) } }
            },
            &notify,
            |attempt, _, _| {
                if attempt >= 3 {
                    n2.notify_one();
                }
            },
        )
        .await;
        assert!(r.is_ok());
        // 2 + 4 s waited; the third, fourth and fifth waits were cut short by Retry.
        assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    }

    /// The gateway comes up on its port 3 s after the app began trying: connected within one
    /// backoff step, over real sockets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gateway_that_starts_later_is_connected_within_seconds() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let clock: Arc<dyn tradeguard_model::Clock> = Arc::new(tradeguard_model::SystemClock);
        let gateway = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let f = FakeTws::start_on(
                port,
                FakeTwsConfig {
                    accounts: vec!["DU-TEST".into()],
                    ..FakeTwsConfig::default()
                },
            )
            .await
            .expect("gateway starts");
            f.use_wall_clock();
            f
        });
        let t0 = std::time::Instant::now();
        let notify = Notify::new();
        let mut waits = 0;
        let ib = retrying(
            || {
                let ib = IbBroker::new(
                    IbSettings {
                        port,
                        client_id: 3,
                        account: "DU-TEST".into(),
                        ..IbSettings::default()
                    },
                    clock.clone(),
                );
                async move { ib.connect_ib().await.map(|()| ib).map_err(VenueError::Ib) }
            },
            &notify,
            |_, e, _| {
                assert_eq!(e.code(), "ib.nothing_listening");
                waits += 1;
            },
        )
        .await
        .expect("connected once the gateway is up");
        let took = t0.elapsed();
        assert!(waits > 0, "the first attempts found nothing listening");
        // Up at 3 s; attempts at 0, 2, 6 s: connected by the third.
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(ib.account_id(), "DU-TEST");
        ib.disconnect_ib().await;
        drop(gateway.await);
    }
}
