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
