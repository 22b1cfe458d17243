//! Event delivery from the venue to the client, where the transport faults live:
//! delays, duplicates, reordering, silent stalls and disconnects (see [`crate::FaultConfig`]).

use crate::config::FaultConfig;
use crate::market::chance;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tradeguard_model::{BrokerEvent, Timestamp};

/// State of the simulated connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Events flow.
    Up,
    /// Disconnected; `until` is the automatic reconnect time (None: user disconnected).
    Down { until: Option<Timestamp> },
    /// Connection claims to be up but delivers nothing until `until`.
    Stalled { until: Timestamp },
}

#[derive(Debug, Clone)]
struct Entry {
    event: BrokerEvent,
    /// Connection-state events bypass every fault.
    control: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    queue: BTreeMap<(Timestamp, u64), Entry>,
    seq: u64,
    pub link: Link,
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            queue: BTreeMap::new(),
            seq: 0,
            link: Link::Down { until: None },
        }
    }

    fn insert(&mut self, at: Timestamp, entry: Entry) {
        self.seq += 1;
        self.queue.insert((at, self.seq), entry);
    }

    /// Queues a venue event created at `at`, applying drop/delay/duplicate faults.
    pub fn push(
        &mut self,
        event: BrokerEvent,
        at: Timestamp,
        faults: &FaultConfig,
        rng: &mut ChaCha8Rng,
    ) {
        match self.link {
            Link::Down { .. } => return,
            Link::Stalled { .. } if matches!(event, BrokerEvent::Quote(_)) => return,
            _ => {}
        }
        let mut deliver = at;
        if chance(rng, faults.delay_prob) {
            let max_ms = u64::try_from(faults.delay_max.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            deliver = deliver.plus(std::time::Duration::from_millis(
                rng.random_range(1..=max_ms),
            ));
        }
        let dup = chance(rng, faults.duplicate_prob);
        if dup {
            self.insert(
                deliver,
                Entry {
                    event: event.clone(),
                    control: false,
                },
            );
        }
        self.insert(
            deliver,
            Entry {
                event,
                control: false,
            },
        );
    }

    /// Queues a connection-state event (never faulted).
    pub fn push_control(&mut self, event: BrokerEvent, at: Timestamp) {
        self.insert(
            at,
            Entry {
                event,
                control: true,
            },
        );
    }

    /// Drops every queued non-control event (in flight when the connection broke).
    pub fn drop_in_flight(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|_, e| e.control);
        before - self.queue.len()
    }

    /// Delivers events due at or before `until` (none while stalled), applying reordering.
    pub fn release(
        &mut self,
        until: Timestamp,
        faults: &FaultConfig,
        rng: &mut ChaCha8Rng,
    ) -> Vec<BrokerEvent> {
        let stalled = matches!(self.link, Link::Stalled { .. });
        let mut out: Vec<Entry> = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until || (stalled && !entry.get().control) {
                break;
            }
            out.push(entry.remove());
        }
        let mut i = 0;
        while i + 1 < out.len() {
            if !out[i].control && !out[i + 1].control && chance(rng, faults.reorder_prob) {
                out.swap(i, i + 1);
                i += 2;
            } else {
                i += 1;
            }
        }
        out.into_iter().map(|e| e.event).collect()
    }
}
