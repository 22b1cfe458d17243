//! [`TokioClock`]: a [`Clock`] that reads tokio time, so Clock timestamps and tokio timers agree
//! — and a test under `#[tokio::test(start_paused = true)]` is deterministic.

use tradeguard_model::{Clock, Timestamp};

/// `base` plus the tokio time elapsed since construction.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now. Must be created inside a tokio runtime.
    pub fn new(base: Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base.plus(self.start.elapsed())
    }
}
