//! tradeguard-dst: deterministic simulation testing of the whole guard, VOPR-style.
//!
//! One `u64` seed picks a [`Scenario`] (trading day, market path, the account's strategies,
//! venue fault rates, crashes, risk limits); [`run_seed`] runs the real guard against the
//! simulated venue in paused virtual time, drives activity, crashes and restarts it from the
//! same database and venue, and checks the eight [`Invariant`]s after every step. Same seed ⇒
//! same trace hash. A broken invariant comes back as a [`Failure`] that prints the seed, the
//! invariant, the last events and the command reproducing it.
//!
//! - [`scenario`]: seed → scenario; [`invariants`]: the pure checker; [`harness`]: the run;
//!   [`ack_journal`]: acknowledged-write tracking (invariant 5); [`trace`]: hash + tail.

pub mod ack_journal;
pub mod harness;
pub mod ib;
pub mod invariants;
pub mod scenario;
pub mod trace;

pub use harness::{DstError, Failure, Options, RunReport, repro_command, run_seed, run_seed_with};
pub use invariants::{Checker, CheckerConfig, Invariant, Observation, Violation};
pub use scenario::Scenario;

/// Runs `count` seeds from `from`; returns the reports, or the first failure.
pub fn run_seeds(from: u64, count: u64) -> Result<Vec<RunReport>, DstError> {
    (from..from.saturating_add(count)).map(run_seed).collect()
}
