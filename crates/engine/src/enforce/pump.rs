//! The event pump task: subscribes to the broker's event stream, takes a position snapshot,
//! subscribes quotes for every position, and folds each event into the live book, waking the
//! enforcer on every event that can change a decision. A resubscribe request (stall detector)
//! drops the stream and starts over; the end of the stream is an error (supervisor restarts).

use crate::alert::Severity;
use crate::enforce::core::SharedCore;
use crate::enforce::error::EnforceError;
use crate::enforce::supervisor::{Heartbeat, TaskResult};
use futures::StreamExt;
use std::time::Duration;
use tradeguard_model::{BrokerEvent, ConnectionState, Instrument, Notice, OrderStatus};

/// How often the pump beats while the stream is quiet.
pub(crate) const IDLE_BEAT: Duration = Duration::from_secs(1);

pub(crate) async fn run(core: SharedCore, hb: Heartbeat) -> TaskResult {
    let mut first = true;
    loop {
        // Subscribe before the snapshot so nothing falls between them.
        let mut stream = core.broker.events();
        let instruments: Vec<Instrument> = match core.broker.positions().await {
            Ok(positions) => {
                let instruments = positions.iter().map(|p| p.instrument.clone()).collect();
                core.lock().book.replace_positions(positions);
                instruments
            }
            Err(e) => {
                // The stream matters more than the snapshot: keep the book, let the reconciler
                // retry the snapshot.
                tracing::warn!(
                    code = e.code(),
                    "position snapshot on subscribe failed: {e}"
                );
                core.wake_reconciler.notify_one();
                let now = core.now();
                let st = core.lock();
                st.book
                    .positions(now, core.cfg.quote_stale_after)
                    .into_iter()
                    .map(|p| p.instrument)
                    .collect()
            }
        };
        {
            let now = core.now();
            let mut st = core.lock();
            st.last_event_at = Some(now);
            // The connect happened before this subscription (the app connects first, then
            // starts the guard): start from the adapter's state, not from "unknown".
            if st.book.connection().is_none()
                && let Some(c) = core.broker.connection()
            {
                // Down already: the loss counts from now (alerted like any other).
                if let ConnectionState::Disconnected { reason } = &c {
                    st.link_down.get_or_insert((now, reason.clone()));
                }
                st.book.apply(&BrokerEvent::Connection(c));
            }
        }
        match core.broker.account().await {
            Ok(a) => {
                core.lock().book.apply(&BrokerEvent::Account(a));
            }
            Err(e) => tracing::warn!(code = e.code(), "no account values on subscribe: {e}"),
        }
        core.subscribe(instruments, !first).await;
        first = false;
        hb.beat();
        core.wake_enforcer.notify_one();
        let mut idle = tokio::time::interval(IDLE_BEAT);
        loop {
            // Biased (deterministic under simulation): a resubscribe request (rare) first;
            // events beat the heartbeat themselves, so the idle tick may wait behind them.
            tokio::select! {
                biased;
                () = core.resubscribe.notified() => {
                    tracing::warn!("event stream: resubscribing");
                    break;
                }
                ev = stream.next() => match ev {
                    Some(ev) => {
                        on_event(&core, ev).await;
                        hb.beat();
                    }
                    None => return Err(EnforceError::StreamEnded),
                },
                _ = idle.tick() => {
                    link_watch(&core).await;
                    hb.beat();
                }
            }
        }
    }
}

