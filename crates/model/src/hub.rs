//! Event fan-out for venue adapters (feature `hub`: the one piece of this crate on an async
//! runtime, tokio's broadcast channel): every subscriber gets its own [`EventStream`]; a subscriber that falls behind
//! gets a [`Notice::EVENTS_DROPPED`] notice saying how many events it missed, never silence.

use crate::{BrokerEvent, Clock, ConnectionState, EventStream, Notice};
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Broadcasts broker events to any number of subscribers.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<BrokerEvent>,
    clock: Arc<dyn Clock>,
    /// The last connection state published.
    connection: Arc<std::sync::Mutex<Option<ConnectionState>>>,
}

impl EventHub {
    /// A hub buffering up to `capacity` events per subscriber.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            clock,
            connection: Arc::default(),
        }
    }

    /// Publishes an event (no subscriber is fine).
    pub fn publish(&self, e: BrokerEvent) {
        if let BrokerEvent::Connection(c) = &e {
            *self
                .connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
        }
        let _ = self.tx.send(e);
    }

    /// The last connection state published (`None` before the first).
    pub fn connection(&self) -> Option<ConnectionState> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A notice event stamped with the hub's clock.
    pub fn notice(&self, code: i32, text: impl Into<String>) {
        self.publish(BrokerEvent::Notice(Notice {
            code,
            text: text.into(),
            ts: self.clock.now(),
        }));
    }

    /// A new subscriber stream of all events from now on.
    pub fn subscribe(&self) -> EventStream {
        let rx = self.tx.subscribe();
        let clock = self.clock.clone();
        futures::stream::unfold(rx, move |mut rx| {
            let clock = clock.clone();
            async move {
                match rx.recv().await {
                    Ok(e) => Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => Some((
                        BrokerEvent::Notice(Notice {
                            code: Notice::EVENTS_DROPPED,
                            text: format!("subscriber fell behind: {n} events dropped"),
                            ts: clock.now(),
                        }),
                        rx,
                    )),
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectionState, ManualClock, Timestamp};

    #[tokio::test]
    async fn lagging_subscriber_gets_a_notice() {
        let hub = EventHub::new(2, Arc::new(ManualClock::new(Timestamp::from_secs(5))));
        let mut s = hub.subscribe();
        for _ in 0..5 {
            hub.publish(BrokerEvent::Connection(ConnectionState::Connected));
        }
        match s.next().await {
            Some(BrokerEvent::Notice(n)) => {
                assert_eq!(n.code, Notice::EVENTS_DROPPED);
                assert!(n.text.contains("3 events"), "{}", n.text);
            }
            other => panic!("expected notice, got {other:?}"),
        }
        assert_eq!(
            s.next().await,
            Some(BrokerEvent::Connection(ConnectionState::Connected))
        );
    }
}

/// Whether a venue's REST side answers, as connection states: the first failure after a
/// success is `Disconnected` with its reason, the first success after failures `Connected`;
/// failures in between are logged only (one alert, not one per poll).
#[derive(Debug, Default)]
pub struct RestHealth(std::sync::atomic::AtomicBool);

impl RestHealth {
    /// Reports the outcome of one read (`Err`: its code and text).
    pub fn report(&self, hub: &EventHub, venue: &str, what: &str, r: Result<(), (&str, String)>) {
        use std::sync::atomic::Ordering;
        match r {
            Ok(()) => {
                if self.0.swap(false, Ordering::SeqCst) {
                    tracing::info!("{venue} answers again");
                    hub.publish(BrokerEvent::Connection(ConnectionState::Connected));
                }
            }
            Err((code, text)) => {
                tracing::warn!(code, "{venue} {what} failed: {text}");
                if !self.0.swap(true, Ordering::SeqCst) {
                    hub.publish(BrokerEvent::Connection(ConnectionState::Disconnected {
                        reason: format!("{venue} {what} failed [{code}]: {text}"),
                    }));
                }
            }
        }
    }
}

/// The position events of a fresh read against the last one (`book`, replaced by it): every
/// position the first time (`all`), then each whose quantity changed, and a quantity of 0 for
/// each that went away, as IB's position stream reports them.
pub fn position_changes(
    book: &mut std::collections::BTreeMap<crate::InstrumentId, crate::Position>,
    fresh: Vec<crate::Position>,
    all: bool,
) -> Vec<BrokerEvent> {
    let next: std::collections::BTreeMap<_, _> =
        fresh.into_iter().map(|p| (p.instrument.id(), p)).collect();
    let mut events = Vec::new();
    for (k, p) in &next {
        if all || book.get(k).is_none_or(|old| old.qty != p.qty) {
            events.push(BrokerEvent::Position(p.clone()));
        }
    }
    for (k, old) in book.iter() {
        if !next.contains_key(k) {
            events.push(BrokerEvent::Position(crate::Position {
                qty: 0,
                ..old.clone()
            }));
        }
    }
    *book = next;
    events
}

/// A venue session's tasks and their stop signal: running or not, stopped on disconnect, and
/// aborted if the adapter is dropped while they run.
#[derive(Default)]
pub struct Tasks(tokio::sync::Mutex<Option<Running>>);

/// Running tasks and their stop signal.
type Running = (
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<()>>,
);

impl Tasks {
    /// Whether tasks run.
    pub async fn running(&self) -> bool {
        self.0.lock().await.is_some()
    }

    /// Starts `start`'s tasks with a stop signal, unless some run already (then `false`).
    pub async fn start(
        &self,
        start: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>>,
    ) -> bool {
        let mut g = self.0.lock().await;
        if g.is_some() {
            return false;
        }
        let (stop, rx) = tokio::sync::watch::channel(false);
        *g = Some((stop, start(rx)));
        true
    }

    /// Signals the tasks to stop and waits for them; `false` when none ran.
    pub async fn stop(&self) -> bool {
        let Some((stop, tasks)) = self.0.lock().await.take() else {
            return false;
        };
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
        true
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        if let Some((stop, tasks)) = self.0.get_mut().take() {
            let _ = stop.send(true);
            for t in tasks {
                t.abort();
            }
        }
    }
}

#[cfg(test)]
mod adapter_tests {
    use super::*;
    use crate::{AccountId, Instrument, Position, Price};

    #[test]
    fn position_changes_say_every_change_once_and_zero_for_what_went_away() {
        let p = |sym: &str, qty| Position {
            account: AccountId::new("A"),
            instrument: Instrument::stock(sym),
            qty,
            avg_cost: Price::ZERO,
        };
        let mut book = std::collections::BTreeMap::new();
        let first = position_changes(&mut book, vec![p("A", 1), p("B", 2)], true);
        assert_eq!(first.len(), 2);
        assert!(position_changes(&mut book, vec![p("A", 1), p("B", 2)], false).is_empty());
        let ev = position_changes(&mut book, vec![p("A", 3)], false);
        assert_eq!(
            ev,
            vec![
                BrokerEvent::Position(p("A", 3)),
                BrokerEvent::Position(p("B", 0))
            ]
        );
    }
}