async fn on_event(core: &SharedCore, ev: BrokerEvent) {
    let now = core.now();
    let mut new_instrument = None;
    let mut reconcile = false;
    // What this event says to the trader (one event, at most one alert).
    let mut say: Option<(Severity, &'static str, String)> = None;
    {
        let mut st = core.lock();
        st.last_event_at = Some(now);
        if let BrokerEvent::Position(p) = &ev
            && p.qty != 0
            && !st.subscribed.contains(&p.instrument.id())
        {
            new_instrument = Some(p.instrument.clone());
        }
        match &ev {
            BrokerEvent::Connection(c) => {
                tracing::info!(state = ?c, "broker connection");
                match c {
                    ConnectionState::Disconnected { reason } => {
                        st.link_down.get_or_insert((now, reason.clone()));
                    }
                    ConnectionState::Connecting => {
                        st.link_down.get_or_insert((now, "connecting".into()));
                    }
                    ConnectionState::Connected => {
                        if let Some((since, _)) = st.link_down.take()
                            && std::mem::take(&mut st.link_down_alerted)
                        {
                            say = Some((
                                Severity::Warning,
                                "guard.connection_restored",
                                format!(
                                    "connection to {} restored after {} s: reconciling positions and orders with the broker",
                                    core.broker.name(),
                                    now.duration_since(since).as_secs()
                                ),
                            ));
                        }
                    }
                    _ => {}
                }
                let was_down = matches!(
                    st.book.connection(),
                    Some(ConnectionState::Disconnected { .. } | ConnectionState::Connecting)
                );
                reconcile = was_down && *c == ConnectionState::Connected;
            }
            BrokerEvent::Notice(n) if n.code == Notice::EVENTS_DROPPED => {
                say = Some((
                    Severity::Warning,
                    "guard.events_dropped",
                    format!(
                        "guard fell behind the broker event stream ({}); reconciling now",
                        n.text
                    ),
                ));
                reconcile = true;
            }
            BrokerEvent::Notice(n) if n.code == Notice::EXECUTION_CORRECTED => {
                say = Some((
                    Severity::Warning,
                    "guard.execution_corrected",
                    n.text.clone(),
                ));
                reconcile = true;
            }
            BrokerEvent::Notice(n) if n.code == Notice::REQUESTS_DROPPED => {
                say = Some((Severity::Warning, "guard.requests_dropped", n.text.clone()));
                reconcile = true;
            }
            BrokerEvent::Notice(n) if n.code == Notice::MARKET_DATA_UNAVAILABLE => {
                say = Some((
                    Severity::Warning,
                    "guard.market_data_unavailable",
                    n.text.clone(),
                ));
            }
            BrokerEvent::Notice(n) if n.code == Notice::ORDER_OUTCOME_UNKNOWN => {
                say = Some((
                    Severity::Critical,
                    "guard.order_outcome_unknown",
                    n.text.clone(),
                ));
            }
            BrokerEvent::OrderStatus(u) if u.status == OrderStatus::Inactive => {
                let why = u.reason.as_ref().map_or("", |r| r.text.as_str());
                say = Some((
                    Severity::Warning,
                    "guard.order_inactive",
                    format!(
                        "order {} is at {} but not working ({why}): nothing fills until it becomes active again. The guard waits for it and sends nothing in its place; cancel it if it should not wait.",
                        u.order_id,
                        core.broker.name()
                    ),
                ));
            }
            _ => {}
        }
        st.book.apply(&ev);
    }
    if let Some(i) = new_instrument {
        core.subscribe(vec![i], false).await;
    }
    if let Some((severity, code, text)) = say {
        core.alerter.raise(severity, code, text).await;
    }
    if reconcile {
        core.wake_reconciler.notify_one();
    }
    if !matches!(ev, BrokerEvent::Connection(_) | BrokerEvent::Notice(_)) {
        core.wake_enforcer.notify_one();
    }
}

/// A broker connection down for [`EnforceConfig::link_alert_after`] is a Critical alert, once
/// per loss (its restore is then a Warning, see `on_event`).
///
/// [`EnforceConfig::link_alert_after`]: crate::enforce::EnforceConfig::link_alert_after
async fn link_watch(core: &SharedCore) {
    let now = core.now();
    let lost = {
        let mut st = core.lock();
        match st.link_down.clone() {
            Some((since, why))
                if !st.link_down_alerted
                    && now.duration_since(since) >= core.cfg.link_alert_after =>
            {
                st.link_down_alerted = true;
                Some((now.duration_since(since), why))
            }
            _ => None,
        }
    };
    if let Some((d, why)) = lost {
        core.alerter
            .raise(
                Severity::Critical,
                "guard.connection_lost",
                format!(
                    "connection to {} lost {} s ago ({why}): prices, positions and P&L on screen are stale and the guard cannot send until it is back; stops resting at the broker still work. Reconnecting.",
                    core.broker.name(),
                    d.as_secs()
                ),
            )
            .await;
    }
}
